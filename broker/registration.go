package broker

// Name-server registration (protocol.md §4.4): the broker announces itself
// and its topic table to every name server, periodically and on demand, and
// says goodbye at shutdown. Self-contained: it needs a NamesrvInvoker (the
// remoting client) and a RegistrarConfig of plain values and funcs.

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
)

// NamesrvInvoker sends one request and waits for its response; the
// remoting client satisfies it.
type NamesrvInvoker interface {
	InvokeSync(ctx context.Context, addr string, req *remoting.RemotingCommand, timeout time.Duration) (*remoting.RemotingCommand, error)
}

// RegistrarConfig configures a Registrar.
type RegistrarConfig struct {
	// NamesrvAddr lists the name servers, ';'-separated ("h1:9876;h2:9876").
	NamesrvAddr string
	// Identity, as sent in REGISTER_BROKER.
	ClusterName  string
	BrokerName   string
	BrokerAddr   string // brokerIP1:listenPort
	HAServerAddr string // brokerIP2:listenPort+1
	ZoneName     string
	// EnableActingMaster is sent as ext enableActingMaster (5.x).
	EnableActingMaster bool
	// HeartbeatTimeout, when > 0, is sent as heartbeatTimeoutMillis: the
	// name server drops this broker after that long without registration
	// instead of its default 120 s.
	HeartbeatTimeout time.Duration

	// Period is the time between registrations (registerNameServerPeriod,
	// default 30 s). Trigger registers in between.
	Period time.Duration
	// SkipUnchanged is Java's forceRegister=false: a periodic round first
	// asks each name server QUERY_DATA_VERSION and sends the full
	// REGISTER_BROKER only to those whose copy of the data version differs
	// (the query itself refreshes the broker's liveness there). Rounds
	// started by Trigger always register.
	SkipUnchanged bool
	// Timeout bounds each REGISTER_BROKER (registerBrokerTimeoutMills,
	// default 24 s) and UNREGISTER_BROKER (capped at 3 s).
	Timeout time.Duration

	// BrokerID returns the id to register with: 0 as master (DLedger
	// leader), >= 1 as slave. nil = always 0.
	BrokerID func() int64
	// Term returns the DLedger term to register with (ext dLegerTerm), 0 in
	// classic mode. nil = 0.
	Term func() int64
	// Topics returns the topic table and its data version. Required. It is
	// called once per registration round.
	Topics func() protocol.TopicConfigSerializeWrapper

	// RetryMin and RetryMax bound the backoff (doubling) of a round started
	// by Start or Trigger that some name server did not accept: it is
	// repeated until every name server accepted it (or a newer trigger or
	// Close). Defaults 100 ms and 3 s; the periodic rounds do not retry.
	RetryMin, RetryMax time.Duration
	// RetryUntilMasterKnown also repeats (up to 5 times, same backoff) an
	// accepted slave registration whose answers named no master: after a
	// failover a follower may register before the new master does, and it
	// learns the master's address (for its "not master" remarks) only from
	// a registration answer. DLedger mode sets it.
	RetryUntilMasterKnown bool
	// OnRound, when set, is called after every round that sent
	// REGISTER_BROKER, with the broker id and term it registered and
	// whether every name server accepted it (the role-change events record
	// when that happened).
	OnRound func(brokerID, term int64, ok bool)

	// Logger; nil = no logging.
	Logger *zap.Logger
}

// RegisterOutcome is the result of one REGISTER_BROKER to one name server.
type RegisterOutcome struct {
	NamesrvAddr string
	Time        time.Time
	Err         error
	// Skipped is true when SkipUnchanged found the name server up to date
	// and no REGISTER_BROKER was sent.
	Skipped bool
	// MasterAddr and HAServerAddr are the master's, as the name server
	// knows it (set for slave registrations).
	MasterAddr   string
	HAServerAddr string
}

// Registrar runs the registration loop. Create it with NewRegistrar, call
// Start, Trigger after topic changes or role changes, and Close at
// shutdown (which unregisters).
type Registrar struct {
	cfg RegistrarConfig
	inv NamesrvInvoker
	log *zap.Logger

	triggerc chan struct{}
	stopc    chan struct{}
	donec    chan struct{}

	startOnce sync.Once
	closeOnce sync.Once

	mu struct {
		sync.Mutex
		namesrvAddrs []string
		masterAddr   string
		haServerAddr string
		okByNamesrv  map[string]bool // last outcome per name server, for logging transitions
		last         map[string]RegisterOutcome
	}
}

