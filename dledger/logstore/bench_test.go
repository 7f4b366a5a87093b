package logstore

import (
	"fmt"
	"math"
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
	cfg := Config{DataFileSize: 3 << 20, IndexFileSize: 32 << 10}
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
	// Crash path: no clean mark, garbage 2 MiB after the end of the log
	// (chunks larger than the scan window), torn last entry.
	os.Remove(filepath.Join(dir, "checkpoint"))
	last := es[len(es)-1]
	f, err := os.OpenFile(filepath.Join(dir, "data", fileName(last.Pos-last.Pos%cfg.DataFileSize)), os.O_RDWR, 0)
	mustNotErr(t, err, "open data")
	junk := make([]byte, 2<<20)
	for i := range junk {
		junk[i] = byte(i*31 + 7)
	}
	off := last.Pos%cfg.DataFileSize + HeaderSize
	f.WriteAt(junk[:min(int64(len(junk)), cfg.DataFileSize-off)], off)
	f.Close()
	s, err = Open(vfs.Default, dir, cfg)
	mustNotErr(t, err, "reopen after crash")
	checkLog(t, s, es[:len(es)-1])
	s.Close()
}

// benchStore opens a store under $LOGSTORE_BENCH_DIR (for example /dev/shm
// to take the disk out of the figures) or a temporary directory.
func benchStore(b *testing.B) *Store {
	return benchStoreCfg(b, Config{DataFileSize: 256 << 20})
}

func benchStoreCfg(b *testing.B, cfg Config) *Store {
	base := b.TempDir()
	if d := os.Getenv("LOGSTORE_BENCH_DIR"); d != "" {
		var err error
		if base, err = os.MkdirTemp(d, "logstore-bench"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(base) })
	}
	dir := filepath.Join(base, "dledger-n0")
	s, err := Open(vfs.Default, dir, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// appendBench appends len(es) entries of body after end and next.
func appendBench(b *testing.B, s *Store, es []dledger.Entry, body []byte, end, next int64) (int64, int64) {
	for j := range es {
		es[j] = dledger.Entry{Index: next, Term: 1, Body: body}
		es[j].Pos, end = s.Place(end, es[j].Size())
		next++
	}
	if err := s.Append(es); err != nil {
		b.Fatal(err)
	}
	return end, next
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
				end, next = appendBench(b, s, es, body, end, next)
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

// BenchmarkSync measures one group commit: append 16 × 1 KiB, then Sync,
// into a new store, with and without zero fill ahead (Config.ZeroFillAhead).
func BenchmarkSync(b *testing.B) {
	for _, fill := range []int64{0, 64 << 20} {
		b.Run(fmt.Sprintf("zerofill=%dMiB", fill>>20), func(b *testing.B) {
			s := benchStoreCfg(b, Config{DataFileSize: 256 << 20, ZeroFillAhead: fill})
			body := make([]byte, 1024)
			es := make([]dledger.Entry, 16)
			end, next := s.End(), int64(0)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				end, next = appendBench(b, s, es, body, end, next)
				if err := s.Sync(); err != nil {
					b.Fatal(err)
				}
			}
		})
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
		got, err := s.Entries(lo, lo+64, math.MaxInt64)
		if err != nil || len(got) != 64 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/entry")
}

// BenchmarkOpen measures recovery of 3 data files of 64 MiB full of 1 KiB
// entries: after a clean Close, and after a crash (no clean mark: the zero
// tail of the last file is scanned too).
func BenchmarkOpen(b *testing.B) {
	base := b.TempDir()
	if d := os.Getenv("LOGSTORE_BENCH_DIR"); d != "" {
		base, _ = os.MkdirTemp(d, "logstore-bench")
		defer os.RemoveAll(base)
	}
	dir := filepath.Join(base, "dledger-n0")
	cfg := Config{DataFileSize: 64 << 20}
	s, err := Open(vfs.Default, dir, cfg)
	if err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 1024)
	var es []dledger.Entry
	end := s.End()
	for i := int64(0); end < 2*cfg.DataFileSize+cfg.DataFileSize/4; i++ {
		e := dledger.Entry{Index: i, Term: 1, Body: body}
		e.Pos, end = s.Place(end, e.Size())
		es = append(es, e)
		if len(es) == 256 {
			if err := s.Append(es); err != nil {
				b.Fatal(err)
			}
			es = es[:0]
		}
	}
	s.Close()
	for _, crash := range []bool{false, true} {
		b.Run(fmt.Sprintf("crash=%v", crash), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if crash {
					os.Remove(filepath.Join(dir, "checkpoint"))
				}
				s, err := Open(vfs.Default, dir, cfg)
				if err != nil {
					b.Fatal(err)
				}
				s.Close()
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/open")
		})
	}
}
