package store

import (
	"iter"
	"slices"
	"strings"
)

// Properties are a message's properties in their stored form (§5.1): name
// 0x01 value 0x02 per property. A Properties built by this package is
// canonical: every property has a non-empty name and value, a name occurs
// once and a non-empty string ends with 0x02. The zero value is empty.
//
// They are kept as a string rather than a map so that a send stores the
// properties string the producer sent plus what the broker adds, without
// parsing it into a map and writing it out again (a map, its sort and walk
// were 4-5% of the DLedger leader's CPU at 64 sync producers, issue 8),
// and so that copying a Message copies its properties.
//
// Order: properties keep the order they arrived in and With appends. A
// Java broker re-serializes its HashMap, whose iteration order depends on
// the key hashes and on the capacity its version sizes the map with (128
// in 4.9.x/5.x string2messageProperties); every reader (clients, brokers,
// tools) parses properties into a map, so the order carries no meaning.
type Properties string

// ParseProperties returns s, a properties string from the wire or a stored
// record, as canonical Properties, reading it the way Java does: segments
// without a name or a value are dropped, a later duplicate name replaces an
// earlier one (HashMap.put) and a missing trailing 0x02 is tolerated. A
// canonical s — what a producer sends — is returned as is, without copying.
func ParseProperties(s string) Properties {
	if isCanonical(s) {
		return Properties(s)
	}
	return canonicalize(s)
}

// maxQuickNames bounds isCanonical's pairwise duplicate check; strings with
// more properties take canonicalize (linear, with a map).
const maxQuickNames = 16

// isCanonical reports whether s needs no rewriting, without allocating.
func isCanonical(s string) bool {
	if s == "" {
		return true
	}
	if s[len(s)-1] != PropertySeparator {
		return false
	}
	var names [maxQuickNames]string
	n := 0
	for rest := s; rest != ""; {
		end := strings.IndexByte(rest, PropertySeparator) // found: s ends with one
		seg := rest[:end]
		rest = rest[end+1:]
		sep := strings.IndexByte(seg, NameValueSeparator)
		if sep <= 0 || sep == len(seg)-1 || n == len(names) {
			return false
		}
		name := seg[:sep]
		if slices.Contains(names[:n], name) {
			return false
		}
		names[n] = name
		n++
	}
	return true
}

// canonicalize is ParseProperties' slow path: a property is kept where its
// last occurrence stands.
func canonicalize(s string) Properties {
	type prop struct{ name, value string }
	var props []prop
	last := make(map[string]int)
	for rest := s; rest != ""; {
		var seg string
		seg, rest, _ = strings.Cut(rest, string(PropertySeparator))
		name, value, ok := strings.Cut(seg, string(NameValueSeparator))
		if ok && name != "" && value != "" {
			last[name] = len(props)
			props = append(props, prop{name, value})
		}
	}
	var b strings.Builder
	b.Grow(len(s) + 1)
	for i, p := range props {
		if last[p.name] == i {
			writeProperty(&b, p.name, p.value)
		}
	}
	return Properties(b.String())
}

func writeProperty(b *strings.Builder, name, value string) {
	b.WriteString(name)
	b.WriteByte(NameValueSeparator)
	b.WriteString(value)
	b.WriteByte(PropertySeparator)
}

// PropertiesFromMap encodes m in name order (deterministic, for tools and
// tests); empty names and values are left out, as a reader would drop them.
func PropertiesFromMap(m map[string]string) Properties {
	names := make([]string, 0, len(m))
	size := 0
	for k, v := range m {
		if k != "" && v != "" {
			names = append(names, k)
			size += len(k) + len(v) + 2
		}
	}
	slices.Sort(names)
	var b strings.Builder
	b.Grow(size)
	for _, k := range names {
		writeProperty(&b, k, m[k])
	}
	return Properties(b.String())
}

// segment splits the first property off p: its name and value ("" when the
// segment has no 0x01) and the rest.
func (p Properties) segment() (name, value string, rest Properties) {
	seg, r, _ := strings.Cut(string(p), string(PropertySeparator))
	name, value, _ = strings.Cut(seg, string(NameValueSeparator))
	return name, value, Properties(r)
}

// Lookup returns the value of the named property and whether p has it. A
// send looks up several names, so each segment is only compared at its
// start. A name holding 0x01 is never found (a reader splits a segment at
// its first 0x01).
func (p Properties) Lookup(name string) (string, bool) {
	if name == "" || strings.IndexByte(name, NameValueSeparator) >= 0 {
		return "", false
	}
	for s := string(p); s != ""; {
		seg := s
		if end := strings.IndexByte(s, PropertySeparator); end >= 0 {
			seg, s = s[:end], s[end+1:]
		} else {
			s = ""
		}
		if len(seg) > len(name) && seg[len(name)] == NameValueSeparator && seg[:len(name)] == name {
			return seg[len(name)+1:], true
		}
	}
	return "", false
}

// Get returns the value of the named property ("" when absent).
func (p Properties) Get(name string) string {
	v, _ := p.Lookup(name)
	return v
}

// All yields the properties in order.
func (p Properties) All() iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		for p != "" {
			var k, v string
			if k, v, p = p.segment(); k != "" && v != "" && !yield(k, v) {
				return
			}
		}
	}
}

// Map returns the properties as a new map (nil when there are none), for
// the few paths that need one.
func (p Properties) Map() map[string]string {
	if p == "" {
		return nil
	}
	m := make(map[string]string, 4)
	for k, v := range p.All() {
		m[k] = v
	}
	return m
}

// With returns p with the given name, value pairs set, in one allocation:
// a property already present is removed and the new value appended; an
// empty value only removes. It panics on an odd count.
func (p Properties) With(kv ...string) Properties {
	if len(kv)%2 != 0 {
		panic("store: Properties.With: odd number of arguments")
	}
	return p.edit(kv, 2)
}

// Without returns p without the named properties.
func (p Properties) Without(names ...string) Properties { return p.edit(names, 1) }

// edit removes the properties named kv[0], kv[step], ... and, with step 2,
// appends each name with its non-empty value kv[i+1]. p is returned as is
// when nothing changes.
func (p Properties) edit(kv []string, step int) Properties {
	edited := func(name string) bool {
		for i := 0; i < len(kv); i += step {
			if kv[i] == name {
				return true
			}
		}
		return false
	}
	size, removed := len(p), false
	for rest := p; rest != ""; {
		var k string
		if k, _, rest = rest.segment(); edited(k) {
			removed = true
		}
	}
	added := false
	if step == 2 {
		for i := 0; i < len(kv); i += 2 {
			if kv[i] != "" && kv[i+1] != "" {
				size += len(kv[i]) + len(kv[i+1]) + 2
				added = true
			}
		}
	}
	if !removed && !added {
		return p
	}
	var b strings.Builder
	b.Grow(size)
	if !removed {
		b.WriteString(string(p))
	} else {
		for rest := p; rest != ""; {
			before := rest
			var k string
			if k, _, rest = rest.segment(); !edited(k) {
				b.WriteString(string(before[:len(before)-len(rest)]))
			}
		}
	}
	if added {
		for i := 0; i < len(kv); i += 2 {
			if kv[i] != "" && kv[i+1] != "" {
				writeProperty(&b, kv[i], kv[i+1])
			}
		}
	}
	return Properties(b.String())
}
