package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/rmqd/rmqd/internal/vfs"
)

// mappedFile is one fixed-size file of a commitlog or consume queue, named by
// the offset of its first byte (20 decimal digits). RocketMQ maps these files;
// we use pread/pwrite through vfs instead.
type mappedFile struct {
	file vfs.File
	path string
	from int64 // offset of the file's first byte in the queue's offset space
	size int64 // preallocated size (the queue's file size)

	// firstStoreTimestamp caches the STORETIMESTAMP of a commitlog file's
	// first record (0 = not known yet); retention and recovery use it.
	firstStoreTimestamp atomic.Int64
	// lastStoreTimestamp: its last record's, for a sealed classic file
	// below an upgrade's divide (retention, 0 = not known yet).
	lastStoreTimestamp atomic.Int64
}

func fileName(offset int64) string { return fmt.Sprintf("%020d", offset) }

// readAt reads within the file at a file-relative position. A read that runs
// into the end of the file returns what it got with io.EOF.
func (f *mappedFile) readAt(p []byte, pos int64) (int, error) {
	n, err := f.file.ReadAt(p, pos)
	if err == io.EOF && n == len(p) {
		err = nil
	}
	return n, err
}

// mappedFileQueue is a directory of mappedFiles covering a contiguous offset
// range. The file list is guarded by mu; file contents are not.
type mappedFileQueue struct {
	fs       vfs.FS
	dir      string
	fileSize int64

	mu struct {
		sync.RWMutex
		files []*mappedFile // ascending by from, contiguous
	}
}

func newMappedFileQueue(fs vfs.FS, dir string, fileSize int64) *mappedFileQueue {
	return &mappedFileQueue{fs: fs, dir: dir, fileSize: fileSize}
}

