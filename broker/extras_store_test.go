package broker

import (
	"context"
	"testing"
	"time"

	"github.com/rmqd/rmqd/internal/vfs"
	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
	"github.com/rmqd/rmqd/store"
)

// The retry, delay and transaction services against the real store (on an
// in-memory filesystem): the contract the fake store of the other tests
// assumes — delivery time as the schedule queue's tagsCode, queue offsets,
// LookMessageByOffset — holds.

func openExtrasStore(t *testing.T, now func() time.Time) *store.MessageStore {
	t.Helper()
	cfg := store.DefaultConfig("/store")
	cfg.FS = vfs.NewMem()
	cfg.MappedFileSizeCommitLog = 1 << 20
	cfg.MappedFileSizeConsumeQueue = 1000 * store.CQUnitSize
	cfg.MaxHashSlotNum = 1000
	cfg.MaxIndexNum = 4000
	cfg.FlushInterval = 10 * time.Millisecond
	cfg.FlushConsumeQueueInterval = 10 * time.Millisecond
	cfg.StoreHost = "127.0.0.1:10911"
	cfg.MessageDelayLevel = "1s 5s 10s"
	cfg.Now = now
	s, err := store.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown() })
	return s
}

// waitQueue waits until a queue holds n messages (dispatch is asynchronous).
func waitQueue(t *testing.T, s *store.MessageStore, topic string, qid int32, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.GetMaxOffsetInQueue(topic, qid) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s/%d has %d messages, want %d", topic, qid, s.GetMaxOffsetInQueue(topic, qid), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestScheduleWithRealStore(t *testing.T) {
	clock := &fakeClock{t: time.UnixMilli(1_700_000_000_000)}
	st := openExtrasStore(t, clock.Now)
	svc := newScheduleService(st, scheduleConfig{levels: testLevels(), now: clock.Now})

	m := &store.Message{Topic: "Real", QueueID: 2, Body: []byte("later"), BornTimestamp: 7, BornHost: "10.0.0.2:4000",
		Properties: store.PropertiesFromMap(map[string]string{propDelay: "2", propTags: "tg", propUniqKey: "UQ1"})}
	scheduleDelayed(m, testLevels())
	res := st.PutMessage(context.Background(), m)
	if res.Status != store.PutOK {
		t.Fatal(res.Status)
	}
	waitQueue(t, st, scheduleTopic, 1, 1)
	units, err := st.GetConsumeQueueUnits(scheduleTopic, 1, 0, 1)
	if err != nil || len(units) != 1 || units[0].TagsCode != res.StoreTimestamp+5000 {
		t.Fatalf("schedule unit %+v %v, want tagsCode %d", units, err, res.StoreTimestamp+5000)
	}
	if next := svc.deliverLevel(2, 0); next != 0 {
		t.Fatal("delivered early")
	}
	clock.Advance(5 * time.Second)
	if next := svc.deliverLevel(2, 0); next != 1 {
		t.Fatalf("next %d", next)
	}
	waitQueue(t, st, "Real", 2, 1)
	units, _ = st.GetConsumeQueueUnits("Real", 2, 0, 1)
	got, err := st.LookMessageByOffset(units[0].CommitLogOffset)
	if err != nil || string(got.Body) != "later" || got.Property(propDelay) != "" || got.Property(propUniqKey) != "UQ1" ||
		got.BornHost != "10.0.0.2:4000" || units[0].TagsCode != store.TagsHashCode("tg") {
		t.Fatalf("delivered %+v %v", got, err)
	}
}

func TestTransactionsWithRealStore(t *testing.T) {
	clock := &fakeClock{t: time.UnixMilli(1_700_000_000_000)}
	st := openExtrasStore(t, clock.Now)
	conn := &txProducerConn{}
	offsets := map[string]int64{}
	svc := newTransactionService(st, transactionConfig{
		brokerName: "b", levels: testLevels(), timeout: time.Second, checkMax: 5, now: clock.Now,
		loadOffset: func(topic string, _ int32) int64 {
			if v, ok := offsets[topic]; ok {
				return v
			}
			return -1
		},
		saveOffset: func(topic string, _ int32, off int64) { offsets[topic] = off },
		producers:  func(string) []remoting.Conn { return []remoting.Conn{conn} },
	})
	half := func(body string) protocol.EndTransactionRequestHeader {
		m := &store.Message{Topic: "Tx", QueueID: 1, Body: []byte(body), SysFlag: sysFlagTransPrepared, BornTimestamp: clock.Now().UnixMilli(),
			BornHost: "10.0.0.2:4000", Properties: store.PropertiesFromMap(map[string]string{propTransPrepared: "true", propProducerGroup: "g", propUniqKey: "U" + body})}
		prepareHalf(m)
		res := st.PutMessage(context.Background(), m)
		if res.Status != store.PutOK {
			t.Fatal(res.Status)
		}
		return protocol.EndTransactionRequestHeader{ProducerGroup: "g", TranStateTableOffset: res.QueueOffset, CommitLogOffset: res.WroteOffset}
	}
	end := func(h protocol.EndTransactionRequestHeader, state int32, fromCheck bool) {
		t.Helper()
		h.CommitOrRollback, h.FromTransactionCheck = state, fromCheck
		if resp := svc.processEndTransaction(&remoting.RemotingCommand{ExtFields: protocol.EncodeHeader(&h)}, nil); resp.Code != protocol.Success {
			t.Fatalf("end transaction: %d %s", resp.Code, resp.Remark)
		}
	}
	hc := half("c")
	end(hc, protocol.TransactionCommit, false)
	end(half("r"), protocol.TransactionRollback, false)
	half("u")
	waitQueue(t, st, transHalfTopic, 0, 3)
	waitQueue(t, st, transOpHalfTopic, 0, 2)
	waitQueue(t, st, "Tx", 1, 1)

	clock.Advance(2 * time.Second)
	svc.checkOnce(make(chan struct{}))
	checks := conn.checks()
	if len(checks) != 1 {
		t.Fatalf("checks: %d", len(checks))
	}
	var ch protocol.CheckTransactionStateRequestHeader
	if err := protocol.DecodeHeader(&checks[0].ExtFields, &ch); err != nil || ch.MsgID != "Uu" {
		t.Fatalf("check header %+v %v", ch, err)
	}
	waitQueue(t, st, transHalfTopic, 0, 4)
	end(protocol.EndTransactionRequestHeader{ProducerGroup: "g", TranStateTableOffset: ch.TranStateTableOffset,
		CommitLogOffset: ch.CommitLogOffset}, protocol.TransactionCommit, true)
	waitQueue(t, st, "Tx", 1, 2)
	waitQueue(t, st, transOpHalfTopic, 0, 3)
	clock.Advance(2 * time.Second)
	svc.checkOnce(make(chan struct{}))
	if n := len(conn.checks()); n != 1 {
		t.Fatalf("checked again: %d", n)
	}
	if offsets[transHalfTopic] != 4 || offsets[transOpHalfTopic] != 3 {
		t.Fatalf("scan progress %v", offsets)
	}
	units, _ := st.GetConsumeQueueUnits("Tx", 1, 0, 2)
	for i, want := range []int64{hc.CommitLogOffset, ch.CommitLogOffset} {
		m, err := st.LookMessageByOffset(units[i].CommitLogOffset)
		if err != nil || transactionType(m.SysFlag) != sysFlagTransCommit || m.PreparedTransactionOffset != want || m.Property(propRealTopic) != "" {
			t.Fatalf("committed %+v %v", m, err)
		}
	}
}
