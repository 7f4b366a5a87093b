// Package broker is rmqd's RocketMQ broker: the request processors (one file
// per family), long polling, the client and consumer-group registry, queue
// locks, statistics and name-server registration, over store (messages) and
// metadata (topics, groups, offsets).
//
// # Life cycle
//
//	b, err := broker.New(cfg, logger) // validates, builds the parts; opens nothing
//	err = b.Start()                   // store, metadata, remoting servers, registration, services
//	...
//	b.Shutdown()                      // graceful: stop serving, answer held pulls, unregister, persist, close
//
// Start serves the same ServeMux on listenPort and on listenPort-2 (VIP).
//
// # Extensions (retry/DLQ, delay levels, transactions)
//
// Those parts live in their own files of this package (sendback_processor.go,
// schedule_service.go, transaction_*.go) and plug into the Broker through the
// Extension interface. The Broker calls newExtensions(b) (extensions.go, owned
// by the engineer of those parts) once in New; for each Extension returned it
//
//  1. calls Register(b.mux.Handle-like func) in New, before any server starts,
//     to register its request processors (a code registered twice panics);
//  2. calls Start() when the broker becomes master (at Start in classic mode)
//     and Stop() before it stops being master and at Shutdown; these are the
//     master-only services (delay delivery, transaction check-backs).
//
// An Extension may also implement RunningStats(map[string]string) to add
// keys to GET_BROKER_RUNTIME_INFO.
//
// An extension may also rewrite or refuse messages on the send path with
// AddSendHook (called from newExtensions, i.e. before Start): hooks run in
// order after all of the send processor's checks and before the store put.
//
// What extensions may use of a *Broker (all safe for concurrent use):
// b.Store() (*store.MessageStore), b.Metadata() (*metadata.Metadata),
// b.Config() (the current *conf.BrokerConfig), b.Logger(), b.IsMaster(),
// b.TriggerRegister() (re-register with the name servers after a topic
// change), b.EnsureRetryTopic(group), b.CreateTopicIfAbsent(tc),
// b.FindOrCreateGroup(group), b.ProducerChannels(group) (live connections of
// a producer group, newest first, for CHECK_TRANSACTION_STATE),
// b.GroupHasLiveLocks(group) (orderly consumers) and
// b.StoreHost() (brokerIP1:listenPort).
//
// # Master or not
//
// Every "may I write?" decision goes through IsMaster. In classic mode it is
// brokerRole != SLAVE (Java then forces brokerId 0). DLedger mode (issue 5;
// NewWithOptions with a store.ReplicatedLog) wires it in setupReplication
// (options.go): IsMaster is "the store is the writable leader and the
// role-change hook ran", registrations carry the Raft term, the store's role
// listener runs the hooks of role.go (master-only services, re-registration
// as brokerId 0 or selfIndex+1, the role-event ring) and metadata changes go
// through the log (replicated_metadata.go). role.go's header says how roles
// show up to clients and tools (broker ids, runtime keys, request codes).
// Sends, offset commits, locks and (in DLedger mode) admin changes on a
// non-master get SERVICE_NOT_AVAILABLE (14), which rocketmq-client-go retries
// elsewhere, with a remark naming the leader when known.
package broker

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rmqd/rmqd/conf"
	"github.com/rmqd/rmqd/metadata"
	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
	"github.com/rmqd/rmqd/store"
	"go.uber.org/zap"
)

// Extension is a part of the broker built in its own files; see the package
// comment.
type Extension interface {
	// Register registers the extension's request processors.
	Register(handle func(code int16, h remoting.Handler))
	// Start starts master-only services. Stop stops them and waits.
	Start()
	Stop()
}

// SendHook may rewrite msg (topic, queue, properties) before it is stored,
// or refuse it by returning a non-zero response code and a remark. In
// DLedger mode it runs on a remoting event loop for single sends to
// existing topics other than %RETRY% ones (processSendInline), so it must
// not block there; and the request's frame is reused once such a send is
// answered, so a hook must not keep h, msg.Body or a string read from
// them past the call (copy it: strings.Clone).
type SendHook func(c remoting.Conn, h *protocol.SendMessageRequestHeader, msg *store.Message) (code int16, remark string)

