package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"

	"github.com/sextant-analytics/sextant"
	adminv1 "github.com/sextant-analytics/sextant/gen/sextant/admin/v1"
	"github.com/sextant-analytics/sextant/gen/sextant/admin/v1/adminv1connect"
	collectv1 "github.com/sextant-analytics/sextant/gen/sextant/collect/v1"
	"github.com/sextant-analytics/sextant/gen/sextant/collect/v1/collectv1connect"
	insightsv1 "github.com/sextant-analytics/sextant/gen/sextant/insights/v1"
	"github.com/sextant-analytics/sextant/gen/sextant/insights/v1/insightsv1connect"
	projectionv1 "github.com/sextant-analytics/sextant/gen/sextant/projection/v1"
	"github.com/sextant-analytics/sextant/gen/sextant/projection/v1/projectionv1connect"
	"github.com/sextant-analytics/sextant/pkg/auth"
	"github.com/sextant-analytics/sextant/pkg/cache"
	"github.com/sextant-analytics/sextant/pkg/cliconfig"
	"github.com/sextant-analytics/sextant/pkg/clientinfo"
	"github.com/sextant-analytics/sextant/pkg/collectwire"
	"github.com/sextant-analytics/sextant/pkg/demo"
	"github.com/sextant-analytics/sextant/pkg/eventlog"
	"github.com/sextant-analytics/sextant/pkg/ga4data"
	"github.com/sextant-analytics/sextant/pkg/gtag"
	"github.com/sextant-analytics/sextant/pkg/metadata"
	"github.com/sextant-analytics/sextant/pkg/metrics"
	"github.com/sextant-analytics/sextant/pkg/mp"
	"github.com/sextant-analytics/sextant/pkg/privacy"
	"github.com/sextant-analytics/sextant/pkg/property"
	"github.com/sextant-analytics/sextant/pkg/rpcerror"
	"github.com/sextant-analytics/sextant/pkg/seal"
	"github.com/sextant-analytics/sextant/pkg/server"
	"github.com/sextant-analytics/sextant/pkg/tlsfiles"
	"github.com/sextant-analytics/sextant/pkg/tracing"
	"github.com/sextant-analytics/sextant/pkg/versions"
	"github.com/sextant-analytics/sextant/services/admin"
	"github.com/sextant-analytics/sextant/services/collect"
	"github.com/sextant-analytics/sextant/services/gateway"
	"github.com/sextant-analytics/sextant/services/insights"
	"github.com/sextant-analytics/sextant/services/projection"
	"github.com/sextant-analytics/sextant/web"
)

var (
	allServices     = []string{"collect", "projection", "insights", "gateway"}
	defaultServices = []string{"collect", "projection", "insights"}
)

type serveConfig struct {
	Addr string
	// TLS is the listener's certificate and key, and the CA that client
	// certificates must be signed by (--tls-client-ca).
	TLS tlsfiles.Files
	// BackendTLS is how the gateway dials its backends.
	BackendTLS         tlsfiles.Files
	Engines            engines
	Services           []string
	CollectRate        float64
	CollectBurst       int
	IPRate             float64
	IPBurst            int
	MaxBatchEvents     int
	MaxBodyBytes       int
	CollectTimeout     time.Duration
	MaxAppends         int
	FlushInterval      time.Duration
	RebuildDelay       time.Duration
	WatermarkRefresh   time.Duration
	CountryHeader      string
	GeoIP              geoipConfig
	TrustedProxies     []netip.Prefix
	CollectBackends    []string
	InsightsBackends   []string
	ProjectionBackends []string
	// Demo is what a store without properties gets (--demo); DemoTraffic
	// the traffic of --demo.
	Demo         demoMode
	DemoTraffic  demo.Config
	SaveContext  string // a context to save the server and demo keys as
	StartVersion string
	Pprof        bool
	Grace        time.Duration
	Timeouts     server.Timeouts
	LogLevel     string
	LogFormat    string
	// OTLPEndpoint, when set, exports traces there (--otlp-endpoint);
	// TraceSampleRatio is the share of new traces sampled.
	OTLPEndpoint     string
	TraceSampleRatio float64
}

func (c serveConfig) has(svc string) bool { return slices.Contains(c.Services, svc) }

