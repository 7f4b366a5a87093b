// Command natsbench is the NATS JetStream side of `make bench`: the same
// producer scenarios as `benchmark producer` (N synchronous publishers or
// an asynchronous window per publisher, fixed-size bodies), the same
// fixed-bucket histogram (benchkit/hist.go is a byte-for-byte copy of
// cmd/benchmark/benchkit/hist.go) and the same JSON keys, so
// `benchmark table` can put both side by side.
//
// It is its own module (bench/natsbench/go.mod) so that rmqd's go.mod
// never depends on nats.go.
//
//	natsbench --server nats://127.0.0.1:4222,... --stream BENCH --subject bench.x \
//	          -w 16 -s 1024 -d 15 [--async-window 256] [--replicas 3] [--json] [--server-pids PID,PID]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/rmqd/rmqd/bench/natsbench/benchkit"
)

// Result has the JSON keys of cmd/benchmark's Result.
type Result struct {
	Mode              string  `json:"mode"`
	System            string  `json:"system"`
	Client            string  `json:"client"`
	Scenario          string  `json:"scenario,omitempty"`
	Flush             string  `json:"flush,omitempty"`
	Topic             string  `json:"topic"`
	Threads           int     `json:"threads"`
	AsyncWindow       int     `json:"async_window"`
	Size              int     `json:"size"`
	DurationSec       float64 `json:"duration_s"`
	Sent              int64   `json:"sent"`
	Received          int64   `json:"received"`
	Errors            int64   `json:"errors"`
	MsgsPerSec        float64 `json:"msgs_per_sec"`
	MBPerSec          float64 `json:"mb_per_sec"`
	Latency           string  `json:"latency"`
	AvgMs             float64 `json:"avg_ms"`
	P50Ms             float64 `json:"p50_ms"`
	P99Ms             float64 `json:"p99_ms"`
	P999Ms            float64 `json:"p999_ms"`
	MaxMs             float64 `json:"max_ms"`
	BrokerCPUUsPerMsg float64 `json:"broker_cpu_us_per_msg,omitempty"`
	BrokerCPUPct      float64 `json:"broker_cpu_pct,omitempty"`
	ClientCPUUsPerMsg float64 `json:"client_cpu_us_per_msg"`
	FirstError        string  `json:"first_error,omitempty"`
}

type options struct {
	servers      string
	stream       string
	subject      string
	replicas     int
	threads      int
	size         int
	seconds      float64
	asyncWindow  int
	asJSON       bool
	scenario     string
	flush        string
	pids         string
	conns        int
	preferLeader bool
	recreate     bool
	timeout      time.Duration
	procs        int
	gcPercent    int
}

func main() {
	var o options
	fs := flag.NewFlagSet("natsbench", flag.ExitOnError)
	fs.StringVar(&o.servers, "server", "nats://127.0.0.1:4222", "comma-separated server URLs")
	fs.StringVar(&o.stream, "stream", "BENCH", "stream name (created if missing)")
	fs.StringVar(&o.subject, "subject", "bench.x", "subject to publish on (the stream takes <first token>.>)")
	fs.IntVar(&o.replicas, "replicas", 3, "stream replicas")
	fs.IntVar(&o.threads, "w", 64, "publisher goroutines")
	fs.IntVar(&o.size, "s", 128, "message body size, bytes")
	fs.Float64Var(&o.seconds, "d", 15, "duration in seconds")
	fs.IntVar(&o.asyncWindow, "async-window", 0, "publishes kept in flight per goroutine (0: synchronous publish)")
	fs.BoolVar(&o.asJSON, "json", false, "print one JSON object")
	fs.StringVar(&o.scenario, "scenario", "", "scenario label")
	fs.StringVar(&o.flush, "flush", "", "flush label")
	fs.StringVar(&o.pids, "server-pids", "", "comma-separated nats-server pids: report server CPU per message")
	fs.IntVar(&o.conns, "conns", 1, "connections shared round robin by the publishers")
	fs.BoolVar(&o.preferLeader, "prefer-leader", true, "connect to the server that leads the stream (as rmqd producers talk to the master)")
	fs.BoolVar(&o.recreate, "recreate", false, "delete the stream first")
	fs.DurationVar(&o.timeout, "timeout", 3*time.Second, "publish timeout")
	fs.IntVar(&o.procs, "procs", 1, "GOMAXPROCS of this tool (0: Go's default); the same default as `benchmark producer`")
	fs.IntVar(&o.gcPercent, "gc-percent", 400, "GOGC of this tool (0: Go's default); the same default as `benchmark producer`")
	_ = fs.Parse(os.Args[1:])
	// The same runtime settings as rmqd's producer (cmd/benchmark
	// leanRuntime): both clients share the cores with the servers they
	// measure, and a comparison that leans only one of them is not fair.
	if o.procs > 0 {
		runtime.GOMAXPROCS(o.procs)
	}
	if o.gcPercent > 0 {
		debug.SetGCPercent(o.gcPercent)
	}
	if o.threads <= 0 || o.size <= 0 || o.seconds <= 0 || o.conns <= 0 || o.asyncWindow < 0 {
		fmt.Fprintln(os.Stderr, "natsbench: -w, -s, -d and --conns must be > 0")
		os.Exit(2)
	}
	res, err := run(&o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "natsbench:", err)
		os.Exit(1)
	}
	if o.asJSON {
		b, _ := json.Marshal(res)
		fmt.Println(string(b))
		return
	}
	fmt.Printf("nats producer: %d msgs sent in %.1f s, %d errors\n", res.Sent, res.DurationSec, res.Errors)
	fmt.Printf("  throughput  %.0f msgs/s  %.2f MB/s\n", res.MsgsPerSec, res.MBPerSec)
	fmt.Printf("  send_rt     avg %.3f  p50 %.3f  p99 %.3f  p99.9 %.3f  max %.3f ms\n", res.AvgMs, res.P50Ms, res.P99Ms, res.P999Ms, res.MaxMs)
	if res.BrokerCPUUsPerMsg > 0 {
		fmt.Printf("  server CPU  %.1f µs/msg (%.0f%% of one core)\n", res.BrokerCPUUsPerMsg, res.BrokerCPUPct)
	}
	fmt.Printf("  client CPU  %.1f µs/msg\n", res.ClientCPUUsPerMsg)
}

