package dledger

import (
	"testing"
)

func TestElectionBasic(t *testing.T) {
	nw := newNet(t, 3, nil)
	nw.elect("n0")
	nw.tick(3)
	for _, id := range nw.ids {
		c := nw.cores[id]
		if c.lead != "n0" || c.term != 1 {
			t.Fatalf("%s: lead %q term %d", id, c.lead, c.term)
		}
		if c.log.committed != 0 {
			t.Fatalf("%s: noop not committed: %d", id, c.log.committed)
		}
		e, _ := nw.stores[id].Entry(0)
		if e.Magic != MagicNoop || e.Term != 1 {
			t.Fatalf("%s: entry 0 = %+v", id, e)
		}
	}
	ents := nw.propose("n0", "a", "b")
	if ents[0].Index != 1 || ents[1].Index != 2 || ents[1].Pos != ents[0].Pos+ents[0].Size() {
		t.Fatalf("bad placement %+v", ents)
	}
	nw.tick(2)
	for _, id := range nw.ids {
		if nw.cores[id].log.committed != 2 {
			t.Fatalf("%s commit %d", id, nw.cores[id].log.committed)
		}
	}
}
