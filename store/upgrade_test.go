package store

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rmqd/rmqd/internal/vfs"
)

// upgradeLog is a fakeLog whose first data file starts at the divide (the
// bytes below are end-of-file padding the store never reads).
type upgradeLog struct {
	*fakeLog
	begin int64
}

func (l *upgradeLog) BeginPos() int64 { return l.begin }

func newUpgradeLog(fileSize, begin int64) *upgradeLog {
	l := newFakeLog(fileSize)
	l.data = make([]byte, begin)
	for p := int64(0); p < begin; p += fileSize {
		binary.BigEndian.PutUint32(l.data[p:], uint32(0xFFFFFFFF))
		binary.BigEndian.PutUint32(l.data[p+4:], uint32(fileSize))
	}
	return &upgradeLog{fakeLog: l, begin: begin}
}

func TestUpgradeClassicStoreToDLedger(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(t, fs)
	cfg.MessageIndexEnable = true
	s := openStore(t, cfg)
	type old struct {
		q     int32
		qoff  int64
		phy   int64
		uniq  string
		msgID string
	}
	var olds []old
	const n = 700 // several 64 KiB files
	for i := 0; i < n; i++ {
		m := newMsg("UP", int32(i%3), i, fmt.Sprintf("tag%d", i%4))
		r := mustPut(t, s, m)
		olds = append(olds, old{int32(i % 3), r.QueueOffset, r.WroteOffset, fmt.Sprintf("UNIQ%08d", i), r.MsgID})
	}
	waitAll(t, s)
	classicEnd := s.cl.maxOffset()
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	// A DLedger-mode open before the seal is refused.
	if _, err := Open(replConfig(t, fs, newFakeLog(cfg.MappedFileSizeCommitLog))); err == nil {
		t.Fatal("unsealed classic records opened in DLedger mode")
	}
	rep, err := InspectUpgrade(cfg)
	if err != nil || !rep.HasRecords || rep.Sealed || rep.MaxPhyOffset != classicEnd || rep.MinPhyOffset != 0 || len(rep.Files) < 2 ||
		rep.Queues["UP/0"] != n/3+1 || rep.Queues["UP/2"] != n/3 || rep.Torn != "" {
		t.Fatalf("inspect: %v %+v", err, rep)
	}
	divide, err := PrepareUpgrade(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep2, err := InspectUpgrade(cfg); err != nil || !rep2.Sealed || rep2.Divide != divide || rep.Divide != divide ||
		rep.Fingerprint == "" || rep2.Fingerprint != rep.Fingerprint {
		t.Fatalf("inspect after seal: %v %+v (before %+v, divide %d)", err, rep2, rep, divide)
	}
	size := cfg.MappedFileSizeCommitLog
	if divide%size != 0 || divide < classicEnd || divide-classicEnd >= size {
		t.Fatalf("divide %d for classic end %d", divide, classicEnd)
	}
	// Idempotent: the recorded divide; and a fresh seal (divide file lost
	// in a crash before it was written) finds the same end.
	if d, err := PrepareUpgrade(cfg); err != nil || d != divide {
		t.Fatalf("second prepare: %d %v", d, err)
	}
	fs.Remove("/store/" + DivideFileName)
	if d, err := PrepareUpgrade(cfg); err != nil || d != divide {
		t.Fatalf("re-seal: %d %v", d, err)
	}
	// A log that does not start at the divide is refused.
	if _, err := Open(replConfig(t, fs, newFakeLog(size))); err == nil {
		t.Fatal("log at 0 over a divide accepted")
	}

	rl := newUpgradeLog(size, divide)
	rl.elect(1)
	rl.commitAll()
	s = openStore(t, replConfig(t, fs, rl))
	waitCond(t, "writable leader", s.IsLeader)
	check := func(s *MessageStore) {
		t.Helper()
		if m := s.GetMinPhyOffset(); m != 0 {
			t.Fatalf("min phy offset %d", m)
		}
		for _, o := range olds {
			r := s.GetMessage("g", "UP", o.q, o.qoff, 1, 0, nil)
			if r.Status != Found || len(r.Messages) != 1 {
				t.Fatalf("pull %+v: %v", o, r.Status)
			}
			m, err := s.LookMessageByOffset(o.phy)
			if err != nil || m.QueueOffset != o.qoff || m.QueueID != o.q || m.MsgID != o.msgID {
				t.Fatalf("look %+v: %v %+v", o, err, m)
			}
		}
		for _, o := range olds[:20] {
			qr, err := s.QueryMessage("UP", o.uniq, 4, 0, 1<<62)
			if err != nil || len(qr.Messages) != 1 {
				t.Fatalf("query %s: %v %d", o.uniq, err, len(qr.Messages))
			}
		}
	}
	check(s)
	rl.mu.Lock()
	rl.autoCommit = true
	rl.mu.Unlock()
	max0 := s.GetMaxOffsetInQueue("UP", 0)
	for i := 0; i < 30; i++ {
		r := mustPut(t, s, newMsg("UP", 0, n+i, "new"))
		if r.QueueOffset != max0+int64(i) || r.WroteOffset < divide {
			t.Fatalf("new put %d: %+v (queue had %d)", i, r, max0)
		}
		m, err := s.LookMessageByOffset(r.WroteOffset)
		if err != nil || m.QueueOffset != r.QueueOffset {
			t.Fatalf("new look: %v %+v", err, m)
		}
	}
	waitCond(t, "dispatch", func() bool { return s.GetMaxOffsetInQueue("UP", 0) == max0+30 })
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	// Restart: nothing changes.
	rl.elect(2)
	rl.commitAll()
	s = openStore(t, replConfig(t, fs, rl))
	check(s)
	if m := s.GetMaxOffsetInQueue("UP", 0); m != max0+30 {
		t.Fatalf("after restart: max offset %d", m)
	}
	// The first writable leader appended its classic-prefix fingerprint;
	// this replica agrees.
	if n := s.GetMaxOffsetInQueue(UpgradeTopic, 0); n < 1 || s.UpgradeError() != nil {
		t.Fatalf("fingerprint records %d, error %v", n, s.UpgradeError())
	}
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	// A replica whose classic prefix differs refuses it.
	good, _ := vfs.ReadFile(fs, "/store/"+DivideFileName)
	if err := vfs.WriteFileAtomic(fs, "/store/"+DivideFileName, []byte(fmt.Sprintf("%d\ndivide=%d tail=1 crc32=00000000\n", divide, divide))); err != nil {
		t.Fatal(err)
	}
	rl.elect(3)
	rl.commitAll()
	s = openStore(t, replConfig(t, fs, rl))
	if err := s.UpgradeError(); err == nil || !strings.Contains(err.Error(), "peer n0") {
		t.Fatalf("diverged prefix: %v", err)
	}
	if _, err := s.LookMessageByOffset(olds[0].phy); err == nil {
		t.Fatal("diverged replica served a classic record")
	}
	time.Sleep(200 * time.Millisecond)
	if s.IsLeader() {
		t.Fatal("diverged replica became writable")
	}
	s.Shutdown()
	vfs.WriteFileAtomic(fs, "/store/"+DivideFileName, good)
	rl.elect(4)
	rl.commitAll()
	s = openStore(t, replConfig(t, fs, rl))
	waitCond(t, "writable leader", s.IsLeader)
	check(s)
	s.Shutdown()
	// The divide file lost after the upgrade: the log's first position.
	fs.Remove("/store/" + DivideFileName)
	rl.elect(5)
	rl.commitAll()
	s = openStore(t, replConfig(t, fs, rl))
	defer s.Shutdown()
	waitCond(t, "writable leader", s.IsLeader)
	check(s)
	if s.UpgradeError() != nil {
		t.Fatal(s.UpgradeError())
	}
}
