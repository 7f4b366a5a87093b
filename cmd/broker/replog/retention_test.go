package replog_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmqd/rmqd/cmd/broker/replog"
	"github.com/rmqd/rmqd/dledger"
	"github.com/rmqd/rmqd/dledger/logstore"
	"github.com/rmqd/rmqd/internal/vfs"
	"github.com/rmqd/rmqd/store"
)

// fileGroup is three replicas over Java-layout log stores (in memory
// filesystems), a shared fake clock for the message stores.
type fileGroup struct {
	t      *testing.T
	nw     *dledger.InmemNetwork
	ids    []string
	fss    map[string]*vfs.MemFS
	logs   map[string]*logstore.Store
	nodes  map[string]*dledger.Node
	stores map[string]*store.MessageStore
	now    atomic.Int64 // unix ms
}

func newFileGroup(t *testing.T) *fileGroup {
	g := &fileGroup{t: t, nw: dledger.NewInmemNetwork(), fss: map[string]*vfs.MemFS{}, logs: map[string]*logstore.Store{},
		nodes: map[string]*dledger.Node{}, stores: map[string]*store.MessageStore{}}
	g.now.Store(time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC).UnixMilli())
	for i := range 3 {
		id := fmt.Sprintf("n%d", i)
		g.ids = append(g.ids, id)
		g.fss[id] = vfs.NewMem()
	}
	for _, id := range g.ids {
		g.start(id)
	}
	t.Cleanup(func() {
		for _, id := range g.ids {
			g.stop(id)
		}
		g.nw.Close()
	})
	return g
}

func (g *fileGroup) start(id string) {
	peers := map[string]string{}
	for _, p := range g.ids {
		peers[p] = p + ":0"
	}
	ls, err := logstore.Open(g.fss[id], "/dledger", logstore.Config{DataFileSize: dataFileSize, IndexFileSize: 64 * logstore.SlotSize})
	if err != nil {
		g.t.Fatal(err)
	}
	n, err := dledger.NewNode(dledger.Config{SelfID: id, Peers: peers, Storage: ls, Transport: g.nw.Transport(id),
		TickInterval: 5 * time.Millisecond, HeartbeatInterval: 10 * time.Millisecond, ElectionTimeout: electionTimeout})
	if err != nil {
		g.t.Fatal(err)
	}
	g.logs[id], g.nodes[id] = ls, n
	g.nw.Register(id, n)
	cfg := testStoreConfig(g.t, id, g.fss[id], replog.New(n, ls))
	cfg.CleanResourceInterval = time.Hour // retention runs when the test says
	cfg.FileReservedTime = 1
	cfg.Now = func() time.Time { return time.UnixMilli(g.now.Load()) }
	s, err := store.Open(cfg)
	if err != nil {
		g.t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		g.t.Fatal(err)
	}
	g.stores[id] = s
}

func (g *fileGroup) stop(id string) {
	if s := g.stores[id]; s != nil {
		s.Shutdown()
		delete(g.stores, id)
	}
	if n := g.nodes[id]; n != nil {
		g.nw.Register(id, nil)
		n.Stop()
		delete(g.nodes, id)
		if err := g.logs[id].Close(); err != nil {
			g.t.Fatal(err)
		}
	}
}

func (g *fileGroup) leader() string {
	g.t.Helper()
	var id string
	waitFor(g.t, 5*time.Second, "a writable leader", func() bool {
		for _, cand := range g.ids {
			if s := g.stores[cand]; s != nil && s.IsLeader() {
				id = cand
				return true
			}
		}
		return false
	})
	return id
}

func (g *fileGroup) put(id string, from, to int) {
	g.t.Helper()
	for i := from; i < to; i++ {
		if r := g.stores[id].PutMessage(context.Background(), msg("T", 0, i, "")); r.Status != store.PutOK {
			g.t.Fatalf("put %d on %s: %v %v", i, id, r.Status, r.Err)
		}
	}
}

// waitQueue waits until id's queue T/0 reaches n messages.
func (g *fileGroup) waitQueue(id string, n int64) {
	g.t.Helper()
	waitFor(g.t, 10*time.Second, id+" to dispatch every message", func() bool {
		return g.stores[id].GetMaxOffsetInQueue("T", 0) == n
	})
}

