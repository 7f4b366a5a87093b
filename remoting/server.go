package remoting

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"go.uber.org/zap"
)

// ServerConfig configures a Server. Zero values take the defaults noted.
type ServerConfig struct {
	// Addr is the listen address "host:port" (or "tcp://host:port");
	// port 0 picks a free port (see Server.Addr). Default "127.0.0.1:0".
	Addr string
	// MaxFrameSize bounds a frame's declared length (default 16 MiB).
	// Larger frames close the connection before anything is allocated.
	MaxFrameSize int
	// Workers is the number of goroutines running handlers (default 64).
	Workers int
	// QueueSize bounds the frames waiting for a worker (default 10000).
	// When it is full a request is answered SystemBusy at once.
	QueueSize int
	// EventLoops is the number of gnet event loops (default 1 + NumCPU/8:
	// the loops only cut frames, and each one is a goroutine blocking in
	// epoll_wait outside the Go scheduler, which costs dearly on small
	// machines — one loop echoed ~1.5× faster than two on 2 CPUs).
	EventLoops int
	// Logger receives all logs, gnet's included (default zap.NewNop()).
	Logger *zap.Logger
	// OnConnClose, if set, is called (on its own goroutine) after a
	// connection has closed and its pending Invokes have failed.
	OnConnClose func(Conn)
}

// Server serves the remoting protocol on gnet event loops. The loops only
// cut frames; a bounded worker pool decodes them and runs the Handler;
// replies go back with gnet's AsyncWrite.
type Server struct {
	cfg     ServerConfig
	handler Handler
	inline  InlineHandler // handler, if it serves some codes on the loop
	log     *zap.Logger

	tasks     chan task
	workersWG sync.WaitGroup
	bgWG      sync.WaitGroup // OnConnClose callbacks
	connSeq   atomic.Uint64

	mu struct {
		sync.Mutex
		state   int // 0 new, 1 running, 2 closed
		engine  gnet.Engine
		addr    string
		runDone chan struct{}
	}
}

// task is a frame for a worker with the command to decode it into, or a
// request already decoded on the loop (decoded set).
type task struct {
	sc      *serverConn
	frame   []byte
	cmd     *RemotingCommand
	decoded bool
}

// NewServer returns a server for h; call Start to listen.
func NewServer(cfg ServerConfig, h Handler) (*Server, error) {
	if h == nil {
		return nil, fmt.Errorf("remoting: NewServer: nil handler")
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.MaxFrameSize <= 0 {
		cfg.MaxFrameSize = DefaultMaxFrameSize
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 64
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 10000
	}
	if cfg.EventLoops <= 0 {
		cfg.EventLoops = 1 + runtime.NumCPU()/8
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	s := &Server{cfg: cfg, handler: h, log: cfg.Logger}
	s.inline, _ = h.(InlineHandler)
	return s, nil
}

// Start listens and returns once the listener is bound.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.state != 0 {
		return fmt.Errorf("remoting: server already started or closed")
	}
	protoAddr := s.cfg.Addr
	if !strings.Contains(protoAddr, "://") {
		protoAddr = "tcp://" + protoAddr
	}
	s.tasks = make(chan task, s.cfg.QueueSize)
	for i := 0; i < s.cfg.Workers; i++ {
		s.workersWG.Add(1)
		go s.worker()
	}
	booted := make(chan bootInfo, 1)
	runDone := make(chan struct{})
	var runErr error
	opts := []gnet.Option{
		gnet.WithMulticore(true),
		gnet.WithNumEventLoop(s.cfg.EventLoops),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithTCPKeepAlive(time.Minute),
		// A restarted broker must bind its port again at once, although
		// connections of its previous life linger in TIME_WAIT.
		gnet.WithReuseAddr(true),
		gnet.WithLogger(gnetLogger{s.log.Sugar()}),
	}
	go func() {
		defer close(runDone)
		runErr = gnet.Run(&engineHandler{s: s, booted: booted}, protoAddr, opts...)
	}()
	select {
	case b := <-booted:
		s.mu.engine, s.mu.addr, s.mu.runDone = b.engine, b.addr, runDone
		s.mu.state = 1
		s.log.Info("remoting server listening", zap.String("addr", b.addr))
		return nil
	case <-runDone:
		close(s.tasks)
		s.workersWG.Wait()
		s.mu.state = 2
		if runErr == nil {
			runErr = ErrServerClosed
		}
		// gnet reports a failed bind as "setsockopt: bad file descriptor"
		// (it sets keepalive on the socket it just closed); a plain listen
		// tells the operator the real cause, e.g. "address already in use".
		if l, err := net.Listen("tcp", strings.TrimPrefix(protoAddr, "tcp://")); err != nil {
			runErr = err
		} else {
			_ = l.Close()
		}
		return fmt.Errorf("remoting: listen %s: %w", s.cfg.Addr, runErr)
	}
}

