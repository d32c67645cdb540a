package insights

import (
	"encoding/binary"
	"errors"
	"math/bits"
	"slices"

	"github.com/sextant-analytics/sextant/pkg/analytics"
	"github.com/sextant-analytics/sextant/pkg/sketch"
)

// Reading cells fast.
//
// analytics.UnmarshalAggregate allocates all five sketches of every cell,
// and merging small exact sketches one cell at a time copies the growing
// set at each merge. Over 30 days of hour cells both dominate a report. The
// engine therefore reads aggregates of the encoding it knows (version 1:
// a version byte, three varints, five sketches) itself: it skips the
// sketches that no requested metric needs, collects the hashes of exact
// sketches into the group without building a sketch per cell, and adds them
// straight into the group's sketch once that is dense. Dense cell sketches
// are decoded with sketch.Decode and merged. Any other version is decoded
// by analytics.UnmarshalAggregate. TestCellDecodeMatchesAnalytics checks
// the results against the analytics package on exact and dense data.

// Sketch slots of an aggregate, in encoding order, and their precisions.
const (
	eUsers = iota
	eActive
	eNew
	eSessions
	eEngaged
	numSlots
)

func slotPrecision(i int) uint8 {
	if i >= eSessions {
		return sketch.SessionsPrecision
	}
	return sketch.UsersPrecision
}

const (
	aggregateV1  = 1 // analytics' aggregate encoding this file reads
	sketchExact  = 0 // sketch encodings: sorted delta-varint hashes
	sketchDense  = 1 // one byte per register
	sketchSparse = 2 // non-zero registers: uvarint count, (uvarint gap, byte) each
	sketchPacked = 3 // 4-bit registers, then the registers of 15 or more as in sparse
	sketchSorted = 4 // uvarint count, then sorted hashes, 8 bytes little-endian each
)

var errCorruptCell = errors.New("insights: corrupt aggregate")

// cellValue is one cell's aggregate as the engine reads it: the sums and,
// for each needed sketch, either its hashes or the decoded sketch. Its
// buffers are reused from cell to cell.
type cellValue struct {
	events, views, msec int64
	hashes              [numSlots][]uint64
	decoded             [numSlots]*sketch.Sketch
}

func (cv *cellValue) decode(b []byte, need *[numSlots]bool) error {
	for i := range cv.hashes {
		cv.hashes[i] = cv.hashes[i][:0]
		cv.decoded[i] = nil
	}
	if len(b) < 1 || b[0] != aggregateV1 {
		return cv.decodeOther(b, need)
	}
	b = b[1:]
	var sums [3]int64
	for j := range sums {
		x, n := binary.Varint(b)
		if n <= 0 {
			return errCorruptCell
		}
		sums[j], b = x, b[n:]
	}
	cv.events, cv.views, cv.msec = sums[0], sums[1], sums[2]
	for i := range numSlots {
		if len(b) < 2 || b[1] != slotPrecision(i) {
			return errCorruptCell
		}
		var err error
		switch format := b[0]; {
		case format == sketchExact && need[i]:
			cv.hashes[i], b, err = appendExact(cv.hashes[i], b[2:])
		case format == sketchExact:
			b, err = skipExact(b[2:])
		case format == sketchSorted:
			cv.hashes[i], b, err = readSorted(cv.hashes[i], b[2:], need[i])
		case format == sketchDense && !need[i]:
			m := 1 << b[1]
			if len(b) < 2+m {
				return errCorruptCell
			}
			b = b[2+m:]
		case format == sketchSparse && !need[i]:
			b, err = skipSparse(b[2:])
		case format == sketchPacked && !need[i]:
			m := 1 << b[1]
			if len(b) < 2+m/2 {
				return errCorruptCell
			}
			b, err = skipSparse(b[2+m/2:])
		default:
			var s *sketch.Sketch
			s, b, err = sketch.Decode(b)
			cv.decoded[i] = s
		}
		if err != nil {
			return err
		}
	}
	if len(b) != 0 {
		return errCorruptCell
	}
	return nil
}

// appendExact appends the hashes of an exact sketch's body to hs.
func appendExact(hs []uint64, b []byte) ([]uint64, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return hs, nil, errCorruptCell
	}
	b = b[k:]
	var prev uint64
	for j := uint64(0); j < n; j++ {
		d, k := uvarint(b)
		if k <= 0 || (j > 0 && d == 0) {
			return hs, nil, errCorruptCell
		}
		b = b[k:]
		h := prev + d
		if j > 0 && h <= prev {
			return hs, nil, errCorruptCell
		}
		hs = append(hs, h)
		prev = h
	}
	return hs, b, nil
}

// uvarint is binary.Uvarint with a fast path for 9-byte values, the usual
// length of the gap between two of a small sketch's 64-bit hashes.
func uvarint(b []byte) (uint64, int) {
	if len(b) >= 9 && b[8] < 0x80 {
		u := binary.LittleEndian.Uint64(b)
		if u&0x8080808080808080 == 0x8080808080808080 {
			// Pack eight 7-bit groups into 56 bits, then add the ninth byte.
			x := u & 0x7f7f7f7f7f7f7f7f
			x = x&0x007f007f007f007f | (x&0x7f007f007f007f00)>>1
			x = x&0x00003fff00003fff | (x&0x3fff00003fff0000)>>2
			x = x&0x000000000fffffff | (x&0x0fffffff00000000)>>4
			return x | uint64(b[8])<<56, 9
		}
	}
	return binary.Uvarint(b)
}

