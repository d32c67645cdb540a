package insights

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	insightsv1 "github.com/sextant-analytics/sextant/gen/sextant/insights/v1"
	"github.com/sextant-analytics/sextant/pkg/analytics"
	"github.com/sextant-analytics/sextant/pkg/apierror"
	"github.com/sextant-analytics/sextant/pkg/block"
	"github.com/sextant-analytics/sextant/pkg/property"
)

const fixtureNow = "2024-01-12T12:00:00Z"

type reportCase struct {
	name  string
	cells func(testing.TB) *memCells // fixture when nil
	tz    string                     // UTC when empty
	now   string                     // fixtureNow when empty
	req   *insightsv1.RunReportRequest
	want  string
	scans [][2]string // when set, the intervals the engine must scan
}

func runCases(t *testing.T, cases []reportCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mk := c.cells
			if mk == nil {
				mk = fixture
			}
			cells := mk(t)
			now := c.now
			if now == "" {
				now = fixtureNow
			}
			req := c.req
			if req.PropertyId == "" {
				req.PropertyId = "p"
			}
			if req.DateRanges == nil {
				req.DateRanges = []*insightsv1.DateRange{dr("2024-01-10", "2024-01-12")}
			}
			resp, err := RunReport(context.Background(), cells, mustZone(t, c.tz), mustTime(t, now), req)
			if err != nil {
				t.Fatalf("RunReport: %v", err)
			}
			if got, want := renderReport(resp), dedent(c.want); got != want {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
			// Whichever rollup answered, the whole-tuple cells agree.
			whole, err := RunReport(context.Background(), cells.whole(), mustZone(t, c.tz), mustTime(t, now), req)
			if err != nil {
				t.Fatalf("RunReport on whole tuples: %v", err)
			}
			if got, want := renderReport(resp), renderReport(whole); got != want {
				t.Errorf("rollup answers\n%s\nwhole tuples answer\n%s", got, want)
			}
			// Whatever was compacted, the answer is the same.
			for _, mode := range []compactMode{compactAll, compactEven} {
				compacted, err := RunReport(context.Background(), cells.compacted(mode), mustZone(t, c.tz), mustTime(t, now), req)
				if err != nil {
					t.Fatalf("RunReport on compacted blocks (%d): %v", mode, err)
				}
				if got, want := renderReport(compacted), renderReport(resp); got != want {
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
			if resp.GetKind() != "analyticsData#runReport" {
				t.Errorf("kind = %q", resp.GetKind())
			}
			if (resp.GetMetadata().GetEmptyReason() != "") != (len(resp.GetRows()) == 0) {
				t.Errorf("emptyReason %q with %d rows", resp.GetMetadata().GetEmptyReason(), len(resp.GetRows()))
			}
		})
	}
}

