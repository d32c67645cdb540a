package insights

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	insightsv1 "github.com/sextant-analytics/sextant/gen/sextant/insights/v1"
	"github.com/sextant-analytics/sextant/pkg/analytics"
	"github.com/sextant-analytics/sextant/pkg/viewstore"
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

func estimatesOf(a *analytics.Aggregate) [numSlots]uint64 {
	return [numSlots]uint64{a.Users.Estimate(), a.ActiveUsers.Estimate(), a.NewUsers.Estimate(), a.Sessions.Estimate(), a.EngagedSess.Estimate()}
}

// TestCellDecodeMatchesAnalytics checks the engine's reading of cells
// against analytics.UnmarshalAggregate and Aggregate.Merge, on exact and
// dense sketches, with every slot and with some slots skipped.
func TestCellDecodeMatchesAnalytics(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	all := [numSlots]bool{true, true, true, true, true}
	some := [numSlots]bool{eUsers: true, eEngaged: true}
	for _, size := range []struct{ max, pool, cells int }{{0, 1, 3}, {3, 10, 20}, {40, 5000, 200}, {700, 100000, 10}, {3000, 100000, 3}, {40, 60, 500}} {
		t.Run(fmt.Sprintf("max%d_pool%d_cells%d", size.max, size.pool, size.cells), func(t *testing.T) {
			want := analytics.NewAggregate()
			var got, gotSome acc
			var cv cellValue
			for range size.cells {
				a := randomAggregate(rng, size.max, size.pool)
				if err := want.Merge(a); err != nil {
					t.Fatal(err)
				}
				b, err := a.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				if err := cv.decode(b, &all); err != nil {
					t.Fatal(err)
				}
				if err := got.add(&cv, &all); err != nil {
					t.Fatal(err)
				}
				if err := cv.decode(b, &some); err != nil {
					t.Fatal(err)
				}
				if err := gotSome.add(&cv, &some); err != nil {
					t.Fatal(err)
				}
			}
			if err := got.finish(); err != nil {
				t.Fatal(err)
			}
			if err := gotSome.finish(); err != nil {
				t.Fatal(err)
			}
			if got.events != want.Events || got.views != want.PageViews || got.msec != want.EngagementMsec {
				t.Errorf("sums = %d %d %d, want %d %d %d", got.events, got.views, got.msec, want.Events, want.PageViews, want.EngagementMsec)
			}
			we := estimatesOf(want)
			for i := range numSlots {
				if e := got.estimate(i); e != we[i] {
					t.Errorf("slot %d: estimate %d, want %d", i, e, we[i])
				}
				wantSome := uint64(0)
				if some[i] {
					wantSome = we[i]
				}
				if e := gotSome.estimate(i); e != wantSome {
					t.Errorf("slot %d with some slots: estimate %d, want %d", i, e, wantSome)
				}
			}
		})
	}
}

func TestCellDecodeRejectsCorruption(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	all := [numSlots]bool{true, true, true, true, true}
	none := [numSlots]bool{}
	var cv cellValue
	for _, max := range []int{5, 3000} {
		b, err := randomAggregate(rng, max, 1<<30).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		for n := range len(b) {
			for _, need := range []*[numSlots]bool{&all, &none} {
				if err := cv.decode(b[:n], need); err == nil {
					t.Fatalf("max %d: a %d-byte prefix of %d bytes decoded", max, n, len(b))
				}
			}
		}
		if err := cv.decode(append(b, 0), &all); err == nil {
			t.Error("trailing byte accepted")
		}
		// Flipped bytes must never panic.
		for range 2000 {
			c := append([]byte(nil), b...)
			c[rng.IntN(len(c))] ^= byte(1 + rng.IntN(255))
			_ = cv.decode(c, &all)
			_ = cv.decode(c, &none)
		}
	}
	if err := cv.decode([]byte{2, 0, 0, 0}, &all); err == nil {
		t.Error("unknown version accepted")
	}
}

