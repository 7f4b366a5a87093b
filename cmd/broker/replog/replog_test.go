package replog_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rmqd/rmqd/cmd/broker/replog"
	"github.com/rmqd/rmqd/dledger"
	"github.com/rmqd/rmqd/internal/vfs"
	"github.com/rmqd/rmqd/store"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// group is three replicas (dledger node over an InmemNetwork + message
// store over the adapter) in one process.
type group struct {
	t      testing.TB
	nw     *dledger.InmemNetwork
	ids    []string
	logs   map[string]*dledger.MemoryStorage
	fss    map[string]*vfs.MemFS
	nodes  map[string]*dledger.Node
	stores map[string]*store.MessageStore

	mu     sync.Mutex
	sys    map[string][]string // payloads delivered per replica
	sysPos map[string][]int64
	roles  map[string][]store.ReplicaRole
}

const dataFileSize = 16 * 1024 // small: several files, so end-of-file padding is crossed

// electionTimeout: short for fast tests, but 30 heartbeats, so a loaded
// 2-core machine under -race does not depose a leader in the middle of a
// test's puts (60 ms did, a few times in a hundred runs).
const electionTimeout = 300 * time.Millisecond

func newGroup(t testing.TB) *group {
	g := &group{t: t, nw: dledger.NewInmemNetwork(), logs: map[string]*dledger.MemoryStorage{}, fss: map[string]*vfs.MemFS{},
		nodes: map[string]*dledger.Node{}, stores: map[string]*store.MessageStore{}, sys: map[string][]string{},
		sysPos: map[string][]int64{}, roles: map[string][]store.ReplicaRole{}}
	for i := range 3 {
		id := fmt.Sprintf("n%d", i)
		g.ids = append(g.ids, id)
		g.logs[id] = dledger.NewMemoryStorage(dataFileSize)
		g.fss[id] = vfs.NewMem()
	}
	for _, id := range g.ids {
		g.start(id, -1)
	}
	t.Cleanup(func() {
		for _, id := range g.ids {
			g.stop(id)
		}
		g.nw.Close()
	})
	return g
}

func (g *group) start(id string, replayFrom int64) {
	peers := map[string]string{}
	for _, p := range g.ids {
		peers[p] = p + ":0"
	}
	n, err := dledger.NewNode(dledger.Config{SelfID: id, Peers: peers, Storage: g.logs[id], Transport: g.nw.Transport(id),
		TickInterval: 5 * time.Millisecond, HeartbeatInterval: 10 * time.Millisecond, ElectionTimeout: electionTimeout})
	if err != nil {
		g.t.Fatal(err)
	}
	g.nodes[id] = n
	g.nw.Register(id, n)
	s, err := store.Open(testStoreConfig(g.t, id, g.fss[id], replog.New(n, g.logs[id])))
	if err != nil {
		g.t.Fatal(err)
	}
	s.SetSystemRecordHandler(func(pos int64, payload []byte) {
		g.mu.Lock()
		g.sys[id] = append(g.sys[id], string(payload))
		g.sysPos[id] = append(g.sysPos[id], pos)
		g.mu.Unlock()
	})
	if replayFrom >= 0 {
		if _, err := s.ReplaySystemRecordsFrom(replayFrom); err != nil {
			g.t.Fatal(err)
		}
	}
	s.SetRoleListener(func(r store.ReplicaRole) {
		g.mu.Lock()
		g.roles[id] = append(g.roles[id], r)
		g.mu.Unlock()
	})
	if err := s.Start(); err != nil {
		g.t.Fatal(err)
	}
	g.stores[id] = s
}

// stop shuts a replica down (store, then node); its log survives like a
// process crash's page cache (Copy).
func (g *group) stop(id string) {
	if s := g.stores[id]; s != nil {
		s.Shutdown()
		delete(g.stores, id)
	}
	if n := g.nodes[id]; n != nil {
		g.nw.Register(id, nil)
		n.Stop()
		delete(g.nodes, id)
		g.logs[id] = g.logs[id].Copy()
	}
}

