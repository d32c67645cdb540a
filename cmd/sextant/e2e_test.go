package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/structpb"

	collectv1 "github.com/sextant-analytics/sextant/gen/sextant/collect/v1"
	insightsv1 "github.com/sextant-analytics/sextant/gen/sextant/insights/v1"
	"github.com/sextant-analytics/sextant/gen/sextant/insights/v1/insightsv1connect"
	"github.com/sextant-analytics/sextant/pkg/geoip"
)

// binary is the sextant binary built once for the end-to-end tests.
var binary string

// noConfig is a SEXTANT_CONFIG of no file, for the commands the tests run
// (embeddedEnv): no context of the user's is used.
var noConfig string

// serverEnv is the environment of servers started by startServer (nil: the
// test's own).
var serverEnv []string

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// embeddedEnv is the test's environment without SEXTANT_ settings, so that
// the embedded tests stay embedded when the distributed stack's variables
// are exported.
func embeddedEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SEXTANT_") {
			env = append(env, kv)
		}
	}
	return append(env, geoipEnv(), "SEXTANT_CONFIG="+noConfig)
}

// geoipEnv points servers at the city database fetched once (test.sh runs
// `sextant geoip fetch --geoip-db tilt/.stack/geoip` and exports
// SEXTANT_GEOIP_DB), or turns lookups off: no test server downloads it.
func geoipEnv() string {
	if p := os.Getenv("SEXTANT_GEOIP_DB"); p != "" {
		return "SEXTANT_GEOIP_DB=" + p
	}
	if p, err := filepath.Abs(filepath.Join("..", "..", "tilt", ".stack", "geoip")); err == nil {
		if db, err := geoip.OpenDir(p); err == nil {
			db.Close()
			return "SEXTANT_GEOIP_DB=" + p
		}
	}
	return "SEXTANT_GEOIP=off"
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sextant-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "sextant")
	noConfig = filepath.Join(dir, "no-config", "config.json")
	flag.Parse()
	if !testing.Short() {
		out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "building sextant: %v\n%s", err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: builds and runs the binary")
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// syncBuffer collects a process's output safely.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type proc struct {
	cmd    *exec.Cmd
	addr   string
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan error
}

// startServer runs `sextant serve` and waits for /readyz.
func startServer(t *testing.T, dataDir, addr string, extra ...string) *proc {
	t.Helper()
	p := launchServer(t, dataDir, addr, extra...)
	p.waitReady(t, http.DefaultClient, "http://"+addr)
	return p
}

// launchServer runs `sextant serve`.
func launchServer(t *testing.T, dataDir, addr string, extra ...string) *proc {
	t.Helper()
	args := append([]string{"serve", "--data-dir", dataDir, "--addr", addr, "--flush-interval", "50ms"}, extra...)
	p := &proc{cmd: exec.Command(binary, args...), addr: addr, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.Env = serverEnv
	if p.cmd.Env == nil {
		p.cmd.Env = embeddedEnv()
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("server stderr:\n%s", p.stderr.String())
		}
	})
	return p
}

// waitReady waits for base's /readyz to answer 200 through client.
func (p *proc) waitReady(t *testing.T, client *http.Client, base string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			t.Fatalf("server exited early: %v\n%s", err, p.stderr.String())
		default:
		}
		resp, err := client.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("server not ready in time\n%s", p.stderr.String())
}

func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
}

func (p *proc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("graceful stop: %v\n%s", err, p.stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("server did not stop on SIGTERM")
	}
}

type keys struct {
	PropertyID string `json:"propertyId"`
	WriteKey   string `json:"writeKey"`
	ReadKey    string `json:"readKey"`
}

func createProperty(t *testing.T, dataDir, name string) keys {
	t.Helper()
	cmd := exec.Command(binary, "property", "create", "--offline", "--name", name, "--json", "--data-dir", dataDir)
	cmd.Env = embeddedEnv()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("property create: %v", err)
	}
	var k keys
	if err := json.Unmarshal(out, &k); err != nil {
		t.Fatalf("property create printed %q: %v", out, err)
	}
	if k.PropertyID == "" || !strings.HasPrefix(k.WriteKey, "sxw_") || !strings.HasPrefix(k.ReadKey, "sxr_") {
		t.Fatalf("property create printed %+v", k)
	}
	return k
}

