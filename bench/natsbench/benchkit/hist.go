// Package benchkit holds the measuring parts of bin/benchmark that other
// programs share: a fixed-bucket latency histogram (bench/natsbench keeps a
// byte-for-byte copy of hist.go, checked by test/benchmark_test.go, so both
// sides of a comparison bucket and rank latencies identically) and a lean
// walker over stored message records (protocol.md §5.2).
package benchkit

import (
	"math/bits"
	"sync/atomic"
)

// Histogram is a log-linear (HDR-like) histogram of durations in
// microseconds with a fixed number of buckets: values below 128 µs have a
// bucket each, larger ones fall into 64 sub-buckets per power of two, so a
// recorded value is off by at most 1/64 (1.6 %) of itself. Values above
// about 19 hours land in the last bucket. Record allocates nothing and is
// safe for concurrent use (atomic adds); readers may run concurrently with
// writers and see a consistent-enough snapshot for progress lines.
type Histogram struct {
	buckets [numBuckets]atomic.Uint64
	count   atomic.Uint64
	sum     atomic.Uint64 // µs
	max     atomic.Uint64 // µs
}

const (
	subBits    = 6
	subCount   = 1 << subBits // 64 sub-buckets per power of two
	linearTop  = 2 * subCount // values below this have exact buckets
	maxShift   = 30           // largest exponent tracked: 2^36 µs ≈ 19 h
	numBuckets = linearTop + maxShift*subCount
)

// bucketOf returns the bucket index of v µs.
func bucketOf(v uint64) int {
	if v < linearTop {
		return int(v)
	}
	shift := bits.Len64(v) - (subBits + 1) // v>>shift is in [64, 128)
	if shift > maxShift {
		return numBuckets - 1
	}
	return linearTop + (shift-1)*subCount + int(v>>uint(shift)) - subCount
}

// bucketHigh returns the largest value that maps onto bucket i.
func bucketHigh(i int) uint64 {
	if i < linearTop {
		return uint64(i)
	}
	j := i - linearTop
	shift := uint(j/subCount + 1)
	sub := uint64(j%subCount + subCount)
	return (sub+1)<<shift - 1
}

// Record adds one value of us microseconds (negative counts as 0).
func (h *Histogram) Record(us int64) {
	if us < 0 {
		us = 0
	}
	v := uint64(us)
	h.buckets[bucketOf(v)].Add(1)
	h.count.Add(1)
	h.sum.Add(v)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.count.Load() }

// Sum is the sum of recorded values, µs.
func (h *Histogram) Sum() uint64 { return h.sum.Load() }

// Max is the largest recorded value, µs (exact).
func (h *Histogram) Max() uint64 { return h.max.Load() }

// Mean is the average recorded value, µs (0 when empty).
func (h *Histogram) Mean() float64 {
	n := h.count.Load()
	if n == 0 {
		return 0
	}
	return float64(h.sum.Load()) / float64(n)
}

// Merge adds every value recorded in o to h.
func (h *Histogram) Merge(o *Histogram) {
	for i := range o.buckets {
		if c := o.buckets[i].Load(); c != 0 {
			h.buckets[i].Add(c)
		}
	}
	h.count.Add(o.count.Load())
	h.sum.Add(o.sum.Load())
	om := o.max.Load()
	for {
		m := h.max.Load()
		if om <= m || h.max.CompareAndSwap(m, om) {
			break
		}
	}
}

// Quantile returns the value at quantile q (0 < q ≤ 1), µs: the upper
// bound of the bucket holding the ceil(q·count)-th smallest value, capped
// at Max (the overflow bucket reports Max). It returns 0 for an empty
// histogram.
func (h *Histogram) Quantile(q float64) uint64 {
	n := h.count.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.999999)
	if rank < 1 {
		rank = 1
	}
	if rank > n {
		rank = n
	}
	var seen uint64
	for i := range h.buckets {
		seen += h.buckets[i].Load()
		if seen >= rank {
			m := h.max.Load()
			if v := bucketHigh(i); v < m && i < numBuckets-1 {
				return v
			}
			return m // the overflow bucket, or a bucket wider than the data
		}
	}
	return h.max.Load()
}
