package test

// End-to-end tests of the broker's client-facing codes with
// rocketmq-client-go against bin/namesrv and bin/broker as separate
// processes: send modes, pull and push consumers, tag filtering, orderly
// consumption, message queries, crash recovery and bad input.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	"github.com/rmqd/rmqd/store"
)

func init() { rlog.SetLogLevel("error") }

var instanceSeq atomic.Int64

func uniqueInstance(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano(), instanceSeq.Add(1))
}

// createTopic creates topic with the admin API on the cluster's broker and
// waits until the name server routes it.
func (c *cluster) createTopic(t *testing.T, topic string, queues int) {
	t.Helper()
	adm, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{c.ns})))
	if err != nil {
		t.Fatalf("admin: %v", err)
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := adm.CreateTopic(ctx, admin.WithTopicCreate(topic), admin.WithBrokerAddrCreate(c.broker),
		admin.WithReadQueueNums(queues), admin.WithWriteQueueNums(queues)); err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	eventually(t, 10*time.Second, "route of "+topic, func() bool {
		resp, err := c.invoke(c.ns, remoting.NewRequest(protocol.GetRouteinfoByTopic, remoting.FieldsOf("topic", topic), nil))
		return err == nil && resp.Code == protocol.Success
	})
}

func (c *cluster) newProducer(t *testing.T, opts ...producer.Option) rocketmq.Producer {
	t.Helper()
	all := append([]producer.Option{
		producer.WithNameServer([]string{c.ns}),
		producer.WithGroupName(uniqueInstance("pg")),
		producer.WithInstanceName(uniqueInstance("p")),
		producer.WithSendMsgTimeout(5 * time.Second),
	}, opts...)
	p, err := producer.NewDefaultProducer(all...)
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	if err := p.Start(); err != nil {
		t.Fatalf("producer start: %v", err)
	}
	t.Cleanup(func() { _ = p.Shutdown() })
	return p
}

// collector gathers consumed messages by body.
type collector struct {
	mu   sync.Mutex
	msgs map[string]*primitive.MessageExt
	dups int
	seq  []string // arrival order of bodies
}

func newCollector() *collector { return &collector{msgs: map[string]*primitive.MessageExt{}} }

func (c *collector) add(msgs ...*primitive.MessageExt) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range msgs {
		b := string(m.Body)
		if _, ok := c.msgs[b]; ok {
			c.dups++
		}
		c.msgs[b] = m
		c.seq = append(c.seq, b)
	}
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.msgs)
}

func (c *collector) bodies() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.msgs))
	for b := range c.msgs {
		out = append(out, b)
	}
	sort.Strings(out)
	return out
}

func (c *cluster) startPushConsumer(t *testing.T, group, topic, expr string, orderly bool, col *collector) rocketmq.PushConsumer {
	t.Helper()
	pc, err := consumer.NewPushConsumer(
		consumer.WithNameServer([]string{c.ns}),
		consumer.WithGroupName(group),
		consumer.WithInstance(uniqueInstance("c")),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
		consumer.WithConsumerOrder(orderly),
	)
	if err != nil {
		t.Fatalf("push consumer: %v", err)
	}
	err = pc.Subscribe(topic, consumer.MessageSelector{Type: consumer.TAG, Expression: expr},
		func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			col.add(msgs...)
			return consumer.ConsumeSuccess, nil
		})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if err := pc.Start(); err != nil {
		t.Fatalf("push consumer start: %v", err)
	}
	t.Cleanup(func() { _ = pc.Shutdown() })
	return pc
}

func (c *cluster) maxOffset(t *testing.T, topic string, queueID int) int64 {
	t.Helper()
	resp := c.brokerRequest(protocol.GetMaxOffset, remoting.FieldsOf("topic", topic, "queueId", strconv.Itoa(queueID)), nil)
	n, err := strconv.ParseInt(resp.ExtFields.Get("offset"), 10, 64)
	if err != nil {
		t.Fatalf("GET_MAX_OFFSET %s:%d: code %d ext %v", topic, queueID, resp.Code, resp.ExtFields)
	}
	return n
}

