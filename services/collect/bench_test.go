package collect

import (
	"fmt"
	"strings"
	"testing"
	"time"

	collectv1 "github.com/sextant-analytics/sextant/gen/sextant/collect/v1"
)

// benchRequest is a realistic browser batch: 25 page views of one session
// with the tag's usual parameters.
func benchRequest(tb testing.TB) *collectv1.CollectRequest {
	var b strings.Builder
	fmt.Fprintf(&b, `{"clientId":"1234567890.1772366000","userProperties":{"plan":{"value":"pro"}},"events":[`)
	for i := range 25 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":"page_view","timestampMicros":"%d","params":{
			"page_location":"https://www.example.com/blog/post-%d/?utm_source=newsletter&utm_medium=email&utm_campaign=spring",
			"page_referrer":"https://www.google.com/",
			"page_title":"Post number %d - Example Blog",
			"ga_session_id":"1772366000","ga_session_number":3,"engagement_time_msec":%d,
			"language":"en-us","screen_resolution":"1920x1080"}}`,
			micros(testNow.Add(-time.Duration(25-i)*time.Second)), i, i, 1000+i)
	}
	b.WriteString(`]}`)
	return parseReq(tb, b.String())
}

func BenchmarkBuildEvents(b *testing.B) {
	req := benchRequest(b)
	meta := Meta{PropertyID: "prop-1", UserAgent: uaWindowsChrome, ClientIP: mustAddr("8.8.8.8"), Now: testNow}
	lim := DefaultLimits()
	if _, err := BuildEvents(req, meta, lim); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := BuildEvents(req, meta, lim); err != nil {
			b.Fatal(err)
		}
	}
	n := float64(b.N) * float64(len(req.Events))
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/event")
	b.ReportMetric(testing.AllocsPerRun(100, func() { _, _ = BuildEvents(req, meta, lim) })/float64(len(req.Events)), "allocs/event")
}
