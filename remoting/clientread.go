package remoting

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Reading a client connection. One goroutine at a time reads the socket:
// the holder of the read duty. A synchronous caller that finds the duty
// free takes it and reads until its own response arrives, so a round trip
// costs no goroutine hand-off; what it reads for others on the way is
// handed to them as before. When it leaves it passes the duty to another
// synchronous caller still waiting (the lead), or frees it and wakes the
// connection's idle reader if asynchronous calls are pending. One watcher
// goroutine per process looks at every client connection each idleTick and
// wakes the idle reader of one whose duty has been free and untaken for a
// whole tick; that reader then blocks reading, so requests from the server
// and a closed connection are noticed within a few milliseconds. It frees
// the duty as soon as nothing is pending. The watcher also times out the
// calls whose deadline passed (pendingTable.expire): the callers waiting
// for the duty holder have no timer of their own.

// readBufSize is the client connection's read buffer; frames up to it are
// cut from the buffer, larger ones read straight into their allocation.
const readBufSize = 64 << 10

// idleTick is how often the watcher looks for quiet connections.
const idleTick = 5 * time.Millisecond

// quietWatch is the process's watcher of client connections: its
// goroutine runs while any connection is registered.
var quietWatch struct {
	mu      sync.Mutex
	conns   map[*clientConn]struct{}
	running bool
}

// watchQuiet registers cc with the watcher, starting it if needed.
func watchQuiet(cc *clientConn) {
	quietWatch.mu.Lock()
	defer quietWatch.mu.Unlock()
	if quietWatch.conns == nil {
		quietWatch.conns = make(map[*clientConn]struct{})
	}
	quietWatch.conns[cc] = struct{}{}
	if !quietWatch.running {
		quietWatch.running = true
		go watchQuietLoop()
	}
}

// unwatchQuiet removes a failed connection.
func unwatchQuiet(cc *clientConn) {
	quietWatch.mu.Lock()
	delete(quietWatch.conns, cc)
	quietWatch.mu.Unlock()
}

// watchQuietLoop wakes the idle reader of every connection whose read duty
// stayed free and untaken since the previous tick, and times out the
// asynchronous calls whose deadline passed; it ends when no connection is
// left.
func watchQuietLoop() {
	tick := time.NewTicker(idleTick)
	defer tick.Stop()
	var quiet, conns []*clientConn
	var expired []*call
	for range tick.C {
		clear(quiet) // drop closed connections from the backing arrays
		clear(conns)
		quiet, conns = quiet[:0], conns[:0]
		quietWatch.mu.Lock()
		if len(quietWatch.conns) == 0 {
			quietWatch.running = false
			quietWatch.mu.Unlock()
			return
		}
		for cc := range quietWatch.conns {
			conns = append(conns, cc)
			cc.rd.mu.Lock()
			if cc.rd.state == readFree && cc.rd.takes == cc.rd.seen {
				quiet = append(quiet, cc)
			}
			cc.rd.seen = cc.rd.takes
			cc.rd.mu.Unlock()
		}
		quietWatch.mu.Unlock()
		for _, cc := range quiet {
			cc.kickIdle()
		}
		now := monoNow()
		for _, cc := range conns {
			expired = cc.pending.expire(now, expired[:0])
			for i, c := range expired {
				c.fail(ErrTimeout)
				expired[i] = nil
			}
		}
	}
}

type readState uint8

const (
	readFree   readState = iota
	readCaller           // a synchronous caller, or the waiter it led
	readIdle             // the idle reader goroutine
)

// reader is the read side of a clientConn.
type reader struct {
	br   *bufio.Reader // owned by the duty holder
	wake chan struct{} // cap 1: wake the idle reader
	big  struct {      // a frame larger than br's buffer, partly read
		cmd   *RemotingCommand
		frame []byte
		got   int
	} // owned by the duty holder

	mu       sync.Mutex
	state    readState
	takes    uint64    // times a caller took the duty
	seen     uint64    // takes at the watcher's last look
	deadline time.Time // the read deadline set on the socket
}

// takeRead gives a synchronous caller the free read duty.
func (cc *clientConn) takeRead() bool {
	cc.rd.mu.Lock()
	defer cc.rd.mu.Unlock()
	if cc.rd.state != readFree {
		return false
	}
	cc.rd.state = readCaller
	cc.rd.takes++
	return true
}

// releaseRead is called by a caller holding the duty once its own call is
// out of the pending table: the duty goes to a waiting synchronous caller,
// or is freed — waking the idle reader if something still has to be read.
// Lock order: rd.mu, then pending.mu.
func (cc *clientConn) releaseRead() {
	cc.rd.mu.Lock()
	unread := cc.rd.br.Buffered() > 0 || cc.rd.big.frame != nil
	if cc.pending.handLead() {
		cc.rd.mu.Unlock()
		return
	}
	cc.rd.state = readFree
	kick := unread || cc.pending.waiting()
	cc.rd.mu.Unlock()
	if kick {
		cc.kickIdle()
	}
}

