package dledger

import (
	"context"
	"errors"
	"testing"
	"time"
)

// The clamp: a follower may drop what it has committed; the leader only
// what every follower has stored, unless forced by disk pressure.
func TestCompactLimit(t *testing.T) {
	nw := newNet(t, 3, nil)
	nw.elect("n0")
	nw.propose("n0", "a", "b", "c")
	nw.isolate("n2")
	nw.propose("n0", "d", "e")
	nw.tick(1)
	l, f := nw.cores["n0"], nw.cores["n1"]
	committed := l.log.committed
	if committed < 5 {
		t.Fatalf("leader committed %d, want the 5 entries and the no-op", committed)
	}
	n2match := l.prs["n2"].match
	if n2match >= committed {
		t.Fatalf("isolated n2 matches %d, leader committed %d: the test isolates nothing", n2match, committed)
	}
	if lim, by := l.compactLimit(false); lim != n2match || by != "n2" {
		t.Fatalf("leader limit %d held by %q, want %d (n2's match: the predecessor of what it is sent next) held by n2", lim, by, n2match)
	}
	if lim, by := l.compactLimit(true); lim != committed+1 || by != "" {
		t.Fatalf("forced leader limit %d held by %q, want %d", lim, by, committed+1)
	}
	if lim, by := f.compactLimit(false); lim != f.log.committed+1 || by != "" {
		t.Fatalf("follower limit %d held by %q, want its commit %d + 1", lim, by, f.log.committed)
	}
	nw.heal()
	nw.tick(2)
	if lim, by := l.compactLimit(false); lim != l.log.committed {
		t.Fatalf("healed leader limit %d held by %q, want %d (the followers' match)", lim, by, l.log.committed)
	}
}

// compactingStorage records what Compact passes to DeleteBefore.
type compactingStorage struct {
	*MemoryStorage
	asked chan int64
}

func (s compactingStorage) DeleteBefore(index int64) (int, error) {
	s.asked <- index
	return 1, nil
}

func TestNodeCompact(t *testing.T) {
	st := compactingStorage{NewMemoryStorage(1 << 20), make(chan int64, 4)}
	nw := NewInmemNetwork()
	n, err := NewNode(Config{SelfID: "n0", Peers: map[string]string{"n0": "n0:0"}, Storage: st, Transport: nw.Transport("n0"),
		TickInterval: 5 * time.Millisecond, HeartbeatInterval: 10 * time.Millisecond, ElectionTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var f *Future
	for f == nil {
		if f, err = n.Propose(ctx, [][]byte{[]byte("x"), []byte("y")}, nil); err != nil && !errors.Is(err, ErrNotLeader) {
			t.Fatal(err)
		}
		if ctx.Err() != nil {
			t.Fatal("no leadership")
		}
		time.Sleep(5 * time.Millisecond)
	}
	<-f.Done()
	if f.Err() != nil {
		t.Fatal(f.Err())
	}
	res, err := n.Compact(ctx, 100, false)
	if err != nil {
		t.Fatal(err)
	}
	committed := n.CommittedIndex()
	if res.Asked != 100 || res.Allowed != committed+1 || res.Files != 1 || <-st.asked != committed+1 {
		t.Fatalf("Compact(100) = %+v with commit %d: want it clamped to %d and passed to the storage", res, committed, committed+1)
	}
	res, err = n.Compact(ctx, 1, false)
	if err != nil || res.Allowed != 1 || <-st.asked != 1 {
		t.Fatalf("Compact(1) = %+v, %v", res, err)
	}

	plain, err := NewNode(Config{SelfID: "n1", Peers: map[string]string{"n1": "n1:0"}, Storage: NewMemoryStorage(1 << 20),
		Transport: nw.Transport("n1"), TickInterval: 5 * time.Millisecond, HeartbeatInterval: 10 * time.Millisecond, ElectionTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Stop()
	if _, err := plain.Compact(ctx, 1, false); !errors.Is(err, ErrNoCompaction) {
		t.Fatalf("Compact on a storage without DeleteBefore: %v, want ErrNoCompaction", err)
	}
}

// A replication error repeated for the same peer is logged once per 10
// election timeouts.
func TestShouldReportRateLimits(t *testing.T) {
	c := newTestCore(t, "n0", NewMemoryStorage(0))
	if !c.shouldReport("n1") || c.shouldReport("n1") || !c.shouldReport("n2") {
		t.Fatal("first report per peer not logged, or a repeat logged at once")
	}
	c.ticks += int64(10*c.electionTimeout) - 1
	if c.shouldReport("n1") {
		t.Fatal("repeat logged before 10 election timeouts")
	}
	c.ticks++
	if !c.shouldReport("n1") {
		t.Fatal("repeat not logged after 10 election timeouts")
	}
}
