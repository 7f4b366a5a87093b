package protocol

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// DataVersion versions a broker's topic table (and other metadata). JSON:
// {"counter":N,"stateVersion":S,"timestamp":ms}; stateVersion is 5.x only.
type DataVersion struct {
	Counter      int64 `json:"counter"`
	StateVersion int64 `json:"stateVersion"`
	Timestamp    int64 `json:"timestamp"`
}

// Equal compares all three fields, as Java's DataVersion.equals does.
func (d DataVersion) Equal(o DataVersion) bool { return d == o }

// Next returns the version after d: counter+1, timestamp nowMillis.
func (d DataVersion) Next(nowMillis int64) DataVersion {
	return DataVersion{Counter: d.Counter + 1, StateVersion: d.StateVersion, Timestamp: nowMillis}
}

// Encode returns the compact JSON form.
func (d DataVersion) Encode() []byte { return appendMarshal(nil, d) }

// TopicFilterType values of TopicConfig.TopicFilterType.
const (
	SingleTag = "SINGLE_TAG"
	MultiTag  = "MULTI_TAG"
)

// TopicConfig is one entry of a broker's topic table (topics.json and
// REGISTER_BROKER). Field order is fastjson's.
type TopicConfig struct {
	Attributes      map[string]string `json:"attributes"`
	Order           bool              `json:"order"`
	Perm            int32             `json:"perm"`
	ReadQueueNums   int32             `json:"readQueueNums"`
	TopicFilterType string            `json:"topicFilterType"`
	TopicName       string            `json:"topicName"`
	TopicSysFlag    int32             `json:"topicSysFlag"`
	WriteQueueNums  int32             `json:"writeQueueNums"`
}

// TopicConfigSerializeWrapper is the topic table with its version, as in
// topics.json and in RegisterBrokerBody. The 5.x static-topic maps are not
// modelled (they are ignored on decode and never sent).
type TopicConfigSerializeWrapper struct {
	DataVersion      DataVersion             `json:"dataVersion"`
	TopicConfigTable map[string]*TopicConfig `json:"topicConfigTable"`
}

// RegisterBrokerBody is the body of REGISTER_BROKER (protocol.md §4.4).
type RegisterBrokerBody struct {
	FilterServerList            []string                    `json:"filterServerList"`
	TopicConfigSerializeWrapper TopicConfigSerializeWrapper `json:"topicConfigSerializeWrapper"`
}

// Encode returns the uncompressed JSON form, the only one rmqd sends.
func (r *RegisterBrokerBody) Encode() []byte {
	c := *r
	if c.FilterServerList == nil {
		c.FilterServerList = []string{}
	}
	if c.TopicConfigSerializeWrapper.TopicConfigTable == nil {
		c.TopicConfigSerializeWrapper.TopicConfigTable = map[string]*TopicConfig{}
	}
	return appendMarshal(nil, &c)
}

// ErrBadRegisterBody reports a REGISTER_BROKER body that does not decode.
var ErrBadRegisterBody = errors.New("protocol: bad register broker body")

// DecodeRegisterBrokerBody parses a REGISTER_BROKER body. compressed is the
// request's "compressed" ext field: true selects the deprecated binary form
// (a zlib stream of length-prefixed DataVersion JSON, topic configs in
// TopicConfig text form and the filter-server JSON list); false selects
// JSON, parsed leniently (fastjson's bare integer keys are accepted). An
// empty body decodes to an empty table.
func DecodeRegisterBrokerBody(body []byte, compressed bool) (*RegisterBrokerBody, error) {
	if len(body) == 0 {
		return &RegisterBrokerBody{TopicConfigSerializeWrapper: TopicConfigSerializeWrapper{TopicConfigTable: map[string]*TopicConfig{}}}, nil
	}
	if compressed {
		return decodeCompressedRegisterBody(body)
	}
	var r RegisterBrokerBody
	if err := json.Unmarshal(QuoteIntKeys(body), &r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRegisterBody, err)
	}
	if r.TopicConfigSerializeWrapper.TopicConfigTable == nil {
		r.TopicConfigSerializeWrapper.TopicConfigTable = map[string]*TopicConfig{}
	}
	return &r, nil
}

// maxCompressedRegisterBody bounds the inflated size of a compressed
// REGISTER_BROKER body (a frame is at most 16 MiB; deflate can expand a lot).
const maxCompressedRegisterBody = 64 << 20

