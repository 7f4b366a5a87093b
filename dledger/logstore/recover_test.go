package logstore

import (
	"encoding/binary"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rmqd/rmqd/dledger"
	"github.com/rmqd/rmqd/internal/vfs"
)

// patch overwrites bytes at absolute data position pos.
func patch(t testing.TB, fs vfs.FS, cfg Config, pos int64, b []byte) {
	t.Helper()
	start := pos - pos%cfg.DataFileSize
	f, err := fs.OpenFile(filepath.Join(testDir, "data", fileName(start)), os.O_RDWR)
	mustNotErr(t, err, "open data file")
	defer f.Close()
	_, err = f.WriteAt(b, pos-start)
	mustNotErr(t, err, "patch")
}

func readAbs(t testing.TB, fs vfs.FS, cfg Config, pos int64, n int) []byte {
	t.Helper()
	start := pos - pos%cfg.DataFileSize
	f, err := fs.OpenFile(filepath.Join(testDir, "data", fileName(start)), os.O_RDONLY)
	mustNotErr(t, err, "open data file")
	defer f.Close()
	b := make([]byte, n)
	_, err = f.ReadAt(b, pos-start)
	mustNotErr(t, err, "read")
	return b
}

// buildStore writes n entries across several files, syncs and closes.
func buildStore(t testing.TB, n int, seed uint64) (*vfs.MemFS, Config, []dledger.Entry) {
	fs := vfs.NewMem()
	cfg := testConfig(t)
	cfg.Logger = nil
	s := mustOpen(t, fs, cfg)
	rng := rand.New(rand.NewPCG(seed, seed))
	var all []dledger.Entry
	end := int64(0)
	for len(all) < n {
		es, ne := batch(s.FileLayout, end, int64(len(all)), min(1+rng.IntN(6), n-len(all)), 1+int64(len(all)/15), rng, 0, 500)
		mustNotErr(t, s.Append(es), "append")
		all, end = append(all, es...), ne
	}
	mustNotErr(t, s.Sync(), "sync")
	mustNotErr(t, s.Close(), "close")
	return fs, cfg, all
}

func TestTornTailEveryOffset(t *testing.T) {
	base, cfg, all := buildStore(t, 40, 1)
	last := all[len(all)-1]
	for k := int64(0); k < last.Size(); k++ {
		for _, garbage := range []bool{false, true} {
			fs := base.ProcessCrashClone()
			tail := make([]byte, last.Size()-k)
			if garbage {
				r := rand.New(rand.NewPCG(uint64(k), 7))
				for i := range tail {
					tail[i] = byte(r.Uint32())
				}
			}
			patch(t, fs, cfg, last.Pos+k, tail)
			s, err := Open(fs, testDir, cfg)
			if err != nil {
				t.Fatalf("torn at byte %d (garbage %v): %v", k, garbage, err)
			}
			checkLog(t, s, all[:len(all)-1])
			checkZeroAfterEnd(t, fs, s, cfg)
			// The store keeps working from there.
			es, _ := batch(s.FileLayout, s.End(), last.Index, 2, last.Term, rand.New(rand.NewPCG(1, 1)), 5, 50)
			mustNotErr(t, s.Append(es), "append after recovery")
			checkLog(t, s, append(append([]dledger.Entry(nil), all[:len(all)-1]...), es...))
			s.Close()
		}
	}
}

