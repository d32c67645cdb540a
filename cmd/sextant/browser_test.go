package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
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
	b := newBrowser(t)
	do, eval, wait, shot, fits := b.do, b.eval, b.wait, b.shot, b.fits

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
	eval(watchCSP)
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

// TestBrowserReports runs the dashboard's report pages (GA4's report
// groups) in headless Chromium over events of known values, today's and
// yesterday's: every table shows the numbers they make, a table whose
// dimension the active version (traffic/v1) lacks says so, a clicked value
// filters every table of every page (and survives a reload) until its chip
// is removed, and the comparison shows the change from yesterday.
func TestBrowserReports(t *testing.T) {
	skipShort(t)
	b := newBrowser(t)
	dataDir := t.TempDir()
	k := createProperty(t, dataDir, "Reports")
	admin := adminKey(t, embeddedEnv(), "--data-dir", dataDir)
	addr := freeAddr(t)
	startServer(t, dataDir, addr)
	origin := "http://" + addr

	// Today: three visitors, two from France; yesterday: one, from France.
	now := time.Now()
	// A visit: first_visit on the first page, then a page_view of each;
	// /a's title is Page A, and so on.
	visit := func(client, country, category, browser, os, screen string, at time.Time, pages ...string) {
		t.Helper()
		var events []string
		for i, page := range append(pages[:1:1], pages...) {
			name := "page_view"
			if i == 0 {
				name = "first_visit"
			}
			events = append(events, fmt.Sprintf(`{"name":%q,"eventId":"%s-%d","timestampMicros":%d,"params":{"page_location":"https://shop.example%s","page_title":"Page %s"}}`,
				name, client, i, at.Add(time.Duration(i)*time.Second).UnixMicro(), page, strings.ToUpper(page[1:2])))
		}
		body := fmt.Sprintf(`{"clientId":%q,"userLocation":{"countryId":%q},"device":{"category":%q,"browser":%q,"operatingSystem":%q,"screenResolution":%q},"events":[%s]}`,
			client, country, category, browser, os, screen, strings.Join(events, ","))
		if code, m := postJSON(t, origin+"/v1/collect", k.WriteKey, body); code != 200 {
			t.Fatalf("collect %s: %d %v", client, code, m)
		}
	}
	visit("c1", "FR", "desktop", "Chrome", "Windows", "1920x1080", now, "/a?utm_source=google&utm_medium=cpc&utm_campaign=spring", "/b")
	visit("c2", "DE", "mobile", "Safari", "iOS", "390x844", now, "/a")
	visit("c3", "FR", "mobile", "Safari", "iOS", "390x844", now, "/c?utm_source=newsletter&utm_medium=email&utm_campaign=may")
	visit("c4", "FR", "desktop", "Chrome", "Windows", "1920x1080", now.Add(-24*time.Hour), "/a")
	reportURL := origin + "/v1/properties/" + k.PropertyID + ":runReport"
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, rep := postJSON(t, reportURL, k.ReadKey, `{"metrics":[{"name":"eventCount"}],"dateRanges":[{"startDate":"yesterday","endDate":"today"}]}`)
		if rows := rowsOfReport(rep); len(rows) == 1 && rows[0].mets[0] == "9" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the events are not counted: %v", rep)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Signed in, today only, without the comparison at first.
	b.do("opening the dashboard", chromedp.Navigate(origin+"/#/demographics"))
	b.eval(`sessionStorage.setItem('sextant.ui', JSON.stringify({preset: '1', compare: false})), ''`)
	b.do("reloading", chromedp.Reload())
	b.eval(watchCSP)
	b.eval(watchErrors)
	b.do("signing in",
		chromedp.SendKeys(chromedp.ID("signin-id"), k.PropertyID),
		chromedp.SendKeys(chromedp.ID("signin-key"), k.ReadKey),
		chromedp.Click(chromedp.CSS(`#signin button[type=submit]`)))

	// table polls a report page's table until it reads want (the rows, then
	// the total: the values of the dimensions, then metric=value and, with
	// the comparison, the change; or its note) and reports what it read if
	// it does not.
	table := func(id, want string, metrics ...string) {
		t.Helper()
		expr := `(() => {
			const s = document.getElementById('g-` + id + `');
			if (!s || s.querySelector('[aria-busy]')) return 'loading';
			const t = s.querySelector('table');
			if (!t) return (s.querySelector('.note, .empty') || s).textContent;
			return [...t.querySelectorAll('tbody tr, tfoot tr')].map((tr) => [...tr.querySelectorAll('th, td.dim')].map((c) => c.textContent).join(' / ') + ': ' +
				` + strconv.Quote(strings.Join(metrics, " ")) + `.split(' ').map((m) => {
					const td = tr.querySelector('td[data-metric="' + m + '"]');
					const d = td && td.querySelector('.delta');
					return m + '=' + (td ? td.querySelector('.v').textContent + (d ? ' ' + d.textContent : '') : 'missing');
				}).join(' ')).join(' | ');
		})()`
		var got string
		for end := time.Now().Add(20 * time.Second); ; {
			if got = b.eval(expr); got == want || time.Now().After(end) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if got != want {
			t.Errorf("table %s (%s) reads\n  %s\nwant\n  %s", id, b.eval(`location.hash`), got, want)
		}
	}
	open := func(page string) {
		t.Helper()
		b.do("opening "+page, chromedp.Click(chromedp.CSS(`#nav a[data-view=`+page+`]`)))
		title := strings.ToUpper(page[:1]) + page[1:]
		b.wait(page, `document.querySelector('#main h1')?.textContent === '`+title+`' && !document.querySelector('#main [aria-busy]')`)
	}
	// clean checks the page has had no CSP violations or uncaught errors.
	clean := func() {
		t.Helper()
		if v := b.eval(`cspViolations.join(', ')`); v != "" {
			t.Errorf("Content-Security-Policy violations: %s", v)
		}
		if v := b.eval(`jsErrors.join('; ')`); v != "" {
			t.Errorf("uncaught errors in the page: %s", v)
		}
	}
	chips := func() string {
		t.Helper()
		return b.eval(`[...document.querySelectorAll('#filters .chip')].map((c) => c.textContent).join(', ')`)
	}

	b.wait("demographics", `location.hash === '#/demographics' && !!document.querySelector('#g-country table')`)
	demo := []string{"activeUsers", "newUsers", "engagedSessions", "engagementRate"}
	table("country", "France: activeUsers=2 newUsers=2 engagedSessions=1 engagementRate=50% | "+
		"Germany: activeUsers=1 newUsers=1 engagedSessions=0 engagementRate=0% | "+
		"Total: activeUsers=3 newUsers=3 engagedSessions=1 engagementRate=33.3%", demo...)
	b.shot("reports-demographics.png")

	open("engagement")
	pages := []string{"screenPageViews", "activeUsers", "eventCount"}
	table("pages", "/a: screenPageViews=2 activeUsers=2 eventCount=4 | /b: screenPageViews=1 activeUsers=1 eventCount=1 | "+
		"/c: screenPageViews=1 activeUsers=1 eventCount=2 | Total: screenPageViews=4 activeUsers=3 eventCount=7", pages...)
	table("events", "page_view: eventCount=4 activeUsers=1 | first_visit: eventCount=3 activeUsers=3 | Total: eventCount=7 activeUsers=3", "eventCount", "activeUsers")

	open("tech")
	tech := []string{"activeUsers", "sessions"}
	table("device", "mobile: activeUsers=2 sessions=2 | desktop: activeUsers=1 sessions=1 | Total: activeUsers=3 sessions=3", tech...)
	table("browser", "Safari: activeUsers=2 sessions=2 | Chrome: activeUsers=1 sessions=1 | Total: activeUsers=3 sessions=3", tech...)
	// traffic/v1 stores no screen resolutions.
	table("screen", "Not in the active projection version.")

	open("acquisition")
	acq := []string{"sessions", "engagedSessions", "engagementRate"}
	table("source-medium", "(direct) / (none): sessions=1 engagedSessions=0 engagementRate=0% | google / cpc: sessions=1 engagedSessions=1 engagementRate=100% | "+
		"newsletter / email: sessions=1 engagedSessions=0 engagementRate=0% | Total: sessions=3 engagedSessions=1 engagementRate=33.3%", acq...)
	// The metric columns are those of the metadata only.
	cols := strings.Fields(b.eval(`[...document.querySelectorAll('#g-source-medium thead th[data-metric]')].map((th) => th.dataset.metric).join(' ')`))
	var md struct {
		Metrics []struct{ APIName string } `json:"metrics"`
	}
	getJSON(t, origin+"/v1/properties/"+k.PropertyID+"/metadata", k.ReadKey, &md)
	served := map[string]bool{}
	for _, m := range md.Metrics {
		served[m.APIName] = true
	}
	for _, c := range cols {
		if !served[c] {
			t.Errorf("the source / medium table has a column %s the metadata does not list", c)
		}
	}
	if len(cols) < 4 || strings.Join(cols[:4], " ") != "sessions engagedSessions engagementRate eventsPerSession" {
		t.Errorf("the source / medium table's metric columns: %v", cols)
	}
	b.shot("reports-acquisition.png")

	// A click on France filters every table of every page.
	open("demographics")
	b.do("filtering by France", chromedp.Click(chromedp.CSS(`#g-country button.value[data-dim=country]`)))
	b.wait("the filter", `location.hash === '#/demographics?country=France'`)
	table("country", "France: activeUsers=2 newUsers=2 engagedSessions=1 engagementRate=50% | "+
		"Total: activeUsers=2 newUsers=2 engagedSessions=1 engagementRate=50%", demo...)
	if v := chips(); v != "Country = France ✕" {
		t.Errorf("the filters show %q, want Country = France", v)
	}
	open("engagement")
	if v := chips(); v != "Country = France ✕" {
		t.Errorf("on engagement, the filters show %q, want Country = France", v)
	}
	table("pages", "/a: screenPageViews=1 activeUsers=1 eventCount=2 | /b: screenPageViews=1 activeUsers=1 eventCount=1 | "+
		"/c: screenPageViews=1 activeUsers=1 eventCount=2 | Total: screenPageViews=3 activeUsers=2 eventCount=5", pages...)
	clean()
	b.do("reloading", chromedp.Reload())
	b.eval(watchCSP)
	b.eval(watchErrors)
	b.wait("the page again", `!!document.querySelector('#g-pages table') && !document.querySelector('#main [aria-busy]')`)
	if v := chips(); v != "Country = France ✕" {
		t.Errorf("after a reload, the filters show %q, want Country = France", v)
	}
	table("events", "page_view: eventCount=3 activeUsers=1 | first_visit: eventCount=2 activeUsers=2 | Total: eventCount=5 activeUsers=2", "eventCount", "activeUsers")

	// A second filter: both apply (an AND group).
	open("tech")
	table("device", "desktop: activeUsers=1 sessions=1 | mobile: activeUsers=1 sessions=1 | Total: activeUsers=2 sessions=2", tech...)
	b.do("filtering by mobile", chromedp.Click(chromedp.CSS(`#g-device tbody tr:nth-child(2) button.value`)))
	b.wait("both filters", `location.hash === '#/tech?country=France&deviceCategory=mobile'`)
	table("browser", "Safari: activeUsers=1 sessions=1 | Total: activeUsers=1 sessions=1", tech...)
	if v := chips(); v != "Country = France ✕, Device category = mobile ✕" {
		t.Errorf("the filters show %q, want Country = France and Device category = mobile", v)
	}
	b.shot("reports-filtered.png")

	// Removing them, by their chips.
	b.do("removing the country filter", chromedp.Click(chromedp.CSS(`#filters .chip[data-dim=country]`)))
	b.wait("one filter", `location.hash === '#/tech?deviceCategory=mobile'`)
	table("browser", "Safari: activeUsers=2 sessions=2 | Total: activeUsers=2 sessions=2", tech...)
	b.do("removing the device filter", chromedp.Click(chromedp.CSS(`#filters .chip[data-dim=deviceCategory]`)))
	b.wait("no filter", `location.hash === '#/tech'`)
	table("browser", "Safari: activeUsers=2 sessions=2 | Chrome: activeUsers=1 sessions=1 | Total: activeUsers=3 sessions=3", tech...)
	if v := chips(); v != "" {
		t.Errorf("the filters show %q after removing them", v)
	}

	// The comparison: today against yesterday, in every table.
	b.do("comparing", chromedp.Click(chromedp.ID("compare")))
	b.wait("the comparison", `document.getElementById('period').textContent.includes('compared with')`)
	table("browser", "Safari: activeUsers=2 ▲ new sessions=2 ▲ new | Chrome: activeUsers=1 0% sessions=1 0% | Total: activeUsers=3 ▲ 200% sessions=3 ▲ 200%", tech...)
	open("engagement")
	table("pages", "/a: screenPageViews=2 ▲ 100% activeUsers=2 ▲ 100% eventCount=4 ▲ 100% | /b: screenPageViews=1 ▲ new activeUsers=1 ▲ new eventCount=1 ▲ new | "+
		"/c: screenPageViews=1 ▲ new activeUsers=1 ▲ new eventCount=2 ▲ new | Total: screenPageViews=4 ▲ 300% activeUsers=3 ▲ 200% eventCount=7 ▲ 250%", pages...)
	open("demographics")
	table("country", "France: activeUsers=2 ▲ 100% newUsers=2 ▲ 100% engagedSessions=1 ▲ new engagementRate=50% ▲ new | "+
		"Germany: activeUsers=1 ▲ new newUsers=1 ▲ new engagedSessions=0 — engagementRate=0% — | "+
		"Total: activeUsers=3 ▲ 200% newUsers=3 ▲ 200% engagedSessions=1 ▲ new engagementRate=33.3% ▲ new", demo...)
	b.shot("reports-compared.png")
	b.do("phone width", chromedp.EmulateViewport(390, 844), chromedp.Sleep(400*time.Millisecond))
	b.fits("390")
	b.shot("reports-phone.png")
	b.do("desktop width", chromedp.EmulateViewport(1280, 900), chromedp.Sleep(200*time.Millisecond))

	// The overview's tables filter too.
	open("overview")
	b.wait("the overview", `!!document.querySelector('#table-pages table') && !!document.querySelector('#cards:not(.loading)')`)
	if v := b.eval(`[...document.querySelector('#table-pages tbody tr').querySelectorAll('td')].map((td) => td.querySelector('.v') ? td.querySelector('.v').textContent + ' ' + td.querySelector('.delta').textContent : td.textContent).join(', ')`); v != "/a, 2 ▲ 100%, 2 ▲ 100%, 4 ▲ 100%" {
		t.Errorf("the overview's top page reads %q, want /a with 2 views, 2 users, 4 events, each up 100%% from yesterday", v)
	}
	b.do("filtering by /a", chromedp.Click(chromedp.CSS(`#table-pages button.value`)))
	b.wait("the filtered overview", `location.hash === '#/overview?pagePath=%2Fa' && !!document.querySelector('#cards:not(.loading)') && !!document.querySelector('#table-countries table')`)
	// The cards and tables redraw after the hash changes: read until they
	// show the filtered figures, or 20 s.
	var filtered string
	for end := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		filtered = b.eval(`document.querySelector('#cards [data-metric=screenPageViews] .value').textContent + ' ' + [...document.querySelectorAll('#table-countries td.dim')].map((td) => td.textContent).sort().join(' ')`)
		if filtered == "2 France Germany" || time.Now().After(end) {
			break
		}
	}
	if filtered != "2 France Germany" {
		t.Errorf("the overview filtered by /a shows %q page views and countries, want 2 France Germany", filtered)
	}

	b.do("removing the filter", chromedp.Click(chromedp.CSS(`#filters .chip`)))
	b.wait("the whole overview", `location.hash === '#/overview' && !!document.querySelector('#cards:not(.loading)') && document.querySelector('#cards [data-metric=screenPageViews] .value').textContent === '4'`)

	// traffic/v4 stores screens and page titles: once it is active, the
	// tables follow; a table it cannot filter as asked says so.
	if code, m := postJSON(t, origin+"/v1/projections/traffic/versions", admin, `{"version":"v4","from":{"earliest":true}}`); code != 200 {
		t.Fatalf("replaying into traffic/v4: %d %v", code, m)
	}
	count := func(version string) string {
		_, rep := postJSON(t, reportURL, k.ReadKey, `{"metrics":[{"name":"eventCount"}],"dateRanges":[{"startDate":"yesterday","endDate":"today"}],"projectionVersion":"`+version+`"}`)
		return fmt.Sprint(rowsOfReport(rep))
	}
	for deadline := time.Now().Add(30 * time.Second); count("v4") != count("v1"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("traffic/v4 counts %s events, v1 %s", count("v4"), count("v1"))
		}
	}
	if code, m := postJSON(t, origin+"/v1/projections/traffic/versions/v4:activate", admin, `{}`); code != 200 {
		t.Fatalf("activating traffic/v4: %d %v", code, m)
	}
	open("tech")
	table("screen", "390x844: activeUsers=2 ▲ new sessions=2 ▲ new | 1920x1080: activeUsers=1 0% sessions=1 0% | Total: activeUsers=3 ▲ 200% sessions=3 ▲ 200%", tech...)
	open("engagement")
	table("pages", "/a / Page A: screenPageViews=2 ▲ 100% activeUsers=2 ▲ 100% eventCount=4 ▲ 100% | /b / Page B: screenPageViews=1 ▲ new activeUsers=1 ▲ new eventCount=1 ▲ new | "+
		"/c / Page C: screenPageViews=1 ▲ new activeUsers=1 ▲ new eventCount=2 ▲ new | Total: screenPageViews=4 ▲ 300% activeUsers=3 ▲ 200% eventCount=7 ▲ 250%", pages...)
	b.do("filtering by Page B", chromedp.Click(chromedp.CSS(`#g-pages tbody tr:nth-child(2) button.value[data-dim=pageTitle]`)))
	b.wait("the filter", `location.hash === '#/engagement?pageTitle=Page+B'`)
	table("pages", "/b / Page B: screenPageViews=1 ▲ new activeUsers=1 ▲ new eventCount=1 ▲ new | Total: screenPageViews=1 ▲ new activeUsers=1 ▲ new eventCount=1 ▲ new", pages...)
	// v4 keeps page titles in a group of their own: not with event names.
	table("events", "The active projection version cannot combine this table with the filters.", "eventCount")

	// traffic/v5 counts items and revenue: a purchase today, then the
	// Monetization page's tables once v5 is active.
	b.do("removing the filter", chromedp.Click(chromedp.CSS(`#filters .chip`)))
	shop := fmt.Sprintf(`{"clientId":"c5","events":[
		{"name":"view_item","timestampMicros":%d,"params":{"currency":"USD","items":[{"item_name":"Shirt","item_brand":"Acme","price":10,"quantity":2}]}},
		{"name":"purchase","timestampMicros":%d,"params":{"value":25,"currency":"USD","transaction_id":"T1",
			"items":[{"item_name":"Shirt","item_brand":"Acme","price":10,"quantity":2},{"item_name":"Mug","item_brand":"Acme","price":5}]}}]}`,
		now.UnixMicro(), now.Add(time.Second).UnixMicro())
	if code, m := postJSON(t, origin+"/v1/collect", k.WriteKey, shop); code != 200 {
		t.Fatalf("collect the purchase: %d %v", code, m)
	}
	if code, m := postJSON(t, origin+"/v1/projections/traffic/versions", admin, `{"version":"v5","from":{"earliest":true}}`); code != 200 {
		t.Fatalf("replaying into traffic/v5: %d %v", code, m)
	}
	for deadline := time.Now().Add(30 * time.Second); count("v5") != count("v1") || count("v1") != "[{[] [11]}]"; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("traffic/v5 counts %s events, v1 %s", count("v5"), count("v1"))
		}
	}
	if code, m := postJSON(t, origin+"/v1/projections/traffic/versions/v5:activate", admin, `{}`); code != 200 {
		t.Fatalf("activating traffic/v5: %d %v", code, m)
	}
	open("monetization")
	items := []string{"itemsViewed", "itemsAddedToCart", "itemsPurchased", "itemRevenue"}
	table("item-name", "Shirt: itemsViewed=2 ▲ new itemsAddedToCart=0 — itemsPurchased=2 ▲ new itemRevenue=20.00 ▲ new | "+
		"Mug: itemsViewed=0 — itemsAddedToCart=0 — itemsPurchased=1 ▲ new itemRevenue=5.00 ▲ new | "+
		"Total: itemsViewed=2 ▲ new itemsAddedToCart=0 — itemsPurchased=3 ▲ new itemRevenue=25.00 ▲ new", items...)
	table("transactions", "T1: purchaseRevenue=25.00 ▲ new transactions=1 ▲ new | Total: purchaseRevenue=25.00 ▲ new transactions=1 ▲ new", "purchaseRevenue", "transactions")
	b.shot("reports-monetization.png")

	b.fits("1280")
	clean()
}

