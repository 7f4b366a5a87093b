package broker

// Replicated metadata (design.md §4). In DLedger mode every metadata change
// — topic and subscription-group create/update/delete, consumer-offset
// commits, delay-level progress, transaction check progress — is a
// metadata.Op carried by a system record of the replicated commitlog:
//
//   - metadata.Submit hands the op to replicatedMeta.propose (installed
//     with metadata.SetProposer). Ops are queued and proposed by one
//     goroutine, several per record when they arrive together (group
//     commit); Submit returns once the record is committed and applied
//     here, so an admin change is answered only after commit.
//   - The store's dispatcher calls onSystemRecord(pos, payload) on every
//     replica in log order (and replays records from
//     metadata.SnapshotIndex() at start-up); each op is applied with
//     metadata.ApplyAt(pos, op).
//   - Consumer-offset commits from clients (UPDATE_CONSUMER_OFFSET, the
//     commit flag of a pull) are answered at once, as Java does: they go to
//     a leader-only in-memory table that is flushed through the log every
//     offsetFlushInterval as one CommitOffsets op per group. Queries on the
//     leader read that table over the applied state. An explicit reset
//     (reset by time, clone, the "stored offset beyond the queue" repair)
//     first drops the buffered entries it covers and is proposed on the
//     same queue, so a stale buffered commit can never land after it.
//     When the replica stops being leader the buffer is dropped (there is
//     nobody to propose it to); a client re-commits its offsets every 5 s.
//   - A follower refuses UPDATE_CONSUMER_OFFSET (the client retries on the
//     master), but the commit flag of a pull it serves (a client whose
//     route still names it master after a failover) cannot be refused:
//     those commits are coalesced and forwarded to the master every
//     offsetFlushInterval (oneway UPDATE_CONSUMER_OFFSET, best effort), or
//     buffered locally if this replica became leader meanwhile.
//
// Payload of a metadata system record:
//
//	byte    sysRecordMetadata (0x01)
//	uvarint n
//	n times: uvarint len, metadata.MarshalOp bytes
//
// Records of another type are skipped (logged): a newer binary may write
// kinds this one does not know.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/rmqd/rmqd/metadata"
)

const (
	// offsetFlushInterval is how often buffered consumer offsets are
	// replicated (design.md §4: 100-500 ms). A failover loses at most this
	// much consumer progress (plus the client's own 5 s persist period for
	// commits that never reached the leader).
	offsetFlushInterval = 200 * time.Millisecond
	// proposeTimeout bounds one system-record proposal plus its local apply.
	proposeTimeout = 10 * time.Second
	// shutdownFlushTimeout bounds the last offset flush of a stopping leader.
	shutdownFlushTimeout = 2 * time.Second
	// maxOpsPerRecord bounds the ops batched into one system record.
	maxOpsPerRecord = 512

	sysRecordMetadata byte = 0x01
)

// errNotLeader is returned for writes on a replica that is not the leader.
var errNotLeader = errors.New("not leader")

// notLeaderError names the leader when known.
type notLeaderError struct{ hint string }

func (e *notLeaderError) Error() string {
	if e.hint == "" {
		return "not leader; leader unknown (election in progress?)"
	}
	return "not leader; leader is " + e.hint
}

func (e *notLeaderError) Is(target error) bool { return target == errNotLeader }

// systemLog is what replicated metadata needs from the replicated store.
type systemLog interface {
	// IsLeader reports whether this replica may append now.
	IsLeader() bool
	// ProposeSystem appends a replicated system record and returns its
	// position once committed.
	ProposeSystem(ctx context.Context, payload []byte) (int64, error)
}

// offsetKey is one queue of one group.
type offsetKey struct {
	group, topic string
	queueID      int32
}

type proposal struct {
	ops     []metadata.Op
	done    chan error // nil: nobody waits (periodic offset flushes)
	offsets bool       // a flush of the offset buffer
}

// replicatedMeta routes metadata changes through the replicated log.
type replicatedMeta struct {
	meta     *metadata.Metadata
	slog     systemLog
	log      *zap.Logger
	hint     func() string // names the leader for errors
	interval time.Duration

	mu struct {
		sync.Mutex
		queue    []*proposal
		pending  map[offsetKey]int64 // client commits not yet handed to the log
		inflight map[offsetKey]int64 // handed to the log, not yet applied
		forward  map[offsetKey]int64 // pull commits served as a follower
		closed   bool
	}
	kick chan struct{}

	applied struct {
		sync.Mutex
		pos int64
		ch  chan struct{} // closed and replaced at every apply
	}

	// Counters (for logs and status).
	records     atomic.Int64 // system records applied
	badRecords  atomic.Int64 // records that did not decode
	flushes     atomic.Int64
	dropped     atomic.Int64 // buffered offsets dropped at step-down
	failedFlush atomic.Int64

	// forward sends pull commits a follower received to the master (set
	// before start; nil drops them).
	forward func(map[offsetKey]int64)

	stopc chan struct{}
	donec chan struct{}
	once  sync.Once
}

