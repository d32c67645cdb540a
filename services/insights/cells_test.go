package insights

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	insightsv1 "github.com/sextant-analytics/sextant/gen/sextant/insights/v1"
	"github.com/sextant-analytics/sextant/pkg/analytics"
	"github.com/sextant-analytics/sextant/pkg/block"
	"github.com/sextant-analytics/sextant/pkg/catalog"
	"github.com/sextant-analytics/sextant/pkg/sketch"
	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

// memCells is an in-memory Source holding what the projection and the
// compactor would store for whole-tuple cells given by hand (spec): each
// cell becomes an addition of its property's hour, in every section of
// the layout of its grain (hour or minute) with the tuple projected onto
// the section's dimensions, from a log partition of its own. Depending on
// the mode, the additions are then compacted: none, all, or those of even
// partitions (so that blocks and additions are read together). Reports
// must answer the same in every mode; whole() serves the same cells with
// only the whole-tuple sections, the answer every section must reproduce.
type memCells struct {
	adds   []viewstore.Addition
	blocks map[viewstore.Kind][]viewstore.Block
	scans  [][2]int64 // the hour intervals of the additions asked for, in order
	// read counts the rows handed to reports: blocks by period, and
	// additions (under 0).
	read   map[viewstore.Kind]int
	err    error // returned by every scan when set
	source []tcell
	mode   compactMode
	layout *catalog.Layout
}

type compactMode int

const (
	compactNone compactMode = iota
	compactAll
	compactEven
)

// wholeLayout keeps traffic's whole tuples only, at hour and minute grain.
var wholeLayout = &catalog.Layout{Dims: catalog.Traffic.Dims, Rollups: []catalog.Rollup{{Dims: catalog.Traffic.Dims, Minute: true}}}

// whole serves the whole-tuple cells m was made of, in whole-tuple
// sections only.
func (m *memCells) whole() *memCells { return buildCells(m.source, compactNone, wholeLayout) }

// compacted serves m's cells compacted in mode.
func (m *memCells) compacted(mode compactMode) *memCells {
	return buildCells(m.source, mode, catalog.Traffic)
}

func newMemCells(cells ...tcell) *memCells { return buildCells(cells, compactNone, catalog.Traffic) }

// A cell of the tests, before it is written into blocks: whole-tuple
// dimensions (a tuple's encoding) at hour or minute grain.
func buildCells(cells []tcell, mode compactMode, l *catalog.Layout) *memCells {
	m := &memCells{blocks: map[viewstore.Kind][]viewstore.Block{}, source: slices.Clone(cells), mode: mode, layout: l, read: map[viewstore.Kind]int{}}
	layout := l.Sections()
	for i, c := range cells {
		hour := block.Hour.Floor(c.Bucket)
		var data []byte
		tu, terr := decodeTuple(c.Dims)
		a, aerr := analytics.UnmarshalAggregate(c.Value)
		switch {
		case aerr != nil:
			// A corrupt value stands for a corrupt block.
			data = c.Value
		case terr != nil:
			// A key that is not a tuple is written as it is in every
			// section of the cell's grain.
			b := block.NewBuilder(layout)
			for si, sec := range layout {
				if sec.Grain == c.Grain {
					if err := b.Agg(si, c.Bucket, c.Dims).Merge(a); err != nil {
						panic(err)
					}
				}
			}
			var err error
			if data, err = b.AppendTo(nil, hour); err != nil {
				panic(err)
			}
		default:
			b := block.NewBuilder(layout)
			for si, sec := range layout {
				if sec.Grain != c.Grain {
					continue
				}
				vals := make([]string, len(sec.Dims))
				for j, d := range sec.Dims {
					vals[j] = tu[catalog.Index(d)]
				}
				if err := b.Agg(si, c.Bucket, block.JoinDims(vals...)).Merge(a); err != nil {
					panic(err)
				}
			}
			var err error
			if data, err = b.AppendTo(nil, hour); err != nil {
				panic(err)
			}
			if c.Corrupt {
				corruptValues(data)
			}
		}
		// One addition per part (a section), as the projection writes
		// them; a corrupt block in every part.
		secs := l.Sections()
		for p := range l.Parts() {
			part := data
			if aerr == nil {
				var err error
				if part, err = block.Merge(nil, hour, partOf(secs[p]), data); err != nil {
					panic(err)
				}
			}
			m.adds = append(m.adds, viewstore.Addition{Property: viewstore.SeriesOf(c.Property, p), Hour: hour, Partition: int32(i), Start: 0, End: 1, Block: part})
		}
	}
	if mode == compactNone {
		return m
	}
	cover := make([]int64, len(cells))
	for i := range cover {
		if mode == compactAll || i%2 == 0 {
			cover[i] = 1
		}
	}
	type key struct {
		property string
		kind     viewstore.Kind
		bucket   int64
	}
	inputs := map[key][][]byte{}
	var rest []viewstore.Addition
	for _, a := range m.adds {
		if cover[a.Partition] == 0 {
			rest = append(rest, a)
			continue
		}
		h := key{a.Property, viewstore.HourBlock, a.Hour}
		inputs[h] = append(inputs[h], a.Block)
		if _, part, _ := viewstore.ParseSeries(a.Property); l.KeepsDays(part) {
			d := key{a.Property, viewstore.DayBlock, block.Day.Floor(a.Hour)}
			inputs[d] = append(inputs[d], a.Block)
		}
	}
	for k, in := range inputs {
		var regrain func(block.Section) block.Grain
		if k.kind == viewstore.DayBlock {
			regrain = func(s block.Section) block.Grain {
				if s.Grain == block.Minute {
					return 0
				}
				return block.Day
			}
		}
		data, err := block.Merge(nil, k.bucket, regrain, in...)
		if err != nil {
			panic(err)
		}
		m.blocks[k.kind] = append(m.blocks[k.kind], viewstore.Block{Property: k.property, Kind: k.kind, Bucket: k.bucket, Cover: cover, Data: data})
	}
	for _, bs := range m.blocks {
		slices.SortFunc(bs, func(a, b viewstore.Block) int {
			return cmp.Or(cmp.Compare(a.Property, b.Property), cmp.Compare(a.Bucket, b.Bucket))
		})
	}
	m.adds = rest
	return m
}