func TestDimensionsAndMetrics(t *testing.T) {
	runCases(t, []reportCase{{
		name: "one dimension",
		req:  &insightsv1.RunReportRequest{Dimensions: dims("eventName"), Metrics: mets("eventCount", "totalUsers")},
		want: `
			dims eventName
			metrics eventCount:INTEGER,totalUsers:INTEGER
			row page_view => 9,4
			row click => 1,1
			row scroll => 1,1
			rowCount 3`,
		scans: [][2]string{{"2024-01-10T00:00:00Z", "2024-01-13T00:00:00Z"}},
	}, {
		name: "integer metrics",
		req: &insightsv1.RunReportRequest{Dimensions: dims("eventName"),
			Metrics: mets("eventCount", "screenPageViews", "totalUsers", "activeUsers", "newUsers", "sessions", "engagedSessions")},
		want: `
			dims eventName
			metrics eventCount:INTEGER,screenPageViews:INTEGER,totalUsers:INTEGER,activeUsers:INTEGER,newUsers:INTEGER,sessions:INTEGER,engagedSessions:INTEGER
			row page_view => 9,9,4,4,3,4,3
			row click => 1,0,1,0,0,1,0
			row scroll => 1,0,1,0,0,1,0
			rowCount 3`,
	}, {
		name: "ratio and duration metrics",
		req: &insightsv1.RunReportRequest{Dimensions: dims("operatingSystem"),
			Metrics: mets("engagementRate", "bounceRate", "eventsPerSession", "sessionsPerUser", "screenPageViewsPerUser", "userEngagementDuration")},
		want: `
			dims operatingSystem
			metrics engagementRate:FLOAT,bounceRate:FLOAT,eventsPerSession:FLOAT,sessionsPerUser:FLOAT,screenPageViewsPerUser:FLOAT,userEngagementDuration:SECONDS
			row Android => 1,0,4,1,4,20
			row iOS => 0.5,0.5,1,1,1,1
			row Windows => 0.333333,0.666667,1.333333,3,3,4.5
			row Linux => 0,1,1,0,0,0
			rowCount 4`,
	}, {
		name: "several dimensions, derived ones included",
		req:  &insightsv1.RunReportRequest{Dimensions: dims("country", "deviceCategory", "sessionSourceMedium"), Metrics: mets("eventCount")},
		want: `
			dims country,deviceCategory,sessionSourceMedium
			metrics eventCount:INTEGER
			row France|tablet|bing / organic => 4
			row United States|desktop|google / organic => 3
			row United States|mobile|google / cpc => 2
			row (not set)|desktop|google / organic => 1
			row Germany|desktop|(not set) => 1
			rowCount 5`,
	}, {
		name: "empty stored values are (not set)",
		req:  &insightsv1.RunReportRequest{Dimensions: dims("sessionCampaignName", "countryId", "browser"), Metrics: mets("eventCount")},
		want: `
			dims sessionCampaignName,countryId,browser
			metrics eventCount:INTEGER
			row (not set)|FR|Chrome => 4
			row (not set)|US|Chrome => 3
			row spring|US|Safari => 2
			row (not set)|(not set)|Chrome => 1
			row (not set)|DE|Firefox => 1
			rowCount 5`,
	}, {
		name: "dimensions only",
		req:  &insightsv1.RunReportRequest{Dimensions: dims("deviceCategory")},
		want: `
			dims deviceCategory
			metrics 
			row desktop => 
			row mobile => 
			row tablet => 
			rowCount 3`,
	}, {
		name: "metrics only",
		req:  &insightsv1.RunReportRequest{Metrics: mets("eventCount", "totalUsers", "sessions")},
		want: `
			dims 
			metrics eventCount:INTEGER,totalUsers:INTEGER,sessions:INTEGER
			row  => 11,5,6
			rowCount 1`,
	}, {
		name: "another property",
		req:  &insightsv1.RunReportRequest{PropertyId: "q", Metrics: mets("eventCount", "totalUsers")},
		want: `
			dims 
			metrics eventCount:INTEGER,totalUsers:INTEGER
			row  => 100,1
			rowCount 1`,
	}, {
		name: "no data",
		req:  &insightsv1.RunReportRequest{Dimensions: dims("eventName"), Metrics: mets("eventCount"), DateRanges: []*insightsv1.DateRange{dr("2023-01-01", "2023-01-31")}},
		want: `
			dims eventName
			metrics eventCount:INTEGER
			rowCount 0`,
	}, {
		name: "empty rows dropped",
		req:  &insightsv1.RunReportRequest{Dimensions: dims("pagePath"), Metrics: mets("newUsers")},
		want: `
			dims pagePath
			metrics newUsers:INTEGER
			row /Blog/Post => 1
			row /home => 1
			row /pricing => 1
			rowCount 3`,
	}, {
		name: "empty rows kept",
		req:  &insightsv1.RunReportRequest{Dimensions: dims("pagePath"), Metrics: mets("newUsers"), KeepEmptyRows: true},
		want: `
			dims pagePath
			metrics newUsers:INTEGER
			row /Blog/Post => 1
			row /home => 1
			row /pricing => 1
			row /about => 0
			rowCount 4`,
	}})
}

