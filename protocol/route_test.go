package protocol

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

func sampleRoute() *TopicRouteData {
	return &TopicRouteData{
		QueueDatas: []QueueData{{BrokerName: "broker-a", Perm: 6, ReadQueueNums: 4, WriteQueueNums: 4}},
		BrokerDatas: []BrokerData{{
			Cluster:     "DefaultCluster",
			BrokerName:  "broker-a",
			BrokerAddrs: map[int64]string{1: "10.0.0.2:10911", 0: "10.0.0.1:10911"},
		}},
	}
}

// The fastjson form a Java name server sends to a version-317 client
// (protocol.md §4.1), byte for byte.
const goldenRouteFast = `{"brokerDatas":[{"brokerAddrs":{0:"10.0.0.1:10911",1:"10.0.0.2:10911"},"brokerName":"broker-a","cluster":"DefaultCluster","enableActingMaster":false}],"filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}`

const goldenRouteStd = `{"brokerDatas":[{"brokerAddrs":{"0":"10.0.0.1:10911","1":"10.0.0.2:10911"},"brokerName":"broker-a","cluster":"DefaultCluster","enableActingMaster":false}],"filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}`

func TestRouteEncodeGolden(t *testing.T) {
	r := sampleRoute()
	if got := string(r.Encode(FastJSON)); got != goldenRouteFast {
		t.Errorf("fastjson style:\n got %s\nwant %s", got, goldenRouteFast)
	}
	if got := string(r.Encode(StandardJSON)); got != goldenRouteStd {
		t.Errorf("standard style:\n got %s\nwant %s", got, goldenRouteStd)
	}
	if !json.Valid([]byte(goldenRouteStd)) {
		t.Error("standard style is not valid JSON")
	}
	empty := (&TopicRouteData{}).Encode(FastJSON)
	if string(empty) != `{"brokerDatas":[],"filterServerTable":{},"queueDatas":[]}` {
		t.Errorf("empty route: %s", empty)
	}
}

func TestRouteJSONStyle(t *testing.T) {
	if RouteJSONStyle(317, false) != FastJSON || RouteJSONStyle(317, true) != StandardJSON ||
		RouteJSONStyle(401, false) != StandardJSON || RouteJSONStyle(479, false) != StandardJSON {
		t.Fatal("RouteJSONStyle does not follow the Java name server")
	}
}

// goClientRoute mirrors rocketmq-client-go's TopicRouteData.decode
// (internal/route.go at the go.mod version): queueDatas strictly decoded,
// brokerAddrs handled textually. The real parser is exercised end to end
// in test/namesrv_test.go; this twin keeps the format pinned at unit level.
type goClientQueueData struct {
	BrokerName     string `json:"brokerName"`
	ReadQueueNums  int    `json:"readQueueNums"`
	WriteQueueNums int    `json:"writeQueueNums"`
	Perm           int    `json:"perm"`
}
type goClientBrokerData struct {
	Cluster, BrokerName string
	Addrs               map[int64]string
}

func goClientParseRoute(t *testing.T, data string) ([]goClientQueueData, []goClientBrokerData) {
	t.Helper()
	res := gjson.Parse(data)
	var qds []goClientQueueData
	if err := json.Unmarshal([]byte(res.Get("queueDatas").String()), &qds); err != nil {
		t.Fatalf("client would reject queueDatas: %v", err)
	}
	var bds []goClientBrokerData
	for _, v := range res.Get("brokerDatas").Array() {
		bd := goClientBrokerData{BrokerName: v.Get("brokerName").String(), Cluster: v.Get("cluster").String(), Addrs: map[int64]string{}}
		addrs := v.Get("brokerAddrs").String()
		if len(addrs) < 2 {
			t.Fatalf("client would panic: brokerAddrs %q", addrs)
		}
		for _, s := range strings.Split(addrs[1:len(addrs)-1], ",") {
			i := strings.Index(s, ":")
			if i < 0 {
				continue
			}
			id, _ := strconv.ParseInt(strings.ReplaceAll(s[:i], `"`, ""), 10, 64)
			bd.Addrs[id] = strings.ReplaceAll(s[i+1:], `"`, "")
		}
		bds = append(bds, bd)
	}
	return qds, bds
}

