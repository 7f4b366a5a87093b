package test

// End-to-end: bin/namesrv and bin/broker as separate processes, driven by
// the real rocketmq-client-go admin API and producer.

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
)

type nsCluster struct {
	dir                         string
	nsAddr, brokerAddr, vipAddr string
	ns, broker                  *process
	client                      *remoting.Client
}

// startBroker starts bin/broker named name against the name server and
// waits for both of its ports.
func (c *nsCluster) startBroker(t *testing.T, name string) (addr, vip string, p *process) {
	t.Helper()
	port := freePort(t, true)
	conf := filepath.Join(c.dir, name+".conf")
	kv := map[string]string{
		"brokerClusterName":     "E2ECluster",
		"brokerName":            name,
		"brokerId":              "0",
		"brokerIP1":             "127.0.0.1",
		"brokerIP2":             "127.0.0.1",
		"listenPort":            fmt.Sprint(port),
		"namesrvAddr":           "127.0.0.1:1", // overridden by -n below
		"storePathRootDir":      filepath.Join(c.dir, name),
		"autoCreateTopicEnable": "true",
		"defaultTopicQueueNums": "4",
	}
	writeConf(t, conf, kv, []string{"brokerClusterName", "brokerName", "brokerId", "brokerIP1", "brokerIP2", "listenPort", "namesrvAddr", "storePathRootDir", "autoCreateTopicEnable", "defaultTopicQueueNums"})
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	vip = fmt.Sprintf("127.0.0.1:%d", port-2)
	p = startProcess(t, name, filepath.Join(binaries(t), "broker"), "-c", conf, "-n", c.nsAddr)
	t.Cleanup(p.kill)
	waitTCP(t, p, addr, 20*time.Second)
	waitTCP(t, p, vip, 20*time.Second)
	return addr, vip, p
}

func startNamesrvAndBroker(t *testing.T) *nsCluster {
	t.Helper()
	rlog.SetLogLevel("error")
	bin := binaries(t)
	dir := t.TempDir()
	t.Setenv("RMQD_LOG_DIR", filepath.Join(dir, "logs")) // the name server's log directory

	nsPort := freePort(t, false)
	nsConf := filepath.Join(dir, "namesrv.conf")
	writeConf(t, nsConf, map[string]string{
		"listenPort":                  fmt.Sprint(nsPort),
		"kvConfigPath":                filepath.Join(dir, "namesrv", "kvConfig.json"),
		"configStorePath":             filepath.Join(dir, "namesrv", "namesrv.properties"),
		"scanNotActiveBrokerInterval": "1000",
	}, []string{"listenPort", "kvConfigPath", "configStorePath", "scanNotActiveBrokerInterval"})
	c := &nsCluster{nsAddr: fmt.Sprintf("127.0.0.1:%d", nsPort)}
	c.ns = startProcess(t, "namesrv", filepath.Join(bin, "namesrv"), "-c", nsConf)
	t.Cleanup(c.ns.kill)
	waitTCP(t, c.ns, c.nsAddr, 20*time.Second)

	c.dir = dir
	c.brokerAddr, c.vipAddr, c.broker = c.startBroker(t, "broker-e2e")
	c.client = remoting.NewClient(remoting.ClientConfig{})
	t.Cleanup(func() { c.client.Close() })
	return c
}

// invoke sends one request with our own client (the Go client never sends
// GET_BROKER_CLUSTER_INFO, and its remoting package is internal).
func (c *nsCluster) invoke(t *testing.T, addr string, code int16, ext remoting.Fields) (*remoting.RemotingCommand, error) {
	t.Helper()
	req := &remoting.RemotingCommand{Code: code, Language: "JAVA", Version: protocol.VersionV4_5_2, ExtFields: ext}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.client.InvokeSync(ctx, addr, req, 3*time.Second)
}

