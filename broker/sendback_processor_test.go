package broker

import (
	"context"
	"testing"
	"time"

	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
	"github.com/rmqd/rmqd/store"
)

type sendBackFixture struct {
	store  *fakeStore
	svc    *sendBackService
	topics map[string]int
}

func newSendBackFixture() *sendBackFixture {
	clock := &fakeClock{t: time.UnixMilli(1_700_000_000_000)}
	f := &sendBackFixture{store: newFakeStore(testLevels(), clock.Now), topics: map[string]int{}}
	f.svc = newSendBackService(f.store, sendBackConfig{
		levels: testLevels(),
		group: func(name string) (retryGroup, bool) {
			if name == "missing" {
				return retryGroup{}, false
			}
			if name == "noretry" {
				return retryGroup{retryMaxTimes: 16}, true
			}
			return retryGroup{retryMaxTimes: 16, retryQueueNums: 1}, true
		},
		ensureTopic: func(topic string, queues int) (int32, bool) {
			f.topics[topic] = queues
			return protocol.PermReadWrite, true
		},
	})
	return f
}

func (f *sendBackFixture) sendBack(group string, offset int64, level int32, max *int32) *remoting.RemotingCommand {
	h := protocol.ConsumerSendMsgBackRequestHeader{Group: group, Offset: offset, DelayLevel: level, OriginTopic: "T", MaxReconsumeTimes: max}
	return f.svc.processConsumerSendMsgBack(&remoting.RemotingCommand{Code: protocol.ConsumerSendMsgBack, Version: 317, ExtFields: protocol.EncodeHeader(&h)})
}

func TestSendBackToRetryThenDLQ(t *testing.T) {
	f := newSendBackFixture()
	orig := f.store.PutMessage(context.Background(), &store.Message{Topic: "T", QueueID: 2, Body: []byte("x"), Flag: 3,
		BornTimestamp: 42, BornHost: "10.0.0.1:5000", Properties: store.PropertiesFromMap(map[string]string{propTags: "tg", propUniqKey: "UQ"})})
	two := int32(2)
	if resp := f.sendBack("cg", orig.WroteOffset, 0, &two); resp.Code != protocol.Success {
		t.Fatalf("send back: %d %s", resp.Code, resp.Remark)
	}
	if f.topics["%RETRY%cg"] != 1 {
		t.Fatalf("retry topic not ensured: %v", f.topics)
	}
	// Level 3 + 0 = 3, parked in the schedule queue for level 3 (clamped to the 3-level table).
	sched := f.store.messages(scheduleTopic, 2)
	if len(sched) != 1 {
		t.Fatalf("schedule queue: %v", sched)
	}
	r := sched[0]
	if r.ReconsumeTimes != 1 || r.Property(propRealTopic) != "%RETRY%cg" || r.Property(propDelay) != "3" ||
		r.Property(propRetryTopic) != "T" || r.Property(propOriginMessageID) != orig.MsgID || r.Property(propUniqKey) != "UQ" ||
		r.Flag != 3 || r.BornTimestamp != 42 || r.BornHost != "10.0.0.1:5000" || string(r.Body) != "x" {
		t.Fatalf("retry record: %+v", r)
	}
	// A message already reconsumed twice goes to the DLQ with max 2.
	retried := f.store.PutMessage(context.Background(), &store.Message{Topic: "%RETRY%cg", Body: []byte("x"), ReconsumeTimes: 2,
		Properties: store.PropertiesFromMap(map[string]string{propRetryTopic: "T", propOriginMessageID: "FIRST", propUniqKey: "UQ", propRealTopic: "%RETRY%cg"})})
	if resp := f.sendBack("cg", retried.WroteOffset, 0, &two); resp.Code != protocol.Success {
		t.Fatalf("send back: %d %s", resp.Code, resp.Remark)
	}
	dlq := f.store.messages("%DLQ%cg", 0)
	if len(dlq) != 1 || dlq[0].ReconsumeTimes != 3 || dlq[0].Property(propOriginMessageID) != "FIRST" ||
		dlq[0].Property(propRetryTopic) != "T" || dlq[0].Property(propDelay) != "" {
		t.Fatalf("dlq: %+v", dlq)
	}
	// Without the header the group's retryMaxTimes (16) applies; -1 forces the DLQ.
	if resp := f.sendBack("cg", retried.WroteOffset, 0, nil); resp.Code != protocol.Success {
		t.Fatal(resp.Remark)
	}
	if len(f.store.messages("%DLQ%cg", 0)) != 1 || len(f.store.messages(scheduleTopic, 2)) != 2 {
		t.Fatal("retry with the group's max went to the DLQ")
	}
	if resp := f.sendBack("cg", orig.WroteOffset, -1, nil); resp.Code != protocol.Success || len(f.store.messages("%DLQ%cg", 0)) != 2 {
		t.Fatal("delayLevel -1 did not go to the DLQ")
	}
}

