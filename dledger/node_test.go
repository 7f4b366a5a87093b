package dledger

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/rmqd/rmqd/internal/clock"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := checkLeaks(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// checkLeaks fails when goroutines of this package outlive the tests.
func checkLeaks() error {
	var stacks string
	for range 100 {
		buf := make([]byte, 1<<20)
		stacks = string(buf[:runtime.Stack(buf, true)])
		leaked := false
		for _, g := range strings.Split(stacks, "\n\n") {
			if strings.Contains(g, "rmqd/dledger.") && !strings.Contains(g, "checkLeaks") && !strings.Contains(g, "testing.") {
				leaked = true
			}
		}
		if !leaked {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("leaked goroutines:\n%s", stacks)
}

// cluster is a set of real Nodes over an InmemNetwork.
type cluster struct {
	t      *testing.T
	nw     *InmemNetwork
	ids    []string
	nodes  map[string]*Node
	stores map[string]*MemoryStorage
	mod    func(*Config)
	mu     sync.Mutex
	events map[string][]RoleEvent
}

func newCluster(t *testing.T, n int, mod func(*Config)) *cluster {
	c := &cluster{t: t, nw: NewInmemNetwork(), nodes: map[string]*Node{}, stores: map[string]*MemoryStorage{}, mod: mod,
		events: map[string][]RoleEvent{}}
	for i := range n {
		id := fmt.Sprintf("n%d", i)
		c.ids = append(c.ids, id)
		c.stores[id] = NewMemoryStorage(1 << 20)
	}
	for _, id := range c.ids {
		c.start(id)
	}
	t.Cleanup(c.stop)
	return c
}

func (c *cluster) start(id string) {
	peers := map[string]string{}
	for _, p := range c.ids {
		peers[p] = p + ":0"
	}
	cfg := Config{SelfID: id, Peers: peers, Storage: c.stores[id], Transport: c.nw.Transport(id),
		TickInterval: 5 * time.Millisecond, HeartbeatInterval: 10 * time.Millisecond, ElectionTimeout: 50 * time.Millisecond,
		OnRoleChange: func(ev RoleEvent) {
			c.mu.Lock()
			c.events[id] = append(c.events[id], ev)
			c.mu.Unlock()
		}}
	if c.mod != nil {
		c.mod(&cfg)
	}
	n, err := NewNode(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.nodes[id] = n
	c.nw.Register(id, n)
}

func (c *cluster) kill(id string) {
	c.nw.Register(id, nil)
	c.nodes[id].Stop()
	delete(c.nodes, id)
	c.stores[id] = c.stores[id].Copy()
}

func (c *cluster) stop() {
	for _, id := range c.ids {
		if n := c.nodes[id]; n != nil {
			n.Stop()
		}
	}
	c.nw.Close()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (c *cluster) leader() *Node {
	for _, id := range c.ids {
		if n := c.nodes[id]; n != nil && n.IsLeader() {
			return n
		}
	}
	return nil
}

func (c *cluster) waitLeader() *Node {
	var l *Node
	waitFor(c.t, 5*time.Second, "a leader", func() bool { l = c.leader(); return l != nil })
	return l
}

func (c *cluster) propose(ctx context.Context, body string) (*Future, error) {
	for {
		l := c.leader()
		if l == nil {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(2 * time.Millisecond):
				continue
			}
		}
		f, err := l.Propose(ctx, [][]byte{[]byte(body)}, nil)
		if errors.Is(err, ErrNotLeader) || errors.Is(err, ErrTransferring) || errors.Is(err, ErrStopped) {
			time.Sleep(2 * time.Millisecond)
			continue
		}
		return f, err
	}
}

func TestNodeReplicateKillRestart(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	acked := map[int64]string{}
	write := func(k int) {
		for i := range k {
			body := fmt.Sprintf("v%d", len(acked)+i)
			for {
				f, err := c.propose(ctx, body)
				if err != nil {
					t.Fatal(err)
				}
				if err := f.Wait(ctx); err == nil {
					acked[f.Index()] = body
					break
				} else if !errors.Is(err, ErrLeadershipLost) {
					t.Fatal(err)
				}
			}
		}
	}
	write(20)
	for round := range 3 {
		l := c.waitLeader()
		id := l.ID()
		c.kill(id)
		write(10)
		c.start(id)
		_ = round
	}
	write(5)
	// Every acknowledged write is committed on every replica.
	l := c.waitLeader()
	last := l.CommittedIndex()
	for _, id := range c.ids {
		n := c.nodes[id]
		if err := n.WaitCommitted(ctx, last); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		for idx, body := range acked {
			e, err := n.Entry(idx)
			if err != nil || string(e.Body) != body {
				t.Fatalf("%s: entry %d = %q, %v; want %q", id, idx, e.Body, err, body)
			}
		}
		st := n.Status()
		if st.CommittedIndex < last || st.LedgerEndIndex < last {
			t.Fatalf("%s: status %+v", id, st)
		}
		if n.CommittedPos() <= 0 {
			t.Fatalf("%s: committed pos %d", id, n.CommittedPos())
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.events["n0"]) == 0 {
		t.Fatal("no role events")
	}
}

func TestNodeStepDownFailsPending(t *testing.T) {
	c := newCluster(t, 3, nil)
	l := c.waitLeader()
	ctx := context.Background()
	if _, err := l.Propose(ctx, [][]byte{[]byte("x")}, nil); err != nil {
		t.Fatal(err)
	}
	// Cut the leader off; its pending append must fail at once on step-down.
	c.nw.Isolate(l.ID())
	f, err := l.Propose(ctx, [][]byte{[]byte("y")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = f.Wait(ctx)
	if !errors.Is(err, ErrLeadershipLost) {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v", d)
	}
	// The rest elect a new leader, and a follower refuses proposals. Right
	// after the heal another node may still win a later term, so a node that
	// accepted is only wrong if it was a follower of the same term before
	// and after the call.
	c.nw.Heal()
	for attempt := 0; ; attempt++ {
		nl := c.waitLeader()
		fo := c.nodes[otherThan(c.ids, nl.ID())]
		before := fo.softState.Load()
		_, err = fo.Propose(ctx, [][]byte{[]byte("z")}, nil)
		var nle *NotLeaderError
		if errors.As(err, &nle) {
			return
		}
		after := fo.softState.Load()
		if (before.Role != RoleLeader && after.Role != RoleLeader && before.Term == after.Term) || attempt == 20 {
			t.Fatalf("follower propose: %v (role %v term %d, then role %v term %d)", err, before.Role, before.Term, after.Role, after.Term)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func otherThan(ids []string, id string) string {
	for _, x := range ids {
		if x != id {
			return x
		}
	}
	return ""
}

func TestNodeTransferAndPreferred(t *testing.T) {
	c := newCluster(t, 3, nil)
	l := c.waitLeader()
	target := otherThan(c.ids, l.ID())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f, err := l.Propose(ctx, [][]byte{[]byte("a")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.TransferLeadership(ctx, target); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "target leads", func() bool { return c.nodes[target].IsLeader() })

	c2 := newCluster(t, 3, func(cfg *Config) { cfg.PreferredLeaderID = "n2" })
	waitFor(t, 5*time.Second, "preferred leads", func() bool { return c2.nodes["n2"].IsLeader() })
}

func TestNodeSyncModeGroupCommit(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.SyncMode = true })
	c.waitLeader()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				f, err := c.propose(ctx, fmt.Sprintf("w%d-%d", w, i))
				if err != nil {
					t.Error(err)
					return
				}
				if err := f.Wait(ctx); err != nil && !errors.Is(err, ErrLeadershipLost) {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	l := c.waitLeader()
	syncs := c.stores[l.ID()].Syncs()
	if syncs >= 16*20 {
		t.Logf("no group commit: %d syncs for %d appends", syncs, 16*20)
	}
	st := l.Status()
	if len(st.Peers) != 2 {
		t.Fatalf("status peers %+v", st.Peers)
	}
	// Read back by position: the stored header carries the index.
	e, err := l.Entry(st.CommittedIndex)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, e.Size())
	if _, err := l.ReadAt(buf, e.Pos); err != nil {
		t.Fatal(err)
	}
	if string(buf[EntryHeaderSize:]) != string(e.Body) {
		t.Fatal("ReadAt body mismatch")
	}
}

// Concurrent proposers place their own entries: indexes are contiguous
// and unique, each hook saw the position the entry is stored at, and every
// future commits.
func TestNodeConcurrentProposersPlaceEntries(t *testing.T) {
	c := newCluster(t, 3, nil)
	l := c.waitLeader()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var mu sync.Mutex
	seen := map[int64]bool{}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				bodies := [][]byte{make([]byte, 8+w), make([]byte, 8+i%5)}
				f, err := l.Propose(ctx, bodies, func(e *Entry) { binary.BigEndian.PutUint64(e.Body, uint64(e.Pos)) })
				if err != nil {
					t.Error(err)
					return
				}
				if err := f.Wait(ctx); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for k := f.Index(); k <= f.LastIndex(); k++ {
					if seen[k] {
						t.Errorf("index %d assigned twice", k)
					}
					seen[k] = true
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	lo, hi := int64(1<<62), int64(-1)
	for k := range seen {
		lo, hi = min(lo, k), max(hi, k)
	}
	if int(hi-lo+1) != len(seen) || len(seen) != 8*50*2 {
		t.Fatalf("%d indexes in [%d, %d]", len(seen), lo, hi)
	}
	for k := lo; k <= hi; k++ {
		e, err := l.Entry(k)
		if err != nil {
			t.Fatal(err)
		}
		if got := int64(binary.BigEndian.Uint64(e.Body)); got != e.Pos {
			t.Fatalf("entry %d at %d carries position %d", k, e.Pos, got)
		}
	}
}

// gatedStorage is a MemoryStorage whose concurrent fsyncs (the sync-mode
// flusher's) wait until open is set.
type gatedStorage struct {
	*MemoryStorage
	open *atomic.Bool
}

func (s *gatedStorage) SyncIndex() (int64, error) {
	for i := 0; !s.open.Load() && i < 10000; i++ {
		time.Sleep(time.Millisecond)
	}
	return s.LastIndex(), s.Sync()
}

// Sync mode with a flusher goroutine: nothing commits while no replica has
// fsynced (followers hold their acknowledgements, the leader does not count
// itself), and everything does once fsyncs complete.
func TestNodeSyncModeFlusherWaitsForFsync(t *testing.T) {
	var open atomic.Bool
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.SyncMode = true
		cfg.Storage = &gatedStorage{MemoryStorage: cfg.Storage.(*MemoryStorage), open: &open}
	})
	t.Cleanup(func() { open.Store(true) }) // before the cluster stops (LIFO)
	l := c.waitLeader()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f, err := l.Propose(ctx, [][]byte{[]byte("x")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-f.Done():
		t.Fatalf("append completed (%v) before any fsync", f.Err())
	case <-time.After(200 * time.Millisecond): // 40 ticks
	}
	if ci := l.CommittedIndex(); ci >= f.Index() {
		t.Fatalf("committed %d before any fsync", ci)
	}
	open.Store(true)
	if err := f.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

// inbox is a node's receiver that can be shut: messages are dropped before
// they reach the node (unlike InmemNetwork.Cut, nothing already in flight
// gets through later).
type inbox struct {
	*Node
	shut atomic.Bool
}

func (b *inbox) Step(m Message) error {
	if b.shut.Load() {
		return nil
	}
	return b.Node.Step(m)
}

// While every follower has its tail batch in flight, a proposal does not
// wake the node's goroutine (nothing could be sent before an answer): it
// is taken on the goroutine's next turn, or at once when the queue holds a
// full batch.
func TestNodeProposalsWaitForAnswerWhileTailInFlight(t *testing.T) {
	fc := clock.NewFake(time.Unix(0, 0))
	nw := NewInmemNetwork()
	defer nw.Close()
	ids := []string{"n0", "n1", "n2"}
	peers := map[string]string{}
	for _, id := range ids {
		peers[id] = id + ":0"
	}
	nodes := map[string]*Node{}
	inboxes := map[string]*inbox{}
	stores := map[string]*MemoryStorage{}
	for i, id := range ids {
		stores[id] = NewMemoryStorage(0)
		n, err := NewNode(Config{SelfID: id, Peers: peers, Storage: stores[id], Transport: nw.Transport(id),
			Clock: fc, Seed: uint64(i + 1), MaxBatchEntries: 4})
		if err != nil {
			t.Fatal(err)
		}
		defer n.Stop()
		nodes[id] = n
		inboxes[id] = &inbox{Node: n}
		nw.Register(id, inboxes[id])
	}
	var l *Node
	waitFor(t, 10*time.Second, "a leader with both followers replicating", func() bool {
		fc.Advance(DefaultTickInterval)
		time.Sleep(time.Millisecond)
		for _, n := range nodes {
			if n.IsLeader() {
				l = n
			}
		}
		if l == nil {
			return false
		}
		st := l.Status()
		for _, p := range st.Peers {
			if !p.Replicating || p.Inflight > 0 || p.MatchIndex < st.CommittedIndex || st.CommittedIndex < 0 {
				return false
			}
		}
		return true
	})
	// From now on the leader hears nothing: its tail batches stay in
	// flight and, with the clock stopped, nothing else makes it turn.
	// Two status round trips: the second starts after the first's turn
	// drained every message received before the inbox shut.
	inboxes[l.ID()].shut.Store(true)
	l.Status()
	l.Status()
	ls := stores[l.ID()]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fa, err := l.Propose(ctx, [][]byte{[]byte("a")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the first proposal written", func() bool { return ls.LastIndex() == fa.Index() })
	fb, err := l.Propose(ctx, [][]byte{[]byte("b")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if last := ls.LastIndex(); last != fa.Index() {
		t.Fatalf("proposal taken (log ends at %d) while both followers' tail batches were in flight", last)
	}
	// A full batch (MaxBatchEntries) wakes it.
	fc2, err := l.Propose(ctx, [][]byte{[]byte("c"), []byte("d"), []byte("e")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "a full batch taken", func() bool { return ls.LastIndex() == fc2.LastIndex() })
	inboxes[l.ID()].shut.Store(false)
	waitFor(t, 10*time.Second, "everything committed", func() bool {
		fc.Advance(DefaultTickInterval)
		time.Sleep(time.Millisecond)
		return l.CommittedIndex() >= fc2.LastIndex()
	})
	for _, f := range []*Future{fa, fb, fc2} {
		if err := f.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// noticeWatch checks, for every commit-only notice its node sends, that
// the node had already published that commit (and so completed the
// appends it covers).
type noticeWatch struct {
	inner     Transport
	node      atomic.Pointer[Node]
	seen, bad atomic.Int64
}

func (w *noticeWatch) Send(m Message) {
	if n := w.node.Load(); n != nil && m.CommitOnly {
		w.seen.Add(1)
		if n.CommittedIndex() < m.Commit {
			w.bad.Add(1)
		}
	}
	w.inner.Send(m)
}

// A leader writes commit-only notices after completing the appends the
// commit covers: they are on no one's critical path, and with a single
// appender every commit brings one (a transport write ahead of the
// appender's answer).
func TestCommitNoticesFollowCompletion(t *testing.T) {
	var mu sync.Mutex
	watches := map[string]*noticeWatch{}
	c := newCluster(t, 3, func(cfg *Config) {
		w := &noticeWatch{inner: cfg.Transport}
		mu.Lock()
		watches[cfg.SelfID] = w
		mu.Unlock()
		cfg.Transport = w
	})
	for id, w := range watches {
		w.node.Store(c.nodes[id])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// One appender: each append commits on its own. Notices are sent at
	// most once per tick and follower: append until enough were seen.
	seenAll := func() (n int64) {
		for _, w := range watches {
			n += w.seen.Load()
		}
		return n
	}
	for i := 0; i < 20000 && seenAll() < 20; i++ {
		f, err := c.waitLeader().Propose(ctx, [][]byte{[]byte("x")}, nil)
		if err == nil {
			err = f.Wait(ctx)
		}
		if err != nil && !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrLeadershipLost) {
			t.Fatal(err)
		}
	}
	var seen, bad int64
	for _, w := range watches {
		seen += w.seen.Load()
		bad += w.bad.Load()
	}
	if seen < 20 {
		t.Fatalf("only %d commit-only notices", seen)
	}
	if bad > 0 {
		t.Fatalf("%d of %d commit-only notices sent before their commit was published", bad, seen)
	}
}