func newReplicatedMeta(meta *metadata.Metadata, slog systemLog, log *zap.Logger, hint func() string) *replicatedMeta {
	if log == nil {
		log = zap.NewNop()
	}
	if hint == nil {
		hint = func() string { return "" }
	}
	r := &replicatedMeta{
		meta:     meta,
		slog:     slog,
		log:      log,
		hint:     hint,
		interval: offsetFlushInterval,
		kick:     make(chan struct{}, 1),
		stopc:    make(chan struct{}),
		donec:    make(chan struct{}),
	}
	r.mu.pending = map[offsetKey]int64{}
	r.mu.inflight = map[offsetKey]int64{}
	r.mu.forward = map[offsetKey]int64{}
	r.applied.ch = make(chan struct{})
	r.applied.pos = meta.AppliedIndex()
	return r
}

// start runs the proposal loop until stop.
func (r *replicatedMeta) start() { go r.loop() }

// stop flushes what it still can (when leader), fails queued proposals and
// ends the loop.
func (r *replicatedMeta) stop() {
	r.once.Do(func() {
		close(r.stopc)
		<-r.donec
	})
}

// ---------------------------------------------------------------------------
// Applying (every replica).

// onSystemRecord is the store's system-record handler: it applies the ops
// of one committed record in log order. It is called from one goroutine.
func (r *replicatedMeta) onSystemRecord(pos int64, payload []byte) {
	ops, err := decodeMetadataRecord(payload)
	if err != nil {
		r.badRecords.Add(1)
		r.log.Error("skipping a system record that does not decode; this replica may miss a metadata change",
			zap.Int64("pos", pos), zap.Int("bytes", len(payload)), zap.Error(err))
	}
	for _, op := range ops {
		if err := r.meta.ApplyAt(pos, op); err != nil {
			r.log.Error("applying a metadata op failed", zap.Int64("pos", pos), zap.Stringer("kind", op.Kind), zap.Error(err))
		}
	}
	r.records.Add(1)
	r.applied.Lock()
	if pos > r.applied.pos {
		r.applied.pos = pos
	}
	close(r.applied.ch)
	r.applied.ch = make(chan struct{})
	r.applied.Unlock()
}

// appliedPos is the position of the last system record applied here.
func (r *replicatedMeta) appliedPos() int64 {
	r.applied.Lock()
	defer r.applied.Unlock()
	return r.applied.pos
}

// waitApplied waits until the record at pos has been applied here.
func (r *replicatedMeta) waitApplied(ctx context.Context, pos int64) error {
	for {
		r.applied.Lock()
		if r.applied.pos >= pos {
			r.applied.Unlock()
			return nil
		}
		ch := r.applied.ch
		r.applied.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for the metadata record at %d to be applied: %w", pos, ctx.Err())
		}
	}
}

// ---------------------------------------------------------------------------
// Proposing (leader).

// propose is the metadata.Proposer: it queues op and waits until it is
// committed and applied here.
func (r *replicatedMeta) propose(op metadata.Op) error {
	if !r.slog.IsLeader() {
		return &notLeaderError{hint: r.hint()}
	}
	p := &proposal{ops: []metadata.Op{op}, done: make(chan error, 1)}
	r.mu.Lock()
	if r.mu.closed {
		r.mu.Unlock()
		return errors.New("broker: shutting down")
	}
	switch op.Kind {
	case metadata.OpResetOffsets, metadata.OpRemoveOffsets:
		// An explicit reset wins over buffered commits it covers.
		r.dropBufferedLocked(op)
	}
	r.mu.queue = append(r.mu.queue, p)
	r.mu.Unlock()
	r.wake()
	select {
	case err := <-p.done:
		return err
	case <-time.After(proposeTimeout + time.Second):
		return fmt.Errorf("metadata %s not committed within %s", op.Kind, proposeTimeout)
	}
}

