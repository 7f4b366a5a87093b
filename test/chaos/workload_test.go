//go:build chaos

package chaos

// The workload: sync producers that follow the name server's master and
// retry a message until it is acknowledged (as a client's send retries
// would; a retry after a timeout may store a duplicate), and one pulling
// consumer per queue that keeps its own offset in memory, follows the
// master, and records every message it receives. Everything is kept in a
// history for the checkers.

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
	"github.com/rmqd/rmqd/store"
)

const (
	topic       = "ChaosTopic"
	queues      = 4
	producers   = 2
	sendTimeout = 3 * time.Second
	pullSuspend = 500 * time.Millisecond
	sendPause   = 10 * time.Millisecond // between acknowledged sends: a modest load for 2 shared cores
)

// ack is one acknowledged send.
type ack struct {
	body        string
	msgID       string
	queue       int
	queueOffset int64
	start, end  time.Time // of the attempt that was acknowledged
	addr        string
}

// recv is one message a consumer received.
type recv struct {
	queue  int
	offset int64
	body   string
	msgID  string
	addr   string
	at     time.Time
}

// history records the workload.
type history struct {
	mu        sync.Mutex
	attempted map[string]int // body → attempts
	acks      []ack
	recvs     []recv
	failures  int
	rewinds   []string // consumer offset corrections backwards
}

func newHistory() *history { return &history{attempted: map[string]int{}} }

// router caches the name server's master address; refresh is rate-limited.
type router struct {
	client     *remoting.Client
	ns, broker string
	addr       atomic.Value // string
	mu         sync.Mutex
	last       time.Time
}

func newRouter(client *remoting.Client, ns, broker string) *router {
	r := &router{client: client, ns: ns, broker: broker}
	r.addr.Store("")
	return r
}

func (r *router) master() string {
	if a := r.addr.Load().(string); a != "" {
		return a
	}
	r.refresh()
	return r.addr.Load().(string)
}

func (r *router) refresh() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.last) < 50*time.Millisecond {
		return
	}
	r.last = time.Now()
	r.addr.Store(masterAddr(r.client, r.ns, r.broker))
}

// workload is the producers and consumers of one schedule.
type workload struct {
	run         string
	h           *history
	prodClient  *remoting.Client
	consClient  *remoting.Client
	prodRoute   *router
	consRoute   *router
	stopProd    atomic.Bool
	stopCons    atomic.Bool
	prodWG      sync.WaitGroup
	consWG      sync.WaitGroup
	consOffsets [queues]atomic.Int64
}

func startWorkload(run, ns, broker string) *workload {
	w := &workload{run: run, h: newHistory(),
		prodClient: remoting.NewClient(remoting.ClientConfig{ConnectTimeout: 500 * time.Millisecond}),
		consClient: remoting.NewClient(remoting.ClientConfig{ConnectTimeout: 500 * time.Millisecond})}
	w.prodRoute = newRouter(w.prodClient, ns, broker)
	w.consRoute = newRouter(w.consClient, ns, broker)
	for p := 0; p < producers; p++ {
		w.prodWG.Add(1)
		go func() { defer w.prodWG.Done(); w.produce(p) }()
	}
	for q := 0; q < queues; q++ {
		w.consWG.Add(1)
		go func() { defer w.consWG.Done(); w.consume(q) }()
	}
	return w
}

// body is the message of producer p's seq-th send to queue q.
func (w *workload) body(p, q int, seq int64) string {
	return fmt.Sprintf("%s|p%d|q%d|s%07d", w.run, p, q, seq)
}

func (w *workload) produce(p int) {
	var seq [queues]int64
	for i := 0; !w.stopProd.Load(); i++ {
		q := i % queues
		body := w.body(p, q, seq[q])
		for !w.stopProd.Load() {
			addr := w.prodRoute.master()
			start := time.Now()
			if addr != "" {
				w.h.mu.Lock()
				w.h.attempted[body]++
				w.h.mu.Unlock()
				resp, err := w.send(addr, q, body)
				if err == nil && resp.Code == protocol.Success {
					off, _ := strconv.ParseInt(resp.ExtFields.Get("queueOffset"), 10, 64)
					w.h.mu.Lock()
					w.h.acks = append(w.h.acks, ack{body: body, msgID: resp.ExtFields.Get("msgId"), queue: q, queueOffset: off,
						start: start, end: time.Now(), addr: addr})
					w.h.mu.Unlock()
					break
				}
			}
			w.h.mu.Lock()
			w.h.failures++
			w.h.mu.Unlock()
			time.Sleep(50 * time.Millisecond)
			w.prodRoute.refresh()
		}
		seq[q]++
		time.Sleep(sendPause)
	}
}

