package broker

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/rmqd/rmqd/metadata"
	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
	"go.uber.org/zap"
)

// HEART_BEAT (34), UNREGISTER_CLIENT (35), GET_CONSUMER_LIST_BY_GROUP (38),
// CHECK_CLIENT_CONFIG (46), NOTIFY_CONSUMER_IDS_CHANGED (40, broker ->
// client), and the removal of closed or silent channels (protocol.md §7.6,
// §7.7).

const (
	channelExpiredTimeout = 120 * time.Second
	channelScanInterval   = 10 * time.Second
)

func (b *Broker) handleHeartbeat(c remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var hb heartbeatData
	if err := decodeBody(req.Body, &hb); err != nil {
		return respond(protocol.SystemError, "bad heartbeat body: "+err.Error())
	}
	now := time.Now()
	ch := clientChannel{conn: c, clientID: hb.ClientID, language: req.Language, version: int(req.Version), lastUpdate: now}
	for i := range hb.ConsumerDataSet {
		cd := &hb.ConsumerDataSet[i]
		if cd.GroupName == "" {
			continue
		}
		// As Java, the channel is registered even when the group does not
		// exist (autoCreateSubscriptionGroup=false): it shows in the
		// connection list, and its pulls are answered 26.
		gc, known := b.groupConfigOrCreate(cd.GroupName)
		notify := !known || gc.NotifyConsumerIdsChangedEnable
		if known && cd.MessageModel != messageModelBroadcasting {
			if _, ok := b.ensureRetryTopic(cd.GroupName, gc.RetryQueueNums); !ok {
				b.log.Warn("cannot create retry topic", zap.String("group", cd.GroupName))
			}
		}
		subs := make([]*subscription, 0, len(cd.SubscriptionDataSet))
		for j := range cd.SubscriptionDataSet {
			sd := &cd.SubscriptionDataSet[j]
			if sd.Topic == "" {
				continue
			}
			subs = append(subs, subscriptionFromHeartbeat(sd))
		}
		changed := b.clients.registerConsumer(cd.GroupName, ch, cd.ConsumeType, cd.MessageModel, cd.ConsumeFromWhere, subs)
		if changed {
			b.log.Info("consumer group changed", zap.String("group", cd.GroupName), zap.String("client", hb.ClientID),
				zap.String("addr", c.RemoteAddr()))
			if cd.MessageModel != messageModelBroadcasting && notify {
				b.notifyConsumerIDsChanged(cd.GroupName)
			}
		}
	}
	for _, pd := range hb.ProducerDataSet {
		if pd.GroupName != "" {
			b.clients.registerProducer(pd.GroupName, ch)
		}
	}
	resp := respond(protocol.Success, "")
	resp.ExtFields = remoting.FieldsOf("IS_SUPPORT_HEART_BEAT_V2", "false")
	return resp
}

func (b *Broker) handleUnregisterClient(c remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h protocol.UnregisterClientRequestHeader
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return respond(protocol.SystemError, "bad request header: "+err.Error())
	}
	if h.ProducerGroup != "" {
		b.clients.unregisterProducer(h.ProducerGroup, c.ID())
	}
	if h.ConsumerGroup != "" {
		if b.clients.unregisterConsumer(h.ConsumerGroup, c.ID()) {
			b.afterConsumerLeft(h.ConsumerGroup)
		}
	}
	return respond(protocol.Success, "")
}

func (b *Broker) handleGetConsumerList(_ remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h protocol.ConsumerGroupHeader
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return respond(protocol.SystemError, "bad request header: "+err.Error())
	}
	ids := b.clients.consumerIDs(h.ConsumerGroup)
	if len(ids) == 0 {
		return respond(protocol.SystemError, "no consumer for this group, "+h.ConsumerGroup)
	}
	resp := respond(protocol.Success, "")
	resp.Body, _ = json.Marshal(consumerListBody{ConsumerIDList: ids})
	return resp
}

