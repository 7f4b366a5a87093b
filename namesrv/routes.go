package namesrv

import (
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
)

// brokerKey identifies one registered broker process: Java's
// BrokerAddrInfo (cluster name + "ip:port").
type brokerKey struct {
	cluster string
	addr    string
}

// brokerLive is the liveness record of one registered broker process.
type brokerLive struct {
	brokerName   string
	brokerID     int64
	lastUpdate   time.Time
	timeout      time.Duration
	dataVersion  protocol.DataVersion
	haServerAddr string
	conn         remoting.Conn // the connection it registered over; may be nil
}

// Registration is one REGISTER_BROKER, decoded.
type Registration struct {
	Cluster            string
	BrokerName         string
	BrokerAddr         string
	HAServerAddr       string
	ZoneName           string
	BrokerID           int64
	EnableActingMaster bool
	// Term is the registrant's DLedger term; 0 for classic brokers (no
	// term check).
	Term int64
	// Timeout overrides the table's broker timeout for this broker (Java's
	// heartbeatTimeoutMillis); 0 = the default.
	Timeout time.Duration
	// Topics is the broker's topic table; nil leaves queue data untouched.
	Topics        *protocol.TopicConfigSerializeWrapper
	FilterServers []string
	// Conn is the connection the registration arrived on; when it closes
	// the broker is dropped (ConnClosed). May be nil.
	Conn remoting.Conn
}

// RegisterResult is what RouteTable.Register did.
type RegisterResult struct {
	// MasterAddr and HAServerAddr are the live master's, for a slave.
	MasterAddr   string
	HAServerAddr string
	// First is true when this address was not registered under this
	// brokerId before (a new broker, a restart after expiry, a role change).
	First bool
	// Replaced is the previous master address when a brokerId 0
	// registration from a new address displaced it.
	Replaced string
	// Stale is true when the registration was ignored because its Term is
	// older than SeenTerm, the newest term seen for its brokerName.
	Stale    bool
	SeenTerm int64
	// TopicsUpdated is true when the topic table was applied to the routes.
	TopicsUpdated bool
}

// RouteTable is the name server's state: topics → queue data per broker
// group, broker groups → addresses, clusters → broker groups, and the
// liveness of every registered broker process. All methods are safe for
// concurrent use; one RWMutex guards everything and no method does I/O
// while holding it (connections of expired brokers are closed after the
// lock is released).
type RouteTable struct {
	now            func() time.Time
	defaultTimeout time.Duration
	// deleteMissingTopics: a master's registration removes its queue data
	// from topics absent in its table (deleteTopicWithBrokerRegistration).
	deleteMissingTopics bool

	mu struct {
		sync.RWMutex
		topics        map[string]map[string]protocol.QueueData // topic -> brokerName -> queue data
		brokers       map[string]*protocol.BrokerData          // brokerName -> group
		clusters      map[string]map[string]struct{}           // cluster -> brokerNames
		live          map[brokerKey]*brokerLive
		filterServers map[brokerKey][]string
		terms         map[string]int64                  // brokerName -> highest DLedger term seen
		conns         map[uint64]map[brokerKey]struct{} // connection id -> brokers registered over it
	}
}

// NewRouteTable returns an empty table. now is the clock (nil = time.Now);
// brokerTimeout is how long a broker stays without registering before it
// is dropped (<= 0 = 120 s).
func NewRouteTable(now func() time.Time, brokerTimeout time.Duration) *RouteTable {
	if now == nil {
		now = time.Now
	}
	if brokerTimeout <= 0 {
		brokerTimeout = DefaultBrokerTimeout
	}
	rt := &RouteTable{now: now, defaultTimeout: brokerTimeout}
	rt.mu.topics = map[string]map[string]protocol.QueueData{}
	rt.mu.brokers = map[string]*protocol.BrokerData{}
	rt.mu.clusters = map[string]map[string]struct{}{}
	rt.mu.live = map[brokerKey]*brokerLive{}
	rt.mu.filterServers = map[brokerKey][]string{}
	rt.mu.terms = map[string]int64{}
	rt.mu.conns = map[uint64]map[brokerKey]struct{}{}
	return rt
}

