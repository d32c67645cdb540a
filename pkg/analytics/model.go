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

// Aggregate is what one cell holds.
type Aggregate struct {
	Events         int64
	PageViews      int64
	EngagementMsec int64
	Users          *sketch.Sketch // every user with an event
	ActiveUsers    *sketch.Sketch // users engaged, new, or with engagement time
	NewUsers       *sketch.Sketch // users with first_visit or first_open
	Sessions       *sketch.Sketch
	EngagedSess    *sketch.Sketch
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

func (a *Aggregate) sketches() [5]**sketch.Sketch {
	return [5]**sketch.Sketch{&a.Users, &a.ActiveUsers, &a.NewUsers, &a.Sessions, &a.EngagedSess}
}

// Merge adds b into a.
func (a *Aggregate) Merge(b *Aggregate) error { return a.MergeBuf(b, nil) }

// MergeBuf is Merge reusing *buf for the merged exact sets (see
// sketch.Sketch.MergeBuf); nil allocates.
func (a *Aggregate) MergeBuf(b *Aggregate, buf *[]uint64) error {
	a.Events += b.Events
	a.PageViews += b.PageViews
	a.EngagementMsec += b.EngagementMsec
	as, bs := a.sketches(), b.sketches()
	for i := range as {
		if err := (*as[i]).MergeBuf(*bs[i], buf); err != nil {
			return err
		}
	}
	return nil
}

// Clone returns an independent copy.
func (a *Aggregate) Clone() *Aggregate {
	c := &Aggregate{Events: a.Events, PageViews: a.PageViews, EngagementMsec: a.EngagementMsec}
	cs, as := c.sketches(), a.sketches()
	for i := range cs {
		*cs[i] = (*as[i]).Clone()
	}
	return c
}

const aggregateVersion = 1

// MarshalBinary encodes the aggregate.
func (a *Aggregate) MarshalBinary() ([]byte, error) {
	return a.AppendBinary(make([]byte, 0, a.SizeHint()))
}

// SizeHint is about the size of the aggregate's encoding, at least.
func (a *Aggregate) SizeHint() int {
	n := 1 + 3*binary.MaxVarintLen64
	for _, s := range a.sketches() {
		n += (*s).SizeHint()
	}
	return n
}

// AppendBinary appends the aggregate's encoding to b.
func (a *Aggregate) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, aggregateVersion)
	b = binary.AppendVarint(b, a.Events)
	b = binary.AppendVarint(b, a.PageViews)
	b = binary.AppendVarint(b, a.EngagementMsec)
	var err error
	for _, s := range a.sketches() {
		if b, err = (*s).AppendBinary(b); err != nil {
			return nil, err
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
	if len(b) < 1 || b[0] != aggregateVersion {
		return ErrCorrupt
	}
	b = b[1:]
	for _, v := range [3]*int64{&a.Events, &a.PageViews, &a.EngagementMsec} {
		x, n := binary.Varint(b)
		if n <= 0 {
			return ErrCorrupt
		}
		*v, b = x, b[n:]
	}
	want := [5]uint8{sketch.UsersPrecision, sketch.UsersPrecision, sketch.UsersPrecision, sketch.SessionsPrecision, sketch.SessionsPrecision}
	for i, s := range a.sketches() {
		if *s == nil {
			*s = &sketch.Sketch{}
		}
		rest, err := (*s).DecodeFrom(b)
		if err != nil {
			return err
		}
		if (*s).Precision() != want[i] {
			return ErrCorrupt
		}
		b = rest
	}
	if len(b) != 0 {
		return ErrCorrupt
	}
	return nil
}
