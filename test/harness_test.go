package test

// End-to-end harness: builds bin/namesrv and bin/broker once per test run
// into a temporary directory, starts them as separate processes on
// OS-chosen loopback ports, waits until they serve, and kills them and
// removes their directories when the test ends. Every wait is bounded.

import (
	"bytes"
	"context"
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
	"testing"
	"time"

	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
	"github.com/rmqd/rmqd/test/freeport"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds cmd/namesrv, cmd/broker and test/clientdriver (without
// the race detector) once for the whole test run.
func binaries(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rmqd-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binDir = dir
		cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "../cmd/namesrv", "../cmd/broker", "./clientdriver")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("building binaries: %v", buildErr)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// freePort returns a loopback port free now for a process started later
// (see package freeport); with vip port-2 is free too.
func freePort(t testing.TB, vip bool) int {
	t.Helper()
	p, err := freeport.Port(vip)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// process is one running binary.
type process struct {
	name    string
	cmd     *exec.Cmd
	out     *lockedBuffer
	done    chan struct{}
	exitErr error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 4<<20 { // keep the tail bounded
		l.b.Reset()
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startProcess(t testing.TB, name, bin string, args ...string) *process {
	t.Helper()
	p := &process{name: name, out: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.exitErr = p.cmd.Wait()
		close(p.done)
	}()
	return p
}

func (p *process) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the exit.
func (p *process) kill() {
	if p.running() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

// stop sends SIGTERM, waits up to timeout, then kills.
func (p *process) stop(timeout time.Duration) {
	if p.running() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.kill()
	}
}

// waitTCP waits until addr accepts connections or the process died.
func waitTCP(t testing.TB, p *process, addr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if !p.running() {
			t.Fatalf("%s exited (%v) before listening on %s; output:\n%s", p.name, p.exitErr, addr, tail(p.out.String()))
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not listening on %s after %v; output:\n%s", p.name, addr, timeout, tail(p.out.String()))
}

func tail(s string) string {
	const max = 6000
	if len(s) > max {
		return "..." + s[len(s)-max:]
	}
	return s
}

// eventually polls cond every 50 ms until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func writeConf(t testing.TB, path string, kv map[string]string, order []string) {
	t.Helper()
	var b strings.Builder
	for _, k := range order {
		if v, ok := kv[k]; ok {
			fmt.Fprintf(&b, "%s=%s\n", k, v)
		}
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// cluster is one name server and one broker started from the built
// binaries, with the broker's config kept so it can be restarted over the
// same store.
type cluster struct {
	t          testing.TB
	dir        string
	ns         string // name server address
	broker     string // broker address (brokerIP1:listenPort)
	brokerName string
	nsProc     *process
	brProc     *process
	brConf     string
}

// testBrokerDefaults are the settings every e2e broker starts with: small
// commitlog files, a short registration period and offset flush interval.
func testBrokerDefaults() map[string]string {
	return map[string]string{
		"brokerClusterName":           "DefaultCluster",
		"brokerName":                  "broker-a",
		"brokerId":                    "0",
		"brokerIP1":                   "127.0.0.1",
		"mappedFileSizeCommitLog":     strconv.Itoa(8 << 20),
		"autoCreateTopicEnable":       "true",
		"autoCreateSubscriptionGroup": "true",
		"defaultTopicQueueNums":       "4",
		"registerNameServerPeriod":    "2000",
		"flushConsumerOffsetInterval": "500",
	}
}

// startCluster starts a name server and a broker (overrides on top of
// testBrokerDefaults) and waits until the broker has registered (the name
// server has a route for the broker's own topic). Both processes are
// stopped and the directory removed when the test ends.
func startCluster(t *testing.T, overrides map[string]string) *cluster {
	t.Helper()
	bin := binaries(t)
	c := &cluster{t: t, dir: t.TempDir()}
	nsPort := freePort(t, false)
	nsConf := filepath.Join(c.dir, "namesrv.conf")
	writeConf(t, nsConf, map[string]string{
		"listenPort":      strconv.Itoa(nsPort),
		"kvConfigPath":    filepath.Join(c.dir, "ns", "kvConfig.json"),
		"configStorePath": filepath.Join(c.dir, "ns", "namesrv.properties"),
	}, []string{"listenPort", "kvConfigPath", "configStorePath"})
	c.nsProc = startProcess(t, "namesrv", filepath.Join(bin, "namesrv"), "-c", nsConf)
	t.Cleanup(func() { c.nsProc.stop(5 * time.Second) })
	c.ns = fmt.Sprintf("127.0.0.1:%d", nsPort)
	waitTCP(t, c.nsProc, c.ns, 15*time.Second)

	port := freePort(t, true)
	kv := testBrokerDefaults()
	kv["listenPort"] = strconv.Itoa(port)
	kv["namesrvAddr"] = c.ns
	kv["storePathRootDir"] = filepath.Join(c.dir, "store")
	for k, v := range overrides {
		kv[k] = v
	}
	c.brokerName = kv["brokerName"]
	order := make([]string, 0, len(kv))
	for k := range kv {
		order = append(order, k)
	}
	sort.Strings(order)
	c.brConf = filepath.Join(c.dir, "broker.conf")
	writeConf(t, c.brConf, kv, order)
	c.broker = fmt.Sprintf("127.0.0.1:%d", port)
	c.startBroker()
	t.Cleanup(func() {
		if c.brProc != nil {
			c.brProc.stop(10 * time.Second)
			if t.Failed() {
				t.Logf("broker output:\n%s", tail(c.brProc.out.String()))
			}
		}
	})
	return c
}

// startBroker (re)starts the broker process and waits until it listens and
// is registered with the name server.
func (c *cluster) startBroker() {
	c.t.Helper()
	c.brProc = startProcess(c.t, "broker", filepath.Join(binaries(c.t), "broker"), "-c", c.brConf)
	waitTCP(c.t, c.brProc, c.broker, 30*time.Second)
	eventually(c.t, 20*time.Second, "broker registered with the name server", func() bool {
		resp, err := c.invoke(c.ns, remoting.NewRequest(protocol.GetRouteinfoByTopic, remoting.FieldsOf("topic", c.brokerName), nil))
		return err == nil && resp.Code == protocol.Success
	})
}

// restartBrokerOnNewPort restarts the broker over the same store on a new
// port. (The old port cannot be reused at once: the killed process's
// sockets linger and the remoting server does not set SO_REUSEADDR.)
func (c *cluster) restartBrokerOnNewPort() {
	c.t.Helper()
	data, err := os.ReadFile(c.brConf)
	if err != nil {
		c.t.Fatal(err)
	}
	port := freePort(c.t, true)
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if !strings.HasPrefix(l, "listenPort=") {
			lines = append(lines, l)
		}
	}
	lines = append(lines, "listenPort="+strconv.Itoa(port))
	if err := os.WriteFile(c.brConf, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		c.t.Fatal(err)
	}
	c.broker = fmt.Sprintf("127.0.0.1:%d", port)
	c.startBroker()
}

// killBroker sends SIGKILL to the broker.
func (c *cluster) killBroker() {
	c.brProc.kill()
}

var (
	rawClientOnce sync.Once
	rawClient     *remoting.Client
)

// invoke sends one raw remoting request with our own client (5 s timeout).
func (c *cluster) invoke(addr string, req *remoting.RemotingCommand) (*remoting.RemotingCommand, error) {
	rawClientOnce.Do(func() { rawClient = remoting.NewClient(remoting.ClientConfig{}) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return rawClient.InvokeSync(ctx, addr, req, 5*time.Second)
}

// brokerRequest sends a raw request to the broker and fails the test on a
// transport error.
func (c *cluster) brokerRequest(code int16, ext remoting.Fields, body []byte) *remoting.RemotingCommand {
	c.t.Helper()
	resp, err := c.invoke(c.broker, remoting.NewRequest(code, ext, body))
	if err != nil {
		c.t.Fatalf("request %d to broker: %v", code, err)
	}
	return resp
}
