package remoting

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"go.uber.org/zap"
)

// serverConn is the Conn handed to handlers: one client connection of a
// Server.
//
// Writing. Send encodes the command into out under mu. If nobody is
// flushing, the sender becomes the flusher: holding wmu it swaps out for an
// empty buffer and writes the batch straight to the non-blocking socket — no
// event-loop wake-up — while other senders keep appending to out; it loops
// until out is empty (at most maxFlushRounds batches). What the socket does
// not take at once, and whatever is left after those rounds, is copied to
// gnet's AsyncWrite; from then on every batch goes that way, keeping the
// order, until an AsyncWrite callback finds gnet's outbound buffer drained.
//
// Coalescing. A sender that becomes the flusher while other requests of
// the connection are queued for or held by a worker yields once before
// writing: the workers serving them append their responses meanwhile, and
// the batch leaves in one write instead of one each. That catches both
// pipelined requests waiting for a worker and handlers woken together —
// on the DLedger leader a connection's sends all wait for a replicated
// commit, and one goroutine wakes a batch of them when it completes
// (issue 8). The yield costs the response one pass of the scheduler, not
// a timer, and a lone request on its connection never yields.
//
// Closing. OnClose takes wmu, then mu, and sets closed before gnet closes
// the descriptor, so no direct write can reach a closed (or reused)
// descriptor. Lock order: wmu before mu.
type serverConn struct {
	s      *Server
	gc     gnet.Conn
	fd     int
	id     uint64
	remote string
	local  string

	pending pendingTable // Invokes this server sent on the connection

	// serving counts this connection's frames queued for or held by a
	// worker, until the handler returned (see Coalescing).
	serving atomic.Int32

	wmu    sync.Mutex // held by the flusher during a direct write, and by OnClose
	writes int        // direct writes so far (tests); guarded by wmu
	mu     struct {
		sync.Mutex
		closed    bool   // set in OnClose; afterwards gc and fd are not touched
		out       []byte // encoded frames waiting for the flusher
		spare     []byte // the other buffer, kept for reuse
		flushing  bool   // a sender is responsible for writing out
		asyncMode bool   // batches go through AsyncWrite
		queued    int    // AsyncWrites not yet called back
	}
}

// maxFlushRounds bounds how many batches one sender writes for others
// before it hands the rest to the event loop.
const maxFlushRounds = 4

// maxKeptBuf: larger write buffers are dropped after use.
const maxKeptBuf = 1 << 20

func (sc *serverConn) ID() uint64         { return sc.id }
func (sc *serverConn) RemoteAddr() string { return sc.remote }
func (sc *serverConn) LocalAddr() string  { return sc.local }

// outBuf is a pooled AsyncWrite buffer with its callback bound once.
type outBuf struct {
	b    []byte
	sc   *serverConn // the connection of the AsyncWrite in flight
	done gnet.AsyncCallback
}

var outBufPool sync.Pool

func init() {
	outBufPool.New = func() any {
		ob := &outBuf{}
		ob.done = func(c gnet.Conn, err error) error {
			sc := ob.sc
			ob.sc = nil
			putOutBuf(ob)
			sc.asyncWritten(c, err)
			return nil
		}
		return ob
	}
}

func putOutBuf(ob *outBuf) {
	if cap(ob.b) <= maxKeptBuf {
		ob.b = ob.b[:0]
		outBufPool.Put(ob)
	}
}

// asyncWritten runs on the event loop after an AsyncWrite.
func (sc *serverConn) asyncWritten(c gnet.Conn, err error) {
	sc.mu.Lock()
	sc.mu.queued--
	if sc.mu.queued == 0 && err == nil && !sc.mu.closed && c.OutboundBuffered() == 0 {
		sc.mu.asyncMode = false
	}
	sc.mu.Unlock()
}

// markClosed runs on the loop in OnClose, before gnet closes the socket.
func (sc *serverConn) markClosed() {
	sc.wmu.Lock()
	sc.mu.Lock()
	sc.mu.closed = true
	sc.mu.out, sc.mu.spare = nil, nil
	sc.mu.Unlock()
	sc.wmu.Unlock()
}

// Send encodes cmd and writes it without waiting for the peer; cmd may be
// reused when it returns. A nil error means the frame was written or
// queued; if the connection breaks later it is closed.
func (sc *serverConn) Send(cmd *RemotingCommand) error {
	sc.mu.Lock()
	if sc.mu.closed {
		sc.mu.Unlock()
		return ErrConnClosed
	}
	before := len(sc.mu.out)
	out, err := Encode(sc.mu.out, cmd)
	if err != nil {
		sc.mu.out = out[:before]
		sc.mu.Unlock()
		return err
	}
	sc.mu.out = out
	if sc.mu.flushing {
		sc.mu.Unlock()
		return nil
	}
	sc.mu.flushing = true
	yield := sc.serving.Load() > 0
	sc.mu.Unlock()
	if yield {
		runtime.Gosched() // see Coalescing
	}

	sc.wmu.Lock()
	err = sc.flush()
	sc.wmu.Unlock()
	return err
}