func (c *nsCluster) clusterInfo(t *testing.T) *protocol.ClusterInfo {
	t.Helper()
	resp, err := c.invoke(t, c.nsAddr, protocol.GetBrokerClusterInfo, remoting.Fields{})
	if err != nil {
		t.Fatalf("GET_BROKER_CLUSTER_INFO: %v", err)
	}
	ci, err := protocol.DecodeClusterInfo(resp.Body)
	if err != nil {
		t.Fatalf("cluster info %q: %v", resp.Body, err)
	}
	return ci
}

func (c *nsCluster) requireAlive(t *testing.T) {
	t.Helper()
	for _, p := range []*process{c.ns, c.broker} {
		if !p.running() {
			t.Fatalf("%s died (%v); output:\n%s", p.name, p.exitErr, tail(p.out.String()))
		}
	}
}

func TestNamesrvEndToEnd(t *testing.T) {
	c := startNamesrvAndBroker(t)
	ctx := context.Background()

	adm, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{c.nsAddr})))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()

	// The broker registers TBW102 at start; the Go client's route parser
	// accepts the name server's answer and finds the master.
	var mqs []*primitive.MessageQueue
	eventually(t, 20*time.Second, "TBW102 route via rocketmq-client-go admin", func() bool {
		mqs, err = adm.FetchPublishMessageQueues(ctx, protocol.AutoCreateTopicKey)
		return err == nil && len(mqs) > 0
	})
	if len(mqs) != 4 || mqs[0].BrokerName != "broker-e2e" {
		t.Fatalf("TBW102 queues: %v", mqs)
	}

	t.Run("cluster info lists the broker as brokerId 0", func(t *testing.T) {
		ci := c.clusterInfo(t)
		bd, ok := ci.BrokerAddrTable["broker-e2e"]
		if !ok || bd.BrokerAddrs[0] != c.brokerAddr || bd.Cluster != "E2ECluster" {
			t.Fatalf("cluster info %+v", ci)
		}
		if !slices.Contains(ci.ClusterAddrTable["E2ECluster"], "broker-e2e") {
			t.Fatalf("clusterAddrTable %v", ci.ClusterAddrTable)
		}
	})

	t.Run("topic list", func(t *testing.T) {
		tl, err := adm.FetchAllTopicList(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"TBW102", "broker-e2e", "E2ECluster"} {
			if !slices.Contains(tl.TopicList, want) {
				t.Errorf("topic list %v lacks %s", tl.TopicList, want)
			}
		}
	})

	t.Run("unknown topic", func(t *testing.T) {
		if _, err := adm.FetchPublishMessageQueues(ctx, "NoSuchTopicE2E"); err == nil {
			t.Fatal("route for an unknown topic")
		}
		resp, err := c.invoke(t, c.nsAddr, protocol.GetRouteinfoByTopic, remoting.FieldsOf("topic", "NoSuchTopicE2E"))
		if err != nil || resp.Code != protocol.TopicNotExist {
			t.Fatalf("unknown topic: %v %+v", err, resp)
		}
	})

	t.Run("producer falls back to TBW102 and reaches the broker", func(t *testing.T) {
		p, err := rocketmq.NewProducer(
			producer.WithNsResolver(primitive.NewPassthroughResolver([]string{c.nsAddr})),
			producer.WithRetry(0),
			producer.WithSendMsgTimeout(3*time.Second),
			producer.WithGroupName("e2e_pg"),
		)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		defer p.Shutdown()
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		res, err := p.SendSync(sctx, primitive.NewMessage("AutoCreatedTopicE2E", []byte("hello")))
		// What this test owns is that the producer resolved a route through
		// TBW102 and talked to the broker instead of failing the lookup.
		if err != nil && strings.Contains(err.Error(), "route info not found") {
			t.Fatalf("producer found no route: %v", err)
		}
		if err != nil {
			t.Logf("send through the TBW102 route reached the broker but failed: %v", err)
			return
		}
		// The broker created the topic from TBW102 and re-registered it.
		t.Logf("sent: %v", res)
		eventually(t, 10*time.Second, "route of the auto-created topic", func() bool {
			resp, err := c.invoke(t, c.nsAddr, protocol.GetRouteinfoByTopic, remoting.FieldsOf("topic", "AutoCreatedTopicE2E"))
			return err == nil && resp.Code == protocol.Success
		})
	})

	t.Run("garbage on every port stops no process", func(t *testing.T) {
		for _, addr := range []string{c.nsAddr, c.brokerAddr, c.vipAddr} {
			sendGarbage(t, addr)
		}
		time.Sleep(200 * time.Millisecond)
		c.requireAlive(t)
		resp, err := c.invoke(t, c.nsAddr, protocol.GetRouteinfoByTopic, remoting.FieldsOf("topic", protocol.AutoCreateTopicKey))
		if err != nil || resp.Code != protocol.Success {
			t.Fatalf("name server after garbage: %v %+v", err, resp)
		}
		for _, addr := range []string{c.brokerAddr, c.vipAddr} {
			resp, err := c.invoke(t, addr, protocol.GetBrokerRuntimeInfo, remoting.Fields{})
			if err != nil || resp == nil {
				t.Fatalf("broker %s after garbage: %v", addr, err)
			}
		}
	})

	t.Run("a killed broker leaves the routes when its connection closes", func(t *testing.T) {
		_, _, p2 := c.startBroker(t, "broker-e2e-2")
		eventually(t, 20*time.Second, "second broker registered", func() bool {
			_, ok := c.clusterInfo(t).BrokerAddrTable["broker-e2e-2"]
			return ok
		})
		p2.kill() // no UNREGISTER_BROKER; only the TCP close tells the name server
		eventually(t, 10*time.Second, "killed broker dropped (long before the 120 s expiry)", func() bool {
			_, ok := c.clusterInfo(t).BrokerAddrTable["broker-e2e-2"]
			return !ok
		})
		if _, ok := c.clusterInfo(t).BrokerAddrTable["broker-e2e"]; !ok {
			t.Fatal("the other broker was dropped too")
		}
	})

	t.Run("graceful broker shutdown unregisters", func(t *testing.T) {
		c.broker.stop(10 * time.Second)
		if c.broker.exitErr != nil {
			t.Errorf("broker exit: %v; output:\n%s", c.broker.exitErr, tail(c.broker.out.String()))
		}
		eventually(t, 10*time.Second, "broker removed from cluster info", func() bool {
			return len(c.clusterInfo(t).BrokerAddrTable) == 0
		})
		resp, err := c.invoke(t, c.nsAddr, protocol.GetRouteinfoByTopic, remoting.FieldsOf("topic", protocol.AutoCreateTopicKey))
		if err != nil || resp.Code != protocol.TopicNotExist {
			t.Fatalf("TBW102 after shutdown: %v %+v", err, resp)
		}
	})
}

// sendGarbage writes hostile bytes on fresh connections: random bytes,
// HTTP, an absurd frame length, a header longer than its frame and
// invalid JSON in a well-formed frame.
func sendGarbage(t *testing.T, addr string) {
	t.Helper()
	random := make([]byte, 4096)
	rand.Read(random)
	frame := func(total, headerWord uint32, rest []byte) []byte {
		b := make([]byte, 8, 8+len(rest))
		binary.BigEndian.PutUint32(b, total)
		binary.BigEndian.PutUint32(b[4:], headerWord)
		return append(b, rest...)
	}
	payloads := [][]byte{
		random,
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		frame(0x7FFFFFFF, 10, nil),
		frame(20, 1000, []byte("0123456789abcdef")),
		frame(4+9, 9, []byte("{not json")),
		frame(4+30, 1<<24|30, []byte("\x00\x00\x09\x01\xdf\x00\x00\x00\x07\x00\x00\x00\x01\x7f\xff\xff\xff")),
	}
	for _, p := range payloads {
		conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		conn.SetDeadline(time.Now().Add(500 * time.Millisecond))
		conn.Write(p)
		buf := make([]byte, 512)
		conn.Read(buf) // an error reply or a close, either is fine
		conn.Close()
	}
}
