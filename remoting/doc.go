// Package remoting implements the RocketMQ "remoting" transport: length-
// prefixed frames with a JSON or binary (ROCKETMQ) header, a gnet v2 server
// with a bounded worker pool, a code-keyed ServeMux, and a connection-
// pooling client. It knows no RocketMQ semantics beyond the four system
// response codes (design.md §7); request codes and header fields belong to
// package protocol.
//
// # Frame
//
// All integers big-endian (protocol.md §1.2):
//
//	+----------------+------+-------------------+----------------+-----------+
//	| length  uint32 | type | headerLength (24) | header         | body      |
//	+----------------+------+-------------------+----------------+-----------+
//	  4 bytes          1      3 bytes             headerLength     the rest
//
//	length = 4 + headerLength + len(body)   (the length word not included)
//	type   = 0 JSON, 1 ROCKETMQ (SerializeType); anything else is malformed
//
// A frame whose length is < 4 or above the maximum (16 MiB by default) is
// rejected before anything is allocated; so is a header longer than the
// frame. Encode writes a frame; ReadFrame reads one from a stream (without
// its length word) and DecodeFrame decodes that.
//
// # JSON header (protocol.md §1.4)
//
//	{"code":C,"language":"JAVA","version":409,"opaque":O,"flag":F,"remark":"R","extFields":{"k":"v",...}}
//
// Written in this key order, "remark" left out when empty, extFields keys
// sorted, language "JAVA" and version 409 (DefaultVersion, V4_9_8) unless
// the command says otherwise. Read like the Go client does: code must be an
// integer JSON number in int16 range, opaque and flag int32, version int16;
// remark a string or null; extFields an object of string (or null) values,
// or null/absent; language any string; unknown keys of any type ignored;
// keys matched exactly, then case-insensitively as encoding/json does.
//
// # ROCKETMQ binary header (protocol.md §1.5)
//
//	offset size
//	  0     2   code      int16
//	  2     1   language  (JAVA 0 ... GO 9 ... NODE_JS 13; see protocol.md §1.3)
//	  3     2   version   int16
//	  5     4   opaque    int32
//	  9     4   flag      int32 (bit 0 response, bit 1 oneway)
//	 13     4   R = remark length, then R bytes of UTF-8
//	17+R    4   E = ext length, then E bytes of entries:
//	            int16 keyLength, key, int32 valueLength, value
//
// The encoder writes the language byte of the command's Language (JAVA 0
// when empty, OTHER 7 for names it does not know; the Go client always
// writes GO 9); the decoder names the byte ("OTHER" beyond NODE_JS). Java
// reads zero-length strings as null; we read them as "". Every length is
// checked against what is left of the header before it is used.
//
// # Server
//
// NewServer(cfg, handler) then Start; Addr gives the bound address (port 0
// resolved); Close is graceful and leaves no goroutine behind. The gnet
// event loops (one by default) only cut frames: OnTraffic checks the
// declared length against MaxFrameSize before anything is allocated, loops
// over every complete frame, copies it before Discard and queues it for a
// bounded pool of Workers goroutines, which decode it, run the Handler and
// encode the reply. A worker writes the reply straight to the non-blocking
// socket, together with whatever other goroutines encoded for the same
// connection meanwhile (one syscall for the batch; while other requests of
// the connection are being served it yields once first, so that replies
// produced together leave together); whatever the socket does
// not take at once is queued with gnet's AsyncWrite, and later frames follow
// it there until it drains, so the order of each sender's frames is kept.
// Nothing blocks a loop.
//
// A handler can take the worker hand-off out of the path of its cheapest
// codes: ServeMux.HandleInline registers a handler the loop runs itself
// (InlineHandler), as it does the RequestCodeNotSupported answer. The loop
// reads the code from the frame without decoding it (the ROCKETMQ header's
// first field; a JSON header that starts with "code", as Go and Java
// encoders write it), decodes only the frames it serves, and queues the
// rest undecoded. Inline handlers must return within microseconds: no I/O,
// no waiting, no Conn.Invoke. ServeMux.HandleInlineFirst pairs an inline
// handler with a worker one: the inline handler returns ServeOnWorker for
// the requests it cannot serve without blocking, and the loop queues them
// for a worker, which runs the other handler.
//
// A goroutine answering many requests in a row, later (the DLedger
// leader's sends, answered when their replicated batch commits), uses
// SendDeferred: the answers it queues for a connection leave in one write
// when it calls the Flusher it got, instead of one write each.
//
//   - a full queue: the request is answered SystemBusy ("[OVERLOAD]...")
//   - a malformed frame (bad length, header longer than the frame, unknown
//     serialize type, undecodable header): that connection is closed
//   - a handler panic: logged, answered SystemError, the server goes on
//   - an unknown code (ServeMux): RequestCodeNotSupported, remark
//     " request type <code> not supported"
//   - a oneway request (flag bit 1): never answered
//   - a response (flag bit 0): completes the Conn.Invoke waiting for its
//     opaque; while an Invoke is pending on a connection its frames are
//     decoded on the loop so the response never waits for a free worker
//
// With Workers = 1 the requests of all connections are served one at a
// time in arrival order.
//
// # Client
//
// NewClient(cfg); InvokeSync, InvokeAsync, InvokeOneway; CloseConn; Close.
// One connection per address, dialled on first use and again after it
// breaks (a break fails all of its pending requests at once with
// ErrConnClosed). Requests carry opaques from one process-wide counter. A
// caller that finds the connection idle writes its frame itself (after
// yielding once when other calls share the connection, so that callers
// woken together send together); frames encoded while a write is in
// flight are combined and flushed in one syscall by the connection's
// writer goroutine; an asynchronous call made while others are pending
// leaves its frame to that goroutine at once (write-behind), so that one
// goroutine keeping many calls in flight still sends in batches. An
// asynchronous call has no goroutine and no timer: its callback runs on
// the goroutine that reads its response (so it must not block), and its
// timeout is found by the watcher below. Reading is a duty one
// goroutine holds at a time: a synchronous caller that finds it free reads
// the socket itself until its response arrives (no hand-off between
// goroutines), then passes the duty to another waiting caller; responses
// it reads for others are handed to them by opaque. A reader goroutine per
// connection takes the duty while asynchronous calls wait and, woken by
// one process-wide watcher ticking every 5 ms, whenever the connection has
// been quiet for a tick, so requests from the server — each served by
// ClientConfig.Handler on its own goroutine — and a closed connection are
// noticed with no caller waiting (within about 10 ms). The same watcher
// times out the calls whose deadline passed — asynchronous ones, and
// synchronous callers waiting while another goroutine reads (a caller
// reading for itself uses its socket deadline) — so no call has a timer
// of its own and a timeout may fire up to one tick late. A write that
// makes no progress for WriteTimeout (default 30 s) breaks the connection.
//
// Package remotingtest has an in-memory Conn for handler tests, a
// RoundTrip through the real codec, and server/client helpers.
//
// # Caller duties
//
//  1. A handler returns the response (the server sets its opaque, response
//     flag and serialize type from the request) or nil. To answer later
//     (long polling), keep the Conn and send NewResponse(req, code, remark)
//     — plus ext fields and body — with Conn.Send; Send on a closed
//     connection returns ErrConnClosed.
//  2. Requests on one connection are served concurrently by the worker
//     pool (and the loop, for inline codes), so their responses may be sent
//     in any order. A handler that blocks holds a worker: long waits belong
//     off the handler goroutine.
//  3. Decoded commands alias the frame they came from: treat a request's
//     Body and strings as read-only, and never modify a frame passed to
//     DecodeFrame afterwards.
//  4. Send and Invoke encode the command before returning; the caller may
//     reuse it (and its Body) afterwards. Invoke never modifies its request:
//     it sends a copy carrying a fresh opaque.
//  5. ExtFields values are strings on the wire: format numbers in decimal
//     and booleans as "true"/"false".
//  6. Logging goes to the injected *zap.Logger only (default no-op).
//
// Errors are the Err* sentinels of errors.go, all prefixed "remoting:";
// test them with errors.Is.
package remoting
