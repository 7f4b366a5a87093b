package logstore

import (
	"testing"

	"github.com/rmqd/rmqd/dledger"
)

// FuzzDecodeEntry: DecodeEntry never panics, and what it accepts re-encodes
// to the same bytes when both checksums were present.
func FuzzDecodeEntry(f *testing.F) {
	f.Add(EncodeEntry(nil, &dledger.Entry{Index: 1, Term: 2, Pos: 48, Body: []byte("hello")}))
	f.Add(EncodeEntry(nil, &dledger.Entry{Index: 0, Term: 0, Pos: 0}))
	f.Add(make([]byte, 48))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, crc, n, err := DecodeEntry(b)
		if err != nil {
			return
		}
		if n < HeaderSize || n > len(b) || int64(n) != e.Size() {
			t.Fatalf("n = %d for entry of size %d (input %d bytes)", n, e.Size(), len(b))
		}
		if crc != 0 && headerCRCOK(b) && b[offChainCRC]|b[offChainCRC+1]|b[offChainCRC+2]|b[offChainCRC+3] != 0 && b[offChannel]|b[offChannel+1]|b[offChannel+2]|b[offChannel+3] == 0 {
			if got := EncodeEntry(nil, &e); string(got) != string(b[:n]) {
				t.Fatalf("re-encoding differs")
			}
		}
	})
}
