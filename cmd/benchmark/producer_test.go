package main

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
	"unsafe"

	"github.com/rmqd/rmqd/remoting"
)

// Addressing a worker's reused request allocates nothing, and the born
// timestamp is formatted once per millisecond for all workers: the second
// worker sending in the same millisecond uses the first one's string.
func TestPrepareSharesBornTimestamp(t *testing.T) {
	p := &ownProducer{o: &producerOpts{queues: 8, group: "G", common: common{topic: "T"}}, body: makeBody(16)}
	a, b := p.newRequest(), p.newRequest()
	q := &queueRef{brokerName: "broker-a", queueID: 3, queueIDStr: "3"}
	now := time.UnixMilli(1_700_000_000_123)
	a.prepare(q, now)
	b.prepare(q, now)
	ga, gb := a.cmd.ExtFields.Get("g"), b.cmd.ExtFields.Get("g")
	if ga != "1700000000123" || unsafe.StringData(ga) != unsafe.StringData(gb) {
		t.Fatalf("born timestamps %q and %q not one shared string", ga, gb)
	}
	if a.cmd.ExtFields.Get("e") != "3" || a.cmd.ExtFields.Get("n") != "broker-a" || a.cmd.ExtFields.Len() != 13 {
		t.Fatalf("request fields: %v", &a.cmd.ExtFields)
	}
	later := now.Add(time.Millisecond)
	if allocs := testing.AllocsPerRun(100, func() { a.prepare(q, now); b.prepare(q, now) }); allocs != 0 {
		t.Errorf("prepare within a millisecond: %.1f allocs", allocs)
	}
	// A new millisecond: one string (and its holder) for both workers.
	if allocs := testing.AllocsPerRun(100, func() {
		later = later.Add(time.Millisecond)
		a.prepare(q, later)
		b.prepare(q, later)
	}); allocs > 2 {
		t.Errorf("prepare in a new millisecond: %.1f allocs for two workers, want <= 2", allocs)
	}
	var enc []byte
	if allocs := testing.AllocsPerRun(100, func() {
		var err error
		if enc, err = remoting.Encode(enc[:0], &a.cmd); err != nil {
			t.Fatal(err)
		}
	}); allocs != 0 {
		t.Errorf("encoding the request: %.1f allocs", allocs)
	}
}

// leanRuntime sets what it is given and leaves what is 0.
func TestLeanRuntime(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	gc := debug.SetGCPercent(100)
	debug.SetGCPercent(gc)
	defer func() {
		runtime.GOMAXPROCS(procs)
		debug.SetGCPercent(gc)
	}()
	leanRuntime(1, 400)
	if runtime.GOMAXPROCS(0) != 1 || debug.SetGCPercent(400) != 400 {
		t.Fatalf("GOMAXPROCS %d, GOGC not 400", runtime.GOMAXPROCS(0))
	}
	leanRuntime(0, 0)
	if runtime.GOMAXPROCS(0) != 1 || debug.SetGCPercent(400) != 400 {
		t.Fatal("leanRuntime(0, 0) changed the settings")
	}
}

// The workers share one histogram per P.
func TestStatsPerP(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	if n := len(newStats(64)); n != 1 {
		t.Fatalf("64 workers on one P: %d histograms, want 1", n)
	}
	runtime.GOMAXPROCS(2)
	if n, m := len(newStats(64)), len(newStats(1)); n != 2 || m != 1 {
		t.Fatalf("two Ps: %d histograms for 64 workers, %d for one; want 2 and 1", n, m)
	}
}
