package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// DLedger mode (issue 5): the replicated put path, the role loop and
// system records. See "The commitlog seam" in doc.go for the whole picture.

// replicaState is the store's state over a ReplicatedLog.
type replicaState struct {
	log ReplicatedLog
	// readyTerm is the term in which this replica is a writable leader (0:
	// not writable). Set by the role loop after the queue-offset table was
	// rebuilt; cleared as soon as the loop sees the Raft role or term move.
	readyTerm atomic.Int64
	listener  atomic.Pointer[func(ReplicaRole)]

	events struct {
		sync.Mutex
		queue []ReplicaRole
		wake  chan struct{}
	}
	appends *appendQueue // group commit (group_commit.go)
}

func newReplicaState(rl ReplicatedLog) *replicaState {
	r := &replicaState{log: rl, appends: newAppendQueue()}
	r.events.wake = make(chan struct{}, 1)
	return r
}

// writable: Raft leader in the term the store became ready in.
func (r *replicaState) writable() bool {
	t := r.readyTerm.Load()
	if t == 0 {
		return false
	}
	role := r.log.Role()
	return role.Leader && role.Term == t
}

func (r *replicaState) storeRole() ReplicaRole {
	role := r.log.Role()
	t := r.readyTerm.Load()
	role.Leader = role.Leader && t != 0 && role.Term == t
	return role
}

// sysState: the system record handler (guarded by dispatchMu).
type sysState struct {
	handler func(pos int64, payload []byte)
	// floor: records below it were dispatched before the handler was set;
	// only ReplaySystemRecordsFrom delivers them.
	floor int64
}

// errCommitTimeout: a put's entry was not committed within
// ReplicationTimeout (answered FLUSH_SLAVE_TIMEOUT when this replica still
// leads a majority).
var errCommitTimeout = errors.New("store: not replicated to a majority in time (may still commit)")

// defaultReplicationTimeout bounds how long a put waits for its commit
// before answering FlushSlaveTimeout (Java DLedger maxWaitAckTimeMs).
const defaultReplicationTimeout = 2500 * time.Millisecond

// recoverReplicated is Open's recovery in DLedger mode. Committed entries
// never change, and consume queues only ever hold committed entries, so a
// unit can only be wrong if this replica's log lost data (power loss in
// async mode, a replaced data directory): units past the log's end, or
// whose record does not match (size, PHYSICALOFFSET, topic, queue, queue
// offset), are truncated. Dispatch resumes at the end of the newest unit
// (after an unclean stop at the last dispatched position the checkpoint
// recorded, if earlier, as queues are written one by one), and catches up
// synchronously to the committed position.
func (s *MessageStore) recoverReplicated(lastExitOK bool) error {
	rl := s.cfg.ReplicatedLog
	divide, err := s.legacyDivide(rl)
	if err != nil {
		return err
	}
	dl := &dledgerLog{rl: rl, legacy: s.classic, divide: divide, fileSize: s.cfg.MappedFileSizeCommitLog, diverged: s.UpgradeError}
	if err := s.loadFingerprint(divide); err != nil {
		return err
	}
	s.cl = dl
	s.repl = newReplicaState(rl)
	begin, end := rl.BeginPos(), rl.EndPos()
	from := begin
	truncated := 0
	for _, cq := range s.allQueues() {
		before := cq.maxOffset.Load()
		if err := s.truncateQueueToLog(cq, end); err != nil {
			return err
		}
		truncated += int(before - cq.maxOffset.Load())
		if divide > 0 {
			cq.correctMinOffset(dl.minOffset())
		} else {
			cq.correctMinOffset(begin + entryHeaderSize)
		}
		from = max(from, cq.maxPhy.Load())
	}
	// The checkpoint's confirmPhyOffset is the dispatched position written
	// after consume queues and the index were fsynced up to it.
	ck := s.ckpt.confirmPhyOffset
	ckOK := ck >= begin && (ck == end || (ck < end && s.isEntryStart(ck)))
	if !lastExitOK && ckOK && ck < from {
		from = ck
	}
	indexEnd := int64(-1)
	if s.cfg.MessageIndexEnable {
		s.index = newIndexService(&s.cfg)
		if err := s.index.load(end); err != nil {
			return err
		}
		indexEnd = s.index.endPhyOffset()
		if e := indexEnd; e >= begin && e < from {
			// e is the last indexed record's offset (or the log end); a run
			// of records without keys leaves it behind, the checkpoint not.
			idx := begin
			switch {
			case s.isEntryStart(e - entryHeaderSize):
				idx = e - entryHeaderSize
			case s.isEntryStart(e):
				idx = e
			}
			if ckOK && ck > idx {
				idx = ck
			}
			from = min(from, idx)
		}
	}
	from = min(max(from, begin), end)
	s.dispatched.Store(from)
	if err := s.dispatchUntil(s.cl.confirmOffset(), s.startProgress(redispatchStep, from, s.cl.confirmOffset())); err != nil {
		return err
	}
	for _, cq := range s.allQueues() {
		s.putState.queueOffsets[queueKey{cq.topic, cq.queueID}] = cq.maxOffset.Load()
	}
	s.checkFingerprintQueue()
	s.logger.Info("store opened over the replicated log", zap.Bool("lastExitOK", lastExitOK),
		zap.Int64("beginPos", begin), zap.Int64("endPos", end), zap.Int64("committedPos", rl.CommittedPos()),
		zap.Int64("redispatchedFrom", from), zap.Int64("checkpointDispatched", ck), zap.Bool("checkpointUsable", ckOK),
		zap.Int64("indexEnd", indexEnd), zap.Int64("dispatched", s.dispatched.Load()),
		zap.Int("unitsTruncated", truncated), zap.Int64("dividedCommitlogOffset", divide), zap.Int("queues", len(s.putState.queueOffsets)))
	return nil
}

