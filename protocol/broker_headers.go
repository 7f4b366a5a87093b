package protocol

// Headers of the client-facing broker codes (protocol.md §2.2, §2.4, §9).
// Required fields follow what every RocketMQ client sends; optional ones
// keep the value the caller preset (use that for defaults).

// SendMessageRequestHeader is SEND_MESSAGE (10) and SEND_REPLY_MESSAGE (324).
type SendMessageRequestHeader struct {
	ProducerGroup         string `ext:"producerGroup,required"`
	Topic                 string `ext:"topic,required"`
	DefaultTopic          string `ext:"defaultTopic"`
	DefaultTopicQueueNums int32  `ext:"defaultTopicQueueNums"`
	QueueID               int32  `ext:"queueId,required"`
	SysFlag               int32  `ext:"sysFlag"`
	BornTimestamp         int64  `ext:"bornTimestamp"`
	Flag                  int32  `ext:"flag"`
	Properties            string `ext:"properties"`
	ReconsumeTimes        int32  `ext:"reconsumeTimes"`
	UnitMode              bool   `ext:"unitMode"`
	Batch                 bool   `ext:"batch"`
	MaxReconsumeTimes     *int32 `ext:"maxReconsumeTimes"`
	BrokerName            string `ext:"bname,omitempty"`
}

// SendMessageRequestHeaderV2 is SEND_MESSAGE_V2 (310), SEND_BATCH_MESSAGE
// (320) and SEND_REPLY_MESSAGE_V2 (325): the same fields under one-letter
// keys.
type SendMessageRequestHeaderV2 struct {
	A string `ext:"a,required"` // producerGroup
	B string `ext:"b,required"` // topic
	C string `ext:"c"`          // defaultTopic
	D int32  `ext:"d"`          // defaultTopicQueueNums
	E int32  `ext:"e,required"` // queueId
	F int32  `ext:"f"`          // sysFlag
	G int64  `ext:"g"`          // bornTimestamp
	H int32  `ext:"h"`          // flag
	I string `ext:"i"`          // properties
	J int32  `ext:"j"`          // reconsumeTimes
	K bool   `ext:"k"`          // unitMode
	L *int32 `ext:"l"`          // maxReconsumeTimes
	M bool   `ext:"m"`          // batch
	N string `ext:"n"`          // brokerName
}

// V1 converts to the long-key form.
func (h *SendMessageRequestHeaderV2) V1() SendMessageRequestHeader {
	return SendMessageRequestHeader{
		ProducerGroup: h.A, Topic: h.B, DefaultTopic: h.C, DefaultTopicQueueNums: h.D,
		QueueID: h.E, SysFlag: h.F, BornTimestamp: h.G, Flag: h.H, Properties: h.I,
		ReconsumeTimes: h.J, UnitMode: h.K, MaxReconsumeTimes: h.L, Batch: h.M, BrokerName: h.N,
	}
}

// SendMessageResponseHeader is the answer to the send codes. MsgID is the
// offset message id (comma-joined for batches); QueueOffset is the logical
// offset of the (first) message.
type SendMessageResponseHeader struct {
	MsgID         string `ext:"msgId"`
	QueueID       int32  `ext:"queueId"`
	QueueOffset   int64  `ext:"queueOffset"`
	TransactionID string `ext:"transactionId,omitempty"`
	MsgRegion     string `ext:"MSG_REGION"`
	TraceOn       string `ext:"TRACE_ON"`
}

// PullMessageRequestHeader is PULL_MESSAGE (11) and LITE_PULL_MESSAGE (361).
type PullMessageRequestHeader struct {
	ConsumerGroup        string `ext:"consumerGroup,required"`
	Topic                string `ext:"topic,required"`
	QueueID              int32  `ext:"queueId,required"`
	QueueOffset          int64  `ext:"queueOffset,required"`
	MaxMsgNums           int32  `ext:"maxMsgNums"`
	SysFlag              int32  `ext:"sysFlag"`
	CommitOffset         int64  `ext:"commitOffset"`
	SuspendTimeoutMillis int64  `ext:"suspendTimeoutMillis"`
	Subscription         string `ext:"subscription"`
	SubVersion           int64  `ext:"subVersion"`
	ExpressionType       string `ext:"expressionType"`
	BrokerName           string `ext:"bname,omitempty"`
}

