package logstore

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/rmqd/rmqd/dledger"
	"github.com/rmqd/rmqd/internal/vfs"
)

// fileBytes reads [pos, pos+n) of the data byte space straight from the
// data files in fs, the truth ReadAt must agree with.
func fileBytes(t *testing.T, fs vfs.FS, cfg Config, pos int64, n int) []byte {
	t.Helper()
	out := make([]byte, 0, n)
	for len(out) < n {
		start := pos - pos%cfg.DataFileSize
		f, err := fs.OpenFile(filepath.Join(testDir, "data", fileName(start)), os.O_RDONLY)
		mustNotErr(t, err, "open data file at %d", start)
		b := make([]byte, min(int64(n-len(out)), start+cfg.DataFileSize-pos))
		_, err = f.ReadAt(b, pos-start)
		f.Close()
		mustNotErr(t, err, "read data file at %d", pos)
		out = append(out, b...)
		pos += int64(len(b))
	}
	return out
}

// TestReadAtTail: reads of just-appended bytes are served from memory (no
// file read), and every ReadAt near the end, served from memory or not,
// returns the bytes the files hold, across rolls, truncations, resets,
// retention and batches larger than the in-memory tail.
func TestReadAtTail(t *testing.T) {
	for _, cfg := range []Config{
		{DataFileSize: 4096, IndexFileSize: 32 * 64, CheckpointInterval: -1},
		{DataFileSize: 4 << 20, IndexFileSize: 32 * 1024, CheckpointInterval: -1},
	} {
		mem := vfs.NewMem()
		var reads atomic.Int64
		efs := &vfs.ErrorFS{FS: mem, Inject: func(op vfs.Op, path string) error {
			if op == vfs.OpRead && filepath.Base(filepath.Dir(path)) == "data" {
				reads.Add(1)
			}
			return nil
		}}
		s, err := Open(efs, testDir, cfg)
		mustNotErr(t, err, "open")
		rng := rand.New(rand.NewPCG(uint64(cfg.DataFileSize), 3))
		maxBody := int(min(cfg.DataFileSize/3, 600<<10))
		var m model
		term := int64(1)
		for op := 0; op < 300; op++ {
			var es []dledger.Entry
			switch r := rng.IntN(40); {
			case r == 0 && len(m.entries) > 0: // reset: replace the whole log, at 0 or where it ended
				term++
				at := int64(0)
				if rng.IntN(2) == 0 {
					at = s.End()
				}
				es, _ = batch(s.FileLayout, at, s.FirstIndex(), 1+rng.IntN(3), term, rng, 10, 300)
				m.entries = nil
			case r < 4 && len(m.entries) > 4: // truncate
				at := m.last() - int64(rng.IntN(3))
				prev := m.entries[at-1-m.entries[0].Index]
				term++
				es, _ = batch(s.FileLayout, prev.Pos+prev.Size(), at, 1+rng.IntN(3), term, rng, 10, 300)
			case r == 5 && len(m.entries) > 20:
				_, err := s.DeleteBefore(m.last() - 10)
				mustNotErr(t, err, "delete")
				m.entries = m.entries[s.FirstIndex()-m.entries[0].Index:]
				continue
			case r == 6 && cfg.DataFileSize > 2*tailSize: // one batch larger than the tail
				es, _ = batch(s.FileLayout, s.End(), m.last()+1, 4, term, rng, tailSize/3, tailSize/2)
			default:
				hi := 300
				if rng.IntN(4) == 0 {
					hi = maxBody
				}
				es, _ = batch(s.FileLayout, s.End(), m.last()+1, 1+rng.IntN(8), term, rng, 0, hi)
			}
			mustNotErr(t, s.Append(es), "op %d append", op)
			m.append(es)

			last := es[len(es)-1]
			if last.Size() <= tailMaxRead {
				reads.Store(0)
				b := make([]byte, last.Size())
				_, err := s.ReadAt(b, last.Pos)
				mustNotErr(t, err, "read the last entry")
				if n := reads.Load(); n != 0 {
					t.Fatalf("op %d: reading the entry just appended read the data file %d times", op, n)
				}
				if e, _, _, err := DecodeEntry(b); err != nil || !sameEntry(e, last) {
					t.Fatalf("op %d: entry %d read back by position: %+v, %v", op, last.Index, e, err)
				}
			}
			end, begin := s.End(), s.BeginPos()
			for k := 0; k < 4; k++ {
				back := 1 + rng.Int64N(min(end-begin, 3*tailSize/2))
				pos := end - back
				n := 1 + rng.IntN(int(min(back, 3*tailMaxRead/2)))
				b := make([]byte, n)
				got, err := s.ReadAt(b, pos)
				mustNotErr(t, err, "ReadAt(%d, %d), end %d", n, pos, end)
				if got != n || !bytes.Equal(b, fileBytes(t, mem, cfg, pos, n)) {
					t.Fatalf("op %d: ReadAt %d bytes at %d (end %d) disagrees with the files", op, n, pos, end)
				}
			}
		}
		checkLog(t, s, m.entries)
		s.Close()
	}
}

// TestReadAtTailConcurrent: readers ReadAt just below the end while the
// driver appends (the dispatcher's pattern); every read returns exactly the
// bytes written there. Run with -race for the ring's locking.
func TestReadAtTailConcurrent(t *testing.T) {
	cfg := testConfig(t)
	cfg.Logger = nil
	s := mustOpen(t, vfs.NewMem(), cfg)
	rng := rand.New(rand.NewPCG(5, 6))
	all, _ := batch(s.FileLayout, 0, 0, 3000, 1, rng, 0, 700)
	want := make([]byte, all[len(all)-1].Pos+all[len(all)-1].Size())
	end := int64(0)
	for _, e := range all {
		if e.Pos != end {
			putBlank(want[end:], e.Pos-end)
		}
		EncodeEntry(want[:e.Pos], &e)
		end = e.Pos + e.Size()
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			rr := rand.New(rand.NewPCG(uint64(r), 7))
			for {
				select {
				case <-stop:
					return
				default:
				}
				end := s.End()
				if end == 0 {
					continue
				}
				n := 1 + rr.Int64N(min(end, 8<<10))
				b := make([]byte, n)
				if _, err := s.ReadAt(b, end-n); err != nil {
					t.Errorf("ReadAt(%d, %d): %v", n, end-n, err)
					return
				}
				if !bytes.Equal(b, want[end-n:end]) {
					t.Errorf("ReadAt(%d, %d) returned other bytes", n, end-n)
					return
				}
			}
		}(r)
	}
	for i := 0; i < len(all); {
		n := min(1+rng.IntN(6), len(all)-i)
		mustNotErr(t, s.Append(all[i:i+n]), "append")
		i += n
	}
	close(stop)
	wg.Wait()
	s.Close()
}
