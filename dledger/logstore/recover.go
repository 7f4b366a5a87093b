package logstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"go.uber.org/zap"

	"github.com/rmqd/rmqd/dledger"
)

// loadFiles opens every 20-digit file in dir. Files shorter than size (a
// crash before the preallocation reached the disk) are extended with zeros;
// a longer file, a misaligned name or a gap between files is an error.
func (s *Store) loadFiles(dir string, size int64, index bool) ([]*file, error) {
	names, err := s.fs.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("logstore: list %s: %w", dir, err)
	}
	var files []*file
	for _, name := range names {
		start, ok := parseFileName(name)
		if !ok {
			s.log.Warn("ignoring unexpected file", zap.String("file", name), zap.String("in", dir))
			continue
		}
		path := dir + string(os.PathSeparator) + name
		vf, err := s.fs.OpenFile(path, os.O_RDWR)
		if err != nil {
			closeAll(files)
			return nil, fmt.Errorf("logstore: open %s: %w", path, err)
		}
		f := newFile(start, vf, path)
		files = append(files, f)
		n, err := vf.Size()
		if err != nil {
			closeAll(files)
			return nil, fmt.Errorf("logstore: stat %s: %w", path, err)
		}
		switch {
		case start%size != 0:
			closeAll(files)
			return nil, fmt.Errorf("%w: %s: name not a multiple of the file size %d", dledger.ErrCorrupt, path, size)
		case n > size:
			closeAll(files)
			return nil, fmt.Errorf("%w: %s is %d bytes, configured file size is %d (Java DLedger refuses it too)", ErrConfig, path, n, size)
		case n < size:
			s.log.Warn("file shorter than configured, extending with zeros", zap.String("file", path), zap.Int64("size", n), zap.Int64("want", size))
			if err := vf.Truncate(size); err != nil {
				closeAll(files)
				return nil, fmt.Errorf("logstore: extend %s: %w", path, err)
			}
			s.markDirty(f)
		}
		if len(files) > 1 && files[len(files)-2].start+size != start {
			if index {
				// The index is derived data: drop it and rebuild it all.
				s.log.Warn("gap between index files: rebuilding the index", zap.String("file", path))
				for _, g := range files {
					g.f.Close()
					if err := s.fs.Remove(g.path); err != nil {
						return nil, fmt.Errorf("logstore: remove %s: %w", g.path, err)
					}
					s.unmark(g)
				}
				files = nil
				s.markDir(dir)
				s.forceFullScan = true
				continue
			}
			closeAll(files)
			return nil, fmt.Errorf("%w: gap between %s and %s", dledger.ErrCorrupt, files[len(files)-2].path, path)
		}
	}
	return files, nil
}

func closeAll(files []*file) {
	for _, f := range files {
		f.f.Close()
	}
}

// scanner reads a file through a window buffer.
type scanner struct {
	f      *file
	buf    []byte
	bufOff int64 // file offset of buf[0]
	size   int64 // file size
}

// at returns n bytes at file offset off (n must fit in the file).
func (r *scanner) at(off int64, n int) ([]byte, error) {
	if off >= r.bufOff && off+int64(n) <= r.bufOff+int64(len(r.buf)) {
		return r.buf[off-r.bufOff : off-r.bufOff+int64(n)], nil
	}
	w := max(int64(n), 4<<20)
	w = min(w, r.size-off)
	if cap(r.buf) < int(w) {
		r.buf = make([]byte, w)
	}
	r.buf = r.buf[:w]
	if _, err := r.f.f.ReadAt(r.buf, off); err != nil {
		r.buf = r.buf[:0]
		return nil, fmt.Errorf("logstore: read %s at %d: %w", r.f.path, off, err)
	}
	r.bufOff = off
	return r.buf[:n], nil
}

// recovery holds the state of one recovery scan.
type recovery struct {
	s        *Store
	data     []*file
	index    []*file
	first    int64 // first entry scanned
	last     int64
	lastTerm int64
	end      int64 // end of the last valid entry
	runs     []termRun
	rewrite  bool // slots from here on are rewritten from the data
	pending  []byte
	pendOff  int64 // index-space offset of pending[0]
	modified bool
	clean    bool // the scan ended where the last clean Close said: skip tail scans
	stopPos  int64
	ioErr    error // first read error seen by a check that returns only ok/not ok
	// tail lists the non-zero chunks findValid saw after the stop point
	// (valid when tailScanned), so cutTail zeroes without reading again.
	tail        []chunk
	tailScanned bool
}