// TestBrowserSettings runs the dashboard's Settings page in headless
// Chromium: an admin signs in with the admin key alone, pages through the
// properties, creates one and reads its new keys from the page, edits it,
// manages its keys and deletes it. Every change is checked outside the
// browser, over HTTP: the keys the page showed work (or are refused) at
// /v1/collect and runReport, and GetProperty returns what was saved.
func TestBrowserSettings(t *testing.T) {
	skipShort(t)
	b := newBrowser(t)
	dataDir := t.TempDir()
	admin := adminKey(t, embeddedEnv(), "--data-dir", dataDir)
	addr := freeAddr(t)
	startServer(t, dataDir, addr)
	origin := "http://" + addr

	api := func(method, body string) (int, map[string]any) {
		t.Helper()
		return postJSON(t, origin+"/sextant.admin.v1.AdminService/"+method, admin, body)
	}
	collect := func(key, eventID string) int {
		t.Helper()
		code, _ := postJSON(t, origin+"/v1/collect", key, `{"clientId":"settings-test","events":[
			{"name":"page_view","eventId":"`+eventID+`","params":{"page_location":"https://shop.example/"}}]}`)
		return code
	}
	var id string // the property created through the page
	reportStatus := func(key string) int {
		t.Helper()
		code, _ := postJSON(t, origin+"/v1/properties/"+id+":runReport", key,
			`{"metrics":[{"name":"eventCount"}],"dateRanges":[{"startDate":"today","endDate":"today"}]}`)
		return code
	}
	getProperty := func() map[string]any {
		t.Helper()
		code, m := api("GetProperty", `{"propertyId":"`+id+`"}`)
		p, _ := m["property"].(map[string]any)
		if code != 200 || p == nil {
			t.Fatalf("GetProperty %s: %d %v", id, code, m)
		}
		return p
	}
	// refusedWithin polls collect (or a report) with a key until it is
	// refused with 401, failing the test after limit from start.
	refusedWithin := func(what string, start time.Time, limit time.Duration, try func() int) {
		t.Helper()
		for i := 0; ; i++ {
			code := try()
			if code == 401 {
				t.Logf("%s refused %v after the click", what, time.Since(start).Round(time.Millisecond))
				return
			}
			if time.Since(start) > limit {
				t.Fatalf("%s: still answered %d %v after the click, want 401 within %v", what, code, time.Since(start).Round(time.Millisecond), limit)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// More properties than a page of the list (20), next to the demo
	// property the server made at its start.
	for i := 1; i <= 21; i++ {
		name := fmt.Sprintf("Seed %02d", i)
		if code, m := api("CreateProperty", `{"property":{"displayName":"`+name+`"}}`); code != 200 {
			t.Fatalf("CreateProperty %s: %d %v", name, code, m)
		}
	}
	var names []string
	_, m := api("ListProperties", `{"pageSize":1000}`)
	list, _ := m["properties"].([]any)
	for _, p := range list {
		p, _ := p.(map[string]any)
		names = append(names, fmt.Sprint(p["displayName"]))
	}
	sort.Strings(names)
	n := len(names)
	if n < 21 || m["nextPageToken"] != nil && m["nextPageToken"] != "" {
		t.Fatalf("ListProperties: %v", m)
	}

	// Signing in with the admin key alone: a wrong one is refused.
	b.do("opening the dashboard", chromedp.Navigate(origin+"/"))
	b.eval(watchCSP)
	b.eval(watchErrors)
	b.wait("the sign-in form", `!!document.getElementById('signin-admin')`)
	b.do("choosing the admin sign-in", chromedp.Click(chromedp.ID("signin-admin")))
	b.wait("the admin key dialog", `document.getElementById('admin-dialog').open && !document.getElementById('admin-key').hidden`)
	b.do("entering a wrong admin key",
		chromedp.SendKeys(chromedp.ID("admin-key"), "sxa_wrong"),
		chromedp.Click(chromedp.ID("admin-ok")))
	b.wait("the wrong admin key's error", `document.getElementById('admin-dialog').open && document.getElementById('admin-error').textContent.startsWith('Admin key expired or wrong')`)
	b.do("entering the admin key",
		chromedp.SendKeys(chromedp.ID("admin-key"), admin),
		chromedp.Click(chromedp.ID("admin-ok")))

	// The list, a page at a time.
	rows := `document.querySelectorAll('#props tbody tr').length`
	b.wait("the first page of properties", rows+` === 20 && !document.getElementById('props-more').hidden`)
	if v := b.eval(`location.hash + ' ' + document.querySelector('#nav a[aria-current=page]').dataset.view`); v != "#/settings settings" {
		t.Errorf("the settings page is at %q, want #/settings with Settings current in the navigation", v)
	}
	b.do("showing more", chromedp.Click(chromedp.ID("props-more")))
	b.wait("every property", rows+` === `+strconv.Itoa(n)+` && document.getElementById('props-more').hidden`)
	if v := b.eval(`[...document.querySelectorAll('#props td.name')].map((td) => td.textContent).sort().join(',')`); v != strings.Join(names, ",") {
		t.Errorf("the list shows %q, want every property: %q", v, names)
	}
	b.shot("settings.png")

	// A new property through the form: its keys are shown once.
	b.typeInto("new-name", "Checkout")
	b.typeInto("new-tz", "Europe/Paris")
	b.typeInto("new-origins", "https://shop.example, https://WWW.Shop.example/")
	b.do("creating the property", chromedp.Click(chromedp.ID("new-submit")))
	b.wait("the new keys", `(document.getElementById('secret-write') || {}).value?.startsWith('sxw_') && (document.getElementById('secret-read') || {}).value?.startsWith('sxr_')`)
	write := b.eval(`document.getElementById('secret-write').value`)
	read := b.eval(`document.getElementById('secret-read').value`)
	id = b.eval(`document.getElementById('prop-detail').dataset.id`)
	t.Logf("created property %s", id)
	if v := b.eval(`document.getElementById('secrets-note').textContent`); !strings.Contains(v, "only this once") {
		t.Errorf("the new keys' note says %q, want it to say they are shown only this once", v)
	}
	if v := b.eval(`(document.querySelector('#props tr[data-id="` + id + `"] td.name') || {}).textContent + ' ' + ` + rows); v != "Checkout "+strconv.Itoa(n+1) {
		t.Errorf("the list after creating: %q, want Checkout among %d properties", v, n+1)
	}
	if v := b.eval(`localStorage.length + ' ' + location.href + ' ' + JSON.stringify(sessionStorage)`); strings.Contains(v, write) || strings.Contains(v, read) || !strings.HasPrefix(v, "0 ") {
		t.Errorf("a new key's secret went into a URL or storage, or localStorage is used: %s", v)
	}
	b.shot("settings-created.png")
	if code := collect(write, "settings-1"); code != 200 {
		t.Fatalf("collect with the write key the page showed: %d, want 200", code)
	}
	if code := reportStatus(read); code != 200 {
		t.Fatalf("runReport with the read key the page showed: %d, want 200", code)
	}
	p := getProperty()
	if p["displayName"] != "Checkout" || p["timeZone"] != "Europe/Paris" || fmt.Sprint(p["allowedOrigins"]) != "[https://shop.example https://www.shop.example]" {
		t.Errorf("GetProperty after creating: %v", p)
	}

	// Its reports, with the read key the page showed (once the collected
	// event is counted); then back to the settings: the admin key is
	// remembered, the secrets are gone.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, rep := postJSON(t, origin+"/v1/properties/"+id+":runReport", read,
			`{"metrics":[{"name":"eventCount"}],"dateRanges":[{"startDate":"yesterday","endDate":"today"}]}`)
		if r := rowsOfReport(rep); len(r) == 1 && r[0].mets[0] == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the collected event is not counted: %v", rep)
		}
	}
	b.do("opening its reports", chromedp.Click(chromedp.ID("secrets-reports")))
	b.wait("its overview", `location.hash === '#/overview' && document.getElementById('property').value === '`+id+`' && !!document.querySelector('#cards:not(.loading)')`)
	if v := b.eval(`document.querySelector('#cards [data-metric=eventCount] .value').textContent`); v != "1" {
		t.Errorf("the new property's overview shows %s events, want the 1 collected", v)
	}
	b.do("coming back to settings", chromedp.Click(chromedp.CSS(`#nav a[data-view=settings]`)))
	b.wait("the list", rows+` >= 20`)
	if v := b.eval(`document.getElementById('admin-dialog').open + ' ' + !!document.getElementById('secret-read')`); v != "false false" {
		t.Errorf("back on settings, the admin dialog is open and a secret shown: %s, want false false", v)
	}
	if b.eval(`String(!!document.querySelector('#props tr[data-id="`+id+`"]'))`) == "false" {
		b.do("showing more", chromedp.Click(chromedp.ID("props-more")))
		b.wait("every property", rows+` === `+strconv.Itoa(n+1))
	}
	b.do("managing the property", chromedp.Click(chromedp.CSS(`#props tr[data-id="`+id+`"] button.manage`)))
	b.wait("its settings", `document.getElementById('prop-detail').dataset.id === '`+id+`' && document.getElementById('edit-tz').value === 'Europe/Paris'`)

	// Editing the time zone.
	b.typeInto("edit-tz", "America/New_York")
	b.do("saving the time zone", chromedp.Click(chromedp.ID("edit-save")))
	tzCell := `(document.querySelector('#props tr[data-id="` + id + `"] td.tz') || {}).textContent`
	b.wait("the saved time zone", tzCell+` === 'America/New_York' && !document.getElementById('edit-save').disabled`)
	p = getProperty()
	if p["timeZone"] != "America/New_York" || p["displayName"] != "Checkout" || fmt.Sprint(p["allowedOrigins"]) != "[https://shop.example https://www.shop.example]" {
		t.Errorf("GetProperty after editing the time zone: %v", p)
	}

	// An invalid time zone: the server's message is shown, nothing changes.
	b.typeInto("edit-tz", "Mars/Olympus_Mons")
	b.do("saving an invalid time zone", chromedp.Click(chromedp.ID("edit-save")))
	b.wait("the time zone error", `document.getElementById('edit-error').textContent !== '' && !document.getElementById('edit-save').disabled`)
	if v := b.eval(`document.getElementById('edit-error').textContent`); !strings.Contains(v, "timeZone") || !strings.Contains(v, "unknown IANA time zone") {
		t.Errorf("the invalid time zone's error says %q, want the server's message about timeZone", v)
	}
	if v := b.eval(`document.getElementById('edit-tz').getAttribute('aria-invalid') + ' ' + document.activeElement.id`); v != "true edit-tz" {
		t.Errorf("the time zone field after the error: aria-invalid and focus %q, want \"true edit-tz\"", v)
	}
	if v := b.eval(tzCell); v != "America/New_York" {
		t.Errorf("the list shows time zone %q after a refused change", v)
	}
	if p := getProperty(); p["timeZone"] != "America/New_York" {
		t.Errorf("GetProperty after a refused change: %v", p)
	}
	b.shot("settings-error.png")

	// The keys: the two made with the property, both active.
	keyRows := `document.querySelectorAll('#keys tbody tr[data-key-id]').length`
	b.wait("the keys", keyRows+` === 2`)
	keyOf := func(scope string) string {
		return b.eval(`document.querySelector('#keys tr[data-scope=` + scope + `]').dataset.keyId`)
	}
	writeID, readID := keyOf("KEY_SCOPE_WRITE"), keyOf("KEY_SCOPE_READ")
	row := func(keyID string) string { return `document.querySelector('#keys tr[data-key-id="` + keyID + `"]')` }
	hint := func(secret string) string { return secret[:4] + "…" + secret[len(secret)-4:] }
	for _, k := range []struct{ id, secret string }{{writeID, write}, {readID, read}} {
		if v := b.eval(row(k.id) + `.dataset.state + ' ' + ` + row(k.id) + `.querySelector('code').textContent`); v != "KEY_STATE_ACTIVE "+hint(k.secret) {
			t.Errorf("key %s is listed as %q, want KEY_STATE_ACTIVE %s", k.id, v, hint(k.secret))
		}
	}

	// Revoking the write key: collect refuses it within 2 seconds.
	b.do("revoking the write key", chromedp.Click(chromedp.ID("revoke-"+writeID)))
	b.wait("the revocation's confirmation", `document.getElementById('admin-dialog').open && document.getElementById('admin-key').hidden && document.getElementById('admin-ok').textContent === 'Revoke'`)
	start := time.Now()
	b.do("confirming", chromedp.Click(chromedp.ID("admin-ok")))
	refusedWithin("collect with the revoked write key", start, 2*time.Second, func() int { return collect(write, "settings-2") })
	b.wait("the revoked state", `(`+row(writeID)+` || {dataset: {}}).dataset.state === 'KEY_STATE_REVOKED'`)
	if v := b.eval(row(writeID) + `.querySelector('td.expires').textContent + ' ' + !!` + row(writeID) + `.querySelector('button')`); strings.HasPrefix(v, "—") || !strings.HasSuffix(v, " false") {
		t.Errorf("the revoked key's expiry and buttons: %q, want a time and no buttons", v)
	}
	if code := reportStatus(read); code != 200 {
		t.Errorf("runReport with the read key after revoking the write key: %d", code)
	}

	// A new read key.
	b.do("creating a read key", chromedp.Click(chromedp.ID("new-read-key")))
	b.wait("its secret", `(document.getElementById('secret-read') || {}).value?.startsWith('sxr_') && document.getElementById('secret-read').value !== `+strconv.Quote(read))
	read2 := b.eval(`document.getElementById('secret-read').value`)
	if v := b.eval(`String(!!document.getElementById('secret-write'))`); v != "false" {
		t.Error("the write key's secret is still shown after creating another key")
	}
	b.wait("three keys", keyRows+` === 3`)
	if code := reportStatus(read2); code != 200 {
		t.Errorf("runReport with the new read key the page showed: %d, want 200", code)
	}

	// Rotating the first read key with a grace period of an hour: both the
	// old and the new secret work, the old one until an hour from now.
	b.do("opening the rotation", chromedp.Click(chromedp.ID("rotate-"+readID)))
	b.wait("the grace period field", `document.activeElement.id === 'grace-`+readID+`'`)
	b.do("rotating",
		chromedp.SendKeys(chromedp.ID("grace-"+readID), "1"),
		chromedp.Click(chromedp.ID("rotate-ok-"+readID)))
	rotated := time.Now()
	b.wait("the rotated key's secret", `(document.getElementById('secret-read') || {}).value?.startsWith('sxr_') && document.getElementById('secret-read').value !== `+strconv.Quote(read2))
	read3 := b.eval(`document.getElementById('secret-read').value`)
	b.wait("the old key expiring", keyRows+` === 4 && (`+row(readID)+` || {dataset: {}}).dataset.state === 'KEY_STATE_EXPIRING'`)
	_, m = api("ListKeys", `{"propertyId":"`+id+`","showRevoked":true}`)
	keys, _ := m["keys"].([]any)
	found := false
	for _, k := range keys {
		k, _ := k.(map[string]any)
		if k["keyId"] != readID {
			continue
		}
		found = true
		exp, err := time.Parse(time.RFC3339Nano, fmt.Sprint(k["expireTime"]))
		if d := exp.Sub(rotated); err != nil || k["state"] != "KEY_STATE_EXPIRING" || d < 55*time.Minute || d > 65*time.Minute {
			t.Errorf("ListKeys: the rotated key is %v, want expiring in an hour", k)
		}
	}
	if !found || len(keys) != 4 {
		t.Errorf("ListKeys after rotating: %v, want 4 keys with %s", keys, readID)
	}
	if old, cur := reportStatus(read), reportStatus(read3); old != 200 || cur != 200 {
		t.Errorf("runReport with the rotated (old) and new read keys: %d and %d, want 200 for both during the grace period", old, cur)
	}
	b.shot("settings-keys.png")

	// A Measurement Protocol secret: the page shows it once, and a hit
	// with it and the measurement id the page shows is stored.
	b.do("creating an MP secret", chromedp.Click(chromedp.ID("new-mp-secret")))
	b.wait("its secret", `(document.getElementById('secret-measurement') || {}).value?.startsWith('sxm_')`)
	mpSecret := b.eval(`document.getElementById('secret-measurement').value`)
	mid := b.eval(`(document.querySelector('#prop-detail header .muted').textContent.match(/measurement id (G-[A-Z0-9]+)/) || [])[1] || ''`)
	if want, _ := getProperty()["measurementId"].(string); mid == "" || mid != want {
		t.Errorf("the page shows measurement id %q, the property has %q", mid, want)
	}
	resp, err := http.Post(origin+"/mp/collect?measurement_id="+mid+"&api_secret="+mpSecret, "application/json",
		strings.NewReader(`{"client_id":"mp.1","events":[{"name":"page_view","params":{"page_location":"https://shop.example/mp"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Errorf("/mp/collect with the secret the page showed: %d, want 204", resp.StatusCode)
	}

	// Deleting: cancelling keeps it; confirming deletes it, and its keys
	// are refused within 2 seconds.
	b.do("deleting the property", chromedp.Click(chromedp.ID("delete-property")))
	b.wait("the deletion's confirmation", `document.getElementById('admin-dialog').open && document.getElementById('admin-what').textContent.includes('`+id+`')`)
	b.do("cancelling", chromedp.Click(chromedp.ID("admin-cancel")))
	b.wait("the dialog to close", `!document.getElementById('admin-dialog').open`)
	if p := getProperty(); p["propertyId"] != id {
		t.Fatalf("GetProperty after cancelling the deletion: %v", p)
	}
	b.do("deleting the property", chromedp.Click(chromedp.ID("delete-property")))
	b.wait("the deletion's confirmation", `document.getElementById('admin-dialog').open && document.getElementById('admin-ok').textContent === 'Delete'`)
	start = time.Now()
	b.do("confirming", chromedp.Click(chromedp.ID("admin-ok")))
	refusedWithin("runReport with a key of the deleted property", start, 2*time.Second, func() int { return reportStatus(read3) })
	b.wait("the property to go", `!document.querySelector('#props tr[data-id="`+id+`"]') && !document.getElementById('prop-detail')`)
	if code, m := api("GetProperty", `{"propertyId":"`+id+`"}`); code != 404 {
		t.Errorf("GetProperty after deleting: %d %v, want 404", code, m)
	}
	if v := b.eval(`document.getElementById('settings-status').textContent`); !strings.Contains(v, "Deleted Checkout") {
		t.Errorf("the status after deleting says %q", v)
	}
	if v := b.eval(`JSON.stringify(sessionStorage) + ' ' + document.getElementById('property').hidden`); strings.Contains(v, id) || !strings.HasSuffix(v, " true") {
		t.Errorf("the deleted property is still signed in to: %s", v)
	}

	b.fits("1280")
	b.do("phone width", chromedp.EmulateViewport(390, 844), chromedp.Sleep(400*time.Millisecond))
	b.fits("390")
	b.shot("settings-phone.png")
	if v := b.eval(`cspViolations.join(', ')`); v != "" {
		t.Errorf("Content-Security-Policy violations: %s", v)
	}
	if v := b.eval(`jsErrors.join('; ')`); v != "" {
		t.Errorf("uncaught errors in the page: %s", v)
	}
}

// watchCSP collects the page's Content-Security-Policy violations in
// window.cspViolations.
const watchCSP = `window.cspViolations = []; document.addEventListener('securitypolicyviolation', (e) => cspViolations.push(e.violatedDirective + ' ' + e.blockedURI)), ''`

// watchErrors collects the page's uncaught errors in window.jsErrors.
const watchErrors = `window.jsErrors = []; addEventListener('error', (e) => jsErrors.push(e.message)); addEventListener('unhandledrejection', (e) => jsErrors.push(String(e.reason))), ''`

// browser is a headless Chromium that a test drives, with its helpers; each
// helper fails the test, with the page's text, when its step fails.
type browser struct {
	t         *testing.T
	ctx       context.Context
	artifacts string // where screenshots go
}

// newBrowser starts Chromium (skipping the test where it is not installed);
// it is closed when the test ends, and every step must be done within 3
// minutes.
func newBrowser(t *testing.T) *browser {
	t.Helper()
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
	t.Cleanup(cancelAlloc)
	b, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(b); err != nil { // starts the browser
		t.Fatalf("starting %s: %v\n%s", chromiumPath, err, chromeOut.String())
	}
	ctx, cancel := context.WithTimeout(b, 3*time.Minute)
	t.Cleanup(cancel)
	return &browser{t: t, ctx: ctx, artifacts: artifacts}
}

func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		text, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`(window.jsErrors && jsErrors.length ? 'uncaught errors: ' + jsErrors.join('; ') + '\n' : '') + (document.body ? document.body.innerText : '')`))
		shot := ""
		if png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100)); err == nil {
			shot = filepath.Join(b.artifacts, "failed-"+strings.ReplaceAll(b.t.Name(), "/", "-")+".png")
			if os.WriteFile(shot, png, 0o644) != nil {
				shot = ""
			}
		}
		b.t.Fatalf("%s: %v\nscreenshot: %s\npage text:\n%s", what, err, shot, text)
	}
}

func (b *browser) eval(expr string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// wait polls predicate (JavaScript) until it is true, for 30 s at most.
func (b *browser) wait(what, predicate string) {
	b.t.Helper()
	b.do("waiting for "+what, chromedp.Poll[chromedp.Void](predicate, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
}

func (b *browser) shot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(b.artifacts, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", p)
}

// fits checks that the page does not scroll sideways in a window width px
// wide.
func (b *browser) fits(width string) {
	b.t.Helper()
	if w := b.eval(`String(document.documentElement.scrollWidth)`); w != width {
		b.t.Errorf("the page is %s px wide in a %s px window (horizontal scrolling)", w, width)
	}
}

// typeInto empties the input with the given id, then types text into it.
func (b *browser) typeInto(id, text string) {
	b.t.Helper()
	b.eval(`document.getElementById(` + strconv.Quote(id) + `).value = ''`)
	b.do("typing into #"+id, chromedp.SendKeys(chromedp.ID(id), text))
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
