package store

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Concurrent puts share one Append (group commit), keep dense per-queue
// offsets in log order, and are answered only after their batch commits.
func TestGroupCommitBatchesConcurrentPuts(t *testing.T) {
	const puts = 40
	rl, s := openReplicatedLeader(t, 2*time.Second) // replConfig's timeout
	defer s.Shutdown()
	// Every Append waits (the log unlocked: puts read the role first)
	// until all puts joined: the lone first one proposes itself, the rest
	// queue in the batch the appender holds in its Append, or in the next.
	var appends, appending atomic.Int32
	q := s.repl.appends
	rl.beforeHook = func(l *fakeLog) {
		appends.Add(1)
		appending.Add(int32(l.appending))
		l.mu.Unlock()
		defer l.mu.Lock()
		waitCond(t, "every put to join", func() bool {
			q.mu.Lock()
			defer q.mu.Unlock()
			queued := 0
			for _, bt := range q.queue {
				queued += len(bt.ops)
			}
			return int(appending.Load())+queued == puts
		})
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
	if n := appends.Load(); n > 3 {
		t.Fatalf("%d Appends for %d concurrent puts, want at most 3 (the lone first put, the batch then being proposed, the rest)", n, puts)
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

// Puts waiting for their commit when the store shuts down (the lone
// first one, proposed by itself, and a batched one) fail instead of waiting
// for their timeout.
func TestGroupCommitFailsWaitingPutsOnShutdown(t *testing.T) {
	rl, s := openReplicatedLeader(t, 2*time.Second) // replConfig's timeout
	done := make(chan PutMessageResult, 2)
	put := func(i int) { done <- s.PutMessage(context.Background(), newMsg("G", 0, i, "")) }
	go put(0)
	waitCond(t, "the first append", func() bool { return rl.EndPos() > rl.CommittedPos() })
	end := rl.EndPos()
	go put(1)
	waitCond(t, "the batch append", func() bool { return rl.EndPos() > end })
	go s.Shutdown()
	for range 2 {
		select {
		case r := <-done:
			if r.Status == PutOK {
				t.Fatalf("uncommitted put answered OK on shutdown: %+v", r)
			}
		case <-time.After(time.Second): // well below ReplicationTimeout (2 s)
			t.Fatal("put still waiting after shutdown")
		}
	}
}

// A new batch costs one allocation, the batch: its first puts (by value)
// and bodies live in the batch itself, and it signals the end of its Append
// and of its commit wait with WaitGroups, not channels.
func TestJoinNewBatchAllocations(t *testing.T) {
	q := newAppendQueue()
	q.inflight = 1 // something in flight: puts join batches instead of proposing themselves
	op := &replicatedPut{n: 1}
	data := make([]byte, 64)
	binary.BigEndian.PutUint32(data, uint32(len(data)))
	n := testing.AllocsPerRun(100, func() {
		q.queue = q.queue[:0] // the next join opens a new batch
		if bt, i, direct := q.join(op, data, time.Second); bt == nil || direct || i != 0 || len(bt.bodies) != 1 {
			t.Fatal("join did not batch")
		}
	})
	if n > 1 {
		t.Fatalf("a new batch allocates %v times", n)
	}
}

// Batched puts (they wait on their batch alone) are answered
// FLUSH_SLAVE_TIMEOUT at the batch's deadline when nothing commits, each
// with its own queue offset, and the lone put before them too.
func TestGroupCommitBatchTimeout(t *testing.T) {
	rl, s := openReplicatedLeader(t, 100*time.Millisecond)
	defer s.Shutdown()
	const n = 6
	done := make(chan PutMessageResult, n)
	put := func(i int) { done <- s.PutMessage(context.Background(), newMsg("T", 0, i, "")) }
	go put(0) // direct: nothing in flight
	waitCond(t, "the first append", func() bool { return rl.EndPos() > rl.CommittedPos() })
	start := time.Now()
	for i := 1; i < n; i++ {
		go put(i) // batched behind it
	}
	offsets := map[int64]bool{}
	for range n {
		select {
		case r := <-done:
			if r.Status != FlushSlaveTimeout || !errors.Is(r.Err, errCommitTimeout) {
				t.Fatalf("uncommitted put: %v %v", r.Status, r.Err)
			}
			offsets[r.QueueOffset] = true
		case <-time.After(2 * time.Second):
			t.Fatal("a put still waits 2 s after its 100 ms replication timeout")
		}
	}
	if len(offsets) != n || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("offsets %v after %v", offsets, time.Since(start))
	}
}

// A batched put with a cancelable context stops waiting when the context
// ends (its batch is still waiting for its commit), and the batch's other
// puts are still answered once it commits.
func TestGroupCommitBatchedPutContextEnds(t *testing.T) {
	rl, s := openReplicatedLeader(t, 2*time.Second) // replConfig's timeout
	defer s.Shutdown()
	first := make(chan PutMessageResult, 1)
	go func() { first <- s.PutMessage(context.Background(), newMsg("G", 0, 0, "")) }()
	waitCond(t, "the first append", func() bool { return rl.EndPos() > rl.CommittedPos() })
	end := rl.EndPos()
	ctx, cancel := context.WithCancel(context.Background())
	canceled := make(chan PutMessageResult, 1)
	go func() { canceled <- s.PutMessage(ctx, newMsg("G", 0, 1, "")) }()
	batched := make(chan PutMessageResult, 1)
	go func() { batched <- s.PutMessage(context.Background(), newMsg("G", 0, 2, "")) }()
	waitCond(t, "the batch append", func() bool {
		rl.mu.Lock()
		defer rl.mu.Unlock()
		return len(rl.ends) == 4 // the term's no-op and the three puts
	})
	if rl.EndPos() <= end {
		t.Fatal("no batch appended")
	}
	cancel()
	select {
	case r := <-canceled:
		if r.Status == PutOK {
			t.Fatalf("canceled put answered OK before its commit: %+v", r)
		}
	case <-time.After(time.Second): // below ReplicationTimeout (2 s)
		t.Fatal("canceled put still waiting")
	}
	rl.commitAll()
	for _, ch := range []chan PutMessageResult{first, batched} {
		select {
		case r := <-ch:
			if r.Status != PutOK {
				t.Fatalf("put after the commit: %+v", r)
			}
		case <-time.After(time.Second):
			t.Fatal("put not answered after the commit")
		}
	}
}
