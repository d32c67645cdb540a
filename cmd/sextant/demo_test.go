package main

import (
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// filledLine is what serve --demo prints once the demo traffic is in.
var filledLine = regexp.MustCompile(`(?m)^Filled the demo property with (\d+) events over (\d+) days in \S+s: `)

// TestServeDemo starts `serve --demo` on a new store: the demo property's
// reports show traffic from several sources, campaigns, countries, cities,
// devices and browsers over each of two weeks' days, with purchases, and
// all of it (no event is dropped); a second start with --demo adds
// nothing.
func TestServeDemo(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	srv, k, sent := startDemo(t, dir, addr)
	report := demoReport(t, addr, k)
	_, total := report("")
	for _, tc := range []struct {
		dimension string
		atLeast   int    // distinct values
		want      string // one of them
	}{
		{"sessionSource", 8, "google.com"},
		{"sessionMedium", 5, "email"},
		{"sessionCampaignName", 4, "spring_sale"},
		{"country", 15, "Germany"},
		{"city", 30, "São Paulo"},
		{"deviceCategory", 3, "tablet"},
		{"browser", 4, "Firefox"},
		{"pagePath", 30, "/checkout"},
		{"eventName", 8, "purchase"},
		// Today's events and the 13 days' before (today may have none
		// yet just after midnight).
		{"date", 13, time.Now().UTC().AddDate(0, 0, -1).Format("20060102")},
	} {
		rows, tot := report(tc.dimension)
		if len(rows) < tc.atLeast || rows[tc.want] == 0 || tot != sent {
			t.Errorf("by %s: %d values (want %d or more, %s among them), total %d: %v", tc.dimension, len(rows), tc.atLeast, tc.want, tot, rows)
		}
	}
	days, _ := report("date")
	for d := 1; d <= 13; d++ {
		if day := time.Now().UTC().AddDate(0, 0, -d).Format("20060102"); days[day] < sent/40 {
			t.Errorf("%s has %d of the %d events: want each whole day to have its share", day, days[day], sent)
		}
	}

	// A restart with --demo: no new property, no traffic.
	srv.stop(t)
	srv = startServer(t, dir, addr, "--demo")
	time.Sleep(2 * time.Second)
	if out := srv.stdout.String(); exportLine.MatchString(out) || filledLine.MatchString(out) {
		t.Fatalf("the second start made a property or sent traffic:\n%s", out)
	}
	if _, again := report(""); again != total {
		t.Fatalf("after a second start with --demo the reports count %d events, %d before", again, total)
	}
	srv.stop(t)
}

// startDemo starts `serve --demo` on a new store and waits until its
// traffic is in the reports: it returns the server, the demo keys and the
// events sent.
func startDemo(t *testing.T, dir, addr string) (*proc, map[string]string, int) {
	t.Helper()
	start := time.Now()
	srv := startServer(t, dir, addr, "--demo")
	var filled []string
	for deadline := time.Now().Add(60 * time.Second); filled == nil && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		filled = filledLine.FindStringSubmatch(srv.stdout.String())
	}
	if filled == nil {
		t.Fatalf("serve --demo did not say the traffic was in:\n%s\n%s", srv.stdout.String(), srv.stderr.String())
	}
	sent, _ := strconv.Atoi(filled[1])
	t.Logf("%s (%.1fs from the start)", filled[0], time.Since(start).Seconds())
	if sent < 13*2000 || filled[2] != "14" {
		t.Fatalf("filled %d events over %s days, want two weeks of traffic", sent, filled[2])
	}
	k := demoKeys(t, srv.stdout.String())
	// Every event acknowledged is counted, once the projection caught up.
	report := demoReport(t, addr, k)
	var total int
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if _, total = report(""); total == sent {
			break
		}
	}
	if total != sent {
		t.Fatalf("the reports count %d events, %d were acknowledged", total, sent)
	}
	t.Logf("all in the reports %.1fs from the start", time.Since(start).Seconds())
	return srv, k, sent
}

// demoReport returns a function that reports the demo property's events
// of the last 30 days by a dimension ("" for none): by value, and in all.
func demoReport(t *testing.T, addr string, k map[string]string) func(dimension string) (map[string]int, int) {
	reportURL := fmt.Sprintf("http://%s/v1/properties/%s:runReport", addr, k["SEXTANT_PROPERTY_ID"])
	return func(dimension string) (rows map[string]int, total int) {
		t.Helper()
		body := `{"metrics":[{"name":"eventCount"}],"dateRanges":[{"startDate":"30daysAgo","endDate":"today"}],"metricAggregations":["TOTAL"],"limit":1000`
		if dimension != "" {
			body += `,"dimensions":[{"name":"` + dimension + `"}]`
		}
		code, rep := postJSON(t, reportURL, k["SEXTANT_READ_KEY"], body+"}")
		if code != 200 {
			t.Fatalf("report by %s: HTTP %d %v", dimension, code, rep)
		}
		rows = map[string]int{}
		for _, r := range rowsOfReport(rep) {
			n, _ := strconv.Atoi(r.mets[0])
			if dimension != "" {
				rows[r.dims[0]] = n
			}
		}
		if tot := rowsOfTotals(rep); len(tot) == 1 {
			total, _ = strconv.Atoi(tot[0])
		}
		return rows, total
	}
}
