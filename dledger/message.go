package dledger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
)

// MsgType is the kind of a peer message.
type MsgType uint8

// Message kinds. The numeric values are part of the wire format: append new
// kinds at the end only.
const (
	MsgApp           MsgType = iota + 1 // AppendEntries: Index/LogTerm = previous entry, Entries, Commit
	MsgAppResp                          // Index = last matched index, or the rejected previous index when Reject (Hint/LogTerm = conflict hint)
	MsgVote                             // RequestVote: Term = campaign term, Index/LogTerm = candidate's last entry, Force = leadership transfer
	MsgVoteResp                         // Reject = not granted
	MsgPreVote                          // like MsgVote, Term = the term the candidate would campaign in; changes no state
	MsgPreVoteResp                      // Term = the pre-vote's term when granted, the voter's term when rejected
	MsgHeartbeat                        // Commit = min(follower's match, leader's commit)
	MsgHeartbeatResp                    //
	MsgTimeoutNow                       // leadership transfer: campaign at once
	msgTypeEnd
)

var msgTypeNames = [...]string{"", "MsgApp", "MsgAppResp", "MsgVote", "MsgVoteResp", "MsgPreVote", "MsgPreVoteResp", "MsgHeartbeat", "MsgHeartbeatResp", "MsgTimeoutNow"}

func (t MsgType) String() string {
	if t > 0 && t < msgTypeEnd {
		return msgTypeNames[t]
	}
	return fmt.Sprintf("MsgType(%d)", uint8(t))
}

// Message is one peer-to-peer Raft message. A single struct covers every
// kind (fields unused by a kind are zero); see the MsgType constants.
//
// Entries' bodies are shared, never copied, between the proposer, storage
// and the transport: nobody may modify a body once it was proposed.
type Message struct {
	Type    MsgType
	From    string
	To      string
	Term    int64
	LogTerm int64 // MsgApp: term of entry Index; votes: candidate's last term; rejected MsgAppResp: hint term
	Index   int64 // MsgApp: previous index; votes: candidate's last index; MsgAppResp: see MsgType
	Commit  int64
	Hint    int64 // rejected MsgAppResp: the follower's hint index (last index whose term <= LogTerm)
	Reject  bool
	Force   bool // MsgVote caused by a leadership transfer: voters ignore their leader lease
	// CommitOnly marks an empty MsgApp that only carries the commit index
	// to a follower known to match: it is answered only if it is rejected.
	CommitOnly bool
	Entries    []Entry
	// Fingerprint: votes, pre-votes and their answers carry the sender's
	// group fingerprint (CoreConfig.Fingerprint), empty for none.
	Fingerprint []byte
}

func (m *Message) String() string {
	return fmt.Sprintf("%s %s->%s term=%d logterm=%d index=%d commit=%d hint=%d reject=%v force=%v commitonly=%v entries=%d",
		m.Type, m.From, m.To, m.Term, m.LogTerm, m.Index, m.Commit, m.Hint, m.Reject, m.Force, m.CommitOnly, len(m.Entries))
}

// isResponse reports kinds that answer a request.
func (t MsgType) isResponse() bool {
	return t == MsgAppResp || t == MsgVoteResp || t == MsgPreVoteResp || t == MsgHeartbeatResp
}

// ErrBadMessage is returned for a message that fails validation (decoding
// or field checks). Such messages are dropped; they never panic the core.
var ErrBadMessage = errors.New("dledger: bad message")

// Limits applied to decoded and stepped messages.
const (
	maxIDLen         = 255
	maxEntriesPerMsg = 1 << 20
	maxBodyLen       = 64 << 20
)