type chunk struct {
	f      *file
	off, n int64
}

func (s *Store) recover() error {
	fs := s.cfg.DataFileSize
	data, err := s.loadFiles(s.dataDir, fs, false)
	if err != nil {
		return err
	}
	idx, err := s.loadFiles(s.indexDir, s.cfg.IndexFileSize, true)
	if err != nil {
		closeAll(data)
		return err
	}
	s.mu.data, s.mu.index = data, idx
	s.mu.first, s.mu.last, s.mu.lastTerm = -1, -1, 0
	if len(data) == 0 {
		s.mu.end = s.cfg.StartPos
		if len(idx) > 0 {
			s.log.Warn("no data files: removing stale index files", zap.Int("files", len(idx)))
			s.mu.index = nil
			if err := s.removeFiles(idx, s.indexDir); err != nil {
				return err
			}
		}
		if s.cfg.StartPos > 0 {
			// Persist the divide: the first data file is named by it.
			if _, err := s.dataFile(s.cfg.StartPos); err != nil {
				return err
			}
		}
		return s.syncAll()
	}

	// Choose where to start scanning: the third-from-last file whose first
	// entry is sane and agrees with its slot; files before it are trusted
	// through their index slots (spot-checked). If nothing valid is found
	// from there, start one file earlier.
	rc := &recovery{s: s, data: data, index: s.mu.index}
	start := max(0, len(data)-3)
	if s.forceFullScan || s.cfg.ScanAll {
		start = 0
	}
	for ; start > 0; start-- {
		if h, ok := rc.header(data[start], data[start].start); ok && rc.slotAgrees(h, data[start].start) {
			break
		}
	}
	if start > 0 && !rc.trustedPrefixOK(start) {
		s.log.Warn("index slots of the older files disagree with the data: scanning everything")
		start = 0
	}
	if rc.ioErr != nil {
		return rc.ioErr
	}
	var startPos int64
	for {
		*rc = recovery{s: s, data: data, index: s.mu.index, first: -1, last: -1, lastTerm: -1}
		startPos = data[start].start
		if start == 0 {
			if p, ok, err := rc.locateFirst(data[0]); err != nil {
				return err
			} else if ok {
				startPos = p
			}
		}
		s.log.Info("recovering log", zap.String("from", data[start].path), zap.Int64("pos", startPos), zap.Int("files", len(data)))
		stopPos, reason, err := rc.scan(start, startPos)
		if err != nil {
			return err
		}
		rc.stopPos = stopPos
		if rc.ioErr != nil {
			return rc.ioErr
		}
		if rc.last < 0 {
			rc.end = startPos
		}
		rc.clean = s.cleanEnd >= 0 && rc.end == s.cleanEnd && (reason == "" || reason == "zero header")
		if rc.clean {
			s.log.Info("log was closed cleanly here: not scanning the zero tail", zap.Int64("end", rc.end))
		} else if reason != "" {
			if err := rc.checkTail(stopPos, reason); err != nil {
				return err
			}
		}
		if rc.ioErr != nil {
			return rc.ioErr
		}
		if rc.last >= 0 || start == 0 {
			break
		}
		start--
	}
	if err := rc.flushSlots(); err != nil {
		return err
	}

	// First index: from the scan, or the first entry of the first file.
	first := rc.first
	if start > 0 {
		if p, ok, err := rc.locateFirst(data[0]); err != nil {
			return err
		} else if ok {
			if h, ok := rc.header(data[0], p); ok {
				first = h.index
			}
		}
	}
	if rc.ioErr != nil {
		return rc.ioErr
	}
	if err := rc.cutTail(first); err != nil {
		return err
	}
	s.mu.first, s.mu.last, s.mu.end = first, rc.last, rc.end
	if rc.last < 0 {
		s.mu.first = -1
		s.mu.lastTerm = 0
	} else {
		s.mu.lastTerm = rc.lastTerm
	}
	s.mu.runs = rc.runs
	s.mu.runsFrom = rc.first
	if s.mu.first >= 0 && s.mu.first > rc.first {
		s.mu.runsFrom = s.mu.first
	}
	return s.syncAll() // a no-op unless recovery changed something
}

