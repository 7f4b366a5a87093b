package dledger

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmqd/rmqd/internal/clock"
)

// failingStorage fails every Append once armed.
type failingStorage struct {
	*MemoryStorage
	armed atomic.Bool
}

var errDisk = errors.New("disk on fire")

func (s *failingStorage) Append(ents []Entry) error {
	if s.armed.Load() {
		return errDisk
	}
	return s.MemoryStorage.Append(ents)
}

// A storage failure stops the node and fails its pending appends with the
// storage error; the rest of the group carries on.
func TestNodeStorageFailureStopsNode(t *testing.T) {
	c := newCluster(t, 3, nil)
	l := c.waitLeader()
	id := l.ID()
	fs := &failingStorage{MemoryStorage: c.stores[id]}
	// Restart the leader's node on the failing storage.
	c.kill(id)
	c.stores[id] = fs.MemoryStorage
	peers := map[string]string{"n0": "", "n1": "", "n2": ""}
	n, err := NewNode(Config{SelfID: id, Peers: peers, Storage: fs, Transport: c.nw.Transport(id),
		TickInterval: 5 * time.Millisecond, HeartbeatInterval: 10 * time.Millisecond, ElectionTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c.nodes[id] = n
	c.nw.Register(id, n)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	waitFor(t, 5*time.Second, "a leader", func() bool { return c.leader() != nil })
	fs.armed.Store(true)
	// Whoever leads, the failing node dies as soon as it must append.
	for range 50 {
		f, err := c.propose(ctx, "x")
		if err == nil {
			_ = f.Wait(ctx)
		}
		select {
		case <-n.Done():
		default:
			continue
		}
		break
	}
	select {
	case <-n.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("node did not stop on storage failure")
	}
	if st := n.Status(); !errors.Is(st.Err, errDisk) {
		t.Fatalf("status err %v", st.Err)
	}
	if _, err := n.Propose(ctx, [][]byte{[]byte("y")}, nil); err == nil {
		t.Fatal("propose on a failed node succeeded")
	}
	n.Stop()
	delete(c.nodes, id)
	c.nw.Register(id, nil)
}

// With a manual clock, nothing happens until time moves; one node alone
// elects itself after the randomized election timeout.
func TestNodeFakeClockSingle(t *testing.T) {
	fc := clock.NewFake(time.Unix(0, 0))
	nw := NewInmemNetwork()
	defer nw.Close()
	s := NewMemoryStorage(0)
	var events atomic.Int32
	n, err := NewNode(Config{SelfID: "a", Peers: map[string]string{"a": ""}, Storage: s, Transport: nw.Transport("a"),
		Clock: fc, Seed: 3, OnRoleChange: func(RoleEvent) { events.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	time.Sleep(20 * time.Millisecond)
	if n.IsLeader() {
		t.Fatal("leader without time passing")
	}
	for !n.IsLeader() {
		fc.Advance(DefaultTickInterval)
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f, err := n.Propose(ctx, [][]byte{[]byte("a"), []byte("b")}, func(e *Entry) { e.Body[0] = 'z' })
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if f.LastIndex() != f.Index()+1 || len(f.Positions()) != 2 || f.Term() != 1 || f.Err() != nil {
		t.Fatalf("future %+v", f)
	}
	e, _ := n.Entry(f.LastIndex())
	if string(e.Body) != "z" {
		t.Fatalf("hook not applied: %q", e.Body)
	}
	if err := n.WaitCommitted(ctx, f.LastIndex()); err != nil {
		t.Fatal(err)
	}
	if n.CommittedPos() != e.Pos+e.Size() {
		t.Fatalf("committed pos %d, want %d", n.CommittedPos(), e.Pos+e.Size())
	}
	ents, err := n.Entries(0, 3, 1<<20)
	if err != nil || len(ents) != 3 {
		t.Fatalf("entries %v %v", ents, err)
	}
	if ev := n.Leader(); ev.Role != RoleLeader || ev.Leader != "a" {
		t.Fatalf("leader %+v", ev)
	}
	// Checkpoint of the commit index happens on ticks.
	waitFor(t, 5*time.Second, "checkpoint", func() bool {
		fc.Advance(DefaultTickInterval)
		time.Sleep(time.Millisecond)
		return s.Committed() == f.LastIndex()
	})
	waitFor(t, 2*time.Second, "role events", func() bool { return events.Load() >= 1 })
	if s.Syncs() == 0 {
		t.Fatal("async mode never flushed")
	}
	if err := n.TransferLeadership(ctx, "zz"); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("transfer to unknown: %v", err)
	}
	n.Stop()
	if _, err := n.Propose(ctx, [][]byte{[]byte("c")}, nil); err == nil {
		t.Fatal("propose after stop")
	}
	if err := n.Step(Message{}); !errors.Is(err, ErrStopped) {
		t.Fatalf("step after stop: %v", err)
	}
	if err := n.WaitCommitted(ctx, 100); !errors.Is(err, ErrStopped) {
		t.Fatalf("wait after stop: %v", err)
	}
	if st := n.Status(); st.CommittedIndex != f.LastIndex() {
		t.Fatalf("status after stop %+v", st)
	}
}

// Corruption reported by storage stops the replica from voting or leading.
type corruptStorage struct{ *MemoryStorage }

func (s corruptStorage) Term(i int64) (int64, error) { return 0, ErrCorrupt }

func TestCorruptStorageNeverVotes(t *testing.T) {
	ms := storageWith(1, 1)
	c := newTestCore(t, "n0", nil, func(cfg *CoreConfig) { cfg.Storage = corruptStorage{ms} })
	if c.Status().Broken == nil {
		t.Fatal("corruption not detected")
	}
	for range 50 {
		c.Tick()
	}
	if c.role != RoleFollower {
		t.Fatalf("corrupt replica campaigned: %s", c.role)
	}
	_ = c.Step(Message{Type: MsgVote, From: "n1", To: "n0", Term: 5, Index: 10, LogTerm: 5})
	rd := c.Ready()
	if len(rd.MessagesAfterPersist) != 1 || !rd.MessagesAfterPersist[0].Reject {
		t.Fatalf("corrupt replica voted: %+v", rd.MessagesAfterPersist)
	}
}
