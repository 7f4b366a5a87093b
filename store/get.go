package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

var unitBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 16000); return &b }}

// GetMessage reads up to maxMsgNums records of a queue starting at offset,
// with RocketMQ's statuses and nextBeginOffset rules (protocol.md §7.1):
// units are scanned from the consume queue (at most MaxFilterMessageCount
// per call), tested against filter by tagsCode and then by the record, and
// the records read from the commitlog, contiguous runs with one read each.
// maxTotalBytes (0 = no limit) further caps the transfer.
func (s *MessageStore) GetMessage(group, topic string, queueID int32, offset int64, maxMsgNums int32,
	maxTotalBytes int, filter MessageFilter) GetMessageResult {
	start := time.Now()
	r := s.getMessage(topic, queueID, offset, maxMsgNums, maxTotalBytes, filter)
	s.stats.getDone(r.Status == Found, r.MsgCount, time.Since(start))
	return r
}

func (s *MessageStore) getMessage(topic string, queueID int32, offset int64, maxMsgNums int32,
	maxTotalBytes int, filter MessageFilter) GetMessageResult {
	r := GetMessageResult{Status: NoMessageInQueue, NextBeginOffset: offset}
	if !s.running() {
		return r
	}
	cq := s.findConsumeQueue(topic, queueID)
	if cq == nil {
		r.Status, r.NextBeginOffset = NoMatchedLogicQueue, 0
		return r
	}
	minOff, maxOff := cq.minOffset.Load(), cq.maxOffset.Load()
	r.MinOffset, r.MaxOffset = minOff, maxOff
	switch {
	case maxOff == 0:
		r.Status, r.NextBeginOffset = NoMessageInQueue, 0
		return r
	case offset < minOff:
		r.Status, r.NextBeginOffset = OffsetTooSmall, minOff
		return r
	case offset == maxOff:
		r.Status, r.NextBeginOffset = OffsetOverflowOne, offset
		return r
	case offset > maxOff:
		// protocol.md §7.1 and RocketMQ 5.x: back to maxOffset (4.x went
		// back to minOffset when it was 0, re-delivering the whole queue).
		r.Status, r.NextBeginOffset = OffsetOverflowBadly, maxOff
		return r
	}
	if maxMsgNums <= 0 {
		maxMsgNums = 1
	}
	maxCount := min(int(maxMsgNums), s.cfg.MaxTransferCountOnMessageInMemory)
	maxBytes := s.cfg.MaxTransferBytesOnMessageInMemory
	if maxTotalBytes > 0 {
		maxBytes = min(maxBytes, maxTotalBytes)
	}
	scanUnits := max(s.cfg.MaxFilterMessageCount, int(maxMsgNums))
	bp := unitBufPool.Get().(*[]byte)
	defer unitBufPool.Put(bp)
	units, ok, err := cq.readUnits(offset, scanUnits, (*bp)[:0])
	if cap(units) <= 1<<20 {
		*bp = units[:0]
	}
	if !ok || err != nil || len(units) == 0 {
		r.Status = OffsetFoundNull
		fileUnits := s.cfg.MappedFileSizeConsumeQueue / CQUnitSize
		r.NextBeginOffset = (offset/fileUnits + 1) * fileUnits
		return r
	}
	minPhy := s.cl.minOffset()
	confirm := s.cl.confirmOffset()
	r.Status = NoMatchedMessage
	// Pass 1: choose units; pass 2: read their records in contiguous runs.
	var chosenStack [64]CQUnit
	chosen := chosenStack[:0]
	total := 0
	scanned := 0
	maxPhyPulling := int64(0)
	for i := 0; i < len(units); i += CQUnitSize {
		u := decodeUnit(units[i:], offset+int64(i/CQUnitSize))
		if u.Size <= 0 || u.Size == math.MaxInt32 {
			scanned++
			continue
		}
		if len(chosen) > 0 && (len(chosen) >= maxCount || total+int(u.Size) > maxBytes) {
			break
		}
		scanned++
		maxPhyPulling = u.CommitLogOffset
		if u.CommitLogOffset < minPhy || u.CommitLogOffset+int64(u.Size) > confirm {
			if len(chosen) == 0 {
				r.Status = MessageWasRemoving
			}
			continue
		}
		if filter != nil && !filter.IsMatchedByConsumeQueue(u.TagsCode) {
			continue
		}
		chosen = append(chosen, u)
		total += int(u.Size)
	}
	r.NextBeginOffset = offset + int64(scanned)
	if len(chosen) == 0 {
		return r
	}
	buf := make([]byte, total)
	r.Messages = make([][]byte, 0, len(chosen))
	r.QueueOffsets = make([]int64, 0, len(chosen))
	readPos := 0
	for i := 0; i < len(chosen); {
		j := i + 1
		runEnd := chosen[i].CommitLogOffset + int64(chosen[i].Size)
		for j < len(chosen) && chosen[j].CommitLogOffset == runEnd && s.sameFile(chosen[i].CommitLogOffset, runEnd) {
			runEnd += int64(chosen[j].Size)
			j++
		}
		runLen := int(runEnd - chosen[i].CommitLogOffset)
		base := readPos
		readPos += runLen
		if _, err := s.cl.readAt(buf[base:base+runLen], chosen[i].CommitLogOffset); err != nil {
			if r.MsgCount == 0 {
				r.Status = MessageWasRemoving
			}
			i = j
			continue
		}
		off := base
		for k := i; k < j; k++ {
			size := int(chosen[k].Size)
			rec := buf[off : off+size] // capacity runs on: do not append to it
			off += size
			if len(rec) < 8 || int(binary.BigEndian.Uint32(rec)) != size {
				continue
			}
			if filter != nil && !filter.IsMatchedByCommitLog(rec) {
				continue
			}
			r.Messages = append(r.Messages, rec)
			r.QueueOffsets = append(r.QueueOffsets, chosen[k].QueueOffset)
			r.MsgCount++
			r.BufferTotalSize += size
		}
		i = j
	}
	if r.MsgCount > 0 {
		r.Status = Found
	}
	if mem := totalMemory(); mem > 0 {
		r.SuggestPullingFromSlave = s.cl.maxOffset()-maxPhyPulling > int64(float64(mem)*0.4)
	}
	return r
}

