package main

// Consumer-group commands: consumerProgress, consumerConnection,
// updateSubGroup, deleteSubGroup, resetOffsetByTime, brokerConsumeStats.

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rmqd/rmqd/metadata"
	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
)

func init() {
	register(&command{name: "consumerProgress", desc: "Query consumer's progress, speed.", setup: setupConsumerProgress})
	register(&command{name: "consumerConnection", desc: "Query consumer's socket connection, client version and subscription.", setup: setupConsumerConnection})
	register(&command{name: "updateSubGroup", desc: "Update or create subscription group.", setup: setupUpdateSubGroup})
	register(&command{name: "deleteSubGroup", desc: "Delete subscription group from broker.", setup: setupDeleteSubGroup})
	register(&command{name: "resetOffsetByTime", desc: "Reset consumer offset by timestamp(without client restart).", setup: setupResetOffsetByTime})
	register(&command{name: "brokerConsumeStats", desc: "Fetch broker consume stats data.", setup: setupBrokerConsumeStats})
}

// groupRoute is the route of a group's retry topic, the way Java admin
// tools find the brokers of a consumer group.
func (a *admin) groupRoute(group string) (*protocol.TopicRouteData, error) {
	r, err := a.route(metadata.RetryTopic(group))
	if err != nil {
		if errors.Is(err, errNoRoute) {
			return nil, fmt.Errorf("consumer group %s not found: no route for its retry topic %s (CODE: 17)", group, metadata.RetryTopic(group))
		}
		return nil, err
	}
	return r, nil
}

// consumeStatsOf fetches GET_CONSUME_STATS from one broker.
func (a *admin) consumeStatsOf(addr, group, topic string) (*consumeStats, error) {
	resp, err := a.call(addr, protocol.GetConsumeStats, protocol.EncodeHeader(&protocol.GetConsumeStatsRequestHeader{ConsumerGroup: group, Topic: topic}), nil)
	if err != nil {
		return nil, err
	}
	var cs consumeStats
	if err := decodeBody(resp.Body, &cs); err != nil {
		return nil, fmt.Errorf("bad consume stats from %s: %v", addr, err)
	}
	return &cs, nil
}

// examineConsumeStats is DefaultMQAdminExt.examineConsumeStats: the route
// of %RETRY%group (or of the topic), GET_CONSUME_STATS to every broker
// group, merged. An empty result is an error, as in Java.
func (a *admin) examineConsumeStats(group, topic string) (*consumeStats, error) {
	r, err := a.route(metadata.RetryTopic(group))
	if err != nil && topic != "" {
		r, err = a.route(topic)
	}
	if err != nil {
		if errors.Is(err, errNoRoute) {
			return nil, fmt.Errorf("consumer group %s not found: no route for %s (CODE: 17)", group, metadata.RetryTopic(group))
		}
		return nil, err
	}
	out := &consumeStats{OffsetTable: map[string]offsetWrapper{}}
	for _, ref := range routeAddrs(r, "") {
		cs, err := a.consumeStatsOf(ref.addr, group, topic)
		if err != nil {
			return nil, err
		}
		for k, v := range cs.OffsetTable {
			out.OffsetTable[k] = v
		}
		out.ConsumeTps += cs.ConsumeTps
	}
	if len(out.OffsetTable) == 0 {
		return nil, fmt.Errorf("not found the consumer group %s consume stats, because return offset table is empty, maybe the consumer not consume any message (CODE: 206)", group)
	}
	return out, nil
}

func (cs *consumeStats) totalDiff() int64 {
	var d int64
	for _, w := range cs.OffsetTable {
		d += w.BrokerOffset - w.ConsumerOffset
	}
	return d
}

