// Package faultproxy is an in-process TCP proxy that injects network faults
// into the links between processes under test: added delay (with jitter,
// order preserved), frame loss, blackholes (bytes swallowed, the sender
// notices nothing) and refused links (connections reset, new ones
// refused), each settable per direction of a connection, so one-way loss
// is possible. Network builds a proxy per directed peer link of a group of
// replicas (DLedger peers dial each other and send oneway frames, so the
// connection a dials to b carries exactly the a→b traffic) and applies
// partitions, isolations and heals to the group.
//
// A TCP stream cannot lose bytes and stay usable, so loss is frame-aware:
// with a Framer (RemotingFrames for RocketMQ remoting, which dledgernet
// uses) the proxy reads whole frames and drops whole frames. Without one it
// forwards raw chunks; a dropped chunk then resets the connection, and a
// connection that swallowed bytes in a blackhole is reset when the
// blackhole is healed.
//
// Every proxy listens on an OS-chosen loopback port unless told otherwise.
package faultproxy

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Direction selects which way of a proxied connection a fault applies to.
type Direction int

const (
	// Forward is the way from the dialer (the client of the proxy) to the
	// target.
	Forward Direction = 1 << iota
	// Backward is the way from the target back to the dialer.
	Backward
	// Both is Forward and Backward.
	Both = Forward | Backward
)

// Fault is what a proxy does to the bytes going one way.
type Fault struct {
	// Blackhole swallows everything: the sender's writes succeed, nothing
	// arrives.
	Blackhole bool
	// Delay is added to every frame (or chunk); Jitter adds a uniform
	// random [0, Jitter) on top. Order is always preserved.
	Delay, Jitter time.Duration
	// DropRate is the probability that a frame is lost. Without a Framer a
	// "lost" chunk resets the connection.
	DropRate float64
}

func (f Fault) zero() bool { return f == Fault{} }

// Framer reads one whole frame (header included) from r.
type Framer func(r *bufio.Reader) ([]byte, error)

// MaxFrame bounds the frames RemotingFrames accepts.
const MaxFrame = 256 << 20

// RemotingFrames reads one RocketMQ remoting frame: a 4-byte big-endian
// length, then that many bytes.
func RemotingFrames(r *bufio.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxFrame {
		return nil, fmt.Errorf("faultproxy: frame of %d bytes", n)
	}
	buf := make([]byte, 4+int(n))
	copy(buf, hdr[:])
	if _, err := io.ReadFull(r, buf[4:]); err != nil {
		return nil, err
	}
	return buf, nil
}

// Option configures a Proxy.
type Option func(*Proxy)

// WithFramer makes the proxy forward whole frames read by f (frame-aware
// loss).
func WithFramer(f Framer) Option { return func(p *Proxy) { p.framer = f } }

// WithSeed seeds the proxy's randomness (drop decisions, jitter).
func WithSeed(seed int64) Option { return func(p *Proxy) { p.rnd = rand.New(rand.NewSource(seed)) } }

// WithListenAddr makes the proxy listen on addr instead of 127.0.0.1:0.
func WithListenAddr(addr string) Option { return func(p *Proxy) { p.listen = addr } }

// WithDialTimeout bounds the proxy's dial of the target (default 1 s).
func WithDialTimeout(d time.Duration) Option { return func(p *Proxy) { p.dialTimeout = d } }

// Stats counts what a proxy did.
type Stats struct {
	Accepted        int64 // connections accepted
	Refused         int64 // connections reset because the link was refused or the target was down
	FramesForward   int64 // frames (chunks) delivered
	FramesDropped   int64 // frames (chunks) lost to DropRate
	FramesSwallowed int64 // frames (chunks) swallowed by a blackhole
	BytesDelivered  int64
}

// Proxy forwards the connections it accepts to a target address, applying
// the current faults to both directions of each.
type Proxy struct {
	ln          net.Listener
	listen      string
	framer      Framer
	dialTimeout time.Duration

	mu     sync.Mutex
	target string
	faults [2]Fault // [0] forward, [1] backward
	refuse bool
	rnd    *rand.Rand
	conns  map[*pconn]struct{}
	closed bool
	wg     sync.WaitGroup

	accepted, refused, delivered, dropped, swallowed, bytes atomic.Int64
}

// New starts a proxy that forwards to target.
func New(target string, opts ...Option) (*Proxy, error) {
	p := &Proxy{target: target, listen: "127.0.0.1:0", dialTimeout: time.Second, conns: map[*pconn]struct{}{}}
	for _, o := range opts {
		o(p)
	}
	if p.rnd == nil {
		p.rnd = rand.New(rand.NewSource(time.Now().UnixNano()))
	}
	ln, err := net.Listen("tcp", p.listen)
	if err != nil {
		return nil, err
	}
	p.ln = ln
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr is the address the proxy listens on.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target is the address the proxy forwards to.
func (p *Proxy) Target() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.target
}

// SetTarget changes where new connections go (existing ones are reset).
func (p *Proxy) SetTarget(addr string) {
	p.mu.Lock()
	p.target = addr
	p.mu.Unlock()
	p.ResetConns()
}

// Set makes f the fault of the given direction(s), for open connections
// and new ones.
func (p *Proxy) Set(dir Direction, f Fault) {
	p.mu.Lock()
	if dir&Forward != 0 {
		p.faults[0] = f
	}
	if dir&Backward != 0 {
		p.faults[1] = f
	}
	p.mu.Unlock()
}

