package dledger

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rmqd/rmqd/internal/clock"
	"go.uber.org/zap"
)

// Transport carries messages between replicas. Send must not block (queue
// or drop; Raft tolerates loss). Received messages are handed to the
// destination's Node.Step.
type Transport interface {
	Send(m Message)
}

// Flusher is an optional Transport ability. The Node calls Flush after
// each burst of Sends (the messages of one Ready, before it persists, and
// the acknowledgements after), so a transport may hold Sent messages until
// then and write them together, e.g. one frame per peer from the Node's
// goroutine. Flush must not block either.
type Flusher interface {
	Flush()
}

// Config configures a Node. Zero fields take the defaults in doc.go.
type Config struct {
	SelfID    string
	Peers     map[string]string // id -> address, self included (ids like n0, n1, n2)
	Storage   LogStorage
	Transport Transport

	TickInterval      time.Duration // default 50ms
	HeartbeatInterval time.Duration // default 100ms (2 ticks)
	ElectionTimeout   time.Duration // default 500ms (10 ticks); randomized in [T, ElectionTimeoutMax)
	// ElectionTimeoutMax is the exclusive upper bound of the randomized
	// election timeout (dLegerElectionTimeoutMaxMs); when not above
	// ElectionTimeout, 2×ElectionTimeout.
	ElectionTimeoutMax time.Duration

	PreferredLeaderID string
	// Fingerprint: see CoreConfig.Fingerprint (opaque; empty for none).
	Fingerprint []byte
	// SyncMode (flushDiskType=SYNC_FLUSH) acknowledges appends only after
	// fsync; the default acknowledges after the write reached the page cache.
	SyncMode bool

	// FlushInterval (async mode only) is how often appended entries are
	// fsynced in the background, like Java DLedger's 10 ms flush thread
	// (default 50ms). Acknowledgements never wait for it.
	FlushInterval time.Duration

	MaxBatchBytes   int64 // bytes per replication batch (default 1 MiB)
	MaxBatchEntries int   // entries per replication batch (default 4096)
	MaxInflight     int   // unacknowledged batches per follower (default 256)
	// TailInflight: the batch reaching the end of the log waits while this
	// many are unacknowledged (default 1; see CoreConfig.TailInflight).
	TailInflight int

	Seed         uint64 // election timeout randomness; 0 = from the clock
	Clock        clock.Clock
	Logger       *zap.Logger
	OnRoleChange func(RoleEvent) // called in order from a dedicated goroutine
}

// Defaults.
const (
	DefaultTickInterval      = 50 * time.Millisecond
	DefaultHeartbeatInterval = 100 * time.Millisecond
	DefaultElectionTimeout   = 500 * time.Millisecond
)

func (c *Config) ticks(d time.Duration) int { return int((d + c.TickInterval - 1) / c.TickInterval) }

// RoleEvent reports a change of role, term or leader.
type RoleEvent struct {
	Role   Role
	Term   int64
	Leader string
}

// Future is the outcome of one Propose call (a batch of entries). Index,
// Term and Positions are known as soon as Propose returns; Done closes
// when the batch committed or failed.
//
// Futures queued between two takes of the proposal queue share one done
// channel (their doneGroup), closed once the last of them completed: the
// node's goroutine hands a take to the core as one Append, and replicates
// and commits it as one (every MsgApp and every fsync ends at the end of
// the log as it was at a turn), so they complete together anyway. Only a
// take split by the batch limits (several MiB queued at once) can hold an
// earlier future's Done until its group's last one committed. A Future
// and its channel were ~1.7 allocations per message at 64 producers
// (issue 8); now futures come from a slab and a channel serves a group.
type Future struct {
	first, term int64
	pos         []int64
	done        chan struct{}
	err         error
	grp         *doneGroup
	pos1        [1]int64  // pos of a one-entry batch
	ownGrp      doneGroup // grp of the group this future opened
}

// doneGroup counts the futures of a group not completed yet.
type doneGroup struct {
	left int32 // node goroutine only, once the group was taken
	ch   chan struct{}
}

// Index is the index of the batch's first entry.
func (f *Future) Index() int64 { return f.first }

// LastIndex is the index of the batch's last entry.
func (f *Future) LastIndex() int64 { return f.first + int64(len(f.pos)) - 1 }

// Term is the term the batch was appended in.
func (f *Future) Term() int64 { return f.term }

// Positions are the entries' byte positions (Pos), in order.
func (f *Future) Positions() []int64 { return f.pos }

// Done is closed once the batch committed or failed.
func (f *Future) Done() <-chan struct{} { return f.done }

// Err is the outcome once Done is closed: nil when committed;
// ErrLeadershipLost (retryable, outcome unknown) or ErrStopped or a
// storage error otherwise.
func (f *Future) Err() error {
	select {
	case <-f.done:
		return f.err
	default:
		return nil
	}
}

