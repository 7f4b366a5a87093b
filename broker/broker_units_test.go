package broker

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rmqd/rmqd/remoting"
	"github.com/rmqd/rmqd/store"
)

func TestTagHashIsJavaHashCode(t *testing.T) {
	for _, c := range []struct {
		s    string
		want int64
	}{
		{"", 0},
		{"a", 97},
		{"TagA", 2598919},
		{"hello world", 1794106052},
		{"é", 233},     // one UTF-16 unit
		{"😀", 1772899}, // surrogate pair: 0xD83D*31 + 0xDE00
	} {
		if got := tagHash(c.s); got != c.want {
			t.Errorf("tagHash(%q) = %d, want %d", c.s, got, c.want)
		}
		if c.s != "" {
			if got := store.TagsHashCode(c.s); got != c.want {
				t.Errorf("store.TagsHashCode(%q) = %d, want %d", c.s, got, c.want)
			}
		}
	}
}

func TestParseSubscription(t *testing.T) {
	for _, c := range []struct {
		expr     string
		all      bool
		tags     []string
		wantErr  bool
		exprType string
	}{
		{expr: "*", all: true},
		{expr: "", all: true},
		{expr: " a || b ||  ", tags: []string{"a", "b"}},
		{expr: "a||a", tags: []string{"a"}},
		{expr: "||", wantErr: true},
		{expr: "a > 1", exprType: "SQL92", wantErr: true},
	} {
		s, err := parseSubscription("T", c.expr, c.exprType)
		if (err != nil) != c.wantErr {
			t.Errorf("%q: err = %v", c.expr, err)
			continue
		}
		if err != nil {
			continue
		}
		if s.matchAll() != c.all {
			t.Errorf("%q: matchAll = %v", c.expr, s.matchAll())
		}
		if len(s.Tags) != len(c.tags) {
			t.Errorf("%q: tags = %v, want %v", c.expr, s.Tags, c.tags)
		}
		for _, tag := range c.tags {
			if !s.matchTagsCode(tagHash(tag)) {
				t.Errorf("%q: does not match tag %q", c.expr, tag)
			}
		}
		if !c.all && s.matchTagsCode(tagHash("other")) {
			t.Errorf("%q: matches an unrelated tag", c.expr)
		}
	}
}

func TestSubscriptionFromHeartbeatRecomputesCodes(t *testing.T) {
	s := subscriptionFromHeartbeat(&subscriptionData{Topic: "T", SubString: "a || b", TagsSet: []string{"a", "b"}, CodeSet: codeSet{1, 2}})
	if !s.matchTagsCode(97) || !s.matchTagsCode(98) || s.matchTagsCode(1) {
		t.Fatalf("codes = %v", s.Codes)
	}
	var cs codeSet
	if err := cs.UnmarshalJSON([]byte(`["97", 98]`)); err != nil || len(cs) != 2 || cs[0] != 97 || cs[1] != 98 {
		t.Fatalf("codeSet = %v, %v", cs, err)
	}
}

func TestLockManager(t *testing.T) {
	lm := newLockManager(time.Minute)
	now := time.Unix(1000, 0)
	lm.now = func() time.Time { return now }
	q := []messageQueue{{Topic: "T", BrokerName: "b", QueueID: 0}, {Topic: "T", BrokerName: "b", QueueID: 1}}
	if got := lm.tryLockBatch("g", "c1", q); len(got) != 2 {
		t.Fatalf("c1 locked %v", got)
	}
	if got := lm.tryLockBatch("g", "c2", q[1:]); len(got) != 0 {
		t.Fatalf("c2 took a live lock: %v", got)
	}
	if got := lm.tryLockBatch("other", "c2", q); len(got) != 2 {
		t.Fatalf("locks are per group: %v", got)
	}
	now = now.Add(61 * time.Second)
	if got := lm.tryLockBatch("g", "c2", q[1:]); len(got) != 1 {
		t.Fatalf("c2 could not take an expired lock: %v", got)
	}
	lm.unlockBatch("g", "c1", q) // releases only queue 0 (c1's)
	if !lm.isLocked("g", "T", 1) || lm.isLocked("g", "T", 0) {
		t.Fatal("unlock released the wrong queues")
	}
	if !lm.groupHasLiveLocks("g") || lm.groupHasLiveLocks("nobody") {
		t.Fatal("groupHasLiveLocks")
	}
}

// fakeConn is a remoting.Conn that records what is sent to it.
type fakeConn struct {
	id     uint64
	mu     sync.Mutex
	sent   []*remoting.RemotingCommand
	closed bool
}

func (f *fakeConn) ID() uint64         { return f.id }
func (f *fakeConn) RemoteAddr() string { return "127.0.0.1:1" }
func (f *fakeConn) LocalAddr() string  { return "127.0.0.1:2" }
func (f *fakeConn) Send(c *remoting.RemotingCommand) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, c)
	return nil
}

func (f *fakeConn) sentCommands() []*remoting.RemotingCommand {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*remoting.RemotingCommand(nil), f.sent...)
}
func (f *fakeConn) Invoke(context.Context, *remoting.RemotingCommand, time.Duration) (*remoting.RemotingCommand, error) {
	return nil, context.DeadlineExceeded
}
func (f *fakeConn) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

