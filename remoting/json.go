package remoting

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ---------------------------------------------------------------------------
// Encoder: a hand-written writer in the Go client's key order:
// {"code":C,"language":"L","version":V,"opaque":O,"flag":F,"remark":"R","extFields":{...}}
// "remark" is left out when empty; "extFields" is always written ({} when
// empty), keys in the order of the command's Fields.

const hexDigits = "0123456789abcdef"

func appendJSONHeader(dst []byte, cmd *RemotingCommand) []byte {
	lang := cmd.Language
	if lang == "" {
		lang = DefaultLanguage
	}
	version := cmd.Version
	if version == 0 {
		version = DefaultVersion
	}
	dst = append(dst, `{"code":`...)
	dst = strconv.AppendInt(dst, int64(cmd.Code), 10)
	dst = append(dst, `,"language":`...)
	dst = appendJSONString(dst, lang)
	dst = append(dst, `,"version":`...)
	dst = strconv.AppendInt(dst, int64(version), 10)
	dst = append(dst, `,"opaque":`...)
	dst = strconv.AppendInt(dst, int64(cmd.Opaque), 10)
	dst = append(dst, `,"flag":`...)
	dst = strconv.AppendInt(dst, int64(cmd.Flag), 10)
	if cmd.Remark != "" {
		dst = append(dst, `,"remark":`...)
		dst = appendJSONString(dst, cmd.Remark)
	}
	dst = append(dst, `,"extFields":{`...)
	first := true
	for k, v := range cmd.ExtFields.All() {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendJSONString(dst, k)
		dst = append(dst, ':')
		dst = appendJSONString(dst, v)
	}
	return append(dst, "}}"...)
}

// jsonSafe[c] is true for bytes copied into a JSON string unescaped.
var jsonSafe = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendJSONString writes s as a JSON string. Quotes, backslashes and
// control characters are escaped; other bytes (UTF-8) are copied as is.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if jsonSafe[c] {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// ---------------------------------------------------------------------------
// Decoder: a small strict parser over a header the caller owns. Strings
// without escapes alias the header; the decoded command costs one string
// per escaped value, and one slice when it has more than eight ext fields.

// maxJSONDepth bounds the nesting of skipped unknown values.
const maxJSONDepth = 64

type jsonParser struct {
	b []byte
	i int
}

func (p *jsonParser) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: json header at byte %d: %s", ErrMalformedFrame, p.i, fmt.Sprintf(format, args...))
}

