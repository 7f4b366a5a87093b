package dledger

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// Paper tests: each checks a rule of the Raft paper (or of DLedger that we
// keep) on one core: set up, Step a message in, look at what comes out.

var ids3 = []string{"n0", "n1", "n2"}

func newTestCore(t *testing.T, id string, s *MemoryStorage, mod ...func(*CoreConfig)) *Core {
	t.Helper()
	cfg := testConfig(id, ids3, s)
	for _, m := range mod {
		m(&cfg)
	}
	c, err := NewCore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// drain handles every Ready like a driver in sync mode and returns all messages.
func drain(t *testing.T, c *Core, s *MemoryStorage) (now, after []Message) {
	t.Helper()
	for c.HasReady() {
		rd := c.Ready()
		now = append(now, rd.Messages...)
		if rd.HardState != nil {
			_ = s.SetHardState(*rd.HardState)
		}
		if len(rd.Entries) > 0 {
			if err := s.Append(rd.Entries); err != nil {
				t.Fatal(err)
			}
		}
		after = append(after, rd.MessagesAfterPersist...)
		c.Advance(rd)
	}
	return now, after
}

// storageWith returns a log holding entries of the given terms.
func storageWith(terms ...int64) *MemoryStorage {
	s := NewMemoryStorage(0)
	var end int64
	var ents []Entry
	for i, t := range terms {
		e := Entry{Index: int64(i), Term: t, Magic: MagicNormal, Body: []byte{byte(t), byte(i)}}
		e.Pos, end = s.Place(end, e.Size())
		ents = append(ents, e)
	}
	if len(ents) > 0 {
		_ = s.Append(ents)
	}
	if len(terms) > 0 {
		_ = s.SetHardState(HardState{Term: terms[len(terms)-1]})
	}
	return s
}

func TestRandomizedElectionTimeoutRange(t *testing.T) {
	for _, tc := range []struct {
		max, lo, hi int // ElectionTickMax (ElectionTick is 10) → [lo, hi)
	}{{0, 10, 20}, {14, 10, 14}, {30, 10, 30}, {10, 10, 20}} {
		c := newTestCore(t, "n0", NewMemoryStorage(0), func(cfg *CoreConfig) { cfg.ElectionTickMax = tc.max })
		seen := map[int]bool{}
		for range 1000 {
			c.becomeFollower(c.term+1, "")
			if c.randomizedElection < tc.lo || c.randomizedElection >= tc.hi {
				t.Fatalf("max %d: timeout %d outside [%d,%d)", tc.max, c.randomizedElection, tc.lo, tc.hi)
			}
			seen[c.randomizedElection] = true
		}
		if len(seen) != tc.hi-tc.lo {
			t.Fatalf("max %d: timeouts not spread over [%d,%d): %v", tc.max, tc.lo, tc.hi, seen)
		}
	}
}

// §5.2: a follower that hears nothing for an election timeout starts an
// election; with pre-vote it first asks without changing its term.
func TestFollowerStartsPreVoteThenElection(t *testing.T) {
	s := NewMemoryStorage(0)
	c := newTestCore(t, "n0", s)
	for range 20 {
		c.Tick()
	}
	if c.role != RolePreCandidate || c.term != 0 {
		t.Fatalf("role %s term %d", c.role, c.term)
	}
	now, _ := drain(t, c, s)
	if pv := msgsOf(now, MsgPreVote); len(pv) != 2 || pv[0].Term != 1 {
		t.Fatalf("pre-votes %v", pv)
	}
	_ = c.Step(Message{Type: MsgPreVoteResp, From: "n1", To: "n0", Term: 1})
	if c.role != RoleCandidate || c.term != 1 || c.vote != "n0" {
		t.Fatalf("role %s term %d vote %q", c.role, c.term, c.vote)
	}
	rd := c.Ready()
	if rd.HardState == nil || rd.HardState.Term != 1 || rd.HardState.VotedFor != "n0" {
		t.Fatalf("hard state %+v", rd.HardState)
	}
	// Even with a granted vote, it cannot lead before its own vote is durable.
	_ = s.SetHardState(*rd.HardState)
	c.Advance(rd)
	if c.role != RoleCandidate {
		t.Fatalf("role %s", c.role)
	}
	_ = c.Step(Message{Type: MsgVoteResp, From: "n1", To: "n0", Term: 1})
	if c.role != RoleLeader {
		t.Fatalf("role %s", c.role)
	}
	drain(t, c, s)
	e, _ := s.Entry(0)
	if e.Magic != MagicNoop || e.Term != 1 {
		t.Fatalf("leader did not append a no-op: %+v", e)
	}
}

func TestPendingSelfVoteGatesLeadership(t *testing.T) {
	// 5 nodes: three granted votes from others would be a quorum, but the
	// candidate still waits for its own vote to be persisted.
	ids := []string{"a", "b", "c", "d", "e"}
	s := NewMemoryStorage(0)
	c, _ := NewCore(CoreConfig{ID: "a", Peers: ids, Storage: s, ElectionTick: 10, HeartbeatTick: 1, Rand: rand.New(rand.NewPCG(1, 1)), DisablePreVote: true})
	c.campaign(false)
	for _, p := range []string{"b", "c", "d"} {
		_ = c.Step(Message{Type: MsgVoteResp, From: p, To: "a", Term: 1})
	}
	if c.role != RoleCandidate {
		t.Fatalf("became %s before persisting its vote", c.role)
	}
	drain(t, c, s)
	if c.role != RoleLeader {
		t.Fatalf("role %s", c.role)
	}
}

// §5.2: each server votes for at most one candidate in a term, and the
// vote is persisted before it is answered.
func TestOneVotePerTermPersistedFirst(t *testing.T) {
	s := NewMemoryStorage(0)
	c := newTestCore(t, "n0", s, func(cfg *CoreConfig) { cfg.DisableCheckQuorum = true })
	_ = c.Step(Message{Type: MsgVote, From: "n1", To: "n0", Term: 1, Index: -1})
	rd := c.Ready()
	if len(rd.Messages) != 0 || len(rd.MessagesAfterPersist) != 1 || rd.MessagesAfterPersist[0].Reject {
		t.Fatalf("vote reply not after persist: %+v", rd)
	}
	if rd.HardState == nil || rd.HardState.VotedFor != "n1" || rd.HardState.Term != 1 {
		t.Fatalf("hard state %+v", rd.HardState)
	}
	c.Advance(rd)
	_ = c.Step(Message{Type: MsgVote, From: "n2", To: "n0", Term: 1, Index: -1})
	_, after := drain(t, c, s)
	if len(after) != 1 || !after[0].Reject {
		t.Fatalf("second vote in term 1 granted: %v", after)
	}
	// A repeated request from the same candidate is granted again.
	_ = c.Step(Message{Type: MsgVote, From: "n1", To: "n0", Term: 1, Index: -1})
	_, after = drain(t, c, s)
	if len(after) != 1 || after[0].Reject {
		t.Fatalf("repeat vote: %v", after)
	}
}

// §5.4.1: a voter denies a candidate whose log is less up to date.
func TestVoteUpToDate(t *testing.T) {
	for _, tc := range []struct {
		name              string
		voter             []int64
		candTerm, candIdx int64
		grant             bool
	}{
		{"higher last term wins", []int64{1, 1, 1}, 2, 0, true},
		{"same term longer", []int64{1, 2}, 2, 2, true},
		{"same term equal", []int64{1, 2}, 2, 1, true},
		{"same term shorter", []int64{1, 2, 2}, 2, 1, false},
		{"lower last term", []int64{1, 3}, 2, 5, false},
		{"empty candidate", []int64{1}, 0, -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := storageWith(tc.voter...)
			c := newTestCore(t, "n0", s)
			_ = c.Step(Message{Type: MsgVote, From: "n1", To: "n0", Term: 10, Index: tc.candIdx, LogTerm: tc.candTerm})
			_, after := drain(t, c, s)
			if len(after) != 1 || after[0].Reject == tc.grant {
				t.Fatalf("grant=%v want %v (%v)", !after[0].Reject, tc.grant, after)
			}
			if c.term != 10 {
				t.Fatalf("voter did not adopt the term: %d", c.term)
			}
		})
	}
}

