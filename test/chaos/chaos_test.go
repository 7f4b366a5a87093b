//go:build chaos

package chaos

// TestChaos runs seeded fault schedules against a fresh group each, then
// drains and checks. One line of results per schedule; a failing seed is
// replayed with -seed=n (SEED=n make chaos): the same faults, targets and
// hold times in the same order (process timing is not reproducible).

import (
	"flag"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
	"github.com/rmqd/rmqd/store"
	"github.com/rmqd/rmqd/test/faultproxy"
)

var (
	flagSeeds  = flag.Int("seeds", 3, "number of schedules of the sweep")
	flagBase   = flag.Int64("base", 0, "first seed of the sweep (0: derived from the clock, printed)")
	flagSeed   = flag.Int64("seed", 0, "replay this one seed only (also env SEED)")
	flagFaults = flag.Int("faults", 3, "faults per schedule")
	flagOnly   = flag.String("only", "", "comma-separated fault names: run exactly these, in this order (instead of the seeded pick)")
)

// schedule is one seeded run.
type schedule struct {
	t      *testing.T
	seed   int64
	rnd    *rand.Rand
	g      *group
	w      *workload
	start  time.Time
	events []faultEvent
	tl     []string // timeline

	committed    [queues]int64 // highest committed consumer offset seen per queue
	rollbacks    []string
	rollbackMsgs int64
}

type faultEvent struct {
	name, detail string
	at           time.Time
}

func (s *schedule) logf(format string, args ...any) {
	s.tl = append(s.tl, fmt.Sprintf("%7.2fs %s", time.Since(s.start).Seconds(), fmt.Sprintf(format, args...)))
}

// hold is a seeded fault duration in [lo, lo+spread).
func (s *schedule) hold(lo, spread time.Duration) time.Duration {
	return lo + time.Duration(s.rnd.Int63n(int64(spread)))
}

func (s *schedule) mark(name, detail string) {
	s.events = append(s.events, faultEvent{name, detail, time.Now()})
	s.logf("fault %s %s", name, detail)
}

func (s *schedule) leader() (*replica, error) { return s.g.waitLeader(15 * time.Second) }

// watchOffsets reads the consumer group's committed offsets at the leader
// and records every value below one seen before (a rollback: the group
// would consume those messages again after a restart).
func (s *schedule) watchOffsets(l *replica, when string) {
	for q := 0; q < queues; q++ {
		off, err := s.g.queryOffset(l.addr, "chaosConsumer", topic, q)
		if err != nil || off < 0 {
			continue
		}
		if prev := s.committed[q]; off < prev {
			s.rollbacks = append(s.rollbacks, fmt.Sprintf("q%d: committed offset %d at %s %s, had been %d", q, off, l.id, when, prev))
			s.rollbackMsgs += prev - off
		}
		s.committed[q] = max(s.committed[q], off)
	}
}

