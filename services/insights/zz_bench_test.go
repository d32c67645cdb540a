package insights

import (
	"context"
	"testing"
	"time"

	insightsv1 "github.com/sextant-analytics/sextant/gen/sextant/insights/v1"
)

func BenchmarkWorkers(b *testing.B) {
	cells, now := benchCells(b)
	ranges := []*insightsv1.DateRange{dr("30daysAgo", "yesterday")}
	req := &insightsv1.RunReportRequest{PropertyId: "p", DateRanges: ranges,
		Dimensions: dims("date"), Metrics: mets("eventCount", "totalUsers", "sessions")}
	for _, w := range []int{1, 2} {
		b.Run(string(rune('0'+w)), func(b *testing.B) {
			start, cpu0 := time.Now(), cpuTime()
			for b.Loop() {
				if _, err := runReport(context.Background(), cells, time.UTC, now, req, options{workers: w, parallelAfter: 8192}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/op")
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
		})
	}
}