// load opens every 20-digit file of the directory. Files shorter than
// fileSize (a preallocation lost in a crash) are extended with zeros; files
// after a gap in the sequence are an error.
func (q *mappedFileQueue) load() error {
	names, err := q.fs.ReadDir(q.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	type found struct {
		from, size int64
		path       string
	}
	var list []found
	for _, name := range names {
		if len(name) != 20 {
			continue
		}
		from, err := strconv.ParseInt(name, 10, 64)
		if err != nil {
			continue
		}
		path := filepath.Join(q.dir, name)
		size, isDir, err := q.fs.Stat(path)
		if err != nil || isDir {
			continue
		}
		list = append(list, found{from, size, path})
	}
	// Check everything before touching anything: contiguous names, every
	// file of the configured size except that the newest may be short (its
	// preallocation lost in a crash).
	for i, f := range list {
		if i > 0 && list[i-1].from+q.fileSize != f.from {
			return fmt.Errorf("%w: %s: file %s does not follow %s (file size changed?)", ErrCorrupt, q.dir,
				fileName(f.from), fileName(list[i-1].from))
		}
		if f.size > q.fileSize || (f.size < q.fileSize && i != len(list)-1) {
			return fmt.Errorf("%w: %s is %d bytes, want %d (file size changed?)", ErrCorrupt, f.path, f.size, q.fileSize)
		}
	}
	var files []*mappedFile
	for _, f := range list {
		fl, err := q.fs.OpenFile(f.path, os.O_RDWR)
		if err != nil {
			closeAll(files)
			return err
		}
		if f.size < q.fileSize {
			if err := fl.Truncate(q.fileSize); err != nil {
				fl.Close()
				closeAll(files)
				return err
			}
		}
		files = append(files, &mappedFile{file: fl, path: f.path, from: f.from, size: q.fileSize})
	}
	q.mu.Lock()
	q.mu.files = files
	q.mu.Unlock()
	return nil
}

func closeAll(files []*mappedFile) {
	for _, f := range files {
		f.file.Close()
	}
}

// create makes the file starting at from, preallocated (sparse) to fileSize,
// synced with its directory entry, and appends it to the queue.
func (q *mappedFileQueue) create(from int64) (*mappedFile, error) {
	if err := q.fs.MkdirAll(q.dir); err != nil {
		return nil, err
	}
	path := filepath.Join(q.dir, fileName(from))
	f, err := q.fs.OpenFile(path, os.O_RDWR|os.O_CREATE)
	if err != nil {
		return nil, err
	}
	if err := f.Truncate(q.fileSize); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	if err := q.fs.SyncDir(q.dir); err != nil {
		f.Close()
		return nil, err
	}
	if q.first() == nil {
		// Possibly a new directory (consumequeue/<topic>/<queueId>): make
		// its entry, and its parent's, survive a power loss too.
		parent := filepath.Dir(q.dir)
		if err := q.fs.SyncDir(parent); err != nil {
			f.Close()
			return nil, err
		}
		if err := q.fs.SyncDir(filepath.Dir(parent)); err != nil {
			f.Close()
			return nil, err
		}
	}
	mf := &mappedFile{file: f, path: path, from: from, size: q.fileSize}
	q.mu.Lock()
	q.mu.files = append(q.mu.files, mf)
	q.mu.Unlock()
	return mf, nil
}

// snapshot returns the current file list (do not modify).
func (q *mappedFileQueue) snapshot() []*mappedFile {
	q.mu.RLock()
	defer q.mu.RUnlock()
	return q.mu.files
}

func (q *mappedFileQueue) first() *mappedFile {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if len(q.mu.files) == 0 {
		return nil
	}
	return q.mu.files[0]
}

func (q *mappedFileQueue) last() *mappedFile {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if len(q.mu.files) == 0 {
		return nil
	}
	return q.mu.files[len(q.mu.files)-1]
}

// find returns the file holding offset, or nil.
func (q *mappedFileQueue) find(offset int64) *mappedFile {
	q.mu.RLock()
	defer q.mu.RUnlock()
	files := q.mu.files
	if len(files) == 0 || offset < files[0].from {
		return nil
	}
	i := int((offset - files[0].from) / q.fileSize)
	if i >= len(files) {
		return nil
	}
	return files[i]
}

// minOffset is the first file's start, -1 when empty.
func (q *mappedFileQueue) minOffset() int64 {
	if f := q.first(); f != nil {
		return f.from
	}
	return -1
}

// truncateFrom discards everything at and after offset: later files are
// removed, the file holding offset is zeroed from there (Truncate down and up
// again: cheap and sparse). Stale bytes past the end must not survive, or a
// later recovery could mistake them for records.
func (q *mappedFileQueue) truncateFrom(offset int64) error {
	q.mu.Lock()
	files := q.mu.files
	var keep, drop []*mappedFile
	for _, f := range files {
		if f.from+q.fileSize <= offset || (f.from <= offset && offset < f.from+q.fileSize) {
			keep = append(keep, f)
		} else if f.from >= offset {
			drop = append(drop, f)
		}
	}
	q.mu.files = keep
	q.mu.Unlock()
	for _, f := range drop {
		f.file.Close()
		if err := q.fs.Remove(f.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if len(drop) > 0 {
		if err := q.fs.SyncDir(q.dir); err != nil {
			return err
		}
	}
	if len(keep) > 0 {
		f := keep[len(keep)-1]
		if pos := offset - f.from; pos < q.fileSize {
			if err := f.file.Truncate(pos); err != nil {
				return err
			}
			if err := f.file.Truncate(q.fileSize); err != nil {
				return err
			}
			if err := f.file.Sync(); err != nil {
				return err
			}
		}
	}
	return nil
}

// removeFiles drops the given leading files (they must be the first ones).
func (q *mappedFileQueue) removeFiles(n int) ([]*mappedFile, error) {
	q.mu.Lock()
	if n > len(q.mu.files) {
		n = len(q.mu.files)
	}
	drop := q.mu.files[:n:n]
	q.mu.files = q.mu.files[n:]
	q.mu.Unlock()
	var firstErr error
	for _, f := range drop {
		f.file.Close()
		if err := q.fs.Remove(f.path); err != nil && !errors.Is(err, os.ErrNotExist) && firstErr == nil {
			firstErr = err
		}
	}
	if len(drop) > 0 {
		if err := q.fs.SyncDir(q.dir); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return drop, firstErr
}

// destroy closes and removes every file and the directory.
func (q *mappedFileQueue) destroy() error {
	_, err := q.removeFiles(1 << 30)
	q.fs.Remove(q.dir)
	return err
}

func (q *mappedFileQueue) close() {
	q.mu.Lock()
	closeAll(q.mu.files)
	q.mu.files = nil
	q.mu.Unlock()
}
