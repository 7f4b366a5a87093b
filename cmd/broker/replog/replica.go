package replog

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/rmqd/rmqd/conf"
	"github.com/rmqd/rmqd/dledger"
	"github.com/rmqd/rmqd/dledger/logstore"
	"github.com/rmqd/rmqd/dledgernet"
	"github.com/rmqd/rmqd/internal/vfs"
	"github.com/rmqd/rmqd/store"
)

// Replica is this process's DLedger peer: the log store, the peer
// transport and the node, with Log adapting them for the message store.
type Replica struct {
	Store     *logstore.Store
	Transport *dledgernet.Transport
	Node      *dledger.Node
	Log       *Log
	// ListenAddr is where the peer transport listens.
	ListenAddr string

	electionTimeout time.Duration
	counted         atomic.Bool // counted by replicaStarted, until Close
}

// Start opens the log store under cfg.DLedgerDir()
// (<storePathRootDir>/dledger-<selfId>/data and index, Java's layout;
// data files of mappedFileSizeCommitLog bytes), starts the peer transport
// on the selfId's address in dLegerPeers and the node: heartbeat every
// dLegerHeartbeatIntervalMs, election timeout randomized from
// dLegerElectionTimeoutMs and dLegerElectionTimeoutMaxMs (dledger draws
// it in [min, max)), SyncMode when
// flushDiskType=SYNC_FLUSH, preferredLeaderId. Close it after the broker
// (and so the store) has shut down.
func Start(cfg *conf.BrokerConfig, logger *zap.Logger) (*Replica, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	peers, err := cfg.DLedgerPeers()
	if err != nil {
		return nil, err
	}
	addrs := make(map[string]string, len(peers))
	for _, p := range peers {
		addrs[p.ID] = p.Addr
	}
	self := cfg.DLegerSelfID
	if addrs[self] == "" {
		return nil, fmt.Errorf("replog: dLegerSelfId %q is not in dLegerPeers %q", self, cfg.DLegerPeers)
	}
	preferred := ""
	if ids := cfg.PreferredLeaderIDs(); len(ids) > 0 {
		preferred = ids[0] // dledger takes one preferred leader
	}
	hb := ms(cfg.DLegerHeartbeatIntervalMs, dledger.DefaultHeartbeatInterval)
	et := ms(cfg.DLegerElectionTimeoutMs, dledger.DefaultElectionTimeout)
	tick := dledger.DefaultTickInterval
	if hb < 2*tick {
		tick = max(hb/2, time.Millisecond)
	}
	startPos, err := upgradeStartPos(cfg, logger)
	if err != nil {
		return nil, err
	}
	// The classic-prefix fingerprint of an upgraded store (store/upgrade_agree.go).
	fp := store.ReadFingerprint(nil, cfg.StorePathRootDir)
	ls, err := logstore.Open(vfs.Default, cfg.DLedgerDir(), logstoreConfig(cfg, startPos, logger))
	if err != nil {
		return nil, fmt.Errorf("replog: open %s: %w", cfg.DLedgerDir(), err)
	}
	tr, err := dledgernet.New(dledgernet.Config{SelfID: self, Peers: addrs, Logger: logger.Named("transport")})
	if err != nil {
		ls.Close()
		return nil, err
	}
	onePFollower := cfg.FlushDiskType != conf.SyncFlush && colocated(addrs) // procs.go
	replicaStarted()                                                        // before the node's first role event
	node, err := dledger.NewNode(dledger.Config{SelfID: self, Peers: addrs, Storage: ls, Transport: tr,
		TickInterval: tick, HeartbeatInterval: hb, ElectionTimeout: et, PreferredLeaderID: preferred, Fingerprint: []byte(fp),
		ElectionTimeoutMax: ms(cfg.DLegerElectionTimeoutMaxMs, 0),
		SyncMode:           cfg.FlushDiskType == conf.SyncFlush, Logger: logger.Named("node"),
		OnRoleChange: func(ev dledger.RoleEvent) {
			procsForRole(ev.Role, onePFollower)
			logger.Info("raft role", zap.Stringer("role", ev.Role), zap.Int64("term", ev.Term), zap.String("leader", ev.Leader))
		}})
	if err != nil {
		replicaClosed()
		tr.Close()
		ls.Close()
		return nil, err
	}
	if err := tr.Start(node); err != nil {
		node.Stop()
		replicaClosed()
		tr.Close()
		ls.Close()
		return nil, fmt.Errorf("replog: peer transport on %s: %w", addrs[self], err)
	}
	logger.Info("dledger replica started", zap.String("selfId", self), zap.String("peerAddr", tr.Addr()),
		zap.String("dir", cfg.DLedgerDir()), zap.Bool("syncMode", cfg.FlushDiskType == conf.SyncFlush),
		zap.Duration("heartbeat", hb), zap.Duration("electionTimeout", et), zap.Duration("electionTimeoutMax", ms(cfg.DLegerElectionTimeoutMaxMs, 2*et)), zap.String("preferredLeader", preferred),
		zap.Int64("ledgerEndIndex", ls.LastIndex()), zap.Int64("committedHint", ls.Committed()), zap.String("groupFingerprint", fp))
	r := &Replica{Store: ls, Transport: tr, Node: node, Log: New(node, ls), ListenAddr: tr.Addr(), electionTimeout: et}
	r.counted.Store(true)
	return r, nil
}

// HandOff moves leadership away from this replica before a graceful stop
// (SIGTERM): when it leads, it transfers to the peer that has stored the
// most entries among those heard from within an election timeout, and
// waits until that peer leads or ctx ends. Clients then wait for one
// transfer (a round trip and a vote) instead of an election timeout after
// the process is gone. Java DLedger has no such step. It reports the peer
// that took over ("" when this replica did not lead or no peer is fit).
func (r *Replica) HandOff(ctx context.Context) (string, error) {
	st := r.Node.Status()
	if st.Role != dledger.RoleLeader {
		return "", nil
	}
	target, best := "", int64(-1)
	for id, p := range st.Peers {
		if p.LastContact > r.electionTimeout || p.MatchIndex <= best {
			continue
		}
		target, best = id, p.MatchIndex
	}
	if target == "" {
		return "", nil
	}
	return target, r.Node.TransferLeadership(ctx, target)
}

// Close stops the node (pending appends fail, the commit hint is
// recorded), then the transport, then closes the log store (synced). A
// follower's GOMAXPROCS goes back to the default (procs.go).
func (r *Replica) Close() error {
	r.Node.Stop()
	if r.counted.CompareAndSwap(true, false) {
		replicaClosed()
	}
	err := r.Transport.Close()
	if cerr := r.Store.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	return err
}

func ms(v int, def time.Duration) time.Duration {
	if v <= 0 {
		return def
	}
	return time.Duration(v) * time.Millisecond
}

// logstoreConfig is the DLedger log store's configuration for cfg. In
// SYNC_FLUSH every group commit waits for an fdatasync of the data file,
// which costs ~40% less into blocks already written than into a sparse
// file's holes: keep 64 MiB ahead of the log zero-filled. ASYNC_FLUSH would
// only pay the extra writes.
func logstoreConfig(cfg *conf.BrokerConfig, startPos int64, logger *zap.Logger) logstore.Config {
	c := logstore.Config{DataFileSize: int64(cfg.MappedFileSizeCommitLog), StartPos: startPos, Logger: logger.Named("logstore")}
	if cfg.FlushDiskType == conf.SyncFlush {
		c.ZeroFillAhead = 64 << 20
	}
	return c
}
