package store

import (
	"bytes"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/rmqd/rmqd/internal/vfs"
)

// removeTree removes dir and everything under it.
func removeTree(t *testing.T, fs vfs.FS, dir string) {
	t.Helper()
	names, _ := fs.ReadDir(dir)
	for _, n := range names {
		p := filepath.Join(dir, n)
		if _, isDir, err := fs.Stat(p); err == nil && isDir {
			removeTree(t, fs, p)
			continue
		}
		if err := fs.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	_ = fs.Remove(dir)
}

// TestRecoveryLogsProgress: a recovery after a crash over many commitlog
// files, with consume queues and the index lost, logs start, progress
// (bytes done of the total, rate) and end lines for the commitlog check
// and for the re-dispatch that rebuilds queues and index, at most every
// progressInterval of the store's clock.
func TestRecoveryLogsProgress(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(t, fs)
	cfg.MessageIndexEnable = true
	s := openStore(t, cfg)
	// Several dispatch rounds (dispatchRoundBytes) of records.
	for i := 0; i < 6000; i++ {
		m := newMsg("P", int32(i%2), i, "t")
		m.Body = bytes.Repeat([]byte{'p'}, 4096)
		mustPut(t, s, m)
	}
	waitAll(t, s)
	end := s.GetMaxPhyOffset()
	if end < 5*dispatchRoundBytes {
		t.Fatalf("only %d bytes written", end)
	}
	crashed := fs.ProcessCrashClone()
	s.Shutdown()
	removeTree(t, crashed, filepath.Join(cfg.RootDir, "consumequeue"))
	removeTree(t, crashed, filepath.Join(cfg.RootDir, "index"))

	// The store's clock moves 3 s per reading: a progress line every other
	// reading at most.
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	cfg.Now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(3 * time.Second)
		return now
	}
	core, logs := observer.New(zapcore.InfoLevel)
	cfg.Logger = zap.New(core)
	s2 := reopen(t, cfg, crashed)
	defer s2.Shutdown()
	if got := s2.GetMaxPhyOffset(); got != end {
		t.Fatalf("recovered to %d, want %d", got, end)
	}
	for _, step := range []string{"commitlog recovery", redispatchStep} {
		started := logs.FilterMessage(step + ": started").All()
		progress := logs.FilterMessage(step + ": progress").All()
		done := logs.FilterMessage(step + ": done").All()
		if len(started) != 1 || len(done) != 1 || len(progress) < 2 {
			t.Fatalf("%s: %d start, %d progress, %d end lines", step, len(started), len(progress), len(done))
		}
		var lastDone int64
		var lastAt time.Duration
		for _, e := range progress {
			f := e.ContextMap()
			d, total := f["doneBytes"].(int64), f["totalBytes"].(int64)
			el := f["elapsed"].(time.Duration)
			if d <= lastDone || d > total || total > end+end/8 || f["mibPerSec"].(float64) <= 0 || f["percent"].(float64) <= 0 {
				t.Fatalf("%s progress %v (previous %d)", step, f, lastDone)
			}
			if el-lastAt < progressInterval {
				t.Fatalf("%s: progress lines %v apart", step, el-lastAt)
			}
			lastDone, lastAt = d, el
		}
		if f := done[0].ContextMap(); f["doneBytes"].(int64) < lastDone || !strings.Contains(done[0].Message, "done") {
			t.Fatalf("%s end %v", step, f)
		}
	}
	// The rebuilt queues and index serve what was written.
	if r := s2.GetMessage("g", "P", 1, 2999, 1, 0, nil); r.Status != Found {
		t.Fatalf("queue P/1 offset 2999 after the rebuild: %v", r.Status)
	}
}
