package dledger

import (
	"errors"
	"fmt"
)

// raftLog is the core's view of the log: the durable LogStorage plus the
// unstable tail that a Ready has not handed out for persistence yet.
//
// Invariants:
//   - unstable entries have consecutive indexes starting at offset;
//   - offset <= storage.LastIndex()+1; when offset <= storage.LastIndex()
//     the storage entries at offset and above are stale (the next Append
//     truncates them) and every read of them goes to unstable;
//   - committed <= lastIndex().
type raftLog struct {
	storage   LogStorage
	unstable  []Entry
	offset    int64
	committed int64 // highest index known committed; -1 none

	// recent caches the newest entries handed to storage (consecutive,
	// the last one at offset-1 when not empty, equal to what storage holds
	// there), so a leader replicating entries just persisted does not read
	// them back from storage. Bounded by recentMaxBytes/recentMaxEntries.
	recent      []Entry
	recentBytes int64
	recentBuf   []Entry // recent's backing array, reused from its front
}

const (
	recentMaxBytes   = 8 << 20
	recentMaxEntries = 16384
)

func newRaftLog(s LogStorage) *raftLog {
	l := &raftLog{storage: s, offset: s.LastIndex() + 1, committed: -1}
	if c := s.Committed(); c >= 0 {
		l.committed = min(c, s.LastIndex())
	}
	return l
}

func (l *raftLog) lastIndex() int64 {
	if n := len(l.unstable); n > 0 {
		return l.unstable[n-1].Index
	}
	return l.storage.LastIndex()
}

// firstIndex is the first index still readable (-1 or 0 for a log that never
// dropped entries).
func (l *raftLog) firstIndex() int64 {
	if f := l.storage.FirstIndex(); f >= 0 {
		return f
	}
	if len(l.unstable) > 0 {
		return l.unstable[0].Index
	}
	return l.storage.LastIndex() + 1
}

func (l *raftLog) lastTerm() int64 {
	t, err := l.term(l.lastIndex())
	if err != nil {
		return 0
	}
	return t
}

// term returns the term of the entry at i; index -1 (before the first entry
// of a log that starts at 0) has term 0.
func (l *raftLog) term(i int64) (int64, error) {
	if n := len(l.unstable); n > 0 && i >= l.offset {
		if i > l.unstable[n-1].Index {
			return 0, ErrUnavailable
		}
		return l.unstable[i-l.offset].Term, nil
	}
	if i == -1 {
		return 0, nil
	}
	if i < -1 {
		return 0, ErrCompacted
	}
	if i > l.storage.LastIndex() {
		return 0, ErrUnavailable
	}
	return l.storage.Term(i)
}

func (l *raftLog) matchTerm(i, t int64) bool {
	lt, err := l.term(i)
	return err == nil && lt == t
}

// end is the byte position just past the last entry.
func (l *raftLog) end() int64 {
	if n := len(l.unstable); n > 0 {
		return l.unstable[n-1].Pos + l.unstable[n-1].Size()
	}
	return l.storage.End()
}

// entryEnd is the byte position just past entry i; ok is false when that is
// not known (entry compacted or unreadable).
func (l *raftLog) entryEnd(i int64) (int64, bool) {
	if n := len(l.unstable); n > 0 && i >= l.offset && i <= l.unstable[n-1].Index {
		e := &l.unstable[i-l.offset]
		return e.Pos + e.Size(), true
	}
	if n := len(l.recent); n > 0 && i >= l.recent[0].Index && i <= l.recent[n-1].Index {
		e := &l.recent[i-l.recent[0].Index]
		return e.Pos + e.Size(), true
	}
	last := l.storage.LastIndex()
	if i == last {
		return l.storage.End(), true
	}
	if i == -1 && last == -1 {
		return l.storage.End(), true
	}
	if i < 0 || i > last {
		return 0, false
	}
	e, err := l.storage.Entry(i)
	if err != nil {
		return 0, false
	}
	return e.Pos + e.Size(), true
}

// entries returns a fresh slice of entries in [lo, hi), at most maxCount of
// them and stopping once maxBytes is exceeded (at least one entry).
func (l *raftLog) entries(lo, hi int64, maxBytes int64, maxCount int) ([]Entry, error) {
	if hi-lo > int64(maxCount) {
		hi = lo + int64(maxCount)
	}
	if lo >= hi {
		return nil, nil
	}
	var out []Entry
	var size int64
	if lo < l.offset {
		shi := min(hi, l.offset, l.storage.LastIndex()+1)
		if lo < shi {
			var ents []Entry
			if n := len(l.recent); n > 0 && lo >= l.recent[0].Index && shi-1 <= l.recent[n-1].Index {
				ents = l.recentEntries(lo, shi, maxBytes)
			} else {
				var err error
				if ents, err = l.storage.Entries(lo, shi, maxBytes); err != nil {
					return nil, err
				}
			}
			more := max(0, min(hi, l.offset+int64(len(l.unstable)))-max(lo, l.offset))
			out = append(make([]Entry, 0, int64(len(ents))+more), ents...)
			for i := range ents {
				size += ents[i].Size()
			}
			if int64(len(ents)) < shi-lo || size >= maxBytes {
				return out, nil
			}
		}
	}
	if n := len(l.unstable); n > 0 && hi > l.offset {
		from := max(lo, l.offset) - l.offset
		to := min(hi-l.offset, int64(n))
		for i := from; i < to; i++ {
			e := l.unstable[i]
			if len(out) > 0 && size+e.Size() > maxBytes {
				break
			}
			out = append(out, e)
			size += e.Size()
		}
	}
	return out, nil
}

