package broker

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rmqd/rmqd/store"
)

func testLevels() delayLevels {
	return delayLevels{time.Second, 5 * time.Second, 10 * time.Second}
}

func TestScheduleDelayedRewrite(t *testing.T) {
	levels := testLevels()
	m := &store.Message{Topic: "T", QueueID: 3, Properties: store.PropertiesFromMap(map[string]string{propDelay: "9", propTags: "a", propTimerDeliverMs: "1"})}
	if !scheduleDelayed(m, levels) {
		t.Fatal("not scheduled")
	}
	if m.Topic != scheduleTopic || m.QueueID != 2 || m.Property(propDelay) != "3" ||
		m.Property(propRealTopic) != "T" || m.Property(propRealQueueID) != "3" || m.Property(propTimerDeliverMs) != "" {
		t.Fatalf("rewritten message: %+v", m)
	}
	for _, tc := range []*store.Message{
		{Topic: "T", Properties: store.PropertiesFromMap(map[string]string{propTags: "a"})},
		{Topic: "T", Properties: store.PropertiesFromMap(map[string]string{propDelay: "0"})},
		{Topic: "T", SysFlag: sysFlagTransPrepared, Properties: store.PropertiesFromMap(map[string]string{propDelay: "1"})},
		{Topic: transHalfTopic, Properties: store.PropertiesFromMap(map[string]string{propDelay: "1"})},
	} {
		if scheduleDelayed(tc, levels) {
			t.Errorf("scheduled %+v", tc)
		}
	}
	c := &store.Message{Topic: "T", SysFlag: sysFlagTransCommit, Properties: store.PropertiesFromMap(map[string]string{propDelay: "1"})}
	if !scheduleDelayed(c, levels) || c.QueueID != 0 {
		t.Errorf("committed delayed message not scheduled: %+v", c)
	}
}

func TestScheduleDeliverLevel(t *testing.T) {
	clock := &fakeClock{t: time.UnixMilli(1_700_000_000_000)}
	fs := newFakeStore(testLevels(), clock.Now)
	s := newScheduleService(fs, scheduleConfig{levels: testLevels(), now: clock.Now})

	put := func(body string, level int) {
		m := &store.Message{Topic: "Real", QueueID: 1, Body: []byte(body), Flag: 7, ReconsumeTimes: 2, BornTimestamp: 5,
			Properties: store.PropertiesFromMap(map[string]string{propDelay: digit(level), propTags: "tg", propUniqKey: "U" + body})}
		if !scheduleDelayed(m, testLevels()) {
			t.Fatal("not scheduled")
		}
		if res := fs.PutMessage(context.Background(), m); res.Status != store.PutOK {
			t.Fatal(res.Status)
		}
	}
	put("a", 2)
	clock.Advance(time.Second)
	put("b", 2)

	if next := s.deliverLevel(2, 0); next != 0 {
		t.Fatalf("delivered before time: next %d", next)
	}
	clock.Advance(4 * time.Second) // a is due (5 s), b not yet
	if next := s.deliverLevel(2, 0); next != 1 {
		t.Fatalf("after 5 s next = %d, want 1", next)
	}
	got := fs.messages("Real", 1)
	if len(got) != 1 || string(got[0].Body) != "a" {
		t.Fatalf("real queue: %v", got)
	}
	m := got[0]
	if m.Property(propDelay) != "" || m.Property(propRealTopic) != "Real" || m.Property(propUniqKey) != "Ua" ||
		m.Flag != 7 || m.ReconsumeTimes != 2 || m.BornTimestamp != 5 {
		t.Fatalf("delivered message: %+v", m)
	}
	clock.Advance(time.Second)
	if next := s.deliverLevel(2, 1); next != 2 {
		t.Fatalf("next = %d, want 2", next)
	}
	if next := s.deliverLevel(2, 2); next != 2 {
		t.Fatalf("idle next = %d", next)
	}

	// A failing put keeps the offset.
	put("c", 1)
	clock.Advance(2 * time.Second)
	fs.mu.Lock()
	fs.failPut = true
	fs.mu.Unlock()
	if next := s.deliverLevel(1, 0); next != 0 {
		t.Fatalf("failed put advanced to %d", next)
	}
}