// Errors of NewRegistrar and registration.
var (
	ErrRegistrarConfig = errors.New("broker: invalid registrar config")
	ErrRegisterRefused = errors.New("broker: name server refused registration")
)

// NewRegistrar checks cfg and applies defaults.
func NewRegistrar(cfg RegistrarConfig, inv NamesrvInvoker) (*Registrar, error) {
	if inv == nil {
		return nil, fmt.Errorf("%w: nil invoker", ErrRegistrarConfig)
	}
	if cfg.Topics == nil {
		return nil, fmt.Errorf("%w: Topics func is required", ErrRegistrarConfig)
	}
	if cfg.BrokerName == "" || cfg.BrokerAddr == "" || cfg.ClusterName == "" {
		return nil, fmt.Errorf("%w: ClusterName, BrokerName and BrokerAddr are required", ErrRegistrarConfig)
	}
	if cfg.Period <= 0 {
		cfg.Period = 30 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 24 * time.Second
	}
	if cfg.BrokerID == nil {
		cfg.BrokerID = func() int64 { return protocol.MasterID }
	}
	if cfg.Term == nil {
		cfg.Term = func() int64 { return 0 }
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = 100 * time.Millisecond
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(3*time.Second, cfg.RetryMin)
	}
	r := &Registrar{
		cfg:      cfg,
		inv:      inv,
		log:      cfg.Logger,
		triggerc: make(chan struct{}, 1),
		stopc:    make(chan struct{}),
		donec:    make(chan struct{}),
	}
	r.mu.namesrvAddrs = SplitNamesrvAddr(cfg.NamesrvAddr)
	r.mu.okByNamesrv = map[string]bool{}
	r.mu.last = map[string]RegisterOutcome{}
	return r, nil
}

// SplitNamesrvAddr splits a ';'-separated name-server list, dropping blanks.
func SplitNamesrvAddr(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ";") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// SetNamesrvAddr replaces the name-server list (for updateBrokerConfig
// namesrvAddr); the next round uses it.
func (r *Registrar) SetNamesrvAddr(s string) {
	r.mu.Lock()
	r.mu.namesrvAddrs = SplitNamesrvAddr(s)
	r.mu.Unlock()
}

// NamesrvAddrs returns the current name-server list.
func (r *Registrar) NamesrvAddrs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.mu.namesrvAddrs...)
}

// MasterAddr returns the master address and HA address from the latest
// successful slave registration ("" when unknown or when registering as
// master).
func (r *Registrar) MasterAddr() (masterAddr, haServerAddr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.masterAddr, r.mu.haServerAddr
}

// Start registers at once and then every Period and on every Trigger, in
// its own goroutine, until Close.
func (r *Registrar) Start() {
	r.startOnce.Do(func() { go r.loop() })
}

// Trigger asks for a registration round as soon as possible (after a topic
// change or a role change). It never blocks; triggers while a round is
// pending coalesce.
func (r *Registrar) Trigger() {
	select {
	case r.triggerc <- struct{}{}:
	default:
	}
}

func (r *Registrar) loop() {
	defer close(r.donec)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-r.stopc:
			cancel()
		case <-ctx.Done():
		}
	}()
	t := time.NewTicker(r.cfg.Period)
	defer t.Stop()
	force := true
	var backoff time.Duration
	var only []string // a retry goes only to the name servers that failed
	masterTries := 0
	for {
		outs := r.register(ctx, force, only)
		only = nil
		var retry *time.Timer
		var retryc <-chan time.Time
		var failed []string
		for _, o := range outs {
			if o.Err != nil {
				failed = append(failed, o.NamesrvAddr)
			}
		}
		again := force && len(failed) > 0
		if force && !again && r.cfg.RetryUntilMasterKnown && len(outs) > 0 && masterTries < 5 && r.cfg.BrokerID() != protocol.MasterID {
			if addr, _ := r.MasterAddr(); addr == "" {
				again = true
				masterTries++
			}
		}
		if again {
			// A forced round (start, topic or role change) is repeated
			// until every name server has it.
			backoff = min(max(2*backoff, r.cfg.RetryMin), r.cfg.RetryMax)
			retry = time.NewTimer(backoff)
			retryc = retry.C
		} else {
			backoff = 0
		}
		select {
		case <-r.stopc:
			return
		case <-t.C:
			force = retry != nil // a pending retry stays forced
		case <-r.triggerc:
			force, backoff, masterTries = true, 0, 0
		case <-retryc:
			force, only = true, failed // nil (all) for a master-address retry
		}
		if retry != nil {
			retry.Stop()
		}
	}
}