// recentEntries is storage.Entries(lo, hi, maxBytes) served from recent,
// which holds [lo, hi): entries while they fit in maxBytes, at least one.
func (l *raftLog) recentEntries(lo, hi, maxBytes int64) []Entry {
	src := l.recent[lo-l.recent[0].Index : hi-l.recent[0].Index]
	var size int64
	k := 0
	for k < len(src) {
		sz := src[k].Size()
		if k > 0 && size+sz > maxBytes {
			break
		}
		size += sz
		k++
	}
	return src[:k:k]
}

// findConflict returns the index of the first entry in ents whose term
// differs from the log's (or that is beyond the log), or -1 when all match.
func (l *raftLog) findConflict(ents []Entry) int64 {
	for i := range ents {
		if !l.matchTerm(ents[i].Index, ents[i].Term) {
			return ents[i].Index
		}
	}
	return -1
}

// findConflictByTerm returns the largest index <= index whose term is <=
// term (-1 if none): the leader's and follower's logs cannot match above it.
func (l *raftLog) findConflictByTerm(index, term int64) int64 {
	for index = min(index, l.lastIndex()); index >= 0; index-- {
		t, err := l.term(index)
		if err != nil {
			return index
		}
		if t <= term {
			return index
		}
	}
	return -1
}

// append adds ents (whose first index is in [offset-?, lastIndex+1]) to the
// unstable tail, truncating any entries at and after ents[0].Index.
func (l *raftLog) append(ents []Entry) {
	if len(ents) == 0 {
		return
	}
	after := ents[0].Index
	switch {
	case len(l.unstable) > 0 && after == l.offset+int64(len(l.unstable)):
		l.unstable = append(l.unstable, ents...)
	case len(l.unstable) == 0 && after == l.offset:
		l.unstable = append([]Entry(nil), ents...)
	case after <= l.offset:
		l.offset = after
		l.unstable = append([]Entry(nil), ents...)
		l.trimRecent(after)
	default:
		keep := l.unstable[:after-l.offset]
		l.unstable = append(append(make([]Entry, 0, len(keep)+len(ents)), keep...), ents...)
	}
}

// appendOwned is append for entries the log may keep as they are (the
// caller gives them up): when they start the unstable tail they become it
// (capacity cut, so a later append cannot write past them into the
// caller's array).
func (l *raftLog) appendOwned(ents []Entry) {
	if len(l.unstable) == 0 && len(ents) > 0 && ents[0].Index == l.offset {
		l.unstable = ents[:len(ents):len(ents)]
		return
	}
	l.append(ents)
}

// stableTo marks everything in the unstable tail as handed to storage.
func (l *raftLog) stableTo(last int64) {
	if n := len(l.unstable); n > 0 && l.unstable[n-1].Index == last {
		if r := len(l.recent); r > 0 && l.recent[r-1].Index != l.unstable[0].Index-1 {
			l.recent, l.recentBytes = nil, 0 // not consecutive (cannot happen; be safe)
		}
		for i := range l.unstable {
			l.recentBytes += l.unstable[i].Size()
		}
		l.appendRecent(l.unstable)
		k := 0
		for k < len(l.recent)-1 && (l.recentBytes > recentMaxBytes || len(l.recent)-k > recentMaxEntries) {
			l.recentBytes -= l.recent[k].Size()
			k++
		}
		if k > 0 {
			clear(l.recent[:k]) // drop body references
			l.recent = l.recent[k:]
		}
		l.unstable = nil
		l.offset = last + 1
	}
}

// appendRecent appends ents to recent, moving recent back to the front of
// its backing array when it reached the end (trimming advances recent's
// start, so append alone would allocate a new array every few Readies).
func (l *raftLog) appendRecent(ents []Entry) {
	if len(l.recent)+len(ents) > cap(l.recent) {
		need := len(l.recent) + len(ents)
		if cap(l.recentBuf) < need || cap(l.recentBuf) > 4*need+1024 {
			l.recentBuf = make([]Entry, 0, 2*need)
		}
		l.recent = append(l.recentBuf[:0], l.recent...) // copy handles the overlap
		// Drop body references left behind (a replaced array is garbage).
		clear(l.recentBuf[len(l.recent):cap(l.recentBuf)])
	}
	l.recent = append(l.recent, ents...)
}

// trimRecent drops cached entries at and after index from (storage is
// about to overwrite them).
func (l *raftLog) trimRecent(from int64) {
	for n := len(l.recent); n > 0 && l.recent[n-1].Index >= from; n-- {
		l.recentBytes -= l.recent[n-1].Size()
		l.recent[n-1] = Entry{}
		l.recent = l.recent[:n-1]
	}
}

// commitTo raises committed; it never lowers it.
func (l *raftLog) commitTo(c int64) bool {
	c = min(c, l.lastIndex())
	if c > l.committed {
		l.committed = c
		return true
	}
	return false
}

var errPosMismatch = errors.New("dledger: entry position does not match the local layout")

// checkPositions verifies that ents, about to be written after index
// ents[0].Index-1, sit where this replica's Layout would put them.
//
// The first entry of a log (index 0) has no predecessor: a log may begin
// at any position its Layout allows (a leader whose storage started at a
// configured position), and a follower begins where the leader's first
// entry is, whatever its own empty log's End was. Storage resets to it.
func (l *raftLog) checkPositions(ents []Entry) error {
	end, ok := l.entryEnd(ents[0].Index - 1)
	if !ok || ents[0].Index == 0 {
		end = ents[0].Pos // no or unknown predecessor (compacted): trust the first
	}
	for i := range ents {
		pos, newEnd := l.storage.Place(end, ents[i].Size())
		if pos != ents[i].Pos {
			return fmt.Errorf("%w: index %d pos %d, local layout says %d", errPosMismatch, ents[i].Index, ents[i].Pos, pos)
		}
		end = newEnd
	}
	return nil
}
