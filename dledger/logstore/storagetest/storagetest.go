// Package storagetest is a contract test suite for dledger.LogStorage: one
// suite run over every implementation (the file store in dledger/logstore
// and the in-memory twin in dledger), so both behave alike where the Raft
// core can tell.
//
// Usage, in a _test.go file:
//
//	func TestContract(t *testing.T) {
//		storagetest.Run(t, storagetest.Factory{
//			New:    func(t *testing.T) dledger.LogStorage { ... },
//			Reopen: func(t *testing.T, old dledger.LogStorage) dledger.LogStorage { ... },
//		})
//	}
//
// New returns an empty store whose Layout rolls files every few KiB (4096
// bytes suits the suite). Reopen, optional, simulates a power loss: it
// returns the store as recovered from what old had synced (the suite stops
// using old).
package storagetest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"sync"
	"testing"

	"github.com/rmqd/rmqd/dledger"
)

// Factory makes stores for the suite.
type Factory struct {
	New    func(t *testing.T) dledger.LogStorage
	Reopen func(t *testing.T, old dledger.LogStorage) dledger.LogStorage
}

// Run runs every contract test as a subtest.
func Run(t *testing.T, f Factory) {
	t.Run("Empty", func(t *testing.T) { testEmpty(t, f) })
	t.Run("AppendRead", func(t *testing.T) { testAppendRead(t, f) })
	t.Run("TruncateSuffix", func(t *testing.T) { testTruncate(t, f) })
	t.Run("Rejects", func(t *testing.T) { testRejects(t, f) })
	t.Run("ConcurrentReaders", func(t *testing.T) { testConcurrent(t, f) })
	if f.Reopen != nil {
		t.Run("Reopen", func(t *testing.T) { testReopen(t, f) })
	}
}

// Body returns the deterministic body the suite writes for an entry.
func Body(index, term int64, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(int64(i)*7 + index*13 + term)
	}
	return b
}

// entries builds n entries after the store's end, body sizes cycling
// through sizes.
func entries(s dledger.LogStorage, end, first int64, n int, term int64, sizes []int) []dledger.Entry {
	es := make([]dledger.Entry, n)
	for i := range es {
		idx := first + int64(i)
		e := dledger.Entry{Index: idx, Term: term, Magic: 1, Body: Body(idx, term, sizes[int(idx)%len(sizes)])}
		e.Pos, end = s.Place(end, e.Size())
		es[i] = e
	}
	return es
}

var sizes = []int{0, 100, 700, 33, 1500, 400, 2, 999}

func same(a, b dledger.Entry) bool {
	return a.Index == b.Index && a.Term == b.Term && a.Pos == b.Pos && bytes.Equal(a.Body, b.Body)
}

// Check verifies that s holds exactly want (from want[0].Index).
func Check(t testing.TB, s dledger.LogStorage, want []dledger.Entry) {
	t.Helper()
	first, last := want[0].Index, want[len(want)-1].Index
	if s.FirstIndex() != first || s.LastIndex() != last || s.LastTerm() != want[len(want)-1].Term {
		t.Fatalf("first/last/lastTerm = %d/%d/%d, want %d/%d/%d", s.FirstIndex(), s.LastIndex(), s.LastTerm(), first, last, want[len(want)-1].Term)
	}
	if e := want[len(want)-1]; s.End() != e.Pos+e.Size() {
		t.Fatalf("End = %d, want %d", s.End(), e.Pos+e.Size())
	}
	got, err := s.Entries(first, last+1, math.MaxInt64)
	if err != nil || len(got) != len(want) {
		t.Fatalf("Entries(%d, %d): %d entries, %v", first, last+1, len(got), err)
	}
	for i := range want {
		if !same(got[i], want[i]) {
			t.Fatalf("entry %d: got index %d term %d pos %d len %d", want[i].Index, got[i].Index, got[i].Term, got[i].Pos, len(got[i].Body))
		}
		e, err := s.Entry(want[i].Index)
		if err != nil || !same(e, want[i]) {
			t.Fatalf("Entry(%d): %v", want[i].Index, err)
		}
		if term, err := s.Term(want[i].Index); err != nil || term != want[i].Term {
			t.Fatalf("Term(%d) = %d, %v", want[i].Index, term, err)
		}
	}
}

func testEmpty(t *testing.T, f Factory) {
	s := f.New(t)
	defer s.Close()
	if s.FirstIndex() != -1 || s.LastIndex() != -1 || s.LastTerm() != 0 {
		t.Fatalf("empty: %d %d %d", s.FirstIndex(), s.LastIndex(), s.LastTerm())
	}
	if _, err := s.Term(0); !errors.Is(err, dledger.ErrUnavailable) {
		t.Fatalf("Term(0) on empty: %v", err)
	}
	if _, err := s.Entry(0); !errors.Is(err, dledger.ErrUnavailable) {
		t.Fatalf("Entry(0) on empty: %v", err)
	}
}

