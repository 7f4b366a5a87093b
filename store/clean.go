package store

import (
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
	n := 0
	for i := 0; i < len(files)-1 && n < s.cfg.DeleteFilesBatchMax; i++ {
		f := files[i]
		if f.from+f.size > safe {
			break
		}
		ts, ok := s.firstRecordTimestamp(files[i+1])
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
