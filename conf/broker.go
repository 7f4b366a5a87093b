package conf

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// FlushDiskType is the flushDiskType key.
type FlushDiskType string

const (
	AsyncFlush FlushDiskType = "ASYNC_FLUSH"
	SyncFlush  FlushDiskType = "SYNC_FLUSH"
)

// BrokerRole is the brokerRole key. Ignored in DLedger mode, where the Raft
// role decides (leader = master, follower = slave).
type BrokerRole string

const (
	AsyncMaster BrokerRole = "ASYNC_MASTER"
	SyncMaster  BrokerRole = "SYNC_MASTER"
	Slave       BrokerRole = "SLAVE"
)

// BrokerConfig is broker.conf. Field tags carry the Java key names; the
// defaults are DefaultBroker's. Durations are plain integers in the unit the
// key name or doc.go gives (milliseconds unless said otherwise), as in Java.
//
// A BrokerConfig is a plain value: it is not safe to Set while other
// goroutines read it. Runtime updates should Set on a Clone and publish the
// clone (for example through an atomic.Pointer).
type BrokerConfig struct {
	// Identity.
	RocketmqHome      string     `key:"rocketmqHome" path:"true"`
	BrokerClusterName string     `key:"brokerClusterName" important:"true"`
	BrokerName        string     `key:"brokerName" important:"true"`
	BrokerID          int        `key:"brokerId" important:"true"`
	BrokerRole        BrokerRole `key:"brokerRole" enum:"ASYNC_MASTER,SYNC_MASTER,SLAVE" important:"true"`
	BrokerPermission  int        `key:"brokerPermission"`

	// Network.
	BrokerIP1    string `key:"brokerIP1" important:"true"`
	BrokerIP2    string `key:"brokerIP2"`
	ListenPort   int    `key:"listenPort" important:"true"`
	NamesrvAddr  string `key:"namesrvAddr" important:"true"`
	MaxFrameSize int    `key:"maxFrameSize"`

	// Storage paths. Empty derived paths resolve under StorePathRootDir (see
	// the CommitLogDir, ConsumeQueueDir, IndexDir, ConfigDir, DLedgerDir methods).
	StorePathRootDir          string `key:"storePathRootDir" path:"true" important:"true"`
	StorePathCommitLog        string `key:"storePathCommitLog" path:"true" important:"true"`
	StorePathConsumeQueue     string `key:"storePathConsumeQueue" path:"true"`
	StorePathIndex            string `key:"storePathIndex" path:"true"`
	StorePathDLedgerCommitLog string `key:"storePathDLedgerCommitLog" path:"true"`

	// Store layout and flushing.
	MappedFileSizeCommitLog        int           `key:"mappedFileSizeCommitLog"`
	MappedFileSizeConsumeQueue     int           `key:"mappedFileSizeConsumeQueue"`
	FlushDiskType                  FlushDiskType `key:"flushDiskType" enum:"ASYNC_FLUSH,SYNC_FLUSH" important:"true"`
	SyncFlushTimeout               int           `key:"syncFlushTimeout"`
	FlushIntervalCommitLog         int           `key:"flushIntervalCommitLog"`
	FlushCommitLogLeastPages       int           `key:"flushCommitLogLeastPages"`
	FlushCommitLogThoroughInterval int           `key:"flushCommitLogThoroughInterval"`
	FlushIntervalConsumeQueue      int           `key:"flushIntervalConsumeQueue"`
	FlushConsumerOffsetInterval    int           `key:"flushConsumerOffsetInterval"`
	FlushDelayOffsetInterval       int           `key:"flushDelayOffsetInterval"`

	// Retention.
	DeleteWhen                  string `key:"deleteWhen"`
	FileReservedTime            int    `key:"fileReservedTime"`
	DiskMaxUsedSpaceRatio       int    `key:"diskMaxUsedSpaceRatio"`
	DiskSpaceCleanForciblyRatio int    `key:"diskSpaceCleanForciblyRatio"`
	DiskSpaceWarningLevelRatio  int    `key:"diskSpaceWarningLevelRatio"`
	CleanFileForciblyEnable     bool   `key:"cleanFileForciblyEnable"`

	// Messages and index.
	MaxMessageSize                    int    `key:"maxMessageSize"`
	MessageDelayLevel                 string `key:"messageDelayLevel"`
	MessageIndexEnable                bool   `key:"messageIndexEnable"`
	MaxHashSlotNum                    int    `key:"maxHashSlotNum"`
	MaxIndexNum                       int    `key:"maxIndexNum"`
	MaxTransferCountOnMessageInMemory int    `key:"maxTransferCountOnMessageInMemory"`
	MaxTransferBytesOnMessageInMemory int    `key:"maxTransferBytesOnMessageInMemory"`
	MaxTransferCountOnMessageInDisk   int    `key:"maxTransferCountOnMessageInDisk"`
	MaxTransferBytesOnMessageInDisk   int    `key:"maxTransferBytesOnMessageInDisk"`
	AccessMessageInMemoryMaxRatio     int    `key:"accessMessageInMemoryMaxRatio"`

	// Topics and groups.
	AutoCreateTopicEnable          bool   `key:"autoCreateTopicEnable" important:"true"`
	AutoCreateSubscriptionGroup    bool   `key:"autoCreateSubscriptionGroup" important:"true"`
	DefaultTopicQueueNums          int    `key:"defaultTopicQueueNums"`
	ClusterTopicEnable             bool   `key:"clusterTopicEnable"`
	BrokerTopicEnable              bool   `key:"brokerTopicEnable"`
	TraceTopicEnable               bool   `key:"traceTopicEnable"`
	MsgTraceTopicName              string `key:"msgTraceTopicName"`
	NotifyConsumerIdsChangedEnable bool   `key:"notifyConsumerIdsChangedEnable"`

	// Request processing.
	SendMessageThreadPoolNums    int  `key:"sendMessageThreadPoolNums"`
	PullMessageThreadPoolNums    int  `key:"pullMessageThreadPoolNums"`
	QueryMessageThreadPoolNums   int  `key:"queryMessageThreadPoolNums"`
	AdminBrokerThreadPoolNums    int  `key:"adminBrokerThreadPoolNums"`
	ClientManageThreadPoolNums   int  `key:"clientManageThreadPoolNums"`
	ConsumerManageThreadPoolNums int  `key:"consumerManageThreadPoolNums"`
	HeartbeatThreadPoolNums      int  `key:"heartbeatThreadPoolNums"`
	EndTransactionThreadPoolNums int  `key:"endTransactionThreadPoolNums"`
	WaitTimeMillsInSendQueue     int  `key:"waitTimeMillsInSendQueue"`
	LongPollingEnable            bool `key:"longPollingEnable"`
	ShortPollingTimeMills        int  `key:"shortPollingTimeMills"`

	// Name server registration.
	RegisterNameServerPeriod   int  `key:"registerNameServerPeriod"`
	RegisterBrokerTimeoutMills int  `key:"registerBrokerTimeoutMills"`
	ForceRegister              bool `key:"forceRegister"`

	// Transactions.
	TransactionTimeOut       int `key:"transactionTimeOut"`
	TransactionCheckMax      int `key:"transactionCheckMax"`
	TransactionCheckInterval int `key:"transactionCheckInterval"`

	// DLedger (Raft) mode.
	EnableDLegerCommitLog bool   `key:"enableDLegerCommitLog" important:"true"`
	DLegerGroup           string `key:"dLegerGroup" important:"true"`
	DLegerPeers           string `key:"dLegerPeers" important:"true"`
	DLegerSelfID          string `key:"dLegerSelfId" important:"true"`
	PreferredLeaderID     string `key:"preferredLeaderId"`
	EnableBatchPush       bool   `key:"enableBatchPush"`
	// rmqd keys for timers Java hides (dledger owns their semantics).
	DLegerElectionTimeoutMs    int `key:"dLegerElectionTimeoutMs"`
	DLegerElectionTimeoutMaxMs int `key:"dLegerElectionTimeoutMaxMs"`
	DLegerHeartbeatIntervalMs  int `key:"dLegerHeartbeatIntervalMs"`
}

