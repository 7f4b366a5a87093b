package metadata

import (
	"maps"
	"slices"
	"strings"
	"sync"
)

// TopicGroupSeparator joins topic and group in consumerOffset.json keys.
const TopicGroupSeparator = "@"

type topicGroup struct{ topic, group string }

// OffsetManager holds consumer offsets (consumerOffset.json): for each
// (topic, group) the next offset to consume per queue. Reads are safe from
// any goroutine; changes go through Metadata.
//
// Offsets never move backwards on commit: a commit below the stored offset
// is ignored. Only a reset (ResetOffsets) may lower an offset.
type OffsetManager struct {
	mu struct {
		sync.RWMutex
		table   map[topicGroup]map[int32]int64
		version DataVersion
		changes uint64
	}
}

func newOffsetManager() *OffsetManager {
	o := &OffsetManager{}
	o.mu.table = map[topicGroup]map[int32]int64{}
	return o
}

// Query returns the committed offset of one queue, or -1 if none (as Java).
func (o *OffsetManager) Query(group, topic string, queueID int32) int64 {
	o.mu.RLock()
	defer o.mu.RUnlock()
	if q, ok := o.mu.table[topicGroup{topic, group}]; ok {
		if off, ok := q[queueID]; ok {
			return off
		}
	}
	return -1
}

// QueryAll returns a copy of queueId -> offset for (group, topic); nil if none.
func (o *OffsetManager) QueryAll(group, topic string) map[int32]int64 {
	o.mu.RLock()
	defer o.mu.RUnlock()
	if q, ok := o.mu.table[topicGroup{topic, group}]; ok {
		return maps.Clone(q)
	}
	return nil
}

// QueryMinOffsetInAllGroup returns, per queue of topic, the smallest offset
// committed by any group except those listed in filterGroups
// (comma-separated), as Java's queryMinOffsetInAllGroup.
func (o *OffsetManager) QueryMinOffsetInAllGroup(topic, filterGroups string) map[int32]int64 {
	skip := map[string]bool{}
	for _, g := range strings.Split(filterGroups, ",") {
		if g = strings.TrimSpace(g); g != "" {
			skip[g] = true
		}
	}
	out := map[int32]int64{}
	o.mu.RLock()
	defer o.mu.RUnlock()
	for k, q := range o.mu.table {
		if k.topic != topic || skip[k.group] {
			continue
		}
		for id, off := range q {
			if cur, ok := out[id]; !ok || off < cur {
				out[id] = off
			}
		}
	}
	return out
}

// WhichTopicByConsumer returns the topics group has offsets for, sorted.
func (o *OffsetManager) WhichTopicByConsumer(group string) []string {
	o.mu.RLock()
	var out []string
	for k := range o.mu.table {
		if k.group == group {
			out = append(out, k.topic)
		}
	}
	o.mu.RUnlock()
	slices.Sort(out)
	return out
}

// WhichGroupByTopic returns the groups with offsets on topic, sorted.
func (o *OffsetManager) WhichGroupByTopic(topic string) []string {
	o.mu.RLock()
	var out []string
	for k := range o.mu.table {
		if k.topic == topic {
			out = append(out, k.group)
		}
	}
	o.mu.RUnlock()
	slices.Sort(out)
	return out
}

// Table returns a copy of the whole table keyed "topic@group".
func (o *OffsetManager) Table() map[string]map[int32]int64 {
	t, _ := o.all()
	return t
}

// DataVersion is the table's current version.
func (o *OffsetManager) DataVersion() DataVersion {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.mu.version
}

func (o *OffsetManager) all() (map[string]map[int32]int64, DataVersion) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	out := make(map[string]map[int32]int64, len(o.mu.table))
	for k, q := range o.mu.table {
		out[k.topic+TopicGroupSeparator+k.group] = maps.Clone(q)
	}
	return out, o.mu.version
}

// Encode returns consumerOffset.json / the GET_ALL_CONSUMER_OFFSET body:
// {"dataVersion":{...},"offsetTable":{"topic@group":{0:12,1:5}}} with the
// unquoted integer keys fastjson writes.
func (o *OffsetManager) Encode(pretty bool) []byte {
	t, dv := o.all()
	return encodeOffsets(t, dv, 0, pretty)
}

