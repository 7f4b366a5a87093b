package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/rmqd/rmqd/cmd/benchmark/benchkit"
)

// Result is the summary of one run; its JSON keys are the contract with
// scripts/bench.sh and bench/natsbench (which writes the same keys).
type Result struct {
	Mode        string  `json:"mode"`   // producer | consumer
	System      string  `json:"system"` // rmqd | nats
	Client      string  `json:"client"`
	Scenario    string  `json:"scenario,omitempty"`
	Flush       string  `json:"flush,omitempty"`
	Topic       string  `json:"topic"`
	Threads     int     `json:"threads"`
	AsyncWindow int     `json:"async_window"`
	Conns       int     `json:"conns,omitempty"`
	Size        int     `json:"size"`
	DurationSec float64 `json:"duration_s"`
	Sent        int64   `json:"sent"`
	Received    int64   `json:"received"`
	Errors      int64   `json:"errors"`
	MsgsPerSec  float64 `json:"msgs_per_sec"`
	MBPerSec    float64 `json:"mb_per_sec"`
	// Latency names what the quantiles measure: "send_rt" (request to
	// response) for producers, "end_to_end" (now - born timestamp, ms
	// resolution) for consumers.
	Latency string  `json:"latency"`
	AvgMs   float64 `json:"avg_ms"`
	P50Ms   float64 `json:"p50_ms"`
	P99Ms   float64 `json:"p99_ms"`
	P999Ms  float64 `json:"p999_ms"`
	MaxMs   float64 `json:"max_ms"`
	// Server and client CPU time per message, µs (servers: --broker-pids).
	BrokerCPUUsPerMsg float64 `json:"broker_cpu_us_per_msg,omitempty"`
	BrokerCPUPct      float64 `json:"broker_cpu_pct,omitempty"`
	ClientCPUUsPerMsg float64 `json:"client_cpu_us_per_msg"`
	FirstError        string  `json:"first_error,omitempty"`
}

func (r *Result) fillLatency(h *benchkit.Histogram) {
	ms := func(us uint64) float64 { return float64(us) / 1000 }
	r.AvgMs = h.Mean() / 1000
	r.P50Ms = ms(h.Quantile(0.50))
	r.P99Ms = ms(h.Quantile(0.99))
	r.P999Ms = ms(h.Quantile(0.999))
	r.MaxMs = ms(h.Max())
}

