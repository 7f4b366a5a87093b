package dledger

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// net is a tiny synchronous network of cores for paper tests: messages are
// collected from Ready and delivered breadth-first by deliver.
type net struct {
	t       *testing.T
	cores   map[string]*Core
	stores  map[string]*MemoryStorage
	ids     []string
	queue   []Message
	drop    func(m Message) bool
	commits map[string]int64
}

func testConfig(id string, ids []string, s LogStorage) CoreConfig {
	return CoreConfig{ID: id, Peers: ids, Storage: s, ElectionTick: 10, HeartbeatTick: 1,
		Rand: rand.New(rand.NewPCG(uint64(id[len(id)-1]), 7))}
}

func newNet(t *testing.T, n int, mod func(*CoreConfig)) *net {
	t.Helper()
	ids := []string{}
	for i := range n {
		ids = append(ids, "n"+string(rune('0'+i)))
	}
	nw := &net{t: t, cores: map[string]*Core{}, stores: map[string]*MemoryStorage{}, ids: ids, commits: map[string]int64{}}
	for _, id := range ids {
		s := NewMemoryStorage(0)
		nw.stores[id] = s
		cfg := testConfig(id, ids, s)
		if mod != nil {
			mod(&cfg)
		}
		c, err := NewCore(cfg)
		if err != nil {
			t.Fatal(err)
		}
		nw.cores[id] = c
	}
	return nw
}

// process drains the Ready of one core into its storage and the queue.
func (nw *net) process(id string) {
	c := nw.cores[id]
	for c.HasReady() {
		rd := c.Ready()
		nw.queue = append(nw.queue, rd.Messages...)
		s := nw.stores[id]
		if rd.HardState != nil {
			_ = s.SetHardState(*rd.HardState)
		}
		if len(rd.Entries) > 0 {
			if err := s.Append(rd.Entries); err != nil {
				nw.t.Fatalf("%s append: %v", id, err)
			}
			_ = s.Sync()
		}
		nw.queue = append(nw.queue, rd.MessagesAfterPersist...)
		c.Advance(rd)
		nw.commits[id] = rd.CommitIndex
	}
}

func (nw *net) processAll() {
	for _, id := range nw.ids {
		nw.process(id)
	}
}

// deliver runs until no messages are in flight.
func (nw *net) deliver() {
	nw.processAll()
	for steps := 0; len(nw.queue) > 0; steps++ {
		if steps > 100000 {
			nw.t.Fatal("network does not quiesce")
		}
		m := nw.queue[0]
		nw.queue = nw.queue[1:]
		if nw.drop != nil && nw.drop(m) {
			continue
		}
		c := nw.cores[m.To]
		if c == nil {
			continue
		}
		// Round-trip the wire format so the codec is exercised too.
		b, _ := m.MarshalBinary()
		var m2 Message
		if err := m2.UnmarshalBinary(b); err != nil {
			nw.t.Fatalf("codec: %v (%s)", err, m.String())
		}
		_ = c.Step(m2)
		nw.process(m.To)
	}
}

// tick ticks every core n times, delivering after each.
func (nw *net) tick(n int) {
	for range n {
		for _, id := range nw.ids {
			nw.cores[id].Tick()
		}
		nw.deliver()
	}
}

func (nw *net) elect(id string) {
	nw.cores[id].campaign(false)
	nw.deliver()
	if nw.cores[id].role != RoleLeader {
		nw.t.Fatalf("%s did not win: role %s", id, nw.cores[id].role)
	}
}

func (nw *net) leader() string {
	for _, id := range nw.ids {
		if nw.cores[id].role == RoleLeader {
			return id
		}
	}
	return ""
}

func (nw *net) propose(id string, bodies ...string) []Entry {
	bs := [][]byte{}
	for _, b := range bodies {
		bs = append(bs, []byte(b))
	}
	ents, err := nw.cores[id].Propose(bs, nil)
	if err != nil {
		nw.t.Fatalf("propose on %s: %v", id, err)
	}
	nw.deliver()
	return ents
}

// isolate drops every message to or from id.
func (nw *net) isolate(id string) {
	nw.drop = func(m Message) bool { return m.From == id || m.To == id }
}

func (nw *net) heal() { nw.drop = nil }

func terms(s *MemoryStorage) []int64 {
	var out []int64
	for _, e := range s.Snapshot() {
		out = append(out, e.Term)
	}
	return out
}

func msgsOf(msgs []Message, typ MsgType) []Message {
	return slices.DeleteFunc(slices.Clone(msgs), func(m Message) bool { return m.Type != typ })
}