// faults by name; each injects, holds, and heals (restarts what it
// stopped, removes what it put on the network).
var faults = []struct {
	name string
	run  func(s *schedule) error
}{
	{"kill-leader", func(s *schedule) error {
		l, err := s.leader()
		if err != nil {
			return err
		}
		d := s.hold(1500*time.Millisecond, time.Second)
		s.g.kill(l)
		s.mark("kill-leader", l.id)
		time.Sleep(d)
		return s.g.restart(l)
	}},
	{"kill-random", func(s *schedule) error {
		r := s.g.reps[s.rnd.Intn(len(s.g.reps))]
		d := s.hold(1500*time.Millisecond, time.Second)
		s.g.kill(r)
		s.mark("kill-random", r.id)
		time.Sleep(d)
		return s.g.restart(r)
	}},
	{"kill-all", func(s *schedule) error {
		order := s.rnd.Perm(len(s.g.reps))
		d := s.hold(500*time.Millisecond, time.Second)
		for _, i := range order {
			s.g.kill(s.g.reps[i])
		}
		s.mark("kill-all", fmt.Sprint(order))
		time.Sleep(d)
		for _, i := range order {
			if err := s.g.restart(s.g.reps[i]); err != nil {
				return err
			}
		}
		return nil
	}},
	{"pause-leader", func(s *schedule) error {
		l, err := s.leader()
		if err != nil {
			return err
		}
		s.g.pause(l)
		s.mark("pause-leader", l.id)
		time.Sleep(2 * electionMaxMs * time.Millisecond)
		s.g.resume(l)
		return nil
	}},
	{"isolate-leader", func(s *schedule) error { // the leader in the minority
		l, err := s.leader()
		if err != nil {
			return err
		}
		d := s.hold(2*time.Second, time.Second)
		s.g.net.Isolate(l.id)
		s.mark("isolate-leader", l.id)
		time.Sleep(d)
		s.g.net.Heal()
		return nil
	}},
	{"isolate-follower", func(s *schedule) error { // the leader in the majority
		l, err := s.leader()
		if err != nil {
			return err
		}
		var fs []*replica
		for _, r := range s.g.reps {
			if r != l {
				fs = append(fs, r)
			}
		}
		f, o := fs[0], fs[1]
		if s.rnd.Intn(2) == 1 {
			f, o = o, f
		}
		d := s.hold(2*time.Second, time.Second)
		s.g.net.Partition([]string{l.id, o.id}, []string{f.id})
		s.mark("isolate-follower", f.id)
		time.Sleep(d)
		s.g.net.Heal()
		return nil
	}},
	{"bridge", func(s *schedule) error { // two replicas cannot see each other, the bridge sees both
		perm := s.rnd.Perm(3)
		b, x, y := s.g.reps[perm[0]], s.g.reps[perm[1]], s.g.reps[perm[2]]
		d := s.hold(2*time.Second, time.Second)
		s.g.net.Cut(x.id, y.id)
		s.g.net.Cut(y.id, x.id)
		s.mark("bridge", fmt.Sprintf("%s<->%s cut, bridge %s", x.id, y.id, b.id))
		time.Sleep(d)
		s.g.net.Heal()
		return nil
	}},
	{"leader-outbound-cut", func(s *schedule) error { // one-way: the leader hears, nobody hears it
		l, err := s.leader()
		if err != nil {
			return err
		}
		d := s.hold(2*time.Second, time.Second)
		for _, r := range s.g.reps {
			if r != l {
				s.g.net.Cut(l.id, r.id)
			}
		}
		s.mark("leader-outbound-cut", l.id)
		time.Sleep(d)
		s.g.net.Heal()
		return nil
	}},
	{"lossy-links", func(s *schedule) error { // every link loses frames, with delay and jitter
		f := faultproxy.Fault{DropRate: 0.1 + 0.2*s.rnd.Float64(), Delay: 5 * time.Millisecond, Jitter: 20 * time.Millisecond}
		d := s.hold(2*time.Second, time.Second)
		ids := s.g.net.IDs()
		for _, a := range ids {
			for _, b := range ids {
				if a != b {
					s.g.net.SetLink(a, b, f)
				}
			}
		}
		s.mark("lossy-links", fmt.Sprintf("drop %.2f delay %v+%v", f.DropRate, f.Delay, f.Jitter))
		time.Sleep(d)
		s.g.net.Heal()
		return nil
	}},
	{"isolate-follower+kill-leader", func(s *schedule) error { // no majority until the leader is back
		l, err := s.leader()
		if err != nil {
			return err
		}
		var fs []*replica
		for _, r := range s.g.reps {
			if r != l {
				fs = append(fs, r)
			}
		}
		f := fs[s.rnd.Intn(2)]
		d1 := s.hold(time.Second, time.Second)
		d2 := s.hold(time.Second, time.Second)
		s.g.net.Isolate(f.id)
		s.mark("isolate-follower+kill-leader", fmt.Sprintf("isolate %s, then kill %s", f.id, l.id))
		time.Sleep(d1)
		s.g.kill(l)
		s.logf("killed %s", l.id)
		time.Sleep(d2)
		if err := s.g.restart(l); err != nil {
			return err
		}
		s.logf("restarted %s", l.id)
		time.Sleep(d1)
		s.g.net.Heal()
		return nil
	}},
	{"flapping-partitions", func(s *schedule) error { // a new random partition every 200-600 ms
		ids := s.g.net.IDs()
		n := 5 + s.rnd.Intn(6)
		s.mark("flapping-partitions", fmt.Sprintf("%d changes", n))
		for i := 0; i < n; i++ {
			p := s.rnd.Perm(3)
			switch s.rnd.Intn(4) {
			case 0:
				s.g.net.Isolate(ids[p[0]])
				s.logf("flap: isolate %s", ids[p[0]])
			case 1:
				s.g.net.Heal()
				s.g.net.Cut(ids[p[0]], ids[p[1]])
				s.g.net.Cut(ids[p[1]], ids[p[0]])
				s.logf("flap: bridge %s", ids[p[2]])
			case 2:
				s.g.net.Heal()
				s.g.net.Cut(ids[p[0]], ids[p[1]])
				s.g.net.Cut(ids[p[0]], ids[p[2]])
				s.logf("flap: %s outbound cut", ids[p[0]])
			default:
				s.g.net.Heal()
				s.logf("flap: heal")
			}
			time.Sleep(s.hold(200*time.Millisecond, 400*time.Millisecond))
		}
		s.g.net.Heal()
		return nil
	}},
	{"rolling-restart", func(s *schedule) error {
		order := s.rnd.Perm(len(s.g.reps))
		for n, i := range order {
			r := s.g.reps[i]
			s.logf("rolling: stop %s", r.id)
			s.g.term(r)
			if n == 0 {
				s.mark("rolling-restart", fmt.Sprint(order))
			}
			if err := s.g.restart(r); err != nil {
				return err
			}
			if _, err := s.g.waitHealthy(30 * time.Second); err != nil {
				return fmt.Errorf("after restarting %s: %w", r.id, err)
			}
		}
		return nil
	}},
}

