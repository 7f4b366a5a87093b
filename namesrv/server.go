package namesrv

import (
	"bufio"
	"fmt"
	"hash/crc32"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
)

// Mux is what Register needs from a request multiplexer
// (remoting.ServeMux satisfies it).
type Mux interface {
	Handle(code int16, h remoting.Handler)
}

// Codes lists every request code the name server answers.
var Codes = []int16{
	protocol.PutKVConfig,
	protocol.GetKVConfig,
	protocol.DeleteKVConfig,
	protocol.RegisterBroker,
	protocol.UnregisterBroker,
	protocol.GetRouteinfoByTopic,
	protocol.GetBrokerClusterInfo,
	protocol.WipeWritePermOfBroker,
	protocol.GetAllTopicListFromNameserver,
	protocol.DeleteTopicInNamesrv,
	protocol.RegisterTopicInNamesrv,
	protocol.GetKVListByNamespace,
	protocol.GetTopicsByCluster,
	protocol.GetSystemTopicListFromNS,
	protocol.GetUnitTopicList,
	protocol.GetHasUnitSubTopicList,
	protocol.GetHasUnitSubUnunitTopicList,
	protocol.UpdateNamesrvConfig,
	protocol.GetNamesrvConfig,
	protocol.QueryDataVersion,
	protocol.AddWritePermOfBroker,
	protocol.BrokerHeartbeat,
}

// Server is a name server: a RouteTable and a KVStore behind request
// handlers, plus the goroutine that drops expired brokers.
type Server struct {
	cfg    Config
	log    *zap.Logger
	routes *RouteTable
	kv     *KVStore

	// Settings UPDATE_NAMESRV_CONFIG can change at run time.
	orderMessageEnable     atomic.Bool
	returnOrderTopicConfig atomic.Bool
	enableAllTopicList     atomic.Bool
	enableTopicList        atomic.Bool

	configMu sync.Mutex // serializes UPDATE_NAMESRV_CONFIG

	startOnce sync.Once
	closeOnce sync.Once
	stopc     chan struct{}
	donec     chan struct{}
}

// New builds a name server: it loads the KV config file and prepares the
// route table. Call Start to run the expiry scan, and wire Handler (or
// Register) and ConnClosed into a remoting server.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.ScanInterval <= 0 {
		cfg.ScanInterval = DefaultScanInterval
	}
	if cfg.BrokerTimeout <= 0 {
		cfg.BrokerTimeout = DefaultBrokerTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	kv, err := OpenKVStore(cfg.KVConfigPath)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:    cfg,
		log:    cfg.Logger,
		routes: NewRouteTable(cfg.Now, cfg.BrokerTimeout),
		kv:     kv,
		stopc:  make(chan struct{}),
		donec:  make(chan struct{}),
	}
	s.routes.deleteMissingTopics = cfg.DeleteTopicWithBrokerRegistration
	s.orderMessageEnable.Store(cfg.OrderMessageEnable)
	s.returnOrderTopicConfig.Store(cfg.ReturnOrderTopicConfigToBroker)
	s.enableAllTopicList.Store(cfg.EnableAllTopicList)
	s.enableTopicList.Store(cfg.EnableTopicList)
	return s, nil
}

// Routes returns the route table (for tests and status pages).
func (s *Server) Routes() *RouteTable { return s.routes }

// KV returns the KV-config store.
func (s *Server) KV() *KVStore { return s.kv }

// Start runs the scan that drops brokers that stopped registering.
func (s *Server) Start() {
	s.startOnce.Do(func() { go s.scanLoop() })
}

// Close stops the scan. It does not close the remoting server.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.stopc)
		s.startOnce.Do(func() { close(s.donec) }) // never started: nothing to wait for
	})
	<-s.donec
	return nil
}

func (s *Server) scanLoop() {
	defer close(s.donec)
	t := time.NewTicker(s.cfg.ScanInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopc:
			return
		case <-t.C:
			s.ScanNotActiveBrokers()
		}
	}
}

// ScanNotActiveBrokers drops brokers whose registration expired and closes
// their connections. The scan loop calls it; tests may call it directly.
func (s *Server) ScanNotActiveBrokers() {
	for _, e := range s.routes.ScanNotActive() {
		s.log.Warn("broker expired, removed from routes",
			zap.String("cluster", e.Cluster), zap.String("brokerName", e.BrokerName),
			zap.String("brokerAddr", e.BrokerAddr), zap.Int64("brokerId", e.BrokerID))
		if e.conn != nil {
			_ = e.conn.Close()
		}
	}
}

