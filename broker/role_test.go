package broker

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
	"github.com/rmqd/rmqd/store"
)

// Role tests: a started broker (classic store) whose role, system log and
// name servers are fakes installed at the broker's seams, as
// setupReplication installs the real ones in DLedger mode.

// fakeRole is a replica whose role the test sets.
type fakeRole struct {
	mu    sync.Mutex
	r     replicaRole
	peers map[string]peerReplication
	log   *fakeSysLog
	idx   int
}

func (f *fakeRole) IsLeader() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.r.Leader }

func (f *fakeRole) ProposeSystem(_ context.Context, p []byte) (int64, error) {
	return f.log.propose(f.idx, p)
}

func (f *fakeRole) role() replicaRole { f.mu.Lock(); defer f.mu.Unlock(); return f.r }

func (f *fakeRole) status() replicaStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := replicaStatus{SelfID: f.r.SelfID, Role: "FOLLOWER", Term: f.r.Term, LeaderID: f.r.LeaderID,
		LedgerBeginIndex: 0, LedgerEndIndex: 12, CommittedIndex: 12}
	if f.r.Leader {
		s.Role = "LEADER"
		s.Peers = f.peers
	} else if f.r.LeaderID == "" {
		s.Role = "CANDIDATE"
	}
	return s
}

func (f *fakeRole) waitDispatched(context.Context) error { return nil }

func (f *fakeRole) set(r replicaRole) {
	f.mu.Lock()
	f.r = r
	f.mu.Unlock()
	if r.Leader {
		f.log.setLeader(f.idx)
	} else {
		f.log.setLeader(-1)
	}
}

// seqLog records what happened, in order, across goroutines.
type seqLog struct {
	mu    sync.Mutex
	items []string
}

func (l *seqLog) add(s string) { l.mu.Lock(); l.items = append(l.items, s); l.mu.Unlock() }

func (l *seqLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.items...)
}

func (l *seqLog) index(s string) int { return slices.Index(l.list(), s) }

type recordingExt struct{ l *seqLog }

func (e *recordingExt) Register(func(int16, remoting.Handler)) {}
func (e *recordingExt) Start()                                 { e.l.add("start") }
func (e *recordingExt) Stop()                                  { e.l.add("stop") }

type dledgerFixture struct {
	fwdMu     sync.Mutex
	forwarded map[offsetKey]int64

	b    *Broker
	fr   *fakeRole
	ns   *regFakeNamesrv
	seq  *seqLog
	sys  *fakeSysLog
	conn *fakeConn
}

func dledgerTestConfig() map[string]string {
	return map[string]string{
		"enableDLegerCommitLog": "true",
		"dLegerGroup":           "unit-broker",
		"dLegerPeers":           "n0-127.0.0.1:40911;n1-127.0.0.1:40912;n2-127.0.0.1:40913",
		"dLegerSelfId":          "n1",
	}
}

