package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
)

// queueRef is one queue of a master, with the strings a request needs
// prebuilt so workers allocate nothing to address it.
type queueRef struct {
	addr       string // master "ip:port"
	brokerName string
	queueID    int32
	queueIDStr string
}

// routeTable is an immutable snapshot of the topic's route.
type routeTable struct {
	write []queueRef // writable queues of masters
	read  []queueRef // readable queues of masters
}

// router resolves a topic at the name server(s) and keeps the latest
// route; workers read it without locks and kick a refresh after errors.
type router struct {
	client   *remoting.Client
	namesrvs []string
	topic    string
	st       remoting.SerializeType
	timeout  time.Duration
	cluster  string // createTopic: only the masters of this cluster ("" = all)

	cur     atomic.Pointer[routeTable]
	kickCh  chan struct{} // cap 1: refresh soon
	nsIndex atomic.Uint32
}

func newRouter(client *remoting.Client, namesrvs []string, topic string, st remoting.SerializeType, timeout time.Duration) *router {
	r := &router{client: client, namesrvs: namesrvs, topic: topic, st: st, timeout: timeout, kickCh: make(chan struct{}, 1)}
	r.cur.Store(&routeTable{})
	return r
}

// invokeNamesrv sends req to the name servers in turn until one answers.
func (r *router) invokeNamesrv(ctx context.Context, req *remoting.RemotingCommand) (*remoting.RemotingCommand, error) {
	var lastErr error
	for range r.namesrvs {
		addr := r.namesrvs[int(r.nsIndex.Load())%len(r.namesrvs)]
		resp, err := r.client.InvokeSync(ctx, addr, req, r.timeout)
		if err == nil {
			return resp, nil
		}
		lastErr = err
		r.nsIndex.Add(1)
	}
	return nil, lastErr
}

// fetch asks for the topic's route and builds a table (without storing it).
func (r *router) fetch(ctx context.Context) (*routeTable, error) {
	req := &remoting.RemotingCommand{Code: protocol.GetRouteinfoByTopic, SerializeType: r.st,
		ExtFields: remoting.FieldsOf("topic", r.topic, "acceptStandardJsonOnly", "true")}
	resp, err := r.invokeNamesrv(ctx, req)
	if err != nil {
		return nil, err
	}
	if resp.Code != protocol.Success {
		return nil, fmt.Errorf("route of %s: code %d %s", r.topic, resp.Code, resp.Remark)
	}
	rd, err := protocol.DecodeTopicRouteData(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("route of %s: %w", r.topic, err)
	}
	masters := make(map[string]string)
	for _, bd := range rd.BrokerDatas {
		if a, ok := bd.BrokerAddrs[protocol.MasterID]; ok && a != "" {
			masters[bd.BrokerName] = a
		}
	}
	qds := append([]protocol.QueueData(nil), rd.QueueDatas...)
	sort.Slice(qds, func(i, j int) bool { return qds[i].BrokerName < qds[j].BrokerName })
	t := &routeTable{}
	for _, qd := range qds {
		addr, ok := masters[qd.BrokerName]
		if !ok {
			continue
		}
		if qd.Perm&protocol.PermWrite != 0 {
			for q := int32(0); q < qd.WriteQueueNums; q++ {
				t.write = append(t.write, queueRef{addr, qd.BrokerName, q, strconv.Itoa(int(q))})
			}
		}
		if qd.Perm&protocol.PermRead != 0 {
			for q := int32(0); q < qd.ReadQueueNums; q++ {
				t.read = append(t.read, queueRef{addr, qd.BrokerName, q, strconv.Itoa(int(q))})
			}
		}
	}
	return t, nil
}

// refresh fetches the route and stores it when it has a master queue.
func (r *router) refresh(ctx context.Context) error {
	t, err := r.fetch(ctx)
	if err != nil {
		return err
	}
	if len(t.write) == 0 && len(t.read) == 0 {
		return fmt.Errorf("route of %s has no master queue", r.topic)
	}
	r.cur.Store(t)
	return nil
}

// kick asks the refresher for a refresh soon.
func (r *router) kick() {
	select {
	case r.kickCh <- struct{}{}:
	default:
	}
}

// run refreshes every period and after kicks (at most every 100 ms) until
// ctx ends.
func (r *router) run(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.kickCh:
			if d := time.Until(last.Add(100 * time.Millisecond)); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return
				}
			}
		}
		last = time.Now()
		rctx, cancel := context.WithTimeout(ctx, r.timeout)
		_ = r.refresh(rctx) // keep the old route on failure
		cancel()
	}
}

