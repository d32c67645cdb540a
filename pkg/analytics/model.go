// Package analytics is the shared analytics model: the aggregate the read
// models hold for each time bucket and dimension values (counters and
// distinct-count sketches), its encoding, how aggregates merge, and the
// fast reader reports use (reader.go). The projection builds aggregates
// from events; InsightsService merges them into reports. Which dimensions
// are stored is pkg/catalog's; how aggregates are laid out in stored
// blocks, pkg/block's.
package analytics

import (
	"encoding/binary"
	"errors"
	"strings"

	"github.com/sextant-analytics/sextant/pkg/sketch"
)

// Clean makes a value safe for a stored dimension value: control characters are
// dropped and the value is cut at max bytes (on a rune boundary).
func Clean(s string, max int) string {
	if strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		s = strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f {
				return -1
			}
			return r
		}, s)
	}
	if len(s) > max {
		s = s[:max]
		for len(s) > 0 && !utf8Start(s[len(s)-1]) {
			s = s[:len(s)-1]
		}
		if len(s) > 0 && s[len(s)-1] >= 0xC0 {
			s = s[:len(s)-1]
		}
	}
	return s
}

func utf8Start(b byte) bool { return b < 0x80 || b >= 0xC0 }

// Sums of an aggregate beyond its events, views and engagement time
// (encoding version 2 on): ecommerce, key events and session time. Amounts
// are micro-units of the property's currency.
const (
	SumSessionSeconds   = iota // seconds by which events extended their sessions: Σ session durations
	SumKeyEvents               // events marked as key events
	SumPurchaseRevenue         // value of purchases (purchase, in_app_purchase), less refunds
	SumTotalRevenue            // purchase revenue, subscriptions and ad revenue
	SumPurchases               // purchase events (ecommercePurchases)
	SumTransactions            // purchase events with a transaction_id
	SumCheckouts               // begin_checkout events
	SumAddToCarts              // add_to_cart events
	SumItemsViewed             // units of the items of view_item events
	SumItemRevenue             // price × quantity of the items of purchase events
	SumItemsPurchased          // units of the items of purchase events
	SumCustom                  // a custom metric's value, in custom sections (micro-units)
	SumItemsAddedToCart        // units of the items of add_to_cart events
	NumSums
)

// Aggregate is what one cell holds.
type Aggregate struct {
	Events         int64
	PageViews      int64
	EngagementMsec int64
	Sums           [NumSums]int64
	Users          *sketch.Sketch // every user with an event
	ActiveUsers    *sketch.Sketch // users engaged, new, or with engagement time
	NewUsers       *sketch.Sketch // users with first_visit or first_open
	Sessions       *sketch.Sketch
	EngagedSess    *sketch.Sketch
	// From encoding version 2 on; nil until something is counted in them.
	KeySessions     *sketch.Sketch // sessions with a key event
	Purchasers      *sketch.Sketch // users with a purchase
	FirstPurchasers *sketch.Sketch // users whose first purchase it was

	// spare is where Extra makes the version-2 sketches of an arena's
	// aggregate (nil: allocated).
	spare *[NumSketches - numBase]sketch.Sketch
}

// NewAggregate returns an empty aggregate.
func NewAggregate() *Aggregate {
	return &Aggregate{
		Users:       sketch.New(sketch.UsersPrecision),
		ActiveUsers: sketch.New(sketch.UsersPrecision),
		NewUsers:    sketch.New(sketch.UsersPrecision),
		Sessions:    sketch.New(sketch.SessionsPrecision),
		EngagedSess: sketch.New(sketch.SessionsPrecision),
	}
}

// numBase is how many sketches encoding version 1 holds.
const numBase = 5

func (a *Aggregate) sketches() [NumSketches]**sketch.Sketch {
	return [NumSketches]**sketch.Sketch{&a.Users, &a.ActiveUsers, &a.NewUsers, &a.Sessions, &a.EngagedSess,
		&a.KeySessions, &a.Purchasers, &a.FirstPurchasers}
}

// Extra returns the sketch of version-2 slot i (SketchKeySessions …),
// created when still nil.
func (a *Aggregate) Extra(i int) *sketch.Sketch {
	p := a.sketches()[i]
	if *p == nil {
		if a.spare != nil {
			s := &a.spare[i-numBase]
			s.Reset(SketchPrecision(i), nil, keepHashes)
			*p = s
		} else {
			*p = sketch.New(SketchPrecision(i))
		}
	}
	return *p
}

// Merge adds b into a.
func (a *Aggregate) Merge(b *Aggregate) error { return a.MergeBuf(b, nil) }

// MergeBuf is Merge reusing *buf for the merged exact sets (see
// sketch.Sketch.MergeBuf); nil allocates.
func (a *Aggregate) MergeBuf(b *Aggregate, buf *[]uint64) error {
	a.Events += b.Events
	a.PageViews += b.PageViews
	a.EngagementMsec += b.EngagementMsec
	for i := range a.Sums {
		a.Sums[i] += b.Sums[i]
	}
	as, bs := a.sketches(), b.sketches()
	for i := range as {
		switch {
		case *bs[i] == nil:
		case *as[i] == nil:
			*as[i] = (*bs[i]).Clone()
		default:
			if err := (*as[i]).MergeBuf(*bs[i], buf); err != nil {
				return err
			}
		}
	}
	return nil
}

// Clone returns an independent copy.
func (a *Aggregate) Clone() *Aggregate {
	c := &Aggregate{Events: a.Events, PageViews: a.PageViews, EngagementMsec: a.EngagementMsec, Sums: a.Sums}
	cs, as := c.sketches(), a.sketches()
	for i := range cs {
		if *as[i] != nil {
			*cs[i] = (*as[i]).Clone()
		}
	}
	return c
}

