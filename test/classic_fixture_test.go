package test

// End-to-end tests over a store written by test/classicfixture exactly as a
// classic RocketMQ 4.x broker leaves it (several 64 KiB commitlog files
// ending in BLANK markers, consume queues in several files, optional index
// files, config JSON with unquoted integer keys). bin/broker starts over it
// in classic mode and every old message must be found where a Java broker
// would find it: by queue offset, offset msgId, UNIQ_KEY and key; consumer
// groups resume at their committed offsets; new messages continue the
// queues. This is issue 6's test shape; the DLedger upgrade test reuses the
// fixture.

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
	"github.com/rmqd/rmqd/test/classicfixture"
)

const (
	cfxOrders  = "ClassicOrders"  // 4 queues
	cfxEvents  = "ClassicEvents"  // 2 queues
	cfxDelayed = "ClassicDelayed" // 1 queue, fed by SCHEDULE_TOPIC_XXXX
	cfxFull    = "ClassicFull"    // 1 queue whose consume-queue file is exactly full
	cfxGroupA  = "cgClassicOrders"
	cfxGroupB  = "cgClassicEvents"
	cfxCLSize  = 64 << 10
	cfxCQSize  = 64 * classicfixture.CQUnitSize // 64 units per consume-queue file
	cfxSlots   = 4096
	cfxIndexes = 1000 // entries per index file: the fixture's index rolls
)

var cfxTags = []string{"TagA", "TagB", "", "TagC"}

// cfxSpec is a 4.x store: n messages over ClassicOrders and ClassicEvents
// (several commitlog, consume-queue and index files), committed and pending
// transactions, ClassicFull (one exactly full consume-queue file), delayed
// messages parked in SCHEDULE_TOPIC_XXXX with delayOffset.json, and two
// groups' committed offsets: queues partly, fully and not at all consumed.
func cfxSpec(n int, withIndex, abort bool) classicfixture.Spec {
	spec := classicfixture.Spec{
		CommitLogFileSize:    cfxCLSize,
		ConsumeQueueFileSize: cfxCQSize,
		StoreHost:            "127.0.0.1:10911", // the old broker's address, in every offset msgId
		ClusterName:          "DefaultCluster",
		BrokerName:           "broker-a",
		SystemTopics:         true,
		Topics: []classicfixture.Topic{{Name: cfxOrders, Queues: 4}, {Name: cfxEvents, Queues: 2},
			{Name: cfxDelayed, Queues: 1}, {Name: cfxFull, Queues: 1}},
		Abort:         abort,
		BaseTimestamp: time.Now().Add(-20 * time.Minute).UnixMilli(),
		// Level 1's first message was delivered already (its copy is in
		// ClassicDelayed); the rest of levels 1 and 2 are due.
		DelayOffsets: map[int]int64{1: 1, 2: 0},
	}
	if withIndex {
		spec.Index = &classicfixture.IndexSpec{HashSlotNum: cfxSlots, IndexNum: cfxIndexes}
	}
	count := map[classicfixture.QueueKey]int64{}
	for i := 0; i < n; i++ {
		topic, q := cfxOrders, int32(i%4)
		if i%3 == 2 {
			topic, q = cfxEvents, int32(i%2)
		}
		count[classicfixture.QueueKey{Topic: topic, QueueID: q}]++
		body := fmt.Sprintf("old-%04d-", i) + strings.Repeat(string(rune('a'+i%26)), 150+(i*53)%400)
		spec.Messages = append(spec.Messages, classicfixture.Message{
			Topic: topic, QueueID: q, Body: []byte(body), Tags: cfxTags[i%4],
			Keys:       []string{fmt.Sprintf("order-%04d", i), fmt.Sprintf("cust-%d", i%7)},
			Properties: map[string]string{"seq": strconv.Itoa(i)},
			BornHost:   fmt.Sprintf("10.0.%d.%d:%d", i%3, 1+i%5, 40000+i%11),
		})
	}
	// Committed transactions: half record, committed copy, op record each.
	for i := 0; i < 4; i++ {
		spec.Messages = append(spec.Messages, classicfixture.Message{Topic: cfxEvents, QueueID: int32(i % 2), Transaction: true,
			Body: []byte(fmt.Sprintf("tx-%d", i)), Tags: "TagA", Keys: []string{fmt.Sprintf("tx-key-%d", i)}})
		count[classicfixture.QueueKey{Topic: cfxEvents, QueueID: int32(i % 2)}]++
	}
	// A transaction nobody ended: only its half record.
	spec.Messages = append(spec.Messages, classicfixture.Message{Topic: cfxEvents, TransactionPending: true,
		Body: []byte("tx-pending"), Tags: "TagA", Keys: []string{"tx-key-pending"}})
	for i := 0; i < cfxCQSize/classicfixture.CQUnitSize; i++ {
		spec.Messages = append(spec.Messages, classicfixture.Message{Topic: cfxFull, Body: []byte(fmt.Sprintf("full-%d", i)),
			Tags: "TagA", Keys: []string{fmt.Sprintf("full-key-%d", i)}})
	}
	for i, level := range []int{1, 1, 2, 1, 2} {
		spec.Messages = append(spec.Messages, classicfixture.Message{Topic: cfxDelayed, DelayLevel: level,
			Body: []byte(fmt.Sprintf("delayed-%d", i)), Keys: []string{fmt.Sprintf("delayed-key-%d", i)}})
	}
	spec.Messages = append(spec.Messages, classicfixture.Message{Topic: cfxDelayed, Body: []byte("delayed-0"),
		Keys: []string{"delayed-key-0"}})
	o := func(topic string, q int32) int64 { return count[classicfixture.QueueKey{Topic: topic, QueueID: q}] }
	spec.ConsumerOffsets = []classicfixture.ConsumerOffset{
		{Group: cfxGroupA, Topic: cfxOrders, Offsets: map[int32]int64{0: 10, 1: 0, 2: o(cfxOrders, 2), 3: o(cfxOrders, 3) - 7}},
		{Group: cfxGroupB, Topic: cfxEvents, Offsets: map[int32]int64{0: 5, 1: o(cfxEvents, 1) / 2}},
	}
	return spec
}