func testAppendRead(t *testing.T, f Factory) {
	s := f.New(t)
	defer s.Close()
	var all []dledger.Entry
	for term := int64(1); term <= 3; term++ {
		for b := 0; b < 4; b++ {
			es := entries(s, s.End(), int64(len(all)), 1+b*3, term, sizes)
			if err := s.Append(es); err != nil {
				t.Fatalf("append: %v", err)
			}
			all = append(all, es...)
		}
	}
	Check(t, s, all)
	rolled := false
	for i := 1; i < len(all); i++ {
		if all[i].Pos != all[i-1].Pos+all[i-1].Size() {
			rolled = true
		}
	}
	if !rolled {
		t.Fatal("the layout never rolled to a new file; use a smaller file size")
	}
	// maxBytes: at least one entry, then only whole entries within budget.
	if got, err := s.Entries(0, int64(len(all)), 0); err != nil || len(got) != 1 {
		t.Fatalf("Entries maxBytes=0: %d %v", len(got), err)
	}
	budget := all[0].Size() + all[1].Size() + all[2].Size()
	if got, err := s.Entries(0, int64(len(all)), budget); err != nil || len(got) != 3 {
		t.Fatalf("Entries maxBytes=%d: %d %v", budget, len(got), err)
	}
	if got, err := s.Entries(0, int64(len(all)), budget-1); err != nil || len(got) != 2 {
		t.Fatalf("Entries maxBytes=%d: %d %v", budget-1, len(got), err)
	}
	if _, err := s.Entries(0, int64(len(all))+1, math.MaxInt64); !errors.Is(err, dledger.ErrUnavailable) {
		t.Fatalf("Entries past last: %v", err)
	}
	// ReadAt serves the on-disk form: header fields big-endian, then the body.
	for _, e := range all {
		b := make([]byte, e.Size())
		if n, err := s.ReadAt(b, e.Pos); err != nil || n != len(b) {
			t.Fatalf("ReadAt(%d): %d %v", e.Pos, n, err)
		}
		if int64(binary.BigEndian.Uint32(b[4:])) != e.Size() || int64(binary.BigEndian.Uint64(b[8:])) != e.Index ||
			int64(binary.BigEndian.Uint64(b[16:])) != e.Term || int64(binary.BigEndian.Uint64(b[24:])) != e.Pos ||
			!bytes.Equal(b[dledger.EntryHeaderSize:], e.Body) {
			t.Fatalf("ReadAt(%d): %x", e.Pos, b[:dledger.EntryHeaderSize])
		}
	}
	if _, err := s.ReadAt(make([]byte, 1), s.End()); err == nil {
		t.Fatal("ReadAt at End succeeded")
	}
}

func testTruncate(t *testing.T, f Factory) {
	s := f.New(t)
	defer s.Close()
	all := entries(s, s.End(), 0, 40, 1, sizes)
	if err := s.Append(all); err != nil {
		t.Fatal(err)
	}
	for i, at := range []int64{35, 20, 21, 5, 39} {
		if at > int64(len(all)) {
			continue
		}
		prev := all[at-1]
		repl := entries(s, prev.Pos+prev.Size(), at, 3+i, int64(2+i), []int{int(at) * 17 % 900, 300})
		if err := s.Append(repl); err != nil {
			t.Fatalf("truncate at %d: %v", at, err)
		}
		all = append(all[:at:at], repl...)
		Check(t, s, all)
	}
}

func testRejects(t *testing.T, f Factory) {
	s := f.New(t)
	defer s.Close()
	all := entries(s, s.End(), 0, 5, 1, sizes)
	if err := s.Append(all); err != nil {
		t.Fatal(err)
	}
	gap := entries(s, s.End(), 6, 1, 1, sizes)
	if err := s.Append(gap); err == nil {
		t.Fatal("gap accepted")
	}
	bad := entries(s, s.End(), 5, 1, 1, sizes)
	bad[0].Pos++
	if err := s.Append(bad); err == nil {
		t.Fatal("wrong pos accepted")
	}
	Check(t, s, all)
}

func testConcurrent(t *testing.T, f Factory) {
	s := f.New(t)
	defer s.Close()
	first := entries(s, s.End(), 0, 3, 1, sizes)
	if err := s.Append(first); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				last := s.LastIndex()
				es, err := s.Entries(0, last+1, 1<<16)
				if err != nil {
					continue // a truncation may race with the read
				}
				for _, e := range es {
					if !bytes.Equal(e.Body, Body(e.Index, e.Term, len(e.Body))) {
						t.Errorf("reader saw a wrong body at %d", e.Index)
						return
					}
				}
			}
		}()
	}
	all := first
	for i := 0; i < 100; i++ {
		es := entries(s, s.End(), int64(len(all)), 2, 1+int64(i/10), sizes)
		if err := s.Append(es); err != nil {
			t.Fatal(err)
		}
		all = append(all, es...)
		if i%10 == 0 {
			s.Sync()
		}
	}
	close(stop)
	wg.Wait()
	Check(t, s, all)
}

func testReopen(t *testing.T, f Factory) {
	s := f.New(t)
	all := entries(s, s.End(), 0, 30, 2, sizes)
	if err := s.Append(all); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := s.SetHardState(dledger.HardState{Term: 3, VotedFor: "n1"}); err != nil {
		t.Fatal(err)
	}
	s = f.Reopen(t, s)
	defer s.Close()
	Check(t, s, all)
	if hs := s.HardState(); hs.Term != 3 || hs.VotedFor != "n1" {
		t.Fatalf("hard state after reopen: %+v", hs)
	}
	more := entries(s, s.End(), 30, 5, 3, sizes)
	if err := s.Append(more); err != nil {
		t.Fatal(err)
	}
	Check(t, s, append(all, more...))
}
