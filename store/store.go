package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rmqd/rmqd/internal/vfs"
	"go.uber.org/zap"
)

// MessageStore is RocketMQ's DefaultMessageStore: commitlog, consume queues,
// key index, dispatcher, flush and retention services. Safe for concurrent use.
// The package documentation describes formats, durability and recovery.
type MessageStore struct {
	cfg       Config
	logger    *zap.Logger
	storeHost hostBytes
	cl        commitLog
	classic   *classicLog   // cl in classic mode (recovery, retention)
	repl      *replicaState // DLedger mode (replica.go); nil in classic mode
	// retentionFloor: see SetRetentionFloor (DLedger mode).
	retentionFloor atomic.Pointer[func() int64]
	sys            sysState     // system record handler (guarded by dispatchMu)
	upg            upgradeState // classic-prefix agreement of an upgraded store (upgrade_agree.go)
	index          *indexService
	ckpt           *checkpoint
	lock           vfs.File

	// putState is the put lock and what it guards: queue offsets, store
	// timestamps and commitlog placement happen under it, so commitlog order
	// is queue-offset order. The commitlog's pending buffer is guarded by it too.
	putState struct {
		sync.Mutex
		// queueOffsets is the topicQueueTable: next queue offset per queue.
		queueOffsets map[queueKey]int64
		// lastStoreTs: store timestamps never go backwards.
		lastStoreTs int64
	}

	cqMu    sync.RWMutex
	cqTable map[string]map[int32]*consumeQueue

	dispatched   atomic.Int64 // commitlog offset below which everything is dispatched
	dispatchedTs atomic.Int64 // STORETIMESTAMP of the last dispatched record
	dispatchCh   chan struct{}
	dispatchMu   sync.Mutex // held by the dispatcher for a round; DeleteTopics takes it
	dispatchDone struct {
		sync.Mutex
		ch chan struct{} // closed whenever dispatched advances
	}
	listener atomic.Pointer[MessageArrivingListener]
	disp     dispatcher // dispatcher goroutine state

	delayLevels []int64 // ms per delay level, index 1..n
	stats       storeStats
	bufPool     sync.Pool

	state  atomic.Int32 // 0 opened, 1 running, 2 shut down
	stopCh chan struct{}
	wg     sync.WaitGroup
}

type queueKey struct {
	topic   string
	queueID int32
}

func (c *Config) setDefaults() error {
	d := DefaultConfig(c.RootDir)
	if c.RootDir == "" {
		return errors.New("store: Config.RootDir is empty")
	}
	if c.CommitLogDir == "" {
		c.CommitLogDir = filepath.Join(c.RootDir, "commitlog")
	}
	if c.FS == nil {
		c.FS = vfs.Default
	}
	if c.MappedFileSizeCommitLog <= 0 {
		c.MappedFileSizeCommitLog = d.MappedFileSizeCommitLog
	}
	if c.MappedFileSizeConsumeQueue <= 0 {
		c.MappedFileSizeConsumeQueue = d.MappedFileSizeConsumeQueue
	}
	if c.MappedFileSizeConsumeQueue%CQUnitSize != 0 {
		return fmt.Errorf("store: MappedFileSizeConsumeQueue %d is not a multiple of %d", c.MappedFileSizeConsumeQueue, CQUnitSize)
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = d.FlushInterval
	}
	if c.FlushConsumeQueueInterval <= 0 {
		c.FlushConsumeQueueInterval = d.FlushConsumeQueueInterval
	}
	if c.SyncFlushTimeout <= 0 {
		c.SyncFlushTimeout = d.SyncFlushTimeout
	}
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = d.MaxMessageSize
	}
	if c.StoreHost == "" {
		c.StoreHost = d.StoreHost
	}
	if c.FileReservedTime <= 0 {
		c.FileReservedTime = d.FileReservedTime
	}
	if c.DeleteWhen == "" {
		c.DeleteWhen = d.DeleteWhen
	}
	if c.DiskMaxUsedSpaceRatio <= 0 {
		c.DiskMaxUsedSpaceRatio = d.DiskMaxUsedSpaceRatio
	}
	if c.DiskForceCleanRatio <= 0 {
		c.DiskForceCleanRatio = d.DiskForceCleanRatio
	}
	if c.CleanResourceInterval <= 0 {
		c.CleanResourceInterval = d.CleanResourceInterval
	}
	if c.DeleteFilesBatchMax <= 0 {
		c.DeleteFilesBatchMax = d.DeleteFilesBatchMax
	}
	if c.MaxHashSlotNum <= 0 {
		c.MaxHashSlotNum = d.MaxHashSlotNum
	}
	if c.MaxIndexNum <= 0 {
		c.MaxIndexNum = d.MaxIndexNum
	}
	if c.MaxTransferCountOnMessageInMemory <= 0 {
		c.MaxTransferCountOnMessageInMemory = d.MaxTransferCountOnMessageInMemory
	}
	if c.MaxTransferBytesOnMessageInMemory <= 0 {
		c.MaxTransferBytesOnMessageInMemory = d.MaxTransferBytesOnMessageInMemory
	}
	if c.MaxFilterMessageCount <= 0 {
		c.MaxFilterMessageCount = d.MaxFilterMessageCount
	}
	if c.MessageDelayLevel == "" {
		c.MessageDelayLevel = d.MessageDelayLevel
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.DiskUsedRatio == nil {
		if c.FS == vfs.Default {
			c.DiskUsedRatio = osDiskUsedRatio
		} else {
			c.DiskUsedRatio = func(string) float64 { return 0 }
		}
	}
	return nil
}

