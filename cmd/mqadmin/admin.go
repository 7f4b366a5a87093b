package main

// admin is the remoting client every command uses: requests to the name
// servers (tried in order until one answers) and to brokers, with errors
// turned into one readable line, plus the lookups Java's CommandUtil and
// DefaultMQAdminExt provide (routes, cluster info, masters of a cluster).

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
)

// defaultTimeout bounds one request (Java's admin timeoutMillis is 5 s).
const defaultTimeout = 5 * time.Second

type admin struct {
	client   *remoting.Client
	namesrvs []string
	timeout  time.Duration
}

func newAdmin(namesrvs []string) *admin {
	return &admin{
		client:   remoting.NewClient(remoting.ClientConfig{ConnectTimeout: 3 * time.Second}),
		namesrvs: namesrvs,
		timeout:  defaultTimeout,
	}
}

func (a *admin) close() { _ = a.client.Close() }

// respError is a non-success answer.
type respError struct {
	addr    string
	reqCode int16
	code    int16
	remark  string
}

func (e *respError) Error() string {
	if e.code == protocol.RequestCodeNotSupported {
		return fmt.Sprintf("%s does not support request code %d %s (REQUEST_CODE_NOT_SUPPORTED: %s)",
			e.addr, e.reqCode, requestName(e.reqCode), strings.TrimSpace(e.remark))
	}
	return fmt.Sprintf("CODE: %d  DESC: %s (%s from %s)", e.code, strings.TrimSpace(e.remark), requestName(e.reqCode), e.addr)
}

// codeOf returns the response code of a respError, or -1.
func codeOf(err error) int16 {
	var re *respError
	if errors.As(err, &re) {
		return re.code
	}
	return -1
}

var requestNames = map[int16]string{
	protocol.SendMessage:                      "SEND_MESSAGE",
	protocol.PullMessage:                      "PULL_MESSAGE",
	protocol.QueryMessage:                     "QUERY_MESSAGE",
	protocol.UpdateConsumerOffset:             "UPDATE_CONSUMER_OFFSET",
	protocol.UpdateAndCreateTopic:             "UPDATE_AND_CREATE_TOPIC",
	protocol.UpdateBrokerConfig:               "UPDATE_BROKER_CONFIG",
	protocol.GetBrokerConfig:                  "GET_BROKER_CONFIG",
	protocol.GetBrokerRuntimeInfo:             "GET_BROKER_RUNTIME_INFO",
	protocol.SearchOffsetByTimestamp:          "SEARCH_OFFSET_BY_TIMESTAMP",
	protocol.GetMaxOffset:                     "GET_MAX_OFFSET",
	protocol.GetMinOffset:                     "GET_MIN_OFFSET",
	protocol.ViewMessageByID:                  "VIEW_MESSAGE_BY_ID",
	protocol.PutKVConfig:                      "PUT_KV_CONFIG",
	protocol.GetRouteinfoByTopic:              "GET_ROUTEINFO_BY_TOPIC",
	protocol.GetBrokerClusterInfo:             "GET_BROKER_CLUSTER_INFO",
	protocol.UpdateAndCreateSubscriptionGroup: "UPDATE_AND_CREATE_SUBSCRIPTIONGROUP",
	protocol.GetTopicStatsInfo:                "GET_TOPIC_STATS_INFO",
	protocol.GetConsumerConnectionList:        "GET_CONSUMER_CONNECTION_LIST",
	protocol.GetProducerConnectionList:        "GET_PRODUCER_CONNECTION_LIST",
	protocol.WipeWritePermOfBroker:            "WIPE_WRITE_PERM_OF_BROKER",
	protocol.GetAllTopicListFromNameserver:    "GET_ALL_TOPIC_LIST_FROM_NAMESERVER",
	protocol.DeleteSubscriptionGroup:          "DELETE_SUBSCRIPTIONGROUP",
	protocol.GetConsumeStats:                  "GET_CONSUME_STATS",
	protocol.DeleteTopicInBroker:              "DELETE_TOPIC_IN_BROKER",
	protocol.DeleteTopicInNamesrv:             "DELETE_TOPIC_IN_NAMESRV",
	protocol.InvokeBrokerToResetOffset:        "INVOKE_BROKER_TO_RESET_OFFSET",
	protocol.QueryTopicConsumeByWho:           "QUERY_TOPIC_CONSUME_BY_WHO",
	protocol.GetConsumerRunningInfo:           "GET_CONSUMER_RUNNING_INFO",
	protocol.ConsumeMessageDirectly:           "CONSUME_MESSAGE_DIRECTLY",
	protocol.ViewBrokerStatsData:              "VIEW_BROKER_STATS_DATA",
	protocol.GetBrokerConsumeStats:            "GET_BROKER_CONSUME_STATS",
	protocol.GetNamesrvConfig:                 "GET_NAMESRV_CONFIG",
	protocol.AddWritePermOfBroker:             "ADD_WRITE_PERM_OF_BROKER",
}