func TestTimeDimensions(t *testing.T) {
	runCases(t, []reportCase{{
		name: "New York: 03:00Z is the previous local day",
		tz:   "America/New_York",
		req: &insightsv1.RunReportRequest{Dimensions: dims("date", "hour", "dayOfWeek", "dateHour"), Metrics: mets("eventCount"),
			DateRanges: []*insightsv1.DateRange{dr("2024-01-10", "2024-01-11")}},
		want: `
			dims date,hour,dayOfWeek,dateHour
			metrics eventCount:INTEGER
			row 20240111|10|4|2024011110 => 4
			row 20240110|05|3|2024011005 => 3
			row 20240110|06|3|2024011006 => 2
			row 20240110|22|3|2024011022 => 1
			rowCount 4`,
		scans: [][2]string{{"2024-01-10T05:00:00Z", "2024-01-12T05:00:00Z"}},
	}, {
		name: "New York by date",
		tz:   "America/New_York",
		req: &insightsv1.RunReportRequest{Dimensions: dims("date"), Metrics: mets("eventCount", "totalUsers"),
			DateRanges: []*insightsv1.DateRange{dr("2024-01-10", "2024-01-11")}},
		want: `
			dims date
			metrics eventCount:INTEGER,totalUsers:INTEGER
			row 20240110 => 6,3
			row 20240111 => 4,1
			rowCount 2`,
	}, {
		name: "dateHourMinute reads minute cells",
		tz:   "Asia/Kolkata",
		req:  &insightsv1.RunReportRequest{Dimensions: dims("dateHourMinute"), Metrics: mets("eventCount")},
		want: `
			dims dateHourMinute
			metrics eventCount:INTEGER
			row 202401101535 => 7
			rowCount 1`,
	}, {
		name: "a filter on dateHourMinute reads minute cells too",
		req: &insightsv1.RunReportRequest{Dimensions: dims("date"), Metrics: mets("eventCount"),
			DimensionFilter: strF("dateHourMinute", begins, "2024011010", false)},
		want: `
			dims date
			metrics eventCount:INTEGER
			row 20240110 => 7
			rowCount 1`,
	}, {
		// +05:30: an hour cell belongs to the local date its bucket starts in.
		name: "half-hour zone",
		tz:   "Asia/Kolkata",
		cells: func(t testing.TB) *memCells {
			return cellsOf(t,
				spec{at: "2024-01-10T18:00", tuple: tup("late", "", "", "", "", "", "", "", ""), events: 1},
				spec{at: "2024-01-10T19:00", tuple: tup("early", "", "", "", "", "", "", "", ""), events: 2},
				spec{at: "2024-01-11T18:00", tuple: tup("late", "", "", "", "", "", "", "", ""), events: 4},
				spec{at: "2024-01-11T19:00", tuple: tup("next", "", "", "", "", "", "", "", ""), events: 8},
			)
		},
		req: &insightsv1.RunReportRequest{Dimensions: dims("date", "dateHour", "eventName"), Metrics: mets("eventCount"),
			DateRanges: []*insightsv1.DateRange{dr("2024-01-11", "2024-01-11")}},
		want: `
			dims date,dateHour,eventName
			metrics eventCount:INTEGER
			row 20240111|2024011123|late => 4
			row 20240111|2024011100|early => 2
			rowCount 2`,
		scans: [][2]string{{"2024-01-10T19:00:00Z", "2024-01-11T19:00:00Z"}},
	}})
}

