package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rmqd/rmqd/internal/vfs"
	"go.uber.org/zap"
)

// Key index files (protocol.md §6.3): a hash table on disk per file.
//
//	header (40 bytes)  beginTimestamp int64 | endTimestamp int64 |
//	                   beginPhyOffset int64 | endPhyOffset int64 |
//	                   hashSlotCount int32  | indexCount int32 (starts at 1)
//	slots              hashSlotNum x int32: newest entry number of the slot, 0 = empty
//	entries            indexNum x 20 bytes: keyHash int32 | phyOffset int64 |
//	                   timeDiff int32 (seconds since beginTimestamp) | prevIndex int32
const indexHeaderSize = 40

const indexEntrySize = 20

type indexFile struct {
	file     vfs.File
	path     string
	slotNum  int32
	indexNum int32

	beginTs, endTs, beginPhy, endPhy int64
	hashSlotCount, indexCount        int32

	// Only for the writable (newest) file: the slot table in memory, the
	// entries and slots not yet written. put stores slots atomically: the
	// flusher reads them without mu.
	slots       []int32
	pendEntries []byte
	pendFrom    int32
	dirtyChunks []uint64 // bitmap: chunks of slotsPerChunk slots put to since takeFlush
	dirty       bool

	// flushMu is held while slots and header are written and fsynced: by
	// the flusher without mu (a put must not wait for the disk), by the roll
	// and close under mu (lock order mu, then flushMu), so they neither
	// overwrite newer slots with a flush's older ones nor close the file
	// under it. Retention never removes the writable file, and a file stops
	// being writable only at the roll.
	flushMu   sync.Mutex
	spare     []uint64 // flushMu: a flushed (cleared) bitmap, reused by takeFlush
	unflushed []uint64 // flushMu: dirty chunks of a failed flush, written by the next
	runBuf    []byte   // flushMu: slots encoded for one WriteAt
}

func (f *indexFile) full() bool { return f.indexCount >= f.indexNum }

func (f *indexFile) slotPos(slot int32) int64 { return indexHeaderSize + int64(slot)*4 }

func (f *indexFile) entryPos(i int32) int64 {
	return indexHeaderSize + int64(f.slotNum)*4 + int64(i)*indexEntrySize
}

func (f *indexFile) headerBytes() []byte {
	var h [indexHeaderSize]byte
	be := binary.BigEndian
	be.PutUint64(h[0:], uint64(f.beginTs))
	be.PutUint64(h[8:], uint64(f.endTs))
	be.PutUint64(h[16:], uint64(f.beginPhy))
	be.PutUint64(h[24:], uint64(f.endPhy))
	be.PutUint32(h[32:], uint32(f.hashSlotCount))
	be.PutUint32(h[36:], uint32(f.indexCount))
	return h[:]
}

// keyHash is |String.hashCode(key)|, 0 when negative (Java indexKeyHashMethod).
func keyHash(key string) int32 {
	h := JavaStringHashCode(key)
	if h < 0 {
		h = -h
	}
	if h < 0 {
		h = 0
	}
	return h
}

// indexService owns the index files. The dispatcher adds keys in batches
// (put + writePending under mu); queries hold mu for reading.
type indexService struct {
	fs       vfs.FS
	dir      string
	slotNum  int32
	indexNum int32
	now      func() time.Time
	logger   *zap.Logger

	mu    sync.RWMutex
	files []*indexFile // oldest first
	// resume: records at lower commitlog offsets are already indexed (set by load).
	resume int64
}

func newIndexService(cfg *Config) *indexService {
	return &indexService{fs: cfg.FS, dir: filepath.Join(cfg.RootDir, "index"),
		slotNum: cfg.MaxHashSlotNum, indexNum: cfg.MaxIndexNum, now: cfg.Now, logger: cfg.Logger}
}

func (s *indexService) fileSize() int64 {
	return indexHeaderSize + int64(s.slotNum)*4 + int64(s.indexNum)*indexEntrySize
}

