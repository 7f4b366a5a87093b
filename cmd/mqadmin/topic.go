package main

// Topic commands: updateTopic, topicList, topicRoute, topicStatus,
// deleteTopic, updateTopicPerm.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/rmqd/rmqd/protocol"
)

func init() {
	register(&command{name: "updateTopic", desc: "Update or create topic.", setup: setupUpdateTopic})
	register(&command{name: "topicList", desc: "Fetch all topic list from name server.", setup: setupTopicList})
	register(&command{name: "topicRoute", desc: "Examine topic route info.", setup: setupTopicRoute})
	register(&command{name: "topicStatus", desc: "Examine topic Status info.", setup: setupTopicStatus})
	register(&command{name: "deleteTopic", desc: "Delete topic from broker and NameServer.", setup: setupDeleteTopic})
	register(&command{name: "updateTopicPerm", desc: "Update topic perm.", setup: setupUpdateTopicPerm})
}

// topicConfig is what updateTopic sends (TopicConfig with Java's defaults).
type topicConfig struct {
	name         string
	read, write  int32
	perm         int32
	sysFlag      int32
	order        bool
	attributes   map[string]string
	attributeArg string
}

func newTopicConfig(name string) *topicConfig {
	return &topicConfig{name: name, read: 8, write: 8, perm: protocol.PermReadWrite, attributes: map[string]string{}}
}

// String is TopicConfig.toString.
func (t *topicConfig) String() string {
	return fmt.Sprintf("TopicConfig [topicName=%s, readQueueNums=%d, writeQueueNums=%d, perm=%s, topicFilterType=%s, topicSysFlag=%d, order=%t, attributes=%s]",
		t.name, t.read, t.write, protocol.PermString(t.perm), protocol.SingleTag, t.sysFlag, t.order, javaMap(t.attributes))
}

func (a *admin) createTopic(addr string, t *topicConfig) error {
	h := protocol.CreateTopicRequestHeader{
		Topic: t.name, DefaultTopic: protocol.AutoCreateTopicKey, ReadQueueNums: t.read, WriteQueueNums: t.write,
		Perm: t.perm, TopicFilterType: protocol.SingleTag, TopicSysFlag: t.sysFlag, Order: t.order, Attributes: t.attributeArg,
	}
	_, err := a.call(addr, protocol.UpdateAndCreateTopic, protocol.EncodeHeader(&h), nil)
	return err
}

// parseAttributes is AttributeParser.parseToMap: "+a=b,+c=d,-e".
func parseAttributes(s string) (map[string]string, error) {
	m := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		switch part[0] {
		case '+':
			k, v, ok := strings.Cut(part, "=")
			if !ok || len(k) < 2 {
				return nil, usagef("bad attribute %q: want +key=value", part)
			}
			m[k] = v
		case '-':
			if strings.Contains(part, "=") || len(part) < 2 {
				return nil, usagef("bad attribute %q: want -key", part)
			}
			m[part] = ""
		default:
			return nil, usagef("bad attribute %q: must start with + or -", part)
		}
	}
	return m, nil
}

// brokerNameByAddr is CommandUtil.fetchBrokerNameByAddr.
func (a *admin) brokerNameByAddr(addr string) (string, error) {
	ci, err := a.clusterInfo()
	if err != nil {
		return "", err
	}
	names := make([]string, 0, len(ci.BrokerAddrTable))
	for n := range ci.BrokerAddrTable {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, v := range ci.BrokerAddrTable[n].BrokerAddrs {
			if v == addr {
				return n, nil
			}
		}
	}
	return "", fmt.Errorf("broker %s not found in the cluster info of the name server", addr)
}