// Register records a broker registration (protocol.md §4.4):
//  1. a registration whose Term is older than the newest term seen for its
//     brokerName is ignored (Stale);
//  2. the address is put at BrokerAddrs[BrokerID], after removing any other
//     id that maps to the same address (a slave promoted to master);
//     a brokerId 0 registration from a new address replaces the old master,
//     whose liveness record is dropped;
//  3. a master's topic table is applied to the routes when it is the first
//     registration or its DataVersion changed;
//  4. liveness is refreshed and tied to r.Conn.
func (rt *RouteTable) Register(r Registration) RegisterResult {
	now := rt.now()
	key := brokerKey{r.Cluster, r.BrokerAddr}
	var res RegisterResult

	rt.mu.Lock()
	defer rt.mu.Unlock()

	if r.Term > 0 {
		seen := rt.mu.terms[r.BrokerName]
		if r.Term < seen {
			res.Stale, res.SeenTerm = true, seen
			return res
		}
		rt.mu.terms[r.BrokerName] = r.Term
		res.SeenTerm = r.Term
	}

	names := rt.mu.clusters[r.Cluster]
	if names == nil {
		names = map[string]struct{}{}
		rt.mu.clusters[r.Cluster] = names
	}
	names[r.BrokerName] = struct{}{}

	bd := rt.mu.brokers[r.BrokerName]
	if bd == nil {
		bd = &protocol.BrokerData{Cluster: r.Cluster, BrokerName: r.BrokerName, BrokerAddrs: map[int64]string{}}
		rt.mu.brokers[r.BrokerName] = bd
		res.First = true
	}
	bd.EnableActingMaster = r.EnableActingMaster
	bd.ZoneName = r.ZoneName

	for id, addr := range bd.BrokerAddrs {
		if addr == r.BrokerAddr && id != r.BrokerID {
			delete(bd.BrokerAddrs, id)
			res.First = true
		}
	}
	if r.BrokerID == protocol.MasterID {
		if old := bd.BrokerAddrs[protocol.MasterID]; old != "" && old != r.BrokerAddr {
			res.Replaced = old
			rt.dropLiveLocked(brokerKey{bd.Cluster, old})
		}
	}
	if bd.BrokerAddrs[r.BrokerID] != r.BrokerAddr {
		res.First = true
	}
	bd.BrokerAddrs[r.BrokerID] = r.BrokerAddr

	prev := rt.mu.live[key]
	if prev == nil || prev.brokerID != r.BrokerID || prev.brokerName != r.BrokerName {
		res.First = true
	}
	if r.BrokerID == protocol.MasterID && r.Topics != nil {
		if res.First || !prev.dataVersion.Equal(r.Topics.DataVersion) {
			rt.applyTopicsLocked(r.BrokerName, r.Topics.TopicConfigTable)
			res.TopicsUpdated = true
		}
	}

	timeout := r.Timeout
	if timeout <= 0 {
		timeout = rt.defaultTimeout
	}
	live := &brokerLive{brokerName: r.BrokerName, brokerID: r.BrokerID, lastUpdate: now, timeout: timeout, haServerAddr: r.HAServerAddr, conn: r.Conn}
	if r.Topics != nil {
		live.dataVersion = r.Topics.DataVersion
	} else if prev != nil {
		live.dataVersion = prev.dataVersion
	}
	if prev != nil && prev.conn != nil && (r.Conn == nil || prev.conn.ID() != r.Conn.ID()) {
		rt.unlinkConnLocked(prev.conn.ID(), key)
	}
	rt.mu.live[key] = live
	if r.Conn != nil {
		set := rt.mu.conns[r.Conn.ID()]
		if set == nil {
			set = map[brokerKey]struct{}{}
			rt.mu.conns[r.Conn.ID()] = set
		}
		set[key] = struct{}{}
	}
	if len(r.FilterServers) > 0 {
		rt.mu.filterServers[key] = slices.Clone(r.FilterServers)
	} else {
		delete(rt.mu.filterServers, key)
	}

	if r.BrokerID != protocol.MasterID {
		if master := bd.BrokerAddrs[protocol.MasterID]; master != "" {
			if ml := rt.mu.live[brokerKey{bd.Cluster, master}]; ml != nil {
				res.MasterAddr, res.HAServerAddr = master, ml.haServerAddr
			}
		}
	}
	return res
}

