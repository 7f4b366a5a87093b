package metadata

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// OpKind names a metadata operation. The values are stored in the replicated
// log: append new kinds at the end, never renumber or reuse one.
type OpKind uint8

const (
	OpInvalid OpKind = iota // zero value, never valid

	// OpPutTopic creates or replaces TopicConfig (topics.json).
	OpPutTopic
	// OpDeleteTopic removes Topic from the topic table.
	OpDeleteTopic
	// OpPutGroup creates or replaces GroupConfig (subscriptionGroup.json).
	OpPutGroup
	// OpDeleteGroup removes Group from the subscription group table.
	OpDeleteGroup
	// OpCommitOffsets raises Group's offsets to Offsets (one entry per
	// topic/queue; several topics may be coalesced in one op). An entry
	// below the stored offset is ignored: commits never move backwards.
	OpCommitOffsets
	// OpResetOffsets sets Group's offsets to Offsets, lower or higher.
	OpResetOffsets
	// OpRemoveOffsets drops consumer offsets of (Topic, Group); an empty
	// Topic means every topic of Group, an empty Group every group of Topic.
	OpRemoveOffsets
	// OpCommitDelayOffsets raises delay-level progress (QueueID = level).
	OpCommitDelayOffsets
	// OpResetDelayOffsets sets delay-level progress, lower or higher.
	OpResetDelayOffsets

	opKindEnd // keep last
)

var opKindNames = [...]string{"Invalid", "PutTopic", "DeleteTopic", "PutGroup", "DeleteGroup",
	"CommitOffsets", "ResetOffsets", "RemoveOffsets", "CommitDelayOffsets", "ResetDelayOffsets"}

func (k OpKind) String() string {
	if int(k) < len(opKindNames) {
		return opKindNames[k]
	}
	return fmt.Sprintf("OpKind(%d)", uint8(k))
}

// Op is one change to broker metadata. Every mutation goes through an Op so
// that it can later be carried by the replicated log and applied identically
// on every replica (design.md §4). Applying an op is deterministic given the
// state and the op; Time, not the local clock, stamps the data version.
// Applying the same op twice leaves offsets and tables as applying it once,
// so replaying a log suffix over a snapshot that already holds part of it is
// safe.
type Op struct {
	Kind OpKind
	// Time is the proposer's clock (unix ms), set by Submit when zero; it
	// becomes the DataVersion timestamp of the table the op changes.
	Time        int64
	Topic       string                   // OpDeleteTopic, OpRemoveOffsets
	Group       string                   // OpDeleteGroup, offset ops
	TopicConfig *TopicConfig             // OpPutTopic
	GroupConfig *SubscriptionGroupConfig // OpPutGroup
	Offsets     []QueueOffset            // offset and delay ops
}

// Errors returned by UnmarshalOp and Validate.
var (
	ErrUnknownOp = errors.New("metadata: unknown op kind")
	ErrBadOp     = errors.New("metadata: malformed op")
)

// Validate checks the fields the kind requires.
func (o *Op) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrBadOp, o.Kind, fmt.Sprintf(format, args...))
	}
	switch o.Kind {
	case OpPutTopic:
		if o.TopicConfig == nil || o.TopicConfig.TopicName == "" {
			return bad("missing topic config or name")
		}
		if o.TopicConfig.ReadQueueNums < 0 || o.TopicConfig.WriteQueueNums < 0 {
			return bad("negative queue count")
		}
	case OpDeleteTopic:
		if o.Topic == "" {
			return bad("missing topic")
		}
	case OpPutGroup:
		if o.GroupConfig == nil || o.GroupConfig.GroupName == "" {
			return bad("missing group config or name")
		}
	case OpDeleteGroup:
		if o.Group == "" {
			return bad("missing group")
		}
	case OpCommitOffsets, OpResetOffsets:
		if o.Group == "" {
			return bad("missing group")
		}
		for _, e := range o.Offsets {
			if e.Topic == "" || e.QueueID < 0 || e.Offset < 0 {
				return bad("bad entry %+v", e)
			}
		}
	case OpRemoveOffsets:
		if o.Topic == "" && o.Group == "" {
			return bad("needs a topic or a group")
		}
	case OpCommitDelayOffsets, OpResetDelayOffsets:
		for _, e := range o.Offsets {
			if e.QueueID <= 0 || e.Offset < 0 {
				return bad("bad delay entry %+v", e)
			}
		}
	default:
		return fmt.Errorf("%w %d", ErrUnknownOp, o.Kind)
	}
	return nil
}