// load opens the index files; phyEnd is the recovered commitlog end: a
// header claiming more is pulled back so the tail is indexed again (stale
// entries are filtered at query time by reading the records).
func (s *indexService) load(phyEnd int64) error {
	names, err := s.fs.ReadDir(s.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, name := range names {
		if len(name) != 17 || strings.HasSuffix(name, ".tmp") {
			continue
		}
		path := filepath.Join(s.dir, name)
		if size, _, err := s.fs.Stat(path); err != nil || size != s.fileSize() {
			// Written with other MaxHashSlotNum/MaxIndexNum (or not ours):
			// its layout is unknown here. Keep it on disk, do not use it.
			s.logger.Warn("index file of unexpected size ignored", zap.String("file", path), zap.Int64("size", size),
				zap.Int64("want", s.fileSize()))
			continue
		}
		fl, err := s.fs.OpenFile(path, os.O_RDWR)
		if err != nil {
			return err
		}
		f := &indexFile{file: fl, path: path, slotNum: s.slotNum, indexNum: s.indexNum}
		var h [indexHeaderSize]byte
		if _, err := fl.ReadAt(h[:], 0); err != nil {
			fl.Close()
			return fmt.Errorf("store: index %s: %w", path, err)
		}
		be := binary.BigEndian
		f.beginTs, f.endTs = int64(be.Uint64(h[0:])), int64(be.Uint64(h[8:]))
		f.beginPhy, f.endPhy = int64(be.Uint64(h[16:])), int64(be.Uint64(h[24:]))
		f.hashSlotCount, f.indexCount = int32(be.Uint32(h[32:])), int32(be.Uint32(h[36:]))
		if f.indexCount < 1 || f.indexCount > f.indexNum {
			f.indexCount = 1
		}
		s.resume = 0
		if f.endPhy > phyEnd {
			f.endPhy = phyEnd
			s.resume = phyEnd
		} else if f.indexCount > 1 || len(s.files) > 0 {
			s.resume = f.endPhy + 1
		}
		s.files = append(s.files, f)
	}
	if n := len(s.files); n > 0 && !s.files[n-1].full() {
		return s.loadSlots(s.files[n-1])
	}
	return nil
}

func (s *indexService) loadSlots(f *indexFile) error {
	raw := make([]byte, int64(f.slotNum)*4)
	if _, err := f.file.ReadAt(raw, indexHeaderSize); err != nil {
		return fmt.Errorf("store: index %s slots: %w", f.path, err)
	}
	f.slots = make([]int32, f.slotNum)
	for i := range f.slots {
		f.slots[i] = int32(binary.BigEndian.Uint32(raw[i*4:]))
	}
	f.pendFrom = f.indexCount
	return nil
}

// endPhyOffset is where indexing resumes (-1 with no files).
func (s *indexService) endPhyOffset() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.files) == 0 {
		return -1
	}
	return s.files[len(s.files)-1].endPhy
}

func (s *indexService) newFile() (*indexFile, error) {
	if err := s.fs.MkdirAll(s.dir); err != nil {
		return nil, err
	}
	t := s.now()
	var path string
	for {
		path = filepath.Join(s.dir, strings.Replace(t.Format("20060102150405.000"), ".", "", 1))
		if len(s.files) == 0 || path > s.files[len(s.files)-1].path {
			if !vfs.Exists(s.fs, path) {
				break
			}
		}
		t = t.Add(time.Millisecond)
	}
	fl, err := s.fs.OpenFile(path, os.O_RDWR|os.O_CREATE)
	if err != nil {
		return nil, err
	}
	if err := fl.Truncate(s.fileSize()); err != nil {
		fl.Close()
		return nil, err
	}
	f := &indexFile{file: fl, path: path, slotNum: s.slotNum, indexNum: s.indexNum, indexCount: 1, pendFrom: 1,
		slots: make([]int32, s.slotNum)}
	if len(s.files) > 0 {
		prev := s.files[len(s.files)-1]
		f.beginPhy, f.endPhy, f.beginTs, f.endTs = prev.endPhy, prev.endPhy, prev.endTs, prev.endTs
	}
	if _, err := fl.WriteAt(f.headerBytes(), 0); err != nil {
		fl.Close()
		return nil, err
	}
	if err := fl.Sync(); err != nil {
		fl.Close()
		return nil, err
	}
	if err := s.fs.SyncDir(s.dir); err != nil {
		fl.Close()
		return nil, err
	}
	if len(s.files) == 0 {
		if err := s.fs.SyncDir(filepath.Dir(s.dir)); err != nil {
			fl.Close()
			return nil, err
		}
	}
	s.files = append(s.files, f)
	return f, nil
}

