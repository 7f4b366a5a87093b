package broker

import (
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rmqd/rmqd/conf"
	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
	"github.com/rmqd/rmqd/store"
)

// Processor tests on an in-process broker (real store and metadata in a
// temporary directory, no name server), calling the handlers directly with
// a fake connection.

func freeBrokerPort(t testing.TB) int {
	t.Helper()
	for i := 0; i < 50; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if p < 1100 {
			continue
		}
		if l2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p-2)); err == nil {
			l2.Close()
			return p
		}
	}
	t.Fatal("no free port")
	return 0
}

func startTestBroker(t testing.TB, set map[string]string) *Broker {
	t.Helper()
	b, err := New(testBrokerConfig(t, set), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Shutdown)
	return b
}

// testBrokerConfig is a small unit-test broker's config (temp store, free
// port, no name server) with set applied.
func testBrokerConfig(t testing.TB, set map[string]string) *conf.BrokerConfig {
	t.Helper()
	cfg := conf.DefaultBroker()
	cfg.BrokerName = "unit-broker"
	cfg.StorePathRootDir = t.TempDir()
	cfg.ListenPort = freeBrokerPort(t)
	cfg.NamesrvAddr = ""
	cfg.MappedFileSizeCommitLog = 4 << 20
	cfg.MaxHashSlotNum = 1000
	cfg.MaxIndexNum = 4000
	for k, v := range set {
		if err := cfg.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	return cfg
}

func sendReq(topic string, queueID int, body string, props map[string]string) *remoting.RemotingCommand {
	return remoting.NewRequest(protocol.SendMessage, protocol.EncodeHeader(&protocol.SendMessageRequestHeader{
		ProducerGroup: "pg", Topic: topic, DefaultTopic: "TBW102", DefaultTopicQueueNums: 4, QueueID: int32(queueID),
		BornTimestamp: time.Now().UnixMilli(), Properties: string(store.PropertiesFromMap(props)),
	}), []byte(body))
}

func pullReq(group, topic string, queueID int, offset int64, sysFlag int32, sub string, suspend time.Duration) *remoting.RemotingCommand {
	return remoting.NewRequest(protocol.PullMessage, protocol.EncodeHeader(&protocol.PullMessageRequestHeader{
		ConsumerGroup: group, Topic: topic, QueueID: int32(queueID), QueueOffset: offset, MaxMsgNums: 32,
		SysFlag: sysFlag, CommitOffset: 0, SuspendTimeoutMillis: suspend.Milliseconds(), Subscription: sub, ExpressionType: "TAG",
	}), nil)
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSendPullAndAutoCreate(t *testing.T) {
	b := startTestBroker(t, map[string]string{"defaultTopicQueueNums": "2"})
	c := &fakeConn{id: 1}
	resp := b.processSend(c, sendReq("AutoTopic", 1, "hello", map[string]string{"TAGS": "TagA", "KEYS": "k1"}))
	if resp.Code != protocol.Success {
		t.Fatalf("send: %d %q", resp.Code, resp.Remark)
	}
	if len(resp.ExtFields.Get("msgId")) != 32 || resp.ExtFields.Get("queueId") != "1" || resp.ExtFields.Get("queueOffset") != "0" {
		t.Fatalf("send response ext %v", resp.ExtFields)
	}
	tc, ok := b.topicConfig("AutoTopic")
	if !ok || tc.WriteQueueNums != 2 || tc.Perm != 6 {
		t.Fatalf("auto-created topic %+v %v", tc, ok)
	}
	waitFor(t, 5*time.Second, "dispatch", func() bool { return b.maxOffset("AutoTopic", 1) == 1 })

	// Tag filter: TagB subscribers see nothing (20), TagA subscribers the message.
	r := b.processPull(c, pullReq("g1", "AutoTopic", 1, 0, protocol.PullFlagSubscription, "TagB", 0), true)
	if r.Code != protocol.PullRetryImmediately || r.ExtFields.Get("nextBeginOffset") != "1" {
		t.Fatalf("filtered pull: %d %v", r.Code, r.ExtFields)
	}
	r = b.processPull(c, pullReq("g1", "AutoTopic", 1, 0, protocol.PullFlagSubscription, "TagA || TagC", 0), true)
	if r.Code != protocol.Success {
		t.Fatalf("pull: %d %q", r.Code, r.Remark)
	}
	msgs, err := store.DecodeMessages(r.Body, true)
	if err != nil || len(msgs) != 1 || string(msgs[0].Body) != "hello" || msgs[0].UniqKey() == "" || msgs[0].Property(store.PropertyCluster) != "DefaultCluster" {
		t.Fatalf("pulled %v %v", msgs, err)
	}
	for _, k := range []string{"nextBeginOffset", "minOffset", "maxOffset", "suggestWhichBrokerId"} {
		if _, ok := r.ExtFields.Lookup(k); !ok {
			t.Errorf("pull response lacks %s", k)
		}
	}
	// SEND_MESSAGE_V2 (Java clients) and a batch with the same short keys.
	v2 := protocol.EncodeHeader(&protocol.SendMessageRequestHeaderV2{A: "pg", B: "AutoTopic", C: "TBW102", D: 4, E: 0,
		G: time.Now().UnixMilli(), I: string(store.PropertiesFromMap(map[string]string{"TAGS": "V2", "UNIQ_KEY": "AABB"}))})
	if r := b.processSend(c, remoting.NewRequest(protocol.SendMessageV2, v2, []byte("v2 body"))); r.Code != protocol.Success || r.ExtFields.Get("queueId") != "0" {
		t.Fatalf("SEND_MESSAGE_V2: %d %q %v", r.Code, r.Remark, r.ExtFields)
	}
	batch := store.EncodeBatch(nil, []store.Message{{Body: []byte("b1")}, {Body: []byte("b2"), Properties: store.PropertiesFromMap(map[string]string{"KEYS": "bk"})}})
	r = b.processSend(c, remoting.NewRequest(protocol.SendBatchMessage, v2, batch))
	if r.Code != protocol.Success || strings.Count(r.ExtFields.Get("msgId"), ",") != 1 || r.ExtFields.Get("queueOffset") != "1" {
		t.Fatalf("batch: %d %q %v", r.Code, r.Remark, r.ExtFields)
	}
	waitFor(t, 5*time.Second, "dispatch", func() bool { return b.maxOffset("AutoTopic", 0) == 3 })
	r = b.processPull(c, pullReq("g1", "AutoTopic", 0, 0, protocol.PullFlagSubscription, "*", 0), true)
	msgs, err = store.DecodeMessages(r.Body, true)
	if err != nil || len(msgs) != 3 || msgs[0].UniqKey() != "AABB" || string(msgs[2].Body) != "b2" || msgs[2].Property("KEYS") != "bk" || msgs[2].QueueOffset != 2 {
		t.Fatalf("pulled %v %v", msgs, err)
	}
	// Without the subscription flag and without a heartbeat: 24.
	if r := b.processPull(c, pullReq("g2", "AutoTopic", 1, 0, 0, "", 0), true); r.Code != protocol.SubscriptionNotExist {
		t.Fatalf("pull without heartbeat: %d", r.Code)
	}
}

func TestLongPollingWakesOnArrival(t *testing.T) {
	b := startTestBroker(t, nil)
	c := &fakeConn{id: 7}
	if r := b.processSend(c, sendReq("LPTopic", 0, "first", nil)); r.Code != protocol.Success {
		t.Fatalf("send: %d %q", r.Code, r.Remark)
	}
	waitFor(t, 5*time.Second, "dispatch", func() bool { return b.maxOffset("LPTopic", 0) == 1 })
	req := pullReq("lp", "LPTopic", 0, 1, protocol.PullFlagSuspend|protocol.PullFlagSubscription, "*", 15*time.Second)
	req.Opaque = 4242
	if r := b.processPull(c, req, true); r != nil {
		t.Fatalf("caught-up pull was answered at once: %d", r.Code)
	}
	if n := b.holds.count(); n != 1 {
		t.Fatalf("held pulls = %d", n)
	}
	start := time.Now()
	if r := b.processSend(c, sendReq("LPTopic", 0, "second", nil)); r.Code != protocol.Success {
		t.Fatalf("send: %d", r.Code)
	}
	waitFor(t, 5*time.Second, "held pull answered", func() bool { return len(c.sentCommands()) == 1 })
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("wake-up took %v", d)
	}
	resp := c.sentCommands()[0]
	if resp.Opaque != 4242 || !resp.IsResponse() || resp.Code != protocol.Success {
		t.Fatalf("held answer: opaque %d flag %d code %d", resp.Opaque, resp.Flag, resp.Code)
	}
	msgs, err := store.DecodeMessages(resp.Body, true)
	if err != nil || len(msgs) != 1 || string(msgs[0].Body) != "second" {
		t.Fatalf("held answer body: %v %v", msgs, err)
	}

	// A held pull whose deadline passes is answered PULL_NOT_FOUND.
	req = pullReq("lp", "LPTopic", 0, 2, protocol.PullFlagSuspend|protocol.PullFlagSubscription, "*", 300*time.Millisecond)
	if r := b.processPull(c, req, true); r != nil {
		t.Fatal("not held")
	}
	waitFor(t, 5*time.Second, "timeout answer", func() bool { return len(c.sentCommands()) == 2 })
	if r := c.sentCommands()[1]; r.Code != protocol.PullNotFound || r.ExtFields.Get("nextBeginOffset") != "2" {
		t.Fatalf("timeout answer %d %v", r.Code, r.ExtFields)
	}
	// A closed connection's held pulls are dropped.
	req = pullReq("lp", "LPTopic", 0, 2, protocol.PullFlagSuspend|protocol.PullFlagSubscription, "*", 10*time.Second)
	if r := b.processPull(c, req, true); r != nil {
		t.Fatal("not held")
	}
	b.onConnClose(c)
	if n := b.holds.count(); n != 0 {
		t.Fatalf("held after close: %d", n)
	}
}

func TestHeartbeatConsumerListAndNotify(t *testing.T) {
	b := startTestBroker(t, nil)
	hb := func(client string) []byte {
		return []byte(`{"clientID":"` + client + `","producerDataSet":[{"groupName":"pg"}],"consumerDataSet":[{"groupName":"cg","consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING","consumeFromWhere":"CONSUME_FROM_FIRST_OFFSET","subscriptionDataSet":[{"classFilterMode":false,"topic":"HBTopic","subString":"a || b","tagsSet":["a","b"],"codeSet":["97","98"],"subVersion":1,"expressionType":"TAG"}],"unitMode":false}]}`)
	}
	c1, c2 := &fakeConn{id: 1}, &fakeConn{id: 2}
	if r := b.handleHeartbeat(c1, remoting.NewRequest(protocol.HeartBeat, remoting.Fields{}, hb("c1"))); r.Code != protocol.Success {
		t.Fatalf("heartbeat: %d %q", r.Code, r.Remark)
	}
	if _, ok := b.topicConfig("%RETRY%cg"); !ok {
		t.Fatal("retry topic not created")
	}
	if _, ok := b.groupConfig("cg"); !ok {
		t.Fatal("group not created")
	}
	if r := b.handleHeartbeat(c2, remoting.NewRequest(protocol.HeartBeat, remoting.Fields{}, hb("c2"))); r.Code != protocol.Success {
		t.Fatal("heartbeat 2")
	}
	// c2 joining notifies both channels.
	notified := func(c *fakeConn) int {
		n := 0
		for _, cmd := range c.sentCommands() {
			if cmd.Code == protocol.NotifyConsumerIdsChanged && cmd.ExtFields.Get("consumerGroup") == "cg" && cmd.IsOneway() {
				n++
			}
		}
		return n
	}
	if notified(c1) < 2 || notified(c2) < 1 {
		t.Fatalf("notifications: c1 %d c2 %d", notified(c1), notified(c2))
	}
	r := b.handleGetConsumerList(c1, remoting.NewRequest(protocol.GetConsumerListByGroup, remoting.FieldsOf("consumerGroup", "cg"), nil))
	if r.Code != protocol.Success || string(r.Body) != `{"consumerIdList":["c1","c2"]}` {
		t.Fatalf("consumer list: %d %s", r.Code, r.Body)
	}
	// The heartbeat subscription filters pulls (no subscription flag).
	if r := b.processSend(c1, sendReq("HBTopic", 0, "x", map[string]string{"TAGS": "c"})); r.Code != protocol.Success {
		t.Fatalf("send: %d %q", r.Code, r.Remark)
	}
	waitFor(t, 5*time.Second, "dispatch", func() bool { return b.maxOffset("HBTopic", 0) == 1 })
	if r := b.processPull(c1, pullReq("cg", "HBTopic", 0, 0, 0, "", 0), true); r.Code != protocol.PullRetryImmediately {
		t.Fatalf("tag c pulled by an a||b group: %d", r.Code)
	}
	// Closing c1 notifies c2 and removes c1 from the list.
	b.onConnClose(c1)
	r = b.handleGetConsumerList(c2, remoting.NewRequest(protocol.GetConsumerListByGroup, remoting.FieldsOf("consumerGroup", "cg"), nil))
	if string(r.Body) != `{"consumerIdList":["c2"]}` || notified(c2) < 2 {
		t.Fatalf("after close: %s, c2 notified %d", r.Body, notified(c2))
	}
	if chs := b.ProducerChannels("pg"); len(chs) != 1 || chs[0].ID() != 2 {
		t.Fatalf("producer channels %v", chs)
	}
	r = b.handleAllProducerInfo(c2, remoting.NewRequest(protocol.GetAllProducerInfo, remoting.Fields{}, nil))
	if r.Code != protocol.Success || !strings.Contains(string(r.Body), `{"data":{"pg":[{"clientId":"c2"`) {
		t.Fatalf("all producer info: %s", r.Body)
	}
}

func TestOffsetsAndAdmin(t *testing.T) {
	b := startTestBroker(t, map[string]string{"autoCreateTopicEnable": "false"})
	c := &fakeConn{id: 3}
	ext := remoting.FieldsOf
	if r := b.processSend(c, sendReq("Nope", 0, "x", nil)); r.Code != protocol.TopicNotExist || !strings.Contains(r.Remark, "Nope") {
		t.Fatalf("unknown topic: %d %q", r.Code, r.Remark)
	}
	r := b.handleCreateTopic(c, remoting.NewRequest(protocol.UpdateAndCreateTopic, ext("topic", "AdminTopic", "readQueueNums", "2", "writeQueueNums", "2", "perm", "6"), nil))
	if r.Code != protocol.Success {
		t.Fatalf("create topic: %d %q", r.Code, r.Remark)
	}
	if r := b.handleCreateTopic(c, remoting.NewRequest(protocol.UpdateAndCreateTopic, ext("topic", "bad topic!"), nil)); r.Code == protocol.Success {
		t.Fatal("bad topic name accepted")
	}
	q := func(group string) *remoting.RemotingCommand {
		return b.handleQueryConsumerOffset(c, remoting.NewRequest(protocol.QueryConsumerOffset, ext("consumerGroup", group, "topic", "AdminTopic", "queueId", "0"), nil))
	}
	// A young queue: a new group starts at 0.
	if r := q("og"); r.Code != protocol.Success || r.ExtFields.Get("offset") != "0" {
		t.Fatalf("query new group: %d %v", r.Code, r.ExtFields)
	}
	upd := remoting.NewRequest(protocol.UpdateConsumerOffset, ext("consumerGroup", "og", "topic", "AdminTopic", "queueId", "0", "commitOffset", "5"), nil)
	if r := b.handleUpdateConsumerOffset(c, upd); r.Code != protocol.SubscriptionGroupNotExist {
		t.Fatalf("update for an unknown group: %d", r.Code)
	}
	body := []byte(`{"groupName":"og","consumeEnable":true,"retryMaxTimes":3}`)
	if r := b.handleCreateGroup(c, remoting.NewRequest(protocol.UpdateAndCreateSubscriptionGroup, remoting.Fields{}, body)); r.Code != protocol.Success {
		t.Fatalf("create group: %d %q", r.Code, r.Remark)
	}
	if gc, _ := b.groupConfig("og"); gc.RetryMaxTimes != 3 || gc.RetryQueueNums != 1 {
		t.Fatalf("group config %+v", gc)
	}
	if r := b.handleUpdateConsumerOffset(c, upd); r.Code != protocol.Success {
		t.Fatalf("update: %d %q", r.Code, r.Remark)
	}
	if r := q("og"); r.ExtFields.Get("offset") != "5" {
		t.Fatalf("query after update: %v", r.ExtFields)
	}
	for _, code := range []int16{protocol.GetAllTopicConfig, protocol.GetAllSubscriptionGroupConfig, protocol.GetAllConsumerOffset,
		protocol.GetAllDelayOffset, protocol.GetBrokerRuntimeInfo, protocol.GetBrokerConfig, protocol.GetTopicNameList, protocol.GetSystemTopicListFromBroker} {
		r := b.mux.ServeRemoting(c, remoting.NewRequest(code, remoting.Fields{}, nil))
		if r.Code != protocol.Success || len(r.Body) == 0 {
			t.Errorf("code %d: %d %q", code, r.Code, r.Remark)
		}
	}
	if err := b.meta.CommitDelayOffset(2, 0); err != nil {
		t.Fatal(err)
	}
	r = b.mux.ServeRemoting(c, remoting.NewRequest(protocol.GetBrokerRuntimeInfo, remoting.Fields{}, nil))
	if !strings.Contains(string(r.Body), `"scheduleMessageOffset_2":"0,0"`) {
		t.Errorf("runtime info lacks the extensions' delay progress: %s", r.Body)
	}
	for _, k := range []string{"brokerVersionDesc", "putTps", "getTransferedTps", "msgPutTotalTodayNow", "earliestMessageTimeStamp", "commitLogDiskRatio"} {
		if !strings.Contains(string(r.Body), `"`+k+`"`) {
			t.Errorf("runtime info lacks %s", k)
		}
	}
	r = b.handleTopicStats(c, remoting.NewRequest(protocol.GetTopicStatsInfo, ext("topic", "AdminTopic"), nil))
	if r.Code != protocol.Success || !strings.Contains(string(r.Body), `{"brokerName":"unit-broker","queueId":1,"topic":"AdminTopic"}:{`) {
		t.Fatalf("topic stats: %d %s", r.Code, r.Body)
	}
	// Broker config: update a key, read it back.
	r = b.handleUpdateBrokerConfig(c, remoting.NewRequest(protocol.UpdateBrokerConfig, remoting.Fields{}, []byte("maxMessageSize=1024\n")))
	if r.Code != protocol.Success || b.Config().MaxMessageSize != 1024 {
		t.Fatalf("update config: %d %q", r.Code, r.Remark)
	}
	if r := b.handleUpdateBrokerConfig(c, remoting.NewRequest(protocol.UpdateBrokerConfig, remoting.Fields{}, []byte("noSuchKey=1\n"))); r.Code == protocol.Success {
		t.Fatal("unknown key accepted")
	}
	if r := b.processSend(c, sendReq("AdminTopic", 0, strings.Repeat("x", 2000), nil)); r.Code != protocol.MessageIllegal {
		t.Fatalf("oversized after update: %d", r.Code)
	}
	// Delete the topic.
	if r := b.handleDeleteTopic(c, remoting.NewRequest(protocol.DeleteTopicInBroker, ext("topic", "AdminTopic"), nil)); r.Code != protocol.Success {
		t.Fatalf("delete: %d %q", r.Code, r.Remark)
	}
	if _, ok := b.topicConfig("AdminTopic"); ok {
		t.Fatal("topic still there")
	}
	if r := b.handleDeleteTopic(c, remoting.NewRequest(protocol.DeleteTopicInBroker, ext("topic", "SCHEDULE_TOPIC_XXXX"), nil)); r.Code == protocol.Success {
		t.Fatal("system topic deleted")
	}
	for _, code := range []int16{protocol.TriggerDeleteFiles, protocol.DeleteExpiredCommitlog, protocol.CleanUnusedTopic, protocol.CleanExpiredConsumequeue} {
		if r := b.mux.ServeRemoting(c, remoting.NewRequest(code, remoting.Fields{}, nil)); r.Code != protocol.Success {
			t.Errorf("maintenance code %d: %d %q", code, r.Code, r.Remark)
		}
	}
}

func TestNotMasterRefusesWrites(t *testing.T) {
	b := startTestBroker(t, map[string]string{"brokerRole": "SLAVE", "brokerId": "1"})
	c := &fakeConn{id: 9}
	if r := b.processSend(c, sendReq("TBW102", 0, "x", nil)); r.Code != protocol.ServiceNotAvailable {
		t.Fatalf("send on a slave: %d %q", r.Code, r.Remark)
	}
	upd := remoting.NewRequest(protocol.UpdateConsumerOffset, remoting.FieldsOf("consumerGroup", "TOOLS_CONSUMER", "topic", "TBW102", "queueId", "0", "commitOffset", "1"), nil)
	if r := b.handleUpdateConsumerOffset(c, upd); r.Code != protocol.ServiceNotAvailable {
		t.Fatalf("offset commit on a slave: %d", r.Code)
	}
}

func TestStatsProcessors(t *testing.T) {
	b := startTestBroker(t, nil)
	c := &fakeConn{id: 11}
	for i := 0; i < 3; i++ {
		if r := b.processSend(c, sendReq("StatsTopic", 0, "m"+strconv.Itoa(i), nil)); r.Code != protocol.Success {
			t.Fatalf("send: %d %q", r.Code, r.Remark)
		}
	}
	waitFor(t, 5*time.Second, "dispatch", func() bool { return b.maxOffset("StatsTopic", 0) == 3 })
	if r := b.processPull(c, pullReq("sg", "StatsTopic", 0, 0, protocol.PullFlagSubscription, "*", 0), true); r.Code != protocol.Success {
		t.Fatalf("pull: %d", r.Code)
	}
	b.commitOffset("", "sg", "StatsTopic", 0, 2)
	view := func(name, key string) *remoting.RemotingCommand {
		return b.handleViewBrokerStats(c, remoting.NewRequest(protocol.ViewBrokerStatsData, remoting.FieldsOf("statsName", name, "statsKey", key), nil))
	}
	if r := view("TOPIC_PUT_NUMS", "StatsTopic"); r.Code != protocol.Success || !strings.Contains(string(r.Body), `"sum":3`) {
		t.Fatalf("TOPIC_PUT_NUMS: %d %s", r.Code, r.Body)
	}
	if r := view("GROUP_GET_NUMS", "StatsTopic@sg"); r.Code != protocol.Success || !strings.Contains(string(r.Body), `"sum":3`) {
		t.Fatalf("GROUP_GET_NUMS: %d %s", r.Code, r.Body)
	}
	if r := view("TOPIC_PUT_NUMS", "nothing"); r.Code != protocol.SystemError {
		t.Fatalf("unknown stats: %d", r.Code)
	}
	r := b.handleConsumeStats(c, remoting.NewRequest(protocol.GetConsumeStats, remoting.FieldsOf("consumerGroup", "sg"), nil))
	want := `{"brokerName":"unit-broker","queueId":0,"topic":"StatsTopic"}:{"brokerOffset":3,"consumerOffset":2,`
	if r.Code != protocol.Success || !strings.Contains(string(r.Body), want) {
		t.Fatalf("consume stats: %s", r.Body)
	}
	r = b.handleConsumeTimeSpan(c, remoting.NewRequest(protocol.QueryConsumeTimeSpan, remoting.FieldsOf("topic", "StatsTopic", "group", "sg"), nil))
	if r.Code != protocol.Success || !strings.Contains(string(r.Body), `"consumeTimeSpanSet"`) {
		t.Fatalf("time span: %d %s", r.Code, r.Body)
	}
	r = b.handleCloneGroupOffset(c, remoting.NewRequest(protocol.CloneGroupOffset, remoting.FieldsOf("srcGroup", "sg", "destGroup", "sg2", "topic", "StatsTopic"), nil))
	if r.Code != protocol.Success || b.queryOffset("sg2", "StatsTopic", 0) != 2 {
		t.Fatalf("clone: %d, offset %d", r.Code, b.queryOffset("sg2", "StatsTopic", 0))
	}
	r = b.handleQueryConsumeQueue(c, remoting.NewRequest(protocol.QueryConsumeQueue, remoting.FieldsOf("topic", "StatsTopic", "queueId", "0", "index", "1", "count", "5", "consumerGroup", "sg"), nil))
	if r.Code != protocol.Success || strings.Count(string(r.Body), `"physicOffset"`) != 2 || !strings.Contains(string(r.Body), `"maxQueueIndex":3`) {
		t.Fatalf("query consume queue: %d %s", r.Code, r.Body)
	}
	r = b.handleBrokerConsumeStats(c, remoting.NewRequest(protocol.GetBrokerConsumeStats, remoting.Fields{}, nil))
	if r.Code != protocol.Success || !strings.Contains(string(r.Body), `"consumeStatsList":[`) {
		t.Fatalf("broker consume stats: %s", r.Body)
	}
}

func TestBatchAdminAndOffsetRepair(t *testing.T) {
	b := startTestBroker(t, nil)
	c := &fakeConn{id: 12}
	r := b.handleCreateTopicList(c, remoting.NewRequest(protocol.UpdateAndCreateTopicList, remoting.Fields{},
		[]byte(`{"topicConfigList":[{"topicName":"L1","readQueueNums":2,"writeQueueNums":2,"perm":6},{"topicName":"L2","readQueueNums":1,"writeQueueNums":1,"perm":4}]}`)))
	if r.Code != protocol.Success {
		t.Fatalf("topic list: %d %q", r.Code, r.Remark)
	}
	if tc, ok := b.topicConfig("L2"); !ok || tc.Perm != 4 || tc.TopicFilterType != "SINGLE_TAG" {
		t.Fatalf("L2 = %+v", tc)
	}
	r = b.handleCreateTopicList(c, remoting.NewRequest(protocol.UpdateAndCreateTopicList, remoting.Fields{}, []byte(`{"topicConfigList":[{"topicName":"ok1","readQueueNums":1,"writeQueueNums":1},{"topicName":"bad name","readQueueNums":1,"writeQueueNums":1}]}`)))
	if r.Code == protocol.Success {
		t.Fatal("bad topic list accepted")
	}
	if _, ok := b.topicConfig("ok1"); ok {
		t.Fatal("a rejected list stored part of itself")
	}
	r = b.handleCreateGroupList(c, remoting.NewRequest(protocol.UpdateAndCreateSubscriptionGroupList, remoting.Fields{}, []byte(`{"groupConfigList":[{"groupName":"G1"},{"groupName":"G2","retryMaxTimes":5}]}`)))
	if g, ok := b.groupConfig("G2"); r.Code != protocol.Success || !ok || g.RetryMaxTimes != 5 || !g.ConsumeEnable {
		t.Fatalf("group list: %d %+v", r.Code, g)
	}
	// Offsets: a lower commit is ignored, unless the stored one is beyond
	// the end of the queue.
	b.commitOffset("", "G1", "L1", 0, 10)
	b.commitOffset("", "G1", "L1", 0, 0)
	if off := b.queryOffset("G1", "L1", 0); off != 0 {
		t.Fatalf("offset beyond an empty queue not repaired: %d", off)
	}
	for i := 0; i < 3; i++ {
		if r := b.processSend(c, sendReq("L1", 0, "x", nil)); r.Code != protocol.Success {
			t.Fatal("send")
		}
	}
	waitFor(t, 5*time.Second, "dispatch", func() bool { return b.maxOffset("L1", 0) == 3 })
	b.commitOffset("", "G1", "L1", 0, 3)
	b.commitOffset("", "G1", "L1", 0, 1)
	if off := b.queryOffset("G1", "L1", 0); off != 3 {
		t.Fatalf("a valid offset moved back: %d", off)
	}
}

// TestGarbageNeverPanics feeds every registered code empty, malformed and
// random input; each must be answered (or parked) without a panic.
func TestGarbageNeverPanics(t *testing.T) {
	b := startTestBroker(t, nil)
	c := &fakeConn{id: 13}
	keys := []string{"topic", "queueId", "queueOffset", "consumerGroup", "group", "offset", "commitOffset", "maxMsgNums",
		"sysFlag", "subscription", "expressionType", "key", "maxNum", "timestamp", "producerGroup", "clientID", "clientId",
		"a", "b", "e", "statsName", "statsKey", "srcGroup", "destGroup", "groupName", "readQueueNums", "writeQueueNums", "perm"}
	values := []string{"", "-1", "x", "99999999999999999999", "2147483647", "-2147483648", "TBW102", "%RETRY%", "*", "||", "\x00\x01\x02"}
	bodies := [][]byte{nil, []byte("{"), []byte("null"), []byte(`{"mqSet":null}`), []byte("\x00\x00\x00\x10garbage"), []byte(`[1,2,3]`)}
	for code := int16(0); code < 1000; code++ {
		if b.mux.Handler(code) == nil || code == protocol.GetConsumerRunningInfo || code == protocol.ConsumeMessageDirectly {
			continue
		}
		for i, v := range values {
			ext := remoting.Fields{}
			for j, k := range keys {
				ext.Set(k, values[(i+j)%len(values)])
			}
			ext.Set("topic", v)
			for _, body := range bodies {
				func() {
					defer func() {
						if r := recover(); r != nil {
							t.Fatalf("code %d ext %v body %q: panic %v", code, ext, body, r)
						}
					}()
					b.mux.ServeRemoting(c, remoting.NewRequest(code, ext, body))
				}()
			}
		}
	}
}

func TestRoleChange(t *testing.T) {
	b := startTestBroker(t, nil)
	c := &fakeConn{id: 14}
	master := true
	var mu sync.Mutex
	b.SetMasterFunc(func() bool { mu.Lock(); defer mu.Unlock(); return master })
	if r := b.processSend(c, sendReq("RoleTopic", 0, "x", nil)); r.Code != protocol.Success {
		t.Fatalf("send as master: %d %q", r.Code, r.Remark)
	}
	mu.Lock()
	master = false
	mu.Unlock()
	b.RoleChanged()
	if r := b.processSend(c, sendReq("RoleTopic", 0, "x", nil)); r.Code != protocol.ServiceNotAvailable {
		t.Fatalf("send as slave: %d", r.Code)
	}
	if b.registeredBrokerID() == 0 {
		t.Fatal("a slave registers as brokerId 0")
	}
	mu.Lock()
	master = true
	mu.Unlock()
	b.RoleChanged()
	if r := b.processSend(c, sendReq("RoleTopic", 0, "y", nil)); r.Code != protocol.Success {
		t.Fatalf("send as master again: %d", r.Code)
	}
}

func TestBroadcastingConsumers(t *testing.T) {
	b := startTestBroker(t, nil)
	hb := []byte(`{"clientID":"bc1","producerDataSet":[],"consumerDataSet":[{"groupName":"bcg","consumeType":"CONSUME_PASSIVELY","messageModel":"BROADCASTING","consumeFromWhere":"CONSUME_FROM_FIRST_OFFSET","subscriptionDataSet":[{"classFilterMode":false,"topic":"BCTopic","subString":"*","tagsSet":[],"codeSet":[],"subVersion":1,"expressionType":"TAG"}],"unitMode":false}]}`)
	c1, c2 := &fakeConn{id: 21}, &fakeConn{id: 22}
	for _, c := range []*fakeConn{c1, c2} {
		if r := b.handleHeartbeat(c, remoting.NewRequest(protocol.HeartBeat, remoting.Fields{}, hb)); r.Code != protocol.Success {
			t.Fatal("heartbeat")
		}
	}
	if len(c1.sentCommands()) != 0 {
		t.Fatal("broadcasting groups are not notified")
	}
	if _, ok := b.topicConfig("%RETRY%bcg"); ok {
		t.Fatal("broadcasting groups get no retry topic")
	}
	if r := b.processSend(c1, sendReq("BCTopic", 0, "x", nil)); r.Code != protocol.Success {
		t.Fatalf("send: %d %q", r.Code, r.Remark)
	}
	waitFor(t, 5*time.Second, "dispatch", func() bool { return b.maxOffset("BCTopic", 0) == 1 })
	for _, c := range []*fakeConn{c1, c2} {
		if r := b.processPull(c, pullReq("bcg", "BCTopic", 0, 0, 0, "", 0), true); r.Code != protocol.Success {
			t.Fatalf("broadcast pull: %d %q", r.Code, r.Remark)
		}
	}
	gc, _ := b.groupConfig("bcg")
	gc.ConsumeBroadcastEnable = false
	if err := b.meta.PutGroup(gc); err != nil {
		t.Fatal(err)
	}
	if r := b.processPull(c1, pullReq("bcg", "BCTopic", 0, 0, 0, "", 0), true); r.Code != protocol.NoPermission {
		t.Fatalf("broadcast disabled: %d", r.Code)
	}
}

func TestShutdownReleasesGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	cfg := conf.DefaultBroker()
	cfg.BrokerName = "leak-broker"
	cfg.StorePathRootDir = t.TempDir()
	cfg.ListenPort = freeBrokerPort(t)
	cfg.NamesrvAddr = ""
	cfg.MappedFileSizeCommitLog = 4 << 20
	cfg.MaxHashSlotNum = 1000
	cfg.MaxIndexNum = 4000
	b, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	c := &fakeConn{id: 31}
	if r := b.processSend(c, sendReq("LeakTopic", 0, "x", nil)); r.Code != protocol.Success {
		t.Fatal("send")
	}
	if r := b.processPull(c, pullReq("lg", "LeakTopic", 0, 5, protocol.PullFlagSuspend|protocol.PullFlagSubscription, "*", 30*time.Second), true); r != nil && r.Code == protocol.Success {
		t.Fatal("unexpected message")
	}
	b.Shutdown()
	b.Shutdown() // idempotent
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after Shutdown:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRegistrationTopicTable(t *testing.T) {
	b := startTestBroker(t, map[string]string{"brokerPermission": "4"})
	w := b.topicTable()
	tc := w.TopicConfigTable["TBW102"]
	if tc == nil || tc.Perm != 4 || w.TopicConfigTable["SCHEDULE_TOPIC_XXXX"].Perm != 4 {
		t.Fatalf("read-only broker table: %+v", tc)
	}
	if w.DataVersion.Counter == 0 {
		t.Fatal("no data version")
	}
	if r := b.processSend(&fakeConn{id: 1}, sendReq("AnyTopic", 0, "x", nil)); r.Code != protocol.NoPermission {
		t.Fatalf("send to a read-only broker: %d", r.Code)
	}
}
