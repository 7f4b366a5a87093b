package remoting

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

func mustEncode(t testing.TB, cmd *RemotingCommand) []byte {
	t.Helper()
	b, err := Encode(nil, cmd)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return b
}

// decodeWire decodes a whole frame including its length word.
func decodeWire(t testing.TB, wire []byte) *RemotingCommand {
	t.Helper()
	frame, err := ReadFrame(bytes.NewReader(wire), 0)
	if err != nil {
		t.Fatalf("ReadFrame: %v", err)
	}
	cmd, err := DecodeFrame(frame)
	if err != nil {
		t.Fatalf("DecodeFrame: %v", err)
	}
	return cmd
}

func TestRoundTrip(t *testing.T) {
	cmds := []*RemotingCommand{
		{Code: 10, Language: "GO", Version: 317, Opaque: 42, Flag: 0, ExtFields: FieldsOf("topic", "T", "queueId", "3", "esc\"aped", "a\\b\n\t\x01é"), Body: []byte("hello")},
		{Code: -1, Language: "JAVA", Version: 479, Opaque: -7, Flag: FlagResponse, Remark: "some \"remark\"\r\n", Body: nil},
		{Code: 32767, Language: "RUST", Version: -32768, Opaque: 2147483647, Flag: FlagOneway},
		{Code: -32768, Language: "JAVA", Version: 1, Opaque: -2147483648, Flag: -1, ExtFields: FieldsOf("", "")},
	}
	for _, st := range []SerializeType{JSON, RocketMQ} {
		for i, c := range cmds {
			c := *c
			c.SerializeType = st
			got := decodeWire(t, mustEncode(t, &c))
			if c.ExtFields.Len() == 0 && got.ExtFields.Len() == 0 {
				got.ExtFields = c.ExtFields
			}
			if len(c.Body) == 0 && len(got.Body) == 0 {
				got.Body = c.Body
			}
			if !reflect.DeepEqual(got, &c) {
				t.Errorf("type %d cmd %d:\n got %+v\nwant %+v", st, i, got, &c)
			}
		}
	}
}

func TestEncodeDefaults(t *testing.T) {
	b := mustEncode(t, &RemotingCommand{Code: 34, Opaque: 5})
	hdr := b[8:]
	want := `{"code":34,"language":"JAVA","version":409,"opaque":5,"flag":0,"extFields":{}}`
	if string(hdr) != want {
		t.Fatalf("header %s\nwant   %s", hdr, want)
	}
	// Keys in the order they were set, remark present.
	b = mustEncode(t, &RemotingCommand{Code: 0, Flag: 1, Remark: "ok", ExtFields: FieldsOf("b", "2", "a", "1", "c", "3")})
	want = `{"code":0,"language":"JAVA","version":409,"opaque":0,"flag":1,"remark":"ok","extFields":{"b":"2","a":"1","c":"3"}}`
	if string(b[8:]) != want {
		t.Fatalf("header %s\nwant   %s", b[8:], want)
	}
}

// TestJSONHeaderGoClientRules checks our JSON header against what the Go
// client's decoder (encoding/json into its struct) requires: code an int16
// number, extFields a string→string object, and the field names it uses.
func TestJSONHeaderGoClientRules(t *testing.T) {
	type goCmd struct { // rocketmq-client-go internal/remote.RemotingCommand's JSON shape
		Code      int16             `json:"code"`
		Language  string            `json:"language"`
		Version   int16             `json:"version"`
		Opaque    int32             `json:"opaque"`
		Flag      int32             `json:"flag"`
		Remark    string            `json:"remark"`
		ExtFields map[string]string `json:"extFields"`
	}
	in := &RemotingCommand{Code: 17, Opaque: 99, Flag: 1, Remark: "x\"y", ExtFields: FieldsOf("k", "v\u2028", "n", "12")}
	b := mustEncode(t, in)
	var g goCmd
	if err := json.Unmarshal(b[8:], &g); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	if g.Code != 17 || g.Language != "JAVA" || g.Version != DefaultVersion || g.Opaque != 99 || g.Flag != 1 || g.Remark != in.Remark || !reflect.DeepEqual(g.ExtFields, in.ExtFields.Map()) {
		t.Fatalf("got %+v", g)
	}
	var raw map[string]any
	_ = json.Unmarshal(b[8:], &raw)
	if _, ok := raw["code"].(float64); !ok {
		t.Fatalf("code is not a number: %T", raw["code"])
	}
}