// ConnClosed drops the brokers registered over c. Wire it to the remoting
// server's OnConnClose.
func (s *Server) ConnClosed(c remoting.Conn) {
	for _, e := range s.routes.ConnClosed(c.ID()) {
		s.log.Info("broker connection closed, removed from routes",
			zap.String("cluster", e.Cluster), zap.String("brokerName", e.BrokerName),
			zap.String("brokerAddr", e.BrokerAddr), zap.Int64("brokerId", e.BrokerID),
			zap.String("remote", c.RemoteAddr()))
	}
}

// Register installs Handler for every code in Codes.
func (s *Server) Register(mux Mux) {
	h := s.Handler()
	for _, code := range Codes {
		mux.Handle(code, h)
	}
}

// Handler returns a remoting.Handler answering every code in Codes; other
// codes get REQUEST_CODE_NOT_SUPPORTED. Oneway requests are processed and
// not answered.
func (s *Server) Handler() remoting.Handler {
	return remoting.HandlerFunc(func(c remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
		resp := s.serve(c, req)
		if req.IsOneway() {
			return nil
		}
		return resp
	})
}

func (s *Server) serve(c remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	switch req.Code {
	case protocol.RegisterBroker:
		return s.registerBroker(c, req)
	case protocol.UnregisterBroker:
		return s.unregisterBroker(req)
	case protocol.GetRouteinfoByTopic:
		return s.getRouteInfo(req)
	case protocol.GetBrokerClusterInfo:
		// Java name servers of every version answer fastjson here.
		return okBody(s.routes.ClusterInfo().Encode(protocol.FastJSON))
	case protocol.GetAllTopicListFromNameserver:
		if !s.enableAllTopicList.Load() {
			return reply(protocol.SystemError, "disable")
		}
		return okBody((&protocol.TopicList{TopicList: s.routes.Topics()}).Encode())
	case protocol.DeleteTopicInNamesrv:
		return s.deleteTopic(req)
	case protocol.RegisterTopicInNamesrv:
		return s.registerTopic(req)
	case protocol.PutKVConfig:
		return s.putKV(req)
	case protocol.GetKVConfig:
		return s.getKV(req)
	case protocol.DeleteKVConfig:
		return s.deleteKV(req)
	case protocol.GetKVListByNamespace:
		return s.getKVList(req)
	case protocol.GetTopicsByCluster:
		if !s.enableTopicList.Load() {
			return reply(protocol.SystemError, "disable")
		}
		var h protocol.GetTopicsByClusterRequestHeader
		if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
			return reply(protocol.SystemError, err.Error())
		}
		return okBody((&protocol.TopicList{TopicList: s.routes.TopicsByCluster(h.Cluster)}).Encode())
	case protocol.GetSystemTopicListFromNS:
		topics, addr := s.routes.SystemTopics()
		return okBody((&protocol.TopicList{TopicList: topics, BrokerAddr: addr}).Encode())
	case protocol.GetUnitTopicList, protocol.GetHasUnitSubTopicList, protocol.GetHasUnitSubUnunitTopicList:
		return s.unitTopics(req.Code)
	case protocol.WipeWritePermOfBroker, protocol.AddWritePermOfBroker:
		return s.writePerm(req)
	case protocol.QueryDataVersion:
		return s.queryDataVersion(req)
	case protocol.BrokerHeartbeat:
		return s.brokerHeartbeat(req)
	case protocol.GetNamesrvConfig:
		return okBody([]byte(s.configProperties()))
	case protocol.UpdateNamesrvConfig:
		return s.updateConfig(req)
	}
	return reply(protocol.RequestCodeNotSupported, fmt.Sprintf(" request type %d not supported", req.Code))
}

func reply(code int16, remark string) *remoting.RemotingCommand {
	return &remoting.RemotingCommand{Code: code, Remark: remark, Language: protocol.LanguageJava, Version: protocol.CurrentVersion}
}

func okBody(body []byte) *remoting.RemotingCommand {
	r := reply(protocol.Success, "")
	r.Body = body
	return r
}

