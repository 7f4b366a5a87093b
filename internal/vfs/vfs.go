package vfs

import (
	"errors"
	"io"
	"os"
	"path/filepath"
)

// File is the subset of *os.File the stores use. ReadAt/WriteAt are the only
// data paths: stores address files by position and never share a seek cursor.
type File interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
	// Sync makes everything written so far survive a crash.
	Sync() error
	// Truncate sets the file's size (growing fills with zeros).
	Truncate(size int64) error
	// Size is the current size, including unsynced writes.
	Size() (int64, error)
	Name() string
}

// FS is a filesystem. Paths are slash-or-OS separated; implementations clean them.
type FS interface {
	// OpenFile opens or creates; flag is os.O_* (O_RDWR, O_CREATE, O_EXCL, O_TRUNC).
	OpenFile(name string, flag int) (File, error)
	Remove(name string) error
	// Rename replaces newname atomically if it exists.
	Rename(oldname, newname string) error
	MkdirAll(dir string) error
	// ReadDir lists the names (not paths) in dir, sorted.
	ReadDir(dir string) ([]string, error)
	Stat(name string) (size int64, isDir bool, err error)
	// SyncDir makes directory entries (create, rename, remove) durable.
	SyncDir(dir string) error
}

// ErrNotExist is returned (wrapped) for a missing file; errors.Is(err, os.ErrNotExist) also holds.
var ErrNotExist = os.ErrNotExist

// ReadFile reads a whole file.
func ReadFile(fs FS, name string) ([]byte, error) {
	f, err := fs.OpenFile(name, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n, err := f.Size()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf, nil
}

// WriteFileAtomic writes data to name through a temporary file, fsync and
// rename, then syncs the directory: after a crash name holds either the old or
// the new contents, never a mix.
func WriteFileAtomic(fs FS, name string, data []byte) error {
	tmp := name + ".tmp"
	f, err := fs.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := fs.Rename(tmp, name); err != nil {
		return err
	}
	return fs.SyncDir(filepath.Dir(name))
}

// Exists reports whether name exists.
func Exists(fs FS, name string) bool {
	_, _, err := fs.Stat(name)
	return err == nil
}
