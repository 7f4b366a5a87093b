package dledgertest

import (
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"

	"github.com/rmqd/rmqd/dledger"
	"github.com/rmqd/rmqd/dledger/logstore"
	"github.com/rmqd/rmqd/internal/vfs"
	"go.uber.org/zap"
)

// Options describe one simulated schedule. Zero fields are drawn from the
// seed by Randomize.
type Options struct {
	Seed       uint64
	Nodes      int
	ChaosTicks int // ticks of faults before the healing phase
	HealTicks  int // bound on the healing phase
	SyncMode   bool
	// DeferredSync (with SyncMode): fsyncs complete a few ticks after the
	// write, as on the Node's flusher goroutine; acknowledgements wait for
	// them and the core learns of them through Synced.
	DeferredSync  bool
	HeartbeatTick int
	ElectionTick  int
	MaxInflight   int
	TailInflight  int
	MaxMsgEntries int
	MaxMsgBytes   int64
	FileSize      int64
	FileStore     bool // run on dledger/logstore over a crashable vfs.MemFS (else MemoryStorage)
	Preferred     string
	DropProb      float64
	DupProb       float64
	MaxDelay      int
	ProposeProb   float64
	CrashProb     float64 // per tick
	MidReadyCrash float64 // per Ready: crash at a random point inside its handling
	PartitionProb float64
	TransferProb  float64
	// Upgraded: the group continues data kept outside the log (an in-place
	// upgrade): the agreeing nodes have group fingerprint "A" and logs
	// beginning at UpgradeStart; the last node has neither (an empty
	// replica: it must follow from the first entry it is sent and may lead
	// only once it holds entries); with 5 nodes n3 has fingerprint "B" and
	// must never lead. Every entry 0 must sit at UpgradeStart.
	Upgraded bool
	Logger   *zap.Logger // nil: silent
}

// Randomize fills the schedule's knobs from its seed.
func Randomize(seed uint64) Options {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	o := Options{Seed: seed, Nodes: 3, ChaosTicks: 800, HealTicks: 2000, ElectionTick: 10}
	if r.IntN(4) == 0 {
		o.Nodes = 5
	}
	o.SyncMode = r.IntN(2) == 0
	o.HeartbeatTick = 1 + r.IntN(3)
	o.MaxInflight = 1 + r.IntN(16)
	if r.IntN(2) == 0 {
		o.MaxMsgEntries = 1 + r.IntN(8)
	}
	if r.IntN(3) == 0 {
		o.MaxMsgBytes = 100 + int64(r.IntN(400))
	}
	if r.IntN(2) == 0 {
		o.FileSize = 256 + int64(r.IntN(512))
	}
	if r.IntN(4) == 0 {
		o.FileStore = true
		o.FileSize = 4096 + int64(r.IntN(4096))
	}
	if r.IntN(3) == 0 {
		o.Preferred = "n1"
	}
	o.DropProb = r.Float64() * 0.1
	o.DupProb = r.Float64() * 0.05
	o.MaxDelay = r.IntN(4)
	o.ProposeProb = 0.1 + r.Float64()*0.4
	o.CrashProb = r.Float64() * 0.02
	o.MidReadyCrash = r.Float64() * 0.003
	o.PartitionProb = r.Float64() * 0.02
	o.TransferProb = r.Float64() * 0.005
	o.TailInflight = r.IntN(o.MaxInflight + 1)    // 0: the default (1)
	o.Upgraded = r.IntN(4) == 0                   // drawn last: earlier knobs of a seed stay as they were
	o.DeferredSync = o.SyncMode && r.IntN(2) == 0 // after Upgraded, for the same reason
	return o
}

// UpgradeStart is where the agreeing nodes' logs begin in an Upgraded run.
func (o *Options) UpgradeStart() int64 {
	if o.FileSize > 0 {
		return 3 * o.FileSize
	}
	return 3000
}

// fingerprint and startPos of node i of an Upgraded run.
func (o *Options) fingerprint(i int) string {
	switch {
	case !o.Upgraded || i == o.Nodes-1:
		return ""
	case o.Nodes == 5 && i == 3:
		return "B"
	}
	return "A"
}

