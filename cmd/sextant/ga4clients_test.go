package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestGA4Clients runs Google's own Data API clients — the Node.js library
// @google-analytics/data and the Python library google-analytics-data, each
// over its REST and its gRPC transport — against a running Sextant, and compares
// every answer with Sextant's own API: a report for every dimension the
// metadata lists, with every metric, plus a realtime report, a batch, a
// compatibility check and an error. ./test.sh installs the clients (pinned
// in testdata/ga4clients) and sets SEXTANT_GA4_CLIENTS to where they are.
func TestGA4Clients(t *testing.T) {
	clients := os.Getenv("SEXTANT_GA4_CLIENTS")
	if clients == "" {
		t.Skip("SEXTANT_GA4_CLIENTS is not set: ./test.sh installs Google's clients and sets it")
	}
	python := filepath.Join(clients, "venv", "bin", "python")
	nodeModules := filepath.Join(clients, "node_modules")
	for _, p := range []string{python, filepath.Join(nodeModules, "@google-analytics", "data")} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("SEXTANT_GA4_CLIENTS=%s lacks %s: %v", clients, p, err)
		}
	}
	dir := t.TempDir()
	k := createProperty(t, dir, "GA4 clients")
	kb, _ := json.Marshal(k)
	kf := filepath.Join(dir, "keys.jsonl")
	if err := os.WriteFile(kf, append(kb, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	admin := adminKey(t, embeddedEnv(), "--data-dir", dir)
	addr := freeAddr(t)
	startServer(t, dir, addr)
	base := "http://" + addr
	// Key events and custom definitions of what the load generator sends,
	// so that the clients report them too.
	if code, body := call(t, "PATCH", base+"/v1/properties/"+k.PropertyID, admin,
		`{"keyEvents":["purchase"],"customEventDimensions":["currency"],"customEventMetrics":["value"]}`); code != 200 {
		t.Fatalf("settings: %d %v", code, body)
	}

	// Traffic with every dimension's variety (pages, sources, devices,
	// countries), over the last two days; and three events of a name of
	// their own, now, for the realtime report.
	const events = 2000
	lg := exec.Command(binary, "loadgen", "--server", addr, "--keys-file", kf, "--mode", "unary", "--events", fmt.Sprint(events),
		"--batch", "25", "--concurrency", "4", "--seed", "13", "--history", "48h", "--progress", "0",
		"--bots", "0") // v5 excludes bots, v1 counts them: without, their totals are equal
	lg.Env = embeddedEnv()
	if out, err := lg.CombinedOutput(); err != nil {
		t.Fatalf("loadgen: %v\n%s", err, out)
	}
	if code, body := postJSON(t, base+"/v1/collect", k.WriteKey,
		`{"clientId":"rt.1","events":[{"name":"rt_probe"},{"name":"rt_probe"},{"name":"rt_probe"}]}`); code != 200 {
		t.Fatalf("collect: %d %v", code, body)
	}
	total := func() string {
		_, body := postJSON(t, base+"/v1/properties/"+k.PropertyID+":runReport", k.ReadKey,
			`{"metrics":[{"name":"eventCount"}],"dateRanges":[{"startDate":"7daysAgo","endDate":"today"}]}`)
		return fmt.Sprint(body["rows"])
	}
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(total(), fmt.Sprintf("value:%d", events+3)) {
		if time.Now().After(deadline) {
			t.Fatalf("the report never counted the %d events: %s", events+3, total())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The version with every dimension: replayed, then active, so that the
	// clients' reports cover all of them.
	if code, body := postJSON(t, base+"/v1/projections/traffic/versions", admin, `{"version":"v5"}`); code != 200 {
		t.Fatalf("replay into traffic/v5: %d %v", code, body)
	}
	v5 := func() string {
		_, body := postJSON(t, base+"/v1/properties/"+k.PropertyID+":runReport", k.ReadKey,
			`{"metrics":[{"name":"eventCount"}],"dateRanges":[{"startDate":"7daysAgo","endDate":"today"}],"projectionVersion":"v5"}`)
		return fmt.Sprint(body["rows"])
	}
	for v5() != total() {
		if time.Now().After(deadline.Add(60 * time.Second)) {
			t.Fatalf("traffic/v5 counts %s, v1 %s", v5(), total())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code, body := postJSON(t, base+"/v1/projections/traffic/versions/v5:activate", admin, `{}`); code != 200 {
		t.Fatalf("activate traffic/v5: %d %v", code, body)
	}
	// Dimensions v5 keeps in different groups do not combine, and say so.
	if code, body := postJSON(t, base+"/v1beta/properties/"+k.PropertyID+":runReport", k.ReadKey,
		`{"dimensions":[{"name":"pageTitle"},{"name":"country"}],"metrics":[{"name":"eventCount"}],"dateRanges":[{"startDate":"today","endDate":"today"}]}`); code != 400 ||
		!strings.Contains(fmt.Sprint(body), "different groups") {
		t.Fatalf("pageTitle with country: %d %v, want 400 naming the groups", code, body)
	}

	want := expectedGA4(t, base, k)
	// Every dimension's first report has rows, and item revenue is
	// counted: the clients are compared on numbers, not on empty answers.
	for key, r := range want.Reports {
		if strings.HasSuffix(key, "|0") && r.RowCount == 0 {
			t.Errorf("report %s has no rows", key)
		}
	}
	if r := want.Reports["itemName|0"]; len(r.Rows) == 0 || !slices.ContainsFunc(r.MetricHeaders, func(h []string) bool { return h[0] == "itemRevenue" }) {
		t.Errorf("the report by itemName: %+v", r)
	}
	// The property's custom definitions are listed and reported.
	if r := want.Reports["customEvent:currency|0"]; len(r.Rows) == 0 || r.Rows[0][0][0] != "USD" {
		t.Errorf("the report by customEvent:currency: %+v", r)
	}
	customMetric := false
	for key, r := range want.Reports {
		if strings.HasPrefix(key, "date|") && len(r.MetricHeaders) == 1 && r.MetricHeaders[0][0] == "customEvent:value" && len(r.Rows) > 0 {
			customMetric = true
		}
	}
	if !customMetric {
		t.Error("no report by date of the custom metric customEvent:value with rows")
	}
	type client struct {
		name string
		cmd  *exec.Cmd
		// errCode is how the client reports an INVALID_ARGUMENT answer:
		// the HTTP status (Python) or the gRPC code (Node).
		errCode float64
	}
	var runs []client
	for _, transport := range []string{"rest", "grpc"} {
		py := exec.Command(python, filepath.Join("testdata", "ga4clients", "report.py"))
		js := exec.Command("node", filepath.Join("testdata", "ga4clients", "report.js"))
		for _, cmd := range []*exec.Cmd{py, js} {
			cmd.Env = append(os.Environ(), "SEXTANT_ADDR="+addr, "SEXTANT_PROPERTY_ID="+k.PropertyID, "SEXTANT_READ_KEY="+k.ReadKey,
				"SEXTANT_GA4_TRANSPORT="+transport, "NODE_PATH="+nodeModules,
				"METADATA_SERVER_DETECTION=none") // no Google Cloud metadata server to look for
		}
		runs = append(runs, client{"python google-analytics-data " + transport, py, 400}, client{"node @google-analytics/data " + transport, js, 3})
	}
	for _, c := range runs {
		t.Run(c.name, func(t *testing.T) {
			var stderr bytes.Buffer
			c.cmd.Stderr = &stderr
			out, err := c.cmd.Output()
			if err != nil {
				t.Fatalf("%v\n%s", err, stderr.String())
			}
			var got ga4Summary
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("the client printed %q: %v", out, err)
			}
			if !reflect.DeepEqual(got.Metadata, want.Metadata) {
				t.Errorf("metadata %+v, Sextant's own %+v", got.Metadata, want.Metadata)
			}
			if len(got.Reports) != len(want.Reports) {
				t.Errorf("%d reports, want %d", len(got.Reports), len(want.Reports))
			}
			for key, w := range want.Reports {
				if g := got.Reports[key]; !reflect.DeepEqual(g, w) {
					t.Errorf("report %s:\n client %+v\n Sextant's own %+v", key, g, w)
				}
			}
			if g, w := probeRow(got.Realtime), probeRow(want.Realtime); g != w || w != "3" {
				t.Errorf("realtime rt_probe events: client %q, Sextant's own %q, sent 3", g, w)
			}
			if !reflect.DeepEqual(got.Pivot, want.Pivot) || len(want.Pivot.Rows) == 0 {
				t.Errorf("pivot report:\n client %+v\n Sextant's REST %+v", got.Pivot, want.Pivot)
			}
			if !reflect.DeepEqual(got.Batch, want.Batch) {
				t.Errorf("batch:\n client %+v\n Sextant's own %+v", got.Batch, want.Batch)
			}
			if !sameSet(got.Compatible, want.Compatible) || len(want.Compatible) == len(want.Metadata.Dimensions) {
				t.Errorf("dimensions compatible with date and eventCount: client %v, Sextant's own %v (of %d)", got.Compatible, want.Compatible, len(want.Metadata.Dimensions))
			}
			if got.Error == nil || got.Error.Code != c.errCode || !strings.Contains(got.Error.Message, `"nope"`) {
				t.Errorf("a report of an unknown dimension: the client saw %+v, want code %v naming \"nope\"", got.Error, c.errCode)
			}
		})
	}
}

// ga4Summary is what the client scripts print: the answers, reduced to
// what a report means (headers, values, counts).
type ga4Summary struct {
	Metadata struct {
		Name       string     `json:"name"`
		Dimensions []string   `json:"dimensions"`
		Metrics    [][]string `json:"metrics"`
	} `json:"metadata"`
	Reports    map[string]reportSummary `json:"reports"`
	Realtime   reportSummary            `json:"realtime"`
	Batch      []reportSummary          `json:"batch"`
	Compatible []string                 `json:"compatible"`
	Pivot      struct {
		Headers [][][]string `json:"headers"`
		Rows    [][][]string `json:"rows"`
	} `json:"pivot"`
	Error *struct {
		Code    float64 `json:"code"`
		Message string  `json:"message"`
	} `json:"error"`
}

type reportSummary struct {
	DimensionHeaders []string     `json:"dimensionHeaders"`
	MetricHeaders    [][]string   `json:"metricHeaders"`
	Rows             [][][]string `json:"rows"`
	RowCount         int          `json:"rowCount"`
}

// expectedGA4 asks Sextant's own REST API what the client scripts ask.
func expectedGA4(t *testing.T, base string, k keys) ga4Summary {
	t.Helper()
	var s ga4Summary
	var md struct {
		Name       string `json:"name"`
		Dimensions []struct {
			APIName string `json:"apiName"`
		} `json:"dimensions"`
		Metrics []struct {
			APIName string `json:"apiName"`
			Type    string `json:"type"`
		} `json:"metrics"`
	}
	getJSON(t, base+"/v1/properties/"+k.PropertyID+"/metadata", k.ReadKey, &md)
	s.Metadata.Name = md.Name
	var metrics []string
	for _, d := range md.Dimensions {
		s.Metadata.Dimensions = append(s.Metadata.Dimensions, d.APIName)
	}
	for _, m := range md.Metrics {
		s.Metadata.Metrics = append(s.Metadata.Metrics, []string{m.APIName, m.Type})
		metrics = append(metrics, m.APIName)
	}
	if len(s.Metadata.Dimensions) == 0 || len(metrics) == 0 {
		t.Fatalf("metadata lists nothing: %+v", md)
	}
	names := func(ns ...string) string {
		var parts []string
		for _, n := range ns {
			parts = append(parts, fmt.Sprintf(`{"name":%q}`, n))
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	report := func(path, body string) reportSummary {
		var r struct {
			DimensionHeaders []struct{ Name string }       `json:"dimensionHeaders"`
			MetricHeaders    []struct{ Name, Type string } `json:"metricHeaders"`
			Rows             []struct {
				DimensionValues []struct{ Value string } `json:"dimensionValues"`
				MetricValues    []struct{ Value string } `json:"metricValues"`
			} `json:"rows"`
			RowCount int `json:"rowCount"`
		}
		postInto(t, base+"/v1/properties/"+k.PropertyID+path, k.ReadKey, body, &r)
		out := reportSummary{RowCount: r.RowCount, DimensionHeaders: []string{}, MetricHeaders: [][]string{}, Rows: [][][]string{}}
		for _, h := range r.DimensionHeaders {
			out.DimensionHeaders = append(out.DimensionHeaders, h.Name)
		}
		for _, h := range r.MetricHeaders {
			out.MetricHeaders = append(out.MetricHeaders, []string{h.Name, h.Type})
		}
		for _, row := range r.Rows {
			dv, mv := []string{}, []string{}
			for _, v := range row.DimensionValues {
				dv = append(dv, v.Value)
			}
			for _, v := range row.MetricValues {
				mv = append(mv, v.Value)
			}
			out.Rows = append(out.Rows, [][]string{dv, mv})
		}
		return out
	}
	const week = `"dateRanges":[{"startDate":"7daysAgo","endDate":"today"}]`
	// compatible lists what a report by dims and ms can add, as Sextant's
	// own API answers it.
	compatible := func(dims, ms []string) (cdims, cmetrics []string) {
		var cc struct {
			Dimensions []struct {
				DimensionMetadata struct{ APIName string } `json:"dimensionMetadata"`
			} `json:"dimensionCompatibilities"`
			Metrics []struct {
				MetricMetadata struct{ APIName string } `json:"metricMetadata"`
			} `json:"metricCompatibilities"`
		}
		postInto(t, base+"/v1/properties/"+k.PropertyID+":checkCompatibility", k.ReadKey,
			fmt.Sprintf(`{"dimensions":%s,"metrics":%s,"compatibilityFilter":"COMPATIBLE"}`, names(dims...), names(ms...)), &cc)
		for _, d := range cc.Dimensions {
			cdims = append(cdims, d.DimensionMetadata.APIName)
		}
		for _, m := range cc.Metrics {
			cmetrics = append(cmetrics, m.MetricMetadata.APIName)
		}
		return cdims, cmetrics
	}
	s.Compatible, _ = compatible([]string{"date"}, []string{"eventCount"})
	s.Reports = map[string]reportSummary{}
	for _, d := range s.Metadata.Dimensions {
		_, metrics := compatible([]string{d}, nil)
		if len(metrics) == 0 {
			t.Fatalf("no metric is compatible with %s", d)
		}
		// Ten at a time; a custom metric (customEvent:…) is reported alone.
		var custom, groups [][]string
		var ms []string
		for _, m := range metrics {
			if strings.Contains(m, ":") {
				custom = append(custom, []string{m})
			} else {
				ms = append(ms, m)
			}
		}
		for i := 0; i < len(ms); i += 10 {
			groups = append(groups, ms[i:min(len(ms), i+10)])
		}
		groups = append(groups, custom...)
		for gi, g := range groups {
			s.Reports[fmt.Sprintf("%s|%d", d, gi)] = report(":runReport",
				fmt.Sprintf(`{"dimensions":%s,"metrics":%s,%s,"limit":100000}`, names(d), names(g...), week))
		}
	}
	s.Realtime = report(":runRealtimeReport",
		`{"dimensions":[{"name":"eventName"}],"metrics":[{"name":"eventCount"}],"minuteRanges":[{"startMinutesAgo":29,"endMinutesAgo":0}]}`)
	s.Batch = []reportSummary{
		report(":runReport", fmt.Sprintf(`{"dimensions":%s,"metrics":%s,%s}`, names("country"), names("totalUsers"), week)),
		report(":runReport", fmt.Sprintf(`{"dimensions":%s,"metrics":%s,%s}`, names("date"), names("sessions"), week)),
	}
	// The pivot report, as Sextant's REST API answers it (no API of
	// Sextant's own has pivots).
	var pv struct {
		PivotHeaders []struct {
			PivotDimensionHeaders []struct {
				DimensionValues []struct{ Value string } `json:"dimensionValues"`
			} `json:"pivotDimensionHeaders"`
		} `json:"pivotHeaders"`
		Rows []struct {
			DimensionValues []struct{ Value string } `json:"dimensionValues"`
			MetricValues    []struct{ Value string } `json:"metricValues"`
		} `json:"rows"`
	}
	postInto(t, base+"/v1beta/properties/"+k.PropertyID+":runPivotReport", k.ReadKey, `{"dimensions":[{"name":"country"},{"name":"deviceCategory"}],
		"metrics":[{"name":"sessions"}],"dateRanges":[{"startDate":"7daysAgo","endDate":"today"}],
		"pivots":[{"fieldNames":["country"],"limit":3,"orderBys":[{"metric":{"metricName":"sessions"},"desc":true}]},{"fieldNames":["deviceCategory"],"limit":5}]}`, &pv)
	s.Pivot.Headers, s.Pivot.Rows = [][][]string{}, [][][]string{}
	for _, p := range pv.PivotHeaders {
		var hs [][]string
		for _, h := range p.PivotDimensionHeaders {
			var vs []string
			for _, v := range h.DimensionValues {
				vs = append(vs, v.Value)
			}
			hs = append(hs, vs)
		}
		s.Pivot.Headers = append(s.Pivot.Headers, hs)
	}
	for _, r := range pv.Rows {
		dv, mv := []string{}, []string{}
		for _, v := range r.DimensionValues {
			dv = append(dv, v.Value)
		}
		for _, v := range r.MetricValues {
			mv = append(mv, v.Value)
		}
		s.Pivot.Rows = append(s.Pivot.Rows, [][]string{dv, mv})
	}
	return s
}

func probeRow(r reportSummary) string {
	for _, row := range r.Rows {
		if len(row) == 2 && len(row[0]) == 1 && row[0][0] == "rt_probe" && len(row[1]) == 1 {
			return row[1][0]
		}
	}
	return ""
}

func sameSet(a, b []string) bool {
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return len(a) == len(b)
}

// getJSON and postInto decode a 200 answer of Sextant's REST API into v.
func getJSON(t *testing.T, url, key string, v any) { t.Helper(); into(t, "GET", url, key, "", v) }

func postInto(t *testing.T, url, key, body string, v any) {
	t.Helper()
	into(t, "POST", url, key, body, v)
}

func into(t *testing.T, method, url, key, body string, v any) {
	t.Helper()
	code, m := call(t, method, url, key, body)
	if code != 200 {
		t.Fatalf("%s %s: %d %v", method, url, code, m)
	}
	b, _ := json.Marshal(m)
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s %s answered %s: %v", method, url, b, err)
	}
}
