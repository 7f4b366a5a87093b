package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sync/atomic"
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
	cfg.FlushConsumeQueueInterval = 10 * time.Millisecond
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

func waitAll(t testing.TB, s *MessageStore) {
	t.Helper()
	if !s.waitDispatched(s.GetMaxPhyOffset(), 5*time.Second) {
		t.Fatalf("dispatch stuck at %d of %d", s.DispatchedOffset(), s.GetMaxPhyOffset())
	}
}

func TestBlankMarkersAndConsumeQueueUnits(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(t, fs)
	s := openStore(t, cfg)
	var results []PutMessageResult
	for i := 0; i < 200; i++ {
		m := newMsg("T", 0, i, "A")
		m.Body = make([]byte, 700)
		results = append(results, mustPut(t, s, m))
	}
	waitAll(t, s)
	files := s.classic.files.snapshot()
	size := cfg.MappedFileSizeCommitLog
	for i, f := range files {
		if f.path != fmt.Sprintf("/store/commitlog/%020d", int64(i)*size) {
			t.Fatalf("file name %s", f.path)
		}
	}
	// Every file but the last ends with a BLANK marker right after its last record.
	for i := 0; i < len(files)-1; i++ {
		var lastEnd int64
		for _, r := range results {
			if r.WroteOffset/size == int64(i) {
				lastEnd = r.WroteOffset + int64(r.WroteBytes)
			}
		}
		var h [8]byte
		files[i].readAt(h[:], lastEnd-files[i].from)
		if int32(binary.BigEndian.Uint32(h[4:])) != BlankMagicCode || int64(binary.BigEndian.Uint32(h[:])) != files[i].from+size-lastEnd {
			t.Fatalf("file %d: no BLANK at %d: %x", i, lastEnd, h)
		}
	}
	// Consume queue units: (offset, size, tagsCode), file name 20 digits, 100 units per file.
	raw, err := vfs.ReadFile(fs, "/store/consumequeue/T/0/00000000000000000000")
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != 100*CQUnitSize {
		t.Fatalf("cq file size %d", len(raw))
	}
	for i := 0; i < 100; i++ {
		u := decodeUnit(raw[i*CQUnitSize:], int64(i))
		if u.CommitLogOffset != results[i].WroteOffset || u.Size != results[i].WroteBytes || u.TagsCode != TagsHashCode("A") {
			t.Fatalf("unit %d = %+v, want %d/%d", i, u, results[i].WroteOffset, results[i].WroteBytes)
		}
	}
	if !vfs.Exists(fs, "/store/consumequeue/T/0/00000000000000002000") {
		t.Fatal("second consume queue file missing")
	}
	if got := s.GetCommitLogOffsetInQueue("T", 0, 150); got != results[150].WroteOffset {
		t.Fatalf("commitlog offset in queue %d", got)
	}
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
}

type tagFilter map[int64]bool

func (f tagFilter) IsMatchedByConsumeQueue(code int64) bool { return f[code] }
func (f tagFilter) IsMatchedByCommitLog(rec []byte) bool    { return true }

type propFilter string

func (f propFilter) IsMatchedByConsumeQueue(int64) bool { return true }
func (f propFilter) IsMatchedByCommitLog(rec []byte) bool {
	p, err := RecordProperties(rec)
	return err == nil && p.Get("color") == string(f)
}

