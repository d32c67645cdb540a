package main

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"

	insightsv1 "github.com/sextant-analytics/sextant/gen/sextant/insights/v1"
	"github.com/sextant-analytics/sextant/gen/sextant/insights/v1/insightsv1connect"
	projectionv1 "github.com/sextant-analytics/sextant/gen/sextant/projection/v1"
	"github.com/sextant-analytics/sextant/gen/sextant/projection/v1/projectionv1connect"
)

// A dimension added in a new logic version: traffic/v3 stores hostName.
// Replaying the log into v3 answers reports by host; v1, built before,
// keeps answering as it did and says it does not store the dimension.
func TestNewDimensionByReplay(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	k := createProperty(t, dir, "Hosts")
	admin := adminKey(t, embeddedEnv(), "--data-dir", dir)
	addr := freeAddr(t)
	startServer(t, dir, addr)
	tr := sendHistory(t, addr, k.WriteKey, 40, 11) // page views of shop.example
	ctx := context.Background()
	ic := insightsv1connect.NewInsightsServiceClient(http.DefaultClient, "http://"+addr)
	byHost := func(version string) (*insightsv1.RunReportResponse, error) {
		req := connect.NewRequest(&insightsv1.RunReportRequest{
			Dimensions:        []*insightsv1.Dimension{{Name: "hostName"}},
			Metrics:           []*insightsv1.Metric{{Name: "screenPageViews"}},
			DateRanges:        []*insightsv1.DateRange{{StartDate: "yesterday", EndDate: "today"}},
			ProjectionVersion: version,
		})
		req.Header().Set("Authorization", "Bearer "+k.ReadKey)
		resp, err := ic.RunReport(ctx, req)
		if err != nil {
			return nil, err
		}
		return resp.Msg, nil
	}
	// v1 has everything, and no host names.
	deadline := time.Now().Add(30 * time.Second)
	for {
		views, _, err := viewsByPath(ctx, ic, k, "v1")
		total := 0
		for _, n := range views {
			total += n
		}
		want := 0
		for _, n := range tr.v1Views {
			want += n
		}
		if err == nil && total == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("v1 has %d page views, want %d (%v)", total, want, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := byHost("v1"); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("hostName from v1: %v, want INVALID_ARGUMENT", err)
	}

	pc := projectionv1connect.NewProjectionServiceClient(http.DefaultClient, "http://"+addr)
	req := connect.NewRequest(&projectionv1.StartReplayRequest{Name: "traffic", Version: "v3"})
	req.Header().Set("Authorization", "Bearer "+admin)
	if _, err := pc.StartReplay(ctx, req); err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, n := range tr.v2Views { // v3 excludes bots as v2 does
		want += n
	}
	deadline = time.Now().Add(60 * time.Second)
	for {
		resp, err := byHost("v3")
		got := ""
		if err == nil && len(resp.Rows) == 1 {
			got = resp.Rows[0].DimensionValues[0].Value + "=" + resp.Rows[0].MetricValues[0].Value
		}
		if got == fmt.Sprintf("shop.example=%d", want) {
			break
		}
		if time.Now().After(deadline) {
			views, users, perr := viewsByPath(ctx, ic, k, "v3")
			st := connect.NewRequest(&projectionv1.GetReplayRequest{Name: "traffic", Version: "v3"})
			st.Header().Set("Authorization", "Bearer "+admin)
			p, serr := pc.GetReplay(ctx, st)
			var progress *projectionv1.Projection
			if serr == nil {
				progress = p.Msg.Projection
			}
			t.Fatalf("v3 by host: %q (%v), want shop.example=%d; v3 by path %v, %d users (%v); replay %v (%v)", got, err, want, views, users, perr, progress, serr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
