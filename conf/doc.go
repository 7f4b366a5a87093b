// Package conf reads RocketMQ properties files (broker.conf, namesrv.conf)
// into typed config structs with Java RocketMQ's defaults. It is the only
// package in rmqd that imports viper, and it imports nothing else of ours:
// the binaries load a file here and hand the plain structs to the packages
// that need them.
//
// # Usage
//
//	c, warnings, err := conf.LoadBroker(path) // defaults, then the file
//	for _, w := range warnings { log.Warn(w) } // ignored Java keys, repeats, key case
//	if addr != "" { err = c.Set("namesrvAddr", addr) } // -n overrides the file
//	if printOnly { fmt.Print(c.Properties()); return } // -p (-m: ImportantProperties)
//	err = c.Validate() // before starting anything
//
// Caller duties:
//  1. Log every warning LoadBroker / LoadNamesrv returns.
//  2. Apply command-line overrides with Set, then call Validate.
//  3. A config is a plain value, not safe for concurrent Set and read: for a
//     runtime change (UPDATE_BROKER_CONFIG) Set on a Clone, Validate it, then
//     publish the clone (e.g. through an atomic.Pointer). Set returns an error
//     wrapping ErrNotImplemented for Java keys rmqd ignores; report those as
//     ignored rather than failing the request.
//  4. To persist a runtime change into the -c file as Java does, call
//     UpdateFile(path, changedKeys): it rewrites only those entries, keeps
//     comments and replaces the file atomically.
//
// # File format
//
// java.util.Properties rules (ReadProperties): "key=value", "key = value",
// "key: value" and "key value" are the same; lines whose first non-blank
// character is '#' or '!' are comments; a line ending in '\' continues on the
// next; \uXXXX, \t, \n escapes are decoded and any other \c is c (so write a
// literal backslash as \\). There are no trailing comments: "listenPort=10911
// # port" is the value "10911 # port" and fails as an invalid integer.
//
// Differences from Java, all deliberate:
//   - Values are trimmed ("listenPort=30911 " is 30911; Java silently keeps
//     the default).
//   - Keys match case-insensitively (with a warning when the case differs);
//     errors and warnings quote the key as spelled in the file.
//   - An unknown key is an error (Java ignores it), with a "did you mean"
//     hint for near misses. A key that Java RocketMQ accepts but rmqd does not
//     implement (IsJavaOnlyBrokerKey; the list comes from the setters of
//     Java's BrokerConfig, MessageStoreConfig, NettyServerConfig,
//     NettyClientConfig and NamesrvConfig) is a warning, so existing files load.
//   - An unparseable value is an error: integers are decimal, booleans are
//     true/false in any case (Java turns anything else into false), enums are
//     matched case-insensitively.
//   - A repeated key: the last one wins, as in Java, with a warning.
//
// Errors are *KeyError values that read
//
//	conf: broker.conf: key "listenPort": invalid integer "abc"
//
// and wrap ErrUnknownKey, ErrInvalidValue or ErrNotImplemented; the struct
// also holds the line number. Warnings read
// "conf: broker.conf:12: key "slaveReadEnable": RocketMQ key not implemented
// by rmqd; ignored".
//
// Parsing is ours (ReadProperties), because viper's properties reader has
// no line numbers, lower-cases keys and expands ${...} references itself;
// viper is used as the value store (case-insensitive lookup, last write wins)
// between the parsed lines and the typed fields, which are decoded strictly
// by this package.
//
// Paths (keys marked "path" below) expand a leading "~" and "${user.home}" to
// the user's home directory. Relative paths are kept relative and so resolve
// against the broker's working directory; the sample files under conf/ use
// ./run/... and expect to be started from the repository root.
//
// # Sample files
//
//	conf/namesrv.conf                   name server on 9876
//	conf/broker.conf                    classic single broker broker-a on 10911
//	conf/dledger/broker-n{0,1,2}.conf   a local 3-replica DLedger group (as in
//	                                    RocketMQ's fast-try): RaftCluster /
//	                                    RaftNode00, listenPort 30911/30921/30931,
//	                                    peers on 40911/40912/40913
//
// # broker.conf keys
//
// Durations are integers in milliseconds unless the meaning says otherwise.
// "cores" is runtime.NumCPU(). Keys marked rmqd do not exist in Java.
//
//	key                               type    default                 meaning
//	rocketmqHome                      path    $ROCKETMQ_HOME          installation directory (informational)
//	brokerClusterName                 string  DefaultCluster          cluster this broker registers under
//	brokerName                        string  host name               broker (replica set) name; all DLedger peers share it
//	brokerId                          int     0                       0 = master, >0 = slave; ignored in DLedger mode (leader 0, follower selfIndex+1)
//	brokerRole                        enum    ASYNC_MASTER            ASYNC_MASTER | SYNC_MASTER | SLAVE; ignored in DLedger mode
//	brokerPermission                  int     6                       4 read | 2 write (| 1 inherit)
//	brokerIP1                         string  127.0.0.1               address registered with the name servers (Java: first non-loopback IPv4; rmqd defaults to loopback, set it for multi-host setups)
//	brokerIP2                         string  127.0.0.1               master-slave HA address (unused in DLedger mode)
//	listenPort                        int     10911                   client/admin port; the VIP port is listenPort-2
//	namesrvAddr                       string  $NAMESRV_ADDR           name servers, host:port;host:port
//	maxFrameSize                      int     16777216                rmqd: largest remoting frame accepted (Java: com.rocketmq.remoting.frameMaxLength)
//	storePathRootDir                  path    ~/store                 store root; config/ holds the metadata JSON
//	storePathCommitLog                path    <root>/commitlog        classic commitlog directory
//	storePathConsumeQueue             path    <root>/consumequeue     rmqd: consume queue directory
//	storePathIndex                    path    <root>/index            rmqd: key index directory
//	storePathDLedgerCommitLog         path    <root>/dledger-<selfId>/data  DLedger data directory
//	mappedFileSizeCommitLog           int     1073741824              commitlog (and DLedger data) file size, bytes
//	mappedFileSizeConsumeQueue        int     6000000                 consume queue file size, bytes (300000 units of 20)
//	flushDiskType                     enum    ASYNC_FLUSH             ASYNC_FLUSH | SYNC_FLUSH (SYNC: ack after fsync; DLedger: fsync on a majority)
//	syncFlushTimeout                  int     5000                    SYNC_FLUSH wait before FLUSH_DISK_TIMEOUT
//	flushIntervalCommitLog            int     500                     async flush interval
//	flushCommitLogLeastPages          int     4                       async flush: least 4 KiB pages per flush
//	flushCommitLogThoroughInterval    int     10000                   async flush: flush everything at least this often
//	flushIntervalConsumeQueue         int     1000                    consume queue flush interval
//	flushConsumerOffsetInterval       int     5000                    consumerOffset.json persist interval
//	flushDelayOffsetInterval          int     10000                   delayOffset.json persist interval
//	deleteWhen                        string  04                      hour(s) of day for routine deletion, "04" or "01;02"
//	fileReservedTime                  int     72                      retention, hours
//	diskMaxUsedSpaceRatio             int     75                      % disk use above which expired files are deleted early
//	diskSpaceCleanForciblyRatio       int     85                      % disk use above which unexpired files are deleted
//	diskSpaceWarningLevelRatio        int     90                      % disk use above which writes are refused
//	cleanFileForciblyEnable           bool    true                    allow forced deletion
//	maxMessageSize                    int     4194304                 largest message body, bytes
//	messageDelayLevel                 string  1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h   delay levels 1..18 (units s m h d)
//	messageIndexEnable                bool    true                    build the key index
//	maxHashSlotNum                    int     5000000                 index file hash slots
//	maxIndexNum                       int     20000000                index file entries
//	maxTransferCountOnMessageInMemory int     32                      pull batch limit (hot data), messages
//	maxTransferBytesOnMessageInMemory int     262144                  pull batch limit (hot data), bytes
//	maxTransferCountOnMessageInDisk   int     8                       pull batch limit (cold data), messages
//	maxTransferBytesOnMessageInDisk   int     65536                   pull batch limit (cold data), bytes
//	accessMessageInMemoryMaxRatio     int     40                      % of RAM beyond which data counts as cold
//	autoCreateTopicEnable             bool    true                    create topics on first send (TBW102 gets perm 7)
//	autoCreateSubscriptionGroup       bool    true                    create subscription groups on first use
//	defaultTopicQueueNums             int     8                       queues of an auto-created topic
//	clusterTopicEnable                bool    true                    create the topic named after the cluster
//	brokerTopicEnable                 bool    true                    create the topic named after the broker
//	traceTopicEnable                  bool    false                   create the message trace topic
//	msgTraceTopicName                 string  RMQ_SYS_TRACE_TOPIC     trace topic name
//	notifyConsumerIdsChangedEnable    bool    true                    push NOTIFY_CONSUMER_IDS_CHANGED on group changes
//	sendMessageThreadPoolNums         int     min(cores,4)            send workers
//	pullMessageThreadPoolNums         int     16+2*cores              pull workers
//	queryMessageThreadPoolNums        int     8+cores                 query workers
//	adminBrokerThreadPoolNums         int     16                      admin workers
//	clientManageThreadPoolNums        int     32                      heartbeat/unregister workers
//	consumerManageThreadPoolNums      int     32                      offset and consumer-list workers
//	heartbeatThreadPoolNums           int     min(32,cores)           heartbeat workers
//	endTransactionThreadPoolNums      int     max(8+2*cores,4*send)   END_TRANSACTION workers
//	waitTimeMillsInSendQueue          int     200                     a send queued longer is rejected with SYSTEM_BUSY
//	longPollingEnable                 bool    true                    hold pulls that find no message
//	shortPollingTimeMills             int     1000                    hold time when long polling is off
//	registerNameServerPeriod          int     30000                   re-registration period
//	registerBrokerTimeoutMills        int     24000                   REGISTER_BROKER timeout
//	forceRegister                     bool    true                    register even if the data version is unchanged
//	transactionTimeOut                int     6000                    half message age before the first check
//	transactionCheckMax               int     15                      checks before a half message is discarded
//	transactionCheckInterval          int     30000                   transaction check period
//	enableDLegerCommitLog             bool    false                   DLedger (Raft) mode
//	dLegerGroup                       string  ""                      Raft group name; by convention = brokerName
//	dLegerPeers                       string  ""                      id-host:port;... identical on every peer (ParsePeers)
//	dLegerSelfId                      string  ""                      this peer's id, letters+digits (n0), must be in dLegerPeers
//	preferredLeaderId                 string  ""                      peer id(s), ';'-separated, that should hold leadership
//	enableBatchPush                   bool    false                   batch replication (rmqd always batches; accepted for compatibility)
//	dLegerElectionTimeoutMs           int     600                     rmqd: lower bound of the randomized election timeout
//	dLegerElectionTimeoutMaxMs        int     1000                    rmqd: upper bound of the randomized election timeout
//	dLegerHeartbeatIntervalMs         int     100                     rmqd: leader heartbeat interval
//
// The DLedger timers are plain values here; the dledger package owns their
// semantics (Java DLedger: heartbeat 2000 ms, leader considered lost after
// 3 missed heartbeats, vote interval 300..1000 ms — rmqd fails over faster).
//
// # namesrv.conf keys
//
//	key                               type    default                          meaning
//	rocketmqHome                      path    $ROCKETMQ_HOME                   installation directory (informational)
//	listenPort                        int     9876                             name server port
//	kvConfigPath                      path    ~/namesrv/kvConfig.json          KV config store
//	configStorePath                   path    ~/namesrv/namesrv.properties     where UPDATE_NAMESRV_CONFIG persists
//	productEnvName                    string  center                           informational
//	clusterTest                       bool    false                            informational
//	orderMessageEnable                bool    false                            serve ORDER_TOPIC_CONFIG KV entries in routes
//	returnOrderTopicConfigToBroker    bool    true                             return order config on registration
//	scanNotActiveBrokerInterval       int     5000                             how often idle brokers are scanned
//	clientRequestThreadPoolNums       int     8                                route query workers
//	defaultThreadPoolNums             int     16                               other workers
//	enableAllTopicList                bool    true                             answer GET_ALL_TOPIC_LIST_FROM_NAMESERVER
//	enableTopicList                   bool    true                             answer the per-cluster topic list codes
//	notifyMinBrokerIdChanged          bool    false                            notify brokers when the min broker id changes
//	deleteTopicWithBrokerRegistration bool    false                            drop topics a broker no longer registers
//	brokerChannelExpiredTime          int     120000                           rmqd: drop a broker after this long without registration (Java: fixed 120 s)
//	maxFrameSize                      int     16777216                         rmqd: largest remoting frame accepted
package conf
