package broker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rmqd/rmqd/metadata"
	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
	"github.com/rmqd/rmqd/store"
	"go.uber.org/zap"
)

// SEND_MESSAGE (10), SEND_MESSAGE_V2 (310), SEND_BATCH_MESSAGE (320) and the
// reply variants (324, 325): protocol.md §2.2, §5.4, §4.5.
//
// Order of checks (Java's AbstractSendMessageProcessor.msgCheck and
// SendMessageProcessor): master, broker write permission, topic name,
// not-sendable system topic, topic config (auto-created from the header's
// defaultTopic when allowed), topic write permission, queue id, message size,
// then the extension send hooks (retry/DLQ redirection, delay, transactions),
// then the store.

// notAllowedSendTopics are system topics producers may not write to.
var notAllowedSendTopics = map[string]bool{
	metadata.ScheduleTopic:           true,
	metadata.TransHalfTopic:          true,
	metadata.TransOpHalfTopic:        true,
	metadata.TransCheckMaxTimeTopic:  true,
	metadata.OffsetMovedEventTopic:   true,
	metadata.AutoCreateTopicKeyTopic: true,
	store.SystemTopic:                true, // DLedger metadata records: a client must not inject ops
}

const (
	msgRegionDefault = "DefaultRegion"
	maxPropertiesLen = 32767
)

// sendRequest is a decoded send request, whichever code it came with.
type sendRequest struct {
	header protocol.SendMessageRequestHeader
	batch  bool
	reply  bool
}

// sendCall is what a send of one message needs on the heap, as one
// allocation: the decoded header (the send hooks get it), the message (the
// store and the hooks get it) and the success response. They were three of
// the ~9 objects each send allocated (issue 8).
type sendCall struct {
	sr   sendRequest
	msg  store.Message
	resp remoting.RemotingCommand
	// In DLedger mode the store answers the send through PutDone when its
	// batch commits (or fails): no goroutine waits for it (issue 8).
	b   *Broker
	c   remoting.Conn
	req *remoting.RemotingCommand
	// onLoop: served on the event loop, where nothing keeps the request
	// or a string aliasing it past the answer, so PutDone releases it.
	onLoop bool
}

// sendCalls recycles the calls PutDone is done with: ~700 bytes with
// pointers, zeroed and scanned, per send otherwise (issue 8).
var sendCalls sync.Pool

func (b *Broker) processSend(c remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	return b.serveSend(c, req, false)
}

// processSendInline serves SEND_MESSAGE(_V2) on the event loop in DLedger
// mode, where a send does not wait for its put (PutMessageAsync): the
// remoting worker hand-off was one of a send's two goroutine wake-ups on
// the leader (issue 8). What could block goes to a worker (ServeOnWorker):
// classic mode (the put waits), creating a topic (a replicated metadata
// change), and %RETRY% sends (the retry hook may create the group or the
// DLQ topic). The other send hook steps only rewrite the message.
func (b *Broker) processSendInline(c remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	if !b.store.Replicated() {
		return remoting.ServeOnWorker
	}
	return b.serveSend(c, req, true)
}

