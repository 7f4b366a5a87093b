package dledger

import (
	"bytes"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// Logs that begin after data kept outside them (logstore's StartPos) and
// the group fingerprint naming that data.

const (
	fpFileSize = 1 << 20
	fpStart    = 3 << 20 // where the log of replicas holding outside data begins
)

// newStartNet builds a paper-test network of 3 cores: starts[id] is where
// the id's empty log begins, fps[id] its fingerprint. Logs go to the
// returned observer.
func newStartNet(t *testing.T, starts map[string]int64, fps map[string]string) (*net, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.InfoLevel)
	nw := &net{t: t, cores: map[string]*Core{}, stores: map[string]*MemoryStorage{}, ids: ids3, commits: map[string]int64{}}
	for _, id := range ids3 {
		s := NewMemoryStorageAt(fpFileSize, starts[id])
		nw.stores[id] = s
		cfg := testConfig(id, ids3, s)
		cfg.Logger = zap.New(core)
		if fp := fps[id]; fp != "" {
			cfg.Fingerprint = []byte(fp)
		}
		c, err := NewCore(cfg)
		if err != nil {
			t.Fatal(err)
		}
		nw.cores[id] = c
	}
	return nw, logs
}

// electNow makes id campaign at once (as after a transfer: the others'
// leader lease does not hold it back) and checks it won.
func electNow(nw *net, id string) {
	nw.t.Helper()
	nw.cores[id].campaign(true)
	nw.deliver()
	if nw.cores[id].Role() != RoleLeader {
		nw.t.Fatalf("%s did not win: %s", id, nw.cores[id].Role())
	}
}

func samePositions(t *testing.T, a, b *MemoryStorage) {
	t.Helper()
	ea, eb := a.Snapshot(), b.Snapshot()
	if len(ea) != len(eb) || len(ea) == 0 {
		t.Fatalf("logs of %d and %d entries", len(ea), len(eb))
	}
	for i := range ea {
		if ea[i].Index != eb[i].Index || ea[i].Term != eb[i].Term || ea[i].Pos != eb[i].Pos || !bytes.Equal(ea[i].Body, eb[i].Body) {
			t.Fatalf("entry %d: %+v vs %+v", i, ea[i], eb[i])
		}
	}
}

// TestEmptyFollowerBeginsAtLeadersFirstEntry: n0 and n1 begin their logs at
// 3 MiB, n2's empty log at 0. n2 takes the leader's positions (its log
// begins at the first entry it is sent), serves reads there, and once it
// holds the entries it can lead: what it appends continues the same
// positions on the others.
func TestEmptyFollowerBeginsAtLeadersFirstEntry(t *testing.T) {
	nw, _ := newStartNet(t, map[string]int64{"n0": fpStart, "n1": fpStart}, nil)
	nw.elect("n0")
	nw.propose("n0", "a", "b", "c")
	nw.tick(3) // commit index reaches the followers
	samePositions(t, nw.stores["n0"], nw.stores["n2"])
	s2 := nw.stores["n2"]
	if first := s2.Snapshot()[0]; first.Pos != fpStart || first.Magic != MagicNoop {
		t.Fatalf("n2's first entry %+v, want the no-op at %d", first, fpStart)
	}
	if got, want := s2.End(), nw.stores["n0"].End(); got != want {
		t.Fatalf("n2 ends at %d, leader at %d", got, want)
	}
	if c := nw.cores["n2"].CommitIndex(); c != 3 {
		t.Fatalf("n2 committed %d, want 3", c)
	}
	buf := make([]byte, EntryHeaderSize+1)
	last := s2.Snapshot()[3]
	if _, err := s2.ReadAt(buf, last.Pos); err != nil || buf[EntryHeaderSize] != 'c' {
		t.Fatalf("n2 ReadAt(%d): %v %q", last.Pos, err, buf)
	}
	if _, err := s2.ReadAt(buf, 0); err == nil {
		t.Fatal("n2 reads below its log's first entry")
	}

	// n0 goes away; n2 (holding everything) leads with n1.
	nw.isolate("n0")
	electNow(nw, "n2")
	nw.propose("n2", "d")
	nw.tick(3)
	samePositions(t, nw.stores["n2"], nw.stores["n1"])
	ents := nw.stores["n1"].Snapshot()
	if e := ents[len(ents)-1]; string(e.Body) != "d" || e.Term != nw.cores["n2"].Term() {
		t.Fatalf("n1's last entry %+v", e)
	}
	if c := nw.cores["n1"].CommitIndex(); c != int64(len(ents)-1) {
		t.Fatalf("n1 committed %d of %d entries", c, len(ents))
	}
}

