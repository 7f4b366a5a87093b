package store

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"
)

// asyncPuts records PutMessageAsync callbacks: every put's results (a
// second call is a failure) and, in order, the callbacks and the flushes
// they left for after them.
type asyncPuts struct {
	t       *testing.T
	mu      sync.Mutex
	results map[int][]PutMessageResult
	order   []string // "cb" per callback, "flush" per Flush
	answers chan struct{}
}

func newAsyncPuts(t *testing.T) *asyncPuts {
	return &asyncPuts{t: t, results: map[int][]PutMessageResult{}, answers: make(chan struct{}, 10000)}
}

type asyncPut struct {
	a *asyncPuts
	i int
}

func (p asyncPut) PutDone(res PutMessageResult, after *AfterPuts) {
	a := p.a
	a.mu.Lock()
	a.results[p.i] = append(a.results[p.i], res)
	a.order = append(a.order, "cb")
	a.mu.Unlock()
	after.Add(p)
	a.answers <- struct{}{}
}

func (p asyncPut) Flush() {
	p.a.mu.Lock()
	p.a.order = append(p.a.order, "flush")
	p.a.mu.Unlock()
}

func (a *asyncPuts) put(s *MessageStore, topic string, qid int32, i int) {
	s.PutMessageAsync(newMsg(topic, qid, i, ""), asyncPut{a, i})
}

// wait waits for n more answers.
func (a *asyncPuts) wait(n int, within time.Duration) {
	a.t.Helper()
	deadline := time.After(within)
	for range n {
		select {
		case <-a.answers:
		case <-deadline:
			a.t.Fatalf("%d puts not answered within %v", n, within)
		}
	}
}

// once returns put i's only result (fails if it was answered more than once).
func (a *asyncPuts) once(i int) PutMessageResult {
	a.t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if n := len(a.results[i]); n != 1 {
		a.t.Fatalf("put %d answered %d times", i, n)
	}
	return a.results[i][0]
}

func (a *asyncPuts) answered() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.results)
}

// Asynchronous puts are answered once their batch commits, not before,
// each exactly once, with dense queue offsets in log order and the offset
// msgId of their record; the flushes the callbacks leave run after the
// callbacks of their batch. No goroutine waits for them meanwhile.
func TestPutMessageAsyncAnsweredAtCommit(t *testing.T) {
	const puts = 300
	rl, s := openReplicatedLeader(t, 5*time.Second)
	defer s.Shutdown()
	a := newAsyncPuts(t)
	goroutines := runtime.NumGoroutine()
	for i := range puts {
		a.put(s, "A", int32(i%2), i) // the first proposes itself, the rest join batches
	}
	waitCond(t, "every put appended", func() bool { return rl.entries() == 1+puts }) // the term's no-op, then every put
	time.Sleep(20 * time.Millisecond)
	if n := a.answered(); n != 0 {
		t.Fatalf("%d puts answered before their commit", n)
	}
	if g := runtime.NumGoroutine(); g > goroutines+5 {
		t.Fatalf("%d goroutines with %d puts in flight, %d before", g, puts, goroutines)
	}
	rl.commitAll()
	a.wait(puts, 5*time.Second)
	next := map[int32]int64{}
	lastPhy := int64(0)
	for i := range puts {
		r := a.once(i)
		if r.Status != PutOK || r.Err != nil {
			t.Fatalf("put %d: %+v", i, r)
		}
		qid := int32(i % 2)
		if r.QueueOffset != next[qid] || r.WroteOffset <= lastPhy {
			t.Fatalf("put %d: queue offset %d (want %d), physical offset %d after %d", i, r.QueueOffset, next[qid], r.WroteOffset, lastPhy)
		}
		next[qid]++
		lastPhy = r.WroteOffset
		m, err := s.LookMessageByOffset(r.WroteOffset)
		if err != nil {
			t.Fatal(err)
		}
		if m.MsgID != r.MsgID || string(m.Body) != string(newMsg("A", qid, i, "").Body) {
			t.Fatalf("put %d: msgId %s, record %s %q", i, r.MsgID, m.MsgID, m.Body)
		}
	}
	a.mu.Lock()
	order := append([]string(nil), a.order...)
	a.mu.Unlock()
	if len(order) != 2*puts || order[0] != "cb" || order[len(order)-1] != "flush" {
		t.Fatalf("callbacks and flushes: %d entries, first %q, last %q", len(order), order[0], order[len(order)-1])
	}
	// Each batch's callbacks, then as many flushes (one per callback here):
	// a flush never runs before a callback of its batch.
	for i := 0; i < len(order); {
		cbs, flushes := 0, 0
		for ; i < len(order) && order[i] == "cb"; i++ {
			cbs++
		}
		for ; i < len(order) && order[i] == "flush"; i++ {
			flushes++
		}
		if cbs != flushes {
			t.Fatalf("a batch of %d callbacks followed by %d flushes: %v", cbs, flushes, order)
		}
	}
	if a.answered() != puts {
		t.Fatalf("%d of %d puts answered", a.answered(), puts)
	}
}