func (s *Server) registerBroker(c remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h protocol.RegisterBrokerRequestHeader
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return reply(protocol.SystemError, err.Error())
	}
	if h.BodyCrc32 != 0 {
		if sum := int32(crc32.ChecksumIEEE(req.Body) & 0x7FFFFFFF); sum != h.BodyCrc32 {
			s.log.Warn("register broker: body crc32 mismatch", zap.String("brokerAddr", h.BrokerAddr),
				zap.Int32("want", h.BodyCrc32), zap.Int32("got", sum))
			return reply(protocol.SystemError, "crc32 not match")
		}
	}
	var topics *protocol.TopicConfigSerializeWrapper
	var filterServers []string
	if req.Version != 0 && req.Version < protocol.VersionV3_0_11 {
		// Very old brokers send the topic wrapper itself as the body.
		if len(req.Body) > 0 {
			var w protocol.TopicConfigSerializeWrapper
			if err := protocol.UnmarshalLenient(req.Body, &w); err != nil {
				return reply(protocol.SystemError, "register broker failed: "+err.Error())
			}
			topics = &w
		}
	} else {
		body, err := protocol.DecodeRegisterBrokerBody(req.Body, h.Compressed)
		if err != nil {
			s.log.Warn("register broker: bad body", zap.String("brokerAddr", h.BrokerAddr), zap.Error(err))
			return reply(protocol.SystemError, "register broker failed: "+err.Error())
		}
		topics = &body.TopicConfigSerializeWrapper
		filterServers = body.FilterServerList
	}
	reg := Registration{
		Cluster:       h.ClusterName,
		BrokerName:    h.BrokerName,
		BrokerAddr:    h.BrokerAddr,
		HAServerAddr:  h.HAServerAddr,
		ZoneName:      h.ZoneName,
		BrokerID:      h.BrokerID,
		Term:          h.DLegerTerm,
		Topics:        topics,
		FilterServers: filterServers,
		Conn:          c,
	}
	if h.EnableActingMaster != nil {
		reg.EnableActingMaster = *h.EnableActingMaster
	}
	if h.HeartbeatTimeoutMillis != nil && *h.HeartbeatTimeoutMillis > 0 {
		reg.Timeout = time.Duration(*h.HeartbeatTimeoutMillis) * time.Millisecond
	}
	res := s.routes.Register(reg)
	fields := []zap.Field{zap.String("cluster", h.ClusterName), zap.String("brokerName", h.BrokerName),
		zap.String("brokerAddr", h.BrokerAddr), zap.Int64("brokerId", h.BrokerID), zap.Int64("term", h.DLegerTerm)}
	if res.Stale {
		s.log.Warn("register broker: stale term ignored", append(fields, zap.Int64("seenTerm", res.SeenTerm))...)
		return reply(protocol.SystemError, fmt.Sprintf("register broker failed: stale dLegerTerm %d, name server has seen term %d for %s", h.DLegerTerm, res.SeenTerm, h.BrokerName))
	}
	if res.Replaced != "" {
		s.log.Info("register broker: new master replaces old", append(fields, zap.String("oldMaster", res.Replaced))...)
	} else if res.First {
		s.log.Info("register broker: new registration", fields...)
	} else {
		s.log.Debug("register broker", fields...)
	}
	resp := reply(protocol.Success, "")
	resp.ExtFields = protocol.EncodeHeader(&protocol.RegisterBrokerResponseHeader{MasterAddr: res.MasterAddr, HAServerAddr: res.HAServerAddr})
	if s.returnOrderTopicConfig.Load() {
		if m := s.kv.List(protocol.OrderTopicConfigNamespace); m != nil {
			resp.Body = (&protocol.KVTable{Table: m}).Encode()
		}
	}
	return resp
}

func (s *Server) unregisterBroker(req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h protocol.UnregisterBrokerRequestHeader
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return reply(protocol.SystemError, err.Error())
	}
	if s.routes.Unregister(h.ClusterName, h.BrokerAddr, h.BrokerName, h.BrokerID) {
		s.log.Info("unregister broker", zap.String("cluster", h.ClusterName), zap.String("brokerName", h.BrokerName),
			zap.String("brokerAddr", h.BrokerAddr), zap.Int64("brokerId", h.BrokerID))
	}
	return reply(protocol.Success, "")
}

func (s *Server) getRouteInfo(req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h protocol.GetRouteInfoRequestHeader
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return reply(protocol.SystemError, err.Error())
	}
	route, ok := s.routes.TopicRoute(h.Topic)
	if !ok {
		return reply(protocol.TopicNotExist, "No topic route info in name server for the topic: "+h.Topic)
	}
	if s.orderMessageEnable.Load() {
		route.OrderTopicConf, _ = s.kv.Get(protocol.OrderTopicConfigNamespace, h.Topic)
	}
	return okBody(route.Encode(protocol.RouteJSONStyle(req.Version, h.AcceptStandardJSONOnly)))
}

