package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFlags(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"-h"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "-c") {
		t.Fatalf("-h: %d %q", code, errb.String())
	}
	path := filepath.Join(t.TempDir(), "namesrv.conf")
	os.WriteFile(path, []byte("listenPort=19876\norderMessageEnable=true\n"), 0o644)
	if code := run([]string{"-c", path, "-p"}, &out, &errb); code != 0 {
		t.Fatalf("-p: %d %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "listenPort=19876") || !strings.Contains(out.String(), "orderMessageEnable=true") {
		t.Fatalf("-p output:\n%s", out.String())
	}
	os.WriteFile(path, []byte("listenPort=abc\n"), 0o644)
	errb.Reset()
	if code := run([]string{"-c", path}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "listenPort") {
		t.Fatalf("bad value: %d %q", code, errb.String())
	}
}
