package broker

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
	"github.com/rmqd/rmqd/store"
)

// txProducerConn records what the broker sends to a producer.
type txProducerConn struct {
	mu   sync.Mutex
	sent []*remoting.RemotingCommand
}

func (c *txProducerConn) ID() uint64         { return 1 }
func (c *txProducerConn) RemoteAddr() string { return "127.0.0.1:50000" }
func (c *txProducerConn) LocalAddr() string  { return "127.0.0.1:10911" }
func (c *txProducerConn) Close() error       { return nil }
func (c *txProducerConn) Send(cmd *remoting.RemotingCommand) error {
	c.mu.Lock()
	c.sent = append(c.sent, cmd)
	c.mu.Unlock()
	return nil
}
func (c *txProducerConn) Invoke(context.Context, *remoting.RemotingCommand, time.Duration) (*remoting.RemotingCommand, error) {
	return nil, nil
}

func (c *txProducerConn) checks() []*remoting.RemotingCommand {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*remoting.RemotingCommand(nil), c.sent...)
}

type txFixture struct {
	clock   *fakeClock
	store   *fakeStore
	conn    *txProducerConn
	offsets map[string]int64
	svc     *transactionService
}

func newTxFixture(t *testing.T) *txFixture {
	t.Helper()
	f := &txFixture{clock: &fakeClock{t: time.UnixMilli(1_700_000_000_000)}, conn: &txProducerConn{}, offsets: map[string]int64{}}
	f.store = newFakeStore(testLevels(), f.clock.Now)
	var mu sync.Mutex
	f.svc = newTransactionService(f.store, transactionConfig{
		brokerName: "broker-a", levels: testLevels(), timeout: 6 * time.Second, checkMax: 3, reserved: 72 * time.Hour,
		loadOffset: func(topic string, qid int32) int64 {
			mu.Lock()
			defer mu.Unlock()
			if v, ok := f.offsets[topic]; ok {
				return v
			}
			return -1
		},
		saveOffset: func(topic string, qid int32, off int64) {
			mu.Lock()
			f.offsets[topic] = off
			mu.Unlock()
		},
		producers: func(group string) []remoting.Conn {
			if group == "txg" {
				return []remoting.Conn{f.conn}
			}
			return nil
		},
		now: f.clock.Now,
	})
	return f
}

// sendHalf stores a prepared message as the send path would and returns
// the END_TRANSACTION header for it.
func (f *txFixture) sendHalf(t *testing.T, body string) protocol.EndTransactionRequestHeader {
	t.Helper()
	m := &store.Message{Topic: "TxTopic", QueueID: 1, Body: []byte(body), SysFlag: sysFlagTransPrepared,
		BornTimestamp: f.clock.Now().UnixMilli(), BornHost: "127.0.0.1:50000",
		Properties: store.PropertiesFromMap(map[string]string{propTransPrepared: "true", propProducerGroup: "txg", propUniqKey: "U-" + body})}
	if !prepareHalf(m) {
		t.Fatal("not prepared")
	}
	if m.Topic != transHalfTopic || m.QueueID != 0 || transactionType(m.SysFlag) != sysFlagTransNotType ||
		m.Property(propRealTopic) != "TxTopic" || m.Property(propRealQueueID) != "1" || m.Property(propTransactionID) != "U-"+body {
		t.Fatalf("half message: %+v", m)
	}
	res := f.store.PutMessage(context.Background(), m)
	return protocol.EndTransactionRequestHeader{ProducerGroup: "txg", TranStateTableOffset: res.QueueOffset,
		CommitLogOffset: res.WroteOffset, MsgID: "U-" + body}
}

func endTx(f *txFixture, h protocol.EndTransactionRequestHeader, state int32, fromCheck bool) *remoting.RemotingCommand {
	h.CommitOrRollback = state
	h.FromTransactionCheck = fromCheck
	return f.svc.processEndTransaction(&remoting.RemotingCommand{Code: protocol.EndTransaction, ExtFields: protocol.EncodeHeader(&h)}, nil)
}

