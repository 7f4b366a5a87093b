package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/rmqd/rmqd/conf"
	"github.com/rmqd/rmqd/metadata"
	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
	"github.com/rmqd/rmqd/store"
)

// Options are the broker's dependencies that do not come from broker.conf.
type Options struct {
	// ReplicatedLog, when set, runs the broker in DLedger mode
	// (enableDLegerCommitLog=true): the commitlog is this Raft log, roles
	// come from it (see role.go) and metadata changes travel through it
	// (replicated_metadata.go). nil = classic mode. cmd/broker adapts a
	// *dledger.Node; the broker never imports dledger.
	ReplicatedLog store.ReplicatedLog
}

// NewWithOptions is New with Options. New(cfg, logger) is
// NewWithOptions(cfg, logger, Options{}) (classic mode).
func NewWithOptions(cfg *conf.BrokerConfig, logger *zap.Logger, opts Options) (*Broker, error) {
	if opts.ReplicatedLog != nil && cfg != nil && !cfg.EnableDLegerCommitLog {
		return nil, errors.New("broker: a replicated log needs enableDLegerCommitLog=true")
	}
	b, err := New(cfg, logger)
	if err != nil {
		return nil, err
	}
	b.opts = opts
	return b, nil
}

// setupReplication wires DLedger mode between store.Open and store.Start:
// the system-record handler and the replay of the records the metadata
// snapshot does not cover, the metadata proposer, the role listener, the
// master and term functions.
func (b *Broker) setupReplication(st *store.MessageStore, meta *metadata.Metadata) error {
	if b.opts.ReplicatedLog == nil {
		return nil
	}
	rep := storeReplica{st}
	repl := newReplicatedMeta(meta, rep, b.log.Named("metadata-log"), b.masterHint)
	st.SetSystemRecordHandler(repl.onSystemRecord)
	from := meta.SnapshotIndex()
	n, err := st.ReplaySystemRecordsFrom(from)
	if err != nil {
		return fmt.Errorf("broker: replaying metadata records from %d: %w", from, err)
	}
	b.log.Info("metadata restored", zap.Int64("snapshotIndex", from), zap.Int("replayedRecords", n),
		zap.Int64("appliedIndex", meta.AppliedIndex()), zap.Int("topics", meta.Topics.Len()))
	// The metadata files record how far the log is dispatched (so a restart
	// replays from there), and log retention keeps what they do not cover.
	meta.SetCoverage(st.DispatchedOffset)
	st.SetRetentionFloor(meta.PersistedIndex)
	repl.forward = b.forwardOffsets
	st.SetUpgradeImport(repl.importState)
	b.repl = repl
	b.roles = newRoleManager(b, rep, repl, b.log.Named("role"))
	meta.SetProposer(repl.propose)
	st.SetRoleListener(func(r store.ReplicaRole) {
		b.roles.onRole(replicaRole{Leader: r.Leader, Term: r.Term, LeaderID: r.LeaderID, SelfID: r.SelfID})
	})
	b.SetMasterFunc(b.roles.isMaster)
	b.SetTermFunc(func() int64 { return st.Role().Term })
	repl.start()
	return nil
}

// forwardOffsets sends pull commits a follower served to the master
// (oneway UPDATE_CONSUMER_OFFSET, best effort; the client also commits them
// itself every 5 s).
func (b *Broker) forwardOffsets(m map[offsetKey]int64) {
	if b.registrar == nil {
		return
	}
	addr, _ := b.registrar.MasterAddr()
	ow, ok := b.invoker.(interface {
		InvokeOneway(ctx context.Context, addr string, req *remoting.RemotingCommand) error
	})
	if addr == "" || !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for k, off := range m {
		ext := protocol.EncodeHeader(&protocol.UpdateConsumerOffsetRequestHeader{ConsumerGroup: k.group, Topic: k.topic, QueueID: k.queueID, CommitOffset: off})
		if err := ow.InvokeOneway(ctx, addr, b.newRequest(protocol.UpdateConsumerOffset, ext, nil)); err != nil {
			b.log.Debug("forwarding offset commits to the master failed", zap.String("master", addr), zap.Int("offsets", len(m)), zap.Error(err))
			return
		}
	}
}

// storeReplica adapts *store.MessageStore to replica.
type storeReplica struct{ s *store.MessageStore }

func (r storeReplica) IsLeader() bool { return r.s.IsLeader() }

func (r storeReplica) ProposeSystem(ctx context.Context, payload []byte) (int64, error) {
	return r.s.ProposeSystem(ctx, payload)
}

func (r storeReplica) role() replicaRole {
	x := r.s.Role()
	return replicaRole{Leader: x.Leader, Term: x.Term, LeaderID: x.LeaderID, SelfID: x.SelfID}
}

func (r storeReplica) status() replicaStatus {
	x := r.s.ReplicationStatus()
	s := replicaStatus{SelfID: x.SelfID, Role: x.Role, Term: x.Term, LeaderID: x.LeaderID,
		LedgerBeginIndex: x.LedgerBeginIndex, LedgerEndIndex: x.LedgerEndIndex, CommittedIndex: x.CommittedIndex}
	if len(x.Peers) > 0 {
		s.Peers = make(map[string]peerReplication, len(x.Peers))
		for id, p := range x.Peers {
			s.Peers[id] = peerReplication{MatchIndex: p.MatchIndex, Lag: p.Lag, LastContact: p.LastContact}
		}
	}
	return s
}

func (r storeReplica) waitDispatched(ctx context.Context) error { return r.s.WaitDispatched(ctx) }