// Addr returns the bound "ip:port" (the real port when 0 was asked), or ""
// before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.addr
}

// Close stops listening, closes every connection (failing their pending
// Invokes), waits for running handlers and OnConnClose callbacks to return,
// and stops all goroutines it started. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	state := s.mu.state
	s.mu.state = 2
	eng, runDone := s.mu.engine, s.mu.runDone
	s.mu.Unlock()
	if state != 1 {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Stop only has to trigger the shutdown; we wait on Run below.
	_ = eng.Stop(ctx)
	<-runDone
	close(s.tasks) // no loop is left to send on it
	s.workersWG.Wait()
	s.bgWG.Wait()
	return nil
}

func (s *Server) worker() {
	defer s.workersWG.Done()
	for t := range s.tasks {
		if !t.decoded {
			if err := decodeFrameInto(t.cmd, t.frame); err != nil {
				t.sc.serving.Add(-1)
				s.log.Warn("remoting: closing connection on malformed frame",
					zap.String("remote", t.sc.remote), zap.Error(err))
				_ = t.sc.Close()
				continue
			}
		}
		s.serveCommand(t.sc, t.cmd)
	}
}

// serveCommand serves one decoded frame on a worker (the frame is counted
// in sc.serving until its handler returned).
func (s *Server) serveCommand(sc *serverConn, cmd *RemotingCommand) {
	if cmd.IsResponse() {
		sc.serving.Add(-1)
		if !sc.pending.deliver(cmd) {
			s.log.Debug("remoting: response without a waiter", zap.String("remote", sc.remote), zap.Int32("opaque", cmd.Opaque))
		}
		return
	}
	resp := s.serve(sc, cmd, s.handler.ServeRemoting)
	sc.serving.Add(-1) // before Send: a response does not wait for itself
	s.respond(sc, cmd, resp)
}

// respond sends a handler's answer.
func (s *Server) respond(sc *serverConn, cmd, resp *RemotingCommand) {
	if resp == nil || cmd.IsOneway() {
		return
	}
	MarkResponseTo(resp, cmd)
	if err := sc.Send(resp); err != nil {
		s.log.Debug("remoting: response not sent", zap.String("remote", sc.remote), zap.Int16("code", cmd.Code), zap.Error(err))
	}
}

// serveInline serves a request on the event loop, or queues it for a
// worker when the inline handler hands it over.
func (s *Server) serveInline(sc *serverConn, t task) {
	resp := s.serve(sc, t.cmd, s.inline.ServeInline)
	if resp != ServeOnWorker {
		s.respond(sc, t.cmd, resp)
		return
	}
	t.decoded = true
	s.queue(sc, t)
}

// queue hands t to a worker, or answers it SystemBusy when the queue is full.
func (s *Server) queue(sc *serverConn, t task) {
	sc.serving.Add(1)
	select {
	case s.tasks <- t:
	default:
		sc.serving.Add(-1)
		s.overloaded(sc, t)
	}
}

// serve runs a handler, turning a panic into a SystemError response.
func (s *Server) serve(sc *serverConn, req *RemotingCommand, handler func(Conn, *RemotingCommand) *RemotingCommand) (resp *RemotingCommand) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("remoting: handler panic",
				zap.Int16("code", req.Code), zap.String("remote", sc.remote),
				zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
			resp = NewResponse(req, SystemError, fmt.Sprintf("handler panic: %v", r))
		}
	}()
	return handler(sc, req)
}

// overloaded answers a request that found the worker queue full. It runs
// on the event loop: decoding is cheap and nothing blocks.
func (s *Server) overloaded(sc *serverConn, t task) {
	cmd := t.cmd
	if !t.decoded && decodeFrameInto(cmd, t.frame) != nil {
		_ = sc.Close()
		return
	}
	if cmd.IsResponse() {
		sc.pending.deliver(cmd)
		return
	}
	if cmd.IsOneway() {
		return
	}
	_ = sc.Send(NewResponse(cmd, SystemBusy, "[OVERLOAD]system busy, start flow control for a while"))
}

// servesInline reports whether frame is a request the handler serves on
// the event loop, judged from its code alone.
func (s *Server) servesInline(frame []byte) bool {
	if s.inline == nil {
		return false
	}
	code, ok := peekRequestCode(frame)
	return ok && s.inline.ServesInline(code)
}