func decodeCompressedRegisterBody(body []byte) (*RegisterBrokerBody, error) {
	var rd io.ReadCloser
	var err error
	if rd, err = zlib.NewReader(bytes.NewReader(body)); err != nil {
		rd = flate.NewReader(bytes.NewReader(body)) // raw deflate, just in case
	}
	defer rd.Close()
	raw, err := io.ReadAll(io.LimitReader(rd, maxCompressedRegisterBody+1))
	if err != nil {
		return nil, fmt.Errorf("%w: inflate: %v", ErrBadRegisterBody, err)
	}
	if len(raw) > maxCompressedRegisterBody {
		return nil, fmt.Errorf("%w: inflated body over %d bytes", ErrBadRegisterBody, maxCompressedRegisterBody)
	}
	p := raw
	next := func() ([]byte, error) {
		if len(p) < 4 {
			return nil, io.ErrUnexpectedEOF
		}
		n := int(int32(binary.BigEndian.Uint32(p)))
		if n < 0 || n > len(p)-4 {
			return nil, io.ErrUnexpectedEOF
		}
		item := p[4 : 4+n]
		p = p[4+n:]
		return item, nil
	}
	r := &RegisterBrokerBody{TopicConfigSerializeWrapper: TopicConfigSerializeWrapper{TopicConfigTable: map[string]*TopicConfig{}}}
	dv, err := next()
	if err != nil {
		return nil, fmt.Errorf("%w: data version: %v", ErrBadRegisterBody, err)
	}
	if err := json.Unmarshal(dv, &r.TopicConfigSerializeWrapper.DataVersion); err != nil {
		return nil, fmt.Errorf("%w: data version: %v", ErrBadRegisterBody, err)
	}
	if len(p) < 4 {
		return nil, fmt.Errorf("%w: topic count: %v", ErrBadRegisterBody, io.ErrUnexpectedEOF)
	}
	count := int(int32(binary.BigEndian.Uint32(p)))
	p = p[4:]
	if count < 0 || count > len(p)/4 {
		return nil, fmt.Errorf("%w: topic count %d", ErrBadRegisterBody, count)
	}
	for i := 0; i < count; i++ {
		item, err := next()
		if err != nil {
			return nil, fmt.Errorf("%w: topic %d: %v", ErrBadRegisterBody, i, err)
		}
		tc, err := DecodeTopicConfigText(string(item))
		if err != nil {
			return nil, fmt.Errorf("%w: topic %d: %v", ErrBadRegisterBody, i, err)
		}
		r.TopicConfigSerializeWrapper.TopicConfigTable[tc.TopicName] = tc
	}
	fs, err := next()
	if err != nil {
		return nil, fmt.Errorf("%w: filter servers: %v", ErrBadRegisterBody, err)
	}
	if err := json.Unmarshal(fs, &r.FilterServerList); err != nil {
		return nil, fmt.Errorf("%w: filter servers: %v", ErrBadRegisterBody, err)
	}
	// 5.x appends the static-topic mapping infos; we do not use them.
	return r, nil
}

// EncodeCompressedRegisterBrokerBody produces the deprecated compressed
// form (for tests and for talking to very old name servers).
func EncodeCompressedRegisterBrokerBody(r *RegisterBrokerBody) []byte {
	var raw bytes.Buffer
	put := func(b []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		raw.Write(n[:])
		raw.Write(b)
	}
	put(r.TopicConfigSerializeWrapper.DataVersion.Encode())
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(r.TopicConfigSerializeWrapper.TopicConfigTable)))
	raw.Write(n[:])
	for _, name := range sortedKeys(r.TopicConfigSerializeWrapper.TopicConfigTable) {
		put([]byte(r.TopicConfigSerializeWrapper.TopicConfigTable[name].EncodeText()))
	}
	fsl := r.FilterServerList
	if fsl == nil {
		fsl = []string{}
	}
	put(appendMarshal(nil, fsl))
	var out bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&out, zlib.BestCompression)
	zw.Write(raw.Bytes())
	zw.Close()
	return out.Bytes()
}

// EncodeText renders Java's TopicConfig.encode() form: "name read write
// perm filterType attributesJSON", separated by single spaces.
func (t *TopicConfig) EncodeText() string {
	attrs := t.Attributes
	if attrs == nil {
		attrs = map[string]string{}
	}
	filter := t.TopicFilterType
	if filter == "" {
		filter = SingleTag
	}
	return fmt.Sprintf("%s %d %d %d %s %s", t.TopicName, t.ReadQueueNums, t.WriteQueueNums, t.Perm, filter, appendMarshal(nil, attrs))
}

// DecodeTopicConfigText parses Java's TopicConfig text form (4.x has no
// attributes part).
func DecodeTopicConfigText(s string) (*TopicConfig, error) {
	parts := strings.SplitN(s, " ", 6)
	if len(parts) < 5 {
		return nil, fmt.Errorf("topic config %q: want at least 5 fields", s)
	}
	tc := &TopicConfig{TopicName: parts[0], TopicFilterType: parts[4], Attributes: map[string]string{}}
	for i, dst := range []*int32{&tc.ReadQueueNums, &tc.WriteQueueNums, &tc.Perm} {
		n, err := strconv.ParseInt(parts[i+1], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("topic config %q: field %d: %v", s, i+1, err)
		}
		*dst = int32(n)
	}
	if len(parts) == 6 && parts[5] != "" {
		if err := json.Unmarshal([]byte(parts[5]), &tc.Attributes); err != nil {
			return nil, fmt.Errorf("topic config %q: attributes: %v", s, err)
		}
	}
	return tc, nil
}

// TopicList is the body of GET_ALL_TOPIC_LIST_FROM_NAMESERVER,
// GET_TOPICS_BY_CLUSTER, GET_SYSTEM_TOPIC_LIST_FROM_NS and the unit-topic
// lists.
type TopicList struct {
	BrokerAddr string   `json:"brokerAddr,omitempty"`
	TopicList  []string `json:"topicList"`
}

// Encode returns compact JSON; a nil list is written as [].
func (t *TopicList) Encode() []byte {
	c := *t
	if c.TopicList == nil {
		c.TopicList = []string{}
	}
	return appendMarshal(nil, &c)
}

// KVTable is a string map body: {"table":{...}} (GET_KVLIST_BY_NAMESPACE,
// the REGISTER_BROKER reply, GET_BROKER_RUNTIME_INFO).
type KVTable struct {
	Table map[string]string `json:"table"`
}

// Encode returns compact JSON; a nil table is written as {}.
func (k *KVTable) Encode() []byte {
	c := *k
	if c.Table == nil {
		c.Table = map[string]string{}
	}
	return appendMarshal(nil, &c)
}
