package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	projectionv1 "github.com/sextant-analytics/sextant/gen/sextant/projection/v1"
	"github.com/sextant-analytics/sextant/pkg/loadgen"
)

// manyMerchants runs the many-merchants phases: traffic over the plan's
// ManyProperties properties, Zipf-distributed (a few large, most tiny),
// flat out (ingest rate, and the rows the projection writes per 1,000
// events), then at a steady rate with the freshness probes, then the
// reports of random properties, uncached.
func (h *harness) manyMerchants(ctx context.Context, b *backend) {
	p := h.plan
	if len(b.manyKeys) == 0 || ctx.Err() != nil {
		return
	}
	// The replay's version would project the phases' events a second
	// time: it is dropped first.
	if b.res.Phases["replay_v2"] != nil {
		actx := withKey(ctx, b.adminKey)
		if _, err := b.client.projection.DeleteVersion(actx, &projectionv1.DeleteVersionRequest{Name: "traffic", Version: "v2"}); err != nil {
			h.logf("%s: delete traffic/v2 before the many-merchants phases: %v (it keeps projecting)", b.name, err)
		} else {
			time.Sleep(4 * time.Second) // the version's read model is dropped after a settle time
		}
	}
	zipf := strconv.FormatFloat(p.ManyZipfS, 'f', -1, 64)
	common := []string{"--keys-file", b.manyKeysFile, "--mode", "unary", "--batch", "25", "--concurrency", "32", "--properties-zipf", zipf}
	h.loadgenPhase(ctx, b, "many_merchants", "many", b.ingestAddr, p.ManyEvents, true, append(common, "--history", "2h")...)
	h.noteRSSAt(b, "after many_merchants")
	secs := strconv.FormatFloat(p.FreshDuration.Seconds(), 'f', -1, 64) + "s"
	h.loadgenPhase(ctx, b, "many_merchants_freshness", "many", b.ingestAddr, p.FreshMaxEvents, true, append(common,
		"--rate", strconv.FormatFloat(p.ManyFreshRate, 'f', -1, 64), "--duration", secs, "--history", "0",
		"--freshness", "--freshness-interval", "250ms", "--freshness-keys-file", b.probeKeysFile)...)
	h.noteRSSAt(b, "after many_merchants_freshness")
	if ctx.Err() != nil {
		return
	}
	spread, err := loadgen.NewSpread(len(b.manyKeys), p.ManyZipfS)
	if err != nil {
		b.res.Errors = append(b.res.Errors, "many merchants: "+err.Error())
		return
	}
	pickers := []picker{
		{"uniform", func(r *rand.Rand) int { return r.IntN(len(b.manyKeys)) }},
		{"by traffic", spread.Pick},
	}
	h.phase(ctx, b, "many_merchants_query", "many_query", func(ph *Phase) error {
		if _, err := b.client.waitCaughtUp(ctx, b.adminKey, time.Hour); err != nil {
			return err
		}
		qs, err := b.client.queryRandom(ctx, b.manyKeys, pickers, b.stored, p.QueryIters, p.QueryBudget)
		ph.Queries = qs
		for _, q := range qs {
			h.logf("%s: %-36s uncached p50 %.1fms p99 %.1fms (at most %d rows)", b.name, q.Query, q.Uncached.P50Ms, q.Uncached.P99Ms, q.Rows)
		}
		return err
	})
}

// picker draws a property index.
type picker struct {
	name string
	pick func(*rand.Rand) int
}

// queryRandom times each report, uncached (a new range name every call),
// each call on a property drawn by a picker, iters times or fewer (at
// least minQueryIters) when that takes more than budget.
func (c *client) queryRandom(ctx context.Context, keys []loadgen.Keys, pickers []picker, stored int64, iters int, budget time.Duration) ([]QueryStats, error) {
	tag := strconv.FormatInt(time.Now().UnixNano(), 36)
	rng := rand.New(rand.NewPCG(uint64(stored), 42))
	var out []QueryStats
	for _, q := range reportQueries {
		for _, pk := range pickers {
			st := QueryStats{Query: q.name + " (" + pk.name + ")", StoredEvents: stored}
			var unc loadgen.Histogram
			start := time.Now()
			for i := 0; i < iters && (i < minQueryIters || time.Since(start) < budget); i++ {
				k := keys[pk.pick(rng)]
				qctx := withKey(ctx, k.ReadKey)
				t0 := time.Now()
				rows, cached, err := q.run(qctx, c, "r"+tag+"x"+strconv.Itoa(i))
				d := time.Since(t0)
				if err != nil {
					return out, fmt.Errorf("%s on property %s: %w", st.Query, k.PropertyID, err)
				}
				unc.Record(d)
				st.Rows = max(st.Rows, rows)
				if !cached {
					st.UncachedMisses++
				}
			}
			st.Uncached = unc.Summary()
			out = append(out, st)
		}
	}
	return out, nil
}

// noteStoreSize measures the bytes on disk of the read model and the log
// (pending: the additions not compacted yet; -1 to read them from the
// projection's metrics).
func (h *harness) noteStoreSize(ctx context.Context, b *backend, when string, pending float64) {
	if b.measureSize == nil || ctx.Err() != nil {
		return
	}
	if pending < 0 && b.metricsAddrs != nil {
		// The gauge is set by the compactors' runs, every 2 s.
		time.Sleep(2500 * time.Millisecond)
		if m := scrapeAll(ctx, b.metricsAddrs()); m != nil {
			pending = m[pendingMetric]
		}
	}
	t0 := time.Now()
	views, log, what, err := b.measureSize(ctx)
	s := StoreSize{When: when, StoredEvents: b.stored, ViewBytes: views, LogBytes: log, What: what, Pending: pending, Seconds: time.Since(t0).Seconds()}
	if err != nil {
		s.Error = err.Error()
		h.logf("%s: store size %s: %v", b.name, when, err)
	} else {
		h.logf("%s: store size %s: read model %.1f MB (%.0f bytes/event), log %.1f MB (%.0f bytes/event), %d events, %.0f additions pending",
			b.name, when, float64(views)/1e6, s.viewPerEvent(), float64(log)/1e6, s.logPerEvent(), b.stored, pending)
	}
	b.res.StoreSizes = append(b.res.StoreSizes, s)
	h.noteRSSAt(b, when)
}

// noteRSSAt records the processes' peak memory so far (for "flat as
// stored events grow").
func (h *harness) noteRSSAt(b *backend, when string) {
	snap := RSSSnapshot{When: when, StoredEvents: b.stored, PeakMiB: map[string]float64{}}
	for name, pid := range b.pids {
		if st := readProc(pid); st.ok {
			snap.PeakMiB[name] = float64(st.hwmKiB) / 1024
		}
	}
	b.res.PeakRSSAt = append(b.res.PeakRSSAt, snap)
}

// RSSSnapshot is the processes' peak resident memory (VmHWM) since their
// start, at one point of the run.
type RSSSnapshot struct {
	When         string             `json:"when"`
	StoredEvents int64              `json:"storedEvents"`
	PeakMiB      map[string]float64 `json:"peakMiB"`
}
