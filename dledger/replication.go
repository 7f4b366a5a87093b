package dledger

import (
	"errors"
	"fmt"
	"slices"

	"go.uber.org/zap"
)

// --- replication: follower side ---

func (r *Core) handleAppend(m *Message) {
	resp := Message{Type: MsgAppResp, To: m.From, Commit: -1, Hint: -1}
	if m.Index < r.log.committed {
		// Everything up to our commit matches any leader's log.
		resp.Index = r.log.committed
		r.send(resp)
		return
	}
	if !r.log.matchTerm(m.Index, m.LogTerm) {
		hint := min(m.Index, r.log.lastIndex())
		hint = r.log.findConflictByTerm(hint, m.LogTerm)
		ht, _ := r.log.term(hint)
		resp.Index, resp.Reject, resp.Hint, resp.LogTerm = m.Index, true, hint, ht
		r.send(resp)
		return
	}
	lastNew := m.Index + int64(len(m.Entries))
	if ci := r.log.findConflict(m.Entries); ci >= 0 {
		if ci <= r.log.committed {
			r.logger.Error("leader tried to overwrite a committed entry; dropping", zap.Int64("index", ci),
				zap.Int64("commit", r.log.committed), zap.String("leader", m.From))
			return
		}
		ents := m.Entries[ci-(m.Index+1):]
		if err := r.log.checkPositions(ents); err != nil {
			r.logger.Error("rejecting entries", zap.Error(err), zap.String("leader", m.From))
			return
		}
		r.log.appendOwned(ents) // Step's caller gives up m.Entries
	}
	r.log.commitTo(min(m.Commit, lastNew))
	if m.CommitOnly && len(m.Entries) == 0 {
		return // nothing to acknowledge
	}
	resp.Index = lastNew
	r.send(resp)
}

// --- replication: leader side ---

// Propose appends bodies as new entries of the current term. For each
// entry, in order, it assigns Index, Term and Pos, then calls hook (if not
// nil) so the caller can patch position-dependent bytes into the body; the
// hook must not change the body's length. It returns the new entries.
func (r *Core) Propose(bodies [][]byte, hook func(*Entry)) ([]Entry, error) {
	if err := r.proposable(); err != nil {
		return nil, err
	}
	if len(bodies) == 0 {
		return nil, nil
	}
	ents := make([]Entry, len(bodies))
	for i, b := range bodies {
		ents[i] = Entry{Magic: MagicNormal, Body: b}
	}
	if err := r.appendEntries(ents, hook); err != nil {
		return nil, err
	}
	return ents, nil
}

// AppendPlaced appends entries the driver already placed (PlaceEntries at
// NextPlace, as Propose would have): a driver may place proposals on the
// proposers' goroutines and hand them over in bulk. Entries that do not
// continue the log exactly in the current term are refused whole. The core
// may keep ents itself (no copy): the caller must not modify it afterwards.
func (r *Core) AppendPlaced(ents []Entry) error {
	if err := r.proposable(); err != nil {
		return err
	}
	if len(ents) == 0 {
		return nil
	}
	next, end := r.NextPlace()
	for i := range ents {
		e := &ents[i]
		pos, newEnd := r.log.storage.Place(end, e.Size())
		if e.Index != next+int64(i) || e.Term != r.term || e.Magic != MagicNormal || e.Pos != pos {
			return fmt.Errorf("%w: entry %d/%d at %d does not follow %d/%d at %d", ErrMisplaced,
				e.Index, e.Term, e.Pos, next+int64(i), r.term, pos)
		}
		end = newEnd
	}
	r.log.appendOwned(ents)
	r.pendingSend = true
	return nil
}

// ErrMisplaced: AppendPlaced got entries that do not continue the log.
var ErrMisplaced = errors.New("dledger: placed entries do not continue the log")

func (r *Core) proposable() error {
	if r.role != RoleLeader {
		return &NotLeaderError{Leader: r.lead}
	}
	if r.leadTransferee != "" {
		return ErrTransferring
	}
	return nil
}

// NextPlace is where the next entry goes: its index and the byte position
// the previous entry ends at.
func (r *Core) NextPlace() (index, end int64) { return r.log.lastIndex() + 1, r.log.end() }

// PlaceEntries assigns Index (from first), Term and Pos (from end, by
// layout) to ents in order, calling hook after each; it returns the end of
// the last entry, or ErrHookResized.
func PlaceEntries(layout Layout, ents []Entry, first, term, end int64, hook func(*Entry)) (int64, error) {
	for i := range ents {
		e := &ents[i]
		e.Index = first + int64(i)
		e.Term = term
		size := e.Size()
		e.Pos, end = layout.Place(end, size)
		if hook != nil {
			hook(e)
			if e.Size() != size {
				return 0, ErrHookResized
			}
		}
	}
	return end, nil
}

