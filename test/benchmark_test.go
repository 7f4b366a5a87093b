package test

// Tests of bin/benchmark (cmd/benchmark): producer and consumer against a
// classic broker started by the harness, the JSON contract scripts/bench.sh
// relies on, and the measuring parts (histogram, record walker). The NATS
// side of `make bench` is not run here.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rmqd/rmqd/cmd/benchmark/benchkit"
	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
	"github.com/rmqd/rmqd/store"
)

var (
	benchBuildOnce sync.Once
	benchBin       string
	benchBuildErr  error
)

// benchmarkBinary builds cmd/benchmark once into the harness's binary
// directory (removed by TestMain).
func benchmarkBinary(t *testing.T) string {
	t.Helper()
	dir := binaries(t)
	benchBuildOnce.Do(func() {
		benchBin = filepath.Join(dir, "benchmark")
		out, err := exec.Command("go", "build", "-o", benchBin, "../cmd/benchmark").CombinedOutput()
		if err != nil {
			benchBuildErr = fmt.Errorf("go build cmd/benchmark: %v\n%s", err, out)
		}
	})
	if benchBuildErr != nil {
		t.Fatal(benchBuildErr)
	}
	return benchBin
}

// runBenchmark runs bin/benchmark with args (bounded) and decodes the one
// JSON object it prints.
func runBenchmark(t *testing.T, args ...string) map[string]any {
	t.Helper()
	cmd := exec.Command(benchmarkBinary(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("benchmark %v: %v\nstdout:\n%s\nstderr:\n%s", args, err, stdout.String(), tail(stderr.String()))
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("benchmark %v did not end within 60 s; stderr:\n%s", args, tail(stderr.String()))
	}
	var res map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &res); err != nil {
		t.Fatalf("benchmark %v: output is not one JSON object: %v\n%s", args, err, stdout.String())
	}
	if !strings.Contains(stderr.String(), "msgs/s") {
		t.Errorf("benchmark %v: no progress line on stderr:\n%s", args, tail(stderr.String()))
	}
	return res
}

func num(t *testing.T, res map[string]any, key string) float64 {
	t.Helper()
	v, ok := res[key].(float64)
	if !ok {
		t.Fatalf("JSON result has no number %q: %v", key, res)
	}
	return v
}

func TestBenchmarkProducerConsumer(t *testing.T) {
	c := startCluster(t, nil)
	pid := strconv.Itoa(c.brProc.cmd.Process.Pid)
	const topic = "BenchE2E"

	res := runBenchmark(t, "producer", "-n", c.ns, "-t", topic, "-w", "4", "-s", "256", "-d", "2",
		"--json", "--broker-pids", pid, "--scenario", "e2e")
	for _, k := range []string{"msgs_per_sec", "mb_per_sec", "p50_ms", "p99_ms", "p999_ms", "max_ms", "sent", "errors"} {
		num(t, res, k)
	}
	sent := num(t, res, "sent")
	if sent <= 0 || num(t, res, "errors") != 0 {
		t.Fatalf("producer: sent %v errors %v (first error %v)", sent, res["errors"], res["first_error"])
	}
	if num(t, res, "msgs_per_sec") <= 0 || num(t, res, "p50_ms") > num(t, res, "p99_ms") || num(t, res, "p99_ms") > num(t, res, "max_ms") {
		t.Errorf("implausible figures: %v", res)
	}
	if num(t, res, "broker_cpu_us_per_msg") <= 0 {
		t.Errorf("--broker-pids gave no broker CPU per message: %v", res)
	}
	if res["scenario"] != "e2e" || res["mode"] != "producer" || res["system"] != "rmqd" {
		t.Errorf("labels: %v", res)
	}

	// An asynchronous window on the same topic, over two connections with
	// JSON headers.
	ares := runBenchmark(t, "producer", "-n", c.ns, "-t", topic, "-w", "2", "-s", "256", "-d", "1", "--async-window", "16",
		"--conns", "2", "--serialize", "json", "--json")
	asent := num(t, ares, "sent")
	if asent <= 0 || num(t, ares, "errors") != 0 || num(t, ares, "async_window") != 16 {
		t.Fatalf("async producer: %v", ares)
	}

	// --max-msgs ends the run early with exactly that many sends.
	mres := runBenchmark(t, "producer", "-n", c.ns, "-t", topic, "-w", "3", "-s", "100", "-d", "30", "--max-msgs", "500", "--json")
	if num(t, mres, "sent") != 500 || num(t, mres, "errors") != 0 || num(t, mres, "duration_s") > 20 {
		t.Fatalf("--max-msgs 500: %v", mres)
	}

	// The consumer drains what the runs sent (from offset 0: a new group).
	cres := runBenchmark(t, "consumer", "-n", c.ns, "-t", topic, "-g", "bench_e2e", "-d", "3", "--json")
	if got := num(t, cres, "received"); got < sent+asent+500 {
		t.Fatalf("consumer received %v, producers sent %v", got, sent+asent+500)
	}
	if num(t, cres, "errors") != 0 || num(t, cres, "mb_per_sec") <= 0 || cres["latency"] != "end_to_end" {
		t.Errorf("consumer: %v", cres)
	}
	// Its offsets were committed: a second run of the group finds nothing new.
	cres2 := runBenchmark(t, "consumer", "-n", c.ns, "-t", topic, "-g", "bench_e2e", "-d", "1", "--json")
	if got := num(t, cres2, "received"); got != 0 {
		t.Errorf("second consumer run of the same group received %v, want 0 (offsets not committed?)", got)
	}
}