// startClassicFixture writes spec into a fresh store directory and starts a
// name server and a classic-mode broker over it (file sizes as the fixture's).
func startClassicFixture(t *testing.T, spec classicfixture.Spec, extra ...map[string]string) (*cluster, classicfixture.Manifest) {
	t.Helper()
	storeDir := filepath.Join(t.TempDir(), "store")
	m, err := classicfixture.Write(storeDir, spec)
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	if len(m.CommitLogFiles) < 3 {
		t.Fatalf("fixture has %d commitlog files, want several", len(m.CommitLogFiles))
	}
	over := map[string]string{
		"storePathRootDir":           storeDir,
		"enableDLegerCommitLog":      "false",
		"mappedFileSizeCommitLog":    strconv.FormatInt(spec.CommitLogFileSize, 10),
		"mappedFileSizeConsumeQueue": strconv.FormatInt(spec.ConsumeQueueFileSize, 10),
	}
	if ix := spec.Index; ix != nil && ix.HashSlotNum > 0 {
		// Small index files; without sizes the fixture and the broker both
		// use Java's (5 000 000 slots, 20 000 000 entries).
		over["maxHashSlotNum"] = strconv.Itoa(int(ix.HashSlotNum))
		over["maxIndexNum"] = strconv.Itoa(int(ix.IndexNum))
	}
	for _, e := range extra {
		for k, v := range e {
			over[k] = v
		}
	}
	return startCluster(t, over), m
}

type cfxPull struct {
	code                       int16
	next, minOffset, maxOffset int64
	records                    [][]byte
}

// cfxSplit cuts a pull/query body into records by TOTALSIZE.
func cfxSplit(t *testing.T, body []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for len(body) > 0 {
		if len(body) < 4 {
			t.Fatalf("body tail of %d bytes", len(body))
		}
		n := int(binary.BigEndian.Uint32(body))
		if n < 91 || n > len(body) {
			t.Fatalf("record of size %d in a body of %d bytes", n, len(body))
		}
		out = append(out, body[:n])
		body = body[n:]
	}
	return out
}

func (c *cluster) cfxPullOnce(t *testing.T, topic string, q int32, offset int64, max int, sub string) cfxPull {
	t.Helper()
	resp := c.brokerRequest(protocol.PullMessage, remoting.FieldsOf(
		"consumerGroup", "cfxRawPuller",
		"topic", topic,
		"queueId", strconv.Itoa(int(q)),
		"queueOffset", strconv.FormatInt(offset, 10),
		"maxMsgNums", strconv.Itoa(max),
		"sysFlag", "4",
		"commitOffset", "0",
		"suspendTimeoutMillis", "0",
		"subscription", sub,
		"subVersion", "0",
		"expressionType", "TAG",
	), nil)
	p := cfxPull{code: resp.Code}
	p.next, _ = strconv.ParseInt(resp.ExtFields.Get("nextBeginOffset"), 10, 64)
	p.minOffset, _ = strconv.ParseInt(resp.ExtFields.Get("minOffset"), 10, 64)
	p.maxOffset, _ = strconv.ParseInt(resp.ExtFields.Get("maxOffset"), 10, 64)
	if resp.Code == protocol.Success {
		p.records = cfxSplit(t, resp.Body)
	}
	return p
}

// cfxPullRange pulls [from, to) of one queue with subscription sub and
// returns the records in order (none at or after to).
func (c *cluster) cfxPullRange(t *testing.T, topic string, q int32, from, to int64, sub string) [][]byte {
	t.Helper()
	var out [][]byte
	for off := from; off < to; {
		p := c.cfxPullOnce(t, topic, q, off, 32, sub)
		switch p.code {
		case protocol.Success, protocol.PullRetryImmediately, protocol.PullNotFound:
		default:
			t.Fatalf("pull %s:%d@%d (%s): code %d", topic, q, off, sub, p.code)
		}
		for _, r := range p.records {
			if cfxQueueOffset(r) < to {
				out = append(out, r)
			}
		}
		if p.next <= off {
			t.Fatalf("pull %s:%d@%d (%s): no progress (code %d next %d)", topic, q, off, sub, p.code, p.next)
		}
		off = p.next
	}
	return out
}

func cfxQueueOffset(rec []byte) int64 { return int64(binary.BigEndian.Uint64(rec[20:])) }

