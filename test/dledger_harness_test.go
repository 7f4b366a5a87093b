package test

// Harness for the DLedger end-to-end tests (issue 5): a name server and a
// 3-replica broker group (enableDLegerCommitLog=true) as separate
// processes on OS-chosen loopback ports. Every peer link goes through a
// faultproxy.Network: replica a's dLegerPeers lists its own real peer
// address and, for each other replica b, the proxy of the link a→b, so a
// test can drop, delay or blackhole any directed link. The ids are the same
// in every replica's dLegerPeers, only the addresses differ.
//
// Helpers: the leader (brokerId 0 in the name server, confirmed by the
// replica's dledgerRole), kill -9, SIGSTOP/SIGCONT, restart over the same
// config and data directory, runtime info, raw sends that follow the
// master, and bounded waits.

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
	"github.com/rmqd/rmqd/store"
	"github.com/rmqd/rmqd/test/faultproxy"
)

// DLedger timers of the test groups: short, with room for 2 cores under
// the race detector (the brokers themselves are built without it).
const (
	dlHeartbeatMs   = 100
	dlElectionMs    = 500
	dlElectionMaxMs = 800
)

// dlReplica is one broker process of the group.
type dlReplica struct {
	id       string // dLegerSelfId: n0, n1, n2
	idx      int    // position in dLegerPeers
	addr     string // broker (remoting) address
	peerAddr string // real DLedger peer listen address
	conf     string
	proc     *process
	paused   bool
}

// dlGroup is a name server and a DLedger broker group.
type dlGroup struct {
	t          *testing.T
	dir        string
	ns         string
	nsProc     *process
	cluster    string
	brokerName string
	reps       []*dlReplica
	net        *faultproxy.Network
	client     *remoting.Client

	mu sync.Mutex // guards proc/paused of the replicas
}