// randomCells is a few days of hour and minute cells with random tuples and
// aggregates, some of them dense.
func randomCells(t testing.TB, seed uint64) *memCells {
	return newMemCells(randomTupleCells(t, seed)...)
}

func randomOracle(t testing.TB, seed uint64) *memCells {
	return oracleOf(randomTupleCells(t, seed)...)
}

func randomTupleCells(t testing.TB, seed uint64) []viewstore.Cell {
	rng := rand.New(rand.NewPCG(seed, 9))
	start := time.Date(2024, 3, 8, 0, 0, 0, 0, time.UTC)
	pick := func(vs ...string) string { return vs[rng.IntN(len(vs))] }
	var cells []viewstore.Cell
	for range 3000 {
		g := viewstore.Hour
		at := start.Add(time.Duration(rng.IntN(5*24)) * time.Hour)
		if rng.IntN(4) == 0 {
			g = viewstore.Minute
			at = start.Add(time.Duration(rng.IntN(5*24*60)) * time.Minute)
		}
		tu := analytics.Tuple{pick("page_view", "scroll", "click"), pick("/", "/a", "/B", "/c/d"), pick("US", "DE", ""),
			pick("desktop", "mobile"), "Chrome", pick("Windows", "iOS"), pick("google", "", "bing"), pick("organic", "cpc", ""), pick("", "x")}
		max := 20
		if rng.IntN(100) == 0 {
			max = 4000
		}
		v, err := randomAggregate(rng, max, 3000).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		cells = append(cells, viewstore.Cell{Property: "p", Grain: g, Bucket: at.Unix(), Dims: tu.Encode(), Partition: rng.Int32N(4), Value: v})
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
	cells := randomCells(t, 2)
	// Corrupt one cell in the middle of the scan of the eventName rollup.
	var read []int
	for i, c := range cells.cells {
		if c.Grain == viewstore.Hour.WithRollup(uint8(analytics.RollupEventName)) {
			read = append(read, i)
		}
	}
	cells.cells[read[len(read)/2]].Value = []byte{1, 0}
	req := &insightsv1.RunReportRequest{PropertyId: "p", Dimensions: dims("eventName"), Metrics: mets("totalUsers"),
		DateRanges: []*insightsv1.DateRange{dr("2024-03-01", "2024-03-31")}}
	for _, workers := range []int{1, 3} {
		_, err := runReport(context.Background(), cells, time.UTC, time.Now(), req, options{workers: workers})
		if err == nil || !errors.Is(err, errCorruptCell) {
			t.Errorf("%d workers: err = %v", workers, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := runReport(ctx, randomCells(t, 3), time.UTC, time.Now(), req, options{workers: 3}); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
}

// FuzzCellDecode: the engine's own reader never panics, accepts what the
// analytics package accepts, and reads the same sums and estimates.
func FuzzCellDecode(f *testing.F) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, max := range []int{0, 5, 40} {
		b, err := randomAggregate(rng, max, 100000).MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	all := [numSlots]bool{true, true, true, true, true}
	some := [numSlots]bool{eSessions: true}
	f.Fuzz(func(t *testing.T, b []byte) {
		var cv cellValue
		errAll := cv.decode(b, &all)
		errSome := (&cellValue{}).decode(b, &some)
		a, err := analytics.UnmarshalAggregate(b)
		if err != nil {
			return
		}
		if errAll != nil || errSome != nil {
			t.Fatalf("analytics reads it, the engine does not: %v, %v", errAll, errSome)
		}
		var got acc
		if err := got.add(&cv, &all); err != nil {
			t.Fatal(err)
		}
		if err := got.finish(); err != nil {
			t.Fatal(err)
		}
		if got.events != a.Events || got.views != a.PageViews || got.msec != a.EngagementMsec {
			t.Fatalf("sums %d %d %d, want %d %d %d", got.events, got.views, got.msec, a.Events, a.PageViews, a.EngagementMsec)
		}
		we := estimatesOf(a)
		for i := range numSlots {
			if got.estimate(i) != we[i] {
				t.Fatalf("slot %d: %d, want %d", i, got.estimate(i), we[i])
			}
		}
	})
}
