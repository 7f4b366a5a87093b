package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rmqd/rmqd/cmd/benchmark/benchkit"
	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
)

type producerOpts struct {
	common
	threads      int
	size         int
	asyncWindow  int
	client       string
	group        string
	createTopic  bool
	queues       int
	routeRefresh time.Duration
	maxMsgs      int64
	cluster      string
	conns        int
	procs        int
	gcPercent    int
}

// producerStats are the counters of the workers sharing them (the
// histogram counts and sums the successful sends).
type producerStats struct {
	hist benchkit.Histogram
}

func runProducer(args []string) error {
	var o producerOpts
	fs := flag.NewFlagSet("producer", flag.ContinueOnError)
	o.common.register(fs)
	fs.IntVar(&o.threads, "w", 64, "producer threads (goroutines)")
	fs.IntVar(&o.size, "s", 128, "message body size, bytes")
	fs.IntVar(&o.asyncWindow, "async-window", 0, "sends kept in flight per thread (0: synchronous sends)")
	fs.StringVar(&o.client, "client", "rmqd", "client: rmqd (own remoting client) or rocketmq-client-go")
	fs.StringVar(&o.group, "group", "benchmark_producer", "producer group")
	fs.BoolVar(&o.createTopic, "create-topic", true, "create the topic on every master first (UPDATE_AND_CREATE_TOPIC)")
	fs.IntVar(&o.queues, "queues", 8, "queues of a created topic")
	fs.IntVar(&o.conns, "conns", 1, "own client: connections per broker (threads share them round robin; RocketMQ clients use 1)")
	fs.IntVar(&o.procs, "procs", 1, "GOMAXPROCS of this tool (0: Go's default); one P costs the client the least CPU per message on cores it shares with the brokers")
	fs.IntVar(&o.gcPercent, "gc-percent", 400, "GOGC of this tool (0: Go's default); a small heap is collected less often")
	fs.StringVar(&o.cluster, "cluster", "", "create the topic only on the masters of this cluster (default: every master the name server knows)")
	fs.DurationVar(&o.routeRefresh, "route-refresh", 3*time.Second, "route re-resolve period (also after errors)")
	fs.Int64Var(&o.maxMsgs, "max-msgs", 0, "own client: stop after this many sends (0: only -d limits the run), e.g. to build a backlog")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := o.check(); err != nil {
		return err
	}
	if o.threads <= 0 || o.size <= 0 || o.asyncWindow < 0 || o.queues <= 0 || o.conns <= 0 {
		return fmt.Errorf("-w, -s, --queues and --conns must be > 0, --async-window >= 0")
	}
	leanRuntime(o.procs, o.gcPercent)
	stopProfile, err := o.startProfile()
	if err != nil {
		return err
	}
	defer stopProfile()
	var res *Result
	switch o.client {
	case "rmqd":
		res, err = produceOwn(&o)
	case "rocketmq-client-go":
		res, err = produceGoClient(&o)
	default:
		return fmt.Errorf("--client must be rmqd or rocketmq-client-go")
	}
	if err != nil {
		return err
	}
	return res.print(os.Stdout, o.json)
}

// leanRuntime sets the tool's GOMAXPROCS and GOGC (0 leaves either as
// Go, or its environment variable, set it). The client shares the
// machine's cores with the brokers it measures, so every microsecond it
// spends per message is taken from them (issue 8). With one P an answer
// read for a waiting producer wakes it on the same P: with two, most
// answers also woke an idle thread through a futex and left it spinning
// for work, which took ~30% of the client's CPU per message at 64
// producers (5.7-6.7 → 3.8-4.5 µs/msg, make bench ASYNC sync64) while
// the client needs a fifth of a core. GC: each response costs a ~640-byte
// allocation and about 1 MB is live, so at Go's default (4 MB goal) the
// collector ran 22 times a second at ~50k msgs/s (gctrace), scanning 64
// worker stacks each time; at 400 the goal is 16 MB.
func leanRuntime(procs, gcPercent int) {
	if procs > 0 {
		runtime.GOMAXPROCS(procs)
	}
	if gcPercent > 0 {
		debug.SetGCPercent(gcPercent)
	}
}

func serializeType(s string) remoting.SerializeType {
	if s == "json" {
		return remoting.JSON
	}
	return remoting.RocketMQ
}