// parseDelayLevels parses "1s 5s ... 2h" into milliseconds (index 1..n).
func parseDelayLevels(s string) ([]int64, error) {
	out := []int64{0}
	unit := map[byte]int64{'s': 1000, 'm': 60000, 'h': 3600000, 'd': 86400000}
	for _, f := range strings.Fields(s) {
		u, ok := unit[f[len(f)-1]]
		n, err := strconv.ParseInt(f[:len(f)-1], 10, 64)
		if !ok || err != nil {
			return nil, fmt.Errorf("store: bad messageDelayLevel %q", f)
		}
		out = append(out, n*u)
	}
	return out, nil
}

// Open recovers (or creates) the store under cfg.RootDir: it takes the lock
// file, recovers the commitlog (a full check from the checkpoint when the
// abort file says the last run did not shut down cleanly), truncates consume
// queues and the index to the recovered end, re-dispatches the tail and
// rebuilds the queue offset table. Call Start to run the services.
func Open(cfg Config) (*MessageStore, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	host, err := parseHost(cfg.StoreHost)
	if err != nil {
		return nil, fmt.Errorf("store: StoreHost: %w", err)
	}
	levels, err := parseDelayLevels(cfg.MessageDelayLevel)
	if err != nil {
		return nil, err
	}
	s := &MessageStore{
		cfg:         cfg,
		logger:      cfg.Logger,
		storeHost:   host,
		cqTable:     map[string]map[int32]*consumeQueue{},
		dispatchCh:  make(chan struct{}, 1),
		delayLevels: levels,
		stopCh:      make(chan struct{}),
	}
	s.putState.queueOffsets = map[queueKey]int64{}
	s.dispatchDone.ch = make(chan struct{})
	s.stats.boot = time.Now()
	s.bufPool.New = func() any { b := make([]byte, 0, 4096); return &b }
	fs := cfg.FS
	if err := fs.MkdirAll(cfg.RootDir); err != nil {
		return nil, err
	}
	if s.lock, err = lockFile(fs, filepath.Join(cfg.RootDir, "lock")); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			s.closeFiles()
		}
	}()
	lastExitOK := !vfs.Exists(fs, s.abortPath())
	if s.ckpt, err = openCheckpoint(fs, filepath.Join(cfg.RootDir, "checkpoint")); err != nil {
		return nil, err
	}
	s.classic = newClassicLog(&s.cfg, cfg.CommitLogDir, &s.putState.Mutex)
	s.cl = s.classic
	if err := s.classic.files.load(); err != nil {
		return nil, err
	}
	if err := s.loadConsumeQueues(); err != nil {
		return nil, err
	}
	if cfg.ReplicatedLog != nil {
		if err := s.recoverReplicated(lastExitOK); err != nil {
			return nil, err
		}
	} else if err := s.recoverClassic(lastExitOK); err != nil {
		return nil, err
	}
	// abort: present while running.
	af, err := fs.OpenFile(s.abortPath(), os.O_RDWR|os.O_CREATE)
	if err != nil {
		return nil, err
	}
	af.Close()
	if err := fs.SyncDir(cfg.RootDir); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// recoverClassic is Open's recovery of the classic commitlog.
