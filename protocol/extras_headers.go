package protocol

// Headers of the retry, delay and transaction codes (protocol.md §2.2,
// §2.3, §8).

// ConsumerSendMsgBackRequestHeader is CONSUMER_SEND_MSG_BACK (36).
// Offset is the commit-log physical offset of the message that failed.
// DelayLevel 0 lets the broker pick 3 + reconsumeTimes; a negative level
// sends the message straight to the DLQ. MaxReconsumeTimes is nil when the
// client did not send it (the group's retryMaxTimes applies then).
type ConsumerSendMsgBackRequestHeader struct {
	Group             string `ext:"group,required"`
	Offset            int64  `ext:"offset,required"`
	DelayLevel        int32  `ext:"delayLevel"`
	OriginMsgID       string `ext:"originMsgId,omitempty"`
	OriginTopic       string `ext:"originTopic,omitempty"`
	UnitMode          bool   `ext:"unitMode"`
	MaxReconsumeTimes *int32 `ext:"maxReconsumeTimes"`
	BrokerName        string `ext:"bname,omitempty"`
}

// Transaction states carried in EndTransactionRequestHeader.CommitOrRollback;
// the same values as the transaction bits of a message's sysFlag.
const (
	TransactionNotType  int32 = 0
	TransactionCommit   int32 = 8
	TransactionRollback int32 = 12
)

// EndTransactionRequestHeader is END_TRANSACTION (37).
// TranStateTableOffset is the half message's offset in the half queue and
// CommitLogOffset its physical offset; both must match the half record.
type EndTransactionRequestHeader struct {
	ProducerGroup        string `ext:"producerGroup,required"`
	TranStateTableOffset int64  `ext:"tranStateTableOffset,required"`
	CommitLogOffset      int64  `ext:"commitLogOffset,required"`
	CommitOrRollback     int32  `ext:"commitOrRollback,required"`
	FromTransactionCheck bool   `ext:"fromTransactionCheck"`
	MsgID                string `ext:"msgId"`
	TransactionID        string `ext:"transactionId"`
	BrokerName           string `ext:"bname,omitempty"`
}

// CheckTransactionStateRequestHeader is CHECK_TRANSACTION_STATE (39),
// sent oneway by the broker to a producer of the half message's group.
type CheckTransactionStateRequestHeader struct {
	Topic                string `ext:"topic,omitempty"`
	TranStateTableOffset int64  `ext:"tranStateTableOffset"`
	CommitLogOffset      int64  `ext:"commitLogOffset"`
	MsgID                string `ext:"msgId"`
	TransactionID        string `ext:"transactionId"`
	OffsetMsgID          string `ext:"offsetMsgId"`
	BrokerName           string `ext:"bname,omitempty"`
}
