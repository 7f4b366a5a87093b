package remoting

import (
	"iter"
	"slices"
	"strings"
)

// Field is one ext field: a key and its string value.
type Field struct{ Key, Value string }

// inlineFields is how many fields a Fields holds without allocating: the
// headers of most requests and responses fit (a Java SendMessageV2 request
// has 14, a pull request about 12, everything else fewer).
const inlineFields = 8

// Fields is the ext fields ("custom header") of a command: string keys with
// string values, each key at most once. The first eight live inside the
// Fields itself — inside the command, which a decoded small frame shares
// one allocation with — so neither decoding nor building a header
// allocates. Keys are written in the order they were first set; peers
// (Java HashMaps) give the order no meaning. The zero value is empty and
// ready to use.
//
// A decoded binary header keeps the fields beyond the first eight encoded,
// as they arrived, and reads them in place until something changes the
// Fields: a send request (SEND_MESSAGE_V2 has 13-14 fields) then costs no
// allocation for them (growing more was 1.4-1.8% of the DLedger leader's
// CPU, issue 8).
//
// A Fields is used in place (it is large: pass a pointer). An assignment
// copies the first eight fields and shares the storage of the others, so
// to modify a copy without touching the original use Clone.
type Fields struct {
	n      int                 // number of fields
	inline [inlineFields]Field // fields 0..7
	more   []Field             // fields 8..n-1; len(more) == max(0, n-8), or 0 with raw
	// raw, when not empty, holds fields 8..n-1 in the binary header's
	// encoding (int16 key length, key, int32 value length, value), checked
	// and with distinct keys (decodeBinaryHeader); spill decodes them into
	// more before any change.
	raw string
}

// FieldsOf returns the fields of the given key, value pairs (a later
// duplicate key overwrites the earlier value). It panics on an odd count.
func FieldsOf(kv ...string) Fields {
	if len(kv)%2 != 0 {
		panic("remoting.FieldsOf: odd number of arguments")
	}
	var f Fields
	f.grow(len(kv) / 2)
	for i := 0; i < len(kv); i += 2 {
		f.Set(kv[i], kv[i+1])
	}
	return f
}

// FieldsFrom returns the entries of m as Fields, keys in sorted order so
// the encoding is deterministic.
func FieldsFrom(m map[string]string) Fields {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var f Fields
	f.grow(len(keys))
	for _, k := range keys {
		f.add(k, m[k])
	}
	return f
}

// Len returns the number of fields.
func (f *Fields) Len() int { return f.n }

// nextRaw splits the first field off raw (an encoding decodeBinaryHeader
// checked).
func nextRaw(raw string) (k, v, rest string) {
	kl := int(raw[0])<<8 | int(raw[1])
	k, raw = raw[2:2+kl], raw[2+kl:]
	vl := int(raw[0])<<24 | int(raw[1])<<16 | int(raw[2])<<8 | int(raw[3])
	return k, raw[4 : 4+vl], raw[4+vl:]
}

// spill decodes the raw fields into more: every change starts with it, so
// that at and index see all fields.
func (f *Fields) spill() {
	if f.raw == "" {
		return
	}
	more := make([]Field, 0, f.n-inlineFields)
	for raw := f.raw; raw != ""; {
		var k, v string
		k, v, raw = nextRaw(raw)
		more = append(more, Field{k, v})
	}
	f.more, f.raw = more, ""
}

// at returns field i < n (spilled: i < inlineFields or raw empty).
func (f *Fields) at(i int) *Field {
	if i < inlineFields {
		return &f.inline[i]
	}
	return &f.more[i-inlineFields]
}

// index returns the position of key k, or -1.
func (f *Fields) index(k string) int {
	in := f.inline[:min(f.n, inlineFields)]
	for i := range in {
		if in[i].Key == k {
			return i
		}
	}
	for i := range f.more {
		if f.more[i].Key == k {
			return inlineFields + i
		}
	}
	return -1
}

// Get returns the value of key k, "" when it is absent.
func (f *Fields) Get(k string) string {
	v, _ := f.Lookup(k)
	return v
}

// Lookup returns the value of key k and whether it is present. It reads raw
// fields in place: readers never change a Fields.
func (f *Fields) Lookup(k string) (string, bool) {
	if i := f.index(k); i >= 0 {
		return f.at(i).Value, true
	}
	for raw := f.raw; raw != ""; {
		var rk, v string
		if rk, v, raw = nextRaw(raw); rk == k {
			return v, true
		}
	}
	return "", false
}

// Set sets key k to v, replacing an existing value in place.
func (f *Fields) Set(k, v string) {
	f.spill()
	if i := f.index(k); i >= 0 {
		f.at(i).Value = v
		return
	}
	f.add(k, v)
}

