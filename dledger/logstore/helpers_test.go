package logstore

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/rmqd/rmqd/dledger"
	"github.com/rmqd/rmqd/internal/vfs"
)

const testDir = "/s/dledger-n0"

func testConfig(t testing.TB) Config {
	cfg := Config{DataFileSize: 4096, IndexFileSize: 32 * 64, CheckpointInterval: -1}
	if tt, ok := t.(*testing.T); ok {
		cfg.Logger = zaptest.NewLogger(tt)
	}
	return cfg
}

func mustOpen(t testing.TB, fs vfs.FS, cfg Config) *Store {
	t.Helper()
	s, err := Open(fs, testDir, cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

// body returns a deterministic body for an entry.
func body(index, term int64, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(int64(i)*7 + index*13 + term)
	}
	return b
}

// batch builds n entries after (prevIndex, end) with the given term and body
// sizes drawn from rng in [minSize, maxSize].
func batch(l FileLayout, end, first int64, n int, term int64, rng *rand.Rand, minSize, maxSize int) ([]dledger.Entry, int64) {
	es := make([]dledger.Entry, n)
	for i := range es {
		sz := minSize
		if maxSize > minSize {
			sz += rng.IntN(maxSize - minSize + 1)
		}
		idx := first + int64(i)
		e := dledger.Entry{Index: idx, Term: term, Magic: MagicNormal, Body: body(idx, term, sz)}
		e.Pos, end = l.Place(end, e.Size())
		es[i] = e
	}
	return es, end
}

// model is what the log should hold.
type model struct {
	entries []dledger.Entry // consecutive from entries[0].Index
}

func (m *model) append(es []dledger.Entry) {
	if len(es) == 0 {
		return
	}
	if len(m.entries) > 0 {
		cut := es[0].Index - m.entries[0].Index
		if cut < 0 {
			cut = 0
		}
		if cut < int64(len(m.entries)) {
			m.entries = m.entries[:cut]
		}
	}
	m.entries = append(m.entries, es...)
}

func (m *model) last() int64 {
	if len(m.entries) == 0 {
		return -1
	}
	return m.entries[len(m.entries)-1].Index
}

func (m *model) end() int64 {
	e := m.entries[len(m.entries)-1]
	return e.Pos + e.Size()
}

func sameEntry(a, b dledger.Entry) bool {
	return a.Index == b.Index && a.Term == b.Term && a.Pos == b.Pos && magicOf(&a) == magicOf(&b) && bytes.Equal(a.Body, b.Body)
}

// checkPrefix verifies that s holds exactly m.entries[:n] (from s's first index).
func checkLog(t testing.TB, s *Store, want []dledger.Entry) {
	t.Helper()
	if len(want) == 0 {
		if s.LastIndex() != -1 {
			t.Fatalf("want empty log, last = %d", s.LastIndex())
		}
		return
	}
	first, last := want[0].Index, want[len(want)-1].Index
	if s.FirstIndex() != first || s.LastIndex() != last {
		t.Fatalf("first/last = %d/%d, want %d/%d", s.FirstIndex(), s.LastIndex(), first, last)
	}
	if s.LastTerm() != want[len(want)-1].Term {
		t.Fatalf("last term %d, want %d", s.LastTerm(), want[len(want)-1].Term)
	}
	if e := want[len(want)-1]; s.End() != e.Pos+e.Size() {
		t.Fatalf("end %d, want %d", s.End(), e.Pos+e.Size())
	}
	got, err := s.Entries(first, last+1, math.MaxInt64)
	if err != nil {
		t.Fatalf("entries [%d, %d]: %v", first, last, err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d", len(got), len(want))
	}
	for i := range want {
		if !sameEntry(got[i], want[i]) {
			t.Fatalf("entry %d: got {%d %d %d %d len %d}, want {%d %d %d %d len %d}", want[i].Index,
				got[i].Index, got[i].Term, got[i].Pos, got[i].Magic, len(got[i].Body),
				want[i].Index, want[i].Term, want[i].Pos, want[i].Magic, len(want[i].Body))
		}
		term, err := s.Term(want[i].Index)
		if err != nil || term != want[i].Term {
			t.Fatalf("term(%d) = %d, %v; want %d", want[i].Index, term, err, want[i].Term)
		}
	}
}

// isPrefixOf reports whether got (from the store) is a prefix of want.
func prefixLen(t testing.TB, s *Store, want []dledger.Entry) int {
	t.Helper()
	last := s.LastIndex()
	if last < 0 {
		return 0
	}
	if s.FirstIndex() != want[0].Index {
		t.Fatalf("first %d, want %d", s.FirstIndex(), want[0].Index)
	}
	n := int(last - want[0].Index + 1)
	if n > len(want) {
		t.Fatalf("recovered %d entries, only %d were written", n, len(want))
	}
	checkLog(t, s, want[:n])
	return n
}

func mustNotErr(t testing.TB, err error, format string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", fmt.Sprintf(format, args...), err)
	}
}

func wantIs(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("err = %v, want %v", err, target)
	}
}