// makeBody returns a body of size printable bytes.
func makeBody(size int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

func newResult(o *producerOpts, client string) *Result {
	return &Result{Mode: "producer", System: "rmqd", Client: client, Scenario: o.scenario, Flush: o.flush,
		Topic: o.topic, Threads: o.threads, AsyncWindow: o.asyncWindow, Conns: o.conns, Size: o.size, Latency: "send_rt"}
}

// finishProducer merges the workers' histograms into r.
func finishProducer(r *Result, stats []*producerStats, errs *errorLog, elapsed time.Duration, size int) {
	var all benchkit.Histogram
	for _, s := range stats {
		all.Merge(&s.hist)
	}
	r.DurationSec = elapsed.Seconds()
	r.Sent = int64(all.Count())
	r.Errors = errs.count()
	r.FirstError = errs.firstError()
	r.MsgsPerSec = float64(r.Sent) / r.DurationSec
	r.MBPerSec = float64(r.Sent) * float64(size) / r.DurationSec / 1e6
	r.fillLatency(&all)
}

// newStats returns the counters for threads workers, worker i using
// stats[i%len(stats)]: one histogram per P. With one per worker (64 of 17
// KB) Record was 6% of the client's CPU at 64 producers on one P (profile,
// flat: cache misses; 0.7% shared); on one P the atomics do not contend.
func newStats(threads int) []*producerStats {
	stats := make([]*producerStats, min(threads, runtime.GOMAXPROCS(0)))
	for i := range stats {
		stats[i] = &producerStats{}
	}
	return stats
}

func snapOf(stats []*producerStats, errs *errorLog, size int) func() snapshot {
	return func() snapshot {
		var s snapshot
		for _, st := range stats {
			s.count += st.hist.Count()
			s.sumUs += st.hist.Sum()
		}
		s.bytes = s.count * uint64(size)
		s.errors = errs.count()
		return s
	}
}

// ---------------------------------------------------------------------------
// Own remoting client

// ownProducer is the state the workers share.
type ownProducer struct {
	o       *producerOpts
	client  *remoting.Client   // route lookups and the first share of the threads
	clients []*remoting.Client // --conns clients, one connection per broker each
	router  *router
	st      remoting.SerializeType
	body    []byte
	props   string
	stop    atomic.Bool
	issued  atomic.Int64 // sends started, for --max-msgs
	errs    errorLog
	born    atomic.Pointer[bornStamp]
}

// bornStamp is a born timestamp formatted once for every worker: 64
// workers each sending less than once a millisecond would otherwise
// format (and allocate) it on almost every send.
type bornStamp struct {
	ms int64
	s  string
}

// bornString returns ms formatted in decimal.
func (p *ownProducer) bornString(ms int64) string {
	if b := p.born.Load(); b != nil && b.ms == ms {
		return b.s
	}
	b := &bornStamp{ms: ms, s: strconv.FormatInt(ms, 10)}
	p.born.Store(b)
	return b.s
}

// more reports whether another send may start.
func (p *ownProducer) more() bool {
	if p.stop.Load() {
		return false
	}
	if p.o.maxMsgs > 0 && p.issued.Add(1) > p.o.maxMsgs {
		p.stop.Store(true)
		return false
	}
	return true
}

func produceOwn(o *producerOpts) (*Result, error) {
	p := &ownProducer{
		o:      o,
		client: remoting.NewClient(remoting.ClientConfig{}),
		st:     serializeType(o.serialize),
		body:   makeBody(o.size),
		// WAIT=true as every RocketMQ producer sends (waitStoreMsgOK).
		props: "WAIT\x01true\x02",
	}
	defer p.client.Close()
	p.clients = []*remoting.Client{p.client}
	for len(p.clients) < o.conns {
		c := remoting.NewClient(remoting.ClientConfig{})
		defer c.Close()
		p.clients = append(p.clients, c)
	}
	p.router = newRouter(p.client, o.namesrvs(), o.topic, p.st, o.timeout)
	p.router.cluster = o.cluster
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if o.createTopic {
		if err := p.router.createTopic(ctx, o.queues, 20*time.Second); err != nil {
			return nil, err
		}
	} else if err := p.router.waitRoute(ctx, 20*time.Second); err != nil {
		return nil, err
	}
	go p.router.run(ctx, o.routeRefresh)

	stats := newStats(o.threads)
	cpu := startCPU(o.pids)
	stopProgress := startProgress("send", snapOf(stats, &p.errs, o.size))
	start := time.Now()
	timer := time.AfterFunc(o.duration(), func() { p.stop.Store(true) })
	defer timer.Stop()
	var wg sync.WaitGroup
	for i := range o.threads {
		st := stats[i%len(stats)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if o.asyncWindow > 0 {
				p.asyncWorker(i, st)
			} else {
				p.syncWorker(i, st)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopProgress()
	res := newResult(o, "rmqd")
	finishProducer(res, stats, &p.errs, elapsed, o.size)
	cpu.finish(res, res.Sent)
	return res, nil
}

// request is a worker's reusable SEND_MESSAGE_V2 request: the header,
// body and command are built once; only queueId, brokerName and the born
// timestamp change between sends. remoting encodes the command before
// InvokeSync/InvokeAsync return, so reusing it for the next send is safe.
type request struct {
	p      *ownProducer
	cmd    remoting.RemotingCommand
	bornMs int64
}

func (p *ownProducer) newRequest() *request {
	// The fields prepare sets on every send come first: Fields.Set looks
	// keys up in order (the broker reads them in any order, as Java's
	// HashMap order is no order either).
	ext := remoting.FieldsOf(
		"e", "0", // queueId
		"n", "", // brokerName
		"g", "0", // bornTimestamp
		"a", p.o.group,
		"b", p.o.topic,
		"c", "TBW102",
		"d", strconv.Itoa(p.o.queues),
		"f", "0",
		"h", "0",
		"i", p.props,
		"j", "0",
		"k", "false",
		"m", "false",
	)
	return &request{p: p, cmd: remoting.RemotingCommand{Code: protocol.SendMessageV2, ExtFields: ext, Body: p.body, SerializeType: p.st}}
}

// prepare addresses the request to q and stamps the born time (the string
// is formatted about once per millisecond for all workers).
func (r *request) prepare(q *queueRef, now time.Time) {
	r.cmd.ExtFields.Set("e", q.queueIDStr)
	r.cmd.ExtFields.Set("n", q.brokerName)
	if ms := now.UnixMilli(); ms != r.bornMs {
		r.bornMs = ms
		r.cmd.ExtFields.Set("g", r.p.bornString(ms))
	}
}

// pick returns the next queue round robin, or nil without a route.
func (p *ownProducer) pick(rr *int) *queueRef {
	t := p.router.cur.Load()
	if len(t.write) == 0 {
		return nil
	}
	q := &t.write[*rr%len(t.write)]
	*rr++
	return q
}

// failed counts an error, asks for a fresh route and backs off a little so
// a dead broker does not turn into a hot loop.
func (p *ownProducer) failed(q *queueRef, err error, resp *remoting.RemotingCommand) {
	if err != nil {
		p.errs.add("send to %s (%s q%d): %v", q.addr, q.brokerName, q.queueID, err)
	} else {
		p.errs.add("send to %s (%s q%d): code %d %s", q.addr, q.brokerName, q.queueID, resp.Code, resp.Remark)
	}
	p.router.kick()
}

func (p *ownProducer) syncWorker(id int, st *producerStats) {
	req := p.newRequest()
	rr := id
	ctx := context.Background()
	client := p.clients[id%len(p.clients)]
	for p.more() {
		q := p.pick(&rr)
		if q == nil {
			p.router.kick()
			time.Sleep(50 * time.Millisecond)
			continue
		}
		t0 := time.Now()
		req.prepare(q, t0)
		resp, err := client.InvokeSync(ctx, q.addr, &req.cmd, p.o.timeout)
		if err != nil || resp.Code != protocol.Success {
			p.failed(q, err, resp)
			remoting.ReleaseResponse(resp)
			time.Sleep(20 * time.Millisecond)
			continue
		}
		st.hist.Record(time.Since(t0).Microseconds())
		remoting.ReleaseResponse(resp)
	}
}

// slot is one in-flight asynchronous send; its callback is bound once, so
// keeping the window full allocates nothing of ours.
type slot struct {
	p    *ownProducer
	st   *producerStats
	free chan *slot
	q    *queueRef
	t0   time.Time
	cb   func(*remoting.RemotingCommand, error)
}

func (s *slot) done(resp *remoting.RemotingCommand, err error) {
	if err != nil || resp.Code != protocol.Success {
		s.p.failed(s.q, err, resp)
	} else {
		s.st.hist.Record(time.Since(s.t0).Microseconds())
	}
	remoting.ReleaseResponse(resp) // failed formatted what it reports
	s.free <- s
}

func (p *ownProducer) asyncWorker(id int, st *producerStats) {
	req := p.newRequest()
	rr := id
	ctx := context.Background()
	client := p.clients[id%len(p.clients)]
	free := make(chan *slot, p.o.asyncWindow)
	for range p.o.asyncWindow {
		s := &slot{p: p, st: st, free: free}
		s.cb = s.done
		free <- s
	}
	for p.more() {
		s := <-free
		q := p.pick(&rr)
		if q == nil {
			free <- s
			p.router.kick()
			time.Sleep(50 * time.Millisecond)
			continue
		}
		s.q = q
		s.t0 = time.Now()
		req.prepare(q, s.t0)
		if err := client.InvokeAsync(ctx, q.addr, &req.cmd, p.o.timeout, s.cb); err != nil {
			p.failed(q, err, nil)
			free <- s
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Drain the window: every callback runs (a response or the timeout).
	deadline := time.After(p.o.timeout + 2*time.Second)
	for range p.o.asyncWindow {
		select {
		case <-free:
		case <-deadline:
			return
		}
	}
}