// partOf keeps section sec only.
func partOf(sec block.Section) func(block.Section) block.Grain {
	return func(s block.Section) block.Grain {
		if s.Grain != sec.Grain || !slices.Equal(s.Dims, sec.Dims) {
			return 0
		}
		return s.Grain
	}
}

// corruptValues overwrites the first byte of every value of the block.
func corruptValues(data []byte) {
	r, err := block.Open(data)
	if err != nil {
		panic(err)
	}
	for i := range r.Sections() {
		_ = r.EntriesBytes(i, func(_ int64, _, value []byte) error {
			value[0] = 0xEE
			return nil
		})
	}
}

// tcell is a cell given by hand: whole-tuple dimensions (a tuple's
// encoding) at hour or minute grain.
type tcell struct {
	Property  string
	Grain     block.Grain
	Bucket    int64
	Dims      string
	Partition int32 // ignored: every cell gets a partition of its own
	Value     []byte
	// Corrupt makes every stored copy of the value unreadable (its
	// version byte), in an otherwise sound block.
	Corrupt bool
}

// tuple is the value of every dimension of traffic's whole tuples.
type tuple [9]string

func (t tuple) Encode() string { return block.JoinDims(t[:]...) }

func decodeTuple(s string) (tuple, error) {
	var t tuple
	vals, ok := block.SplitDims(s, len(t))
	if !ok {
		return t, errors.New("not a tuple")
	}
	copy(t[:], vals)
	return t, nil
}

