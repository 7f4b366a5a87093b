package metadata

import (
	"errors"
	"fmt"
)

// ErrTopicNotExist: the topic does not exist and may not be auto-created.
var ErrTopicNotExist = errors.New("metadata: topic not exist")

// ErrGroupNotExist: the subscription group does not exist and may not be
// auto-created.
var ErrGroupNotExist = errors.New("metadata: subscription group not exist")

// SystemTopicOptions are the broker settings InitSystemTopics depends on
// (the conf.BrokerConfig keys of the same names).
type SystemTopicOptions struct {
	BrokerClusterName     string
	BrokerName            string
	AutoCreateTopicEnable bool
	DefaultTopicQueueNums int
	ClusterTopicEnable    bool
	BrokerTopicEnable     bool
	TraceTopicEnable      bool
	MsgTraceTopicName     string // RMQ_SYS_TRACE_TOPIC when empty
}

// SystemTopics returns the topics a Java broker creates at start
// (TopicConfigManager), in Java's order:
//
//	SELF_TEST_TOPIC                1 queue
//	TBW102                         defaultTopicQueueNums, perm 7   (if autoCreateTopicEnable)
//	BenchmarkTest                  1024 queues
//	<brokerClusterName>            16 queues, perm 1 (7 if clusterTopicEnable)
//	<brokerName>                   1 queue,   perm 1 (7 if brokerTopicEnable)
//	OFFSET_MOVED_EVENT             1 queue
//	SCHEDULE_TOPIC_XXXX            18 queues (one per delay level)
//	RMQ_SYS_TRACE_TOPIC            1 queue                          (if traceTopicEnable)
//	<brokerClusterName>_REPLY_TOPIC 1 queue
//	RMQ_SYS_TRANS_HALF_TOPIC       1 queue
//	RMQ_SYS_TRANS_OP_HALF_TOPIC    1 queue
//
// Java 5.x's POP revive topic, its rmq_sys_SYNC_BROKER_MEMBER_ topic and the
// timer topic are not created: rmqd implements none of those features.
func SystemTopics(o SystemTopicOptions) []TopicConfig {
	one := func(name string) TopicConfig { return NewTopicConfig(name, 1) }
	var out []TopicConfig
	out = append(out, one(SelfTestTopic))
	if o.AutoCreateTopicEnable {
		tc := NewTopicConfig(AutoCreateTopicKeyTopic, o.DefaultTopicQueueNums)
		tc.Perm = PermInherit | PermRead | PermWrite
		out = append(out, tc)
	}
	out = append(out, NewTopicConfig(BenchmarkTopic, 1024))
	if o.BrokerClusterName != "" {
		tc := NewTopicConfig(o.BrokerClusterName, DefaultTopicQueueNums)
		tc.Perm = PermInherit
		if o.ClusterTopicEnable {
			tc.Perm |= PermRead | PermWrite
		}
		out = append(out, tc)
	}
	if o.BrokerName != "" {
		tc := one(o.BrokerName)
		tc.Perm = PermInherit
		if o.BrokerTopicEnable {
			tc.Perm |= PermRead | PermWrite
		}
		out = append(out, tc)
	}
	out = append(out, one(OffsetMovedEventTopic), NewTopicConfig(ScheduleTopic, ScheduleTopicQueueNums))
	if o.TraceTopicEnable {
		name := o.MsgTraceTopicName
		if name == "" {
			name = TraceTopic
		}
		out = append(out, one(name))
	}
	if o.BrokerClusterName != "" {
		out = append(out, one(o.BrokerClusterName+"_"+ReplyTopicPostfix))
	}
	out = append(out, one(TransHalfTopic), one(TransOpHalfTopic))
	return out
}

// InitSystemTopics adds the SystemTopics that are missing and reports how
// many it added. Existing entries (from topics.json) win, as in Java where
// the file loaded after the built-in topics overrides them. This is a local
// change on every replica, not an Op: every replica derives the same topics
// from the same broker.conf.
func (m *Metadata) InitSystemTopics(o SystemTopicOptions) int {
	ts := m.now().UnixMilli()
	n := 0
	for _, tc := range SystemTopics(o) {
		if m.Topics.putIfAbsent(tc, ts) {
			n++
		}
	}
	return n
}