func TestFilterAndStatuses(t *testing.T) {
	s := openStore(t, testConfig(t, vfs.NewMem()))
	defer s.Shutdown()
	for i := 0; i < 10; i++ {
		tag := "A"
		if i%2 == 1 {
			tag = "B"
		}
		m := newMsg("F", 1, i, tag)
		m.SetProperty("color", []string{"red", "blue"}[i%2])
		mustPut(t, s, m)
	}
	mustPut(t, s, newMsg("Other", 0, 0, ""))
	waitAll(t, s)
	r := s.GetMessage("g", "F", 1, 0, 32, 0, tagFilter{TagsHashCode("B"): true})
	if r.Status != Found || r.MsgCount != 5 || r.NextBeginOffset != 10 || r.MaxOffset != 10 || r.MinOffset != 0 {
		t.Fatalf("tag filter: %+v", r)
	}
	for i, q := range r.QueueOffsets {
		if q != int64(2*i+1) {
			t.Fatalf("offsets %v", r.QueueOffsets)
		}
	}
	msgs, err := DecodeMessages(r.Body(), true)
	if err != nil || len(msgs) != 5 || msgs[0].Tags() != "B" {
		t.Fatalf("%v %v", msgs, err)
	}
	r = s.GetMessage("g", "F", 1, 0, 32, 0, propFilter("red"))
	if r.Status != Found || r.MsgCount != 5 {
		t.Fatalf("property filter: %+v", r)
	}
	if m, _ := DecodeMessages(r.Body(), false); len(m) != 5 || m[4].QueueOffset != 8 {
		t.Fatalf("property filter body: %v", m)
	}
	r = s.GetMessage("g", "F", 1, 0, 32, 0, tagFilter{TagsHashCode("nope"): true})
	if r.Status != NoMatchedMessage || r.NextBeginOffset != 10 {
		t.Fatalf("no match: %+v", r)
	}
	r = s.GetMessage("g", "F", 1, 3, 2, 0, nil)
	if r.Status != Found || r.MsgCount != 2 || r.NextBeginOffset != 5 {
		t.Fatalf("max nums: %+v", r)
	}
	for _, c := range []struct {
		topic  string
		qid    int32
		offset int64
		status GetMessageStatus
		next   int64
	}{
		{"F", 1, 10, OffsetOverflowOne, 10},
		{"F", 1, 11, OffsetOverflowBadly, 10}, // back to maxOffset (§7.1, 5.x)
		{"F", 1, -1, OffsetTooSmall, 0},
		{"F", 7, 0, NoMatchedLogicQueue, 0},
		{"nope", 0, 5, NoMatchedLogicQueue, 0},
	} {
		r := s.GetMessage("g", c.topic, c.qid, c.offset, 32, 0, nil)
		if r.Status != c.status || r.NextBeginOffset != c.next {
			t.Errorf("%s/%d@%d: %v next %d, want %v next %d", c.topic, c.qid, c.offset, r.Status, r.NextBeginOffset, c.status, c.next)
		}
	}
	// A queue that exists but is empty: prepared transaction records take no queue offset.
	half := newMsg("Half", 0, 0, "")
	half.SysFlag = TransactionPreparedType
	mustPut(t, s, half)
	waitAll(t, s)
	if r := s.GetMessage("g", "Half", 0, 0, 32, 0, nil); r.Status != NoMatchedLogicQueue {
		t.Fatalf("prepared message dispatched: %v", r.Status)
	}
	// Byte cap.
	r = s.GetMessage("g", "F", 1, 0, 32, 1, nil)
	if r.MsgCount != 1 {
		t.Fatalf("byte cap: %d", r.MsgCount)
	}
}