func TestBenchmarkGoClientProducer(t *testing.T) {
	c := startCluster(t, nil)
	res := runBenchmark(t, "producer", "-n", c.ns, "-t", "BenchGoClient", "-w", "2", "-s", "128", "-d", "1",
		"--client", "rocketmq-client-go", "--json")
	if num(t, res, "sent") <= 0 || num(t, res, "errors") != 0 || res["client"] != "rocketmq-client-go" {
		t.Fatalf("rocketmq-client-go producer: %v", res)
	}
}

func TestBenchmarkTable(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := write("a.json", `{"mode":"producer","system":"rmqd","scenario":"sync16","flush":"ASYNC_FLUSH","msgs_per_sec":3000,"p50_ms":0.5,"p99_ms":2,"errors":0}`)
	b := write("b.json", `{"mode":"producer","system":"nats","scenario":"sync16","flush":"ASYNC_FLUSH","msgs_per_sec":1500,"p50_ms":1,"p99_ms":3,"errors":0}`)
	out, err := exec.Command(benchmarkBinary(t), "table", a, b).CombinedOutput()
	if err != nil {
		t.Fatalf("table: %v\n%s", err, out)
	}
	for _, want := range []string{"sync16", "3000", "1500", "2.00x", "0.50/2.00", "1.00/3.00"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("table output lacks %q:\n%s", want, out)
		}
	}
}

// ---------------------------------------------------------------------------
// Measuring parts

func TestHistogramPercentiles(t *testing.T) {
	var h benchkit.Histogram
	if h.Quantile(0.5) != 0 || h.Max() != 0 || h.Mean() != 0 {
		t.Fatal("empty histogram is not all zero")
	}
	// Small values have exact buckets.
	for v := int64(1); v <= 100; v++ {
		h.Record(v)
	}
	if got := h.Quantile(0.5); got != 50 {
		t.Errorf("p50 of 1..100 = %d, want 50", got)
	}
	if got := h.Quantile(0.99); got != 99 {
		t.Errorf("p99 of 1..100 = %d, want 99", got)
	}
	if got := h.Quantile(1); got != 100 {
		t.Errorf("p100 of 1..100 = %d, want 100", got)
	}

	// Larger values: within 1/64 of the exact rank value, never above max.
	var big benchkit.Histogram
	const n = 200_000
	vals := make([]int64, 0, n)
	for v := int64(1); v <= n; v++ {
		vals = append(vals, v)
	}
	rand.Shuffle(len(vals), func(i, j int) { vals[i], vals[j] = vals[j], vals[i] })
	for _, v := range vals {
		big.Record(v)
	}
	for _, tc := range []struct {
		q    float64
		want float64
	}{{0.5, 100_000}, {0.9, 180_000}, {0.99, 198_000}, {0.999, 199_800}, {0.0005, 100}} {
		got := float64(big.Quantile(tc.q))
		if got < tc.want || got > tc.want*(1+1.0/64) {
			t.Errorf("q%v = %v, want within [%v, %v]", tc.q, got, tc.want, tc.want*(1+1.0/64))
		}
	}
	if big.Max() != n || big.Count() != n || big.Mean() != float64(n+1)/2 {
		t.Errorf("max %d count %d mean %v", big.Max(), big.Count(), big.Mean())
	}

	// Huge and negative values are clamped, not lost.
	var edge benchkit.Histogram
	edge.Record(-5)
	edge.Record(1 << 50)
	if edge.Count() != 2 || edge.Quantile(0.5) != 0 || edge.Quantile(1) != 1<<50 {
		t.Errorf("edge values: count %d p50 %d p100 %d", edge.Count(), edge.Quantile(0.5), edge.Quantile(1))
	}

	// Merge and concurrent recording.
	var merged benchkit.Histogram
	var wg sync.WaitGroup
	parts := make([]benchkit.Histogram, 4)
	for i := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for v := int64(0); v < 10_000; v++ {
				parts[i].Record(v)
				merged.Record(v)
			}
		}()
	}
	wg.Wait()
	var sum benchkit.Histogram
	for i := range parts {
		sum.Merge(&parts[i])
	}
	for _, q := range []float64{0.5, 0.99, 0.999} {
		if sum.Quantile(q) != merged.Quantile(q) {
			t.Errorf("q%v: merged %d, recorded together %d", q, sum.Quantile(q), merged.Quantile(q))
		}
	}
	if sum.Count() != 40_000 || sum.Max() != 9_999 {
		t.Errorf("merged count %d max %d", sum.Count(), sum.Max())
	}
}

