// Package freeport picks loopback ports for processes the end-to-end and
// chaos tests start later (name servers, brokers, DLedger peers), whose
// addresses must be known before they start, so port 0 cannot serve.
//
// A port the OS handed out with port 0 and that was then released lies in
// the OS's ephemeral range, where any outgoing connection (a replica
// dialling its peers, a client) can take it as its local port before the
// process binds it; a clean-clone CI run failed that way ("bind: address
// already in use" on a replica's peer port). So ports are picked below
// that range and checked by listening on them.
package freeport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// Port returns a loopback port free now. With vip set port-2 must be free
// too (a broker's VIP channel listens there).
func Port(vip bool) (int, error) {
	lo, hi := 10000, ephemeralStart()-1
	for range 200 {
		p := lo + rand.IntN(hi-lo+1)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		if !vip {
			l.Close()
			return p, nil
		}
		l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p-2))
		l.Close()
		if err != nil {
			continue
		}
		l2.Close()
		return p, nil
	}
	return 0, errors.New("freeport: no free loopback port found below the ephemeral range")
}

// ephemeralStart is the first port of the OS's ephemeral range (Linux's
// default 32768 when unreadable or implausibly low).
func ephemeralStart() int {
	const def = 32768
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return def
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return def
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n < 12000 {
		return def
	}
	return n
}
