package store

import (
	"context"
	"errors"
	"strconv"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
)

// The dispatcher (RocketMQ's ReputMessageService) follows the commitlog up
// to confirmOffset and, per record, appends a consume-queue unit (unless it
// is a PREPARED or ROLLBACK transaction record) and index entries (KEYS
// words and UNIQ_KEY), then tells the arriving listener. Work is done in
// rounds of up to dispatchRoundBytes: units of one queue are written with
// one WriteAt per round, index entries likewise, and dispatched advances
// only after they are written.

const dispatchRoundBytes = 4 << 20

// dispatchCoalesce is the minimum spacing of dispatch rounds under load
// (RocketMQ's ReputMessageService sleeps 1 ms between rounds).
const dispatchCoalesce = time.Millisecond

// followerDispatchCoalesce is that spacing on a DLedger replica that is
// not the writable leader. Every round costs a WriteAt per touched queue
// and one for the index (at 25k msgs/s, 3 replicas, 8 queues: 0.6 of the
// group's 1.6 pwrite calls per message, issue 8); consumers read from the
// leader, so a follower's queues only need to keep up: slave reads see
// messages at most this much later, and a follower taking over waits for
// its dispatch to reach the committed position anyway.
const followerDispatchCoalesce = 10 * time.Millisecond

// dispatchSpacing is the minimum spacing of dispatch rounds under load.
func (s *MessageStore) dispatchSpacing() time.Duration {
	if s.repl != nil && !s.repl.writable() {
		return followerDispatchCoalesce
	}
	return dispatchCoalesce
}

// dispatcher is the dispatcher goroutine's state (also used by Open and
// Shutdown, which dispatch synchronously before/after it runs).
type dispatcher struct {
	s        *MessageStore
	fn       func(pos int64, rec []byte) bool
	view     recordView
	round    uint64
	touched  []*consumeQueue
	idx      []indexReq
	arrivals []arrival
	lastTs   int64
	err      error
	// indexResume: records below it are already indexed.
	indexResume int64
	props       dispatchProps // the record's, reused
}

type indexReq struct {
	hash    int32
	phy     int64
	storeTs int64
}

type arrival struct {
	cq       *consumeQueue
	offset   int64
	tagsCode int64
	storeTs  int64
}

func (s *MessageStore) wakeDispatcher() {
	select {
	case s.dispatchCh <- struct{}{}:
	default:
	}
}

func (s *MessageStore) runDispatcher() {
	defer s.wg.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	var lastRound time.Time
	for {
		// d.touched is non-empty when a consume-queue write failed: retry it.
		for s.dispatched.Load() < s.cl.confirmOffset() || len(s.disp.touched) > 0 {
			lastRound = time.Now()
			if err := s.dispatchRoundLocked(); err != nil {
				s.logger.Error("dispatch failed", zap.Int64("offset", s.dispatched.Load()), zap.Error(err))
				break
			}
		}
		select {
		case <-s.stopCh:
			return
		case <-s.dispatchCh:
			// Under load, gather for up to dispatchSpacing after the previous
			// round so one round (one WriteAt per queue) covers many
			// messages; when idle, dispatch at once (long-polling latency).
			if wait := s.dispatchSpacing() - time.Since(lastRound); wait > 0 {
				time.Sleep(wait)
			}
		case <-t.C:
		}
	}
}

// dispatchUntil dispatches synchronously up to end, reporting to prog
// (nil: silent).
func (s *MessageStore) dispatchUntil(end int64, prog *progressLog) error {
	for s.dispatched.Load() < end {
		prog.at(s.dispatched.Load())
		before := s.dispatched.Load()
		if err := s.dispatchRoundLocked(); err != nil {
			return err
		}
		if s.dispatched.Load() == before {
			return errors.New("store: dispatch makes no progress")
		}
	}
	prog.end(s.dispatched.Load())
	return nil
}

func (s *MessageStore) dispatchRoundLocked() error {
	s.dispatchMu.Lock()
	defer s.dispatchMu.Unlock()
	return s.dispatchRound()
}

func (s *MessageStore) dispatchRound() error {
	d := &s.disp
	if d.fn == nil {
		d.s = s
		d.fn = d.handle
		d.indexResume = -1
		if s.index != nil {
			d.indexResume = s.index.resume
		}
	}
	from := s.dispatched.Load()
	to := min(s.cl.confirmOffset(), from+dispatchRoundBytes)
	if from >= to && len(d.touched) == 0 {
		return nil
	}
	d.round++
	d.err = nil
	next, err := from, error(nil)
	if from < to {
		next, err = s.cl.scan(from, to, d.fn)
		if err == nil {
			err = d.err
		}
	}
	// Write what was gathered even on error: it is valid up to next.
	failed := d.touched[:0]
	for _, cq := range d.touched {
		if werr := cq.flushPending(); werr != nil {
			if err == nil {
				err = werr
			}
			failed = append(failed, cq) // its units stay queued; retried next round
		}
	}
	d.touched = failed
	if s.index != nil && len(d.idx) > 0 {
		s.index.mu.Lock()
		for _, r := range d.idx {
			if ierr := s.index.put(r.hash, r.phy, r.storeTs); ierr != nil && err == nil {
				err = ierr
				break
			}
		}
		if werr := s.index.writePending(); werr != nil && err == nil {
			err = werr
		}
		s.index.mu.Unlock()
		d.idx = d.idx[:0]
	}
	if next > from {
		s.dispatched.Store(next)
		s.dispatchedTs.Store(d.lastTs)
		s.stats.dispatchedMsgs.Add(int64(len(d.arrivals)))
	}
	if l := s.listener.Load(); l != nil {
		for i := range d.arrivals {
			a := &d.arrivals[i]
			if a.cq == nil || a.offset >= a.cq.maxOffset.Load() {
				continue // its unit's write failed; no wake-up for what cannot be read
			}
			(*l)(a.cq.topic, a.cq.queueID, a.offset, a.tagsCode, a.storeTs)
		}
	}
	clear(d.arrivals)
	d.arrivals = d.arrivals[:0]
	s.dispatchDone.Lock()
	close(s.dispatchDone.ch)
	s.dispatchDone.ch = make(chan struct{})
	s.dispatchDone.Unlock()
	return err
}

