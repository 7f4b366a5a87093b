package logstore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/rmqd/rmqd/dledger"
	"github.com/rmqd/rmqd/internal/vfs"
)

// Config configures a Store. The zero value of every field means its default.
type Config struct {
	// DataFileSize is the size of every data file (Java
	// mappedFileSizeForEntryData; RocketMQ passes mappedFileSizeCommitLog).
	// Default 1 GiB. Must be at least 4 KiB and is fixed for the store's
	// life: files of another size are refused.
	DataFileSize int64
	// IndexFileSize is the size of every index file, a multiple of 32.
	// Default 32 × 5 Mi (160 MiB, 5,242,880 slots).
	IndexFileSize int64
	// StartPos is where the first entry of an empty store goes: the end of
	// a legacy commitlog after an in-place upgrade (dledger.md §5.5,
	// dividedCommitlogOffset). It must be a multiple of DataFileSize (the
	// legacy files have that size, so their end is aligned). Open creates the
	// first data file there so the divide survives restarts; ignored when
	// data files exist.
	StartPos int64
	// CheckpointInterval is how often Sync rewrites the checkpoint file when
	// the committed index moved (Java checkPointInterval). Default 3 s;
	// negative means on every Sync.
	CheckpointInterval time.Duration
	// ProgressBytes is how often recovery logs its progress. Default 256 MiB.
	ProgressBytes int64
	// ScanAll makes Open check every entry of every file (headers, both
	// checksums, index slots) instead of starting at the third-from-last
	// file as Java does: an fsck, slow on a large log.
	ScanAll bool
	// ZeroFillAhead is how many bytes after the end of the log a background
	// goroutine keeps written with zeros and on disk (never past the end of
	// the current data file), so that a group commit's fdatasync writes
	// into allocated blocks instead of allocating them (see fill.go; worth
	// it in SYNC_FLUSH, where every group commit waits for an fdatasync).
	// 0 (the default) turns it off. It costs writing every byte of the log
	// twice (zeros first) and up to this much allocated disk.
	ZeroFillAhead int64
	// Logger receives recovery, truncation and retention events. Default no-op.
	Logger *zap.Logger

	// fillHook, when set (tests), runs in the filler after it picked the
	// chunk [lo, hi) and before it writes it.
	fillHook func(lo, hi int64)
}