// consumerConnectionOf is examineConsumerConnectionInfo: GET_CONSUMER_CONNECTION_LIST
// to addr, or to a broker of the group's retry-topic route.
func (a *admin) consumerConnectionOf(group, addr string) (*consumerConnection, error) {
	if addr == "" {
		r, err := a.groupRoute(group)
		if err != nil {
			return nil, err
		}
		refs := routeAddrs(r, "")
		if len(refs) == 0 {
			return nil, fmt.Errorf("consumer group %s: no broker in the route of its retry topic", group)
		}
		addr = refs[0].addr
	}
	resp, err := a.call(addr, protocol.GetConsumerConnectionList, protocol.EncodeHeader(&protocol.ConsumerGroupHeader{ConsumerGroup: group}), nil)
	if err != nil {
		return nil, err
	}
	var cc consumerConnection
	if err := decodeBody(resp.Body, &cc); err != nil {
		return nil, fmt.Errorf("bad consumer connection body from %s: %v", addr, err)
	}
	return &cc, nil
}

// allocation asks every client of the group, through the broker, which
// queues it holds (GET_CONSUMER_RUNNING_INFO) and maps queue -> client IP.
// Failures are warnings: the column then shows N/A, as in Java.
func (a *admin) allocation(e *env, group string) map[messageQueue]string {
	out := map[messageQueue]string{}
	r, err := a.groupRoute(group)
	if err != nil {
		e.warnf("client IPs: %v", err)
		return out
	}
	refs := routeAddrs(r, "")
	if len(refs) == 0 {
		return out
	}
	cc, err := a.consumerConnectionOf(group, refs[0].addr)
	if err != nil {
		e.warnf("client IPs: %v", err)
		return out
	}
	for _, conn := range cc.ConnectionSet {
		ext := remoting.FieldsOf("consumerGroup", group, "clientId", conn.ClientID, "jstackEnable", "false")
		resp, err := a.call(refs[0].addr, protocol.GetConsumerRunningInfo, ext, nil)
		if err != nil {
			e.warnf("client IPs: running info of %s: %v", conn.ClientID, err)
			continue
		}
		if len(resp.Body) == 0 {
			e.warnf("client IPs: client %s sent no running info (%s)", conn.ClientID, oneLine(resp.Remark))
			continue
		}
		var info struct {
			MQTable map[string]json.RawMessage `json:"mqTable"`
		}
		if err := decodeBody(resp.Body, &info); err != nil {
			e.warnf("client IPs: running info of %s: %v", conn.ClientID, err)
			continue
		}
		ip, _, _ := strings.Cut(conn.ClientID, "@")
		for k := range info.MQTable {
			if mq, err := mqKey(k); err == nil {
				out[mq] = ip
			}
		}
	}
	return out
}

func setupConsumerProgress(f *flagSet) func(*env) error {
	g := f.arg("g", "groupName", "consumer group name")
	t := f.arg("t", "topicName", "topic name")
	s := f.arg("s", "showClientIP", "Show Client IP per Queue")
	f.arg("c", "cluster", "Cluster name or lmq parent topic, lmq is used to find the route.")
	return func(e *env) error {
		adm, err := e.admin()
		if err != nil {
			return err
		}
		showIP := s.has() && strings.EqualFold(s.str(), "true")
		if !g.has() {
			return printAllGroupsProgress(e, adm)
		}
		group := g.str()
		cs, err := adm.examineConsumeStats(group, t.str())
		if err != nil {
			return err
		}
		rows, err := sortedMQ(cs.OffsetTable)
		if err != nil {
			return err
		}
		var alloc map[messageQueue]string
		if showIP {
			alloc = adm.allocation(e, group)
			e.printf("%-64s  %-32s  %-4s  %-20s  %-20s  %-20s %-20s %-20s%s\n",
				"#Topic", "#Broker Name", "#QID", "#Broker Offset", "#Consumer Offset", "#Client IP", "#Diff", "#Inflight", "#LastTime")
		} else {
			e.printf("%-64s  %-32s  %-4s  %-20s  %-20s  %-20s %-20s%s\n",
				"#Topic", "#Broker Name", "#QID", "#Broker Offset", "#Consumer Offset", "#Diff", "#Inflight", "#LastTime")
		}
		var diffTotal, inflightTotal int64
		for _, row := range rows {
			w := row.val
			diff := w.BrokerOffset - w.ConsumerOffset
			inflight := w.PullOffset - w.ConsumerOffset
			diffTotal += diff
			inflightTotal += inflight
			last := "N/A"
			if w.LastTimestamp != 0 {
				last = formatDate(w.LastTimestamp)
			}
			if showIP {
				ip, ok := alloc[row.mq]
				if !ok {
					ip = "N/A"
				}
				e.printf("%-64s  %-32s  %-4d  %-20d  %-20d  %-20s %-20d %-20d %s\n",
					frontStringAtLeast(row.mq.Topic, 64), frontStringAtLeast(row.mq.BrokerName, 32), row.mq.QueueID,
					w.BrokerOffset, w.ConsumerOffset, ip, diff, inflight, last)
			} else {
				e.printf("%-64s  %-32s  %-4d  %-20d  %-20d  %-20d %-20d %s\n",
					frontStringAtLeast(row.mq.Topic, 64), frontStringAtLeast(row.mq.BrokerName, 32), row.mq.QueueID,
					w.BrokerOffset, w.ConsumerOffset, diff, inflight, last)
			}
		}
		e.printf("\n")
		e.printf("Consume TPS: %.2f\n", cs.ConsumeTps)
		e.printf("Consume Diff Total: %d\n", diffTotal)
		e.printf("Consume Inflight Total: %d\n", inflightTotal)
		return nil
	}
}

