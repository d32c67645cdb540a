package loadgen

import (
	"math/bits"
	"time"
)

// Histogram records durations in microseconds in log-linear buckets (128
// per power of two: under 1 % relative error) and answers quantiles. The
// zero value is ready to use; it is not safe for concurrent use.
type Histogram struct {
	counts []uint64
	n      uint64
	sum    time.Duration
	max    time.Duration
}

const (
	subBits    = 7
	subBuckets = 1 << subBits
	nBuckets   = subBuckets + (64-subBits)*subBuckets
)

func bucketOf(us uint64) int {
	if us < subBuckets {
		return int(us)
	}
	e := bits.Len64(us) - subBits - 1
	return subBuckets + e*subBuckets + int(us>>e) - subBuckets
}

// bucketValue is the middle of a bucket, in microseconds.
func bucketValue(i int) uint64 {
	if i < subBuckets {
		return uint64(i)
	}
	e := (i - subBuckets) / subBuckets
	m := uint64((i-subBuckets)%subBuckets + subBuckets)
	return m<<e + (uint64(1)<<e)/2
}

// Record adds one duration.
func (h *Histogram) Record(d time.Duration) {
	if h.counts == nil {
		h.counts = make([]uint64, nBuckets)
	}
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d/time.Microsecond))]++
	h.n++
	h.sum += d
	h.max = max(h.max, d)
}

// Merge adds o's durations.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	if h.counts == nil {
		h.counts = make([]uint64, nBuckets)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// Count is the number of durations recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest duration recorded.
func (h *Histogram) Max() time.Duration { return h.max }

// Mean is the mean duration.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// Quantile returns the q-quantile (0 < q ≤ 1), never above Max.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(bucketValue(i))*time.Microsecond, h.max)
		}
	}
	return h.max
}

// Summary is a histogram's quantiles in milliseconds, for JSON.
type Summary struct {
	Count  uint64  `json:"count"`
	MeanMs float64 `json:"meanMs"`
	P50Ms  float64 `json:"p50Ms"`
	P90Ms  float64 `json:"p90Ms"`
	P99Ms  float64 `json:"p99Ms"`
	MaxMs  float64 `json:"maxMs"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Summary summarises the histogram.
func (h *Histogram) Summary() Summary {
	return Summary{
		Count: h.n, MeanMs: ms(h.Mean()),
		P50Ms: ms(h.Quantile(0.5)), P90Ms: ms(h.Quantile(0.9)), P99Ms: ms(h.Quantile(0.99)), MaxMs: ms(h.max),
	}
}
