package broker

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
	"github.com/rmqd/rmqd/store"
)

// heldLog is the replicated log of a replica leading term 1 alone: it
// commits each Append at once, or, once held, only when the test commits.
// Entries are laid out as DLedger's (48-byte header, then the body) in one
// data file, so the store dispatches them as usual.
type heldLog struct {
	mu        sync.Mutex
	data      []byte
	entries   int
	committed int // entries
	held      bool
	deposed   bool
	pending   []*heldAppend
	watch     chan struct{}
}

type heldAppend struct {
	done chan struct{}
	err  error
}

func (a *heldAppend) Done() <-chan struct{} { return a.done }
func (a *heldAppend) Err() error            { return a.err }

func newHeldLog() *heldLog {
	l := &heldLog{watch: make(chan struct{})}
	l.mu.Lock()
	l.place(2, nil, nil) // the term's no-op
	l.commitLocked()
	l.mu.Unlock()
	return l
}

func (l *heldLog) place(magic uint32, body []byte, hook func(pos int64)) {
	pos := int64(len(l.data))
	if hook != nil {
		hook(pos)
	}
	var h [48]byte
	be := binary.BigEndian
	be.PutUint32(h[0:], magic)
	be.PutUint32(h[4:], uint32(len(h)+len(body)))
	be.PutUint64(h[8:], uint64(l.entries))
	be.PutUint64(h[16:], 1)
	be.PutUint64(h[24:], uint64(pos))
	be.PutUint32(h[44:], uint32(len(body)))
	l.data = append(append(l.data, h[:]...), body...)
	l.entries++
}

func (l *heldLog) commitLocked() {
	l.committed = l.entries
	for _, a := range l.pending {
		close(a.done)
	}
	l.pending = nil
	close(l.watch)
	l.watch = make(chan struct{})
}

func (l *heldLog) Append(_ context.Context, bodies [][]byte, hook store.AppendHook) (store.ReplicatedAppend, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.deposed {
		return nil, &store.NotLeaderError{LeaderID: "n2", Reason: "held log deposed"}
	}
	for i, b := range bodies {
		l.place(1, b, func(pos int64) { hook(i, 1, pos, b) })
	}
	a := &heldAppend{done: make(chan struct{})}
	l.pending = append(l.pending, a)
	if !l.held {
		l.commitLocked()
	}
	return a, nil
}

// hold stops committing; commit commits everything and resumes.
func (l *heldLog) hold() { l.mu.Lock(); l.held = true; l.mu.Unlock() }

func (l *heldLog) commit() {
	l.mu.Lock()
	l.held = false
	l.commitLocked()
	l.mu.Unlock()
}

// depose: another replica leads term 2; the waiting appends fail.
func (l *heldLog) depose() {
	l.mu.Lock()
	l.deposed = true
	for _, a := range l.pending {
		a.err = &store.NotLeaderError{LeaderID: "n2", Reason: "leadership lost"}
		close(a.done)
	}
	l.pending = nil
	close(l.watch)
	l.watch = make(chan struct{})
	l.mu.Unlock()
}

func (l *heldLog) count() int { l.mu.Lock(); defer l.mu.Unlock(); return l.entries }

