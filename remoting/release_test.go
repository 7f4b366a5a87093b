package remoting

import (
	"bytes"
	"context"
	"fmt"
	"runtime/debug"
	"testing"
	"time"
)

// A released request frame is taken again by the next request of its size
// class: reading, decoding and releasing a request then costs no
// allocation, and the reused command carries nothing of the previous one.
// Under the race detector (sync.Pool drops some Puts there) the released
// frame is poisoned instead, which makes a use after release visible.
func TestReleaseRequestRecyclesFrame(t *testing.T) {
	wire := func(code int16, fields int, body int) []byte {
		ext := Fields{}
		for i := range fields {
			ext.Set(fmt.Sprintf("k%d", i), fmt.Sprintf("value-%d", i))
		}
		return mustEncode(t, &RemotingCommand{Code: code, Opaque: int32(code), ExtFields: ext, SerializeType: RocketMQ,
			Body: bytes.Repeat([]byte{byte(code)}, body)})[4:]
	}
	read := func(w []byte) *RemotingCommand {
		cmd, frame := requestFrame(len(w))
		copy(frame, w)
		if err := decodeFrameInto(cmd, frame); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	for _, body := range []int{0, 40, 1024, 3000} {
		big, small := wire(7, 12, body), wire(8, 2, body)
		cmd := read(big)
		if cmd.frameClass == 0 || cmd.ExtFields.Len() != 12 {
			t.Fatalf("body %d: class %d, %d fields", body, cmd.frameClass, cmd.ExtFields.Len())
		}
		frame := jointBuf(cmd)
		ReleaseRequest(cmd)
		if cmd.Code != 0 || cmd.ExtFields.Len() != 0 || cmd.Body != nil {
			t.Fatalf("body %d: released command not cleared: %+v", body, cmd)
		}
		if poisonReleased {
			if frame[0] != 0xdd || frame[len(frame)-1] != 0xdd {
				t.Fatalf("body %d: released frame not poisoned", body)
			}
			continue
		}
		again := read(small)
		if again.Code != 8 || again.ExtFields.Len() != 2 || len(again.Body) != body || (body > 0 && again.Body[body-1] != 8) {
			t.Fatalf("body %d: reused command %+v", body, again)
		}
		ReleaseRequest(again)
		if n := testing.AllocsPerRun(100, func() { ReleaseRequest(read(big)) }); n != 0 {
			t.Errorf("body %d: %v allocations per request read and released, want 0", body, n)
		}
	}
	// Too large to share a frame: nothing to reuse, and release is a no-op.
	huge := wire(9, 2, maxSharedFrame)
	cmd := read(huge)
	if cmd.frameClass != 0 {
		t.Fatalf("frame of %d bytes in pool class %d", len(huge), cmd.frameClass)
	}
	ReleaseRequest(cmd)
	if cmd.Code != 9 || len(cmd.Body) != maxSharedFrame {
		t.Fatal("a request without a pooled frame was cleared")
	}
}

// A handler answering later and then releasing its request gets the
// released frames back for the connection's next requests, each decoded
// afresh.
func TestServerReusesReleasedRequests(t *testing.T) {
	const n = 50
	seen := make(map[*RemotingCommand]bool)
	mux := NewServeMux()
	mux.HandleFunc(1, func(c Conn, r *RemotingCommand) *RemotingCommand {
		if want := fmt.Sprint("v", r.Opaque); r.ExtFields.Get("k") != want || len(r.Body) != 100+int(r.Opaque) || r.Body[len(r.Body)-1] != byte(r.Opaque) {
			t.Errorf("request %d: field %q, body %d bytes", r.Opaque, r.ExtFields.Get("k"), len(r.Body))
		}
		seen[r] = true // the worker handlers run one at a time: each answer is awaited
		resp := NewResponse(r, Success, "")
		f, err := SendDeferred(c, resp)
		if err != nil || f == nil {
			t.Errorf("SendDeferred: %v, flusher %v", err, f)
		}
		ReleaseRequest(r)
		if f != nil {
			f.Flush()
		}
		return nil
	})
	s := startServer(t, ServerConfig{Workers: 1}, mux)
	r := dialRaw(t, s.Addr())
	for i := range n {
		r.send(&RemotingCommand{Code: 1, Opaque: int32(i), ExtFields: FieldsOf("k", fmt.Sprint("v", i)),
			Body: bytes.Repeat([]byte{byte(i)}, 100+i)})
		if resp := r.recv(); resp.Opaque != int32(i) || resp.Code != Success {
			t.Fatalf("response %+v", resp)
		}
	}
	t.Logf("%d distinct commands for %d requests", len(seen), n)
	if !poisonReleased && len(seen) > n/2 {
		t.Fatalf("%d distinct commands for %d requests: released frames are not reused", len(seen), n)
	}
}

// The server's cost of reading a 1 KiB SEND_MESSAGE_V2 into a command:
// "alloc" is a fresh joint allocation per request (what newFrame does),
// "pooled" takes a released frame and releases it again once served (the
// DLedger send path). GOGC 400 as the broker runs.
func BenchmarkRequestFrame1KiB(b *testing.B) {
	ext := Fields{}
	for i, k := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "m", "n"} {
		ext.Set(k, fmt.Sprintf("value-%d-of-a-send-header", i))
	}
	wire := mustEncode(b, &RemotingCommand{Code: 310, ExtFields: ext, SerializeType: RocketMQ, Body: make([]byte, 1024)})[4:]
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	for _, pooled := range []bool{false, true} {
		name := "alloc"
		if pooled {
			name = "pooled"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					var cmd *RemotingCommand
					var frame []byte
					if pooled {
						cmd, frame = requestFrame(len(wire))
					} else {
						cmd, frame = newFrame(len(wire))
					}
					copy(frame, wire)
					if err := decodeFrameInto(cmd, frame); err != nil {
						b.Fatal(err)
					}
					if pooled {
						ReleaseRequest(cmd)
					} else {
						decodeSink = cmd
					}
				}
			})
		})
	}
}