func TestDimensionFilters(t *testing.T) {
	type fc struct {
		name   string
		filter *v1
		rows   string
	}
	cases := []fc{
		{"exact is case-insensitive by default", strF("pagePath", exact, "/HOME", false), "/home => 4"},
		{"exact case-sensitive", strF("pagePath", exact, "/HOME", true), ""},
		{"unspecified match type is exact", strF("pagePath", 0, "/pricing", true), "/pricing => 2"},
		{"begins with", strF("pagePath", begins, "/b", false), "/Blog/Post => 4"},
		{"begins with, case-sensitive miss", strF("pagePath", begins, "/b", true), ""},
		{"begins with, case-sensitive hit", strF("pagePath", begins, "/B", true), "/Blog/Post => 4"},
		{"ends with", strF("pagePath", ends, "POST", false), "/Blog/Post => 4"},
		{"contains", strF("pagePath", contains, "o", true), "/Blog/Post => 4\n/home => 4\n/about => 1"},
		{"contains, case-insensitive", strF("pagePath", contains, "I", false), "/pricing => 2"},
		{"full regexp", strF("pagePath", fullRE, "/(home|pricing)", true), "/home => 4\n/pricing => 2"},
		{"full regexp is anchored", strF("pagePath", fullRE, "/hom", true), ""},
		{"partial regexp", strF("pagePath", partRE, "hom", true), "/home => 4"},
		{"partial regexp, case-sensitive", strF("pagePath", partRE, "^/b", true), ""},
		{"partial regexp, case-insensitive", strF("pagePath", partRE, "^/b", false), "/Blog/Post => 4"},
		{"in list, case-insensitive", inList("pagePath", false, "/HOME", "/pricing"), "/home => 4\n/pricing => 2"},
		{"in list, case-sensitive", inList("pagePath", true, "/HOME", "/pricing"), "/pricing => 2"},
		{"numeric on hour", numF("hour", gte, intV(11)), "/Blog/Post => 4\n/pricing => 2"},
		{"numeric with a double", numF("hour", lt, dblV(9.5)), "/about => 1\n/home => 1"},
		{"numeric equal", numF("hour", eq, intV(3)), "/home => 1"},
		{"numeric less or equal", numF("hour", lte, intV(9)), "/about => 1\n/home => 1"},
		{"numeric greater", numF("hour", gt, intV(14)), "/Blog/Post => 4"},
		{"numeric on date", numF("date", eq, intV(20240111)), "/Blog/Post => 4\n/home => 1"},
		{"numeric on day of week (Thursday)", numF("dayOfWeek", eq, intV(4)), "/Blog/Post => 4\n/home => 1"},
		{"between is inclusive", betweenF("hour", intV(3), intV(10)), "/home => 4\n/about => 1"},
		{"numeric never matches text", numF("pagePath", gt, intV(0)), ""},
		{"not", not(strF("eventName", exact, "page_view", true)), "/about => 1\n/home => 1"},
		{"and, on an unrequested derived dimension", and(strF("eventName", exact, "page_view", true), strF("country", exact, "united states", false)), "/home => 3\n/pricing => 2"},
		{"or", or(strF("countryId", exact, "DE", true), strF("deviceCategory", exact, "tablet", true)), "/Blog/Post => 4\n/home => 1"},
		{"(not set) matches an empty value", strF("countryId", exact, "(not set)", true), "/about => 1"},
		{"source / medium", strF("sessionSourceMedium", exact, "google / organic", true), "/home => 3\n/about => 1"},
		{"nested", and(not(or(strF("eventName", exact, "scroll", true), strF("eventName", exact, "click", true))), betweenF("hour", intV(10), intV(11))), "/home => 3\n/pricing => 2"},
	}
	var rc []reportCase
	for _, c := range cases {
		want := "dims pagePath\nmetrics eventCount:INTEGER\n"
		n := 0
		if c.rows != "" {
			for _, r := range strings.Split(c.rows, "\n") {
				want += "row " + r + "\n"
				n++
			}
		}
		want += "rowCount " + string(rune('0'+n))
		rc = append(rc, reportCase{
			name: c.name,
			req:  &insightsv1.RunReportRequest{Dimensions: dims("pagePath"), Metrics: mets("eventCount"), DimensionFilter: c.filter},
			want: want,
		})
	}
	runCases(t, rc)
}

func TestMetricFilters(t *testing.T) {
	// Unfiltered: /Blog/Post 4,1  /home 4,2  /pricing 2,2  /about 1,1.
	type fc struct {
		name   string
		filter *v1
		rows   string
	}
	cases := []fc{
		{"greater than", numF("eventCount", gt, intV(2)), "/Blog/Post => 4,1\n/home => 4,2"},
		{"between", betweenF("eventCount", intV(2), dblV(4)), "/Blog/Post => 4,1\n/home => 4,2\n/pricing => 2,2"},
		{"or", or(numF("eventCount", eq, intV(1)), numF("totalUsers", gte, intV(2))), "/home => 4,2\n/pricing => 2,2\n/about => 1,1"},
		{"not", not(numF("totalUsers", eq, intV(1))), "/home => 4,2\n/pricing => 2,2"},
		{"and", and(numF("eventCount", gte, intV(2)), numF("totalUsers", lt, intV(2))), "/Blog/Post => 4,1"},
	}
	var rc []reportCase
	for _, c := range cases {
		want := "dims pagePath\nmetrics eventCount:INTEGER,totalUsers:INTEGER\n"
		rows := strings.Split(c.rows, "\n")
		for _, r := range rows {
			want += "row " + r + "\n"
		}
		want += "rowCount " + string(rune('0'+len(rows)))
		rc = append(rc, reportCase{
			name: c.name,
			req:  &insightsv1.RunReportRequest{Dimensions: dims("pagePath"), Metrics: mets("eventCount", "totalUsers"), MetricFilter: c.filter},
			want: want,
		})
	}
	rc = append(rc, reportCase{
		name: "totals cover the rows the metric filter keeps",
		req: &insightsv1.RunReportRequest{Dimensions: dims("pagePath"), Metrics: mets("eventCount", "totalUsers"),
			MetricFilter: numF("eventCount", gt, intV(2)), MetricAggregations: []insightsv1.MetricAggregation{insightsv1.MetricAggregation_TOTAL}},
		want: `
			dims pagePath
			metrics eventCount:INTEGER,totalUsers:INTEGER
			row /Blog/Post => 4,1
			row /home => 4,2
			total RESERVED_TOTAL => 8,3
			rowCount 2`,
	})
	runCases(t, rc)
}

