package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Magic codes (protocol.md §5.2, §6.1). Frozen: they are on disk.
const (
	MessageMagicCodeV1 int32 = -626843481 // 0xDAA320A7
	MessageMagicCodeV2 int32 = -626843477 // 0xDAA320AB, 2-byte topic length
	BlankMagicCode     int32 = -875286124 // 0xCBD43194, end-of-file filler
)

// SYSFLAG bits (protocol.md §5.3).
const (
	CompressedFlag          int32 = 0x1
	MultiTagsFlag           int32 = 0x2
	TransactionNotType      int32 = 0x0
	TransactionPreparedType int32 = 0x4
	TransactionCommitType   int32 = 0x8
	TransactionRollbackType int32 = 0xC
	TransactionTypeMask     int32 = 0xC
	BornHostV6Flag          int32 = 0x10
	StoreHostAddressV6Flag  int32 = 0x20
)

// Reserved property names (protocol.md §5.6), Java MessageConst names.
const (
	PropertyKeys                    = "KEYS"
	PropertyTags                    = "TAGS"
	PropertyWaitStoreMsgOK          = "WAIT"
	PropertyDelayTimeLevel          = "DELAY"
	PropertyRetryTopic              = "RETRY_TOPIC"
	PropertyRealTopic               = "REAL_TOPIC"
	PropertyRealQueueID             = "REAL_QID"
	PropertyTransactionPrepared     = "TRAN_MSG"
	PropertyProducerGroup           = "PGROUP"
	PropertyUniqClientMessageIDKey  = "UNIQ_KEY"
	PropertyOriginMessageID         = "ORIGIN_MESSAGE_ID"
	PropertyReconsumeTime           = "RECONSUME_TIME"
	PropertyMaxReconsumeTimes       = "MAX_RECONSUME_TIMES"
	PropertyCluster                 = "CLUSTER"
	PropertyTransactionID           = "__transactionId__"
	PropertyTranPreparedQueueOffset = "TRAN_PREPARED_QUEUE_OFFSET"
	PropertyTransactionCheckTimes   = "TRANSACTION_CHECK_TIMES"
	PropertyCheckImmunityTime       = "CHECK_IMMUNITY_TIME_IN_SECONDS"
	PropertyMinOffset               = "MIN_OFFSET"
	PropertyMaxOffset               = "MAX_OFFSET"
	PropertyTimerDeliverMS          = "TIMER_DELIVER_MS"
)

// ScheduleTopic holds delayed messages; its consume-queue tagsCode is the
// delivery timestamp instead of a tag hash (protocol.md §8.2).
const ScheduleTopic = "SCHEDULE_TOPIC_XXXX"

// Property string separators (protocol.md §5.1).
const (
	NameValueSeparator byte = 1
	PropertySeparator  byte = 2
)

// Limits of the record format.
const (
	maxTopicLenV1    = 127
	maxPropertiesLen = 32767
)

// Message is a message to store: what a producer sent plus what the broker
// adds (queue, born host, sysflag). It is RocketMQ's MessageExtBrokerInner
// minus the fields the store assigns.
type Message struct {
	Topic string
	Flag  int32
	// Body is stored as is (still compressed when SysFlag&CompressedFlag).
	Body []byte
	// Properties are stored as they are (ParseProperties builds them from
	// a string sent by a client).
	Properties Properties
	QueueID    int32
	SysFlag    int32
	// BornTimestamp is the producer's clock, ms.
	BornTimestamp int64
	// BornHost and StoreHost are "ip:port" (IPv6 as "[::1]:port"); an IPv6
	// address sets sysflag 0x10 / 0x20 when encoded. The store fills an
	// empty StoreHost with Config.StoreHost.
	BornHost                  string
	StoreHost                 string
	ReconsumeTimes            int32
	PreparedTransactionOffset int64
}

// Property returns the named property ("" when absent).
func (m *Message) Property(name string) string { return m.Properties.Get(name) }

// SetProperty sets a property (an empty value removes it).
func (m *Message) SetProperty(name, value string) { m.Properties = m.Properties.With(name, value) }

// ClearProperty removes a property.
func (m *Message) ClearProperty(name string) { m.Properties = m.Properties.Without(name) }

// Tags is the TAGS property.
func (m *Message) Tags() string { return m.Properties.Get(PropertyTags) }

