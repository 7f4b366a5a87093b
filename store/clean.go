package store

import (
	"context"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Retention (RocketMQ CleanCommitLogService / CleanConsumeQueueService).
// Every CleanResourceInterval: when the hour is one of DeleteWhen, or the
// disk holding the commitlog is fuller than DiskMaxUsedSpaceRatio, remove
// commitlog files older than FileReservedTime hours (a file's age is that of
// the next file's first record, i.e. of its own last record); above
// DiskForceCleanRatio remove the oldest files regardless of age. Never the
// last file, never a file not yet flushed and dispatched. Then consume-queue
// and index files wholly below the new minimum offset go too.
//
// DLedger mode: the classic files below an upgrade's divide age out as
// above, the last one included (aged by its own last record); then the replicated log's data files by the same rules (the age
// of a data file is that of the first record of the next one), if the log
// supports it (ReplicatedLogRetention). The log clamps the request: it
// keeps uncommitted entries and, on the leader, entries a follower has not
// stored yet unless the disk is past DiskForceCleanRatio, so retention
// never strands a lagging follower that can still catch up.

func (s *MessageStore) runCleaner() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.CleanResourceInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopCh:
			return
		case <-t.C:
			s.clean(false)
		}
	}
}

// DeleteExpiredFiles runs retention now, whatever the hour (mqadmin
// deleteExpiredCommitLog), and returns the number of commitlog files removed.
func (s *MessageStore) DeleteExpiredFiles() int { return s.clean(true) }

func isDeleteHour(now time.Time, when string) bool {
	for _, h := range strings.Split(when, ";") {
		if n, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && n == now.Hour() {
			return true
		}
	}
	return false
}

func (s *MessageStore) clean(manual bool) int {
	now := s.cfg.Now()
	ratio := s.cfg.DiskUsedRatio(s.cfg.CommitLogDir) * 100
	spaceFull := ratio >= float64(s.cfg.DiskMaxUsedSpaceRatio)
	force := ratio >= float64(s.cfg.DiskForceCleanRatio)
	removed := 0
	if manual || spaceFull || isDeleteHour(now, s.cfg.DeleteWhen) {
		removed = s.cleanCommitLog(now, force)
		if s.repl != nil {
			removed += s.cleanReplicatedLog(now, force)
		}
	}
	minPhy := s.cl.minOffset()
	cqFiles := 0
	for _, cq := range s.allQueues() {
		cqFiles += cq.deleteExpired(minPhy)
	}
	idxFiles := 0
	if s.index != nil {
		idxFiles = s.index.deleteExpired(minPhy)
	}
	if removed+cqFiles+idxFiles > 0 {
		s.logger.Info("retention removed files", zap.Int("commitlog", removed), zap.Int("consumequeue", cqFiles),
			zap.Int("index", idxFiles), zap.Int64("minPhyOffset", minPhy), zap.Float64("diskRatio", ratio), zap.Bool("force", force))
	}
	return removed
}

func (s *MessageStore) cleanCommitLog(now time.Time, force bool) int {
	q := s.classic.files
	files := q.snapshot()
	safe := min(s.dispatched.Load(), s.cl.flushedOffset())
	reserved := int64(s.cfg.FileReservedTime) * int64(time.Hour/time.Millisecond)
	// In DLedger mode these are the classic files below an upgrade's
	// divide, never written again: the last one goes too (as in Java's
	// DLedgerCommitLog), aged by its last record.
	last := len(files) - 1
	if s.repl != nil {
		last = len(files)
	}
	n := 0
	for i := 0; i < last && n < s.cfg.DeleteFilesBatchMax; i++ {
		f := files[i]
		if f.from+f.size > safe {
			break
		}
		var ts int64
		var ok bool
		if i+1 < len(files) {
			ts, ok = s.firstRecordTimestamp(files[i+1])
		} else {
			ts, ok = s.lastRecordTimestamp(f)
		}
		expired := ok && ts+reserved < now.UnixMilli()
		if !expired && !force {
			break
		}
		n++
	}
	if n == 0 {
		return 0
	}
	if _, err := q.removeFiles(n); err != nil {
		s.logger.Warn("retention: remove commitlog files", zap.Error(err))
	}
	return n
}

// ReplicatedLogRetention is implemented by a ReplicatedLog whose oldest
// data files can be removed.
type ReplicatedLogRetention interface {
	// DataFileStarts lists the position of every data file's first byte,
	// oldest first.
	DataFileStarts() []int64
	// DeleteBefore removes the oldest data files that lie wholly below pos
	// (the start of a data file). The log may remove less than asked (see
	// the retention comment above); heldBy then names the follower that
	// still needs the entries, if one does.
	DeleteBefore(ctx context.Context, pos int64, force bool) (files int, heldBy string, err error)
}

func (s *MessageStore) cleanReplicatedLog(now time.Time, force bool) int {
	rr, ok := s.cfg.ReplicatedLog.(ReplicatedLogRetention)
	if !ok {
		return 0
	}
	starts := rr.DataFileStarts()
	safe := s.dispatched.Load() // every record below it is in the consume queues
	if fn := s.retentionFloor.Load(); fn != nil {
		safe = min(safe, (*fn)()) // and its system records in the metadata on disk
	}
	reserved := int64(s.cfg.FileReservedTime) * int64(time.Hour/time.Millisecond)
	keep, n := int64(-1), 0
	for i := 0; i+1 < len(starts) && n < s.cfg.DeleteFilesBatchMax; i++ {
		next := starts[i+1]
		if next > safe {
			break
		}
		ts, ok := s.firstReplicatedTimestamp(next, safe)
		expired := ok && ts+reserved < now.UnixMilli()
		if !expired && !force {
			break
		}
		keep, n = next, n+1
	}
	if keep < 0 {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	files, heldBy, err := rr.DeleteBefore(ctx, keep, force)
	if err != nil {
		s.logger.Warn("retention: remove replicated log files", zap.Int64("before", keep), zap.Error(err))
	}
	if heldBy != "" {
		s.logger.Info("retention of the replicated log held back: a follower has not stored the expired entries yet",
			zap.String("follower", heldBy), zap.Int64("expiredBefore", keep), zap.Int("filesRemoved", files))
	}
	return files
}

// firstReplicatedTimestamp is the store timestamp of the first message
// record at or after the entry position from (below limit).
func (s *MessageStore) firstReplicatedTimestamp(from, limit int64) (ts int64, ok bool) {
	_, err := s.cl.scan(from, limit, func(_ int64, rec []byte) bool {
		ts, ok = recordStoreTimestamp(rec)
		return false
	})
	return ts, ok && err == nil
}

// SetRetentionFloor bounds the retention of the replicated log: files are
// removed only below fn() (the broker gives the position its metadata
// snapshot on disk covers, below which system records are not needed for a
// restart).
func (s *MessageStore) SetRetentionFloor(fn func() int64) { s.retentionFloor.Store(&fn) }

// lastRecordTimestamp is the store time of the last record of f, a sealed
// classic file (scanned once, then cached).
func (s *MessageStore) lastRecordTimestamp(f *mappedFile) (int64, bool) {
	if ts := f.lastStoreTimestamp.Load(); ts > 0 {
		return ts, true
	}
	var ts int64
	if _, err := s.classic.scan(f.from, f.from+f.size, func(_ int64, rec []byte) bool {
		if t, ok := recordStoreTimestamp(rec); ok {
			ts = t
		}
		return true
	}); err != nil || ts <= 0 {
		return 0, false
	}
	f.lastStoreTimestamp.Store(ts)
	return ts, true
}