func (s *MessageStore) sameFile(a, b int64) bool {
	size := s.cfg.MappedFileSizeCommitLog
	return a/size == (b-1)/size
}

// GetMaxOffsetInQueue is the queue's next logical offset (0 if unknown).
func (s *MessageStore) GetMaxOffsetInQueue(topic string, queueID int32) int64 {
	if cq := s.findConsumeQueue(topic, queueID); cq != nil {
		return cq.maxOffset.Load()
	}
	return 0
}

// GetMinOffsetInQueue is the queue's first valid logical offset (0 if unknown).
func (s *MessageStore) GetMinOffsetInQueue(topic string, queueID int32) int64 {
	if cq := s.findConsumeQueue(topic, queueID); cq != nil {
		return cq.minOffset.Load()
	}
	return 0
}

// GetCommitLogOffsetInQueue is the commitlog offset of a queue's unit (0 if none).
func (s *MessageStore) GetCommitLogOffsetInQueue(topic string, queueID int32, consumeQueueOffset int64) int64 {
	if cq := s.findConsumeQueue(topic, queueID); cq != nil {
		if u, ok := cq.unit(consumeQueueOffset); ok {
			return u.CommitLogOffset
		}
	}
	return 0
}

// GetConsumeQueueUnits reads up to max units from offset (the delay
// scheduler reads SCHEDULE_TOPIC_XXXX units, whose TagsCode is the delivery time).
func (s *MessageStore) GetConsumeQueueUnits(topic string, queueID int32, offset int64, max int) ([]CQUnit, error) {
	cq := s.findConsumeQueue(topic, queueID)
	if cq == nil || offset >= cq.maxOffset.Load() {
		return nil, nil
	}
	offset = maxInt64(offset, cq.minOffset.Load())
	var out []CQUnit
	for len(out) < max && offset < cq.maxOffset.Load() {
		b, ok, err := cq.readUnits(offset, max-len(out), nil)
		if err != nil {
			return out, err
		}
		if !ok || len(b) == 0 {
			break
		}
		for i := 0; i < len(b); i += CQUnitSize {
			out = append(out, decodeUnit(b[i:], offset))
			offset++
		}
	}
	return out, nil
}

func maxInt64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// storeTimeAt reads the STORETIMESTAMP of the record at a commitlog offset (-1 if gone).
func (s *MessageStore) storeTimeAt(phy int64) int64 {
	var h [80]byte
	if _, err := s.cl.readAt(h[:76], phy); err != nil {
		return -1
	}
	ts, ok := recordStoreTimestamp(h[:76])
	if !ok {
		return -1
	}
	return ts
}

// GetMessageStoreTimeStamp is the store time of a queue's message (-1 if none).
func (s *MessageStore) GetMessageStoreTimeStamp(topic string, queueID int32, consumeQueueOffset int64) int64 {
	cq := s.findConsumeQueue(topic, queueID)
	if cq == nil {
		return -1
	}
	u, ok := cq.unit(consumeQueueOffset)
	if !ok {
		return -1
	}
	return s.storeTimeAt(u.CommitLogOffset)
}

