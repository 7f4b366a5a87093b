package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"
)

// consumeQueue is one topic/queueId's logical queue: 20-byte units
// (commitlog offset int64, size int32, tagsCode int64), unit k at byte k*20
// of the queue's offset space (protocol.md §6.2).
//
// The dispatcher goroutine is the only writer; readers use maxOffset and
// minOffset (atomics) and read units below maxOffset.
type consumeQueue struct {
	topic   string
	queueID int32
	files   *mappedFileQueue

	maxOffset atomic.Int64 // next logical offset: units [minOffset, maxOffset) exist
	minOffset atomic.Int64 // first unit that points at an existing message
	maxPhy    atomic.Int64 // commitlog offset just past the last unit's record

	// Owned by the dispatcher goroutine.
	pend      []byte // units not yet written, starting at pendStart
	pendStart int64
	touched   uint64 // dispatch round that last queued a unit

	syncedOffset atomic.Int64 // units below are fsynced
	dirty        atomic.Bool  // units written since the last sync
	mu           sync.Mutex   // serializes sync against destroy
	destroyed    bool
}

// blank unit of a queue that starts at a non-zero offset: (0, MaxInt32, 0).
var blankUnit = func() [CQUnitSize]byte {
	var u [CQUnitSize]byte
	binary.BigEndian.PutUint32(u[8:], math.MaxInt32)
	return u
}()

func newConsumeQueue(s *MessageStore, topic string, queueID int32) *consumeQueue {
	dir := s.cqDir(topic, queueID)
	return &consumeQueue{topic: topic, queueID: queueID,
		files: newMappedFileQueue(s.cfg.FS, dir, s.cfg.MappedFileSizeConsumeQueue)}
}

// recover loads the files and finds the last valid unit (offset >= 0,
// size > 0), scanning the last file from its start.
func (cq *consumeQueue) recover() error {
	if err := cq.files.load(); err != nil {
		return err
	}
	files := cq.files.snapshot()
	if len(files) == 0 {
		return nil
	}
	buf := make([]byte, 64*1024)
	var maxOff, maxPhy int64 = files[0].from / CQUnitSize, 0
	for i := len(files) - 1; i >= 0; i-- {
		f := files[i]
		n, lastPhy, err := countUnits(f, buf)
		if err != nil {
			return err
		}
		if n > 0 || i == 0 {
			maxOff = f.from/CQUnitSize + n
			maxPhy = lastPhy
			break
		}
	}
	cq.minOffset.Store(files[0].from / CQUnitSize)
	cq.maxOffset.Store(maxOff)
	cq.maxPhy.Store(maxPhy)
	cq.syncedOffset.Store(maxOff)
	cq.pendStart = maxOff
	return nil
}

// countUnits counts the valid units at the start of f and returns the end
// (offset+size) of the last one.
func countUnits(f *mappedFile, buf []byte) (int64, int64, error) {
	var n, lastPhy int64
	for pos := int64(0); pos < f.size; {
		// Whole units per read: a unit straddling two reads would be
		// skipped and the rest read misaligned.
		want := min(int64(len(buf))/CQUnitSize*CQUnitSize, f.size-pos)
		got, err := f.readAt(buf[:want], pos)
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, 0, err
		}
		for i := 0; i+CQUnitSize <= got; i += CQUnitSize {
			off := int64(binary.BigEndian.Uint64(buf[i:]))
			size := int32(binary.BigEndian.Uint32(buf[i+8:]))
			if off < 0 || size <= 0 {
				return n, lastPhy, nil
			}
			n++
			if size != math.MaxInt32 {
				lastPhy = off + int64(size)
			}
		}
		if got < int(want) {
			break
		}
		pos += want
	}
	return n, lastPhy, nil
}

