package replog_test

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/rmqd/rmqd/store"
)

// BenchmarkReplicatedPut64 is the store's send path in DLedger mode without
// the network: 64 concurrent 1 KiB puts on the leader of three in-process
// replicas (in-memory logs and transport), each answered after its commit,
// with dispatch running on every replica. ns/op and allocs/op are per
// message for the whole group (issue 8: the Go-side cost of send → store
// put → DLedger append → commit → response, and of dispatch).
func BenchmarkReplicatedPut64(b *testing.B) {
	g := newGroup(b)
	s := g.stores[g.leader()]
	body := make([]byte, 1024)
	var q atomic.Int32
	b.SetParallelism(64 / max(1, testingProcs()))
	b.SetBytes(1024)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		qid := q.Add(1) % 8
		for pb.Next() {
			m := &store.Message{Topic: "Bench", QueueID: qid, Body: body, BornTimestamp: 1700000000000, BornHost: "192.168.1.2:50000",
				Properties: store.PropertiesFromMap(map[string]string{store.PropertyTags: "a", store.PropertyUniqClientMessageIDKey: "C0A80102000018B4AAC2"})}
			if r := s.PutMessage(context.Background(), m); r.Status != store.PutOK {
				b.Fatalf("put: %v %v", r.Status, r.Err)
			}
		}
	})
}

func testingProcs() int { return runtime.GOMAXPROCS(0) }