// validate checks field ranges and the shape of Entries (consecutive
// indexes following Index, terms not above Term and not decreasing).
func (m *Message) validate() error {
	if m.Type == 0 || m.Type >= msgTypeEnd {
		return fmt.Errorf("%w: type %d", ErrBadMessage, m.Type)
	}
	if m.From == "" || len(m.From) > maxIDLen || len(m.To) > maxIDLen {
		return fmt.Errorf("%w: peer id", ErrBadMessage)
	}
	if m.Term < 0 || m.LogTerm < 0 || m.Index < -1 || m.Commit < -1 || m.Hint < -1 {
		return fmt.Errorf("%w: negative field in %s", ErrBadMessage, m.Type)
	}
	if len(m.Entries) > 0 && m.Type != MsgApp {
		return fmt.Errorf("%w: entries in %s", ErrBadMessage, m.Type)
	}
	if len(m.Fingerprint) > maxFingerprintLen {
		return fmt.Errorf("%w: fingerprint of %d bytes", ErrBadMessage, len(m.Fingerprint))
	}
	if n := int64(len(m.Entries)); n > 0 && m.Index > math.MaxInt64/2-n {
		return fmt.Errorf("%w: index overflow", ErrBadMessage)
	}
	prevTerm := m.LogTerm
	for i := range m.Entries {
		e := &m.Entries[i]
		if e.Index != m.Index+1+int64(i) {
			return fmt.Errorf("%w: entry %d has index %d, want %d", ErrBadMessage, i, e.Index, m.Index+1+int64(i))
		}
		if e.Term < prevTerm || e.Term > m.Term || e.Term <= 0 {
			return fmt.Errorf("%w: entry %d term %d (prev %d, msg %d)", ErrBadMessage, e.Index, e.Term, prevTerm, m.Term)
		}
		if e.Pos < 0 || e.Pos > math.MaxInt64/2 || len(e.Body) > maxBodyLen {
			return fmt.Errorf("%w: entry %d pos/size", ErrBadMessage, e.Index)
		}
		if i > 0 && e.Pos < m.Entries[i-1].Pos+m.Entries[i-1].Size() {
			return fmt.Errorf("%w: entry %d overlaps its predecessor", ErrBadMessage, e.Index)
		}
		prevTerm = e.Term
	}
	return nil
}

// Wire format (all integers are varints unless noted, strings and bodies are
// uvarint-length-prefixed):
//
//	+---------+------+------+----+------+---------+-------+--------+------+-------+-----------+---------+
//	| ver(u8) | type | flags| from | to | term    |logterm| index  |commit| hint  | n entries | entries |
//	+---------+------+------+----+------+---------+-------+--------+------+-------+-----------+---------+
//	entry: term, pos, magic (varints), body
//
// flags: bit 0 Reject, bit 1 Force, bit 2 CommitOnly, bit 3 a fingerprint
// (bytes) follows the entries. Entry indexes are not sent: entry i has
// index Index+1+i. ver is wireVersion.
const wireVersion = 1

// MarshalBinary encodes m.
func (m *Message) MarshalBinary() ([]byte, error) {
	return m.AppendBinary(make([]byte, 0, m.encodedSizeHint()))
}

func (m *Message) encodedSizeHint() int {
	n := 3 + 2*(len(m.From)+len(m.To)+2) + 6*binary.MaxVarintLen64 + binary.MaxVarintLen32 + len(m.Fingerprint)
	for i := range m.Entries {
		n += 3*binary.MaxVarintLen64 + 2*binary.MaxVarintLen32 + len(m.Entries[i].Body)
	}
	return n
}

// AppendBinary appends the encoding of m to b.
func (m *Message) AppendBinary(b []byte) ([]byte, error) {
	var flags byte
	if m.Reject {
		flags |= 1
	}
	if m.Force {
		flags |= 2
	}
	if m.CommitOnly {
		flags |= 4
	}
	if len(m.Fingerprint) > 0 {
		flags |= 8
	}
	b = append(b, wireVersion, byte(m.Type), flags)
	b = appendString(b, m.From)
	b = appendString(b, m.To)
	b = binary.AppendVarint(b, m.Term)
	b = binary.AppendVarint(b, m.LogTerm)
	b = binary.AppendVarint(b, m.Index)
	b = binary.AppendVarint(b, m.Commit)
	b = binary.AppendVarint(b, m.Hint)
	b = binary.AppendUvarint(b, uint64(len(m.Entries)))
	for i := range m.Entries {
		e := &m.Entries[i]
		b = binary.AppendVarint(b, e.Term)
		b = binary.AppendVarint(b, e.Pos)
		b = binary.AppendVarint(b, int64(e.Magic))
		b = binary.AppendUvarint(b, uint64(len(e.Body)))
		b = append(b, e.Body...)
	}
	if len(m.Fingerprint) > 0 {
		b = binary.AppendUvarint(b, uint64(len(m.Fingerprint)))
		b = append(b, m.Fingerprint...)
	}
	return b, nil
}

