package remoting

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func fuzzSeeds(f *testing.F) {
	golden, _ := hex.DecodeString(strings.ReplaceAll(goldenBinaryHeader, " ", ""))
	f.Add(append(append([]byte{0, 0, 0, byte(4 + len(golden)), 1, 0, 0, byte(len(golden))}, golden...), "body"...))
	for _, st := range []SerializeType{JSON, RocketMQ} {
		b, _ := Encode(nil, &RemotingCommand{Code: 10, Opaque: 3, Flag: 2, Remark: "r\"", ExtFields: FieldsOf("topic", "T", "q", "1"), Body: []byte("xyz"), SerializeType: st})
		f.Add(b)
	}
	h := `{"code":0,"extFields":{"msgId":"7F","queueId":"1"},"flag":1,"language":"JAVA","opaque":2,"serializeTypeCurrentRPC":"JSON","version":479,"x":[1,{"y":null}],"remark":"\u00e9\ud83d\ude00"}`
	f.Add(append([]byte{0, 0, byte((4 + len(h)) >> 8), byte(4 + len(h)), 0, 0, byte(len(h) >> 8), byte(len(h))}, h...))
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
}

// normalize makes a decoded command comparable with its re-decoded copy.
func normalize(c *RemotingCommand) {
	if c.Language == "" {
		c.Language = DefaultLanguage
	}
	if c.Version == 0 {
		c.Version = DefaultVersion
	}
	if c.ExtFields.Len() == 0 {
		c.ExtFields.Reset()
	}
	if len(c.ExtFields.more) == 0 {
		// The decoder grows Fields by the header's length before it
		// reads the fields; when duplicate keys replace each other the
		// slice stays empty but not nil, which re-decoding the shorter
		// re-encoding does not reproduce. Same fields either way.
		c.ExtFields.more = nil
	}
	if len(c.Body) == 0 {
		c.Body = nil
	}
}

// settleFields puts c's fields in one representation for DeepEqual: a
// header's fields beyond the inline ones are read in place or decoded (one
// with repeated keys is decoded and merged; its re-encoding has none).
func settleFields(c *RemotingCommand) { c.ExtFields.spill() }

// FuzzFrame feeds arbitrary bytes to ReadFrame + DecodeFrame: no panic, no
// allocation beyond the declared maximum, and whatever decodes re-encodes
// to the same command.
func FuzzFrame(f *testing.F) {
	fuzzSeeds(f)
	const max = 64 << 10
	f.Fuzz(func(t *testing.T, data []byte) {
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		frame, err := ReadFrame(bytes.NewReader(data), max)
		runtime.ReadMemStats(&ms1)
		if grown := ms1.TotalAlloc - ms0.TotalAlloc; grown > max+uint64(len(data))+64<<10 {
			t.Fatalf("ReadFrame allocated %d bytes for %d input bytes", grown, len(data))
		}
		if err != nil {
			if len(data) >= 4 {
				declared := uint32(data[0])<<24 | uint32(data[1])<<16 | uint32(data[2])<<8 | uint32(data[3])
				if declared > max && !errors.Is(err, ErrFrameTooLarge) {
					t.Fatalf("declared %d: %v", declared, err)
				}
			}
			frame = data // decode the raw bytes anyway
		}
		code, peeked := peekRequestCode(frame)
		cmd, err := DecodeFrame(append([]byte(nil), frame...))
		if err != nil {
			return
		}
		// The cheap peek agrees with the decoder (JSON may repeat "code";
		// the server decides on the decoded code anyway).
		if peeked && cmd.SerializeType == RocketMQ && (code != cmd.Code || cmd.IsResponse()) {
			t.Fatalf("peek %d, decoded %+v", code, cmd)
		}
		normalize(cmd)
		wire, err := Encode(nil, cmd)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		again, err := DecodeFrame(wire[4:])
		if err != nil {
			t.Fatalf("re-decode: %v\n%q", err, wire)
		}
		normalize(again)
		settleFields(cmd)
		settleFields(again)
		if !reflect.DeepEqual(cmd, again) {
			t.Fatalf("round trip:\n%+v\n%+v", cmd, again)
		}
	})
}