// serveSend serves a send; onLoop: on the event loop, where it hands what
// could block to a worker (see processSendInline) before any side effect.
func (b *Broker) serveSend(c remoting.Conn, req *remoting.RemotingCommand, onLoop bool) *remoting.RemotingCommand {
	call, ok := sendCalls.Get().(*sendCall)
	if !ok {
		call = new(sendCall)
	}
	sr := &call.sr
	if err := decodeSendRequest(req, sr); err != nil {
		return respond(protocol.SystemError, "bad send request header: "+err.Error())
	}
	h := &sr.header
	cfg := b.config()
	if resp := b.checkWritable(); resp != nil {
		return resp
	}
	if err := metadata.ValidateTopicName(h.Topic); err != nil {
		return respond(protocol.InvalidParameter, err.Error())
	}
	if notAllowedSendTopics[h.Topic] {
		return respond(protocol.NoPermission, fmt.Sprintf("Sending message to topic[%s] is forbidden.", h.Topic))
	}
	if onLoop && (sr.batch || sr.reply || strings.HasPrefix(h.Topic, metadata.RetryGroupTopicPrefix)) {
		return remoting.ServeOnWorker
	}
	tc, ok := b.topicChecks(h.Topic)
	if !ok {
		if onLoop {
			return remoting.ServeOnWorker
		}
		tc, ok = b.autoCreateTopicForSend(h, c)
		if !ok {
			return respond(protocol.TopicNotExist, fmt.Sprintf("topic[%s] not exist, apply first please! %s", h.Topic, faqTopicNotExist))
		}
	}
	if !metadata.IsWriteable(tc.Perm) {
		return respond(protocol.NoPermission, fmt.Sprintf("the topic[%s] sending message is forbidden", h.Topic))
	}
	queues := max(tc.WriteQueueNums, tc.ReadQueueNums)
	if h.QueueID >= int32(queues) {
		return respond(protocol.SystemError, fmt.Sprintf("request queueId[%d] is illegal, topic %s has %d queues, producer: %s",
			h.QueueID, h.Topic, queues, c.RemoteAddr()))
	}
	if h.QueueID < 0 {
		h.QueueID = int32(rand.IntN(max(tc.WriteQueueNums, 1)))
	}
	if sr.batch {
		return b.sendBatch(c, sr, tc, req)
	}
	if len(req.Body) > cfg.MaxMessageSize {
		return respond(protocol.MessageIllegal, fmt.Sprintf("the message body size %d is over the limit %d (maxMessageSize)", len(req.Body), cfg.MaxMessageSize))
	}
	if len(h.Properties) > maxPropertiesLen {
		return respond(protocol.MessageIllegal, fmt.Sprintf("the message properties length %d is over the limit %d", len(h.Properties), maxPropertiesLen))
	}
	// The table's string, not the request's: the store and the stats keep
	// the topic as a map key, and the request's frame is reused once the
	// send is answered (remoting.ReleaseRequest).
	topic := tc.TopicName
	if topic != h.Topic {
		topic = strings.Clone(h.Topic)
	}
	msg := &call.msg
	*msg = store.Message{
		Topic:          topic,
		Flag:           h.Flag,
		Body:           req.Body,
		Properties:     store.ParseProperties(h.Properties),
		QueueID:        h.QueueID,
		SysFlag:        h.SysFlag,
		BornTimestamp:  h.BornTimestamp,
		BornHost:       c.RemoteAddr(),
		ReconsumeTimes: h.ReconsumeTimes,
	}
	if tc.TopicFilterType == metadata.MultiTag {
		msg.SysFlag |= store.MultiTagsFlag
	}
	// The received properties plus the broker's, appended in one allocation.
	if msg.UniqKey() == "" {
		var id [64]byte // a UNIQ_KEY of up to 32 bytes is converted on the stack: With copies it
		msg.Properties = msg.Properties.With(store.PropertyUniqClientMessageIDKey, string(b.appendUniqID(id[:0])), store.PropertyCluster, cfg.BrokerClusterName)
	} else {
		msg.SetProperty(store.PropertyCluster, cfg.BrokerClusterName)
	}
	if sr.reply {
		// Go sends reply bodies uncompressed with the compressed bit set
		// (protocol.md §10.18); a zlib stream starts with 0x78.
		if msg.SysFlag&store.CompressedFlag != 0 && (len(msg.Body) < 2 || msg.Body[0] != 0x78) {
			msg.SysFlag &^= store.CompressedFlag
		}
		b.pushReply(c, h, msg)
	} else if requester := msg.Property(propReplyToClient); requester != "" {
		b.clients.learnRequester(requester, c)
	}
	if code, remark := b.runSendHooks(c, h, msg); code != protocol.Success {
		return respond(code, remark)
	}
	if b.store.Replicated() {
		if b.sendsInFlight.Add(1) > maxSendsInFlight {
			b.sendsInFlight.Add(-1)
			return respond(protocol.SystemBusy, "[OVERLOAD]system busy, start flow control for a while")
		}
		call.b, call.c, call.req, call.onLoop = b, c, req, onLoop
		b.store.PutMessageAsync(msg, call)
		return nil
	}
	ctx, cancel := b.putContext()
	defer cancel()
	return call.response(b, b.store.PutMessage(ctx, msg))
}

