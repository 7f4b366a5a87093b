package broker

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/rmqd/rmqd/store"
	"go.uber.org/zap"
)

// Delay levels through SCHEDULE_TOPIC_XXXX (protocol.md §8.2).
//
// On the way in, scheduleDelayed rewrites a message whose DELAY property is
// set (and whose transaction type is NOT_TYPE or COMMIT): it remembers the
// destination in REAL_TOPIC / REAL_QID and parks the message in
// SCHEDULE_TOPIC_XXXX queue level-1. The store gives that queue's units the
// delivery time (store timestamp + the level's delay) as tagsCode.
//
// On the way out, scheduleService — a master-only service — walks every
// level's queue from its delay offset (metadata's delayOffset.json, key =
// level, value = next offset to deliver) and, once a unit's delivery time
// has come, re-puts the message to its real topic and queue without DELAY.
// Queues are FIFO per level and every message of a level has the same delay,
// so the walk stops at the first unit that is not due.
//
// One goroutine owns the in-memory offsets; the metadata copy is updated
// after every round that moved, so a restart or a new leader resumes from
// there (at-least-once: a crash between the re-put and the offset update
// delivers that message twice, as in Java).

// extrasStore is what the retry, delay and transaction services need of the
// store (*store.MessageStore satisfies it).
type extrasStore interface {
	PutMessage(ctx context.Context, m *store.Message) store.PutMessageResult
	LookMessageByOffset(commitLogOffset int64) (*store.MessageExt, error)
	GetConsumeQueueUnits(topic string, queueID int32, offset int64, max int) ([]store.CQUnit, error)
	GetMinOffsetInQueue(topic string, queueID int32) int64
	GetMaxOffsetInQueue(topic string, queueID int32) int64
}

// Timing of the delivery loop (Java: first run after 1 s, then every 100 ms).
const (
	scheduleFirstDelay = time.Second
	scheduleTick       = 100 * time.Millisecond
	scheduleBatch      = 32 // units read per store call
	// scheduleMaxRound bounds the messages one level delivers per round, so
	// a backlog neither starves the other levels nor delays offset saving
	// and Stop.
	scheduleMaxRound = 2048
	// scheduleBeyondGrace is how long an offset may stay beyond its queue's
	// end before the service believes the queue lost its tail.
	scheduleBeyondGrace = 5 * time.Second
	extrasPutTimeout    = 5 * time.Second
)

// scheduleDelayed parks m in SCHEDULE_TOPIC_XXXX when it carries a delay
// level, clamping the level to the highest configured one. It reports
// whether m was rewritten. Half messages (TRAN_MSG) are left alone: their
// delay, if any, applies when they are committed.
func scheduleDelayed(m *store.Message, levels delayLevels) bool {
	t := transactionType(m.SysFlag)
	if t != sysFlagTransNotType && t != sysFlagTransCommit {
		return false
	}
	if m.Topic == transHalfTopic || m.Topic == scheduleTopic {
		return false
	}
	level := parseDelayLevel(m.Property(propDelay))
	if level <= 0 || levels.maxLevel() == 0 {
		return false
	}
	if c := levels.clamp(level); c != level {
		level = c
		m.SetProperty(propDelay, strconv.Itoa(level))
	}
	// 5.x timer properties lose against a delay level (§8.3).
	m.Properties = m.Properties.Without(propTimerDeliverMs, propTimerDelaySec, propTimerDelayMs).
		With(propRealTopic, m.Topic, propRealQueueID, strconv.Itoa(int(m.QueueID)))
	m.Topic = scheduleTopic
	m.QueueID = scheduleQueueID(level)
	return true
}