// startDLedgerFixture starts a broker as replica n1 (follower id 2) whose
// role is unknown, registering with two fake name servers.
func startDLedgerFixture(t *testing.T, offsetFlush ...time.Duration) *dledgerFixture {
	t.Helper()
	b := startTestBroker(t, dledgerTestConfig())
	f := &dledgerFixture{b: b, seq: &seqLog{}, sys: newFakeSysLog(), conn: &fakeConn{id: 77}}
	f.sys.leader = -1
	f.fr = &fakeRole{log: f.sys, r: replicaRole{SelfID: "n1"}, peers: map[string]peerReplication{
		"n0": {MatchIndex: 10, Lag: 2, LastContact: 30 * time.Millisecond}, "n2": {MatchIndex: 12, Lag: 0}}}
	f.ns = &regFakeNamesrv{reply: func(addr string, req *remoting.RemotingCommand) *remoting.RemotingCommand {
		if req.Code == protocol.RegisterBroker {
			term := req.ExtFields.Get("dLegerTerm")
			if term == "" {
				term = "0"
			}
			f.seq.add("register:" + req.ExtFields.Get("brokerId") + ":" + term + "@" + addr)
		}
		return &remoting.RemotingCommand{Code: protocol.Success}
	}}

	// What setupReplication does with the real store.
	b.stopMasterServices() // classic Start started them
	b.extensions = []Extension{&recordingExt{f.seq}}
	repl := newReplicatedMeta(b.meta, f.fr, nil, b.masterHint)
	if len(offsetFlush) > 0 {
		repl.interval = offsetFlush[0]
	}
	f.forwarded = map[offsetKey]int64{}
	repl.forward = func(m map[offsetKey]int64) {
		f.fwdMu.Lock()
		defer f.fwdMu.Unlock()
		for k, v := range m {
			f.forwarded[k] = v
		}
	}
	f.sys.handlers[0] = repl.onSystemRecord
	b.repl = repl
	b.roles = newRoleManager(b, f.fr, repl, nil)
	b.roles.markReady()
	b.meta.SetProposer(repl.propose)
	b.SetMasterFunc(b.roles.isMaster)
	b.SetTermFunc(func() int64 { return f.fr.role().Term })
	repl.start()

	if err := b.registrar.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg := b.config()
	reg, err := NewRegistrar(RegistrarConfig{
		NamesrvAddr: "ns1:9876;ns2:9876", ClusterName: cfg.BrokerClusterName, BrokerName: cfg.BrokerName,
		BrokerAddr: b.storeHost, Period: time.Hour, BrokerID: b.registeredBrokerID, Term: b.registeredTerm,
		Topics: b.topicTable, OnRound: b.onRegisterRound, RetryMin: 5 * time.Millisecond,
	}, f.ns)
	if err != nil {
		t.Fatal(err)
	}
	b.registrar = reg
	reg.Start()
	return f
}

func (f *dledgerFixture) waitSeq(t *testing.T, item string) int {
	t.Helper()
	waitFor(t, 5*time.Second, item, func() bool { return f.seq.index(item) >= 0 })
	return f.seq.index(item)
}

func (f *dledgerFixture) serve(code int16, ext remoting.Fields) *remoting.RemotingCommand {
	return f.b.handler().ServeRemoting(f.conn, remoting.NewRequest(code, ext, nil))
}

func (f *dledgerFixture) events(t *testing.T, ext remoting.Fields) protocol.RaftEventsBody {
	t.Helper()
	r := f.serve(protocol.GetRaftEvents, ext)
	var body protocol.RaftEventsBody
	if r.Code != protocol.Success || json.Unmarshal(r.Body, &body) != nil {
		t.Fatalf("GET_RAFT_EVENTS: %d %q %s", r.Code, r.Remark, r.Body)
	}
	return body
}

func stepNames(ev protocol.RaftRoleEvent) []string {
	var out []string
	for _, s := range ev.Steps {
		out = append(out, s.Name)
	}
	return out
}