func (s *MessageStore) recoverClassic(lastExitOK bool) error {
	cfg := s.cfg
	scanStart, end, lastTs, err := s.recoverCommitLog(lastExitOK)
	if err != nil {
		return err
	}
	s.classic.setEnd(end, lastTs)
	s.putState.lastStoreTs = lastTs
	minPhy := s.cl.minOffset()
	var cqMaxPhy int64 = minPhy
	for _, cq := range s.allQueues() {
		if err := cq.truncateTo(end); err != nil {
			return err
		}
		cq.correctMinOffset(minPhy)
		cqMaxPhy = max(cqMaxPhy, cq.maxPhy.Load())
	}
	if cfg.MessageIndexEnable {
		s.index = newIndexService(&s.cfg)
		if err := s.index.load(end); err != nil {
			return err
		}
	}
	from := cqMaxPhy
	if !lastExitOK {
		from = scanStart
	}
	if s.index != nil {
		if e := s.index.endPhyOffset(); e < from {
			from = e
		}
	}
	from = min(max(from, minPhy), end)
	s.dispatched.Store(from)
	s.dispatchedTs.Store(lastTs)
	// Catch up synchronously so consume queues and the queue offset table
	// cover everything in the commitlog before the first put.
	if err := s.dispatchUntil(end, s.startProgress(redispatchStep, from, end)); err != nil {
		return err
	}
	for _, cq := range s.allQueues() {
		s.putState.queueOffsets[queueKey{cq.topic, cq.queueID}] = cq.maxOffset.Load()
	}
	s.cl.setNotify(s.wakeDispatcher)
	s.logger.Info("store opened", zap.Bool("lastExitOK", lastExitOK), zap.Int64("minPhyOffset", minPhy),
		zap.Int64("maxPhyOffset", end), zap.Int64("redispatchedFrom", from), zap.Int("queues", len(s.putState.queueOffsets)))
	return nil
}

func (s *MessageStore) abortPath() string { return filepath.Join(s.cfg.RootDir, "abort") }

func (s *MessageStore) cqDir(topic string, queueID int32) string {
	return filepath.Join(s.cfg.RootDir, "consumequeue", topic, strconv.Itoa(int(queueID)))
}

func (s *MessageStore) loadConsumeQueues() error {
	root := filepath.Join(s.cfg.RootDir, "consumequeue")
	topics, err := s.cfg.FS.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, topic := range topics {
		qids, err := s.cfg.FS.ReadDir(filepath.Join(root, topic))
		if err != nil {
			continue
		}
		for _, q := range qids {
			id, err := strconv.ParseInt(q, 10, 32)
			if err != nil {
				continue
			}
			cq := newConsumeQueue(s, topic, int32(id))
			if err := cq.recover(); err != nil {
				return fmt.Errorf("store: consume queue %s/%d: %w", topic, id, err)
			}
			if s.cqTable[topic] == nil {
				s.cqTable[topic] = map[int32]*consumeQueue{}
			}
			s.cqTable[topic][int32(id)] = cq
		}
	}
	return nil
}

