// Package collect is the write side: it authenticates, rate-limits,
// validates and enriches hits, and appends them to the event log as typed
// protobuf events. A batch is acknowledged only once all of it is durable.
package collect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/propagation"

	collectv1 "github.com/sextant-analytics/sextant/gen/sextant/collect/v1"
	"github.com/sextant-analytics/sextant/pkg/apierror"
	"github.com/sextant-analytics/sextant/pkg/auth"
	"github.com/sextant-analytics/sextant/pkg/clientinfo"
	"github.com/sextant-analytics/sextant/pkg/collectwire"
	"github.com/sextant-analytics/sextant/pkg/configcheck"
	"github.com/sextant-analytics/sextant/pkg/diskspace"
	"github.com/sextant-analytics/sextant/pkg/eventlog"
	"github.com/sextant-analytics/sextant/pkg/metrics"
	"github.com/sextant-analytics/sextant/pkg/property"
	"github.com/sextant-analytics/sextant/pkg/ratelimit"
	"github.com/sextant-analytics/sextant/pkg/seal"
	"github.com/sextant-analytics/sextant/pkg/tracing"
)

// Appender is the event log as collect needs it.
type Appender interface {
	Append(ctx context.Context, msgs []eventlog.Message) error
}

// Sealer seals a batch's records in place.
type Sealer interface {
	// Seal seals msgs into the records to append (a batch's events
	// share records), storing the keys it makes first.
	Seal(ctx context.Context, msgs []eventlog.Message, sub seal.Subjects) ([]eventlog.Message, error)
}

// Config configures the service.
type Config struct {
	Limits Limits
	// Rate and Burst bound each property's accepted events per second.
	Rate  float64
	Burst int
	// TrustedProxies are peers whose X-Forwarded-For and forwarded
	// User-Agent are believed (the in-process REST gateway is loopback).
	TrustedProxies []netip.Prefix
	// CountryHeader, when set, names a header carrying the visitor's
	// country (for example CF-IPCountry), trusted from TrustedProxies.
	CountryHeader string
	// MaxInFlight bounds the batches of one stream being appended at once.
	MaxInFlight int
	// AppendTimeout bounds how long a batch waits for the event log's
	// acknowledgement; a batch not acknowledged in time is answered
	// UNAVAILABLE (HTTP 503) with a retry delay. Default
	// DefaultAppendTimeout.
	AppendTimeout time.Duration
	// MaxAppends bounds the batches of the whole process being appended
	// at once; a batch over it is refused at once, UNAVAILABLE with a
	// retry delay, so that a slow or dead event log cannot pile up
	// requests. Default DefaultMaxAppends.
	MaxAppends int
	// OriginAllowed, when set, vets the browser origin of a hit against
	// the property's allow-list.
	OriginAllowed func(ctx context.Context, propertyID, origin string) (bool, error)
	// Locator, when set, answers the city and region (and country) of
	// the addresses hits come from; nil looks up countries only.
	Locator Locator
	// Properties, when set, gives each batch its property's settings
	// (Settings), read once per batch; without it every property has the
	// defaults.
	Properties Properties
	// Sealer, when set, seals each batch under its client's, user's and
	// month's keys before it is appended (package seal), so that deleting
	// a user or a month of data destroys keys instead of rewriting the
	// log. Production wiring always sets it; without it events are
	// appended in the clear.
	Sealer Sealer
	// PastAllowances are explicit exceptions to Limits.MaxPast: a
	// property named here takes event times up to its duration old (when
	// that is longer). `sextant serve --demo` gives its new demo property
	// the days of traffic it fills in; every other property keeps
	// Limits.MaxPast.
	PastAllowances map[string]time.Duration
	// Propagator, when set (tracing on), adds the trace context of each
	// batch's call to its records' headers, for the projection's spans
	// to link to.
	Propagator propagation.TextMapPropagator
	Logger     *slog.Logger
	Metrics    *metrics.Metrics
}

// Defaults of Config.
const (
	DefaultRate          = 50_000
	DefaultMaxInFlight   = 16
	DefaultAppendTimeout = 2 * time.Second
	DefaultMaxAppends    = 1024
	// retryAfter is the retry delay given with a batch the event log
	// could not take.
	retryAfter = time.Second
)

// Service implements CollectService.
type Service struct {
	cfg     Config
	appends chan struct{} // a token per batch being appended
	log     Appender
	limiter *ratelimit.Limiter
	enc     *Encoder
	now     func() time.Time
}

