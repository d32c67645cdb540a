package insights

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	insightsv1 "github.com/sextant-analytics/sextant/gen/sextant/insights/v1"
	"github.com/sextant-analytics/sextant/pkg/analytics"
	"github.com/sextant-analytics/sextant/pkg/sketch"
	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

// memCells is an in-memory Cells: a slice sorted by property, grain, bucket
// and dimensions, scanned over [from, to) like the view stores do.
//
// newMemCells takes whole-tuple cells (rollup 0) and stores what the
// projection would: at hour grain the cells themselves and every hour
// rollup summed from them, at minute grain the minute rollups only. With
// oracle set, a scan of any rollup reads the whole-tuple cells of its time
// grain instead, the answer every rollup must reproduce.
type memCells struct {
	cells  []viewstore.Cell
	scans  [][2]int64 // the intervals asked for, in order
	err    error      // returned by ScanCells when set
	oracle bool
	source []viewstore.Cell // what newMemCells was given
}

// whole serves the whole-tuple cells m was made of for every rollup.
func (m *memCells) whole() *memCells { return oracleOf(m.source...) }

func compareCells(a, b viewstore.Cell) int {
	return cmp.Or(
		cmp.Compare(a.Property, b.Property),
		cmp.Compare(a.Grain, b.Grain),
		cmp.Compare(a.Bucket, b.Bucket),
		cmp.Compare(a.Dims, b.Dims),
		cmp.Compare(a.Partition, b.Partition),
	)
}

func newMemCells(cells ...viewstore.Cell) *memCells {
	type key struct {
		property  string
		grain     viewstore.Grain
		bucket    int64
		dims      string
		partition int32
	}
	sums := map[key]*analytics.Aggregate{}
	var out []viewstore.Cell
	for _, c := range cells {
		ids := analytics.MinuteRollups
		if c.Grain.Time() == viewstore.Hour {
			ids = analytics.HourRollups
		}
		a, aerr := analytics.UnmarshalAggregate(c.Value)
		tu, terr := analytics.DecodeTuple(c.Dims)
		if aerr != nil || terr != nil {
			// A corrupt cell stays as it is in every rollup, for the
			// tests of errors.
			for _, id := range ids {
				d := c
				d.Grain = c.Grain.WithRollup(uint8(id))
				out = append(out, d)
			}
			continue
		}
		for _, id := range ids {
			if id == analytics.RollupAll {
				out = append(out, c)
				continue
			}
			k := key{c.Property, c.Grain.WithRollup(uint8(id)), c.Bucket, analytics.Rollups[id].Project(&tu).Encode(), c.Partition}
			if sum, ok := sums[k]; ok {
				if err := sum.Merge(a); err != nil {
					panic(err)
				}
			} else {
				sums[k] = a.Clone()
			}
		}
	}
	for k, a := range sums {
		v, err := a.MarshalBinary()
		if err != nil {
			panic(err)
		}
		out = append(out, viewstore.Cell{Property: k.property, Grain: k.grain, Bucket: k.bucket, Dims: k.dims, Partition: k.partition, Value: v})
	}
	m := &memCells{cells: out, source: slices.Clone(cells)}
	slices.SortFunc(m.cells, compareCells)
	return m
}

// oracleOf serves the whole-tuple cells m was made of, for every rollup.
func oracleOf(cells ...viewstore.Cell) *memCells {
	m := &memCells{cells: slices.Clone(cells), oracle: true}
	slices.SortFunc(m.cells, compareCells)
	return m
}

