package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
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

// TestUpgradeClassicFilesAgeOut: after an upgrade the classic commitlog
// files below the divide go by normal retention once fileReservedTime has
// passed (the store's clock, no sleeps), the last one included; consume
// queues' min offsets move to the first new message, reads below answer
// cleanly (offset too small, not found), and nothing at or above the
// divide is touched, also after a restart.
func TestUpgradeClassicFilesAgeOut(t *testing.T) {
	fs := vfs.NewMem()
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC).UnixMilli())
	conf := func(cfg Config) Config {
		cfg.MessageIndexEnable = true
		cfg.FileReservedTime = 1
		cfg.DeleteWhen = "04"
		cfg.CleanResourceInterval = time.Hour // driven by hand
		cfg.Now = func() time.Time { return time.UnixMilli(now.Load()) }
		return cfg
	}
	cfg := conf(testConfig(t, fs))
	s := openStore(t, cfg)
	var oldPhys []int64
	for i := 0; i < 300; i++ {
		m := newMsg("AGE", int32(i%2), i, "old")
		m.Body = make([]byte, 900)
		oldPhys = append(oldPhys, mustPut(t, s, m).WroteOffset)
	}
	waitAll(t, s)
	oldMax := [2]int64{s.GetMaxOffsetInQueue("AGE", 0), s.GetMaxOffsetInQueue("AGE", 1)}
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	divide, err := PrepareUpgrade(cfg)
	if err != nil {
		t.Fatal(err)
	}
	classicFiles, _ := fs.ReadDir("/store/commitlog")
	if len(classicFiles) < 4 {
		t.Fatalf("%d classic files", len(classicFiles))
	}

	rl := newUpgradeLog(cfg.MappedFileSizeCommitLog, divide)
	rl.elect(1)
	rl.commitAll()
	rl.mu.Lock()
	rl.autoCommit = true
	rl.mu.Unlock()
	s = openStore(t, conf(replConfig(t, fs, rl)))
	waitCond(t, "writable leader", s.IsLeader)
	now.Add(30 * 60 * 1000) // new messages half an hour later
	var newPhys []int64
	for i := 0; i < 20; i++ {
		newPhys = append(newPhys, mustPut(t, s, newMsg("AGE", int32(i%2), 1000+i, "new")).WroteOffset)
	}
	waitCond(t, "dispatch", func() bool { return s.GetMaxOffsetInQueue("AGE", 1) == oldMax[1]+10 })
	rl.mu.Lock()
	logBytes := append([]byte(nil), rl.data[divide:]...)
	rl.mu.Unlock()

	// Not expired yet: nothing goes.
	if n := s.DeleteExpiredFiles(); n != 0 {
		t.Fatalf("removed %d unexpired classic files", n)
	}
	// fileReservedTime (1 h) after the last classic record: all of them go.
	now.Add(31 * 60 * 1000)
	for s.DeleteExpiredFiles() > 0 {
	}
	check := func(s *MessageStore) {
		t.Helper()
		if left, _ := fs.ReadDir("/store/commitlog"); len(left) != 0 {
			t.Fatalf("classic files left: %v", left)
		}
		if m := s.GetMinPhyOffset(); m != divide {
			t.Fatalf("min phy offset %d, want the divide %d", m, divide)
		}
		for q := int32(0); q < 2; q++ {
			min := s.GetMinOffsetInQueue("AGE", q)
			if min != oldMax[q] {
				t.Fatalf("queue %d: min offset %d, want the first new one %d", q, min, oldMax[q])
			}
			if r := s.GetMessage("g", "AGE", q, 0, 32, 0, nil); r.Status != OffsetTooSmall || r.NextBeginOffset != min {
				t.Fatalf("queue %d: pull below min: %v next %d", q, r.Status, r.NextBeginOffset)
			}
			r := s.GetMessage("g", "AGE", q, min, 32, 0, nil)
			if r.Status != Found || len(r.Messages) != 10 {
				t.Fatalf("queue %d: pull of the new messages: %v %d", q, r.Status, len(r.Messages))
			}
		}
		for _, phy := range oldPhys {
			if m, err := s.LookMessageByOffset(phy); err == nil || !errors.Is(err, ErrNotFound) {
				t.Fatalf("old offset %d: %v %+v", phy, err, m)
			}
		}
		for _, phy := range newPhys {
			if _, err := s.LookMessageByOffset(phy); err != nil {
				t.Fatalf("new offset %d: %v", phy, err)
			}
		}
		if qr, err := s.QueryMessage("AGE", "UNIQ00000005", 4, 0, 1<<62); err == nil && len(qr.Messages) != 0 {
			t.Fatalf("old key found: %d messages", len(qr.Messages))
		}
		if qr, err := s.QueryMessage("AGE", "UNIQ00001005", 4, 0, 1<<62); err != nil || len(qr.Messages) != 1 {
			t.Fatalf("new key: %v %d", err, len(qr.Messages))
		}
		rl.mu.Lock()
		same := bytes.Equal(rl.data[divide:divide+int64(len(logBytes))], logBytes)
		rl.mu.Unlock()
		if !same {
			t.Fatal("the replicated log changed")
		}
	}
	check(s)
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	rl.elect(2)
	rl.commitAll()
	s = openStore(t, conf(replConfig(t, fs, rl)))
	defer s.Shutdown()
	waitCond(t, "writable leader", s.IsLeader)
	check(s)
	if err := s.UpgradeError(); err != nil {
		t.Fatal(err)
	}
}
