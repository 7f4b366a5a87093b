// Package dledgernet carries dledger's peer messages over rmqd's remoting
// protocol (the RocketMQ frame format). It is the only package where dledger
// and remoting meet.
//
// # Wire
//
// Every frame is a oneway RemotingCommand (binary ROCKETMQ header, no ext
// fields) with request code CodeRaftMessages (32001) and a body holding a
// batch of messages:
//
//	uvarint count, then count times: uvarint length, dledger.Message binary encoding
//
// Java DLedger's request codes (50000-51006) do not fit remoting's int16
// code field, so rmqd uses its own code; DLedger peers run on their own port
// (the addresses in dLegerPeers), so it cannot clash with broker codes.
// Code 32002 (CodeRaftPing) is a liveness probe answered with Success; other
// requests are answered RequestCodeNotSupported.
//
// # Usage
//
//  1. t, _ := dledgernet.New(dledgernet.Config{SelfID: "n0", Peers: peers})
//  2. node, _ := dledger.NewNode(dledger.Config{..., Transport: t})
//  3. t.Start(node)   // listens on Peers[SelfID] and delivers to node.Step
//  4. on shutdown: node.Stop(); t.Close()
//
// # Data path
//
// Replication is latency-bound, so the transport keeps goroutine hand-offs
// and syscalls per message to a minimum (the remoting server's event-loop →
// worker-pool hop cost more than the Raft work itself):
//
//   - Each peer has one outgoing TCP connection, dialled and re-dialled by
//     the peer's sender goroutine. Send never blocks: it appends the message
//     to the peer's bounded queue (a full queue drops it; Raft retransmits).
//   - Flush (dledger.Flusher; the Node calls it after each burst of Sends)
//     encodes everything queued for a peer into frames — entry bodies are
//     copied once, straight into the frame — and writes them from the
//     caller's goroutine with one non-blocking write, unless the sender
//     goroutine is busy. Whatever the socket does not take at once is left
//     to the sender goroutine, which writes it with blocking writes; later
//     frames follow it, so order is kept. A driver that never calls Flush
//     gets every Send written by the sender goroutine.
//   - Each accepted connection has a reader goroutine that cuts frames,
//     decodes the messages and hands them to the receiver's Step directly,
//     in the order sent.
package dledgernet

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rmqd/rmqd/dledger"
	"github.com/rmqd/rmqd/remoting"
	"go.uber.org/zap"
)

// framesSent, msgsSent and dials count frames and messages sent and
// connections dialled (benchmark and test metrics).
var framesSent, msgsSent, dials atomic.Int64

// Request codes of the peer protocol.
const (
	CodeRaftMessages int16 = 32001
	CodeRaftPing     int16 = 32002
)

// Config configures a Transport.
type Config struct {
	SelfID string
	Peers  map[string]string // id -> "host:port", self included
	// ListenAddr overrides Peers[SelfID] for listening (e.g. "0.0.0.0:40911").
	ListenAddr    string
	QueueSize     int // messages queued per peer (default 8192)
	MaxFrameBytes int // bytes per frame (default 8 MiB)
	Logger        *zap.Logger
	DialTimeout   time.Duration // default 500ms
	// WriteTimeout breaks a connection whose peer accepts nothing for that
	// long (default 10s); the sender re-dials.
	WriteTimeout time.Duration
}

// Transport implements dledger.Transport (and dledger.Flusher) over TCP
// with remoting frames.
type Transport struct {
	cfg    Config
	log    *zap.Logger
	peers  map[string]*peer
	wg     sync.WaitGroup
	stopc  chan struct{}
	ctx    context.Context // cancelled by Close (bounds dials)
	cancel context.CancelFunc
	header []byte   // length word, header word and binary header of a raft frame with no body
	ids    []string // every member's id: decoded messages share these strings

	flushing atomic.Bool // the driver calls Flush: Send need not wake the senders

	mu       sync.RWMutex
	receiver dledger.Receiver
	closed   bool
	ln       net.Listener
	conns    map[net.Conn]struct{} // every open connection, for Close
}

type peer struct {
	t        *Transport
	id, addr string
	sig      chan struct{} // cap 1: wake the sender goroutine

	mu    sync.Mutex
	q     []dledger.Message // queued, not yet encoded
	spare []dledger.Message

	// wmu is held by whoever writes to the connection: the sender goroutine
	// or a Flush that found it idle (TryLock: Flush never waits).
	wmu     sync.Mutex
	conn    net.Conn
	nw      *nowWriter // Flush's non-blocking writes to conn
	backlog []byte     // encoded bytes the socket did not take yet (sender's job)
	buf     []byte     // encode buffer
	batch   []dledger.Message
	lastErr time.Time // last connection failure (dial back-off)
}

