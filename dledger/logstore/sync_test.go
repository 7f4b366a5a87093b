package logstore

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/rmqd/rmqd/dledger"
	"github.com/rmqd/rmqd/internal/vfs"
)

// syncCounter counts file syncs per directory through the store's fs seam.
type syncCounter struct {
	mu          sync.Mutex
	data, index int
}

func (c *syncCounter) fs(base vfs.FS) vfs.FS {
	return &vfs.ErrorFS{FS: base, Inject: func(op vfs.Op, path string) error {
		if op == vfs.OpSync {
			c.mu.Lock()
			defer c.mu.Unlock()
			switch filepath.Base(filepath.Dir(path)) {
			case "data":
				c.data++
			case "index":
				c.index++
			}
		}
		return nil
	}}
}

func (c *syncCounter) take() (data, index int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	data, index = c.data, c.index
	c.data, c.index = 0, 0
	return data, index
}

// TestGroupCommitSyncsDataOnly: a group commit (Append, then Sync) costs one
// fsync, of the data file; index files are synced when the log rolls into a
// new data file and at Close.
func TestGroupCommitSyncsDataOnly(t *testing.T) {
	var c syncCounter
	cfg := testConfig(t)
	s, err := Open(c.fs(vfs.NewMem()), testDir, cfg)
	mustNotErr(t, err, "open")
	rng := rand.New(rand.NewPCG(7, 8))
	all, _ := batch(s.FileLayout, 0, 0, 60, 1, rng, 100, 300)
	c.take()
	rolls := 0
	for i := 0; i < len(all); {
		n := min(1+rng.IntN(3), len(all)-i)
		es := all[i : i+n]
		roll := i > 0 && es[n-1].Pos/cfg.DataFileSize != all[i-1].Pos/cfg.DataFileSize
		mustNotErr(t, s.Append(es), "append")
		d, x := c.take()
		if roll {
			rolls++
			if d < 1 || x < 1 {
				t.Fatalf("append of %d..%d rolled into a new data file with %d data and %d index fsyncs, want both", es[0].Index, es[n-1].Index, d, x)
			}
		} else if d+x != 0 {
			t.Fatalf("append of %d..%d: %d data and %d index fsyncs, want none", es[0].Index, es[n-1].Index, d, x)
		}
		mustNotErr(t, s.Sync(), "sync")
		if d, x := c.take(); d != 1 || x != 0 {
			t.Fatalf("sync after %d..%d: %d data and %d index fsyncs, want 1 and 0", es[0].Index, es[n-1].Index, d, x)
		}
		i += n
	}
	if rolls < 2 {
		t.Fatalf("only %d rolls", rolls)
	}
	mustNotErr(t, s.Sync(), "idle sync")
	if d, x := c.take(); d+x != 0 {
		t.Fatalf("sync with nothing appended: %d data and %d index fsyncs", d, x)
	}
	mustNotErr(t, s.Close(), "close")
	if _, x := c.take(); x < 1 {
		t.Fatal("close did not sync the index")
	}
}

// TestSyncedEntriesSurviveLostIndexWrites: Sync leaves the index slots
// written since the last roll unsynced, so a power loss can drop any of them
// (a whole index file created since, or any subset of its sectors, in any
// order: the kernel writes dirty pages back as it likes). Open must still
// recover every synced entry, with correct slots on disk, reads and terms,
// and the log must continue.
func TestSyncedEntriesSurviveLostIndexWrites(t *testing.T) {
	lostSlots := 0
	for seed := uint64(1); seed <= 30; seed++ {
		cfg := testConfig(t)
		cfg.Logger = nil
		if seed%3 == 0 {
			cfg.IndexFileSize = SlotSize * 16 // several index files per data file
		}
		live := vfs.NewMem()
		s := mustOpen(t, live, cfg)
		rng := rand.New(rand.NewPCG(seed, 31))
		maxBody := 400
		if seed%2 == 0 {
			maxBody = 40
		}
		var m model
		term := int64(1)
		for op, ops := 0, 20+rng.IntN(80); op < ops; op++ {
			randomAppend(t, s, &m, &term, rng, maxBody)
			mustNotErr(t, s.Sync(), "seed %d sync", seed)
		}
		// Power loss: unsynced data is gone; of the unsynced index bytes,
		// a random subset of 512-byte sectors reached the disk.
		crashed := live.CrashClone(nil)
		loseIndexSectors(t, live, crashed, rng)
		lostSlots += countLostSlots(t, crashed, cfg, m.entries)

		r, err := Open(crashed, testDir, cfg)
		mustNotErr(t, err, "seed %d: open after power loss", seed)
		checkLog(t, r, m.entries) // every entry was synced: all must be back
		checkSlotsOnDisk(t, crashed, cfg, m.entries)
		last := m.entries[len(m.entries)-1]
		b := make([]byte, last.Size())
		_, err = r.ReadAt(b, last.Pos)
		mustNotErr(t, err, "seed %d: read the last entry by position", seed)
		if !bytes.Equal(b[HeaderSize:], last.Body) {
			t.Fatalf("seed %d: ReadAt of the last entry returned another body", seed)
		}
		// The log continues, and a second power loss keeps what it synced.
		es, _ := batch(r.FileLayout, r.End(), r.LastIndex()+1, 5, term, rng, 0, maxBody)
		mustNotErr(t, r.Append(es), "seed %d: append after recovery", seed)
		mustNotErr(t, r.Sync(), "seed %d: sync after recovery", seed)
		m.append(es)
		again := crashed.CrashClone(nil)
		r.Close()
		s.Close()
		r = mustOpen(t, again, cfg)
		checkLog(t, r, m.entries)
		r.Close()
	}
	if lostSlots == 0 {
		t.Fatal("no power loss lost an index slot of a synced entry: the test proves nothing")
	}
}

