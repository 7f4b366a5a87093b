package remoting

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rawServer accepts one connection and hands every frame it reads, in
// order, to frames; whatever the test writes to the returned connection
// goes to the client. Closing stop ends it.
func rawServer(t *testing.T) (addr string, conns <-chan net.Conn, frames <-chan *RemotingCommand) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	cc := make(chan net.Conn, 1)
	fc := make(chan *RemotingCommand, 100000)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		cc <- nc
		br := bufio.NewReader(nc)
		for {
			frame, err := ReadFrame(br, 0)
			if err != nil {
				close(fc)
				return
			}
			cmd, err := DecodeFrame(frame)
			if err != nil {
				t.Error(err)
				close(fc)
				return
			}
			fc <- cmd
		}
	}()
	t.Cleanup(func() {
		select {
		case nc := <-cc:
			nc.Close()
		default:
		}
	})
	return ln.Addr().String(), cc, fc
}

// writeResponses answers every request in reqs Success on nc, in one write.
func writeResponses(t *testing.T, nc net.Conn, reqs []*RemotingCommand) {
	t.Helper()
	var out []byte
	for _, req := range reqs {
		var err error
		if out, err = Encode(out, NewResponse(req, Success, "")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := nc.Write(out); err != nil {
		t.Fatal(err)
	}
}

// asyncTally counts the callbacks of n asynchronous calls.
type asyncTally struct {
	runs  []atomic.Int32 // callbacks per call
	errs  []atomic.Value // the last error of each call (an errBox)
	start []time.Time    // when each call was made
	took  []atomic.Int64 // nanoseconds from start to the callback
	done  chan int       // a call's index, at each callback
}

type errBox struct{ err error }

func newAsyncTally(n int) *asyncTally {
	return &asyncTally{runs: make([]atomic.Int32, n), errs: make([]atomic.Value, n), start: make([]time.Time, n), took: make([]atomic.Int64, n), done: make(chan int, 4*n)}
}

func (a *asyncTally) cb(i int) func(*RemotingCommand, error) {
	return func(_ *RemotingCommand, err error) {
		a.took[i].Store(int64(time.Since(a.start[i])))
		a.errs[i].Store(errBox{err})
		a.runs[i].Add(1)
		a.done <- i
	}
}

// wait waits until every call's callback ran, failing t after limit.
func (a *asyncTally) wait(t *testing.T, limit time.Duration) {
	t.Helper()
	deadline := time.After(limit)
	for left := len(a.runs); left > 0; left-- {
		select {
		case <-a.done:
		case <-deadline:
			n := 0
			for i := range a.runs {
				if a.runs[i].Load() == 0 {
					n++
				}
			}
			t.Fatalf("%d of %d callbacks did not run within %v", n, len(a.runs), limit)
		}
	}
}

// once fails t unless every callback ran exactly once.
func (a *asyncTally) once(t *testing.T) {
	t.Helper()
	for i := range a.runs {
		if n := a.runs[i].Load(); n != 1 {
			t.Fatalf("call %d: callback ran %d times", i, n)
		}
	}
}

func (a *asyncTally) err(i int) error {
	if b, ok := a.errs[i].Load().(errBox); ok {
		return b.err
	}
	return errors.New("no callback")
}

// Asynchronous calls have no timer of their own: the watcher's scan must
// time out every one of them, not before its timeout, exactly once —
// responses arriving afterwards are dropped, and the connection goes on.
func TestInvokeAsyncTimeoutsFireOnce(t *testing.T) {
	checkGoroutines(t)
	const n = 300
	addr, conns, frames := rawServer(t)
	c := NewClient(ClientConfig{})
	defer c.Close()
	ctx := context.Background()
	a := newAsyncTally(n)
	timeouts := []time.Duration{20 * time.Millisecond, 60 * time.Millisecond, 150 * time.Millisecond}
	for i := range n {
		a.start[i] = time.Now()
		if err := c.InvokeAsync(ctx, addr, &RemotingCommand{Code: 1}, timeouts[i%3], a.cb(i)); err != nil {
			t.Fatal(err)
		}
	}
	reqs := make([]*RemotingCommand, 0, n)
	for range n {
		reqs = append(reqs, <-frames)
	}
	a.wait(t, 10*time.Second)
	for i := range n {
		if err := a.err(i); !errors.Is(err, ErrTimeout) {
			t.Fatalf("call %d: %v, want ErrTimeout", i, err)
		}
		if took := time.Duration(a.took[i].Load()); took < timeouts[i%3] {
			t.Fatalf("call %d timed out after %v, before its timeout %v", i, took, timeouts[i%3])
		}
	}
	// Late responses: nobody waits for them any more.
	nc := <-conns
	writeResponses(t, nc, reqs)
	// The connection still serves: this call's response follows the late
	// ones, so they have all been read when it completes.
	got := make(chan error, 1)
	if err := c.InvokeAsync(ctx, addr, &RemotingCommand{Code: 1}, 10*time.Second, func(_ *RemotingCommand, err error) { got <- err }); err != nil {
		t.Fatal(err)
	}
	req := <-frames
	if out, err := Encode(nil, NewResponse(req, Success, "")); err != nil {
		t.Fatal(err)
	} else if _, err := nc.Write(out); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * idleTick) // a scan that would time a call out twice
	a.once(t)
	if len(a.done) != 0 {
		t.Fatalf("%d callbacks ran again", len(a.done))
	}
}

// A connection that breaks — closed by the client or by the server —
// fails every pending asynchronous call once with ErrConnClosed, whether
// it has a timeout or not; the timeout scan never finds a failed call.
func TestInvokeAsyncConnFailureFailsPendingOnce(t *testing.T) {
	for _, by := range []string{"client", "server"} {
		t.Run("closedBy="+by, func(t *testing.T) {
			checkGoroutines(t)
			const n = 300
			addr, conns, frames := rawServer(t)
			c := NewClient(ClientConfig{})
			defer c.Close()
			ctx := context.Background()
			a := newAsyncTally(n)
			for i := range n {
				timeout := time.Duration(0) // never
				if i%2 == 1 {
					timeout = 300 * time.Millisecond
				}
				if err := c.InvokeAsync(ctx, addr, &RemotingCommand{Code: 1}, timeout, a.cb(i)); err != nil {
					t.Fatal(err)
				}
			}
			for range n {
				<-frames
			}
			if by == "client" {
				c.CloseConn(addr)
			} else {
				(<-conns).Close()
			}
			a.wait(t, 10*time.Second)
			for i := range n {
				// A call with a timeout may time out first on a machine
				// stalled for 300 ms; one without must see the close.
				if err := a.err(i); !errors.Is(err, ErrConnClosed) && (i%2 == 0 || !errors.Is(err, ErrTimeout)) {
					t.Fatalf("call %d: %v, want ErrConnClosed", i, err)
				}
			}
			time.Sleep(300*time.Millisecond + 3*idleTick) // past every timeout
			a.once(t)
		})
	}
}

// One goroutine's asynchronous calls, oneway requests and synchronous
// calls leave in the order it made them, although asynchronous frames are
// written behind by the writer goroutine; each callback gets its own
// response once.
func TestInvokeAsyncKeepsOrder(t *testing.T) {
	checkGoroutines(t)
	const n = 3000
	addr, conns, frames := rawServer(t)
	c := NewClient(ClientConfig{})
	defer c.Close()
	ctx := context.Background()
	var nc net.Conn
	var wmu sync.Mutex
	answer := func(req *RemotingCommand) {
		resp := NewResponse(req, Success, "")
		resp.ExtFields = FieldsOf("seq", req.ExtFields.Get("seq"))
		out, err := Encode(nil, resp)
		if err != nil {
			t.Error(err)
			return
		}
		wmu.Lock()
		defer wmu.Unlock()
		if _, err := nc.Write(out); err != nil {
			t.Error(err)
		}
	}
	// The server answers in order as it reads, and checks the order.
	served := make(chan error, 1)
	go func() {
		for i := range n {
			req, ok := <-frames
			if !ok {
				served <- errors.New("connection closed early")
				return
			}
			if nc == nil {
				nc = <-conns
			}
			if got := req.ExtFields.Get("seq"); got != strconv.Itoa(i) {
				served <- errors.New("frame " + strconv.Itoa(i) + " carries seq " + got)
				return
			}
			if !req.IsOneway() {
				answer(req)
			}
		}
		served <- nil
	}()
	a := newAsyncTally(n)
	oneway := 0
	for i := range n {
		req := &RemotingCommand{Code: 1, ExtFields: FieldsOf("seq", strconv.Itoa(i))}
		cb := a.cb(i)
		switch {
		case i%97 == 0:
			resp, err := c.InvokeSync(ctx, addr, req, 10*time.Second)
			if err != nil || resp.ExtFields.Get("seq") != strconv.Itoa(i) {
				t.Fatalf("sync call %d: %v %v", i, resp, err)
			}
			cb(resp, nil)
		case i%13 == 0:
			if err := c.InvokeOneway(ctx, addr, req); err != nil {
				t.Fatal(err)
			}
			oneway++
			cb(nil, nil)
		default:
			err := c.InvokeAsync(ctx, addr, req, 10*time.Second, func(resp *RemotingCommand, err error) {
				if err == nil && resp.ExtFields.Get("seq") != strconv.Itoa(i) {
					err = errors.New("response of call " + resp.ExtFields.Get("seq"))
				}
				cb(resp, err)
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	a.wait(t, 10*time.Second)
	a.once(t)
	for i := range n {
		if err := a.err(i); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
}

// Synchronous callers that wait while another reads the socket have no
// timer either: the watcher's scan must time each one out, not before its
// timeout, and late responses must not disturb the next calls. An
// asynchronous call left unanswered keeps the idle reader reading (with
// no deadline), so no caller ever holds the read duty and its socket
// deadline cannot time it out instead.
func TestInvokeSyncTimeoutsWhileOthersRead(t *testing.T) {
	checkGoroutines(t)
	const n = 64
	addr, conns, frames := rawServer(t)
	c := NewClient(ClientConfig{})
	defer c.Close()
	ctx := context.Background()
	if err := c.InvokeAsync(ctx, addr, &RemotingCommand{Code: 1}, 0, func(*RemotingCommand, error) {}); err != nil {
		t.Fatal(err)
	}
	<-frames
	c.mu.RLock()
	cc := c.mu.conns[addr]
	c.mu.RUnlock()
	for i := 0; ; i++ {
		cc.rd.mu.Lock()
		idle := cc.rd.state == readIdle
		cc.rd.mu.Unlock()
		if idle {
			break
		}
		if i == 500 {
			t.Fatal("the idle reader did not take the read duty")
		}
		time.Sleep(10 * time.Millisecond)
	}
	timeouts := []time.Duration{20 * time.Millisecond, 60 * time.Millisecond}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			_, err := c.InvokeSync(ctx, addr, &RemotingCommand{Code: 1}, timeouts[i%2])
			if took := time.Since(start); !errors.Is(err, ErrTimeout) || took < timeouts[i%2] || took > 5*time.Second {
				errs <- errors.New("call " + strconv.Itoa(i) + ": " + took.String() + ", " + errString(err))
			}
		}()
	}
	reqs := make([]*RemotingCommand, 0, n)
	for range n {
		reqs = append(reqs, <-frames)
	}
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Fatal("synchronous calls not timed out within 10 s")
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Late responses, then a call that must get its own.
	nc := <-conns
	writeResponses(t, nc, reqs)
	go func() {
		if req, ok := <-frames; ok {
			resp := NewResponse(req, Success, "mine")
			if b, err := Encode(nil, resp); err == nil {
				_, _ = nc.Write(b)
			}
		}
	}()
	resp, err := c.InvokeSync(ctx, addr, &RemotingCommand{Code: 1}, 5*time.Second)
	if err != nil || resp.Remark != "mine" {
		t.Fatalf("after the timeouts: %+v %v", resp, err)
	}
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}