func printAllGroupsProgress(e *env, adm *admin) error {
	topics, err := adm.topicList()
	if err != nil {
		return err
	}
	e.printf("%-64s  %-6s  %-24s %-5s  %-14s  %-7s  %s\n", "#Group", "#Count", "#Version", "#Type", "#Model", "#TPS", "#Diff Total")
	for _, topic := range topics {
		group, ok := strings.CutPrefix(topic, "%RETRY%")
		if !ok {
			continue
		}
		var count, tps int
		var diff int64
		version, ctype, model := "OFFLINE", "", ""
		if cs, err := adm.examineConsumeStats(group, ""); err == nil {
			tps = int(cs.ConsumeTps)
			diff = cs.totalDiff()
		}
		if cc, err := adm.consumerConnectionOf(group, ""); err == nil {
			count = len(cc.ConnectionSet)
			if count > 0 {
				version = versionDesc(cc.minVersion())
				ctype = "PUSH"
				if cc.ConsumeType == "CONSUME_ACTIVELY" {
					ctype = "PULL"
				} else {
					model = cc.MessageModel
				}
			}
		}
		e.printf("%-64s  %-6d  %-24s %-5s  %-14s  %-7d  %d\n", frontStringAtLeast(group, 64), count, version, ctype, model, tps, diff)
	}
	return nil
}

func setupConsumerConnection(f *flagSet) func(*env) error {
	g := f.required("g", "consumerGroup", "consumer group name")
	b := f.arg("b", "brokerAddr", "broker address")
	return func(e *env) error {
		adm, err := e.admin()
		if err != nil {
			return err
		}
		cc, err := adm.consumerConnectionOf(g.str(), b.str())
		if err != nil {
			return err
		}
		e.printf("%-36s %-22s %-10s %s\n", "#ClientId", "#ClientAddr", "#Language", "#Version")
		for _, c := range cc.ConnectionSet {
			e.printf("%-36s %-22s %-10s %s\n", c.ClientID, c.ClientAddr, c.Language, versionDesc(c.Version))
		}
		e.printf("\nBelow is subscription:\n")
		e.printf("%-20s %s\n", "#Topic", "#SubExpression")
		topics := make([]string, 0, len(cc.SubscriptionTable))
		for t := range cc.SubscriptionTable {
			topics = append(topics, t)
		}
		sort.Strings(topics)
		for _, t := range topics {
			sd := cc.SubscriptionTable[t]
			e.printf("%-20s %s\n", sd.Topic, sd.SubString)
		}
		e.printf("\n")
		e.printf("ConsumeType: %s\n", cc.ConsumeType)
		e.printf("MessageModel: %s\n", cc.MessageModel)
		e.printf("ConsumeFromWhere: %s\n", cc.ConsumeFromWhere)
		return nil
	}
}

