//go:build unix

package dledgernet

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// TestRawReaderWaitsAndEnds: a peer connection's reader reads with raw
// read(2)s (see rawReader) and waits for the poller between writes: it
// must return every byte in order, then io.EOF when the peer closes, and
// an error once the connection is closed locally.
func TestRawReaderWaitsAndEnds(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	want := make([]byte, 600<<10)
	for i := range want {
		want[i] = byte(i*13 + 5)
	}
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return
		}
		defer c.Close()
		for b := want; len(b) > 0; {
			n := min(len(b), 100<<10)
			if _, err := c.Write(b[:n]); err != nil {
				return
			}
			b = b[n:]
			time.Sleep(20 * time.Millisecond) // the reader finds the socket empty
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	r := newReader(c)
	if _, ok := r.(*rawReader); !ok {
		t.Fatalf("reader is %T, not a rawReader", r)
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes (want %d), equal %v, err %v", len(got), len(want), bytes.Equal(got, want), err)
	}
	if n, err := r.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Fatalf("after the peer closed: %d, %v", n, err)
	}
	c.Close()
	if _, err := r.Read(make([]byte, 10)); err == nil || err == io.EOF {
		t.Fatalf("read of a closed connection: %v", err)
	}
}
