package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmqd/rmqd/internal/vfs"
)

// fakeLog is a single-replica ReplicatedLog whose commits, role and term
// the test drives. Entries are laid out like Java DLedger's data files
// (48-byte headers, end-of-file padding).
type fakeLog struct {
	mu         sync.Mutex
	fileSize   int64
	data       []byte
	ends       []int64 // end position of each entry (index = entry index)
	committed  int     // number of committed entries
	term       int64
	leader     bool
	leaderID   string
	autoCommit bool
	pending    []*fakeAppend
	watch      chan struct{}
	// beforeHook runs inside Append before the hooks (under the lock).
	beforeHook func(l *fakeLog)
	appending  int // entries of the Append in progress
	// zeroPad leaves file tails zero (no -1 marker), as MemoryStorage renders them.
	zeroPad bool
}

type fakeAppend struct {
	last int // index of the batch's last entry
	done chan struct{}
	err  error
}

func (a *fakeAppend) Done() <-chan struct{} { return a.done }
func (a *fakeAppend) Err() error            { return a.err }

func newFakeLog(fileSize int64) *fakeLog {
	return &fakeLog{fileSize: fileSize, watch: make(chan struct{}), leaderID: "n1"}
}

func (l *fakeLog) notifyLocked() {
	close(l.watch)
	l.watch = make(chan struct{})
}

func (l *fakeLog) endLocked() int64 { return int64(len(l.data)) }

// appendLocked places one entry (magic 1 normal, 2 no-op) and returns its position.
func (l *fakeLog) appendLocked(magic int32, body []byte, hook func(pos int64)) {
	size := int64(entryHeaderSize + len(body))
	pos := l.endLocked()
	if rel := pos % l.fileSize; rel+size+8 > l.fileSize {
		pad := make([]byte, l.fileSize-rel)
		if !l.zeroPad {
			binary.BigEndian.PutUint32(pad, uint32(0xFFFFFFFF))
			binary.BigEndian.PutUint32(pad[4:], uint32(len(pad)))
		}
		l.data = append(l.data, pad...)
		pos = l.endLocked()
	}
	if hook != nil {
		hook(pos)
	}
	h := make([]byte, entryHeaderSize)
	binary.BigEndian.PutUint32(h[0:], uint32(magic))
	binary.BigEndian.PutUint32(h[4:], uint32(size))
	binary.BigEndian.PutUint64(h[8:], uint64(len(l.ends)))
	binary.BigEndian.PutUint64(h[16:], uint64(l.term))
	binary.BigEndian.PutUint64(h[24:], uint64(pos))
	binary.BigEndian.PutUint32(h[44:], uint32(len(body)))
	l.data = append(append(l.data, h...), body...)
	l.ends = append(l.ends, l.endLocked())
}

func (l *fakeLog) Append(_ context.Context, bodies [][]byte, hook AppendHook) (ReplicatedAppend, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.leader {
		return nil, &NotLeaderError{LeaderID: l.leaderID, Reason: "fake follower"}
	}
	l.appending = len(bodies)
	if l.beforeHook != nil {
		l.beforeHook(l)
	}
	for i, b := range bodies {
		l.appendLocked(1, b, func(pos int64) { hook(i, l.term, pos, b) })
	}
	a := &fakeAppend{last: len(l.ends) - 1, done: make(chan struct{})}
	l.pending = append(l.pending, a)
	if l.autoCommit {
		l.commitLocked(len(l.ends))
	}
	return a, nil
}

func (l *fakeLog) commitLocked(n int) {
	l.committed = n
	kept := l.pending[:0]
	for _, a := range l.pending {
		if a.last < n {
			close(a.done)
		} else {
			kept = append(kept, a)
		}
	}
	l.pending = kept
	l.notifyLocked()
}

// commitAll commits every entry.
func (l *fakeLog) commitAll() {
	l.mu.Lock()
	l.commitLocked(len(l.ends))
	l.mu.Unlock()
}

// elect makes the fake the leader of a new term with an uncommitted no-op.
func (l *fakeLog) elect(term int64) {
	l.mu.Lock()
	l.term, l.leader, l.leaderID = term, true, "n0"
	l.appendLocked(2, nil, nil)
	l.notifyLocked()
	l.mu.Unlock()
}

