package dledger

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"sync"
)

// FileLayout is Java DLedger's placement rule: data files of FileSize
// bytes; an entry never spans files, and when entry+8 bytes do not fit in
// the rest of the current file the rest becomes end-of-file padding and the
// entry starts the next file.
type FileLayout struct{ FileSize int64 }

// Place implements Layout.
func (l FileLayout) Place(end, size int64) (pos, newEnd int64) {
	if l.FileSize <= 0 {
		return end, end + size
	}
	off := end % l.FileSize
	if off != 0 && off+size+8 > l.FileSize {
		end += l.FileSize - off
	}
	return end, end + size
}

// MemoryStorage is an in-memory LogStorage for tests and the simulator. It
// remembers which prefix of the log was synced so a crash can be simulated:
// CrashCopy keeps only synced entries (power loss), Copy keeps everything
// appended (process crash: the page cache survives). Safe for concurrent
// readers.
type MemoryStorage struct {
	FileLayout
	mu        sync.RWMutex
	base      int64 // End() of an empty log
	first     int64 // index of ents[0] when the log is empty-from-start: 0
	ents      []Entry
	synced    int // ents[:synced] are durable
	hard      HardState
	committed int64
	syncs     int
}

// NewMemoryStorage returns an empty log with the given data file size
// (0 = no padding).
func NewMemoryStorage(fileSize int64) *MemoryStorage {
	return &MemoryStorage{FileLayout: FileLayout{FileSize: fileSize}, committed: -1}
}

// NewMemoryStorageAt returns an empty log whose first entry goes at start
// (a leader's log that begins after data kept outside it; logstore's
// Config.StartPos).
func NewMemoryStorageAt(fileSize, start int64) *MemoryStorage {
	s := NewMemoryStorage(fileSize)
	s.base = start
	return s
}

// FirstIndex implements LogStorage.
func (s *MemoryStorage) FirstIndex() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.ents) == 0 {
		return -1
	}
	return s.ents[0].Index
}

// LastIndex implements LogStorage.
func (s *MemoryStorage) LastIndex() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.lastLocked()
}

func (s *MemoryStorage) lastLocked() int64 {
	if len(s.ents) == 0 {
		return s.first - 1
	}
	return s.ents[len(s.ents)-1].Index
}

// LastTerm implements LogStorage.
func (s *MemoryStorage) LastTerm() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.ents) == 0 {
		return 0
	}
	return s.ents[len(s.ents)-1].Term
}

// End implements LogStorage.
func (s *MemoryStorage) End() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.ents) == 0 {
		return s.base
	}
	e := &s.ents[len(s.ents)-1]
	return e.Pos + e.Size()
}

func (s *MemoryStorage) locate(index int64) (int, error) {
	if len(s.ents) == 0 || index > s.lastLocked() {
		return 0, ErrUnavailable
	}
	if index < s.ents[0].Index {
		return 0, ErrCompacted
	}
	return int(index - s.ents[0].Index), nil
}

// Term implements LogStorage.
func (s *MemoryStorage) Term(index int64) (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	i, err := s.locate(index)
	if err != nil {
		return 0, err
	}
	return s.ents[i].Term, nil
}

// Entry implements LogStorage.
func (s *MemoryStorage) Entry(index int64) (Entry, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	i, err := s.locate(index)
	if err != nil {
		return Entry{}, err
	}
	return s.ents[i], nil
}

// Entries implements LogStorage.
func (s *MemoryStorage) Entries(lo, hi, maxBytes int64) ([]Entry, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if lo >= hi {
		return nil, nil
	}
	i, err := s.locate(lo)
	if err != nil {
		return nil, err
	}
	if hi-1 > s.lastLocked() {
		return nil, ErrUnavailable
	}
	var out []Entry
	var size int64
	for j := i; j < i+int(hi-lo); j++ {
		if len(out) > 0 && size+s.ents[j].Size() > maxBytes {
			break
		}
		out = append(out, s.ents[j])
		size += s.ents[j].Size()
	}
	return out, nil
}

// ReadAt implements LogStorage: it renders entries in Java DLedger's data
// file format (48-byte header, body CRC filled in) and end-of-file padding.
func (s *MemoryStorage) ReadAt(p []byte, pos int64) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	end := s.base
	if n := len(s.ents); n > 0 {
		end = s.ents[n-1].Pos + s.ents[n-1].Size()
	}
	if pos < 0 || pos+int64(len(p)) > end {
		return 0, fmt.Errorf("dledger: read [%d,%d) past end %d", pos, pos+int64(len(p)), end)
	}
	if len(s.ents) > 0 && pos < s.ents[0].Pos {
		return 0, fmt.Errorf("%w: read at %d below the first entry at %d", ErrCompacted, pos, s.ents[0].Pos)
	}
	i, _ := slices.BinarySearchFunc(s.ents, pos, func(e Entry, p int64) int {
		switch {
		case e.Pos+e.Size() <= p:
			return -1
		case e.Pos > p:
			return 1
		}
		return 0
	})
	n := 0
	for n < len(p) && i < len(s.ents) {
		e := &s.ents[i]
		cur := pos + int64(n)
		if cur < e.Pos { // padding before e
			gap := p[n:min(len(p), n+int(e.Pos-cur))]
			for k := range gap {
				gap[k] = 0
			}
			n += len(gap)
			continue
		}
		// Header and body straight into p (the dispatcher reads every
		// entry through here: no per-entry record to allocate and copy).
		var hdr [EntryHeaderSize]byte
		putEntryHeader(hdr[:], e)
		off := cur - e.Pos
		if off < EntryHeaderSize {
			k := copy(p[n:], hdr[off:])
			n += k
			off += int64(k)
		}
		if n < len(p) {
			n += copy(p[n:], e.Body[off-EntryHeaderSize:])
		}
		i++
	}
	return n, nil
}

