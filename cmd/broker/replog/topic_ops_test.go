package replog_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/rmqd/rmqd/internal/vfs"
	"github.com/rmqd/rmqd/store"
)

// TestDeleteTopicOnEveryReplica: deleting a topic in DLedger mode removes
// its consume queues on every replica at the same point of the log, so a
// topic created again starts at queue offset 0 everywhere: after a
// failover, and on a replica that rebuilds its queues from the whole log.
func TestDeleteTopicOnEveryReplica(t *testing.T) {
	g := newGroup(t)
	ctx := context.Background()
	ld := g.leader()
	for i := range 20 {
		if r := g.stores[ld].PutMessage(ctx, msg("T", int32(i%2), i, "")); r.Status != store.PutOK {
			t.Fatal(r.Status)
		}
	}
	g.converged(ld, "T", 0, 10)
	if _, err := g.stores[ld].DeleteTopics(ctx, []string{"T"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range g.ids {
		waitFor(t, 5*time.Second, id+" to delete the queues of T", func() bool {
			_, listed := g.stores[id].Topics()["T"]
			return !listed && g.stores[id].GetMaxOffsetInQueue("T", 0) == 0 && g.stores[id].GetMaxOffsetInQueue("T", 1) == 0
		})
	}
	for i := range 3 {
		r := g.stores[ld].PutMessage(ctx, msg("T", 0, 100+i, ""))
		if r.Status != store.PutOK || r.QueueOffset != int64(i) {
			t.Fatalf("put %d after the deletion: %v at queue offset %d, want %d", i, r.Status, r.QueueOffset, i)
		}
	}
	g.converged(ld, "T", 0, 3)

	// A follower that rebuilds its consume queues from the whole log.
	var f string
	for _, id := range g.ids {
		if id != ld {
			f = id
		}
	}
	g.stop(f)
	for _, p := range []string{"/store/consumequeue", "/store/checkpoint"} {
		removeTree(t, g.fss[f], p)
	}
	g.start(f, -1)
	g.converged(ld, "T", 0, 3)
	if n := g.stores[f].GetMaxOffsetInQueue("T", 1); n != 0 {
		t.Fatalf("%s rebuilt queue T/1 with %d units of the deleted topic", f, n)
	}

	// Failover: the new leader continues the new queue.
	g.stop(ld)
	nl := g.leader(ld)
	r := g.stores[nl].PutMessage(ctx, msg("T", 0, 200, ""))
	if r.Status != store.PutOK || r.QueueOffset != 3 {
		t.Fatalf("after the failover: %v at queue offset %d, want 3", r.Status, r.QueueOffset)
	}
	g.converged(nl, "T", 0, 4)
}

// removeTree removes a file or a directory and everything below it.
func removeTree(t *testing.T, fs vfs.FS, p string) {
	t.Helper()
	if names, err := fs.ReadDir(p); err == nil {
		for _, n := range names {
			removeTree(t, fs, filepath.Join(p, n))
		}
	}
	if err := fs.Remove(p); err != nil {
		t.Fatal(err)
	}
}
