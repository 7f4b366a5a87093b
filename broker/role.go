package broker

// DLedger (Raft) roles, as the broker shows and handles them (design.md §3).
//
// # How roles show up (for tools and the end-to-end tests)
//
//   - Name server: the leader registers as brokerId 0 (master); a follower
//     as brokerId DLedgerSelfIndex()+1 (dLegerSelfId n0 -> 1, n1 -> 2,
//     n2 -> 3; the index is the position of dLegerSelfId in dLegerPeers).
//     Until the store reports a role (boot, election) the replica registers
//     as that follower id too, never as 0: it is readable but refuses
//     writes (Java registers -1 instead; a follower id keeps the replica in
//     the routes for slave reads and never looks like a second master).
//     Every REGISTER_BROKER carries ext dLegerTerm (the store's current
//     Raft term), so a name server drops a deposed master that registers
//     late from an older term. Each role change re-registers at once and
//     retries the name servers that failed (backoff 100 ms doubling to 3 s)
//     until every one accepted it; a follower also repeats (up to 5 times)
//     until a name server names the master, whose address its remarks give.
//   - GET_BROKER_RUNTIME_INFO (28) adds dledgerRole (LEADER, FOLLOWER,
//     CANDIDATE), dledgerTerm, dledgerLeaderId, dledgerSelfId,
//     dledgerBrokerId (the registered id), dledgerCommittedIndex,
//     dledgerLedgerBeginIndex, dledgerLedgerEndIndex, on the leader
//     dledgerPeerWatermarks ("n1:120,n2:118", match index per peer) and
//     dledgerPeerLag_<id> (entries behind), plus dledgerRoleChanges (events
//     since start), dledgerLastRoleChange (unix ms), dledgerMasterServices,
//     dledgerMetadataAppliedIndex, dledgerMetadataSnapshotIndex and
//     dledgerPendingOffsets. brokerActive is true only on the writable leader.
//   - GET_RAFT_EVENTS (2101): the role-change ring (128 events), JSON
//     protocol.RaftEventsBody; ext sinceSeq / limit optional.
//     GET_RAFT_STATUS (2102): protocol.RaftStatusBody. Both answer on every
//     replica; a classic broker answers role CLASSIC and no events.
//     RAFT_TRANSFER_LEADERSHIP (2103, ext target=n2) on the leader hands
//     leadership over and answers once the target leads (when the
//     ReplicatedLog is a LeadershipTransferer, as cmd/broker's is; the
//     leader replicates its buffered consumer offsets first). mqadmin
//     raftStatus / raftEvents (-b or -c) and transferLeadership -b -t.
//   - Writes on a replica that is not the writable leader — SEND_MESSAGE
//     (10), V2 (310), batch (320), replies, CONSUMER_SEND_MSG_BACK (36),
//     END_TRANSACTION (37), UPDATE_CONSUMER_OFFSET (15), LOCK_BATCH_MQ (41)
//     and the admin changes (topic and group create/update/delete, offset
//     reset and clone, clean unused topics) — get SERVICE_NOT_AVAILABLE (14),
//     which rocketmq-client-go's SendSync retries on another broker, with
//     remark "not master (not leader); leader is n1 (master at
//     10.0.0.2:10911, term 7)" (what is known). The commit flag of a
//     PULL_MESSAGE served by a follower (the Go client clears it for slave
//     pulls; a client whose route still names the old master sets it) is
//     not applied there: such commits are coalesced and forwarded to the
//     master every 200 ms (oneway UPDATE_CONSUMER_OFFSET, best effort).
//
// # Role-change hooks
//
// The store calls the role listener (onRole) on its own goroutine, in
// order. Becoming leader is reported only after the log is committed and
// dispatched (applied == committed; metadata records included); the hook
// then accepts writes, starts the master-only services (delay delivery,
// transaction check-backs) and re-registers as brokerId 0. Stepping down
// (or a leader change seen by a follower): refuse writes, stop the
// master-only services first, drop the leader-only consumer-offset buffer,
// re-register under the follower id. Each change is one zap event
// ("role changed") and one protocol.RaftRoleEvent in the ring, with the
// time of every step; RegisteredMillis is filled in when the name servers
// accepted the new registration.

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
)