// DefaultBroker returns Java's defaults, with these differences: brokerIP1
// and brokerIP2 default to 127.0.0.1 (Java: first non-loopback address; set
// them for anything but a single-host setup), brokerName defaults to the
// host name as in Java, and namesrvAddr to $NAMESRV_ADDR.
func DefaultBroker() *BrokerConfig {
	cores := runtime.NumCPU()
	send := min(cores, 4)
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "DEFAULT_BROKER"
	}
	return &BrokerConfig{
		RocketmqHome:      os.Getenv("ROCKETMQ_HOME"),
		BrokerClusterName: "DefaultCluster",
		BrokerName:        host,
		BrokerID:          0,
		BrokerRole:        AsyncMaster,
		BrokerPermission:  6,

		BrokerIP1:    "127.0.0.1",
		BrokerIP2:    "127.0.0.1",
		ListenPort:   10911,
		NamesrvAddr:  os.Getenv("NAMESRV_ADDR"),
		MaxFrameSize: 16 << 20,

		StorePathRootDir: ExpandPath("~/store"),

		MappedFileSizeCommitLog:        1 << 30,
		MappedFileSizeConsumeQueue:     300000 * 20,
		FlushDiskType:                  AsyncFlush,
		SyncFlushTimeout:               5000,
		FlushIntervalCommitLog:         500,
		FlushCommitLogLeastPages:       4,
		FlushCommitLogThoroughInterval: 10000,
		FlushIntervalConsumeQueue:      1000,
		FlushConsumerOffsetInterval:    5000,
		FlushDelayOffsetInterval:       10000,

		DeleteWhen:                  "04",
		FileReservedTime:            72,
		DiskMaxUsedSpaceRatio:       75,
		DiskSpaceCleanForciblyRatio: 85,
		DiskSpaceWarningLevelRatio:  90,
		CleanFileForciblyEnable:     true,

		MaxMessageSize:                    4 << 20,
		MessageDelayLevel:                 DefaultMessageDelayLevel,
		MessageIndexEnable:                true,
		MaxHashSlotNum:                    5000000,
		MaxIndexNum:                       20000000,
		MaxTransferCountOnMessageInMemory: 32,
		MaxTransferBytesOnMessageInMemory: 256 << 10,
		MaxTransferCountOnMessageInDisk:   8,
		MaxTransferBytesOnMessageInDisk:   64 << 10,
		AccessMessageInMemoryMaxRatio:     40,

		AutoCreateTopicEnable:          true,
		AutoCreateSubscriptionGroup:    true,
		DefaultTopicQueueNums:          8,
		ClusterTopicEnable:             true,
		BrokerTopicEnable:              true,
		TraceTopicEnable:               false,
		MsgTraceTopicName:              "RMQ_SYS_TRACE_TOPIC",
		NotifyConsumerIdsChangedEnable: true,

		SendMessageThreadPoolNums:    send,
		PullMessageThreadPoolNums:    16 + 2*cores,
		QueryMessageThreadPoolNums:   8 + cores,
		AdminBrokerThreadPoolNums:    16,
		ClientManageThreadPoolNums:   32,
		ConsumerManageThreadPoolNums: 32,
		HeartbeatThreadPoolNums:      min(32, cores),
		EndTransactionThreadPoolNums: max(8+2*cores, 4*send),
		WaitTimeMillsInSendQueue:     200,
		LongPollingEnable:            true,
		ShortPollingTimeMills:        1000,

		RegisterNameServerPeriod:   30000,
		RegisterBrokerTimeoutMills: 24000,
		ForceRegister:              true,

		TransactionTimeOut:       6000,
		TransactionCheckMax:      15,
		TransactionCheckInterval: 30000,

		DLegerElectionTimeoutMs:    600,
		DLegerElectionTimeoutMaxMs: 1000,
		DLegerHeartbeatIntervalMs:  100,
	}
}