// EncodeEntry renders e in Java DLedger's on-disk format: magic, size,
// index, term, pos, channel, chainCrc, bodyCrc (CRC32 of the body), bodySize
// (all big-endian), then the body.
func EncodeEntry(e *Entry) []byte {
	b := make([]byte, EntryHeaderSize+len(e.Body))
	putEntryHeader(b, e)
	copy(b[EntryHeaderSize:], e.Body)
	return b
}

// putEntryHeader writes e's 48-byte header into b.
func putEntryHeader(b []byte, e *Entry) {
	binary.BigEndian.PutUint32(b[0:], uint32(e.Magic))
	binary.BigEndian.PutUint32(b[4:], uint32(e.Size()))
	binary.BigEndian.PutUint64(b[8:], uint64(e.Index))
	binary.BigEndian.PutUint64(b[16:], uint64(e.Term))
	binary.BigEndian.PutUint64(b[24:], uint64(e.Pos))
	binary.BigEndian.PutUint32(b[40:], crc32.ChecksumIEEE(e.Body))
	binary.BigEndian.PutUint32(b[44:], uint32(len(e.Body)))
}

// Append implements LogStorage.
func (s *MemoryStorage) Append(ents []Entry) error {
	if len(ents) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	first := ents[0].Index
	last := s.lastLocked()
	lo := s.first
	if len(s.ents) > 0 {
		lo = s.ents[0].Index
	}
	if first < lo || first > last+1 {
		return fmt.Errorf("dledger: append at %d outside [%d,%d]", first, lo, last+1)
	}
	end := s.base
	keep := int(first - lo)
	if keep > 0 {
		e := &s.ents[keep-1]
		end = e.Pos + e.Size()
	} else if p, _ := s.Place(ents[0].Pos, ents[0].Size()); p == ents[0].Pos {
		// The entries replace the whole log (or start an empty one): the
		// log begins at the first one's position (logstore's reset).
		end = ents[0].Pos
	}
	for i := range ents {
		if ents[i].Index != first+int64(i) {
			return fmt.Errorf("dledger: append: non-consecutive index %d", ents[i].Index)
		}
		pos, ne := s.Place(end, ents[i].Size())
		if pos != ents[i].Pos {
			return fmt.Errorf("dledger: append: index %d at pos %d, layout says %d", ents[i].Index, ents[i].Pos, pos)
		}
		end = ne
	}
	if keep == 0 {
		s.base = ents[0].Pos
	}
	if need := keep + len(ents); need > cap(s.ents) {
		// Double: append grows a large slice by 1.25x, copying the whole
		// log (and leaving the old array to the GC) every few appends.
		grown := make([]Entry, keep, max(2*cap(s.ents), need, 256))
		copy(grown, s.ents[:keep])
		s.ents = grown
	}
	s.ents = append(s.ents[:keep], ents...)
	s.synced = min(s.synced, keep)
	return nil
}

// Sync implements LogStorage.
func (s *MemoryStorage) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.synced = len(s.ents)
	s.syncs++
	return nil
}

// Syncs returns how many times Sync was called.
func (s *MemoryStorage) Syncs() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.syncs
}

// HardState implements LogStorage.
func (s *MemoryStorage) HardState() HardState {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.hard
}

// SetHardState implements LogStorage (durable at once).
func (s *MemoryStorage) SetHardState(h HardState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hard = h
	return nil
}

// SetCommitted implements LogStorage.
func (s *MemoryStorage) SetCommitted(index int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.committed = index
	return nil
}

// Committed implements LogStorage.
func (s *MemoryStorage) Committed() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.committed
}

// Close implements LogStorage.
func (s *MemoryStorage) Close() error { return nil }

// Copy returns what survives a process crash: everything appended.
func (s *MemoryStorage) Copy() *MemoryStorage {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return &MemoryStorage{FileLayout: s.FileLayout, base: s.base, first: s.first,
		ents: slices.Clone(s.ents), synced: s.synced, hard: s.hard, committed: s.committed}
}

// CrashCopy returns what survives a power loss: synced entries, the hard
// state (always synced) and the committed hint.
func (s *MemoryStorage) CrashCopy() *MemoryStorage {
	c := s.Copy()
	c.ents = c.ents[:c.synced:c.synced]
	return c
}

// Snapshot returns a copy of all entries (for checkers).
func (s *MemoryStorage) Snapshot() []Entry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.ents)
}

var _ LogStorage = (*MemoryStorage)(nil)
