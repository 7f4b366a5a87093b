package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rmqd/rmqd/conf"
	"github.com/rmqd/rmqd/metadata"
	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
	"go.uber.org/zap"
)

// Administration (protocol.md §9, ecosystem.md §1.1 tier 1): topic and
// subscription-group CRUD and listings, offsets and delay offsets, runtime
// info, statistics, connection lists, broker configuration, and the relay
// of admin requests to clients.

// brokerVersionDesc is what GET_BROKER_RUNTIME_INFO reports; tools compare
// against Java version names.
const brokerVersionDesc = "V5_3_3"

func (b *Broker) registerAdminProcessors() {
	h := b.mux.HandleFunc
	h(protocol.UpdateAndCreateTopic, b.handleCreateTopic)
	h(protocol.DeleteTopicInBroker, b.handleDeleteTopic)
	h(protocol.GetAllTopicConfig, b.handleGetAllTopicConfig)
	h(protocol.GetTopicConfig, b.handleGetTopicConfig)
	h(protocol.GetTopicNameList, b.handleGetTopicNames)
	h(protocol.UpdateAndCreateSubscriptionGroup, b.handleCreateGroup)
	h(protocol.DeleteSubscriptionGroup, b.handleDeleteGroup)
	h(protocol.GetAllSubscriptionGroupConfig, b.handleGetAllGroups)
	h(protocol.GetSubscriptionGroupConfig, b.handleGetGroup)
	h(protocol.GetAllConsumerOffset, b.handleGetAllConsumerOffset)
	h(protocol.GetAllDelayOffset, b.handleGetAllDelayOffset)
	h(protocol.GetBrokerRuntimeInfo, b.handleRuntimeInfo)
	h(protocol.GetConsumeStats, b.handleConsumeStats)
	h(protocol.GetTopicStatsInfo, b.handleTopicStats)
	h(protocol.GetConsumerConnectionList, b.handleConsumerConnections)
	h(protocol.GetProducerConnectionList, b.handleProducerConnections)
	h(protocol.GetAllProducerInfo, b.handleAllProducerInfo)
	h(protocol.GetBrokerConfig, b.handleGetBrokerConfig)
	h(protocol.UpdateBrokerConfig, b.handleUpdateBrokerConfig)
	h(protocol.QueryTopicConsumeByWho, b.handleTopicConsumeByWho)
	h(protocol.QueryTopicsByConsumer, b.handleTopicsByConsumer)
	h(protocol.QueryBrokerOffset, b.handleQueryBrokerOffset)
	h(protocol.GetConsumerRunningInfo, b.handleRelayToClient)
	h(protocol.ConsumeMessageDirectly, b.handleRelayToClient)
	h(protocol.InvokeBrokerToResetOffset, b.handleResetOffset)
	h(protocol.GetSystemTopicListFromBroker, b.handleSystemTopics)
	h(protocol.UpdateAndCreateTopicList, b.handleCreateTopicList)
	h(protocol.UpdateAndCreateSubscriptionGroupList, b.handleCreateGroupList)
	h(protocol.InvokeBrokerToGetConsumerStatus, b.handleGetConsumerStatus)
	h(protocol.ViewBrokerStatsData, b.handleViewBrokerStats)
	h(protocol.GetBrokerConsumeStats, b.handleBrokerConsumeStats)
	h(protocol.CloneGroupOffset, b.handleCloneGroupOffset)
	h(protocol.QueryConsumeTimeSpan, b.handleConsumeTimeSpan)
	h(protocol.QueryConsumeQueue, b.handleQueryConsumeQueue)
	h(protocol.TriggerDeleteFiles, b.handleDeleteExpiredFiles)
	h(protocol.DeleteExpiredCommitlog, b.handleDeleteExpiredFiles)
	h(protocol.CleanUnusedTopic, b.handleCleanUnusedTopics)
	h(protocol.CleanExpiredConsumequeue, b.handleCleanUnusedTopics)
}

func badHeader(err error) *remoting.RemotingCommand {
	return respond(protocol.SystemError, "bad request header: "+err.Error())
}

