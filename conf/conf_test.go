package conf

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestReadProperties(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Entry
	}{
		{"equals", "a=1\n", []Entry{{"a", "1", 1}}},
		{"spaces around equals", "a = 1 \n", []Entry{{"a", "1", 1}}},
		{"colon", "a: 1\n", []Entry{{"a", "1", 1}}},
		{"colon no space", "a:1", []Entry{{"a", "1", 1}}},
		{"blank separator", "a   1\n", []Entry{{"a", "1", 1}}},
		{"tab separator", "a\t=\t1\t\n", []Entry{{"a", "1", 1}}},
		{"hash comment", "# c\na=1\n", []Entry{{"a", "1", 2}}},
		{"bang comment", "  ! c\na=1\n", []Entry{{"a", "1", 2}}},
		{"blank lines", "\n\n  \na=1\n\n", []Entry{{"a", "1", 4}}},
		{"crlf", "a=1\r\nb=2\r\n", []Entry{{"a", "1", 1}, {"b", "2", 2}}},
		{"leading spaces", "   a=1", []Entry{{"a", "1", 1}}},
		{"empty value", "a=\n", []Entry{{"a", "", 1}}},
		{"key only", "a\n", []Entry{{"a", "", 1}}},
		{"value keeps separators", "namesrvAddr=127.0.0.1:9876;h:1\n", []Entry{{"namesrvAddr", "127.0.0.1:9876;h:1", 1}}},
		{"value keeps equals", "a=b=c\n", []Entry{{"a", "b=c", 1}}},
		{"hash inside value", "a=x#y\n", []Entry{{"a", "x#y", 1}}},
		{"continuation", "a=1;\\\n   2\nb=3\n", []Entry{{"a", "1;2", 1}, {"b", "3", 3}}},
		{"escaped backslash not continuation", "a=x\\\\\nb=1\n", []Entry{{"a", `x\`, 1}, {"b", "1", 2}}},
		{"unicode escape", `a=\u0041b`, []Entry{{"a", "Ab", 1}}},
		{"escaped separator in key", `a\=b=c`, []Entry{{"a=b", "c", 1}}},
		{"repeated", "a=1\na=2\n", []Entry{{"a", "1", 1}, {"a", "2", 2}}},
		{"latin1", "a=caf\xe9\n", []Entry{{"a", "café", 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadProperties(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v\nwant %#v", got, tt.want)
			}
		})
	}
	if _, err := ReadProperties(strings.NewReader(`a=\u00zz`)); err == nil {
		t.Fatal("bad \\u escape: want error")
	}
}

func TestParseBroker(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		check func(*BrokerConfig) bool
	}{
		{"int", "listenPort=30911", func(c *BrokerConfig) bool { return c.ListenPort == 30911 }},
		{"trailing space trimmed", "listenPort=30911   \n", func(c *BrokerConfig) bool { return c.ListenPort == 30911 }},
		{"colon separator", "listenPort: 30911", func(c *BrokerConfig) bool { return c.ListenPort == 30911 }},
		{"bool trailing space", "autoCreateTopicEnable=false \n", func(c *BrokerConfig) bool { return !c.AutoCreateTopicEnable }},
		{"bool case", "autoCreateTopicEnable=FALSE", func(c *BrokerConfig) bool { return !c.AutoCreateTopicEnable }},
		{"enum", "flushDiskType=SYNC_FLUSH", func(c *BrokerConfig) bool { return c.FlushDiskType == SyncFlush }},
		{"enum case-insensitive", "brokerRole=slave", func(c *BrokerConfig) bool { return c.BrokerRole == Slave }},
		{"string trimmed", "brokerName =  b1  ", func(c *BrokerConfig) bool { return c.BrokerName == "b1" }},
		{"last wins", "brokerId=1\nbrokerId=2", func(c *BrokerConfig) bool { return c.BrokerID == 2 }},
		{"dleger keys", "enableDLegerCommitLog=true\ndLegerSelfId=n1\ndLegerPeers=n0-a:1;n1-b:2", func(c *BrokerConfig) bool {
			return c.EnableDLegerCommitLog && c.DLegerSelfID == "n1" && c.DLegerPeers == "n0-a:1;n1-b:2"
		}},
		{"case-insensitive key", "LISTENPORT=1234", func(c *BrokerConfig) bool { return c.ListenPort == 1234 }},
		{"home expansion", "storePathRootDir=~/x", func(c *BrokerConfig) bool { return c.StorePathRootDir == filepath.Join(userHome(), "x") }},
		{"user.home expansion", "storePathCommitLog=${user.home}/y/commitlog", func(c *BrokerConfig) bool {
			return c.StorePathCommitLog == userHome()+"/y/commitlog"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := ParseBroker("broker.conf", tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Fatalf("unexpected config:\n%s", c)
			}
		})
	}
}

func TestParseBrokerErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		is      error
		substrs []string
	}{
		{"unknown key", "listenPort=1\nlisenPort=2", ErrUnknownKey, []string{`conf: broker.conf: key "lisenPort": unknown key`, `did you mean "listenPort"`}},
		{"unknown key far", "fooBarBaz=2", ErrUnknownKey, []string{`broker.conf`, `"fooBarBaz"`}},
		{"bad integer", "listenPort=abc", ErrInvalidValue, []string{`conf: broker.conf: key "listenPort": invalid integer "abc"`}},
		{"trailing comment is not a comment", "listenPort=10911 # port", ErrInvalidValue, []string{`key "listenPort"`, `invalid integer "10911 # port"`}},
		{"bad bool", "autoCreateTopicEnable=yes", ErrInvalidValue, []string{`conf: broker.conf: key "autoCreateTopicEnable": invalid boolean "yes"`}},
		{"bad enum", "flushDiskType=FAST", ErrInvalidValue, []string{`conf: broker.conf: key "flushDiskType": invalid value "FAST" (want ASYNC_FLUSH or SYNC_FLUSH)`}},
		{"bad enum role", "brokerRole=MASTER", ErrInvalidValue, []string{`key "brokerRole"`, "SLAVE"}},
		{"key spelled as in file", "ListenPort=x", ErrInvalidValue, []string{`key "ListenPort"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ParseBroker("broker.conf", tt.in)
			if err == nil {
				t.Fatal("want error")
			}
			if !errors.Is(err, tt.is) {
				t.Fatalf("error %v is not %v", err, tt.is)
			}
			var ke *KeyError
			if !errors.As(err, &ke) || ke.File != "broker.conf" || ke.Line == 0 {
				t.Fatalf("want *KeyError with file and line, got %#v", err)
			}
			for _, s := range tt.substrs {
				if !strings.Contains(err.Error(), s) {
					t.Fatalf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	c, w, err := ParseBroker("b.conf", "slaveReadEnable=true\nhaListenPort=10912\nmapedFileSizeCommitLog=1\nlistenPort=1\nlistenPort=2\nListenport=3\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.ListenPort != 3 {
		t.Fatalf("listenPort = %d", c.ListenPort)
	}
	want := []string{
		`conf: b.conf:1: key "slaveReadEnable": RocketMQ key not implemented by rmqd; ignored`,
		`conf: b.conf:2: key "haListenPort": RocketMQ key not implemented`,
		`conf: b.conf:3: key "mapedFileSizeCommitLog": RocketMQ key not implemented`,
		`conf: b.conf:5: key "listenPort": repeats line 4`,
		`conf: b.conf:6: key "Listenport": taken as "listenPort"`,
	}
	if len(w) != len(want)+1 { // line 6 both repeats and has the wrong case: two warnings
		t.Fatalf("warnings: %q", w)
	}
	joined := strings.Join(w, "\n")
	for _, s := range want {
		if !strings.Contains(joined, s) {
			t.Errorf("warnings %q lack %q", w, s)
		}
	}
	_, w, err = ParseNamesrv("n.conf", "listenPort=9876\nserverWorkerThreads=8\nwaitSecondsForService=45\n")
	if err != nil || len(w) != 2 {
		t.Fatalf("namesrv warnings %q, err %v", w, err)
	}
}

func TestDefaults(t *testing.T) {
	c := DefaultBroker()
	home := userHome()
	checks := map[string]string{
		"brokerClusterName":           "DefaultCluster",
		"brokerId":                    "0",
		"brokerIP1":                   "127.0.0.1",
		"listenPort":                  "10911",
		"storePathRootDir":            filepath.Join(home, "store"),
		"mappedFileSizeCommitLog":     "1073741824",
		"mappedFileSizeConsumeQueue":  "6000000",
		"flushDiskType":               "ASYNC_FLUSH",
		"brokerRole":                  "ASYNC_MASTER",
		"autoCreateTopicEnable":       "true",
		"autoCreateSubscriptionGroup": "true",
		"defaultTopicQueueNums":       "8",
		"deleteWhen":                  "04",
		"fileReservedTime":            "72",
		"diskMaxUsedSpaceRatio":       "75",
		"maxMessageSize":              "4194304",
		"messageDelayLevel":           "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h",
		"registerNameServerPeriod":    "30000",
		"flushConsumerOffsetInterval": "5000",
		"enableDLegerCommitLog":       "false",
		"dLegerHeartbeatIntervalMs":   "100",
		"maxFrameSize":                "16777216",
	}
	for k, want := range checks {
		if got, ok := c.Get(k); !ok || got != want {
			t.Errorf("default %s = %q, want %q", k, got, want)
		}
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if c.CommitLogDir() != filepath.Join(home, "store", "commitlog") || c.ConsumeQueueDir() != filepath.Join(home, "store", "consumequeue") ||
		c.IndexDir() != filepath.Join(home, "store", "index") || c.ConfigDir() != filepath.Join(home, "store", "config") {
		t.Fatalf("derived dirs: %s %s %s %s", c.CommitLogDir(), c.ConsumeQueueDir(), c.IndexDir(), c.ConfigDir())
	}
	n := DefaultNamesrv()
	if n.ListenPort != 9876 || n.KVConfigPath != filepath.Join(home, "namesrv", "kvConfig.json") || n.ScanNotActiveBrokerInterval != 5000 || n.OrderMessageEnable {
		t.Fatalf("namesrv defaults: %s", n)
	}
	if err := n.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestSet(t *testing.T) {
	c := DefaultBroker()
	if err := c.Set("namesrvAddr", " 10.0.0.1:9876;10.0.0.2:9876 "); err != nil {
		t.Fatal(err)
	}
	if got := c.NamesrvAddrs(); !reflect.DeepEqual(got, []string{"10.0.0.1:9876", "10.0.0.2:9876"}) {
		t.Fatalf("addrs %q", got)
	}
	if err := c.Set("autocreatetopicenable", "false"); err != nil || c.AutoCreateTopicEnable {
		t.Fatalf("case-insensitive set: %v", err)
	}
	err := c.Set("listenPort", "x")
	if !errors.Is(err, ErrInvalidValue) || err.Error() != `conf: key "listenPort": invalid integer "x"` {
		t.Fatalf("bad int: %v", err)
	}
	if err := c.Set("nope", "1"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("unknown: %v", err)
	}
	if err := c.Set("slaveReadEnable", "true"); !errors.Is(err, ErrNotImplemented) {
		t.Fatalf("java-only: %v", err)
	}
	if !IsJavaOnlyBrokerKey("slaveReadEnable") || IsJavaOnlyBrokerKey("nope") {
		t.Fatal("IsJavaOnlyBrokerKey")
	}
	cl := c.Clone()
	_ = cl.Set("listenPort", "1")
	if c.ListenPort == 1 {
		t.Fatal("Clone shares state")
	}
	nc := DefaultNamesrv()
	if err := nc.Set("listenPort", "9877"); err != nil || nc.ListenPort != 9877 {
		t.Fatal(err)
	}
}

func TestPropertiesRoundTrip(t *testing.T) {
	c := DefaultBroker()
	for k, v := range map[string]string{
		"brokerName": "b-1", "listenPort": "30911", "storePathRootDir": `/tmp/with\backslash`,
		"enableDLegerCommitLog": "true", "dLegerGroup": "g", "dLegerPeers": "n0-127.0.0.1:40911;n1-127.0.0.1:40912",
		"dLegerSelfId": "n1", "flushDiskType": "SYNC_FLUSH", "messageDelayLevel": "1s 2m",
	} {
		if err := c.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	text := c.Properties()
	if len(strings.Split(strings.TrimSpace(text), "\n")) != len(BrokerKeys()) {
		t.Fatalf("Properties prints %d lines for %d keys", len(strings.Split(text, "\n")), len(BrokerKeys()))
	}
	back, w, err := ParseBroker("p", text)
	if err != nil || len(w) != 0 {
		t.Fatalf("reparse: %v %q", err, w)
	}
	if !reflect.DeepEqual(back, c) {
		t.Fatalf("round trip differs:\n%s\nvs\n%s", back, c)
	}
	n := DefaultNamesrv()
	n.ListenPort = 1
	nb, _, err := ParseNamesrv("n", n.String())
	if err != nil || !reflect.DeepEqual(nb, n) {
		t.Fatalf("namesrv round trip: %v", err)
	}
}

func TestValidate(t *testing.T) {
	dl := func(mod func(*BrokerConfig)) *BrokerConfig {
		c := DefaultBroker()
		c.EnableDLegerCommitLog = true
		c.DLegerGroup = "g"
		c.DLegerPeers = "n0-127.0.0.1:40911;n1-127.0.0.1:40912;n2-127.0.0.1:40913"
		c.DLegerSelfID = "n1"
		if mod != nil {
			mod(c)
		}
		return c
	}
	tests := []struct {
		name string
		c    *BrokerConfig
		key  string // "" = valid
	}{
		{"dledger ok", dl(nil), ""},
		{"dledger preferred ok", dl(func(c *BrokerConfig) { c.PreferredLeaderID = "n0" }), ""},
		{"no group", dl(func(c *BrokerConfig) { c.DLegerGroup = "" }), "dLegerGroup"},
		{"no peers", dl(func(c *BrokerConfig) { c.DLegerPeers = "" }), "dLegerPeers"},
		{"bad peers", dl(func(c *BrokerConfig) { c.DLegerPeers = "n0:127.0.0.1:1" }), "dLegerPeers"},
		{"dup peer", dl(func(c *BrokerConfig) { c.DLegerPeers = "n0-a:1;n0-b:2" }), "dLegerPeers"},
		{"self not in peers", dl(func(c *BrokerConfig) { c.DLegerSelfID = "n7" }), "dLegerSelfId"},
		{"self bad form", dl(func(c *BrokerConfig) { c.DLegerSelfID = "node" }), "dLegerSelfId"},
		{"preferred not in peers", dl(func(c *BrokerConfig) { c.PreferredLeaderID = "n9" }), "preferredLeaderId"},
		{"port clash", dl(func(c *BrokerConfig) { c.ListenPort = 40912 }), "dLegerPeers"},
		{"election <= heartbeat", dl(func(c *BrokerConfig) { c.DLegerElectionTimeoutMs = 100 }), "dLegerElectionTimeoutMs"},
		{"election max < min", dl(func(c *BrokerConfig) { c.DLegerElectionTimeoutMaxMs = 500 }), "dLegerElectionTimeoutMaxMs"},
		{"classic ignores dledger keys", func() *BrokerConfig { c := DefaultBroker(); c.DLegerSelfID = "x"; return c }(), ""},
		{"port 0", func() *BrokerConfig { c := DefaultBroker(); c.ListenPort = 0; return c }(), "listenPort"},
		{"port big", func() *BrokerConfig { c := DefaultBroker(); c.ListenPort = 70000; return c }(), "listenPort"},
		{"namesrv addr", func() *BrokerConfig { c := DefaultBroker(); c.NamesrvAddr = "localhost"; return c }(), "namesrvAddr"},
		{"delay levels", func() *BrokerConfig { c := DefaultBroker(); c.MessageDelayLevel = "1s 5x"; return c }(), "messageDelayLevel"},
		{"deleteWhen", func() *BrokerConfig { c := DefaultBroker(); c.DeleteWhen = "25"; return c }(), "deleteWhen"},
		{"cq size", func() *BrokerConfig { c := DefaultBroker(); c.MappedFileSizeConsumeQueue = 21; return c }(), "mappedFileSizeConsumeQueue"},
		{"empty name", func() *BrokerConfig { c := DefaultBroker(); c.BrokerName = ""; return c }(), "brokerName"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Validate()
			if tt.key == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), `key "`+tt.key+`"`) || !errors.Is(err, ErrInvalidValue) {
				t.Fatalf("want error on %s, got %v", tt.key, err)
			}
		})
	}
}

func TestParsePeers(t *testing.T) {
	got, err := ParsePeers(" n0-127.0.0.1:40911 ; n1-host-b:40912;")
	if err != nil {
		t.Fatal(err)
	}
	want := []Peer{{"n0", "127.0.0.1:40911"}, {"n1", "host-b:40912"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v", got)
	}
	if FormatPeers(got) != "n0-127.0.0.1:40911;n1-host-b:40912" {
		t.Fatal(FormatPeers(got))
	}
	for _, bad := range []string{"", "n0", "n0-", "-h:1", "n0-h", "n0-h:0", "n0-h:1;n0-g:2", "n0-h:1;n1-h:1"} {
		if _, err := ParsePeers(bad); err == nil {
			t.Errorf("ParsePeers(%q): want error", bad)
		}
	}
}

func TestDelayLevels(t *testing.T) {
	c := DefaultBroker()
	lv, err := c.MessageDelayLevels()
	if err != nil {
		t.Fatal(err)
	}
	if len(lv) != 18 || lv[0] != time.Second || lv[3] != 30*time.Second || lv[4] != time.Minute || lv[17] != 2*time.Hour {
		t.Fatalf("levels %v", lv)
	}
	if d, err := ParseDelayLevels("1d 3h"); err != nil || d[0] != 24*time.Hour {
		t.Fatalf("%v %v", d, err)
	}
	for _, bad := range []string{"", "1", "s", "1x", "-1s", "0s", "1.5s"} {
		if _, err := ParseDelayLevels(bad); err == nil {
			t.Errorf("ParseDelayLevels(%q): want error", bad)
		}
	}
	if h, err := ParseDeleteWhen("01;02"); err != nil || !reflect.DeepEqual(h, []int{1, 2}) {
		t.Fatalf("%v %v", h, err)
	}
}

func TestSampleFiles(t *testing.T) {
	n, w, err := LoadNamesrv("namesrv.conf")
	if err != nil || len(w) != 0 {
		t.Fatalf("namesrv.conf: %v %q", err, w)
	}
	if err := n.Validate(); err != nil || n.ListenPort != 9876 {
		t.Fatal(err)
	}
	b, w, err := LoadBroker("broker.conf")
	if err != nil || len(w) != 0 {
		t.Fatalf("broker.conf: %v %q", err, w)
	}
	if err := b.Validate(); err != nil || b.EnableDLegerCommitLog || b.BrokerName != "broker-a" {
		t.Fatal(err)
	}
	for i, id := range []string{"n0", "n1", "n2"} {
		path := filepath.Join("dledger", "broker-"+id+".conf")
		c, w, err := LoadBroker(path)
		if err != nil || len(w) != 0 {
			t.Fatalf("%s: %v %q", path, err, w)
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if !c.EnableDLegerCommitLog || c.DLegerSelfID != id || c.DLedgerSelfIndex() != i || c.ListenPort != 30911+10*i ||
			c.BrokerClusterName != "RaftCluster" || c.BrokerName != "RaftNode00" || c.DLegerGroup != "RaftNode00" ||
			c.StorePathRootDir != "./run/dledger/"+id {
			t.Fatalf("%s: unexpected config\n%s", path, c)
		}
		peers, _ := c.DLedgerPeers()
		if len(peers) != 3 || peers[i].Addr != "127.0.0.1:4091"+string(rune('1'+i)) {
			t.Fatalf("%s: peers %v", path, peers)
		}
		if c.DLedgerDir() != filepath.Join("run", "dledger", id, "dledger-"+id) {
			t.Fatalf("DLedgerDir %s", c.DLedgerDir())
		}
	}
}

func TestLoadErrorsNameFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "broker.conf")
	if err := os.WriteFile(p, []byte("# x\nlistenPort=abc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := LoadBroker(p)
	if err == nil || err.Error() != `conf: `+p+`: key "listenPort": invalid integer "abc"` {
		t.Fatalf("got %v", err)
	}
	var ke *KeyError
	if !errors.As(err, &ke) || ke.Line != 2 {
		t.Fatalf("line: %#v", err)
	}
	if _, _, err := LoadBroker(filepath.Join(dir, "missing.conf")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}
