// Package tracing provides Sextant's OpenTelemetry tracing: a tracer
// provider that exports spans over OTLP/HTTP when an endpoint is
// configured, and a no-op one otherwise (the default), with W3C trace
// context propagation, and the helpers that carry a trace across the
// event log in record headers.
package tracing

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/sextant-analytics/sextant/pkg/configcheck"
)

// ServiceName is the service.name resource attribute of every span.
const ServiceName = "sextant"

// Config configures tracing.
type Config struct {
	// Endpoint is the OTLP/HTTP collector's base URL, e.g.
	// http://localhost:4318 (spans are posted to its /v1/traces); an
	// empty one turns tracing off.
	Endpoint string
	// SampleRatio is the share of new traces sampled, within 0..1 (zero
	// means the default, 1: every trace); a span whose parent came with
	// the request follows the parent's decision.
	SampleRatio float64
	// Services are the services this process runs (--services), the
	// sextant.services resource attribute.
	Services []string
	// Version is the service.version resource attribute.
	Version string
	Logger  *slog.Logger
}

// Validate reports an endpoint that is not an http(s) URL and a ratio
// outside 0..1.
func (c Config) Validate() error {
	e := configcheck.New("tracing")
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			e.Errorf("Endpoint %q is not an http:// or https:// URL", c.Endpoint)
		}
	}
	if c.SampleRatio < 0 || c.SampleRatio > 1 {
		e.Errorf("SampleRatio %v is not within 0..1", c.SampleRatio)
	}
	return e.Err()
}

// Tracing is the process's tracer provider and propagator.
type Tracing struct {
	provider   trace.TracerProvider
	propagator propagation.TextMapPropagator
	sdk        *sdktrace.TracerProvider // nil when off
}

// Off is tracing turned off: a no-op provider, and no propagator.
func Off() *Tracing { return &Tracing{provider: noop.NewTracerProvider()} }

// New returns tracing as cfg says: off (Off) without an endpoint, else a
// provider that batches spans to the endpoint over OTLP/HTTP.
func New(ctx context.Context, cfg Config) (*Tracing, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Endpoint == "" {
		return Off(), nil
	}
	if cfg.SampleRatio == 0 {
		cfg.SampleRatio = 1
	}
	u, _ := url.Parse(cfg.Endpoint)
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(u.Host)}
	if u.Scheme == "http" {
		opts = append(opts, otlptracehttp.WithInsecure())
	}
	if p := strings.TrimSuffix(u.Path, "/"); p != "" {
		opts = append(opts, otlptracehttp.WithURLPath(p+"/v1/traces"))
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter for %s: %w", cfg.Endpoint, err)
	}
	attrs := []attribute.KeyValue{
		attribute.String("service.name", ServiceName),
		attribute.StringSlice("sextant.services", cfg.Services),
	}
	if cfg.Version != "" {
		attrs = append(attrs, attribute.String("service.version", cfg.Version))
	}
	sdk := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
		sdktrace.WithResource(resource.NewSchemaless(attrs...)),
	)
	if cfg.Logger != nil {
		cfg.Logger.Info("tracing: exporting spans over OTLP/HTTP", "endpoint", cfg.Endpoint, "sample_ratio", cfg.SampleRatio)
	}
	return &Tracing{provider: sdk, propagator: propagation.TraceContext{}, sdk: sdk}, nil
}

// On reports whether spans are exported.
func (t *Tracing) On() bool { return t.sdk != nil }

// Provider is the tracer provider (a no-op one when off).
func (t *Tracing) Provider() trace.TracerProvider { return t.provider }

// Propagator is the W3C trace context propagator, nil when off: callers
// skip extraction and injection altogether then.
func (t *Tracing) Propagator() propagation.TextMapPropagator { return t.propagator }

// Shutdown exports the spans not yet exported (within ctx) and stops.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t.sdk == nil {
		return nil
	}
	if err := t.sdk.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: shutdown: %w", err)
	}
	return nil
}
