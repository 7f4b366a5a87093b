package dledger

import (
	"bytes"
	"fmt"

	"go.uber.org/zap"
)

// Group fingerprints. A log may continue data that replicas hold outside
// it (an application imports a prefix and starts its log after it:
// logstore's Config.StartPos). Every member must then hold the same
// outside data, and the group must not be led by a replica that does not
// know where the log begins. CoreConfig.Fingerprint names that data; it is
// opaque here and travels in votes, pre-votes and their answers.
//
// A voter with a fingerprint grants a (pre-)vote only to a candidate that
// either has the same fingerprint, or has none but holds entries (it
// follows positions some earlier leader of the group chose; a replica
// without the outside data can still serve the log). A voter without a
// fingerprint takes no side. Refusing voter and refused candidate both log
// the peer and the two fingerprints once per peer and fingerprint.
//
// Safety: the rule only adds reasons to refuse a vote. A refusal is, to
// the candidate, the same as a lost answer, and the voter records no vote
// when it refuses, so "one vote per term", "a leader holds a majority of
// votes" and the up-to-date check (hence leader completeness and log
// matching) are untouched. It changes liveness only: a leader needs a
// majority accepting its fingerprint, so agreeing replicas that are a
// majority elect among themselves while a diverged minority never leads,
// and a group whose majority disagrees elects nobody until the data is
// made identical (the point of the check).

// maxFingerprintLen bounds a fingerprint on the wire.
const maxFingerprintLen = 1024

// fingerprintAccepts reports whether this replica's fingerprint lets it
// grant m's (pre-)vote; for a vote answer, whether the voter's
// fingerprint agrees with ours. A disagreement is logged once per peer and
// fingerprint.
func (r *Core) fingerprintAccepts(m *Message) bool {
	mine, theirs := r.fingerprint, m.Fingerprint
	var ok bool
	switch {
	case m.Type == MsgVote || m.Type == MsgPreVote:
		ok = len(mine) == 0 || bytes.Equal(mine, theirs) || (len(theirs) == 0 && m.Index >= 0)
	default: // an answer: report a voter with another non-empty fingerprint
		ok = len(mine) == 0 || len(theirs) == 0 || bytes.Equal(mine, theirs)
	}
	if ok {
		return true
	}
	if r.fpReported == nil {
		r.fpReported = map[string]string{}
	}
	if prev, seen := r.fpReported[m.From]; seen && prev == string(theirs) {
		return false
	}
	r.fpReported[m.From] = string(theirs)
	what := "refusing the vote of a candidate whose group fingerprint differs from ours"
	switch {
	case m.Type != MsgVote && m.Type != MsgPreVote:
		what = "a peer refuses our candidacy: its group fingerprint differs from ours"
	case len(theirs) == 0:
		what = "refusing the vote of a candidate with an empty log and no group fingerprint: it cannot know where the group's log begins"
	}
	r.logger.Error(what, zap.String("peer", m.From), zap.String("fingerprint", fmt.Sprintf("%q", mine)),
		zap.String("peerFingerprint", fmt.Sprintf("%q", theirs)),
		zap.String("remedy", "the replicas hold different data outside the log; make it identical on every replica (the application's log names it) and restart the diverged one"))
	return false
}