func TestFlippedBit(t *testing.T) {
	base, cfg, all := buildStore(t, 60, 2)
	flip := func(fs vfs.FS, pos int64) {
		b := readAbs(t, fs, cfg, pos, 1)
		b[0] ^= 0x10
		patch(t, fs, cfg, pos, b)
	}
	// In the last entry's body: a torn tail, truncated.
	fs := base.ProcessCrashClone()
	last := all[len(all)-1]
	for last.Size() == HeaderSize {
		t.Fatal("last entry has no body; change the seed")
	}
	flip(fs, last.Pos+HeaderSize+int64(len(last.Body))/2)
	s, err := Open(fs, testDir, cfg)
	mustNotErr(t, err, "open")
	checkLog(t, s, all[:len(all)-1])
	s.Close()
	// In the last entry's term: the header checksum catches it (a raised
	// last term would make this log look more up to date than it is).
	fs = base.ProcessCrashClone()
	flip(fs, last.Pos+offTerm+7)
	s, err = Open(fs, testDir, cfg)
	mustNotErr(t, err, "open")
	checkLog(t, s, all[:len(all)-1])
	s.Close()

	// In the middle: corruption, with a message naming file, offset and check.
	for _, where := range []string{"body", "term", "size", "magic"} {
		fs := base.ProcessCrashClone()
		var e dledger.Entry
		for _, c := range all[len(all)-12:] {
			if len(c.Body) > 0 {
				e = c
				break
			}
		}
		off := map[string]int64{"body": HeaderSize + int64(len(e.Body))/2, "term": offTerm + 7, "size": offSize + 3, "magic": offMagic + 3}[where]
		flip(fs, e.Pos+off)
		_, err := Open(fs, testDir, cfg)
		if !IsCorrupt(err) {
			t.Fatalf("flip %s of entry %d: %v", where, e.Index, err)
		}
		if !strings.Contains(err.Error(), fileName(e.Pos-e.Pos%cfg.DataFileSize)) || !strings.Contains(err.Error(), fmt.Sprintf("offset %d", e.Pos%cfg.DataFileSize)) {
			t.Fatalf("error does not name file and offset: %v", err)
		}
		t.Logf("flip %s: %v", where, err)
	}

	// Reads verify too: damage in a trusted (not rescanned) file is caught
	// when the entry is read.
	fs = base.ProcessCrashClone()
	e := all[2]
	flip(fs, e.Pos+HeaderSize)
	s, err = Open(fs, testDir, cfg)
	mustNotErr(t, err, "open")
	if _, err := s.Entry(e.Index); !IsCorrupt(err) {
		t.Fatalf("read of damaged entry: %v", err)
	}
	s.Close()
	// And ScanAll finds it at Open.
	full := cfg
	full.ScanAll = true
	if _, err := Open(fs, testDir, full); !IsCorrupt(err) {
		t.Fatalf("ScanAll open of a damaged old entry: %v", err)
	}
}

func TestTruncatedIndexRebuilt(t *testing.T) {
	base, cfg, all := buildStore(t, 150, 3)
	idxDir := filepath.Join(testDir, "index")
	names, _ := base.ReadDir(idxDir)
	if len(names) < 2 {
		t.Fatalf("want several index files, have %v", names)
	}
	for _, c := range []struct {
		name string
		mut  func(fs *vfs.MemFS)
	}{
		{"last index file halved", func(fs *vfs.MemFS) {
			f, _ := fs.OpenFile(filepath.Join(idxDir, names[len(names)-1]), os.O_RDWR)
			f.Truncate(cfg.IndexFileSize / 2)
			f.Close()
		}},
		{"last index file emptied", func(fs *vfs.MemFS) {
			f, _ := fs.OpenFile(filepath.Join(idxDir, names[len(names)-1]), os.O_RDWR)
			f.Truncate(0)
			f.Close()
		}},
		{"first index file emptied", func(fs *vfs.MemFS) {
			f, _ := fs.OpenFile(filepath.Join(idxDir, names[0]), os.O_RDWR)
			f.Truncate(0)
			f.Close()
		}},
		{"middle index file removed", func(fs *vfs.MemFS) {
			fs.Remove(filepath.Join(idxDir, names[1]))
		}},
		{"all index files removed", func(fs *vfs.MemFS) {
			for _, n := range names {
				fs.Remove(filepath.Join(idxDir, n))
			}
		}},
		{"slot garbled", func(fs *vfs.MemFS) {
			f, _ := fs.OpenFile(filepath.Join(idxDir, names[len(names)-1]), os.O_RDWR)
			f.WriteAt([]byte{9, 9, 9, 9}, 40)
			f.Close()
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			fs := base.ProcessCrashClone()
			c.mut(fs)
			s, err := Open(fs, testDir, cfg)
			mustNotErr(t, err, "open")
			checkLog(t, s, all)
			s.Close()
			s, err = Open(fs.CrashClone(nil), testDir, cfg)
			mustNotErr(t, err, "reopen after crash")
			checkLog(t, s, all)
			s.Close()
		})
	}
}

// TestCrashCloneRandom runs random appends, truncations, syncs and
// retention, crashes at random points (losing unsynced bytes, keeping a
// random torn prefix of them), recovers and continues, several rounds per
// seed. The recovered log must hold every synced entry, be a prefix of what
// was written, pass its checksums and end at an entry boundary.
var testConfigHook = func(*Config) {}