// truncateQueueToLog drops units whose record ends past end, then units at
// the tail whose record does not match them.
func (s *MessageStore) truncateQueueToLog(cq *consumeQueue, end int64) error {
	if err := cq.truncateTo(end); err != nil {
		return err
	}
	var v recordView
	for cq.maxOffset.Load() > cq.minOffset.Load() {
		off := cq.maxOffset.Load() - 1
		u, ok := cq.unit(off)
		if !ok || u.Size <= 0 || u.Size == 1<<31-1 {
			return nil
		}
		buf := make([]byte, u.Size)
		_, err := s.cl.readAt(buf, u.CommitLogOffset)
		if err == nil {
			// The log checks its entries (logstore: CRCs, torn tails); here
			// only whether the record is the unit's.
			err = parseRecord(buf, &v, false)
		}
		if err == nil && v.physicalOffset == u.CommitLogOffset && v.queueOffset == off &&
			v.queueID == cq.queueID && string(v.topic) == cq.topic {
			return nil
		}
		s.logger.Warn("consume queue unit does not match the replicated log; truncating",
			zap.String("topic", cq.topic), zap.Int32("queueId", cq.queueID), zap.Int64("queueOffset", off),
			zap.Int64("commitLogOffset", u.CommitLogOffset), zap.Error(err))
		if err := cq.truncateTo(u.CommitLogOffset); err != nil {
			return err
		}
		if cq.maxOffset.Load() > off {
			return fmt.Errorf("store: consume queue %s/%d: cannot truncate at %d", cq.topic, cq.queueID, off)
		}
	}
	return nil
}

// isEntryStart: a DLedger entry header (normal or no-op) sits at pos (its
// pos field names its own position).
func (s *MessageStore) isEntryStart(pos int64) bool {
	var h [32]byte
	if _, err := s.repl.log.ReadAt(h[:], pos); err != nil {
		return false
	}
	magic := int32(be32(h[:]))
	return (magic == 1 || magic == 2) && int64(be64(h[24:])) == pos
}

