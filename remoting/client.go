package remoting

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// ClientConfig configures a Client. Zero values take the defaults noted.
type ClientConfig struct {
	// Handler serves requests a server sends on our connections
	// (CHECK_TRANSACTION_STATE, NOTIFY_CONSUMER_IDS_CHANGED, ...). Each
	// runs on its own goroutine; a non-nil result is sent back as the
	// response. Nil: such requests are logged and dropped, as the Go client
	// does for codes it does not know.
	Handler Handler
	// Logger receives all logs (default zap.NewNop()).
	Logger *zap.Logger
	// ConnectTimeout bounds a dial (default 3 s; ctx may cut it shorter).
	ConnectTimeout time.Duration
	// MaxFrameSize bounds frames read (default 16 MiB).
	MaxFrameSize int
	// WriteTimeout bounds one socket write (default 30 s; < 0: none). A
	// peer that stops reading for that long breaks the connection, which
	// fails its pending requests.
	WriteTimeout time.Duration
}

// Client keeps one connection per address, re-dialled lazily after it
// breaks, and matches responses to requests by opaque. It is safe for
// concurrent use.
type Client struct {
	cfg ClientConfig
	log *zap.Logger
	wg  sync.WaitGroup // reader, writer and handler goroutines
	seq atomic.Uint64

	mu struct {
		sync.RWMutex
		closed bool
		conns  map[string]*clientConn
	}
}

// NewClient returns a client; it dials nothing until the first call.
func NewClient(cfg ClientConfig) *Client {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 3 * time.Second
	}
	if cfg.MaxFrameSize <= 0 {
		cfg.MaxFrameSize = DefaultMaxFrameSize
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	c := &Client{cfg: cfg, log: cfg.Logger}
	c.mu.conns = make(map[string]*clientConn)
	return c
}

// InvokeSync sends req to addr and waits for its response, at most timeout
// (≤ 0: only ctx bounds it; a caller not reading the socket itself learns
// of its timeout from the watcher's scan, up to idleTick late, and has no
// timer of its own). req is not modified (a copy carries the opaque).
// Errors: ErrTimeout, ErrConnClosed (the connection broke; the next call
// re-dials), ErrClientClosed, ctx's error, or a dial error.
func (c *Client) InvokeSync(ctx context.Context, addr string, req *RemotingCommand, timeout time.Duration) (*RemotingCommand, error) {
	cc, err := c.conn(ctx, addr)
	if err != nil {
		return nil, err
	}
	return cc.Invoke(ctx, req, timeout)
}

// ReleaseResponse hands the frame of a response that InvokeSync returned
// (or InvokeAsync passed to its callback) back for the frames the process
// reads next, so that a caller making many calls does not allocate (and
// collect) one per response: ~640 bytes with pointers for a send's answer,
// 5% of the benchmark client's CPU with the collector's share (issue 8).
// The rules of ReleaseRequest hold: call it at most once, and only once
// nothing uses resp any more, nor anything decoded from it (Body,
// ExtFields and the strings read from them alias the frame; a string kept
// must be a copy). A response that was not read into a pooled frame is
// left to the garbage collector; nil is ignored.
func ReleaseResponse(resp *RemotingCommand) {
	if resp != nil {
		ReleaseRequest(resp)
	}
}

// InvokeAsync sends req to addr and returns once it is queued; cb later
// receives the response or the error: ErrTimeout once timeout (≤ 0: none)
// has passed — found by a scan every idleTick, so up to about 5 ms late —
// or ErrConnClosed/ErrClientClosed. cb runs exactly once, unless
// InvokeAsync returns an error. A response's cb runs on the goroutine
// reading the connection, before it reads on: it must return quickly and
// must never wait for another call of this Client (hand such work to a
// goroutine). An error's cb runs on a goroutine of its own. ctx bounds
// only the dial. An asynchronous call costs no goroutine and no timer.
func (c *Client) InvokeAsync(ctx context.Context, addr string, req *RemotingCommand, timeout time.Duration, cb func(*RemotingCommand, error)) error {
	if cb == nil {
		return fmt.Errorf("remoting: InvokeAsync: nil callback")
	}
	if req.IsResponse() {
		return ErrNotRequest
	}
	cc, err := c.conn(ctx, addr)
	if err != nil {
		return err
	}
	return cc.invokeAsync(req, timeout, cb)
}

