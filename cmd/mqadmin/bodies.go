package main

// JSON bodies of broker answers that package protocol does not model
// (TopicStatsTable, ConsumeStats, ConsumerConnection, ProducerConnection,
// GroupList, ResetOffsetBody, BrokerStatsData, ConsumeStatsList), and a
// reader for fastjson's map keys that are objects:
//
//	{"offsetTable":{{"brokerName":"b","queueId":0,"topic":"T"}:{"maxOffset":3,...}}}
//
// Java writes Map<MessageQueue, X> that way; it is not JSON. keysToStrings
// rewrites every non-string object key (an object, an array or a bare
// number) into a JSON string holding its text, so encoding/json can decode
// the body into map[string]X; mqKey then parses such a key.

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
)

type messageQueue struct {
	Topic      string `json:"topic"`
	BrokerName string `json:"brokerName"`
	QueueID    int32  `json:"queueId"`
}

// less is MessageQueue.compareTo: topic, broker name, queue id.
func (m messageQueue) less(o messageQueue) bool {
	if m.Topic != o.Topic {
		return m.Topic < o.Topic
	}
	if m.BrokerName != o.BrokerName {
		return m.BrokerName < o.BrokerName
	}
	return m.QueueID < o.QueueID
}

func (m messageQueue) String() string {
	return fmt.Sprintf("MessageQueue [topic=%s, brokerName=%s, queueId=%d]", m.Topic, m.BrokerName, m.QueueID)
}

func mqKey(k string) (messageQueue, error) {
	var mq messageQueue
	if err := json.Unmarshal([]byte(k), &mq); err != nil {
		return mq, fmt.Errorf("bad message queue key %q: %v", k, err)
	}
	return mq, nil
}

// decodeBody decodes a (possibly fastjson) body into v.
func decodeBody(body []byte, v any) error {
	if len(body) == 0 {
		return errors.New("empty body")
	}
	fixed, err := keysToStrings(body)
	if err != nil {
		return err
	}
	return json.Unmarshal(fixed, v)
}

type topicOffset struct {
	MinOffset           int64 `json:"minOffset"`
	MaxOffset           int64 `json:"maxOffset"`
	LastUpdateTimestamp int64 `json:"lastUpdateTimestamp"`
}

type topicStatsTable struct {
	OffsetTable map[string]topicOffset `json:"offsetTable"`
	TopicPutTps float64                `json:"topicPutTps"`
}

type offsetWrapper struct {
	BrokerOffset   int64 `json:"brokerOffset"`
	ConsumerOffset int64 `json:"consumerOffset"`
	PullOffset     int64 `json:"pullOffset"`
	LastTimestamp  int64 `json:"lastTimestamp"`
}

type consumeStats struct {
	OffsetTable map[string]offsetWrapper `json:"offsetTable"`
	ConsumeTps  float64                  `json:"consumeTps"`
}

// mqOffset is one decoded row of an offset table.
type mqOffset[V any] struct {
	mq  messageQueue
	val V
}

// sortedMQ decodes the keys of an offset table and sorts the rows.
func sortedMQ[V any](table map[string]V) ([]mqOffset[V], error) {
	out := make([]mqOffset[V], 0, len(table))
	for k, v := range table {
		mq, err := mqKey(k)
		if err != nil {
			return nil, err
		}
		out = append(out, mqOffset[V]{mq, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].mq.less(out[j].mq) })
	return out, nil
}

type connection struct {
	ClientID   string `json:"clientId"`
	ClientAddr string `json:"clientAddr"`
	Language   string `json:"language"`
	Version    int    `json:"version"`
}

type subscriptionData struct {
	Topic     string   `json:"topic"`
	SubString string   `json:"subString"`
	TagsSet   []string `json:"tagsSet"`
}

type consumerConnection struct {
	ConnectionSet     []connection                `json:"connectionSet"`
	SubscriptionTable map[string]subscriptionData `json:"subscriptionTable"`
	ConsumeType       string                      `json:"consumeType"`
	MessageModel      string                      `json:"messageModel"`
	ConsumeFromWhere  string                      `json:"consumeFromWhere"`
}

// minVersion is ConsumerConnection.computeMinVersion.
func (c *consumerConnection) minVersion() int {
	v := int(^uint(0) >> 1)
	for _, conn := range c.ConnectionSet {
		if conn.Version < v {
			v = conn.Version
		}
	}
	return v
}

type producerConnection struct {
	ConnectionSet []connection `json:"connectionSet"`
}

type groupList struct {
	GroupList []string `json:"groupList"`
}

type resetOffsetBody struct {
	OffsetTable map[string]int64 `json:"offsetTable"`
}

type statsItem struct {
	Sum   int64   `json:"sum"`
	Tps   float64 `json:"tps"`
	Avgpt float64 `json:"avgpt"`
}

type brokerStatsData struct {
	StatsMinute statsItem `json:"statsMinute"`
	StatsHour   statsItem `json:"statsHour"`
	StatsDay    statsItem `json:"statsDay"`
}

