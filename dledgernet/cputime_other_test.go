//go:build !unix

package dledgernet

import "time"

func cpuTime() time.Duration { return 0 }
