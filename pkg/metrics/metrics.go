// Package metrics holds the Prometheus collectors every Sextant process
// exposes at /metrics: ingest rate and produce latency (collect), consumer
// lag, flush time and applied events (projection), query latency and cache
// hit rate (insights).
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is one process's collectors, in a registry of its own.
type Metrics struct {
	Registry *prometheus.Registry

	// IngestEvents counts collected events by result: accepted, rejected
	// (invalid), throttled (rate limit) or failed (log unavailable).
	IngestEvents *prometheus.CounterVec
	// AppendSeconds is the time to append a batch durably.
	AppendSeconds prometheus.Histogram
	// ConsumerLag is the records of a partition not yet applied.
	ConsumerLag *prometheus.GaugeVec
	// Watermark is, per projection and partition, the receive time (Unix
	// seconds) of the newest event committed: time() minus it is how old
	// the newest data reports can show is (freshness, with traffic).
	Watermark *prometheus.GaugeVec
	// FlushSeconds is the time to commit a partition's checkpoint.
	FlushSeconds *prometheus.HistogramVec
	// Additions counts the additions checkpoints wrote (store rows).
	Additions *prometheus.CounterVec
	// BlocksWritten counts the hour and day blocks compactors wrote.
	BlocksWritten *prometheus.CounterVec
	// CompactedAdditions counts the additions compactors merged into
	// blocks.
	CompactedAdditions *prometheus.CounterVec
	// CompactionSeconds is the time of one compaction run over a shard.
	CompactionSeconds *prometheus.HistogramVec
	// PendingAdditions is the additions a compactor found waiting, by
	// projection, at its last run (summed over the shards it runs).
	PendingAdditions *prometheus.GaugeVec
	// ProjectedEvents counts records by outcome: applied, duplicate (an
	// event id seen before), excluded (a bot, by the projection's rules),
	// dead_letter (not projectable).
	ProjectedEvents *prometheus.CounterVec
	// QuerySeconds is report latency by method and cache outcome.
	QuerySeconds *prometheus.HistogramVec
	// CacheRequests counts cache look-ups by result: hit, miss, error.
	CacheRequests *prometheus.CounterVec
	// UpstreamRequests counts the gateway's forwarded calls by backend
	// service and gRPC code.
	UpstreamRequests *prometheus.CounterVec
	// GatewayResponses counts the answers the gateway gave its clients,
	// by route and HTTP status (server.Observe says what they are).
	GatewayResponses *prometheus.CounterVec
	// GatewaySeconds is the time the gateway took to answer, by route.
	GatewaySeconds *prometheus.HistogramVec
	// Authentications counts authenticated calls by how the principal was
	// learned: "key" (a registry lookup, cached or not) or "assertion" (the
	// gateway's signed principal, auth.Assertions).
	Authentications *prometheus.CounterVec
}

// New returns the collectors, registered with Go and process collectors.
func New() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		IngestEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sextant_ingest_events_total", Help: "Collected events by result.",
		}, []string{"result"}),
		AppendSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sextant_append_seconds", Help: "Time to append a batch to the event log durably.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		ConsumerLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sextant_consumer_lag_records", Help: "Records of a partition not yet applied by a projection.",
		}, []string{"projection", "partition"}),
		Watermark: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sextant_projection_watermark_seconds", Help: "Receive time (Unix seconds) of the newest event a projection committed, by partition.",
		}, []string{"projection", "partition"}),
		FlushSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sextant_projection_flush_seconds", Help: "Time to commit a partition checkpoint to the view store.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"projection"}),
		Additions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sextant_projection_additions_total", Help: "Additions (store rows of partial aggregates) written by projection checkpoints.",
		}, []string{"projection"}),
		BlocksWritten: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sextant_compaction_blocks_total", Help: "Hour and day blocks written by compactors.",
		}, []string{"projection"}),
		CompactedAdditions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sextant_compacted_additions_total", Help: "Additions merged into hour and day blocks by compactors.",
		}, []string{"projection"}),
		CompactionSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sextant_compaction_seconds", Help: "Time of one compaction run over a shard.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"projection"}),
		PendingAdditions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sextant_pending_additions", Help: "Additions waiting for compaction at the compactors' last runs in this process.",
		}, []string{"projection"}),
		ProjectedEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sextant_projected_events_total", Help: "Records consumed by projections, by outcome: applied, duplicate (an event id seen before), excluded (bots), dead_letter.",
		}, []string{"projection", "outcome"}),
		QuerySeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sextant_query_seconds", Help: "Report latency.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"method", "cache"}),
		CacheRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sextant_cache_requests_total", Help: "Report cache look-ups by result.",
		}, []string{"result"}),
		UpstreamRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sextant_gateway_upstream_requests_total", Help: "Calls the gateway forwarded, by service and code.",
		}, []string{"service", "code"}),
		GatewayResponses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sextant_gateway_responses_total", Help: "Answers the gateway gave its clients, by route and HTTP status (a gRPC answer counts under its code's HTTP status).",
		}, []string{"route", "status"}),
		GatewaySeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sextant_gateway_response_seconds", Help: "Time the gateway took to answer, by route (a stream: its whole life).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"route"}),
		Authentications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sextant_authentications_total", Help: "Calls whose API key was checked, by how: key (a registry lookup) or assertion (the gateway's signed principal).",
		}, []string{"by"}),
	}
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.IngestEvents, m.AppendSeconds, m.ConsumerLag, m.Watermark, m.FlushSeconds, m.Additions, m.BlocksWritten, m.CompactedAdditions, m.CompactionSeconds, m.PendingAdditions, m.ProjectedEvents, m.QuerySeconds,
		m.CacheRequests, m.UpstreamRequests, m.GatewayResponses, m.GatewaySeconds, m.Authentications)
	return m
}

// ObserveGateway counts an answer of the gateway to its clients: its route,
// HTTP status and time (server.Config.Observe).
func (m *Metrics) ObserveGateway(route string, status int, elapsed time.Duration) {
	m.GatewayResponses.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.GatewaySeconds.WithLabelValues(route).Observe(elapsed.Seconds())
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// RegistryCache exports what the property registry keeps in this
// process's memory: the keys and properties cached (stats), and an
// estimate of their bytes, read at every scrape.
func (m *Metrics) RegistryCache(stats func() (keys, properties int), bytes func() int) {
	m.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sextant_registry_cache_entries", Help: "Keys and properties the property registry caches in this process.",
		}, func() float64 { k, p := stats(); return float64(k + p) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sextant_registry_cache_bytes", Help: "Estimated bytes of the keys and properties the property registry caches in this process.",
		}, func() float64 { return float64(bytes()) }),
	)
}
