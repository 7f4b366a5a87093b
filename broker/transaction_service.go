package broker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
	"github.com/rmqd/rmqd/store"
	"go.uber.org/zap"
)

// Transactional messages (protocol.md §8.4).
//
//  1. prepareHalf (a send hook) parks a prepared message in
//     RMQ_SYS_TRANS_HALF_TOPIC queue 0 with REAL_TOPIC / REAL_QID and
//     __transactionId__, its transaction bits reset to NOT_TYPE.
//  2. END_TRANSACTION (processEndTransaction) commits — re-puts the half
//     record to its real topic with the COMMIT bits — or rolls back, and in
//     both cases writes an op record (tag "d", body "<half queue offset>,")
//     to RMQ_SYS_TRANS_OP_HALF_TOPIC queue 0, which marks the half record
//     done.
//  3. The check service (transaction_check.go), master-only, scans half
//     records without an op record and asks a producer of their group
//     (CHECK_TRANSACTION_STATE, oneway) what became of them; the producer
//     answers with END_TRANSACTION fromTransactionCheck=true.

// transactionConfig is what the transaction service needs besides the store.
type transactionConfig struct {
	brokerName string
	levels     delayLevels   // committed messages may carry a delay level
	timeout    time.Duration // transactionTimeOut: a half record is checked once older
	interval   time.Duration // transactionCheckInterval
	checkMax   int           // transactionCheckMax: checks before a half record is given up
	reserved   time.Duration // fileReservedTime: older half records are given up unchecked
	// loadOffset / saveOffset keep the scan progress of the half and op
	// queues as offsets of the consumer group CID_RMQ_SYS_TRANS (-1: none).
	loadOffset func(topic string, queueID int32) int64
	saveOffset func(topic string, queueID int32, offset int64)
	// producers lists the live connections of a producer group.
	producers func(group string) []remoting.Conn
	// ensureTopic creates a system topic on first use (TRANS_CHECK_MAX_TIME_TOPIC).
	ensureTopic func(topic string, queues int) bool
	log         *zap.Logger
	now         func() time.Time
}

// transactionService holds the half/op logic and the check loop.
type transactionService struct {
	store extrasStore
	cfg   transactionConfig

	opaque atomic.Int32 // of the CHECK_TRANSACTION_STATE requests

	mu struct {
		sync.Mutex
		stopCh chan struct{} // nil while stopped
		doneCh chan struct{}
	}
}

