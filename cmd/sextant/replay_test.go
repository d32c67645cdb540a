package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"strings"
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
	projectionv1 "github.com/sextant-analytics/sextant/gen/sextant/projection/v1"
	"github.com/sextant-analytics/sextant/gen/sextant/projection/v1/projectionv1connect"
)

// truth is what the test sent, aggregated independently of the projection
// code: page views per page under v1 (as sent) and under v2 (normalised,
// bots excluded), the distinct users, and the bots' events.
type truth struct {
	v1Views, v2Views map[string]int
	v1Users, v2Users map[string]bool
	bots             int
}

var spellings = [][]string{
	{"/Shoes/", "/shoes", "/shoes/index.html", "/SHOES"},
	{"/hats", "/hats/", "/Hats//"},
	{"/", "/index.html"},
	{"/cart", "/Cart"},
}

// sendHistory sends n batches of 50 page views over a gRPC stream (bots
// among them, every 7th batch sent twice as a client retry) and returns the
// ground truth.
func sendHistory(t *testing.T, addr, writeKey string, n int, seed uint64) truth {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed))
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+writeKey)
	stream, err := collectv1.NewCollectServiceClient(conn).StreamCollect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tr := truth{v1Views: map[string]int{}, v2Views: map[string]int{}, v1Users: map[string]bool{}, v2Users: map[string]bool{}}
	// v2's spelling of each path, written out by hand.
	canonical := map[string]string{"/Shoes/": "/shoes", "/shoes": "/shoes", "/shoes/index.html": "/shoes", "/SHOES": "/shoes",
		"/hats": "/hats", "/hats/": "/hats", "/Hats//": "/hats", "/": "/", "/index.html": "/", "/cart": "/cart", "/Cart": "/cart"}
	// Acks are read while batches are sent: a client that does not read
	// its acks stalls the stream (flow control), as it should.
	acks := make(chan error, 1)
	go func() {
		for {
			ack, err := stream.Recv()
			if err == io.EOF {
				acks <- nil
				return
			}
			if err != nil {
				acks <- err
				return
			}
			if ack.Error != nil || ack.Accepted != 50 {
				acks <- fmt.Errorf("batch %d: %v", ack.Sequence, ack)
				return
			}
		}
	}()
	seq := uint64(0)
	send := func(b *collectv1.CollectRequest) {
		seq++
		if err := stream.Send(&collectv1.StreamCollectRequest{Sequence: seq, Batch: b}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		bot := rng.IntN(5) == 0
		client := fmt.Sprintf("u%d", rng.IntN(200))
		b := &collectv1.CollectRequest{ClientId: client}
		if bot {
			b.ClientId = fmt.Sprintf("bot%d", rng.IntN(5))
			b.UserAgent = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
		}
		for j := 0; j < 50; j++ {
			group := spellings[rng.IntN(len(spellings))]
			path := group[rng.IntN(len(group))]
			b.Events = append(b.Events, &collectv1.Event{Name: "page_view", EventId: fmt.Sprintf("h%d-%d", i, j),
				Params: map[string]*structpb.Value{"page_location": structpb.NewStringValue("https://shop.example" + path)}})
			tr.v1Views[path]++
			tr.v1Users[b.ClientId] = true
			if bot {
				tr.bots++
			} else {
				tr.v2Views[canonical[path]]++
				tr.v2Users[b.ClientId] = true
			}
		}
		send(b)
		if i%7 == 0 {
			send(b) // a retry: the same event ids, counted once
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if err := <-acks; err != nil {
		t.Fatal(err)
	}
	return tr
}

func viewsByPath(ctx context.Context, c insightsv1connect.InsightsServiceClient, k keys, version string) (map[string]int, int, error) {
	req := connect.NewRequest(&insightsv1.RunReportRequest{
		Dimensions:         []*insightsv1.Dimension{{Name: "pagePath"}},
		Metrics:            []*insightsv1.Metric{{Name: "screenPageViews"}, {Name: "totalUsers"}},
		DateRanges:         []*insightsv1.DateRange{{StartDate: "yesterday", EndDate: "today"}},
		MetricAggregations: []insightsv1.MetricAggregation{insightsv1.MetricAggregation_TOTAL},
		ProjectionVersion:  version,
	})
	req.Header().Set("Authorization", "Bearer "+k.ReadKey)
	resp, err := c.RunReport(ctx, req)
	if err != nil {
		return nil, 0, err
	}
	out := map[string]int{}
	for _, r := range resp.Msg.Rows {
		var n int
		fmt.Sscan(r.MetricValues[0].Value, &n)
		out[r.DimensionValues[0].Value] = n
	}
	users := 0
	if len(resp.Msg.Totals) > 0 {
		fmt.Sscan(resp.Msg.Totals[0].MetricValues[1].Value, &users)
	}
	return out, users, nil
}

// replayCluster is where the projectors run: kill stops one abruptly and
// restart brings it back.
type replayCluster struct {
	control func() string // a live address answering ProjectionService
	reports string        // the address answering InsightsService
	kill    func(rng *rand.Rand)
	restart func()
}

// checkReplayUnderKills starts a v2 replay, kills projectors at random
// points until it has caught up, and compares both versions with the
// ground truth.
func checkReplayUnderKills(t *testing.T, c replayCluster, k keys, admin string, tr truth, seed uint64) {
	t.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 7))
	pc := projectionv1connect.NewProjectionServiceClient(http.DefaultClient, "http://"+c.control())
	req := connect.NewRequest(&projectionv1.StartReplayRequest{Name: "traffic", Version: "v2"})
	req.Header().Set("Authorization", "Bearer "+admin)
	if _, err := pc.StartReplay(ctx, req); err != nil {
		t.Fatal(err)
	}
	status := func() (*projectionv1.Projection, error) {
		pc := projectionv1connect.NewProjectionServiceClient(http.DefaultClient, "http://"+c.control())
		r := connect.NewRequest(&projectionv1.GetReplayRequest{Name: "traffic", Version: "v2"})
		r.Header().Set("Authorization", "Bearer "+admin)
		resp, err := pc.GetReplay(ctx, r)
		if err != nil {
			return nil, err
		}
		return resp.Msg.Projection, nil
	}
	kills := 0
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		p, err := status()
		if err != nil {
			continue
		}
		if p.Lag == 0 {
			break
		}
		if kills < 6 {
			c.kill(rng)
			kills++
			c.restart()
		}
	}
	if kills == 0 {
		t.Fatalf("the replay finished before any projector was killed: the test proves nothing; send more history")
	}
	t.Logf("killed a projector %d times during the replay", kills)
	ic := insightsv1connect.NewInsightsServiceClient(http.DefaultClient, "http://"+c.reports)
	want := func(version string, views map[string]int, users int) {
		t.Helper()
		var got map[string]int
		var gotUsers int
		var err error
		for end := time.Now().Add(60 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
			got, gotUsers, err = viewsByPath(ctx, ic, k, version)
			if err == nil && fmt.Sprint(got) == fmt.Sprint(views) && gotUsers == users {
				return
			}
		}
		t.Fatalf("%s: views %v users %d (err %v)\nwant %v users %d", version, got, gotUsers, err, views, users)
	}
	want("v1", tr.v1Views, len(tr.v1Users))
	want("v2", tr.v2Views, len(tr.v2Users))
	p, err := status()
	if err != nil {
		t.Fatal(err)
	}
	if p.EventsExcluded != int64(tr.bots) {
		t.Fatalf("v2 excluded %d events, want the %d bot events", p.EventsExcluded, tr.bots)
	}
	checkVersionsOverREST(t, c.control(), c.reports, k, admin)
}