func (o *OffsetManager) snapshot(index int64) ([]byte, uint64) {
	o.mu.RLock()
	changes := o.mu.changes
	o.mu.RUnlock()
	t, dv := o.all() // a later change between the two reads only makes the file newer than changes says
	return encodeOffsets(t, dv, index, true), changes
}

func (o *OffsetManager) changes() uint64 {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.mu.changes
}

func encodeOffsets(t map[string]map[int32]int64, dv DataVersion, index int64, pretty bool) []byte {
	nl, ind := "\n", "\t"
	if !pretty {
		nl, ind = "", ""
	}
	var w intTableWriter
	w.b.WriteString("{" + nl + ind + `"dataVersion":`)
	if pretty {
		w.dataVersion(dv, "\t")
	} else {
		w.b.WriteString(`{"counter":` + itoa(dv.Counter) + `,"stateVersion":` + itoa(dv.StateVersion) + `,"timestamp":` + itoa(dv.Timestamp) + "}")
	}
	w.b.WriteString("," + nl + ind + `"offsetTable":{`)
	keys := slices.Sorted(maps.Keys(t))
	for i, k := range keys {
		if i > 0 {
			w.b.WriteByte(',')
		}
		w.b.WriteString(nl + ind + ind)
		w.str(k)
		w.b.WriteByte(':')
		w.intMap(t[k])
	}
	if len(keys) > 0 {
		w.b.WriteString(nl + ind)
	}
	w.b.WriteString("}")
	if index > 0 {
		w.b.WriteString("," + nl + ind + `"rmqdAppliedIndex":` + itoa(index))
	}
	w.b.WriteString(nl + "}")
	return w.b.Bytes()
}

// offsetsFile is consumerOffset.json as read.
type offsetsFile struct {
	DataVersion  DataVersion                `json:"dataVersion"`
	OffsetTable  map[string]map[int32]int64 `json:"offsetTable"`
	AppliedIndex int64                      `json:"rmqdAppliedIndex"`
}

func decodeOffsets(data []byte) (offsetsFile, error) {
	var f offsetsFile
	err := decodeFastjson(data, &f)
	return f, err
}

func (o *OffsetManager) restore(f offsetsFile) {
	t := make(map[topicGroup]map[int32]int64, len(f.OffsetTable))
	for k, q := range f.OffsetTable {
		topic, group, ok := strings.Cut(k, TopicGroupSeparator)
		if !ok {
			continue // Java skips malformed keys too
		}
		if q == nil {
			q = map[int32]int64{}
		}
		t[topicGroup{topic, group}] = q
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.mu.table = t
	o.mu.version = f.DataVersion
}

// applyCommit raises offsets; entries below the stored offset are ignored.
func (o *OffsetManager) applyCommit(group string, entries []QueueOffset, ts int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	changed := false
	for _, e := range entries {
		k := topicGroup{e.Topic, group}
		q, ok := o.mu.table[k]
		if !ok {
			q = map[int32]int64{}
			o.mu.table[k] = q
		}
		if cur, ok := q[e.QueueID]; !ok || e.Offset > cur {
			q[e.QueueID] = e.Offset
			changed = true
		}
	}
	if changed {
		o.mu.version.next(ts)
		o.mu.changes++
	}
}

// applyReset sets offsets, lower or higher.
func (o *OffsetManager) applyReset(group string, entries []QueueOffset, ts int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, e := range entries {
		k := topicGroup{e.Topic, group}
		q, ok := o.mu.table[k]
		if !ok {
			q = map[int32]int64{}
			o.mu.table[k] = q
		}
		q[e.QueueID] = e.Offset
	}
	if len(entries) > 0 {
		o.mu.version.next(ts)
		o.mu.changes++
	}
}

// applyRemove drops (topic, group) entries; an empty topic or group matches all.
func (o *OffsetManager) applyRemove(topic, group string, ts int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	changed := false
	for k := range o.mu.table {
		if (topic == "" || k.topic == topic) && (group == "" || k.group == group) {
			delete(o.mu.table, k)
			changed = true
		}
	}
	if changed {
		o.mu.version.next(ts)
		o.mu.changes++
	}
}