// Pre-vote: an isolated node does not inflate its term, and when it comes
// back it does not depose a healthy leader.
func TestPreVoteIsolatedNodeDoesNotDisrupt(t *testing.T) {
	nw := newNet(t, 3, nil)
	nw.elect("n0")
	nw.propose("n0", "a")
	nw.isolate("n2")
	nw.tick(100)
	if nw.cores["n2"].term != 1 {
		t.Fatalf("isolated node bumped its term to %d", nw.cores["n2"].term)
	}
	nw.heal()
	nw.tick(30)
	if nw.cores["n0"].role != RoleLeader || nw.cores["n0"].term != 1 {
		t.Fatalf("leader disturbed: %s term %d", nw.cores["n0"].role, nw.cores["n0"].term)
	}
	if nw.commits["n2"] != 1 {
		t.Fatalf("n2 did not catch up: %d", nw.commits["n2"])
	}
}

// Check quorum: a leader cut off from the majority steps down within two
// election timeouts; the majority elects a new leader.
func TestCheckQuorumStepDown(t *testing.T) {
	nw := newNet(t, 3, nil)
	nw.elect("n0")
	nw.isolate("n0")
	nw.tick(20)
	if nw.cores["n0"].role == RoleLeader {
		t.Fatal("isolated leader did not step down")
	}
	nw.tick(30)
	if l := nw.leader(); l == "" || l == "n0" {
		t.Fatalf("majority did not elect: %q", l)
	}
}