// add appends a field without looking for k first.
func (f *Fields) add(k, v string) {
	f.spill()
	if f.n < inlineFields {
		f.inline[f.n] = Field{k, v}
	} else {
		f.more = append(f.more, Field{k, v})
	}
	f.n++
}

// grow makes room for n more fields beyond the inline ones at once.
func (f *Fields) grow(n int) {
	f.spill()
	if extra := f.n + n - inlineFields; extra > 0 {
		f.more = slices.Grow(f.more, extra-len(f.more))
	}
}

// Del removes key k if present; the others keep their order.
func (f *Fields) Del(k string) {
	f.spill()
	i := f.index(k)
	if i < 0 {
		return
	}
	for ; i < f.n-1; i++ {
		*f.at(i) = *f.at(i + 1)
	}
	f.truncate(f.n - 1)
}

// truncate drops the fields from n on, clearing them so nothing they
// referenced stays reachable.
func (f *Fields) truncate(n int) {
	for i := n; i < min(f.n, inlineFields); i++ {
		f.inline[i] = Field{}
	}
	if len(f.more) > 0 {
		keep := max(0, n-inlineFields)
		clear(f.more[keep:])
		f.more = f.more[:keep]
	}
	f.n = n
}

// Reset removes every field, keeping the storage for reuse.
func (f *Fields) Reset() {
	f.raw = ""
	f.truncate(0)
}

// All iterates over the fields in order.
func (f *Fields) All() iter.Seq2[string, string] {
	return func(yield func(k, v string) bool) {
		for i := 0; i < f.n && (i < inlineFields || f.raw == ""); i++ {
			p := f.at(i)
			if !yield(p.Key, p.Value) {
				return
			}
		}
		for raw := f.raw; raw != ""; {
			var k, v string
			if k, v, raw = nextRaw(raw); !yield(k, v) {
				return
			}
		}
	}
}

// Clone returns a copy sharing no storage with f.
func (f *Fields) Clone() Fields {
	c := *f
	c.more = slices.Clone(f.more)
	return c
}

// Map returns the fields as a new map (for callers that need one: JSON
// bodies, tests).
func (f *Fields) Map() map[string]string {
	m := make(map[string]string, f.n)
	for k, v := range f.All() {
		m[k] = v
	}
	return m
}

// Equal reports whether f and g hold the same keys with the same values,
// in any order.
func (f *Fields) Equal(g *Fields) bool {
	if f.n != g.n {
		return false
	}
	for k, v := range f.All() {
		if gv, ok := g.Lookup(k); !ok || gv != v {
			return false
		}
	}
	return true
}

// String formats the fields as fmt formats a map: map[k:v k:v].
func (f *Fields) String() string {
	var b strings.Builder
	b.WriteString("map[")
	first := true
	for k, v := range f.All() {
		if !first {
			b.WriteByte(' ')
		}
		first = false
		b.WriteString(k)
		b.WriteByte(':')
		b.WriteString(v)
	}
	b.WriteByte(']')
	return b.String()
}

// dedupe merges repeated keys after a decoder appended fields with add:
// the last value wins (as a Java HashMap or encoding/json decoding into a
// map keep it), at the position of the first. A 64-bit sketch of the keys
// skips the work when all keys are clearly distinct, which is the normal
// case; a map is used for long lists so a crafted header of many keys
// costs linear time.
func (f *Fields) dedupe() {
	if f.n < 2 {
		return
	}
	var sketch uint64
	clash := false
	for i := 0; i < f.n; i++ {
		bit := keySketch(f.at(i).Key)
		if sketch&bit != 0 {
			clash = true
			break
		}
		sketch |= bit
	}
	if !clash {
		return
	}
	w := 0
	if f.n <= 32 {
		for i := 0; i < f.n; i++ {
			p := *f.at(i)
			j := 0
			for j < w && f.at(j).Key != p.Key {
				j++
			}
			if j < w {
				f.at(j).Value = p.Value
				continue
			}
			*f.at(w) = p
			w++
		}
	} else {
		pos := make(map[string]int, f.n)
		for i := 0; i < f.n; i++ {
			p := *f.at(i)
			if j, ok := pos[p.Key]; ok {
				f.at(j).Value = p.Value
				continue
			}
			pos[p.Key] = w
			*f.at(w) = p
			w++
		}
	}
	f.truncate(w)
}

// keySketch is a key's bit in a 64-bit sketch of a key list: distinct bits
// mean distinct keys.
func keySketch(k string) uint64 {
	h := uint(len(k)) * 7
	if len(k) > 0 {
		h += uint(k[0])*3 + uint(k[len(k)-1])
	}
	return uint64(1) << (h & 63)
}
