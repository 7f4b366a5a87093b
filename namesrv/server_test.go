package namesrv

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
)

type fakeConn struct {
	id     uint64
	closed atomic.Bool
}

func (c *fakeConn) ID() uint64                           { return c.id }
func (c *fakeConn) RemoteAddr() string                   { return fmt.Sprintf("127.0.0.1:%d", 40000+c.id) }
func (c *fakeConn) LocalAddr() string                    { return "127.0.0.1:9876" }
func (c *fakeConn) Send(*remoting.RemotingCommand) error { return nil }
func (c *fakeConn) Close() error                         { c.closed.Store(true); return nil }
func (c *fakeConn) Invoke(context.Context, *remoting.RemotingCommand, time.Duration) (*remoting.RemotingCommand, error) {
	return nil, fmt.Errorf("not supported")
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t     *testing.T
	s     *Server
	clock *clock
}

func newEnv(t *testing.T, mod func(*Config)) *env {
	t.Helper()
	clk := &clock{t: time.Unix(1700000000, 0)}
	cfg := DefaultConfig()
	cfg.Now = clk.now
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &env{t: t, s: s, clock: clk}
}

func (e *env) call(c remoting.Conn, code int16, ext remoting.Fields, body []byte) *remoting.RemotingCommand {
	e.t.Helper()
	if c == nil {
		c = &fakeConn{id: 999}
	}
	req := &remoting.RemotingCommand{Code: code, Version: protocol.VersionV4_5_2, Language: "GO", ExtFields: ext, Body: body}
	resp := e.s.Handler().ServeRemoting(c, req)
	if resp == nil {
		e.t.Fatalf("code %d: no response", code)
	}
	return resp
}

type brokerSpec struct {
	cluster, name, addr string
	id, term            int64
	counter             int64
	topics              map[string]int32 // topic -> perm (4 queues)
}

func registerBody(b brokerSpec) []byte {
	body := protocol.RegisterBrokerBody{TopicConfigSerializeWrapper: protocol.TopicConfigSerializeWrapper{
		DataVersion:      protocol.DataVersion{Counter: b.counter, Timestamp: 1},
		TopicConfigTable: map[string]*protocol.TopicConfig{},
	}}
	for name, perm := range b.topics {
		body.TopicConfigSerializeWrapper.TopicConfigTable[name] = &protocol.TopicConfig{TopicName: name, ReadQueueNums: 4, WriteQueueNums: 4, Perm: perm, TopicFilterType: protocol.SingleTag}
	}
	return body.Encode()
}

func (e *env) register(c remoting.Conn, b brokerSpec) *remoting.RemotingCommand {
	e.t.Helper()
	if b.cluster == "" {
		b.cluster = "DefaultCluster"
	}
	h := protocol.RegisterBrokerRequestHeader{BrokerName: b.name, BrokerAddr: b.addr, ClusterName: b.cluster,
		HAServerAddr: strings.Replace(b.addr, ":10911", ":10912", 1), BrokerID: b.id, DLegerTerm: b.term}
	return e.call(c, protocol.RegisterBroker, protocol.EncodeHeader(&h), registerBody(b))
}

func (e *env) route(topic string) (*protocol.TopicRouteData, int16) {
	e.t.Helper()
	resp := e.call(nil, protocol.GetRouteinfoByTopic, remoting.FieldsOf("topic", topic), nil)
	if resp.Code != protocol.Success {
		return nil, resp.Code
	}
	r, err := protocol.DecodeTopicRouteData(resp.Body)
	if err != nil {
		e.t.Fatalf("route body %s: %v", resp.Body, err)
	}
	return r, resp.Code
}

func (e *env) master(topic string) string {
	e.t.Helper()
	r, code := e.route(topic)
	if code != protocol.Success {
		return ""
	}
	return r.BrokerDatas[0].BrokerAddrs[0]
}

var stdTopics = map[string]int32{"TBW102": 7, "T1": 6}

