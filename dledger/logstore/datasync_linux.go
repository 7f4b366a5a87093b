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
	sc, ok := f.(interface {
		SyscallConn() (syscall.RawConn, error)
	})
	if !ok {
		return f.Sync()
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = syscall.Fdatasync(int(fd))
			if !errors.Is(serr, syscall.EINTR) {
				return
			}
		}
	}); err != nil {
		return err
	}
	return serr
}