// groupConfigString is SubscriptionGroupConfig.toString (Guava toStringHelper).
func groupConfigString(g *metadata.SubscriptionGroupConfig) string {
	policy := func(raw json.RawMessage) string {
		if len(raw) == 0 {
			return "null"
		}
		return string(raw)
	}
	subs := "null"
	if len(g.SubscriptionDataSet) > 0 {
		subs = string(g.SubscriptionDataSet)
	}
	attrs := g.Attributes
	if attrs == nil {
		attrs = map[string]string{}
	}
	return fmt.Sprintf("SubscriptionGroupConfig{groupName=%s, consumeEnable=%t, consumeFromMinEnable=%t, consumeBroadcastEnable=%t, "+
		"consumeMessageOrderly=%t, retryQueueNums=%d, retryMaxTimes=%d, groupRetryPolicy=GroupRetryPolicy{type=%s, "+
		"exponentialRetryPolicy=%s, customizedRetryPolicy=%s}, brokerId=%d, whichBrokerWhenConsumeSlowly=%d, "+
		"notifyConsumerIdsChangedEnable=%t, groupSysFlag=%d, consumeTimeoutMinute=%d, subscriptionDataSet=%s, attributes=%s}",
		g.GroupName, g.ConsumeEnable, g.ConsumeFromMinEnable, g.ConsumeBroadcastEnable, g.ConsumeMessageOrderly,
		g.RetryQueueNums, g.RetryMaxTimes, g.GroupRetryPolicy.Type, policy(g.GroupRetryPolicy.ExponentialRetryPolicy),
		policy(g.GroupRetryPolicy.CustomizedRetryPolicy), g.BrokerID, g.WhichBrokerWhenConsumeSlowly,
		g.NotifyConsumerIdsChangedEnable, g.GroupSysFlag, g.ConsumeTimeoutMinute, subs, javaMap(attrs))
}

func setupUpdateSubGroup(f *flagSet) func(*env) error {
	b := f.arg("b", "brokerAddr", "create subscription group to which broker")
	c := f.arg("c", "clusterName", "create subscription group to which cluster")
	g := f.required("g", "groupName", "consumer group name")
	s := f.arg("s", "consumeEnable", "consume enable")
	m := f.arg("m", "consumeFromMinEnable", "from min offset")
	d := f.arg("d", "consumeBroadcastEnable", "broadcast")
	o := f.arg("o", "consumeMessageOrderly", "consume message orderly")
	q := f.arg("q", "retryQueueNums", "retry queue nums")
	r := f.arg("r", "retryMaxTimes", "retry max times")
	p := f.arg("p", "groupRetryPolicy", "the json string of retry policy ( exp: {\"type\":\"EXPONENTIAL\",\"exponentialRetryPolicy\":{\"initial\":5000,\"max\":7200000,\"multiplier\":2}} {\"type\":\"CUSTOMIZED\",\"customizedRetryPolicy\":{\"next\":[1000,5000,10000]}} )")
	i := f.arg("i", "brokerId", "consumer from which broker id")
	w := f.arg("w", "whichBrokerWhenConsumeSlowly", "which broker id when consume slowly")
	a := f.arg("a", "notifyConsumerIdsChanged", "notify consumerId changed")
	attrs := f.arg("", "attributes", "attribute(+a=b,+c=d,-e)")
	return func(e *env) error {
		cfg := metadata.NewSubscriptionGroupConfig(g.str())
		cfg.ConsumeBroadcastEnable = false
		cfg.ConsumeFromMinEnable = false
		for _, x := range []struct {
			o   *option
			dst *bool
		}{{s, &cfg.ConsumeEnable}, {m, &cfg.ConsumeFromMinEnable}, {d, &cfg.ConsumeBroadcastEnable}, {o, &cfg.ConsumeMessageOrderly}, {a, &cfg.NotifyConsumerIdsChangedEnable}} {
			if x.o.has() {
				*x.dst = parseBool(x.o.str())
			}
		}
		for _, x := range []struct {
			o   *option
			dst *int
		}{{q, &cfg.RetryQueueNums}, {r, &cfg.RetryMaxTimes}} {
			if x.o.has() {
				n, err := parseIntOpt(x.o)
				if err != nil {
					return err
				}
				*x.dst = int(n)
			}
		}
		for _, x := range []struct {
			o   *option
			dst *int64
		}{{i, &cfg.BrokerID}, {w, &cfg.WhichBrokerWhenConsumeSlowly}} {
			if x.o.has() {
				n, err := parseIntOpt(x.o)
				if err != nil {
					return err
				}
				*x.dst = n
			}
		}
		if p.has() {
			var pol metadata.GroupRetryPolicy
			if err := json.Unmarshal([]byte(p.str()), &pol); err != nil {
				return usagef("option -p: bad retry policy JSON: %v", err)
			}
			cfg.GroupRetryPolicy = pol
		}
		if attrs.has() {
			mm, err := parseAttributes(attrs.str())
			if err != nil {
				return err
			}
			cfg.Attributes = mm
		}
		body, err := json.Marshal(&cfg)
		if err != nil {
			return err
		}
		if !b.has() && !c.has() {
			return usagef("one of -b (broker address) or -c (cluster name) is required")
		}
		adm, err := e.admin()
		if err != nil {
			return err
		}
		addrs, err := adm.brokerTargets(b, c, false)
		if err != nil {
			return err
		}
		for _, addr := range addrs {
			if _, err := adm.call(addr, protocol.UpdateAndCreateSubscriptionGroup, remoting.Fields{}, body); err != nil {
				return err
			}
			e.printf("create subscription group to %s success.\n", addr)
		}
		e.printf("%s\n", groupConfigString(&cfg))
		return nil
	}
}

