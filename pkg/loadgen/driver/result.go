package driver

import (
	"fmt"
	"io"

	"github.com/sextant-analytics/sextant/pkg/loadgen"
)

// Result is what a run reports (`sextant loadgen --json` prints it).
type Result struct {
	Mode            string          `json:"mode"`
	Server          string          `json:"server"`
	BatchSize       int             `json:"batchSize"`
	Concurrency     int             `json:"concurrency"`
	Connections     int             `json:"connections,omitempty"`
	Properties      int             `json:"properties"`
	Seed            int64           `json:"seed"`
	TargetRate      float64         `json:"targetRate,omitempty"`
	History         string          `json:"history"`
	ElapsedSeconds  float64         `json:"elapsedSeconds"`
	BatchesSent     int64           `json:"batchesSent"`
	EventsSent      int64           `json:"eventsSent"`
	BatchesAcked    int64           `json:"batchesAcked"`
	EventsAcked     int64           `json:"eventsAcked"`
	BatchesRejected int64           `json:"batchesRejected"`
	EventsRejected  int64           `json:"eventsRejected"`
	EventsFailed    int64           `json:"eventsFailed"`
	Retries         int64           `json:"retries"`
	StreamErrors    int64           `json:"streamErrors,omitempty"`
	EventsPerSecond float64         `json:"eventsPerSecond"`
	BatchesPerSec   float64         `json:"batchesPerSecond"`
	Latency         loadgen.Summary `json:"batchAckLatency"`
	// LongestAckGapMs is the longest time between two consecutive
	// acknowledgements (of any batches) during the run.
	LongestAckGapMs float64          `json:"longestAckGapMs"`
	Freshness       *FreshnessResult `json:"freshness,omitempty"`
	Errors          []string         `json:"errors,omitempty"`
	TruthFile       string           `json:"truthFile,omitempty"`
	Interrupted     bool             `json:"interrupted,omitempty"`

	// PropertiesZipf is Config.Spread's exponent, and
	// PropertiesWithTraffic the properties that got at least one batch.
	PropertiesZipf        float64 `json:"propertiesZipf,omitempty"`
	PropertiesWithTraffic int     `json:"propertiesWithTraffic,omitempty"`
}

// FreshnessResult is what the freshness probes measured.
type FreshnessResult struct {
	loadgen.Summary
	TimedOut int64           `json:"timedOut"`
	Failed   int64           `json:"failed"`
	Report   string          `json:"report"`       // what the probes polled
	Query    loadgen.Summary `json:"queryLatency"` // of the probes' report calls
}

// WriteText writes the result for people.
func (r Result) WriteText(w io.Writer) {
	conc := fmt.Sprintf("%d requests in flight", r.Concurrency)
	if r.Mode == Stream {
		conc = fmt.Sprintf("%d streams", r.Concurrency)
	}
	if r.Connections > 0 {
		conc += fmt.Sprintf(" over %d connections", r.Connections)
	}
	fmt.Fprintf(w, "loadgen: %s mode, batches of %d, %s, %d properties, seed %d\n", r.Mode, r.BatchSize, conc, r.Properties, r.Seed)
	if r.PropertiesWithTraffic > 0 {
		fmt.Fprintf(w, "properties drawn per batch (Zipf s = %v): %d of %d got traffic\n", r.PropertiesZipf, r.PropertiesWithTraffic, r.Properties)
	}
	fmt.Fprintf(w, "sent      %d events in %d batches (%d retries)\n", r.EventsSent, r.BatchesSent, r.Retries)
	fmt.Fprintf(w, "acked     %d events in %d batches in %.2fs: %.0f events/s, %.0f batches/s\n", r.EventsAcked, r.BatchesAcked, r.ElapsedSeconds, r.EventsPerSecond, r.BatchesPerSec)
	fmt.Fprintf(w, "rejected  %d events in %d batches\n", r.EventsRejected, r.BatchesRejected)
	fmt.Fprintf(w, "failed    %d events\n", r.EventsFailed)
	l := r.Latency
	fmt.Fprintf(w, "batch ack latency: p50 %.2fms p90 %.2fms p99 %.2fms max %.2fms; longest time without an ack %.0fms\n", l.P50Ms, l.P90Ms, l.P99Ms, l.MaxMs, r.LongestAckGapMs)
	if f := r.Freshness; f != nil {
		fmt.Fprintf(w, "freshness (ack to visible in the %s report), %d probes: p50 %.0fms p90 %.0fms p99 %.0fms max %.0fms; %d timed out, %d failed; the polls took p50 %.1fms p99 %.1fms\n",
			f.Report, f.Count, f.P50Ms, f.P90Ms, f.P99Ms, f.MaxMs, f.TimedOut, f.Failed, f.Query.P50Ms, f.Query.P99Ms)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
	if r.TruthFile != "" {
		fmt.Fprintf(w, "truth written to %s\n", r.TruthFile)
	}
}
