package remoting

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// opaqueSeq numbers every request this process sends (client and server
// connections alike), as the Go client does.
var opaqueSeq atomic.Int32

func nextOpaque() int32 { return opaqueSeq.Add(1) }

// result is what a pending call ends with, or (lead set) the news that
// its waiter now holds the client connection's read duty.
type result struct {
	resp *RemotingCommand
	err  error
	lead bool
}

// call is one request waiting for its response: either a synchronous
// waiter (done) or an asynchronous callback (cb).
type call struct {
	done  chan result // sync: buffered 2 (at most one lead and one result)
	cb    func(*RemotingCommand, error)
	timer *time.Timer     // sync, server side: a pooled, stopped timer
	cmd   RemotingCommand // the copy of the request being sent
	// deadline is the monoNow() after which a client's call times out
	// (0: never): the watcher's scan finds it (see expire), so neither
	// kind of call needs a timer of its own.
	deadline time.Duration
}

// finish completes a call its caller took out of the table, so that
// nobody else can: it hands the result to the waiter, or runs the callback
// on the calling goroutine — for a response, the one reading the
// connection.
func (c *call) finish(resp *RemotingCommand, err error) {
	if c.cb != nil {
		c.cb(resp, err)
		return
	}
	c.done <- result{resp: resp, err: err}
}

// fail completes a call with an error: a callback on a goroutine of its
// own, so that a connection's failure or a timeout never runs callbacks
// under its caller's locks or in the watcher.
func (c *call) fail(err error) {
	if c.cb != nil {
		go c.cb(nil, err)
		return
	}
	c.done <- result{err: err}
}

var syncCallPool = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &call{done: make(chan result, 2), timer: t}
}}

// pendingTable maps opaque → call for one connection. After failAll it
// refuses new calls with the error it failed the old ones with.
type pendingTable struct {
	mu      sync.Mutex
	calls   map[int32]*call
	failErr error
	n       atomic.Int32 // len(calls), readable without mu
	// expiry is at most the earliest deadline of the calls in the table
	// (0: none has one); expire scans the table only once it
	// passed. Written under mu.
	expiry atomic.Int64
}

// waiting reports whether any call is pending.
func (t *pendingTable) waiting() bool { return t.n.Load() > 0 }

func (t *pendingTable) add(opaque int32, c *call) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.failErr != nil {
		return t.failErr
	}
	if t.calls == nil {
		t.calls = make(map[int32]*call)
	}
	t.calls[opaque] = c
	t.n.Store(int32(len(t.calls)))
	if d := int64(c.deadline); d != 0 {
		if e := t.expiry.Load(); e == 0 || d < e {
			t.expiry.Store(d)
		}
	}
	return nil
}

// expire takes the calls whose deadline is before now out of the table
// and appends them to out. Until the earliest deadline passed
// it costs one atomic load: with one timeout for all calls the table is
// scanned about once per timeout.
func (t *pendingTable) expire(now time.Duration, out []*call) []*call {
	if e := t.expiry.Load(); e == 0 || int64(now) < e {
		return out
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var next time.Duration
	for opaque, c := range t.calls {
		switch {
		case c.deadline == 0:
		case c.deadline <= now:
			delete(t.calls, opaque)
			out = append(out, c)
		case next == 0 || c.deadline < next:
			next = c.deadline
		}
	}
	t.n.Store(int32(len(t.calls)))
	t.expiry.Store(int64(next))
	return out
}

// take removes and returns the call waiting for opaque, or nil.
func (t *pendingTable) take(opaque int32) *call {
	t.mu.Lock()
	c := t.calls[opaque]
	if c != nil {
		delete(t.calls, opaque)
		t.n.Store(int32(len(t.calls)))
	}
	t.mu.Unlock()
	return c
}

// handLead gives the read duty to a synchronous call still waiting, if
// there is one, and reports whether it did. The call stays in the table,
// so its waiter finds the lead before it could abandon the call.
func (t *pendingTable) handLead() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.calls {
		if c.cb == nil {
			c.done <- result{lead: true}
			return true
		}
	}
	return false
}

// failAll ends every pending call with err and refuses new ones.
func (t *pendingTable) failAll(err error) {
	t.mu.Lock()
	if t.failErr != nil {
		t.mu.Unlock()
		return
	}
	t.failErr = err
	calls := t.calls
	t.calls = nil
	t.n.Store(0)
	t.expiry.Store(0)
	t.mu.Unlock()
	for _, c := range calls {
		c.fail(err)
	}
}

// deliver completes the call a response belongs to; it reports false when
// nobody waits for it (late, or unknown opaque).
func (t *pendingTable) deliver(resp *RemotingCommand) bool {
	c := t.take(resp.Opaque)
	if c == nil {
		return false
	}
	c.finish(resp, nil)
	return true
}

// sendSync registers a synchronous call for a copy of req with a fresh
// opaque and sends it; deadline is the call's (see call.deadline). A nil
// call means it failed with err and is over; otherwise the call is
// pending, and sendErr tells whether sending failed (failAll then owns the
// call and completes it).
func (t *pendingTable) sendSync(req *RemotingCommand, deadline time.Duration, send func(*RemotingCommand) error) (c *call, opaque int32, sendErr, err error) {
	if req.IsResponse() {
		return nil, 0, nil, ErrNotRequest
	}
	c = syncCallPool.Get().(*call)
	c.deadline = deadline
	c.cmd = *req
	cmd := &c.cmd
	cmd.Opaque = nextOpaque()
	cmd.Flag &^= FlagOneway
	opaque = cmd.Opaque
	if err := t.add(opaque, c); err != nil {
		c.cmd = RemotingCommand{}
		syncCallPool.Put(c)
		return nil, 0, nil, err
	}
	sendErr = send(cmd)
	c.cmd = RemotingCommand{} // encoded by now; drop the references
	if sendErr != nil && t.take(opaque) != nil {
		syncCallPool.Put(c)
		return nil, 0, nil, sendErr
	}
	return c, opaque, sendErr, nil
}

// invokeSync registers a synchronous call, sends req with send and waits
// for the response, the timeout (≤ 0: none), ctx or a connection failure.
// req itself is not modified: a copy gets the fresh opaque.
func (t *pendingTable) invokeSync(ctx context.Context, req *RemotingCommand, timeout time.Duration, send func(*RemotingCommand) error) (*RemotingCommand, error) {
	c, opaque, _, err := t.sendSync(req, 0, send)
	if c == nil {
		return nil, err
	}
	var timerC <-chan time.Time
	if timeout > 0 {
		c.timer.Reset(timeout)
		timerC = c.timer.C
	}
	select {
	case r := <-c.done:
		c.timer.Stop() // since Go 1.23 no stale tick can be received after Stop
		syncCallPool.Put(c)
		return r.resp, r.err
	case <-timerC:
		return nil, t.abandon(opaque, c, ErrTimeout)
	case <-ctx.Done():
		c.timer.Stop()
		return nil, t.abandon(opaque, c, ctx.Err())
	}
}

// abandon gives up waiting for opaque. If the response raced in, the call
// is still drained so it can be reused.
func (t *pendingTable) abandon(opaque int32, c *call, err error) error {
	if t.take(opaque) == nil {
		<-c.done // finishing concurrently: wait for it, then recycle
	}
	syncCallPool.Put(c)
	return err
}
