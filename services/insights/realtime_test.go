package insights

import (
	"context"
	"slices"
	"testing"

	insightsv1 "github.com/sextant-analytics/sextant/gen/sextant/insights/v1"
	"github.com/sextant-analytics/sextant/pkg/block"
)

const realtimeNow = "2024-01-12T12:00:30Z"

// realtimeFixture holds minute cells around realtimeNow: 0, 2, 2, 29, 30
// minutes ago and one in the next minute, plus an hour cell that realtime
// reports never read.
func realtimeFixture(t testing.TB) *memCells {
	m := block.Minute
	return cellsOf(t,
		spec{grain: m, at: "2024-01-12T12:00", tuple: tup("page_view", "/home", "US", "", "", "", "", "", ""), events: 2, users: []uint64{1}, active: []uint64{1}},
		spec{grain: m, at: "2024-01-12T11:58", tuple: tup("page_view", "/pricing", "DE", "", "", "", "", "", ""), events: 3, users: []uint64{2}, active: []uint64{2}},
		spec{grain: m, at: "2024-01-12T11:58", tuple: tup("scroll", "/home", "US", "", "", "", "", "", ""), events: 1, users: []uint64{1}},
		spec{grain: m, at: "2024-01-12T11:31", tuple: tup("click", "/home", "US", "", "", "", "", "", ""), events: 5, users: []uint64{3}},
		spec{grain: m, at: "2024-01-12T11:30", tuple: tup("page_view", "/old", "US", "", "", "", "", "", ""), events: 9, users: []uint64{7}},
		spec{grain: m, at: "2024-01-12T12:01", tuple: tup("page_view", "/future", "US", "", "", "", "", "", ""), events: 9, users: []uint64{8}},
		spec{at: "2024-01-12T11:00", tuple: tup("page_view", "/hour", "US", "", "", "", "", "", ""), events: 50, users: []uint64{9}},
	)
}