// DefaultMessageDelayLevel is Java's messageDelayLevel: levels 1..18.
const DefaultMessageDelayLevel = "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h"

// LoadBroker reads a broker.conf over DefaultBroker. It returns warnings for
// keys that Java knows but rmqd ignores, repeated keys and keys in the wrong
// case; the caller logs them. An unknown key or a bad value is an error (a
// *KeyError naming the file and key). LoadBroker does not call Validate, so
// that -n / -p overrides can be applied first.
func LoadBroker(path string) (*BrokerConfig, []string, error) {
	c := DefaultBroker()
	w, err := loadFile(path, c, javaBrokerKeys)
	if err != nil {
		return nil, w, err
	}
	return c, w, nil
}

// ParseBroker is LoadBroker for an in-memory file; name is used in messages.
func ParseBroker(name, text string) (*BrokerConfig, []string, error) {
	entries, err := ReadProperties(strings.NewReader(text))
	if err != nil {
		return nil, nil, fmt.Errorf("conf: %s: %w", name, err)
	}
	c := DefaultBroker()
	w, err := applyEntries(name, entries, c, javaBrokerKeys)
	if err != nil {
		return nil, w, err
	}
	return c, w, nil
}

// Set parses value into key (any case). It returns a *KeyError wrapping
// ErrUnknownKey, ErrInvalidValue or, for Java keys rmqd ignores,
// ErrNotImplemented. Set does not validate the whole config; call Validate on
// the result.
func (c *BrokerConfig) Set(key, value string) error {
	return setKey(c, javaBrokerKeys, key, value)
}