func (rt *RouteTable) applyTopicsLocked(brokerName string, table map[string]*protocol.TopicConfig) {
	for name, tc := range table {
		if tc == nil {
			continue
		}
		if tc.TopicName != "" {
			name = tc.TopicName
		}
		m := rt.mu.topics[name]
		if m == nil {
			m = map[string]protocol.QueueData{}
			rt.mu.topics[name] = m
		}
		m[brokerName] = protocol.QueueData{
			BrokerName:     brokerName,
			ReadQueueNums:  tc.ReadQueueNums,
			WriteQueueNums: tc.WriteQueueNums,
			Perm:           tc.Perm,
			TopicSysFlag:   tc.TopicSysFlag,
		}
	}
	if rt.deleteMissingTopics {
		for topic, m := range rt.mu.topics {
			if _, ok := m[brokerName]; !ok {
				continue
			}
			if _, ok := table[topic]; !ok {
				delete(m, brokerName)
				if len(m) == 0 {
					delete(rt.mu.topics, topic)
				}
			}
		}
	}
}

// dropLiveLocked forgets a broker process's liveness record (and its
// connection link) without touching the broker group.
func (rt *RouteTable) dropLiveLocked(key brokerKey) *brokerLive {
	live := rt.mu.live[key]
	if live == nil {
		return nil
	}
	delete(rt.mu.live, key)
	delete(rt.mu.filterServers, key)
	if live.conn != nil {
		rt.unlinkConnLocked(live.conn.ID(), key)
	}
	return live
}

func (rt *RouteTable) unlinkConnLocked(id uint64, key brokerKey) {
	if set := rt.mu.conns[id]; set != nil {
		delete(set, key)
		if len(set) == 0 {
			delete(rt.mu.conns, id)
		}
	}
}

// removeBrokerLocked unregisters one broker process: its liveness record,
// its address in the group and, when the group has no address left, the
// group itself, its cluster membership and its queue data. It reports
// whether anything was removed.
func (rt *RouteTable) removeBrokerLocked(key brokerKey, brokerName string) bool {
	removed := rt.dropLiveLocked(key) != nil
	bd := rt.mu.brokers[brokerName]
	if bd == nil {
		return removed
	}
	for id, addr := range bd.BrokerAddrs {
		if addr == key.addr {
			delete(bd.BrokerAddrs, id)
			removed = true
		}
	}
	if len(bd.BrokerAddrs) > 0 {
		return removed
	}
	delete(rt.mu.brokers, brokerName)
	// The group has no broker left: forget its DLedger term too. The term
	// fences deposed leaders of a live group; a group rebuilt from empty
	// stores (terms start again at 0) must be able to register.
	delete(rt.mu.terms, brokerName)
	if names := rt.mu.clusters[bd.Cluster]; names != nil {
		delete(names, brokerName)
		if len(names) == 0 {
			delete(rt.mu.clusters, bd.Cluster)
		}
	}
	for topic, m := range rt.mu.topics {
		delete(m, brokerName)
		if len(m) == 0 {
			delete(rt.mu.topics, topic)
		}
	}
	return true
}

// Unregister removes a broker process (UNREGISTER_BROKER). It reports
// whether the broker was known.
func (rt *RouteTable) Unregister(cluster, brokerAddr, brokerName string, brokerID int64) bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.removeBrokerLocked(brokerKey{cluster, brokerAddr}, brokerName)
}

// Expired is a broker dropped by ScanNotActive or ConnClosed.
type Expired struct {
	Cluster, BrokerName, BrokerAddr string
	BrokerID                        int64
	conn                            remoting.Conn
}

