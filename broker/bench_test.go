package broker

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
)

// Processor benchmarks on an in-process broker (real store, OS files,
// ASYNC_FLUSH), without the network: the cost the broker adds around the
// store.

func BenchmarkSendProcessor1KiB(b *testing.B) {
	br := startTestBroker(b, map[string]string{"mappedFileSizeCommitLog": strconv.Itoa(64 << 20)})
	c := &fakeConn{id: 1}
	body := make([]byte, 1024)
	req := sendReq("BenchTopic", 0, string(body), map[string]string{"TAGS": "a", "UNIQ_KEY": "0102"})
	if r := br.processSend(c, req); r.Code != protocol.Success {
		b.Fatalf("send: %d %q", r.Code, r.Remark)
	}
	b.SetBytes(1024)
	b.ReportAllocs()
	b.ResetTimer()
	var q atomic.Int32
	b.RunParallel(func(pb *testing.PB) {
		qid := int(q.Add(1)) % 4
		r := sendReq("BenchTopic", qid, string(body), map[string]string{"TAGS": "a", "UNIQ_KEY": "0102"})
		for pb.Next() {
			if resp := br.processSend(c, r); resp.Code != protocol.Success {
				b.Fatalf("send: %d %q", resp.Code, resp.Remark)
			}
		}
	})
}

func BenchmarkPullProcessor32x1KiB(b *testing.B) {
	br := startTestBroker(b, map[string]string{"mappedFileSizeCommitLog": strconv.Itoa(64 << 20)})
	c := &fakeConn{id: 1}
	body := string(make([]byte, 1024))
	const n = 3200
	for i := 0; i < n; i++ {
		if r := br.processSend(c, sendReq("PullBench", 0, body, nil)); r.Code != protocol.Success {
			b.Fatal("send")
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for br.maxOffset("PullBench", 0) < n {
		if time.Now().After(deadline) {
			b.Fatal("dispatch")
		}
		time.Sleep(10 * time.Millisecond)
	}
	reqs := make([]*remoting.RemotingCommand, n/32)
	for i := range reqs {
		reqs[i] = pullReq("pb", "PullBench", 0, int64(i*32), protocol.PullFlagSubscription, "*", 0)
	}
	b.SetBytes(32 * 1024)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := br.processPull(c, reqs[i%len(reqs)], false)
		if r.Code != protocol.Success {
			b.Fatalf("pull: %d", r.Code)
		}
	}
}