// replicaRole mirrors store.ReplicaRole (kept local so that the role logic
// is testable with fakes).
type replicaRole struct {
	Leader   bool // writable leader
	Term     int64
	LeaderID string
	SelfID   string
}

type peerReplication struct {
	MatchIndex  int64
	Lag         int64
	LastContact time.Duration
}

// replicaStatus mirrors store.ReplicationStatus.
type replicaStatus struct {
	SelfID           string
	Role             string // LEADER, FOLLOWER, CANDIDATE, "" (classic)
	Term             int64
	LeaderID         string
	LedgerBeginIndex int64
	LedgerEndIndex   int64
	CommittedIndex   int64
	Peers            map[string]peerReplication
}

// replica is what the broker needs from a replicated store.
type replica interface {
	systemLog
	role() replicaRole
	status() replicaStatus
	// waitDispatched waits until everything committed is dispatched.
	waitDispatched(ctx context.Context) error
}

// Timings of role changes.
const (
	roleCatchUpTimeout = 5 * time.Second
	regRetryMin        = 100 * time.Millisecond
	regRetryMax        = 3 * time.Second
)

// roleManager applies role changes reported by the store.
type roleManager struct {
	b      *Broker
	rep    replica
	repl   *replicatedMeta
	events *roleEventRing
	log    *zap.Logger
	now    func() time.Time

	leader atomic.Bool // the leader hook ran and no step-down since

	// ready is closed at the end of Broker.Start: the store may report a
	// role while Start still builds the registrar and the servers.
	ready     chan struct{}
	readyOnce sync.Once

	mu     sync.Mutex // serializes onRole
	last   replicaRole
	known  bool
	lastID int64 // broker id after the last event

	// reg tracks the registration of the latest event.
	reg struct {
		sync.Mutex
		pending  bool
		seq      int64 // its event (0 while the hook runs)
		brokerID int64
		at       time.Time
		done     float64 // ms from at to the accepted registration, 0 not yet
	}
}

func newRoleManager(b *Broker, rep replica, repl *replicatedMeta, log *zap.Logger) *roleManager {
	if log == nil {
		log = zap.NewNop()
	}
	return &roleManager{b: b, rep: rep, repl: repl, events: newRoleEventRing(roleEventCapacity), log: log, now: time.Now,
		ready: make(chan struct{})}
}

func (m *roleManager) markReady() { m.readyOnce.Do(func() { close(m.ready) }) }

// isMaster: writable leader, hooks done.
func (m *roleManager) isMaster() bool { return m.leader.Load() && m.rep.IsLeader() }

func roleName(r replicaRole, known bool) string {
	switch {
	case !known:
		return protocol.RaftRoleUnknown
	case r.Leader:
		return protocol.RaftRoleLeader
	case r.LeaderID == "":
		return protocol.RaftRoleUnknown
	default:
		return protocol.RaftRoleFollower
	}
}

