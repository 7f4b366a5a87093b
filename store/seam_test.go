package store

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmqd/rmqd/internal/vfs"
)

// lagLog is a commitLog whose confirmed position is set by the test, as a
// DLedger-backed log's committed index would be: written records beyond it
// must not be dispatched, served or woken for.
type lagLog struct {
	*classicLog
	confirmed atomic.Int64
}

func (l *lagLog) confirmOffset() int64 { return min(l.confirmed.Load(), l.classicLog.confirmOffset()) }

func TestDispatchFollowsOnlyTheConfirmedPosition(t *testing.T) {
	cfg := testConfig(t, vfs.NewMem())
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lag := &lagLog{classicLog: s.classic}
	s.cl = lag
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	var arrived atomic.Int64
	s.SetMessageArrivingListener(func(string, int32, int64, int64, int64) { arrived.Add(1) })
	var puts []PutMessageResult
	for i := 0; i < 10; i++ {
		puts = append(puts, mustPut(t, s, newMsg("L", 0, i, "")))
	}
	// Confirm the first four only.
	lag.confirmed.Store(puts[4].WroteOffset)
	s.wakeDispatcher()
	if !s.waitDispatched(puts[4].WroteOffset, 5*time.Second) {
		t.Fatal("not dispatched up to the confirmed position")
	}
	time.Sleep(20 * time.Millisecond)
	if got := s.GetMaxOffsetInQueue("L", 0); got != 4 || arrived.Load() != 4 || s.DispatchedOffset() != puts[4].WroteOffset {
		t.Fatalf("max offset %d, arrivals %d, dispatched %d", got, arrived.Load(), s.DispatchedOffset())
	}
	if _, err := s.LookMessageByOffset(puts[6].WroteOffset); err == nil {
		t.Fatal("an unconfirmed record was served")
	}
	if r := s.GetMessage("g", "L", 0, 4, 32, 0, nil); r.Status != OffsetOverflowOne {
		t.Fatalf("%v", r.Status)
	}
	lag.confirmed.Store(1 << 62)
	s.wakeDispatcher()
	waitAll(t, s)
	if got := s.GetMaxOffsetInQueue("L", 0); got != 10 {
		t.Fatalf("max offset %d", got)
	}
}
