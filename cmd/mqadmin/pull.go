package main

// Pull-based commands: queryMsgByOffset, printMsg, consumeMessage. They
// pull with group TOOLS_CONSUMER (or -g) and the subscription in the
// request (sysFlag SUBSCRIPTION), as Java's DefaultMQPullConsumer does.

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rmqd/rmqd/metadata"
	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/store"
)

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
	_ = protocol.DecodeHeader(&resp.ExtFields, &rh)
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
		javaMap(m.Properties.Map()), strings.Join(body, ", "), orNull(m.Property(store.PropertyTransactionID)))
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
				if res.next <= off && res.status != "NO_NEW_MSG" && res.status != "OFFSET_ILLEGAL" {
					return fmt.Errorf("%s: the broker answered %s without moving past offset %d", mq, res.status, off)
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
				if res.next <= off && res.status != "NO_NEW_MSG" && res.status != "OFFSET_ILLEGAL" {
					return fmt.Errorf("%s: the broker answered %s without moving past offset %d", mq, res.status, off)
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
