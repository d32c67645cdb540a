package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sextant-analytics/sextant/pkg/property"
)

// TestBrowserGtag: a page on another origin loads a gtag.js-like sender
// (testdata/gtag/sender.js, written for the test: no Google script is
// fetched) pointed at Sextant, as a site keeping Google's tag sets its
// server_container_url; the headless browser sends its beacons, and the
// reports count the page view, the first visit, the session and the
// engagement.
func TestBrowserGtag(t *testing.T) {
	skipShort(t)
	b := newBrowser(t)
	dataDir := t.TempDir()
	k := createProperty(t, dataDir, "gtag site")
	addr := freeAddr(t)
	startServer(t, dataDir, addr)
	sextant := "http://" + addr
	sender, err := os.ReadFile(filepath.Join("testdata", "gtag", "sender.js"))
	if err != nil {
		t.Fatal(err)
	}
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/sender.js":
			w.Header().Set("Content-Type", "text/javascript")
			w.Write(sender)
		case "/shop/gtag-page":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, `<!doctype html><title>gtag page</title><body><p>A shop page</p>
<script>window.gtagTest = {server: %q, tid: %q};</script><script src="/sender.js"></script>`, sextant, property.MeasurementIDOf(k.PropertyID))
		default:
			http.NotFound(w, r)
		}
	}))
	defer site.Close()
	b.do("opening the page", chromedp.Navigate(site.URL+"/shop/gtag-page"))
	b.wait("the beacons", `document.body.dataset.sent === 'yes'`)

	report := `{"dimensions":[{"name":"eventName"}],"metrics":[{"name":"eventCount"},{"name":"screenPageViews"},{"name":"newUsers"},{"name":"sessions"},{"name":"userEngagementDuration"}],
		"dateRanges":[{"startDate":"today","endDate":"today"}],"dimensionFilter":{"filter":{"fieldName":"pagePath","stringFilter":{"value":"/shop/gtag-page"}}},
		"metricAggregations":["TOTAL"],"orderBys":[{"dimension":{"dimensionName":"eventName"}}]}`
	// The two beacons are two requests: either may be counted first.
	wants := []string{"value:first_visit", "value:page_view", "value:scroll", "value:session_start", "value:user_engagement",
		// totals: 5 events, 1 page view, 1 new user, 1 session, 4.2 s of engagement
		"totals [map[dimensionValues:[map[value:RESERVED_TOTAL]] metricValues:[map[value:5] map[value:1] map[value:1] map[value:1] map[value:4.2]]]]"}
	var got, missing string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		_, body := postJSON(t, sextant+"/v1/properties/"+k.PropertyID+":runReport", k.ReadKey, report)
		got, missing = fmt.Sprint(body["rows"], " totals ", body["totals"]), ""
		for _, s := range wants {
			if !strings.Contains(got, s) {
				missing = s
				break
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the report of the page lacks %s:\n%s", missing, got)
		}
	}
}
