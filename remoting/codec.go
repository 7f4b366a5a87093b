package remoting

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"unsafe"
)

// maxHeaderLength is the largest header the 24-bit length field can carry.
const maxHeaderLength = 0xFFFFFF

// Encode appends the whole frame of cmd — length word, header word, header
// and body — to dst and returns the extended slice. The header is written in
// cmd.SerializeType (JSON or RocketMQ binary). An empty Language is written as
// DefaultLanguage and a zero Version as DefaultVersion. On error dst is
// returned unchanged (its length; bytes past it may have been written).
func Encode(dst []byte, cmd *RemotingCommand) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	var err error
	switch cmd.SerializeType {
	case JSON:
		dst = appendJSONHeader(dst, cmd)
	case RocketMQ:
		dst, err = appendBinaryHeader(dst, cmd)
	default:
		err = fmt.Errorf("%w: %d", ErrUnknownSerializeType, cmd.SerializeType)
	}
	if err != nil {
		return dst[:start], err
	}
	headerLen := len(dst) - start - 8
	if headerLen > maxHeaderLength {
		return dst[:start], ErrHeaderTooLarge
	}
	total := 4 + headerLen + len(cmd.Body)
	if total > 0x7FFFFFFF {
		return dst[:start], ErrFrameTooLarge
	}
	dst = append(dst, cmd.Body...)
	binary.BigEndian.PutUint32(dst[start:], uint32(total))
	binary.BigEndian.PutUint32(dst[start+4:], uint32(cmd.SerializeType)<<24|uint32(headerLen))
	return dst, nil
}

// DecodeFrame decodes one frame given without its 4-byte length word (that
// is, starting at the header word). It takes ownership of frame: the returned
// command's Body — and its string fields, when frame is small — alias frame,
// which must therefore never be modified or reused afterwards. Every failure wraps
// ErrMalformedFrame (or ErrUnknownSerializeType); nothing in frame can make
// it panic, and it allocates no more than a small multiple of len(frame).
func DecodeFrame(frame []byte) (*RemotingCommand, error) {
	cmd := new(RemotingCommand)
	if err := decodeFrameInto(cmd, frame); err != nil {
		return nil, err
	}
	return cmd, nil
}

// Commands together with their frame, for newFrame: 376 bytes of
// RemotingCommand (64-bit platforms, eight ext fields inline) plus the
// buffer — plus the 8-byte header the allocator puts before an object of
// more than 512 bytes that holds pointers — make a malloc size class, so
// the joint allocation wastes no more than separate ones would.
type (
	cmdFrame72 struct {
		cmd RemotingCommand
		buf [72]byte
	}
	cmdFrame136 struct {
		cmd RemotingCommand
		buf [136]byte
	}
	cmdFrame256 struct {
		cmd RemotingCommand
		buf [256]byte
	}
	cmdFrame384 struct {
		cmd RemotingCommand
		buf [384]byte
	}
	cmdFrame512 struct {
		cmd RemotingCommand
		buf [512]byte
	}
	cmdFrame640 struct {
		cmd RemotingCommand
		buf [640]byte
	}
	cmdFrame896 struct {
		cmd RemotingCommand
		buf [896]byte
	}
	cmdFrame1152 struct {
		cmd RemotingCommand
		buf [1152]byte
	}
	cmdFrame1664 struct {
		cmd RemotingCommand
		buf [1664]byte
	}
	cmdFrame2304 struct {
		cmd RemotingCommand
		buf [2304]byte
	}
	cmdFrame2688 struct {
		cmd RemotingCommand
		buf [2688]byte
	}
	cmdFrame3712 struct {
		cmd RemotingCommand
		buf [3712]byte
	}
)

// maxSharedFrame is the largest frame newFrame allocates together with its
// command. Decoded strings alias such a frame; those of a larger one are
// copied (see decodeFrameInto).
const maxSharedFrame = 3712

// newFrame returns room for a frame of n bytes (without its length word)
// and the command it will be decoded into. Small frames — most requests and
// responses — share one allocation with their command, which holds up to
// eight ext fields itself, so that allocation is all a decode costs. The
// frame's capacity is n: a Body aliasing it cannot be appended into the rest.
func newFrame(n int) (*RemotingCommand, []byte) {
	switch {
	case n <= 72:
		x := new(cmdFrame72)
		return &x.cmd, x.buf[:n:n]
	case n <= 136:
		x := new(cmdFrame136)
		return &x.cmd, x.buf[:n:n]
	case n <= 256:
		x := new(cmdFrame256)
		return &x.cmd, x.buf[:n:n]
	case n <= 384:
		x := new(cmdFrame384)
		return &x.cmd, x.buf[:n:n]
	case n <= 512:
		x := new(cmdFrame512)
		return &x.cmd, x.buf[:n:n]
	case n <= 640:
		x := new(cmdFrame640)
		return &x.cmd, x.buf[:n:n]
	case n <= 896:
		x := new(cmdFrame896)
		return &x.cmd, x.buf[:n:n]
	case n <= 1152:
		x := new(cmdFrame1152)
		return &x.cmd, x.buf[:n:n]
	case n <= 1664:
		x := new(cmdFrame1664)
		return &x.cmd, x.buf[:n:n]
	case n <= 2304:
		x := new(cmdFrame2304)
		return &x.cmd, x.buf[:n:n]
	case n <= 2688:
		x := new(cmdFrame2688)
		return &x.cmd, x.buf[:n:n]
	case n <= 3712:
		x := new(cmdFrame3712)
		return &x.cmd, x.buf[:n:n]
	}
	return new(RemotingCommand), make([]byte, n)
}