func TestDLedgerRolesRegistrationAndHooks(t *testing.T) {
	f := startDLedgerFixture(t)
	b := f.b

	// Unknown role at boot: registered as the follower id (n1 -> 2), never 0;
	// writes refused.
	f.waitSeq(t, "register:2:0@ns1:9876")
	f.waitSeq(t, "register:2:0@ns2:9876")
	if r := b.processSend(f.conn, sendReq("TBW102", 0, "x", nil)); r.Code != protocol.ServiceNotAvailable || !strings.Contains(r.Remark, "not leader") {
		t.Fatalf("send before a role: %d %q", r.Code, r.Remark)
	}

	// Becoming leader: services start, then registration as 0 with the term.
	f.fr.set(replicaRole{Leader: true, Term: 3, LeaderID: "n1", SelfID: "n1"})
	b.roles.onRole(f.fr.role())
	reg := f.waitSeq(t, "register:0:3@ns1:9876")
	f.waitSeq(t, "register:0:3@ns2:9876")
	if st := f.seq.index("start"); st < 0 || st > reg {
		t.Fatalf("services started after registering as master: %v", f.seq.list())
	}
	if !b.IsMaster() || b.registeredBrokerID() != 0 {
		t.Fatalf("leader: IsMaster %v brokerId %d", b.IsMaster(), b.registeredBrokerID())
	}
	waitFor(t, 5*time.Second, "registration time in the event", func() bool {
		evs := f.events(t, remoting.Fields{}).Events
		return len(evs) == 1 && evs[0].RegisteredMillis > 0
	})
	ev := f.events(t, remoting.Fields{}).Events[0]
	if ev.Seq != 1 || ev.OldRole != protocol.RaftRoleUnknown || ev.NewRole != protocol.RaftRoleLeader || ev.Term != 3 ||
		ev.OldBrokerID != 2 || ev.NewBrokerID != 0 || ev.NewLeader != "n1" || ev.SelfID != "n1" || ev.Reason == "" {
		t.Fatalf("leader event %+v", ev)
	}
	if got := stepNames(ev); !slices.Equal(got, []string{"waitDispatched", "acceptWrites", "startMasterServices", "register"}) {
		t.Fatalf("leader steps %v", got)
	}

	// The leader writes: sends, admin changes (through the log), offsets.
	if r := b.processSend(f.conn, sendReq("RoleTopic", 0, "x", nil)); r.Code != protocol.Success {
		t.Fatalf("send on the leader: %d %q", r.Code, r.Remark)
	}
	records := f.sys.count()
	if r := f.serve(protocol.UpdateAndCreateTopic, remoting.FieldsOf("topic", "AdminT", "readQueueNums", "2", "writeQueueNums", "2", "perm", "6")); r.Code != protocol.Success {
		t.Fatalf("create topic on the leader: %d %q", r.Code, r.Remark)
	}
	if r := f.serve(protocol.UpdateAndCreateSubscriptionGroup, remoting.Fields{}); r.Code == protocol.ServiceNotAvailable {
		t.Fatalf("group admin refused on the leader: %q", r.Remark)
	}
	if f.sys.count() <= records || !b.meta.Topics.Contains("AdminT") {
		t.Fatal("admin topic change did not go through the log")
	}
	if _, ok := b.groupConfigOrCreate("og"); !ok {
		t.Fatal("group auto-create on the leader")
	}
	upd := remoting.FieldsOf("consumerGroup", "og", "topic", "AdminT", "queueId", "1", "commitOffset", "5")
	if r := f.serve(protocol.UpdateConsumerOffset, upd); r.Code != protocol.Success {
		t.Fatalf("offset commit on the leader: %d %q", r.Code, r.Remark)
	}
	if got := b.queryOffset("og", "AdminT", 1); got != 5 {
		t.Fatalf("leader reads offset %d at once", got)
	}
	waitFor(t, 5*time.Second, "offset replicated", func() bool { return b.meta.Offsets.Query("og", "AdminT", 1) == 5 })
	info := b.runtimeInfo()
	if info["dledgerRole"] != "LEADER" || info["dledgerTerm"] != "3" || info["dledgerLeaderId"] != "n1" || info["brokerActive"] != "true" ||
		info["dledgerPeerLag_n0"] != "2" || info["dledgerPeerWatermarks"] != "n0:10,n2:12" || info["dledgerBrokerId"] != "0" ||
		info["dledgerCommittedIndex"] != "12" || info["dledgerLedgerEndIndex"] != "12" || info["dledgerMasterServices"] != "true" {
		t.Fatalf("leader runtime info: %v", pick(info, "dledger", "brokerActive"))
	}

	// Stepping down: services stop first, then registration under id 2 and
	// the new term; writes refused naming the leader.
	f.fr.set(replicaRole{Leader: false, Term: 4, LeaderID: "n2", SelfID: "n1"})
	b.roles.onRole(f.fr.role())
	reg = f.waitSeq(t, "register:2:4@ns1:9876")
	f.waitSeq(t, "register:2:4@ns2:9876")
	if st := f.seq.index("stop"); st < 0 || st > reg {
		t.Fatalf("registered as a follower before stopping services: %v", f.seq.list())
	}
	evs := f.events(t, remoting.Fields{})
	if evs.Total != 2 || len(evs.Events) != 2 {
		t.Fatalf("events %+v", evs)
	}
	ev = evs.Events[1]
	if ev.OldRole != protocol.RaftRoleLeader || ev.NewRole != protocol.RaftRoleFollower || ev.OldTerm != 3 || ev.Term != 4 ||
		ev.OldLeader != "n1" || ev.NewLeader != "n2" || ev.OldBrokerID != 0 || ev.NewBrokerID != 2 || !strings.Contains(ev.Reason, "n2") {
		t.Fatalf("step-down event %+v", ev)
	}
	if got := stepNames(ev); !slices.Equal(got, []string{"refuseWrites", "stopMasterServices", "dropOffsetBuffer", "register"}) {
		t.Fatalf("step-down steps %v", got)
	}
	for _, r := range []*remoting.RemotingCommand{
		b.processSend(f.conn, sendReq("RoleTopic", 0, "x", nil)),
		f.serve(protocol.UpdateConsumerOffset, upd),
		f.serve(protocol.UpdateAndCreateTopic, remoting.FieldsOf("topic", "AdminT2")),
		f.serve(protocol.DeleteTopicInBroker, remoting.FieldsOf("topic", "AdminT")),
		f.serve(protocol.DeleteSubscriptionGroup, remoting.FieldsOf("groupName", "og")),
	} {
		if r.Code != protocol.ServiceNotAvailable || !strings.Contains(r.Remark, "leader is n2") {
			t.Fatalf("write on a follower: %d %q", r.Code, r.Remark)
		}
	}
	if b.meta.Topics.Contains("AdminT2") || !b.meta.Topics.Contains("AdminT") {
		t.Fatal("a follower changed metadata")
	}
	// Followers still answer the sync codes and offset queries.
	for _, code := range []int16{protocol.GetAllTopicConfig, protocol.GetAllConsumerOffset, protocol.GetAllDelayOffset, protocol.GetAllSubscriptionGroupConfig} {
		if r := f.serve(code, remoting.Fields{}); r.Code != protocol.Success || len(r.Body) == 0 {
			t.Fatalf("code %d on a follower: %d %q", code, r.Code, r.Remark)
		}
	}
	if r := f.serve(protocol.QueryConsumerOffset, remoting.FieldsOf("consumerGroup", "og", "topic", "AdminT", "queueId", "1")); r.Code != protocol.Success || r.ExtFields.Get("offset") != "5" {
		t.Fatalf("offset query on a follower: %d %v", r.Code, r.ExtFields)
	}
	// A pull's commit flag is not applied on a follower: it is forwarded
	// to the master.
	pull := pullReq("og", "AdminT", 1, 0, protocol.PullFlagCommitOffset|protocol.PullFlagSubscription, "*", 0)
	pull.ExtFields.Set("commitOffset", "9")
	if r := b.processPull(f.conn, pull, true); r == nil || r.Code == protocol.SubscriptionNotExist {
		t.Fatalf("pull on a follower: %+v", r)
	}
	waitFor(t, 5*time.Second, "pull commit forwarded", func() bool {
		f.fwdMu.Lock()
		defer f.fwdMu.Unlock()
		return f.forwarded[offsetKey{"og", "AdminT", 1}] == 9
	})
	if got := b.queryOffset("og", "AdminT", 1); got != 5 {
		t.Fatalf("a follower took a pull's offset commit: %d", got)
	}
	info = b.runtimeInfo()
	if info["dledgerRole"] != "FOLLOWER" || info["dledgerTerm"] != "4" || info["dledgerLeaderId"] != "n2" || info["brokerActive"] != "false" ||
		info["dledgerRoleChanges"] != "2" || info["dledgerBrokerId"] != "2" || info["dledgerMasterServices"] != "false" {
		t.Fatalf("follower runtime info: %v", pick(info, "dledger", "brokerActive"))
	}

	// The same role again is no event; a new leader seen by a follower is.
	b.roles.onRole(f.fr.role())
	f.fr.set(replicaRole{Leader: false, Term: 5, LeaderID: "n0", SelfID: "n1"})
	b.roles.onRole(f.fr.role())
	evs = f.events(t, remoting.FieldsOf("sinceSeq", "2"))
	if evs.Total != 3 || len(evs.Events) != 1 || evs.Events[0].Seq != 3 || evs.Events[0].NewLeader != "n0" || evs.Events[0].OldRole != protocol.RaftRoleFollower {
		t.Fatalf("events since 2: %+v", evs)
	}
	if evs := f.events(t, remoting.FieldsOf("limit", "1")); len(evs.Events) != 1 || evs.Events[0].Seq != 3 {
		t.Fatalf("limit 1: %+v", evs)
	}
	if n := strings.Count(strings.Join(f.seq.list(), ","), "stop"); n != 1 {
		t.Fatalf("services stopped %d times", n)
	}

	r := f.serve(protocol.GetRaftStatus, remoting.Fields{})
	var st protocol.RaftStatusBody
	if r.Code != protocol.Success || json.Unmarshal(r.Body, &st) != nil {
		t.Fatalf("GET_RAFT_STATUS: %d %s", r.Code, r.Body)
	}
	if st.Role != "FOLLOWER" || st.Term != 5 || st.LeaderID != "n0" || st.BrokerID != 2 || st.SelfID != "n1" || st.LastEvent == nil || st.LastEvent.Seq != 3 {
		t.Fatalf("status %+v", st)
	}
}