func urls(s string) []string {
	var out []string
	for _, u := range strings.Split(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// setupStream creates the stream and returns the URL of its leader's
// server ("" when unknown).
func setupStream(o *options) (string, error) {
	all := urls(o.servers)
	nc, err := nats.Connect(strings.Join(all, ","), nats.Name("natsbench-admin"), nats.Timeout(5*time.Second))
	if err != nil {
		return "", err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if o.recreate {
		if err := js.DeleteStream(ctx, o.stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return "", fmt.Errorf("delete stream: %w", err)
		}
	}
	prefix := strings.SplitN(o.subject, ".", 2)[0]
	var st jetstream.Stream
	for {
		st, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name: o.stream, Subjects: []string{prefix + ".>"}, Replicas: o.replicas,
			Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardOld,
		})
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return "", fmt.Errorf("create stream: %w", err)
		}
		time.Sleep(500 * time.Millisecond) // JetStream meta leader not elected yet
	}
	if !o.preferLeader || len(all) < 2 {
		return "", nil
	}
	var leader string
	for ctx.Err() == nil {
		info, err := st.Info(ctx)
		if err == nil && info.Cluster != nil && info.Cluster.Leader != "" {
			leader = info.Cluster.Leader
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, u := range all {
		c, err := nats.Connect(u, nats.Name("natsbench-probe"), nats.Timeout(2*time.Second))
		if err != nil {
			continue
		}
		name := c.ConnectedServerName()
		c.Close()
		if name == leader {
			fmt.Fprintf(os.Stderr, "natsbench: stream %s leader is %s at %s: publishing there\n", o.stream, leader, u)
			return u, nil
		}
	}
	fmt.Fprintf(os.Stderr, "natsbench: stream %s leader %q not found among %v: publishing to any server\n", o.stream, leader, all)
	return "", nil
}

func run(o *options) (*Result, error) {
	leaderURL, err := setupStream(o)
	if err != nil {
		return nil, err
	}
	target := o.servers
	if leaderURL != "" {
		target = leaderURL
	}
	conns := make([]jetstream.JetStream, o.conns)
	for i := range conns {
		nc, err := nats.Connect(target, nats.Name(fmt.Sprintf("natsbench-%d", i)), nats.DontRandomize())
		if err != nil {
			return nil, err
		}
		defer nc.Close()
		js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(max(o.threads*o.asyncWindow, 1)*2))
		if err != nil {
			return nil, err
		}
		conns[i] = js
	}
	body := make([]byte, o.size)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	hists := make([]*benchkit.Histogram, o.threads)
	for i := range hists {
		hists[i] = &benchkit.Histogram{}
	}
	var errs errorLog
	var stop atomic.Bool
	pids := parsePids(o.pids)
	cpuStart := ticksOf(pids)
	selfStart := selfTicks()
	wallStart := time.Now()
	stopProgress := make(chan struct{})
	go progress(stopProgress, hists, &errs, o.size)
	start := time.Now()
	timer := time.AfterFunc(time.Duration(o.seconds*float64(time.Second)), func() { stop.Store(true) })
	defer timer.Stop()
	var wg sync.WaitGroup
	for i := range hists {
		js := conns[i%len(conns)]
		h := hists[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if o.asyncWindow == 0 {
				syncPublisher(o, js, body, h, &errs, &stop)
			} else {
				asyncPublisher(o, js, body, h, &errs, &stop)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stopProgress)

	var all benchkit.Histogram
	for _, h := range hists {
		all.Merge(h)
	}
	r := &Result{Mode: "producer", System: "nats", Client: "nats.go", Scenario: o.scenario, Flush: o.flush,
		Topic: o.stream, Threads: o.threads, AsyncWindow: o.asyncWindow, Size: o.size, Latency: "send_rt",
		DurationSec: elapsed.Seconds(), Sent: int64(all.Count()), Errors: errs.count(), FirstError: errs.firstError()}
	r.MsgsPerSec = float64(r.Sent) / r.DurationSec
	r.MBPerSec = float64(r.Sent) * float64(o.size) / r.DurationSec / 1e6
	ms := func(us uint64) float64 { return float64(us) / 1000 }
	r.AvgMs = all.Mean() / 1000
	r.P50Ms, r.P99Ms, r.P999Ms, r.MaxMs = ms(all.Quantile(0.5)), ms(all.Quantile(0.99)), ms(all.Quantile(0.999)), ms(all.Max())
	if r.Sent > 0 {
		r.ClientCPUUsPerMsg = float64(selfTicks()-selfStart) * 1e4 / float64(r.Sent)
		if len(pids) > 0 {
			cpuSec := float64(ticksOf(pids)-cpuStart) / 100
			r.BrokerCPUUsPerMsg = cpuSec * 1e6 / float64(r.Sent)
			r.BrokerCPUPct = cpuSec / time.Since(wallStart).Seconds() * 100
		}
	}
	return r, nil
}

func syncPublisher(o *options, js jetstream.JetStream, body []byte, h *benchkit.Histogram, errs *errorLog, stop *atomic.Bool) {
	for !stop.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
		t0 := time.Now()
		_, err := js.Publish(ctx, o.subject, body)
		cancel()
		if err != nil {
			errs.add("publish: %v", err)
			time.Sleep(20 * time.Millisecond)
			continue
		}
		h.Record(time.Since(t0).Microseconds())
	}
}

type inflight struct {
	f  jetstream.PubAckFuture
	t0 time.Time
}

// asyncPublisher keeps asyncWindow publishes in flight; a collector
// goroutine waits for the acks in order.
func asyncPublisher(o *options, js jetstream.JetStream, body []byte, h *benchkit.Histogram, errs *errorLog, stop *atomic.Bool) {
	window := make(chan struct{}, o.asyncWindow)
	pending := make(chan inflight, o.asyncWindow)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for p := range pending {
			select {
			case <-p.f.Ok():
				h.Record(time.Since(p.t0).Microseconds())
			case err := <-p.f.Err():
				errs.add("publish async: %v", err)
			case <-time.After(o.timeout + time.Second):
				errs.add("publish async: no ack after %v", o.timeout+time.Second)
			}
			<-window
		}
	}()
	for !stop.Load() {
		window <- struct{}{}
		t0 := time.Now()
		f, err := js.PublishAsync(o.subject, body, jetstream.WithStallWait(o.timeout))
		if err != nil {
			errs.add("publish async: %v", err)
			<-window
			time.Sleep(20 * time.Millisecond)
			continue
		}
		pending <- inflight{f, t0}
	}
	close(pending)
	<-done
}

// errorLog counts errors and prints the first few.
type errorLog struct {
	mu      sync.Mutex
	n       int64
	first   string
	printed int
}

func (e *errorLog) add(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.n++
	if e.printed < 5 {
		msg := fmt.Sprintf(format, args...)
		if e.first == "" {
			e.first = msg
		}
		e.printed++
		fmt.Fprintln(os.Stderr, "error:", msg)
	}
}

func (e *errorLog) count() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.n
}

