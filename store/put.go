package store

import (
	"context"
	"encoding/binary"
	"errors"
	"time"
)

// PutMessage stores one message and returns once it is durable as the flush
// type requires: AsyncFlush after the write (page cache), SyncFlush after an
// fsync covering it. Concurrent callers share one WriteAt and one fsync
// (group commit). The record is encoded once, into a pooled buffer.
func (s *MessageStore) PutMessage(ctx context.Context, m *Message) PutMessageResult {
	res, _ := s.put(ctx, m, nil, nil)
	return res
}

// PutMessages stores a batch (SEND_BATCH_MESSAGE) in one queue: every
// message must have the same topic and queue id; they get consecutive queue
// offsets and are appended and written as one block.
func (s *MessageStore) PutMessages(ctx context.Context, msgs []*Message) PutMessageResult {
	if len(msgs) == 0 {
		return PutMessageResult{Status: MessageIllegal, Err: errors.New("store: empty batch")}
	}
	res, _ := s.put(ctx, msgs[0], msgs, nil)
	return res
}

// PutCallback receives the result of PutMessageAsync.
type PutCallback interface {
	// PutDone is called exactly once with the put's result, on the
	// goroutine that completed it: the caller of PutMessageAsync when the
	// put ended at once (refused, failed, or classic mode), otherwise a
	// store goroutine that completes the puts of a replicated batch one
	// after another. It must be quick and must never block or call the
	// store's put methods (it delays the others' answers). What it wants
	// done once for all the puts completed together (one write per
	// connection for their answers) it adds to after, which the store runs
	// right after their callbacks, on the same goroutine.
	PutDone(res PutMessageResult, after *AfterPuts)
}

// Flusher is work a PutCallback leaves for after the callbacks of the puts
// completed with it.
type Flusher interface{ Flush() }

// AfterPuts collects the Flushers of the callbacks of puts completed
// together.
type AfterPuts struct {
	fs  []Flusher
	arr [4]Flusher
}

// Add schedules f.Flush for after the callbacks (once per Add).
func (a *AfterPuts) Add(f Flusher) {
	if a.fs == nil {
		a.fs = a.arr[:0]
	}
	a.fs = append(a.fs, f)
}

func (a *AfterPuts) run() {
	for i, f := range a.fs {
		a.fs[i] = nil
		f.Flush()
	}
	a.fs = a.fs[:0]
}

// PutMessageAsync stores m as PutMessage does and hands the result to cb
// instead of returning it: in DLedger mode the caller does not wait for the
// replicated commit (no goroutine is held per put in flight; issue 8). The
// wait is bounded as PutMessage's is (FlushSlaveTimeout after
// Config.ReplicationTimeout; ServiceNotAvailable when the store shuts
// down first), and cb is called exactly once in every case. In classic mode
// the put is synchronous and cb is called before PutMessageAsync returns.
func (s *MessageStore) PutMessageAsync(m *Message, cb PutCallback) {
	if res, pending := s.put(context.Background(), m, nil, cb); !pending {
		var after AfterPuts
		cb.PutDone(res, &after)
		after.run()
	}
}

