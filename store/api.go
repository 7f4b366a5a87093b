package store

import (
	"errors"
	"time"

	"github.com/rmqd/rmqd/internal/vfs"
	"go.uber.org/zap"
)

// This file is the contract between the store and the broker's request
// processors. Names follow RocketMQ's DefaultMessageStore so a RocketMQ
// engineer finds PutMessageStatus, GetMessageStatus, GetMessageResult, ... where
// they expect them. The methods themselves live in store.go.

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrClosed is returned after Shutdown.
	ErrClosed = errors.New("store: closed")
	// ErrNotFound: no message at that physical offset (never written, or
	// already removed by retention).
	ErrNotFound = errors.New("store: message not found")
	// ErrMalformed: bytes that do not decode as a message record, batch body,
	// message id or properties string.
	ErrMalformed = errors.New("store: malformed message")
	// ErrCorrupt: a record in the middle of the commitlog fails validation;
	// recovery stops instead of serving or truncating it.
	ErrCorrupt = errors.New("store: commitlog corrupt")
	// ErrLocked: another process holds the store's lock file.
	ErrLocked = errors.New("store: store directory locked by another process")
)

// FlushDiskType is RocketMQ's flushDiskType.
type FlushDiskType int

const (
	// AsyncFlush acknowledges a put once its bytes are written (page cache);
	// a flusher goroutine fsyncs every Config.FlushInterval.
	AsyncFlush FlushDiskType = iota
	// SyncFlush acknowledges a put only after an fsync covering it; concurrent
	// puts share one fsync (group commit).
	SyncFlush
)

func (t FlushDiskType) String() string {
	if t == SyncFlush {
		return "SYNC_FLUSH"
	}
	return "ASYNC_FLUSH"
}

// ParseFlushDiskType accepts "ASYNC_FLUSH" and "SYNC_FLUSH".
func ParseFlushDiskType(s string) (FlushDiskType, error) {
	switch s {
	case "ASYNC_FLUSH", "":
		return AsyncFlush, nil
	case "SYNC_FLUSH":
		return SyncFlush, nil
	}
	return AsyncFlush, errors.New("store: unknown flushDiskType " + s)
}

// Config configures a MessageStore. Start from DefaultConfig(); field names
// are the Java MessageStoreConfig keys.
type Config struct {
	// RootDir is storePathRootDir: checkpoint, abort, lock, consumequeue/, index/ live here.
	RootDir string
	// CommitLogDir is storePathCommitLog; default RootDir/commitlog.
	CommitLogDir string
	// FS is the filesystem; default vfs.Default.
	FS vfs.FS

	// MappedFileSizeCommitLog is the size of every commitlog file (default 1 GiB).
	MappedFileSizeCommitLog int64
	// MappedFileSizeConsumeQueue is the size of a consume queue file; a
	// multiple of 20 (default 300000*20).
	MappedFileSizeConsumeQueue int64

	FlushDiskType FlushDiskType
	// FlushInterval is flushIntervalCommitLog for AsyncFlush (default 500ms).
	FlushInterval time.Duration
	// FlushConsumeQueueInterval is flushIntervalConsumeQueue (default 1s):
	// how often consume queues and the index are fsynced and the
	// checkpoint written. A crash loses at most that much of them, and
	// recovery rebuilds it from the commitlog.
	FlushConsumeQueueInterval time.Duration
	// SyncFlushTimeout bounds how long a SyncFlush put waits for its fsync
	// before answering FlushDiskTimeout (default 5s).
	SyncFlushTimeout time.Duration

	// MaxMessageSize is the largest accepted body (default 4 MiB).
	MaxMessageSize int
	// StoreHost is brokerIP1:listenPort, written into every record
	// (STOREHOST) and into offset message ids. An IPv6 host sets sysflag 0x20.
	StoreHost string

	// FileReservedTime is how long (hours) commitlog files are kept (default 72).
	FileReservedTime int
	// DeleteWhen lists the hours ("04" or "04;16") at which expired files are removed.
	DeleteWhen string
	// DiskMaxUsedSpaceRatio (percent, default 75): above it expired files are
	// removed at any hour; above DiskForceCleanRatio (default 85) files are
	// removed even when not expired (never the last one).
	DiskMaxUsedSpaceRatio int
	DiskForceCleanRatio   int
	// CleanResourceInterval is how often the retention check runs (default 10s).
	CleanResourceInterval time.Duration
	// DeleteFilesBatchMax bounds the files removed per check (default 10).
	DeleteFilesBatchMax int

	// MessageIndexEnable builds key index files (default true).
	MessageIndexEnable bool
	// MaxHashSlotNum / MaxIndexNum size each index file (defaults 5M / 20M).
	MaxHashSlotNum int32
	MaxIndexNum    int32

	// MaxTransferCountOnMessageInMemory / MaxTransferBytesOnMessageInMemory cap
	// one GetMessage (defaults 32 / 256 KiB). MaxFilterMessageCount caps the
	// consume-queue units scanned per call (default 800, at least maxMsgNums).
	MaxTransferCountOnMessageInMemory int
	MaxTransferBytesOnMessageInMemory int
	MaxFilterMessageCount             int

	// MessageDelayLevel is used to compute the tagsCode (delivery time) of
	// SCHEDULE_TOPIC_XXXX consume-queue units.
	MessageDelayLevel string

	// ReplicatedLog, when set, is DLedger mode (issue 5): the commitlog is
	// the replicated log's data, one record per entry (replicated.go). Nil
	// is the classic commitlog under CommitLogDir.
	ReplicatedLog ReplicatedLog
	// ReplicationTimeout bounds how long a put in DLedger mode waits for
	// its commit before answering FlushSlaveTimeout (default 2.5s).
	ReplicationTimeout time.Duration

	// Logger defaults to zap.NewNop().
	Logger *zap.Logger
	// Now is the clock (default time.Now); tests move it for retention.
	Now func() time.Time
	// DiskUsedRatio reports the used fraction (0..1) of the filesystem holding
	// dir; default statfs on the OS, 0 for other filesystems.
	DiskUsedRatio func(dir string) float64
}

