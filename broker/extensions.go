package broker

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/rmqd/rmqd/metadata"
	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
	"github.com/rmqd/rmqd/store"
	"go.uber.org/zap"
)

// newExtensions builds the broker parts that live in their own files
// (retry/DLQ, delay levels, transactions); see "Extensions" in broker.go.
// It is called once from New, before any server starts; b.Store() and
// b.Metadata() are still nil then, so everything here reads them lazily.
//
// What it plugs in:
//   - processors: CONSUMER_SEND_MSG_BACK (36), END_TRANSACTION (37) and,
//     unless the admin processors serve it, GET_ALL_DELAY_OFFSET (45);
//   - one send hook, in this order: %RETRY% sends beyond the max reconsume
//     times go to %DLQ% (the client's send-back fallback), prepared
//     transactional messages become half messages, delayed messages are
//     parked in SCHEDULE_TOPIC_XXXX;
//   - master-only services (Start/Stop): delay delivery and transaction
//     check-backs.
func newExtensions(b *Broker) ([]Extension, error) {
	cfg := b.Config()
	lv, err := cfg.MessageDelayLevels()
	if err != nil {
		return nil, err
	}
	levels := delayLevels(lv)
	st := brokerStore{b}
	log := b.Logger()
	x := &extras{b: b, levels: levels}

	x.schedule = newScheduleService(st, scheduleConfig{
		levels:     levels,
		loadOffset: func(level int32) int64 { return b.Metadata().Delay.Get(level) },
		saveOffsets: func(offsets map[int32]int64) {
			// One op for all levels: one replicated record per tick in
			// DLedger mode.
			e := make([]metadata.QueueOffset, 0, len(offsets))
			for level, off := range offsets {
				e = append(e, metadata.QueueOffset{QueueID: level, Offset: off})
			}
			slices.SortFunc(e, func(a, b metadata.QueueOffset) int { return int(a.QueueID) - int(b.QueueID) })
			if err := b.Metadata().Submit(metadata.Op{Kind: metadata.OpCommitDelayOffsets, Offsets: e}); err != nil {
				log.Warn("saving delay offsets failed", zap.Any("offsets", offsets), zap.Error(err))
			}
		},
		resetOffset: func(level int32, off int64) {
			if err := b.Metadata().ResetDelayOffset(level, off); err != nil {
				log.Warn("resetting a delay offset failed", zap.Int32("level", level), zap.Int64("offset", off), zap.Error(err))
			}
		},
		log: log.Named("schedule"),
	})

	x.tx = newTransactionService(st, transactionConfig{
		brokerName: cfg.BrokerName,
		levels:     levels,
		timeout:    time.Duration(cfg.TransactionTimeOut) * time.Millisecond,
		interval:   time.Duration(cfg.TransactionCheckInterval) * time.Millisecond,
		checkMax:   cfg.TransactionCheckMax,
		reserved:   time.Duration(cfg.FileReservedTime) * time.Hour,
		loadOffset: func(topic string, queueID int32) int64 {
			return b.Metadata().Offsets.Query(transGroup, topic, queueID)
		},
		saveOffset: func(topic string, queueID int32, offset int64) {
			if err := b.Metadata().CommitOffset(transGroup, topic, queueID, offset); err != nil {
				log.Warn("saving transaction check progress failed", zap.String("topic", topic), zap.Error(err))
			}
		},
		producers:   b.ProducerChannels,
		ensureTopic: func(topic string, queues int) bool { _, ok := x.ensureTopic(topic, queues); return ok },
		log:         log.Named("transaction"),
	})

	x.sendBack = newSendBackService(st, sendBackConfig{
		levels:        levels,
		checkWritable: b.checkWritable,
		group: func(name string) (retryGroup, bool) {
			gc, ok := b.FindOrCreateGroup(name)
			if !ok {
				return retryGroup{}, false
			}
			return retryGroup{retryMaxTimes: int32(gc.RetryMaxTimes), retryQueueNums: gc.RetryQueueNums}, true
		},
		ensureTopic:       x.ensureTopic,
		groupHasLiveLocks: b.GroupHasLiveLocks,
		log:               log.Named("sendback"),
	})

	x.serveDelayOffsets = b.mux.Handler(protocol.GetAllDelayOffset) == nil
	b.AddSendHook(x.sendHook)
	return []Extension{x}, nil
}

