package main

import (
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/sextant-analytics/sextant/pkg/loadgen"
)

// Results is bench/results.json.
type Results struct {
	Schema          int                       `json:"schema"`
	Size            string                    `json:"size"`
	RunID           string                    `json:"runId"`
	Date            string                    `json:"date"`
	Commit          string                    `json:"commit"`
	Modified        *bool                     `json:"modified,omitempty"`
	Machine         Machine                   `json:"machine"`
	Plan            plan                      `json:"plan"`
	DurationSeconds float64                   `json:"durationSeconds"`
	Skipped         []string                  `json:"skipped,omitempty"`
	Metrics         []Metric                  `json:"metrics"`
	Backends        map[string]*BackendResult `json:"backends"`
	HLL             *HLLResult                `json:"hll,omitempty"`
}

// Metric is a headline figure with its baseline from the same run.
type Metric struct {
	Name     string    `json:"name"`
	Backend  string    `json:"backend,omitempty"`
	Value    float64   `json:"value"`
	Unit     string    `json:"unit"`
	Baseline *Baseline `json:"baseline,omitempty"`
	Target   string    `json:"target,omitempty"`
	Met      *bool     `json:"met,omitempty"`
	Note     string    `json:"note,omitempty"`
	// Goal names the row of the targets table the figure fills
	// (see goals); "" for the other figures.
	Goal string `json:"goal,omitempty"`
}

// Baseline is what a figure is compared with.
type Baseline struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

// BackendResult is everything measured on one deployment.
type BackendResult struct {
	Name string `json:"name"`
	// From names the run a backend's results were merged from (--merge),
	// when it is not the run of the file: run id, commit and date.
	From         string             `json:"from,omitempty"`
	Topic        string             `json:"topic,omitempty"`
	Keyspace     string             `json:"keyspace,omitempty"`
	SetupSeconds float64            `json:"setupSeconds"`
	StoredEvents int64              `json:"storedEvents"`
	Order        []string           `json:"order"`
	Phases       map[string]*Phase  `json:"phases"`
	PeakRSSMiB   map[string]float64 `json:"peakRssMiB,omitempty"`
	// PeakRSSAt is the processes' peak memory after each fill and after
	// the replay.
	PeakRSSAt []RSSSnapshot `json:"peakRssAt,omitempty"`
	// StoreSizes are the read model's and the log's bytes on disk after
	// the fills, and once compaction settled after the last.
	StoreSizes []StoreSize `json:"storeSizes,omitempty"`
	// The many-merchants properties, and the time to create them (one
	// `sextant property create --count`).
	ManyProperties   int     `json:"manyProperties,omitempty"`
	ManySetupSeconds float64 `json:"manySetupSeconds,omitempty"`
	// RegistryProperties were registered in RegistrySetupSeconds (plan
	// RegistryProperties); RegistryCacheBytes is what the registry kept
	// in each process's memory after the phase that used them.
	RegistryProperties   int                `json:"registryProperties,omitempty"`
	RegistrySetupSeconds float64            `json:"registrySetupSeconds,omitempty"`
	RegistryCacheBytes   map[string]float64 `json:"registryCacheBytes,omitempty"`
	Errors               []string           `json:"errors,omitempty"`
	Warnings             []string           `json:"warnings,omitempty"`
}

// Phase is one measurement.
type Phase struct {
	Name           string               `json:"name"`
	Kind           string               `json:"kind"`
	StoredBefore   int64                `json:"storedBefore"`
	Seconds        float64              `json:"seconds"`
	CatchUpSeconds float64              `json:"catchUpSeconds,omitempty"`
	Events         int64                `json:"events,omitempty"`
	Loadgen        *LoadgenResult       `json:"loadgen,omitempty"`
	RawProducer    *RawProducerResult   `json:"rawProducer,omitempty"`
	RawConsumer    *RawConsumerResult   `json:"rawConsumer,omitempty"`
	Queries        []QueryStats         `json:"queries,omitempty"`
	Replay         *ReplayResult        `json:"replay,omitempty"`
	Procs          map[string]ProcUsage `json:"procs"`
	// Store is what the projection process(es) wrote, from their metrics.
	Store *StoreDelta `json:"store,omitempty"`
	// CPU seconds over the phase: the load generator's, the harness's own
	// (raw Kafka clients, report queries), the whole machine's, and the
	// part of it no known process used.
	LoadgenCPUSeconds float64 `json:"loadgenCpuSeconds,omitempty"`
	HarnessCPUSeconds float64 `json:"harnessCpuSeconds"`
	MachineCPUSeconds float64 `json:"machineCpuSeconds"`
	OtherCPUSeconds   float64 `json:"otherCpuSeconds"`
	Warning           string  `json:"warning,omitempty"`
	Error             string  `json:"error,omitempty"`
}

// LoadgenResult is the part of `sextant loadgen --json` the harness uses.
type LoadgenResult struct {
	Mode             string          `json:"mode"`
	BatchSize        int             `json:"batchSize"`
	Concurrency      int             `json:"concurrency"`
	Connections      int             `json:"connections"`
	TargetRate       float64         `json:"targetRate"`
	ElapsedSeconds   float64         `json:"elapsedSeconds"`
	EventsAcked      int64           `json:"eventsAcked"`
	BatchesAcked     int64           `json:"batchesAcked"`
	EventsRejected   int64           `json:"eventsRejected"`
	EventsFailed     int64           `json:"eventsFailed"`
	Retries          int64           `json:"retries"`
	EventsPerSecond  float64         `json:"eventsPerSecond"`
	BatchesPerSecond float64         `json:"batchesPerSecond"`
	BatchAckLatency  loadgen.Summary `json:"batchAckLatency"`
	Freshness        *struct {
		loadgen.Summary
		TimedOut int64           `json:"timedOut"`
		Failed   int64           `json:"failed"`
		Report   string          `json:"report"`
		Query    loadgen.Summary `json:"queryLatency"`
	} `json:"freshness"`
	Errors []string `json:"errors"`

	PropertiesZipf        float64 `json:"propertiesZipf,omitempty"`
	PropertiesWithTraffic int     `json:"propertiesWithTraffic,omitempty"`
}

func boolp(b bool) *bool { return &b }

func (b *BackendResult) phase(name string) *Phase {
	if b == nil {
		return nil
	}
	p := b.Phases[name]
	if p == nil || p.Error != "" {
		return nil
	}
	return p
}

func (b *BackendResult) eps(name string) float64 {
	if p := b.phase(name); p != nil && p.Loadgen != nil {
		return p.Loadgen.EventsPerSecond
	}
	return 0
}

// queryPhases returns the backend's query phases in order: through the
// gateway or the server clients call (direct false), or straight to the
// insights service (direct true).
func (b *BackendResult) queryPhases(direct bool) []*Phase {
	var out []*Phase
	for _, name := range b.Order {
		if p := b.phase(name); p != nil && p.Kind == "query" && len(p.Queries) > 0 && strings.HasPrefix(name, "query_direct_") == direct {
			out = append(out, p)
		}
	}
	return out
}