// startDledgerGroup starts a name server and 3 replicas (overrides on top of
// testBrokerDefaults and the DLedger keys) and waits until a leader is
// registered as brokerId 0 and both followers are registered.
func startDledgerGroup(t *testing.T, overrides map[string]string) *dlGroup {
	t.Helper()
	bin := binaries(t)
	g := &dlGroup{t: t, dir: t.TempDir(), cluster: "DledgerCluster", brokerName: "dl-broker",
		client: remoting.NewClient(remoting.ClientConfig{ConnectTimeout: 500 * time.Millisecond})}
	t.Cleanup(func() { g.client.Close() })

	used := map[int]bool{}
	port := func(vip bool) int {
		for {
			p := freePort(t, vip)
			if !used[p] && !used[p-2] && !(vip && used[p-2]) {
				used[p] = true
				if vip {
					used[p-2] = true
				}
				return p
			}
		}
	}
	nsPort := port(false)
	nsConf := filepath.Join(g.dir, "namesrv.conf")
	writeConf(t, nsConf, map[string]string{
		"listenPort":      strconv.Itoa(nsPort),
		"kvConfigPath":    filepath.Join(g.dir, "ns", "kvConfig.json"),
		"configStorePath": filepath.Join(g.dir, "ns", "namesrv.properties"),
	}, []string{"listenPort", "kvConfigPath", "configStorePath"})
	g.nsProc = startProcess(t, "namesrv", filepath.Join(bin, "namesrv"), "-c", nsConf)
	t.Cleanup(func() { g.nsProc.stop(5 * time.Second) })
	g.ns = fmt.Sprintf("127.0.0.1:%d", nsPort)
	waitTCP(t, g.nsProc, g.ns, 15*time.Second)

	real := map[string]string{}
	for i := 0; i < 3; i++ {
		r := &dlReplica{id: fmt.Sprintf("n%d", i), idx: i}
		r.addr = fmt.Sprintf("127.0.0.1:%d", port(true))
		r.peerAddr = fmt.Sprintf("127.0.0.1:%d", port(false))
		real[r.id] = r.peerAddr
		g.reps = append(g.reps, r)
	}
	// The proxies listen on ports of the OS's choosing, which may be one of
	// the ports picked (and released) above: then a replica would list the
	// same address twice in dLegerPeers. Build them again until none clashes.
	var nw *faultproxy.Network
	for attempt := 0; ; attempt++ {
		var err error
		if nw, err = faultproxy.NewNetwork(real); err != nil {
			t.Fatalf("fault proxies: %v", err)
		}
		clash := false
		for _, from := range nw.IDs() {
			for _, to := range nw.IDs() {
				if from == to {
					continue
				}
				_, ps, _ := strings.Cut(nw.Addr(from, to), "127.0.0.1:")
				if p, _ := strconv.Atoi(ps); used[p] {
					clash = true
				}
			}
		}
		if !clash || attempt == 20 {
			break
		}
		nw.Close()
	}
	g.net = nw
	t.Cleanup(nw.Close)

	for _, r := range g.reps {
		kv := testBrokerDefaults()
		delete(kv, "brokerId")
		_, p, _ := strings.Cut(r.addr, "127.0.0.1:")
		for k, v := range map[string]string{
			"brokerClusterName":          g.cluster,
			"brokerName":                 g.brokerName,
			"listenPort":                 p,
			"namesrvAddr":                g.ns,
			"storePathRootDir":           filepath.Join(g.dir, r.id),
			"registerNameServerPeriod":   "1000",
			"enableDLegerCommitLog":      "true",
			"dLegerGroup":                g.brokerName,
			"dLegerSelfId":               r.id,
			"dLegerPeers":                nw.PeersString(r.id),
			"dLegerHeartbeatIntervalMs":  strconv.Itoa(dlHeartbeatMs),
			"dLegerElectionTimeoutMs":    strconv.Itoa(dlElectionMs),
			"dLegerElectionTimeoutMaxMs": strconv.Itoa(dlElectionMaxMs),
			// Short delay levels so delayed and retried messages come
			// back within a test (retries start at level 3).
			"messageDelayLevel": "1s 1s 1s 1s 1s 2s 2s 2s 2s 2s 2s 2s 2s 2s 2s 2s 2s 2s",
		} {
			kv[k] = v
		}
		for k, v := range overrides {
			kv[k] = v
		}
		order := make([]string, 0, len(kv))
		for k := range kv {
			order = append(order, k)
		}
		sort.Strings(order)
		r.conf = filepath.Join(g.dir, r.id+".conf")
		writeConf(t, r.conf, kv, order)
	}
	t.Cleanup(func() {
		for _, r := range g.reps {
			g.mu.Lock()
			p, paused := r.proc, r.paused
			g.mu.Unlock()
			if p == nil {
				continue
			}
			if paused {
				_ = p.cmd.Process.Signal(syscall.SIGCONT)
			}
			p.stop(5 * time.Second)
			if t.Failed() {
				t.Logf("replica %s (%s) output:\n%s", r.id, r.addr, tail(p.out.String()))
			}
		}
	})
	for _, r := range g.reps {
		g.start(r)
	}
	for _, r := range g.reps {
		waitTCP(t, r.proc, r.addr, 30*time.Second)
	}
	g.waitHealthy(30 * time.Second)
	return g
}

// start launches r's process (no wait).
func (g *dlGroup) start(r *dlReplica) {
	g.t.Helper()
	p := startProcess(g.t, "broker-"+r.id, filepath.Join(binaries(g.t), "broker"), "-c", r.conf)
	g.mu.Lock()
	r.proc, r.paused = p, false
	g.mu.Unlock()
}

// restart starts a killed replica again over the same config and data and
// waits until it serves.
func (g *dlGroup) restart(r *dlReplica) {
	g.t.Helper()
	if r.proc != nil && r.proc.running() {
		g.t.Fatalf("restart of running replica %s", r.id)
	}
	g.start(r)
	waitTCP(g.t, r.proc, r.addr, 30*time.Second)
}

// kill sends SIGKILL to r and waits for its exit.
func (g *dlGroup) kill(r *dlReplica) {
	g.mu.Lock()
	p := r.proc
	r.paused = false
	g.mu.Unlock()
	p.kill()
}

