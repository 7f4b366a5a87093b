//go:build unix

package dledgernet

import (
	"io"
	"net"
	"syscall"
	"unsafe"
)

// nowWriter writes as much of b as the socket takes without blocking.
// Its method value is made once per connection: a closure per write
// (capturing its results) cost three allocations per frame.
type nowWriter struct {
	rc  syscall.RawConn
	do  func(fd uintptr) bool
	b   []byte
	n   int
	err error
}

func newNowWriter(rc syscall.RawConn) *nowWriter {
	w := &nowWriter{rc: rc}
	w.do = w.write
	return w
}

// writeNow writes as much of b as the socket takes without blocking.
func (w *nowWriter) writeNow(b []byte) (int, error) {
	if w == nil || w.rc == nil {
		return 0, nil
	}
	w.b, w.n, w.err = b, 0, nil
	err := w.rc.Write(w.do)
	n, werr := w.n, w.err
	w.b, w.err = nil, nil
	if err != nil {
		return n, err
	}
	return n, werr
}

// write is a raw write(2) (see rawReader for why), never blocking: the
// socket is non-blocking.
func (w *nowWriter) write(fd uintptr) bool {
	for w.n < len(w.b) {
		k, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&w.b[w.n])), uintptr(len(w.b)-w.n))
		if e != 0 {
			k = 0
		}
		w.n += int(k)
		switch e {
		case 0:
			if w.n < len(w.b) && k > 0 {
				continue
			}
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
		default:
			w.err = e
		}
		return true // never wait for writability: the sender does that
	}
	return true
}

// rawReader reads a peer connection with raw read(2)s (syscall.RawSyscall,
// the socket being non-blocking), waiting for readability through the
// runtime's poller like net.Conn.Read. A read through net.Conn enters the
// runtime's syscall state, and on a DLedger follower (one P, see
// cmd/broker/replog procs.go) the first one after the process went idle
// woke sysmon, which then polled every 20 µs while the batch was handled:
// thousands of wake-ups a second per follower (issue 8; see also
// logstore's rawWriter). A read(2) of a socket never blocks.
type rawReader struct {
	rc  syscall.RawConn
	do  func(fd uintptr) bool
	p   []byte
	n   int
	err error
}

// newReader returns c's reader: a rawReader when c has a descriptor.
func newReader(c net.Conn) io.Reader {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	r := &rawReader{rc: rc}
	r.do = r.read
	return r
}

func (r *rawReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.p, r.n, r.err = p, 0, nil
	err := r.rc.Read(r.do)
	n, rerr := r.n, r.err
	r.p, r.err = nil, nil
	if err != nil {
		return n, err
	}
	return n, rerr
}

// read reports false (wait for readability) only on EAGAIN.
func (r *rawReader) read(fd uintptr) bool {
	for {
		k, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&r.p[0])), uintptr(len(r.p)))
		switch e {
		case 0:
			r.n = int(k)
			if k == 0 {
				r.err = io.EOF
			}
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		default:
			r.err = e
			return true
		}
	}
}
