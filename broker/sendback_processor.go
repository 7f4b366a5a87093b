package broker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
	"github.com/rmqd/rmqd/store"
	"go.uber.org/zap"
)

// CONSUMER_SEND_MSG_BACK (36) and the retry/DLQ redirection of sends to
// %RETRY% topics (protocol.md §8.1).
//
// A consumer that failed a message sends it back by commit-log offset. The
// broker stores a copy with RECONSUMETIMES + 1 into %RETRY%<group> after a
// delay level (3 + reconsumeTimes unless the client chose one), so it comes
// back through SCHEDULE_TOPIC_XXXX; once the message was consumed the
// group's max reconsume times (the header's maxReconsumeTimes from clients
// of V3_4_9 and later, else the subscription group's retryMaxTimes) — or
// when the client asks with a negative level — the copy goes to
// %DLQ%<group> instead, undelayed, where the group's consumers never see it.

// versionV349 is MQVersion V3_4_9: clients from it on send maxReconsumeTimes.
const versionV349 = 121

// retryGroup is what the retry paths need of a subscription group.
type retryGroup struct {
	retryMaxTimes  int32
	retryQueueNums int
}

// sendBackConfig is what the send-back processor needs besides the store.
type sendBackConfig struct {
	levels delayLevels
	// checkWritable answers a request the broker may not serve now (not
	// master, brokerPermission without write), or returns nil.
	checkWritable func() *remoting.RemotingCommand
	// group finds (or, when allowed, auto-creates) a subscription group.
	group func(name string) (retryGroup, bool)
	// ensureTopic creates a retry or DLQ topic with queues queues and perm 6
	// if absent, and returns its perm.
	ensureTopic func(topic string, queues int) (perm int32, ok bool)
	// groupHasLiveLocks reports whether an orderly consumer of the group
	// holds an unexpired queue lock (nil: never).
	groupHasLiveLocks func(group string) bool
	log               *zap.Logger
}

// sendBackService serves CONSUMER_SEND_MSG_BACK.
type sendBackService struct {
	store extrasStore
	cfg   sendBackConfig
}

func newSendBackService(st extrasStore, cfg sendBackConfig) *sendBackService {
	if cfg.log == nil {
		cfg.log = zap.NewNop()
	}
	return &sendBackService{store: st, cfg: cfg}
}