// put stores m (or batch). With cb in DLedger mode it may return pending
// instead of the result: then cb gets the result later.
func (s *MessageStore) put(ctx context.Context, m *Message, batch []*Message, cb PutCallback) (_ PutMessageResult, pending bool) {
	start := time.Now()
	if !s.running() {
		return PutMessageResult{Status: ServiceNotAvailable, Err: ErrClosed}, false
	}
	if len(m.Topic) == 0 || len(m.Topic) > maxTopicLenV1 {
		return s.putFailed(MessageIllegal, errors.New("store: topic length must be 1..127 bytes")), false
	}
	// Puts in flight: a hint for the elected writer (see writeBatches).
	s.classic.inflight.Add(1)
	defer s.classic.inflight.Add(-1)
	bp := s.bufPool.Get().(*[]byte)
	defer s.bufPool.Put(bp)
	buf := (*bp)[:0]
	n := 1
	var err error
	if batch == nil {
		buf, err = s.encode(buf, m)
	} else {
		n = len(batch)
		for _, bm := range batch {
			if bm.Topic != m.Topic || bm.QueueID != m.QueueID {
				return s.putFailed(MessageIllegal, errors.New("store: a batch must target one topic and queue")), false
			}
			if bm.TransactionType() != TransactionNotType {
				return s.putFailed(MessageIllegal, errors.New("store: a batch cannot be transactional")), false
			}
			if buf, err = s.encode(buf, bm); err != nil {
				break
			}
		}
	}
	*bp = buf
	if err != nil {
		if errors.Is(err, errPropertiesSize) {
			return s.putFailed(PropertiesSizeExceeded, err), false
		}
		return s.putFailed(MessageIllegal, err), false
	}
	if int64(len(buf))+endFileMinBlankLength > s.cfg.MappedFileSizeCommitLog {
		return s.putFailed(MessageIllegal, errors.New("store: message larger than a commitlog file")), false
	}
	tx := m.TransactionType()
	consumes := tx == TransactionNotType || tx == TransactionCommitType
	key := queueKey{m.Topic, m.QueueID}
	if s.repl != nil {
		if cb != nil {
			return s.putReplicatedAsync(buf, n, consumes, key, start, cb)
		}
		return s.putReplicated(ctx, buf, n, consumes, key, start), false
	}

	s.putState.Lock()
	if !s.running() { // Shutdown passed its put barrier: do not touch closed files
		s.putState.Unlock()
		return PutMessageResult{Status: ServiceNotAvailable, Err: ErrClosed}, false
	}
	now := s.cfg.Now().UnixMilli()
	if now < s.putState.lastStoreTs {
		now = s.putState.lastStoreTs
	}
	s.putState.lastStoreTs = now
	var qo int64
	if consumes {
		qo = s.putState.queueOffsets[key]
	}
	for p, i := 0, int64(0); p < len(buf); i++ {
		rec := buf[p:]
		if consumes {
			binary.BigEndian.PutUint64(rec[posQueueOffset:], uint64(qo+i))
		}
		binary.BigEndian.PutUint64(rec[storeTimestampPos(int32(be32(rec[posSysFlag:]))):], uint64(now))
		p += int(be32(rec))
	}
	first, end, err := s.cl.append(buf, now)
	if err == nil && consumes {
		s.putState.queueOffsets[key] = qo + int64(n)
	}
	s.putState.Unlock()
	if err != nil {
		if errors.Is(err, ErrMalformed) {
			return s.putFailed(MessageIllegal, err), false
		}
		return s.putFailed(CreateMappedFileFailed, err), false
	}
	r := PutMessageResult{Status: PutOK, WroteOffset: first, QueueOffset: qo, WroteBytes: int32(len(buf)),
		MsgNum: int32(n), StoreTimestamp: now, MsgID: s.msgIDs(buf)}
	if err := s.cl.write(end); err != nil {
		return s.putFailed(ServiceNotAvailable, err), false
	}
	switch st := s.cl.waitDurable(ctx, end); st {
	case PutOK:
	case FlushDiskTimeout:
		r.Status, r.Err = st, errors.New("store: flush to disk timed out")
	default:
		return s.putFailed(st, errors.New("store: commitlog failed; restart to recover")), false
	}
	s.stats.putDone(n, len(buf), time.Since(start))
	return r, false
}

func (s *MessageStore) putFailed(st PutMessageStatus, err error) PutMessageResult {
	s.stats.putFailed.Add(1)
	return PutMessageResult{Status: st, Err: err}
}

func (s *MessageStore) encode(dst []byte, m *Message) ([]byte, error) {
	host := &s.storeHost
	if m.StoreHost != "" && m.StoreHost != s.cfg.StoreHost {
		h, err := parseHost(m.StoreHost)
		if err != nil {
			return dst, err
		}
		host = &h
	}
	return encodeStored(dst, m, host, 0, 0, 0, s.cfg.MaxMessageSize)
}

// msgIDs builds the offset msgId(s) of the placed records (comma-joined for
// a batch) with one allocation.
func (s *MessageStore) msgIDs(recs []byte) string {
	var stack [64]byte
	out := stack[:0]
	for p := 0; p < len(recs); {
		rec := recs[p:]
		if p > 0 {
			out = append(out, ',')
		}
		sysFlag := int32(be32(rec[posSysFlag:]))
		hostAt := storeTimestampPos(sysFlag) + 8
		hostLen := 8
		if sysFlag&StoreHostAddressV6Flag != 0 {
			hostLen = 20
		}
		out = appendMsgID(out, rec[hostAt:hostAt+hostLen], int64(be64(rec[posPhysicalOffset:])))
		p += int(be32(rec))
	}
	return string(out)
}
