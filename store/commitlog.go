package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// commitLog is what the message store needs from the log holding its
// records. The classic implementation (classicLog) is RocketMQ's commitlog
// directory. A DLedger-backed one will wrap each record in a replicated entry
// (physical offset = entry position + 48) and follow the committed position:
// everything the store does above this interface (queue offsets, consume
// queues, index, GetMessage) works on physical offsets only.
//
// Threading: append runs with the store's put lock held, so records are
// placed in queue-offset order; the other methods are safe from any
// goroutine.
type commitLog interface {
	// append places recs (whole encoded records back to back), writes each
	// record's PHYSICALOFFSET field, and queues the bytes. It returns the
	// physical offset of the first record and the position a caller waits
	// for (end). It does no I/O except creating the next file on a roll.
	append(recs []byte, storeTimestamp int64) (first, end int64, err error)
	// write makes queued bytes up to end readable (group commit: one caller
	// writes everything queued so far with one WriteAt). In SyncFlush mode
	// it may leave that to the flusher, which writes and fsyncs together.
	write(end int64) error
	// waitDurable blocks until end is as durable as the flush type requires.
	waitDurable(ctx context.Context, end int64) PutMessageStatus
	// confirmOffset is how far the dispatcher may read: everything written
	// in classic mode, the committed position in DLedger mode.
	confirmOffset() int64
	// scan calls fn for every record starting in [from, to), in order, with
	// the record's bytes (valid only during the call), skipping end-of-file
	// fillers. It returns where the next record starts.
	scan(from, to int64, fn func(pos int64, rec []byte) bool) (next int64, err error)
	// readAt reads record bytes at a physical offset.
	readAt(p []byte, pos int64) (int, error)
	minOffset() int64
	maxOffset() int64
	flushedOffset() int64
	// flush makes everything written durable now.
	flush() error
	// setNotify registers a function called after new data becomes confirmed.
	setNotify(fn func())
	close() error
}

// endFileMinBlankLength: a file keeps room for at least the 8-byte BLANK
// marker after its last record (RocketMQ END_FILE_MIN_BLANK_LENGTH).
const endFileMinBlankLength = 8

// classicLog is the RocketMQ commitlog: files of fileSize bytes named by
// their first offset, records never spanning files, a BLANK marker filling
// each file's tail.
type classicLog struct {
	cfg    *Config
	logger *zap.Logger
	files  *mappedFileQueue

	// Guarded by the store's put lock (append is called under it).
	wrotePos int64        // next append position
	appended atomic.Int64 // mirror of wrotePos for lock-free readers
	inflight atomic.Int32 // puts between entry and return (a batching hint for the writer)
	pending  *writeBatch  // queued, not yet written
	putMu    *sync.Mutex  // the store's put lock, taken by write to swap batches
	spare    *writeBatch  // owned by the current writer: the batch being written
	// writing elects one writer at a time (flat combining): it writes batch
	// after batch while others append and wait on writeMu.done, so the
	// number of WriteAt calls per message falls as concurrency rises.
	writing atomic.Bool
	writeMu struct {
		sync.Mutex
		done  chan struct{} // closed after a written batch if taken
		taken bool          // someone waits on done
	}
	written atomic.Int64 // bytes [0, written) are readable
	// writtenTs is the STORETIMESTAMP of the last written record.
	writtenTs atomic.Int64
	failed    atomic.Pointer[error] // sticky write error: the log refuses appends

	flushed   atomic.Int64 // bytes [0, flushed) are durable
	flushedTs atomic.Int64 // STORETIMESTAMP of the last flushed record
	flushReq  chan struct{}
	flushMu   struct {
		sync.Mutex
		done chan struct{} // closed after every flush round
		err  error         // last fsync error
	}
	flushLock sync.Mutex // one flush at a time
	notify    atomic.Pointer[func()]

	scanMu  sync.Mutex // scans are serial (the dispatcher); guards scanBuf
	scanBuf []byte

	stopCh  chan struct{}
	doneCh  chan struct{}
	started bool // the flusher runs (set by start, before any close)

	timers sync.Pool // *time.Timer for SyncFlush waits
}

// writeBatch is the queued bytes of one or two files (a roll inside a batch).
type writeBatch struct {
	segs  []writeSeg
	maxTs int64
}

type writeSeg struct {
	file *mappedFile
	pos  int64 // file-relative
	data []byte
}

