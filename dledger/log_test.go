package dledger

import (
	"fmt"
	"testing"
)

// The cache of recently persisted entries keeps matching storage while it
// slides (trimmed at the front by its bounds, moved back to the front of
// its array) and after truncations.
func TestRecentCacheMatchesStorage(t *testing.T) {
	s := NewMemoryStorage(0)
	l := newRaftLog(s)
	next, end := int64(0), int64(0)
	write := func(from int64, n int) {
		ents := make([]Entry, n)
		for i := range ents {
			ents[i] = Entry{Magic: MagicNormal, Term: 1, Body: fmt.Appendf(nil, "e%d-%d", from+int64(i), n)}
		}
		if from < next {
			e, _ := l.entryEnd(from - 1)
			end = e
		}
		end, _ = PlaceEntries(s, ents, from, 1, end, nil)
		l.append(ents)
		if err := s.Append(l.unstable); err != nil {
			t.Fatal(err)
		}
		l.stableTo(ents[n-1].Index)
		next = from + int64(n)
	}
	check := func() {
		t.Helper()
		if len(l.recent) == 0 || l.recent[len(l.recent)-1].Index != next-1 || len(l.recent) > recentMaxEntries {
			t.Fatalf("recent has %d entries, last %v, log ends at %d", len(l.recent), l.recent[len(l.recent)-1].Index, next-1)
		}
		for i, e := range l.recent {
			se, err := s.Entry(e.Index)
			if err != nil || string(se.Body) != string(e.Body) || se.Pos != e.Pos || (i > 0 && l.recent[i-1].Index+1 != e.Index) {
				t.Fatalf("recent entry %d: %q at %d, storage %q at %d (%v)", e.Index, e.Body, e.Pos, se.Body, se.Pos, err)
			}
		}
	}
	for i := range 3000 {
		write(next, 1+i%37)
		if i%250 == 0 && next > 100 {
			l.trimRecent(next - 40)
			write(next-40, 7) // a follower overwriting its tail
		}
		check()
	}
}

// MemoryStorage.ReadAt serves any byte range as the on-disk format would
// hold it: headers, bodies and end-of-file padding, from any offset.
func TestMemoryStorageReadAtAnyRange(t *testing.T) {
	s := NewMemoryStorage(300) // small files: entries get padded
	var ents []Entry
	end := int64(0)
	for i := range 12 {
		e := []Entry{{Magic: MagicNormal, Body: fmt.Appendf(nil, "body-%d-%s", i, make([]byte, i*7))}}
		end, _ = PlaceEntries(s, e, int64(i), 1, end, nil)
		ents = append(ents, e...)
	}
	if err := s.Append(ents); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, end)
	for i := range ents {
		copy(want[ents[i].Pos:], EncodeEntry(&ents[i]))
	}
	for lo := int64(0); lo < end; lo += 3 {
		for _, n := range []int64{1, 5, 47, 48, 49, 100, end - lo} {
			if lo+n > end {
				continue
			}
			got := make([]byte, n)
			for k := range got {
				got[k] = 0xee // padding must be zeroed
			}
			if k, err := s.ReadAt(got, lo); err != nil || k != int(n) || string(got) != string(want[lo:lo+n]) {
				t.Fatalf("ReadAt(%d, %d) = %d, %v: %x, want %x", lo, n, k, err, got, want[lo:lo+n])
			}
		}
	}
}
