package insights

import (
	"context"
	"slices"
	"testing"

	insightsv1 "github.com/sextant-analytics/sextant/gen/sextant/insights/v1"
	"github.com/sextant-analytics/sextant/pkg/analytics"
	"github.com/sextant-analytics/sextant/pkg/apierror"
	"github.com/sextant-analytics/sextant/pkg/catalog"
	"github.com/sextant-analytics/sextant/pkg/property"
)

func TestChannelGroup(t *testing.T) {
	for _, c := range []struct{ source, medium, campaign, want, platform string }{
		{"(direct)", "(none)", "(direct)", "Direct", "(not set)"},
		{"google", "organic", "(organic)", "Organic Search", "(not set)"},
		{"google.co.uk", "referral", "(referral)", "Organic Search", "(not set)"},
		{"google", "cpc", "(not set)", "Paid Search", "Google Ads"},
		{"bing", "ppc", "brand", "Paid Search", "Manual"},
		{"facebook.com", "referral", "(referral)", "Organic Social", "(not set)"},
		{"l.facebook.com", "paid_social", "spring", "Paid Social", "Manual"},
		{"newsletter", "email", "march", "Email", "Manual"},
		{"partner", "affiliate", "x", "Affiliates", "Manual"},
		{"news.example", "referral", "(referral)", "Referral", "(not set)"},
		{"youtube.com", "referral", "(referral)", "Organic Video", "(not set)"},
		{"amazon", "cpc", "x", "Paid Shopping", "Manual"},
		{"site", "cpc", "summer-shopping", "Paid Shopping", "Manual"},
		{"adnet", "display", "x", "Display", "Manual"},
		{"adnet", "cpm", "x", "Display", "Manual"},
		{"adnet", "paid", "x", "Paid Other", "Manual"},
		{"x", "y", "all cross-network", "Cross-network", "Manual"},
		{"firebase", "notification", "x", "Mobile Push Notifications", "Manual"},
		{"sms", "text", "x", "SMS", "Manual"},
		{"podcast", "audio", "x", "Audio", "Manual"},
		{"somewhere", "odd", "x", "Unassigned", "Manual"},
	} {
		if got := channelGroup(c.source, c.medium, c.campaign); got != c.want {
			t.Errorf("channelGroup(%q, %q, %q) = %q, want %q", c.source, c.medium, c.campaign, got, c.want)
		}
		if got := sourcePlatform(c.source, c.medium, c.campaign); got != c.platform {
			t.Errorf("sourcePlatform(%q, %q, %q) = %q, want %q", c.source, c.medium, c.campaign, got, c.platform)
		}
	}
}

// TestOutcomeMetrics computes traffic/v5's metrics from an accumulated
// aggregate, in the property's currency and converted.
func TestOutcomeMetrics(t *testing.T) {
	a := analytics.NewAggregate()
	a.Events = 10
	for _, h := range []uint64{1, 2, 3, 4} {
		a.Sessions.Add(h)
		a.ActiveUsers.Add(h)
	}
	a.Extra(analytics.SketchKeySessions).Add(1)
	a.Extra(analytics.SketchPurchasers).Add(1)
	a.Extra(analytics.SketchPurchasers).Add(2)
	a.Extra(analytics.SketchFirstPurchasers).Add(2)
	a.Sums[analytics.SumSessionSeconds] = 200
	a.Sums[analytics.SumKeyEvents] = 3
	a.Sums[analytics.SumPurchaseRevenue] = 50_000_000
	a.Sums[analytics.SumTotalRevenue] = 60_000_000
	a.Sums[analytics.SumTransactions] = 2
	a.Sums[analytics.SumPurchases] = 2
	b, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var need analytics.Need
	for i := range need {
		need[i] = true
	}
	var v analytics.Values
	var acc analytics.Acc
	if err := v.Decode(b, &need); err != nil {
		t.Fatal(err)
	}
	if err := acc.Add(&v, &need); err != nil {
		t.Fatal(err)
	}
	if err := acc.Finish(); err != nil {
		t.Fatal(err)
	}
	for _, money := range []float64{0, 1, 0.5} {
		e := estimates{a: &acc, money: money}
		f := money
		if f == 0 {
			f = 1
		}
		for name, want := range map[string]float64{
			"averageSessionDuration": 50, "keyEvents": 3, "sessionKeyEventRate": 0.25, "purchaseRevenue": 50 * f, "totalRevenue": 60 * f,
			"transactions": 2, "ecommercePurchases": 2, "averagePurchaseRevenue": 25 * f, "purchaserRate": 0.5,
			"totalPurchasers": 2, "firstTimePurchasers": 1, "averageRevenuePerUser": 15 * f,
		} {
			def, ok := lookupMetric(name)
			if !ok {
				t.Fatalf("%s unknown", name)
			}
			if got := e.value(def.id); got != want {
				t.Errorf("money %v: %s = %v, want %v", money, name, got, want)
			}
		}
	}
}

