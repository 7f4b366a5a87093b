package logstore

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"strconv"

	"github.com/rmqd/rmqd/dledger"
)

// On-disk constants. They are part of the file format shared with Java
// DLedger and must never change.
const (
	// HeaderSize is the length of an entry header (Java BODY_OFFSET).
	HeaderSize = dledger.EntryHeaderSize // 48
	// SlotSize is the length of one index slot (Java INDEX_UNIT_SIZE).
	SlotSize = dledger.IndexSlotSize // 32
	// MinBlank is the smallest end-of-file padding: an entry is placed in a
	// file only if entry size + MinBlank bytes still fit (Java MIN_BLANK_LEN).
	MinBlank = 8

	// MagicNormal marks a normal entry, MagicNoop the no-op entry a new
	// leader appends; MagicBlank (-1) marks end-of-file padding.
	MagicNormal int32 = 1
	MagicNoop   int32 = 2
	MagicBlank  int32 = -1

	// Header field offsets.
	offMagic    = 0
	offSize     = 4
	offIndex    = 8
	offTerm     = 16
	offPos      = 24
	offChannel  = 32
	offChainCRC = 36
	offBodyCRC  = 40
	offBodySize = 44

	// Index slot field offsets.
	slotMagic = 0
	slotPos   = 4
	slotSize  = 12
	slotIndex = 16
	slotTerm  = 24

	// DefaultDataFileSize and DefaultIndexFileSize are Java DLedger's
	// mappedFileSizeForEntryData and mappedFileSizeForEntryIndex.
	DefaultDataFileSize  int64 = 1 << 30
	DefaultIndexFileSize int64 = SlotSize * 5 * 1024 * 1024

	fileNameDigits = 20
)

// BodyCRC is the checksum stored in an entry header's bodyCrc field: CRC-32
// with the IEEE polynomial (java.util.zip.CRC32, the one RocketMQ uses for
// message bodies, and what dledger.EncodeEntry writes), hardware-accelerated
// on amd64 and arm64. A stored value of 0 means "not computed" (every entry
// written by Java DLedger) and is never checked; a body whose CRC happens to
// be 0 is therefore stored unchecked too.
func BodyCRC(body []byte) uint32 { return crc32.ChecksumIEEE(body) }

// FileLayout places entries in the data byte space; it implements
// dledger.Layout and is a pure function of FileSize. The simulator's
// in-memory log uses the same value so positions agree with the file store.
type FileLayout struct {
	FileSize int64
}

// Place returns where an entry of size bytes (header included) lands when the
// previous entry ends at end: in the same file if size+MinBlank bytes fit
// between end and the file's end, otherwise at the start of the next file
// (the gap becomes end-of-file padding). An entry too big for any file is
// placed at the next file start; Append rejects it with ErrTooLarge.
func (l FileLayout) Place(end, size int64) (pos, newEnd int64) {
	fs := l.FileSize
	if fs <= 0 || end < 0 {
		return end, end + size
	}
	fileStart := end - end%fs
	if end-fileStart+size+MinBlank > fs {
		if end == fileStart && size+MinBlank > fs {
			pos = end
		} else {
			pos = fileStart + fs
		}
		return pos, pos + size
	}
	return end, end + size
}

// fileName is the 20-digit zero-padded decimal start offset Java uses.
func fileName(start int64) string {
	return fmt.Sprintf("%020d", start)
}

