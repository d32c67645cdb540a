package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's headless-capable Chromium (test.sh installs it).
const chromiumPath = "/usr/bin/chromium"

// TestBrowser runs the web tag and the dashboard in headless Chromium: a
// test site on another origin embeds the tag, a visitor browses it, the
// events are counted exactly, and the dashboard shows those numbers.
func TestBrowser(t *testing.T) {
	skipShort(t)
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("browser test: %s is not installed (apt-get install -y chromium)", chromiumPath)
	}
	artifacts := os.Getenv("SEXTANT_ARTIFACTS")
	if artifacts == "" {
		artifacts = t.TempDir()
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots go to %s", artifacts)

	dataDir := t.TempDir()
	k := createProperty(t, dataDir, "Browser test")
	other := createProperty(t, dataDir, "Another site")
	admin := adminKey(t, embeddedEnv(), "--data-dir", dataDir)
	addr := freeAddr(t)
	srv := startServer(t, dataDir, addr)
	origin := "http://" + addr // the tag, the dashboard and the APIs
	resp, err := http.Get(origin + "/sextant.js")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("GET %s/sextant.js: %d %s: the server must serve web.Handler()", origin, resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	// The outbound link's target: another host name than the site's.
	landing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, "<!doctype html><title>Elsewhere</title><p>Elsewhere</p>")
	}))
	defer landing.Close()
	outbound := strings.Replace(landing.URL, "127.0.0.1", "localhost", 1) + "/landing"

	// The test site, on another origin than the sextant server: the tag's
	// requests are cross-origin.
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/a" && r.URL.Path != "/b" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html>
<html><head><meta charset="utf-8"><title>Page %[1]s</title>
<script>window.sextant=window.sextant||function(){(sextant.q=sextant.q||[]).push(arguments)};sextant('config','%[2]s',{server:'%[3]s'})</script>
<script async src="%[3]s/sextant.js"></script>
</head><body>
<h1 id="h">Page %[1]s</h1>
<button id="to-b" onclick="history.pushState({}, '', '/b'); document.title = 'Page B'; document.getElementById('h').textContent = 'Page B'">Go to B</button>
<p><a id="out" href="%[4]s" target="_blank">Somewhere else</a></p>
</body></html>`, strings.ToUpper(r.URL.Path[1:]), k.WriteKey, origin, outbound)
	}))
	defer site.Close()

	var chromeOut syncBuffer
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(chromiumPath),
			chromedp.Headless,
			chromedp.NoSandbox, // the tests run as root
			chromedp.UserDataDir(t.TempDir()),
			chromedp.WindowSize(1280, 900),
			chromedp.CombinedOutput(&chromeOut),
		)...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	if err := chromedp.Do(browser); err != nil { // starts the browser
		t.Fatalf("starting %s: %v\n%s", chromiumPath, err, chromeOut.String())
	}
	ctx, cancel := context.WithTimeout(browser, 3*time.Minute)
	defer cancel()
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
			t.Fatalf("%s: %v\npage text:\n%s", what, err, text)
		}
	}
	eval := func(expr string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("evaluating %s: %v", expr, err)
		}
		return v
	}
	wait := func(what, predicate string) {
		t.Helper()
		do("waiting for "+what, chromedp.Poll[chromedp.Void](predicate, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		p := filepath.Join(artifacts, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
	}

	fits := func(width string) {
		t.Helper()
		if w := eval(`String(document.documentElement.scrollWidth)`); w != width {
			t.Errorf("the page is %s px wide in a %s px window (horizontal scrolling)", w, width)
		}
	}

	// A visit: page A, page B through the History API, an outbound click,
	// a custom event, then the visitor leaves (the beacon flushes).
	do("opening page A", chromedp.Navigate(site.URL+"/a"))
	wait("the tag", `window.sextant && window.sextant.loaded === true`)
	do("going to page B", chromedp.Click(chromedp.ID("to-b")))
	wait("page B", `location.pathname === '/b'`)
	do("clicking the outbound link", chromedp.Click(chromedp.ID("out")))
	eval(`sextant('event', 'signup', {plan: 'pro'}), 'ok'`)
	do("staying a moment", chromedp.Sleep(1500*time.Millisecond))
	do("leaving", chromedp.Navigate(landing.URL+"/bye"))

	reportURL := fmt.Sprintf("http://%s/v1/properties/%s:runReport", addr, k.PropertyID)
	recent := `"dateRanges":[{"startDate":"yesterday","endDate":"today"}]`
	want := map[string]int{"page_view": 2, "click": 1, "signup": 1, "first_visit": 1, "session_start": 1}
	var got map[string]int
	deadline := time.Now().Add(20 * time.Second)
	for {
		got = map[string]int{}
		_, rep := postJSON(t, reportURL, k.ReadKey, `{"dimensions":[{"name":"eventName"}],"metrics":[{"name":"eventCount"}],`+recent+`}`)
		for _, row := range rowsOfReport(rep) {
			got[row.dims[0]], _ = strconv.Atoi(row.mets[0])
		}
		complete := got["user_engagement"] >= 1
		for name, n := range want {
			complete = complete && got[name] >= n
		}
		if complete || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Let any late (wrong) extra event arrive before counting exactly.
	time.Sleep(time.Second)
	_, rep := postJSON(t, reportURL, k.ReadKey, `{"dimensions":[{"name":"eventName"}],"metrics":[{"name":"eventCount"},{"name":"userEngagementDuration"}],`+recent+`}`)
	got = map[string]int{}
	engagement := 0.0
	total := 0
	for _, row := range rowsOfReport(rep) {
		n, _ := strconv.Atoi(row.mets[0])
		got[row.dims[0]] = n
		total += n
		if row.dims[0] == "user_engagement" {
			engagement, _ = strconv.ParseFloat(row.mets[1], 64)
		}
	}
	for name, n := range want {
		if got[name] != n {
			t.Errorf("%s: %d events, want %d (all: %v)", name, got[name], n, got)
		}
	}
	if got["user_engagement"] != 1 {
		t.Errorf("user_engagement: %d events, want 1 (all: %v)", got["user_engagement"], got)
	}
	if engagement <= 0 {
		t.Errorf("user_engagement carried %v s of engagement, want > 0", engagement)
	}
	if extra := total - 7; extra != 0 {
		t.Errorf("%d events in all, want 7: %v", total, got)
	}
	_, rep = postJSON(t, reportURL, k.ReadKey, `{"dimensions":[{"name":"pagePath"}],"metrics":[{"name":"screenPageViews"},{"name":"totalUsers"},{"name":"sessions"}],`+recent+`,"metricAggregations":["TOTAL"]}`)
	views := map[string]string{}
	for _, row := range rowsOfReport(rep) {
		views[row.dims[0]] = row.mets[0]
	}
	if views["/a"] != "1" || views["/b"] != "1" {
		t.Errorf("page views by path: %v, want /a and /b once each", views)
	}
	totals := rowsOfTotals(rep)
	if len(totals) != 3 || totals[1] != "1" || totals[2] != "1" {
		t.Errorf("totals (views, users, sessions): %v, want users 1 and sessions 1", totals)
	}
	if t.Failed() {
		t.FailNow()
	}

	// The dashboard, signed in with the read key, shows the same numbers.
	do("opening the dashboard", chromedp.Navigate(origin+"/"))
	eval(`window.cspViolations = []; document.addEventListener('securitypolicyviolation', (e) => cspViolations.push(e.violatedDirective + ' ' + e.blockedURI)), ''`)
	shot("signin.png")
	do("signing in with a wrong key",
		chromedp.SendKeys(chromedp.ID("signin-id"), k.PropertyID),
		chromedp.SendKeys(chromedp.ID("signin-key"), "sxr_wrong"),
		chromedp.Click(chromedp.CSS(`#signin button[type=submit]`)))
	wait("the wrong key's error", `document.querySelector('#signin .error').textContent.startsWith('Key expired or wrong')`)
	eval(`document.getElementById('signin-key').value = ''`)
	do("signing in",
		chromedp.SendKeys(chromedp.ID("signin-key"), k.ReadKey),
		chromedp.Click(chromedp.CSS(`#signin button[type=submit]`)))
	wait("the overview", `!!document.querySelector('#cards:not(.loading)') && !!document.querySelector('#table-pages table') && !!document.querySelector('#chart svg')`)
	cards := eval(`[...document.querySelectorAll('#cards .card')].map(c => c.dataset.metric + '=' + c.querySelector('.value').textContent).join(' ')`)
	for _, w := range []string{"screenPageViews=2", "totalUsers=1", "sessions=1", "eventCount=7"} {
		if !strings.Contains(" "+cards+" ", " "+w+" ") {
			t.Errorf("overview cards show %q, want %s", cards, w)
		}
	}
	pages := eval(`[...document.querySelectorAll('#table-pages td.dim')].map(td => td.textContent).sort().join(' ')`)
	if pages != "/a /b" {
		t.Errorf("top pages table lists %q, want /a and /b", pages)
	}
	fits("1280")
	shot("overview.png")
	do("phone width", chromedp.EmulateViewport(390, 844), chromedp.Sleep(400*time.Millisecond))
	fits("390")
	shot("overview-phone.png")
	do("desktop width", chromedp.EmulateViewport(1280, 900), chromedp.Sleep(200*time.Millisecond))

	// Today, by hour; then a custom range of the last two days.
	choose := func(id, value string) {
		t.Helper()
		eval(`(() => { const el = document.getElementById('` + id + `'); el.value = '` + value + `'; el.dispatchEvent(new Event('change')); return '' })()`)
	}
	choose("range", "1")
	wait("today's overview", `!!document.querySelector('#cards:not(.loading) [data-metric=screenPageViews]') && !!document.querySelector('#chart svg')`)
	if v := eval(`document.querySelector('#cards [data-metric=screenPageViews] .value').textContent`); v != "2" {
		t.Errorf("today: %s page views, want 2", v)
	}
	if v := eval(`document.querySelector('#chart svg').getAttribute('aria-label')`); !strings.Contains(v, ":00") {
		t.Errorf("today's chart is not by hour: %q", v)
	}
	shot("overview-today.png")
	choose("range", "custom")
	wait("the custom range", `!!document.getElementById('from') && !!document.querySelector('#cards:not(.loading)')`)
	choose("from", eval(`(() => { const d = new Date(document.getElementById('to').value + 'T00:00:00Z'); d.setUTCDate(d.getUTCDate() - 1); return d.toISOString().slice(0, 10) })()`))
	wait("the custom overview", `!!document.querySelector('#cards:not(.loading)') && document.querySelector('#cards [data-metric=screenPageViews] .value').textContent === '2'`)
	choose("range", "7")
	wait("the 7-day overview", `!!document.querySelector('#cards:not(.loading)') && !document.getElementById('from')`)

	// A second property: remembered next to the first, empty, switchable.
	do("adding a property",
		chromedp.Click(chromedp.ID("add-property")),
		chromedp.SendKeys(chromedp.ID("signin-id"), other.PropertyID),
		chromedp.SendKeys(chromedp.ID("signin-key"), other.ReadKey),
		chromedp.Click(chromedp.CSS(`#signin button[type=submit]`)))
	wait("the empty overview", `!!document.querySelector('#cards:not(.loading)') && !!document.querySelector('#install pre')`)
	if v := eval(`document.querySelector('#cards [data-metric=eventCount] .value').textContent`); v != "0" {
		t.Errorf("the empty property shows %s events", v)
	}
	if n := eval(`String(document.querySelectorAll('#property option').length)`); n != "2" {
		t.Errorf("%s properties remembered, want 2", n)
	}
	fits("1280")
	shot("empty.png")
	choose("property", k.PropertyID)
	wait("the first property again", `!!document.querySelector('#cards:not(.loading)') && document.querySelector('#cards [data-metric=screenPageViews] .value').textContent === '2'`)

	// Realtime updates in place, without a reload.
	eval(`window.noReload = 'yes'`)
	do("opening realtime", chromedp.Click(chromedp.CSS(`#nav a[data-view=realtime]`)))
	wait("realtime numbers", `(document.getElementById('rt-events') || {}).textContent > '' && document.getElementById('rt-events').textContent !== '…' && !!document.querySelector('#table-rt-pages table')`)
	if u, e := eval(`document.getElementById('rt-users').textContent`), eval(`document.getElementById('rt-events').textContent`); u != "1" || e != "7" {
		t.Errorf("realtime shows %s active users and %s events, want 1 and 7", u, e)
	}
	shot("realtime.png")
	code, _ := postJSON(t, fmt.Sprintf("http://%s/v1/collect", addr), k.WriteKey, `{"clientId":"browser-test-2","events":[
		{"name":"first_visit","eventId":"bt-2-1","params":{"page_location":"https://shop.example/c"}},
		{"name":"page_view","eventId":"bt-2-2","params":{"page_location":"https://shop.example/c"}}]}`)
	if code != 200 {
		t.Fatalf("collect: %d", code)
	}
	wait("realtime to update", `document.getElementById('rt-events').textContent === '9' && document.getElementById('rt-users').textContent === '2'`)
	if eval(`String(window.noReload)`) != "yes" {
		t.Error("the realtime view reloaded the page")
	}
	shot("realtime-updated.png")

	// Projections: a replay of traffic/v2 shows up; activating it asks for
	// the admin key (a wrong one is refused), rolling back returns to v1.
	do("opening projections", chromedp.Click(chromedp.CSS(`#nav a[data-view=projections]`)))
	wait("projections", `!!document.querySelector('#proj tr[data-version="v1"] .badge.active')`)
	code, _ = postJSON(t, fmt.Sprintf("http://%s/v1/projections/traffic/versions", addr), admin, `{"version":"v2","from":{"earliest":true}}`)
	if code != 200 {
		t.Fatalf("starting the replay of traffic/v2: %d", code)
	}
	wait("v2 to catch up", `(document.querySelector('#proj tr[data-version="v2"] .badge') || {}).textContent === 'caught up'`)
	do("activating v2 with a wrong admin key",
		chromedp.Click(chromedp.ID("traffic-v2-activate")),
		chromedp.SendKeys(chromedp.ID("admin-key"), "sxa_wrong"),
		chromedp.Click(chromedp.ID("admin-ok")))
	wait("the wrong admin key's error", `document.getElementById('admin-dialog').open && document.getElementById('admin-error').textContent.startsWith('Admin key expired or wrong')`)
	do("activating v2",
		chromedp.SendKeys(chromedp.ID("admin-key"), admin),
		chromedp.Click(chromedp.ID("admin-ok")))
	wait("v2 to be active", `!!document.querySelector('#proj tr[data-version="v2"] .badge.active')`)
	shot("projections.png")
	do("rolling back", chromedp.Click(chromedp.ID("traffic-v2-rollback")))
	wait("the confirmation", `document.getElementById('admin-dialog').open && document.getElementById('admin-key').hidden`)
	do("confirming", chromedp.Click(chromedp.ID("admin-ok")))
	wait("v1 to be active again", `!!document.querySelector('#proj tr[data-version="v1"] .badge.active')`)

	if v := eval(`cspViolations.join(', ')`); v != "" {
		t.Errorf("Content-Security-Policy violations: %s", v)
	}

	// The server goes away: the dashboard says so and keeps retrying.
	do("opening realtime", chromedp.Click(chromedp.CSS(`#nav a[data-view=realtime]`)))
	srv.kill(t)
	wait("the unreachable banner", `!document.getElementById('banner').hidden && document.getElementById('banner').textContent.startsWith('Server unreachable, retrying')`)
	shot("unreachable.png")
}

type reportRow struct{ dims, mets []string }

// rowsOfReport reads the rows of a decoded REST report.
func rowsOfReport(rep map[string]any) []reportRow {
	var out []reportRow
	rows, _ := rep["rows"].([]any)
	for _, r := range rows {
		m, _ := r.(map[string]any)
		out = append(out, reportRow{dims: values(m["dimensionValues"]), mets: values(m["metricValues"])})
	}
	return out
}

// rowsOfTotals reads the metric values of a report's TOTAL row.
func rowsOfTotals(rep map[string]any) []string {
	totals, _ := rep["totals"].([]any)
	if len(totals) == 0 {
		return nil
	}
	m, _ := totals[0].(map[string]any)
	return values(m["metricValues"])
}

func values(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, x := range list {
		m, _ := x.(map[string]any)
		s, _ := m["value"].(string)
		out = append(out, s)
	}
	return out
}