// ---------------------------------------------------------------------------
// gnet event handler: framing, and the requests served inline.

type bootInfo struct {
	engine gnet.Engine
	addr   string
}

type engineHandler struct {
	gnet.BuiltinEventEngine
	s      *Server
	booted chan bootInfo
}

func (h *engineHandler) OnBoot(eng gnet.Engine) gnet.Action {
	addr, err := boundAddr(eng)
	if err != nil {
		h.s.log.Error("remoting: cannot read bound address", zap.Error(err))
		addr = strings.TrimPrefix(h.s.cfg.Addr, "tcp://")
	}
	h.booted <- bootInfo{engine: eng, addr: addr}
	return gnet.None
}

// boundAddr reads the listener's real address (port 0 resolved) from a
// duplicate of its descriptor.
func boundAddr(eng gnet.Engine) (string, error) {
	fd, err := eng.Dup()
	if err != nil {
		return "", err
	}
	f := os.NewFile(uintptr(fd), "listener")
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func (h *engineHandler) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	sc := &serverConn{s: h.s, gc: c, fd: c.Fd(), id: h.s.connSeq.Add(1)}
	if a := c.RemoteAddr(); a != nil {
		sc.remote = a.String()
	}
	if name, ok := sockName(c.Fd()); ok {
		sc.local = name
	} else if a := c.LocalAddr(); a != nil {
		sc.local = a.String()
	}
	c.SetContext(sc)
	return nil, gnet.None
}

func (h *engineHandler) OnClose(c gnet.Conn, err error) gnet.Action {
	sc, ok := c.Context().(*serverConn)
	if !ok {
		return gnet.None
	}
	sc.markClosed()
	sc.pending.failAll(ErrConnClosed)
	if f := h.s.cfg.OnConnClose; f != nil {
		h.s.bgWG.Add(1)
		go func() {
			defer h.s.bgWG.Done()
			defer func() {
				if r := recover(); r != nil {
					h.s.log.Error("remoting: OnConnClose panic", zap.Any("panic", r))
				}
			}()
			f(sc)
		}()
	}
	return gnet.None
}

// OnTraffic cuts every complete frame out of the inbound buffer, copies it
// and queues it for a worker. It never blocks.
func (h *engineHandler) OnTraffic(c gnet.Conn) gnet.Action {
	s := h.s
	sc := c.Context().(*serverConn)
	for {
		buffered := c.InboundBuffered()
		if buffered < 4 {
			return gnet.None
		}
		n := 8
		if buffered < n {
			n = 4
		}
		head, err := c.Peek(n)
		if err != nil {
			return gnet.None
		}
		length, err := checkFrameLength(binary.BigEndian.Uint32(head), s.cfg.MaxFrameSize)
		if err == nil && n == 8 {
			word := binary.BigEndian.Uint32(head[4:])
			if st := SerializeType(word >> 24); st != JSON && st != RocketMQ {
				err = fmt.Errorf("%w: %d", ErrUnknownSerializeType, st)
			} else if int(word&maxHeaderLength) > length-4 {
				err = fmt.Errorf("%w: header length %d exceeds frame length %d", ErrMalformedFrame, word&maxHeaderLength, length)
			}
		}
		if err != nil {
			s.log.Warn("remoting: closing connection on bad frame", zap.String("remote", sc.remote), zap.Error(err))
			return gnet.Close
		}
		if buffered < 4+length {
			return gnet.None
		}
		buf, err := c.Peek(4 + length)
		if err != nil {
			return gnet.None
		}
		cmd, frame := requestFrame(length)
		copy(frame, buf[4:])
		_, _ = c.Discard(4 + length)
		t := task{sc: sc, frame: frame, cmd: cmd}
		// A handler may be blocked in Invoke on this connection: deliver
		// responses here, so they never wait for a free worker. And serve
		// the codes the handler declares cheap here: the hand-off to a
		// worker would cost more than the handler.
		if sc.pending.waiting() || s.servesInline(frame) {
			if err := decodeFrameInto(cmd, frame); err != nil {
				s.log.Warn("remoting: closing connection on malformed frame", zap.String("remote", sc.remote), zap.Error(err))
				return gnet.Close
			}
			if cmd.IsResponse() {
				sc.pending.deliver(cmd)
				continue
			}
			if s.inline != nil && s.inline.ServesInline(cmd.Code) {
				s.serveInline(sc, t)
				continue
			}
			t.decoded = true
		}
		s.queue(sc, t)
	}
}
