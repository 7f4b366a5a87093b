package broker

import (
	"context"
	"errors"
	"hash/crc32"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
)

type regCall struct {
	addr string
	req  *remoting.RemotingCommand
}

// regFakeNamesrv records requests and answers them; fail makes an address
// refuse (code 1) or error.
type regFakeNamesrv struct {
	mu    sync.Mutex
	calls []regCall
	fail  map[string]error
	reply func(addr string, req *remoting.RemotingCommand) *remoting.RemotingCommand
	n     atomic.Int64
}

func (f *regFakeNamesrv) InvokeSync(ctx context.Context, addr string, req *remoting.RemotingCommand, timeout time.Duration) (*remoting.RemotingCommand, error) {
	f.mu.Lock()
	f.calls = append(f.calls, regCall{addr, req})
	err := f.fail[addr]
	reply := f.reply
	f.mu.Unlock()
	f.n.Add(1)
	if timeout <= 0 {
		return nil, errors.New("no timeout")
	}
	if err != nil {
		return nil, err
	}
	if reply != nil {
		return reply(addr, req), nil
	}
	return &remoting.RemotingCommand{Code: protocol.Success}, nil
}

func (f *regFakeNamesrv) byCode(code int16) []regCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []regCall
	for _, c := range f.calls {
		if c.req.Code == code {
			out = append(out, c)
		}
	}
	return out
}

func regTestConfig() RegistrarConfig {
	return RegistrarConfig{
		NamesrvAddr:  " ns1:9876 ; ns2:9876;",
		ClusterName:  "DefaultCluster",
		BrokerName:   "broker-a",
		BrokerAddr:   "127.0.0.1:10911",
		HAServerAddr: "127.0.0.1:10912",
		Period:       time.Hour,
		Topics: func() protocol.TopicConfigSerializeWrapper {
			return protocol.TopicConfigSerializeWrapper{
				DataVersion:      protocol.DataVersion{Counter: 7, Timestamp: 1},
				TopicConfigTable: map[string]*protocol.TopicConfig{"TBW102": {TopicName: "TBW102", Perm: 7, ReadQueueNums: 8, WriteQueueNums: 8, TopicFilterType: protocol.SingleTag}},
			}
		},
	}
}

func TestRegistrarRegistersEverywhere(t *testing.T) {
	ns := &regFakeNamesrv{}
	cfg := regTestConfig()
	var term atomic.Int64
	term.Store(3)
	cfg.Term = term.Load
	cfg.HeartbeatTimeout = 10 * time.Second
	r, err := NewRegistrar(cfg, ns)
	if err != nil {
		t.Fatal(err)
	}
	out := r.RegisterAll(context.Background())
	if len(out) != 2 || out[0].NamesrvAddr != "ns1:9876" || out[1].NamesrvAddr != "ns2:9876" || out[0].Err != nil || out[1].Err != nil {
		t.Fatalf("outcomes %+v", out)
	}
	calls := ns.byCode(protocol.RegisterBroker)
	if len(calls) != 2 {
		t.Fatalf("%d register calls", len(calls))
	}
	for _, c := range calls {
		var h protocol.RegisterBrokerRequestHeader
		if err := protocol.DecodeHeader(&c.req.ExtFields, &h); err != nil {
			t.Fatal(err)
		}
		if h.BrokerID != 0 || h.DLegerTerm != 3 || h.BrokerName != "broker-a" || h.HAServerAddr != "127.0.0.1:10912" || h.Compressed ||
			h.HeartbeatTimeoutMillis == nil || *h.HeartbeatTimeoutMillis != 10000 || h.EnableActingMaster == nil {
			t.Errorf("header %+v", h)
		}
		if want := int32(crc32.ChecksumIEEE(c.req.Body) & 0x7FFFFFFF); h.BodyCrc32 != want {
			t.Errorf("bodyCrc32 %d, want %d", h.BodyCrc32, want)
		}
		if c.req.Version < protocol.VersionV3_0_11 {
			t.Errorf("version %d", c.req.Version)
		}
		body, err := protocol.DecodeRegisterBrokerBody(c.req.Body, false)
		if err != nil {
			t.Fatal(err)
		}
		if body.TopicConfigSerializeWrapper.DataVersion.Counter != 7 || body.TopicConfigSerializeWrapper.TopicConfigTable["TBW102"].Perm != 7 {
			t.Errorf("body %+v", body)
		}
	}
	// classic mode: no term key at all
	cfg.Term = nil
	r2, _ := NewRegistrar(cfg, ns)
	r2.RegisterAll(context.Background())
	calls = ns.byCode(protocol.RegisterBroker)
	if _, ok := calls[len(calls)-1].req.ExtFields.Lookup("dLegerTerm"); ok {
		t.Error("classic registration carries dLegerTerm")
	}
}

func TestRegistrarSlaveLearnsMaster(t *testing.T) {
	ns := &regFakeNamesrv{reply: func(addr string, req *remoting.RemotingCommand) *remoting.RemotingCommand {
		return &remoting.RemotingCommand{Code: protocol.Success, ExtFields: remoting.FieldsOf("masterAddr", "10.0.0.9:10911", "haServerAddr", "10.0.0.9:10912")}
	}}
	cfg := regTestConfig()
	var id atomic.Int64
	id.Store(2)
	cfg.BrokerID = id.Load
	r, _ := NewRegistrar(cfg, ns)
	r.RegisterAll(context.Background())
	if m, ha := r.MasterAddr(); m != "10.0.0.9:10911" || ha != "10.0.0.9:10912" {
		t.Fatalf("master %q %q", m, ha)
	}
	if ns.byCode(protocol.RegisterBroker)[0].req.ExtFields.Get("brokerId") != "2" {
		t.Fatal("brokerId func not used")
	}
	id.Store(0) // promoted
	r.RegisterAll(context.Background())
	if m, _ := r.MasterAddr(); m != "" {
		t.Fatalf("master addr kept after promotion: %q", m)
	}
}