// Flusher writes the frames SendDeferred left queued on a connection.
type Flusher interface{ Flush() }

// SendDeferred is Send for a goroutine that answers many requests in a row
// (on a DLedger leader, the sends of a replicated batch, answered when it
// commits): it encodes cmd for c, and when nobody is writing c's queued
// frames it takes that duty and returns c's Flusher instead of writing at
// once. The caller must call Flush soon — without blocking in between —
// once it has queued the rest, so that everything it queued for c meanwhile
// leaves in one write; until then c's other senders only queue behind it.
// For a Conn that is not a Server's it is c.Send (nil Flusher).
func SendDeferred(c Conn, cmd *RemotingCommand) (Flusher, error) {
	sc, ok := c.(*serverConn)
	if !ok {
		return nil, c.Send(cmd)
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.mu.closed {
		return nil, ErrConnClosed
	}
	before := len(sc.mu.out)
	out, err := Encode(sc.mu.out, cmd)
	if err != nil {
		sc.mu.out = out[:before]
		return nil, err
	}
	sc.mu.out = out
	if sc.mu.flushing {
		return nil, nil
	}
	sc.mu.flushing = true
	return sc, nil
}

// Flush writes what SendDeferred queued (see there); the caller holds the
// flushing duty.
func (sc *serverConn) Flush() {
	sc.wmu.Lock()
	err := sc.flush()
	sc.wmu.Unlock()
	if err != nil {
		sc.s.log.Debug("remoting: deferred responses not sent", zap.String("remote", sc.remote), zap.Error(err))
	}
}

// flush writes out until it is empty; the caller holds wmu and the
// flushing duty, which flush gives up before returning.
func (sc *serverConn) flush() error {
	for round := 0; ; round++ {
		sc.mu.Lock()
		if sc.mu.closed {
			sc.mu.flushing = false
			sc.mu.Unlock()
			return ErrConnClosed
		}
		if len(sc.mu.out) == 0 {
			sc.mu.flushing = false
			sc.mu.Unlock()
			return nil
		}
		if sc.mu.asyncMode || !directWrites || round >= maxFlushRounds {
			err := sc.queueAsyncLocked(sc.mu.out)
			sc.mu.out = sc.mu.out[:0]
			sc.mu.flushing = false
			sc.mu.Unlock()
			return err
		}
		batch := sc.mu.out
		sc.mu.out = sc.mu.spare[:0]
		sc.mu.spare = nil
		sc.mu.Unlock()

		n, werr := writeFD(sc.fd, batch) // wmu held: the descriptor stays open
		sc.writes++

		sc.mu.Lock()
		if cap(batch) <= maxKeptBuf {
			sc.mu.spare = batch[:0]
		}
		if werr != nil {
			sc.mu.flushing = false
			sc.mu.Unlock()
			_ = sc.gc.Close()
			return fmt.Errorf("%w: %v", ErrConnClosed, werr)
		}
		if n < len(batch) {
			// The socket is full: the rest goes first in gnet's queue, and
			// the next round sends everything after it there too.
			if err := sc.queueAsyncLocked(batch[n:]); err != nil {
				sc.mu.flushing = false
				sc.mu.Unlock()
				return err
			}
		}
		sc.mu.Unlock()
	}
}

// queueAsyncLocked copies b into a pooled buffer and queues it with
// AsyncWrite; from now on writes stay asynchronous until it drains. mu is
// held.
func (sc *serverConn) queueAsyncLocked(b []byte) error {
	ob := outBufPool.Get().(*outBuf)
	ob.b = append(ob.b[:0], b...)
	ob.sc = sc
	sc.mu.asyncMode = true
	sc.mu.queued++
	if err := sc.gc.AsyncWrite(ob.b, ob.done); err != nil {
		sc.mu.queued--
		ob.sc = nil
		putOutBuf(ob)
		return fmt.Errorf("%w: %v", ErrConnClosed, err)
	}
	return nil
}

// Invoke sends a server-initiated request on this connection and waits
// for the client's response.
func (sc *serverConn) Invoke(ctx context.Context, req *RemotingCommand, timeout time.Duration) (*RemotingCommand, error) {
	return sc.pending.invokeSync(ctx, req, timeout, sc.Send)
}

// Close closes the connection (asynchronously, on its event loop).
func (sc *serverConn) Close() error {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.mu.closed {
		return nil
	}
	return sc.gc.Close()
}