// pause stops r with SIGSTOP; resume continues it.
func (g *dlGroup) pause(r *dlReplica) {
	g.mu.Lock()
	defer g.mu.Unlock()
	_ = r.proc.cmd.Process.Signal(syscall.SIGSTOP)
	r.paused = true
}

func (g *dlGroup) resume(r *dlReplica) {
	g.mu.Lock()
	defer g.mu.Unlock()
	_ = r.proc.cmd.Process.Signal(syscall.SIGCONT)
	r.paused = false
}

func (g *dlGroup) alive(r *dlReplica) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return r.proc != nil && r.proc.running() && !r.paused
}

func (g *dlGroup) byAddr(addr string) *dlReplica {
	for _, r := range g.reps {
		if r.addr == addr {
			return r
		}
	}
	return nil
}

func (g *dlGroup) byID(id string) *dlReplica {
	for _, r := range g.reps {
		if r.id == id {
			return r
		}
	}
	return nil
}

// others are the replicas other than r.
func (g *dlGroup) others(r *dlReplica) []*dlReplica {
	var out []*dlReplica
	for _, o := range g.reps {
		if o != r {
			out = append(out, o)
		}
	}
	return out
}

// invoke sends one request with a bounded timeout.
func (g *dlGroup) invoke(addr string, code int16, ext remoting.Fields, body []byte, timeout time.Duration) (*remoting.RemotingCommand, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return g.client.InvokeSync(ctx, addr, remoting.NewRequest(code, ext, body), timeout)
}

// brokerAddrs is the name server's view of the group: brokerId → address
// (nil when the group is not registered or the name server did not answer).
func (g *dlGroup) brokerAddrs() map[int64]string {
	resp, err := g.invoke(g.ns, protocol.GetBrokerClusterInfo, remoting.Fields{}, nil, time.Second)
	if err != nil || resp.Code != protocol.Success {
		return nil
	}
	ci, err := protocol.DecodeClusterInfo(resp.Body)
	if err != nil {
		return nil
	}
	return ci.BrokerAddrTable[g.brokerName].BrokerAddrs
}

// masterAddr is the address the name server has as brokerId 0 ("" if none).
func (g *dlGroup) masterAddr() string { return g.brokerAddrs()[protocol.MasterID] }

// runtime is r's GET_BROKER_RUNTIME_INFO table (nil when it does not
// answer within 1 s).
func (g *dlGroup) runtime(r *dlReplica) map[string]string {
	resp, err := g.invoke(r.addr, protocol.GetBrokerRuntimeInfo, remoting.Fields{}, nil, time.Second)
	if err != nil || resp.Code != protocol.Success {
		return nil
	}
	var kv struct {
		Table map[string]string `json:"table"`
	}
	if json.Unmarshal(resp.Body, &kv) != nil {
		return nil
	}
	return kv.Table
}

func (g *dlGroup) runtimeInt(r *dlReplica, key string) (int64, bool) {
	rt := g.runtime(r)
	if rt == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(rt[key], 10, 64)
	return n, err == nil
}

// leader is the replica the name server has as master and that itself
// reports dledgerRole LEADER, or nil.
func (g *dlGroup) leader() *dlReplica {
	r := g.byAddr(g.masterAddr())
	if r == nil || !g.alive(r) {
		return nil
	}
	if rt := g.runtime(r); rt == nil || rt["dledgerRole"] != "LEADER" {
		return nil
	}
	return r
}

// waitLeader waits until a leader other than not is registered as master.
func (g *dlGroup) waitLeader(timeout time.Duration, not *dlReplica) *dlReplica {
	g.t.Helper()
	var l *dlReplica
	eventually(g.t, timeout, "a DLedger leader registered as brokerId 0", func() bool {
		l = g.leader()
		return l != nil && l != not
	})
	return l
}