func (c *Config) setDefaults() error {
	if c.DataFileSize == 0 {
		c.DataFileSize = DefaultDataFileSize
	}
	if c.IndexFileSize == 0 {
		c.IndexFileSize = DefaultIndexFileSize
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = 3 * time.Second
	}
	if c.ProgressBytes <= 0 {
		c.ProgressBytes = 256 << 20
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	switch {
	case c.DataFileSize < 4096 || c.DataFileSize > 1<<31-1:
		return fmt.Errorf("%w: DataFileSize %d not in [4096, 2^31)", ErrConfig, c.DataFileSize)
	case c.IndexFileSize < SlotSize || c.IndexFileSize%SlotSize != 0 || c.IndexFileSize > 1<<31-1:
		return fmt.Errorf("%w: IndexFileSize %d must be a positive multiple of %d below 2^31", ErrConfig, c.IndexFileSize, SlotSize)
	case c.StartPos < 0 || c.StartPos%c.DataFileSize != 0:
		return fmt.Errorf("%w: StartPos %d must be a non-negative multiple of DataFileSize %d", ErrConfig, c.StartPos, c.DataFileSize)
	}
	return nil
}

// file is one open data or index file; start is its name.
type file struct {
	start int64
	f     vfs.File
	path  string
	raw   *rawWriter // Append's writes when f is an OS file (Linux); nil otherwise
}

func newFile(start int64, f vfs.File, path string) *file {
	return &file{start: start, f: f, path: path, raw: newRawWriter(f)}
}

// writeAt is Append's write of b at off (Append's goroutine only: raw is
// not safe for concurrent use).
func (f *file) writeAt(b []byte, off int64) (int, error) {
	if f.raw != nil && len(b) > 0 {
		return f.raw.WriteAt(b, off)
	}
	return f.f.WriteAt(b, off)
}

// termRun says that entries from index on have term term, up to the next run.
type termRun struct{ index, term int64 }

// Store is a Java-DLedger-compatible log store. See the package doc.
//
// Concurrency: Append, Sync, SetHardState, SetCommitted, DeleteBefore and
// Close are called from one goroutine (the driver). Readers (FirstIndex,
// LastIndex, LastTerm, End, Term, Entry, Entries, ReadAt, Committed) may run
// on any goroutine at any time. They take mu.RLock only to copy bounds and
// file handles; all file I/O happens outside the lock. Append writes past the
// published end without the lock and publishes the new end afterwards.
type Store struct {
	FileLayout
	fs       vfs.FS
	cfg      Config
	log      *zap.Logger
	dir      string
	dataDir  string
	indexDir string

	mu struct {
		sync.RWMutex
		// data and index are sorted by start, contiguous, and replaced (never
		// modified in place) so readers may keep a copy after RUnlock.
		data  []*file
		index []*file
		first int64 // ledgerBeginIndex, -1 when empty
		last  int64 // ledgerEndIndex, -1 when empty
		// lastTerm is the term of last (or of the last removed entry when
		// empty after a truncation; 0 for a new store).
		lastTerm int64
		end      int64 // just past the last entry
		// gen counts removals of entries (truncation, retention); readers
		// compare it before and after their I/O.
		gen uint64
		// runs covers terms of [runsFrom, last]; below runsFrom Term reads
		// index slots.
		runs     []termRun
		runsFrom int64
		closed   bool
	}

	committed atomic.Int64

	// flushMu serializes Sync with itself and with everything that removes
	// or closes files (truncation, reset, retention, Close), so an fsync in
	// flight never meets a closed file. It also guards checkpointed and
	// lastCheckpoint.
	flushMu sync.Mutex
	// syncMu guards dirty, dirtyDirs and failed, shared by the driver
	// (Append marks) and Sync (which takes the marks).
	syncMu    sync.Mutex
	dirty     map[*file]struct{} // written since the last Sync
	dirtyDirs map[string]struct{}
	failed    error

	// Owned by the driver goroutine.
	hard           dledger.HardState
	wbuf, ibuf     []byte      // Append's encoding buffers, reused
	places         []placement // reused by Append
	segs, isegs    []segment   // reused by Append
	checkpointed   int64
	lastCheckpoint time.Time
	forceFullScan  bool  // recovery: the index was dropped
	cleanEnd       int64 // recovery: end recorded by the last clean Close, -1 if none

	fill *filler // nil unless Config.ZeroFillAhead > 0
}

var _ dledger.LogStorage = (*Store)(nil)

// Open opens or creates the store in dir (…/dledger-<selfId>), recovering
// the log as described in the package doc. It returns an error wrapping
// dledger.ErrCorrupt when the log is damaged below its tail.
func Open(fs vfs.FS, dir string, cfg Config) (*Store, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s := &Store{
		FileLayout: FileLayout{FileSize: cfg.DataFileSize},
		fs:         fs,
		cfg:        cfg,
		log:        cfg.Logger.With(zap.String("dir", dir)),
		dir:        dir,
		dataDir:    filepath.Join(dir, "data"),
		indexDir:   filepath.Join(dir, "index"),
		dirty:      map[*file]struct{}{},
		dirtyDirs:  map[string]struct{}{},
	}
	for _, d := range []string{dir, s.dataDir, s.indexDir} {
		if err := fs.MkdirAll(d); err != nil {
			return nil, fmt.Errorf("logstore: mkdir %s: %w", d, err)
		}
	}
	hs, err := loadHardState(fs, dir)
	if err != nil {
		return nil, err
	}
	s.hard = hs
	c, cleanEnd := loadCheckpoint(fs, dir)
	s.cleanEnd = cleanEnd
	if err := s.recover(); err != nil {
		s.closeFiles()
		return nil, err
	}
	if c > s.mu.last {
		s.log.Warn("checkpoint committed index beyond the log end, capped", zap.Int64("committed", c), zap.Int64("last", s.mu.last))
		c = s.mu.last
	}
	s.committed.Store(c)
	if cleanEnd >= 0 {
		// Drop the clean-shutdown mark durably before anything is written:
		// after a later crash it would be a lie.
		if err := vfs.WriteFileAtomic(fs, filepath.Join(dir, checkpointFile), encodeCheckpoint(s.mu.last, c, -1)); err != nil {
			s.closeFiles()
			return nil, fmt.Errorf("logstore: rewrite checkpoint: %w", err)
		}
	}
	s.checkpointed = c
	s.lastCheckpoint = time.Now()
	s.startFiller(s.mu.end)
	s.log.Info("log store opened",
		zap.Int64("first", s.mu.first), zap.Int64("last", s.mu.last), zap.Int64("lastTerm", s.mu.lastTerm),
		zap.Int64("end", s.mu.end), zap.Int64("committed", c), zap.Int64("term", hs.Term), zap.String("votedFor", hs.VotedFor))
	return s, nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// FirstIndex is ledgerBeginIndex, -1 when empty.
func (s *Store) FirstIndex() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.mu.first
}

// LastIndex is ledgerEndIndex, -1 when empty.
func (s *Store) LastIndex() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.mu.last
}

