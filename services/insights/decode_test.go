package insights

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	insightsv1 "github.com/sextant-analytics/sextant/gen/sextant/insights/v1"
	"github.com/sextant-analytics/sextant/pkg/analytics"
	"github.com/sextant-analytics/sextant/pkg/block"
)

// randomAggregate fills each sketch with up to max ids drawn from pool, so
// that large ones turn dense and small ones stay exact.
func randomAggregate(rng *rand.Rand, max, pool int) *analytics.Aggregate {
	a := analytics.NewAggregate()
	a.Events, a.PageViews, a.EngagementMsec = rng.Int64N(1000)-10, rng.Int64N(100), rng.Int64N(1e6)
	for _, s := range []interface{ Add(uint64) }{a.Users, a.ActiveUsers, a.NewUsers, a.Sessions, a.EngagedSess} {
		for range rng.IntN(max + 1) {
			s.Add(hashID(uint64(rng.IntN(pool))))
		}
	}
	return a
}

// randomCells is a few days of hour and minute cells with random tuples and
// aggregates, some of them dense.
func randomCells(t testing.TB, seed uint64) *memCells {
	return newMemCells(randomTupleCells(t, seed)...)
}

func randomOracle(t testing.TB, seed uint64) *memCells {
	return randomCells(t, seed).whole()
}

func randomTupleCells(t testing.TB, seed uint64) []tcell {
	rng := rand.New(rand.NewPCG(seed, 9))
	start := time.Date(2024, 3, 8, 0, 0, 0, 0, time.UTC)
	pick := func(vs ...string) string { return vs[rng.IntN(len(vs))] }
	var cells []tcell
	for range 3000 {
		g := block.Hour
		at := start.Add(time.Duration(rng.IntN(5*24)) * time.Hour)
		if rng.IntN(4) == 0 {
			g = block.Minute
			at = start.Add(time.Duration(rng.IntN(5*24*60)) * time.Minute)
		}
		tu := tuple{pick("page_view", "scroll", "click"), pick("/", "/a", "/B", "/c/d"), pick("US", "DE", ""),
			pick("desktop", "mobile"), "Chrome", pick("Windows", "iOS"), pick("google", "", "bing"), pick("organic", "cpc", ""), pick("", "x")}
		max := 20
		if rng.IntN(100) == 0 {
			max = 4000
		}
		v, err := randomAggregate(rng, max, 3000).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		cells = append(cells, tcell{Property: "p", Grain: g, Bucket: at.Unix(), Dims: tu.Encode(), Partition: rng.Int32N(4), Value: v})
	}
	return cells
}

// TestWorkersAgree runs reports on one goroutine and on several, over many
// batches of cells: the answers must be identical.
func TestWorkersAgree(t *testing.T) {
	cells, oracle := randomCells(t, 1), randomOracle(t, 1)
	now := time.Date(2024, 3, 13, 0, 30, 0, 0, time.UTC)
	tz := mustZone(t, "Europe/Berlin")
	total := []insightsv1.MetricAggregation{insightsv1.MetricAggregation_TOTAL, insightsv1.MetricAggregation_MAXIMUM}
	reqs := []*insightsv1.RunReportRequest{
		{Dimensions: dims("date"), Metrics: mets("eventCount", "totalUsers", "sessions", "engagementRate", "newUsers"), MetricAggregations: total,
			DateRanges: []*insightsv1.DateRange{dr("5daysAgo", "today")}},
		{Dimensions: dims("pagePath", "country"), Metrics: mets("totalUsers", "activeUsers", "sessionsPerUser"), Limit: 5, MetricAggregations: total,
			DateRanges: []*insightsv1.DateRange{dr("2024-03-08", "2024-03-09"), dr("2024-03-09", "2024-03-12")}},
		{Dimensions: dims("dateHourMinute", "eventName"), Metrics: mets("eventCount", "engagedSessions"),
			DateRanges: []*insightsv1.DateRange{dr("2024-03-10", "2024-03-10")}, DimensionFilter: numF("hour", lt, intV(6))},
		{Metrics: mets("totalUsers", "userEngagementDuration", "bounceRate"), MetricAggregations: total,
			DateRanges: []*insightsv1.DateRange{dr("2024-03-01", "2024-03-31")}},
	}
	for i, req := range reqs {
		req.PropertyId = "p"
		var first *insightsv1.RunReportResponse
		for _, workers := range []int{1, 2, 7} {
			resp, err := runReport(context.Background(), cells, tz, now, req, options{workers: workers, parallelAfter: 100})
			if err != nil {
				t.Fatalf("request %d, %d workers: %v", i, workers, err)
			}
			if len(resp.GetRows()) == 0 {
				t.Fatalf("request %d: no rows", i)
			}
			if first == nil {
				first = resp
				// The rollup the report read answers exactly as the
				// whole-tuple cells do.
				want, err := runReport(context.Background(), oracle, tz, now, req, options{workers: workers, parallelAfter: 100})
				if err != nil {
					t.Fatalf("request %d, oracle: %v", i, err)
				}
				if !proto.Equal(want, resp) {
					t.Errorf("request %d: rollup answers\n%v\nwhole tuples answer\n%v", i, resp, want)
				}
			} else if !proto.Equal(first, resp) {
				t.Errorf("request %d: %d workers answer\n%v\none worker answers\n%v", i, workers, resp, first)
			}
		}
	}
	rt := &insightsv1.RunRealtimeReportRequest{PropertyId: "p", Dimensions: dims("minutesAgo"), Metrics: mets("eventCount", "totalUsers")}
	a, errA := runRealtimeReport(context.Background(), cells, tz, time.Date(2024, 3, 10, 12, 0, 0, 0, time.UTC), rt, options{workers: 1})
	b, errB := runRealtimeReport(context.Background(), cells, tz, time.Date(2024, 3, 10, 12, 0, 0, 0, time.UTC), rt, options{workers: 3})
	if errA != nil || errB != nil || !proto.Equal(a, b) {
		t.Errorf("realtime: %v %v\n%v\n%v", errA, errB, a, b)
	}
}

func TestWorkersStopOnErrors(t *testing.T) {
	// Corrupt the values of one hour cell in the middle of the scan.
	source := randomTupleCells(t, 2)
	var hours []int
	for i, c := range source {
		if c.Grain == block.Hour {
			hours = append(hours, i)
		}
	}
	source[hours[len(hours)/2]].Corrupt = true
	cells := newMemCells(source...)
	req := &insightsv1.RunReportRequest{PropertyId: "p", Dimensions: dims("eventName"), Metrics: mets("totalUsers"),
		DateRanges: []*insightsv1.DateRange{dr("2024-03-01", "2024-03-31")}}
	for _, workers := range []int{1, 3} {
		_, err := runReport(context.Background(), cells, time.UTC, time.Now(), req, options{workers: workers})
		if err == nil || !errors.Is(err, analytics.ErrCorrupt) {
			t.Errorf("%d workers: err = %v", workers, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := runReport(ctx, randomCells(t, 3), time.UTC, time.Now(), req, options{workers: 3}); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
}