// deleteTopicEverywhere is DefaultMQAdminExt.deleteTopic(topic, cluster).
func (a *admin) deleteTopicEverywhere(topic, cluster string) error {
	masters, err := a.masterAddrs(cluster)
	if err != nil {
		return err
	}
	for _, addr := range masters {
		if _, err := a.call(addr, protocol.DeleteTopicInBroker, protocol.EncodeHeader(&protocol.TopicHeader{Topic: topic}), nil); err != nil {
			return err
		}
	}
	for _, ns := range a.namesrvs {
		if _, err := a.call(ns, protocol.DeleteTopicInNamesrv, protocol.EncodeHeader(&protocol.DeleteTopicFromNamesrvRequestHeader{Topic: topic, ClusterName: cluster}), nil); err != nil {
			return err
		}
	}
	return nil
}

func setupDeleteSubGroup(f *flagSet) func(*env) error {
	b := f.arg("b", "brokerAddr", "delete subscription group from which broker")
	c := f.arg("c", "clusterName", "delete subscription group from which cluster")
	g := f.required("g", "groupName", "subscription group name")
	r := f.arg("r", "removeOffset", "remove offset")
	return func(e *env) error {
		adm, err := e.admin()
		if err != nil {
			return err
		}
		group := g.str()
		h := protocol.EncodeHeader(&protocol.DeleteSubscriptionGroupRequestHeader{GroupName: group, CleanOffset: r.has() && parseBool(r.str())})
		if b.has() {
			if _, err := adm.call(b.str(), protocol.DeleteSubscriptionGroup, h, nil); err != nil {
				return err
			}
			e.printf("delete subscription group [%s] from broker [%s] success.\n", group, b.str())
			return nil
		}
		if !c.has() {
			return usagef("one of -b (broker address) or -c (cluster name) is required")
		}
		cluster := c.str()
		masters, err := adm.masterAddrs(cluster)
		if err != nil {
			return err
		}
		for _, addr := range masters {
			if _, err := adm.call(addr, protocol.DeleteSubscriptionGroup, h, nil); err != nil {
				return err
			}
			e.printf("delete subscription group [%s] from broker [%s] in cluster [%s] success.\n", group, addr, cluster)
		}
		for _, topic := range []string{metadata.RetryTopic(group), metadata.DLQTopic(group)} {
			if err := adm.deleteTopicEverywhere(topic, cluster); err != nil {
				e.warnf("delete topic %s: %v", topic, err)
			}
		}
		return nil
	}
}