// checkOldMessages proves every message of the fixture is where a Java
// broker would serve it.
func (c *cluster) checkOldMessages(t *testing.T, m classicfixture.Manifest) {
	t.Helper()
	// 1. PULL_MESSAGE: each queue from 0 returns exactly the old records,
	// byte for byte, at their old queue offsets; min/max offsets match.
	for k, max := range m.QueueMaxOffsets {
		min := m.QueueMinOffsets[k]
		want := m.ByQueue(k.Topic, k.QueueID)[min:]
		got := c.cfxPullRange(t, k.Topic, k.QueueID, min, max, "*")
		if len(got) != len(want) {
			t.Fatalf("%s:%d: pulled %d old messages, fixture has %d", k.Topic, k.QueueID, len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i].Bytes) {
				t.Fatalf("%s:%d offset %d: pulled record differs from the stored one", k.Topic, k.QueueID, min+int64(i))
			}
		}
		// A pull straight at one old offset (the last) starts there.
		p := c.cfxPullOnce(t, k.Topic, k.QueueID, max-1, 1, "*")
		if max == min {
			continue
		}
		if p.code != protocol.Success || len(p.records) != 1 || cfxQueueOffset(p.records[0]) != max-1 || p.minOffset != min || p.maxOffset < max {
			t.Fatalf("%s:%d pull at %d: code %d, %d records, min %d max %d", k.Topic, k.QueueID, max-1, p.code, len(p.records), p.minOffset, p.maxOffset)
		}
	}
	// 2. VIEW_MESSAGE_BY_ID with the commitlog offset of every old offset msgId.
	for _, r := range m.Messages {
		if r.Expired {
			continue
		}
		phy, err := strconv.ParseInt(r.OffsetMsgID[len(r.OffsetMsgID)-16:], 16, 64)
		if err != nil || phy != r.PhysicalOffset {
			t.Fatalf("offset msgId %s: %d %v", r.OffsetMsgID, phy, err)
		}
		resp := c.brokerRequest(protocol.ViewMessageByID, remoting.FieldsOf("offset", strconv.FormatInt(phy, 10)), nil)
		if resp.Code != protocol.Success || !bytes.Equal(resp.Body, r.Bytes) {
			t.Fatalf("VIEW_MESSAGE_BY_ID %s (offset %d): code %d %q, body %d bytes", r.OffsetMsgID, phy, resp.Code, resp.Remark, len(resp.Body))
		}
	}
	// 3. QUERY_MESSAGE by UNIQ_KEY and by each key.
	begin := strconv.FormatInt(m.Messages[0].StoreTimestamp-3600_000, 10)
	end := strconv.FormatInt(time.Now().UnixMilli()+3600_000, 10)
	query := func(topic, key string, unique bool) *remoting.RemotingCommand {
		ext := remoting.FieldsOf("topic", topic, "key", key, "maxNum", "64", "beginTimestamp", begin, "endTimestamp", end)
		if unique {
			ext.Set("_UNIQUE_KEY_QUERY", "true")
		}
		return c.brokerRequest(protocol.QueryMessage, ext, nil)
	}
	has := func(resp *remoting.RemotingCommand, r classicfixture.Record) bool {
		if resp.Code != protocol.Success {
			return false
		}
		for _, b := range cfxSplit(t, resp.Body) {
			if bytes.Equal(b, r.Bytes) {
				return true
			}
		}
		return false
	}
	// The index may be rebuilt in the background: wait for the last message's keys.
	last := m.Messages[len(m.Messages)-1]
	eventually(t, 20*time.Second, "index covers the old messages", func() bool {
		return (len(last.Keys) == 0 || has(query(last.Topic, last.Keys[0], false), last)) &&
			(last.UniqKey == "" || has(query(last.Topic, last.UniqKey, true), last))
	})
	for _, r := range m.Messages {
		if r.Expired {
			continue
		}
		if r.UniqKey != "" {
			if resp := query(r.Topic, r.UniqKey, true); !has(resp, r) {
				t.Fatalf("QUERY_MESSAGE by UNIQ_KEY %s#%s: code %d %q", r.Topic, r.UniqKey, resp.Code, resp.Remark)
			}
		}
		if len(r.Keys) == 0 {
			continue
		}
		if resp := query(r.Topic, r.Keys[0], false); !has(resp, r) {
			t.Fatalf("QUERY_MESSAGE by key %s#%s: code %d %q", r.Topic, r.Keys[0], resp.Code, resp.Remark)
		}
	}
	// The index's time bounds (entry time = file begin + timeDiff seconds):
	// a window around a record's store time finds it, one after it does not.
	for i, r := range m.Messages {
		if r.Expired || len(r.Keys) == 0 || i%25 != 0 {
			continue
		}
		window := func(from, to int64) *remoting.RemotingCommand {
			return c.brokerRequest(protocol.QueryMessage, remoting.FieldsOf(
				"topic", r.Topic,
				"key", r.Keys[0],
				"maxNum", "32",
				"beginTimestamp", strconv.FormatInt(from, 10),
				"endTimestamp", strconv.FormatInt(to, 10),
			), nil)
		}
		if resp := window(r.StoreTimestamp-2000, r.StoreTimestamp+2000); !has(resp, r) {
			t.Fatalf("QUERY_MESSAGE %s#%s in [store time ± 2 s]: code %d", r.Topic, r.Keys[0], resp.Code)
		}
		if resp := window(r.StoreTimestamp+7200_000, r.StoreTimestamp+10800_000); has(resp, r) {
			t.Fatalf("QUERY_MESSAGE %s#%s found in a window 2-3 h after its store time", r.Topic, r.Keys[0])
		}
	}
	// A shared key returns only records carrying it, in that topic.
	if _, ok := m.QueueMaxOffsets[classicfixture.QueueKey{Topic: cfxOrders}]; ok {
		resp := query(cfxOrders, "cust-3", false)
		if resp.Code != protocol.Success {
			t.Fatalf("query cust-3: code %d", resp.Code)
		}
		for _, b := range cfxSplit(t, resp.Body) {
			if !bytes.Contains(b, []byte("KEYS\x01")) || !bytes.Contains(b, []byte(" cust-3\x02")) || !bytes.Contains(b, []byte(cfxOrders)) {
				t.Fatalf("query cust-3 returned a record without that key: %q", b)
			}
		}
	}

	// SEARCH_OFFSET_BY_TIMESTAMP at an old record's store time finds it
	// (the store time is read from the record: after a 20-byte born host
	// for IPv6), and GET_EARLIEST_MSG_STORETIME is the first kept record's.
	for k := range m.QueueMaxOffsets {
		min := m.QueueMinOffsets[k]
		recs := m.ByQueue(k.Topic, k.QueueID)
		if int64(len(recs)) == min {
			continue
		}
		ext := remoting.FieldsOf("topic", k.Topic, "queueId", strconv.Itoa(int(k.QueueID)))
		r := c.brokerRequest(protocol.GetEarliestMsgStoretime, ext, nil)
		if ts, err := strconv.ParseInt(r.ExtFields.Get("timestamp"), 10, 64); err != nil || ts != recs[min].StoreTimestamp {
			t.Fatalf("GET_EARLIEST_MSG_STORETIME %s:%d = %q (code %d), want %d", k.Topic, k.QueueID, r.ExtFields.Get("timestamp"), r.Code, recs[min].StoreTimestamp)
		}
		for _, rec := range recs[min:] {
			if rec.QueueOffset%5 != 0 && rec.QueueOffset != int64(len(recs))-1 {
				continue
			}
			ext.Set("timestamp", strconv.FormatInt(rec.StoreTimestamp, 10))
			r := c.brokerRequest(protocol.SearchOffsetByTimestamp, ext, nil)
			if off, err := strconv.ParseInt(r.ExtFields.Get("offset"), 10, 64); err != nil || off != rec.QueueOffset {
				t.Fatalf("SEARCH_OFFSET_BY_TIMESTAMP %s:%d at %d = %q (code %d), want %d", k.Topic, k.QueueID, rec.StoreTimestamp,
					r.ExtFields.Get("offset"), r.Code, rec.QueueOffset)
			}
		}
	}

	// 4. Tag filters over the old consume-queue tag hashes.
	for k, max := range m.QueueMaxOffsets {
		if k.Topic == classicfixture.ScheduleTopic {
			continue // tagsCode is the delivery time there
		}
		for _, sub := range []string{"TagA", "TagB || TagC"} {
			var want [][]byte
			for _, r := range m.ByQueue(k.Topic, k.QueueID) {
				if !r.Expired && r.Tags != "" && strings.Contains(" "+strings.ReplaceAll(sub, "||", " ")+" ", " "+r.Tags+" ") {
					want = append(want, r.Bytes)
				}
			}
			got := c.cfxPullRange(t, k.Topic, k.QueueID, m.QueueMinOffsets[k], max, sub)
			if len(got) != len(want) {
				t.Fatalf("%s:%d %q: %d messages, want %d", k.Topic, k.QueueID, sub, len(got), len(want))
			}
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("%s:%d %q: message %d differs", k.Topic, k.QueueID, sub, i)
				}
			}
		}
	}
}

