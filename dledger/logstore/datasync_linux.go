package logstore

import (
	"errors"
	"syscall"

	"github.com/rmqd/rmqd/internal/vfs"
)

// datasync makes f's written bytes durable with fdatasync(2) when f is an OS
// file: our files never change size after creation except through Truncate,
// and fdatasync flushes the size and block allocation too (the metadata a
// later read needs), skipping only timestamps. Other files (the test
// filesystems) use Sync.
func datasync(f vfs.File) error {
	if ok, err := onFD(f, func(fd uintptr) error { return syscall.Fdatasync(int(fd)) }); ok {
		return err
	}
	return f.Sync()
}

// onFD runs op on f's descriptor, again while it fails with EINTR; ok is
// false when f has no descriptor (the test filesystems).
func onFD(f vfs.File, op func(fd uintptr) error) (ok bool, err error) {
	sc, ok := f.(interface {
		SyscallConn() (syscall.RawConn, error)
	})
	if !ok {
		return false, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true, err
	}
	var operr error
	if err := rc.Control(func(fd uintptr) {
		for operr = op(fd); errors.Is(operr, syscall.EINTR); operr = op(fd) {
		}
	}); err != nil {
		return true, err
	}
	return true, operr
}
