package main

// Message commands: queryMsgById, queryMsgByKey, queryMsgByUniqueKey (and
// the registration of the pull and send commands in pull.go and send.go).
// Messages are decoded with store.DecodeMessage(s); the message detail and
// the MessageTrack lines follow QueryMsgByIdSubCommand.

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
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
	e.printf("%-20s %s\n", "Properties:", javaMap(m.Properties.Map()))
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
		remoting.FieldsOf("consumerGroup", group, "clientId", clientID, "jstackEnable", "false"), nil)
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
	ext := remoting.FieldsOf("consumerGroup", group, "clientId", clientID, "msgId", m.MsgID, "topic", m.Topic, "brokerName", brokerName)
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
	for k, v := range m.Properties.All() {
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