// DefaultConfig returns Java's MessageStoreConfig defaults for rootDir.
func DefaultConfig(rootDir string) Config {
	return Config{
		RootDir:                           rootDir,
		FS:                                vfs.Default,
		MappedFileSizeCommitLog:           1 << 30,
		MappedFileSizeConsumeQueue:        300000 * CQUnitSize,
		FlushDiskType:                     AsyncFlush,
		FlushInterval:                     500 * time.Millisecond,
		FlushConsumeQueueInterval:         time.Second,
		SyncFlushTimeout:                  5 * time.Second,
		MaxMessageSize:                    4 << 20,
		StoreHost:                         "127.0.0.1:10911",
		FileReservedTime:                  72,
		DeleteWhen:                        "04",
		DiskMaxUsedSpaceRatio:             75,
		DiskForceCleanRatio:               85,
		CleanResourceInterval:             10 * time.Second,
		DeleteFilesBatchMax:               10,
		MessageIndexEnable:                true,
		MaxHashSlotNum:                    5000000,
		MaxIndexNum:                       20000000,
		MaxTransferCountOnMessageInMemory: 32,
		MaxTransferBytesOnMessageInMemory: 256 * 1024,
		MaxFilterMessageCount:             800,
		MessageDelayLevel:                 "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h",
	}
}

// PutMessageStatus is RocketMQ's PutMessageStatus.
type PutMessageStatus int

const (
	PutOK PutMessageStatus = iota
	FlushDiskTimeout
	FlushSlaveTimeout
	SlaveNotAvailable
	ServiceNotAvailable
	CreateMappedFileFailed
	MessageIllegal
	PropertiesSizeExceeded
	OSPageCacheBusy
	UnknownError
	// NotLeader: this replica may not accept writes (DLedger follower or a
	// leader without quorum). Retryable on another broker; see
	// PutMessageResult.Leader.
	NotLeader
)

var putStatusNames = [...]string{"PUT_OK", "FLUSH_DISK_TIMEOUT", "FLUSH_SLAVE_TIMEOUT", "SLAVE_NOT_AVAILABLE",
	"SERVICE_NOT_AVAILABLE", "CREATE_MAPEDFILE_FAILED", "MESSAGE_ILLEGAL", "PROPERTIES_SIZE_EXCEEDED",
	"OS_PAGECACHE_BUSY", "UNKNOWN_ERROR", "NOT_LEADER"}

