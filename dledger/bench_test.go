package dledger

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkInmem: three Nodes over InmemNetwork on MemoryStorage (no
// sockets, no disk): the cost of the core and the driver alone.
//
//	go test -run '^$' -bench BenchmarkInmem -benchtime=20000x ./dledger
func BenchmarkInmem(b *testing.B) {
	for _, c := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("appenders=%d", c), func(b *testing.B) {
			cl := &cluster{t: &testing.T{}, nw: NewInmemNetwork(), nodes: map[string]*Node{}, stores: map[string]*MemoryStorage{},
				events: map[string][]RoleEvent{}}
			for i := range 3 {
				id := fmt.Sprintf("n%d", i)
				cl.ids = append(cl.ids, id)
				cl.stores[id] = NewMemoryStorage(1 << 30)
			}
			for _, id := range cl.ids {
				cl.start(id)
			}
			defer cl.stop()
			var l *Node
			for l == nil {
				l = cl.leader()
				time.Sleep(time.Millisecond)
			}
			ctx := context.Background()
			body := make([]byte, 1024)
			var next atomic.Int64
			lat := make([][]time.Duration, c)
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for w := range c {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						t0 := time.Now()
						f, err := l.Propose(ctx, [][]byte{body}, nil)
						if err != nil {
							b.Error(err)
							return
						}
						if err := f.Wait(ctx); err != nil {
							b.Error(err)
							return
						}
						lat[w] = append(lat[w], time.Since(t0))
					}
				}()
			}
			wg.Wait()
			el := time.Since(start)
			all := slices.Concat(lat...)
			slices.Sort(all)
			b.ReportMetric(float64(b.N)/el.Seconds(), "appends/s")
			b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
		})
	}
}
