package remotingtest

import (
	"context"
	"testing"
	"time"

	"github.com/rmqd/rmqd/remoting"
)

func TestHelpers(t *testing.T) {
	mux := remoting.NewServeMux()
	mux.HandleFunc(1, func(c remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
		r := remoting.NewResponse(req, remoting.Success, "ok")
		r.ExtFields = remoting.FieldsOf("echo", req.ExtFields.Get("x"))
		return r
	})
	mux.HandleFunc(2, func(c remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
		go func() {
			resp, err := c.Invoke(context.Background(), &remoting.RemotingCommand{Code: 9}, time.Second)
			if err == nil {
				_ = c.Send(remoting.NewResponse(req, remoting.Success, resp.Remark))
			}
		}()
		return nil
	})
	resp := RoundTrip(t, mux, nil, &remoting.RemotingCommand{Code: 1, Opaque: 5, ExtFields: remoting.FieldsOf("x", "y")})
	if resp.Opaque != 5 || !resp.IsResponse() || resp.ExtFields.Get("echo") != "y" {
		t.Fatalf("RoundTrip: %+v", resp)
	}
	if resp := RoundTrip(t, mux, nil, &remoting.RemotingCommand{Code: 3}); resp.Code != remoting.RequestCodeNotSupported {
		t.Fatalf("unknown: %+v", resp)
	}
	conn := NewConn()
	conn.InvokeFunc = func(_ context.Context, req *remoting.RemotingCommand, _ time.Duration) (*remoting.RemotingCommand, error) {
		return remoting.NewResponse(req, remoting.Success, "state"), nil
	}
	if resp := RoundTrip(t, mux, conn, &remoting.RemotingCommand{Code: 2, Opaque: 8}); resp != nil {
		t.Fatalf("long poll answered at once: %+v", resp)
	}
	sent, ok := conn.WaitSent(1, 5*time.Second)
	if !ok || sent[0].Remark != "state" || sent[0].Opaque != 8 {
		t.Fatalf("late send: %+v", sent)
	}
	_ = conn.Close()
	if err := conn.Send(&remoting.RemotingCommand{}); err != remoting.ErrConnClosed || !conn.Closed() {
		t.Fatalf("send after close: %v", err)
	}

	s := StartServer(t, mux)
	c := NewClient(t, nil)
	if resp := Call(t, c, s.Addr(), &remoting.RemotingCommand{Code: 1, ExtFields: remoting.FieldsOf("x", "z")}); resp.ExtFields.Get("echo") != "z" {
		t.Fatalf("Call: %+v", resp)
	}
}
