package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
	"github.com/rmqd/rmqd/store"
)

// QUERY_MESSAGE (12) and VIEW_MESSAGE_BY_ID (33), protocol.md §2.4, §9.2.

const defaultQueryMaxNum = 32

func (b *Broker) handleQueryMessage(_ remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h protocol.QueryMessageRequestHeader
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return respond(protocol.SystemError, "bad request header: "+err.Error())
	}
	if h.MaxNum <= 0 || h.MaxNum > 64 {
		h.MaxNum = defaultQueryMaxNum
	}
	if h.UniqueKeyQuery {
		h.MaxNum = defaultQueryMaxNum // as Java: every stored copy of that UNIQ_KEY
	}
	if h.EndTimestamp <= 0 {
		h.EndTimestamp = time.Now().UnixMilli() + 60_000
	}
	res, err := b.store.QueryMessage(h.Topic, h.Key, h.MaxNum, h.BeginTimestamp, h.EndTimestamp)
	if err != nil {
		return respond(protocol.SystemError, "query message failed: "+err.Error())
	}
	resp := respond(protocol.QueryNotFound, "can not find message, maybe time range not correct")
	if len(res.Messages) > 0 {
		resp = respond(protocol.Success, "")
		size := 0
		for _, m := range res.Messages {
			size += len(m)
		}
		body := make([]byte, 0, size)
		for _, m := range res.Messages {
			body = append(body, m...)
		}
		resp.Body = body
	}
	resp.ExtFields = protocol.EncodeHeader(&protocol.QueryMessageResponseHeader{
		IndexLastUpdateTimestamp: res.IndexLastUpdateTimestamp,
		IndexLastUpdatePhyoffset: res.IndexLastUpdatePhyoffset,
	})
	return resp
}

func (b *Broker) handleViewMessageByID(_ remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h protocol.ViewMessageRequestHeader
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return respond(protocol.SystemError, "bad request header: "+err.Error())
	}
	if h.Offset < 0 {
		return respond(protocol.SystemError, fmt.Sprintf("can not find message by the offset, %d", h.Offset))
	}
	ext, err := b.store.LookMessageByOffset(h.Offset)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrMalformed) {
			return respond(protocol.SystemError, fmt.Sprintf("can not find message by the offset, %d", h.Offset))
		}
		return respond(protocol.SystemError, "view message failed: "+err.Error())
	}
	rec, err := b.store.SelectOneMessageByOffset(h.Offset, ext.StoreSize)
	if err != nil {
		return respond(protocol.SystemError, fmt.Sprintf("can not find message by the offset, %d", h.Offset))
	}
	resp := respond(protocol.Success, "")
	resp.Body = rec
	return resp
}

// handleQueryConsumeQueue is QUERY_CONSUME_QUEUE (mqadmin queryCq): the raw
// consume-queue units from index, and whether the group's subscription
// matches each.
func (b *Broker) handleQueryConsumeQueue(_ remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h struct {
		Topic         string `ext:"topic,required"`
		QueueID       int32  `ext:"queueId,required"`
		Index         int64  `ext:"index,required"`
		Count         int32  `ext:"count,required"`
		ConsumerGroup string `ext:"consumerGroup"`
	}
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return respond(protocol.SystemError, "bad request header: "+err.Error())
	}
	if _, ok := b.topicConfig(h.Topic); !ok {
		return respond(protocol.TopicNotExist, fmt.Sprintf("topic[%s] not exist", h.Topic))
	}
	type unit struct {
		PhysicOffset   int64  `json:"physicOffset"`
		PhysicSize     int32  `json:"physicSize"`
		TagsCode       int64  `json:"tagsCode"`
		ExtendDataJSON string `json:"extendDataJson,omitempty"`
		BitMap         string `json:"bitMap,omitempty"`
		Eval           bool   `json:"eval"`
		Msg            string `json:"msg,omitempty"`
	}
	body := struct {
		SubscriptionData *subscriptionData `json:"subscriptionData,omitempty"`
		QueueData        []unit            `json:"queueData"`
		MaxQueueIndex    int64             `json:"maxQueueIndex"`
		MinQueueIndex    int64             `json:"minQueueIndex"`
	}{QueueData: []unit{}}
	body.MinQueueIndex = b.store.GetMinOffsetInQueue(h.Topic, h.QueueID)
	body.MaxQueueIndex = b.store.GetMaxOffsetInQueue(h.Topic, h.QueueID)
	var sub *subscription
	if h.ConsumerGroup != "" {
		if s, _, _ := b.clients.subscriptionOf(h.ConsumerGroup, h.Topic); s != nil {
			sub = s
			w := s.toWire()
			body.SubscriptionData = &w
		}
	}
	count := int(min(max(h.Count, 0), 1000))
	units, err := b.store.GetConsumeQueueUnits(h.Topic, h.QueueID, h.Index, count)
	if err != nil {
		return respond(protocol.SystemError, "read consume queue: "+err.Error())
	}
	for _, u := range units {
		body.QueueData = append(body.QueueData, unit{PhysicOffset: u.CommitLogOffset, PhysicSize: u.Size, TagsCode: u.TagsCode,
			Eval: sub == nil || sub.matchTagsCode(u.TagsCode)})
	}
	resp := respond(protocol.Success, "")
	resp.Body, _ = json.Marshal(body)
	return resp
}
