// Package gateway is the API gateway and load balancer: one public address
// for REST, Connect, gRPC-Web and gRPC that authenticates, rate-limits and
// forwards to the collect, insights and projection copies over gRPC, with
// client-side round-robin balancing, health checking and retries.
//
// A collect batch may be retried on another copy when one dies: the gateway
// gives every event without a client-set id its id before forwarding, and
// projections drop duplicates by event id, so a retry never double counts.
package gateway

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"connectrpc.com/connect"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/health" // client-side health checking
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	collectv1 "github.com/sextant-analytics/sextant/gen/sextant/collect/v1"
	"github.com/sextant-analytics/sextant/gen/sextant/collect/v1/collectv1connect"
	insightsv1 "github.com/sextant-analytics/sextant/gen/sextant/insights/v1"
	"github.com/sextant-analytics/sextant/gen/sextant/insights/v1/insightsv1connect"
	projectionv1 "github.com/sextant-analytics/sextant/gen/sextant/projection/v1"
	"github.com/sextant-analytics/sextant/gen/sextant/projection/v1/projectionv1connect"
	"github.com/sextant-analytics/sextant/pkg/apierror"
	"github.com/sextant-analytics/sextant/pkg/auth"
	"github.com/sextant-analytics/sextant/pkg/clientinfo"
	"github.com/sextant-analytics/sextant/pkg/configcheck"
	"github.com/sextant-analytics/sextant/pkg/metrics"
	"github.com/sextant-analytics/sextant/pkg/property"
	"github.com/sextant-analytics/sextant/pkg/ratelimit"
)

// Config configures the gateway.
type Config struct {
	// Backend addresses (host:port) of each service's copies.
	Collect, Insights, Projection []string
	// Rate and Burst bound each property's events per second.
	Rate  float64
	Burst int
	// IPRate and IPBurst bound each client address's requests per second
	// (LimitIPs; default DefaultIPRate and DefaultIPBurst).
	IPRate  float64
	IPBurst int
	// Client is how the visitor's address and country are learned.
	Client clientinfo.Policy
	// MaxInFlight bounds the batches of one stream forwarded at once.
	MaxInFlight  int
	MaxBodyBytes int
	// Assertions, when set, signs the principal of every forwarded call
	// (auth.HeaderPrincipal), so that the backend need not look the key up
	// again.
	Assertions *auth.Assertions
	// TLS, when set, is how the backends are dialed: HTTP/2 over TLS,
	// verifying each backend's certificate for its host (and presenting
	// a client certificate when the config has one, for backends that
	// require it). Nil dials them in cleartext (h2c).
	TLS *tls.Config
	// Propagator and Tracer, when Propagator is set (tracing on), trace
	// every forwarded call with a client span whose context the call
	// carries (W3C traceparent), so that the backend's span is its child.
	Propagator propagation.TextMapPropagator
	Tracer     trace.TracerProvider
	Logger     *slog.Logger
	Metrics    *metrics.Metrics
}