// pullAll reads every message of one queue with raw PULL_MESSAGE requests
// (no suspend) and returns them decoded, in queue order.
func (c *cluster) pullAll(t *testing.T, group, topic string, queueID int) []*store.MessageExt {
	t.Helper()
	var out []*store.MessageExt
	offset := int64(0)
	max := c.maxOffset(t, topic, queueID)
	for offset < max {
		resp := c.brokerRequest(protocol.PullMessage, remoting.FieldsOf(
			"consumerGroup", group,
			"topic", topic,
			"queueId", strconv.Itoa(queueID),
			"queueOffset", strconv.FormatInt(offset, 10),
			"maxMsgNums", "32",
			"sysFlag", "4",
			"commitOffset", "0",
			"suspendTimeoutMillis", "0",
			"subscription", "*",
			"subVersion", "0",
			"expressionType", "TAG",
		), nil)
		next, _ := strconv.ParseInt(resp.ExtFields.Get("nextBeginOffset"), 10, 64)
		switch resp.Code {
		case protocol.Success:
			msgs, err := store.DecodeMessages(resp.Body, true)
			if err != nil {
				t.Fatalf("decode pull body: %v", err)
			}
			out = append(out, msgs...)
		case protocol.PullRetryImmediately:
		default:
			t.Fatalf("pull %s:%d@%d: code %d remark %q ext %v", topic, queueID, offset, resp.Code, resp.Remark, resp.ExtFields)
		}
		if next <= offset {
			t.Fatalf("pull %s:%d@%d made no progress (next %d)", topic, queueID, offset, next)
		}
		offset = next
	}
	return out
}

// TestProducerModesAndPullConsumer sends with every producer mode (sync,
// async, oneway, batch, a 256 KiB body that the client compresses) and reads
// everything back with the client's pull consumer from explicit offsets.
func TestProducerModesAndPullConsumer(t *testing.T) {
	t.Parallel()
	c := startCluster(t, nil)
	const topic = "ModesTopic"
	c.createTopic(t, topic, 2)
	p := c.newProducer(t)
	ctx := context.Background()
	want := map[string]bool{}

	for i := 0; i < 10; i++ {
		body := fmt.Sprintf("sync-%d", i)
		msg := primitive.NewMessage(topic, []byte(body)).WithTag("TagS").WithKeys([]string{"k" + strconv.Itoa(i), "common"})
		msg.WithProperty("custom", "v"+strconv.Itoa(i))
		res, err := p.SendSync(ctx, msg)
		if err != nil || res.Status != primitive.SendOK {
			t.Fatalf("sync send: %v %v", res, err)
		}
		if res.MsgID == "" || len(res.OffsetMsgID) != 32 || res.MsgID == res.OffsetMsgID {
			t.Fatalf("send result ids: msgId %q offsetMsgId %q", res.MsgID, res.OffsetMsgID)
		}
		want[body] = true
	}
	var wg sync.WaitGroup
	var asyncErr atomic.Value
	for i := 0; i < 10; i++ {
		body := fmt.Sprintf("async-%d", i)
		want[body] = true
		wg.Add(1)
		err := p.SendAsync(ctx, func(_ context.Context, res *primitive.SendResult, err error) {
			defer wg.Done()
			if err != nil {
				asyncErr.Store(err)
			}
		}, primitive.NewMessage(topic, []byte(body)).WithTag("TagA"))
		if err != nil {
			t.Fatalf("async send: %v", err)
		}
	}
	waitGroup(t, &wg, 15*time.Second, "async send callbacks")
	if e := asyncErr.Load(); e != nil {
		t.Fatalf("async send failed: %v", e)
	}
	for i := 0; i < 10; i++ {
		body := fmt.Sprintf("oneway-%d", i)
		want[body] = true
		if err := p.SendOneWay(ctx, primitive.NewMessage(topic, []byte(body))); err != nil {
			t.Fatalf("oneway send: %v", err)
		}
	}
	var batch []*primitive.Message
	for i := 0; i < 5; i++ {
		body := fmt.Sprintf("batch-%d", i)
		want[body] = true
		batch = append(batch, primitive.NewMessage(topic, []byte(body)))
	}
	res, err := p.SendSync(ctx, batch...)
	if err != nil || res.Status != primitive.SendOK {
		t.Fatalf("batch send: %v %v", res, err)
	}
	if ids := strings.Split(res.OffsetMsgID, ","); len(ids) != 5 {
		t.Fatalf("batch offset ids %q", res.OffsetMsgID)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 256<<10/16)
	big = append([]byte("big-"), big...)
	if res, err := p.SendSync(ctx, primitive.NewMessage(topic, big)); err != nil || res.Status != primitive.SendOK {
		t.Fatalf("256 KiB send: %v %v", res, err)
	}

	// Read everything back from offset 0 of each queue with the client's
	// pull consumer (PullFrom), run by the client driver.
	eventually(t, 15*time.Second, "all messages stored", func() bool {
		return c.maxOffset(t, topic, 0)+c.maxOffset(t, topic, 1) >= int64(len(want)+1)
	})
	maxes := fmt.Sprintf("%d,%d", c.maxOffset(t, topic, 0), c.maxOffset(t, topic, 1))
	got := map[string]driverMessage{}
	next := map[int]int64{}
	for _, m := range runDriver(t, "pull", "-ns", c.ns, "-topic", topic, "-broker", c.brokerName, "-group", "pullGroup", "-max", maxes) {
		if m.Offset != next[m.Queue] {
			t.Fatalf("queue %d: message at position %d claims offset %d", m.Queue, next[m.Queue], m.Offset)
		}
		next[m.Queue]++
		got[m.Body] = m
	}
	for b := range want {
		if _, ok := got[b]; !ok {
			t.Errorf("message %q not pulled back", b)
		}
	}
	if _, ok := got[string(big)]; !ok {
		t.Fatal("256 KiB message not pulled back intact")
	}
	m, ok := got["sync-3"]
	if !ok {
		t.Fatal("sync-3 missing")
	}
	if m.Tags != "TagS" || !strings.Contains(m.Keys, "k3") || m.Properties["custom"] != "v3" {
		t.Errorf("sync-3: tags %q keys %q custom %q", m.Tags, m.Keys, m.Properties["custom"])
	}
	if !strings.HasPrefix(m.BornHost, "127.0.0.1:") || m.StoreHost != c.broker {
		t.Errorf("sync-3: bornHost %q storeHost %q", m.BornHost, m.StoreHost)
	}
	if m.MsgID == m.OffsetMsgID || m.Properties[primitive.PropertyUniqueClientMessageIdKeyIndex] != m.MsgID {
		t.Errorf("sync-3: msgId %q offsetMsgId %q", m.MsgID, m.OffsetMsgID)
	}
}

