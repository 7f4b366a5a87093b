package dledger

import (
	"math"
	"testing"
)

func TestBinarySize(t *testing.T) {
	body := make([]byte, 300)
	ms := []Message{
		{Type: MsgHeartbeat, From: "n0", To: "n1", Term: 1, Index: -1, Commit: -1, Hint: -1},
		{Type: MsgAppResp, From: "n1", To: "n0", Term: 1 << 40, Index: math.MaxInt64 / 4, Commit: -1, Hint: -1, Reject: true, LogTerm: 63},
		{Type: MsgApp, From: "node-with-a-long-name", To: "n2", Term: 7, LogTerm: 6, Index: 99, Commit: 64, Hint: -1,
			Entries: []Entry{{Index: 100, Term: 7, Pos: 1 << 33, Magic: MagicNormal, Body: body}, {Index: 101, Term: 7, Pos: 1<<33 + 400, Magic: MagicNoop}}},
		{Type: MsgVote, From: "a", To: "b", Term: 0, Index: 0, Commit: 0, Hint: 0, Force: true},
	}
	for i := range ms {
		b, err := ms[i].MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if got := ms[i].BinarySize(); got != len(b) {
			t.Errorf("%v: BinarySize %d, encoded %d", &ms[i], got, len(b))
		}
	}
}