// handleCheckClientConfig accepts TAG subscriptions only: rmqd does not
// evaluate SQL92 (enablePropertyFilter is not supported).
func (b *Broker) handleCheckClientConfig(_ remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var body struct {
		ClientID         string           `json:"clientId"`
		Group            string           `json:"group"`
		SubscriptionData subscriptionData `json:"subscriptionData"`
	}
	if err := decodeBody(req.Body, &body); err != nil {
		return respond(protocol.SystemError, "bad body: "+err.Error())
	}
	t := body.SubscriptionData.ExpressionType
	if t != "" && !strings.EqualFold(t, expressionTag) {
		return respond(protocol.SystemError, "The broker does not support consumer to filter message by "+t)
	}
	if _, err := parseSubscription(body.SubscriptionData.Topic, body.SubscriptionData.SubString, t); err != nil {
		return respond(protocol.SubscriptionParseFailed, "parse subscription failed: "+body.SubscriptionData.SubString)
	}
	return respond(protocol.Success, "")
}

// notifyConsumerIDsChanged sends NOTIFY_CONSUMER_IDS_CHANGED (oneway) to
// every channel of group.
func (b *Broker) notifyConsumerIDsChanged(group string) {
	for _, conn := range b.clients.consumerChannels(group) {
		req := b.newRequest(protocol.NotifyConsumerIdsChanged, protocol.EncodeHeader(&protocol.ConsumerGroupHeader{ConsumerGroup: group}), nil)
		req.Flag |= remoting.FlagOneway
		if err := conn.Send(req); err != nil {
			b.log.Debug("notify consumer ids changed failed", zap.String("group", group), zap.String("addr", conn.RemoteAddr()), zap.Error(err))
		}
	}
}

func (b *Broker) afterConsumerLeft(group string) {
	gc, ok := b.groupConfig(group)
	if ok && !gc.NotifyConsumerIdsChangedEnable {
		return
	}
	snap, online := b.clients.consumerGroup(group)
	if online && snap.messageModel == messageModelBroadcasting {
		return
	}
	if online {
		b.notifyConsumerIDsChanged(group)
	}
}

// onConnClose removes a closed connection from every group and drops its
// held pulls (protocol.md §7.7: a closed TCP connection unregisters at once).
func (b *Broker) onConnClose(c remoting.Conn) {
	b.holds.dropConn(c.ID())
	for _, g := range b.clients.removeConn(c.ID()) {
		b.log.Info("consumer left (connection closed)", zap.String("group", g), zap.String("addr", c.RemoteAddr()))
		b.afterConsumerLeft(g)
	}
}

// scanExpiredChannels drops channels silent for channelExpiredTimeout and
// closes their connections.
func (b *Broker) scanExpiredChannels(now time.Time) {
	groups, conns := b.clients.expire(now, channelExpiredTimeout)
	for _, c := range conns {
		b.log.Info("client channel expired", zap.String("addr", c.RemoteAddr()))
		_ = c.Close()
	}
	for _, g := range groups {
		b.afterConsumerLeft(g)
	}
}

// ensureRetryTopic creates %RETRY%<group> if absent (queues from the
// group's retryQueueNums, perm RW) and registers it with the name servers.
func (b *Broker) ensureRetryTopic(group string, queues int) (metadata.TopicConfig, bool) {
	name := metadata.RetryTopic(group)
	if tc, ok := b.topicConfig(name); ok {
		return tc, true
	}
	if queues <= 0 {
		queues = 1
	}
	if err := metadata.ValidateTopicName(name); err != nil {
		return metadata.TopicConfig{}, false
	}
	tc, err := b.createTopicIfAbsent(metadata.NewTopicConfig(name, queues))
	if err != nil {
		b.log.Warn("create retry topic failed", zap.String("topic", name), zap.Error(err))
		return metadata.TopicConfig{}, false
	}
	return tc, true
}

var _ = fmt.Sprintf
