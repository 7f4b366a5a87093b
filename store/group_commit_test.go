package store

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmqd/rmqd/internal/vfs"
)

// Concurrent puts share one Append (group commit), keep dense per-queue
// offsets in log order, and are answered only after their batch commits.
func TestGroupCommitBatchesConcurrentPuts(t *testing.T) {
	const puts = 40
	rl := newFakeLog(1 << 20)
	rl.elect(1)
	rl.commitAll()
	s := openStore(t, replConfig(t, vfs.NewMem(), rl))
	defer s.Shutdown()
	waitCond(t, "writable leader", s.IsLeader)
	var appends, first atomic.Int32
	q := s.repl.appends
	rl.beforeHook = func(l *fakeLog) {
		// Hold the first Append until every other put joined the next
		// batch (unlocked meanwhile: puts read the role first).
		if appends.Add(1) == 1 {
			n := l.appending
			first.Store(int32(n))
			l.mu.Unlock()
			defer l.mu.Lock()
			waitCond(t, "the other puts to queue", func() bool {
				q.mu.Lock()
				defer q.mu.Unlock()
				return n == puts || len(q.queue) == 1 && n+len(q.queue[0].ops) == puts
			})
		}
	}
	var answered atomic.Int32
	results := make([]PutMessageResult, puts)
	var wg sync.WaitGroup
	for i := range puts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.PutMessage(context.Background(), newMsg("G", int32(i%2), i, ""))
			answered.Add(1)
		}()
	}
	waitCond(t, "the batches appended", func() bool {
		rl.mu.Lock()
		defer rl.mu.Unlock()
		return len(rl.ends) == 1+puts // the term's no-op, then every put
	})
	time.Sleep(20 * time.Millisecond)
	if n := answered.Load(); n != 0 {
		t.Fatalf("%d puts answered before their commit", n)
	}
	rl.commitAll()
	wg.Wait()
	// The first Append took the puts that had joined by then; every other
	// put joined the next batch meanwhile.
	if n, want := appends.Load(), 1+min(1, puts-first.Load()); n != want {
		t.Fatalf("%d Appends for %d concurrent puts (%d in the first), want %d", n, puts, first.Load(), want)
	}
	seen := map[[2]int64]bool{}
	lastPhy := map[int32]int64{}
	byOffset := map[[2]int64]int64{}
	for i, r := range results {
		if r.Status != PutOK {
			t.Fatalf("put %d: %+v", i, r)
		}
		k := [2]int64{int64(i % 2), r.QueueOffset}
		if seen[k] {
			t.Fatalf("queue offset %v given twice", k)
		}
		seen[k] = true
		byOffset[k] = r.WroteOffset
	}
	for qid := int64(0); qid < 2; qid++ {
		for off := int64(0); off < puts/2; off++ {
			phy, ok := byOffset[[2]int64{qid, off}]
			if !ok {
				t.Fatalf("queue %d: offset %d missing (not dense)", qid, off)
			}
			if phy <= lastPhy[int32(qid)] {
				t.Fatalf("queue %d: offset %d at %d, not after the previous one (%d)", qid, off, phy, lastPhy[int32(qid)])
			}
			lastPhy[int32(qid)] = phy
		}
	}
}

// Puts queued when the store shuts down fail instead of waiting forever.
func TestGroupCommitFailsQueuedPutsOnShutdown(t *testing.T) {
	rl := newFakeLog(1 << 20)
	rl.elect(1)
	rl.commitAll()
	s := openStore(t, replConfig(t, vfs.NewMem(), rl))
	waitCond(t, "writable leader", s.IsLeader)
	done := make(chan PutMessageResult, 1)
	go func() { done <- s.PutMessage(context.Background(), newMsg("G", 0, 0, "")) }()
	waitCond(t, "the append", func() bool { return rl.EndPos() > rl.CommittedPos() })
	go s.Shutdown()
	select {
	case r := <-done:
		if r.Status == PutOK {
			t.Fatalf("uncommitted put answered OK on shutdown: %+v", r)
		}
	case <-time.After(time.Second): // well below ReplicationTimeout (2 s)
		t.Fatal("put still waiting after shutdown")
	}
}