// putOrderConf is createOrUpdateOrderConf: with replace the value is
// written as is, otherwise merged into the existing per-broker entries.
func (a *admin) putOrderConf(topic, value string, replace bool) error {
	if !replace {
		resp, err := a.callNamesrv(protocol.GetKVConfig, protocol.EncodeHeader(&protocol.GetKVConfigRequestHeader{
			Namespace: protocol.OrderTopicConfigNamespace, Key: topic}), nil)
		if err == nil {
			merged := map[string]string{}
			var order []string
			add := func(conf string) {
				for _, item := range strings.Split(conf, ";") {
					bn, _, ok := strings.Cut(item, ":")
					if !ok || bn == "" {
						continue
					}
					if _, seen := merged[bn]; !seen {
						order = append(order, bn)
					}
					merged[bn] = item
				}
			}
			add(resp.ExtFields.Get("value"))
			add(value)
			items := make([]string, 0, len(order))
			for _, bn := range order {
				items = append(items, merged[bn])
			}
			value = strings.Join(items, ";")
		} else if codeOf(err) != protocol.QueryNotFound {
			return err
		}
	}
	for _, ns := range a.namesrvs {
		if _, err := a.call(ns, protocol.PutKVConfig, protocol.EncodeHeader(&protocol.PutKVConfigRequestHeader{
			Namespace: protocol.OrderTopicConfigNamespace, Key: topic, Value: value}), nil); err != nil {
			return err
		}
	}
	return nil
}

func setupUpdateTopic(f *flagSet) func(*env) error {
	b := f.arg("b", "brokerAddr", "create topic to which broker")
	c := f.arg("c", "clusterName", "create topic to which cluster")
	attrs := f.arg("a", "attributes", "attribute(+a=b,+c=d,-e)")
	t := f.required("t", "topic", "topic name")
	r := f.arg("r", "readQueueNums", "set read queue nums")
	w := f.arg("w", "writeQueueNums", "set write queue nums")
	p := f.arg("p", "perm", "set topic's permission(2|4|6), intro[2:W 4:R; 6:RW]")
	o := f.arg("o", "order", "set topic's order(true|false)")
	u := f.arg("u", "unit", "is unit topic (true|false)")
	s := f.arg("s", "hasUnitSub", "has unit sub (true|false)")
	return func(e *env) error {
		tc := newTopicConfig(t.str())
		if attrs.has() {
			m, err := parseAttributes(attrs.str())
			if err != nil {
				return err
			}
			tc.attributes, tc.attributeArg = m, attrs.str()
		}
		for _, x := range []struct {
			o   *option
			dst *int32
		}{{r, &tc.read}, {w, &tc.write}, {p, &tc.perm}} {
			if x.o.has() {
				n, err := parseIntOpt(x.o)
				if err != nil {
					return err
				}
				*x.dst = int32(n)
			}
		}
		if u.has() && parseBool(u.str()) {
			tc.sysFlag |= protocol.FlagUnit
		}
		if s.has() && parseBool(s.str()) {
			tc.sysFlag |= protocol.FlagUnitSub
		}
		tc.order = o.has() && parseBool(o.str())
		if !b.has() && !c.has() {
			return usagef("one of -b (broker address) or -c (cluster name) is required")
		}
		adm, err := e.admin()
		if err != nil {
			return err
		}
		if b.has() {
			addr := b.str()
			if err := adm.createTopic(addr, tc); err != nil {
				return err
			}
			if tc.order {
				bn, err := adm.brokerNameByAddr(addr)
				if err != nil {
					return err
				}
				conf := fmt.Sprintf("%s:%d", bn, tc.write)
				if err := adm.putOrderConf(tc.name, conf, false); err != nil {
					return err
				}
				e.printf("set broker orderConf. isOrder=%t, orderConf=[%s]\n", tc.order, conf)
			}
			e.printf("create topic to %s success.\n", addr)
			e.printf("%s\n", tc)
			return nil
		}
		cluster := c.str()
		masters, err := adm.masterAddrs(cluster)
		if err != nil {
			return err
		}
		for _, addr := range masters {
			if err := adm.createTopic(addr, tc); err != nil {
				return err
			}
			e.printf("create topic to %s success.\n", addr)
		}
		if tc.order {
			ci, err := adm.clusterInfo()
			if err != nil {
				return err
			}
			names, err := brokerNamesOfCluster(ci, cluster)
			if err != nil {
				return err
			}
			items := make([]string, 0, len(names))
			for _, n := range names {
				items = append(items, fmt.Sprintf("%s:%d", n, tc.write))
			}
			conf := strings.Join(items, ";")
			if err := adm.putOrderConf(tc.name, conf, true); err != nil {
				return err
			}
			e.printf("set cluster orderConf. isOrder=%t, orderConf=[%s]\n", tc.order, conf)
		}
		e.printf("%s\n", tc)
		return nil
	}
}

