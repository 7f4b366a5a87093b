package broker

import (
	"encoding/json"
	"errors"
	"strconv"
)

// JSON bodies of the broker's requests and responses (protocol.md §2, §9).
// Field names are the Java ones; encoding/json output is standard JSON,
// which fastjson (Java) and the Go client both read.

// heartbeatData is the body of HEART_BEAT (34).
type heartbeatData struct {
	ClientID        string         `json:"clientID"`
	ProducerDataSet []producerData `json:"producerDataSet"`
	ConsumerDataSet []consumerData `json:"consumerDataSet"`
}

type producerData struct {
	GroupName string `json:"groupName"`
}

type consumerData struct {
	GroupName           string             `json:"groupName"`
	ConsumeType         string             `json:"consumeType"`
	MessageModel        string             `json:"messageModel"`
	ConsumeFromWhere    string             `json:"consumeFromWhere"`
	SubscriptionDataSet []subscriptionData `json:"subscriptionDataSet"`
	UnitMode            bool               `json:"unitMode"`
}

type subscriptionData struct {
	ClassFilterMode bool     `json:"classFilterMode"`
	Topic           string   `json:"topic"`
	SubString       string   `json:"subString"`
	TagsSet         []string `json:"tagsSet"`
	CodeSet         codeSet  `json:"codeSet"`
	SubVersion      int64    `json:"subVersion"`
	ExpressionType  string   `json:"expressionType"`
}

// codeSet reads tag hashes sent as numbers (Java) or strings (Go) and writes
// numbers.
type codeSet []int32

func (c *codeSet) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	out := make(codeSet, 0, len(raw))
	for _, r := range raw {
		var n int64
		if err := json.Unmarshal(r, &n); err != nil {
			var s string
			if err := json.Unmarshal(r, &s); err != nil {
				return err
			}
			if n, err = strconv.ParseInt(s, 10, 64); err != nil {
				return err
			}
		}
		out = append(out, int32(n))
	}
	*c = out
	return nil
}

// messageQueue is the JSON form of a queue in lock bodies and stats.
type messageQueue struct {
	Topic      string `json:"topic"`
	BrokerName string `json:"brokerName"`
	QueueID    int32  `json:"queueId"`
}

// lockBatchBody is the body of LOCK_BATCH_MQ (41) and UNLOCK_BATCH_MQ (42).
type lockBatchBody struct {
	ConsumerGroup  string         `json:"consumerGroup"`
	ClientID       string         `json:"clientId"`
	OnlyThisBroker bool           `json:"onlyThisBroker"`
	MQSet          []messageQueue `json:"mqSet"`
}

type lockBatchResponse struct {
	LockOKMQSet []messageQueue `json:"lockOKMQSet"`
}

type consumerListBody struct {
	ConsumerIDList []string `json:"consumerIdList"`
}

// connection is one client channel in the connection-list bodies.
type connection struct {
	ClientID   string `json:"clientId"`
	ClientAddr string `json:"clientAddr"`
	Language   string `json:"language"`
	Version    int    `json:"version"`
}

type consumerConnectionBody struct {
	ConnectionSet     []connection                `json:"connectionSet"`
	SubscriptionTable map[string]subscriptionData `json:"subscriptionTable"`
	ConsumeType       string                      `json:"consumeType"`
	MessageModel      string                      `json:"messageModel"`
	ConsumeFromWhere  string                      `json:"consumeFromWhere"`
}

type producerConnectionBody struct {
	ConnectionSet []connection `json:"connectionSet"`
}

type kvTable struct {
	Table map[string]string `json:"table"`
}

type groupListBody struct {
	GroupList []string `json:"groupList"`
}

type topicListBody struct {
	TopicList []string `json:"topicList"`
}

// errBodyDecode wraps a malformed request body.
var errBodyDecode = errors.New("broker: malformed request body")

func decodeBody(b []byte, v any) error {
	if len(b) == 0 {
		return errBodyDecode
	}
	if err := json.Unmarshal(b, v); err != nil {
		return errors.Join(errBodyDecode, err)
	}
	return nil
}
