package store

import (
	"bytes"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// The map path the send path used before Properties (StringToProperties,
// map sets, AppendProperties' sorted walk): the reference the string path
// must agree with, and the "before" of BenchmarkSendPropertiesEncode.

func mapPathParse(s string) map[string]string {
	if s == "" {
		return nil
	}
	m := make(map[string]string, 4)
	for len(s) > 0 {
		seg := s
		if i := strings.IndexByte(s, PropertySeparator); i >= 0 {
			seg, s = s[:i], s[i+1:]
		} else {
			s = ""
		}
		k, v, ok := strings.Cut(seg, string(NameValueSeparator))
		if ok && k != "" && v != "" {
			m[k] = v
		}
	}
	return m
}

func mapPathAppend(dst []byte, props map[string]string) []byte {
	if len(props) == 0 {
		return dst
	}
	var stack [16]string
	keys := stack[:0]
	for k := range props {
		keys = append(keys, k)
	}
	if len(keys) <= len(stack) {
		for i := 1; i < len(keys); i++ {
			for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
				keys[j], keys[j-1] = keys[j-1], keys[j]
			}
		}
	} else {
		slices.Sort(keys)
	}
	for _, k := range keys {
		dst = append(dst, k...)
		dst = append(dst, NameValueSeparator)
		dst = append(dst, props[k]...)
		dst = append(dst, PropertySeparator)
	}
	return dst
}

// checkCanonical fails unless p is what Properties promise: valid
// segments, each name once, a trailing 0x02.
func checkCanonical(t *testing.T, in string, p Properties) {
	t.Helper()
	if p != "" && p[len(p)-1] != PropertySeparator {
		t.Fatalf("%q: %q does not end with 0x02", in, p)
	}
	seen := map[string]bool{}
	for _, seg := range strings.Split(strings.TrimSuffix(string(p), "\x02"), "\x02") {
		if p == "" {
			break
		}
		k, v, ok := strings.Cut(seg, "\x01")
		if !ok || k == "" || v == "" || seen[k] {
			t.Fatalf("%q: %q has segment %q", in, p, seg)
		}
		seen[k] = true
	}
}

func TestParseProperties(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"TAGS\x01a\x02KEYS\x01k1 k2\x02", "TAGS\x01a\x02KEYS\x01k1 k2\x02"}, // as received: not sorted
		{"TAGS\x01a", "TAGS\x01a\x02"},                                       // missing trailing separator
		{"a\x011\x02b\x012\x02a\x013\x02", "b\x012\x02a\x013\x02"},           // duplicate: the last wins, where it stands
		{"x\x011\x02\x01v\x02n\x01\x02y\x012", "x\x011\x02y\x012\x02"},       // no name, no value
		{"\x02\x02a\x01b\x02\x02", "a\x01b\x02"},                             // empty segments
		{"a\x01b\x01c\x02", "a\x01b\x01c\x02"},                               // value holding 0x01 (Java: first 0x01 splits)
		{"novalue\x02", ""},
		{"\x01\x02", ""},
	} {
		got := ParseProperties(c.in)
		if string(got) != c.want {
			t.Errorf("ParseProperties(%q) = %q, want %q", c.in, got, c.want)
		}
		checkCanonical(t, c.in, got)
		if m := got.Map(); !maps.Equal(m, mapPathParse(c.in)) && !(len(m) == 0 && len(mapPathParse(c.in)) == 0) {
			t.Errorf("%q: map %v, map path %v", c.in, m, mapPathParse(c.in))
		}
	}
	// Seventeen properties skip the quick duplicate check.
	var many strings.Builder
	for i := range 17 {
		many.WriteString(string(rune('a'+i)) + "\x01v\x02")
	}
	if got := ParseProperties(many.String() + "a\x01w\x02"); strings.Count(string(got), "\x02") != 17 || got.Get("a") != "w" {
		t.Errorf("17 properties and a duplicate: %q", got)
	}
	// What a producer sends is kept, not copied.
	in := "TAGS\x01a\x02UNIQ_KEY\x01C0A8\x02"
	if n := testing.AllocsPerRun(100, func() { _ = ParseProperties(in) }); n != 0 {
		t.Errorf("ParseProperties of a canonical string: %v allocations", n)
	}
}

