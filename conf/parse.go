package conf

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Peer is one member of a DLedger group.
type Peer struct {
	ID   string // e.g. "n0"
	Addr string // host:port of its DLedger listener
}

// ParsePeers parses dLegerPeers, "n0-127.0.0.1:40911;n1-127.0.0.1:40912",
// into an ordered list. The id ends at the first '-'. Ids and addresses must
// be unique; blanks around parts are ignored; an empty string is an error.
func ParsePeers(s string) ([]Peer, error) {
	parts := splitList(s)
	if len(parts) == 0 {
		return nil, fmt.Errorf("no peers in %q", s)
	}
	peers := make([]Peer, 0, len(parts))
	ids := map[string]bool{}
	addrs := map[string]bool{}
	for _, p := range parts {
		id, addr, ok := strings.Cut(p, "-")
		id, addr = strings.TrimSpace(id), strings.TrimSpace(addr)
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("peer %q: want id-host:port", p)
		}
		if err := checkHostPort(addr); err != nil {
			return nil, fmt.Errorf("peer %q: %v", p, err)
		}
		if ids[id] {
			return nil, fmt.Errorf("duplicate peer id %q", id)
		}
		if addrs[addr] {
			return nil, fmt.Errorf("duplicate peer address %q", addr)
		}
		ids[id], addrs[addr] = true, true
		peers = append(peers, Peer{ID: id, Addr: addr})
	}
	return peers, nil
}

// FormatPeers is the inverse of ParsePeers.
func FormatPeers(peers []Peer) string {
	parts := make([]string, len(peers))
	for i, p := range peers {
		parts[i] = p.ID + "-" + p.Addr
	}
	return strings.Join(parts, ";")
}

// ParseDelayLevels parses a messageDelayLevel string: blank-separated
// durations with unit s, m, h or d (Java's units), e.g. "1s 5s 1m 2h".
// Index 0 of the result is delay level 1.
func ParseDelayLevels(s string) ([]time.Duration, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return nil, fmt.Errorf("no delay levels in %q", s)
	}
	out := make([]time.Duration, 0, len(fields))
	for _, f := range fields {
		if len(f) < 2 {
			return nil, fmt.Errorf("delay level %q: want a number and a unit s, m, h or d", f)
		}
		var unit time.Duration
		switch f[len(f)-1] {
		case 's':
			unit = time.Second
		case 'm':
			unit = time.Minute
		case 'h':
			unit = time.Hour
		case 'd':
			unit = 24 * time.Hour
		default:
			return nil, fmt.Errorf("delay level %q: unit must be s, m, h or d", f)
		}
		n, err := strconv.ParseInt(f[:len(f)-1], 10, 32)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("delay level %q: want a positive number before the unit", f)
		}
		out = append(out, time.Duration(n)*unit)
	}
	return out, nil
}

// ParseDeleteWhen parses deleteWhen: one or more hours of the day ("04",
// "01;02"), each 0..23. Routine deletion of expired files runs in those hours.
func ParseDeleteWhen(s string) ([]int, error) {
	parts := splitList(s)
	if len(parts) == 0 {
		return nil, fmt.Errorf("no hours in %q", s)
	}
	out := make([]int, 0, len(parts))
	for _, p := range parts {
		h, err := strconv.Atoi(p)
		if err != nil || h < 0 || h > 23 {
			return nil, fmt.Errorf("hour %q: want 00..23", p)
		}
		out = append(out, h)
	}
	return out, nil
}