// skipExact steps over an exact sketch's body without decoding it, eight
// bytes at a time: a varint ends at each byte without its high bit.
func skipExact(b []byte) ([]byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, errCorruptCell
	}
	b = b[k:]
	i := 0
	for n > 0 && i+8 <= len(b) {
		ends := ^binary.LittleEndian.Uint64(b[i:]) & 0x8080808080808080
		c := uint64(bits.OnesCount64(ends))
		if c >= n {
			break
		}
		n -= c
		i += 8
	}
	for ; n > 0; i++ {
		if i >= len(b) {
			return nil, errCorruptCell
		}
		if b[i] < 0x80 {
			n--
		}
	}
	return b[i:], nil
}

// readSorted appends the hashes of a sorted exact set to hs (when keep is
// set) and returns the bytes after it.
func readSorted(hs []uint64, b []byte, keep bool) ([]uint64, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k)/8 {
		return hs, nil, errCorruptCell
	}
	b = b[k:]
	body, rest := b[:8*n], b[8*n:]
	if !keep {
		return hs, rest, nil
	}
	var prev uint64
	for i := 0; i < len(body); i += 8 {
		h := binary.LittleEndian.Uint64(body[i:])
		if i > 0 && h <= prev {
			return hs, nil, errCorruptCell
		}
		hs = append(hs, h)
		prev = h
	}
	return hs, rest, nil
}

// skipSparse steps over a list of registers: a uvarint count, then a
// uvarint gap and a value byte each.
func skipSparse(b []byte) ([]byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, errCorruptCell
	}
	b = b[k:]
	for range n {
		_, k := binary.Uvarint(b)
		if k <= 0 || len(b) < k+1 {
			return nil, errCorruptCell
		}
		b = b[k+1:]
	}
	return b, nil
}

// decodeOther reads any encoding through the analytics package.
func (cv *cellValue) decodeOther(b []byte, need *[numSlots]bool) error {
	a, err := analytics.UnmarshalAggregate(b)
	if err != nil {
		return err
	}
	cv.events, cv.views, cv.msec = a.Events, a.PageViews, a.EngagementMsec
	for i, s := range [numSlots]*sketch.Sketch{a.Users, a.ActiveUsers, a.NewUsers, a.Sessions, a.EngagedSess} {
		if need[i] {
			cv.decoded[i] = s
		}
	}
	return nil
}

// acc accumulates one row's aggregate. While a slot's sketch is exact (or
// absent), hashes gather in pending and enter the sketch in sorted batches;
// once the sketch is dense they are added directly.
type acc struct {
	events, views, msec int64
	sk                  [numSlots]*sketch.Sketch
	pending             [numSlots][]uint64
}

// flushAt is how many pending hashes a slot collects before they are added:
// twice the point where the slot's sketch turns dense.
func flushAt(i int) int { return (1<<slotPrecision(i))/8 + 1 }

func (a *acc) add(cv *cellValue, need *[numSlots]bool) error {
	a.events += cv.events
	a.views += cv.views
	a.msec += cv.msec
	for i := range numSlots {
		if !need[i] {
			continue
		}
		if s := cv.decoded[i]; s != nil {
			if err := a.flush(i); err != nil {
				return err
			}
			if a.sk[i] == nil {
				a.sk[i] = sketch.New(slotPrecision(i))
			}
			if err := a.sk[i].Merge(s); err != nil {
				return err
			}
			continue
		}
		hs := cv.hashes[i]
		if len(hs) == 0 {
			continue
		}
		if s := a.sk[i]; s != nil && !s.Exact() {
			for _, h := range hs {
				s.Add(h)
			}
			continue
		}
		a.pending[i] = append(a.pending[i], hs...)
		if len(a.pending[i]) >= flushAt(i) {
			if err := a.flush(i); err != nil {
				return err
			}
		}
	}
	return nil
}

// flush adds slot i's pending hashes to its sketch: sorted and deduplicated
// they build a sketch by appending, which then merges in once.
func (a *acc) flush(i int) error {
	ps := a.pending[i]
	if len(ps) == 0 {
		return nil
	}
	slices.Sort(ps)
	ps = slices.Compact(ps)
	s := sketch.New(slotPrecision(i))
	for _, h := range ps {
		s.Add(h)
	}
	a.pending[i] = ps[:0]
	if a.sk[i] == nil {
		a.sk[i] = s
		return nil
	}
	return a.sk[i].Merge(s)
}

// finish flushes every slot and releases the buffers.
func (a *acc) finish() error {
	for i := range numSlots {
		if err := a.flush(i); err != nil {
			return err
		}
		a.pending[i] = nil
	}
	return nil
}

// merge adds a finished b into a (for totals).
func (a *acc) merge(b *acc) error {
	a.events += b.events
	a.views += b.views
	a.msec += b.msec
	for i, s := range b.sk {
		switch {
		case s == nil:
		case a.sk[i] == nil:
			a.sk[i] = s.Clone()
		default:
			if err := a.sk[i].Merge(s); err != nil {
				return err
			}
		}
	}
	return nil
}

// absorb adds a finished b into a, taking b's sketches: b is not used again.
func (a *acc) absorb(b *acc) error {
	a.events += b.events
	a.views += b.views
	a.msec += b.msec
	for i, s := range b.sk {
		switch {
		case s == nil:
		case a.sk[i] == nil:
			a.sk[i] = s
		default:
			if err := a.sk[i].Merge(s); err != nil {
				return err
			}
		}
	}
	return nil
}

// estimate is the number of distinct items in slot i.
func (a *acc) estimate(i int) uint64 {
	if a.sk[i] == nil {
		return 0
	}
	return a.sk[i].Estimate()
}