func TestRegisterAndRoute(t *testing.T) {
	e := newEnv(t, nil)
	resp := e.register(&fakeConn{id: 1}, brokerSpec{name: "broker-a", addr: "10.0.0.1:10911", topics: stdTopics})
	if resp.Code != protocol.Success {
		t.Fatalf("register: %d %s", resp.Code, resp.Remark)
	}
	// Version 317 (Go client) gets the fastjson form, exactly.
	raw := e.call(nil, protocol.GetRouteinfoByTopic, remoting.FieldsOf("topic", "TBW102"), nil)
	want := `{"brokerDatas":[{"brokerAddrs":{0:"10.0.0.1:10911"},"brokerName":"broker-a","cluster":"DefaultCluster","enableActingMaster":false}],"filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","perm":7,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}`
	if string(raw.Body) != want {
		t.Fatalf("route body\n got %s\nwant %s", raw.Body, want)
	}
	// A current Java client gets standard JSON.
	req := &remoting.RemotingCommand{Code: protocol.GetRouteinfoByTopic, Version: protocol.VersionV5_3_3, ExtFields: remoting.FieldsOf("topic", "T1")}
	if std := e.s.Handler().ServeRemoting(&fakeConn{id: 2}, req); !json.Valid(std.Body) {
		t.Fatalf("standard route not JSON: %s", std.Body)
	}
	if _, code := e.route("nope"); code != protocol.TopicNotExist {
		t.Fatalf("unknown topic: code %d", code)
	}
	// cluster info lists the broker as id 0
	ci, err := protocol.DecodeClusterInfo(e.call(nil, protocol.GetBrokerClusterInfo, remoting.Fields{}, nil).Body)
	if err != nil {
		t.Fatal(err)
	}
	if ci.BrokerAddrTable["broker-a"].BrokerAddrs[0] != "10.0.0.1:10911" || ci.ClusterAddrTable["DefaultCluster"][0] != "broker-a" {
		t.Fatalf("cluster info %+v", ci)
	}
	var tl protocol.TopicList
	json.Unmarshal(e.call(nil, protocol.GetAllTopicListFromNameserver, remoting.Fields{}, nil).Body, &tl)
	if strings.Join(tl.TopicList, ",") != "T1,TBW102" {
		t.Fatalf("topic list %v", tl.TopicList)
	}
}

func TestSlaveRegistration(t *testing.T) {
	e := newEnv(t, nil)
	e.register(&fakeConn{id: 1}, brokerSpec{name: "b", addr: "10.0.0.1:10911", topics: stdTopics})
	resp := e.register(&fakeConn{id: 2}, brokerSpec{name: "b", addr: "10.0.0.2:10911", id: 1, topics: map[string]int32{"SlaveOnly": 6}})
	if resp.ExtFields.Get("masterAddr") != "10.0.0.1:10911" || resp.ExtFields.Get("haServerAddr") != "10.0.0.1:10912" {
		t.Fatalf("slave reply ext %v", resp.ExtFields)
	}
	if _, code := e.route("SlaveOnly"); code != protocol.TopicNotExist {
		t.Fatal("a slave's topics must not change routes")
	}
	r, _ := e.route("T1")
	if len(r.BrokerDatas[0].BrokerAddrs) != 2 {
		t.Fatalf("addrs %v", r.BrokerDatas[0].BrokerAddrs)
	}
	// the slave is promoted at the same address: id 1 disappears
	e.register(&fakeConn{id: 2}, brokerSpec{name: "b", addr: "10.0.0.2:10911", id: 0, counter: 1, topics: stdTopics})
	r, _ = e.route("T1")
	if got := r.BrokerDatas[0].BrokerAddrs; len(got) != 1 || got[0] != "10.0.0.2:10911" {
		t.Fatalf("after promotion: %v", got)
	}
}

func TestExpiry(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.BrokerTimeout = 10 * time.Second })
	conn := &fakeConn{id: 1}
	e.register(conn, brokerSpec{name: "b", addr: "10.0.0.1:10911", topics: stdTopics})
	e.clock.advance(9 * time.Second)
	e.s.ScanNotActiveBrokers()
	if e.master("T1") == "" {
		t.Fatal("dropped too early")
	}
	e.register(conn, brokerSpec{name: "b", addr: "10.0.0.1:10911", topics: stdTopics}) // refresh
	e.clock.advance(9 * time.Second)
	e.s.ScanNotActiveBrokers()
	if e.master("T1") == "" {
		t.Fatal("re-registration did not refresh liveness")
	}
	e.clock.advance(2 * time.Second)
	e.s.ScanNotActiveBrokers()
	if _, code := e.route("T1"); code != protocol.TopicNotExist {
		t.Fatal("expired broker still routed")
	}
	if !conn.closed.Load() {
		t.Fatal("expired broker's connection not closed")
	}
	ci, _ := protocol.DecodeClusterInfo(e.call(nil, protocol.GetBrokerClusterInfo, remoting.Fields{}, nil).Body)
	if len(ci.BrokerAddrTable) != 0 || len(ci.ClusterAddrTable) != 0 {
		t.Fatalf("cluster info after expiry: %+v", ci)
	}
}

