package ga4data

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect"

	insightsv1 "github.com/sextant-analytics/sextant/gen/sextant/insights/v1"
	"github.com/sextant-analytics/sextant/pkg/apierror"
)

// fakeReports answers with what it was asked, so that a test sees the
// request the handler decoded.
type fakeReports struct {
	lastCompat *insightsv1.CheckCompatibilityRequest
	calls      int
	last       *insightsv1.RunReportRequest
}

func (f *fakeReports) RunReport(_ context.Context, req *connect.Request[insightsv1.RunReportRequest]) (*connect.Response[insightsv1.RunReportResponse], error) {
	f.calls++
	f.last = req.Msg
	if len(req.Msg.Metrics) > 0 && req.Msg.Metrics[0].Name == "slow" {
		e := apierror.New(apierror.ResourceExhausted, "slow down")
		e.RetryAfter = 3e9
		return nil, e
	}
	rows := []*insightsv1.Row{{MetricValues: []*insightsv1.MetricValue{{Value: "7"}}}}
	return connect.NewResponse(&insightsv1.RunReportResponse{
		MetricHeaders: []*insightsv1.MetricHeader{{Name: "eventCount", Type: insightsv1.MetricType_TYPE_INTEGER}},
		Rows:          rows, RowCount: 1, Kind: "analyticsData#runReport",
		Metadata: &insightsv1.ResponseMetaData{TimeZone: req.Msg.PropertyId},
	}), nil
}

func (f *fakeReports) RunRealtimeReport(_ context.Context, req *connect.Request[insightsv1.RunRealtimeReportRequest]) (*connect.Response[insightsv1.RunRealtimeReportResponse], error) {
	f.calls++
	return connect.NewResponse(&insightsv1.RunRealtimeReportResponse{RowCount: int32(len(req.Msg.MinuteRanges)), Kind: "analyticsData#runRealtimeReport"}), nil
}

func (f *fakeReports) GetMetadata(_ context.Context, req *connect.Request[insightsv1.GetMetadataRequest]) (*connect.Response[insightsv1.GetMetadataResponse], error) {
	return connect.NewResponse(&insightsv1.GetMetadataResponse{
		Name:       "properties/" + req.Msg.PropertyId + "/metadata",
		Dimensions: []*insightsv1.DimensionMetadata{{ApiName: "date"}, {ApiName: "country"}},
		Metrics:    []*insightsv1.MetricMetadata{{ApiName: "eventCount", Type: insightsv1.MetricType_TYPE_INTEGER}},
	}), nil
}

// CheckCompatibility calls country incompatible with everything, and
// refuses a metric other than eventCount.
func (f *fakeReports) CheckCompatibility(_ context.Context, req *connect.Request[insightsv1.CheckCompatibilityRequest]) (*connect.Response[insightsv1.CheckCompatibilityResponse], error) {
	f.lastCompat = req.Msg
	for i, m := range req.Msg.Metrics {
		if m.Name != "eventCount" {
			return nil, apierror.Invalid("bad", apierror.Violation{Field: fmt.Sprintf("metrics[%d].name", i), Description: "not a valid metric", Code: apierror.NameInvalid})
		}
	}
	out := &insightsv1.CheckCompatibilityResponse{}
	want := req.Msg.CompatibilityFilter
	for name, c := range map[string]insightsv1.Compatibility{"date": insightsv1.Compatibility_COMPATIBLE, "country": insightsv1.Compatibility_INCOMPATIBLE} {
		if want == 0 || want == c {
			out.DimensionCompatibilities = append(out.DimensionCompatibilities, &insightsv1.DimensionCompatibility{DimensionMetadata: &insightsv1.DimensionMetadata{ApiName: name}, Compatibility: c})
		}
	}
	if want != insightsv1.Compatibility_INCOMPATIBLE {
		out.MetricCompatibilities = []*insightsv1.MetricCompatibility{{MetricMetadata: &insightsv1.MetricMetadata{ApiName: "eventCount", Type: insightsv1.MetricType_TYPE_INTEGER}, Compatibility: insightsv1.Compatibility_COMPATIBLE}}
	}
	return connect.NewResponse(out), nil
}