func TestCurrencyOf(t *testing.T) {
	eur := Money{Code: "EUR", Rates: map[string]float64{"USD": 0.8}}
	for _, c := range []struct {
		req    string
		m      Money
		code   string
		factor float64
		bad    bool
	}{
		{"", Money{}, "USD", 1, false},
		{"", eur, "EUR", 1, false},
		{"EUR", eur, "EUR", 1, false},
		{"USD", eur, "USD", 1.25, false},
		{"GBP", eur, "EUR", 1, true},
		{"usd", eur, "EUR", 1, true},
	} {
		var p problems
		code, f := currencyOf(c.req, c.m, &p)
		if code != c.code || f != c.factor || (len(p) > 0) != c.bad {
			t.Errorf("currencyOf(%q, %v) = %s %v %v", c.req, c.m, code, f, p)
		}
	}
}

// TestCompatibility: item-scoped dimensions take item-scoped metrics only;
// dimensions of different groups do not combine; metrics of outcomes are
// not listed by versions without them.
func TestCompatibility(t *testing.T) {
	compat := func(layout *catalog.Layout, req *insightsv1.CheckCompatibilityRequest) (dims, metrics map[string]bool) {
		t.Helper()
		out, err := compatibilityOf(metadataOf(property.Property{ID: "p"}, layout), layout, req)
		if err != nil {
			t.Fatal(err)
		}
		dims, metrics = map[string]bool{}, map[string]bool{}
		for _, d := range out.DimensionCompatibilities {
			dims[d.DimensionMetadata.ApiName] = d.Compatibility == insightsv1.Compatibility_COMPATIBLE
		}
		for _, m := range out.MetricCompatibilities {
			metrics[m.MetricMetadata.ApiName] = m.Compatibility == insightsv1.Compatibility_COMPATIBLE
		}
		return dims, metrics
	}
	d, m := compat(catalog.TrafficUsers, &insightsv1.CheckCompatibilityRequest{Dimensions: dims("itemName")})
	for name, want := range map[string]bool{"itemRevenue": true, "itemsViewed": true, "eventCount": false, "sessions": false} {
		if m[name] != want {
			t.Errorf("with itemName, metric %s compatible %v, want %v", name, m[name], want)
		}
	}
	for name, want := range map[string]bool{"itemBrand": true, "date": true, "country": false, "itemName": true} {
		if d[name] != want {
			t.Errorf("with itemName, dimension %s compatible %v, want %v", name, d[name], want)
		}
	}
	d, _ = compat(catalog.TrafficUsers, &insightsv1.CheckCompatibilityRequest{Dimensions: dims("country"), Metrics: mets("sessions")})
	for name, want := range map[string]bool{"city": true, "region": true, "pageTitle": false, "itemName": false, "sessionDefaultChannelGroup": true} {
		if d[name] != want {
			t.Errorf("with country and sessions, dimension %s compatible %v, want %v", name, d[name], want)
		}
	}
	_, m = compat(catalog.Traffic, &insightsv1.CheckCompatibilityRequest{})
	if _, ok := m["totalRevenue"]; ok || !m["sessions"] {
		t.Errorf("traffic/v1 lists %v", m)
	}
	out, err := compatibilityOf(metadataOf(property.Property{ID: "p"}, catalog.TrafficUsers), catalog.TrafficUsers,
		&insightsv1.CheckCompatibilityRequest{Dimensions: dims("itemName"), Metrics: mets("eventCount"), CompatibilityFilter: insightsv1.Compatibility_INCOMPATIBLE})
	if err == nil {
		t.Fatalf("an incompatible request answered %v", out)
	}
	out, err = compatibilityOf(metadataOf(property.Property{ID: "p"}, catalog.TrafficUsers), catalog.TrafficUsers,
		&insightsv1.CheckCompatibilityRequest{Dimensions: dims("itemName"), CompatibilityFilter: insightsv1.Compatibility_INCOMPATIBLE})
	if err != nil || slices.ContainsFunc(out.MetricCompatibilities, func(c *insightsv1.MetricCompatibility) bool { return c.MetricMetadata.ApiName == "itemRevenue" }) {
		t.Fatalf("incompatible ones: %v %v", out, err)
	}
}