func (s *sendBackService) processConsumerSendMsgBack(req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h protocol.ConsumerSendMsgBackRequestHeader
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return extrasRespond(protocol.SystemError, "bad CONSUMER_SEND_MSG_BACK header: "+err.Error())
	}
	if s.cfg.checkWritable != nil {
		if resp := s.cfg.checkWritable(); resp != nil {
			return resp
		}
	}
	g, ok := s.cfg.group(h.Group)
	if !ok {
		return extrasRespond(protocol.SubscriptionGroupNotExist, "subscription group not exist, "+h.Group+" "+faqSubscriptionGroup)
	}
	if g.retryQueueNums <= 0 {
		return extrasRespond(protocol.Success, "")
	}
	topic := retryTopicOf(h.Group)
	queueID := int32(rand.IntN(g.retryQueueNums))
	perm, ok := s.cfg.ensureTopic(topic, g.retryQueueNums)
	if !ok {
		return extrasRespond(protocol.SystemError, fmt.Sprintf("topic[%s] not exist", topic))
	}
	if perm&protocol.PermWrite == 0 {
		return extrasRespond(protocol.NoPermission, fmt.Sprintf("the topic[%s] sending message is forbidden", topic))
	}
	orig, err := s.store.LookMessageByOffset(h.Offset)
	if err != nil || orig == nil {
		return extrasRespond(protocol.SystemError, "look message by offset failed, "+strconv.FormatInt(h.Offset, 10))
	}
	maxTimes := g.retryMaxTimes
	if req.Version >= versionV349 && h.MaxReconsumeTimes != nil {
		maxTimes = *h.MaxReconsumeTimes
	}
	var add []string
	if orig.Property(propRetryTopic) == "" {
		add = append(add, propRetryTopic, orig.Topic)
	}
	if orig.Property(propOriginMessageID) == "" {
		add = append(add, propOriginMessageID, orig.MsgID)
	}
	toDLQ, level := sendBackTarget(orig.ReconsumeTimes, maxTimes, h.DelayLevel)
	if toDLQ {
		topic = dlqTopicOf(h.Group)
		queueID = 0
		if _, ok := s.cfg.ensureTopic(topic, dlqQueueNums); !ok {
			return extrasRespond(protocol.SystemError, fmt.Sprintf("topic[%s] not exist", topic))
		}
		add = append(add, propDelay, "")
	} else {
		add = append(add, propDelay, strconv.Itoa(int(level)))
	}
	m := &store.Message{
		Topic:          topic,
		Flag:           orig.Flag,
		Body:           orig.Body,
		Properties:     orig.Properties.With(add...),
		QueueID:        queueID,
		SysFlag:        orig.SysFlag,
		BornTimestamp:  orig.BornTimestamp,
		BornHost:       orig.BornHost,
		ReconsumeTimes: orig.ReconsumeTimes + 1,
	}
	scheduleDelayed(m, s.cfg.levels)
	ctx, cancel := context.WithTimeout(context.Background(), extrasPutTimeout)
	res := s.store.PutMessage(ctx, m)
	cancel()
	if !res.Status.OK() {
		return extrasRespond(protocol.SystemError, res.Status.String())
	}
	if toDLQ {
		s.cfg.log.Info("message sent to DLQ", zap.String("topic", topic), zap.String("group", h.Group),
			zap.String("originTopic", h.OriginTopic), zap.String("msgId", orig.Property(propUniqKey)),
			zap.Int32("reconsumeTimes", orig.ReconsumeTimes))
	}
	return extrasRespond(protocol.Success, "")
}

const faqSubscriptionGroup = "See http://rocketmq.apache.org/docs/faq/ for further details."

// redirectRetrySend is the send hook for SEND_MESSAGE to %RETRY%<group> (the
// client's fallback when CONSUMER_SEND_MSG_BACK failed): a message already
// retried more than the max reconsume times goes to %DLQ%<group>
// undelayed (DELAY=-1), as Java's handleRetryAndDLQ does; so does any
// retry of a group whose orderly consumers hold queue locks. The header's
// maxReconsumeTimes wins over the group's retryMaxTimes when present (only
// clients of V3_4_9 and later send it).
func (s *sendBackService) redirectRetrySend(h *protocol.SendMessageRequestHeader, m *store.Message) (int16, string) {
	if !strings.HasPrefix(m.Topic, retryTopicPrefix) {
		return protocol.Success, ""
	}
	group := strings.TrimPrefix(m.Topic, retryTopicPrefix)
	g, ok := s.cfg.group(group)
	if !ok {
		return protocol.SubscriptionGroupNotExist, "subscription group not exist, " + group + " " + faqSubscriptionGroup
	}
	maxTimes := g.retryMaxTimes
	if h.MaxReconsumeTimes != nil {
		maxTimes = *h.MaxReconsumeTimes
	}
	locked := s.cfg.groupHasLiveLocks != nil && s.cfg.groupHasLiveLocks(group)
	if m.ReconsumeTimes <= maxTimes && !locked {
		return protocol.Success, ""
	}
	dlq := dlqTopicOf(group)
	if _, ok := s.cfg.ensureTopic(dlq, dlqQueueNums); !ok {
		return protocol.SystemError, fmt.Sprintf("topic[%s] not exist", dlq)
	}
	m.Topic = dlq
	m.QueueID = 0
	m.SetProperty(propDelay, "-1")
	return protocol.Success, ""
}
