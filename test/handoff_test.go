package test

import (
	"testing"
	"time"
)

// TestDledgerGracefulStopHandsOffLeadership: SIGTERM on the leader moves
// leadership to a follower before the process exits, so the group never
// waits an election timeout for a planned restart. Without the hand-off
// the followers keep receiving heartbeats until the old leader's node
// stops at the very end of its shutdown, and only elect an election
// timeout (≥ 500 ms here) after the exit; with it, the new leader's
// LEADER event is stamped before the exit.
func TestDledgerGracefulStopHandsOffLeadership(t *testing.T) {
	g := startDledgerGroup(t, nil)
	const topic = "DlHandOffTopic"
	l := g.waitHealthy(60 * time.Second)
	if err := g.createTopicRaw(l.addr, topic, 1, 1, 6); err != nil {
		t.Fatal(err)
	}
	if resp, err := g.sendRaw(l.addr, topic, 0, "", "before-stop", 5*time.Second); err != nil || resp.Code != 0 {
		t.Fatalf("send before the stop: %v %v", resp, err)
	}

	start := time.Now()
	l.proc.stop(20 * time.Second)
	exited := time.Now()
	if l.proc.exitErr != nil {
		t.Fatalf("old leader after SIGTERM: %v", l.proc.exitErr)
	}

	nl, took := g.waitNewMaster(t, l, start)
	var became int64
	for _, ev := range g.raftEvents(t, nl).Events {
		if ev.NewRole == "LEADER" {
			became = ev.Timestamp
		}
	}
	if became == 0 {
		t.Fatalf("new leader %s has no LEADER event", nl.id)
	}
	t.Logf("SIGTERM → exit %v; %s LEADER at +%v; master in the name server after %v",
		exited.Sub(start).Round(time.Millisecond), nl.id, time.UnixMilli(became).Sub(start).Round(time.Millisecond), took.Round(time.Millisecond))
	if time.UnixMilli(became).After(exited) {
		t.Fatalf("%s became leader %v after the old leader exited: no hand-off before shutdown",
			nl.id, time.UnixMilli(became).Sub(exited))
	}

	if resp, err := g.sendRaw(nl.addr, topic, 0, "", "after-stop", 5*time.Second); err != nil || resp.Code != 0 {
		t.Fatalf("send to the new leader: %v %v", resp, err)
	}
	msgs := g.readAll(t, nl, topic, 1)
	if len(msgs) != 2 || string(msgs[0].Body) != "before-stop" || string(msgs[1].Body) != "after-stop" {
		t.Fatalf("new leader holds %d messages, want before-stop then after-stop", len(msgs))
	}
}
