package logstore

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/rmqd/rmqd/dledger"
)

// placement is where one entry of an Append goes.
type placement struct {
	pos    int64
	padAt  int64 // position of the padding written before it, -1 if none
	padLen int64
}

// Append writes entries (consecutive indexes, non-decreasing terms) at the
// positions Layout.Place gives. See dledger.LogStorage for the contract;
// in addition:
//   - an empty store accepts any first index and any Pos at or above
//     Config.StartPos that Place leaves in place (a follower joining a leader
//     whose log starts later, or after a reset);
//   - entries[0].Index == FirstIndex replaces the whole log;
//   - FirstIndex < entries[0].Index <= LastIndex truncates the conflicting
//     suffix first. Truncation removes and zeroes the old suffix and fsyncs
//     before the new entries are written, so a crash can never join old and
//     new entries into one log;
//   - Magic 0 is stored as 1 (normal);
//   - Append does not fsync (call Sync), except when it truncates and when
//     it rolls into a new data file (see the package doc).
//
// An I/O error fails the store (ErrFailed): reopen it to continue.
func (s *Store) Append(entries []dledger.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	if err := s.failure(); err != nil {
		return err
	}
	s.mu.RLock()
	closed, first, last, lastTerm, end := s.mu.closed, s.mu.first, s.mu.last, s.mu.lastTerm, s.mu.end
	idx := s.mu.index
	s.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	e0 := &entries[0]
	for i := range entries {
		e := &entries[i]
		if e.Index != e0.Index+int64(i) {
			return fmt.Errorf("%w: entry %d follows %d", ErrBadAppend, e.Index, e0.Index+int64(i)-1)
		}
		if e.Term < 0 || e.Pos < 0 {
			return fmt.Errorf("%w: entry %d: negative term %d or pos %d", ErrBadAppend, e.Index, e.Term, e.Pos)
		}
		if i > 0 && e.Term < entries[i-1].Term {
			return fmt.Errorf("%w: entry %d term %d below previous term %d", ErrBadAppend, e.Index, e.Term, entries[i-1].Term)
		}
		if m := magicOf(e); m != MagicNormal && m != MagicNoop {
			return fmt.Errorf("%w: entry %d magic %d", ErrBadEntry, e.Index, m)
		}
		if e.Size()+MinBlank > s.cfg.DataFileSize {
			return fmt.Errorf("%w: entry %d is %d bytes, data files %d", ErrTooLarge, e.Index, e.Size(), s.cfg.DataFileSize)
		}
	}

	// Decide where the new entries start and what they replace.
	const (
		appendAtEnd = iota
		truncate
		reset
	)
	mode := appendAtEnd
	prevEnd, prevTerm := end, lastTerm
	switch {
	case last < 0:
		if p, _ := s.Place(end, e0.Size()); p != e0.Pos {
			mode = reset
		}
	case e0.Index == last+1:
	case e0.Index > last+1:
		return fmt.Errorf("%w: entry %d leaves a gap after last %d", ErrBadAppend, e0.Index, last)
	case e0.Index < first:
		return fmt.Errorf("%w: entry %d below first %d", ErrBadAppend, e0.Index, first)
	case e0.Index == first:
		mode = reset
	default:
		mode = truncate
		var b [SlotSize]byte
		if err := readSlots(idx, s.cfg.IndexFileSize, e0.Index-1, b[:]); err != nil {
			return err
		}
		sl := decodeSlot(b[:])
		if sl.index != e0.Index-1 {
			return fmt.Errorf("%w: index slot %d holds index %d", dledger.ErrCorrupt, e0.Index-1, sl.index)
		}
		prevEnd, prevTerm = sl.pos+int64(sl.size), sl.term
	}
	if mode == reset {
		if p, _ := s.Place(e0.Pos, e0.Size()); p != e0.Pos || e0.Pos < s.cfg.StartPos {
			return fmt.Errorf("%w: entry %d cannot start a log at pos %d (file size %d, start %d)", ErrBadAppend, e0.Index, e0.Pos, s.cfg.DataFileSize, s.cfg.StartPos)
		}
		prevEnd, prevTerm = e0.Pos, 0
	}
	if e0.Term < prevTerm {
		return fmt.Errorf("%w: entry %d term %d below previous term %d", ErrBadAppend, e0.Index, e0.Term, prevTerm)
	}
	places := s.places[:0]
	pe := prevEnd
	for i := range entries {
		e := &entries[i]
		p, ne := s.Place(pe, e.Size())
		if p != e.Pos {
			return fmt.Errorf("%w: entry %d pos %d, layout places it at %d", ErrBadAppend, e.Index, e.Pos, p)
		}
		pl := placement{pos: p, padAt: -1}
		if p != pe {
			pl.padAt, pl.padLen = pe, p-pe
		}
		places = append(places, pl)
		pe = ne
	}

	switch mode {
	case truncate:
		if err := s.truncateSuffix(e0.Index, prevEnd, prevTerm); err != nil {
			return s.fail(err)
		}
	case reset:
		if err := s.resetTo(e0.Pos); err != nil {
			return s.fail(err)
		}
	}
	s.places = places
	if err := s.write(entries, places); err != nil {
		return s.fail(err)
	}
	return nil
}

