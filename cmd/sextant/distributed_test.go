package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
)

// stack is the distributed stack the tests run against: the servers of
// ./tilt/stack.sh (SEXTANT_KAFKA_BROKERS, SEXTANT_CQL_HOSTS,
// SEXTANT_REDIS_ADDR), with a topic and a keyspace of the test's own.
type stack struct {
	env      []string // for every sextant process
	keys     keys
	topic    string
	keyspace string
}

func needStack(t *testing.T) {
	t.Helper()
	skipShort(t)
	for _, v := range []string{"SEXTANT_KAFKA_BROKERS", "SEXTANT_CQL_HOSTS", "SEXTANT_REDIS_ADDR"} {
		if os.Getenv(v) == "" {
			t.Skipf("%s not set: start the stack with ./tilt/stack.sh up and eval \"$(./tilt/stack.sh env)\"", v)
		}
	}
}

func randomName() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func runCLI(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sextant %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func newStack(t *testing.T, partitions int) *stack {
	t.Helper()
	s := &stack{topic: "e2e-" + randomName(), keyspace: "e2e_" + randomName()}
	s.env = append(os.Environ(),
		"SEXTANT_KAFKA_TOPIC="+s.topic, "SEXTANT_CQL_KEYSPACE="+s.keyspace,
		"SEXTANT_CQL_CONSISTENCY=ONE", "SEXTANT_DEMO=false", geoipEnv())
	runCLI(t, s.env, "kafka", "init", "--kafka-partitions", fmt.Sprint(partitions))
	runCLI(t, s.env, "migrate")
	out := runCLI(t, s.env, "property", "create", "--offline", "--name", "Distributed", "--json")
	if err := jsonUnmarshal(out, &s.keys); err != nil {
		t.Fatalf("property create: %v: %s", err, out)
	}
	return s
}

// start runs one sextant process of the stack.
func (s *stack) start(t *testing.T, extra ...string) *proc {
	t.Helper()
	return startServerEnv(t, s.env, t.TempDir(), freeAddr(t), extra...)
}

// sender sends batches of 10 events (ids assigned by the gateway) from
// distinct visitors and counts what was acknowledged. No request may fail.
type sender struct {
	conn    *grpc.ClientConn
	ctx     context.Context
	acked   atomic.Int64
	failed  atomic.Int64
	lastErr atomic.Value
	batches atomic.Int64
}

func newSender(t *testing.T, addr, writeKey string) *sender {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &sender{conn: conn, ctx: metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+writeKey)}
}

func (s *sender) send(n int, path string) {
	c := collectv1.NewCollectServiceClient(s.conn)
	for i := 0; i < n; i++ {
		b := s.batches.Add(1)
		req := &collectv1.CollectRequest{ClientId: fmt.Sprintf("v%d", b%50)}
		for j := 0; j < 10; j++ {
			req.Events = append(req.Events, &collectv1.Event{Name: "page_view", Params: map[string]*structpb.Value{
				"page_location": structpb.NewStringValue("https://shop.example" + path),
			}})
		}
		ctx, cancel := context.WithTimeout(s.ctx, 20*time.Second)
		resp, err := c.Collect(ctx, req)
		cancel()
		if err != nil {
			s.failed.Add(1)
			s.lastErr.Store(err.Error())
			continue
		}
		s.acked.Add(int64(resp.Accepted))
	}
}

// eventsByPath reports eventCount per pagePath through the gateway.
func eventsByPath(t *testing.T, c insightsv1connect.InsightsServiceClient, k keys) (map[string]string, error) {
	req := connect.NewRequest(&insightsv1.RunReportRequest{
		PropertyId: k.PropertyID,
		Dimensions: []*insightsv1.Dimension{{Name: "pagePath"}},
		Metrics:    []*insightsv1.Metric{{Name: "eventCount"}},
		DateRanges: []*insightsv1.DateRange{{StartDate: "yesterday", EndDate: "today"}},
	})
	req.Header().Set("Authorization", "Bearer "+k.ReadKey)
	resp, err := c.RunReport(context.Background(), req)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, r := range resp.Msg.Rows {
		out[r.DimensionValues[0].Value] = r.MetricValues[0].Value
	}
	return out, nil
}