// opFormat is the first byte of an encoded op; bump it only for an
// incompatible change of the layout below.
const opFormat = 1

// MarshalOp encodes op compactly:
//
//	byte    format (1)
//	byte    kind
//	varint  time (unix ms)
//	string  topic            string = uvarint length + bytes
//	string  group
//	bytes   topic config     JSON, length 0 when absent
//	bytes   group config     JSON, length 0 when absent
//	uvarint n, then n times: string topic, varint queueId, varint offset
func MarshalOp(op Op) ([]byte, error) {
	if err := op.Validate(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 64)
	b = append(b, opFormat, byte(op.Kind))
	b = binary.AppendVarint(b, op.Time)
	b = appendString(b, op.Topic)
	b = appendString(b, op.Group)
	var tj, gj []byte
	var err error
	if op.TopicConfig != nil {
		if tj, err = json.Marshal(op.TopicConfig); err != nil {
			return nil, err
		}
	}
	if op.GroupConfig != nil {
		if gj, err = json.Marshal(op.GroupConfig); err != nil {
			return nil, err
		}
	}
	b = appendString(b, string(tj))
	b = appendString(b, string(gj))
	b = binary.AppendUvarint(b, uint64(len(op.Offsets)))
	for _, e := range op.Offsets {
		b = appendString(b, e.Topic)
		b = binary.AppendVarint(b, int64(e.QueueID))
		b = binary.AppendVarint(b, e.Offset)
	}
	return b, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

type opReader struct {
	b   []byte
	err error
}

func (r *opReader) fail() {
	if r.err == nil {
		r.err = ErrBadOp
	}
}

func (r *opReader) byte1() byte {
	if r.err != nil || len(r.b) < 1 {
		r.fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *opReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *opReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *opReader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

// UnmarshalOp decodes MarshalOp's output. Malformed input returns an error
// wrapping ErrBadOp, a kind this binary does not know ErrUnknownOp (a newer
// broker wrote it); it never panics.
func UnmarshalOp(data []byte) (Op, error) {
	r := &opReader{b: data}
	var op Op
	if f := r.byte1(); r.err == nil && f != opFormat {
		return Op{}, fmt.Errorf("%w: format %d", ErrBadOp, f)
	}
	op.Kind = OpKind(r.byte1())
	if r.err == nil && (op.Kind == OpInvalid || op.Kind >= opKindEnd) {
		return Op{}, fmt.Errorf("%w %d", ErrUnknownOp, op.Kind)
	}
	op.Time = r.varint()
	op.Topic = string(r.bytes())
	op.Group = string(r.bytes())
	tj := r.bytes()
	gj := r.bytes()
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)) { // every entry takes at least 3 bytes
		r.fail()
	}
	if r.err == nil && n > 0 {
		op.Offsets = make([]QueueOffset, 0, n)
		for i := uint64(0); i < n && r.err == nil; i++ {
			e := QueueOffset{Topic: string(r.bytes())}
			q := r.varint()
			e.Offset = r.varint()
			if q < -1<<31 || q > 1<<31-1 {
				r.fail()
			}
			e.QueueID = int32(q)
			op.Offsets = append(op.Offsets, e)
		}
	}
	if r.err != nil {
		return Op{}, r.err
	}
	if len(r.b) != 0 {
		return Op{}, fmt.Errorf("%w: %d trailing bytes", ErrBadOp, len(r.b))
	}
	if len(tj) > 0 {
		op.TopicConfig = new(TopicConfig)
		if err := json.Unmarshal(tj, op.TopicConfig); err != nil {
			return Op{}, fmt.Errorf("%w: topic config: %v", ErrBadOp, err)
		}
	}
	if len(gj) > 0 {
		op.GroupConfig = new(SubscriptionGroupConfig)
		if err := json.Unmarshal(gj, op.GroupConfig); err != nil {
			return Op{}, fmt.Errorf("%w: group config: %v", ErrBadOp, err)
		}
	}
	if err := op.Validate(); err != nil {
		return Op{}, err
	}
	return op, nil
}
