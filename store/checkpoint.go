package store

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"syscall"

	"github.com/rmqd/rmqd/internal/vfs"
)

// checkpoint is the 4 KiB file of five int64 (protocol.md §6.4):
//
//	0  physicMsgTimestamp  STORETIMESTAMP of the last fsynced commitlog record
//	8  logicsMsgTimestamp  ... of the last record whose consume-queue unit is fsynced
//	16 indexMsgTimestamp   ... of the last record whose index entries are fsynced
//	24 masterFlushedOffset (HA; kept as read)
//	32 confirmPhyOffset    (kept as read)
//
// It is rewritten in place and fsynced after every flush round; abnormal
// recovery starts from the last commitlog file whose first record is not
// newer than min(physic, logics[, index]) - 3 s.
type checkpoint struct {
	file vfs.File

	physicMsgTimestamp  int64
	logicsMsgTimestamp  int64
	indexMsgTimestamp   int64
	masterFlushedOffset int64
	confirmPhyOffset    int64
}

const checkpointFileSize = 4096

func openCheckpoint(fs vfs.FS, path string) (*checkpoint, error) {
	f, err := fs.OpenFile(path, os.O_RDWR|os.O_CREATE)
	if err != nil {
		return nil, err
	}
	c := &checkpoint{file: f}
	var b [40]byte
	if n, _ := f.ReadAt(b[:], 0); n == len(b) {
		be := binary.BigEndian
		c.physicMsgTimestamp = int64(be.Uint64(b[0:]))
		c.logicsMsgTimestamp = int64(be.Uint64(b[8:]))
		c.indexMsgTimestamp = int64(be.Uint64(b[16:]))
		c.masterFlushedOffset = int64(be.Uint64(b[24:]))
		c.confirmPhyOffset = int64(be.Uint64(b[32:]))
	}
	if size, _ := f.Size(); size < checkpointFileSize {
		if err := f.Truncate(checkpointFileSize); err != nil {
			f.Close()
			return nil, err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, err
		}
		if err := fs.SyncDir(filepath.Dir(path)); err != nil {
			f.Close()
			return nil, err
		}
	}
	return c, nil
}

// minTimestamp is where abnormal recovery may start (Java getMinTimestamp /
// getMinTimestampIndex).
func (c *checkpoint) minTimestamp(withIndex bool) int64 {
	m := min(c.physicMsgTimestamp, c.logicsMsgTimestamp)
	if withIndex {
		m = min(m, c.indexMsgTimestamp)
	}
	m -= 3000
	if m < 0 {
		m = 0
	}
	return m
}

func (c *checkpoint) flush() error {
	var b [40]byte
	be := binary.BigEndian
	be.PutUint64(b[0:], uint64(c.physicMsgTimestamp))
	be.PutUint64(b[8:], uint64(c.logicsMsgTimestamp))
	be.PutUint64(b[16:], uint64(c.indexMsgTimestamp))
	be.PutUint64(b[24:], uint64(c.masterFlushedOffset))
	be.PutUint64(b[32:], uint64(c.confirmPhyOffset))
	if _, err := c.file.WriteAt(b[:], 0); err != nil {
		return err
	}
	return c.file.Sync()
}

// lockFile takes the store's lock file. On the OS filesystem it is also
// flock(2)ed so a second broker on the same directory fails with ErrLocked.
func lockFile(fs vfs.FS, path string) (vfs.File, error) {
	f, err := fs.OpenFile(path, os.O_RDWR|os.O_CREATE)
	if err != nil {
		return nil, err
	}
	if fd, ok := f.(interface{ Fd() uintptr }); ok {
		if err := syscall.Flock(int(fd.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, ErrLocked
			}
			return nil, err
		}
	}
	return f, nil
}

// osDiskUsedRatio is the default Config.DiskUsedRatio.
func osDiskUsedRatio(dir string) float64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil || st.Blocks == 0 {
		return 0
	}
	return float64(st.Blocks-st.Bfree) / float64(st.Blocks)
}

func osDiskCapacity(dir string) (total, free uint64) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0
	}
	return st.Blocks * uint64(st.Bsize), st.Bavail * uint64(st.Bsize)
}
