package broker

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rmqd/rmqd/metadata"
)

// A fake replicated log shared by several replicas: ProposeSystem on the
// leader appends a record and hands it to every replica's handler in log
// order (synchronously, as a committed-and-dispatched record).

type fakeSysRecord struct {
	pos     int64
	payload []byte
}

type fakeSysLog struct {
	gate     sync.Mutex // held by a test to stall proposals (not role queries)
	mu       sync.Mutex
	leader   int // replica index, -1 none
	next     int64
	records  []fakeSysRecord
	handlers map[int]func(int64, []byte)
	fail     error // ProposeSystem fails with it when set
}

func newFakeSysLog() *fakeSysLog {
	return &fakeSysLog{next: 1000, handlers: map[int]func(int64, []byte){}}
}

func (l *fakeSysLog) setLeader(i int) { l.mu.Lock(); l.leader = i; l.mu.Unlock() }

func (l *fakeSysLog) count() int { l.mu.Lock(); defer l.mu.Unlock(); return len(l.records) }

func (l *fakeSysLog) propose(i int, payload []byte) (int64, error) {
	l.gate.Lock()
	l.gate.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.leader != i {
		return 0, errors.New("fake: not leader")
	}
	if l.fail != nil {
		return 0, l.fail
	}
	pos := l.next
	l.next += int64(len(payload)) + 200
	p := append([]byte(nil), payload...)
	l.records = append(l.records, fakeSysRecord{pos, p})
	for j := 0; j < len(l.handlers)+8; j++ {
		if h := l.handlers[j]; h != nil {
			h(pos, p)
		}
	}
	return pos, nil
}

// replay hands the records at pos >= from to h.
func (l *fakeSysLog) replay(from int64, h func(int64, []byte)) int {
	l.mu.Lock()
	recs := append([]fakeSysRecord(nil), l.records...)
	l.mu.Unlock()
	n := 0
	for _, r := range recs {
		if r.pos >= from {
			h(r.pos, r.payload)
			n++
		}
	}
	return n
}

// fakeSysReplica is one replica's view of fakeSysLog.
type fakeSysReplica struct {
	l *fakeSysLog
	i int
}

func (r fakeSysReplica) IsLeader() bool {
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	return r.l.leader == r.i
}

func (r fakeSysReplica) ProposeSystem(_ context.Context, payload []byte) (int64, error) {
	return r.l.propose(r.i, payload)
}

type testReplica struct {
	meta *metadata.Metadata
	repl *replicatedMeta
	dir  string
}

func newReplicatedMetaCluster(t *testing.T, n int, flushEvery ...time.Duration) (*fakeSysLog, []*testReplica) {
	t.Helper()
	l := newFakeSysLog()
	l.leader = 0
	var out []*testReplica
	for i := 0; i < n; i++ {
		dir := t.TempDir()
		md, err := metadata.Open(metadata.Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		md.InitSystemTopics(metadata.SystemTopicOptions{BrokerClusterName: "c", BrokerName: "b", AutoCreateTopicEnable: true, DefaultTopicQueueNums: 4})
		r := newReplicatedMeta(md, fakeSysReplica{l, i}, nil, func() string { return "n0" })
		r.interval = 20 * time.Millisecond
		if len(flushEvery) > 0 {
			r.interval = flushEvery[0]
		}
		md.SetProposer(r.propose)
		l.mu.Lock()
		l.handlers[i] = r.onSystemRecord
		l.mu.Unlock()
		r.start()
		t.Cleanup(r.stop)
		out = append(out, &testReplica{md, r, dir})
	}
	return l, out
}

func TestReplicatedMetadataAppliedOnEveryReplica(t *testing.T) {
	l, rs := newReplicatedMetaCluster(t, 3)
	leader := rs[0].meta
	if err := leader.PutTopic(metadata.NewTopicConfig("T1", 8)); err != nil {
		t.Fatal(err)
	}
	// Answered after commit: every replica has it when Submit returns.
	for i, r := range rs {
		if tc, ok := r.meta.Topics.Get("T1"); !ok || tc.WriteQueueNums != 8 {
			t.Fatalf("replica %d: T1 = %+v %v", i, tc, ok)
		}
	}
	if err := leader.PutGroup(metadata.NewSubscriptionGroupConfig("G1")); err != nil {
		t.Fatal(err)
	}
	if _, created, err := leader.CreateTopicInSendMessage("AutoT", metadata.AutoCreateTopicKeyTopic, 2, 0, true); err != nil || !created {
		t.Fatalf("auto-create through TBW102: %v %v", created, err)
	}
	if _, created, err := leader.FindOrCreateGroup("AutoG", true); err != nil || !created {
		t.Fatalf("auto-create group: %v %v", created, err)
	}
	if err := leader.DeleteTopic("T1"); err != nil {
		t.Fatal(err)
	}
	if err := leader.CommitDelayOffset(3, 42); err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		if r.meta.Topics.Contains("T1") || !r.meta.Topics.Contains("AutoT") || !r.meta.Groups.Contains("G1") || !r.meta.Groups.Contains("AutoG") {
			t.Fatalf("replica %d: topics %v groups %v", i, r.meta.Topics.Names(), r.meta.Groups.Names())
		}
		if got := r.meta.Delay.Get(3); got != 42 {
			t.Fatalf("replica %d: delay level 3 = %d", i, got)
		}
		if r.meta.AppliedIndex() != rs[0].meta.AppliedIndex() || r.meta.AppliedIndex() == 0 {
			t.Fatalf("replica %d applied %d, leader %d", i, r.meta.AppliedIndex(), rs[0].meta.AppliedIndex())
		}
	}
	if l.count() != 6 {
		t.Fatalf("%d records for 6 sequential changes", l.count())
	}
	// Data versions move identically (the op carries the proposer's time).
	if rs[1].meta.Topics.DataVersion() != rs[2].meta.Topics.DataVersion() {
		t.Fatalf("followers' topic data versions differ: %+v %+v", rs[1].meta.Topics.DataVersion(), rs[2].meta.Topics.DataVersion())
	}
}

