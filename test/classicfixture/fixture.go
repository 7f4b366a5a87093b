package classicfixture

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
)

// Layout constants (protocol.md §5.2, §6).
const (
	MagicV1         = 0xDAA320A7 // MAGICCODE of a v1 record (1-byte topic length)
	BlankMagic      = 0xCBD43194 // MAGICCODE of the end-of-file marker
	CQUnitSize      = 20         // consume-queue unit
	EndFileMinBlank = 8          // a file keeps room for the BLANK marker

	DefaultCommitLogFileSize    = 1 << 30     // mappedFileSizeCommitLog
	DefaultConsumeQueueFileSize = 300000 * 20 // mappedFileSizeConsumeQueue
	DefaultStoreHost            = "127.0.0.1:10911"
	DefaultBornHost             = "127.0.0.1:51234"
	DefaultMessageDelayLevel    = "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h"
	TransHalfTopic              = "RMQ_SYS_TRANS_HALF_TOPIC"
	TransOpHalfTopic            = "RMQ_SYS_TRANS_OP_HALF_TOPIC"
	ScheduleTopic               = "SCHEDULE_TOPIC_XXXX"
	CheckpointFileSize          = 4096
	JavaHashSlotNum             = 5000000  // maxHashSlotNum
	JavaIndexNum                = 20000000 // maxIndexNum
	indexHeaderSize             = 40
	indexEntrySize              = 20

	sysFlagBornHostV6  = 0x10
	sysFlagStoreHostV6 = 0x20
)

// Spec describes the store to write. Zero values get Java's defaults.
type Spec struct {
	// CommitLogFileSize is mappedFileSizeCommitLog (default 1 GiB); the
	// broker started over the store must use the same value.
	CommitLogFileSize int64
	// ConsumeQueueFileSize is mappedFileSizeConsumeQueue (default 6 000 000),
	// rounded up to a multiple of 20 as Java does.
	ConsumeQueueFileSize int64
	// StoreHost is the old broker's brokerIP1:listenPort (default
	// 127.0.0.1:10911); it is in every record and offset msgId.
	StoreHost string
	// ClusterName, if set, is added to every message as property CLUSTER
	// (a 4.x broker does this on SEND_MESSAGE).
	ClusterName string
	// BrokerName and ClusterName, with SystemTopics, add the system topics a
	// 4.x broker writes into topics.json (TBW102, SCHEDULE_TOPIC_XXXX, ...).
	BrokerName   string
	SystemTopics bool

	Topics   []Topic
	Messages []Message // in commitlog order

	// Groups are subscription groups (subscriptionGroup.json); every group
	// named in ConsumerOffsets is added. Each group also gets its
	// %RETRY%<group> topic (1 queue), as a 4.x broker creates it.
	Groups          []string
	ConsumerOffsets []ConsumerOffset
	// DelayOffsets is delayOffset.json: delay level -> offset.
	DelayOffsets map[int]int64

	// MessageDelayLevel is the broker's messageDelayLevel (default Java's
	// "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h"); it
	// gives the delivery times of delayed messages.
	MessageDelayLevel string

	// Index, if set, writes key index files; nil writes none (a broker
	// must rebuild the index from the commitlog).
	Index *IndexSpec
	// ExpiredCommitLogFiles removes that many of the oldest commitlog files
	// as a 4.x broker's retention does after fileReservedTime, with every
	// consume-queue file (but a queue's last) whose last unit points below
	// the new minimum offset, and every index file (but the last) that
	// ends below it. The store then starts at a non-zero offset and
	// queues at non-zero minimum offsets, as a long-running broker's does.
	ExpiredCommitLogFiles int
	// TornTail cuts the last record as a power loss does: only its first
	// half reached the commitlog (zeros follow), while its consume-queue
	// unit and index entries were written. Use it with Abort.
	TornTail bool
	// UndispatchedTail leaves the last that many records without
	// consume-queue units and index entries, as after a crash while the
	// broker's dispatch lagged behind the commitlog; the checkpoint's
	// logics and index timestamps are those of the last dispatched record.
	// Use it with Abort.
	UndispatchedTail int
	// Abort leaves an abort file: the last run did not stop cleanly.
	Abort bool
	// BaseTimestamp is the store time of the first message when a message
	// gives none (default: now - 10 min); later messages get +1 ms each.
	BaseTimestamp int64
}

// Topic is one topic config (topics.json) with its queue count.
type Topic struct {
	Name     string
	Queues   int // read = write queue nums (default 4)
	Perm     int // default 6 (read|write)
	Order    bool
	MultiTag bool // topicFilterType MULTI_TAG (sets SYSFLAG 0x2 on its messages)
}

