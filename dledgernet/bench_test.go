package dledgernet

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmqd/rmqd/dledger"
	"github.com/rmqd/rmqd/dledger/logstore"
	"github.com/rmqd/rmqd/internal/vfs"
)

// BenchmarkLoopback: three in-process nodes over real loopback sockets,
// each with the file log store in a temp dir, 1 KiB entries, C concurrent
// appenders each proposing one entry and waiting for its commit.
// Reports appends/s and p50/p99 commit latency.
//
//	go test -run '^$' -bench BenchmarkLoopback -count 3 ./dledgernet
//
// (For throughput use the default -benchtime; see BenchmarkHashicorp.)
func BenchmarkLoopback(b *testing.B) {
	for _, sync := range []bool{false, true} {
		for _, c := range []int{1, 16, 64} {
			mode := "async"
			if sync {
				mode = "sync"
			}
			b.Run(fmt.Sprintf("mode=%s/appenders=%d", mode, c), func(b *testing.B) {
				benchGroup(b, sync, c)
			})
		}
	}
}

func fileGroup(b *testing.B, syncMode bool) (*group, func()) {
	dir := b.TempDir()
	addrs := freePorts(b, 3)
	g := &group{t: b, peers: map[string]string{}, nodes: map[string]*dledger.Node{}, trs: map[string]*Transport{},
		stores: map[string]*dledger.MemoryStorage{}}
	var stores []*logstore.Store
	for i, a := range addrs {
		id := fmt.Sprintf("n%d", i)
		g.ids = append(g.ids, id)
		g.peers[id] = a
	}
	for _, id := range g.ids {
		st, err := logstore.Open(vfs.Default, filepath.Join(dir, "dledger-"+id), logstore.Config{DataFileSize: 256 << 20, IndexFileSize: 32 << 20})
		if err != nil {
			b.Fatal(err)
		}
		stores = append(stores, st)
		tr, err := New(Config{SelfID: id, Peers: g.peers})
		if err != nil {
			b.Fatal(err)
		}
		n, err := dledger.NewNode(dledger.Config{SelfID: id, Peers: g.peers, Storage: st, Transport: tr, SyncMode: syncMode})
		if err != nil {
			b.Fatal(err)
		}
		if err := tr.Start(n); err != nil {
			b.Fatal(err)
		}
		g.nodes[id], g.trs[id] = n, tr
	}
	return g, func() {
		for _, id := range g.ids {
			g.nodes[id].Stop()
			g.trs[id].Close()
		}
		for _, st := range stores {
			st.Close()
		}
	}
}

func benchGroup(b *testing.B, syncMode bool, appenders int) {
	g, stop := fileGroup(b, syncMode)
	defer stop()
	l := g.waitLeader(10 * time.Second)
	runAppenders(b, appenders, func(ctx context.Context, body []byte) error {
		f, err := l.Propose(ctx, [][]byte{body}, nil)
		if err != nil {
			return err
		}
		return f.Wait(ctx)
	})
}

// runAppenders runs b.N appends over c goroutines and reports throughput
// and commit latency percentiles.
func runAppenders(b *testing.B, c int, appendOne func(ctx context.Context, body []byte) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	body := make([]byte, 1024)
	var next atomic.Int64
	lat := make([][]time.Duration, c)
	var wg sync.WaitGroup
	var failed atomic.Value
	b.ResetTimer()
	f0, m0 := framesSent.Load(), msgsSent.Load()
	cpu0 := cpuTime()
	defer func() {
		b.ReportMetric(float64(framesSent.Load()-f0)/float64(b.N), "frames/op")
		b.ReportMetric(float64(msgsSent.Load()-m0)/float64(b.N), "msgs/op")
		// Process CPU time (all three nodes) per append: less sensitive
		// to a loaded machine than appends/s.
		b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	}()
	start := time.Now()
	for w := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				if err := appendOne(ctx, body); err != nil {
					failed.Store(err)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(err)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "appends/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
}
