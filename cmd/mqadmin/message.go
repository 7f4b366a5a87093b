package main

// Message commands: queryMsgById, queryMsgByKey, queryMsgByUniqueKey,
// queryMsgByOffset, printMsg, sendMessage, consumeMessage. Messages are
// decoded with store.DecodeMessages; pulls use group TOOLS_CONSUMER and
// the subscription in the request (sysFlag SUBSCRIPTION), as Java's
// DefaultMQPullConsumer does.

import (
	"bytes"
	"compress/zlib"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rmqd/rmqd/metadata"
	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/store"
)

func init() {
	register(&command{name: "queryMsgById", desc: "Query Message by Id.", setup: setupQueryMsgByID})
	register(&command{name: "queryMsgByKey", desc: "Query Message by Key.", setup: setupQueryMsgByKey})
	register(&command{name: "queryMsgByUniqueKey", desc: "Query Message by Unique key.", setup: setupQueryMsgByUniqueKey})
	register(&command{name: "queryMsgByOffset", desc: "Query Message by offset.", setup: setupQueryMsgByOffset})
	register(&command{name: "printMsg", desc: "Print Message Detail.", setup: setupPrintMsg})
	register(&command{name: "sendMessage", desc: "Send a message.", setup: setupSendMessage})
	register(&command{name: "consumeMessage", desc: "Consume message.", setup: setupConsumeMessage})
}

// errNoMessage is Java's NO_MESSAGE outcome of a query.
var errNoMessage = errors.New("no message")

// clientMsgID is MessageClientExt.getMsgId: the UNIQ_KEY when the producer
// set one, else the offset message id.
func clientMsgID(m *store.MessageExt) string {
	if k := m.UniqKey(); k != "" {
		return k
	}
	return m.MsgID
}

func orNull(s string) string {
	if s == "" {
		return "null"
	}
	return s
}

// plainBody returns the body, inflated when the compressed sysflag is set.
func plainBody(m *store.MessageExt) []byte {
	if m.SysFlag&store.CompressedFlag == 0 {
		return m.Body
	}
	r, err := zlib.NewReader(bytes.NewReader(m.Body))
	if err != nil {
		return m.Body
	}
	defer r.Close()
	out, err := io.ReadAll(io.LimitReader(r, 64<<20))
	if err != nil {
		return m.Body
	}
	return out
}

// writeBodyFile stores the body under /tmp/rocketmq/msgbodys as Java does.
func writeBodyFile(m *store.MessageExt, index int) string {
	dir := filepath.Join(os.TempDir(), "rocketmq", "msgbodys")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return ""
	}
	name := clientMsgID(m)
	if index > 0 {
		name += "_" + strconv.Itoa(index)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, plainBody(m), 0o644); err != nil {
		return ""
	}
	return path
}

// printMsgDetail is QueryMsgByIdSubCommand.printMsg (withOffsetID) and
// QueryMsgByUniqueKeySubCommand.showMessage (without).
func printMsgDetail(e *env, adm *admin, m *store.MessageExt, withOffsetID, withBody bool, index int) {
	path := writeBodyFile(m, index)
	if withOffsetID {
		e.printf("%-20s %s\n", "OffsetID:", m.MsgID)
	}
	e.printf("%-20s %s\n", "Topic:", m.Topic)
	e.printf("%-20s %s\n", "Tags:", "["+orNull(m.Tags())+"]")
	e.printf("%-20s %s\n", "Keys:", "["+orNull(m.Property(store.PropertyKeys))+"]")
	e.printf("%-20s %d\n", "Queue ID:", m.QueueID)
	e.printf("%-20s %d\n", "Queue Offset:", m.QueueOffset)
	e.printf("%-20s %d\n", "CommitLog Offset:", m.CommitLogOffset)
	e.printf("%-20s %d\n", "Reconsume Times:", m.ReconsumeTimes)
	e.printf("%-20s %s\n", "Born Timestamp:", humanTime2(m.BornTimestamp))
	e.printf("%-20s %s\n", "Store Timestamp:", humanTime2(m.StoreTimestamp))
	e.printf("%-20s %s\n", "Born Host:", m.BornHost)
	e.printf("%-20s %s\n", "Store Host:", m.StoreHost)
	e.printf("%-20s %d\n", "System Flag:", m.SysFlag)
	e.printf("%-20s %s\n", "Properties:", javaMap(m.Properties))
	e.printf("%-20s %s\n", "Message Body Path:", path)
	if withBody {
		e.printf("%-20s %s\n", "Message Body:", plainBody(m))
	}
	tracks, err := adm.messageTrack(m)
	if err != nil {
		e.warnf("message track: %v", err)
		return
	}
	if len(tracks) == 0 {
		e.printf("\n\nWARN: No Consumer\n")
		return
	}
	e.printf("\n\n")
	for _, t := range tracks {
		e.printf("%s\n", t)
	}
}

