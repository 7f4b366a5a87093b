package remoting

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"unsafe"

	"github.com/panjf2000/gnet/v2"
)

func TestFields(t *testing.T) {
	var f Fields
	if f.Len() != 0 || f.Get("a") != "" {
		t.Fatal("zero Fields not empty")
	}
	for i := range 20 { // past the inline ones
		f.Set("k"+strconv.Itoa(i), strconv.Itoa(i))
	}
	f.Set("k3", "three")   // inline: in place
	f.Set("k12", "twelve") // beyond: in place
	if f.Len() != 20 || f.Get("k3") != "three" || f.Get("k12") != "twelve" || f.Get("k19") != "19" {
		t.Fatalf("after Set: %v", &f)
	}
	if _, ok := f.Lookup("nope"); ok {
		t.Fatal("Lookup found an absent key")
	}
	c := f.Clone()
	f.Del("k0")
	f.Del("k10")
	f.Del("nope")
	var keys []string
	for k := range f.All() {
		keys = append(keys, k)
	}
	want := []string{"k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9", "k11", "k12", "k13", "k14", "k15", "k16", "k17", "k18", "k19"}
	if !slices.Equal(keys, want) || f.Len() != 18 {
		t.Fatalf("after Del: %v", keys)
	}
	if c.Len() != 20 || c.Get("k0") != "0" || c.Get("k10") != "10" || c.Get("k19") != "19" {
		t.Fatalf("Clone changed by the original's Del: %v", &c)
	}
	if f.Equal(&c) || !c.Equal(&c) {
		t.Fatal("Equal")
	}
	g := FieldsFrom(c.Map())
	if !g.Equal(&c) {
		t.Fatalf("FieldsFrom(Map()) = %v", &g)
	}
	f.Reset()
	if f.Len() != 0 || f.Get("k1") != "" || f.inline[0] != (Field{}) {
		t.Fatalf("after Reset: %v", &f)
	}
	if s := FieldsOf("a", "1", "b", "2"); s.String() != "map[a:1 b:2]" {
		t.Fatalf("String: %s", s.String())
	}
}

// Duplicate keys in a header: the last value wins, as in a Java HashMap
// (both codecs) and encoding/json — also in a crafted header of many keys,
// which must not take quadratic time.
func TestDecodeDuplicateKeys(t *testing.T) {
	for _, n := range []int{3, 9, 40} { // inline, beyond, the map path
		var pairs []Field
		for i := range n {
			pairs = append(pairs, Field{"k" + strconv.Itoa(i), "first"})
		}
		pairs = append(pairs, Field{"k0", "last"}, Field{"k" + strconv.Itoa(n-1), "last"}, Field{"k0", "really"})
		// JSON, written by hand (Encode never writes a key twice).
		var js bytes.Buffer
		js.WriteString(`{"code":1,"extFields":{`)
		for i, p := range pairs {
			if i > 0 {
				js.WriteByte(',')
			}
			fmt.Fprintf(&js, "%q:%q", p.Key, p.Value)
		}
		js.WriteString(`}}`)
		jf := binary.BigEndian.AppendUint32(nil, uint32(js.Len()))
		jf = append(jf, js.Bytes()...)
		// Binary: encode distinct keys, then append the repeats.
		var bin RemotingCommand
		bin.SerializeType = RocketMQ
		for _, p := range pairs {
			bin.ExtFields.add(p.Key, p.Value)
		}
		bw, err := Encode(nil, &bin)
		if err != nil {
			t.Fatal(err)
		}
		for name, frame := range map[string][]byte{"json": jf, "binary": bw[4:]} {
			cmd, err := DecodeFrame(frame)
			if err != nil {
				t.Fatalf("%s %d: %v", name, n, err)
			}
			f := &cmd.ExtFields
			if f.Len() != n || f.Get("k0") != "really" || f.Get("k"+strconv.Itoa(n-1)) != "last" || f.Get("k1") != "first" {
				t.Fatalf("%s %d: %v", name, n, f)
			}
			if f.at(0).Key != "k0" || f.at(n-1).Key != "k"+strconv.Itoa(n-1) {
				t.Fatalf("%s %d: order %v", name, n, f)
			}
		}
	}
}

