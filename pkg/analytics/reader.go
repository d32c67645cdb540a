package analytics

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/sextant-analytics/sextant/pkg/sketch"
)

// Reading many aggregates fast.
//
// UnmarshalAggregate allocates all five sketches of every cell, and merging
// small exact sketches one cell at a time copies the growing set at each
// merge. Over 30 days of hour cells both dominate a report. Values and Acc
// read and merge the same encoding without that: Values.Decode skips the
// sketches no requested metric needs and collects the hashes of exact
// sketches without building a sketch per cell (sketch.Skip,
// sketch.AppendHashes); Acc.Add gathers those hashes per group and adds them
// to the group's sketch in sorted batches, or one by one once it is dense.
// Register sketches are decoded with sketch.Decode and merged. The counts
// equal those of UnmarshalAggregate and Aggregate.Merge
// (TestCellDecodeMatchesAnalytics, FuzzCellDecode).

// Sketch slots of an aggregate, in encoding order.
const (
	SketchUsers           = iota // Aggregate.Users
	SketchActiveUsers            // Aggregate.ActiveUsers
	SketchNewUsers               // Aggregate.NewUsers
	SketchSessions               // Aggregate.Sessions
	SketchEngagedSessions        // Aggregate.EngagedSess
	SketchKeySessions            // Aggregate.KeySessions (version 2)
	SketchPurchasers             // Aggregate.Purchasers (version 2)
	SketchFirstPurchasers        // Aggregate.FirstPurchasers (version 2)
	NumSketches
)

// SketchPrecision is the precision of the sketch in slot i: sessions'
// sketches count sessions, the others users.
func SketchPrecision(i int) uint8 {
	if i == SketchSessions || i == SketchEngagedSessions || i == SketchKeySessions {
		return sketch.SessionsPrecision
	}
	return sketch.UsersPrecision
}

// Need lists the sketch slots a reader needs; Values.Decode skips the
// others, and Acc.Add leaves them empty.
type Need [NumSketches]bool

// Values is one aggregate as Decode reads it: the sums and, for each needed
// sketch, either its hashes or the decoded sketch. A Values is meant to be
// reused from aggregate to aggregate: its buffers are.
type Values struct {
	Events, PageViews, EngagementMsec int64
	Sums                              [NumSums]int64

	hashes  [NumSketches][]uint64       // an exact sketch's hashes
	decoded [NumSketches]*sketch.Sketch // a register sketch
}

// Decode reads the encoding of an Aggregate (as AppendBinary writes it)
// into v, keeping the sketches need lists. It rejects what
// UnmarshalAggregate rejects, with an error that wraps ErrCorrupt, except
// that the sketches it skips are checked only as far as finding their end
// needs.
func (v *Values) Decode(b []byte, need *Need) error {
	for i := range v.hashes {
		v.hashes[i] = v.hashes[i][:0]
		v.decoded[i] = nil
	}
	b, ext, err := readHead(b, &v.Events, &v.PageViews, &v.EngagementMsec, &v.Sums)
	if err != nil {
		return err
	}
	var mask uint64 = 1<<numBase - 1
	for i := range NumSketches {
		if i == numBase {
			if !ext {
				break
			}
			m, n := binary.Uvarint(b)
			if n <= 0 || m >= 1<<(NumSketches-numBase) {
				return ErrCorrupt
			}
			mask |= m << numBase
			b = b[n:]
		}
		if mask&(1<<i) == 0 {
			continue
		}
		p := SketchPrecision(i)
		var err error
		if !need[i] {
			b, err = sketch.Skip(b, p)
		} else {
			var exact bool
			v.hashes[i], b, exact, err = sketch.AppendHashes(v.hashes[i], b, p)
			if err == nil && !exact {
				var s *sketch.Sketch
				s, b, err = sketch.Decode(b)
				if err == nil && s.Precision() != p {
					err = ErrCorrupt
				}
				v.decoded[i] = s
			}
		}
		if err != nil {
			return corrupt(err)
		}
	}
	if len(b) != 0 {
		return ErrCorrupt
	}
	return nil
}