// frameSizes are the buffer sizes of newFrame's joint types, smallest first.
var frameSizes = [...]int{72, 136, 256, 384, 512, 640, 896, 1152, 1664, 2304, 2688, 3712}

// framePools hold the server's released request frames, one pool per
// joint type of newFrame (by the command's frameClass - 1). A send frame
// with its command was ~40% of the bytes the DLedger leader allocated, and
// as an object with pointers it is zeroed and refills the allocator's
// spans every few requests (issue 8).
var framePools [len(frameSizes)]sync.Pool

// frameBufOffset is where the buffer follows the command in every joint
// type (the command's size is a multiple of 8, the buffer is bytes).
const frameBufOffset = unsafe.Offsetof(cmdFrame72{}.buf)

// requestFrame is newFrame for the requests a Server reads: a small frame
// is taken from its class's pool when one was released (ReleaseRequest),
// and its command records the class so that it can go back.
func requestFrame(n int) (*RemotingCommand, []byte) {
	c := 0
	for c < len(frameSizes) && n > frameSizes[c] {
		c++
	}
	if c == len(frameSizes) {
		return newFrame(n)
	}
	cmd, ok := framePools[c].Get().(*RemotingCommand)
	if !ok {
		var frame []byte
		cmd, frame = newFrame(n)
		cmd.frameClass = uint8(c + 1)
		return cmd, frame
	}
	cmd.frameClass = uint8(c + 1)
	return cmd, jointBuf(cmd)[:n:n]
}

// jointBuf is the whole buffer allocated together with cmd by newFrame
// (cmd.frameClass set).
func jointBuf(cmd *RemotingCommand) []byte {
	return unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(cmd), frameBufOffset)), frameSizes[cmd.frameClass-1])
}

// ReleaseRequest hands the frame of req back to the Server for the
// requests it reads next. Call it at most once, only for a request a
// Server passed to a handler that returned nil (the Server does not touch
// such a request after the handler returned), and only once nothing uses
// req any more, nor anything decoded from it: its Body, its ExtFields, and
// every string read from them (they alias the frame: a string kept past
// this call, as a map key for instance, must be a copy). A request that
// is not a Server's, or was too large to share its frame, is left to the
// garbage collector.
func ReleaseRequest(req *RemotingCommand) {
	if req.frameClass == 0 {
		return
	}
	buf := jointBuf(req)
	if b := req.Body; len(b) > 0 {
		// Defensive: the body must be the frame's own.
		start := uintptr(unsafe.Pointer(&buf[0]))
		if p := uintptr(unsafe.Pointer(&b[0])); p < start || p+uintptr(len(b)) > start+uintptr(len(buf)) {
			return
		}
	}
	if poisonReleased {
		for i := range buf {
			buf[i] = 0xdd
		}
	}
	c := req.frameClass
	*req = RemotingCommand{} // drops what it points to; the class is set again when it is taken
	framePools[c-1].Put(req)
}

// decodeFrameInto is DecodeFrame into a command the caller allocated.
func decodeFrameInto(cmd *RemotingCommand, frame []byte) error {
	if len(frame) < 4 {
		return fmt.Errorf("%w: frame of %d bytes has no header word", ErrMalformedFrame, len(frame))
	}
	word := binary.BigEndian.Uint32(frame)
	st := SerializeType(word >> 24)
	headerLen := int(word & maxHeaderLength)
	if headerLen > len(frame)-4 {
		return fmt.Errorf("%w: header length %d exceeds frame length %d", ErrMalformedFrame, headerLen, len(frame))
	}
	header := frame[4 : 4+headerLen : 4+headerLen]
	if len(frame) > maxSharedFrame {
		// The header's strings would alias a frame that is mostly body: a
		// handler keeping one (a topic as a map key) would pin it all.
		// One copy of the header serves all of them instead.
		header = bytes.Clone(header)
	}
	var err error
	switch st {
	case JSON:
		err = decodeJSONHeader(cmd, header)
	case RocketMQ:
		err = decodeBinaryHeader(cmd, header)
	default:
		return fmt.Errorf("%w: %d", ErrUnknownSerializeType, st)
	}
	if err != nil {
		return err
	}
	cmd.SerializeType = st
	if len(frame) > 4+headerLen {
		cmd.Body = frame[4+headerLen : len(frame) : len(frame)]
	}
	return nil
}