// checkDelayedDelivered: the schedule service resumes at the levels' old
// delay offsets: every parked message not yet delivered reaches
// ClassicDelayed once (after the copy delivered before the stop), with the
// UNIQ_KEY it had.
func (c *cluster) checkDelayedDelivered(t *testing.T, m classicfixture.Manifest) {
	t.Helper()
	old := m.QueueMaxOffsets[classicfixture.QueueKey{Topic: cfxDelayed}]
	want := map[string]string{} // body -> UNIQ_KEY
	parked := 0
	for _, r := range m.Messages {
		if r.RealTopic == cfxDelayed {
			parked++
			if string(r.Body) != "delayed-0" {
				want[string(r.Body)] = r.UniqKey
			}
		}
	}
	if old != 1 || parked != 5 {
		t.Fatalf("fixture: %d delivered, %d parked", old, parked)
	}
	total := old + int64(len(want))
	eventually(t, 20*time.Second, "delayed messages delivered", func() bool { return c.maxOffset(t, cfxDelayed, 0) >= total })
	time.Sleep(300 * time.Millisecond)
	if max := c.maxOffset(t, cfxDelayed, 0); max != total {
		t.Fatalf("%s has %d messages, want %d (a parked message delivered twice?)", cfxDelayed, max, total)
	}
	for _, rec := range c.cfxPullRange(t, cfxDelayed, 0, old, total, "*") {
		body := rec[88 : 88+binary.BigEndian.Uint32(rec[84:])]
		uniq, ok := want[string(body)]
		if !ok || !bytes.Contains(rec, []byte("UNIQ_KEY\x01"+uniq+"\x02")) {
			t.Fatalf("delivered %q: not an undelivered parked message with its UNIQ_KEY %q", body, uniq)
		}
		delete(want, string(body))
	}
}

// cfxCheckIndexContinued: the broker loaded the fixture's only index file
// and added the new messages' keys to it (its indexCount grew past what the
// fixture wrote) instead of ignoring it and starting another.
func cfxCheckIndexContinued(t *testing.T, m classicfixture.Manifest) {
	t.Helper()
	if len(m.IndexFiles) != 1 {
		t.Fatalf("fixture wrote %d index files, the check wants one", len(m.IndexFiles))
	}
	entries := int64(1) // entry 0 is never used
	for _, r := range m.Messages {
		entries += int64(len(r.Keys))
		if r.UniqKey != "" {
			entries++
		}
	}
	name := m.IndexFiles[0]
	names, err := os.ReadDir(filepath.Join(m.Dir, "index"))
	if err != nil || len(names) != 1 || names[0].Name() != name {
		t.Fatalf("index dir: %v (%v); the fixture wrote %s", names, err, name)
	}
	f, err := os.Open(filepath.Join(m.Dir, "index", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var h [40]byte
	if _, err := f.ReadAt(h[:], 0); err != nil {
		t.Fatal(err)
	}
	if count := int64(binary.BigEndian.Uint32(h[36:])); count <= entries {
		t.Fatalf("index %s: indexCount %d, the fixture wrote %d: the new keys did not go into it", name, count, entries)
	}
}

// checkCommittedOffsets: QUERY_CONSUMER_OFFSET returns the fixture's offsets.
func (c *cluster) checkCommittedOffsets(t *testing.T, m classicfixture.Manifest) {
	t.Helper()
	for _, co := range m.ConsumerOffsets {
		for q, want := range co.Offsets {
			r := c.brokerRequest(protocol.QueryConsumerOffset, remoting.FieldsOf("consumerGroup", co.Group, "topic", co.Topic, "queueId", strconv.Itoa(int(q))), nil)
			if got, err := strconv.ParseInt(r.ExtFields.Get("offset"), 10, 64); r.Code != protocol.Success || err != nil || got != want {
				t.Fatalf("QUERY_CONSUMER_OFFSET %s %s:%d: code %d offset %q, want %d", co.Group, co.Topic, q, r.Code, r.ExtFields.Get("offset"), want)
			}
		}
	}
}

// cfxSendNew sends to each of the first queues of topic perQueue of topic perQueue new messages (explicit queues)
// and checks each continues its queue's offsets after the old ones and lands
// after the old commitlog. It returns the new messages' bodies by queue.
func (c *cluster) cfxSendNew(t *testing.T, m classicfixture.Manifest, topic string, queues, perQueue int, tag string) map[int32][]string {
	t.Helper()
	p := c.newProducer(t, producer.WithQueueSelector(producer.NewManualQueueSelector()))
	out := map[int32][]string{}
	for q := int32(0); q < int32(queues); q++ {
		base := m.QueueMaxOffsets[classicfixture.QueueKey{Topic: topic, QueueID: q}]
		for i := 0; i < perQueue; i++ {
			body := fmt.Sprintf("new-%s-%d-%d-%d", topic, q, i, time.Now().UnixNano())
			msg := primitive.NewMessage(topic, []byte(body)).WithTag(tag).WithKeys([]string{"newkey-" + body})
			msg.Queue = &primitive.MessageQueue{Topic: topic, BrokerName: c.brokerName, QueueId: int(q)}
			var res *primitive.SendResult
			var err error
			eventually(t, 10*time.Second, "send to "+topic, func() bool {
				res, err = p.SendSync(context.Background(), msg)
				return err == nil && res.Status == primitive.SendOK
			})
			want := base + int64(i)
			if res.QueueOffset != want || res.MessageQueue.QueueId != int(q) {
				t.Fatalf("new message %d to %s:%d got queue offset %d (queue %d), want %d", i, topic, q, res.QueueOffset, res.MessageQueue.QueueId, want)
			}
			phy, err := strconv.ParseInt(res.OffsetMsgID[len(res.OffsetMsgID)-16:], 16, 64)
			if err != nil || phy < m.MaxPhyOffset {
				t.Fatalf("new message at commitlog offset %d, the old log ends at %d (%v)", phy, m.MaxPhyOffset, err)
			}
			out[q] = append(out[q], body)
		}
		// The send is answered before the dispatcher writes the unit (as in
		// Java): wait until the queue shows them.
		eventually(t, 10*time.Second, fmt.Sprintf("%s:%d dispatched", topic, q), func() bool {
			return c.maxOffset(t, topic, int(q)) >= base+int64(perQueue)
		})
	}
	return out
}

// cfxConsume starts a push consumer (rocketmq-client-go) of group on topic
// with expression expr and collects what it gets.
func (c *cluster) cfxConsume(t *testing.T, group, topic, expr string) *cfxCollector {
	t.Helper()
	col := &cfxCollector{got: map[string]*primitive.MessageExt{}}
	pc, err := consumer.NewPushConsumer(
		consumer.WithNameServer([]string{c.ns}),
		consumer.WithGroupName(group),
		consumer.WithInstance(uniqueInstance("cfx")),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset), // ignored: the group has offsets
	)
	if err != nil {
		t.Fatalf("push consumer: %v", err)
	}
	err = pc.Subscribe(topic, consumer.MessageSelector{Type: consumer.TAG, Expression: expr},
		func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			col.mu.Lock()
			defer col.mu.Unlock()
			for _, m := range msgs {
				k := fmt.Sprintf("%s/%d/%d", m.Queue.Topic, m.Queue.QueueId, m.QueueOffset)
				if _, dup := col.got[k]; dup {
					col.dups++
				}
				col.got[k] = m
			}
			return consumer.ConsumeSuccess, nil
		})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if err := pc.Start(); err != nil {
		t.Fatalf("push consumer start: %v", err)
	}
	var once sync.Once
	col.stop = func() { once.Do(func() { _ = pc.Shutdown() }) }
	t.Cleanup(col.stop)
	return col
}