// waitHealthy waits for a leader registered as master and every live
// replica registered (followers as selfIndex+1) and caught up with it.
func (g *dlGroup) waitHealthy(timeout time.Duration) *dlReplica {
	g.t.Helper()
	deadline := time.Now().Add(timeout)
	l := g.waitLeader(timeout, nil)
	eventually(g.t, time.Until(deadline), "every live replica registered and caught up", func() bool {
		addrs := g.brokerAddrs()
		l = g.leader()
		if l == nil {
			return false
		}
		// The leader's committed index first: a follower read afterwards
		// that has reached it is caught up (writes may go on meanwhile,
		// e.g. replicated consumer offsets).
		committed, ok := g.runtimeInt(l, "dledgerCommittedIndex")
		if !ok {
			return false
		}
		for _, r := range g.reps {
			if !g.alive(r) || r == l {
				continue
			}
			if addrs[int64(r.idx+1)] != r.addr || !g.caughtUpTo(r, l, committed) {
				return false
			}
		}
		return true
	})
	return l
}

// caughtUp reports whether r's ledger end and committed index equal the
// leader's (read from both runtime tables; for a group without writes).
func (g *dlGroup) caughtUp(r, leader *dlReplica) bool {
	rt, lrt := g.runtime(r), g.runtime(leader)
	if rt == nil || lrt == nil || lrt["dledgerRole"] != "LEADER" || rt["dledgerRole"] != "FOLLOWER" {
		return false
	}
	return rt["dledgerLedgerEndIndex"] == lrt["dledgerLedgerEndIndex"] && rt["dledgerCommittedIndex"] == lrt["dledgerCommittedIndex"] &&
		rt["dledgerLeaderId"] == leader.id
}

// caughtUpTo reports whether r follows leader and has stored and
// committed everything up to index (for a group still taking writes, where
// the indexes of leader and follower are never equal at one instant).
func (g *dlGroup) caughtUpTo(r, leader *dlReplica, index int64) bool {
	rt := g.runtime(r)
	if rt == nil || rt["dledgerRole"] != "FOLLOWER" || rt["dledgerLeaderId"] != leader.id {
		return false
	}
	end, err1 := strconv.ParseInt(rt["dledgerLedgerEndIndex"], 10, 64)
	com, err2 := strconv.ParseInt(rt["dledgerCommittedIndex"], 10, 64)
	return err1 == nil && err2 == nil && end >= index && com >= index
}

// view is a classic-harness cluster pointing at the current leader, for
// the helpers of broker_test.go (createTopic, newProducer,
// startPushConsumer, maxOffset, pullAll).
func (g *dlGroup) view(t *testing.T, leader *dlReplica) *cluster {
	return &cluster{t: t, dir: g.dir, ns: g.ns, broker: leader.addr, brokerName: g.brokerName}
}

// sendRaw sends one message with SEND_MESSAGE to addr and returns the
// response (the broker's msgId is in ext "msgId").
func (g *dlGroup) sendRaw(addr, topic string, queueID int, tag, body string, timeout time.Duration) (*remoting.RemotingCommand, error) {
	props := ""
	if tag != "" {
		props = "TAGS\x01" + tag + "\x02"
	}
	return g.invoke(addr, protocol.SendMessage, remoting.FieldsOf(
		"producerGroup", "dlRawProducer",
		"topic", topic,
		"defaultTopic", "TBW102",
		"defaultTopicQueueNums", "4",
		"queueId", strconv.Itoa(queueID),
		"sysFlag", "0",
		"bornTimestamp", strconv.FormatInt(time.Now().UnixMilli(), 10),
		"flag", "0",
		"properties", props,
		"reconsumeTimes", "0",
		"unitMode", "false",
		"batch", "false",
	), []byte(body), timeout)
}

// createTopicRaw creates topic on addr with UPDATE_AND_CREATE_TOPIC.
func (g *dlGroup) createTopicRaw(addr, topic string, read, write, perm int) error {
	resp, err := g.invoke(addr, protocol.UpdateAndCreateTopic, remoting.FieldsOf(
		"topic", topic,
		"defaultTopic", "TBW102",
		"readQueueNums", strconv.Itoa(read),
		"writeQueueNums", strconv.Itoa(write),
		"perm", strconv.Itoa(perm),
		"topicFilterType", "SINGLE_TAG",
		"topicSysFlag", "0",
		"order", "false",
	), nil, 5*time.Second)
	if err != nil {
		return err
	}
	if resp.Code != protocol.Success {
		return fmt.Errorf("create topic %s: code %d %s", topic, resp.Code, resp.Remark)
	}
	return nil
}