// Get returns the current value of key as Properties prints it.
func (c *BrokerConfig) Get(key string) (string, bool) { return getKey(c, key) }

// Properties prints every key as key=value lines, in a fixed order, in a form
// LoadBroker reads back to an equal config. This is what -p prints.
func (c *BrokerConfig) Properties() string { return properties(c) }

// ImportantProperties prints only the keys that matter most (Java's
// @ImportantField set, plus the DLedger keys). This is what -m prints.
func (c *BrokerConfig) ImportantProperties() string { return importantProperties(c) }

// String is Properties.
func (c *BrokerConfig) String() string { return properties(c) }

// Clone returns a copy.
func (c *BrokerConfig) Clone() *BrokerConfig { cp := *c; return &cp }

// BrokerKeys lists every key of broker.conf in Properties order.
func BrokerKeys() []string { return keysOf(&BrokerConfig{}) }

// IsJavaOnlyBrokerKey reports whether key is a RocketMQ broker key that rmqd
// accepts but ignores.
func IsJavaOnlyBrokerKey(key string) bool { return javaBrokerKeys[strings.ToLower(key)] }

// CommitLogDir is storePathCommitLog, or <storePathRootDir>/commitlog.
func (c *BrokerConfig) CommitLogDir() string {
	return c.orRoot(c.StorePathCommitLog, "commitlog")
}

// ConsumeQueueDir is storePathConsumeQueue, or <storePathRootDir>/consumequeue.
func (c *BrokerConfig) ConsumeQueueDir() string {
	return c.orRoot(c.StorePathConsumeQueue, "consumequeue")
}

// IndexDir is storePathIndex, or <storePathRootDir>/index.
func (c *BrokerConfig) IndexDir() string { return c.orRoot(c.StorePathIndex, "index") }

// ConfigDir is <storePathRootDir>/config (topics.json and friends).
func (c *BrokerConfig) ConfigDir() string { return filepath.Join(c.StorePathRootDir, "config") }

// DLedgerDir is the DLedger root, <storePathRootDir>/dledger-<dLegerSelfId>
// (data/ and index/ below it). When storePathDLedgerCommitLog is set it names
// the data directory itself, as in Java, and DLedgerDir is its parent.
func (c *BrokerConfig) DLedgerDir() string {
	if c.StorePathDLedgerCommitLog != "" {
		return filepath.Dir(c.StorePathDLedgerCommitLog)
	}
	return filepath.Join(c.StorePathRootDir, "dledger-"+c.DLegerSelfID)
}

func (c *BrokerConfig) orRoot(p, sub string) string {
	if p != "" {
		return p
	}
	return filepath.Join(c.StorePathRootDir, sub)
}

// NamesrvAddrs splits namesrvAddr on ';' (empty parts dropped).
func (c *BrokerConfig) NamesrvAddrs() []string { return splitList(c.NamesrvAddr) }

// VIPPort is the fast channel port, listenPort-2.
func (c *BrokerConfig) VIPPort() int { return c.ListenPort - 2 }

// MessageDelayLevels parses messageDelayLevel: index 0 is level 1.
func (c *BrokerConfig) MessageDelayLevels() ([]time.Duration, error) {
	return ParseDelayLevels(c.MessageDelayLevel)
}

// DLedgerPeers parses dLegerPeers.
func (c *BrokerConfig) DLedgerPeers() ([]Peer, error) { return ParsePeers(c.DLegerPeers) }

// DLedgerSelfIndex is the position of dLegerSelfId in dLegerPeers (-1 if
// absent). Per design.md §3 a follower registers as brokerId index+1.
func (c *BrokerConfig) DLedgerSelfIndex() int {
	peers, err := c.DLedgerPeers()
	if err != nil {
		return -1
	}
	for i, p := range peers {
		if p.ID == c.DLegerSelfID {
			return i
		}
	}
	return -1
}