func TestScanLoopRealTime(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ScanInterval = 10 * time.Millisecond
	cfg.BrokerTimeout = 50 * time.Millisecond
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Close()
	s.Routes().Register(Registration{Cluster: "c", BrokerName: "b", BrokerAddr: "h:1", Topics: &protocol.TopicConfigSerializeWrapper{TopicConfigTable: map[string]*protocol.TopicConfig{"T": {TopicName: "T", Perm: 6}}}})
	deadline := time.Now().Add(5 * time.Second)
	for s.Routes().LiveBrokers() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("broker never expired")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestHeartbeatTimeoutOverride(t *testing.T) {
	e := newEnv(t, nil)
	h := protocol.RegisterBrokerRequestHeader{BrokerName: "b", BrokerAddr: "h:1", ClusterName: "c", HAServerAddr: "h:2"}
	ms := int64(3000)
	h.HeartbeatTimeoutMillis = &ms
	e.call(&fakeConn{id: 1}, protocol.RegisterBroker, protocol.EncodeHeader(&h), registerBody(brokerSpec{topics: stdTopics}))
	e.clock.advance(4 * time.Second)
	e.s.ScanNotActiveBrokers()
	if e.s.Routes().LiveBrokers() != 0 {
		t.Fatal("heartbeatTimeoutMillis not honoured")
	}
}

func TestMasterReplacedByNewAddress(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.BrokerTimeout = 10 * time.Second })
	oldConn := &fakeConn{id: 1}
	e.register(oldConn, brokerSpec{name: "b", addr: "10.0.0.1:10911", topics: stdTopics})
	e.clock.advance(5 * time.Second)
	e.register(&fakeConn{id: 2}, brokerSpec{name: "b", addr: "10.0.0.2:10911", topics: stdTopics})
	if got := e.master("T1"); got != "10.0.0.2:10911" {
		t.Fatalf("master = %q", got)
	}
	r, _ := e.route("T1")
	if len(r.BrokerDatas[0].BrokerAddrs) != 1 {
		t.Fatalf("old master still listed: %v", r.BrokerDatas[0].BrokerAddrs)
	}
	// the old master's liveness record is gone: its expiry or its
	// connection closing must not remove the new master
	e.s.ConnClosed(oldConn)
	e.clock.advance(6 * time.Second)
	e.s.ScanNotActiveBrokers()
	if got := e.master("T1"); got != "10.0.0.2:10911" {
		t.Fatalf("new master lost: %q", got)
	}
	if e.s.Routes().LiveBrokers() != 1 {
		t.Fatalf("live brokers %d", e.s.Routes().LiveBrokers())
	}
}

func TestOlderTermIgnored(t *testing.T) {
	e := newEnv(t, nil)
	if resp := e.register(&fakeConn{id: 1}, brokerSpec{name: "g", addr: "10.0.0.1:10911", term: 5, topics: stdTopics}); resp.Code != protocol.Success {
		t.Fatal(resp.Remark)
	}
	// a deposed leader from term 4 still claims to be master
	resp := e.register(&fakeConn{id: 2}, brokerSpec{name: "g", addr: "10.0.0.2:10911", term: 4, topics: stdTopics})
	if resp.Code == protocol.Success || !strings.Contains(resp.Remark, "stale dLegerTerm 4") {
		t.Fatalf("stale registration: %d %q", resp.Code, resp.Remark)
	}
	if got := e.master("T1"); got != "10.0.0.1:10911" {
		t.Fatalf("master = %q after stale registration", got)
	}
	// a new leader in term 6 replaces the master at once
	e.register(&fakeConn{id: 2}, brokerSpec{name: "g", addr: "10.0.0.2:10911", term: 6, topics: stdTopics})
	if got := e.master("T1"); got != "10.0.0.2:10911" {
		t.Fatalf("master = %q after term 6", got)
	}
	// the old leader, now a follower in term 6, registers as slave 1
	resp = e.register(&fakeConn{id: 1}, brokerSpec{name: "g", addr: "10.0.0.1:10911", id: 1, term: 6, topics: stdTopics})
	if resp.Code != protocol.Success || resp.ExtFields.Get("masterAddr") != "10.0.0.2:10911" {
		t.Fatalf("follower registration: %d %v", resp.Code, resp.ExtFields)
	}
	// a classic registration (term 0) is never term-checked
	if resp := e.register(&fakeConn{id: 3}, brokerSpec{name: "g", addr: "10.0.0.3:10911", id: 2, topics: stdTopics}); resp.Code != protocol.Success {
		t.Fatalf("term 0: %q", resp.Remark)
	}
	if e.s.Routes().BrokerTerm("g") != 6 {
		t.Fatalf("term %d", e.s.Routes().BrokerTerm("g"))
	}
	// Once every broker of the group is gone, a group rebuilt from empty
	// stores (term 1 again) registers.
	for i, addr := range []string{"10.0.0.1:10911", "10.0.0.2:10911", "10.0.0.3:10911"} {
		h := protocol.UnregisterBrokerRequestHeader{BrokerName: "g", BrokerAddr: addr, ClusterName: "DefaultCluster", BrokerID: int64(i)}
		if resp := e.call(nil, protocol.UnregisterBroker, protocol.EncodeHeader(&h), nil); resp.Code != 0 {
			t.Fatalf("unregister %s: %q", addr, resp.Remark)
		}
	}
	if resp := e.register(&fakeConn{id: 4}, brokerSpec{name: "g", addr: "10.0.0.4:10911", term: 1, topics: stdTopics}); resp.Code != protocol.Success {
		t.Fatalf("rebuilt group in term 1: %q", resp.Remark)
	}
	if got := e.master("T1"); got != "10.0.0.4:10911" {
		t.Fatalf("master = %q after the rebuilt group registered", got)
	}
}

