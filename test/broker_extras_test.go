package test

// End-to-end tests of retry, DLQ, delay levels and transactional messages
// (protocol.md §8) with rocketmq-client-go against bin/namesrv and
// bin/broker running as separate processes.

import (
	"context"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"
	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
)

// fastDelayLevels makes every level except 2 one second, so retries (levels
// 3, 4, ...) come back quickly while level 2 keeps its default 5 s.
const fastDelayLevels = "1s 5s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s"

func init() { rlog.SetLogLevel("error") }

// extrasCreateTopics creates topics on the broker with the admin client and
// waits until the name server routes them.
func extrasCreateTopics(t *testing.T, c *cluster, queues int, topics ...string) {
	t.Helper()
	adm, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{c.ns})))
	if err != nil {
		t.Fatalf("admin: %v", err)
	}
	defer adm.Close()
	for _, topic := range topics {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := adm.CreateTopic(ctx, admin.WithTopicCreate(topic), admin.WithBrokerAddrCreate(c.broker),
			admin.WithReadQueueNums(queues), admin.WithWriteQueueNums(queues))
		cancel()
		if err != nil {
			t.Fatalf("create topic %s: %v", topic, err)
		}
		eventually(t, 10*time.Second, "route of "+topic, func() bool {
			resp, err := c.invoke(c.ns, remoting.NewRequest(protocol.GetRouteinfoByTopic, remoting.FieldsOf("topic", topic), nil))
			return err == nil && resp.Code == protocol.Success
		})
	}
}

func extrasProducer(t *testing.T, c *cluster, group string) rocketmq.Producer {
	t.Helper()
	p, err := producer.NewDefaultProducer(producer.WithNameServer([]string{c.ns}), producer.WithGroupName(group),
		producer.WithInstanceName(group+"-"+strconv.FormatInt(time.Now().UnixNano(), 36)), producer.WithRetry(2))
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	if err := p.Start(); err != nil {
		t.Fatalf("producer start: %v", err)
	}
	t.Cleanup(func() { _ = p.Shutdown() })
	return p
}

