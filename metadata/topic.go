package metadata

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
)

// TopicManager holds the topic table (topics.json). Reads are safe from any
// goroutine; changes go through Metadata (Submit / Apply), never directly.
type TopicManager struct {
	mu struct {
		sync.RWMutex
		table   map[string]TopicConfig
		version DataVersion
		changes uint64 // bumped on every change; the persister compares it
	}
}

func newTopicManager() *TopicManager {
	t := &TopicManager{}
	t.mu.table = map[string]TopicConfig{}
	return t
}

// Get returns a copy of the topic's config.
func (t *TopicManager) Get(name string) (TopicConfig, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	tc, ok := t.mu.table[name]
	if !ok {
		return TopicConfig{}, false
	}
	return tc.Clone(), true
}

// GetWithoutAttributes is Get leaving Attributes nil: for the send path,
// which reads none of them and runs for every message (copying the map
// was 4% of the DLedger leader's allocations in the issue 8 profiles).
func (t *TopicManager) GetWithoutAttributes(name string) (TopicConfig, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	tc, ok := t.mu.table[name]
	tc.Attributes = nil
	return tc, ok
}

// Contains reports whether the topic exists.
func (t *TopicManager) Contains(name string) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	_, ok := t.mu.table[name]
	return ok
}

// Len is the number of topics.
func (t *TopicManager) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.mu.table)
}

// Names returns the topic names, sorted.
func (t *TopicManager) Names() []string {
	t.mu.RLock()
	names := make([]string, 0, len(t.mu.table))
	for n := range t.mu.table {
		names = append(names, n)
	}
	t.mu.RUnlock()
	slices.Sort(names)
	return names
}

// All returns a deep copy of the table and its data version, taken atomically.
func (t *TopicManager) All() (map[string]TopicConfig, DataVersion) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make(map[string]TopicConfig, len(t.mu.table))
	for k, v := range t.mu.table {
		out[k] = v.Clone()
	}
	return out, t.mu.version
}

// DataVersion is the table's current version (sent with REGISTER_BROKER).
func (t *TopicManager) DataVersion() DataVersion {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.mu.version
}

// topicsFile is topics.json (Java TopicConfigSerializeWrapper).
type topicsFile struct {
	DataVersion      DataVersion            `json:"dataVersion"`
	TopicConfigTable map[string]TopicConfig `json:"topicConfigTable"`
	AppliedIndex     int64                  `json:"rmqdAppliedIndex,omitempty"`
}

// Encode returns the table as topics.json / the GET_ALL_TOPIC_CONFIG body
// ({"dataVersion":{...},"topicConfigTable":{...}}), tab-indented if pretty.
func (t *TopicManager) Encode(pretty bool) []byte {
	table, dv := t.All()
	return encodeTopics(topicsFile{DataVersion: dv, TopicConfigTable: table}, pretty)
}

func encodeTopics(f topicsFile, pretty bool) []byte {
	if pretty {
		return fastjsonIndent(f)
	}
	b, _ := json.Marshal(f)
	return b
}

func (t *TopicManager) snapshot(index int64) ([]byte, uint64) {
	t.mu.RLock()
	f := topicsFile{DataVersion: t.mu.version, TopicConfigTable: make(map[string]TopicConfig, len(t.mu.table)), AppliedIndex: index}
	for k, v := range t.mu.table {
		f.TopicConfigTable[k] = v // values are never mutated in place; encoding outside the lock is safe
	}
	changes := t.mu.changes
	t.mu.RUnlock()
	return encodeTopics(f, true), changes
}

func (t *TopicManager) changes() uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.mu.changes
}

// decodeTopics reads topics.json. Each entry starts from Java's defaults
// (NewTopicConfig with 16 queues), so fields an older broker did not write
// keep Java's default values.
func decodeTopics(data []byte) (topicsFile, error) {
	var raw struct {
		DataVersion      DataVersion                `json:"dataVersion"`
		TopicConfigTable map[string]json.RawMessage `json:"topicConfigTable"`
		AppliedIndex     int64                      `json:"rmqdAppliedIndex"`
	}
	if err := decodeFastjson(data, &raw); err != nil {
		return topicsFile{}, err
	}
	f := topicsFile{DataVersion: raw.DataVersion, AppliedIndex: raw.AppliedIndex, TopicConfigTable: make(map[string]TopicConfig, len(raw.TopicConfigTable))}
	for k, r := range raw.TopicConfigTable {
		v := NewTopicConfig(k, DefaultTopicQueueNums)
		if err := json.Unmarshal(r, &v); err != nil {
			return topicsFile{}, fmt.Errorf("topic %q: %w", k, err)
		}
		v.normalize()
		if v.TopicName == "" {
			v.TopicName = k
		}
		f.TopicConfigTable[k] = v
	}
	return f, nil
}

func (t *TopicManager) restore(f topicsFile) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mu.table = f.TopicConfigTable
	if t.mu.table == nil {
		t.mu.table = map[string]TopicConfig{}
	}
	t.mu.version = f.DataVersion
}

func (t *TopicManager) applyPut(tc TopicConfig, ts int64) {
	tc = tc.Clone()
	tc.normalize()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mu.table[tc.TopicName] = tc
	t.mu.version.next(ts)
	t.mu.changes++
}

// putIfAbsent is for the system topics created at start (local, not an Op).
func (t *TopicManager) putIfAbsent(tc TopicConfig, ts int64) bool {
	tc.normalize()
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.mu.table[tc.TopicName]; ok {
		return false
	}
	t.mu.table[tc.TopicName] = tc
	t.mu.version.next(ts)
	t.mu.changes++
	return true
}

func (t *TopicManager) applyDelete(name string, ts int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.mu.table[name]; !ok {
		return
	}
	delete(t.mu.table, name)
	t.mu.version.next(ts)
	t.mu.changes++
}
