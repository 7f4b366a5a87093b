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
// A Fields is used in place (it is large: pass a pointer). An assignment
// copies the first eight fields and shares the storage of the others, so
// to modify a copy without touching the original use Clone.
type Fields struct {
	n      int                 // number of fields
	inline [inlineFields]Field // fields 0..7
	more   []Field             // fields 8..n-1; len(more) == max(0, n-8)
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

// at returns field i < n.
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
	if i := f.index(k); i >= 0 {
		return f.at(i).Value
	}
	return ""
}

// Lookup returns the value of key k and whether it is present.
func (f *Fields) Lookup(k string) (string, bool) {
	if i := f.index(k); i >= 0 {
		return f.at(i).Value, true
	}
	return "", false
}

// Set sets key k to v, replacing an existing value in place.
func (f *Fields) Set(k, v string) {
	if i := f.index(k); i >= 0 {
		f.at(i).Value = v
		return
	}
	f.add(k, v)
}

// add appends a field without looking for k first.
func (f *Fields) add(k, v string) {
	if f.n < inlineFields {
		f.inline[f.n] = Field{k, v}
	} else {
		f.more = append(f.more, Field{k, v})
	}
	f.n++
}

// grow makes room for n more fields beyond the inline ones at once.
func (f *Fields) grow(n int) {
	if extra := f.n + n - inlineFields; extra > 0 {
		f.more = slices.Grow(f.more, extra-len(f.more))
	}
}

// Del removes key k if present; the others keep their order.
func (f *Fields) Del(k string) {
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
func (f *Fields) Reset() { f.truncate(0) }

// All iterates over the fields in order.
func (f *Fields) All() iter.Seq2[string, string] {
	return func(yield func(k, v string) bool) {
		for i := 0; i < f.n; i++ {
			p := f.at(i)
			if !yield(p.Key, p.Value) {
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
	for i := 0; i < f.n; i++ {
		p := f.at(i)
		if v, ok := g.Lookup(p.Key); !ok || v != p.Value {
			return false
		}
	}
	return true
}

// String formats the fields as fmt formats a map: map[k:v k:v].
func (f *Fields) String() string {
	var b strings.Builder
	b.WriteString("map[")
	for i := 0; i < f.n; i++ {
		if i > 0 {
			b.WriteByte(' ')
		}
		p := f.at(i)
		b.WriteString(p.Key)
		b.WriteByte(':')
		b.WriteString(p.Value)
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
		k := f.at(i).Key
		h := uint(len(k)) * 7
		if len(k) > 0 {
			h += uint(k[0])*3 + uint(k[len(k)-1])
		}
		bit := uint64(1) << (h & 63)
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