// A caller that releases the responses it got gets their frames back for
// the next responses its connection reads: a round trip then allocates
// less by the response's frame, and the reused command carries nothing of
// the previous one. Under the race detector (sync.Pool drops some Puts
// there, and poisons what it keeps) only the responses are checked: the
// server of this process takes released frames too.
func TestClientReusesReleasedResponses(t *testing.T) {
	mux := NewServeMux()
	mux.HandleInline(1, HandlerFunc(func(_ Conn, r *RemotingCommand) *RemotingCommand {
		resp := NewResponse(r, Success, "")
		resp.ExtFields.Set("k", r.ExtFields.Get("k"))
		resp.Body = r.Body
		return resp
	}))
	s := startServer(t, ServerConfig{}, mux)
	c := NewClient(ClientConfig{})
	defer c.Close()
	ctx := context.Background()
	call := func(i int) *RemotingCommand {
		req := &RemotingCommand{Code: 1, ExtFields: FieldsOf("k", fmt.Sprint("v", i)), Body: bytes.Repeat([]byte{byte(i)}, 100+i%7)}
		resp, err := c.InvokeSync(ctx, s.Addr(), req, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if resp.ExtFields.Get("k") != fmt.Sprint("v", i) || len(resp.Body) != 100+i%7 || resp.Body[0] != byte(i) {
			t.Fatalf("response %d: %v, body %d bytes", i, &resp.ExtFields, len(resp.Body))
		}
		return resp
	}
	seen := make(map[*RemotingCommand]bool)
	for i := range 50 {
		resp := call(i)
		seen[resp] = true
		if resp.frameClass == 0 {
			t.Fatalf("response %d not read into a pooled frame", i)
		}
		ReleaseResponse(resp)
	}
	ReleaseResponse(nil)
	if poisonReleased {
		return
	}
	if len(seen) > 25 {
		t.Fatalf("%d distinct commands for 50 responses: released frames are not reused", len(seen))
	}
	kept := testing.AllocsPerRun(200, func() { call(1) })
	released := testing.AllocsPerRun(200, func() { ReleaseResponse(call(1)) })
	t.Logf("allocations per round trip (client and server): %.1f kept, %.1f released", kept, released)
	if released > kept-1 {
		t.Fatalf("releasing the response saves %.1f allocations per round trip, want >= 1", kept-released)
	}
}
