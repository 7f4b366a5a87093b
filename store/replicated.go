package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// This file is the store's side of DLedger mode (issue 5): the narrow
// interface the store needs from a replicated log (the store never imports
// dledger; cmd/broker adapts a *dledger.Node to ReplicatedLog) and the
// replica-facing API of *MessageStore. The commitLog implementation over a
// ReplicatedLog is in dledger_log.go, the replicated put path, the role
// loop and system records in replica.go.

// ReplicaRole is a replica's role as the store reports it.
type ReplicaRole struct {
	// Leader: from ReplicatedLog.Role, the Raft leader. From
	// (*MessageStore).Role and the role listener, a writable leader: it
	// leads, everything in its log is committed and dispatched, and the
	// queue-offset table was rebuilt from the consume queues.
	Leader bool
	// Term is the Raft term (0 in classic mode).
	Term int64
	// LeaderID is the leader's peer id (dLegerSelfId, e.g. "n1"), "" when
	// unknown or in classic mode.
	LeaderID string
	// SelfID is this replica's peer id ("" in classic mode).
	SelfID string
}

// PeerReplication is the leader's view of one follower.
type PeerReplication struct {
	MatchIndex  int64
	Lag         int64 // leader's end index - match index
	LastContact time.Duration
}

// ReplicationStatus describes the replicated log (GET_BROKER_RUNTIME_INFO:
// dledgerRole, dledgerTerm, dledgerLeaderId, dledgerCommittedIndex,
// dledgerLedgerEndIndex). In classic mode it is the zero value with Role "".
type ReplicationStatus struct {
	SelfID string
	// Role is LEADER, FOLLOWER, CANDIDATE (pre-candidates included) or "".
	Role             string
	Term             int64
	LeaderID         string
	LedgerBeginIndex int64
	LedgerEndIndex   int64
	CommittedIndex   int64
	CommittedPos     int64
	Peers            map[string]PeerReplication // leader only
	// Err is why the log stopped, if it failed.
	Err error
}

// AppendHook is called by the replicated log for each entry of an Append,
// in log order and never concurrently with another Append's hooks (on the
// goroutine calling Append, under the log's placement lock), once the
// entry's term and position are assigned and before it is written or sent
// anywhere. It may patch body bytes in place (never its length), must be
// fast, must not call the log and must not wait for anything held across
// an Append call.
type AppendHook func(i int, term int64, entryPos int64, body []byte)

// ReplicatedAppend is a pending Append: Done closes when the batch was
// committed (Err nil) or failed.
type ReplicatedAppend interface {
	Done() <-chan struct{}
	// Err after Done: nil when committed; an error wrapping ErrNotLeader
	// when leadership was lost (outcome unknown: the entries may still
	// commit under the next leader); another error when the log stopped or
	// failed.
	Err() error
}

// ReplicatedLog is what the store needs from a Raft-replicated log whose
// entries are laid out as Java DLedger's data files (dledger.md §2.2): a
// 48-byte header, then the body; end-of-file padding (int32 -1, int32
// bytes left in the file) between files. Positions ("pos") are byte
// positions in that data space; a record stored as an entry body at pos
// has the physical offset pos+48. All methods are safe for concurrent use.
type ReplicatedLog interface {
	// Append proposes bodies as consecutive entries of one batch. The error
	// is immediate when this replica cannot append (an error wrapping
	// ErrNotLeader, retryable elsewhere); otherwise hook was called for
	// every entry before Append returns, and the result tells when the batch
	// is committed (in sync mode: fsynced by a majority; otherwise written
	// by a majority).
	Append(ctx context.Context, bodies [][]byte, hook AppendHook) (ReplicatedAppend, error)
	// ReadAt reads stored bytes (entry headers and padding included) by
	// position. Bytes below CommittedPos never change.
	ReadAt(p []byte, pos int64) (int, error)
	// BeginPos is the position of the first stored byte; EndPos the position
	// after the last stored entry, committed or not.
	BeginPos() int64
	EndPos() int64
	// CommittedPos is the position just past the last committed entry.
	CommittedPos() int64
	// Watch returns a channel closed at the next change of the committed
	// position or of the role.
	Watch() <-chan struct{}
	// Role is the Raft role as last published (Leader = Raft leader).
	Role() ReplicaRole
	// Status is a consistent snapshot. The store decides that a new leader
	// is caught up when Status says Leader with CommittedIndex ==
	// LedgerEndIndex (its first entry of the term, a no-op, committed).
	Status() ReplicationStatus
}