func pick(m map[string]string, prefixes ...string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		for _, p := range prefixes {
			if strings.HasPrefix(k, p) {
				out[k] = v
			}
		}
	}
	return out
}

func TestDLedgerStepDownDropsOffsetBuffer(t *testing.T) {
	f := startDLedgerFixture(t, time.Hour) // no periodic flush
	b := f.b
	f.fr.set(replicaRole{Leader: true, Term: 1, LeaderID: "n1", SelfID: "n1"})
	b.roles.onRole(f.fr.role())
	b.repl.commitOffset("g", "T", 0, 4)
	if err := b.repl.flushOffsets(context.Background()); err != nil {
		t.Fatal(err)
	}
	b.repl.commitOffset("g", "T", 0, 6)
	b.repl.commitOffset("g", "T", 1, 2)
	f.fr.set(replicaRole{Leader: false, Term: 2, LeaderID: "n0", SelfID: "n1"})
	b.roles.onRole(f.fr.role())
	evs := b.RaftEvents()
	if len(evs) != 2 || evs[1].DroppedOffsets != 2 {
		t.Fatalf("events %+v", evs)
	}
	if b.repl.pendingOffsets() != 0 || b.queryOffset("g", "T", 0) != 4 || b.queryOffset("g", "T", 1) != -1 {
		t.Fatalf("a follower serves offsets it could not replicate: pending %d, offsets %d %d",
			b.repl.pendingOffsets(), b.queryOffset("g", "T", 0), b.queryOffset("g", "T", 1))
	}
}

