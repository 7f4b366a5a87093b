// Package dledgertest is a deterministic simulator for dledger's Raft core.
//
// One goroutine, one seeded math/rand/v2 PCG, a virtual tick counter and a
// queue of in-flight messages ordered by (delivery tick, sequence number):
// the same seed always produces the same run (TestSimDeterminism compares
// trace hashes). Each run draws its knobs from the seed (Randomize): 3 or 5
// nodes, sync or async mode, heartbeat 1-3 ticks, flow-control and batch
// limits, data file size (exercises end-of-file padding), preferred leader,
// drop / duplicate probabilities, delivery delay (reordering), proposal,
// crash, mid-Ready crash, partition and transfer rates.
//
// Storage: a quarter of the seeds run on the real file store
// (dledger/logstore, Java DLedger's format) over a crashable vfs.MemFS with
// small data and index files (file rolls and end-of-file padding); the rest
// on dledger.MemoryStorage.
//
// Faults: message loss, duplication and reordering; partitions into random
// groups or isolating one node; crashes — in sync mode a crash is a power
// loss (MemoryStorage.CrashCopy keeps only synced entries; MemFS.CrashClone
// keeps synced bytes plus a random torn share of the rest, which recovery
// must cut at the last valid entry), in async mode a process crash
// (everything written survives) — either between steps or in
// the middle of handling a Ready (before persisting, after the hard state,
// after the append, after the sync); restarts recover from storage;
// leadership transfers. Proposals use an append hook that writes the entry's
// position into its body, and every stored entry is checked to carry it.
//
// Invariants, checked after every step: at most one leader per term; log
// matching (a prefix hash per (index, term) must agree across all nodes);
// a committed entry never changes (state machine safety) and a node's commit
// index never goes back or past its log; leader completeness (a new leader
// holds every committed entry, hence every acknowledged proposal); after the
// run heals every fault, all logs converge and every acknowledged proposal is
// committed everywhere (liveness within a bound).
//
// TestSimSweep runs seeds 1..-sim.seeds (default 200) or only -sim.seed; a
// failure prints the seed, recent events and the replay command:
//
//	go test ./dledger/dledgertest -run TestSimSweep -sim.seed=N -v
//	SIM_LOG=1 go test ./dledger/dledgertest -run TestSimSweep -sim.seed=N -v   # with the cores' logs
package dledgertest
