package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
)

// goldenRecord builds a stored record by hand from protocol.md §5.2,
// independently of the encoder.
func goldenRecord() []byte {
	var b bytes.Buffer
	w := func(v any) { binary.Write(&b, binary.BigEndian, v) }
	body := []byte("hello")
	topic := "TestTopic"
	props := "TAGS\x01TagA\x02"
	total := 91 + len(body) + len(topic) + len(props)
	w(int32(total))
	w(uint32(0xDAA320A7))
	w(int32(crc32.ChecksumIEEE(body) & 0x7FFFFFFF))
	w(int32(3))    // queue id
	w(int32(0x10)) // flag
	w(int64(7))    // queue offset
	w(int64(1234)) // physical offset
	w(int32(0))    // sysflag
	w(int64(1000)) // born ts
	b.Write([]byte{127, 0, 0, 1})
	w(int32(5000))
	w(int64(2000)) // store ts
	b.Write([]byte{10, 0, 0, 1})
	w(int32(10911))
	w(int32(1)) // reconsume times
	w(int64(0)) // prepared tx offset
	w(int32(len(body)))
	b.Write(body)
	b.WriteByte(byte(len(topic)))
	b.WriteString(topic)
	w(int16(len(props)))
	b.WriteString(props)
	return b.Bytes()
}

func TestEncodeStoredGolden(t *testing.T) {
	m := &Message{Topic: "TestTopic", Flag: 0x10, Body: []byte("hello"), QueueID: 3, BornTimestamp: 1000,
		BornHost: "127.0.0.1:5000", StoreHost: "10.0.0.1:10911", ReconsumeTimes: 1,
		Properties: PropertiesFromMap(map[string]string{PropertyTags: "TagA"})}
	got, err := EncodeStored([]byte("prefix"), m, 7, 1234, 2000)
	if err != nil {
		t.Fatal(err)
	}
	want := goldenRecord()
	if !bytes.Equal(got[6:], want) || string(got[:6]) != "prefix" {
		t.Fatalf("encoded\n%x\nwant\n%x", got[6:], want)
	}
	d, err := DecodeMessage(want, true)
	if err != nil {
		t.Fatal(err)
	}
	if d.Topic != "TestTopic" || string(d.Body) != "hello" || d.QueueID != 3 || d.Flag != 0x10 || d.QueueOffset != 7 ||
		d.CommitLogOffset != 1234 || d.StoreTimestamp != 2000 || d.BornHost != "127.0.0.1:5000" ||
		d.StoreHost != "10.0.0.1:10911" || d.ReconsumeTimes != 1 || d.Tags() != "TagA" || d.StoreSize != int32(len(want)) {
		t.Fatalf("decoded %+v", d)
	}
	if d.MsgID != "0A00000100002A9F00000000000004D2" {
		t.Fatalf("msgid %s", d.MsgID)
	}
	var v recordView
	if err := parseRecord(want, &v, true); err != nil {
		t.Fatal(err)
	}
	// Flip a body byte: the CRC check catches it.
	bad := append([]byte(nil), want...)
	bad[88] ^= 1
	if err := parseRecord(bad, &v, true); !errors.Is(err, ErrMalformed) {
		t.Fatalf("crc flip: %v", err)
	}
}

func TestEncodeIPv6(t *testing.T) {
	m := &Message{Topic: "T", Body: []byte("x"), BornHost: "[::1]:1", StoreHost: "[fe80::2]:10911"}
	rec, err := EncodeStored(nil, m, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec) != 91+1+1+24 {
		t.Fatalf("size %d", len(rec))
	}
	d, err := DecodeMessage(rec, true)
	if err != nil {
		t.Fatal(err)
	}
	if d.SysFlag&(BornHostV6Flag|StoreHostAddressV6Flag) != BornHostV6Flag|StoreHostAddressV6Flag || d.BornHost != "[::1]:1" || len(d.MsgID) != 56 {
		t.Fatalf("%+v", d)
	}
	host, off, err := DecodeMessageID(d.MsgID)
	if err != nil || host != "[fe80::2]:10911" || off != 0 {
		t.Fatalf("%s %d %v", host, off, err)
	}
}

func TestMessageIDRoundTrip(t *testing.T) {
	id, err := CreateMessageID("127.0.0.1:10911", 0)
	if err != nil || id != "7F00000100002A9F0000000000000000" {
		t.Fatalf("%s %v", id, err)
	}
	for _, off := range []int64{0, 1, 1 << 30, 1<<62 + 12345} {
		id, _ := CreateMessageID("192.168.0.7:10911", off)
		host, got, err := DecodeMessageID(id)
		if err != nil || host != "192.168.0.7:10911" || got != off {
			t.Fatalf("%s: %s %d %v", id, host, got, err)
		}
	}
	for _, bad := range []string{"", "XYZ", "7F00000100002A9F000000000000000G"} {
		if _, _, err := DecodeMessageID(bad); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
}

func TestTagsHashCode(t *testing.T) {
	for _, c := range []struct {
		s    string
		want int64
	}{
		{"", 0},
		{"hello", 99162322},
		{"TagA", 2598919},
		{"a longer tag value to overflow", int64(javaHashNaive("a longer tag value to overflow"))},
		{"中文", int64(javaHashNaive("中文"))},
		{"😀", int64(javaHashNaive("😀"))},
	} {
		if got := TagsHashCode(c.s); got != c.want {
			t.Errorf("%q: %d want %d", c.s, got, c.want)
		}
	}
}

// javaHashNaive hashes UTF-16 code units the slow way.
func javaHashNaive(s string) int32 {
	var h int32
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			h = 31*h + (0xD800 + (r >> 10))
			h = 31*h + (0xDC00 + (r & 0x3FF))
			continue
		}
		h = 31*h + r
	}
	return h
}

