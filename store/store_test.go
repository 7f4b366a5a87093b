package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rmqd/rmqd/internal/vfs"
	"go.uber.org/zap/zaptest"
)

// testConfig is a small store on a MemFS.
func testConfig(t testing.TB, fs vfs.FS) Config {
	cfg := DefaultConfig("/store")
	cfg.FS = fs
	cfg.MappedFileSizeCommitLog = 64 * 1024
	cfg.MappedFileSizeConsumeQueue = 100 * CQUnitSize
	cfg.MaxHashSlotNum = 1000
	cfg.MaxIndexNum = 4000
	cfg.FlushInterval = 10 * time.Millisecond
	cfg.Logger = zaptest.NewLogger(t)
	cfg.StoreHost = "10.0.0.1:10911"
	return cfg
}

func openStore(t testing.TB, cfg Config) *MessageStore {
	t.Helper()
	s, err := Open(cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	return s
}

func newMsg(topic string, qid int32, i int, tags string) *Message {
	m := &Message{Topic: topic, QueueID: qid, Body: []byte(fmt.Sprintf("body-%d", i)), BornTimestamp: 1700000000000,
		BornHost: "192.168.1.2:50000"}
	if tags != "" {
		m.SetProperty(PropertyTags, tags)
	}
	m.SetProperty(PropertyKeys, fmt.Sprintf("k%d common", i))
	m.SetProperty(PropertyUniqClientMessageIDKey, fmt.Sprintf("UNIQ%08d", i))
	return m
}

func mustPut(t testing.TB, s *MessageStore, m *Message) PutMessageResult {
	t.Helper()
	r := s.PutMessage(context.Background(), m)
	if r.Status != PutOK {
		t.Fatalf("put: %v %v", r.Status, r.Err)
	}
	return r
}

func TestPutGetRoundTrip(t *testing.T) {
	fs := vfs.NewMem()
	s := openStore(t, testConfig(t, fs))
	defer s.Shutdown()
	const n = 300 // ~ several files of 64 KiB
	for i := 0; i < n; i++ {
		m := newMsg("T", int32(i%2), i, "A")
		m.Body = make([]byte, 500)
		copy(m.Body, fmt.Sprintf("body-%d", i))
		r := mustPut(t, s, m)
		if r.QueueOffset != int64(i/2) {
			t.Fatalf("msg %d queue offset %d", i, r.QueueOffset)
		}
	}
	if !s.waitDispatched(s.GetMaxPhyOffset(), 5*time.Second) {
		t.Fatal("not dispatched")
	}
	for q := int32(0); q < 2; q++ {
		if got := s.GetMaxOffsetInQueue("T", q); got != n/2 {
			t.Fatalf("max offset %d", got)
		}
		var off int64
		for off < n/2 {
			r := s.GetMessage("g", "T", q, off, 32, 0, nil)
			if r.Status != Found {
				t.Fatalf("get at %d: %v", off, r.Status)
			}
			msgs, err := DecodeMessages(r.Body(), true)
			if err != nil {
				t.Fatal(err)
			}
			for i, m := range msgs {
				want := fmt.Sprintf("body-%d", int(off+int64(i))*2+int(q))
				if string(m.Body[:len(want)]) != want || m.QueueOffset != off+int64(i) || m.QueueID != q {
					t.Fatalf("q%d off %d: got %q qo %d", q, off+int64(i), m.Body[:12], m.QueueOffset)
				}
			}
			off = r.NextBeginOffset
		}
	}
	if files := s.classic.files.snapshot(); len(files) < 3 {
		t.Fatalf("expected file rolls, have %d files", len(files))
	}
}
