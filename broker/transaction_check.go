package broker

import (
	"errors"
	"strconv"
	"time"

	"github.com/rmqd/rmqd/store"
	"go.uber.org/zap"
)

// The transaction check-back service (protocol.md §8.4 step 5), master-only.
//
// Every transactionCheckInterval one round scans half queue 0 from the
// CID_RMQ_SYS_TRANS offset of RMQ_SYS_TRANS_HALF_TOPIC, against the op
// records from that group's offset of RMQ_SYS_TRANS_OP_HALF_TOPIC:
//
//   - a half record named by an op record is done: skipped;
//   - one checked transactionCheckMax times, or older than fileReservedTime,
//     is given up: copied to TRANS_CHECK_MAX_TIME_TOPIC and skipped;
//   - one younger than transactionTimeOut ends the round: records behind
//     it are younger still;
//   - one still within its own CHECK_IMMUNITY_TIME_IN_SECONDS is parked:
//     re-appended with TRAN_PREPARED_QUEUE_OFFSET = the original's queue
//     offset (the offset the producer's own END_TRANSACTION names), and a
//     parked copy whose original has an op record is done;
//   - any other is re-appended to the half queue with
//     TRANSACTION_CHECK_TIMES + 1 and CHECK_TRANSACTION_STATE is sent to a
//     producer of its group for the re-appended copy; the producer's
//     answer commits or rolls back that copy. A copy is checked again only
//     once it is itself transactionTimeOut old (the producer's time to
//     answer).
//
// Records stored after the round started (the copies it appends) wait for
// the next round. Afterwards the half offset moves past what was
// handled and the op offset past op records that only name handled half
// records.

// Bounds of one check round.
const (
	transCheckBatch     = 32
	transCheckMaxOps    = 100000 // op records read per round
	transCheckMaxRecord = 100000 // half records looked at per round
)

// Start begins the periodic check (a no-op when running).
func (t *transactionService) Start() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.stopCh != nil {
		return
	}
	t.mu.stopCh = make(chan struct{})
	t.mu.doneCh = make(chan struct{})
	go t.run(t.mu.stopCh, t.mu.doneCh)
}

// Stop ends the check loop and waits for a running round to finish.
func (t *transactionService) Stop() {
	t.mu.Lock()
	stopCh, doneCh := t.mu.stopCh, t.mu.doneCh
	t.mu.stopCh, t.mu.doneCh = nil, nil
	t.mu.Unlock()
	if stopCh == nil {
		return
	}
	close(stopCh)
	<-doneCh
}

func (t *transactionService) run(stopCh, doneCh chan struct{}) {
	defer close(doneCh)
	ticker := time.NewTicker(t.cfg.interval)
	defer ticker.Stop()
	for {
		select {
		case <-stopCh:
			return
		case <-ticker.C:
		}
		t.checkOnce(stopCh)
	}
}

// opIndex is what one check round knows of the op queue.
type opIndex struct {
	done    map[int64]bool // half queue offsets (from the scan start on) that have an op record
	all     map[int64]bool // every half queue offset named by the op records read
	records []opRecord     // in op queue order
	next    int64          // op queue offset after the last record read
}

type opRecord struct {
	queueOffset int64
	halfOffsets []int64
}

// readOps reads op records of queue qid from offset; offsets of half
// records below halfFrom are of no interest.
func (t *transactionService) readOps(qid int32, from, halfFrom int64) opIndex {
	idx := opIndex{done: map[int64]bool{}, all: map[int64]bool{}, next: from}
	for len(idx.records) < transCheckMaxOps {
		units, err := t.store.GetConsumeQueueUnits(transOpHalfTopic, qid, idx.next, transCheckBatch)
		if err != nil || len(units) == 0 || units[len(units)-1].QueueOffset < idx.next {
			return idx
		}
		for _, u := range units {
			if u.QueueOffset < idx.next {
				continue
			}
			rec := opRecord{queueOffset: u.QueueOffset}
			ext, err := t.store.LookMessageByOffset(u.CommitLogOffset)
			if err == nil && ext.Property(propTags) == transOpRemoveTag {
				rec.halfOffsets = parseOpBody(ext.Body)
			} else if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrMalformed) {
				return idx // transient: stop before it, read it again next round
			}
			for _, o := range rec.halfOffsets {
				idx.all[o] = true
				if o >= halfFrom {
					idx.done[o] = true
				}
			}
			idx.records = append(idx.records, rec)
			idx.next = u.QueueOffset + 1
		}
	}
	return idx
}

// opProgress is the op queue offset after the round: past every leading op
// record that names only half records below halfNext.
func (idx *opIndex) opProgress(from, halfNext int64) int64 {
	next := from
	for _, r := range idx.records {
		for _, o := range r.halfOffsets {
			if o >= halfNext {
				return next
			}
		}
		next = r.queueOffset + 1
	}
	return next
}