func TestSendBackErrors(t *testing.T) {
	f := newSendBackFixture()
	if resp := f.sendBack("missing", 0, 0, nil); resp.Code != protocol.SubscriptionGroupNotExist {
		t.Fatalf("missing group: %+v", resp)
	}
	if resp := f.sendBack("noretry", 0, 0, nil); resp.Code != protocol.Success || len(f.topics) != 0 {
		t.Fatalf("retryQueueNums 0: %+v", resp)
	}
	if resp := f.sendBack("cg", 12345, 0, nil); resp.Code != protocol.SystemError {
		t.Fatalf("bad offset: %+v", resp)
	}
	if resp := f.svc.processConsumerSendMsgBack(&remoting.RemotingCommand{ExtFields: remoting.FieldsOf("group", "cg")}); resp.Code != protocol.SystemError {
		t.Fatalf("bad header: %+v", resp)
	}
	f.svc.cfg.checkWritable = func() *remoting.RemotingCommand { return extrasRespond(protocol.NoPermission, "no") }
	if resp := f.sendBack("cg", 0, 0, nil); resp.Code != protocol.NoPermission {
		t.Fatalf("not writable: %+v", resp)
	}
}

func TestRedirectRetrySend(t *testing.T) {
	f := newSendBackFixture()
	two := int32(2)
	h := &protocol.SendMessageRequestHeader{MaxReconsumeTimes: &two}
	m := &store.Message{Topic: "%RETRY%cg", ReconsumeTimes: 2, Properties: store.PropertiesFromMap(map[string]string{propDelay: "5"})}
	if code, _ := f.svc.redirectRetrySend(h, m); code != protocol.Success || m.Topic != "%RETRY%cg" {
		t.Fatalf("within max: %d %+v", code, m)
	}
	m.ReconsumeTimes = 3
	if code, _ := f.svc.redirectRetrySend(h, m); code != protocol.Success || m.Topic != "%DLQ%cg" || m.Property(propDelay) != "-1" {
		t.Fatalf("beyond max: %d %+v", code, m)
	}
	if scheduleDelayed(m, testLevels()) {
		t.Fatal("DLQ message scheduled")
	}
	m2 := &store.Message{Topic: "%RETRY%missing"}
	if code, _ := f.svc.redirectRetrySend(h, m2); code != protocol.SubscriptionGroupNotExist {
		t.Fatalf("missing group: %d", code)
	}
	f.svc.cfg.groupHasLiveLocks = func(group string) bool { return group == "orderly" }
	m4 := &store.Message{Topic: "%RETRY%orderly", ReconsumeTimes: 1}
	if code, _ := f.svc.redirectRetrySend(h, m4); code != protocol.Success || m4.Topic != "%DLQ%orderly" {
		t.Fatalf("orderly group with locks: %d %+v", code, m4)
	}
	m3 := &store.Message{Topic: "Plain", ReconsumeTimes: 99}
	if code, _ := f.svc.redirectRetrySend(h, m3); code != protocol.Success || m3.Topic != "Plain" {
		t.Fatal("plain topic touched")
	}
}

func TestExtrasSendHookOrder(t *testing.T) {
	f := newSendBackFixture()
	x := &extras{levels: testLevels(), sendBack: f.svc}
	two := int32(2)
	h := &protocol.SendMessageRequestHeader{MaxReconsumeTimes: &two}

	half := &store.Message{Topic: "T", SysFlag: sysFlagTransPrepared, Properties: store.PropertiesFromMap(map[string]string{propTransPrepared: "true", propDelay: "2"})}
	if code, _ := x.sendHook(nil, h, half); code != protocol.Success || half.Topic != transHalfTopic {
		t.Fatalf("prepared message: %d %+v", code, half)
	}
	delayed := &store.Message{Topic: "T", QueueID: 1, Properties: store.PropertiesFromMap(map[string]string{propDelay: "2"})}
	if code, _ := x.sendHook(nil, h, delayed); code != protocol.Success || delayed.Topic != scheduleTopic || delayed.QueueID != 1 {
		t.Fatalf("delayed message: %d %+v", code, delayed)
	}
	retry := &store.Message{Topic: "%RETRY%cg", ReconsumeTimes: 1, Properties: store.PropertiesFromMap(map[string]string{propDelay: "4"})}
	if code, _ := x.sendHook(nil, h, retry); code != protocol.Success || retry.Topic != scheduleTopic || retry.Property(propRealTopic) != "%RETRY%cg" {
		t.Fatalf("retry fallback within max: %d %+v", code, retry)
	}
	dead := &store.Message{Topic: "%RETRY%cg", ReconsumeTimes: 3, Properties: store.PropertiesFromMap(map[string]string{propDelay: "5"})}
	if code, _ := x.sendHook(nil, h, dead); code != protocol.Success || dead.Topic != "%DLQ%cg" {
		t.Fatalf("retry fallback beyond max: %d %+v", code, dead)
	}
	plain := &store.Message{Topic: "T", QueueID: 3}
	if code, _ := x.sendHook(nil, h, plain); code != protocol.Success || plain.Topic != "T" || plain.QueueID != 3 {
		t.Fatalf("plain message: %d %+v", code, plain)
	}
}
