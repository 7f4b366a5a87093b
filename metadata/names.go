package metadata

import (
	"fmt"
	"strings"
)

// Permission bits of TopicConfig.Perm and of a broker (RocketMQ PermName).
const (
	PermPriority = 1 << 3 // 8
	PermRead     = 1 << 2 // 4
	PermWrite    = 1 << 1 // 2
	PermInherit  = 1 << 0 // 1: a default topic (TBW102) new topics may be created from

	DefaultPerm = PermRead | PermWrite // 6
)

// Topic filter types (TopicConfig.TopicFilterType).
const (
	SingleTag = "SINGLE_TAG"
	MultiTag  = "MULTI_TAG"
)

// System topic names (RocketMQ TopicValidator and MixAll).
const (
	AutoCreateTopicKeyTopic = "TBW102"
	ScheduleTopic           = "SCHEDULE_TOPIC_XXXX"
	BenchmarkTopic          = "BenchmarkTest"
	TransHalfTopic          = "RMQ_SYS_TRANS_HALF_TOPIC"
	TransOpHalfTopic        = "RMQ_SYS_TRANS_OP_HALF_TOPIC"
	TransCheckMaxTimeTopic  = "TRANS_CHECK_MAX_TIME_TOPIC"
	TraceTopic              = "RMQ_SYS_TRACE_TOPIC"
	SelfTestTopic           = "SELF_TEST_TOPIC"
	OffsetMovedEventTopic   = "OFFSET_MOVED_EVENT"
	SystemTopicPrefix       = "rmq_sys_"
	ReplyTopicPostfix       = "REPLY_TOPIC"

	RetryGroupTopicPrefix = "%RETRY%"
	DLQGroupTopicPrefix   = "%DLQ%"

	// ScheduleTopicQueueNums is the queue count of SCHEDULE_TOPIC_XXXX: one
	// queue per delay level (queueId = level-1).
	ScheduleTopicQueueNums = 18
)

// System consumer group names (RocketMQ MixAll) a broker creates at start.
const (
	ToolsConsumerGroup       = "TOOLS_CONSUMER"
	FilterSrvConsumerGroup   = "FILTERSRV_CONSUMER"
	SelfTestConsumerGroup    = "SELF_TEST_C_GROUP"
	OnsHTTPProxyGroup        = "CID_ONS-HTTP-PROXY"
	CIDOnsAPIPullGroup       = "CID_ONSAPI_PULL"
	CIDOnsAPIPermissionGroup = "CID_ONSAPI_PERMISSION"
	CIDOnsAPIOwnerGroup      = "CID_ONSAPI_OWNER"
	SysConsumerGroupPrefix   = "CID_RMQ_SYS_"
)

// SystemGroups are the subscription groups InitSystemGroups creates.
var SystemGroups = []string{ToolsConsumerGroup, FilterSrvConsumerGroup, SelfTestConsumerGroup,
	OnsHTTPProxyGroup, CIDOnsAPIPullGroup, CIDOnsAPIPermissionGroup, CIDOnsAPIOwnerGroup}

// IsSysConsumerGroup: groups auto-created even when autoCreateSubscriptionGroup is off.
func IsSysConsumerGroup(group string) bool { return strings.HasPrefix(group, SysConsumerGroupPrefix) }

// RetryTopic is the retry topic of a consumer group, "%RETRY%<group>".
func RetryTopic(group string) string { return RetryGroupTopicPrefix + group }

// DLQTopic is the dead-letter topic of a consumer group, "%DLQ%<group>".
func DLQTopic(group string) string { return DLQGroupTopicPrefix + group }

// IsReadable, IsWriteable, IsInherited test permission bits.
func IsReadable(perm int) bool  { return perm&PermRead != 0 }
func IsWriteable(perm int) bool { return perm&PermWrite != 0 }
func IsInherited(perm int) bool { return perm&PermInherit != 0 }

// PermString renders perm as RocketMQ's PermName.perm2String does ("RW-").
func PermString(perm int) string {
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

// MaxTopicNameLength is RocketMQ's limit (TopicValidator.TOPIC_MAX_LENGTH).
const MaxTopicNameLength = 127

// ValidateTopicName applies RocketMQ's rule: 1..127 characters from
// [%|a-zA-Z0-9_-]. (Retry and DLQ topics use '%'.)
func ValidateTopicName(name string) error {
	if name == "" {
		return fmt.Errorf("metadata: topic name is empty")
	}
	if len(name) > MaxTopicNameLength {
		return fmt.Errorf("metadata: topic name %q longer than %d characters", name, MaxTopicNameLength)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c == '%' || c == '|' || c == '_' || c == '-' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
		if !ok {
			return fmt.Errorf("metadata: topic name %q contains %q; allowed are %%|a-zA-Z0-9_-", name, c)
		}
	}
	return nil
}

// ValidateGroupName applies the same character rule as topics (RocketMQ
// checks groups with the same pattern), up to 255 characters.
func ValidateGroupName(name string) error {
	if name == "" {
		return fmt.Errorf("metadata: group name is empty")
	}
	if len(name) > 255 {
		return fmt.Errorf("metadata: group name %q longer than 255 characters", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c == '%' || c == '|' || c == '_' || c == '-' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
		if !ok {
			return fmt.Errorf("metadata: group name %q contains %q; allowed are %%|a-zA-Z0-9_-", name, c)
		}
	}
	return nil
}
