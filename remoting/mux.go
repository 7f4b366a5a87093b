package remoting

import (
	"fmt"
	"strconv"
	"sync"
)

// ServeMux dispatches requests by code, like http.ServeMux does by path.
// Registering a code twice, or a nil handler, panics (a start-up bug). A
// request whose code has no handler is answered with
// RequestCodeNotSupported and the remark " request type <code> not
// supported", as the Java server does. Handle may be called while serving.
type ServeMux struct {
	mu       sync.RWMutex
	handlers map[int16]muxEntry
}

type muxEntry struct {
	h      Handler // served on a worker
	inline Handler // served on the event loop (HandleInline, HandleInlineFirst)
}

// NewServeMux returns an empty mux.
func NewServeMux() *ServeMux {
	return &ServeMux{handlers: make(map[int16]muxEntry)}
}

// Handle registers h for code; the server runs it on a worker.
func (m *ServeMux) Handle(code int16, h Handler) { m.handle(code, h, nil) }

func (m *ServeMux) handle(code int16, h, inline Handler) {
	if h == nil {
		panic(fmt.Sprintf("remoting: nil handler for code %d", code))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, dup := m.handlers[code]; dup {
		panic(fmt.Sprintf("remoting: code %d registered twice", code))
	}
	m.handlers[code] = muxEntry{h: h, inline: inline}
}

// HandleInline registers h for code and lets the server run it on the
// event loop (see InlineHandler for what h must never do).
func (m *ServeMux) HandleInline(code int16, h Handler) { m.handle(code, h, h) }

// HandleInlineFirst registers inline, run on the event loop, and h, run on
// a worker for the requests inline hands over by returning ServeOnWorker
// (those it cannot serve without blocking). inline must never block (see
// InlineHandler).
func (m *ServeMux) HandleInlineFirst(code int16, inline, h Handler) {
	if inline == nil {
		panic(fmt.Sprintf("remoting: nil inline handler for code %d", code))
	}
	m.handle(code, h, inline)
}

// ServesInline reports whether code was registered with HandleInline or
// HandleInlineFirst, or has no handler at all (the RequestCodeNotSupported
// answer is cheap).
func (m *ServeMux) ServesInline(code int16) bool {
	m.mu.RLock()
	e, known := m.handlers[code]
	m.mu.RUnlock()
	return e.inline != nil || !known
}

// ServeInline serves req on the event loop: with the inline handler of its
// code, RequestCodeNotSupported for an unknown code, else ServeOnWorker.
func (m *ServeMux) ServeInline(c Conn, req *RemotingCommand) *RemotingCommand {
	m.mu.RLock()
	e, known := m.handlers[req.Code]
	m.mu.RUnlock()
	switch {
	case e.inline != nil:
		return e.inline.ServeRemoting(c, req)
	case !known:
		return NotSupported(req)
	}
	return ServeOnWorker
}

// HandleFunc registers f for code.
func (m *ServeMux) HandleFunc(code int16, f func(c Conn, req *RemotingCommand) *RemotingCommand) {
	if f == nil {
		panic(fmt.Sprintf("remoting: nil handler for code %d", code))
	}
	m.Handle(code, HandlerFunc(f))
}

// Handler returns the handler registered for code, or nil.
func (m *ServeMux) Handler(code int16) Handler {
	m.mu.RLock()
	h := m.handlers[code].h
	m.mu.RUnlock()
	return h
}

// ServeRemoting dispatches req to the handler of its code.
func (m *ServeMux) ServeRemoting(c Conn, req *RemotingCommand) *RemotingCommand {
	if h := m.Handler(req.Code); h != nil {
		return h.ServeRemoting(c, req)
	}
	return NotSupported(req)
}

// NotSupported returns the RequestCodeNotSupported response to req.
func NotSupported(req *RemotingCommand) *RemotingCommand {
	return NewResponse(req, RequestCodeNotSupported, " request type "+strconv.Itoa(int(req.Code))+" not supported")
}