// Lease: a follower that heard from its leader within the election timeout
// ignores a (non-transfer) vote request with a higher term.
func TestLeaseIgnoresVote(t *testing.T) {
	s := NewMemoryStorage(0)
	c := newTestCore(t, "n0", s)
	_ = c.Step(Message{Type: MsgHeartbeat, From: "n1", To: "n0", Term: 1, Commit: -1})
	drain(t, c, s)
	_ = c.Step(Message{Type: MsgVote, From: "n2", To: "n0", Term: 2, Index: 5, LogTerm: 1})
	if c.term != 1 || c.HasReady() {
		t.Fatalf("vote in lease changed state: term %d", c.term)
	}
	_ = c.Step(Message{Type: MsgVote, From: "n2", To: "n0", Term: 2, Index: 5, LogTerm: 1, Force: true})
	_, after := drain(t, c, s)
	if c.term != 2 || len(after) != 1 || after[0].Reject {
		t.Fatalf("forced vote: term %d %v", c.term, after)
	}
}

// §5.3: AppendEntries consistency check; conflicting entries are truncated.
func TestAppendConsistencyAndTruncation(t *testing.T) {
	s := storageWith(1, 1, 2, 2)
	c := newTestCore(t, "n0", s)
	end0, _ := c.log.entryEnd(1)
	// prev (3, 3) does not match: reject with a hint.
	_ = c.Step(Message{Type: MsgApp, From: "n1", To: "n0", Term: 3, Index: 3, LogTerm: 3, Commit: -1})
	_, after := drain(t, c, s)
	if len(after) != 1 || !after[0].Reject || after[0].Hint != 3 || after[0].LogTerm != 2 {
		t.Fatalf("reject %v", after)
	}
	// Leader's entry 2 has term 3: entries 2,3 are replaced.
	e := Entry{Index: 2, Term: 3, Magic: MagicNormal, Body: []byte("new")}
	e.Pos, _ = s.Place(end0, e.Size())
	_ = c.Step(Message{Type: MsgApp, From: "n1", To: "n0", Term: 3, Index: 1, LogTerm: 1, Entries: []Entry{e}, Commit: 2})
	_, after = drain(t, c, s)
	if len(after) != 1 || after[0].Reject || after[0].Index != 2 {
		t.Fatalf("accept %v", after)
	}
	if got := terms(s); len(got) != 3 || got[2] != 3 {
		t.Fatalf("log terms %v", got)
	}
	if c.log.committed != 2 {
		t.Fatalf("commit %d", c.log.committed)
	}
	// A stale (already committed) append is answered with the commit index.
	_ = c.Step(Message{Type: MsgApp, From: "n1", To: "n0", Term: 3, Index: 0, LogTerm: 1, Commit: 2})
	_, after = drain(t, c, s)
	if after[0].Index != 2 || after[0].Reject {
		t.Fatalf("stale append answer %v", after)
	}
}