func (cc *clientConn) kickIdle() {
	select {
	case cc.rd.wake <- struct{}{}:
	default:
	}
}

// kickReader makes sure someone reads: InvokeAsync has no caller waiting.
func (cc *clientConn) kickReader() {
	cc.rd.mu.Lock()
	free := cc.rd.state == readFree
	cc.rd.mu.Unlock()
	if free {
		cc.kickIdle()
	}
}

// setReadDeadline moves the socket's read deadline to want when the one
// set would let the holder block past want; an earlier one is left (the
// holder sees a timeout before its own and then forces its deadline).
func (cc *clientConn) setReadDeadline(want time.Time, force bool) {
	cc.rd.mu.Lock()
	defer cc.rd.mu.Unlock()
	cur := cc.rd.deadline
	if !force && (want.IsZero() && cur.IsZero() || !want.IsZero() && !cur.IsZero() && !cur.After(want)) {
		return
	}
	cc.rd.deadline = want
	_ = cc.nc.SetReadDeadline(want)
}

// interruptRead wakes the holder blocked in a read (its ctx ended).
func (cc *clientConn) interruptRead() {
	cc.rd.mu.Lock()
	defer cc.rd.mu.Unlock()
	cc.rd.deadline = time.Unix(1, 0)
	_ = cc.nc.SetReadDeadline(cc.rd.deadline)
}

// readOne reads and decodes the next frame; only the duty holder calls it.
// After a deadline error it can be called again: nothing was lost.
func (cc *clientConn) readOne() (*RemotingCommand, error) {
	br, big := cc.rd.br, &cc.rd.big
	if big.frame == nil {
		head, err := br.Peek(4)
		if err != nil {
			return nil, err
		}
		n, err := checkFrameLength(binary.BigEndian.Uint32(head), cc.c.cfg.MaxFrameSize)
		if err != nil {
			return nil, err
		}
		if 4+n <= br.Size() {
			b, err := br.Peek(4 + n)
			if err != nil {
				return nil, err
			}
			cmd, frame := requestFrame(n) // pooled: see ReleaseResponse
			copy(frame, b[4:])
			_, _ = br.Discard(4 + n)
			return cmd, decodeFrameInto(cmd, frame)
		}
		big.cmd, big.frame = newFrame(n) // n was checked against the maximum
		big.got = 0
		_, _ = br.Discard(4)
	}
	for big.got < len(big.frame) {
		m, err := br.Read(big.frame[big.got:])
		big.got += m
		if err != nil {
			return nil, err
		}
	}
	cmd, frame := big.cmd, big.frame
	big.cmd, big.frame = nil, nil
	return cmd, decodeFrameInto(cmd, frame)
}

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// monoBase anchors monoNow: time.Since of a time carrying a monotonic
// reading reads one clock, time.Now two, and a round trip needs the time
// twice. monoBase.Add(monoNow() + d) is time.Now().Add(d) for deadlines
// (compared and waited for with their monotonic reading only).
var monoBase = time.Now()

// monoNow is the monotonic time elapsed since monoBase.
func monoNow() time.Duration { return time.Since(monoBase) }

// readFailed breaks the connection after a read or decode error.
func (cc *clientConn) readFailed(err error) {
	switch {
	case errors.Is(err, ErrMalformedFrame) || errors.Is(err, ErrUnknownSerializeType) || errors.Is(err, ErrFrameTooLarge):
		cc.c.log.Warn("remoting: closing connection on malformed frame", zap.String("addr", cc.addr), zap.Error(err))
	default:
		select {
		case <-cc.done:
		default:
			cc.c.log.Debug("remoting: connection lost", zap.String("addr", cc.addr), zap.Error(err))
		}
	}
	cc.fail(fmt.Errorf("%w: %v", ErrConnClosed, err))
}

// dispatch hands a frame read by the duty holder to whoever it is for.
func (cc *clientConn) dispatch(cmd *RemotingCommand) {
	if !cmd.IsResponse() {
		cc.serveRequest(cmd)
		return
	}
	if !cc.pending.deliver(cmd) {
		cc.c.log.Debug("remoting: response without a waiter", zap.String("addr", cc.addr), zap.Int32("opaque", cmd.Opaque))
		return
	}
	cc.handed.Add(1)
}