// TestParsePropertiesAgainstMapPath: random strings over a small alphabet
// (so that names repeat and separators land anywhere) read the same as the
// map path read them.
func TestParsePropertiesAgainstMapPath(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	alphabet := []byte{'a', 'b', 'c', 1, 2}
	for range 20000 {
		b := make([]byte, r.IntN(24))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		p := ParseProperties(string(b))
		checkCanonical(t, string(b), p)
		want := mapPathParse(string(b))
		if got := p.Map(); len(got)+len(want) > 0 && !maps.Equal(got, want) {
			t.Fatalf("%q: %v, map path %v", b, got, want)
		}
		for _, name := range []string{"a", "b", "ab", "ba", "abc", "c\x01a", ""} {
			if v, ok := p.Lookup(name); v != want[name] || ok != (want[name] != "") {
				t.Fatalf("%q: Lookup(%q) = %q, %v; map path %q", b, name, v, ok, want[name])
			}
		}
		if len(want) > 0 && string(mapPathAppend(nil, want)) != string(PropertiesFromMap(want)) {
			t.Fatalf("%q: PropertiesFromMap differs from the sorted map path", b)
		}
	}
}

func TestPropertiesWith(t *testing.T) {
	p := ParseProperties("TAGS\x01a\x02CLUSTER\x01old\x02KEYS\x01k\x02")
	q := p.With(PropertyUniqClientMessageIDKey, "U1", PropertyCluster, "c1")
	if q != "TAGS\x01a\x02KEYS\x01k\x02UNIQ_KEY\x01U1\x02CLUSTER\x01c1\x02" {
		t.Fatalf("%q", q)
	}
	if p != "TAGS\x01a\x02CLUSTER\x01old\x02KEYS\x01k\x02" {
		t.Fatalf("With changed its receiver: %q", p)
	}
	if r := q.With(PropertyTags, ""); r.Get(PropertyTags) != "" || strings.Contains(string(r), "TAGS") {
		t.Fatalf("an empty value must remove: %q", r)
	}
	if r := q.Without("KEYS", "nope", PropertyCluster); r != "TAGS\x01a\x02UNIQ_KEY\x01U1\x02" {
		t.Fatalf("Without: %q", r)
	}
	if r := q.Without("nope"); r != q {
		t.Fatalf("Without of an absent name: %q", r)
	}
	if r := Properties("").With("a", "1"); r != "a\x011\x02" {
		t.Fatalf("%q", r)
	}
	var m Message
	m.SetProperty(PropertyDelayTimeLevel, "3")
	m.SetDelayTimeLevel(4)
	m.SetProperty(PropertyTags, "t")
	m.ClearProperty(PropertyDelayTimeLevel)
	if m.Properties != "TAGS\x01t\x02" || m.DelayTimeLevel() != 0 || m.Tags() != "t" {
		t.Fatalf("%q", m.Properties)
	}
	var names []string
	for k := range ParseProperties("a\x011\x02b\x012\x02c\x013\x02").All() {
		names = append(names, k)
		if k == "b" {
			break
		}
	}
	if !slices.Equal(names, []string{"a", "b"}) {
		t.Fatalf("All: %v", names)
	}
	if v, ok := q.Lookup("UNIQ"); ok || v != "" {
		t.Fatal("a name prefix must not match")
	}
	// A send's properties: the received string kept, the broker's appended
	// in one allocation (a map took two, and the sorted walk on encode).
	received := "TAGS\x01a\x02KEYS\x01k\x02WAIT\x01true\x02"
	if n := testing.AllocsPerRun(100, func() {
		_ = ParseProperties(received).With(PropertyUniqClientMessageIDKey, "U1", PropertyCluster, "c1")
	}); n != 1 {
		t.Errorf("a send's properties: %v allocations, want 1", n)
	}
}