func TestConnectionCloseDropsBroker(t *testing.T) {
	e := newEnv(t, nil)
	c1 := &fakeConn{id: 1}
	e.register(c1, brokerSpec{name: "a", addr: "10.0.0.1:10911", topics: stdTopics})
	e.register(&fakeConn{id: 2}, brokerSpec{name: "b", addr: "10.0.0.2:10911", topics: stdTopics})
	e.s.ConnClosed(c1)
	r, _ := e.route("T1")
	if len(r.BrokerDatas) != 1 || r.BrokerDatas[0].BrokerName != "b" {
		t.Fatalf("after close: %+v", r.BrokerDatas)
	}
	// re-registered over a new connection: the old connection's close
	// (arriving late) must not drop it
	c3, c4 := &fakeConn{id: 3}, &fakeConn{id: 4}
	e.register(c3, brokerSpec{name: "a", addr: "10.0.0.1:10911", topics: stdTopics})
	e.register(c4, brokerSpec{name: "a", addr: "10.0.0.1:10911", topics: stdTopics})
	e.s.ConnClosed(c3)
	if r, _ := e.route("T1"); len(r.BrokerDatas) != 2 {
		t.Fatalf("late close dropped a re-registered broker: %+v", r.BrokerDatas)
	}
	e.s.ConnClosed(c4)
	if r, _ := e.route("T1"); len(r.BrokerDatas) != 1 {
		t.Fatalf("close of current connection did not drop: %+v", r.BrokerDatas)
	}
}

func TestUnregister(t *testing.T) {
	e := newEnv(t, nil)
	e.register(&fakeConn{id: 1}, brokerSpec{name: "b", addr: "h:1", topics: stdTopics})
	e.register(&fakeConn{id: 2}, brokerSpec{name: "b", addr: "h:2", id: 1, topics: stdTopics})
	unreg := func(addr string, id int64) {
		h := protocol.UnregisterBrokerRequestHeader{BrokerName: "b", BrokerAddr: addr, ClusterName: "DefaultCluster", BrokerID: id}
		if resp := e.call(nil, protocol.UnregisterBroker, protocol.EncodeHeader(&h), nil); resp.Code != 0 {
			t.Fatal(resp.Remark)
		}
	}
	unreg("h:1", 0)
	r, code := e.route("T1")
	if code != 0 || r.BrokerDatas[0].BrokerAddrs[1] != "h:2" || len(r.BrokerDatas[0].BrokerAddrs) != 1 {
		t.Fatalf("slave-only group should keep routes: %d %+v", code, r)
	}
	unreg("h:2", 1)
	if _, code := e.route("T1"); code != protocol.TopicNotExist {
		t.Fatal("routes remain after the last address left")
	}
}