// A follower refuses entries placed where its own layout would not put them.
func TestFollowerChecksPositions(t *testing.T) {
	s := storageWith(1)
	c := newTestCore(t, "n0", s)
	e := Entry{Index: 1, Term: 1, Magic: MagicNormal, Body: []byte("x"), Pos: 999}
	_ = c.Step(Message{Type: MsgApp, From: "n1", To: "n0", Term: 1, Index: 0, LogTerm: 1, Entries: []Entry{e}, Commit: -1})
	drain(t, c, s)
	if s.LastIndex() != 0 {
		t.Fatal("misplaced entry accepted")
	}
}

// Fast backoff: a follower with a long divergent tail is repaired in a few
// round trips, not one per entry.
func TestFastBackoff(t *testing.T) {
	nw := newNet(t, 3, nil)
	nw.elect("n0")
	// n2 gets many entries in term 1 that nobody else has.
	nw.isolate("n0")
	for range 50 {
		_, _ = nw.cores["n0"].Propose([][]byte{[]byte("lost")}, nil)
	}
	nw.processAll()
	nw.queue = nil
	nw.heal()
	nw.isolate("n0")
	nw.tick(40) // n1 or n2 becomes leader
	nw.heal()
	l := nw.leader()
	if l == "" || l == "n0" {
		t.Fatalf("leader %q", l)
	}
	count := 0
	nw.drop = func(m Message) bool {
		if m.Type == MsgAppResp && m.Reject {
			count++
		}
		return false
	}
	nw.propose(l, "b")
	nw.tick(5)
	if count > 4 {
		t.Fatalf("%d rejections to repair the log", count)
	}
	if got, want := terms(nw.stores["n0"]), terms(nw.stores[l]); len(got) != len(want) {
		t.Fatalf("n0 %v, leader %v", got, want)
	}
}

// §5.4.2 (Figure 8): a leader never commits an entry of an earlier term
// by counting replicas; it commits it only with an entry of its own term.
func TestCommitOnlyCurrentTerm(t *testing.T) {
	s := storageWith(1, 2)
	c := newTestCore(t, "n0", s, func(cfg *CoreConfig) { cfg.DisablePreVote = true })
	c.campaign(false)
	drain(t, c, s)
	_ = c.Step(Message{Type: MsgVoteResp, From: "n1", To: "n0", Term: 3})
	if c.role != RoleLeader {
		t.Fatalf("role %s", c.role)
	}
	drain(t, c, s)
	// n1 stores the term-2 entry: a majority holds it, yet it is not committed.
	_ = c.Step(Message{Type: MsgAppResp, From: "n1", To: "n0", Term: 3, Index: 1})
	if c.log.committed != -1 {
		t.Fatalf("committed %d from an earlier term", c.log.committed)
	}
	// Once the no-op of term 3 (index 2) is on a majority, everything commits.
	_ = c.Step(Message{Type: MsgAppResp, From: "n1", To: "n0", Term: 3, Index: 2})
	if c.log.committed != 2 {
		t.Fatalf("commit %d", c.log.committed)
	}
}

// Heartbeats carry the commit index (bounded by the follower's match).
func TestHeartbeatCarriesCommit(t *testing.T) {
	nw := newNet(t, 3, nil)
	nw.elect("n0")
	nw.propose("n0", "a")
	// Lose the appends that would carry the new commit.
	var hb []Message
	nw.drop = func(m Message) bool {
		if m.Type == MsgHeartbeat {
			hb = append(hb, m)
		}
		return m.Type == MsgApp && len(m.Entries) == 0
	}
	nw.propose("n0", "b")
	if nw.commits["n1"] == 2 {
		t.Fatal("the dropped appends carried the commit anyway: the test no longer isolates heartbeats")
	}
	nw.tick(1)
	if len(hb) == 0 || hb[0].Commit != 2 {
		t.Fatalf("heartbeats %v", hb)
	}
	if nw.commits["n1"] != 2 || nw.commits["n2"] != 2 {
		t.Fatalf("commits %v", nw.commits)
	}
}