// putReplicated is the put path in DLedger mode. buf holds the encoded
// records (n of them, one queue). The append hook, which the replicated log
// calls in log order, writes each record's PHYSICALOFFSET (entry position +
// 48), STORETIMESTAMP and queue offset: queue offsets are taken from the
// table in log order, so they are dense and ordered in the log. An entry
// proposed in a term the store is not ready in (leadership lost and won
// again between the check and the append) is turned into a ROLLBACK-type
// record, which gets no unit, and its put answers NotLeader.
func (s *MessageStore) putReplicated(ctx context.Context, buf []byte, n int, consumes bool, key queueKey, start time.Time) PutMessageResult {
	r := s.repl
	put, res, ok := s.newReplicatedPut(buf, n, consumes, key, start)
	if !ok {
		return res
	}
	bt, idx, direct := r.appends.join(&put, put.data, put.timeout)
	var op *replicatedPut // the hook's results, read once the batch or append is done
	var ra ReplicatedAppend
	var done <-chan struct{}
	switch {
	case direct:
		op = new(replicatedPut)
		*op = put
		// Not cancelable: once queued, the proposal may be appended (and
		// its hook run) whatever ctx does, so the outcome must be waited for.
		actx := ctx
		if ctx.Done() != nil {
			actx = context.WithoutCancel(ctx)
		}
		var one [1][]byte
		var err error
		ra, err = r.log.Append(actx, appendRecords(one[:0], put.data), op.hook)
		if err != nil {
			r.appends.release()
			return s.replicatedResult(op, err, nil, nil)
		}
		defer r.appends.release()
		done = ra.Done()
	case bt == nil:
		return s.putFailed(ServiceNotAvailable, ErrClosed)
	case ctx.Done() != nil:
		done = bt.doneChan()
	}
	var waitErr error // nil: done (committed or failed)
	stopped := false
	if !direct && ctx.Done() == nil {
		// The completer bounds a batch's wait by its deadline and by the
		// store's stop, so waiting for the batch alone will do (a select
		// over a timer, the stop channel and done was 4% of the leader's
		// CPU at sync64).
		bt.done.Wait()
	} else {
		t := getTimer(put.timeout)
		defer putTimer(t)
		select {
		case <-done:
		case <-t.C:
			waitErr = errCommitTimeout
		case <-ctx.Done():
			waitErr = fmt.Errorf("store: waiting for replication: %w", ctx.Err())
		case <-s.stopCh:
			stopped = true // outcome unknown, and not acknowledged
		}
	}
	var perr, outcome error
	if !direct {
		// The hooks ran once the Append returned (before, each put waited
		// for its own Append to return as well).
		bt.proposed.Wait()
		op = &bt.ops[idx]
		perr = bt.perr
		if waitErr == nil && !stopped {
			waitErr, outcome = bt.outcome()
		}
	} else if waitErr == nil && !stopped {
		outcome = ra.Err()
	}
	if stopped {
		outcome = ErrClosed
	}
	return s.replicatedResult(op, perr, waitErr, outcome)
}

// putReplicatedAsync is putReplicated for PutMessageAsync: pending, the put
// is answered through cb by whoever completes it (the completer, or the
// appender when the Append fails or the store stops).
func (s *MessageStore) putReplicatedAsync(buf []byte, n int, consumes bool, key queueKey, start time.Time, cb PutCallback) (PutMessageResult, bool) {
	r := s.repl
	put, res, ok := s.newReplicatedPut(buf, n, consumes, key, start)
	if !ok {
		return res, false
	}
	put.cb = cb
	bt, _, direct := r.appends.join(&put, put.data, put.timeout)
	switch {
	case direct:
		// Nothing in flight: propose without the appender's hand-off, and
		// leave the wait for the commit to the completer.
		bt = r.appends.newBatch(put.timeout)
		bt.ops = append(bt.ops, put)
		bt.callbacks = 1
		bt.bodies = appendRecords(bt.bodies, put.data)
		ra, err := r.log.Append(context.Background(), bt.bodies, bt.hook)
		if err != nil {
			r.appends.release()
			return s.replicatedResult(&bt.ops[0], err, nil, nil), false
		}
		bt.ra = ra
		bt.proposed.Done()
		if !r.appends.handOver(bt) {
			bt.complete(ErrClosed, nil) // the store stopped: outcome unknown, not acknowledged
		}
		return PutMessageResult{}, true
	case bt == nil:
		return s.putFailed(ServiceNotAvailable, ErrClosed), false
	}
	return PutMessageResult{}, true
}