// Keys is the KEYS property split at spaces.
func (m *Message) Keys() []string { return strings.Fields(m.Properties.Get(PropertyKeys)) }

// UniqKey is the UNIQ_KEY property (the client message id).
func (m *Message) UniqKey() string { return m.Properties.Get(PropertyUniqClientMessageIDKey) }

// DelayTimeLevel is the DELAY property (0 when absent or unparsable).
func (m *Message) DelayTimeLevel() int {
	n, _ := strconv.Atoi(m.Properties.Get(PropertyDelayTimeLevel))
	return n
}

// SetDelayTimeLevel sets the DELAY property.
func (m *Message) SetDelayTimeLevel(level int) {
	m.SetProperty(PropertyDelayTimeLevel, strconv.Itoa(level))
}

// TransactionType is SysFlag & TransactionTypeMask.
func (m *Message) TransactionType() int32 { return m.SysFlag & TransactionTypeMask }

// MessageExt is a decoded stored record.
type MessageExt struct {
	Message
	QueueOffset     int64
	CommitLogOffset int64
	StoreSize       int32
	BodyCRC         int32
	StoreTimestamp  int64
	// MsgID is the offset message id (store host + commit-log offset).
	MsgID string
}

// ---------------------------------------------------------------------------
// Properties string (§5.1)

// lookupProperty finds name in an encoded properties string without
// allocating.
func lookupProperty(props []byte, name string) ([]byte, bool) {
	for len(props) > 0 {
		var k, v []byte
		k, v, props = nextProperty(props)
		if k != nil && string(k) == name {
			return v, true
		}
	}
	return nil, false
}

// nextProperty splits the first segment off an encoded properties string:
// its name and value (name nil when the segment has no name or no
// separator) and the rest.
func nextProperty(props []byte) (name, value, rest []byte) {
	seg := props
	if end := indexByte(props, PropertySeparator); end >= 0 {
		seg, rest = props[:end], props[end+1:]
	}
	sep := indexByte(seg, NameValueSeparator)
	if sep <= 0 {
		return nil, nil, rest
	}
	return seg[:sep], seg[sep+1:], rest
}

// indexByte is bytes.IndexByte (vectorized: the dispatcher scans every
// record's properties with it; the byte loop it replaces was 4.5% of a
// follower's CPU in the issue 8 profiles).
func indexByte(b []byte, c byte) int { return bytes.IndexByte(b, c) }

// dispatchProps are the properties the dispatcher needs from a record
// (dispatchPropNames), found in one pass over the encoded string: the
// first occurrence of each name, as lookupProperty would find it.
type dispatchProps struct {
	val [len(dispatchPropNames)][]byte
	has [len(dispatchPropNames)]bool
}

const (
	dpTags = iota
	dpDelay
	dpUniq
	dpKeys
)

var dispatchPropNames = [...]string{dpTags: PropertyTags, dpDelay: PropertyDelayTimeLevel,
	dpUniq: PropertyUniqClientMessageIDKey, dpKeys: PropertyKeys}

func (p *dispatchProps) scan(props []byte) {
	*p = dispatchProps{}
	for len(props) > 0 {
		var k, v []byte
		if k, v, props = nextProperty(props); k == nil {
			continue
		}
		for i, n := range dispatchPropNames {
			if !p.has[i] && string(k) == n {
				p.val[i], p.has[i] = v, true
				break
			}
		}
	}
}

// ---------------------------------------------------------------------------
// Hosts

// hostBytes is an address as stored: 4 or 16 IP bytes then int32 port.
type hostBytes struct {
	b  [20]byte
	n  int // 8 or 20
	v6 bool
}

func parseHost(s string) (hostBytes, error) {
	var h hostBytes
	if s == "" {
		h.n = 8
		return h, nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return h, fmt.Errorf("%w: host %q: %v", ErrMalformed, s, err)
	}
	a := ap.Addr().Unmap()
	if a.Is4() {
		ip := a.As4()
		copy(h.b[:4], ip[:])
		binary.BigEndian.PutUint32(h.b[4:8], uint32(ap.Port()))
		h.n = 8
	} else {
		ip := a.As16()
		copy(h.b[:16], ip[:])
		binary.BigEndian.PutUint32(h.b[16:20], uint32(ap.Port()))
		h.n, h.v6 = 20, true
	}
	return h, nil
}

