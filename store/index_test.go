package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmqd/rmqd/internal/vfs"
	"go.uber.org/zap"
)

func testIndex(fs vfs.FS, slots, entries int32) *indexService {
	return newIndexService(&Config{FS: fs, RootDir: "/s", MaxHashSlotNum: slots, MaxIndexNum: entries,
		Now: time.Now, Logger: zap.NewNop()})
}

// indexPut adds key -> phy as the dispatcher does (put + writePending under mu).
func indexPut(s *indexService, key string, phy int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.put(keyHash(key), phy, time.Now().UnixMilli()); err != nil {
		return err
	}
	return s.writePending()
}

// The flusher writes slots and header without the index lock: a put and a
// query complete while its write is blocked, and the put, made after the
// flush took its copy, is written by the next flush.
func TestIndexFlushWritesWithoutLock(t *testing.T) {
	mem := vfs.NewMem()
	var block atomic.Bool
	entered, release := make(chan struct{}), make(chan struct{})
	efs := &vfs.ErrorFS{FS: mem, Inject: func(op vfs.Op, path string) error {
		if op == vfs.OpWrite && block.CompareAndSwap(true, false) {
			close(entered)
			<-release
		}
		return nil
	}}
	s := testIndex(efs, 4096, 1000)
	if err := indexPut(s, "k0", 100); err != nil {
		t.Fatal(err)
	}
	block.Store(true)
	flushed := make(chan error, 1)
	go func() { flushed <- s.sync() }()
	<-entered
	done := make(chan []int64, 1)
	go func() {
		if err := indexPut(s, "k1", 200); err != nil {
			t.Error(err)
		}
		done <- s.query("k0", 4, 0, 1<<62)
	}()
	var got []int64
	select {
	case got = <-done:
	case <-time.After(5 * time.Second):
	}
	close(release)
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	if got == nil {
		<-done
		t.Fatal("put and query waited for the flush's write")
	}
	if len(got) != 1 || got[0] != 100 {
		t.Fatalf("k0 during the flush: %v", got)
	}
	if err := s.sync(); err != nil {
		t.Fatal(err)
	}
	// Only synced bytes survive: both keys must be in the flushed file.
	r := testIndex(mem.CrashClone(nil), 4096, 1000)
	if err := r.load(1 << 40); err != nil {
		t.Fatal(err)
	}
	for key, phy := range map[string]int64{"k0": 100, "k1": 200} {
		if got := r.query(key, 4, 0, 1<<62); len(got) != 1 || got[0] != phy {
			t.Fatalf("%s after crash: %v", key, got)
		}
	}
	r.close()
	s.close()
}

// Puts, flushes, queries and retention at once, with rolls every 50
// entries (run with -race): afterwards every kept key is found, also in
// what a crash keeps.
func TestIndexConcurrentPutFlushQuery(t *testing.T) {
	mem := vfs.NewMem()
	s := testIndex(mem, 64, 50)
	const n = 3000
	var put atomic.Int64
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for put.Load() < n {
			if err := s.sync(); err != nil {
				t.Error(err)
				return
			}
			s.deleteExpired(put.Load() - 500)
		}
	}()
	go func() {
		defer wg.Done()
		for put.Load() < n {
			i := put.Load()
			got := s.query(fmt.Sprint("key-", i-1), 4, 0, 1<<62)
			// Unless the puts since ran 500 ahead: retention may have
			// removed its file meanwhile (keys at or above the retention
			// floor are always kept).
			if i > 0 && (len(got) != 1 || got[0] != i-1) && i-1 >= put.Load()-500 {
				t.Errorf("key-%d: %v", i-1, got)
				return
			}
		}
	}()
	for i := int64(0); i < n; i++ {
		if err := indexPut(s, fmt.Sprint("key-", i), i); err != nil {
			t.Fatal(err)
		}
		put.Store(i + 1)
	}
	wg.Wait()
	if err := s.sync(); err != nil {
		t.Fatal(err)
	}
	crashed := mem.CrashClone(nil)
	s.close()
	for _, fs := range []vfs.FS{mem, crashed} {
		r := testIndex(fs, 64, 50)
		if err := r.load(1 << 40); err != nil {
			t.Fatal(err)
		}
		for i := int64(n - 200); i < n; i++ {
			if got := r.query(fmt.Sprint("key-", i), 4, 0, 1<<62); len(got) != 1 || got[0] != i {
				t.Fatalf("key-%d after reopen: %v", i, got)
			}
		}
		r.close()
	}
}

// A sync that fails leaves its dirty slots to the next: after a failed
// slot write and a successful retry, every key survives a crash.
func TestIndexFailedSyncRewritesItsSlots(t *testing.T) {
	mem := vfs.NewMem()
	var fail atomic.Bool
	efs := &vfs.ErrorFS{FS: mem, Inject: func(op vfs.Op, path string) error {
		if op == vfs.OpWrite && fail.CompareAndSwap(true, false) {
			return errors.New("injected write error")
		}
		return nil
	}}
	s := testIndex(efs, 100000, 1000)
	defer s.close()
	for i := range 50 {
		if err := indexPut(s, fmt.Sprint("k", i), int64(100*i)); err != nil {
			t.Fatal(err)
		}
	}
	fail.Store(true)
	if err := s.sync(); err == nil {
		t.Fatal("sync with a failing slot write succeeded")
	}
	if err := indexPut(s, "late", 9999); err != nil { // a put between the failure and the retry
		t.Fatal(err)
	}
	if err := s.sync(); err != nil {
		t.Fatal(err)
	}
	r := testIndex(mem.CrashClone(nil), 100000, 1000)
	if err := r.load(1 << 40); err != nil {
		t.Fatal(err)
	}
	defer r.close()
	for i := range 50 {
		if got := r.query(fmt.Sprint("k", i), 4, 0, 1<<62); len(got) != 1 || got[0] != int64(100*i) {
			t.Fatalf("k%d after crash: %v", i, got)
		}
	}
	if got := r.query("late", 4, 0, 1<<62); len(got) != 1 || got[0] != 9999 {
		t.Fatalf("late after crash: %v", got)
	}
}

// discardFile takes writes and syncs at no cost: the benchmark below
// measures the index's own CPU, not a file system's.
type discardFile struct{ vfs.File }

func (discardFile) WriteAt(p []byte, _ int64) (int, error) { return len(p), nil }
func (discardFile) Sync() error                            { return nil }
func (discardFile) Close() error                           { return nil }

// BenchmarkIndexPutSync: one op is a put of a random key into a table of
// the default 5M slots, with a sync every 30000 puts (a second at 30k
// messages a second), the file's writes discarded.
func BenchmarkIndexPutSync(b *testing.B) {
	s := testIndex(vfs.NewMem(), 5000000, 20000000)
	defer s.close()
	if err := indexPut(s, "first", 0); err != nil {
		b.Fatal(err)
	}
	s.files[0].file = discardFile{s.files[0].file}
	rng := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		s.mu.Lock()
		if err := s.put(int32(rng.Uint32()>>1), int64(i), 1); err != nil {
			b.Fatal(err)
		}
		if i%64 == 63 { // a dispatch round
			if err := s.writePending(); err != nil {
				b.Fatal(err)
			}
		}
		s.mu.Unlock()
		if i%30000 == 29999 {
			if err := s.sync(); err != nil {
				b.Fatal(err)
			}
		}
	}
}