func (r *replicatedMeta) dropBufferedLocked(op metadata.Op) {
	match := func(k offsetKey) bool {
		if op.Kind == metadata.OpRemoveOffsets {
			return (op.Group == "" || k.group == op.Group) && (op.Topic == "" || k.topic == op.Topic)
		}
		if k.group != op.Group {
			return false
		}
		for _, e := range op.Offsets {
			if e.Topic == k.topic && e.QueueID == k.queueID {
				return true
			}
		}
		return false
	}
	for _, m := range []map[offsetKey]int64{r.mu.pending, r.mu.inflight} {
		for k := range m {
			if match(k) {
				delete(m, k)
			}
		}
	}
}

func (r *replicatedMeta) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// commitOffset buffers a client's offset commit (leader only; the caller
// checked). Offsets only move forward here; see resetOffset.
func (r *replicatedMeta) commitOffset(group, topic string, queueID int32, offset int64) {
	k := offsetKey{group, topic, queueID}
	r.mu.Lock()
	if cur, ok := r.mu.pending[k]; !ok || offset > cur {
		r.mu.pending[k] = offset
	}
	r.mu.Unlock()
}

// forwardOffset remembers a pull's offset commit served as a follower,
// for the master (see flushForward).
func (r *replicatedMeta) forwardOffset(group, topic string, queueID int32, offset int64) {
	k := offsetKey{group, topic, queueID}
	r.mu.Lock()
	if cur, ok := r.mu.forward[k]; !ok || offset > cur {
		r.mu.forward[k] = offset
	}
	r.mu.Unlock()
}

// flushForward hands the forwarded commits to the master, or buffers them
// when this replica leads by now.
func (r *replicatedMeta) flushForward() {
	r.mu.Lock()
	if len(r.mu.forward) == 0 {
		r.mu.Unlock()
		return
	}
	m := r.mu.forward
	r.mu.forward = map[offsetKey]int64{}
	r.mu.Unlock()
	if r.slog.IsLeader() {
		for k, off := range m {
			r.commitOffset(k.group, k.topic, k.queueID, off)
		}
		return
	}
	if r.forward != nil {
		r.forward(m)
	}
}

// queryOffset is the newest committed offset of a queue: the buffered one
// on the leader, else the applied one; -1 when none.
func (r *replicatedMeta) queryOffset(group, topic string, queueID int32) int64 {
	off := r.meta.Offsets.Query(group, topic, queueID)
	k := offsetKey{group, topic, queueID}
	r.mu.Lock()
	if v, ok := r.mu.inflight[k]; ok && v > off {
		off = v
	}
	if v, ok := r.mu.pending[k]; ok && v > off {
		off = v
	}
	r.mu.Unlock()
	return off
}

// pendingOffsets counts buffered offsets not yet applied.
func (r *replicatedMeta) pendingOffsets() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.mu.pending) + len(r.mu.inflight)
}

// dropBuffer discards the leader-only offset buffer (after stepping down)
// and returns how many entries it held.
func (r *replicatedMeta) dropBuffer() int {
	r.mu.Lock()
	n := len(r.mu.pending)
	clear(r.mu.pending)
	r.mu.Unlock()
	if n > 0 {
		r.dropped.Add(int64(n))
	}
	return n
}

// flushOffsets replicates the buffered offsets now and waits (bounded by
// ctx) until they are applied. Used by tests and before stepping down
// when the store still accepts proposals.
func (r *replicatedMeta) flushOffsets(ctx context.Context) error {
	p := r.takeOffsetsProposal()
	if p == nil {
		return nil
	}
	p.done = make(chan error, 1)
	r.mu.Lock()
	r.mu.queue = append(r.mu.queue, p)
	r.mu.Unlock()
	r.wake()
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// takeOffsetsProposal moves the pending buffer to inflight and returns it
// as one CommitOffsets op per group (nil when empty).
func (r *replicatedMeta) takeOffsetsProposal() *proposal {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.mu.pending) == 0 {
		return nil
	}
	byGroup := map[string][]metadata.QueueOffset{}
	for k, off := range r.mu.pending {
		byGroup[k.group] = append(byGroup[k.group], metadata.QueueOffset{Topic: k.topic, QueueID: k.queueID, Offset: off})
		if cur, ok := r.mu.inflight[k]; !ok || off > cur {
			r.mu.inflight[k] = off
		}
	}
	clear(r.mu.pending)
	groups := make([]string, 0, len(byGroup))
	for g := range byGroup {
		groups = append(groups, g)
	}
	slices.Sort(groups)
	p := &proposal{offsets: true}
	for _, g := range groups {
		e := byGroup[g]
		slices.SortFunc(e, func(a, b metadata.QueueOffset) int {
			if c := strings.Compare(a.Topic, b.Topic); c != 0 {
				return c
			}
			return int(a.QueueID) - int(b.QueueID)
		})
		p.ops = append(p.ops, metadata.Op{Kind: metadata.OpCommitOffsets, Group: g, Offsets: e})
	}
	return p
}

