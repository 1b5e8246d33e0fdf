package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// subBits sets the precision of Histogram: 2^subBits buckets per power of
// two, so a reported quantile is within 1/2^subBits (0.8%) of the truth.
const subBits = 7

const (
	subCount = 1 << subBits
	nBuckets = (64 - subBits + 1) * subCount
)

// Histogram is a log-linear latency histogram in the spirit of HdrHistogram:
// fixed memory (about 60 KiB), constant-time Record, bounded relative error.
// The zero value is ready to use; it is not safe for concurrent use (give
// each worker its own and Merge them).
type Histogram struct {
	counts   [nBuckets]uint64
	n        uint64
	sum      float64
	min, max int64
}

// bucketOf maps a non-negative value to its bucket: values below subCount
// have their own bucket, larger ones keep their top subBits+1 bits.
func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1
	return (shift+1)*subCount + int(v>>shift) - subCount //nolint:gosec // v>>shift has subBits+1 bits.
}

// bucketMid returns the middle of bucket i's value range.
func bucketMid(i int) float64 {
	if i < subCount {
		return float64(i)
	}
	shift := i/subCount - 1
	lo := uint64(subCount+i%subCount) << shift //nolint:gosec // i is a bucket index, never negative.
	return float64(lo) + float64(uint64(1)<<shift)/2
}

// Record adds one observation.
func (h *Histogram) Record(d time.Duration) {
	v := max(int64(d), 0)
	h.counts[bucketOf(uint64(v))]++ //nolint:gosec // v >= 0, clamped above.
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
}

// Merge adds every observation of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range &o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Count returns the number of observations.
func (h *Histogram) Count() uint64 { return h.n }

// Mean returns the exact mean.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// Max returns the exact maximum.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Quantile returns the value at quantile q (0 < q ≤ 1): the observation of
// rank ceil(q·n), to within the bucket precision, clamped to [min, max].
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range &h.counts {
		seen += c
		if seen >= rank {
			v := int64(bucketMid(i))
			return time.Duration(min(max(v, h.min), h.max))
		}
	}
	return time.Duration(h.max)
}
