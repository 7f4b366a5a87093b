package vfs

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"testing"
)

func write(t *testing.T, fs FS, name string, data []byte, off int64) File {
	t.Helper()
	f, err := fs.OpenFile(name, os.O_RDWR|os.O_CREATE)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestMemCrashKeepsOnlySynced(t *testing.T) {
	m := NewMem()
	if err := m.MkdirAll("/d"); err != nil {
		t.Fatal(err)
	}
	f := write(t, m, "/d/a", []byte("hello"), 0)
	// Not yet in the directory durably: a power loss forgets the file.
	if c := m.CrashClone(nil); Exists(c, "/d/a") {
		t.Fatal("file survived without SyncDir")
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := m.SyncDir("/d"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte(" world"), 5); err != nil {
		t.Fatal(err)
	}
	c := m.CrashClone(nil)
	got, err := ReadFile(c, "/d/a")
	if err != nil || string(got) != "hello" {
		t.Fatalf("after power loss got %q %v, want only synced bytes", got, err)
	}
	// kill -9 keeps the page cache.
	got, _ = ReadFile(m.ProcessCrashClone(), "/d/a")
	if string(got) != "hello world" {
		t.Fatalf("after process crash got %q", got)
	}
	// A torn tail keeps a prefix of the unsynced bytes, never other bytes.
	for seed := uint64(0); seed < 20; seed++ {
		got, _ := ReadFile(m.CrashClone(rand.New(rand.NewPCG(seed, 1))), "/d/a")
		if !bytes.HasPrefix([]byte("hello world"), got) || len(got) < 5 {
			t.Fatalf("seed %d: torn clone %q is not a prefix", seed, got)
		}
	}
}

func TestMemRenameNeedsSyncDir(t *testing.T) {
	m := NewMem()
	m.MkdirAll("/d")
	if err := WriteFileAtomic(m, "/d/x", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(m, "/d/x", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(m.CrashClone(nil), "/d/x")
	if err != nil || string(got) != "v2" {
		t.Fatalf("got %q %v", got, err)
	}
	if err := m.Rename("/d/x", "/d/y"); err != nil {
		t.Fatal(err)
	}
	c := m.CrashClone(nil)
	if !Exists(c, "/d/x") || Exists(c, "/d/y") {
		t.Fatal("rename without SyncDir must not be durable")
	}
}

func TestMemFileOps(t *testing.T) {
	m := NewMem()
	if _, err := m.OpenFile("/nodir/a", os.O_RDWR|os.O_CREATE); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("create in missing dir: %v", err)
	}
	m.MkdirAll("/d/e")
	f := write(t, m, "/d/e/a", []byte("abc"), 10)
	if n, _ := f.Size(); n != 13 {
		t.Fatalf("size %d", n)
	}
	if err := f.Truncate(4); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	n, err := f.ReadAt(buf, 0)
	if n != 4 || err == nil {
		t.Fatalf("short read n=%d err=%v", n, err)
	}
	names, _ := m.ReadDir("/d")
	if len(names) != 1 || names[0] != "e" {
		t.Fatalf("readdir %v", names)
	}
	if _, err := m.OpenFile("/d/e/a", os.O_RDWR|os.O_CREATE|os.O_EXCL); !errors.Is(err, os.ErrExist) {
		t.Fatalf("O_EXCL: %v", err)
	}
	f.Close()
	if _, err := f.WriteAt([]byte("x"), 0); err == nil {
		t.Fatal("write after close")
	}
	if err := m.Remove("/d/e"); err == nil {
		t.Fatal("removed a non-empty dir")
	}
	if err := m.Remove("/d/e/a"); err != nil {
		t.Fatal(err)
	}
}

func TestErrorFSInjects(t *testing.T) {
	var n int
	e := &ErrorFS{FS: NewMem(), Inject: func(op Op, path string) error {
		if op == OpSync {
			n++
			if n == 2 {
				return ErrInjected
			}
		}
		return nil
	}}
	f := write(t, e, "/a", []byte("x"), 0)
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); !errors.Is(err, ErrInjected) {
		t.Fatalf("second sync: %v", err)
	}
}

func TestOSFS(t *testing.T) {
	dir := t.TempDir()
	if err := WriteFileAtomic(Default, dir+"/f", []byte("data")); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(Default, dir+"/f")
	if err != nil || string(got) != "data" {
		t.Fatalf("got %q %v", got, err)
	}
	names, _ := Default.ReadDir(dir)
	if len(names) != 1 || names[0] != "f" {
		t.Fatalf("names %v", names)
	}
}
