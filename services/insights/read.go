package insights

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sextant-analytics/sextant/pkg/block"
	"github.com/sextant-analytics/sextant/pkg/catalog"
	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

// Source is the read model as the engine reads it, bound to one projection
// version (its namespace).
type Source interface {
	// ScanAdditions and ScanBlocks are the view store's (see
	// viewstore.Store): they read a series (viewstore.SeriesOf).
	ScanAdditions(ctx context.Context, series string, from, to int64, fn func(viewstore.Addition) error) error
	ScanBlocks(ctx context.Context, series string, k viewstore.Kind, from, to int64, fn func(viewstore.Block) error) error
	// Committed returns, by log partition, how far the property's data is
	// committed (its watermarks' offsets): additions ending past it are
	// not counted.
	Committed(ctx context.Context, property string) (map[int32]int64, error)
	// Layout is what the version stores.
	Layout() *catalog.Layout
}

// cell is one entry of a block as the engine counts it.
type cell struct {
	bucket int64
	dims   []byte // the section's dimension values, joined by block.Sep
	value  []byte // an analytics.Aggregate's encoding
	sec    *section
}

// section is what the engine derives once per distinct section layout: its
// identity and where each of its dimensions goes.
type section struct {
	key  string
	srcs []int // the catalogue index of each dimension
}

// reader reads the blocks and additions of one report.
type reader struct {
	q        *query
	src      Source
	property string
	// part is the layout's part (catalog.Layout.Parts) the report reads:
	// its rollup's section at the grain it reads; series the property's
	// rows of it, and sec the section's dimensions.
	part   int
	series string
	dims   []string
	sec    *section
	cell   cell
	fn     func(*cell) error
}

// read calls fn for every entry the report counts: for each segment, the
// day blocks of the UTC days it may read whole, the hour blocks of the
// other hours, and the committed additions neither covers. Additions are
// read first: a compaction between the reads then shows a block covering
// some of them (which are then skipped), never one that lacks additions
// already deleted.
func (q *query) read(ctx context.Context, src Source, property string, fn func(*cell) error) error {
	committed, err := src.Committed(ctx, property)
	if err != nil {
		return fmt.Errorf("insights: committed progress: %w", err)
	}
	r := &reader{q: q, src: src, property: property, fn: fn}
	r.part = src.Layout().Choose(q.stored, q.grain == block.Minute)
	if r.part < 0 {
		return fmt.Errorf("insights: no rollup of the layout holds %v", q.stored)
	}
	r.dims = src.Layout().Rollups[r.part].Dims
	g := block.Hour
	if q.grain == block.Minute {
		g = block.Minute
	}
	r.part = src.Layout().PartOf(r.part, g)
	r.series = viewstore.SeriesOf(property, r.part)
	sec, err := newSection(r.dims)
	if err != nil {
		return fmt.Errorf("insights: property %q: %w", property, err)
	}
	r.sec = sec
	for _, seg := range hourSegments(q.spans) {
		if err := r.segment(ctx, seg[0], seg[1], committed); err != nil {
			return err
		}
	}
	return nil
}

// hourSegments are the ranges' intervals widened to whole hours, merged so
// that every hour is read once (the scanner drops entries outside the
// ranges).
func hourSegments(spans []span) [][2]int64 {
	var hours []span
	for _, s := range spans {
		hours = append(hours, span{from: block.Hour.Floor(s.from), to: ceilTo(s.to, 3600)})
	}
	return scanSegments(hours)
}