func TestWriteperm(t *testing.T) {
	e := newEnv(t, nil)
	e.register(&fakeConn{id: 1}, brokerSpec{name: "b", addr: "h:1", counter: 1, topics: stdTopics})
	resp := e.call(nil, protocol.WipeWritePermOfBroker, remoting.FieldsOf("brokerName", "b"), nil)
	if resp.ExtFields.Get("wipeTopicCount") != "2" {
		t.Fatalf("wipe: %v", resp.ExtFields)
	}
	r, _ := e.route("T1")
	if r.QueueDatas[0].Perm != protocol.PermRead {
		t.Fatalf("perm %d", r.QueueDatas[0].Perm)
	}
	// periodic re-registration with the same data version keeps it wiped
	e.register(&fakeConn{id: 1}, brokerSpec{name: "b", addr: "h:1", counter: 1, topics: stdTopics})
	if r, _ := e.route("T1"); r.QueueDatas[0].Perm != protocol.PermRead {
		t.Fatal("re-registration restored write perm")
	}
	resp = e.call(nil, protocol.AddWritePermOfBroker, remoting.FieldsOf("brokerName", "b"), nil)
	if resp.ExtFields.Get("addTopicCount") != "2" {
		t.Fatalf("add: %v", resp.ExtFields)
	}
	if r, _ := e.route("TBW102"); r.QueueDatas[0].Perm != 7 {
		t.Fatalf("perm %d", r.QueueDatas[0].Perm)
	}
	// a new data version is applied
	e.call(nil, protocol.WipeWritePermOfBroker, remoting.FieldsOf("brokerName", "b"), nil)
	e.register(&fakeConn{id: 1}, brokerSpec{name: "b", addr: "h:1", counter: 2, topics: stdTopics})
	if r, _ := e.route("T1"); r.QueueDatas[0].Perm != 6 {
		t.Fatalf("new data version not applied: %d", r.QueueDatas[0].Perm)
	}
}

func TestTopicAdmin(t *testing.T) {
	e := newEnv(t, nil)
	e.register(&fakeConn{id: 1}, brokerSpec{cluster: "C1", name: "a", addr: "h:1", topics: map[string]int32{"T": 6, "U": 6}})
	e.register(&fakeConn{id: 2}, brokerSpec{cluster: "C2", name: "b", addr: "h:2", topics: map[string]int32{"T": 6, "V": 6}})
	list := func(code int16, ext remoting.Fields) string {
		resp := e.call(nil, code, ext, nil)
		var tl protocol.TopicList
		if err := json.Unmarshal(resp.Body, &tl); err != nil {
			t.Fatalf("code %d: %v (%d %s)", code, err, resp.Code, resp.Remark)
		}
		return strings.Join(tl.TopicList, ",") + "|" + tl.BrokerAddr
	}
	if got := list(protocol.GetTopicsByCluster, remoting.FieldsOf("cluster", "C2")); got != "T,V|" {
		t.Fatalf("by cluster: %s", got)
	}
	if got := list(protocol.GetSystemTopicListFromNS, remoting.Fields{}); got != "C1,a,C2,b|h:1" {
		t.Fatalf("system topics: %s", got)
	}
	e.call(nil, protocol.DeleteTopicInNamesrv, remoting.FieldsOf("topic", "T", "clusterName", "C1"), nil)
	r, _ := e.route("T")
	if len(r.QueueDatas) != 1 || r.QueueDatas[0].BrokerName != "b" {
		t.Fatalf("cluster delete: %+v", r.QueueDatas)
	}
	e.call(nil, protocol.DeleteTopicInNamesrv, remoting.FieldsOf("topic", "T"), nil)
	if _, code := e.route("T"); code != protocol.TopicNotExist {
		t.Fatal("topic not deleted")
	}
	// REGISTER_TOPIC_IN_NAMESRV brings it back on a known broker only
	body := (&protocol.TopicRouteData{QueueDatas: []protocol.QueueData{{BrokerName: "a", Perm: 6, ReadQueueNums: 2, WriteQueueNums: 2}, {BrokerName: "ghost", Perm: 6}}}).Encode(protocol.FastJSON)
	e.call(nil, protocol.RegisterTopicInNamesrv, remoting.FieldsOf("topic", "T"), body)
	if r, _ := e.route("T"); len(r.QueueDatas) != 1 || r.QueueDatas[0].WriteQueueNums != 2 {
		t.Fatalf("register topic: %+v", r)
	}
	// missing header field
	if resp := e.call(nil, protocol.DeleteTopicInNamesrv, remoting.Fields{}, nil); resp.Code != protocol.SystemError || !strings.Contains(resp.Remark, `"topic"`) {
		t.Fatalf("missing topic: %d %q", resp.Code, resp.Remark)
	}
}

