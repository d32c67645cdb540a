// Package server serves Sextant's APIs on one address: gRPC, gRPC-Web and
// Connect through connect-go handlers (h2c, or HTTP/2 by ALPN over TLS),
// REST through grpc-gateway calling the same handlers in process, gRPC
// health and reflection, the OpenAPI document, /healthz and /readyz.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	connectcors "connectrpc.com/cors"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/rs/cors"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/sextant-analytics/sextant/pkg/configcheck"
)

// Service is one API mounted on the server.
type Service struct {
	// Name is the fully-qualified protobuf service name.
	Name string
	// Mount returns the connect handler's path and handler.
	Mount func(opts ...connect.HandlerOption) (string, http.Handler)
	// REST registers the grpc-gateway routes on mux, calling cc (the
	// service's handler in this process; see inproc).
	REST func(ctx context.Context, mux *runtime.ServeMux, cc grpc.ClientConnInterface) error
	// Routes are REST routes served directly (see Route), in front of
	// the grpc-gateway routes of the same paths.
	Routes []Route
}

// Config configures the server.
type Config struct {
	Addr string
	// Listener, when set, is the bound listener to serve on instead of
	// binding Addr in Listen (a caller that binds first, before it
	// creates or prints anything).
	Listener     net.Listener
	MaxBodyBytes int64
	// ForwardHeaders are extra request headers REST passes to the RPCs
	// (e.g. a trusted country header).
	ForwardHeaders []string
	OpenAPI        []byte
	Logger         *slog.Logger
	// Authenticate authenticates the requests of direct routes (Route),
	// as the interceptors given to New do for RPCs.
	Authenticate Authenticate
	// Timeouts against slow clients; zero means the default.
	Timeouts Timeouts
	// Middleware, when set, wraps every request's handling (the gateway's
	// per-address rate limit).
	Middleware func(http.Handler) http.Handler
	// Observe, when set, is told of every answered request (its route,
	// status and time), Middleware's answers included.
	Observe Observe
	// TLS, when set, makes the address serve TLS only: HTTP/2 (gRPC) and
	// HTTP/1.1 (REST, browsers) by ALPN, with its certificate (typically
	// GetCertificate, to serve a renewed one) and, when it requires them,
	// client certificates. Nil serves cleartext HTTP/1.1 and h2c.
	TLS *tls.Config
	// Propagator and Tracer, when Propagator is set, serve every request
	// within a server span (see traced), the child of the trace context
	// its headers carry. Nil serves without tracing, at no cost.
	Propagator propagation.TextMapPropagator
	Tracer     trace.Tracer
}

// Timeouts bound how long a client may take, so that slow ones (slowloris)
// cannot hold connections and goroutines. There is no overall ReadTimeout:
// over HTTP/2 it would end every StreamCollect stream that lasts longer.
type Timeouts struct {
	// ReadHeader bounds the reading of a request's headers (default 10s).
	ReadHeader time.Duration
	// Body bounds the reading of a REST request's body, from its headers
	// on (default 30s); RPC messages are bounded by their deadlines.
	Body time.Duration
	// Idle bounds how long a keep-alive connection waits for its next
	// request (default 2m).
	Idle time.Duration
}

// DefaultTimeouts returns the timeouts used when a field of Timeouts is
// zero.
func DefaultTimeouts() Timeouts {
	return Timeouts{ReadHeader: 10 * time.Second, Body: 30 * time.Second, Idle: 2 * time.Minute}
}

func (t Timeouts) withDefaults() Timeouts {
	d := DefaultTimeouts()
	if t.ReadHeader <= 0 {
		t.ReadHeader = d.ReadHeader
	}
	if t.Body <= 0 {
		t.Body = d.Body
	}
	if t.Idle <= 0 {
		t.Idle = d.Idle
	}
	return t
}

// Validate reports negative timeouts (zero means the default).
func (t Timeouts) Validate() error {
	e := configcheck.New("server")
	configcheck.NotNegative(e, "Timeouts.ReadHeader", t.ReadHeader)
	configcheck.NotNegative(e, "Timeouts.Body", t.Body)
	configcheck.NotNegative(e, "Timeouts.Idle", t.Idle)
	return e.Err()
}

// Server is the HTTP server.
type Server struct {
	cfg      Config
	services []Service
	opts     []connect.HandlerOption
	checks   []Check
	extra    map[string]http.Handler
	health   *grpchealth.StaticChecker
	ln       net.Listener
	routes   routes        // of cfg.OpenAPI: 404 or 405 for a request no route takes
	self     *pipeListener // the REST gateway's streaming calls, and Self's
	selfOnce sync.Once
	srv      *http.Server
	conn     *grpc.ClientConn // on self
	connErr  error
	draining atomic.Bool
	// The REST gateway's mux and error handler, for direct routes.
	restMux   *runtime.ServeMux
	restError runtime.ErrorHandlerFunc
}

