package remoting

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchCmd is a typical SEND_MESSAGE-sized request: 10 ext fields and a
// 128-byte body.
func benchCmd(st SerializeType) *RemotingCommand {
	return &RemotingCommand{
		Code: 10, Language: "GO", Version: 317, Opaque: 123456,
		ExtFields: FieldsOf(
			"producerGroup", "PG",
			"topic", "TestTopic",
			"defaultTopic", "TBW102",
			"defaultTopicQueueNums", "4",
			"queueId", "3",
			"sysFlag", "0",
			"bornTimestamp", "1700000000000",
			"flag", "0",
			"properties", "UNIQ_KEY\x017F000001\x02WAIT\x01true\x02",
			"reconsumeTimes", "0",
		),
		Body:          make([]byte, 128),
		SerializeType: st,
	}
}

func BenchmarkEncode(b *testing.B) {
	for _, tc := range []struct {
		name string
		cmd  *RemotingCommand
	}{
		{"JSON-10ext", benchCmd(JSON)}, {"RocketMQ-10ext", benchCmd(RocketMQ)},
		{"JSON-2ext", smallCmd(JSON)}, {"RocketMQ-2ext", smallCmd(RocketMQ)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cmd := tc.cmd
			buf := make([]byte, 0, 1024)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				var err error
				if buf, err = Encode(buf[:0], cmd); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(len(buf)))
		})
	}
}

// smallCmd is a PULL-response-sized command: 2 ext fields, 128-byte body.
func smallCmd(st SerializeType) *RemotingCommand {
	return &RemotingCommand{Code: 0, Opaque: 7, Flag: FlagResponse, ExtFields: FieldsOf("nextBeginOffset", "100", "minOffset", "0"), Body: make([]byte, 128), SerializeType: st}
}

func BenchmarkDecode(b *testing.B) {
	for _, tc := range []struct {
		name string
		cmd  *RemotingCommand
	}{
		{"JSON-10ext", benchCmd(JSON)}, {"RocketMQ-10ext", benchCmd(RocketMQ)},
		{"JSON-2ext", smallCmd(JSON)}, {"RocketMQ-2ext", smallCmd(RocketMQ)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			wire, err := Encode(nil, tc.cmd)
			if err != nil {
				b.Fatal(err)
			}
			frame := wire[4:]
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				cmd, err := DecodeFrame(frame)
				if err != nil {
					b.Fatal(err)
				}
				decodeSink = cmd // escapes, as a served command does
			}
		})
	}
}

var decodeSink *RemotingCommand

// BenchmarkDecodeRead is the client's read path: one frame read from a
// stream (body copy included) and decoded.
func BenchmarkDecodeRead(b *testing.B) {
	for _, tc := range []struct {
		name string
		cmd  *RemotingCommand
	}{
		{"JSON-10ext", benchCmd(JSON)}, {"RocketMQ-10ext", benchCmd(RocketMQ)},
		{"JSON-2ext", smallCmd(JSON)}, {"RocketMQ-2ext", smallCmd(RocketMQ)},
		{"RocketMQ-0ext", &RemotingCommand{Code: 11, Body: make([]byte, 128), SerializeType: RocketMQ}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			wire, err := Encode(nil, tc.cmd)
			if err != nil {
				b.Fatal(err)
			}
			var r bytes.Reader
			br := bufio.NewReader(&r)
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				r.Reset(wire)
				br.Reset(&r)
				cmd, err := readCommand(br, 0)
				if err != nil {
					b.Fatal(err)
				}
				decodeSink = cmd
			}
		})
	}
}

const echoConns = 16

var benchLoops = func() int { n, _ := strconv.Atoi(os.Getenv("RMQD_BENCH_LOOPS")); return n }()