// randomAppend appends a batch of 1-6 entries to s and m, or now and then
// replaces the last 1-3 entries by a batch of a higher term (a truncation);
// it returns the index the truncation started at, else -1.
func randomAppend(t *testing.T, s *Store, m *model, term *int64, rng *rand.Rand, maxBody int) int64 {
	t.Helper()
	if rng.IntN(15) == 0 && len(m.entries) > 4 { // truncation (fsyncs data and index)
		at := m.last() - int64(rng.IntN(3))
		prev := m.entries[at-1-m.entries[0].Index]
		*term++
		es, _ := batch(s.FileLayout, prev.Pos+prev.Size(), at, 1+rng.IntN(3), *term, rng, 0, maxBody)
		mustNotErr(t, s.Append(es), "truncate at %d", at)
		m.append(es)
		return at
	}
	es, _ := batch(s.FileLayout, s.End(), s.LastIndex()+1, 1+rng.IntN(6), *term, rng, 0, maxBody)
	mustNotErr(t, s.Append(es), "append")
	m.append(es)
	return -1
}

// loseIndexSectors makes the index files of crashed (the synced state of
// live) keep a random subset of the 512-byte sectors live wrote since.
func loseIndexSectors(t *testing.T, live, crashed *vfs.MemFS, rng *rand.Rand) {
	t.Helper()
	rewriteSurvivors(t, live, crashed, filepath.Join(testDir, "index"), func(lb, cb []byte, cf vfs.File) {
		n := int64(len(cb))
		for off := int64(0); off < int64(len(lb)); off += 512 {
			hi := min(off+512, int64(len(lb)))
			if off < n && !bytes.Equal(cb[off:min(hi, n)], lb[off:min(hi, n)]) || hi > n {
				if rng.IntN(2) == 0 {
					cf.WriteAt(lb[off:hi], off)
				}
			}
		}
	})
}

// rewriteSurvivors calls fn with the live and crashed contents of every
// file of dir in crashed that live still has, and a handle to the crashed
// one to change it (synced after fn).
func rewriteSurvivors(t *testing.T, live, crashed *vfs.MemFS, dir string, fn func(lb, cb []byte, cf vfs.File)) {
	t.Helper()
	names, _ := crashed.ReadDir(dir)
	for _, name := range names {
		p := filepath.Join(dir, name)
		lb, err := vfs.ReadFile(live, p)
		if err != nil {
			continue // removed since it was made durable
		}
		cb, err := vfs.ReadFile(crashed, p)
		mustNotErr(t, err, "read crashed file")
		cf, err := crashed.OpenFile(p, os.O_RDWR)
		mustNotErr(t, err, "open crashed file")
		fn(lb, cb, cf)
		cf.Sync()
		cf.Close()
	}
}

// countLostSlots counts the entries whose slot is not on disk in fs.
func countLostSlots(t *testing.T, fs vfs.FS, cfg Config, es []dledger.Entry) int {
	t.Helper()
	lost := 0
	for _, e := range es {
		if !bytes.Equal(diskSlot(t, fs, cfg, e.Index), wantSlot(e)) {
			lost++
		}
	}
	return lost
}

// checkSlotsOnDisk verifies that fs holds the right index slot for each entry.
func checkSlotsOnDisk(t *testing.T, fs vfs.FS, cfg Config, es []dledger.Entry) {
	t.Helper()
	for _, e := range es {
		if got := diskSlot(t, fs, cfg, e.Index); !bytes.Equal(got, wantSlot(e)) {
			t.Fatalf("slot %d on disk %x, want %x", e.Index, got, wantSlot(e))
		}
	}
}

func wantSlot(e dledger.Entry) []byte {
	b := make([]byte, SlotSize)
	putSlot(b, magicOf(&e), e.Pos, int32(e.Size()), e.Index, e.Term)
	return b
}

// diskSlot reads the slot of index from fs (zeros when its file is missing
// or short).
func diskSlot(t *testing.T, fs vfs.FS, cfg Config, index int64) []byte {
	t.Helper()
	off := index * SlotSize
	start := off - off%cfg.IndexFileSize
	b := make([]byte, SlotSize)
	f, err := fs.OpenFile(filepath.Join(testDir, "index", fileName(start)), os.O_RDONLY)
	if errors.Is(err, os.ErrNotExist) {
		return b
	}
	mustNotErr(t, err, "open index file")
	defer f.Close()
	f.ReadAt(b, off-start)
	return b
}
