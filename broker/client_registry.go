package broker

import (
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rmqd/rmqd/remoting"
)

// The client registry: producer and consumer groups and the channels
// (connections) registered in them by HEART_BEAT (protocol.md §7.7).
// Identity is per connection: two connections with the same client id are
// two channels. A channel leaves every group when its connection closes,
// when it has not sent a heartbeat for channelExpiredTimeout, or on
// UNREGISTER_CLIENT.

// clientChannel is one registered connection.
type clientChannel struct {
	conn       remoting.Conn
	clientID   string
	language   string
	version    int
	lastUpdate time.Time
}

func (c *clientChannel) connection() connection {
	return connection{ClientID: c.clientID, ClientAddr: c.conn.RemoteAddr(), Language: c.language, Version: c.version}
}

// consumerGroupInfo is the live state of one consumer group.
type consumerGroupInfo struct {
	name             string
	consumeType      string
	messageModel     string
	consumeFromWhere string
	channels         map[uint64]*clientChannel // by connection id
	subs             map[string]*subscription  // by topic
	lastUpdate       time.Time
}

// consumerGroupSnapshot is a copy safe to use without the registry lock.
type consumerGroupSnapshot struct {
	consumeType      string
	messageModel     string
	consumeFromWhere string
	channels         []clientChannel
	subs             map[string]*subscription
}

type clientRegistry struct {
	mu struct {
		sync.Mutex
		consumers map[string]*consumerGroupInfo
		producers map[string]map[uint64]*clientChannel
		// requesters maps the client id of a request/reply requester (the
		// REPLY_TO_CLIENT property of its request messages) to the
		// connection the request came on, for clients that have not sent a
		// heartbeat to this broker yet (Go sends the first one 30 s late).
		requesters map[string]remoting.Conn
	}
}

func newClientRegistry() *clientRegistry {
	r := &clientRegistry{}
	r.mu.consumers = map[string]*consumerGroupInfo{}
	r.mu.producers = map[string]map[uint64]*clientChannel{}
	r.mu.requesters = map[string]remoting.Conn{}
	return r
}

// learnRequester remembers the connection of a request/reply requester.
func (r *clientRegistry) learnRequester(clientID string, c remoting.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.mu.requesters[clientID]; ok && old.ID() == c.ID() {
		return
	}
	if len(r.mu.requesters) >= 100000 { // bound it; entries also leave with their connection
		for k := range r.mu.requesters {
			delete(r.mu.requesters, k)
			break
		}
	}
	r.mu.requesters[strings.Clone(clientID)] = c // it may alias a request's frame, which is reused
}

// registerConsumer adds or refreshes ch in group and replaces the group's
// subscriptions with subs (a subscription is replaced only by a newer
// subVersion). It reports whether the group's membership changed: a channel
// new to the group, or a different set of subscribed topics.
func (r *clientRegistry) registerConsumer(group string, ch clientChannel, consumeType, messageModel, consumeFromWhere string, subs []*subscription) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.mu.consumers[group]
	if g == nil {
		g = &consumerGroupInfo{name: group, channels: map[uint64]*clientChannel{}, subs: map[string]*subscription{}}
		r.mu.consumers[group] = g
	}
	g.consumeType, g.messageModel, g.consumeFromWhere = consumeType, messageModel, consumeFromWhere
	g.lastUpdate = ch.lastUpdate
	changed := false
	id := ch.conn.ID()
	if old := g.channels[id]; old == nil {
		c := ch
		g.channels[id] = &c
		changed = true
	} else {
		old.clientID, old.language, old.version, old.lastUpdate = ch.clientID, ch.language, ch.version, ch.lastUpdate
	}
	incoming := make(map[string]*subscription, len(subs))
	for _, s := range subs {
		incoming[s.Topic] = s
	}
	if !sameTopics(g.subs, incoming) {
		changed = true
	}
	next := make(map[string]*subscription, len(incoming))
	for t, s := range incoming {
		if old := g.subs[t]; old != nil && old.SubVersion > s.SubVersion {
			next[t] = old
			continue
		}
		next[t] = s
	}
	g.subs = next
	return changed
}

func (r *clientRegistry) registerProducer(group string, ch clientChannel) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.mu.producers[group]
	if m == nil {
		m = map[uint64]*clientChannel{}
		r.mu.producers[group] = m
	}
	id := ch.conn.ID()
	if old := m[id]; old != nil {
		old.clientID, old.language, old.version, old.lastUpdate = ch.clientID, ch.language, ch.version, ch.lastUpdate
		return
	}
	c := ch
	m[id] = &c
}

// unregisterConsumer removes the channel of connID from group and reports
// whether it was there.
func (r *clientRegistry) unregisterConsumer(group string, connID uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.removeConsumerChannelLocked(group, connID)
}

func (r *clientRegistry) removeConsumerChannelLocked(group string, connID uint64) bool {
	g := r.mu.consumers[group]
	if g == nil || g.channels[connID] == nil {
		return false
	}
	delete(g.channels, connID)
	if len(g.channels) == 0 {
		delete(r.mu.consumers, group)
	}
	return true
}

func (r *clientRegistry) unregisterProducer(group string, connID uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m := r.mu.producers[group]; m != nil {
		delete(m, connID)
		if len(m) == 0 {
			delete(r.mu.producers, group)
		}
	}
}