type cfxCollector struct {
	mu   sync.Mutex
	got  map[string]*primitive.MessageExt // "topic/queue/offset" (the queue's topic: %RETRY%... for retries)
	dups int
	stop func() // shuts the consumer down (it persists its offsets)
}

func (c *cfxCollector) snapshot() map[string]*primitive.MessageExt {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]*primitive.MessageExt, len(c.got))
	for k, v := range c.got {
		out[k] = v
	}
	return out
}

// cfxCheckResume: a consumer of group gets exactly the old messages at or
// after the committed offsets of each of its topics (its %RETRY% topic
// too; tags filter topic only) plus the new ones, never one below a
// committed offset, with the msgIds the old broker gave them. A committed
// offset below a queue's minimum (expired) resumes at the minimum.
func cfxCheckResume(t *testing.T, col *cfxCollector, m classicfixture.Manifest, group, topic string, tags map[string]bool,
	newBodies map[int32][]string) {
	t.Helper()
	want := map[string]string{} // topic/queue/offset -> body
	for _, co := range m.ConsumerOffsets {
		if co.Group != group {
			continue
		}
		for _, r := range m.Messages {
			from := max(co.Offsets[r.QueueID], m.QueueMinOffsets[classicfixture.QueueKey{Topic: r.Topic, QueueID: r.QueueID}])
			if r.Topic == co.Topic && r.QueueOffset >= from && (tags == nil || r.Topic != topic || tags[r.Tags]) {
				want[fmt.Sprintf("%s/%d/%d", r.Topic, r.QueueID, r.QueueOffset)] = string(r.Body)
			}
		}
	}
	for q, bodies := range newBodies {
		base := m.QueueMaxOffsets[classicfixture.QueueKey{Topic: topic, QueueID: q}]
		for i, b := range bodies {
			want[fmt.Sprintf("%s/%d/%d", topic, q, base+int64(i))] = b
		}
	}
	// 45 s: a queue whose committed offset expired gets OFFSET_MOVED; the
	// client sleeps 10 s, then waits for its next rebalance (20 s).
	eventually(t, 45*time.Second, fmt.Sprintf("%s consumes %d messages", group, len(want)), func() bool {
		got := col.snapshot()
		for k := range want {
			if got[k] == nil {
				return false
			}
		}
		return true
	})
	time.Sleep(500 * time.Millisecond) // anything extra would arrive with the rest
	byPhy := map[int64]classicfixture.Record{}
	for _, r := range m.Messages {
		byPhy[r.PhysicalOffset] = r
	}
	for k, msg := range col.snapshot() {
		body, ok := want[k]
		if !ok {
			t.Fatalf("%s got %s (%q) below its committed offset or outside its filter", group, k, msg.Body)
		}
		if string(msg.Body) != body {
			t.Fatalf("%s at %s: body %q, want %q", group, k, msg.Body, body)
		}
		r, old := byPhy[msg.CommitLogOffset]
		if !old || string(r.Body) != body {
			continue // a new message
		}
		wantID := r.UniqKey
		if wantID == "" {
			wantID = r.OffsetMsgID // the client's msgId without UNIQ_KEY
		}
		if msg.OffsetMsgId != r.OffsetMsgID || msg.MsgId != wantID || msg.GetKeys() != strings.Join(r.Keys, " ") || msg.GetTags() != r.Tags {
			t.Fatalf("%s at %s: msgId %s offsetMsgId %s keys %q tags %q; fixture %s %s %v %q", group, k, msg.MsgId, msg.OffsetMsgId,
				msg.GetKeys(), msg.GetTags(), r.UniqKey, r.OffsetMsgID, r.Keys, r.Tags)
		}
		if rt := r.Properties["RETRY_TOPIC"]; rt != "" && msg.Topic != rt {
			t.Fatalf("%s at %s: retried message delivered as topic %s, want %s", group, k, msg.Topic, rt)
		}
	}
}