func isRetryOrDLQ(topic string) bool {
	return strings.HasPrefix(topic, "%RETRY%") || strings.HasPrefix(topic, "%DLQ%")
}

// consumeByWho is queryTopicConsumeByWho: QUERY_TOPIC_CONSUME_BY_WHO to a
// broker of the topic's route.
func (a *admin) consumeByWho(topic string, r *protocol.TopicRouteData) ([]string, error) {
	var err error
	if r == nil {
		if r, err = a.route(topic); err != nil {
			return nil, err
		}
	}
	for _, ref := range routeAddrs(r, "") {
		resp, err := a.call(ref.addr, protocol.QueryTopicConsumeByWho, protocol.EncodeHeader(&protocol.TopicHeader{Topic: topic}), nil)
		if err != nil {
			return nil, err
		}
		var gl groupList
		if err := decodeBody(resp.Body, &gl); err != nil {
			return nil, fmt.Errorf("bad group list from %s: %v", ref.addr, err)
		}
		return gl.GroupList, nil
	}
	return nil, fmt.Errorf("topic %s has no broker in its route", topic)
}

func setupTopicList(f *flagSet) func(*env) error {
	clusterMode := f.flag("c", "clusterModel", "clusterModel")
	return func(e *env) error {
		adm, err := e.admin()
		if err != nil {
			return err
		}
		topics, err := adm.topicList()
		if err != nil {
			return err
		}
		if !clusterMode.has() {
			for _, t := range topics {
				e.printf("%s\n", t)
			}
			return nil
		}
		ci, err := adm.clusterInfo()
		if err != nil {
			return err
		}
		e.printf("%-20s  %-48s  %-48s\n", "#Cluster Name", "#Topic", "#Consumer Group")
		for _, topic := range topics {
			if isRetryOrDLQ(topic) {
				continue
			}
			cluster := ""
			var groups []string
			if r, err := adm.route(topic); err == nil {
				if len(r.BrokerDatas) > 0 {
					bn := r.BrokerDatas[0].BrokerName
					for _, cn := range targetClusters(ci, "") {
						for _, n := range ci.ClusterAddrTable[cn] {
							if n == bn {
								cluster = cn
							}
						}
					}
				}
				groups, _ = adm.consumeByWho(topic, r)
			}
			if len(groups) == 0 {
				groups = []string{""}
			}
			for _, g := range groups {
				e.printf("%-20s  %-64s  %-64s\n", frontStringAtLeast(cluster, 20), frontStringAtLeast(topic, 64), frontStringAtLeast(g, 64))
			}
		}
		return nil
	}
}

// routeJSON renders a route as fastjson's PrettyFormat does (tab indents,
// no blank after ':', keys in alphabetical order), with quoted keys.
func routeJSON(r *protocol.TopicRouteData) string {
	var buf bytes.Buffer
	if err := json.Indent(&buf, r.Encode(protocol.StandardJSON), "", "\t"); err != nil {
		return string(r.Encode(protocol.StandardJSON))
	}
	return stripColonBlanks(buf.Bytes())
}

// stripColonBlanks removes the blank encoding/json puts after ':'.
func stripColonBlanks(b []byte) string {
	out := make([]byte, 0, len(b))
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		out = append(out, c)
		if inString {
			switch c {
			case '\\':
				if i+1 < len(b) {
					i++
					out = append(out, b[i])
				}
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case ':':
			if i+1 < len(b) && b[i+1] == ' ' {
				i++
			}
		}
	}
	return string(out)
}

