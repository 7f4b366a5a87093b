package metadata

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rmqd/rmqd/internal/vfs"
)

// TestConcurrentUse hammers every manager from many goroutines while the
// periodic persister runs (meant for -race). Offsets end at the maximum
// committed per queue, whatever the interleaving.
func TestConcurrentUse(t *testing.T) {
	fs := vfs.NewMem()
	m, err := Open(Options{Dir: dir, FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	m.Start(time.Millisecond)
	const workers, rounds, queues = 8, 300, 4
	var wg sync.WaitGroup
	maxes := make([][queues]int64, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			group := fmt.Sprintf("g%d", w%3)
			for i := range rounds {
				q := int32(rng.IntN(queues))
				off := rng.Int64N(10000)
				if err := m.CommitOffset(group, "T", q, off); err != nil {
					t.Error(err)
					return
				}
				if off > maxes[w][q] {
					maxes[w][q] = off
				}
				switch i % 10 {
				case 0:
					_, _, _ = m.CreateTopicIfAbsent(NewTopicConfig(fmt.Sprintf("T%d", rng.IntN(20)), 2))
				case 1:
					_ = m.DeleteTopic(fmt.Sprintf("T%d", rng.IntN(20)))
				case 2:
					_, _, _ = m.FindOrCreateGroup(fmt.Sprintf("G%d", rng.IntN(10)), true)
				case 3:
					_ = m.CommitDelayOffset(int32(1+rng.IntN(18)), off)
				case 4:
					_ = m.Offsets.QueryMinOffsetInAllGroup("T", "")
					_ = m.Topics.Encode(false)
					_ = m.Groups.Encode(false)
					_ = m.Delay.Encode(false)
				case 5:
					_ = m.Offsets.Encode(false)
					_, _ = m.Topics.All()
					_ = m.Offsets.WhichGroupByTopic("T")
				}
			}
		}()
	}
	// concurrent explicit persists too
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 50 {
			if err := m.Persist(); err != nil {
				t.Error(err)
			}
		}
	}()
	wg.Wait()
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	want := map[string][queues]int64{}
	for w := range workers {
		g := fmt.Sprintf("g%d", w%3)
		cur := want[g]
		for q := range queues {
			cur[q] = max(cur[q], maxes[w][q])
		}
		want[g] = cur
	}
	m2, err := Open(Options{Dir: dir, FS: fs.CrashClone(nil)})
	if err != nil {
		t.Fatal(err)
	}
	for g, qs := range want {
		for q, off := range qs {
			if off == 0 {
				continue
			}
			if got := m2.Offsets.Query(g, "T", int32(q)); got != off {
				t.Errorf("%s queue %d: %d after reload, want max %d", g, q, got, off)
			}
		}
	}
	if !vfs.Exists(fs, filepath.Join(dir, TopicsFile+".bak")) {
		t.Error("no .bak written")
	}
}