// New builds a transport; nothing listens until Start.
func New(cfg Config) (*Transport, error) {
	if _, ok := cfg.Peers[cfg.SelfID]; !ok {
		return nil, fmt.Errorf("dledgernet: self %q not in peers", cfg.SelfID)
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 8192
	}
	if cfg.MaxFrameBytes <= 0 {
		cfg.MaxFrameBytes = 8 << 20
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 500 * time.Millisecond
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = cfg.Peers[cfg.SelfID]
	}
	t := &Transport{cfg: cfg, log: cfg.Logger.With(zap.String("node", cfg.SelfID)), peers: map[string]*peer{},
		stopc: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	hdr, err := remoting.Encode(nil, &remoting.RemotingCommand{Code: CodeRaftMessages, Language: "GO",
		Flag: remoting.FlagOneway, SerializeType: remoting.RocketMQ})
	if err != nil {
		return nil, err
	}
	t.header = hdr
	for id := range cfg.Peers {
		t.ids = append(t.ids, id)
	}
	for id, addr := range cfg.Peers {
		if id == cfg.SelfID {
			continue
		}
		p := &peer{t: t, id: id, addr: addr, sig: make(chan struct{}, 1)}
		t.peers[id] = p
		t.wg.Add(1)
		go p.sendLoop()
	}
	return t, nil
}

// maxFrame bounds frames: a frame holds up to MaxFrameBytes of entries, or
// a single message with one entry of up to 64 MiB.
func (t *Transport) maxFrame() int { return max(t.cfg.MaxFrameBytes, 64<<20) + 1<<20 }

// Start listens on the self address and delivers incoming messages to r.
func (t *Transport) Start(r dledger.Receiver) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return remoting.ErrServerClosed
	}
	if t.ln != nil {
		t.mu.Unlock()
		return errors.New("dledgernet: already started")
	}
	t.receiver = r
	t.mu.Unlock()
	var lc net.ListenConfig
	ln, err := lc.Listen(t.ctx, "tcp", t.cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("dledgernet: listen %s: %w", t.cfg.ListenAddr, err)
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		ln.Close()
		return remoting.ErrServerClosed
	}
	t.ln = ln
	t.wg.Add(1)
	t.mu.Unlock()
	go t.acceptLoop(ln)
	return nil
}

// SetReceiver replaces the receiver of incoming messages (nil drops them),
// e.g. to restart a Node without re-listening.
func (t *Transport) SetReceiver(r dledger.Receiver) {
	t.mu.Lock()
	t.receiver = r
	t.mu.Unlock()
}

// Addr is the bound listen address (after Start).
func (t *Transport) Addr() string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.ln == nil {
		return ""
	}
	return t.ln.Addr().String()
}

// track registers an open connection for Close; false if already closed.
func (t *Transport) track(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.conns[c] = struct{}{}
	return true
}

func (t *Transport) untrack(c net.Conn) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
	_ = c.Close()
}

// ---------------------------------------------------------------------------
// Sending.

// Send queues m for its destination; it never blocks.
func (t *Transport) Send(m dledger.Message) {
	p := t.peers[m.To]
	if p == nil {
		return
	}
	p.mu.Lock()
	if len(p.q) >= t.cfg.QueueSize {
		p.mu.Unlock()
		t.log.Debug("send queue full: dropping", zap.String("peer", m.To), zap.Stringer("type", m.Type))
		return
	}
	p.q = append(p.q, m)
	p.mu.Unlock()
	if !t.flushing.Load() {
		p.wake()
	}
}

// Flush writes what Send queued, from the caller's goroutine when the
// connection is idle (one non-blocking write per peer), else by waking the
// peer's sender. It never blocks.
func (t *Transport) Flush() {
	t.flushing.Store(true)
	for _, p := range t.peers {
		p.mu.Lock()
		empty := len(p.q) == 0
		p.mu.Unlock()
		if empty {
			continue
		}
		if !p.wmu.TryLock() {
			p.wake() // the sender is writing: it takes the queue next
			continue
		}
		if p.conn == nil || len(p.backlog) > 0 {
			p.wmu.Unlock()
			p.wake()
			continue
		}
		p.encode()
		n, err := p.nw.writeNow(p.buf)
		if err != nil {
			p.t.log.Debug("send failed", zap.String("peer", p.id), zap.Error(err))
			p.closeConn()
			p.wmu.Unlock()
			continue
		}
		if n < len(p.buf) {
			p.backlog = append(p.backlog[:0], p.buf[n:]...)
			p.wmu.Unlock()
			p.wake()
			continue
		}
		if cap(p.buf) > 16<<20 {
			p.buf = nil
		}
		p.wmu.Unlock()
	}
}