// checkVersionsOverREST activates v2, rolls back and deletes v2 with the
// REST API, checking which version answers reports after each step.
func checkVersionsOverREST(t *testing.T, control, reports string, k keys, admin string) {
	t.Helper()
	do := func(method, path, key string, wantStatus int) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+control+path, strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		if resp.StatusCode != wantStatus {
			t.Fatalf("%s %s: %d %v, want %d", method, path, resp.StatusCode, body, wantStatus)
		}
		return body
	}
	// answeredBy is the version answering reports once it is want: reads
	// switch within --watermark-refresh (100 ms on Cassandra) on every
	// process, so it waits a second for want.
	answeredBy := func(want string) string {
		t.Helper()
		var v string
		for deadline := time.Now().Add(time.Second); ; time.Sleep(20 * time.Millisecond) {
			code, body := postJSON(t, "http://"+reports+"/v1/properties/"+k.PropertyID+":runReport", k.ReadKey,
				`{"metrics":[{"name":"eventCount"}],"dateRanges":[{"startDate":"today","endDate":"today"}]}`)
			if code != 200 {
				t.Fatalf("report %d %v", code, body)
			}
			md, _ := body["metadata"].(map[string]any)
			v, _ = md["projectionVersion"].(string)
			if v == want || time.Now().After(deadline) {
				return v
			}
		}
	}
	do("POST", "/v1/projections/traffic/versions/v2:activate", k.ReadKey, 403) // not an admin key
	do("POST", "/v1/projections/traffic/versions/v2:activate", admin, 200)
	if v := answeredBy("v2"); v != "v2" {
		t.Fatalf("after activate, reports answered by %q", v)
	}
	do("DELETE", "/v1/projections/traffic/versions/v2", admin, 400) // FAILED_PRECONDITION: it is active
	body := do("POST", "/v1/projections/traffic:rollback", admin, 200)
	if p, _ := body["projection"].(map[string]any); p["version"] != "v1" {
		t.Fatalf("rollback answered %v", body)
	}
	if v := answeredBy("v1"); v != "v1" {
		t.Fatalf("after rollback, reports answered by %q", v)
	}
	do("DELETE", "/v1/projections/traffic/versions/v2", admin, 200)
	do("GET", "/v1/projections/traffic/versions/v2", admin, 404)
}

