package logstore

import (
	"bytes"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/rmqd/rmqd/dledger"
	"github.com/rmqd/rmqd/internal/vfs"
)

// TestZeroFillNeverOverwritesEntries: a batch that reaches into the chunk
// the filler is zeroing waits for that write before writing its entries,
// so the zeros land first and the entries survive.
func TestZeroFillNeverOverwritesEntries(t *testing.T) {
	cfg := testConfig(t)
	cfg.DataFileSize = 1 << 20
	cfg.ZeroFillAhead = 256 << 10 // 32 KiB chunks
	picked := make(chan [2]int64, 1)
	release := make(chan struct{})
	first := true
	cfg.fillHook = func(lo, hi int64) { // the filler goroutine only
		if first {
			first = false
			picked <- [2]int64{lo, hi}
			<-release
		}
	}
	mem := vfs.NewMem()
	s := mustOpen(t, mem, cfg)
	rng := rand.New(rand.NewPCG(3, 4))
	var m model
	es, _ := batch(s.FileLayout, s.End(), 0, 3, 1, rng, 100, 200)
	mustNotErr(t, s.Append(es), "append")
	m.append(es)

	var chunk [2]int64
	select {
	case chunk = <-picked:
	case <-time.After(10 * time.Second):
		t.Fatal("the filler did not start on the new data file")
	}
	if chunk[0] <= s.End() {
		t.Fatalf("filler picked [%d, %d) at or below the end %d", chunk[0], chunk[1], s.End())
	}
	// Entries from the end to past the middle of the chunk being zeroed.
	var big []dledger.Entry
	for end := s.End(); end < (chunk[0]+chunk[1])/2; {
		var es []dledger.Entry
		es, end = batch(s.FileLayout, end, s.LastIndex()+1+int64(len(big)), 1, 1, rng, 1000, 1000)
		big = append(big, es...)
	}
	done := make(chan error, 1)
	go func() { done <- s.Append(big) }()
	select {
	case err := <-done:
		t.Fatalf("append over the chunk being zeroed returned (%v) before the zeroing ended", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	mustNotErr(t, <-done, "append")
	m.append(big)
	if w := s.fillWaits(); w != 1 {
		t.Fatalf("%d appends waited for the filler, want 1", w)
	}
	checkLog(t, s, m.entries)
	mustNotErr(t, s.Sync(), "sync")
	r := mustOpen(t, mem.CrashClone(nil), Config{DataFileSize: cfg.DataFileSize, IndexFileSize: cfg.IndexFileSize})
	checkLog(t, r, m.entries)
	r.Close()
	mustNotErr(t, s.Close(), "close")
}

func (s *Store) fillWaits() int {
	s.fill.mu.Lock()
	defer s.fill.mu.Unlock()
	return s.fill.waits
}

func (s *Store) fillState() (target *file, filled int64) {
	s.fill.mu.Lock()
	defer s.fill.mu.Unlock()
	return s.fill.target, s.fill.filled
}

// TestZeroFillSurvivesPowerLoss: with the filler zeroing ahead of appends,
// truncations and rolls, a power loss leaves a data tail that is partly the
// entries written after the last Sync and partly the filler's synced zeros,
// and index files missing any unsynced sectors. Open must return every
// synced entry, nothing that was not appended, and continue.
func TestZeroFillSurvivesPowerLoss(t *testing.T) {
	torn, fills := 0, 0
	for seed := uint64(1); seed <= 40; seed++ {
		cfg := testConfig(t)
		cfg.Logger = nil
		cfg.DataFileSize = 16 << 10
		cfg.ZeroFillAhead = 8 << 10 // 4 KiB chunks
		if seed%3 == 0 {
			cfg.IndexFileSize = SlotSize * 16
		}
		live := vfs.NewMem()
		s := mustOpen(t, live, cfg)
		rng := rand.New(rand.NewPCG(seed, 77))
		var m model
		synced := 0 // m.entries[:synced] were synced
		term := int64(1)
		for op, ops := 0, 30+rng.IntN(120); op < ops; op++ {
			if at := randomAppend(t, s, &m, &term, rng, 600); at >= 0 {
				synced = min(synced, int(at-m.entries[0].Index))
			}
			if rng.IntN(3) == 0 {
				mustNotErr(t, s.Sync(), "seed %d sync", seed)
				synced = len(m.entries)
			}
			if rng.IntN(4) == 0 {
				time.Sleep(time.Duration(rng.IntN(200)) * time.Microsecond) // let the filler run
			}
		}
		if _, filled := s.fillState(); filled > 0 {
			fills++
		}
		crashed := live.CrashClone(nil)
		// Data files: the synced bytes, then a random prefix of the bytes
		// written since (a torn write), the filler's synced zeros after it.
		if tornTail(t, live, crashed, filepath.Join(testDir, "data"), rng) {
			torn++
		}
		loseIndexSectors(t, live, crashed, rng)

		r, err := Open(crashed, testDir, cfg)
		mustNotErr(t, err, "seed %d: open after power loss", seed)
		n := prefixLen(t, r, m.entries)
		if n < synced {
			t.Fatalf("seed %d: recovered %d entries, %d were synced", seed, n, synced)
		}
		got := m.entries[:n]
		if n > 0 {
			checkSlotsOnDisk(t, crashed, cfg, got)
		}
		// The log continues, and a second power loss keeps what it synced.
		var es []dledger.Entry
		if n == 0 {
			es, _ = batch(r.FileLayout, r.End(), m.entries[0].Index, 5, term, rng, 0, 600)
		} else {
			es, _ = batch(r.FileLayout, r.End(), r.LastIndex()+1, 5, term, rng, 0, 600)
		}
		mustNotErr(t, r.Append(es), "seed %d: append after recovery", seed)
		mustNotErr(t, r.Sync(), "seed %d: sync after recovery", seed)
		got = append(append([]dledger.Entry(nil), got...), es...)
		again := crashed.CrashClone(nil)
		mustNotErr(t, r.Close(), "seed %d: close", seed)
		mustNotErr(t, s.Close(), "seed %d: close", seed)
		r = mustOpen(t, again, cfg)
		checkLog(t, r, got)
		r.Close()
	}
	if torn == 0 || fills == 0 {
		t.Fatalf("%d runs filled ahead, %d power losses kept part of an unsynced tail: the test proves nothing", fills, torn)
	}
}

// tornTail replaces, in every file of dir in crashed, the bytes after the
// first one that differs from live by a random-length prefix of live's
// bytes there. It reports whether it kept any unsynced byte.
func tornTail(t *testing.T, live, crashed *vfs.MemFS, dir string, rng *rand.Rand) bool {
	t.Helper()
	kept := false
	rewriteSurvivors(t, live, crashed, dir, func(lb, cb []byte, cf vfs.File) {
		d := 0
		for d < min(len(lb), len(cb)) && lb[d] == cb[d] {
			d++
		}
		if d >= len(lb) {
			return
		}
		k := rng.IntN(len(lb) - d + 1)
		cf.WriteAt(lb[d:d+k], int64(d))
		kept = kept || !bytes.Equal(lb[d:d+k], make([]byte, k))
	})
	return kept
}