// segment is one WriteAt: buf[lo:hi] at off in the file starting at start.
type segment struct {
	start  int64
	f      *file // resolved (and created if needed) just before writing
	off    int64
	lo, hi int
}

// write encodes the batch into one buffer per file and writes it, then the
// index slots, then publishes the new end.
//
// Rolling into a new data file first fsyncs the data written so far (the
// file being closed, padding included). That keeps one invariant recovery
// leans on: only the last data file ever holds unsynced bytes, so a newer
// file can never be durable while an older one has a hole, even when Sync
// runs on another goroutine and its directory fsync publishes a file
// created a moment ago. It costs one fsync per DataFileSize bytes.
func (s *Store) write(entries []dledger.Entry, places []placement) error {
	fs := s.cfg.DataFileSize
	segs := s.segs[:0]
	s.wbuf = s.wbuf[:0]
	cur := int64(-1)
	segStart := 0
	var segOff int64
	// start begins a new segment unless at continues the current one.
	start := func(at int64) {
		fstart := at - at%fs
		if fstart != cur || segOff+int64(len(s.wbuf)-segStart) != at-fstart {
			if cur >= 0 && len(s.wbuf) > segStart {
				segs = append(segs, segment{start: cur, off: segOff, lo: segStart, hi: len(s.wbuf)})
			}
			cur, segStart, segOff = fstart, len(s.wbuf), at-fstart
		}
	}
	for i := range entries {
		e := &entries[i]
		pl := places[i]
		if pl.padAt >= 0 {
			start(pl.padAt)
			var blank [MinBlank]byte
			putBlank(blank[:], pl.padLen)
			s.wbuf = append(s.wbuf, blank[:]...)
		}
		start(pl.pos)
		n := len(s.wbuf)
		s.wbuf = append(s.wbuf, make([]byte, HeaderSize)...)
		putHeader(s.wbuf[n:], e, BodyCRC(e.Body))
		s.wbuf = append(s.wbuf, e.Body...)
	}
	segs = append(segs, segment{start: cur, off: segOff, lo: segStart, hi: len(s.wbuf)})

	// Index slots are contiguous in index space.
	ifs := s.cfg.IndexFileSize
	s.ibuf = s.ibuf[:0]
	for i := range entries {
		e := &entries[i]
		n := len(s.ibuf)
		s.ibuf = append(s.ibuf, make([]byte, SlotSize)...)
		putSlot(s.ibuf[n:], magicOf(e), places[i].pos, int32(e.Size()), e.Index, e.Term)
	}
	isegs := s.isegs[:0]
	off := entries[0].Index * SlotSize
	for lo := 0; lo < len(s.ibuf); {
		fstart := off - off%ifs
		n := min(int64(len(s.ibuf)-lo), fstart+ifs-off)
		isegs = append(isegs, segment{start: fstart, off: off - fstart, lo: lo, hi: lo + int(n)})
		lo += int(n)
		off += n
	}

	last := &segs[len(segs)-1]
	s.reserveFill(segs[0].start+segs[0].off, last.start+last.off+int64(last.hi-last.lo))
	newData, newIndex := false, false
	synced := 0 // segs[:synced] were made durable by a roll
	for i := range segs {
		sg := &segs[i]
		f, created, err := s.getFile(sg.start, false, func() error {
			if err := s.syncBeforeRoll(segs[:i]); err != nil {
				return err
			}
			synced = i
			return nil
		})
		if err != nil {
			return err
		}
		newData = newData || created
		sg.f = f
		if _, err := f.writeAt(s.wbuf[sg.lo:sg.hi], sg.off); err != nil {
			return fmt.Errorf("logstore: write %s at %d: %w", f.path, sg.off, err)
		}
	}
	for i := range isegs {
		sg := &isegs[i]
		f, created, err := s.getFile(sg.start, true, nil)
		if err != nil {
			return err
		}
		newIndex = newIndex || created
		sg.f = f
		if _, err := f.writeAt(s.ibuf[sg.lo:sg.hi], sg.off); err != nil {
			return fmt.Errorf("logstore: write %s at %d: %w", f.path, sg.off, err)
		}
	}
	if newData && s.fill != nil {
		s.fill.kick() // a new file to fill
	}
	// Mark before publishing: SyncIndex relies on it.
	s.syncMu.Lock()
	for _, sg := range segs[synced:] {
		s.dirty[sg.f] = struct{}{}
	}
	for _, sg := range isegs {
		s.dirty[sg.f] = struct{}{}
	}
	if newData {
		s.dirtyDirs[s.dataDir] = struct{}{}
	}
	if newIndex {
		s.dirtyDirs[s.indexDir] = struct{}{}
	}
	s.syncMu.Unlock()

	s.segs, s.isegs = segs[:0], isegs[:0]
	lastE := &entries[len(entries)-1]
	s.mu.Lock()
	if s.mu.last < 0 {
		s.mu.first = entries[0].Index
		s.mu.runs = s.mu.runs[:0]
		s.mu.runsFrom = entries[0].Index
	}
	for i := range entries {
		t := entries[i].Term
		if n := len(s.mu.runs); n == 0 || s.mu.runs[n-1].term != t {
			s.mu.runs = append(s.mu.runs, termRun{index: entries[i].Index, term: t})
		}
	}
	s.mu.last = lastE.Index
	s.mu.lastTerm = lastE.Term
	s.mu.end = places[len(places)-1].pos + lastE.Size()
	s.mu.Unlock()
	if cap(s.wbuf) > 64<<20 {
		s.wbuf = nil // do not pin a huge batch's buffer
	}
	return nil
}

