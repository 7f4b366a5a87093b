package main

import (
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
