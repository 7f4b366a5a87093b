package protocol

import (
	"encoding/json"
	"slices"
	"sort"
	"strconv"
)

// MasterID is the brokerId of a master in BrokerData.BrokerAddrs and in
// REGISTER_BROKER; slaves use 1, 2, ...
const MasterID int64 = 0

// TopicRouteData is the body of a GET_ROUTEINFO_BY_TOPIC response
// (protocol.md §4.1). Encode it with Encode, never with json.Marshal: the
// wire form depends on the requester (see JSONStyle).
type TopicRouteData struct {
	OrderTopicConf    string              `json:"orderTopicConf,omitempty"`
	QueueDatas        []QueueData         `json:"queueDatas"`
	BrokerDatas       []BrokerData        `json:"brokerDatas"`
	FilterServerTable map[string][]string `json:"filterServerTable"`
}

// QueueData is one broker group's share of a topic. Fields in fastjson's
// (alphabetical) order.
type QueueData struct {
	BrokerName     string `json:"brokerName"`
	Perm           int32  `json:"perm"`
	ReadQueueNums  int32  `json:"readQueueNums"`
	TopicSysFlag   int32  `json:"topicSysFlag"`
	WriteQueueNums int32  `json:"writeQueueNums"`
}

// BrokerData is one broker group (a master and its slaves, or one DLedger
// group): BrokerAddrs maps brokerId (0 = master) to "ip:port".
type BrokerData struct {
	BrokerAddrs        map[int64]string `json:"brokerAddrs"`
	BrokerName         string           `json:"brokerName"`
	Cluster            string           `json:"cluster"`
	EnableActingMaster bool             `json:"enableActingMaster"`
	ZoneName           string           `json:"zoneName,omitempty"`
}

// Clone returns a deep copy (BrokerAddrs is copied).
func (b *BrokerData) Clone() BrokerData {
	c := *b
	c.BrokerAddrs = make(map[int64]string, len(b.BrokerAddrs))
	for id, addr := range b.BrokerAddrs {
		c.BrokerAddrs[id] = addr
	}
	return c
}

// ClusterInfo is the body of a GET_BROKER_CLUSTER_INFO response.
type ClusterInfo struct {
	BrokerAddrTable  map[string]BrokerData `json:"brokerAddrTable"`
	ClusterAddrTable map[string][]string   `json:"clusterAddrTable"`
}

// JSONStyle selects how maps keyed by broker id are written.
type JSONStyle int

const (
	// StandardJSON quotes every key: "brokerAddrs":{"0":"a:1"}. Java name
	// servers send it to peers with version >= 401 (V4_9_4) or that set
	// acceptStandardJsonOnly=true.
	StandardJSON JSONStyle = iota
	// FastJSON leaves integer keys bare, "brokerAddrs":{0:"a:1"}, as Java
	// name servers answer older clients (rocketmq-client-go sends version
	// 317). Not valid JSON; every RocketMQ client, including
	// rocketmq-client-go's textual brokerAddrs parser, accepts it.
	FastJSON
)

// RouteJSONStyle is the style a Java name server uses for a request with the
// given version and acceptStandardJsonOnly header value.
func RouteJSONStyle(version int16, acceptStandardJSONOnly bool) JSONStyle {
	if acceptStandardJSONOnly || version >= VersionV4_9_4 {
		return StandardJSON
	}
	return FastJSON
}

// Encode writes the route as compact JSON (no whitespace anywhere: the Go
// client splits brokerAddrs on ',' and ':'), keys in fastjson's alphabetical
// order, queueDatas always an array and brokerAddrs and filterServerTable
// always objects, even when empty.
func (r *TopicRouteData) Encode(style JSONStyle) []byte {
	b := make([]byte, 0, 256)
	b = append(b, `{"brokerDatas":[`...)
	for i := range r.BrokerDatas {
		if i > 0 {
			b = append(b, ',')
		}
		b = r.BrokerDatas[i].appendJSON(b, style)
	}
	b = append(b, `],"filterServerTable":`...)
	if len(r.FilterServerTable) == 0 {
		b = append(b, "{}"...)
	} else {
		b = appendMarshal(b, r.FilterServerTable)
	}
	if r.OrderTopicConf != "" {
		b = append(b, `,"orderTopicConf":`...)
		b = appendString(b, r.OrderTopicConf)
	}
	b = append(b, `,"queueDatas":`...)
	if len(r.QueueDatas) == 0 {
		b = append(b, "[]"...)
	} else {
		b = appendMarshal(b, r.QueueDatas)
	}
	return append(b, '}')
}

// Encode writes the cluster info as compact JSON with sorted keys.
func (c *ClusterInfo) Encode(style JSONStyle) []byte {
	b := make([]byte, 0, 256)
	b = append(b, `{"brokerAddrTable":{`...)
	for i, name := range sortedKeys(c.BrokerAddrTable) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, name)
		b = append(b, ':')
		bd := c.BrokerAddrTable[name]
		b = bd.appendJSON(b, style)
	}
	b = append(b, `},"clusterAddrTable":{`...)
	for i, name := range sortedKeys(c.ClusterAddrTable) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, name)
		b = append(b, ':')
		names := c.ClusterAddrTable[name]
		if names == nil {
			names = []string{}
		}
		b = appendMarshal(b, names)
	}
	return append(b, "}}"...)
}

func (bd *BrokerData) appendJSON(b []byte, style JSONStyle) []byte {
	b = append(b, `{"brokerAddrs":{`...)
	ids := make([]int64, 0, len(bd.BrokerAddrs))
	for id := range bd.BrokerAddrs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		if style == StandardJSON {
			b = append(b, '"')
		}
		b = strconv.AppendInt(b, id, 10)
		if style == StandardJSON {
			b = append(b, '"')
		}
		b = append(b, ':')
		b = appendString(b, bd.BrokerAddrs[id])
	}
	b = append(b, `},"brokerName":`...)
	b = appendString(b, bd.BrokerName)
	b = append(b, `,"cluster":`...)
	b = appendString(b, bd.Cluster)
	b = append(b, `,"enableActingMaster":`...)
	b = strconv.AppendBool(b, bd.EnableActingMaster)
	if bd.ZoneName != "" {
		b = append(b, `,"zoneName":`...)
		b = appendString(b, bd.ZoneName)
	}
	return append(b, '}')
}

// DecodeTopicRouteData parses a route body in either style.
func DecodeTopicRouteData(body []byte) (*TopicRouteData, error) {
	var r TopicRouteData
	if err := UnmarshalLenient(body, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// DecodeClusterInfo parses a cluster-info body in either style.
func DecodeClusterInfo(body []byte) (*ClusterInfo, error) {
	var c ClusterInfo
	if err := UnmarshalLenient(body, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// appendString appends s as a JSON string: directly when it is plain
// printable ASCII (names and addresses always are), else via encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return appendMarshal(b, s)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func appendMarshal(b []byte, v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		// Only strings, string maps and plain structs reach here.
		panic("protocol: marshal: " + err.Error())
	}
	return append(b, data...)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
