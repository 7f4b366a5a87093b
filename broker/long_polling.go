package broker

import (
	"sync"
	"time"

	"github.com/rmqd/rmqd/remoting"
	"go.uber.org/zap"
)

// Long polling (protocol.md §7.2). A pull that finds nothing new (PULL_NOT_FOUND)
// with the suspend bit set is parked per (topic, queueId) for up to its
// suspendTimeoutMillis. It is processed again, without permission to suspend
// or to commit the offset, when a message arrives for that queue (the store's
// arriving listener calls notifyArriving) or when the hold service's periodic
// sweep finds new data or the deadline passed. The answer goes out through
// Conn.Send; requests whose connection closed are dropped.

type heldPull struct {
	conn     remoting.Conn
	req      *remoting.RemotingCommand
	offset   int64         // the queueOffset the pull asked for
	sub      *subscription // filter used to decide whether an arrival is interesting
	deadline time.Time
}

type queueKey struct {
	topic   string
	queueID int32
}

type pullHoldService struct {
	b       *Broker
	sweep   time.Duration
	stopCh  chan struct{}
	doneCh  chan struct{}
	started bool
	mu      struct {
		sync.Mutex
		held map[queueKey][]*heldPull
	}
}

func newPullHoldService(b *Broker, sweep time.Duration) *pullHoldService {
	if sweep <= 0 {
		sweep = time.Second
	}
	s := &pullHoldService{b: b, sweep: sweep, stopCh: make(chan struct{}), doneCh: make(chan struct{})}
	s.mu.held = map[queueKey][]*heldPull{}
	return s
}

func (s *pullHoldService) start() {
	s.started = true
	go s.run()
}

func (s *pullHoldService) stop() {
	if !s.started {
		return
	}
	close(s.stopCh)
	<-s.doneCh
	// Answer what is still held so clients do not wait out their timeout.
	s.mu.Lock()
	all := s.mu.held
	s.mu.held = map[queueKey][]*heldPull{}
	s.mu.Unlock()
	for _, list := range all {
		for _, h := range list {
			s.wake(h)
		}
	}
}

// hold parks a pull.
func (s *pullHoldService) hold(h *heldPull, topic string, queueID int32) {
	k := queueKey{topic, queueID}
	s.mu.Lock()
	s.mu.held[k] = append(s.mu.held[k], h)
	s.mu.Unlock()
	// A message may have arrived between the read and the park.
	if s.b.maxOffset(topic, queueID) > h.offset {
		s.notifyArriving(topic, queueID, -1, nil)
	}
}

// notifyArriving wakes the pulls held on (topic, queueId) that the new data
// can satisfy. tagsCode may be nil when unknown (then every pull behind
// maxOffset wakes).
func (s *pullHoldService) notifyArriving(topic string, queueID int32, maxOffset int64, tagsCode *int64) {
	k := queueKey{topic, queueID}
	s.mu.Lock()
	list := s.mu.held[k]
	if len(list) == 0 {
		s.mu.Unlock()
		return
	}
	if maxOffset < 0 {
		s.mu.Unlock()
		maxOffset = s.b.maxOffset(topic, queueID)
		s.mu.Lock()
		list = s.mu.held[k]
	}
	var wake, keep []*heldPull
	for _, h := range list {
		if maxOffset > h.offset && (tagsCode == nil || h.sub.matchTagsCode(*tagsCode)) {
			wake = append(wake, h)
		} else {
			keep = append(keep, h)
		}
	}
	if len(keep) == 0 {
		delete(s.mu.held, k)
	} else {
		s.mu.held[k] = keep
	}
	s.mu.Unlock()
	for _, h := range wake {
		s.wakeAsync(h)
	}
}

// dropConn discards the pulls of a closed connection.
func (s *pullHoldService) dropConn(connID uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, list := range s.mu.held {
		keep := list[:0]
		for _, h := range list {
			if h.conn.ID() != connID {
				keep = append(keep, h)
			}
		}
		if len(keep) == 0 {
			delete(s.mu.held, k)
		} else {
			s.mu.held[k] = keep
		}
	}
}

func (s *pullHoldService) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range s.mu.held {
		n += len(l)
	}
	return n
}

func (s *pullHoldService) run() {
	defer close(s.doneCh)
	t := time.NewTicker(s.sweep)
	defer t.Stop()
	for {
		select {
		case <-s.stopCh:
			return
		case <-t.C:
			s.sweepOnce(time.Now())
		}
	}
}

// sweepOnce wakes the held pulls that have new data or whose deadline passed.
func (s *pullHoldService) sweepOnce(now time.Time) {
	s.mu.Lock()
	keys := make([]queueKey, 0, len(s.mu.held))
	for k := range s.mu.held {
		keys = append(keys, k)
	}
	s.mu.Unlock()
	for _, k := range keys {
		max := s.b.maxOffset(k.topic, k.queueID)
		s.mu.Lock()
		var wake, keep []*heldPull
		for _, h := range s.mu.held[k] {
			if max > h.offset || !now.Before(h.deadline) {
				wake = append(wake, h)
			} else {
				keep = append(keep, h)
			}
		}
		if len(keep) == 0 {
			delete(s.mu.held, k)
		} else {
			s.mu.held[k] = keep
		}
		s.mu.Unlock()
		for _, h := range wake {
			s.wakeAsync(h)
		}
	}
}

func (s *pullHoldService) wakeAsync(h *heldPull) {
	go s.wake(h)
}

// wake processes a held pull again (no suspend, no offset commit) and sends
// the answer on its connection.
func (s *pullHoldService) wake(h *heldPull) {
	resp := s.b.processPull(h.conn, h.req, false)
	if resp == nil {
		return
	}
	if err := h.conn.Send(s.b.asResponse(h.req, resp)); err != nil {
		s.b.log.Debug("long polling: answer not sent", zap.Uint64("conn", h.conn.ID()), zap.Error(err))
	}
}
