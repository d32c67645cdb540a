package gateway

import (
	"context"
	"net"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// TestForwardedCallsCarryTheTrace: with tracing on, a forwarded call has
// a client span, the child of the caller's, whose context the backend
// receives (traceparent); off, no traceparent is sent.
func TestForwardedCallsCarryTheTrace(t *testing.T) {
	got := make(chan string, 1)
	backend := grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
		if m, _ := grpc.MethodFromServerStream(stream); m != "/sextant.test.v1.TestService/Do" {
			return status.Error(codes.Unimplemented, m) // health checks: off
		}
		md, _ := metadata.FromIncomingContext(stream.Context())
		got <- strings.Join(md.Get("traceparent"), ",")
		return stream.SendMsg(&emptypb.Empty{})
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = backend.Serve(ln) }()
	defer backend.Stop()

	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	for _, tc := range []struct {
		name string
		cfg  Config
		on   bool
	}{
		{"off", Config{}, false},
		{"on", Config{Propagator: propagation.TraceContext{}, Tracer: tp}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exp.Reset()
			conn, err := dial([]string{ln.Addr().String()}, "sextant.test.v1.TestService", 1<<20, nil, tc.cfg.traced()...)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, parent := tp.Tracer("test").Start(context.Background(), "gateway call")
			if err := conn.Invoke(ctx, "/sextant.test.v1.TestService/Do", &emptypb.Empty{}, &emptypb.Empty{}); err != nil {
				t.Fatal(err)
			}
			parent.End()
			tp := <-got
			if !tc.on {
				if tp != "" {
					t.Fatalf("tracing off, yet traceparent %q was sent", tp)
				}
				return
			}
			var client sdktrace.ReadOnlySpan
			for _, s := range exp.GetSpans().Snapshots() {
				if s.Parent().SpanID() == parent.SpanContext().SpanID() {
					client = s
				}
			}
			if client == nil {
				t.Fatalf("no client span under the caller's; spans %v", exp.GetSpans())
			}
			want := "00-" + parent.SpanContext().TraceID().String() + "-" + client.SpanContext().SpanID().String() + "-01"
			if tp != want {
				t.Fatalf("backend got traceparent %q, want %q (the client span's)", tp, want)
			}
		})
	}
}
