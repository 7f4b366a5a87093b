package broker

import (
	"fmt"
	"strings"
	"time"

	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
	"github.com/rmqd/rmqd/store"
	"go.uber.org/zap"
)

// PULL_MESSAGE (11) and LITE_PULL_MESSAGE (361), protocol.md §7.1-§7.4.

const (
	messageModelBroadcasting = "BROADCASTING"
	messageModelClustering   = "CLUSTERING"
)

// tagFilter is the store.MessageFilter of a TAG subscription: the consume
// queue's tag hash decides; the record itself is not re-examined (the Go
// client re-checks tag names itself).
type tagFilter struct{ sub *subscription }

func (f tagFilter) IsMatchedByConsumeQueue(tagsCode int64) bool { return f.sub.matchTagsCode(tagsCode) }
func (f tagFilter) IsMatchedByCommitLog([]byte) bool            { return true }

func (b *Broker) handlePull(c remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	return b.processPull(c, req, true)
}

// processPull serves a pull. allowSuspend is true on the first processing
// of a request and false when a held request is processed again; only the
// first processing may park the request or commit the offset. A nil
// response means the request was parked (its answer is sent later).
func (b *Broker) processPull(c remoting.Conn, req *remoting.RemotingCommand, allowSuspend bool) *remoting.RemotingCommand {
	var h protocol.PullMessageRequestHeader
	h.MaxMsgNums = 32
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return respond(protocol.SystemError, "bad pull request header: "+err.Error())
	}
	cfg := b.config()
	if int32(cfg.BrokerPermission)&protocol.PermRead == 0 {
		return respond(protocol.NoPermission, fmt.Sprintf("the broker[%s] pulling message is forbidden", cfg.BrokerIP1))
	}
	gc, ok := b.groupConfigOrCreate(h.ConsumerGroup)
	if !ok {
		return respond(protocol.SubscriptionGroupNotExist, fmt.Sprintf("subscription group [%s] does not exist, %s", h.ConsumerGroup, faqTopicNotExist))
	}
	if !gc.ConsumeEnable {
		return respond(protocol.NoPermission, "subscription group no permission, "+h.ConsumerGroup)
	}
	hasSuspend := h.SysFlag&protocol.PullFlagSuspend != 0
	hasCommit := h.SysFlag&protocol.PullFlagCommitOffset != 0
	hasSub := h.SysFlag&protocol.PullFlagSubscription != 0

	tc, ok := b.topicChecks(h.Topic)
	if !ok {
		return respond(protocol.TopicNotExist, fmt.Sprintf("topic[%s] not exist, apply first please! %s", h.Topic, faqTopicNotExist))
	}
	if tc.Perm&int(protocol.PermRead) == 0 {
		return respond(protocol.NoPermission, fmt.Sprintf("the topic[%s] pulling message is forbidden", h.Topic))
	}
	if h.QueueID < 0 || int(h.QueueID) >= tc.ReadQueueNums {
		return respond(protocol.InvalidParameter, fmt.Sprintf("queueId[%d] is illegal, topic:[%s] topicConfig.readQueueNums:[%d] consumer:[%s]",
			h.QueueID, h.Topic, tc.ReadQueueNums, c.RemoteAddr()))
	}

	var sub *subscription
	if hasSub {
		s, err := parseSubscription(h.Topic, h.Subscription, h.ExpressionType)
		switch {
		case err == errSQLFilter:
			return respond(protocol.SystemError, "The broker does not support consumer to filter message by SQL92")
		case err != nil:
			return respond(protocol.SubscriptionParseFailed, "parse the consumer's subscription failed: "+h.Subscription)
		}
		sub = s
	} else {
		s, model, online := b.clients.subscriptionOf(h.ConsumerGroup, h.Topic)
		if !online {
			return respond(protocol.SubscriptionNotExist, fmt.Sprintf("the consumer's group info not exist, group: %s", h.ConsumerGroup))
		}
		if model == messageModelBroadcasting && !gc.ConsumeBroadcastEnable {
			return respond(protocol.NoPermission, fmt.Sprintf("the consumer group[%s] can not consume by broadcast way", h.ConsumerGroup))
		}
		if s == nil {
			return respond(protocol.SubscriptionNotExist, fmt.Sprintf("the consumer's subscription not exist, group: %s topic: %s", h.ConsumerGroup, h.Topic))
		}
		if s.SubVersion < h.SubVersion {
			return respond(protocol.SubscriptionNotLatest, "the consumer's subscription not latest")
		}
		if !strings.EqualFold(s.ExpressionType, expressionTag) {
			return respond(protocol.SystemError, "The broker does not support consumer to filter message by SQL92")
		}
		sub = s
	}

	maxNums := h.MaxMsgNums
	if maxNums <= 0 {
		maxNums = 1
	}
	res := b.store.GetMessage(h.ConsumerGroup, h.Topic, h.QueueID, h.QueueOffset, maxNums, cfg.MaxTransferBytesOnMessageInMemory, tagFilter{sub})

	rh := protocol.PullMessageResponseHeader{
		NextBeginOffset: res.NextBeginOffset,
		MinOffset:       res.MinOffset,
		MaxOffset:       res.MaxOffset,
		TopicSysFlag:    int32(tc.TopicSysFlag),
		GroupSysFlag:    int32(gc.GroupSysFlag),
	}
	var code int16
	switch res.Status {
	case store.Found:
		code = protocol.Success
	case store.NoMatchedMessage, store.MessageWasRemoving:
		code = protocol.PullRetryImmediately
	case store.OffsetFoundNull, store.OffsetOverflowOne:
		code = protocol.PullNotFound
	case store.NoMatchedLogicQueue, store.NoMessageInQueue:
		if h.QueueOffset != 0 {
			code = protocol.PullOffsetMoved
		} else {
			code = protocol.PullNotFound
		}
	case store.OffsetOverflowBadly, store.OffsetTooSmall:
		code = protocol.PullOffsetMoved
	default:
		code = protocol.PullRetryImmediately
	}
	if code == protocol.PullOffsetMoved {
		b.log.Info("pull offset moved", zap.String("group", h.ConsumerGroup), zap.String("topic", h.Topic),
			zap.Int32("queueId", h.QueueID), zap.Int64("requested", h.QueueOffset), zap.Int64("next", res.NextBeginOffset),
			zap.Stringer("status", res.Status))
	}

	// Offset commit piggy-backed on the pull: first processing only, and only
	// where offsets are written. A DLedger follower (a client whose route
	// still names it master) forwards it to the leader.
	if allowSuspend && hasCommit && h.CommitOffset >= 0 {
		if b.IsMaster() {
			b.commitOffset(c.RemoteAddr(), h.ConsumerGroup, h.Topic, h.QueueID, h.CommitOffset)
		} else if b.repl != nil {
			b.repl.forwardOffset(h.ConsumerGroup, h.Topic, h.QueueID, h.CommitOffset)
		}
	}

	if code == protocol.PullNotFound && allowSuspend && hasSuspend {
		wait := time.Duration(h.SuspendTimeoutMillis) * time.Millisecond
		if !cfg.LongPollingEnable {
			wait = time.Duration(cfg.ShortPollingTimeMills) * time.Millisecond
		}
		if wait > 0 {
			b.holds.hold(&heldPull{conn: c, req: req, offset: h.QueueOffset, sub: sub, deadline: time.Now().Add(wait)}, h.Topic, h.QueueID)
			return nil
		}
	}

	resp := respond(code, res.Status.String())
	resp.ExtFields = protocol.EncodeHeader(&rh)
	if code == protocol.Success {
		resp.Body = res.Body()
		b.stats.recordGet(h.ConsumerGroup, h.Topic, int64(res.MsgCount), int64(res.BufferTotalSize))
	}
	b.stats.recordPullOffset(h.ConsumerGroup, h.Topic, h.QueueID, res.NextBeginOffset)
	return resp
}