func TestQueryMessageAndTimeSearch(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(t, fs)
	var now atomic.Int64
	now.Store(1_700_000_000_000)
	cfg.Now = func() time.Time { return time.UnixMilli(now.Load()) }
	s := openStore(t, cfg)
	var puts []PutMessageResult
	for i := 0; i < 50; i++ {
		now.Add(10_000)
		puts = append(puts, mustPut(t, s, newMsg("Q", 0, i, "")))
	}
	waitAll(t, s)
	all := [2]int64{0, now.Load() + 1}
	res, err := s.QueryMessage("Q", "k7", 32, all[0], all[1])
	if err != nil || len(res.Messages) != 1 {
		t.Fatalf("by key: %d %v", len(res.Messages), err)
	}
	if m, _ := DecodeMessage(res.Messages[0], true); string(m.Body) != "body-7" {
		t.Fatalf("by key: %s", m.Body)
	}
	res, _ = s.QueryMessage("Q", "UNIQ00000042", 32, all[0], all[1])
	if len(res.Messages) != 1 {
		t.Fatalf("by uniq key: %d", len(res.Messages))
	}
	res, _ = s.QueryMessage("Q", "common", 100, all[0], all[1])
	if len(res.Messages) != 50 {
		t.Fatalf("common key: %d", len(res.Messages))
	}
	// Time range: messages 10..19 were stored at base+110s .. base+200s.
	base := int64(1_700_000_000_000)
	res, _ = s.QueryMessage("Q", "common", 100, base+110_000, base+200_000)
	if len(res.Messages) != 10 {
		t.Fatalf("time-bounded: %d", len(res.Messages))
	}
	res, _ = s.QueryMessage("Other", "k7", 32, all[0], all[1])
	if len(res.Messages) != 0 {
		t.Fatal("found under the wrong topic")
	}
	// Offset by time: first message stored at or after the timestamp.
	for _, c := range []struct{ ts, want int64 }{
		{base, 0}, {base + 10_000, 0}, {base + 10_001, 1}, {base + 255_000, 25}, {base + 500_000, 49}, {base + 999_000, 50},
	} {
		if got := s.GetOffsetInQueueByTime("Q", 0, c.ts); got != c.want {
			t.Errorf("offset by time %d: %d want %d", c.ts-base, got, c.want)
		}
	}
	if ts := s.GetEarliestMessageTime("Q", 0); ts != base+10_000 {
		t.Fatalf("earliest %d", ts)
	}
	if ts := s.GetMessageStoreTimeStamp("Q", 0, 3); ts != base+40_000 {
		t.Fatalf("store time %d", ts)
	}
	m, err := s.LookMessageByOffset(puts[5].WroteOffset)
	if err != nil || string(m.Body) != "body-5" || m.MsgID != puts[5].MsgID {
		t.Fatalf("look: %v %v", m, err)
	}
	if _, err := s.LookMessageByOffset(puts[5].WroteOffset + 1); err == nil {
		t.Fatal("look at a non-record offset succeeded")
	}
	raw, err := s.SelectOneMessageByOffset(puts[6].WroteOffset, puts[6].WroteBytes)
	if err != nil || len(raw) != int(puts[6].WroteBytes) {
		t.Fatal(err)
	}
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
}

func TestBatchPut(t *testing.T) {
	s := openStore(t, testConfig(t, vfs.NewMem()))
	defer s.Shutdown()
	mustPut(t, s, newMsg("B", 0, 0, ""))
	items, err := DecodeBatch(EncodeBatch(nil, []Message{{Body: []byte("a")}, {Body: []byte("b")}, {Body: []byte("c")}}))
	if err != nil {
		t.Fatal(err)
	}
	var batch []*Message
	for i := range items {
		items[i].Topic, items[i].QueueID = "B", 0
		batch = append(batch, &items[i])
	}
	r := s.PutMessages(context.Background(), batch)
	if r.Status != PutOK || r.MsgNum != 3 || r.QueueOffset != 1 {
		t.Fatalf("%+v", r)
	}
	ids := bytes.Split([]byte(r.MsgID), []byte(","))
	if len(ids) != 3 {
		t.Fatalf("ids %s", r.MsgID)
	}
	_, off, _ := DecodeMessageID(string(ids[2]))
	m, err := s.LookMessageByOffset(off)
	if err != nil || string(m.Body) != "c" || m.QueueOffset != 3 {
		t.Fatalf("%v %v", m, err)
	}
	waitAll(t, s)
	if s.GetMaxOffsetInQueue("B", 0) != 4 {
		t.Fatal("max offset")
	}
	batch[1].QueueID = 1
	if r := s.PutMessages(context.Background(), batch); r.Status != MessageIllegal {
		t.Fatalf("mixed batch: %v", r.Status)
	}
	big := newMsg("B", 0, 0, "")
	big.Body = make([]byte, 5<<20)
	if r := s.PutMessage(context.Background(), big); r.Status != MessageIllegal {
		t.Fatalf("oversized: %v", r.Status)
	}
	long := newMsg("B", 0, 0, "")
	long.SetProperty("x", string(make([]byte, 40000)))
	if r := s.PutMessage(context.Background(), long); r.Status != PropertiesSizeExceeded {
		t.Fatalf("long properties: %v", r.Status)
	}
}
