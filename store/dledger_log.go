package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// dledgerLog is the commitLog of DLedger mode: a view of a ReplicatedLog
// whose entries each hold one message record (dledger.md §5.2-§5.3). A
// record's physical offset is its entry's position + 48. The dispatcher
// works in entry positions: it scans from one entry boundary to the
// committed position (confirmOffset), skipping entry headers, no-op entries
// and end-of-file padding, and hands each record with its physical offset.
// Puts do not go through append/write/waitDurable: they take the replicated
// path (replica.go), which assigns queue offsets in the append hook.
type dledgerLog struct {
	rl     ReplicatedLog
	legacy *classicLog // the classic commitlog directory (closed with us)
	// divide: dividedCommitlogOffset of an upgraded store (upgrade.go):
	// physical offsets below it are read from legacy; 0 without one.
	divide int64
	// diverged: why the classic prefix is refused (upgrade_agree.go).
	diverged func() error
	// fileSize is the data file size (Config.MappedFileSizeCommitLog, the
	// value the log was opened with): a zeroed header where padding belongs
	// (a log that does not write the marker) skips to the next file.
	fileSize int64

	scanMu  sync.Mutex // scans are serial (the dispatcher); guards scanBuf
	scanBuf []byte
}

// entryHeaderSize is DLedger's BODY_OFFSET: a record's physical offset is
// its entry position plus this.
const entryHeaderSize = 48

// Entry magics of the DLedger data files.
const (
	entryMagicNormal  = 1
	entryMagicPadding = -1
)

var errReplicatedPut = errors.New("store: puts in DLedger mode go through the replicated path")

func (l *dledgerLog) append([]byte, int64) (int64, int64, error) { return 0, 0, errReplicatedPut }
func (l *dledgerLog) write(int64) error                          { return nil }
func (l *dledgerLog) waitDurable(context.Context, int64) PutMessageStatus {
	return PutOK
}

// confirmOffset is the committed position (never below the first byte, so
// an empty log dispatches nothing).
func (l *dledgerLog) confirmOffset() int64 {
	return max(l.rl.CommittedPos(), l.rl.BeginPos())
}

func (l *dledgerLog) maxOffset() int64     { return l.confirmOffset() }
func (l *dledgerLog) flushedOffset() int64 { return l.confirmOffset() }
func (l *dledgerLog) flush() error         { return nil } // the replicated log flushes itself
func (l *dledgerLog) setNotify(func())     {}             // the replica loop wakes the dispatcher
func (l *dledgerLog) close() error {
	if l.legacy != nil {
		l.legacy.close()
	}
	return nil
}

// minOffset: the first classic file's start below an upgrade's divide,
// else the log's first byte.
func (l *dledgerLog) minOffset() int64 {
	if l.divide > 0 && l.legacy != nil {
		if f := l.legacy.files.first(); f != nil && f.from < l.divide {
			return f.from
		}
	}
	return l.rl.BeginPos()
}

// readAt reads record bytes at a physical offset (pulls, lookups); below
// an upgrade's divide from the classic files.
func (l *dledgerLog) readAt(p []byte, pos int64) (int, error) {
	if pos < l.divide && l.legacy != nil {
		if l.diverged != nil {
			if err := l.diverged(); err != nil {
				return 0, fmt.Errorf("%w: %v", ErrNotFound, err)
			}
		}
		return l.legacy.readAt(p, pos)
	}
	n, err := l.rl.ReadAt(p, pos)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return n, ErrNotFound
		}
		return n, fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	return n, nil
}

// scan walks entries whose start is in [from, to): from must be an entry
// boundary (or padding). An entry may end past to (a round limit) as long
// as it ends by the committed position. It calls fn(pos+48, body) for each
// normal entry whose body is a message record, and skips the rest. It
// returns the position after the last entry handled.
func (l *dledgerLog) scan(from, to int64, fn func(pos int64, rec []byte) bool) (int64, error) {
	l.scanMu.Lock()
	defer l.scanMu.Unlock()
	if l.scanBuf == nil {
		l.scanBuf = make([]byte, scanChunk)
	}
	limit := l.confirmOffset()
	pos := from
	if b := l.rl.BeginPos(); pos < b {
		// Nothing is below the log's first byte: an empty log that began at
		// the first entry a leader sent (a replica of an upgraded group
		// without the classic files), or entries removed by retention.
		return b, nil
	}
	for pos < to {
		buf := l.scanBuf
		want := min(int64(len(buf)), limit-pos)
		if want < 8 {
			return pos, nil
		}
		n, err := l.rl.ReadAt(buf[:want], pos)
		if n < 8 {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return pos, fmt.Errorf("store: read replicated log at %d: %w", pos, err)
		}
		chunk := buf[:n]
		c := 0
		for pos < to && len(chunk)-c >= 8 {
			magic := int32(be32(chunk[c:]))
			size := int64(int32(be32(chunk[c+4:])))
			if magic == entryMagicPadding {
				// End-of-file padding: the second int is the bytes left in
				// the file; the next entry starts the next file.
				if size < 8 {
					return pos, fmt.Errorf("%w: DLedger padding of %d bytes at %d", ErrCorrupt, size, pos)
				}
				pos += size
				c = -1
				break
			}
			if magic == 0 && size == 0 && l.fileSize > 0 && pos%l.fileSize != 0 && pos/l.fileSize < (limit-1)/l.fileSize {
				// A zeroed file tail before committed data in a later file:
				// padding written without its marker.
				pos = (pos/l.fileSize + 1) * l.fileSize
				c = -1
				break
			}
			if size < entryHeaderSize || pos+size > limit {
				return pos, fmt.Errorf("%w: DLedger entry of %d bytes at %d (committed %d)", ErrCorrupt, size, pos, limit)
			}
			if int64(len(chunk)-c) < size {
				if c == 0 { // one entry larger than the buffer
					l.scanBuf = make([]byte, size)
					c = -1
				}
				break
			}
			if magic == entryMagicNormal {
				body := chunk[c+entryHeaderSize : c+int(size)]
				if isRecord(body) && !fn(pos+entryHeaderSize, body) {
					return pos, nil
				}
			}
			pos += size
			c += int(size)
		}
		_ = c
	}
	return pos, nil
}

// isRecord: body holds exactly one message record (anything else, such as
// a no-op or a foreign entry, is skipped rather than stopping dispatch).
func isRecord(b []byte) bool {
	if len(b) < 91 || int(be32(b)) != len(b) {
		return false
	}
	magic := int32(be32(b[posMagic:]))
	return magic == MessageMagicCodeV1 || magic == MessageMagicCodeV2
}