func (p *peer) wake() {
	select {
	case p.sig <- struct{}{}:
	default:
	}
}

// take moves the queue into p.batch; wmu is held.
func (p *peer) take() {
	p.mu.Lock()
	p.batch, p.q = p.q, p.spare[:0]
	p.spare = nil
	p.mu.Unlock()
}

// encode takes the queue and encodes it into p.buf as one or more frames
// (each at most about MaxFrameBytes); wmu is held.
func (p *peer) encode() {
	p.take()
	t := p.t
	batch := p.batch
	// Size the buffer once (doubling): grown by append from a fresh
	// transport's empty buffer, encoding was ~7% of a benchmark's CPU.
	need := 0
	for i := range batch {
		need += len(t.header) + 2*binary.MaxVarintLen64 + batch[i].BinarySize()
	}
	if need > cap(p.buf) {
		p.buf = make([]byte, 0, max(need, 2*cap(p.buf)))
	}
	p.buf = p.buf[:0]
	for len(batch) > 0 {
		// Choose the frame's messages.
		k, bytes := 1, entryBytes(&batch[0])
		for k < len(batch) && k < 4096 {
			n := entryBytes(&batch[k])
			if bytes+n > t.cfg.MaxFrameBytes {
				break
			}
			bytes += n
			k++
		}
		start := len(p.buf)
		p.buf = append(p.buf, t.header...)
		p.buf = binary.AppendUvarint(p.buf, uint64(k))
		for i := range batch[:k] {
			m := &batch[i]
			p.buf = binary.AppendUvarint(p.buf, uint64(m.BinarySize()))
			p.buf, _ = m.AppendBinary(p.buf)
		}
		// Length word: 4 (header word) + header + body.
		binary.BigEndian.PutUint32(p.buf[start:], uint32(len(p.buf)-start-4))
		framesSent.Add(1)
		msgsSent.Add(int64(k))
		batch = batch[k:]
	}
	clear(p.batch) // drop references to entry bodies
	p.mu.Lock()
	if p.spare == nil && cap(p.batch) <= 16384 {
		p.spare = p.batch[:0]
	}
	p.mu.Unlock()
	p.batch = nil
}

func (p *peer) closeConn() {
	if p.conn != nil {
		p.t.untrack(p.conn)
	}
	p.conn, p.nw = nil, nil
	p.backlog = p.backlog[:0]
	p.lastErr = time.Now()
}

// sendLoop dials, and writes what Flush left behind or Send queued.
func (p *peer) sendLoop() {
	t := p.t
	defer t.wg.Done()
	defer func() {
		p.wmu.Lock()
		p.closeConn()
		p.wmu.Unlock()
	}()
	for {
		select {
		case <-p.sig:
		case <-t.stopc:
			return
		}
		p.wmu.Lock()
		for {
			if p.conn == nil {
				if wait := 20*time.Millisecond - time.Since(p.lastErr); wait > 0 {
					// Do not spin on a dead peer (Raft resends what is lost).
					p.wmu.Unlock()
					select {
					case <-time.After(wait):
					case <-t.stopc:
						return
					}
					p.wmu.Lock()
				}
				if !p.dial() {
					p.take() // dropped: Raft resends
					clear(p.batch)
					p.batch = nil
					break
				}
			}
			if len(p.backlog) > 0 {
				if err := p.writeAll(p.backlog); err != nil {
					continue
				}
				p.backlog = p.backlog[:0]
			}
			p.mu.Lock()
			empty := len(p.q) == 0
			p.mu.Unlock()
			if empty {
				break
			}
			p.encode()
			if err := p.writeAll(p.buf); err != nil {
				continue
			}
			if cap(p.buf) > 16<<20 {
				p.buf = nil
			}
		}
		if cap(p.backlog) > 16<<20 {
			p.backlog = nil
		}
		p.wmu.Unlock()
	}
}

// writeChunk bounds the bytes one write deadline covers.
const writeChunk = 256 << 10

// writeAll writes b with blocking writes; on failure it closes the
// connection (what was not written is lost). wmu is held. The deadline is
// renewed per chunk: WriteTimeout bounds a peer that accepts nothing, not
// the time a large backlog takes to drain.
func (p *peer) writeAll(b []byte) error {
	var err error
	for len(b) > 0 && err == nil {
		k := min(len(b), writeChunk)
		_ = p.conn.SetWriteDeadline(time.Now().Add(p.t.cfg.WriteTimeout))
		_, err = p.conn.Write(b[:k])
		b = b[k:]
	}
	if err == nil {
		// An expired deadline would fail Flush's direct writes.
		err = p.conn.SetWriteDeadline(time.Time{})
	}
	if err != nil {
		p.t.log.Debug("send failed", zap.String("peer", p.id), zap.String("addr", p.addr), zap.Error(err))
		p.closeConn()
	}
	return err
}