// Every asynchronous put gets exactly one answer when it does not commit:
// refused at once (not the leader), leadership lost while it waits, not
// committed in time, and the store shutting down.
func TestPutMessageAsyncAnsweredOnceOnFailure(t *testing.T) {
	t.Run("not leader", func(t *testing.T) {
		rl, s := openReplicatedLeader(t, 5*time.Second)
		defer s.Shutdown()
		rl.depose(2, "n2")
		waitCond(t, "not writable", func() bool { return !s.IsLeader() })
		a := newAsyncPuts(t)
		a.put(s, "F", 0, 0)
		if a.answered() != 1 { // answered before PutMessageAsync returned
			t.Fatal("a refused put was not answered at once")
		}
		if r := a.once(0); r.Status != NotLeader || !errors.Is(r.Err, ErrNotLeader) {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("leadership lost", func(t *testing.T) {
		rl, s := openReplicatedLeader(t, 5*time.Second)
		defer s.Shutdown()
		a := newAsyncPuts(t)
		const puts = 20
		for i := range puts {
			a.put(s, "F", 0, i)
		}
		waitCond(t, "every put appended", func() bool { return rl.entries() == 1+puts })
		rl.depose(2, "n2")
		a.wait(puts, 2*time.Second) // well before the 5 s timeout
		for i := range puts {
			if r := a.once(i); r.Status != NotLeader || r.Leader != "n2" {
				t.Fatalf("put %d: %+v", i, r)
			}
		}
	})
	t.Run("timeout", func(t *testing.T) {
		_, s := openReplicatedLeader(t, 100*time.Millisecond)
		defer s.Shutdown()
		a := newAsyncPuts(t)
		const puts = 20
		start := time.Now()
		for i := range puts {
			a.put(s, "F", 0, i)
		}
		a.wait(puts, 3*time.Second)
		if d := time.Since(start); d < 80*time.Millisecond {
			t.Fatalf("answered after %v, before the 100 ms timeout", d)
		}
		for i := range puts {
			if r := a.once(i); r.Status != FlushSlaveTimeout || !errors.Is(r.Err, errCommitTimeout) || r.QueueOffset != int64(i) {
				t.Fatalf("put %d: %+v", i, r)
			}
		}
	})
	t.Run("shutdown", func(t *testing.T) {
		_, s := openReplicatedLeader(t, 5*time.Second)
		a := newAsyncPuts(t)
		const puts = 20
		for i := range puts {
			a.put(s, "F", 0, i)
		}
		if err := s.Shutdown(); err != nil {
			t.Fatal(err)
		}
		a.wait(puts, 2*time.Second)
		for i := range puts {
			if r := a.once(i); r.Status != ServiceNotAvailable {
				t.Fatalf("put %d: %+v", i, r)
			}
		}
		a.put(s, "F", 0, puts) // after the stop: answered at once
		if r := a.once(puts); r.Status != ServiceNotAvailable {
			t.Fatalf("put after shutdown: %+v", r)
		}
	})
	// No second answer shows up later.
	time.Sleep(50 * time.Millisecond)
}

// A synchronous put can share a batch with asynchronous ones; each gets
// its own result.
func TestPutMessageAsyncMixedWithSync(t *testing.T) {
	rl, s := openReplicatedLeader(t, 5*time.Second)
	defer s.Shutdown()
	a := newAsyncPuts(t)
	a.put(s, "M", 0, 0) // direct
	sync := make(chan PutMessageResult, 1)
	go func() { sync <- s.PutMessage(context.Background(), newMsg("M", 0, 1, "")) }()
	waitCond(t, "both appended", func() bool { return rl.entries() == 3 })
	a.put(s, "M", 0, 2)
	waitCond(t, "all appended", func() bool { return rl.entries() == 4 })
	rl.commitAll()
	a.wait(2, 2*time.Second)
	r := <-sync
	if r0, r2 := a.once(0), a.once(2); r.Status != PutOK || r0.Status != PutOK || r2.Status != PutOK ||
		r0.QueueOffset != 0 || r.QueueOffset != 1 || r2.QueueOffset != 2 {
		t.Fatalf("%+v %+v %+v", r0, r, r2)
	}
}

// entries is the number of entries in the log (committed or not).
func (l *fakeLog) entries() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ends)
}