func formatHost(b []byte) string {
	var ip netip.Addr
	var port uint32
	if len(b) == 8 {
		ip = netip.AddrFrom4([4]byte(b[:4]))
		port = binary.BigEndian.Uint32(b[4:8])
	} else {
		ip = netip.AddrFrom16([16]byte(b[:16]))
		port = binary.BigEndian.Uint32(b[16:20])
	}
	return netip.AddrPortFrom(ip, uint16(port)).String()
}

// ---------------------------------------------------------------------------
// Stored record (§5.2)

// Fixed field positions (IPv4 born host for the ones after BORNHOST).
const (
	posTotalSize      = 0
	posMagic          = 4
	posBodyCRC        = 8
	posQueueID        = 12
	posFlag           = 16
	posQueueOffset    = 20
	posPhysicalOffset = 28
	posSysFlag        = 36
	posBornTimestamp  = 40
	posBornHost       = 48
)

// StoredSize returns the size of m's stored record (v1 layout) given its
// encoded properties length.
func storedSize(bodyLen, topicLen, propsLen int, bornV6, storeV6 bool) int {
	n := 91 + bodyLen + topicLen + propsLen
	if bornV6 {
		n += 12
	}
	if storeV6 {
		n += 12
	}
	return n
}

// BodyCRC is the BODYCRC field: CRC32-IEEE masked with 0x7FFFFFFF
// (Java UtilAll.crc32).
func BodyCRC(body []byte) int32 { return int32(crc32.ChecksumIEEE(body) & 0x7FFFFFFF) }

// EncodeStored appends m as a stored record (§5.2, v1 magic) to dst with the
// given queue offset, physical offset and store timestamp, and returns the
// extended slice. It allocates nothing when dst has room.
func EncodeStored(dst []byte, m *Message, queueOffset, commitLogOffset, storeTimestamp int64) ([]byte, error) {
	store, err := parseHost(m.StoreHost)
	if err != nil {
		return dst, err
	}
	return encodeStored(dst, m, &store, queueOffset, commitLogOffset, storeTimestamp, 0)
}

// encodeStored is EncodeStored with the store host already parsed and an
// optional limit on the body size (0 = none).
func encodeStored(dst []byte, m *Message, store *hostBytes, queueOffset, commitLogOffset, storeTimestamp int64, maxBody int) ([]byte, error) {
	if len(m.Topic) == 0 || len(m.Topic) > maxTopicLenV1 {
		return dst, fmt.Errorf("%w: topic length %d", ErrMalformed, len(m.Topic))
	}
	if maxBody > 0 && len(m.Body) > maxBody {
		return dst, fmt.Errorf("%w: body %d bytes exceeds maxMessageSize %d", ErrMalformed, len(m.Body), maxBody)
	}
	born, err := parseHost(m.BornHost)
	if err != nil {
		return dst, err
	}
	start := len(dst)
	sysFlag := m.SysFlag &^ (BornHostV6Flag | StoreHostAddressV6Flag)
	if born.v6 {
		sysFlag |= BornHostV6Flag
	}
	if store.v6 {
		sysFlag |= StoreHostAddressV6Flag
	}
	be := binary.BigEndian
	dst = be.AppendUint32(dst, 0)          // TOTALSIZE, patched below
	dst = be.AppendUint32(dst, 0xDAA320A7) // MessageMagicCodeV1
	dst = be.AppendUint32(dst, uint32(BodyCRC(m.Body)))
	dst = be.AppendUint32(dst, uint32(m.QueueID))
	dst = be.AppendUint32(dst, uint32(m.Flag))
	dst = be.AppendUint64(dst, uint64(queueOffset))
	dst = be.AppendUint64(dst, uint64(commitLogOffset))
	dst = be.AppendUint32(dst, uint32(sysFlag))
	dst = be.AppendUint64(dst, uint64(m.BornTimestamp))
	dst = append(dst, born.b[:born.n]...)
	dst = be.AppendUint64(dst, uint64(storeTimestamp))
	dst = append(dst, store.b[:store.n]...)
	dst = be.AppendUint32(dst, uint32(m.ReconsumeTimes))
	dst = be.AppendUint64(dst, uint64(m.PreparedTransactionOffset))
	dst = be.AppendUint32(dst, uint32(len(m.Body)))
	dst = append(dst, m.Body...)
	dst = append(dst, byte(len(m.Topic)))
	dst = append(dst, m.Topic...)
	propsLenAt := len(dst)
	dst = append(dst, 0, 0)
	dst = append(dst, m.Properties...)
	propsLen := len(dst) - propsLenAt - 2
	if propsLen > maxPropertiesLen {
		return dst[:start], fmt.Errorf("%w: properties %d bytes exceed %d", errPropertiesSize, propsLen, maxPropertiesLen)
	}
	be.PutUint16(dst[propsLenAt:], uint16(propsLen))
	be.PutUint32(dst[start:], uint32(len(dst)-start))
	return dst, nil
}

