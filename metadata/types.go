package metadata

import (
	"bytes"
	"encoding/json"
	"maps"
)

// DataVersion is RocketMQ's DataVersion: it changes on every mutation of the
// table it belongs to, so a name server (or a slave) can tell whether the
// table it holds is current. JSON field order is fastjson's (alphabetical).
type DataVersion struct {
	Counter      int64 `json:"counter"`
	StateVersion int64 `json:"stateVersion"`
	Timestamp    int64 `json:"timestamp"` // unix milliseconds of the last change
}

// next bumps the version: counter+1, timestamp = ts (unix ms).
func (d *DataVersion) next(ts int64) {
	d.Counter++
	d.Timestamp = ts
}

// TopicConfig is one entry of topics.json's topicConfigTable (RocketMQ
// TopicConfig). Fields are in fastjson's (alphabetical) order.
type TopicConfig struct {
	Attributes      map[string]string `json:"attributes"`
	Order           bool              `json:"order"`
	Perm            int               `json:"perm"`
	ReadQueueNums   int               `json:"readQueueNums"`
	TopicFilterType string            `json:"topicFilterType"`
	TopicName       string            `json:"topicName"`
	TopicSysFlag    int               `json:"topicSysFlag"`
	WriteQueueNums  int               `json:"writeQueueNums"`
}

// DefaultTopicQueueNums is Java TopicConfig's default read/write queue count.
const DefaultTopicQueueNums = 16

// NewTopicConfig returns Java's defaults for a new topic: perm 6 (RW),
// SINGLE_TAG, not ordered, no attributes, queues read = write = queueNums.
func NewTopicConfig(name string, queueNums int) TopicConfig {
	return TopicConfig{
		Attributes:      map[string]string{},
		Perm:            DefaultPerm,
		ReadQueueNums:   queueNums,
		TopicFilterType: SingleTag,
		TopicName:       name,
		WriteQueueNums:  queueNums,
	}
}

// Clone returns a deep copy.
func (t TopicConfig) Clone() TopicConfig {
	t.Attributes = cloneAttrs(t.Attributes)
	return t
}

func (t *TopicConfig) normalize() {
	if t.Attributes == nil {
		t.Attributes = map[string]string{}
	}
	if t.TopicFilterType == "" {
		t.TopicFilterType = SingleTag
	}
}

// GroupRetryPolicy is SubscriptionGroupConfig.groupRetryPolicy. The policy
// bodies are kept as raw JSON so files written by Java round-trip unchanged.
type GroupRetryPolicy struct {
	CustomizedRetryPolicy  json.RawMessage `json:"customizedRetryPolicy,omitempty"`
	ExponentialRetryPolicy json.RawMessage `json:"exponentialRetryPolicy,omitempty"`
	Type                   string          `json:"type"` // CUSTOMIZED (default) | EXPONENTIAL
}

// SubscriptionGroupConfig is one entry of subscriptionGroup.json's
// subscriptionGroupTable (RocketMQ SubscriptionGroupConfig), fields in
// fastjson's order.
type SubscriptionGroupConfig struct {
	Attributes                     map[string]string `json:"attributes"`
	BrokerID                       int64             `json:"brokerId"`
	ConsumeBroadcastEnable         bool              `json:"consumeBroadcastEnable"`
	ConsumeEnable                  bool              `json:"consumeEnable"`
	ConsumeFromMinEnable           bool              `json:"consumeFromMinEnable"`
	ConsumeMessageOrderly          bool              `json:"consumeMessageOrderly"`
	ConsumeTimeoutMinute           int               `json:"consumeTimeoutMinute"`
	GroupName                      string            `json:"groupName"`
	GroupRetryPolicy               GroupRetryPolicy  `json:"groupRetryPolicy"`
	GroupSysFlag                   int               `json:"groupSysFlag"`
	NotifyConsumerIdsChangedEnable bool              `json:"notifyConsumerIdsChangedEnable"`
	RetryMaxTimes                  int               `json:"retryMaxTimes"`
	RetryQueueNums                 int               `json:"retryQueueNums"`
	// SubscriptionDataSet (5.x, usually absent) is kept as raw JSON.
	SubscriptionDataSet          json.RawMessage `json:"subscriptionDataSet,omitempty"`
	WhichBrokerWhenConsumeSlowly int64           `json:"whichBrokerWhenConsumeSlowly"`
}

// NewSubscriptionGroupConfig returns Java's defaults: consume, consume from
// min and broadcast enabled, 1 retry queue, 16 retries, brokerId 0, slow
// consumers redirected to broker 1, consumer-id change notification on,
// 15-minute consume timeout, CUSTOMIZED retry policy.
func NewSubscriptionGroupConfig(name string) SubscriptionGroupConfig {
	return SubscriptionGroupConfig{
		Attributes:                     map[string]string{},
		ConsumeBroadcastEnable:         true,
		ConsumeEnable:                  true,
		ConsumeFromMinEnable:           true,
		ConsumeTimeoutMinute:           15,
		GroupName:                      name,
		GroupRetryPolicy:               GroupRetryPolicy{Type: "CUSTOMIZED"},
		NotifyConsumerIdsChangedEnable: true,
		RetryMaxTimes:                  16,
		RetryQueueNums:                 1,
		WhichBrokerWhenConsumeSlowly:   1,
	}
}

// Clone returns a deep copy.
func (g SubscriptionGroupConfig) Clone() SubscriptionGroupConfig {
	g.Attributes = cloneAttrs(g.Attributes)
	g.GroupRetryPolicy.CustomizedRetryPolicy = cloneRaw(g.GroupRetryPolicy.CustomizedRetryPolicy)
	g.GroupRetryPolicy.ExponentialRetryPolicy = cloneRaw(g.GroupRetryPolicy.ExponentialRetryPolicy)
	g.SubscriptionDataSet = cloneRaw(g.SubscriptionDataSet)
	return g
}

func (g *SubscriptionGroupConfig) normalize() {
	if g.Attributes == nil {
		g.Attributes = map[string]string{}
	}
	if g.GroupRetryPolicy.Type == "" {
		g.GroupRetryPolicy.Type = "CUSTOMIZED"
	}
	g.GroupRetryPolicy.CustomizedRetryPolicy = compactRaw(g.GroupRetryPolicy.CustomizedRetryPolicy)
	g.GroupRetryPolicy.ExponentialRetryPolicy = compactRaw(g.GroupRetryPolicy.ExponentialRetryPolicy)
	g.SubscriptionDataSet = compactRaw(g.SubscriptionDataSet)
}

// compactRaw drops insignificant whitespace (and a JSON null), so a raw
// value reads back the same after a pretty-printed write.
func compactRaw(r json.RawMessage) json.RawMessage {
	if len(r) == 0 || string(r) == "null" {
		return nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, r); err != nil {
		return r
	}
	return b.Bytes()
}

func cloneAttrs(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return maps.Clone(m)
}

func cloneRaw(r json.RawMessage) json.RawMessage {
	if r == nil {
		return nil
	}
	return append(json.RawMessage(nil), r...)
}

// QueueOffset is one queue's offset in an offset operation. For delay
// offsets Topic is empty and QueueID holds the delay level.
type QueueOffset struct {
	Topic   string
	QueueID int32
	Offset  int64
}