// ErrNotLeader: this replica may not accept writes (a follower, a
// candidate, a leader still catching up, or a leader that lost its term).
// Retryable on the leader. Errors from a ReplicatedLog that wrap it map to
// PutMessageStatus NotLeader.
var ErrNotLeader = errors.New("store: replica is not the writable leader")

// NotLeaderError is ErrNotLeader naming the leader's peer id when known.
type NotLeaderError struct {
	LeaderID string
	Reason   string
}

func (e *NotLeaderError) Error() string {
	msg := "store: replica is not the writable leader"
	if e.Reason != "" {
		msg += " (" + e.Reason + ")"
	}
	if e.LeaderID != "" {
		msg += "; leader is " + e.LeaderID
	}
	return msg
}

// Is makes errors.Is(err, ErrNotLeader) hold.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }

// SystemTopic is the internal topic of replicated system records
// (ProposeSystem): ordinary message records, so tools reading the
// commitlog parse them, with one queue (0).
const SystemTopic = "rmqd_SYS_METADATA"

// Replicated reports whether the store runs over a ReplicatedLog.
func (s *MessageStore) Replicated() bool { return s.repl != nil }

// IsLeader reports whether the store accepts writes: always in classic
// mode; in DLedger mode only as a writable leader (see ReplicaRole.Leader).
func (s *MessageStore) IsLeader() bool {
	if s.repl == nil {
		return true
	}
	return s.repl.writable()
}

// Role returns the store's role (classic mode: Leader true, Term 0).
func (s *MessageStore) Role() ReplicaRole {
	if s.repl == nil {
		return ReplicaRole{Leader: true}
	}
	return s.repl.storeRole()
}

// SetRoleListener registers fn, called on one goroutine, in order, for
// every role change the store has completed (DLedger mode only; never in
// classic mode):
//
//   - becoming a writable leader: called with Leader true once the Raft
//     leader's log is entirely committed (its no-op of the new term
//     included), the dispatcher has reached the committed position (every
//     committed message has its consume-queue unit, every system record was
//     handed to the system record handler) and the queue-offset table was
//     rebuilt from the consume queues. Puts are accepted from just before
//     the call.
//   - stepping down, or a change of term or leader while not leading:
//     called with Leader false after the store stopped accepting puts.
//
// fn runs on its own goroutine, so a slow fn does not delay dispatch; by
// the time it runs the role may have changed again, and the next call
// follows. Set it before Start.
func (s *MessageStore) SetRoleListener(fn func(ReplicaRole)) {
	if s.repl == nil {
		return
	}
	if fn == nil {
		s.repl.listener.Store(nil)
		return
	}
	s.repl.listener.Store(&fn)
}

// WaitDispatched blocks until the dispatcher has reached the position that
// was committed when it was called (every committed record has its
// consume-queue unit and was handed to the system record handler), or ctx
// ends. In classic mode it waits for everything written.
func (s *MessageStore) WaitDispatched(ctx context.Context) error {
	return s.waitDispatchedCtx(ctx, s.cl.confirmOffset())
}