// ScanNotActive drops every broker whose last registration is older than
// its timeout and returns them. The caller closes their connections (see
// Server), outside the lock.
func (rt *RouteTable) ScanNotActive() []Expired {
	now := rt.now()
	rt.mu.Lock()
	defer rt.mu.Unlock()
	var out []Expired
	for key, live := range rt.mu.live {
		if now.Sub(live.lastUpdate) <= live.timeout {
			continue
		}
		out = append(out, Expired{Cluster: key.cluster, BrokerName: live.brokerName, BrokerAddr: key.addr, BrokerID: live.brokerID, conn: live.conn})
		rt.removeBrokerLocked(key, live.brokerName)
	}
	return out
}

// ConnClosed drops every broker that registered over connection id and
// has not re-registered over another connection since.
func (rt *RouteTable) ConnClosed(id uint64) []Expired {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	set := rt.mu.conns[id]
	if set == nil {
		return nil
	}
	var out []Expired
	for key := range set {
		live := rt.mu.live[key]
		if live == nil || live.conn == nil || live.conn.ID() != id {
			continue
		}
		out = append(out, Expired{Cluster: key.cluster, BrokerName: live.brokerName, BrokerAddr: key.addr, BrokerID: live.brokerID})
		rt.removeBrokerLocked(key, live.brokerName)
	}
	delete(rt.mu.conns, id)
	return out
}

// Heartbeat refreshes a registered broker's liveness (BROKER_HEARTBEAT).
// It reports whether the broker is registered.
func (rt *RouteTable) Heartbeat(cluster, brokerAddr string, timeout time.Duration) bool {
	now := rt.now()
	rt.mu.Lock()
	defer rt.mu.Unlock()
	live := rt.mu.live[brokerKey{cluster, brokerAddr}]
	if live == nil {
		return false
	}
	live.lastUpdate = now
	if timeout > 0 {
		live.timeout = timeout
	}
	return true
}

// QueryDataVersion compares a broker's DataVersion with the one recorded
// at its last registration (QUERY_DATA_VERSION). When unchanged it also
// refreshes the broker's liveness. known is the recorded version, nil
// when the broker is not registered.
func (rt *RouteTable) QueryDataVersion(cluster, brokerAddr string, dv protocol.DataVersion) (changed bool, known *protocol.DataVersion) {
	now := rt.now()
	rt.mu.Lock()
	defer rt.mu.Unlock()
	live := rt.mu.live[brokerKey{cluster, brokerAddr}]
	if live == nil {
		return true, nil
	}
	v := live.dataVersion
	if v.Equal(dv) {
		live.lastUpdate = now
		return false, &v
	}
	return true, &v
}

// TopicRoute returns the route of topic, or false when no live broker
// group serves it. Queue and broker data are sorted by broker name.
func (rt *RouteTable) TopicRoute(topic string) (*protocol.TopicRouteData, bool) {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	m := rt.mu.topics[topic]
	if len(m) == 0 {
		return nil, false
	}
	r := &protocol.TopicRouteData{FilterServerTable: map[string][]string{}}
	for _, name := range sortedNames(m) {
		qd := m[name]
		r.QueueDatas = append(r.QueueDatas, qd)
		bd := rt.mu.brokers[name]
		if bd == nil {
			continue
		}
		r.BrokerDatas = append(r.BrokerDatas, bd.Clone())
		for _, addr := range bd.BrokerAddrs {
			if fs := rt.mu.filterServers[brokerKey{bd.Cluster, addr}]; len(fs) > 0 {
				r.FilterServerTable[addr] = slices.Clone(fs)
			}
		}
	}
	if len(r.BrokerDatas) == 0 {
		return nil, false
	}
	return r, true
}

// ClusterInfo returns every broker group and every cluster's broker names.
func (rt *RouteTable) ClusterInfo() *protocol.ClusterInfo {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	ci := &protocol.ClusterInfo{
		BrokerAddrTable:  make(map[string]protocol.BrokerData, len(rt.mu.brokers)),
		ClusterAddrTable: make(map[string][]string, len(rt.mu.clusters)),
	}
	for name, bd := range rt.mu.brokers {
		ci.BrokerAddrTable[name] = bd.Clone()
	}
	for cluster, names := range rt.mu.clusters {
		ci.ClusterAddrTable[cluster] = sortedNames(names)
	}
	return ci
}