func TestUnitTopicLists(t *testing.T) {
	e := newEnv(t, nil)
	body := protocol.RegisterBrokerBody{TopicConfigSerializeWrapper: protocol.TopicConfigSerializeWrapper{TopicConfigTable: map[string]*protocol.TopicConfig{
		"unit": {TopicName: "unit", Perm: 6, TopicSysFlag: protocol.FlagUnit},
		"sub":  {TopicName: "sub", Perm: 6, TopicSysFlag: protocol.FlagUnitSub},
		"both": {TopicName: "both", Perm: 6, TopicSysFlag: protocol.FlagUnit | protocol.FlagUnitSub},
		"none": {TopicName: "none", Perm: 6},
	}}}
	h := protocol.RegisterBrokerRequestHeader{BrokerName: "b", BrokerAddr: "h:1", ClusterName: "c", HAServerAddr: "h:2"}
	e.call(&fakeConn{id: 1}, protocol.RegisterBroker, protocol.EncodeHeader(&h), body.Encode())
	for code, want := range map[int16]string{protocol.GetUnitTopicList: "both,unit", protocol.GetHasUnitSubTopicList: "both,sub", protocol.GetHasUnitSubUnunitTopicList: "sub"} {
		var tl protocol.TopicList
		json.Unmarshal(e.call(nil, code, remoting.Fields{}, nil).Body, &tl)
		if got := strings.Join(tl.TopicList, ","); got != want {
			t.Errorf("code %d: %s, want %s", code, got, want)
		}
	}
}

func TestKVConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "namesrv", "kvConfig.json")
	e := newEnv(t, func(c *Config) { c.KVConfigPath = path; c.OrderMessageEnable = true })
	put := func(ns, k, v string) {
		if resp := e.call(nil, protocol.PutKVConfig, remoting.FieldsOf("namespace", ns, "key", k, "value", v), nil); resp.Code != 0 {
			t.Fatal(resp.Remark)
		}
	}
	put(protocol.OrderTopicConfigNamespace, "T1", "broker-a:4")
	put("ns", "k1", "v1")
	put("ns", "k2", "v2")
	resp := e.call(nil, protocol.GetKVConfig, remoting.FieldsOf("namespace", "ns", "key", "k1"), nil)
	if resp.Code != 0 || resp.ExtFields.Get("value") != "v1" {
		t.Fatalf("get: %d %v", resp.Code, resp.ExtFields)
	}
	if resp := e.call(nil, protocol.GetKVConfig, remoting.FieldsOf("namespace", "ns", "key", "zz"), nil); resp.Code != protocol.QueryNotFound {
		t.Fatalf("get missing: %d", resp.Code)
	}
	e.call(nil, protocol.DeleteKVConfig, remoting.FieldsOf("namespace", "ns", "key", "k2"), nil)
	var kv protocol.KVTable
	json.Unmarshal(e.call(nil, protocol.GetKVListByNamespace, remoting.FieldsOf("namespace", "ns"), nil).Body, &kv)
	if len(kv.Table) != 1 || kv.Table["k1"] != "v1" {
		t.Fatalf("list: %v", kv.Table)
	}
	if resp := e.call(nil, protocol.GetKVListByNamespace, remoting.FieldsOf("namespace", "empty"), nil); resp.Code != protocol.QueryNotFound {
		t.Fatalf("empty namespace: %d", resp.Code)
	}
	// order topic conf reaches routes and the broker's registration reply
	resp = e.register(&fakeConn{id: 1}, brokerSpec{name: "broker-a", addr: "h:1", topics: stdTopics})
	if !strings.Contains(string(resp.Body), `"T1":"broker-a:4"`) {
		t.Fatalf("register reply body %s", resp.Body)
	}
	if r, _ := e.route("T1"); r.OrderTopicConf != "broker-a:4" {
		t.Fatalf("orderTopicConf %q", r.OrderTopicConf)
	}
	// persisted in Java's format and reloaded
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), `{"configTable":{`) {
		t.Fatalf("file %s", data)
	}
	kvs, err := OpenKVStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := kvs.Get("ns", "k1"); v != "v1" {
		t.Fatal("not reloaded")
	}
	if _, ok := kvs.Get("ns", "k2"); ok {
		t.Fatal("deleted key reloaded")
	}
	// a Java file with a bare-integer namespace key still loads
	os.WriteFile(path, []byte(`{"configTable":{1:{"a":"b"}}}`), 0o644)
	if _, err := OpenKVStore(path); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, []byte(`{garbage`), 0o644)
	if _, err := OpenKVStore(path); err == nil {
		t.Fatal("corrupt kv file accepted")
	}
}

