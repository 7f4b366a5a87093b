package dledger

import (
	"math/rand/v2"
	"sync"
)

// Receiver is what a transport delivers to: *Node implements it.
type Receiver interface {
	Step(m Message) error
}

// InmemNetwork connects Nodes in one process, for tests and benchmarks.
// Each directed link has its own goroutine and a bounded queue, so Send
// never blocks (a full queue drops the message). Links can be cut,
// nodes isolated, and messages dropped at random.
type InmemNetwork struct {
	mu       sync.Mutex
	nodes    map[string]Receiver
	links    map[[2]string]chan Message
	cut      map[[2]string]bool
	dropRate float64
	rng      *rand.Rand
	closed   bool
	wg       sync.WaitGroup
}

// NewInmemNetwork returns an empty network.
func NewInmemNetwork() *InmemNetwork {
	return &InmemNetwork{nodes: map[string]Receiver{}, links: map[[2]string]chan Message{},
		cut: map[[2]string]bool{}, rng: rand.New(rand.NewPCG(1, 2))}
}

// Register attaches (or, with nil, detaches) the receiver for id.
func (nw *InmemNetwork) Register(id string, r Receiver) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if r == nil {
		delete(nw.nodes, id)
		return
	}
	nw.nodes[id] = r
}

// Transport returns the sending side for node id.
func (nw *InmemNetwork) Transport(id string) Transport { return inmemTransport{nw: nw, from: id} }

type inmemTransport struct {
	nw   *InmemNetwork
	from string
}

func (t inmemTransport) Send(m Message) { t.nw.send(t.from, m) }

func (nw *InmemNetwork) send(from string, m Message) {
	key := [2]string{from, m.To}
	nw.mu.Lock()
	if nw.closed || nw.cut[key] || (nw.dropRate > 0 && nw.rng.Float64() < nw.dropRate) {
		nw.mu.Unlock()
		return
	}
	ch := nw.links[key]
	if ch == nil {
		ch = make(chan Message, 8192)
		nw.links[key] = ch
		nw.wg.Add(1)
		go nw.deliver(key, ch)
	}
	nw.mu.Unlock()
	select {
	case ch <- m:
	default: // queue full: drop
	}
}

func (nw *InmemNetwork) deliver(key [2]string, ch chan Message) {
	defer nw.wg.Done()
	for m := range ch {
		nw.mu.Lock()
		r, blocked := nw.nodes[key[1]], nw.cut[key]
		nw.mu.Unlock()
		if r != nil && !blocked {
			_ = r.Step(m)
		}
	}
}

// Isolate cuts every link to and from id.
func (nw *InmemNetwork) Isolate(id string) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	for other := range nw.nodes {
		nw.cut[[2]string{id, other}] = true
		nw.cut[[2]string{other, id}] = true
	}
}

// Cut cuts the link from a to b (one direction).
func (nw *InmemNetwork) Cut(a, b string) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	nw.cut[[2]string{a, b}] = true
}

// Heal restores every link.
func (nw *InmemNetwork) Heal() {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	clear(nw.cut)
}

// SetDropRate drops each message with probability p.
func (nw *InmemNetwork) SetDropRate(p float64) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	nw.dropRate = p
}

// Close stops every link goroutine. Register nodes' Stop before or after;
// messages still queued are dropped.
func (nw *InmemNetwork) Close() {
	nw.mu.Lock()
	if nw.closed {
		nw.mu.Unlock()
		return
	}
	nw.closed = true
	for _, ch := range nw.links {
		close(ch)
	}
	nw.mu.Unlock()
	nw.wg.Wait()
}