var (
	crashSeeds  = flag.Int("logstore.seeds", 40, "seeds for TestCrashCloneRandom")
	errOps      = flag.Int("logstore.errops", 150, "operations to fail in TestErrorInjection")
	damageIters = 300
)

func init() {
	flag.IntVar(&damageIters, "logstore.damage", 300, "iterations of TestRandomDamageNeverPanics")
}

func TestCrashCloneRandom(t *testing.T) {
	seeds := *crashSeeds
	if testing.Short() {
		seeds = min(seeds, 10)
	}
	for seed := 1; seed <= seeds; seed++ {
		rng := rand.New(rand.NewPCG(uint64(seed), 99))
		cfg := testConfig(t)
		cfg.Logger = nil
		testConfigHook(&cfg)
		fs := vfs.NewMem()
		var m model
		var synced int64 = -1 // last index known durable
		term := int64(1)
		for round := 0; round < 4; round++ {
			s, err := Open(fs, testDir, cfg)
			if err != nil {
				t.Fatalf("seed %d round %d: open: %v", seed, round, err)
			}
			if len(m.entries) > 0 {
				// Entries below the recovered first were deleted durably.
				if f := s.FirstIndex(); f > m.entries[0].Index {
					m.entries = m.entries[f-m.entries[0].Index:]
				}
				n := prefixLen(t, s, m.entries)
				if got := s.LastIndex(); got < synced {
					t.Fatalf("seed %d round %d: recovered up to %d, %d was synced", seed, round, got, synced)
				}
				m.entries = m.entries[:n]
				checkZeroAfterEnd(t, fs, s, cfg)
			}
			ops := 10 + rng.IntN(40)
			for op := 0; op < ops; op++ {
				switch r := rng.IntN(20); {
				case r < 12:
					es, _ := batch(s.FileLayout, s.End(), s.LastIndex()+1, 1+rng.IntN(6), term, rng, 0, 600)
					if len(m.entries) == 0 && s.LastIndex() < 0 {
						es, _ = batch(s.FileLayout, s.End(), 0, 1+rng.IntN(6), term, rng, 0, 600)
					}
					mustNotErr(t, s.Append(es), "seed %d append", seed)
					m.append(es)
				case r < 16:
					mustNotErr(t, s.Sync(), "sync")
					synced = m.last()
				case r < 18 && len(m.entries) > 3:
					at := m.last() - int64(rng.IntN(min(len(m.entries)-1, 8)))
					if at <= m.entries[0].Index {
						continue
					}
					prev := m.entries[at-1-m.entries[0].Index]
					term++
					es, _ := batch(s.FileLayout, prev.Pos+prev.Size(), at, 1+rng.IntN(4), term, rng, 0, 600)
					mustNotErr(t, s.Append(es), "seed %d truncate at %d", seed, at)
					m.append(es)
					synced = at - 1 // truncation fsyncs what it keeps
				case r == 18 && len(m.entries) > 20:
					_, err := s.DeleteBefore(m.last() - 10)
					mustNotErr(t, err, "delete")
					m.entries = m.entries[s.FirstIndex()-m.entries[0].Index:]
				default:
					term++
				}
			}
			switch rng.IntN(5) {
			case 0:
				fs = fs.ProcessCrashClone()
				synced = m.last() // kill -9 keeps the page cache
				s.Close()
			case 1:
				mustNotErr(t, s.Close(), "clean close") // syncs, marks the end clean
				synced = m.last()
			default:
				fs = fs.CrashClone(rng)
				s.Close()
			}
		}
	}
}

