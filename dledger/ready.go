package dledger

import (
	"fmt"

	"go.uber.org/zap"
)

// --- leadership transfer ---

// TransferLeadership starts handing leadership to peer to: the leader
// refuses new proposals, brings to up to date, then sends it MsgTimeoutNow
// so it campaigns at once. The transfer aborts after an election timeout.
func (r *Core) TransferLeadership(to string) error {
	if r.role != RoleLeader {
		return &NotLeaderError{Leader: r.lead}
	}
	if r.prs[to] == nil {
		return fmt.Errorf("%w: %q", ErrUnknownPeer, to)
	}
	if to == r.id {
		return nil
	}
	if r.leadTransferee == to {
		return nil
	}
	r.abortLeaderTransfer()
	r.leadTransferee = to
	r.transferElapsed = 0
	r.logger.Info("leadership transfer started", zap.String("to", to), zap.Int64("term", r.term))
	if r.prs[to].match == r.log.lastIndex() {
		r.sendTimeoutNow(to)
	} else if !r.sendAppend(to, true) {
		r.prs[to].becomeProbe()
		r.sendAppend(to, true)
	}
	return nil
}

func (r *Core) sendTimeoutNow(to string) {
	r.send(Message{Type: MsgTimeoutNow, To: to, Index: -1, Commit: -1, Hint: -1})
}

func (r *Core) abortLeaderTransfer() {
	r.leadTransferee = ""
	r.transferElapsed = 0
}

func (r *Core) maybeTransferToPreferred() {
	p := r.preferred
	if p == "" || p == r.id || r.leadTransferee != "" || r.preferredBackoff > 0 {
		return
	}
	// The preferred peer must be active and hold everything committed,
	// and this term's no-op must be committed; the transfer itself pauses
	// proposals and brings it fully up to date before MsgTimeoutNow.
	pr := r.prs[p]
	if t, err := r.log.term(r.log.committed); err != nil || t != r.term {
		return
	}
	if pr.recentActive && pr.match >= r.log.committed {
		r.logger.Info("transferring leadership to the preferred leader", zap.String("to", p))
		_ = r.TransferLeadership(p)
	}
}

// --- output ---

// send queues m; responses that promise durable state wait for persistence.
func (r *Core) send(m Message) {
	r.sendRaw(m, m.Type.isResponse())
}

func (r *Core) sendRaw(m Message, afterPersist bool) {
	m.From = r.id
	if m.Term == 0 && m.Type != MsgPreVote && m.Type != MsgVote && m.Type != MsgVoteResp && m.Type != MsgPreVoteResp {
		m.Term = r.term
	}
	if afterPersist {
		r.msgsAfter = append(r.msgsAfter, m)
	} else {
		r.msgs = append(r.msgs, m)
	}
}

// coalesceAcks keeps, per leader and term, only the highest successful
// MsgAppResp: success answers are cumulative (the follower's log matches
// the leader's up to Index), so one answers for all a loop turn received.
func (r *Core) coalesceAcks() {
	if len(r.msgsAfter) < 2 {
		return
	}
	type key struct {
		to   string
		term int64
	}
	best := map[key]int{}
	for i, m := range r.msgsAfter {
		if m.Type != MsgAppResp || m.Reject {
			continue
		}
		k := key{m.To, m.Term}
		if j, ok := best[k]; !ok || r.msgsAfter[j].Index <= m.Index {
			best[k] = i
		}
	}
	out := r.msgsAfter[:0]
	for i, m := range r.msgsAfter {
		if m.Type == MsgAppResp && !m.Reject && best[key{m.To, m.Term}] != i {
			continue
		}
		out = append(out, m)
	}
	r.msgsAfter = out
}

// HasReady reports whether Ready has anything to hand out.
func (r *Core) HasReady() bool {
	return r.pendingSend || r.pendingCommit || len(r.msgs) > 0 || len(r.msgsAfter) > 0 || len(r.log.unstable) > 0 ||
		r.hardState() != r.prevHard || r.softState() != r.prevSoft || r.log.committed != r.prevCommit
}

