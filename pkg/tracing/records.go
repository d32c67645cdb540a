package tracing

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/sextant-analytics/sextant/pkg/eventlog"
)

// InjectRecords adds the trace context of ctx (traceparent, tracestate)
// to the headers of msgs, so that their consumers can link to the span
// that appended them. Each record gets a new map (headers are shared
// between records, and with their producers). Nothing is done, nor
// allocated, when p is nil (tracing off) or ctx carries no span.
func InjectRecords(ctx context.Context, p propagation.TextMapPropagator, msgs []eventlog.Message) {
	if p == nil || !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	carrier := propagation.MapCarrier{}
	p.Inject(ctx, carrier)
	if len(carrier) == 0 {
		return
	}
	for i := range msgs {
		h := make(map[string]string, len(msgs[i].Headers)+len(carrier))
		for k, v := range msgs[i].Headers {
			h[k] = v
		}
		for k, v := range carrier {
			h[k] = v
		}
		msgs[i].Headers = h
	}
}

// MaxLinks bounds the links RecordLinks returns (the SDK's default limit
// of links per span).
const MaxLinks = 128

// RecordLinks returns links to the distinct spans whose trace context the
// headers of recs carry (at most MaxLinks): a batch of records holds many
// traces, so its consumer's span links to them instead of having one
// parent. It returns nil when p is nil (tracing off).
func RecordLinks(p propagation.TextMapPropagator, recs []eventlog.Record) []trace.Link {
	if p == nil {
		return nil
	}
	var links []trace.Link
	seen := map[trace.SpanID]bool{}
	for i := range recs {
		if len(links) == MaxLinks {
			break
		}
		h := recs[i].Headers
		if h["traceparent"] == "" {
			continue
		}
		sc := trace.SpanContextFromContext(p.Extract(context.Background(), propagation.MapCarrier(h)))
		if !sc.IsValid() || seen[sc.SpanID()] {
			continue
		}
		seen[sc.SpanID()] = true
		links = append(links, trace.Link{SpanContext: sc})
	}
	return links
}