func TestOrdering(t *testing.T) {
	pages := func(order ...*insightsv1.OrderBy) *insightsv1.RunReportRequest {
		return &insightsv1.RunReportRequest{Dimensions: dims("pagePath"), Metrics: mets("eventCount"), OrderBys: order}
	}
	head := "dims pagePath\nmetrics eventCount:INTEGER\n"
	campaigns := func(t testing.TB) *memCells {
		var specs []spec
		for i, c := range []string{"10", "9", "100", "x", "", "-1.5", "X"} {
			specs = append(specs, spec{at: "2024-01-10T10:00", tuple: tup("e", "", "", "", "", "", "", "", c), events: int64(i + 1)})
		}
		return cellsOf(t, specs...)
	}
	runCases(t, []reportCase{{
		name: "default: first metric descending, ties by dimensions",
		req:  pages(),
		want: head + "row /Blog/Post => 4\nrow /home => 4\nrow /pricing => 2\nrow /about => 1\nrowCount 4",
	}, {
		name: "metric ascending",
		req:  pages(byMetric("eventCount", false)),
		want: head + "row /about => 1\nrow /pricing => 2\nrow /Blog/Post => 4\nrow /home => 4\nrowCount 4",
	}, {
		name: "dimension, default type is alphanumeric (code points)",
		req:  pages(byDim("pagePath", 0, false)),
		want: head + "row /Blog/Post => 4\nrow /about => 1\nrow /home => 4\nrow /pricing => 2\nrowCount 4",
	}, {
		name: "dimension alphanumeric descending",
		req:  pages(byDim("pagePath", alpha, true)),
		want: head + "row /pricing => 2\nrow /home => 4\nrow /about => 1\nrow /Blog/Post => 4\nrowCount 4",
	}, {
		name: "dimension case-insensitive",
		req:  pages(byDim("pagePath", ciAlpha, false)),
		want: head + "row /about => 1\nrow /Blog/Post => 4\nrow /home => 4\nrow /pricing => 2\nrowCount 4",
	}, {
		name:  "dimension numeric: numbers first, then text",
		cells: campaigns,
		req:   &insightsv1.RunReportRequest{Dimensions: dims("sessionCampaignName"), Metrics: mets("eventCount"), OrderBys: []*insightsv1.OrderBy{byDim("sessionCampaignName", numeric, false)}},
		want: `
			dims sessionCampaignName
			metrics eventCount:INTEGER
			row -1.5 => 6
			row 9 => 2
			row 10 => 1
			row 100 => 3
			row (not set) => 5
			row X => 7
			row x => 4
			rowCount 7`,
	}, {
		name:  "dimension numeric descending",
		cells: campaigns,
		req:   &insightsv1.RunReportRequest{Dimensions: dims("sessionCampaignName"), Metrics: mets("eventCount"), OrderBys: []*insightsv1.OrderBy{byDim("sessionCampaignName", numeric, true)}},
		want: `
			dims sessionCampaignName
			metrics eventCount:INTEGER
			row x => 4
			row X => 7
			row (not set) => 5
			row 100 => 3
			row 10 => 1
			row 9 => 2
			row -1.5 => 6
			rowCount 7`,
	}, {
		name: "several keys",
		req: &insightsv1.RunReportRequest{Dimensions: dims("deviceCategory", "eventName"), Metrics: mets("eventCount"),
			OrderBys: []*insightsv1.OrderBy{byDim("deviceCategory", alpha, false), byMetric("eventCount", true)}},
		want: `
			dims deviceCategory,eventName
			metrics eventCount:INTEGER
			row desktop|page_view => 3
			row desktop|click => 1
			row desktop|scroll => 1
			row mobile|page_view => 2
			row tablet|page_view => 4
			rowCount 5`,
	}})
}