// Timings of the broker's own services.
const (
	holdSweepInterval = time.Second // long-polling re-check (Java: 5 s)
	statsInterval     = time.Second
)

// Broker is one broker process. Create it with New.
type Broker struct {
	cfg atomic.Pointer[conf.BrokerConfig]
	log *zap.Logger

	// Set in Start (nil before).
	store     *store.MessageStore
	meta      *metadata.Metadata
	servers   []*remoting.Server
	invoker   namesrvClient
	registrar *Registrar

	mux        *remoting.ServeMux
	clients    *clientRegistry
	locks      *lockManager
	holds      *pullHoldService
	stats      *brokerStats
	resets     pendingResets
	extensions []Extension
	sendHooks  []SendHook

	storeHost  string
	startTime  time.Time
	uniqPrefix string
	uniqSeq    atomic.Uint32
	uniqMonth  atomic.Pointer[monthBounds]
	opaque     atomic.Int32
	// sendsInFlight: DLedger sends put and not yet answered (bounded by
	// maxSendsInFlight).
	sendsInFlight atomic.Int64

	configFile atomic.Pointer[string]

	configVersion struct {
		sync.Mutex
		v protocol.DataVersion
	}

	stopCh   chan struct{}
	wg       sync.WaitGroup
	started  atomic.Bool
	shutOnce sync.Once

	masterFunc atomic.Pointer[func() bool]  // nil: classic brokerRole
	termFunc   atomic.Pointer[func() int64] // nil: term 0 (classic mode)

	// DLedger mode (options.go, role.go, replicated_metadata.go); nil in
	// classic mode.
	opts  Options
	roles *roleManager
	repl  *replicatedMeta

	// roleMu serializes starting and stopping the master-only services.
	roleMu           sync.Mutex
	masterServicesOn bool
	stopped          bool
}