// messageTrack is DefaultMQAdminExt.messageTrackDetail: for every group
// consuming the topic, whether it consumed the message.
func (a *admin) messageTrack(m *store.MessageExt) ([]string, error) {
	groups, err := a.consumeByWho(m.Topic, nil)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, g := range groups {
		track, desc := "UNKNOWN", "null"
		cc, err := a.consumerConnectionOf(g, "")
		switch {
		case err != nil:
			if c := codeOf(err); c >= 0 {
				if c == protocol.ConsumerNotOnline {
					track = "NOT_ONLINE"
				}
				var re *respError
				errors.As(err, &re)
				desc = fmt.Sprintf("CODE:%d DESC:%s", c, re.remark)
			} else {
				desc = err.Error()
			}
		case cc.ConsumeType == "CONSUME_ACTIVELY":
			track = "PULL"
		case cc.MessageModel == "BROADCASTING":
			track = "CONSUME_BROADCASTING"
		default:
			consumed, err := a.consumed(m, g)
			switch {
			case err != nil:
				desc = err.Error()
			case consumed:
				track = "CONSUMED"
				if sd, ok := cc.SubscriptionTable[m.Topic]; ok && len(sd.TagsSet) > 0 {
					match := false
					for _, tag := range sd.TagsSet {
						if tag == "*" || tag == m.Tags() {
							match = true
						}
					}
					if !match {
						track = "CONSUMED_BUT_FILTERED"
					}
				}
			default:
				track = "NOT_CONSUME_YET"
			}
		}
		out = append(out, fmt.Sprintf("MessageTrack [consumerGroup=%s, trackType=%s, exceptionDesc=%s]", g, track, desc))
	}
	return out, nil
}

// consumed reports whether group's offset of the message's queue is past it.
func (a *admin) consumed(m *store.MessageExt, group string) (bool, error) {
	cs, err := a.examineConsumeStats(group, "")
	if err != nil {
		return false, err
	}
	for k, w := range cs.OffsetTable {
		mq, err := mqKey(k)
		if err != nil {
			return false, err
		}
		if mq.Topic == m.Topic && mq.QueueID == m.QueueID && w.ConsumerOffset > m.QueueOffset {
			return true, nil
		}
	}
	return false, nil
}

// viewMessage is VIEW_MESSAGE_BY_ID to the store host of an offset id.
func (a *admin) viewMessage(topic, msgID string) (*store.MessageExt, error) {
	host, offset, err := store.DecodeMessageID(msgID)
	if err != nil {
		return nil, err
	}
	_, port, err := net.SplitHostPort(host)
	if p, perr := strconv.Atoi(port); err != nil || perr != nil || p <= 0 || p > 65535 {
		return nil, fmt.Errorf("%s is not an offset message id", msgID)
	}
	resp, err := a.call(host, protocol.ViewMessageByID, protocol.EncodeHeader(&protocol.ViewMessageRequestHeader{Offset: offset, Topic: topic}), nil)
	if err != nil {
		return nil, err
	}
	m, err := store.DecodeMessage(resp.Body, true)
	if err != nil {
		return nil, fmt.Errorf("bad message from %s: %v", host, err)
	}
	return m, nil
}

// queryMessage is MQAdminImpl.queryMessage: QUERY_MESSAGE to every broker
// group of the topic, keeping the messages whose key (or UNIQ_KEY) matches.
func (a *admin) queryMessage(topic, key string, maxNum int32, begin, end int64, uniq bool) ([]*store.MessageExt, error) {
	r, err := a.route(topic)
	if err != nil {
		return nil, err
	}
	var out []*store.MessageExt
	for _, ref := range routeAddrs(r, "") {
		h := protocol.QueryMessageRequestHeader{Topic: topic, Key: key, MaxNum: maxNum, BeginTimestamp: begin, EndTimestamp: end, UniqueKeyQuery: uniq}
		resp, err := a.invoke(ref.addr, protocol.QueryMessage, protocol.EncodeHeader(&h), nil)
		if err != nil {
			return nil, err
		}
		if resp.Code == protocol.QueryNotFound {
			continue
		}
		if resp.Code != protocol.Success {
			return nil, &respError{addr: ref.addr, reqCode: protocol.QueryMessage, code: resp.Code, remark: resp.Remark}
		}
		msgs, err := store.DecodeMessages(resp.Body, true)
		if err != nil {
			return nil, fmt.Errorf("bad query answer from %s: %v", ref.addr, err)
		}
		for _, m := range msgs {
			if uniq {
				if clientMsgID(m) == key {
					out = append(out, m)
				}
				continue
			}
			for _, k := range m.Keys() {
				if k == key && m.Topic == topic {
					out = append(out, m)
					break
				}
			}
		}
	}
	if len(out) == 0 {
		what := "key"
		if uniq {
			what = "unique key"
		}
		return nil, fmt.Errorf("query message by %s %q in topic %s finished, but %w (CODE: 208)", what, key, topic, errNoMessage)
	}
	return out, nil
}

