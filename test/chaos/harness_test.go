//go:build chaos

package chaos

// The harness: builds cmd/namesrv and cmd/broker once per run, starts a
// name server and a 3-replica DLedger group as separate processes on
// OS-chosen loopback ports with every directed peer link a→b through a
// faultproxy.Network (replica a's dLegerPeers has its own real peer
// address and the proxies of its links to the others), and offers kill -9,
// SIGSTOP/SIGCONT, graceful stop, restart over the same config and data,
// the leader (brokerId 0 in the name server and dledgerRole LEADER), and
// bounded waits. Process output goes to files in the schedule's directory.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
	"github.com/rmqd/rmqd/test/faultproxy"
	"github.com/rmqd/rmqd/test/freeport"
)

// DLedger timers of the group (the brokers are built without the race
// detector; the machine has 2 shared cores).
const (
	heartbeatMs   = 100
	electionMs    = 500
	electionMaxMs = 800
)

// buildBinaries builds the name server and the broker into dir.
func buildBinaries(dir string) error {
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator),
		"github.com/rmqd/rmqd/cmd/namesrv", "github.com/rmqd/rmqd/cmd/broker")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	return nil
}

// proc is one running binary; its output is appended to a log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func startProc(name, bin, logPath string, args ...string) (*proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f, "\n==== chaos: start %s %s at %s ====\n", bin, strings.Join(args, " "), time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	// Own process group (a terminal's ^C goes to the test only, which
	// kills its children) and SIGKILL if the test process dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *proc) signal(s syscall.Signal) {
	if p.running() {
		_ = p.cmd.Process.Signal(s)
	}
}

// kill sends SIGKILL and waits (bounded) for the exit.
func (p *proc) kill() {
	p.signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

// stop continues a stopped process, sends SIGTERM, waits up to timeout,
// then kills.
func (p *proc) stop(timeout time.Duration) {
	p.signal(syscall.SIGCONT)
	p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.kill()
	}
}

