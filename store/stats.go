package store

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rmqd/rmqd/internal/vfs"
)

// storeStats is RocketMQ's StoreStatsService: counters on the hot path
// (atomics), sampled once a second into a ring for the TPS windows.
type storeStats struct {
	putTimes, putBytes, putFailed atomic.Int64
	putMaxNs                      atomic.Int64
	putDist                       [len(putDistBounds) + 1]atomic.Int64
	getTimes, getFound, getMiss   atomic.Int64
	getTransferred                atomic.Int64
	getMaxNs                      atomic.Int64
	dispatchedMsgs                atomic.Int64

	boot time.Time
	mu   struct {
		sync.Mutex
		ring [601]statSample
		n    int // samples taken
	}
}

type statSample struct {
	at                                 time.Time
	put, get, found, miss, transferred int64
}

var putDistBounds = [...]time.Duration{0, 10 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
	200 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second,
	5 * time.Second, 10 * time.Second}

var putDistNames = [...]string{"[<=0ms]", "[0~10ms]", "[10~50ms]", "[50~100ms]", "[100~200ms]", "[200~500ms]",
	"[500ms~1s]", "[1~2s]", "[2~3s]", "[3~4s]", "[4~5s]", "[5~10s]", "[10s~]"}

func (st *storeStats) putDone(n, bytes int, d time.Duration) {
	st.putTimes.Add(int64(n))
	st.putBytes.Add(int64(bytes))
	for ns := int64(d); ; {
		cur := st.putMaxNs.Load()
		if ns <= cur || st.putMaxNs.CompareAndSwap(cur, ns) {
			break
		}
	}
	i := 0
	for i < len(putDistBounds) && d > putDistBounds[i] {
		i++
	}
	st.putDist[i].Add(1)
}

func (st *storeStats) getDone(found bool, n int, d time.Duration) {
	st.getTimes.Add(1)
	if found {
		st.getFound.Add(1)
		st.getTransferred.Add(int64(n))
	} else {
		st.getMiss.Add(1)
	}
	for ns := int64(d); ; {
		cur := st.getMaxNs.Load()
		if ns <= cur || st.getMaxNs.CompareAndSwap(cur, ns) {
			break
		}
	}
}

func (st *storeStats) sample(now time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.mu.ring[st.mu.n%len(st.mu.ring)] = statSample{at: now, put: st.putTimes.Load(), get: st.getTimes.Load(),
		found: st.getFound.Load(), miss: st.getMiss.Load(), transferred: st.getTransferred.Load()}
	st.mu.n++
}

// tps returns per-second rates over the last secs seconds, formatted like Java ("%.2f").
func (st *storeStats) tps(secs int, pick func(statSample) int64) string {
	st.mu.Lock()
	defer st.mu.Unlock()
	n := st.mu.n
	if n < 2 {
		return "0.00"
	}
	ring := &st.mu.ring
	last := ring[(n-1)%len(ring)]
	back := min(secs, n-1, len(ring)-1)
	first := ring[(n-1-back)%len(ring)]
	el := last.at.Sub(first.at).Seconds()
	if el <= 0 {
		return "0.00"
	}
	return fmt.Sprintf("%.2f", float64(pick(last)-pick(first))/el)
}

func (st *storeStats) tps3(pick func(statSample) int64) string {
	return st.tps(10, pick) + " " + st.tps(60, pick) + " " + st.tps(600, pick)
}

func (s *MessageStore) runStats() {
	defer s.wg.Done()
	s.stats.sample(time.Now())
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stopCh:
			return
		case now := <-t.C:
			s.stats.sample(now)
		}
	}
}

