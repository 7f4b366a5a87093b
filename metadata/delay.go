package metadata

import (
	"maps"
	"strconv"
	"sync"
)

// DelayOffsetManager holds the scheduling progress of each delay level
// (delayOffset.json): level -> next offset of SCHEDULE_TOPIC_XXXX queue
// level-1. Like consumer offsets it only moves forward on commit.
type DelayOffsetManager struct {
	mu struct {
		sync.RWMutex
		table   map[int32]int64
		version DataVersion
		changes uint64
	}
}

func newDelayOffsetManager() *DelayOffsetManager {
	d := &DelayOffsetManager{}
	d.mu.table = map[int32]int64{}
	return d
}

// Get returns the offset of a delay level, or 0 if none (Java starts at 0).
func (d *DelayOffsetManager) Get(level int32) int64 {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.mu.table[level]
}

// Table returns a copy of level -> offset.
func (d *DelayOffsetManager) Table() map[int32]int64 {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return maps.Clone(d.mu.table)
}

// DataVersion is the table's current version.
func (d *DelayOffsetManager) DataVersion() DataVersion {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.mu.version
}

// Encode returns delayOffset.json / the GET_ALL_DELAY_OFFSET body:
// {"dataVersion":{...},"offsetTable":{1:0,2:15}}.
func (d *DelayOffsetManager) Encode(pretty bool) []byte {
	b, _ := d.encode(0, pretty)
	return b
}

func (d *DelayOffsetManager) encode(index int64, pretty bool) ([]byte, uint64) {
	d.mu.RLock()
	t := maps.Clone(d.mu.table)
	dv := d.mu.version
	changes := d.mu.changes
	d.mu.RUnlock()
	var w intTableWriter
	if pretty {
		w.b.WriteString("{\n\t\"dataVersion\":")
		w.dataVersion(dv, "\t")
		w.b.WriteString(",\n\t\"offsetTable\":")
		w.intMap(t)
		if index > 0 {
			w.b.WriteString(",\n\t\"rmqdAppliedIndex\":" + itoa(index))
		}
		w.b.WriteString("\n}")
	} else {
		w.b.WriteString(`{"dataVersion":{"counter":` + itoa(dv.Counter) + `,"stateVersion":` + itoa(dv.StateVersion) + `,"timestamp":` + itoa(dv.Timestamp) + `},"offsetTable":`)
		w.intMap(t)
		w.b.WriteString("}")
	}
	return w.b.Bytes(), changes
}

func (d *DelayOffsetManager) snapshot(index int64) ([]byte, uint64) { return d.encode(index, true) }

func (d *DelayOffsetManager) changes() uint64 {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.mu.changes
}

type delayFile struct {
	DataVersion  DataVersion     `json:"dataVersion"`
	OffsetTable  map[int32]int64 `json:"offsetTable"`
	AppliedIndex int64           `json:"rmqdAppliedIndex"`
}

func decodeDelay(data []byte) (delayFile, error) {
	var f delayFile
	err := decodeFastjson(data, &f)
	return f, err
}

func (d *DelayOffsetManager) restore(f delayFile) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mu.table = f.OffsetTable
	if d.mu.table == nil {
		d.mu.table = map[int32]int64{}
	}
	d.mu.version = f.DataVersion
}

func (d *DelayOffsetManager) apply(entries []QueueOffset, reset bool, ts int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	changed := false
	for _, e := range entries {
		if cur, ok := d.mu.table[e.QueueID]; reset || !ok || e.Offset > cur {
			d.mu.table[e.QueueID] = e.Offset
			changed = true
		}
	}
	if changed {
		d.mu.version.next(ts)
		d.mu.changes++
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
