// Package insights is the read side: GA4-Data-API-shaped reports answered
// from the active projection version's read model, cached with keys that
// carry the data watermark so a cached answer is never older than the data.
package insights

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	insightsv1 "github.com/sextant-analytics/sextant/gen/sextant/insights/v1"
	"github.com/sextant-analytics/sextant/gen/sextant/insights/v1/insightsv1connect"
	"github.com/sextant-analytics/sextant/pkg/apierror"
	"github.com/sextant-analytics/sextant/pkg/auth"
	"github.com/sextant-analytics/sextant/pkg/catalog"
	"github.com/sextant-analytics/sextant/pkg/clientinfo"
	"github.com/sextant-analytics/sextant/pkg/configcheck"
	"github.com/sextant-analytics/sextant/pkg/metrics"
	"github.com/sextant-analytics/sextant/pkg/property"
	"github.com/sextant-analytics/sextant/pkg/versions"
	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

// Store is the read model as insights needs it.
type Store interface {
	ScanAdditions(ctx context.Context, ns viewstore.Namespace, property string, from, to int64, fn func(viewstore.Addition) error) error
	ScanBlocks(ctx context.Context, ns viewstore.Namespace, property string, k viewstore.Kind, from, to int64, fn func(viewstore.Block) error) error
	Watermarks(ctx context.Context, ns viewstore.Namespace, property string) ([]viewstore.Watermark, error)
}

// Properties resolves a property's settings.
type Properties interface {
	Get(ctx context.Context, id string) (property.Property, error)
}

// Versions tells which projection version serves reads, and which build of
// a version is recorded (versions.Registry).
type Versions interface {
	Active(ctx context.Context, projection string) (string, error)
	Get(ctx context.Context, projection, version string) (versions.Version, error)
}

// Cache stores encoded answers.
type Cache interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	Set(ctx context.Context, key string, val []byte, ttl time.Duration) error
}

// DefaultCacheTTL is how long answers are cached by default.
const DefaultCacheTTL = 10 * time.Minute

// Config configures the service.
type Config struct {
	Projection string // the projection reports read, "traffic"
	CacheTTL   time.Duration
	// WatermarkRefresh keeps each property's watermarks in memory and
	// refreshes them in the background this often, instead of reading
	// them for every report (which a remote store makes the bulk of a
	// cached answer's latency). Answers may then lag the data by about
	// this much (at most ten times as much). The active version and the
	// versions' builds are remembered as long: reads switch to a newly
	// activated or rebuilt version within it. Zero reads them every time.
	WatermarkRefresh time.Duration
	// Upstream, when set, makes the service a cache in front of another
	// InsightsService (the gateway's, in front of the insights copies): it
	// answers what its cache holds for the data it sees, and forwards the
	// rest with the fresh-watermarks header, remembering the answers: the upstream reads
	// the watermarks after this process did, so no answer is older than
	// the data its key names.
	Upstream insightsv1connect.InsightsServiceHandler
	// Tracer, when set (tracing on), traces the cache lookup and the view
	// store query of each report, within its call's span.
	Tracer  trace.Tracer
	Logger  *slog.Logger
	Metrics *metrics.Metrics
}

// Service implements InsightsService.
type Service struct {
	cfg    Config
	store  Store
	props  Properties
	cache  Cache
	marks  *marks
	active *active
	// upstream answers what the cache does not hold, when set (a gateway's
	// front, Config.Upstream).
	upstream insightsv1connect.InsightsServiceHandler
	now      func() time.Time
}

var _ insightsv1connect.InsightsServiceHandler = (*Service)(nil)

