package insights

import (
	"context"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	insightsv1 "github.com/sextant-analytics/sextant/gen/sextant/insights/v1"
	"github.com/sextant-analytics/sextant/pkg/analytics"
	"github.com/sextant-analytics/sextant/pkg/block"
)

// benchCells is 30 days × 24 hours × 50 dimension tuples of hour cells,
// each with 1..maxUsers users out of 20 000 (half of them active) and as
// many sessions.
func benchCells(b *testing.B, maxUsers int) (*memCells, time.Time, int) {
	b.Helper()
	const days, tuples, usersPool = 30, 50, 20000
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(1, 2))
	events := []string{"page_view", "scroll", "click", "user_engagement", "session_start"}
	countries := []string{"US", "DE", "FR", "GB", "IN"}
	devices := []string{"desktop", "mobile", "tablet"}
	keys := make([]string, tuples)
	for i := range keys {
		keys[i] = tuple{
			events[i%len(events)], fmt.Sprintf("/page/%d", i/len(events)), countries[i%len(countries)],
			devices[i%len(devices)], "Chrome", "Windows", "google", "organic", "",
		}.Encode()
	}
	cells := make([]tcell, 0, days*24*tuples)
	size := 0
	for h := 0; h < days*24; h++ {
		bucket := start.Add(time.Duration(h) * time.Hour).Unix()
		for _, k := range keys {
			a := analytics.NewAggregate()
			n := 1 + rng.IntN(maxUsers)
			a.Events = int64(n * 2)
			a.PageViews = int64(n)
			a.EngagementMsec = int64(n) * 7000
			for range n {
				u := hashID(uint64(rng.IntN(usersPool)))
				s := hashID(uint64(1<<40 + h*usersPool + rng.IntN(usersPool)))
				a.Users.Add(u)
				a.Sessions.Add(s)
				if rng.IntN(2) == 0 {
					a.ActiveUsers.Add(u)
					a.EngagedSess.Add(s)
				}
			}
			v, err := a.MarshalBinary()
			if err != nil {
				b.Fatal(err)
			}
			size += len(v)
			cells = append(cells, tcell{Property: "p", Grain: block.Hour, Bucket: bucket, Dims: k, Value: v})
		}
	}
	return newMemCells(cells...), start.AddDate(0, 0, days), size
}

// cpuTime is the CPU time the process has used: on a shared machine it is a
// steadier measure than the wall clock.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRunReport reads 36 000 hour cells per report. "heavy" cells hold
// 25 users on average (about 800 bytes each), "light" ones 3.
func BenchmarkRunReport(b *testing.B) {
	for _, data := range []struct {
		name     string
		maxUsers int
	}{{"heavy", 49}, {"light", 5}} {
		b.Run(data.name, func(b *testing.B) { benchmarkRunReport(b, data.maxUsers) })
	}
}

func benchmarkRunReport(b *testing.B, maxUsers int) {
	uncompacted, now, size := benchCells(b, maxUsers)
	b.Logf("%d cells, %.1f MB of values", len(uncompacted.source), float64(size)/1e6)
	ranges := []*insightsv1.DateRange{dr("30daysAgo", "yesterday")}
	cases := []struct {
		name string
		req  *insightsv1.RunReportRequest
		rows int
	}{
		{"date_3metrics", &insightsv1.RunReportRequest{PropertyId: "p", DateRanges: ranges,
			Dimensions: dims("date"), Metrics: mets("eventCount", "totalUsers", "sessions"),
			MetricAggregations: []insightsv1.MetricAggregation{insightsv1.MetricAggregation_TOTAL}}, 30},
		{"top10_pagePath", &insightsv1.RunReportRequest{PropertyId: "p", DateRanges: ranges,
			Dimensions: dims("pagePath"), Metrics: mets("totalUsers", "sessions"), Limit: 10}, 10},
	}
	for _, mode := range []struct {
		name  string
		cells *memCells
	}{{"additions", uncompacted}, {"compacted", uncompacted.compacted(compactAll)}} {
		cells := mode.cells
		for _, c := range cases {
			b.Run(mode.name+"/"+c.name, func(b *testing.B) {
				b.ReportAllocs()
				var resp *insightsv1.RunReportResponse
				start, cpu0 := time.Now(), cpuTime()
				for b.Loop() {
					var err error
					cells.scans = cells.scans[:0]
					resp, err = RunReport(context.Background(), cells, time.UTC, now, c.req)
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/op")
				b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
				if len(resp.GetRows()) != c.rows {
					b.Fatalf("%d rows, want %d", len(resp.GetRows()), c.rows)
				}
			})
		}
	}
}