func (s *Server) deleteTopic(req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h protocol.DeleteTopicFromNamesrvRequestHeader
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return reply(protocol.SystemError, err.Error())
	}
	if s.routes.DeleteTopic(h.Topic, h.ClusterName) {
		s.log.Info("topic deleted", zap.String("topic", h.Topic), zap.String("cluster", h.ClusterName))
	}
	return reply(protocol.Success, "")
}

func (s *Server) registerTopic(req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h protocol.RegisterTopicRequestHeader
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return reply(protocol.SystemError, err.Error())
	}
	if len(req.Body) > 0 {
		route, err := protocol.DecodeTopicRouteData(req.Body)
		if err != nil {
			return reply(protocol.SystemError, err.Error())
		}
		s.routes.RegisterTopic(h.Topic, route.QueueDatas)
	}
	return reply(protocol.Success, "")
}

func (s *Server) putKV(req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h protocol.PutKVConfigRequestHeader
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return reply(protocol.SystemError, err.Error())
	}
	if err := s.kv.Put(h.Namespace, h.Key, h.Value); err != nil {
		s.log.Error("put kv config", zap.Error(err))
		return reply(protocol.SystemError, err.Error())
	}
	s.log.Info("put kv config", zap.String("namespace", h.Namespace), zap.String("key", h.Key), zap.String("value", h.Value))
	return reply(protocol.Success, "")
}

func (s *Server) getKV(req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h protocol.GetKVConfigRequestHeader
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return reply(protocol.SystemError, err.Error())
	}
	v, ok := s.kv.Get(h.Namespace, h.Key)
	if !ok {
		return reply(protocol.QueryNotFound, "No config item, Namespace: "+h.Namespace+" Key: "+h.Key)
	}
	resp := reply(protocol.Success, "")
	resp.ExtFields = protocol.EncodeHeader(&protocol.GetKVConfigResponseHeader{Value: v})
	return resp
}

func (s *Server) deleteKV(req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h protocol.DeleteKVConfigRequestHeader
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return reply(protocol.SystemError, err.Error())
	}
	if err := s.kv.Delete(h.Namespace, h.Key); err != nil {
		s.log.Error("delete kv config", zap.Error(err))
		return reply(protocol.SystemError, err.Error())
	}
	s.log.Info("delete kv config", zap.String("namespace", h.Namespace), zap.String("key", h.Key))
	return reply(protocol.Success, "")
}

func (s *Server) getKVList(req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h protocol.GetKVListByNamespaceRequestHeader
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return reply(protocol.SystemError, err.Error())
	}
	m := s.kv.List(h.Namespace)
	if m == nil {
		return reply(protocol.QueryNotFound, "No config item, Namespace: "+h.Namespace)
	}
	return okBody((&protocol.KVTable{Table: m}).Encode())
}

func (s *Server) unitTopics(code int16) *remoting.RemotingCommand {
	if !s.enableTopicList.Load() {
		return reply(protocol.SystemError, "disable")
	}
	var match func(int32) bool
	switch code {
	case protocol.GetUnitTopicList:
		match = func(f int32) bool { return f&protocol.FlagUnit != 0 }
	case protocol.GetHasUnitSubTopicList:
		match = func(f int32) bool { return f&protocol.FlagUnitSub != 0 }
	default: // GetHasUnitSubUnunitTopicList
		match = func(f int32) bool { return f&protocol.FlagUnit == 0 && f&protocol.FlagUnitSub != 0 }
	}
	return okBody((&protocol.TopicList{TopicList: s.routes.TopicsWithSysFlag(match)}).Encode())
}

func (s *Server) writePerm(req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h protocol.WipeWritePermOfBrokerRequestHeader // same shape as AddWritePermOfBrokerRequestHeader
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return reply(protocol.SystemError, err.Error())
	}
	add := req.Code == protocol.AddWritePermOfBroker
	n := int32(s.routes.SetWritePerm(h.BrokerName, add))
	s.log.Info("write permission of broker changed", zap.String("brokerName", h.BrokerName), zap.Bool("writable", add), zap.Int32("topics", n))
	resp := reply(protocol.Success, "")
	if add {
		resp.ExtFields = protocol.EncodeHeader(&protocol.AddWritePermOfBrokerResponseHeader{AddTopicCount: n})
	} else {
		resp.ExtFields = protocol.EncodeHeader(&protocol.WipeWritePermOfBrokerResponseHeader{WipeTopicCount: n})
	}
	return resp
}