// dial connects to the peer; wmu is held.
func (p *peer) dial() bool {
	t := p.t
	d := net.Dialer{Timeout: t.cfg.DialTimeout, KeepAlive: 30 * time.Second}
	c, err := d.DialContext(t.ctx, "tcp", p.addr)
	if err != nil {
		t.log.Debug("dial failed", zap.String("peer", p.id), zap.String("addr", p.addr), zap.Error(err))
		p.lastErr = time.Now()
		return false
	}
	if !t.track(c) {
		_ = c.Close()
		p.lastErr = time.Now()
		return false
	}
	dials.Add(1)
	tc, ok := c.(*net.TCPConn)
	if ok {
		_ = tc.SetNoDelay(true)
		if rc, err := tc.SyscallConn(); err == nil {
			p.nw = newNowWriter(rc)
		}
	}
	p.conn = c
	// Nothing is ever sent back on this connection; a reader notices when
	// the peer closes it, so the next write re-dials instead of failing.
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		var b [512]byte
		for {
			if _, err := c.Read(b[:]); err != nil {
				_ = c.Close()
				return
			}
		}
	}()
	return true
}

func entryBytes(m *dledger.Message) int {
	n := 64
	for i := range m.Entries {
		n += len(m.Entries[i].Body) + 32
	}
	return n
}

// ---------------------------------------------------------------------------
// Receiving.

func (t *Transport) acceptLoop(ln net.Listener) {
	defer t.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			select {
			case <-t.stopc:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			t.log.Warn("accept failed", zap.Error(err))
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if !t.track(c) {
			_ = c.Close()
			return
		}
		t.wg.Add(1)
		go t.readLoop(c)
	}
}

// readLoop serves one accepted connection: raft frames are stepped in
// order on this goroutine.
func (t *Transport) readLoop(c net.Conn) {
	defer t.wg.Done()
	defer t.untrack(c)
	remote := c.RemoteAddr().String()
	br := bufio.NewReaderSize(newReader(c), 256<<10)
	var wmu sync.Mutex // answers to pings
	for {
		frame, err := remoting.ReadFrame(br, t.maxFrame())
		if err != nil {
			return
		}
		cmd, err := remoting.DecodeFrame(frame)
		if err != nil {
			t.log.Warn("closing connection on malformed frame", zap.String("remote", remote), zap.Error(err))
			return
		}
		if cmd.IsResponse() {
			continue
		}
		var resp *remoting.RemotingCommand
		switch cmd.Code {
		case CodeRaftMessages:
			if err := t.serve(remote, cmd.Body); err != nil {
				if !errors.Is(err, dledger.ErrStopped) {
					t.log.Warn("closing connection on bad raft frame", zap.String("remote", remote), zap.Error(err))
					return
				}
			}
			continue
		case CodeRaftPing:
			resp = remoting.NewResponse(cmd, remoting.Success, "")
		default:
			resp = remoting.NotSupported(cmd)
		}
		if cmd.IsOneway() {
			continue
		}
		remoting.MarkResponseTo(resp, cmd)
		out, err := remoting.Encode(nil, resp)
		if err != nil {
			continue
		}
		wmu.Lock()
		_ = c.SetWriteDeadline(time.Now().Add(t.cfg.WriteTimeout))
		_, err = c.Write(out)
		wmu.Unlock()
		if err != nil {
			return
		}
	}
}

var errBadFrame = errors.New("dledgernet: bad raft frame")

// serve decodes one frame body and steps its messages in order. A
// malformed body is an error (the connection is closed); messages are
// dropped while no receiver is set.
func (t *Transport) serve(remote string, b []byte) error {
	t.mu.RLock()
	r := t.receiver
	t.mu.RUnlock()
	if r == nil {
		return nil
	}
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return errBadFrame
	}
	b = b[k:]
	for range n {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return errBadFrame
		}
		var m dledger.Message
		if err := m.UnmarshalBinaryKnown(b[k:k+int(l)], t.ids); err != nil {
			return fmt.Errorf("%w: %v", errBadFrame, err)
		}
		b = b[k+int(l):]
		if err := r.Step(m); err != nil {
			return err
		}
	}
	return nil
}

// Close stops the senders, the listener and every connection, and waits
// for the transport's goroutines.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	ln := t.ln
	conns := t.conns
	t.conns = map[net.Conn]struct{}{}
	t.mu.Unlock()
	close(t.stopc)
	t.cancel()
	if ln != nil {
		_ = ln.Close()
	}
	for c := range conns {
		_ = c.Close()
	}
	t.wg.Wait()
	return nil
}

var _ dledger.Flusher = (*Transport)(nil)
