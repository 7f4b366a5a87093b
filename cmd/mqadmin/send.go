package main

// sendMessage and the send path queryMsgById -s (resend) shares with it.

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/store"
)

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

// defaultTopicQueueNums is DefaultMQProducer's: queues of an auto-created topic.
const defaultTopicQueueNums = 4

// send is DefaultMQProducer.send with SEND_MESSAGE: the topic's route (or
// TBW102's, for auto-creation, when the topic has none), a random writable
// queue of a master unless target is given, up to 3 attempts on other
// queues. props must carry UNIQ_KEY.
func (a *admin) send(topic string, body []byte, props map[string]string, flag int32, target *messageQueue) (*sendOutcome, error) {
	r, err := a.route(topic)
	if errors.Is(err, errNoRoute) {
		r, err = a.route(protocol.AutoCreateTopicKey)
		if err == nil {
			// As DefaultMQProducer does: the broker creates the topic with
			// at most the producer's defaultTopicQueueNums queues, so pick
			// only among those, or the send is refused as an illegal queue.
			for i := range r.QueueDatas {
				r.QueueDatas[i].ReadQueueNums = min(r.QueueDatas[i].ReadQueueNums, defaultTopicQueueNums)
				r.QueueDatas[i].WriteQueueNums = min(r.QueueDatas[i].WriteQueueNums, defaultTopicQueueNums)
			}
		}
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
			ProducerGroup: group, Topic: topic, DefaultTopic: protocol.AutoCreateTopicKey, DefaultTopicQueueNums: defaultTopicQueueNums,
			QueueID: mq.QueueID, BornTimestamp: time.Now().UnixMilli(), Flag: flag, Properties: string(store.PropertiesFromMap(props)),
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
		_ = protocol.DecodeHeader(&resp.ExtFields, &rh)
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