func TestReplicatedMetadataFollowerRefuses(t *testing.T) {
	l, rs := newReplicatedMetaCluster(t, 3)
	err := rs[1].meta.PutTopic(metadata.NewTopicConfig("T1", 8))
	if !errors.Is(err, errNotLeader) || !strings.Contains(err.Error(), "leader is n0") {
		t.Fatalf("follower PutTopic: %v", err)
	}
	if rs[0].meta.Topics.Contains("T1") || l.count() != 0 {
		t.Fatal("a follower's change reached the log")
	}
	// A proposal the log refuses is an error, not a hang.
	l.mu.Lock()
	l.fail = errors.New("quorum lost")
	l.mu.Unlock()
	if err := rs[0].meta.PutGroup(metadata.NewSubscriptionGroupConfig("G")); err == nil || !strings.Contains(err.Error(), "quorum lost") {
		t.Fatalf("failed proposal: %v", err)
	}
}

func TestReplicatedMetadataBatchesConcurrentChanges(t *testing.T) {
	l, rs := newReplicatedMetaCluster(t, 2)
	// Stall the log so that submissions queue up behind the first one.
	l.gate.Lock()
	var wg sync.WaitGroup
	const n = 50
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := rs[0].meta.PutGroup(metadata.NewSubscriptionGroupConfig("G" + itoa(i))); err != nil {
				t.Error(err)
			}
		}(i)
	}
	// Wait until most submissions are queued behind the held one (a fixed
	// sleep was too short on a loaded machine).
	queued := func() int {
		rs[0].repl.mu.Lock()
		defer rs[0].repl.mu.Unlock()
		return len(rs[0].repl.mu.queue)
	}
	deadline := time.Now().Add(10 * time.Second)
	for queued() < n/2 {
		if time.Now().After(deadline) {
			l.gate.Unlock()
			t.Fatalf("only %d of %d submissions queued behind a stalled log", queued(), n)
		}
		time.Sleep(time.Millisecond)
	}
	l.gate.Unlock()
	wg.Wait()
	for i := 0; i < n; i++ {
		if !rs[1].meta.Groups.Contains("G" + itoa(i)) {
			t.Fatalf("follower misses G%d", i)
		}
	}
	if c := l.count(); c >= n {
		t.Fatalf("%d records for %d concurrent changes: no batching", c, n)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestReplicatedOffsetsCoalescedAndMonotonic(t *testing.T) {
	// No periodic flush: commits are answered from the leader's buffer.
	l, rs := newReplicatedMetaCluster(t, 3, time.Hour)
	leader := rs[0].repl
	leader.commitOffset("g", "T", 0, 5)
	leader.commitOffset("g", "T", 0, 7)
	leader.commitOffset("g", "T", 1, 3)
	leader.commitOffset("g", "T", 0, 6) // lower: ignored
	if got := leader.queryOffset("g", "T", 0); got != 7 {
		t.Fatalf("leader reads %d from its buffer, want 7", got)
	}
	if got := rs[1].meta.Offsets.Query("g", "T", 0); got != -1 {
		t.Fatalf("follower has %d before the flush", got)
	}
	if err := leader.flushOffsets(context.Background()); err != nil {
		t.Fatal(err)
	}
	if l.count() != 1 {
		t.Fatalf("%d records for one flush", l.count())
	}
	for i, r := range rs {
		if a, b := r.meta.Offsets.Query("g", "T", 0), r.meta.Offsets.Query("g", "T", 1); a != 7 || b != 3 {
			t.Fatalf("replica %d: offsets %d %d", i, a, b)
		}
	}
	if leader.pendingOffsets() != 0 {
		t.Fatalf("%d offsets still pending after the flush", leader.pendingOffsets())
	}
	// Lower commits never move the replicated offset back.
	leader.commitOffset("g", "T", 0, 2)
	if err := leader.flushOffsets(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		if got := r.meta.Offsets.Query("g", "T", 0); got != 7 {
			t.Fatalf("replica %d: offset moved back to %d", i, got)
		}
	}
	// An explicit reset does, and drops a buffered commit it covers.
	leader.commitOffset("g", "T", 0, 9)
	if err := rs[0].meta.ResetOffsets("g", "T", map[int32]int64{0: 1}); err != nil {
		t.Fatal(err)
	}
	if err := leader.flushOffsets(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		if got := r.meta.Offsets.Query("g", "T", 0); got != 1 {
			t.Fatalf("replica %d: offset %d after reset to 1", i, got)
		}
	}
	if got := leader.queryOffset("g", "T", 0); got != 1 {
		t.Fatalf("leader reads %d after reset", got)
	}
}

func TestReplicatedOffsetsPeriodicFlush(t *testing.T) {
	_, rs := newReplicatedMetaCluster(t, 2)
	rs[0].repl.commitOffset("g", "T", 0, 11)
	waitFor(t, 5*time.Second, "periodic offset flush", func() bool { return rs[1].meta.Offsets.Query("g", "T", 0) == 11 })
}

func TestReplicatedOffsetsDroppedOnStepDown(t *testing.T) {
	l, rs := newReplicatedMetaCluster(t, 2, time.Hour)
	leader := rs[0].repl
	leader.commitOffset("g", "T", 0, 5)
	if err := leader.flushOffsets(context.Background()); err != nil {
		t.Fatal(err)
	}
	leader.commitOffset("g", "T", 0, 8)
	l.setLeader(1)
	if n := leader.dropBuffer(); n != 1 {
		t.Fatalf("dropped %d", n)
	}
	if got := leader.queryOffset("g", "T", 0); got != 5 {
		t.Fatalf("old leader reads %d after dropping its buffer", got)
	}
	// The new leader starts from the replicated offsets.
	if got := rs[1].repl.queryOffset("g", "T", 0); got != 5 {
		t.Fatalf("new leader reads %d", got)
	}
	// A flush on a follower is refused, not applied.
	leader.commitOffset("g", "T", 0, 9)
	if err := leader.flushOffsets(context.Background()); !errors.Is(err, errNotLeader) {
		t.Fatalf("flush on a follower: %v", err)
	}
}

func TestMetadataRecordEncoding(t *testing.T) {
	tc := metadata.NewTopicConfig("T", 2)
	ops := []metadata.Op{
		{Kind: metadata.OpPutTopic, Time: 1, TopicConfig: &tc},
		{Kind: metadata.OpCommitOffsets, Time: 2, Group: "g", Offsets: []metadata.QueueOffset{{Topic: "T", QueueID: 1, Offset: 9}}},
	}
	p, err := encodeMetadataRecord(ops)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeMetadataRecord(p)
	if err != nil || len(got) != 2 || got[0].TopicConfig.TopicName != "T" || got[1].Offsets[0].Offset != 9 {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	if _, err := decodeMetadataRecord([]byte{0x7f, 1, 2}); err == nil {
		t.Fatal("unknown record type accepted")
	}
	if _, err := decodeMetadataRecord(nil); err == nil {
		t.Fatal("empty record accepted")
	}
	// An op of a kind a newer binary wrote is skipped, the others applied.
	bad := []byte{sysRecordMetadata, 2}
	one, _ := metadata.MarshalOp(ops[1])
	bad = append(bad, 3, 1, 200, 0) // format 1, kind 200
	bad = append(bad, byte(len(one)))
	bad = append(bad, one...)
	got, err = decodeMetadataRecord(bad)
	if err == nil || len(got) != 1 || got[0].Group != "g" {
		t.Fatalf("record with an unknown op: %+v %v", got, err)
	}
	for i := 0; i < len(p); i++ { // truncations never panic
		decodeMetadataRecord(p[:i])
	}
}

func TestReplicatedMetadataRestartReplaysTail(t *testing.T) {
	l, rs := newReplicatedMetaCluster(t, 2, time.Hour)
	leader := rs[0].meta
	for _, name := range []string{"A", "B", "C"} {
		if err := leader.PutTopic(metadata.NewTopicConfig(name, 4)); err != nil {
			t.Fatal(err)
		}
	}
	rs[0].repl.commitOffset("g", "A", 0, 10)
	if err := rs[0].repl.flushOffsets(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Follower 1 snapshots here ...
	if err := rs[1].meta.Persist(); err != nil {
		t.Fatal(err)
	}
	snap := rs[1].meta.AppliedIndex()
	// ... and the log goes on.
	if err := leader.DeleteTopic("B"); err != nil {
		t.Fatal(err)
	}
	if err := leader.PutGroup(metadata.NewSubscriptionGroupConfig("G")); err != nil {
		t.Fatal(err)
	}
	rs[0].repl.commitOffset("g", "A", 0, 20)
	if err := rs[0].repl.flushOffsets(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Restart follower 1 from its files and replay from SnapshotIndex.
	md, err := metadata.Open(metadata.Options{Dir: rs[1].dir})
	if err != nil {
		t.Fatal(err)
	}
	if md.SnapshotIndex() != snap || snap == 0 {
		t.Fatalf("snapshot index %d, want %d", md.SnapshotIndex(), snap)
	}
	r := newReplicatedMeta(md, fakeSysReplica{l, 1}, nil, nil)
	if n := l.replay(md.SnapshotIndex(), r.onSystemRecord); n != 4 { // the snapshot's own record and the 3 after it
		t.Fatalf("replayed %d records", n)
	}
	if !md.Topics.Contains("A") || md.Topics.Contains("B") || !md.Topics.Contains("C") || !md.Groups.Contains("G") {
		t.Fatalf("restored topics %v groups %v", md.Topics.Names(), md.Groups.Names())
	}
	if got := md.Offsets.Query("g", "A", 0); got != 20 {
		t.Fatalf("restored offset %d", got)
	}
	if md.AppliedIndex() != rs[0].meta.AppliedIndex() {
		t.Fatalf("applied %d, leader %d", md.AppliedIndex(), rs[0].meta.AppliedIndex())
	}
}

func TestForwardedPullCommits(t *testing.T) {
	l, rs := newReplicatedMetaCluster(t, 2, time.Hour)
	var mu sync.Mutex
	var got []map[offsetKey]int64
	follower := rs[1].repl
	follower.forward = func(m map[offsetKey]int64) { mu.Lock(); got = append(got, m); mu.Unlock() }
	follower.forwardOffset("g", "T", 0, 5)
	follower.forwardOffset("g", "T", 0, 3) // lower: coalesced away
	follower.flushForward()
	if len(got) != 1 || got[0][offsetKey{"g", "T", 0}] != 5 {
		t.Fatalf("forwarded %v", got)
	}
	// Leader by the time of the flush: buffered and replicated locally.
	follower.forwardOffset("g", "T", 1, 8)
	l.setLeader(1)
	follower.flushForward()
	if err := follower.flushOffsets(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rs[0].meta.Offsets.Query("g", "T", 1) != 8 || len(got) != 1 {
		t.Fatalf("commit forwarded while leader: offsets %d, forwards %v", rs[0].meta.Offsets.Query("g", "T", 1), got)
	}
}