// TestErrorInjection fails the n-th write, sync, truncate, remove or
// directory sync; the error must surface, the store must refuse further
// writes, and after a power loss the log must hold every synced entry and
// nothing that was not written.
func TestErrorInjection(t *testing.T) {
	for n := 1; n <= *errOps; n++ {
		mem := vfs.NewMem()
		count := 0
		efs := &vfs.ErrorFS{FS: mem, Inject: func(op vfs.Op, path string) error {
			switch op {
			case vfs.OpWrite, vfs.OpSync, vfs.OpTruncate, vfs.OpRemove, vfs.OpSyncDir, vfs.OpRename:
				count++
				if count == n {
					return vfs.ErrInjected
				}
			}
			return nil
		}}
		cfg := testConfig(t)
		cfg.Logger = nil
		rng := rand.New(rand.NewPCG(uint64(n), 5))
		s, err := Open(efs, testDir, cfg)
		if err != nil {
			continue // failed while creating: fine
		}
		var m model
		// maybe is what the log may hold: m plus a failed Append's entries,
		// which may be partly durable (a failed write leaves what it wrote).
		var maybe []dledger.Entry
		synced := int64(-1)
		failed := false
		term := int64(1)
		for op := 0; op < 60 && !failed; op++ {
			var err error
			switch r := rng.IntN(10); {
			case r < 6:
				es, _ := batch(s.FileLayout, s.End(), s.LastIndex()+1, 1+rng.IntN(4), term, rng, 0, 500)
				if err = s.Append(es); err == nil {
					m.append(es)
				} else {
					mm := model{entries: append([]dledger.Entry(nil), m.entries...)}
					mm.append(es)
					maybe = mm.entries
				}
			case r < 8:
				if err = s.Sync(); err == nil {
					synced = m.last()
				}
			case r < 9 && len(m.entries) > 3:
				at := m.last() - 1
				prev := m.entries[at-1]
				term++
				es, _ := batch(s.FileLayout, prev.Pos+prev.Size(), at, 2, term, rng, 0, 500)
				err = s.Append(es)
				// Even a failed truncating Append may have removed the suffix.
				synced = min(synced, at-1)
				if err == nil {
					m.append(es)
				} else {
					mm := model{entries: append([]dledger.Entry(nil), m.entries...)}
					mm.append(es)
					maybe = mm.entries
				}
			default:
				hs := dledger.HardState{Term: term, VotedFor: "n1"}
				prev := s.HardState()
				if err = s.SetHardState(hs); err == nil && s.HardState() != hs {
					t.Fatalf("hard state not updated")
				}
				if err != nil {
					if s.HardState() != prev {
						t.Fatalf("hard state updated despite error")
					}
					err = nil // not sticky: term files are separate
				}
			}
			if err != nil {
				failed = true
				if !strings.Contains(err.Error(), "injected") {
					t.Fatalf("n=%d: error %v does not carry the injected error", n, err)
				}
				if e2 := s.Append([]dledger.Entry{{Index: s.LastIndex() + 1, Term: term, Pos: s.End()}}); e2 == nil {
					t.Fatalf("n=%d: append after failure succeeded", n)
				}
				if e2 := s.Sync(); e2 == nil {
					t.Fatalf("n=%d: sync after failure succeeded", n)
				}
			}
		}
		s.Close()
		s2, err := Open(mem.CrashClone(nil), testDir, cfg)
		if err != nil {
			t.Fatalf("n=%d: reopen: %v", n, err)
		}
		checkPrefixOfEither(t, s2, m.entries, maybe)
		if s2.LastIndex() < synced {
			t.Fatalf("n=%d: recovered up to %d, %d was synced", n, s2.LastIndex(), synced)
		}
		s2.Close()
	}
}

