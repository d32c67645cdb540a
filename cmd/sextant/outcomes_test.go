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

// TestGA4Outcomes: a shop's visits sent through /v1/collect, the
// Measurement Protocol and gtag.js, with the property's currency, rates,
// key events and custom definitions set through the admin API, report
// GA4's ecommerce, key-event, session, channel, geography and custom
// dimensions and metrics with the numbers those hits add up to, once
// traffic/v6 (v5's catalogue, stored in fewer series) is active; realtime
// reports read its minute sections, which it keeps in one part.
func TestGA4Outcomes(t *testing.T) {
	skipShort(t)
	addr := freeAddr(t)
	// A new store that starts with the version of outcomes.
	srv := startServer(t, t.TempDir(), addr, "--start-version", "v6")
	env := demoKeys(t, srv.stdout.String())
	base, pid, admin := "http://"+addr, env["SEXTANT_PROPERTY_ID"], env["SEXTANT_ADMIN_KEY"]
	code, list := call(t, "GET", base+"/v1/projections", admin, "")
	if code != 200 || !strings.Contains(fmt.Sprint(list), "state:PROJECTION_STATE_ACTIVE version:v6") || strings.Contains(fmt.Sprint(list), "version:v1") {
		t.Fatalf("projections of a store started with v6: %d %v", code, list)
	}
	deadline := time.Now().Add(60 * time.Second)
	code, prop := call(t, "PATCH", base+"/v1/properties/"+pid, admin, `{"currencyCode":"EUR","currencyRates":{"USD":0.5},
		"keyEvents":["purchase","sign_up"],"customEventDimensions":["plan"],"customUserDimensions":["tier"],"customEventMetrics":["points"]}`)
	if code != 200 || str(prop, "property", "currencyCode") != "EUR" {
		t.Fatalf("settings: %d %v", code, prop)
	}
	code, key := call(t, "POST", base+"/v1/properties/"+pid+"/keys", admin, `{"scope":"KEY_SCOPE_MEASUREMENT"}`)
	secret := str(key, "key", "secret")
	if code != 200 {
		t.Fatalf("measurement secret: %d %v", code, key)
	}
	mid := str(prop, "property", "measurementId")

	now := time.Now().Add(-5 * time.Minute)
	us := func(d time.Duration) int64 { return now.Add(d).UnixMicro() }
	sid := now.Unix()
	// c1, by /v1/collect, a returning user (its second session): views two
	// items, adds one to the cart, checks out and pays 40 USD (20 EUR) for
	// three units, over 90 seconds.
	v1 := fmt.Sprintf(`{"clientId":"c1","userProperties":{"tier":{"value":"gold"}},"events":[
		{"name":"page_view","timestampMicros":%d,"params":{"page_location":"https://shop.example/","session_id":%d,"ga_session_number":2}},
		{"name":"view_item","timestampMicros":%d,"params":{"session_id":%d,"ga_session_number":2,"currency":"USD",
			"items":[{"item_id":"S1","item_name":"Shirt","item_brand":"Acme","item_category":"Apparel","price":10,"quantity":2},{"item_name":"Mug","price":5}]}},
		{"name":"add_to_cart","timestampMicros":%d,"params":{"session_id":%d,"ga_session_number":2,"items":[{"item_name":"Shirt","quantity":2}]}},
		{"name":"begin_checkout","timestampMicros":%d,"params":{"session_id":%d,"ga_session_number":2}},
		{"name":"purchase","timestampMicros":%d,"params":{"session_id":%d,"ga_session_number":2,"value":40,"currency":"USD","transaction_id":"T1",
			"plan":"pro","points":3,
			"items":[{"item_id":"S1","item_name":"Shirt","item_brand":"Acme","item_category":"Apparel","price":15,"quantity":2},{"item_name":"Mug","price":10}]}}]}`,
		us(0), sid, us(10*time.Second), sid, us(20*time.Second), sid, us(30*time.Second), sid, us(90*time.Second), sid)
	if code, body := postJSON(t, base+"/v1/collect", env["SEXTANT_WRITE_KEY"], v1); code != 200 {
		t.Fatalf("/v1/collect: %d %v", code, body)
	}
	// c2, by the Measurement Protocol from Paris: signs up and pays 30 EUR
	// for a hat.
	mp := fmt.Sprintf(`{"client_id":"c2","timestamp_micros":%d,"user_location":{"city":"Paris","region_id":"FR-IDF","country_id":"FR"},"events":[
		{"name":"sign_up","params":{"session_id":%d}},
		{"name":"purchase","params":{"session_id":%d,"value":30,"currency":"EUR","transaction_id":"T2",
			"items":[{"item_name":"Hat","item_brand":"Acme","price":30}]}}]}`, us(time.Minute), sid, sid)
	resp, err := http.Post(base+"/mp/collect?measurement_id="+mid+"&api_secret="+secret, "application/json", strings.NewReader(mp))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("/mp/collect: %d %s", resp.StatusCode, b)
	}
	// c3, by gtag.js, from a newsletter: pays 10 EUR (sent as "eur") for a
	// scarf.
	gq := fmt.Sprintf("v=2&tid=%s&cid=c3&sid=%d&sct=1&dl=%s", mid, sid, url.QueryEscape("https://shop.example/?utm_source=newsletter&utm_medium=email"))
	gbody := "en=purchase&cu=eur&epn.value=10&ep.transaction_id=T3&pr1=" + url.QueryEscape("nmScarf~brWool Co~pr10~qt1")
	resp, err = http.Post(base+"/g/collect?"+gq, "text/plain", strings.NewReader(gbody))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("/g/collect: %d", resp.StatusCode)
	}

	reportOf := func(method, body string) [][]string {
		t.Helper()
		code, r := postJSON(t, base+"/v1/properties/"+pid+method, env["SEXTANT_READ_KEY"], body)
		if code != 200 {
			t.Fatalf("report %s: %d %v", body, code, r)
		}
		var rows [][]string
		list, _ := r["rows"].([]any)
		for _, x := range list {
			row := x.(map[string]any)
			var vals []string
			for _, part := range []string{"dimensionValues", "metricValues"} {
				vs, _ := row[part].([]any)
				for _, v := range vs {
					vals = append(vals, v.(map[string]any)["value"].(string))
				}
			}
			rows = append(rows, vals)
		}
		return rows
	}
	report := func(body string) [][]string { t.Helper(); return reportOf(":runReport", body) }
	const today = `"dateRanges":[{"startDate":"yesterday","endDate":"today"}]`
	// The realtime view (the last 30 minutes, read from the minute
	// sections) counts every hit by name and country as the day's report.
	realtimeMatches := func() (string, string, bool) {
		var got, want string
		for _, d := range []string{"eventName", "country"} {
			body := `{"dimensions":[{"name":"` + d + `"}],"metrics":[{"name":"eventCount"},{"name":"activeUsers"}],"orderBys":[{"dimension":{"dimensionName":"` + d + `"}}]`
			got += fmt.Sprint(reportOf(":runRealtimeReport", body+`}`))
			want += fmt.Sprint(report(body + "," + today + `}`))
		}
		return got, want, got == want && strings.Contains(got, "[purchase 3 3]")
	}
	// Every hit counted.
	for {
		got := report(`{"metrics":[{"name":"eventCount"}],` + today + `}`)
		if len(got) == 1 && got[0][0] == "8" {
			break
		}
		if time.Now().After(deadline.Add(30 * time.Second)) {
			t.Fatalf("event count %v, want 8", got)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for got, want, ok := realtimeMatches(); !ok; got, want, ok = realtimeMatches() {
		if time.Now().After(deadline.Add(30 * time.Second)) {
			t.Fatalf("realtime by event name and country:\n%s\nthe day's report:\n%s", got, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, c := range []struct {
		name, body string
		want       string
	}{
		{"revenue in the property's currency", `{"metrics":[{"name":"purchaseRevenue"},{"name":"totalRevenue"},{"name":"transactions"},{"name":"ecommercePurchases"},
			{"name":"keyEvents"},{"name":"totalPurchasers"},{"name":"firstTimePurchasers"},{"name":"itemRevenue"},{"name":"itemsViewed"},{"name":"addToCarts"}],` + today + `}`,
			"[[60 60 3 3 4 3 3 60 3 1]]"},
		{"converted into dollars", `{"metrics":[{"name":"purchaseRevenue"},{"name":"averagePurchaseRevenue"},{"name":"checkouts"}],"currencyCode":"USD",` + today + `}`,
			"[[120 40 1]]"},
		{"by item", `{"dimensions":[{"name":"itemName"}],"metrics":[{"name":"itemRevenue"},{"name":"itemsViewed"},{"name":"itemsPurchased"},{"name":"itemsAddedToCart"}],
			"orderBys":[{"dimension":{"dimensionName":"itemName"}}],` + today + `}`,
			"[[Hat 30 0 1 0] [Mug 5 1 1 0] [Scarf 10 0 1 0] [Shirt 15 2 2 2]]"},
		{"by brand", `{"dimensions":[{"name":"itemBrand"}],"metrics":[{"name":"itemRevenue"}],"orderBys":[{"dimension":{"dimensionName":"itemBrand"}}],` + today + `}`,
			"[[(not set) 5] [Acme 45] [Wool Co 10]]"},
		{"by channel", `{"dimensions":[{"name":"sessionDefaultChannelGroup"}],"metrics":[{"name":"sessions"},{"name":"purchaseRevenue"}],
			"orderBys":[{"dimension":{"dimensionName":"sessionDefaultChannelGroup"}}],` + today + `}`,
			"[[Direct 2 50] [Email 1 10]]"},
		{"new and returning", `{"dimensions":[{"name":"newVsReturning"}],"metrics":[{"name":"totalUsers"}],"orderBys":[{"dimension":{"dimensionName":"newVsReturning"}}],` + today + `}`,
			"[[new 2] [returning 1]]"},
		{"by city", `{"dimensions":[{"name":"city"},{"name":"region"}],"metrics":[{"name":"eventCount"}],"dimensionFilter":{"filter":{"fieldName":"city","stringFilter":{"value":"Paris"}}},` + today + `}`,
			"[[Paris FR-IDF 2]]"},
		{"session time and key-event sessions", `{"dimensions":[{"name":"platform"}],"metrics":[{"name":"averageSessionDuration"},{"name":"sessionKeyEventRate"},{"name":"purchaserRate"}],` + today + `}`,
			"[[web 30 1 1]]"},
		{"a custom event dimension", `{"dimensions":[{"name":"customEvent:plan"}],"metrics":[{"name":"eventCount"}],` + today + `}`,
			"[[pro 1]]"},
		{"a custom user dimension", `{"dimensions":[{"name":"customUser:tier"}],"metrics":[{"name":"eventCount"},{"name":"totalUsers"}],` + today + `}`,
			"[[gold 5 1]]"},
		{"a custom metric", `{"metrics":[{"name":"customEvent:points"}],` + today + `}`,
			"[[3]]"},
	} {
		if got := fmt.Sprint(report(c.body)); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
	// A custom dimension the property does not define, and item
	// dimensions with event metrics, are refused with the field at fault.
	for body, field := range map[string]string{
		`{"dimensions":[{"name":"customEvent:color"}],"metrics":[{"name":"eventCount"}],` + today + `}`: "dimensions",
		`{"dimensions":[{"name":"itemName"}],"metrics":[{"name":"sessions"}],` + today + `}`:            "metrics[0].name",
		`{"metrics":[{"name":"purchaseRevenue"}],"currencyCode":"JPY",` + today + `}`:                   "currencyCode",
	} {
		code, r := postJSON(t, base+"/v1/properties/"+pid+":runReport", env["SEXTANT_READ_KEY"], body)
		if code != 400 || !strings.Contains(fmt.Sprint(r), field) {
			t.Errorf("%s: %d %v, want 400 naming %s", body, code, r, field)
		}
	}
}