// depose makes the fake a follower; pending appends fail and the
// uncommitted tail is cut.
func (l *fakeLog) depose(term int64, leader string) {
	l.mu.Lock()
	l.term, l.leader, l.leaderID = term, false, leader
	for _, a := range l.pending {
		a.err = &NotLeaderError{LeaderID: leader, Reason: "leadership lost"}
		close(a.done)
	}
	l.pending = nil
	if l.committed < len(l.ends) {
		cut := int64(0)
		if l.committed > 0 {
			cut = l.ends[l.committed-1]
		}
		l.data, l.ends = l.data[:cut], l.ends[:l.committed]
	}
	l.notifyLocked()
	l.mu.Unlock()
}

func (l *fakeLog) ReadAt(p []byte, pos int64) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if pos >= l.endLocked() {
		return 0, io.EOF
	}
	n := copy(p, l.data[pos:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (l *fakeLog) BeginPos() int64 { return 0 }
func (l *fakeLog) EndPos() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.endLocked()
}

func (l *fakeLog) CommittedPos() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.committed == 0 {
		return 0
	}
	return l.ends[l.committed-1]
}

func (l *fakeLog) Watch() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.watch
}

func (l *fakeLog) Role() ReplicaRole {
	l.mu.Lock()
	defer l.mu.Unlock()
	return ReplicaRole{Leader: l.leader, Term: l.term, LeaderID: l.leaderID, SelfID: "n0"}
}

func (l *fakeLog) Status() ReplicationStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	role := "FOLLOWER"
	if l.leader {
		role = "LEADER"
	}
	var pos int64
	if l.committed > 0 {
		pos = l.ends[l.committed-1]
	}
	return ReplicationStatus{SelfID: "n0", Role: role, Term: l.term, LeaderID: l.leaderID, LedgerBeginIndex: 0,
		LedgerEndIndex: int64(len(l.ends)) - 1, CommittedIndex: int64(l.committed) - 1, CommittedPos: pos}
}

// clone copies the log's bytes up to end (a replica that lost its tail).
func (l *fakeLog) clone(entries int) *fakeLog {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := newFakeLog(l.fileSize)
	end := int64(0)
	if entries > 0 {
		end = l.ends[entries-1]
	}
	c.data = append([]byte(nil), l.data[:end]...)
	c.ends = append([]int64(nil), l.ends[:entries]...)
	c.committed = min(l.committed, entries)
	c.term, c.leaderID = l.term, l.leaderID
	return c
}

func replConfig(t *testing.T, fs vfs.FS, rl ReplicatedLog) Config {
	cfg := testConfig(t, fs)
	cfg.ReplicatedLog = rl
	cfg.ReplicationTimeout = 2 * time.Second
	return cfg
}

func waitCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestReplicatedDispatchesOnlyCommitted(t *testing.T) {
	rl := newFakeLog(4096)
	rl.elect(1)
	s := openStore(t, replConfig(t, vfs.NewMem(), rl))
	defer s.Shutdown()
	var roles []ReplicaRole
	var rmu sync.Mutex
	s.SetRoleListener(func(r ReplicaRole) { rmu.Lock(); roles = append(roles, r); rmu.Unlock() })
	if s.IsLeader() {
		t.Fatal("writable before the term's no-op committed")
	}
	if r := s.PutMessage(context.Background(), newMsg("C", 0, 0, "")); r.Status != NotLeader || r.Leader != "n0" {
		t.Fatalf("put before catch-up: %v %q", r.Status, r.Leader)
	}
	rl.commitAll()
	waitCond(t, "writable leader", s.IsLeader)
	results := make(chan PutMessageResult, 1)
	go func() { results <- s.PutMessage(context.Background(), newMsg("C", 0, 0, "")) }()
	waitCond(t, "append", func() bool { return rl.EndPos() > rl.CommittedPos() })
	time.Sleep(20 * time.Millisecond)
	if n := s.GetMaxOffsetInQueue("C", 0); n != 0 {
		t.Fatalf("uncommitted record dispatched: max offset %d", n)
	}
	if r := s.GetMessage("g", "C", 0, 0, 32, 0, nil); r.Status == Found {
		t.Fatal("uncommitted record served")
	}
	rl.commitAll()
	r := <-results
	if r.Status != PutOK || r.QueueOffset != 0 || r.WroteOffset != 48+48 { // no-op, then the entry header
		t.Fatalf("%+v", r)
	}
	// Many more, autocommitted, across several 4 KiB files (padding).
	rl.mu.Lock()
	rl.autoCommit = true
	rl.mu.Unlock()
	for i := 1; i < 120; i++ {
		r := s.PutMessage(context.Background(), newMsg("C", int32(i%2), i, "t"))
		if r.Status != PutOK || r.QueueOffset != int64(i/2) {
			t.Fatalf("put %d: %+v", i, r)
		}
	}
	waitCond(t, "dispatch", func() bool { return s.DispatchedOffset() == rl.CommittedPos() })
	if a, b := s.GetMaxOffsetInQueue("C", 0), s.GetMaxOffsetInQueue("C", 1); a != 60 || b != 60 {
		t.Fatalf("queues %d %d", a, b)
	}
	for q := int32(0); q < 2; q++ {
		us, err := s.GetConsumeQueueUnits("C", q, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range us {
			m, err := s.LookMessageByOffset(u.CommitLogOffset)
			if err != nil || m.CommitLogOffset != u.CommitLogOffset || m.QueueOffset != u.QueueOffset || m.QueueID != q {
				t.Fatalf("unit %+v: %v %+v", u, err, m)
			}
			// The entry header in front of it names its position.
			var h [32]byte
			rl.ReadAt(h[:], u.CommitLogOffset-48)
			if int64(binary.BigEndian.Uint64(h[24:])) != u.CommitLogOffset-48 {
				t.Fatalf("unit %+v not at entry pos + 48", u)
			}
		}
	}
	rmu.Lock()
	defer rmu.Unlock()
	if len(roles) == 0 || !roles[len(roles)-1].Leader || roles[len(roles)-1].Term != 1 {
		t.Fatalf("role events %+v", roles)
	}
}

// openReplicatedLeader opens a store over a fake log that leads term 1
// with everything committed, and waits until it is writable.
func openReplicatedLeader(t *testing.T, replicationTimeout time.Duration) (*fakeLog, *MessageStore) {
	t.Helper()
	rl := newFakeLog(1 << 20)
	rl.elect(1)
	rl.commitAll()
	cfg := replConfig(t, vfs.NewMem(), rl)
	cfg.ReplicationTimeout = replicationTimeout
	s := openStore(t, cfg)
	waitCond(t, "writable leader", s.IsLeader)
	return rl, s
}

func TestReplicatedLeadershipLossAndTimeout(t *testing.T) {
	rl, s := openReplicatedLeader(t, 50*time.Millisecond)
	defer s.Shutdown()
	// Not committed in time: stored here, not known replicated.
	if r := s.PutMessage(context.Background(), newMsg("L", 0, 0, "")); r.Status != FlushSlaveTimeout || r.QueueOffset != 0 {
		t.Fatalf("%v %d", r.Status, r.QueueOffset)
	}
	// Leadership lost while a put waits: NotLeader at once, naming the new leader.
	s.cfg.ReplicationTimeout = 5 * time.Second // no put in flight
	done := make(chan PutMessageResult, 1)
	go func() { done <- s.PutMessage(context.Background(), newMsg("L", 0, 1, "")) }()
	waitCond(t, "second append", func() bool { return len(rl.Status().Peers) == 0 && rl.Status().LedgerEndIndex == 2 })
	start := time.Now()
	rl.depose(2, "n2")
	r := <-done
	if r.Status != NotLeader || r.Leader != "n2" || time.Since(start) > time.Second || !errors.Is(r.Err, ErrNotLeader) {
		t.Fatalf("%v %q %v", r.Status, r.Leader, r.Err)
	}
	waitCond(t, "follower role", func() bool { return !s.IsLeader() && s.Role().LeaderID == "n2" })
	if r := s.PutMessage(context.Background(), newMsg("L", 0, 2, "")); r.Status != NotLeader || r.Leader != "n2" {
		t.Fatalf("follower put %v %q", r.Status, r.Leader)
	}
	if _, err := s.ProposeSystem(context.Background(), []byte("x")); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("follower ProposeSystem: %v", err)
	}
	// Leader again in term 3: the cut tail never reached the queue, offsets
	// continue densely from what is committed (nothing).
	rl.elect(3)
	rl.commitAll()
	waitCond(t, "writable again", s.IsLeader)
	rl.mu.Lock()
	rl.autoCommit = true
	rl.mu.Unlock()
	if r := s.PutMessage(context.Background(), newMsg("L", 0, 3, "")); r.Status != PutOK || r.QueueOffset != 0 {
		t.Fatalf("after re-election: %v offset %d", r.Status, r.QueueOffset)
	}
	waitCond(t, "dispatch", func() bool { return s.GetMaxOffsetInQueue("L", 0) == 1 })
}

