package broker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/rmqd/rmqd/metadata"
	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
)

// Consumption and traffic statistics: GET_CONSUME_STATS (208),
// GET_BROKER_CONSUME_STATS (317), VIEW_BROKER_STATS_DATA (315),
// QUERY_CONSUME_TIME_SPAN (303) and CLONE_GROUP_OFFSET (314).

func (b *Broker) handleConsumeStats(_ remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h protocol.GetConsumeStatsRequestHeader
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return badHeader(err)
	}
	topics := b.consumedTopics(h.ConsumerGroup)
	if h.Topic != "" {
		topics = []string{h.Topic}
	}
	var buf bytes.Buffer
	b.appendConsumeStats(&buf, h.ConsumerGroup, topics)
	resp := respond(protocol.Success, "")
	resp.Body = buf.Bytes()
	return resp
}

// consumedTopics lists the topics a group has offsets for; for an online
// group only those it still subscribes to (as Java's GET_CONSUME_STATS).
func (b *Broker) consumedTopics(group string) []string {
	topics := b.meta.Offsets.WhichTopicByConsumer(group)
	snap, online := b.clients.consumerGroup(group)
	if !online {
		return topics
	}
	out := topics[:0]
	for _, t := range topics {
		if _, sub := snap.subs[t]; sub {
			out = append(out, t)
		}
	}
	return out
}

// appendConsumeStats writes a ConsumeStats body for group over topics and
// returns the total lag (brokerOffset - consumerOffset).
func (b *Broker) appendConsumeStats(buf *bytes.Buffer, group string, topics []string) int64 {
	name := b.config().BrokerName
	var diff int64
	buf.WriteString(`{"consumeTps":`)
	fmt.Fprintf(buf, "%.2f", b.stats.groupTps(group, topics))
	buf.WriteString(`,"offsetTable":{`)
	first := true
	for _, topic := range topics {
		tc, ok := b.topicConfig(topic)
		if !ok {
			continue
		}
		for q := 0; q < tc.WriteQueueNums; q++ {
			qid := int32(q)
			brokerOffset := b.store.GetMaxOffsetInQueue(topic, qid)
			consumerOffset := b.queryOffset(group, topic, qid)
			if consumerOffset < 0 {
				consumerOffset = 0
			}
			pullOffset, ok := b.stats.pullOffset(group, topic, qid)
			if !ok {
				pullOffset = consumerOffset
			}
			var last int64
			if consumerOffset > 0 {
				last = max0(b.store.GetMessageStoreTimeStamp(topic, qid, consumerOffset-1))
			}
			diff += max0(brokerOffset - consumerOffset)
			if !first {
				buf.WriteByte(',')
			}
			first = false
			fastjsonMQKey(buf, topic, name, qid)
			fmt.Fprintf(buf, `:{"brokerOffset":%d,"consumerOffset":%d,"lastTimestamp":%d,"pullOffset":%d}`,
				brokerOffset, consumerOffset, last, pullOffset)
		}
	}
	buf.WriteString("}}")
	return diff
}

// handleBrokerConsumeStats is GET_BROKER_CONSUME_STATS (mqadmin
// brokerConsumeStats): ConsumeStats of every online group and topic.
func (b *Broker) handleBrokerConsumeStats(_ remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var total int64
	var buf bytes.Buffer
	buf.WriteString(`{"brokerAddr":`)
	addr, _ := json.Marshal(b.storeHost)
	buf.Write(addr)
	buf.WriteString(`,"consumeStatsList":[`)
	for i, group := range b.clients.consumerGroupNames() {
		if i > 0 {
			buf.WriteByte(',')
		}
		g, _ := json.Marshal(group)
		buf.WriteByte('{')
		buf.Write(g)
		buf.WriteString(":[")
		snap, _ := b.clients.consumerGroup(group)
		j := 0
		for topic := range snap.subs {
			if strings.HasPrefix(topic, metadata.RetryGroupTopicPrefix) {
				continue
			}
			if j > 0 {
				buf.WriteByte(',')
			}
			j++
			total += b.appendConsumeStats(&buf, group, []string{topic})
		}
		buf.WriteString("]}")
	}
	fmt.Fprintf(&buf, `],"totalDiff":%d}`, total)
	resp := respond(protocol.Success, "")
	resp.Body = buf.Bytes()
	return resp
}

