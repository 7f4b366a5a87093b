package logging

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestNewWritesBothPlaces(t *testing.T) {
	var out bytes.Buffer
	file := filepath.Join(t.TempDir(), "logs", "x.log")
	log, closeLog, err := New(&out, file)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hello", zap.String("topic", "T"))
	log.Debug("quiet at info")
	closeLog()
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{out.String(), string(got)} {
		if !strings.Contains(s, `"msg":"hello"`) || !strings.Contains(s, `"topic":"T"`) || strings.Contains(s, "quiet") {
			t.Fatalf("log line %q", s)
		}
	}
}
