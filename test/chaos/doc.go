// Package chaos is the fault-injection suite of issue 9 (`make chaos`): a
// name server and a 3-replica DLedger group as separate processes on
// loopback, every peer link a→b through its own test/faultproxy proxy,
// 2 sync producers (retrying a message until it is acknowledged; bodies
// carry a per-producer, per-queue sequence) and one pulling consumer per
// queue (our remoting client, following the name server's brokerId 0,
// committing offsets with its pulls), and a seeded schedule of faults, one
// after another, each healed and followed by a wait for a healthy group:
//
//	kill-leader, kill-random, kill-all        kill -9, restart over the same data
//	pause-leader                              SIGSTOP for 2× the max election timeout, SIGCONT
//	isolate-leader, isolate-follower          leader in the minority / in the majority
//	bridge                                    two replicas cut from each other, one sees both
//	leader-outbound-cut                       one-way: nobody hears the leader
//	lossy-links                               10-30% frame loss, 5 ms + 0-20 ms delay, all links
//	isolate-follower+kill-leader              no majority until the leader restarts
//	flapping-partitions                       a new random partition every 200-600 ms
//	rolling-restart                           SIGTERM and restart, one replica at a time
//
// After the last fault the producers stop and the consumers drain to the
// leader's max offsets; the leader's log is then read once more from 0.
// Checkers (Jepsen total-queue vocabulary): lost (acknowledged, never
// consumed), ackMismatch (consumed, but not at the queue offset the ack
// named), unexpected (consumed, never sent), storeLost (acknowledged, not
// in the final log), order (per queue, offsets strictly increasing as
// received; per producer and queue, sequences non-decreasing in log
// order), diverged (one queue offset seen with two bodies) must all be 0;
// duplicated, recovered (outcome unknown to the producer, yet stored),
// rereads, consumer rewinds, committed-offset rollbacks, and per fault the
// recovery time (fault → first acknowledged send started after it) and the
// longest gap without acks are reported. One line per schedule.
//
// The test is behind the build tag "chaos" so `go test ./...` does not
// build it:
//
//	make chaos                     # 3 schedules from a clock-derived seed (printed)
//	SEEDS=50 make chaos            # a longer sweep
//	SEED=n make chaos              # replay one schedule (same faults, targets, holds)
//	go test -tags chaos -count=1 -v -run TestChaos ./test/chaos -args -seeds=10 -base=100 -faults=3
//	go test -tags chaos -count=1 -v -run TestChaos ./test/chaos -args -seed=7 -only=kill-all,bridge
//
// A failing schedule keeps its process logs in $TMPDIR/rmqd-chaos-logs-seed-n.
package chaos
