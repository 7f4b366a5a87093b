// Package chaos is the fault-injection suite of issue 9 (`make chaos`): a
// name server and a 3-replica DLedger group as separate processes, every
// peer link through a test/faultproxy Network, sync producers and pulling
// consumers that record everything, a seeded schedule of kills, pauses and
// partitions, and checkers for lost, unexpected, out-of-order and
// duplicated messages. The test is behind the build tag "chaos" so
// `go test ./...` does not build it:
//
//	go test -tags chaos -count=1 -run TestChaos ./test/chaos -args -seeds=3
//	go test -tags chaos -count=1 -run TestChaos ./test/chaos -args -seed=42
package chaos