const topicRouteFormat = "%-45s %-32s %-50s %-10s %-11s %-5s\n"

func setupTopicRoute(f *flagSet) func(*env) error {
	t := f.required("t", "topic", "topic name")
	list := f.flag("l", "list", "Use list format to print data")
	return func(e *env) error {
		adm, err := e.admin()
		if err != nil {
			return err
		}
		r, err := adm.route(t.str())
		if err != nil {
			return err
		}
		if !list.has() {
			e.printf("%s\n", routeJSON(r))
			return nil
		}
		qd := map[string]protocol.QueueData{}
		for _, q := range r.QueueDatas {
			qd[q.BrokerName] = q
		}
		bds := append([]protocol.BrokerData(nil), r.BrokerDatas...)
		sort.Slice(bds, func(i, j int) bool { return bds[i].BrokerName < bds[j].BrokerName })
		e.printf(topicRouteFormat, "#ClusterName", "#BrokerName", "#BrokerAddrs", "#ReadQueue", "#WriteQueue", "#Perm")
		var totalRead, totalWrite int32
		for _, bd := range bds {
			q := qd[bd.BrokerName]
			totalRead += q.ReadQueueNums
			totalWrite += q.WriteQueueNums
			addrs := make([]string, 0, len(bd.BrokerAddrs))
			for _, id := range sortedIDs(bd.BrokerAddrs) {
				addrs = append(addrs, fmt.Sprintf("%d=%s", id, bd.BrokerAddrs[id]))
			}
			e.printf(topicRouteFormat, bd.Cluster, bd.BrokerName, "{"+strings.Join(addrs, ", ")+"}",
				strconv.Itoa(int(q.ReadQueueNums)), strconv.Itoa(int(q.WriteQueueNums)), strconv.Itoa(int(q.Perm)))
		}
		e.printf("%s\n", strings.Repeat("-", 158))
		e.printf(topicRouteFormat, "Total:", strconv.Itoa(len(qd)), "", strconv.Itoa(int(totalRead)), strconv.Itoa(int(totalWrite)), "")
		return nil
	}
}

// topicStats fetches GET_TOPIC_STATS_INFO from one broker.
func (a *admin) topicStats(addr, topic string) (*topicStatsTable, error) {
	resp, err := a.call(addr, protocol.GetTopicStatsInfo, protocol.EncodeHeader(&protocol.TopicHeader{Topic: topic}), nil)
	if err != nil {
		return nil, err
	}
	var ts topicStatsTable
	if err := decodeBody(resp.Body, &ts); err != nil {
		return nil, fmt.Errorf("bad topic stats from %s: %v", addr, err)
	}
	return &ts, nil
}

func setupTopicStatus(f *flagSet) func(*env) error {
	t := f.required("t", "topic", "topic name")
	c := f.arg("c", "cluster", "cluster name or lmq parent topic, lmq is used to find the route.")
	return func(e *env) error {
		adm, err := e.admin()
		if err != nil {
			return err
		}
		topic := t.str()
		routeTopic := topic
		if c.has() {
			routeTopic = c.str()
		}
		r, err := adm.route(routeTopic)
		if err != nil {
			return err
		}
		merged := map[string]topicOffset{}
		var tps float64
		for _, ref := range routeAddrs(r, "") {
			ts, err := adm.topicStats(ref.addr, topic)
			if err != nil {
				return err
			}
			for k, v := range ts.OffsetTable {
				merged[k] = v
			}
			tps += ts.TopicPutTps
		}
		rows, err := sortedMQ(merged)
		if err != nil {
			return err
		}
		e.printf("%-32s  %-4s  %-20s  %-20s    %s\n", "#Broker Name", "#QID", "#Min Offset", "#Max Offset", "#Last Updated")
		for _, row := range rows {
			last := ""
			if row.val.LastUpdateTimestamp > 0 {
				last = humanTime2(row.val.LastUpdateTimestamp)
			}
			e.printf("%-32s  %-4d  %-20d  %-20d    %s\n", frontStringAtLeast(row.mq.BrokerName, 32), row.mq.QueueID,
				row.val.MinOffset, row.val.MaxOffset, last)
		}
		e.printf("\n")
		e.printf("Topic Put TPS: %s\n", javaDouble(tps))
		return nil
	}
}