// TestJavaWrittenStore builds, byte by byte and without the package's
// encoder, the files Java DLedger writes (bodyCrc 0, padding, properties
// files) and checks that they open and serve entries, then that new entries
// (with checksums) continue the log across a reopen.
func TestJavaWrittenStore(t *testing.T) {
	const fsz = 4096
	fs := vfs.NewMem()
	for _, d := range []string{"data", "index"} {
		fs.MkdirAll(filepath.Join(testDir, d))
	}
	data := map[int64][]byte{0: make([]byte, fsz), fsz: make([]byte, fsz)}
	index := make([]byte, 32*64)
	be := binary.BigEndian
	type je struct {
		index, term, pos int64
		body             string
	}
	var want []je
	pos := int64(0)
	for i := int64(0); i < 30; i++ {
		bodyStr := strings.Repeat(fmt.Sprintf("msg-%d;", i), 25)
		size := int64(48 + len(bodyStr))
		fileStart := pos - pos%fsz
		if pos-fileStart+size+8 > fsz { // Java: entry + MIN_BLANK_LEN must fit
			b := data[fileStart][pos-fileStart:]
			be.PutUint32(b[0:], 0xFFFFFFFF)
			be.PutUint32(b[4:], uint32(fileStart+fsz-pos))
			pos = fileStart + fsz
			fileStart = pos
		}
		if _, ok := data[fileStart]; !ok {
			break
		}
		b := data[fileStart][pos-fileStart:]
		be.PutUint32(b[0:], 1)
		be.PutUint32(b[4:], uint32(size))
		be.PutUint64(b[8:], uint64(i))
		be.PutUint64(b[16:], uint64(1+i/10))
		be.PutUint64(b[24:], uint64(pos))
		// channel, chainCrc, bodyCrc: 0
		be.PutUint32(b[44:], uint32(len(bodyStr)))
		copy(b[48:], bodyStr)
		sl := index[i*32:]
		be.PutUint32(sl[0:], 1)
		be.PutUint64(sl[4:], uint64(pos))
		be.PutUint32(sl[12:], uint32(size))
		be.PutUint64(sl[16:], uint64(i))
		be.PutUint64(sl[24:], uint64(1+i/10))
		want = append(want, je{i, 1 + i/10, pos, bodyStr})
		pos += size
	}
	write := func(path string, b []byte) {
		f, err := fs.OpenFile(path, os.O_RDWR|os.O_CREATE)
		mustNotErr(t, err, "create")
		f.WriteAt(b, 0)
		f.Sync()
		f.Close()
	}
	for start, b := range data {
		write(filepath.Join(testDir, "data", fmt.Sprintf("%020d", start)), b)
	}
	write(filepath.Join(testDir, "index", "00000000000000000000"), index)
	write(filepath.Join(testDir, "currterm"), []byte("currTerm=3\nvoteLeader=n1\n"))
	write(filepath.Join(testDir, "checkpoint"), []byte("endIndex=20\ncommittedIndex=20\n"))

	cfg := testConfig(t)
	s := mustOpen(t, fs, cfg)
	if s.LastIndex() != int64(len(want)-1) || s.FirstIndex() != 0 || s.Committed() != 20 || s.HardState() != (dledger.HardState{Term: 3, VotedFor: "n1"}) {
		t.Fatalf("opened: first %d last %d committed %d hard %+v", s.FirstIndex(), s.LastIndex(), s.Committed(), s.HardState())
	}
	var wantEntries []dledger.Entry
	for _, w := range want {
		e, err := s.Entry(w.index)
		mustNotErr(t, err, "entry %d", w.index)
		if e.Term != w.term || e.Pos != w.pos || string(e.Body) != w.body || e.Magic != 1 {
			t.Fatalf("entry %d: %+v", w.index, e)
		}
		wantEntries = append(wantEntries, e)
	}
	b := make([]byte, 48)
	_, err := s.ReadAt(b, want[5].pos)
	mustNotErr(t, err, "readAt")
	if be.Uint64(b[8:]) != 5 {
		t.Fatalf("readAt header %x", b)
	}
	// Continue the log; our entries carry checksums, the old ones do not.
	rng := rand.New(rand.NewPCG(1, 2))
	es, _ := batch(s.FileLayout, s.End(), s.LastIndex()+1, 10, 4, rng, 10, 300)
	mustNotErr(t, s.Append(es), "append")
	mustNotErr(t, s.Sync(), "sync")
	// A power loss now keeps our entries but not their index slots.
	crashed := fs.CrashClone(nil)
	s.Close()
	s = mustOpen(t, fs, cfg)
	checkLog(t, s, append(wantEntries, es...))
	s.Close()
	s = mustOpen(t, crashed, cfg)
	checkLog(t, s, append(wantEntries, es...))
	s.Close()
}

func TestOpenRejects(t *testing.T) {
	base, cfg, _ := buildStore(t, 40, 4)
	// A data file of another size is refused, as Java does.
	fs := base.ProcessCrashClone()
	f, _ := fs.OpenFile(filepath.Join(testDir, "data", fileName(0)), os.O_RDWR)
	f.Truncate(cfg.DataFileSize + 1)
	f.Close()
	if _, err := Open(fs, testDir, cfg); err == nil {
		t.Fatal("oversized data file accepted")
	}
	// A gap between data files is corruption.
	fs = base.ProcessCrashClone()
	fs.Remove(filepath.Join(testDir, "data", fileName(cfg.DataFileSize)))
	if _, err := Open(fs, testDir, cfg); !IsCorrupt(err) {
		t.Fatalf("gap: %v", err)
	}
	// A short data file (preallocation lost) is extended.
	fs = vfs.NewMem()
	s := mustOpen(t, fs, cfg)
	es, _ := batch(s.FileLayout, 0, 0, 3, 1, rand.New(rand.NewPCG(1, 1)), 10, 10)
	mustNotErr(t, s.Append(es), "append")
	s.Sync()
	f, _ = fs.OpenFile(filepath.Join(testDir, "data", fileName(0)), os.O_RDWR)
	f.Truncate(es[2].Pos + es[2].Size())
	f.Close()
	s.Close()
	s = mustOpen(t, fs, cfg)
	checkLog(t, s, es)
	s.Close()
	if _, err := Open(fs, testDir, Config{DataFileSize: 100}); err == nil {
		t.Fatal("tiny DataFileSize accepted")
	}
}