func waitEvents(t *testing.T, c insightsv1connect.InsightsServiceClient, k keys, want map[string]string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var got map[string]string
	var err error
	for time.Now().Before(deadline) {
		got, err = eventsByPath(t, c, k)
		if err == nil && fmt.Sprint(got) == fmt.Sprint(want) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("report %v (err %v), want %v", got, err, want)
}

// TestDistributed runs a gateway, two collectors, two projectors and one
// insights process on Kafka, Cassandra and Redis; kills a collector under
// traffic and a projector mid-stream; and checks every acknowledged event
// counts exactly once.
func TestDistributed(t *testing.T) {
	needStack(t)
	s := newStack(t, 4)
	c1, c2 := s.start(t, "--services=collect"), s.start(t, "--services=collect")
	p1, p2 := s.start(t, "--services=projection", "--flush-interval=100ms"), s.start(t, "--services=projection", "--flush-interval=100ms")
	in := s.start(t, "--services=insights")
	gw := s.start(t, "--services=gateway",
		"--collect-backends="+c1.addr+","+c2.addr,
		"--insights-backends="+in.addr,
		"--projection-backends="+p1.addr+","+p2.addr)
	client := insightsv1connect.NewInsightsServiceClient(http.DefaultClient, "http://"+gw.addr)

	// Phase 1: steady traffic through the gateway; one collector dies.
	snd := newSender(t, gw.addr, s.keys.WriteKey)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() { defer wg.Done(); snd.send(40, "/before") }()
	}
	for snd.batches.Load() < 40 {
		time.Sleep(10 * time.Millisecond)
	}
	c1.kill(t)
	wg.Wait()
	if f := snd.failed.Load(); f != 0 {
		t.Fatalf("%d requests failed after a collector died: %v", f, snd.lastErr.Load())
	}
	acked1 := snd.acked.Load()
	if acked1 != 1600 {
		t.Fatalf("acked %d events, want 1600", acked1)
	}
	waitEvents(t, client, s.keys, map[string]string{"/before": "1600"}, 60*time.Second)

	// Phase 2: a projector dies mid-stream; the survivor takes over its
	// partitions and nothing is lost or counted twice.
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() { defer wg.Done(); snd.send(40, "/after") }()
	}
	for snd.batches.Load() < 160+60 {
		time.Sleep(10 * time.Millisecond)
	}
	p1.kill(t)
	wg.Wait()
	if f := snd.failed.Load(); f != 0 {
		t.Fatalf("%d requests failed: %v", f, snd.lastErr.Load())
	}
	waitEvents(t, client, s.keys, map[string]string{"/before": "1600", "/after": "1600"}, 90*time.Second)

	// The survivor holds every partition now.
	claimed := map[string]bool{}
	for _, m := range regexp.MustCompile(`partition claimed".*partition=(\d+)`).FindAllStringSubmatch(p2.stderr.String(), -1) {
		claimed[m[1]] = true
	}
	if len(claimed) != 4 {
		t.Fatalf("the surviving projector claimed partitions %v, want all 4; its log:\n%s", claimed, p2.stderr.String())
	}

	// The gateway's REST answers from the same data.
	code, body := postJSON(t, "http://"+gw.addr+"/v1/properties/"+s.keys.PropertyID+":runReport", s.keys.ReadKey,
		`{"metrics":[{"name":"eventCount"}],"dateRanges":[{"startDate":"yesterday","endDate":"today"}]}`)
	if code != 200 || !strings.Contains(fmt.Sprint(body["rows"]), "value:3200") {
		t.Fatalf("REST through the gateway: %d %v", code, body)
	}
	// Errors come back through the gateway with their codes.
	if code, body := postJSON(t, "http://"+gw.addr+"/v1/collect", s.keys.WriteKey, `{"events":[{"name":"page_view"}]}`); code != 400 || !strings.Contains(fmt.Sprint(body), "clientId") {
		t.Fatalf("invalid batch through the gateway: %d %v", code, body)
	}
	if code, _ := postJSON(t, "http://"+gw.addr+"/v1/collect", "sxw_unknown", `{"clientId":"c","events":[{"name":"page_view"}]}`); code != 401 {
		t.Fatalf("unknown key through the gateway: %d", code)
	}
	if m := metricsText(t, gw); !strings.Contains(m, `sextant_gateway_upstream_requests_total{code="OK",service="sextant.collect.v1.CollectService"}`) {
		t.Errorf("gateway metrics lack upstream counts:\n%s", m)
	}
	// A repeated report is answered by the gateway from its cache: no hop
	// to insights (whose answers it counts), the same rows, marked cached.
	forwarded := func() int {
		re := regexp.MustCompile(`(?m)^sextant_gateway_upstream_requests_total\{code="OK",service="sextant.insights.v1.InsightsService"\} (\d+)`)
		m := re.FindStringSubmatch(metricsText(t, gw))
		if m == nil {
			t.Fatalf("gateway metrics lack insights' upstream count")
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	// The first calls may be forwarded: until insights' watermarks (kept
	// in memory for --watermark-refresh) are as recent as the gateway's,
	// the gateway does not keep its answers.
	var first map[string]string
	for i := 0; i < 3; i++ {
		var err error
		if first, err = eventsByPath(t, client, s.keys); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	before := forwarded()
	for i := 0; i < 5; i++ {
		again, err := eventsByPath(t, client, s.keys)
		if err != nil || fmt.Sprint(again) != fmt.Sprint(first) {
			t.Fatalf("repeated report %v (%v), first %v", again, err, first)
		}
	}
	if n := forwarded(); n != before {
		t.Errorf("the gateway forwarded %d of 5 repeated reports to insights, want none (answered from its cache)", n-before)
	}
	if m := metricsText(t, gw); !regexp.MustCompile(`(?m)^sextant_registry_cache_bytes [1-9]`).MatchString(m) {
		t.Errorf("gateway metrics lack the registry's memory (sextant_registry_cache_bytes above 0)")
	}
	// Collect took the gateway's signed principals: no key of its own
	// looked up (the gateway looked them up once each).
	authBy := func(p *proc, by string) int {
		m := regexp.MustCompile(`(?m)^sextant_authentications_total\{by="` + by + `"\} (\d+)`).FindStringSubmatch(metricsText(t, p))
		if m == nil {
			return 0
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	if a, k := authBy(c2, "assertion"), authBy(c2, "key"); a == 0 || k != 0 {
		t.Errorf("collect authenticated %d calls by the gateway's assertion and %d by key lookups, want all by assertion", a, k)
	}
	if k := authBy(gw, "key"); k == 0 {
		t.Errorf("the gateway counts no key lookups")
	}
	if m := metricsText(t, p2); !strings.Contains(m, "sextant_consumer_lag_records") {
		t.Errorf("projector metrics lack consumer lag")
	}
}

// startServerEnv is startServer with an environment.
func startServerEnv(t *testing.T, env []string, dataDir, addr string, extra ...string) *proc {
	t.Helper()
	old := serverEnv
	serverEnv = env
	defer func() { serverEnv = old }()
	return startServer(t, dataDir, addr, extra...)
}
