package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/rmqd/rmqd/remoting"
)

// produceGoClient runs the producer threads on one rocketmq-client-go
// DefaultProducer (as an application would: one client instance, many
// goroutines). Each send needs a fresh primitive.Message because the client
// writes properties into it.
func produceGoClient(o *producerOpts) (*Result, error) {
	rlog.SetLogLevel("error")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if o.createTopic {
		client := remoting.NewClient(remoting.ClientConfig{})
		r := newRouter(client, o.namesrvs(), o.topic, serializeType(o.serialize), o.timeout)
		r.cluster = o.cluster
		err := r.createTopic(ctx, o.queues, 20*time.Second)
		client.Close()
		if err != nil {
			return nil, err
		}
	}
	p, err := rocketmq.NewProducer(
		producer.WithNsResolver(primitive.NewPassthroughResolver(o.namesrvs())),
		producer.WithGroupName(o.group),
		producer.WithInstanceName(fmt.Sprintf("benchmark-%d", os.Getpid())),
		producer.WithSendMsgTimeout(o.timeout),
		producer.WithRetry(0),
		producer.WithQueueSelector(producer.NewRoundRobinQueueSelector()),
	)
	if err != nil {
		return nil, fmt.Errorf("rocketmq-client-go producer: %w", err)
	}
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("rocketmq-client-go producer start: %w", err)
	}
	defer func() { _ = p.Shutdown() }()
	body := makeBody(o.size)

	stats := make([]*producerStats, o.threads)
	for i := range stats {
		stats[i] = &producerStats{}
	}
	var errs errorLog
	var stop atomic.Bool
	cpu := startCPU(o.pids)
	stopProgress := startProgress("send", snapOf(stats, &errs, o.size))
	start := time.Now()
	timer := time.AfterFunc(o.duration(), func() { stop.Store(true) })
	defer timer.Stop()
	var wg sync.WaitGroup
	for i := range stats {
		st := stats[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if o.asyncWindow == 0 {
				for !stop.Load() {
					t0 := time.Now()
					r, err := p.SendSync(ctx, primitive.NewMessage(o.topic, body))
					if err != nil || r.Status != primitive.SendOK {
						if err == nil {
							err = fmt.Errorf("status %d", r.Status)
						}
						errs.add("send: %v", err)
						time.Sleep(20 * time.Millisecond)
						continue
					}
					st.hist.Record(time.Since(t0).Microseconds())
				}
				return
			}
			window := make(chan struct{}, o.asyncWindow)
			for !stop.Load() {
				window <- struct{}{}
				t0 := time.Now()
				err := p.SendAsync(ctx, func(_ context.Context, r *primitive.SendResult, err error) {
					if err != nil || r.Status != primitive.SendOK {
						if err == nil {
							err = fmt.Errorf("status %d", r.Status)
						}
						errs.add("send: %v", err)
					} else {
						st.hist.Record(time.Since(t0).Microseconds())
					}
					<-window
				}, primitive.NewMessage(o.topic, body))
				if err != nil {
					errs.add("send: %v", err)
					<-window
					time.Sleep(20 * time.Millisecond)
				}
			}
			deadline := time.After(o.timeout + 2*time.Second)
			for range o.asyncWindow {
				select {
				case window <- struct{}{}:
				case <-deadline:
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopProgress()
	res := newResult(o, "rocketmq-client-go")
	finishProducer(res, stats, &errs, elapsed, o.size)
	cpu.finish(res, res.Sent)
	return res, nil
}