// TestReplicatedLogRetention: expired data files of the DLedger log are
// removed by the clean service on every replica; the leader keeps what a
// lagging follower still needs until it has caught up; consume queues move
// their minimum past removed messages, later messages stay readable, and a
// restart over the shortened log recovers.
func TestReplicatedLogRetention(t *testing.T) {
	g := newFileGroup(t)
	ld := g.leader()
	var f1, f2 string
	for _, id := range g.ids {
		if id != ld {
			if f1 == "" {
				f1 = id
			} else {
				f2 = id
			}
		}
	}
	g.put(ld, 0, 100)
	g.waitQueue(f2, 100)
	g.stop(f2) // lags from here
	g.put(ld, 100, 300)
	g.now.Add((2 * time.Hour).Milliseconds()) // messages 0-299 are past fileReservedTime (1 h)
	g.put(ld, 300, 400)
	g.waitQueue(f1, 400)
	g.waitQueue(ld, 400)
	f2match := g.stores[ld].ReplicationStatus().Peers[f2].MatchIndex

	// Nothing below the retention floor (the metadata snapshot's position)
	// goes; then the follower removes every expired file; the leader only
	// what the stopped follower has.
	g.stores[f1].SetRetentionFloor(func() int64 { return 0 })
	if n := g.stores[f1].DeleteExpiredFiles(); n != 0 {
		t.Fatalf("follower %s removed %d files below a retention floor of 0", f1, n)
	}
	g.stores[f1].SetRetentionFloor(func() int64 { return 1 << 62 })
	if n := g.stores[f1].DeleteExpiredFiles(); n == 0 {
		t.Fatalf("follower %s removed no expired file", f1)
	}
	g.stores[ld].DeleteExpiredFiles()
	if first := g.logs[ld].FirstIndex(); first > f2match {
		t.Fatalf("leader's log begins at %d: it dropped entries follower %s (match %d) still needs", first, f2, f2match)
	}
	if g.logs[ld].FirstIndex() >= g.logs[f1].FirstIndex() {
		t.Fatalf("leader begins at %d, follower at %d: the lagging follower held nothing back", g.logs[ld].FirstIndex(), g.logs[f1].FirstIndex())
	}

	// The lagging follower catches up from what the leader kept.
	g.start(f2)
	g.waitQueue(f2, 400)
	// The follower may dispatch before its acknowledgement reached the
	// leader: wait until the leader knows it has everything.
	waitFor(t, 10*time.Second, "the leader to see "+f2+" caught up", func() bool {
		rs := g.stores[ld].ReplicationStatus()
		return rs.Peers[f2].MatchIndex >= rs.CommittedIndex
	})
	g.stores[ld].DeleteExpiredFiles()
	if a, b := g.logs[ld].FirstIndex(), g.logs[f1].FirstIndex(); a != b || a <= 0 {
		t.Fatalf("after the catch-up the leader begins at %d, the follower at %d", a, b)
	}

	for _, id := range []string{ld, f1} {
		s := g.stores[id]
		lo := s.GetMinOffsetInQueue("T", 0)
		if lo <= 0 || lo > 300 {
			t.Fatalf("%s: min offset of T/0 is %d after removing expired files, want in (0, 300]", id, lo)
		}
		if r := s.GetMessage("g", "T", 0, 0, 32, 0, nil); r.Status != store.OffsetTooSmall || r.NextBeginOffset != lo {
			t.Fatalf("%s: pull at 0: %v next %d, want OffsetTooSmall next %d", id, r.Status, r.NextBeginOffset, lo)
		}
		got := 0
		for off := lo; off < 400; {
			r := s.GetMessage("g", "T", 0, off, 32, 0, nil)
			if r.Status != store.Found {
				t.Fatalf("%s: pull at %d: %v", id, off, r.Status)
			}
			got += int(r.MsgCount)
			off = r.NextBeginOffset
		}
		if got != int(400-lo) {
			t.Fatalf("%s: read %d messages from %d, want %d", id, got, lo, 400-lo)
		}
		if s.GetMinPhyOffset() <= 0 {
			t.Fatalf("%s: min physical offset still 0", id)
		}
	}

	// A restart over the shortened log recovers and serves.
	g.stop(ld)
	g.start(ld)
	nl := g.leader()
	g.put(nl, 400, 410)
	for _, id := range g.ids {
		g.waitQueue(id, 410)
	}
}
