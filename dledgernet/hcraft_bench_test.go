package dledgernet

// Comparison baseline only: hashicorp/raft wired like BenchmarkLoopback
// (three in-process nodes, TCP over loopback, 1 KiB entries, C appenders
// each applying one entry and waiting for its commit). hashicorp/raft has no
// file log store of its own, so it runs on raft.InmemStore: compare it with
// BenchmarkLoopbackMem (our nodes on MemoryStorage), which does no disk I/O
// either.
//
//	go test -run '^$' -bench 'BenchmarkHashicorp|BenchmarkLoopbackMem' -count 3 ./dledgernet
//
// Compare throughput with Go's default -benchtime (about a second per
// run). A fixed count such as -benchtime=10000x is a 50-100 ms window on
// a group started from empty: buffer growth, the first GC cycles of a
// growing heap and scheduler noise decide it, and hashicorp's own rate
// swings 2x between such runs.

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/rmqd/rmqd/dledger"
)

type nopFSM struct{}

func (nopFSM) Apply(*raft.Log) any                 { return nil }
func (nopFSM) Snapshot() (raft.FSMSnapshot, error) { return nopSnap{}, nil }
func (nopFSM) Restore(r io.ReadCloser) error       { return r.Close() }

type nopSnap struct{}

func (nopSnap) Persist(s raft.SnapshotSink) error { return s.Close() }
func (nopSnap) Release()                          {}

func BenchmarkHashicorp(b *testing.B) {
	for _, c := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("appenders=%d", c), func(b *testing.B) {
			var rafts []*raft.Raft
			var trans []*raft.NetworkTransport
			var servers []raft.Server
			for i := range 3 {
				tr, err := raft.NewTCPTransport("127.0.0.1:0", nil, 8, 5*time.Second, io.Discard)
				if err != nil {
					b.Fatal(err)
				}
				trans = append(trans, tr)
				servers = append(servers, raft.Server{ID: raft.ServerID(fmt.Sprint("n", i)), Address: tr.LocalAddr()})
			}
			for i := range 3 {
				cfg := raft.DefaultConfig()
				cfg.LocalID = servers[i].ID
				cfg.Logger = hclog.NewNullLogger()
				cfg.HeartbeatTimeout = 500 * time.Millisecond
				cfg.ElectionTimeout = 500 * time.Millisecond
				cfg.LeaderLeaseTimeout = 250 * time.Millisecond
				store := raft.NewInmemStore()
				r, err := raft.NewRaft(cfg, nopFSM{}, store, store, raft.NewDiscardSnapshotStore(), trans[i])
				if err != nil {
					b.Fatal(err)
				}
				rafts = append(rafts, r)
			}
			defer func() {
				for _, r := range rafts {
					_ = r.Shutdown().Error()
				}
				for _, t := range trans {
					_ = t.Close()
				}
			}()
			if err := rafts[0].BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
				b.Fatal(err)
			}
			var leader *raft.Raft
			deadline := time.Now().Add(10 * time.Second)
			for leader == nil && time.Now().Before(deadline) {
				for _, r := range rafts {
					if r.State() == raft.Leader {
						leader = r
					}
				}
				time.Sleep(5 * time.Millisecond)
			}
			if leader == nil {
				b.Fatal("no leader")
			}
			runAppenders(b, c, func(ctx context.Context, body []byte) error {
				return leader.Apply(body, 10*time.Second).Error()
			})
		})
	}
}

// BenchmarkLoopbackMem is BenchmarkLoopback (async) on MemoryStorage.
func BenchmarkLoopbackMem(b *testing.B) {
	for _, c := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("appenders=%d", c), func(b *testing.B) {
			g := newGroup(b, nil)
			l := g.waitLeader(10 * time.Second)
			runAppenders(b, c, func(ctx context.Context, body []byte) error {
				f, err := l.Propose(ctx, [][]byte{body}, nil)
				if err != nil {
					return err
				}
				return f.Wait(ctx)
			})
		})
	}
}

var _ = dledger.ErrNotLeader