func setupQueryMsgByID(f *flagSet) func(*env) error {
	t := f.required("t", "topic", "topic name")
	i := f.required("i", "msgId", "Message Id")
	g := f.arg("g", "consumerGroup", "consumer group name")
	d := f.arg("d", "clientId", "The consumer's client id")
	s := f.arg("s", "sendMessage", "resend message")
	f.arg("u", "unitName", "unit name")
	bodyFormat := f.arg("f", "bodyFormat", "print message body by the specified format")
	f.arg("c", "cluster", "Cluster name or lmq parent topic, lmq is used to find the route.")
	return func(e *env) error {
		adm, err := e.admin()
		if err != nil {
			return err
		}
		topic := t.str()
		for _, id := range strings.Split(i.str(), ",") {
			if id = strings.TrimSpace(id); id == "" {
				continue
			}
			m, err := adm.findMessage(topic, id)
			if err != nil {
				return err
			}
			switch {
			case g.has() && d.has():
				res, err := adm.consumeDirectly(g.str(), d.str(), m)
				if err != nil {
					return err
				}
				e.printf("%s\n", res)
			case s.has():
				if !parseBool(s.str()) {
					continue
				}
				e.printf("prepare resend msg. originalMsgId=%s", id)
				res, err := adm.resend(m)
				if err != nil {
					e.printf("\n")
					return err
				}
				e.printf("%s\n", res)
			default:
				printMsgDetail(e, adm, m, true, bodyFormat.has(), 0)
			}
		}
		return nil
	}
}

const maxLong = math.MaxInt64

func setupQueryMsgByKey(f *flagSet) func(*env) error {
	t := f.required("t", "topic", "Topic name")
	k := f.required("k", "msgKey", "Message Key")
	b := f.arg("b", "beginTimestamp", "Begin timestamp(ms). default:0, eg:1676730526212")
	en := f.arg("e", "endTimestamp", "End timestamp(ms). default:Long.MAX_VALUE, eg:1676730526212")
	m := f.arg("m", "maxNum", "The maximum number of messages returned by the query, default:64")
	f.arg("c", "cluster", "Cluster name or lmq parent topic, lmq is used to find the route.")
	return func(e *env) error {
		begin, end, maxNum := int64(0), int64(maxLong), int64(64)
		var err error
		for _, x := range []struct {
			o   *option
			dst *int64
		}{{b, &begin}, {en, &end}, {m, &maxNum}} {
			if x.o.has() {
				if *x.dst, err = parseIntOpt(x.o); err != nil {
					return err
				}
			}
		}
		adm, err := e.admin()
		if err != nil {
			return err
		}
		msgs, err := adm.queryMessage(t.str(), k.str(), int32(maxNum), begin, end, false)
		if err != nil {
			return err
		}
		e.printf("%-50s %4s %40s\n", "#Message ID", "#QID", "#Offset")
		for _, msg := range msgs {
			e.printf("%-50s %4d %40d\n", clientMsgID(msg), msg.QueueID, msg.QueueOffset)
		}
		return nil
	}
}

func setupQueryMsgByUniqueKey(f *flagSet) func(*env) error {
	i := f.required("i", "msgId", "Message Id")
	g := f.arg("g", "consumerGroup", "consumer group name")
	d := f.arg("d", "clientId", "The consumer's client id")
	t := f.required("t", "topic", "The topic of msg")
	all := f.flag("a", "showAll", "Print all message, the limit is 32")
	f.arg("c", "cluster", "Cluster name or lmq parent topic, lmq is used to find the route.")
	return func(e *env) error {
		adm, err := e.admin()
		if err != nil {
			return err
		}
		msgs, err := adm.queryMessage(t.str(), i.str(), 32, 0, maxLong, true)
		if err != nil {
			return err
		}
		sort.SliceStable(msgs, func(a, b int) bool { return msgs[a].StoreTimestamp < msgs[b].StoreTimestamp })
		if g.has() && d.has() {
			res, err := adm.consumeDirectly(g.str(), d.str(), msgs[0])
			if err != nil {
				return err
			}
			e.printf("%s\n", res)
			return nil
		}
		n := 1
		if all.has() {
			n = len(msgs)
		}
		for idx := 0; idx < n; idx++ {
			printMsgDetail(e, adm, msgs[idx], false, false, idx)
		}
		return nil
	}
}

// pullResult is one PULL_MESSAGE outcome.
type pullResult struct {
	status string // FOUND, NO_NEW_MSG, NO_MATCHED_MSG, OFFSET_ILLEGAL
	next   int64
	msgs   []*store.MessageExt
}