// ReadFrame reads one frame from r and returns it without its length word,
// ready for DecodeFrame. A declared length below 4 wraps ErrMalformedFrame
// and one above maxFrameSize (DefaultMaxFrameSize when ≤ 0) wraps
// ErrFrameTooLarge; both are detected before anything is allocated. The
// returned slice is freshly allocated and owned by the caller. io.EOF is
// returned as is when r ends cleanly before a frame starts.
func ReadFrame(r io.Reader, maxFrameSize int) ([]byte, error) {
	_, frame, err := readFrame(r, maxFrameSize, false)
	return frame, err
}

// readCommand reads and decodes one frame from r, as ReadFrame and
// DecodeFrame do, with one allocation for a small frame and its command.
func readCommand(r *bufio.Reader, maxFrameSize int) (*RemotingCommand, error) {
	cmd, frame, err := readFrame(r, maxFrameSize, true)
	if err != nil {
		return nil, err
	}
	if err := decodeFrameInto(cmd, frame); err != nil {
		return nil, err
	}
	return cmd, nil
}

// readFrame is ReadFrame, also returning the command to decode the frame
// into when withCmd is set (see newFrame).
func readFrame(r io.Reader, maxFrameSize int, withCmd bool) (*RemotingCommand, []byte, error) {
	if maxFrameSize <= 0 {
		maxFrameSize = DefaultMaxFrameSize
	}
	var declared uint32
	if br, ok := r.(*bufio.Reader); ok {
		// Peek: a length word read through the io.Reader interface would
		// escape to the heap, one more allocation per frame.
		head, err := br.Peek(4)
		if err != nil {
			if err == io.EOF && len(head) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, nil, err
		}
		declared = binary.BigEndian.Uint32(head)
		_, _ = br.Discard(4)
	} else {
		var lenBuf [4]byte
		if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
			return nil, nil, err
		}
		declared = binary.BigEndian.Uint32(lenBuf[:])
	}
	n, err := checkFrameLength(declared, maxFrameSize)
	if err != nil {
		return nil, nil, err
	}
	var cmd *RemotingCommand
	var frame []byte
	if withCmd {
		cmd, frame = newFrame(n)
	} else {
		frame = make([]byte, n)
	}
	if _, err := io.ReadFull(r, frame); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, nil, err
	}
	return cmd, frame, nil
}

// checkFrameLength validates a declared frame length (the first word of a
// frame) against the minimum 4 and max.
func checkFrameLength(declared uint32, max int) (int, error) {
	if declared < 4 {
		return 0, fmt.Errorf("%w: frame length %d below 4", ErrMalformedFrame, declared)
	}
	if uint64(declared) > uint64(max) {
		return 0, fmt.Errorf("%w: %d > %d", ErrFrameTooLarge, declared, max)
	}
	return int(declared), nil
}

// peekRequestCode reads the code of a request from a frame given without
// its length word, without decoding it, so the server can pick where to
// serve it. It reports false for responses, for frames it cannot read
// cheaply (a JSON header whose first key is not "code") and for anything
// malformed: those take the full decoder.
func peekRequestCode(frame []byte) (int16, bool) {
	if len(frame) < 4 {
		return 0, false
	}
	word := binary.BigEndian.Uint32(frame)
	h := frame[4:]
	if n := int(word & maxHeaderLength); n <= len(h) {
		h = h[:n]
	} else {
		return 0, false
	}
	switch SerializeType(word >> 24) {
	case RocketMQ:
		if len(h) < binaryFixedLen || binary.BigEndian.Uint32(h[9:])&uint32(FlagResponse) != 0 {
			return 0, false
		}
		return int16(binary.BigEndian.Uint16(h)), true
	case JSON:
		// Both the Go and the Java encoders write "code" first (Java's
		// fastjson sorts keys). The flag comes later, so a response is
		// only told apart by the full decode; its code is harmless here.
		const prefix = `{"code":`
		if len(h) < len(prefix) || string(h[:len(prefix)]) != prefix {
			return 0, false
		}
		v, neg, digits := 0, false, 0
		i := len(prefix)
		if i < len(h) && h[i] == '-' {
			neg, i = true, i+1
		}
		for ; i < len(h) && h[i] >= '0' && h[i] <= '9' && digits < 6; i++ {
			v = v*10 + int(h[i]-'0')
			digits++
		}
		if digits == 0 || i == len(h) || (h[i] != ',' && h[i] != '}') {
			return 0, false
		}
		if neg {
			v = -v
		}
		if v < -32768 || v > 32767 {
			return 0, false
		}
		return int16(v), true
	}
	return 0, false
}