func requestName(code int16) string {
	if n, ok := requestNames[code]; ok {
		return n
	}
	return fmt.Sprintf("request %d", code)
}

// invoke sends one request to addr; only transport failures are errors.
func (a *admin) invoke(addr string, code int16, ext remoting.Fields, body []byte) (*remoting.RemotingCommand, error) {
	ctx, cancel := context.WithTimeout(context.Background(), a.timeout+time.Second)
	defer cancel()
	req := remoting.NewRequest(code, ext, body)
	req.Language = protocol.LanguageJava
	req.Version = protocol.CurrentVersion
	resp, err := a.client.InvokeSync(ctx, addr, req, a.timeout)
	if err != nil {
		return nil, fmt.Errorf("connect to %s failed (%s): %v", addr, requestName(code), err)
	}
	return resp, nil
}

// call is invoke plus a check that the answer is SUCCESS.
func (a *admin) call(addr string, code int16, ext remoting.Fields, body []byte) (*remoting.RemotingCommand, error) {
	resp, err := a.invoke(addr, code, ext, body)
	if err != nil {
		return nil, err
	}
	if resp.Code != protocol.Success {
		return resp, &respError{addr: addr, reqCode: code, code: resp.Code, remark: resp.Remark}
	}
	return resp, nil
}

// callNamesrv sends a request to the first name server that answers and
// checks for SUCCESS. Transport failures move on to the next name server.
func (a *admin) callNamesrv(code int16, ext remoting.Fields, body []byte) (*remoting.RemotingCommand, error) {
	var errs []string
	for _, ns := range a.namesrvs {
		resp, err := a.invoke(ns, code, ext, body)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if resp.Code != protocol.Success {
			return resp, &respError{addr: ns, reqCode: code, code: resp.Code, remark: resp.Remark}
		}
		return resp, nil
	}
	return nil, fmt.Errorf("no name server reachable: %s", strings.Join(errs, "; "))
}

// route fetches a topic's route (GET_ROUTEINFO_BY_TOPIC).
func (a *admin) route(topic string) (*protocol.TopicRouteData, error) {
	resp, err := a.callNamesrv(protocol.GetRouteinfoByTopic, protocol.EncodeHeader(&protocol.GetRouteInfoRequestHeader{Topic: topic, AcceptStandardJSONOnly: true}), nil)
	if err != nil {
		if codeOf(err) == protocol.TopicNotExist {
			return nil, fmt.Errorf("topic %s not exist: %w (CODE: 17)", topic, errNoRoute)
		}
		return nil, err
	}
	r, err := protocol.DecodeTopicRouteData(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("bad route body for topic %s: %v", topic, err)
	}
	return r, nil
}

// clusterInfo fetches GET_BROKER_CLUSTER_INFO.
func (a *admin) clusterInfo() (*protocol.ClusterInfo, error) {
	resp, err := a.callNamesrv(protocol.GetBrokerClusterInfo, remoting.Fields{}, nil)
	if err != nil {
		return nil, err
	}
	ci, err := protocol.DecodeClusterInfo(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("bad cluster info body: %v", err)
	}
	return ci, nil
}

// errNoRoute: the name servers know no route for a topic.
var errNoRoute = errors.New("no route info in name server")

// errNoCluster is Java CommandUtil's message for an unknown cluster.
func errNoCluster(cluster string) error {
	return fmt.Errorf("cluster %s not found: make sure the specified clusterName exists or the name server connected to is correct", cluster)
}

// brokerNamesOfCluster returns the sorted broker names of a cluster.
func brokerNamesOfCluster(ci *protocol.ClusterInfo, cluster string) ([]string, error) {
	names, ok := ci.ClusterAddrTable[cluster]
	if !ok {
		return nil, errNoCluster(cluster)
	}
	out := append([]string(nil), names...)
	sort.Strings(out)
	return out, nil
}