// corrupt makes a sketch's decoding error an ErrCorrupt.
func corrupt(err error) error {
	if err == ErrCorrupt {
		return err
	}
	return fmt.Errorf("%w: %w", ErrCorrupt, err)
}

// Acc accumulates aggregates read by Values.Decode: the sums, and a sketch
// per needed slot. While a slot's sketch is exact (or absent), hashes gather
// in pending and enter the sketch in sorted batches; once it is dense they
// are added directly. The zero value is an empty Acc.
type Acc struct {
	Events, PageViews, EngagementMsec int64
	Sums                              [NumSums]int64

	sk      [NumSketches]*sketch.Sketch
	pending [NumSketches][]uint64
}

// flushAt is how many pending hashes (duplicates included) a slot collects
// before they enter its sketch: one more than the sketch keeps exactly, so
// a batch of distinct hashes that large turns it dense at once.
const flushAt = sketch.ExactLimit + 1

// Add adds v's sums and the sketches of the slots need lists (v must have
// been decoded with them). Call Finish before Estimate.
func (a *Acc) Add(v *Values, need *Need) error {
	a.Events += v.Events
	a.PageViews += v.PageViews
	a.EngagementMsec += v.EngagementMsec
	for i, x := range v.Sums {
		a.Sums[i] += x
	}
	for i := range NumSketches {
		if !need[i] {
			continue
		}
		if s := v.decoded[i]; s != nil {
			if err := a.flush(i); err != nil {
				return err
			}
			if a.sk[i] == nil {
				a.sk[i] = sketch.New(SketchPrecision(i))
			}
			if err := a.sk[i].Merge(s); err != nil {
				return err
			}
			continue
		}
		hs := v.hashes[i]
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
		if len(a.pending[i]) >= flushAt {
			if err := a.flush(i); err != nil {
				return err
			}
		}
	}
	return nil
}

// flush adds slot i's pending hashes to its sketch: sorted and deduplicated
// they build a sketch by appending, which then merges in once.
func (a *Acc) flush(i int) error {
	ps := a.pending[i]
	if len(ps) == 0 {
		return nil
	}
	slices.Sort(ps)
	ps = slices.Compact(ps)
	s := sketch.New(SketchPrecision(i))
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

// Finish adds every slot's pending hashes to its sketch and releases the
// buffers. An Acc must be finished before Estimate, Merge or Absorb read
// it; adding to it afterwards is allowed.
func (a *Acc) Finish() error {
	for i := range NumSketches {
		if err := a.flush(i); err != nil {
			return err
		}
		a.pending[i] = nil
	}
	return nil
}

// Merge adds a finished b into a (for totals); b is left unchanged.
func (a *Acc) Merge(b *Acc) error {
	return a.combine(b, (*sketch.Sketch).Clone)
}

// Absorb adds a finished b into a, taking b's sketches: b must not be used
// again.
func (a *Acc) Absorb(b *Acc) error {
	return a.combine(b, func(s *sketch.Sketch) *sketch.Sketch { return s })
}

func (a *Acc) combine(b *Acc, take func(*sketch.Sketch) *sketch.Sketch) error {
	a.Events += b.Events
	a.PageViews += b.PageViews
	a.EngagementMsec += b.EngagementMsec
	for i, x := range b.Sums {
		a.Sums[i] += x
	}
	for i, s := range b.sk {
		switch {
		case s == nil:
		case a.sk[i] == nil:
			a.sk[i] = take(s)
		default:
			if err := a.sk[i].Merge(s); err != nil {
				return err
			}
		}
	}
	return nil
}

// Estimate is the number of distinct items in slot i of a finished Acc:
// exact up to sketch.ExactLimit. A slot not needed is 0.
func (a *Acc) Estimate(i int) uint64 {
	if a.sk[i] == nil {
		return 0
	}
	return a.sk[i].Estimate()
}