func TestLimitOffset(t *testing.T) {
	head := "dims pagePath\nmetrics eventCount:INTEGER\n"
	runCases(t, []reportCase{{
		name: "limit and offset",
		req:  &insightsv1.RunReportRequest{Dimensions: dims("pagePath"), Metrics: mets("eventCount"), Limit: 2, Offset: 1},
		want: head + "row /home => 4\nrow /pricing => 2\nrowCount 4",
	}, {
		name: "limit",
		req:  &insightsv1.RunReportRequest{Dimensions: dims("pagePath"), Metrics: mets("eventCount"), Limit: 1},
		want: head + "row /Blog/Post => 4\nrowCount 4",
	}, {
		name: "offset past the end",
		req:  &insightsv1.RunReportRequest{Dimensions: dims("pagePath"), Metrics: mets("eventCount"), Offset: 4},
		want: head + "rowCount 4",
	}, {
		name: "limit beyond the rows",
		req:  &insightsv1.RunReportRequest{Dimensions: dims("pagePath"), Metrics: mets("eventCount"), Limit: 250000, Offset: 3},
		want: head + "row /about => 1\nrowCount 4",
	}})
}

func TestAggregations(t *testing.T) {
	all := []insightsv1.MetricAggregation{
		insightsv1.MetricAggregation_MINIMUM, insightsv1.MetricAggregation_COUNT,
		insightsv1.MetricAggregation_MAXIMUM, insightsv1.MetricAggregation_TOTAL,
	}
	runCases(t, []reportCase{{
		// Users 1 and 2 are in several rows: the rows sum to 6 users, the
		// totals count 5 distinct.
		name: "totals count distinct users across rows",
		req:  &insightsv1.RunReportRequest{Dimensions: dims("pagePath"), Metrics: mets("totalUsers", "eventCount"), MetricAggregations: all},
		want: `
			dims pagePath
			metrics totalUsers:INTEGER,eventCount:INTEGER
			row /home => 2,4
			row /pricing => 2,2
			row /Blog/Post => 1,4
			row /about => 1,1
			total RESERVED_TOTAL => 5,11
			total RESERVED_COUNT => 4,4
			max RESERVED_MAX => 2,4
			min RESERVED_MIN => 1,1
			rowCount 4`,
	}, {
		name: "aggregations ignore limit and offset",
		req: &insightsv1.RunReportRequest{Dimensions: dims("pagePath", "deviceCategory"), Metrics: mets("totalUsers"), MetricAggregations: all,
			Limit: 1, Offset: 1},
		want: `
			dims pagePath,deviceCategory
			metrics totalUsers:INTEGER
			row /pricing|mobile => 2
			total RESERVED_TOTAL|RESERVED_TOTAL => 5
			total RESERVED_COUNT|RESERVED_COUNT => 4
			max RESERVED_MAX|RESERVED_MAX => 2
			min RESERVED_MIN|RESERVED_MIN => 1
			rowCount 4`,
	}, {
		name: "ratios of the totals come from merged sketches",
		req: &insightsv1.RunReportRequest{Dimensions: dims("eventName"), Metrics: mets("sessions", "engagementRate"),
			MetricAggregations: []insightsv1.MetricAggregation{insightsv1.MetricAggregation_TOTAL}},
		want: `
			dims eventName
			metrics sessions:INTEGER,engagementRate:FLOAT
			row page_view => 4,0.75
			row click => 1,0
			row scroll => 1,0
			total RESERVED_TOTAL => 6,0.5
			rowCount 3`,
	}, {
		name: "aggregations without rows",
		req: &insightsv1.RunReportRequest{Dimensions: dims("eventName"), Metrics: mets("eventCount"), MetricAggregations: all,
			DateRanges: []*insightsv1.DateRange{dr("2020-01-01", "2020-01-01")}},
		want: `
			dims eventName
			metrics eventCount:INTEGER
			total RESERVED_TOTAL => 0
			total RESERVED_COUNT => 0
			max RESERVED_MAX => 0
			min RESERVED_MIN => 0
			rowCount 0`,
	}})
}

