package dledger

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"
)

// A follower's turn for one MsgApp (Step, Ready, append, Advance) must not
// allocate beyond its storage's amortized growth: Step's message moved to
// the heap (the handlers are reached through a function value) and every
// Ready's fresh answer slice were two allocations per batch on each
// follower.
func TestFollowerTurnAllocations(t *testing.T) {
	s := NewMemoryStorage(0)
	c := newTestCore(t, "n1", s)
	body := make([]byte, 64)
	const runs = 200
	msgs := make([]Message, runs+1) // AllocsPerRun runs once more to warm up
	var end int64
	for i := range msgs {
		e := Entry{Index: int64(i), Term: 1, Magic: MagicNormal, Body: body}
		e.Pos, end = s.Place(end, e.Size())
		msgs[i] = Message{Type: MsgApp, From: "n0", To: "n1", Term: 1, Index: int64(i) - 1, Commit: int64(i) - 1,
			Hint: -1, Entries: []Entry{e}}
		if i > 0 {
			msgs[i].LogTerm = 1
		}
	}
	k := 0
	allocs := testing.AllocsPerRun(runs, func() {
		if err := c.Step(msgs[k]); err != nil {
			t.Fatal(err)
		}
		k++
		for c.HasReady() {
			rd := c.Ready()
			if len(rd.Entries) > 0 {
				if err := s.Append(rd.Entries); err != nil {
					t.Fatal(err)
				}
			}
			if len(rd.MessagesAfterPersist) != 1 || rd.MessagesAfterPersist[0].Type != MsgAppResp {
				t.Fatalf("answers %v", rd.MessagesAfterPersist)
			}
			c.Advance(rd)
		}
	})
	if c.LastIndex() != runs {
		t.Fatalf("last index %d, want %d", c.LastIndex(), runs)
	}
	if allocs > 0.5 {
		t.Fatalf("%.2f allocations per follower turn, want none beyond amortized growth", allocs)
	}
}

// notify makes a new Watch channel only when the current one was handed
// out: a follower publishes a commit per batch, mostly with nobody
// watching, and a channel per commit was a third of its allocations. A
// channel handed out is still closed by the next change.
func TestNotifyAllocatesOnlyForWatchers(t *testing.T) {
	idle := &Node{watch: make(chan struct{})} // no goroutine allocating meanwhile
	if allocs := testing.AllocsPerRun(100, idle.notify); allocs != 0 {
		t.Fatalf("%.1f allocations per unwatched notify, want 0", allocs)
	}
	c := newCluster(t, 1, nil)
	n := c.waitLeader()
	ch := n.Watch()
	f, err := n.Propose(context.Background(), [][]byte{[]byte("x")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("watch channel not closed by the commit")
	}
	if err := f.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	ch = n.Watch()
	n.notify()
	select {
	case <-ch:
	default:
		t.Fatal("notify did not close a channel handed out")
	}
	if n.Watch() == ch {
		t.Fatal("Watch returned a closed channel")
	}
}

// proposingNode is a leader's Node without its goroutine: the test plays
// the goroutine (takeProposals, complete), so nothing else allocates or
// takes the queue meanwhile.
func proposingNode(t *testing.T) *Node {
	nw := newNet(t, 3, nil)
	nw.elect("n0")
	n := &Node{core: nw.cores["n0"], store: nw.stores["n0"], logger: zap.NewNop(), maxTurnBytes: 1 << 20}
	n.props.sig = make(chan struct{}, 1)
	n.setProposals(true, nil, nil)
	return n
}

// Propose allocates no Future, channel or Positions of its own: they come
// from slabs, and the futures queued between two takes share one done
// channel (each was ~1.7 allocations per message at 64 producers, issue 8).
func TestProposeAllocations(t *testing.T) {
	n := proposingNode(t)
	ctx := context.Background()
	bodies := [][]byte{make([]byte, 100), make([]byte, 100)}
	allocs := testing.AllocsPerRun(500, func() {
		if _, err := n.Propose(ctx, bodies, nil); err != nil {
			t.Fatal(err)
		}
	})
	// What is left is the queue's amortized growth and a slab per 64.
	if allocs > 0.25 {
		t.Fatalf("%.2f allocations per two-entry Propose, want at most 0.25", allocs)
	}
}

// Futures proposed between two takes of the queue share a done channel,
// closed once all of them completed, each with its own outcome; a take
// starts a new group, which an older group's completion does not close,
// and Positions stay each future's own.
func TestProposeFuturesShareDoneUntilTaken(t *testing.T) {
	n := proposingNode(t)
	ctx := context.Background()
	propose := func(bodies ...string) *Future {
		t.Helper()
		bs := make([][]byte, len(bodies))
		for i, b := range bodies {
			bs[i] = []byte(b)
		}
		f, err := n.Propose(ctx, bs, nil)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	fa, fb := propose("a1", "a2"), propose("b")
	n.takeProposals()
	fc := propose("c1", "c2")
	if len(n.pending) != 2 || n.pending[0] != fa || n.pending[1] != fb {
		t.Fatalf("pending %v, want the two futures proposed before the take", n.pending)
	}
	// Positions are the entries' own, not shared between futures.
	pa, pb, pc := fa.Positions(), fb.Positions(), fc.Positions()
	if len(pa) != 2 || len(pb) != 1 || len(pc) != 2 || !(pa[0] < pa[1] && pa[1] < pb[0] && pb[0] < pc[0] && pc[0] < pc[1]) {
		t.Fatalf("positions %v %v %v, want increasing, two, one and two", pa, pb, pc)
	}
	if fa.LastIndex() != fa.Index()+1 || fb.Index() != fa.LastIndex()+1 || fc.Index() != fb.Index()+1 {
		t.Fatalf("indexes %d-%d, %d, %d", fa.Index(), fa.LastIndex(), fb.Index(), fc.Index())
	}
	closed := func(f *Future) bool {
		select {
		case <-f.Done():
			return true
		default:
			return false
		}
	}
	errB := errors.New("b failed")
	fa.complete(nil)
	fb.complete(errB)
	if !closed(fa) || !closed(fb) {
		t.Fatal("a group's channel still open after all its futures completed")
	}
	if fa.Err() != nil || fb.Err() != errB {
		t.Fatalf("outcomes %v, %v; want nil, %v", fa.Err(), fb.Err(), errB)
	}
	if closed(fc) || fc.Err() != nil {
		t.Fatal("a future proposed after the take completed with the group before it")
	}
	// A flushed queue (leadership lost) fails its futures and ends their
	// group too.
	n.setProposals(false, ErrLeadershipLost, ErrLeadershipLost)
	if !closed(fc) || !errors.Is(fc.Err(), ErrLeadershipLost) {
		t.Fatalf("queued future not failed by the flush: %v", fc.Err())
	}
}
