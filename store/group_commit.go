package store

import (
	"context"
	"sync"
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
	ops    []*replicatedPut
	bodies [][]byte
	bytes  int
	// proposed closes after the Append returned (ra or err set, every
	// hook run); done after the commit (err set) or a failure.
	proposed chan struct{}
	done     chan struct{}
	ra       ReplicatedAppend
	perr     error // the Append's error (set before proposed closes)
	err      error // the outcome (set before done closes)
	// the batch hook's cursor: entry j of ops[cur]
	cur, j int
}

func (bt *appendBatch) hook(_ int, term int64, pos int64, body []byte) {
	op := bt.ops[bt.cur]
	op.hook(bt.j, term, pos, body)
	if bt.j++; bt.j == op.n {
		bt.cur, bt.j = bt.cur+1, 0
	}
}

func (bt *appendBatch) fail(err error) {
	bt.perr, bt.err = err, err
	close(bt.proposed)
	close(bt.done)
}

// appendQueue is the batches waiting for the appender, then for their
// commit (owned by the appender and the completer; mu guards the hand-over).
type appendQueue struct {
	mu      sync.Mutex
	queue   []*appendBatch // waiting for the appender; the last one is open
	closed  bool
	lastLen int               // entries of the last batch taken
	wake    chan struct{}     // appender: the queue is not empty
	proposd chan *appendBatch // appender -> completer, in log order
}

func newAppendQueue() *appendQueue {
	return &appendQueue{wake: make(chan struct{}, 1), proposd: make(chan *appendBatch, 4096)}
}

// join adds op and its records (data, op.n of them) to the open batch and
// returns the batch, or nil once the store stopped.
func (q *appendQueue) join(op *replicatedPut, data []byte) *appendBatch {
	size := len(data)
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	var bt *appendBatch
	if k := len(q.queue); k > 0 {
		bt = q.queue[k-1]
		if len(bt.bodies)+op.n > maxBatchEntries || bt.bytes+size > maxBatchBytes {
			bt = nil
		}
	}
	if bt == nil {
		// Sized like the last batch: no regrowth while it fills.
		c := min(max(q.lastLen, 8), maxBatchEntries)
		bt = &appendBatch{proposed: make(chan struct{}), done: make(chan struct{}),
			ops: make([]*replicatedPut, 0, c), bodies: make([][]byte, 0, c)}
		q.queue = append(q.queue, bt)
	}
	bt.ops = append(bt.ops, op)
	// The log keeps the bodies (storage, transport): data is never reused.
	for p := 0; p < len(data); {
		rec := int(be32(data[p:]))
		bt.bodies = append(bt.bodies, data[p:p+rec:p+rec])
		p += rec
	}
	bt.bytes += size
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return bt
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
			return
		}
		for bt := q.take(); bt != nil; bt = q.take() {
			// Not cancelable: once queued, the proposal may be appended
			// (and its hooks run), so its outcome must be waited for.
			ra, err := s.repl.log.Append(context.Background(), bt.bodies, bt.hook)
			if err != nil {
				bt.fail(err)
				continue
			}
			bt.ra = ra
			close(bt.proposed)
			q.proposd <- bt
		}
	}
}

// runCompleter wakes each batch's puts when its Append completes, in log
// order (the log completes them in that order). On stop, batches still
// waiting fail with ErrClosed: their outcome is unknown, as after a
// timeout, and they are not acknowledged.
func (s *MessageStore) runCompleter() {
	defer s.wg.Done()
	q := s.repl.appends
	stopped := false
	for bt := range q.proposd {
		if !stopped {
			select {
			case <-bt.ra.Done():
				bt.err = bt.ra.Err()
				close(bt.done)
				continue
			case <-s.stopCh:
				stopped = true
			}
		}
		bt.err = ErrClosed
		close(bt.done)
	}
}