// offsetOf sends 29 (search by timestamp) or 30 (max offset, timestamp -1).
func (a *admin) offsetOf(addr, topic string, queueID int32, timestamp int64) (int64, error) {
	var resp *remoting.RemotingCommand
	var err error
	if timestamp == -1 {
		resp, err = a.call(addr, protocol.GetMaxOffset, protocol.EncodeHeader(&protocol.QueueRequestHeader{Topic: topic, QueueID: queueID}), nil)
	} else {
		resp, err = a.call(addr, protocol.SearchOffsetByTimestamp, protocol.EncodeHeader(&protocol.SearchOffsetRequestHeader{Topic: topic, QueueID: queueID, Timestamp: timestamp}), nil)
	}
	if err != nil {
		return 0, err
	}
	var h protocol.OffsetResponseHeader
	if err := protocol.DecodeHeader(&resp.ExtFields, &h); err != nil {
		return 0, fmt.Errorf("bad offset answer from %s: %v", addr, err)
	}
	return h.Offset, nil
}

func (a *admin) minOffset(addr, topic string, queueID int32) (int64, error) {
	resp, err := a.call(addr, protocol.GetMinOffset, protocol.EncodeHeader(&protocol.QueueRequestHeader{Topic: topic, QueueID: queueID}), nil)
	if err != nil {
		return 0, err
	}
	var h protocol.OffsetResponseHeader
	if err := protocol.DecodeHeader(&resp.ExtFields, &h); err != nil {
		return 0, fmt.Errorf("bad offset answer from %s: %v", addr, err)
	}
	return h.Offset, nil
}