// Message is one stored message. Unset timestamps and hosts get defaults.
type Message struct {
	Topic      string
	QueueID    int32
	Body       []byte
	Tags       string
	Keys       []string
	Properties map[string]string
	// UniqKey: "" generates a Java-style UNIQ_KEY; "-" stores none.
	UniqKey string
	// Transaction stores the message as a committed 4.x transactional one:
	// the half message in RMQ_SYS_TRANS_HALF_TOPIC (REAL_TOPIC, REAL_QID,
	// TRAN_MSG, PGROUP), then the committed copy in Topic (SYSFLAG 0x8,
	// PREPARED_TRANSACTION_OFFSET = the half's physical offset, same
	// UNIQ_KEY), then the op record in RMQ_SYS_TRANS_OP_HALF_TOPIC (tag "d",
	// body = the half's queue offset). Three records, in that order.
	Transaction bool
	// TransactionPending writes only the half record: a transaction the
	// producer has not ended (the broker will check it back).
	TransactionPending bool
	// Compressed stores the body zlib-compressed with SYSFLAG 0x1, as a 4.x
	// producer sends bodies of 4 KiB and more (Record.Body stays the
	// uncompressed body; Record.Bytes holds what is stored).
	Compressed bool
	// Bare stores only Properties, TAGS and KEYS: no UNIQ_KEY, WAIT or
	// CLUSTER, as a 4.7/4.8 broker stores a Go client's batch item (with
	// neither, the properties string is empty).
	Bare           bool
	Flag           int32
	ReconsumeTimes int32
	BornHost       string // default 127.0.0.1:51234
	BornTimestamp  int64  // default StoreTimestamp - 1
	StoreTimestamp int64  // default BaseTimestamp + index (ms)
	// DelayLevel > 0 stores the message as a 4.x broker parks a delayed
	// one: in SCHEDULE_TOPIC_XXXX queue DelayLevel-1 with properties
	// REAL_TOPIC, REAL_QID and DELAY; its consume-queue tagsCode is the
	// delivery time (store time + the level's delay).
	DelayLevel int
}

// ConsumerOffset is one consumerOffset.json entry: topic@group -> queue offsets.
type ConsumerOffset struct {
	Group   string
	Topic   string
	Offsets map[int32]int64
}

// IndexSpec sizes the index files (maxHashSlotNum, maxIndexNum; defaults
// Java's 5 000 000 and 20 000 000 = 420 000 040-byte sparse files). A broker
// reading them must use the same values.
type IndexSpec struct {
	HashSlotNum int32
	IndexNum    int32
}

// QueueKey names one consume queue.
type QueueKey struct {
	Topic   string
	QueueID int32
}

// Record is one written message as a test finds it again.
type Record struct {
	Topic          string
	QueueID        int32
	QueueOffset    int64
	PhysicalOffset int64
	Size           int32
	OffsetMsgID    string // hex(store host ip, port, physical offset)
	UniqKey        string // "" when none
	Keys           []string
	Tags           string
	TagsCode       int64
	Body           []byte            // as given (uncompressed)
	Properties     map[string]string // everything stored, including TAGS/KEYS/UNIQ_KEY
	BornTimestamp  int64
	StoreTimestamp int64
	SysFlag        int32
	Bytes          []byte // the exact record bytes in the commitlog
	// RealTopic/RealQueueID: the destination of a delayed message (Topic is
	// then SCHEDULE_TOPIC_XXXX); DeliverTimestamp is its tagsCode.
	RealTopic        string
	RealQueueID      int32
	DeliverTimestamp int64
	// Expired: the record's commitlog file was removed (ExpiredCommitLogFiles).
	Expired bool
	// Torn: only the first half of the record is on disk (TornTail).
	Torn bool
	// Undispatched: no consume-queue unit or index entry (UndispatchedTail).
	Undispatched bool
	// PreparedTransactionOffset: the half message of a committed one.
	PreparedTransactionOffset int64
}

// CommitLogFile is one written commitlog file.
type CommitLogFile struct {
	Name  string // 20-digit start offset
	From  int64
	Used  int64 // bytes holding records (without the BLANK marker)
	Blank bool  // ends in a BLANK marker at From+Used
}

// Manifest is what Write wrote.
type Manifest struct {
	Dir               string
	StoreHost         string
	CommitLogFileSize int64
	CommitLogFiles    []CommitLogFile
	// MinPhyOffset is the start of the oldest commitlog file kept;
	// MaxPhyOffset is the end of the last record (where the next one goes).
	MinPhyOffset int64
	MaxPhyOffset int64
	Messages     []Record // in commitlog order
	// QueueMaxOffsets is the next queue offset per queue (= units written);
	// QueueMinOffsets the first whose record was not expired.
	QueueMaxOffsets map[QueueKey]int64
	QueueMinOffsets map[QueueKey]int64
	ConsumerOffsets []ConsumerOffset
	IndexFiles      []string
	// LastStoreTimestamp is the newest record's store time (the checkpoint's).
	LastStoreTimestamp int64
}

