// Package block owns the encoding of Sextant's read model: a block holds
// partial aggregates (analytics.Aggregate) of one property over one period,
// laid out in sections, one per rollup and grain, so that a report decodes
// only the sections it needs. The projection writes a block per checkpoint
// and property hour (an addition), the compactor merges them into hour and
// day blocks, and InsightsService reads them: all three through this
// package, which has the only encoder and decoder of the format.
//
// # Dimensions as data
//
// A section is named by its grain and the names of its dimensions, in
// order (Section); an entry holds a time bucket, the values of the
// section's dimensions joined by Sep, and an aggregate. Nothing in the
// format numbers dimensions or rollups: adding a dimension or a rollup to
// a projection's layout adds a section to the blocks it writes, and leaves
// every stored byte of other layouts as it is.
//
// # Encoding
//
// See format.go.
package block

import (
	"strings"
)

// Grain is the width of a section's time buckets.
type Grain uint8

const (
	Minute Grain = 1
	Hour   Grain = 2
	Day    Grain = 3
)

// Seconds is the grain's width.
func (g Grain) Seconds() int64 {
	switch g {
	case Minute:
		return 60
	case Hour:
		return 3600
	case Day:
		return 86400
	}
	return 0
}

// Floor is the start of the grain's bucket holding t (Unix seconds, UTC).
func (g Grain) Floor(t int64) int64 {
	w := g.Seconds()
	m := t % w
	if m < 0 {
		m += w
	}
	return t - m
}

func (g Grain) String() string {
	switch g {
	case Minute:
		return "minute"
	case Hour:
		return "hour"
	case Day:
		return "day"
	}
	return "grain?"
}

// Section names a section: the grain of its entries and its dimensions.
type Section struct {
	Grain Grain
	Dims  []string
}

// Equal reports whether s and o name the same section.
func (s Section) Equal(o Section) bool {
	if s.Grain != o.Grain || len(s.Dims) != len(o.Dims) {
		return false
	}
	for i := range s.Dims {
		if s.Dims[i] != o.Dims[i] {
			return false
		}
	}
	return true
}

// Layout is the sections a projection writes, in the order it writes them.
type Layout []Section

// Sep separates dimension values in an entry's key. Values never hold it
// (analytics.Clean drops control characters).
const Sep = "\x1f"

// JoinDims is the entry key of dimension values.
func JoinDims(vals ...string) string { return strings.Join(vals, Sep) }

// SplitDims splits an entry key into the values of a section of n
// dimensions (nil and ok for n == 0 and an empty key).
func SplitDims(key string, n int) ([]string, bool) {
	if n == 0 {
		return nil, key == ""
	}
	vals := strings.Split(key, Sep)
	return vals, len(vals) == n
}
