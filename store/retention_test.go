package store

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmqd/rmqd/internal/vfs"
)

func TestRetentionRemovesOldFilesButNotTheLast(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(t, fs)
	cfg.MappedFileSizeCommitLog = 4096
	cfg.MappedFileSizeConsumeQueue = 5 * CQUnitSize
	cfg.FileReservedTime = 1
	cfg.DeleteWhen = "04"
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC).UnixMilli())
	cfg.Now = func() time.Time { return time.UnixMilli(now.Load()) }
	cfg.CleanResourceInterval = time.Hour // driven by hand
	s := openStore(t, cfg)
	defer s.Shutdown()
	for i := 0; i < 60; i++ {
		m := newMsg("Old", 0, i, "")
		m.Body = make([]byte, 900)
		mustPut(t, s, m)
	}
	waitAll(t, s)
	s.cl.flush()
	before := len(s.classic.files.snapshot())
	if before < 10 {
		t.Fatalf("only %d files", before)
	}
	// Not the delete hour, disk not full: nothing happens.
	now.Add(2 * 3600 * 1000)
	if n := s.clean(false); n != 0 {
		t.Fatalf("removed %d outside deleteWhen", n)
	}
	// Manual run: every expired file except the last goes (batch max 10 per run).
	for s.DeleteExpiredFiles() > 0 {
	}
	files := s.classic.files.snapshot()
	if len(files) != 1 {
		t.Fatalf("%d files left, want only the last", len(files))
	}
	minPhy := s.GetMinPhyOffset()
	if minPhy != files[0].from {
		t.Fatalf("min phy %d", minPhy)
	}
	// Consume queue: files wholly below minPhy are gone, min offset corrected.
	minOff := s.GetMinOffsetInQueue("Old", 0)
	if minOff == 0 || s.GetCommitLogOffsetInQueue("Old", 0, minOff) < minPhy {
		t.Fatalf("consume queue min offset %d not corrected (min phy %d)", minOff, minPhy)
	}
	if r := s.GetMessage("g", "Old", 0, 0, 32, 0, nil); r.Status != OffsetTooSmall || r.NextBeginOffset != minOff {
		t.Fatalf("pull below min: %v %d", r.Status, r.NextBeginOffset)
	}
	if r := s.GetMessage("g", "Old", 0, minOff, 32, 0, nil); r.Status != Found {
		t.Fatalf("pull at min: %v", r.Status)
	}
	names, _ := fs.ReadDir("/store/consumequeue/Old/0")
	if len(names) >= 12 {
		t.Fatalf("consume queue files not removed: %v", names)
	}
	// Disk above the force ratio: even unexpired files go (never the last).
	for i := 0; i < 20; i++ {
		m := newMsg("Old", 0, i, "")
		m.Body = make([]byte, 900)
		mustPut(t, s, m)
	}
	waitAll(t, s)
	s.cl.flush()
	s.cfg.DiskUsedRatio = func(string) float64 { return 0.9 }
	if n := s.clean(false); n == 0 {
		t.Fatal("force clean removed nothing")
	}
	if len(s.classic.files.snapshot()) < 1 {
		t.Fatal("removed the last file")
	}
	if !isDeleteHour(time.Date(2026, 1, 1, 16, 5, 0, 0, time.UTC), "04;16") || isDeleteHour(time.Date(2026, 1, 1, 5, 0, 0, 0, time.UTC), "04;16") {
		t.Fatal("deleteWhen parsing")
	}
}