// ByQueue returns the records of one queue in queue-offset order.
func (m *Manifest) ByQueue(topic string, queueID int32) []Record {
	var out []Record
	for _, r := range m.Messages {
		if r.Topic == topic && r.QueueID == queueID {
			out = append(out, r)
		}
	}
	return out
}

// host is an address as stored: 4 or 16 IP bytes and a port.
type host struct {
	ip   []byte
	port int32
}

func parseHost(s string) (host, error) {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return host{}, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return host{}, fmt.Errorf("bad port in %q", s)
	}
	ip := net.ParseIP(h)
	if ip == nil {
		return host{}, fmt.Errorf("bad IP in %q", s)
	}
	if v4 := ip.To4(); v4 != nil {
		return host{ip: v4, port: int32(port)}, nil
	}
	return host{ip: ip.To16(), port: int32(port)}, nil
}

func (h host) v6() bool { return len(h.ip) == 16 }

func (h host) bytes() []byte {
	b := append([]byte(nil), h.ip...)
	return binary.BigEndian.AppendUint32(b, uint32(h.port))
}

// OffsetMsgID is the offset message id of protocol.md §5.5: upper-case hex
// of store host IP, port (int32) and physical offset (int64).
func OffsetMsgID(storeHost string, phy int64) (string, error) {
	h, err := parseHost(storeHost)
	if err != nil {
		return "", err
	}
	b := binary.BigEndian.AppendUint64(h.bytes(), uint64(phy))
	return strings.ToUpper(hex.EncodeToString(b)), nil
}

// JavaStringHashCode is Java's String.hashCode over UTF-16 code units.
func JavaStringHashCode(s string) int32 {
	var h int32
	for _, u := range utf16.Encode([]rune(s)) {
		h = 31*h + int32(u)
	}
	return h
}

// TagsCode is the consume-queue tagsCode of a TAGS value (0 without tags).
func TagsCode(tags string) int64 {
	if tags == "" {
		return 0
	}
	return int64(JavaStringHashCode(tags))
}

// EncodeProperties is protocol.md §5.1: name 0x01 value 0x02 per pair, in
// name order, each pair ending in 0x02.
func EncodeProperties(props map[string]string) []byte {
	names := make([]string, 0, len(props))
	for n := range props {
		names = append(names, n)
	}
	sort.Strings(names)
	var b []byte
	for _, n := range names {
		b = append(b, n...)
		b = append(b, 1)
		b = append(b, props[n]...)
		b = append(b, 2)
	}
	return b
}

// RecordFields are the values of one record, for EncodeRecord.
type RecordFields struct {
	QueueID                   int32
	Flag                      int32
	QueueOffset               int64
	PhysicalOffset            int64
	SysFlag                   int32 // host bits are set from the hosts
	BornTimestamp             int64
	BornHost                  string
	StoreTimestamp            int64
	StoreHost                 string
	ReconsumeTimes            int32
	PreparedTransactionOffset int64
	Body                      []byte
	Topic                     string
	Properties                []byte // encoded (EncodeProperties)
}

// EncodeRecord builds one v1 stored record (protocol.md §5.2).
func EncodeRecord(f RecordFields) ([]byte, error) {
	born, err := parseHost(f.BornHost)
	if err != nil {
		return nil, fmt.Errorf("born host: %w", err)
	}
	store, err := parseHost(f.StoreHost)
	if err != nil {
		return nil, fmt.Errorf("store host: %w", err)
	}
	if len(f.Topic) == 0 || len(f.Topic) > 127 {
		return nil, fmt.Errorf("topic %q: length must be 1..127 for a v1 record", f.Topic)
	}
	if len(f.Properties) > 32767 {
		return nil, fmt.Errorf("properties: %d bytes > 32767", len(f.Properties))
	}
	sys := f.SysFlag &^ (sysFlagBornHostV6 | sysFlagStoreHostV6)
	if born.v6() {
		sys |= sysFlagBornHostV6
	}
	if store.v6() {
		sys |= sysFlagStoreHostV6
	}
	be := binary.BigEndian
	b := make([]byte, 4, 128+len(f.Body)+len(f.Topic)+len(f.Properties))
	b = be.AppendUint32(b, MagicV1)
	b = be.AppendUint32(b, crc32.ChecksumIEEE(f.Body)&0x7FFFFFFF)
	b = be.AppendUint32(b, uint32(f.QueueID))
	b = be.AppendUint32(b, uint32(f.Flag))
	b = be.AppendUint64(b, uint64(f.QueueOffset))
	b = be.AppendUint64(b, uint64(f.PhysicalOffset))
	b = be.AppendUint32(b, uint32(sys))
	b = be.AppendUint64(b, uint64(f.BornTimestamp))
	b = append(b, born.bytes()...)
	b = be.AppendUint64(b, uint64(f.StoreTimestamp))
	b = append(b, store.bytes()...)
	b = be.AppendUint32(b, uint32(f.ReconsumeTimes))
	b = be.AppendUint64(b, uint64(f.PreparedTransactionOffset))
	b = be.AppendUint32(b, uint32(len(f.Body)))
	b = append(b, f.Body...)
	b = append(b, byte(len(f.Topic)))
	b = append(b, f.Topic...)
	b = be.AppendUint16(b, uint16(len(f.Properties)))
	b = append(b, f.Properties...)
	be.PutUint32(b, uint32(len(b)))
	return b, nil
}