// New validates cfg and builds a broker; nothing is opened or started.
func New(cfg *conf.BrokerConfig, logger *zap.Logger) (*Broker, error) {
	if cfg == nil {
		return nil, errors.New("broker: nil config")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	b := &Broker{
		log:       logger.With(zap.String("broker", cfg.BrokerName)),
		mux:       remoting.NewServeMux(),
		clients:   newClientRegistry(),
		locks:     newLockManager(defaultLockMaxLive),
		stats:     newBrokerStats(),
		storeHost: net.JoinHostPort(cfg.BrokerIP1, strconv.Itoa(cfg.ListenPort)),
		stopCh:    make(chan struct{}),
	}
	b.cfg.Store(cfg.Clone())
	b.holds = newPullHoldService(b, holdSweepInterval)
	b.uniqPrefix = uniqPrefix(cfg.BrokerIP1)
	b.configVersion.v = protocol.DataVersion{Counter: 0, Timestamp: time.Now().UnixMilli()}
	b.registerProcessors()
	exts, err := newExtensions(b)
	if err != nil {
		return nil, err
	}
	b.extensions = exts
	for _, e := range exts {
		e.Register(b.mux.Handle)
	}
	return b, nil
}

// registerProcessors fills the mux with this package's processors.
func (b *Broker) registerProcessors() {
	h := b.mux.HandleFunc
	// Messages.
	b.mux.HandleInlineFirst(protocol.SendMessage, remoting.HandlerFunc(b.processSendInline), remoting.HandlerFunc(b.processSend))
	b.mux.HandleInlineFirst(protocol.SendMessageV2, remoting.HandlerFunc(b.processSendInline), remoting.HandlerFunc(b.processSend))
	h(protocol.SendBatchMessage, b.processSend)
	h(protocol.SendReplyMessage, b.processSend)
	h(protocol.SendReplyMessageV2, b.processSend)
	h(protocol.PullMessage, b.handlePull)
	h(protocol.LitePullMessage, b.handlePull)
	h(protocol.QueryMessage, b.handleQueryMessage)
	h(protocol.ViewMessageByID, b.handleViewMessageByID)
	// Offsets.
	h(protocol.QueryConsumerOffset, b.handleQueryConsumerOffset)
	h(protocol.UpdateConsumerOffset, b.handleUpdateConsumerOffset)
	h(protocol.GetMaxOffset, b.handleGetMaxOffset)
	h(protocol.GetMinOffset, b.handleGetMinOffset)
	h(protocol.SearchOffsetByTimestamp, b.handleSearchOffset)
	h(protocol.GetEarliestMsgStoretime, b.handleGetEarliestMsgStoretime)
	// Clients.
	h(protocol.HeartBeat, b.handleHeartbeat)
	h(protocol.UnregisterClient, b.handleUnregisterClient)
	h(protocol.GetConsumerListByGroup, b.handleGetConsumerList)
	h(protocol.CheckClientConfig, b.handleCheckClientConfig)
	h(protocol.LockBatchMQ, b.handleLockBatch)
	h(protocol.UnlockBatchMQ, b.handleUnlockBatch)
	// Administration.
	b.registerAdminProcessors()
	b.registerRaftProcessors()
}

// Start opens the store and the metadata, starts the remoting servers on
// listenPort and listenPort-2, the registration loop and the services.
func (b *Broker) Start() error {
	if !b.started.CompareAndSwap(false, true) {
		return errors.New("broker: already started")
	}
	cfg := b.config()
	b.startTime = time.Now()
	meta, err := metadata.Open(metadata.Options{Dir: cfg.ConfigDir(), Logger: b.log.Named("metadata")})
	if err != nil {
		return fmt.Errorf("broker: metadata: %w", err)
	}
	b.meta = meta
	meta.InitSystemTopics(metadata.SystemTopicOptions{
		BrokerClusterName:     cfg.BrokerClusterName,
		BrokerName:            cfg.BrokerName,
		AutoCreateTopicEnable: cfg.AutoCreateTopicEnable,
		DefaultTopicQueueNums: cfg.DefaultTopicQueueNums,
		ClusterTopicEnable:    cfg.ClusterTopicEnable,
		BrokerTopicEnable:     cfg.BrokerTopicEnable,
		TraceTopicEnable:      cfg.TraceTopicEnable,
		MsgTraceTopicName:     cfg.MsgTraceTopicName,
	})
	meta.InitSystemGroups()
	if !cfg.AutoCreateTopicEnable {
		// A TBW102 left in topics.json from an earlier run must not keep
		// auto-creation alive.
		if tc, ok := meta.Topics.Get(metadata.AutoCreateTopicKeyTopic); ok && metadata.IsInherited(tc.Perm) {
			tc.Perm &^= metadata.PermInherit
			_ = meta.PutTopic(tc)
		}
	}
	if err := meta.Persist(); err != nil {
		b.log.Warn("metadata persist failed", zap.Error(err))
	}

	st, err := store.Open(b.storeConfig(cfg))
	if err != nil {
		return fmt.Errorf("broker: store: %w", err)
	}
	b.store = st
	st.SetMessageArrivingListener(b.onMessageArriving)
	if err := b.setupReplication(st, meta); err != nil {
		return err
	}
	if err := st.Start(); err != nil {
		return fmt.Errorf("broker: store start: %w", err)
	}
	meta.Start(time.Duration(cfg.FlushConsumerOffsetInterval) * time.Millisecond)

	inv, err := newNamesrvClient(b.log.Named("client"))
	if err != nil {
		return fmt.Errorf("broker: remoting client: %w", err)
	}
	b.invoker = inv
	reg, err := NewRegistrar(RegistrarConfig{
		NamesrvAddr:   cfg.NamesrvAddr,
		ClusterName:   cfg.BrokerClusterName,
		BrokerName:    cfg.BrokerName,
		BrokerAddr:    b.storeHost,
		HAServerAddr:  net.JoinHostPort(orDefault(cfg.BrokerIP2, cfg.BrokerIP1), strconv.Itoa(cfg.ListenPort+1)),
		Period:        time.Duration(cfg.RegisterNameServerPeriod) * time.Millisecond,
		SkipUnchanged: !cfg.ForceRegister,
		Timeout:       time.Duration(cfg.RegisterBrokerTimeoutMills) * time.Millisecond,
		BrokerID:      b.registeredBrokerID,
		Term:          b.registeredTerm,
		Topics:        b.topicTable,
		OnRound:       b.onRegisterRound,
		Logger:        b.log.Named("registration"),
		// DLedger: a follower learns the master's address from the answers.
		RetryUntilMasterKnown: b.opts.ReplicatedLog != nil,
	}, inv)
	if err != nil {
		return err
	}
	b.registrar = reg

	for _, addr := range []string{
		net.JoinHostPort("0.0.0.0", strconv.Itoa(cfg.ListenPort)),
		net.JoinHostPort("0.0.0.0", strconv.Itoa(cfg.VIPPort())),
	} {
		srv, err := remoting.NewServer(remoting.ServerConfig{
			Addr:         addr,
			MaxFrameSize: cfg.MaxFrameSize,
			Workers:      remotingWorkers,
			Logger:       b.log.Named("remoting"),
			OnConnClose:  b.onConnClose,
		}, b.handler())
		if err == nil {
			err = srv.Start()
		}
		if err != nil {
			b.stopServers()
			return fmt.Errorf("broker: listen %s: %w", addr, err)
		}
		b.servers = append(b.servers, srv)
	}

	b.holds.start()
	b.runEvery(statsInterval, func(now time.Time) { b.stats.tick(now) })
	b.runEvery(channelScanInterval, b.scanExpiredChannels)
	if b.IsMaster() {
		b.startMasterServices()
	}
	reg.Start()
	if b.roles != nil {
		b.roles.markReady() // role changes reported during Start apply now
	}
	b.log.Info("broker started", zap.String("addr", b.storeHost), zap.String("namesrv", cfg.NamesrvAddr),
		zap.String("cluster", cfg.BrokerClusterName), zap.Int64("brokerId", b.registeredBrokerID()))
	return nil
}

// Shutdown stops serving and releases everything Start acquired. It is safe
// to call more than once and on a broker whose Start failed.
func (b *Broker) Shutdown() {
	b.shutOnce.Do(func() {
		close(b.stopCh)
		b.roleMu.Lock()
		b.stopped = true
		b.roleMu.Unlock()
		if b.registrar != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			if err := b.registrar.Close(ctx); err != nil {
				b.log.Debug("unregister failed", zap.Error(err))
			}
			cancel()
		}
		b.stopMasterServices()
		b.holds.stop()
		b.stopServers()
		b.wg.Wait()
		if b.invoker != nil {
			_ = b.invoker.Close()
		}
		if b.repl != nil {
			b.repl.stop() // replicates buffered offsets while still leader
		}
		if b.meta != nil {
			if err := b.meta.Stop(); err != nil {
				b.log.Warn("metadata persist at shutdown failed", zap.Error(err))
			}
		}
		if b.store != nil {
			if err := b.store.Shutdown(); err != nil {
				b.log.Warn("store shutdown", zap.Error(err))
			}
		}
		b.log.Info("broker stopped")
	})
}

