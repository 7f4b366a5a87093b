package dledger

import (
	"errors"
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

// AppendPlaced takes only entries that continue the log exactly (next
// index, current term, the layout's position): the node's proposers place
// entries on their own goroutines, and anything stale must be refused.
func TestAppendPlacedRefusesMisplaced(t *testing.T) {
	nw := newNet(t, 3, nil)
	nw.elect("n0")
	c := nw.cores["n0"]
	place := func(mod func(*Entry)) []Entry {
		ents := []Entry{{Magic: MagicNormal, Body: []byte("a")}, {Magic: MagicNormal, Body: []byte("bb")}}
		next, end := c.NextPlace()
		if _, err := PlaceEntries(c.log.storage, ents, next, c.Term(), end, nil); err != nil {
			t.Fatal(err)
		}
		if mod != nil {
			mod(&ents[1])
		}
		return ents
	}
	for name, mod := range map[string]func(*Entry){
		"index": func(e *Entry) { e.Index++ },
		"term":  func(e *Entry) { e.Term-- },
		"pos":   func(e *Entry) { e.Pos += 8 },
		"magic": func(e *Entry) { e.Magic = MagicNoop },
	} {
		last := c.LastIndex()
		if err := c.AppendPlaced(place(mod)); !errors.Is(err, ErrMisplaced) {
			t.Fatalf("%s: got %v", name, err)
		}
		if c.LastIndex() != last {
			t.Fatalf("%s: refused entries were appended", name)
		}
	}
	ents := place(nil)
	if err := c.AppendPlaced(ents); err != nil {
		t.Fatal(err)
	}
	nw.deliver()
	if nw.commits["n0"] != ents[1].Index {
		t.Fatalf("commit %d, want %d", nw.commits["n0"], ents[1].Index)
	}
	if err := nw.cores["n1"].AppendPlaced(place(nil)); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("follower: got %v", err)
	}
}