// UniqKey builds a Java-style UNIQ_KEY (protocol.md §5.5): IP(4) + pid
// (int16) + class-loader hash (int32) + ms since the start of the month
// (int32) + counter (int16), upper-case hex, 32 chars.
func UniqKey(ip net.IP, pid int16, classLoader int32, ts int64, counter int16) string {
	v4 := ip.To4()
	if v4 == nil {
		v4 = net.IPv4(127, 0, 0, 1).To4()
	}
	t := time.UnixMilli(ts)
	month := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.Local)
	be := binary.BigEndian
	b := append([]byte(nil), v4...)
	b = be.AppendUint16(b, uint16(pid))
	b = be.AppendUint32(b, uint32(classLoader))
	b = be.AppendUint32(b, uint32(ts-month.UnixMilli()))
	b = be.AppendUint16(b, uint16(counter))
	return strings.ToUpper(hex.EncodeToString(b))
}

// FileName is the 20-digit zero-padded name of a file starting at off.
func FileName(off int64) string { return fmt.Sprintf("%020d", off) }

// Write writes the store described by spec into dir (created if needed;
// existing commitlog/consumequeue/index/config contents are not removed
// first, so use an empty directory).
func Write(dir string, spec Spec) (Manifest, error) {
	w, err := newWriter(dir, spec)
	if err != nil {
		return Manifest{}, err
	}
	if err := w.encode(); err != nil {
		return Manifest{}, err
	}
	steps := []func() error{w.writeCommitLog, w.writeConsumeQueues, w.writeIndex, w.writeCheckpoint,
		w.writeMarkers, w.writeConfig}
	for _, step := range steps {
		if err := step(); err != nil {
			return Manifest{}, err
		}
	}
	return w.m, nil
}

type writer struct {
	dir    string
	spec   Spec
	cqSize int64
	topics map[string]Topic
	m      Manifest
	files  map[int64][]byte // commitlog file start -> used bytes (records + BLANK)
	blank  map[int64]bool   // the file ends in a BLANK marker
	delays []int64          // ms per delay level, index 1..n
}

func newWriter(dir string, spec Spec) (*writer, error) {
	if spec.CommitLogFileSize <= 0 {
		spec.CommitLogFileSize = DefaultCommitLogFileSize
	}
	if spec.ConsumeQueueFileSize <= 0 {
		spec.ConsumeQueueFileSize = DefaultConsumeQueueFileSize
	}
	cq := (spec.ConsumeQueueFileSize + CQUnitSize - 1) / CQUnitSize * CQUnitSize
	if spec.StoreHost == "" {
		spec.StoreHost = DefaultStoreHost
	}
	if _, err := parseHost(spec.StoreHost); err != nil {
		return nil, fmt.Errorf("classicfixture: StoreHost: %w", err)
	}
	if spec.BaseTimestamp <= 0 {
		spec.BaseTimestamp = time.Now().Add(-10 * time.Minute).UnixMilli()
	}
	if spec.Index != nil {
		ix := *spec.Index
		if ix.HashSlotNum <= 0 {
			ix.HashSlotNum = JavaHashSlotNum
		}
		if ix.IndexNum <= 0 {
			ix.IndexNum = JavaIndexNum
		}
		spec.Index = &ix
	}
	if spec.MessageDelayLevel == "" {
		spec.MessageDelayLevel = DefaultMessageDelayLevel
	}
	delays, err := parseDelayLevels(spec.MessageDelayLevel)
	if err != nil {
		return nil, err
	}
	w := &writer{dir: dir, delays: delays, spec: spec, cqSize: cq, topics: map[string]Topic{}, files: map[int64][]byte{}, blank: map[int64]bool{}}
	for _, t := range spec.Topics {
		if t.Queues <= 0 {
			t.Queues = 4
		}
		if t.Perm == 0 {
			t.Perm = 6
		}
		if _, dup := w.topics[t.Name]; dup {
			return nil, fmt.Errorf("classicfixture: topic %q twice", t.Name)
		}
		w.topics[t.Name] = t
	}
	w.m = Manifest{Dir: dir, StoreHost: spec.StoreHost, CommitLogFileSize: spec.CommitLogFileSize,
		QueueMaxOffsets: map[QueueKey]int64{}, QueueMinOffsets: map[QueueKey]int64{}, ConsumerOffsets: spec.ConsumerOffsets}
	return w, nil
}