// withDefaults fills the zero fields (and, as before Validate, negative
// ones) with their defaults.
func (c Config) withDefaults() Config {
	c.Limits = c.Limits.withDefaults()
	if c.Rate <= 0 {
		c.Rate = DefaultRate
	}
	if c.Burst < c.Limits.MaxEvents {
		c.Burst = max(c.Limits.MaxEvents, int(c.Rate))
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.AppendTimeout <= 0 {
		c.AppendTimeout = DefaultAppendTimeout
	}
	if c.MaxAppends <= 0 {
		c.MaxAppends = DefaultMaxAppends
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Metrics == nil {
		c.Metrics = metrics.New()
	}
	return c
}

// Validate reports what no default fixes: negative fields, and a burst
// below a full batch (zero means the default).
func (c Config) Validate() error {
	e := configcheck.New("collect")
	e.Add(c.Limits.Validate())
	configcheck.NotNegative(e, "Rate", c.Rate)
	configcheck.NotNegative(e, "Burst", c.Burst)
	configcheck.NotNegative(e, "MaxInFlight", c.MaxInFlight)
	configcheck.NotNegative(e, "AppendTimeout", c.AppendTimeout)
	configcheck.NotNegative(e, "MaxAppends", c.MaxAppends)
	if full := c.Limits.withDefaults().MaxEvents; c.Burst > 0 && c.Burst < full {
		e.Errorf("Burst %d is below Limits.MaxEvents %d: a full batch must fit in a property's token bucket", c.Burst, full)
	}
	return e.Err()
}

// New returns the service; zero fields of cfg take their defaults.
func New(cfg Config, log Appender) *Service {
	cfg = cfg.withDefaults()
	enc := NewEncoder(cfg.Limits)
	enc.geo = cfg.Locator
	return &Service{cfg: cfg, appends: make(chan struct{}, cfg.MaxAppends), log: log, limiter: ratelimit.New(cfg.Rate, cfg.Burst), enc: enc, now: time.Now}
}

// Handlers serve the CollectService (its RPCs: Handlers.Mount; its REST
// route: collectwire.Route). Batches reach collect as bytes: they are
// validated and enriched from their wire format and their events encoded
// once (Encoder). A stream's batches are appended concurrently (up to
// MaxInFlight) and acknowledged in order; a rejected batch is answered
// with its error and the stream goes on.
func (s *Service) Handlers() collectwire.Handlers {
	return collectwire.Handlers{
		Open: func(h http.Header, peer connect.Peer) collectwire.BatchFunc {
			meta := s.meta(h, peer)
			return func(ctx context.Context, b []byte) (*collectv1.CollectResponse, error) {
				return s.collect(ctx, b, meta)
			}
		},
		MaxInFlight: s.cfg.MaxInFlight,
		BatchError:  s.batchError,
	}
}

// batchError reports a rejected batch inside the stream.
func (s *Service) batchError(ctx context.Context, err error) *collectv1.BatchError {
	return collectwire.BatchError(ctx, s.cfg.Logger, err)
}

func (s *Service) collect(ctx context.Context, b []byte, meta request) (*collectv1.CollectResponse, error) {
	req, err := s.enc.decode(b)
	if err != nil {
		return nil, err
	}
	defer s.enc.release(req)
	pid, err := auth.Authorize(ctx, req.propertyID, property.Write)
	if err != nil {
		return nil, err
	}
	meta.PropertyID = pid
	meta.Now = s.now()
	meta.MaxPast = s.cfg.PastAllowances[pid]
	// The property's settings, and its allowed origins from the same
	// lookup when collect reads them (OriginAllowed otherwise).
	allowed := true
	if s.cfg.Properties != nil {
		p, err := s.cfg.Properties.Get(ctx, pid)
		if err != nil {
			return nil, s.propertyError(ctx, pid, err)
		}
		meta.Settings = SettingsOf(p)
		allowed = p.AllowsOrigin(meta.origin)
	} else if s.cfg.OriginAllowed != nil && meta.origin != "" {
		if allowed, err = s.cfg.OriginAllowed(ctx, pid, meta.origin); err != nil {
			return nil, err
		}
	}
	if !allowed {
		return nil, apierror.New(apierror.PermissionDenied, "origin %s may not send hits to property %s (see its allowed origins)", meta.origin, pid)
	}
	enc, err := s.enc.build(req, meta.Meta)
	if err != nil {
		s.cfg.Metrics.IngestEvents.WithLabelValues("rejected").Add(float64(len(req.events)))
		return nil, err
	}
	msgs := enc.Messages
	if req.validateOnly {
		return &collectv1.CollectResponse{ValidatedOnly: true}, nil
	}
	if wait, ok := s.limiter.Take(pid, len(msgs), meta.Now); !ok {
		s.cfg.Metrics.IngestEvents.WithLabelValues("throttled").Add(float64(len(msgs)))
		e := apierror.New(apierror.ResourceExhausted, "rate limit of property %s exceeded; retry after %s", pid, wait.Round(time.Millisecond))
		e.RetryAfter = wait
		return nil, e
	}
	records := msgs
	if s.cfg.Sealer != nil {
		sub := seal.Subjects{Property: pid, ClientID: enc.ClientID, UserID: enc.UserID, Received: meta.Now}
		if records, err = s.cfg.Sealer.Seal(ctx, msgs, sub); err != nil {
			s.cfg.Metrics.IngestEvents.WithLabelValues("failed").Add(float64(len(msgs)))
			return nil, s.sealError(ctx, err)
		}
	}
	tracing.InjectRecords(ctx, s.cfg.Propagator, records)
	start := time.Now()
	err = s.append(ctx, records)
	if err != nil {
		s.cfg.Metrics.IngestEvents.WithLabelValues("failed").Add(float64(len(msgs)))
		return nil, err
	}
	s.cfg.Metrics.AppendSeconds.Observe(time.Since(start).Seconds())
	s.cfg.Metrics.IngestEvents.WithLabelValues("accepted").Add(float64(len(msgs)))
	return &collectv1.CollectResponse{Accepted: int32(len(msgs)), EventIds: enc.IDs}, nil
}

// append appends msgs within AppendTimeout, as one of at most MaxAppends
// batches in flight. Its errors, but the caller's own end (ctx), are
// UNAVAILABLE with a retry delay.
func (s *Service) append(ctx context.Context, msgs []eventlog.Message) error {
	select {
	case s.appends <- struct{}{}:
		defer func() { <-s.appends }()
	default:
		return &apierror.Error{Kind: apierror.Unavailable, RetryAfter: retryAfter,
			Message: "too many batches are waiting for the event log; retry the batch (events with ids are deduplicated)"}
	}
	actx, cancel := context.WithTimeout(ctx, s.cfg.AppendTimeout)
	defer cancel()
	err := s.log.Append(actx, msgs)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	msg := "event log unavailable; retry the batch (events with ids are deduplicated)"
	switch {
	case errors.Is(err, diskspace.ErrLow):
		msg = "the event log's disk is almost full (less free than its reserve, --min-free-disk-mb): nothing was stored; retry the batch later"
	case actx.Err() != nil:
		msg = fmt.Sprintf("the event log did not acknowledge the batch within %v; retry it (events with ids are deduplicated)", s.cfg.AppendTimeout)
	}
	s.cfg.Logger.WarnContext(ctx, "append to event log failed", "events", len(msgs), "err", err)
	return &apierror.Error{Kind: apierror.Unavailable, Message: msg, RetryAfter: retryAfter, Err: err}
}

// sealError is the error of a batch whose keys could not be read or made:
// the key store is unavailable, so the batch is to be retried.
func (s *Service) sealError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	s.cfg.Logger.ErrorContext(ctx, "sealing a batch failed", "err", err)
	return &apierror.Error{Kind: apierror.Unavailable, RetryAfter: retryAfter, Err: err,
		Message: "the key store that seals events is unavailable; retry the batch (events with ids are deduplicated)"}
}

// propertyError is the error of a batch whose property's settings could
// not be read: the registry's when the property is not found, else one
// that says to retry (the batch is not stamped with guesses).
func (s *Service) propertyError(ctx context.Context, pid string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ae *apierror.Error
	if errors.As(err, &ae) && ae.Kind == apierror.NotFound {
		return err
	}
	s.cfg.Logger.ErrorContext(ctx, "read the property's settings failed", "property", pid, "err", err)
	return &apierror.Error{Kind: apierror.Unavailable, Message: "the settings of property " + pid + " cannot be read now; retry the batch (events with ids are deduplicated)", Err: err}
}

var recordHeaders = map[string]string{
	eventlog.HeaderSchemaVersion: eventlog.SchemaVersion1,
	eventlog.HeaderContentType:   eventlog.ContentTypeEvent,
}

// request is what collect knows of a request besides the batch.
type request struct {
	Meta
	origin string // the browser's Origin, "" for apps and servers
}

func (s *Service) meta(h clientinfo.Headers, peer connect.Peer) request {
	c := clientinfo.Policy{TrustedProxies: s.cfg.TrustedProxies, CountryHeader: s.cfg.CountryHeader}.Of(h, peer.Addr)
	return request{Meta: Meta{UserAgent: c.UserAgent, ClientIP: c.IP, Country: c.Country}, origin: c.Origin}
}