// runConcurrent runs b.N calls of op spread over echoConns goroutines;
// op(g) is called by goroutine g.
func runConcurrent(b *testing.B, op func(g int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for g := 0; g < echoConns; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := op(g); err != nil {
					b.Error(err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	b.StopTimer()
}

var echoReq = &RemotingCommand{Code: 1, ExtFields: FieldsOf("topic", "TestTopic", "queueId", "1"), Body: make([]byte, 128)}

// echoSetup starts an echo server and echoConns callers; op(g) performs one
// round trip on caller g. stop releases everything.
type echoSetup struct {
	op   func(g int) error
	stop func()
}

// remotingEcho: our gnet server with an echo handler, echoConns Clients
// (one connection each) doing InvokeSync.
func remotingEcho(b *testing.B) echoSetup {
	mux := NewServeMux()
	mux.HandleInline(1, HandlerFunc(func(_ Conn, r *RemotingCommand) *RemotingCommand {
		resp := NewResponse(r, Success, "")
		resp.ExtFields = r.ExtFields
		resp.Body = r.Body
		return resp
	}))
	s, err := NewServer(ServerConfig{EventLoops: benchLoops}, mux)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	clients := make([]*Client, echoConns)
	for i := range clients {
		clients[i] = NewClient(ClientConfig{})
	}
	ctx := context.Background()
	addr := s.Addr()
	return echoSetup{
		op: func(g int) error {
			_, err := clients[g].InvokeSync(ctx, addr, echoReq, 5*time.Second)
			return err
		},
		stop: func() {
			for _, c := range clients {
				c.Close()
			}
			s.Close()
		},
	}
}

// bareEcho: net.Listen, a goroutine per connection reading a length-
// prefixed frame and writing it back; callers write a frame and read one.
func bareEcho(b *testing.B) echoSetup {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer nc.Close()
				br := bufio.NewReader(nc)
				var buf []byte
				for {
					var l [4]byte
					if _, err := io.ReadFull(br, l[:]); err != nil {
						return
					}
					n := int(binary.BigEndian.Uint32(l[:]))
					if cap(buf) < 4+n {
						buf = make([]byte, 4+n)
					}
					buf = buf[:4+n]
					copy(buf, l[:])
					if _, err := io.ReadFull(br, buf[4:]); err != nil {
						return
					}
					if _, err := nc.Write(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	wire, err := Encode(nil, echoReq)
	if err != nil {
		b.Fatal(err)
	}
	conns := make([]net.Conn, echoConns)
	readers := make([]*bufio.Reader, echoConns)
	for i := range conns {
		if conns[i], err = net.Dial("tcp", ln.Addr().String()); err != nil {
			b.Fatal(err)
		}
		readers[i] = bufio.NewReader(conns[i])
	}
	return echoSetup{
		op: func(g int) error {
			if _, err := conns[g].Write(wire); err != nil {
				return err
			}
			_, err := ReadFrame(readers[g], 0)
			return err
		},
		stop: func() {
			ln.Close()
			for _, c := range conns {
				c.Close()
			}
			wg.Wait()
		},
	}
}

// BenchmarkEcho measures each echo separately (ns per round trip with 16
// concurrent callers).
func BenchmarkEcho(b *testing.B) {
	for _, tc := range []struct {
		name  string
		setup func(*testing.B) echoSetup
	}{{"remoting", remotingEcho}, {"bareTCP", bareEcho}} {
		b.Run(tc.name, func(b *testing.B) {
			e := tc.setup(b)
			defer e.stop()
			b.ReportAllocs()
			runConcurrent(b, e.op)
		})
	}
}

// BenchmarkEchoRatio runs both echoes side by side, alternating 100 ms
// windows so that background load hits both alike, and reports their round
// trips per second and remoting/bare as "ratio". Run with -benchtime=1x
// (one iteration = 20 window pairs).
func BenchmarkEchoRatio(b *testing.B) {
	r, bare := remotingEcho(b), bareEcho(b)
	defer r.stop()
	defer bare.stop()
	window := func(op func(int) error) int64 {
		var ops atomic.Int64
		var wg sync.WaitGroup
		deadline := time.Now().Add(100 * time.Millisecond)
		for g := 0; g < echoConns; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for time.Now().Before(deadline) {
					if err := op(g); err != nil {
						b.Error(err)
						return
					}
					ops.Add(1)
				}
			}(g)
		}
		wg.Wait()
		return ops.Load()
	}
	// The process's CPU time (user+sys) per window, so that the cost per
	// round trip can be compared too: on a loaded machine the rates follow
	// it.
	var rCPU, bCPU time.Duration
	timed := func(op func(int) error, spent *time.Duration) int64 {
		c0 := processCPU()
		n := window(op)
		*spent += processCPU() - c0
		return n
	}
	window(r.op) // warm up
	window(bare.op)
	var rOps, bOps int64
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		for w := 0; w < 20; w++ {
			rOps += timed(r.op, &rCPU)
			bOps += timed(bare.op, &bCPU)
		}
	}
	secs := time.Since(start).Seconds() / 2
	b.ReportMetric(float64(rOps)/secs, "remoting-rt/s")
	b.ReportMetric(float64(bOps)/secs, "bare-rt/s")
	b.ReportMetric(float64(rOps)/float64(bOps), "ratio")
	b.ReportMetric(float64(rCPU.Microseconds())/float64(rOps), "remoting-cpu-µs/rt")
	b.ReportMetric(float64(bCPU.Microseconds())/float64(bOps), "bare-cpu-µs/rt")
}

// workerEcho starts a server echoing code 1's body from a worker and a
// Client with its connection to it dialled (outside the timing); both
// close when b ends.
func workerEcho(b *testing.B) (*Client, string) {
	mux := NewServeMux()
	mux.HandleFunc(1, func(_ Conn, r *RemotingCommand) *RemotingCommand {
		resp := NewResponse(r, Success, "")
		resp.Body = r.Body
		return resp
	})
	s, err := NewServer(ServerConfig{}, mux)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	c := NewClient(ClientConfig{})
	b.Cleanup(func() { _ = c.Close() }) // before the server's: cleanups run last first
	if _, err := c.InvokeSync(context.Background(), s.Addr(), echoReq, 5*time.Second); err != nil {
		b.Fatal(err)
	}
	return c, s.Addr()
}

// BenchmarkEchoShared: callers share one Client (one connection), as the
// producers of a process share a broker connection; writes are combined
// and responses matched by opaque. The handler runs on a worker. Besides
// ns per round trip it reports the process's CPU time and write(2) calls
// (client and server together) per round trip, and the round trips'
// median and 99th percentile; callers=1 is the lone producer's latency,
// which coalescing must not cost.
func BenchmarkEchoShared(b *testing.B) {
	for _, callers := range []int{1, 64, 256} {
		b.Run("callers="+strconv.Itoa(callers), func(b *testing.B) {
			c, addr := workerEcho(b)
			ctx := context.Background()
			var next atomic.Int64
			var wg sync.WaitGroup
			rts := make([][]time.Duration, callers)
			for g := range rts {
				rts[g] = make([]time.Duration, 0, b.N/callers+1)
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0, w0 := processCPU(), processWrites()
			for g := range callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						start := monoNow()
						if _, err := c.InvokeSync(ctx, addr, echoReq, 5*time.Second); err != nil {
							b.Error(err)
							return
						}
						rts[g] = append(rts[g], monoNow()-start)
					}
				}()
			}
			wg.Wait()
			cpu, w := processCPU()-cpu0, processWrites()-w0
			b.StopTimer()
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/rt")
			b.ReportMetric(float64(w)/float64(b.N), "writes/rt")
			all := slices.Concat(rts...)
			slices.Sort(all)
			b.ReportMetric(float64(all[len(all)/2].Nanoseconds())/1e3, "p50-µs")
			b.ReportMetric(float64(all[len(all)*99/100].Nanoseconds())/1e3, "p99-µs")
		})
	}
}