func (b *Broker) stopServers() {
	for _, s := range b.servers {
		if err := s.Close(); err != nil {
			b.log.Debug("server close", zap.Error(err))
		}
	}
	b.servers = nil
}

func (b *Broker) startMasterServices() {
	b.roleMu.Lock()
	defer b.roleMu.Unlock()
	if b.masterServicesOn || b.stopped {
		return
	}
	b.masterServicesOn = true
	for _, e := range b.extensions {
		e.Start()
	}
}

func (b *Broker) stopMasterServices() {
	b.roleMu.Lock()
	defer b.roleMu.Unlock()
	if !b.masterServicesOn {
		return
	}
	b.masterServicesOn = false
	for i := len(b.extensions) - 1; i >= 0; i-- {
		b.extensions[i].Stop()
	}
}

// SetMasterFunc makes f the answer of IsMaster (DLedger mode: "am I the
// Raft leader with quorum?"). Call RoleChanged whenever f's answer changes.
func (b *Broker) SetMasterFunc(f func() bool) {
	if f == nil {
		b.masterFunc.Store(nil)
		return
	}
	b.masterFunc.Store(&f)
}

// RoleChanged applies a change of IsMaster: master-only services are
// started (becoming master) or stopped (stepping down), and the broker
// re-registers with the name servers under its new broker id.
func (b *Broker) RoleChanged() {
	if !b.started.Load() {
		return
	}
	if b.IsMaster() {
		b.startMasterServices()
	} else {
		b.stopMasterServices()
	}
	b.log.Info("role changed", zap.Bool("master", b.IsMaster()))
	b.triggerRegister()
}

