package benchkit

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrBadRecord: a pull body does not hold well-formed stored records.
var ErrBadRecord = errors.New("benchkit: malformed stored message record")

// Record field positions (protocol.md §5.2): TOTALSIZE 4, MAGICCODE 4,
// BODYCRC 4, QUEUEID 4, FLAG 4, QUEUEOFFSET 8, PHYSICALOFFSET 8, SYSFLAG 4,
// BORNTIMESTAMP 8, BORNHOST 8|20, STORETIMESTAMP 8, STOREHOST 8|20,
// RECONSUMETIMES 4, PREPAREDTRANSACTIONOFFSET 8, BODYLENGTH 4, BODY, ...
const (
	posSysFlag       = 36
	posBornTimestamp = 40
	posBornHost      = 48
	bornHostV6Flag   = 1 << 4
	storeHostV6Flag  = 1 << 5
	minRecordSize    = 91
)

// RecordInfo is what the consumer needs of one stored record.
type RecordInfo struct {
	BornTimestamp int64 // producer clock, ms
	BodyLen       int
	StoreSize     int
}

// WalkRecords calls fn for each record of a PULL_MESSAGE body without
// decoding or copying anything (store.DecodeMessages does the full job).
// It stops at the first malformed record and returns how many it visited.
func WalkRecords(b []byte, fn func(RecordInfo)) (int, error) {
	be := binary.BigEndian
	n := 0
	for len(b) > 0 {
		if len(b) < minRecordSize {
			return n, fmt.Errorf("%w: %d trailing bytes", ErrBadRecord, len(b))
		}
		size := int(int32(be.Uint32(b)))
		if size < minRecordSize || size > len(b) {
			return n, fmt.Errorf("%w: total size %d with %d bytes left", ErrBadRecord, size, len(b))
		}
		r := b[:size]
		sysFlag := be.Uint32(r[posSysFlag:])
		p := posBornHost + 8
		if sysFlag&bornHostV6Flag != 0 {
			p = posBornHost + 20
		}
		p += 8 // store timestamp
		if sysFlag&storeHostV6Flag != 0 {
			p += 20
		} else {
			p += 8
		}
		p += 4 + 8 // reconsume times, prepared transaction offset
		if p+4 > size {
			return n, fmt.Errorf("%w: body length past record end", ErrBadRecord)
		}
		bodyLen := int(int32(be.Uint32(r[p:])))
		if bodyLen < 0 || p+4+bodyLen > size {
			return n, fmt.Errorf("%w: body length %d in a record of %d bytes", ErrBadRecord, bodyLen, size)
		}
		fn(RecordInfo{BornTimestamp: int64(be.Uint64(r[posBornTimestamp:])), BodyLen: bodyLen, StoreSize: size})
		n++
		b = b[size:]
	}
	return n, nil
}