// testStoreConfig is a small-file store over fs and the replicated log rl.
func testStoreConfig(t testing.TB, id string, fs vfs.FS, rl store.ReplicatedLog) store.Config {
	cfg := store.DefaultConfig("/store")
	cfg.FS = fs
	cfg.MappedFileSizeCommitLog = dataFileSize
	cfg.MappedFileSizeConsumeQueue = 100 * store.CQUnitSize
	cfg.MaxHashSlotNum = 1000
	cfg.MaxIndexNum = 4000
	cfg.FlushInterval = 10 * time.Millisecond
	cfg.FlushConsumeQueueInterval = 10 * time.Millisecond
	cfg.StoreHost = "10.0.0.1:10911"
	if _, bench := t.(*testing.B); bench {
		cfg.Logger = zap.NewNop()
	} else {
		cfg.Logger = zaptest.NewLogger(t).Named(id)
	}
	cfg.ReplicatedLog = rl
	cfg.ReplicationTimeout = 2 * time.Second
	return cfg
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// leader waits for a writable leader and returns its id.
func (g *group) leader(except ...string) string {
	g.t.Helper()
	var id string
	waitFor(g.t, 5*time.Second, "a writable leader", func() bool {
		for _, cand := range g.ids {
			skip := false
			for _, e := range except {
				skip = skip || e == cand
			}
			if s := g.stores[cand]; s != nil && !skip && s.IsLeader() {
				id = cand
				return true
			}
		}
		return false
	})
	return id
}

func msg(topic string, qid int32, i int, tags string) *store.Message {
	m := &store.Message{Topic: topic, QueueID: qid, Body: []byte(fmt.Sprintf("body-%d", i)), BornTimestamp: 1700000000000,
		BornHost: "192.168.1.2:50000"}
	if tags != "" {
		m.SetProperty(store.PropertyTags, tags)
	}
	m.SetProperty(store.PropertyKeys, fmt.Sprintf("k%d", i))
	return m
}

// units returns a queue's consume-queue units.
func units(t testing.TB, s *store.MessageStore, topic string, qid int32) []store.CQUnit {
	t.Helper()
	u, err := s.GetConsumeQueueUnits(topic, qid, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func sameUnits(a, b []store.CQUnit) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// converged waits until every running replica has the leader's units.
func (g *group) converged(leader, topic string, qid int32, want int) {
	g.t.Helper()
	waitFor(g.t, 5*time.Second, "replicas to converge", func() bool {
		lu := units(g.t, g.stores[leader], topic, qid)
		if len(lu) != want {
			return false
		}
		for id, s := range g.stores {
			if id != leader && !sameUnits(units(g.t, s, topic, qid), lu) {
				return false
			}
		}
		return true
	})
}

func TestReplicatedPutDispatchesOnEveryReplica(t *testing.T) {
	g := newGroup(t)
	ld := g.leader()
	s := g.stores[ld]
	ctx := context.Background()
	var last store.PutMessageResult
	for i := range 300 { // several 64 KiB data files: padding is skipped
		r := s.PutMessage(ctx, msg("T", int32(i%2), i, "a"))
		if r.Status != store.PutOK {
			t.Fatalf("put %d: %v %v", i, r.Status, r.Err)
		}
		if r.QueueOffset != int64(i/2) {
			t.Fatalf("put %d: queue offset %d", i, r.QueueOffset)
		}
		last = r
	}
	// A batch: one entry per message, consecutive queue offsets.
	batch := []*store.Message{msg("T", 0, 1000, "b"), msg("T", 0, 1001, "b"), msg("T", 0, 1002, "b")}
	r := s.PutMessages(ctx, batch)
	if r.Status != store.PutOK || r.QueueOffset != 150 || r.MsgNum != 3 {
		t.Fatalf("batch: %+v", r)
	}
	if r.WroteOffset <= last.WroteOffset {
		t.Fatalf("batch wrote at %d after %d", r.WroteOffset, last.WroteOffset)
	}
	g.converged(ld, "T", 0, 153)
	g.converged(ld, "T", 1, 150)
	// Every record sits at entry position + 48 and says so.
	for id, st := range g.stores {
		for _, u := range units(t, st, "T", 0) {
			m, err := st.LookMessageByOffset(u.CommitLogOffset)
			if err != nil || m.CommitLogOffset != u.CommitLogOffset || m.QueueOffset != u.QueueOffset {
				t.Fatalf("%s: unit %+v: %v %+v", id, u, err, m)
			}
		}
		gr := st.GetMessage("g", "T", 0, 150, 32, 0, nil)
		if gr.Status != store.Found || gr.MsgCount != 3 {
			t.Fatalf("%s: pull %v %d", id, gr.Status, gr.MsgCount)
		}
	}
	// Followers refuse puts with NotLeader naming the leader.
	for id, st := range g.stores {
		if id == ld {
			continue
		}
		r := st.PutMessage(ctx, msg("T", 0, 0, ""))
		if r.Status != store.NotLeader || r.Leader != ld || st.IsLeader() {
			t.Fatalf("%s: follower put: %v leader %q", id, r.Status, r.Leader)
		}
		if st.Role().LeaderID != ld || st.ReplicationStatus().Role != "FOLLOWER" {
			t.Fatalf("%s: role %+v status %+v", id, st.Role(), st.ReplicationStatus())
		}
	}
	if rs := s.ReplicationStatus(); rs.Role != "LEADER" || rs.CommittedIndex != rs.LedgerEndIndex || len(rs.Peers) != 2 {
		t.Fatalf("leader status %+v", rs)
	}
}

func TestLeaderChangeKeepsQueueOffsetsDense(t *testing.T) {
	g := newGroup(t)
	ctx := context.Background()
	old := g.leader()
	for i := range 20 {
		if r := g.stores[old].PutMessage(ctx, msg("D", 0, i, "")); r.Status != store.PutOK {
			t.Fatalf("put %d: %v", i, r.Status)
		}
	}
	// Cut the leader off: its puts cannot commit; it steps down (check
	// quorum) and they fail with NotLeader (or time out), never OK.
	g.nw.Isolate(old)
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := g.stores[old].PutMessage(ctx, msg("D", 0, 100+i, ""))
			if r.Status == store.PutOK {
				t.Errorf("isolated leader acknowledged a put")
			}
		}()
	}
	ld := g.leader(old)
	for i := 20; i < 40; i++ {
		r := g.stores[ld].PutMessage(ctx, msg("D", 0, i, ""))
		if r.Status != store.PutOK || r.QueueOffset != int64(i) {
			t.Fatalf("put %d on the new leader: %v offset %d", i, r.Status, r.QueueOffset)
		}
	}
	wg.Wait()
	// The isolated leader appended entries it could not commit.
	if st := g.nodes[old].Status(); st.LedgerEndIndex <= st.CommittedIndex {
		t.Fatalf("no uncommitted tail on the isolated leader: %+v", st)
	}
	g.nw.Heal()
	// The old leader's uncommitted tail is truncated, never dispatched:
	// every replica ends with the same 40 dense units.
	g.converged(ld, "D", 0, 40)
	for _, u := range units(t, g.stores[old], "D", 0) {
		m, err := g.stores[old].LookMessageByOffset(u.CommitLogOffset)
		if err != nil || string(m.Body) != fmt.Sprintf("body-%d", u.QueueOffset) {
			t.Fatalf("old leader unit %d: %v %q", u.QueueOffset, err, m.Body)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	sawLeader := false
	for _, r := range g.roles[ld] {
		sawLeader = sawLeader || r.Leader
	}
	if !sawLeader {
		t.Fatalf("no leader event on %s: %+v", ld, g.roles[ld])
	}
	if rs := g.roles[old]; len(rs) == 0 || rs[len(rs)-1].Leader {
		t.Fatalf("old leader's last event %+v", rs)
	}
}

func TestSystemRecordsInOrderEverywhereAndReplayed(t *testing.T) {
	g := newGroup(t)
	ctx := context.Background()
	ld := g.leader()
	var want []string
	var positions []int64
	for i := range 10 {
		p := fmt.Sprintf("op-%d", i)
		pos, err := g.stores[ld].ProposeSystem(ctx, []byte(p))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, p)
		positions = append(positions, pos)
		// Interleave ordinary messages.
		g.stores[ld].PutMessage(ctx, msg("S", 0, i, ""))
	}
	g.mu.Lock()
	if fmt.Sprint(g.sys[ld]) != fmt.Sprint(want) {
		t.Fatalf("leader applied %v before ProposeSystem returned", g.sys[ld])
	}
	g.mu.Unlock()
	waitFor(t, 5*time.Second, "system records on every replica", func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		for _, id := range g.ids {
			if fmt.Sprint(g.sys[id]) != fmt.Sprint(want) || fmt.Sprint(g.sysPos[id]) != fmt.Sprint(positions) {
				return false
			}
		}
		return true
	})
	for id, s := range g.stores {
		if id != ld {
			if _, err := s.ProposeSystem(ctx, []byte("x")); err == nil {
				t.Fatalf("%s: follower accepted a system record", id)
			}
		}
	}
	// Restart a follower: a snapshot covering up to positions[5] plus the
	// replay from positions[6] gives the same sequence.
	var f string
	for _, id := range g.ids {
		if id != ld {
			f = id
		}
	}
	g.stop(f)
	g.mu.Lock()
	g.sys[f], g.sysPos[f] = nil, nil
	g.mu.Unlock()
	g.start(f, positions[6])
	g.mu.Lock()
	got := fmt.Sprint(g.sys[f])
	g.mu.Unlock()
	if got != fmt.Sprint(want[6:]) {
		t.Fatalf("replayed %s, want %v", got, want[6:])
	}
	p, err := g.stores[g.leader()].ProposeSystem(ctx, []byte("after"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "new record on the restarted replica", func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		n := len(g.sys[f])
		return n > 0 && g.sys[f][n-1] == "after" && g.sysPos[f][n-1] == p && n == 5
	})
}

func TestRestartRedispatchesAndKeepsUnits(t *testing.T) {
	g := newGroup(t)
	ctx := context.Background()
	ld := g.leader()
	for i := range 50 {
		if r := g.stores[ld].PutMessage(ctx, msg("R", 0, i, "")); r.Status != store.PutOK {
			t.Fatal(r.Status)
		}
	}
	g.converged(ld, "R", 0, 50)
	// Restart every replica.
	for _, id := range g.ids {
		g.stop(id)
	}
	for _, id := range g.ids {
		g.start(id, -1)
	}
	ld = g.leader()
	r := g.stores[ld].PutMessage(ctx, msg("R", 0, 50, ""))
	if r.Status != store.PutOK || r.QueueOffset != 50 {
		t.Fatalf("after restart: %v offset %d", r.Status, r.QueueOffset)
	}
	g.converged(ld, "R", 0, 51)
}

func TestLeaderCrashAndRejoin(t *testing.T) {
	g := newGroup(t)
	ctx := context.Background()
	old := g.leader()
	for i := range 30 {
		if r := g.stores[old].PutMessage(ctx, msg("K", 0, i, "")); r.Status != store.PutOK {
			t.Fatal(r.Status)
		}
	}
	g.stop(old) // a crash that keeps the page cache
	ld := g.leader(old)
	for i := 30; i < 60; i++ {
		if r := g.stores[ld].PutMessage(ctx, msg("K", 0, i, "")); r.Status != store.PutOK || r.QueueOffset != int64(i) {
			t.Fatalf("put %d: %v offset %d", i, r.Status, r.QueueOffset)
		}
	}
	g.start(old, -1)
	g.converged(ld, "K", 0, 60)
}