func TestRealtime(t *testing.T) {
	cases := []struct {
		name  string
		tz    string
		req   *insightsv1.RunRealtimeReportRequest
		want  string
		scans [][2]string
	}{{
		name: "minutesAgo over the default 30 minutes",
		req:  &insightsv1.RunRealtimeReportRequest{Dimensions: dims("minutesAgo"), Metrics: mets("eventCount", "activeUsers")},
		want: `
			dims minutesAgo
			metrics eventCount:INTEGER,activeUsers:INTEGER
			row 29 => 5,0
			row 02 => 4,1
			row 00 => 2,1
			rowCount 3`,
		scans: [][2]string{{"2024-01-12T11:00:00Z", "2024-01-12T13:00:00Z"}}, // whole hours
	}, {
		name: "no dimensions, totals",
		req: &insightsv1.RunRealtimeReportRequest{Metrics: mets("totalUsers", "eventCount"),
			MetricAggregations: []insightsv1.MetricAggregation{insightsv1.MetricAggregation_TOTAL}},
		want: `
			dims 
			metrics totalUsers:INTEGER,eventCount:INTEGER
			row  => 3,11
			total  => 3,11
			rowCount 1`,
	}, {
		name: "two minute ranges add minuteRange",
		req: &insightsv1.RunRealtimeReportRequest{Dimensions: dims("eventName"), Metrics: mets("eventCount"),
			MinuteRanges: []*insightsv1.MinuteRange{mr(i32(29), i32(15), "early"), mr(i32(2), nil, "")}},
		want: `
			dims eventName,minuteRange
			metrics eventCount:INTEGER
			row click|early => 5
			row page_view|minute_range_1 => 5
			row scroll|minute_range_1 => 1
			rowCount 3`,
		scans: [][2]string{{"2024-01-12T11:00:00Z", "2024-01-12T13:00:00Z"}}, // each hour once
	}, {
		name: "one minute range adds nothing",
		req: &insightsv1.RunRealtimeReportRequest{Dimensions: dims("minutesAgo"), Metrics: mets("eventCount"),
			MinuteRanges: []*insightsv1.MinuteRange{mr(i32(5), i32(1), "")}},
		want: `
			dims minutesAgo
			metrics eventCount:INTEGER
			row 02 => 4
			rowCount 1`,
		scans: [][2]string{{"2024-01-12T11:00:00Z", "2024-01-12T12:00:00Z"}},
	}, {
		name: "endMinutesAgo defaults to 0",
		req: &insightsv1.RunRealtimeReportRequest{Dimensions: dims("pagePath"), Metrics: mets("eventCount"),
			MinuteRanges: []*insightsv1.MinuteRange{mr(i32(1), nil, "")}},
		want: `
			dims pagePath
			metrics eventCount:INTEGER
			row /home => 2
			rowCount 1`,
	}, {
		name: "filter on minutesAgo",
		req: &insightsv1.RunRealtimeReportRequest{Dimensions: dims("minutesAgo"), Metrics: mets("eventCount"),
			DimensionFilter: numF("minutesAgo", lt, intV(5))},
		want: `
			dims minutesAgo
			metrics eventCount:INTEGER
			row 02 => 4
			row 00 => 2
			rowCount 2`,
	}, {
		name: "time dimensions in the property's zone",
		tz:   "America/New_York",
		req:  &insightsv1.RunRealtimeReportRequest{Dimensions: dims("dateHourMinute", "country"), Metrics: mets("eventCount"), Limit: 2},
		want: `
			dims dateHourMinute,country
			metrics eventCount:INTEGER
			row 202401120631|United States => 5
			row 202401120658|Germany => 3
			rowCount 4`,
	}, {
		name: "ordering, metric filter and aggregations",
		req: &insightsv1.RunRealtimeReportRequest{Dimensions: dims("eventName"), Metrics: mets("eventCount"),
			MetricFilter:       numF("eventCount", gt, intV(1)),
			OrderBys:           []*insightsv1.OrderBy{byDim("eventName", alpha, true)},
			MetricAggregations: []insightsv1.MetricAggregation{insightsv1.MetricAggregation_MAXIMUM, insightsv1.MetricAggregation_MINIMUM, insightsv1.MetricAggregation_COUNT}},
		want: `
			dims eventName
			metrics eventCount:INTEGER
			row page_view => 5
			row click => 5
			total RESERVED_COUNT => 2
			max RESERVED_MAX => 5
			min RESERVED_MIN => 5
			rowCount 2`,
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cells := realtimeFixture(t)
			c.req.PropertyId = "p"
			resp, err := RunRealtimeReport(context.Background(), cells, mustZone(t, c.tz), mustTime(t, realtimeNow), c.req)
			if err != nil {
				t.Fatalf("RunRealtimeReport: %v", err)
			}
			if got, want := renderRealtime(resp), dedent(c.want); got != want {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
			for _, mode := range []compactMode{compactAll, compactEven} {
				compacted, err := RunRealtimeReport(context.Background(), cells.compacted(mode), mustZone(t, c.tz), mustTime(t, realtimeNow), c.req)
				if err != nil {
					t.Fatalf("compacted (%d): %v", mode, err)
				}
				if got, want := renderRealtime(compacted), renderRealtime(resp); got != want {
					t.Errorf("compacted (%d) answers\n%s\nadditions answer\n%s", mode, got, want)
				}
			}
			if c.scans != nil {
				var want [][2]int64
				for _, s := range c.scans {
					want = append(want, [2]int64{unix(t, s[0]), unix(t, s[1])})
				}
				if !slices.Equal(cells.scans, want) {
					t.Errorf("scans = %v, want %v", cells.scans, want)
				}
			}
			if resp.GetKind() != "analyticsData#runRealtimeReport" {
				t.Errorf("kind = %q", resp.GetKind())
			}
			md := resp.GetMetadata()
			if md.GetCurrencyCode() != "USD" || md.GetTimeZone() != mustZone(t, c.tz).String() {
				t.Errorf("metadata = %v", md)
			}
		})
	}
}