func TestEndTransactionCommitAndRollback(t *testing.T) {
	f := newTxFixture(t)
	hc := f.sendHalf(t, "commit")
	hr := f.sendHalf(t, "rollback")

	if resp := endTx(f, hc, protocol.TransactionCommit, false); resp.Code != protocol.Success {
		t.Fatalf("commit: %d %s", resp.Code, resp.Remark)
	}
	if resp := endTx(f, hr, protocol.TransactionRollback, false); resp.Code != protocol.Success {
		t.Fatalf("rollback: %d %s", resp.Code, resp.Remark)
	}
	if resp := endTx(f, hc, protocol.TransactionNotType, false); resp != nil {
		t.Fatalf("unknown state answered: %+v", resp)
	}
	real := f.store.messages("TxTopic", 1)
	if len(real) != 1 || string(real[0].Body) != "commit" {
		t.Fatalf("real queue: %v", real)
	}
	c := real[0]
	if transactionType(c.SysFlag) != sysFlagTransCommit || c.PreparedTransactionOffset != hc.CommitLogOffset ||
		c.Property(propTransPrepared) != "" || c.Property(propRealTopic) != "" || c.Property(propProducerGroup) != "txg" ||
		c.Property(propUniqKey) != "U-commit" {
		t.Fatalf("committed message: %+v", c)
	}
	ops := f.store.messages(transOpHalfTopic, 0)
	if len(ops) != 2 || string(ops[0].Body) != "0," || string(ops[1].Body) != "1," || ops[0].Property(propTags) != "d" {
		t.Fatalf("op records: %v", ops)
	}

	// Checks of the half record.
	bad := hc
	bad.ProducerGroup = "other"
	if resp := endTx(f, bad, protocol.TransactionCommit, false); resp.Code != protocol.SystemError || resp.Remark != "The producer group wrong" {
		t.Fatalf("wrong group: %+v", resp)
	}
	bad = hc
	bad.TranStateTableOffset = 9
	if resp := endTx(f, bad, protocol.TransactionCommit, false); resp.Code != protocol.SystemError {
		t.Fatalf("wrong queue offset: %+v", resp)
	}
	bad = hc
	bad.CommitLogOffset = 1
	if resp := endTx(f, bad, protocol.TransactionCommit, false); resp.Code != protocol.SystemError {
		t.Fatalf("missing half: %+v", resp)
	}
	if resp := f.svc.processEndTransaction(&remoting.RemotingCommand{ExtFields: remoting.FieldsOf("producerGroup", "x")}, nil); resp.Code != protocol.SystemError {
		t.Fatalf("bad header: %+v", resp)
	}
}

func TestTransactionCheckBack(t *testing.T) {
	f := newTxFixture(t)
	hDone := f.sendHalf(t, "done")
	f.sendHalf(t, "open")
	endTx(f, hDone, protocol.TransactionCommit, false)
	stop := make(chan struct{})

	// Too young: nothing is checked and the offsets do not move.
	f.clock.Advance(time.Second)
	f.svc.checkOnce(stop)
	if n := len(f.conn.checks()); n != 0 {
		t.Fatalf("checked a young half message: %d", n)
	}
	if f.offsets[transHalfTopic] != 1 { // the committed one at 0 is passed
		t.Fatalf("half offset %d, want 1", f.offsets[transHalfTopic])
	}

	f.clock.Advance(6 * time.Second)
	f.svc.checkOnce(stop)
	checks := f.conn.checks()
	if len(checks) != 1 {
		t.Fatalf("checks sent: %d", len(checks))
	}
	req := checks[0]
	if req.Code != protocol.CheckTransactionState || !req.IsOneway() {
		t.Fatalf("check request: %+v", req)
	}
	var ch protocol.CheckTransactionStateRequestHeader
	if err := protocol.DecodeHeader(&req.ExtFields, &ch); err != nil {
		t.Fatal(err)
	}
	if ch.TranStateTableOffset != 2 || ch.MsgID != "U-open" || ch.TransactionID != "U-open" || ch.Topic != "TxTopic" || ch.OffsetMsgID == "" {
		t.Fatalf("check header: %+v", ch)
	}
	msg, err := store.DecodeMessage(req.Body, true)
	if err != nil || msg.Topic != "TxTopic" || msg.QueueID != 1 || string(msg.Body) != "open" || msg.Property(propProducerGroup) != "txg" {
		t.Fatalf("check body: %+v %v", msg, err)
	}
	copies := f.store.messages(transHalfTopic, 0)
	if len(copies) != 3 || copies[2].Property(propTransCheckTimes) != "1" {
		t.Fatalf("re-appended half: %v", copies)
	}
	if f.offsets[transHalfTopic] != 2 {
		t.Fatalf("half offset %d, want 2", f.offsets[transHalfTopic])
	}

	// No second check before the producer had transactionTimeOut to answer.
	f.clock.Advance(time.Second)
	f.svc.checkOnce(stop)
	if n := len(f.conn.checks()); n != 1 {
		t.Fatalf("checked again within the transaction timeout: %d", n)
	}

	// The producer answers for the copy: committed, and never checked again.
	answer := protocol.EndTransactionRequestHeader{ProducerGroup: "txg", TranStateTableOffset: ch.TranStateTableOffset,
		CommitLogOffset: ch.CommitLogOffset, MsgID: ch.MsgID}
	if resp := endTx(f, answer, protocol.TransactionCommit, true); resp.Code != protocol.Success {
		t.Fatalf("commit from check: %+v", resp)
	}
	f.clock.Advance(10 * time.Second)
	f.svc.checkOnce(stop)
	if n := len(f.conn.checks()); n != 1 {
		t.Fatalf("checks after commit: %d", n)
	}
	if f.offsets[transHalfTopic] != 3 || f.offsets[transOpHalfTopic] != 2 {
		t.Fatalf("offsets after all done: %v", f.offsets)
	}
	if real := f.store.messages("TxTopic", 1); len(real) != 2 {
		t.Fatalf("real messages: %d", len(real))
	}
}