func (o *Options) startPos(i int) int64 {
	if !o.Upgraded || i == o.Nodes-1 {
		return 0
	}
	return o.UpgradeStart()
}

// Result of one run.
type Result struct {
	TraceHash uint64
	Delivered int
	Acked     int
	Committed int64
	Elections int
	Crashes   int
	Err       error
}

type inflight struct {
	at  int64
	seq uint64
	m   dledger.Message
}

type msgHeap []inflight

func (h msgHeap) Len() int { return len(h) }
func (h msgHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h msgHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *msgHeap) Push(x any)   { *h = append(*h, x.(inflight)) }
func (h *msgHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

type proposal struct {
	body  string
	index int64
	term  int64
}

type entryKey struct {
	term int64
	pos  int64
	hash uint64
}

type node struct {
	id      string
	fp      string // group fingerprint
	start   int64  // where its empty log begins
	core    *dledger.Core
	store   dledger.LogStorage
	mem     *dledger.MemoryStorage // MemoryStorage runs
	fs      *vfs.MemFS             // file store runs
	up      bool
	commit  int64
	role    dledger.Role
	prefix  []uint64 // prefix hash per index
	pending []proposal

	// DeferredSync: the fsync in flight, whether another is wanted after
	// it, and acknowledgements waiting for an fsync (by write sequence).
	writeSeq  int64
	syncedSeq int64
	syncReq   *syncReq
	syncWant  bool
	held      []heldMsgs
}

type syncReq struct{ seq, index, at int64 }

type heldMsgs struct {
	seq  int64
	msgs []dledger.Message
}

// Sim is a deterministic single-goroutine cluster simulator.
type Sim struct {
	o      Options
	rng    *rand.Rand
	now    int64
	seq    uint64
	ids    []string
	nodes  map[string]*node
	queue  msgHeap
	group  map[string]int // partition group per node
	trace  uint64
	events []string // recent events, for failure reports
	res    Result

	leaders   map[int64]string
	committed map[int64]entryKey
	prefixes  map[[2]int64]uint64
	acked     map[string]proposal
	nextBody  int
	dropProb  float64
	dupProb   float64
	maxDelay  int
	syncDelay int // DeferredSync: an fsync takes up to syncDelay-1 ticks
	debug     func(string)
}

// New builds a simulator for o.
func New(o Options) *Sim {
	s := &Sim{o: o, rng: rand.New(rand.NewPCG(o.Seed, 0xd1ed6e7)), nodes: map[string]*node{}, group: map[string]int{},
		leaders: map[int64]string{}, committed: map[int64]entryKey{}, prefixes: map[[2]int64]uint64{},
		acked: map[string]proposal{}, trace: 14695981039346656037,
		dropProb: o.DropProb, dupProb: o.DupProb, maxDelay: o.MaxDelay, syncDelay: 6}
	for i := range o.Nodes {
		s.ids = append(s.ids, fmt.Sprintf("n%d", i))
	}
	for i, id := range s.ids {
		n := &node{id: id, commit: -1, fp: o.fingerprint(i), start: o.startPos(i)}
		if o.FileStore {
			n.fs = vfs.NewMem()
		} else {
			n.mem = dledger.NewMemoryStorageAt(o.FileSize, n.start)
		}
		s.nodes[id] = n
		s.start(n)
	}
	return s
}

func (s *Sim) coreConfig(n *node) dledger.CoreConfig {
	return dledger.CoreConfig{
		ID: n.id, Peers: s.ids, Storage: n.store,
		ElectionTick: s.o.ElectionTick, HeartbeatTick: s.o.HeartbeatTick,
		Rand:        rand.New(rand.NewPCG(s.rng.Uint64(), s.rng.Uint64())),
		MaxInflight: s.o.MaxInflight, TailInflight: s.o.TailInflight, MaxMsgEntries: s.o.MaxMsgEntries, MaxMsgBytes: s.o.MaxMsgBytes,
		PreferredLeader: s.o.Preferred, Logger: s.o.Logger, Fingerprint: []byte(n.fp), DeferredSync: s.o.DeferredSync,
	}
}

func (s *Sim) start(n *node) {
	if n.fs != nil {
		ls, err := logstore.Open(n.fs, "dledger-"+n.id, logstore.Config{DataFileSize: s.o.FileSize,
			IndexFileSize: 32 * 64, CheckpointInterval: -1, StartPos: n.start})
		if err != nil {
			s.fail("open log store of %s: %v", n.id, err)
			return
		}
		n.store = ls
	} else {
		n.store = n.mem
	}
	c, err := dledger.NewCore(s.coreConfig(n))
	if err != nil {
		s.fail("start %s: %v", n.id, err)
		return
	}
	n.core, n.up, n.role = c, true, dledger.RoleFollower
	n.commit = c.CommitIndex()
	n.prefix = n.prefix[:0]
	if last := n.store.LastIndex(); last >= 0 {
		ents, err := n.store.Entries(max(n.store.FirstIndex(), 0), last+1, 1<<62)
		if err != nil {
			s.fail("%s: read log after restart: %v", n.id, err)
			return
		}
		s.hashEntries(n, ents)
	}
	// The recovered commit hint must agree with what the group committed.
	s.checkCommitted(n, -1, n.commit)
}

func (s *Sim) event(format string, args ...any) {
	e := fmt.Sprintf("t=%d ", s.now) + fmt.Sprintf(format, args...)
	s.mix([]byte(e))
	if len(s.events) >= 60 {
		s.events = s.events[1:]
	}
	s.events = append(s.events, e)
}

func (s *Sim) mix(b []byte) {
	h := fnv.New64a()
	var x [8]byte
	binary.LittleEndian.PutUint64(x[:], s.trace)
	h.Write(x[:])
	h.Write(b)
	s.trace = h.Sum64()
}

func (s *Sim) fail(format string, args ...any) {
	if s.res.Err == nil {
		s.res.Err = fmt.Errorf("t=%d: %s", s.now, fmt.Sprintf(format, args...))
	}
}

// Run executes the schedule and returns its result.
func Run(o Options) Result {
	s := New(o)
	s.run()
	s.res.TraceHash = s.trace
	s.res.Acked = len(s.acked)
	if s.res.Err != nil {
		s.res.Err = fmt.Errorf("seed %d: %w\nrecent events:\n  %s", o.Seed, s.res.Err, strings.Join(s.events, "\n  "))
	}
	return s.res
}

func (s *Sim) run() {
	for s.now = 1; s.now <= int64(s.o.ChaosTicks) && s.res.Err == nil; s.now++ {
		s.chaos()
		s.tickAll()
		s.deliverDue()
	}
	if s.res.Err != nil {
		return
	}
	// Healing: no more faults; everybody up and connected.
	s.event("heal")
	s.dropProb, s.dupProb, s.maxDelay = 0, 0, 1
	s.syncDelay = 1 // long fsyncs with one-entry batches converge too slowly
	s.o.MidReadyCrash = 0
	for k := range s.group {
		delete(s.group, k)
	}
	for _, id := range s.ids {
		if !s.nodes[id].up {
			s.event("restart %s", id)
			s.start(s.nodes[id])
		}
	}
	end := s.now + int64(s.o.HealTicks)
	for ; s.now <= end && s.res.Err == nil; s.now++ {
		if s.now%7 == 0 {
			s.propose()
		}
		s.tickAll()
		s.deliverDue()
		if s.converged() {
			s.finalCheck()
			return
		}
	}
	if s.res.Err == nil {
		s.fail("logs did not converge within %d healing ticks: %s", s.o.HealTicks, s.describe())
	}
}

func (s *Sim) describe() string {
	var b strings.Builder
	for _, id := range s.ids {
		n := s.nodes[id]
		if !n.up {
			fmt.Fprintf(&b, "[%s down] ", id)
			continue
		}
		st := n.core.Status()
		fmt.Fprintf(&b, "[%s %s term=%d lead=%s last=%d commit=%d", id, st.Role, st.Term, st.Leader, st.LastIndex, st.CommitIndex)
		for p, ps := range st.Peers {
			fmt.Fprintf(&b, " %s:m%d/n%d/r%v/i%d", p, ps.Match, ps.Next, ps.Replicating, ps.Inflight)
		}
		b.WriteString("] ")
	}
	return b.String()
}

func (s *Sim) chaos() {
	r := s.rng
	if r.Float64() < s.o.ProposeProb {
		s.propose()
	}
	if r.Float64() < s.o.PartitionProb {
		if len(s.group) > 0 {
			s.event("heal partition")
			clear(s.group)
		} else {
			if r.IntN(2) == 0 {
				s.group[s.ids[r.IntN(len(s.ids))]] = 1 // isolate one node
			} else {
				for _, id := range s.ids {
					s.group[id] = r.IntN(3)
				}
			}
			s.event("partition %v", s.group)
		}
	}
	if r.Float64() < s.o.CrashProb {
		id := s.ids[r.IntN(len(s.ids))]
		if n := s.nodes[id]; n.up {
			s.crash(n)
		}
	}
	for _, id := range s.ids {
		if n := s.nodes[id]; !n.up && r.Float64() < 0.03 {
			s.event("restart %s", id)
			s.start(n)
		}
	}
	if r.Float64() < s.o.TransferProb {
		if l := s.leader(); l != nil {
			to := s.ids[r.IntN(len(s.ids))]
			s.event("transfer %s -> %s", l.id, to)
			_ = l.core.TransferLeadership(to)
			s.process(l)
		}
	}
}

func (s *Sim) crash(n *node) {
	s.event("crash %s (sync=%v)", n.id, s.o.SyncMode)
	s.res.Crashes++
	switch {
	case n.fs != nil && s.o.SyncMode:
		n.fs = n.fs.CrashClone(s.rng) // power loss: synced data plus a torn share of the rest
		_ = n.store.Close()
	case n.fs != nil:
		n.fs = n.fs.ProcessCrashClone() // process crash: the page cache survives
		_ = n.store.Close()
	case s.o.SyncMode:
		n.mem = n.mem.CrashCopy() // power loss: unsynced entries vanish
	default:
		n.mem = n.mem.Copy() // process crash: the page cache survives
	}
	n.up, n.core, n.pending = false, nil, nil
	n.writeSeq, n.syncedSeq, n.syncReq, n.syncWant, n.held = 0, 0, nil, false, nil
}

// noteWrite starts (or asks for) an fsync covering ents, just written.
func (s *Sim) noteWrite(n *node, ents []dledger.Entry) {
	if r := n.syncReq; r != nil && ents[0].Index <= r.index {
		r.index = ents[0].Index - 1 // overwritten after the fsync began
	}
	n.writeSeq++
	if n.syncReq != nil {
		n.syncWant = true
		return
	}
	n.syncReq = &syncReq{seq: n.writeSeq, index: ents[len(ents)-1].Index, at: s.now + int64(s.rng.IntN(s.syncDelay))}
}

// completeSync finishes n's fsync in flight when due: the core learns what
// is durable and the acknowledgements it covers leave.
func (s *Sim) completeSync(n *node) {
	r := n.syncReq
	if r == nil || r.at > s.now {
		return
	}
	n.syncReq = nil
	n.syncedSeq = r.seq
	if err := n.store.Sync(); err != nil {
		s.fail("%s sync: %v", n.id, err)
		return
	}
	s.event("synced %s to %d (seq %d)", n.id, r.index, r.seq)
	n.core.Synced(r.index)
	k := 0
	for k < len(n.held) && n.held[k].seq <= r.seq {
		for _, m := range n.held[k].msgs {
			s.send(m)
		}
		k++
	}
	n.held = n.held[k:]
	if n.syncWant {
		n.syncWant = false
		n.syncReq = &syncReq{seq: n.writeSeq, index: n.store.LastIndex(), at: s.now + int64(s.rng.IntN(s.syncDelay))}
	}
	s.process(n)
}

// leader returns the live leader with the highest term.
func (s *Sim) leader() *node {
	var best *node
	for _, id := range s.ids {
		n := s.nodes[id]
		if n.up && n.core.Role() == dledger.RoleLeader && (best == nil || n.core.Term() > best.core.Term()) {
			best = n
		}
	}
	return best
}

func (s *Sim) propose() {
	n := s.leader()
	if n == nil || s.rng.IntN(10) == 0 {
		n = s.nodes[s.ids[s.rng.IntN(len(s.ids))]]
		if !n.up {
			return
		}
	}
	k := 1 + s.rng.IntN(3)
	bodies := make([][]byte, k)
	for i := range bodies {
		s.nextBody++
		b := make([]byte, 8, 8+12)
		bodies[i] = append(b, fmt.Sprintf("p%d", s.nextBody)...)
	}
	// The hook stores the entry's position in the body, as the broker does.
	hook := func(e *dledger.Entry) { binary.BigEndian.PutUint64(e.Body, uint64(e.Pos)) }
	var ents []dledger.Entry
	var err error
	if s.rng.IntN(2) == 0 {
		ents, err = n.core.Propose(bodies, hook)
	} else {
		// As Node does: place on the proposer's side, then hand over.
		ents, err = s.proposePlaced(n, bodies, hook)
	}
	if err != nil {
		if !errors.Is(err, dledger.ErrNotLeader) && !errors.Is(err, dledger.ErrTransferring) {
			s.fail("propose on %s: %v", n.id, err)
		}
		return
	}
	for _, e := range ents {
		n.pending = append(n.pending, proposal{body: string(e.Body[8:]), index: e.Index, term: e.Term})
	}
	s.event("propose %s %d entries at %d", n.id, len(ents), ents[0].Index)
	s.process(n)
}

func (s *Sim) proposePlaced(n *node, bodies [][]byte, hook func(*dledger.Entry)) ([]dledger.Entry, error) {
	ents := make([]dledger.Entry, len(bodies))
	for i, b := range bodies {
		ents[i] = dledger.Entry{Magic: dledger.MagicNormal, Body: b}
	}
	next, end := n.core.NextPlace()
	if _, err := dledger.PlaceEntries(n.store, ents, next, n.core.Term(), end, hook); err != nil {
		return nil, err
	}
	if err := n.core.AppendPlaced(ents); err != nil {
		return nil, err
	}
	return ents, nil
}

func (s *Sim) tickAll() {
	for _, id := range s.ids {
		n := s.nodes[id]
		if !n.up {
			continue
		}
		s.completeSync(n)
		if !n.up || s.res.Err != nil {
			continue
		}
		if s.rng.IntN(50) == 0 {
			continue // a slow clock
		}
		n.core.Tick()
		s.process(n)
	}
}

func (s *Sim) send(m dledger.Message) {
	if s.rng.Float64() < s.dropProb {
		return
	}
	copies := 1
	if s.rng.Float64() < s.dupProb {
		copies = 2
	}
	for range copies {
		s.seq++
		heap.Push(&s.queue, inflight{at: s.now + int64(s.rng.IntN(s.maxDelay+1)), seq: s.seq, m: m})
	}
}

func (s *Sim) deliverDue() {
	for steps := 0; s.queue.Len() > 0 && s.queue[0].at <= s.now && s.res.Err == nil; steps++ {
		if steps > 1_000_000 {
			s.fail("message storm")
			return
		}
		f := heap.Pop(&s.queue).(inflight)
		n := s.nodes[f.m.To]
		if n == nil || !n.up || s.group[f.m.From] != s.group[f.m.To] {
			continue
		}
		b, err := f.m.MarshalBinary()
		if err != nil {
			s.fail("marshal: %v", err)
			return
		}
		var m dledger.Message
		if err := m.UnmarshalBinary(b); err != nil {
			s.fail("unmarshal %s: %v", f.m.String(), err)
			return
		}
		var hb [8]byte
		binary.LittleEndian.PutUint64(hb[:], uint64(s.now))
		s.mix(append(hb[:], b[:min(len(b), 64)]...))
		s.res.Delivered++
		if s.debug != nil {
			s.debug(m.String())
		}
		if err := n.core.Step(m); err != nil {
			s.fail("step %s: %v", m.String(), err)
			return
		}
		s.process(n)
	}
}

// process handles every Ready of n like the Node driver does, possibly
// crashing n in the middle.
func (s *Sim) process(n *node) {
	for n.up && n.core.HasReady() && s.res.Err == nil {
		rd := n.core.Ready()
		crashAt := -1
		if s.rng.Float64() < s.o.MidReadyCrash {
			crashAt = s.rng.IntN(4)
		}
		for _, m := range rd.Messages {
			s.send(m)
		}
		if crashAt == 0 {
			s.crash(n)
			return
		}
		if rd.HardState != nil {
			if err := n.store.SetHardState(*rd.HardState); err != nil {
				s.fail("%s: %v", n.id, err)
			}
		}
		if crashAt == 1 {
			s.crash(n)
			return
		}
		if len(rd.Entries) > 0 {
			if err := n.store.Append(rd.Entries); err != nil {
				s.fail("%s append: %v", n.id, err)
				return
			}
			s.hashEntries(n, rd.Entries)
			if s.o.Upgraded && rd.Entries[0].Index == 0 && rd.Entries[0].Pos != s.o.UpgradeStart() {
				s.fail("%s: entry 0 at %d, the group's log begins at %d", n.id, rd.Entries[0].Pos, s.o.UpgradeStart())
				return
			}
		}
		if crashAt == 2 {
			s.crash(n)
			return
		}
		if s.o.SyncMode && len(rd.Entries) > 0 {
			if s.o.DeferredSync {
				s.noteWrite(n, rd.Entries)
			} else {
				_ = n.store.Sync()
			}
		}
		if crashAt == 3 {
			s.crash(n)
			return
		}
		// As Node does: only acknowledgements wait for the fsync.
		var hold []dledger.Message
		for _, m := range rd.MessagesAfterPersist {
			if s.o.DeferredSync && m.Type == dledger.MsgAppResp && !m.Reject && n.writeSeq > n.syncedSeq {
				hold = append(hold, m)
				continue
			}
			s.send(m)
		}
		if len(hold) > 0 {
			n.held = append(n.held, heldMsgs{seq: n.writeSeq, msgs: hold})
		}
		n.core.Advance(rd)
		s.observe(n, rd)
	}
}

func bodyHash(e *dledger.Entry) uint64 {
	h := fnv.New64a()
	var b [20]byte
	binary.LittleEndian.PutUint64(b[:], uint64(e.Term))
	binary.LittleEndian.PutUint64(b[8:], uint64(e.Pos))
	binary.LittleEndian.PutUint32(b[16:], uint32(e.Magic))
	h.Write(b[:])
	h.Write(e.Body)
	return h.Sum64()
}

// hashEntries records ents (just written at their indexes) in n's prefix
// hashes and checks log matching: two logs with an entry of the same index
// and term hold identical prefixes up to it.
func (s *Sim) hashEntries(n *node, ents []dledger.Entry) {
	if len(ents) == 0 {
		return
	}
	first := ents[0].Index
	if first > int64(len(n.prefix)) {
		s.fail("%s: gap writing %d after %d", n.id, first, len(n.prefix)-1)
		return
	}
	n.prefix = n.prefix[:first]
	for i := range ents {
		e := &ents[i]
		var prev uint64
		if e.Index > 0 {
			prev = n.prefix[e.Index-1]
		}
		h := prev*1099511628211 ^ bodyHash(e)
		n.prefix = append(n.prefix, h)
		k := [2]int64{e.Index, e.Term}
		if old, ok := s.prefixes[k]; ok && old != h {
			s.fail("log matching violated on %s at index %d term %d", n.id, e.Index, e.Term)
			return
		}
		s.prefixes[k] = h
		if e.Magic == dledger.MagicNormal && (len(e.Body) < 8 || int64(binary.BigEndian.Uint64(e.Body)) != e.Pos) {
			s.fail("%s: entry %d body does not carry its position %d (hook output lost)", n.id, e.Index, e.Pos)
		}
	}
}

// checkCommitted checks entries (from, to] of n against what the group
// committed so far and records new ones.
func (s *Sim) checkCommitted(n *node, from, to int64) {
	for i := from + 1; i <= to; i++ {
		e, err := n.store.Entry(i)
		if err != nil {
			s.fail("%s: committed entry %d unreadable: %v", n.id, i, err)
			return
		}
		k := entryKey{term: e.Term, pos: e.Pos, hash: bodyHash(&e)}
		if old, ok := s.committed[i]; ok && old != k {
			s.fail("%s: committed entry %d differs from the one committed before (term %d vs %d)", n.id, i, e.Term, old.term)
			return
		}
		s.committed[i] = k
		s.res.Committed = max(s.res.Committed, i)
	}
}

func (s *Sim) observe(n *node, rd dledger.Ready) {
	if rd.SoftState != nil {
		wasLeader := n.role == dledger.RoleLeader
		n.role = rd.SoftState.Role
		if n.role == dledger.RoleLeader {
			s.res.Elections++
			t := rd.SoftState.Term
			if l, ok := s.leaders[t]; ok && l != n.id {
				s.fail("two leaders in term %d: %s and %s", t, l, n.id)
				return
			}
			s.leaders[t] = n.id
			s.event("leader %s term %d", n.id, t)
			if n.fp == "B" {
				s.fail("%s leads in term %d although its group fingerprint differs", n.id, t)
				return
			}
			s.checkLeaderCompleteness(n)
		} else if wasLeader {
			n.pending = nil // the driver fails them with ErrLeadershipLost
		}
	}
	if rd.CommitIndex < n.commit {
		s.fail("%s: commit index went back from %d to %d", n.id, n.commit, rd.CommitIndex)
		return
	}
	if rd.CommitIndex > n.store.LastIndex() {
		s.fail("%s: commit %d beyond last index %d", n.id, rd.CommitIndex, n.store.LastIndex())
		return
	}
	if rd.CommitIndex > n.commit {
		s.checkCommitted(n, n.commit, rd.CommitIndex)
		n.commit = rd.CommitIndex
		_ = n.store.SetCommitted(n.commit)
		if n.role == dledger.RoleLeader {
			k := 0
			for _, p := range n.pending {
				if p.index > n.commit {
					n.pending[k] = p
					k++
					continue
				}
				e, _ := n.store.Entry(p.index)
				if e.Term != p.term || string(e.Body[8:]) != p.body {
					s.fail("%s: acknowledged %s at %d but the log holds term %d %q", n.id, p.body, p.index, e.Term, e.Body)
					return
				}
				s.acked[p.body] = p
			}
			n.pending = n.pending[:k]
		}
	}
}

// checkLeaderCompleteness: a new leader's log holds every committed entry,
// hence every acknowledged proposal.
func (s *Sim) checkLeaderCompleteness(n *node) {
	for i, k := range s.committed {
		e, err := n.store.Entry(i)
		if err != nil || e.Term != k.term || bodyHash(&e) != k.hash {
			s.fail("leader completeness: new leader %s (term %d) lacks committed entry %d", n.id, n.core.Term(), i)
			return
		}
	}
	for _, p := range s.acked {
		e, err := n.store.Entry(p.index)
		if err != nil || len(e.Body) < 8 || string(e.Body[8:]) != p.body {
			s.fail("new leader %s lacks acknowledged %s at %d", n.id, p.body, p.index)
			return
		}
	}
}

func (s *Sim) converged() bool {
	l := s.leader()
	if l == nil || s.queue.Len() > 0 && false {
		return false
	}
	last := l.core.LastIndex()
	if l.commit != last {
		return false
	}
	for _, id := range s.ids {
		n := s.nodes[id]
		if !n.up || n.core.LastIndex() != last || n.commit != last || n.store.LastIndex() != last {
			return false
		}
	}
	return true
}

func (s *Sim) finalCheck() {
	l := s.leader()
	last := l.core.LastIndex()
	for _, id := range s.ids {
		n := s.nodes[id]
		if n.prefix[last] != l.prefix[last] {
			s.fail("after healing %s's log differs from leader %s's", id, l.id)
		}
	}
	for _, p := range s.acked {
		if p.index > last {
			s.fail("acknowledged %s at %d beyond the final log end %d", p.body, p.index, last)
			return
		}
		e, _ := l.store.Entry(p.index)
		if string(e.Body[8:]) != p.body {
			s.fail("acknowledged %s missing from the final log", p.body)
			return
		}
	}
}