func (l *heldLog) ReadAt(p []byte, pos int64) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if pos >= int64(len(l.data)) {
		return 0, io.EOF
	}
	n := copy(p, l.data[pos:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (l *heldLog) BeginPos() int64 { return 0 }
func (l *heldLog) EndPos() int64   { l.mu.Lock(); defer l.mu.Unlock(); return int64(len(l.data)) }

func (l *heldLog) CommittedPos() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.committedPosLocked()
}

func (l *heldLog) committedPosLocked() int64 {
	pos := int64(0)
	for i := 0; i < l.committed; i++ {
		pos += int64(binary.BigEndian.Uint32(l.data[pos+4:]))
	}
	return pos
}

func (l *heldLog) Watch() <-chan struct{} { l.mu.Lock(); defer l.mu.Unlock(); return l.watch }

func (l *heldLog) Role() store.ReplicaRole {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.deposed {
		return store.ReplicaRole{Term: 2, LeaderID: "n2", SelfID: "n1"}
	}
	return store.ReplicaRole{Leader: true, Term: 1, LeaderID: "n1", SelfID: "n1"}
}

func (l *heldLog) Status() store.ReplicationStatus {
	r := l.Role()
	l.mu.Lock()
	defer l.mu.Unlock()
	st := store.ReplicationStatus{SelfID: "n1", Role: "FOLLOWER", Term: r.Term, LeaderID: r.LeaderID,
		LedgerEndIndex: int64(l.entries - 1), CommittedIndex: int64(l.committed - 1), CommittedPos: l.committedPosLocked()}
	if r.Leader {
		st.Role = "LEADER"
		st.Peers = map[string]store.PeerReplication{"n0": {}, "n2": {}}
	}
	return st
}

// startHeldBroker starts a DLedger-mode broker over a heldLog, as the
// writable leader, with topic created (one queue), and dials it.
func startHeldBroker(t *testing.T, topic string) (*Broker, *heldLog, net.Conn, *bufio.Reader) {
	t.Helper()
	l := newHeldLog()
	b, err := NewWithOptions(testBrokerConfig(t, dledgerTestConfig()), nil, Options{ReplicatedLog: l})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Shutdown)
	waitFor(t, 5*time.Second, "the broker to lead", b.IsMaster)
	resp := b.handler().ServeRemoting(&fakeConn{id: 1}, remoting.NewRequest(protocol.UpdateAndCreateTopic, remoting.FieldsOf(
		"topic", topic, "defaultTopic", "TBW102", "readQueueNums", "1", "writeQueueNums", "1", "perm", "6",
		"topicFilterType", "SINGLE_TAG", "topicSysFlag", "0", "order", "false"), nil))
	if resp.Code != protocol.Success {
		t.Fatalf("create topic: %d %q", resp.Code, resp.Remark)
	}
	nc, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(b.config().ListenPort)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return b, l, nc, bufio.NewReader(nc)
}

// sendFrames writes n pipelined SEND_MESSAGE requests (opaques from first,
// bodies "body-<opaque>") to queue 0 of topic, then one oneway send.
func sendFrames(t *testing.T, nc net.Conn, topic string, first, n int) {
	t.Helper()
	var out []byte
	for i := first; i < first+n+1; i++ {
		req := sendReq(topic, 0, "body-"+strconv.Itoa(i), nil)
		req.Opaque = int32(i)
		if i == first+n {
			req.Flag |= remoting.FlagOneway
		}
		var err error
		if out, err = remoting.Encode(out, req); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := nc.Write(out); err != nil {
		t.Fatal(err)
	}
}

// recvSends reads n responses; a second one for an opaque fails.
func recvSends(t *testing.T, nc net.Conn, br *bufio.Reader, n int) map[int32]*remoting.RemotingCommand {
	t.Helper()
	got := map[int32]*remoting.RemotingCommand{}
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for range n {
		frame, err := remoting.ReadFrame(br, 0)
		if err != nil {
			t.Fatalf("%d of %d responses: %v", len(got), n, err)
		}
		resp, err := remoting.DecodeFrame(frame)
		if err != nil {
			t.Fatal(err)
		}
		if got[resp.Opaque] != nil {
			t.Fatalf("opaque %d answered twice", resp.Opaque)
		}
		got[resp.Opaque] = resp
	}
	return got
}

// expectSilence fails if anything arrives within d.
func expectSilence(t *testing.T, nc net.Conn, br *bufio.Reader, d time.Duration, what string) {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(d))
	if _, err := br.Peek(1); err == nil {
		t.Fatalf("%s: a response arrived", what)
	}
}

