// Package dledger is rmqd's replicated log: a Raft implementation shaped
// after Java DLedger's storage (entries with Index, Term and byte position
// Pos; see storage.go) and etcd raft's architecture.
//
// (The full manual is written at the end of this file.)
package dledger

import _ "github.com/rmqd/rmqd/dledger/internal/simflag" // -sim.seeds/-sim.seed in every test binary
