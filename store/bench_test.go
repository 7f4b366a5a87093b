package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmqd/rmqd/internal/vfs"
	"go.uber.org/zap"
)

// countingFS counts the data syscalls of the files it opens.
type countingFS struct {
	vfs.FS
	writes, syncs     atomic.Int64 // commitlog files
	cqWrites, cqSyncs atomic.Int64 // everything else (consume queues, index, checkpoint)
}

func (c *countingFS) OpenFile(name string, flag int) (vfs.File, error) {
	f, err := c.FS.OpenFile(name, flag)
	if err != nil {
		return nil, err
	}
	cf := &countingFile{File: f, writes: &c.cqWrites, syncs: &c.cqSyncs}
	if filepath.Base(filepath.Dir(name)) == "commitlog" {
		cf.writes, cf.syncs = &c.writes, &c.syncs
	}
	return cf, nil
}

type countingFile struct {
	vfs.File
	writes, syncs *atomic.Int64
}

func (f *countingFile) WriteAt(p []byte, off int64) (int, error) {
	f.writes.Add(1)
	return f.File.WriteAt(p, off)
}

func (f *countingFile) Sync() error {
	f.syncs.Add(1)
	return f.File.Sync()
}

func benchConfig(b *testing.B, fs vfs.FS, flush FlushDiskType) Config {
	cfg := DefaultConfig(b.TempDir())
	cfg.FS = fs
	cfg.FlushDiskType = flush
	cfg.MappedFileSizeCommitLog = 256 << 20
	cfg.MessageIndexEnable = false // the put path only; the dispatcher is measured separately
	cfg.Logger = zap.NewNop()
	return cfg
}

// BenchmarkPutMessage: 1 KiB bodies from 1/16/64 concurrent senders on the
// OS filesystem; one op = one message. Reports msgs/s and commitlog
// syscalls (WriteAt + fsync on commitlog files) per message.
func BenchmarkPutMessage(b *testing.B) {
	for _, flush := range []FlushDiskType{AsyncFlush, SyncFlush} {
		for _, senders := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("%s/senders=%d", flush, senders), func(b *testing.B) {
				cfs := &countingFS{FS: vfs.Default}
				s, err := Open(benchConfig(b, cfs, flush))
				if err != nil {
					b.Fatal(err)
				}
				s.Start()
				defer s.Shutdown()
				body := make([]byte, 1024)
				msgs := make([]*Message, senders)
				for i := range msgs {
					msgs[i] = &Message{Topic: "Bench", QueueID: int32(i % 8), Body: body, BornHost: "127.0.0.1:5000",
						Properties: PropertiesFromMap(map[string]string{PropertyTags: "TagA", PropertyUniqClientMessageIDKey: "C0A8000100002A9F0000000000000001"})}
				}
				// Warm up the pools and the first file.
				s.PutMessage(context.Background(), msgs[0])
				w0, s0, cw0, cs0 := cfs.writes.Load(), cfs.syncs.Load(), cfs.cqWrites.Load(), cfs.cqSyncs.Load()
				var next atomic.Int64
				b.ReportAllocs()
				b.ResetTimer()
				start := time.Now()
				var wg sync.WaitGroup
				for g := 0; g < senders; g++ {
					wg.Add(1)
					go func(m *Message) {
						defer wg.Done()
						for next.Add(1) <= int64(b.N) {
							if r := s.PutMessage(context.Background(), m); r.Status != PutOK {
								b.Errorf("put: %v", r.Status)
								return
							}
						}
					}(msgs[g])
				}
				wg.Wait()
				el := time.Since(start)
				b.StopTimer()
				// The send path's syscalls are the commitlog's; the dispatcher's
				// consume-queue/checkpoint writes are reported apart.
				w, sy := cfs.writes.Load()-w0, cfs.syncs.Load()-s0
				cw, cs := cfs.cqWrites.Load()-cw0, cfs.cqSyncs.Load()-cs0
				b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
				b.ReportMetric(float64(w+sy)/float64(b.N), "syscalls/msg")
				b.ReportMetric(float64(w)/float64(b.N), "writes/msg")
				b.ReportMetric(float64(sy)/float64(b.N), "fsyncs/msg")
				b.ReportMetric(float64(cw+cs)/float64(b.N), "cq-syscalls/msg")
			})
		}
	}
}

// BenchmarkDispatch measures rebuilding consume queues and the index from
// the commitlog (one op = one message dispatched).
func BenchmarkDispatch(b *testing.B) {
	cfg := benchConfig(b, vfs.Default, AsyncFlush)
	cfg.MessageIndexEnable = true
	s, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	s.Start()
	body := make([]byte, 1024)
	var wg sync.WaitGroup
	var next atomic.Int64
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
				m := &Message{Topic: "D", QueueID: int32(i % 16), Body: body, Properties: PropertiesFromMap(map[string]string{
					PropertyTags: "TagA", PropertyKeys: fmt.Sprintf("order-%d", i), PropertyUniqClientMessageIDKey: fmt.Sprintf("U%031d", i)})}
				s.PutMessage(context.Background(), m)
			}
		}(g)
	}
	wg.Wait()
	s.Shutdown()
	os.RemoveAll(filepath.Join(cfg.RootDir, "consumequeue"))
	os.RemoveAll(filepath.Join(cfg.RootDir, "index"))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	s2, err := Open(cfg) // dispatches everything synchronously
	if err != nil {
		b.Fatal(err)
	}
	el := time.Since(start)
	b.StopTimer()
	if got := s2.GetMaxOffsetInQueue("D", 0) + s2.GetMaxOffsetInQueue("D", 1); b.N >= 16 && got == 0 {
		b.Fatal("nothing dispatched")
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
	s2.Shutdown()
}

// BenchmarkGetMessage measures pulls of 32 messages (one op = one message returned).
func BenchmarkGetMessage(b *testing.B) {
	cfg := benchConfig(b, vfs.Default, AsyncFlush)
	s, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	s.Start()
	defer s.Shutdown()
	const total, queues = 100000, 4
	body := make([]byte, 1024)
	for i := 0; i < total; i++ {
		m := &Message{Topic: "G", QueueID: int32(i % queues), Body: body, Properties: PropertiesFromMap(map[string]string{PropertyTags: "TagA"})}
		s.PutMessage(context.Background(), m)
	}
	s.waitDispatched(s.GetMaxPhyOffset(), time.Minute)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	got := 0
	var off [queues]int64
	for q := 0; got < b.N; q = (q + 1) % queues {
		r := s.GetMessage("g", "G", int32(q), off[q], 32, 0, nil)
		if r.Status != Found {
			off[q] = 0
			continue
		}
		got += r.MsgCount
		off[q] = r.NextBeginOffset
	}
	el := time.Since(start)
	b.ReportMetric(float64(got)/el.Seconds(), "msgs/s")
}