// DefaultMaxBodyBytes is Config.MaxBodyBytes's default.
const DefaultMaxBodyBytes = 1 << 20

// withDefaults fills the zero fields (and negative ones, which Validate
// reports) with their defaults.
func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	c.Timeouts = c.Timeouts.withDefaults()
	if c.Propagator != nil && c.Tracer == nil {
		c.Tracer = noop.NewTracerProvider().Tracer("")
	}
	return c
}

// Validate reports what no default fixes: no address nor listener, and
// negative sizes and timeouts.
func (c Config) Validate() error {
	e := configcheck.New("server")
	if c.Addr == "" && c.Listener == nil {
		e.Errorf("no Addr nor Listener")
	}
	configcheck.NotNegative(e, "MaxBodyBytes", c.MaxBodyBytes)
	e.Add(c.Timeouts.Validate())
	return e.Err()
}

// New returns a server mounting services with the given interceptors;
// zero fields of cfg take their defaults.
func New(cfg Config, services []Service, checks []Check, opts ...connect.HandlerOption) *Server {
	cfg = cfg.withDefaults()
	return &Server{cfg: cfg, services: services, opts: opts, checks: checks, extra: map[string]http.Handler{}, routes: parseRoutes(cfg.OpenAPI)}
}

// Handle mounts an extra handler (before Start).
func (s *Server) Handle(pattern string, h http.Handler) { s.extra[pattern] = h }

// HandleBody mounts an extra handler that reads a request body, which must
// arrive within Timeouts.Body (before Start).
func (s *Server) HandleBody(pattern string, h http.Handler) {
	s.extra[pattern] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.cfg.Timeouts.Body))
		h.ServeHTTP(w, r)
	})
}

// Listen binds the address; Addr then reports it.
func (s *Server) Listen() error {
	if s.cfg.Listener != nil {
		s.ln = s.cfg.Listener
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("server: listen %s: %w", s.cfg.Addr, err)
	}
	s.ln = ln
	return nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve serves until ctx ends, then shuts down gracefully: readiness and
// health turn to not serving, new connections are refused, in-flight calls
// finish (up to grace).
func (s *Server) Serve(ctx context.Context, grace time.Duration) error {
	handler, err := s.handler(ctx)
	if err != nil {
		return err
	}
	// h2c serves the in-process listener, and the public one unless it
	// serves TLS, where ALPN chooses HTTP/2 or HTTP/1.1.
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	protocols.SetHTTP2(s.cfg.TLS != nil)
	s.srv = &http.Server{
		Handler:           handler,
		Protocols:         &protocols,
		TLSConfig:         s.cfg.TLS,
		ReadHeaderTimeout: s.cfg.Timeouts.ReadHeader,
		IdleTimeout:       s.cfg.Timeouts.Idle,
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 2)
	go func() {
		if s.cfg.TLS != nil {
			errc <- s.srv.ServeTLS(s.ln, "", "")
			return
		}
		errc <- s.srv.Serve(s.ln)
	}()
	go func() { errc <- s.srv.Serve(s.self) }()
	s.cfg.Logger.Info("serving", "addr", s.Addr(), "tls", s.cfg.TLS != nil)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.draining.Store(true)
	for _, svc := range s.services {
		s.health.SetStatus(svc.Name, grpchealth.StatusNotServing)
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err = s.srv.Shutdown(sctx)
	if s.conn != nil {
		_ = s.conn.Close()
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func (s *Server) handler(ctx context.Context) (http.Handler, error) {
	mux := http.NewServeMux()
	names := make([]string, 0, len(s.services))
	opts := append([]connect.HandlerOption{connect.WithReadMaxBytes(int(s.cfg.MaxBodyBytes))}, s.opts...)
	for _, svc := range s.services {
		path, h := svc.Mount(opts...)
		mux.Handle(path, h)
		names = append(names, svc.Name)
	}
	s.health = grpchealth.NewStaticChecker(names...)
	mux.Handle(grpchealth.NewHandler(s.health))
	reflector := grpcreflect.NewStaticReflector(names...)
	mux.Handle(grpcreflect.NewHandlerV1(reflector))
	mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector))

	gw, err := s.gateway(ctx, mux)
	if err != nil {
		return nil, err
	}
	mux.Handle("/v1/", s.limitBody(beaconKey(gw)))
	for _, svc := range s.services {
		for _, rt := range svc.Routes {
			mux.Handle(rt.Pattern, s.limitBody(beaconKey(s.route(rt))))
		}
	}
	if len(s.cfg.OpenAPI) > 0 {
		mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(s.cfg.OpenAPI)
		})
	}
	// Liveness: the process serves; it depends on nothing else (a
	// dependency's outage is readiness's business, not a reason to
	// restart).
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.ready)
	for p, h := range s.extra {
		mux.Handle(p, h)
	}
	var inner http.Handler = mux
	if s.cfg.Observe != nil || s.cfg.Propagator != nil {
		inner = noteRoute(mux)
	}
	h := withCORS(inner)
	if s.cfg.Middleware != nil {
		h = s.cfg.Middleware(h)
	}
	if s.cfg.Propagator != nil {
		h = traced(h, s.cfg.Tracer, s.cfg.Propagator)
	}
	if s.cfg.Observe != nil {
		h = observed(h, s.cfg.Observe)
	}
	return h, nil
}

