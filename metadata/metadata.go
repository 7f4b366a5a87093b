package metadata

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/rmqd/rmqd/internal/vfs"
)

// Options configure Open.
type Options struct {
	// Dir is <storePathRootDir>/config, where the JSON files live. Required.
	Dir string
	// FS defaults to vfs.Default.
	FS vfs.FS
	// Logger defaults to a no-op logger.
	Logger *zap.Logger
	// Now defaults to time.Now; it stamps ops whose Time is zero.
	Now func() time.Time
}

// Proposer carries an op to wherever it must be agreed on and returns once
// it has been applied locally (or failed). See SetProposer.
type Proposer func(op Op) error

// Metadata is the broker's metadata: topics, subscription groups, consumer
// offsets and delay offsets, with their JSON snapshots under Options.Dir.
//
// Each table has its own lock; file I/O never happens under a table lock.
type Metadata struct {
	Topics  *TopicManager
	Groups  *GroupManager
	Offsets *OffsetManager
	Delay   *DelayOffsetManager

	fs     vfs.FS
	dir    string
	log    *zap.Logger
	now    func() time.Time
	files  [numFiles]*snapshotFile
	loaded int64 // lowest applied index recorded in the loaded files

	applied  atomic.Int64
	proposer atomic.Pointer[Proposer]
	covered  atomic.Pointer[func() int64] // see SetCoverage
	coverAt  atomic.Int64                 // unix ms of the last coverage advance

	runMu  sync.Mutex // guards stopCh/doneCh
	stopCh chan struct{}
	doneCh chan struct{}
}

