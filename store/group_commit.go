package store

import (
	"context"
	"sync"
	"time"
)

// Group commit in DLedger mode (issue 8). Concurrent puts do not each
// propose to the replicated log: they join the open batch, and the
// appender goroutine proposes it as one Append (one proposal, one future
// and one commit wake-up on the Raft node's goroutine, which is the serial
// stage of the send path, instead of one per message). While an Append is
// being handed over, new puts fill the next batch, so the batch grows with
// the load without any waiting. The completer goroutine waits for the
// batches' commits in log order and wakes each batch's puts with one close.
//
// When nothing is in flight (no batch queued, proposed or awaiting its
// commit), a put proposes itself and waits for its own commit: a lone
// producer does not pay the two extra hand-offs (appender, completer).
//
// Queue offsets are still assigned by the append hook in log order (the
// batch hook hands each entry to its put's hook), so per-queue order and
// density are what they were; a put is still answered only after its
// batch committed.

// maxBatchEntries and maxBatchBytes bound one Append.
const (
	maxBatchEntries = 1024
	maxBatchBytes   = 4 << 20
)

type appendBatch struct {
	q *appendQueue
	// ops are the puts' append hooks and results, by value: a put finds
	// its own by index once the batch is done (one allocation less per
	// batched put than a *replicatedPut each, issue 8). Written by join
	// until the appender takes the batch, then by the batch hook.
	ops    []replicatedPut
	bodies [][]byte
	bytes  int
	// proposed is done after the Append returned (ra or perr set, every
	// hook run); done after the commit (err set) or a failure. WaitGroups,
	// not channels: a channel was an allocation per batch.
	proposed sync.WaitGroup
	done     sync.WaitGroup
	ra       ReplicatedAppend
	deadline time.Time // the completer fails the batch with errCommitTimeout then
	perr     error     // the Append's error (set before proposed is done)
	err      error     // the outcome (set before done closes)
	// the batch hook's cursor: entry j of ops[cur]
	cur, j int
	// callbacks counts the ops of asynchronous puts (PutMessageAsync).
	callbacks int
	// ops and bodies start in these: a batch usually holds a few puts
	// (two at 64 producers), and two slice allocations per batch were a
	// third of join's allocations (issue 8).
	opsArr    [4]replicatedPut
	bodiesArr [4][]byte
}

func (bt *appendBatch) hook(_ int, term int64, pos int64, body []byte) {
	op := &bt.ops[bt.cur]
	op.hook(bt.j, term, pos, body)
	if bt.j++; bt.j == op.n {
		bt.cur, bt.j = bt.cur+1, 0
	}
}

func (bt *appendBatch) fail(err error) {
	bt.perr = err
	bt.proposed.Done()
	bt.complete(err, nil)
}

// complete ends the batch: its synchronous puts wake, and the callbacks of
// its asynchronous ones run here, in batch order. What they leave for after
// them goes to after, or runs at once when after is nil.
func (bt *appendBatch) complete(err error, after *AfterPuts) {
	bt.err = err
	bt.q.release()
	bt.done.Done()
	if bt.callbacks == 0 {
		return
	}
	var own AfterPuts
	if after == nil {
		after = &own
		defer own.run()
	}
	waitErr, outcome := bt.outcome()
	for i := range bt.ops {
		if op := &bt.ops[i]; op.cb != nil {
			op.cb.PutDone(op.s.replicatedResult(op, bt.perr, waitErr, outcome), after)
		}
	}
}

// outcome splits the batch's error into a wait that ended before the
// commit was known (the entries may still commit) and a known outcome.
func (bt *appendBatch) outcome() (waitErr, outcome error) {
	if bt.err == errCommitTimeout {
		return bt.err, nil
	}
	return nil, bt.err
}

// doneChan returns a channel closed once the batch is done, for a put that
// must also select on its context (a goroutine per call: rare, as the
// broker's puts are not cancelable in DLedger mode).
func (bt *appendBatch) doneChan() <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		bt.done.Wait()
		close(ch)
	}()
	return ch
}

// appendQueue is the batches waiting for the appender, then for their
// commit (owned by the appender and the completer; mu guards the hand-over).
type appendQueue struct {
	mu       sync.Mutex
	queue    []*appendBatch // waiting for the appender; the last one is open
	closed   bool
	lastLen  int               // entries of the last batch taken
	inflight int               // batches and direct puts not completed yet
	wake     chan struct{}     // appender: the queue is not empty
	proposd  chan *appendBatch // appender (and direct async puts) -> completer
	handing  sync.WaitGroup    // handOver calls sending on proposd
}

func newAppendQueue() *appendQueue {
	return &appendQueue{wake: make(chan struct{}, 1), proposd: make(chan *appendBatch, 4096)}
}