// handle dispatches one record (scan callback).
func (d *dispatcher) handle(pos int64, rec []byte) bool {
	s := d.s
	v := &d.view
	if err := parseRecord(rec, v, false); err != nil {
		d.err = err
		return false
	}
	tx := v.sysFlag & TransactionTypeMask
	if s.sys.handler != nil && string(v.topic) == SystemTopic {
		s.onSystemRecord(pos, v)
	}
	if s.repl != nil && string(v.topic) == UpgradeTopic {
		s.onUpgradeRecord(v.body)
	}
	if s.repl != nil && string(v.topic) == TopicOpsTopic && tx != TransactionRollbackType {
		s.onTopicOpsRecord(pos, v.body)
	}
	pr := &d.props
	pr.scan(v.props)
	tagsCode := tagsHashCodeBytes(pr.val[dpTags])
	if string(v.topic) == ScheduleTopic {
		if pr.has[dpDelay] {
			if level, err := strconv.Atoi(string(pr.val[dpDelay])); err == nil && level > 0 {
				level = min(level, len(s.delayLevels)-1)
				tagsCode = v.storeTimestamp + s.delayLevels[level]
			}
		}
	}
	if tx == TransactionNotType || tx == TransactionCommitType {
		cq := s.findOrCreateConsumeQueue(v.topic, v.queueID)
		if !cq.add(v.queueOffset, pos, v.totalSize, tagsCode) {
			next := cq.pendStart + int64(len(cq.pend))/CQUnitSize
			if v.queueOffset > next {
				s.logger.Error("consume queue hole: unit after a gap", zap.String("topic", cq.topic),
					zap.Int32("queueId", cq.queueID), zap.Int64("expected", next), zap.Int64("queueOffset", v.queueOffset))
				if err := cq.flushPending(); err != nil {
					d.err = err
					return false
				}
				cq.add(v.queueOffset, pos, v.totalSize, tagsCode)
			}
		}
		if cq.touched != d.round {
			cq.touched = d.round
			d.touched = append(d.touched, cq)
		}
		if s.listener.Load() != nil {
			d.arrivals = append(d.arrivals, arrival{cq: cq, offset: v.queueOffset, tagsCode: tagsCode,
				storeTs: v.storeTimestamp})
		} else {
			d.arrivals = append(d.arrivals, arrival{})
		}
	}
	if s.index != nil && tx != TransactionRollbackType && pos >= d.indexResume {
		if uk := pr.val[dpUniq]; len(uk) > 0 {
			d.idx = append(d.idx, indexReq{hash: topicKeyHash(v.topic, uk), phy: pos, storeTs: v.storeTimestamp})
		}
		if keys := pr.val[dpKeys]; pr.has[dpKeys] {
			for len(keys) > 0 {
				i := indexByte(keys, ' ')
				word := keys
				if i >= 0 {
					word, keys = keys[:i], keys[i+1:]
				} else {
					keys = nil
				}
				if len(word) > 0 {
					d.idx = append(d.idx, indexReq{hash: topicKeyHash(v.topic, word), phy: pos, storeTs: v.storeTimestamp})
				}
			}
		}
	}
	d.lastTs = v.storeTimestamp
	return true
}

// topicKeyHash is keyHash(topic + "#" + key) without building the string.
func topicKeyHash(topic, key []byte) int32 {
	h := javaHashAppend(0, topic)
	h = 31*h + '#'
	h = javaHashAppend(h, key)
	if h < 0 {
		h = -h
	}
	if h < 0 {
		h = 0
	}
	return h
}

func javaHashAppend(h int32, b []byte) int32 {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			h = 31*h + int32(c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		i += size
		if r >= 0x10000 {
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
		} else {
			h = 31*h + int32(r)
		}
	}
	return h
}

// waitDispatched blocks until everything below off is dispatched or the
// timeout passes.
func (s *MessageStore) waitDispatched(off int64, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return s.waitDispatchedCtx(ctx, off) == nil
}

// runLogicFlusher fsyncs consume queues and the index every
// FlushConsumeQueueInterval and then writes the checkpoint (RocketMQ
// FlushConsumeQueueService).
func (s *MessageStore) runLogicFlusher() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.FlushConsumeQueueInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopCh:
			return
		case <-t.C:
			if err := s.flushLogics(); err != nil {
				s.logger.Error("consume queue flush failed", zap.Error(err))
			}
		}
	}
}

func (s *MessageStore) flushLogics() error {
	ts := s.dispatchedTs.Load()
	dispatched := s.dispatched.Load() // DLedger mode: where an unclean restart re-dispatches from
	var firstErr error
	for _, cq := range s.allQueues() {
		if err := cq.sync(); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if s.index != nil {
		if err := s.index.sync(); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return firstErr
	}
	s.ckpt.physicMsgTimestamp = s.classic.flushedTs.Load()
	s.ckpt.logicsMsgTimestamp = ts
	s.ckpt.indexMsgTimestamp = ts
	if s.repl != nil {
		s.ckpt.confirmPhyOffset = dispatched
	}
	return s.ckpt.flush()
}
