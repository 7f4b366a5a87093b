//go:build unix

package dledgernet

import "syscall"

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

func (w *nowWriter) write(fd uintptr) bool {
	for {
		k, e := syscall.Write(int(fd), w.b[w.n:])
		if k > 0 {
			w.n += k
		}
		switch e {
		case nil:
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
}