// driverMessage is clientdriver's output line.
type driverMessage struct {
	Queue       int               `json:"queue"`
	Offset      int64             `json:"offset"`
	Body        string            `json:"body"`
	Tags        string            `json:"tags"`
	Keys        string            `json:"keys"`
	Properties  map[string]string `json:"properties"`
	BornHost    string            `json:"bornHost"`
	StoreHost   string            `json:"storeHost"`
	MsgID       string            `json:"msgId"`
	OffsetMsgID string            `json:"offsetMsgId"`
}

// runDriver runs test/clientdriver (built without -race; the client library
// races internally) and decodes its output.
func runDriver(t *testing.T, args ...string) []driverMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binaries(t), "clientdriver"), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("clientdriver %v: %v\n%s", args, err, tail(stderr.String()))
	}
	var msgs []driverMessage
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var m driverMessage
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("clientdriver output: %v", err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

func waitGroup(t *testing.T, wg *sync.WaitGroup, d time.Duration, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("timed out after %v waiting for %s", d, what)
	}
}

// TestPushConsumersTagFilterAndGroups: two "*" groups on one topic each get
// every message; a "TagA || TagB" group gets exactly those.
func TestPushConsumersTagFilterAndGroups(t *testing.T) {
	t.Parallel()
	c := startCluster(t, nil)
	const topic = "FilterTopic"
	c.createTopic(t, topic, 2)
	all1, all2, ab := newCollector(), newCollector(), newCollector()
	c.startPushConsumer(t, "groupAll1", topic, "*", false, all1)
	c.startPushConsumer(t, "groupAll2", topic, "*", false, all2)
	c.startPushConsumer(t, "groupAB", topic, "TagA || TagB", false, ab)

	p := c.newProducer(t)
	tags := []string{"TagA", "TagB", "TagC", ""}
	wantAB := 0
	const n = 40
	for i := 0; i < n; i++ {
		tag := tags[i%len(tags)]
		msg := primitive.NewMessage(topic, []byte(fmt.Sprintf("m-%d-%s", i, tag)))
		if tag != "" {
			msg.WithTag(tag)
		}
		if tag == "TagA" || tag == "TagB" {
			wantAB++
		}
		if _, err := p.SendSync(context.Background(), msg); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	eventually(t, 60*time.Second, "every group consumed its messages", func() bool {
		return all1.count() == n && all2.count() == n && ab.count() == wantAB
	})
	time.Sleep(500 * time.Millisecond) // nothing else may arrive
	for _, b := range ab.bodies() {
		if !strings.HasSuffix(b, "TagA") && !strings.HasSuffix(b, "TagB") {
			t.Errorf("groupAB got %q", b)
		}
	}
	if ab.count() != wantAB || all1.count() != n || all2.count() != n {
		t.Errorf("counts: all1 %d all2 %d ab %d (want %d %d %d)", all1.count(), all2.count(), ab.count(), n, n, wantAB)
	}

	// The broker knows the group and its subscription.
	resp := c.brokerRequest(protocol.GetConsumerConnectionList, remoting.FieldsOf("consumerGroup", "groupAB"), nil)
	if resp.Code != protocol.Success || !strings.Contains(string(resp.Body), "TagB") {
		t.Errorf("consumer connection list: %d %q %s", resp.Code, resp.Remark, resp.Body)
	}
	resp = c.brokerRequest(protocol.GetConsumerListByGroup, remoting.FieldsOf("consumerGroup", "groupAll1"), nil)
	var list struct {
		ConsumerIDList []string `json:"consumerIdList"`
	}
	if err := json.Unmarshal(resp.Body, &list); err != nil || len(list.ConsumerIDList) != 1 {
		t.Fatalf("consumer list: %s %v", resp.Body, err)
	}
	// GET_CONSUMER_RUNNING_INFO is relayed to the client and its answer back.
	resp = c.brokerRequest(protocol.GetConsumerRunningInfo, remoting.FieldsOf("consumerGroup", "groupAll1", "clientId", list.ConsumerIDList[0], "jstackEnable", "false"), nil)
	if resp.Code != protocol.Success || !strings.Contains(string(resp.Body), "subscriptionSet") {
		t.Errorf("consumer running info: %d %q %.200s", resp.Code, resp.Remark, resp.Body)
	}
	// Offsets are committed (pull flag and UPDATE_CONSUMER_OFFSET).
	eventually(t, 20*time.Second, "offsets committed", func() bool {
		var sum int64
		for q := 0; q < 2; q++ {
			r := c.brokerRequest(protocol.QueryConsumerOffset, remoting.FieldsOf("consumerGroup", "groupAll1", "topic", topic, "queueId", strconv.Itoa(q)), nil)
			if r.Code != protocol.Success {
				return false
			}
			off, _ := strconv.ParseInt(r.ExtFields.Get("offset"), 10, 64)
			sum += off
		}
		return sum == n
	})
	resp = c.brokerRequest(protocol.GetConsumeStats, remoting.FieldsOf("consumerGroup", "groupAll1", "topic", topic), nil)
	if resp.Code != protocol.Success || !strings.Contains(string(resp.Body), `"consumerOffset"`) {
		t.Errorf("consume stats: %d %s", resp.Code, resp.Body)
	}
}

// TestOrderlyConsumer: messages of one sharding key go to one queue and an
// orderly consumer (queue locks) sees each key's messages in send order.
func TestOrderlyConsumer(t *testing.T) {
	t.Parallel()
	c := startCluster(t, nil)
	const topic = "OrderTopic"
	c.createTopic(t, topic, 4)
	p := c.newProducer(t, producer.WithQueueSelector(producer.NewHashQueueSelector()))
	const keys, per = 3, 15
	for i := 0; i < per; i++ {
		for k := 0; k < keys; k++ {
			msg := primitive.NewMessage(topic, []byte(fmt.Sprintf("key%d-%03d", k, i))).WithShardingKey("key" + strconv.Itoa(k))
			if _, err := p.SendSync(context.Background(), msg); err != nil {
				t.Fatalf("send: %v", err)
			}
		}
	}
	got := runDriver(t, "orderly", "-ns", c.ns, "-topic", topic, "-group", "orderlyGroup", "-n", strconv.Itoa(keys*per))
	seen := map[string]bool{}
	last := map[string]string{}
	queueOf := map[string]int{}
	for _, m := range got {
		seen[m.Body] = true
		k := m.Body[:4]
		if prev, ok := last[k]; ok && m.Body < prev {
			t.Errorf("out of order for %s: %s after %s", k, m.Body, prev)
		}
		last[k] = m.Body
		if q, ok := queueOf[k]; ok && q != m.Queue {
			t.Errorf("%s spread over queues %d and %d", k, q, m.Queue)
		}
		queueOf[k] = m.Queue
	}
	if len(seen) != keys*per {
		t.Fatalf("orderly consumer got %d distinct messages, want %d", len(seen), keys*per)
	}
	// Queue locks: a held lock is not granted to another client until it is
	// released.
	lock := func(code int16, client string) *remoting.RemotingCommand {
		return c.brokerRequest(code, remoting.Fields{}, []byte(fmt.Sprintf(
			`{"consumerGroup":"lockGroup","clientId":%q,"mqSet":[{"topic":%q,"brokerName":%q,"queueId":0}]}`, client, topic, c.brokerName)))
	}
	if r := lock(protocol.LockBatchMQ, "owner"); !strings.Contains(string(r.Body), `"queueId":0`) {
		t.Fatalf("owner lock: %d %s", r.Code, r.Body)
	}
	if r := lock(protocol.LockBatchMQ, "intruder"); strings.Contains(string(r.Body), `"queueId":0`) {
		t.Fatalf("an intruder got a held lock: %s", r.Body)
	}
	if r := lock(protocol.UnlockBatchMQ, "owner"); r.Code != protocol.Success {
		t.Fatalf("unlock: %d", r.Code)
	}
	if r := lock(protocol.LockBatchMQ, "intruder"); !strings.Contains(string(r.Body), `"queueId":0`) {
		t.Fatalf("lock after release: %s", r.Body)
	}
}

// TestQueryMessage finds a message by offset msgId (VIEW_MESSAGE_BY_ID), by
// UNIQ_KEY and by key (QUERY_MESSAGE).
func TestQueryMessage(t *testing.T) {
	t.Parallel()
	c := startCluster(t, nil)
	const topic = "QueryTopic"
	c.createTopic(t, topic, 2)
	p := c.newProducer(t)
	res, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("find me")).WithKeys([]string{"orderId-42", "other"}))
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	_, phy, err := store.DecodeMessageID(res.OffsetMsgID)
	if err != nil {
		t.Fatalf("offset msgId %q: %v", res.OffsetMsgID, err)
	}
	resp := c.brokerRequest(protocol.ViewMessageByID, remoting.FieldsOf("offset", strconv.FormatInt(phy, 10), "topic", topic), nil)
	checkBody := func(what string, resp *remoting.RemotingCommand) {
		t.Helper()
		if resp.Code != protocol.Success {
			t.Fatalf("%s: code %d %q", what, resp.Code, resp.Remark)
		}
		msgs, err := store.DecodeMessages(resp.Body, true)
		if err != nil || len(msgs) == 0 || string(msgs[0].Body) != "find me" || msgs[0].UniqKey() != res.MsgID {
			t.Fatalf("%s: %v %v", what, msgs, err)
		}
	}
	checkBody("view by offset id", resp)
	now := time.Now().UnixMilli()
	query := func(key string, unique bool) *remoting.RemotingCommand {
		ext := remoting.FieldsOf(
			"topic", topic,
			"key", key,
			"maxNum", "32",
			"beginTimestamp", strconv.FormatInt(now-3600_000, 10),
			"endTimestamp", strconv.FormatInt(now+3600_000, 10),
		)
		if unique {
			ext.Set("_UNIQUE_KEY_QUERY", "true")
		}
		return c.brokerRequest(protocol.QueryMessage, ext, nil)
	}
	// The index is built by the dispatcher: allow it a moment.
	eventually(t, 10*time.Second, "query by key", func() bool { return query("orderId-42", false).Code == protocol.Success })
	checkBody("query by key", query("orderId-42", false))
	checkBody("query by UNIQ_KEY", query(res.MsgID, true))
	if r := query("no-such-key", false); r.Code != protocol.QueryNotFound {
		t.Errorf("unknown key: code %d", r.Code)
	}
	if r := c.brokerRequest(protocol.ViewMessageByID, remoting.FieldsOf("offset", "999999999"), nil); r.Code == protocol.Success {
		t.Errorf("view at a bad offset succeeded")
	}

	// A send to an unknown topic auto-creates it from TBW102 and the broker
	// registers it with the name server at once.
	if res, err := p.SendSync(context.Background(), primitive.NewMessage("AutoCreatedTopic", []byte("auto"))); err != nil || res.Status != primitive.SendOK {
		t.Fatalf("send to a new topic: %v %v", res, err)
	}
	eventually(t, 5*time.Second, "route of the auto-created topic", func() bool {
		resp, err := c.invoke(c.ns, remoting.NewRequest(protocol.GetRouteinfoByTopic, remoting.FieldsOf("topic", "AutoCreatedTopic"), nil))
		return err == nil && resp.Code == protocol.Success && strings.Contains(string(resp.Body), `"writeQueueNums":4`)
	})

	// The admin API reads the subscription groups (strict JSON).
	adm, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{c.ns})))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	actx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	groups, err := adm.GetAllSubscriptionGroup(actx, c.broker, 3*time.Second)
	if err != nil {
		t.Fatalf("GetAllSubscriptionGroup: %v", err)
	}
	if g, ok := groups.SubscriptionGroupTable["TOOLS_CONSUMER"]; !ok || !g.ConsumeEnable || g.RetryMaxTimes != 16 {
		t.Errorf("groups: %+v", groups.SubscriptionGroupTable)
	}
}

