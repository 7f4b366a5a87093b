package faultproxy

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmqd/rmqd/dledger"
	"github.com/rmqd/rmqd/dledgernet"
)

// echoServer answers every frame (framed) or chunk (raw) with itself and
// counts what it received.
type echoServer struct {
	ln     net.Listener
	frames atomic.Int64
	bytes  atomic.Int64
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
}

func newEcho(t *testing.T, framed bool) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &echoServer{ln: ln}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.mu.Lock()
			e.conns = append(e.conns, c)
			e.mu.Unlock()
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					var b []byte
					if framed {
						f, err := RemotingFrames(br)
						if err != nil {
							return
						}
						b = f
					} else {
						buf := make([]byte, 4096)
						n, err := br.Read(buf)
						if err != nil {
							return
						}
						b = buf[:n]
					}
					e.frames.Add(1)
					e.bytes.Add(int64(len(b)))
					if _, err := c.Write(b); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		e.mu.Lock()
		for _, c := range e.conns {
			c.Close()
		}
		e.mu.Unlock()
		e.wg.Wait()
	})
	return e
}

func (e *echoServer) addr() string { return e.ln.Addr().String() }

func newProxy(t *testing.T, target string, opts ...Option) *Proxy {
	t.Helper()
	p, err := New(target, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func frame(seq int, size int) []byte {
	b := make([]byte, 4+4+size)
	binary.BigEndian.PutUint32(b, uint32(4+size))
	binary.BigEndian.PutUint32(b[4:], uint32(seq))
	for i := range size {
		b[8+i] = byte(seq + i)
	}
	return b
}

// readFrame reads one frame within d and checks its integrity; it returns
// the sequence number.
func readFrame(t *testing.T, c net.Conn, br *bufio.Reader, d time.Duration) (int, error) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	f, err := RemotingFrames(br)
	if err != nil {
		return 0, err
	}
	seq := int(binary.BigEndian.Uint32(f[4:]))
	for i, x := range f[8:] {
		if x != byte(seq+i) {
			t.Fatalf("frame %d corrupt at byte %d", seq, i)
		}
	}
	return seq, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestFaultProxyPassThrough(t *testing.T) {
	t.Parallel()
	for _, framed := range []bool{false, true} {
		e := newEcho(t, framed)
		var opts []Option
		if framed {
			opts = append(opts, WithFramer(RemotingFrames))
		}
		p := newProxy(t, e.addr(), opts...)
		c := dial(t, p.Addr())
		br := bufio.NewReader(c)
		for i := range 50 {
			if _, err := c.Write(frame(i, 1000+i)); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 50 {
			seq, err := readFrame(t, c, br, 5*time.Second)
			if err != nil || seq != i {
				t.Fatalf("framed=%v: frame %d: seq %d err %v", framed, i, seq, err)
			}
		}
		// The proxy counts a chunk after its write returns, so the echo can
		// reach us before the count does.
		eventually(t, 5*time.Second, "bytes counted both ways", func() bool {
			return p.Stats().BytesDelivered >= 2*50*1000
		})
		if s := p.Stats(); s.Accepted != 1 {
			t.Fatalf("stats %+v", s)
		}
		if p.Conns() != 1 {
			t.Fatalf("conns %d", p.Conns())
		}
	}
}

func TestFaultProxyDelayKeepsOrder(t *testing.T) {
	t.Parallel()
	e := newEcho(t, true)
	p := newProxy(t, e.addr(), WithFramer(RemotingFrames), WithSeed(1))
	p.Set(Forward, Fault{Delay: 100 * time.Millisecond, Jitter: 50 * time.Millisecond})
	c := dial(t, p.Addr())
	br := bufio.NewReader(c)
	start := time.Now()
	for i := range 20 {
		if _, err := c.Write(frame(i, 10)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 {
		seq, err := readFrame(t, c, br, 5*time.Second)
		if err != nil || seq != i {
			t.Fatalf("frame %d: seq %d err %v", i, seq, err)
		}
		if i == 0 {
			if d := time.Since(start); d < 100*time.Millisecond {
				t.Fatalf("first frame after %v, want >= 100ms delay", d)
			}
		}
	}
	// Backward is untouched: a frame goes there and back in about Delay.
	p.Set(Forward, Fault{})
	p.Set(Backward, Fault{Delay: 80 * time.Millisecond})
	start = time.Now()
	c.Write(frame(99, 1))
	if seq, err := readFrame(t, c, br, 5*time.Second); err != nil || seq != 99 {
		t.Fatal(seq, err)
	}
	if d := time.Since(start); d < 80*time.Millisecond || d > 2*time.Second {
		t.Fatalf("round trip %v with an 80ms backward delay", d)
	}
}

// TestFaultProxyOneWayBlackhole: a forward blackhole swallows the sender's
// frames silently (the target sees nothing); a backward one lets the target
// receive but not answer; healing resumes the same (framed) connection
// intact.
func TestFaultProxyOneWayBlackhole(t *testing.T) {
	t.Parallel()
	e := newEcho(t, true)
	p := newProxy(t, e.addr(), WithFramer(RemotingFrames))
	c := dial(t, p.Addr())
	br := bufio.NewReader(c)
	c.Write(frame(0, 8))
	if seq, err := readFrame(t, c, br, 5*time.Second); err != nil || seq != 0 {
		t.Fatal(seq, err)
	}

	p.Blackhole(Forward)
	for i := 1; i <= 10; i++ {
		if _, err := c.Write(frame(i, 100)); err != nil {
			t.Fatalf("write into a blackhole failed: %v", err)
		}
	}
	if _, err := readFrame(t, c, br, 300*time.Millisecond); !isTimeout(err) {
		t.Fatalf("read through a forward blackhole: %v", err)
	}
	if n := e.frames.Load(); n != 1 {
		t.Fatalf("target received %d frames, want 1", n)
	}

	p.Heal()
	p.Blackhole(Backward)
	c.Write(frame(11, 5))
	eventually(t, 5*time.Second, "target receives through a backward blackhole", func() bool { return e.frames.Load() == 2 })
	if _, err := readFrame(t, c, br, 300*time.Millisecond); !isTimeout(err) {
		t.Fatalf("answer came through a backward blackhole: %v", err)
	}

	p.Heal()
	c.Write(frame(12, 5))
	if seq, err := readFrame(t, c, br, 5*time.Second); err != nil || seq != 12 {
		t.Fatalf("after heal: seq %d err %v", seq, err)
	}
	if s := p.Stats(); s.FramesSwallowed != 11 || s.Accepted != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// TestFaultProxyFramedDrop loses about DropRate of the frames, whole: what
// arrives is intact and in order.
func TestFaultProxyFramedDrop(t *testing.T) {
	t.Parallel()
	e := newEcho(t, true)
	p := newProxy(t, e.addr(), WithFramer(RemotingFrames), WithSeed(42))
	p.Set(Forward, Fault{DropRate: 0.5})
	c := dial(t, p.Addr())
	br := bufio.NewReader(c)
	const n = 400
	go func() {
		for i := range n {
			if _, err := c.Write(frame(i, 50+i%200)); err != nil {
				return
			}
		}
		c.Write(frame(n, 0)) // may be dropped too; the reader stops on the timeout then
	}()
	got, last := 0, -1
	for {
		seq, err := readFrame(t, c, br, time.Second)
		if err != nil {
			if !isTimeout(err) {
				t.Fatal(err)
			}
			break
		}
		if seq <= last {
			t.Fatalf("frame %d after %d", seq, last)
		}
		last = seq
		got++
		if seq == n {
			break
		}
	}
	s := p.Stats()
	if got < n/4 || got > 3*n/4 || s.FramesDropped < n/4 {
		t.Fatalf("received %d of %d frames with DropRate 0.5 (stats %+v)", got, n, s)
	}
}

// TestFaultProxyRefuse resets open connections and refuses new ones until
// Heal.
func TestFaultProxyRefuse(t *testing.T) {
	t.Parallel()
	e := newEcho(t, false)
	p := newProxy(t, e.addr())
	c := dial(t, p.Addr())
	c.Write([]byte("x"))
	buf := make([]byte, 1)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	p.Refuse()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(buf); err == nil || isTimeout(err) {
		t.Fatalf("read on a refused link: %v", err)
	}
	if err := dialAndRead(p.Addr()); err == nil || isTimeout(err) {
		t.Fatalf("new connection on a refused link: %v", err)
	}
	p.Heal()
	c3 := dial(t, p.Addr())
	c3.Write([]byte("z"))
	c3.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c3, buf); err != nil || buf[0] != 'z' {
		t.Fatalf("after heal: %q %v", buf, err)
	}
	// A target that is down: the dialer's connection is reset.
	e.ln.Close()
	p2 := newProxy(t, e.addr(), WithDialTimeout(200*time.Millisecond))
	if err := dialAndRead(p2.Addr()); err == nil || isTimeout(err) {
		t.Fatalf("connection to a dead target: %v", err)
	}
}

// dialAndRead dials addr, writes a byte and reads one: the error of
// whichever step failed (a refused link may reset the dial itself).
func dialAndRead(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("y")); err != nil {
		return err
	}
	_, err = c.Read(make([]byte, 1))
	return err
}

// TestFaultProxyUnframedBlackholeResetsOnHeal: a raw stream that lost bytes
// is reset when the blackhole heals, never resumed torn.
func TestFaultProxyUnframedBlackholeResetsOnHeal(t *testing.T) {
	t.Parallel()
	e := newEcho(t, false)
	p := newProxy(t, e.addr())
	c := dial(t, p.Addr())
	p.Blackhole(Forward)
	c.Write([]byte("lost"))
	eventually(t, 5*time.Second, "swallowed", func() bool { return p.Stats().FramesSwallowed > 0 })
	p.Heal()
	buf := make([]byte, 8)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(buf); err == nil || isTimeout(err) {
		t.Fatalf("torn stream survived the heal: %v", err)
	}
	eventually(t, 5*time.Second, "connection gone", func() bool { return p.Conns() == 0 })
}

// TestFaultProxyNetworkPartition checks the per-link wiring of a Network:
// Peers(self) keeps self's own real address, every link reaches its real
// target, Partition/Isolate/Cut cut exactly the links they name.
func TestFaultProxyNetworkPartition(t *testing.T) {
	t.Parallel()
	servers := map[string]*echoServer{}
	real := map[string]string{}
	for _, id := range []string{"n0", "n1", "n2"} {
		servers[id] = newEcho(t, true)
		real[id] = servers[id].addr()
	}
	n, err := NewNetwork(real)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	if got := n.Peers("n1")["n1"]; got != real["n1"] {
		t.Fatalf("own entry %q, want real %q", got, real["n1"])
	}
	if got := n.PeersString("n0"); got != fmt.Sprintf("n0-%s;n1-%s;n2-%s", real["n0"], n.Addr("n0", "n1"), n.Addr("n0", "n2")) {
		t.Fatalf("PeersString %q", got)
	}
	type link struct{ from, to string }
	conns := map[link]net.Conn{}
	readers := map[link]*bufio.Reader{}
	for _, a := range n.IDs() {
		for _, b := range n.IDs() {
			if a != b {
				c := dial(t, n.Addr(a, b))
				conns[link{a, b}] = c
				readers[link{a, b}] = bufio.NewReader(c)
			}
		}
	}
	seq := 0
	// reachable sends a frame over a→b and reports whether b got it (and
	// the echo came back).
	reachable := func(a, b string) bool {
		seq++
		l := link{a, b}
		before := servers[b].frames.Load()
		conns[l].Write(frame(seq, 4))
		s, err := readFrame(t, conns[l], readers[l], 250*time.Millisecond)
		if err == nil {
			return s == seq
		}
		if !isTimeout(err) {
			t.Fatalf("%s→%s: %v", a, b, err)
		}
		return servers[b].frames.Load() > before // arrived, the answer was lost
	}
	check := func(what string, want map[link]bool) {
		t.Helper()
		for l, ok := range want {
			if got := reachable(l.from, l.to); got != ok {
				t.Fatalf("%s: %s→%s reachable=%v, want %v", what, l.from, l.to, got, ok)
			}
		}
	}
	all := func(v bool) map[link]bool {
		m := map[link]bool{}
		for l := range conns {
			m[l] = v
		}
		return m
	}
	check("healthy", all(true))

	n.Isolate("n0")
	want := all(false)
	want[link{"n1", "n2"}], want[link{"n2", "n1"}] = true, true
	check("n0 isolated", want)

	n.Heal()
	n.Partition([]string{"n0", "n1"}, []string{"n2"})
	want = all(false)
	want[link{"n0", "n1"}], want[link{"n1", "n0"}] = true, true
	check("{n0,n1} | {n2}", want)

	n.Heal()
	n.Cut("n0", "n1")
	want = all(true)
	want[link{"n0", "n1"}] = false
	check("one-way n0→n1", want)
}

func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFaultProxyDledgerGroup runs a real 3-node dledger group over
// dledgernet with every peer link through a Network: isolating the leader
// makes it step down (check quorum) and the others elect a new one; a
// proposal on the isolated node never commits; after healing the old
// leader follows and catches up.
func TestFaultProxyDledgerGroup(t *testing.T) {
	t.Parallel()
	ids := []string{"n0", "n1", "n2"}
	real := map[string]string{}
	for _, id := range ids {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		real[id] = ln.Addr().String()
		ln.Close()
	}
	netw, err := NewNetwork(real, WithSeed(7))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(netw.Close)
	nodes := map[string]*dledger.Node{}
	for i, id := range ids {
		peers := netw.Peers(id)
		tr, err := dledgernet.New(dledgernet.Config{SelfID: id, Peers: peers})
		if err != nil {
			t.Fatal(err)
		}
		nd, err := dledger.NewNode(dledger.Config{SelfID: id, Peers: peers, Storage: dledger.NewMemoryStorage(1 << 20),
			Transport: tr, TickInterval: 10 * time.Millisecond, HeartbeatInterval: 30 * time.Millisecond,
			ElectionTimeout: 200 * time.Millisecond, Seed: uint64(i + 1)})
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Start(nd); err != nil {
			t.Fatal(err)
		}
		nodes[id] = nd
		t.Cleanup(func() { nd.Stop(); tr.Close() })
	}
	leader := func(exclude string) string {
		for id, nd := range nodes {
			if id != exclude && nd.IsLeader() {
				return id
			}
		}
		return ""
	}
	eventually(t, 10*time.Second, "a leader", func() bool { return leader("") != "" })
	old := leader("")
	propose := func(id, body string) *dledger.Future {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		f, err := nodes[id].Propose(ctx, [][]byte{[]byte(body)}, nil)
		if err != nil {
			return nil
		}
		return f
	}
	f := propose(old, "before")
	if f == nil {
		t.Fatal("propose on the leader failed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	oldTerm := nodes[old].Status().Term

	netw.Isolate(old)
	start := time.Now()
	isolated := propose(old, "isolated") // may be refused at once, or accepted and never committed
	eventually(t, 10*time.Second, "a new leader on the majority side", func() bool { return leader(old) != "" })
	eventually(t, 10*time.Second, "the isolated leader steps down", func() bool { return !nodes[old].IsLeader() })
	t.Logf("new leader %s after %v", leader(old), time.Since(start))
	if isolated != nil {
		select {
		case <-isolated.Done():
			if isolated.Err() == nil {
				t.Fatal("a proposal on the isolated leader committed")
			}
		default:
		}
	}
	nl := leader(old)
	if st := nodes[nl].Status(); st.Term <= oldTerm {
		t.Fatalf("new leader term %d, old %d", st.Term, oldTerm)
	}
	f = propose(nl, "after")
	if f == nil {
		t.Fatal("propose on the new leader failed")
	}
	if err := f.Wait(ctx); err != nil {
		t.Fatal(err)
	}

	netw.Heal()
	eventually(t, 10*time.Second, "old leader follows the new one and catches up", func() bool {
		st, lst := nodes[old].Status(), nodes[nl].Status()
		return st.Leader == nl && st.CommittedIndex == lst.CommittedIndex && st.LedgerEndIndex == lst.LedgerEndIndex
	})
	if isolated != nil {
		select {
		case <-isolated.Done():
			if isolated.Err() == nil {
				t.Fatal("the isolated proposal committed after all")
			}
		case <-time.After(2 * time.Second):
			t.Fatal("the isolated proposal never completed after the heal")
		}
	}
	if s := netw.Stats(); s.FramesSwallowed == 0 {
		t.Fatalf("no frames swallowed during the isolation: %+v", s)
	}
}
