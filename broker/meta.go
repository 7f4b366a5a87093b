package broker

import (
	"errors"
	"sync"
	"time"

	"github.com/rmqd/rmqd/metadata"
	"github.com/rmqd/rmqd/protocol"
	"go.uber.org/zap"
)

// Thin wrappers over metadata used by the processors, so that every topic
// creation triggers a name-server registration and errors are logged once.

func (b *Broker) topicConfig(name string) (metadata.TopicConfig, bool) {
	return b.meta.Topics.Get(name)
}

// topicChecks is topicConfig with Attributes nil, for the per-message
// send and pull checks (perm, queue counts, filter type), which read none.
func (b *Broker) topicChecks(name string) (metadata.TopicConfig, bool) {
	return b.meta.Topics.GetWithoutAttributes(name)
}

func (b *Broker) groupConfig(name string) (metadata.SubscriptionGroupConfig, bool) {
	return b.meta.Groups.Get(name)
}

// groupConfigOrCreate finds the group, creating it with defaults when
// autoCreateSubscriptionGroup is on (or for CID_RMQ_SYS_ groups).
func (b *Broker) groupConfigOrCreate(name string) (metadata.SubscriptionGroupConfig, bool) {
	if gc, ok := b.meta.Groups.Get(name); ok {
		return gc, true
	}
	if name == "" {
		return metadata.SubscriptionGroupConfig{}, false
	}
	gc, created, err := b.meta.FindOrCreateGroup(name, b.config().AutoCreateSubscriptionGroup)
	if errors.Is(err, errNotLeader) {
		// A DLedger follower: the leader creates the group (clients send
		// their heartbeats to every replica); until it is replicated here
		// the defaults serve reads.
		return metadata.NewSubscriptionGroupConfig(name), true
	}
	if err != nil {
		if !errors.Is(err, metadata.ErrGroupNotExist) {
			b.log.Warn("create subscription group failed", zap.String("group", name), zap.Error(err))
		}
		return metadata.SubscriptionGroupConfig{}, false
	}
	if created {
		b.log.Info("subscription group auto-created", zap.String("group", name))
	}
	return gc, true
}

// createTopicIfAbsent creates tc unless a topic of that name exists, and
// registers with the name servers when it created one.
func (b *Broker) createTopicIfAbsent(tc metadata.TopicConfig) (metadata.TopicConfig, error) {
	cur, created, err := b.meta.CreateTopicIfAbsent(tc)
	if errors.Is(err, errNotLeader) {
		// A DLedger follower (heartbeats ensure retry topics on every
		// replica): the leader creates it; nothing writes here.
		return tc, nil
	}
	if err != nil {
		return metadata.TopicConfig{}, err
	}
	if created {
		b.triggerRegister()
	}
	return cur, nil
}

// putTopic creates or replaces a topic and registers.
func (b *Broker) putTopic(tc metadata.TopicConfig) error {
	if err := b.meta.PutTopic(tc); err != nil {
		return err
	}
	b.triggerRegister()
	return nil
}

// commitOffset stores a consumer offset. metadata ignores a commit below
// the stored offset (offsets do not move back except by a reset), with one
// exception made here: when the stored offset is beyond the end of the queue
// (the queue lost its tail, e.g. an unflushed crash), the client's lower
// offset — after PULL_OFFSET_MOVED — replaces it; otherwise the consumer
// would be moved back to the bad offset at every rebalance.
func (b *Broker) commitOffset(clientAddr, group, topic string, queueID int32, offset int64) {
	if b.resets.filter(group, topic, queueID, offset) {
		return
	}
	var err error
	if cur := b.queryOffset(group, topic, queueID); offset < cur && cur > b.store.GetMaxOffsetInQueue(topic, queueID) {
		err = b.meta.ResetOffsets(group, topic, map[int32]int64{queueID: offset})
	} else if b.repl != nil {
		// DLedger mode: answered at once, replicated within offsetFlushInterval.
		b.repl.commitOffset(group, topic, queueID, offset)
	} else {
		err = b.meta.CommitOffset(group, topic, queueID, offset)
	}
	if err != nil {
		b.log.Warn("commit offset failed", zap.String("group", group), zap.String("topic", topic),
			zap.Int32("queueId", queueID), zap.Int64("offset", offset), zap.String("client", clientAddr), zap.Error(err))
	}
}

// pendingResets remembers offsets an admin reset (INVOKE_BROKER_TO_RESET_OFFSET)
// has just installed while the group's clients catch up. A Go client keeps
// committing its old offsets for about 10 s after it receives
// RESET_CONSUMER_CLIENT_OFFSET, then commits the reset value; until then (or
// resetGrace) other commits of that queue are ignored, so the stale offsets
// cannot undo the reset.
type pendingResets struct {
	mu sync.Mutex
	m  map[queueRef]pendingReset
}

type pendingReset struct {
	offset int64
	until  time.Time
}

const resetGrace = 60 * time.Second

func (p *pendingResets) add(group, topic string, queueID int32, offset int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[queueRef]pendingReset{}
	}
	p.m[queueRef{group, topic, queueID}] = pendingReset{offset, time.Now().Add(resetGrace)}
}

// filter reports whether a client commit must be ignored because of a
// pending reset; a commit of the reset value ends the pending state.
func (p *pendingResets) filter(group, topic string, queueID int32, offset int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := queueRef{group, topic, queueID}
	r, ok := p.m[k]
	if !ok {
		return false
	}
	if time.Now().After(r.until) || offset == r.offset {
		delete(p.m, k)
		return false
	}
	return true
}

// queryOffset returns the committed offset, or -1.
func (b *Broker) queryOffset(group, topic string, queueID int32) int64 {
	if b.repl != nil {
		return b.repl.queryOffset(group, topic, queueID) // the leader's buffer over the applied state
	}
	return b.meta.Offsets.Query(group, topic, queueID)
}

// topicTable is the registration body's topic table.
func (b *Broker) topicTable() protocol.TopicConfigSerializeWrapper {
	all, dv := b.meta.Topics.All()
	w := protocol.TopicConfigSerializeWrapper{
		DataVersion:      protocol.DataVersion{Counter: dv.Counter, StateVersion: dv.StateVersion, Timestamp: dv.Timestamp},
		TopicConfigTable: make(map[string]*protocol.TopicConfig, len(all)),
	}
	brokerPerm := b.config().BrokerPermission
	for name, tc := range all {
		perm := tc.Perm
		if brokerPerm&int(protocol.PermWrite) == 0 || brokerPerm&int(protocol.PermRead) == 0 {
			perm = brokerPerm // as Java: a read-only (or write-only) broker advertises its own perm
		}
		w.TopicConfigTable[name] = &protocol.TopicConfig{
			Attributes:      tc.Attributes,
			Order:           tc.Order,
			Perm:            int32(perm),
			ReadQueueNums:   int32(tc.ReadQueueNums),
			TopicFilterType: tc.TopicFilterType,
			TopicName:       tc.TopicName,
			TopicSysFlag:    int32(tc.TopicSysFlag),
			WriteQueueNums:  int32(tc.WriteQueueNums),
		}
	}
	return w
}