// GetEarliestMessageTime is the store time of the queue's first message (-1 if none).
func (s *MessageStore) GetEarliestMessageTime(topic string, queueID int32) int64 {
	return s.GetMessageStoreTimeStamp(topic, queueID, s.GetMinOffsetInQueue(topic, queueID))
}

// GetOffsetInQueueByTime returns the first queue offset whose message was
// stored at or after timestamp (SEARCH_OFFSET_BY_TIMESTAMP); maxOffset when
// every message is older, minOffset when every message is newer. (Java 4.9
// returns the nearest of the two neighbours; 5.x's default boundary is this
// lower one.)
func (s *MessageStore) GetOffsetInQueueByTime(topic string, queueID int32, timestamp int64) int64 {
	cq := s.findConsumeQueue(topic, queueID)
	if cq == nil {
		return 0
	}
	lo, hi := cq.minOffset.Load(), cq.maxOffset.Load()
	// Invariant: answer in [lo, hi]; store timestamps grow with queue offsets.
	for lo < hi {
		mid := lo + (hi-lo)/2
		u, ok := cq.unit(mid)
		ts := int64(-1)
		if ok {
			ts = s.storeTimeAt(u.CommitLogOffset)
		}
		if ts < 0 || ts < timestamp {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// LookMessageByOffset decodes the record at a commitlog offset (VIEW_MESSAGE_BY_ID).
func (s *MessageStore) LookMessageByOffset(commitLogOffset int64) (*MessageExt, error) {
	rec, err := s.readRecord(commitLogOffset)
	if err != nil {
		return nil, err
	}
	return DecodeMessage(rec, true)
}

// SelectOneMessageByOffset returns the raw record at a commitlog offset;
// size <= 0 reads the size from the record.
func (s *MessageStore) SelectOneMessageByOffset(commitLogOffset int64, size int32) ([]byte, error) {
	if size <= 0 {
		return s.readRecord(commitLogOffset)
	}
	if commitLogOffset < s.cl.minOffset() || commitLogOffset+int64(size) > s.cl.confirmOffset() {
		return nil, ErrNotFound
	}
	buf := make([]byte, size)
	if _, err := s.cl.readAt(buf, commitLogOffset); err != nil {
		return nil, err
	}
	return buf, nil
}

func (s *MessageStore) readRecord(phy int64) ([]byte, error) {
	if phy < s.cl.minOffset() || phy+8 > s.cl.confirmOffset() {
		return nil, ErrNotFound
	}
	var h [8]byte
	if _, err := s.cl.readAt(h[:], phy); err != nil {
		return nil, err
	}
	size := int32(binary.BigEndian.Uint32(h[:]))
	magic := int32(binary.BigEndian.Uint32(h[4:]))
	if (magic != MessageMagicCodeV1 && magic != MessageMagicCodeV2) || size < 91 || phy+int64(size) > s.cl.confirmOffset() {
		return nil, fmt.Errorf("%w: no record at offset %d", ErrNotFound, phy)
	}
	buf := make([]byte, size)
	if _, err := s.cl.readAt(buf, phy); err != nil {
		return nil, err
	}
	return buf, nil
}

// QueryMessage finds records by key (a KEYS word or the UNIQ_KEY) stored in
// [begin, end] (ms) through the index files, newest first, at most maxNum.
// Every candidate is read and checked (topic and key), so hash collisions and
// stale entries never leak out.
func (s *MessageStore) QueryMessage(topic, key string, maxNum int32, begin, end int64) (QueryMessageResult, error) {
	var res QueryMessageResult
	if s.index == nil {
		return res, nil
	}
	if maxNum <= 0 {
		maxNum = 32
	}
	res.IndexLastUpdateTimestamp, res.IndexLastUpdatePhyoffset = s.index.lastUpdate()
	offs := s.index.query(topic+"#"+key, int(maxNum)*2+8, begin, end)
	seen := map[int64]bool{}
	for _, phy := range offs {
		if seen[phy] || len(res.Messages) >= int(maxNum) {
			continue
		}
		seen[phy] = true
		rec, err := s.readRecord(phy)
		if err != nil {
			continue
		}
		var v recordView
		if parseRecord(rec, &v, false) != nil || string(v.topic) != topic {
			continue
		}
		if !recordHasKey(v.props, key) {
			continue
		}
		res.Messages = append(res.Messages, rec)
	}
	return res, nil
}

func recordHasKey(props []byte, key string) bool {
	if uk, ok := lookupProperty(props, PropertyUniqClientMessageIDKey); ok && string(uk) == key {
		return true
	}
	keys, _ := lookupProperty(props, PropertyKeys)
	for len(keys) > 0 {
		i := indexByte(keys, ' ')
		word := keys
		if i >= 0 {
			word, keys = keys[:i], keys[i+1:]
		} else {
			keys = nil
		}
		if string(word) == key {
			return true
		}
	}
	return false
}

// GetMaxPhyOffset is the end of the readable commitlog.
func (s *MessageStore) GetMaxPhyOffset() int64 { return s.cl.confirmOffset() }

// GetMinPhyOffset is the first commitlog offset still stored.
func (s *MessageStore) GetMinPhyOffset() int64 { return s.cl.minOffset() }

// DispatchedOffset: every record below it has its consume-queue unit and index entries.
func (s *MessageStore) DispatchedOffset() int64 { return s.dispatched.Load() }

// ConfirmOffset is how far the dispatcher may go (classic: everything written).
func (s *MessageStore) ConfirmOffset() int64 { return s.cl.confirmOffset() }

// FlushedOffset: the commitlog is durable below it.
func (s *MessageStore) FlushedOffset() int64 { return s.cl.flushedOffset() }

// SetMessageArrivingListener installs the long-polling hook (nil removes it).
func (s *MessageStore) SetMessageArrivingListener(l MessageArrivingListener) {
	if l == nil {
		s.listener.Store(nil)
		return
	}
	s.listener.Store(&l)
}

// Topics lists the queues that have a consume queue (SystemTopic, the
// store's own, excluded).
func (s *MessageStore) Topics() map[string][]int32 {
	s.cqMu.RLock()
	defer s.cqMu.RUnlock()
	out := make(map[string][]int32, len(s.cqTable))
	for t, m := range s.cqTable {
		if isStoreTopic(t) {
			continue
		}
		for id := range m {
			out[t] = append(out[t], id)
		}
	}
	return out
}

// DeleteTopics removes the consume queues of topics and their queue offset
// counters (the commitlog keeps the records until retention), so a topic
// created again under the same name starts at queue offset 0. It returns
// the number of queues removed (in DLedger mode: of topics). The store's own topics (SystemTopic,
// UpgradeTopic, TopicOpsTopic) are never removed: restarts read them.
//
// In DLedger mode the deletion is a record of the replicated log
// (TopicOpsTopic): every replica removes the queues when it dispatches
// that record, in log order, so messages before it are gone everywhere and
// messages after it start the queues again at 0 everywhere, also on a
// replica that re-dispatches after a restart or leads after a failover. It
// then fails like a put on a replica that is not the writable leader, and
// returns once the record is committed and dispatched here.
func (s *MessageStore) DeleteTopics(ctx context.Context, topics []string) (int, error) {
	topics = slices.DeleteFunc(slices.Clone(topics), isStoreTopic)
	if len(topics) == 0 {
		return 0, nil
	}
	if s.repl == nil {
		s.dispatchMu.Lock()
		defer s.dispatchMu.Unlock()
		n := s.destroyTopicsLocked(topics)
		s.putState.Lock()
		for k := range s.putState.queueOffsets {
			if slices.Contains(topics, k.topic) {
				delete(s.putState.queueOffsets, k)
			}
		}
		s.putState.Unlock()
		return n, nil
	}
	body := append([]byte{topicOpDelete}, strings.Join(topics, "\n")...)
	if _, err := s.proposeStoreRecord(ctx, TopicOpsTopic, body); err != nil {
		return 0, err
	}
	return len(topics), nil
}

// destroyTopicsLocked removes the consume queues of topics (dispatchMu
// held) and returns how many it removed.
func (s *MessageStore) destroyTopicsLocked(topics []string) int {
	n := 0
	for _, t := range topics {
		s.cqMu.Lock()
		qs := s.cqTable[t]
		delete(s.cqTable, t)
		s.cqMu.Unlock()
		for _, cq := range qs {
			if err := cq.destroy(); err != nil {
				s.logger.Warn("delete consume queue", zap.String("topic", t), zap.Error(err))
			}
			n++
		}
		s.cfg.FS.Remove(filepath.Join(s.cfg.RootDir, "consumequeue", t))
	}
	// Units the current dispatch round gathered for them go too. (Only
	// written when needed: between rounds the dispatcher reads its length
	// without the lock.)
	destroyed := func(cq *consumeQueue) bool { return cq.destroyed }
	if slices.ContainsFunc(s.disp.touched, destroyed) {
		s.disp.touched = slices.DeleteFunc(s.disp.touched, destroyed)
	}
	return n
}
