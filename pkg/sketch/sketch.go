// Package sketch provides a mergeable distinct-count sketch: an exact set of
// 64-bit hashes up to ExactLimit of them, a HyperLogLog with Ertl's improved
// estimator once it grows past that. Sketches of the same precision merge
// across time buckets and partitions, and a merge whose union holds at most
// ExactLimit hashes stays exact.
package sketch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
)

// Precisions used by the analytics model, as GA4 does: users p=14
// (σ ≈ 0.81 %), sessions p=12 (σ ≈ 1.63 %).
const (
	UsersPrecision    = 14
	SessionsPrecision = 12
)

// Encodings. Registers are written in whichever of the three register
// encodings is smallest: a sketch just past its exact set has mostly empty
// registers (sparse), a large one mostly small values (packed, half a
// byte per register); dense is the plain array, still read.
const (
	formatExact  = 0 // uvarint n, then n sorted hashes as uvarint gaps
	formatDense  = 1 // 2^p bytes, one per register
	formatSparse = 2 // uvarint n, then n non-zero registers: uvarint index gap, byte value
	formatPacked = 3 // 2^(p-1) bytes of 4-bit registers (15 = 15 or more), then the registers of 15 or more as in sparse
	// formatSorted is how exact sets are written: uvarint n, then the n
	// sorted hashes, 8 bytes little-endian each. The gaps of formatExact
	// (still read) take as many bytes (random 64-bit hashes leave gaps of
	// 2^64/n), and copying is several times cheaper than varints.
	formatSorted = 4
)

// Sketch counts distinct 64-bit hashes. The zero value is not usable; use New.
type Sketch struct {
	p     uint8
	exact []uint64 // sorted, unique; nil once dense
	// tail holds the latest hashes of an exact sketch, unsorted, in none
	// of exact and at most tailLen of them: they enter exact together, in
	// one merge, instead of one insertion (moving half the set) each.
	tail []uint64
	regs []uint8 // 2^p registers; nil while exact
}

// tailLen is how many hashes wait in the tail before they are merged.
const tailLen = 32

// smallSet is the size up to which hashes go straight into the sorted set:
// below it an insertion moves at most a few words, and the sketch holds no
// tail.
const smallSet = 16

// New returns an empty sketch of precision p (4..18).
func New(p uint8) *Sketch {
	if p < 4 || p > 18 {
		panic(fmt.Sprintf("sketch: precision %d out of range", p))
	}
	return &Sketch{p: p}
}

// Reset makes s an empty sketch of precision p (4..18) that keeps its
// memory for the hashes it will hold: the exact set's while its capacity
// is at most keep hashes (else buf's, which may be nil), its tail's, and
// no registers. It is how an aggregate arena reuses sketches; s must not
// share its set's memory with another sketch still in use.
func (s *Sketch) Reset(p uint8, buf []uint64, keep int) {
	if p < 4 || p > 18 {
		panic(fmt.Sprintf("sketch: precision %d out of range", p))
	}
	exact := s.exact[:0]
	if cap(exact) == 0 || cap(exact) > keep {
		exact = buf[:0]
	}
	*s = Sketch{p: p, exact: exact, tail: s.tail[:0]}
}

// Precision reports the sketch's precision.
func (s *Sketch) Precision() uint8 { return s.p }

// ExactLimit is the number of distinct hashes a sketch of any precision
// counts exactly: past it the sketch switches to registers. Small counts are
// the ones a merchant checks against other sources, so they are exact even
// where the set costs more than the registers (4,096 hashes are 32 KiB,
// against 16 KiB of registers at p=14 and 4 KiB at p=12).
const ExactLimit = 4096

// Add adds one hashed item.
func (s *Sketch) Add(h uint64) {
	if s.regs != nil {
		s.addDense(h)
		return
	}
	i, found := slices.BinarySearch(s.exact, h)
	if found || slices.Contains(s.tail, h) {
		return
	}
	if len(s.exact) < smallSet && len(s.tail) == 0 {
		// Most cells see a handful of users: a sorted insertion into a
		// few words costs less than the tail's 256 bytes per sketch.
		if len(s.exact) == cap(s.exact) {
			// Grow by at least 8: sets of a few hashes are the most
			// common, and growing 1, 2, 4, 8 was most of the
			// projection's allocations.
			s.exact = slices.Grow(s.exact, max(len(s.exact), 8))
		}
		s.exact = slices.Insert(s.exact, i, h)
		return
	}
	if s.tail == nil {
		s.tail = make([]uint64, 0, tailLen)
	}
	s.tail = append(s.tail, h)
	if len(s.tail) == tailLen || len(s.exact)+len(s.tail) > ExactLimit {
		s.settle()
	}
}

// settle merges the tail into the sorted set, in place from the end, and
// turns the sketch dense when the set outgrew ExactLimit.
func (s *Sketch) settle() {
	if len(s.tail) == 0 {
		return
	}
	slices.Sort(s.tail)
	i, j := len(s.exact)-1, len(s.tail)-1
	s.exact = slices.Grow(s.exact, len(s.tail))[:len(s.exact)+len(s.tail)]
	for k := len(s.exact) - 1; j >= 0; k-- {
		if i >= 0 && s.exact[i] > s.tail[j] {
			s.exact[k] = s.exact[i]
			i--
		} else {
			s.exact[k] = s.tail[j]
			j--
		}
	}
	s.tail = s.tail[:0]
	if len(s.exact) > ExactLimit {
		s.toDense()
	}
}