// TestConcurrentPutGetListen runs producers, pullers driven by the arriving
// listener, and admin reads together (meant for -race).
func TestConcurrentPutGetListen(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(t, fs)
	cfg.MappedFileSizeCommitLog = 16 * 1024
	s := openStore(t, cfg)
	const producers, perProducer, queues = 6, 150, 3
	var arrived atomic.Int64
	wake := make(chan struct{}, 1)
	s.SetMessageArrivingListener(func(topic string, qid int32, off, tags, ts int64) {
		if topic != "C" || ts <= 0 {
			t.Errorf("listener: %s %d", topic, ts)
		}
		// The unit exists when the listener runs.
		if s.GetMaxOffsetInQueue(topic, qid) <= off {
			t.Errorf("listener before the consume queue: %d <= %d", s.GetMaxOffsetInQueue(topic, qid), off)
		}
		arrived.Add(1)
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for i := 0; i < perProducer; i++ {
				m := newMsg("C", int32(i%queues), p*1000+i, "")
				if r := s.PutMessage(context.Background(), m); r.Status != PutOK {
					t.Errorf("put %v", r.Status)
					return
				}
			}
		}(p)
	}
	got := make([]int, queues)
	done := make(chan struct{})
	go func() {
		defer close(done)
		offs := make([]int64, queues)
		deadline := time.After(10 * time.Second)
		for total := 0; total < producers*perProducer; {
			for q := 0; q < queues; q++ {
				r := s.GetMessage("g", "C", int32(q), offs[q], 32, 0, nil)
				if r.Status == Found {
					got[q] += r.MsgCount
					total += r.MsgCount
				}
				if r.Status == Found || r.Status == OffsetTooSmall {
					offs[q] = r.NextBeginOffset
				}
				s.RuntimeInfo()
				s.QueryMessage("C", "common", 4, 0, 1<<62)
			}
			select {
			case <-wake:
			case <-time.After(20 * time.Millisecond):
			case <-deadline:
				t.Errorf("pulled %d of %d", total, producers*perProducer)
				return
			}
		}
	}()
	wg.Wait()
	<-done
	info := s.RuntimeInfo()
	for _, k := range []string{"commitLogMaxOffset", "commitLogMinOffset", "putTps", "getTotalTps", "getFoundTps",
		"getMissTps", "getTransferedTps", "dispatchBehindBytes", "earliestMessageTimeStamp", "putMessageDistributeTime"} {
		if _, ok := info[k]; !ok {
			t.Errorf("runtime info lacks %s", k)
		}
	}
	if info["putMessageTimesTotal"] != fmt.Sprint(producers*perProducer) {
		t.Errorf("putMessageTimesTotal %s", info["putMessageTimesTotal"])
	}
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if arrived.Load() != producers*perProducer {
		t.Fatalf("listener saw %d", arrived.Load())
	}
	for q, n := range got {
		if n != producers*perProducer/queues {
			t.Fatalf("queue %d: %d", q, n)
		}
	}
}

func TestShutdownUnderLoad(t *testing.T) {
	for _, flush := range []FlushDiskType{AsyncFlush, SyncFlush} {
		fs := vfs.NewMem()
		cfg := testConfig(t, fs)
		cfg.FlushDiskType = flush
		cfg.MappedFileSizeCommitLog = 8 * 1024
		s := openStore(t, cfg)
		var wg sync.WaitGroup
		var okCount atomic.Int64
		for p := 0; p < 8; p++ {
			wg.Add(1)
			go func(p int) {
				defer wg.Done()
				for i := 0; ; i++ {
					r := s.PutMessage(context.Background(), newMsg("U", int32(p%2), i, ""))
					if !r.Status.OK() {
						return
					}
					okCount.Add(1)
				}
			}(p)
		}
		time.Sleep(20 * time.Millisecond)
		if err := s.Shutdown(); err != nil {
			t.Fatalf("%v: shutdown: %v", flush, err)
		}
		wg.Wait()
		s2 := reopen(t, cfg, fs)
		got := len(checkQueue(t, s2, "U", 0)) + len(checkQueue(t, s2, "U", 1))
		if int64(got) < okCount.Load() {
			t.Fatalf("%v: %d acknowledged, %d after restart", flush, okCount.Load(), got)
		}
		s2.Shutdown()
	}
}
