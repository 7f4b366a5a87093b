package logstore

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/rmqd/rmqd/internal/vfs"
)

// TestAppendWritesOSFilesRaw: on the OS filesystem, the data and index files
// Append writes (created by Append or found by Open) carry a rawWriter, so
// Append's pwrites never enter the runtime's syscall state (see
// rawwrite_linux.go); TestOSFiles checks what they write.
func TestAppendWritesOSFilesRaw(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dledger-n0")
	cfg := Config{DataFileSize: 1 << 20, IndexFileSize: 32 << 10}
	rng := rand.New(rand.NewPCG(3, 4))
	s, err := Open(vfs.Default, dir, cfg)
	mustNotErr(t, err, "open")
	es, _ := batch(s.FileLayout, 0, 0, 1500, 1, rng, 500, 1500)
	mustNotErr(t, s.Append(es[:1000]), "append")
	mustNotErr(t, s.Close(), "close")
	s, err = Open(vfs.Default, dir, cfg) // the files found by recovery
	mustNotErr(t, err, "reopen")
	defer s.Close()
	mustNotErr(t, s.Append(es[1000:]), "append after reopen")
	checkLog(t, s, es)
	s.mu.RLock()
	files := append(append([]*file(nil), s.mu.data...), s.mu.index...)
	s.mu.RUnlock()
	if len(files) < 3 {
		t.Fatalf("%d files", len(files))
	}
	for _, f := range files {
		if f.raw == nil {
			t.Fatalf("%s: Append writes it without the raw writer", f.path)
		}
	}
}

// TestRawWriterWritesAtOffset: all of b lands at off, without allocating,
// and a closed file is an error, not a write to a reused descriptor.
func TestRawWriterWritesAtOffset(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	vf, err := vfs.Default.OpenFile(path, os.O_RDWR|os.O_CREATE)
	mustNotErr(t, err, "create")
	w := newRawWriter(vf)
	if w == nil {
		t.Fatal("no raw writer for an OS file")
	}
	b := make([]byte, 300<<10)
	for i := range b {
		b[i] = byte(i*7 + 1)
	}
	if n, err := w.WriteAt(b, 5000); err != nil || n != len(b) {
		t.Fatalf("WriteAt: %d, %v", n, err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := w.WriteAt(b[:4096], 1000); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per WriteAt", allocs)
	}
	got, err := os.ReadFile(path)
	mustNotErr(t, err, "read")
	want := append(make([]byte, 5000), b...)
	copy(want[1000:], b[:4096])
	if !bytes.Equal(got, want) {
		t.Fatalf("file holds %d bytes, not what was written", len(got))
	}
	mustNotErr(t, vf.Close(), "close")
	if _, err := w.WriteAt(b[:10], 0); err == nil {
		t.Fatal("WriteAt on a closed file succeeded")
	}
}