func (s *Sketch) addDense(h uint64) {
	idx := h >> (64 - s.p)
	w := h<<s.p | 1<<(s.p-1)
	r := uint8(bits.LeadingZeros64(w)) + 1
	if r > s.regs[idx] {
		s.regs[idx] = r
	}
}

func (s *Sketch) toDense() {
	s.regs = make([]uint8, 1<<s.p)
	for _, h := range s.exact {
		s.addDense(h)
	}
	for _, h := range s.tail {
		s.addDense(h)
	}
	s.exact, s.tail = nil, nil
}

// Merge adds every item of o into s. Both must have the same precision.
func (s *Sketch) Merge(o *Sketch) error { return s.MergeBuf(o, nil) }

// MergeBuf is Merge with *buf as the memory of the merged exact set: s's
// old set becomes the new *buf, so that merging many sketches in turn
// allocates only while the set grows. A nil buf allocates.
func (s *Sketch) MergeBuf(o *Sketch, buf *[]uint64) error {
	if o == nil {
		return nil
	}
	if o.p != s.p {
		return fmt.Errorf("sketch: merge precision %d into %d", o.p, s.p)
	}
	s.settle()
	o.settle()
	switch {
	case o.regs != nil:
		if s.regs == nil {
			s.toDense()
		}
		for i, r := range o.regs {
			if r > s.regs[i] {
				s.regs[i] = r
			}
		}
	case s.regs != nil:
		for _, h := range o.exact {
			s.addDense(h)
		}
	default:
		var dst []uint64
		if buf != nil {
			dst = (*buf)[:0]
		}
		merged := mergeSorted(dst, s.exact, o.exact)
		if buf != nil {
			*buf = s.exact
		}
		s.exact = merged
		if len(s.exact) > ExactLimit {
			s.toDense()
		}
	}
	return nil
}

// mergeSorted appends the union of the sorted sets a and b to out[:0]
// (which must share no memory with them).
func mergeSorted(out, a, b []uint64) []uint64 {
	out = slices.Grow(out[:0], len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] < b[j]:
			out = append(out, a[i])
			i++
		case a[i] > b[j]:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// Clone returns an independent copy.
func (s *Sketch) Clone() *Sketch {
	s.settle()
	return &Sketch{p: s.p, exact: slices.Clone(s.exact), regs: slices.Clone(s.regs)}
}

// Empty reports whether s has counted nothing.
func (s *Sketch) Empty() bool { return s.regs == nil && len(s.exact) == 0 && len(s.tail) == 0 }

// Exact reports whether the estimate is an exact count.
func (s *Sketch) Exact() bool { return s.regs == nil }

// Estimate returns the number of distinct items: exact while small, else
// Ertl's improved raw estimator ("New cardinality estimation algorithms for
// HyperLogLog sketches", 2017), which needs no bias-correction tables.
func (s *Sketch) Estimate() uint64 {
	if s.regs == nil {
		return uint64(len(s.exact) + len(s.tail))
	}
	q := 64 - int(s.p)
	m := float64(len(s.regs))
	counts := make([]float64, q+2)
	for _, r := range s.regs {
		counts[r]++
	}
	z := m * tau(1-counts[q+1]/m)
	for k := q; k >= 1; k-- {
		z = 0.5 * (z + counts[k])
	}
	z += m * sigma(counts[0]/m)
	return uint64(math.Round(m * m / (2 * math.Ln2) / z))
}

func sigma(x float64) float64 {
	if x == 1 {
		return math.Inf(1)
	}
	y, z := 1.0, x
	for {
		x *= x
		prev := z
		z += x * y
		y += y
		if z == prev {
			return z
		}
	}
}

func tau(x float64) float64 {
	if x == 0 || x == 1 {
		return 0
	}
	y, z := 1.0, 1-x
	for {
		x = math.Sqrt(x)
		prev := z
		y *= 0.5
		z -= (1 - x) * (1 - x) * y
		if z == prev {
			return z / 3
		}
	}
}

// MarshalBinary encodes the sketch: exact sets as sorted 8-byte hashes,
// registers in the smallest of their encodings.
func (s *Sketch) MarshalBinary() ([]byte, error) { return s.AppendBinary(nil) }

// SizeHint is about the size of the sketch's encoding: exact sets take
// up to nine bytes a hash, registers at most one byte each.
func (s *Sketch) SizeHint() int {
	if s.regs != nil {
		return 2 + len(s.regs)
	}
	return 2 + binary.MaxVarintLen64 + 9*(len(s.exact)+len(s.tail))
}

// AppendBinary appends the encoding of s to b.
func (s *Sketch) AppendBinary(b []byte) ([]byte, error) {
	s.settle()
	if s.regs != nil {
		return s.appendRegisters(b), nil
	}
	b = append(b, formatSorted, s.p)
	b = binary.AppendUvarint(b, uint64(len(s.exact)))
	for _, h := range s.exact {
		b = binary.LittleEndian.AppendUint64(b, h)
	}
	return b, nil
}

// appendRegisters writes the registers in their smallest encoding.
func (s *Sketch) appendRegisters(b []byte) []byte {
	m := len(s.regs)
	nonZero, big := 0, 0
	for _, r := range s.regs {
		if r != 0 {
			nonZero++
			if r >= 15 {
				big++
			}
		}
	}
	// A sparse entry takes two bytes when the gap to the previous one is
	// under 128 registers, which it is on average while under m/128 are
	// set; three bytes bound it otherwise.
	sparse := 2 * nonZero
	if nonZero < m/128 {
		sparse = 3 * nonZero
	}
	packed := m/2 + 3*big
	switch {
	case sparse <= packed && sparse < m:
		b = append(b, formatSparse, s.p)
		return appendSparse(b, s.regs, nonZero, 1)
	case packed < m:
		b = append(b, formatPacked, s.p)
		for i := 0; i < m; i += 2 {
			b = append(b, min(s.regs[i], 15)|min(s.regs[i+1], 15)<<4)
		}
		return appendSparse(b, s.regs, big, 15)
	}
	b = append(b, formatDense, s.p)
	return append(b, s.regs...)
}

// appendSparse writes the n registers of at least floor as index gaps and
// values.
func appendSparse(b []byte, regs []uint8, n int, floor uint8) []byte {
	b = binary.AppendUvarint(b, uint64(n))
	prev := -1
	for i, r := range regs {
		if r >= floor {
			b = binary.AppendUvarint(b, uint64(i-prev))
			b = append(b, r)
			prev = i
		}
	}
	return b
}

// readSparse sets the registers listed in b (as appendSparse writes them,
// values at least floor) and returns the bytes after the list.
func readSparse(b []byte, regs []uint8, floor, maxRank uint8) ([]byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(regs)) {
		return nil, errCorrupt
	}
	b = b[k:]
	idx := -1
	for range n {
		gap, k := binary.Uvarint(b)
		if k <= 0 || gap == 0 || gap > uint64(len(regs)-1-idx) || len(b) < k+1 {
			return nil, errCorrupt
		}
		idx += int(gap)
		r := b[k]
		if r < floor || r > maxRank {
			return nil, errCorrupt
		}
		regs[idx] = r
		b = b[k+1:]
	}
	return b, nil
}