func (e *errorLog) firstError() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.first
}

func progress(stop <-chan struct{}, hists []*benchkit.Histogram, errs *errorLog, size int) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	start := time.Now()
	var prevN, prevSum uint64
	prevT := start
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			var n, sum uint64
			for _, h := range hists {
				n += h.Count()
				sum += h.Sum()
			}
			dt := now.Sub(prevT).Seconds()
			avg := 0.0
			if n > prevN {
				avg = float64(sum-prevSum) / float64(n-prevN) / 1000
			}
			fmt.Fprintf(os.Stderr, "[%4.0fs] nats pub %8.0f msgs/s %8.2f MB/s  avg RT %.3f ms  errors %d\n",
				now.Sub(start).Seconds(), float64(n-prevN)/dt, float64(n-prevN)*float64(size)/dt/1e6, avg, errs.count())
			prevN, prevSum, prevT = n, sum, now
		}
	}
}

func parsePids(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

// procTicks returns utime+stime of /proc/<who>/stat in clock ticks.
func procTicks(who string) int64 {
	b, err := os.ReadFile("/proc/" + who + "/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(string(f[11]), 10, 64)
	st, _ := strconv.ParseInt(string(f[12]), 10, 64)
	return ut + st
}

func selfTicks() int64 { return procTicks("self") }

func ticksOf(pids []int) int64 {
	var t int64
	for _, p := range pids {
		t += procTicks(strconv.Itoa(p))
	}
	return t
}