func digit(n int) string { return string(rune('0' + n)) }

func TestScheduleServiceStartStop(t *testing.T) {
	fs := newFakeStore(testLevels(), time.Now)
	var mu sync.Mutex
	saved := map[int32]int64{}
	s := newScheduleService(fs, scheduleConfig{
		levels: testLevels(), tick: 10 * time.Millisecond, firstDelay: -1,
		loadOffset: func(level int32) int64 {
			mu.Lock()
			defer mu.Unlock()
			return saved[level]
		},
		saveOffsets: func(m map[int32]int64) {
			mu.Lock()
			for k, v := range m {
				saved[k] = v
			}
			mu.Unlock()
		},
	})
	m := &store.Message{Topic: "Real", Properties: store.PropertiesFromMap(map[string]string{propDelay: "1"})}
	scheduleDelayed(m, testLevels())
	fs.PutMessage(context.Background(), m)
	s.Start()
	s.Start() // idempotent
	deadline := time.Now().Add(5 * time.Second)
	for len(fs.messages("Real", 0)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("level-1 message not delivered")
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.Stop()
	s.Stop()
	mu.Lock()
	level1 := saved[1]
	mu.Unlock()
	if level1 != 1 {
		t.Fatalf("saved offset of level 1: %d", level1)
	}
	s.Start() // restartable after a role change, resuming from the saved offset
	time.Sleep(50 * time.Millisecond)
	s.Stop()
	if n := len(fs.messages("Real", 0)); n != 1 {
		t.Fatalf("delivered %d times", n)
	}
}

func TestScheduleDeliverLevelBounded(t *testing.T) {
	clock := &fakeClock{t: time.UnixMilli(1_700_000_000_000)}
	fs := newFakeStore(testLevels(), clock.Now)
	s := newScheduleService(fs, scheduleConfig{levels: testLevels(), now: clock.Now})
	for i := 0; i < scheduleMaxRound+100; i++ {
		m := &store.Message{Topic: "Real", Properties: store.PropertiesFromMap(map[string]string{propDelay: "1"})}
		scheduleDelayed(m, testLevels())
		fs.PutMessage(context.Background(), m)
	}
	clock.Advance(2 * time.Second)
	next := s.deliverLevel(1, 0)
	if next != scheduleMaxRound {
		t.Fatalf("first round delivered up to %d, want %d", next, scheduleMaxRound)
	}
	if next = s.deliverLevel(1, next); next != scheduleMaxRound+100 {
		t.Fatalf("second round next %d", next)
	}
}

func TestScheduleOffsetBeyondQueue(t *testing.T) {
	clock := &fakeClock{t: time.UnixMilli(1_700_000_000_000)}
	fs := newFakeStore(testLevels(), clock.Now)
	s := newScheduleService(fs, scheduleConfig{levels: testLevels(), now: clock.Now})
	m := &store.Message{Topic: "Real", Properties: store.PropertiesFromMap(map[string]string{propDelay: "1"})}
	scheduleDelayed(m, testLevels())
	fs.PutMessage(context.Background(), m)
	clock.Advance(2 * time.Second)
	// A saved offset of 5 over a queue of 1: wait (the queue may be catching up)...
	if next := s.deliverLevel(1, 5); next != 5 {
		t.Fatalf("moved at once to %d", next)
	}
	clock.Advance(2 * time.Second)
	if next := s.deliverLevel(1, 5); next != 5 {
		t.Fatalf("moved within the grace time to %d", next)
	}
	// ...then believe the queue lost its tail and continue from its end.
	clock.Advance(scheduleBeyondGrace)
	if next := s.deliverLevel(1, 5); next != 1 {
		t.Fatalf("after the grace time next = %d, want 1", next)
	}
	if n := len(fs.messages("Real", 0)); n != 0 {
		t.Fatalf("delivered %d messages below the saved offset", n)
	}
}