func (b *writeBatch) add(f *mappedFile, pos int64, data []byte) {
	if n := len(b.segs); n > 0 {
		s := &b.segs[n-1]
		if s.file == f && s.pos+int64(len(s.data)) == pos {
			s.data = append(s.data, data...)
			return
		}
	}
	if len(b.segs) < cap(b.segs) {
		b.segs = b.segs[:len(b.segs)+1]
		s := &b.segs[len(b.segs)-1]
		s.file, s.pos, s.data = f, pos, append(s.data[:0], data...)
		return
	}
	b.segs = append(b.segs, writeSeg{file: f, pos: pos, data: append([]byte(nil), data...)})
}

func (b *writeBatch) reset() {
	for i := range b.segs {
		b.segs[i].file = nil
		if cap(b.segs[i].data) > 64<<20 {
			b.segs[i].data = nil // do not pin a huge buffer after a burst
		}
	}
	b.segs = b.segs[:0]
	b.maxTs = 0
}

func newClassicLog(cfg *Config, dir string, putMu *sync.Mutex) *classicLog {
	l := &classicLog{
		cfg:      cfg,
		logger:   cfg.Logger,
		files:    newMappedFileQueue(cfg.FS, dir, cfg.MappedFileSizeCommitLog),
		pending:  &writeBatch{},
		spare:    &writeBatch{},
		putMu:    putMu,
		flushReq: make(chan struct{}, 1),
		stopCh:   make(chan struct{}),
		doneCh:   make(chan struct{}),
	}
	l.flushMu.done = make(chan struct{})
	l.writeMu.done = make(chan struct{})
	return l
}

// setEnd positions the log after recovery: everything before end is valid,
// written and (after recovery's sync) durable.
func (l *classicLog) setEnd(end, lastTs int64) {
	l.wrotePos = end
	l.appended.Store(end)
	l.written.Store(end)
	l.flushed.Store(end)
	l.writtenTs.Store(lastTs)
	l.flushedTs.Store(lastTs)
}

func (l *classicLog) setNotify(fn func()) { l.notify.Store(&fn) }

func (l *classicLog) append(recs []byte, storeTimestamp int64) (int64, int64, error) {
	if errp := l.failed.Load(); errp != nil {
		return 0, 0, *errp
	}
	size := l.files.fileSize
	n := int64(len(recs))
	if n+endFileMinBlankLength > size {
		return 0, 0, fmt.Errorf("%w: %d bytes do not fit a commitlog file of %d", ErrMalformed, n, size)
	}
	f := l.files.last()
	for {
		if f == nil || l.wrotePos >= f.from+size {
			from := l.wrotePos
			if f != nil {
				from = f.from + size
			}
			nf, err := l.files.create(from)
			if err != nil {
				return 0, 0, fmt.Errorf("store: create commitlog file: %w", err)
			}
			f, l.wrotePos = nf, from
		}
		pos := l.wrotePos - f.from
		if pos+n+endFileMinBlankLength <= size {
			break
		}
		// Not enough room: fill the tail with a BLANK marker and roll.
		var blank [8]byte
		binary.BigEndian.PutUint32(blank[0:], uint32(size-pos))
		binary.BigEndian.PutUint32(blank[4:], 0xCBD43194) // BlankMagicCode
		l.pending.add(f, pos, blank[:])
		l.wrotePos = f.from + size
	}
	first := l.wrotePos
	for p := int64(0); p < n; {
		binary.BigEndian.PutUint64(recs[p+posPhysicalOffset:], uint64(first+p))
		p += int64(binary.BigEndian.Uint32(recs[p:]))
	}
	if first == f.from {
		f.firstStoreTimestamp.Store(storeTimestamp)
	}
	l.pending.add(f, first-f.from, recs)
	if storeTimestamp > l.pending.maxTs {
		l.pending.maxTs = storeTimestamp
	}
	l.wrotePos += n
	l.appended.Store(l.wrotePos)
	return first, l.wrotePos, nil
}

func (l *classicLog) write(end int64) error {
	if l.cfg.FlushDiskType == SyncFlush {
		// The put waits for an fsync anyway: let the group-commit flusher
		// write everything queued with one WriteAt right before its fsync.
		return nil
	}
	return l.writeUpTo(end)
}

func (l *classicLog) writeUpTo(end int64) error {
	for {
		if l.written.Load() >= end {
			return nil
		}
		if errp := l.failed.Load(); errp != nil {
			return *errp
		}
		if l.writing.CompareAndSwap(false, true) {
			l.writeBatches()
			continue
		}
		// Another goroutine writes: wait for its next batch. Mark the
		// channel taken first, then look again (the writer decides whether
		// to close it under the same lock, after publishing written).
		l.writeMu.Lock()
		done := l.writeMu.done
		l.writeMu.taken = true
		l.writeMu.Unlock()
		if l.written.Load() >= end {
			return nil
		}
		if l.writing.CompareAndSwap(false, true) {
			l.writeBatches()
			continue
		}
		<-done
	}
}

