package store

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/rmqd/rmqd/internal/vfs"
)

// TestAgainstModel drives the store with a seeded random mix of puts, pulls
// at random offsets, clean restarts and kill -9 restarts, and checks every
// answer against a naive model (a slice of bodies per queue).
func TestAgainstModel(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			fs := vfs.NewMem()
			cfg := testConfig(t, fs)
			cfg.MappedFileSizeCommitLog = 6 * 1024
			cfg.MappedFileSizeConsumeQueue = 7 * CQUnitSize
			s := openStore(t, cfg)
			model := map[int32][]string{}
			for step := 0; step < 600; step++ {
				switch op := rng.IntN(100); {
				case op < 60:
					q := int32(rng.IntN(3))
					m := newMsg("M", q, step, []string{"", "a", "b"}[rng.IntN(3)])
					m.Body = make([]byte, rng.IntN(700))
					copy(m.Body, fmt.Sprintf("s%d;", step))
					r := mustPut(t, s, m)
					if r.QueueOffset != int64(len(model[q])) {
						t.Fatalf("step %d: queue offset %d, model %d", step, r.QueueOffset, len(model[q]))
					}
					model[q] = append(model[q], string(m.Body))
				case op < 90:
					waitAll(t, s)
					q := int32(rng.IntN(4))
					n := int64(len(model[q]))
					off := rng.Int64N(n+3) - 1
					r := s.GetMessage("g", "M", q, off, int32(1+rng.IntN(5)), 0, nil)
					var want GetMessageStatus
					switch {
					case n == 0:
						want = NoMatchedLogicQueue
					case off < 0:
						want = OffsetTooSmall
					case off == n:
						want = OffsetOverflowOne
					case off > n:
						want = OffsetOverflowBadly
					default:
						want = Found
					}
					if r.Status != want {
						t.Fatalf("step %d: q%d@%d (n=%d): %v want %v", step, q, off, n, r.Status, want)
					}
					if want == Found {
						msgs, err := DecodeMessages(r.Body(), true)
						if err != nil {
							t.Fatal(err)
						}
						for i, m := range msgs {
							if string(m.Body) != model[q][off+int64(i)] {
								t.Fatalf("step %d: q%d@%d: wrong body", step, q, off+int64(i))
							}
						}
						if r.NextBeginOffset != off+int64(len(msgs)) || r.MaxOffset != n {
							t.Fatalf("step %d: next %d max %d", step, r.NextBeginOffset, r.MaxOffset)
						}
					}
				case op < 95:
					s.Shutdown()
					s = reopen(t, cfg, fs)
				default:
					crashed := fs.ProcessCrashClone()
					s.Shutdown()
					fs = crashed
					s = reopen(t, cfg, fs)
				}
			}
			s.Shutdown()
		})
	}
}
