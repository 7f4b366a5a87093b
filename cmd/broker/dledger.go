package main

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/rmqd/rmqd/cmd/broker/replog"
	"github.com/rmqd/rmqd/conf"
)

// startReplica starts this process's DLedger peer for
// enableDLegerCommitLog=true (see replog.Start for the layout and timers).
// Shutdown order: broker (which shuts the store down), then Replica.Close
// (node, transport, log store).
func startReplica(cfg *conf.BrokerConfig, log *zap.Logger) (*replog.Replica, error) {
	return replog.Start(cfg, log.Named("dledger"))
}

// handOff moves leadership to a peer before this replica stops, bounded
// by two election timeouts (what dledger allows a transfer) plus a
// heartbeat; a failure only costs the election timeout it tried to save.
func handOff(rep *replog.Replica, cfg *conf.BrokerConfig, log *zap.Logger) {
	et := time.Duration(max(cfg.DLegerElectionTimeoutMs, 1)) * time.Millisecond
	hb := time.Duration(max(cfg.DLegerHeartbeatIntervalMs, 1)) * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 2*et+2*hb)
	defer cancel()
	start := time.Now()
	to, err := rep.HandOff(ctx)
	switch {
	case err != nil:
		log.Warn("leadership hand-off before shutdown failed; the peers will elect after their election timeout",
			zap.String("to", to), zap.Error(err))
	case to != "":
		log.Info("leadership handed off before shutdown", zap.String("to", to), zap.Duration("took", time.Since(start)))
	}
}