func TestClassicBrokerRaftCodes(t *testing.T) {
	b := startTestBroker(t, nil)
	c := &fakeConn{id: 5}
	r := b.handler().ServeRemoting(c, remoting.NewRequest(protocol.GetRaftStatus, remoting.Fields{}, nil))
	var st protocol.RaftStatusBody
	if r.Code != protocol.Success || json.Unmarshal(r.Body, &st) != nil || st.Role != protocol.RaftRoleClassic || st.BrokerID != 0 {
		t.Fatalf("classic GET_RAFT_STATUS: %d %s", r.Code, r.Body)
	}
	r = b.handler().ServeRemoting(c, remoting.NewRequest(protocol.GetRaftEvents, remoting.Fields{}, nil))
	var evs protocol.RaftEventsBody
	if r.Code != protocol.Success || json.Unmarshal(r.Body, &evs) != nil || len(evs.Events) != 0 || evs.Capacity != roleEventCapacity {
		t.Fatalf("classic GET_RAFT_EVENTS: %d %s", r.Code, r.Body)
	}
	if _, ok := b.runtimeInfo()["dledgerRole"]; ok {
		t.Fatal("classic broker reports dledger keys")
	}
	// Nobody sends to the system-record topic (it would inject metadata ops).
	if r := b.processSend(c, sendReq(store.SystemTopic, 0, "x", nil)); r.Code != protocol.NoPermission {
		t.Fatalf("send to %s: %d %q", store.SystemTopic, r.Code, r.Remark)
	}
	// Admin changes are not guarded in classic mode.
	if r := b.handler().ServeRemoting(c, remoting.NewRequest(protocol.UpdateAndCreateTopic, remoting.FieldsOf("topic", "CT"), nil)); r.Code != protocol.Success {
		t.Fatalf("classic create topic: %d %q", r.Code, r.Remark)
	}
}

