package tracing

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/sextant-analytics/sextant/pkg/eventlog"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // in the error; "" for none
	}{
		{"off", Config{}, ""},
		{"http", Config{Endpoint: "http://localhost:4318", SampleRatio: 0.5}, ""},
		{"https with a path", Config{Endpoint: "https://otel.example/prefix"}, ""},
		{"no scheme", Config{Endpoint: "localhost:4318"}, "Endpoint"},
		{"grpc scheme", Config{Endpoint: "grpc://localhost:4317"}, "Endpoint"},
		{"ratio above one", Config{Endpoint: "http://localhost:4318", SampleRatio: 1.5}, "SampleRatio"},
		{"negative ratio", Config{SampleRatio: -1}, "SampleRatio"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate: %v, want an error about %s", err, tc.want)
			}
		})
	}
}

// receiver is an OTLP/HTTP trace endpoint counting the spans it gets.
func receiver(t *testing.T) (*httptest.Server, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var names []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var in coltracepb.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || proto.Unmarshal(b, &in) != nil {
			http.Error(w, "bad export", http.StatusBadRequest)
			return
		}
		mu.Lock()
		for _, rs := range in.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					names = append(names, s.Name)
				}
			}
		}
		mu.Unlock()
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), names...)
	}
}

func TestOffExportsNothing(t *testing.T) {
	tr, err := New(context.Background(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	if tr.On() || tr.Propagator() != nil {
		t.Fatalf("tracing on without an endpoint: on %v, propagator %v", tr.On(), tr.Propagator())
	}
	_, span := tr.Provider().Tracer("test").Start(context.Background(), "nothing")
	if span.SpanContext().IsValid() || span.IsRecording() {
		t.Fatal("the no-op provider made a real span")
	}
	span.End()
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestShutdownExports(t *testing.T) {
	srv, names := receiver(t)
	tr, err := New(context.Background(), Config{Endpoint: srv.URL, Services: []string{"collect"}})
	if err != nil {
		t.Fatal(err)
	}
	if !tr.On() || tr.Propagator() == nil {
		t.Fatal("tracing off with an endpoint")
	}
	_, span := tr.Provider().Tracer("test").Start(context.Background(), "exported")
	span.End()
	if got := names(); len(got) != 0 {
		t.Fatalf("spans %q exported before the batch was due", got)
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := names(); len(got) != 1 || got[0] != "exported" {
		t.Fatalf("after shutdown the receiver got %q, want [exported]", got)
	}
}

func TestRecordHeaders(t *testing.T) {
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	shared := map[string]string{"content-type": "x"}
	p := propagation.TraceContext{}

	// Off: the records keep their (shared) headers, and nothing is
	// allocated.
	msgs := []eventlog.Message{{Headers: shared}, {Headers: shared}}
	if n := testing.AllocsPerRun(100, func() { InjectRecords(ctx, nil, msgs) }); n != 0 {
		t.Errorf("InjectRecords off allocates %v times", n)
	}
	InjectRecords(context.Background(), p, msgs) // no span: nothing
	if len(msgs[0].Headers) != 1 || RecordLinks(nil, []eventlog.Record{{Headers: shared}}) != nil {
		t.Fatal("headers changed without a span, or links without a propagator")
	}

	InjectRecords(ctx, p, msgs)
	if len(shared) != 1 {
		t.Fatalf("the shared headers were changed: %v", shared)
	}
	for i, m := range msgs {
		if m.Headers["content-type"] != "x" || !strings.Contains(m.Headers["traceparent"], "4bf92f3577b34da6a3ce929d0e0e4736") {
			t.Fatalf("record %d headers %v", i, m.Headers)
		}
	}
	recs := []eventlog.Record{{Headers: msgs[0].Headers}, {Headers: msgs[1].Headers}, {Headers: shared}, {Headers: map[string]string{"traceparent": "junk"}}}
	links := RecordLinks(p, recs)
	if len(links) != 1 || links[0].SpanContext.TraceID() != tid || links[0].SpanContext.SpanID() != sid {
		t.Fatalf("links %+v, want one to %s/%s", links, tid, sid)
	}
}
