//go:build !linux

package logstore

import "github.com/rmqd/rmqd/internal/vfs"

// datasync is Sync where fdatasync(2) is not available.
func datasync(f vfs.File) error { return f.Sync() }
