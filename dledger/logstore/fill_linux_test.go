package logstore

import (
	"math/rand/v2"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rmqd/rmqd/internal/vfs"
)

// allocated is how many bytes of the file at path have disk blocks.
func allocated(t *testing.T, path string) int64 {
	t.Helper()
	var st syscall.Stat_t
	mustNotErr(t, syscall.Stat(path, &st), "stat %s", path)
	return st.Blocks * 512
}

// TestZeroFillAllocatesAhead: on the OS filesystem the filler gives the
// blocks after the end of the log disk space (zeros, synced) up to
// ZeroFillAhead, and no more, in a store's first data file and in the next
// one after a roll. A store without it leaves them sparse.
func TestZeroFillAllocatesAhead(t *testing.T) {
	const fileSize, window = 8 << 20, 2 << 20
	chunk := int64(window / 8)
	base := t.TempDir()
	open := func(name string, fill int64) *Store {
		s, err := Open(vfs.Default, filepath.Join(base, name), Config{DataFileSize: fileSize, IndexFileSize: 32 << 10, ZeroFillAhead: fill})
		mustNotErr(t, err, "open")
		t.Cleanup(func() { s.Close() })
		return s
	}
	plain, filled := open("plain", 0), open("filled", window)
	rng := rand.New(rand.NewPCG(5, 6))
	es, _ := batch(filled.FileLayout, 0, 0, 1000, 1, rng, 1000, 1000) // ~1 MiB
	for _, s := range []*Store{plain, filled} {
		mustNotErr(t, s.Append(es), "append")
		mustNotErr(t, s.Sync(), "sync")
	}
	dataPath := func(name string, start int64) string {
		return filepath.Join(base, name, "data", fileName(start))
	}
	if a := allocated(t, dataPath("plain", 0)); a > filled.End()+window/2 {
		t.Fatalf("without zero fill %d bytes allocated for a log of %d: the filesystem does not keep files sparse", a, filled.End())
	}
	// waitAhead waits until the file holding end has blocks up to
	// end+window (less the skipped first chunk) and checks it has no more.
	waitAhead := func(start, end int64) {
		t.Helper()
		want := min(end+window, start+fileSize) - start - chunk
		var a int64
		for i := 0; i < 1000; i++ {
			if a = allocated(t, dataPath("filled", start)); a >= want {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if a < want {
			t.Fatalf("file %d: %d bytes allocated for a log ending at %d, want at least %d", start, a, end, want)
		}
		if limit := end - start + window + 64<<10; a > limit {
			t.Fatalf("file %d: %d bytes allocated for a log ending at %d, want at most %d", start, a, end, limit)
		}
	}
	waitAhead(0, filled.End())

	// Roll into the second file: it is filled ahead too.
	end := filled.End()
	for end < fileSize+fileSize/8 {
		es, end = batch(filled.FileLayout, end, filled.LastIndex()+1, 512, 1, rng, 1000, 1000)
		mustNotErr(t, filled.Append(es), "append")
	}
	mustNotErr(t, filled.Sync(), "sync")
	waitAhead(fileSize, filled.End())
	if target, _ := filled.fillState(); target == nil || target.start != fileSize {
		t.Fatalf("filler target %v, want the second file", target)
	}
}