// idleReader takes the free duty when woken — asynchronous calls wait,
// something is left unread, or the connection went quiet — and reads until
// nothing is pending.
func (cc *clientConn) idleReader() {
	defer cc.c.wg.Done()
	watchQuiet(cc)
	defer unwatchQuiet(cc)
	for {
		select {
		case <-cc.done:
			return
		case <-cc.rd.wake:
		}
		cc.rd.mu.Lock()
		take := cc.rd.state == readFree
		if take {
			cc.rd.state = readIdle
		}
		cc.rd.mu.Unlock()
		if take && !cc.readWhilePending() {
			return
		}
	}
}

// readWhilePending reads as the idle reader until nothing is pending or
// buffered, then frees the duty. It reports false once the connection
// failed.
func (cc *clientConn) readWhilePending() bool {
	cc.setReadDeadline(time.Time{}, false)
	for {
		cmd, err := cc.readOne()
		if err != nil {
			if isTimeout(err) { // a former holder's deadline or interrupt
				cc.setReadDeadline(time.Time{}, true)
				continue
			}
			cc.readFailed(err)
			return false
		}
		cc.dispatch(cmd)
		cc.rd.mu.Lock()
		if !cc.pending.waiting() && cc.rd.br.Buffered() == 0 && cc.rd.big.frame == nil {
			cc.rd.state = readFree
			cc.rd.mu.Unlock()
			return true
		}
		cc.rd.mu.Unlock()
	}
}

// invokeSync sends req and waits for its response, reading the socket
// itself whenever it holds the read duty.
func (cc *clientConn) invokeSync(ctx context.Context, req *RemotingCommand, timeout time.Duration) (*RemotingCommand, error) {
	var deadline time.Time // for the socket, when reading for the call
	var due time.Duration  // for the timeout scan
	if timeout > 0 {
		due = monoNow() + timeout
		deadline = monoBase.Add(due)
	}
	c, opaque, sendErr, err := cc.pending.sendSync(req, due, cc.Send)
	if c == nil {
		return nil, err
	}
	// After a failed send, failAll completes the call: just wait.
	lead := sendErr == nil && cc.takeRead()
	for {
		if lead {
			if resp, err, ok := cc.readFor(ctx, c, opaque, deadline); ok {
				syncCallPool.Put(c)
				return resp, err
			}
			// The connection failed: failAll completes the call.
		}
		r, done := cc.waitCall(ctx, c, opaque)
		if done {
			syncCallPool.Put(c)
			return r.resp, r.err
		}
		lead = true // r.lead: we hold the duty now
	}
}

// readFor reads as the duty holder until the response to opaque (call c)
// arrives, the deadline passes, ctx ends or the connection fails; it frees
// or passes on the duty before returning. ok is false when the call was
// completed through its channel instead.
func (cc *clientConn) readFor(ctx context.Context, c *call, opaque int32, deadline time.Time) (resp *RemotingCommand, err error, ok bool) {
	defer cc.releaseRead()
	if len(c.done) > 0 {
		// The former holder read the response before it left the duty.
		return nil, nil, false
	}
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, cc.interruptRead)
		defer stop()
	}
	cc.setReadDeadline(deadline, false)
	for {
		cmd, err := cc.readOne()
		if err != nil {
			if !isTimeout(err) {
				cc.readFailed(err)
				return nil, nil, false
			}
			if cerr := ctx.Err(); cerr != nil {
				return nil, cerr, cc.pending.take(opaque) != nil
			}
			if !deadline.IsZero() && !time.Now().Before(deadline) {
				return nil, ErrTimeout, cc.pending.take(opaque) != nil
			}
			cc.setReadDeadline(deadline, true) // a former holder's deadline
			continue
		}
		if cmd.IsResponse() && cmd.Opaque == opaque {
			if cc.pending.take(opaque) == nil {
				return nil, nil, false // failAll got there first
			}
			return cmd, nil, true
		}
		cc.dispatch(cmd)
	}
}

// waitCall waits for c's result — ErrTimeout, when the watcher's scan
// timed it out — or ctx; done is false when the read duty was handed to c
// instead.
func (cc *clientConn) waitCall(ctx context.Context, c *call, opaque int32) (r result, done bool) {
	var err error
	if ctx.Done() == nil {
		// A context that cannot end (the benchmark's, most callers'): a
		// plain receive costs less than a select on every answer.
		r = <-c.done
		return r, !r.lead
	}
	select {
	case r = <-c.done:
		return r, !r.lead
	case <-ctx.Done():
		err = ctx.Err()
	}
	// Give up the call. If it was handed the duty meanwhile, pass it on;
	// if its result is being delivered, wait for it so c can be reused.
	if cc.pending.take(opaque) != nil {
		select {
		case r = <-c.done: // only a lead can be there
			cc.releaseRead()
		default:
		}
		return result{err: err}, true
	}
	for {
		if r = <-c.done; !r.lead {
			return result{err: err}, true
		}
		cc.releaseRead()
	}
}