func roleReason(old replicaRole, known bool, r replicaRole) string {
	switch {
	case !known && r.Leader:
		return fmt.Sprintf("first role after start: leader of term %d", r.Term)
	case !known && r.LeaderID != "":
		return fmt.Sprintf("first role after start: follower of %s in term %d", r.LeaderID, r.Term)
	case !known:
		return fmt.Sprintf("first role after start: no leader yet (term %d)", r.Term)
	case r.Leader && !old.Leader:
		return fmt.Sprintf("elected leader in term %d (was %s, leader %q), log committed and dispatched", r.Term, roleName(old, true), old.LeaderID)
	case r.Leader:
		return fmt.Sprintf("leader again in term %d (was term %d)", r.Term, old.Term)
	case old.Leader && r.Term > old.Term && r.LeaderID != "":
		return fmt.Sprintf("stepped down: %s leads term %d", r.LeaderID, r.Term)
	case old.Leader && r.Term > old.Term:
		return fmt.Sprintf("stepped down: term %d started, no leader yet", r.Term)
	case old.Leader:
		return fmt.Sprintf("stepped down in term %d (lost quorum or leadership transferred)", r.Term)
	case r.LeaderID == "" && old.LeaderID == "":
		return fmt.Sprintf("election: term %d -> %d, no leader yet", old.Term, r.Term)
	case r.LeaderID == "":
		return fmt.Sprintf("leader %s lost, election in term %d", old.LeaderID, r.Term)
	case old.LeaderID != r.LeaderID:
		return fmt.Sprintf("new leader %s in term %d (was %q)", r.LeaderID, r.Term, old.LeaderID)
	default:
		return fmt.Sprintf("term %d -> %d, leader %s", old.Term, r.Term, r.LeaderID)
	}
}