// result is one schedule's outcome.
type result struct {
	seed                        int64
	faults                      []string
	attempted, acked, received  int
	lost, ackMismatch, unexpect []string
	storeLost                   []string
	dups, rereads, recovered    int
	rollbacks                   []string
	rollbackMsgs                int64
	committed                   [queues]int64
	orderViol, diverged         []string
	rewinds                     []string
	recovery                    []time.Duration // per fault event, -1 if none
	gaps                        []time.Duration // per fault event: longest time without an ack
	failures                    int
	elapsed                     time.Duration
	err                         error
}

func (r *result) ok() bool {
	return r.err == nil && len(r.lost) == 0 && len(r.ackMismatch) == 0 && len(r.unexpect) == 0 && len(r.orderViol) == 0 && len(r.diverged) == 0 && len(r.storeLost) == 0
}

func fmtDur(d time.Duration) string {
	if d < 0 {
		return "none"
	}
	return d.Round(time.Millisecond).String()
}

func (r *result) line() string {
	var rec []string
	for i, f := range r.faults {
		if i < len(r.recovery) {
			rec = append(rec, f+"="+fmtDur(r.recovery[i])+"/gap "+fmtDur(r.gaps[i]))
		}
	}
	status := "PASS"
	if !r.ok() {
		status = "FAIL"
	}
	s := fmt.Sprintf("chaos seed=%d faults=%s attempted=%d acked=%d received=%d lost=%d ackMismatch=%d unexpected=%d storeLost=%d order=%d diverged=%d duplicated=%d recovered=%d rereads=%d rewinds=%d offsetRollback=%d committed=%v sendFailures=%d recovery=[%s] elapsed=%s %s",
		r.seed, strings.Join(r.faults, ","), r.attempted, r.acked, r.received, len(r.lost), len(r.ackMismatch), len(r.unexpect), len(r.storeLost),
		len(r.orderViol), len(r.diverged), r.dups, r.recovered, r.rereads, len(r.rewinds), r.rollbackMsgs, r.committed, r.failures, strings.Join(rec, " "), r.elapsed.Round(time.Second), status)
	if r.err != nil {
		s += " error: " + r.err.Error()
	}
	return s
}

