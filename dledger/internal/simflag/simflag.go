// Package simflag defines the simulator's command-line flags, -sim.seeds and
// -sim.seed, in every test binary that links package dledger.
//
// `make sim` runs `go test ./dledger/... -args -sim.seeds=N`, which passes the
// flag to every test binary under dledger/; a binary that did not define it
// would fail with "flag provided but not defined". Package dledger imports
// this package, so every test binary that links dledger (its own tests,
// dledgertest, logstore, ...) knows the flags. Outside tests
// (testing.Testing() is false) nothing is registered, so production
// binaries' flag sets stay clean.
package simflag

import (
	"flag"
	"testing"
)

var (
	seeds = new(int)
	seed  = new(uint64)
)

func init() {
	if !testing.Testing() {
		return
	}
	if flag.Lookup("sim.seeds") == nil {
		flag.IntVar(seeds, "sim.seeds", 200, "dledger simulator: number of seeds TestSimSweep runs (1..N)")
	}
	if flag.Lookup("sim.seed") == nil {
		flag.Uint64Var(seed, "sim.seed", 0, "dledger simulator: run only this seed (0 = sweep)")
	}
}

// Seeds is the -sim.seeds value (200 by default).
func Seeds() int {
	if *seeds <= 0 {
		return 200
	}
	return *seeds
}

// Seed is the -sim.seed value; 0 means "sweep".
func Seed() uint64 { return *seed }