// BenchmarkEchoAsync: one goroutine keeps window asynchronous calls in
// flight on one connection, as the benchmark's async256 producer does (a
// pool of slots bound to their callbacks, a channel of free slots). The
// handler runs on a worker. It reports the process's CPU time and
// write(2) calls per round trip (client and server together) and the
// goroutines the process ran at the end of the timing.
func BenchmarkEchoAsync(b *testing.B) {
	for _, window := range []int{1, 256} {
		b.Run("window="+strconv.Itoa(window), func(b *testing.B) {
			c, addr := workerEcho(b)
			ctx := context.Background()
			type slot struct {
				cb   func(*RemotingCommand, error)
				errs atomic.Int64
			}
			free := make(chan *slot, window)
			for range window {
				s := &slot{}
				s.cb = func(_ *RemotingCommand, err error) {
					if err != nil {
						s.errs.Add(1)
					}
					free <- s
				}
				free <- s
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0, w0 := processCPU(), processWrites()
			for range b.N {
				s := <-free
				if err := c.InvokeAsync(ctx, addr, echoReq, 5*time.Second, s.cb); err != nil {
					b.Fatal(err)
				}
			}
			for range window {
				if s := <-free; s.errs.Load() > 0 {
					b.Fatalf("%d calls failed", s.errs.Load())
				}
			}
			cpu, w := processCPU()-cpu0, processWrites()-w0
			b.StopTimer()
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/rt")
			b.ReportMetric(float64(w)/float64(b.N), "writes/rt")
		})
	}
}