// waitRoute refreshes until the route has a master queue or timeout.
func (r *router) waitRoute(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		rctx, cancel := context.WithTimeout(ctx, r.timeout)
		err := r.refresh(rctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("no route with a master for topic %s after %v: %w", r.topic, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// replicas returns the largest number of addresses (master and slaves)
// any broker group in the topic's route lists.
func (r *router) replicas(ctx context.Context) (int, error) {
	req := &remoting.RemotingCommand{Code: protocol.GetRouteinfoByTopic, SerializeType: r.st,
		ExtFields: remoting.FieldsOf("topic", r.topic, "acceptStandardJsonOnly", "true")}
	resp, err := r.invokeNamesrv(ctx, req)
	if err != nil {
		return 0, err
	}
	if resp.Code != protocol.Success {
		return 0, fmt.Errorf("route of %s: code %d %s", r.topic, resp.Code, resp.Remark)
	}
	rd, err := protocol.DecodeTopicRouteData(resp.Body)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, bd := range rd.BrokerDatas {
		n = max(n, len(bd.BrokerAddrs))
	}
	return n, nil
}

// masters returns the master address of every broker group in the
// cluster(s) the name server knows (GET_BROKER_CLUSTER_INFO), or of
// r.cluster only.
func (r *router) masters(ctx context.Context) ([]string, error) {
	resp, err := r.invokeNamesrv(ctx, &remoting.RemotingCommand{Code: protocol.GetBrokerClusterInfo, SerializeType: r.st})
	if err != nil {
		return nil, err
	}
	if resp.Code != protocol.Success {
		return nil, fmt.Errorf("cluster info: code %d %s", resp.Code, resp.Remark)
	}
	ci, err := protocol.DecodeClusterInfo(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("cluster info: %w", err)
	}
	var out []string
	for _, bd := range ci.BrokerAddrTable {
		if r.cluster != "" && bd.Cluster != r.cluster {
			continue
		}
		if a, ok := bd.BrokerAddrs[protocol.MasterID]; ok && a != "" {
			out = append(out, a)
		}
	}
	sort.Strings(out)
	return out, nil
}

// createTopic creates (or updates) the topic with UPDATE_AND_CREATE_TOPIC
// on every master, waiting up to timeout for masters to be registered,
// then waits for the route.
func (r *router) createTopic(ctx context.Context, queues int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var addrs []string
	for {
		a, err := r.masters(ctx)
		if err == nil && len(a) > 0 {
			addrs = a
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if err == nil {
				err = fmt.Errorf("no master registered")
			}
			return fmt.Errorf("create topic %s: %w", r.topic, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	h := protocol.CreateTopicRequestHeader{
		Topic: r.topic, DefaultTopic: "TBW102", ReadQueueNums: int32(queues), WriteQueueNums: int32(queues),
		Perm: protocol.PermRead | protocol.PermWrite, TopicFilterType: "SINGLE_TAG",
	}
	for _, a := range addrs {
		req := &remoting.RemotingCommand{Code: protocol.UpdateAndCreateTopic, SerializeType: r.st, ExtFields: protocol.EncodeHeader(&h)}
		resp, err := r.client.InvokeSync(ctx, a, req, r.timeout)
		if err != nil {
			return fmt.Errorf("create topic %s on %s: %w", r.topic, a, err)
		}
		if resp.Code != protocol.Success {
			return fmt.Errorf("create topic %s on %s: code %d %s", r.topic, a, resp.Code, resp.Remark)
		}
	}
	return r.waitRoute(ctx, time.Until(deadline)+5*time.Second)
}

// runProbe waits until the name server routes TOPIC to a master and prints
// the master addresses; scripts use it to tell whether a group is up.
func runProbe(args []string) error {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	ns := fs.String("n", "127.0.0.1:9876", "name server address(es)")
	topic := fs.String("t", "", "topic (a broker's own name works: every broker registers it)")
	timeout := fs.Duration("timeout", 20*time.Second, "how long to wait")
	minBrokers := fs.Int("min-brokers", 1, "also wait until some broker group of the route lists this many replicas (master + slaves), e.g. 3 for a DLedger group")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *topic == "" {
		return fmt.Errorf("probe: -t is required")
	}
	c := common{namesrv: *ns}
	client := remoting.NewClient(remoting.ClientConfig{})
	defer client.Close()
	r := newRouter(client, c.namesrvs(), *topic, remoting.JSON, 3*time.Second)
	deadline := time.Now().Add(*timeout)
	if err := r.waitRoute(context.Background(), *timeout); err != nil {
		return err
	}
	for *minBrokers > 1 {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		n, err := r.replicas(ctx)
		cancel()
		if err == nil && n >= *minBrokers {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topic %s: route lists %d replicas, want %d (err %v)", *topic, n, *minBrokers, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	seen := map[string]bool{}
	for _, q := range append(r.cur.Load().write, r.cur.Load().read...) {
		if !seen[q.addr] {
			seen[q.addr] = true
			fmt.Fprintf(os.Stdout, "%s %s\n", q.brokerName, q.addr)
		}
	}
	return nil
}