// readHeader decodes and sanity-checks the header at absolute position pos
// in data file f; ok is false for an invalid header, err is set only for an
// I/O error (which must never be mistaken for a torn tail).
func (s *Store) readHeader(f *file, pos int64) (h header, ok bool, err error) {
	fs := s.cfg.DataFileSize
	off := pos - f.start
	if off < 0 || off+HeaderSize > fs {
		return header{}, false, nil
	}
	var b [HeaderSize]byte
	if _, err := f.f.ReadAt(b[:], off); err != nil {
		return header{}, false, fmt.Errorf("logstore: read %s at %d: %w", f.path, off, err)
	}
	h = decodeHeader(b[:])
	if !headerCRCOK(b[:]) || h.check() != nil || h.pos != pos || off+int64(h.size)+MinBlank > fs {
		return h, false, nil
	}
	return h, true, nil
}

// header is readHeader remembering the first I/O error in rc.ioErr.
func (rc *recovery) header(f *file, pos int64) (header, bool) {
	h, ok, err := rc.s.readHeader(f, pos)
	rc.noteErr(err)
	return h, ok
}

func (rc *recovery) noteErr(err error) {
	if err != nil && rc.ioErr == nil && !errors.Is(err, dledger.ErrCorrupt) {
		rc.ioErr = err
	}
}

// slotAgrees compares a header with its index slot.
func (rc *recovery) slotAgrees(h header, pos int64) bool {
	var b [SlotSize]byte
	if err := readSlots(rc.index, rc.s.cfg.IndexFileSize, h.index, b[:]); err != nil {
		rc.noteErr(err)
		return false
	}
	sl := decodeSlot(b[:])
	return sl.magic == h.magic && sl.pos == pos && sl.size == h.size && sl.index == h.index && sl.term == h.term
}

// trustedPrefixOK spot-checks the slots of the files that are not scanned:
// the first entry of the first file and the entry just before the scan.
func (rc *recovery) trustedPrefixOK(start int) bool {
	p, ok, err := rc.locateFirst(rc.data[0])
	if err != nil || !ok {
		return false
	}
	h0, ok := rc.header(rc.data[0], p)
	if !ok || !rc.slotAgrees(h0, p) {
		return false
	}
	hs, ok := rc.header(rc.data[start], rc.data[start].start)
	if !ok || hs.index <= h0.index {
		return false
	}
	var b [SlotSize]byte
	if err := readSlots(rc.index, rc.s.cfg.IndexFileSize, hs.index-1, b[:]); err != nil {
		rc.noteErr(err)
		return false
	}
	sl := decodeSlot(b[:])
	if sl.index != hs.index-1 || sl.pos < p || sl.pos >= rc.data[start].start || sl.term > hs.term {
		return false
	}
	g := fileAt(rc.data, rc.s.cfg.DataFileSize, sl.pos)
	if g == nil {
		return false
	}
	h, ok := rc.header(g, sl.pos)
	return ok && rc.slotAgrees(h, sl.pos)
}

// locateFirst finds the first entry of the first data file: at its start,
// or, when the file starts with zeros (a log begun mid-file by a reset),
// the first entry carrying a valid checksum.
func (rc *recovery) locateFirst(f *file) (int64, bool, error) {
	var b [HeaderSize]byte
	if _, err := f.f.ReadAt(b[:], 0); err != nil {
		return 0, false, fmt.Errorf("logstore: read %s: %w", f.path, err)
	}
	if !bytes.Equal(b[:], zeros[:HeaderSize]) {
		return f.start, true, nil
	}
	p, _, ok, err := rc.findValid(f.start, f.start, -1, f.start+rc.s.cfg.DataFileSize, false)
	return p, ok, err
}