var errPropertiesSize = fmt.Errorf("%w: properties too long", ErrMalformed)

// errTornShape: the body CRC holds but the trailing fields look torn. Only
// conclusive for the last record of the log (recovery checks what follows).
var errTornShape = fmt.Errorf("%w: trailing fields look torn", ErrMalformed)

// recordView locates the fields of a stored record without copying or
// allocating. Offsets are relative to the record start.
type recordView struct {
	totalSize      int32
	magic          int32
	bodyCRC        int32
	queueID        int32
	flag           int32
	queueOffset    int64
	physicalOffset int64
	sysFlag        int32
	bornTimestamp  int64
	bornHost       []byte
	storeTimestamp int64
	storeHost      []byte
	reconsumeTimes int32
	preparedTxOff  int64
	body           []byte
	topic          []byte
	props          []byte
}

// parseRecord validates the record at the start of b (which must hold the
// whole record) and fills v. It checks size, magic and field bounds; with
// checkCRC (recovery) also the body CRC and the shape of the trailing fields.
func parseRecord(b []byte, v *recordView, checkCRC bool) error {
	be := binary.BigEndian
	if len(b) < 8 {
		return fmt.Errorf("%w: %d bytes", ErrMalformed, len(b))
	}
	v.totalSize = int32(be.Uint32(b[0:]))
	v.magic = int32(be.Uint32(b[4:]))
	if v.magic != MessageMagicCodeV1 && v.magic != MessageMagicCodeV2 {
		return fmt.Errorf("%w: magic %#x", ErrMalformed, uint32(v.magic))
	}
	if v.totalSize < 91 || int(v.totalSize) > len(b) {
		return fmt.Errorf("%w: total size %d (have %d)", ErrMalformed, v.totalSize, len(b))
	}
	r := b[:v.totalSize]
	v.bodyCRC = int32(be.Uint32(r[posBodyCRC:]))
	v.queueID = int32(be.Uint32(r[posQueueID:]))
	v.flag = int32(be.Uint32(r[posFlag:]))
	v.queueOffset = int64(be.Uint64(r[posQueueOffset:]))
	v.physicalOffset = int64(be.Uint64(r[posPhysicalOffset:]))
	v.sysFlag = int32(be.Uint32(r[posSysFlag:]))
	v.bornTimestamp = int64(be.Uint64(r[posBornTimestamp:]))
	p := posBornHost
	bornLen, storeLen := 8, 8
	if v.sysFlag&BornHostV6Flag != 0 {
		bornLen = 20
	}
	if v.sysFlag&StoreHostAddressV6Flag != 0 {
		storeLen = 20
	}
	need := func(n int) error {
		if p+n > len(r) {
			return fmt.Errorf("%w: field past record end (%d+%d > %d)", ErrMalformed, p, n, len(r))
		}
		return nil
	}
	if err := need(bornLen + 8 + storeLen + 4 + 8 + 4); err != nil {
		return err
	}
	v.bornHost = r[p : p+bornLen]
	p += bornLen
	v.storeTimestamp = int64(be.Uint64(r[p:]))
	p += 8
	v.storeHost = r[p : p+storeLen]
	p += storeLen
	v.reconsumeTimes = int32(be.Uint32(r[p:]))
	p += 4
	v.preparedTxOff = int64(be.Uint64(r[p:]))
	p += 8
	bodyLen := int(int32(be.Uint32(r[p:])))
	p += 4
	if bodyLen < 0 {
		return fmt.Errorf("%w: body length %d", ErrMalformed, bodyLen)
	}
	if err := need(bodyLen); err != nil {
		return err
	}
	v.body = r[p : p+bodyLen]
	p += bodyLen
	var topicLen int
	if v.magic == MessageMagicCodeV1 {
		if err := need(1); err != nil {
			return err
		}
		topicLen = int(r[p])
		p++
	} else {
		if err := need(2); err != nil {
			return err
		}
		topicLen = int(be.Uint16(r[p:]))
		p += 2
	}
	if err := need(topicLen + 2); err != nil {
		return err
	}
	v.topic = r[p : p+topicLen]
	p += topicLen
	propsLen := int(be.Uint16(r[p:]))
	p += 2
	if err := need(propsLen); err != nil {
		return err
	}
	v.props = r[p : p+propsLen]
	p += propsLen
	if p != len(r) {
		return fmt.Errorf("%w: total size %d but fields end at %d", ErrMalformed, len(r), p)
	}
	if checkCRC {
		if BodyCRC(v.body) != v.bodyCRC {
			return fmt.Errorf("%w: body crc %#x, stored %#x", ErrMalformed, BodyCRC(v.body), v.bodyCRC)
		}
		// Only the body is CRC-protected. A torn suffix zeroes (or garbles)
		// the trailing fields: a written properties string always ends with
		// 0x02 and a topic never holds NUL.
		if len(v.props) > 0 && v.props[len(v.props)-1] != PropertySeparator {
			return fmt.Errorf("%w: properties do not end with 0x02", errTornShape)
		}
		if len(v.topic) == 0 || indexByte(v.topic, 0) >= 0 {
			return fmt.Errorf("%w: empty or NUL in topic", errTornShape)
		}
	}
	return nil
}