func first(xs []string, n int) []string {
	if len(xs) > n {
		return append(append([]string(nil), xs[:n]...), fmt.Sprintf("... (%d more)", len(xs)-n))
	}
	return xs
}

// runSchedule runs one seed on a fresh group in its own directory.
func runSchedule(t *testing.T, bin string, seed int64) *result {
	res := &result{seed: seed}
	begin := time.Now()
	dir, err := os.MkdirTemp("", fmt.Sprintf("rmqd-chaos-%d-", seed))
	if err != nil {
		res.err = err
		return res
	}
	s := &schedule{t: t, seed: seed, rnd: rand.New(rand.NewSource(seed)), start: begin}
	n := min(*flagFaults, len(faults))
	perm := s.rnd.Perm(len(faults))[:n]
	if *flagOnly != "" {
		perm = perm[:0]
		for _, name := range strings.Split(*flagOnly, ",") {
			for i, f := range faults {
				if f.name == name {
					perm = append(perm, i)
				}
			}
		}
	}
	for _, i := range perm {
		res.faults = append(res.faults, faults[i].name)
	}
	defer func() {
		res.elapsed = time.Since(begin)
		if !res.ok() {
			keep := filepath.Join(os.TempDir(), fmt.Sprintf("rmqd-chaos-logs-seed-%d", seed))
			_ = os.MkdirAll(keep, 0o755)
			logs, _ := filepath.Glob(filepath.Join(dir, "try*", "*.log"))
			for _, l := range logs {
				if b, err := os.ReadFile(l); err == nil {
					_ = os.WriteFile(filepath.Join(keep, filepath.Base(filepath.Dir(l))+"-"+filepath.Base(l)), b, 0o644)
				}
			}
			t.Logf("seed %d timeline:\n%s\nlogs kept in %s", seed, strings.Join(s.tl, "\n"), keep)
		}
		os.RemoveAll(dir)
	}()

	// A port picked free can be taken before the broker binds it (by a
	// fault proxy's OS-chosen port or another test on the machine): the
	// first start is retried on fresh ports, in a fresh directory.
	var g *group
	for try := 0; ; try++ {
		g, err = startGroup(filepath.Join(dir, fmt.Sprintf("try%d", try)), bin, seed)
		if err == nil {
			break
		}
		s.logf("start group, try %d: %v", try, err)
		if try == 2 {
			res.err = fmt.Errorf("start group: %w", err)
			return res
		}
	}
	s.g = g
	defer g.close()
	l, err := g.waitLeader(15 * time.Second)
	if err != nil {
		res.err = err
		return res
	}
	s.logf("group up, leader %s", l.id)
	if err := g.createTopic(l.addr, topic, queues); err != nil {
		res.err = err
		return res
	}
	s.w = startWorkload(fmt.Sprintf("s%d", seed), g.ns, g.brokerName)
	defer s.w.close()
	time.Sleep(1500 * time.Millisecond)

	for _, i := range perm {
		f := faults[i]
		if err := f.run(s); err != nil {
			res.err = fmt.Errorf("%s: %w", f.name, err)
			return res
		}
		g.net.Heal()
		s.logf("healed after %s", f.name)
		nl, err := g.waitHealthy(30 * time.Second)
		if err != nil {
			res.err = fmt.Errorf("after %s: %w", f.name, err)
			return res
		}
		s.logf("healthy, leader %s", nl.id)
		s.watchOffsets(nl, "after "+f.name)
		time.Sleep(1 * time.Second)
	}

	s.w.stopProducers()
	s.logf("producers stopped")
	l, err = g.waitHealthy(30 * time.Second)
	if err != nil {
		res.err = err
		return res
	}
	var max [queues]int64
	for q := 0; q < queues; q++ {
		if max[q], err = g.maxOffset(l.addr, topic, q); err != nil {
			res.err = err
			return res
		}
	}
	if err := s.w.drain(max, 30*time.Second); err != nil {
		res.err = err
		return res
	}
	s.logf("drained %v from %s", max, l.id)
	time.Sleep(time.Second) // the last pulls' commits reach the offset table
	s.watchOffsets(l, "after draining")
	stored, err := readAll(g, l.addr, max)
	if err != nil {
		res.err = fmt.Errorf("audit read from %s: %w", l.id, err)
		return res
	}
	check(res, s, stored)
	return res
}