func (s *Server) queryDataVersion(req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h protocol.QueryDataVersionRequestHeader
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return reply(protocol.SystemError, err.Error())
	}
	var dv protocol.DataVersion
	if len(req.Body) > 0 {
		if err := protocol.UnmarshalLenient(req.Body, &dv); err != nil {
			return reply(protocol.SystemError, err.Error())
		}
	}
	changed, known := s.routes.QueryDataVersion(h.ClusterName, h.BrokerAddr, dv)
	resp := reply(protocol.Success, "")
	resp.ExtFields = protocol.EncodeHeader(&protocol.QueryDataVersionResponseHeader{Changed: changed})
	if known != nil {
		resp.Body = known.Encode()
	}
	return resp
}

func (s *Server) brokerHeartbeat(req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h protocol.BrokerHeartbeatRequestHeader
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return reply(protocol.SystemError, err.Error())
	}
	var timeout time.Duration
	if h.HeartbeatTimeoutMillis != nil {
		timeout = time.Duration(*h.HeartbeatTimeoutMillis) * time.Millisecond
	}
	s.routes.Heartbeat(h.ClusterName, h.BrokerAddr, timeout)
	return reply(protocol.Success, "")
}

// Keys UPDATE_NAMESRV_CONFIG may never change (Java's configBlackList).
var configBlackList = map[string]bool{"configBlackList": true, "configStorePath": true, "kvConfigPath": true}

func (s *Server) configProperties() string {
	if s.cfg.ConfigProperties != nil {
		return s.cfg.ConfigProperties()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "kvConfigPath=%s\n", s.cfg.KVConfigPath)
	fmt.Fprintf(&b, "scanNotActiveBrokerInterval=%d\n", s.cfg.ScanInterval.Milliseconds())
	fmt.Fprintf(&b, "brokerChannelExpiredTime=%d\n", s.cfg.BrokerTimeout.Milliseconds())
	for _, k := range sortedNames(s.liveSettings()) {
		fmt.Fprintf(&b, "%s=%t\n", k, s.liveSettings()[k].Load())
	}
	return b.String()
}

func (s *Server) liveSettings() map[string]*atomic.Bool {
	return map[string]*atomic.Bool{
		"orderMessageEnable":             &s.orderMessageEnable,
		"returnOrderTopicConfigToBroker": &s.returnOrderTopicConfig,
		"enableAllTopicList":             &s.enableAllTopicList,
		"enableTopicList":                &s.enableTopicList,
	}
}

func (s *Server) updateConfig(req *remoting.RemotingCommand) *remoting.RemotingCommand {
	props, err := parseProperties(string(req.Body))
	if err != nil {
		return reply(protocol.SystemError, "string2Properties error: "+err.Error())
	}
	for k := range props {
		if configBlackList[k] {
			return reply(protocol.NoPermission, "Can not update config in black list.")
		}
	}
	live := s.liveSettings()
	s.configMu.Lock()
	defer s.configMu.Unlock()
	if s.cfg.UpdateConfig != nil {
		if err := s.cfg.UpdateConfig(props); err != nil {
			return reply(protocol.SystemError, err.Error())
		}
	} else {
		for k, v := range props {
			if _, ok := live[k]; !ok {
				return reply(protocol.SystemError, fmt.Sprintf("config key %q cannot be changed at run time", k))
			}
			if _, err := strconv.ParseBool(v); err != nil {
				return reply(protocol.SystemError, fmt.Sprintf("config key %q: invalid boolean %q", k, v))
			}
		}
	}
	for k, v := range props {
		if b, ok := live[k]; ok {
			b.Store(strings.EqualFold(v, "true"))
		}
	}
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s.log.Info("name server config updated", zap.Strings("keys", keys))
	return reply(protocol.Success, "")
}

// parseProperties reads the "key=value" text of UPDATE_NAMESRV_CONFIG
// (also "key: value"; '#' and '!' start comments). Values are trimmed.
func parseProperties(text string) (map[string]string, error) {
	props := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		i := strings.IndexAny(line, "=:")
		if i <= 0 {
			return nil, fmt.Errorf("line %q has no key=value", line)
		}
		props[strings.TrimSpace(line[:i])] = strings.TrimSpace(line[i+1:])
	}
	return props, sc.Err()
}
