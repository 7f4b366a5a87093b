package replog

import (
	"net"
	"net/netip"
	"testing"

	"go.uber.org/zap"

	"github.com/rmqd/rmqd/conf"
)

// TestLogstoreConfigZeroFillsInSyncFlush: the log store fills ahead of the
// log only when every group commit waits for an fdatasync.
func TestLogstoreConfigZeroFillsInSyncFlush(t *testing.T) {
	for flush, want := range map[conf.FlushDiskType]bool{conf.SyncFlush: true, conf.AsyncFlush: false} {
		c := conf.DefaultBroker()
		c.FlushDiskType = flush
		if got := logstoreConfig(c, 0, zap.NewNop()).ZeroFillAhead > 0; got != want {
			t.Errorf("%s: zero fill ahead %v, want %v", flush, got, want)
		}
	}
}

// A follower takes one P only when the whole group is on this host
// (procs.go): an address of another host, or one that does not parse,
// keeps the default.
func TestColocated(t *testing.T) {
	same := map[string]string{"n0": "127.0.0.1:40911", "n1": "[::1]:40912", "n2": "localhost:40913"}
	if !colocated(same) {
		t.Fatalf("%v: not co-located", same)
	}
	if ifs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range ifs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && !p.Addr().IsLoopback() {
				own := map[string]string{"n0": "127.0.0.1:40911", "n1": netip.AddrPortFrom(p.Addr(), 40912).String()}
				if !colocated(own) {
					t.Fatalf("%v (an interface address of this host): not co-located", own)
				}
				break
			}
		}
	}
	for _, peers := range []map[string]string{
		{"n0": "127.0.0.1:40911", "n1": "192.0.2.1:40912"}, // TEST-NET-1: never this host
		{"n0": "127.0.0.1:40911", "n1": "no-port"},
	} {
		if colocated(peers) {
			t.Fatalf("%v: co-located", peers)
		}
	}
}
