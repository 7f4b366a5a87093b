package metadata

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
)

// GroupManager holds the subscription group table (subscriptionGroup.json).
// Reads are safe from any goroutine; changes go through Metadata.
type GroupManager struct {
	mu struct {
		sync.RWMutex
		table     map[string]SubscriptionGroupConfig
		forbidden map[string]map[string]int32 // group -> topic -> forbidden bits; kept for file compatibility
		version   DataVersion
		changes   uint64
	}
}

func newGroupManager() *GroupManager {
	g := &GroupManager{}
	g.mu.table = map[string]SubscriptionGroupConfig{}
	g.mu.forbidden = map[string]map[string]int32{}
	return g
}

// Get returns a copy of the group's config.
func (g *GroupManager) Get(name string) (SubscriptionGroupConfig, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	c, ok := g.mu.table[name]
	if !ok {
		return SubscriptionGroupConfig{}, false
	}
	return c.Clone(), true
}

// Contains reports whether the group exists.
func (g *GroupManager) Contains(name string) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	_, ok := g.mu.table[name]
	return ok
}

// Names returns the group names, sorted.
func (g *GroupManager) Names() []string {
	g.mu.RLock()
	names := make([]string, 0, len(g.mu.table))
	for n := range g.mu.table {
		names = append(names, n)
	}
	g.mu.RUnlock()
	slices.Sort(names)
	return names
}

// All returns a deep copy of the table and its data version.
func (g *GroupManager) All() (map[string]SubscriptionGroupConfig, DataVersion) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	out := make(map[string]SubscriptionGroupConfig, len(g.mu.table))
	for k, v := range g.mu.table {
		out[k] = v.Clone()
	}
	return out, g.mu.version
}

// DataVersion is the table's current version.
func (g *GroupManager) DataVersion() DataVersion {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.mu.version
}

// groupsFile is subscriptionGroup.json (Java SubscriptionGroupManager).
type groupsFile struct {
	DataVersion            DataVersion                        `json:"dataVersion"`
	ForbiddenTable         map[string]map[string]int32        `json:"forbiddenTable"`
	SubscriptionGroupTable map[string]SubscriptionGroupConfig `json:"subscriptionGroupTable"`
	AppliedIndex           int64                              `json:"rmqdAppliedIndex,omitempty"`
}

// Encode returns the table as subscriptionGroup.json / the
// GET_ALL_SUBSCRIPTIONGROUP_CONFIG body, tab-indented if pretty.
func (g *GroupManager) Encode(pretty bool) []byte {
	f, _ := g.file(0)
	return encodeGroups(f, pretty)
}

func (g *GroupManager) file(index int64) (groupsFile, uint64) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	f := groupsFile{DataVersion: g.mu.version, ForbiddenTable: make(map[string]map[string]int32, len(g.mu.forbidden)),
		SubscriptionGroupTable: make(map[string]SubscriptionGroupConfig, len(g.mu.table)), AppliedIndex: index}
	for k, v := range g.mu.table {
		f.SubscriptionGroupTable[k] = v // never mutated in place
	}
	for k, v := range g.mu.forbidden {
		f.ForbiddenTable[k] = maps.Clone(v)
	}
	return f, g.mu.changes
}

func encodeGroups(f groupsFile, pretty bool) []byte {
	if pretty {
		return fastjsonIndent(f)
	}
	b, _ := json.Marshal(f)
	return b
}

func (g *GroupManager) snapshot(index int64) ([]byte, uint64) {
	f, changes := g.file(index)
	return encodeGroups(f, true), changes
}

func (g *GroupManager) changes() uint64 {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.mu.changes
}

// decodeGroups reads subscriptionGroup.json. Each entry starts from Java's
// defaults (NewSubscriptionGroupConfig), so fields an older broker did not
// write (consumeTimeoutMinute, groupRetryPolicy, ...) keep Java's defaults.
func decodeGroups(data []byte) (groupsFile, error) {
	var raw struct {
		DataVersion            DataVersion                 `json:"dataVersion"`
		ForbiddenTable         map[string]map[string]int32 `json:"forbiddenTable"`
		SubscriptionGroupTable map[string]json.RawMessage  `json:"subscriptionGroupTable"`
		AppliedIndex           int64                       `json:"rmqdAppliedIndex"`
	}
	if err := decodeFastjson(data, &raw); err != nil {
		return groupsFile{}, err
	}
	f := groupsFile{DataVersion: raw.DataVersion, ForbiddenTable: raw.ForbiddenTable, AppliedIndex: raw.AppliedIndex,
		SubscriptionGroupTable: make(map[string]SubscriptionGroupConfig, len(raw.SubscriptionGroupTable))}
	for k, r := range raw.SubscriptionGroupTable {
		v := NewSubscriptionGroupConfig(k)
		if err := json.Unmarshal(r, &v); err != nil {
			return groupsFile{}, fmt.Errorf("group %q: %w", k, err)
		}
		v.normalize()
		if v.GroupName == "" {
			v.GroupName = k
		}
		f.SubscriptionGroupTable[k] = v
	}
	return f, nil
}

func (g *GroupManager) restore(f groupsFile) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.mu.table = f.SubscriptionGroupTable
	if g.mu.table == nil {
		g.mu.table = map[string]SubscriptionGroupConfig{}
	}
	g.mu.forbidden = f.ForbiddenTable
	if g.mu.forbidden == nil {
		g.mu.forbidden = map[string]map[string]int32{}
	}
	g.mu.version = f.DataVersion
}

func (g *GroupManager) applyPut(c SubscriptionGroupConfig, ts int64) {
	c = c.Clone()
	c.normalize()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.mu.table[c.GroupName] = c
	g.mu.version.next(ts)
	g.mu.changes++
}

func (g *GroupManager) putIfAbsent(c SubscriptionGroupConfig, ts int64) bool {
	c.normalize()
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.mu.table[c.GroupName]; ok {
		return false
	}
	g.mu.table[c.GroupName] = c
	g.mu.version.next(ts)
	g.mu.changes++
	return true
}

func (g *GroupManager) applyDelete(name string, ts int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.mu.table[name]
	_, fok := g.mu.forbidden[name]
	if !ok && !fok {
		return
	}
	delete(g.mu.table, name)
	delete(g.mu.forbidden, name)
	g.mu.version.next(ts)
	g.mu.changes++
}