// TestSendPropertiesRecord: a record built the way a send builds it now
// (the received string plus UNIQ_KEY and CLUSTER appended) holds the same
// properties, the same fields and the same size as the record the map path
// built; its properties bytes are the received ones followed by the
// broker's.
func TestSendPropertiesRecord(t *testing.T) {
	const uniq, cluster = "C0A800010000000000000000002A0001", "DefaultCluster"
	for _, c := range []struct{ in, want string }{
		{"TAGS\x01TagA\x02KEYS\x01k1 k2\x02WAIT\x01true\x02",
			"TAGS\x01TagA\x02KEYS\x01k1 k2\x02WAIT\x01true\x02UNIQ_KEY\x01" + uniq + "\x02CLUSTER\x01" + cluster + "\x02"},
		{"UNIQ_KEY\x01AABB\x02TAGS\x01t\x02", "UNIQ_KEY\x01AABB\x02TAGS\x01t\x02CLUSTER\x01" + cluster + "\x02"},
		{"CLUSTER\x01spoofed\x02UNIQ_KEY\x01AABB\x02", "UNIQ_KEY\x01AABB\x02CLUSTER\x01" + cluster + "\x02"},
		{"", "UNIQ_KEY\x01" + uniq + "\x02CLUSTER\x01" + cluster + "\x02"},
		{"UNIQ_KEY\x01\x02KEYS\x01a\x02KEYS\x01b", "KEYS\x01b\x02UNIQ_KEY\x01" + uniq + "\x02CLUSTER\x01" + cluster + "\x02"},
	} {
		base := Message{Topic: "TestTopic", Flag: 3, Body: []byte("hello"), QueueID: 2, BornTimestamp: 1000,
			BornHost: "127.0.0.1:5000", StoreHost: "10.0.0.1:10911"}
		// The string path, as broker.processSend does it.
		m := base
		m.Properties = ParseProperties(c.in)
		if m.UniqKey() == "" {
			m.Properties = m.Properties.With(PropertyUniqClientMessageIDKey, uniq, PropertyCluster, cluster)
		} else {
			m.Properties = m.Properties.With(PropertyCluster, cluster)
		}
		got, err := EncodeStored(nil, &m, 7, 1234, 2000)
		if err != nil {
			t.Fatal(err)
		}
		// The map path.
		props := mapPathParse(c.in)
		if props == nil {
			props = map[string]string{}
		}
		if props[PropertyUniqClientMessageIDKey] == "" {
			props[PropertyUniqClientMessageIDKey] = uniq
		}
		props[PropertyCluster] = cluster
		old := base
		old.Properties = Properties(mapPathAppend(nil, props))
		want, err := EncodeStored(nil, &old, 7, 1234, 2000)
		if err != nil {
			t.Fatal(err)
		}
		propsAt := len(want) - len(old.Properties)
		if len(got) != len(want) || !bytes.Equal(got[:propsAt], want[:propsAt]) {
			t.Fatalf("%q: record\n%x\nmap path\n%x", c.in, got, want)
		}
		if string(got[propsAt:]) != c.want {
			t.Fatalf("%q: stored properties %q, want %q", c.in, got[propsAt:], c.want)
		}
		d, err := DecodeMessage(got, true)
		if err != nil || !maps.Equal(d.Properties.Map(), props) || d.Properties != Properties(c.want) {
			t.Fatalf("%q: decoded %q %v", c.in, d.Properties, err)
		}
		var v recordView
		if err := parseRecord(got, &v, true); err != nil {
			t.Fatalf("%q: recovery check: %v", c.in, err)
		}
		var dp dispatchProps
		dp.scan(v.props)
		for i, name := range dispatchPropNames {
			if string(dp.val[i]) != props[name] || dp.has[i] != (props[name] != "") {
				t.Fatalf("%q: dispatcher reads %s=%q", c.in, name, dp.val[i])
			}
		}
	}
}

// BenchmarkSendPropertiesEncode: a send's properties (received string plus
// UNIQ_KEY and CLUSTER) built and its record encoded, the map path the
// send path used before against the string path it uses now.
func BenchmarkSendPropertiesEncode(b *testing.B) {
	const received = "TAGS\x01TagA\x02KEYS\x01OrderID188\x02UNIQ_KEY\x017F00000100002A9F0000000000000001\x02WAIT\x01true\x02"
	host, _ := parseHost("10.0.0.1:10911")
	body := make([]byte, 1024)
	base := Message{Topic: "BenchTopic", Body: body, QueueID: 3, BornTimestamp: 1000, BornHost: "127.0.0.1:5000"}
	buf := make([]byte, 0, 4096)
	b.Run("path=map", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m := base
			props := mapPathParse(received)
			if props[PropertyUniqClientMessageIDKey] == "" {
				props[PropertyUniqClientMessageIDKey] = "unused"
			}
			props[PropertyCluster] = "DefaultCluster"
			// What encodeStored did with the map: its sorted walk.
			rec, err := encodeStored(buf[:0], &m, &host, 0, 0, 0, 0)
			rec = mapPathAppend(rec, props)
			if err != nil || len(rec) == 0 {
				b.Fatal(err)
			}
		}
	})
	b.Run("path=string", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m := base
			m.Properties = ParseProperties(received)
			if m.UniqKey() == "" {
				m.Properties = m.Properties.With(PropertyUniqClientMessageIDKey, "unused", PropertyCluster, "DefaultCluster")
			} else {
				m.Properties = m.Properties.With(PropertyCluster, "DefaultCluster")
			}
			rec, err := encodeStored(buf[:0], &m, &host, 0, 0, 0, 0)
			if err != nil || len(rec) == 0 {
				b.Fatal(err)
			}
		}
	})
}