// scan checks entries from startPos on and returns where it stopped and,
// if it stopped on something other than a clean end, why.
func (rc *recovery) scan(fi int, pos int64) (stopPos int64, reason string, err error) {
	s := rc.s
	fs := s.cfg.DataFileSize
	var scanned, nextLog int64 = 0, s.cfg.ProgressBytes
	total := int64(len(rc.data)-fi) * fs
	r := &scanner{f: rc.data[fi], size: fs}
	for {
		f := rc.data[fi]
		if r.f != f {
			r = &scanner{f: f, size: fs, buf: r.buf[:0]}
		}
		off := pos - f.start
		rem := fs - off
		if rem < MinBlank {
			return pos, fmt.Sprintf("%d bytes left in the file, less than the minimum padding", rem), nil
		}
		b, err := r.at(off, MinBlank)
		if err != nil {
			return 0, "", err
		}
		if int32(binary.BigEndian.Uint32(b)) == MagicBlank {
			if n := int64(binary.BigEndian.Uint32(b[4:])); n != rem {
				return pos, fmt.Sprintf("padding says %d bytes remain, file has %d", n, rem), nil
			}
			if fi+1 >= len(rc.data) {
				return pos, "", nil // padding ends the last file: the next entry was lost or never written
			}
			scanned += rem
			fi++
			pos = rc.data[fi].start
			continue
		}
		if rem < HeaderSize {
			return pos, fmt.Sprintf("header does not fit in the %d bytes left", rem), nil
		}
		b, err = r.at(off, HeaderSize)
		if err != nil {
			return 0, "", err
		}
		if bytes.Equal(b, zeros[:HeaderSize]) {
			return pos, "zero header", nil
		}
		h := decodeHeader(b)
		if !headerCRCOK(b) {
			return pos, fmt.Sprintf("header crc %08x, stored %08x", headerCRC(b), h.chainCRC), nil
		}
		if err := h.check(); err != nil {
			return pos, err.Error(), nil
		}
		switch {
		case h.pos != pos:
			return pos, fmt.Sprintf("entry %d says pos %d", h.index, h.pos), nil
		case int64(h.size)+MinBlank > rem:
			return pos, fmt.Sprintf("entry %d of %d bytes does not fit in the %d bytes left", h.index, h.size, rem), nil
		case rc.last >= 0 && h.index != rc.last+1:
			return pos, fmt.Sprintf("entry index %d after %d", h.index, rc.last), nil
		case rc.last >= 0 && h.term < rc.lastTerm:
			return pos, fmt.Sprintf("entry %d term %d below previous term %d", h.index, h.term, rc.lastTerm), nil
		}
		full, err := r.at(off, int(h.size))
		if err != nil {
			return 0, "", err
		}
		if h.bodyCRC != 0 {
			if c := BodyCRC(full[HeaderSize:]); c != h.bodyCRC {
				return pos, fmt.Sprintf("entry %d body crc %08x, header says %08x", h.index, c, h.bodyCRC), nil
			}
		}
		if err := rc.checkSlot(h, pos); err != nil {
			return 0, "", err
		}
		if rc.first < 0 {
			rc.first = h.index
		}
		if n := len(rc.runs); n == 0 || rc.runs[n-1].term != h.term {
			rc.runs = append(rc.runs, termRun{index: h.index, term: h.term})
		}
		rc.last, rc.lastTerm = h.index, h.term
		pos += int64(h.size)
		rc.end = pos
		scanned += int64(h.size)
		if scanned >= nextLog {
			nextLog += s.cfg.ProgressBytes
			s.log.Info("recovery progress", zap.String("file", f.path), zap.Int64("scannedMiB", scanned>>20), zap.Int64("ofMiB", total>>20), zap.Int64("index", h.index))
		}
	}
}

// checkSlot compares an entry with its slot; from the first disagreement on,
// slots are rewritten from the data.
func (rc *recovery) checkSlot(h header, pos int64) error {
	if !rc.rewrite && !rc.slotAgrees(h, pos) {
		rc.rewrite = true
		rc.s.log.Warn("index disagrees with data: rebuilding index from here", zap.Int64("index", h.index), zap.Int64("pos", pos))
	}
	if !rc.rewrite {
		return nil
	}
	if len(rc.pending) == 0 {
		rc.pendOff = h.index * SlotSize
	}
	n := len(rc.pending)
	rc.pending = append(rc.pending, make([]byte, SlotSize)...)
	putSlot(rc.pending[n:], h.magic, pos, h.size, h.index, h.term)
	if len(rc.pending) >= 1<<20 {
		return rc.flushSlots()
	}
	return nil
}

