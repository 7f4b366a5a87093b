package broker

import (
	"context"
	"sync"
	"time"

	"github.com/rmqd/rmqd/store"
)

// fakeStore is an in-memory extrasStore for the unit tests of the retry,
// delay and transaction services. Like the real store it gives
// SCHEDULE_TOPIC_XXXX units the delivery time as tagsCode.
type fakeStore struct {
	levels delayLevels
	now    func() time.Time

	mu      sync.Mutex
	byPhy   map[int64]*store.MessageExt
	queues  map[fakeQueueKey][]store.CQUnit
	nextPhy int64
	failPut bool
}

func newFakeStore(levels delayLevels, now func() time.Time) *fakeStore {
	return &fakeStore{levels: levels, now: now, byPhy: map[int64]*store.MessageExt{}, queues: map[fakeQueueKey][]store.CQUnit{}, nextPhy: 1000}
}

func (f *fakeStore) PutMessage(_ context.Context, m *store.Message) store.PutMessageResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failPut {
		return store.PutMessageResult{Status: store.ServiceNotAvailable}
	}
	k := fakeQueueKey{m.Topic, m.QueueID}
	ext := &store.MessageExt{Message: *m, QueueOffset: int64(len(f.queues[k])), CommitLogOffset: f.nextPhy,
		StoreTimestamp: f.now().UnixMilli(), StoreSize: 100}
	ext.Properties = m.Properties
	if ext.StoreHost == "" {
		ext.StoreHost = "127.0.0.1:10911"
	}
	ext.MsgID, _ = store.CreateMessageID(ext.StoreHost, ext.CommitLogOffset)
	tagsCode := store.TagsHashCode(m.Property(propTags))
	if m.Topic == scheduleTopic {
		tagsCode = f.levels.deliverAt(parseDelayLevel(m.Property(propDelay)), ext.StoreTimestamp)
	}
	f.queues[k] = append(f.queues[k], store.CQUnit{QueueOffset: ext.QueueOffset, CommitLogOffset: ext.CommitLogOffset, Size: 100, TagsCode: tagsCode})
	f.byPhy[ext.CommitLogOffset] = ext
	f.nextPhy += 100
	return store.PutMessageResult{Status: store.PutOK, MsgID: ext.MsgID, WroteOffset: ext.CommitLogOffset,
		QueueOffset: ext.QueueOffset, MsgNum: 1, StoreTimestamp: ext.StoreTimestamp}
}

func (f *fakeStore) LookMessageByOffset(off int64) (*store.MessageExt, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ext, ok := f.byPhy[off]
	if !ok {
		return nil, store.ErrNotFound
	}
	c := *ext
	c.Properties = ext.Properties
	return &c, nil
}

func (f *fakeStore) GetConsumeQueueUnits(topic string, qid int32, offset int64, max int) ([]store.CQUnit, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := f.queues[fakeQueueKey{topic, qid}]
	if offset < 0 || offset >= int64(len(q)) {
		return nil, nil
	}
	end := min(int64(len(q)), offset+int64(max))
	return append([]store.CQUnit(nil), q[offset:end]...), nil
}

func (f *fakeStore) GetMinOffsetInQueue(string, int32) int64 { return 0 }

func (f *fakeStore) GetMaxOffsetInQueue(topic string, qid int32) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return int64(len(f.queues[fakeQueueKey{topic, qid}]))
}

// messages returns the records of one queue in order.
func (f *fakeStore) messages(topic string, qid int32) []*store.MessageExt {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*store.MessageExt
	for _, u := range f.queues[fakeQueueKey{topic, qid}] {
		out = append(out, f.byPhy[u.CommitLogOffset])
	}
	return out
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fakeQueueKey struct {
	topic   string
	queueID int32
}