// Wait blocks until the batch committed (nil) or failed, or ctx ends.
func (f *Future) Wait(ctx context.Context) error {
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// complete sets f's outcome and closes its group's channel once every
// future of the group has one (node goroutine only).
func (f *Future) complete(err error) {
	f.err = err
	if f.grp.left--; f.grp.left == 0 {
		close(f.grp.ch)
	}
}

// Status is a snapshot of a Node.
type Status struct {
	ID               string
	Role             Role
	Term             int64
	Leader           string
	LedgerBeginIndex int64
	LedgerEndIndex   int64
	CommittedIndex   int64
	CommittedPos     int64 // end of the last committed entry
	Transferee       string
	Peers            map[string]PeerProgress // leader only
	Err              error                   // why the node stopped, if it failed
}

// PeerProgress is the leader's view of a follower.
type PeerProgress struct {
	MatchIndex  int64
	Lag         int64 // leader's end index - match index
	LastContact time.Duration
	Replicating bool
	Inflight    int
}

// maxQueued bounds the entries proposers may place ahead of the node's
// goroutine; beyond it Propose waits for the goroutine to take them.
const maxQueued = 1 << 16

// proposals is where proposers place their entries themselves, under mu,
// and the node's goroutine takes them in bulk: Propose needs no answer
// from the goroutine (Index and Pos are known at once), and one wake-up of
// the goroutine serves every proposal queued meanwhile. The goroutine keeps
// open/refuse/next/end in step with the core (syncProposals) so that what
// it takes always continues the core's log (Core.AppendPlaced checks).
type proposals struct {
	mu      sync.Mutex
	open    bool  // the core accepts proposals (leader, not transferring)
	refuse  error // why not, when !open
	term    int64
	next    int64 // index of the next entry
	end     int64 // where the next entry is placed from
	ents    []Entry
	futs    []*Future
	drained chan struct{} // closed when the queue is taken (waiters on a full queue)
	sig     chan struct{} // cap 1: wake the node's goroutine
	// lazy: the goroutine takes the queue on its next turn anyway (an
	// answer from a follower is due; see Core.waitingForAcks), so a
	// proposal wakes it only once the queue holds a full batch.
	lazy  bool
	bytes int64 // queued entry bytes (Entry.Size)

	entsHint  int       // entries taken last time: the next queue's capacity
	spareFuts []*Future // an empty array for the next queue of futures

	// grp is the done group of futures proposed since the queue was last
	// taken or flushed (nil: the next proposal opens one). Taking the
	// queue closes the group: its count only falls from then on, so it
	// reaches zero once, when its last future completes.
	grp     *doneGroup
	futSlab []Future // Futures handed out from here (one allocation per slab)
	posSlab []int64  // Positions of multi-entry proposals, carved from here
}

// slabFutures is how many Futures one allocation makes.
const slabFutures = 64

// newFuture hands out a Future in the open done group (p.mu held).
func (p *proposals) newFuture(first, term int64, n int) *Future {
	if len(p.futSlab) == 0 {
		p.futSlab = make([]Future, slabFutures)
	}
	f := &p.futSlab[0]
	p.futSlab = p.futSlab[1:]
	f.first, f.term = first, term
	if n == 1 {
		f.pos = f.pos1[:]
	} else {
		if len(p.posSlab) < n {
			p.posSlab = make([]int64, max(n, 8*slabFutures))
		}
		f.pos = p.posSlab[:n:n]
		p.posSlab = p.posSlab[n:]
	}
	if p.grp == nil {
		f.ownGrp.ch = make(chan struct{})
		p.grp = &f.ownGrp
	}
	f.grp = p.grp
	f.grp.left++
	f.done = f.grp.ch
	return f
}

type transferReq struct {
	to    string
	reply chan error
}

type idxEnd struct{ index, end int64 }

// proposeState is the core's answer to "may a proposal be placed now".
type proposeState struct {
	open, transferring bool
	term               int64
	leader             string
}

// Node runs a Core on its own goroutine: it turns clock ticks into Tick,
// received messages into Step, proposals into Propose, persists and sends
// what Ready asks, and completes futures on commit.
type Node struct {
	cfg     Config
	core    *Core // loop goroutine only
	store   LogStorage
	tr      Transport
	flusher Flusher // tr, if it implements Flusher
	logger  *zap.Logger
	clk     clock.Clock

	props     proposals
	recvc     chan Message
	statusc   chan chan Status
	transferc chan transferReq
	callc     chan func() // runs a function on the node goroutine (Compact)
	stopc     chan struct{}
	donec     chan struct{}
	stopOnce  sync.Once

	// loop goroutine only
	pending   []*Future
	ends      []idxEnd
	lastCkpt  int64
	tickCount int64
	soft      SoftState
	propState proposeState // what props was last told
	lazy      bool         // what props.lazy was last set to

	commitIndex atomic.Int64
	commitPos   atomic.Int64
	softState   atomic.Pointer[SoftState]
	failErr     atomic.Pointer[error]

	watchMu sync.Mutex
	watch   chan struct{}
	watched bool // watch was handed out since it was made

	evMu    sync.Mutex
	events  []RoleEvent
	evSig   chan struct{}
	evDone  chan struct{}
	started time.Time

	flushDone chan struct{}
	dirty     bool // loop only: appended since the last in-loop flush

	// Sync mode on a ConcurrentSyncer: fsyncs run on the flusher goroutine
	// (syncLoop), one at a time, each covering every write before it began
	// (group commit); the loop never waits for the disk. Acknowledgements
	// wait in held until the fsync covering their Ready is done.
	// A follower too: fsyncing on its loop would save the two hand-offs
	// (loop -> flusher -> loop, 20-60 µs of a 1.2-1.9 ms round trip at 64
	// producers, where the fsync itself takes 0.6-1.1 ms; issue 8), but a
	// stalled disk would then silence its heartbeat answers and cost the
	// leader its quorum (TestNodeSyncModeFlusherWaitsForFsync fails).
	deferred     bool
	maxTurnBytes int          // proposal bytes handed to the core per loop turn
	syncReqc     chan syncReq // loop -> flusher (at most one in flight)
	syncDonec    chan syncReq // flusher -> loop
	writeSeq     int64        // loop only: Appends so far
	syncedSeq    int64        // loop only: Appends known durable
	syncing      bool         // loop only: a request is in flight
	syncWant     bool         // loop only: written since that request
	truncSince   *int64       // loop only: entries after it overwritten since that request
	held         []heldMsgs   // loop only
}

// syncReq asks the flusher to make durable every write up to write number
// seq (entries up to index).
type syncReq struct {
	seq, index int64
	err        error
}

type heldMsgs struct {
	seq  int64
	msgs []Message
}

// ConcurrentSyncer is an optional LogStorage ability: SyncIndex may run on
// another goroutine concurrently with Append (dledger/logstore has it).
// In async mode the Node then fsyncs from a background flusher; otherwise
// it calls Sync from its loop every FlushInterval.
type ConcurrentSyncer interface {
	SyncIndex() (int64, error)
}

// syncLoop is the sync-mode flusher: it runs the loop's fsync requests
// one at a time and hands each back.
func (n *Node) syncLoop(cs ConcurrentSyncer) {
	defer close(n.flushDone)
	for {
		select {
		case r := <-n.syncReqc:
			_, r.err = cs.SyncIndex()
			select {
			case n.syncDonec <- r:
			case <-n.donec:
				return
			}
		case <-n.donec:
			return
		}
	}
}

func (n *Node) flushLoop(cs ConcurrentSyncer) {
	defer close(n.flushDone)
	t := n.clk.NewTicker(n.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C():
			if _, err := cs.SyncIndex(); err != nil {
				n.logger.Error("background flush failed", zap.Error(err))
			}
		case <-n.donec:
			return
		}
	}
}

