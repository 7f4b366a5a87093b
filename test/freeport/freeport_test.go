package freeport

import (
	"fmt"
	"net"
	"testing"
)

// The ports lie below the ephemeral range, and a process can bind them
// (and port-2 with vip) right after.
func TestPortBelowEphemeralRangeAndFree(t *testing.T) {
	start := ephemeralStart()
	for _, vip := range []bool{false, true} {
		for range 20 {
			p, err := Port(vip)
			if err != nil {
				t.Fatal(err)
			}
			if p < 10000 || p >= start {
				t.Fatalf("port %d outside [10000, %d)", p, start)
			}
			bind := []int{p}
			if vip {
				bind = append(bind, p-2)
			}
			for _, q := range bind {
				l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", q))
				if err != nil {
					t.Fatalf("port %d (vip %v): %v", q, vip, err)
				}
				l.Close()
			}
		}
	}
}
