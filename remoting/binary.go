package remoting

import (
	"encoding/binary"
	"fmt"
	"unsafe"
)

// binaryFixedLen is the smallest ROCKETMQ header: code 2, language 1,
// version 2, opaque 4, flag 4, remark length 4, ext length 4.
const binaryFixedLen = 21

func appendBinaryHeader(dst []byte, cmd *RemotingCommand) ([]byte, error) {
	version := cmd.Version
	if version == 0 {
		version = DefaultVersion
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(cmd.Code))
	dst = append(dst, languageCode(cmd.Language))
	dst = binary.BigEndian.AppendUint16(dst, uint16(version))
	dst = binary.BigEndian.AppendUint32(dst, uint32(cmd.Opaque))
	dst = binary.BigEndian.AppendUint32(dst, uint32(cmd.Flag))
	if len(cmd.Remark) > maxHeaderLength {
		return dst, ErrHeaderTooLarge
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(cmd.Remark)))
	dst = append(dst, cmd.Remark...)
	extAt := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst, err := appendBinaryExt(dst, &cmd.ExtFields)
	if err != nil {
		return dst, err
	}
	if len(dst)-extAt-4 > maxHeaderLength {
		return dst, ErrHeaderTooLarge
	}
	binary.BigEndian.PutUint32(dst[extAt:], uint32(len(dst)-extAt-4))
	return dst, nil
}

// appendBinaryExt appends f's fields in the binary encoding. It walks the
// Fields' storage itself rather than All: a send request's 13-14 fields
// are encoded on every send, and the iterator's call per field was most
// of the encoding's cost (issue 8). Raw fields are already in this
// encoding and are copied as they are.
func appendBinaryExt(dst []byte, f *Fields) ([]byte, error) {
	n := f.n
	if f.raw != "" {
		n = inlineFields
	}
	for i := range min(n, inlineFields) {
		var err error
		if dst, err = appendBinaryField(dst, f.inline[i].Key, f.inline[i].Value); err != nil {
			return dst, err
		}
	}
	for i := range f.more {
		var err error
		if dst, err = appendBinaryField(dst, f.more[i].Key, f.more[i].Value); err != nil {
			return dst, err
		}
	}
	return append(dst, f.raw...), nil
}

func appendBinaryField(dst []byte, k, v string) ([]byte, error) {
	if len(k) > 0x7FFF {
		return dst, fmt.Errorf("%w: ext key of %d bytes", ErrHeaderTooLarge, len(k))
	}
	if len(v) > maxHeaderLength {
		return dst, ErrHeaderTooLarge
	}
	dst = append(dst, byte(len(k)>>8), byte(len(k)))
	dst = append(dst, k...)
	dst = append(dst, byte(len(v)>>24), byte(len(v)>>16), byte(len(v)>>8), byte(len(v)))
	return append(dst, v...), nil
}

// aliasString returns a string sharing b's bytes. The decoders use it on
// frames they own (DecodeFrame's contract: the frame is never modified).
func aliasString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func decodeBinaryHeader(cmd *RemotingCommand, h []byte) error {
	if len(h) < binaryFixedLen {
		return fmt.Errorf("%w: binary header of %d bytes", ErrMalformedFrame, len(h))
	}
	cmd.Code = int16(binary.BigEndian.Uint16(h))
	cmd.Language = languageName(h[2])
	cmd.Version = int16(binary.BigEndian.Uint16(h[3:]))
	cmd.Opaque = int32(binary.BigEndian.Uint32(h[5:]))
	cmd.Flag = int32(binary.BigEndian.Uint32(h[9:]))
	p := 13
	remarkLen := binary.BigEndian.Uint32(h[p:])
	p += 4
	if uint64(remarkLen) > uint64(len(h)-p-4) {
		return fmt.Errorf("%w: remark length %d", ErrMalformedFrame, remarkLen)
	}
	cmd.Remark = aliasString(h[p : p+int(remarkLen)])
	p += int(remarkLen)
	extLen := binary.BigEndian.Uint32(h[p:])
	p += 4
	if uint64(extLen) > uint64(len(h)-p) {
		return fmt.Errorf("%w: ext length %d", ErrMalformedFrame, extLen)
	}
	ext := h[p : p+int(extLen)]
	if len(ext) == 0 {
		return nil
	}
	// First pass: validate, count and sketch the keys, so that the fields
	// beyond the inline ones can stay encoded (distinct keys) or take one
	// allocation.
	n, q, rawAt := 0, 0, 0
	var sketch uint64
	distinct := true
	for q < len(ext) {
		if len(ext)-q < 2 {
			return fmt.Errorf("%w: truncated ext key length", ErrMalformedFrame)
		}
		if n == inlineFields {
			rawAt = q
		}
		kl := int(int16(binary.BigEndian.Uint16(ext[q:])))
		q += 2
		if kl < 0 || kl > len(ext)-q-4 {
			return fmt.Errorf("%w: ext key length %d", ErrMalformedFrame, kl)
		}
		bit := keySketch(aliasString(ext[q : q+kl]))
		distinct = distinct && sketch&bit == 0
		sketch |= bit
		q += kl
		vl := binary.BigEndian.Uint32(ext[q:])
		q += 4
		if uint64(vl) > uint64(len(ext)-q) {
			return fmt.Errorf("%w: ext value length %d", ErrMalformedFrame, vl)
		}
		q += int(vl)
		n++
	}
	f := &cmd.ExtFields
	if n > inlineFields && (distinct || distinctKeys(aliasString(ext))) && f.n == 0 {
		for q = 0; q < rawAt; {
			var k, v string
			k, v, _ = nextRaw(aliasString(ext[q:rawAt]))
			f.add(k, v)
			q += 6 + len(k) + len(v)
		}
		f.raw = aliasString(ext[rawAt:])
		f.n = n
		return nil
	}
	f.grow(n)
	for q = 0; q < len(ext); {
		kl := int(binary.BigEndian.Uint16(ext[q:]))
		q += 2
		k := aliasString(ext[q : q+kl])
		q += kl
		vl := int(binary.BigEndian.Uint32(ext[q:]))
		q += 4
		f.add(k, aliasString(ext[q:q+vl]))
		q += vl
	}
	f.dedupe() // a Java peer's HashMap: the last one wins
	return nil
}

// distinctKeys reports whether the checked ext fields have distinct keys,
// comparing them pairwise (when the sketch of decodeBinaryHeader could not
// tell); false for more than 32 fields, which go the way of dedupe.
func distinctKeys(raw string) bool {
	var keys [32]string
	n := 0
	for raw != "" {
		if n == len(keys) {
			return false
		}
		var k string
		k, _, raw = nextRaw(raw)
		for _, o := range keys[:n] {
			if o == k {
				return false
			}
		}
		keys[n] = k
		n++
	}
	return true
}