// writeBatches is run by the elected writer: it writes queued batches until
// none is left, then steps down. A put that appended while it was writing
// and lost the election is covered: after stepping down the writer looks
// at pending again.
func (l *classicLog) writeBatches() {
	for {
		for {
			if l.inflight.Load() > 1 {
				// Other puts are in flight: yield once so those about to
				// append reach the queue and share this WriteAt (a yield
				// costs far less than a syscall; alone, nobody waits).
				runtime.Gosched()
			}
			l.putMu.Lock()
			b := l.pending
			if len(b.segs) == 0 {
				l.putMu.Unlock()
				break
			}
			l.pending = l.spare
			target := l.wrotePos
			l.putMu.Unlock()
			l.spare = b
			err := l.writeBatch(b, target)
			l.writeMu.Lock()
			if l.writeMu.taken { // nobody waits: keep the channel (no allocation)
				close(l.writeMu.done)
				l.writeMu.done = make(chan struct{})
				l.writeMu.taken = false
			}
			l.writeMu.Unlock()
			if err != nil {
				break
			}
		}
		l.writing.Store(false)
		l.putMu.Lock()
		more := len(l.pending.segs) > 0 && l.failed.Load() == nil
		l.putMu.Unlock()
		if !more || !l.writing.CompareAndSwap(false, true) {
			return
		}
	}
}

func (l *classicLog) writeBatch(b *writeBatch, target int64) error {
	defer b.reset()
	if errp := l.failed.Load(); errp != nil {
		return *errp
	}
	for _, s := range b.segs {
		if _, werr := s.file.file.WriteAt(s.data, s.pos); werr != nil {
			err := fmt.Errorf("store: commitlog write at %d: %w", s.file.from+s.pos, werr)
			l.failed.Store(&err)
			l.logger.Error("commitlog write failed; store refuses writes until restarted", zap.Error(err))
			return err
		}
	}
	if b.maxTs > 0 {
		l.writtenTs.Store(b.maxTs)
	}
	l.written.Store(target)
	if fn := l.notify.Load(); fn != nil {
		(*fn)()
	}
	return nil
}

func (l *classicLog) confirmOffset() int64 { return l.written.Load() }
func (l *classicLog) maxOffset() int64     { return l.written.Load() }
func (l *classicLog) flushedOffset() int64 { return l.flushed.Load() }

func (l *classicLog) minOffset() int64 {
	if f := l.files.first(); f != nil {
		return f.from
	}
	return l.written.Load()
}

// flush fsyncs every file holding bytes in [flushed, written) and wakes
// SyncFlush waiters. Concurrent callers serialize; the second finds little
// or nothing to do.
func (l *classicLog) flush() error {
	l.flushLock.Lock()
	l.putMu.Lock()
	queued := l.wrotePos
	l.putMu.Unlock()
	werr := l.writeUpTo(queued)
	target := l.written.Load()
	ts := l.writtenTs.Load()
	from := l.flushed.Load()
	var err error
	if target > from {
		for _, f := range l.files.snapshot() {
			if f.from+f.size <= from || f.from >= target {
				continue
			}
			if err = f.file.Sync(); err != nil {
				// After a failed fsync the page cache may have dropped the
				// data (Linux): never retry and pretend; refuse further work.
				err = fmt.Errorf("store: commitlog fsync %s: %w", f.path, err)
				l.failed.Store(&err)
				break
			}
		}
		if err == nil {
			l.flushed.Store(target)
			l.flushedTs.Store(ts)
		}
	}
	if err == nil {
		err = werr
	}
	l.flushLock.Unlock()
	l.flushMu.Lock()
	l.flushMu.err = err
	close(l.flushMu.done)
	l.flushMu.done = make(chan struct{})
	l.flushMu.Unlock()
	if err != nil {
		l.logger.Error("commitlog flush failed", zap.Error(err))
	}
	return err
}

// runFlusher is the flush service: in AsyncFlush every FlushInterval, in
// SyncFlush whenever a waiter asks (group commit) and every FlushInterval.
func (l *classicLog) runFlusher() {
	defer close(l.doneCh)
	t := time.NewTicker(l.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stopCh:
			l.flush()
			return
		case <-l.flushReq:
		case <-t.C:
		}
		if l.flushed.Load() < l.appended.Load() {
			l.flush()
		}
	}
}

