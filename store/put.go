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
	return s.put(ctx, m, nil)
}

// PutMessages stores a batch (SEND_BATCH_MESSAGE) in one queue: every
// message must have the same topic and queue id; they get consecutive queue
// offsets and are appended and written as one block.
func (s *MessageStore) PutMessages(ctx context.Context, msgs []*Message) PutMessageResult {
	if len(msgs) == 0 {
		return PutMessageResult{Status: MessageIllegal, Err: errors.New("store: empty batch")}
	}
	return s.put(ctx, msgs[0], msgs)
}

func (s *MessageStore) put(ctx context.Context, m *Message, batch []*Message) PutMessageResult {
	start := time.Now()
	if !s.running() {
		return PutMessageResult{Status: ServiceNotAvailable, Err: ErrClosed}
	}
	if len(m.Topic) == 0 || len(m.Topic) > maxTopicLenV1 {
		return s.putFailed(MessageIllegal, errors.New("store: topic length must be 1..127 bytes"))
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
				return s.putFailed(MessageIllegal, errors.New("store: a batch must target one topic and queue"))
			}
			if bm.TransactionType() != TransactionNotType {
				return s.putFailed(MessageIllegal, errors.New("store: a batch cannot be transactional"))
			}
			if buf, err = s.encode(buf, bm); err != nil {
				break
			}
		}
	}
	*bp = buf
	if err != nil {
		if errors.Is(err, errPropertiesSize) {
			return s.putFailed(PropertiesSizeExceeded, err)
		}
		return s.putFailed(MessageIllegal, err)
	}
	if int64(len(buf))+endFileMinBlankLength > s.cfg.MappedFileSizeCommitLog {
		return s.putFailed(MessageIllegal, errors.New("store: message larger than a commitlog file"))
	}
	tx := m.TransactionType()
	consumes := tx == TransactionNotType || tx == TransactionCommitType
	key := queueKey{m.Topic, m.QueueID}
	if s.repl != nil {
		return s.putReplicated(ctx, buf, n, consumes, key, start)
	}

	s.putState.Lock()
	if !s.running() { // Shutdown passed its put barrier: do not touch closed files
		s.putState.Unlock()
		return PutMessageResult{Status: ServiceNotAvailable, Err: ErrClosed}
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
			return s.putFailed(MessageIllegal, err)
		}
		return s.putFailed(CreateMappedFileFailed, err)
	}
	r := PutMessageResult{Status: PutOK, WroteOffset: first, QueueOffset: qo, WroteBytes: int32(len(buf)),
		MsgNum: int32(n), StoreTimestamp: now, MsgID: s.msgIDs(buf)}
	if err := s.cl.write(end); err != nil {
		return s.putFailed(ServiceNotAvailable, err)
	}
	switch st := s.cl.waitDurable(ctx, end); st {
	case PutOK:
	case FlushDiskTimeout:
		r.Status, r.Err = st, errors.New("store: flush to disk timed out")
	default:
		return s.putFailed(st, errors.New("store: commitlog failed; restart to recover"))
	}
	s.stats.putDone(n, len(buf), time.Since(start))
	return r
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