func worstP99(p *Phase, cached bool) (float64, string) {
	var v float64
	var which string
	for _, q := range p.Queries {
		x := q.Uncached.P99Ms
		if cached {
			x = q.Cached.P99Ms
		}
		if x > v {
			v, which = x, q.Query
		}
	}
	return v, which
}

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

// headline computes the figures of the targets.
func headline(r *Results) []Metric {
	var out []Metric
	add := func(m Metric) { out = append(out, m) }
	for _, name := range []string{"distributed", "embedded"} {
		b := r.Backends[name]
		if b == nil {
			continue
		}
		b500, b25 := b.eps("ingest_grpc_stream_b500"), b.eps("ingest_grpc_stream_b25")
		best, bestName := b500, "batches of 500"
		if b25 > best {
			best, bestName = b25, "batches of 25"
		}
		if best > 0 {
			m := Metric{Name: "ingest_grpc_stream_events_per_s", Backend: name, Value: round(best, 0), Unit: "events/s",
				Target: ">= 100000", Met: boolp(best >= 100_000),
				Note: fmt.Sprintf("durable acks; best of batches of 500 (%.0f) and of 25 (%.0f): %s", b500, b25, bestName)}
			if name == "distributed" {
				m.Note += "; through the gateway, projection stopped (write path only)"
			} else {
				m.Goal = "ingest" // the embedded log has no producer baseline
				m.Note += "; the projection runs in the same process"
			}
			if rp := b.phase("raw_producer"); rp != nil && rp.RawProducer != nil {
				raw := rp.RawProducer.EventsPerSecond
				m.Baseline = &Baseline{Name: "raw Sarama async producer, same events and settings", Value: round(raw, 0), Unit: "events/s"}
				add(m)
				ratio := best / raw
				add(Metric{Name: "ingest_vs_raw_producer_ratio", Backend: name, Value: round(ratio, 3), Unit: "x",
					Baseline: m.Baseline, Target: ">= 0.7", Met: boolp(ratio >= 0.7), Goal: "ingest",
					Note: fmt.Sprintf("%s events/s through the gateway (%s) against the raw producer's %s", thousands(best), bestName, thousands(raw))})
			} else {
				add(m)
			}
		}
		if p := b.phase("ingest_grpc_stream_b500_direct"); p != nil && p.Loadgen != nil {
			add(Metric{Name: "ingest_grpc_stream_direct_events_per_s", Backend: name, Value: round(p.Loadgen.EventsPerSecond, 0), Unit: "events/s",
				Note: "batches of 500 straight to the collect service (no gateway), projection stopped"})
		}
		for _, ph := range b.Order {
			if p := b.phase(ph); p != nil && p.Kind == "fill" && p.Loadgen != nil && p.Loadgen.EventsAcked >= 50_000 {
				add(Metric{Name: "ingest_sustained_events_per_s", Backend: name, Value: round(p.Loadgen.EventsPerSecond, 0), Unit: "events/s",
					Note: fmt.Sprintf("%s: %d events, batches of 500, with the projection running on the same cores; caught up %.1fs after the last ack", ph, p.Loadgen.EventsAcked, p.CatchUpSeconds)})
			}
		}
		if p := b.phase("projection_catch_up"); p != nil && p.CatchUpSeconds > 0 {
			add(Metric{Name: "projection_events_per_s", Backend: name, Value: round(float64(p.Events)/p.CatchUpSeconds, 0), Unit: "events/s",
				Note: fmt.Sprintf("traffic/v1 catching up with the %d events of the ingest phases, from the service's start (%.1fs)", p.Events, p.CatchUpSeconds)})
		}
		if p := b.phase("ingest_rest_single"); p != nil && p.Loadgen != nil {
			p99 := p.Loadgen.BatchAckLatency.P99Ms
			m := Metric{Name: "ingest_rest_single_req_per_s", Backend: name, Value: round(p.Loadgen.BatchesPerSecond, 0), Unit: "requests/s",
				Target: ">= 10000 with p99 <= 20 ms", Met: boolp(p.Loadgen.BatchesPerSecond >= 10_000 && p99 <= 20), Goal: "rest",
				Note: fmt.Sprintf("one event per POST /v1/collect, %d at once; p99 %s ms", p.Loadgen.Concurrency, f0(p99))}
			if e := b.eps("ingest_rest_b25"); e > 0 {
				m.Baseline = &Baseline{Name: "REST, batches of 25 (events/s)", Value: round(e, 0), Unit: "events/s"}
			}
			add(m)
		}
		if p := b.phase("freshness_20k"); p != nil && p.Loadgen != nil && p.Loadgen.Freshness != nil && p.Loadgen.Freshness.Count > 0 {
			f := p.Loadgen.Freshness
			var base *Baseline
			if q := b.phase("freshness_max"); q != nil && q.Loadgen != nil && q.Loadgen.Freshness != nil && q.Loadgen.Freshness.Count > 0 {
				base = &Baseline{Name: fmt.Sprintf("p99 near the maximum (%.0f events/s)", q.Loadgen.EventsPerSecond), Value: q.Loadgen.Freshness.P99Ms, Unit: "ms"}
			}
			note := fmt.Sprintf("%d probes at %.0f events/s background", f.Count, p.Loadgen.EventsPerSecond)
			add(Metric{Name: "freshness_p50_ms", Backend: name, Value: f.P50Ms, Unit: "ms", Note: note})
			add(Metric{Name: "freshness_p99_ms", Backend: name, Value: f.P99Ms, Unit: "ms", Target: "<= 1000 at 20k events/s",
				Met: boolp(f.P99Ms <= 1000 && f.TimedOut == 0), Baseline: base, Note: note, Goal: "freshness"})
		}
		if qs := b.queryPhases(false); len(qs) > 0 {
			last := qs[len(qs)-1]
			for i, q := range qs {
				unc, uq := worstP99(q, false)
				cac, _ := worstP99(q, true)
				add(Metric{Name: "query_uncached_p99_ms", Backend: name, Value: unc, Unit: "ms", Target: "<= 20",
					Met: boolp(unc <= 20), Baseline: &Baseline{Name: "the same reports cached", Value: cac, Unit: "ms"},
					Note: fmt.Sprintf("worst of the three reports (%s) at %s stored events", uq, human(q.StoredBefore)), Goal: fmt.Sprintf("query:%d", i)})
			}
			unc, _ := worstP99(last, false)
			cac, cq := worstP99(last, true)
			add(Metric{Name: "query_cached_p99_ms", Backend: name, Value: cac, Unit: "ms", Target: "<= 2",
				Met: boolp(cac <= 2), Note: fmt.Sprintf("worst of the three reports (%s) at %s stored events", cq, human(last.StoredBefore)), Goal: "cached"})
			if len(qs) > 1 {
				first := qs[0]
				u0, _ := worstP99(first, false)
				if u0 > 0 {
					g := unc / u0
					add(Metric{Name: "query_uncached_p99_growth", Backend: name, Value: round(g, 2), Unit: "x", Target: "flat (<= 1.5)",
						Met: boolp(g <= 1.5), Goal: "query_growth",
						Baseline: &Baseline{Name: fmt.Sprintf("uncached p99 at %s events", human(first.StoredBefore)), Value: u0, Unit: "ms"},
						Note:     fmt.Sprintf("from %s to %s stored events", human(first.StoredBefore), human(last.StoredBefore))})
				}
			}
		}
		if qs := b.queryPhases(true); len(qs) > 0 {
			last := qs[len(qs)-1]
			unc, uq := worstP99(last, false)
			cac, cq := worstP99(last, true)
			add(Metric{Name: "query_uncached_p99_ms", Backend: name + ", insights direct", Value: unc, Unit: "ms", Target: "<= 20",
				Met: boolp(unc <= 20), Baseline: &Baseline{Name: "the same reports cached", Value: cac, Unit: "ms"},
				Note: fmt.Sprintf("without the gateway; worst of the three reports (%s) at %s stored events", uq, human(last.StoredBefore))})
			add(Metric{Name: "query_cached_p99_ms", Backend: name + ", insights direct", Value: cac, Unit: "ms", Target: "<= 2",
				Met: boolp(cac <= 2), Note: fmt.Sprintf("without the gateway; worst of the three reports (%s)", cq)})
		}
		if p := b.phase("replay_v2"); p != nil && p.Replay != nil {
			m := Metric{Name: "replay_events_per_s", Backend: name, Value: round(p.Replay.EventsPerSecond, 0), Unit: "events/s",
				Target: ">= 150000", Met: boolp(p.Replay.EventsPerSecond >= 150_000), Goal: "replay",
				Note: fmt.Sprintf("traffic/v2 from offset 0, %s records in %.1fs (steady %s/s)", thousands(float64(p.Replay.Records)), p.Replay.Seconds, thousands(p.Replay.SteadyEventsPerSecond))}
			if c := b.phase("raw_consumer_decode"); c != nil && c.RawConsumer != nil && c.RawConsumer.EventsPerSecond > 0 {
				base := &Baseline{Name: "raw Sarama consumer + protobuf decode, same topic", Value: round(c.RawConsumer.EventsPerSecond, 0), Unit: "events/s"}
				m.Baseline = base
				ratio := p.Replay.EventsPerSecond / c.RawConsumer.EventsPerSecond
				add(m)
				add(Metric{Name: "replay_vs_raw_consumer_decode_ratio", Backend: name, Value: round(ratio, 3), Unit: "x", Target: "shown",
					Baseline: base, Goal: "replay_ratio", Note: fmt.Sprintf("raw consumer + decode: %s events/s", thousands(c.RawConsumer.EventsPerSecond))})
			} else {
				add(m)
			}
			if c := b.phase("raw_consumer"); c != nil && c.RawConsumer != nil && c.RawConsumer.EventsPerSecond > 0 {
				base := &Baseline{Name: "raw Sarama consumer, same topic", Value: round(c.RawConsumer.EventsPerSecond, 0), Unit: "events/s"}
				ratio := p.Replay.EventsPerSecond / c.RawConsumer.EventsPerSecond
				add(Metric{Name: "replay_vs_raw_consumer_ratio", Backend: name, Value: round(ratio, 3), Unit: "x", Target: ">= 0.5",
					Met: boolp(ratio >= 0.5), Baseline: base})
			}
			if cpu, procs := replayCPU(name, p); cpu > 0 && p.Replay.Records > 0 {
				v := cpu / float64(p.Replay.Records) * 1e6
				add(Metric{Name: "replay_projection_store_cpu_s_per_1M", Backend: name, Value: round(v, 2), Unit: "CPU-s/1M events",
					Target: "<= 13", Met: boolp(v <= 13), Goal: "replay_cpu",
					Note: fmt.Sprintf("%s: %.1f CPU-s over the replay of %s records", procs, cpu, thousands(float64(p.Replay.Records)))})
			}
		}
		if m, ok := rssMetric(name, b); ok {
			add(m)
		}
		if s, ok := lastStoreSize(b); ok {
			add(Metric{Name: "store_bytes_per_event", Backend: name, Value: round(s.viewPerEvent(), 1), Unit: "bytes/event", Target: "lower than today",
				Goal: "bytes", Note: storeSizeNote(b)})
			add(Metric{Name: "log_bytes_per_event", Backend: name, Value: round(s.logPerEvent(), 1), Unit: "bytes/event", Target: "reference",
				Goal: "bytes_log", Note: fmt.Sprintf("%s, %s events", s.When, human(s.StoredEvents))})
		}
		for _, m := range manyMetrics(name, b) {
			add(m)
		}
		for _, m := range registryMetrics(name, b) {
			add(m)
		}
	}
	if r.HLL != nil {
		add(Metric{Name: "hll_users_error_pct", Value: round(r.HLL.MaxAbsErrorPct, 3), Unit: "%", Target: "<= 2",
			Met:  boolp(r.HLL.MaxAbsErrorPct <= 2),
			Note: fmt.Sprintf("worst of %d trials on %d distinct users (one sketch, and 720 merged hour cells); mean |error| %.3f%%", r.HLL.Trials, r.HLL.Users, r.HLL.MeanAbsErrorPct)})
	}
	return out
}

