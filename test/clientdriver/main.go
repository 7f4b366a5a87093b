// Command clientdriver runs rocketmq-client-go scenarios for the end-to-end
// tests in a separate process. The client library has data races of its own
// (its pull consumer's rebalance and its orderly process queue); the tests
// run under -race, so the scenarios that hit those races run here, in a
// binary the harness builds without the race detector.
//
//	clientdriver pull -ns ADDR -topic T -broker NAME -max 5,7     one JSON line per message, queue by queue from offset 0
//	clientdriver orderly -ns ADDR -topic T -group G -n N           consume N messages orderly; one JSON line per message in consume order
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/rlog"
)

// Message is one consumed message as printed.
type Message struct {
	Queue       int               `json:"queue"`
	Offset      int64             `json:"offset"`
	Body        string            `json:"body"`
	Tags        string            `json:"tags"`
	Keys        string            `json:"keys"`
	Properties  map[string]string `json:"properties"`
	BornHost    string            `json:"bornHost"`
	StoreHost   string            `json:"storeHost"`
	MsgID       string            `json:"msgId"`
	OffsetMsgID string            `json:"offsetMsgId"`
}

func toMessage(m *primitive.MessageExt) Message {
	q := -1
	if m.Queue != nil {
		q = m.Queue.QueueId
	}
	return Message{Queue: q, Offset: m.QueueOffset, Body: string(m.Body), Tags: m.GetTags(), Keys: m.GetKeys(),
		Properties: m.GetProperties(), BornHost: m.BornHost, StoreHost: m.StoreHost, MsgID: m.MsgId, OffsetMsgID: m.OffsetMsgId}
}

func main() {
	rlog.SetLogLevel("error")
	if len(os.Args) < 2 {
		fail("usage: clientdriver pull|orderly [flags]")
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	ns := fs.String("ns", "", "name server")
	topic := fs.String("topic", "", "topic")
	broker := fs.String("broker", "", "broker name (pull)")
	maxList := fs.String("max", "", "max offset per queue, comma-separated (pull)")
	group := fs.String("group", "driverGroup", "consumer group")
	n := fs.Int("n", 0, "messages to consume (orderly)")
	timeout := fs.Duration("timeout", 60*time.Second, "overall timeout")
	_ = fs.Parse(os.Args[2:])
	enc := json.NewEncoder(os.Stdout)
	switch os.Args[1] {
	case "pull":
		pull(enc, *ns, *topic, *broker, *group, *maxList, *timeout)
	case "orderly":
		orderly(enc, *ns, *topic, *group, *n, *timeout)
	default:
		fail("unknown mode " + os.Args[1])
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "clientdriver:", msg)
	os.Exit(1)
}

func instance() string { return fmt.Sprintf("driver-%d-%d", os.Getpid(), time.Now().UnixNano()) }

// pull reads every queue from offset 0 to its max with PullFrom.
func pull(enc *json.Encoder, ns, topic, broker, group, maxList string, timeout time.Duration) {
	pc, err := consumer.NewPullConsumer(consumer.WithNameServer([]string{ns}), consumer.WithGroupName(group), consumer.WithInstance(instance()))
	if err != nil {
		fail(err.Error())
	}
	if err := pc.Subscribe(topic, consumer.MessageSelector{Type: consumer.TAG, Expression: "*"}); err != nil {
		fail(err.Error())
	}
	if err := pc.Start(); err != nil {
		fail(err.Error())
	}
	defer pc.Shutdown()
	deadline := time.Now().Add(timeout)
	for q, s := range strings.Split(maxList, ",") {
		max, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			fail("bad -max")
		}
		mq := &primitive.MessageQueue{Topic: topic, BrokerName: broker, QueueId: q}
		for off := int64(0); off < max; {
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			pr, err := pc.PullFrom(ctx, mq, off, 8)
			cancel()
			if err != nil {
				fail(fmt.Sprintf("PullFrom q%d@%d: %v", q, off, err))
			}
			if pr.Status != primitive.PullFound {
				fail(fmt.Sprintf("PullFrom q%d@%d: status %v", q, off, pr.Status))
			}
			for _, m := range pr.GetMessageExts() {
				msg := toMessage(m)
				msg.Queue = q
				_ = enc.Encode(msg)
			}
			if pr.NextBeginOffset <= off {
				fail(fmt.Sprintf("no progress at q%d@%d", q, off))
			}
			off = pr.NextBeginOffset
		}
	}
}

// orderly consumes n messages with an orderly push consumer.
func orderly(enc *json.Encoder, ns, topic, group string, n int, timeout time.Duration) {
	var mu sync.Mutex
	var got []Message
	done := make(chan struct{})
	pc, err := consumer.NewPushConsumer(consumer.WithNameServer([]string{ns}), consumer.WithGroupName(group),
		consumer.WithInstance(instance()), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset), consumer.WithConsumerOrder(true))
	if err != nil {
		fail(err.Error())
	}
	err = pc.Subscribe(topic, consumer.MessageSelector{Type: consumer.TAG, Expression: "*"},
		func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range msgs {
				got = append(got, toMessage(m))
			}
			if len(got) >= n {
				select {
				case <-done:
				default:
					close(done)
				}
			}
			return consumer.ConsumeSuccess, nil
		})
	if err != nil {
		fail(err.Error())
	}
	if err := pc.Start(); err != nil {
		fail(err.Error())
	}
	select {
	case <-done:
	case <-time.After(timeout):
	}
	mu.Lock()
	for _, m := range got {
		_ = enc.Encode(m)
	}
	mu.Unlock()
	_ = pc.Shutdown()
}