func TestQueryDataVersionAndHeartbeat(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.BrokerTimeout = 10 * time.Second })
	e.register(&fakeConn{id: 1}, brokerSpec{name: "b", addr: "h:1", counter: 3, topics: stdTopics})
	ext := protocol.EncodeHeader(&protocol.QueryDataVersionRequestHeader{BrokerName: "b", BrokerAddr: "h:1", ClusterName: "DefaultCluster"})
	resp := e.call(nil, protocol.QueryDataVersion, ext, protocol.DataVersion{Counter: 3, Timestamp: 1}.Encode())
	if resp.ExtFields.Get("changed") != "false" || !strings.Contains(string(resp.Body), `"counter":3`) {
		t.Fatalf("same version: %v %s", resp.ExtFields, resp.Body)
	}
	resp = e.call(nil, protocol.QueryDataVersion, ext, protocol.DataVersion{Counter: 4, Timestamp: 1}.Encode())
	if resp.ExtFields.Get("changed") != "true" {
		t.Fatalf("new version: %v", resp.ExtFields)
	}
	e.clock.advance(8 * time.Second)
	hb := protocol.EncodeHeader(&protocol.BrokerHeartbeatRequestHeader{ClusterName: "DefaultCluster", BrokerAddr: "h:1", BrokerName: "b"})
	e.call(nil, protocol.BrokerHeartbeat, hb, nil)
	e.clock.advance(8 * time.Second)
	e.s.ScanNotActiveBrokers()
	if e.master("T1") == "" {
		t.Fatal("heartbeat did not refresh liveness")
	}
}

func TestRegisterBodyForms(t *testing.T) {
	e := newEnv(t, nil)
	spec := brokerSpec{name: "b", addr: "h:1", topics: stdTopics}
	body := registerBody(spec)
	h := protocol.RegisterBrokerRequestHeader{BrokerName: "b", BrokerAddr: "h:1", ClusterName: "c", HAServerAddr: "h:2", BodyCrc32: 12345}
	if resp := e.call(&fakeConn{id: 1}, protocol.RegisterBroker, protocol.EncodeHeader(&h), body); resp.Remark != "crc32 not match" {
		t.Fatalf("bad crc: %d %q", resp.Code, resp.Remark)
	}
	h.BodyCrc32 = int32(crc32.ChecksumIEEE(body) & 0x7FFFFFFF)
	if resp := e.call(&fakeConn{id: 1}, protocol.RegisterBroker, protocol.EncodeHeader(&h), body); resp.Code != 0 {
		t.Fatalf("good crc: %q", resp.Remark)
	}
	parsed, _ := protocol.DecodeRegisterBrokerBody(body, false)
	parsed.TopicConfigSerializeWrapper.TopicConfigTable["Z"] = &protocol.TopicConfig{TopicName: "Z", Perm: 6, ReadQueueNums: 1, WriteQueueNums: 1}
	parsed.TopicConfigSerializeWrapper.DataVersion.Counter++
	h.BodyCrc32, h.Compressed = 0, true
	if resp := e.call(&fakeConn{id: 1}, protocol.RegisterBroker, protocol.EncodeHeader(&h), protocol.EncodeCompressedRegisterBrokerBody(parsed)); resp.Code != 0 {
		t.Fatalf("compressed: %q", resp.Remark)
	}
	if e.master("Z") != "h:1" {
		t.Fatal("compressed body not applied")
	}
	if resp := e.call(&fakeConn{id: 1}, protocol.RegisterBroker, protocol.EncodeHeader(&h), []byte("junk")); resp.Code != protocol.SystemError {
		t.Fatal("junk compressed body accepted")
	}
	if resp := e.call(&fakeConn{id: 1}, protocol.RegisterBroker, remoting.FieldsOf("brokerName", "b"), nil); resp.Code != protocol.SystemError || !strings.Contains(resp.Remark, "brokerAddr") {
		t.Fatalf("missing header: %q", resp.Remark)
	}
}