func setupResetOffsetByTime(f *flagSet) func(*env) error {
	g := f.required("g", "group", "set the consumer group")
	t := f.required("t", "topic", "set the topic")
	s := f.required("s", "timestamp", "set the timestamp[now|currentTimeMillis|yyyy-MM-dd#HH:mm:ss:SSS]")
	force := f.arg("f", "force", "set the force rollback by timestamp switch[true|false]. Deprecated.")
	b := f.arg("b", "broker", "broker addr")
	q := f.arg("q", "queue", "queue id")
	o := f.arg("o", "offset", "Expect queue offset, not support old version broker")
	f.arg("c", "cluster", "Cluster name or lmq parent topic, lmq is used to find the route.")
	return func(e *env) error {
		group, topic, tsStr := g.str(), t.str(), s.str()
		ts, err := parseTimestamp(tsStr, true)
		if err != nil {
			return err
		}
		isForce := true
		if force.has() {
			isForce = parseBool(force.str())
		}
		queueID := int64(-1)
		if q.has() {
			if queueID, err = parseIntOpt(q); err != nil {
				return err
			}
		}
		adm, err := e.admin()
		if err != nil {
			return err
		}
		if b.has() && queueID >= 0 {
			addr := b.str()
			e.printf("start reset consumer offset by specified, group[%s], topic[%s], queueId[%d], broker[%s], timestamp(string)[%s], timestamp(long)[%d]\n",
				group, topic, queueID, addr, tsStr, ts)
			var off int64
			if o.has() {
				if off, err = parseIntOpt(o); err != nil {
					return err
				}
			} else if off, err = adm.offsetOf(addr, topic, int32(queueID), ts); err != nil {
				return err
			}
			e.printf("reset consumer offset to %d\n", off)
			if off > 0 {
				// As Java's resetOffsetByQueueId: commit the offset, then ask the
				// broker to reset that queue (ext "offset" is the 5.x way to name
				// the target; the timestamp lets a broker that ignores it compute
				// the same offset when -o is not given).
				qid := int32(queueID)
				h := protocol.EncodeHeader(&protocol.UpdateConsumerOffsetRequestHeader{ConsumerGroup: group, Topic: topic, QueueID: qid, CommitOffset: off})
				if _, err := adm.call(addr, protocol.UpdateConsumerOffset, h, nil); err != nil {
					return err
				}
				ext := protocol.EncodeHeader(&protocol.ResetOffsetRequestHeader{Topic: topic, Group: group, Timestamp: ts, IsForce: true, QueueID: &qid})
				ext.Set("offset", strconv.FormatInt(off, 10))
				if _, err := adm.call(addr, protocol.InvokeBrokerToResetOffset, ext, nil); err != nil && codeOf(err) != protocol.ConsumerNotOnline {
					return err
				}
			}
			return nil
		}
		r, err := adm.route(topic)
		if err != nil {
			return err
		}
		all := map[string]int64{}
		minusOne := int32(-1)
		for _, ref := range routeAddrs(r, "") {
			ext := protocol.EncodeHeader(&protocol.ResetOffsetRequestHeader{Topic: topic, Group: group, Timestamp: ts, IsForce: isForce, QueueID: &minusOne})
			ext.Set("offset", "-1") // Java 5.x: no explicit offset
			resp, err := adm.call(ref.addr, protocol.InvokeBrokerToResetOffset, ext, nil)
			if err != nil {
				if codeOf(err) == protocol.ConsumerNotOnline {
					return resetOffsetOld(e, adm, r, group, topic, ts, isForce, tsStr)
				}
				return err
			}
			if len(resp.Body) > 0 {
				var body resetOffsetBody
				if err := decodeBody(resp.Body, &body); err != nil {
					return fmt.Errorf("bad reset offset body from %s: %v", ref.addr, err)
				}
				for k, v := range body.OffsetTable {
					all[k] = v
				}
			}
		}
		rows, err := sortedMQ(all)
		if err != nil {
			return err
		}
		e.printf("start reset consumer offset by specified, group[%s], topic[%s], force[%t], timestamp(string)[%s], timestamp(long)[%d]\n",
			group, topic, isForce, tsStr, ts)
		e.printf("%-40s  %-40s  %-40s\n", "#brokerName", "#queueId", "#offset")
		for _, row := range rows {
			e.printf("%-40s  %-40d  %-40d\n", frontStringAtLeast(row.mq.BrokerName, 32), row.mq.QueueID, row.val)
		}
		return nil
	}
}

// resetOffsetOld is ResetOffsetByTimeOldCommand, the fallback when no
// client of the group is online: the tool computes and commits offsets.
func resetOffsetOld(e *env, adm *admin, r *protocol.TopicRouteData, group, topic string, ts int64, force bool, tsStr string) error {
	type rollback struct {
		brokerName                                 string
		queueID                                    int32
		brokerOffset, consumerOffset, tsOffset, to int64
	}
	var stats []rollback
	readQueues := map[string]int32{}
	for _, qd := range r.QueueDatas {
		readQueues[qd.BrokerName] = qd.ReadQueueNums
	}
	for _, ref := range routeAddrs(r, "") {
		type queueState struct {
			mq                           messageQueue
			brokerOffset, consumerOffset int64
		}
		var queues []queueState
		cs, err := adm.consumeStatsOf(ref.addr, group, "")
		if err != nil {
			return err
		}
		rows, err := sortedMQ(cs.OffsetTable)
		if err != nil {
			return err
		}
		for _, row := range rows {
			if row.mq.Topic == topic {
				queues = append(queues, queueState{row.mq, row.val.BrokerOffset, row.val.ConsumerOffset})
			}
		}
		if len(queues) == 0 {
			ts2, err := adm.topicStats(ref.addr, topic)
			if err != nil {
				return err
			}
			byQueue := map[int32]topicOffset{}
			trows, err := sortedMQ(ts2.OffsetTable)
			if err != nil {
				return err
			}
			for _, tr := range trows {
				byQueue[tr.mq.QueueID] = tr.val
			}
			for i := int32(0); i < readQueues[ref.name]; i++ {
				to := byQueue[i]
				queues = append(queues, queueState{messageQueue{topic, ref.name, i}, to.MaxOffset, to.MinOffset})
			}
		}
		for _, qs := range queues {
			off, err := adm.offsetOf(ref.addr, topic, qs.mq.QueueID, ts)
			if err != nil {
				return err
			}
			rb := rollback{qs.mq.BrokerName, qs.mq.QueueID, qs.brokerOffset, qs.consumerOffset, off, qs.consumerOffset}
			if force || off <= qs.consumerOffset {
				rb.to = off
				h := protocol.EncodeHeader(&protocol.UpdateConsumerOffsetRequestHeader{ConsumerGroup: group, Topic: topic, QueueID: qs.mq.QueueID, CommitOffset: off})
				if _, err := adm.call(ref.addr, protocol.UpdateConsumerOffset, h, nil); err != nil {
					return err
				}
			}
			stats = append(stats, rb)
		}
	}
	e.printf("reset consumer offset by specified consumerGroup[%s], topic[%s], force[%t], timestamp(string)[%s], timestamp(long)[%d]\n",
		group, topic, force, tsStr, ts)
	e.printf("%-20s  %-20s  %-20s  %-20s  %-20s  %-20s\n", "#brokerName", "#queueId", "#brokerOffset", "#consumerOffset", "#timestampOffset", "#resetOffset")
	for _, s := range stats {
		e.printf("%-20s  %-20d  %-20d  %-20d  %-20d  %-20d\n", frontStringAtLeast(s.brokerName, 32), s.queueID, s.brokerOffset, s.consumerOffset, s.tsOffset, s.to)
	}
	return nil
}