// withDefaults fills the zero fields (and negative ones, which Validate
// reports) with their defaults.
func (c Config) withDefaults() Config {
	if c.Rate <= 0 {
		c.Rate = DefaultRate
	}
	if c.Burst <= 0 {
		c.Burst = DefaultBurst
	}
	if c.IPRate <= 0 {
		c.IPRate = DefaultIPRate
	}
	if c.IPBurst <= 0 {
		c.IPBurst = max(DefaultIPBurst, int(c.IPRate))
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Metrics == nil {
		c.Metrics = metrics.New()
	}
	return c
}

// Validate reports what no default fixes: negative rates and sizes. New
// calls it.
func (c Config) Validate() error {
	e := configcheck.New("gateway")
	configcheck.NotNegative(e, "Rate", c.Rate)
	configcheck.NotNegative(e, "Burst", c.Burst)
	configcheck.NotNegative(e, "IPRate", c.IPRate)
	configcheck.NotNegative(e, "IPBurst", c.IPBurst)
	configcheck.NotNegative(e, "MaxInFlight", c.MaxInFlight)
	configcheck.NotNegative(e, "MaxBodyBytes", c.MaxBodyBytes)
	return e.Err()
}

// Defaults of Config (and DefaultIPRate, DefaultIPBurst).
const (
	DefaultRate         = 50_000
	DefaultBurst        = 100_000
	DefaultMaxInFlight  = 16
	DefaultMaxBodyBytes = 1 << 20
)

// Gateway forwards the three APIs to their backends.
type Gateway struct {
	cfg        Config
	collect    *grpc.ClientConn // collect's: batches are forwarded as bytes (raw.go)
	insights   insightsv1.InsightsServiceClient
	projection projectionv1.ProjectionServiceClient
	conns      []*grpc.ClientConn
	byService  map[string]*grpc.ClientConn
	limiter    *ratelimit.Limiter
	ipLimiter  *ratelimit.Limiter
}

var (
	_ insightsv1connect.InsightsServiceHandler     = (*Gateway)(nil)
	_ projectionv1connect.ProjectionServiceHandler = (*Gateway)(nil)
)

// serviceConfig balances round robin over healthy backends and retries
// calls that failed with UNAVAILABLE (a backend died or is draining) on
// another one.
func serviceConfig(service string) string {
	return fmt.Sprintf(`{
  "loadBalancingConfig": [{"round_robin": {}}],
  "healthCheckConfig": {"serviceName": %q},
  "methodConfig": [{
    "name": [{"service": %q}],
    "waitForReady": false,
    "retryPolicy": {
      "maxAttempts": 5,
      "initialBackoff": "0.02s",
      "maxBackoff": "0.5s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
}`, service, service)
}

// dial connects to a service's copies: a list of host:port, or one gRPC
// target URI such as dns:///collect-headless:8080, whose every address is
// balanced over (a Kubernetes headless Service resolves to its pods).
//
// Over TLS, a backend's certificate must name its host: the host of its
// host:port, or of the target URI.
func dial(targets []string, service string, maxBytes int, tc *tls.Config, traced ...grpc.DialOption) (*grpc.ClientConn, error) {
	if len(targets) == 0 {
		return nil, fmt.Errorf("gateway: no backends for %s", service)
	}
	target := targets[0]
	creds := insecure.NewCredentials()
	if tc != nil {
		creds = credentials.NewTLS(tc)
	}
	opts := traced
	if len(targets) > 1 || !strings.Contains(target, ":///") {
		r := manual.NewBuilderWithScheme("sextant")
		addrs := make([]resolver.Address, len(targets))
		for i, t := range targets {
			addrs[i] = resolver.Address{Addr: t}
			// The name TLS verifies: the backend's, not the target's
			// (sextant:///service).
			if host, _, err := net.SplitHostPort(t); err == nil {
				addrs[i].ServerName = host
			}
		}
		r.InitialState(resolver.State{Addresses: addrs})
		target = "sextant:///" + service
		opts = append(opts, grpc.WithResolvers(r))
	}
	return grpc.NewClient(target, append(opts,
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultServiceConfig(serviceConfig(service)),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(maxBytes), grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxRetryRPCBufferSize(2*maxBytes)))...)
}

// traced is the dial option that traces forwarded calls, none when
// tracing is off.
func (c Config) traced() []grpc.DialOption {
	if c.Propagator == nil {
		return nil
	}
	opts := []otelgrpc.Option{otelgrpc.WithPropagators(c.Propagator)}
	if c.Tracer != nil {
		opts = append(opts, otelgrpc.WithTracerProvider(c.Tracer))
	}
	return []grpc.DialOption{grpc.WithStatsHandler(otelgrpc.NewClientHandler(opts...))}
}