// runEvery runs f every period until Shutdown.
func (b *Broker) runEvery(period time.Duration, f func(time.Time)) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-b.stopCh:
				return
			case now := <-t.C:
				f(now)
			}
		}
	}()
}

func (b *Broker) storeConfig(cfg *conf.BrokerConfig) store.Config {
	sc := store.DefaultConfig(cfg.StorePathRootDir)
	sc.CommitLogDir = cfg.CommitLogDir()
	sc.MappedFileSizeCommitLog = int64(cfg.MappedFileSizeCommitLog)
	sc.MappedFileSizeConsumeQueue = int64(cfg.MappedFileSizeConsumeQueue)
	if cfg.FlushDiskType == conf.SyncFlush {
		sc.FlushDiskType = store.SyncFlush
	}
	sc.FlushInterval = time.Duration(cfg.FlushIntervalCommitLog) * time.Millisecond
	sc.FlushConsumeQueueInterval = time.Duration(cfg.FlushIntervalConsumeQueue) * time.Millisecond
	sc.SyncFlushTimeout = time.Duration(cfg.SyncFlushTimeout) * time.Millisecond
	sc.MaxMessageSize = cfg.MaxMessageSize
	sc.StoreHost = b.storeHost
	sc.FileReservedTime = cfg.FileReservedTime
	sc.DeleteWhen = cfg.DeleteWhen
	sc.DiskMaxUsedSpaceRatio = cfg.DiskMaxUsedSpaceRatio
	sc.DiskForceCleanRatio = cfg.DiskSpaceCleanForciblyRatio
	sc.MessageIndexEnable = cfg.MessageIndexEnable
	sc.MaxHashSlotNum = int32(cfg.MaxHashSlotNum)
	sc.MaxIndexNum = int32(cfg.MaxIndexNum)
	sc.MaxTransferCountOnMessageInMemory = cfg.MaxTransferCountOnMessageInMemory
	sc.MaxTransferBytesOnMessageInMemory = cfg.MaxTransferBytesOnMessageInMemory
	sc.MessageDelayLevel = cfg.MessageDelayLevel
	sc.Logger = b.log.Named("store")
	sc.ReplicatedLog = b.opts.ReplicatedLog
	return sc
}

// onMessageArriving is the store's arriving listener: it wakes held pulls.
// It runs on the dispatcher goroutine and must not block.
func (b *Broker) onMessageArriving(topic string, queueID int32, logicOffset int64, tagsCode int64, _ int64) {
	tc := tagsCode
	b.holds.notifyArriving(topic, queueID, logicOffset+1, &tc)
}

// ---------------------------------------------------------------------------
// Accessors (also the extensions' API; see the package comment).

// Config returns the current configuration. Do not modify it.
func (b *Broker) Config() *conf.BrokerConfig { return b.cfg.Load() }

func (b *Broker) config() *conf.BrokerConfig { return b.cfg.Load() }

// Logger is the broker's logger.
func (b *Broker) Logger() *zap.Logger { return b.log }

// Store is the message store (nil before Start).
func (b *Broker) Store() *store.MessageStore { return b.store }

// Metadata is the metadata (nil before Start).
func (b *Broker) Metadata() *metadata.Metadata { return b.meta }

// StoreHost is brokerIP1:listenPort.
func (b *Broker) StoreHost() string { return b.storeHost }

// SetConfigFile names the file the configuration was loaded from;
// UPDATE_BROKER_CONFIG then writes accepted changes back into it.
func (b *Broker) SetConfigFile(path string) { b.configFile.Store(&path) }

// AddSendHook adds a send hook; call it before Start.
func (b *Broker) AddSendHook(h SendHook) { b.sendHooks = append(b.sendHooks, h) }

// TriggerRegister asks for a registration with every name server now.
func (b *Broker) TriggerRegister() { b.triggerRegister() }