// Validate checks the configuration as a whole.
func (c serveConfig) Validate() error {
	var errs []error
	if len(c.Services) == 0 {
		errs = append(errs, errors.New("--services: choose at least one of "+strings.Join(allServices, ",")))
	}
	for _, s := range c.Services {
		if !slices.Contains(allServices, s) {
			errs = append(errs, fmt.Errorf("--services: unknown service %q (known: %s)", s, strings.Join(allServices, ",")))
		}
	}
	if err := c.TLS.Validate("--tls"); err != nil {
		errs = append(errs, err)
	}
	if c.TLS.CA != "" && c.TLS.Cert == "" {
		errs = append(errs, errors.New("--tls-client-ca needs --tls-cert and --tls-key (client certificates are asked for over TLS)"))
	}
	if err := c.BackendTLS.Validate("--backend-tls"); err != nil {
		errs = append(errs, err)
	}
	if c.BackendTLS.Client() && !c.has("gateway") {
		errs = append(errs, errors.New("--backend-tls-ca and --backend-tls-cert are the gateway's (--services=gateway)"))
	}
	if err := c.Engines.validate(); err != nil {
		errs = append(errs, err)
	}
	if c.has("gateway") {
		if len(c.Services) > 1 {
			errs = append(errs, errors.New("--services: the gateway runs alone (it serves the same APIs as the services it forwards to)"))
		}
		if len(c.CollectBackends)+len(c.InsightsBackends)+len(c.ProjectionBackends) == 0 {
			errs = append(errs, errors.New("the gateway needs --collect-backends, --insights-backends and/or --projection-backends"))
		}
	}
	if len(c.Engines.KafkaBrokers) == 0 && c.has("collect") != c.has("projection") {
		errs = append(errs, errors.New("--services: with the embedded event log, collect and projection run in one process; give --kafka-brokers to run them apart"))
	}
	if c.Engines.Partitions < 0 || c.Engines.Partitions > 1024 {
		errs = append(errs, errors.New("--partitions must be between 1 and 1024 (0 keeps the stored count)"))
	}
	if c.Engines.MinFreeDiskMB < 0 {
		errs = append(errs, errors.New("--min-free-disk-mb must be 0 (off) or more"))
	}
	if c.MaxBatchEvents < 1 || c.MaxBatchEvents > 10_000 {
		errs = append(errs, errors.New("--max-batch-events must be between 1 and 10000"))
	}
	if c.MaxBodyBytes < 1024 {
		errs = append(errs, errors.New("--max-body-bytes must be at least 1024"))
	}
	if c.CollectRate <= 0 {
		errs = append(errs, errors.New("--collect-rate must be positive"))
	}
	if c.CollectBurst < c.MaxBatchEvents {
		errs = append(errs, fmt.Errorf("--collect-burst (%d) must be at least --max-batch-events (%d): a full batch must fit in a property's token bucket", c.CollectBurst, c.MaxBatchEvents))
	}
	if c.IPRate <= 0 || c.IPBurst < 1 {
		errs = append(errs, errors.New("--ip-rate must be positive and --ip-burst at least 1"))
	}
	if c.Timeouts.ReadHeader <= 0 || c.Timeouts.Body <= 0 || c.Timeouts.Idle <= 0 {
		errs = append(errs, errors.New("--read-header-timeout, --body-timeout and --idle-timeout must be positive"))
	}
	if c.CollectTimeout <= 0 || c.CollectTimeout > time.Minute {
		errs = append(errs, errors.New("--collect-timeout must be in (0, 1m]"))
	}
	if c.MaxAppends < 1 {
		errs = append(errs, errors.New("--collect-max-appends must be at least 1"))
	}
	if c.RebuildDelay < 0 {
		errs = append(errs, fmt.Errorf("--deletion-rebuild-delay %v is negative", c.RebuildDelay))
	}
	if c.FlushInterval <= 0 || c.FlushInterval > time.Minute {
		errs = append(errs, errors.New("--flush-interval must be in (0, 1m]"))
	}
	if err := c.GeoIP.validate(); err != nil {
		errs = append(errs, err)
	}
	if c.SaveContext != "" {
		if err := cliconfig.ValidName(c.SaveContext); err != nil {
			errs = append(errs, fmt.Errorf("--save-context: %w", err))
		}
	}
	if c.Demo == demoTraffic {
		if err := c.DemoTraffic.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("--demo-days: %w", err))
		}
		if c.DemoTraffic.Days < 1 {
			errs = append(errs, errors.New("--demo-days must be at least 1"))
		}
		if !c.has("collect") {
			errs = append(errs, errors.New("--demo sends its traffic through this process's collect: run it here (--services)"))
		}
	}
	if _, ok := projection.FindLogic(projection.Logics(), "traffic", c.StartVersion); c.StartVersion != "" && !ok {
		errs = append(errs, fmt.Errorf("--start-version %s: no such version of the traffic projection", c.StartVersion))
	}
	if c.TraceSampleRatio <= 0 || c.TraceSampleRatio > 1 {
		errs = append(errs, fmt.Errorf("--trace-sample-ratio %v: not within (0, 1]", c.TraceSampleRatio))
	}
	errs = append(errs, c.validateServices())
	return errors.Join(errs...)
}