// response is the send's answer for the store's result.
func (call *sendCall) response(b *Broker, res store.PutMessageResult) *remoting.RemotingCommand {
	msg := &call.msg
	resp := b.putResultResponse(&call.resp, res, msg.Topic, call.sr.header.QueueID) // the queue the client asked for, even when a delay or half message was parked elsewhere
	if res.Status.OK() {
		b.stats.recordPut(msg.Topic, 1, int64(res.WroteBytes))
		if tid := msg.Property(store.PropertyTransactionID); tid != "" {
			resp.ExtFields.Set("transactionId", tid)
		} else if msg.TransactionType() == store.TransactionPreparedType {
			resp.ExtFields.Set("transactionId", msg.UniqKey())
		}
	}
	return resp
}

// PutDone answers a send put with PutMessageAsync (store.PutCallback). It
// runs on the goroutine completing the put, usually the store's completer
// answering a whole replicated batch: the response is only queued on the
// connection here, and written with the batch's other answers for that
// connection once they are all queued.
func (call *sendCall) PutDone(res store.PutMessageResult, after *store.AfterPuts) {
	b, req := call.b, call.req
	b.sendsInFlight.Add(-1)
	resp := call.response(b, res)
	if !req.IsOneway() {
		remoting.MarkResponseTo(resp, req)
		f, err := remoting.SendDeferred(call.c, resp) // encoded: resp and req are no longer needed
		if f != nil {
			after.Add(f)
		}
		if err != nil {
			b.log.Debug("send response not sent", zap.String("remote", call.c.RemoteAddr()), zap.Error(err))
		}
	}
	if call.onLoop {
		remoting.ReleaseRequest(req)
	}
	*call = sendCall{}
	sendCalls.Put(call)
}

func (b *Broker) sendBatch(c remoting.Conn, sr *sendRequest, tc metadata.TopicConfig, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	h := &sr.header
	cfg := b.config()
	if strings.HasPrefix(h.Topic, metadata.RetryGroupTopicPrefix) {
		return respond(protocol.MessageIllegal, "batch request does not support retry group "+h.Topic)
	}
	if len(req.Body) > cfg.MaxMessageSize { // Java limits the whole batch body
		return respond(protocol.MessageIllegal, fmt.Sprintf("the batch body size %d is over the limit %d (maxMessageSize)", len(req.Body), cfg.MaxMessageSize))
	}
	if len(req.Body) == 0 {
		return respond(protocol.MessageIllegal, "the batch body is empty")
	}
	items, err := store.DecodeBatch(req.Body)
	if err != nil {
		return respond(protocol.MessageIllegal, "malformed batch body: "+err.Error())
	}
	headerProps := store.ParseProperties(h.Properties)
	msgs := make([]*store.Message, len(items))
	for i := range items {
		m := &items[i]
		if len(m.Body) > cfg.MaxMessageSize {
			return respond(protocol.MessageIllegal, fmt.Sprintf("batch item %d: body size %d is over the limit %d (maxMessageSize)", i, len(m.Body), cfg.MaxMessageSize))
		}
		if m.DelayTimeLevel() > 0 {
			return respond(protocol.MessageIllegal, "batch messages do not support a delay level")
		}
		m.Topic = h.Topic
		m.QueueID = h.QueueID
		m.SysFlag = h.SysFlag &^ store.TransactionTypeMask
		if tc.TopicFilterType == metadata.MultiTag {
			m.SysFlag |= store.MultiTagsFlag
		}
		m.BornTimestamp = h.BornTimestamp
		m.BornHost = c.RemoteAddr()
		m.ReconsumeTimes = h.ReconsumeTimes
		add := []string{store.PropertyCluster, cfg.BrokerClusterName}
		for k, v := range headerProps.All() {
			if _, ok := m.Properties.Lookup(k); !ok && k != store.PropertyCluster {
				add = append(add, k, v)
			}
		}
		m.Properties = m.Properties.With(add...)
		msgs[i] = m
	}
	ctx, cancel := b.putContext()
	defer cancel()
	res := b.store.PutMessages(ctx, msgs)
	resp := b.putResultResponse(new(remoting.RemotingCommand), res, h.Topic, h.QueueID)
	if res.Status.OK() {
		b.stats.recordPut(h.Topic, int64(len(msgs)), int64(res.WroteBytes))
	}
	return resp
}

