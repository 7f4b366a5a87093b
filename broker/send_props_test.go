package broker

import (
	"strings"
	"testing"
	"time"

	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
	"github.com/rmqd/rmqd/store"
)

// TestSendStoresReceivedProperties: a send stores the properties string
// the producer sent, in its order, with UNIQ_KEY (when missing) and
// CLUSTER appended; duplicates and malformed segments are read as Java
// reads them (the last duplicate wins, a segment without a name or value
// is dropped) and a producer's CLUSTER is replaced. Batch items get the
// header's properties they lack, and CLUSTER.
func TestSendStoresReceivedProperties(t *testing.T) {
	b := startTestBroker(t, nil)
	c := &fakeConn{id: 1}
	const cluster = "CLUSTER\x01DefaultCluster\x02"
	send := func(code int16, props string, body []byte) {
		t.Helper()
		ext := remoting.FieldsOf("a", "pg", "b", "PropTopic", "c", "TBW102", "d", "4", "e", "0", "f", "0",
			"g", "1700000000123", "h", "0", "i", props, "j", "0", "k", "false", "m", "false")
		if r := b.processSend(c, remoting.NewRequest(code, ext, body)); r.Code != protocol.Success {
			t.Fatalf("send %q: %d %q", props, r.Code, r.Remark)
		}
	}
	send(protocol.SendMessageV2, "WAIT\x01true\x02TAGS\x01t1\x02UNIQ_KEY\x01U1\x02KEYS\x01k1 k2\x02", []byte("m0"))
	send(protocol.SendMessageV2, "TAGS\x01t2\x02CLUSTER\x01spoofed\x02KEYS\x01a\x02\x01x\x02n\x01\x02KEYS\x01b", []byte("m1"))
	send(protocol.SendMessageV2, "", []byte("m2"))
	batch := store.EncodeBatch(nil, []store.Message{
		{Body: []byte("b0"), Properties: "KEYS\x01bk\x02UNIQ_KEY\x01B0\x02"},
		{Body: []byte("b1"), Properties: "UNIQ_KEY\x01B1\x02WAIT\x01false\x02"},
	})
	send(protocol.SendBatchMessage, "WAIT\x01true\x02", batch)
	waitFor(t, 5*time.Second, "dispatch", func() bool { return b.maxOffset("PropTopic", 0) == 5 })
	r := b.processPull(c, pullReq("g", "PropTopic", 0, 0, protocol.PullFlagSubscription, "*", 0), true)
	msgs, err := store.DecodeMessages(r.Body, true)
	if err != nil || len(msgs) != 5 {
		t.Fatalf("pulled %d messages: %v", len(msgs), err)
	}
	uniq := msgs[1].UniqKey()
	if len(uniq) != 32 || msgs[2].UniqKey() == uniq {
		t.Fatalf("generated UNIQ_KEYs %q %q", uniq, msgs[2].UniqKey())
	}
	for i, want := range []string{
		"WAIT\x01true\x02TAGS\x01t1\x02UNIQ_KEY\x01U1\x02KEYS\x01k1 k2\x02" + cluster,
		"TAGS\x01t2\x02KEYS\x01b\x02UNIQ_KEY\x01" + uniq + "\x02" + cluster,
		"UNIQ_KEY\x01" + msgs[2].UniqKey() + "\x02" + cluster,
		"KEYS\x01bk\x02UNIQ_KEY\x01B0\x02" + cluster + "WAIT\x01true\x02",
		"UNIQ_KEY\x01B1\x02WAIT\x01false\x02" + cluster,
	} {
		if got := string(msgs[i].Properties); got != want {
			t.Errorf("message %d stored properties %q, want %q", i, got, want)
		}
	}
	// The pull body carries the stored bytes: each record ends with them.
	end := 0
	for i, m := range msgs {
		end += int(m.StoreSize)
		if !strings.HasSuffix(string(r.Body[:end]), string(m.Properties)) {
			t.Errorf("record %d does not end with its properties", i)
		}
	}
	// The consume queue's tags code and the key index come from them too.
	if r := b.processPull(c, pullReq("g", "PropTopic", 0, 0, protocol.PullFlagSubscription, "t2", 0), true); r.Code != protocol.Success {
		t.Fatalf("tag t2 pull: %d", r.Code)
	} else if got, _ := store.DecodeMessages(r.Body, false); len(got) != 1 || got[0].Tags() != "t2" {
		t.Fatalf("tag t2 pulled %v", got)
	}
}