func TestNamesrvConfigCodes(t *testing.T) {
	e := newEnv(t, nil)
	if body := string(e.call(nil, protocol.GetNamesrvConfig, remoting.Fields{}, nil).Body); !strings.Contains(body, "enableAllTopicList=true") {
		t.Fatalf("config: %s", body)
	}
	if resp := e.call(nil, protocol.UpdateNamesrvConfig, remoting.Fields{}, []byte("kvConfigPath=/tmp/x\n")); resp.Code != protocol.NoPermission {
		t.Fatalf("black-listed key: %d", resp.Code)
	}
	if resp := e.call(nil, protocol.UpdateNamesrvConfig, remoting.Fields{}, []byte("enableAllTopicList=false\n")); resp.Code != 0 {
		t.Fatal(resp.Remark)
	}
	if resp := e.call(nil, protocol.GetAllTopicListFromNameserver, remoting.Fields{}, nil); resp.Code != protocol.SystemError || resp.Remark != "disable" {
		t.Fatalf("disabled topic list: %d %q", resp.Code, resp.Remark)
	}
	if resp := e.call(nil, protocol.UpdateNamesrvConfig, remoting.Fields{}, []byte("noSuchKey=1\n")); resp.Code != protocol.SystemError {
		t.Fatal("unknown key accepted")
	}
	var got map[string]string
	e2 := newEnv(t, func(c *Config) {
		c.ConfigProperties = func() string { return "listenPort=9876\n" }
		c.UpdateConfig = func(p map[string]string) error {
			if p["listenPort"] == "x" {
				return fmt.Errorf("bad listenPort")
			}
			got = p
			return nil
		}
	})
	if body := string(e2.call(nil, protocol.GetNamesrvConfig, remoting.Fields{}, nil).Body); body != "listenPort=9876\n" {
		t.Fatalf("hooked config: %q", body)
	}
	if resp := e2.call(nil, protocol.UpdateNamesrvConfig, remoting.Fields{}, []byte("listenPort=x")); resp.Remark != "bad listenPort" {
		t.Fatalf("hook error: %q", resp.Remark)
	}
	e2.call(nil, protocol.UpdateNamesrvConfig, remoting.Fields{}, []byte("# c\norderMessageEnable = true\n"))
	if got["orderMessageEnable"] != "true" || !e2.s.orderMessageEnable.Load() {
		t.Fatalf("hook got %v", got)
	}
}

func TestUnknownCodeAndOneway(t *testing.T) {
	e := newEnv(t, nil)
	resp := e.call(nil, protocol.SendMessage, remoting.Fields{}, nil)
	if resp.Code != protocol.RequestCodeNotSupported {
		t.Fatalf("code %d", resp.Code)
	}
	req := &remoting.RemotingCommand{Code: protocol.BrokerHeartbeat, Flag: remoting.FlagOneway, ExtFields: remoting.Fields{}}
	if e.s.Handler().ServeRemoting(&fakeConn{id: 1}, req) != nil {
		t.Fatal("oneway request answered")
	}
}

type recMux struct{ codes map[int16]bool }

func (m *recMux) Handle(code int16, h remoting.Handler) {
	if m.codes[code] {
		panic("registered twice")
	}
	m.codes[code] = true
}

func TestRegisterMux(t *testing.T) {
	e := newEnv(t, nil)
	m := &recMux{codes: map[int16]bool{}}
	e.s.Register(m)
	for _, c := range []int16{100, 101, 102, 103, 104, 105, 106, 205, 206, 216, 217, 219, 224, 304, 311, 312, 313, 318, 319, 322, 327, 904} {
		if !m.codes[c] {
			t.Errorf("code %d not registered", c)
		}
	}
}

// Concurrent registrations, expiries and route reads (run with -race).
func TestConcurrentAccess(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.BrokerTimeout = time.Second })
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := &fakeConn{id: uint64(i)}
			for j := 0; j < 200; j++ {
				switch j % 5 {
				case 0, 1:
					e.register(c, brokerSpec{name: fmt.Sprintf("b%d", i%3), addr: fmt.Sprintf("h:%d", i), id: int64(i % 2), counter: int64(j), term: int64(j / 50), topics: stdTopics})
				case 2:
					e.route("T1")
					e.call(nil, protocol.GetBrokerClusterInfo, remoting.Fields{}, nil)
				case 3:
					e.clock.advance(100 * time.Millisecond)
					e.s.ScanNotActiveBrokers()
				case 4:
					e.s.ConnClosed(c)
				}
			}
		}(i)
	}
	wg.Wait()
}

func BenchmarkGetRouteInfo(b *testing.B) {
	s, _ := New(DefaultConfig())
	for i := 0; i < 4; i++ {
		topics := map[string]*protocol.TopicConfig{}
		for j := 0; j < 200; j++ {
			name := fmt.Sprintf("T%d", j)
			topics[name] = &protocol.TopicConfig{TopicName: name, Perm: 6, ReadQueueNums: 8, WriteQueueNums: 8}
		}
		s.Routes().Register(Registration{Cluster: "c", BrokerName: fmt.Sprintf("b%d", i), BrokerAddr: fmt.Sprintf("h:%d", i), Topics: &protocol.TopicConfigSerializeWrapper{TopicConfigTable: topics}})
	}
	h := s.Handler()
	c := &fakeConn{id: 1}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := &remoting.RemotingCommand{Code: protocol.GetRouteinfoByTopic, Version: protocol.VersionV4_5_2, ExtFields: remoting.FieldsOf("topic", "T7")}
		for pb.Next() {
			if resp := h.ServeRemoting(c, req); resp.Code != protocol.Success {
				b.Fatal(resp.Remark)
			}
		}
	})
}