func TestRouteParsedLikeGoClient(t *testing.T) {
	for _, style := range []JSONStyle{FastJSON, StandardJSON} {
		qds, bds := goClientParseRoute(t, string(sampleRoute().Encode(style)))
		if len(qds) != 1 || qds[0] != (goClientQueueData{BrokerName: "broker-a", ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6}) {
			t.Errorf("style %d: queueDatas %+v", style, qds)
		}
		want := []goClientBrokerData{{Cluster: "DefaultCluster", BrokerName: "broker-a", Addrs: map[int64]string{0: "10.0.0.1:10911", 1: "10.0.0.2:10911"}}}
		if !reflect.DeepEqual(bds, want) {
			t.Errorf("style %d: brokerDatas %+v", style, bds)
		}
	}
	// empty brokerAddrs must stay "{}" (the client slices off the braces)
	r := &TopicRouteData{BrokerDatas: []BrokerData{{BrokerName: "b", Cluster: "c"}}}
	_, bds := goClientParseRoute(t, string(r.Encode(FastJSON)))
	if len(bds) != 1 || len(bds[0].Addrs) != 0 {
		t.Errorf("empty addrs: %+v", bds)
	}
}

func TestRouteDecodeBothStyles(t *testing.T) {
	for _, in := range []string{goldenRouteFast, goldenRouteStd} {
		r, err := DecodeTopicRouteData([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		want := sampleRoute()
		want.FilterServerTable = map[string][]string{}
		if !reflect.DeepEqual(r, want) {
			t.Errorf("decode %s:\n got %+v\nwant %+v", in, r, want)
		}
	}
}

func TestClusterInfoEncode(t *testing.T) {
	ci := &ClusterInfo{
		BrokerAddrTable: map[string]BrokerData{
			"broker-b": {Cluster: "C", BrokerName: "broker-b", BrokerAddrs: map[int64]string{0: "h:2"}},
			"broker-a": {Cluster: "C", BrokerName: "broker-a", BrokerAddrs: map[int64]string{0: "h:1"}},
		},
		ClusterAddrTable: map[string][]string{"C": {"broker-a", "broker-b"}},
	}
	want := `{"brokerAddrTable":{"broker-a":{"brokerAddrs":{0:"h:1"},"brokerName":"broker-a","cluster":"C","enableActingMaster":false},"broker-b":{"brokerAddrs":{0:"h:2"},"brokerName":"broker-b","cluster":"C","enableActingMaster":false}},"clusterAddrTable":{"C":["broker-a","broker-b"]}}`
	if got := string(ci.Encode(FastJSON)); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	std := ci.Encode(StandardJSON)
	if !json.Valid(std) {
		t.Fatalf("standard style invalid: %s", std)
	}
	back, err := DecodeClusterInfo([]byte(want))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, ci) {
		t.Fatalf("decode: %+v", back)
	}
	if got := string((&ClusterInfo{}).Encode(FastJSON)); got != `{"brokerAddrTable":{},"clusterAddrTable":{}}` {
		t.Fatalf("empty: %s", got)
	}
}

func TestQuoteIntKeys(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{0:"a",1:"b"}`, `{"0":"a","1":"b"}`},
		{`{"a":{-1:2, 3 :[{4:5}]}}`, `{"a":{"-1":2, "3" :[{"4":5}]}}`},
		{`[1,2,{7:"x,8:y"}]`, `[1,2,{"7":"x,8:y"}]`},
		{`{"k":"{0:\"1\"}"}`, `{"k":"{0:\"1\"}"}`},
		{`{"0":"a"}`, `{"0":"a"}`},
		{`{ 12 : 3 , 4: 5}`, `{ "12" : 3 , "4": 5}`},
		{``, ``},
		{`{"a\\":1,2:3}`, `{"a\\":1,"2":3}`},
	}
	for _, c := range cases {
		if got := string(QuoteIntKeys([]byte(c.in))); got != c.want {
			t.Errorf("QuoteIntKeys(%s) = %s, want %s", c.in, got, c.want)
		}
	}
	// garbage never panics
	for _, s := range []string{`{`, `"`, `{"`, `{1`, `}}]]`, `{"a":"\`, `-`, `{-`} {
		QuoteIntKeys([]byte(s))
	}
}

func FuzzQuoteIntKeys(f *testing.F) {
	f.Add([]byte(goldenRouteFast))
	f.Add([]byte(`{"a":{1:2}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		out := QuoteIntKeys(data)
		if json.Valid(data) && string(out) != string(data) {
			t.Fatalf("valid JSON changed: %s -> %s", data, out)
		}
	})
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "broker-a", "10.0.0.1:10911", `q"uote`, `back\slash`, "tab\t", "<&>", "ünïcode", "\xff"} {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); string(got) != string(want) {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
		}
	}
}