// Kinds of records a Message becomes (Transaction: half, commit, op).
const (
	kindNormal = iota
	kindHalf
	kindCommit
	kindOp
)

// encode lays the records out over the commitlog files.
func (w *writer) encode() error {
	size := w.spec.CommitLogFileSize
	var pos int64 // next append position (absolute)
	lastTs := int64(0)
	type item struct {
		Message
		kind int
	}
	var items []item
	for _, msg := range w.spec.Messages {
		if !msg.Transaction && !msg.TransactionPending {
			items = append(items, item{msg, kindNormal})
			continue
		}
		if msg.DelayLevel > 0 {
			return errors.New("classicfixture: a transactional message cannot be delayed")
		}
		op := Message{Topic: TransOpHalfTopic, Tags: "d", Bare: true, StoreTimestamp: msg.StoreTimestamp, BornHost: msg.BornHost}
		if msg.TransactionPending {
			items = append(items, item{msg, kindHalf})
			continue
		}
		items = append(items, item{msg, kindHalf}, item{msg, kindCommit}, item{op, kindOp})
	}
	var txUniq string
	var txHalfPhy, txHalfQoff int64
	for i, it := range items {
		msg := it.Message
		t, ok := w.topics[msg.Topic]
		if it.kind == kindOp {
			t, ok = Topic{Name: TransOpHalfTopic, Queues: 1}, true
			msg.Body = []byte(strconv.FormatInt(txHalfQoff, 10))
		}
		if !ok {
			return fmt.Errorf("classicfixture: message %d: topic %q not in Spec.Topics", i, msg.Topic)
		}
		if msg.QueueID < 0 || int(msg.QueueID) >= t.Queues {
			return fmt.Errorf("classicfixture: message %d: queue %d of %s (%d queues)", i, msg.QueueID, msg.Topic, t.Queues)
		}
		storeTs := msg.StoreTimestamp
		if storeTs == 0 {
			storeTs = w.spec.BaseTimestamp + int64(i)
		}
		if storeTs < lastTs {
			return fmt.Errorf("classicfixture: message %d: store timestamp %d before the previous %d", i, storeTs, lastTs)
		}
		lastTs = storeTs
		bornTs := msg.BornTimestamp
		if bornTs == 0 {
			bornTs = storeTs - 1
		}
		bornHost := msg.BornHost
		if bornHost == "" {
			bornHost = DefaultBornHost
		}
		bh, err := parseHost(bornHost)
		if err != nil {
			return fmt.Errorf("classicfixture: message %d: born host: %w", i, err)
		}
		props := map[string]string{}
		for k, v := range msg.Properties {
			if k == "" || v == "" || strings.ContainsAny(k+v, "\x01\x02") {
				return fmt.Errorf("classicfixture: message %d: property %q=%q cannot be stored", i, k, v)
			}
			props[k] = v
		}
		if msg.Tags != "" {
			props["TAGS"] = msg.Tags
		}
		var keys []string
		for _, k := range msg.Keys {
			if k != "" {
				keys = append(keys, k)
			}
		}
		if len(keys) > 0 {
			props["KEYS"] = strings.Join(keys, " ")
		}
		uniq := msg.UniqKey
		switch {
		case it.kind == kindCommit:
			uniq = txUniq
		case msg.Bare || uniq == "-":
			uniq = ""
		case uniq == "":
			uniq = UniqKey(bh.ip, 4242, 0x1B6D3586, bornTs, int16(i))
		}
		if uniq != "" {
			props["UNIQ_KEY"] = uniq
		}
		if !msg.Bare {
			props["WAIT"] = "true"
			if w.spec.ClusterName != "" {
				props["CLUSTER"] = w.spec.ClusterName
			}
		}
		if it.kind == kindOp {
			props["WAIT"] = "true" // a broker-made message: no UNIQ_KEY, no CLUSTER
		}
		var sys int32
		if t.MultiTag {
			sys |= 0x2
		}
		stored := msg.Body
		if msg.Compressed {
			var zb bytes.Buffer
			zw, _ := zlib.NewWriterLevel(&zb, 5)
			_, _ = zw.Write(msg.Body) // a bytes.Buffer does not fail
			_ = zw.Close()
			stored = zb.Bytes()
			sys |= 0x1
		}
		topic, qid, tagsCode := msg.Topic, msg.QueueID, TagsCode(msg.Tags)
		var preparedOffset int64
		switch it.kind {
		case kindHalf:
			props["REAL_TOPIC"] = msg.Topic
			props["REAL_QID"] = strconv.Itoa(int(msg.QueueID))
			props["TRAN_MSG"] = "true"
			props["PGROUP"] = "PG_" + msg.Topic
			topic, qid, sys = TransHalfTopic, 0, 0
			txUniq = uniq
		case kindCommit:
			props["TRAN_MSG"] = "true"
			props["PGROUP"] = "PG_" + msg.Topic
			sys |= 0x8 // TRANSACTION_COMMIT_TYPE
			preparedOffset = txHalfPhy
		}
		var deliver int64
		if msg.DelayLevel > 0 {
			if msg.DelayLevel >= len(w.delays) {
				return fmt.Errorf("classicfixture: message %d: delay level %d of %d", i, msg.DelayLevel, len(w.delays)-1)
			}
			props["REAL_TOPIC"] = msg.Topic
			props["REAL_QID"] = strconv.Itoa(int(msg.QueueID))
			props["DELAY"] = strconv.Itoa(msg.DelayLevel)
			topic, qid = ScheduleTopic, int32(msg.DelayLevel-1)
			deliver = storeTs + w.delays[msg.DelayLevel]
			tagsCode = deliver
		}
		qk := QueueKey{topic, qid}
		qoff := w.m.QueueMaxOffsets[qk]
		fields := RecordFields{QueueID: qid, Flag: msg.Flag, QueueOffset: qoff, SysFlag: sys,
			BornTimestamp: bornTs, BornHost: bornHost, StoreTimestamp: storeTs, StoreHost: w.spec.StoreHost,
			ReconsumeTimes: msg.ReconsumeTimes, Body: stored, Topic: topic, Properties: EncodeProperties(props),
			PreparedTransactionOffset: preparedOffset}
		rec, err := EncodeRecord(fields)
		if err != nil {
			return fmt.Errorf("classicfixture: message %d: %w", i, err)
		}
		n := int64(len(rec))
		if n+EndFileMinBlank > size {
			return fmt.Errorf("classicfixture: message %d: %d-byte record does not fit a %d-byte commitlog file", i, n, size)
		}
		// A record never spans files: if it and the 8-byte marker do not
		// fit, a BLANK marker fills the rest of the file.
		fileFrom := pos / size * size
		if pos-fileFrom+n+EndFileMinBlank > size {
			var blank [8]byte
			binary.BigEndian.PutUint32(blank[0:], uint32(fileFrom+size-pos))
			binary.BigEndian.PutUint32(blank[4:], BlankMagic)
			w.files[fileFrom] = append(w.files[fileFrom], blank[:]...)
			w.blank[fileFrom] = true
			pos = fileFrom + size
			fileFrom = pos
		}
		binary.BigEndian.PutUint64(rec[28:], uint64(pos))
		w.files[fileFrom] = append(w.files[fileFrom], rec...)
		msgID, _ := OffsetMsgID(w.spec.StoreHost, pos)
		r := Record{Topic: topic, QueueID: qid, QueueOffset: qoff,
			PhysicalOffset: pos, Size: int32(n), OffsetMsgID: msgID, UniqKey: uniq, Keys: keys, Tags: msg.Tags,
			TagsCode: tagsCode, Body: append([]byte(nil), msg.Body...), Properties: props,
			BornTimestamp: bornTs, StoreTimestamp: storeTs, SysFlag: int32(binary.BigEndian.Uint32(rec[36:])), Bytes: rec}
		if msg.DelayLevel > 0 {
			r.RealTopic, r.RealQueueID, r.DeliverTimestamp = msg.Topic, msg.QueueID, deliver
		}
		r.PreparedTransactionOffset = preparedOffset
		if it.kind == kindHalf {
			txHalfPhy, txHalfQoff = pos, qoff
		}
		w.m.Messages = append(w.m.Messages, r)
		w.m.QueueMaxOffsets[qk] = qoff + 1
		pos += n
	}
	w.m.MaxPhyOffset = pos
	w.m.LastStoreTimestamp = lastTs
	if n := w.spec.UndispatchedTail; n > 0 {
		if n > len(w.m.Messages) {
			return fmt.Errorf("classicfixture: UndispatchedTail %d of %d messages", n, len(w.m.Messages))
		}
		for i := len(w.m.Messages) - n; i < len(w.m.Messages); i++ {
			w.m.Messages[i].Undispatched = true
		}
	}
	if w.spec.TornTail {
		if len(w.m.Messages) == 0 {
			return errors.New("classicfixture: TornTail without messages")
		}
		r := &w.m.Messages[len(w.m.Messages)-1]
		r.Torn = true
		from := r.PhysicalOffset / size * size
		data := w.files[from]
		cut := r.PhysicalOffset - from + int64(r.Size)/2
		clear(data[cut:])
	}
	if k := w.spec.ExpiredCommitLogFiles; k > 0 {
		if int64(k) > pos/size {
			return fmt.Errorf("classicfixture: %d expired commitlog files, but only %d full ones", k, pos/size)
		}
		w.m.MinPhyOffset = int64(k) * size
	}
	for i := range w.m.Messages {
		r := &w.m.Messages[i]
		r.Expired = r.PhysicalOffset < w.m.MinPhyOffset
		k := QueueKey{r.Topic, r.QueueID}
		if _, ok := w.m.QueueMinOffsets[k]; !ok && !r.Expired {
			w.m.QueueMinOffsets[k] = r.QueueOffset
		}
	}
	for k, max := range w.m.QueueMaxOffsets {
		if _, ok := w.m.QueueMinOffsets[k]; !ok {
			w.m.QueueMinOffsets[k] = max
		}
	}
	return nil
}

