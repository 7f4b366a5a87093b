package store

import (
	"time"

	"go.uber.org/zap"
)

// Progress of long start-up steps (classic recovery, the classic-prefix
// fingerprint, re-dispatch that rebuilds consume queues and the index): a
// start line, bytes done of the total with the rate at most every
// progressInterval, and an end line, at info. A store of many gigabytes
// takes minutes to recover; the operator sees it move.

// progressInterval is the least time between two progress lines of a step.
const progressInterval = 5 * time.Second

// progressCheckBytes: the clock is read once per this many bytes.
const progressCheckBytes = 64 << 10

type progressLog struct {
	log       *zap.Logger
	now       func() time.Time
	what      string
	from      int64 // position the step starts at
	total     int64 // bytes to do
	start     time.Time
	last      time.Time
	nextCheck int64 // done bytes at which the clock is read next
}

// startProgress logs the start of a step over [from, to) (positions); nil
// (silent) when there is nothing to do.
func (s *MessageStore) startProgress(what string, from, to int64) *progressLog {
	if to <= from {
		return nil
	}
	now := s.cfg.Now()
	p := &progressLog{log: s.logger, now: s.cfg.Now, what: what, from: from, total: max(to-from, 0), start: now, last: now,
		nextCheck: progressCheckBytes}
	p.log.Info(what+": started", zap.Int64("from", from), zap.Int64("to", to), zap.Int64("bytes", p.total))
	return p
}

// at reports that the step reached position pos (nil-safe, cheap).
func (p *progressLog) at(pos int64) {
	if p == nil {
		return
	}
	done := pos - p.from
	if done < p.nextCheck {
		return
	}
	p.nextCheck = done + progressCheckBytes
	now := p.now()
	if now.Sub(p.last) < progressInterval {
		return
	}
	p.last = now
	p.log.Info(p.what+": progress", p.fields(done, now)...)
}

// end logs the end of the step at position pos.
func (p *progressLog) end(pos int64) {
	if p == nil {
		return
	}
	p.log.Info(p.what+": done", p.fields(pos-p.from, p.now())...)
}

func (p *progressLog) fields(done int64, now time.Time) []zap.Field {
	el := now.Sub(p.start)
	rate := 0.0
	if el > 0 {
		rate = float64(done) / el.Seconds() / (1 << 20)
	}
	pct := 100.0
	if p.total > 0 {
		pct = 100 * float64(done) / float64(p.total)
	}
	return []zap.Field{zap.Int64("doneBytes", done), zap.Int64("totalBytes", p.total), zap.Float64("percent", float64(int(pct*10))/10),
		zap.Float64("mibPerSec", float64(int(rate*100))/100), zap.Duration("elapsed", el)}
}

// redispatchStep names the start-up re-dispatch in the log.
const redispatchStep = "re-dispatch (consume queues and index)"
