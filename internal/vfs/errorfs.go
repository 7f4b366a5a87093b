package vfs

import "errors"

// ErrInjected is the error ErrorFS returns when its Injector fires.
var ErrInjected = errors.New("vfs: injected error")

// Op names the operations an Injector sees.
type Op string

const (
	OpOpen     Op = "open"
	OpWrite    Op = "write"
	OpRead     Op = "read"
	OpSync     Op = "sync"
	OpTruncate Op = "truncate"
	OpRemove   Op = "remove"
	OpRename   Op = "rename"
	OpSyncDir  Op = "syncdir"
)

// Injector decides whether an operation fails; return nil to let it through.
// Tests build injectors from a seeded generator or an operation counter.
type Injector func(op Op, path string) error

// ErrorFS wraps an FS and fails operations chosen by Inject.
type ErrorFS struct {
	FS
	Inject Injector
}

func (e *ErrorFS) check(op Op, path string) error {
	if e.Inject == nil {
		return nil
	}
	return e.Inject(op, path)
}

func (e *ErrorFS) OpenFile(name string, flag int) (File, error) {
	if err := e.check(OpOpen, name); err != nil {
		return nil, err
	}
	f, err := e.FS.OpenFile(name, flag)
	if err != nil {
		return nil, err
	}
	return &errorFile{File: f, fs: e}, nil
}

func (e *ErrorFS) Remove(name string) error {
	if err := e.check(OpRemove, name); err != nil {
		return err
	}
	return e.FS.Remove(name)
}

func (e *ErrorFS) Rename(o, n string) error {
	if err := e.check(OpRename, o); err != nil {
		return err
	}
	return e.FS.Rename(o, n)
}

func (e *ErrorFS) SyncDir(dir string) error {
	if err := e.check(OpSyncDir, dir); err != nil {
		return err
	}
	return e.FS.SyncDir(dir)
}

type errorFile struct {
	File
	fs *ErrorFS
}

func (f *errorFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.fs.check(OpWrite, f.Name()); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

func (f *errorFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.fs.check(OpRead, f.Name()); err != nil {
		return 0, err
	}
	return f.File.ReadAt(p, off)
}

func (f *errorFile) Sync() error {
	if err := f.fs.check(OpSync, f.Name()); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *errorFile) Truncate(size int64) error {
	if err := f.fs.check(OpTruncate, f.Name()); err != nil {
		return err
	}
	return f.File.Truncate(size)
}