// readAll reads every message of the topic from addr up to max with raw
// pulls: (queue, offset) → body.
func readAll(g *group, addr string, max [queues]int64) (map[[2]int64]string, error) {
	out := map[[2]int64]string{}
	for q := 0; q < queues; q++ {
		for off := int64(0); off < max[q]; {
			resp, err := g.invoke(addr, protocol.PullMessage, remoting.FieldsOf(
				"consumerGroup", "chaosAudit",
				"topic", topic,
				"queueId", strconv.Itoa(q),
				"queueOffset", strconv.FormatInt(off, 10),
				"maxMsgNums", "32",
				"sysFlag", "4",
				"commitOffset", "0",
				"suspendTimeoutMillis", "0",
				"subscription", "*",
				"subVersion", "0",
				"expressionType", "TAG",
			), nil, 5*time.Second)
			if err != nil {
				return nil, err
			}
			next, _ := strconv.ParseInt(resp.ExtFields.Get("nextBeginOffset"), 10, 64)
			switch resp.Code {
			case protocol.Success:
				msgs, err := store.DecodeMessages(resp.Body, true)
				if err != nil {
					return nil, err
				}
				for _, m := range msgs {
					out[[2]int64{int64(q), m.QueueOffset}] = string(m.Body)
					off = m.QueueOffset + 1
				}
				continue
			case protocol.PullRetryImmediately, protocol.PullNotFound, protocol.PullOffsetMoved:
				if next <= off {
					return nil, fmt.Errorf("q%d@%d: code %d, no progress (next %d, max %d)", q, off, resp.Code, next, max[q])
				}
				off = next
			default:
				return nil, fmt.Errorf("q%d@%d: code %d %s", q, off, resp.Code, resp.Remark)
			}
		}
	}
	return out, nil
}

// parseBody splits "run|pP|qQ|sSEQ".
func parseBody(b string) (p, q int, seq int64, ok bool) {
	parts := strings.Split(b, "|")
	if len(parts) != 4 {
		return 0, 0, 0, false
	}
	p, e1 := strconv.Atoi(strings.TrimPrefix(parts[1], "p"))
	q, e2 := strconv.Atoi(strings.TrimPrefix(parts[2], "q"))
	seq, e3 := strconv.ParseInt(strings.TrimPrefix(parts[3], "s"), 10, 64)
	return p, q, seq, e1 == nil && e2 == nil && e3 == nil
}

