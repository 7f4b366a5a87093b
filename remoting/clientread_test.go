package remoting

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Many callers share one connection while the read duty moves between
// them (their own reads, leads, the idle reader): fast answers that can
// arrive before a caller takes the duty, slow ones, timeouts, cancelled
// contexts, async calls and idle pauses. Every call must end with its own
// response or its own error, well before the generous timeout of the
// normal calls.
func TestClientReadDutyStress(t *testing.T) {
	checkGoroutines(t)
	mux := NewServeMux()
	echo := func(_ Conn, req *RemotingCommand) *RemotingCommand {
		r := NewResponse(req, Success, "")
		r.Body = req.Body
		return r
	}
	mux.HandleInline(1, HandlerFunc(echo))
	mux.HandleFunc(3, func(c Conn, req *RemotingCommand) *RemotingCommand {
		d, _ := time.ParseDuration(req.ExtFields.Get("sleep"))
		time.Sleep(d)
		return echo(c, req)
	})
	s := startServer(t, ServerConfig{}, mux)
	c := newTestClient(t, ClientConfig{})
	addr := s.Addr()
	var wg sync.WaitGroup
	var asyncLeft atomic.Int64
	asyncDone := make(chan struct{}, 1)
	for g := 0; g < 24; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			rnd := rand.New(rand.NewSource(int64(g)))
			for i := 0; i < 150; i++ {
				body := []byte(strconv.Itoa(g*1000 + i))
				req := &RemotingCommand{Code: 1, Body: body}
				if rnd.Intn(4) == 0 {
					req = &RemotingCommand{Code: 3, Body: body, ExtFields: FieldsOf("sleep", strconv.Itoa(rnd.Intn(3))+"ms")}
				}
				switch rnd.Intn(12) {
				case 0: // a timeout that may or may not fire
					resp, err := c.InvokeSync(context.Background(), addr, req, time.Duration(rnd.Intn(2000))*time.Microsecond)
					if err == nil && string(resp.Body) != string(body) || err != nil && !errors.Is(err, ErrTimeout) {
						t.Errorf("short timeout: %v %v", resp, err)
						return
					}
				case 1: // a context cancelled at a random moment
					ctx, cancel := context.WithCancel(context.Background())
					time.AfterFunc(time.Duration(rnd.Intn(1500))*time.Microsecond, cancel)
					resp, err := c.InvokeSync(ctx, addr, req, 10*time.Second)
					cancel()
					if err == nil && string(resp.Body) != string(body) || err != nil && !errors.Is(err, context.Canceled) {
						t.Errorf("cancelled: %v %v", resp, err)
						return
					}
				case 2:
					asyncLeft.Add(1)
					if err := c.InvokeAsync(context.Background(), addr, req, 10*time.Second, func(resp *RemotingCommand, err error) {
						if err != nil || string(resp.Body) != string(body) {
							t.Errorf("async: %v %v", resp, err)
						}
						if asyncLeft.Add(-1) == 0 {
							select {
							case asyncDone <- struct{}{}:
							default:
							}
						}
					}); err != nil {
						t.Error(err)
						return
					}
				case 3: // let the connection go quiet: the idle reader takes over
					time.Sleep(time.Duration(rnd.Intn(3*int(idleTick))) + idleTick)
					fallthrough
				default:
					start := time.Now()
					resp, err := c.InvokeSync(context.Background(), addr, req, 10*time.Second)
					if err != nil || string(resp.Body) != string(body) {
						t.Errorf("call %d/%d: %v %v", g, i, resp, err)
						return
					}
					if d := time.Since(start); d > 6*time.Second {
						t.Errorf("call %d/%d took %v: a response waited for a reader", g, i, d)
						return
					}
				}
			}
		}(g)
	}
	wg.Wait()
	deadline := time.After(10 * time.Second)
	for asyncLeft.Load() > 0 {
		select {
		case <-asyncDone:
		case <-deadline:
			t.Fatalf("%d async calls never completed", asyncLeft.Load())
		}
	}
}