func (b *Broker) triggerRegister() {
	if b.registrar != nil {
		b.registrar.Trigger()
	}
}

// EnsureRetryTopic creates %RETRY%<group> when missing.
func (b *Broker) EnsureRetryTopic(group string) (metadata.TopicConfig, bool) {
	gc, ok := b.groupConfigOrCreate(group)
	if !ok {
		return metadata.TopicConfig{}, false
	}
	return b.ensureRetryTopic(group, gc.RetryQueueNums)
}

// CreateTopicIfAbsent creates tc unless the topic exists, then registers.
func (b *Broker) CreateTopicIfAbsent(tc metadata.TopicConfig) (metadata.TopicConfig, error) {
	return b.createTopicIfAbsent(tc)
}

// FindOrCreateGroup returns the group config, auto-creating it when allowed.
func (b *Broker) FindOrCreateGroup(group string) (metadata.SubscriptionGroupConfig, bool) {
	return b.groupConfigOrCreate(group)
}

// ProducerChannels returns the live connections of a producer group, most
// recently refreshed first.
func (b *Broker) ProducerChannels(group string) []remoting.Conn {
	chs := b.clients.producerChannels(group)
	out := make([]remoting.Conn, len(chs))
	for i := range chs {
		out[i] = chs[i].conn
	}
	return out
}

// GroupHasLiveLocks reports whether an orderly consumer of group holds an
// unexpired queue lock.
func (b *Broker) GroupHasLiveLocks(group string) bool { return b.locks.groupHasLiveLocks(group) }

// IsMaster reports whether this broker accepts writes (sends, offset
// commits, locks) and runs the master-only services. The one place that
// answers the question; DLedger mode replaces its body.
func (b *Broker) IsMaster() bool {
	if f := b.masterFunc.Load(); f != nil {
		return (*f)()
	}
	// As in Java, a broker whose brokerRole is not SLAVE is the master
	// whatever brokerId says (Java forces brokerId to 0).
	return b.config().BrokerRole != conf.Slave
}

// masterHint names the master's address when known, for remarks (in
// DLedger mode the leader's peer id and the master's address).
func (b *Broker) masterHint() string {
	if b.roles != nil {
		return b.roles.leaderHint()
	}
	if b.registrar != nil {
		addr, _ := b.registrar.MasterAddr()
		return addr
	}
	return ""
}

func (b *Broker) registeredBrokerID() int64 {
	if b.IsMaster() {
		return protocol.MasterID
	}
	cfg := b.config()
	if cfg.EnableDLegerCommitLog {
		if i := cfg.DLedgerSelfIndex(); i >= 0 {
			return int64(i) + 1 // design.md §3: follower n0 -> 1, n1 -> 2, ...
		}
	}
	if id := int64(cfg.BrokerID); id != protocol.MasterID {
		return id
	}
	return 1 // a non-master never registers as the master id
}

// SetTermFunc makes the registration carry f's DLedger term (design.md §3),
// so a name server can ignore registrations from a deposed leader.
func (b *Broker) SetTermFunc(f func() int64) {
	if f == nil {
		b.termFunc.Store(nil)
		return
	}
	b.termFunc.Store(&f)
}

func (b *Broker) registeredTerm() int64 {
	if f := b.termFunc.Load(); f != nil {
		return (*f)()
	}
	return 0
}

func notMasterRemark(leader string) string {
	if leader != "" {
		return "not master (not leader); leader is " + leader
	}
	return "not master (not leader); leader unknown"
}

// checkWritable answers the send path's "may I write?" question.
func (b *Broker) checkWritable() *remoting.RemotingCommand {
	if !b.IsMaster() {
		return respond(protocol.ServiceNotAvailable, notMasterRemark(b.masterHint()))
	}
	cfg := b.config()
	if int32(cfg.BrokerPermission)&protocol.PermWrite == 0 {
		return respond(protocol.NoPermission, fmt.Sprintf("the broker[%s] sending message is forbidden", cfg.BrokerIP1))
	}
	return nil
}

func (b *Broker) maxOffset(topic string, queueID int32) int64 {
	return b.store.GetMaxOffsetInQueue(topic, queueID)
}

