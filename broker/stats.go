package broker

import (
	"sync"
	"sync/atomic"
	"time"
)

// Broker statistics for GET_BROKER_RUNTIME_INFO, GET_TOPIC_STATS_INFO and
// GET_CONSUME_STATS: totals, per-topic and per-group counters, and rates
// over the last 10 s, 1 min and 10 min from per-second samples.

type rateWindow struct {
	mu      sync.Mutex
	samples [601]int64 // cumulative totals, one per second, ring
	times   [601]int64 // unix second of each sample
	head    int
	filled  int
}

func (w *rateWindow) sample(now time.Time, total int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	sec := now.Unix()
	if w.filled > 0 && w.times[w.head] == sec {
		w.samples[w.head] = total
		return
	}
	w.head = (w.head + 1) % len(w.samples)
	w.samples[w.head] = total
	w.times[w.head] = sec
	if w.filled < len(w.samples) {
		w.filled++
	}
}

// rate returns the per-second rate over the last seconds (or what exists).
func (w *rateWindow) rate(seconds int) float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.filled < 2 {
		return 0
	}
	back := min(seconds, w.filled-1)
	old := (w.head - back + len(w.samples)) % len(w.samples)
	dt := w.times[w.head] - w.times[old]
	if dt <= 0 {
		return 0
	}
	return float64(w.samples[w.head]-w.samples[old]) / float64(dt)
}

type groupTopic struct{ group, topic string }

type queueRef struct {
	group, topic string
	queueID      int32
}

type brokerStats struct {
	putNums, putBytes          atomic.Int64
	getNums, getBytes          atomic.Int64
	putRate, getRate           rateWindow
	dayStart                   atomic.Int64 // unix ms of today's midnight (local)
	putToday, getToday         atomic.Int64
	putYesterday, getYesterday atomic.Int64

	mu struct {
		sync.Mutex
		topicPut    map[string]int64
		topicLast   map[string]int64 // unix ms of the last put
		groupGet    map[groupTopic]int64
		pullOffsets map[queueRef]int64
	}
}

func newBrokerStats() *brokerStats {
	s := &brokerStats{}
	s.mu.topicPut = map[string]int64{}
	s.mu.topicLast = map[string]int64{}
	s.mu.groupGet = map[groupTopic]int64{}
	s.mu.pullOffsets = map[queueRef]int64{}
	s.dayStart.Store(midnight(time.Now()).UnixMilli())
	return s
}

func midnight(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, t.Location())
}

func (s *brokerStats) recordPut(topic string, n, bytes int64) {
	s.putNums.Add(n)
	s.putBytes.Add(bytes)
	s.putToday.Add(n)
	now := time.Now().UnixMilli()
	s.mu.Lock()
	s.mu.topicPut[topic] += n
	s.mu.topicLast[topic] = now
	s.mu.Unlock()
}

func (s *brokerStats) recordGet(group, topic string, n, bytes int64) {
	s.getNums.Add(n)
	s.getBytes.Add(bytes)
	s.getToday.Add(n)
	s.mu.Lock()
	s.mu.groupGet[groupTopic{group, topic}] += n
	s.mu.Unlock()
}

func (s *brokerStats) recordPullOffset(group, topic string, queueID int32, next int64) {
	s.mu.Lock()
	s.mu.pullOffsets[queueRef{group, topic, queueID}] = next
	s.mu.Unlock()
}

func (s *brokerStats) pullOffset(group, topic string, queueID int32) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.mu.pullOffsets[queueRef{group, topic, queueID}]
	return v, ok
}

func (s *brokerStats) topicLastPut(topic string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.topicLast[topic]
}

// tick samples the totals; called every second by the broker.
func (s *brokerStats) tick(now time.Time) {
	s.putRate.sample(now, s.putNums.Load())
	s.getRate.sample(now, s.getNums.Load())
	if day := midnight(now).UnixMilli(); day != s.dayStart.Load() {
		s.dayStart.Store(day)
		s.putYesterday.Store(s.putToday.Swap(0))
		s.getYesterday.Store(s.getToday.Swap(0))
	}
}

func (s *brokerStats) forgetTopic(topic string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.mu.topicPut, topic)
	delete(s.mu.topicLast, topic)
	for k := range s.mu.pullOffsets {
		if k.topic == topic {
			delete(s.mu.pullOffsets, k)
		}
	}
}