// TestCleanShutdownMark checks the clean-close mark in checkpoint: written by
// Close, trusted only when the log ends there, removed durably by Open.
func TestCleanShutdownMark(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(t)
	s := mustOpen(t, fs, cfg)
	rng := rand.New(rand.NewPCG(3, 3))
	es, _ := batch(s.FileLayout, 0, 0, 20, 1, rng, 10, 300)
	mustNotErr(t, s.Append(es), "append")
	mustNotErr(t, s.Close(), "close")
	cp := filepath.Join(testDir, "checkpoint")
	b, _ := vfs.ReadFile(fs, cp)
	if !strings.Contains(string(b), fmt.Sprintf("rmqdCleanEnd=%d\n", es[19].Pos+es[19].Size())) || !strings.HasPrefix(string(b), "endIndex=19\n") {
		t.Fatalf("checkpoint after close: %q", b)
	}
	s = mustOpen(t, fs, cfg)
	b, _ = vfs.ReadFile(fs.CrashClone(nil), cp)
	if strings.Contains(string(b), "rmqdCleanEnd") {
		t.Fatalf("mark not removed durably: %q", b)
	}
	checkLog(t, s, es)
	// Unsynced appends after the clean open, then power loss with a torn
	// tail: recovery must scan (and zero) the tail again.
	more, _ := batch(s.FileLayout, s.End(), 20, 10, 1, rng, 10, 300)
	mustNotErr(t, s.Append(more), "append")
	crashed := fs.CrashClone(rand.New(rand.NewPCG(1, 1)))
	s.Close()
	s = mustOpen(t, crashed, cfg)
	n := prefixLen(t, s, append(es, more...))
	if n < 20 {
		t.Fatalf("lost synced entries: %d", n)
	}
	checkZeroAfterEnd(t, crashed, s, cfg)
	s.Close()
}

// TestTornEntryAfterPadding tears the first entry of a new file: recovery
// ends before the padding of the previous file and removes the marker.
func TestTornEntryAfterPadding(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(t)
	s := mustOpen(t, fs, cfg)
	rng := rand.New(rand.NewPCG(4, 4))
	var all []dledger.Entry
	for {
		es, _ := batch(s.FileLayout, s.End(), int64(len(all)), 1, 1, rng, 200, 400)
		mustNotErr(t, s.Append(es), "append")
		all = append(all, es...)
		if es[0].Pos%cfg.DataFileSize == 0 && len(all) > 1 {
			break
		}
	}
	mustNotErr(t, s.Sync(), "sync")
	last := all[len(all)-1]
	for _, garbage := range []bool{false, true} {
		c := fs.ProcessCrashClone()
		junk := make([]byte, HeaderSize)
		if garbage {
			junk[3], junk[10] = 1, 5
		}
		patch(t, c, cfg, last.Pos, junk)
		s2 := mustOpen(t, c, cfg)
		checkLog(t, s2, all[:len(all)-1])
		checkZeroAfterEnd(t, c, s2, cfg)
		s2.Close()
	}
	s.Close()
}

// TestRandomDamageNeverPanics damages files at random (bit flips, garbage,
// truncation, in data, index, currterm and checkpoint). Open may fail; it
// and every read after it must not panic.