// clearInflight forgets the inflight entries of ops (applied or failed).
func (r *replicatedMeta) clearInflight(ops []metadata.Op) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, op := range ops {
		if op.Kind != metadata.OpCommitOffsets {
			continue
		}
		for _, e := range op.Offsets {
			k := offsetKey{op.Group, e.Topic, e.QueueID}
			if v, ok := r.mu.inflight[k]; ok && v <= e.Offset {
				delete(r.mu.inflight, k)
			}
		}
	}
}

func (r *replicatedMeta) loop() {
	defer close(r.donec)
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		flush := false
		select {
		case <-r.stopc:
			r.shutdown()
			return
		case <-r.kick:
		case <-t.C:
			flush = true
		}
		if flush {
			r.flushForward()
			if p := r.takeOffsetsProposal(); p != nil {
				r.mu.Lock()
				r.mu.queue = append(r.mu.queue, p)
				r.mu.Unlock()
			}
		}
		r.drain()
	}
}

// shutdown flushes buffered offsets once if still leader and fails what is
// left.
func (r *replicatedMeta) shutdown() {
	if r.slog.IsLeader() {
		if p := r.takeOffsetsProposal(); p != nil {
			r.mu.Lock()
			r.mu.queue = append(r.mu.queue, p)
			r.mu.Unlock()
		}
		r.drainWithin(shutdownFlushTimeout) // peers may be stopping too
	}
	r.mu.Lock()
	r.mu.closed = true
	q := r.mu.queue
	r.mu.queue = nil
	r.mu.Unlock()
	for _, p := range q {
		r.finish(p, errors.New("broker: shutting down"))
	}
}

// drain proposes everything queued, in order, batching up to
// maxOpsPerRecord ops per record.
func (r *replicatedMeta) drain() { r.drainWithin(proposeTimeout) }

func (r *replicatedMeta) drainWithin(timeout time.Duration) {
	for {
		r.mu.Lock()
		if len(r.mu.queue) == 0 {
			r.mu.Unlock()
			return
		}
		var batch []*proposal
		n := 0
		for len(r.mu.queue) > 0 && (n == 0 || n+len(r.mu.queue[0].ops) <= maxOpsPerRecord) {
			p := r.mu.queue[0]
			r.mu.queue = r.mu.queue[1:]
			batch = append(batch, p)
			n += len(p.ops)
		}
		r.mu.Unlock()
		err := r.proposeBatch(batch, timeout)
		for _, p := range batch {
			r.finish(p, err)
		}
	}
}

func (r *replicatedMeta) finish(p *proposal, err error) {
	if p.offsets {
		r.clearInflight(p.ops)
		if err != nil {
			r.failedFlush.Add(1)
			if !errors.Is(err, errNotLeader) {
				r.log.Warn("replicating consumer offsets failed; clients commit them again", zap.Int("groups", len(p.ops)), zap.Error(err))
			}
		} else {
			r.flushes.Add(1)
		}
	}
	if p.done != nil {
		p.done <- err
	}
}

func (r *replicatedMeta) proposeBatch(batch []*proposal, timeout time.Duration) error {
	var ops []metadata.Op
	for _, p := range batch {
		ops = append(ops, p.ops...)
	}
	if len(ops) == 0 {
		return nil
	}
	if !r.slog.IsLeader() {
		return &notLeaderError{hint: r.hint()}
	}
	payload, err := encodeMetadataRecord(ops)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	pos, err := r.slog.ProposeSystem(ctx, payload)
	if err != nil {
		if !r.slog.IsLeader() {
			return &notLeaderError{hint: r.hint()}
		}
		return fmt.Errorf("replicating metadata: %w", err)
	}
	return r.waitApplied(ctx, pos)
}

// ---------------------------------------------------------------------------
// Record encoding.

func encodeMetadataRecord(ops []metadata.Op) ([]byte, error) {
	b := make([]byte, 0, 64*len(ops))
	b = append(b, sysRecordMetadata)
	b = binary.AppendUvarint(b, uint64(len(ops)))
	for _, op := range ops {
		data, err := metadata.MarshalOp(op)
		if err != nil {
			return nil, err
		}
		b = binary.AppendUvarint(b, uint64(len(data)))
		b = append(b, data...)
	}
	return b, nil
}