func adminKey(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"admin-key", "create"}, args...)...)
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("admin-key create: %v", err)
	}
	line := strings.TrimSpace(string(out))
	if !strings.HasPrefix(line, "export SEXTANT_ADMIN_KEY=sxa_") {
		t.Fatalf("admin-key create printed %q", line)
	}
	return strings.TrimPrefix(line, "export SEXTANT_ADMIN_KEY=")
}

// TestReplayRandomKillsEmbedded: the whole embedded server is killed at
// random points of a replay.
func TestReplayRandomKillsEmbedded(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	k := createProperty(t, dir, "History")
	admin := adminKey(t, embeddedEnv(), "--data-dir", dir)
	addr := freeAddr(t)
	srv := startServer(t, dir, addr)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	tr := sendHistory(t, addr, k.WriteKey, 1200, seed)
	c := replayCluster{
		control: func() string { return addr },
		reports: addr,
		kill:    func(*rand.Rand) { srv.kill(t) },
		restart: func() { srv = startServer(t, dir, addr) },
	}
	checkReplayUnderKills(t, c, k, admin, tr, seed)
}

// TestReplayRandomKillsDistributed: two projectors on Kafka and Cassandra;
// a random one is killed at random points of the replay and restarted.
func TestReplayRandomKillsDistributed(t *testing.T) {
	needStack(t)
	s := newStack(t, 4)
	admin := adminKey(t, s.env)
	api := s.start(t, "--services=collect,insights", "--collect-rate=1000000", "--collect-burst=1000000")
	proj := []*proc{s.start(t, "--services=projection"), s.start(t, "--services=projection")}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	tr := sendHistory(t, api.addr, s.keys.WriteKey, 400, seed)
	victim := 0
	c := replayCluster{
		control: func() string { return proj[0].addr },
		reports: api.addr,
		kill: func(rng *rand.Rand) {
			victim = rng.IntN(len(proj))
			proj[victim].kill(t)
		},
		restart: func() { proj[victim] = s.start(t, "--services=projection") },
	}
	checkReplayUnderKills(t, c, s.keys, admin, tr, seed)
}