// newReplicatedPut checks that the store may write and prepares a put of
// the records in buf; when it may not, ok is false and res the answer.
func (s *MessageStore) newReplicatedPut(buf []byte, n int, consumes bool, key queueKey, start time.Time) (_ replicatedPut, res PutMessageResult, ok bool) {
	r := s.repl
	term := r.readyTerm.Load()
	role := r.log.Role()
	if term == 0 || !role.Leader || role.Term != term {
		return replicatedPut{}, s.putNotLeader(&NotLeaderError{LeaderID: leaderOf(role), Reason: "not the writable leader"}), false
	}
	// The log keeps the bytes (storage, transport): they are never reused.
	data := make([]byte, len(buf))
	copy(data, buf)
	timeout := s.cfg.ReplicationTimeout
	if timeout <= 0 {
		timeout = defaultReplicationTimeout
	}
	return replicatedPut{s: s, consumes: consumes, key: key, n: n, data: data, term: term, start: start, timeout: timeout}, res, true
}

// replicatedResult is a put's answer once its Append failed (perr) or its
// wait ended: waitErr when it was not known committed in time (the entry
// may still commit), else outcome (nil: committed).
func (s *MessageStore) replicatedResult(op *replicatedPut, perr, waitErr, outcome error) PutMessageResult {
	r := s.repl
	if perr != nil {
		if errors.Is(perr, ErrNotLeader) {
			return s.putNotLeader(perr)
		}
		return s.putFailed(ServiceNotAvailable, perr)
	}
	res := PutMessageResult{Status: PutOK, WroteOffset: op.first, QueueOffset: op.qo, WroteBytes: int32(len(op.data)),
		MsgNum: int32(op.n), StoreTimestamp: op.ts, MsgID: s.msgIDs(op.data)}
	if waitErr != nil {
		res.Status, res.Err = FlushSlaveTimeout, waitErr
	} else if outcome != nil {
		if errors.Is(outcome, ErrNotLeader) {
			return s.putNotLeader(outcome)
		}
		return s.putFailed(ServiceNotAvailable, outcome)
	}
	if res.Status == FlushSlaveTimeout && (!r.writable() || r.readyTerm.Load() != op.term || !r.heardFromQuorum(op.timeout)) {
		// Not even "stored on the leader": this replica no longer leads, or
		// has not heard from a majority for as long as the put waited (cut
		// off, about to step down). The peers' contact times come from the
		// node's ticks, so a process frozen by SIGSTOP that resumes with
		// this timer fired before its node noticed the new term can still
		// answer FlushSlaveTimeout; the client has usually given up by then.
		return s.putNotLeader(&NotLeaderError{LeaderID: leaderOf(r.log.Role()), Reason: "not committed and no longer leading a majority"})
	}
	if op.stale {
		return s.putNotLeader(&NotLeaderError{LeaderID: leaderOf(r.log.Role()), Reason: "term changed during the append"})
	}
	s.stats.putDone(op.n, len(op.data), time.Since(op.start))
	return res
}

// replicatedPut is one put: its records, its append hook and what the hook
// records for the answer (the first record's physical offset, its queue
// offset, the store timestamp, whether the entry's term was stale), and the
// callback of an asynchronous put.
type replicatedPut struct {
	s        *MessageStore
	key      queueKey
	data     []byte // the records (the log keeps them)
	cb       PutCallback
	start    time.Time
	timeout  time.Duration
	term     int64 // the ready term the put was accepted in
	first    int64
	qo       int64
	ts       int64
	n        int // records
	consumes bool
	stale    bool
}