// Leadership transfer: the target is caught up, told to campaign at once,
// and wins although the others are in their leader lease.
func TestLeaderTransfer(t *testing.T) {
	nw := newNet(t, 3, nil)
	nw.elect("n0")
	nw.propose("n0", "a")
	if err := nw.cores["n0"].TransferLeadership("n2"); err != nil {
		t.Fatal(err)
	}
	nw.deliver()
	if nw.leader() != "n2" || nw.cores["n2"].term != 2 {
		t.Fatalf("leader %q", nw.leader())
	}
	if err := nw.cores["n0"].TransferLeadership("n1"); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("transfer on follower: %v", err)
	}
}

func TestLeaderTransferCatchUpAndAbort(t *testing.T) {
	nw := newNet(t, 3, nil)
	nw.elect("n0")
	// n2 misses some entries, then the transfer has to catch it up first.
	nw.isolate("n2")
	nw.propose("n0", "a", "b")
	nw.heal()
	if err := nw.cores["n0"].TransferLeadership("n2"); err != nil {
		t.Fatal(err)
	}
	if _, err := nw.cores["n0"].Propose([][]byte{[]byte("c")}, nil); !errors.Is(err, ErrTransferring) {
		t.Fatalf("propose during transfer: %v", err)
	}
	nw.deliver()
	if nw.leader() != "n2" {
		t.Fatalf("leader %q", nw.leader())
	}
	// Unreachable target: the transfer aborts after an election timeout.
	nw.isolate("n1")
	nw.drop = func(m Message) bool { return m.To == "n1" || m.From == "n1" || m.Type == MsgTimeoutNow }
	_ = nw.cores["n2"].TransferLeadership("n1")
	nw.tick(11)
	if nw.cores["n2"].leadTransferee != "" || nw.cores["n2"].role != RoleLeader {
		t.Fatalf("transfer not aborted: %q %s", nw.cores["n2"].leadTransferee, nw.cores["n2"].role)
	}
	if _, err := nw.cores["n2"].Propose([][]byte{[]byte("d")}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestPreferredLeader(t *testing.T) {
	nw := newNet(t, 3, func(c *CoreConfig) { c.PreferredLeader = "n1" })
	nw.elect("n0")
	nw.tick(3)
	if nw.leader() != "n1" {
		t.Fatalf("leader %q, want preferred n1", nw.leader())
	}
}

// Pipelining: in replicate state the leader sends several batches without
// waiting for answers, up to MaxInflight.
func TestPipelinedReplication(t *testing.T) {
	nw := newNet(t, 3, func(c *CoreConfig) { c.MaxMsgEntries = 1; c.MaxInflight = 3 })
	nw.elect("n0")
	nw.tick(2)
	c := nw.cores["n0"]
	_, _ = c.Propose([][]byte{[]byte("a"), []byte("b"), []byte("c"), []byte("d"), []byte("e")}, nil)
	now, _ := drain(t, c, nw.stores["n0"])
	apps := 0
	for _, m := range now {
		if m.Type == MsgApp && m.To == "n1" {
			apps++
		}
	}
	if apps != 3 {
		t.Fatalf("%d batches in flight to n1, want 3", apps)
	}
}

func TestHookPatchesBodyAndRejectsResize(t *testing.T) {
	nw := newNet(t, 3, nil)
	nw.elect("n0")
	c := nw.cores["n0"]
	ents, err := c.Propose([][]byte{make([]byte, 8)}, func(e *Entry) { e.Body[0] = byte(e.Pos) })
	if err != nil || ents[0].Body[0] != byte(ents[0].Pos) {
		t.Fatalf("%v %v", ents, err)
	}
	if _, err := c.Propose([][]byte{[]byte("x")}, func(e *Entry) { e.Body = nil }); !errors.Is(err, ErrHookResized) {
		t.Fatalf("got %v", err)
	}
	nw.deliver()
	e, _ := nw.stores["n2"].Entry(ents[0].Index)
	if e.Body[0] != byte(ents[0].Pos) {
		t.Fatal("follower lacks patched body")
	}
}

func TestSingleNode(t *testing.T) {
	s := NewMemoryStorage(0)
	c, _ := NewCore(CoreConfig{ID: "a", Peers: []string{"a"}, Storage: s, ElectionTick: 10, HeartbeatTick: 1, Rand: rand.New(rand.NewPCG(1, 1))})
	for range 20 {
		c.Tick()
		drain(t, c, s)
	}
	if c.role != RoleLeader || c.log.committed != 0 {
		t.Fatalf("role %s commit %d", c.role, c.log.committed)
	}
	_, _ = c.Propose([][]byte{[]byte("x")}, nil)
	drain(t, c, s)
	if c.log.committed != 1 {
		t.Fatalf("commit %d", c.log.committed)
	}
}

// Restart: term, vote, log and the commit hint come back from storage.
func TestRestartRecovers(t *testing.T) {
	s := storageWith(1, 1, 2)
	_ = s.SetHardState(HardState{Term: 3, VotedFor: "n1"})
	_ = s.SetCommitted(1)
	c := newTestCore(t, "n0", s)
	if c.term != 3 || c.vote != "n1" || c.log.committed != 1 || c.log.lastIndex() != 2 {
		t.Fatalf("term %d vote %q commit %d last %d", c.term, c.vote, c.log.committed, c.log.lastIndex())
	}
}

func TestStepRejectsBadMessages(t *testing.T) {
	c := newTestCore(t, "n0", NewMemoryStorage(0))
	for _, m := range []Message{
		{Type: 0, From: "n1", To: "n0"},
		{Type: MsgApp, From: "zz", To: "n0", Term: 1},
		{Type: MsgApp, From: "n0", To: "n0", Term: 1},
		{Type: MsgApp, From: "n1", To: "n2", Term: 1},
		{Type: MsgApp, From: "n1", To: "n0", Term: -1},
		{Type: MsgApp, From: "n1", To: "n0", Term: 1, Index: 0, Entries: []Entry{{Index: 5, Term: 1}}},
		{Type: MsgApp, From: "n1", To: "n0", Term: 1, Index: 0, Entries: []Entry{{Index: 1, Term: 2}}},
		{Type: MsgVote, From: "n1", To: "n0", Term: 1, Entries: []Entry{{Index: 0, Term: 1}}},
	} {
		if err := c.Step(m); !errors.Is(err, ErrBadMessage) {
			t.Errorf("%s: got %v", m.String(), err)
		}
	}
}

func TestMessageCodecRoundTrip(t *testing.T) {
	m := Message{Type: MsgApp, From: "n0", To: "n1", Term: 7, LogTerm: 6, Index: 41, Commit: 40, Hint: -1, Reject: true, Force: true,
		Entries: []Entry{{Index: 42, Term: 7, Pos: 100, Magic: 1, Body: []byte("hello")}, {Index: 43, Term: 7, Pos: 153, Magic: 2}}}
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got Message
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if got.String() != m.String() || !bytes.Equal(got.Entries[0].Body, m.Entries[0].Body) || got.Entries[1].Pos != 153 {
		t.Fatalf("got %+v", got)
	}
	for i := range b {
		var x Message
		_ = x.UnmarshalBinary(b[:i]) // must not panic
	}
	if MsgType(99).String() == "" || RoleLeader.String() != "leader" {
		t.Fatal("names")
	}
}

func FuzzUnmarshalStep(f *testing.F) {
	m := Message{Type: MsgApp, From: "n1", To: "n0", Term: 2, LogTerm: 1, Index: 0, Commit: 0,
		Entries: []Entry{{Index: 1, Term: 2, Pos: 50, Magic: 1, Body: []byte("x")}}}
	b, _ := m.MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		var m Message
		if m.UnmarshalBinary(data) != nil {
			return
		}
		s := storageWith(1)
		c := newTestCore(t, "n0", s)
		_ = c.Step(m)
		drain(t, c, s)
		// The same message into a leader.
		nw := newNet(t, 3, nil)
		nw.elect("n0")
		_ = nw.cores["n0"].Step(m)
		nw.process("n0")
		nw.queue = nil
	})
}

