package logstore

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rmqd/rmqd/dledger"
	"github.com/rmqd/rmqd/internal/vfs"
)

func TestPlace(t *testing.T) {
	l := FileLayout{FileSize: 100}
	for _, c := range []struct{ end, size, pos, newEnd int64 }{
		{0, 48, 0, 48},
		{0, 92, 0, 92}, // 92 + 8 = 100 fits exactly
		{0, 93, 0, 93}, // does not fit even in an empty file: Append refuses it
		{40, 52, 40, 92},
		{40, 53, 100, 153}, // 53 + 8 > 60 left: padding, next file
		{100, 50, 100, 150},
		{150, 48, 200, 248}, // 50 left, 48 + 8 > 50
		{192, 48, 200, 248},
	} {
		pos, ne := l.Place(c.end, c.size)
		if pos != c.pos || ne != c.newEnd {
			t.Errorf("Place(%d, %d) = %d, %d; want %d, %d", c.end, c.size, pos, ne, c.pos, c.newEnd)
		}
	}
}

// TestGoldenEntry pins the byte layout of one entry and one index slot.
func TestGoldenEntry(t *testing.T) {
	e := dledger.Entry{Index: 5, Term: 3, Pos: 0x1234, Magic: 1, Body: []byte("hello")}
	got := EncodeEntry(nil, &e)
	crc := BodyCRC(e.Body)
	if crc != 0x3610a686 { // CRC-32/IEEE("hello")
		t.Fatalf("crc32(hello) = %08x", crc)
	}
	want := "" +
		"00000001" + // magic
		"00000035" + // size 53 = 48 + 5
		"0000000000000005" + // index
		"0000000000000003" + // term
		"0000000000001234" + // pos
		"00000000" + // channel
		"%s" + // chainCrc: CRC-32/IEEE of the other 44 header bytes
		"3610a686" + // bodyCrc = CRC-32/IEEE(body)
		"00000005" + // bodySize
		hex.EncodeToString([]byte("hello"))
	others, _ := hex.DecodeString(strings.Replace(want, "%s", "", 1)[:88])
	var hc [4]byte
	binary.BigEndian.PutUint32(hc[:], crc32.ChecksumIEEE(others))
	want = strings.Replace(want, "%s", hex.EncodeToString(hc[:]), 1)
	if hex.EncodeToString(got) != want {
		t.Fatalf("entry bytes\n got %x\nwant %s", got, want)
	}
	d, c, n, err := DecodeEntry(got)
	if err != nil || n != len(got) || c != crc || !sameEntry(d, e) {
		t.Fatalf("decode: %+v %x %d %v", d, c, n, err)
	}
	got[len(got)-1] ^= 1
	if _, _, _, err := DecodeEntry(got); !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("decode flipped: %v", err)
	}

	var sl [SlotSize]byte
	putSlot(sl[:], 1, 0x1234, 53, 5, 3)
	wantSlot := "00000001" + "0000000000001234" + "00000035" + "0000000000000005" + "0000000000000003"
	if hex.EncodeToString(sl[:]) != wantSlot {
		t.Fatalf("slot bytes\n got %x\nwant %s", sl, wantSlot)
	}
	var blank [8]byte
	putBlank(blank[:], 77)
	if hex.EncodeToString(blank[:]) != "ffffffff0000004d" {
		t.Fatalf("blank %x", blank)
	}
	if fileName(1<<30) != "00000000001073741824" {
		t.Fatalf("file name %s", fileName(1<<30))
	}
}

func TestDecodeEntryNeverPanics(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	good := EncodeEntry(nil, &dledger.Entry{Index: 1, Term: 1, Body: []byte("abc")})
	for i := 0; i < 20000; i++ {
		b := append([]byte(nil), good[:rng.IntN(len(good)+1)]...)
		for j := 0; j < rng.IntN(4); j++ {
			if len(b) > 0 {
				b[rng.IntN(len(b))] = byte(rng.Uint32())
			}
		}
		DecodeEntry(b) //nolint:errcheck // must not panic
	}
}