// print writes the summary: JSON, or a few human lines.
func (r *Result) print(w io.Writer, asJSON bool) error {
	if asJSON {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	}
	var b bytes.Buffer
	n := r.Sent
	what := "sent"
	if r.Mode == "consumer" {
		n, what = r.Received, "received"
	}
	fmt.Fprintf(&b, "%s %s: %d msgs %s in %.1f s, %d errors\n", r.System, r.Mode, n, what, r.DurationSec, r.Errors)
	fmt.Fprintf(&b, "  throughput  %.0f msgs/s  %.2f MB/s\n", r.MsgsPerSec, r.MBPerSec)
	fmt.Fprintf(&b, "  %-10s  avg %.3f  p50 %.3f  p99 %.3f  p99.9 %.3f  max %.3f ms\n", r.Latency, r.AvgMs, r.P50Ms, r.P99Ms, r.P999Ms, r.MaxMs)
	if r.BrokerCPUUsPerMsg > 0 {
		fmt.Fprintf(&b, "  broker CPU  %.1f µs/msg (%.0f%% of one core)\n", r.BrokerCPUUsPerMsg, r.BrokerCPUPct)
	}
	fmt.Fprintf(&b, "  client CPU  %.1f µs/msg\n", r.ClientCPUUsPerMsg)
	if r.FirstError != "" {
		fmt.Fprintf(&b, "  first error: %s\n", r.FirstError)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// errorLog counts errors and keeps the first message; it prints at most a
// few to stderr so a broken broker does not flood the terminal.
type errorLog struct {
	mu      sync.Mutex
	n       int64
	first   string
	printed int
}

func (e *errorLog) add(format string, args ...any) {
	e.mu.Lock()
	e.n++
	if e.first == "" || e.printed < 5 {
		msg := fmt.Sprintf(format, args...)
		if e.first == "" {
			e.first = msg
		}
		if e.printed < 5 {
			e.printed++
			fmt.Fprintln(os.Stderr, "error:", msg)
		}
	}
	e.mu.Unlock()
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

// snapshot is what the progress line needs.
type snapshot struct {
	count  uint64 // messages done
	sumUs  uint64 // latency sum
	bytes  uint64 // payload bytes
	errors int64
}

// progress prints one line a second to stderr until stop is closed, and a
// last line for the part of a second before stop.
func progress(label string, stop <-chan struct{}, snap func() snapshot) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	start := time.Now()
	prev := snap()
	prevT := start
	line := func(now time.Time) {
		s := snap()
		dt := now.Sub(prevT).Seconds()
		n := s.count - prev.count
		avg := 0.0
		if n > 0 {
			avg = float64(s.sumUs-prev.sumUs) / float64(n) / 1000
		}
		fmt.Fprintf(os.Stderr, "[%4.1fs] %s %8.0f msgs/s %8.2f MB/s  avg %s %.3f ms  errors %d\n",
			now.Sub(start).Seconds(), label, float64(n)/dt, float64(s.bytes-prev.bytes)/dt/1e6, latencyWord(label), avg, s.errors)
		prev, prevT = s, now
	}
	for {
		select {
		case <-stop:
			if now := time.Now(); now.Sub(prevT) > 100*time.Millisecond || snap().count != prev.count {
				line(now)
			}
			return
		case now := <-t.C:
			line(now)
		}
	}
}

// startProgress runs progress on its own goroutine; the returned function
// stops it and waits for its last line.
func startProgress(label string, snap func() snapshot) (stop func()) {
	stopCh := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		progress(label, stopCh, snap)
	}()
	return func() {
		close(stopCh)
		<-done
	}
}

func latencyWord(label string) string {
	if label == "consume" {
		return "e2e"
	}
	return "RT"
}

// ---------------------------------------------------------------------------
// CPU time from /proc/PID/stat

const clockTicksPerSec = 100 // USER_HZ on Linux

// cpuTicks returns utime+stime of pid (0 = this process) in clock ticks.
func cpuTicks(pid int) (int64, error) {
	path := "/proc/self/stat"
	if pid > 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/stat"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields resume after ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("%s: no ')'", path)
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("%s: %d fields", path, len(f))
	}
	ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%s: bad utime/stime", path)
	}
	return ut + st, nil
}

// cpuMeter measures CPU time of a set of pids (and of this process).
type cpuMeter struct {
	pids       []int
	start      []int64
	self       int64
	startClock time.Time
}

func startCPU(pids []int) *cpuMeter {
	m := &cpuMeter{pids: pids, start: make([]int64, len(pids)), startClock: time.Now()}
	for i, p := range pids {
		t, err := cpuTicks(p)
		if err != nil {
			fmt.Fprintf(os.Stderr, "warning: broker pid %d: %v\n", p, err)
			t = -1
		}
		m.start[i] = t
	}
	m.self, _ = cpuTicks(0)
	return m
}

// finish fills the CPU fields of r for n messages.
func (m *cpuMeter) finish(r *Result, n int64) {
	wall := time.Since(m.startClock).Seconds()
	if self, err := cpuTicks(0); err == nil && n > 0 {
		r.ClientCPUUsPerMsg = float64(self-m.self) * (1e6 / clockTicksPerSec) / float64(n)
	}
	if len(m.pids) == 0 {
		return
	}
	var ticks int64
	for i, p := range m.pids {
		if m.start[i] < 0 {
			continue
		}
		t, err := cpuTicks(p)
		if err != nil {
			fmt.Fprintf(os.Stderr, "warning: broker pid %d: %v\n", p, err)
			continue
		}
		ticks += t - m.start[i]
	}
	cpuSec := float64(ticks) / clockTicksPerSec
	if n > 0 {
		r.BrokerCPUUsPerMsg = cpuSec * 1e6 / float64(n)
	}
	if wall > 0 {
		r.BrokerCPUPct = cpuSec / wall * 100
	}
}