// Fault returns the current fault of one direction (Forward or Backward).
func (p *Proxy) Fault(dir Direction) Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	if dir == Backward {
		return p.faults[1]
	}
	return p.faults[0]
}

// Blackhole swallows everything going the given way(s).
func (p *Proxy) Blackhole(dir Direction) { p.Set(dir, Fault{Blackhole: true}) }

// Refuse resets every open connection and refuses new ones (a link that is
// down: the sender gets errors at once) until Heal.
func (p *Proxy) Refuse() {
	p.mu.Lock()
	p.refuse = true
	p.mu.Unlock()
	p.ResetConns()
}

// Heal removes every fault. Unframed connections that swallowed or lost
// bytes are reset (their streams are no longer whole).
func (p *Proxy) Heal() {
	p.mu.Lock()
	p.faults = [2]Fault{}
	p.refuse = false
	var tainted []*pconn
	for c := range p.conns {
		if c.tainted.Load() {
			tainted = append(tainted, c)
		}
	}
	p.mu.Unlock()
	for _, c := range tainted {
		c.reset()
	}
}

// ResetConns closes every open connection now (with RST); the link itself
// stays as it is.
func (p *Proxy) ResetConns() {
	p.mu.Lock()
	all := make([]*pconn, 0, len(p.conns))
	for c := range p.conns {
		all = append(all, c)
	}
	p.mu.Unlock()
	for _, c := range all {
		c.reset()
	}
}

// Conns is the number of open proxied connections.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Stats returns the proxy's counters.
func (p *Proxy) Stats() Stats {
	return Stats{Accepted: p.accepted.Load(), Refused: p.refused.Load(), FramesForward: p.delivered.Load(),
		FramesDropped: p.dropped.Load(), FramesSwallowed: p.swallowed.Load(), BytesDelivered: p.bytes.Load()}
}

// Close stops listening, resets every connection and waits for the
// proxy's goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	err := p.ln.Close()
	p.ResetConns()
	p.wg.Wait()
	return err
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		p.mu.Lock()
		refuse, closed, target := p.refuse, p.closed, p.target
		p.mu.Unlock()
		if refuse || closed {
			p.refused.Add(1)
			resetConn(c)
			continue
		}
		p.wg.Add(1)
		go p.serve(c, target)
	}
}

func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// pconn is one proxied connection.
type pconn struct {
	client, upstream net.Conn
	once             sync.Once
	done             chan struct{}
	tainted          atomic.Bool
}

func (c *pconn) reset() {
	c.once.Do(func() {
		close(c.done)
		resetConn(c.client)
		resetConn(c.upstream)
	})
}

func (p *Proxy) serve(client net.Conn, target string) {
	defer p.wg.Done()
	up, err := net.DialTimeout("tcp", target, p.dialTimeout)
	if err != nil {
		p.refused.Add(1)
		resetConn(client)
		return
	}
	c := &pconn{client: client, upstream: up, done: make(chan struct{})}
	p.mu.Lock()
	if p.closed || p.refuse {
		p.mu.Unlock()
		p.refused.Add(1)
		c.reset()
		return
	}
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pump(c, 0, client, up) }()
	go func() { defer wg.Done(); p.pump(c, 1, up, client) }()
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

type chunk struct {
	b       []byte
	release time.Time
}

// pump copies src to dst for one direction (0 forward, 1 backward): a
// reader applies loss and blackholes and stamps a release time, a writer
// delivers in order at that time.
func (p *Proxy) pump(c *pconn, dir int, src, dst net.Conn) {
	q := make(chan chunk, 1024)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for ch := range q {
			if d := time.Until(ch.release); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-c.done:
					t.Stop()
					return
				}
			}
			if _, err := dst.Write(ch.b); err != nil {
				c.reset()
				return
			}
			p.delivered.Add(1)
			p.bytes.Add(int64(len(ch.b)))
		}
	}()
	defer func() {
		close(q)
		<-writerDone
		c.reset()
	}()
	br := bufio.NewReaderSize(src, 64<<10)
	raw := make([]byte, 32<<10)
	var last time.Time
	for {
		var b []byte
		if p.framer != nil {
			f, err := p.framer(br)
			if err != nil {
				return
			}
			b = f
		} else {
			n, err := br.Read(raw)
			if n > 0 {
				b = append([]byte(nil), raw[:n]...)
			}
			if err != nil && n == 0 {
				return
			}
		}
		p.mu.Lock()
		f := p.faults[dir]
		drop := f.DropRate > 0 && p.rnd.Float64() < f.DropRate
		var jitter time.Duration
		if f.Jitter > 0 {
			jitter = time.Duration(p.rnd.Int63n(int64(f.Jitter)))
		}
		p.mu.Unlock()
		switch {
		case f.Blackhole:
			p.swallowed.Add(1)
			if p.framer == nil {
				c.tainted.Store(true)
			}
			continue
		case drop:
			p.dropped.Add(1)
			if p.framer == nil {
				return // a byte stream cannot lose a chunk: reset
			}
			continue
		}
		rel := time.Now()
		if !f.zero() {
			rel = rel.Add(f.Delay + jitter)
		}
		if rel.Before(last) {
			rel = last
		}
		last = rel
		select {
		case q <- chunk{b: b, release: rel}:
		case <-c.done:
			return
		}
	}
}
