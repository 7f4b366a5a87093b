package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The table shows each side's median msgs/s, ratio, latencies and the CPU
// per message of the servers and of the load generators.
func TestTableShowsServerAndClientCPU(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"rmqd.json": `{"mode":"producer","system":"rmqd","scenario":"sync64","flush":"ASYNC_FLUSH","msgs_per_sec":3000,"p50_ms":1.5,"p99_ms":4,"broker_cpu_us_per_msg":40,"client_cpu_us_per_msg":11}` + "\n" +
			`{"mode":"producer","system":"rmqd","scenario":"sync64","flush":"ASYNC_FLUSH","msgs_per_sec":2000,"p50_ms":1,"p99_ms":3,"broker_cpu_us_per_msg":50,"client_cpu_us_per_msg":13}` + "\n" +
			`{"mode":"producer","system":"rmqd","scenario":"sync64","flush":"ASYNC_FLUSH","msgs_per_sec":1000,"p50_ms":2,"p99_ms":5,"broker_cpu_us_per_msg":60,"client_cpu_us_per_msg":12}`,
		"nats.json": `{"mode":"producer","system":"nats","scenario":"sync64","flush":"ASYNC_FLUSH","msgs_per_sec":1000,"p50_ms":1.25,"p99_ms":3.5,"broker_cpu_us_per_msg":39.4,"client_cpu_us_per_msg":12.5}`,
	}
	var paths []string
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	var out bytes.Buffer
	if err := runTable(&out, paths); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "rmqd cli µs/msg") || !strings.Contains(lines[0], "NATS cli µs/msg") {
		t.Fatalf("table:\n%s", out.String())
	}
	want := []string{"ASYNC_FLUSH", "sync64", "2000", "1000", "2.00x", "1.50/4.00", "1.25/3.50", "0", "0", "50.0", "39.4", "12.0", "12.5"}
	if got := strings.Fields(lines[1]); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("row %q, want %q", got, want)
	}
}