func TestDateRanges(t *testing.T) {
	runCases(t, []reportCase{{
		name: "overlapping ranges: dateRange added last, one scan",
		req: &insightsv1.RunReportRequest{Dimensions: dims("eventName"), Metrics: mets("eventCount"),
			DateRanges:         []*insightsv1.DateRange{named(dr("2024-01-10", "2024-01-10"), "first"), dr("2024-01-10", "2024-01-11")},
			MetricAggregations: []insightsv1.MetricAggregation{insightsv1.MetricAggregation_TOTAL}},
		want: `
			dims eventName,dateRange
			metrics eventCount:INTEGER
			row page_view|date_range_1 => 9
			row page_view|first => 5
			row scroll|date_range_1 => 1
			total RESERVED_TOTAL|first => 5
			total RESERVED_TOTAL|date_range_1 => 10
			rowCount 3`,
		scans: [][2]string{{"2024-01-10T00:00:00Z", "2024-01-12T00:00:00Z"}},
	}, {
		name: "disjoint ranges are scanned apart",
		req: &insightsv1.RunReportRequest{Metrics: mets("eventCount", "totalUsers"),
			DateRanges: []*insightsv1.DateRange{dr("2024-01-12", "2024-01-12"), dr("2024-01-10", "2024-01-10")}},
		want: `
			dims dateRange
			metrics eventCount:INTEGER,totalUsers:INTEGER
			row date_range_1 => 5,3
			row date_range_0 => 1,1
			rowCount 2`,
		scans: [][2]string{{"2024-01-10T00:00:00Z", "2024-01-11T00:00:00Z"}, {"2024-01-12T00:00:00Z", "2024-01-13T00:00:00Z"}},
	}, {
		name: "dateRange requested where the client wants it, ordered by it, filtered on it",
		req: &insightsv1.RunReportRequest{Dimensions: dims("dateRange", "eventName"), Metrics: mets("eventCount"),
			DateRanges:      []*insightsv1.DateRange{named(dr("2024-01-10", "2024-01-10"), "b"), named(dr("2024-01-11", "2024-01-12"), "a"), named(dr("2024-01-12", "2024-01-12"), "c")},
			DimensionFilter: not(strF("dateRange", exact, "c", true)),
			OrderBys:        []*insightsv1.OrderBy{byDim("dateRange", alpha, false)}},
		want: `
			dims dateRange,eventName
			metrics eventCount:INTEGER
			row a|click => 1
			row a|page_view => 4
			row a|scroll => 1
			row b|page_view => 5
			rowCount 4`,
	}, {
		name: "a single range answers dateRange when asked",
		req: &insightsv1.RunReportRequest{Dimensions: dims("dateRange"), Metrics: mets("eventCount"),
			DateRanges: []*insightsv1.DateRange{dr("2024-01-10", "2024-01-10")}},
		want: `
			dims dateRange
			metrics eventCount:INTEGER
			row date_range_0 => 5
			rowCount 1`,
	}, {
		name: "yesterday and today",
		req: &insightsv1.RunReportRequest{Dimensions: dims("eventName"), Metrics: mets("eventCount"),
			DateRanges: []*insightsv1.DateRange{dr("yesterday", "today")}},
		want: `
			dims eventName
			metrics eventCount:INTEGER
			row page_view => 4
			row click => 1
			row scroll => 1
			rowCount 3`,
	}, {
		name: "NdaysAgo",
		req: &insightsv1.RunReportRequest{Dimensions: dims("eventName"), Metrics: mets("eventCount"),
			DateRanges: []*insightsv1.DateRange{dr("2daysAgo", "2daysAgo"), dr("0daysAgo", "0daysAgo")}},
		want: `
			dims eventName,dateRange
			metrics eventCount:INTEGER
			row page_view|date_range_0 => 5
			row click|date_range_1 => 1
			rowCount 2`,
	}, {
		// 03:00Z on the 12th is the 11th in New York.
		name: "today in the property's zone",
		tz:   "America/New_York",
		now:  "2024-01-12T03:00:00Z",
		req: &insightsv1.RunReportRequest{Dimensions: dims("date"), Metrics: mets("eventCount"),
			DateRanges: []*insightsv1.DateRange{dr("today", "today")}},
		want: `
			dims date
			metrics eventCount:INTEGER
			row 20240111 => 4
			rowCount 1`,
		scans: [][2]string{{"2024-01-11T05:00:00Z", "2024-01-12T05:00:00Z"}},
	}})
}