func TestReplicatedStaleTermAppendIsNeutralized(t *testing.T) {
	rl, s := openReplicatedLeader(t, 2*time.Second) // replConfig's timeout
	defer s.Shutdown()
	rl.mu.Lock()
	rl.autoCommit = true
	// Leadership lost and won again between the put's check and its append.
	rl.beforeHook = func(l *fakeLog) {
		l.term = 5
		l.beforeHook = nil
	}
	rl.mu.Unlock()
	var r PutMessageResult
	r = s.PutMessage(context.Background(), newMsg("N", 0, 0, ""))
	if r.Status != NotLeader {
		t.Fatalf("stale append answered %v", r.Status)
	}
	rl.mu.Lock()
	rl.notifyLocked()
	rl.mu.Unlock()
	waitCond(t, "writable in term 5", func() bool { return s.IsLeader() && s.Role().Term == 5 })
	r = s.PutMessage(context.Background(), newMsg("N", 0, 1, ""))
	if r.Status != PutOK || r.QueueOffset != 0 {
		t.Fatalf("%v offset %d", r.Status, r.QueueOffset)
	}
	waitCond(t, "dispatch", func() bool { return s.DispatchedOffset() == rl.CommittedPos() })
	us, _ := s.GetConsumeQueueUnits("N", 0, 0, 10)
	if len(us) != 1 || us[0].CommitLogOffset != r.WroteOffset {
		t.Fatalf("units %+v", us)
	}
}