// DecodeMessage decodes the stored record at the start of b. With readBody
// false the Body is left nil. Body and Properties are copies: the result does
// not alias b.
func DecodeMessage(b []byte, readBody bool) (*MessageExt, error) {
	var v recordView
	if err := parseRecord(b, &v, false); err != nil {
		return nil, err
	}
	m := &MessageExt{
		Message: Message{
			Topic:                     string(v.topic),
			Flag:                      v.flag,
			Properties:                ParseProperties(string(v.props)),
			QueueID:                   v.queueID,
			SysFlag:                   v.sysFlag,
			BornTimestamp:             v.bornTimestamp,
			BornHost:                  formatHost(v.bornHost),
			StoreHost:                 formatHost(v.storeHost),
			ReconsumeTimes:            v.reconsumeTimes,
			PreparedTransactionOffset: v.preparedTxOff,
		},
		QueueOffset:     v.queueOffset,
		CommitLogOffset: v.physicalOffset,
		StoreSize:       v.totalSize,
		BodyCRC:         v.bodyCRC,
		StoreTimestamp:  v.storeTimestamp,
	}
	if readBody {
		m.Body = append([]byte{}, v.body...)
	}
	m.MsgID = string(appendMsgID(make([]byte, 0, 56), v.storeHost, v.physicalOffset))
	return m, nil
}

// RecordProperties returns the properties of the stored record at the start
// of b (a copy).
func RecordProperties(b []byte) (Properties, error) {
	var v recordView
	if err := parseRecord(b, &v, false); err != nil {
		return "", err
	}
	return ParseProperties(string(v.props)), nil
}

