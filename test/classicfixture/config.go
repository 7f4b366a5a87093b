package classicfixture

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// The config files are fastjson PrettyFormat text as a 4.x broker writes
// them: tab indentation, fields in alphabetical order, no blank after ':',
// integer map keys unquoted (protocol.md §6.6). A 4.x DataVersion has
// counter and timestamp only; a 4.x TopicConfig has no attributes.

// field is one "name":value line; value is raw JSON text.
type field struct {
	name  string
	value string
}

// nested renders fields (sorted by name) as a pretty object whose closing
// brace is indented depth tabs.
func nested(depth int, fields []field) string {
	sort.Slice(fields, func(a, b int) bool { return fields[a].name < fields[b].name })
	var b strings.Builder
	if len(fields) == 0 {
		return "{}"
	}
	b.WriteString("{\n")
	for i, f := range fields {
		for d := 0; d <= depth; d++ {
			b.WriteByte('\t')
		}
		b.WriteString(strconv.Quote(f.name))
		b.WriteByte(':')
		b.WriteString(f.value)
		if i < len(fields)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	for d := 0; d < depth; d++ {
		b.WriteByte('\t')
	}
	b.WriteByte('}')
	return b.String()
}

// intMap renders a map with integer keys as fastjson's PrettyFormat does:
// keys unquoted and on one line (fastjson breaks lines only before String
// keys), then a line break and the closing brace indented depth tabs, e.g.
// {0:6,1:3,2:3,3:2\n\t\t} (a real 4.8 consumerOffset.json); {} when empty.
// Keys ascending (Java's HashMap order for small integers).
func intMap[K int | int32](m map[K]int64, depth int) string {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, int(k))
	}
	sort.Ints(keys)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d:%d", k, m[K(k)])
	}
	if len(keys) > 0 {
		b.WriteByte('\n')
		b.WriteString(strings.Repeat("\t", depth))
	}
	b.WriteByte('}')
	return b.String()
}

func dataVersion(depth int, ts int64) string {
	return nested(depth, []field{{"counter", "1"}, {"timestamp", strconv.FormatInt(ts, 10)}})
}

func boolStr(v bool) string { return strconv.FormatBool(v) }

func (w *writer) topicConfigs() []Topic {
	all := map[string]Topic{}
	if w.spec.SystemTopics {
		for _, t := range []Topic{
			{Name: "TBW102", Queues: 8, Perm: 7},
			{Name: "SELF_TEST_TOPIC", Queues: 1, Perm: 6},
			{Name: "BenchmarkTest", Queues: 1024, Perm: 6},
			{Name: "OFFSET_MOVED_EVENT", Queues: 1, Perm: 6},
			{Name: "SCHEDULE_TOPIC_XXXX", Queues: 18, Perm: 6},
			{Name: "RMQ_SYS_TRANS_HALF_TOPIC", Queues: 1, Perm: 6},
		} {
			all[t.Name] = t
		}
		if c := w.spec.ClusterName; c != "" {
			all[c] = Topic{Name: c, Queues: 16, Perm: 7}
			all[c+"_REPLY_TOPIC"] = Topic{Name: c + "_REPLY_TOPIC", Queues: 1, Perm: 6}
		}
		if w.spec.BrokerName != "" {
			all[w.spec.BrokerName] = Topic{Name: w.spec.BrokerName, Queues: 1, Perm: 7}
		}
	}
	for _, g := range w.groups() {
		n := "%RETRY%" + g
		all[n] = Topic{Name: n, Queues: 1, Perm: 6}
	}
	for _, r := range w.m.Messages {
		switch r.Topic {
		case ScheduleTopic:
			all[ScheduleTopic] = Topic{Name: ScheduleTopic, Queues: 18, Perm: 6}
		case TransHalfTopic, TransOpHalfTopic:
			all[r.Topic] = Topic{Name: r.Topic, Queues: 1, Perm: 6}
		}
	}
	for _, t := range w.topics {
		all[t.Name] = t
	}
	out := make([]Topic, 0, len(all))
	for _, t := range all {
		out = append(out, t)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out
}

func (w *writer) groups() []string {
	seen := map[string]bool{}
	var out []string
	add := func(g string) {
		if g != "" && !seen[g] {
			seen[g] = true
			out = append(out, g)
		}
	}
	for _, g := range w.spec.Groups {
		add(g)
	}
	for _, o := range w.spec.ConsumerOffsets {
		add(o.Group)
	}
	sort.Strings(out)
	return out
}

func (w *writer) topicsJSON() string {
	var table []field
	for _, t := range w.topicConfigs() {
		filter := "SINGLE_TAG"
		if t.MultiTag {
			filter = "MULTI_TAG"
		}
		q := strconv.Itoa(t.Queues)
		table = append(table, field{t.Name, nested(2, []field{
			{"order", boolStr(t.Order)},
			{"perm", strconv.Itoa(t.Perm)},
			{"readQueueNums", q},
			{"topicFilterType", strconv.Quote(filter)},
			{"topicName", strconv.Quote(t.Name)},
			{"topicSysFlag", "0"},
			{"writeQueueNums", q},
		})})
	}
	return nested(0, []field{
		{"dataVersion", dataVersion(1, w.m.LastStoreTimestamp)},
		{"topicConfigTable", nested(1, table)},
	})
}

func (w *writer) subscriptionGroupJSON() string {
	var table []field
	for _, g := range w.groups() {
		table = append(table, field{g, nested(2, []field{
			{"brokerId", "0"},
			{"consumeBroadcastEnable", "true"},
			{"consumeEnable", "true"},
			{"consumeFromMinEnable", "true"},
			{"groupName", strconv.Quote(g)},
			{"notifyConsumerIdsChangedEnable", "true"},
			{"retryMaxTimes", "16"},
			{"retryQueueNums", "1"},
			{"whichBrokerWhenConsumeSlowly", "1"},
		})})
	}
	return nested(0, []field{
		{"dataVersion", dataVersion(1, w.m.LastStoreTimestamp)},
		{"subscriptionGroupTable", nested(1, table)},
	})
}

func (w *writer) consumerOffsetJSON() string {
	var table []field
	for _, o := range w.spec.ConsumerOffsets {
		table = append(table, field{o.Topic + "@" + o.Group, intMap(o.Offsets, 2)})
	}
	return nested(0, []field{{"offsetTable", nested(1, table)}})
}

func (w *writer) delayOffsetJSON() string {
	m := map[int]int64{}
	for k, v := range w.spec.DelayOffsets {
		m[k] = v
	}
	return nested(0, []field{{"offsetTable", intMap(m, 1)}})
}

func (w *writer) writeConfig() error {
	dir := filepath.Join(w.dir, "config")
	for name, text := range map[string]string{
		"topics.json":            w.topicsJSON(),
		"subscriptionGroup.json": w.subscriptionGroupJSON(),
		"consumerOffset.json":    w.consumerOffsetJSON(),
		"delayOffset.json":       w.delayOffsetJSON(),
	} {
		if err := writeFile(filepath.Join(dir, name), 0, []byte(text)); err != nil {
			return err
		}
	}
	return nil
}