// A header's strings alias a small frame (one allocation with its command)
// but never a large one: a handler keeping a topic name must not pin a
// large body.
func TestDecodedStringsDoNotPinLargeFrames(t *testing.T) {
	for _, st := range []SerializeType{JSON, RocketMQ} {
		for _, bodyLen := range []int{100, maxSharedFrame, 64 << 10} {
			wire := mustEncode(t, &RemotingCommand{Code: 10, Remark: "r", ExtFields: FieldsOf("topic", "TopicA", "queueId", "1"), Body: make([]byte, bodyLen), SerializeType: st})
			cmd, frame := newFrame(len(wire) - 4)
			copy(frame, wire[4:])
			if err := decodeFrameInto(cmd, frame); err != nil {
				t.Fatal(err)
			}
			in := func(s string) bool {
				p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
				base := uintptr(unsafe.Pointer(&frame[0]))
				return p >= base && p < base+uintptr(len(frame))
			}
			aliased := len(frame) <= maxSharedFrame
			if in(cmd.ExtFields.Get("topic")) != aliased || in(cmd.Remark) != aliased {
				t.Errorf("type %d frame %d: strings alias the frame: %v, want %v", st, len(frame), !aliased, aliased)
			}
			if cmd.ExtFields.Get("topic") != "TopicA" || len(cmd.Body) != bodyLen {
				t.Fatalf("type %d frame %d: %v", st, len(frame), cmd)
			}
		}
	}
}

// Decoding a small frame with up to eight ext fields costs exactly its
// one allocation (frame and command together), on the server's read path
// (OnTraffic cuts the frame, a worker decodes it) and on the client's
// (readOne).
func TestReadPathAllocs(t *testing.T) {
	for _, st := range []SerializeType{JSON, RocketMQ} {
		for n := 0; n <= inlineFields+6; n++ {
			if n > inlineFields && st == JSON {
				continue // JSON headers beyond the inline fields allocate them
			}
			req := &RemotingCommand{Code: 10, Opaque: 1, Body: make([]byte, 100), SerializeType: st}
			for i := range n {
				req.ExtFields.Set("key"+strconv.Itoa(i), "value"+strconv.Itoa(i))
			}
			wire := mustEncode(t, req)

			s := &Server{cfg: ServerConfig{MaxFrameSize: DefaultMaxFrameSize}, tasks: make(chan task, 1)}
			h := &engineHandler{s: s}
			gc := &fakeGnetConn{ctx: &serverConn{s: s}}
			server := testing.AllocsPerRun(200, func() {
				gc.in = wire
				h.OnTraffic(gc)
				tk := <-s.tasks
				if err := decodeFrameInto(tk.cmd, tk.frame); err != nil || tk.cmd.ExtFields.Len() != n {
					t.Fatal(err)
				}
			})

			var r bytes.Reader
			cc := &clientConn{c: &Client{cfg: ClientConfig{MaxFrameSize: DefaultMaxFrameSize}}}
			cc.rd.br = bufio.NewReaderSize(&r, readBufSize)
			client := testing.AllocsPerRun(200, func() {
				r.Reset(wire)
				cc.rd.br.Reset(&r)
				cmd, err := cc.readOne()
				if err != nil || cmd.ExtFields.Len() != n {
					t.Fatal(err)
				}
				decodeSink = cmd
			})
			// A binary header's fields beyond the inline ones (a
			// SEND_MESSAGE_V2 request has 13-14) are read in place.
			if server != 1 || client != 1 {
				t.Errorf("type %d, %d ext fields: %.1f allocs on the server, %.1f on the client, want 1", st, n, server, client)
			}
		}
	}
}

// fakeGnetConn is the part of a gnet.Conn that OnTraffic uses.
type fakeGnetConn struct {
	gnet.Conn
	in  []byte
	ctx any
}

func (c *fakeGnetConn) InboundBuffered() int { return len(c.in) }
func (c *fakeGnetConn) Context() any         { return c.ctx }
func (c *fakeGnetConn) Peek(n int) ([]byte, error) {
	if n > len(c.in) {
		return nil, fmt.Errorf("short")
	}
	return c.in[:n], nil
}
func (c *fakeGnetConn) Discard(n int) (int, error) {
	c.in = c.in[n:]
	return n, nil
}