// DecodeMessages decodes a sequence of records (a pull or query body).
func DecodeMessages(b []byte, readBody bool) ([]*MessageExt, error) {
	var out []*MessageExt
	for len(b) > 0 {
		m, err := DecodeMessage(b, readBody)
		if err != nil {
			return out, err
		}
		out = append(out, m)
		b = b[m.StoreSize:]
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// Message ids (§5.5)

const hexUpper = "0123456789ABCDEF"

func appendHex(dst, b []byte) []byte {
	for _, c := range b {
		dst = append(dst, hexUpper[c>>4], hexUpper[c&15])
	}
	return dst
}

// appendMsgID appends the offset msgId: hex(host bytes) + hex(offset).
func appendMsgID(dst, host []byte, offset int64) []byte {
	dst = appendHex(dst, host)
	var o [8]byte
	binary.BigEndian.PutUint64(o[:], uint64(offset))
	return appendHex(dst, o[:])
}

// CreateMessageID returns the offset message id for a record at
// commitLogOffset stored by storeHost ("ip:port"): 32 hex chars for IPv4, 56
// for IPv6.
func CreateMessageID(storeHost string, commitLogOffset int64) (string, error) {
	h, err := parseHost(storeHost)
	if err != nil {
		return "", err
	}
	return string(appendMsgID(make([]byte, 0, 56), h.b[:h.n], commitLogOffset)), nil
}

// DecodeMessageID parses an offset message id into the store host and the
// commit-log offset.
func DecodeMessageID(id string) (storeHost string, commitLogOffset int64, err error) {
	if len(id) != 32 && len(id) != 56 {
		return "", 0, fmt.Errorf("%w: message id %q has length %d", ErrMalformed, id, len(id))
	}
	var raw [28]byte
	n := len(id) / 2
	for i := 0; i < n; i++ {
		hi, ok1 := unhex(id[2*i])
		lo, ok2 := unhex(id[2*i+1])
		if !ok1 || !ok2 {
			return "", 0, fmt.Errorf("%w: message id %q is not hex", ErrMalformed, id)
		}
		raw[i] = hi<<4 | lo
	}
	hostLen := n - 8
	return formatHost(raw[:hostLen]), int64(binary.BigEndian.Uint64(raw[hostLen:n])), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// ---------------------------------------------------------------------------
// Tag hash (§5.7)

// JavaStringHashCode is Java's String.hashCode: h = 31*h + c over UTF-16
// code units.
func JavaStringHashCode(s string) int32 {
	var h int32
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			h = 31*h + int32(c)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if r >= 0x10000 {
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
		} else {
			h = 31*h + int32(r)
		}
	}
	return h
}

// TagsHashCode is the consume-queue tagsCode of a TAGS value (0 for none).
func TagsHashCode(tags string) int64 {
	if tags == "" {
		return 0
	}
	return int64(JavaStringHashCode(tags))
}

func tagsHashCodeBytes(tags []byte) int64 {
	if len(tags) == 0 {
		return 0
	}
	return int64(JavaStringHashCode(string(tags))) // no allocation: conversion does not escape
}

// ---------------------------------------------------------------------------
// Batch body (§5.4)

// DecodeBatch splits a SEND_BATCH_MESSAGE body into messages carrying Flag,
// Body (aliasing body) and Properties; the caller fills Topic, QueueID, hosts
// and timestamps from the request header.
func DecodeBatch(body []byte) ([]Message, error) {
	be := binary.BigEndian
	var out []Message
	for p := 0; p < len(body); {
		if len(body)-p < 22 {
			return nil, fmt.Errorf("%w: batch item at %d: %d bytes left", ErrMalformed, p, len(body)-p)
		}
		total := int(int32(be.Uint32(body[p:])))
		if total < 22 || total > len(body)-p {
			return nil, fmt.Errorf("%w: batch item at %d: size %d", ErrMalformed, p, total)
		}
		item := body[p : p+total]
		flag := int32(be.Uint32(item[12:]))
		bodyLen := int(int32(be.Uint32(item[16:])))
		if bodyLen < 0 || 20+bodyLen+2 > total {
			return nil, fmt.Errorf("%w: batch item at %d: body length %d", ErrMalformed, p, bodyLen)
		}
		q := 20 + bodyLen
		propsLen := int(be.Uint16(item[q:]))
		if q+2+propsLen != total {
			return nil, fmt.Errorf("%w: batch item at %d: properties length %d", ErrMalformed, p, propsLen)
		}
		out = append(out, Message{
			Flag:       flag,
			Body:       item[20:q:q],
			Properties: ParseProperties(string(item[q+2 : q+2+propsLen])),
		})
		p += total
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: empty batch", ErrMalformed)
	}
	return out, nil
}

// EncodeBatch is the client side of §5.4 (for tests and tools).
func EncodeBatch(dst []byte, msgs []Message) []byte {
	be := binary.BigEndian
	for i := range msgs {
		m := &msgs[i]
		start := len(dst)
		dst = be.AppendUint32(dst, 0)
		dst = be.AppendUint32(dst, 0)
		dst = be.AppendUint32(dst, 0)
		dst = be.AppendUint32(dst, uint32(m.Flag))
		dst = be.AppendUint32(dst, uint32(len(m.Body)))
		dst = append(dst, m.Body...)
		at := len(dst)
		dst = append(dst, 0, 0)
		dst = append(dst, m.Properties...)
		be.PutUint16(dst[at:], uint16(len(dst)-at-2))
		be.PutUint32(dst[start:], uint32(len(dst)-start))
	}
	return dst
}