// DLedger sends hold no goroutine while they wait for their commit: more
// sends than the broker has remoting workers are all proposed while
// nothing commits (a send holding its worker until its commit, as before,
// stops at the worker count), none is answered before the commit, and
// each is answered exactly once after it with its queue offset and the
// offset msgId of its record; the oneway send is stored, never answered.
// When leadership is lost instead, each waiting send gets exactly one
// SERVICE_NOT_AVAILABLE naming the new leader.
func TestDLedgerSendsAnsweredAtCommit(t *testing.T) {
	const topic = "HeldTopic"
	const n = remotingWorkers + 200
	b, l, nc, br := startHeldBroker(t, topic)

	l.hold()
	before := l.count()
	sendFrames(t, nc, topic, 0, n)
	waitFor(t, 2*time.Second, "every send proposed while none commits (below the 2.5 s replication timeout)", func() bool { return l.count() == before+n+1 })
	expectSilence(t, nc, br, 100*time.Millisecond, "before the commit")
	l.commit()
	got := recvSends(t, nc, br, n)
	offsets := map[string]bool{}
	for i := range int32(n) {
		resp := got[i]
		if resp == nil || resp.Code != protocol.Success {
			t.Fatalf("send %d: %+v", i, resp)
		}
		qo := resp.ExtFields.Get("queueOffset")
		offsets[qo] = true
		msgID := resp.ExtFields.Get("msgId")
		if len(msgID) != 32 || resp.ExtFields.Get("queueId") != "0" {
			t.Fatalf("send %d: ext %v", i, resp.ExtFields)
		}
		phy, err := strconv.ParseInt(msgID[16:], 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		m, err := b.Store().LookMessageByOffset(phy)
		if err != nil || m.MsgID != msgID || string(m.Body) != "body-"+strconv.Itoa(int(i)) || strconv.FormatInt(m.QueueOffset, 10) != qo {
			t.Fatalf("send %d (msgId %s, queue offset %s): record %+v, %v", i, msgID, qo, m, err)
		}
	}
	if len(offsets) != n {
		t.Fatalf("%d distinct queue offsets for %d sends", len(offsets), n)
	}
	expectSilence(t, nc, br, 100*time.Millisecond, "the oneway send")
	waitFor(t, 5*time.Second, "the oneway send stored", func() bool { return b.maxOffset(topic, 0) == int64(n+1) })

	// Leadership lost while sends wait.
	const m = 50
	l.hold()
	before = l.count()
	sendFrames(t, nc, topic, n+1, m)
	waitFor(t, 5*time.Second, "the next sends proposed", func() bool { return l.count() == before+m+1 })
	l.depose()
	got = recvSends(t, nc, br, m)
	for i := int32(n + 1); i < n+1+m; i++ {
		if resp := got[i]; resp == nil || resp.Code != protocol.ServiceNotAvailable {
			t.Fatalf("send %d after leadership loss: %+v", i, resp)
		}
	}
	expectSilence(t, nc, br, 200*time.Millisecond, "after the leadership loss")
}

// Sends waiting for their commit when the broker shuts down: the broker
// closes its remoting servers first (as before, when their workers waited
// in the put), so the producer learns it from the closed connection, and
// then the store stops and completes every waiting put exactly once (the
// in-flight count returns to zero, no answer arrives twice or after the
// close).
func TestDLedgerSendsCompletedOnShutdown(t *testing.T) {
	const topic = "HeldTopic"
	const n = 50
	b, l, nc, br := startHeldBroker(t, topic)
	l.hold()
	before := l.count()
	sendFrames(t, nc, topic, 0, n)
	waitFor(t, 5*time.Second, "the sends proposed", func() bool { return l.count() == before+n+1 })
	if got := b.sendsInFlight.Load(); got != n+1 {
		t.Fatalf("%d sends in flight, want %d", got, n+1)
	}
	done := make(chan struct{})
	go func() { b.Shutdown(); close(done) }()
	seen := map[int32]bool{}
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		frame, err := remoting.ReadFrame(br, 0)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("want the connection closed: %v", err)
		}
		resp, err := remoting.DecodeFrame(frame)
		if err != nil || seen[resp.Opaque] || resp.Code == protocol.Success {
			t.Fatalf("answer at shutdown: %+v %v", resp, err)
		}
		seen[resp.Opaque] = true
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown hangs")
	}
	if got := b.sendsInFlight.Load(); got != 0 {
		t.Fatalf("%d sends still in flight after shutdown", got)
	}
}