func (op *replicatedPut) hook(i int, eterm int64, entryPos int64, body []byte) {
	s := op.s
	be := binary.BigEndian
	phy := entryPos + entryHeaderSize
	be.PutUint64(body[posPhysicalOffset:], uint64(phy))
	sysFlag := int32(be.Uint32(body[posSysFlag:]))
	s.putState.Lock()
	if i == 0 {
		now := s.cfg.Now().UnixMilli()
		op.ts = max(now, s.putState.lastStoreTs)
		s.putState.lastStoreTs = op.ts
		op.first = phy
		op.stale = eterm != s.repl.readyTerm.Load()
		if op.consumes && !op.stale {
			op.qo = s.putState.queueOffsets[op.key]
		}
		if op.key.topic == TopicOpsTopic && !op.stale {
			s.resetQueueOffsetsLocked(body)
		}
	}
	be.PutUint64(body[storeTimestampPos(sysFlag):], uint64(op.ts))
	switch {
	case op.stale:
		be.PutUint32(body[posSysFlag:], uint32(sysFlag&^TransactionTypeMask|TransactionRollbackType))
		be.PutUint64(body[posQueueOffset:], 0)
	case op.consumes:
		be.PutUint64(body[posQueueOffset:], uint64(op.qo+int64(i)))
		s.putState.queueOffsets[op.key] = op.qo + int64(i) + 1
	}
	s.putState.Unlock()
}

// Puts wait for their commit with a pooled timer: one allocation less per
// message (Go 1.23+ timers need no drain before Reset).
var timerPool sync.Pool

func getTimer(d time.Duration) *time.Timer {
	if t, ok := timerPool.Get().(*time.Timer); ok {
		t.Reset(d)
		return t
	}
	return time.NewTimer(d)
}

func putTimer(t *time.Timer) {
	t.Stop()
	timerPool.Put(t)
}

func leaderOf(role ReplicaRole) string { return role.LeaderID }

// heardFromQuorum: the leader heard from enough followers within d to form
// a majority with itself.
func (r *replicaState) heardFromQuorum(d time.Duration) bool {
	st := r.log.Status()
	if st.Role != "LEADER" {
		return false
	}
	recent := 1
	for _, p := range st.Peers {
		if p.LastContact < d {
			recent++
		}
	}
	return 2*recent > len(st.Peers)+1
}

func (s *MessageStore) putNotLeader(err error) PutMessageResult {
	s.stats.putFailed.Add(1)
	res := PutMessageResult{Status: NotLeader, Err: err}
	var nl *NotLeaderError
	if errors.As(err, &nl) {
		res.Leader = nl.LeaderID
	}
	if res.Leader == "" && s.repl != nil {
		res.Leader = s.repl.log.Role().LeaderID
	}
	return res
}

// runReplica is the role loop: it wakes the dispatcher when the committed
// position moves (followers dispatch continuously), makes a new Raft
// leader writable once it is caught up (see SetRoleListener), stops writes
// as soon as the role or term moves, and queues role events.
func (s *MessageStore) runReplica() {
	defer s.wg.Done()
	r := s.repl
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var published ReplicaRole
	havePublished := false
	for {
		watch := r.log.Watch()
		if s.dispatched.Load() < s.cl.confirmOffset() {
			s.wakeDispatcher()
		}
		s.noteNoClassicBelow()
		raw := r.log.Role()
		var dispatchCh chan struct{}
		if t := r.readyTerm.Load(); t != 0 && (!raw.Leader || raw.Term != t) {
			r.readyTerm.Store(0)
		}
		if raw.Leader && r.readyTerm.Load() == 0 {
			if !s.tryBecomeWritable(raw) {
				s.dispatchDone.Lock()
				dispatchCh = s.dispatchDone.ch
				s.dispatchDone.Unlock()
			} else {
				s.proposeFingerprint()
			}
		}
		if cur := r.storeRole(); !havePublished || cur != published {
			published, havePublished = cur, true
			r.enqueue(cur)
			s.logger.Info("replica role", zap.Bool("writableLeader", cur.Leader), zap.Int64("term", cur.Term),
				zap.String("leader", cur.LeaderID), zap.String("self", cur.SelfID))
		}
		select {
		case <-watch:
		case <-dispatchCh:
		case <-tick.C:
		case <-s.stopCh:
			return
		}
	}
}