var errCorrupt = errors.New("sketch: corrupt encoding")

// Decode decodes one sketch from b and returns the bytes after it.
func Decode(b []byte) (*Sketch, []byte, error) {
	s := &Sketch{}
	rest, err := s.DecodeFrom(b)
	if err != nil {
		return nil, nil, err
	}
	return s, rest, nil
}

// DecodeFrom decodes one sketch from b into s, reusing s's memory, and
// returns the bytes after it. On error s is left empty or partly set.
func (s *Sketch) DecodeFrom(b []byte) ([]byte, error) {
	if len(b) < 2 {
		return nil, errCorrupt
	}
	format, p := b[0], b[1]
	if p < 4 || p > 18 {
		return nil, errCorrupt
	}
	b = b[2:]
	regs, exact := s.regs, s.exact
	*s = Sketch{p: p, tail: s.tail[:0]}
	m := 1 << p
	zeroRegs := func() []uint8 {
		if cap(regs) >= m {
			regs = regs[:m]
			clear(regs)
			return regs
		}
		return make([]uint8, m)
	}
	switch format {
	case formatDense:
		if len(b) < m {
			return nil, errCorrupt
		}
		s.regs = append(regs[:0], b[:m]...)
		for _, r := range s.regs {
			if int(r) > 64-int(p)+1 {
				return nil, errCorrupt
			}
		}
		return b[m:], nil
	case formatSparse:
		s.regs = zeroRegs()
		return readSparse(b, s.regs, 1, 64-p+1)
	case formatPacked:
		if len(b) < m/2 {
			return nil, errCorrupt
		}
		s.regs = zeroRegs()
		for i, x := range b[:m/2] {
			s.regs[2*i], s.regs[2*i+1] = x&15, x>>4
		}
		// Registers of 15 or more are listed again with their value;
		// a listed one must show 15 in the nibbles and vice versa.
		rest, err := readSparse(b[m/2:], s.regs, 15, 64-p+1)
		if err != nil {
			return nil, err
		}
		for i, x := range b[:m/2] {
			if (x&15 == 15) != (s.regs[2*i] >= 15) || (x>>4 == 15) != (s.regs[2*i+1] >= 15) {
				return nil, errCorrupt
			}
		}
		return rest, nil
	case formatSorted, formatExact:
		var err error
		if format == formatSorted {
			s.exact, b, err = readSorted(exact[:0], b, true)
		} else {
			s.exact, b, err = appendGaps(exact[:0], b)
		}
		if err != nil {
			return nil, err
		}
		if len(s.exact) > ExactLimit {
			s.toDense()
		}
		return b, nil
	}
	return nil, errCorrupt
}
