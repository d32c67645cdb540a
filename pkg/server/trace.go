package server

import (
	"context"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	grpccodes "google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
)

// traced wraps h so that every request is served within a server span,
// the child of the trace context its headers carry (W3C traceparent),
// named for its route as Observe names it: one span per request, whatever
// its protocol, and one per RPC (REST calls its handler in process, in
// the same span).
func traced(h http.Handler, tracer trace.Tracer, prop propagation.TextMapPropagator) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		rt, _ := ctx.Value(routeKey{}).(*routeOf)
		if rt == nil {
			rt = &routeOf{method: r.Method}
			ctx = context.WithValue(ctx, routeKey{}, rt)
		}
		ctx, span := tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path)))
		defer span.End()
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r.WithContext(ctx))
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		if c, ok := grpcStatus(w.Header()); ok {
			span.SetAttributes(attribute.Int("rpc.grpc.status_code", int(c)))
			if c != grpccodes.OK {
				status = runtime.HTTPStatusFromCode(c)
			}
		}
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
		route := rt.route
		if route == "" || status == http.StatusNotFound || status == http.StatusMethodNotAllowed {
			route = "unmatched"
		}
		span.SetName(route)
		span.SetAttributes(attribute.String("http.route", route))
	})
}

// propagating makes the in-process gRPC connection's calls carry their
// trace context, so that the span of the call it serves is the child of
// the REST request's.
func propagating(prop propagation.TextMapPropagator) []grpc.DialOption {
	inject := func(ctx context.Context) context.Context {
		c := propagation.MapCarrier{}
		prop.Inject(ctx, c)
		for k, v := range c {
			ctx = metadata.AppendToOutgoingContext(ctx, k, v)
		}
		return ctx
	}
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			return invoker(inject(ctx), method, req, reply, cc, opts...)
		}),
		grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			return streamer(inject(ctx), desc, cc, method, opts...)
		}),
	}
}