// javaDouble renders a double as Java's String.valueOf does for ordinary
// magnitudes ("0.0", "12.5").
func javaDouble(v float64) string {
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

func setupDeleteTopic(f *flagSet) func(*env) error {
	t := f.required("t", "topic", "topic name")
	c := f.required("c", "clusterName", "delete topic from which cluster")
	return func(e *env) error {
		adm, err := e.admin()
		if err != nil {
			return err
		}
		topic, cluster := t.str(), c.str()
		masters, err := adm.masterAddrs(cluster)
		if err != nil {
			return err
		}
		for _, addr := range masters {
			if _, err := adm.call(addr, protocol.DeleteTopicInBroker, protocol.EncodeHeader(&protocol.TopicHeader{Topic: topic}), nil); err != nil {
				return err
			}
		}
		e.printf("delete topic [%s] from cluster [%s] success.\n", topic, cluster)
		for _, ns := range adm.namesrvs {
			if _, err := adm.call(ns, protocol.DeleteTopicInNamesrv, protocol.EncodeHeader(&protocol.DeleteTopicFromNamesrvRequestHeader{Topic: topic, ClusterName: cluster}), nil); err != nil {
				return err
			}
		}
		e.printf("delete topic [%s] from NameServer success.\n", topic)
		return nil
	}
}

func setupUpdateTopicPerm(f *flagSet) func(*env) error {
	b := f.arg("b", "brokerAddr", "create topic to which broker")
	c := f.arg("c", "clusterName", "create topic to which cluster")
	t := f.required("t", "topic", "topic name")
	p := f.required("p", "perm", "set topic's permission(2|4|6), intro[2:W; 4:R; 6:RW]")
	return func(e *env) error {
		perm, err := parseIntOpt(p)
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
		topic := t.str()
		r, err := adm.route(topic)
		if err != nil {
			return err
		}
		if len(r.QueueDatas) == 0 {
			return fmt.Errorf("topic %s has no queue data in its route", topic)
		}
		first := r.QueueDatas[0]
		tc := newTopicConfig(topic)
		tc.read, tc.write, tc.sysFlag, tc.perm = first.ReadQueueNums, first.WriteQueueNums, first.TopicSysFlag, int32(perm)
		if b.has() {
			addr := b.str()
			brokerName := ""
			for _, bd := range r.BrokerDatas {
				if bd.BrokerAddrs[protocol.MasterID] == addr {
					brokerName = bd.BrokerName
					break
				}
			}
			if brokerName == "" {
				return fmt.Errorf("updateTopicPerm error broker not exit or broker is not master! (%s)", addr)
			}
			var oldPerm int32
			for _, q := range r.QueueDatas {
				if q.BrokerName == brokerName {
					oldPerm = q.Perm
					tc.read, tc.write, tc.sysFlag = q.ReadQueueNums, q.WriteQueueNums, q.TopicSysFlag
					if oldPerm == tc.perm {
						e.printf("new perm equals to the old one!\n")
						return nil
					}
					break
				}
			}
			if err := adm.createTopic(addr, tc); err != nil {
				return err
			}
			e.printf("update topic perm from %d to %d in %s success.\n", oldPerm, tc.perm, addr)
			e.printf("%s.\n", tc)
			return nil
		}
		masters, err := adm.masterAddrs(c.str())
		if err != nil {
			return err
		}
		for _, addr := range masters {
			if err := adm.createTopic(addr, tc); err != nil {
				return err
			}
			e.printf("update topic perm from %d to %d in %s success.\n", first.Perm, tc.perm, addr)
		}
		return nil
	}
}
