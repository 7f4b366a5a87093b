package remoting

import (
	"context"
	"time"
)

// SerializeType is the top byte of a frame's header-length word.
type SerializeType byte

const (
	JSON     SerializeType = 0
	RocketMQ SerializeType = 1
)

// Flag bits of RemotingCommand.Flag.
const (
	FlagResponse int32 = 1 << 0
	FlagOneway   int32 = 1 << 1
)

// System response codes every server uses (protocol.md §1.7).
const (
	Success                 int16 = 0
	SystemError             int16 = 1
	SystemBusy              int16 = 2
	RequestCodeNotSupported int16 = 3
)

// RemotingCommand is one frame: a request or a response. ExtFields is the
// "custom header": every value a string. Body is opaque.
//
// A decoded command's strings alias its frame when the frame is small (it
// shares one allocation with the command); those of a larger frame are
// copied together, so a handler keeping a field — a topic name as a map
// key — never pins a large body.
//
// The small fields come first so that they pack into 16 bytes: the size of
// a command decides the size classes of newFrame's joint allocations.
type RemotingCommand struct {
	Code    int16
	Version int16
	Opaque  int32
	Flag    int32

	// SerializeType is the header codec this command arrived in (decode) or
	// will be written in (encode). A response uses its request's type.
	SerializeType SerializeType
	// frameClass is set on a request a Server read into a pooled frame
	// (requestFrame): 1 + the index of its pool; ReleaseRequest returns it.
	frameClass uint8

	Language  string // "JAVA", "GO", ...; we send "JAVA" (safest for Java peers)
	Remark    string
	ExtFields Fields
	Body      []byte
}

func (c *RemotingCommand) IsResponse() bool { return c.Flag&FlagResponse != 0 }
func (c *RemotingCommand) IsOneway() bool   { return c.Flag&FlagOneway != 0 }

// Conn is the server's view of one client connection, handed to handlers so
// they can learn the peer and send it server-initiated requests
// (CHECK_TRANSACTION_STATE, NOTIFY_CONSUMER_IDS_CHANGED, ...).
type Conn interface {
	ID() uint64
	RemoteAddr() string // "ip:port"
	LocalAddr() string
	// Send writes a command without waiting (a response or a oneway request).
	Send(cmd *RemotingCommand) error
	// Invoke sends a request on this connection and waits for its response.
	Invoke(ctx context.Context, req *RemotingCommand, timeout time.Duration) (*RemotingCommand, error)
	Close() error
}

// Handler serves one request. It returns the response (the server fills in
// Opaque, the response flag and the serialize type), or nil to send nothing
// (oneway requests, or a handler that answers later through Conn.Send, as
// long polling does).
type Handler interface {
	ServeRemoting(c Conn, req *RemotingCommand) *RemotingCommand
}

// InlineHandler is implemented by a Handler (ServeMux does) that can tell
// which request codes it serves so cheaply that the server may run them on
// the event loop that read the frame, skipping the hand-off to a worker
// goroutine. Such a handler must return within microseconds: it must never
// block, do I/O, wait for a lock held across I/O, or call Conn.Invoke (the
// response would arrive on the very loop it blocks). Everything else —
// store I/O, long polling — belongs on the worker pool.
type InlineHandler interface {
	Handler
	ServesInline(code int16) bool
	// ServeInline serves, on the event loop, a request whose code
	// ServesInline accepted. It may return ServeOnWorker instead of an
	// answer: the request is then queued for a worker, which serves it
	// with ServeRemoting (for the requests of a code that would block, or
	// that need their worker-only path).
	ServeInline(c Conn, req *RemotingCommand) *RemotingCommand
}

// ServeOnWorker is what ServeInline returns to hand a request to a worker.
// It is never sent.
var ServeOnWorker = &RemotingCommand{Code: SystemError, Remark: "remoting: ServeOnWorker"}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(c Conn, req *RemotingCommand) *RemotingCommand

func (f HandlerFunc) ServeRemoting(c Conn, req *RemotingCommand) *RemotingCommand { return f(c, req) }
