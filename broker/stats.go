package broker

import (
	"strings"
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
	putNums, putBytes atomic.Int64
	getNums, getBytes atomic.Int64
	putRate, getRate  rateWindow
	dayStart          atomic.Int64 // unix ms of today's midnight (local)
	// Totals (since start) at the last two midnights, Java's
	// msg{Put,Get}Total{Today,Yesterday}Morning.
	putTodayMorning, getTodayMorning         atomic.Int64
	putYesterdayMorning, getYesterdayMorning atomic.Int64

	// puts: a topic's put counters (*topicPutCounters), found without
	// s.mu: every send counts (issue 8); created and dropped under s.mu.
	puts    sync.Map
	allPuts *windowCounter // BROKER_PUT_NUMS

	mu struct {
		sync.Mutex
		groupGet    map[groupTopic]int64
		pullOffsets map[queueRef]int64
		items       map[statsKey]*windowCounter
	}
}

// Statistic names of VIEW_BROKER_STATS_DATA (Java BrokerStatsManager).
const (
	statsTopicPutNums  = "TOPIC_PUT_NUMS"
	statsTopicPutSize  = "TOPIC_PUT_SIZE"
	statsGroupGetNums  = "GROUP_GET_NUMS"
	statsGroupGetSize  = "GROUP_GET_SIZE"
	statsBrokerPutNums = "BROKER_PUT_NUMS"
	statsBrokerGetNums = "BROKER_GET_NUMS"
)

type statsKey struct{ name, key string }

// windowCounter counts events in per-second, per-minute and per-hour
// buckets, enough for sums over the last minute, hour and day.
type windowCounter struct {
	mu                   sync.Mutex
	sec, min, hour       [60]int64
	secAt, minAt, hourAt [60]int64 // the unix second/minute/hour each bucket holds
}

func (w *windowCounter) add(unix, n int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	bump := func(b, at *[60]int64, slot, mod int64) {
		i := slot % mod
		if at[i] != slot {
			at[i], b[i] = slot, 0
		}
		b[i] += n
	}
	bump(&w.sec, &w.secAt, unix, 60)
	bump(&w.min, &w.minAt, unix/60, 60)
	bump(&w.hour, &w.hourAt, unix/3600, 24)
}

// sums returns the counts of the last 60 s, 60 min and 24 h.
func (w *windowCounter) sums() (minute, hour, day int64) {
	now := time.Now().Unix()
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := 0; i < 60; i++ {
		if now-w.secAt[i] < 60 {
			minute += w.sec[i]
		}
		if now/60-w.minAt[i] < 60 {
			hour += w.min[i]
		}
		if i < 24 && now/3600-w.hourAt[i] < 24 {
			day += w.hour[i]
		}
	}
	return
}

// counter returns the named counter, created if new (caller holds s.mu).
func (s *brokerStats) counter(name, key string) *windowCounter {
	k := statsKey{name, key}
	w := s.mu.items[k]
	if w == nil {
		w = &windowCounter{}
		s.mu.items[k] = w
	}
	return w
}

// item returns the counter of one statistic, nil if it never counted.
func (s *brokerStats) item(name, key string) *windowCounter {
	if name == statsBrokerPutNums || name == statsBrokerGetNums {
		key = ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.items[statsKey{name, key}]
}

// groupTps is the group's get rate over the last minute on topics.
func (s *brokerStats) groupTps(group string, topics []string) float64 {
	var sum int64
	for _, t := range topics {
		if w := s.item(statsGroupGetNums, t+"@"+group); w != nil {
			m, _, _ := w.sums()
			sum += m
		}
	}
	return float64(sum) / 60
}

func newBrokerStats() *brokerStats {
	s := &brokerStats{}
	s.mu.groupGet = map[groupTopic]int64{}
	s.mu.pullOffsets = map[queueRef]int64{}
	s.mu.items = map[statsKey]*windowCounter{}
	s.allPuts = s.counter(statsBrokerPutNums, "")
	s.dayStart.Store(midnight(time.Now()).UnixMilli())
	return s
}

func midnight(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, t.Location())
}

// topicPutCounters are a topic's TOPIC_PUT_NUMS and TOPIC_PUT_SIZE.
type topicPutCounters struct{ nums, size *windowCounter }

func (s *brokerStats) recordPut(topic string, n, bytes int64) {
	s.putNums.Add(n)
	s.putBytes.Add(bytes)
	c, ok := s.puts.Load(topic)
	if !ok {
		s.mu.Lock()
		if c, ok = s.puts.Load(topic); !ok {
			c = &topicPutCounters{nums: s.counter(statsTopicPutNums, topic), size: s.counter(statsTopicPutSize, topic)}
			s.puts.Store(topic, c)
		}
		s.mu.Unlock()
	}
	// The counters lock themselves: s.mu, which every send took, was the
	// most contended lock of the send path (issue 8).
	unix := time.Now().Unix()
	tc := c.(*topicPutCounters)
	tc.nums.add(unix, n)
	tc.size.add(unix, bytes)
	s.allPuts.add(unix, n)
}

func (s *brokerStats) recordGet(group, topic string, n, bytes int64) {
	s.getNums.Add(n)
	s.getBytes.Add(bytes)
	now := time.Now().Unix()
	s.mu.Lock()
	s.mu.groupGet[groupTopic{group, topic}] += n
	nums, size, all := s.counter(statsGroupGetNums, topic+"@"+group), s.counter(statsGroupGetSize, topic+"@"+group), s.counter(statsBrokerGetNums, "")
	s.mu.Unlock()
	nums.add(now, n)
	size.add(now, bytes)
	all.add(now, n)
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

// tick samples the totals; called every second by the broker.
func (s *brokerStats) tick(now time.Time) {
	s.putRate.sample(now, s.putNums.Load())
	s.getRate.sample(now, s.getNums.Load())
	if day := midnight(now).UnixMilli(); day != s.dayStart.Load() {
		s.dayStart.Store(day)
		s.putYesterdayMorning.Store(s.putTodayMorning.Swap(s.putNums.Load()))
		s.getYesterdayMorning.Store(s.getTodayMorning.Swap(s.getNums.Load()))
	}
}

func (s *brokerStats) forgetTopic(topic string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.puts.Delete(topic)
	for k := range s.mu.items {
		if k.key == topic || strings.HasPrefix(k.key, topic+"@") {
			delete(s.mu.items, k)
		}
	}
	for k := range s.mu.pullOffsets {
		if k.topic == topic {
			delete(s.mu.pullOffsets, k)
		}
	}
}