// LastTerm is the term of the last entry (0 for a new store).
func (s *Store) LastTerm() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.mu.lastTerm
}

// End is the position just past the last entry.
func (s *Store) End() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.mu.end
}

// BeginPos is the start of the first data file: positions below it are
// compacted (or, after an upgrade, belong to the legacy commitlog).
func (s *Store) BeginPos() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.mu.data) == 0 {
		return s.mu.end
	}
	return s.mu.data[0].start
}

// Committed returns the committed index recorded by SetCommitted (or loaded
// from the checkpoint at Open).
func (s *Store) Committed() int64 { return s.committed.Load() }

// SetCommitted records the committed index; Sync writes it to the
// checkpoint file at most every CheckpointInterval, and Close always does.
func (s *Store) SetCommitted(index int64) error {
	s.committed.Store(index)
	return nil
}

// HardState returns the last term and vote persisted.
func (s *Store) HardState() dledger.HardState { return s.hard }

// SetHardState writes currterm through a temporary file, fsync, rename and
// directory sync: when it returns nil, term and vote survive power loss.
func (s *Store) SetHardState(hs dledger.HardState) error {
	if s.isClosed() {
		return ErrClosed
	}
	if err := vfs.WriteFileAtomic(s.fs, filepath.Join(s.dir, currTermFile), encodeHardState(hs)); err != nil {
		return fmt.Errorf("logstore: persist currterm: %w", err)
	}
	s.hard = hs
	return nil
}

func (s *Store) isClosed() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.mu.closed
}

// Term returns the term of the entry at index.
func (s *Store) Term(index int64) (int64, error) {
	s.mu.RLock()
	if s.mu.closed {
		s.mu.RUnlock()
		return 0, ErrClosed
	}
	if err := s.checkRangeLocked(index); err != nil {
		s.mu.RUnlock()
		return 0, err
	}
	if index >= s.mu.runsFrom && len(s.mu.runs) > 0 {
		runs := s.mu.runs
		i := sort.Search(len(runs), func(i int) bool { return runs[i].index > index }) - 1
		if i >= 0 {
			t := runs[i].term
			s.mu.RUnlock()
			return t, nil
		}
	}
	idx, gen := s.mu.index, s.mu.gen
	s.mu.RUnlock()
	var b [SlotSize]byte
	if err := readSlots(idx, s.cfg.IndexFileSize, index, b[:]); err != nil {
		return 0, s.readError(gen, index, err)
	}
	sl := decodeSlot(b[:])
	if sl.index != index {
		return 0, s.readError(gen, index, fmt.Errorf("%w: index slot %d holds index %d", dledger.ErrCorrupt, index, sl.index))
	}
	return sl.term, nil
}

func (s *Store) checkRangeLocked(index int64) error {
	if s.mu.last < 0 || index > s.mu.last {
		return fmt.Errorf("%w: index %d, last %d", dledger.ErrUnavailable, index, s.mu.last)
	}
	if index < s.mu.first {
		return fmt.Errorf("%w: index %d, first %d", dledger.ErrCompacted, index, s.mu.first)
	}
	return nil
}

// readError turns an error seen by a reader into ErrCompacted or
// ErrUnavailable when entries were removed while it read.
func (s *Store) readError(gen uint64, index int64, err error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.mu.gen != gen {
		if rerr := s.checkRangeLocked(index); rerr != nil {
			return rerr
		}
		return fmt.Errorf("%w: index %d rewritten during the read", dledger.ErrUnavailable, index)
	}
	return err
}

// Entry reads the entry at index.
func (s *Store) Entry(index int64) (dledger.Entry, error) {
	es, err := s.Entries(index, index+1, 1)
	if err != nil {
		return dledger.Entry{}, err
	}
	return es[0], nil
}

const slotBatch = 1024

