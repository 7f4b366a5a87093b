package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmqd/rmqd/internal/vfs"
)

// TestMain fails the package when a store goroutine outlives its test.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(2 * time.Second)
		for {
			buf := make([]byte, 1<<20)
			stacks := string(buf[:runtime.Stack(buf, true)])
			leaked := ""
			for _, g := range strings.Split(stacks, "\n\n") {
				if strings.Contains(g, "rmqd/store.(*") && !strings.Contains(g, "TestMain") {
					leaked = g
				}
			}
			if leaked == "" {
				break
			}
			if time.Now().After(deadline) {
				println("leaked goroutine:\n" + leaked)
				code = 1
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	os.Exit(code)
}

func TestIndexRollsAndSurvivesRestart(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(t, fs)
	cfg.MaxIndexNum = 40 // 2 keys + 1 uniq key per message: a new file every ~13 messages
	cfg.MaxHashSlotNum = 16
	s := openStore(t, cfg)
	for i := 0; i < 100; i++ {
		mustPut(t, s, newMsg("I", 0, i, ""))
	}
	waitAll(t, s)
	names, _ := fs.ReadDir("/store/index")
	if len(names) < 5 {
		t.Fatalf("index files %v", names)
	}
	check := func(s *MessageStore) {
		t.Helper()
		res, _ := s.QueryMessage("I", "common", 200, 0, 1<<62)
		if len(res.Messages) != 100 {
			t.Fatalf("common: %d", len(res.Messages))
		}
		for _, k := range []string{"k0", "k13", "k99", "UNIQ00000057"} {
			if res, _ := s.QueryMessage("I", k, 4, 0, 1<<62); len(res.Messages) != 1 {
				t.Fatalf("%s: %d", k, len(res.Messages))
			}
		}
	}
	check(s)
	crashed := fs.ProcessCrashClone()
	s.Shutdown()
	s2 := reopen(t, cfg, fs)
	check(s2)
	s2.Shutdown()
	s3 := reopen(t, cfg, crashed)
	check(s3)
	s3.Shutdown()
}

func TestScheduleTopicTagsCodeIsDeliveryTime(t *testing.T) {
	cfg := testConfig(t, vfs.NewMem())
	s := openStore(t, cfg)
	defer s.Shutdown()
	m := newMsg(ScheduleTopic, 1, 0, "TagA")
	m.SetDelayTimeLevel(2) // 5s
	r := mustPut(t, s, m)
	waitAll(t, s)
	units, err := s.GetConsumeQueueUnits(ScheduleTopic, 1, 0, 10)
	if err != nil || len(units) != 1 {
		t.Fatalf("%v %v", units, err)
	}
	if units[0].TagsCode != r.StoreTimestamp+5000 || units[0].CommitLogOffset != r.WroteOffset || units[0].Size != r.WroteBytes {
		t.Fatalf("unit %+v, stored at %d", units[0], r.StoreTimestamp)
	}
}

func TestDeleteTopics(t *testing.T) {
	fs := vfs.NewMem()
	s := openStore(t, testConfig(t, fs))
	defer s.Shutdown()
	for i := 0; i < 6; i++ {
		mustPut(t, s, newMsg("Gone", int32(i%2), i, ""))
		mustPut(t, s, newMsg("Kept", 0, i, ""))
	}
	waitAll(t, s)
	if n, err := s.DeleteTopics(context.Background(), []string{"Gone"}); n != 2 || err != nil {
		t.Fatalf("deleted %d queues", n)
	}
	if vfs.Exists(fs, "/store/consumequeue/Gone") {
		t.Fatal("consume queue directory left")
	}
	if r := s.GetMessage("g", "Gone", 0, 0, 32, 0, nil); r.Status != NoMatchedLogicQueue {
		t.Fatalf("%v", r.Status)
	}
	if _, ok := s.Topics()["Kept"]; !ok {
		t.Fatal("Kept missing")
	}
	// The topic can come back and starts at offset 0.
	if r := mustPut(t, s, newMsg("Gone", 0, 9, "")); r.QueueOffset != 0 {
		t.Fatalf("queue offset %d", r.QueueOffset)
	}
	waitAll(t, s)
	if got := checkQueue(t, s, "Gone", 0); len(got) != 1 {
		t.Fatalf("%v", got)
	}
}

// TestCorruptDerivedFilesDoNotPanic scribbles over consume-queue, index and
// checkpoint files: opening and serving must not panic (style rule 9).
func TestCorruptDerivedFilesDoNotPanic(t *testing.T) {
	base := vfs.NewMem()
	cfg := testConfig(t, base)
	s := openStore(t, cfg)
	for i := 0; i < 60; i++ {
		mustPut(t, s, newMsg("Z", int32(i%2), i, "t"))
	}
	s.Shutdown()
	rng := rand.New(rand.NewPCG(5, 5))
	for round := 0; round < 20; round++ {
		fs := base.ProcessCrashClone()
		for _, path := range []string{"/store/consumequeue/Z/0/00000000000000000000", "/store/checkpoint"} {
			scribble(t, fs, path, rng)
		}
		if names, _ := fs.ReadDir("/store/index"); len(names) > 0 {
			scribble(t, fs, "/store/index/"+names[0], rng)
		}
		s2, err := Open(func() Config { c := cfg; c.FS = fs; return c }())
		if err != nil {
			continue // refusing is fine; panicking is not
		}
		s2.Start()
		for q := int32(0); q < 2; q++ {
			for off := int64(-1); off < 40; off += 7 {
				r := s2.GetMessage("g", "Z", q, off, 32, 0, tagFilter{TagsHashCode("t"): true})
				DecodeMessages(r.Body(), true)
			}
			s2.GetOffsetInQueueByTime("Z", q, 1)
			s2.GetEarliestMessageTime("Z", q)
		}
		s2.QueryMessage("Z", "common", 64, 0, 1<<62)
		mustPut(t, s2, newMsg("Z", 0, 1000, "t"))
		s2.Shutdown()
	}
}

func scribble(t *testing.T, fs vfs.FS, path string, rng *rand.Rand) {
	f, err := fs.OpenFile(path, os.O_RDWR)
	if err != nil {
		return
	}
	defer f.Close()
	size, _ := f.Size()
	for i := 0; i < 8 && size > 0; i++ {
		b := make([]byte, 1+rng.IntN(64))
		for j := range b {
			b[j] = byte(rng.IntN(256))
		}
		f.WriteAt(b, rng.Int64N(min(size, 4096)))
	}
}

func TestConsumeQueueWriteErrorsAreRetried(t *testing.T) {
	var fail atomic.Bool
	efs := &vfs.ErrorFS{FS: vfs.NewMem(), Inject: func(op vfs.Op, path string) error {
		if fail.Load() && op == vfs.OpWrite && strings.Contains(path, "/consumequeue/") {
			return vfs.ErrInjected
		}
		return nil
	}}
	s := openStore(t, testConfig(t, efs))
	defer s.Shutdown()
	mustPut(t, s, newMsg("W", 0, 0, ""))
	waitAll(t, s)
	fail.Store(true)
	for i := 1; i < 10; i++ {
		mustPut(t, s, newMsg("W", 0, i, ""))
	}
	time.Sleep(50 * time.Millisecond)
	if got := s.GetMaxOffsetInQueue("W", 0); got != 1 {
		t.Fatalf("units visible despite failing writes: %d", got)
	}
	fail.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for s.GetMaxOffsetInQueue("W", 0) != 10 {
		if time.Now().After(deadline) {
			t.Fatalf("consume queue stuck at %d", s.GetMaxOffsetInQueue("W", 0))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := checkQueueT(t, s); got != 10 {
		t.Fatalf("%d messages", got)
	}
}

func checkQueueT(t *testing.T, s *MessageStore) int {
	r := s.GetMessage("g", "W", 0, 0, 32, 0, nil)
	if r.Status != Found {
		t.Fatalf("%v", r.Status)
	}
	return r.MsgCount
}

// Consume queues, the index and the checkpoint are fsynced every
// FlushConsumeQueueInterval (flushIntervalConsumeQueue), not at the
// commitlog's FlushInterval.
func TestConsumeQueueFlushInterval(t *testing.T) {
	for _, every := range []time.Duration{time.Hour, 5 * time.Millisecond} {
		var cqSyncs atomic.Int64
		efs := &vfs.ErrorFS{FS: vfs.NewMem(), Inject: func(op vfs.Op, path string) error {
			if op == vfs.OpSync && (strings.Contains(path, "/consumequeue/") || strings.Contains(path, "/index/") || strings.HasSuffix(path, "/checkpoint")) {
				cqSyncs.Add(1)
			}
			return nil
		}}
		cfg := testConfig(t, efs)
		cfg.FlushInterval = 5 * time.Millisecond
		cfg.FlushConsumeQueueInterval = every
		s := openStore(t, cfg)
		mustPut(t, s, newMsg("F", 0, 0, ""))
		waitAll(t, s)
		before := cqSyncs.Load() // creating the queue's and the index's files syncs them
		for i := 1; i < 20; i++ {
			mustPut(t, s, newMsg("F", 0, i, ""))
			time.Sleep(5 * time.Millisecond) // many commitlog flush periods, each with new units
		}
		waitAll(t, s)
		if every == time.Hour {
			time.Sleep(50 * time.Millisecond)
			if n := cqSyncs.Load() - before; n != 0 {
				t.Fatalf("consume queue/index/checkpoint fsynced %d times within a %v flushIntervalConsumeQueue", n, every)
			}
		} else {
			deadline := time.Now().Add(5 * time.Second)
			for cqSyncs.Load() == before {
				if time.Now().After(deadline) {
					t.Fatalf("consume queues never fsynced with a %v flushIntervalConsumeQueue", every)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		s.Shutdown()
	}
}

// A sync writes the index's dirty slots in runs that merge gaps of less
// than a page: a few WriteAt calls for hundreds of slots scattered over
// the table, and queries still find every key, after a restart too.
func TestIndexSyncWritesSlotsInPageRuns(t *testing.T) {
	var writes atomic.Int64
	mem := vfs.NewMem()
	efs := &vfs.ErrorFS{FS: mem, Inject: func(op vfs.Op, path string) error {
		if op == vfs.OpWrite && strings.Contains(path, "/index/") {
			writes.Add(1)
		}
		return nil
	}}
	cfg := testConfig(t, efs)
	cfg.MaxHashSlotNum = 100000 // 300 random keys: slots ~330 apart on average
	cfg.MaxIndexNum = 4000
	cfg.FlushConsumeQueueInterval = time.Hour // only the flush below
	s := openStore(t, cfg)
	rng := rand.New(rand.NewPCG(8, 8))
	keys := make([]string, 300)
	for i := range keys {
		keys[i] = fmt.Sprintf("%016x", rng.Uint64())
	}
	for i := 0; i < len(keys); i += 3 {
		m := newMsg("P", 0, i, "")
		m.SetProperty(PropertyKeys, keys[i]+" "+keys[i+1])
		m.SetProperty(PropertyUniqClientMessageIDKey, keys[i+2])
		mustPut(t, s, m)
	}
	waitAll(t, s)
	writes.Store(0)
	if err := s.flushLogics(); err != nil {
		t.Fatal(err)
	}
	// 300 dirty slots: ~15 page-merged runs (~250 runs of slots < 64 apart).
	if n := writes.Load(); n > 40 {
		t.Fatalf("index sync made %d writes", n)
	}
	crashed := mem.ProcessCrashClone()
	s.Shutdown()
	cfg.FS = crashed
	s2 := openStore(t, cfg)
	defer s2.Shutdown()
	for _, k := range keys {
		if res, _ := s2.QueryMessage("P", k, 4, 0, 1<<62); len(res.Messages) != 1 {
			t.Fatalf("%s: %d messages", k, len(res.Messages))
		}
	}
}
