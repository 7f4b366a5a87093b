package broker

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
)

// Queue locks for orderly consumers: LOCK_BATCH_MQ (41) and UNLOCK_BATCH_MQ
// (42), protocol.md §7.8. A lock belongs to a client id within a consumer
// group; it is granted when the queue is unlocked, already held by the same
// client (which renews it), or held by a lock older than lockMaxLive.

const defaultLockMaxLive = 60 * time.Second

type lockKey struct {
	topic   string
	queueID int32
}

type lockEntry struct {
	clientID string
	renewed  time.Time
}

type lockManager struct {
	maxLive time.Duration
	now     func() time.Time
	mu      struct {
		sync.Mutex
		groups map[string]map[lockKey]*lockEntry
	}
}

func newLockManager(maxLive time.Duration) *lockManager {
	if maxLive <= 0 {
		maxLive = defaultLockMaxLive
	}
	lm := &lockManager{maxLive: maxLive, now: time.Now}
	lm.mu.groups = map[string]map[lockKey]*lockEntry{}
	return lm
}

// tryLockBatch locks what it can of mqs for clientID and returns the queues
// now held by clientID, in request order.
func (lm *lockManager) tryLockBatch(group, clientID string, mqs []messageQueue) []messageQueue {
	now := lm.now()
	lm.mu.Lock()
	defer lm.mu.Unlock()
	table := lm.mu.groups[group]
	if table == nil {
		table = map[lockKey]*lockEntry{}
		lm.mu.groups[group] = table
	}
	locked := make([]messageQueue, 0, len(mqs))
	for _, mq := range mqs {
		k := lockKey{mq.Topic, mq.QueueID}
		e := table[k]
		switch {
		case e == nil:
			table[k] = &lockEntry{clientID: clientID, renewed: now}
		case e.clientID == clientID:
			e.renewed = now
		case now.Sub(e.renewed) > lm.maxLive:
			e.clientID, e.renewed = clientID, now
		default:
			continue
		}
		locked = append(locked, mq)
	}
	return locked
}

// unlockBatch releases the locks of mqs that clientID holds.
func (lm *lockManager) unlockBatch(group, clientID string, mqs []messageQueue) {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	table := lm.mu.groups[group]
	for _, mq := range mqs {
		k := lockKey{mq.Topic, mq.QueueID}
		if e := table[k]; e != nil && e.clientID == clientID {
			delete(table, k)
		}
	}
	if len(table) == 0 {
		delete(lm.mu.groups, group)
	}
}

// isLocked reports whether the queue is held by a live lock of any client
// of group.
func (lm *lockManager) isLocked(group, topic string, queueID int32) bool {
	now := lm.now()
	lm.mu.Lock()
	defer lm.mu.Unlock()
	e := lm.mu.groups[group][lockKey{topic, queueID}]
	return e != nil && now.Sub(e.renewed) <= lm.maxLive
}

// groupHasLiveLocks reports whether any client of group holds an unexpired
// lock (Java sends retries of such groups straight to the DLQ).
func (lm *lockManager) groupHasLiveLocks(group string) bool {
	now := lm.now()
	lm.mu.Lock()
	defer lm.mu.Unlock()
	for _, e := range lm.mu.groups[group] {
		if now.Sub(e.renewed) <= lm.maxLive {
			return true
		}
	}
	return false
}

func (b *Broker) handleLockBatch(_ remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var body lockBatchBody
	if err := decodeBody(req.Body, &body); err != nil {
		return respond(protocol.SystemError, "bad lock body: "+err.Error())
	}
	if !b.IsMaster() {
		return respond(protocol.ServiceNotAvailable, notMasterRemark(b.masterHint()))
	}
	locked := b.locks.tryLockBatch(body.ConsumerGroup, body.ClientID, body.MQSet)
	resp := respond(protocol.Success, "")
	resp.Body, _ = json.Marshal(lockBatchResponse{LockOKMQSet: locked})
	return resp
}

func (b *Broker) handleUnlockBatch(_ remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	var body lockBatchBody
	if err := decodeBody(req.Body, &body); err != nil {
		return respond(protocol.SystemError, "bad unlock body: "+err.Error())
	}
	b.locks.unlockBatch(body.ConsumerGroup, body.ClientID, body.MQSet)
	return respond(protocol.Success, "")
}