// BinarySize is the exact length of m's binary encoding (AppendBinary
// appends that many bytes), so a transport can length-prefix a message and
// encode it in place.
func (m *Message) BinarySize() int {
	n := 3 + uvarintSize(uint64(len(m.From))) + len(m.From) + uvarintSize(uint64(len(m.To))) + len(m.To) +
		varintSize(m.Term) + varintSize(m.LogTerm) + varintSize(m.Index) + varintSize(m.Commit) + varintSize(m.Hint) +
		uvarintSize(uint64(len(m.Entries)))
	for i := range m.Entries {
		e := &m.Entries[i]
		n += varintSize(e.Term) + varintSize(e.Pos) + varintSize(int64(e.Magic)) + uvarintSize(uint64(len(e.Body))) + len(e.Body)
	}
	if l := len(m.Fingerprint); l > 0 {
		n += uvarintSize(uint64(l)) + l
	}
	return n
}

func uvarintSize(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

func varintSize(x int64) int {
	ux := uint64(x) << 1
	if x < 0 {
		ux = ^ux
	}
	return uvarintSize(ux)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated or invalid %s", ErrBadMessage, what)
	}
}

func (d *decoder) varint(what string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(what string, max int) []byte {
	if d.err != nil {
		return nil
	}
	l, n := binary.Uvarint(d.b)
	if n <= 0 || l > uint64(max) || l > uint64(len(d.b)-n) {
		d.fail(what)
		return nil
	}
	v := d.b[n : n+int(l) : n+int(l)]
	d.b = d.b[n+int(l):]
	return v
}

func (d *decoder) id(what string, known []string) string {
	b := d.bytes(what, maxIDLen)
	for _, k := range known {
		if string(b) == k {
			return k
		}
	}
	return string(b)
}

// UnmarshalBinary decodes data into m. Entry bodies alias data (zero copy):
// the caller must not reuse data afterwards. The decoded message is
// validated; a bad message returns an error wrapping ErrBadMessage.
func (m *Message) UnmarshalBinary(data []byte) error { return m.UnmarshalBinaryKnown(data, nil) }

// UnmarshalBinaryKnown is UnmarshalBinary where a From or To equal to one
// of known is that string, not a new one: a transport passes its peers'
// ids and decodes answers without allocating.
func (m *Message) UnmarshalBinaryKnown(data []byte, known []string) error {
	*m = Message{}
	if len(data) < 3 {
		return fmt.Errorf("%w: short header", ErrBadMessage)
	}
	if data[0] != wireVersion {
		return fmt.Errorf("%w: wire version %d", ErrBadMessage, data[0])
	}
	m.Type = MsgType(data[1])
	m.Reject = data[2]&1 != 0
	m.Force = data[2]&2 != 0
	m.CommitOnly = data[2]&4 != 0
	d := decoder{b: data[3:]}
	m.From = d.id("from", known)
	m.To = d.id("to", known)
	m.Term = d.varint("term")
	m.LogTerm = d.varint("logterm")
	m.Index = d.varint("index")
	m.Commit = d.varint("commit")
	m.Hint = d.varint("hint")
	if d.err != nil {
		return d.err
	}
	n, k := binary.Uvarint(d.b)
	if k <= 0 || n > maxEntriesPerMsg || n > uint64(len(d.b)) {
		return fmt.Errorf("%w: entry count", ErrBadMessage)
	}
	d.b = d.b[k:]
	if n > 0 {
		m.Entries = make([]Entry, n)
		for i := range m.Entries {
			e := &m.Entries[i]
			e.Index = m.Index + 1 + int64(i)
			e.Term = d.varint("entry term")
			e.Pos = d.varint("entry pos")
			magic := d.varint("entry magic")
			if magic < -1<<31 || magic >= 1<<31 {
				d.fail("entry magic")
			}
			e.Magic = int32(magic)
			e.Body = d.bytes("entry body", maxBodyLen)
			if d.err != nil {
				return d.err
			}
		}
	}
	if data[2]&8 != 0 {
		m.Fingerprint = d.bytes("fingerprint", maxFingerprintLen)
		if len(m.Fingerprint) == 0 {
			d.fail("fingerprint") // flagged means present: one encoding per message
		}
		if d.err != nil {
			return d.err
		}
	}
	if len(d.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrBadMessage, len(d.b))
	}
	return m.validate()
}
