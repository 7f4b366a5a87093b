package logstore

import (
	"errors"

	"github.com/rmqd/rmqd/dledger"
)

// Errors. Recovery and reads wrap dledger.ErrCorrupt, dledger.ErrCompacted
// and dledger.ErrUnavailable from the contract; these add detail.
var (
	// ErrBadEntry is returned by DecodeEntry and Append for an entry whose
	// header is inconsistent (magic, size, negative fields).
	ErrBadEntry = errors.New("logstore: malformed entry")
	// ErrChecksum is returned when a body does not match its non-zero bodyCrc
	// (a follower receiving a damaged entry, or a read of a damaged file).
	ErrChecksum = errors.New("logstore: body checksum mismatch")
	// ErrBadAppend is returned for an Append that breaks the contract:
	// non-consecutive indexes, an index outside [FirstIndex, LastIndex+1],
	// a decreasing term, or a Pos that is not where Place puts the entry.
	ErrBadAppend = errors.New("logstore: invalid append")
	// ErrTooLarge is returned for an entry that cannot fit in one data file
	// (size + 8 bytes of padding > DataFileSize).
	ErrTooLarge = errors.New("logstore: entry larger than a data file")
	// ErrFailed wraps the first write or sync error: after it the store
	// refuses further Append and Sync calls (a failed fsync may have dropped
	// dirty pages, so nothing after it can be claimed durable). Reopen the
	// store to recover from what the disk holds.
	ErrFailed = errors.New("logstore: store failed after an I/O error")
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("logstore: store closed")
	// ErrConfig is returned by Open for an invalid Config.
	ErrConfig = errors.New("logstore: invalid config")
)

// IsCorrupt reports whether err means damage below the tail: the replica
// must not vote or lead until an operator repairs or replaces its log.
func IsCorrupt(err error) bool { return errors.Is(err, dledger.ErrCorrupt) }
