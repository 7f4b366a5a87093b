package protocol

// Request codes (RemotingCommand.Code of a request), named after RocketMQ's
// RequestCode constants in Go style. The numbers are the wire values and are
// frozen. Codes the 5.x proxy uses above the int16 range (200050 POP_MESSAGE
// and friends) cannot travel in a RemotingCommand and are not listed; the
// 4.x/5.x broker POP codes (3442...) are.
const (
	// Client data path (protocol.md §2.1, §2.4).
	SendMessage              int16 = 10
	PullMessage              int16 = 11
	QueryMessage             int16 = 12
	QueryBrokerOffset        int16 = 13
	QueryConsumerOffset      int16 = 14
	UpdateConsumerOffset     int16 = 15
	UpdateAndCreateTopic     int16 = 17
	UpdateAndCreateTopicList int16 = 18
	GetAllTopicConfig        int16 = 21
	GetTopicConfigList       int16 = 22
	GetTopicNameList         int16 = 23
	UpdateBrokerConfig       int16 = 25
	GetBrokerConfig          int16 = 26
	TriggerDeleteFiles       int16 = 27
	GetBrokerRuntimeInfo     int16 = 28
	SearchOffsetByTimestamp  int16 = 29
	GetMaxOffset             int16 = 30
	GetMinOffset             int16 = 31
	GetEarliestMsgStoretime  int16 = 32
	ViewMessageByID          int16 = 33
	HeartBeat                int16 = 34
	UnregisterClient         int16 = 35
	ConsumerSendMsgBack      int16 = 36
	EndTransaction           int16 = 37
	GetConsumerListByGroup   int16 = 38
	CheckTransactionState    int16 = 39 // broker -> client, oneway
	NotifyConsumerIdsChanged int16 = 40 // broker -> client, oneway
	LockBatchMQ              int16 = 41
	UnlockBatchMQ            int16 = 42
	GetAllConsumerOffset     int16 = 43
	GetAllDelayOffset        int16 = 45
	CheckClientConfig        int16 = 46
	GetClientConfig          int16 = 47

	// ACL 1.0 (legacy).
	UpdateAndCreateACLConfig     int16 = 50
	DeleteACLConfig              int16 = 51
	GetBrokerClusterACLInfo      int16 = 52
	UpdateGlobalWhiteAddrsConfig int16 = 53
	GetBrokerClusterACLConfig    int16 = 54

	GetTimerCheckPoint int16 = 60
	GetTimerMetrics    int16 = 61

	// Name server (protocol.md §4).
	PutKVConfig          int16 = 100
	GetKVConfig          int16 = 101
	DeleteKVConfig       int16 = 102
	RegisterBroker       int16 = 103
	UnregisterBroker     int16 = 104
	GetRouteinfoByTopic  int16 = 105
	GetBrokerClusterInfo int16 = 106

	UpdateAndCreateSubscriptionGroup     int16 = 200
	GetAllSubscriptionGroupConfig        int16 = 201
	GetTopicStatsInfo                    int16 = 202
	GetConsumerConnectionList            int16 = 203
	GetProducerConnectionList            int16 = 204
	WipeWritePermOfBroker                int16 = 205
	GetAllTopicListFromNameserver        int16 = 206
	DeleteSubscriptionGroup              int16 = 207
	GetConsumeStats                      int16 = 208
	SuspendConsumer                      int16 = 209
	ResumeConsumer                       int16 = 210
	ResetConsumerOffsetInConsumer        int16 = 211
	ResetConsumerOffsetInBroker          int16 = 212
	AdjustConsumerThreadPool             int16 = 213
	WhoConsumeTheMessage                 int16 = 214
	DeleteTopicInBroker                  int16 = 215
	DeleteTopicInNamesrv                 int16 = 216
	RegisterTopicInNamesrv               int16 = 217
	GetKVListByNamespace                 int16 = 219
	ResetConsumerClientOffset            int16 = 220 // broker -> client
	GetConsumerStatusFromClient          int16 = 221 // broker -> client
	InvokeBrokerToResetOffset            int16 = 222
	InvokeBrokerToGetConsumerStatus      int16 = 223
	GetTopicsByCluster                   int16 = 224
	UpdateAndCreateSubscriptionGroupList int16 = 225

	QueryTopicConsumeByWho       int16 = 300
	RegisterFilterServer         int16 = 301
	RegisterMessageFilterClass   int16 = 302
	QueryConsumeTimeSpan         int16 = 303
	GetSystemTopicListFromNS     int16 = 304
	GetSystemTopicListFromBroker int16 = 305
	CleanExpiredConsumequeue     int16 = 306
	GetConsumerRunningInfo       int16 = 307
	QueryCorrectionOffset        int16 = 308
	ConsumeMessageDirectly       int16 = 309
	SendMessageV2                int16 = 310
	GetUnitTopicList             int16 = 311
	GetHasUnitSubTopicList       int16 = 312
	GetHasUnitSubUnunitTopicList int16 = 313
	CloneGroupOffset             int16 = 314
	ViewBrokerStatsData          int16 = 315
	CleanUnusedTopic             int16 = 316
	GetBrokerConsumeStats        int16 = 317
	UpdateNamesrvConfig          int16 = 318
	GetNamesrvConfig             int16 = 319
	SendBatchMessage             int16 = 320
	QueryConsumeQueue            int16 = 321
	QueryDataVersion             int16 = 322
	ResumeCheckHalfMessage       int16 = 323
	SendReplyMessage             int16 = 324
	SendReplyMessageV2           int16 = 325
	PushReplyMessageToClient     int16 = 326 // broker -> client
	AddWritePermOfBroker         int16 = 327
	GetAllProducerInfo           int16 = 328
	DeleteExpiredCommitlog       int16 = 329
	GetTopicConfig               int16 = 351
	GetSubscriptionGroupConfig   int16 = 352
	UpdateAndGetGroupForbidden   int16 = 353
	CheckRocksdbCqWriteProgress  int16 = 354
	LitePullMessage              int16 = 361
	QueryTopicsByConsumer        int16 = 343
	QuerySubscriptionByConsumer  int16 = 345
	QueryAssignment              int16 = 400
	SetMessageRequestMode        int16 = 401
	GetAllMessageRequestMode     int16 = 402
	UpdateAndCreateStaticTopic   int16 = 513
	GetBrokerMemberGroup         int16 = 901
	AddBroker                    int16 = 902
	RemoveBroker                 int16 = 903
	BrokerHeartbeat              int16 = 904
	NotifyMinBrokerIDChange      int16 = 905
	ExchangeBrokerHAInfo         int16 = 906
	GetBrokerHAStatus            int16 = 907
	ResetMasterFlushOffset       int16 = 908

	// 5.x POP consumption on the broker (short codes; the proxy's 2000xx
	// codes do not fit int16).
	PopMessage                 int16 = 3442
	AckMessage                 int16 = 3443
	PeekMessage                int16 = 3444
	ChangeMessageInvisibletime int16 = 3445
	Notification               int16 = 3446
	PollingInfo                int16 = 3447
	BatchAckMessage            int16 = 3543

	// ACL 2.0.
	AuthCreateUser int16 = 3001
	AuthUpdateUser int16 = 3002
	AuthDeleteUser int16 = 3003
	AuthGetUser    int16 = 3004
	AuthListUser   int16 = 3005
	AuthCreateACL  int16 = 3006
	AuthUpdateACL  int16 = 3007
	AuthDeleteACL  int16 = 3008
	AuthGetACL     int16 = 3009
	AuthListACL    int16 = 3010
)