// The Go heartbeat shape of protocol.md §1.4, and the Java response shape.
func TestDecodeJSONExamples(t *testing.T) {
	goPull := `{"code":11,"language":"GO","version":317,"opaque":10,"flag":0,"remark":"","extFields":{"consumerGroup":"cg","topic":"TestTopic","queueId":"0","queueOffset":"0","maxMsgNums":"32","sysFlag":"2","commitOffset":"-1","suspendTimeoutMillis":"20000","subscription":"","subVersion":"0","expressionType":"TAG","bname":"broker-a"}}`
	javaResp := `{"code":0,"extFields":{"MSG_REGION":"DefaultRegion","TRACE_ON":"true","msgId":"7F00000100002A9F0000000000000000","queueId":"1","queueOffset":"0","transactionId":"C0A8000100002A9F6D3E0BF4A1B20001"},"flag":1,"language":"JAVA","opaque":2,"serializeTypeCurrentRPC":"JSON","version":479}`
	heartbeat := `{"code":34,"language":"GO","version":317,"opaque":1,"flag":0,"remark":"","extFields":{}}`
	for _, tc := range []struct {
		hdr  string
		want RemotingCommand
	}{
		{goPull, RemotingCommand{Code: 11, Language: "GO", Version: 317, Opaque: 10, ExtFields: FieldsOf("consumerGroup", "cg", "topic", "TestTopic", "queueId", "0", "queueOffset", "0", "maxMsgNums", "32", "sysFlag", "2", "commitOffset", "-1", "suspendTimeoutMillis", "20000", "subscription", "", "subVersion", "0", "expressionType", "TAG", "bname", "broker-a")}},
		{javaResp, RemotingCommand{Code: 0, Language: "JAVA", Version: 479, Opaque: 2, Flag: 1, ExtFields: FieldsOf("MSG_REGION", "DefaultRegion", "TRACE_ON", "true", "msgId", "7F00000100002A9F0000000000000000", "queueId", "1", "queueOffset", "0", "transactionId", "C0A8000100002A9F6D3E0BF4A1B20001")}},
		{heartbeat, RemotingCommand{Code: 34, Language: "GO", Version: 317, Opaque: 1}},
	} {
		frame := append([]byte{0, 0, byte(len(tc.hdr) >> 8), byte(len(tc.hdr))}, tc.hdr...)
		frame = append(frame, "{}"...)
		got, err := DecodeFrame(frame)
		if err != nil {
			t.Fatalf("%s: %v", tc.hdr, err)
		}
		if got.ExtFields.Len() == 0 {
			got.ExtFields.Reset()
		}
		tc.want.Body = []byte("{}")
		if !reflect.DeepEqual(got, &tc.want) {
			t.Errorf("got  %+v\nwant %+v", got, &tc.want)
		}
	}
}