// onRole is the store's role listener.
func (m *roleManager) onRole(r replicaRole) {
	select {
	case <-m.ready:
	case <-m.b.stopCh:
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.known && r == m.last && r.Leader == m.leader.Load() {
		return // nothing changed for the broker
	}
	if m.known && !r.Leader && r.SelfID != "" && r.LeaderID == r.SelfID && !m.leader.Load() {
		// Elected but not writable yet (catching up): writes are already
		// refused, and the store calls again once this replica leads. Not
		// recording "follower of itself" keeps the real old leader in that
		// event.
		return
	}
	start := m.now()
	old, known := m.last, m.known
	if !known {
		m.lastID = m.b.registeredBrokerID()
	}
	ev := protocol.RaftRoleEvent{
		Timestamp:   start.UnixMilli(),
		SelfID:      r.SelfID,
		Term:        r.Term,
		OldTerm:     old.Term,
		OldRole:     roleName(old, known),
		NewRole:     roleName(r, true),
		OldLeader:   old.LeaderID,
		NewLeader:   r.LeaderID,
		OldBrokerID: m.lastID,
		Reason:      roleReason(old, known, r),
	}
	step := func(name string, f func() error) {
		t := m.now()
		err := f()
		s := protocol.RaftStep{Name: name, Millis: millis(m.now().Sub(t))}
		if err != nil {
			s.Error = err.Error()
		}
		ev.Steps = append(ev.Steps, s)
	}
	if r.Leader {
		step("waitDispatched", func() error {
			ctx, cancel := context.WithTimeout(context.Background(), roleCatchUpTimeout)
			defer cancel()
			return m.rep.waitDispatched(ctx)
		})
		step("acceptWrites", func() error { m.leader.Store(true); return nil })
		step("startMasterServices", func() error { m.b.startMasterServices(); return nil })
	} else {
		step("refuseWrites", func() error { m.leader.Store(false); return nil })
		step("stopMasterServices", func() error { m.b.stopMasterServices(); return nil })
		if m.repl != nil {
			step("dropOffsetBuffer", func() error {
				ev.DroppedOffsets = m.repl.dropBuffer()
				return nil
			})
		}
	}
	m.last, m.known = r, true
	ev.NewBrokerID = m.b.registeredBrokerID()
	m.lastID = ev.NewBrokerID
	m.reg.Lock()
	m.reg.pending, m.reg.seq, m.reg.brokerID, m.reg.at, m.reg.done = true, 0, ev.NewBrokerID, start, 0
	m.reg.Unlock()
	step("register", func() error { m.b.triggerRegister(); return nil })
	ev.TotalMillis = millis(m.now().Sub(start))
	seq := m.events.add(ev)
	m.reg.Lock()
	if m.reg.pending {
		m.reg.seq = seq
		if m.reg.done > 0 { // the registration beat us
			d := m.reg.done
			m.reg.pending = false
			m.events.update(seq, func(ev *protocol.RaftRoleEvent) { ev.RegisteredMillis = d })
		}
	}
	m.reg.Unlock()

	fields := []zap.Field{
		zap.Int64("seq", seq), zap.String("oldRole", ev.OldRole), zap.String("newRole", ev.NewRole),
		zap.Int64("term", ev.Term), zap.Int64("oldTerm", ev.OldTerm),
		zap.String("oldLeader", ev.OldLeader), zap.String("newLeader", ev.NewLeader),
		zap.Int64("oldBrokerId", ev.OldBrokerID), zap.Int64("newBrokerId", ev.NewBrokerID),
		zap.String("reason", ev.Reason), zap.Float64("totalMs", ev.TotalMillis),
	}
	for _, s := range ev.Steps {
		fields = append(fields, zap.Float64(s.Name+"Ms", s.Millis))
		if s.Error != "" {
			fields = append(fields, zap.String(s.Name+"Error", s.Error))
		}
	}
	if ev.DroppedOffsets > 0 {
		fields = append(fields, zap.Int("droppedOffsets", ev.DroppedOffsets))
	}
	m.log.Info("role changed", fields...)
}

// registered is the registrar's round callback: it completes the pending
// event once every name server accepted the id that event registered.
func (m *roleManager) registered(brokerID int64, ok bool) {
	if !ok {
		return
	}
	m.reg.Lock()
	if !m.reg.pending || m.reg.done > 0 || m.reg.brokerID != brokerID {
		m.reg.Unlock()
		return
	}
	seq := m.reg.seq
	d := max(millis(m.now().Sub(m.reg.at)), 0.001)
	m.reg.done = d
	if seq != 0 {
		m.reg.pending = false
		m.events.update(seq, func(ev *protocol.RaftRoleEvent) { ev.RegisteredMillis = d })
	}
	m.reg.Unlock()
	m.log.Info("registered after role change", zap.Int64("seq", seq), zap.Int64("brokerId", brokerID), zap.Float64("sinceRoleChangeMs", d))
}

// onRegisterRound is the registrar's OnRound.
func (b *Broker) onRegisterRound(brokerID, _ int64, ok bool) {
	if b.roles != nil {
		b.roles.registered(brokerID, ok)
	}
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// leaderHint names the leader for remarks: "n1 (master at 10.0.0.2:10911)".
func (m *roleManager) leaderHint() string {
	r := m.rep.role()
	addr := ""
	if m.b.registrar != nil {
		addr, _ = m.b.registrar.MasterAddr()
	}
	switch {
	case r.LeaderID != "" && addr != "":
		return fmt.Sprintf("%s (master at %s, term %d)", r.LeaderID, addr, r.Term)
	case r.LeaderID != "":
		return fmt.Sprintf("%s (term %d)", r.LeaderID, r.Term)
	default:
		return addr
	}
}

// ---------------------------------------------------------------------------
// Status: runtime keys, GET_RAFT_STATUS, GET_RAFT_EVENTS.

func (b *Broker) raftStatus() protocol.RaftStatusBody {
	cfg := b.config()
	st := protocol.RaftStatusBody{
		BrokerName: cfg.BrokerName,
		BrokerAddr: b.storeHost,
		Role:       protocol.RaftRoleClassic,
		BrokerID:   b.registeredBrokerID(),
	}
	if b.meta != nil {
		st.MetadataAppliedIndex = b.meta.AppliedIndex()
		st.MetadataSnapshotIndex = b.meta.SnapshotIndex()
	}
	b.roleMu.Lock()
	st.MasterServices = b.masterServicesOn
	b.roleMu.Unlock()
	m := b.roles
	if m == nil {
		return st
	}
	s := m.rep.status()
	st.Group = cfg.DLegerGroup
	st.SelfID = s.SelfID
	st.Role = s.Role
	if st.Role == "" {
		st.Role = protocol.RaftRoleUnknown
	}
	st.Term, st.LeaderID = s.Term, s.LeaderID
	st.LedgerBeginIndex, st.LedgerEndIndex, st.CommittedIndex = s.LedgerBeginIndex, s.LedgerEndIndex, s.CommittedIndex
	ids := make([]string, 0, len(s.Peers))
	for id := range s.Peers {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	peers, _ := cfg.DLedgerPeers()
	for _, id := range ids {
		p := s.Peers[id]
		rp := protocol.RaftPeer{ID: id, MatchIndex: p.MatchIndex, Lag: p.Lag, LastContactMillis: p.LastContact.Milliseconds()}
		for _, c := range peers {
			if c.ID == id {
				rp.Addr = c.Addr
			}
		}
		st.Peers = append(st.Peers, rp)
	}
	if m.repl != nil {
		st.PendingOffsets = m.repl.pendingOffsets()
	}
	if ev, ok := m.events.last(); ok {
		st.LastEvent = &ev
	}
	return st
}

// addRaftRuntimeInfo adds the dledger* keys to a GET_BROKER_RUNTIME_INFO
// table (DLedger mode only).
func (b *Broker) addRaftRuntimeInfo(t map[string]string) {
	if b.roles == nil {
		return
	}
	st := b.raftStatus()
	i64 := func(v int64) string { return strconv.FormatInt(v, 10) }
	t["dledgerRole"] = st.Role
	t["dledgerTerm"] = i64(st.Term)
	t["dledgerLeaderId"] = st.LeaderID
	t["dledgerSelfId"] = st.SelfID
	t["dledgerBrokerId"] = i64(st.BrokerID)
	t["dledgerCommittedIndex"] = i64(st.CommittedIndex)
	t["dledgerLedgerBeginIndex"] = i64(st.LedgerBeginIndex)
	t["dledgerLedgerEndIndex"] = i64(st.LedgerEndIndex)
	t["dledgerMasterServices"] = strconv.FormatBool(st.MasterServices)
	t["dledgerMetadataAppliedIndex"] = i64(st.MetadataAppliedIndex)
	t["dledgerMetadataSnapshotIndex"] = i64(st.MetadataSnapshotIndex)
	t["dledgerPendingOffsets"] = strconv.Itoa(st.PendingOffsets)
	marks := make([]string, 0, len(st.Peers))
	for _, p := range st.Peers {
		marks = append(marks, p.ID+":"+i64(p.MatchIndex))
		t["dledgerPeerLag_"+p.ID] = i64(p.Lag)
	}
	t["dledgerPeerWatermarks"] = strings.Join(marks, ",")
	evs := b.roles.events.list(0, 1)
	t["dledgerRoleChanges"] = i64(evs.Total)
	last := int64(0)
	if len(evs.Events) > 0 {
		last = evs.Events[0].Timestamp
	}
	t["dledgerLastRoleChange"] = i64(last)
}

func (b *Broker) registerRaftProcessors() {
	b.mux.HandleFunc(protocol.GetRaftEvents, b.handleGetRaftEvents)
	b.mux.HandleFunc(protocol.GetRaftStatus, b.handleGetRaftStatus)
	b.mux.HandleFunc(protocol.RaftTransferLeadership, b.handleTransferLeadership)
}

// LeadershipTransferer is an optional capability of a store.ReplicatedLog:
// hand leadership to the peer target (a dLegerSelfId) and wait until it
// leads. RAFT_TRANSFER_LEADERSHIP uses it when the log has it.
type LeadershipTransferer interface {
	TransferLeadership(ctx context.Context, target string) error
}

// transferTimeout bounds RAFT_TRANSFER_LEADERSHIP.
const transferTimeout = 10 * time.Second

func (b *Broker) handleTransferLeadership(_ remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h protocol.RaftTransferLeadershipRequestHeader
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return badHeader(err)
	}
	tr, ok := b.opts.ReplicatedLog.(LeadershipTransferer)
	if b.roles == nil || !ok {
		return respond(protocol.RequestCodeNotSupported, "leadership transfer needs DLedger mode and a log that can transfer")
	}
	if !b.IsMaster() {
		return respond(protocol.ServiceNotAvailable, notMasterRemark(b.masterHint())+"; ask the leader to transfer")
	}
	if self := b.roles.rep.role().SelfID; h.Target == self {
		return respond(protocol.Success, "already the leader")
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), transferTimeout)
	defer cancel()
	// A planned hand-over loses no consumer progress: replicate the
	// buffered offsets first (best effort; clients re-commit anyway).
	if b.repl != nil {
		fctx, fcancel := context.WithTimeout(ctx, 2*time.Second)
		if err := b.repl.flushOffsets(fctx); err != nil {
			b.log.Warn("flushing consumer offsets before a leadership transfer failed", zap.Error(err))
		}
		fcancel()
	}
	if err := tr.TransferLeadership(ctx, h.Target); err != nil {
		b.log.Warn("leadership transfer failed", zap.String("target", h.Target), zap.Error(err))
		return respond(protocol.SystemError, "leadership transfer to "+h.Target+" failed: "+err.Error())
	}
	b.log.Info("leadership transferred", zap.String("target", h.Target), zap.Duration("took", time.Since(start)))
	return respond(protocol.Success, fmt.Sprintf("leadership transferred to %s in %s", h.Target, time.Since(start).Round(time.Millisecond)))
}

func (b *Broker) handleGetRaftEvents(_ remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h protocol.GetRaftEventsRequestHeader
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return badHeader(err)
	}
	body := protocol.RaftEventsBody{Capacity: roleEventCapacity, Events: []protocol.RaftRoleEvent{}}
	if b.roles != nil {
		body = b.roles.events.list(h.SinceSeq, int(h.Limit))
	}
	return jsonResponse(body)
}