func TestAppendReadReopen(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(t)
	s := mustOpen(t, fs, cfg)
	if s.FirstIndex() != -1 || s.LastIndex() != -1 || s.End() != 0 || s.LastTerm() != 0 {
		t.Fatalf("new store: %d %d %d %d", s.FirstIndex(), s.LastIndex(), s.End(), s.LastTerm())
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var m model
	end := int64(0)
	for term := int64(1); term <= 4; term++ {
		for b := 0; b < 5; b++ {
			es, ne := batch(s.FileLayout, end, m.last()+1, 1+rng.IntN(8), term, rng, 0, 700)
			mustNotErr(t, s.Append(es), "append")
			m.append(es)
			end = ne
		}
	}
	checkLog(t, s, m.entries)
	if len(s.mu.data) < 5 {
		t.Fatalf("only %d data files: the test should roll files", len(s.mu.data))
	}
	// Every file ends with padding, and the index files hold one slot per entry.
	for _, f := range s.mu.data[:len(s.mu.data)-1] {
		var last dledger.Entry
		for _, e := range m.entries {
			if e.Pos >= f.start && e.Pos < f.start+cfg.DataFileSize {
				last = e
			}
		}
		padAt := last.Pos + last.Size()
		var b [8]byte
		s.ReadAt(b[:], padAt) //nolint:errcheck
		if int32(binary.BigEndian.Uint32(b[:])) != -1 || int64(binary.BigEndian.Uint32(b[4:])) != f.start+cfg.DataFileSize-padAt {
			t.Fatalf("padding at %d: %x", padAt, b)
		}
	}
	// Reads by position return the encoded entry.
	for _, e := range m.entries[:20] {
		b := make([]byte, e.Size())
		n, err := s.ReadAt(b, e.Pos)
		mustNotErr(t, err, "readAt %d", e.Pos)
		if n != len(b) || !bytes.Equal(b, EncodeEntry(nil, &e)) {
			t.Fatalf("readAt %d: %x", e.Pos, b[:48])
		}
	}
	if _, err := s.ReadAt(make([]byte, 1), s.End()); err == nil {
		t.Fatal("read at End succeeded")
	}
	b := make([]byte, 100)
	if n, err := s.ReadAt(b, s.End()-10); n != 10 || err != io.EOF {
		t.Fatalf("read across End: %d %v", n, err)
	}
	// maxBytes limits Entries but always returns one.
	got, err := s.Entries(0, m.last()+1, 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("entries maxBytes=1: %d %v", len(got), err)
	}
	lim := m.entries[0].Size() + m.entries[1].Size() + m.entries[2].Size()
	got, _ = s.Entries(0, m.last()+1, lim)
	if len(got) != 3 {
		t.Fatalf("entries maxBytes=%d: %d", lim, len(got))
	}
	if _, err := s.Entry(m.last() + 1); err == nil {
		t.Fatal("entry past last")
	}
	wantIs(t, func() error { _, err := s.Term(m.last() + 1); return err }(), dledger.ErrUnavailable)
	mustNotErr(t, s.Sync(), "sync")
	mustNotErr(t, s.Close(), "close")

	s = mustOpen(t, fs, cfg)
	checkLog(t, s, m.entries)
	// Terms below the scanned files come from index slots.
	s.mu.Lock()
	s.mu.runsFrom = s.mu.last + 1
	s.mu.Unlock()
	checkLog(t, s, m.entries)
	// Appending continues where it stopped.
	es, _ := batch(s.FileLayout, s.End(), m.last()+1, 3, 5, rng, 10, 10)
	mustNotErr(t, s.Append(es), "append after reopen")
	m.append(es)
	checkLog(t, s, m.entries)
	s.Close()
}

func TestAppendRejects(t *testing.T) {
	fs := vfs.NewMem()
	s := mustOpen(t, fs, testConfig(t))
	defer s.Close()
	rng := rand.New(rand.NewPCG(1, 1))
	es, end := batch(s.FileLayout, 0, 0, 5, 2, rng, 10, 10)
	mustNotErr(t, s.Append(es), "append")
	cases := map[string][]dledger.Entry{}
	gap, _ := batch(s.FileLayout, end, 6, 1, 2, rng, 10, 10)
	cases["gap"] = gap
	lower, _ := batch(s.FileLayout, end, 5, 1, 1, rng, 10, 10)
	cases["lower term"] = lower
	badPos, _ := batch(s.FileLayout, end, 5, 1, 2, rng, 10, 10)
	badPos[0].Pos++
	cases["bad pos"] = badPos
	big := []dledger.Entry{{Index: 5, Term: 2, Pos: end, Body: make([]byte, 4096)}}
	cases["too large"] = big
	nonc, _ := batch(s.FileLayout, end, 5, 2, 2, rng, 10, 10)
	nonc[1].Index = 9
	cases["non-consecutive"] = nonc
	magic, _ := batch(s.FileLayout, end, 5, 1, 2, rng, 10, 10)
	magic[0].Magic = -1
	cases["magic"] = magic
	for name, c := range cases {
		if err := s.Append(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	checkLog(t, s, es)
	// AppendChecked verifies the leader's checksums.
	next, _ := batch(s.FileLayout, end, 5, 2, 2, rng, 10, 10)
	crcs := []uint32{BodyCRC(next[0].Body), BodyCRC(next[1].Body) ^ 1}
	wantIs(t, s.AppendChecked(next, crcs), ErrChecksum)
	crcs[1] = 0
	mustNotErr(t, s.AppendChecked(next, crcs), "append checked")
	checkLog(t, s, append(es, next...))
}

func TestTruncateSuffix(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(t)
	s := mustOpen(t, fs, cfg)
	rng := rand.New(rand.NewPCG(5, 6))
	var m model
	es, _ := batch(s.FileLayout, 0, 0, 60, 1, rng, 50, 400)
	mustNotErr(t, s.Append(es), "append")
	m.append(es)
	for _, at := range []int64{55, 30, 31, 10, 1} {
		prev := m.entries[at-1]
		repl, _ := batch(s.FileLayout, prev.Pos+prev.Size(), at, 1+rng.IntN(12), m.entries[len(m.entries)-1].Term+1, rng, 20, 300)
		mustNotErr(t, s.Append(repl), "truncate at %d", at)
		m.append(repl)
		checkLog(t, s, m.entries)
		// Nothing of the old suffix survives past the end.
		checkZeroAfterEnd(t, fs, s, cfg)
	}
	s.Close()
	s = mustOpen(t, fs, cfg)
	checkLog(t, s, m.entries)
	// Replace the whole log from its first index.
	repl, _ := batch(s.FileLayout, 0, 0, 3, 99, rng, 20, 30)
	mustNotErr(t, s.Append(repl), "replace all")
	checkLog(t, s, repl)
	s.Close()
	s = mustOpen(t, fs, cfg)
	checkLog(t, s, repl)
	s.Close()
}

// checkZeroAfterEnd verifies that the data after End and the index slots
// after LastIndex are zero in the files that exist.
func checkZeroAfterEnd(t testing.TB, fs vfs.FS, s *Store, cfg Config) {
	t.Helper()
	end := s.End()
	for _, f := range s.mu.data {
		b, _ := vfs.ReadFile(fs, f.path)
		from := max(end-f.start, 0)
		if from < int64(len(b)) && !bytes.Equal(b[from:], make([]byte, int64(len(b))-from)) {
			t.Fatalf("%s: non-zero bytes after end %d", f.path, end)
		}
	}
	slotEnd := (s.LastIndex() + 1) * SlotSize
	for _, f := range s.mu.index {
		b, _ := vfs.ReadFile(fs, f.path)
		from := max(slotEnd-f.start, 0)
		if from < int64(len(b)) && !bytes.Equal(b[from:], make([]byte, int64(len(b))-from)) {
			t.Fatalf("%s: non-zero slots after last %d", f.path, s.LastIndex())
		}
	}
}

// TestEmptyStoreJoinsLater covers a follower whose first entry is not index
// 0 and not at a file start (the leader deleted its old files).
func TestEmptyStoreJoinsLater(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(t)
	s := mustOpen(t, fs, cfg)
	rng := rand.New(rand.NewPCG(7, 8))
	es, _ := batch(s.FileLayout, 3*4096+1000, 1000, 30, 7, rng, 30, 300)
	mustNotErr(t, s.Append(es), "append")
	checkLog(t, s, es)
	wantIs(t, func() error { _, err := s.Term(999); return err }(), dledger.ErrCompacted)
	mustNotErr(t, s.Sync(), "sync")
	s.Close()
	s = mustOpen(t, fs, cfg)
	checkLog(t, s, es)
	s.Close()
	// Also after a power loss.
	s = mustOpen(t, fs.CrashClone(nil), cfg)
	checkLog(t, s, es)
	s.Close()
}

func TestStartPos(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(t)
	cfg.StartPos = 5 * 4096
	s := mustOpen(t, fs, cfg)
	if s.End() != cfg.StartPos || s.BeginPos() != cfg.StartPos {
		t.Fatalf("end %d begin %d", s.End(), s.BeginPos())
	}
	s.Close()
	// The divide survives a power loss without any entry.
	cfg2 := cfg
	cfg2.StartPos = 0
	fs = fs.CrashClone(nil)
	s = mustOpen(t, fs, cfg2)
	if s.End() != cfg.StartPos {
		t.Fatalf("after crash: end %d", s.End())
	}
	rng := rand.New(rand.NewPCG(1, 9))
	es, _ := batch(s.FileLayout, s.End(), 0, 20, 1, rng, 100, 300)
	mustNotErr(t, s.Append(es), "append")
	if es[0].Pos != cfg.StartPos {
		t.Fatalf("first pos %d", es[0].Pos)
	}
	mustNotErr(t, s.Sync(), "sync")
	s.Close()
	s = mustOpen(t, fs, cfg)
	checkLog(t, s, es)
	names, _ := fs.ReadDir(filepath.Join(testDir, "data"))
	if names[0] != "00000000000000020480" {
		t.Fatalf("data files %v", names)
	}
	s.Close()
	cfg.StartPos = 100
	if _, err := Open(vfs.NewMem(), testDir, cfg); err == nil {
		t.Fatal("unaligned StartPos accepted")
	}
}

func TestDeleteBefore(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(t)
	s := mustOpen(t, fs, cfg)
	rng := rand.New(rand.NewPCG(9, 9))
	es, _ := batch(s.FileLayout, 0, 0, 200, 1, rng, 100, 400)
	mustNotErr(t, s.Append(es), "append")
	mustNotErr(t, s.Sync(), "sync")
	nfiles := len(s.mu.data)
	dfs := s.DataFiles()
	if len(dfs) != nfiles || dfs[0].Start != 0 || dfs[0].FirstIndex != 0 || dfs[1].FirstIndex <= 0 || dfs[1].Start != 4096 {
		t.Fatalf("data files %+v", dfs)
	}
	n, err := s.DeleteBefore(0)
	if n != 0 || err != nil {
		t.Fatalf("delete before 0: %d %v", n, err)
	}
	n, err = s.DeleteBefore(100)
	mustNotErr(t, err, "delete")
	first := s.FirstIndex()
	if n == 0 || first > 100 || first <= 0 {
		t.Fatalf("deleted %d files, first %d", n, first)
	}
	if s.BeginPos() != es[first].Pos || len(s.mu.data) != nfiles-n {
		t.Fatalf("begin %d, want %d", s.BeginPos(), es[first].Pos)
	}
	checkLog(t, s, es[first:])
	wantIs(t, func() error { _, err := s.Entry(first - 1); return err }(), dledger.ErrCompacted)
	wantIs(t, func() error { _, err := s.ReadAt(make([]byte, 1), 0); return err }(), dledger.ErrCompacted)
	// Index files wholly below first are gone.
	for _, f := range s.mu.index {
		if f.start+cfg.IndexFileSize <= first*SlotSize {
			t.Fatalf("index file %s kept", f.path)
		}
	}
	// Never the last file.
	n, _ = s.DeleteBefore(1 << 40)
	if len(s.mu.data) < 1 || s.LastIndex() != 199 {
		t.Fatalf("deleted everything: %d files", len(s.mu.data))
	}
	first = s.FirstIndex()
	checkLog(t, s, es[first:])
	s.Close()
	s = mustOpen(t, fs.CrashClone(nil), cfg)
	checkLog(t, s, es[first:])
	s.Close()
}

func TestHardStateAndCheckpoint(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(t)
	s := mustOpen(t, fs, cfg)
	if hs := s.HardState(); hs.Term != 0 || hs.VotedFor != "" {
		t.Fatalf("new store hard state %+v", hs)
	}
	mustNotErr(t, s.SetHardState(dledger.HardState{Term: 7, VotedFor: "n2"}), "set hard state")
	// Durable as soon as SetHardState returned.
	s2 := mustOpen(t, fs.CrashClone(nil), cfg)
	if hs := s2.HardState(); hs.Term != 7 || hs.VotedFor != "n2" {
		t.Fatalf("after crash %+v", hs)
	}
	s2.Close()
	b, _ := vfs.ReadFile(fs, filepath.Join(testDir, "currterm"))
	if string(b) != "currTerm=7\nvoteLeader=n2\n" {
		t.Fatalf("currterm %q", b)
	}
	mustNotErr(t, s.SetHardState(dledger.HardState{Term: 8}), "set")
	b, _ = vfs.ReadFile(fs, filepath.Join(testDir, "currterm"))
	if string(b) != "currTerm=8\nvoteLeader=\n" {
		t.Fatalf("currterm %q", b)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	es, _ := batch(s.FileLayout, 0, 0, 10, 8, rng, 10, 10)
	mustNotErr(t, s.Append(es), "append")
	mustNotErr(t, s.SetCommitted(6), "commit")
	mustNotErr(t, s.Sync(), "sync")
	b, _ = vfs.ReadFile(fs, filepath.Join(testDir, "checkpoint"))
	if string(b) != "endIndex=9\ncommittedIndex=6\n" {
		t.Fatalf("checkpoint %q", b)
	}
	s.Close()
	s = mustOpen(t, fs, cfg)
	if s.Committed() != 6 || s.HardState().Term != 8 {
		t.Fatalf("committed %d term %d", s.Committed(), s.HardState().Term)
	}
	s.Close()
	// Committed is capped at the last index; Java-written files parse.
	vfs.WriteFileAtomic(fs, filepath.Join(testDir, "checkpoint"), []byte("#comment\ncommittedIndex = 50\nendIndex=50\n"))
	vfs.WriteFileAtomic(fs, filepath.Join(testDir, "currterm"), []byte("voteLeader=n1\ncurrTerm=12\n"))
	s = mustOpen(t, fs, cfg)
	if s.Committed() != 9 || s.HardState() != (dledger.HardState{Term: 12, VotedFor: "n1"}) {
		t.Fatalf("committed %d hard %+v", s.Committed(), s.HardState())
	}
	s.Close()
	// A crash in Java's replace procedure leaves only .tmp and .bak.
	fs.Remove(filepath.Join(testDir, "currterm"))
	vfs.WriteFileAtomic(fs, filepath.Join(testDir, "currterm.bak"), []byte("currTerm=12\nvoteLeader=n1\n"))
	vfs.WriteFileAtomic(fs, filepath.Join(testDir, "currterm.tmp"), []byte("currTerm=13\nvoteLeader=\n"))
	s = mustOpen(t, fs, cfg)
	if s.HardState() != (dledger.HardState{Term: 13}) {
		t.Fatalf("hard %+v", s.HardState())
	}
	s.Close()
	// A garbled currterm is corruption, not term 0.
	vfs.WriteFileAtomic(fs, filepath.Join(testDir, "currterm"), []byte("currTerm=x1\n"))
	if _, err := Open(fs, testDir, cfg); !IsCorrupt(err) {
		t.Fatalf("garbled currterm: %v", err)
	}
}

// TestConcurrentReaders runs readers against Append, truncation and
// retention under -race.
func TestConcurrentReaders(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(t)
	cfg.Logger = nil
	s := mustOpen(t, fs, cfg)
	rng := rand.New(rand.NewPCG(11, 12))
	var m model
	es, _ := batch(s.FileLayout, 0, 0, 5, 1, rng, 10, 200)
	mustNotErr(t, s.Append(es), "append")
	m.append(es)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			rr := rand.New(rand.NewPCG(uint64(r), 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				first, last := s.FirstIndex(), s.LastIndex()
				if last < first || first < 0 {
					continue
				}
				i := first + rr.Int64N(last-first+1)
				es, err := s.Entries(i, last+1, 4096)
				if err == nil {
					for _, e := range es {
						if !bytes.Equal(e.Body, body(e.Index, e.Term, len(e.Body))) {
							t.Errorf("reader saw a wrong body at %d", e.Index)
							return
						}
					}
				} else if IsCorrupt(err) {
					t.Errorf("reader: %v", err)
					return
				}
				s.Term(i)                              //nolint:errcheck
				s.ReadAt(make([]byte, 64), s.End()-64) //nolint:errcheck
			}
		}(r)
	}
	term := int64(1)
	for i := 0; i < 300; i++ {
		switch {
		case i%50 == 49:
			s.DeleteBefore(m.last() - 20) //nolint:errcheck
			m.entries = m.entries[s.FirstIndex()-m.entries[0].Index:]
		case i%7 == 6 && len(m.entries) > 10:
			at := m.last() - int64(rng.IntN(5))
			if at <= s.FirstIndex() {
				continue
			}
			prev := m.entries[at-1-m.entries[0].Index]
			term++
			es, _ := batch(s.FileLayout, prev.Pos+prev.Size(), at, 3, term, rng, 10, 200)
			mustNotErr(t, s.Append(es), "truncate")
			m.append(es)
		default:
			es, _ := batch(s.FileLayout, s.End(), m.last()+1, 1+rng.IntN(5), term, rng, 10, 200)
			mustNotErr(t, s.Append(es), "append")
			m.append(es)
		}
		if i%10 == 0 {
			mustNotErr(t, s.Sync(), "sync")
		}
	}
	close(stop)
	wg.Wait()
	checkLog(t, s, m.entries)
	s.Close()
}