func newTransactionService(st extrasStore, cfg transactionConfig) *transactionService {
	if cfg.log == nil {
		cfg.log = zap.NewNop()
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	if cfg.timeout <= 0 {
		cfg.timeout = 6 * time.Second
	}
	if cfg.interval <= 0 {
		cfg.interval = 30 * time.Second
	}
	if cfg.checkMax <= 0 {
		cfg.checkMax = 15
	}
	if cfg.loadOffset == nil {
		cfg.loadOffset = func(string, int32) int64 { return -1 }
	}
	if cfg.saveOffset == nil {
		cfg.saveOffset = func(string, int32, int64) {}
	}
	if cfg.producers == nil {
		cfg.producers = func(string) []remoting.Conn { return nil }
	}
	if cfg.ensureTopic == nil {
		cfg.ensureTopic = func(string, int) bool { return true }
	}
	return &transactionService{store: st, cfg: cfg}
}

// prepareHalf turns a prepared transactional message (sysFlag PREPARED or
// property TRAN_MSG=true) into its half record. It reports whether m was
// rewritten.
func prepareHalf(m *store.Message) bool {
	if transactionType(m.SysFlag) != sysFlagTransPrepared && m.Property(propTransPrepared) != "true" {
		return false
	}
	add := []string{propRealTopic, m.Topic, propRealQueueID, strconv.Itoa(int(m.QueueID))}
	if uniq := m.Property(propUniqKey); uniq != "" {
		add = append(add, propTransactionID, uniq)
	}
	m.Properties = m.Properties.With(add...)
	m.SysFlag = resetTransactionType(m.SysFlag, sysFlagTransNotType)
	m.Topic = transHalfTopic
	m.QueueID = 0
	return true
}

// committedMessage is the real message a committed half record becomes
// (Java's endMessageTransaction).
func committedMessage(half *store.MessageExt) (*store.Message, error) {
	topic := half.Property(propRealTopic)
	qid, err := strconv.Atoi(half.Property(propRealQueueID))
	if topic == "" || err != nil || qid < 0 {
		return nil, fmt.Errorf("half message at %d has no usable REAL_TOPIC/REAL_QID", half.CommitLogOffset)
	}
	props := half.Properties.Without(propRealTopic, propRealQueueID, propTransPrepared)
	return &store.Message{
		Topic:                     topic,
		Flag:                      half.Flag,
		Body:                      half.Body,
		Properties:                props,
		QueueID:                   int32(qid),
		SysFlag:                   resetTransactionType(half.SysFlag, sysFlagTransCommit),
		BornTimestamp:             half.BornTimestamp,
		BornHost:                  half.BornHost,
		StoreHost:                 half.StoreHost,
		ReconsumeTimes:            half.ReconsumeTimes,
		PreparedTransactionOffset: half.CommitLogOffset,
	}, nil
}

func (t *transactionService) put(m *store.Message) store.PutMessageResult {
	ctx, cancel := context.WithTimeout(context.Background(), extrasPutTimeout)
	defer cancel()
	return t.store.PutMessage(ctx, m)
}

// putOp writes the op record that marks a half record done.
func (t *transactionService) putOp(half *store.MessageExt) store.PutMessageResult {
	return t.put(&store.Message{
		Topic:         transOpHalfTopic,
		QueueID:       half.QueueID,
		Body:          opBody(half.QueueOffset),
		Properties:    store.Properties("").With(propTags, transOpRemoveTag),
		BornTimestamp: t.cfg.now().UnixMilli(),
		BornHost:      half.StoreHost,
	})
}

// processEndTransaction serves END_TRANSACTION (37). checkMaster answers a
// request the broker may not serve now (not master, not writable), or nil.
func (t *transactionService) processEndTransaction(req *remoting.RemotingCommand, checkMaster func() *remoting.RemotingCommand) *remoting.RemotingCommand {
	var h protocol.EndTransactionRequestHeader
	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
		return extrasRespond(protocol.SystemError, "bad END_TRANSACTION header: "+err.Error())
	}
	switch h.CommitOrRollback {
	case protocol.TransactionCommit, protocol.TransactionRollback:
	default:
		// Unknown (0) or garbage: nothing to do, and Java sends no answer.
		return nil
	}
	if checkMaster != nil {
		if resp := checkMaster(); resp != nil {
			return resp
		}
	}
	half, err := t.store.LookMessageByOffset(h.CommitLogOffset)
	if err != nil || half == nil {
		return extrasRespond(protocol.SystemError, "Find prepared transaction message failed")
	}
	if t.rejectLate(&h, half) {
		return extrasRespond(protocol.IllegalOperation, fmt.Sprintf(
			"the transaction %s is beyond its check immunity time, commit or rollback refused", h.MsgID))
	}
	if resp := checkHalf(&h, half); resp != nil {
		return resp
	}
	if h.CommitOrRollback == protocol.TransactionCommit {
		m, err := committedMessage(half)
		if err != nil {
			return extrasRespond(protocol.SystemError, err.Error())
		}
		scheduleDelayed(m, t.cfg.levels)
		res := t.put(m)
		if !res.Status.OK() {
			return putFailure(res)
		}
	}
	if res := t.putOp(half); !res.Status.OK() {
		t.cfg.log.Warn("op record for an ended transaction not written; it will be checked again",
			zap.Int64("halfOffset", half.QueueOffset), zap.Stringer("status", res.Status), zap.Error(res.Err))
	}
	return extrasRespond(protocol.Success, "")
}

// rejectLate is Java's rejectCommitOrRollback: a producer's own decision
// (not one it gave to a check) arriving after the half record's
// CHECK_IMMUNITY_TIME_IN_SECONDS is refused.
func (t *transactionService) rejectLate(h *protocol.EndTransactionRequestHeader, half *store.MessageExt) bool {
	if h.FromTransactionCheck {
		return false
	}
	imm := half.Property(propCheckImmunityTime)
	if imm == "" {
		return false
	}
	return t.cfg.now().UnixMilli()-half.BornTimestamp > immunityMillis(imm, t.cfg.timeout)
}