func TestRandomDamageNeverPanics(t *testing.T) {
	base, cfg, all := buildStore(t, 120, 6)
	rng := rand.New(rand.NewPCG(42, 42))
	var paths []string
	for _, d := range []string{"data", "index"} {
		names, _ := base.ReadDir(filepath.Join(testDir, d))
		for _, n := range names {
			paths = append(paths, filepath.Join(testDir, d, n))
		}
	}
	paths = append(paths, filepath.Join(testDir, "checkpoint"), filepath.Join(testDir, "currterm"))
	opened := 0
	for iter := 0; iter < damageIters; iter++ {
		fs := base.ProcessCrashClone()
		for k := 0; k < 1+rng.IntN(3); k++ {
			p := paths[rng.IntN(len(paths))]
			f, err := fs.OpenFile(p, os.O_RDWR|os.O_CREATE)
			if err != nil {
				continue
			}
			size, _ := f.Size()
			switch rng.IntN(4) {
			case 0:
				f.Truncate(rng.Int64N(size + 1))
			case 1:
				junk := make([]byte, 1+rng.IntN(200))
				for i := range junk {
					junk[i] = byte(rng.Uint32())
				}
				f.WriteAt(junk, rng.Int64N(size+1))
			default:
				if size > 0 {
					off := rng.Int64N(size)
					b := make([]byte, 1)
					f.ReadAt(b, off)
					b[0] ^= byte(1 << rng.IntN(8))
					f.WriteAt(b, off)
				}
			}
			f.Close()
		}
		s, err := Open(fs, testDir, cfg)
		if err != nil {
			continue
		}
		opened++
		if f, l := s.FirstIndex(), s.LastIndex(); l >= 0 {
			s.Entries(f, l+1, math.MaxInt64) //nolint:errcheck
			for i := f; i <= l; i++ {
				s.Term(i)  //nolint:errcheck
				s.Entry(i) //nolint:errcheck
			}
			s.ReadAt(make([]byte, 5000), s.BeginPos()) //nolint:errcheck
		}
		es, _ := batch(s.FileLayout, s.End(), s.LastIndex()+1, 2, max(s.LastTerm(), 1), rng, 10, 100)
		if s.LastIndex() < 0 {
			es, _ = batch(s.FileLayout, s.End(), all[0].Index, 2, 1, rng, 10, 100)
		}
		s.Append(es) //nolint:errcheck
		s.Close()
	}
	t.Logf("%d of %d damaged stores opened", opened, damageIters)
}

// TestOpenWithErrors fails the n-th filesystem operation of any kind during
// recovery of a store with a torn tail: Open returns the error (or
// succeeds), never panics, and a successful Open serves the whole log.
func TestOpenWithErrors(t *testing.T) {
	base, cfg, all := buildStore(t, 80, 9)
	last := all[len(all)-1]
	torn := base.ProcessCrashClone()
	patch(t, torn, cfg, last.Pos+HeaderSize/2, make([]byte, last.Size()-HeaderSize/2))
	failures := 0
	for n := 1; n <= 400; n++ {
		mem := torn.ProcessCrashClone()
		count := 0
		efs := &vfs.ErrorFS{FS: mem, Inject: func(op vfs.Op, path string) error {
			count++
			if count == n {
				return vfs.ErrInjected
			}
			return nil
		}}
		s, err := Open(efs, testDir, cfg)
		efs.Inject = nil
		if err != nil {
			failures++
			if !strings.Contains(err.Error(), "injected") {
				t.Fatalf("n=%d: %v", n, err)
			}
			// Whatever the failed Open left, a clean retry recovers.
			s2 := mustOpen(t, mem, cfg)
			checkLog(t, s2, all[:len(all)-1])
			s2.Close()
			continue
		}
		checkLog(t, s, all[:len(all)-1])
		s.Close()
	}
	if failures == 0 {
		t.Fatal("no injected failure hit Open")
	}
}

// checkPrefixOfEither checks that s holds a prefix of a or of b (as far as
// it goes), reading every entry (checksums included).
func checkPrefixOfEither(t *testing.T, s *Store, a, b []dledger.Entry) {
	t.Helper()
	last := s.LastIndex()
	if last < 0 {
		return
	}
	got, err := s.Entries(s.FirstIndex(), last+1, math.MaxInt64)
	if err != nil {
		t.Fatalf("read recovered log: %v", err)
	}
	isPrefix := func(want []dledger.Entry) bool {
		if len(want) == 0 || want[0].Index != got[0].Index || len(got) > len(want) {
			return false
		}
		for i := range got {
			if !sameEntry(got[i], want[i]) {
				return false
			}
		}
		return true
	}
	if !isPrefix(a) && !isPrefix(b) {
		t.Fatalf("recovered log (%d..%d) is not a prefix of what was written", got[0].Index, last)
	}
}