// scheduleTimeUp builds the message a due schedule record becomes: its
// real topic and queue, DELAY and timer properties removed, everything else
// (body, flag, sysFlag, born fields, reconsume times, REAL_TOPIC/REAL_QID)
// kept. ok is false for a record without a usable REAL_TOPIC/REAL_QID.
func scheduleTimeUp(ext *store.MessageExt) (m *store.Message, ok bool) {
	topic := ext.Property(propRealTopic)
	qid, err := strconv.Atoi(ext.Property(propRealQueueID))
	if topic == "" || err != nil || qid < 0 {
		return nil, false
	}
	props := ext.Properties.Without(propDelay, propTimerDeliverMs, propTimerDelaySec)
	return &store.Message{
		Topic:          topic,
		Flag:           ext.Flag,
		Body:           ext.Body,
		Properties:     props,
		QueueID:        int32(qid),
		SysFlag:        ext.SysFlag,
		BornTimestamp:  ext.BornTimestamp,
		BornHost:       ext.BornHost,
		StoreHost:      ext.StoreHost,
		ReconsumeTimes: ext.ReconsumeTimes,
	}, true
}

// scheduleConfig is what scheduleService needs besides the store.
type scheduleConfig struct {
	levels delayLevels
	// loadOffset reads a level's persisted offset (0 when none).
	loadOffset func(level int32) int64
	// saveOffsets records levels' progress (level -> next offset).
	saveOffsets func(map[int32]int64)
	// resetOffset records a level's offset moved back (saveOffsets only
	// ever raises it).
	resetOffset func(level int32, offset int64)
	log         *zap.Logger
	now         func() time.Time
	tick        time.Duration // default scheduleTick
	firstDelay  time.Duration // default scheduleFirstDelay
}

// scheduleService delivers due delayed messages. Start and Stop may be
// called repeatedly (role changes); Stop waits for the loop to end.
type scheduleService struct {
	store extrasStore
	cfg   scheduleConfig

	// beyondSince: when a level's offset was first seen beyond its queue's
	// end (owned by the delivery goroutine).
	beyondSince map[int]time.Time

	mu struct {
		sync.Mutex
		stopCh chan struct{} // nil while stopped
		doneCh chan struct{}
	}
}

func newScheduleService(st extrasStore, cfg scheduleConfig) *scheduleService {
	if cfg.log == nil {
		cfg.log = zap.NewNop()
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	if cfg.tick <= 0 {
		cfg.tick = scheduleTick
	}
	if cfg.firstDelay < 0 {
		cfg.firstDelay = 0
	} else if cfg.firstDelay == 0 {
		cfg.firstDelay = scheduleFirstDelay
	}
	if cfg.loadOffset == nil {
		cfg.loadOffset = func(int32) int64 { return 0 }
	}
	if cfg.saveOffsets == nil {
		cfg.saveOffsets = func(map[int32]int64) {}
	}
	if cfg.resetOffset == nil {
		cfg.resetOffset = func(int32, int64) {}
	}
	return &scheduleService{store: st, cfg: cfg, beyondSince: map[int]time.Time{}}
}

// Start begins delivering (a no-op when already running).
func (s *scheduleService) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.stopCh != nil {
		return
	}
	s.mu.stopCh = make(chan struct{})
	s.mu.doneCh = make(chan struct{})
	go s.run(s.mu.stopCh, s.mu.doneCh)
}

// Stop ends delivery and waits for the loop, which saves its offsets first.
func (s *scheduleService) Stop() {
	s.mu.Lock()
	stopCh, doneCh := s.mu.stopCh, s.mu.doneCh
	s.mu.stopCh, s.mu.doneCh = nil, nil
	s.mu.Unlock()
	if stopCh == nil {
		return
	}
	close(stopCh)
	<-doneCh
}

func (s *scheduleService) run(stopCh, doneCh chan struct{}) {
	defer close(doneCh)
	offsets := make(map[int32]int64, s.cfg.levels.maxLevel())
	for level := 1; level <= s.cfg.levels.maxLevel(); level++ {
		offsets[int32(level)] = s.cfg.loadOffset(int32(level))
	}
	timer := time.NewTimer(s.cfg.firstDelay)
	defer timer.Stop()
	for {
		select {
		case <-stopCh:
			return
		case <-timer.C:
		}
		changed := map[int32]int64{}
		for level := 1; level <= s.cfg.levels.maxLevel(); level++ {
			select {
			case <-stopCh:
				if len(changed) > 0 {
					s.cfg.saveOffsets(changed)
				}
				return
			default:
			}
			l := int32(level)
			if next := s.deliverLevel(level, offsets[l]); next != offsets[l] {
				offsets[l] = next
				changed[l] = next
			}
		}
		if len(changed) > 0 {
			s.cfg.saveOffsets(changed)
		}
		timer.Reset(s.cfg.tick)
	}
}