func setupBrokerConsumeStats(f *flagSet) func(*env) error {
	b := f.required("b", "brokerAddr", "Broker address")
	t := f.arg("t", "timeoutMillis", "request timeout Millis")
	l := f.arg("l", "level", "threshold of print diff")
	o := f.arg("o", "order", "order topic")
	return func(e *env) error {
		isOrder := o.has() && parseBool(o.str())
		var level int64
		var err error
		if l.has() {
			if level, err = parseIntOpt(l); err != nil {
				return err
			}
		}
		adm, err := e.admin()
		if err != nil {
			return err
		}
		if t.has() {
			ms, err := parseIntOpt(t)
			if err != nil {
				return err
			}
			adm.timeout = time.Duration(ms) * time.Millisecond
		}
		addr := b.str()
		resp, err := adm.call(addr, protocol.GetBrokerConsumeStats, remoting.FieldsOf("isOrder", strconv.FormatBool(isOrder)), nil)
		if err != nil {
			return err
		}
		var list consumeStatsList
		if err := decodeBody(resp.Body, &list); err != nil {
			return fmt.Errorf("bad broker consume stats body from %s: %v", addr, err)
		}
		e.printf("%-64s  %-64s  %-32s  %-4s  %-20s  %-20s  %-20s  %s\n",
			"#Topic", "#Group", "#Broker Name", "#QID", "#Broker Offset", "#Consumer Offset", "#Diff", "#LastTime")
		for _, m := range list.ConsumeStatsList {
			groups := make([]string, 0, len(m))
			for gname := range m {
				groups = append(groups, gname)
			}
			sort.Strings(groups)
			for _, group := range groups {
				for _, cs := range m[group] {
					rows, err := sortedMQ(cs.OffsetTable)
					if err != nil {
						return err
					}
					for _, row := range rows {
						w := row.val
						diff := w.BrokerOffset - w.ConsumerOffset
						if diff < level || w.LastTimestamp <= 0 {
							continue
						}
						e.printf("%-64s  %-64s  %-32s  %-4d  %-20d  %-20d  %-20d  %s\n",
							frontStringAtLeast(row.mq.Topic, 64), group, frontStringAtLeast(row.mq.BrokerName, 32), row.mq.QueueID,
							w.BrokerOffset, w.ConsumerOffset, diff, formatDate(w.LastTimestamp))
					}
				}
			}
		}
		e.printf("\nDiff Total: %d\n", list.TotalDiff)
		return nil
	}
}