func parseServe(args []string, stderr io.Writer) (serveConfig, error) {
	var c serveConfig
	f := newFlags("serve", stderr)
	f.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "address serving gRPC, gRPC-Web, Connect and REST")
	f.StringVar(&c.TLS.Cert, "tls-cert", "", "PEM file of the certificate (chain) served: the address serves TLS only, HTTP/2 and HTTP/1.1 by ALPN; read again when it changes")
	f.StringVar(&c.TLS.Key, "tls-key", "", "PEM file of the key of --tls-cert")
	f.StringVar(&c.TLS.CA, "tls-client-ca", "", "PEM file of a CA: clients must present a certificate it signed (mutual TLS, e.g. services that only the gateway calls)")
	f.StringVar(&c.BackendTLS.CA, "backend-tls-ca", "", "gateway: PEM file of the CA that signs the backends' certificates: dials them over TLS (the system's roots when only --backend-tls-cert is given)")
	f.StringVar(&c.BackendTLS.Cert, "backend-tls-cert", "", "gateway: PEM file of the client certificate presented to the backends (for their --tls-client-ca), with --backend-tls-key; read again when it changes")
	f.StringVar(&c.BackendTLS.Key, "backend-tls-key", "", "gateway: PEM file of the key of --backend-tls-cert")
	c.Engines.flags(f)
	services := f.String("services", strings.Join(defaultServices, ","), "services this process runs: "+strings.Join(allServices, ", "))
	rate := f.Float("collect-rate", 50_000, "events per second accepted per property (token bucket)")
	f.IntVar(&c.CollectBurst, "collect-burst", 100_000, "token bucket burst, in events")
	ipRate := f.Float("ip-rate", gateway.DefaultIPRate, "gateway: requests per second accepted per client address (token bucket), besides the per-property rate")
	f.IntVar(&c.IPBurst, "ip-burst", gateway.DefaultIPBurst, "gateway: token bucket burst per client address, in requests")
	f.IntVar(&c.MaxBatchEvents, "max-batch-events", 500, "most events in one batch")
	f.BytesVar(&c.MaxBodyBytes, "max-body-bytes", 1<<20, "largest request body, e.g. 1MiB")
	f.DurationVar(&c.CollectTimeout, "collect-timeout", collect.DefaultAppendTimeout, "collect: how long a batch waits for the event log's acknowledgement before it is answered 503 (UNAVAILABLE) with Retry-After")
	f.IntVar(&c.MaxAppends, "collect-max-appends", collect.DefaultMaxAppends, "collect: most batches waiting for the event log at once; more are answered 503 (UNAVAILABLE) with Retry-After at once")
	flush := f.Duration("flush-interval", 100*time.Millisecond, "how long projected events wait before they are committed and visible")
	f.DurationVar(&c.RebuildDelay, "deletion-rebuild-delay", projection.DefaultRebuildDelay, "projection: how long after a user deletion the read models that count the user start being rebuilt without them (deletions within it share one rebuild)")
	wmRefresh := f.AutoDuration("watermark-refresh", "insights and gateway: keep each property's data watermarks and the active projection version in memory, refreshed this often, instead of reading them for every report (0: every report reads them; auto: 100ms with --cql-hosts, else 0)")
	f.StringVar(&c.CountryHeader, "country-header", "", "header carrying the visitor's country from a trusted proxy, e.g. CF-IPCountry")
	c.GeoIP.flags(f, true)
	proxies := f.String("trusted-proxies", "127.0.0.0/8,::1/128", "CIDRs whose X-Forwarded-For is trusted")
	f.ListVar(&c.CollectBackends, "collect-backends", "gateway: collect copies (host:port,… or one dns:/// target)")
	f.ListVar(&c.InsightsBackends, "insights-backends", "gateway: insights copies")
	f.ListVar(&c.ProjectionBackends, "projection-backends", "gateway: projection copies")
	if v, ok := os.LookupEnv(envName("demo")); ok {
		if err := c.Demo.Set(v); err != nil {
			return c, fmt.Errorf("environment %s=%q (--demo): %w", envName("demo"), v, err)
		}
	}
	f.Var(&c.Demo, "demo", help("demo", "on a store without properties: create a demo property and an admin key and print their keys (without the flag); with it, fill the property with --demo-days of generated traffic too, through collect (a new store then starts with --start-version v6 unless given); --demo=false: neither"))
	c.DemoTraffic = demo.Defaults()
	f.IntVar(&c.DemoTraffic.Days, "demo-days", c.DemoTraffic.Days, fmt.Sprintf("days of traffic --demo fills the demo property with, today's and the whole days before (1..%d)", demo.MaxDays))
	f.StringVar(&c.SaveContext, "save-context", "", "save a context of this name (see sextant context), made current, for the CLI to find this server: its URL and, on the first start, the demo property's keys")
	startVersion := f.String("start-version", "", "the traffic projection version a new store starts with, kept as its active version (e.g. v6, every GA4 dimension; v1 when empty); a store that has one keeps it")
	pprofOn := f.Bool("pprof", false, "serve Go profiles at /debug/pprof/ (for benchmarks; do not expose)")
	grace := f.Duration("shutdown-grace", 15*time.Second, "how long in-flight calls may finish on shutdown")
	defTimeouts := server.DefaultTimeouts()
	readHeader := f.Duration("read-header-timeout", defTimeouts.ReadHeader, "how long a client may take to send a request's headers")
	bodyTimeout := f.Duration("body-timeout", defTimeouts.Body, "how long a client may take to send a REST, Measurement Protocol or gtag request's body")
	idle := f.Duration("idle-timeout", defTimeouts.Idle, "how long a keep-alive connection may wait for its next request")
	f.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&c.LogFormat, "log-format", "text", "text or json")
	f.StringVar(&c.OTLPEndpoint, "otlp-endpoint", "", "OpenTelemetry collector's OTLP/HTTP base URL, e.g. http://localhost:4318: export traces there (empty: tracing off)")
	sampleRatio := f.Float("trace-sample-ratio", 1, "with --otlp-endpoint: share of new traces sampled, in (0, 1] (a request's own traceparent decides for its trace)")
	if err := f.parse(args); err != nil {
		return c, err
	}
	c.IPRate = *ipRate
	c.TraceSampleRatio = *sampleRatio
	c.CollectRate, c.FlushInterval, c.Grace, c.Pprof = *rate, *flush, *grace, *pprofOn
	c.StartVersion = *startVersion
	if c.Demo == demoTraffic {
		c.DemoTraffic.Rate = c.CollectRate
		if c.StartVersion == "" {
			c.StartVersion = "v6" // every report: cities, revenue, key events
		}
	}
	c.Timeouts = server.Timeouts{ReadHeader: *readHeader, Body: *bodyTimeout, Idle: *idle}
	c.WatermarkRefresh = *wmRefresh
	if c.WatermarkRefresh < 0 {
		c.WatermarkRefresh = 0
		if len(c.Engines.CQLHosts) > 0 {
			c.WatermarkRefresh = 100 * time.Millisecond
		}
	}
	c.Services = splitList(*services)
	for _, p := range splitList(*proxies) {
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			return c, fmt.Errorf("--trusted-proxies: %w", err)
		}
		c.TrustedProxies = append(c.TrustedProxies, pfx)
	}
	return c, c.Validate()
}