// putResultResponse maps a store result to the send response (Java's
// handlePutMessageResult), built in resp.
func (b *Broker) putResultResponse(resp *remoting.RemotingCommand, res store.PutMessageResult, topic string, queueID int32) *remoting.RemotingCommand {
	var code int16
	remark := ""
	switch res.Status {
	case store.PutOK:
		code = protocol.Success
	case store.FlushDiskTimeout:
		code = protocol.FlushDiskTimeout
	case store.FlushSlaveTimeout:
		code = protocol.FlushSlaveTimeout
	case store.SlaveNotAvailable:
		code = protocol.SlaveNotAvailable
	case store.ServiceNotAvailable:
		code, remark = protocol.ServiceNotAvailable, "service not available now, maybe disk full or shutting down"
	case store.NotLeader:
		code, remark = protocol.ServiceNotAvailable, notMasterRemark(res.Leader)
	case store.MessageIllegal, store.PropertiesSizeExceeded:
		code, remark = protocol.MessageIllegal, "the message is illegal, maybe msg body or properties length not matched"
	case store.CreateMappedFileFailed:
		code, remark = protocol.SystemError, "create mapped file failed, server is busy or broken"
	case store.OSPageCacheBusy:
		code, remark = protocol.SystemError, "[PC_SYNCHRONIZED]broker busy, start flow control for a while"
	default:
		code, remark = protocol.SystemError, "UNKNOWN_ERROR"
	}
	if res.Err != nil && remark != "" {
		remark += ": " + res.Err.Error()
	}
	*resp = response(code, remark)
	if !res.Status.OK() {
		if res.Err != nil {
			b.log.Debug("put failed", zap.String("topic", topic), zap.Stringer("status", res.Status), zap.Error(res.Err))
		}
		return resp
	}
	resp.ExtFields = sendResponseExt(res.MsgID, queueID, res.QueueOffset)
	return resp
}

// autoCreateTopicForSend creates an unknown topic from the header's default
// topic (TBW102) when autoCreateTopicEnable allows it and the template has
// the INHERIT bit (protocol.md §4.5). Retry topics of a known group are
// created whatever the setting, as Java's send-back fallback path does.
func (b *Broker) autoCreateTopicForSend(h *protocol.SendMessageRequestHeader, c remoting.Conn) (metadata.TopicConfig, bool) {
	if strings.HasPrefix(h.Topic, metadata.RetryGroupTopicPrefix) {
		group := strings.TrimPrefix(h.Topic, metadata.RetryGroupTopicPrefix)
		if gc, ok := b.groupConfig(group); ok {
			return b.ensureRetryTopic(group, gc.RetryQueueNums)
		}
	}
	cfg := b.config()
	if !cfg.AutoCreateTopicEnable {
		return metadata.TopicConfig{}, false
	}
	tmplName := h.DefaultTopic
	if tmplName == "" {
		tmplName = metadata.AutoCreateTopicKeyTopic
	}
	tmpl, ok := b.topicConfig(tmplName)
	if !ok || !metadata.IsInherited(tmpl.Perm) {
		return metadata.TopicConfig{}, false
	}
	queues := int(h.DefaultTopicQueueNums)
	if queues <= 0 || queues > tmpl.WriteQueueNums {
		queues = tmpl.WriteQueueNums
	}
	tc := metadata.NewTopicConfig(h.Topic, queues)
	tc.Perm = tmpl.Perm &^ metadata.PermInherit
	tc.TopicSysFlag = tmpl.TopicSysFlag
	tc.TopicFilterType = tmpl.TopicFilterType
	created, err := b.createTopicIfAbsent(tc)
	if err != nil {
		b.log.Warn("auto-create topic failed", zap.String("topic", h.Topic), zap.Error(err))
		return metadata.TopicConfig{}, false
	}
	b.log.Info("topic auto-created", zap.String("topic", h.Topic), zap.Int("queues", queues), zap.String("producer", c.RemoteAddr()))
	return created, true
}