func jsonResponse(v any) *remoting.RemotingCommand {
	resp := respond(protocol.Success, "")
	body, err := json.Marshal(v)
	if err != nil {
		return respond(protocol.SystemError, "encode: "+err.Error())
	}
	resp.Body = body
	return resp
}

func isSystemTopic(name string) bool {
	if notAllowedSendTopics[name] || strings.HasPrefix(name, metadata.SystemTopicPrefix) {
		return true
	}
	switch name {
	case metadata.SelfTestTopic, metadata.BenchmarkTopic, metadata.TraceTopic:
		return true
	}
	return false
}

// ---------------------------------------------------------------------------
// Topics.

func (b *Broker) handleCreateTopic(_ remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	h := protocol.CreateTopicRequestHeader{ReadQueueNums: 8, WriteQueueNums: 8, Perm: metadata.DefaultPerm}
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return badHeader(err)
	}
	var attrs map[string]string
	if old, ok := b.topicConfig(h.Topic); ok {
		attrs = old.Attributes
	}
	tc := metadata.TopicConfig{
		TopicName: h.Topic, ReadQueueNums: int(h.ReadQueueNums), WriteQueueNums: int(h.WriteQueueNums), Perm: int(h.Perm),
		TopicSysFlag: int(h.TopicSysFlag), Order: h.Order, TopicFilterType: h.TopicFilterType, Attributes: attrs,
	}
	if tc.Attributes == nil {
		tc.Attributes = map[string]string{}
	}
	if err := applyAttributes(tc.Attributes, h.Attributes); err != nil {
		return respond(protocol.InvalidParameter, err.Error())
	}
	if err := b.checkTopicConfig(&tc); err != nil {
		return respond(protocol.InvalidParameter, err.Error())
	}
	if err := b.putTopic(tc); err != nil {
		return respond(protocol.SystemError, "create topic failed: "+err.Error())
	}
	b.log.Info("topic created or updated", zap.String("topic", h.Topic), zap.Int("read", tc.ReadQueueNums),
		zap.Int("write", tc.WriteQueueNums), zap.Int("perm", tc.Perm))
	return respond(protocol.Success, "")
}

// checkTopicConfig validates an admin-supplied topic config and fills defaults.
func (b *Broker) checkTopicConfig(tc *metadata.TopicConfig) error {
	if err := metadata.ValidateTopicName(tc.TopicName); err != nil {
		return err
	}
	if tc.TopicName == b.config().BrokerClusterName || isSystemTopic(tc.TopicName) && tc.TopicName != metadata.AutoCreateTopicKeyTopic {
		return fmt.Errorf("The topic[%s] is conflict with system topic.", tc.TopicName)
	}
	if tc.ReadQueueNums <= 0 || tc.WriteQueueNums <= 0 || tc.ReadQueueNums > 1024 || tc.WriteQueueNums > 1024 {
		return fmt.Errorf("invalid queue numbers read=%d write=%d (1..1024)", tc.ReadQueueNums, tc.WriteQueueNums)
	}
	if tc.Perm&^7 != 0 {
		return fmt.Errorf("invalid perm %d", tc.Perm)
	}
	switch tc.TopicFilterType {
	case "":
		tc.TopicFilterType = metadata.SingleTag
	case metadata.SingleTag, metadata.MultiTag:
	default:
		return fmt.Errorf("invalid topicFilterType %s", tc.TopicFilterType)
	}
	if tc.Attributes == nil {
		tc.Attributes = map[string]string{}
	}
	return nil
}

// handleCreateTopicList is UPDATE_AND_CREATE_TOPIC_LIST (18): body
// {"topicConfigList":[TopicConfig,...]}; all are checked before any is stored.
func (b *Broker) handleCreateTopicList(_ remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var body struct {
		TopicConfigList []metadata.TopicConfig `json:"topicConfigList"`
	}
	if err := decodeBody(req.Body, &body); err != nil {
		return respond(protocol.SystemError, err.Error())
	}
	for i := range body.TopicConfigList {
		if err := b.checkTopicConfig(&body.TopicConfigList[i]); err != nil {
			return respond(protocol.InvalidParameter, err.Error())
		}
	}
	for _, tc := range body.TopicConfigList {
		if err := b.meta.PutTopic(tc); err != nil {
			return respond(protocol.SystemError, "create topic failed: "+err.Error())
		}
	}
	b.triggerRegister()
	return respond(protocol.Success, "")
}

