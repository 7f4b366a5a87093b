package logstore

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/rmqd/rmqd/dledger"
	"github.com/rmqd/rmqd/internal/vfs"
)

// TestOSFiles runs the store on the real filesystem: files have exactly the
// configured size and the log survives a reopen.
func TestOSFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dledger-n0")
	cfg := Config{DataFileSize: 1 << 20, IndexFileSize: 32 << 10}
	s, err := Open(vfs.Default, dir, cfg)
	mustNotErr(t, err, "open")
	rng := rand.New(rand.NewPCG(1, 2))
	es, _ := batch(s.FileLayout, 0, 0, 3000, 1, rng, 500, 1500)
	for i := 0; i < len(es); i += 100 {
		mustNotErr(t, s.Append(es[i:i+100]), "append")
	}
	mustNotErr(t, s.SetHardState(dledger.HardState{Term: 1, VotedFor: "n0"}), "hard state")
	mustNotErr(t, s.Sync(), "sync")
	mustNotErr(t, s.Close(), "close")
	for _, sub := range []string{"data", "index"} {
		ents, _ := os.ReadDir(filepath.Join(dir, sub))
		if len(ents) == 0 {
			t.Fatalf("no %s files", sub)
		}
		for _, e := range ents {
			info, _ := e.Info()
			want := cfg.DataFileSize
			if sub == "index" {
				want = cfg.IndexFileSize
			}
			if info.Size() != want || len(e.Name()) != 20 {
				t.Fatalf("%s/%s: %d bytes", sub, e.Name(), info.Size())
			}
		}
	}
	s, err = Open(vfs.Default, dir, cfg)
	mustNotErr(t, err, "reopen")
	checkLog(t, s, es)
	s.Close()
}

// benchStore opens a store under $LOGSTORE_BENCH_DIR (for example /dev/shm
// to take the disk out of the figures) or a temporary directory.
func benchStore(b *testing.B) *Store {
	base := b.TempDir()
	if d := os.Getenv("LOGSTORE_BENCH_DIR"); d != "" {
		var err error
		if base, err = os.MkdirTemp(d, "logstore-bench"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(base) })
	}
	dir := filepath.Join(base, "dledger-n0")
	s, err := Open(vfs.Default, dir, Config{DataFileSize: 256 << 20})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkAppend appends 1 KiB entries in batches on the OS filesystem
// (page cache; no fsync).
func BenchmarkAppend(b *testing.B) {
	for _, n := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			s := benchStore(b)
			body := make([]byte, 1024)
			es := make([]dledger.Entry, n)
			end, next := s.End(), int64(0)
			b.ReportAllocs()
			b.SetBytes(int64(n) * (1024 + HeaderSize))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j := range es {
					es[j] = dledger.Entry{Index: next, Term: 1, Body: body}
					es[j].Pos, end = s.Place(end, es[j].Size())
					next++
				}
				if err := s.Append(es); err != nil {
					b.Fatal(err)
				}
				if i%1024 == 1023 {
					b.StopTimer()
					s.Sync()
					b.StartTimer()
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/entry")
		})
	}
}

// BenchmarkSync measures one group commit: append 16 × 1 KiB, then Sync.
func BenchmarkSync(b *testing.B) {
	s := benchStore(b)
	body := make([]byte, 1024)
	es := make([]dledger.Entry, 16)
	end, next := s.End(), int64(0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range es {
			es[j] = dledger.Entry{Index: next, Term: 1, Body: body}
			es[j].Pos, end = s.Place(end, es[j].Size())
			next++
		}
		if err := s.Append(es); err != nil {
			b.Fatal(err)
		}
		if err := s.Sync(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEntries reads 64 × 1 KiB entries per call.
func BenchmarkEntries(b *testing.B) {
	s := benchStore(b)
	body := make([]byte, 1024)
	const total = 1 << 14
	var es []dledger.Entry
	end := s.End()
	for i := int64(0); i < total; i++ {
		e := dledger.Entry{Index: i, Term: 1, Body: body}
		e.Pos, end = s.Place(end, e.Size())
		es = append(es, e)
	}
	if err := s.Append(es); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(64 * (1024 + HeaderSize))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		lo := int64(i*64) % (total - 64)
		got, err := s.Entries(lo, lo+64, 0)
		if err != nil || len(got) != 64 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/entry")
}