// FuzzJSONHeader checks the hand parser against encoding/json (what the Go
// client uses): whatever we accept, encoding/json accepts with the same
// values; nothing panics.
func FuzzJSONHeader(f *testing.F) {
	for _, s := range []string{
		`{"code":11,"language":"GO","version":317,"opaque":10,"flag":0,"remark":"","extFields":{"topic":"T","queueId":"0"}}`,
		`{"code":0,"extFields":{"a":null},"flag":1,"language":"JAVA","opaque":2,"serializeTypeCurrentRPC":"JSON","version":479}`,
		`{"remark":"\u00e9\ud83d\ude00\"\\\/\b\f\n\r\t","CODE":-3,"x":[1.5e3,true,false,null,{}]}`,
		`{"code":"1"}`, `{"extFields":{"a":1}}`, `{"code":1e2}`, `{}`, ` `, `{"opaque":2147483648}`,
	} {
		f.Add([]byte(s))
	}
	type goCmd struct {
		Code      int16             `json:"code"`
		Language  string            `json:"language"`
		Version   int16             `json:"version"`
		Opaque    int32             `json:"opaque"`
		Flag      int32             `json:"flag"`
		Remark    string            `json:"remark"`
		ExtFields map[string]string `json:"extFields"`
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var c RemotingCommand
		err := decodeJSONHeader(&c, append([]byte(nil), data...))
		if err != nil {
			if !errors.Is(err, ErrMalformedFrame) {
				t.Fatalf("error does not wrap ErrMalformedFrame: %v", err)
			}
			return
		}
		var g goCmd
		if gerr := json.Unmarshal(data, &g); gerr != nil {
			t.Fatalf("we accept what encoding/json rejects (%v): %q", gerr, data)
		}
		if !utf8.Valid(data) || bytes.ContainsAny(data, "\u017f\u212a") {
			return // encoding/json rewrites invalid UTF-8; Unicode case folding of keys
		}
		if c.Code != g.Code || c.Version != g.Version || c.Opaque != g.Opaque || c.Flag != g.Flag || c.Remark != g.Remark || c.Language != g.Language {
			t.Fatalf("differs from encoding/json:\n%+v\n%+v", c, g)
		}
		if len(g.ExtFields) > 0 && !reflect.DeepEqual(c.ExtFields.Map(), g.ExtFields) {
			t.Fatalf("ext differs from encoding/json:\n%v\n%v", c.ExtFields, g.ExtFields)
		}
	})
}

// FuzzBinaryHeader: the ROCKETMQ header decoder never panics and what it
// accepts re-encodes to the same command.
func FuzzBinaryHeader(f *testing.F) {
	golden, _ := hex.DecodeString(strings.ReplaceAll(goldenBinaryHeader, " ", ""))
	f.Add(golden)
	f.Add(make([]byte, 21))
	f.Add([]byte{0, 1, 0, 1, 0xdf, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0x80, 0, 0, 0, 0, 0, 0, 0, 0})
	// More fields than the inline ones (read in place), and with a key
	// repeated among them (decoded and merged).
	for _, keys := range []string{"abcdefghijklmn", "abcdefghijkcmn"} {
		var c RemotingCommand
		for i, k := range keys {
			c.ExtFields.add(string(k), strconv.Itoa(i))
		}
		c.SerializeType = RocketMQ
		if wire, err := Encode(nil, &c); err == nil {
			f.Add(wire[8:])
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var c RemotingCommand
		if err := decodeBinaryHeader(&c, append([]byte(nil), data...)); err != nil {
			if !errors.Is(err, ErrMalformedFrame) {
				t.Fatalf("error does not wrap ErrMalformedFrame: %v", err)
			}
			return
		}
		if c.ExtFields.Len() > len(data)/6 {
			t.Fatalf("%d ext fields from %d bytes", c.ExtFields.Len(), len(data))
		}
		c.SerializeType = RocketMQ
		normalize(&c)
		wire, err := Encode(nil, &c)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeFrame(wire[4:])
		if err != nil {
			t.Fatal(err)
		}
		normalize(again)
		settleFields(&c)
		settleFields(again)
		if !reflect.DeepEqual(&c, again) {
			t.Fatalf("round trip:\n%+v\n%+v", &c, again)
		}
	})
}