// checkOnce runs one check round over half queue 0.
func (t *transactionService) checkOnce(stopCh <-chan struct{}) {
	const qid = 0
	start := t.cfg.now()
	halfFrom := t.cfg.loadOffset(transHalfTopic, qid)
	if min := t.store.GetMinOffsetInQueue(transHalfTopic, qid); halfFrom < min {
		halfFrom = min
	}
	opFrom := t.cfg.loadOffset(transOpHalfTopic, qid)
	if min := t.store.GetMinOffsetInQueue(transOpHalfTopic, qid); opFrom < min {
		opFrom = min
	}
	halfMax := t.store.GetMaxOffsetInQueue(transHalfTopic, qid)
	if halfFrom >= halfMax {
		return
	}
	ops := t.readOps(qid, opFrom, halfFrom)

	next := halfFrom
	looked := 0
scan:
	for next < halfMax && looked < transCheckMaxRecord {
		units, err := t.store.GetConsumeQueueUnits(transHalfTopic, qid, next, transCheckBatch)
		if err != nil || len(units) == 0 || units[len(units)-1].QueueOffset < next {
			break
		}
		for _, u := range units {
			select {
			case <-stopCh:
				break scan
			default:
			}
			if u.QueueOffset < next {
				continue
			}
			looked++
			if ops.done[u.QueueOffset] {
				next = u.QueueOffset + 1
				continue
			}
			half, err := t.store.LookMessageByOffset(u.CommitLogOffset)
			if err != nil {
				if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrMalformed) {
					next = u.QueueOffset + 1
					continue
				}
				break scan
			}
			if !t.handleHalf(half, start, &ops) {
				break scan
			}
			next = u.QueueOffset + 1
		}
	}
	if next != halfFrom {
		t.cfg.saveOffset(transHalfTopic, qid, next)
	}
	if opNext := ops.opProgress(opFrom, next); opNext != opFrom {
		t.cfg.saveOffset(transOpHalfTopic, qid, opNext)
	}
}

// handleHalf decides about one half record without an op record. It
// returns false when the round must stop at this record.
func (t *transactionService) handleHalf(half *store.MessageExt, start time.Time, ops *opIndex) bool {
	times, _ := strconv.Atoi(half.Property(propTransCheckTimes))
	immunity := half.Property(propCheckImmunityTime)
	prepared, hasPrepared := int64(-1), false
	if v := half.Property(propTransPreparedQOff); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			prepared, hasPrepared = n, true
		}
	}
	if hasPrepared && ops.all[prepared] {
		return true // a copy parked for its immunity time; the original is done
	}
	now := t.cfg.now().UnixMilli()
	action := decideHalf(now-half.BornTimestamp, times, t.cfg.checkMax, t.cfg.timeout, t.cfg.reserved, immunity)
	if action != halfDiscard && half.StoreTimestamp >= start.UnixMilli() {
		return false // appended during this round
	}
	if action == halfCheck && times > 0 && now-half.StoreTimestamp < t.cfg.timeout.Milliseconds() {
		// Checked less than transactionTimeOut ago: give the producer that
		// long to answer before asking again (Java asks every round, which
		// with short intervals can check, and commit, twice). Records behind
		// it were stored later still.
		return false
	}
	switch action {
	case halfWait:
		if immunity == "" {
			return false // records behind it are younger still
		}
		// A record with its own immunity time does not hold the scan up:
		// like Java's checkPrepareQueueOffset, park a copy that remembers
		// the original's queue offset (which the producer's answer names)
		// and move on.
		if !hasPrepared {
			prepared = half.QueueOffset
		}
		return t.reappend(half, propTransPreparedQOff, strconv.FormatInt(prepared, 10)) != nil
	case halfDiscard:
		t.discard(half)
		return true
	}
	extra := []string{propTransCheckTimes, strconv.Itoa(times + 1)}
	if immunity != "" && !hasPrepared {
		extra = append(extra, propTransPreparedQOff, strconv.FormatInt(half.QueueOffset, 10))
	}
	if c := t.reappend(half, extra...); c != nil {
		t.sendCheck(c)
		return true
	}
	return false
}

// reappend appends a copy of half, with the extra properties set, to the
// half queue (extra: name, value pairs) and returns the copy as stored (nil when the put failed).
func (t *transactionService) reappend(half *store.MessageExt, extra ...string) *store.MessageExt {
	renewed := half.Message
	renewed.Properties = half.Properties.With(extra...)
	renewed.ReconsumeTimes = 0
	res := t.put(&renewed)
	if !res.Status.OK() {
		t.cfg.log.Warn("transaction check: re-append of a half message failed", zap.Int64("halfOffset", half.QueueOffset),
			zap.Stringer("status", res.Status), zap.Error(res.Err))
		return nil
	}
	c := &store.MessageExt{
		Message:         renewed,
		QueueOffset:     res.QueueOffset,
		CommitLogOffset: res.WroteOffset,
		StoreTimestamp:  res.StoreTimestamp,
		MsgID:           res.MsgID,
	}
	if c.StoreHost == "" {
		c.StoreHost = half.StoreHost
	}
	return c
}

// discard gives a half record up: it is copied to TRANS_CHECK_MAX_TIME_TOPIC
// for operators and never checked again.
func (t *transactionService) discard(half *store.MessageExt) {
	t.cfg.log.Info("transaction check: half message given up", zap.String("msgId", half.Property(propUniqKey)),
		zap.String("group", half.Property(propProducerGroup)), zap.Int64("halfOffset", half.QueueOffset))
	if !t.cfg.ensureTopic(transCheckMaxTopic, 1) {
		return
	}
	m := half.Message
	m.Topic = transCheckMaxTopic
	m.QueueID = 0
	if res := t.put(&m); !res.Status.OK() {
		t.cfg.log.Warn("transaction check: copy to "+transCheckMaxTopic+" failed", zap.Stringer("status", res.Status))
	}
}