// ---------------------------------------------------------------------------
// Commands.

// respond builds a handler's answer; the server turns it into the response
// of the request (opaque, flag, serialize type).
// remotingWorkers bounds the requests the broker serves at once. A send
// holds its worker until its message is committed (DLedger: stored by a
// majority), so this bounds the sends in flight and with them the group
// commit: at remoting's default of 64, an async producer with a window of
// 256 had three quarters of its sends queued behind the workers instead of
// in the next append batch (issue 8). An idle worker is a parked goroutine.
const remotingWorkers = 1024

// maxSendsInFlight bounds the DLedger sends waiting for their commit: they
// hold no worker (PutMessageAsync), so the worker pool and its queue
// (remoting's default 10000) no longer bound them; beyond this they are
// answered SYSTEM_BUSY, as a full queue answered them before.
const maxSendsInFlight = remotingWorkers + 10000

func respond(code int16, remark string) *remoting.RemotingCommand {
	r := response(code, remark)
	return &r
}

// response is respond by value, for a caller that owns the command's memory
// (a send's response lives in its sendCall).
func response(code int16, remark string) remoting.RemotingCommand {
	return remoting.RemotingCommand{Code: code, Remark: remark, Flag: remoting.FlagResponse}
}

// asResponse makes resp the response of req for sending later with Send.
func (b *Broker) asResponse(req, resp *remoting.RemotingCommand) *remoting.RemotingCommand {
	remoting.MarkResponseTo(resp, req)
	if resp.Language == "" {
		resp.Language = protocol.LanguageJava
		resp.Version = protocol.CurrentVersion
	}
	return resp
}

// newRequest builds a broker-initiated request (NOTIFY_CONSUMER_IDS_CHANGED, ...).
func (b *Broker) newRequest(code int16, ext remoting.Fields, body []byte) *remoting.RemotingCommand {
	req := remoting.NewRequest(code, ext, body)
	req.Language = protocol.LanguageJava
	req.Version = protocol.CurrentVersion
	req.Opaque = b.opaque.Add(1)
	return req
}

// uniqPrefix is the fixed part of the UNIQ_KEYs the broker generates for
// messages that arrive without one: IPv4 (4 bytes), pid (2), a random
// "class loader" (4), as Java's MessageClientIDSetter.
func uniqPrefix(ip string) string {
	var buf [10]byte
	if a := net.ParseIP(ip).To4(); a != nil {
		copy(buf[:4], a)
	}
	binary.BigEndian.PutUint16(buf[4:], uint16(os.Getpid()))
	_, _ = rand.Read(buf[6:])
	return strings.ToUpper(hex.EncodeToString(buf[:]))
}

// newUniqID is prefix + milliseconds since the start of the month (4 bytes)
// + a counter (2 bytes), 32 hex digits.
func (b *Broker) newUniqID() string { return string(b.appendUniqID(make([]byte, 0, 64))) }

// appendUniqID appends a new UNIQ_KEY to dst (the send path builds it on
// its stack: the properties copy it).
func (b *Broker) appendUniqID(dst []byte) []byte {
	now := time.Now()
	ms := now.UnixMilli()
	m := b.uniqMonth.Load()
	if m == nil || ms < m.start || ms >= m.end {
		// The month's bounds are cached: working them out from the date on
		// every send was a third of this function (issue 8).
		y, mo, _ := now.Date()
		start := time.Date(y, mo, 1, 0, 0, 0, 0, now.Location())
		m = &monthBounds{start: start.UnixMilli(), end: start.AddDate(0, 1, 0).UnixMilli()}
		b.uniqMonth.Store(m)
	}
	var raw [6]byte
	binary.BigEndian.PutUint32(raw[:4], uint32(ms-m.start))
	binary.BigEndian.PutUint16(raw[4:], uint16(b.uniqSeq.Add(1)))
	dst = append(dst, b.uniqPrefix...)
	const digits = "0123456789ABCDEF"
	for _, c := range raw {
		dst = append(dst, digits[c>>4], digits[c&15])
	}
	return dst
}

// monthBounds is a local month as unix ms, [start, end).
type monthBounds struct{ start, end int64 }

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