// PreferredLeaderIDs splits preferredLeaderId on ';'.
func (c *BrokerConfig) PreferredLeaderIDs() []string { return splitList(c.PreferredLeaderID) }

var selfIDPattern = regexp.MustCompile(`^[A-Za-z]+[0-9]+$`)

// Validate checks the config as a whole; all problems are joined into one
// error, each line starting with "conf: ".
func (c *BrokerConfig) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &KeyError{Key: key, Err: invalid(format, args...)})
	}
	if c.BrokerClusterName == "" {
		bad("brokerClusterName", "must not be empty")
	}
	if c.BrokerName == "" {
		bad("brokerName", "must not be empty")
	}
	if c.BrokerID < 0 {
		bad("brokerId", "must be >= 0, got %d", c.BrokerID)
	}
	if c.BrokerPermission&^7 != 0 {
		bad("brokerPermission", "must be a combination of 2 (write), 4 (read) and 1 (inherit), got %d", c.BrokerPermission)
	}
	if c.ListenPort < 3 || c.ListenPort > 65535 {
		bad("listenPort", "must be in 3..65535 (the VIP port is listenPort-2), got %d", c.ListenPort)
	}
	for _, ip := range []struct{ key, v string }{{"brokerIP1", c.BrokerIP1}, {"brokerIP2", c.BrokerIP2}} {
		if ip.v == "" && ip.key == "brokerIP1" {
			bad(ip.key, "must not be empty")
		} else if strings.ContainsAny(ip.v, " :;") {
			bad(ip.key, "must be a host or IP without port, got %q", ip.v)
		}
	}
	for _, a := range c.NamesrvAddrs() {
		if err := checkHostPort(a); err != nil {
			bad("namesrvAddr", "%q: %v", a, err)
		}
	}
	if c.MaxFrameSize < 1024 {
		bad("maxFrameSize", "must be >= 1024, got %d", c.MaxFrameSize)
	}
	if c.StorePathRootDir == "" {
		bad("storePathRootDir", "must not be empty")
	}
	if c.MappedFileSizeCommitLog <= 0 {
		bad("mappedFileSizeCommitLog", "must be > 0, got %d", c.MappedFileSizeCommitLog)
	}
	if c.MappedFileSizeConsumeQueue <= 0 || c.MappedFileSizeConsumeQueue%20 != 0 {
		bad("mappedFileSizeConsumeQueue", "must be a positive multiple of 20, got %d", c.MappedFileSizeConsumeQueue)
	}
	if c.MaxMessageSize <= 0 || c.MaxMessageSize > c.MaxFrameSize {
		bad("maxMessageSize", "must be in 1..maxFrameSize (%d), got %d", c.MaxFrameSize, c.MaxMessageSize)
	}
	if _, err := ParseDelayLevels(c.MessageDelayLevel); err != nil {
		bad("messageDelayLevel", "%v", err)
	}
	if _, err := ParseDeleteWhen(c.DeleteWhen); err != nil {
		bad("deleteWhen", "%v", err)
	}
	if c.FileReservedTime <= 0 {
		bad("fileReservedTime", "must be > 0 hours, got %d", c.FileReservedTime)
	}
	for _, r := range []struct {
		key string
		v   int
	}{{"diskMaxUsedSpaceRatio", c.DiskMaxUsedSpaceRatio}, {"diskSpaceCleanForciblyRatio", c.DiskSpaceCleanForciblyRatio}, {"diskSpaceWarningLevelRatio", c.DiskSpaceWarningLevelRatio}, {"accessMessageInMemoryMaxRatio", c.AccessMessageInMemoryMaxRatio}} {
		if r.v < 1 || r.v > 100 {
			bad(r.key, "must be a percentage in 1..100, got %d", r.v)
		}
	}
	if c.DefaultTopicQueueNums <= 0 {
		bad("defaultTopicQueueNums", "must be > 0, got %d", c.DefaultTopicQueueNums)
	}
	positive := []struct {
		key string
		v   int
	}{
		{"syncFlushTimeout", c.SyncFlushTimeout}, {"flushIntervalCommitLog", c.FlushIntervalCommitLog},
		{"flushIntervalConsumeQueue", c.FlushIntervalConsumeQueue}, {"flushConsumerOffsetInterval", c.FlushConsumerOffsetInterval},
		{"flushDelayOffsetInterval", c.FlushDelayOffsetInterval},
		{"sendMessageThreadPoolNums", c.SendMessageThreadPoolNums}, {"pullMessageThreadPoolNums", c.PullMessageThreadPoolNums},
		{"queryMessageThreadPoolNums", c.QueryMessageThreadPoolNums}, {"adminBrokerThreadPoolNums", c.AdminBrokerThreadPoolNums},
		{"clientManageThreadPoolNums", c.ClientManageThreadPoolNums}, {"consumerManageThreadPoolNums", c.ConsumerManageThreadPoolNums},
		{"heartbeatThreadPoolNums", c.HeartbeatThreadPoolNums}, {"endTransactionThreadPoolNums", c.EndTransactionThreadPoolNums},
		{"shortPollingTimeMills", c.ShortPollingTimeMills}, {"registerNameServerPeriod", c.RegisterNameServerPeriod},
		{"registerBrokerTimeoutMills", c.RegisterBrokerTimeoutMills}, {"transactionTimeOut", c.TransactionTimeOut},
		{"transactionCheckInterval", c.TransactionCheckInterval}, {"maxHashSlotNum", c.MaxHashSlotNum}, {"maxIndexNum", c.MaxIndexNum},
	}
	for _, p := range positive {
		if p.v <= 0 {
			bad(p.key, "must be > 0, got %d", p.v)
		}
	}
	if c.EnableDLegerCommitLog {
		errs = append(errs, c.validateDLedger()...)
	}
	return errors.Join(errs...)
}