func TestRoleEventRing(t *testing.T) {
	r := newRoleEventRing(3)
	for i := 0; i < 5; i++ {
		r.add(protocol.RaftRoleEvent{Term: int64(i), Steps: []protocol.RaftStep{{Name: "s" + strconv.Itoa(i)}}})
	}
	l := r.list(0, 0)
	if l.Total != 5 || l.Capacity != 3 || len(l.Events) != 3 || l.Events[0].Seq != 3 || l.Events[2].Seq != 5 || l.Events[0].Term != 2 {
		t.Fatalf("ring %+v", l)
	}
	if !r.update(4, func(ev *protocol.RaftRoleEvent) { ev.RegisteredMillis = 7 }) || r.update(2, func(*protocol.RaftRoleEvent) {}) || r.update(6, func(*protocol.RaftRoleEvent) {}) {
		t.Fatal("update of present / evicted / future events")
	}
	if l := r.list(3, 0); len(l.Events) != 2 || l.Events[0].RegisteredMillis != 7 {
		t.Fatalf("since 3: %+v", l)
	}
	if ev, ok := r.last(); !ok || ev.Seq != 5 || ev.Steps[0].Name != "s4" {
		t.Fatalf("last %+v", ev)
	}
	l.Events[0].Steps[0].Name = "changed"
	if r.list(0, 0).Events[0].Steps[0].Name != "s2" {
		t.Fatal("list shares step slices")
	}
}

func TestRegistrarRetriesForcedRoundUntilAccepted(t *testing.T) {
	var mu sync.Mutex
	failures := 3
	ns := &regFakeNamesrv{reply: func(addr string, req *remoting.RemotingCommand) *remoting.RemotingCommand {
		mu.Lock()
		defer mu.Unlock()
		if addr == "ns2:9876" && failures > 0 {
			failures--
			return &remoting.RemotingCommand{Code: protocol.SystemError, Remark: "busy"}
		}
		return &remoting.RemotingCommand{Code: protocol.Success}
	}}
	cfg := regTestConfig()
	cfg.RetryMin = 2 * time.Millisecond
	cfg.RetryMax = 10 * time.Millisecond
	var rounds []bool
	cfg.OnRound = func(_, _ int64, ok bool) { mu.Lock(); rounds = append(rounds, ok); mu.Unlock() }
	r, _ := NewRegistrar(cfg, ns)
	r.Start()
	defer r.Close(context.Background())
	regWait(t, "retries until accepted", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(rounds) > 0 && rounds[len(rounds)-1]
	})
	mu.Lock()
	got := append([]bool(nil), rounds...)
	mu.Unlock()
	if !slices.Equal(got, []bool{false, false, false, true}) {
		t.Fatalf("rounds %v", got)
	}
	time.Sleep(30 * time.Millisecond)
	// The retries go only to the name server that failed.
	calls := ns.byCode(protocol.RegisterBroker)
	perAddr := map[string]int{}
	for _, c := range calls {
		perAddr[c.addr]++
	}
	if len(calls) != 5 || perAddr["ns1:9876"] != 1 || perAddr["ns2:9876"] != 4 {
		t.Fatalf("registrations after success: %v, want ns1 once and ns2 4 times", perAddr)
	}
}