// unit reads the unit at a logical offset.
func (cq *consumeQueue) unit(offset int64) (CQUnit, bool) {
	var b [CQUnitSize]byte
	if offset < cq.minOffset.Load() || offset >= cq.maxOffset.Load() {
		return CQUnit{}, false
	}
	f := cq.files.find(offset * CQUnitSize)
	if f == nil {
		return CQUnit{}, false
	}
	if _, err := f.readAt(b[:], offset*CQUnitSize-f.from); err != nil {
		return CQUnit{}, false
	}
	return decodeUnit(b[:], offset), true
}

func decodeUnit(b []byte, offset int64) CQUnit {
	return CQUnit{QueueOffset: offset,
		CommitLogOffset: int64(binary.BigEndian.Uint64(b)),
		Size:            int32(binary.BigEndian.Uint32(b[8:])),
		TagsCode:        int64(binary.BigEndian.Uint64(b[12:]))}
}

// readUnits reads up to max units from offset, never past the file holding
// offset or maxOffset. ok is false when that file does not exist.
func (cq *consumeQueue) readUnits(offset int64, max int, buf []byte) ([]byte, bool, error) {
	maxOff := cq.maxOffset.Load()
	f := cq.files.find(offset * CQUnitSize)
	if f == nil {
		return nil, false, nil
	}
	rel := offset*CQUnitSize - f.from
	n := min(int64(max)*CQUnitSize, f.size-rel, (maxOff-offset)*CQUnitSize)
	if n <= 0 {
		return nil, true, nil
	}
	if int64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := f.readAt(buf, rel); err != nil {
		return nil, true, err
	}
	return buf, true, nil
}

// add queues a unit (dispatcher only). A unit below what the queue already
// has is a re-dispatch after recovery and is skipped.
func (cq *consumeQueue) add(queueOffset, phy int64, size int32, tagsCode int64) bool {
	next := cq.pendStart + int64(len(cq.pend))/CQUnitSize
	if queueOffset < next {
		return false
	}
	if queueOffset > next {
		if len(cq.pend) > 0 {
			return false // a hole inside one dispatch round: caller flushes first
		}
		cq.pendStart = queueOffset
	}
	var u [CQUnitSize]byte
	binary.BigEndian.PutUint64(u[0:], uint64(phy))
	binary.BigEndian.PutUint32(u[8:], uint32(size))
	binary.BigEndian.PutUint64(u[12:], uint64(tagsCode))
	cq.pend = append(cq.pend, u[:]...)
	return true
}

// flushPending writes the queued units (dispatcher only), creating files as
// needed, then publishes the new maxOffset.
func (cq *consumeQueue) flushPending() error {
	if len(cq.pend) == 0 {
		return nil
	}
	data := cq.pend
	off := cq.pendStart * CQUnitSize
	fileSize := cq.files.fileSize
	if cq.maxOffset.Load() == 0 && cq.files.last() == nil && off > 0 {
		// A queue starting at a non-zero offset: fill its first file's head with blanks.
		f, err := cq.files.create(off - off%fileSize)
		if err != nil {
			return err
		}
		fill := make([]byte, 0, off%fileSize)
		for int64(len(fill)) < off%fileSize {
			fill = append(fill, blankUnit[:]...)
		}
		if _, err := f.file.WriteAt(fill, 0); err != nil {
			return err
		}
		cq.minOffset.Store(cq.pendStart)
	}
	for len(data) > 0 {
		f := cq.files.find(off)
		if f == nil {
			last := cq.files.last()
			from := off - off%fileSize
			if last != nil && last.from+fileSize != from {
				return fmt.Errorf("%w: consume queue %s/%d: unit at %d after file %d", ErrCorrupt, cq.topic, cq.queueID, off, last.from)
			}
			var err error
			if f, err = cq.files.create(from); err != nil {
				return err
			}
		}
		rel := off - f.from
		n := min(int64(len(data)), f.size-rel)
		if _, err := f.file.WriteAt(data[:n], rel); err != nil {
			return err
		}
		data, off = data[n:], off+n
	}
	last := cq.pend[len(cq.pend)-CQUnitSize:]
	cq.maxPhy.Store(int64(binary.BigEndian.Uint64(last)) + int64(binary.BigEndian.Uint32(last[8:])))
	cq.pendStart += int64(len(cq.pend)) / CQUnitSize
	cq.pend = cq.pend[:0]
	cq.maxOffset.Store(cq.pendStart)
	cq.dirty.Store(true)
	return nil
}

