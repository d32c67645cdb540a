package ga4data

import (
	"context"
	"strings"
	"testing"

	"connectrpc.com/connect"

	ga4 "github.com/sextant-analytics/sextant/gen/sextant/ga4/v1beta"
)

func TestGRPCTranslation(t *testing.T) {
	f := &fakeReports{}
	h := &handler{cfg: Config{Reports: f}}
	ctx := context.Background()
	week := []*ga4.DateRange{{StartDate: "7daysAgo", EndDate: "today"}}
	tests := []struct {
		name    string
		req     *ga4.RunReportRequest
		wantErr string // "" for an answer
	}{
		{"a report", &ga4.RunReportRequest{Property: "properties/42", DateRanges: week, Metrics: []*ga4.Metric{{Name: "eventCount"}}}, ""},
		{"quota asked, nothing told", &ga4.RunReportRequest{Property: "properties/42", DateRanges: week, ReturnPropertyQuota: true}, ""},
		{"no property", &ga4.RunReportRequest{DateRanges: week}, `"" is not properties/{id}`},
		{"a path for a property", &ga4.RunReportRequest{Property: "properties/4/2"}, "is not properties/{id}"},
		{"cohorts", &ga4.RunReportRequest{Property: "properties/42", CohortSpec: &ga4.Unsupported{}}, "cohortSpec is not supported"},
		{"comparisons", &ga4.RunReportRequest{Property: "properties/42", Comparisons: []*ga4.Unsupported{{}}}, "comparisons is not supported"},
		{"dimension expressions", &ga4.RunReportRequest{Property: "properties/42", Dimensions: []*ga4.Dimension{{Name: "x", DimensionExpression: &ga4.Unsupported{}}}}, "dimensionExpression"},
		{"metric expressions", &ga4.RunReportRequest{Property: "properties/42", Metrics: []*ga4.Metric{{Name: "x", Expression: "a/b"}}}, "expression"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.calls = 0
			resp, err := h.grpcRunReport(ctx, connect.NewRequest(tt.req))
			if tt.wantErr != "" {
				if err == nil || connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want INVALID_ARGUMENT with %q", err, tt.wantErr)
				}
				if f.calls != 0 {
					t.Errorf("a refused request reached the reports")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// The answer keeps the Data API's numbers: a metric value is
			// field 4 of MetricValue, the kind field 10.
			m := resp.Msg
			if m.Kind != "analyticsData#runReport" || len(m.Rows) != 1 || m.Rows[0].MetricValues[0].GetValue() != "7" ||
				m.MetricHeaders[0].Type != ga4.MetricType_TYPE_INTEGER || m.Metadata.GetTimeZone() != "42" {
				t.Fatalf("answer %v", m)
			}
		})
	}
	md, err := h.grpcGetMetadata(ctx, connect.NewRequest(&ga4.GetMetadataRequest{Name: "properties/42/metadata"}))
	if err != nil || md.Msg.Name != "properties/42/metadata" || len(md.Msg.Dimensions) != 2 {
		t.Fatalf("metadata %v, %v", md, err)
	}
	if _, err := h.grpcGetMetadata(ctx, connect.NewRequest(&ga4.GetMetadataRequest{Name: "properties/42"})); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("metadata of a name without /metadata: %v", err)
	}
	batch := &ga4.BatchRunReportsRequest{Property: "properties/42"}
	for i := 0; i < MaxBatch+1; i++ {
		batch.Requests = append(batch.Requests, &ga4.RunReportRequest{DateRanges: week})
	}
	if _, err := h.grpcBatchRunReports(ctx, connect.NewRequest(batch)); err == nil || !strings.Contains(err.Error(), "at most 5") {
		t.Fatalf("a batch of 6: %v", err)
	}
	batch.Requests = batch.Requests[:2]
	batch.Requests[1].Property = "properties/43"
	if _, err := h.grpcBatchRunReports(ctx, connect.NewRequest(batch)); err == nil || !strings.Contains(err.Error(), "requests[1].property") {
		t.Fatalf("a batch naming another property: %v", err)
	}
}
