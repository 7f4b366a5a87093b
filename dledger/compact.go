package dledger

import (
	"context"
	"errors"
)

// Retention of old log files. The node never decides what is old; the
// application (the broker's clean service) asks Compact to drop what lies
// below an index, and the node clamps that request so retention cannot
// lose anything Raft still needs:
//   - never an entry that is not committed (it may still be replaced);
//   - on the leader, never an entry a follower has not stored yet (the
//     leader would have nothing to send it: there are no snapshots, the
//     log is the state), unless force — disk pressure — says otherwise.
// A follower clamps only to its own commit index. A follower that was
// behind the leader by more than the retention time when the leader died
// could therefore be stranded by a new leader that deleted by time; that
// is Java DLedger's behaviour as well, and a replica that far behind is
// rebuilt from a copy of a healthy one.

// Compacter is implemented by storages that can remove their oldest files.
// DeleteBefore removes whole files whose entries all lie below index and
// reports how many it removed (logstore.Store). It is called on the node's
// goroutine only.
type Compacter interface {
	DeleteBefore(index int64) (int, error)
}

// ErrNoCompaction: the storage cannot remove old files.
var ErrNoCompaction = errors.New("dledger: storage does not support compaction")

// CompactResult is what Compact did.
type CompactResult struct {
	// Asked is the index requested, Allowed what the clamp left of it.
	Asked, Allowed int64
	// HeldBy names the follower whose match index held the leader back
	// ("" when only the commit index did, or nothing did).
	HeldBy string
	// Files is how many files were removed.
	Files int
}

// compactLimit is the highest index DeleteBefore may be given: entries
// below it are committed and, on the leader (unless force), stored by
// every follower, the last entry each has matched included (it is the
// predecessor of the next batch sent to it). heldBy names the follower
// that limits it.
func (r *Core) compactLimit(force bool) (limit int64, heldBy string) {
	limit = r.log.committed + 1
	if r.role != RoleLeader || force {
		return limit, ""
	}
	for _, id := range r.peers {
		if id == r.id {
			continue
		}
		// Keep the follower's last matched entry too: the next MsgApp to
		// it carries that entry's term as its predecessor.
		if m := r.prs[id].match; m < limit {
			limit, heldBy = m, id
		}
	}
	return limit, heldBy
}

// Compact removes the storage's oldest files whose entries all lie below
// index, clamped as described above. force (disk nearly full) lets the
// leader drop entries a follower has not stored yet.
func (n *Node) Compact(ctx context.Context, index int64, force bool) (CompactResult, error) {
	c, ok := n.store.(Compacter)
	if !ok {
		return CompactResult{Asked: index}, ErrNoCompaction
	}
	type reply struct {
		res CompactResult
		err error
	}
	done := make(chan reply, 1)
	call := func() {
		res := CompactResult{Asked: index}
		limit, heldBy := n.core.compactLimit(force)
		res.Allowed = min(index, limit)
		if limit < index {
			res.HeldBy = heldBy
		}
		var err error
		if res.Allowed > 0 {
			res.Files, err = c.DeleteBefore(res.Allowed)
		}
		done <- reply{res, err}
	}
	select {
	case n.callc <- call:
	case <-ctx.Done():
		return CompactResult{Asked: index}, ctx.Err()
	case <-n.donec:
		return CompactResult{Asked: index}, n.stoppedErr()
	}
	r := <-done
	return r.res, r.err
}