// postJSON posts body and returns the status and decoded answer.
func postJSON(t *testing.T, url, key, body string) (int, map[string]any) {
	t.Helper()
	return call(t, "POST", url, key, body)
}

func pageView(id, path string) *collectv1.Event {
	return &collectv1.Event{Name: "page_view", EventId: id, Params: map[string]*structpb.Value{
		"page_location": structpb.NewStringValue("https://shop.example" + path),
	}}
}

// reportRows runs a pagePath × screenPageViews, totalUsers report over
// gRPC and returns path -> "views/users" plus the totals.
func reportRows(ctx context.Context, t *testing.T, c insightsv1connect.InsightsServiceClient, k keys) (map[string]string, string) {
	t.Helper()
	req := connect.NewRequest(&insightsv1.RunReportRequest{
		PropertyId:         k.PropertyID,
		Dimensions:         []*insightsv1.Dimension{{Name: "pagePath"}},
		Metrics:            []*insightsv1.Metric{{Name: "screenPageViews"}, {Name: "totalUsers"}, {Name: "eventCount"}},
		DateRanges:         []*insightsv1.DateRange{{StartDate: "yesterday", EndDate: "today"}},
		MetricAggregations: []insightsv1.MetricAggregation{insightsv1.MetricAggregation_TOTAL},
	})
	req.Header().Set("Authorization", "Bearer "+k.ReadKey)
	resp, err := c.RunReport(ctx, req)
	if err != nil {
		t.Fatalf("RunReport: %v", err)
	}
	rows := map[string]string{}
	for _, r := range resp.Msg.Rows {
		rows[r.DimensionValues[0].Value] = r.MetricValues[0].Value + "/" + r.MetricValues[1].Value
	}
	total := ""
	if len(resp.Msg.Totals) > 0 {
		m := resp.Msg.Totals[0].MetricValues
		total = m[0].Value + "/" + m[1].Value + "/" + m[2].Value
	}
	return rows, total
}