func TestClientRegistry(t *testing.T) {
	r := newClientRegistry()
	c1, c2 := &fakeConn{id: 1}, &fakeConn{id: 2}
	now := time.Unix(1000, 0)
	subs := []*subscription{{Topic: "T"}, {Topic: "%RETRY%g"}}
	if !r.registerConsumer("g", clientChannel{conn: c1, clientID: "a", lastUpdate: now}, "CONSUME_PASSIVELY", "CLUSTERING", "", subs) {
		t.Fatal("first channel is a change")
	}
	if r.registerConsumer("g", clientChannel{conn: c1, clientID: "a", lastUpdate: now}, "CONSUME_PASSIVELY", "CLUSTERING", "", subs) {
		t.Fatal("a refresh is not a change")
	}
	if !r.registerConsumer("g", clientChannel{conn: c1, clientID: "a", lastUpdate: now}, "CONSUME_PASSIVELY", "CLUSTERING", "", subs[:1]) {
		t.Fatal("a different topic set is a change")
	}
	if !r.registerConsumer("g", clientChannel{conn: c2, clientID: "b", lastUpdate: now.Add(100 * time.Second)}, "CONSUME_PASSIVELY", "CLUSTERING", "", subs[:1]) {
		t.Fatal("a second channel is a change")
	}
	if ids := r.consumerIDs("g"); len(ids) != 2 || ids[0] != "a" || ids[1] != "b" {
		t.Fatalf("ids = %v", ids)
	}
	r.registerProducer("pg", clientChannel{conn: c1, clientID: "a", lastUpdate: now})
	groups, conns := r.expire(now.Add(121*time.Second), 120*time.Second)
	if len(groups) != 1 || groups[0] != "g" || len(conns) != 1 || conns[0].ID() != 1 {
		t.Fatalf("expire = %v %v", groups, conns)
	}
	if ids := r.consumerIDs("g"); len(ids) != 1 || ids[0] != "b" {
		t.Fatalf("after expiry ids = %v", ids)
	}
	if left := r.removeConn(2); len(left) != 1 || left[0] != "g" {
		t.Fatalf("removeConn = %v", left)
	}
	if _, ok := r.consumerGroup("g"); ok {
		t.Fatal("empty group still online")
	}
}

func TestRateWindow(t *testing.T) {
	var w rateWindow
	base := time.Unix(5000, 0)
	for i := 0; i <= 20; i++ {
		w.sample(base.Add(time.Duration(i)*time.Second), int64(i*10))
	}
	if r := w.rate(10); r < 9.99 || r > 10.01 {
		t.Fatalf("rate = %v", r)
	}
}

// TestNewUniqID: the broker's UNIQ_KEY is the prefix, the milliseconds
// since the start of the local month and a counter, in upper-case hex, also
// when a cached month no longer holds the time.
func TestNewUniqID(t *testing.T) {
	b := &Broker{uniqPrefix: uniqPrefix("10.1.2.3")}
	check := func() {
		t.Helper()
		seq := b.uniqSeq.Load() + 1
		before := time.Now()
		id := b.newUniqID()
		after := time.Now()
		if len(id) != 32 || id[:20] != b.uniqPrefix || strings.ToUpper(id) != id {
			t.Fatalf("id %q, prefix %q", id, b.uniqPrefix)
		}
		raw, err := hex.DecodeString(id[20:])
		if err != nil {
			t.Fatal(err)
		}
		sinceMonth := func(now time.Time) int64 {
			y, m, _ := now.Date()
			return now.Sub(time.Date(y, m, 1, 0, 0, 0, 0, now.Location())).Milliseconds()
		}
		if ms := int64(binary.BigEndian.Uint32(raw)); ms < sinceMonth(before) || ms > sinceMonth(after) {
			t.Fatalf("time part %d ms, want %d..%d", ms, sinceMonth(before), sinceMonth(after))
		}
		if got := binary.BigEndian.Uint16(raw[4:]); got != uint16(seq) {
			t.Fatalf("counter %d, want %d", got, seq)
		}
	}
	check()
	check() // from the cached month
	b.uniqMonth.Store(&monthBounds{start: 0, end: 1000})
	check() // a month that has passed
	b.uniqMonth.Store(&monthBounds{start: time.Now().Add(time.Hour).UnixMilli(), end: time.Now().Add(2 * time.Hour).UnixMilli()})
	check() // a month not begun (the clock went back)
}

// TestStatsPutCountersForgotten: a deleted topic's put counters go with it,
// and sends after the delete count from zero in new counters.
func TestStatsPutCountersForgotten(t *testing.T) {
	s := newBrokerStats()
	sum := func(name, key string) int64 {
		w := s.item(name, key)
		if w == nil {
			return -1
		}
		m, _, _ := w.sums()
		return m
	}
	s.recordPut("T", 2, 100)
	s.recordPut("T", 1, 50)
	if n, b, all := sum(statsTopicPutNums, "T"), sum(statsTopicPutSize, "T"), sum(statsBrokerPutNums, "x"); n != 3 || b != 150 || all != 3 {
		t.Fatalf("nums %d size %d broker %d, want 3 150 3", n, b, all)
	}
	s.forgetTopic("T")
	if n := sum(statsTopicPutNums, "T"); n != -1 {
		t.Fatalf("counter of a forgotten topic: %d", n)
	}
	s.recordPut("T", 1, 10)
	if n, b, all := sum(statsTopicPutNums, "T"), sum(statsTopicPutSize, "T"), sum(statsBrokerPutNums, ""); n != 1 || b != 10 || all != 4 {
		t.Fatalf("after forget: nums %d size %d broker %d, want 1 10 4", n, b, all)
	}
}