// Pull sysFlag bits.
const (
	PullFlagCommitOffset int32 = 1 << 0
	PullFlagSuspend      int32 = 1 << 1
	PullFlagSubscription int32 = 1 << 2
	PullFlagClassFilter  int32 = 1 << 3
	PullFlagLitePull     int32 = 1 << 4
)

// PullMessageResponseHeader: all four offsets must always be present
// (protocol.md §10.7).
type PullMessageResponseHeader struct {
	SuggestWhichBrokerID int64 `ext:"suggestWhichBrokerId"`
	NextBeginOffset      int64 `ext:"nextBeginOffset"`
	MinOffset            int64 `ext:"minOffset"`
	MaxOffset            int64 `ext:"maxOffset"`
	TopicSysFlag         int32 `ext:"topicSysFlag"`
	GroupSysFlag         int32 `ext:"groupSysFlag"`
}

// QueryConsumerOffsetRequestHeader is QUERY_CONSUMER_OFFSET (14).
type QueryConsumerOffsetRequestHeader struct {
	ConsumerGroup     string `ext:"consumerGroup,required"`
	Topic             string `ext:"topic,required"`
	QueueID           int32  `ext:"queueId,required"`
	SetZeroIfNotFound *bool  `ext:"setZeroIfNotFound"`
}

// OffsetResponseHeader answers 14, 29, 30 and 31.
type OffsetResponseHeader struct {
	Offset int64 `ext:"offset"`
}

// UpdateConsumerOffsetRequestHeader is UPDATE_CONSUMER_OFFSET (15).
type UpdateConsumerOffsetRequestHeader struct {
	ConsumerGroup string `ext:"consumerGroup,required"`
	Topic         string `ext:"topic,required"`
	QueueID       int32  `ext:"queueId,required"`
	CommitOffset  int64  `ext:"commitOffset,required"`
}

// QueueRequestHeader is GET_MAX_OFFSET (30), GET_MIN_OFFSET (31) and
// GET_EARLIEST_MSG_STORETIME (32).
type QueueRequestHeader struct {
	Topic   string `ext:"topic,required"`
	QueueID int32  `ext:"queueId,required"`
}

// SearchOffsetRequestHeader is SEARCH_OFFSET_BY_TIMESTAMP (29).
// BoundaryType is "lower" (default) or "upper".
type SearchOffsetRequestHeader struct {
	Topic        string `ext:"topic,required"`
	QueueID      int32  `ext:"queueId,required"`
	Timestamp    int64  `ext:"timestamp,required"`
	BoundaryType string `ext:"boundaryType"`
}

// EarliestMsgStoretimeResponseHeader answers 32.
type EarliestMsgStoretimeResponseHeader struct {
	Timestamp int64 `ext:"timestamp"`
}

// UnregisterClientRequestHeader is UNREGISTER_CLIENT (35).
type UnregisterClientRequestHeader struct {
	ClientID      string `ext:"clientID,required"`
	ProducerGroup string `ext:"producerGroup"`
	ConsumerGroup string `ext:"consumerGroup"`
}

// ConsumerGroupHeader is GET_CONSUMER_LIST_BY_GROUP (38),
// NOTIFY_CONSUMER_IDS_CHANGED (40) and GET_CONSUMER_CONNECTION_LIST (203).
type ConsumerGroupHeader struct {
	ConsumerGroup string `ext:"consumerGroup,required"`
}

// ProducerGroupHeader is GET_PRODUCER_CONNECTION_LIST (204).
type ProducerGroupHeader struct {
	ProducerGroup string `ext:"producerGroup,required"`
}