// Ready returns the pending work. See Ready for the driver's duties.
func (r *Core) Ready() Ready {
	r.flushSends()
	r.coalesceAcks()
	rd := Ready{
		Entries:              r.log.unstable,
		Messages:             r.msgs,
		MessagesAfterPersist: r.msgsAfter,
		CommitIndex:          r.log.committed,
	}
	// Copies taken inside the branches: a variable whose address is taken
	// is allocated where it is declared, on every Ready.
	if hs := r.hardState(); hs != r.prevHard {
		h := hs
		rd.HardState = &h
	}
	if ss := r.softState(); ss != r.prevSoft {
		s := ss
		rd.SoftState = &s
	}
	r.msgs, r.msgsAfter = r.spare, r.spareAfter
	r.spare, r.spareAfter = nil, nil
	return rd
}

// Advance tells the core that rd was handled: its HardState and Entries
// are durable (as durable as the driver's mode promises) and its messages
// were sent.
func (r *Core) Advance(rd Ready) {
	// The driver is done with the messages: their arrays serve a later
	// Ready (an allocation less per loop turn), cleared of entry bodies.
	r.spare, r.spareAfter = recycled(rd.Messages), recycled(rd.MessagesAfterPersist)
	if rd.HardState != nil {
		r.prevHard = *rd.HardState
	}
	if rd.SoftState != nil {
		r.prevSoft = *rd.SoftState
	}
	r.prevCommit = rd.CommitIndex
	if n := len(rd.Entries); n > 0 {
		r.log.stableTo(rd.Entries[n-1].Index)
		// Overwritten entries are no longer the durable ones.
		r.synced = min(r.synced, rd.Entries[0].Index-1)
	}
	self := r.prs[r.id]
	self.match = r.durableIndex()
	self.next = self.match + 1
	switch r.role {
	case RoleCandidate:
		if r.pendingSelfVote && r.prevHard.Term == r.term && r.prevHard.VotedFor == r.id {
			r.pendingSelfVote = false
			switch r.poll(r.id, true) {
			case voteWon:
				r.becomeLeader()
			case voteLost:
				r.becomeFollower(r.term, "")
			}
		}
	case RoleLeader:
		if r.maybeCommit() {
			r.pendingCommit = true
		}
	}
}

func recycled(ms []Message) []Message {
	if cap(ms) == 0 || cap(ms) > 1024 {
		return nil
	}
	clear(ms)
	return ms[:0]
}

// durableIndex is the last entry this replica may count as stored: every
// entry handed to storage, or with DeferredSync those reported by Synced.
func (r *Core) durableIndex() int64 {
	if r.deferredSync {
		return min(r.log.offset-1, r.synced)
	}
	return r.log.offset - 1
}

// Synced reports (DeferredSync) that every entry up to index written
// before the fsync began is durable. The driver must not report entries
// Advance has not seen, and must lower index to below any entry
// overwritten since the fsync began (a follower's truncation): the core
// cannot tell a stale report from a fresh one.
func (r *Core) Synced(index int64) {
	if !r.deferredSync || index <= r.synced {
		return
	}
	r.synced = min(index, r.log.offset-1)
	if self := r.prs[r.id]; self != nil {
		self.match = max(self.match, r.durableIndex())
	}
	if r.role == RoleLeader && r.maybeCommit() {
		r.pendingCommit = true
	}
}

// PeerStatus is the leader's view of one follower.
type PeerStatus struct {
	Match             int64
	Next              int64
	Replicating       bool
	Inflight          int
	RecentActive      bool
	TicksSinceContact int64
}

// CoreStatus is a snapshot of the core's state.
type CoreStatus struct {
	ID          string
	Role        Role
	Term        int64
	Vote        string
	Leader      string
	FirstIndex  int64
	LastIndex   int64
	CommitIndex int64
	Transferee  string
	Broken      error
	Peers       map[string]PeerStatus // leader only, followers' progress
}

// Status returns a snapshot of the core's state.
func (r *Core) Status() CoreStatus {
	s := CoreStatus{
		ID: r.id, Role: r.role, Term: r.term, Vote: r.vote, Leader: r.lead,
		FirstIndex: r.log.firstIndex(), LastIndex: r.log.lastIndex(), CommitIndex: r.log.committed,
		Transferee: r.leadTransferee, Broken: r.broken,
	}
	if r.role == RoleLeader {
		s.Peers = make(map[string]PeerStatus, len(r.prs))
		for id, pr := range r.prs {
			if id == r.id {
				continue
			}
			s.Peers[id] = PeerStatus{Match: pr.match, Next: pr.next, Replicating: pr.replicating,
				Inflight: len(pr.inflight), RecentActive: pr.recentActive, TicksSinceContact: r.ticks - pr.lastContact}
		}
	}
	return s
}
