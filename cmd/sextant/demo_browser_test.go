package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserDemo opens the dashboard of `serve --demo` in headless
// Chromium, signed in with the demo property's read key: the overview
// shows the last week of traffic compared with the week before. Its
// screenshot is the README's: regenerate it with
//
//	SEXTANT_ARTIFACTS=$PWD/docs go test ./cmd/sextant -run TestBrowserDemo
func TestBrowserDemo(t *testing.T) {
	skipShort(t)
	b := newBrowser(t)
	addr := freeAddr(t)
	_, k, _ := startDemo(t, t.TempDir(), addr)
	b.do("opening the dashboard", chromedp.Navigate("http://"+addr+"/"))
	b.eval(watchErrors)
	b.do("signing in",
		chromedp.SendKeys(chromedp.ID("signin-id"), k["SEXTANT_PROPERTY_ID"]),
		chromedp.SendKeys(chromedp.ID("signin-key"), k["SEXTANT_READ_KEY"]),
		chromedp.Click(chromedp.CSS(`#signin button[type=submit]`)))
	b.wait("the overview", `!!document.querySelector('#cards:not(.loading)') && !!document.querySelector('#table-pages table') && !!document.querySelector('#table-sources table') && !!document.querySelector('#table-countries table') && !!document.querySelector('#chart svg')`)
	users := strings.ReplaceAll(b.eval(`document.querySelector('#cards [data-metric=totalUsers] .value').textContent`), ",", "")
	if n, err := strconv.Atoi(users); err != nil || n < 500 {
		t.Errorf("the overview shows %q users for a week of demo traffic", users)
	}
	if v := b.eval(`document.querySelector('#cards [data-metric=totalUsers]').textContent`); strings.Contains(v, "new") {
		t.Errorf("the users card has no previous week to compare with: %q", v)
	}
	for _, table := range []string{"pages", "sources", "countries", "devices", "browsers"} {
		rows, _ := strconv.Atoi(b.eval(`String(document.querySelectorAll('#table-` + table + ` tbody tr').length)`))
		if rows < 3 {
			t.Errorf("the %s table has %d rows", table, rows)
		}
	}
	b.fits("1280")
	b.shot("dashboard.png")
	if v := b.eval(`jsErrors.join('; ')`); v != "" {
		t.Errorf("uncaught errors in the page: %s", v)
	}
}