// handleViewBrokerStatsData is VIEW_BROKER_STATS_DATA (mqadmin statsAll):
// sums and rates over the last minute, hour and day of one statistic.
func (b *Broker) handleViewBrokerStats(_ remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h struct {
		StatsName string `ext:"statsName,required"`
		StatsKey  string `ext:"statsKey,required"`
	}
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return badHeader(err)
	}
	w := b.stats.item(h.StatsName, h.StatsKey)
	if w == nil {
		return respond(protocol.SystemError, fmt.Sprintf("The stats <%s> <%s> not exist", h.StatsName, h.StatsKey))
	}
	minute, hour, day := w.sums()
	item := func(sum int64, seconds float64) map[string]any {
		return map[string]any{"sum": sum, "tps": float64(sum) / seconds, "avgpt": 0.0}
	}
	return jsonResponse(map[string]any{
		"statsMinute": item(minute, 60),
		"statsHour":   item(hour, 3600),
		"statsDay":    item(day, 86400),
	})
}

// handleConsumeTimeSpan is QUERY_CONSUME_TIME_SPAN: per queue, the store
// times of the first, last and next-to-consume messages.
func (b *Broker) handleConsumeTimeSpan(_ remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h struct {
		Topic string `ext:"topic,required"`
		Group string `ext:"group,required"`
	}
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return badHeader(err)
	}
	tc, ok := b.topicConfig(h.Topic)
	if !ok {
		return respond(protocol.TopicNotExist, fmt.Sprintf("topic[%s] not exist", h.Topic))
	}
	type span struct {
		MessageQueue     messageQueue `json:"messageQueue"`
		MinTimeStamp     int64        `json:"minTimeStamp"`
		MaxTimeStamp     int64        `json:"maxTimeStamp"`
		ConsumeTimeStamp int64        `json:"consumeTimeStamp"`
		DelayTime        int64        `json:"delayTime"`
	}
	var list []span
	name := b.config().BrokerName
	for q := 0; q < tc.WriteQueueNums; q++ {
		qid := int32(q)
		s := span{MessageQueue: messageQueue{Topic: h.Topic, BrokerName: name, QueueID: qid}}
		s.MinTimeStamp = max0(b.store.GetEarliestMessageTime(h.Topic, qid))
		maxOff := b.store.GetMaxOffsetInQueue(h.Topic, qid)
		if maxOff > 0 {
			s.MaxTimeStamp = max0(b.store.GetMessageStoreTimeStamp(h.Topic, qid, maxOff-1))
		}
		if off := b.queryOffset(h.Group, h.Topic, qid); off > 0 && off < maxOff {
			s.ConsumeTimeStamp = max0(b.store.GetMessageStoreTimeStamp(h.Topic, qid, off))
		} else {
			s.ConsumeTimeStamp = s.MaxTimeStamp
		}
		s.DelayTime = s.MaxTimeStamp - s.ConsumeTimeStamp
		list = append(list, s)
	}
	return jsonResponse(map[string]any{"consumeTimeSpanSet": list})
}

// handleCloneGroupOffset is CLONE_GROUP_OFFSET: copy srcGroup's offsets of
// topic (or of every topic it has, when topic is empty) to destGroup.
func (b *Broker) handleCloneGroupOffset(_ remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h struct {
		SrcGroup  string `ext:"srcGroup,required"`
		DestGroup string `ext:"destGroup,required"`
		Topic     string `ext:"topic"`
		Offline   bool   `ext:"offline"`
	}
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return badHeader(err)
	}
	topics := []string{h.Topic}
	if h.Topic == "" {
		topics = b.meta.Offsets.WhichTopicByConsumer(h.SrcGroup)
	}
	for _, t := range topics {
		if err := b.meta.CloneOffsets(h.SrcGroup, h.DestGroup, t); err != nil {
			return respond(protocol.SystemError, "clone offsets: "+err.Error())
		}
	}
	return respond(protocol.Success, "")
}