// TestFingerprintDivergedCandidateCannotLead: n2's fingerprint differs. It
// campaigns first (pre-vote and, forced, a real vote) and never wins; the
// agreeing n0 and n1 form the group; both sides log the peer and the two
// fingerprints. n2 may still follow (its log is the group's).
func TestFingerprintDivergedCandidateCannotLead(t *testing.T) {
	all := map[string]int64{"n0": fpStart, "n1": fpStart, "n2": fpStart}
	nw, logs := newStartNet(t, all, map[string]string{"n0": "A", "n1": "A", "n2": "B"})
	nw.cores["n2"].campaign(false) // pre-vote
	nw.deliver()
	if r := nw.cores["n2"].Role(); r == RoleLeader {
		t.Fatal("the diverged replica won its pre-vote campaign")
	}
	nw.cores["n2"].campaign(true) // a real vote (as after a transfer)
	nw.deliver()
	if r := nw.cores["n2"].Role(); r == RoleLeader {
		t.Fatal("the diverged replica won an election")
	}
	refused := logs.FilterMessageSnippet("refusing the vote").FilterField(zap.String("peer", "n2")).All()
	if len(refused) == 0 {
		t.Fatalf("no voter logged refusing n2: %v", logs.All())
	}
	for _, e := range refused {
		if e.Level != zapcore.ErrorLevel || !strings.Contains(e.ContextMap()["peerFingerprint"].(string), "B") ||
			!strings.Contains(e.ContextMap()["remedy"].(string), "identical") {
			t.Fatalf("refusal log %v", e.ContextMap())
		}
	}
	if logs.FilterMessageSnippet("refuses our candidacy").FilterField(zap.String("peer", "n0")).Len() == 0 {
		t.Fatalf("n2 did not log which peer refused it: %v", logs.All())
	}
	nw.elect("n0")
	nw.propose("n0", "x")
	nw.tick(3)
	if nw.leader() != "n0" {
		t.Fatalf("leader %q", nw.leader())
	}
	samePositions(t, nw.stores["n0"], nw.stores["n1"])
	// n2 refuses its vote to n0 and n1 but follows the leader.
	samePositions(t, nw.stores["n0"], nw.stores["n2"])
}

// TestFingerprintEmptyCandidateWithoutOne: n2 has no fingerprint and an
// empty log beginning at 0: fingerprinted voters refuse it (it would start
// the log at its own position). Once it holds the group's entries it may
// lead.
func TestFingerprintEmptyCandidateWithoutOne(t *testing.T) {
	nw, logs := newStartNet(t, map[string]int64{"n0": fpStart, "n1": fpStart}, map[string]string{"n0": "A", "n1": "A"})
	nw.cores["n2"].campaign(true)
	nw.deliver()
	if nw.cores["n2"].Role() == RoleLeader {
		t.Fatal("an empty replica without a fingerprint led a fingerprinted group")
	}
	if logs.FilterMessageSnippet("empty log and no group fingerprint").FilterField(zap.String("peer", "n2")).Len() == 0 {
		t.Fatalf("no refusal logged: %v", logs.All())
	}
	nw.elect("n0")
	nw.propose("n0", "a")
	nw.tick(3)
	samePositions(t, nw.stores["n0"], nw.stores["n2"])
	nw.isolate("n0")
	electNow(nw, "n2")
	nw.propose("n2", "b")
	nw.tick(3)
	samePositions(t, nw.stores["n2"], nw.stores["n1"])
}

func TestFingerprintWire(t *testing.T) {
	m := Message{Type: MsgPreVote, From: "n2", To: "n0", Term: 3, LogTerm: 2, Index: 7, Commit: -1, Hint: -1, Fingerprint: []byte("divide=3145728 crc32=1")}
	b, _ := m.MarshalBinary()
	if len(b) != m.BinarySize() {
		t.Fatalf("BinarySize %d, encoded %d", m.BinarySize(), len(b))
	}
	var got Message
	if err := got.UnmarshalBinary(b); err != nil || string(got.Fingerprint) != string(m.Fingerprint) || got.Index != 7 {
		t.Fatalf("decoded %v %q: %v", &got, got.Fingerprint, err)
	}
	// A flagged but empty fingerprint is not an encoding we produce.
	m.Fingerprint = nil
	b, _ = m.MarshalBinary()
	b[2] |= 8
	b = append(b, 0)
	if err := got.UnmarshalBinary(b); err == nil {
		t.Fatal("empty flagged fingerprint accepted")
	}
}