// check fills res from the history and the audit read.
func check(res *result, s *schedule, stored map[[2]int64]string) {
	h := s.w.h
	h.mu.Lock()
	defer h.mu.Unlock()
	res.attempted = len(h.attempted)
	res.acked = len(h.acks)
	res.received = len(h.recvs)
	res.failures = h.failures
	res.rewinds = append(res.rewinds, h.rewinds...)

	// What the consumers saw at each (queue, offset), in order of receipt.
	at := map[[2]int64]string{}
	where := map[string]map[[2]int64]bool{} // body → positions
	lastOff := [queues]int64{-1, -1, -1, -1}
	for _, r := range h.recvs {
		k := [2]int64{int64(r.queue), r.offset}
		if prev, ok := at[k]; ok {
			if prev != r.body {
				res.diverged = append(res.diverged, fmt.Sprintf("q%d@%d: consumed %q, later %q (from %s)", r.queue, r.offset, prev, r.body, r.addr))
			} else {
				res.rereads++
			}
		} else {
			at[k] = r.body
		}
		if r.offset <= lastOff[r.queue] {
			res.orderViol = append(res.orderViol, fmt.Sprintf("q%d: offset %d received after %d (from %s)", r.queue, r.offset, lastOff[r.queue], r.addr))
		}
		lastOff[r.queue] = max(lastOff[r.queue], r.offset)
		if where[r.body] == nil {
			where[r.body] = map[[2]int64]bool{}
		}
		where[r.body][k] = true
		if h.attempted[r.body] == 0 {
			res.unexpect = append(res.unexpect, fmt.Sprintf("q%d@%d %q (from %s)", r.queue, r.offset, r.body, r.addr))
		}
	}
	for _, pos := range where {
		if len(pos) > 1 {
			res.dups += len(pos) - 1
		}
	}
	ackedBody := map[string]bool{}
	for _, a := range h.acks {
		ackedBody[a.body] = true
	}
	for b := range where {
		if h.attempted[b] > 0 && !ackedBody[b] {
			res.recovered++ // outcome unknown to the producer, yet stored
		}
	}
	res.rollbacks, res.rollbackMsgs, res.committed = s.rollbacks, s.rollbackMsgs, s.committed
	// Acknowledged messages: consumed, and at the queue offset the ack named.
	for _, a := range h.acks {
		if len(where[a.body]) == 0 {
			_, inStore := stored[[2]int64{int64(a.queue), a.queueOffset}]
			res.lost = append(res.lost, fmt.Sprintf("%s msgId=%s q%d@%d acked by %s at %s (store has that offset: %v)",
				a.body, a.msgID, a.queue, a.queueOffset, a.addr, a.end.Sub(s.start).Round(time.Millisecond), inStore))
			continue
		}
		if got := at[[2]int64{int64(a.queue), a.queueOffset}]; got != a.body {
			res.ackMismatch = append(res.ackMismatch, fmt.Sprintf("%s msgId=%s acked at q%d@%d by %s; consumed there: %q", a.body, a.msgID, a.queue, a.queueOffset, a.addr, got))
		}
	}
	// The final log against what the consumers saw.
	storeHas := map[string]bool{}
	for k, b := range stored {
		storeHas[b] = true
		if c, ok := at[k]; ok && c != b {
			res.diverged = append(res.diverged, fmt.Sprintf("q%d@%d: consumed %q, final log has %q", k[0], k[1], c, b))
		}
	}
	for _, a := range h.acks {
		if !storeHas[a.body] {
			res.storeLost = append(res.storeLost, fmt.Sprintf("%s q%d@%d", a.body, a.queue, a.queueOffset))
		}
	}
	// Send order per producer and queue, in queue-offset order of the log.
	keys := make([][2]int64, 0, len(stored))
	for k := range stored {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return keys[i][1] < keys[j][1]
	})
	last := map[[2]int]int64{}
	for _, k := range keys {
		b := stored[k]
		p, q, seq, ok := parseBody(b)
		if !ok {
			continue // counted as unexpected if consumed
		}
		if int64(q) != k[0] {
			res.orderViol = append(res.orderViol, fmt.Sprintf("%q stored in queue %d", b, k[0]))
			continue
		}
		pk := [2]int{p, q}
		if prev, seen := last[pk]; seen && seq < prev {
			res.orderViol = append(res.orderViol, fmt.Sprintf("q%d@%d: %q after seq %d of p%d", k[0], k[1], b, prev, p))
		}
		last[pk] = max(last[pk], seq)
	}
	// Recovery: fault → first acknowledged send that started after it.
	for _, e := range s.events {
		rec := time.Duration(-1)
		for _, a := range h.acks {
			if !a.start.Before(e.at) {
				if d := a.end.Sub(e.at); rec < 0 || d < rec {
					rec = d
				}
			}
		}
		res.recovery = append(res.recovery, rec)
	}
	// Longest stretch without an acknowledgement from each fault until the
	// next fault (or the end of sending).
	ends := make([]time.Time, 0, len(h.acks))
	for _, a := range h.acks {
		ends = append(ends, a.end)
	}
	sort.Slice(ends, func(i, j int) bool { return ends[i].Before(ends[j]) })
	for i, e := range s.events {
		until := time.Time{}
		if i+1 < len(s.events) {
			until = s.events[i+1].at
		}
		prev, gap := e.at, time.Duration(0)
		for _, t := range ends {
			if t.Before(e.at) {
				continue
			}
			if !until.IsZero() && t.After(until) {
				break
			}
			gap = max(gap, t.Sub(prev))
			prev = t
		}
		res.gaps = append(res.gaps, gap)
	}
}