// recoverCommitLog finds the end of valid data. After a clean shutdown it
// checks the last three files; otherwise it starts at the last file whose
// first record is not newer than the checkpoint. Every record is validated
// (size, magic, field bounds, body CRC, PHYSICALOFFSET == its position); the
// first invalid one ends the log and everything after it is removed.
func (s *MessageStore) recoverCommitLog(lastExitOK bool) (scanStart, end, lastTs int64, err error) {
	q := s.classic.files
	files := q.snapshot()
	if len(files) == 0 {
		return 0, 0, 0, nil
	}
	start := max(0, len(files)-3)
	if !lastExitOK {
		start = 0
		minTs := s.ckpt.minTimestamp(s.cfg.MessageIndexEnable)
		for i := len(files) - 1; i >= 0; i-- {
			ts, ok := s.firstRecordTimestamp(files[i])
			if ok && ts <= minTs {
				start = i
				break
			}
		}
	}
	scanStart = files[start].from
	to := files[len(files)-1].from + q.fileSize
	var v recordView
	var bad error
	buf := make([]byte, scanChunk)
	// A record whose CRC holds but whose trailing fields look torn is a
	// suspect: a torn tail if nothing valid follows it, a foreign (but
	// intact) record otherwise.
	suspect, suspectTs := int64(-1), int64(0)
	prog := s.startProgress("commitlog recovery", scanStart, to)
	end, serr := scanFiles(q, scanStart, to, buf, func(pos int64, rec []byte) bool {
		prog.at(pos)
		err := parseRecord(rec, &v, true)
		if err == nil && v.physicalOffset != pos {
			err = fmt.Errorf("%w: PHYSICALOFFSET %d at position %d", ErrMalformed, v.physicalOffset, pos)
		}
		if errors.Is(err, errTornShape) && v.physicalOffset == pos {
			// Only the last record can be torn: an earlier suspect
			// followed by this CRC-valid record was intact.
			suspect, suspectTs = pos, lastTs
			lastTs = v.storeTimestamp
			return true
		}
		if err != nil {
			bad = err
			return false
		}
		suspect = -1
		lastTs = v.storeTimestamp
		return true
	})
	if suspect >= 0 {
		end, lastTs = suspect, suspectTs
		if bad == nil {
			bad = errTornShape
		}
	}
	prog.end(end)
	if serr != nil && !errors.Is(serr, ErrCorrupt) {
		return 0, 0, 0, serr
	}
	if bad == nil {
		bad = serr
	}
	if end < to {
		trailing := 0
		for _, f := range files {
			if f.from > end {
				if _, ok := s.firstRecordTimestamp(f); ok {
					trailing++
				}
			}
		}
		fields := []zap.Field{zap.Int64("offset", end), zap.Bool("lastExitOK", lastExitOK), zap.Int("laterFilesWithData", trailing)}
		if bad != nil {
			fields = append(fields, zap.NamedError("reason", bad))
		}
		if synced := s.syncedLaterFiles(files, end); synced > 0 {
			// A later file holds records the checkpoint says were fsynced:
			// the bad record was durable once. Corruption, not a torn tail.
			return 0, 0, 0, fmt.Errorf("%w: invalid record at offset %d (%v) followed by %d file(s) of fsynced records; refusing to truncate",
				ErrCorrupt, end, bad, synced)
		}
		if trailing > 0 {
			s.logger.Warn("commitlog: invalid record before later data (a torn multi-file tail); truncating", fields...)
		} else if bad != nil {
			s.logger.Info("commitlog: truncating torn tail", fields...)
		}
	}
	if err := q.truncateFrom(end); err != nil {
		return 0, 0, 0, err
	}
	if lastTs == 0 {
		lastTs = s.ckpt.physicMsgTimestamp
	}
	return scanStart, end, lastTs, nil
}

// syncedLaterFiles counts files after end whose first record is valid and
// not newer than the checkpoint's physicMsgTimestamp (so it was fsynced).
func (s *MessageStore) syncedLaterFiles(files []*mappedFile, end int64) int {
	n := 0
	for _, f := range files {
		if f.from <= end {
			continue
		}
		buf := make([]byte, 64*1024)
		got, _ := f.readAt(buf, 0)
		var v recordView
		if got < 8 {
			continue
		}
		size := int(be32(buf))
		if size > got {
			continue
		}
		if parseRecord(buf[:got], &v, true) == nil && v.physicalOffset == f.from && v.storeTimestamp <= s.ckpt.physicMsgTimestamp {
			n++
		}
	}
	return n
}

// firstRecordTimestamp reads the STORETIMESTAMP of a file's first record.
func (s *MessageStore) firstRecordTimestamp(f *mappedFile) (int64, bool) {
	if ts := f.firstStoreTimestamp.Load(); ts > 0 {
		return ts, true
	}
	var h [80]byte
	if _, err := f.readAt(h[:], 0); err != nil {
		return 0, false
	}
	ts, ok := recordStoreTimestamp(h[:])
	if ok {
		f.firstStoreTimestamp.Store(ts)
	}
	return ts, ok
}