// TestReplayWatchAndRebuild: on a small log, `projection replay --watch`
// returns once the version holds every event sent before the replay, so
// that the next report, read at once, counts them all; and a version
// deleted and replayed again from a later time is not answered from the
// cache of its earlier build, though both builds end at the same offsets
// (the same watermarks).
func TestReplayWatchAndRebuild(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	k := createProperty(t, dir, "Rebuild")
	admin := adminKey(t, embeddedEnv(), "--data-dir", dir)
	addr := freeAddr(t)
	startServer(t, dir, addr)
	send := func(ids ...string) {
		t.Helper()
		var events []string
		for _, id := range ids {
			events = append(events, `{"name":"page_view","eventId":"`+id+`","params":{"page_location":"https://shop.example/rebuild"}}`)
		}
		// One client: every event in one partition, so both builds end
		// with the same watermark.
		code, body := postJSON(t, "http://"+addr+"/v1/collect", k.WriteKey, `{"clientId":"c1","events":[`+strings.Join(events, ",")+`]}`)
		if code != 200 {
			t.Fatalf("collect: %d %v", code, body)
		}
	}
	send("rebuild-1", "rebuild-2", "rebuild-3")
	time.Sleep(500 * time.Millisecond)
	later := time.Now().UTC()
	time.Sleep(500 * time.Millisecond)
	send("rebuild-4")

	cli := []string{"--server", "http://" + addr, "--admin-key", admin}
	replay := func(extra ...string) {
		t.Helper()
		out := runCLI(t, embeddedEnv(), append(append([]string{"projection", "replay", "traffic", "--logic", "v2", "--watch"}, cli...), extra...)...)
		if !strings.Contains(out, "done: traffic/v2 has reached the end the log had when the replay started") {
			t.Fatalf("replay --watch printed:\n%s", out)
		}
	}
	// views reads v2's page views once, without waiting.
	views := func() (string, bool) {
		t.Helper()
		code, body := postJSON(t, "http://"+addr+"/v1/properties/"+k.PropertyID+":runReport", k.ReadKey,
			`{"metrics":[{"name":"screenPageViews"}],"dateRanges":[{"startDate":"yesterday","endDate":"today"}],"projectionVersion":"v2"}`)
		if code != 200 {
			t.Fatalf("report %d %v", code, body)
		}
		n := "0"
		if rows, _ := body["rows"].([]any); len(rows) > 0 {
			row, _ := rows[0].(map[string]any)
			if mv, _ := row["metricValues"].([]any); len(mv) > 0 {
				m, _ := mv[0].(map[string]any)
				n, _ = m["value"].(string)
			}
		}
		md, _ := body["metadata"].(map[string]any)
		cached, _ := md["cached"].(bool)
		return n, cached
	}

	replay()
	if n, _ := views(); n != "4" {
		t.Fatalf("right after replay --watch, v2 has %s page views, want the 4 sent before the replay", n)
	}
	if n, cached := views(); n != "4" || !cached {
		t.Fatalf("the same report again: %s page views, cached %v; want 4 from the cache", n, cached)
	}
	runCLI(t, embeddedEnv(), append([]string{"projection", "delete", "traffic", "v2"}, cli...)...)
	replay("--from", later.Format(time.RFC3339Nano))
	if n, cached := views(); n != "1" || cached {
		t.Fatalf("v2 rebuilt from after the first three page views: %s page views, cached %v; want 1, not the earlier build's cached answer", n, cached)
	}
}