// put adds key -> phy (mu held for writing, by the dispatcher).
func (s *indexService) put(h int32, phy, storeTs int64) error {
	f := s.writable()
	if f == nil || f.full() {
		if f != nil {
			if err := s.flushFile(f); err != nil {
				return err
			}
			f.slots = nil
		}
		var err error
		if f, err = s.newFile(); err != nil {
			return err
		}
	}
	slot := h % f.slotNum
	prev := f.slots[slot]
	if prev <= 0 || prev > f.indexCount {
		prev = 0
	}
	if f.indexCount <= 1 {
		f.beginTs, f.beginPhy = storeTs, phy
	}
	diff := (storeTs - f.beginTs) / 1000
	if f.beginTs <= 0 || diff < 0 {
		diff = 0
	}
	var e [indexEntrySize]byte
	binary.BigEndian.PutUint32(e[0:], uint32(h))
	binary.BigEndian.PutUint64(e[4:], uint64(phy))
	binary.BigEndian.PutUint32(e[12:], uint32(int32(min(diff, 1<<31-1))))
	binary.BigEndian.PutUint32(e[16:], uint32(prev))
	f.pendEntries = append(f.pendEntries, e[:]...)
	if prev == 0 {
		f.hashSlotCount++
	}
	atomic.StoreInt32(&f.slots[slot], f.indexCount)
	if f.dirtyChunks == nil {
		f.dirtyChunks = make([]uint64, (f.slotNum/slotsPerChunk+64)/64)
	}
	c := slot / slotsPerChunk
	f.dirtyChunks[c/64] |= 1 << (c % 64)
	f.indexCount++
	f.endPhy, f.endTs = phy, storeTs
	f.dirty = true
	return nil
}

func (s *indexService) writable() *indexFile {
	if n := len(s.files); n > 0 && s.files[n-1].slots != nil {
		return s.files[n-1]
	}
	return nil
}

// writePending writes the queued entries of the writable file (mu held for
// writing, once per dispatch round): queries read entries from the file and
// slots from memory. Slots and the header reach the file in sync, so the
// durable header never claims entries whose slots are not on disk; after a
// crash indexing resumes from that header and rewrites the rest.
func (s *indexService) writePending() error {
	f := s.writable()
	if f == nil || len(f.pendEntries) == 0 {
		return nil
	}
	if _, err := f.file.WriteAt(f.pendEntries, f.entryPos(f.pendFrom)); err != nil {
		return err
	}
	f.pendEntries = f.pendEntries[:0]
	f.pendFrom = f.indexCount
	return nil
}

// slotsPerPage is how many hash slots (int32) a 4 KiB page holds;
// slotsPerChunk how many a bit of the dirty bitmap stands for;
// maxRunSlots how many one WriteAt writes at most (a run is split: under
// load a run is the whole 20 MB table, and a buffer that size, allocated
// anew at each sync, cost more than the 80 writes).
const (
	slotsPerPage  = 4096 / 4
	slotsPerChunk = 64
	maxRunSlots   = 64 * slotsPerPage
)

// slotFlush is one flush of a writable file's dirty slots and header,
// taken under mu by takeFlush and written without it.
type slotFlush struct {
	f      *indexFile
	slots  []int32
	dirty  []uint64 // bitmap of dirty slot chunks
	header []byte
}

// takeFlush hands the dirty slot chunks and the header to a flush (mu and
// f.flushMu held); puts after it mark their chunks dirty for the next one.
// Entries the header claims are in the file: writePending ran under mu.
func (f *indexFile) takeFlush() slotFlush {
	dirty := f.dirtyChunks
	if dirty == nil {
		dirty = f.unflushed
	} else {
		for i, w := range f.unflushed {
			dirty[i] |= w
		}
	}
	fl := slotFlush{f: f, slots: f.slots, dirty: dirty, header: f.headerBytes()}
	f.dirtyChunks, f.spare, f.unflushed = f.spare, nil, nil
	f.dirty = false
	return fl
}

// writeSync writes the dirty slots, then the header, and fsyncs the file
// (f.flushMu held, mu need not be). Puts mark the chunk of 64 slots they
// changed in a bitmap (a list of dirty slots grew by one per put and was
// sorted at each sync: 1.5% of a follower's CPU at 64 producers, issue 8),
// and a sync writes the dirty chunks in runs: chunks less than a page
// apart share one WriteAt. Keys hash to random slots, so under load nearly
// every page of the slot table is dirty at each sync anyway; merging a gap
// of less than a page dirties no extra page and costs less than a syscall
// (one WriteAt per slot made ~20k calls a second per replica, issue 8). A slot read here may already name
// an entry put after takeFlush, past the header's indexCount: put and
// query treat such a slot as empty, as they do after a crash that kept a
// later flush's slot writes but not its header.
func (fl slotFlush) writeSync() error {
	err := fl.writeRuns()
	if err == nil {
		_, err = fl.f.file.WriteAt(fl.header, 0)
	}
	if err == nil {
		err = fl.f.file.Sync()
	}
	if err != nil {
		fl.f.unflushed = fl.dirty
		return err
	}
	clear(fl.dirty)
	fl.f.spare = fl.dirty
	return nil
}