func (l *classicLog) waitDurable(ctx context.Context, end int64) PutMessageStatus {
	if l.cfg.FlushDiskType != SyncFlush {
		return PutOK
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
			l.timers.Put(timer)
		}
	}()
	for {
		if l.flushed.Load() >= end {
			return PutOK
		}
		if l.failed.Load() != nil {
			return ServiceNotAvailable
		}
		l.flushMu.Lock()
		done, ferr := l.flushMu.done, l.flushMu.err
		l.flushMu.Unlock()
		if l.flushed.Load() >= end {
			return PutOK
		}
		if ferr != nil && l.failed.Load() != nil {
			return ServiceNotAvailable
		}
		select {
		case l.flushReq <- struct{}{}:
		default:
		}
		if timer == nil {
			if v := l.timers.Get(); v != nil {
				timer = v.(*time.Timer)
				timer.Reset(l.cfg.SyncFlushTimeout)
			} else {
				timer = time.NewTimer(l.cfg.SyncFlushTimeout)
			}
		}
		select {
		case <-done:
		case <-timer.C:
			return FlushDiskTimeout
		case <-ctx.Done():
			return FlushDiskTimeout
		case <-l.stopCh:
			if l.flushed.Load() >= end {
				return PutOK
			}
			return FlushDiskTimeout
		}
	}
}

func (l *classicLog) readAt(p []byte, pos int64) (int, error) {
	f := l.files.find(pos)
	if f == nil {
		return 0, ErrNotFound
	}
	rel := pos - f.from
	if rel+int64(len(p)) > f.size {
		return 0, fmt.Errorf("%w: read of %d bytes at %d crosses a file end", ErrNotFound, len(p), pos)
	}
	n, err := f.readAt(p, rel)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return n, ErrNotFound
		}
		return n, fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	return n, nil
}

const scanChunk = 1 << 20

// scan reads [from, to) in chunks of up to 1 MiB.
func (l *classicLog) scan(from, to int64, fn func(pos int64, rec []byte) bool) (int64, error) {
	l.scanMu.Lock()
	defer l.scanMu.Unlock()
	if l.scanBuf == nil {
		l.scanBuf = make([]byte, scanChunk)
	}
	return scanFiles(l.files, from, to, l.scanBuf, fn)
}

// scanFiles walks records of a file queue (shared by the dispatcher and
// recovery). It stops at to, at a record that does not fit what was read
// below to, or when fn returns false.
func scanFiles(q *mappedFileQueue, from, to int64, buf []byte, fn func(pos int64, rec []byte) bool) (int64, error) {
	pos := from
	for pos < to {
		f := q.find(pos)
		if f == nil {
			return pos, fmt.Errorf("%w: no commitlog file holds offset %d", ErrNotFound, pos)
		}
		rel := pos - f.from
		want := min(int64(len(buf)), to-pos, f.size-rel)
		if want < 8 {
			if f.size-rel < 8 { // tail smaller than a BLANK: next file
				pos = f.from + f.size
				continue
			}
			return pos, nil
		}
		n, err := f.readAt(buf[:want], rel)
		if err != nil && !errors.Is(err, io.EOF) {
			return pos, err
		}
		chunk := buf[:n]
		consumed, need := 0, 0
		for len(chunk)-consumed >= 8 {
			size := int(int32(binary.BigEndian.Uint32(chunk[consumed:])))
			magic := int32(binary.BigEndian.Uint32(chunk[consumed+4:]))
			if magic == BlankMagicCode {
				pos = f.from + f.size
				consumed = -1
				break
			}
			if size <= 0 || int64(size) > f.size-(pos-f.from) {
				return pos, fmt.Errorf("%w: record size %d at %d", ErrCorrupt, size, pos)
			}
			if size > len(chunk)-consumed {
				if size > len(buf) {
					need = size
				}
				break
			}
			if !fn(pos, chunk[consumed:consumed+size]) {
				return pos, nil
			}
			consumed += size
			pos += int64(size)
		}
		if consumed == 0 {
			if need > 0 && int64(need) <= to-pos {
				buf = make([]byte, need)
				continue
			}
			return pos, nil // a partial record at to: wait for more
		}
	}
	return pos, nil
}

func (l *classicLog) start() {
	l.started = true
	go l.runFlusher()
}

func (l *classicLog) close() error {
	select {
	case <-l.stopCh:
	default:
		close(l.stopCh)
		if l.started {
			<-l.doneCh
		}
	}
	l.files.close()
	return nil
}