// QueryMessageRequestHeader is QUERY_MESSAGE (12). UniqueKeyQuery is the
// "_UNIQUE_KEY_QUERY" ext field: the key is a UNIQ_KEY, not a KEYS word.
type QueryMessageRequestHeader struct {
	Topic          string `ext:"topic,required"`
	Key            string `ext:"key,required"`
	MaxNum         int32  `ext:"maxNum"`
	BeginTimestamp int64  `ext:"beginTimestamp"`
	EndTimestamp   int64  `ext:"endTimestamp"`
	UniqueKeyQuery bool   `ext:"_UNIQUE_KEY_QUERY"`
}

// QueryMessageResponseHeader answers 12.
type QueryMessageResponseHeader struct {
	IndexLastUpdateTimestamp int64 `ext:"indexLastUpdateTimestamp"`
	IndexLastUpdatePhyoffset int64 `ext:"indexLastUpdatePhyoffset"`
}

// ViewMessageRequestHeader is VIEW_MESSAGE_BY_ID (33): Offset is the
// commit-log physical offset decoded from the offset message id.
type ViewMessageRequestHeader struct {
	Offset int64  `ext:"offset,required"`
	Topic  string `ext:"topic"`
}

// CreateTopicRequestHeader is UPDATE_AND_CREATE_TOPIC (17).
type CreateTopicRequestHeader struct {
	Topic           string `ext:"topic,required"`
	DefaultTopic    string `ext:"defaultTopic"`
	ReadQueueNums   int32  `ext:"readQueueNums"`
	WriteQueueNums  int32  `ext:"writeQueueNums"`
	Perm            int32  `ext:"perm"`
	TopicFilterType string `ext:"topicFilterType"`
	TopicSysFlag    int32  `ext:"topicSysFlag"`
	Order           bool   `ext:"order"`
	Attributes      string `ext:"attributes"`
}

// TopicHeader is DELETE_TOPIC_IN_BROKER (215), GET_TOPIC_STATS_INFO (202),
// QUERY_TOPIC_CONSUME_BY_WHO (300) and GET_TOPIC_CONFIG (351).
type TopicHeader struct {
	Topic string `ext:"topic,required"`
}

// DeleteSubscriptionGroupRequestHeader is DELETE_SUBSCRIPTIONGROUP (207).
type DeleteSubscriptionGroupRequestHeader struct {
	GroupName   string `ext:"groupName,required"`
	CleanOffset bool   `ext:"cleanOffset"`
}

// GetSubscriptionGroupConfigRequestHeader is GET_SUBSCRIPTIONGROUP_CONFIG (352).
type GetSubscriptionGroupConfigRequestHeader struct {
	Group string `ext:"group,required"`
}

// GetConsumeStatsRequestHeader is GET_CONSUME_STATS (208); an empty Topic
// means every topic the group has offsets for.
type GetConsumeStatsRequestHeader struct {
	ConsumerGroup string `ext:"consumerGroup,required"`
	Topic         string `ext:"topic"`
}

// GetBrokerConfigResponseHeader answers GET_BROKER_CONFIG (26): Version is
// the DataVersion JSON of the configuration.
type GetBrokerConfigResponseHeader struct {
	Version string `ext:"version"`
}

// ConsumerClientHeader is GET_CONSUMER_RUNNING_INFO (307) and
// CONSUME_MESSAGE_DIRECTLY (309) as relayed by the broker to a client.
type ConsumerClientHeader struct {
	ConsumerGroup string `ext:"consumerGroup,required"`
	ClientID      string `ext:"clientId,required"`
}

// ResetOffsetRequestHeader is INVOKE_BROKER_TO_RESET_OFFSET (222) and, sent
// by the broker to clients, RESET_CONSUMER_CLIENT_OFFSET (220).
type ResetOffsetRequestHeader struct {
	Topic     string `ext:"topic,required"`
	Group     string `ext:"group,required"`
	Timestamp int64  `ext:"timestamp,required"`
	IsForce   bool   `ext:"isForce"`
	QueueID   *int32 `ext:"queueId"`
}