func TestDecodeJSONHeaderRules(t *testing.T) {
	ok := []string{
		`{}`,
		` { "code" : 1 , "remark" : null , "extFields" : null } `,
		`{"code":-32768,"opaque":-2147483648,"flag":2147483647}`,
		`{"extFields":{"a":null,"b":"x"}}`,
		`{"unknown":{"deep":[1,2.5e-3,true,false,null,"s",{"x":[]}]},"code":3}`,
		`{"language":"PYTHONISH","code":5}`,
		`{"remark":"\u00e9\ud83d\ude00\"\\\/\b\f\n\r\t"}`,
		`{"Code":7}`,
	}
	for _, h := range ok {
		var c RemotingCommand
		if err := decodeJSONHeader(&c, []byte(h)); err != nil {
			t.Errorf("%s: unexpected error %v", h, err)
		}
	}
	var c RemotingCommand
	_ = decodeJSONHeader(&c, []byte(`{"remark":"\u00e9\ud83d\ude00\"\\\/\b\f\n\r\t","Code":7}`))
	if c.Remark != "é😀\"\\/\b\f\n\r\t" || c.Code != 7 {
		t.Errorf("unescape: %q code %d", c.Remark, c.Code)
	}
	bad := []string{
		``, `[]`, `null`, `{`, `{"code":"0"}`, `{"code":32768}`, `{"code":-32769}`, `{"code":1.0}`, `{"code":1e2}`,
		`{"opaque":2147483648}`, `{"extFields":{"a":1}}`, `{"extFields":{"a":true}}`, `{"extFields":{"a":{}}}`,
		`{"extFields":[]}`, `{"remark":5}`, `{"code":1}x`, `{"code":01}`, `{"a":"\x01"}`, `{"a":"\q"}`,
		`{"code":1,}`, `{"a":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, `{"language":1}`,
		`{"a":"\u12"}`, `{"code":-}`, `{"x":1.}`, `{"x":tru}`,
	}
	for _, h := range bad {
		var c RemotingCommand
		err := decodeJSONHeader(&c, []byte(h))
		if err == nil {
			t.Errorf("%s: expected error", h)
		} else if !errors.Is(err, ErrMalformedFrame) {
			t.Errorf("%s: error %v does not wrap ErrMalformedFrame", h, err)
		}
	}
}

// protocol.md §1.5 golden bytes (written by the Go encoder, language GO=9).
const goldenBinaryHeader = "0000" + "09" + "01df" + "00000007" + "00000001" + "0000000268 69" + "00000008" + "00016b0000000176"

func TestBinaryGolden(t *testing.T) {
	hdr, err := hex.DecodeString(strings.ReplaceAll(goldenBinaryHeader, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	want := &RemotingCommand{Code: 0, Language: "GO", Version: 479, Opaque: 7, Flag: 1, Remark: "hi", ExtFields: FieldsOf("k", "v"), SerializeType: RocketMQ}
	frame := append([]byte{1, 0, 0, byte(len(hdr))}, hdr...)
	got, err := DecodeFrame(frame)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	// Our encoder writes the language of the command (GO here → 9), so the
	// whole frame matches byte for byte.
	wire := mustEncode(t, want)
	wantWire := append([]byte{0, 0, 0, byte(4 + len(hdr))}, frame...)
	if !bytes.Equal(wire, wantWire) {
		t.Fatalf("encode:\n got %x\nwant %x", wire, wantWire)
	}
	// Default language JAVA → byte 0.
	want.Language = ""
	wire = mustEncode(t, want)
	if wire[8+2] != 0 {
		t.Fatalf("language byte %d, want 0 (JAVA)", wire[10])
	}
}

func TestDecodeBinaryErrors(t *testing.T) {
	hdr, _ := hex.DecodeString(strings.ReplaceAll(goldenBinaryHeader, " ", ""))
	for n := 0; n < len(hdr); n++ {
		var c RemotingCommand
		if err := decodeBinaryHeader(&c, hdr[:n]); err == nil {
			t.Errorf("truncated to %d: expected error", n)
		}
	}
	bad := append([]byte(nil), hdr...)
	bad[13] = 0x7f // remark length huge
	var c RemotingCommand
	if err := decodeBinaryHeader(&c, bad); !errors.Is(err, ErrMalformedFrame) {
		t.Errorf("huge remark: %v", err)
	}
	bad = append([]byte(nil), hdr...)
	bad[len(bad)-9] = 0x80 // negative key length
	if err := decodeBinaryHeader(&c, bad); !errors.Is(err, ErrMalformedFrame) {
		t.Errorf("negative key length: %v", err)
	}
}

func TestDecodeFrameErrors(t *testing.T) {
	for _, f := range [][]byte{nil, {0, 0, 0}, {0, 0, 0, 9, '{', '}'}, {2, 0, 0, 2, '{', '}'}, {0xff, 0, 0, 0}} {
		if _, err := DecodeFrame(f); err == nil {
			t.Errorf("%x: expected error", f)
		}
	}
	if _, err := ReadFrame(bytes.NewReader([]byte{0x7f, 0xff, 0xff, 0xff}), 0); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("huge frame: %v", err)
	}
	if _, err := ReadFrame(bytes.NewReader([]byte{0, 0, 0, 3}), 0); !errors.Is(err, ErrMalformedFrame) {
		t.Errorf("short frame: %v", err)
	}
	if _, err := ReadFrame(bytes.NewReader([]byte{0, 0, 0, 8, 0}), 0); err == nil {
		t.Errorf("truncated frame: no error")
	}
}

func TestDecodeAllocs(t *testing.T) {
	for _, st := range []SerializeType{JSON, RocketMQ} {
		wire := mustEncode(t, &RemotingCommand{Code: 10, Opaque: 1, ExtFields: FieldsOf("topic", "T", "queueId", "1", "a", "b"), Body: make([]byte, 100), SerializeType: st})
		frame := wire[4:]
		allocs := testing.AllocsPerRun(100, func() {
			cmd, err := DecodeFrame(frame)
			if err != nil {
				t.Fatal(err)
			}
			decodeSink = cmd // escapes, as a served command does
		})
		// The command only: the ext fields live in it.
		if allocs != 1 {
			t.Errorf("type %d: %.0f allocs per decode", st, allocs)
		}
	}
}

// readCommand (the client's read path) decodes what ReadFrame+DecodeFrame
// do, across the frame sizes that share an allocation with their command
// and beyond, with one allocation per small frame.
func TestReadCommand(t *testing.T) {
	for _, bodyLen := range []int{0, 60, 200, 500, 1500, 3900, 5000} {
		for _, st := range []SerializeType{JSON, RocketMQ} {
			want := &RemotingCommand{Code: 10, Opaque: 1, ExtFields: FieldsOf("topic", "T"), Body: bytes.Repeat([]byte{7}, bodyLen), SerializeType: st}
			wire := mustEncode(t, want)
			br := bufio.NewReader(bytes.NewReader(append(append([]byte(nil), wire...), wire...)))
			got, err := readCommand(br, 0)
			if err != nil {
				t.Fatal(err)
			}
			frame, err := ReadFrame(br, 0)
			if err != nil {
				t.Fatal(err)
			}
			again, err := DecodeFrame(frame)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, again) || got.ExtFields.Get("topic") != "T" || len(got.Body) != bodyLen || cap(got.Body) != len(got.Body) {
				t.Fatalf("body %d type %d:\n%+v\n%+v", bodyLen, st, got, again)
			}
			if _, err := readCommand(br, 0); err != io.EOF {
				t.Fatalf("at the end: %v", err)
			}
		}
	}
	for _, tc := range []struct {
		in   []byte
		want error
	}{{[]byte{0, 0}, io.ErrUnexpectedEOF}, {[]byte{0, 0, 0, 8, 0}, io.ErrUnexpectedEOF}, {[]byte{0x7f, 0, 0, 0}, ErrFrameTooLarge}, {[]byte{0, 0, 0, 2}, ErrMalformedFrame}} {
		if _, err := readCommand(bufio.NewReader(bytes.NewReader(tc.in)), 0); !errors.Is(err, tc.want) {
			t.Errorf("%x: %v, want %v", tc.in, err, tc.want)
		}
	}
	for _, ext := range []map[string]string{nil, {"topic": "T", "queueId": "1"}} {
		wire := mustEncode(t, &RemotingCommand{Code: 10, ExtFields: FieldsFrom(ext), Body: make([]byte, 128), SerializeType: RocketMQ})
		var r bytes.Reader
		br := bufio.NewReader(&r)
		allocs := testing.AllocsPerRun(100, func() {
			r.Reset(wire)
			br.Reset(&r)
			cmd, err := readCommand(br, 0)
			if err != nil {
				t.Fatal(err)
			}
			decodeSink = cmd
		})
		// Frame and command together, the ext fields inside the command.
		if allocs != 1 {
			t.Errorf("%d ext fields: %.0f allocs per frame, want 1", len(ext), allocs)
		}
	}
}

// Each command-and-frame type of newFrame fills a malloc size class.
func TestNewFrameSizeClasses(t *testing.T) {
	if s := unsafe.Sizeof(RemotingCommand{}); s != 376 && unsafe.Sizeof(uintptr(0)) == 8 {
		t.Fatalf("RemotingCommand is %d bytes: retune newFrame's buffers", s)
	}
	for _, n := range []int{1, 72, 73, 136, 256, 384, 512, 640, 896, 1152, 1664, 2304, 2688, 3712, 3713} {
		cmd, frame := newFrame(n)
		if len(frame) != n || cap(frame) != n || cmd == nil {
			t.Fatalf("newFrame(%d): len %d cap %d", n, len(frame), cap(frame))
		}
	}
}

// skipSafe finds what a byte-by-byte scan finds, wherever the byte sits
// in its eight-byte word.
func TestSkipSafe(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	special := []byte{'"', '\\', 0, 0x1f, 0x20, 0x21, 0x5b, 0x5d, 0x7f, 0x80, 0xff, 'a'}
	for range 20000 {
		b := make([]byte, rnd.IntN(40))
		for i := range b {
			if rnd.IntN(4) == 0 {
				b[i] = special[rnd.IntN(len(special))]
			} else {
				b[i] = byte(rnd.IntN(256))
			}
		}
		from := rnd.IntN(len(b) + 1)
		want := from
		for want < len(b) && jsonSafe[b[want]] {
			want++
		}
		if got := skipSafe(b, from); got != want {
			t.Fatalf("skipSafe(%q, %d) = %d, want %d", b, from, got, want)
		}
	}
}
