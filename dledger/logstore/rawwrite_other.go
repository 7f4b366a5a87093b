//go:build !linux

package logstore

import "github.com/rmqd/rmqd/internal/vfs"

// rawWriter exists on Linux only (rawwrite_linux.go); elsewhere Append
// writes through the file.
type rawWriter struct{}

func newRawWriter(vfs.File) *rawWriter { return nil }

func (*rawWriter) WriteAt(b []byte, off int64) (int, error) { panic("logstore: no raw writer") }