func (p *jsonParser) ws() {
	for p.i < len(p.b) && p.b[p.i] <= ' ' { // headers rarely have any
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte (0 at the end) without consuming it.
func (p *jsonParser) peek() byte {
	p.ws()
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *jsonParser) expect(c byte) error {
	if p.peek() != c {
		return p.errorf("expected %q", c)
	}
	p.i++
	return nil
}

// literal consumes the keyword s (true, false, null).
func (p *jsonParser) literal(s string) bool {
	if len(p.b)-p.i >= len(s) && string(p.b[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return true
	}
	return false
}

// rawString consumes a string and returns its raw contents (escapes not
// processed) and whether it contains escapes.
func (p *jsonParser) rawString() ([]byte, bool, error) {
	if p.peek() != '"' {
		return nil, false, p.errorf("expected string")
	}
	p.i++
	start, escaped := p.i, false
	for p.i < len(p.b) {
		p.i = skipSafe(p.b, p.i)
		if p.i == len(p.b) {
			break
		}
		switch c := p.b[p.i]; {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			return s, escaped, nil
		case c == '\\':
			escaped = true
			if p.i+1 >= len(p.b) {
				return nil, false, p.errorf("unterminated string")
			}
			switch p.b[p.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.i += 2
			case 'u':
				if _, ok := hexVal(p.b[p.i+2:]); !ok {
					return nil, false, p.errorf("bad \\u escape")
				}
				p.i += 6
			default:
				return nil, false, p.errorf("bad escape")
			}
		default: // below 0x20
			return nil, false, p.errorf("control character in string")
		}
	}
	return nil, false, p.errorf("unterminated string")
}

// skipSafe returns the index of the first byte from i on that ends or
// escapes a string or is a control character (len(b) if none), eight bytes
// at a time: most header strings have no such byte before their quote.
func skipSafe(b []byte, i int) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		q, bs := w^(ones*'"'), w^(ones*'\\')
		// A high bit marks a byte below 0x20, a quote or a backslash; the
		// lowest marked byte is always a real one (borrows run upwards).
		m := ((w - ones*0x20) &^ w) | ((q - ones) &^ q) | ((bs - ones) &^ bs)
		if m &= highs; m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for ; i < len(b) && jsonSafe[b[i]]; i++ {
	}
	return i
}

// str consumes a string value: aliased when it has no escapes.
func (p *jsonParser) str() (string, error) {
	raw, escaped, err := p.rawString()
	if err != nil {
		return "", err
	}
	if !escaped {
		return aliasString(raw), nil
	}
	return p.unescape(raw)
}

func hexVal(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

func (p *jsonParser) unescape(raw []byte) (string, error) {
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i >= len(raw) {
			return "", p.errorf("bad escape")
		}
		switch raw[i] {
		case '"', '\\', '/':
			out = append(out, raw[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hexVal(raw[i+1:])
			if !ok {
				return "", p.errorf("bad \\u escape")
			}
			i += 4
			if utf8.ValidRune(r) {
				out = utf8.AppendRune(out, r)
				break
			}
			// A surrogate: combine with a following low surrogate, else U+FFFD.
			if r >= 0xD800 && r < 0xDC00 && i+2 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
				if r2, ok := hexVal(raw[i+3:]); ok && r2 >= 0xDC00 && r2 < 0xE000 {
					out = utf8.AppendRune(out, (r-0xD800)<<10|(r2-0xDC00)+0x10000)
					i += 6
					break
				}
			}
			out = utf8.AppendRune(out, utf8.RuneError)
		default:
			return "", p.errorf("bad escape")
		}
	}
	return aliasString(out), nil // out is ours and never written again
}

// integer consumes a JSON number that must be an integer in [lo, hi]
// (encoding/json into an intN: fractions and exponents are errors).
func (p *jsonParser) integer(lo, hi int64) (int64, error) {
	p.ws()
	start := p.i
	if p.i < len(p.b) && p.b[p.i] == '-' {
		p.i++
	}
	digits := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	if p.i == digits || (p.b[digits] == '0' && p.i-digits > 1) {
		return 0, p.errorf("bad number")
	}
	if p.i < len(p.b) {
		if c := p.b[p.i]; c == '.' || c == 'e' || c == 'E' {
			return 0, p.errorf("number is not an integer")
		}
	}
	if p.i-digits > 10 { // beyond every int32
		return 0, p.errorf("number out of range")
	}
	var v int64
	for _, c := range p.b[digits:p.i] {
		v = v*10 + int64(c-'0')
	}
	if digits > start {
		v = -v
	}
	if v < lo || v > hi {
		return 0, p.errorf("number out of range")
	}
	return v, nil
}

// skipNumber consumes any JSON number.
func (p *jsonParser) skipNumber() error {
	if p.i < len(p.b) && p.b[p.i] == '-' {
		p.i++
	}
	digits := func() int {
		s := p.i
		for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
			p.i++
		}
		return p.i - s
	}
	intStart := p.i
	if n := digits(); n == 0 || (n > 1 && p.b[intStart] == '0') {
		return p.errorf("bad number")
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if digits() == 0 {
			return p.errorf("bad number")
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return p.errorf("bad number")
		}
	}
	return nil
}

// skipValue consumes any JSON value.
func (p *jsonParser) skipValue(depth int) error {
	if depth > maxJSONDepth {
		return p.errorf("nesting too deep")
	}
	switch c := p.peek(); {
	case c == '"':
		_, _, err := p.rawString()
		return err
	case c == '{' || c == '[':
		close := byte('}')
		if c == '[' {
			close = ']'
		}
		p.i++
		if p.peek() == close {
			p.i++
			return nil
		}
		for {
			if c == '{' {
				if _, _, err := p.rawString(); err != nil {
					return err
				}
				if err := p.expect(':'); err != nil {
					return err
				}
			}
			if err := p.skipValue(depth + 1); err != nil {
				return err
			}
			switch p.peek() {
			case ',':
				p.i++
			case close:
				p.i++
				return nil
			default:
				return p.errorf("expected ',' or %q", close)
			}
		}
	case c == '-' || (c >= '0' && c <= '9'):
		return p.skipNumber()
	case p.literal("true"), p.literal("false"), p.literal("null"):
		return nil
	default:
		return p.errorf("unexpected %q", c)
	}
}

// null consumes a null literal if one comes next.
func (p *jsonParser) null() bool {
	p.ws()
	return p.literal("null")
}

// header keys, matched exactly first and then case-insensitively as
// encoding/json does.
const (
	keyUnknown = iota
	keyCode
	keyLanguage
	keyVersion
	keyOpaque
	keyFlag
	keyRemark
	keyExtFields
)

var headerKeys = [...]string{"", "code", "language", "version", "opaque", "flag", "remark", "extFields"}

func headerKey(k []byte) int {
	switch string(k) {
	case "code":
		return keyCode
	case "language":
		return keyLanguage
	case "version":
		return keyVersion
	case "opaque":
		return keyOpaque
	case "flag":
		return keyFlag
	case "remark":
		return keyRemark
	case "extFields":
		return keyExtFields
	}
	for i := keyCode; i < len(headerKeys); i++ {
		if len(k) == len(headerKeys[i]) && strings.EqualFold(aliasString(k), headerKeys[i]) {
			return i
		}
	}
	return keyUnknown
}

func decodeJSONHeader(cmd *RemotingCommand, h []byte) error {
	p := jsonParser{b: h}
	if err := p.expect('{'); err != nil {
		return err
	}
	if p.peek() == '}' {
		p.i++
		return p.end()
	}
	for {
		key, ok := p.knownKey()
		if !ok {
			raw, escaped, err := p.rawString()
			if err != nil {
				return err
			}
			if !escaped {
				key = headerKey(raw)
			} else if s, err := p.unescape(raw); err != nil {
				return err
			} else {
				key = headerKey([]byte(s))
			}
		}
		if err := p.expect(':'); err != nil {
			return err
		}
		if err := p.field(cmd, key); err != nil {
			return err
		}
		switch p.peek() {
		case ',':
			p.i++
		case '}':
			p.i++
			return p.end()
		default:
			return p.errorf("expected ',' or '}'")
		}
	}
}

// knownKey consumes a key spelled exactly as one of the header's fields —
// what every encoder writes — without the general string scan; false
// (nothing consumed) for anything else.
func (p *jsonParser) knownKey() (int, bool) {
	p.ws()
	rest := p.b[p.i:]
	if len(rest) < 3 || rest[0] != '"' {
		return keyUnknown, false
	}
	var k int
	switch rest[1] {
	case 'c':
		k = keyCode
	case 'l':
		k = keyLanguage
	case 'v':
		k = keyVersion
	case 'o':
		k = keyOpaque
	case 'f':
		k = keyFlag
	case 'r':
		k = keyRemark
	case 'e':
		k = keyExtFields
	default:
		return keyUnknown, false
	}
	name := headerKeys[k]
	if len(rest) < len(name)+2 || rest[len(name)+1] != '"' || string(rest[1:len(name)+1]) != name {
		return keyUnknown, false
	}
	p.i += len(name) + 2
	return k, true
}

func (p *jsonParser) end() error {
	p.ws()
	if p.i != len(p.b) {
		return p.errorf("trailing data")
	}
	return nil
}

func (p *jsonParser) field(cmd *RemotingCommand, key int) error {
	if key == keyUnknown {
		return p.skipValue(1)
	}
	if p.null() {
		return nil
	}
	var err error
	var v int64
	switch key {
	case keyCode:
		v, err = p.integer(-1<<15, 1<<15-1)
		cmd.Code = int16(v)
	case keyVersion:
		v, err = p.integer(-1<<15, 1<<15-1)
		cmd.Version = int16(v)
	case keyOpaque:
		v, err = p.integer(-1<<31, 1<<31-1)
		cmd.Opaque = int32(v)
	case keyFlag:
		v, err = p.integer(-1<<31, 1<<31-1)
		cmd.Flag = int32(v)
	case keyLanguage:
		raw, escaped, e := p.rawString()
		if e != nil {
			return e
		}
		if s, ok := internLanguage(raw); ok {
			cmd.Language = s
		} else if !escaped {
			cmd.Language = aliasString(raw)
		} else {
			cmd.Language, err = p.unescape(raw)
		}
	case keyRemark:
		cmd.Remark, err = p.str()
	case keyExtFields:
		err = p.extFields(cmd)
	}
	return err
}

func (p *jsonParser) extFields(cmd *RemotingCommand) error {
	if err := p.expect('{'); err != nil {
		return err
	}
	if p.peek() == '}' {
		p.i++
		return nil
	}
	// The first fields go straight into the command; the rest are
	// collected on the stack so they take one allocation.
	f := &cmd.ExtFields
	var stack [24]Field
	over := stack[:0]
	for {
		k, err := p.str()
		if err != nil {
			return err
		}
		if err := p.expect(':'); err != nil {
			return err
		}
		v := ""
		if !p.null() {
			if p.peek() != '"' {
				return p.errorf("extFields value of %q is not a string", k)
			}
			if v, err = p.str(); err != nil {
				return err
			}
		}
		if f.n < inlineFields {
			f.add(k, v)
		} else {
			over = append(over, Field{k, v})
		}
		switch p.peek() {
		case ',':
			p.i++
			continue
		case '}':
			p.i++
		default:
			return p.errorf("expected ',' or '}'")
		}
		break
	}
	if len(over) > 0 {
		f.grow(len(over))
		for _, e := range over {
			f.add(e.Key, e.Value)
		}
	}
	f.dedupe() // the last one wins, as in a Java HashMap or encoding/json
	return nil
}