// bench/natsbench is its own module and keeps a copy of the histogram: both
// sides of the comparison must bucket and rank identically.
func TestHistogramCopyInNatsbenchIsIdentical(t *testing.T) {
	a, err := os.ReadFile("../cmd/benchmark/benchkit/hist.go")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("../bench/natsbench/benchkit/hist.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("bench/natsbench/benchkit/hist.go differs from cmd/benchmark/benchkit/hist.go: copy it over")
	}
}

func TestWalkRecords(t *testing.T) {
	var body []byte
	type want struct {
		born int64
		n    int
	}
	var wants []want
	for i, host := range []string{"127.0.0.1:5000", "[::1]:6000", "10.0.0.1:7000"} {
		m := &store.Message{
			Topic: "T", Body: bytes.Repeat([]byte{'x'}, 10*i+1), QueueID: 1, BornTimestamp: int64(1700000000000 + i),
			BornHost: host, StoreHost: "127.0.0.1:10911", Properties: store.PropertiesFromMap(map[string]string{"KEYS": "k"}),
		}
		var err error
		body, err = store.EncodeStored(body, m, int64(i), int64(len(body)), 1700000000100)
		if err != nil {
			t.Fatal(err)
		}
		wants = append(wants, want{m.BornTimestamp, len(m.Body)})
	}
	var got []want
	n, err := benchkit.WalkRecords(body, func(ri benchkit.RecordInfo) { got = append(got, want{ri.BornTimestamp, ri.BodyLen}) })
	if err != nil || n != len(wants) {
		t.Fatalf("WalkRecords: %d records, %v", n, err)
	}
	for i := range wants {
		if got[i] != wants[i] {
			t.Errorf("record %d: got %+v want %+v", i, got[i], wants[i])
		}
	}
	// Cross-check with the store's full decoder.
	msgs, err := store.DecodeMessages(body, true)
	if err != nil || len(msgs) != len(wants) {
		t.Fatalf("DecodeMessages: %d, %v", len(msgs), err)
	}
	// Truncated input is an error, not a panic.
	for cut := 1; cut < len(body); cut += 7 {
		_, _ = benchkit.WalkRecords(body[:cut], func(benchkit.RecordInfo) {})
	}
	if _, err := benchkit.WalkRecords(body[:len(body)-1], func(benchkit.RecordInfo) {}); err == nil {
		t.Error("a truncated body walked without error")
	}
}

// The producer follows the route: when the broker dies and comes back on
// another address (as a DLedger master moves), the re-resolved route
// carries the sends there.
func TestBenchmarkProducerFollowsRoute(t *testing.T) {
	c := startCluster(t, nil)
	const topic = "BenchMove"
	cmd := exec.Command(benchmarkBinary(t), "producer", "-n", c.ns, "-t", topic, "-w", "4", "-s", "128", "-d", "9",
		"--route-refresh", "500ms", "--timeout", "1s", "--json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})

	maxOffsets := func() int64 {
		var sum int64
		for q := 0; q < 8; q++ {
			resp := c.brokerRequest(protocol.GetMaxOffset, remoting.FieldsOf("topic", topic, "queueId", strconv.Itoa(q)), nil)
			n, _ := strconv.ParseInt(resp.ExtFields.Get("offset"), 10, 64)
			sum += n
		}
		return sum
	}
	eventually(t, 15*time.Second, "first sends", func() bool { return maxOffsets() > 0 })
	c.killBroker()
	c.restartBrokerOnNewPort()
	before := maxOffsets()

	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Fatalf("producer: %v\n%s", err, tail(stderr.String()))
		}
	case <-time.After(40 * time.Second):
		t.Fatalf("producer did not end; stderr:\n%s", tail(stderr.String()))
	}
	after := maxOffsets()
	var res map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &res); err != nil {
		t.Fatalf("output: %v\n%s", err, stdout.String())
	}
	if after <= before {
		t.Fatalf("no sends reached the broker at its new address %s (queue offsets %d before, %d after); result %v\nstderr:\n%s",
			c.broker, before, after, res, tail(stderr.String()))
	}
	if num(t, res, "errors") == 0 {
		t.Errorf("a killed broker caused no send error? %v", res)
	}
}