type fakeTransferLog struct {
	store.ReplicatedLog // nil: only the capability is used
	mu                  sync.Mutex
	targets             []string
	err                 error
}

func (l *fakeTransferLog) TransferLeadership(_ context.Context, target string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.targets = append(l.targets, target)
	return l.err
}

func TestRaftTransferLeadership(t *testing.T) {
	f := startDLedgerFixture(t)
	req := remoting.FieldsOf("target", "n2")
	if r := f.serve(protocol.RaftTransferLeadership, req); r.Code != protocol.RequestCodeNotSupported {
		t.Fatalf("transfer without the capability: %d %q", r.Code, r.Remark)
	}
	tl := &fakeTransferLog{}
	f.b.opts.ReplicatedLog = tl
	f.fr.set(replicaRole{Leader: false, Term: 2, LeaderID: "n0", SelfID: "n1"})
	f.b.roles.onRole(f.fr.role())
	if r := f.serve(protocol.RaftTransferLeadership, req); r.Code != protocol.ServiceNotAvailable || !strings.Contains(r.Remark, "n0") {
		t.Fatalf("transfer on a follower: %d %q", r.Code, r.Remark)
	}
	f.fr.set(replicaRole{Leader: true, Term: 3, LeaderID: "n1", SelfID: "n1"})
	f.b.roles.onRole(f.fr.role())
	if _, ok := f.b.groupConfigOrCreate("tg"); !ok {
		t.Fatal("group")
	}
	f.b.repl.commitOffset("tg", "TBW102", 0, 3)
	if r := f.serve(protocol.RaftTransferLeadership, req); r.Code != protocol.Success || !strings.Contains(r.Remark, "n2") {
		t.Fatalf("transfer: %d %q", r.Code, r.Remark)
	}
	if got := f.b.meta.Offsets.Query("tg", "TBW102", 0); got != 3 {
		t.Fatalf("offsets not replicated before the transfer: %d", got)
	}
	tl.mu.Lock()
	tl.err = errors.New("timed out")
	tl.mu.Unlock()
	if r := f.serve(protocol.RaftTransferLeadership, req); r.Code != protocol.SystemError || !strings.Contains(r.Remark, "timed out") {
		t.Fatalf("failed transfer: %d %q", r.Code, r.Remark)
	}
	if r := f.serve(protocol.RaftTransferLeadership, remoting.Fields{}); r.Code == protocol.Success {
		t.Fatal("transfer without a target")
	}
	if got := tl.targets; len(got) != 2 || got[0] != "n2" {
		t.Fatalf("targets %v", got)
	}
}