func (s PutMessageStatus) String() string {
	if s >= 0 && int(s) < len(putStatusNames) {
		return putStatusNames[s]
	}
	return "UNKNOWN_ERROR"
}

// OK reports whether the message is stored: PutOK, and the three statuses
// Java still answers as SEND_OK-with-warning (the record is in the log).
func (s PutMessageStatus) OK() bool {
	return s == PutOK || s == FlushDiskTimeout || s == FlushSlaveTimeout || s == SlaveNotAvailable
}

// PutMessageResult is the answer to PutMessage / PutMessages.
type PutMessageResult struct {
	Status PutMessageStatus
	// MsgID is the offset message id (protocol.md §5.5) of the record; for a
	// batch, the comma-joined ids of every record (Java's AppendMessageResult).
	MsgID string
	// WroteOffset is the physical offset of the first record.
	WroteOffset int64
	// QueueOffset is the logical offset of the first record in its queue.
	QueueOffset int64
	// WroteBytes is the total size of the records written.
	WroteBytes int32
	// MsgNum is the number of records written (1 unless a batch).
	MsgNum int32
	// StoreTimestamp is the STORETIMESTAMP written into the records.
	StoreTimestamp int64
	// Err explains a non-OK status (nil when Status == PutOK).
	Err error
	// Leader names the current leader's peer id (dLegerSelfId) when
	// Status == NotLeader, if known.
	Leader string
}

// GetMessageStatus is RocketMQ's GetMessageStatus; protocol.md §7.1 maps it to
// pull response codes.
type GetMessageStatus int

const (
	Found GetMessageStatus = iota
	NoMatchedMessage
	MessageWasRemoving
	OffsetFoundNull
	OffsetOverflowBadly
	OffsetOverflowOne
	OffsetTooSmall
	NoMatchedLogicQueue
	NoMessageInQueue
)

var getStatusNames = [...]string{"FOUND", "NO_MATCHED_MESSAGE", "MESSAGE_WAS_REMOVING", "OFFSET_FOUND_NULL",
	"OFFSET_OVERFLOW_BADLY", "OFFSET_OVERFLOW_ONE", "OFFSET_TOO_SMALL", "NO_MATCHED_LOGIC_QUEUE", "NO_MESSAGE_IN_QUEUE"}

func (s GetMessageStatus) String() string {
	if s >= 0 && int(s) < len(getStatusNames) {
		return getStatusNames[s]
	}
	return "UNKNOWN"
}

// GetMessageResult is the answer to GetMessage.
type GetMessageResult struct {
	Status GetMessageStatus
	// NextBeginOffset is where the consumer should pull next (§7.1 table).
	NextBeginOffset int64
	MinOffset       int64
	MaxOffset       int64
	// Messages are complete stored records (§5.2), in queue order, ready to
	// be concatenated into a pull response body. They are sub-slices of one
	// buffer owned by the caller after the call.
	Messages [][]byte
	// QueueOffsets[i] is the logical offset of Messages[i].
	QueueOffsets []int64
	MsgCount     int
	// BufferTotalSize is the sum of len(Messages[i]).
	BufferTotalSize int
	// SuggestPullingFromSlave: the consumer lags far behind (its data is
	// beyond the in-memory ratio); the broker answers suggestWhichBrokerId.
	SuggestPullingFromSlave bool
}

// Body returns the pull response body: the records concatenated. It returns
// the backing buffer itself when the records are contiguous (the usual case).
func (r *GetMessageResult) Body() []byte {
	if len(r.Messages) == 0 {
		return nil
	}
	first := r.Messages[0]
	if cap(first) >= r.BufferTotalSize {
		whole := first[:r.BufferTotalSize]
		pos := 0
		contiguous := true
		for _, m := range r.Messages {
			if len(m) == 0 || &whole[pos] != &m[0] {
				contiguous = false
				break
			}
			pos += len(m)
		}
		if contiguous {
			return whole
		}
	}
	out := make([]byte, 0, r.BufferTotalSize)
	for _, m := range r.Messages {
		out = append(out, m...)
	}
	return out
}