// TestKillDuringSendsThenRestart: kill -9 while a producer streams; after a
// restart every acknowledged message is in its queue at its offset exactly
// once, and committed consumer offsets are kept.
func TestKillDuringSendsThenRestart(t *testing.T) {
	t.Parallel()
	c := startCluster(t, nil)
	const topic = "CrashTopic"
	c.createTopic(t, topic, 2)

	// A consumer group with a committed offset.
	hb := `{"clientID":"127.0.0.1@crash","producerDataSet":[],"consumerDataSet":[{"groupName":"crashGroup","consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING","consumeFromWhere":"CONSUME_FROM_FIRST_OFFSET","subscriptionDataSet":[{"classFilterMode":false,"topic":"CrashTopic","subString":"*","tagsSet":[],"codeSet":[],"subVersion":1,"expressionType":"TAG"}],"unitMode":false}]}`
	if r := c.brokerRequest(protocol.HeartBeat, remoting.Fields{}, []byte(hb)); r.Code != protocol.Success {
		t.Fatalf("heartbeat: %d %q", r.Code, r.Remark)
	}

	p := c.newProducer(t, producer.WithRetry(0))
	type ack struct {
		queue  int
		offset int64
		body   string
	}
	var (
		mu    sync.Mutex
		acks  []ack
		sends atomic.Int64
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf("w%d-%06d", w, i)
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				res, err := p.SendSync(ctx, primitive.NewMessage(topic, []byte(body)))
				cancel()
				sends.Add(1)
				if err != nil || res.Status != primitive.SendOK {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				mu.Lock()
				acks = append(acks, ack{res.MessageQueue.QueueId, res.QueueOffset, body})
				mu.Unlock()
			}
		}(w)
	}
	eventually(t, 30*time.Second, "some acknowledged sends", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acks) >= 200
	})
	for q := 0; q < 2; q++ {
		r := c.brokerRequest(protocol.UpdateConsumerOffset, remoting.FieldsOf(
			"consumerGroup", "crashGroup",
			"topic", topic,
			"queueId", strconv.Itoa(q),
			"commitOffset", strconv.Itoa(7+q),
		), nil)
		if r.Code != protocol.Success {
			t.Fatalf("update offset: %d %q", r.Code, r.Remark)
		}
	}
	time.Sleep(1500 * time.Millisecond) // > flushConsumerOffsetInterval; sends go on meanwhile
	c.killBroker()
	close(stop)
	wg.Wait()
	mu.Lock()
	acked := append([]ack(nil), acks...)
	mu.Unlock()
	t.Logf("%d sends, %d acknowledged before kill -9", sends.Load(), len(acked))

	c.restartBrokerOnNewPort()
	stored := map[int][]*store.MessageExt{}
	for q := 0; q < 2; q++ {
		stored[q] = c.pullAll(t, "crashCheck", topic, q)
	}
	count := map[string]int{}
	for q, msgs := range stored {
		for i, m := range msgs {
			if m.QueueOffset != int64(i) {
				t.Fatalf("queue %d: message %d has offset %d", q, i, m.QueueOffset)
			}
			count[string(m.Body)]++
		}
	}
	for _, a := range acked {
		msgs := stored[a.queue]
		if a.offset >= int64(len(msgs)) {
			t.Errorf("acknowledged %s (q%d@%d) lost: queue has %d", a.body, a.queue, a.offset, len(msgs))
			continue
		}
		if got := string(msgs[a.offset].Body); got != a.body {
			t.Errorf("q%d@%d holds %q, acknowledged %q", a.queue, a.offset, got, a.body)
		}
		if count[a.body] != 1 {
			t.Errorf("%s stored %d times", a.body, count[a.body])
		}
	}
	for q := 0; q < 2; q++ {
		r := c.brokerRequest(protocol.QueryConsumerOffset, remoting.FieldsOf("consumerGroup", "crashGroup", "topic", topic, "queueId", strconv.Itoa(q)), nil)
		if r.Code != protocol.Success || r.ExtFields.Get("offset") != strconv.Itoa(7+q) {
			t.Errorf("offset of queue %d after restart: code %d offset %q", q, r.Code, r.ExtFields.Get("offset"))
		}
	}
	// And the broker serves new sends (a new producer: the route changed).
	p2 := c.newProducer(t)
	if res, err := p2.SendSync(context.Background(), primitive.NewMessage(topic, []byte("after restart"))); err != nil || res.Status != primitive.SendOK {
		t.Fatalf("send after restart: %v %v", res, err)
	}
}

