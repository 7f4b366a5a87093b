// Package dledger is rmqd's replicated log: Raft with DLedger's storage
// model. Entries are opaque byte slices with an Index (from 0), a Term and a
// byte position Pos in the data-file space, so the log's bytes can be
// RocketMQ's commitlog (a message's physical offset is Pos+48). The package
// knows nothing of RocketMQ.
//
// # Pieces
//
//   - Core (core.go, log.go, progress.go): the Raft state machine of one
//     replica. Pure and single-threaded: it is driven by Tick, Step and
//     Propose, reads its LogStorage, and hands everything it wants done back
//     in a Ready. No goroutines, clock, I/O or global randomness (a seeded
//     *rand.Rand comes in through CoreConfig), so a simulator can replay any
//     schedule from a seed (package dledgertest).
//   - Node (node.go): the driver. One goroutine owns the Core; other
//     goroutines talk to it through channels: Step (from the transport),
//     Status, TransferLeadership, Stop. Proposers place their entries
//     themselves (index, term, position) in a queue under a small lock the
//     goroutine keeps in step with the core, and the goroutine hands the
//     whole queue to Core.AppendPlaced at once. While every follower has its
//     tail batch in flight, proposers do not wake the goroutine (nothing
//     could be sent before an answer, whose turn takes the queue) unless
//     the queue holds a full batch. It turns Clock ticks into
//     Tick, persists and sends what Ready asks, completes append futures on
//     commit and publishes the committed index/position and role changes.
//   - LogStorage (storage.go): the durable log, the contract with
//     dledger/logstore (Java-DLedger-compatible files). MemoryStorage is an
//     in-memory twin that can simulate process crashes and power loss.
//   - Transport (node.go): Send(Message), never blocking. InmemNetwork (for
//     tests) and package dledgernet (remoting over TCP) implement it; the
//     receiving side calls Node.Step.
//
// # The Raft we run
//
//   - Election with pre-vote (a node that cannot win does not bump terms or
//     disturb a healthy group), check-quorum (a leader that has not heard from
//     a majority within an election timeout steps down, so a partitioned
//     leader stops accepting writes by itself) and a leader lease (followers
//     that heard from a leader within the election timeout ignore vote
//     requests, except those caused by a leadership transfer). Election
//     timeouts are randomized in [T, Tmax): Tmax is 2T unless set (the broker
//     passes dLegerElectionTimeoutMs and dLegerElectionTimeoutMaxMs).
//   - Durability before promises: term and vote are persisted (SetHardState
//     fsyncs) before a vote is answered, acknowledgements are sent only after
//     the entries were written (and fsynced in sync mode), and a candidate
//     counts its own vote only after it is durable. The leader counts itself
//     only after its own write.
//   - A new leader appends a no-op entry (Magic 2) and commits by counting
//     only entries of its own term (Raft §5.4.2); earlier entries commit with
//     it. The commit index reaches followers on every MsgApp and heartbeat.
//   - Replication is pipelined: per follower, probe state (one MsgApp at a
//     time while searching the match point, with the conflict-term hint for
//     fast backoff) and replicate state (batches of up to MaxBatchBytes /
//     MaxBatchEntries sent optimistically, at most MaxInflight unanswered).
//     The batch that reaches the end of the log waits while TailInflight
//     (1) batch is unanswered and leaves with everything proposed
//     meanwhile when the next answer arrives: many small concurrent
//     proposals make a few large batches instead of a deep pipeline of
//     tiny ones (each costing a frame, a follower loop turn and an answer);
//     a single proposer never waits. Entries just persisted are replicated
//     from an in-memory cache of the newest entries (8 MiB), not read back
//     from storage.
//     A follower that makes no progress between two heartbeat answers is
//     probed again from its match index, which recovers lost batches.
//     An idle, in-sync follower learns a new commit index from a
//     commit-only notice: at most one per follower and tick (the next tick
//     sends what that held back), written by the Node after completing
//     the appends the commit covers (it is on no one's critical path).
//   - Leadership transfer: the leader stops taking proposals
//     (ErrTransferring), brings the target up to date, then sends it
//     MsgTimeoutNow; the target campaigns at once and wins although the
//     others are in their lease. A transfer aborts after an election
//     timeout. With PreferredLeaderID set, a leader that is not the preferred
//     peer transfers to it as soon as it is active and fully caught up
//     (retrying after two election timeouts if a transfer failed).
//   - Group fingerprint (fingerprint.go): opaque bytes naming data every
//     replica must hold outside the log (Config.Fingerprint). Votes and
//     pre-votes carry it; a voter with one refuses a candidate with another,
//     or one with neither a fingerprint nor entries. Only a refusal is
//     added, so Raft's safety is unchanged.
//   - Storage corruption (ErrCorrupt from the store) stops the replica from
//     voting and leading; any storage write error stops the Node, failing
//     pending appends with that error.
//
// # Positions and the append hook
//
// When the leader accepts a proposal it assigns Index, Term and Pos (the
// store's Layout.Place from the end of the previous, possibly unpersisted
// entry: entries never span data files, file tails become padding) and then
// calls the proposer's hook with the *Entry, before the entry is written or
// sent anywhere. RocketMQ uses the hook to write the physical offset into the
// message. A hook must not change the body's length (ErrHookResized).
// Followers verify that received entries are consecutive and sit where their
// own Layout would place them. The first entry of a log (index 0) may sit
// anywhere the Layout allows: a log may begin after data kept outside it
// (logstore's StartPos), and an empty follower begins at the position of
// the first entry it is sent. Propose returns a Future whose Index and
// Positions are known at once (RocketMQ builds the msgId from them).
//
// # Using a Node
//
//  1. Open the LogStorage (dledger/logstore.Open, or NewMemoryStorage).
//  2. Build the transport (dledgernet.New) and the Node:
//     dledger.NewNode(dledger.Config{SelfID: "n0", Peers: map[id]addr,
//     Storage: st, Transport: tr, SyncMode: flushDiskType == SYNC_FLUSH,
//     PreferredLeaderID: ..., OnRoleChange: ..., Logger: ...}); start the
//     transport's receiving side with the node.
//  3. Write: f, err := node.Propose(ctx, bodies, hook). err is immediate and
//     retryable: *NotLeaderError (errors.Is(err, ErrNotLeader), carries the
//     leader id when known) or ErrTransferring. f.Wait(ctx) returns nil once
//     the whole batch is committed; ErrLeadershipLost (retryable, outcome
//     unknown: the entries may still commit under the next leader) is
//     returned at once for every pending append when the node stops being
//     leader; ErrStopped on Stop.
//  4. Read committed data on every replica: CommittedIndex, CommittedPos
//     (end of the last committed entry, RocketMQ's committedPos), Watch (a
//     channel closed when the committed index or role changes) or
//     WaitCommitted; then Entry(i), Entries(lo, hi, max) or ReadAt(p, pos).
//  5. Observe: OnRoleChange receives (role, term, leader) in order on its
//     own goroutine, never blocking the core; Status() reports role, term,
//     leader, ledger begin/end index, committed index and position, and per
//     follower match index, lag and time since last contact.
//  6. Operate: TransferLeadership(ctx, target) on the leader; Stop().
//
// Group commit: the Node's loop takes every proposal and message already
// queued before it persists, so concurrent appends become one storage Append;
// the core sends new entries once per Ready (one replication batch per
// follower per loop turn) and a follower answers a loop turn's appends with
// one cumulative acknowledgement. In async mode a background flusher fsyncs
// every FlushInterval (Java DLedger: 10 ms); acknowledgements never wait for
// it. In sync mode on a store that can fsync concurrently with Append
// (logstore), a flusher goroutine runs one fsync at a time, each covering
// every write before it began, while the loop goes on: a follower's
// acknowledgements wait until the fsync covering them is done, and the
// leader counts its own copy of an entry only once Core.Synced says it is
// durable (CoreConfig.DeferredSync), so a commit needs a majority of fsyncs
// but not the leader's own. Other stores are fsynced on the loop.
//
// # Timeouts (defaults)
//
// TickInterval 50 ms, HeartbeatInterval 100 ms (2 ticks), ElectionTimeout
// 500 ms (10 ticks, randomized to 500-1000 ms). Reasoning: on a LAN a
// round trip is well under 1 ms and a fsync a few ms, so 100 ms heartbeats
// leave five heartbeats per election timeout before a healthy follower could
// time out (a GC pause or a slow fsync of tens of ms does not cause an
// election). When the leader dies, the first follower times out after
// 500-1000 ms (with two followers the earlier of two draws, ~670 ms on
// average), then pre-vote and vote take two round trips plus one fsync, and
// the new leader's no-op commits after one more round trip: a dead leader is
// replaced and writable again in about 0.55-1.05 s, inside the 1.5 s budget.
// The measured median over five leader kills on loopback
// (dledgernet.TestLoopbackFailover) is about 0.56 s. A partitioned leader
// steps down within two election timeouts (check quorum), after which the
// majority side has already elected a new leader. Java DLedger's defaults
// (2 s heartbeats × 3) fail over in 6-10 s.
//
// # Core protocol (for drivers other than Node)
//
// Call Tick every tick, Step for every received message, Propose on the
// leader. Whenever HasReady, take rd := Ready() and in this order: send
// rd.Messages; persist rd.HardState (fsync) and append rd.Entries (Sync in
// sync mode); send rd.MessagesAfterPersist; call Advance(rd); publish
// rd.CommitIndex. No Step/Tick/Propose between Ready and Advance. A
// Transport that implements Flusher is flushed after each group of sends.
// With DeferredSync, Sync happens later: hold successful MsgAppResp until
// an fsync that began after their Ready's Append is done, then call
// Synced. Proposals may also be placed by the driver (NextPlace,
// PlaceEntries) and handed over with AppendPlaced.
//
// # Message kinds
//
// MsgApp / MsgAppResp (AppendEntries: previous index and term, entries,
// commit; answers carry the matched index, or a rejection with a hint index
// and term), MsgVote / MsgVoteResp, MsgPreVote / MsgPreVoteResp,
// MsgHeartbeat / MsgHeartbeatResp (heartbeats carry the commit index),
// MsgTimeoutNow. An empty MsgApp flagged CommitOnly only carries a new
// commit index to an idle, in-sync follower and is not acknowledged.
// Message.MarshalBinary/UnmarshalBinary give a compact
// varint encoding (see message.go); UnmarshalBinary validates, and Step
// validates again: nothing from the network can panic the core.
//
// # Testing
//
// Paper tests (paper_test.go) check the Raft rules one by one on a single
// core. dledgertest's simulator runs random schedules (drops, duplicates,
// reordering, partitions, crashes losing unsynced data, restarts, transfers)
// with invariant checks after every step:
//
//	go test ./dledger/dledgertest -run TestSimSweep -sim.seeds=5000
//	go test ./dledger/dledgertest -run TestSimSweep -sim.seed=N -v   # replay one
package dledger

import _ "github.com/rmqd/rmqd/dledger/internal/simflag" // -sim.seeds/-sim.seed in every test binary