// writeRuns writes the dirty chunks, a run of them (gaps of less than a
// page merged) per WriteAt.
func (fl slotFlush) writeRuns() error {
	write := func(lo, hi int32) error { // chunks [lo, hi)
		from, to := lo*slotsPerChunk, min(hi*slotsPerChunk, int32(len(fl.slots)))
		for from < to {
			n := min(to-from, maxRunSlots)
			run := fl.f.runBuf[:0]
			for slot := from; slot < from+n; slot++ {
				run = binary.BigEndian.AppendUint32(run, uint32(atomic.LoadInt32(&fl.slots[slot])))
			}
			fl.f.runBuf = run
			if _, err := fl.f.file.WriteAt(run, fl.f.slotPos(from)); err != nil {
				return err
			}
			from += n
		}
		return nil
	}
	lo, hi := int32(-1), int32(-1)
	for w, word := range fl.dirty {
		for ; word != 0; word &= word - 1 {
			c := int32(w*64 + bits.TrailingZeros64(word))
			if hi >= 0 && (c-hi)*slotsPerChunk < slotsPerPage {
				hi = c + 1
				continue
			}
			if hi >= 0 {
				if err := write(lo, hi); err != nil {
					return err
				}
			}
			lo, hi = c, c+1
		}
	}
	if hi >= 0 {
		return write(lo, hi)
	}
	return nil
}

// flushFile writes the writable file's entries, slots and header and
// fsyncs it, all under mu: the roll and close need the file complete.
func (s *indexService) flushFile(f *indexFile) error {
	if err := s.writePending(); err != nil {
		return err
	}
	f.flushMu.Lock()
	defer f.flushMu.Unlock()
	return f.takeFlush().writeSync()
}

// sync writes slots and header of the writable file and fsyncs it, the
// writes and fsync without mu (never hold a lock across I/O: the
// dispatcher puts under mu, ~200 slot runs a second took it ~1 ms). One
// caller at a time (the flush loop, then Shutdown): a second would wait for
// flushMu under mu.
func (s *indexService) sync() error {
	s.mu.Lock()
	f := s.writable()
	if f == nil {
		s.mu.Unlock()
		return nil
	}
	f.flushMu.Lock()
	defer f.flushMu.Unlock()
	if !f.dirty && f.unflushed == nil {
		s.mu.Unlock()
		return nil
	}
	// The dispatcher writes entries each round; any queued here are from
	// its failed write, retried before a header claims them.
	if err := s.writePending(); err != nil {
		s.mu.Unlock()
		return err
	}
	fl := f.takeFlush()
	s.mu.Unlock()
	return fl.writeSync()
}

// query returns commitlog offsets of entries for key within [begin, end]
// (ms), newest first, at most maxNum.
func (s *indexService) query(key string, maxNum int, begin, end int64) []int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	h := keyHash(key)
	var out []int64
	for i := len(s.files) - 1; i >= 0 && len(out) < maxNum; i-- {
		f := s.files[i]
		if f.indexCount <= 1 || f.endTs < begin || f.beginTs > end {
			continue
		}
		slot := h % f.slotNum
		var next int32
		if f.slots != nil {
			next = f.slots[slot]
		} else {
			var b [4]byte
			if _, err := f.file.ReadAt(b[:], f.slotPos(slot)); err != nil {
				continue
			}
			next = int32(binary.BigEndian.Uint32(b[:]))
		}
		var e [indexEntrySize]byte
		for steps := 0; next > 0 && next < f.indexCount && len(out) < maxNum && steps < int(f.indexCount); steps++ {
			if _, err := f.file.ReadAt(e[:], f.entryPos(next)); err != nil {
				break
			}
			kh := int32(binary.BigEndian.Uint32(e[0:]))
			phy := int64(binary.BigEndian.Uint64(e[4:]))
			t := f.beginTs + int64(int32(binary.BigEndian.Uint32(e[12:])))*1000
			prev := int32(binary.BigEndian.Uint32(e[16:]))
			if kh == h && t >= begin && t <= end {
				out = append(out, phy)
			}
			if t < begin || prev >= next {
				break
			}
			next = prev
		}
	}
	return out
}

// lastUpdate returns the newest file's endTimestamp and endPhyOffset.
func (s *indexService) lastUpdate() (int64, int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.files) == 0 {
		return 0, 0
	}
	f := s.files[len(s.files)-1]
	return f.endTs, f.endPhy
}

// deleteExpired removes files whose entries all point below minPhy (never the newest).
func (s *indexService) deleteExpired(minPhy int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for n < len(s.files)-1 && s.files[n].endPhy < minPhy {
		f := s.files[n]
		f.file.Close()
		s.fs.Remove(f.path)
		n++
	}
	if n > 0 {
		s.files = s.files[n:]
		s.fs.SyncDir(s.dir)
	}
	return n
}

func (s *indexService) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.writable(); f != nil {
		s.flushFile(f)
	}
	for _, f := range s.files {
		f.file.Close()
	}
	s.files = nil
}