func TestTransactionCheckGivesUp(t *testing.T) {
	f := newTxFixture(t) // checkMax 3
	f.sendHalf(t, "lost")
	stop := make(chan struct{})
	for i := 0; i < 6; i++ {
		f.clock.Advance(7 * time.Second)
		f.svc.checkOnce(stop)
	}
	if n := len(f.conn.checks()); n != 3 {
		t.Fatalf("checks: %d, want 3", n)
	}
	given := f.store.messages(transCheckMaxTopic, 0)
	if len(given) != 1 || string(given[0].Body) != "lost" || given[0].Property(propTransCheckTimes) != strconv.Itoa(3) {
		t.Fatalf("given up: %v", given)
	}
}

func TestTransactionServiceStartStop(t *testing.T) {
	f := newTxFixture(t)
	f.svc.cfg.interval = 5 * time.Millisecond
	f.svc.Start()
	f.svc.Start()
	time.Sleep(20 * time.Millisecond)
	f.svc.Stop()
	f.svc.Stop()
	f.svc.Start()
	f.svc.Stop()
}

func TestTransactionCheckImmunity(t *testing.T) {
	f := newTxFixture(t)
	stop := make(chan struct{})
	put := func(body string) protocol.EndTransactionRequestHeader {
		m := &store.Message{Topic: "TxTopic", Body: []byte(body), SysFlag: sysFlagTransPrepared, BornTimestamp: f.clock.Now().UnixMilli(),
			Properties: store.PropertiesFromMap(map[string]string{propTransPrepared: "true", propProducerGroup: "txg", propUniqKey: "U-" + body, propCheckImmunityTime: "20"})}
		prepareHalf(m)
		res := f.store.PutMessage(context.Background(), m)
		return protocol.EndTransactionRequestHeader{ProducerGroup: "txg", TranStateTableOffset: res.QueueOffset, CommitLogOffset: res.WroteOffset}
	}
	decided := put("decided") // offset 0
	put("open")               // offset 1

	// Within the immunity time (longer than transactionTimeOut) nothing is
	// checked, but the records are parked as copies so the scan moves on.
	f.clock.Advance(7 * time.Second)
	f.svc.checkOnce(stop)
	if n := len(f.conn.checks()); n != 0 {
		t.Fatalf("checked within the immunity time: %d", n)
	}
	half := f.store.messages(transHalfTopic, 0)
	if len(half) != 4 || half[2].Property(propTransPreparedQOff) != "0" || half[3].Property(propTransPreparedQOff) != "1" {
		t.Fatalf("parked copies: %d records", len(half))
	}
	// The producer decides about the original; its copy is then done.
	if resp := endTx(f, decided, protocol.TransactionCommit, false); resp.Code != protocol.Success {
		t.Fatalf("commit within immunity: %+v", resp)
	}
	f.clock.Advance(15 * time.Second) // past the immunity time
	f.svc.checkOnce(stop)
	checks := f.conn.checks()
	if len(checks) != 1 {
		t.Fatalf("checks after the immunity time: %d", len(checks))
	}
	msg, err := store.DecodeMessage(checks[0].Body, true)
	if err != nil || string(msg.Body) != "open" {
		t.Fatalf("checked %v %v", msg, err)
	}
	// A late decision of the producer itself is refused (604).
	late := put("late")
	f.clock.Advance(21 * time.Second)
	if resp := endTx(f, late, protocol.TransactionCommit, false); resp.Code != protocol.IllegalOperation {
		t.Fatalf("late commit: %+v", resp)
	}
}