func writeConf(path string, kv map[string]string) error {
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, kv[k])
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// waitTCP waits until addr accepts connections, the process exits, or
// timeout passes.
func waitTCP(p *proc, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if !p.running() {
			return fmt.Errorf("%s exited (%v) before listening on %s", p.name, p.err, addr)
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not listening on %s after %v", p.name, addr, timeout)
}

// waitFor polls cond every 50 ms until it holds or timeout passes.
func waitFor(timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// replica is one broker process of the group.
type replica struct {
	id       string // dLegerSelfId
	idx      int    // position in dLegerPeers
	addr     string // broker remoting address
	peerAddr string // real DLedger peer listen address
	conf     string
	log      string
	proc     *proc
	paused   bool
}

// group is a name server and a 3-replica DLedger broker group.
type group struct {
	dir, bin   string
	ns         string
	nsProc     *proc
	nsLog      string
	brokerName string
	reps       []*replica
	net        *faultproxy.Network
	client     *remoting.Client // control requests only

	mu sync.Mutex // guards proc and paused of the replicas
}

// startGroup starts the name server and the three replicas and waits for
// a leader registered as brokerId 0 with both followers caught up.
func startGroup(dir, bin string, seed int64) (*group, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	g := &group{dir: dir, bin: bin, brokerName: "chaos-broker",
		client: remoting.NewClient(remoting.ClientConfig{ConnectTimeout: 500 * time.Millisecond})}
	ok := false
	defer func() {
		if !ok {
			g.close()
		}
	}()
	used := map[int]bool{}
	port := func(vip bool) (int, error) {
		for {
			p, err := freeport.Port(vip)
			if err != nil {
				return 0, err
			}
			if !used[p] && !used[p-2] && !used[p+2] {
				used[p] = true
				if vip {
					used[p-2] = true
				}
				return p, nil
			}
		}
	}
	nsPort, err := port(false)
	if err != nil {
		return nil, err
	}
	nsConf := filepath.Join(dir, "namesrv.conf")
	if err := writeConf(nsConf, map[string]string{
		"listenPort":      strconv.Itoa(nsPort),
		"kvConfigPath":    filepath.Join(dir, "ns", "kvConfig.json"),
		"configStorePath": filepath.Join(dir, "ns", "namesrv.properties"),
	}); err != nil {
		return nil, err
	}
	g.nsLog = filepath.Join(dir, "namesrv.log")
	if g.nsProc, err = startProc("namesrv", filepath.Join(bin, "namesrv"), g.nsLog, "-c", nsConf); err != nil {
		return nil, err
	}
	g.ns = fmt.Sprintf("127.0.0.1:%d", nsPort)
	if err := waitTCP(g.nsProc, g.ns, 15*time.Second); err != nil {
		return nil, err
	}
	real := map[string]string{}
	for i := 0; i < 3; i++ {
		r := &replica{id: fmt.Sprintf("n%d", i), idx: i}
		bp, err := port(true)
		if err != nil {
			return nil, err
		}
		pp, err := port(false)
		if err != nil {
			return nil, err
		}
		r.addr = fmt.Sprintf("127.0.0.1:%d", bp)
		r.peerAddr = fmt.Sprintf("127.0.0.1:%d", pp)
		real[r.id] = r.peerAddr
		g.reps = append(g.reps, r)
	}
	if g.net, err = faultproxy.NewNetwork(real, faultproxy.WithSeed(seed)); err != nil {
		return nil, fmt.Errorf("fault proxies: %w", err)
	}
	for _, r := range g.reps {
		_, p, _ := strings.Cut(r.addr, "127.0.0.1:")
		kv := map[string]string{
			"brokerClusterName":           "ChaosCluster",
			"brokerName":                  g.brokerName,
			"brokerIP1":                   "127.0.0.1",
			"listenPort":                  p,
			"namesrvAddr":                 g.ns,
			"storePathRootDir":            filepath.Join(dir, r.id),
			"mappedFileSizeCommitLog":     strconv.Itoa(8 << 20),
			"autoCreateTopicEnable":       "true",
			"autoCreateSubscriptionGroup": "true",
			"defaultTopicQueueNums":       "4",
			"registerNameServerPeriod":    "1000",
			"flushConsumerOffsetInterval": "500",
			"enableDLegerCommitLog":       "true",
			"dLegerGroup":                 g.brokerName,
			"dLegerSelfId":                r.id,
			"dLegerPeers":                 g.net.PeersString(r.id),
			"dLegerHeartbeatIntervalMs":   strconv.Itoa(heartbeatMs),
			"dLegerElectionTimeoutMs":     strconv.Itoa(electionMs),
			"dLegerElectionTimeoutMaxMs":  strconv.Itoa(electionMaxMs),
		}
		r.conf = filepath.Join(dir, r.id+".conf")
		r.log = filepath.Join(dir, r.id+".log")
		if err := writeConf(r.conf, kv); err != nil {
			return nil, err
		}
	}
	for _, r := range g.reps {
		if err := g.start(r); err != nil {
			return nil, err
		}
	}
	for _, r := range g.reps {
		if err := waitTCP(r.proc, r.addr, 30*time.Second); err != nil {
			return nil, err
		}
	}
	if _, err := g.waitHealthy(30 * time.Second); err != nil {
		return nil, err
	}
	ok = true
	return g, nil
}

// start launches r's process without waiting.
func (g *group) start(r *replica) error {
	p, err := startProc("broker-"+r.id, filepath.Join(g.bin, "broker"), r.log, "-c", r.conf)
	if err != nil {
		return err
	}
	g.mu.Lock()
	r.proc, r.paused = p, false
	g.mu.Unlock()
	return nil
}

// restart starts a stopped replica again over the same config and data
// and waits until it listens; a start that fails at once (a port of the
// previous process not yet free) is retried.
func (g *group) restart(r *replica) error {
	var err error
	for i := 0; i < 20; i++ {
		if err = g.start(r); err != nil {
			return err
		}
		if err = waitTCP(r.proc, r.addr, 30*time.Second); err == nil {
			return nil
		}
		r.proc.kill()
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("restart %s: %w", r.id, err)
}

func (g *group) kill(r *replica) {
	g.mu.Lock()
	p := r.proc
	r.paused = false
	g.mu.Unlock()
	if p != nil {
		p.kill()
	}
}

func (g *group) term(r *replica) {
	g.mu.Lock()
	p := r.proc
	r.paused = false
	g.mu.Unlock()
	if p != nil {
		p.stop(15 * time.Second)
	}
}

func (g *group) pause(r *replica) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r.proc.signal(syscall.SIGSTOP)
	r.paused = true
}

func (g *group) resume(r *replica) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r.proc.signal(syscall.SIGCONT)
	r.paused = false
}

func (g *group) alive(r *replica) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return r.proc != nil && r.proc.running() && !r.paused
}

// close stops every process and the proxies.
func (g *group) close() {
	var wg sync.WaitGroup
	for _, r := range g.reps {
		g.mu.Lock()
		p := r.proc
		g.mu.Unlock()
		if p != nil {
			wg.Add(1)
			go func() { defer wg.Done(); p.stop(5 * time.Second) }()
		}
	}
	wg.Wait()
	if g.nsProc != nil {
		g.nsProc.stop(5 * time.Second)
	}
	if g.net != nil {
		g.net.Close()
	}
	g.client.Close()
}