// TestBadInput: each bad request gets an error response and the broker keeps
// serving.
func TestBadInput(t *testing.T) {
	t.Parallel()
	c := startCluster(t, map[string]string{"autoCreateTopicEnable": "false", "maxMessageSize": strconv.Itoa(64 << 10)})
	send := func(topic string, body []byte) *remoting.RemotingCommand {
		return c.brokerRequest(protocol.SendMessage, remoting.FieldsOf(
			"producerGroup", "badGroup",
			"topic", topic,
			"defaultTopic", "TBW102",
			"defaultTopicQueueNums", "4",
			"queueId", "0",
			"sysFlag", "0",
			"bornTimestamp", strconv.FormatInt(time.Now().UnixMilli(), 10),
			"flag", "0",
			"properties", "",
			"reconsumeTimes", "0",
			"unitMode", "false",
			"batch", "false",
		), body)
	}

	// Unknown topic, auto-create off: 17 from the broker, an error from the client.
	if r := send("NoSuchTopic", []byte("x")); r.Code != protocol.TopicNotExist || !strings.Contains(r.Remark, "NoSuchTopic") {
		t.Errorf("unknown topic: code %d remark %q", r.Code, r.Remark)
	}
	p := c.newProducer(t, producer.WithRetry(0))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if _, err := p.SendSync(ctx, primitive.NewMessage("NoSuchTopic", []byte("x"))); err == nil {
		t.Errorf("client send to an unknown topic succeeded")
	}
	cancel()

	c.createTopic(t, "BadInputTopic", 1)
	// Oversized message.
	if r := send("BadInputTopic", make([]byte, 65<<10)); r.Code != protocol.MessageIllegal || !strings.Contains(r.Remark, "maxMessageSize") {
		t.Errorf("oversized: code %d remark %q", r.Code, r.Remark)
	}
	// Queue id out of range.
	r := c.brokerRequest(protocol.SendMessage, remoting.FieldsOf("producerGroup", "g", "topic", "BadInputTopic", "queueId", "9"), []byte("x"))
	if r.Code == protocol.Success {
		t.Errorf("queueId out of range accepted")
	}
	// Malformed batch body.
	r = c.brokerRequest(protocol.SendBatchMessage, remoting.FieldsOf(
		"a", "g",
		"b", "BadInputTopic",
		"c", "TBW102",
		"d", "4",
		"e", "0",
		"f", "0",
		"g", "0",
		"h", "0",
		"i", "",
		"j", "0",
		"k", "false",
		"m", "true",
	), []byte{0, 0, 0, 99, 1, 2, 3})
	if r.Code != protocol.MessageIllegal {
		t.Errorf("malformed batch: code %d remark %q", r.Code, r.Remark)
	}
	// Missing header fields, an unknown code, a heartbeat that is not JSON.
	if r := c.brokerRequest(protocol.SendMessage, remoting.FieldsOf("topic", "BadInputTopic"), []byte("x")); r.Code == protocol.Success {
		t.Errorf("send without producerGroup/queueId accepted")
	}
	if r := c.brokerRequest(9999, remoting.Fields{}, nil); r.Code != protocol.RequestCodeNotSupported {
		t.Errorf("unknown code: %d", r.Code)
	}
	if r := c.brokerRequest(protocol.HeartBeat, remoting.Fields{}, []byte("{not json")); r.Code == protocol.Success {
		t.Errorf("garbage heartbeat accepted")
	}
	// A good message, then a pull at an absurd offset: OFFSET_MOVED (Java
	// corrects to minOffset when it is 0, else to maxOffset).
	if r := send("BadInputTopic", []byte("good")); r.Code != protocol.Success {
		t.Fatalf("good send: code %d remark %q", r.Code, r.Remark)
	}
	eventually(t, 5*time.Second, "message dispatched", func() bool { return c.maxOffset(t, "BadInputTopic", 0) == 1 })
	r = c.brokerRequest(protocol.PullMessage, remoting.FieldsOf(
		"consumerGroup", "badGroup",
		"topic", "BadInputTopic",
		"queueId", "0",
		"queueOffset", "1000000000000",
		"maxMsgNums", "32",
		"sysFlag", "6",
		"commitOffset", "0",
		"suspendTimeoutMillis", "1000",
		"subscription", "*",
		"subVersion", "0",
		"expressionType", "TAG",
	), nil)
	if next := r.ExtFields.Get("nextBeginOffset"); r.Code != protocol.PullOffsetMoved || (next != "0" && next != "1") || r.ExtFields.Get("maxOffset") != "1" {
		t.Errorf("absurd pull: code %d ext %v", r.Code, r.ExtFields)
	}
	// Pull from an unknown topic, and with a bad queue id.
	r = c.brokerRequest(protocol.PullMessage, remoting.FieldsOf("consumerGroup", "badGroup", "topic", "NoSuchTopic", "queueId", "0", "queueOffset", "0", "sysFlag", "4", "subscription", "*"), nil)
	if r.Code != protocol.TopicNotExist {
		t.Errorf("pull unknown topic: %d", r.Code)
	}
	r = c.brokerRequest(protocol.PullMessage, remoting.FieldsOf("consumerGroup", "badGroup", "topic", "BadInputTopic", "queueId", "5", "queueOffset", "0", "sysFlag", "4", "subscription", "*"), nil)
	if r.Code != protocol.InvalidParameter {
		t.Errorf("pull bad queue: %d", r.Code)
	}
	// Still serving.
	msgs := c.pullAll(t, "badGroup", "BadInputTopic", 0)
	if len(msgs) != 1 || string(msgs[0].Body) != "good" {
		t.Fatalf("after bad input: %v", msgs)
	}
}