func (r *reader) segment(ctx context.Context, hFrom, hTo int64, committed map[int32]int64) error {
	from, to := hFrom, hTo
	var adds []viewstore.Addition
	err := r.src.ScanAdditions(ctx, r.series, hFrom, hTo, func(a viewstore.Addition) error {
		if end, ok := committed[a.Partition]; ok && a.End <= end {
			a.Block = slices.Clone(a.Block)
			adds = append(adds, a)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("insights: scan additions: %w", err)
	}

	// Whole days, from day blocks.
	days := map[int64]*viewstore.Block{}
	if dFrom, dTo, ok := r.wholeDays(from, to); ok {
		err := r.src.ScanBlocks(ctx, r.series, viewstore.DayBlock, dFrom, dTo+86400, func(b viewstore.Block) error {
			// An empty day block was retired by compaction while it
			// changes the day's hours: the hours are read instead.
			if len(b.Data) == 0 || !r.dayUsable(b.Bucket, from, to) {
				return nil
			}
			days[b.Bucket] = &viewstore.Block{Bucket: b.Bucket, Cover: slices.Clone(b.Cover)}
			return r.block(b.Data, block.Day)
		})
		if err != nil {
			return fmt.Errorf("insights: scan day blocks: %w", err)
		}
	}
	// The other hours, from hour blocks: the stretches between the days
	// read whole.
	hours := map[int64]*viewstore.Block{}
	grain := r.q.grain
	if grain == block.Day {
		grain = block.Hour
	}
	for _, st := range uncovered(hFrom, hTo, days) {
		err = r.src.ScanBlocks(ctx, r.series, viewstore.HourBlock, st[0], st[1], func(b viewstore.Block) error {
			hours[b.Bucket] = &viewstore.Block{Bucket: b.Bucket, Cover: slices.Clone(b.Cover)}
			return r.block(b.Data, grain)
		})
		if err != nil {
			return fmt.Errorf("insights: scan hour blocks: %w", err)
		}
	}
	// What the blocks do not hold yet.
	for _, a := range adds {
		b := days[block.Day.Floor(a.Hour)]
		if b == nil {
			b = hours[a.Hour]
		}
		if b != nil && a.End <= b.Covered(a.Partition) {
			continue
		}
		if err := r.block(a.Block, grain); err != nil {
			return err
		}
	}
	return nil
}

// wholeDays returns the first and the last UTC day of [from, to) that the
// report may read from day blocks (dayUsable), when there is one.
func (r *reader) wholeDays(from, to int64) (first, last int64, ok bool) {
	if r.q.grain != block.Day || !r.src.Layout().KeepsDays(r.part) {
		return 0, 0, false
	}
	for d := ceilTo(from, 86400); d+86400 <= to; d += 86400 {
		if r.dayUsable(d, from, to) {
			if !ok {
				first = d
			}
			last, ok = d, true
		}
	}
	return first, last, ok
}

// dayUsable reports whether the report may count UTC day d from its day
// block: d lies within [from, to) and within or without each of the
// report's ranges, and when the report reads dates, d is a day of the
// property's time zone too.
func (r *reader) dayUsable(d, from, to int64) bool {
	end := d + 86400
	if d < from || end > to {
		return false
	}
	for _, s := range r.q.spans {
		if s.from > d && s.from < end || s.to > d && s.to < end {
			return false
		}
	}
	if r.q.readsDates {
		for _, t := range [2]int64{d, end} {
			lt := time.Unix(t, 0).In(r.q.tz)
			if h, m, s := lt.Clock(); h != 0 || m != 0 || s != 0 {
				return false
			}
		}
	}
	return true
}

// uncovered splits [from, to) into the stretches outside the days.
func uncovered(from, to int64, days map[int64]*viewstore.Block) [][2]int64 {
	var out [][2]int64
	start := from
	for d := block.Day.Floor(from); d < to; d += 86400 {
		if days[d] == nil {
			continue
		}
		if start < d {
			out = append(out, [2]int64{start, d})
		}
		start = d + 86400
	}
	if start < to {
		out = append(out, [2]int64{start, to})
	}
	return out
}

// block counts the entries of data's section of grain g of the rollup the
// report reads. A block without it holds no data the report reads (empty
// sections are not stored).
func (r *reader) block(data []byte, g block.Grain) error {
	br, err := block.Open(data)
	if err != nil {
		return fmt.Errorf("insights: property %q: %w", r.property, err)
	}
	i := br.Find(block.Section{Grain: g, Dims: r.dims})
	if i < 0 {
		return nil
	}
	c := &r.cell
	c.sec = r.sec
	return br.EntriesBytes(i, func(bucket int64, dims, value []byte) error {
		c.bucket, c.dims, c.value = bucket, dims, value
		return r.fn(c)
	})
}

// newSection maps a rollup's dimensions to the engine's sources.
func newSection(dims []string) (*section, error) {
	sec := &section{key: strings.Join(dims, block.Sep)}
	for _, d := range dims {
		i := catalog.Index(d)
		if i < 0 || i >= catalog.MaxDimensions {
			return nil, fmt.Errorf("stored dimension %q is not in the catalogue", d)
		}
		sec.srcs = append(sec.srcs, i)
	}
	return sec, nil
}
