package main

import (
	"encoding/json"
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/rmqd/rmqd/protocol"
)

func TestVersionDesc(t *testing.T) {
	for v, want := range map[int]string{
		0: "V3_0_0_SNAPSHOT", 15: "V3_0_0_FINAL", 37: "V3_0_11", 46: "V3_1_0_SNAPSHOT", 87: "V3_3_1",
		211: "V3_9_9", 212: "V4_0_0_SNAPSHOT", int(protocol.VersionV4_5_2): "V4_5_2",
		int(protocol.VersionV4_9_4): "V4_9_4", int(protocol.VersionV5_0_0): "V5_0_0",
		int(protocol.VersionV5_3_3): "V5_3_3", 611: "V5_9_9", 612: "HIGHER_VERSION", 9999: "HIGHER_VERSION",
	} {
		if got := versionDesc(v); got != want {
			t.Errorf("versionDesc(%d) = %s, want %s", v, got, want)
		}
	}
}

func TestKeysToStrings(t *testing.T) {
	in := `{"consumeTps":1.5,"offsetTable":{{"brokerName":"b,{x}","queueId":1,"topic":"T"}:{"brokerOffset":3},` +
		` {"brokerName":"b","queueId":0,"topic":"T"} : {"brokerOffset":2}},"ids":{0:"a",12:"b"},"s":"{not:a key}"}`
	out, err := keysToStrings([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		ConsumeTps  float64                  `json:"consumeTps"`
		OffsetTable map[string]offsetWrapper `json:"offsetTable"`
		IDs         map[string]string        `json:"ids"`
		S           string                   `json:"s"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	rows, err := sortedMQ(v.OffsetTable)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].mq != (messageQueue{"T", "b", 0}) || rows[0].val.BrokerOffset != 2 ||
		rows[1].mq != (messageQueue{"T", "b,{x}", 1}) || rows[1].val.BrokerOffset != 3 {
		t.Fatalf("rows %+v", rows)
	}
	if v.IDs["12"] != "b" || v.S != "{not:a key}" || v.ConsumeTps != 1.5 {
		t.Fatalf("decoded %+v", v)
	}
	for _, bad := range []string{"", "{", `{"a":}`, `{"a" 1}`, `[1,2`, `{"a":"x}`, strings.Repeat("[", 300)} {
		if _, err := keysToStrings([]byte(bad)); err == nil {
			t.Errorf("keysToStrings(%q): no error", bad)
		}
	}
}

func TestParseAttributes(t *testing.T) {
	m, err := parseAttributes("+message.type=FIFO, -old ,")
	if err != nil || !reflect.DeepEqual(m, map[string]string{"+message.type": "FIFO", "-old": ""}) {
		t.Fatalf("got %v %v", m, err)
	}
	for _, bad := range []string{"x=1", "+", "+k", "-k=v"} {
		if _, err := parseAttributes(bad); err == nil {
			t.Errorf("parseAttributes(%q): no error", bad)
		}
	}
}

func TestSplitAttached(t *testing.T) {
	f := &flagSet{fs: flag.NewFlagSet("x", flag.ContinueOnError)}
	f.fs.SetOutput(io.Discard)
	f.required("t", "topic", "")
	f.arg("p", "body", "")
	f.flag("l", "list", "")
	got := f.splitAttached([]string{"-tT1", "-p", "-tX", "--topic=T2", "-topic", "T3", "-l", "-n1.2.3.4:9876"})
	want := []string{"-t", "T1", "-p", "-tX", "--topic=T2", "-topic", "T3", "-l", "-n1.2.3.4:9876"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

func TestJavaFormats(t *testing.T) {
	if got := javaMap(map[string]string{"b": "2", "a": "1"}); got != "{a=1, b=2}" {
		t.Errorf("javaMap = %s", got)
	}
	if got := frontStringAtLeast("abcdef", 3); got != "abc" {
		t.Errorf("frontStringAtLeast = %s", got)
	}
	if got := javaDouble(0); got != "0.0" {
		t.Errorf("javaDouble(0) = %s", got)
	}
	r := &protocol.TopicRouteData{QueueDatas: []protocol.QueueData{{BrokerName: "b", Perm: 6, ReadQueueNums: 4, WriteQueueNums: 4}},
		BrokerDatas: []protocol.BrokerData{{BrokerName: "b", Cluster: "c", BrokerAddrs: map[int64]string{0: "h:1"}}}}
	js := routeJSON(r)
	if strings.Contains(js, ": ") || !strings.Contains(js, "\n\t\"brokerDatas\":[") || !strings.Contains(js, `"0":"h:1"`) {
		t.Errorf("routeJSON:\n%s", js)
	}
	if ts, err := parseTimestamp("2024-01-02#03:04:05:006", false); err != nil || humanTime2(ts) != "2024-01-02 03:04:05,006" {
		t.Errorf("parseTimestamp: %d %v", ts, err)
	}
	if _, err := parseTimestamp("now", false); err == nil {
		t.Errorf("parseTimestamp(now) without allowNow: no error")
	}
}