// decodeMetadataRecord returns the ops of a record. Ops that do not decode
// (a kind a newer binary wrote) are skipped and reported in the error; the
// others are returned.
func decodeMetadataRecord(p []byte) ([]metadata.Op, error) {
	if len(p) == 0 || p[0] != sysRecordMetadata {
		if len(p) == 0 {
			return nil, errors.New("empty system record")
		}
		return nil, fmt.Errorf("unknown system record type 0x%02x", p[0])
	}
	p = p[1:]
	n, k := binary.Uvarint(p)
	if k <= 0 || n > uint64(len(p)) {
		return nil, errors.New("bad op count")
	}
	p = p[k:]
	ops := make([]metadata.Op, 0, n)
	var errs []error
	for i := uint64(0); i < n; i++ {
		l, k := binary.Uvarint(p)
		if k <= 0 || l > uint64(len(p)-k) {
			return ops, fmt.Errorf("op %d: bad length", i)
		}
		op, err := metadata.UnmarshalOp(p[k : k+int(l)])
		if err != nil {
			errs = append(errs, fmt.Errorf("op %d: %w", i, err)) // skip it, apply the others
		} else {
			ops = append(ops, op)
		}
		p = p[k+int(l):]
	}
	if len(p) != 0 {
		errs = append(errs, fmt.Errorf("%d trailing bytes", len(p)))
	}
	return ops, errors.Join(errs...)
}

// importState replicates this replica's whole metadata (topics, groups,
// consumer and delay offsets) as ops and waits until they are applied.
// The store runs it on the first writable leader of a group upgraded in
// place (store.SetUpgradeImport): the classic config files every upgraded
// replica loaded as its snapshot become the group's replicated metadata,
// so a replica that started without them gets them as well. Where a
// replica holds the same already, applying changes nothing (equal configs
// put again; offset commits only move forward).
func (r *replicatedMeta) importState(ctx context.Context) error {
	var ops []metadata.Op
	topics, _ := r.meta.Topics.All()
	for _, name := range slices.Sorted(maps.Keys(topics)) {
		tc := topics[name]
		ops = append(ops, metadata.Op{Kind: metadata.OpPutTopic, TopicConfig: &tc})
	}
	groups, _ := r.meta.Groups.All()
	for _, name := range slices.Sorted(maps.Keys(groups)) {
		gc := groups[name]
		ops = append(ops, metadata.Op{Kind: metadata.OpPutGroup, GroupConfig: &gc})
	}
	byGroup := map[string][]metadata.QueueOffset{}
	for key, qs := range r.meta.Offsets.Table() {
		topic, group, ok := strings.Cut(key, "@")
		if !ok {
			continue
		}
		for q, off := range qs {
			if off >= 0 {
				byGroup[group] = append(byGroup[group], metadata.QueueOffset{Topic: topic, QueueID: q, Offset: off})
			}
		}
	}
	for _, g := range slices.Sorted(maps.Keys(byGroup)) {
		ops = append(ops, metadata.Op{Kind: metadata.OpCommitOffsets, Group: g, Offsets: byGroup[g]})
	}
	var delay []metadata.QueueOffset
	for level, off := range r.meta.Delay.Table() {
		if level > 0 && off >= 0 {
			delay = append(delay, metadata.QueueOffset{QueueID: level, Offset: off})
		}
	}
	if len(delay) > 0 {
		ops = append(ops, metadata.Op{Kind: metadata.OpCommitDelayOffsets, Offsets: delay})
	}
	var ps []*proposal
	for len(ops) > 0 {
		n := min(len(ops), maxOpsPerRecord)
		ps = append(ps, &proposal{ops: ops[:n:n], done: make(chan error, 1)})
		ops = ops[n:]
	}
	r.mu.Lock()
	if r.mu.closed {
		r.mu.Unlock()
		return errors.New("broker: shutting down")
	}
	r.mu.queue = append(r.mu.queue, ps...)
	r.mu.Unlock()
	r.wake()
	for _, p := range ps {
		select {
		case err := <-p.done:
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.log.Info("metadata replicated for the in-place upgrade", zap.Int("topics", len(topics)), zap.Int("groups", len(groups)),
		zap.Int("offsetGroups", len(byGroup)), zap.Int("delayLevels", len(delay)))
	return nil
}