// The markers around a run size's tables in BENCHMARKS.md.
func markers(size string) (begin, end string) {
	return "<!-- bench:" + size + ":begin (written by bench/run.sh; edit outside the markers) -->", "<!-- bench:" + size + ":end -->"
}

func f0(x float64) string {
	if x >= 100 {
		return fmt.Sprintf("%.0f", x)
	}
	if x >= 10 {
		return fmt.Sprintf("%.1f", x)
	}
	return fmt.Sprintf("%.2f", x)
}

func thousands(x float64) string {
	s := fmt.Sprintf("%.0f", x)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func fmtValue(v float64, unit string) string {
	switch unit {
	case "events/s", "requests/s":
		return thousands(v) + " " + unit
	case "x":
		return fmt.Sprintf("%.2f×", v)
	case "%":
		return fmt.Sprintf("%.2f %%", v)
	}
	return f0(v) + " " + unit
}

// renderHeadline renders what BENCHMARKS.md shows of a run: which run
// it was and its figures against the targets.
func renderHeadline(r *Results, tables string) string {
	var b strings.Builder
	renderRun(&b, r)
	renderTargets(&b, r)
	fmt.Fprintf(&b, "Every table of this run (ingest, freshness, reports, replay, bytes, many merchants, CPU and memory by phase): [`%s`](%s).\n\n", tables, tables)
	return b.String()
}

// renderMarkdown renders every table of the results (bench/results*.md).
func renderMarkdown(r *Results) string {
	var b strings.Builder
	renderRun(&b, r)
	renderTargets(&b, r)
	renderDetails(&b, r)
	return b.String()
}

// renderRun says which run the tables are of, and on what.
func renderRun(b *strings.Builder, r *Results) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	commit := r.Commit
	if len(commit) > 12 {
		commit = commit[:12]
	}
	switch {
	case r.Modified == nil:
		commit += " (plus any uncommitted changes)"
	case *r.Modified:
		commit += " (with uncommitted changes)"
	}
	w("Run `%s` (`./bench/run.sh%s`), %s, commit %s, %.0f s in all.\n", r.RunID, map[string]string{"quick": " --quick", "full": " --full"}[r.Size], r.Date, commit, r.DurationSeconds)
	w("Machine: %d cores (%s), %.1f GiB memory, Linux %s, %s; Kafka, Cassandra and Redis on the same machine.\n\n", r.Machine.Cores, r.Machine.CPU, r.Machine.MemoryGiB, r.Machine.Kernel, r.Machine.Go)
	if v := r.Plan.StartVersion; v != "" {
		w("The stores start with traffic/%s: ingest feeds it and reports read it.\n\n", v)
	}
	for _, s := range r.Skipped {
		w("Skipped: %s.\n\n", s)
	}
	for _, name := range slices.Sorted(maps.Keys(r.Backends)) {
		if from := r.Backends[name].From; from != "" {
			w("The %s figures are from run %s (merged with `--merge`), not from this one.\n\n", name, from)
		}
	}

}