// New dials the backends (lazily: connections are made on first use).
func New(cfg Config) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	g := &Gateway{cfg: cfg, byService: map[string]*grpc.ClientConn{}, limiter: ratelimit.New(cfg.Rate, cfg.Burst), ipLimiter: ratelimit.New(cfg.IPRate, cfg.IPBurst)}
	for _, b := range []struct {
		targets []string
		service string
		set     func(*grpc.ClientConn)
	}{
		{cfg.Collect, collectv1connect.CollectServiceName, func(c *grpc.ClientConn) {
			g.collect = c
		}},
		{cfg.Insights, insightsv1connect.InsightsServiceName, func(c *grpc.ClientConn) { g.insights = insightsv1.NewInsightsServiceClient(c) }},
		{cfg.Projection, projectionv1connect.ProjectionServiceName, func(c *grpc.ClientConn) {
			g.projection = projectionv1.NewProjectionServiceClient(c)
		}},
	} {
		if len(b.targets) == 0 {
			continue
		}
		conn, err := dial(b.targets, b.service, cfg.MaxBodyBytes, cfg.TLS, cfg.traced()...)
		if err != nil {
			g.Close()
			return nil, err
		}
		g.conns = append(g.conns, conn)
		g.byService[b.service] = conn
		b.set(conn)
	}
	return g, nil
}

// Close closes the backend connections.
func (g *Gateway) Close() error {
	var errs []error
	for _, c := range g.conns {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// Serves reports whether the gateway forwards service (it has backends).
func (g *Gateway) Serves(service string) bool {
	switch service {
	case collectv1connect.CollectServiceName:
		return g.collect != nil
	case insightsv1connect.InsightsServiceName:
		return g.insights != nil
	case projectionv1connect.ProjectionServiceName:
		return g.projection != nil
	}
	return false
}

// Probe reports whether at least one copy of service is reachable and
// serving: a gRPC health check through the balancer, which sends it to a
// copy whose connection is up (and fails at once when none is). It asks
// for liveness, not readiness: a copy whose own dependency is down still
// answers its calls (503, fast), and the gateway fronts other services
// too, so one service's dependency outage must not take the gateway out
// of service.
func (g *Gateway) Probe(ctx context.Context, service string) error {
	conn := g.byService[service]
	if conn == nil {
		return fmt.Errorf("gateway: no backends for %s", service)
	}
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return fmt.Errorf("no copy of %s answers: %w", service, err)
	}
	if resp.Status != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("no copy of %s serves (%s)", service, resp.Status)
	}
	return nil
}

// outgoing carries the caller's key and what is known of the client to the
// backend, which trusts the gateway as a proxy.
func (g *Gateway) outgoing(ctx context.Context, h clientinfo.Headers, peer string) context.Context {
	c := g.cfg.Client.Of(h, peer)
	md := metadata.Pairs("authorization", h.Get("Authorization"))
	if pr, ok := auth.FromContext(ctx); ok && g.cfg.Assertions != nil {
		if v := g.cfg.Assertions.Sign(pr, time.Now()); v != "" {
			md.Set(strings.ToLower(auth.HeaderPrincipal), v)
		}
	}
	if v := h.Get(clientinfo.HeaderFreshWatermarks); v != "" {
		md.Set(strings.ToLower(clientinfo.HeaderFreshWatermarks), v)
	}
	if c.UserAgent != "" {
		md.Set(strings.ToLower(clientinfo.HeaderForwardedUA), c.UserAgent)
	}
	if c.IP.IsValid() {
		md.Set(strings.ToLower(clientinfo.HeaderForwardedFor), c.IP.String())
	}
	if c.Origin != "" {
		md.Set(strings.ToLower(clientinfo.HeaderForwardedOrigin), c.Origin)
	}
	if c.Country != "" && g.cfg.Client.CountryHeader != "" {
		md.Set(strings.ToLower(g.cfg.Client.CountryHeader), c.Country)
	}
	return metadata.NewOutgoingContext(ctx, md)
}

func (g *Gateway) count(service string, err error) {
	g.cfg.Metrics.UpstreamRequests.WithLabelValues(service, status.Code(err).String()).Inc()
}

// take takes n events from the property's rate limit.
func (g *Gateway) take(pid string, n int) error {
	if n == 0 {
		return nil
	}
	if wait, ok := g.limiter.Take(pid, n, time.Now()); !ok {
		e := apierror.New(apierror.ResourceExhausted, "rate limit of property %s exceeded; retry after %s", pid, wait.Round(time.Millisecond))
		e.RetryAfter = wait
		return e
	}
	return nil
}

func newEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// retryCollect calls collect until it answers, at most collectAttempts
// times. gRPC retries a call that never reached a backend; a batch whose
// backend died while appending it is retried here, on another copy. Both
// are safe: every event has its id, and projections drop duplicates by id.
func (g *Gateway) retryCollect(ctx context.Context, call func() (*collectv1.CollectResponse, error)) (*collectv1.CollectResponse, error) {
	backoff := 25 * time.Millisecond
	for attempt := 1; ; attempt++ {
		resp, err := call()
		g.count(collectv1connect.CollectServiceName, err)
		if err == nil {
			return resp, nil
		}
		if status.Code(err) != codes.Unavailable || answeredUnavailable(err) || attempt == collectAttempts || ctx.Err() != nil {
			return nil, fromGRPC(err)
		}
		g.cfg.Logger.WarnContext(ctx, "collect backend unavailable; retrying the batch", "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

// answeredUnavailable reports whether a backend itself answered
// UNAVAILABLE with a retry delay (its event log is down or full): the
// other copies share the outage, so the batch is not tried on them but
// answered at once with the delay. A copy that died or is draining fails
// without one, and the batch goes to another.
func answeredUnavailable(err error) bool {
	st, ok := status.FromError(err)
	if !ok {
		return false
	}
	for _, d := range st.Details() {
		if _, ok := d.(*errdetails.RetryInfo); ok {
			return true
		}
	}
	return false
}

// collectAttempts bounds the gateway's own retries of a batch.
const collectAttempts = 5

// fromGRPC turns a backend's gRPC status into a Connect error with the
// same code, message and details.
func fromGRPC(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	ce := connect.NewError(connect.Code(st.Code()), errors.New(st.Message()))
	for _, d := range st.Details() {
		if m, ok := d.(proto.Message); ok {
			if detail, derr := connect.NewErrorDetail(m); derr == nil {
				ce.AddDetail(detail)
			}
		}
	}
	return ce
}

// RunReport forwards a report.
func (g *Gateway) RunReport(ctx context.Context, req *connect.Request[insightsv1.RunReportRequest]) (*connect.Response[insightsv1.RunReportResponse], error) {
	if _, err := auth.Authorize(ctx, req.Msg.PropertyId, property.Read); err != nil {
		return nil, err
	}
	resp, err := g.insights.RunReport(g.outgoing(ctx, req.Header(), req.Peer().Addr), req.Msg)
	g.count(insightsv1connect.InsightsServiceName, err)
	if err != nil {
		return nil, fromGRPC(err)
	}
	return connect.NewResponse(resp), nil
}

// RunRealtimeReport forwards a realtime report.
func (g *Gateway) RunRealtimeReport(ctx context.Context, req *connect.Request[insightsv1.RunRealtimeReportRequest]) (*connect.Response[insightsv1.RunRealtimeReportResponse], error) {
	if _, err := auth.Authorize(ctx, req.Msg.PropertyId, property.Read); err != nil {
		return nil, err
	}
	resp, err := g.insights.RunRealtimeReport(g.outgoing(ctx, req.Header(), req.Peer().Addr), req.Msg)
	g.count(insightsv1connect.InsightsServiceName, err)
	if err != nil {
		return nil, fromGRPC(err)
	}
	return connect.NewResponse(resp), nil
}

// GetMetadata forwards to an insights copy.
func (g *Gateway) GetMetadata(ctx context.Context, req *connect.Request[insightsv1.GetMetadataRequest]) (*connect.Response[insightsv1.GetMetadataResponse], error) {
	if _, err := auth.Authorize(ctx, req.Msg.PropertyId, property.Read); err != nil {
		return nil, err
	}
	resp, err := g.insights.GetMetadata(g.outgoing(ctx, req.Header(), req.Peer().Addr), req.Msg)
	g.count(insightsv1connect.InsightsServiceName, err)
	if err != nil {
		return nil, fromGRPC(err)
	}
	return connect.NewResponse(resp), nil
}

// CheckCompatibility forwards to an insights copy.
func (g *Gateway) CheckCompatibility(ctx context.Context, req *connect.Request[insightsv1.CheckCompatibilityRequest]) (*connect.Response[insightsv1.CheckCompatibilityResponse], error) {
	if _, err := auth.Authorize(ctx, req.Msg.PropertyId, property.Read); err != nil {
		return nil, err
	}
	resp, err := g.insights.CheckCompatibility(g.outgoing(ctx, req.Header(), req.Peer().Addr), req.Msg)
	g.count(insightsv1connect.InsightsServiceName, err)
	if err != nil {
		return nil, fromGRPC(err)
	}
	return connect.NewResponse(resp), nil
}

// ListProjections forwards to a projection copy.
func (g *Gateway) ListProjections(ctx context.Context, req *connect.Request[projectionv1.ListProjectionsRequest]) (*connect.Response[projectionv1.ListProjectionsResponse], error) {
	return unaryProjection(g, ctx, req, g.projection.ListProjections)
}

// unaryProjection forwards one ProjectionService call.
func unaryProjection[Req, Resp any](g *Gateway, ctx context.Context, req *connect.Request[Req],
	call func(context.Context, *Req, ...grpc.CallOption) (*Resp, error)) (*connect.Response[Resp], error) {
	resp, err := call(g.outgoing(ctx, req.Header(), req.Peer().Addr), req.Msg)
	g.count(projectionv1connect.ProjectionServiceName, err)
	if err != nil {
		return nil, fromGRPC(err)
	}
	return connect.NewResponse(resp), nil
}

// StartReplay forwards to a projection copy.
func (g *Gateway) StartReplay(ctx context.Context, req *connect.Request[projectionv1.StartReplayRequest]) (*connect.Response[projectionv1.StartReplayResponse], error) {
	return unaryProjection(g, ctx, req, g.projection.StartReplay)
}

// GetReplay forwards to a projection copy.
func (g *Gateway) GetReplay(ctx context.Context, req *connect.Request[projectionv1.GetReplayRequest]) (*connect.Response[projectionv1.GetReplayResponse], error) {
	return unaryProjection(g, ctx, req, g.projection.GetReplay)
}

// Activate forwards to a projection copy.
func (g *Gateway) Activate(ctx context.Context, req *connect.Request[projectionv1.ActivateRequest]) (*connect.Response[projectionv1.ActivateResponse], error) {
	return unaryProjection(g, ctx, req, g.projection.Activate)
}

// Rollback forwards to a projection copy.
func (g *Gateway) Rollback(ctx context.Context, req *connect.Request[projectionv1.RollbackRequest]) (*connect.Response[projectionv1.RollbackResponse], error) {
	return unaryProjection(g, ctx, req, g.projection.Rollback)
}

// DeleteVersion forwards to a projection copy.
func (g *Gateway) DeleteVersion(ctx context.Context, req *connect.Request[projectionv1.DeleteVersionRequest]) (*connect.Response[projectionv1.DeleteVersionResponse], error) {
	return unaryProjection(g, ctx, req, g.projection.DeleteVersion)
}

// WatchReplay forwards the stream of a projection copy.
func (g *Gateway) WatchReplay(ctx context.Context, req *connect.Request[projectionv1.WatchReplayRequest], stream *connect.ServerStream[projectionv1.WatchReplayResponse]) error {
	up, err := g.projection.WatchReplay(g.outgoing(ctx, req.Header(), req.Peer().Addr), req.Msg)
	if err != nil {
		g.count(projectionv1connect.ProjectionServiceName, err)
		return fromGRPC(err)
	}
	for {
		msg, err := up.Recv()
		if errors.Is(err, io.EOF) {
			g.count(projectionv1connect.ProjectionServiceName, nil)
			return nil
		}
		if err != nil {
			g.count(projectionv1connect.ProjectionServiceName, err)
			return fromGRPC(err)
		}
		if err := stream.Send(msg); err != nil {
			return err
		}
	}
}