// parseFileName accepts exactly 20 decimal digits.
func parseFileName(name string) (int64, bool) {
	if len(name) != fileNameDigits {
		return 0, false
	}
	for i := 0; i < len(name); i++ {
		if name[i] < '0' || name[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(name, 10, 64)
	if err != nil {
		return 0, false
	}
	return v, true
}

// header is a decoded entry header.
type header struct {
	magic    int32
	size     int32
	index    int64
	term     int64
	pos      int64
	channel  int32
	chainCRC uint32
	bodyCRC  uint32
	bodySize int32
}

func decodeHeader(b []byte) header {
	_ = b[HeaderSize-1]
	return header{
		magic:    int32(binary.BigEndian.Uint32(b[offMagic:])),
		size:     int32(binary.BigEndian.Uint32(b[offSize:])),
		index:    int64(binary.BigEndian.Uint64(b[offIndex:])),
		term:     int64(binary.BigEndian.Uint64(b[offTerm:])),
		pos:      int64(binary.BigEndian.Uint64(b[offPos:])),
		channel:  int32(binary.BigEndian.Uint32(b[offChannel:])),
		chainCRC: binary.BigEndian.Uint32(b[offChainCRC:]),
		bodyCRC:  binary.BigEndian.Uint32(b[offBodyCRC:]),
		bodySize: int32(binary.BigEndian.Uint32(b[offBodySize:])),
	}
}

// putHeader encodes e's header into b[:HeaderSize] with the given body CRC.
func putHeader(b []byte, e *dledger.Entry, bodyCRC uint32) {
	_ = b[HeaderSize-1]
	binary.BigEndian.PutUint32(b[offMagic:], uint32(magicOf(e)))
	binary.BigEndian.PutUint32(b[offSize:], uint32(HeaderSize+len(e.Body)))
	binary.BigEndian.PutUint64(b[offIndex:], uint64(e.Index))
	binary.BigEndian.PutUint64(b[offTerm:], uint64(e.Term))
	binary.BigEndian.PutUint64(b[offPos:], uint64(e.Pos))
	binary.BigEndian.PutUint32(b[offChannel:], 0)
	binary.BigEndian.PutUint32(b[offBodyCRC:], bodyCRC)
	binary.BigEndian.PutUint32(b[offBodySize:], uint32(len(e.Body)))
	binary.BigEndian.PutUint32(b[offChainCRC:], headerCRC(b))
}

// headerCRC is what we store in the chainCrc field: CRC-32 (IEEE) of the
// other 44 header bytes (0-35 and 40-47). It covers index, term, pos, magic
// and sizes, which bodyCrc does not: a flipped term bit in the last entry
// must not make this replica's log look more up to date than it is. It is
// not a chain (it does not depend on earlier entries), so every replica
// writes the same bytes for an entry. 0 means not computed (Java).
func headerCRC(b []byte) uint32 {
	c := crc32.ChecksumIEEE(b[:offChainCRC])
	return crc32.Update(c, crc32.IEEETable, b[offBodyCRC:HeaderSize])
}

// headerCRCOK reports whether the header in b[:HeaderSize] passes its
// checksum (or carries none).
func headerCRCOK(b []byte) bool {
	stored := binary.BigEndian.Uint32(b[offChainCRC:])
	return stored == 0 || stored == headerCRC(b)
}

// magicOf maps the zero value to MagicNormal so callers may leave Magic unset.
func magicOf(e *dledger.Entry) int32 {
	if e.Magic == 0 {
		return MagicNormal
	}
	return e.Magic
}

// slot is a decoded index slot.
type slot struct {
	magic int32
	pos   int64
	size  int32
	index int64
	term  int64
}

func decodeSlot(b []byte) slot {
	_ = b[SlotSize-1]
	return slot{
		magic: int32(binary.BigEndian.Uint32(b[slotMagic:])),
		pos:   int64(binary.BigEndian.Uint64(b[slotPos:])),
		size:  int32(binary.BigEndian.Uint32(b[slotSize:])),
		index: int64(binary.BigEndian.Uint64(b[slotIndex:])),
		term:  int64(binary.BigEndian.Uint64(b[slotTerm:])),
	}
}

func putSlot(b []byte, magic int32, pos int64, size int32, index, term int64) {
	_ = b[SlotSize-1]
	binary.BigEndian.PutUint32(b[slotMagic:], uint32(magic))
	binary.BigEndian.PutUint64(b[slotPos:], uint64(pos))
	binary.BigEndian.PutUint32(b[slotSize:], uint32(size))
	binary.BigEndian.PutUint64(b[slotIndex:], uint64(index))
	binary.BigEndian.PutUint64(b[slotTerm:], uint64(term))
}

func putBlank(b []byte, remaining int64) {
	binary.BigEndian.PutUint32(b[0:], 0xFFFFFFFF) // MagicBlank
	binary.BigEndian.PutUint32(b[4:], uint32(remaining))
}

// EncodeEntry appends e in its on-disk form (48-byte header with bodyCrc
// filled, then the body) to dst. Replication may ship entries in this form so
// the follower can check the leader's checksum end to end.
func EncodeEntry(dst []byte, e *dledger.Entry) []byte {
	n := len(dst)
	dst = append(dst, make([]byte, HeaderSize)...)
	putHeader(dst[n:], e, BodyCRC(e.Body))
	return append(dst, e.Body...)
}

// DecodeEntry decodes one entry in on-disk form from the start of b and
// returns it with the stored bodyCrc and the bytes it used. The body aliases
// b. It checks the header's own consistency and, when bodyCrc is non-zero,
// the body checksum; it never panics on malformed input.
func DecodeEntry(b []byte) (e dledger.Entry, bodyCRC uint32, n int, err error) {
	if len(b) < HeaderSize {
		return e, 0, 0, fmt.Errorf("%w: %d bytes, header needs %d", ErrBadEntry, len(b), HeaderSize)
	}
	h := decodeHeader(b)
	if !headerCRCOK(b) {
		return e, 0, 0, fmt.Errorf("%w: header crc %08x, stored %08x", ErrChecksum, headerCRC(b), h.chainCRC)
	}
	if err := h.check(); err != nil {
		return e, 0, 0, err
	}
	if int64(h.size) > int64(len(b)) {
		return e, 0, 0, fmt.Errorf("%w: size %d but %d bytes", ErrBadEntry, h.size, len(b))
	}
	body := b[HeaderSize:h.size:h.size] // capped: appending to one body cannot clobber the next
	if h.bodyCRC != 0 && BodyCRC(body) != h.bodyCRC {
		return e, 0, 0, fmt.Errorf("%w: entry %d body crc %08x, stored %08x", ErrChecksum, h.index, BodyCRC(body), h.bodyCRC)
	}
	return dledger.Entry{Index: h.index, Term: h.term, Pos: h.pos, Magic: h.magic, Body: body}, h.bodyCRC, int(h.size), nil
}

// check validates the fields of a header that do not depend on context.
func (h *header) check() error {
	switch {
	case h.magic != MagicNormal && h.magic != MagicNoop:
		return fmt.Errorf("%w: magic %d", ErrBadEntry, h.magic)
	case h.bodySize < 0 || int64(h.bodySize)+HeaderSize != int64(h.size):
		return fmt.Errorf("%w: size %d != bodySize %d + %d", ErrBadEntry, h.size, h.bodySize, HeaderSize)
	case h.index < 0 || h.term < 0 || h.pos < 0:
		return fmt.Errorf("%w: negative index %d, term %d or pos %d", ErrBadEntry, h.index, h.term, h.pos)
	case int64(h.size) > math.MaxInt32:
		return fmt.Errorf("%w: size %d", ErrBadEntry, h.size)
	}
	return nil
}