// syncBeforeRoll runs before a new data file is created: it waits for any
// Sync in flight and fdatasyncs every data and index file with unsynced
// bytes (data first), including the segments this batch already wrote, and
// both directories. So when file N+1 exists, file N is whole on disk, and
// by the time a file is two files behind the last its index slots are
// durable too (this batch's slots are written after the roll): recovery
// trusts the slots of files before the third-from-last and rebuilds the
// others.
func (s *Store) syncBeforeRoll(written []segment) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.syncMu.Lock()
	files := make([]*file, 0, len(s.dirty)+len(written))
	for f := range s.dirty {
		files = append(files, f)
	}
	// Nothing else marks files while flushMu is held (Append is the caller;
	// it marks this batch's files after writing them).
	clear(s.dirty)
	s.syncMu.Unlock()
	for _, sg := range written {
		files = append(files, sg.f)
	}
	if err := s.syncFiles(files); err != nil {
		return fmt.Errorf("%w (before rolling to a new file)", err)
	}
	// And their names: files created since the last Sync, including one
	// this batch created already.
	for _, d := range []string{s.dataDir, s.indexDir} {
		if err := s.fs.SyncDir(d); err != nil {
			return fmt.Errorf("logstore: fsync dir %s before rolling to a new file: %w", d, err)
		}
	}
	return nil
}

// dataFile returns the data file starting at start, creating it if needed;
// a created file is marked for Sync (used outside Append).
func (s *Store) dataFile(start int64) (*file, error) {
	f, created, err := s.getFile(start, false, nil)
	if created {
		s.markDir(s.dataDir)
		s.markDirty(f)
	}
	return f, err
}