// withDefaults fills the zero fields (and, as before Validate, negative
// ones) with their defaults.
func (c Config) withDefaults() Config {
	if c.Projection == "" {
		c.Projection = "traffic"
	}
	if c.CacheTTL <= 0 {
		c.CacheTTL = DefaultCacheTTL
	}
	if c.WatermarkRefresh < 0 {
		c.WatermarkRefresh = 0
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Metrics == nil {
		c.Metrics = metrics.New()
	}
	return c
}

// Validate reports what no default fixes: negative durations.
func (c Config) Validate() error {
	e := configcheck.New("insights")
	configcheck.NotNegative(e, "CacheTTL", c.CacheTTL)
	configcheck.NotNegative(e, "WatermarkRefresh", c.WatermarkRefresh)
	return e.Err()
}

// New returns the service; zero fields of cfg take their defaults. cache
// may be nil.
func New(cfg Config, store Store, props Properties, vers Versions, cache Cache) *Service {
	cfg = cfg.withDefaults()
	return &Service{cfg: cfg, store: store, props: props, cache: cache, now: time.Now,
		marks: newMarks(store.Watermarks, cfg.WatermarkRefresh), active: newActive(vers, cfg.WatermarkRefresh),
		upstream: cfg.Upstream}
}

// nsSource is a version's read model, with the watermarks a report's
// answer is keyed by as its committed bound, so that the answer holds
// exactly the data its cache key names.
type nsSource struct {
	store     Store
	ns        viewstore.Namespace
	layout    *catalog.Layout
	committed map[int32]int64
}

func (s nsSource) ScanAdditions(ctx context.Context, property string, from, to int64, fn func(viewstore.Addition) error) error {
	return s.store.ScanAdditions(ctx, s.ns, property, from, to, fn)
}

func (s nsSource) ScanBlocks(ctx context.Context, property string, k viewstore.Kind, from, to int64, fn func(viewstore.Block) error) error {
	return s.store.ScanBlocks(ctx, s.ns, property, k, from, to, fn)
}

func (s nsSource) Committed(context.Context, string) (map[int32]int64, error) {
	return s.committed, nil
}
func (s nsSource) Layout() *catalog.Layout { return s.layout }

func (s *Service) source(t target) nsSource {
	return nsSource{store: s.store, ns: t.ns, layout: catalog.LayoutOf(s.cfg.Projection, t.version), committed: t.committed}
}

// NewSource binds a version's read model in store to reports (RunReport,
// RunRealtimeReport) outside the service: tools and benchmarks. committed
// is the bound of Committed, for every property.
func NewSource(store Store, ns viewstore.Namespace, layout *catalog.Layout, committed map[int32]int64) Source {
	return nsSource{store: store, ns: ns, layout: layout, committed: committed}
}

func committedOf(wms []viewstore.Watermark) map[int32]int64 {
	m := make(map[int32]int64, len(wms))
	for _, w := range wms {
		m[w.Partition] = w.Offset
	}
	return m
}

// target is everything a report's answer depends on besides the request.
type target struct {
	prop      property.Property
	version   string
	build     string // the version's build (versions.Version.Build)
	ns        viewstore.Namespace
	watermark time.Time
	token     string // changes whenever the property's data changes
	committed map[int32]int64
}

func (s *Service) resolve(ctx context.Context, propertyID, version string, fresh bool) (target, error) {
	pid, err := auth.Authorize(ctx, propertyID, property.Read)
	if err != nil {
		return target{}, err
	}
	prop, err := s.props.Get(ctx, pid)
	if err != nil {
		return target{}, err
	}
	if version != "" && !validVersion(version) {
		return target{}, apierror.Invalid("invalid projection version", apierror.Violation{Field: "projectionVersion", Description: "must look like v1, v2, …", Code: apierror.ValueInvalid})
	}
	// Asked for fresh watermarks (by a front whose key names what it
	// read), the build is read fresh too: an answer is of the build the
	// registry records now, never of one remembered from before a rebuild.
	v, err := s.active.get(ctx, s.cfg.Projection, version, fresh)
	if err != nil {
		return target{}, err
	}
	t := target{prop: prop, version: v.version, build: v.id, ns: viewstore.NamespaceOf(s.cfg.Projection, v.version)}
	wms, err := s.marks.get(ctx, t.ns, pid, fresh)
	if err != nil {
		return target{}, fmt.Errorf("insights: watermarks: %w", err)
	}
	var b strings.Builder
	for _, w := range wms {
		if w.Time.After(t.watermark) {
			t.watermark = w.Time
		}
		fmt.Fprintf(&b, "%d:%d,", w.Partition, w.Offset)
	}
	sum := sha256.Sum256([]byte(b.String()))
	t.token = hex.EncodeToString(sum[:8])
	t.committed = committedOf(wms)
	return t, nil
}

func validVersion(v string) bool {
	if len(v) < 2 || len(v) > 20 || v[0] != 'v' {
		return false
	}
	_, err := strconv.Atoi(v[1:])
	return err == nil
}

func (s *Service) metadata(md *insightsv1.ResponseMetaData, t target, cached bool) *insightsv1.ResponseMetaData {
	if md == nil {
		md = &insightsv1.ResponseMetaData{}
	}
	md.Projection = s.cfg.Projection
	md.ProjectionVersion = t.version
	if !t.watermark.IsZero() {
		md.DataWatermark = timestamppb.New(t.watermark)
	}
	md.Cached = cached
	return md
}

// keepable reports whether an upstream's answer may be remembered under
// t's key: it is of t's version, and (asked with the fresh-watermarks header) it was
// computed with watermarks read after t's, so it holds at least the data
// they name. (The upstream reads the version's build afresh too: at worst
// a build remembered here before a rebuild keys the new build's answer,
// which no process reads once its memory has the new build.)
func keepable(md *insightsv1.ResponseMetaData, t target) bool {
	return md.GetProjectionVersion() == t.version
}

// cacheKey names an answer: property, projection version and its build,
// data token, the clock granule that relative dates depend on, the
// property's settings that answers depend on (time zone, currency and
// rates), and the request itself.
func cacheKey(kind string, t target, clock string, req proto.Message) (string, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		return "", err
	}
	b = append(b, t.prop.TimeZone...)
	b = append(b, 0)
	b = append(b, t.prop.CurrencyCode...)
	for _, l := range [][]string{t.prop.CustomEventDimensions, t.prop.CustomUserDimensions, t.prop.CustomEventMetrics} {
		b = append(b, 0)
		b = append(b, strings.Join(l, ",")...)
	}
	for _, c := range slices.Sorted(maps.Keys(t.prop.CurrencyRates)) {
		b = append(b, c...)
		b = strconv.AppendFloat(b, t.prop.CurrencyRates[c], 'g', -1, 64)
	}
	sum := sha256.Sum256(b)
	return "sextant:" + kind + ":" + t.prop.ID + ":" + t.version + "." + t.build + ":" + t.token + ":" + clock + ":" + hex.EncodeToString(sum[:16]), nil
}

