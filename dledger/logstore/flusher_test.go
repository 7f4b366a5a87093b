package logstore

import (
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/rmqd/rmqd/dledger"
	"github.com/rmqd/rmqd/internal/vfs"
)

// TestConcurrentFlusher runs SyncIndex on a flusher goroutine while the
// driver appends: after SyncIndex returns i, a power loss keeps every entry
// up to i.
func TestConcurrentFlusher(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(t)
	cfg.Logger = nil
	s := mustOpen(t, fs, cfg)
	rng := rand.New(rand.NewPCG(21, 22))
	all, _ := batch(s.FileLayout, 0, 0, 3000, 1, rng, 0, 300)

	type snap struct {
		synced int64
		fs     *vfs.MemFS
	}
	var snaps []snap
	done := make(chan struct{})
	took := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			i, err := s.SyncIndex()
			if err != nil {
				t.Errorf("sync: %v", err)
				return
			}
			if len(snaps) < 40 {
				// Power loss with a random torn share of the unsynced bytes.
				snaps = append(snaps, snap{i, fs.CrashClone(rand.New(rand.NewPCG(uint64(len(snaps)), 3)))})
			}
			select {
			case took <- struct{}{}:
			default:
			}
		}
	}()
	for i := 0; i < len(all); {
		n := min(1+rng.IntN(8), len(all)-i)
		if err := s.Append(all[i : i+n]); err != nil {
			t.Fatal(err)
		}
		if i/250 != (i+n)/250 {
			<-took // make sure the flusher interleaves with the appends
		}
		i += n
	}
	close(done)
	wg.Wait()
	s.Close()
	if len(snaps) == 0 {
		t.Fatal("flusher never synced")
	}
	for _, sn := range snaps {
		r, err := Open(sn.fs, testDir, cfg)
		mustNotErr(t, err, "open snapshot")
		if r.LastIndex() < sn.synced {
			t.Fatalf("SyncIndex said %d, power loss kept up to %d", sn.synced, r.LastIndex())
		}
		if r.LastIndex() >= 0 {
			prefixLen(t, r, all)
		}
		r.Close()
	}
}

// TestFlusherWithTruncation races a flusher with truncation, reset and
// retention on the driver: no error, and the log is right at the end.
func TestFlusherWithTruncation(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(t)
	cfg.Logger = nil
	s := mustOpen(t, fs, cfg)
	rng := rand.New(rand.NewPCG(23, 24))
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := s.SyncIndex(); err != nil {
				t.Errorf("sync: %v", err)
				return
			}
		}
	}()
	var m model
	term := int64(1)
	for i := 0; i < 400; i++ {
		switch {
		case i%97 == 96:
			term++
			es, _ := batch(s.FileLayout, 0, s.FirstIndex(), 3, term, rng, 10, 100) // replace the whole log
			mustNotErr(t, s.Append(es), "reset")
			m.entries = nil
			m.append(es)
		case i%41 == 40:
			_, err := s.DeleteBefore(m.last() - 5)
			mustNotErr(t, err, "delete")
			m.entries = m.entries[s.FirstIndex()-m.entries[0].Index:]
		case i%7 == 6 && len(m.entries) > 4:
			at := m.last() - 2
			prev := m.entries[at-1-m.entries[0].Index]
			term++
			es, _ := batch(s.FileLayout, prev.Pos+prev.Size(), at, 4, term, rng, 10, 400)
			mustNotErr(t, s.Append(es), "truncate")
			m.append(es)
		default:
			first := s.LastIndex() + 1
			es, _ := batch(s.FileLayout, s.End(), first, 1+rng.IntN(5), term, rng, 10, 400)
			mustNotErr(t, s.Append(es), "append")
			m.append(es)
		}
	}
	close(done)
	wg.Wait()
	checkLog(t, s, m.entries)
	mustNotErr(t, s.Close(), "close")
	s = mustOpen(t, fs, cfg)
	checkLog(t, s, m.entries)
	s.Close()
	var _ dledger.LogStorage = s
}

// TestManyRollsWithoutSync appends many files' worth without Sync, then
// loses power: every file but the last was made whole (data and index) when
// the next one was created, so the recovered log reads back entirely.
func TestManyRollsWithoutSync(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		fs := vfs.NewMem()
		cfg := testConfig(t)
		cfg.Logger = nil
		s := mustOpen(t, fs, cfg)
		rng := rand.New(rand.NewPCG(seed, 5))
		all, _ := batch(s.FileLayout, 0, 0, 200+rng.IntN(200), 1, rng, 0, 400)
		for i := 0; i < len(all); {
			n := min(1+rng.IntN(10), len(all)-i)
			mustNotErr(t, s.Append(all[i:i+n]), "append")
			i += n
		}
		crashed := fs.CrashClone(rng)
		s.Close()
		r := mustOpen(t, crashed, cfg)
		n := prefixLen(t, r, all)
		// Everything before the last file survived.
		lastFile := all[len(all)-1].Pos - all[len(all)-1].Pos%cfg.DataFileSize
		if n < len(all) && all[n].Pos < lastFile {
			t.Fatalf("seed %d: lost entry %d at %d, before the last file (%d)", seed, all[n].Index, all[n].Pos, lastFile)
		}
		r.Close()
	}
}