// deliverLevel delivers the due messages of one level starting at offset
// and returns the next offset to look at.
func (s *scheduleService) deliverLevel(level int, offset int64) int64 {
	qid := scheduleQueueID(level)
	if min := s.store.GetMinOffsetInQueue(scheduleTopic, qid); offset < min {
		s.cfg.log.Warn("schedule offset below the queue, skipping ahead",
			zap.Int("level", level), zap.Int64("offset", offset), zap.Int64("minOffset", min))
		offset = min
	}
	if max := s.store.GetMaxOffsetInQueue(scheduleTopic, qid); offset > max {
		// Either the consume queue has not caught up yet (wait: moving back
		// would deliver again) or the store lost its tail in a crash (move
		// back, as Java does, or the messages that reuse those offsets
		// would never be delivered). Only the second lasts.
		since, ok := s.beyondSince[level]
		if !ok {
			s.beyondSince[level] = s.cfg.now()
			return offset
		}
		if s.cfg.now().Sub(since) < scheduleBeyondGrace {
			return offset
		}
		s.cfg.log.Warn("schedule offset beyond the queue, moving back",
			zap.Int("level", level), zap.Int64("offset", offset), zap.Int64("maxOffset", max))
		offset = max
		s.cfg.resetOffset(int32(level), offset)
	}
	delete(s.beyondSince, level)
	for delivered := 0; delivered < scheduleMaxRound; {
		units, err := s.store.GetConsumeQueueUnits(scheduleTopic, qid, offset, scheduleBatch)
		if err != nil || len(units) == 0 || units[len(units)-1].QueueOffset < offset {
			return offset
		}
		for _, u := range units {
			if u.QueueOffset < offset {
				continue
			}
			var ext *store.MessageExt
			deliverAt := u.TagsCode
			if deliverAt < 1e12 { // not a timestamp (a store that wrote a tag hash): use the record's store time
				if ext, err = s.store.LookMessageByOffset(u.CommitLogOffset); err == nil {
					deliverAt = s.cfg.levels.deliverAt(level, ext.StoreTimestamp)
				}
			}
			now := s.cfg.now().UnixMilli()
			if err == nil && s.cfg.levels.correctDeliverAt(level, now, deliverAt) > now {
				return offset
			}
			if ext == nil && err == nil {
				ext, err = s.store.LookMessageByOffset(u.CommitLogOffset)
			}
			if err != nil {
				if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrMalformed) {
					s.cfg.log.Warn("schedule record unreadable, skipped", zap.Int("level", level),
						zap.Int64("queueOffset", u.QueueOffset), zap.Error(err))
					offset = u.QueueOffset + 1
					err = nil
					continue
				}
				return offset // transient: retry next round
			}
			m, ok := scheduleTimeUp(ext)
			if !ok || m.Topic == transHalfTopic {
				s.cfg.log.Warn("schedule record without a usable real topic, dropped", zap.Int("level", level),
					zap.Int64("queueOffset", u.QueueOffset), zap.String("realTopic", ext.Property(propRealTopic)))
				offset = u.QueueOffset + 1
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), extrasPutTimeout)
			res := s.store.PutMessage(ctx, m)
			cancel()
			if !res.Status.OK() {
				s.cfg.log.Warn("re-put of a delayed message failed, will retry", zap.Int("level", level),
					zap.Int64("queueOffset", u.QueueOffset), zap.String("topic", m.Topic),
					zap.Stringer("status", res.Status), zap.Error(res.Err))
				return offset
			}
			offset = u.QueueOffset + 1
			delivered++
		}
	}
	return offset
}