// MessageFilter decides which messages a pull returns (the broker builds it
// from the subscription: tag hash set, SQL92 expression).
type MessageFilter interface {
	// IsMatchedByConsumeQueue tests the consume-queue unit's tagsCode.
	IsMatchedByConsumeQueue(tagsCode int64) bool
	// IsMatchedByCommitLog tests the record itself (RecordProperties reads
	// its properties); called only for units that passed
	// IsMatchedByConsumeQueue. The record aliases the read buffer: do not
	// keep it.
	IsMatchedByCommitLog(record []byte) bool
}

// MessageArrivingListener is called by the dispatcher after the consume-queue
// unit for a message exists (so a GetMessage issued from the callback sees
// it). It runs on the dispatcher goroutine: it must not block. It gets no
// properties: decoding them cost two allocations per dispatched message on
// every replica, and long polling wakes on the tags code.
type MessageArrivingListener func(topic string, queueID int32, logicOffset int64, tagsCode int64,
	storeTimestamp int64)

// CQUnit is one 20-byte consume-queue unit.
type CQUnit struct {
	QueueOffset     int64 // logical offset (unit index)
	CommitLogOffset int64
	Size            int32
	TagsCode        int64
}

// QueryMessageResult is the answer to QueryMessage.
type QueryMessageResult struct {
	// Messages are the stored records found, newest index entries first.
	Messages [][]byte
	// IndexLastUpdateTimestamp / IndexLastUpdatePhyoffset describe the newest
	// index file (the QUERY_MESSAGE response header fields).
	IndexLastUpdateTimestamp int64
	IndexLastUpdatePhyoffset int64
}

// Method set of *MessageStore (store.go, put.go, get.go, clean.go, stats.go):
//
//	Open(cfg Config) (*MessageStore, error)
//	(*MessageStore) Start() error
//	(*MessageStore) Shutdown() error
//	(*MessageStore) PutMessage(ctx, *Message) PutMessageResult
//	(*MessageStore) PutMessages(ctx, []*Message) PutMessageResult
//	(*MessageStore) GetMessage(group, topic, queueID, offset, maxMsgNums, maxTotalBytes, filter) GetMessageResult
//	(*MessageStore) GetMaxOffsetInQueue / GetMinOffsetInQueue(topic, queueID) int64
//	(*MessageStore) GetCommitLogOffsetInQueue(topic, queueID, consumeQueueOffset) int64
//	(*MessageStore) GetOffsetInQueueByTime(topic, queueID, timestamp) int64
//	(*MessageStore) GetEarliestMessageTime(topic, queueID) int64
//	(*MessageStore) GetMessageStoreTimeStamp(topic, queueID, consumeQueueOffset) int64
//	(*MessageStore) GetConsumeQueueUnits(topic, queueID, offset, max) ([]CQUnit, error)
//	(*MessageStore) LookMessageByOffset(commitLogOffset) (*MessageExt, error)
//	(*MessageStore) SelectOneMessageByOffset(commitLogOffset, size) ([]byte, error)
//	(*MessageStore) QueryMessage(topic, key, maxNum, begin, end) (QueryMessageResult, error)
//	(*MessageStore) GetMaxPhyOffset / GetMinPhyOffset() int64
//	(*MessageStore) DeleteTopics(topics []string) int
//	(*MessageStore) DeleteExpiredFiles() int
//	(*MessageStore) Topics() map[string][]int32
//	(*MessageStore) RuntimeInfo() map[string]string
//	(*MessageStore) SetMessageArrivingListener(MessageArrivingListener)
//	(*MessageStore) DispatchedOffset() int64
//	(*MessageStore) ConfirmOffset() int64
//	(*MessageStore) FlushedOffset() int64
//
// DLedger mode (replicated.go; classic mode: always leader, no events):
//
//	(*MessageStore) Replicated() bool
//	(*MessageStore) IsLeader() bool
//	(*MessageStore) Role() ReplicaRole
//	(*MessageStore) SetRoleListener(func(ReplicaRole))
//	(*MessageStore) WaitDispatched(ctx) error
//	(*MessageStore) ProposeSystem(ctx, payload) (pos int64, err error)
//	(*MessageStore) SetSystemRecordHandler(func(pos int64, payload []byte))
//	(*MessageStore) ReplaySystemRecordsFrom(from int64) (int, error)
//	(*MessageStore) ReplicationStatus() ReplicationStatus

// CQUnitSize is the size of one consume-queue unit (§6.2).
const CQUnitSize = 20
