package broker

import (
	"sync"

	"github.com/rmqd/rmqd/protocol"
)

// roleEventCapacity bounds the role-change ring (design.md §3).
const roleEventCapacity = 128

// roleEventRing keeps the newest role-change events. Safe for concurrent
// use; events are stored and returned by value.
type roleEventRing struct {
	mu    sync.Mutex
	buf   []protocol.RaftRoleEvent // len <= cap; buf[(start+i)%cap] is the i-th oldest
	start int
	total int64 // events ever added; the newest has Seq == total
}

func newRoleEventRing(capacity int) *roleEventRing {
	if capacity <= 0 {
		capacity = roleEventCapacity
	}
	return &roleEventRing{buf: make([]protocol.RaftRoleEvent, 0, capacity)}
}

// add numbers ev (Seq) and stores it, evicting the oldest when full. It
// returns the assigned sequence number.
func (r *roleEventRing) add(ev protocol.RaftRoleEvent) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total++
	ev.Seq = r.total
	ev.Steps = append([]protocol.RaftStep(nil), ev.Steps...)
	if len(r.buf) < cap(r.buf) {
		r.buf = append(r.buf, ev)
	} else {
		r.buf[r.start] = ev
		r.start = (r.start + 1) % cap(r.buf)
	}
	return ev.Seq
}

// update changes the event numbered seq in place, if it is still in the
// ring (for facts learned later, such as when registration completed).
func (r *roleEventRing) update(seq int64, f func(*protocol.RaftRoleEvent)) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := int64(len(r.buf))
	oldest := r.total - n + 1
	if seq < oldest || seq > r.total {
		return false
	}
	i := (r.start + int(seq-oldest)) % cap(r.buf)
	f(&r.buf[i])
	return true
}

// list returns the events with Seq > since, oldest first, at most limit
// (the newest ones) when limit > 0.
func (r *roleEventRing) list(since int64, limit int) protocol.RaftEventsBody {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := protocol.RaftEventsBody{Capacity: cap(r.buf), Total: r.total, Events: []protocol.RaftRoleEvent{}}
	for i := range r.buf {
		ev := r.buf[(r.start+i)%cap(r.buf)]
		if ev.Seq <= since {
			continue
		}
		ev.Steps = append([]protocol.RaftStep(nil), ev.Steps...)
		out.Events = append(out.Events, ev)
	}
	if limit > 0 && len(out.Events) > limit {
		out.Events = out.Events[len(out.Events)-limit:]
	}
	return out
}

// last returns the newest event.
func (r *roleEventRing) last() (protocol.RaftRoleEvent, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.buf) == 0 {
		return protocol.RaftRoleEvent{}, false
	}
	i := (r.start + len(r.buf) - 1) % cap(r.buf)
	ev := r.buf[i]
	ev.Steps = append([]protocol.RaftStep(nil), ev.Steps...)
	return ev, true
}