// topicConfig reads topic's config from r (GET_TOPIC_CONFIG).
func (g *dlGroup) topicConfig(r *dlReplica, topic string) (map[string]any, error) {
	resp, err := g.invoke(r.addr, protocol.GetTopicConfig, remoting.FieldsOf("topic", topic), nil, 2*time.Second)
	if err != nil {
		return nil, err
	}
	if resp.Code != protocol.Success {
		return nil, fmt.Errorf("code %d %s", resp.Code, resp.Remark)
	}
	var m map[string]any
	err = json.Unmarshal(resp.Body, &m)
	return m, err
}

// queryOffset is the committed offset of group on topic:queue at r (-1 if
// none).
func (g *dlGroup) queryOffset(r *dlReplica, group, topic string, queue int) (int64, error) {
	resp, err := g.invoke(r.addr, protocol.QueryConsumerOffset, remoting.FieldsOf("consumerGroup", group, "topic", topic, "queueId", strconv.Itoa(queue)), nil, 2*time.Second)
	if err != nil {
		return 0, err
	}
	if resp.Code != protocol.Success {
		return -1, nil
	}
	return strconv.ParseInt(resp.ExtFields.Get("offset"), 10, 64)
}

// maxOffsetAt is GET_MAX_OFFSET of topic:queue at r.
func (g *dlGroup) maxOffsetAt(r *dlReplica, topic string, queue int) (int64, error) {
	resp, err := g.invoke(r.addr, protocol.GetMaxOffset, remoting.FieldsOf("topic", topic, "queueId", strconv.Itoa(queue)), nil, 2*time.Second)
	if err != nil {
		return 0, err
	}
	if resp.Code != protocol.Success {
		return 0, fmt.Errorf("GET_MAX_OFFSET %s:%d: code %d %s", topic, queue, resp.Code, resp.Remark)
	}
	return strconv.ParseInt(resp.ExtFields.Get("offset"), 10, 64)
}

// readAll reads every message of topic's queues from r with raw pulls and
// returns them in queue order.
func (g *dlGroup) readAll(t *testing.T, r *dlReplica, topic string, queues int) []*store.MessageExt {
	t.Helper()
	var out []*store.MessageExt
	for q := 0; q < queues; q++ {
		max, err := g.maxOffsetAt(r, topic, q)
		if err != nil {
			t.Fatal(err)
		}
		for off := int64(0); off < max; {
			resp, err := g.invoke(r.addr, protocol.PullMessage, remoting.FieldsOf(
				"consumerGroup", "dlReadAll",
				"topic", topic,
				"queueId", strconv.Itoa(q),
				"queueOffset", strconv.FormatInt(off, 10),
				"maxMsgNums", "32",
				"sysFlag", "4",
				"commitOffset", "0",
				"suspendTimeoutMillis", "0",
				"subscription", "*",
				"subVersion", "0",
				"expressionType", "TAG",
			), nil, 5*time.Second)
			if err != nil {
				t.Fatalf("pull %s:%d@%d from %s: %v", topic, q, off, r.id, err)
			}
			next, _ := strconv.ParseInt(resp.ExtFields.Get("nextBeginOffset"), 10, 64)
			switch resp.Code {
			case protocol.Success:
				msgs, err := store.DecodeMessages(resp.Body, true)
				if err != nil {
					t.Fatalf("decode pull body: %v", err)
				}
				for _, m := range msgs {
					if m.QueueOffset != off {
						t.Fatalf("%s:%d at %s: message at position %d has queue offset %d", topic, q, r.id, off, m.QueueOffset)
					}
					off++
				}
				out = append(out, msgs...)
				continue
			case protocol.PullRetryImmediately:
			default:
				t.Fatalf("pull %s:%d@%d from %s: code %d remark %q", topic, q, off, r.id, resp.Code, resp.Remark)
			}
			if next <= off {
				t.Fatalf("pull %s:%d@%d from %s made no progress (next %d)", topic, q, off, r.id, next)
			}
			off = next
		}
	}
	return out
}

