package dledger

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"go.uber.org/zap"
)

// Role is a replica's Raft role.
type Role uint8

// Roles.
const (
	RoleFollower Role = iota
	RolePreCandidate
	RoleCandidate
	RoleLeader
)

func (r Role) String() string {
	switch r {
	case RoleFollower:
		return "follower"
	case RolePreCandidate:
		return "pre-candidate"
	case RoleCandidate:
		return "candidate"
	case RoleLeader:
		return "leader"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// Magic values of entries.
const (
	MagicNormal int32 = 1
	MagicNoop   int32 = 2 // appended by a new leader at the start of its term
)

// Errors returned to proposers. ErrNotLeader, ErrLeadershipLost and
// ErrTransferring are retryable: the caller should retry on the leader.
var (
	ErrNotLeader      = errors.New("dledger: not leader")
	ErrLeadershipLost = errors.New("dledger: leadership lost before the append committed (outcome unknown)")
	ErrTransferring   = errors.New("dledger: leadership transfer in progress")
	ErrStopped        = errors.New("dledger: node stopped")
	ErrHookResized    = errors.New("dledger: append hook changed the body length")
	ErrUnknownPeer    = errors.New("dledger: unknown peer")
)

// NotLeaderError is ErrNotLeader carrying the leader's id when known.
type NotLeaderError struct{ Leader string }

func (e *NotLeaderError) Error() string {
	if e.Leader == "" {
		return "dledger: not leader (leader unknown)"
	}
	return "dledger: not leader (leader is " + e.Leader + ")"
}

// Is makes errors.Is(err, ErrNotLeader) hold.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }

// CoreConfig configures a Core. Durations are in ticks.
type CoreConfig struct {
	ID      string
	Peers   []string // every member's id, self included
	Storage LogStorage
	// ElectionTick is the base election timeout T: followers campaign after a
	// random timeout in [T, ElectionTickMax) without hearing from a leader,
	// and a leader steps down when a majority has not answered within T
	// (check quorum). ElectionTickMax <= T means 2T.
	ElectionTick    int
	ElectionTickMax int
	HeartbeatTick   int
	Rand            *rand.Rand // seeded source for election timeouts (required)

	DisablePreVote     bool
	DisableCheckQuorum bool

	MaxMsgBytes   int64 // bytes of entries per MsgApp (default 1 MiB)
	MaxMsgEntries int   // entries per MsgApp (default 4096)
	MaxInflight   int   // unacknowledged MsgApp batches per follower (default 256)
	// TailInflight: a batch that would reach the end of the log (one not
	// cut short by MaxMsgBytes/MaxMsgEntries) waits while this many batches
	// to that follower are unacknowledged; the next answer sends it with
	// everything proposed meanwhile. Full batches still stream up to
	// MaxInflight. Under many small concurrent proposals this trades a
	// deep pipeline of tiny batches (a frame, a follower loop turn and an
	// answer each) for few large ones; an entry waits at most one round
	// trip for the batch ahead of it. Default 1; >= MaxInflight disables.
	TailInflight int

	// DeferredSync: the driver fsyncs on another goroutine, so Advance
	// means "written" and the driver reports durability later through
	// Synced. Until then a leader does not count its own copy of an entry
	// towards commit. (Acknowledgements to a leader are in
	// MessagesAfterPersist; the driver holds them until the fsync covering
	// the Ready they came with is done.)
	DeferredSync bool

	// PreferredLeader: when set, a leader that is not it transfers leadership
	// to it as soon as it is active and caught up.
	PreferredLeader string
	// Fingerprint is opaque to dledger: it names what this replica holds
	// outside the log that the whole group must share (see fingerprint.go).
	// Empty: nothing.
	Fingerprint []byte
	Logger      *zap.Logger
}

func (c *CoreConfig) validate() error {
	if c.ID == "" {
		return errors.New("dledger: empty ID")
	}
	if !slices.Contains(c.Peers, c.ID) {
		return fmt.Errorf("dledger: self %q not in peers %v", c.ID, c.Peers)
	}
	seen := map[string]bool{}
	for _, p := range c.Peers {
		if p == "" || len(p) > maxIDLen || seen[p] {
			return fmt.Errorf("dledger: bad or duplicate peer id %q", p)
		}
		seen[p] = true
	}
	if c.PreferredLeader != "" && !seen[c.PreferredLeader] {
		return fmt.Errorf("dledger: preferred leader %q is not a peer", c.PreferredLeader)
	}
	if c.Storage == nil {
		return errors.New("dledger: nil Storage")
	}
	if c.Rand == nil {
		return errors.New("dledger: nil Rand")
	}
	if len(c.Fingerprint) > maxFingerprintLen {
		return fmt.Errorf("dledger: fingerprint of %d bytes (max %d)", len(c.Fingerprint), maxFingerprintLen)
	}
	if c.HeartbeatTick <= 0 || c.ElectionTick <= c.HeartbeatTick {
		return fmt.Errorf("dledger: need 0 < HeartbeatTick (%d) < ElectionTick (%d)", c.HeartbeatTick, c.ElectionTick)
	}
	return nil
}

// SoftState is volatile state worth reporting: it changes on role changes.
type SoftState struct {
	Role   Role
	Term   int64
	Leader string
}

// Ready is what the core asks its driver to do. Handle it in this order:
//
//  1. send Messages (they do not depend on local persistence);
//  2. persist HardState (if non-nil; SetHardState fsyncs) and append Entries
//     (they may overwrite the log from Entries[0].Index); in sync mode also
//     Sync;
//  3. send MessagesAfterPersist (acknowledgements and votes: they promise
//     the state written in step 2);
//  4. call Advance(rd);
//  5. publish CommitIndex: entries up to it are committed and, after step 2,
//     readable from storage.
//
// No Step, Tick or Propose may be called between Ready and Advance. The
// arrays of Messages and MessagesAfterPersist are the core's again after
// Advance (it reuses them): copy messages to keep them longer.
type Ready struct {
	SoftState            *SoftState // non-nil when role, term or leader changed
	HardState            *HardState // non-nil when it must be persisted
	Entries              []Entry
	Messages             []Message
	MessagesAfterPersist []Message
	CommitIndex          int64
}

// Core is the Raft state machine of one replica. It is not safe for
// concurrent use: one goroutine (Node's run loop, or the simulator) calls
// Step, Tick, Propose, Ready and Advance. It does no I/O except reading its
// LogStorage, starts no goroutines and reads no clock.
type Core struct {
	id     string
	peers  []string // sorted, self included
	quorum int

	term  int64
	vote  string
	lead  string
	role  Role
	log   *raftLog
	prs   map[string]*progress
	votes map[string]bool
	ticks int64 // ticks since creation (for last-contact reporting)
	// reported: tick of the last replication error logged per peer
	reported map[string]int64
	broken   error // storage corruption: never vote or lead

	electionElapsed     int
	heartbeatElapsed    int
	electionTimeout     int
	electionSpread      int // randomized timeouts are in [electionTimeout, electionTimeout+electionSpread)
	heartbeatTimeout    int
	randomizedElection  int
	checkQuorum         bool
	preVote             bool
	pendingSelfVote     bool
	leadTransferee      string
	transferElapsed     int
	preferred           string
	preferredBackoff    int
	pendingSend         bool // leader: new entries or acks since the last Ready
	pendingCommit       bool // leader: commit advanced since the last Ready
	maxMsgBytes         int64
	maxMsgEntries       int
	maxInflight         int
	tailInflight        int
	deferredSync        bool
	synced              int64 // DeferredSync: entries up to here are durable
	msgs, msgsAfter     []Message
	spare, spareAfter   []Message // arrays of an advanced Ready, reused
	stepping            Message   // the message Step is handling
	prevHard            HardState
	prevSoft            SoftState
	prevCommit          int64
	rand                *rand.Rand
	logger              *zap.Logger
	tickFn              func()
	stepFn              func(m *Message) error
	lastLeaderContactAt int64
	fingerprint         []byte
	fpReported          map[string]string // peer -> its differing fingerprint, logged once
}

// NewCore builds a core from cfg, recovering term, vote, log and the
// committed-index hint from cfg.Storage. It starts as a follower.
func NewCore(cfg CoreConfig) (*Core, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &Core{
		id:               cfg.ID,
		peers:            slices.Sorted(slices.Values(cfg.Peers)),
		quorum:           len(cfg.Peers)/2 + 1,
		log:              newRaftLog(cfg.Storage),
		electionTimeout:  cfg.ElectionTick,
		electionSpread:   cfg.ElectionTick,
		heartbeatTimeout: cfg.HeartbeatTick,
		checkQuorum:      !cfg.DisableCheckQuorum,
		preVote:          !cfg.DisablePreVote,
		preferred:        cfg.PreferredLeader,
		maxMsgBytes:      cfg.MaxMsgBytes,
		maxMsgEntries:    cfg.MaxMsgEntries,
		maxInflight:      cfg.MaxInflight,
		tailInflight:     cfg.TailInflight,
		deferredSync:     cfg.DeferredSync,
		synced:           cfg.Storage.LastIndex(), // what recovery found counts as durable
		rand:             cfg.Rand,
		logger:           cfg.Logger,
		fingerprint:      cfg.Fingerprint,
	}
	if r.maxMsgBytes <= 0 {
		r.maxMsgBytes = 1 << 20
	}
	if r.maxMsgEntries <= 0 {
		r.maxMsgEntries = 4096
	}
	if r.maxInflight <= 0 {
		r.maxInflight = 256
	}
	if r.tailInflight <= 0 {
		r.tailInflight = 1
	}
	if cfg.ElectionTickMax > cfg.ElectionTick {
		r.electionSpread = cfg.ElectionTickMax - cfg.ElectionTick
	}
	if r.logger == nil {
		r.logger = zap.NewNop()
	}
	r.logger = r.logger.With(zap.String("node", r.id))
	hs := cfg.Storage.HardState()
	r.prs = make(map[string]*progress, len(r.peers))
	for _, p := range r.peers {
		r.prs[p] = &progress{match: -1, noticeTick: -1}
	}
	r.becomeFollower(hs.Term, "")
	r.vote = hs.VotedFor
	r.prevHard = hs
	r.prevSoft = r.softState()
	r.prevCommit = r.log.committed
	// Probe the whole log once: corruption below the tail disables voting.
	if _, err := r.log.term(r.log.lastIndex()); err != nil && errors.Is(err, ErrCorrupt) {
		r.broken = err
	}
	r.logger.Info("dledger core started", zap.Int64("term", r.term), zap.String("vote", r.vote),
		zap.Int64("lastIndex", r.log.lastIndex()), zap.Int64("commit", r.log.committed))
	return r, nil
}

// ID returns the replica's id.
func (r *Core) ID() string { return r.id }

// Role returns the current role.
func (r *Core) Role() Role { return r.role }

// Term returns the current term.
func (r *Core) Term() int64 { return r.term }

// Leader returns the known leader ("" if none).
func (r *Core) Leader() string { return r.lead }

// CommitIndex returns the committed index (-1 when nothing is committed).
func (r *Core) CommitIndex() int64 { return r.log.committed }

// LastIndex returns the index of the last entry, persisted or not.
func (r *Core) LastIndex() int64 { return r.log.lastIndex() }

func (r *Core) softState() SoftState { return SoftState{Role: r.role, Term: r.term, Leader: r.lead} }

func (r *Core) hardState() HardState { return HardState{Term: r.term, VotedFor: r.vote} }

// --- role transitions ---

func (r *Core) reset(term int64) {
	if term != r.term {
		r.term = term
		r.vote = ""
	}
	r.lead = ""
	r.electionElapsed = 0
	r.heartbeatElapsed = 0
	r.randomizedElection = r.electionTimeout + r.rand.IntN(r.electionSpread)
	r.abortLeaderTransfer()
	r.votes = map[string]bool{}
	r.pendingSelfVote = false
	last := r.log.lastIndex()
	for id, pr := range r.prs {
		*pr = progress{match: -1, next: last + 1, noticeTick: -1, inflight: pr.inflight[:0]}
		if id == r.id {
			pr.match = r.durableIndex()
		}
	}
}

func (r *Core) becomeFollower(term int64, lead string) {
	r.reset(term)
	r.lead = lead
	r.role = RoleFollower
	r.tickFn = r.tickElection
	r.stepFn = r.stepFollower
}

func (r *Core) becomePreCandidate() {
	if r.role == RoleLeader {
		panic("dledger: leader cannot become pre-candidate")
	}
	// Term and vote are left alone: a pre-vote changes nothing durable.
	r.votes = map[string]bool{}
	r.lead = ""
	r.role = RolePreCandidate
	r.tickFn = r.tickElection
	r.stepFn = r.stepCandidate
}

func (r *Core) becomeCandidate() {
	if r.role == RoleLeader {
		panic("dledger: leader cannot become candidate")
	}
	r.reset(r.term + 1)
	r.vote = r.id
	// Our own vote counts only once term and vote are durable (Advance).
	r.pendingSelfVote = true
	r.role = RoleCandidate
	r.tickFn = r.tickElection
	r.stepFn = r.stepCandidate
}

func (r *Core) becomeLeader() {
	if r.role != RoleCandidate {
		panic("dledger: only a candidate can become leader")
	}
	r.reset(r.term)
	r.lead = r.id
	r.role = RoleLeader
	r.tickFn = r.tickHeartbeat
	r.stepFn = r.stepLeader
	for _, pr := range r.prs {
		pr.recentActive = true
		pr.lastContact = r.ticks
	}
	r.logger.Info("became leader", zap.Int64("term", r.term), zap.Int64("lastIndex", r.log.lastIndex()))
	// The no-op lets this term commit entries of earlier terms (Raft §5.4.2).
	r.appendEntries([]Entry{{Magic: MagicNoop}}, nil)
}

// --- ticks ---

// Tick advances logical time by one tick.
func (r *Core) Tick() {
	r.ticks++
	if r.preferredBackoff > 0 {
		r.preferredBackoff--
	}
	r.tickFn()
}

func (r *Core) promotable() bool {
	return r.broken == nil && r.prs[r.id] != nil
}

func (r *Core) tickElection() {
	r.electionElapsed++
	if r.promotable() && r.electionElapsed >= r.randomizedElection {
		r.electionElapsed = 0
		r.campaign(false)
	}
}

func (r *Core) tickHeartbeat() {
	r.heartbeatElapsed++
	r.electionElapsed++
	if r.leadTransferee != "" {
		r.transferElapsed++
		if r.transferElapsed >= r.electionTimeout {
			r.logger.Info("leadership transfer timed out", zap.String("to", r.leadTransferee))
			r.abortLeaderTransfer()
			r.preferredBackoff = 2 * r.electionTimeout
		}
	}
	if r.electionElapsed >= r.electionTimeout {
		r.electionElapsed = 0
		if r.checkQuorum && !r.quorumActive() {
			r.logger.Warn("stepping down: no quorum heard within an election timeout", zap.Int64("term", r.term))
			r.becomeFollower(r.term, "")
			return
		}
	}
	if r.broken != nil {
		r.becomeFollower(r.term, "")
		return
	}
	r.sendDueNotices()
	if r.heartbeatElapsed >= r.heartbeatTimeout {
		r.heartbeatElapsed = 0
		r.bcastHeartbeat()
		r.maybeTransferToPreferred()
	}
}

// quorumActive reports whether a majority (self included) was heard from
// since the last check, and clears the flags for the next round.
func (r *Core) quorumActive() bool {
	n := 0
	for id, pr := range r.prs {
		if id == r.id || pr.recentActive {
			n++
		}
		if id != r.id {
			pr.recentActive = false
		}
	}
	return n >= r.quorum
}

// --- elections ---

func (r *Core) campaign(transfer bool) {
	if !r.promotable() {
		return
	}
	var term int64
	var typ MsgType
	if r.preVote && !transfer {
		r.becomePreCandidate()
		term, typ = r.term+1, MsgPreVote
		if r.poll(r.id, true) == voteWon {
			r.campaign(true) // single-node group
			return
		}
	} else {
		r.becomeCandidate()
		term, typ = r.term, MsgVote
	}
	r.logger.Info("campaigning", zap.Stringer("type", typ), zap.Int64("term", term), zap.Bool("transfer", transfer))
	li, lt := r.log.lastIndex(), r.log.lastTerm()
	for _, p := range r.peers {
		if p != r.id {
			r.send(Message{Type: typ, To: p, Term: term, Index: li, LogTerm: lt, Force: transfer, Fingerprint: r.fingerprint})
		}
	}
}

type voteResult uint8

const (
	votePending voteResult = iota
	voteWon
	voteLost
)

func (r *Core) poll(id string, granted bool) voteResult {
	if _, ok := r.votes[id]; !ok {
		r.votes[id] = granted
	}
	yes, no := 0, 0
	for _, g := range r.votes {
		if g {
			yes++
		} else {
			no++
		}
	}
	switch {
	case yes >= r.quorum:
		return voteWon
	case no > len(r.peers)-r.quorum:
		return voteLost
	}
	return votePending
}

// --- stepping ---

// Step feeds one message from a peer into the core. Invalid messages (bad
// fields, unknown sender, wrong recipient) are dropped with an error
// wrapping ErrBadMessage; the core never panics on network input. The core
// may keep m.Entries (it never modifies them): the caller must not modify
// them afterwards either.
func (r *Core) Step(m Message) error {
	if err := m.validate(); err != nil {
		return err
	}
	if m.To != r.id {
		return fmt.Errorf("%w: addressed to %q", ErrBadMessage, m.To)
	}
	if m.From == r.id || r.prs[m.From] == nil {
		return fmt.Errorf("%w: from %q", ErrBadMessage, m.From)
	}
	switch {
	case m.Term > r.term:
		if m.Type == MsgVote || m.Type == MsgPreVote {
			inLease := r.checkQuorum && r.lead != "" && r.electionElapsed < r.electionTimeout
			if inLease && !m.Force {
				// We heard from a leader recently: a candidate that cannot
				// reach it must not disturb the group.
				return nil
			}
		}
		switch {
		case m.Type == MsgPreVote:
			// Never change term on a pre-vote.
		case m.Type == MsgPreVoteResp && !m.Reject:
			// A granted pre-vote answer carries the future term.
		default:
			lead := ""
			if m.Type == MsgApp || m.Type == MsgHeartbeat {
				lead = m.From
			}
			r.logger.Info("higher term seen", zap.Stringer("msg", m.Type), zap.String("from", m.From),
				zap.Int64("term", r.term), zap.Int64("msgTerm", m.Term))
			r.becomeFollower(m.Term, lead)
		}
	case m.Term < r.term:
		switch m.Type {
		case MsgApp, MsgHeartbeat:
			// A deposed leader: tell it our term so it steps down.
			r.send(Message{Type: MsgAppResp, To: m.From, Index: -1, Commit: -1, Hint: -1})
		case MsgPreVote, MsgVote:
			r.send(Message{Type: voteRespType(m.Type), To: m.From, Reject: true, Index: -1, Commit: -1, Hint: -1})
		}
		return nil
	}

	// Handlers take the message from a field: &m passed to the stepFn
	// function value would move every Step's m to the heap.
	r.stepping = m
	var err error
	if m.Type == MsgVote || m.Type == MsgPreVote {
		r.handleVote(&r.stepping)
	} else {
		err = r.stepFn(&r.stepping)
	}
	r.stepping = Message{} // drop the reference to the entries
	return err
}

func voteRespType(t MsgType) MsgType {
	if t == MsgPreVote {
		return MsgPreVoteResp
	}
	return MsgVoteResp
}

func (r *Core) handleVote(m *Message) {
	canVote := r.vote == m.From ||
		(r.vote == "" && r.lead == "") ||
		(m.Type == MsgPreVote && m.Term > r.term)
	upToDate := m.LogTerm > r.log.lastTerm() || (m.LogTerm == r.log.lastTerm() && m.Index >= r.log.lastIndex())
	resp := Message{Type: voteRespType(m.Type), To: m.From, Index: -1, Commit: -1, Hint: -1, Fingerprint: r.fingerprint}
	if canVote && upToDate && r.broken == nil && r.fingerprintAccepts(m) {
		resp.Term = m.Term
		if m.Type == MsgVote {
			r.electionElapsed = 0
			r.vote = m.From
		}
	} else {
		resp.Term = r.term
		resp.Reject = true
	}
	r.logger.Debug("vote", zap.Stringer("type", m.Type), zap.String("candidate", m.From),
		zap.Int64("term", m.Term), zap.Bool("granted", !resp.Reject))
	r.sendRaw(resp, true)
}

func (r *Core) stepFollower(m *Message) error {
	switch m.Type {
	case MsgApp:
		r.electionElapsed = 0
		r.lead = m.From
		r.lastLeaderContactAt = r.ticks
		r.handleAppend(m)
	case MsgHeartbeat:
		r.electionElapsed = 0
		r.lead = m.From
		r.lastLeaderContactAt = r.ticks
		r.log.commitTo(m.Commit)
		r.send(Message{Type: MsgHeartbeatResp, To: m.From, Index: -1, Commit: -1, Hint: -1})
	case MsgTimeoutNow:
		r.logger.Info("timeout-now received: campaigning for leadership transfer", zap.String("from", m.From))
		r.campaign(true)
	}
	return nil
}

func (r *Core) stepCandidate(m *Message) error {
	switch m.Type {
	case MsgApp:
		r.becomeFollower(m.Term, m.From)
		r.handleAppend(m)
	case MsgHeartbeat:
		r.becomeFollower(m.Term, m.From)
		return r.stepFollower(m)
	case MsgVoteResp, MsgPreVoteResp:
		if (r.role == RoleCandidate) != (m.Type == MsgVoteResp) {
			return nil // answer to an earlier phase
		}
		if m.Type == MsgPreVoteResp && !m.Reject && m.Term != r.term+1 {
			return nil
		}
		if m.Reject {
			r.fingerprintAccepts(m) // reports a voter that refuses us for a differing fingerprint
		}
		switch r.poll(m.From, !m.Reject) {
		case voteWon:
			if r.role == RolePreCandidate {
				r.campaign(true)
			} else if !r.pendingSelfVote {
				r.becomeLeader()
			}
		case voteLost:
			r.becomeFollower(r.term, "")
		}
	}
	return nil
}

func (r *Core) stepLeader(m *Message) error {
	pr := r.prs[m.From]
	switch m.Type {
	case MsgAppResp:
		pr.recentActive = true
		pr.lastContact = r.ticks
		r.handleAppendResponse(m, pr)
	case MsgHeartbeatResp:
		pr.recentActive = true
		pr.lastContact = r.ticks
		pr.probeSent = false
		if pr.replicating && pr.match < r.log.lastIndex() && pr.match == pr.matchAtHeartbeat {
			// No progress for a heartbeat interval: a batch or its
			// answer was lost. Resend from the last known match.
			pr.becomeProbe()
		}
		pr.matchAtHeartbeat = pr.match
		if pr.match < r.log.lastIndex() {
			r.sendAppends(m.From)
		}
	case MsgApp, MsgHeartbeat:
		r.logger.Error("two leaders in one term", zap.Int64("term", r.term), zap.String("other", m.From))
	}
	return nil
}