// renderTargets renders each headline figure against its target, the two
// backends side by side.
func renderTargets(b *strings.Builder, r *Results) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	names := []string{"distributed", "embedded"}
	w("### The issue's targets\n\n")
	w("Each figure of this run against its target, distributed (Kafka, Cassandra, Redis; clients through the gateway) and embedded (one process, Pebble) side by side.\n\n")
	w("| Target | Goal | distributed | Met | embedded | Met |\n|---|---|---|---|---|---|\n")
	for _, g := range goals(r) {
		w("| %s | %s |", g.label, g.target)
		for _, bn := range names {
			var m *Metric
			for i := range r.Metrics {
				if r.Metrics[i].Goal == g.goal && r.Metrics[i].Backend == bn {
					m = &r.Metrics[i]
				}
			}
			if m == nil {
				w(" — | |")
				continue
			}
			val := fmtValue(m.Value, m.Unit)
			if m.Note != "" {
				val += " <br><sub>" + m.Note + "</sub>"
			}
			met := "—"
			if m.Met != nil {
				met = map[bool]string{true: "met", false: "**missed**"}[*m.Met]
			}
			w(" %s | %s |", val, met)
		}
		w("\n")
	}
	w("\n")
}

// renderDetails renders the other figures and the tables of every phase.
func renderDetails(b *strings.Builder, r *Results) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	names := []string{"distributed", "embedded"}
	w("### Other figures\n\n")
	w("| Figure | Backend | Value | Baseline (same run) | Target | Met |\n|---|---|---|---|---|---|\n")
	for _, m := range r.Metrics {
		if m.Goal != "" {
			continue
		}
		base := ""
		if m.Baseline != nil {
			base = m.Baseline.Name + ": " + fmtValue(m.Baseline.Value, m.Baseline.Unit)
		}
		met := ""
		if m.Met != nil {
			met = map[bool]string{true: "yes", false: "**no**"}[*m.Met]
		}
		val := fmtValue(m.Value, m.Unit)
		if m.Note != "" {
			val += " <br><sub>" + m.Note + "</sub>"
		}
		w("| `%s` | %s | %s | %s | %s | %s |\n", m.Name, m.Backend, val, base, m.Target, met)
	}
	w("\n")

	w("### Ingest\n\nEvery acknowledgement is durable (Kafka `acks=all`, or the embedded log's fsync). Latency is per batch, from send to acknowledgement.\n\n")
	w("| Backend | Phase | Mode | Batch | Concurrency | Events | Events/s | Requests/s | Ack p50 | p90 | p99 | max | Catch-up after |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, bn := range names {
		br := r.Backends[bn]
		if br == nil {
			continue
		}
		for _, name := range br.Order {
			p := br.Phases[name]
			if p.Kind == "baseline" && p.RawProducer != nil {
				rp := p.RawProducer
				w("| %s | %s | raw Sarama producer | — | async | %s | %s | — | — | — | — | — | — |\n", bn, name, thousands(float64(rp.Events)), thousands(rp.EventsPerSecond))
				continue
			}
			if (p.Kind != "ingest" && p.Kind != "fill") || p.Loadgen == nil {
				continue
			}
			l := p.Loadgen
			w("| %s | %s | %s | %d | %d | %s | %s | %s | %s ms | %s ms | %s ms | %s ms | %.1f s |\n", bn, name, l.Mode, l.BatchSize, l.Concurrency,
				thousands(float64(l.EventsAcked)), thousands(l.EventsPerSecond), thousands(l.BatchesPerSecond),
				f0(l.BatchAckLatency.P50Ms), f0(l.BatchAckLatency.P90Ms), f0(l.BatchAckLatency.P99Ms), f0(l.BatchAckLatency.MaxMs), p.CatchUpSeconds)
		}
	}
	w("\n")

	w("### Freshness\n\nFrom the collect acknowledgement of a marker event (a unique `pagePath`, sent every 250 ms to a fifth property that receives nothing else) to the first report that shows it, polled every 5 ms with an EXACT filter on the path: RunRealtimeReport over the last two minutes. The probes' property keeps the polls cheap (their latency is shown), so the figure is the pipeline's rather than the query's, while the markers share the log partitions and the projector with the load. The background traffic (four properties) is live: no event times. The projection flushes every 100 ms (`--flush-interval`).\n\n")
	w("| Backend | Background load | Achieved events/s | Probes | p50 | p90 | p99 | max | Timed out | Poll p50 / p99 |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, bn := range names {
		br := r.Backends[bn]
		if br == nil {
			continue
		}
		for _, name := range []string{"freshness_20k", "freshness_max"} {
			p := br.phase(name)
			if p == nil || p.Loadgen == nil || p.Loadgen.Freshness == nil {
				continue
			}
			l, f := p.Loadgen, p.Loadgen.Freshness
			load := "flat out (gRPC stream, batches of 500)"
			if l.TargetRate > 0 {
				load = fmt.Sprintf("%s events/s (gRPC stream, batches of 25)", thousands(l.TargetRate))
			}
			w("| %s | %s | %s | %d | %s ms | %s ms | %s ms | %s ms | %d | %s / %s ms |\n", bn, load, thousands(l.EventsPerSecond), f.Count, f0(f.P50Ms), f0(f.P90Ms), f0(f.P99Ms), f0(f.MaxMs), f.TimedOut, f0(f.Query.P50Ms), f0(f.Query.P99Ms))
		}
	}
	w("\n")

	w("### Reports\n\nClient-side latency over gRPC (through the gateway in distributed mode) of the first property's reports, with no write load. *Uncached*: every call has a new cache key (a new date-range name, which changes nothing else), so it reads the cells; *cached*: one key, after a first call. The store holds the fills' events, spread over the last 70 hours (Sextant accepts events up to 72 h old), and the ingest phases', spread over the last 2 hours (so at 1M stored events, 90 %% of them are in the last 2 hours of the three days the 30- and 7-day reports read); the first property holds a quarter of them.\n\n")
	w("| Backend | Via | Report | Stored events | Rows | Uncached p50 | p90 | p99 | max | Cached p50 | p99 | max |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, bn := range names {
		br := r.Backends[bn]
		if br == nil {
			continue
		}
		for _, direct := range []bool{false, true} {
			via := map[string]string{"distributed": "gateway", "embedded": "server"}[bn]
			if direct {
				via = "insights (direct)"
			}
			for _, p := range br.queryPhases(direct) {
				for _, q := range p.Queries {
					w("| %s | %s | %s | %s | %d | %s ms | %s ms | %s ms | %s ms | %s ms | %s ms | %s ms |\n", bn, via, q.Query, human(q.StoredEvents), q.Rows,
						f0(q.Uncached.P50Ms), f0(q.Uncached.P90Ms), f0(q.Uncached.P99Ms), f0(q.Uncached.MaxMs), f0(q.Cached.P50Ms), f0(q.Cached.P99Ms), f0(q.Cached.MaxMs))
				}
			}
		}
	}
	w("\n")

	w("### Replay\n\n`traffic/v2` rebuilt from offset 0 (StartReplay, then GetReplay polled until no lag), against raw Sarama consumers reading the same topic's partitions in parallel (with `pkg/kafkalog`'s consumer settings).\n\n")
	w("*CPU-s/1M*: the CPU seconds of the projection process and Cassandra (embedded: the one process) over the replay, per million records.\n\n")
	w("| Backend | What | Records | Seconds | Events/s | ÷ raw consumer + decode | CPU-s/1M (projection + store) |\n|---|---|---|---|---|---|---|\n")
	for _, bn := range names {
		br := r.Backends[bn]
		if br == nil {
			continue
		}
		if p := br.phase("replay_v2"); p != nil && p.Replay != nil {
			rp := p.Replay
			ratio, cpu := "—", "—"
			if c := br.phase("raw_consumer_decode"); c != nil && c.RawConsumer != nil && c.RawConsumer.EventsPerSecond > 0 {
				ratio = fmt.Sprintf("%.2f×", rp.EventsPerSecond/c.RawConsumer.EventsPerSecond)
			}
			if c, _ := replayCPU(bn, p); c > 0 && rp.Records > 0 {
				cpu = f0(c / float64(rp.Records) * 1e6)
			}
			w("| %s | replay traffic/v2 (from StartReplay) | %s | %.1f | %s | %s | %s |\n", bn, thousands(float64(rp.Records)), rp.Seconds, thousands(rp.EventsPerSecond), ratio, cpu)
			w("| %s | replay traffic/v2 (steady, from the first progress) | | | %s | | |\n", bn, thousands(rp.SteadyEventsPerSecond))
		}
		for _, name := range []string{"raw_consumer", "raw_consumer_decode"} {
			if p := br.phase(name); p != nil && p.RawConsumer != nil {
				c := p.RawConsumer
				what := "raw Sarama consumer"
				if c.Decoded {
					what += " + protobuf decode"
				}
				w("| %s | %s | %s | %.1f | %s | | |\n", bn, what, thousands(float64(c.Events)), c.Seconds, thousands(c.EventsPerSecond))
			}
		}
	}
	w("\n")
	renderStoreSizes(w, r, names)
	renderMany(w, r, names)

	w("### CPU and memory\n\nCPU seconds per million acknowledged events, from `/proc/<pid>/stat` (utime + stime) over the phase, which includes waiting for the projection to catch up (the distributed ingest phases ran with the projection stopped: `projection_catch_up` has its cost); *unattributed* is the machine's user and system time that none of these processes used (kernel threads: disk writeback, networking; anything else running); peak resident memory (`VmHWM`) over the whole run and the largest `VmRSS` seen during the phase (sampled every 250 ms).\n\n")
	for _, bn := range names {
		br := r.Backends[bn]
		if br == nil {
			continue
		}
		procs := []string{}
		for n := range br.PeakRSSMiB {
			procs = append(procs, n)
		}
		order := []string{"gateway", "collect", "projection", "insights", "sextant", "kafka", "cassandra", "redis"}
		slices.SortFunc(procs, func(a, b string) int { return slices.Index(order, a) - slices.Index(order, b) })
		if len(procs) == 0 {
			continue
		}
		w("%s:\n\n| Phase | Events | ", bn)
		for _, p := range procs {
			w("%s CPU s/1M | ", p)
		}
		w("all CPU s/1M | loadgen CPU s/1M | unattributed CPU s |\n|---|---|")
		for range procs {
			w("---|")
		}
		w("---|---|---|\n")
		for _, name := range br.Order {
			p := br.Phases[name]
			if p.Events <= 0 || p.Kind == "baseline" || p.Kind == "query" || p.Kind == "replay" {
				continue
			}
			w("| %s | %s | ", name, thousands(float64(p.Events)))
			var all float64
			for _, pn := range procs {
				u := p.Procs[pn]
				all += u.CPUSeconds
				w("%s | ", f0(u.CPUSeconds/float64(p.Events)*1e6))
			}
			w("%s | %s | %s |\n", f0(all/float64(p.Events)*1e6), f0(p.LoadgenCPUSeconds/float64(p.Events)*1e6), f0(p.OtherCPUSeconds))
		}
		w("\n| Process | Peak RSS (run) | Max RSS during ingest b25 | Max RSS during queries |\n|---|---|---|---|\n")
		qs := br.queryPhases(false)
		for _, pn := range procs {
			during := "—"
			if p := br.phase("ingest_grpc_stream_b25"); p != nil {
				if u, ok := p.Procs[pn]; ok {
					during = fmt.Sprintf("%.0f MiB", u.RSSMaxMiB)
				} else {
					during = "stopped"
				}
			}
			q := "—"
			if len(qs) > 0 {
				if u, ok := qs[len(qs)-1].Procs[pn]; ok {
					q = fmt.Sprintf("%.0f MiB", u.RSSMaxMiB)
				}
			}
			w("| %s | %.0f MiB | %s | %s |\n", pn, br.PeakRSSMiB[pn], during, q)
		}
		w("\n")
		proc := projectionProc(bn)
		w("The %s process's memory as the store grows: the largest RSS sampled during each fill, the replay and the many-merchants phases, and its peak (VmHWM, since its start) after them.\n\n| Phase | Stored events after | Largest RSS during | Peak RSS after |\n|---|---|---|---|\n", proc)
		for _, name := range br.Order {
			p := br.phase(name)
			if p == nil || (p.Kind != "fill" && p.Kind != "replay" && p.Kind != "many") {
				continue
			}
			u, ok := p.Procs[proc]
			if !ok {
				continue
			}
			hwm := "—"
			for _, snap := range br.PeakRSSAt {
				if snap.When == "after "+name {
					if v, ok := snap.PeakMiB[proc]; ok {
						hwm = fmt.Sprintf("%.0f MiB", v)
					}
				}
			}
			w("| %s | %s | %.0f MiB | %s |\n", name, thousands(float64(p.StoredBefore+p.Events)), u.RSSMaxMiB, hwm)
		}
		w("\n")
	}
	if r.HLL != nil {
		w("### Users sketch\n\n%d distinct client ids hashed as the projection hashes them, in one sketch (p = 14) and spread over 720 hour cells then merged: errors %v %% (one sketch) and %v %% (merged); worst |error| %.3f %%.\n\n",
			r.HLL.Users, r.HLL.SingleErrorsPct, r.HLL.MergedErrorsPct, r.HLL.MaxAbsErrorPct)
	}
	for _, bn := range names {
		if br := r.Backends[bn]; br != nil && len(br.Errors) > 0 {
			w("Errors (%s): %s\n\n", bn, strings.Join(br.Errors, "; "))
		}
		if br := r.Backends[bn]; br != nil && len(br.Warnings) > 0 {
			w("Warnings (%s): %s\n\n", bn, strings.Join(br.Warnings, "; "))
		}
	}
}

