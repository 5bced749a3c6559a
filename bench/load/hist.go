package main

import (
	"math/bits"
	"time"
)

// hist is a log-linear latency histogram: 64 linear sub-buckets per power
// of two of nanoseconds, so every recorded value is kept within 1/64 (1.6%)
// of its true value, in a fixed 4,096-slot array that one goroutine owns.
// Percentiles of merged histograms are exact up to that resolution; no
// sample is ever dropped.
type hist struct {
	counts [64 * 64]uint64
	n      uint64
	max    int64
}

const subBits = 6 // 64 sub-buckets

func bucketOf(ns int64) int {
	if ns < 1<<subBits {
		if ns < 0 {
			ns = 0
		}
		return int(ns)
	}
	e := bits.Len64(uint64(ns)) - subBits // >= 1
	sub := int(uint64(ns)>>(e-1)) & (1<<subBits - 1)
	return e<<subBits | sub
}

// lowerBound is the smallest value that falls into bucket b.
func lowerBound(b int) int64 {
	e, sub := b>>subBits, b&(1<<subBits-1)
	if e == 0 {
		return int64(sub)
	}
	return int64(1<<subBits|sub) << (e - 1)
}

func (h *hist) record(d time.Duration) {
	ns := int64(d)
	h.counts[bucketOf(ns)]++
	h.n++
	if ns > h.max {
		h.max = ns
	}
}

func (h *hist) merge(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the value at quantile q (0..1), reported as the middle
// of its bucket (the maximum for q = 1).
func (h *hist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if q >= 1 {
		return time.Duration(h.max)
	}
	rank := uint64(q*float64(h.n) + 0.5)
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := lowerBound(i), lowerBound(i+1)
			return time.Duration(min((lo+hi)/2, h.max))
		}
	}
	return time.Duration(h.max)
}