// InitSystemGroups adds the missing SystemGroups with default settings.
func (m *Metadata) InitSystemGroups() int {
	ts := m.now().UnixMilli()
	n := 0
	for _, g := range SystemGroups {
		if m.Groups.putIfAbsent(NewSubscriptionGroupConfig(g), ts) {
			n++
		}
	}
	return n
}

// CreateTopicInSendMessage is what a send to an unknown topic does (Java
// createTopicInSendMessageMethod): if topic exists it is returned as is.
// Otherwise defaultTopic (normally TBW102) must exist and be inheritable
// (perm has PermInherit; TBW102 counts as not inheritable when
// autoCreateTopicEnable is false); the new topic gets
// min(clientQueueNums, defaultTopic's write queues) read and write queues,
// the default topic's perm without PermInherit and its filter type.
// created reports whether this call created it. ErrTopicNotExist means the
// topic may not be created.
func (m *Metadata) CreateTopicInSendMessage(topic, defaultTopic string, clientQueueNums, topicSysFlag int, autoCreateTopicEnable bool) (tc TopicConfig, created bool, err error) {
	if tc, ok := m.Topics.Get(topic); ok {
		return tc, false, nil
	}
	if err := ValidateTopicName(topic); err != nil {
		return TopicConfig{}, false, err
	}
	def, ok := m.Topics.Get(defaultTopic)
	if !ok {
		return TopicConfig{}, false, fmt.Errorf("%w: %s (default topic %s not exist)", ErrTopicNotExist, topic, defaultTopic)
	}
	perm := def.Perm
	if defaultTopic == AutoCreateTopicKeyTopic && !autoCreateTopicEnable {
		perm = PermRead | PermWrite
	}
	if !IsInherited(perm) {
		return TopicConfig{}, false, fmt.Errorf("%w: %s (default topic %s is not inheritable, perm %d)", ErrTopicNotExist, topic, defaultTopic, perm)
	}
	n := min(clientQueueNums, def.WriteQueueNums)
	if n < 0 {
		n = 0
	}
	tc = NewTopicConfig(topic, n)
	tc.Perm = perm &^ PermInherit
	tc.TopicSysFlag = topicSysFlag
	tc.TopicFilterType = def.TopicFilterType
	if err := m.PutTopic(tc); err != nil {
		return TopicConfig{}, false, err
	}
	return tc, true, nil
}

// CreateTopicIfAbsent returns the topic, creating it from tc when missing
// (Java createTopicInSendMessageBackMethod, used for %RETRY% and %DLQ%
// topics). created reports whether this call created it.
func (m *Metadata) CreateTopicIfAbsent(tc TopicConfig) (TopicConfig, bool, error) {
	if cur, ok := m.Topics.Get(tc.TopicName); ok {
		return cur, false, nil
	}
	if err := ValidateTopicName(tc.TopicName); err != nil {
		return TopicConfig{}, false, err
	}
	tc.normalize()
	if err := m.PutTopic(tc); err != nil {
		return TopicConfig{}, false, err
	}
	return tc.Clone(), true, nil
}

// FindOrCreateGroup returns the group's config; when it is missing and
// autoCreate is set (autoCreateSubscriptionGroup) or the group is a system
// group (CID_RMQ_SYS_*), it is created with default settings. created
// reports whether this call created it; ErrGroupNotExist otherwise.
func (m *Metadata) FindOrCreateGroup(group string, autoCreate bool) (SubscriptionGroupConfig, bool, error) {
	if g, ok := m.Groups.Get(group); ok {
		return g, false, nil
	}
	if !autoCreate && !IsSysConsumerGroup(group) {
		return SubscriptionGroupConfig{}, false, fmt.Errorf("%w: %s", ErrGroupNotExist, group)
	}
	if group == "" {
		return SubscriptionGroupConfig{}, false, fmt.Errorf("%w: empty group name", ErrGroupNotExist)
	}
	g := NewSubscriptionGroupConfig(group)
	if err := m.PutGroup(g); err != nil {
		return SubscriptionGroupConfig{}, false, err
	}
	return g, true, nil
}