// runSendHooks lets the extensions rewrite or refuse a message.
func (b *Broker) runSendHooks(c remoting.Conn, h *protocol.SendMessageRequestHeader, msg *store.Message) (int16, string) {
	for _, hook := range b.sendHooks {
		if code, remark := hook(c, h, msg); code != protocol.Success {
			return code, remark
		}
	}
	return protocol.Success, ""
}

// pushReply delivers a reply message to the requesting client
// (PUSH_REPLY_MESSAGE_TO_CLIENT, 326), found by the REPLY_TO_CLIENT
// property among the registered channels. Failures are logged: the reply
// is still stored, as Java does with storeReplyMessageEnable.
func (b *Broker) pushReply(c remoting.Conn, h *protocol.SendMessageRequestHeader, msg *store.Message) {
	target := msg.Property(propReplyToClient)
	conn, ok := b.clients.findChannelByClientID(target)
	if !ok {
		b.log.Info("reply message: requester not connected", zap.String("client", target), zap.String("topic", msg.Topic))
		return
	}
	ext := remoting.FieldsOf(
		"producerGroup", h.ProducerGroup,
		"topic", msg.Topic,
		"defaultTopic", h.DefaultTopic,
		"defaultTopicQueueNums", strconv.Itoa(int(h.DefaultTopicQueueNums)),
		"queueId", strconv.Itoa(int(msg.QueueID)),
		"sysFlag", strconv.Itoa(int(msg.SysFlag)),
		"bornTimestamp", strconv.FormatInt(msg.BornTimestamp, 10),
		"flag", strconv.Itoa(int(msg.Flag)),
		"properties", string(msg.Properties),
		"reconsumeTimes", strconv.Itoa(int(msg.ReconsumeTimes)),
		"unitMode", strconv.FormatBool(h.UnitMode),
		"bornHost", c.RemoteAddr(),
		"storeHost", b.storeHost,
		"storeTimestamp", strconv.FormatInt(time.Now().UnixMilli(), 10),
	)
	req := b.newRequest(protocol.PushReplyMessageToClient, ext, msg.Body)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := conn.Invoke(ctx, req, 3*time.Second)
	if err != nil || resp.Code != protocol.Success {
		b.log.Info("push reply message failed", zap.String("client", target), zap.Error(err))
	}
}

const propReplyToClient = "REPLY_TO_CLIENT"

// putContext bounds a put. In DLedger mode the store bounds the wait for
// the commit itself (ReplicationTimeout, below putTimeout), so the
// deadline context, its timer and its allocations are skipped there.
func (b *Broker) putContext() (context.Context, context.CancelFunc) {
	if b.store.Replicated() {
		return context.Background(), func() {}
	}
	return context.WithTimeout(context.Background(), b.putTimeout())
}

func (b *Broker) putTimeout() time.Duration {
	return time.Duration(b.config().SyncFlushTimeout)*time.Millisecond + 2*time.Second
}

const faqTopicNotExist = "See http://rocketmq.apache.org/docs/faq/ for further details."

var errNotMaster = errors.New("broker: not master")