func (m *memCells) ScanCells(ctx context.Context, property string, g viewstore.Grain, from, to int64, fn func(viewstore.Cell) error) error {
	m.scans = append(m.scans, [2]int64{from, to})
	if m.err != nil {
		return m.err
	}
	if m.oracle {
		g = g.Time()
	}
	i, _ := slices.BinarySearchFunc(m.cells, viewstore.Cell{Property: property, Grain: g, Bucket: from}, func(c, target viewstore.Cell) int {
		return cmp.Or(cmp.Compare(c.Property, target.Property), cmp.Compare(c.Grain, target.Grain), cmp.Compare(c.Bucket, target.Bucket))
	})
	for ; i < len(m.cells); i++ {
		c := m.cells[i]
		if c.Property != property || c.Grain != g || c.Bucket >= to {
			break
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
}

func TestMemCellsHonoursInterval(t *testing.T) {
	m := newMemCells(
		viewstore.Cell{Property: "p", Grain: viewstore.Hour, Bucket: 7200, Dims: "b"},
		viewstore.Cell{Property: "p", Grain: viewstore.Hour, Bucket: 0, Dims: "a"},
		viewstore.Cell{Property: "p", Grain: viewstore.Hour, Bucket: 3600, Dims: "a"},
		viewstore.Cell{Property: "p", Grain: viewstore.Minute, Bucket: 3600, Dims: "m"},
		viewstore.Cell{Property: "q", Grain: viewstore.Hour, Bucket: 3600, Dims: "q"},
	)
	var got []string
	err := m.ScanCells(context.Background(), "p", viewstore.Hour, 3600, 7200, func(c viewstore.Cell) error {
		got = append(got, fmt.Sprint(c.Bucket, c.Dims))
		return nil
	})
	if err != nil || !slices.Equal(got, []string{"3600a"}) {
		t.Fatalf("scan = %v, %v", got, err)
	}
}

// hashID spreads small ids over 64 bits; distinct ids give distinct hashes,
// so sketches of fewer than a few thousand ids count exactly.
func hashID(id uint64) uint64 {
	z := id + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// spec describes one cell by hand.
type spec struct {
	property string // "p" when empty
	at       string // UTC, "2006-01-02T15:04"
	grain    viewstore.Grain
	tuple    analytics.Tuple
	events   int64
	views    int64
	msec     int64
	users    []uint64
	active   []uint64
	newUsers []uint64
	sessions []uint64
	engaged  []uint64
}

func tup(event, page, country, device, browser, os, source, medium, campaign string) analytics.Tuple {
	return analytics.Tuple{event, page, country, device, browser, os, source, medium, campaign}
}

func aggregateOf(s spec) *analytics.Aggregate {
	a := analytics.NewAggregate()
	a.Events, a.PageViews, a.EngagementMsec = s.events, s.views, s.msec
	for _, x := range []struct {
		sk  *sketch.Sketch
		ids []uint64
	}{{a.Users, s.users}, {a.ActiveUsers, s.active}, {a.NewUsers, s.newUsers}, {a.Sessions, s.sessions}, {a.EngagedSess, s.engaged}} {
		for _, id := range x.ids {
			x.sk.Add(hashID(id))
		}
	}
	return a
}

func mustCell(t testing.TB, s spec) viewstore.Cell {
	t.Helper()
	at, err := time.Parse("2006-01-02T15:04", s.at)
	if err != nil {
		t.Fatal(err)
	}
	v, err := aggregateOf(s).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	g, p := s.grain, s.property
	if g == 0 {
		g = viewstore.Hour
	}
	if p == "" {
		p = "p"
	}
	return viewstore.Cell{Property: p, Grain: g, Bucket: at.Unix(), Dims: s.tuple.Encode(), Value: v}
}

func cellsOf(t testing.TB, specs ...spec) *memCells {
	return newMemCells(specCells(t, specs...)...)
}

func specCells(t testing.TB, specs ...spec) []viewstore.Cell {
	cs := make([]viewstore.Cell, len(specs))
	for i, s := range specs {
		cs[i] = mustCell(t, s)
	}
	return cs
}

// render prints a response compactly so that tests compare whole answers.
func render(dh []*insightsv1.DimensionHeader, mh []*insightsv1.MetricHeader, rows, totals, maxs, mins []*insightsv1.Row, rowCount int32) string {
	var b strings.Builder
	var names []string
	for _, h := range dh {
		names = append(names, h.GetName())
	}
	fmt.Fprintf(&b, "dims %s\n", strings.Join(names, ","))
	names = names[:0]
	for _, h := range mh {
		names = append(names, h.GetName()+":"+strings.TrimPrefix(h.GetType().String(), "TYPE_"))
	}
	fmt.Fprintf(&b, "metrics %s\n", strings.Join(names, ","))
	for _, part := range []struct {
		label string
		rows  []*insightsv1.Row
	}{{"row", rows}, {"total", totals}, {"max", maxs}, {"min", mins}} {
		for _, r := range part.rows {
			var ds, ms []string
			for _, d := range r.GetDimensionValues() {
				ds = append(ds, d.GetValue())
			}
			for _, m := range r.GetMetricValues() {
				ms = append(ms, m.GetValue())
			}
			fmt.Fprintf(&b, "%s %s => %s\n", part.label, strings.Join(ds, "|"), strings.Join(ms, ","))
		}
	}
	fmt.Fprintf(&b, "rowCount %d\n", rowCount)
	return b.String()
}

func renderReport(r *insightsv1.RunReportResponse) string {
	return render(r.GetDimensionHeaders(), r.GetMetricHeaders(), r.GetRows(), r.GetTotals(), r.GetMaximums(), r.GetMinimums(), r.GetRowCount())
}

func renderRealtime(r *insightsv1.RunRealtimeReportResponse) string {
	return render(r.GetDimensionHeaders(), r.GetMetricHeaders(), r.GetRows(), r.GetTotals(), r.GetMaximums(), r.GetMinimums(), r.GetRowCount())
}

// dedent trims a raw-string expectation: surrounding blank lines and each
// line's leading tabs.
func dedent(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimLeft(l, "\t ")
	}
	return strings.Join(lines, "\n") + "\n"
}