// Response codes (RemotingCommand.Code of a response), RocketMQ's
// ResponseCode and RemotingSysResponseCode. 0..3 repeat remoting's system
// codes so callers need only this package.
const (
	Success                    int16 = 0
	SystemError                int16 = 1
	SystemBusy                 int16 = 2
	RequestCodeNotSupported    int16 = 3
	TransactionFailed          int16 = 4
	FlushDiskTimeout           int16 = 10
	SlaveNotAvailable          int16 = 11
	FlushSlaveTimeout          int16 = 12
	MessageIllegal             int16 = 13
	ServiceNotAvailable        int16 = 14
	VersionNotSupported        int16 = 15
	NoPermission               int16 = 16
	TopicNotExist              int16 = 17
	TopicExistAlready          int16 = 18
	PullNotFound               int16 = 19
	PullRetryImmediately       int16 = 20
	PullOffsetMoved            int16 = 21
	QueryNotFound              int16 = 22
	SubscriptionParseFailed    int16 = 23
	SubscriptionNotExist       int16 = 24
	SubscriptionNotLatest      int16 = 25
	SubscriptionGroupNotExist  int16 = 26
	FilterDataNotExist         int16 = 27
	FilterDataNotLatest        int16 = 28
	InvalidParameter           int16 = 29
	TransactionShouldCommit    int16 = 200
	TransactionShouldRollback  int16 = 201
	TransactionStateUnknow     int16 = 202
	TransactionStateGroupWrong int16 = 203
	NoBuyerID                  int16 = 204
	NotInCurrentUnit           int16 = 205
	ConsumerNotOnline          int16 = 206
	ConsumeMsgTimeout          int16 = 207
	NoMessage                  int16 = 208
	PollingFull                int16 = 209
	PollingTimeout             int16 = 210
	BrokerNotExist             int16 = 211
	BrokerDispatchNotComplete  int16 = 212
	BroadcastConsumption       int16 = 213
	FlowControl                int16 = 215
	NotLeaderForQueue          int16 = 501
	IllegalOperation           int16 = 604
	GoAway                     int16 = 1500 // only to peers with version > 475

	ControllerFencedMasterEpoch          int16 = 2000
	ControllerFencedSyncStateSetEpoch    int16 = 2001
	ControllerInvalidMaster              int16 = 2002
	ControllerInvalidReplicas            int16 = 2003
	ControllerMasterNotAvailable         int16 = 2004
	ControllerInvalidRequest             int16 = 2005
	ControllerBrokerNotAlive             int16 = 2006
	ControllerNotLeader                  int16 = 2007
	ControllerBrokerMetadataNotExist     int16 = 2008
	ControllerInvalidCleanBrokerMetadata int16 = 2009
	ControllerBrokerNeedToBeRegistered   int16 = 2010
	ControllerMasterStillExist           int16 = 2011
	ControllerElectMasterFailed          int16 = 2012
	ControllerAlterSyncStateSetFailed    int16 = 2013
	ControllerBrokerIDInvalid            int16 = 2014
	UserNotExist                         int16 = 3001
	PolicyNotExist                       int16 = 3002
)

// Version ordinals (RemotingCommand.Version, MQVersion.Version) that change
// server behaviour (protocol.md §10.29).
const (
	VersionV3_0_11 int16 = 37  // REGISTER_BROKER body is a RegisterBrokerBody from here on
	VersionV4_5_2  int16 = 317 // what rocketmq-client-go sends
	VersionV4_9_4  int16 = 401 // Java name servers answer standard route JSON from here on
	VersionV5_0_0  int16 = 413
	VersionV5_3_3  int16 = 479
	// CurrentVersion is what rmqd sends in its own commands.
	CurrentVersion = VersionV5_3_3
)

// LanguageJava is the language name rmqd puts in the commands it sends
// (the safest value for Java peers, protocol.md §1.3).
const LanguageJava = "JAVA"
