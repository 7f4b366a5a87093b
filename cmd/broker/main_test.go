package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestFlags(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"-h"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "-c") {
		t.Fatalf("-h: %d %q", code, errb.String())
	}
	path := filepath.Join(t.TempDir(), "broker.conf")
	os.WriteFile(path, []byte("brokerName=b1\nnamesrvAddr=1.1.1.1:9876\n"), 0o644)
	out.Reset()
	if code := run([]string{"-c", path, "-n", "2.2.2.2:9876;3.3.3.3:9876", "-p"}, &out, &errb); code != 0 {
		t.Fatalf("-p: %d %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "namesrvAddr=2.2.2.2:9876;3.3.3.3:9876") || !strings.Contains(out.String(), "brokerName=b1") {
		t.Fatalf("-p output:\n%s", out.String())
	}
	os.WriteFile(path, []byte("noSuchKey=1\n"), 0o644)
	errb.Reset()
	if code := run([]string{"-c", path}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "noSuchKey") {
		t.Fatalf("bad key: %d %q", code, errb.String())
	}
	if code := run([]string{"-x"}, &out, &errb); code != 2 {
		t.Fatalf("unknown flag: %d", code)
	}
}

func TestPprof(t *testing.T) {
	addr, stop, err := startPprof("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for _, p := range []string{"mutex", "block", "allocs"} {
		resp, err := http.Get("http://" + addr.String() + "/debug/pprof/" + p + "?debug=1")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(body) == 0 {
			t.Fatalf("%s: %d %.200q", p, resp.StatusCode, body)
		}
	}
	if runtime.SetMutexProfileFraction(-1) == 0 {
		t.Fatal("--pprof did not switch the mutex profile on")
	}
}