// RuntimeInfo returns the store's part of GET_BROKER_RUNTIME_INFO, with
// Java's key names (mqadmin brokerStatus, clusterList and the dashboard read them).
func (s *MessageStore) RuntimeInfo() map[string]string {
	st := &s.stats
	m := map[string]string{}
	itoa := func(v int64) string { return strconv.FormatInt(v, 10) }
	boot := st.boot
	if boot.IsZero() {
		boot = time.Now()
	}
	up := time.Since(boot)
	m["bootTimestamp"] = itoa(boot.UnixMilli())
	m["runtime"] = fmt.Sprintf("[ %d days, %d hours, %d minutes, %d seconds ]",
		int(up.Hours())/24, int(up.Hours())%24, int(up.Minutes())%60, int(up.Seconds())%60)
	m["putMessageTimesTotal"] = itoa(st.putTimes.Load())
	m["putMessageSizeTotal"] = itoa(st.putBytes.Load())
	m["putMessageFailedTimes"] = itoa(st.putFailed.Load())
	if n := st.putTimes.Load(); n > 0 {
		m["putMessageAverageSize"] = fmt.Sprintf("%.2f", float64(st.putBytes.Load())/float64(n))
	} else {
		m["putMessageAverageSize"] = "0.00"
	}
	m["putMessageEntireTimeMax"] = itoa(st.putMaxNs.Load() / int64(time.Millisecond))
	m["getMessageEntireTimeMax"] = itoa(st.getMaxNs.Load() / int64(time.Millisecond))
	dist := ""
	for i := range st.putDist {
		if i > 0 {
			dist += " "
		}
		dist += putDistNames[i] + ":" + itoa(st.putDist[i].Load())
	}
	m["putMessageDistributeTime"] = dist
	m["putTps"] = st.tps3(func(x statSample) int64 { return x.put })
	m["getTotalTps"] = st.tps3(func(x statSample) int64 { return x.get })
	m["getFoundTps"] = st.tps3(func(x statSample) int64 { return x.found })
	m["getMissTps"] = st.tps3(func(x statSample) int64 { return x.miss })
	m["getTransferedTps"] = st.tps3(func(x statSample) int64 { return x.transferred })
	m["dispatchMaxBuffer"] = "0"
	maxPhy, minPhy := s.cl.confirmOffset(), s.cl.minOffset()
	m["commitLogMaxOffset"] = itoa(maxPhy)
	m["commitLogMinOffset"] = itoa(minPhy)
	m["dispatchBehindBytes"] = itoa(maxPhy - s.dispatched.Load())
	m["remainHowManyDataToFlush"] = itoa(maxPhy - s.cl.flushedOffset())
	m["remainHowManyDataToCommit"] = "0"
	m["remainTransientStoreBufferNumbs"] = "0"
	m["pageCacheLockTimeMills"] = "0"
	ratio := s.cfg.DiskUsedRatio(s.cfg.CommitLogDir)
	m["commitLogDiskRatio"] = fmt.Sprintf("%v", ratio)
	m["consumeQueueDiskRatio"] = fmt.Sprintf("%v", s.cfg.DiskUsedRatio(s.cfg.RootDir))
	total, free := uint64(0), uint64(0)
	if s.cfg.FS == vfs.Default {
		total, free = osDiskCapacity(s.cfg.CommitLogDir)
	}
	m["commitLogDirCapacity"] = fmt.Sprintf("Total : %s, Free : %s.", humanBytes(total), humanBytes(free))
	earliest := int64(-1)
	if maxPhy > minPhy {
		earliest = s.storeTimeAt(minPhy)
	}
	m["earliestMessageTimeStamp"] = itoa(earliest)
	m["dispatchedMessages"] = itoa(st.dispatchedMsgs.Load())
	return m
}

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.2f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

var totalMem = sync.OnceValue(func() int64 {
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil {
		return 0
	}
	return int64(si.Totalram) * int64(si.Unit)
})

// totalMemory is the machine's RAM (0 if unknown); a consumer further behind
// than 40% of it is told to pull from a slave (accessMessageInMemoryMaxRatio).
func totalMemory() int64 { return totalMem() }