// TestRequestReply: producer.Request gets the reply a consumer sends back
// with SEND_REPLY_MESSAGE, pushed by the broker (PUSH_REPLY_MESSAGE_TO_CLIENT).
func TestRequestReply(t *testing.T) {
	t.Parallel()
	c := startCluster(t, nil)
	const topic = "RequestTopic"
	c.createTopic(t, topic, 1)
	replier := c.newProducer(t)
	pc, err := consumer.NewPushConsumer(consumer.WithNameServer([]string{c.ns}), consumer.WithGroupName("replyGroup"),
		consumer.WithInstance(uniqueInstance("rc")), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	if err != nil {
		t.Fatal(err)
	}
	err = pc.Subscribe(topic, consumer.MessageSelector{Type: consumer.TAG, Expression: "*"},
		func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			for _, m := range msgs {
				reply, err := consumer.CreateReplyMessage(m, nil)
				if err != nil {
					return consumer.ConsumeRetryLater, nil
				}
				reply.Body = append([]byte("re: "), m.Body...) // CreateReplyMessage drops the body it is given
				if _, err := replier.SendSync(ctx, reply); err != nil {
					return consumer.ConsumeRetryLater, nil
				}
			}
			return consumer.ConsumeSuccess, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Shutdown() })
	requester := c.newProducer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reply, err := requester.Request(ctx, 25*time.Second, primitive.NewMessage(topic, []byte("ping")))
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	if string(reply.Body) != "re: ping" {
		t.Fatalf("reply body %q", reply.Body)
	}
}