func TestMetadata(t *testing.T) {
	ny := mustZone(t, "America/New_York")
	resp, err := RunReportOf(context.Background(), fixture(t), property.Property{ID: "p", TimeZone: ny.String(), CurrencyCode: "EUR"}, mustTime(t, fixtureNow), &insightsv1.RunReportRequest{
		PropertyId: "p", Metrics: mets("eventCount"), DateRanges: []*insightsv1.DateRange{dr("today", "today")}})
	if err != nil {
		t.Fatal(err)
	}
	md := resp.GetMetadata()
	if md.GetTimeZone() != "America/New_York" || md.GetCurrencyCode() != "EUR" || md.GetEmptyReason() != "" || resp.GetKind() != "analyticsData#runReport" {
		t.Errorf("metadata = %v, kind %q", md, resp.GetKind())
	}
	resp, err = RunReport(context.Background(), fixture(t), nil, mustTime(t, fixtureNow), &insightsv1.RunReportRequest{
		PropertyId: "p", Metrics: mets("eventCount"), DateRanges: []*insightsv1.DateRange{dr("2020-01-01", "2020-01-01")}})
	if err != nil {
		t.Fatal(err)
	}
	md = resp.GetMetadata()
	if md.GetTimeZone() != "UTC" || md.GetCurrencyCode() != "USD" || md.GetEmptyReason() == "" || len(resp.GetRows()) != 0 {
		t.Errorf("metadata = %v", md)
	}
}

func TestStoreErrors(t *testing.T) {
	ctx := context.Background()
	req := func() *insightsv1.RunReportRequest {
		return &insightsv1.RunReportRequest{PropertyId: "p", Metrics: mets("eventCount"), DateRanges: []*insightsv1.DateRange{dr("2024-01-10", "2024-01-12")}}
	}
	boom := errors.New("boom")
	cells := fixture(t)
	cells.err = boom
	_, err := RunReport(ctx, cells, nil, mustTime(t, fixtureNow), req())
	if !errors.Is(err, boom) || apierror.KindOf(err) != apierror.Internal {
		t.Errorf("store error: %v", err)
	}
	_, err = RunRealtimeReport(ctx, cells, nil, mustTime(t, fixtureNow), &insightsv1.RunRealtimeReportRequest{PropertyId: "p", Metrics: mets("eventCount")})
	if !errors.Is(err, boom) {
		t.Errorf("realtime store error: %v", err)
	}

	value, _ := analytics.NewAggregate().MarshalBinary()
	corrupt := newMemCells(tcell{Property: "p", Grain: block.Hour, Bucket: unix(t, "2024-01-10T10:00:00Z"), Dims: tup("a", "", "", "", "", "", "", "", "").Encode(), Value: value, Corrupt: true})
	if _, err := RunReport(ctx, corrupt, nil, mustTime(t, fixtureNow), req()); err == nil || apierror.KindOf(err) != apierror.Internal {
		t.Errorf("corrupt aggregate: %v", err)
	}
	badKey := newMemCells(tcell{Property: "p", Grain: block.Hour, Bucket: unix(t, "2024-01-10T10:00:00Z"), Dims: "no separators", Value: value})
	if _, err := RunReport(ctx, badKey.whole(), nil, mustTime(t, fixtureNow), &insightsv1.RunReportRequest{PropertyId: "p", Dimensions: dims("pagePath"), Metrics: mets("eventCount"), DateRanges: []*insightsv1.DateRange{dr("2024-01-10", "2024-01-12")}}); err == nil {
		t.Error("bad dimension key: no error")
	}
	badBlock := newMemCells(tcell{Property: "p", Grain: block.Hour, Bucket: unix(t, "2024-01-10T10:00:00Z"), Dims: tup("a", "", "", "", "", "", "", "", "").Encode(), Value: []byte{9}})
	if _, err := RunReport(ctx, badBlock, nil, mustTime(t, fixtureNow), req()); err == nil || apierror.KindOf(err) != apierror.Internal {
		t.Errorf("corrupt block: %v", err)
	}
	if _, err := RunReport(ctx, badKey, nil, mustTime(t, fixtureNow), req()); err == nil {
		t.Error("bad dimension key: no error")
	}

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := RunReport(canceled, fixture(t), nil, mustTime(t, fixtureNow), req()); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
}
