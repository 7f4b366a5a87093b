package store

import "context"

// MessageStore is RocketMQ's DefaultMessageStore: commitlog, consume queues,
// key index, dispatcher, flush and retention services. Safe for concurrent use.
type MessageStore struct {
	cfg Config
}

// Open recovers (or creates) the store under cfg.RootDir. Call Start to run
// the background services.
func Open(cfg Config) (*MessageStore, error) { return &MessageStore{cfg: cfg}, nil }

// Start launches the dispatcher, flusher and retention goroutines.
func (s *MessageStore) Start() error { return nil }

// Shutdown stops the services, flushes everything, removes the abort file.
func (s *MessageStore) Shutdown() error { return nil }

// PutMessage stores one message and returns once it is durable as the flush
// type requires (group commit with concurrent callers).
func (s *MessageStore) PutMessage(ctx context.Context, m *Message) PutMessageResult {
	return PutMessageResult{Status: ServiceNotAvailable}
}

// PutMessages stores a batch into one queue with consecutive queue offsets
// (SEND_BATCH_MESSAGE); all records are written in one append.
func (s *MessageStore) PutMessages(ctx context.Context, msgs []*Message) PutMessageResult {
	return PutMessageResult{Status: ServiceNotAvailable}
}

// GetMessage reads up to maxMsgNums records of a queue from offset.
func (s *MessageStore) GetMessage(group, topic string, queueID int32, offset int64, maxMsgNums int32, maxTotalBytes int, filter MessageFilter) GetMessageResult {
	return GetMessageResult{Status: NoMatchedLogicQueue}
}

func (s *MessageStore) GetMaxOffsetInQueue(topic string, queueID int32) int64 { return 0 }
func (s *MessageStore) GetMinOffsetInQueue(topic string, queueID int32) int64 { return 0 }
func (s *MessageStore) GetCommitLogOffsetInQueue(topic string, queueID int32, consumeQueueOffset int64) int64 {
	return 0
}
func (s *MessageStore) GetOffsetInQueueByTime(topic string, queueID int32, timestamp int64) int64 {
	return 0
}
func (s *MessageStore) GetEarliestMessageTime(topic string, queueID int32) int64 { return -1 }
func (s *MessageStore) GetMessageStoreTimeStamp(topic string, queueID int32, consumeQueueOffset int64) int64 {
	return -1
}
func (s *MessageStore) GetConsumeQueueUnits(topic string, queueID int32, offset int64, max int) ([]CQUnit, error) {
	return nil, nil
}
func (s *MessageStore) LookMessageByOffset(commitLogOffset int64) (*MessageExt, error) {
	return nil, ErrNotFound
}
func (s *MessageStore) SelectOneMessageByOffset(commitLogOffset int64, size int32) ([]byte, error) {
	return nil, ErrNotFound
}
func (s *MessageStore) QueryMessage(topic, key string, maxNum int32, begin, end int64) (QueryMessageResult, error) {
	return QueryMessageResult{}, nil
}
func (s *MessageStore) GetMaxPhyOffset() int64                               { return 0 }
func (s *MessageStore) GetMinPhyOffset() int64                               { return 0 }
func (s *MessageStore) DeleteTopics(topics []string) int                     { return 0 }
func (s *MessageStore) Topics() map[string][]int32                           { return nil }
func (s *MessageStore) RuntimeInfo() map[string]string                       { return nil }
func (s *MessageStore) SetMessageArrivingListener(l MessageArrivingListener) {}
func (s *MessageStore) DispatchedOffset() int64                              { return 0 }
func (s *MessageStore) ConfirmOffset() int64                                 { return 0 }
func (s *MessageStore) FlushedOffset() int64                                 { return 0 }
