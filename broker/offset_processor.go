package broker

import (
	"fmt"

	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
)

// Consumer offsets and queue offsets: QUERY_CONSUMER_OFFSET (14),
// UPDATE_CONSUMER_OFFSET (15), SEARCH_OFFSET_BY_TIMESTAMP (29),
// GET_MAX_OFFSET (30), GET_MIN_OFFSET (31), GET_EARLIEST_MSG_STORETIME (32);
// protocol.md §2.2, §7.5.

func offsetResponse(offset int64) *remoting.RemotingCommand {
	resp := respond(protocol.Success, "")
	resp.ExtFields = protocol.EncodeHeader(&protocol.OffsetResponseHeader{Offset: offset})
	return resp
}

func (b *Broker) handleQueryConsumerOffset(_ remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h protocol.QueryConsumerOffsetRequestHeader
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return respond(protocol.SystemError, "bad request header: "+err.Error())
	}
	if off := b.queryOffset(h.ConsumerGroup, h.Topic, h.QueueID); off >= 0 {
		return offsetResponse(off)
	}
	if h.SetZeroIfNotFound != nil && !*h.SetZeroIfNotFound {
		return respond(protocol.QueryNotFound, "Not found, do not set to zero, maybe this group boot first")
	}
	// A young queue whose first message is still in memory: a new group
	// starts at 0 even with CONSUME_FROM_LAST_OFFSET (protocol.md §7.5).
	// "In page cache" is Java's test: the message is within the newest
	// accessMessageInMemoryMaxRatio percent of RAM of the commit log.
	if min := b.store.GetMinOffsetInQueue(h.Topic, h.QueueID); min <= 0 && b.inMemory(h.Topic, h.QueueID, 0) {
		return offsetResponse(0)
	}
	return respond(protocol.QueryNotFound, "Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first")
}

// inMemory reports whether the message at queue offset off is within the
// part of the commit log Java would expect in page cache.
func (b *Broker) inMemory(topic string, queueID int32, off int64) bool {
	if b.store.GetMaxOffsetInQueue(topic, queueID) <= off {
		return true // nothing there yet: the first message will be new
	}
	phy := b.store.GetCommitLogOffsetInQueue(topic, queueID, off)
	limit := int64(physicalMemory()) * int64(b.config().AccessMessageInMemoryMaxRatio) / 100
	return b.store.GetMaxPhyOffset()-phy <= limit
}

func (b *Broker) handleUpdateConsumerOffset(c remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h protocol.UpdateConsumerOffsetRequestHeader
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return respond(protocol.SystemError, "bad request header: "+err.Error())
	}
	if !b.IsMaster() {
		return respond(protocol.ServiceNotAvailable, notMasterRemark(b.masterHint()))
	}
	if _, ok := b.groupConfig(h.ConsumerGroup); !ok {
		return respond(protocol.SubscriptionGroupNotExist, fmt.Sprintf("subscription group [%s] does not exist", h.ConsumerGroup))
	}
	if _, ok := b.topicConfig(h.Topic); !ok {
		return respond(protocol.TopicNotExist, fmt.Sprintf("topic[%s] not exist, apply first please!", h.Topic))
	}
	if h.CommitOffset < 0 {
		return respond(protocol.InvalidParameter, fmt.Sprintf("commitOffset %d is negative", h.CommitOffset))
	}
	b.commitOffset(c.RemoteAddr(), h.ConsumerGroup, h.Topic, h.QueueID, h.CommitOffset)
	return respond(protocol.Success, "")
}

func (b *Broker) handleGetMaxOffset(_ remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h protocol.QueueRequestHeader
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return respond(protocol.SystemError, "bad request header: "+err.Error())
	}
	return offsetResponse(b.store.GetMaxOffsetInQueue(h.Topic, h.QueueID))
}

func (b *Broker) handleGetMinOffset(_ remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h protocol.QueueRequestHeader
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return respond(protocol.SystemError, "bad request header: "+err.Error())
	}
	return offsetResponse(b.store.GetMinOffsetInQueue(h.Topic, h.QueueID))
}

func (b *Broker) handleSearchOffset(_ remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h protocol.SearchOffsetRequestHeader
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return respond(protocol.SystemError, "bad request header: "+err.Error())
	}
	return offsetResponse(b.store.GetOffsetInQueueByTime(h.Topic, h.QueueID, h.Timestamp))
}

func (b *Broker) handleGetEarliestMsgStoretime(_ remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h protocol.QueueRequestHeader
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return respond(protocol.SystemError, "bad request header: "+err.Error())
	}
	ts := b.store.GetEarliestMessageTime(h.Topic, h.QueueID) // -1 for an empty queue, as Java answers
	resp := respond(protocol.Success, "")
	resp.ExtFields = protocol.EncodeHeader(&protocol.EarliestMsgStoretimeResponseHeader{Timestamp: ts})
	return resp
}
