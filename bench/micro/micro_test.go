// Package micro holds micro-benchmarks of Sextant's hot paths that the
// packages' own benchmarks leave out, on events shaped by pkg/loadgen:
// enrichment, the event encoding, the cell aggregate, the users sketch's
// accuracy, and the report engine over cells built from generated traffic
// (to see how report cost grows with stored events). bench/micro.sh runs
// them with the packages' own benchmarks.
package micro

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"google.golang.org/protobuf/proto"

	eventv1 "github.com/sextant-analytics/sextant/gen/sextant/event/v1"
	insightsv1 "github.com/sextant-analytics/sextant/gen/sextant/insights/v1"
	"github.com/sextant-analytics/sextant/pkg/analytics"
	"github.com/sextant-analytics/sextant/pkg/catalog"
	"github.com/sextant-analytics/sextant/pkg/loadgen"
	"github.com/sextant-analytics/sextant/pkg/pebblelog"
	"github.com/sextant-analytics/sextant/pkg/pebblestore"
	"github.com/sextant-analytics/sextant/pkg/sketch"
	"github.com/sextant-analytics/sextant/pkg/viewstore"
	"github.com/sextant-analytics/sextant/services/collect"
	"github.com/sextant-analytics/sextant/services/insights"
	"github.com/sextant-analytics/sextant/services/projection"
)

var now = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func generator(tb testing.TB, batch int, history time.Duration) *loadgen.Generator {
	cfg := loadgen.DefaultConfig()
	cfg.BatchSize, cfg.History, cfg.End = batch, history, now
	g, err := loadgen.New(cfg, 0)
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

func meta() collect.Meta {
	return collect.Meta{PropertyID: "p", ClientIP: netip.MustParseAddr("127.0.0.1"), Now: now}
}

// enriched returns n events as collect appends them.
func enriched(tb testing.TB, n int) []*eventv1.Event {
	g := generator(tb, 25, 70*time.Hour)
	enc := collect.NewEncoder(collect.DefaultLimits())
	out := make([]*eventv1.Event, 0, n)
	for len(out) < n {
		req, err := proto.Marshal(loadgen.ToProto(g.Next(n - len(out))))
		if err != nil {
			tb.Fatal(err)
		}
		evs, err := enc.Encode(req, meta())
		if err != nil {
			tb.Fatal(err)
		}
		for _, m := range evs.Messages {
			ev := &eventv1.Event{}
			if err := proto.Unmarshal(m.Value, ev); err != nil {
				tb.Fatal(err)
			}
			out = append(out, ev)
		}
	}
	return out
}

// BenchmarkEncodeGenerated is collect's work on a batch of 25 generated
// events from its bytes to the events' bytes: reading, validating,
// enriching and encoding (a different mix from collect's own benchmark:
// several User-Agents, countries, sources).
func BenchmarkEncodeGenerated(b *testing.B) {
	g := generator(b, 25, 70*time.Hour)
	reqs := make([][]byte, 64)
	for i := range reqs {
		var err error
		if reqs[i], err = proto.Marshal(loadgen.ToProto(g.Next(0))); err != nil {
			b.Fatal(err)
		}
	}
	enc := collect.NewEncoder(collect.DefaultLimits())
	b.ReportAllocs()
	i := 0
	size := 0
	for b.Loop() {
		out, err := enc.Encode(reqs[i%len(reqs)], meta())
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range out.Messages {
			size += len(m.Value)
		}
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*25), "ns/event")
	b.ReportMetric(float64(size)/float64(b.N*25), "bytes/event")
}

