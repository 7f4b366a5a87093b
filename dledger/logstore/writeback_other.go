//go:build !(linux && amd64)

package logstore

import "github.com/rmqd/rmqd/internal/vfs"

// writeback makes [off, off+n) of f durable (fdatasync where the OS has
// it); linux/amd64 only writes it back (writeback_linux_amd64.go).
func writeback(f vfs.File, off, n int64) error { return datasync(f) }