// sendEventually sends msg, retrying while the route is not there yet.
func sendEventually(t *testing.T, p rocketmq.Producer, msg *primitive.Message) *primitive.SendResult {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, err := p.SendSync(ctx, msg)
		cancel()
		if err == nil && res.Status == primitive.SendOK {
			return res
		}
		if time.Now().After(deadline) {
			t.Fatalf("send to %s: %v %v", msg.Topic, res, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func extrasPushConsumer(t *testing.T, c *cluster, group, topic string, maxReconsume int32,
	fn func(*primitive.MessageExt) consumer.ConsumeResult) {
	t.Helper()
	opts := []consumer.Option{
		consumer.WithNameServer([]string{c.ns}), consumer.WithGroupName(group),
		consumer.WithInstance(group + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
		consumer.WithConsumerModel(consumer.Clustering),
	}
	if maxReconsume > 0 {
		opts = append(opts, consumer.WithMaxReconsumeTimes(maxReconsume))
	}
	pc, err := consumer.NewPushConsumer(opts...)
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	err = pc.Subscribe(topic, consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		res := consumer.ConsumeSuccess
		for _, m := range msgs {
			if r := fn(m); r != consumer.ConsumeSuccess {
				res = r
			}
		}
		return res, nil
	})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if err := pc.Start(); err != nil {
		t.Fatalf("consumer start: %v", err)
	}
	t.Cleanup(func() { _ = pc.Shutdown() })
}

// TestRetryThenDLQ: a message whose consumer always answers
// ConsumeRetryLater comes back from %RETRY%group with ReconsumeTimes 1, 2,
// ... and after the consumer's MaxReconsumeTimes (2) lands in %DLQ%group.
func TestRetryThenDLQ(t *testing.T) {
	t.Parallel()
	c := startCluster(t, map[string]string{"messageDelayLevel": fastDelayLevels})
	const topic, group = "RetryTopic", "cg_retry"
	// The retry and DLQ topics exist before the consumers start, so their
	// routes are there at once (the Go client refreshes routes every 30 s).
	extrasCreateTopics(t, c, 2, topic)
	extrasCreateTopics(t, c, 1, "%RETRY%"+group, "%DLQ%"+group)

	var mu sync.Mutex
	var seen []int32
	var firstAt, lastAt time.Time
	extrasPushConsumer(t, c, group, topic, 2, func(m *primitive.MessageExt) consumer.ConsumeResult {
		if string(m.Body) != "retry-me" {
			return consumer.ConsumeSuccess
		}
		mu.Lock()
		defer mu.Unlock()
		if len(seen) == 0 {
			firstAt = time.Now()
		}
		lastAt = time.Now()
		seen = append(seen, m.ReconsumeTimes)
		return consumer.ConsumeRetryLater
	})
	var dlqMu sync.Mutex
	var dlq []*primitive.MessageExt
	extrasPushConsumer(t, c, "cg_dlq_reader", "%DLQ%"+group, 0, func(m *primitive.MessageExt) consumer.ConsumeResult {
		dlqMu.Lock()
		dlq = append(dlq, m)
		dlqMu.Unlock()
		return consumer.ConsumeSuccess
	})

	p := extrasProducer(t, c, "pg_retry")
	msg := primitive.NewMessage(topic, []byte("retry-me"))
	msg.WithTag("TagR")
	msg.WithKeys([]string{"retry-key"})
	res := sendEventually(t, p, msg)
	sent := time.Now()

	eventually(t, 60*time.Second, "the message in %DLQ%"+group, func() bool {
		dlqMu.Lock()
		defer dlqMu.Unlock()
		return len(dlq) > 0
	})
	mu.Lock()
	got := append([]int32(nil), seen...)
	span := lastAt.Sub(firstAt)
	mu.Unlock()
	t.Logf("ReconsumeTimes %v over %v; in the DLQ %v after the send", got, span, time.Since(sent))
	if len(got) != 3 || got[0] != 0 || got[1] != 1 || got[2] != 2 {
		t.Fatalf("ReconsumeTimes seen = %v, want [0 1 2]", got)
	}
	// Two retries through delay levels 3 and 4 (1 s each here).
	if span < 2*time.Second {
		t.Errorf("retries came back after %v, want at least 2 s (two 1 s delay levels)", span)
	}
	dlqMu.Lock()
	d := dlq[0]
	dlqMu.Unlock()
	if string(d.Body) != "retry-me" || d.ReconsumeTimes != 3 {
		t.Errorf("DLQ message body %q reconsumeTimes %d, want retry-me / 3", d.Body, d.ReconsumeTimes)
	}
	if d.MsgId != res.MsgID {
		t.Errorf("DLQ message id %s, want the original UNIQ_KEY %s", d.MsgId, res.MsgID)
	}
	if rt := d.GetProperty("RETRY_TOPIC"); rt != topic {
		t.Errorf("RETRY_TOPIC = %q, want %q", rt, topic)
	}
	if d.GetProperty("ORIGIN_MESSAGE_ID") == "" {
		t.Errorf("ORIGIN_MESSAGE_ID missing: %v", d.GetProperties())
	}
	if d.GetTags() != "TagR" {
		t.Errorf("DLQ message tag %q, want TagR", d.GetTags())
	}
	// Nothing more reaches the group after the DLQ.
	time.Sleep(2 * time.Second)
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 3 {
		t.Fatalf("deliveries after DLQ: %v", seen)
	}
}

// TestDelayLevel2: with the default messageDelayLevel a level-2 message is
// delivered no earlier than 5 s after it was sent.
func TestDelayLevel2(t *testing.T) {
	t.Parallel()
	c := startCluster(t, nil)
	const topic = "DelayTopic"
	extrasCreateTopics(t, c, 2, topic)

	got := make(chan time.Time, 4)
	extrasPushConsumer(t, c, "cg_delay", topic, 0, func(m *primitive.MessageExt) consumer.ConsumeResult {
		if string(m.Body) == "later" {
			if m.GetProperty("DELAY") != "" {
				t.Errorf("delivered message still has DELAY=%s", m.GetProperty("DELAY"))
			}
			got <- time.Now()
		}
		return consumer.ConsumeSuccess
	})
	p := extrasProducer(t, c, "pg_delay")
	// Warm the route so the timed send is not delayed by route discovery.
	sendEventually(t, p, primitive.NewMessage(topic, []byte("warm-up")))

	msg := primitive.NewMessage(topic, []byte("later"))
	msg.WithDelayTimeLevel(2)
	start := time.Now()
	sendEventually(t, p, msg)
	select {
	case at := <-got:
		if d := at.Sub(start); d < 5*time.Second {
			t.Fatalf("delay level 2 delivered after %v, want >= 5s", d)
		} else if d > 15*time.Second {
			t.Errorf("delay level 2 delivered after %v, want about 5s", d)
		} else {
			t.Logf("delay level 2 delivered after %v", d)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("delayed message never delivered")
	}

	// The level's progress is kept in the delay offsets (GET_ALL_DELAY_OFFSET,
	// delayOffset.json): level 2 has delivered one message.
	levelTwoDone := regexp.MustCompile(`[{,]"?2"?:1[,}]`)
	var body string
	eventually(t, 5*time.Second, "delay offset of level 2 at 1", func() bool {
		body = string(c.brokerRequest(protocol.GetAllDelayOffset, remoting.Fields{}, nil).Body)
		return levelTwoDone.MatchString(body)
	})
	select {
	case <-got:
		t.Fatal("delayed message delivered twice")
	case <-time.After(time.Second):
	}
}

// txListener decides by body: "commit" and "rollback" are decided at once,
// "unknown" is left open and committed when the broker checks back, "never"
// stays unknown whatever the broker asks.
type txListener struct {
	mu     sync.Mutex
	checks map[string]int
}

func (l *txListener) ExecuteLocalTransaction(m *primitive.Message) primitive.LocalTransactionState {
	switch string(m.Body) {
	case "commit":
		return primitive.CommitMessageState
	case "rollback":
		return primitive.RollbackMessageState
	}
	return primitive.UnkonwnState
}

func (l *txListener) CheckLocalTransaction(m *primitive.MessageExt) primitive.LocalTransactionState {
	l.mu.Lock()
	l.checks[string(m.Body)]++
	l.mu.Unlock()
	switch string(m.Body) {
	case "unknown":
		return primitive.CommitMessageState
	case "never":
		return primitive.UnkonwnState
	}
	return primitive.RollbackMessageState
}

func (l *txListener) checked(body string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.checks[body]
}

// TestTransactions: one transaction committed, one rolled back, one left
// unknown and resolved (committed) by the broker's check-back, and one the
// producer never decides, given up after transactionCheckMax (2) checks.
func TestTransactions(t *testing.T) {
	t.Parallel()
	c := startCluster(t, map[string]string{
		"transactionCheckInterval": "1000",
		"transactionTimeOut":       "1000",
		"transactionCheckMax":      "2",
	})
	const topic, pgroup = "TxTopic", "pg_tx"
	extrasCreateTopics(t, c, 2, topic)

	var mu sync.Mutex
	bodies := map[string]*primitive.MessageExt{}
	extrasPushConsumer(t, c, "cg_tx", topic, 0, func(m *primitive.MessageExt) consumer.ConsumeResult {
		mu.Lock()
		bodies[string(m.Body)] = m
		mu.Unlock()
		return consumer.ConsumeSuccess
	})

	// Make sure the topic's route is served before the transaction producer
	// starts: the Go client heartbeats (registering the producer group the
	// check-back needs) 1 s after start and then every 30 s, only to
	// brokers it already knows from routes.
	sendEventually(t, extrasProducer(t, c, "pg_tx_warmup"), primitive.NewMessage(topic, []byte("warm-up")))

	l := &txListener{checks: map[string]int{}}
	tp, err := producer.NewTransactionProducer(l, producer.WithNameServer([]string{c.ns}), producer.WithGroupName(pgroup),
		producer.WithInstanceName(pgroup+"-"+strconv.FormatInt(time.Now().UnixNano(), 36)), producer.WithRetry(2))
	if err != nil {
		t.Fatalf("transaction producer: %v", err)
	}
	if err := tp.Start(); err != nil {
		t.Fatalf("transaction producer start: %v", err)
	}
	t.Cleanup(func() { _ = tp.Shutdown() })

	send := func(body string) *primitive.TransactionSendResult {
		deadline := time.Now().Add(20 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			res, err := tp.SendMessageInTransaction(ctx, primitive.NewMessage(topic, []byte(body)))
			cancel()
			if err == nil && res.Status == primitive.SendOK {
				return res
			}
			if time.Now().After(deadline) {
				t.Fatalf("transactional send %q: %v %v", body, res, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	send("commit")
	send("rollback")
	unknown := send("unknown")
	send("never")

	eventually(t, 30*time.Second, "committed and checked-back messages consumed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return bodies["commit"] != nil && bodies["unknown"] != nil
	})
	if n := l.checked("unknown"); n < 1 {
		t.Errorf("the unknown transaction was consumed without a check-back (checks %d)", n)
	}
	// The undecided one is checked twice, then parked in
	// TRANS_CHECK_MAX_TIME_TOPIC and never delivered. Meanwhile more check
	// rounds pass: the rolled-back message must never appear and the decided
	// ones must not be checked.
	eventually(t, 20*time.Second, "the undecided transaction given up", func() bool {
		resp := c.brokerRequest(protocol.GetMaxOffset, remoting.FieldsOf("topic", "TRANS_CHECK_MAX_TIME_TOPIC", "queueId", "0"), nil)
		return resp.ExtFields.Get("offset") == "1"
	})
	time.Sleep(time.Second)
	mu.Lock()
	defer mu.Unlock()
	if m := bodies["rollback"]; m != nil {
		t.Fatalf("rolled-back message delivered: %v", m)
	}
	if n := l.checked("commit") + l.checked("rollback"); n != 0 {
		t.Errorf("decided transactions were checked back %d times", n)
	}
	// Once normally; a second check is possible only when the producer's
	// answer lost the race against the next round (1 s later) on a loaded
	// machine.
	if n := l.checked("unknown"); n < 1 || n > 2 {
		t.Errorf("unknown transaction checked %d times, want 1", n)
	}
	if n := l.checked("never"); n != 2 {
		t.Errorf("undecided transaction checked %d times, want 2 (transactionCheckMax)", n)
	}
	if bodies["never"] != nil {
		t.Errorf("undecided transaction delivered")
	}
	u := bodies["unknown"]
	if u.MsgId != unknown.MsgID {
		t.Errorf("checked-back message id %s, want %s", u.MsgId, unknown.MsgID)
	}
	for _, p := range []string{"TRAN_MSG", "REAL_TOPIC", "REAL_QID"} {
		if v := u.GetProperty(p); v != "" {
			t.Errorf("committed message keeps %s=%s", p, v)
		}
	}
	if u.GetProperty("PGROUP") != pgroup {
		t.Errorf("committed message PGROUP = %q", u.GetProperty("PGROUP"))
	}
}