// pull is DefaultMQPullConsumer.pull (non-blocking) against one broker.
func (a *admin) pull(addr, group string, mq messageQueue, subExpression string, offset int64, maxNums int32) (*pullResult, error) {
	h := protocol.PullMessageRequestHeader{
		ConsumerGroup: group, Topic: mq.Topic, QueueID: mq.QueueID, QueueOffset: offset, MaxMsgNums: maxNums,
		SysFlag: protocol.PullFlagSubscription, Subscription: subExpression, ExpressionType: "TAG", BrokerName: mq.BrokerName,
	}
	resp, err := a.invoke(addr, protocol.PullMessage, protocol.EncodeHeader(&h), nil)
	if err != nil {
		return nil, err
	}
	var rh protocol.PullMessageResponseHeader
	_ = protocol.DecodeHeader(resp.ExtFields, &rh)
	res := &pullResult{next: rh.NextBeginOffset}
	switch resp.Code {
	case protocol.Success:
		res.status = "FOUND"
		msgs, err := store.DecodeMessages(resp.Body, true)
		if err != nil {
			return nil, fmt.Errorf("bad pull answer from %s: %v", addr, err)
		}
		res.msgs = msgs
	case protocol.PullNotFound:
		res.status = "NO_NEW_MSG"
	case protocol.PullRetryImmediately:
		res.status = "NO_MATCHED_MSG"
	case protocol.PullOffsetMoved:
		res.status = "OFFSET_ILLEGAL"
	default:
		return nil, &respError{addr: addr, reqCode: protocol.PullMessage, code: resp.Code, remark: resp.Remark}
	}
	return res, nil
}

func setupQueryMsgByOffset(f *flagSet) func(*env) error {
	t := f.required("t", "topic", "topic name")
	b := f.required("b", "brokerName", "Broker Name")
	i := f.required("i", "queueId", "Queue Id")
	o := f.required("o", "offset", "Queue Offset")
	bodyFormat := f.arg("f", "bodyFormat", "print message body by the specified format")
	return func(e *env) error {
		qid, err := parseIntOpt(i)
		if err != nil {
			return err
		}
		off, err := parseIntOpt(o)
		if err != nil {
			return err
		}
		adm, err := e.admin()
		if err != nil {
			return err
		}
		mq := messageQueue{Topic: t.str(), BrokerName: b.str(), QueueID: int32(qid)}
		addr, err := adm.queueAddr(mq)
		if err != nil {
			return err
		}
		res, err := adm.pull(addr, metadata.ToolsConsumerGroup, mq, "*", off, 1)
		if err != nil {
			return err
		}
		if res.status != "FOUND" || len(res.msgs) == 0 {
			return fmt.Errorf("no message at offset %d of %s (%s)", off, mq, res.status)
		}
		printMsgDetail(e, adm, res.msgs[0], true, bodyFormat.has(), 0)
		return nil
	}
}

// queueAddr finds the broker address serving mq.
func (a *admin) queueAddr(mq messageQueue) (string, error) {
	r, err := a.route(mq.Topic)
	if err != nil {
		return "", err
	}
	addr := brokerAddrByName(r, mq.BrokerName)
	if addr == "" {
		return "", fmt.Errorf("broker %s not found in the route of topic %s", mq.BrokerName, mq.Topic)
	}
	return addr, nil
}

// subscribeQueues is fetchSubscribeMessageQueues: the readable queues of a
// topic with the address to pull them from, sorted.
func (a *admin) subscribeQueues(topic string) ([]messageQueue, map[string]string, error) {
	r, err := a.route(topic)
	if err != nil {
		return nil, nil, err
	}
	addrs := map[string]string{}
	var out []messageQueue
	for _, qd := range r.QueueDatas {
		if !protocol.IsReadable(qd.Perm) {
			continue
		}
		addr := brokerAddrByName(r, qd.BrokerName)
		if addr == "" {
			continue
		}
		addrs[qd.BrokerName] = addr
		for q := int32(0); q < qd.ReadQueueNums; q++ {
			out = append(out, messageQueue{Topic: topic, BrokerName: qd.BrokerName, QueueID: q})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].less(out[j]) })
	if len(out) == 0 {
		return nil, nil, fmt.Errorf("topic %s has no readable queue", topic)
	}
	return out, addrs, nil
}

// messageExtString is MessageExt.toString.
func messageExtString(m *store.MessageExt, brokerName string) string {
	body := make([]string, len(m.Body))
	for i, c := range m.Body {
		body[i] = strconv.Itoa(int(int8(c)))
	}
	return fmt.Sprintf("MessageExt [brokerName=%s, queueId=%d, storeSize=%d, queueOffset=%d, sysFlag=%d, bornTimestamp=%d, bornHost=/%s, "+
		"storeTimestamp=%d, storeHost=/%s, msgId=%s, commitLogOffset=%d, bodyCRC=%d, reconsumeTimes=%d, preparedTransactionOffset=%d, "+
		"toString()=Message{topic='%s', flag=%d, properties=%s, body=[%s], transactionId='%s'}]",
		brokerName, m.QueueID, m.StoreSize, m.QueueOffset, m.SysFlag, m.BornTimestamp, m.BornHost, m.StoreTimestamp, m.StoreHost,
		m.MsgID, m.CommitLogOffset, m.BodyCRC, m.ReconsumeTimes, m.PreparedTransactionOffset, m.Topic, m.Flag,
		javaMap(m.Properties), strings.Join(body, ", "), orNull(m.Property(store.PropertyTransactionID)))
}