// TestClassicFixtureCleanStore: a cleanly stopped 4.x store with its index
// files; everything old is served, groups resume, new messages continue the
// queues, and all of it survives a restart.
func TestClassicFixtureCleanStore(t *testing.T) {
	t.Parallel()
	c, m := startClassicFixture(t, cfxSpec(600, true, false),
		map[string]string{"transactionCheckInterval": "300", "transactionTimeOut": "500"})
	if len(m.IndexFiles) < 2 {
		t.Fatalf("fixture wrote %d index files, want a roll", len(m.IndexFiles))
	}
	c.checkCommittedOffsets(t, m)
	c.checkOldMessages(t, m)
	c.checkDelayedDelivered(t, m)

	newOrders := c.cfxSendNew(t, m, cfxOrders, 4, 3, "TagA")
	newEvents := c.cfxSendNew(t, m, cfxEvents, 2, 2, "TagB")
	// ClassicFull's only consume-queue file is full: the next unit opens a new one.
	full := m.QueueMaxOffsets[classicfixture.QueueKey{Topic: cfxFull}]
	newFull := c.cfxSendNew(t, m, cfxFull, 1, 2, "TagA")
	if got := c.cfxPullRange(t, cfxFull, 0, full-1, full+2, "*"); len(got) != 3 || !bytes.Contains(got[2], []byte(newFull[0][1])) {
		t.Fatalf("%s across its full consume-queue file: %d records", cfxFull, len(got))
	}
	colA := c.cfxConsume(t, cfxGroupA, cfxOrders, "*")
	colB := c.cfxConsume(t, cfxGroupB, cfxEvents, "TagA || TagB")
	cfxCheckResume(t, colA, m, cfxGroupA, cfxOrders, nil, newOrders)
	cfxCheckResume(t, colB, m, cfxGroupB, cfxEvents, map[string]bool{"TagA": true, "TagB": true}, newEvents)
	c.checkTransactionCheck(t, m)
}

// checkTransactionCheck: the check-back service reads the old half and op
// queues as Java wrote them: the committed transactions (named by op
// records) are done, only the pending one is re-appended for a check.
func (c *cluster) checkTransactionCheck(t *testing.T, m classicfixture.Manifest) {
	t.Helper()
	old := m.QueueMaxOffsets[classicfixture.QueueKey{Topic: classicfixture.TransHalfTopic}]
	var pending classicfixture.Record
	for _, r := range m.ByQueue(classicfixture.TransHalfTopic, 0) {
		if string(r.Body) == "tx-pending" {
			pending = r
		}
	}
	if old != 5 || pending.UniqKey == "" {
		t.Fatalf("fixture: %d half records, pending %+v", old, pending)
	}
	eventually(t, 15*time.Second, "the pending half message re-appended for a check", func() bool {
		return c.maxOffset(t, classicfixture.TransHalfTopic, 0) > old
	})
	max := c.maxOffset(t, classicfixture.TransHalfTopic, 0)
	for _, rec := range c.cfxPullRange(t, classicfixture.TransHalfTopic, 0, old, max, "*") {
		if !bytes.Contains(rec, []byte("UNIQ_KEY\x01"+pending.UniqKey+"\x02")) {
			t.Fatalf("re-appended half record is not the pending transaction's: %q", rec)
		}
	}
}

// TestClassicFixtureUndispatchedTail: a 4.x store after a crash while the
// dispatch lagged: the last records have no consume-queue units and no
// index entries, the checkpoint's logics/index times are older. The broker
// re-dispatches them (units at their queue offsets, keys indexed) and new
// messages get offsets after them, never theirs.
func TestClassicFixtureUndispatchedTail(t *testing.T) {
	t.Parallel()
	spec := cfxSpec(400, true, true)
	spec.UndispatchedTail = 150 // the tail of the main messages, ClassicFull and the delayed ones
	c, m := startClassicFixture(t, spec)
	if !m.Messages[len(m.Messages)-150].Undispatched || m.Messages[len(m.Messages)-151].Undispatched {
		t.Fatal("fixture: undispatched tail")
	}
	c.checkCommittedOffsets(t, m)
	c.checkOldMessages(t, m)
	c.checkDelayedDelivered(t, m)
	c.cfxSendNew(t, m, cfxOrders, 4, 2, "TagA")
	c.cfxSendNew(t, m, cfxFull, 1, 1, "TagA")
}

// TestClassicFixtureAbortNoIndex: a 4.x store left by a crash (abort file)
// and without index files: the broker recovers in full, rebuilds the key
// index from the commitlog and serves everything; new messages continue the
// queues; all of it survives a kill -9 of our broker.
func TestClassicFixtureAbortNoIndex(t *testing.T) {
	t.Parallel()
	c, m := startClassicFixture(t, cfxSpec(400, false, true))
	c.checkCommittedOffsets(t, m)
	c.checkOldMessages(t, m)
	c.checkDelayedDelivered(t, m)
	newOrders := c.cfxSendNew(t, m, cfxOrders, 4, 2, "TagC")
	checkNew := func() {
		t.Helper()
		for q, bodies := range newOrders {
			base := m.QueueMaxOffsets[classicfixture.QueueKey{Topic: cfxOrders, QueueID: q}]
			got := c.cfxPullRange(t, cfxOrders, q, base, base+int64(len(bodies)), "*")
			if len(got) != len(bodies) {
				t.Fatalf("queue %d: pulled %d new messages, want %d", q, len(got), len(bodies))
			}
			for i, rec := range got {
				if !bytes.Contains(rec, []byte(bodies[i])) {
					t.Fatalf("queue %d offset %d: not the new message %q", q, base+int64(i), bodies[i])
				}
			}
		}
	}
	checkNew()
	// kill -9 of our broker over the old store, then a restart: old and new
	// messages, committed offsets and the rebuilt index are all still there.
	c.killBroker()
	c.restartBrokerOnNewPort()
	c.checkCommittedOffsets(t, m)
	c.checkOldMessages(t, m)
	checkNew()
	// The next message of queue 0 follows the two sent before the kill.
	after := m
	after.QueueMaxOffsets = map[classicfixture.QueueKey]int64{}
	for k, v := range m.QueueMaxOffsets {
		if k.Topic == cfxOrders {
			v += int64(len(newOrders[k.QueueID]))
		}
		after.QueueMaxOffsets[k] = v
	}
	c.cfxSendNew(t, after, cfxOrders, 1, 1, "TagC")
}