// RegisterAll sends REGISTER_BROKER to every name server in parallel and
// waits for all of them, whatever SkipUnchanged says.
func (r *Registrar) RegisterAll(ctx context.Context) []RegisterOutcome {
	return r.register(ctx, true, nil)
}

// LastOutcomes returns the latest outcome per name server (for status pages).
func (r *Registrar) LastOutcomes() []RegisterOutcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]RegisterOutcome, 0, len(r.mu.last))
	for _, addr := range r.mu.namesrvAddrs {
		if o, ok := r.mu.last[addr]; ok {
			out = append(out, o)
		}
	}
	return out
}

// register runs one round to every name server, or to those of only when
// only is not nil.
func (r *Registrar) register(ctx context.Context, force bool, only []string) []RegisterOutcome {
	brokerID := r.cfg.BrokerID()
	term := r.cfg.Term()
	out := r.registerAs(ctx, force, brokerID, term, only)
	if r.cfg.OnRound != nil {
		sent, ok := false, true
		for _, o := range out {
			sent = sent || !o.Skipped
			ok = ok && o.Err == nil
		}
		if sent {
			r.cfg.OnRound(brokerID, term, ok)
		}
	}
	return out
}

func (r *Registrar) registerAs(ctx context.Context, force bool, brokerID, term int64, only []string) []RegisterOutcome {
	addrs := r.NamesrvAddrs()
	if only != nil {
		addrs = slices.DeleteFunc(addrs, func(a string) bool { return !slices.Contains(only, a) })
	}
	if len(addrs) == 0 {
		return nil
	}
	wrapper := r.cfg.Topics()
	body := (&protocol.RegisterBrokerBody{TopicConfigSerializeWrapper: wrapper}).Encode()
	actingMaster := r.cfg.EnableActingMaster
	h := protocol.RegisterBrokerRequestHeader{
		BrokerName:         r.cfg.BrokerName,
		BrokerAddr:         r.cfg.BrokerAddr,
		ClusterName:        r.cfg.ClusterName,
		HAServerAddr:       r.cfg.HAServerAddr,
		BrokerID:           brokerID,
		EnableActingMaster: &actingMaster,
		BodyCrc32:          int32(crc32.ChecksumIEEE(body) & 0x7FFFFFFF),
		ZoneName:           r.cfg.ZoneName,
		DLegerTerm:         term,
	}
	if r.cfg.HeartbeatTimeout > 0 {
		ms := r.cfg.HeartbeatTimeout.Milliseconds()
		h.HeartbeatTimeoutMillis = &ms
	}
	ext := protocol.EncodeHeader(&h)

	out := make([]RegisterOutcome, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		wg.Add(1)
		go func(i int, addr string) {
			defer wg.Done()
			if !force && r.cfg.SkipUnchanged && !r.changedOn(ctx, addr, brokerID, wrapper.DataVersion) {
				out[i] = RegisterOutcome{NamesrvAddr: addr, Skipped: true}
			} else {
				out[i] = r.registerOne(ctx, addr, ext, body)
			}
			out[i].Time = time.Now()
		}(i, addr)
	}
	wg.Wait()

	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range out {
		r.mu.last[o.NamesrvAddr] = o
		if o.Skipped {
			continue
		}
		was, seen := r.mu.okByNamesrv[o.NamesrvAddr]
		ok := o.Err == nil
		r.mu.okByNamesrv[o.NamesrvAddr] = ok
		fields := []zap.Field{zap.String("namesrv", o.NamesrvAddr), zap.Int64("brokerId", brokerID), zap.Int64("term", term),
			zap.Int64("dataVersion", wrapper.DataVersion.Counter), zap.Int("topics", len(wrapper.TopicConfigTable))}
		switch {
		case ok && (!seen || !was):
			r.log.Info("registered with name server", fields...)
		case ok:
			r.log.Debug("registered with name server", fields...)
		case seen && !was:
			r.log.Debug("register with name server failed again", append(fields, zap.Error(o.Err))...)
		default:
			r.log.Warn("register with name server failed", append(fields, zap.Error(o.Err))...)
		}
		if ok && brokerID != protocol.MasterID && o.MasterAddr != "" {
			r.mu.masterAddr, r.mu.haServerAddr = o.MasterAddr, o.HAServerAddr
		}
	}
	if brokerID == protocol.MasterID {
		r.mu.masterAddr, r.mu.haServerAddr = "", ""
	}
	return out
}

