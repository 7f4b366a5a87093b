package replog_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/rmqd/rmqd/cmd/broker/replog"
	"github.com/rmqd/rmqd/conf"
	"github.com/rmqd/rmqd/dledger"
	"github.com/rmqd/rmqd/dledgernet"
	"github.com/rmqd/rmqd/store"
	"go.uber.org/zap/zaptest"
)

func freePorts(t *testing.T, n int) []int {
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// TestStartFromConfig runs three replicas the way cmd/broker does (Java
// layout on disk, dledgernet over loopback, SYNC_FLUSH), with a store over
// each, then restarts one from its files.
func TestStartFromConfig(t *testing.T) {
	root := t.TempDir()
	ports := freePorts(t, 3)
	peers := fmt.Sprintf("n0-127.0.0.1:%d;n1-127.0.0.1:%d;n2-127.0.0.1:%d", ports[0], ports[1], ports[2])
	cfgOf := func(i int) *conf.BrokerConfig {
		c := conf.DefaultBroker()
		for k, v := range map[string]string{
			"storePathRootDir": filepath.Join(root, fmt.Sprint("n", i)), "enableDLegerCommitLog": "true",
			"dLegerGroup": "G", "dLegerPeers": peers, "dLegerSelfId": fmt.Sprint("n", i), "flushDiskType": "SYNC_FLUSH",
			"mappedFileSizeCommitLog": "16384", "dLegerElectionTimeoutMs": "300", "dLegerHeartbeatIntervalMs": "50",
		} {
			if err := c.Set(k, v); err != nil {
				t.Fatal(k, err)
			}
		}
		return c
	}
	reps := make([]*replog.Replica, 3)
	stores := make([]*store.MessageStore, 3)
	open := func(i int) {
		c := cfgOf(i)
		r, err := replog.Start(c, zaptest.NewLogger(t).Named(fmt.Sprint("n", i)))
		if err != nil {
			t.Fatal(err)
		}
		sc := store.DefaultConfig(c.StorePathRootDir)
		sc.MappedFileSizeCommitLog = int64(c.MappedFileSizeCommitLog)
		sc.MessageIndexEnable = false
		sc.ReplicatedLog = r.Log
		s, err := store.Open(sc)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		reps[i], stores[i] = r, s
	}
	closeOne := func(i int) {
		stores[i].Shutdown()
		reps[i].Close()
		stores[i], reps[i] = nil, nil
	}
	for i := range 3 {
		open(i)
	}
	defer func() {
		for i := range 3 {
			if stores[i] != nil {
				closeOne(i)
			}
		}
	}()
	leader := -1
	waitFor(t, 10*time.Second, "a writable leader", func() bool {
		for i, s := range stores {
			if s.IsLeader() {
				leader = i
				return true
			}
		}
		return false
	})
	for i := range 300 { // several 16 KiB data files: padding markers
		if r := stores[leader].PutMessage(context.Background(), msg("F", 0, i, "")); r.Status != store.PutOK {
			t.Fatalf("put %d: %v %v", i, r.Status, r.Err)
		}
	}
	f := (leader + 1) % 3
	waitFor(t, 5*time.Second, "follower dispatch", func() bool { return stores[f].GetMaxOffsetInQueue("F", 0) == 300 })
	closeOne(f)
	open(f)
	if n := stores[f].GetMaxOffsetInQueue("F", 0); n != 300 {
		t.Fatalf("restarted follower has %d units", n)
	}
	if rs := stores[leader].ReplicationStatus(); rs.Role != "LEADER" || rs.LedgerEndIndex < 300 {
		t.Fatalf("%+v", rs)
	}
}

// A group of one: the node elects itself and the store becomes writable.
func TestSingleReplicaGroup(t *testing.T) {
	root := t.TempDir()
	port := freePorts(t, 1)[0]
	c := conf.DefaultBroker()
	for k, v := range map[string]string{
		"storePathRootDir": root, "enableDLegerCommitLog": "true", "dLegerGroup": "G",
		"dLegerPeers": fmt.Sprintf("n0-127.0.0.1:%d", port), "dLegerSelfId": "n0", "mappedFileSizeCommitLog": "1048576",
	} {
		if err := c.Set(k, v); err != nil {
			t.Fatal(k, err)
		}
	}
	r, err := replog.Start(c, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sc := store.DefaultConfig(root)
	sc.MappedFileSizeCommitLog = 1 << 20
	sc.MessageIndexEnable = false
	sc.ReplicatedLog = r.Log
	s, err := store.Open(sc)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	waitFor(t, 5*time.Second, "writable", s.IsLeader)
	if res := s.PutMessage(context.Background(), msg("One", 0, 0, "")); res.Status != store.PutOK {
		t.Fatal(res.Status, res.Err)
	}
	waitFor(t, 5*time.Second, "dispatch", func() bool { return s.GetMaxOffsetInQueue("One", 0) == 1 })
}

// An ASYNC_FLUSH replica that follows runs the process on one P, one that
// leads on the runtime's default, and Close restores the default; a
// SYNC_FLUSH replica leaves it at the default. The other two members are
// plain nodes, not replicas of this package: with several replicas in a
// process none sets GOMAXPROCS.
func TestFollowerRunsOnOneP(t *testing.T) {
	for _, tc := range []struct {
		flush    string
		follower int // GOMAXPROCS while following (0: the default)
	}{{"ASYNC_FLUSH", 1}, {"SYNC_FLUSH", 0}} {
		t.Run(tc.flush, func(t *testing.T) { testFollowerProcs(t, tc.flush, tc.follower) })
	}
}

func testFollowerProcs(t *testing.T, flush string, follower int) {
	t.Setenv("GOMAXPROCS", "") // not fixed by the environment
	runtime.SetDefaultGOMAXPROCS()
	def := runtime.GOMAXPROCS(0)
	t.Cleanup(runtime.SetDefaultGOMAXPROCS)
	if follower == 0 {
		follower = def
	}
	ports := freePorts(t, 3)
	addrs := map[string]string{}
	for i, p := range ports {
		addrs[fmt.Sprint("n", i)] = fmt.Sprintf("127.0.0.1:%d", p)
	}
	var nodes []*dledger.Node
	for _, id := range []string{"n1", "n2"} {
		tr, err := dledgernet.New(dledgernet.Config{SelfID: id, Peers: addrs})
		if err != nil {
			t.Fatal(err)
		}
		n, err := dledger.NewNode(dledger.Config{SelfID: id, Peers: addrs, Storage: dledger.NewMemoryStorage(0), Transport: tr,
			TickInterval: 10 * time.Millisecond, HeartbeatInterval: 20 * time.Millisecond, ElectionTimeout: 150 * time.Millisecond,
			PreferredLeaderID: "n1"})
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Start(n); err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		defer n.Stop()
		nodes = append(nodes, n)
	}
	c := conf.DefaultBroker()
	for k, v := range map[string]string{
		"storePathRootDir": t.TempDir(), "enableDLegerCommitLog": "true", "dLegerGroup": "G",
		"dLegerPeers":  fmt.Sprintf("n0-%s;n1-%s;n2-%s", addrs["n0"], addrs["n1"], addrs["n2"]),
		"dLegerSelfId": "n0", "preferredLeaderId": "n1", "dLegerElectionTimeoutMs": "150", "dLegerHeartbeatIntervalMs": "20",
		"flushDiskType": flush,
	} {
		if err := c.Set(k, v); err != nil {
			t.Fatal(k, err)
		}
	}
	r, err := replog.Start(c, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			r.Close()
		}
	}()
	all := append([]*dledger.Node{r.Node}, nodes...)
	// lead makes target the leader (whoever leads hands over; retried
	// while elections settle).
	lead := func(target string) {
		t.Helper()
		waitFor(t, 10*time.Second, target+" leading", func() bool {
			for _, n := range all {
				if !n.IsLeader() {
					continue
				}
				if n.ID() == target {
					return true
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_ = n.TransferLeadership(ctx, target)
				cancel()
			}
			return false
		})
	}
	lead("n1")
	waitFor(t, 10*time.Second, fmt.Sprintf("n0 following on %d P", follower), func() bool {
		return !r.Node.IsLeader() && runtime.GOMAXPROCS(0) == follower
	})
	lead("n0")
	waitFor(t, 10*time.Second, "n0 leading on the default GOMAXPROCS", func() bool {
		return r.Node.IsLeader() && runtime.GOMAXPROCS(0) == def
	})
	lead("n2")
	waitFor(t, 10*time.Second, fmt.Sprintf("n0 following again on %d P", follower), func() bool {
		return !r.Node.IsLeader() && runtime.GOMAXPROCS(0) == follower
	})
	closed = true
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if got := runtime.GOMAXPROCS(0); got != def {
		t.Fatalf("GOMAXPROCS %d after Close, want the default %d", got, def)
	}
}