// Entries reads [lo, hi), stopping before the entry that would take the
// total size (headers included) past maxBytes; it always returns at least
// one entry (so maxBytes <= 0 reads exactly one; pass math.MaxInt64 for no
// limit). An empty range returns nil. Bodies point into one buffer
// allocated for this call, which the store never touches again.
func (s *Store) Entries(lo, hi int64, maxBytes int64) ([]dledger.Entry, error) {
	if lo >= hi {
		return nil, nil
	}
	s.mu.RLock()
	if s.mu.closed {
		s.mu.RUnlock()
		return nil, ErrClosed
	}
	if err := s.checkRangeLocked(lo); err != nil {
		s.mu.RUnlock()
		return nil, err
	}
	if err := s.checkRangeLocked(hi - 1); err != nil {
		s.mu.RUnlock()
		return nil, err
	}
	data, idx, gen := s.mu.data, s.mu.index, s.mu.gen
	s.mu.RUnlock()

	// Pick the entries from their slots.
	var slots []slot
	var total int64
	batchLen := min(hi-lo, slotBatch)
	if maxBytes < int64(slotBatch)*HeaderSize {
		batchLen = min(batchLen, max(maxBytes/HeaderSize, 0)+1)
	}
	buf := make([]byte, SlotSize*batchLen)
	done := false
	for next := lo; next < hi && !done; {
		n := min(hi-next, batchLen)
		b := buf[:n*SlotSize]
		if err := readSlots(idx, s.cfg.IndexFileSize, next, b); err != nil {
			return nil, s.readError(gen, next, err)
		}
		for i := int64(0); i < n; i++ {
			sl := decodeSlot(b[i*SlotSize:])
			if sl.index != next+i || sl.size < HeaderSize || int64(sl.size)+MinBlank > s.cfg.DataFileSize {
				return nil, s.readError(gen, next+i, fmt.Errorf("%w: index slot %d holds index %d size %d", dledger.ErrCorrupt, next+i, sl.index, sl.size))
			}
			if len(slots) > 0 && total+int64(sl.size) > maxBytes {
				done = true
				break
			}
			total += int64(sl.size)
			slots = append(slots, sl)
		}
		next += n
	}

	// Read the data: one ReadAt per run of entries in the same file.
	raw := make([]byte, total)
	out := make([]dledger.Entry, 0, len(slots))
	off := int64(0)
	for i := 0; i < len(slots); {
		f := fileAt(data, s.cfg.DataFileSize, slots[i].pos)
		j := i
		runEnd := slots[i].pos + int64(slots[i].size)
		for j+1 < len(slots) && slots[j+1].pos == runEnd && f != nil && slots[j+1].pos < f.start+s.cfg.DataFileSize {
			j++
			runEnd += int64(slots[j].size)
		}
		if f == nil {
			return nil, s.readError(gen, slots[i].index, fmt.Errorf("%w: entry %d at pos %d: no data file", dledger.ErrCorrupt, slots[i].index, slots[i].pos))
		}
		n := runEnd - slots[i].pos
		chunk := raw[off : off+n]
		if _, err := f.f.ReadAt(chunk, slots[i].pos-f.start); err != nil {
			return nil, s.readError(gen, slots[i].index, fmt.Errorf("logstore: read %s at %d: %w", f.path, slots[i].pos-f.start, err))
		}
		for k := i; k <= j; k++ {
			sl := slots[k]
			b := raw[off : off+int64(sl.size)]
			e, err := decodeChecked(b, sl)
			if err != nil {
				return nil, s.readError(gen, sl.index, fmt.Errorf("%w: %s: %v", dledger.ErrCorrupt, f.path, err))
			}
			out = append(out, e)
			off += int64(sl.size)
		}
		i = j + 1
	}
	// Entries removed while we read may have been rewritten under us.
	s.mu.RLock()
	same := s.mu.gen == gen
	s.mu.RUnlock()
	if !same {
		return nil, s.readError(gen, lo, fmt.Errorf("%w: entries rewritten during the read", dledger.ErrUnavailable))
	}
	return out, nil
}

// decodeChecked decodes an entry read for slot sl and checks it against it.
func decodeChecked(b []byte, sl slot) (dledger.Entry, error) {
	e, _, _, err := DecodeEntry(b)
	if err != nil {
		return e, fmt.Errorf("entry %d at pos %d: %w", sl.index, sl.pos, err)
	}
	if e.Index != sl.index || e.Term != sl.term || e.Pos != sl.pos || e.Magic != sl.magic || e.Size() != int64(sl.size) {
		return e, fmt.Errorf("entry %d at pos %d: header (index %d term %d pos %d magic %d size %d) disagrees with its index slot (term %d magic %d size %d)",
			sl.index, sl.pos, e.Index, e.Term, e.Pos, e.Magic, e.Size(), sl.term, sl.magic, sl.size)
	}
	return e, nil
}

