// Package dledgernet carries dledger's peer messages over rmqd's remoting
// protocol (the RocketMQ frame format on gnet). It is the only package where
// dledger and remoting meet.
//
// # Wire
//
// Every frame is a oneway RemotingCommand (JSON header, no ext fields) with
// request code CodeRaftMessages (32001) and a body holding a batch of
// messages:
//
//	uvarint count, then count times: uvarint length, dledger.Message binary encoding
//
// Java DLedger's request codes (50000-51006) do not fit remoting's int16
// code field, so rmqd uses its own code; DLedger peers run on their own port
// (the addresses in dLegerPeers), so it cannot clash with broker codes.
// Code 32002 (CodeRaftPing) is reserved for a liveness probe.
//
// # Usage
//
//  1. t, _ := dledgernet.New(dledgernet.Config{SelfID: "n0", Peers: peers})
//  2. node, _ := dledger.NewNode(dledger.Config{..., Transport: t})
//  3. t.Start(node)   // listens on Peers[SelfID] and delivers to node.Step
//  4. on shutdown: node.Stop(); t.Close()
//
// Send never blocks: each peer has a sender goroutine with a bounded queue
// (a full queue drops messages; Raft retransmits). The sender drains
// whatever is queued into one frame, so replication batches, heartbeats and
// acknowledgements coalesce under load. The server runs handlers on a
// single worker so messages from one peer are stepped in the order sent.
package dledgernet

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rmqd/rmqd/dledger"
	"github.com/rmqd/rmqd/remoting"
	"go.uber.org/zap"
)

// framesSent and msgsSent count frames and messages sent (benchmark metrics).
var framesSent, msgsSent atomic.Int64

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
}

// Transport implements dledger.Transport over remoting.
type Transport struct {
	cfg    Config
	log    *zap.Logger
	client *remoting.Client
	server *remoting.Server
	peers  map[string]*peer
	wg     sync.WaitGroup
	stopc  chan struct{}
	ctx    context.Context // cancelled by Close (bounds dials)
	cancel context.CancelFunc

	mu       sync.RWMutex
	receiver dledger.Receiver
	closed   bool
}

type peer struct {
	id, addr string
	q        chan dledger.Message
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
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = cfg.Peers[cfg.SelfID]
	}
	t := &Transport{cfg: cfg, log: cfg.Logger.With(zap.String("node", cfg.SelfID)), peers: map[string]*peer{}, stopc: make(chan struct{})}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.client = remoting.NewClient(remoting.ClientConfig{Logger: cfg.Logger, ConnectTimeout: cfg.DialTimeout,
		MaxFrameSize: t.maxFrame()})
	for id, addr := range cfg.Peers {
		if id == cfg.SelfID {
			continue
		}
		p := &peer{id: id, addr: addr, q: make(chan dledger.Message, cfg.QueueSize)}
		t.peers[id] = p
		t.wg.Add(1)
		go t.sendLoop(p)
	}
	return t, nil
}

// maxFrame bounds frames: a frame holds up to MaxFrameBytes of entries, or
// a single message with one entry of up to 64 MiB.
func (t *Transport) maxFrame() int { return max(t.cfg.MaxFrameBytes, 64<<20) + 1<<20 }

// Start listens on the self address and delivers incoming messages to r.
func (t *Transport) Start(r dledger.Receiver) error {
	t.mu.Lock()
	t.receiver = r
	t.mu.Unlock()
	mux := remoting.NewServeMux()
	mux.HandleFunc(CodeRaftMessages, t.serve)
	mux.HandleFunc(CodeRaftPing, func(c remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
		return remoting.NewResponse(req, remoting.Success, "")
	})
	srv, err := remoting.NewServer(remoting.ServerConfig{Addr: t.cfg.ListenAddr, Workers: 1, QueueSize: 65536,
		MaxFrameSize: t.maxFrame(), Logger: t.cfg.Logger, EventLoops: 1}, mux)
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return fmt.Errorf("dledgernet: listen %s: %w", t.cfg.ListenAddr, err)
	}
	t.mu.Lock()
	t.server = srv
	t.mu.Unlock()
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
	if t.server == nil {
		return ""
	}
	return t.server.Addr()
}

// Send queues m for its destination; it never blocks.
func (t *Transport) Send(m dledger.Message) {
	p := t.peers[m.To]
	if p == nil {
		return
	}
	select {
	case p.q <- m:
	default:
		t.log.Debug("send queue full: dropping", zap.String("peer", m.To), zap.Stringer("type", m.Type))
	}
}

func (t *Transport) sendLoop(p *peer) {
	defer t.wg.Done()
	var buf, msg []byte
	var carry *dledger.Message // did not fit in the previous frame
	var batch []dledger.Message
	for {
		batch = batch[:0]
		if carry != nil {
			batch = append(batch, *carry)
			carry = nil
		} else {
			select {
			case m := <-p.q:
				batch = append(batch, m)
			case <-t.stopc:
				return
			}
		}
		bytes := entryBytes(&batch[0])
	drain:
		for len(batch) < 4096 {
			select {
			case m := <-p.q:
				if n := entryBytes(&m); bytes+n > t.cfg.MaxFrameBytes {
					carry = &m
					break drain
				} else {
					bytes += n
				}
				batch = append(batch, m)
			default:
				break drain
			}
		}
		buf = binary.AppendUvarint(buf[:0], uint64(len(batch)))
		for i := range batch {
			msg, _ = batch[i].AppendBinary(msg[:0])
			buf = binary.AppendUvarint(buf, uint64(len(msg)))
			buf = append(buf, msg...)
		}
		req := &remoting.RemotingCommand{Code: CodeRaftMessages, Language: "GO", Body: buf, SerializeType: remoting.RocketMQ}
		framesSent.Add(1)
		msgsSent.Add(int64(len(batch)))
		err := t.client.InvokeOneway(t.ctx, p.addr, req)
		if err != nil {
			t.log.Debug("send failed", zap.String("peer", p.id), zap.String("addr", p.addr), zap.Int("messages", len(batch)), zap.Error(err))
			if errors.Is(err, remoting.ErrClientClosed) {
				return
			}
			// Do not spin on a dead peer: back off a little (Raft
			// resends what is lost).
			select {
			case <-time.After(20 * time.Millisecond):
			case <-t.stopc:
				return
			}
		}
		if cap(buf) > 16<<20 {
			buf = nil
		}
	}
}

func entryBytes(m *dledger.Message) int {
	n := 64
	for i := range m.Entries {
		n += len(m.Entries[i].Body) + 32
	}
	return n
}

func (t *Transport) serve(c remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	t.mu.RLock()
	r := t.receiver
	t.mu.RUnlock()
	if r == nil {
		return nil
	}
	b := req.Body
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		t.log.Warn("bad raft frame", zap.String("remote", c.RemoteAddr()))
		return nil
	}
	b = b[k:]
	for range n {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			t.log.Warn("bad raft frame", zap.String("remote", c.RemoteAddr()))
			return nil
		}
		var m dledger.Message
		if err := m.UnmarshalBinary(b[k : k+int(l)]); err != nil {
			t.log.Warn("bad raft message", zap.String("remote", c.RemoteAddr()), zap.Error(err))
			return nil
		}
		b = b[k+int(l):]
		if err := r.Step(m); err != nil {
			return nil
		}
	}
	return nil
}

// Close stops the senders, the client and the server.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	srv := t.server
	t.mu.Unlock()
	close(t.stopc)
	t.cancel()
	_ = t.client.Close()
	t.wg.Wait()
	if srv != nil {
		return srv.Close()
	}
	return nil
}