// InvokeOneway sends req to addr with the oneway bit set; no response is
// expected. req is not modified.
func (c *Client) InvokeOneway(ctx context.Context, addr string, req *RemotingCommand) error {
	if req.IsResponse() {
		return ErrNotRequest
	}
	cc, err := c.conn(ctx, addr)
	if err != nil {
		return err
	}
	cmd := *req
	cmd.Opaque = nextOpaque()
	cmd.Flag |= FlagOneway
	return cc.Send(&cmd)
}

// CloseConn closes the connection to addr, if any, failing its pending
// requests; the next call re-dials.
func (c *Client) CloseConn(addr string) {
	c.mu.RLock()
	cc := c.mu.conns[addr]
	c.mu.RUnlock()
	if cc != nil {
		cc.fail(ErrConnClosed)
	}
}

// Close closes every connection, failing pending requests with
// ErrClientClosed, and waits for the client's goroutines (including running
// server-request handlers) to end.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return nil
	}
	c.mu.closed = true
	conns := c.mu.conns
	c.mu.conns = nil
	c.mu.Unlock()
	for _, cc := range conns {
		cc.fail(ErrClientClosed)
	}
	c.wg.Wait()
	return nil
}

// conn returns the live connection to addr, dialling it if needed. Callers
// that arrive while a dial is in progress wait for it.
func (c *Client) conn(ctx context.Context, addr string) (*clientConn, error) {
	c.mu.RLock()
	cc := c.mu.conns[addr]
	closed := c.mu.closed
	c.mu.RUnlock()
	if closed {
		return nil, ErrClientClosed
	}
	if cc == nil {
		c.mu.Lock()
		if c.mu.closed {
			c.mu.Unlock()
			return nil, ErrClientClosed
		}
		if cc = c.mu.conns[addr]; cc == nil {
			cc = &clientConn{c: c, addr: addr, id: c.seq.Add(1), ready: make(chan struct{}), done: make(chan struct{})}
			c.mu.conns[addr] = cc
			c.wg.Add(1)
			go cc.dial()
		}
		c.mu.Unlock()
	}
	select {
	case <-cc.ready: // dialled: no select over ctx on every call
	default:
		select {
		case <-cc.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if cc.dialErr != nil {
		return nil, cc.dialErr
	}
	return cc, nil
}

// forget drops cc from the table if it is still the entry for its address.
func (c *Client) forget(cc *clientConn) {
	c.mu.Lock()
	if c.mu.conns[cc.addr] == cc {
		delete(c.mu.conns, cc.addr)
	}
	c.mu.Unlock()
}

// ---------------------------------------------------------------------------

// clientConn is one connection of a Client. It also implements Conn, the
// view handed to ClientConfig.Handler.
//
// Writes are combined: a caller that finds no write in progress writes its
// frame itself; frames encoded while a write is in flight accumulate in
// wbuf and the writer goroutine flushes them in one syscall.
//
// Coalescing. A caller about to write yields once first when other calls
// are pending on the connection, or when more than one response was
// handed out to waiting callers since the last write: their callers
// usually send again as soon as they run (64 sync producers sharing a
// connection, issue 8), and the yield lets them append to this write
// instead of each paying a write — and the server a read — of its own.
// A lone caller never yields; the yield costs a scheduler pass, not a
// timer.
//
// Write-behind. An asynchronous call made while others are pending does
// not write at all: it leaves its frame to the writer goroutine, and the
// calls made while that goroutine wakes and writes join its batch. A
// single goroutine keeping a window of asynchronous calls in flight (the
// benchmark's async256) would otherwise pay a write(2) per call, since
// nobody else sends while it writes; an asynchronous caller does not wait
// for its response, so the hand-off costs it nothing. A lone asynchronous
// call writes itself.
type clientConn struct {
	c    *Client
	addr string
	id   uint64

	ready   chan struct{} // closed when the dial finished
	dialErr error         // set before ready closes
	nc      net.Conn      // set before ready closes (nil on dial error)
	local   string

	pending  pendingTable
	handed   atomic.Int32  // responses delivered to waiters since the last write began (see Coalescing)
	done     chan struct{} // closed by fail
	failOnce sync.Once

	rd reader // who reads the socket; see clientread.go

	deadlineRefresh time.Duration // monoNow() after which writeOut moves the write deadline; owned by whoever has the writing duty
	writes          atomic.Int64  // writes so far (tests)

	wsig chan struct{} // cap 1: wake the writer goroutine
	wmu  struct {
		sync.Mutex
		buf     []byte // encoded frames not yet written
		spare   []byte // the other buffer; owned by whoever is writing
		writing bool   // someone is responsible for flushing buf
		err     error  // sticky write/close error
	}
}

const maxSpareBuf = 4 << 20

func (cc *clientConn) dial() {
	defer cc.c.wg.Done()
	d := net.Dialer{Timeout: cc.c.cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	nc, err := d.Dial("tcp", cc.addr)
	if err != nil {
		cc.dialErr = fmt.Errorf("remoting: dial %s: %w", cc.addr, err)
		cc.c.forget(cc)
		close(cc.ready)
		cc.failOnce.Do(func() { close(cc.done) })
		return
	}
	cc.nc = nc
	cc.local = nc.LocalAddr().String()
	cc.wsig = make(chan struct{}, 1)
	cc.rd.br = bufio.NewReaderSize(nc, readBufSize)
	cc.rd.wake = make(chan struct{}, 1)
	cc.c.wg.Add(2)
	go cc.idleReader()
	go cc.writeLoop()
	close(cc.ready)
	// The client may have been closed while we dialled.
	cc.c.mu.RLock()
	closed := cc.c.mu.closed
	cc.c.mu.RUnlock()
	if closed {
		cc.fail(ErrClientClosed)
	}
}

// fail breaks the connection: closes the socket, fails every pending call
// with err and removes the connection from the client so the next call
// re-dials. Only the first call has an effect.
func (cc *clientConn) fail(err error) {
	cc.failOnce.Do(func() {
		<-cc.ready
		cc.wmu.Lock()
		if cc.wmu.err == nil {
			cc.wmu.err = err
		}
		cc.wmu.Unlock()
		close(cc.done)
		cc.c.forget(cc)
		if cc.nc != nil {
			_ = cc.nc.Close()
		}
		cc.pending.failAll(err)
	})
}

// serveRequest runs ClientConfig.Handler for a server-initiated request on
// its own goroutine.
func (cc *clientConn) serveRequest(req *RemotingCommand) {
	h := cc.c.cfg.Handler
	if h == nil {
		cc.c.log.Info("remoting: no handler for server request", zap.String("addr", cc.addr), zap.Int16("code", req.Code))
		return
	}
	// A caller reading the socket may get here while Close waits for the
	// client's goroutines: no new one after Close began.
	cc.c.mu.RLock()
	closed := cc.c.mu.closed
	if !closed {
		cc.c.wg.Add(1)
	}
	cc.c.mu.RUnlock()
	if closed {
		return
	}
	go func() {
		defer cc.c.wg.Done()
		var resp *RemotingCommand
		func() {
			defer func() {
				if r := recover(); r != nil {
					cc.c.log.Error("remoting: client handler panic", zap.Int16("code", req.Code), zap.Any("panic", r))
					resp = NewResponse(req, SystemError, fmt.Sprintf("handler panic: %v", r))
				}
			}()
			resp = h.ServeRemoting(cc, req)
		}()
		if resp == nil || req.IsOneway() {
			return
		}
		MarkResponseTo(resp, req)
		if err := cc.Send(resp); err != nil {
			cc.c.log.Debug("remoting: response to server request not sent", zap.Error(err))
		}
	}()
}

// Send encodes cmd onto the connection. When no write is in progress the
// caller writes it directly; otherwise it is left for the writer in flight.
func (cc *clientConn) Send(cmd *RemotingCommand) error { return cc.send(cmd, false) }

// invokeAsync registers cb for the response to a copy of req with a fresh
// opaque, and sends it. While other calls are pending the frame is left to
// the writer goroutine (see Write-behind).
func (cc *clientConn) invokeAsync(req *RemotingCommand, timeout time.Duration, cb func(*RemotingCommand, error)) error {
	c := &call{cb: cb, cmd: *req}
	c.cmd.Opaque = nextOpaque()
	c.cmd.Flag &^= FlagOneway
	if timeout > 0 {
		c.deadline = monoNow() + timeout
	}
	opaque := c.cmd.Opaque
	if err := cc.pending.add(opaque, c); err != nil {
		return err
	}
	// c may complete (and its callback run) from here on: a failure or
	// the timeout scan may take it while it is sent; c.cmd is only read.
	if err := cc.send(&c.cmd, cc.pending.n.Load() > 1); err != nil && cc.pending.take(opaque) != nil {
		return err
	}
	cc.kickReader() // someone must read the response
	return nil
}

// send is Send; behind leaves even the first frame to the writer
// goroutine (see Write-behind).
func (cc *clientConn) send(cmd *RemotingCommand, behind bool) error {
	cc.wmu.Lock()
	if err := cc.wmu.err; err != nil {
		cc.wmu.Unlock()
		return err
	}
	before := len(cc.wmu.buf)
	buf, err := Encode(cc.wmu.buf, cmd)
	if err != nil {
		cc.wmu.buf = buf[:before]
		cc.wmu.Unlock()
		return err
	}
	cc.wmu.buf = buf
	if cc.wmu.writing {
		cc.wmu.Unlock()
		return nil
	}
	cc.wmu.writing = true
	if behind {
		cc.wmu.Unlock()
		cc.kickWriter()
		return nil
	}
	if handed := cc.handed.Swap(0); handed > 1 || cc.pending.n.Load() > 1 {
		cc.wmu.Unlock()
		runtime.Gosched() // see Coalescing
		cc.wmu.Lock()
	}
	out := cc.wmu.buf
	cc.wmu.buf = cc.wmu.spare[:0]
	cc.wmu.Unlock()

	werr := cc.writeOut(out)

	cc.wmu.Lock()
	if cap(out) <= maxSpareBuf {
		cc.wmu.spare = out[:0]
	} else {
		cc.wmu.spare = nil
	}
	if werr != nil {
		cc.wmu.writing = false
		cc.wmu.Unlock()
		err := fmt.Errorf("%w: %v", ErrConnClosed, werr)
		cc.fail(err)
		return err
	}
	if len(cc.wmu.buf) > 0 {
		// More arrived meanwhile: hand the flushing to the writer
		// goroutine (writing stays true) rather than keep this caller.
		cc.wmu.Unlock()
		cc.kickWriter()
		return nil
	}
	cc.wmu.writing = false
	cc.wmu.Unlock()
	return nil
}

func (cc *clientConn) kickWriter() {
	select {
	case cc.wsig <- struct{}{}:
	default:
	}
}

// writeLoop flushes what callers left behind while another write was in
// flight. It only runs when Send handed it the writing duty.
func (cc *clientConn) writeLoop() {
	defer cc.c.wg.Done()
	for {
		select {
		case <-cc.wsig:
		case <-cc.done:
			return
		}
		cc.wmu.Lock()
		for len(cc.wmu.buf) > 0 && cc.wmu.err == nil {
			out := cc.wmu.buf
			cc.wmu.buf = cc.wmu.spare[:0]
			cc.wmu.Unlock()
			werr := cc.writeOut(out)
			cc.wmu.Lock()
			if cap(out) <= maxSpareBuf {
				cc.wmu.spare = out[:0]
			} else {
				cc.wmu.spare = nil
			}
			if werr != nil {
				cc.wmu.Unlock()
				cc.fail(fmt.Errorf("%w: %v", ErrConnClosed, werr))
				cc.wmu.Lock()
			}
		}
		cc.wmu.writing = false
		cc.wmu.Unlock()
	}
}

// writeOut writes one batch to the socket under the write timeout. The
// deadline is moved only when less than half of the timeout is left, so a
// busy connection does not reset a runtime timer on every write: a write
// may fail after between WriteTimeout/2 and WriteTimeout without progress.
// Only the goroutine holding the writing duty calls it.
func (cc *clientConn) writeOut(b []byte) error {
	if wt := cc.c.cfg.WriteTimeout; wt > 0 {
		if now := monoNow(); now > cc.deadlineRefresh {
			_ = cc.nc.SetWriteDeadline(time.Now().Add(wt))
			cc.deadlineRefresh = now + wt/2
		}
	}
	_, err := cc.nc.Write(b)
	cc.writes.Add(1)
	return err
}

func (cc *clientConn) ID() uint64         { return cc.id }
func (cc *clientConn) RemoteAddr() string { return cc.addr }
func (cc *clientConn) LocalAddr() string  { return cc.local }

// Invoke sends a request on this connection and waits for its response.
func (cc *clientConn) Invoke(ctx context.Context, req *RemotingCommand, timeout time.Duration) (*RemotingCommand, error) {
	return cc.invokeSync(ctx, req, timeout)
}

// Close breaks this connection; the client re-dials on its next call.
func (cc *clientConn) Close() error {
	cc.fail(ErrConnClosed)
	return nil
}

var _ Conn = (*clientConn)(nil)
var _ Conn = (*serverConn)(nil)
