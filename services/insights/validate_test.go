package insights

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	insightsv1 "github.com/sextant-analytics/sextant/gen/sextant/insights/v1"
	"github.com/sextant-analytics/sextant/pkg/apierror"
)

// violations runs a request expected to be invalid and returns the field
// of every violation, in order.
func violations(t *testing.T, err error) (fields []string, byField map[string]apierror.Violation) {
	t.Helper()
	var ae *apierror.Error
	if !errors.As(err, &ae) || ae.Kind != apierror.InvalidArgument {
		t.Fatalf("error = %v, want InvalidArgument", err)
	}
	byField = map[string]apierror.Violation{}
	for _, v := range ae.Violations {
		if v.Code == "" || v.Description == "" {
			t.Errorf("violation %+v lacks a code or description", v)
		}
		fields = append(fields, v.Field)
		byField[v.Field] = v
	}
	return fields, byField
}

func TestReportValidationListsEveryProblem(t *testing.T) {
	req := &insightsv1.RunReportRequest{
		PropertyId: "p",
		Dimensions: dims("eventName", "foo", "eventName", "minutesAgo", ""),
		Metrics:    mets("sessionLength", "eventCount", "eventCount", ""),
		DimensionFilter: and(
			strF("pagePath", partRE, "(", true),
			inList("bar", false),
			leaf(&insightsv1.Filter{FieldName: "hour"}),
			not(&v1{}),
			or(),
			numF("hour", 0, intV(3)),
			strF("pagePath", st(42), "x", true),
			betweenF("hour", nil, intV(3)),
			strF("", exact, "x", true),
		),
		DateRanges: []*insightsv1.DateRange{
			dr("2024-13-01", "today"),
			dr("3daysAgo", "5daysAgo"),
			named(dr("", "x"), "RESERVED_x"),
			dr("-1daysAgo", "today"),
		},
		MetricFilter: and(
			numF("totalUsers", gt, intV(1)),
			strF("eventCount", exact, "1", true),
			numF("nope", gt, intV(1)),
		),
		OrderBys: []*insightsv1.OrderBy{
			byMetric("sessions", true),
			byDim("pagePath", alpha, false),
			{},
			byDim("eventName", ord(9), false),
		},
		Limit:              300000,
		Offset:             -1,
		MetricAggregations: []insightsv1.MetricAggregation{0},
		CurrencyCode:       "usd",
	}
	_, err := RunReport(context.Background(), fixture(t), nil, mustTime(t, fixtureNow), req)
	got, byField := violations(t, err)
	want := []string{
		"dimensions[1].name",
		"dimensions[2].name",
		"dimensions[3].name",
		"dimensions[4].name",
		"metrics[0].name",
		"metrics[2].name",
		"metrics[3].name",
		"dimensionFilter.andGroup.expressions[0].filter.stringFilter.value",
		"dimensionFilter.andGroup.expressions[1].filter.fieldName",
		"dimensionFilter.andGroup.expressions[1].filter.inListFilter.values",
		"dimensionFilter.andGroup.expressions[2].filter",
		"dimensionFilter.andGroup.expressions[3].notExpression",
		"dimensionFilter.andGroup.expressions[4].orGroup.expressions",
		"dimensionFilter.andGroup.expressions[5].filter.numericFilter.operation",
		"dimensionFilter.andGroup.expressions[6].filter.stringFilter.matchType",
		"dimensionFilter.andGroup.expressions[7].filter.betweenFilter.fromValue",
		"dimensionFilter.andGroup.expressions[8].filter.fieldName",
		"dateRanges[0].startDate",
		"dateRanges[1].startDate",
		"dateRanges[2].startDate",
		"dateRanges[2].endDate",
		"dateRanges[2].name",
		"dateRanges[3].startDate",
		"metricFilter.andGroup.expressions[0].filter.fieldName",
		"metricFilter.andGroup.expressions[1].filter",
		"metricFilter.andGroup.expressions[2].filter.fieldName",
		"orderBys[0].metric.metricName",
		"orderBys[1].dimension.dimensionName",
		"orderBys[2]",
		"orderBys[3].dimension.orderType",
		"limit",
		"metricAggregations[0]",
		"offset",
		"currencyCode",
	}
	if !slices.Equal(got, want) {
		t.Errorf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for field, desc := range map[string]string{
		"dimensions[1].name": `unknown dimension "foo"`,
		"dimensions[2].name": `dimension "eventName" is requested twice`,
		"dimensions[3].name": `unknown dimension "minutesAgo" (only in realtime reports)`,
		"metrics[0].name":    `unknown metric "sessionLength"`,
		"dimensionFilter.andGroup.expressions[0].filter.stringFilter.value": "invalid regular expression",
		"dimensionFilter.andGroup.expressions[1].filter.fieldName":          `unknown dimension "bar"`,
		"dateRanges[1].startDate":                                           "is after endDate",
		"metricFilter.andGroup.expressions[0].filter.fieldName":             `metric "totalUsers" is not among the requested metrics`,
		"metricFilter.andGroup.expressions[2].filter.fieldName":             `unknown metric "nope"`,
		"limit": "0..250000",
	} {
		if v := byField[field]; !strings.Contains(v.Description, desc) {
			t.Errorf("%s: description %q does not contain %q", field, v.Description, desc)
		}
	}
	if c := byField["dimensions[1].name"].Code; c != apierror.NameInvalid {
		t.Errorf("unknown dimension code = %s", c)
	}
	if c := byField["dimensions[2].name"].Code; c != apierror.NameDuplicated {
		t.Errorf("duplicate dimension code = %s", c)
	}
	if c := byField["dateRanges[2].name"].Code; c != apierror.NameReserved {
		t.Errorf("reserved name code = %s", c)
	}
	if !strings.HasPrefix(err.Error(), "invalid report request: dimensions[1].name: ") {
		t.Errorf("message = %q", err.Error())
	}
}

func TestReportValidation(t *testing.T) {
	ranges := []*insightsv1.DateRange{dr("today", "today")}
	manyDims := dims("eventName", "pagePath", "countryId", "deviceCategory", "browser", "operatingSystem", "sessionSource", "sessionMedium", "sessionCampaignName", "date")
	manyMetrics := mets("eventCount", "screenPageViews", "totalUsers", "activeUsers", "newUsers", "sessions", "engagedSessions", "engagementRate", "bounceRate", "eventsPerSession", "sessionsPerUser")
	deep := strF("pagePath", exact, "/", true)
	for range 20 {
		deep = not(deep)
	}
	cases := []struct {
		name string
		req  *insightsv1.RunReportRequest
		want []string
	}{
		{"no date range", &insightsv1.RunReportRequest{Metrics: mets("eventCount")}, []string{"dateRanges"}},
		{"five date ranges", &insightsv1.RunReportRequest{Metrics: mets("eventCount"),
			DateRanges: []*insightsv1.DateRange{dr("today", "today"), dr("today", "today"), dr("today", "today"), dr("today", "today"), dr("today", "today")}}, []string{"dateRanges"}},
		{"ten dimensions", &insightsv1.RunReportRequest{Dimensions: manyDims, Metrics: mets("eventCount"), DateRanges: ranges}, []string{"dimensions"}},
		{"eleven metrics", &insightsv1.RunReportRequest{Metrics: manyMetrics, DateRanges: ranges}, []string{"metrics"}},
		{"nothing asked", &insightsv1.RunReportRequest{DateRanges: ranges}, []string{"metrics"}},
		{"negative limit", &insightsv1.RunReportRequest{Metrics: mets("eventCount"), DateRanges: ranges, Limit: -1}, []string{"limit"}},
		{"bad dates", &insightsv1.RunReportRequest{Metrics: mets("eventCount"), DateRanges: []*insightsv1.DateRange{
			dr("2024-02-30", "1daysago"), dr("+1daysAgo", "2024-1-5"), dr("today", "tomorrow")}},
			[]string{"dateRanges[0].startDate", "dateRanges[0].endDate", "dateRanges[1].startDate", "dateRanges[1].endDate", "dateRanges[2].endDate"}},
		{"range names", &insightsv1.RunReportRequest{Metrics: mets("eventCount"), DateRanges: []*insightsv1.DateRange{
			named(dr("today", "today"), "x"), named(dr("yesterday", "yesterday"), "x"), named(dr("today", "today"), "date_range_3")}},
			[]string{"dateRanges[1].name", "dateRanges[2].name"}},
		{"filter too deep", &insightsv1.RunReportRequest{Metrics: mets("eventCount"), DateRanges: ranges, DimensionFilter: deep},
			[]string{"dimensionFilter" + strings.Repeat(".notExpression", maxFilterDepth+1)}},
		{"order by an unrequested dimension", &insightsv1.RunReportRequest{Metrics: mets("eventCount"), DateRanges: ranges,
			OrderBys: []*insightsv1.OrderBy{byDim("dateRange", alpha, false)}}, []string{"orderBys[0].dimension.dimensionName"}},
		{"metric filter on a dimension", &insightsv1.RunReportRequest{Dimensions: dims("pagePath"), Metrics: mets("eventCount"), DateRanges: ranges,
			MetricFilter: numF("pagePath", gt, intV(1))}, []string{"metricFilter.filter.fieldName"}},
		{"metric filter without a filter", &insightsv1.RunReportRequest{Metrics: mets("eventCount"), DateRanges: ranges,
			MetricFilter: leaf(&insightsv1.Filter{FieldName: "eventCount"})}, []string{"metricFilter.filter"}},
		{"numeric filter without a value", &insightsv1.RunReportRequest{Metrics: mets("eventCount"), DateRanges: ranges,
			DimensionFilter: numF("hour", gt, nil)}, []string{"dimensionFilter.filter.numericFilter.value"}},
		{"empty filter expression", &insightsv1.RunReportRequest{Metrics: mets("eventCount"), DateRanges: ranges,
			DimensionFilter: &v1{}}, []string{"dimensionFilter"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.req.PropertyId = "p"
			_, err := RunReport(context.Background(), fixture(t), nil, mustTime(t, fixtureNow), c.req)
			if got, _ := violations(t, err); !slices.Equal(got, c.want) {
				t.Errorf("violations = %q, want %q", got, c.want)
			}
		})
	}
}

func TestRealtimeValidation(t *testing.T) {
	cases := []struct {
		name string
		req  *insightsv1.RunRealtimeReportRequest
		want []string
	}{
		{"everything at once", &insightsv1.RunRealtimeReportRequest{
			Dimensions:      dims("dateRange", "minutesAgo"),
			Metrics:         mets("eventCount"),
			DimensionFilter: strF("dateRange", exact, "x", true),
			MinuteRanges:    []*insightsv1.MinuteRange{mr(i32(30), i32(-1), ""), mr(i32(3), i32(5), "minute_range_x")},
			Limit:           -5,
		}, []string{
			"dimensions[0].name",
			"dimensionFilter.filter.fieldName",
			"minuteRanges[0].startMinutesAgo",
			"minuteRanges[0].endMinutesAgo",
			"minuteRanges[1].startMinutesAgo",
			"minuteRanges[1].name",
			"limit",
		}},
		{"three minute ranges", &insightsv1.RunRealtimeReportRequest{Metrics: mets("eventCount"),
			MinuteRanges: []*insightsv1.MinuteRange{mr(nil, nil, ""), mr(nil, nil, ""), mr(nil, nil, "")}}, []string{"minuteRanges"}},
		{"start before end by default", &insightsv1.RunRealtimeReportRequest{Metrics: mets("eventCount"),
			MinuteRanges: []*insightsv1.MinuteRange{mr(nil, i32(29), ""), mr(i32(0), nil, "")}}, nil},
		{"start before end", &insightsv1.RunRealtimeReportRequest{Metrics: mets("eventCount"),
			MinuteRanges: []*insightsv1.MinuteRange{mr(i32(10), i32(11), "")}}, []string{"minuteRanges[0].startMinutesAgo"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.req.PropertyId = "p"
			_, err := RunRealtimeReport(context.Background(), realtimeFixture(t), nil, mustTime(t, realtimeNow), c.req)
			if c.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if got, _ := violations(t, err); !slices.Equal(got, c.want) {
				t.Errorf("violations = %q, want %q", got, c.want)
			}
		})
	}
}

func TestFormatMetric(t *testing.T) {
	const (
		integer = insightsv1.MetricType_TYPE_INTEGER
		float   = insightsv1.MetricType_TYPE_FLOAT
	)
	for _, c := range []struct {
		v    float64
		typ  insightsv1.MetricType
		want string
	}{
		{0, integer, "0"}, {42, integer, "42"}, {1e12, integer, "1000000000000"},
		{0, float, "0"}, {0.5, float, "0.5"}, {1.0 / 3, float, "0.333333"}, {2.0 / 3, float, "0.666667"},
		{3, float, "3"}, {1234.5, float, "1234.5"}, {1e-9, float, "0"}, {-0.25, float, "-0.25"},
		{4.5, insightsv1.MetricType_TYPE_SECONDS, "4.5"},
	} {
		if got := formatMetric(c.v, c.typ); got != c.want {
			t.Errorf("formatMetric(%v, %v) = %q, want %q", c.v, c.typ, got, c.want)
		}
	}
}