type consumeStatsList struct {
	ConsumeStatsList []map[string][]consumeStats `json:"consumeStatsList"`
	BrokerAddr       string                      `json:"brokerAddr"`
	TotalDiff        int64                       `json:"totalDiff"`
}

// keysToStrings rewrites object keys that are not strings (objects, arrays,
// bare numbers or words) into JSON strings of their text. Strings and values
// are copied unchanged. The result is then ordinary JSON.
func keysToStrings(data []byte) ([]byte, error) {
	p := &keyRewriter{in: data, out: make([]byte, 0, len(data)+len(data)/8)}
	p.ws()
	if err := p.value(0); err != nil {
		return nil, err
	}
	p.ws()
	if p.pos != len(p.in) {
		return nil, p.errorf("trailing data")
	}
	return p.out, nil
}

type keyRewriter struct {
	in  []byte
	pos int
	out []byte
}

const maxJSONDepth = 200

func (p *keyRewriter) errorf(format string, a ...any) error {
	return fmt.Errorf("bad JSON body at byte %d: %s", p.pos, fmt.Sprintf(format, a...))
}

func (p *keyRewriter) ws() {
	for p.pos < len(p.in) {
		switch p.in[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// skipValue advances over one value without writing it and returns its text.
func (p *keyRewriter) skipValue(depth int) ([]byte, error) {
	start := len(p.out)
	if err := p.value(depth); err != nil {
		return nil, err
	}
	text := append([]byte(nil), p.out[start:]...)
	p.out = p.out[:start]
	return text, nil
}

func (p *keyRewriter) value(depth int) error {
	if depth > maxJSONDepth {
		return p.errorf("nested too deeply")
	}
	if p.pos >= len(p.in) {
		return p.errorf("unexpected end")
	}
	switch c := p.in[p.pos]; c {
	case '{':
		return p.object(depth + 1)
	case '[':
		return p.array(depth + 1)
	case '"':
		return p.str()
	default:
		start := p.pos
		for p.pos < len(p.in) {
			b := p.in[p.pos]
			if b == ',' || b == '}' || b == ']' || b == ':' || b == ' ' || b == '\t' || b == '\n' || b == '\r' {
				break
			}
			p.pos++
		}
		if p.pos == start {
			return p.errorf("unexpected %q", c)
		}
		p.out = append(p.out, p.in[start:p.pos]...)
		return nil
	}
}

func (p *keyRewriter) str() error {
	start := p.pos
	p.pos++
	for p.pos < len(p.in) {
		switch p.in[p.pos] {
		case '\\':
			p.pos += 2
			continue
		case '"':
			p.pos++
			p.out = append(p.out, p.in[start:p.pos]...)
			return nil
		}
		p.pos++
	}
	return p.errorf("unterminated string")
}

func (p *keyRewriter) object(depth int) error {
	p.out = append(p.out, '{')
	p.pos++
	p.ws()
	if p.pos < len(p.in) && p.in[p.pos] == '}' {
		p.pos++
		p.out = append(p.out, '}')
		return nil
	}
	for {
		p.ws()
		if p.pos >= len(p.in) {
			return p.errorf("unexpected end in object")
		}
		if p.in[p.pos] == '"' {
			if err := p.str(); err != nil {
				return err
			}
		} else {
			key, err := p.skipValue(depth)
			if err != nil {
				return err
			}
			quoted, _ := json.Marshal(string(key))
			p.out = append(p.out, quoted...)
		}
		p.ws()
		if p.pos >= len(p.in) || p.in[p.pos] != ':' {
			return p.errorf("expected ':'")
		}
		p.pos++
		p.out = append(p.out, ':')
		p.ws()
		if err := p.value(depth); err != nil {
			return err
		}
		p.ws()
		if p.pos >= len(p.in) {
			return p.errorf("unexpected end in object")
		}
		switch p.in[p.pos] {
		case ',':
			p.pos++
			p.out = append(p.out, ',')
		case '}':
			p.pos++
			p.out = append(p.out, '}')
			return nil
		default:
			return p.errorf("expected ',' or '}'")
		}
	}
}

func (p *keyRewriter) array(depth int) error {
	p.out = append(p.out, '[')
	p.pos++
	p.ws()
	if p.pos < len(p.in) && p.in[p.pos] == ']' {
		p.pos++
		p.out = append(p.out, ']')
		return nil
	}
	for {
		p.ws()
		if err := p.value(depth); err != nil {
			return err
		}
		p.ws()
		if p.pos >= len(p.in) {
			return p.errorf("unexpected end in array")
		}
		switch p.in[p.pos] {
		case ',':
			p.pos++
			p.out = append(p.out, ',')
		case ']':
			p.pos++
			p.out = append(p.out, ']')
			return nil
		default:
			return p.errorf("expected ',' or ']'")
		}
	}
}