// handleCreateGroupList is UPDATE_AND_CREATE_SUBSCRIPTIONGROUP_LIST (225):
// body {"groupConfigList":[SubscriptionGroupConfig,...]}.
func (b *Broker) handleCreateGroupList(_ remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var body struct {
		GroupConfigList []json.RawMessage `json:"groupConfigList"`
	}
	if err := decodeBody(req.Body, &body); err != nil {
		return respond(protocol.SystemError, err.Error())
	}
	groups := make([]metadata.SubscriptionGroupConfig, 0, len(body.GroupConfigList))
	for _, raw := range body.GroupConfigList {
		gc, err := decodeGroupConfig(raw)
		if err != nil {
			return respond(protocol.InvalidParameter, err.Error())
		}
		groups = append(groups, gc)
	}
	for _, gc := range groups {
		if err := b.meta.PutGroup(gc); err != nil {
			return respond(protocol.SystemError, "update subscription group failed: "+err.Error())
		}
	}
	return respond(protocol.Success, "")
}

// decodeGroupConfig reads a SubscriptionGroupConfig over Java's defaults.
func decodeGroupConfig(raw []byte) (metadata.SubscriptionGroupConfig, error) {
	var probe struct {
		GroupName string `json:"groupName"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return metadata.SubscriptionGroupConfig{}, fmt.Errorf("bad subscription group body: %v", err)
	}
	if err := metadata.ValidateGroupName(probe.GroupName); err != nil {
		return metadata.SubscriptionGroupConfig{}, err
	}
	gc := metadata.NewSubscriptionGroupConfig(probe.GroupName)
	if err := json.Unmarshal(raw, &gc); err != nil {
		return metadata.SubscriptionGroupConfig{}, fmt.Errorf("bad subscription group body: %v", err)
	}
	if gc.RetryQueueNums < 0 || gc.RetryMaxTimes < -1 {
		return metadata.SubscriptionGroupConfig{}, errors.New("retryQueueNums and retryMaxTimes must not be negative")
	}
	return gc, nil
}

// applyAttributes applies mqadmin's "+key=value,-key" syntax.
func applyAttributes(dst map[string]string, s string) error {
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		switch part[0] {
		case '+':
			k, v, ok := strings.Cut(part[1:], "=")
			if !ok || k == "" {
				return fmt.Errorf("bad attribute %q (want +key=value)", part)
			}
			dst[k] = v
		case '-':
			delete(dst, part[1:])
		default:
			return fmt.Errorf("bad attribute %q (want +key=value or -key)", part)
		}
	}
	return nil
}

func (b *Broker) handleDeleteTopic(_ remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h protocol.TopicHeader
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return badHeader(err)
	}
	if isSystemTopic(h.Topic) || h.Topic == metadata.AutoCreateTopicKeyTopic {
		return respond(protocol.InvalidParameter, fmt.Sprintf("The topic[%s] is conflict with system topic.", h.Topic))
	}
	if err := b.meta.DeleteTopic(h.Topic); err != nil {
		return respond(protocol.SystemError, "delete topic failed: "+err.Error())
	}
	if err := b.meta.RemoveOffsets(h.Topic, ""); err != nil {
		b.log.Warn("remove offsets of deleted topic", zap.String("topic", h.Topic), zap.Error(err))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := b.store.DeleteTopics(ctx, []string{h.Topic}); err != nil {
		// The topic config is gone; the queues stay until a retry of the
		// deletion (or CLEAN_UNUSED_TOPIC) succeeds.
		return respond(protocol.SystemError, "delete the consume queues of the topic failed: "+err.Error())
	}
	b.stats.forgetTopic(h.Topic)
	b.log.Info("topic deleted", zap.String("topic", h.Topic))
	return respond(protocol.Success, "")
}

func (b *Broker) handleGetAllTopicConfig(_ remoting.Conn, _ *remoting.RemotingCommand) *remoting.RemotingCommand {
	resp := respond(protocol.Success, "")
	resp.Body = b.meta.Topics.Encode(false)
	return resp
}

func (b *Broker) handleGetTopicConfig(_ remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h protocol.TopicHeader
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return badHeader(err)
	}
	tc, ok := b.topicConfig(h.Topic)
	if !ok {
		return respond(protocol.TopicNotExist, fmt.Sprintf("No topic in this broker. topic: %s", h.Topic))
	}
	return jsonResponse(tc)
}

// handleGetTopicNames is GET_TOPIC_NAME_LIST (23): this broker's topics.
func (b *Broker) handleGetTopicNames(_ remoting.Conn, _ *remoting.RemotingCommand) *remoting.RemotingCommand {
	resp := respond(protocol.Success, "")
	resp.Body = (&protocol.TopicList{TopicList: b.meta.Topics.Names(), BrokerAddr: b.storeHost}).Encode()
	return resp
}

func (b *Broker) handleSystemTopics(_ remoting.Conn, _ *remoting.RemotingCommand) *remoting.RemotingCommand {
	var list []string
	for _, name := range b.meta.Topics.Names() {
		if isSystemTopic(name) || name == metadata.AutoCreateTopicKeyTopic || name == metadata.OffsetMovedEventTopic {
			list = append(list, name)
		}
	}
	resp := respond(protocol.Success, "")
	resp.Body = (&protocol.TopicList{TopicList: list}).Encode()
	return resp
}

// ---------------------------------------------------------------------------
// Subscription groups.

func (b *Broker) handleCreateGroup(_ remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	if len(req.Body) == 0 {
		return respond(protocol.SystemError, "empty subscription group body")
	}
	gc, err := decodeGroupConfig(req.Body)
	if err != nil {
		return respond(protocol.InvalidParameter, err.Error())
	}
	if err := b.meta.PutGroup(gc); err != nil {
		return respond(protocol.SystemError, "update subscription group failed: "+err.Error())
	}
	b.log.Info("subscription group created or updated", zap.String("group", gc.GroupName))
	return respond(protocol.Success, "")
}

func (b *Broker) handleDeleteGroup(_ remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h protocol.DeleteSubscriptionGroupRequestHeader
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return badHeader(err)
	}
	if err := b.meta.DeleteGroup(h.GroupName); err != nil {
		return respond(protocol.SystemError, "delete subscription group failed: "+err.Error())
	}
	if h.CleanOffset {
		if err := b.meta.RemoveOffsets("", h.GroupName); err != nil {
			b.log.Warn("remove offsets of deleted group", zap.String("group", h.GroupName), zap.Error(err))
		}
	}
	return respond(protocol.Success, "")
}

func (b *Broker) handleGetAllGroups(_ remoting.Conn, _ *remoting.RemotingCommand) *remoting.RemotingCommand {
	resp := respond(protocol.Success, "")
	resp.Body = b.meta.Groups.Encode(false)
	return resp
}

func (b *Broker) handleGetGroup(_ remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h protocol.GetSubscriptionGroupConfigRequestHeader
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return badHeader(err)
	}
	gc, ok := b.groupConfig(h.Group)
	if !ok {
		return respond(protocol.SubscriptionGroupNotExist, "the subscription group does not exist: "+h.Group)
	}
	return jsonResponse(gc)
}

func (b *Broker) handleGetAllConsumerOffset(_ remoting.Conn, _ *remoting.RemotingCommand) *remoting.RemotingCommand {
	resp := respond(protocol.Success, "")
	resp.Body = b.meta.Offsets.Encode(false)
	return resp
}

func (b *Broker) handleGetAllDelayOffset(_ remoting.Conn, _ *remoting.RemotingCommand) *remoting.RemotingCommand {
	resp := respond(protocol.Success, "")
	resp.Body = b.meta.Delay.Encode(false)
	return resp
}

// ---------------------------------------------------------------------------
// Statistics.

// fastjsonMQKey renders a MessageQueue as fastjson writes it when it is a
// map key: {"brokerName":"b","queueId":0,"topic":"T"} (keys sorted). The
// resulting bodies are not standard JSON; Java tools (fastjson) read them.
func fastjsonMQKey(buf *bytes.Buffer, topic, brokerName string, queueID int32) {
	bn, _ := json.Marshal(brokerName)
	tp, _ := json.Marshal(topic)
	fmt.Fprintf(buf, `{"brokerName":%s,"queueId":%d,"topic":%s}`, bn, queueID, tp)
}

func (b *Broker) handleTopicStats(_ remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h protocol.TopicHeader
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return badHeader(err)
	}
	tc, ok := b.topicConfig(h.Topic)
	if !ok {
		return respond(protocol.TopicNotExist, fmt.Sprintf("topic[%s] not exist", h.Topic))
	}
	name := b.config().BrokerName
	var buf bytes.Buffer
	buf.WriteString(`{"offsetTable":{`)
	for q := 0; q < tc.WriteQueueNums; q++ {
		if q > 0 {
			buf.WriteByte(',')
		}
		qid := int32(q)
		min := b.store.GetMinOffsetInQueue(h.Topic, qid)
		max := b.store.GetMaxOffsetInQueue(h.Topic, qid)
		var last int64
		if max > 0 {
			last = b.store.GetMessageStoreTimeStamp(h.Topic, qid, max-1)
		}
		fastjsonMQKey(&buf, h.Topic, name, qid)
		fmt.Fprintf(&buf, `:{"lastUpdateTimestamp":%d,"maxOffset":%d,"minOffset":%d}`, max0(last), max, min)
	}
	var tps float64
	if w := b.stats.item(statsTopicPutNums, h.Topic); w != nil {
		minute, _, _ := w.sums()
		tps = float64(minute) / 60
	}
	fmt.Fprintf(&buf, `},"topicPutTps":%.2f}`, tps)
	resp := respond(protocol.Success, "")
	resp.Body = buf.Bytes()
	return resp
}

func max0(v int64) int64 {
	if v < 0 {
		return 0
	}
	return v
}

// ---------------------------------------------------------------------------
// Connections.

func (b *Broker) handleConsumerConnections(_ remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h protocol.ConsumerGroupHeader
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return badHeader(err)
	}
	snap, ok := b.clients.consumerGroup(h.ConsumerGroup)
	if !ok {
		return respond(protocol.ConsumerNotOnline, fmt.Sprintf("the consumer group[%s] not online", h.ConsumerGroup))
	}
	body := consumerConnectionBody{
		ConnectionSet:     []connection{},
		SubscriptionTable: map[string]subscriptionData{},
		ConsumeType:       snap.consumeType,
		MessageModel:      snap.messageModel,
		ConsumeFromWhere:  snap.consumeFromWhere,
	}
	for i := range snap.channels {
		body.ConnectionSet = append(body.ConnectionSet, snap.channels[i].connection())
	}
	for t, s := range snap.subs {
		body.SubscriptionTable[t] = s.toWire()
	}
	return jsonResponse(body)
}

func (b *Broker) handleProducerConnections(_ remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h protocol.ProducerGroupHeader
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return badHeader(err)
	}
	chs := b.clients.producerChannels(h.ProducerGroup)
	if len(chs) == 0 {
		return respond(protocol.SystemError, fmt.Sprintf("the producer group[%s] not exist", h.ProducerGroup))
	}
	body := producerConnectionBody{ConnectionSet: []connection{}}
	for i := range chs {
		body.ConnectionSet = append(body.ConnectionSet, chs[i].connection())
	}
	return jsonResponse(body)
}

// handleAllProducerInfo is GET_ALL_PRODUCER_INFO (mqadmin producer):
// {"data":{group:[{clientId,remoteIP,language,version,lastUpdateTimestamp}]}}.
func (b *Broker) handleAllProducerInfo(_ remoting.Conn, _ *remoting.RemotingCommand) *remoting.RemotingCommand {
	type producerInfo struct {
		ClientID            string `json:"clientId"`
		RemoteIP            string `json:"remoteIP"`
		Language            string `json:"language"`
		Version             int    `json:"version"`
		LastUpdateTimestamp int64  `json:"lastUpdateTimestamp"`
	}
	data := map[string][]producerInfo{}
	for group, chs := range b.clients.producerGroups() {
		for _, ch := range chs {
			data[group] = append(data[group], producerInfo{ClientID: ch.clientID, RemoteIP: ch.conn.RemoteAddr(),
				Language: ch.language, Version: ch.version, LastUpdateTimestamp: ch.lastUpdate.UnixMilli()})
		}
	}
	return jsonResponse(map[string]any{"data": data})
}

func (b *Broker) handleTopicConsumeByWho(_ remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h protocol.TopicHeader
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return badHeader(err)
	}
	set := map[string]bool{}
	for _, g := range b.clients.groupsOfTopic(h.Topic) {
		set[g] = true
	}
	for _, g := range b.meta.Offsets.WhichGroupByTopic(h.Topic) {
		set[g] = true
	}
	list := make([]string, 0, len(set))
	for g := range set {
		list = append(list, g)
	}
	sort.Strings(list)
	return jsonResponse(groupListBody{GroupList: list})
}

func (b *Broker) handleTopicsByConsumer(_ remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h struct {
		Group string `ext:"group,required"`
	}
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return badHeader(err)
	}
	topics := b.meta.Offsets.WhichTopicByConsumer(h.Group)
	if topics == nil {
		topics = []string{}
	}
	return jsonResponse(struct {
		TopicList  []string `json:"topicList"`
		BrokerAddr string   `json:"brokerAddr"`
	}{topics, b.storeHost})
}

func (b *Broker) handleQueryBrokerOffset(_ remoting.Conn, _ *remoting.RemotingCommand) *remoting.RemotingCommand {
	return offsetResponse(b.store.GetMaxPhyOffset())
}

// ---------------------------------------------------------------------------
// Broker configuration.

func (b *Broker) configVersionJSON() string {
	b.configVersion.Lock()
	defer b.configVersion.Unlock()
	return string(b.configVersion.v.Encode())
}

func (b *Broker) handleGetBrokerConfig(_ remoting.Conn, _ *remoting.RemotingCommand) *remoting.RemotingCommand {
	resp := respond(protocol.Success, "")
	resp.Body = []byte(b.config().Properties())
	resp.ExtFields = protocol.EncodeHeader(&protocol.GetBrokerConfigResponseHeader{Version: b.configVersionJSON()})
	return resp
}

// handleUpdateBrokerConfig applies key=value lines to a copy of the
// configuration and publishes it when every key parses and the result
// validates. Keys that only take effect at start (ports, paths, store
// layout) are stored but not re-applied.
func (b *Broker) handleUpdateBrokerConfig(_ remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	if len(req.Body) == 0 {
		return respond(protocol.SystemError, "empty config body")
	}
	entries, err := conf.ReadProperties(bytes.NewReader(req.Body))
	if err != nil {
		return respond(protocol.SystemError, "bad properties: "+err.Error())
	}
	next := b.config().Clone()
	var ignored []string
	set := map[string]string{}
	for _, e := range entries {
		if err := next.Set(e.Key, e.Value); err != nil {
			if errors.Is(err, conf.ErrNotImplemented) {
				ignored = append(ignored, e.Key)
				continue
			}
			return respond(protocol.SystemError, err.Error())
		}
		set[e.Key] = e.Value
	}
	if err := next.Validate(); err != nil {
		return respond(protocol.SystemError, err.Error())
	}
	prev := b.config()
	b.cfg.Store(next)
	if next.NamesrvAddr != prev.NamesrvAddr && b.registrar != nil {
		b.registrar.SetNamesrvAddr(next.NamesrvAddr)
	}
	if path := b.configFile.Load(); path != nil && *path != "" && len(set) > 0 {
		// Like Java, the change also goes into the broker's config file.
		if err := conf.UpdateFile(*path, set); err != nil {
			b.log.Warn("config file not updated", zap.String("file", *path), zap.Error(err))
		}
	}
	b.configVersion.Lock()
	b.configVersion.v = b.configVersion.v.Next(time.Now().UnixMilli())
	b.configVersion.Unlock()
	b.log.Info("broker config updated", zap.ByteString("properties", req.Body), zap.Strings("ignored", ignored))
	b.triggerRegister()
	remark := ""
	if len(ignored) > 0 {
		remark = "ignored keys rmqd does not implement: " + strings.Join(ignored, ",")
	}
	return respond(protocol.Success, remark)
}

// ---------------------------------------------------------------------------
// Relays and resets.

// handleRelayToClient forwards GET_CONSUMER_RUNNING_INFO (307) and
// CONSUME_MESSAGE_DIRECTLY (309) to the connection of the named client and
// returns its answer unchanged (protocol.md §9.2).
func (b *Broker) handleRelayToClient(_ remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h protocol.ConsumerClientHeader
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return badHeader(err)
	}
	conn, ok := b.clients.findChannelByClientID(h.ClientID)
	if !ok {
		return respond(protocol.SystemError, fmt.Sprintf("The Consumer <%s> <%s> not online", h.ConsumerGroup, h.ClientID))
	}
	fwd := b.newRequest(req.Code, req.ExtFields, req.Body)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := conn.Invoke(ctx, fwd, 10*time.Second)
	if err != nil {
		return respond(protocol.SystemError, fmt.Sprintf("invoke consumer <%s> <%s> failed: %v", h.ConsumerGroup, h.ClientID, err))
	}
	resp := respond(out.Code, out.Remark)
	resp.ExtFields = out.ExtFields
	resp.Body = out.Body
	return resp
}

// handleGetConsumerStatus is INVOKE_BROKER_TO_GET_CONSUMER_STATUS (223):
// ask every client of the group (or the one at clientAddr) for its queue
// offsets of topic (GET_CONSUMER_STATUS_FROM_CLIENT, 221) and return
// {"consumerTable":{clientId:<its messageQueueTable>},"messageQueueTable":{}}.
// Client answers are fastjson text (object map keys) and are relayed as is.
func (b *Broker) handleGetConsumerStatus(_ remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h struct {
		Topic      string `ext:"topic,required"`
		Group      string `ext:"group,required"`
		ClientAddr string `ext:"clientAddr"`
	}
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return badHeader(err)
	}
	snap, ok := b.clients.consumerGroup(h.Group)
	if !ok || len(snap.channels) == 0 {
		return respond(protocol.SystemError, fmt.Sprintf("No Any Consumer online in the consumer group: [%s]", h.Group))
	}
	var buf bytes.Buffer
	buf.WriteString(`{"consumerTable":{`)
	n := 0
	for _, ch := range snap.channels {
		if h.ClientAddr != "" && ch.conn.RemoteAddr() != h.ClientAddr {
			continue
		}
		ask := b.newRequest(protocol.GetConsumerStatusFromClient, remoting.FieldsOf("topic", h.Topic, "group", h.Group, "clientAddr", ch.conn.RemoteAddr()), nil)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := ch.conn.Invoke(ctx, ask, 5*time.Second)
		cancel()
		if err != nil || resp.Code != protocol.Success {
			b.log.Info("get consumer status from client failed", zap.String("client", ch.clientID), zap.Error(err))
			continue
		}
		table := bytes.TrimSpace(resp.Body)
		const prefix = `{"messageQueueTable":`
		if !bytes.HasPrefix(table, []byte(prefix)) || !bytes.HasSuffix(table, []byte("}")) {
			continue
		}
		table = table[len(prefix) : len(table)-1]
		if n > 0 {
			buf.WriteByte(',')
		}
		n++
		id, _ := json.Marshal(ch.clientID)
		buf.Write(id)
		buf.WriteByte(':')
		buf.Write(table)
	}
	buf.WriteString(`},"messageQueueTable":{}}`)
	resp := respond(protocol.Success, "")
	resp.Body = buf.Bytes()
	return resp
}

// handleResetOffset is INVOKE_BROKER_TO_RESET_OFFSET (222): compute each
// queue's offset for the timestamp, store it, and push
// RESET_CONSUMER_CLIENT_OFFSET (220) to the online clients of the group.
// With no client online the answer is CONSUMER_NOT_ONLINE (the tool then
// falls back to updating offsets itself), after the broker-side reset.
func (b *Broker) handleResetOffset(_ remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h protocol.ResetOffsetRequestHeader
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return badHeader(err)
	}
	tc, ok := b.topicConfig(h.Topic)
	if !ok {
		return respond(protocol.TopicNotExist, fmt.Sprintf("[reset-offset] request topic[%s] not exist", h.Topic))
	}
	offsets := map[int32]int64{}
	for q := 0; q < tc.ReadQueueNums; q++ {
		qid := int32(q)
		if h.QueueID != nil && *h.QueueID >= 0 && *h.QueueID != qid {
			continue
		}
		var off int64
		switch {
		case h.Timestamp < 0:
			off = b.store.GetMaxOffsetInQueue(h.Topic, qid)
		default:
			off = b.store.GetOffsetInQueueByTime(h.Topic, qid, h.Timestamp)
		}
		if cur := b.queryOffset(h.Group, h.Topic, qid); !h.IsForce && cur >= 0 && cur < off {
			off = cur
		}
		offsets[qid] = off
	}
	if err := b.meta.ResetOffsets(h.Group, h.Topic, offsets); err != nil {
		return respond(protocol.SystemError, "reset offsets failed: "+err.Error())
	}
	name := b.config().BrokerName
	var buf bytes.Buffer
	buf.WriteString(`{"offsetTable":{`)
	qids := make([]int, 0, len(offsets))
	for q := range offsets {
		qids = append(qids, int(q))
	}
	sort.Ints(qids)
	for i, q := range qids {
		if i > 0 {
			buf.WriteByte(',')
		}
		fastjsonMQKey(&buf, h.Topic, name, int32(q))
		fmt.Fprintf(&buf, ":%d", offsets[int32(q)])
	}
	buf.WriteString("}}")
	body := buf.Bytes()
	conns := b.clients.consumerChannels(h.Group)
	if len(conns) == 0 {
		return respond(protocol.ConsumerNotOnline, fmt.Sprintf("Consumer not online, so can not reset offset, Group: %s Topic: %s Timestamp: %d", h.Group, h.Topic, h.Timestamp))
	}
	for q, off := range offsets {
		b.resets.add(h.Group, h.Topic, q, off)
	}
	for _, c := range conns {
		push := b.newRequest(protocol.ResetConsumerClientOffset, remoting.FieldsOf(
			"topic", h.Topic,
			"group", h.Group,
			"timestamp", strconv.FormatInt(h.Timestamp, 10),
			"isForce", strconv.FormatBool(h.IsForce),
		), body)
		push.Flag |= remoting.FlagOneway
		if err := c.Send(push); err != nil {
			b.log.Debug("reset offset push failed", zap.String("addr", c.RemoteAddr()), zap.Error(err))
		}
	}
	resp := respond(protocol.Success, "")
	resp.Body = body
	return resp
}

// ---------------------------------------------------------------------------
// Store maintenance (mqadmin deleteExpiredCommitLog, cleanUnusedTopic,
// cleanExpiredCQ).

// handleDeleteExpiredFiles is TRIGGER_DELETE_FILES (27) and
// DELETE_EXPIRED_COMMITLOG (329): run retention now, whatever deleteWhen says.
func (b *Broker) handleDeleteExpiredFiles(_ remoting.Conn, _ *remoting.RemotingCommand) *remoting.RemotingCommand {
	n := b.store.DeleteExpiredFiles()
	b.log.Info("expired commitlog files deleted on request", zap.Int("files", n))
	return respond(protocol.Success, "")
}

// handleCleanUnusedTopics is CLEAN_UNUSED_TOPIC (316) and
// CLEAN_EXPIRED_CONSUMEQUEUE (306): remove the consume queues of topics that
// no longer have a topic config.
func (b *Broker) handleCleanUnusedTopics(_ remoting.Conn, _ *remoting.RemotingCommand) *remoting.RemotingCommand {
	var unused []string
	for topic := range b.store.Topics() {
		if _, ok := b.topicConfig(topic); !ok && topic != metadata.ScheduleTopic {
			unused = append(unused, topic)
		}
	}
	sort.Strings(unused)
	if len(unused) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n, err := b.store.DeleteTopics(ctx, unused)
		if err != nil {
			return respond(protocol.SystemError, "delete the consume queues of unused topics failed: "+err.Error())
		}
		b.log.Info("consume queues of unused topics removed", zap.Strings("topics", unused), zap.Int("queues", n))
	}
	return respond(protocol.Success, "")
}
