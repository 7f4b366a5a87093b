// Package replog adapts a dledger.Node (and its LogStorage) to
// store.ReplicatedLog, the narrow interface through which the message store
// uses the replicated log in DLedger mode (design.md §7: store imports no
// dledger; cmd/broker joins them). It also builds a replica from a broker
// configuration: the Java-DLedger-compatible log store under
// <storePathRootDir>/dledger-<selfId>/, the peer transport and the node.
package replog

import (
	"context"
	"errors"
	"fmt"

	"github.com/rmqd/rmqd/dledger"
	"github.com/rmqd/rmqd/store"
)

// Log is a store.ReplicatedLog over a running *dledger.Node.
type Log struct {
	node *dledger.Node
	st   dledger.LogStorage
}

var (
	_ store.ReplicatedLog          = (*Log)(nil)
	_ store.ReplicatedLogRetention = (*Log)(nil)
)

// New adapts node, whose storage is st.
func New(node *dledger.Node, st dledger.LogStorage) *Log { return &Log{node: node, st: st} }

// Node returns the adapted node.
func (l *Log) Node() *dledger.Node { return l.node }

// Append implements store.ReplicatedLog: Propose with the store's hook;
// dledger's retryable errors become store.NotLeaderError.
func (l *Log) Append(ctx context.Context, bodies [][]byte, hook store.AppendHook) (store.ReplicatedAppend, error) {
	var h func(*dledger.Entry)
	if hook != nil {
		h = (&entryHook{hook: hook}).call
	}
	f, err := l.node.Propose(ctx, bodies, h)
	if err != nil {
		return nil, mapErr(err)
	}
	return pending{f}, nil
}

// entryHook numbers a batch's entries for the store's hook: the node calls
// it for them in order, on one goroutine.
type entryHook struct {
	hook store.AppendHook
	i    int
}

func (h *entryHook) call(e *dledger.Entry) {
	h.hook(h.i, e.Term, e.Pos, e.Body)
	h.i++
}

type pending struct{ f *dledger.Future }

func (p pending) Done() <-chan struct{} { return p.f.Done() }
func (p pending) Err() error            { return mapErr(p.f.Err()) }

// mapErr turns dledger's retryable errors into store.NotLeaderError and a
// stopped node into store.ErrClosed.
func mapErr(err error) error {
	if err == nil {
		return nil // before nl, which escapes: no allocation per committed append
	}
	var nl *dledger.NotLeaderError
	switch {
	case errors.As(err, &nl):
		return &store.NotLeaderError{LeaderID: nl.Leader, Reason: "not the Raft leader"}
	case errors.Is(err, dledger.ErrNotLeader):
		return &store.NotLeaderError{Reason: "not the Raft leader"}
	case errors.Is(err, dledger.ErrTransferring):
		return &store.NotLeaderError{Reason: "leadership transfer in progress"}
	case errors.Is(err, dledger.ErrLeadershipLost):
		return &store.NotLeaderError{Reason: "leadership lost before commit (outcome unknown)"}
	case errors.Is(err, dledger.ErrStopped):
		return fmt.Errorf("%w: %v", store.ErrClosed, err)
	}
	return err
}

// ReadAt implements store.ReplicatedLog.
func (l *Log) ReadAt(p []byte, pos int64) (int, error) { return l.node.ReadAt(p, pos) }

// BeginPos implements store.ReplicatedLog: the first data file's start
// (logstore), else the first entry's position.
func (l *Log) BeginPos() int64 {
	if b, ok := l.st.(interface{ BeginPos() int64 }); ok {
		return b.BeginPos()
	}
	if first := l.st.FirstIndex(); first >= 0 {
		if e, err := l.st.Entry(first); err == nil {
			return e.Pos
		}
	}
	return l.st.End()
}

// EndPos implements store.ReplicatedLog.
func (l *Log) EndPos() int64 { return l.st.End() }

// CommittedPos implements store.ReplicatedLog.
func (l *Log) CommittedPos() int64 { return l.node.CommittedPos() }

// Watch implements store.ReplicatedLog.
func (l *Log) Watch() <-chan struct{} { return l.node.Watch() }

// Role implements store.ReplicatedLog.
func (l *Log) Role() store.ReplicaRole {
	ev := l.node.Leader()
	return store.ReplicaRole{Leader: ev.Role == dledger.RoleLeader, Term: ev.Term, LeaderID: ev.Leader, SelfID: l.node.ID()}
}

// Status implements store.ReplicatedLog.
func (l *Log) Status() store.ReplicationStatus {
	st := l.node.Status()
	out := store.ReplicationStatus{SelfID: st.ID, Role: roleName(st.Role), Term: st.Term, LeaderID: st.Leader,
		LedgerBeginIndex: st.LedgerBeginIndex, LedgerEndIndex: st.LedgerEndIndex,
		CommittedIndex: st.CommittedIndex, CommittedPos: st.CommittedPos, Err: st.Err}
	if len(st.Peers) > 0 {
		out.Peers = make(map[string]store.PeerReplication, len(st.Peers))
		for id, p := range st.Peers {
			out.Peers[id] = store.PeerReplication{MatchIndex: p.MatchIndex, Lag: p.Lag, LastContact: p.LastContact}
		}
	}
	return out
}

func roleName(r dledger.Role) string {
	switch r {
	case dledger.RoleLeader:
		return "LEADER"
	case dledger.RoleFollower:
		return "FOLLOWER"
	}
	return "CANDIDATE"
}
