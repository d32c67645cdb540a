package projection

import (
	"fmt"
	"slices"

	"github.com/sextant-analytics/sextant/pkg/analytics"
	"github.com/sextant-analytics/sextant/pkg/block"
	"github.com/sextant-analytics/sextant/pkg/catalog"
	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

// additions are a partition's open additions: what the events applied
// since its last checkpoint add, one block builder per property and hour.
// A checkpoint encodes them and starts over: nothing is kept, and nothing
// is ever read back from the store.
type additions struct {
	layout block.Layout
	// parts are the sections of each part (catalog.Layout.PartSections).
	parts [][]int
	open  map[propHour]*block.Builder
	n     int              // aggregates in open's builders (kept by the caller of builder)
	spare []*block.Builder // reset builders, reused
	// arena holds the open builders' aggregates, taken back at each
	// checkpoint.
	arena analytics.Arena
	// slab holds the encoded blocks of the last checkpoint (the store
	// does not keep them after Commit returns).
	slab []byte
}

type propHour struct {
	property string
	hour     int64
}

func newAdditions(l *catalog.Layout) *additions {
	return &additions{layout: l.Sections(), parts: l.PartSections(), open: make(map[propHour]*block.Builder)}
}

// builder returns the open builder of property's hour.
func (a *additions) builder(property string, hour int64) *block.Builder {
	k := propHour{property, hour}
	if b, ok := a.open[k]; ok {
		return b
	}
	var b *block.Builder
	if n := len(a.spare); n > 0 {
		b, a.spare = a.spare[n-1], a.spare[:n-1]
	} else {
		b = block.NewBuilderIn(a.layout, &a.arena)
	}
	a.open[k] = b
	return b
}

// empty reports whether nothing was added since the last checkpoint.
func (a *additions) empty() bool { return len(a.open) == 0 }

// entries is how many aggregates the open additions hold: what their
// memory grows with.
func (a *additions) entries() int { return a.n }

// encode returns the additions of the checkpoint of partition part that
// covers the offsets [start, end), one per series (property and section:
// catalog.Layout.Parts) and hour that holds entries, and starts over.
func (a *additions) encode(part int32, start, end int64) ([]viewstore.Addition, error) {
	out := make([]viewstore.Addition, 0, len(a.open)*len(a.parts))
	slab := a.slab[:0]
	for k, b := range a.open {
		for p, secs := range a.parts {
			if !slices.ContainsFunc(secs, func(s int) bool { return b.SectionEntries(s) > 0 }) {
				continue // nothing of this part: no row
			}
			from := len(slab)
			var err error
			if slab, err = b.AppendSectionsTo(slab, k.hour, secs); err != nil {
				return nil, fmt.Errorf("projection: encode addition of %q at %d: %w", k.property, k.hour, err)
			}
			out = append(out, viewstore.Addition{Property: viewstore.SeriesOf(k.property, p), Hour: k.hour, Partition: part, Start: start, End: end, Block: slab[from:len(slab):len(slab)]})
		}
	}
	// The blocks alias slab, which may have grown (moved) while they were
	// appended: point them at its final backing array.
	off := 0
	for i := range out {
		n := len(out[i].Block)
		out[i].Block = slab[off : off+n : off+n]
		off += n
	}
	a.slab = slab
	a.n = 0
	for k, b := range a.open {
		b.Reset()
		a.spare = append(a.spare, b)
		delete(a.open, k)
	}
	a.arena.Reset()
	if len(a.spare) > 4096 {
		a.spare = a.spare[:4096]
	}
	return out, nil
}