// One caller per connection, pausing until the idle reader holds the duty
// and then calling in bursts: the answer to the first call of a burst can
// be read by the idle reader before the caller looks for the duty.
func TestClientReadDutyAfterQuiet(t *testing.T) {
	checkGoroutines(t)
	mux := NewServeMux()
	mux.HandleInline(1, HandlerFunc(func(_ Conn, req *RemotingCommand) *RemotingCommand {
		r := NewResponse(req, Success, "")
		r.Body = req.Body
		return r
	}))
	s := startServer(t, ServerConfig{}, mux)
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		c := newTestClient(t, ClientConfig{})
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for burst := 0; burst < 40; burst++ {
				time.Sleep(2*idleTick + time.Duration(g)*100*time.Microsecond)
				for i := 0; i < 20; i++ {
					body := []byte(strconv.Itoa(burst*100 + i))
					start := time.Now()
					resp, err := c.InvokeSync(context.Background(), s.Addr(), &RemotingCommand{Code: 1, Body: body}, 10*time.Second)
					if err != nil || string(resp.Body) != string(body) {
						t.Errorf("conn %d burst %d call %d: %v %v", g, burst, i, resp, err)
						return
					}
					if d := time.Since(start); d > 6*time.Second {
						t.Errorf("conn %d burst %d call %d took %v: its response was read before it took the duty", g, burst, i, d)
						return
					}
				}
			}
		}(g)
	}
	wg.Wait()
}

// A synchronous caller reading the socket itself still serves requests
// the server sends meanwhile, and a request the server sends to a quiet
// connection is read by the idle reader.
func TestClientServesServerRequests(t *testing.T) {
	checkGoroutines(t)
	conns := make(chan Conn, 1)
	mux := NewServeMux()
	mux.HandleFunc(80, func(c Conn, req *RemotingCommand) *RemotingCommand {
		// Ask the client something before answering.
		resp, err := c.Invoke(context.Background(), &RemotingCommand{Code: 81}, 2*time.Second)
		if err != nil {
			return NewResponse(req, SystemError, err.Error())
		}
		select {
		case conns <- c:
		default:
		}
		return NewResponse(req, Success, resp.Remark)
	})
	s := startServer(t, ServerConfig{}, mux)
	var served atomic.Int32
	cli := NewServeMux()
	cli.HandleFunc(81, func(_ Conn, req *RemotingCommand) *RemotingCommand {
		served.Add(1)
		return NewResponse(req, Success, "from client")
	})
	c := newTestClient(t, ClientConfig{Handler: cli})
	resp, err := c.InvokeSync(context.Background(), s.Addr(), &RemotingCommand{Code: 80}, 5*time.Second)
	if err != nil || resp.Remark != "from client" {
		t.Fatalf("nested: %+v %v", resp, err)
	}
	sc := <-conns
	time.Sleep(5 * idleTick) // quiet: nobody calls
	resp, err = sc.Invoke(context.Background(), &RemotingCommand{Code: 81}, 2*time.Second)
	if err != nil || resp.Remark != "from client" || served.Load() != 2 {
		t.Fatalf("server request on a quiet connection: %+v %v (served %d)", resp, err, served.Load())
	}
}

// A caller whose timeout ends while it is half-way through a large frame
// meant for another caller leaves the partial frame to the next holder of
// the read duty, which completes it.
func TestClientLargeFrameSurvivesReaderTimeout(t *testing.T) {
	checkGoroutines(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	reqs := make(chan *RemotingCommand, 2)
	srvDone := make(chan struct{})
	go func() {
		defer close(srvDone)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		br := bufio.NewReader(nc)
		var y *RemotingCommand
		for y == nil {
			frame, err := ReadFrame(br, 0)
			if err != nil {
				return
			}
			cmd, _ := DecodeFrame(frame)
			reqs <- cmd
			if cmd.Code == 2 {
				y = cmd
			}
		}
		resp := NewResponse(y, Success, "")
		resp.Body = bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
		wire, _ := Encode(nil, resp)
		for len(wire) > 0 { // slowly: the first caller's timeout ends mid-frame
			n := min(len(wire), 64<<10)
			if _, err := nc.Write(wire[:n]); err != nil {
				return
			}
			wire = wire[n:]
			time.Sleep(15 * time.Millisecond)
		}
		_, _ = io.Copy(io.Discard, br)
	}()
	c := newTestClient(t, ClientConfig{})
	xErr := make(chan error, 1)
	go func() {
		_, err := c.InvokeSync(context.Background(), ln.Addr().String(), &RemotingCommand{Code: 1}, 100*time.Millisecond)
		xErr <- err
	}()
	<-reqs
	// x holds the read duty once its request is out (it takes the duty
	// as soon as it has sent).
	c.mu.RLock()
	cc := c.mu.conns[ln.Addr().String()]
	c.mu.RUnlock()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		cc.rd.mu.Lock()
		held := cc.rd.state == readCaller
		cc.rd.mu.Unlock()
		if held {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first caller never took the read duty")
		}
	}
	resp, err := c.InvokeSync(context.Background(), ln.Addr().String(), &RemotingCommand{Code: 2}, 5*time.Second)
	if err != nil || len(resp.Body) != 1<<20 || !bytes.Equal(resp.Body[:32], []byte("0123456789abcdef0123456789abcdef")) || resp.Body[1<<20-1] != 'f' {
		t.Fatalf("large response: %v (%d bytes)", err, len(resp.Body))
	}
	if err := <-xErr; !errors.Is(err, ErrTimeout) {
		t.Fatalf("first caller: %v", err)
	}
	_ = c.Close()
	<-srvDone
}

