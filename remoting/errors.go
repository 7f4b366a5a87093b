package remoting

import "errors"

// Sentinel errors. Wrapped errors keep these as their cause; test with
// errors.Is.
var (
	// ErrFrameTooLarge: a frame's declared length exceeds the maximum.
	ErrFrameTooLarge = errors.New("remoting: frame too large")
	// ErrMalformedFrame: a frame or one of its headers cannot be decoded.
	ErrMalformedFrame = errors.New("remoting: malformed frame")
	// ErrHeaderTooLarge: an encoded header does not fit the 24-bit length.
	ErrHeaderTooLarge = errors.New("remoting: header too large")
	// ErrUnknownSerializeType: the header word's type byte is neither JSON nor ROCKETMQ.
	ErrUnknownSerializeType = errors.New("remoting: unknown serialize type")
	// ErrConnClosed: the connection closed before the request completed,
	// or a command was sent on a closed connection.
	ErrConnClosed = errors.New("remoting: connection closed")
	// ErrTimeout: no response arrived within the request's timeout.
	ErrTimeout = errors.New("remoting: request timed out")
	// ErrClientClosed: the Client has been closed.
	ErrClientClosed = errors.New("remoting: client closed")
	// ErrServerClosed: the Server has been closed (or was never started).
	ErrServerClosed = errors.New("remoting: server closed")
	// ErrNotRequest: Invoke was given a command with the response flag set.
	ErrNotRequest = errors.New("remoting: command is not a request")
)