// waitDispatchedCtx blocks until everything below off is dispatched, the
// store stops (ErrClosed) or ctx ends.
func (s *MessageStore) waitDispatchedCtx(ctx context.Context, off int64) error {
	for {
		s.dispatchDone.Lock()
		ch := s.dispatchDone.ch
		s.dispatchDone.Unlock()
		if s.dispatched.Load() >= off {
			return nil
		}
		if !s.running() {
			return ErrClosed
		}
		s.wakeDispatcher()
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		t.Stop()
	}
}

// ProposeSystem appends payload as a replicated system record (a message on
// SystemTopic, queue 0) and returns its physical offset once it is
// committed and the local dispatcher has handed it to the system record
// handler. On a replica that is not the writable leader it fails at once
// with an error wrapping ErrNotLeader. Errors after the append (leadership
// lost before the commit, FLUSH_SLAVE_TIMEOUT after Config.ReplicationTimeout,
// ctx ending before the local apply) leave the outcome unknown: the record
// may still commit and reach the handler, so payloads should be idempotent.
// In classic mode it is stored and dispatched locally like any message.
func (s *MessageStore) ProposeSystem(ctx context.Context, payload []byte) (int64, error) {
	return s.proposeStoreRecord(ctx, SystemTopic, payload)
}

// proposeStoreRecord puts body as a record on one of the store's own
// topics (queue 0) and waits until it is dispatched here (see ProposeSystem).
func (s *MessageStore) proposeStoreRecord(ctx context.Context, topic string, body []byte) (int64, error) {
	m := &Message{Topic: topic, QueueID: 0, Body: body, BornTimestamp: s.cfg.Now().UnixMilli(),
		BornHost: s.cfg.StoreHost}
	r := s.PutMessage(ctx, m)
	switch {
	case r.Status == PutOK:
	case r.Status == NotLeader:
		return 0, r.Err
	default:
		if r.Err != nil {
			return 0, fmt.Errorf("store: %s record %s: %w", topic, r.Status, r.Err)
		}
		return 0, fmt.Errorf("store: %s record %s", topic, r.Status)
	}
	if err := s.waitDispatchedCtx(ctx, r.WroteOffset+int64(r.WroteBytes)); err != nil {
		if errors.Is(err, ErrClosed) {
			return 0, err
		}
		return 0, fmt.Errorf("store: %s record committed at %d, not yet applied: %w", topic, r.WroteOffset, err)
	}
	return r.WroteOffset, nil
}

// SetSystemRecordHandler registers fn, called by the dispatcher on every
// replica for each committed system record, in log order, with the
// record's physical offset and payload (valid only during the call). It
// must not block for long (it delays dispatch) and must not call
// ProposeSystem. Records dispatched before fn was set are delivered only by
// ReplaySystemRecordsFrom. Call both after Open and before Start.
func (s *MessageStore) SetSystemRecordHandler(fn func(pos int64, payload []byte)) {
	s.dispatchMu.Lock()
	defer s.dispatchMu.Unlock()
	if fn == nil {
		s.sys.handler = nil
		return
	}
	s.sys.handler = fn
	s.sys.floor = s.dispatched.Load()
}

// ReplaySystemRecordsFrom hands every system record at a physical offset
// >= from that was dispatched before the handler was set (Open dispatches
// what the log holds) to the handler, in log order; later records reach it
// through the dispatcher, so each record is delivered once. A metadata
// snapshot recording the offset it covers plus this replay restores the
// state. It returns the number of records replayed.
func (s *MessageStore) ReplaySystemRecordsFrom(from int64) (int, error) {
	s.dispatchMu.Lock()
	defer s.dispatchMu.Unlock()
	fn := s.sys.handler
	if fn == nil {
		return 0, errors.New("store: ReplaySystemRecordsFrom without a system record handler")
	}
	return s.replaySystemLocked(from, s.sys.floor, fn)
}

// ReplicationStatus reports the replicated log's state (zero value with
// Role "" in classic mode).
func (s *MessageStore) ReplicationStatus() ReplicationStatus {
	if s.repl == nil {
		return ReplicationStatus{}
	}
	return s.repl.log.Status()
}