func (w *workload) send(addr string, q int, body string) (*remoting.RemotingCommand, error) {
	ctx, cancel := context.WithTimeout(context.Background(), sendTimeout)
	defer cancel()
	req := remoting.NewRequest(protocol.SendMessage, remoting.FieldsOf(
		"producerGroup", "chaosProducer",
		"topic", topic,
		"defaultTopic", "TBW102",
		"defaultTopicQueueNums", strconv.Itoa(queues),
		"queueId", strconv.Itoa(q),
		"sysFlag", "0",
		"bornTimestamp", strconv.FormatInt(time.Now().UnixMilli(), 10),
		"flag", "0",
		"properties", "TAGS\x01chaos\x02",
		"reconsumeTimes", "0",
		"unitMode", "false",
		"batch", "false",
	), []byte(body))
	return w.prodClient.InvokeSync(ctx, addr, req, sendTimeout)
}

// consume pulls queue q from the master from offset 0 on, following
// nextBeginOffset as a client does (also backwards, which is recorded).
// Each pull commits the offset consumed so far (the commitOffset flag), as
// the clients do; the schedule watches those committed offsets.
func (w *workload) consume(q int) {
	var offset int64
	for !w.stopCons.Load() {
		addr := w.consRoute.master()
		if addr == "" {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), pullSuspend+sendTimeout)
		req := remoting.NewRequest(protocol.PullMessage, remoting.FieldsOf(
			"consumerGroup", "chaosConsumer",
			"topic", topic,
			"queueId", strconv.Itoa(q),
			"queueOffset", strconv.FormatInt(offset, 10),
			"maxMsgNums", "32",
			"sysFlag", strconv.Itoa(int(protocol.PullFlagSuspend|protocol.PullFlagSubscription|protocol.PullFlagCommitOffset)),
			"commitOffset", strconv.FormatInt(offset, 10),
			"suspendTimeoutMillis", strconv.FormatInt(pullSuspend.Milliseconds(), 10),
			"subscription", "*",
			"subVersion", "0",
			"expressionType", "TAG",
		), nil)
		resp, err := w.consClient.InvokeSync(ctx, addr, req, pullSuspend+sendTimeout)
		cancel()
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			w.consRoute.refresh()
			continue
		}
		next, nerr := strconv.ParseInt(resp.ExtFields.Get("nextBeginOffset"), 10, 64)
		switch resp.Code {
		case protocol.Success:
			msgs, err := store.DecodeMessages(resp.Body, true)
			now := time.Now()
			w.h.mu.Lock()
			for _, m := range msgs {
				w.h.recvs = append(w.h.recvs, recv{queue: q, offset: m.QueueOffset, body: string(m.Body), msgID: m.MsgID, addr: addr, at: now})
			}
			if err != nil {
				w.h.rewinds = append(w.h.rewinds, fmt.Sprintf("q%d@%d from %s: decode: %v", q, offset, addr, err))
			}
			w.h.mu.Unlock()
			switch {
			case nerr == nil && next > offset:
				offset = next
			case len(msgs) > 0:
				offset = msgs[len(msgs)-1].QueueOffset + 1
			}
		case protocol.PullNotFound, protocol.PullRetryImmediately, protocol.PullOffsetMoved:
			if nerr == nil && next != offset {
				if next < offset {
					w.h.mu.Lock()
					w.h.rewinds = append(w.h.rewinds, fmt.Sprintf("q%d: %s answered code %d nextBeginOffset %d < %d", q, addr, resp.Code, next, offset))
					w.h.mu.Unlock()
				}
				offset = next
			}
			if resp.Code != protocol.PullNotFound {
				time.Sleep(20 * time.Millisecond)
			}
		default:
			time.Sleep(100 * time.Millisecond)
			w.consRoute.refresh()
		}
		w.consOffsets[q].Store(offset)
	}
}

// stopProducers stops sending and waits for the producers.
func (w *workload) stopProducers() {
	w.stopProd.Store(true)
	w.prodWG.Wait()
}

// drain waits until every consumer reached max[q], then stops them.
func (w *workload) drain(max [queues]int64, timeout time.Duration) error {
	err := waitFor(timeout, "consumers drained every queue", func() bool {
		for q := 0; q < queues; q++ {
			if w.consOffsets[q].Load() < max[q] {
				return false
			}
		}
		return true
	})
	w.stopCons.Store(true)
	w.consWG.Wait()
	return err
}

func (w *workload) close() {
	w.stopProd.Store(true)
	w.stopCons.Store(true)
	w.prodWG.Wait()
	w.consWG.Wait()
	w.prodClient.Close()
	w.consClient.Close()
}