// TestClassicFixtureExpiredHead: a long-running 4.x store, stopped
// uncleanly, whose retention removed the oldest commitlog files,
// consume-queue files and index files:
// the commitlog starts at a non-zero offset, queues at non-zero minimum
// offsets. Everything kept is served; expired offsets are not; a group
// whose committed offset expired resumes at the queue's minimum.
func TestClassicFixtureExpiredHead(t *testing.T) {
	t.Parallel()
	spec := cfxSpec(600, true, true) // and an unclean stop
	spec.ExpiredCommitLogFiles = 2
	spec.ConsumeQueueFileSize = 16 * classicfixture.CQUnitSize
	c, m := startClassicFixture(t, spec)
	if m.MinPhyOffset != 2*cfxCLSize {
		t.Fatalf("fixture min offset %d", m.MinPhyOffset)
	}
	belowMin := false
	for _, co := range m.ConsumerOffsets {
		for q, off := range co.Offsets {
			belowMin = belowMin || off < m.QueueMinOffsets[classicfixture.QueueKey{Topic: co.Topic, QueueID: q}]
		}
	}
	if !belowMin {
		t.Fatal("no committed offset below a queue's minimum: the test would not cover it")
	}
	c.checkCommittedOffsets(t, m)
	c.checkOldMessages(t, m)
	for k, min := range m.QueueMinOffsets {
		r := c.brokerRequest(protocol.GetMinOffset, remoting.FieldsOf("topic", k.Topic, "queueId", strconv.Itoa(int(k.QueueID))), nil)
		if got, err := strconv.ParseInt(r.ExtFields.Get("offset"), 10, 64); err != nil || got != min {
			t.Fatalf("GET_MIN_OFFSET %s:%d = %q (code %d), want %d", k.Topic, k.QueueID, r.ExtFields.Get("offset"), r.Code, min)
		}
	}
	// A pull below a queue's minimum: PULL_OFFSET_MOVED to the minimum, as
	// a Java master answers (OFFSET_TOO_SMALL).
	for k, min := range m.QueueMinOffsets {
		if min == 0 {
			continue
		}
		p := c.cfxPullOnce(t, k.Topic, k.QueueID, 0, 32, "*")
		if p.code != protocol.PullOffsetMoved || p.next != min || len(p.records) != 0 {
			t.Fatalf("pull %s:%d@0 below min %d: code %d next %d, %d records", k.Topic, k.QueueID, min, p.code, p.next, len(p.records))
		}
	}
	for _, r := range m.Messages {
		if r.Expired {
			resp := c.brokerRequest(protocol.ViewMessageByID, remoting.FieldsOf("offset", strconv.FormatInt(r.PhysicalOffset, 10)), nil)
			if resp.Code == protocol.Success {
				t.Fatalf("VIEW_MESSAGE_BY_ID of expired offset %d succeeded", r.PhysicalOffset)
			}
			break
		}
	}
	c.checkDelayedDelivered(t, m)
	newOrders := c.cfxSendNew(t, m, cfxOrders, 4, 2, "TagA")
	colA := c.cfxConsume(t, cfxGroupA, cfxOrders, "*")
	cfxCheckResume(t, colA, m, cfxGroupA, cfxOrders, nil, newOrders)
}

// TestClassicFixtureTornTail: a 4.x store after a power loss: abort file,
// the last record only half on disk while its consume-queue unit and index
// entries were written. The broker truncates the log at the last whole
// record, drops the dangling unit (the queue's next offset is the torn
// message's), never serves the torn message by key, and serves all else.
func TestClassicFixtureTornTail(t *testing.T) {
	t.Parallel()
	spec := cfxSpec(300, true, true)
	spec.TornTail = true
	spec.Messages = append(spec.Messages, classicfixture.Message{Topic: cfxOrders, QueueID: 1,
		Body: []byte("torn-victim"), Tags: "TagA", Keys: []string{"torn-key"}})
	c, disk := startClassicFixture(t, spec)
	torn := disk.Messages[len(disk.Messages)-1]
	if !torn.Torn {
		t.Fatal("fixture: last record not torn")
	}
	// What the broker must show: the store without the torn record.
	m := disk
	m.Messages = disk.Messages[:len(disk.Messages)-1]
	m.MaxPhyOffset = torn.PhysicalOffset
	m.QueueMaxOffsets = map[classicfixture.QueueKey]int64{}
	for k, v := range disk.QueueMaxOffsets {
		m.QueueMaxOffsets[k] = v
	}
	tk := classicfixture.QueueKey{Topic: torn.Topic, QueueID: torn.QueueID}
	m.QueueMaxOffsets[tk]--
	if got := c.maxOffset(t, torn.Topic, int(torn.QueueID)); got != m.QueueMaxOffsets[tk] {
		t.Fatalf("%s:%d max offset %d after recovery, want %d (the torn unit dropped)", torn.Topic, torn.QueueID, got, m.QueueMaxOffsets[tk])
	}
	c.checkCommittedOffsets(t, m)
	c.checkOldMessages(t, m)
	c.checkDelayedDelivered(t, m)
	queryTorn := func() int16 {
		now := time.Now().UnixMilli()
		return c.brokerRequest(protocol.QueryMessage, remoting.FieldsOf(
			"topic", torn.Topic,
			"key", "torn-key",
			"maxNum", "32",
			"beginTimestamp", strconv.FormatInt(now-3600_000, 10),
			"endTimestamp", strconv.FormatInt(now+3600_000, 10),
		), nil).Code
	}
	if code := queryTorn(); code == protocol.Success {
		t.Fatal("QUERY_MESSAGE found the torn message by its key")
	}
	newOrders := c.cfxSendNew(t, m, cfxOrders, 4, 1, "TagB")
	if code := queryTorn(); code == protocol.Success {
		t.Fatal("QUERY_MESSAGE by the torn message's key returns the record now at its offset")
	}
	got := c.cfxPullRange(t, torn.Topic, torn.QueueID, torn.QueueOffset, torn.QueueOffset+1, "*")
	if len(got) != 1 || !bytes.Contains(got[0], []byte(newOrders[torn.QueueID][0])) {
		t.Fatalf("offset %d of %s:%d after the torn one's removal: %d records", torn.QueueOffset, torn.Topic, torn.QueueID, len(got))
	}
}