func printMessages(e *env, msgs []*store.MessageExt, brokerName string, printBody bool) {
	for _, m := range msgs {
		body := "NOT PRINT BODY"
		if printBody {
			body = string(plainBody(m))
		}
		e.printf("MSGID: %s %s BODY: %s\n", clientMsgID(m), messageExtString(m, brokerName), body)
	}
}

func setupPrintMsg(f *flagSet) func(*env) error {
	t := f.required("t", "topic", "topic name")
	f.arg("c", "charsetName", "CharsetName(eg: UTF-8,GBK)")
	s := f.arg("s", "subExpression", "Subscribe Expression(eg: TagA || TagB)")
	b := f.arg("b", "beginTimestamp", "Begin timestamp[currentTimeMillis|yyyy-MM-dd#HH:mm:ss:SSS]")
	en := f.arg("e", "endTimestamp", "End timestamp[currentTimeMillis|yyyy-MM-dd#HH:mm:ss:SSS]")
	d := f.arg("d", "printBody", "print body")
	f.arg("l", "lmqParentTopic", "Lmq parent topic, lmq is used to find the route.")
	return func(e *env) error {
		sub := "*"
		if s.has() {
			sub = s.str()
		}
		printBody := !d.has() || parseBool(d.str())
		var begin, end int64 = -1, -1
		var err error
		if b.has() {
			if begin, err = parseTimestamp(b.str(), false); err != nil {
				return err
			}
		}
		if en.has() {
			if end, err = parseTimestamp(en.str(), false); err != nil {
				return err
			}
		}
		adm, err := e.admin()
		if err != nil {
			return err
		}
		mqs, addrs, err := adm.subscribeQueues(t.str())
		if err != nil {
			return err
		}
		for _, mq := range mqs {
			addr := addrs[mq.BrokerName]
			minOff, err := adm.minOffset(addr, mq.Topic, mq.QueueID)
			if err != nil {
				return err
			}
			maxOff, err := adm.offsetOf(addr, mq.Topic, mq.QueueID, -1)
			if err != nil {
				return err
			}
			if begin >= 0 {
				if minOff, err = adm.offsetOf(addr, mq.Topic, mq.QueueID, begin); err != nil {
					return err
				}
			}
			if end >= 0 {
				if maxOff, err = adm.offsetOf(addr, mq.Topic, mq.QueueID, end); err != nil {
					return err
				}
			}
			e.printf("minOffset=%d, maxOffset=%d, %s\n", minOff, maxOff, mq)
		readq:
			for off := minOff; off < maxOff; {
				res, err := adm.pull(addr, metadata.ToolsConsumerGroup, mq, sub, off, 32)
				if err != nil {
					return err
				}
				off = res.next
				switch res.status {
				case "FOUND":
					printMessages(e, res.msgs, mq.BrokerName, printBody)
				case "NO_MATCHED_MSG":
					e.printf("%s no matched msg. status=%s, offset=%d\n", mq, res.status, off)
				default:
					e.printf("%s print msg finished. status=%s, offset=%d\n", mq, res.status, off)
					break readq
				}
			}
			e.printf("--------------------------------------------------------\n")
		}
		return nil
	}
}