func (g *group) invoke(addr string, code int16, ext remoting.Fields, body []byte, timeout time.Duration) (*remoting.RemotingCommand, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return g.client.InvokeSync(ctx, addr, remoting.NewRequest(code, ext, body), timeout)
}

// masterAddr asks the name server for the group's brokerId 0 ("" if none).
func masterAddr(c *remoting.Client, ns, brokerName string) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	resp, err := c.InvokeSync(ctx, ns, remoting.NewRequest(protocol.GetBrokerClusterInfo, remoting.Fields{}, nil), time.Second)
	if err != nil || resp.Code != protocol.Success {
		return ""
	}
	ci, err := protocol.DecodeClusterInfo(resp.Body)
	if err != nil {
		return ""
	}
	return ci.BrokerAddrTable[brokerName].BrokerAddrs[protocol.MasterID]
}

// runtime is r's GET_BROKER_RUNTIME_INFO table (nil if no answer in 1 s).
func (g *group) runtime(r *replica) map[string]string {
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

func (g *group) byAddr(addr string) *replica {
	for _, r := range g.reps {
		if r.addr == addr {
			return r
		}
	}
	return nil
}

// leader is the replica the name server has as master that itself reports
// dledgerRole LEADER, or nil.
func (g *group) leader() *replica {
	r := g.byAddr(masterAddr(g.client, g.ns, g.brokerName))
	if r == nil || !g.alive(r) {
		return nil
	}
	if rt := g.runtime(r); rt == nil || rt["dledgerRole"] != "LEADER" {
		return nil
	}
	return r
}

func (g *group) waitLeader(timeout time.Duration) (*replica, error) {
	var l *replica
	err := waitFor(timeout, "a leader registered as brokerId 0", func() bool { l = g.leader(); return l != nil })
	return l, err
}

// waitHealthy waits until a leader is registered and every replica runs,
// follows it, and has appended at least what the leader had committed.
func (g *group) waitHealthy(timeout time.Duration) (*replica, error) {
	var l *replica
	err := waitFor(timeout, "a leader and every replica following and caught up", func() bool {
		l = g.leader()
		if l == nil {
			return false
		}
		lrt := g.runtime(l)
		if lrt == nil {
			return false
		}
		committed, _ := strconv.ParseInt(lrt["dledgerCommittedIndex"], 10, 64)
		for _, r := range g.reps {
			if r == l {
				continue
			}
			if !g.alive(r) {
				return false
			}
			rt := g.runtime(r)
			if rt == nil || rt["dledgerRole"] != "FOLLOWER" || rt["dledgerLeaderId"] != l.id {
				return false
			}
			end, _ := strconv.ParseInt(rt["dledgerLedgerEndIndex"], 10, 64)
			if end < committed {
				return false
			}
		}
		return true
	})
	return l, err
}

func (g *group) createTopic(addr, topic string, queues int) error {
	resp, err := g.invoke(addr, protocol.UpdateAndCreateTopic, remoting.FieldsOf(
		"topic", topic,
		"defaultTopic", "TBW102",
		"readQueueNums", strconv.Itoa(queues),
		"writeQueueNums", strconv.Itoa(queues),
		"perm", "6",
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

// queryOffset is group's committed offset of topic:queue at addr (-1 if
// none).
func (g *group) queryOffset(addr, group, topic string, queue int) (int64, error) {
	resp, err := g.invoke(addr, protocol.QueryConsumerOffset, remoting.FieldsOf("consumerGroup", group, "topic", topic, "queueId", strconv.Itoa(queue)), nil, 2*time.Second)
	if err != nil {
		return 0, err
	}
	if resp.Code != protocol.Success {
		return -1, nil
	}
	return strconv.ParseInt(resp.ExtFields.Get("offset"), 10, 64)
}

// maxOffset is GET_MAX_OFFSET of topic:queue at addr.
func (g *group) maxOffset(addr, topic string, queue int) (int64, error) {
	resp, err := g.invoke(addr, protocol.GetMaxOffset, remoting.FieldsOf("topic", topic, "queueId", strconv.Itoa(queue)), nil, 2*time.Second)
	if err != nil {
		return 0, err
	}
	if resp.Code != protocol.Success {
		return 0, fmt.Errorf("GET_MAX_OFFSET %s:%d: code %d %s", topic, queue, resp.Code, resp.Remark)
	}
	return strconv.ParseInt(resp.ExtFields.Get("offset"), 10, 64)
}

// logTail is the last n lines of a file.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
