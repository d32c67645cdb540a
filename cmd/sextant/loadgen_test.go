package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	insightsv1 "github.com/sextant-analytics/sextant/gen/sextant/insights/v1"
	"github.com/sextant-analytics/sextant/pkg/loadgen"
	"github.com/sextant-analytics/sextant/pkg/loadgen/driver"
	"github.com/sextant-analytics/sextant/pkg/sketch"
)

func TestLoadgenFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		ok   bool
	}{
		{"minimal", []string{"--keys", "sxw_a", "--events", "10"}, true},
		{"no keys", []string{"--events", "10"}, false},
		{"no stop", []string{"--keys", "sxw_a"}, false},
		{"bad mode", []string{"--keys", "sxw_a", "--events", "1", "--mode", "carrier-pigeon"}, false},
		{"batch too big", []string{"--keys", "sxw_a", "--events", "1", "--batch", "501"}, false},
		{"too much history", []string{"--keys", "sxw_a", "--duration", "1h", "--history", "72h"}, false},
		{"freshness without read key", []string{"--keys", "sxw_a", "--events", "1", "--freshness"}, false},
		{"freshness with read key", []string{"--keys", "sxw_a", "--events", "1", "--freshness", "--read-key", "sxr_a"}, true},
		{"bad server", []string{"--keys", "sxw_a", "--events", "1", "--server", "https://x"}, false},
		{"zipf unary", []string{"--keys", "sxw_a,sxw_b", "--events", "1", "--mode", "unary", "--properties-zipf", "1.1"}, true},
		{"zipf even", []string{"--keys", "sxw_a,sxw_b", "--events", "1", "--mode", "rest", "--properties-zipf", "0"}, true},
		{"zipf stream", []string{"--keys", "sxw_a,sxw_b", "--events", "1", "--properties-zipf", "1"}, false},
		{"zipf negative", []string{"--keys", "sxw_a", "--events", "1", "--mode", "unary", "--properties-zipf", "-1"}, false},
		{"zipf not a number", []string{"--keys", "sxw_a", "--events", "1", "--mode", "unary", "--properties-zipf", "x"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			_, err := parseLoadgen(tc.args, &stderr)
			if (err == nil) != tc.ok {
				t.Fatalf("parse: %v (want ok=%v)\n%s", err, tc.ok, stderr.String())
			}
		})
	}
}

