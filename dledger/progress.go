package dledger

// progress is the leader's view of one follower.
//
// In probe state the leader sends one MsgApp and waits for its answer (or a
// heartbeat answer) before sending the next; it is used after an election
// and after a rejection while the leader searches for the point where the
// logs match. In replicate state the leader streams batches optimistically,
// advancing next as soon as a batch is sent, with at most maxInflight
// batches unacknowledged (flow control).
type progress struct {
	match, next  int64
	replicating  bool    // replicate state (else probe)
	probeSent    bool    // probe state: a MsgApp is outstanding
	inflight     []int64 // replicate state: last index of each unacknowledged batch, ascending
	recentActive bool    // heard from since the last check-quorum round
	lastContact  int64   // core tick of the last response
	// match when the previous heartbeat answer arrived: no progress
	// between two answers means a lost batch (resend from match+1)
	matchAtHeartbeat int64
	noticeTick       int64 // core tick of the last commit-only notice
	noticeDue        bool  // a commit-only notice waits for the next tick
}

func (pr *progress) becomeProbe() {
	pr.replicating = false
	pr.probeSent = false
	pr.inflight = pr.inflight[:0]
	pr.next = pr.match + 1
}

func (pr *progress) becomeReplicate() {
	pr.replicating = true
	pr.probeSent = false
	pr.inflight = pr.inflight[:0]
	pr.next = pr.match + 1
}

func (pr *progress) paused(maxInflight int) bool {
	if pr.replicating {
		return len(pr.inflight) >= maxInflight
	}
	return pr.probeSent
}

// sent records a batch ending at last going out.
func (pr *progress) sent(last int64) {
	if pr.replicating {
		pr.next = last + 1
		pr.inflight = append(pr.inflight, last)
	} else {
		pr.probeSent = true
	}
}

// maybeUpdate records an acknowledgement of index; it reports whether match moved.
func (pr *progress) maybeUpdate(index int64) bool {
	updated := false
	if index > pr.match {
		pr.match = index
		pr.probeSent = false
		updated = true
	}
	pr.next = max(pr.next, index+1)
	i := 0
	for i < len(pr.inflight) && pr.inflight[i] <= index {
		i++
	}
	if i > 0 {
		pr.inflight = append(pr.inflight[:0], pr.inflight[i:]...)
	}
	return updated
}

// maybeDecrTo handles a rejection of the MsgApp whose previous index was
// rejected; matchHint is the highest index that may still match. It reports
// whether the rejection was not stale.
func (pr *progress) maybeDecrTo(rejected, matchHint int64) bool {
	if pr.replicating {
		if rejected <= pr.match {
			return false // stale
		}
		pr.becomeProbe()
		pr.next = max(min(rejected, matchHint+1), pr.match+1)
		return true
	}
	if pr.next-1 != rejected {
		return false // stale
	}
	pr.next = max(min(rejected, matchHint+1), pr.match+1)
	pr.probeSent = false
	return true
}