// Encoding versions: version 1 holds the three counters and the five
// base sketches; version 2 adds, after the counters, a bit set of the sums
// present and their values, and after the base sketches a bit set of the
// extra sketches present and their encodings. An aggregate with no sums
// and no extra sketches is written as version 1, byte for byte what it was
// before version 2 existed.
const (
	aggregateVersion  = 1
	aggregateVersion2 = 2
)

// extended reports whether a needs encoding version 2.
func (a *Aggregate) extended() bool {
	for _, v := range a.Sums {
		if v != 0 {
			return true
		}
	}
	sk := a.sketches()
	for _, s := range sk[numBase:] {
		if *s != nil && !(*s).Empty() {
			return true
		}
	}
	return false
}

// MarshalBinary encodes the aggregate.
func (a *Aggregate) MarshalBinary() ([]byte, error) {
	return a.AppendBinary(make([]byte, 0, a.SizeHint()))
}

// SizeHint is about the size of the aggregate's encoding, at least.
func (a *Aggregate) SizeHint() int {
	n := 1 + (3+NumSums+2)*binary.MaxVarintLen64
	for _, s := range a.sketches() {
		if *s != nil {
			n += (*s).SizeHint()
		}
	}
	return n
}

// AppendBinary appends the aggregate's encoding to b.
func (a *Aggregate) AppendBinary(b []byte) ([]byte, error) {
	ext := a.extended()
	if ext {
		b = append(b, aggregateVersion2)
	} else {
		b = append(b, aggregateVersion)
	}
	b = binary.AppendVarint(b, a.Events)
	b = binary.AppendVarint(b, a.PageViews)
	b = binary.AppendVarint(b, a.EngagementMsec)
	if ext {
		var mask uint64
		for i, v := range a.Sums {
			if v != 0 {
				mask |= 1 << i
			}
		}
		b = binary.AppendUvarint(b, mask)
		for _, v := range a.Sums {
			if v != 0 {
				b = binary.AppendVarint(b, v)
			}
		}
	}
	var err error
	sk := a.sketches()
	for _, s := range sk[:numBase] {
		if b, err = (*s).AppendBinary(b); err != nil {
			return nil, err
		}
	}
	if !ext {
		return b, nil
	}
	var mask uint64
	for i, s := range sk[numBase:] {
		if *s != nil && !(*s).Empty() {
			mask |= 1 << i
		}
	}
	b = binary.AppendUvarint(b, mask)
	for i, s := range sk[numBase:] {
		if mask&(1<<i) != 0 {
			if b, err = (*s).AppendBinary(b); err != nil {
				return nil, err
			}
		}
	}
	return b, nil
}

// ErrCorrupt is the error of an aggregate's encoding that does not decode.
var ErrCorrupt = errors.New("analytics: corrupt aggregate")

// UnmarshalAggregate decodes an aggregate.
func UnmarshalAggregate(b []byte) (*Aggregate, error) {
	a := &Aggregate{}
	if err := a.UnmarshalFrom(b); err != nil {
		return nil, err
	}
	return a, nil
}

// UnmarshalFrom decodes an aggregate into a, reusing its sketches' memory.
func (a *Aggregate) UnmarshalFrom(b []byte) error {
	b, ext, err := readHead(b, &a.Events, &a.PageViews, &a.EngagementMsec, &a.Sums)
	if err != nil {
		return err
	}
	sk := a.sketches()
	decode := func(i int) error {
		s := sk[i]
		if *s == nil {
			*s = &sketch.Sketch{}
		}
		rest, err := (*s).DecodeFrom(b)
		if err != nil {
			return err
		}
		if (*s).Precision() != SketchPrecision(i) {
			return ErrCorrupt
		}
		b = rest
		return nil
	}
	for i := range numBase {
		if err := decode(i); err != nil {
			return err
		}
	}
	var mask uint64
	if ext {
		m, n := binary.Uvarint(b)
		if n <= 0 || m >= 1<<(NumSketches-numBase) {
			return ErrCorrupt
		}
		mask, b = m, b[n:]
	}
	for i := numBase; i < NumSketches; i++ {
		if mask&(1<<(i-numBase)) == 0 {
			*sk[i] = nil
			continue
		}
		if err := decode(i); err != nil {
			return err
		}
	}
	if len(b) != 0 {
		return ErrCorrupt
	}
	return nil
}

// readHead reads an encoding's version, counters and (version 2) sums,
// returning the rest and whether it is version 2.
func readHead(b []byte, events, views, engage *int64, sums *[NumSums]int64) ([]byte, bool, error) {
	if len(b) < 1 || (b[0] != aggregateVersion && b[0] != aggregateVersion2) {
		return nil, false, ErrCorrupt
	}
	ext := b[0] == aggregateVersion2
	b = b[1:]
	for _, v := range [3]*int64{events, views, engage} {
		x, n := binary.Varint(b)
		if n <= 0 {
			return nil, false, ErrCorrupt
		}
		*v, b = x, b[n:]
	}
	*sums = [NumSums]int64{}
	if !ext {
		return b, false, nil
	}
	mask, n := binary.Uvarint(b)
	if n <= 0 || mask >= 1<<NumSums {
		return nil, false, ErrCorrupt
	}
	b = b[n:]
	for i := range NumSums {
		if mask&(1<<i) == 0 {
			continue
		}
		x, n := binary.Varint(b)
		if n <= 0 || x == 0 {
			return nil, false, ErrCorrupt
		}
		sums[i], b = x, b[n:]
	}
	return b, true, nil
}