// Sync callers sharing a connection (the benchmark's 64 producers, issue
// 8) are woken together: the caller holding the read duty reads a batch
// of responses and hands them out, and each of their callers sends its
// next request at once. Those requests must leave in a few writes, not
// one each. The server here answers each round of n requests in one
// write, so every round wakes all n callers together.
//
// The count depends on the scheduler, so the limit sits between the two
// cases measured on 2026-11-26 (10 rounds of 64, -race): with the yield
// medians of 11-16 writes per round on a quiet machine and 17 on a
// loaded 2-core CI machine, without it 33-64. A measurement over the
// limit is taken again, up to three times; a broken mechanism fails all.
func TestClientCoalescesRequestsWokenTogether(t *testing.T) {
	const n = 64
	medianWritesWithin(t, "requests", n, n*3/8, func() []int64 { return clientWritesPerRound(t, n) })
}

// medianWritesWithin measures writes per round of n messages and passes
// once the median round took at most limit writes (the median, so that
// rounds the machine's load spoilt do not decide). A median over the
// limit is measured again, up to three times, before the test fails: the
// coalescing tests' counts depend on the scheduler, and a broken mechanism
// fails every attempt.
func medianWritesWithin[W int | int64](t *testing.T, what string, n int, limit W, measure func() []W) {
	t.Helper()
	const attempts = 3
	for attempt := 1; ; attempt++ {
		perRound := measure()
		slices.Sort(perRound)
		med := perRound[len(perRound)/2]
		t.Logf("attempt %d: writes per round of %d %s: %v", attempt, n, what, perRound)
		if med <= limit {
			return
		}
		if attempt == attempts {
			t.Fatalf("a median round of %d %s took %d writes in each of %d attempts (last: %v)", n, what, med, attempts, perRound)
		}
	}
}

// clientWritesPerRound has n callers make rounds of calls on one
// connection to a server that answers each round in one write, and
// returns the client's writes in each round after the first.
func clientWritesPerRound(t *testing.T, n int) []int64 {
	t.Helper()
	const rounds = 11
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	c := newTestClient(t, ClientConfig{})
	addr := ln.Addr().String()
	var perRound []int64 // the client's writes per round, from the second round on
	served := make(chan error, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
		br := bufio.NewReader(nc)
		var out []byte
		var total int64
		for round := range rounds {
			out = out[:0]
			for range n {
				frame, err := ReadFrame(br, 0)
				if err != nil {
					served <- err
					return
				}
				req, err := DecodeFrame(frame)
				if err != nil {
					served <- err
					return
				}
				if out, err = Encode(out, NewResponse(req, Success, "")); err != nil {
					served <- err
					return
				}
			}
			// A write is counted just after it returned, so a count may
			// slip into the next round; the median does not mind.
			c.mu.RLock()
			w := c.mu.conns[addr].writes.Load()
			c.mu.RUnlock()
			if round > 0 { // the callers start one by one
				perRound = append(perRound, w-total)
			}
			total = w
			if _, err := nc.Write(out); err != nil {
				served <- err
				return
			}
		}
		served <- nil
	}()
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				if _, err := c.InvokeSync(context.Background(), addr, &RemotingCommand{Code: 1}, 10*time.Second); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	return perRound
}