// A hostile or buggy peer's huge hint must not make the leader loop.
func TestRejectHintHugeIndex(t *testing.T) {
	nw := newNet(t, 3, nil)
	nw.elect("n0")
	c := nw.cores["n0"]
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Step(Message{Type: MsgAppResp, From: "n1", To: "n0", Term: 1, Index: 1 << 60, Reject: true, Hint: 1 << 60, LogTerm: 1})
		_ = c.Step(Message{Type: MsgAppResp, From: "n1", To: "n0", Term: 1, Index: 0, Reject: true, Hint: 1 << 60, LogTerm: 1})
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("leader loops on a huge hint")
	}
}

// DeferredSync (sync mode with a flusher goroutine): the leader counts its
// own copy of an entry towards commit only once Synced reports it durable;
// a majority of durable followers commits without it.
func TestDeferredSyncLeaderCountsOnlySynced(t *testing.T) {
	nw := newNet(t, 3, func(c *CoreConfig) { c.DeferredSync = true })
	nw.elect("n0")
	l := nw.cores["n0"]
	l.Synced(l.LastIndex())
	nw.deliver()
	nw.isolate("n2")
	ents := nw.propose("n0", "a")
	idx := ents[0].Index
	if nw.prs0Match(idx) {
		t.Fatalf("leader counts itself for unsynced entry %d", idx)
	}
	if nw.commits["n0"] >= idx {
		t.Fatalf("committed %d with one durable copy (n1) of a 3-node group", nw.commits["n0"])
	}
	l.Synced(idx)
	nw.processAll()
	if nw.commits["n0"] != idx {
		t.Fatalf("commit %d after Synced, want %d", nw.commits["n0"], idx)
	}
	// With both followers durable the leader's own fsync is not needed.
	nw.heal()
	ents = nw.propose("n0", "b")
	nw.tick(3)
	if nw.commits["n0"] != ents[0].Index {
		t.Fatalf("commit %d without the leader's fsync, want %d", nw.commits["n0"], ents[0].Index)
	}
}