// ackLog records acknowledged sends: body → msgId.
type ackLog struct {
	mu       sync.Mutex
	acked    map[string]string
	failures int
	lastAck  time.Time
}

func newAckLog() *ackLog { return &ackLog{acked: map[string]string{}} }

func (a *ackLog) add(body, msgID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.acked[body] = msgID
	a.lastAck = time.Now()
}

func (a *ackLog) snapshot() map[string]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]string, len(a.acked))
	for k, v := range a.acked {
		out[k] = v
	}
	return out
}

func (a *ackLog) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.acked)
}

// sendStream runs `workers` sync senders of raw SEND_MESSAGEs to topic
// until stop is called; each follows the name server's master after a
// failure (as a client refreshing its route would). Bodies are
// prefix-w-i. It records every acknowledged message and when acks resumed
// after a failure.
type sendStream struct {
	acks   *ackLog
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu          sync.Mutex
	firstFail   time.Time // first failure after mark
	firstOKFail time.Time // first ack after firstFail
	mark        time.Time
}

func (g *dlGroup) startStream(t *testing.T, topic string, queues, workers int, prefix string) *sendStream {
	ctx, cancel := context.WithCancel(context.Background())
	s := &sendStream{acks: newAckLog(), cancel: cancel}
	t.Cleanup(s.stop) // also when t fails before stopping it
	for w := 0; w < workers; w++ {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			addr := g.masterAddr()
			for i := 0; ctx.Err() == nil; i++ {
				body := fmt.Sprintf("%s-%d-%d", prefix, w, i)
				var resp *remoting.RemotingCommand
				var err error
				if addr != "" {
					resp, err = g.sendRaw(addr, topic, (w+i)%queues, "TagS", body, 2*time.Second)
				}
				if addr != "" && err == nil && resp.Code == protocol.Success {
					s.acks.add(body, resp.ExtFields.Get("msgId"))
					s.mu.Lock()
					if !s.firstFail.IsZero() && s.firstOKFail.IsZero() {
						s.firstOKFail = time.Now()
					}
					s.mu.Unlock()
					continue
				}
				s.mu.Lock()
				if s.firstFail.IsZero() && !s.mark.IsZero() {
					s.firstFail = time.Now()
				}
				s.acks.failures++
				s.mu.Unlock()
				select {
				case <-ctx.Done():
				case <-time.After(20 * time.Millisecond):
				}
				addr = g.masterAddr()
			}
		}()
	}
	return s
}

// markFault starts watching for the first failure and the first ack after
// it (recovery time seen by a sender).
func (s *sendStream) markFault() {
	s.mu.Lock()
	s.mark = time.Now()
	s.mu.Unlock()
}

// recovered returns when the first ack after the first failure came, zero
// if not yet.
func (s *sendStream) recovered() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.firstOKFail
}

// stop stops the senders and waits for them (idempotent).
func (s *sendStream) stop() {
	s.cancel()
	s.wg.Wait()
}

// checkAllPresent fails t unless every acknowledged body is among msgs
// with the same msgId; it returns how many bodies occur more than once.
func checkAllPresent(t *testing.T, what string, acked map[string]string, msgs []*store.MessageExt) (dups int) {
	t.Helper()
	seen := map[string]int{}
	ids := map[string]string{}
	for _, m := range msgs {
		b := string(m.Body)
		seen[b]++
		ids[b] = m.MsgID
	}
	var lost []string
	for b, id := range acked {
		if seen[b] == 0 {
			lost = append(lost, b)
		} else if id != "" && ids[b] != id {
			t.Errorf("%s: %q acknowledged with msgId %s, stored with %s", what, b, id, ids[b])
		}
	}
	for _, n := range seen {
		if n > 1 {
			dups += n - 1
		}
	}
	if len(lost) > 0 {
		sort.Strings(lost)
		if len(lost) > 10 {
			lost = append(lost[:10], "...")
		}
		t.Errorf("%s: %d of %d acknowledged messages lost: %v", what, len(lost), len(acked), lost)
	}
	return dups
}