func (b *Broker) handleGetRaftStatus(_ remoting.Conn, _ *remoting.RemotingCommand) *remoting.RemotingCommand {
	return jsonResponse(b.raftStatus())
}

// RaftEvents returns the role-change events (oldest first); nil in
// classic mode.
func (b *Broker) RaftEvents() []protocol.RaftRoleEvent {
	if b.roles == nil {
		return nil
	}
	return b.roles.events.list(0, 0).Events
}

// ---------------------------------------------------------------------------
// Follower refusal of admin changes.

// leaderOnlyCodes are the admin requests that change metadata; a replica
// that is not the writable leader refuses them naming the leader (the
// sends, offset commits and locks check IsMaster in their processors).
var leaderOnlyCodes = []int16{
	protocol.UpdateAndCreateTopic,
	protocol.UpdateAndCreateTopicList,
	protocol.DeleteTopicInBroker,
	protocol.UpdateAndCreateSubscriptionGroup,
	protocol.UpdateAndCreateSubscriptionGroupList,
	protocol.DeleteSubscriptionGroup,
	protocol.InvokeBrokerToResetOffset,
	protocol.ResetConsumerOffsetInBroker,
	protocol.CloneGroupOffset,
	protocol.CleanUnusedTopic,
	protocol.CleanExpiredConsumequeue,
	protocol.UpdateAndGetGroupForbidden,
}

// handler is what the remoting servers serve: the mux, behind the
// follower guard in DLedger mode. It serves the mux's inline codes on the
// event loop.
func (b *Broker) handler() remoting.Handler { return brokerHandler{b} }

type brokerHandler struct{ b *Broker }

func (h brokerHandler) ServeRemoting(c remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	b := h.b
	if b.roles != nil && slices.Contains(leaderOnlyCodes, req.Code) && !b.IsMaster() {
		return respond(protocol.ServiceNotAvailable, notMasterRemark(b.masterHint()))
	}
	return b.mux.ServeRemoting(c, req)
}

// ServesInline: no leader-only code is served inline (ServeRemoting's
// guard stays on the worker path).
func (h brokerHandler) ServesInline(code int16) bool {
	return !slices.Contains(leaderOnlyCodes, code) && h.b.mux.ServesInline(code)
}

func (h brokerHandler) ServeInline(c remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	return h.b.mux.ServeInline(c, req)
}
