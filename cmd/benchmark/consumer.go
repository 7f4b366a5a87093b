package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rmqd/rmqd/cmd/benchmark/benchkit"
	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
)

type consumerOpts struct {
	common
	group   string
	batch   int
	suspend time.Duration
	drain   bool
}

// queueStats is one queue puller's counters; the histogram holds the
// end-to-end latency of every message received.
type queueStats struct {
	hist  benchkit.Histogram
	bytes atomic.Uint64
}

func runConsumer(args []string) error {
	var o consumerOpts
	fs := flag.NewFlagSet("consumer", flag.ContinueOnError)
	o.common.register(fs)
	fs.StringVar(&o.group, "g", "benchmark_consumer", "consumer group")
	fs.IntVar(&o.batch, "batch", 32, "maxMsgNums per pull")
	fs.DurationVar(&o.suspend, "suspend", time.Second, "long-polling suspend time of a pull that finds nothing")
	fs.BoolVar(&o.drain, "drain", false, "stop when every queue is caught up (measure draining a backlog); -d still bounds the run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := o.check(); err != nil {
		return err
	}
	if o.group == "" || o.batch <= 0 {
		return fmt.Errorf("-g must be set and --batch > 0")
	}
	stopProfile, err := o.startProfile()
	if err != nil {
		return err
	}
	defer stopProfile()
	res, err := consume(&o)
	if err != nil {
		return err
	}
	return res.print(os.Stdout, o.json)
}

type consumer struct {
	o      *consumerOpts
	client *remoting.Client
	st     remoting.SerializeType
	errs   errorLog
	stop   atomic.Bool
}