// withCORS lets browsers call Connect, gRPC-Web and REST from any origin.
// Keys travel in the Authorization header, never in cookies.
func withCORS(h http.Handler) http.Handler {
	return cors.New(cors.Options{
		AllowOriginFunc: func(string) bool { return true },
		AllowedMethods:  connectcors.AllowedMethods(),
		AllowedHeaders:  append(connectcors.AllowedHeaders(), "Authorization"),
		ExposedHeaders:  append(connectcors.ExposedHeaders(), "Retry-After"),
		MaxAge:          7200,
	}).Handler(h)
}

// gateway builds the REST mux. It calls the services' connect handlers
// (rpcs) in this process, so REST goes through exactly the handlers and
// interceptors that gRPC does; streaming calls dial this same server over
// gRPC, on its in-process listener (no TLS, no client certificate).
func (s *Server) gateway(ctx context.Context, rpcs http.Handler) (http.Handler, error) {
	conn, err := s.Self()
	if err != nil {
		return nil, err
	}
	forward := map[string]bool{}
	for _, h := range s.cfg.ForwardHeaders {
		forward[strings.ToLower(h)] = true
	}
	s.restError = func(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
		err = tooLarge(r, err)
		if st, ok := status.FromError(err); ok {
			for _, d := range st.Details() {
				if ri, ok := d.(*errdetails.RetryInfo); ok {
					secs := int64((ri.GetRetryDelay().AsDuration() + time.Second - 1) / time.Second)
					w.Header().Set("Retry-After", fmt.Sprint(max(secs, 1)))
				}
			}
		}
		runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, err)
	}
	mux := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, restMarshaler),
		runtime.WithIncomingHeaderMatcher(func(key string) (string, bool) {
			if forward[strings.ToLower(key)] {
				return key, true
			}
			return runtime.DefaultHeaderMatcher(key)
		}),
		runtime.WithErrorHandler(s.restError),
		runtime.WithRoutingErrorHandler(s.routingError),
	)
	s.restMux = mux
	for _, svc := range s.services {
		if svc.REST == nil {
			continue
		}
		if err := svc.REST(ctx, mux, &inproc{handler: rpcs, stream: conn}); err != nil {
			return nil, fmt.Errorf("server: register REST for %s: %w", svc.Name, err)
		}
	}
	return mux, nil
}

// Self returns a gRPC connection to the server's own handlers over its
// in-process listener (h2c, whatever the public listener speaks, and no
// client certificate): its calls go through every interceptor, as a
// client's do, from the loopback address. It carries calls while Serve
// runs (a call made before waits for it) and is closed when Serve returns.
func (s *Server) Self() (grpc.ClientConnInterface, error) {
	s.selfOnce.Do(func() {
		s.self = newPipeListener()
		opts := []grpc.DialOption{
			grpc.WithContextDialer(s.self.dial),
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(int(s.cfg.MaxBodyBytes))),
		}
		if s.cfg.Propagator != nil {
			opts = append(opts, propagating(s.cfg.Propagator)...)
		}
		s.conn, s.connErr = grpc.NewClient("passthrough:///sextant-self", opts...)
		if s.connErr != nil {
			s.connErr = fmt.Errorf("server: dial self: %w", s.connErr)
		}
	})
	return s.conn, s.connErr
}

// beaconKey lets browsers send hits with navigator.sendBeacon, which cannot
// set headers: POST /v1/collect takes a write key (and only a write key:
// keys in URLs end up in logs) from the "key" query parameter. Write keys
// are public by design, like GA's measurement id; the origin allow-list and
// the rate limit protect collect.
func beaconKey(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/collect" && r.Header.Get("Authorization") == "" {
			if key := r.URL.Query().Get("key"); strings.HasPrefix(key, "sxw_") {
				r.Header.Set("Authorization", "Bearer "+key)
			}
		}
		h.ServeHTTP(w, r)
	})
}