// indexFile is dataFile for index files.
func (s *Store) indexFile(start int64) (*file, error) {
	f, created, err := s.getFile(start, true, nil)
	if created {
		s.markDir(s.indexDir)
		s.markDirty(f)
	}
	return f, err
}

// getFile returns the file starting at start, creating it (after calling
// beforeCreate, if any) when it does not exist yet.
func (s *Store) getFile(start int64, index bool, beforeCreate func() error) (*file, bool, error) {
	s.mu.RLock()
	files := s.mu.data
	size, dir := s.cfg.DataFileSize, s.dataDir
	if index {
		files, size, dir = s.mu.index, s.cfg.IndexFileSize, s.indexDir
	}
	s.mu.RUnlock()
	if f := fileAt(files, size, start); f != nil {
		return f, false, nil
	}
	if n := len(files); n > 0 && start != files[n-1].start+size && start != files[0].start-size {
		return nil, false, fmt.Errorf("logstore: file %s would not be adjacent to %s..%s", fileName(start), fileName(files[0].start), fileName(files[n-1].start))
	}
	if beforeCreate != nil {
		if err := beforeCreate(); err != nil {
			return nil, false, err
		}
	}
	f, err := s.createFile(dir, start, size)
	if err != nil {
		return nil, false, err
	}
	s.mu.Lock()
	list := s.mu.data
	if index {
		list = s.mu.index
	}
	nl := make([]*file, 0, len(list)+1)
	nl = append(nl, list...)
	nl = append(nl, f)
	sort.Slice(nl, func(i, j int) bool { return nl[i].start < nl[j].start })
	if index {
		s.mu.index = nl
	} else {
		s.mu.data = nl
	}
	s.mu.Unlock()
	return f, true, nil
}

// createFile creates a zero-filled file of size bytes (sparse on most
// filesystems) named by its start offset.
func (s *Store) createFile(dir string, start, size int64) (*file, error) {
	path := filepath.Join(dir, fileName(start))
	vf, err := s.fs.OpenFile(path, os.O_RDWR|os.O_CREATE)
	if err != nil {
		return nil, fmt.Errorf("logstore: create %s: %w", path, err)
	}
	if err := vf.Truncate(size); err != nil {
		vf.Close()
		return nil, fmt.Errorf("logstore: preallocate %s: %w", path, err)
	}
	s.log.Debug("created file", zap.String("file", path))
	return newFile(start, vf, path), nil
}

var zeros = make([]byte, 1<<20)

// writeZeros zeroes [off, off+n) of f.
func writeZeros(f *file, off, n int64) error {
	for n > 0 {
		c := min(n, int64(len(zeros)))
		if _, err := f.f.WriteAt(zeros[:c], off); err != nil {
			return fmt.Errorf("logstore: zero %s at %d: %w", f.path, off, err)
		}
		off += c
		n -= c
	}
	return nil
}