// changedOn asks one name server QUERY_DATA_VERSION; any failure counts as
// changed, so the full registration follows.
func (r *Registrar) changedOn(ctx context.Context, addr string, brokerID int64, dv protocol.DataVersion) bool {
	ext := protocol.EncodeHeader(&protocol.QueryDataVersionRequestHeader{
		BrokerName: r.cfg.BrokerName, BrokerAddr: r.cfg.BrokerAddr, ClusterName: r.cfg.ClusterName, BrokerID: brokerID,
	})
	resp, err := r.inv.InvokeSync(ctx, addr, newRegistrationRequest(protocol.QueryDataVersion, ext, dv.Encode()), r.cfg.Timeout)
	if err != nil || resp.Code != protocol.Success {
		return true
	}
	var h protocol.QueryDataVersionResponseHeader
	if err := protocol.DecodeHeader(&resp.ExtFields, &h); err != nil {
		return true
	}
	return h.Changed
}

func (r *Registrar) registerOne(ctx context.Context, addr string, ext remoting.Fields, body []byte) RegisterOutcome {
	o := RegisterOutcome{NamesrvAddr: addr}
	req := newRegistrationRequest(protocol.RegisterBroker, ext, body)
	resp, err := r.inv.InvokeSync(ctx, addr, req, r.cfg.Timeout)
	if err != nil {
		o.Err = err
		return o
	}
	if resp.Code != protocol.Success {
		o.Err = fmt.Errorf("%w: code %d: %s", ErrRegisterRefused, resp.Code, resp.Remark)
		return o
	}
	var rh protocol.RegisterBrokerResponseHeader
	if err := protocol.DecodeHeader(&resp.ExtFields, &rh); err == nil {
		o.MasterAddr, o.HAServerAddr = rh.MasterAddr, rh.HAServerAddr
	}
	return o
}

// Close stops the loop and sends UNREGISTER_BROKER to every name server
// (in parallel, bounded by ctx and by min(Timeout, 3 s) each). It returns
// the joined errors of the unregistrations. Safe to call more than once;
// later calls do nothing.
func (r *Registrar) Close(ctx context.Context) error {
	var err error
	r.closeOnce.Do(func() {
		close(r.stopc)
		r.startOnce.Do(func() { close(r.donec) }) // never started
		<-r.donec
		err = r.unregisterAll(ctx)
	})
	return err
}

func (r *Registrar) unregisterAll(ctx context.Context) error {
	addrs := r.NamesrvAddrs()
	ext := protocol.EncodeHeader(&protocol.UnregisterBrokerRequestHeader{
		BrokerName: r.cfg.BrokerName, BrokerAddr: r.cfg.BrokerAddr, ClusterName: r.cfg.ClusterName, BrokerID: r.cfg.BrokerID(),
	})
	timeout := min(r.cfg.Timeout, 3*time.Second)
	errs := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		wg.Add(1)
		go func(i int, addr string) {
			defer wg.Done()
			resp, err := r.inv.InvokeSync(ctx, addr, newRegistrationRequest(protocol.UnregisterBroker, ext, nil), timeout)
			if err == nil && resp.Code != protocol.Success {
				err = fmt.Errorf("code %d: %s", resp.Code, resp.Remark)
			}
			if err != nil {
				errs[i] = fmt.Errorf("broker: unregister from %s: %w", addr, err)
				r.log.Warn("unregister from name server failed", zap.String("namesrv", addr), zap.Error(err))
				return
			}
			r.log.Info("unregistered from name server", zap.String("namesrv", addr))
		}(i, addr)
	}
	wg.Wait()
	return errors.Join(errs...)
}

func newRegistrationRequest(code int16, ext remoting.Fields, body []byte) *remoting.RemotingCommand {
	return &remoting.RemotingCommand{
		Code:      code,
		Language:  protocol.LanguageJava,
		Version:   protocol.CurrentVersion,
		ExtFields: ext.Clone(),
		Body:      body,
	}
}