func seeds() (list []int64, base int64) {
	if v := os.Getenv("SEED"); v != "" && *flagSeed == 0 {
		*flagSeed, _ = strconv.ParseInt(v, 10, 64)
	}
	if *flagSeed != 0 {
		return []int64{*flagSeed}, *flagSeed
	}
	base = *flagBase
	if base == 0 {
		base = time.Now().UnixNano()%1_000_000 + 1
	}
	for i := 0; i < *flagSeeds; i++ {
		list = append(list, base+int64(i))
	}
	return list, base
}

func TestChaos(t *testing.T) {
	list, base := seeds()
	fmt.Printf("chaos: %d schedule(s) from seed %d, %d faults each; replay one with SEED=n make chaos\n", len(list), base, *flagFaults)
	bin := t.TempDir()
	if err := buildBinaries(bin); err != nil {
		t.Fatal(err)
	}
	var results []*result
	for _, seed := range list {
		res := runSchedule(t, bin, seed)
		results = append(results, res)
		fmt.Println(res.line())
		if len(res.rollbacks) > 0 {
			t.Logf("seed %d: committed consumer offsets went back (reported, not a failure: offsets are at-least-once):\n  %s", seed, strings.Join(first(res.rollbacks, 10), "\n  "))
		}
		if !res.ok() {
			t.Errorf("seed %d failed (replay: SEED=%d make chaos): %s", seed, seed, res.line())
			for what, xs := range map[string][]string{"lost": res.lost, "ackMismatch": res.ackMismatch, "unexpected": res.unexpect,
				"storeLost": res.storeLost, "order": res.orderViol, "diverged": res.diverged, "rewinds": res.rewinds, "offset rollbacks": res.rollbacks} {
				if len(xs) > 0 {
					t.Errorf("seed %d %s:\n  %s", seed, what, strings.Join(first(xs, 10), "\n  "))
				}
			}
		}
	}
	// Recovery per fault type over the sweep.
	per, gaps := map[string][]time.Duration{}, map[string][]time.Duration{}
	for _, r := range results {
		for i, f := range r.faults {
			if i < len(r.recovery) && r.recovery[i] >= 0 {
				per[f] = append(per[f], r.recovery[i])
				gaps[f] = append(gaps[f], r.gaps[i])
			}
		}
	}
	names := make([]string, 0, len(per))
	for f := range per {
		names = append(names, f)
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, "chaos: per fault type: recovery (fault → first acknowledged send that started after it) and the longest gap without acks until the next fault:\n")
	for _, f := range names {
		d := per[f]
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		p99 := d[min(len(d)-1, int(float64(len(d))*0.99))]
		gp := gaps[f]
		sort.Slice(gp, func(i, j int) bool { return gp[i] < gp[j] })
		fmt.Fprintf(&b, "  %-28s n=%-3d recovery p50=%-8s p99=%-8s max=%-8s  longest gap without acks p50=%-8s max=%s\n", f, len(d),
			fmtDur(d[len(d)/2]), fmtDur(p99), fmtDur(d[len(d)-1]), fmtDur(gp[len(gp)/2]), fmtDur(gp[len(gp)-1]))
	}
	pass := 0
	for _, r := range results {
		if r.ok() {
			pass++
		}
	}
	fmt.Fprintf(&b, "chaos: %d of %d schedules passed", pass, len(results))
	fmt.Println(b.String())
}
