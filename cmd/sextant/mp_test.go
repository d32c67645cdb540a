package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestMeasurementProtocol: a visit sent with GA4's Measurement Protocol,
// with gtag.js's protocol and to /v1/collect counts the same in every
// metric; the
// debug endpoint stores nothing and answers collect's own checks as GA4's
// validation messages.
func TestMeasurementProtocol(t *testing.T) {
	skipShort(t)
	addr := freeAddr(t)
	srv := startServer(t, t.TempDir(), addr)
	env := demoKeys(t, srv.stdout.String())
	base, pid := "http://"+addr, env["SEXTANT_PROPERTY_ID"]
	code, key := call(t, "POST", base+"/v1/properties/"+pid+"/keys", env["SEXTANT_ADMIN_KEY"], `{"scope":"KEY_SCOPE_MEASUREMENT"}`)
	secret := str(key, "key", "secret")
	if code != 200 || !strings.HasPrefix(secret, "sxm_") {
		t.Fatalf("create a measurement secret: %d %v", code, key)
	}
	code, prop := call(t, "GET", base+"/v1/properties/"+pid, env["SEXTANT_ADMIN_KEY"], "")
	mid := str(prop, "property", "measurementId")
	if code != 200 || !strings.HasPrefix(mid, "G-") {
		t.Fatalf("property: %d %v", code, prop)
	}
	mp := func(path, body string) (int, string) {
		resp, err := http.Post(base+path+"?measurement_id="+mid+"&api_secret="+secret, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// The same visit twice: two page views and an engagement, 5 s apart.
	ts := time.Now().Add(-time.Minute).UnixMicro()
	visit := func(page string, snake bool) string {
		k := func(camel, sn string) string {
			if snake {
				return sn
			}
			return camel
		}
		return fmt.Sprintf(`{"%s":"c-%s","%s":%d,"events":[
			{"name":"page_view","params":{"page_location":"https://shop.example/%s","page_title":"T","session_id":%d}},
			{"name":"page_view","params":{"page_location":"https://shop.example/%s?b","page_title":"T","session_id":%d}},
			{"name":"scroll","params":{"page_location":"https://shop.example/%s","engagement_time_msec":12000,"session_id":%d}}]}`,
			k("clientId", "client_id"), page, k("timestampMicros", "timestamp_micros"), ts, page, ts/1e6, page, ts/1e6, page, ts/1e6)
	}
	if code, body := mp("/mp/collect", visit("mp", true)); code != 204 {
		t.Fatalf("/mp/collect: %d %s", code, body)
	}
	if code, body := postJSON(t, base+"/v1/collect", env["SEXTANT_WRITE_KEY"], visit("v1", false)); code != 200 {
		t.Fatalf("/v1/collect: %d %v", code, body)
	}
	// The same visit as gtag.js sends it: shared parameters in the query,
	// one hit per line.
	loc := url.QueryEscape("https://shop.example/gtag")
	gq := fmt.Sprintf("v=2&tid=%s&cid=c-gtag&sid=%d&dt=T&_p=7&dl=%s", mid, ts/1e6, loc)
	gbody := "en=page_view&_s=1\nen=page_view&_s=2&dl=" + url.QueryEscape("https://shop.example/gtag?b") + "\nen=scroll&_s=3&_et=12000"
	resp, err := http.Post(base+"/g/collect?"+gq, "text/plain", strings.NewReader(gbody))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("/g/collect: %d", resp.StatusCode)
	}
	// An app's hit names the property's app id and its app instance.
	appID := str(prop, "property", "firebaseAppId")
	resp, err = http.Post(base+"/mp/collect?firebase_app_id="+url.QueryEscape(appID)+"&api_secret="+secret, "application/json",
		strings.NewReader(`{"app_instance_id":"app-1","events":[{"name":"screen_view","params":{"screen_name":"Home"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.HasPrefix(appID, "1:"+pid+":app:") || resp.StatusCode != 204 {
		t.Fatalf("an app's hit with firebase_app_id %q: %d", appID, resp.StatusCode)
	}
	// The debug endpoint checks with collect's own rules and stores nothing.
	if code, body := mp("/debug/mp/collect", visit("debug", true)); code != 200 || body != `{"validationMessages":[]}` {
		t.Fatalf("/debug/mp/collect of a valid hit: %d %s", code, body)
	}
	if code, body := mp("/debug/mp/collect", `{"client_id":"c","events":[{"name":"page_view","params":{"page_location":"not a url"}}]}`); code != 200 ||
		!strings.Contains(body, `"fieldPath":"events[0].params.page_location","description":"page_location must be an absolute http(s) URL","validationCode":"VALUE_INVALID"`) {
		t.Fatalf("/debug/mp/collect of a hit collect refuses: %d %s", code, body)
	}
	if code, body := mp("/mp/collect", `{"client_id":"c","events":[{"name":"page_view","params":{"page_location":"not a url"}}]}`); code != 400 || !strings.Contains(body, "page_location") {
		t.Fatalf("/mp/collect of a hit collect refuses: %d %s", code, body)
	}
	report := `{"dimensions":[{"name":"pagePath"}],"metrics":[{"name":"eventCount"},{"name":"screenPageViews"},{"name":"totalUsers"},{"name":"sessions"},{"name":"engagedSessions"},{"name":"userEngagementDuration"}],"dateRanges":[{"startDate":"yesterday","endDate":"today"}],"orderBys":[{"dimension":{"dimensionName":"pagePath"}}]}`
	var rows string
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, body := postJSON(t, base+"/v1/properties/"+pid+":runReport", env["SEXTANT_READ_KEY"], report)
		rows = fmt.Sprint(body["rows"])
		// Each request's events may be counted in more than one checkpoint.
		full := "metricValues:[map[value:3] map[value:2] map[value:1] map[value:1] map[value:1] map[value:12"
		if rowOf(rows, "/mp") == full && rowOf(rows, "/v1") == full && rowOf(rows, "/gtag") == full || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	mpRow, v1Row, gRow := rowOf(rows, "/mp"), rowOf(rows, "/v1"), rowOf(rows, "/gtag")
	if !strings.HasPrefix(mpRow, "metricValues:[map[value:3] map[value:2] map[value:1] map[value:1] map[value:1] map[value:12") || mpRow != v1Row || gRow != v1Row || strings.Contains(rows, "/debug") {
		t.Fatalf("the MP hit counts %q, the /g/collect hit %q, the /v1/collect hit %q (rows %s)", mpRow, gRow, v1Row, rows)
	}
}

// rowOf returns the metric values of the row of a report's rows (as
// fmt.Sprint prints them) whose dimension is value.
func rowOf(rows, value string) string {
	i := strings.Index(rows, "value:"+value+"]")
	if i < 0 {
		return ""
	}
	rest := rows[i:]
	if j := strings.Index(rest, "metricValues:"); j >= 0 {
		rest = rest[j:]
		if k := strings.Index(rest, "]]"); k >= 0 {
			return rest[:k]
		}
	}
	return ""
}