func setupConsumeMessage(f *flagSet) func(*env) error {
	t := f.required("t", "topic", "Topic name")
	b := f.arg("b", "brokerName", "Broker name")
	i := f.arg("i", "queueId", "Queue Id")
	o := f.arg("o", "offset", "Queue offset")
	g := f.arg("g", "consumerGroup", "Consumer group name")
	s := f.arg("s", "beginTimestamp", "Begin timestamp[currentTimeMillis|yyyy-MM-dd#HH:mm:ss:SSS]")
	en := f.arg("e", "endTimestamp", "End timestamp[currentTimeMillis|yyyy-MM-dd#HH:mm:ss:SSS]")
	c := f.arg("c", "MessageNumber", "Number of message to be consumed")
	return func(e *env) error {
		group := metadata.ToolsConsumerGroup
		if g.has() {
			group = g.str()
		}
		count := int64(128)
		var err error
		if c.has() {
			if count, err = parseIntOpt(c); err != nil {
				return err
			}
			if count <= 0 {
				return usagef("Please input a positive messageNumber!")
			}
		}
		if i.has() && !b.has() {
			return usagef("Please set the brokerName before queueId!")
		}
		if o.has() && !i.has() {
			return usagef("Please set queueId before offset!")
		}
		now := time.Now().UnixMilli()
		var begin, end int64
		if s.has() {
			if begin, err = parseTimestamp(s.str(), false); err != nil {
				return err
			}
			if begin > now {
				return usagef("Please set the beginTimestamp before now!")
			}
		}
		if en.has() {
			if end, err = parseTimestamp(en.str(), false); err != nil {
				return err
			}
			if end > now {
				return usagef("Please set the endTimestamp before now!")
			}
			if begin > end {
				return usagef("Please make sure that the beginTimestamp is less than or equal to the endTimestamp")
			}
		}
		adm, err := e.admin()
		if err != nil {
			return err
		}
		topic := t.str()
		bounds := func(addr string, mq messageQueue) (int64, int64, error) {
			minOff, err := adm.minOffset(addr, topic, mq.QueueID)
			if err != nil {
				return 0, 0, err
			}
			maxOff, err := adm.offsetOf(addr, topic, mq.QueueID, -1)
			if err != nil {
				return 0, 0, err
			}
			if begin > 0 {
				if minOff, err = adm.offsetOf(addr, topic, mq.QueueID, begin); err != nil {
					return 0, 0, err
				}
			}
			if end > 0 {
				if maxOff, err = adm.offsetOf(addr, topic, mq.QueueID, end); err != nil {
					return 0, 0, err
				}
			}
			return minOff, maxOff, nil
		}
		consumeQueue := func(addr string, mq messageQueue, minOff, maxOff int64) error {
			for off := minOff; off <= maxOff; {
				n := maxOff - off + 1
				if n > 32 {
					n = 32
				}
				res, err := adm.pull(addr, group, mq, "*", off, int32(n))
				if err != nil {
					return err
				}
				off = res.next
				switch res.status {
				case "FOUND":
					e.printf("Consume ok\n")
					printMessages(e, res.msgs, mq.BrokerName, true)
				case "NO_MATCHED_MSG":
					e.printf("%s no matched msg. status=%s, offset=%d\n", mq, res.status, off)
				default:
					e.printf("%s print msg finished. status=%s, offset=%d\n", mq, res.status, off)
					return nil
				}
			}
			return nil
		}
		if !i.has() {
			mqs, addrs, err := adm.subscribeQueues(topic)
			if err != nil {
				return err
			}
			left := count
			for _, mq := range mqs {
				if left <= 0 {
					return nil
				}
				addr := addrs[mq.BrokerName]
				minOff, maxOff, err := bounds(addr, mq)
				if err != nil {
					return err
				}
				if maxOff-minOff > left {
					e.printf("The older %d message of the %d queue will be provided\n", left, mq.QueueID)
					maxOff = minOff + left - 1
					left = 0
				} else {
					left = left - (maxOff - minOff) - 1
				}
				if err := consumeQueue(addr, mq, minOff, maxOff); err != nil {
					return err
				}
			}
			return nil
		}
		qid, err := parseIntOpt(i)
		if err != nil {
			return err
		}
		var offset int64
		if o.has() {
			if offset, err = parseIntOpt(o); err != nil {
				return err
			}
		}
		mq := messageQueue{Topic: topic, BrokerName: b.str(), QueueID: int32(qid)}
		addr, err := adm.queueAddr(mq)
		if err != nil {
			return err
		}
		minOff, maxOff, err := bounds(addr, mq)
		if err != nil {
			return err
		}
		if offset > maxOff {
			e.printf("%s no matched msg, offset=%d\n", mq, offset)
			return nil
		}
		if offset > minOff {
			minOff = offset
		}
		if maxOff-minOff > count {
			e.printf("The oldler %d message will be provided\n", count)
			maxOff = minOff + count - 1
		}
		return consumeQueue(addr, mq, minOff, maxOff)
	}
}

// uniqIDGen makes UNIQ_KEY values as Java's MessageClientIDSetter does:
// IP (4) + pid (2) + random class-loader hash (4), then milliseconds since
// the start of the month (4) + a counter (2), upper-case hex.
type uniqIDGen struct {
	prefix  string
	counter atomic.Uint32
}

func newUniqIDGen() *uniqIDGen {
	var b [10]byte
	copy(b[:4], localIPv4())
	binary.BigEndian.PutUint16(b[4:6], uint16(os.Getpid()))
	_, _ = rand.Read(b[6:10])
	return &uniqIDGen{prefix: strings.ToUpper(hex.EncodeToString(b[:]))}
}

func (g *uniqIDGen) next() string {
	now := time.Now()
	monthStart := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, now.Location())
	var b [6]byte
	binary.BigEndian.PutUint32(b[:4], uint32(now.Sub(monthStart).Milliseconds()))
	binary.BigEndian.PutUint16(b[4:], uint16(g.counter.Add(1)))
	return g.prefix + strings.ToUpper(hex.EncodeToString(b[:]))
}

func localIPv4() net.IP {
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() {
				if ip4 := ipn.IP.To4(); ip4 != nil {
					return ip4
				}
			}
		}
	}
	return net.IPv4(127, 0, 0, 1).To4()
}

// publishQueues lists the writable queues of masters in a route.
func publishQueues(r *protocol.TopicRouteData, topic string) ([]messageQueue, map[string]string) {
	addrs := map[string]string{}
	var out []messageQueue
	for _, qd := range r.QueueDatas {
		if !protocol.IsWriteable(qd.Perm) {
			continue
		}
		master := ""
		for _, bd := range r.BrokerDatas {
			if bd.BrokerName == qd.BrokerName {
				master = bd.BrokerAddrs[protocol.MasterID]
			}
		}
		if master == "" {
			continue
		}
		addrs[qd.BrokerName] = master
		for q := int32(0); q < qd.WriteQueueNums; q++ {
			out = append(out, messageQueue{Topic: topic, BrokerName: qd.BrokerName, QueueID: q})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].less(out[j]) })
	return out, addrs
}