func TestPropertiesCodec(t *testing.T) {
	p := PropertiesFromMap(map[string]string{"b": "2", "a": "1", PropertyKeys: "k1 k2", "empty": ""})
	if p != "KEYS\x01k1 k2\x02a\x011\x02b\x012\x02" {
		t.Fatalf("%q", p)
	}
	back := p.Map()
	if len(back) != 3 || back["a"] != "1" || back[PropertyKeys] != "k1 k2" || p.Get("b") != "2" {
		t.Fatalf("%v", back)
	}
	if v, ok := lookupProperty([]byte(p), "b"); !ok || string(v) != "2" {
		t.Fatal("lookup")
	}
	if Properties("").Map() != nil {
		t.Fatal("empty properties give a map")
	}
}

func TestBatchCodec(t *testing.T) {
	msgs := []Message{{Flag: 1, Body: []byte("one"), Properties: PropertiesFromMap(map[string]string{"K": "v"})}, {Body: []byte("two")}}
	body := EncodeBatch(nil, msgs)
	got, err := DecodeBatch(body)
	if err != nil || len(got) != 2 || string(got[0].Body) != "one" || got[0].Flag != 1 || got[0].Property("K") != "v" || string(got[1].Body) != "two" {
		t.Fatalf("%+v %v", got, err)
	}
	for _, bad := range [][]byte{nil, body[:len(body)-1], append(append([]byte{}, body...), 1, 2, 3)} {
		if _, err := DecodeBatch(bad); !errors.Is(err, ErrMalformed) {
			t.Fatalf("bad batch accepted: %v", err)
		}
	}
	corrupt := append([]byte{}, body...)
	binary.BigEndian.PutUint32(corrupt[16:], 1<<30)
	if _, err := DecodeBatch(corrupt); !errors.Is(err, ErrMalformed) {
		t.Fatal("huge body length accepted")
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	rec := goldenRecord()
	for i := 0; i < len(rec); i++ {
		if _, err := DecodeMessage(rec[:i], true); err == nil {
			t.Fatalf("prefix %d decoded", i)
		}
	}
	bad := append([]byte{}, rec...)
	bad[len(rec)-len("TAGS\x01TagA\x02")-2-len("TestTopic")-1] = 200 // topic length
	if _, err := DecodeMessage(bad, true); err == nil {
		t.Fatal("bad topic length decoded")
	}
}

func FuzzDecodeMessage(f *testing.F) {
	f.Add(goldenRecord())
	f.Fuzz(func(t *testing.T, b []byte) {
		DecodeMessage(b, true)
		DecodeBatch(b)
	})
}

func TestUniqIDGenerator(t *testing.T) {
	g, err := NewUniqIDGenerator("192.168.0.2")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := g.Next()
		if len(id) != 32 || id[:8] != "C0A80002" || seen[id] {
			t.Fatalf("id %q", id)
		}
		seen[id] = true
	}
	if _, err := NewUniqIDGenerator("nope"); err == nil {
		t.Fatal("bad ip accepted")
	}
}

// The dispatcher's one-pass scan finds what lookupProperty finds for each
// name it needs, first occurrence included.
func TestDispatchPropsMatchLookup(t *testing.T) {
	names := dispatchPropNames
	if names != [...]string{PropertyTags, PropertyDelayTimeLevel, PropertyUniqClientMessageIDKey, PropertyKeys} || dpKeys != len(names)-1 {
		t.Fatalf("names %q", names)
	}
	for _, s := range []string{
		"",
		"WAIT\x01true\x02UNIQ_KEY\x01C0A8\x02CLUSTER\x01DefaultCluster\x02",
		"TAGS\x01a\x02KEYS\x01k1 k2\x02DELAY\x013\x02UNIQ_KEY\x01u\x02",
		"TAGS\x01first\x02TAGS\x01second\x02KEYS\x01\x02",
		"\x01v\x02TAGS\x02KEYS\x01x y\x02UNIQ_KEY\x01tail-without-separator",
		"TAGSX\x01no\x02XTAGS\x01no\x02DELAY\x01\x02",
		"TAGS\x01a\x01b\x02",
	} {
		var p dispatchProps
		p.scan([]byte(s))
		for i, n := range names {
			want, ok := lookupProperty([]byte(s), n)
			if ok != p.has[i] || string(want) != string(p.val[i]) {
				t.Errorf("%q %s: scan %q/%v, lookup %q/%v", s, n, p.val[i], p.has[i], want, ok)
			}
		}
	}
}
