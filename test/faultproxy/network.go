package faultproxy

import (
	"fmt"
	"slices"
	"sort"
	"sync"
)

// Network is a group of replicas whose every directed peer link a→b goes
// through its own Proxy: replica a is configured to reach b at
// Addr(a, b), the proxy forwards to b's real peer listener. Each replica
// still listens on its own real address, so its peer list is
// Peers(self): its own entry real, the others proxies. The ids are the same
// everywhere, only the addresses differ per replica.
type Network struct {
	mu    sync.Mutex
	ids   []string
	real  map[string]string
	links map[[2]string]*Proxy
}

// NewNetwork starts a proxy for every ordered pair of ids in real (id →
// the replica's real peer listen address). Proxies are frame-aware for
// RocketMQ remoting (RemotingFrames) unless opts say otherwise.
func NewNetwork(real map[string]string, opts ...Option) (*Network, error) {
	n := &Network{real: map[string]string{}, links: map[[2]string]*Proxy{}}
	for id, a := range real {
		n.ids = append(n.ids, id)
		n.real[id] = a
	}
	sort.Strings(n.ids)
	for _, from := range n.ids {
		for _, to := range n.ids {
			if from == to {
				continue
			}
			p, err := New(n.real[to], append([]Option{WithFramer(RemotingFrames)}, opts...)...)
			if err != nil {
				n.Close()
				return nil, err
			}
			n.links[[2]string{from, to}] = p
		}
	}
	return n, nil
}

// IDs are the replica ids, sorted.
func (n *Network) IDs() []string { return slices.Clone(n.ids) }

// Link is the proxy carrying from's traffic to to.
func (n *Network) Link(from, to string) *Proxy {
	p := n.links[[2]string{from, to}]
	if p == nil {
		panic(fmt.Sprintf("faultproxy: no link %s→%s", from, to))
	}
	return p
}

// Addr is the address from uses to reach to: the proxy of the link, or
// from's own real address when from == to.
func (n *Network) Addr(from, to string) string {
	if from == to {
		n.mu.Lock()
		defer n.mu.Unlock()
		return n.real[from]
	}
	return n.Link(from, to).Addr()
}

// Peers is self's view of the group: id → address, self's own entry real,
// the others through the proxies of self's outgoing links.
func (n *Network) Peers(self string) map[string]string {
	m := make(map[string]string, len(n.ids))
	for _, id := range n.ids {
		m[id] = n.Addr(self, id)
	}
	return m
}

// PeersString is Peers(self) in dLegerPeers form: "n0-host:port;n1-...",
// ids in sorted order.
func (n *Network) PeersString(self string) string {
	s := ""
	for i, id := range n.ids {
		if i > 0 {
			s += ";"
		}
		s += id + "-" + n.Addr(self, id)
	}
	return s
}

// SetReal changes where id really listens (a replica restarted on another
// port): the links into it forward there from now on.
func (n *Network) SetReal(id, addr string) {
	n.mu.Lock()
	n.real[id] = addr
	n.mu.Unlock()
	for _, from := range n.ids {
		if from != id {
			n.Link(from, id).SetTarget(addr)
		}
	}
}

// SetLink applies f to everything from sends to to: the forward way of the
// link from→to and the backward way (answers) of the link to→from.
func (n *Network) SetLink(from, to string, f Fault) {
	n.Link(from, to).Set(Forward, f)
	n.Link(to, from).Set(Backward, f)
}

// Cut blackholes everything from sends to to (one-way loss); to's traffic
// to from still flows.
func (n *Network) Cut(from, to string) { n.SetLink(from, to, Fault{Blackhole: true}) }

// Partition splits the replicas into groups: every link between two
// different groups is blackholed both ways (requests and answers), links
// inside a group are healed. A replica in no group is cut off from everyone.
func (n *Network) Partition(groups ...[]string) {
	side := map[string]int{}
	for i, g := range groups {
		for _, id := range g {
			side[id] = i + 1
		}
	}
	for k, p := range n.links {
		a, okA := side[k[0]]
		b, okB := side[k[1]]
		if okA && okB && a == b {
			p.Heal()
		} else {
			p.Blackhole(Both)
		}
	}
}

// Isolate cuts id off from every other replica, both ways (the others stay
// connected).
func (n *Network) Isolate(id string) {
	var rest []string
	for _, o := range n.ids {
		if o != id {
			rest = append(rest, o)
		}
	}
	n.Partition([]string{id}, rest)
}

// Heal removes every fault from every link.
func (n *Network) Heal() {
	for _, p := range n.links {
		p.Heal()
	}
}

// Stats sums the counters of every link.
func (n *Network) Stats() Stats {
	var s Stats
	for _, p := range n.links {
		x := p.Stats()
		s.Accepted += x.Accepted
		s.Refused += x.Refused
		s.FramesForward += x.FramesForward
		s.FramesDropped += x.FramesDropped
		s.FramesSwallowed += x.FramesSwallowed
		s.BytesDelivered += x.BytesDelivered
	}
	return s
}

// Close closes every proxy.
func (n *Network) Close() {
	for _, p := range n.links {
		_ = p.Close()
	}
}