func newLogger(level, format string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is neither text nor json", format)
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseServe(args, stderr)
	if err != nil {
		return err
	}
	logger, err := newLogger(cfg.LogLevel, cfg.LogFormat, stderr)
	if err != nil {
		return err
	}
	slog.SetDefault(logger)
	cache.SetLogger(logger)
	tc := cfg.tracingConfig()
	tc.Logger = logger
	tr, err := tracing.New(ctx, tc)
	if err != nil {
		return err
	}
	// Last of all, once the server and the projectors stopped: the spans
	// not yet exported are sent.
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := tr.Shutdown(sctx); err != nil {
			logger.Warn("exporting the last spans failed", "err", err)
		}
	}()
	tracer := tr.Provider().Tracer("github.com/sextant-analytics/sextant")
	// The certificate is read first: a missing one fails before any store
	// is opened.
	serverTLS, err := cfg.TLS.ServerConfig(logger)
	if err != nil {
		return fmt.Errorf("--tls-cert: %w", err)
	}
	// Bind before anything is created or printed: an address in use
	// fails here, not after the demo property's keys were shown.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on --addr %s: %w", cfg.Addr, err)
	}
	served := false
	defer func() {
		if !served {
			ln.Close()
		}
	}()

	store, err := cfg.Engines.openViews(ctx, logger)
	if err != nil {
		return err
	}
	defer store.Close()
	keys, closeKeys, err := cfg.Engines.openKeys(store, logger)
	if err != nil {
		return err
	}
	defer closeKeys()
	deletions := privacy.NewLedger(store, keys)
	var log eventlog.Log
	if cfg.has("collect") || cfg.has("projection") {
		if log, err = cfg.Engines.openLog(ctx, logger); err != nil {
			return err
		}
		// Closing the log flushes the producer and leaves the consumer
		// group: after the server and the projector stopped.
		defer log.Close()
	}

	props := property.NewRegistry(store, property.Options{Logger: logger})
	if n, err := props.Upgrade(ctx); err != nil {
		return err
	} else if n > 0 {
		logger.Info("property registry upgraded to the sharded layout", "records", n)
	}
	// Every process follows the registry's changes: a key revoked anywhere
	// is refused here within a second.
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	go props.Watch(wctx, 0)
	// The gateway signs the principals of the calls it forwards and the
	// services take them without a second key lookup (auth.Assertions).
	assertions := auth.NewAssertions()
	assertions.Refresh = func() ([][]byte, error) {
		ctx, cancel := context.WithTimeout(wctx, 2*time.Second)
		defer cancel()
		return props.AssertionSecrets(ctx)
	}
	go assertions.Follow(wctx, props.AssertionSecrets, 30*time.Second, logger)
	vers := versions.NewRegistry(store, map[string]string{"traffic": "v1"})
	if err := projection.StartVersion(ctx, cfg.StartVersion, log, vers, logger); err != nil {
		return err
	}
	// The demo property, on a new store; its traffic goes through collect
	// once the server serves, with event times older than collect takes
	// from any other property.
	var fill *demo.Created
	var demoContext cliconfig.Context
	if cfg.Demo != demoOff && !cfg.has("gateway") {
		made, ok, err := demo.Ensure(ctx, props, cfg.Demo == demoTraffic)
		if err != nil {
			return err
		}
		if ok {
			printDemoKeys(stdout, made)
			demoContext = cliconfig.Context{PropertyID: made.Keys.PropertyID, WriteKey: made.Keys.WriteKey, ReadKey: made.Keys.ReadKey, AdminKey: made.AdminKey}
			if cfg.Demo == demoTraffic {
				fill = &made
			}
		} else if cfg.Demo == demoTraffic {
			logger.Warn("--demo: this store has properties already; demo traffic fills only the demo property a new store gets (start with an empty --data-dir)")
		}
	}
	if cfg.SaveContext != "" {
		if err := saveServeContext(cfg.SaveContext, ln.Addr(), serverTLS != nil, demoContext, stdout); err != nil {
			return err
		}
	}

	m := metrics.New()
	m.RegistryCache(props.CacheStats, props.CacheBytes)
	var (
		services   []server.Service
		supervisor *projection.Supervisor
	)
	var (
		// collect serves the CollectService: collect.Service's handlers,
		// or the gateway's, which forward batches as bytes.
		collectH    *collectwire.Handlers
		insightsH   insightsv1connect.InsightsServiceHandler
		projectionH projectionv1connect.ProjectionServiceHandler
	)
	client := clientinfo.Policy{TrustedProxies: cfg.TrustedProxies, CountryHeader: cfg.CountryHeader}
	var gw *gateway.Gateway
	if cfg.has("gateway") {
		backendTLS, err := cfg.BackendTLS.ClientConfig(logger)
		if err != nil {
			return fmt.Errorf("--backend-tls: %w", err)
		}
		gc := cfg.gatewayConfig()
		gc.Client, gc.Assertions, gc.TLS, gc.Logger, gc.Metrics = client, assertions, backendTLS, logger, m
		gc.Propagator, gc.Tracer = tr.Propagator(), tr.Provider()
		gw, err = gateway.New(gc)
		if err != nil {
			return err
		}
		defer gw.Close()
		if gw.Serves(collectv1connect.CollectServiceName) {
			h := gw.CollectHandlers()
			collectH = &h
		}
		if gw.Serves(insightsv1connect.InsightsServiceName) {
			insightsH = gw
			if len(cfg.Engines.CQLHosts) > 0 {
				// Cached answers are served here, without a hop to
				// insights: the gateway keeps the active version and the
				// properties' watermarks of the shared store in memory as
				// insights does, and forwards the rest. (A gateway without
				// the shared store has no watermarks to key answers by.)
				c, err := cfg.Engines.openCache(logger)
				if err != nil {
					return err
				}
				defer c.Close()
				ic := cfg.insightsConfig()
				ic.Logger, ic.Metrics, ic.Upstream = logger, m, gw
				if tr.On() {
					ic.Tracer = tracer
				}
				insightsH = insights.New(ic, store, props, vers, c)
			}
		}
		if gw.Serves(projectionv1connect.ProjectionServiceName) {
			projectionH = gw
		}
	}
	if cfg.has("collect") {
		// City and region come from an IP database, fetched in the
		// background on first start; countries only until it arrives.
		var locator collect.Locator
		geo, err := startGeoIP(wctx, cfg.GeoIP, cfg.Engines.DataDir, logger)
		if err != nil {
			return err
		}
		if geo != nil {
			defer geo.Close()
			locator = geo
		}
		cc := cfg.collectConfig()
		cc.Logger, cc.Metrics, cc.OriginAllowed, cc.Locator, cc.Properties = logger, m, props.OriginAllowed, locator, props
		cc.Sealer = seal.NewSealer(keys)
		cc.PastAllowances = demoAllowance(fill, cfg.DemoTraffic)
		cc.Propagator = tr.Propagator()
		svc := collect.New(cc, log)
		h := svc.Handlers()
		collectH = &h
	}
	if cfg.has("projection") {
		if limit, set := projection.SetMemoryLimit(); set {
			logger.Info("Go memory limit set for the projection (GOMEMLIMIT overrides it)", "bytes", limit)
		}
		dead, err := cfg.Engines.openDeadLetters(ctx, logger)
		if err != nil {
			return err
		}
		defer dead.Close()
		logics := projection.Logics()
		pc := cfg.projectionConfig()
		pc.DeadLetters, pc.Logger, pc.Metrics, pc.Keys = dead, logger, m, keys
		pc.Propagator, pc.Tracer = tr.Propagator(), tracer
		supervisor = projection.NewSupervisor(pc, logics, log, store, vers, time.Second)
		ps := projection.NewService(projection.ServiceConfig{Logger: logger}, logics, log, store, vers)
		projectionH = ps
		go ps.Rebuild(wctx, deletions, cfg.RebuildDelay, time.Second)
		go privacy.NewRetention(props, store, deletions, logger).Run(wctx, time.Hour)
	}
	if cfg.has("insights") {
		c, err := cfg.Engines.openCache(logger)
		if err != nil {
			return err
		}
		defer c.Close()
		ic := cfg.insightsConfig()
		ic.Logger, ic.Metrics = logger, m
		if tr.On() {
			ic.Tracer = tracer
		}
		insightsH = insights.New(ic, store, props, vers, c)
	}
	// Every process serves the AdminService: it needs only the registry.
	adminH := admin.New(props, deletions)
	services = append(services, server.Service{
		Name: adminv1connect.AdminServiceName,
		Mount: func(o ...connect.HandlerOption) (string, http.Handler) {
			return adminv1connect.NewAdminServiceHandler(adminH, o...)
		},
		REST: func(ctx context.Context, mux *runtime.ServeMux, cc grpc.ClientConnInterface) error {
			return adminv1.RegisterAdminServiceHandlerClient(ctx, mux, adminv1.NewAdminServiceClient(cc))
		},
	})
	if collectH != nil {
		services = append(services, server.Service{
			Name:   collectv1connect.CollectServiceName,
			Mount:  collectH.Mount,
			Routes: []server.Route{collectwire.Route(*collectH)},
			REST: func(ctx context.Context, mux *runtime.ServeMux, cc grpc.ClientConnInterface) error {
				return collectv1.RegisterCollectServiceHandlerClient(ctx, mux, collectv1.NewCollectServiceClient(cc))
			},
		})
	}
	if projectionH != nil {
		services = append(services, server.Service{
			Name: projectionv1connect.ProjectionServiceName,
			Mount: func(o ...connect.HandlerOption) (string, http.Handler) {
				return projectionv1connect.NewProjectionServiceHandler(projectionH, o...)
			},
			REST: func(ctx context.Context, mux *runtime.ServeMux, cc grpc.ClientConnInterface) error {
				return projectionv1.RegisterProjectionServiceHandlerClient(ctx, mux, projectionv1.NewProjectionServiceClient(cc))
			},
		})
	}
	if insightsH != nil {
		services = append(services, server.Service{
			Name: insightsv1connect.InsightsServiceName,
			Mount: func(o ...connect.HandlerOption) (string, http.Handler) {
				return insightsv1connect.NewInsightsServiceHandler(insightsH, o...)
			},
			REST: func(ctx context.Context, mux *runtime.ServeMux, cc grpc.ClientConnInterface) error {
				return insightsv1.RegisterInsightsServiceHandlerClient(ctx, mux, insightsv1.NewInsightsServiceClient(cc))
			},
		})
	}

	checks := readiness(cfg, log, store, gw)
	var (
		middleware func(http.Handler) http.Handler
		observe    server.Observe
	)
	if gw != nil {
		middleware = gw.LimitIPs
		observe = m.ObserveGateway
	}
	var forward []string
	if cfg.CountryHeader != "" {
		forward = append(forward, cfg.CountryHeader)
	}
	authn := auth.NewInterceptor(props, auth.Scopes()).TrustAssertions(assertions).
		Counted(func(by string) { m.Authentications.WithLabelValues(by).Inc() })
	sc := cfg.serverConfig()
	sc.Listener, sc.ForwardHeaders, sc.Logger, sc.Authenticate = ln, forward, logger, authn.Authenticate
	sc.OpenAPI = sextant.OpenAPIOf(strings.TrimPrefix(version(), "sextant "))
	sc.Middleware, sc.Observe, sc.TLS = middleware, observe, serverTLS
	sc.Propagator, sc.Tracer = tr.Propagator(), tracer
	srv := server.New(sc, services, checks, connect.WithInterceptors(rpcerror.Interceptor{Logger: logger}, authn))
	srv.Handle("GET /metrics", m.Handler())
	if collectH != nil {
		// GA4's Measurement Protocol, into the same batches as /v1/collect.
		mpH := mp.Handler(mp.Config{Keys: props, Collect: *collectH, Logger: logger})
		srv.HandleBody(mp.CollectPath, mpH)
		srv.HandleBody(mp.DebugPath, mpH)
		// gtag.js's own wire protocol, for sites that keep Google's tag.
		srv.HandleBody(gtag.Path, gtag.Handler(gtag.Config{Properties: props, Collect: *collectH, Logger: logger}))
	}
	if insightsH != nil {
		// The GA4 Data API, for Google's client libraries: its REST paths,
		// and its gRPC service under Google's name.
		ga4cfg := ga4data.Config{Reports: insightsH, Authenticate: authn.Authenticate, MaxBodyBytes: int64(cfg.MaxBodyBytes), Logger: logger}
		srv.HandleBody(ga4data.Prefix, ga4data.Handler(ga4cfg))
		srv.Handle(ga4data.GRPC(ga4cfg, connect.WithInterceptors(rpcerror.Interceptor{Logger: logger}, authn), connect.WithReadMaxBytes(cfg.MaxBodyBytes)))
	}
	srv.Handle("/", web.Handler()) // the dashboard at / and the browser tag at /sextant.js
	if cfg.Pprof {
		srv.Handle("/debug/pprof/", http.HandlerFunc(pprof.Index))
		srv.Handle("/debug/pprof/profile", http.HandlerFunc(pprof.Profile))
		srv.Handle("/debug/pprof/symbol", http.HandlerFunc(pprof.Symbol))
		srv.Handle("/debug/pprof/trace", http.HandlerFunc(pprof.Trace))
	}
	if err := srv.Listen(); err != nil {
		return err
	}
	served = true
	scheme := "http"
	if serverTLS != nil {
		scheme = "https"
	}
	fmt.Fprintf(stdout, "Sextant is serving %s on %s://%s (%s)\n", strings.Join(cfg.Services, ", "), scheme, srv.Addr(), cfg.Engines.describe())

	// The projectors outlive the server by a little: once no request is in
	// flight they are stopped, and stopping commits what they applied.
	pctx, pcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer pcancel()
	projDone := make(chan error, 1)
	if supervisor != nil {
		go func() { projDone <- supervisor.Run(pctx) }()
	} else {
		projDone <- nil
	}
	filled := make(chan struct{})
	go func() {
		defer close(filled)
		if fill != nil {
			fillDemo(ctx, srv, *fill, cfg.DemoTraffic, stdout, logger)
		}
	}()
	serveErr := srv.Serve(ctx, cfg.Grace)
	<-filled
	pcancel()
	projErr := <-projDone
	logger.Info("stopped", "err", errors.Join(serveErr, projErr))
	return errors.Join(serveErr, projErr)
}

