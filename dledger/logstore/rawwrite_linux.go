package logstore

import (
	"io"
	"syscall"
	"unsafe"

	"github.com/rmqd/rmqd/internal/vfs"
)

// rawWriter is Append's pwrite(2) of an OS file, issued with RawSyscall6:
// the calling goroutine keeps its P and the runtime does not enter its
// syscall state. A DLedger follower runs on one P (cmd/broker/replog
// procs.go), so with a plain pwrite of a batch (20-50 µs into the page
// cache) the runtime woke sysmon, which took the P back from the syscall
// and handed it to another thread, and stayed awake polling every 20 µs:
// ~4.6k sysmon wake-ups a second per follower at ~50k msgs/s, ~4.5% of a
// core each (issue 8). A page-cache write does not wait for the disk; the
// rare one that blocks (dirty throttling, a journal wait) holds the P
// meanwhile, which on a follower only delays what would wait for that
// Append anyway (the acknowledgement, the next batch).
//
// One per file, used only by Append's goroutine (the driver); the method
// value is made once so a write allocates nothing.
type rawWriter struct {
	rc  syscall.RawConn
	do  func(fd uintptr)
	b   []byte
	off int64
	n   int
	err error
}

// newRawWriter returns nil when f has no descriptor (the test filesystems).
func newRawWriter(f vfs.File) *rawWriter {
	sc, ok := f.(interface {
		SyscallConn() (syscall.RawConn, error)
	})
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	w := &rawWriter{rc: rc}
	w.do = w.pwrite
	return w
}

// WriteAt writes all of b at off (Control keeps the descriptor open
// meanwhile, and fails once the file is closed).
func (w *rawWriter) WriteAt(b []byte, off int64) (int, error) {
	w.b, w.off, w.n, w.err = b, off, 0, nil
	err := w.rc.Control(w.do)
	n, werr := w.n, w.err
	w.b, w.err = nil, nil
	if err != nil {
		return n, err
	}
	return n, werr
}

func (w *rawWriter) pwrite(fd uintptr) {
	for w.n < len(w.b) {
		k, _, e := syscall.RawSyscall6(syscall.SYS_PWRITE64, fd, uintptr(unsafe.Pointer(&w.b[w.n])),
			uintptr(len(w.b)-w.n), uintptr(w.off+int64(w.n)), 0, 0)
		switch {
		case e == syscall.EINTR:
			continue
		case e != 0:
			w.err = e
			return
		case k == 0:
			w.err = io.ErrShortWrite
			return
		}
		w.n += int(k)
	}
}