// NewNode validates cfg, recovers the core from cfg.Storage and starts the
// node's goroutines.
func NewNode(cfg Config) (*Node, error) {
	if cfg.TickInterval <= 0 {
		cfg.TickInterval = DefaultTickInterval
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.ElectionTimeout <= 0 {
		cfg.ElectionTimeout = DefaultElectionTimeout
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = 50 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Transport == nil {
		return nil, errors.New("dledger: nil Transport")
	}
	_, concurrent := cfg.Storage.(ConcurrentSyncer)
	deferred := cfg.SyncMode && concurrent
	seed := cfg.Seed
	if seed == 0 {
		seed = uint64(cfg.Clock.Now().UnixNano())
	}
	ids := make([]string, 0, len(cfg.Peers))
	for id := range cfg.Peers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	core, err := NewCore(CoreConfig{
		ID: cfg.SelfID, Peers: ids, Storage: cfg.Storage,
		ElectionTick: cfg.ticks(cfg.ElectionTimeout), ElectionTickMax: cfg.ticks(cfg.ElectionTimeoutMax),
		HeartbeatTick: cfg.ticks(cfg.HeartbeatInterval),
		DeferredSync:  deferred,
		Rand:          rand.New(rand.NewPCG(seed, uint64(len(cfg.SelfID))<<32|0x9e3779b9)),
		MaxMsgBytes:   cfg.MaxBatchBytes, MaxMsgEntries: cfg.MaxBatchEntries, MaxInflight: cfg.MaxInflight,
		TailInflight:    cfg.TailInflight,
		PreferredLeader: cfg.PreferredLeaderID, Fingerprint: cfg.Fingerprint, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg: cfg, core: core, store: cfg.Storage, tr: cfg.Transport, clk: cfg.Clock,
		logger:    cfg.Logger.With(zap.String("node", cfg.SelfID)),
		recvc:     make(chan Message, 4096),
		statusc:   make(chan chan Status),
		transferc: make(chan transferReq),
		callc:     make(chan func()),
		stopc:     make(chan struct{}),
		donec:     make(chan struct{}),
		watch:     make(chan struct{}),
		evSig:     make(chan struct{}, 1),
		evDone:    make(chan struct{}),
		started:   cfg.Clock.Now(),
		deferred:  deferred,
		// A few batches per turn: large enough for any burst of small
		// proposals, small enough to keep a turn short.
		maxTurnBytes: 4 * int(cmp.Or(cfg.MaxBatchBytes, 1<<20)),
	}
	n.flusher, _ = cfg.Transport.(Flusher)
	n.props.sig = make(chan struct{}, 1)
	n.propState = proposeState{term: core.Term(), leader: core.Leader()}
	n.setProposals(false, &NotLeaderError{Leader: core.Leader()}, nil)
	n.soft = core.softState()
	ss := n.soft
	n.softState.Store(&ss)
	c := core.CommitIndex()
	n.commitIndex.Store(c)
	n.lastCkpt = c
	n.commitPos.Store(n.endOf(c))
	n.flushDone = make(chan struct{})
	switch cs, ok := cfg.Storage.(ConcurrentSyncer); {
	case ok && cfg.SyncMode:
		n.syncReqc, n.syncDonec = make(chan syncReq, 1), make(chan syncReq, 1)
		go n.syncLoop(cs)
	case ok:
		go n.flushLoop(cs)
	default:
		close(n.flushDone)
	}
	go n.run()
	go n.dispatchEvents()
	return n, nil
}

// endOf is the byte position just past entry i (storage.End() of an empty log).
func (n *Node) endOf(i int64) int64 {
	if i < 0 {
		if n.store.LastIndex() < 0 {
			return n.store.End()
		}
		return 0
	}
	e, err := n.store.Entry(i)
	if err != nil {
		return 0
	}
	return e.Pos + e.Size()
}

// ID returns the node's id.
func (n *Node) ID() string { return n.cfg.SelfID }

// Propose appends bodies as one batch if this node is the leader. It
// returns once the entries have their Index and Pos, without waiting for
// the node's goroutine: the caller places them itself under a lock shared
// by all proposers (hook, if not nil, was called for each in order under
// that lock, before anything was written or sent: it may patch
// position-dependent bytes but must not change the length, must be fast
// and must not call the Node). Bodies must not be modified afterwards. The
// error is immediate and retryable when the node is not leader
// (*NotLeaderError, errors.Is ErrNotLeader) or transferring leadership
// (ErrTransferring). A proposal placed just before the node lost
// leadership fails through its Future (ErrLeadershipLost).
func (n *Node) Propose(ctx context.Context, bodies [][]byte, hook func(*Entry)) (*Future, error) {
	if len(bodies) == 0 {
		return nil, errors.New("dledger: empty proposal")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p := &n.props
	p.mu.Lock()
	for p.open && len(p.ents) >= maxQueued {
		if p.drained == nil {
			p.drained = make(chan struct{})
		}
		drained := p.drained
		p.mu.Unlock()
		n.wakeLoop()
		select {
		case <-drained:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-n.donec:
			return nil, n.stoppedErr()
		}
		p.mu.Lock()
	}
	if !p.open {
		err := p.refuse
		p.mu.Unlock()
		return nil, err
	}
	// Placed straight into the queue (no slice of their own).
	queued := len(p.ents)
	if p.ents == nil {
		p.ents = make([]Entry, 0, max(p.entsHint, len(bodies)))
	}
	for _, b := range bodies {
		p.ents = append(p.ents, Entry{Magic: MagicNormal, Body: b})
	}
	ents := p.ents[queued:]
	end, err := PlaceEntries(n.store, ents, p.next, p.term, p.end, hook)
	if err != nil {
		clear(ents)
		p.ents = p.ents[:queued]
		p.mu.Unlock()
		return nil, err
	}
	f := p.newFuture(p.next, p.term, len(ents))
	for i := range ents {
		f.pos[i] = ents[i].Pos
	}
	p.next += int64(len(ents))
	p.end = end
	wake := queued == 0 && !p.lazy
	var added int64
	for i := range ents {
		added += ents[i].Size()
	}
	p.bytes += added
	p.futs = append(p.futs, f)
	if p.lazy {
		// A full batch leaves without waiting for the answer: wake once
		// the queue holds one.
		full := n.batchBytes()
		wake = p.bytes >= full && p.bytes-added < full ||
			len(p.ents) >= n.batchEntries() && queued < n.batchEntries()
	}
	p.mu.Unlock()
	if wake {
		n.wakeLoop()
	}
	return f, nil
}

// batchBytes and batchEntries are the core's MsgApp batch limits.
func (n *Node) batchBytes() int64 { return cmp.Or(n.cfg.MaxBatchBytes, 1<<20) }
func (n *Node) batchEntries() int { return cmp.Or(n.cfg.MaxBatchEntries, 4096) }

// setLazy tells proposers whether the goroutine takes their entries on its
// next turn without being woken (loop only). Entries queued while it was
// lazy and still there when it stops being lazy are taken next turn.
func (n *Node) setLazy(lazy bool) {
	if lazy == n.lazy {
		return
	}
	n.lazy = lazy
	p := &n.props
	p.mu.Lock()
	p.lazy = lazy
	queued := len(p.ents) > 0
	p.mu.Unlock()
	if !lazy && queued {
		n.wakeLoop()
	}
}

func (n *Node) wakeLoop() {
	select {
	case n.props.sig <- struct{}{}:
	default:
	}
}

// takeProposals hands the queued proposals to the core, about
// maxTurnBytes of them: a burst of large proposals is sent and written
// over several loop turns, so ticks and heartbeats are not stuck behind it.
func (n *Node) takeProposals() {
	p := &n.props
	p.mu.Lock()
	k, m, bytes := 0, 0, 0 // futures, entries, body bytes taken
	for k < len(p.futs) && (k == 0 || bytes < n.maxTurnBytes) {
		for range p.futs[k].pos {
			bytes += len(p.ents[m].Body)
			m++
		}
		k++
	}
	ents, futs := p.ents[:m:m], p.futs[:k:k]
	if k > 0 {
		p.grp = nil // taken: later proposals open a new group
	}
	if k == len(p.futs) {
		// The core keeps ents (AppendPlaced); futs are copied to pending,
		// so their array serves the next turn.
		p.entsHint = m
		p.ents, p.futs = nil, p.spareFuts
		p.spareFuts = nil
		p.bytes = 0
	} else {
		for i := range ents {
			p.bytes -= ents[i].Size()
		}
		p.ents, p.futs = p.ents[m:], p.futs[k:]
		n.wakeLoop() // the rest next turn
	}
	if p.drained != nil {
		close(p.drained)
		p.drained = nil
	}
	p.mu.Unlock()
	if len(ents) == 0 {
		return
	}
	defer n.recycleFuts(futs)
	if err := n.core.AppendPlaced(ents); err != nil {
		// The role changed this loop turn, before syncProposals closed
		// the queue (ErrMisplaced would be a bug: syncProposals keeps
		// props in step with the core). The entries never reached the
		// log; the caller may retry.
		if errors.Is(err, ErrMisplaced) {
			n.logger.Error("placed proposals refused", zap.Error(err))
		}
		for _, f := range futs {
			f.complete(ErrLeadershipLost)
		}
		return
	}
	n.pending = append(n.pending, futs...)
}

// recycleFuts hands futs' array back to proposers once its futures were
// completed or moved to pending.
func (n *Node) recycleFuts(futs []*Future) {
	if cap(futs) > 1<<16 {
		return
	}
	clear(futs)
	p := &n.props
	p.mu.Lock()
	if p.spareFuts == nil {
		p.spareFuts = futs[:0]
	}
	p.mu.Unlock()
}

// syncProposals tells proposers whether and where they may place entries
// after the core's role, term or transfer state changed. Entries queued
// under a state that ended fail (they never reached the log).
func (n *Node) syncProposals() {
	refuse := n.core.proposable()
	st := proposeState{open: refuse == nil, transferring: errors.Is(refuse, ErrTransferring),
		term: n.core.Term(), leader: n.core.Leader()}
	if st == n.propState {
		return
	}
	n.propState = st
	n.setProposals(st.open, refuse, ErrLeadershipLost)
}

// setProposals opens proposals at the core's next place, or closes them
// with refuse, failing what is queued with failErr.
func (n *Node) setProposals(open bool, refuse, failErr error) {
	p := &n.props
	p.mu.Lock()
	futs := p.futs
	p.ents, p.futs = nil, nil
	p.grp = nil
	p.bytes = 0
	p.open, p.refuse = open, refuse
	if open {
		p.term = n.core.Term()
		p.next, p.end = n.core.NextPlace()
	}
	if p.drained != nil {
		close(p.drained)
		p.drained = nil
	}
	p.mu.Unlock()
	for _, f := range futs {
		f.complete(failErr)
	}
}

func (n *Node) stoppedErr() error {
	if p := n.failErr.Load(); p != nil {
		return *p
	}
	return ErrStopped
}

// Step hands a message received from a peer to the node. It blocks while
// the node's inbox is full and returns ErrStopped once the node stopped.
func (n *Node) Step(m Message) error {
	select {
	case <-n.donec:
		return ErrStopped
	default:
	}
	select {
	case n.recvc <- m:
		return nil
	case <-n.donec:
		return ErrStopped
	}
}

// CommittedIndex is the highest committed index (-1 if none).
func (n *Node) CommittedIndex() int64 { return n.commitIndex.Load() }

// CommittedPos is the byte position just past the last committed entry
// (RocketMQ's committedPos / getMaxOffset).
func (n *Node) CommittedPos() int64 { return n.commitPos.Load() }

// Leader returns the role, term and leader as last published.
func (n *Node) Leader() RoleEvent {
	ss := n.softState.Load()
	return RoleEvent{Role: ss.Role, Term: ss.Term, Leader: ss.Leader}
}

// IsLeader reports whether this node currently leads.
func (n *Node) IsLeader() bool { return n.softState.Load().Role == RoleLeader }

// Entry reads one entry by index. Entries above CommittedIndex may still
// be truncated.
func (n *Node) Entry(i int64) (Entry, error) { return n.store.Entry(i) }

// Entries reads entries [lo, hi), at most about maxBytes.
func (n *Node) Entries(lo, hi, maxBytes int64) ([]Entry, error) {
	return n.store.Entries(lo, hi, maxBytes)
}

// ReadAt reads stored bytes by position (entry headers included).
func (n *Node) ReadAt(p []byte, pos int64) (int, error) { return n.store.ReadAt(p, pos) }

// Watch returns a channel closed at the next change of the committed index
// or of role/term/leader. Typical use: loop { ch := Watch(); check state; <-ch }.
func (n *Node) Watch() <-chan struct{} {
	n.watchMu.Lock()
	defer n.watchMu.Unlock()
	n.watched = true
	return n.watch
}

// notify closes the channel Watch handed out, if it handed it out since
// the last notify (a follower commits on every batch, mostly unwatched: a
// channel per commit was a third of its allocations).
func (n *Node) notify() {
	n.watchMu.Lock()
	if n.watched {
		close(n.watch)
		n.watch = make(chan struct{})
		n.watched = false
	}
	n.watchMu.Unlock()
}

// WaitCommitted blocks until index is committed, ctx ends or the node stops.
func (n *Node) WaitCommitted(ctx context.Context, index int64) error {
	for {
		ch := n.Watch()
		if n.CommittedIndex() >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-n.donec:
			return n.stoppedErr()
		}
	}
}

// Status returns a snapshot taken by the node's goroutine (or the last
// known state once stopped).
func (n *Node) Status() Status {
	c := make(chan Status, 1)
	select {
	case n.statusc <- c:
		return <-c
	case <-n.donec:
		ss := n.softState.Load()
		st := Status{ID: n.cfg.SelfID, Role: ss.Role, Term: ss.Term, Leader: ss.Leader,
			LedgerBeginIndex: n.store.FirstIndex(), LedgerEndIndex: n.store.LastIndex(),
			CommittedIndex: n.CommittedIndex(), CommittedPos: n.CommittedPos()}
		if p := n.failErr.Load(); p != nil {
			st.Err = *p
		}
		return st
	}
}

func (n *Node) status() Status {
	cs := n.core.Status()
	st := Status{ID: cs.ID, Role: cs.Role, Term: cs.Term, Leader: cs.Leader,
		LedgerBeginIndex: cs.FirstIndex, LedgerEndIndex: cs.LastIndex, CommittedIndex: cs.CommitIndex,
		CommittedPos: n.CommittedPos(), Transferee: cs.Transferee, Err: cs.Broken}
	if cs.Peers != nil {
		st.Peers = make(map[string]PeerProgress, len(cs.Peers))
		for id, p := range cs.Peers {
			st.Peers[id] = PeerProgress{MatchIndex: p.Match, Lag: cs.LastIndex - p.Match,
				LastContact: time.Duration(p.TicksSinceContact) * n.cfg.TickInterval,
				Replicating: p.Replicating, Inflight: p.Inflight}
		}
	}
	return st
}

// ErrTransferFailed is returned when a leadership transfer did not
// complete within two election timeouts.
var ErrTransferFailed = errors.New("dledger: leadership transfer did not complete")

// TransferLeadership asks this node (which must be the leader) to hand
// leadership to target, and waits until target leads.
func (n *Node) TransferLeadership(ctx context.Context, target string) error {
	req := transferReq{to: target, reply: make(chan error, 1)}
	select {
	case n.transferc <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-n.donec:
		return n.stoppedErr()
	}
	if err := <-req.reply; err != nil {
		return err
	}
	deadline := n.clk.After(2*n.cfg.ElectionTimeout + n.cfg.HeartbeatInterval)
	for {
		ch := n.Watch()
		if ss := n.softState.Load(); ss.Leader == target {
			return nil
		}
		select {
		case <-ch:
		case <-deadline:
			return fmt.Errorf("%w: to %s", ErrTransferFailed, target)
		case <-ctx.Done():
			return ctx.Err()
		case <-n.donec:
			return n.stoppedErr()
		}
	}
}

// Stop stops the node: pending appends fail with ErrStopped, the commit
// hint is recorded. It does not close Storage or Transport. Idempotent.
func (n *Node) Stop() {
	n.stopOnce.Do(func() { close(n.stopc) })
	<-n.donec
	<-n.evDone
	<-n.flushDone
}

// Done is closed when the node's goroutine exited (Stop or a storage failure).
func (n *Node) Done() <-chan struct{} { return n.donec }

func (n *Node) run() {
	defer close(n.donec)
	ticker := n.clk.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	for {
		select {
		case <-n.props.sig:
			n.takeProposals()
		case m := <-n.recvc:
			n.handleStep(m)
		case <-ticker.C():
			n.core.Tick()
			n.tickCount++
			if n.tickCount%20 == 0 {
				n.checkpoint()
			}
			n.maybeFlush()
		case r := <-n.syncDonec:
			if r.err != nil {
				n.fail(fmt.Errorf("sync: %w", r.err))
				return
			}
			n.synced(r)
		case c := <-n.statusc:
			c <- n.status()
		case req := <-n.transferc:
			n.takeProposals() // accepted before the transfer: they go first
			req.reply <- n.core.TransferLeadership(req.to)
		case f := <-n.callc:
			f()
		case <-n.stopc:
			n.shutdown(ErrStopped)
			return
		}
		// Group commit: take everything already queued before persisting.
	drain:
		for range 4096 {
			select {
			case m := <-n.recvc:
				n.handleStep(m)
			default:
				break drain
			}
		}
		n.takeProposals()
		if err := n.handleReadies(); err != nil {
			n.fail(err)
			return
		}
		n.syncProposals()
		n.setLazy(n.core.waitingForAcks())
	}
}

// fail stops the node after a storage failure. (A function of its own:
// err's address is stored, and taking it in the loop would allocate err
// on every turn.)
func (n *Node) fail(err error) {
	n.logger.Error("storage failure: node stops", zap.Error(err))
	n.failErr.Store(&err)
	n.shutdown(err)
}

func (n *Node) handleStep(m Message) {
	if err := n.core.Step(m); err != nil {
		n.logger.Debug("dropped message", zap.Error(err))
	}
}

func (n *Node) handleReadies() error {
	for n.core.HasReady() {
		rd := n.core.Ready()
		notices := n.sendMessages(rd.Messages, false)
		if c := rd.CommitIndex; c > n.commitIndex.Load() && c <= n.store.LastIndex() &&
			(len(rd.Entries) == 0 || rd.Entries[0].Index > c) {
			// Everything committed is already stored (and this Ready does
			// not overwrite it): complete the appends before spending time
			// on writes (on the leader, the usual case). After the sends:
			// the next batch is on the critical path, and what the
			// completed appenders propose waits for its answer anyway.
			if n.publishCommit(c) {
				n.notify()
			}
		}
		if notices {
			// Commit-only notices are on no one's critical path: written
			// after the appends they commit were completed (with one
			// appender, each commit brought one, a write ahead of the
			// answer to the client).
			n.sendMessages(rd.Messages, true)
		}
		if rd.HardState != nil {
			if err := n.store.SetHardState(*rd.HardState); err != nil {
				return fmt.Errorf("persist hard state: %w", err)
			}
		}
		if len(rd.Entries) > 0 {
			if first := rd.Entries[0].Index; n.syncing && first <= n.store.LastIndex() {
				t := first - 1
				if n.truncSince != nil {
					t = min(t, *n.truncSince)
				}
				n.truncSince = &t
			}
			if err := n.store.Append(rd.Entries); err != nil {
				return fmt.Errorf("append: %w", err)
			}
			switch {
			case n.deferred:
				n.requestSync(rd.Entries)
			case n.cfg.SyncMode:
				if err := n.store.Sync(); err != nil {
					return fmt.Errorf("sync: %w", err)
				}
			default:
				n.dirty = true
			}
			first := rd.Entries[0].Index
			k := len(n.ends)
			for k > 0 && n.ends[k-1].index >= first {
				k--
			}
			n.ends = n.ends[:k]
			for i := range rd.Entries {
				e := &rd.Entries[i]
				n.ends = append(n.ends, idxEnd{e.Index, e.Pos + e.Size()})
			}
		}
		if len(rd.MessagesAfterPersist) > 0 {
			var hold []Message
			for _, m := range rd.MessagesAfterPersist {
				// Only acknowledgements promise entries, hence wait for
				// the fsync (votes promise the hard state, fsynced above;
				// heartbeat answers and rejections nothing: held, a long
				// fsync would cost the leader its quorum).
				if n.deferred && m.Type == MsgAppResp && !m.Reject && n.writeSeq > n.syncedSeq {
					hold = append(hold, m)
					continue
				}
				n.tr.Send(m)
			}
			if len(hold) > 0 {
				n.held = append(n.held, heldMsgs{seq: n.writeSeq, msgs: hold})
			}
			if len(hold) < len(rd.MessagesAfterPersist) {
				n.flushTransport()
			}
		}
		n.core.Advance(rd)
		n.publish(rd)
	}
	return nil
}

// sendMessages sends and flushes msgs, only the commit-only notices
// (empty MsgApp flagged CommitOnly) when notices is set, else all others;
// it reports whether msgs holds messages of the other kind.
func (n *Node) sendMessages(msgs []Message, notices bool) (other bool) {
	sent := false
	for _, m := range msgs {
		if m.CommitOnly != notices {
			other = true
			continue
		}
		n.tr.Send(m)
		sent = true
	}
	if sent {
		n.flushTransport()
	}
	return other
}

// requestSync has the flusher make ents (just written) durable: at once
// if it is idle, else right after the fsync in flight, together with
// everything written meanwhile.
func (n *Node) requestSync(ents []Entry) {
	n.writeSeq++
	if n.syncing {
		n.syncWant = true
		return
	}
	n.syncing = true
	n.syncReqc <- syncReq{seq: n.writeSeq, index: ents[len(ents)-1].Index}
}

// synced takes a finished fsync: the core learns what is durable, the
// acknowledgements it covers leave, and the next fsync starts if wanted.
func (n *Node) synced(r syncReq) {
	n.syncing = false
	n.syncedSeq = r.seq
	// A follower may have overwritten entries after the fsync began (the
	// store fsyncs a truncation itself, not what replaced it): report
	// only what still precedes the oldest overwrite since then.
	index := r.index
	if n.truncSince != nil {
		index = min(index, *n.truncSince)
		n.truncSince = nil
	}
	n.core.Synced(index)
	k := 0
	for k < len(n.held) && n.held[k].seq <= r.seq {
		for _, m := range n.held[k].msgs {
			n.tr.Send(m)
		}
		k++
	}
	if k > 0 {
		n.held = append(n.held[:0], n.held[k:]...)
		n.flushTransport()
	}
	if n.syncWant {
		n.syncWant = false
		n.syncing = true
		n.syncReqc <- syncReq{seq: n.writeSeq, index: n.store.LastIndex()}
	}
}

func (n *Node) flushTransport() {
	if n.flusher != nil {
		n.flusher.Flush()
	}
}

// publishCommit publishes commit index c (and completes the futures it
// covers) if it is new; the entries up to c must be in storage.
func (n *Node) publishCommit(c int64) bool {
	if c <= n.commitIndex.Load() {
		return false
	}
	pos, at := int64(-1), int64(-2)
	k := 0
	for k < len(n.ends) && n.ends[k].index <= c {
		pos, at = n.ends[k].end, n.ends[k].index
		k++
	}
	n.ends = append(n.ends[:0], n.ends[k:]...)
	if at != c {
		pos = n.endOf(c)
	}
	n.commitPos.Store(pos)
	n.commitIndex.Store(c)
	k = 0
	for k < len(n.pending) && n.pending[k].LastIndex() <= c {
		n.pending[k].complete(nil)
		k++
	}
	n.pending = append(n.pending[:0], n.pending[k:]...)
	return true
}

func (n *Node) publish(rd Ready) {
	changed := n.publishCommit(rd.CommitIndex)
	if rd.SoftState != nil {
		old := n.soft
		n.soft = *rd.SoftState
		ss := n.soft
		n.softState.Store(&ss)
		// Close proposals before failing what is pending: whoever sees a
		// future fail with ErrLeadershipLost and proposes again must be
		// refused, not queued behind a role the node no longer has.
		n.syncProposals()
		if old.Role == RoleLeader && (ss.Role != RoleLeader || ss.Term != old.Term) {
			n.failPending(ErrLeadershipLost)
		}
		n.logger.Info("role change", zap.Stringer("role", ss.Role), zap.Int64("term", ss.Term), zap.String("leader", ss.Leader))
		n.evMu.Lock()
		n.events = append(n.events, RoleEvent{Role: ss.Role, Term: ss.Term, Leader: ss.Leader})
		n.evMu.Unlock()
		select {
		case n.evSig <- struct{}{}:
		default:
		}
		changed = true
	}
	if changed {
		n.notify()
	}
}

func (n *Node) failPending(err error) {
	for _, f := range n.pending {
		f.complete(err)
	}
	n.pending = nil
}

// maybeFlush fsyncs from the loop in async mode when the storage cannot
// sync concurrently, at most every FlushInterval.
func (n *Node) maybeFlush() {
	if n.cfg.SyncMode || !n.dirty {
		return
	}
	if _, ok := n.store.(ConcurrentSyncer); ok {
		return
	}
	every := max(1, int64(n.cfg.FlushInterval/n.cfg.TickInterval))
	if n.tickCount%every != 0 {
		return
	}
	if err := n.store.Sync(); err != nil {
		n.logger.Error("flush failed", zap.Error(err))
		return
	}
	n.dirty = false
}

func (n *Node) checkpoint() {
	if c := n.commitIndex.Load(); c != n.lastCkpt {
		if err := n.store.SetCommitted(c); err != nil {
			n.logger.Warn("checkpoint failed", zap.Error(err))
			return
		}
		n.lastCkpt = c
	}
}

func (n *Node) shutdown(err error) {
	n.checkpoint()
	n.failPending(err)
	n.setProposals(false, err, err)
	n.logger.Info("node stopped", zap.Error(err))
}

func (n *Node) dispatchEvents() {
	defer close(n.evDone)
	for {
		select {
		case <-n.evSig:
		case <-n.donec:
			return
		}
		n.evMu.Lock()
		evs := n.events
		n.events = nil
		n.evMu.Unlock()
		for _, ev := range evs {
			if n.cfg.OnRoleChange != nil {
				n.cfg.OnRoleChange(ev)
			}
		}
	}
}