func TestHandler(t *testing.T) {
	f := &fakeReports{}
	var procedures []string
	h := Handler(Config{Reports: f, MaxBodyBytes: 2048, Authenticate: func(ctx context.Context, procedure string, hd http.Header) (context.Context, error) {
		procedures = append(procedures, procedure)
		if hd.Get("Authorization") != "Bearer good" {
			return ctx, apierror.New(apierror.Unauthenticated, "unknown API key")
		}
		return ctx, nil
	}})
	report := `{"dateRanges":[{"startDate":"7daysAgo","endDate":"today"}],"metrics":[{"name":"eventCount"}]}`
	tests := []struct {
		name, method, path, key, body string
		status                        int
		want                          []string // substrings of the answer
		calls                         int
	}{
		{"runReport", "POST", "/v1beta/properties/42:runReport", "good", report, 200,
			[]string{`"metricHeaders":[{"name":"eventCount","type":"TYPE_INTEGER"}]`, `"timeZone":"42"`, `"kind":"analyticsData#runReport"`}, 1},
		{"enums as numbers, escaped $alt", "POST", "/v1beta/properties/42:runReport?%24alt=json%3Benum-encoding%3Dint", "good", report, 200,
			[]string{`"type":1`}, 1},
		{"enums as numbers, raw $alt", "POST", "/v1beta/properties/42:runReport?$alt=json;enum-encoding=int", "good", report, 200,
			[]string{`"type":1`}, 1},
		{"the body's property is the path's", "POST", "/v1beta/properties/42:runReport", "good", `{"property":"properties/42","returnPropertyQuota":true}`, 200, nil, 1},
		{"another property in the body", "POST", "/v1beta/properties/42:runReport", "good", `{"property":"properties/43"}`, 400,
			[]string{`"status":"INVALID_ARGUMENT"`, `"field":"property"`}, 0},
		{"unknown field", "POST", "/v1beta/properties/42:runReport", "good", `{"metricz":[]}`, 400,
			[]string{`"code":400`, `metricz`, `"@type":"type.googleapis.com/google.rpc.BadRequest"`}, 0},
		{"a GA4 feature Sextant lacks", "POST", "/v1beta/properties/42:runReport", "good", `{"cohortSpec":{}}`, 400,
			[]string{`"field":"cohortSpec"`, `not supported`}, 0},
		{"not JSON", "POST", "/v1beta/properties/42:runReport", "good", `[1,2]`, 400, []string{`not a JSON object`}, 0},
		{"too large", "POST", "/v1beta/properties/42:runReport", "good", `{"x":"` + strings.Repeat("a", 3000) + `"}`, 413, []string{`over 2048 bytes`}, 0},
		{"no key", "POST", "/v1beta/properties/42:runReport", "", report, 401,
			[]string{`{"error":{"code":401,"message":"unknown API key","status":"UNAUTHENTICATED"`}, 0},
		{"retry hint", "POST", "/v1beta/properties/42:runReport", "good", `{"metrics":[{"name":"slow"}]}`, 429,
			[]string{`"status":"RESOURCE_EXHAUSTED"`, `google.rpc.RetryInfo`}, 1},
		{"realtime", "POST", "/v1beta/properties/42:runRealtimeReport", "good", `{"minuteRanges":[{"startMinutesAgo":5},{"startMinutesAgo":10}]}`, 200,
			[]string{`"rowCount":2`}, 1},
		{"batch", "POST", "/v1beta/properties/42:batchRunReports", "good", `{"requests":[` + report + `,` + report + `]}`, 200,
			[]string{`{"reports":[{`, `"kind":"analyticsData#batchRunReports"`}, 2},
		{"batch over 5", "POST", "/v1beta/properties/42:batchRunReports", "good", `{"requests":[{},{},{},{},{},{}]}`, 400,
			[]string{`at most 5 reports`}, 0},
		{"batch names its bad request", "POST", "/v1beta/properties/42:batchRunReports", "good", `{"requests":[{},{"nope":1}]}`, 400,
			[]string{`"field":"requests[1]"`}, 0}, // every request is checked before any runs
		{"metadata", "GET", "/v1beta/properties/42/metadata", "good", "", 200,
			[]string{`"name":"properties/42/metadata"`, `"apiName":"country"`}, 0},
		{"metadata is a GET", "POST", "/v1beta/properties/42/metadata", "good", "", 405, []string{`takes GET`}, 0},
		{"compatibility", "POST", "/v1beta/properties/42:checkCompatibility?$alt=json;enum-encoding=int", "good", `{"dimensions":[{"name":"date"}],"compatibilityFilter":"COMPATIBLE"}`, 200,
			[]string{`"dimensionCompatibilities":[{"dimensionMetadata":{"apiName":"date"},"compatibility":1}`, `"metricMetadata":{"apiName":"eventCount","type":1}`}, 0},
		{"compatibility of an unknown metric", "POST", "/v1beta/properties/42:checkCompatibility", "good", `{"metrics":[{"name":"revenue"}]}`, 400,
			[]string{`"field":"metrics[0].name"`, `not a valid metric`}, 0},
		{"a pivot report without pivots", "POST", "/v1beta/properties/42:runPivotReport", "good", report, 400, []string{`"field":"pivots"`}, 0},
		{"unknown method", "POST", "/v1beta/properties/42:runReportz", "good", report, 404, []string{`"status":"NOT_FOUND"`}, 0},
		{"no method", "POST", "/v1beta/properties/42", "good", report, 404, []string{`"status":"NOT_FOUND"`}, 0},
		{"a path in the id", "POST", "/v1beta/properties/4/2:runReport", "good", report, 400, []string{`not a property id`}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.calls = 0
			r := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			if tt.key != "" {
				r.Header.Set("Authorization", "Bearer "+tt.key)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			var compact bytes.Buffer
			_ = json.Compact(&compact, w.Body.Bytes()) // protojson's spacing varies
			body := compact.String()
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, body)
			}
			if !json.Valid(w.Body.Bytes()) {
				t.Fatalf("answer is not JSON: %s", body)
			}
			for _, s := range tt.want {
				if !strings.Contains(body, s) {
					t.Errorf("answer lacks %s:\n%s", s, body)
				}
			}
			if f.calls != tt.calls {
				t.Errorf("%d report calls, want %d", f.calls, tt.calls)
			}
			if tt.status == 429 && w.Header().Get("Retry-After") != "3" {
				t.Errorf("Retry-After %q, want 3", w.Header().Get("Retry-After"))
			}
		})
	}
	// Only the incompatible ones, as InsightsService answers them for the
	// path's property.
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/v1beta/properties/42:checkCompatibility", strings.NewReader(`{"dimensions":[{"name":"date"}],"compatibilityFilter":"INCOMPATIBLE"}`))
	r.Header.Set("Authorization", "Bearer good")
	h.ServeHTTP(w, r)
	var compact bytes.Buffer
	_ = json.Compact(&compact, w.Body.Bytes())
	if w.Code != 200 || compact.String() != `{"dimensionCompatibilities":[{"dimensionMetadata":{"apiName":"country"},"compatibility":"INCOMPATIBLE"}]}` {
		t.Errorf("the incompatible ones: %d %s", w.Code, w.Body)
	}
	if c := f.lastCompat; c == nil || c.PropertyId != "42" || len(c.Dimensions) != 1 || c.Dimensions[0].Name != "date" || c.CompatibilityFilter != insightsv1.Compatibility_INCOMPATIBLE {
		t.Errorf("compatibility asked %v", c)
	}
	if f.last == nil || f.last.PropertyId != "42" {
		t.Errorf("the reports were not asked for the path's property: %v", f.last)
	}
	if len(procedures) == 0 || procedures[0] != "/sextant.insights.v1.InsightsService/RunReport" {
		t.Errorf("authenticated for %v", procedures)
	}
}

// TestHandlerFailsClosed: without an authenticator nothing is answered.
func TestHandlerFailsClosed(t *testing.T) {
	f := &fakeReports{}
	w := httptest.NewRecorder()
	Handler(Config{Reports: f}).ServeHTTP(w, httptest.NewRequest("POST", "/v1beta/properties/42:runReport", strings.NewReader("{}")))
	if w.Code != 401 || f.calls != 0 {
		t.Fatalf("status %d after %d calls, want 401 and none", w.Code, f.calls)
	}
}