// readiness is what /readyz checks: the dependencies of the services this
// process runs, each probed actively (server.Cached: at most one probe a
// second, each bounded by a second).
//
//   - collect: the event log accepts appends (Kafka: a broker names a live
//     leader for every partition). Not the view store: keys and property
//     settings come from the registry's cache while it is down, and
//     collect keeps taking events.
//   - projection: the event log and the view store (it consumes the one
//     and commits to the other). A copy that holds no partition (the
//     others hold them all) is ready: it serves the ProjectionService and
//     takes partitions over when a copy dies.
//   - insights: the view store answers (Redis is not needed: answers come
//     from the store without it).
//   - gateway: at least one copy of every service it fronts answers gRPC
//     health checks (see gateway.Probe): not their readiness, so that an
//     outage behind one service does not take the others out of service.
func readiness(cfg serveConfig, log eventlog.Log, store views, gw *gateway.Gateway) []server.Check {
	var checks []server.Check
	add := func(name string, probe func(context.Context) error) {
		checks = append(checks, server.Cached(server.Check{Name: name, Probe: probe}, server.ProbeTimeout, server.ProbeTTL))
	}
	if log != nil && (cfg.has("collect") || cfg.has("projection")) {
		add("eventlog", func(ctx context.Context) error { return eventlog.Probe(ctx, log) })
	}
	if cfg.has("projection") || cfg.has("insights") {
		add("viewstore", func(ctx context.Context) error { return metadata.Probe(ctx, store) })
	}
	if gw != nil {
		for _, svc := range []string{collectv1connect.CollectServiceName, projectionv1connect.ProjectionServiceName, insightsv1connect.InsightsServiceName} {
			if gw.Serves(svc) {
				add("backends "+svc, func(ctx context.Context) error { return gw.Probe(ctx, svc) })
			}
		}
	}
	return checks
}

