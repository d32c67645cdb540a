package collect

import (
	"fmt"
	"strings"
	"testing"
	"time"

	collectv1 "github.com/sextant-analytics/sextant/gen/sextant/collect/v1"
	"google.golang.org/protobuf/proto"
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

// BenchmarkEncode is collect's work on a batch, from its bytes to its
// events' bytes; BenchmarkReference the implementation before it, from
// the decoding of the request to the encoding of its events.
func BenchmarkEncode(b *testing.B) {
	req, err := proto.Marshal(benchRequest(b))
	if err != nil {
		b.Fatal(err)
	}
	enc := NewEncoder(DefaultLimits())
	meta := Meta{PropertyID: "prop-1", UserAgent: uaWindowsChrome, ClientIP: mustAddr("8.8.8.8"), Now: testNow}
	run := func() {
		if _, err := enc.Encode(req, meta); err != nil {
			b.Fatal(err)
		}
	}
	benchEvents(b, 25, run)
}

func BenchmarkReference(b *testing.B) {
	req, err := proto.Marshal(benchRequest(b))
	if err != nil {
		b.Fatal(err)
	}
	meta := Meta{PropertyID: "prop-1", UserAgent: uaWindowsChrome, ClientIP: mustAddr("8.8.8.8"), Now: testNow}
	run := func() {
		msg := &collectv1.CollectRequest{}
		if err := proto.Unmarshal(req, msg); err != nil {
			b.Fatal(err)
		}
		evs, err := referenceBuild(msg, meta, DefaultLimits())
		if err != nil {
			b.Fatal(err)
		}
		for _, ev := range evs {
			if _, err := proto.Marshal(ev); err != nil {
				b.Fatal(err)
			}
		}
	}
	benchEvents(b, 25, run)
}

func benchEvents(b *testing.B, events int, run func()) {
	run()
	b.ReportAllocs()
	for b.Loop() {
		run()
	}
	n := float64(b.N) * float64(events)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/event")
	b.ReportMetric(testing.AllocsPerRun(100, run)/float64(events), "allocs/event")
}

// BenchmarkEncodeItems is BenchmarkEncode for an ecommerce batch: 25
// purchases of 5 items each, stamped with a property's settings.
func BenchmarkEncodeItems(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"clientId":"1234567890.1772366000","events":[`)
	for i := range 25 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"name":"purchase","timestampMicros":"%d","params":{"ga_session_id":"1772366000","transaction_id":"T%d","currency":"USD","value":49.95,"coupon":"SPRING","items":[`,
			micros(testNow.Add(-time.Duration(25-i)*time.Second)), i)
		for k := range 5 {
			if k > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"item_id":"SKU%d","item_name":"Shirt %d","item_brand":"Acme","item_category":"Apparel","item_variant":"Red","price":9.99,"quantity":%d}`, k, k, k+1)
		}
		sb.WriteString(`]}}`)
	}
	sb.WriteString(`]}`)
	req, err := proto.Marshal(parseReq(b, sb.String()))
	if err != nil {
		b.Fatal(err)
	}
	enc := NewEncoder(DefaultLimits())
	meta := Meta{PropertyID: "prop-1", UserAgent: uaWindowsChrome, ClientIP: mustAddr("8.8.8.8"), Now: testNow,
		Settings: Settings{Currency: "EUR", Rates: map[string]float64{"USD": 0.9}, KeyEvents: []string{"purchase"}, EventDimensions: []string{"coupon"}}}
	run := func() {
		if _, err := enc.Encode(req, meta); err != nil {
			b.Fatal(err)
		}
	}
	benchEvents(b, 25, run)
}