func (m *memCells) ScanAdditions(ctx context.Context, property string, from, to int64, fn func(viewstore.Addition) error) error {
	m.scans = append(m.scans, [2]int64{from, to})
	if m.err != nil {
		return m.err
	}
	adds := slices.Clone(m.adds)
	slices.SortStableFunc(adds, func(a, b viewstore.Addition) int { return cmp.Compare(a.Hour, b.Hour) })
	for _, a := range adds {
		if a.Property != property || a.Hour < from || a.Hour >= to {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		m.read[0]++
		if err := fn(a); err != nil {
			return err
		}
	}
	return nil
}

func (m *memCells) ScanBlocks(ctx context.Context, property string, k viewstore.Kind, from, to int64, fn func(viewstore.Block) error) error {
	if m.err != nil {
		return m.err
	}
	for _, b := range m.blocks[k] {
		if b.Property != property || b.Bucket < from || b.Bucket >= to {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		m.read[k]++
		if err := fn(b); err != nil {
			return err
		}
	}
	return nil
}

func (m *memCells) Committed(context.Context, string) (map[int32]int64, error) {
	c := map[int32]int64{}
	for i := range m.source {
		c[int32(i)] = 1
	}
	return c, nil
}

func (m *memCells) Layout() *catalog.Layout { return m.layout }

func TestMemCellsHonoursInterval(t *testing.T) {
	m := newMemCells(
		tcell{Property: "p", Grain: block.Hour, Bucket: 7200, Dims: "b"},
		tcell{Property: "p", Grain: block.Hour, Bucket: 0, Dims: "a"},
		tcell{Property: "p", Grain: block.Hour, Bucket: 3600, Dims: "a"},
		tcell{Property: "p", Grain: block.Minute, Bucket: 3660, Dims: "m"},
		tcell{Property: "q", Grain: block.Hour, Bucket: 3600, Dims: "q"},
	)
	var got []int64
	err := m.ScanAdditions(context.Background(), viewstore.SeriesOf("p", 0), 3600, 7200, func(a viewstore.Addition) error {
		got = append(got, a.Hour)
		return nil
	})
	if err != nil || fmt.Sprint(got) != "[3600 3600]" {
		t.Fatalf("scanned %v (%v)", got, err)
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
	grain    block.Grain
	tuple    tuple
	events   int64
	views    int64
	msec     int64
	users    []uint64
	active   []uint64
	newUsers []uint64
	sessions []uint64
	engaged  []uint64
}

func tup(event, page, country, device, browser, os, source, medium, campaign string) tuple {
	return tuple{event, page, country, device, browser, os, source, medium, campaign}
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

func mustCell(t testing.TB, s spec) tcell {
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
		g = block.Hour
	}
	if p == "" {
		p = "p"
	}
	return tcell{Property: p, Grain: g, Bucket: at.Unix(), Dims: s.tuple.Encode(), Value: v}
}

func cellsOf(t testing.TB, specs ...spec) *memCells {
	return newMemCells(specCells(t, specs...)...)
}

func specCells(t testing.TB, specs ...spec) []tcell {
	cs := make([]tcell, len(specs))
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

// A report over whole days reads a day block per day and nothing else once
// everything is compacted; days that are not whole in the property's zone
// (when the report reads dates) or range are read by the hour.
func TestReadsDayBlocks(t *testing.T) {
	for _, tc := range []struct {
		name        string
		tz          string
		dims        []string
		ranges      []*insightsv1.DateRange
		days, hours int
	}{
		{"three whole days", "", nil, []*insightsv1.DateRange{dr("2024-01-10", "2024-01-12")}, 3, 0},
		{"by date", "", []string{"date"}, []*insightsv1.DateRange{dr("2024-01-10", "2024-01-12")}, 3, 0},
		{"by hour reads hours", "", []string{"dateHour"}, []*insightsv1.DateRange{dr("2024-01-10", "2024-01-12")}, 0, 5},
		{"another zone, no dates: inner days whole", "America/New_York", []string{"pagePath"}, []*insightsv1.DateRange{dr("2024-01-10", "2024-01-12")}, 2, 2},
		{"another zone, by date: by the hour", "America/New_York", []string{"date"}, []*insightsv1.DateRange{dr("2024-01-10", "2024-01-12")}, 0, 5},
		{"two ranges cutting a day", "", []string{"pagePath"}, []*insightsv1.DateRange{dr("2024-01-10", "2024-01-10"), dr("2024-01-11", "2024-01-12")}, 3, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := fixture(t).compacted(compactAll)
			req := &insightsv1.RunReportRequest{PropertyId: "p", Dimensions: dims(tc.dims...), Metrics: mets("eventCount"), DateRanges: tc.ranges}
			resp, err := RunReport(context.Background(), m, mustZone(t, tc.tz), mustTime(t, fixtureNow), req)
			if err != nil {
				t.Fatal(err)
			}
			want, err := RunReport(context.Background(), fixture(t), mustZone(t, tc.tz), mustTime(t, fixtureNow), req)
			if err != nil {
				t.Fatal(err)
			}
			if renderReport(resp) != renderReport(want) {
				t.Errorf("compacted answers\n%s\nadditions answer\n%s", renderReport(resp), renderReport(want))
			}
			if m.read[viewstore.DayBlock] != tc.days || m.read[viewstore.HourBlock] != tc.hours || m.read[0] != 0 {
				t.Errorf("read %d day blocks, %d hour blocks, %d additions; want %d, %d, 0", m.read[viewstore.DayBlock], m.read[viewstore.HourBlock], m.read[0], tc.days, tc.hours)
			}
		})
	}
}

// A day block compaction retired (emptied while it changes the day's
// hours) is no day block: the day is read from its hour blocks, and the
// answer is the same.
func TestRetiredDayBlockReadsHours(t *testing.T) {
	m := fixture(t).compacted(compactAll)
	retired := 0
	for i, b := range m.blocks[viewstore.DayBlock] {
		if time.Unix(b.Bucket, 0).UTC().Format("2006-01-02") == "2024-01-11" {
			m.blocks[viewstore.DayBlock][i].Data, m.blocks[viewstore.DayBlock][i].Cover = nil, nil
			retired++
		}
	}
	if retired == 0 {
		t.Fatal("the fixture has no day block on 2024-01-11")
	}
	req := &insightsv1.RunReportRequest{PropertyId: "p", Dimensions: dims("pagePath"), Metrics: mets("eventCount", "totalUsers"), DateRanges: []*insightsv1.DateRange{dr("2024-01-10", "2024-01-12")}}
	resp, err := RunReport(context.Background(), m, time.UTC, mustTime(t, fixtureNow), req)
	if err != nil {
		t.Fatal(err)
	}
	want, err := RunReport(context.Background(), fixture(t), time.UTC, mustTime(t, fixtureNow), req)
	if err != nil {
		t.Fatal(err)
	}
	if renderReport(resp) != renderReport(want) {
		t.Errorf("with a retired day block\n%s\nadditions answer\n%s", renderReport(resp), renderReport(want))
	}
	if m.read[viewstore.DayBlock] != 3 || m.read[viewstore.HourBlock] == 0 {
		t.Errorf("read %d day blocks (one retired) and %d hour blocks; want 3 and the retired day's hours", m.read[viewstore.DayBlock], m.read[viewstore.HourBlock])
	}
}