var sendStatus = map[int16]string{
	protocol.Success:           "SEND_OK",
	protocol.FlushDiskTimeout:  "FLUSH_DISK_TIMEOUT",
	protocol.FlushSlaveTimeout: "FLUSH_SLAVE_TIMEOUT",
	protocol.SlaveNotAvailable: "SLAVE_NOT_AVAILABLE",
}

// sendOutcome is what a successful send reports (SendResult).
type sendOutcome struct {
	status      string
	msgID       string // UNIQ_KEY
	offsetMsgID string
	mq          messageQueue
	queueOffset int64
}

// String is SendResult.toString.
func (o *sendOutcome) String() string {
	return fmt.Sprintf("SendResult [sendStatus=%s, msgId=%s, offsetMsgId=%s, messageQueue=%s, queueOffset=%d, recallHandle=null]",
		o.status, o.msgID, o.offsetMsgID, o.mq, o.queueOffset)
}

// send is DefaultMQProducer.send with SEND_MESSAGE: the topic's route (or
// TBW102's, for auto-creation, when the topic has none), a random writable
// queue of a master unless target is given, up to 3 attempts on other
// queues. props must carry UNIQ_KEY.
func (a *admin) send(topic string, body []byte, props map[string]string, flag int32, target *messageQueue) (*sendOutcome, error) {
	r, err := a.route(topic)
	if errors.Is(err, errNoRoute) {
		r, err = a.route(protocol.AutoCreateTopicKey)
	}
	if err != nil {
		return nil, err
	}
	mqs, addrs := publishQueues(r, topic)
	if len(mqs) == 0 {
		return nil, fmt.Errorf("no writable queue of a master for topic %s", topic)
	}
	if target != nil {
		if _, ok := addrs[target.BrokerName]; !ok {
			return nil, fmt.Errorf("broker %s has no writable queue of topic %s", target.BrokerName, topic)
		}
		mqs = []messageQueue{*target}
	}
	group := strconv.FormatInt(time.Now().UnixMilli(), 10)
	start := mrand.IntN(len(mqs))
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		mq := mqs[(start+attempt)%len(mqs)]
		h := protocol.SendMessageRequestHeader{
			ProducerGroup: group, Topic: topic, DefaultTopic: protocol.AutoCreateTopicKey, DefaultTopicQueueNums: 4,
			QueueID: mq.QueueID, BornTimestamp: time.Now().UnixMilli(), Flag: flag, Properties: store.PropertiesToString(props),
			BrokerName: mq.BrokerName,
		}
		resp, err := a.invoke(addrs[mq.BrokerName], protocol.SendMessage, protocol.EncodeHeader(&h), body)
		if err != nil {
			lastErr = err
			continue
		}
		status, ok := sendStatus[resp.Code]
		if !ok {
			lastErr = &respError{addr: addrs[mq.BrokerName], reqCode: protocol.SendMessage, code: resp.Code, remark: resp.Remark}
			if resp.Code == protocol.MessageIllegal || resp.Code == protocol.InvalidParameter {
				break
			}
			continue
		}
		var rh protocol.SendMessageResponseHeader
		_ = protocol.DecodeHeader(resp.ExtFields, &rh)
		mq.QueueID = rh.QueueID
		return &sendOutcome{status: status, msgID: props[store.PropertyUniqClientMessageIDKey], offsetMsgID: rh.MsgID, mq: mq, queueOffset: rh.QueueOffset}, nil
	}
	return nil, lastErr
}

func setupSendMessage(f *flagSet) func(*env) error {
	t := f.required("t", "topic", "Topic name")
	p := f.required("p", "body", "UTF-8 string format of the message body")
	k := f.arg("k", "key", "Message keys")
	c := f.arg("c", "tags", "Message tags")
	b := f.arg("b", "broker", "Send message to target broker")
	i := f.arg("i", "qid", "Send message to target queue")
	f.arg("m", "msgTraceEnable", "Message Trace Enable, Default: false")
	return func(e *env) error {
		if i.has() && !b.has() {
			return usagef("Broker name must be set if the queue is chosen!")
		}
		var target *messageQueue
		if i.has() {
			qid, err := parseIntOpt(i)
			if err != nil {
				return err
			}
			if qid >= 0 {
				target = &messageQueue{Topic: t.str(), BrokerName: b.str(), QueueID: int32(qid)}
			}
		}
		adm, err := e.admin()
		if err != nil {
			return err
		}
		props := map[string]string{store.PropertyWaitStoreMsgOK: "true", store.PropertyUniqClientMessageIDKey: newUniqIDGen().next()}
		if k.has() && k.str() != "" {
			props[store.PropertyKeys] = k.str()
		}
		if c.has() && c.str() != "" {
			props[store.PropertyTags] = c.str()
		}
		res, err := adm.send(t.str(), []byte(p.str()), props, 0, target)
		if err != nil {
			return err
		}
		e.printf("%-32s  %-4s  %-20s    %s\n", "#Broker Name", "#QID", "#Send Result", "#MsgId")
		e.printf("%-32s  %-4s  %-20s    %s\n", res.mq.BrokerName, strconv.Itoa(int(res.mq.QueueID)), res.status, res.msgID)
		return nil
	}
}