// masterAddrs returns the master address of every broker group of a
// cluster (CommandUtil.fetchMasterAddrByClusterName).
func (a *admin) masterAddrs(cluster string) ([]string, error) {
	ci, err := a.clusterInfo()
	if err != nil {
		return nil, err
	}
	names, err := brokerNamesOfCluster(ci, cluster)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range names {
		if addr, ok := ci.BrokerAddrTable[n].BrokerAddrs[protocol.MasterID]; ok {
			out = append(out, addr)
		}
	}
	return out, nil
}

// allAddrs returns every address (masters and slaves) of a cluster
// (CommandUtil.fetchMasterAndSlaveAddrByClusterName), masters first per group.
func (a *admin) allAddrs(cluster string) ([]string, error) {
	ci, err := a.clusterInfo()
	if err != nil {
		return nil, err
	}
	names, err := brokerNamesOfCluster(ci, cluster)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range names {
		bd := ci.BrokerAddrTable[n]
		for _, id := range sortedIDs(bd.BrokerAddrs) {
			out = append(out, bd.BrokerAddrs[id])
		}
	}
	return out, nil
}

// brokerTargets resolves -b / -c: -b wins; neither is a usage error.
func (a *admin) brokerTargets(b, c *option, withSlaves bool) ([]string, error) {
	if b != nil && b.has() && b.str() != "" {
		return []string{b.str()}, nil
	}
	if c != nil && c.has() && c.str() != "" {
		if withSlaves {
			return a.allAddrs(c.str())
		}
		return a.masterAddrs(c.str())
	}
	return nil, usagef("one of -b (broker address) or -c (cluster name) is required")
}

func sortedIDs(m map[int64]string) []int64 {
	ids := make([]int64, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// selectBrokerAddr is BrokerData.selectBrokerAddr: the master, else the
// replica with the smallest id.
func selectBrokerAddr(bd *protocol.BrokerData) string {
	if addr, ok := bd.BrokerAddrs[protocol.MasterID]; ok {
		return addr
	}
	for _, id := range sortedIDs(bd.BrokerAddrs) {
		return bd.BrokerAddrs[id]
	}
	return ""
}

// brokerAddrByName finds the address to use for brokerName in a route.
func brokerAddrByName(r *protocol.TopicRouteData, brokerName string) string {
	for i := range r.BrokerDatas {
		if r.BrokerDatas[i].BrokerName == brokerName {
			return selectBrokerAddr(&r.BrokerDatas[i])
		}
	}
	return ""
}

// routeAddrs returns one address per broker group of the route (masters
// preferred), sorted by broker name, optionally only of one cluster.
func routeAddrs(r *protocol.TopicRouteData, cluster string) []brokerRef {
	var out []brokerRef
	for i := range r.BrokerDatas {
		bd := &r.BrokerDatas[i]
		if cluster != "" && bd.Cluster != cluster {
			continue
		}
		if addr := selectBrokerAddr(bd); addr != "" {
			out = append(out, brokerRef{name: bd.BrokerName, addr: addr})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

type brokerRef struct{ name, addr string }

// topicList fetches GET_ALL_TOPIC_LIST_FROM_NAMESERVER.
func (a *admin) topicList() ([]string, error) {
	resp, err := a.callNamesrv(protocol.GetAllTopicListFromNameserver, remoting.Fields{}, nil)
	if err != nil {
		return nil, err
	}
	var tl protocol.TopicList
	if err := protocol.UnmarshalLenient(resp.Body, &tl); err != nil {
		return nil, fmt.Errorf("bad topic list body: %v", err)
	}
	return tl.TopicList, nil
}

// runtimeInfo fetches GET_BROKER_RUNTIME_INFO of one broker.
func (a *admin) runtimeInfo(addr string) (map[string]string, error) {
	resp, err := a.call(addr, protocol.GetBrokerRuntimeInfo, remoting.Fields{}, nil)
	if err != nil {
		return nil, err
	}
	var kv protocol.KVTable
	if err := protocol.UnmarshalLenient(resp.Body, &kv); err != nil {
		return nil, fmt.Errorf("bad runtime info body from %s: %v", addr, err)
	}
	if kv.Table == nil {
		kv.Table = map[string]string{}
	}
	return kv.Table, nil
}