// Each command-and-frame type of newFrame fills its malloc size class:
// what the heap accounts per allocation is exactly the type's size.
func TestNewFrameFillsSizeClasses(t *testing.T) {
	for _, n := range frameClasses {
		var m0, m1 runtime.MemStats
		const rounds = 1000
		runtime.GC()
		runtime.ReadMemStats(&m0)
		for range rounds {
			decodeSink, _ = newFrame(n)
		}
		runtime.ReadMemStats(&m1)
		per := (m1.TotalAlloc - m0.TotalAlloc) / rounds
		want := uint64(unsafe.Sizeof(RemotingCommand{})) + uint64(n)
		if want > 512 {
			want += 8 // the malloc header of a large object with pointers
		}
		if per < want || per >= want+16 { // a little slack for the runtime's own allocations

			t.Errorf("newFrame(%d): %d bytes per allocation, want %d", n, per, want)
		}
	}
}

// frameClasses are the buffer sizes of newFrame's types.
var frameClasses = []int{72, 136, 256, 384, 512, 640, 896, 1152, 1664, 2304, 2688, 3712}

// TestFieldsReadInPlace: a binary header's fields beyond the inline ones
// are read where they arrived; every reader sees them as decoded fields,
// the first change decodes them, and a copy changes without touching the
// original.
func TestFieldsReadInPlace(t *testing.T) {
	var in RemotingCommand
	in.SerializeType = RocketMQ
	for i := range 14 {
		in.ExtFields.Set(string(rune('a'+i)), "v"+strconv.Itoa(i))
	}
	wire := mustEncode(t, &in)
	cmd, err := DecodeFrame(wire[4:])
	if err != nil {
		t.Fatal(err)
	}
	f := &cmd.ExtFields
	if f.raw == "" || len(f.more) != 0 {
		t.Fatalf("fields beyond the inline ones decoded: raw %q, more %v", f.raw, f.more)
	}
	var keys []string
	for k, v := range f.All() {
		keys = append(keys, k+"="+v)
	}
	if f.Len() != 14 || len(keys) != 14 || keys[8] != "i=v8" || keys[13] != "n=v13" || f.Get("l") != "v11" || f.Get("a") != "v0" {
		t.Fatalf("read in place: %v", keys)
	}
	if _, ok := f.Lookup("z"); ok || !f.Equal(&in.ExtFields) || !in.ExtFields.Equal(f) || f.String() != in.ExtFields.String() {
		t.Fatalf("Lookup/Equal/String: %v", f)
	}
	if m := f.Map(); len(m) != 14 || m["n"] != "v13" {
		t.Fatalf("Map: %v", m)
	}
	// Re-encoded, the raw fields are copied as they are: the same frame.
	if again := mustEncode(t, cmd); !bytes.Equal(again, wire) {
		t.Fatalf("re-encoded decoded frame differs:\n got %x\nwant %x", again, wire)
	}
	for _, st := range []SerializeType{RocketMQ, JSON} {
		cmd.SerializeType = st
		again, err := DecodeFrame(mustEncode(t, cmd)[4:])
		if err != nil || !again.ExtFields.Equal(f) || again.ExtFields.Len() != 14 {
			t.Fatalf("re-encoded as %d: %v %v", st, &again.ExtFields, err)
		}
	}
	c := *f // an assignment shares the raw fields: they never change
	c.Set("m", "changed")
	c.Del("j")
	c.Set("z", "new")
	if c.raw != "" || c.Len() != 14 || c.Get("m") != "changed" || c.Get("j") != "" || c.Get("z") != "new" || c.Get("n") != "v13" {
		t.Fatalf("copy after changes: %v", &c)
	}
	if f.raw == "" || f.Get("m") != "v12" || f.Get("j") != "v9" || f.Len() != 14 {
		t.Fatalf("original after the copy's changes: %v", f)
	}
	f.Set("b", "inline") // a change of an inline field decodes the rest too
	if f.raw != "" || len(f.more) != 6 || f.Get("n") != "v13" || f.Get("b") != "inline" {
		t.Fatalf("after Set: %v", f)
	}
	g := cmd.ExtFields
	g.Reset()
	if g.Len() != 0 || g.Get("n") != "" {
		t.Fatalf("after Reset: %v", &g)
	}
}