// findMessage is DefaultMQAdminExt.queryMessage(cluster, topic, msgId):
// VIEW_MESSAGE_BY_ID when the id decodes as an offset id, else (or when
// that fails) QUERY_MESSAGE by unique key.
func (a *admin) findMessage(topic, id string) (*store.MessageExt, error) {
	m, verr := a.viewMessage(topic, id)
	if verr == nil {
		return m, nil
	}
	msgs, qerr := a.queryMessage(topic, id, 32, 0, maxLong, true)
	if qerr != nil {
		if errors.Is(qerr, errNoMessage) {
			return nil, fmt.Errorf("message %s not found in topic %s (by offset id: %v; by unique key: %v)", id, topic, verr, qerr)
		}
		return nil, qerr
	}
	return msgs[0], nil
}

// consumeResultNames are Java's CMResult names, indexed by the Go client's
// numeric ConsumeResult.
var consumeResultNames = []string{"CR_SUCCESS", "CR_LATER", "CR_ROLLBACK", "CR_COMMIT", "CR_THROW_EXCEPTION", "CR_RETURN_NULL"}

// consumeDirectly is DefaultMQAdminExt.consumeMessageDirectly after the
// push-consumer check (GET_CONSUMER_RUNNING_INFO): CONSUME_MESSAGE_DIRECTLY
// to the message's broker, which relays it to the client. The stored
// message travels in the body. It returns ConsumeMessageDirectlyResult's
// toString.
func (a *admin) consumeDirectly(group, clientID string, m *store.MessageExt) (string, error) {
	r, err := a.groupRoute(group)
	if err != nil {
		return "", err
	}
	refs := routeAddrs(r, "")
	if len(refs) == 0 {
		return "", fmt.Errorf("consumer group %s: no broker in the route of its retry topic", group)
	}
	resp, err := a.call(refs[0].addr, protocol.GetConsumerRunningInfo,
		map[string]string{"consumerGroup": group, "clientId": clientID, "jstackEnable": "false"}, nil)
	if err != nil {
		return "", fmt.Errorf("get consumer runtime info for %s client failed: %w", clientID, err)
	}
	var info struct {
		Properties map[string]any `json:"properties"`
	}
	if err := decodeBody(resp.Body, &info); err == nil {
		if ct, ok := info.Properties["PROP_CONSUME_TYPE"]; ok && fmt.Sprint(ct) != "CONSUME_PASSIVELY" {
			return "", fmt.Errorf("this %s client is not push consumer, not support direct push", clientID)
		}
	}
	body, err := store.EncodeStored(nil, &m.Message, m.QueueOffset, m.CommitLogOffset, m.StoreTimestamp)
	if err != nil {
		return "", err
	}
	brokerName, _ := a.brokerNameByAddr(m.StoreHost)
	ext := map[string]string{"consumerGroup": group, "clientId": clientID, "msgId": m.MsgID, "topic": m.Topic, "brokerName": brokerName}
	resp, err = a.call(m.StoreHost, protocol.ConsumeMessageDirectly, ext, body)
	if err != nil {
		return "", err
	}
	var res struct {
		Order          bool   `json:"order"`
		AutoCommit     bool   `json:"autoCommit"`
		ConsumeResult  any    `json:"consumeResult"`
		Remark         string `json:"remark"`
		SpentTimeMills int64  `json:"spentTimeMills"`
	}
	if err := decodeBody(resp.Body, &res); err != nil {
		return "", fmt.Errorf("bad consume-directly answer: %v", err)
	}
	result := fmt.Sprint(res.ConsumeResult)
	if n, ok := res.ConsumeResult.(float64); ok && int(n) >= 0 && int(n) < len(consumeResultNames) {
		result = consumeResultNames[int(n)]
	}
	remark := res.Remark
	if remark == "" {
		remark = "null"
	}
	return fmt.Sprintf("ConsumeMessageDirectlyResult [order=%t, autoCommit=%t, consumeResult=%s, remark=%s, spentTimeMills=%d]",
		res.Order, res.AutoCommit, result, remark, res.SpentTimeMills), nil
}

// resend is QueryMsgByIdSubCommand.sendMsg: the message sent again to its
// topic with its properties (UNIQ_KEY kept).
func (a *admin) resend(m *store.MessageExt) (*sendOutcome, error) {
	props := map[string]string{}
	for k, v := range m.Properties {
		props[k] = v
	}
	for _, k := range []string{store.PropertyMinOffset, store.PropertyMaxOffset, store.PropertyCluster} {
		delete(props, k)
	}
	if props[store.PropertyUniqClientMessageIDKey] == "" {
		props[store.PropertyUniqClientMessageIDKey] = newUniqIDGen().next()
	}
	return a.send(m.Topic, plainBody(m), props, m.Flag, nil)
}