func TestRegistrarFailures(t *testing.T) {
	ns := &regFakeNamesrv{fail: map[string]error{"ns1:9876": errors.New("connection refused")}}
	ns.reply = func(addr string, req *remoting.RemotingCommand) *remoting.RemotingCommand {
		return &remoting.RemotingCommand{Code: protocol.SystemError, Remark: "register broker failed: stale dLegerTerm"}
	}
	r, _ := NewRegistrar(regTestConfig(), ns)
	out := r.RegisterAll(context.Background())
	if out[0].Err == nil || out[1].Err == nil || !errors.Is(out[1].Err, ErrRegisterRefused) {
		t.Fatalf("outcomes %+v", out)
	}
	if _, err := NewRegistrar(RegistrarConfig{}, ns); !errors.Is(err, ErrRegistrarConfig) {
		t.Fatalf("empty config: %v", err)
	}
	r.SetNamesrvAddr("")
	if out := r.RegisterAll(context.Background()); out != nil {
		t.Fatalf("no name servers: %+v", out)
	}
}

func TestRegistrarLoopTriggerAndClose(t *testing.T) {
	ns := &regFakeNamesrv{}
	cfg := regTestConfig()
	cfg.Period = 20 * time.Millisecond
	r, _ := NewRegistrar(cfg, ns)
	r.Start()
	r.Start() // idempotent
	regWait(t, "periodic registrations", func() bool { return len(ns.byCode(protocol.RegisterBroker)) >= 6 })
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	after := len(ns.byCode(protocol.RegisterBroker))
	unreg := ns.byCode(protocol.UnregisterBroker)
	if len(unreg) != 2 || unreg[0].req.ExtFields.Get("brokerAddr") != "127.0.0.1:10911" || unreg[0].req.ExtFields.Get("brokerId") != "0" {
		t.Fatalf("unregister calls %+v", unreg)
	}
	time.Sleep(60 * time.Millisecond)
	if n := len(ns.byCode(protocol.RegisterBroker)); n != after {
		t.Fatalf("registered after Close: %d -> %d", after, n)
	}
	if err := r.Close(context.Background()); err != nil || len(ns.byCode(protocol.UnregisterBroker)) != 2 {
		t.Fatal("second Close did something")
	}

	// Trigger with a long period
	ns2 := &regFakeNamesrv{}
	cfg.Period = time.Hour
	cfg.NamesrvAddr = "ns1:9876"
	r2, _ := NewRegistrar(cfg, ns2)
	r2.Start()
	regWait(t, "initial registration", func() bool { return len(ns2.byCode(protocol.RegisterBroker)) == 1 })
	for i := 0; i < 3; i++ {
		r2.Trigger()
		regWait(t, "triggered registration "+strconv.Itoa(i), func() bool { return len(ns2.byCode(protocol.RegisterBroker)) >= 2+i })
	}
	ns2.mu.Lock()
	ns2.fail = map[string]error{"ns1:9876": errors.New("down")}
	ns2.mu.Unlock()
	if err := r2.Close(context.Background()); err == nil {
		t.Fatal("unregister error not reported")
	}

	// Close without Start still unregisters
	ns3 := &regFakeNamesrv{}
	r3, _ := NewRegistrar(cfg, ns3)
	r3.Close(context.Background())
	if len(ns3.byCode(protocol.UnregisterBroker)) != 1 {
		t.Fatal("Close without Start did not unregister")
	}
}

func regWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestRegistrarSkipUnchanged(t *testing.T) {
	ns := &regFakeNamesrv{reply: func(addr string, req *remoting.RemotingCommand) *remoting.RemotingCommand {
		if req.Code == protocol.QueryDataVersion {
			var h protocol.QueryDataVersionRequestHeader
			if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil || len(req.Body) == 0 {
				return &remoting.RemotingCommand{Code: protocol.SystemError}
			}
			return &remoting.RemotingCommand{Code: protocol.Success, ExtFields: remoting.FieldsOf("changed", strconv.FormatBool(addr == "ns2:9876"))}
		}
		return &remoting.RemotingCommand{Code: protocol.Success}
	}}
	cfg := regTestConfig()
	cfg.Period = 10 * time.Millisecond
	cfg.SkipUnchanged = true
	r, _ := NewRegistrar(cfg, ns)
	r.Start()
	defer r.Close(context.Background())
	count := func(addr string) int {
		n := 0
		for _, c := range ns.byCode(protocol.RegisterBroker) {
			if c.addr == addr {
				n++
			}
		}
		return n
	}
	regWait(t, "periodic registrations to the changed name server", func() bool { return count("ns2:9876") >= 4 })
	if n := count("ns1:9876"); n != 1 {
		t.Fatalf("up-to-date name server got %d registrations, want only the initial one", n)
	}
	if len(ns.byCode(protocol.QueryDataVersion)) == 0 {
		t.Fatal("no QUERY_DATA_VERSION sent")
	}
	var skipped bool
	for _, o := range r.LastOutcomes() {
		if o.NamesrvAddr == "ns1:9876" && o.Skipped {
			skipped = true
		}
	}
	if !skipped {
		t.Fatalf("outcomes %+v", r.LastOutcomes())
	}
	r.Trigger()
	regWait(t, "triggered registration is forced", func() bool { return count("ns1:9876") >= 2 })
}