// TestLoadgenTruth sends generated traffic to an embedded server over a
// gRPC stream and over REST, and checks that RunReport's totals and page
// views equal the truth the load generator wrote, exactly.
func TestLoadgenTruth(t *testing.T) {
	skipShort(t)
	ctx := context.Background()
	dir := t.TempDir()
	var keysFile bytes.Buffer
	var props []keys
	for _, name := range []string{"Shop A", "Shop B"} {
		k := createProperty(t, dir, name)
		props = append(props, k)
		b, _ := json.Marshal(k)
		keysFile.Write(append(b, '\n'))
	}
	kf := filepath.Join(dir, "keys.jsonl")
	if err := os.WriteFile(kf, keysFile.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	// A property that only the freshness probes of one run write to.
	probe := createProperty(t, dir, "Probe")
	props = append(props, probe)
	pb, _ := json.Marshal(probe)
	pf := filepath.Join(dir, "probe.jsonl")
	if err := os.WriteFile(pf, append(pb, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	startServer(t, dir, addr)

	// Small enough that users (2 048) and sessions (512) stay exact per
	// property, so the report must equal the truth to the unit.
	common := []string{"--server", addr, "--keys-file", kf, "--session-events", "20", "--visitor-events", "40", "--progress", "0", "--json"}
	runs := []struct {
		name string
		args []string
	}{
		{"stream", []string{"--mode", "stream", "--events", "5000", "--batch", "25", "--concurrency", "4", "--seed", "1",
			"--freshness", "--freshness-interval", "20ms"}},
		{"rest", []string{"--mode", "rest", "--events", "400", "--batch", "1", "--concurrency", "8", "--seed", "2",
			"--freshness", "--freshness-report", "report", "--freshness-interval", "20ms"}},
		{"unary", []string{"--mode", "unary", "--events", "300", "--batch", "7", "--concurrency", "1", "--seed", "3",
			"--freshness", "--freshness-keys-file", pf, "--freshness-interval", "10ms"}},
		// Every batch to a property drawn at random (Zipf): the first gets
		// two thirds of them.
		{"zipf", []string{"--mode", "unary", "--events", "1000", "--batch", "10", "--concurrency", "4", "--seed", "4",
			"--properties-zipf", "1", "--freshness", "--freshness-keys-file", pf, "--freshness-interval", "10ms"}},
	}
	var truths []loadgen.TruthReport
	for _, run := range runs {
		truthFile := filepath.Join(dir, "truth-"+run.name+".json")
		var stdout, stderr bytes.Buffer
		args := append(append(append([]string{}, common...), run.args...), "--truth", truthFile)
		if err := loadgenCmd(ctx, args, &stdout, &stderr); err != nil {
			t.Fatalf("loadgen %s: %v\n%s\n%s", run.name, err, stdout.String(), stderr.String())
		}
		var res driver.Result
		if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
			t.Fatalf("loadgen %s printed %q: %v", run.name, stdout.String(), err)
		}
		var want int64 = map[string]int64{"stream": 5000, "rest": 400, "unary": 300, "zipf": 1000}[run.name]
		if run.name == "zipf" && (res.PropertiesWithTraffic != 2 || res.PropertiesZipf != 1) {
			t.Fatalf("loadgen zipf: %d properties with traffic (want 2), s = %v", res.PropertiesWithTraffic, res.PropertiesZipf)
		}
		if res.EventsAcked != want || res.EventsSent != want || res.EventsRejected != 0 || res.EventsFailed != 0 {
			t.Fatalf("loadgen %s: %+v", run.name, res)
		}
		if res.Latency.Count != uint64(res.BatchesAcked) || res.Latency.P99Ms <= 0 || res.Latency.MaxMs < res.Latency.P50Ms {
			t.Fatalf("loadgen %s latency: %+v", run.name, res.Latency)
		}
		if res.LongestAckGapMs <= 0 || res.LongestAckGapMs > res.ElapsedSeconds*1000 {
			t.Fatalf("loadgen %s: longest time without an ack %vms in a run of %vs", run.name, res.LongestAckGapMs, res.ElapsedSeconds)
		}
		if res.Freshness == nil || res.Freshness.Count == 0 || res.Freshness.TimedOut != 0 || res.Freshness.Query.Count < res.Freshness.Count {
			t.Fatalf("freshness probes: %+v", res.Freshness)
		}
		b, err := os.ReadFile(truthFile)
		if err != nil {
			t.Fatal(err)
		}
		var tr loadgen.TruthReport
		if err := json.Unmarshal(b, &tr); err != nil {
			t.Fatal(err)
		}
		if run.name == "zipf" {
			var ev [2]int64
			for _, p := range tr.Properties {
				if p.Index < 2 {
					ev[p.Index] = p.EventCount
				}
			}
			if ev[0]+ev[1] != want || ev[0] < 550 || ev[0] > 780 {
				t.Fatalf("loadgen zipf: events per property %v, want about 2/3 of %d for the first", ev, want)
			}
		}
		truths = append(truths, tr)
	}

	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ic := insightsv1.NewInsightsServiceClient(conn)
	for i, k := range props {
		// The runs' visitors are distinct (other seeds), so the truths add up.
		var want struct{ events, views, users, sessions int64 }
		paths := map[string]int64{}
		startDate, endDate := "9999-12-31", "0000-01-01"
		for _, tr := range truths {
			for _, p := range tr.Properties {
				if p.Index != i {
					continue
				}
				if p.PropertyID != k.PropertyID {
					t.Fatalf("truth names property %d %q, want %q", i, p.PropertyID, k.PropertyID)
				}
				want.events += p.EventCount
				want.views += p.ScreenPageViews
				want.users += p.TotalUsers
				want.sessions += p.Sessions
				for path, n := range p.PagePathViews {
					paths[path] += n
				}
			}
			startDate, endDate = min(startDate, tr.StartDate), max(endDate, tr.EndDate)
		}
		if i == 2 && (want.events == 0 || want.events != want.views || want.events != want.users || want.events != want.sessions) {
			t.Fatalf("probe property: truth %+v, want one page view, user and session per probe", want)
		}
		if want.sessions > sketch.ExactLimit || want.users > sketch.ExactLimit {
			t.Fatalf("property %d: %d users, %d sessions: too many for exact sketches", i, want.users, want.sessions)
		}
		rctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+k.ReadKey)
		req := &insightsv1.RunReportRequest{
			Dimensions:         []*insightsv1.Dimension{{Name: "pagePath"}},
			Metrics:            []*insightsv1.Metric{{Name: "screenPageViews"}, {Name: "eventCount"}, {Name: "totalUsers"}, {Name: "sessions"}},
			DateRanges:         []*insightsv1.DateRange{{StartDate: startDate, EndDate: endDate}},
			MetricAggregations: []insightsv1.MetricAggregation{insightsv1.MetricAggregation_TOTAL},
			Limit:              100_000,
		}
		wantTotal := fmt.Sprintf("%d/%d/%d/%d", want.views, want.events, want.users, want.sessions)
		var got string
		var resp *insightsv1.RunReportResponse
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			resp, err = ic.RunReport(rctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Totals) == 1 {
				m := resp.Totals[0].MetricValues
				got = m[0].Value + "/" + m[1].Value + "/" + m[2].Value + "/" + m[3].Value
			}
			if got == wantTotal {
				break
			}
		}
		if got != wantTotal {
			t.Fatalf("property %d: report totals views/events/users/sessions %s, truth %s", i, got, wantTotal)
		}
		gotPaths := map[string]int64{}
		for _, row := range resp.Rows {
			var n int64
			fmt.Sscan(row.MetricValues[0].Value, &n)
			if n > 0 {
				gotPaths[row.DimensionValues[0].Value] = n
			}
		}
		if a, b := sortedPairs(gotPaths), sortedPairs(paths); a != b {
			t.Fatalf("property %d: page views by path differ:\nreport %s\ntruth  %s", i, a, b)
		}
		t.Logf("property %d: %s views/events/users/sessions over %d paths, as the truth says", i, got, len(paths))
	}
}

func sortedPairs(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%d ", k, m[k])
	}
	return b.String()
}
