package test

import (
	"strings"
	"testing"
	"time"
)

// TestMqadminRaftCommands runs the rmqd-only commands (raftStatus,
// raftEvents, leadershipTransfer) against a running 3-replica group and
// checks what they report against the group's own runtime tables.
func TestMqadminRaftCommands(t *testing.T) {
	g := startDledgerGroup(t, nil)
	leader := g.waitHealthy(30 * time.Second)
	run := func(args ...string) string {
		t.Helper()
		r := mqRun(t, nil, append(args, "-n", g.ns)...)
		if r.code != 0 {
			t.Fatalf("mqadmin %v: exit %d\nstdout:\n%s\nstderr:\n%s", args, r.code, r.stdout, r.stderr)
		}
		return r.stdout
	}

	// raftStatus -c: one row per replica; exactly one LEADER, with brokerId
	// 0 and a term, followers at selfIndex+1 naming the same leader, and the
	// leader's peer column listing both followers with match/lag/last contact.
	// (Retried while the leadership moves: an election on a loaded machine
	// between waitHealthy and the command is not what this checks.)
	var out string
	var rows [][]string
	eventually(t, 15*time.Second, "raftStatus rows all naming the registered leader", func() bool {
		leader = g.leader()
		out = run("raftStatus", "-c", g.cluster)
		rows = rowsAfterHeader(out)
		if leader == nil || len(rows) != 3 {
			return false
		}
		for _, row := range rows {
			if len(row) < 6 || row[5] != leader.id {
				return false
			}
		}
		return true
	})
	assertHeader(t, out, "#Broker Name         #Addr                  #Self  #Role     #Term  #Leader #BID #Begin     #End       #Committed #MetaIndex #Peers(match/lag/lastContactMs)")
	leaders := 0
	for _, row := range rows {
		r := g.byAddr(row[1])
		if r == nil || row[2] != r.id {
			t.Fatalf("row %v names no replica of the group", row)
		}
		if row[5] != leader.id {
			t.Fatalf("%s reports leader %s, want %s:\n%s", r.id, row[5], leader.id, out)
		}
		switch row[3] {
		case "LEADER":
			leaders++
			if r != leader || row[6] != "0" || len(row) < 12 {
				t.Fatalf("leader row %v (want %s, BID 0, peers)", row, leader.id)
			}
			for _, o := range g.others(r) {
				if !strings.Contains(row[11], o.id+":") {
					t.Fatalf("leader's peers %q miss %s", row[11], o.id)
				}
			}
		case "FOLLOWER":
			if want := string(rune('1' + r.idx)); row[6] != want {
				t.Fatalf("follower %s BID %s, want %s", r.id, row[6], want)
			}
		default:
			t.Fatalf("role %q in %v", row[3], row)
		}
	}
	if leaders != 1 {
		t.Fatalf("%d leaders:\n%s", leaders, out)
	}

	// leadershipTransfer -b leader -t follower: the follower takes over and
	// registers as master.
	target := g.others(leader)[0]
	run("leadershipTransfer", "-b", leader.addr, "-t", target.id)
	eventually(t, 10*time.Second, "the transfer target registered as brokerId 0", func() bool {
		return g.leader() == target
	})

	// raftEvents -b target: its ring holds the change to LEADER.
	out = run("raftEvents", "-b", target.addr)
	if !strings.Contains(out, "->LEADER") {
		t.Fatalf("raftEvents of the new leader has no change to LEADER:\n%s", out)
	}

	// Errors are one line and a non-zero exit.
	mqFail(t, nil, "raftStatus", "-b", "127.0.0.1:1", "-n", g.ns)
	mqFail(t, nil, "leadershipTransfer", "-b", target.addr, "-n", g.ns)
}
