package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmqd/rmqd/internal/vfs"
)

// checkQueue reads a whole queue and returns the bodies by queue offset,
// failing on gaps or records whose QUEUEOFFSET disagrees.
func checkQueue(t *testing.T, s *MessageStore, topic string, qid int32) []string {
	t.Helper()
	var out []string
	off := s.GetMinOffsetInQueue(topic, qid)
	for off < s.GetMaxOffsetInQueue(topic, qid) {
		r := s.GetMessage("g", topic, qid, off, 32, 0, nil)
		if r.Status != Found {
			t.Fatalf("%s/%d@%d: %v", topic, qid, off, r.Status)
		}
		msgs, err := DecodeMessages(r.Body(), true)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range msgs {
			if m.QueueOffset != off+int64(i) || m.Topic != topic || m.QueueID != qid {
				t.Fatalf("%s/%d: record %d has queue offset %d", topic, qid, off+int64(i), m.QueueOffset)
			}
			out = append(out, string(m.Body))
		}
		off = r.NextBeginOffset
	}
	return out
}

func reopen(t *testing.T, cfg Config, fs vfs.FS) *MessageStore {
	t.Helper()
	cfg.FS = fs
	return openStore(t, cfg)
}

func TestCleanAndAbnormalRestart(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(fmt.Sprintf("crash=%v", crash), func(t *testing.T) {
			fs := vfs.NewMem()
			cfg := testConfig(t, fs)
			s := openStore(t, cfg)
			for i := 0; i < 150; i++ {
				m := newMsg("R", int32(i%3), i, "")
				m.Body = []byte(fmt.Sprintf("%d-%s", i, make([]byte, 400)))
				mustPut(t, s, m)
			}
			var next vfs.FS = fs
			if crash {
				next = fs.ProcessCrashClone()
				if !vfs.Exists(next, "/store/abort") {
					t.Fatal("abort file missing while running")
				}
			}
			if err := s.Shutdown(); err != nil {
				t.Fatal(err)
			}
			if !crash && vfs.Exists(fs, "/store/abort") {
				t.Fatal("abort file left after clean shutdown")
			}
			s2 := reopen(t, cfg, next)
			defer s2.Shutdown()
			for q := int32(0); q < 3; q++ {
				if got := checkQueue(t, s2, "R", q); len(got) != 50 {
					t.Fatalf("queue %d: %d messages", q, len(got))
				}
			}
			r := mustPut(t, s2, newMsg("R", 0, 999, ""))
			if r.QueueOffset != 50 {
				t.Fatalf("queue offset after restart %d", r.QueueOffset)
			}
			waitAll(t, s2)
			if res, _ := s2.QueryMessage("R", "k77", 4, 0, 1<<62); len(res.Messages) != 1 {
				t.Fatalf("index after restart: %d", len(res.Messages))
			}
		})
	}
}

// TestTornTail cuts the last record at every kind of offset (zeros or
// garbage after the cut): recovery truncates at the record's start, the
// consume queue loses exactly that unit, and the next put reuses the spot.
func TestTornTail(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(t, fs)
	s := openStore(t, cfg)
	var last PutMessageResult
	for i := 0; i < 20; i++ {
		last = mustPut(t, s, newMsg("T", 0, i, "tag"))
	}
	waitAll(t, s)
	base := fs.ProcessCrashClone()
	s.Shutdown()
	rng := rand.New(rand.NewPCG(1, 2))
	cuts := []int{0, 1, 4, 8, 20, 28, 60, 84, 90, int(last.WroteBytes) - 1}
	for i := 0; i < 10; i++ {
		cuts = append(cuts, rng.IntN(int(last.WroteBytes)))
	}
	for _, cut := range cuts {
		for _, garbage := range []bool{false, true} {
			clone := base.ProcessCrashClone()
			f, err := clone.OpenFile("/store/commitlog/00000000000000000000", os.O_RDWR)
			if err != nil {
				t.Fatal(err)
			}
			tail := make([]byte, int(last.WroteBytes)-cut)
			if garbage {
				for i := range tail {
					tail[i] = byte(rng.IntN(256))
				}
			}
			f.WriteAt(tail, last.WroteOffset+int64(cut))
			f.Close()
			s2 := reopen(t, cfg, clone)
			if got := s2.GetMaxPhyOffset(); got != last.WroteOffset {
				t.Fatalf("cut %d garbage %v: max phy %d want %d", cut, garbage, got, last.WroteOffset)
			}
			if got := checkQueue(t, s2, "T", 0); len(got) != 19 {
				t.Fatalf("cut %d: %d messages", cut, len(got))
			}
			r := mustPut(t, s2, newMsg("T", 0, 100, "tag"))
			if r.WroteOffset != last.WroteOffset || r.QueueOffset != 19 {
				t.Fatalf("cut %d: next put at %d/%d", cut, r.WroteOffset, r.QueueOffset)
			}
			s2.Shutdown()
		}
	}
}

