package logstore

import (
	"os"
	"sync"

	"go.uber.org/zap"

	"github.com/rmqd/rmqd/internal/vfs"
)

// filler keeps Config.ZeroFillAhead bytes after the end of the log written
// with zeros and written back to disk (see writeback), from its own
// goroutine and file handle, in chunks of up to 256 KiB, so a group commit's
// fdatasync overwrites allocated blocks instead of allocating them (on ext4
// that is a journal commit per group commit: ~155 µs per fdatasync into a
// sparse file, ~90 µs into written blocks). Java warms its mapped files for
// the same reason. Small chunks keep short the time a group commit's
// fdatasync may wait for the filler's pages under writeback.
//
// Zeros are what a file created by Truncate reads as, so recovery cannot
// tell a filled tail from a sparse one: it stops at the first zero header
// either way. The one thing to get right is never writing zeros over an
// entry. Append reserves the range it is about to write (reserved is the
// batch's end, which is also the new end of the log: nothing live lies
// beyond it, a truncation having zeroed the old suffix) before writing, and
// the filler only picks chunks starting at least one chunk past reserved.
// A chunk picked before a reservation can still overlap it (a batch larger
// than the margin): Append then waits for that chunk's write to finish
// before writing its own bytes over it. The filler holds no lock across its
// I/O; Append waits only in that rare case.
//
// Only the data file holding reserved is filled, up to its end: the next
// file is created by the roll (which keeps recovery's invariants) and filled
// from then on. The filler's own handle means a writeback error it gets is
// still reported to the store's handle (Linux reports a writeback error to
// every open file), and a file removed by a truncation or reset only costs
// the filler some zeros written into an unlinked file. Its errors stop the
// filling, never the store: the log works without it.
type filler struct {
	window, chunk int64

	mu   sync.Mutex
	cond sync.Cond // signalled when a chunk's write ends
	// reserved is the end of the bytes Append writes or wrote last.
	reserved int64
	// inLo, inHi is the chunk being written, empty when inLo == inHi.
	inLo, inHi int64
	// target is the file being filled; filled is how far it is filled.
	target *file
	filled int64
	waits  int // Appends that waited for a chunk (tests)

	wake chan struct{}
	stop chan struct{}
	done chan struct{}
}

// startFiller starts the filler when the config asks for it (after recovery).
func (s *Store) startFiller(end int64) {
	w := s.cfg.ZeroFillAhead
	if w <= 0 {
		return
	}
	chunk := min(max(w/8, 4096), 256<<10) &^ 4095
	fl := &filler{window: w, chunk: chunk, reserved: end,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	fl.cond.L = &fl.mu
	s.fill = fl
	go s.fillLoop()
	fl.kick()
}

// stopFiller stops the filler and waits for it (Close).
func (s *Store) stopFiller() {
	if fl := s.fill; fl != nil {
		close(fl.stop)
		<-fl.done
	}
}

// reserveFill tells the filler that Append writes [lo, hi) now, and waits
// while a chunk being zero-filled overlaps that range.
func (s *Store) reserveFill(lo, hi int64) {
	fl := s.fill
	if fl == nil {
		return
	}
	fl.mu.Lock()
	fl.reserved = hi
	waited := false
	for fl.inLo < fl.inHi && fl.inLo < hi && lo < fl.inHi {
		waited = true
		fl.cond.Wait()
	}
	if waited {
		fl.waits++
	}
	more := fl.filled < hi+fl.window-fl.chunk
	fl.mu.Unlock()
	if more {
		fl.kick()
	}
}

// kick wakes the filler unless it is awake already.
func (fl *filler) kick() {
	select {
	case fl.wake <- struct{}{}:
	default:
	}
}

func (s *Store) fillLoop() {
	fl := s.fill
	defer close(fl.done)
	var h vfs.File // the filler's handle on hf
	var hf *file
	defer func() {
		if h != nil {
			h.Close()
		}
	}()
	for {
		select {
		case <-fl.stop:
			return
		case <-fl.wake:
		}
		for {
			select {
			case <-fl.stop:
				return
			default:
			}
			lo, hi, f := s.nextFill()
			if f == nil {
				break
			}
			if hf != f {
				if h != nil {
					h.Close()
					h, hf = nil, nil
				}
				nh, err := s.fs.OpenFile(f.path, os.O_RDWR)
				if err != nil { // removed by a truncation or reset meanwhile
					s.endFill(lo, hi, false)
					s.log.Debug("zero fill: open", zap.String("file", f.path), zap.Error(err))
					break
				}
				h, hf = nh, f
			}
			if hook := s.cfg.fillHook; hook != nil {
				hook(lo, hi)
			}
			err := writeZerosTo(h, lo-f.start, hi-lo)
			if err == nil {
				err = writeback(h, lo-f.start, hi-lo)
			}
			s.endFill(lo, hi, err == nil)
			if err != nil {
				s.log.Warn("zero fill ahead stopped", zap.String("file", f.path), zap.Int64("offset", lo-f.start), zap.Error(err))
				return
			}
		}
	}
}

// nextFill picks the next chunk and marks it in flight; f is nil when the
// window is full (or there is no file to fill).
func (s *Store) nextFill() (lo, hi int64, f *file) {
	fl := s.fill
	s.mu.RLock()
	data := s.mu.data
	s.mu.RUnlock()
	fs := s.cfg.DataFileSize
	fl.mu.Lock()
	defer fl.mu.Unlock()
	r := fl.reserved
	f = fileAt(data, fs, r)
	if f == nil {
		return 0, 0, nil
	}
	if f != fl.target {
		fl.target, fl.filled = f, r
	}
	lo = max(fl.filled, r+fl.chunk)
	lo = f.start + (lo-f.start+4095)&^4095
	hi = min(lo+fl.chunk, r+fl.window, f.start+fs)
	if lo >= hi {
		return 0, 0, nil
	}
	fl.inLo, fl.inHi = lo, hi
	return lo, hi, f
}

// endFill clears the chunk in flight and wakes an Append waiting for it.
func (s *Store) endFill(lo, hi int64, ok bool) {
	fl := s.fill
	fl.mu.Lock()
	fl.inLo, fl.inHi = 0, 0
	if ok {
		fl.filled = max(fl.filled, hi)
	}
	fl.cond.Broadcast()
	fl.mu.Unlock()
}

// writeZerosTo zeroes [off, off+n) through h.
func writeZerosTo(h vfs.File, off, n int64) error {
	for n > 0 {
		c := min(n, int64(len(zeros)))
		if _, err := h.WriteAt(zeros[:c], off); err != nil {
			return err
		}
		off += c
		n -= c
	}
	return nil
}