func printDemoKeys(stdout io.Writer, c demo.Created) {
	fmt.Fprintf(stdout, `Created the demo property %q and an admin key. The keys are shown only this once:
export SEXTANT_PROPERTY_ID=%s
export SEXTANT_WRITE_KEY=%s
export SEXTANT_READ_KEY=%s
export SEXTANT_ADMIN_KEY=%s
`, c.Property.Name, c.Keys.PropertyID, c.Keys.WriteKey, c.Keys.ReadKey, c.AdminKey)
}

// demoAllowance is collect's exception to its event-time window for the
// demo property being filled: none when there is none.
func demoAllowance(fill *demo.Created, traffic demo.Config) map[string]time.Duration {
	if fill == nil {
		return nil
	}
	return map[string]time.Duration{fill.Property.ID: traffic.PastAllowance()}
}

// fillDemo sends the demo property's traffic through the server's own
// collect and says when it is there.
func fillDemo(ctx context.Context, srv *server.Server, c demo.Created, traffic demo.Config, stdout io.Writer, logger *slog.Logger) {
	conn, err := srv.Self()
	if err != nil {
		logger.Error("demo traffic", "err", err)
		return
	}
	res, err := demo.Fill(ctx, conn, c.Keys, traffic, time.Now())
	if err != nil {
		logger.Error("demo traffic", "err", err)
		return
	}
	fmt.Fprintf(stdout, "Filled the demo property with %d events over %d days in %.1fs: sign in at http://%s/ with its id and read key\n",
		res.EventsAcked, traffic.Days, res.ElapsedSeconds, srv.Addr())
}