// spliceMarkdown replaces the text between the size's markers in path (or
// appends the markers and text when they are missing).
func spliceMarkdown(path, size, tables string) error {
	beginMarker, endMarker := markers(size)
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	s := string(b)
	block := beginMarker + "\n\n" + tables + endMarker
	i, j := strings.Index(s, beginMarker), strings.Index(s, endMarker)
	if i >= 0 && j > i {
		s = s[:i] + block + s[j+len(endMarker):]
	} else {
		if s != "" && !strings.HasSuffix(s, "\n\n") {
			s += "\n"
		}
		s += block + "\n"
	}
	return os.WriteFile(path, []byte(s), 0o644)
}

func summaryLines(r *Results) string {
	var b strings.Builder
	for _, m := range r.Metrics {
		met := ""
		if m.Met != nil {
			met = map[bool]string{true: "  [target met]", false: "  [target NOT met: " + m.Target + "]"}[*m.Met]
		}
		be := m.Backend
		if be != "" {
			be = " (" + be + ")"
		}
		fmt.Fprintf(&b, "%-34s %s%s%s\n", m.Name+be, fmtValue(m.Value, m.Unit), met, "")
	}
	return strings.TrimRight(b.String(), "\n")
}

// projectionProc is the process that projects: the projection service,
// or the one embedded process.
func projectionProc(backend string) string {
	if backend == "embedded" {
		return "sextant"
	}
	return "projection"
}

