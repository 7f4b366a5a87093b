package protocol

// Name-server request and response headers (protocol.md §4). Each maps to
// extFields with EncodeHeader/DecodeHeader; ext names are Java's.

// RegisterBrokerRequestHeader is the header of REGISTER_BROKER (103).
//
// DLegerTerm is an rmqd extension: the Raft term of the registering broker's
// DLedger group ("dLegerTerm", decimal; absent or 0 for a classic
// master/slave broker). A name server remembers the highest term it has
// seen per brokerName and ignores registrations from an older term, so a
// deposed leader that still believes it is master cannot take brokerId 0
// back from the new leader (design.md §3). Java name servers ignore the key.
type RegisterBrokerRequestHeader struct {
	BrokerName             string `ext:"brokerName,required"`
	BrokerAddr             string `ext:"brokerAddr,required"`
	ClusterName            string `ext:"clusterName,required"`
	HAServerAddr           string `ext:"haServerAddr"`
	BrokerID               int64  `ext:"brokerId,required"`
	HeartbeatTimeoutMillis *int64 `ext:"heartbeatTimeoutMillis"`
	EnableActingMaster     *bool  `ext:"enableActingMaster"`
	Compressed             bool   `ext:"compressed"`
	BodyCrc32              int32  `ext:"bodyCrc32"`
	ZoneName               string `ext:"__ZONE_NAME,omitempty"`
	DLegerTerm             int64  `ext:"dLegerTerm,omitempty"`
}

// RegisterBrokerResponseHeader is the header of the REGISTER_BROKER reply:
// the live master's addresses, for slaves.
type RegisterBrokerResponseHeader struct {
	HAServerAddr string `ext:"haServerAddr,omitempty"`
	MasterAddr   string `ext:"masterAddr,omitempty"`
}

// UnregisterBrokerRequestHeader is the header of UNREGISTER_BROKER (104).
type UnregisterBrokerRequestHeader struct {
	BrokerName  string `ext:"brokerName,required"`
	BrokerAddr  string `ext:"brokerAddr,required"`
	ClusterName string `ext:"clusterName,required"`
	BrokerID    int64  `ext:"brokerId,required"`
}

// GetRouteInfoRequestHeader is the header of GET_ROUTEINFO_BY_TOPIC (105).
type GetRouteInfoRequestHeader struct {
	Topic                  string `ext:"topic,required"`
	AcceptStandardJSONOnly bool   `ext:"acceptStandardJsonOnly,omitempty"`
}

// DeleteTopicFromNamesrvRequestHeader is the header of
// DELETE_TOPIC_IN_NAMESRV (216). ClusterName empty = every broker.
type DeleteTopicFromNamesrvRequestHeader struct {
	Topic       string `ext:"topic,required"`
	ClusterName string `ext:"clusterName,omitempty"`
}

// RegisterTopicRequestHeader is the header of REGISTER_TOPIC_IN_NAMESRV (217).
type RegisterTopicRequestHeader struct {
	Topic string `ext:"topic,required"`
}

// PutKVConfigRequestHeader is the header of PUT_KV_CONFIG (100).
type PutKVConfigRequestHeader struct {
	Namespace string `ext:"namespace,required"`
	Key       string `ext:"key,required"`
	Value     string `ext:"value,required"`
}

// GetKVConfigRequestHeader is the header of GET_KV_CONFIG (101).
type GetKVConfigRequestHeader struct {
	Namespace string `ext:"namespace,required"`
	Key       string `ext:"key,required"`
}

// GetKVConfigResponseHeader is the header of the GET_KV_CONFIG reply.
type GetKVConfigResponseHeader struct {
	Value string `ext:"value"`
}

// DeleteKVConfigRequestHeader is the header of DELETE_KV_CONFIG (102).
type DeleteKVConfigRequestHeader struct {
	Namespace string `ext:"namespace,required"`
	Key       string `ext:"key,required"`
}

// GetKVListByNamespaceRequestHeader is the header of
// GET_KVLIST_BY_NAMESPACE (219).
type GetKVListByNamespaceRequestHeader struct {
	Namespace string `ext:"namespace,required"`
}

// GetTopicsByClusterRequestHeader is the header of GET_TOPICS_BY_CLUSTER (224).
type GetTopicsByClusterRequestHeader struct {
	Cluster string `ext:"cluster,required"`
}

// WipeWritePermOfBrokerRequestHeader is the header of
// WIPE_WRITE_PERM_OF_BROKER (205).
type WipeWritePermOfBrokerRequestHeader struct {
	BrokerName string `ext:"brokerName,required"`
}

// WipeWritePermOfBrokerResponseHeader is the header of its reply.
type WipeWritePermOfBrokerResponseHeader struct {
	WipeTopicCount int32 `ext:"wipeTopicCount"`
}

// AddWritePermOfBrokerRequestHeader is the header of
// ADD_WRITE_PERM_OF_BROKER (327).
type AddWritePermOfBrokerRequestHeader struct {
	BrokerName string `ext:"brokerName,required"`
}

// AddWritePermOfBrokerResponseHeader is the header of its reply.
type AddWritePermOfBrokerResponseHeader struct {
	AddTopicCount int32 `ext:"addTopicCount"`
}

// QueryDataVersionRequestHeader is the header of QUERY_DATA_VERSION (322);
// the body is the broker's DataVersion JSON.
type QueryDataVersionRequestHeader struct {
	BrokerName  string `ext:"brokerName,required"`
	BrokerAddr  string `ext:"brokerAddr,required"`
	ClusterName string `ext:"clusterName,required"`
	BrokerID    int64  `ext:"brokerId,required"`
}

// QueryDataVersionResponseHeader is the header of its reply: whether the
// broker's version differs from the one the name server holds.
type QueryDataVersionResponseHeader struct {
	Changed bool `ext:"changed"`
}

// BrokerHeartbeatRequestHeader is the header of BROKER_HEARTBEAT (904),
// which refreshes a registered broker's liveness.
type BrokerHeartbeatRequestHeader struct {
	ClusterName            string `ext:"clusterName,required"`
	BrokerAddr             string `ext:"brokerAddr,required"`
	BrokerName             string `ext:"brokerName,required"`
	BrokerID               *int64 `ext:"brokerId"`
	HeartbeatTimeoutMillis *int64 `ext:"heartbeatTimeoutMills"`
}