// recordStoreTimestamp reads STORETIMESTAMP from a record header (>= 76 bytes).
func recordStoreTimestamp(h []byte) (int64, bool) {
	magic := int32(be32(h[posMagic:]))
	if magic != MessageMagicCodeV1 && magic != MessageMagicCodeV2 {
		return 0, false
	}
	return int64(be64(h[storeTimestampPos(int32(be32(h[posSysFlag:]))):])), true
}

func storeTimestampPos(sysFlag int32) int {
	if sysFlag&BornHostV6Flag != 0 {
		return posBornHost + 20
	}
	return posBornHost + 8
}

// Start launches the dispatcher, flush, retention and statistics goroutines.
func (s *MessageStore) Start() error {
	if !s.state.CompareAndSwap(0, 1) {
		return ErrClosed
	}
	s.classic.start()
	s.wg.Add(4)
	go s.runDispatcher()
	go s.runLogicFlusher()
	go s.runCleaner()
	go s.runStats()
	if s.repl != nil {
		s.wg.Add(4)
		go s.runReplica()
		go s.runRoleEvents()
		go s.runAppender()
		go s.runCompleter()
	}
	return nil
}

// Shutdown stops the services, lets the dispatcher catch up, flushes
// everything, writes the checkpoint and removes the abort file.
func (s *MessageStore) Shutdown() error {
	prev := s.state.Swap(2)
	if prev == 2 {
		return ErrClosed
	}
	if prev == 1 {
		close(s.stopCh)
		s.wg.Wait()
	}
	s.putState.Lock() // no put is in the middle of append
	s.putState.Unlock()
	err := s.cl.flush()
	if derr := s.dispatchUntil(s.cl.confirmOffset(), nil); err == nil {
		err = derr
	}
	if ferr := s.flushLogics(); err == nil {
		err = ferr
	}
	s.closeFiles()
	if err == nil {
		if rerr := s.cfg.FS.Remove(s.abortPath()); rerr == nil {
			err = s.cfg.FS.SyncDir(s.cfg.RootDir)
		}
	}
	return err
}

func (s *MessageStore) closeFiles() {
	if s.cl != nil {
		s.cl.close()
	}
	for _, cq := range s.allQueues() {
		cq.files.close()
	}
	if s.index != nil {
		s.index.close()
	}
	if s.ckpt != nil {
		s.ckpt.file.Close()
	}
	if s.lock != nil {
		s.lock.Close()
	}
}

func (s *MessageStore) running() bool { return s.state.Load() != 2 }

// allQueues lists every consume queue.
func (s *MessageStore) allQueues() []*consumeQueue {
	s.cqMu.RLock()
	defer s.cqMu.RUnlock()
	var out []*consumeQueue
	for _, m := range s.cqTable {
		for _, cq := range m {
			out = append(out, cq)
		}
	}
	return out
}

func (s *MessageStore) findConsumeQueue(topic string, queueID int32) *consumeQueue {
	s.cqMu.RLock()
	cq := s.cqTable[topic][queueID]
	s.cqMu.RUnlock()
	return cq
}

// findOrCreateConsumeQueue is called by the dispatcher with topic bytes;
// the lookup does not allocate.
func (s *MessageStore) findOrCreateConsumeQueue(topic []byte, queueID int32) *consumeQueue {
	s.cqMu.RLock()
	cq := s.cqTable[string(topic)][queueID]
	s.cqMu.RUnlock()
	if cq != nil {
		return cq
	}
	s.cqMu.Lock()
	defer s.cqMu.Unlock()
	t := string(topic)
	if s.cqTable[t] == nil {
		s.cqTable[t] = map[int32]*consumeQueue{}
	}
	if cq = s.cqTable[t][queueID]; cq == nil {
		cq = newConsumeQueue(s, t, queueID)
		s.cqTable[t][queueID] = cq
	}
	return cq
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
func be64(b []byte) uint64 { return uint64(be32(b))<<32 | uint64(be32(b[4:])) }
