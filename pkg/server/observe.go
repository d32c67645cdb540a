package server

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
)

// Observe receives every answered request (Config.Observe): its route,
// the HTTP status the client got and how long it took.
//
// The route is the RPC's procedure for gRPC, gRPC-Web and Connect calls
// ("/sextant.collect.v1.CollectService/Collect"), the method and path
// template for REST ("POST /v1/properties/{property}:runReport"), the
// mux pattern for other handlers ("GET /readyz"), and "unmatched" for
// requests no route took (404, 405): a bounded set of values whatever
// clients send. The status of a gRPC answer, which HTTP carries as 200,
// is the HTTP status of its gRPC code (grpc-gateway's mapping: 503 for
// UNAVAILABLE); a gRPC-Web answer's code travels in its body and counts
// as 200.
type Observe func(route string, status int, elapsed time.Duration)

type routeKey struct{}

// routeOf is where a request's route is learned on its way in.
type routeOf struct{ method, route string }

// observed wraps h so that every request is reported to obs.
func observed(h http.Handler, obs Observe) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rt := &routeOf{method: r.Method}
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), routeKey{}, rt)))
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		if c, ok := grpcStatus(w.Header()); ok && c != codes.OK {
			status = runtime.HTTPStatusFromCode(c)
		}
		route := rt.route
		if route == "" || status == http.StatusNotFound || status == http.StatusMethodNotAllowed {
			route = "unmatched"
		}
		obs(route, status, time.Since(start))
	})
}

// noteRoute records the mux's pattern of r (after the mux served it) as
// its route, unless a REST call already recorded its template. A pattern
// that ends in "/" mounts a connect service or a prefix: the route is
// then the path (a procedure; unknown ones are 404s, "unmatched").
func noteRoute(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		rt, _ := r.Context().Value(routeKey{}).(*routeOf)
		if rt == nil || rt.route != "" {
			return
		}
		switch p := r.Pattern; {
		case strings.HasPrefix(p, "/") && strings.HasSuffix(p, "Service/"):
			rt.route = r.URL.Path
		default:
			rt.route = p
		}
	})
}

// noteREST records a REST call's route from grpc-gateway's annotated
// context (the path template of the route it matched).
func noteREST(ctx context.Context) {
	rt, _ := ctx.Value(routeKey{}).(*routeOf)
	if rt == nil || rt.route != "" {
		return
	}
	if tmpl, ok := runtime.HTTPPathPattern(ctx); ok {
		rt.route = rt.method + " " + tmpl
	}
}

// grpcStatus is the gRPC code of an answer whose headers or trailers
// carry Grpc-Status.
func grpcStatus(h http.Header) (codes.Code, bool) {
	for _, k := range []string{"Grpc-Status", http.TrailerPrefix + "Grpc-Status", http.TrailerPrefix + "grpc-status"} {
		if v := h.Get(k); v != "" {
			n, err := strconv.Atoi(v)
			return codes.Code(n), err == nil
		}
		if vs := h[k]; len(vs) > 0 {
			n, err := strconv.Atoi(vs[0])
			return codes.Code(n), err == nil
		}
	}
	return codes.OK, false
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection (deadlines,
// full duplex).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