func TestCRCFlipInLastRecord(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(t, fs)
	s := openStore(t, cfg)
	var puts []PutMessageResult
	for i := 0; i < 10; i++ {
		puts = append(puts, mustPut(t, s, newMsg("C", 0, i, "")))
	}
	waitAll(t, s)
	clone := fs.ProcessCrashClone()
	s.Shutdown()
	f, _ := clone.OpenFile("/store/commitlog/00000000000000000000", os.O_RDWR)
	var b [1]byte
	at := puts[9].WroteOffset + 90 // inside the body
	f.ReadAt(b[:], at)
	b[0] ^= 0x40
	f.WriteAt(b[:], at)
	f.Close()
	s2 := reopen(t, cfg, clone)
	defer s2.Shutdown()
	if s2.GetMaxPhyOffset() != puts[9].WroteOffset || s2.GetMaxOffsetInQueue("C", 0) != 9 {
		t.Fatalf("max phy %d, max offset %d", s2.GetMaxPhyOffset(), s2.GetMaxOffsetInQueue("C", 0))
	}
}

// crashUnderLoad runs concurrent producers, takes a crash image while they
// run, and checks that every message acknowledged before the image is in the
// recovered store exactly once, at its acknowledged queue offset.
func crashUnderLoad(t *testing.T, flush FlushDiskType, seed uint64) {
	fs := vfs.NewMem()
	cfg := testConfig(t, fs)
	cfg.FlushDiskType = flush
	cfg.FlushInterval = 5 * time.Millisecond
	cfg.FlushConsumeQueueInterval = 5 * time.Millisecond
	cfg.MappedFileSizeCommitLog = 8 * 1024 // rolls during the run
	cfg.MappedFileSizeConsumeQueue = 10 * CQUnitSize
	s := openStore(t, cfg)
	type ack struct {
		body string
		qid  int32
		qo   int64
	}
	var mu sync.Mutex
	var acked []ack
	var image *vfs.MemFS
	var imageAcked []ack
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for p := 0; p < 8; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				m := newMsg("S", int32(p%4), i, "")
				m.Body = []byte(fmt.Sprintf("p%d-%d-%s", p, i, make([]byte, 300)))
				r := s.PutMessage(context.Background(), m)
				if r.Status != PutOK {
					t.Errorf("put: %v", r.Status)
					return
				}
				mu.Lock()
				acked = append(acked, ack{string(m.Body), m.QueueID, r.QueueOffset})
				mu.Unlock()
			}
		}(p)
	}
	// Let some puts complete (and more be in flight) before the crash.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 40 {
			break
		}
	}
	mu.Lock()
	rng := rand.New(rand.NewPCG(seed, 7))
	if flush == SyncFlush {
		image = fs.CrashClone(rng)
	} else {
		image = fs.ProcessCrashClone()
	}
	imageAcked = append(imageAcked, acked...)
	mu.Unlock()
	close(stop)
	wg.Wait()
	s.Shutdown()
	if len(imageAcked) == 0 {
		t.Fatal("nothing acknowledged")
	}
	s2 := reopen(t, cfg, image)
	defer s2.Shutdown()
	queues := map[int32][]string{}
	for q := int32(0); q < 4; q++ {
		queues[q] = checkQueue(t, s2, "S", q)
	}
	seen := map[string]bool{}
	for _, msgs := range queues {
		for _, b := range msgs {
			if seen[b] {
				t.Fatalf("duplicate %q", b[:10])
			}
			seen[b] = true
		}
	}
	for _, a := range imageAcked {
		q := queues[a.qid]
		if a.qo >= int64(len(q)) || q[a.qo] != a.body {
			t.Fatalf("seed %d: acknowledged message %q (queue %d offset %d) lost; queue has %d", seed, a.body[:8], a.qid, a.qo, len(q))
		}
	}
	t.Logf("seed %d: %d acknowledged before the crash, %d recovered", seed, len(imageAcked), len(seen))
}