func (c *BrokerConfig) validateDLedger() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &KeyError{Key: key, Err: invalid(format, args...)})
	}
	if c.DLegerGroup == "" {
		bad("dLegerGroup", "required when enableDLegerCommitLog=true")
	}
	if c.DLegerSelfID == "" {
		bad("dLegerSelfId", "required when enableDLegerCommitLog=true")
	} else if !selfIDPattern.MatchString(c.DLegerSelfID) {
		bad("dLegerSelfId", "must be letters followed by digits like n0, got %q", c.DLegerSelfID)
	}
	peers, err := c.DLedgerPeers()
	switch {
	case c.DLegerPeers == "":
		bad("dLegerPeers", "required when enableDLegerCommitLog=true")
	case err != nil:
		bad("dLegerPeers", "%v", err)
	default:
		ids := map[string]bool{}
		self := -1
		for i, p := range peers {
			ids[p.ID] = true
			if p.ID == c.DLegerSelfID {
				self = i
			}
			if !selfIDPattern.MatchString(p.ID) {
				bad("dLegerPeers", "peer id %q must be letters followed by digits like n0", p.ID)
			}
		}
		if c.DLegerSelfID != "" && self < 0 {
			bad("dLegerSelfId", "%q is not in dLegerPeers %q", c.DLegerSelfID, c.DLegerPeers)
		}
		if self >= 0 {
			_, port, _ := net.SplitHostPort(peers[self].Addr)
			if p, _ := strconv.Atoi(port); p == c.ListenPort || p == c.ListenPort-2 {
				bad("dLegerPeers", "own peer port %d clashes with listenPort %d (or its VIP port)", p, c.ListenPort)
			}
		}
		for _, id := range c.PreferredLeaderIDs() {
			if !ids[id] {
				bad("preferredLeaderId", "%q is not in dLegerPeers", id)
			}
		}
	}
	if c.DLegerHeartbeatIntervalMs <= 0 {
		bad("dLegerHeartbeatIntervalMs", "must be > 0, got %d", c.DLegerHeartbeatIntervalMs)
	}
	if c.DLegerElectionTimeoutMs <= c.DLegerHeartbeatIntervalMs {
		bad("dLegerElectionTimeoutMs", "must be greater than dLegerHeartbeatIntervalMs (%d), got %d", c.DLegerHeartbeatIntervalMs, c.DLegerElectionTimeoutMs)
	}
	if c.DLegerElectionTimeoutMaxMs < c.DLegerElectionTimeoutMs {
		bad("dLegerElectionTimeoutMaxMs", "must be >= dLegerElectionTimeoutMs (%d), got %d", c.DLegerElectionTimeoutMs, c.DLegerElectionTimeoutMaxMs)
	}
	return errs
}

func checkHostPort(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("want host:port")
	}
	if host == "" {
		return fmt.Errorf("empty host")
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("port must be in 1..65535")
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ";") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