// replayCPU is the CPU seconds the projection and the store used during
// the replay phase, and what they are.
func replayCPU(backend string, p *Phase) (float64, string) {
	if backend == "embedded" {
		return p.Procs["sextant"].CPUSeconds, "the sextant process (projection and Pebble; collect and insights idle)"
	}
	return p.Procs["projection"].CPUSeconds + p.Procs["cassandra"].CPUSeconds, "projection + Cassandra"
}

// rssMetric is the projection process's largest resident memory during
// the fills and the replay (sampled every 250 ms), with its growth from
// the first fill to the last.
func rssMetric(backend string, b *BackendResult) (Metric, bool) {
	proc := projectionProc(backend)
	var peak float64
	var parts []string
	var fills []float64
	for _, name := range b.Order {
		p := b.phase(name)
		if p == nil || (p.Kind != "fill" && p.Kind != "replay") {
			continue
		}
		u, ok := p.Procs[proc]
		if !ok {
			continue
		}
		peak = max(peak, u.RSSMaxMiB)
		parts = append(parts, fmt.Sprintf("%s %.0f", name, u.RSSMaxMiB))
		if p.Kind == "fill" {
			fills = append(fills, u.RSSMaxMiB)
		}
	}
	if peak == 0 {
		return Metric{}, false
	}
	met := peak <= 1024
	note := fmt.Sprintf("largest RSS of %s per phase (MiB): %s", proc, strings.Join(parts, ", "))
	if len(fills) > 1 && fills[0] > 0 {
		g := fills[len(fills)-1] / fills[0]
		met = met && g <= 1.5
		note += fmt.Sprintf("; last fill / first %.2f×", g)
	}
	return Metric{Name: "projection_peak_rss_mib", Backend: backend, Value: round(peak, 0), Unit: "MiB", Target: "<= 1024, flat (last fill / first <= 1.5)",
		Met: boolp(met), Goal: "rss", Note: note}, true
}

// lastStoreSize is the store's size once compaction settled after the
// last fill, else the latest measured.
func lastStoreSize(b *BackendResult) (StoreSize, bool) {
	var out StoreSize
	ok := false
	for _, s := range b.StoreSizes {
		if s.Error == "" && s.StoredEvents > 0 {
			out, ok = s, true
		}
	}
	return out, ok
}