func (s *Service) cached(ctx context.Context, key string, into proto.Message) bool {
	if s.cache == nil {
		return false
	}
	cctx, end := s.span(ctx, "insights.cache.get")
	b, ok, err := s.cache.Get(cctx, key)
	end(err)
	if err != nil {
		s.cfg.Metrics.CacheRequests.WithLabelValues("error").Inc()
		s.cfg.Logger.WarnContext(ctx, "report cache unavailable; answering from the store", "err", err)
		return false
	}
	if ok && proto.Unmarshal(b, into) == nil {
		s.cfg.Metrics.CacheRequests.WithLabelValues("hit").Inc()
		return true
	}
	s.cfg.Metrics.CacheRequests.WithLabelValues("miss").Inc()
	return false
}

func (s *Service) remember(ctx context.Context, key string, m proto.Message) {
	if s.cache == nil {
		return
	}
	b, err := proto.Marshal(m)
	if err == nil {
		err = s.cache.Set(ctx, key, b, s.cfg.CacheTTL)
	}
	if err != nil {
		s.cfg.Logger.WarnContext(ctx, "report cache write failed", "err", err)
	}
}

// RunReport answers a report over date ranges.
func (s *Service) RunReport(ctx context.Context, req *connect.Request[insightsv1.RunReportRequest]) (*connect.Response[insightsv1.RunReportResponse], error) {
	start := time.Now()
	t, err := s.resolve(ctx, req.Msg.PropertyId, req.Msg.ProjectionVersion, req.Header().Get(clientinfo.HeaderFreshWatermarks) != "")
	if err != nil {
		return nil, err
	}
	req.Msg.PropertyId = t.prop.ID // the key's property when the request named none
	now := s.now()
	tz := t.prop.Location()
	key, err := cacheKey("report", t, now.In(tz).Format("2006-01-02"), req.Msg)
	if err != nil {
		return nil, err
	}
	out := &insightsv1.RunReportResponse{}
	if s.cached(ctx, key, out) {
		out.Metadata = s.metadata(out.Metadata, t, true)
		s.observe("RunReport", start, true)
		return connect.NewResponse(out), nil
	}
	if s.upstream != nil {
		req.Header().Set(clientinfo.HeaderFreshWatermarks, "1")
		resp, err := s.upstream.RunReport(ctx, req)
		if err == nil && keepable(resp.Msg.GetMetadata(), t) {
			s.remember(ctx, key, resp.Msg)
		}
		return resp, err
	}
	qctx, end := s.span(ctx, "insights.query")
	out, err = RunReportOf(qctx, s.source(t), t.prop, now, req.Msg)
	end(err)
	if err != nil {
		return nil, err
	}
	out.Metadata = s.metadata(out.Metadata, t, false)
	s.remember(ctx, key, out)
	s.observe("RunReport", start, false)
	return connect.NewResponse(out), nil
}