// TestClassicFixtureOddRecordsAndRestart: IPv6 store and born hosts (56-char
// offset msgIds), messages without UNIQ_KEY, bare records (no broker
// properties; the newest with none at all), zlib-compressed bodies, a
// MULTI_TAG topic, records of
// 40 KiB (big BLANK fillers), retried messages in the group's %RETRY% topic
// with a committed retry offset, index files of Java's default size. Then a
// clean restart: old and new
// messages stay, the group's offsets are where the consumer left them.
func TestClassicFixtureOddRecordsAndRestart(t *testing.T) {
	t.Parallel()
	const topic, group = "ClassicOdd", "cgClassicOdd"
	retry := "%RETRY%" + group
	spec := classicfixture.Spec{
		CommitLogFileSize: cfxCLSize, ConsumeQueueFileSize: cfxCQSize,
		StoreHost: "[::1]:10911", ClusterName: "DefaultCluster", BrokerName: "broker-a", SystemTopics: true,
		Topics:        []classicfixture.Topic{{Name: topic, Queues: 2, MultiTag: true}, {Name: retry, Queues: 1}},
		Index:         &classicfixture.IndexSpec{}, // Java's sizes: 420 000 040-byte sparse files, broker defaults
		BaseTimestamp: time.Now().Add(-30 * time.Minute).UnixMilli(),
	}
	for i := 0; i < 150; i++ {
		msg := classicfixture.Message{Topic: topic, QueueID: int32(i % 2), Tags: cfxTags[i%4],
			Body: []byte(fmt.Sprintf("old-odd-%03d", i)), Keys: []string{fmt.Sprintf("odd-%03d", i)}}
		if i%3 == 0 {
			msg.BornHost = "[2001:db8::7]:40000"
		}
		if i%5 == 0 {
			msg.UniqKey = "-"
		}
		if i%13 == 0 {
			msg.Body = append(msg.Body, bytes.Repeat([]byte{'z'}, 40<<10)...)
		}
		if i%11 == 0 {
			msg.Tags, msg.Keys = "标签", append(msg.Keys, fmt.Sprintf("键-%d", i)) // Java hashes UTF-16 units
		}
		if i%17 == 5 {
			msg.Compressed = true // a 4.x producer zlib-compresses bodies of 4 KiB and more
			msg.Body = append(msg.Body, []byte(strings.Repeat(fmt.Sprintf(" compressible-%d", i), 400))...)
		}
		if i%7 == 3 {
			msg.Bare = true // a Go client's batch item stored by 4.7/4.8: no UNIQ_KEY, WAIT, CLUSTER
		}
		spec.Messages = append(spec.Messages, msg)
	}
	for i := 0; i < 3; i++ {
		spec.Messages = append(spec.Messages, classicfixture.Message{Topic: retry, Body: []byte(fmt.Sprintf("old-retry-%d", i)),
			Tags: "TagC", Keys: []string{fmt.Sprintf("retry-%d", i)}, ReconsumeTimes: 1,
			Properties: map[string]string{"RETRY_TOPIC": topic, "ORIGIN_MESSAGE_ID": fmt.Sprintf("0A0000010000%020d", i)}})
	}
	// The newest record has an empty properties string.
	spec.Messages = append(spec.Messages, classicfixture.Message{Topic: topic, QueueID: 1, Body: []byte("old-odd-bare-last"), Bare: true})
	spec.ConsumerOffsets = []classicfixture.ConsumerOffset{
		{Group: group, Topic: topic, Offsets: map[int32]int64{0: 20, 1: 0}},
		{Group: group, Topic: retry, Offsets: map[int32]int64{0: 1}},
	}
	c, m := startClassicFixture(t, spec)
	if last := m.Messages[len(m.Messages)-1]; last.Bytes[len(last.Bytes)-1] != 0 || last.Bytes[len(last.Bytes)-2] != 0 {
		t.Fatal("fixture: the last record's properties are not empty")
	}
	for _, r := range m.Messages {
		if len(r.OffsetMsgID) != 56 || r.SysFlag&0x20 == 0 {
			t.Fatalf("fixture: record at %d: msgId %s sysflag %#x", r.PhysicalOffset, r.OffsetMsgID, r.SysFlag)
		}
	}
	c.checkCommittedOffsets(t, m)
	c.checkOldMessages(t, m)
	for q := int32(0); q < 2; q++ {
		var want [][]byte
		for _, r := range m.ByQueue(topic, q) {
			if r.Tags == "标签" {
				want = append(want, r.Bytes)
			}
		}
		k := classicfixture.QueueKey{Topic: topic, QueueID: q}
		got := c.cfxPullRange(t, topic, q, 0, m.QueueMaxOffsets[k], "标签")
		if len(want) == 0 || len(got) != len(want) {
			t.Fatalf("%s:%d tag 标签: %d messages, want %d", topic, q, len(got), len(want))
		}
	}
	now := time.Now().UnixMilli()
	if r := c.brokerRequest(protocol.QueryMessage, remoting.FieldsOf(
		"topic", topic,
		"key", "键-11",
		"maxNum", "32",
		"beginTimestamp", strconv.FormatInt(now-7200_000, 10),
		"endTimestamp", strconv.FormatInt(now, 10),
	), nil); r.Code != protocol.Success ||
		!bytes.Contains(r.Body, []byte("old-odd-011")) {
		t.Fatalf("QUERY_MESSAGE by non-ASCII key: code %d", r.Code)
	}
	newOdd := c.cfxSendNew(t, m, topic, 2, 2, "TagA")
	col := c.cfxConsume(t, group, topic, "TagA || TagB")
	cfxCheckResume(t, col, m, group, topic, map[string]bool{"TagA": true, "TagB": true}, newOdd)

	// Clean restart: the consumer persists its offsets on shutdown.
	col.stop()
	c.brProc.stop(10 * time.Second)
	c.restartBrokerOnNewPort()
	c.checkOldMessages(t, m)
	for q, bodies := range newOdd {
		k := classicfixture.QueueKey{Topic: topic, QueueID: q}
		end := m.QueueMaxOffsets[k] + int64(len(bodies))
		got := c.cfxPullRange(t, topic, q, m.QueueMaxOffsets[k], end, "*")
		if len(got) != len(bodies) {
			t.Fatalf("after restart %s:%d has %d new messages, want %d", topic, q, len(got), len(bodies))
		}
		r := c.brokerRequest(protocol.QueryConsumerOffset, remoting.FieldsOf("consumerGroup", group, "topic", topic, "queueId", strconv.Itoa(int(q))), nil)
		if off, err := strconv.ParseInt(r.ExtFields.Get("offset"), 10, 64); err != nil || off != end {
			t.Fatalf("after restart %s committed %q for %s:%d, want %d", group, r.ExtFields.Get("offset"), topic, q, end)
		}
	}
	// The broker kept using the fixture's (Java-sized) index file: the new
	// messages' keys went into it.
	cfxCheckIndexContinued(t, m)
	r := c.brokerRequest(protocol.QueryConsumerOffset, remoting.FieldsOf("consumerGroup", group, "topic", retry, "queueId", "0"), nil)
	if off, err := strconv.ParseInt(r.ExtFields.Get("offset"), 10, 64); err != nil || off != 3 {
		t.Fatalf("after restart %s committed %q for %s:0, want 3", group, r.ExtFields.Get("offset"), retry)
	}
}