func TestSyncFlushPowerLossKeepsAcknowledged(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { crashUnderLoad(t, SyncFlush, seed) })
	}
}

func TestAsyncFlushProcessCrashKeepsAcknowledged(t *testing.T) {
	crashUnderLoad(t, AsyncFlush, 1)
}

func TestCorruptionBeforeSyncedFilesIsReported(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(t, fs)
	cfg.MappedFileSizeCommitLog = 4096
	s := openStore(t, cfg)
	var puts []PutMessageResult
	for i := 0; i < 40; i++ {
		m := newMsg("M", 0, i, "")
		m.Body = make([]byte, 500)
		puts = append(puts, mustPut(t, s, m))
	}
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	// Flip a body byte of a record in the first file: later files hold fsynced records.
	f, _ := fs.OpenFile("/store/commitlog/00000000000000000000", os.O_RDWR)
	f.WriteAt([]byte{0xFF, 0xFF}, puts[2].WroteOffset+100)
	f.Close()
	// Make the restart abnormal so the whole log is checked.
	af, _ := fs.OpenFile("/store/abort", os.O_RDWR|os.O_CREATE)
	af.Close()
	if _, err := Open(cfg); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open over a corrupt middle: %v", err)
	}
}

func TestWriteAndSyncErrorsAreSticky(t *testing.T) {
	for _, op := range []vfs.Op{vfs.OpWrite, vfs.OpSync} {
		t.Run(string(op), func(t *testing.T) {
			mem := vfs.NewMem()
			var fail atomic.Bool
			efs := &vfs.ErrorFS{FS: mem, Inject: func(o vfs.Op, path string) error {
				if fail.Load() && o == op && strings.Contains(path, "/commitlog/") {
					return vfs.ErrInjected
				}
				return nil
			}}
			cfg := testConfig(t, efs)
			cfg.FlushDiskType = SyncFlush
			s := openStore(t, cfg)
			for i := 0; i < 5; i++ {
				mustPut(t, s, newMsg("E", 0, i, ""))
			}
			fail.Store(true)
			r := s.PutMessage(context.Background(), newMsg("E", 0, 5, ""))
			if r.Status.OK() {
				t.Fatalf("put with failing %s: %v", op, r.Status)
			}
			fail.Store(false)
			if r := s.PutMessage(context.Background(), newMsg("E", 0, 6, "")); r.Status.OK() {
				t.Fatalf("put after a failed %s: %v (must stay refused)", op, r.Status)
			}
			s.Shutdown()
			// A power loss now, then a restart: the 5 acknowledged messages are there.
			s2 := reopen(t, cfg, mem.CrashClone(nil))
			defer s2.Shutdown()
			if got := checkQueue(t, s2, "E", 0); len(got) < 5 {
				t.Fatalf("%d messages after restart", len(got))
			}
			mustPut(t, s2, newMsg("E", 0, 7, ""))
		})
	}
}

func TestLockFile(t *testing.T) {
	cfg := DefaultConfig(t.TempDir())
	cfg.MappedFileSizeCommitLog = 1 << 20
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(cfg); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v", err)
	}
	s.Shutdown()
	s2, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s2.Shutdown()
}

// A record without the trailing 0x02 (as a foreign writer might produce) is
// kept when valid records follow it; only at the tail is it taken for torn.
func TestForeignRecordShapeKeptInTheMiddle(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(t, fs)
	s := openStore(t, cfg)
	var puts []PutMessageResult
	for i := 0; i < 3; i++ {
		puts = append(puts, mustPut(t, s, newMsg("F", 0, i, "")))
	}
	waitAll(t, s)
	clone := fs.ProcessCrashClone()
	s.Shutdown()
	f, _ := clone.OpenFile("/store/commitlog/00000000000000000000", os.O_RDWR)
	for _, p := range puts[1:] {
		f.WriteAt([]byte{'x'}, p.WroteOffset+int64(p.WroteBytes)-1)
	}
	f.Close()
	s2 := reopen(t, cfg, clone)
	defer s2.Shutdown()
	if got := checkQueue(t, s2, "F", 0); len(got) != 2 {
		t.Fatalf("%d messages: the middle one must stay, the last one is a torn tail", len(got))
	}
}