// BenchmarkEventUnmarshal is the projection's decoding of each record.
func BenchmarkEventUnmarshal(b *testing.B) {
	evs := enriched(b, 1000)
	enc := make([][]byte, len(evs))
	for i, ev := range evs {
		enc[i], _ = proto.Marshal(ev)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		var ev eventv1.Event
		if err := proto.Unmarshal(enc[i%len(enc)], &ev); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkAggregateCodec decodes, updates and re-encodes one cell, as a
// projection does for every cell it loads and flushes, for cells of a few
// users (exact sketches) and of many (dense HyperLogLog registers).
func BenchmarkAggregateCodec(b *testing.B) {
	for _, users := range []int{3, 50, 5000} {
		b.Run(fmt.Sprintf("users=%d", users), func(b *testing.B) {
			a := analytics.NewAggregate()
			for i := range users {
				h := xxhash.Sum64String(strconv.Itoa(i))
				a.Users.Add(h)
				a.Sessions.Add(h + 1)
				a.ActiveUsers.Add(h)
				a.EngagedSess.Add(h + 1)
			}
			v, _ := a.MarshalBinary()
			b.ReportAllocs()
			defer b.ReportMetric(float64(len(v)), "bytes/cell")
			for b.Loop() {
				c, err := analytics.UnmarshalAggregate(v)
				if err != nil {
					b.Fatal(err)
				}
				c.Events++
				c.Users.Add(12345)
				if _, err := c.MarshalBinary(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSketchEstimate estimates a dense users sketch (every report
// total and every row of users does it).
func BenchmarkSketchEstimate(b *testing.B) {
	s := sketch.New(sketch.UsersPrecision)
	for i := range 100_000 {
		s.Add(xxhash.Sum64String(strconv.Itoa(i)))
	}
	for b.Loop() {
		_ = s.Estimate()
	}
}

// TestUsersSketchError: estimated users within 2 % of exact on 1M
// distinct client ids, hashed as the projection hashes them.
func TestUsersSketchError(t *testing.T) {
	const n = 1_000_000
	s := sketch.New(sketch.UsersPrecision)
	for i := range n {
		s.Add(xxhash.Sum64String("GA1." + strconv.Itoa(1_000_000_000+i*7919) + "." + strconv.Itoa(1_600_000_000+i)))
	}
	got := float64(s.Estimate())
	errPct := (got - n) / n * 100
	t.Logf("users sketch: %d distinct, estimate %.0f, error %.3f %%", n, got, errPct)
	if math.Abs(errPct) > 2 {
		t.Fatalf("error %.3f %% over 2 %%", errPct)
	}
}

// --- the report engine on the read model of generated events ---

// readModel is the read model the projection and the compactor build from
// events generated events of one property spread over 70 hours, in an
// embedded store, with a source binding it to reports.
type readModel struct {
	store  *pebblestore.Store
	source insights.Source
	blocks int // stored rows read by the last report
}

var (
	modelsMu sync.Mutex
	models   = map[int]*readModel{}
)

func buildReadModel(tb testing.TB, events int) *readModel {
	modelsMu.Lock()
	defer modelsMu.Unlock()
	if m := models[events]; m != nil {
		return m
	}
	dir, err := os.MkdirTemp("", "sextant-micro-")
	if err != nil {
		tb.Fatal(err)
	}
	log, err := pebblelog.Open(dir+"/log", pebblelog.Options{Partitions: 4})
	if err != nil {
		tb.Fatal(err)
	}
	defer log.Close()
	st, err := pebblestore.Open(dir+"/views", pebblestore.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	g := generator(tb, 500, 70*time.Hour)
	lim := collect.DefaultLimits()
	lim.MaxPast = 100 * time.Hour
	enc := collect.NewEncoder(lim)
	for done := 0; done < events; {
		req, err := proto.Marshal(loadgen.ToProto(g.Next(events - done)))
		if err != nil {
			tb.Fatal(err)
		}
		evs, err := enc.Encode(req, meta())
		if err != nil {
			tb.Fatal(err)
		}
		done += len(evs.Messages)
		if err := log.Append(ctx, evs.Messages); err != nil {
			tb.Fatal(err)
		}
	}
	pctx, cancel := context.WithCancel(ctx)
	pr := projection.NewProjector(projection.Config{Logger: slog.New(slog.DiscardHandler), Compaction: projection.CompactionConfig{Off: true}}, log, st)
	done := make(chan error, 1)
	go func() { done <- pr.Run(pctx) }()
	ns := pr.Namespace()
	committed := map[int32]int64{}
	for {
		progress, err := st.ListProgress(ctx, ns)
		if err != nil {
			tb.Fatal(err)
		}
		n := int64(0)
		for _, p := range progress {
			n += p.Applied + p.Duplicates + p.Excluded
			committed[p.Partition] = p.Next
		}
		if n >= int64(events) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		tb.Fatal(err)
	}
	c := projection.NewCompactor(projection.CompactionConfig{}, ns, catalog.Traffic, st, slog.New(slog.DiscardHandler), nil)
	for s := range viewstore.Shards {
		if _, err := c.Compact(ctx, s, true); err != nil {
			tb.Fatal(err)
		}
	}
	m := &readModel{store: st}
	m.source = &countingSource{Source: insights.NewSource(st, ns, catalog.Traffic, committed), rows: &m.blocks}
	models[events] = m
	return m
}

// countingSource counts the stored rows (blocks and additions) reports
// read.
type countingSource struct {
	insights.Source
	rows *int
}

func (c *countingSource) ScanAdditions(ctx context.Context, series string, from, to int64, fn func(viewstore.Addition) error) error {
	return c.Source.ScanAdditions(ctx, series, from, to, func(a viewstore.Addition) error { *c.rows++; return fn(a) })
}

func (c *countingSource) ScanBlocks(ctx context.Context, series string, k viewstore.Kind, from, to int64, fn func(viewstore.Block) error) error {
	return c.Source.ScanBlocks(ctx, series, k, from, to, func(b viewstore.Block) error { *c.rows++; return fn(b) })
}

// BenchmarkReportGeneratedCells runs the harness's two date-range reports
// in-process (an embedded store, no network) over the compacted read model
// of 250k and 2.5M generated events of one property: a quarter of the
// harness's 1M and 10M stored events, as the harness queries one of four
// properties. The rows read stay flat: a block per day.
func BenchmarkReportGeneratedCells(b *testing.B) {
	reports := []struct {
		name string
		req  *insightsv1.RunReportRequest
	}{
		{"date_30d", &insightsv1.RunReportRequest{PropertyId: "p",
			Dimensions:         []*insightsv1.Dimension{{Name: "date"}},
			Metrics:            []*insightsv1.Metric{{Name: "eventCount"}, {Name: "screenPageViews"}, {Name: "totalUsers"}, {Name: "sessions"}},
			DateRanges:         []*insightsv1.DateRange{{StartDate: "29daysAgo", EndDate: "today"}},
			MetricAggregations: []insightsv1.MetricAggregation{insightsv1.MetricAggregation_TOTAL}}},
		{"top10_pagePath_7d", &insightsv1.RunReportRequest{PropertyId: "p",
			Dimensions: []*insightsv1.Dimension{{Name: "pagePath"}},
			Metrics:    []*insightsv1.Metric{{Name: "screenPageViews"}, {Name: "totalUsers"}, {Name: "sessions"}},
			DateRanges: []*insightsv1.DateRange{{StartDate: "6daysAgo", EndDate: "today"}},
			OrderBys:   []*insightsv1.OrderBy{{OneOrderBy: &insightsv1.OrderBy_Metric{Metric: &insightsv1.OrderBy_MetricOrderBy{MetricName: "screenPageViews"}}, Desc: true}},
			Limit:      10}},
	}
	for _, events := range []int{250_000, 2_500_000} {
		for _, r := range reports {
			b.Run(fmt.Sprintf("events=%s/%s", human(events), r.name), func(b *testing.B) {
				m := buildReadModel(b, events)
				b.ReportAllocs()
				m.blocks = 0
				for b.Loop() {
					if _, err := insights.RunReport(context.Background(), m.source, time.UTC, now, r.req); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(m.blocks)/float64(b.N), "rows")
			})
		}
	}
}

func human(n int) string {
	if n >= 1_000_000 {
		return strconv.FormatFloat(float64(n)/1e6, 'f', -1, 64) + "M"
	}
	return strconv.Itoa(n/1000) + "k"
}