// appendEntries places ents after the last entry and replicates them.
func (r *Core) appendEntries(ents []Entry, hook func(*Entry)) error {
	next, end := r.NextPlace()
	if _, err := PlaceEntries(r.log.storage, ents, next, r.term, end, hook); err != nil {
		return err
	}
	r.log.append(ents)
	r.pendingSend = true // sent by the next Ready: all proposals of a loop turn in one batch
	return nil
}

func (r *Core) bcastAppend() {
	for _, p := range r.peers {
		if p != r.id {
			r.sendAppends(p)
		}
	}
}

// bcastCommit tells followers about a new commit index. A follower with
// batches in flight learns it from the next batch or the answer-driven
// sends; an idle one gets an (empty) commit-only MsgApp, at most one per
// tick (the next tick sends what that held back), so followers' readers
// see commits within a tick without a notice per commit: with few
// appenders nearly every commit finds a follower idle, and a notice costs
// a frame and a follower loop turn.
func (r *Core) bcastCommit() {
	for _, p := range r.peers {
		if p == r.id {
			continue
		}
		pr := r.prs[p]
		if pr.replicating && len(pr.inflight) > 0 {
			r.sendAppends(p)
			continue
		}
		if pr.replicating && pr.match == r.log.lastIndex() {
			if pr.noticeTick == r.ticks {
				pr.noticeDue = true
			} else {
				r.sendCommitNotice(p, pr)
			}
			continue
		}
		r.sendAppend(p, true)
		r.sendAppends(p)
	}
}

// sendCommitNotice sends an idle, in-sync follower the commit index in an
// empty MsgApp, which it does not answer (it changes nothing we track).
func (r *Core) sendCommitNotice(to string, pr *progress) {
	pr.noticeTick, pr.noticeDue = r.ticks, false
	if t, err := r.log.term(pr.match); err == nil {
		r.send(Message{Type: MsgApp, To: to, Index: pr.match, LogTerm: t, Commit: r.log.committed, Hint: -1, CommitOnly: true})
	}
}

// sendDueNotices sends the commit-only notices bcastCommit held back
// during the last tick (leader, on Tick). A follower that is no longer
// idle and in sync learns the commit index from its batches.
func (r *Core) sendDueNotices() {
	for _, p := range r.peers {
		pr := r.prs[p]
		if p == r.id || !pr.noticeDue {
			continue
		}
		pr.noticeDue = false
		if pr.replicating && pr.match == r.log.lastIndex() && len(pr.inflight) == 0 {
			r.sendCommitNotice(p, pr)
		}
	}
}

// sendAppends sends batches to peer to while flow control allows and
// entries remain (pipelining).
func (r *Core) sendAppends(to string) {
	for i := 0; i < r.maxInflight && r.sendAppend(to, false); i++ {
	}
}

func (r *Core) bcastHeartbeat() {
	for _, p := range r.peers {
		if p == r.id {
			continue
		}
		pr := r.prs[p]
		r.send(Message{Type: MsgHeartbeat, To: p, Commit: min(pr.match, r.log.committed), Index: -1, Hint: -1})
	}
}

// sendAppend sends the next batch to peer to if its flow control allows;
// with sendIfEmpty it sends even without new entries (to carry the commit
// index or probe). It reports whether a message went out.
func (r *Core) sendAppend(to string, sendIfEmpty bool) bool {
	pr := r.prs[to]
	if pr.paused(r.maxInflight) {
		return false
	}
	last := r.log.lastIndex()
	prev := pr.next - 1
	if r.tailWaits(pr, last) {
		return false
	}
	prevTerm, err := r.log.term(prev)
	if err != nil {
		if r.shouldReport(to) {
			// A follower behind the first stored entry (files removed by
			// forced retention) stays stranded: say so, not on every try.
			r.logger.Error("cannot replicate: entry unavailable; a stranded follower must be re-seeded from a copy of a healthy replica",
				zap.String("peer", to), zap.Int64("index", prev), zap.Int64("firstIndex", r.log.firstIndex()), zap.Error(err))
		}
		if errors.Is(err, ErrCorrupt) {
			r.broken = err
		}
		return false
	}
	ents, err := r.log.entries(pr.next, last+1, r.maxMsgBytes, r.maxMsgEntries)
	if err != nil {
		if r.shouldReport(to) {
			r.logger.Error("cannot read entries", zap.String("peer", to), zap.Int64("from", pr.next), zap.Error(err))
		}
		if errors.Is(err, ErrCorrupt) {
			r.broken = err
		}
		return false
	}
	if len(ents) == 0 && !sendIfEmpty && (pr.replicating || pr.match == last) {
		return false
	}
	if pr.replicating && len(ents) > 0 && ents[len(ents)-1].Index == last && len(pr.inflight) >= r.tailInflight {
		// The tail waits for an answer and then leaves with whatever was
		// proposed meanwhile (see CoreConfig.TailInflight).
		return false
	}
	r.send(Message{Type: MsgApp, To: to, Index: prev, LogTerm: prevTerm, Entries: ents, Commit: r.log.committed, Hint: -1})
	if n := len(ents); n > 0 {
		pr.sent(ents[n-1].Index)
	} else if !pr.replicating {
		pr.probeSent = true
	}
	return true
}