// waitReport polls until the report equals want, or fails.
func waitReport(ctx context.Context, t *testing.T, c insightsv1connect.InsightsServiceClient, k keys, want map[string]string, wantTotal string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var rows map[string]string
	var total string
	for time.Now().Before(deadline) {
		rows, total = reportRows(ctx, t, c, k)
		if fmt.Sprint(rows) == fmt.Sprint(want) && total == wantTotal {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("report rows %v total %s, want %v total %s", rows, total, want, wantTotal)
}

func TestEndToEnd(t *testing.T) {
	skipShort(t)
	ctx := context.Background()
	dir := t.TempDir()
	shop := createProperty(t, dir, "Shop")
	other := createProperty(t, dir, "Other")
	addr := freeAddr(t)
	srv := startServer(t, dir, addr)
	base := "http://" + addr
	if strings.Contains(srv.stdout.String(), "export SEXTANT_WRITE_KEY") {
		t.Fatal("a demo property was created although properties exist")
	}

	// REST: two visitors, one retry of a batch with the same event ids.
	batch1 := `{"clientId":"c1","events":[
		{"name":"page_view","eventId":"r1","params":{"page_location":"https://shop.example/a","page_title":"A"}},
		{"name":"page_view","eventId":"r2","params":{"page_location":"https://shop.example/b?utm_source=news&utm_medium=email"}}]}`
	for i := 0; i < 2; i++ { // the second is a client retry: counted once
		code, body := postJSON(t, base+"/v1/collect", shop.WriteKey, batch1)
		if code != 200 || body["accepted"] != float64(2) {
			t.Fatalf("collect: %d %v", code, body)
		}
	}
	code, body := postJSON(t, base+"/v1/collect", shop.WriteKey,
		`{"clientId":"c2","events":[{"name":"page_view","eventId":"r3","params":{"page_location":"https://shop.example/a"}},{"name":"purchase","eventId":"r4","params":{"value":9.5,"currency":"EUR"}}]}`)
	if code != 200 || body["accepted"] != float64(2) {
		t.Fatalf("collect: %d %v", code, body)
	}

	// Errors: each with its status, and nothing of a rejected batch stored.
	for _, tc := range []struct {
		name, key, body string
		status          int
		field           string
	}{
		{"no key", "", `{"clientId":"x","events":[{"name":"page_view"}]}`, 401, ""},
		{"unknown key", "sxw_nope", `{"clientId":"x","events":[{"name":"page_view"}]}`, 401, ""},
		{"read key on collect", shop.ReadKey, `{"clientId":"x","events":[{"name":"page_view"}]}`, 403, ""},
		{"other property's key", other.WriteKey, `{"propertyId":"` + shop.PropertyID + `","clientId":"x","events":[{"name":"page_view"}]}`, 403, ""},
		{"malformed json", shop.WriteKey, `{"clientId":`, 400, ""},
		{"missing client id", shop.WriteKey, `{"events":[{"name":"page_view","eventId":"bad1"}]}`, 400, "clientId"},
		{"bad event in a batch", shop.WriteKey, `{"clientId":"c9","events":[{"name":"page_view","eventId":"bad2","params":{"page_location":"https://shop.example/zzz"}},{"name":"9lives"}]}`, 400, "events[1].name"},
		{"stale timestamp", shop.WriteKey, `{"clientId":"c9","timestampMicros":"1000000","events":[{"name":"page_view"}]}`, 400, "timestampMicros"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := postJSON(t, base+"/v1/collect", tc.key, tc.body)
			if code != tc.status {
				t.Fatalf("status %d, want %d: %v", code, tc.status, body)
			}
			if tc.field != "" && !strings.Contains(fmt.Sprint(body["details"]), "field:"+tc.field+" ") {
				t.Fatalf("error does not name field %q: %v", tc.field, body)
			}
		})
	}

	// gRPC stream with the generated client: batches acked by sequence.
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+shop.WriteKey)
	stream, err := collectv1.NewCollectServiceClient(conn).StreamCollect(sctx)
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 5; seq++ {
		b := &collectv1.CollectRequest{ClientId: fmt.Sprintf("s%d", seq)}
		for j := 0; j < 4; j++ {
			b.Events = append(b.Events, pageView(fmt.Sprintf("g%d-%d", seq, j), "/c"))
		}
		if seq == 3 { // a rejected batch does not end the stream
			b.Events = append(b.Events, &collectv1.Event{Name: "bad name"})
		}
		if err := stream.Send(&collectv1.StreamCollectRequest{Sequence: seq, Batch: b}); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 5; seq++ {
		ack, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if ack.Sequence != seq {
			t.Fatalf("ack sequence %d, want %d", ack.Sequence, seq)
		}
		if seq == 3 {
			if ack.Error == nil || ack.Error.Code != "INVALID_ARGUMENT" || len(ack.Error.Violations) != 1 || ack.Error.Violations[0].FieldPath != "events[4].name" {
				t.Fatalf("batch 3 should be rejected naming events[4].name: %v", ack)
			}
			continue
		}
		if ack.Error != nil || ack.Accepted != 4 || len(ack.EventIds) != 4 {
			t.Fatalf("ack %d: %v", seq, ack)
		}
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("stream end: %v", err)
	}

	// The same answer over REST, gRPC and Connect.
	want := map[string]string{"/a": "2/2", "/b": "1/1", "/c": "16/4", "(not set)": "0/1"}
	const wantTotal = "19/6/20" // views / distinct users / events
	httpClient := &http.Client{Transport: &http.Transport{Protocols: h2c()}}
	grpcClient := insightsv1connect.NewInsightsServiceClient(httpClient, base, connect.WithGRPC())
	connectClient := insightsv1connect.NewInsightsServiceClient(http.DefaultClient, base)
	waitReport(ctx, t, grpcClient, shop, want, wantTotal)
	waitReport(ctx, t, connectClient, shop, want, wantTotal)
	rest := func() map[string]any {
		code, body := postJSON(t, base+"/v1/properties/"+shop.PropertyID+":runReport", shop.ReadKey,
			`{"dimensions":[{"name":"pagePath"}],"metrics":[{"name":"screenPageViews"},{"name":"totalUsers"}],"dateRanges":[{"startDate":"yesterday","endDate":"today"}],"orderBys":[{"dimension":{"dimensionName":"pagePath"}}]}`)
		if code != 200 {
			t.Fatalf("REST runReport %d %v", code, body)
		}
		return body
	}
	if got := fmt.Sprint(rest()["rows"]); got != "[map[dimensionValues:[map[value:(not set)]] metricValues:[map[value:0] map[value:1]]] map[dimensionValues:[map[value:/a]] metricValues:[map[value:2] map[value:2]]] map[dimensionValues:[map[value:/b]] metricValues:[map[value:1] map[value:1]]] map[dimensionValues:[map[value:/c]] metricValues:[map[value:16] map[value:4]]]]" {
		t.Fatalf("REST rows %s", got)
	}
	if code, body := postJSON(t, base+"/v1/properties/"+shop.PropertyID+":runReport", other.ReadKey, `{"metrics":[{"name":"eventCount"}],"dateRanges":[{"startDate":"today","endDate":"today"}]}`); code != 403 {
		t.Fatalf("another property's read key: %d %v", code, body)
	}
	if code, body := postJSON(t, base+"/v1/properties/"+shop.PropertyID+":runReport", shop.ReadKey, `{"metrics":[{"name":"nope"}],"dateRanges":[{"startDate":"today","endDate":"today"}]}`); code != 400 || !strings.Contains(fmt.Sprint(body), "metrics[0].name") {
		t.Fatalf("unknown metric: %d %v", code, body)
	}

	// SIGKILL right after acks: every acked event survives, exactly once.
	var acked []*collectv1.CollectRequest
	cc := collectv1.NewCollectServiceClient(conn)
	for i := 0; i < 20; i++ {
		b := &collectv1.CollectRequest{ClientId: fmt.Sprintf("k%d", i%5), Events: []*collectv1.Event{pageView(fmt.Sprintf("k-%d", i), "/d")}}
		if _, err := cc.Collect(sctx, b); err != nil {
			t.Fatal(err)
		}
		acked = append(acked, b)
	}
	srv.kill(t)
	conn.Close()
	srv = startServer(t, dir, addr)
	want["/d"] = "20/5"
	waitReport(ctx, t, grpcClient, shop, want, "39/11/40")
	// Clients retry what they are unsure of: still counted once.
	conn2, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	for _, b := range acked[15:] {
		if _, err := collectv1.NewCollectServiceClient(conn2).Collect(sctx, b); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	waitReport(ctx, t, grpcClient, shop, want, "39/11/40")
	srv.stop(t)
	if !strings.Contains(srv.stderr.String(), "stopped") {
		t.Fatalf("no clean shutdown in the log:\n%s", srv.stderr.String())
	}
}

// exportLine matches the keys serve prints for the demo property.
var exportLine = regexp.MustCompile(`(?m)^export (SEXTANT_[A-Z_]+)=(\S+)$`)

func demoEnv(t *testing.T, out string) []string {
	t.Helper()
	var env []string
	for _, m := range exportLine.FindAllStringSubmatch(out, -1) {
		env = append(env, m[1]+"="+m[2])
	}
	if len(env) != 4 {
		t.Fatalf("serve printed %d key lines, want 4:\n%s", len(env), out)
	}
	return env
}

// demoKeys is demoEnv as a map: SEXTANT_PROPERTY_ID, SEXTANT_WRITE_KEY,
// SEXTANT_READ_KEY and SEXTANT_ADMIN_KEY of the demo property serve made.
func demoKeys(t *testing.T, out string) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, kv := range demoEnv(t, out) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return env
}

func TestDemoPropertyOnFirstStartOnly(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	srv := startServer(t, dir, addr)
	demoEnv(t, srv.stdout.String())
	srv.stop(t)
	srv = startServer(t, dir, addr)
	if exportLine.MatchString(srv.stdout.String()) {
		t.Fatalf("keys printed again on the second start:\n%s", srv.stdout.String())
	}
	srv.stop(t)
}

func TestLimitsAndDocs(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	k := createProperty(t, dir, "Busy")
	addr := freeAddr(t)
	startServer(t, dir, addr, "--collect-rate", "0.1", "--collect-burst", "500", "--max-body-bytes", "200000")
	base := "http://" + addr

	events := make([]string, 500)
	for i := range events {
		events[i] = fmt.Sprintf(`{"name":"page_view","eventId":"b%d"}`, i)
	}
	batch := `{"clientId":"c1","events":[` + strings.Join(events, ",") + `]}`
	if code, body := postJSON(t, base+"/v1/collect", k.WriteKey, batch); code != 200 {
		t.Fatalf("first batch: %d %v", code, body)
	}
	req, _ := http.NewRequest("POST", base+"/v1/collect", strings.NewReader(`{"clientId":"c1","events":[{"name":"page_view"}]}`))
	req.Header.Set("Authorization", "Bearer "+k.WriteKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("over the rate: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	big := `{"clientId":"c1","events":[{"name":"page_view","params":{"page_title":"` + strings.Repeat("x", 300_000) + `"}}]}`
	if code, body := postJSON(t, base+"/v1/collect", k.WriteKey, big); code != 413 || !strings.Contains(fmt.Sprint(body), "limit of 200000 bytes") {
		t.Fatalf("oversized body: %d %v", code, body)
	}
	if code, body := postJSON(t, base+"/v1/collect", k.WriteKey, `{"clientId":"c1","events":[{"name":"page_view"}],"surprise":1}`); code != 400 || !strings.Contains(fmt.Sprint(body), "surprise") {
		t.Fatalf("unknown field: %d %v", code, body)
	}

	resp, err = http.Get(base + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Swagger string         `json:"swagger"`
		Paths   map[string]any `json:"paths"`
	}
	err = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if err != nil || doc.Swagger != "2.0" {
		t.Fatalf("openapi: %v %q", err, doc.Swagger)
	}
	for _, p := range []string{"/v1/collect", "/v1/properties/{propertyId}:runReport", "/v1/properties/{propertyId}:runRealtimeReport", "/v1/projections"} {
		if _, ok := doc.Paths[p]; !ok {
			t.Errorf("openapi lacks %s (has %v)", p, doc.Paths)
		}
	}
	var b []byte
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err = http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		// The projector flushes what it applied within the flush interval.
		if strings.Contains(string(b), "sextant_projection_flush_seconds_count") || time.Now().After(deadline) {
			break
		}
	}
	for _, want := range []string{`sextant_ingest_events_total{result="accepted"} 500`, `sextant_ingest_events_total{result="throttled"} 1`, "sextant_append_seconds_count 1", "sextant_consumer_lag_records{", "sextant_projection_flush_seconds_count"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(base + p)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", p, resp, err)
		}
		resp.Body.Close()
	}
}

// TestBeaconAndOrigins: browsers send hits with sendBeacon (text/plain, the
// write key in the query string) and only from the property's origins.
func TestBeaconAndOrigins(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	cmd := exec.Command(binary, "property", "create", "--offline", "--name", "Shop", "--json", "--data-dir", dir, "--allowed-origins", "https://shop.example")
	cmd.Env = embeddedEnv()
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var k keys
	if err := json.Unmarshal(out, &k); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	startServer(t, dir, addr)
	send := func(key, origin string) int {
		req, _ := http.NewRequest("POST", "http://"+addr+"/v1/collect?key="+key, strings.NewReader(`{"clientId":"b1","events":[{"name":"page_view"}]}`))
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		name, key, origin string
		want              int
	}{
		{"allowed origin", k.WriteKey, "https://shop.example", 200},
		{"no origin (not a browser)", k.WriteKey, "", 200},
		{"another origin", k.WriteKey, "https://evil.example", 403},
		{"a read key is never taken from a URL", k.ReadKey, "https://shop.example", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := send(tc.key, tc.origin); got != tc.want {
				t.Fatalf("status %d, want %d", got, tc.want)
			}
		})
	}
}