// Topics returns every topic with queue data, sorted.
func (rt *RouteTable) Topics() []string {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	return sortedNames(rt.mu.topics)
}

// TopicsByCluster returns the topics that have queue data on a broker
// group of cluster, sorted.
func (rt *RouteTable) TopicsByCluster(cluster string) []string {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	names := rt.mu.clusters[cluster]
	var out []string
	for topic, m := range rt.mu.topics {
		for name := range m {
			if _, ok := names[name]; ok {
				out = append(out, topic)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// SystemTopics returns what Java calls the system topic list: every cluster
// name and every broker name (each is also a topic a broker serves), and
// the address of one broker.
func (rt *RouteTable) SystemTopics() (topics []string, brokerAddr string) {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	seen := map[string]struct{}{}
	for _, cluster := range sortedNames(rt.mu.clusters) {
		for _, name := range append([]string{cluster}, sortedNames(rt.mu.clusters[cluster])...) {
			if _, ok := seen[name]; !ok {
				seen[name] = struct{}{}
				topics = append(topics, name)
			}
		}
	}
	for _, name := range sortedNames(rt.mu.brokers) {
		bd := rt.mu.brokers[name]
		if addr, ok := bd.BrokerAddrs[protocol.MasterID]; ok {
			return topics, addr
		}
		for _, addr := range bd.BrokerAddrs {
			return topics, addr
		}
	}
	return topics, ""
}

// TopicsWithSysFlag returns the topics for which match(topicSysFlag) holds
// on some broker group, sorted (the unit-topic lists).
func (rt *RouteTable) TopicsWithSysFlag(match func(flag int32) bool) []string {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	var out []string
	for topic, m := range rt.mu.topics {
		for _, qd := range m {
			if match(qd.TopicSysFlag) {
				out = append(out, topic)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// DeleteTopic removes a topic's route (DELETE_TOPIC_IN_NAMESRV); with a
// cluster name only the queue data of that cluster's broker groups. It
// reports whether anything was removed.
func (rt *RouteTable) DeleteTopic(topic, cluster string) bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	m := rt.mu.topics[topic]
	if m == nil {
		return false
	}
	if cluster == "" {
		delete(rt.mu.topics, topic)
		return true
	}
	removed := false
	for name := range rt.mu.clusters[cluster] {
		if _, ok := m[name]; ok {
			delete(m, name)
			removed = true
		}
	}
	if len(m) == 0 {
		delete(rt.mu.topics, topic)
	}
	return removed
}

// RegisterTopic merges queue data for topic (REGISTER_TOPIC_IN_NAMESRV);
// entries for unknown broker groups are skipped. It returns how many were
// applied.
func (rt *RouteTable) RegisterTopic(topic string, qds []protocol.QueueData) int {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	n := 0
	for _, qd := range qds {
		if _, ok := rt.mu.brokers[qd.BrokerName]; !ok {
			continue
		}
		m := rt.mu.topics[topic]
		if m == nil {
			m = map[string]protocol.QueueData{}
			rt.mu.topics[topic] = m
		}
		m[qd.BrokerName] = qd
		n++
	}
	return n
}

// SetWritePerm clears (wipe) or sets the WRITE bit of every topic's queue
// data on brokerName and returns how many topics it touched
// (WIPE_WRITE_PERM_OF_BROKER / ADD_WRITE_PERM_OF_BROKER). The change holds
// until the broker registers a new DataVersion.
func (rt *RouteTable) SetWritePerm(brokerName string, writable bool) int {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	n := 0
	for _, m := range rt.mu.topics {
		qd, ok := m[brokerName]
		if !ok {
			continue
		}
		if writable {
			qd.Perm |= protocol.PermWrite
		} else {
			qd.Perm &^= protocol.PermWrite
		}
		m[brokerName] = qd
		n++
	}
	return n
}

// BrokerTerm returns the newest DLedger term seen for brokerName (0 if none).
func (rt *RouteTable) BrokerTerm(brokerName string) int64 {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	return rt.mu.terms[brokerName]
}

// LiveBrokers returns how many broker processes are registered.
func (rt *RouteTable) LiveBrokers() int {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	return len(rt.mu.live)
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
