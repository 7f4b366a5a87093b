package store

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"
)

// UniqIDGenerator makes client message ids (UNIQ_KEY, protocol.md §5.5) the
// way Java's MessageClientIDSetter does, for messages that arrive without
// one: hex(IP(4) + PID(int16) + classLoader hash(int32)) as a fixed prefix,
// then hex(ms since the start of the current month (int32) + counter(int16)),
// upper case, 32 characters for IPv4. Safe for concurrent use.
type UniqIDGenerator struct {
	prefix string
	mu     struct {
		sync.Mutex
		counter    uint16
		monthStart time.Time
	}
	now func() time.Time
}

// NewUniqIDGenerator uses ip ("" = 127.0.0.1) and this process's pid.
func NewUniqIDGenerator(ip string) (*UniqIDGenerator, error) {
	a := netip.AddrFrom4([4]byte{127, 0, 0, 1})
	if ip != "" {
		var err error
		if a, err = netip.ParseAddr(ip); err != nil {
			return nil, fmt.Errorf("%w: ip %q", ErrMalformed, ip)
		}
		a = a.Unmap()
	}
	var b []byte
	if a.Is4() {
		v := a.As4()
		b = append(b, v[:]...)
	} else {
		v := a.As16()
		b = append(b, v[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(os.Getpid()))
	b = binary.BigEndian.AppendUint32(b, 0) // class loader hash: Go clients send 0 too
	g := &UniqIDGenerator{prefix: strings.ToUpper(hex.EncodeToString(b)), now: time.Now}
	return g, nil
}

// Next returns a new id.
func (g *UniqIDGenerator) Next() string {
	now := g.now()
	g.mu.Lock()
	start := g.mu.monthStart
	if start.IsZero() || now.Month() != start.Month() || now.Year() != start.Year() {
		start = time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, now.Location())
		g.mu.monthStart = start
	}
	g.mu.counter++
	c := g.mu.counter
	g.mu.Unlock()
	var tail [6]byte
	binary.BigEndian.PutUint32(tail[:], uint32(now.Sub(start).Milliseconds()))
	binary.BigEndian.PutUint16(tail[4:], c)
	out := make([]byte, 0, len(g.prefix)+12)
	out = append(out, g.prefix...)
	out = appendHex(out, tail[:])
	return string(out)
}
