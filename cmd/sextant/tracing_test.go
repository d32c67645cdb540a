package main

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/sextant-analytics/sextant/gen/sextant/insights/v1/insightsv1connect"
)

// otlpReceiver is an OpenTelemetry collector's OTLP/HTTP trace endpoint
// (protobuf), keeping the spans it receives.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []*tracepb.Span
	srv   *httptest.Server
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	r := &otlpReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" {
			http.NotFound(w, req)
			return
		}
		body, err := io.ReadAll(req.Body)
		var in coltracepb.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(body, &in)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		for _, rs := range in.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				r.spans = append(r.spans, ss.Spans...)
			}
		}
		r.mu.Unlock()
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *otlpReceiver) received() []*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*tracepb.Span(nil), r.spans...)
}

// TestTracing: with --otlp-endpoint, a hit's trace goes from the REST
// call that collected it (the child of the traceparent the client sent)
// across the event log's record headers to the projection's span, which
// links to it; reports are traced too; and a graceful stop exports the
// spans not yet sent.
func TestTracing(t *testing.T) {
	skipShort(t)
	recv := newOTLPReceiver(t)
	dir := t.TempDir()
	k := createProperty(t, dir, "Traced")
	addr := freeAddr(t)
	srv := startServer(t, dir, addr, "--otlp-endpoint", recv.srv.URL)
	base := "http://" + addr

	// A first hit makes the visitor's keys: the traced one is sealed
	// under keys already stored. (A new visitor's first record can be
	// read by the projection before its key is stored, and then counts
	// as deleted: a race of collect's, not tracing's.)
	post := func(body string, header http.Header) {
		t.Helper()
		req, _ := http.NewRequest("POST", base+"/v1/collect", strings.NewReader(body))
		req.Header = header
		req.Header.Set("Authorization", "Bearer "+k.WriteKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("collect: %d", resp.StatusCode)
		}
	}
	post(`{"clientId":"c1","events":[{"name":"page_view","eventId":"t0","params":{"page_location":"https://shop.example/first"}}]}`, http.Header{})
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	post(`{"clientId":"c1","events":[{"name":"page_view","eventId":"t1","params":{"page_location":"https://shop.example/traced"}}]}`,
		http.Header{"Traceparent": {"00-" + traceID + "-" + parentID + "-01"}})
	c := insightsv1connect.NewInsightsServiceClient(http.DefaultClient, base, connect.WithGRPC())
	for deadline := time.Now().Add(10 * time.Second); ; {
		rows, _ := reportRows(context.Background(), t, c, k)
		if rows["/traced"] == "1/1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("report rows %v, want /traced 1/1", rows)
		}
		time.Sleep(50 * time.Millisecond)
	}
	srv.stop(t) // exports the spans still batched

	var collectSpan, applySpan, reportSpan *tracepb.Span
	spans := recv.received()
	for _, s := range spans {
		switch {
		case s.Kind == tracepb.Span_SPAN_KIND_SERVER && hex.EncodeToString(s.TraceId) == traceID:
			collectSpan = s
		case s.Name == "projection.apply":
			for _, l := range s.Links {
				if hex.EncodeToString(l.TraceId) == traceID {
					applySpan = s
				}
			}
		case s.Kind == tracepb.Span_SPAN_KIND_SERVER && strings.HasSuffix(s.Name, "/RunReport"):
			reportSpan = s
		}
	}
	var names []string
	for _, s := range spans {
		names = append(names, s.Name)
	}
	switch {
	case collectSpan == nil:
		t.Fatalf("no server span of trace %s among %d spans %q", traceID, len(spans), names)
	case hex.EncodeToString(collectSpan.ParentSpanId) != parentID:
		t.Errorf("collect span %q has parent %x, want the traceparent's %s", collectSpan.Name, collectSpan.ParentSpanId, parentID)
	case collectSpan.Name != "POST /v1/collect":
		t.Errorf("collect span named %q, want its route", collectSpan.Name)
	}
	if applySpan == nil {
		t.Errorf("no projection.apply span links to trace %s; spans %q", traceID, names)
	}
	if reportSpan == nil {
		t.Fatalf("no server span of RunReport; spans %q", names)
	}
	// Within the report's span: its cache lookup, and its query when the
	// cache did not hold the answer.
	children := map[string]bool{}
	for _, s := range spans {
		if string(s.ParentSpanId) == string(reportSpan.SpanId) {
			children[s.Name] = true
		}
	}
	if !children["insights.cache.get"] {
		t.Errorf("the report's span %q has children %v, want insights.cache.get among them", reportSpan.Name, children)
	}
}

// TestTracingOffByDefault: without --otlp-endpoint nothing is exported,
// whatever traceparent requests carry (tracing's no-op path).
func TestTracingOffByDefault(t *testing.T) {
	skipShort(t)
	recv := newOTLPReceiver(t)
	dir := t.TempDir()
	k := createProperty(t, dir, "Untraced")
	addr := freeAddr(t)
	// The standard variables do not turn tracing on either: only the flag
	// (or SEXTANT_OTLP_ENDPOINT) does.
	srv := startServerEnv(t, append(embeddedEnv(), "OTEL_EXPORTER_OTLP_ENDPOINT="+recv.srv.URL), dir, addr)
	base := "http://" + addr
	req, _ := http.NewRequest("POST", base+"/v1/collect", strings.NewReader(`{"clientId":"c1","events":[{"name":"page_view","eventId":"u1"}]}`))
	req.Header.Set("Authorization", "Bearer "+k.WriteKey)
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("collect: %d", resp.StatusCode)
	}
	time.Sleep(200 * time.Millisecond)
	srv.stop(t)
	if got := recv.received(); len(got) > 0 {
		t.Fatalf("tracing off, yet %d spans were exported", len(got))
	}
}