// parseDelayLevels parses "1s 5s ... 2h" into ms per level (index 1..n).
func parseDelayLevels(s string) ([]int64, error) {
	out := []int64{0}
	unit := map[byte]int64{'s': 1000, 'm': 60000, 'h': 3600000, 'd': 86400000}
	for _, f := range strings.Fields(s) {
		u, ok := unit[f[len(f)-1]]
		n, err := strconv.ParseInt(f[:len(f)-1], 10, 64)
		if !ok || err != nil {
			return nil, fmt.Errorf("classicfixture: bad messageDelayLevel %q", f)
		}
		out = append(out, n*u)
	}
	return out, nil
}

func writeFile(path string, size int64, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if size > 0 {
		if err := f.Truncate(size); err != nil {
			f.Close()
			return err
		}
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (w *writer) writeCommitLog() error {
	dir := filepath.Join(w.dir, "commitlog")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	starts := make([]int64, 0, len(w.files))
	for from := range w.files {
		starts = append(starts, from)
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	for _, from := range starts {
		if from < w.m.MinPhyOffset {
			continue // removed by retention
		}
		data := w.files[from]
		f := CommitLogFile{Name: FileName(from), From: from, Used: int64(len(data)), Blank: w.blank[from]}
		if f.Blank {
			f.Used -= EndFileMinBlank
		}
		// Java preallocates every file at full size; the tail of the newest is zeros.
		if err := writeFile(filepath.Join(dir, f.Name), w.spec.CommitLogFileSize, data); err != nil {
			return err
		}
		w.m.CommitLogFiles = append(w.m.CommitLogFiles, f)
	}
	return nil
}

func (w *writer) writeConsumeQueues() error {
	units := map[QueueKey][]byte{}
	for _, r := range w.m.Messages {
		if r.Undispatched {
			break
		}
		k := QueueKey{r.Topic, r.QueueID}
		var u [CQUnitSize]byte
		binary.BigEndian.PutUint64(u[0:], uint64(r.PhysicalOffset))
		binary.BigEndian.PutUint32(u[8:], uint32(r.Size))
		binary.BigEndian.PutUint64(u[12:], uint64(r.TagsCode))
		units[k] = append(units[k], u[:]...)
	}
	for k, data := range units {
		dir := filepath.Join(w.dir, "consumequeue", k.Topic, strconv.Itoa(int(k.QueueID)))
		for from := int64(0); from < int64(len(data)); from += w.cqSize {
			part := data[from:min(from+w.cqSize, int64(len(data)))]
			lastFile := from+w.cqSize >= int64(len(data))
			if lastPhy := int64(binary.BigEndian.Uint64(part[len(part)-CQUnitSize:])); !lastFile && lastPhy < w.m.MinPhyOffset {
				continue // Java's deleteExpiredFileByOffset: the file's last unit is below the minimum
			}
			if err := writeFile(filepath.Join(dir, FileName(from)), w.cqSize, part); err != nil {
				return err
			}
		}
	}
	return nil
}

// indexKeyHash is Java's indexKeyHashMethod: |String.hashCode|, 0 if negative.
func indexKeyHash(key string) int32 {
	h := JavaStringHashCode(key)
	if h < 0 {
		h = -h
	}
	if h < 0 {
		h = 0
	}
	return h
}

type indexFile struct {
	name                             string
	beginTs, endTs, beginPhy, endPhy int64
	slotCount, count                 int32
	slots                            map[int32]int32
	entries                          []byte
}

func (w *writer) writeIndex() error {
	ix := w.spec.Index
	if ix == nil {
		return nil
	}
	var files []*indexFile
	newFile := func() *indexFile {
		ts := w.spec.BaseTimestamp
		if len(w.m.Messages) > 0 {
			ts = w.m.Messages[0].StoreTimestamp
		}
		name := strings.Replace(time.UnixMilli(ts).Add(time.Duration(len(files))*time.Millisecond).Format("20060102150405.000"), ".", "", 1)
		f := &indexFile{name: name, count: 1, slots: map[int32]int32{}}
		if n := len(files); n > 0 {
			p := files[n-1]
			f.beginPhy, f.endPhy, f.beginTs, f.endTs = p.endPhy, p.endPhy, p.endTs, p.endTs
		}
		files = append(files, f)
		return f
	}
	cur := newFile()
	put := func(key string, phy, storeTs int64) {
		if cur.count >= ix.IndexNum {
			cur = newFile()
		}
		h := indexKeyHash(key)
		slot := h % ix.HashSlotNum
		prev, used := cur.slots[slot]
		if !used {
			cur.slotCount++
		}
		var diff int64
		if cur.beginTs > 0 {
			diff = (storeTs - cur.beginTs) / 1000
			diff = max(0, min(diff, 1<<31-1))
		}
		var e [indexEntrySize]byte
		binary.BigEndian.PutUint32(e[0:], uint32(h))
		binary.BigEndian.PutUint64(e[4:], uint64(phy))
		binary.BigEndian.PutUint32(e[12:], uint32(diff))
		binary.BigEndian.PutUint32(e[16:], uint32(prev))
		cur.entries = append(cur.entries, e[:]...)
		cur.slots[slot] = cur.count
		if cur.count <= 1 {
			cur.beginPhy, cur.beginTs = phy, storeTs
		}
		cur.endPhy, cur.endTs = phy, storeTs
		cur.count++
	}
	for _, r := range w.m.Messages {
		if r.Undispatched {
			break
		}
		if r.UniqKey != "" {
			put(r.Topic+"#"+r.UniqKey, r.PhysicalOffset, r.StoreTimestamp)
		}
		for _, k := range r.Keys {
			put(r.Topic+"#"+k, r.PhysicalOffset, r.StoreTimestamp)
		}
	}
	size := int64(indexHeaderSize) + int64(ix.HashSlotNum)*4 + int64(ix.IndexNum)*indexEntrySize
	dir := filepath.Join(w.dir, "index")
	for i, f := range files {
		if i < len(files)-1 && f.endPhy < w.m.MinPhyOffset {
			continue // removed by retention
		}
		if err := w.writeIndexFile(filepath.Join(dir, f.name), size, ix.HashSlotNum, f); err != nil {
			return err
		}
		w.m.IndexFiles = append(w.m.IndexFiles, f.name)
	}
	return nil
}

func (w *writer) writeIndexFile(path string, size int64, slotNum int32, f *indexFile) error {
	var h [indexHeaderSize]byte
	be := binary.BigEndian
	be.PutUint64(h[0:], uint64(f.beginTs))
	be.PutUint64(h[8:], uint64(f.endTs))
	be.PutUint64(h[16:], uint64(f.beginPhy))
	be.PutUint64(h[24:], uint64(f.endPhy))
	be.PutUint32(h[32:], uint32(f.slotCount))
	be.PutUint32(h[36:], uint32(f.count))
	if err := writeFile(path, size, h[:]); err != nil {
		return err
	}
	fl, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer fl.Close()
	var b [4]byte
	for slot, entry := range f.slots {
		be.PutUint32(b[:], uint32(entry))
		if _, err := fl.WriteAt(b[:], indexHeaderSize+int64(slot)*4); err != nil {
			return err
		}
	}
	// Entry 0 is never used: entry i is at header + slots + i*20.
	if _, err := fl.WriteAt(f.entries, indexHeaderSize+int64(slotNum)*4+indexEntrySize); err != nil {
		return err
	}
	return nil
}

func (w *writer) writeCheckpoint() error {
	var b [CheckpointFileSize]byte
	ts := w.m.LastStoreTimestamp
	binary.BigEndian.PutUint64(b[0:], uint64(ts)) // physicMsgTimestamp
	logicsTs := int64(0)
	for _, r := range w.m.Messages {
		if !r.Undispatched {
			logicsTs = r.StoreTimestamp
		}
	}
	binary.BigEndian.PutUint64(b[8:], uint64(logicsTs)) // logicsMsgTimestamp
	ixTs := int64(0)
	if w.spec.Index != nil {
		ixTs = logicsTs
	}
	binary.BigEndian.PutUint64(b[16:], uint64(ixTs)) // indexMsgTimestamp
	return writeFile(filepath.Join(w.dir, "checkpoint"), 0, b[:])
}

func (w *writer) writeMarkers() error {
	if err := writeFile(filepath.Join(w.dir, "lock"), 0, nil); err != nil {
		return err
	}
	abort := filepath.Join(w.dir, "abort")
	if w.spec.Abort {
		return writeFile(abort, 0, nil)
	}
	if err := os.Remove(abort); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
