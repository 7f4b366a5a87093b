package logstore

import "sync"

// tailSize is how many of the last appended bytes the store keeps in memory
// so that ReadAt of just-appended positions (the store dispatcher's read of
// newly committed entries, on every replica) is a memory copy instead of a
// pread: 0.1 µs instead of 1 µs for one 1 KiB entry, 0.5 instead of 1.8 µs
// for 16 (BenchmarkReadAtTail). Reads longer than tailMaxRead gain little
// over a pread and would hold the read lock (and the next Append) longer,
// so they go to the file.
const (
	tailSize    = 1 << 20
	tailMaxRead = 64 << 10
)

// tail is a ring holding positions [lo, hi) of the data byte space, each at
// buf[pos%tailSize]. The driver copies each Append's bytes in (under the
// write lock: they overwrite the oldest ones); readers copy out under the
// read lock. A memory copy, never I/O, under either.
type tail struct {
	mu     sync.RWMutex
	buf    []byte // allocated at the first put
	lo, hi int64
}

// put records b at pos. Bytes that do not continue hi (the first entry of
// a new data file after padding, or of a truncated or reset log) restart
// the ring at pos.
func (t *tail) put(pos int64, b []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.buf == nil {
		t.buf = make([]byte, tailSize)
	}
	if pos != t.hi || t.lo == t.hi {
		t.lo, t.hi = pos, pos
	}
	if n := int64(len(b)); n > tailSize {
		pos, b = pos+n-tailSize, b[n-tailSize:]
		t.lo = pos
	}
	for len(b) > 0 {
		k := copy(t.buf[pos%tailSize:], b)
		pos, b = pos+int64(k), b[k:]
	}
	t.hi = pos
	t.lo = max(t.lo, t.hi-tailSize)
}

// reset forgets everything (truncation and reset rewrite positions).
func (t *tail) reset() {
	t.mu.Lock()
	t.lo, t.hi = 0, 0
	t.mu.Unlock()
}

// read copies [pos, pos+len(p)) into p if the ring holds all of it and p is
// at most tailMaxRead long.
func (t *tail) read(p []byte, pos int64) bool {
	if len(p) > tailMaxRead {
		return false
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	if pos < t.lo || pos+int64(len(p)) > t.hi {
		return false
	}
	for len(p) > 0 {
		k := copy(p, t.buf[pos%tailSize:])
		pos, p = pos+int64(k), p[k:]
	}
	return true
}