// Open loads the four files from opts.Dir (creating the directory), falling
// back to each file's .bak copy when the file is missing, empty or
// unparsable. A missing file and missing .bak is an empty table (first
// start); a corrupt file whose .bak is also unusable is an error, so that a
// broker never starts with silently emptied metadata.
func Open(opts Options) (*Metadata, error) {
	if opts.Dir == "" {
		return nil, errors.New("metadata: Options.Dir is empty")
	}
	if opts.FS == nil {
		opts.FS = vfs.Default
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m := &Metadata{
		Topics:  newTopicManager(),
		Groups:  newGroupManager(),
		Offsets: newOffsetManager(),
		Delay:   newDelayOffsetManager(),
		fs:      opts.FS,
		dir:     opts.Dir,
		log:     opts.Logger,
		now:     opts.Now,
	}
	if err := m.fs.MkdirAll(m.dir); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	if err := m.load(); err != nil {
		return nil, err
	}
	m.applied.Store(m.loaded)
	return m, nil
}

// Dir is the directory holding the JSON files.
func (m *Metadata) Dir() string { return m.dir }

// SetProposer routes Submit through p (for example the replicated log).
// p must return only after the op has been applied here through ApplyAt, or
// with an error. With no proposer (the default, and after SetProposer(nil)),
// Submit applies locally and persists topics and groups at once, as a
// classic Java broker does.
func (m *Metadata) SetProposer(p Proposer) {
	if p == nil {
		m.proposer.Store(nil)
		return
	}
	m.proposer.Store(&p)
}

// Submit validates op, stamps its Time and then proposes it (see
// SetProposer) or applies it locally.
func (m *Metadata) Submit(op Op) error {
	if op.Time == 0 {
		op.Time = m.now().UnixMilli()
	}
	if err := op.Validate(); err != nil {
		return err
	}
	if p := m.proposer.Load(); p != nil {
		return (*p)(op)
	}
	if err := m.Apply(op); err != nil {
		return err
	}
	var which int
	switch op.Kind {
	case OpPutTopic, OpDeleteTopic:
		which = fileTopics
	case OpPutGroup, OpDeleteGroup:
		which = fileGroups
	default:
		return nil // offsets are persisted periodically (flushConsumerOffsetInterval)
	}
	if err := m.persistFile(which); err != nil {
		m.log.Warn("metadata persist failed", zap.String("file", m.files[which].name), zap.Error(err))
	}
	return nil
}

// Apply applies op to the in-memory tables. It is deterministic: the same
// ops in the same order give the same tables on every replica.
func (m *Metadata) Apply(op Op) error {
	if err := op.Validate(); err != nil {
		return err
	}
	ts := op.Time
	if ts == 0 {
		ts = m.now().UnixMilli()
	}
	switch op.Kind {
	case OpPutTopic:
		m.Topics.applyPut(*op.TopicConfig, ts)
	case OpDeleteTopic:
		m.Topics.applyDelete(op.Topic, ts)
	case OpPutGroup:
		m.Groups.applyPut(*op.GroupConfig, ts)
	case OpDeleteGroup:
		m.Groups.applyDelete(op.Group, ts)
	case OpCommitOffsets:
		m.Offsets.applyCommit(op.Group, op.Offsets, ts)
	case OpResetOffsets:
		m.Offsets.applyReset(op.Group, op.Offsets, ts)
	case OpRemoveOffsets:
		m.Offsets.applyRemove(op.Topic, op.Group, ts)
	case OpCommitDelayOffsets:
		m.Delay.apply(op.Offsets, false, ts)
	case OpResetDelayOffsets:
		m.Delay.apply(op.Offsets, true, ts)
	}
	return nil
}

// ApplyAt applies op taken from position index of the replicated log and
// records index as applied. Call it from one goroutine, in log order. An
// entry at or below AppliedIndex is applied again (ops are idempotent), so
// replaying from SnapshotIndex()+1 after a restart is safe.
func (m *Metadata) ApplyAt(index int64, op Op) error {
	err := m.Apply(op)
	m.advanceApplied(index)
	return err
}

func (m *Metadata) advanceApplied(index int64) {
	for {
		cur := m.applied.Load()
		if index <= cur || m.applied.CompareAndSwap(cur, index) {
			return
		}
	}
}

// SetCoverage gives Persist the log position below which every record has
// been handed to ApplyAt (the store's dispatched offset). Snapshots then
// record it even when no metadata op came near it, so a restart replays
// from there and log retention may drop what lies below (PersistedIndex).
// It is taken at most once per coverageInterval: retention works in hours,
// and rewriting the four files on every Persist of a busy broker would be
// fsyncs for nothing.
func (m *Metadata) SetCoverage(fn func() int64) { m.covered.Store(&fn) }

const coverageInterval = time.Minute

func (m *Metadata) advanceCoverage() {
	fn := m.covered.Load()
	if fn == nil {
		return
	}
	now := m.now().UnixMilli()
	if last := m.coverAt.Load(); last != 0 && now-last < coverageInterval.Milliseconds() {
		return
	}
	m.coverAt.Store(now)
	m.advanceApplied((*fn)())
}

// PersistedIndex is the lowest applied index in the files as last written
// (or loaded): the metadata on disk holds every op below it, so the log
// below it is no longer needed to restore the tables.
func (m *Metadata) PersistedIndex() int64 {
	lo := int64(-1)
	for _, sf := range m.files {
		sf.mu.Lock()
		if lo < 0 || sf.index < lo {
			lo = sf.index
		}
		sf.mu.Unlock()
	}
	return max(lo, 0)
}

// AppliedIndex is the highest log index given to ApplyAt (or the loaded
// snapshot index).
func (m *Metadata) AppliedIndex() int64 { return m.applied.Load() }

// SnapshotIndex is the lowest log index recorded in the files loaded by
// Open: every op at or below it is contained in all four tables. Zero when
// the files carry no index (classic mode or Java-written files).
func (m *Metadata) SnapshotIndex() int64 { return m.loaded }

// PutTopic creates or replaces a topic.
func (m *Metadata) PutTopic(tc TopicConfig) error {
	return m.Submit(Op{Kind: OpPutTopic, TopicConfig: &tc})
}

// DeleteTopic removes a topic (its offsets stay; see RemoveOffsets).
func (m *Metadata) DeleteTopic(topic string) error {
	return m.Submit(Op{Kind: OpDeleteTopic, Topic: topic})
}

// PutGroup creates or replaces a subscription group.
func (m *Metadata) PutGroup(g SubscriptionGroupConfig) error {
	return m.Submit(Op{Kind: OpPutGroup, GroupConfig: &g})
}

// DeleteGroup removes a subscription group.
func (m *Metadata) DeleteGroup(group string) error {
	return m.Submit(Op{Kind: OpDeleteGroup, Group: group})
}

// CommitOffset raises group's offset of one queue; a lower offset is ignored.
func (m *Metadata) CommitOffset(group, topic string, queueID int32, offset int64) error {
	return m.Submit(Op{Kind: OpCommitOffsets, Group: group, Offsets: []QueueOffset{{Topic: topic, QueueID: queueID, Offset: offset}}})
}

// CommitOffsets raises several offsets of one group in one op.
func (m *Metadata) CommitOffsets(group string, offsets []QueueOffset) error {
	if len(offsets) == 0 {
		return nil
	}
	return m.Submit(Op{Kind: OpCommitOffsets, Group: group, Offsets: offsets})
}

// ResetOffsets sets group's offsets of topic to the given values, lower or
// higher (mqadmin resetOffsetByTime, RESET_CONSUMER_OFFSET).
func (m *Metadata) ResetOffsets(group, topic string, offsets map[int32]int64) error {
	entries := make([]QueueOffset, 0, len(offsets))
	for q, off := range offsets {
		entries = append(entries, QueueOffset{Topic: topic, QueueID: q, Offset: off})
	}
	sortOffsets(entries)
	return m.Submit(Op{Kind: OpResetOffsets, Group: group, Offsets: entries})
}

// CloneOffsets copies srcGroup's offsets of topic to dstGroup (a reset of
// dstGroup), as Java's cloneOffset.
func (m *Metadata) CloneOffsets(srcGroup, dstGroup, topic string) error {
	src := m.Offsets.QueryAll(srcGroup, topic)
	if len(src) == 0 {
		return nil
	}
	return m.ResetOffsets(dstGroup, topic, src)
}

// RemoveOffsets drops consumer offsets of (topic, group); "" matches all.
func (m *Metadata) RemoveOffsets(topic, group string) error {
	return m.Submit(Op{Kind: OpRemoveOffsets, Topic: topic, Group: group})
}

// CommitDelayOffset raises the progress of a delay level (1-based).
func (m *Metadata) CommitDelayOffset(level int32, offset int64) error {
	return m.Submit(Op{Kind: OpCommitDelayOffsets, Offsets: []QueueOffset{{QueueID: level, Offset: offset}}})
}

// ResetDelayOffset sets the progress of a delay level, lower or higher.
func (m *Metadata) ResetDelayOffset(level int32, offset int64) error {
	return m.Submit(Op{Kind: OpResetDelayOffsets, Offsets: []QueueOffset{{QueueID: level, Offset: offset}}})
}

func sortOffsets(e []QueueOffset) {
	// sorted so that the op bytes are the same for the same map
	slices.SortFunc(e, func(a, b QueueOffset) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return cmp.Compare(a.QueueID, b.QueueID)
	})
}