// sync fsyncs the files holding units written since the last sync.
func (cq *consumeQueue) sync() error {
	if !cq.dirty.Swap(false) {
		return nil
	}
	cq.mu.Lock()
	defer cq.mu.Unlock()
	if cq.destroyed {
		return nil
	}
	from := cq.syncedOffset.Load() * CQUnitSize
	to := cq.maxOffset.Load()
	for _, f := range cq.files.snapshot() {
		if f.from+f.size <= from {
			continue
		}
		if err := f.file.Sync(); err != nil {
			cq.dirty.Store(true)
			return err
		}
	}
	cq.syncedOffset.Store(to)
	return nil
}

// truncateTo drops units whose record ends after phyEnd (recovery).
func (cq *consumeQueue) truncateTo(phyEnd int64) error {
	maxOff := cq.maxOffset.Load()
	newMax := maxOff
	for newMax > cq.minOffset.Load() {
		u, ok := cq.unit(newMax - 1)
		if !ok {
			break
		}
		if u.Size != math.MaxInt32 && u.CommitLogOffset+int64(u.Size) <= phyEnd {
			cq.maxPhy.Store(u.CommitLogOffset + int64(u.Size))
			break
		}
		newMax--
	}
	if newMax == maxOff {
		return nil
	}
	if err := cq.files.truncateFrom(newMax * CQUnitSize); err != nil {
		return err
	}
	cq.maxOffset.Store(newMax)
	cq.syncedOffset.Store(min(cq.syncedOffset.Load(), newMax))
	cq.pendStart = newMax
	if newMax <= cq.minOffset.Load() {
		cq.maxPhy.Store(0)
	}
	return nil
}

// correctMinOffset sets minOffset to the first unit whose record is at or
// after minPhy (RocketMQ correctMinOffset).
func (cq *consumeQueue) correctMinOffset(minPhy int64) {
	f := cq.files.first()
	if f == nil {
		cq.minOffset.Store(cq.maxOffset.Load())
		return
	}
	lo := max(f.from/CQUnitSize, cq.minOffset.Load())
	hi := cq.maxOffset.Load()
	buf := make([]byte, 0, 64*1024)
	for off := lo; off < hi; {
		b, ok, err := cq.readUnits(off, 3000, buf)
		if !ok || err != nil || len(b) == 0 {
			break
		}
		for i := 0; i < len(b); i += CQUnitSize {
			u := decodeUnit(b[i:], off)
			if u.Size != math.MaxInt32 && u.Size > 0 && u.CommitLogOffset >= minPhy {
				cq.minOffset.Store(off)
				return
			}
			off++
		}
	}
	cq.minOffset.Store(hi)
}

// deleteExpired removes leading files whose units all point below minPhy
// (never the last file) and returns how many it removed.
func (cq *consumeQueue) deleteExpired(minPhy int64) int {
	files := cq.files.snapshot()
	n := 0
	for i := 0; i < len(files)-1; i++ {
		f := files[i]
		var b [CQUnitSize]byte
		if _, err := f.readAt(b[:], f.size-CQUnitSize); err != nil {
			break
		}
		u := decodeUnit(b[:], 0)
		if u.Size == math.MaxInt32 || u.CommitLogOffset+int64(u.Size) > minPhy {
			break
		}
		n++
	}
	if n > 0 {
		cq.files.removeFiles(n)
	}
	cq.correctMinOffset(minPhy)
	return n
}

func (cq *consumeQueue) destroy() error {
	cq.mu.Lock()
	defer cq.mu.Unlock()
	cq.destroyed = true
	return cq.files.destroy()
}
