package dledgertest

import (
	"os"

	"go.uber.org/zap"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmqd/rmqd/dledger/internal/simflag"
)

// TestSimSweep runs seeds 1..-sim.seeds (or only -sim.seed) through the
// deterministic simulator with every invariant checked after each step.
func TestSimSweep(t *testing.T) {
	if seed := simflag.Seed(); seed != 0 {
		o := Randomize(seed)
		if os.Getenv("SIM_LOG") != "" {
			o.Logger, _ = zap.NewDevelopment()
		}
		r := Run(o)
		t.Logf("seed %d: %+v", seed, Randomize(seed))
		t.Logf("delivered=%d acked=%d committed=%d elections=%d crashes=%d trace=%x",
			r.Delivered, r.Acked, r.Committed, r.Elections, r.Crashes, r.TraceHash)
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		return
	}
	n := simflag.Seeds()
	var next atomic.Uint64
	var failed atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	var acked, elections, slowDelivered int
	var slowest time.Duration
	var slowSeed uint64
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				seed := next.Add(1)
				if seed > uint64(n) || failed.Load() > 5 {
					return
				}
				start := time.Now()
				r := Run(Randomize(seed))
				d := time.Since(start)
				mu.Lock()
				if d > slowest {
					slowest, slowSeed, slowDelivered = d, seed, r.Delivered
				}
				acked += r.Acked
				elections += r.Elections
				if r.Err != nil {
					failed.Add(1)
					t.Errorf("%v\nreplay: go test ./dledger/dledgertest -run TestSimSweep -sim.seed=%d -v", r.Err, seed)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("%d seeds: %d acknowledged proposals, %d elections; slowest seed %d (%v, %d messages)",
		n, acked, elections, slowSeed, slowest, slowDelivered)
}

// TestSimDeterminism runs one seed twice: the traces must be identical.
func TestSimDeterminism(t *testing.T) {
	for _, seed := range []uint64{1, 7, 42, 1000} {
		o := Randomize(seed)
		if seed == 1000 { // the file store (and CrashClone's torn tails) too
			o.FileStore, o.FileSize, o.SyncMode = true, 5000, true
		}
		a, b := Run(o), Run(o)
		if a.TraceHash != b.TraceHash || a.Delivered != b.Delivered {
			t.Fatalf("seed %d: trace %x/%d vs %x/%d", seed, a.TraceHash, a.Delivered, b.TraceHash, b.Delivered)
		}
	}
}
