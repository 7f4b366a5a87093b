package logstore

import (
	"errors"
	"syscall"

	"github.com/rmqd/rmqd/internal/vfs"
)

// writeback writes [off, off+n) of f to disk and waits for it with
// sync_file_range(2): data only, no journal commit and no cache flush. The
// filler needs no more: its zeros need not be durable (a lost zero reads as
// the hole it replaced), only their blocks allocated and written before
// group commits reach them. The allocation reaches the journal with the
// next fdatasync of the file (one group commit pays it per chunk) or jbd2's
// periodic commit. Files without a descriptor (test filesystems) Sync.
func writeback(f vfs.File, off, n int64) error {
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
	const flags = 1 | 2 | 4 // SYNC_FILE_RANGE_WAIT_BEFORE | _WRITE | _WAIT_AFTER
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			_, _, e := syscall.Syscall6(syscall.SYS_SYNC_FILE_RANGE, fd, uintptr(off), uintptr(n), flags, 0, 0)
			if e != syscall.EINTR {
				if e != 0 {
					serr = e
				}
				return
			}
		}
	}); err != nil {
		return err
	}
	if errors.Is(serr, syscall.ENOSYS) {
		return datasync(f)
	}
	return serr
}