func storeSizeNote(b *BackendResult) string {
	var parts []string
	for _, s := range b.StoreSizes {
		if s.Error != "" || s.StoredEvents <= 0 {
			continue
		}
		p := fmt.Sprintf("%s (%s events): %.0f", s.When, human(s.StoredEvents), s.viewPerEvent())
		if s.Pending >= 0 {
			p += fmt.Sprintf(", %.0f additions pending", s.Pending)
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
}

// manyWorstP99 is the worst uncached p99 of the many-merchants reports
// whose picker is named by (in parentheses).
func manyWorstP99(p *Phase, by string) (float64, string) {
	var v float64
	var which string
	for _, q := range p.Queries {
		if strings.HasSuffix(q.Query, "("+by+")") && q.Uncached.P99Ms > v {
			v, which = q.Uncached.P99Ms, q.Query
		}
	}
	return v, which
}

// lastFill is the backend's last fill phase.
func lastFill(b *BackendResult) *Phase {
	var out *Phase
	for _, name := range b.Order {
		if p := b.phase(name); p != nil && p.Kind == "fill" {
			out = p
		}
	}
	return out
}

// registryMetrics compare authenticated collect over the registered
// properties with the same calls to 4 properties: each call to a property
// drawn uniformly (so that keys are looked up and mostly not cached: the
// worst case), and drawn by a Zipf law of s = 1 (merchants' traffic, a few
// large and many small).
func registryMetrics(backend string, b *BackendResult) []Metric {
	four := b.eps("ingest_grpc_unary_b25")
	var mem []string
	for _, name := range slices.Sorted(maps.Keys(b.RegistryCacheBytes)) {
		mem = append(mem, fmt.Sprintf("%s %.1f MiB", name, b.RegistryCacheBytes[name]/(1<<20)))
	}
	var out []Metric
	for _, v := range []struct{ phase, name, goal, how string }{
		{"ingest_grpc_unary_b25_registry", "registry_collect_ratio", "registry", "drawn at random"},
		{"ingest_grpc_unary_b25_registry_zipf", "registry_collect_ratio_zipf", "registry_zipf", "drawn by a Zipf law (s = 1)"},
	} {
		p := b.phase(v.phase)
		if p == nil || p.Loadgen == nil || four == 0 {
			continue
		}
		reg := p.Loadgen.EventsPerSecond
		ratio := reg / four
		note := fmt.Sprintf("%s events/s in unary calls of 25 events, each to one of %s more registered properties %s (created in %.0f s), %s of them got traffic",
			thousands(reg), thousands(float64(b.RegistryProperties)), v.how, b.RegistrySetupSeconds, thousands(float64(p.Loadgen.PropertiesWithTraffic)))
		if v.goal == "registry" && len(mem) > 0 {
			note += "; registry cache after it: " + strings.Join(mem, ", ")
		}
		out = append(out, Metric{Name: v.name, Backend: backend, Value: round(ratio, 2), Unit: "x", Target: ">= 0.9", Met: boolp(ratio >= 0.9), Goal: v.goal,
			Baseline: &Baseline{Name: "the same calls to 4 properties (ingest_grpc_unary_b25)", Value: round(four, 0), Unit: "events/s"},
			Note:     note})
	}
	return out
}

// manyMetrics are the figures of the many-merchants phases.
func manyMetrics(backend string, b *BackendResult) []Metric {
	var out []Metric
	if p := b.phase("many_merchants"); p != nil && p.Loadgen != nil {
		l := p.Loadgen
		m := Metric{Name: "many_merchants_ingest_events_per_s", Backend: backend, Value: round(l.EventsPerSecond, 0), Unit: "events/s", Target: "shown", Goal: "many_ingest",
			Note: fmt.Sprintf("%s properties (%s got traffic), Zipf s = %v, unary calls of 25 events, 32 at once; caught up %.1fs after the last ack",
				thousands(float64(b.ManyProperties)), thousands(float64(l.PropertiesWithTraffic)), l.PropertiesZipf, p.CatchUpSeconds)}
		if e := b.eps("ingest_grpc_unary_b25"); e > 0 {
			m.Baseline = &Baseline{Name: "the same calls to 4 properties (ingest_grpc_unary_b25)", Value: round(e, 0), Unit: "events/s"}
		}
		out = append(out, m)
		if d := p.Store; d != nil {
			m := Metric{Name: "many_merchants_rows_per_1k_events", Backend: backend, Value: round(d.RowsPer1k(), 1), Unit: "rows/1k events", Target: "shown", Goal: "many_rows",
				Note: rowsNote(d)}
			if f := lastFill(b); f != nil && f.Store != nil {
				m.Baseline = &Baseline{Name: fmt.Sprintf("%s (4 properties)", f.Name), Value: round(f.Store.RowsPer1k(), 1), Unit: "rows/1k events"}
			}
			out = append(out, m)
		}
	}
	if p := b.phase("many_merchants_freshness"); p != nil && p.Loadgen != nil && p.Loadgen.Freshness != nil && p.Loadgen.Freshness.Count > 0 {
		f := p.Loadgen.Freshness
		out = append(out, Metric{Name: "many_merchants_freshness_p99_ms", Backend: backend, Value: f.P99Ms, Unit: "ms", Target: "shown", Goal: "many_freshness",
			Note: fmt.Sprintf("p50 %s ms, %d probes (%d timed out) at %s events/s over the properties", f0(f.P50Ms), f.Count, f.TimedOut, thousands(p.Loadgen.EventsPerSecond))})
	}
	if p := b.phase("many_merchants_query"); p != nil && len(p.Queries) > 0 {
		u, uq := manyWorstP99(p, "uniform")
		w, wq := manyWorstP99(p, "by traffic")
		out = append(out, Metric{Name: "many_merchants_query_uncached_p99_ms", Backend: backend, Value: u, Unit: "ms", Target: "shown", Goal: "many_query",
			Note: fmt.Sprintf("worst of the three reports, each call on a property drawn at random: uniformly %s ms (%s), by traffic %s ms (%s)", f0(u), uq, f0(w), wq)})
	}
	return out
}

func rowsNote(d *StoreDelta) string {
	per := func(x float64) string { return f0(x / float64(d.Events) * 1000) }
	s := fmt.Sprintf("additions %s + checkpoints %s per 1k events", per(d.Additions), per(d.Checkpoints))
	if d.AdditionsEstimated {
		s += " (additions estimated as compacted + growth of pending: no sextant_projection_additions_total)"
	}
	return s + "; compaction's block rows not counted"
}

// goals are the rows of the targets table, in order.
func goals(r *Results) []struct{ goal, label, target string } {
	out := []struct{ goal, label, target string }{
		{"replay", "Replay from offset 0", "≥ 150,000 events/s"},
		{"replay_ratio", "Replay ÷ raw Sarama consumer + protobuf decode (same topic)", "shown"},
		{"replay_cpu", "Projection + store CPU during the replay", "≤ 13 CPU-s per 1M events"},
		{"freshness", fmt.Sprintf("Freshness p99 at %s events/s", thousands(r.Plan.FreshRate)), "≤ 1 s"},
	}
	sizes := r.Plan.QuerySizes
	for i, s := range sizes {
		out = append(out, struct{ goal, label, target string }{fmt.Sprintf("query:%d", i), fmt.Sprintf("Uncached p99, worst of the three reports, at %s stored events", human(s)), "≤ 20 ms"})
	}
	if len(sizes) > 1 {
		out = append(out, struct{ goal, label, target string }{"query_growth", fmt.Sprintf("Growth of that p99 from %s to %s", human(sizes[0]), human(sizes[len(sizes)-1])), "≤ 1.5×"})
	}
	return append(out, []struct{ goal, label, target string }{
		{"rss", "Projection peak RSS through the fills and the replay (default flags)", "≤ 1 GiB, flat"},
		{"bytes", "Read model bytes on disk per stored event", "lower than today (new)"},
		{"bytes_log", "Event log bytes on disk per event (reference)", "—"},
		{"many_ingest", fmt.Sprintf("Many merchants (%s properties, Zipf): ingest", thousands(float64(r.Plan.ManyProperties))), "new: shown"},
		{"many_freshness", fmt.Sprintf("Many merchants: freshness p99 at %s events/s", thousands(r.Plan.ManyFreshRate)), "new: shown"},
		{"many_query", "Many merchants: uncached report p99 on random properties", "new: shown"},
		{"many_rows", "Many merchants: store rows written per 1,000 events", "new: shown"},
		{"ingest", "gRPC stream ingest: distributed ÷ a raw Sarama producer (same events); embedded", "≥ 0.7×; ≥ 100,000 events/s"},
		{"rest", "REST, one event per request", "≥ 10,000 requests/s, p99 ≤ 20 ms"},
		{"cached", "Cached report p99 (through the gateway)", "≤ 2 ms"},
		{"registry", "Collect to registered properties drawn uniformly (every key cold) ÷ to 4", "≥ 0.9×"},
		{"registry_zipf", "Collect to registered properties drawn by Zipf (s = 1) ÷ to 4", "≥ 0.9×"},
	}...)
}

// renderStoreSizes writes the bytes on disk table.
func renderStoreSizes(w func(string, ...any), r *Results, names []string) {
	any := false
	for _, bn := range names {
		if br := r.Backends[bn]; br != nil && len(br.StoreSizes) > 0 {
			any = true
		}
	}
	if !any {
		return
	}
	w("### Bytes on disk\n\nThe read model's and the event log's size on disk divided by the events stored, after each fill (the projection caught up) and once compaction settled after the last (no addition pending, or the compactors idle until their batches are due).\n\n")
	w("| Backend | When | Stored events | Read model | Bytes/event | Additions pending | Log | Log bytes/event |\n|---|---|---|---|---|---|---|---|\n")
	for _, bn := range names {
		br := r.Backends[bn]
		if br == nil {
			continue
		}
		for _, s := range br.StoreSizes {
			if s.Error != "" {
				w("| %s | %s | %s | error: %s | | | | |\n", bn, s.When, thousands(float64(s.StoredEvents)), s.Error)
				continue
			}
			pending := "—"
			if s.Pending >= 0 {
				pending = thousands(s.Pending)
			}
			w("| %s | %s | %s | %.1f MB | %s | %s | %.1f MB | %s |\n", bn, s.When, thousands(float64(s.StoredEvents)), float64(s.ViewBytes)/1e6, f0(s.viewPerEvent()), pending, float64(s.LogBytes)/1e6, f0(s.logPerEvent()))
		}
	}
	w("\n")
	for _, bn := range names {
		if br := r.Backends[bn]; br != nil && len(br.StoreSizes) > 0 && br.StoreSizes[0].What != "" {
			w("%s: %s.\n\n", bn, br.StoreSizes[0].What)
		}
	}
}

// renderMany writes the many-merchants tables.
func renderMany(w func(string, ...any), r *Results, names []string) {
	any := false
	for _, bn := range names {
		if br := r.Backends[bn]; br != nil && br.phase("many_merchants") != nil {
			any = true
		}
	}
	if !any {
		return
	}
	w("### Many merchants\n\n%s properties (created by one `sextant property create --count`), the traffic of each batch drawn by a Zipf law of exponent %v over them (`sextant loadgen --properties-zipf`: a few large properties, most tiny), unary gRPC calls of 25 events, 32 at once; first flat out, then at %s events/s with the freshness probes. *Rows/1k*: the rows the projection wrote per 1,000 events it consumed (additions, one per property and hour per checkpoint, plus one progress row per checkpoint; compaction's blocks not counted), from its metrics, over the phase and its catch-up.\n\n",
		thousands(float64(r.Plan.ManyProperties)), r.Plan.ManyZipfS, thousands(r.Plan.ManyFreshRate))
	w("| Backend | Phase | Properties with traffic | Events | Events/s | Ack p99 | Freshness p50 / p99 | Rows/1k | Additions/1k | Checkpoints/1k |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, bn := range names {
		br := r.Backends[bn]
		if br == nil {
			continue
		}
		rows := []*Phase{}
		if f := lastFill(br); f != nil {
			rows = append(rows, f)
		}
		for _, name := range []string{"many_merchants", "many_merchants_freshness"} {
			if p := br.phase(name); p != nil {
				rows = append(rows, p)
			}
		}
		for _, p := range rows {
			if p.Loadgen == nil {
				continue
			}
			l := p.Loadgen
			props := "4 (for comparison)"
			if p.Kind == "many" {
				props = fmt.Sprintf("%s of %s", thousands(float64(l.PropertiesWithTraffic)), thousands(float64(br.ManyProperties)))
			}
			fresh := "—"
			if f := l.Freshness; f != nil && f.Count > 0 {
				fresh = fmt.Sprintf("%s / %s ms", f0(f.P50Ms), f0(f.P99Ms))
			}
			r1k, a1k, c1k := "—", "—", "—"
			if d := p.Store; d != nil {
				r1k = f0(d.RowsPer1k())
				a1k = f0(d.Additions / float64(d.Events) * 1000)
				if d.AdditionsEstimated {
					a1k += " (est.)"
				}
				c1k = f0(d.Checkpoints / float64(d.Events) * 1000)
			}
			w("| %s | %s | %s | %s | %s | %s ms | %s | %s | %s | %s |\n", bn, p.Name, props, thousands(float64(l.EventsAcked)), thousands(l.EventsPerSecond), f0(l.BatchAckLatency.P99Ms), fresh, r1k, a1k, c1k)
		}
	}
	w("\nReports of random properties, uncached (a new date-range name every call), each call on a property drawn uniformly or by traffic (the Zipf law of the load):\n\n")
	w("| Backend | Report (properties drawn) | Stored events | Calls | Most rows | p50 | p90 | p99 | max |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, bn := range names {
		br := r.Backends[bn]
		if br == nil {
			continue
		}
		if p := br.phase("many_merchants_query"); p != nil {
			for _, q := range p.Queries {
				u := q.Uncached
				w("| %s | %s | %s | %d | %d | %s ms | %s ms | %s ms | %s ms |\n", bn, q.Query, human(q.StoredEvents), u.Count, q.Rows, f0(u.P50Ms), f0(u.P90Ms), f0(u.P99Ms), f0(u.MaxMs))
			}
		}
	}
	if br := r.Backends["distributed"]; br != nil && br.ManySetupSeconds > 0 {
		w("\nCreating the properties took %.1f s (distributed)", br.ManySetupSeconds)
		if be := r.Backends["embedded"]; be != nil && be.ManySetupSeconds > 0 {
			w(" and %.1f s (embedded)", be.ManySetupSeconds)
		}
		w(".\n")
	}
	w("\n")
}