func TestReplicatedRecoveryTruncatesConsumeQueues(t *testing.T) {
	fs := vfs.NewMem()
	rl := newFakeLog(4096)
	rl.elect(1)
	rl.commitAll()
	rl.autoCommit = true
	s := openStore(t, replConfig(t, fs, rl))
	waitCond(t, "writable leader", s.IsLeader)
	var puts []PutMessageResult
	for i := range 30 {
		puts = append(puts, mustPut(t, s, newMsg("R", 0, i, "")))
	}
	waitCond(t, "dispatch", func() bool { return s.GetMaxOffsetInQueue("R", 0) == 30 })
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	// 1. The log lost its last 10 entries (no-op = entry 0): units past its end go.
	short := rl.clone(21)
	s2, err := Open(replConfig(t, fs, short))
	if err != nil {
		t.Fatal(err)
	}
	if n := s2.GetMaxOffsetInQueue("R", 0); n != 20 {
		t.Fatalf("after a shorter log: %d units", n)
	}
	s2.Shutdown()
	// 2. Same length, but the last entry now holds another record: its unit
	// goes, and re-dispatch gives the record its own unit.
	other := short.clone(20)
	other.term, other.leader = 2, true
	other.mu.Lock()
	other.autoCommit = true
	other.mu.Unlock()
	var stored []byte
	host, _ := parseHost("10.0.0.1:10911")
	enc, err := encodeStored(nil, newMsg("X", 3, 99, ""), &host, 0, 0, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	other.Append(context.Background(), [][]byte{enc}, func(_ int, _ int64, pos int64, body []byte) {
		binary.BigEndian.PutUint64(body[posPhysicalOffset:], uint64(pos+48))
		stored = body
	})
	_ = stored
	s3, err := Open(replConfig(t, fs, other))
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Shutdown()
	if n := s3.GetMaxOffsetInQueue("R", 0); n != 19 {
		t.Fatalf("after a replaced entry: %d units of R", n)
	}
	if n := s3.GetMaxOffsetInQueue("X", 3); n != 1 {
		t.Fatalf("replacement record: %d units", n)
	}
	if u, _ := s3.GetConsumeQueueUnits("R", 0, 18, 1); len(u) != 1 || u[0].CommitLogOffset != puts[18].WroteOffset {
		t.Fatalf("kept unit %+v", u)
	}
}

func TestReplicatedSystemRecordReplayFloor(t *testing.T) {
	fs := vfs.NewMem()
	rl := newFakeLog(1 << 20)
	rl.elect(1)
	rl.commitAll()
	rl.autoCommit = true
	s := openStore(t, replConfig(t, fs, rl))
	waitCond(t, "writable leader", s.IsLeader)
	var pos []int64
	for i := range 5 {
		p, err := s.ProposeSystem(context.Background(), []byte(fmt.Sprint("op", i)))
		if err != nil {
			t.Fatal(err)
		}
		mustPut(t, s, newMsg("M", 0, i, ""))
		pos = append(pos, p)
	}
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(replConfig(t, fs, rl))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	var got []string
	var gotMu sync.Mutex
	var calls atomic.Int32
	s.SetSystemRecordHandler(func(p int64, payload []byte) {
		calls.Add(1)
		gotMu.Lock()
		got = append(got, fmt.Sprintf("%d:%s", p, payload))
		gotMu.Unlock()
	})
	n, err := s.ReplaySystemRecordsFrom(pos[2])
	if err != nil || n != 3 {
		t.Fatalf("replayed %d: %v", n, err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	waitCond(t, "writable leader", s.IsLeader)
	p, err := s.ProposeSystem(context.Background(), []byte("op5"))
	if err != nil {
		t.Fatal(err)
	}
	gotMu.Lock()
	defer gotMu.Unlock()
	want := fmt.Sprintf("[%d:op2 %d:op3 %d:op4 %d:op5]", pos[2], pos[3], pos[4], p)
	if fmt.Sprint(got) != want {
		t.Fatalf("got %v want %s", got, want)
	}
	if _, ok := s.Topics()[SystemTopic]; ok {
		t.Fatal("Topics lists the system topic")
	}
	if n, err := s.DeleteTopics(context.Background(), []string{SystemTopic, UpgradeTopic, TopicOpsTopic}); n != 0 || err != nil {
		t.Fatal("system queue deleted")
	}
}

func TestReplicatedZeroedPaddingIsSkipped(t *testing.T) {
	rl := newFakeLog(4096)
	rl.zeroPad = true
	rl.elect(1)
	rl.commitAll()
	rl.autoCommit = true
	cfg := replConfig(t, vfs.NewMem(), rl)
	cfg.MappedFileSizeCommitLog = 4096
	s := openStore(t, cfg)
	defer s.Shutdown()
	waitCond(t, "writable leader", s.IsLeader)
	for i := range 100 {
		mustPut(t, s, newMsg("Z", 0, i, ""))
	}
	waitCond(t, "dispatch", func() bool { return s.GetMaxOffsetInQueue("Z", 0) == 100 })
	if rl.EndPos() < 3*4096 {
		t.Fatalf("only %d bytes: no file crossed", rl.EndPos())
	}
}

// A follower's dispatcher spaces its rounds by followerDispatchCoalesce
// under a steady stream of commits (each round costs a write per touched
// queue), while the leader keeps dispatchCoalesce; the follower's queues
// still end up complete.
func TestFollowerDispatchesInFewerRounds(t *testing.T) {
	rl := newFakeLog(1 << 20)
	rl.elect(1)
	rl.autoCommit = true
	leader := openStore(t, replConfig(t, vfs.NewMem(), rl))
	defer leader.Shutdown()
	rl.commitAll()
	waitCond(t, "writable leader", leader.IsLeader)
	rf := rl.clone(len(rl.ends))
	rf.leaderID = "n0"
	follower := openStore(t, replConfig(t, vfs.NewMem(), rf))
	defer follower.Shutdown()
	rounds := func(s *MessageStore) uint64 {
		s.dispatchMu.Lock()
		defer s.dispatchMu.Unlock()
		return s.disp.round
	}
	l0, f0 := rounds(leader), rounds(follower)
	n := 0
	start := time.Now()
	for ; n < 100 || time.Since(start) < 300*time.Millisecond; n++ {
		mustPut(t, leader, newMsg("FD", int32(n%4), n, ""))
		// The follower receives and commits what the leader committed.
		rl.mu.Lock()
		data, ends := append([]byte(nil), rl.data...), append([]int64(nil), rl.ends...)
		rl.mu.Unlock()
		rf.mu.Lock()
		rf.data, rf.ends = data, ends
		rf.commitLocked(len(ends))
		rf.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	waitCond(t, "follower dispatch", func() bool { return follower.DispatchedOffset() == rf.CommittedPos() })
	lr, fr := rounds(leader)-l0, rounds(follower)-f0
	t.Logf("%d puts in %v: leader %d dispatch rounds, follower %d", n, elapsed, lr, fr)
	// About one round per 10 ms (a commit arriving during a round starts the
	// next one at once), plus the idle ticker's and the final ones; with the
	// leader's 1 ms spacing it would be about one per put (>= 100).
	if limit := 2*uint64(elapsed/(10*time.Millisecond)) + 10; fr > limit {
		t.Fatalf("follower dispatched in %d rounds (limit %d, leader %d) for %d puts in %v", fr, limit, lr, n, elapsed)
	}
	var total int64
	for q := range int32(4) {
		total += follower.GetMaxOffsetInQueue("FD", q)
	}
	if total != int64(n) {
		t.Fatalf("follower queues hold %d of %d messages", total, n)
	}
}