// join adds a copy of op and its records (data, op.n of them) to the open
// batch and returns the batch (a new batch is given up on after timeout)
// and the index of the copy in its ops; direct (no batch) when nothing is
// in flight, then the caller proposes itself and calls release once it is
// done waiting; nil and not direct once the store stopped.
func (q *appendQueue) join(op *replicatedPut, data []byte, timeout time.Duration) (_ *appendBatch, idx int, direct bool) {
	size := len(data)
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil, 0, false
	}
	if q.inflight == 0 && len(q.queue) == 0 {
		q.inflight++
		q.mu.Unlock()
		return nil, 0, true
	}
	var bt *appendBatch
	if k := len(q.queue); k > 0 {
		bt = q.queue[k-1]
		if len(bt.bodies)+op.n > maxBatchEntries || bt.bytes+size > maxBatchBytes {
			bt = nil
		}
	}
	if bt == nil {
		bt = q.newBatch(timeout)
		// Sized like the last batch: no regrowth while it fills.
		if c := min(q.lastLen, maxBatchEntries); c > len(bt.opsArr) {
			bt.ops, bt.bodies = make([]replicatedPut, 0, c), make([][]byte, 0, c)
		}
		q.queue = append(q.queue, bt)
		q.inflight++
	}
	idx = len(bt.ops)
	bt.ops = append(bt.ops, *op)
	if op.cb != nil {
		bt.callbacks++
	}
	bt.bodies = appendRecords(bt.bodies, data)
	bt.bytes += size
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return bt, idx, false
}

// newBatch returns an empty batch that gives up waiting for its commit
// after timeout.
func (q *appendQueue) newBatch(timeout time.Duration) *appendBatch {
	bt := &appendBatch{q: q, deadline: time.Now().Add(timeout)}
	bt.proposed.Add(1)
	bt.done.Add(1)
	bt.ops, bt.bodies = bt.opsArr[:0], bt.bodiesArr[:0]
	return bt
}

// handOver gives the completer an asynchronous direct put's batch, already
// proposed (the appender hands over the others). It is false once the
// store stopped: then the caller completes the batch itself.
func (q *appendQueue) handOver(bt *appendBatch) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	q.handing.Add(1) // the appender closes proposd only after Wait
	q.mu.Unlock()
	q.proposd <- bt
	q.handing.Done()
	return true
}

// appendRecords appends the records of data as bodies (the log keeps them:
// data is never reused).
func appendRecords(bodies [][]byte, data []byte) [][]byte {
	for p := 0; p < len(data); {
		rec := int(be32(data[p:]))
		bodies = append(bodies, data[p:p+rec:p+rec])
		p += rec
	}
	return bodies
}

// release ends a direct put or a batch.
func (q *appendQueue) release() {
	q.mu.Lock()
	q.inflight--
	q.mu.Unlock()
}

// take removes the oldest batch (nil when none).
func (q *appendQueue) take() *appendBatch {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.queue) == 0 {
		return nil
	}
	bt := q.queue[0]
	q.queue[0] = nil
	q.queue = q.queue[1:]
	q.lastLen = len(bt.bodies)
	return bt
}

// runAppender proposes the queued batches, oldest first.
func (s *MessageStore) runAppender() {
	defer s.wg.Done()
	q := s.repl.appends
	defer close(q.proposd) // the completer fails what is left
	// One hook for every batch (Append calls it on this goroutine): a
	// method value per batch was an allocation per Append.
	var cur *appendBatch
	hook := func(i int, term int64, pos int64, body []byte) { cur.hook(i, term, pos, body) }
	for {
		select {
		case <-q.wake:
		case <-s.stopCh:
			q.mu.Lock()
			q.closed = true
			left := q.queue
			q.queue = nil
			q.mu.Unlock()
			for _, bt := range left {
				bt.fail(ErrClosed)
			}
			q.handing.Wait() // then proposd may close
			return
		}
		for bt := q.take(); bt != nil; bt = q.take() {
			// Not cancelable: once queued, the proposal may be appended
			// (and its hooks run), so its outcome must be waited for.
			cur = bt
			ra, err := s.repl.log.Append(context.Background(), bt.bodies, hook)
			cur = nil
			if err != nil {
				bt.fail(err)
				continue
			}
			bt.ra = ra
			bt.proposed.Done()
			q.proposd <- bt
		}
	}
}

// runCompleter wakes each batch's puts when its Append completes, in log
// order (the log completes them in that order), or with errCommitTimeout
// at the batch's deadline (its entries may still commit; later batches
// keep their own deadlines). On stop, batches still waiting fail with
// ErrClosed: their outcome is unknown, as after a timeout, and they are
// not acknowledged. The asynchronous puts' callbacks leave their flushes
// (one write per connection for the answers) until the completer is about
// to wait: the answers of every batch one commit completed leave together
// (one write per batch was a fifth of the leader's CPU at 64 producers,
// where a batch holds about two sends).
func (s *MessageStore) runCompleter() {
	defer s.wg.Done()
	q := s.repl.appends
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	var after AfterPuts
	defer after.run()
	stopped := false
	for {
		var bt *appendBatch
		var ok bool
		select {
		case bt, ok = <-q.proposd:
		default:
			after.run()
			bt, ok = <-q.proposd
		}
		if !ok {
			return
		}
		if stopped {
			bt.complete(ErrClosed, &after)
			continue
		}
		select {
		case <-bt.ra.Done():
			bt.complete(bt.ra.Err(), &after)
			continue
		default:
		}
		after.run()
		t.Reset(time.Until(bt.deadline))
		select {
		case <-bt.ra.Done():
			bt.complete(bt.ra.Err(), &after)
		case <-t.C:
			bt.complete(errCommitTimeout, &after)
		case <-s.stopCh:
			stopped = true
			bt.complete(ErrClosed, &after)
		}
	}
}