// extras is the Extension of the retry, delay and transaction parts.
type extras struct {
	b                 *Broker
	levels            delayLevels
	schedule          *scheduleService
	tx                *transactionService
	sendBack          *sendBackService
	serveDelayOffsets bool
}

func (x *extras) Register(handle func(code int16, h remoting.Handler)) {
	handle(protocol.ConsumerSendMsgBack, remoting.HandlerFunc(func(_ remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
		return x.sendBack.processConsumerSendMsgBack(req)
	}))
	handle(protocol.EndTransaction, remoting.HandlerFunc(func(_ remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
		return x.tx.processEndTransaction(req, x.b.checkWritable)
	}))
	if x.serveDelayOffsets {
		handle(protocol.GetAllDelayOffset, remoting.HandlerFunc(func(_ remoting.Conn, _ *remoting.RemotingCommand) *remoting.RemotingCommand {
			resp := extrasRespond(protocol.Success, "")
			resp.Body = x.b.Metadata().Delay.Encode(false)
			return resp
		}))
	}
}

// Start starts the master-only services.
func (x *extras) Start() {
	x.schedule.Start()
	x.tx.Start()
}

// Stop stops them and waits.
func (x *extras) Stop() {
	x.tx.Stop()
	x.schedule.Stop()
}

// RunningStats adds Java's scheduleMessageOffset_<level> runtime keys
// ("<delay offset>,<max offset of the level's schedule queue>", for the
// levels with progress) to a GET_BROKER_RUNTIME_INFO table.
func (x *extras) RunningStats(stats map[string]string) {
	md, st := x.b.Metadata(), x.b.Store()
	if md == nil || st == nil {
		return
	}
	for level, off := range md.Delay.Table() {
		max := st.GetMaxOffsetInQueue(scheduleTopic, scheduleQueueID(int(level)))
		stats["scheduleMessageOffset_"+strconv.Itoa(int(level))] = strconv.FormatInt(off, 10) + "," + strconv.FormatInt(max, 10)
	}
}

// sendHook rewrites messages on the send path (see newExtensions).
func (x *extras) sendHook(_ remoting.Conn, h *protocol.SendMessageRequestHeader, m *store.Message) (int16, string) {
	if code, remark := x.sendBack.redirectRetrySend(h, m); code != protocol.Success {
		return code, remark
	}
	if prepareHalf(m) {
		return protocol.Success, ""
	}
	scheduleDelayed(m, x.levels)
	return protocol.Success, ""
}

// ensureTopic creates a retry, DLQ or system topic (perm 6) when missing and
// registers it with the name servers; it returns the topic's perm.
func (x *extras) ensureTopic(topic string, queues int) (int32, bool) {
	tc, err := x.b.CreateTopicIfAbsent(metadata.NewTopicConfig(topic, queues))
	if err != nil {
		x.b.Logger().Warn("creating topic failed", zap.String("topic", topic), zap.Error(err))
		return 0, false
	}
	return int32(tc.Perm), true
}

// brokerStore reads the broker's store when called (it is opened in Start,
// after the extensions are built).
type brokerStore struct{ b *Broker }

func (s brokerStore) PutMessage(ctx context.Context, m *store.Message) store.PutMessageResult {
	return s.b.Store().PutMessage(ctx, m)
}

func (s brokerStore) LookMessageByOffset(off int64) (*store.MessageExt, error) {
	return s.b.Store().LookMessageByOffset(off)
}

func (s brokerStore) GetConsumeQueueUnits(topic string, queueID int32, offset int64, max int) ([]store.CQUnit, error) {
	return s.b.Store().GetConsumeQueueUnits(topic, queueID, offset, max)
}

func (s brokerStore) GetMinOffsetInQueue(topic string, queueID int32) int64 {
	return s.b.Store().GetMinOffsetInQueue(topic, queueID)
}

func (s brokerStore) GetMaxOffsetInQueue(topic string, queueID int32) int64 {
	return s.b.Store().GetMaxOffsetInQueue(topic, queueID)
}