// waitingForAcks reports that entries proposed now would not be sent
// before an answer arrives: this replica leads a group of several and
// every follower is replicating with its tail batch in flight (or its
// pipeline full). A driver may then leave proposals queued until its next
// turn instead of waking for each (the answer's turn takes them).
func (r *Core) waitingForAcks() bool {
	if r.role != RoleLeader || len(r.peers) < 2 {
		return false
	}
	limit := min(r.tailInflight, r.maxInflight)
	for _, p := range r.peers {
		if p == r.id {
			continue
		}
		if pr := r.prs[p]; !pr.replicating || len(pr.inflight) < limit {
			return false
		}
	}
	return true
}

// tailWaits reports, without reading entries, that the batch for pr would
// reach the end of the log and must wait for an answer (the check after
// reading the batch covers the rest): under many concurrent proposals
// most loop turns end here, and reading the batch only to drop it cost an
// allocation per entry.
func (r *Core) tailWaits(pr *progress, last int64) bool {
	if !pr.replicating || len(pr.inflight) < r.tailInflight || pr.next > last || last-pr.next >= int64(r.maxMsgEntries) {
		return false
	}
	start, ok := r.log.entryEnd(pr.next - 1)
	// Positions include headers and end-of-file padding, so this
	// overestimates the batch's bytes: a false "too big" only reads it.
	return ok && r.log.end()-start <= r.maxMsgBytes
}

func (r *Core) handleAppendResponse(m *Message, pr *progress) {
	if m.Reject {
		if m.Index > r.log.lastIndex() {
			return // we never sent that
		}
		hint := min(m.Hint, r.log.lastIndex())
		if m.LogTerm > 0 {
			hint = r.log.findConflictByTerm(m.Hint, m.LogTerm)
		}
		if pr.maybeDecrTo(m.Index, hint) {
			r.sendAppend(m.From, true)
		}
		return
	}
	if m.Index > r.log.lastIndex() {
		return // cannot be an answer to this term's appends
	}
	if pr.maybeUpdate(m.Index) {
		if !pr.replicating {
			pr.becomeReplicate()
		}
		if r.maybeCommit() {
			r.pendingCommit = true
		}
		r.pendingSend = true
		if m.From == r.leadTransferee && pr.match == r.log.lastIndex() {
			r.sendTimeoutNow(m.From)
		}
	} else if !pr.replicating {
		r.pendingSend = true
	}
}

// flushSends sends what proposals and acknowledgements made sendable since
// the last Ready, so a whole loop turn's proposals leave as one batch per
// follower and a new commit index reaches idle followers once.
func (r *Core) flushSends() {
	if r.role == RoleLeader {
		if r.pendingCommit {
			r.bcastCommit()
		} else if r.pendingSend {
			r.bcastAppend()
		}
	}
	r.pendingSend, r.pendingCommit = false, false
}

// maybeCommit advances the commit index to the highest index stored on a
// majority, but only if that entry belongs to the current term (Raft §5.4.2,
// the "Figure 8" rule); earlier entries commit with it.
func (r *Core) maybeCommit() bool {
	matches := make([]int64, 0, len(r.peers))
	for _, p := range r.peers {
		matches = append(matches, r.prs[p].match)
	}
	slices.Sort(matches)
	mci := matches[len(matches)-r.quorum]
	if mci <= r.log.committed {
		return false
	}
	if t, err := r.log.term(mci); err != nil || t != r.term {
		return false
	}
	return r.log.commitTo(mci)
}

// shouldReport limits a repeated replication error about peer to one log
// line per 10 election timeouts (the core has no clock: ticks).
func (r *Core) shouldReport(peer string) bool {
	if r.reported == nil {
		r.reported = map[string]int64{}
	}
	if last, ok := r.reported[peer]; ok && r.ticks-last < int64(10*r.electionTimeout) {
		return false
	}
	r.reported[peer] = r.ticks
	return true
}