// truncateSuffix removes entries from index on. keepEnd is the end of entry
// index-1 and keepTerm its term. The removed bytes are zeroed and the change
// is fsynced before returning, so no later crash can bring them back next to
// new entries.
func (s *Store) truncateSuffix(index, keepEnd, keepTerm int64) error {
	s.flushMu.Lock() // no fsync may be in flight on files we remove
	defer s.flushMu.Unlock()
	fs, ifs := s.cfg.DataFileSize, s.cfg.IndexFileSize
	s.mu.Lock()
	oldLast, oldEnd := s.mu.last, s.mu.end
	data, idx := s.mu.data, s.mu.index
	keepFile := keepEnd - keepEnd%fs
	slotOff := index * SlotSize
	keepIndexFile := slotOff - slotOff%ifs
	var keepData, dropData, keepIdx, dropIdx []*file
	for _, f := range data {
		if f.start <= keepFile {
			keepData = append(keepData, f)
		} else {
			dropData = append(dropData, f)
		}
	}
	for _, f := range idx {
		if f.start <= keepIndexFile {
			keepIdx = append(keepIdx, f)
		} else {
			dropIdx = append(dropIdx, f)
		}
	}
	s.mu.data, s.mu.index = keepData, keepIdx
	s.mu.last, s.mu.end, s.mu.lastTerm = index-1, keepEnd, keepTerm
	s.mu.gen++
	if index <= s.mu.first {
		s.mu.first, s.mu.last = -1, -1
	}
	for len(s.mu.runs) > 0 && s.mu.runs[len(s.mu.runs)-1].index >= index {
		s.mu.runs = s.mu.runs[:len(s.mu.runs)-1]
	}
	s.mu.Unlock()
	s.log.Info("truncating log suffix", zap.Int64("from", index), zap.Int64("last", oldLast), zap.Int64("pos", keepEnd), zap.Int64("end", oldEnd))

	// Plan the zeroing of the kept data file after keepEnd (while the
	// removed index files are still open): up to oldEnd if the log ended in
	// it, else up to the end of its last entry plus the padding marker,
	// found by binary search over the removed slots.
	kf := fileAt(keepData, fs, keepEnd)
	usedEnd := oldEnd
	if kf != nil && (oldEnd > kf.start+fs || oldEnd < keepEnd) {
		usedEnd = keepEnd + MinBlank
		lo, hi := index, oldLast // find the last removed entry inside kf
		var b [SlotSize]byte
		for lo <= hi {
			mid := lo + (hi-lo)/2
			if err := readSlots(idx, ifs, mid, b[:]); err != nil {
				return err
			}
			sl := decodeSlot(b[:])
			if sl.pos >= kf.start+fs {
				hi = mid - 1
			} else {
				if sl.pos >= kf.start {
					usedEnd = max(usedEnd, sl.pos+int64(sl.size)+MinBlank)
				}
				lo = mid + 1
			}
		}
		usedEnd = min(usedEnd, kf.start+fs)
	}

	// Remove the later files durably first: were the zeroing below durable
	// and the removal not, a crash would leave old entries in a later file
	// behind a hole.
	if err := s.removeFiles(dropData, s.dataDir); err != nil {
		return err
	}
	if err := s.removeFiles(dropIdx, s.indexDir); err != nil {
		return err
	}
	if _, err := s.syncLocked(true); err != nil {
		return err
	}
	if kf != nil && usedEnd > keepEnd {
		if err := writeZeros(kf, keepEnd-kf.start, usedEnd-keepEnd); err != nil {
			return err
		}
		s.markDirty(kf)
	}
	if f := fileAt(keepIdx, ifs, slotOff); f != nil {
		zeroEnd := min((oldLast+1)*SlotSize, f.start+ifs)
		if zeroEnd > slotOff {
			if err := writeZeros(f, slotOff-f.start, zeroEnd-slotOff); err != nil {
				return err
			}
			s.markDirty(f)
		}
	}
	_, err := s.syncLocked(true)
	return err
}

// resetTo removes every entry and file; the next entry goes at pos.
func (s *Store) resetTo(pos int64) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	data, idx := s.mu.data, s.mu.index
	oldFirst, oldLast := s.mu.first, s.mu.last
	s.mu.data, s.mu.index = nil, nil
	s.mu.first, s.mu.last, s.mu.lastTerm, s.mu.end = -1, -1, 0, pos
	s.mu.runs, s.mu.runsFrom = nil, 0
	s.mu.gen++
	s.mu.Unlock()
	s.log.Info("resetting log", zap.Int64("first", oldFirst), zap.Int64("last", oldLast), zap.Int64("pos", pos))
	if err := s.removeFiles(data, s.dataDir); err != nil {
		return err
	}
	if err := s.removeFiles(idx, s.indexDir); err != nil {
		return err
	}
	_, err := s.syncLocked(true)
	return err
}

// removeFiles closes and deletes files already unlinked from the tables.
func (s *Store) removeFiles(files []*file, dir string) error {
	for _, f := range files {
		s.unmark(f)
		f.f.Close()
		if err := s.fs.Remove(f.path); err != nil {
			return fmt.Errorf("logstore: remove %s: %w", f.path, err)
		}
		s.markDir(dir)
	}
	return nil
}

// fail makes err sticky: a store that saw a write or sync error refuses
// further writes.
func (s *Store) fail(err error) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	if s.failed == nil {
		s.failed = fmt.Errorf("%w: %w", ErrFailed, err)
		s.log.Error("log store failed", zap.Error(err))
	}
	return s.failed
}