func TestRegistrarRetriesUntilMasterKnown(t *testing.T) {
	var mu sync.Mutex
	answers := 0
	ns := &regFakeNamesrv{reply: func(addr string, req *remoting.RemotingCommand) *remoting.RemotingCommand {
		mu.Lock()
		defer mu.Unlock()
		resp := &remoting.RemotingCommand{Code: protocol.Success}
		if req.Code == protocol.RegisterBroker {
			answers++
			if answers > 2 { // the new master registered meanwhile
				resp.ExtFields = protocol.EncodeHeader(&protocol.RegisterBrokerResponseHeader{MasterAddr: "10.0.0.9:10911"})
			}
		}
		return resp
	}}
	cfg := regTestConfig()
	cfg.NamesrvAddr = "ns1:9876"
	cfg.BrokerID = func() int64 { return 2 }
	cfg.RetryMin = 2 * time.Millisecond
	cfg.RetryUntilMasterKnown = true
	r, _ := NewRegistrar(cfg, ns)
	r.Start()
	defer r.Close(context.Background())
	regWait(t, "master address learned", func() bool { addr, _ := r.MasterAddr(); return addr == "10.0.0.9:10911" })
	time.Sleep(40 * time.Millisecond)
	if n := len(ns.byCode(protocol.RegisterBroker)); n != 3 {
		t.Fatalf("%d registrations, want 3", n)
	}
}

type fakeOneway struct {
	regFakeNamesrv
	mu   sync.Mutex
	sent []regCall
}

func (f *fakeOneway) Close() error { return nil }

func (f *fakeOneway) InvokeOneway(_ context.Context, addr string, req *remoting.RemotingCommand) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, regCall{addr, req})
	return nil
}

func TestForwardOffsetsToMaster(t *testing.T) {
	ns := &regFakeNamesrv{reply: func(string, *remoting.RemotingCommand) *remoting.RemotingCommand {
		return &remoting.RemotingCommand{Code: protocol.Success,
			ExtFields: protocol.EncodeHeader(&protocol.RegisterBrokerResponseHeader{MasterAddr: "10.0.0.9:10911"})}
	}}
	cfg := regTestConfig()
	cfg.BrokerID = func() int64 { return 2 }
	reg, _ := NewRegistrar(cfg, ns)
	reg.RegisterAll(context.Background())
	ow := &fakeOneway{}
	b := &Broker{log: zap.NewNop(), registrar: reg, invoker: ow}
	b.forwardOffsets(map[offsetKey]int64{{"g", "T", 3}: 42})
	if len(ow.sent) != 1 || ow.sent[0].addr != "10.0.0.9:10911" || ow.sent[0].req.Code != protocol.UpdateConsumerOffset ||
		ow.sent[0].req.ExtFields.Get("commitOffset") != "42" || ow.sent[0].req.ExtFields.Get("queueId") != "3" || ow.sent[0].req.ExtFields.Get("consumerGroup") != "g" {
		t.Fatalf("forwarded %+v", ow.sent)
	}
}

// A replica that won an election is not writable until it caught up; that
// intermediate state must not be recorded as "follower of itself", so the
// leader event names the leader it replaced.
func TestDLedgerElectedNotWritableKeepsOldLeader(t *testing.T) {
	f := startDLedgerFixture(t)
	b := f.b
	f.fr.set(replicaRole{Leader: false, Term: 1, LeaderID: "n0", SelfID: "n1"})
	b.roles.onRole(f.fr.role())
	f.fr.set(replicaRole{Leader: false, Term: 2, LeaderID: "n1", SelfID: "n1"}) // elected, catching up
	b.roles.onRole(f.fr.role())
	if b.IsMaster() {
		t.Fatal("writable before the store said so")
	}
	f.fr.set(replicaRole{Leader: true, Term: 2, LeaderID: "n1", SelfID: "n1"})
	b.roles.onRole(f.fr.role())
	evs := b.RaftEvents()
	if len(evs) != 2 {
		t.Fatalf("want 2 events (follower of n0, leader), got %+v", evs)
	}
	if ev := evs[1]; ev.OldRole != protocol.RaftRoleFollower || ev.OldLeader != "n0" || ev.NewRole != protocol.RaftRoleLeader || ev.NewLeader != "n1" {
		t.Fatalf("leader event %+v", ev)
	}
	if !b.IsMaster() {
		t.Fatal("not master after the store made it the writable leader")
	}
}
