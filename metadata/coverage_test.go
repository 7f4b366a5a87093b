package metadata

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmqd/rmqd/internal/vfs"
)

// With a coverage source, snapshots record how far the log was applied
// even without metadata ops (so a restart replays from there and log
// retention may drop what lies below), at most once per coverageInterval.
func TestCoverageAdvancesPersistedIndex(t *testing.T) {
	fs := vfs.NewMem()
	var now atomic.Int64
	now.Store(1800000000000)
	m, err := Open(Options{Dir: dir, FS: fs, Now: func() time.Time { return time.UnixMilli(now.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.ApplyAt(100, Op{Kind: OpPutTopic, TopicConfig: &TopicConfig{TopicName: "T", ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6}}); err != nil {
		t.Fatal(err)
	}
	if err := m.Persist(); err != nil {
		t.Fatal(err)
	}
	if got := m.PersistedIndex(); got != 100 {
		t.Fatalf("persisted index %d without coverage, want the last op's 100", got)
	}
	var dispatched atomic.Int64
	dispatched.Store(5000)
	m.SetCoverage(dispatched.Load)
	if err := m.Persist(); err != nil {
		t.Fatal(err)
	}
	if got := m.PersistedIndex(); got != 5000 {
		t.Fatalf("persisted index %d, want the coverage 5000", got)
	}
	dispatched.Store(9000)
	if err := m.Persist(); err != nil {
		t.Fatal(err)
	}
	if got := m.PersistedIndex(); got != 5000 {
		t.Fatalf("persisted index %d within a minute of the last coverage, want 5000", got)
	}
	now.Add(2 * time.Minute.Milliseconds())
	if err := m.Persist(); err != nil {
		t.Fatal(err)
	}
	if got := m.PersistedIndex(); got != 9000 {
		t.Fatalf("persisted index %d, want 9000", got)
	}
	m2, err := Open(Options{Dir: dir, FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	if m2.SnapshotIndex() != 9000 || m2.PersistedIndex() != 9000 {
		t.Fatalf("reopened: snapshot index %d, persisted %d, want 9000", m2.SnapshotIndex(), m2.PersistedIndex())
	}
	if _, ok := m2.Topics.Get("T"); !ok {
		t.Fatal("topic T lost")
	}
}