func (s *Store) failure() error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	return s.failed
}

func (s *Store) markDirty(f *file) {
	s.syncMu.Lock()
	s.dirty[f] = struct{}{}
	s.syncMu.Unlock()
}

func (s *Store) markDir(dir string) {
	s.syncMu.Lock()
	s.dirtyDirs[dir] = struct{}{}
	s.syncMu.Unlock()
}

func (s *Store) unmark(f *file) {
	s.syncMu.Lock()
	delete(s.dirty, f)
	s.syncMu.Unlock()
}

// Sync makes every entry appended so far durable: it fdatasyncs the data
// files written since the last Sync (in position order, stopping at the
// first error, so what is durable is always a prefix of the log), then the
// data directory if it gained a file. Index slots are not synced here:
// recovery rebuilds the slots of the files that can lack them (see the
// package doc, Writing and group commit). It may also rewrite the
// checkpoint (see Config.CheckpointInterval).
func (s *Store) Sync() error {
	_, err := s.SyncIndex()
	return err
}

// SyncIndex is Sync returning the last index it made durable: every entry
// Appended (and not truncated) before the call. Unlike the other writing
// methods, Sync and SyncIndex may run on a flusher goroutine concurrently
// with Append on the driver (pipelined group commit); calls are serialized,
// and truncation, reset, retention and Close wait for an fsync in flight.
func (s *Store) SyncIndex() (int64, error) {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	return s.syncLocked(false)
}

// syncLocked is SyncIndex with flushMu held. withIndex also syncs the index
// files and the index directory: truncation, reset, retention, recovery and
// Close need them durable; a group commit does not.
func (s *Store) syncLocked(withIndex bool) (int64, error) {
	if err := s.failure(); err != nil {
		return -1, err
	}
	s.syncMu.Lock()
	s.mu.RLock()
	closed, last := s.mu.closed, s.mu.last
	s.mu.RUnlock()
	if closed {
		s.syncMu.Unlock()
		return -1, ErrClosed
	}
	// Append marks files dirty before it publishes entries, so every entry
	// published now has its data files in this set or synced by an earlier
	// call. Index files stay marked until a sync withIndex or a roll.
	files := make([]*file, 0, len(s.dirty))
	for f := range s.dirty {
		if withIndex || s.isData(f) {
			files = append(files, f)
			delete(s.dirty, f)
		}
	}
	var dirs []string
	for _, d := range []string{s.dataDir, s.indexDir} {
		if _, ok := s.dirtyDirs[d]; ok && (withIndex || d == s.dataDir) {
			dirs = append(dirs, d)
			delete(s.dirtyDirs, d)
		}
	}
	s.syncMu.Unlock()

	if err := s.syncFiles(files); err != nil {
		return -1, s.fail(err)
	}
	for _, d := range dirs {
		if err := s.fs.SyncDir(d); err != nil {
			return -1, s.fail(fmt.Errorf("logstore: fsync dir %s: %w", d, err))
		}
	}
	if c := s.committed.Load(); c != s.checkpointed && (s.cfg.CheckpointInterval < 0 || time.Since(s.lastCheckpoint) >= s.cfg.CheckpointInterval) {
		if err := s.writeCheckpoint(); err != nil {
			s.log.Warn("checkpoint not written", zap.Error(err))
		}
	}
	return last, nil
}

// syncAll is syncLocked(true) taking flushMu (recovery).
func (s *Store) syncAll() error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	_, err := s.syncLocked(true)
	return err
}

func (s *Store) isData(f *file) bool { return filepath.Dir(f.path) == s.dataDir }

// syncFiles fdatasyncs files, data files first, each kind in position
// order, each file once, stopping at the first error.
func (s *Store) syncFiles(files []*file) error {
	sort.Slice(files, func(i, j int) bool {
		if di, dj := s.isData(files[i]), s.isData(files[j]); di != dj {
			return di
		}
		return files[i].start < files[j].start
	})
	for i, f := range files {
		if i > 0 && files[i-1] == f {
			continue
		}
		if err := datasync(f.f); err != nil {
			return fmt.Errorf("logstore: fsync %s: %w", f.path, err)
		}
	}
	return nil
}
