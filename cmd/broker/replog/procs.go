package replog

import (
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"

	"github.com/rmqd/rmqd/dledger"
)

// A follower runs on one P (GOMAXPROCS 1), the leader on the runtime's
// default (issue 8). A follower's replication work is a chain of
// hand-offs — the transport reader steps each batch into the node's
// goroutine, which writes it and answers, and the commit wakes the store's
// dispatcher — taking about a fifth of a core at 64 producers. With a
// second P idle, each hand-off also woke another OS thread to spin for
// work it then did not find (futex wake-ups were a tenth of a follower's
// CPU), and on a host shared with the leader those threads queued for the
// cores the leader needs. On one P the woken goroutine runs on the same
// thread next. A follower serves no producer; a blocking syscall still
// hands its P to another thread.
//
// Not in SYNC_FLUSH: there a follower's flusher spends most of each round
// trip in fdatasync, and with the only P in a syscall the runtime hands it
// to another thread after 20 µs, a thread wake per fsync (end to end, SYNC
// sync64 lost msgs/s and used more CPU per message on one P).
//
// Only in a co-located group (every dLegerPeers address on this host, as
// with make run, make bench and the tests): that is where the follower's
// threads compete with the leader for the same cores. A follower on a host
// of its own keeps every core for slave reads and for catching up a
// backlog.
//
// GOMAXPROCS is process-wide: only a process's sole replica sets it (tests
// run several), and never when the GOMAXPROCS environment variable fixes it.
var procs struct {
	mu       sync.Mutex
	replicas int
}

// procsExplicit: the operator fixed GOMAXPROCS; replicas leave it alone.
func procsExplicit() bool { return os.Getenv("GOMAXPROCS") != "" }

// replicaStarted counts a running replica; a second one in the process
// restores the default.
func replicaStarted() {
	procs.mu.Lock()
	defer procs.mu.Unlock()
	procs.replicas++
	if procs.replicas > 1 && !procsExplicit() {
		runtime.SetDefaultGOMAXPROCS()
	}
}

// replicaClosed uncounts a replica (its node stopped: no more role events)
// and restores the default.
func replicaClosed() {
	procs.mu.Lock()
	defer procs.mu.Unlock()
	procs.replicas--
	if !procsExplicit() {
		runtime.SetDefaultGOMAXPROCS()
	}
}

// procsForRole sets GOMAXPROCS for the sole replica's new role; onePFollower
// says whether a follower may run on one P (ASYNC_FLUSH, co-located group).
func procsForRole(role dledger.Role, onePFollower bool) {
	procs.mu.Lock()
	defer procs.mu.Unlock()
	if procs.replicas != 1 || procsExplicit() || !onePFollower {
		return
	}
	if role == dledger.RoleLeader {
		runtime.SetDefaultGOMAXPROCS()
	} else {
		runtime.GOMAXPROCS(1)
	}
}

// colocated reports whether every peer address (host:port) is a loopback
// address or one of this host's interface addresses. A name is resolved;
// anything that cannot be resolved counts as another host.
func colocated(addrs map[string]string) bool {
	ifaces, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	local := map[netip.Addr]bool{}
	for _, a := range ifaces {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			local[p.Addr().Unmap()] = true
		}
	}
	for _, hp := range addrs {
		host, _, err := net.SplitHostPort(hp)
		if err != nil {
			return false
		}
		ips, err := net.LookupIP(host)
		if err != nil || len(ips) == 0 {
			return false
		}
		for _, ip := range ips {
			a, ok := netip.AddrFromSlice(ip)
			if !ok || !(a.Unmap().IsLoopback() || local[a.Unmap()]) {
				return false
			}
		}
	}
	return true
}
