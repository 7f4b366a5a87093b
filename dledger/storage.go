package dledger

import "errors"

// NOTE for dledger/logstore (from the dledger core/driver side, no contract
// change): the Node driver calls Append (+ Sync in sync mode) once per loop
// turn from its goroutine; SetCommitted about once a second and at Stop; in
// async mode it also calls SyncIndex every FlushInterval (50 ms) from a
// background goroutine when the store implements ConcurrentSyncer (node.go),
// relying on logstore's promise that SyncIndex may run concurrently with
// Append. Entry(i) is read only to learn an entry's end position (follower
// truncation, commit position after restart). ErrCorrupt from Term/Entries
// makes the replica stop voting and leading.

// This file is the contract between the Raft core/driver (package dledger)
// and its durable storage (package dledger/logstore, byte-compatible with
// Java DLedger, and an in-memory twin used by the simulator). Both sides are
// written against it; change it only with both in view.

// Entry header constants of Java DLedger's data files (dledger.md §2.2).
const (
	EntryHeaderSize = 48 // BODY_OFFSET: the body starts 48 bytes after Pos
	IndexSlotSize   = 32
)

// Entry is one replicated log entry. Index starts at 0 (as in Java DLedger).
// Pos is the entry's absolute byte position in the data file space; the
// leader assigns it when the entry is proposed (see Layout), so an append hook
// can write position-dependent bytes into Body (RocketMQ stores the message's
// physical offset, Pos+EntryHeaderSize, inside the message) before the entry
// is persisted or sent to any follower.
type Entry struct {
	Index int64
	Term  int64
	Pos   int64
	Magic int32 // 1 = normal; other values reserved (2 = no-op entry a new leader appends)
	Body  []byte
}

// Size is the entry's length on disk, header included.
func (e *Entry) Size() int64 { return EntryHeaderSize + int64(len(e.Body)) }

// HardState is what must be fsynced before a vote or a term is acted on.
type HardState struct {
	Term     int64
	VotedFor string // peer id, "" for none
}

// Layout places entries in the data file space. It is a pure function of the
// store's file size: an entry never spans data files, and a file's tail that
// cannot hold entry+8 bytes is filled with end-of-file padding.
type Layout interface {
	// Place returns where an entry of size bytes (header included) lands
	// when the previous entry ends at end, and where it ends.
	Place(end int64, size int64) (pos int64, newEnd int64)
}

// LogStorage is the durable log of one replica. Methods are called from the
// driver goroutine only; implementations need no locking against each other
// but readers (Entries, Term, ReadAt) may run concurrently with Append on
// other goroutines and must be safe for that.
type LogStorage interface {
	Layout
	// FirstIndex is ledgerBeginIndex (-1 when empty), LastIndex is
	// ledgerEndIndex (-1 when empty). End is the byte position just past the
	// last entry (where the next entry would be placed from).
	FirstIndex() int64
	LastIndex() int64
	LastTerm() int64
	End() int64
	// Term of the entry at index; ErrCompacted below FirstIndex, ErrUnavailable above LastIndex.
	Term(index int64) (int64, error)
	// Entry reads one entry by index.
	Entry(index int64) (Entry, error)
	// Entries reads [lo, hi) but stops once maxBytes is exceeded (always at least one entry).
	Entries(lo, hi int64, maxBytes int64) ([]Entry, error)
	// ReadAt reads entry bytes by position (RocketMQ's getMessage by physical
	// offset); reading past End is an error.
	ReadAt(p []byte, pos int64) (int, error)
	// Append writes entries with consecutive indexes starting at
	// entries[0].Index, which must be in [FirstIndex, LastIndex+1]; entries at
	// and after it are truncated first (a follower accepting a leader's
	// conflicting suffix). Each entry's Pos must equal what Layout.Place gives.
	// Append does not fsync.
	Append(entries []Entry) error
	// Sync makes everything appended so far durable (group commit: one call
	// for many appends).
	Sync() error
	HardState() HardState
	// SetHardState persists and fsyncs term and vote before returning.
	SetHardState(HardState) error
	// SetCommitted records the committed index as a hint for restart
	// (the checkpoint file); it need not be synced.
	SetCommitted(index int64) error
	Committed() int64
	Close() error
}

// Storage errors.
var (
	ErrCompacted   = errors.New("dledger: entry compacted")
	ErrUnavailable = errors.New("dledger: entry unavailable")
	// ErrCorrupt means damage below the tail: the replica must not vote or lead.
	ErrCorrupt = errors.New("dledger: log corrupt")
)