func consume(o *consumerOpts) (*Result, error) {
	c := &consumer{o: o, client: remoting.NewClient(remoting.ClientConfig{}), st: serializeType(o.serialize)}
	defer c.client.Close()
	r := newRouter(c.client, o.namesrvs(), o.topic, c.st, o.timeout)
	ctx := context.Background()
	if err := r.waitRoute(ctx, 20*time.Second); err != nil {
		return nil, err
	}
	queues := r.cur.Load().read
	if len(queues) == 0 {
		return nil, fmt.Errorf("topic %s has no readable master queue", o.topic)
	}
	stats := make([]*queueStats, len(queues))
	for i := range stats {
		stats[i] = &queueStats{}
	}
	cpu := startCPU(o.pids)
	stopProgress := startProgress("consume", func() snapshot {
		var s snapshot
		for _, st := range stats {
			s.count += st.hist.Count()
			s.sumUs += st.hist.Sum()
			s.bytes += st.bytes.Load()
		}
		s.errors = c.errs.count()
		return s
	})
	start := time.Now()
	timer := time.AfterFunc(o.duration(), func() { c.stop.Store(true) })
	defer timer.Stop()
	var wg sync.WaitGroup
	for i := range queues {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.pullQueue(&queues[i], stats[i])
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopProgress()

	var all benchkit.Histogram
	var bytes uint64
	for _, st := range stats {
		all.Merge(&st.hist)
		bytes += st.bytes.Load()
	}
	res := &Result{Mode: "consumer", System: "rmqd", Client: "rmqd", Scenario: o.scenario, Flush: o.flush,
		Topic: o.topic, Threads: len(queues), Latency: "end_to_end", DurationSec: elapsed.Seconds(),
		Received: int64(all.Count()), Errors: c.errs.count(), FirstError: c.errs.firstError()}
	if res.Received > 0 {
		res.Size = int(bytes / uint64(res.Received))
	}
	res.MsgsPerSec = float64(res.Received) / res.DurationSec
	res.MBPerSec = float64(bytes) / res.DurationSec / 1e6
	res.fillLatency(&all)
	cpu.finish(res, res.Received)
	return res, nil
}

// startOffset is the group's committed offset of q, or 0.
func (c *consumer) startOffset(q *queueRef) (int64, error) {
	h := protocol.QueryConsumerOffsetRequestHeader{ConsumerGroup: c.o.group, Topic: c.o.topic, QueueID: q.queueID}
	req := &remoting.RemotingCommand{Code: protocol.QueryConsumerOffset, SerializeType: c.st, ExtFields: protocol.EncodeHeader(&h)}
	resp, err := c.client.InvokeSync(context.Background(), q.addr, req, c.o.timeout)
	if err != nil {
		return 0, err
	}
	switch resp.Code {
	case protocol.Success:
		var oh protocol.OffsetResponseHeader
		if err := protocol.DecodeHeader(&resp.ExtFields, &oh); err != nil {
			return 0, err
		}
		return max(oh.Offset, 0), nil
	case protocol.QueryNotFound:
		return 0, nil
	default:
		return 0, fmt.Errorf("query offset: code %d %s", resp.Code, resp.Remark)
	}
}

// pullQueue pulls q until the run ends, committing the consumed offset
// with each pull (the commitOffset flag) and once more at the end.
func (c *consumer) pullQueue(q *queueRef, st *queueStats) {
	offset, err := c.startOffset(q)
	if err != nil {
		c.errs.add("%s q%d: %v", q.brokerName, q.queueID, err)
	}
	committed := int64(-1)
	sysFlag := protocol.PullFlagCommitOffset | protocol.PullFlagSubscription
	if !c.o.drain {
		sysFlag |= protocol.PullFlagSuspend
	}
	ext := protocol.EncodeHeader(&protocol.PullMessageRequestHeader{
		ConsumerGroup: c.o.group, Topic: c.o.topic, QueueID: q.queueID, MaxMsgNums: int32(c.o.batch),
		SysFlag: sysFlag, SuspendTimeoutMillis: c.o.suspend.Milliseconds(), Subscription: "*",
		SubVersion: time.Now().UnixMilli(), ExpressionType: "TAG", BrokerName: q.brokerName,
	})
	req := &remoting.RemotingCommand{Code: protocol.PullMessage, SerializeType: c.st, ExtFields: ext}
	ctx := context.Background()
	onRecord := func(ri benchkit.RecordInfo) {
		st.hist.Record((time.Now().UnixMilli() - ri.BornTimestamp) * 1000)
		st.bytes.Add(uint64(ri.BodyLen))
	}
	for !c.stop.Load() {
		req.ExtFields.Set("queueOffset", strconv.FormatInt(offset, 10))
		req.ExtFields.Set("commitOffset", strconv.FormatInt(offset, 10))
		resp, err := c.client.InvokeSync(ctx, q.addr, req, c.o.suspend+c.o.timeout)
		if err != nil {
			c.errs.add("pull %s q%d: %v", q.brokerName, q.queueID, err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		committed = offset
		var rh protocol.PullMessageResponseHeader
		rh.NextBeginOffset = -1
		_ = protocol.DecodeHeader(&resp.ExtFields, &rh)
		switch resp.Code {
		case protocol.Success:
			if _, err := benchkit.WalkRecords(resp.Body, onRecord); err != nil {
				c.errs.add("pull %s q%d: %v", q.brokerName, q.queueID, err)
			}
			if rh.NextBeginOffset > offset {
				offset = rh.NextBeginOffset
			}
		case protocol.PullNotFound, protocol.PullRetryImmediately, protocol.PullOffsetMoved:
			if rh.NextBeginOffset >= 0 {
				offset = rh.NextBeginOffset
			}
			if c.o.drain && resp.Code == protocol.PullNotFound {
				c.commit(q, offset)
				return
			}
		default:
			c.errs.add("pull %s q%d: code %d %s", q.brokerName, q.queueID, resp.Code, resp.Remark)
			time.Sleep(100 * time.Millisecond)
		}
	}
	if offset != committed {
		c.commit(q, offset)
	}
}

// commit stores offset as the group's consumed offset of q.
func (c *consumer) commit(q *queueRef, offset int64) {
	h := protocol.UpdateConsumerOffsetRequestHeader{ConsumerGroup: c.o.group, Topic: c.o.topic, QueueID: q.queueID, CommitOffset: offset}
	req := &remoting.RemotingCommand{Code: protocol.UpdateConsumerOffset, SerializeType: c.st, ExtFields: protocol.EncodeHeader(&h)}
	resp, err := c.client.InvokeSync(context.Background(), q.addr, req, c.o.timeout)
	if err != nil {
		c.errs.add("commit %s q%d: %v", q.brokerName, q.queueID, err)
	} else if resp.Code != protocol.Success {
		c.errs.add("commit %s q%d: code %d %s", q.brokerName, q.queueID, resp.Code, resp.Remark)
	}
}