func (nw *net) prs0Match(idx int64) bool { return nw.cores["n0"].prs["n0"].match >= idx }

// Commit-only notices: an idle, in-sync follower gets at most one per
// tick; a commit held back reaches it with the next tick. (With one
// appender every commit found a follower idle: a notice per append, a
// third of the leader's frames and of each follower's loop turns.)
func TestCommitNoticesAtMostOncePerTick(t *testing.T) {
	nw := newNet(t, 3, nil)
	nw.elect("n0")
	nw.tick(1)
	notices := map[string][]int64{} // follower -> commit indexes noticed
	nw.drop = func(m Message) bool {
		if m.CommitOnly {
			notices[m.To] = append(notices[m.To], m.Commit)
		}
		return false
	}
	var last Entry
	for i := range 5 { // five appends committed one by one within one tick
		last = nw.propose("n0", fmt.Sprint(i))[0]
	}
	if c := nw.cores["n0"].CommitIndex(); c != last.Index {
		t.Fatalf("leader commit %d, want %d", c, last.Index)
	}
	// The first answer commits each append: its sender is idle and gets
	// the notice; the other learns the commit from its next batch.
	if len(notices["n1"]) != 1 || len(notices["n2"]) > 1 {
		t.Fatalf("notices %v within one tick, want one for n1, at most one for n2", notices)
	}
	nw.tick(1)
	if n := notices["n1"]; len(n) != 2 || n[1] != last.Index {
		t.Fatalf("n1 got notices %v, want the held-back commit %d at the tick", n, last.Index)
	}
	for _, f := range []string{"n1", "n2"} {
		if c := nw.cores[f].CommitIndex(); c != last.Index {
			t.Fatalf("%s commit %d after the tick, want %d", f, c, last.Index)
		}
	}
	before := len(notices["n1"]) + len(notices["n2"])
	nw.tick(3) // nothing new: no more notices
	if len(notices["n1"])+len(notices["n2"]) != before {
		t.Fatalf("notices %v while idle", notices)
	}
}
