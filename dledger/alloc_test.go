package dledger

import (
	"context"
	"testing"
	"time"
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
