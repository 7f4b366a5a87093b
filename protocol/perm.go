package protocol

// Permission bits of TopicConfig.Perm, QueueData.Perm and a broker's
// brokerPermission (protocol.md §4.2).
const (
	PermPriority int32 = 1 << 3 // 8
	PermRead     int32 = 1 << 2 // 4
	PermWrite    int32 = 1 << 1 // 2
	PermInherit  int32 = 1 << 0 // 1: a template topic (TBW102) others are created from
)

// PermReadWrite is the perm of an ordinary topic (6).
const PermReadWrite = PermRead | PermWrite

// IsReadable reports whether perm has the READ bit.
func IsReadable(perm int32) bool { return perm&PermRead != 0 }

// IsWriteable reports whether perm has the WRITE bit.
func IsWriteable(perm int32) bool { return perm&PermWrite != 0 }

// IsInherited reports whether perm has the INHERIT bit.
func IsInherited(perm int32) bool { return perm&PermInherit != 0 }

// PermString renders perm as Java's PermName.perm2String does: "RWX" with
// '-' for a missing bit (X is INHERIT).
func PermString(perm int32) string {
	b := []byte("---")
	if IsReadable(perm) {
		b[0] = 'R'
	}
	if IsWriteable(perm) {
		b[1] = 'W'
	}
	if IsInherited(perm) {
		b[2] = 'X'
	}
	return string(b)
}

// Topic system flags (TopicConfig.TopicSysFlag, QueueData.TopicSysFlag).
const (
	FlagUnit    int32 = 1 << 0 // a unit topic
	FlagUnitSub int32 = 1 << 1 // a topic with unit subscriptions
)

// Well-known topic and cluster names.
const (
	// AutoCreateTopicKey is the template topic ("TBW102") that producers
	// fall back to for topics the name server does not know; brokers with
	// autoCreateTopicEnable register it with perm 7 (RW + INHERIT).
	AutoCreateTopicKey = "TBW102"
	DefaultCluster     = "DefaultCluster"
	// OrderTopicConfigNamespace is the name-server KV namespace holding
	// per-topic order configuration ("brokerA:4;brokerB:4").
	OrderTopicConfigNamespace = "ORDER_TOPIC_CONFIG"
)