// removeConn drops a closed connection from every group and returns the
// consumer groups it left.
func (r *clientRegistry) removeConn(connID uint64) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var left []string
	for name := range r.mu.consumers {
		if r.removeConsumerChannelLocked(name, connID) {
			left = append(left, name)
		}
	}
	for name, m := range r.mu.producers {
		delete(m, connID)
		if len(m) == 0 {
			delete(r.mu.producers, name)
		}
	}
	for id, c := range r.mu.requesters {
		if c.ID() == connID {
			delete(r.mu.requesters, id)
		}
	}
	sort.Strings(left)
	return left
}

// expire removes every channel whose last heartbeat is older than timeout,
// returning the consumer groups that lost a member and the connections that
// are no longer registered anywhere (to be closed).
func (r *clientRegistry) expire(now time.Time, timeout time.Duration) (groups []string, conns []remoting.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	stale := map[uint64]remoting.Conn{}
	for name, g := range r.mu.consumers {
		for id, ch := range g.channels {
			if now.Sub(ch.lastUpdate) > timeout {
				stale[id] = ch.conn
				delete(g.channels, id)
				groups = append(groups, name)
			}
		}
		if len(g.channels) == 0 {
			delete(r.mu.consumers, name)
		}
	}
	for name, m := range r.mu.producers {
		for id, ch := range m {
			if now.Sub(ch.lastUpdate) > timeout {
				stale[id] = ch.conn
				delete(m, id)
			}
		}
		if len(m) == 0 {
			delete(r.mu.producers, name)
		}
	}
	for _, c := range stale {
		conns = append(conns, c)
	}
	sort.Strings(groups)
	return dedupSorted(groups), conns
}

func dedupSorted(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// consumerIDs lists the client ids of the group's channels, sorted, one per
// channel.
func (r *clientRegistry) consumerIDs(group string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.mu.consumers[group]
	if g == nil {
		return nil
	}
	ids := make([]string, 0, len(g.channels))
	for _, ch := range g.channels {
		ids = append(ids, ch.clientID)
	}
	sort.Strings(ids)
	return ids
}

// consumerChannels returns the connections of the group.
func (r *clientRegistry) consumerChannels(group string) []remoting.Conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.mu.consumers[group]
	if g == nil {
		return nil
	}
	out := make([]remoting.Conn, 0, len(g.channels))
	for _, ch := range g.channels {
		out = append(out, ch.conn)
	}
	return out
}

// consumerGroup returns a snapshot of the group, or false if it has no
// registered channel.
func (r *clientRegistry) consumerGroup(group string) (consumerGroupSnapshot, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.mu.consumers[group]
	if g == nil {
		return consumerGroupSnapshot{}, false
	}
	s := consumerGroupSnapshot{
		consumeType:      g.consumeType,
		messageModel:     g.messageModel,
		consumeFromWhere: g.consumeFromWhere,
		subs:             make(map[string]*subscription, len(g.subs)),
	}
	for _, ch := range g.channels {
		s.channels = append(s.channels, *ch)
	}
	sort.Slice(s.channels, func(i, j int) bool { return s.channels[i].clientID < s.channels[j].clientID })
	for t, sub := range g.subs {
		s.subs[t] = sub
	}
	return s, true
}

// subscriptionOf returns the subscription group registered for topic, and
// whether the group is online at all.
func (r *clientRegistry) subscriptionOf(group, topic string) (sub *subscription, messageModel string, online bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.mu.consumers[group]
	if g == nil {
		return nil, "", false
	}
	return g.subs[topic], g.messageModel, true
}

// groupsOfTopic lists the online consumer groups subscribed to topic.
func (r *clientRegistry) groupsOfTopic(topic string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for name, g := range r.mu.consumers {
		if _, ok := g.subs[topic]; ok {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// consumerGroupNames lists every online consumer group.
func (r *clientRegistry) consumerGroupNames() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.mu.consumers))
	for name := range r.mu.consumers {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// producerChannels returns the group's channels, most recently refreshed
// first.
func (r *clientRegistry) producerChannels(group string) []clientChannel {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.mu.producers[group]
	out := make([]clientChannel, 0, len(m))
	for _, ch := range m {
		out = append(out, *ch)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].lastUpdate.After(out[j].lastUpdate) })
	return out
}

// producerGroups returns every producer group's channels.
func (r *clientRegistry) producerGroups() map[string][]clientChannel {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string][]clientChannel, len(r.mu.producers))
	for name, m := range r.mu.producers {
		list := make([]clientChannel, 0, len(m))
		for _, ch := range m {
			list = append(list, *ch)
		}
		sort.Slice(list, func(i, j int) bool { return list[i].clientID < list[j].clientID })
		out[name] = list
	}
	return out
}

// findChannelByClientID finds a consumer or producer channel by client id.
func (r *clientRegistry) findChannelByClientID(clientID string) (remoting.Conn, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, g := range r.mu.consumers {
		for _, ch := range g.channels {
			if ch.clientID == clientID {
				return ch.conn, true
			}
		}
	}
	for _, m := range r.mu.producers {
		for _, ch := range m {
			if ch.clientID == clientID {
				return ch.conn, true
			}
		}
	}
	if c, ok := r.mu.requesters[clientID]; ok {
		return c, true
	}
	return nil, false
}

// counts returns the number of producer and consumer channels (distinct
// connections are not deduplicated across groups).
func (r *clientRegistry) counts() (producers, consumers int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.mu.producers {
		producers += len(m)
	}
	for _, g := range r.mu.consumers {
		consumers += len(g.channels)
	}
	return
}
