package conf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUpdateFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "broker.conf")
	orig := "# identity\nbrokerName=b1\nlistenPort = 10911\n\n# peers\ndLegerPeers=n0-a:1;\\\n   n1-b:2\nListenPort=10912\n! end"
	if err := os.WriteFile(p, []byte(orig), 0o600); err != nil {
		t.Fatal(err)
	}
	err := UpdateFile(p, map[string]string{"listenPort": "30911", "dLegerPeers": "n0-a:1;n1-b:2;n2-c:3", "namesrvAddr": "127.0.0.1:9876", "brokerIP1": "10.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	want := "# identity\nbrokerName=b1\nlistenPort=30911\n\n# peers\ndLegerPeers=n0-a:1;n1-b:2;n2-c:3\nlistenPort=30911\n! end\nbrokerIP1=10.0.0.1\nnamesrvAddr=127.0.0.1:9876\n"
	if string(got) != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	c, w, err := LoadBroker(p)
	if err != nil || c.ListenPort != 30911 || c.BrokerIP1 != "10.0.0.1" || len(w) != 1 /* repeated listenPort */ {
		t.Fatalf("%v %q", err, w)
	}
	// a missing file is created
	q := filepath.Join(dir, "new.conf")
	if err := UpdateFile(q, map[string]string{"listenPort": "1"}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(q); string(b) != "listenPort=1\n" {
		t.Fatalf("%q", b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("temporary files left: %v", entries)
	}
}

func TestImportantProperties(t *testing.T) {
	c := DefaultBroker()
	s := c.ImportantProperties()
	for _, k := range []string{"brokerClusterName=", "listenPort=", "namesrvAddr=", "enableDLegerCommitLog=", "dLegerSelfId="} {
		if !strings.Contains(s, k) {
			t.Errorf("missing %s in\n%s", k, s)
		}
	}
	if strings.Contains(s, "maxHashSlotNum") {
		t.Error("unimportant key printed")
	}
	if !strings.Contains(DefaultNamesrv().ImportantProperties(), "listenPort=9876") {
		t.Error("namesrv")
	}
}

func FuzzReadProperties(f *testing.F) {
	for _, s := range []string{"a=1", "a: 1\n#c\n!d\nb 2", "a=\\\n 1", `a=\u0041`, "a=\\", `\u00`, "k=v\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		entries, err := ReadProperties(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, e := range entries {
			if e.Line < 1 {
				t.Fatalf("line %d", e.Line)
			}
		}
		// loading arbitrary text never panics
		_, _, _ = ParseBroker("fuzz.conf", s)
	})
}