func (rc *recovery) flushSlots() error {
	s := rc.s
	ifs := s.cfg.IndexFileSize
	b, off := rc.pending, rc.pendOff
	for len(b) > 0 {
		f, err := s.indexFile(off - off%ifs)
		if err != nil {
			return err
		}
		rc.index = s.mu.index
		n := min(int64(len(b)), f.start+ifs-off)
		if _, err := f.f.WriteAt(b[:n], off-f.start); err != nil {
			return fmt.Errorf("logstore: write %s: %w", f.path, err)
		}
		s.markDirty(f)
		rc.modified = true
		b, off = b[n:], off+n
	}
	rc.pending = rc.pending[:0]
	return nil
}

// checkTail decides whether the invalid record at stopPos is a torn tail
// (nothing valid after it: truncate) or damage below the tail (a valid entry
// with a checksum, or a sane first entry of a later file, follows: refuse).
func (rc *recovery) checkTail(stopPos int64, reason string) error {
	fs := rc.s.cfg.DataFileSize
	f := fileAt(rc.data, fs, stopPos)
	if f == nil { // cannot happen: a stop is always inside a file
		f = rc.data[len(rc.data)-1]
	}
	limit := rc.data[len(rc.data)-1].start + fs
	p, h, ok, err := rc.findValid(stopPos, stopPos+1, rc.last, limit, true)
	if err != nil {
		return err
	}
	if !ok {
		for _, g := range rc.data {
			if g.start > f.start+fs {
				if hh, good := rc.header(g, g.start); good && hh.index > rc.last {
					p, h, ok = g.start, hh, true
					break
				}
			}
		}
	}
	if ok {
		g := fileAt(rc.data, fs, p)
		return fmt.Errorf("%w: %s offset %d: %s; but entry %d (term %d) is valid at %s offset %d: damage below the tail, refusing to truncate (the replica must not vote or lead; repair or resync it)",
			dledger.ErrCorrupt, f.path, stopPos-f.start, reason, h.index, h.term, g.path, p-g.start)
	}
	if reason != "zero header" {
		rc.s.log.Warn("torn tail truncated", zap.String("file", f.path), zap.Int64("offset", stopPos-f.start), zap.String("reason", reason), zap.Int64("last", rc.last))
	}
	return nil
}

// findValid searches [from, limit) for an entry at or after candFrom with a
// non-zero, matching body checksum, a pos equal to where it lies and an
// index above minIndex. All-zero stretches are skipped quickly. With record,
// the non-zero chunks it read are remembered for cutTail.
func (rc *recovery) findValid(from, candFrom, minIndex, limit int64, record bool) (int64, header, bool, error) {
	fs := rc.s.cfg.DataFileSize
	const window = 1 << 20
	buf := make([]byte, window+HeaderSize)
	if record {
		rc.tail, rc.tailScanned = nil, false
	}
	for _, f := range rc.data {
		if f.start+fs <= from || f.start >= limit {
			continue
		}
		off := max(from-f.start, 0)
		fend := min(fs, limit-f.start)
		for ; off < fend; off += window {
			n := min(int64(len(buf)), fs-off)
			b := buf[:n]
			if _, err := f.f.ReadAt(b, off); err != nil {
				return 0, header{}, false, fmt.Errorf("logstore: read %s: %w", f.path, err)
			}
			if allZero(b) {
				continue
			}
			if record {
				rc.tail = append(rc.tail, chunk{f, off, n})
			}
			for _, m := range [][]byte{{0, 0, 0, 1}, {0, 0, 0, 2}} {
				for i := 0; i+HeaderSize <= len(b) && int64(i) < window && off+int64(i) < fend; {
					j := bytes.Index(b[i:], m)
					if j < 0 {
						break
					}
					i += j
					if i+HeaderSize > len(b) || int64(i) >= window || off+int64(i) >= fend {
						break
					}
					pos := f.start + off + int64(i)
					if pos >= candFrom && int64(binary.BigEndian.Uint64(b[i+offPos:])) == pos {
						if h, ok := rc.validWithCRC(f, pos, minIndex); ok {
							return pos, h, true, nil
						}
					}
					i++
				}
			}
		}
	}
	rc.tailScanned = record
	return 0, header{}, false, nil
}