// ReadAt reads entry bytes by position (RocketMQ's getMessage by physical
// offset). It reads at most up to End and returns io.EOF when p reaches past
// it; a position at or past End is ErrUnavailable, one below the first data
// file ErrCompacted. Padding between files reads as stored.
func (s *Store) ReadAt(p []byte, pos int64) (int, error) {
	s.mu.RLock()
	if s.mu.closed {
		s.mu.RUnlock()
		return 0, ErrClosed
	}
	end, data, gen := s.mu.end, s.mu.data, s.mu.gen
	s.mu.RUnlock()
	if len(data) == 0 || pos >= end {
		return 0, fmt.Errorf("%w: pos %d, end %d", dledger.ErrUnavailable, pos, end)
	}
	if pos < data[0].start {
		return 0, fmt.Errorf("%w: pos %d, first file starts at %d", dledger.ErrCompacted, pos, data[0].start)
	}
	want := min(int64(len(p)), end-pos)
	n := int64(0)
	for n < want {
		f := fileAt(data, s.cfg.DataFileSize, pos+n)
		if f == nil {
			return int(n), fmt.Errorf("%w: pos %d: no data file", dledger.ErrUnavailable, pos+n)
		}
		chunk := min(want-n, f.start+s.cfg.DataFileSize-(pos+n))
		m, err := f.f.ReadAt(p[n:n+chunk], pos+n-f.start)
		n += int64(m)
		if err != nil && int64(m) < chunk {
			s.mu.RLock()
			changed := s.mu.gen != gen
			s.mu.RUnlock()
			if changed {
				return int(n), fmt.Errorf("%w: pos %d rewritten during the read", dledger.ErrUnavailable, pos)
			}
			return int(n), fmt.Errorf("logstore: read %s: %w", f.path, err)
		}
	}
	if n < int64(len(p)) {
		return int(n), io.EOF
	}
	return int(n), nil
}

// fileAt finds the file holding pos in a sorted contiguous table.
func fileAt(files []*file, size, pos int64) *file {
	i := sort.Search(len(files), func(i int) bool { return files[i].start > pos }) - 1
	if i < 0 || pos >= files[i].start+size {
		return nil
	}
	return files[i]
}

// readSlots reads len(b)/32 consecutive slots starting at index.
func readSlots(files []*file, size int64, index int64, b []byte) error {
	off := index * SlotSize
	for len(b) > 0 {
		f := fileAt(files, size, off)
		if f == nil {
			return fmt.Errorf("%w: no index file for slot %d", dledger.ErrCorrupt, off/SlotSize)
		}
		n := min(int64(len(b)), f.start+size-off)
		if _, err := f.f.ReadAt(b[:n], off-f.start); err != nil {
			return fmt.Errorf("logstore: read %s: %w", f.path, err)
		}
		b = b[n:]
		off += n
	}
	return nil
}

// Close syncs the log, writes the checkpoint (durably, with a clean-shutdown
// mark that lets the next Open skip scanning the zero tail) and closes the
// files. After a write or sync error it only closes the files.
func (s *Store) Close() error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	if s.isClosed() {
		return ErrClosed
	}
	s.stopFiller()
	var err error
	if s.failure() == nil {
		if _, err = s.syncLocked(true); err == nil {
			s.mu.RLock()
			last, end := s.mu.last, s.mu.end
			s.mu.RUnlock()
			err = vfs.WriteFileAtomic(s.fs, filepath.Join(s.dir, checkpointFile), encodeCheckpoint(last, s.committed.Load(), end))
		}
	}
	s.mu.Lock()
	s.mu.closed = true
	s.mu.Unlock()
	if cerr := s.closeFiles(); err == nil {
		err = cerr
	}
	return err
}

func (s *Store) closeFiles() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	for _, f := range append(append([]*file(nil), s.mu.data...), s.mu.index...) {
		if cerr := f.f.Close(); cerr != nil && err == nil && !errors.Is(cerr, os.ErrClosed) {
			err = cerr
		}
	}
	return err
}

// writeCheckpoint records endIndex and committedIndex (no fsync: a hint).
func (s *Store) writeCheckpoint() error {
	c := s.committed.Load()
	s.mu.RLock()
	last := s.mu.last
	s.mu.RUnlock()
	if err := writeFileNoSync(s.fs, filepath.Join(s.dir, checkpointFile), encodeCheckpoint(last, c, -1)); err != nil {
		return fmt.Errorf("logstore: write checkpoint: %w", err)
	}
	s.checkpointed = c
	s.lastCheckpoint = time.Now()
	return nil
}