// Sends served on the event loop give their request frames back once
// answered (remoting.ReleaseRequest), and later sends read into them: what
// the store keeps of a send (the topic as the queue-offset key, the stats'
// keys, the record) must not alias its frame. Waves of sends to two topics
// whose names differ in length reuse each other's frames; every record
// and answer must still be its own, and queue offsets dense per topic.
// Under the race detector released frames are overwritten with 0xdd.
func TestDLedgerSendsReuseRequestFrames(t *testing.T) {
	topics := []string{"HeldTopic", "AnotherTopicWithALongerName"}
	b, _, nc, br := startHeldBroker(t, topics[0])
	resp := b.handler().ServeRemoting(&fakeConn{id: 1}, remoting.NewRequest(protocol.UpdateAndCreateTopic, remoting.FieldsOf(
		"topic", topics[1], "defaultTopic", "TBW102", "readQueueNums", "1", "writeQueueNums", "1", "perm", "6",
		"topicFilterType", "SINGLE_TAG", "topicSysFlag", "0", "order", "false"), nil))
	if resp.Code != protocol.Success {
		t.Fatalf("create topic: %d %q", resp.Code, resp.Remark)
	}
	const waves, perWave = 20, 64
	next := map[string]int64{}
	for w := range waves {
		var out []byte
		for i := w * perWave; i < (w+1)*perWave; i++ {
			req := sendReq(topics[i%2], 0, "body-"+strconv.Itoa(i)+"-"+topics[i%2], nil)
			req.Opaque = int32(i)
			var err error
			if out, err = remoting.Encode(out, req); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := nc.Write(out); err != nil {
			t.Fatal(err)
		}
		got := recvSends(t, nc, br, perWave)
		for i := int32(w * perWave); i < int32((w+1)*perWave); i++ {
			topic := topics[i%2]
			resp := got[i]
			if resp == nil || resp.Code != protocol.Success {
				t.Fatalf("send %d: %+v", i, resp)
			}
			msgID := resp.ExtFields.Get("msgId")
			phy, err := strconv.ParseInt(msgID[16:], 16, 64)
			if err != nil {
				t.Fatalf("send %d: msgId %q", i, msgID)
			}
			m, err := b.Store().LookMessageByOffset(phy)
			want := "body-" + strconv.Itoa(int(i)) + "-" + topic
			if err != nil || m.Topic != topic || string(m.Body) != want || strconv.FormatInt(m.QueueOffset, 10) != resp.ExtFields.Get("queueOffset") {
				t.Fatalf("send %d: answer %v, record %+v, %v", i, resp.ExtFields, m, err)
			}
			if m.QueueOffset < next[topic] {
				t.Fatalf("send %d: queue offset %d of %s after %d", i, m.QueueOffset, topic, next[topic])
			}
			next[topic] = m.QueueOffset + 1
		}
	}
	for _, topic := range topics {
		want := int64(waves * perWave / 2)
		waitFor(t, 5*time.Second, "every send of "+topic+" dispatched", func() bool { return b.maxOffset(topic, 0) == want })
		if next[topic] != want {
			t.Fatalf("%s: last queue offset %d, want %d", topic, next[topic]-1, want-1)
		}
	}
}

// answerConn is a Conn that only passes on the code of each response and
// which command it was (a fakeConn keeps them, which allocates; a
// response may be reused once Send returned).
type answerConn struct {
	fakeConn
	answered chan answer
}

type answer struct {
	code int16
	cmd  *remoting.RemotingCommand // not to be read
}

func (c *answerConn) Send(resp *remoting.RemotingCommand) error {
	c.answered <- answer{resp.Code, resp}
	return nil
}

// A DLedger send's call (its decoded header, message and response) is
// recycled once the send is answered: the responses of sends made one
// after another come from a few calls, not one each. And what a send
// allocates from its request to its answer, over a log that commits at
// once (the log's own allocations included), stays at its ceiling.
func TestDLedgerSendAllocations(t *testing.T) {
	const topic = "AllocTopic"
	b, _, _, _ := startHeldBroker(t, topic)
	c := &answerConn{fakeConn: fakeConn{id: 2}, answered: make(chan answer, 1)}
	req := sendReq(topic, 0, string(make([]byte, 1024)), map[string]string{"UNIQ_KEY": "C0A80102000018B4AAC20000", "TAGS": "a"})
	send := func() *remoting.RemotingCommand {
		if r := b.processSendInline(c, req); r != nil {
			t.Fatalf("send answered at once: %d %q", r.Code, r.Remark)
		}
		a := <-c.answered
		if a.code != protocol.Success {
			t.Fatalf("send: %d", a.code)
		}
		return a.cmd
	}
	const n = 50
	calls := map[*remoting.RemotingCommand]bool{}
	for range n {
		calls[send()] = true
	}
	t.Logf("%d sends answered from %d calls", n, len(calls))
	if len(calls) > n/2 {
		t.Fatalf("%d sends answered from %d calls: calls are not recycled", n, len(calls))
	}
	allocs := 1e9
	for range 3 { // the least of three: the store's goroutines allocate meanwhile too
		allocs = min(allocs, testing.AllocsPerRun(500, func() { send() }))
	}
	t.Logf("%v allocations per send", allocs)
	if !raceEnabled && allocs > 11 { // the race detector's sync.Pool drops some calls
		t.Fatalf("%v allocations per DLedger send, want at most 11", allocs)
	}
}