// RunRealtimeReport answers a report over the last 30 minutes.
func (s *Service) RunRealtimeReport(ctx context.Context, req *connect.Request[insightsv1.RunRealtimeReportRequest]) (*connect.Response[insightsv1.RunRealtimeReportResponse], error) {
	start := time.Now()
	t, err := s.resolve(ctx, req.Msg.PropertyId, req.Msg.ProjectionVersion, req.Header().Get(clientinfo.HeaderFreshWatermarks) != "")
	if err != nil {
		return nil, err
	}
	req.Msg.PropertyId = t.prop.ID
	now := s.now()
	key, err := cacheKey("realtime", t, strconv.FormatInt(now.Unix()/60, 10), req.Msg)
	if err != nil {
		return nil, err
	}
	out := &insightsv1.RunRealtimeReportResponse{}
	if s.cached(ctx, key, out) {
		out.Metadata = s.metadata(out.Metadata, t, true)
		s.observe("RunRealtimeReport", start, true)
		return connect.NewResponse(out), nil
	}
	if s.upstream != nil {
		req.Header().Set(clientinfo.HeaderFreshWatermarks, "1")
		resp, err := s.upstream.RunRealtimeReport(ctx, req)
		if err == nil && keepable(resp.Msg.GetMetadata(), t) {
			s.remember(ctx, key, resp.Msg)
		}
		return resp, err
	}
	qctx, end := s.span(ctx, "insights.query")
	out, err = RunRealtimeReportOf(qctx, s.source(t), t.prop, now, req.Msg)
	end(err)
	if err != nil {
		return nil, err
	}
	out.Metadata = s.metadata(out.Metadata, t, false)
	s.remember(ctx, key, out)
	s.observe("RunRealtimeReport", start, false)
	return connect.NewResponse(out), nil
}

// span starts a child span of ctx named name, when tracing is on, and
// returns its context and what ends it (with the error, if any).
func (s *Service) span(ctx context.Context, name string) (context.Context, func(error)) {
	if s.cfg.Tracer == nil {
		return ctx, endNothing
	}
	ctx, sp := s.cfg.Tracer.Start(ctx, name)
	return ctx, func(err error) {
		if err != nil {
			sp.RecordError(err)
			sp.SetStatus(codes.Error, err.Error())
		}
		sp.End()
	}
}

func endNothing(error) {}

func (s *Service) observe(method string, start time.Time, cached bool) {
	label := "miss"
	if cached {
		label = "hit"
	}
	s.cfg.Metrics.QuerySeconds.WithLabelValues(method, label).Observe(time.Since(start).Seconds())
}