// TestResetOffsetByTime: INVOKE_BROKER_TO_RESET_OFFSET (mqadmin
// resetOffsetByTime) rewinds an online Go consumer, which consumes again.
func TestResetOffsetByTime(t *testing.T) {
	t.Parallel()
	c := startCluster(t, nil)
	const topic, group = "ResetTopic", "resetGroup"
	c.createTopic(t, topic, 1)
	col := newCollector()
	c.startPushConsumer(t, group, topic, "*", false, col)
	p := c.newProducer(t)
	const n = 5
	for i := 0; i < n; i++ {
		if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("r"+strconv.Itoa(i)))); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	committed := func() string {
		r := c.brokerRequest(protocol.QueryConsumerOffset, remoting.FieldsOf("consumerGroup", group, "topic", topic, "queueId", "0"), nil)
		return r.ExtFields.Get("offset")
	}
	eventually(t, 40*time.Second, "consumed and committed", func() bool { return col.count() == n && committed() == strconv.Itoa(n) })
	r := c.brokerRequest(protocol.InvokeBrokerToResetOffset, remoting.FieldsOf("topic", topic, "group", group, "timestamp", "0", "isForce", "true"), nil)
	if r.Code != protocol.Success || !strings.Contains(string(r.Body), `"queueId":0,"topic":"ResetTopic"}:0`) {
		t.Fatalf("reset: %d %q %s", r.Code, r.Remark, r.Body)
	}
	eventually(t, 60*time.Second, "messages consumed again", func() bool {
		col.mu.Lock()
		defer col.mu.Unlock()
		return col.dups >= n
	})
	eventually(t, 20*time.Second, "offset committed again", func() bool { return committed() == strconv.Itoa(n) })
}