// tryBecomeWritable makes the Raft leader of raw.Term writable if its whole
// log is committed (the term's no-op included) and dispatched: then it
// rebuilds the queue-offset table from the consume queues
// (recoverTopicQueueTable) and sets readyTerm.
func (s *MessageStore) tryBecomeWritable(raw ReplicaRole) bool {
	r := s.repl
	st := r.log.Status()
	if st.Role != "LEADER" || st.Term != raw.Term || st.CommittedIndex != st.LedgerEndIndex || s.upg.err.Load() != nil {
		return false
	}
	if s.dispatched.Load() < st.CommittedPos {
		s.wakeDispatcher()
		return false
	}
	s.dispatchMu.Lock()
	defer s.dispatchMu.Unlock()
	if len(s.disp.touched) > 0 || s.dispatched.Load() < st.CommittedPos {
		return false // a consume-queue write is being retried
	}
	s.putState.Lock()
	clear(s.putState.queueOffsets)
	for _, cq := range s.allQueues() {
		s.putState.queueOffsets[queueKey{cq.topic, cq.queueID}] = cq.maxOffset.Load()
	}
	s.putState.Unlock()
	if now := r.log.Role(); !now.Leader || now.Term != raw.Term {
		return false
	}
	r.readyTerm.Store(raw.Term)
	return true
}

func (r *replicaState) enqueue(role ReplicaRole) {
	r.events.Lock()
	r.events.queue = append(r.events.queue, role)
	r.events.Unlock()
	select {
	case r.events.wake <- struct{}{}:
	default:
	}
}

// runRoleEvents calls the role listener in order, off the role loop.
func (s *MessageStore) runRoleEvents() {
	defer s.wg.Done()
	r := s.repl
	for {
		select {
		case <-r.events.wake:
		case <-s.stopCh:
			return
		}
		for {
			r.events.Lock()
			if len(r.events.queue) == 0 {
				r.events.Unlock()
				break
			}
			ev := r.events.queue[0]
			r.events.queue = r.events.queue[1:]
			r.events.Unlock()
			if fn := r.listener.Load(); fn != nil {
				(*fn)(ev)
			}
		}
	}
}

// onSystemRecord is called by the dispatcher (under dispatchMu) for a
// committed record on SystemTopic.
func (s *MessageStore) onSystemRecord(pos int64, v *recordView) {
	if s.sys.handler == nil || pos < s.sys.floor || v.sysFlag&TransactionTypeMask != TransactionNotType {
		return
	}
	s.sys.handler(pos, v.body)
}

// replaySystemLocked delivers system records with from <= offset < below
// from the system topic's consume queue (caller holds dispatchMu).
func (s *MessageStore) replaySystemLocked(from, below int64, fn func(int64, []byte)) (int, error) {
	cq := s.findConsumeQueue(SystemTopic, 0)
	if cq == nil {
		return 0, nil
	}
	lo, hi := cq.minOffset.Load(), cq.maxOffset.Load()
	// First unit at or after from (units are in commitlog order).
	i := sort.Search(int(hi-lo), func(k int) bool {
		u, ok := cq.unit(lo + int64(k))
		return !ok || u.CommitLogOffset >= from
	})
	n := 0
	var v recordView
	for off := lo + int64(i); off < hi; off++ {
		u, ok := cq.unit(off)
		if !ok {
			return n, fmt.Errorf("store: system queue unit %d unreadable", off)
		}
		if u.CommitLogOffset >= below {
			break
		}
		if u.Size <= 0 || u.Size == 1<<31-1 || u.CommitLogOffset < from {
			continue
		}
		buf := make([]byte, u.Size)
		if _, err := s.cl.readAt(buf, u.CommitLogOffset); err != nil {
			return n, fmt.Errorf("store: system record at %d: %w", u.CommitLogOffset, err)
		}
		if err := parseRecord(buf, &v, false); err != nil {
			return n, fmt.Errorf("store: system record at %d: %w", u.CommitLogOffset, err)
		}
		fn(u.CommitLogOffset, v.body)
		n++
	}
	return n, nil
}
