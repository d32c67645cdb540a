package ga4data

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	ga4 "github.com/sextant-analytics/sextant/gen/sextant/ga4/v1beta"
	insightsv1 "github.com/sextant-analytics/sextant/gen/sextant/insights/v1"
)

// tableReports answers reports of eventCount over a fixed table of
// (country, deviceCategory, events), grouped by the dimensions asked for,
// ordered by eventCount descending when asked, then cut.
type tableReports struct{ *fakeReports }

var table = []struct {
	country, device string
	events          int
}{
	{"FR", "desktop", 5}, {"FR", "mobile", 3}, {"US", "desktop", 7}, {"US", "mobile", 1}, {"DE", "mobile", 4}, {"JP", "tablet", 2},
}

func (tableReports) RunReport(_ context.Context, req *connect.Request[insightsv1.RunReportRequest]) (*connect.Response[insightsv1.RunReportResponse], error) {
	sums := map[string]int{}
	var keys []string
	for _, r := range table {
		var vals []string
		for _, d := range req.Msg.Dimensions {
			vals = append(vals, map[string]string{"country": r.country, "deviceCategory": r.device}[d.Name])
		}
		k := strings.Join(vals, "|")
		if _, ok := sums[k]; !ok {
			keys = append(keys, k)
		}
		sums[k] += r.events
	}
	slices.Sort(keys)
	if len(req.Msg.OrderBys) > 0 && req.Msg.OrderBys[0].GetMetric() != nil {
		slices.SortStableFunc(keys, func(a, b string) int { return cmp.Compare(sums[b], sums[a]) })
	}
	resp := &insightsv1.RunReportResponse{RowCount: int32(len(keys)), MetricHeaders: []*insightsv1.MetricHeader{{Name: "eventCount", Type: insightsv1.MetricType_TYPE_INTEGER}}}
	for _, d := range req.Msg.Dimensions {
		resp.DimensionHeaders = append(resp.DimensionHeaders, &insightsv1.DimensionHeader{Name: d.Name})
	}
	keys = keys[min(int(req.Msg.Offset), len(keys)):]
	if req.Msg.Limit > 0 {
		keys = keys[:min(int(req.Msg.Limit), len(keys))]
	}
	for _, k := range keys {
		row := &insightsv1.Row{MetricValues: []*insightsv1.MetricValue{{Value: fmt.Sprint(sums[k])}}}
		for _, v := range strings.Split(k, "|") {
			row.DimensionValues = append(row.DimensionValues, &insightsv1.DimensionValue{Value: v})
		}
		resp.Rows = append(resp.Rows, row)
	}
	return connect.NewResponse(resp), nil
}

func allow(ctx context.Context, _ string, _ http.Header) (context.Context, error) { return ctx, nil }

func TestPivotReport(t *testing.T) {
	h := &handler{cfg: Config{Reports: tableReports{&fakeReports{}}}}
	byEvents := []*ga4.OrderBy{{OneOrderBy: &ga4.OrderBy_Metric{Metric: &ga4.OrderBy_MetricOrderBy{MetricName: "eventCount"}}, Desc: true}}
	req := &ga4.RunPivotReportRequest{
		Property:   "properties/42",
		Dimensions: []*ga4.Dimension{{Name: "country"}, {Name: "deviceCategory"}},
		Metrics:    []*ga4.Metric{{Name: "eventCount"}},
		DateRanges: []*ga4.DateRange{{StartDate: "7daysAgo", EndDate: "today"}},
		Pivots: []*ga4.Pivot{
			{FieldNames: []string{"country"}, OrderBys: byEvents, Limit: 2}, // US (8), FR (8): ties keep the name order
			{FieldNames: []string{"deviceCategory"}},                        // desktop, mobile, tablet
		},
	}
	resp, err := h.grpcRunPivotReport(context.Background(), connect.NewRequest(req))
	if err != nil {
		t.Fatal(err)
	}
	var headers []string
	for _, p := range resp.Msg.PivotHeaders {
		var vals []string
		for _, d := range p.PivotDimensionHeaders {
			vals = append(vals, valuesKey(d.DimensionValues))
		}
		headers = append(headers, fmt.Sprintf("%v of %d", vals, p.RowCount))
	}
	if got := strings.Join(headers, "; "); got != "[FR US] of 4; [desktop mobile tablet] of 3" {
		t.Errorf("pivot headers %s", got)
	}
	var rows []string
	for _, r := range resp.Msg.Rows {
		rows = append(rows, valuesKey(r.DimensionValues)+"="+r.MetricValues[0].GetValue())
	}
	// The countries the first pivot kept, in its order; in each, the
	// devices in the second's.
	if got := strings.Join(rows, ","); got != "FR\x00desktop=5,FR\x00mobile=3,US\x00desktop=7,US\x00mobile=1" {
		t.Errorf("rows %q", got)
	}
	if resp.Msg.Kind != "analyticsData#runPivotReport" || len(resp.Msg.DimensionHeaders) != 2 {
		t.Errorf("answer %v", resp.Msg)
	}

	// The same over REST, and the mistakes a pivot request can make.
	body, _ := protojson.Marshal(req)
	w := httptest.NewRecorder()
	Handler(Config{Reports: tableReports{&fakeReports{}}, Authenticate: allow}).ServeHTTP(w, httptest.NewRequest("POST", "/v1beta/properties/42:runPivotReport", strings.NewReader(string(body))))
	if w.Code != 200 || !strings.Contains(w.Body.String(), "pivotHeaders") {
		t.Fatalf("REST: %d %s", w.Code, w.Body)
	}
	for _, tt := range []struct {
		name   string
		pivots []*ga4.Pivot
		want   string
	}{
		{"a dimension in no pivot", []*ga4.Pivot{{FieldNames: []string{"country"}}}, `dimension "deviceCategory" is in no pivot`},
		{"a dimension in two", []*ga4.Pivot{{FieldNames: []string{"country", "deviceCategory"}}, {FieldNames: []string{"country"}}}, "is in pivot 0 already"},
		{"an unknown dimension", []*ga4.Pivot{{FieldNames: []string{"country", "deviceCategory", "city"}}}, `"city" is not one of the request's dimensions`},
		{"an empty pivot", []*ga4.Pivot{{}, {FieldNames: []string{"country", "deviceCategory"}}}, "names at least one dimension"},
	} {
		bad := proto.CloneOf(req)
		bad.Pivots = tt.pivots
		if _, err := h.grpcRunPivotReport(context.Background(), connect.NewRequest(bad)); connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want INVALID_ARGUMENT with %q", tt.name, err, tt.want)
		}
	}
}
