// Package remotingtest helps test code built on package remoting, as
// net/http/httptest does for net/http: an in-memory Conn that records what
// a handler sends, a one-call round trip through a Handler over the real
// codec, and a started Server/Client pair cleaned up with the test.
package remotingtest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmqd/rmqd/remoting"
)

var connSeq atomic.Uint64

// Conn is an in-memory remoting.Conn. Send passes every command through
// the real codec (so unencodable commands fail as they would on the wire)
// and records the decoded copy; Invoke calls InvokeFunc, or fails.
type Conn struct {
	Remote, Local string
	// InvokeFunc answers Invoke (server → client requests). Nil: Invoke
	// returns remoting.ErrTimeout.
	InvokeFunc func(ctx context.Context, req *remoting.RemotingCommand, timeout time.Duration) (*remoting.RemotingCommand, error)

	id     uint64
	mu     sync.Mutex
	sent   []*remoting.RemotingCommand
	closed bool
	notify chan struct{}
}

// NewConn returns a Conn with remote "127.0.0.1:40000" and local
// "127.0.0.1:10911".
func NewConn() *Conn {
	return &Conn{Remote: "127.0.0.1:40000", Local: "127.0.0.1:10911", id: connSeq.Add(1), notify: make(chan struct{}, 1)}
}

func (c *Conn) ID() uint64         { return c.id }
func (c *Conn) RemoteAddr() string { return c.Remote }
func (c *Conn) LocalAddr() string  { return c.Local }

// Send records cmd after an encode/decode round trip.
func (c *Conn) Send(cmd *remoting.RemotingCommand) error {
	decoded, err := Reencode(cmd)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return remoting.ErrConnClosed
	}
	c.sent = append(c.sent, decoded)
	select {
	case c.notify <- struct{}{}:
	default:
	}
	return nil
}

// Invoke calls InvokeFunc with a re-encoded copy of req.
func (c *Conn) Invoke(ctx context.Context, req *remoting.RemotingCommand, timeout time.Duration) (*remoting.RemotingCommand, error) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, remoting.ErrConnClosed
	}
	decoded, err := Reencode(req)
	if err != nil {
		return nil, err
	}
	if c.InvokeFunc == nil {
		return nil, remoting.ErrTimeout
	}
	return c.InvokeFunc(ctx, decoded, timeout)
}

// Close marks the connection closed; later Sends fail with ErrConnClosed.
func (c *Conn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return nil
}

// Closed reports whether Close was called.
func (c *Conn) Closed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Sent returns the commands sent so far.
func (c *Conn) Sent() []*remoting.RemotingCommand {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*remoting.RemotingCommand(nil), c.sent...)
}

// WaitSent waits until at least n commands were sent, or timeout; it
// returns what was sent and whether n was reached.
func (c *Conn) WaitSent(n int, timeout time.Duration) ([]*remoting.RemotingCommand, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if s := c.Sent(); len(s) >= n {
			return s, true
		}
		select {
		case <-c.notify:
		case <-deadline.C:
			s := c.Sent()
			return s, len(s) >= n
		}
	}
}

// Reencode returns cmd after Encode and DecodeFrame, as a peer would see it.
func Reencode(cmd *remoting.RemotingCommand) (*remoting.RemotingCommand, error) {
	wire, err := remoting.Encode(nil, cmd)
	if err != nil {
		return nil, err
	}
	return remoting.DecodeFrame(wire[4:])
}

// RoundTrip runs req through h as the server would: req is re-encoded,
// served on conn (a new Conn when nil), and a non-nil response is marked as
// req's response and re-encoded. A handler panic fails the test.
func RoundTrip(t testing.TB, h remoting.Handler, conn remoting.Conn, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	t.Helper()
	if conn == nil {
		conn = NewConn()
	}
	in, err := Reencode(req)
	if err != nil {
		t.Fatalf("remotingtest: encode request: %v", err)
	}
	resp := h.ServeRemoting(conn, in)
	if resp == nil {
		return nil
	}
	remoting.MarkResponseTo(resp, in)
	out, err := Reencode(resp)
	if err != nil {
		t.Fatalf("remotingtest: encode response: %v", err)
	}
	return out
}

// StartServer starts a server for h on 127.0.0.1:0, closed when t ends.
func StartServer(t testing.TB, h remoting.Handler) *remoting.Server {
	t.Helper()
	s, err := remoting.NewServer(remoting.ServerConfig{Addr: "127.0.0.1:0"}, h)
	if err != nil {
		t.Fatalf("remotingtest: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("remotingtest: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// NewClient returns a client closed when t ends; h (may be nil) serves
// server-initiated requests.
func NewClient(t testing.TB, h remoting.Handler) *remoting.Client {
	c := remoting.NewClient(remoting.ClientConfig{Handler: h})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Call sends req to addr with a 5 s timeout and fails the test on error.
func Call(t testing.TB, c *remoting.Client, addr string, req *remoting.RemotingCommand) *remoting.RemotingCommand {
	t.Helper()
	resp, err := c.InvokeSync(context.Background(), addr, req, 5*time.Second)
	if err != nil {
		t.Fatalf("remotingtest: call code %d: %v", req.Code, err)
	}
	return resp
}

var _ remoting.Conn = (*Conn)(nil)
