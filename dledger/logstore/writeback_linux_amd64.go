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
	const flags = 1 | 2 | 4 // SYNC_FILE_RANGE_WAIT_BEFORE | _WRITE | _WAIT_AFTER
	ok, err := onFD(f, func(fd uintptr) error {
		if _, _, e := syscall.Syscall6(syscall.SYS_SYNC_FILE_RANGE, fd, uintptr(off), uintptr(n), flags, 0, 0); e != 0 {
			return e
		}
		return nil
	})
	switch {
	case !ok:
		return f.Sync()
	case errors.Is(err, syscall.ENOSYS):
		return datasync(f)
	}
	return err
}