// checkHalf verifies that the record at commitLogOffset is the half
// message the request names (Java's checkPrepareMessage).
func checkHalf(h *protocol.EndTransactionRequestHeader, half *store.MessageExt) *remoting.RemotingCommand {
	if half.Topic != transHalfTopic {
		return extrasRespond(protocol.SystemError, "Find prepared transaction message failed")
	}
	if half.Property(propProducerGroup) != h.ProducerGroup {
		return extrasRespond(protocol.SystemError, "The producer group wrong")
	}
	if half.QueueOffset != h.TranStateTableOffset {
		return extrasRespond(protocol.SystemError, "The transaction state table offset wrong")
	}
	if half.CommitLogOffset != h.CommitLogOffset {
		return extrasRespond(protocol.SystemError, "The commit log offset wrong")
	}
	return nil
}

// putFailure maps a failed put to a response (Java's sendFinalMessage).
func putFailure(res store.PutMessageResult) *remoting.RemotingCommand {
	switch res.Status {
	case store.MessageIllegal, store.PropertiesSizeExceeded:
		return extrasRespond(protocol.MessageIllegal, "The message is illegal, maybe msg body or properties length not matched.")
	case store.ServiceNotAvailable, store.NotLeader:
		return extrasRespond(protocol.ServiceNotAvailable, "Service not available now.")
	case store.CreateMappedFileFailed:
		return extrasRespond(protocol.SystemError, "Create mapped file failed.")
	case store.OSPageCacheBusy:
		return extrasRespond(protocol.SystemError, "OS page cache busy, please try another machine")
	}
	return extrasRespond(protocol.SystemError, res.Status.String())
}

// sendCheck asks one producer of the half record's group about it. half is
// the record as re-appended by the check (its offsets are what the
// producer echoes back in END_TRANSACTION).
func (t *transactionService) sendCheck(half *store.MessageExt) {
	group := half.Property(propProducerGroup)
	conns := t.cfg.producers(group)
	if len(conns) == 0 {
		t.cfg.log.Warn("transaction check: no producer of the group online", zap.String("group", group),
			zap.String("msgId", half.Property(propUniqKey)))
		return
	}
	conn := conns[rand.IntN(len(conns))]
	m := half.Message
	m.Topic = half.Property(propRealTopic)
	if qid, err := strconv.Atoi(half.Property(propRealQueueID)); err == nil {
		m.QueueID = int32(qid)
	}
	body, err := store.EncodeStored(nil, &m, half.QueueOffset, half.CommitLogOffset, half.StoreTimestamp)
	if err != nil {
		t.cfg.log.Warn("transaction check: cannot encode the half message", zap.Error(err))
		return
	}
	tid := half.Property(propTransactionID)
	if tid == "" {
		tid = half.Property(propUniqKey)
	}
	req := &remoting.RemotingCommand{
		Code:     protocol.CheckTransactionState,
		Language: protocol.LanguageJava,
		Opaque:   t.opaque.Add(1),
		Flag:     remoting.FlagOneway,
		ExtFields: protocol.EncodeHeader(&protocol.CheckTransactionStateRequestHeader{
			Topic:                m.Topic,
			TranStateTableOffset: half.QueueOffset,
			CommitLogOffset:      half.CommitLogOffset,
			MsgID:                half.Property(propUniqKey),
			TransactionID:        tid,
			OffsetMsgID:          half.MsgID,
			BrokerName:           t.cfg.brokerName,
		}),
		Body: body,
	}
	if err := conn.Send(req); err != nil {
		t.cfg.log.Warn("transaction check: send failed", zap.String("group", group),
			zap.String("producer", conn.RemoteAddr()), zap.Error(err))
	}
}

// extrasRespond is a handler response (the server marks it as the answer).
func extrasRespond(code int16, remark string) *remoting.RemotingCommand {
	return &remoting.RemotingCommand{Code: code, Remark: remark, Language: protocol.LanguageJava}
}