// TestWindowedActiveUsers: a row's window ends on its date, or on the
// range's last day; a total counts each user once over the window.
// The fixture's active users by day: 01-10 {1,2,3}, 01-11 {4}, 01-12 none.
func TestWindowedActiveUsers(t *testing.T) {
	ctx := context.Background()
	now := mustTime(t, fixtureNow)
	run := func(req *insightsv1.RunReportRequest) string {
		t.Helper()
		req.PropertyId = "p"
		resp, err := RunReport(ctx, fixture(t), nil, now, req)
		if err != nil {
			t.Fatal(err)
		}
		return renderReport(resp)
	}
	for _, c := range []struct {
		name string
		req  *insightsv1.RunReportRequest
		want string
	}{
		{"by date", &insightsv1.RunReportRequest{Dimensions: dims("date"), Metrics: mets("eventCount", "active1DayUsers", "active7DayUsers", "dauPerWau"),
			DateRanges: []*insightsv1.DateRange{dr("2024-01-10", "2024-01-12")}, OrderBys: []*insightsv1.OrderBy{byDim("date", alpha, false)},
			MetricAggregations: []insightsv1.MetricAggregation{insightsv1.MetricAggregation_TOTAL}}, `
			dims date
			metrics eventCount:INTEGER,active1DayUsers:INTEGER,active7DayUsers:INTEGER,dauPerWau:FLOAT
			row 20240110 => 5,3,3,1
			row 20240111 => 5,1,4,0.25
			row 20240112 => 1,0,4,0
			total RESERVED_TOTAL => 11,0,4,0
			rowCount 3`},
		{"by country, alone", &insightsv1.RunReportRequest{Dimensions: dims("country"), Metrics: mets("active28DayUsers"),
			DateRanges: []*insightsv1.DateRange{dr("2024-01-10", "2024-01-12")}, OrderBys: []*insightsv1.OrderBy{byDim("country", alpha, false)}}, `
			dims country
			metrics active28DayUsers:INTEGER
			row France => 1
			row United States => 3
			rowCount 2`},
		{"two ranges", &insightsv1.RunReportRequest{Metrics: mets("active7DayUsers"),
			DateRanges: []*insightsv1.DateRange{named(dr("2024-01-10", "2024-01-10"), "a"), named(dr("2024-01-11", "2024-01-11"), "b")},
			OrderBys:   []*insightsv1.OrderBy{byDim("dateRange", alpha, false)}}, `
			dims dateRange
			metrics active7DayUsers:INTEGER
			row a => 3
			row b => 4
			rowCount 2`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got, want := run(c.req), dedent(c.want); got != want {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
	// A bad metric is named at its place in the request.
	_, err := RunReport(ctx, fixture(t), nil, now, &insightsv1.RunReportRequest{PropertyId: "p", Metrics: mets("active7DayUsers", "bogus"),
		DateRanges: []*insightsv1.DateRange{dr("today", "today")}})
	if _, byField := violations(t, err); byField["metrics[1].name"].Field == "" {
		t.Errorf("bogus metric: %v", err)
	}
	for _, bad := range []*insightsv1.RunReportRequest{
		{Dimensions: dims("hour"), Metrics: mets("active7DayUsers"), DateRanges: []*insightsv1.DateRange{dr("today", "today")}},
		{Metrics: mets("active7DayUsers"), DateRanges: []*insightsv1.DateRange{dr("today", "today")}, OrderBys: []*insightsv1.OrderBy{byMetric("active7DayUsers", true)}},
	} {
		bad.PropertyId = "p"
		if _, err := RunReport(ctx, fixture(t), nil, now, bad); apierror.KindOf(err) != apierror.InvalidArgument {
			t.Errorf("%v: %v, want InvalidArgument", bad, err)
		}
	}
}

// TestCustomDefinitionsParse: a report reads one registered custom
// dimension, or one custom metric by time alone, from traffic/v5 on.
func TestCustomDefinitionsParse(t *testing.T) {
	custom := customOf(property.Property{CustomEventDimensions: []string{"plan", "size"}, CustomEventMetrics: []string{"amount"}})
	for _, c := range []struct {
		name    string
		layout  *catalog.Layout
		dims    []string
		metrics []string
		filter  *insightsv1.FilterExpression
		ok      bool
	}{
		{"one dimension", catalog.TrafficUsers, []string{"customEvent:plan", "date"}, []string{"eventCount", "totalUsers"}, nil, true},
		{"filtered by its own", catalog.TrafficUsers, []string{"customEvent:plan"}, []string{"eventCount"}, strF("customEvent:plan", exact, "pro", true), true},
		{"filtered by another", catalog.TrafficUsers, []string{"customEvent:plan"}, []string{"eventCount"}, strF("customEvent:size", exact, "L", true), false},
		{"two", catalog.TrafficUsers, []string{"customEvent:plan", "customEvent:size"}, []string{"eventCount"}, nil, false},
		{"not registered", catalog.TrafficUsers, []string{"customEvent:color"}, []string{"eventCount"}, nil, false},
		{"with a stored dimension of another group", catalog.TrafficUsers, []string{"customEvent:plan", "country"}, []string{"eventCount"}, nil, false},
		{"metric by date", catalog.TrafficUsers, []string{"date"}, []string{"customEvent:amount"}, nil, true},
		{"metric with another", catalog.TrafficUsers, nil, []string{"customEvent:amount", "eventCount"}, nil, false},
		{"metric by page", catalog.TrafficUsers, []string{"pagePath"}, []string{"customEvent:amount"}, nil, false},
		{"before traffic/v5", catalog.TrafficDetail, []string{"customEvent:plan"}, []string{"eventCount"}, nil, false},
		{"internal names", catalog.TrafficUsers, []string{"customValue"}, []string{"eventCount"}, nil, false},
	} {
		var p problems
		q := &query{opts: options{custom: custom}}
		q.parseFields(dims(c.dims...), mets(c.metrics...), c.filter, c.layout, &p)
		if (len(p) == 0) != c.ok {
			t.Errorf("%s: problems %v, want ok %v", c.name, p, c.ok)
		}
	}
}

// A realtime report names the property's currency and time zone.
func TestRealtimeOfProperty(t *testing.T) {
	resp, err := RunRealtimeReportOf(context.Background(), fixture(t), property.Property{ID: "p", TimeZone: "Europe/Paris", CurrencyCode: "EUR"},
		mustTime(t, fixtureNow), &insightsv1.RunRealtimeReportRequest{PropertyId: "p", Metrics: mets("eventCount")})
	if err != nil {
		t.Fatal(err)
	}
	if md := resp.GetMetadata(); md.GetCurrencyCode() != "EUR" || md.GetTimeZone() != "Europe/Paris" {
		t.Errorf("metadata %v", md)
	}
}