func (rc *recovery) validWithCRC(f *file, pos, minIndex int64) (header, bool) {
	h, ok := rc.header(f, pos)
	if !ok || h.bodyCRC == 0 || h.index <= minIndex {
		return h, false
	}
	body := make([]byte, h.bodySize)
	if _, err := f.f.ReadAt(body, pos-f.start+HeaderSize); err != nil {
		rc.noteErr(fmt.Errorf("logstore: read %s: %w", f.path, err))
		return h, false
	}
	return h, BodyCRC(body) == h.bodyCRC
}

// cutTail zeroes everything after the recovered end, removes data and index
// files past it and index files wholly below first.
func (rc *recovery) cutTail(first int64) error {
	s := rc.s
	fs, ifs := s.cfg.DataFileSize, s.cfg.IndexFileSize
	endFile := fileAt(rc.data, fs, rc.end)
	if endFile == nil { // end at the very end of the last file cannot happen; be safe
		endFile = rc.data[len(rc.data)-1]
	}
	var keep, drop []*file
	for _, f := range rc.data {
		if f.start <= endFile.start {
			keep = append(keep, f)
		} else {
			drop = append(drop, f)
		}
	}
	switch {
	case rc.clean:
	case rc.tailScanned:
		// Zero only the non-zero chunks checkTail saw in endFile, and the
		// padding marker at end when the scan stopped in a later file.
		if rc.stopPos > rc.end && rc.stopPos-rc.stopPos%fs != endFile.start {
			if err := writeZeros(endFile, rc.end-endFile.start, min(MinBlank, endFile.start+fs-rc.end)); err != nil {
				return err
			}
			s.markDirty(endFile)
			rc.modified = true
		}
		for _, c := range rc.tail {
			if c.f != endFile {
				continue
			}
			lo := max(c.off, rc.end-endFile.start)
			if hi := c.off + c.n; hi > lo {
				if err := writeZeros(endFile, lo, hi-lo); err != nil {
					return err
				}
				s.markDirty(endFile)
				rc.modified = true
			}
		}
	default:
		if z, err := zeroNonZero(endFile, rc.end-endFile.start, fs); err != nil {
			return err
		} else if z {
			s.markDirty(endFile)
			rc.modified = true
		}
	}
	s.mu.data = keep
	if len(drop) > 0 {
		s.log.Warn("removing data files past the recovered end", zap.Int("files", len(drop)))
		if err := s.removeFiles(drop, s.dataDir); err != nil {
			return err
		}
	}

	var ikeep, idrop []*file
	slotEnd := (rc.last + 1) * SlotSize
	firstSlot := first * SlotSize
	for _, f := range s.mu.index {
		if rc.last >= 0 && f.start < slotEnd && f.start+ifs > firstSlot {
			ikeep = append(ikeep, f)
		} else {
			idrop = append(idrop, f)
		}
	}
	for _, f := range ikeep {
		if !rc.clean && slotEnd >= f.start && slotEnd < f.start+ifs {
			if z, err := zeroNonZero(f, slotEnd-f.start, ifs); err != nil {
				return err
			} else if z {
				s.markDirty(f)
				rc.modified = true
			}
		}
	}
	s.mu.index = ikeep
	if len(idrop) > 0 {
		if err := s.removeFiles(idrop, s.indexDir); err != nil {
			return err
		}
	}
	return nil
}

// allZero reports whether b holds only zero bytes.
func allZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeros))
		if !bytes.Equal(b[:n], zeros[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// zeroNonZero zeroes the non-zero 1 MiB chunks of f in [off, size).
func zeroNonZero(f *file, off, size int64) (bool, error) {
	buf := make([]byte, min(size-off, int64(len(zeros))))
	wrote := false
	for off < size {
		n := min(int64(len(buf)), size-off)
		b := buf[:n]
		if _, err := f.f.ReadAt(b, off); err != nil {
			return wrote, fmt.Errorf("logstore: read %s: %w", f.path, err)
		}
		if !bytes.Equal(b, zeros[:n]) {
			if _, err := f.f.WriteAt(zeros[:n], off); err != nil {
				return wrote, fmt.Errorf("logstore: zero %s: %w", f.path, err)
			}
			wrote = true
		}
		off += n
	}
	return wrote, nil
}
