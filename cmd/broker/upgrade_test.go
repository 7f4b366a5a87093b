package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rmqd/rmqd/store"
)

// treeHash hashes every file's path and content under dir.
func treeHash(t *testing.T, dir string) string {
	h := sha256.New()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fmt.Fprintln(h, p)
		if !d.IsDir() {
			b, _ := os.ReadFile(p)
			h.Write(b)
		}
		return nil
	})
	return fmt.Sprintf("%x", h.Sum(nil))
}

func TestUpgradeCheck(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	sc := store.DefaultConfig(root)
	sc.MappedFileSizeCommitLog = 64 << 10
	s, err := store.Open(sc)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 500; i++ {
		m := &store.Message{Topic: "T", QueueID: int32(i % 2), Body: bytes.Repeat([]byte("x"), 200), BornHost: "127.0.0.1:1234"}
		if r := s.PutMessage(context.Background(), m); r.Status != store.PutOK {
			t.Fatalf("put: %v", r.Status)
		}
	}
	s.Shutdown()
	path := filepath.Join(t.TempDir(), "broker.conf")
	os.WriteFile(path, []byte(fmt.Sprintf("storePathRootDir=%s\nmappedFileSizeCommitLog=65536\nenableDLegerCommitLog=true\n"+
		"dLegerGroup=g\ndLegerSelfId=n0\ndLegerPeers=n0-127.0.0.1:40911\n", root)), 0o644)
	before := treeHash(t, root)
	var out, errb bytes.Buffer
	if code := run([]string{"-c", path, "--upgrade-check"}, &out, &errb); code != 0 {
		t.Fatalf("--upgrade-check: %d %s", code, errb.String())
	}
	for _, want := range []string{"records: true", "dividedCommitlogOffset: 196608 (would be)", "dledger data in", "action: recover and seal",
		"T/0 max offset 250", "T/1 max offset 250", "classic prefix fingerprint: divide=196608"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
	if after := treeHash(t, root); after != before {
		t.Fatalf("--upgrade-check changed the store")
	}
	if _, err := store.PrepareUpgrade(sc); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := run([]string{"-c", path, "--upgrade-check"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "196608 (recorded (sealed))") {
		t.Fatalf("after seal: %d %s %s", code, errb.String(), out.String())
	}
}
