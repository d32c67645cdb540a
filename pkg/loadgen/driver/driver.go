package driver

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sextant-analytics/sextant/pkg/loadgen"
)

// source hands out one property's batches.
type source struct {
	mu        sync.Mutex
	gen       *loadgen.Generator // nil until the property's first batch (Config.Spread)
	cfg       loadgen.Config     // of gen
	remaining int64              // events left; -1: unlimited (and always with Config.Spread)
	batches   int64              // batches taken
}

// entry is a batch on its way.
type entry struct {
	b         *loadgen.Batch
	body      []byte // the encoded CollectRequest (or JSON body)
	attempts  int
	seq       uint64
	sent      time.Time // of the latest attempt
	notBefore time.Time // of the next attempt
}

// Driver runs a Config once.
type Driver struct {
	cfg        Config
	grpcTarget string
	httpBase   string
	probeKeys  loadgen.Keys // the property the freshness probes write to and read
	probeIndex int          // its index in the truth
	sources    []*source
	limiter    *rate.Limiter
	conns      []grpc.ClientConnInterface
	closers    []io.Closer
	http       *http.Client
	truth      *loadgen.Truth
	deadline   time.Time
	stop       chan struct{} // closed when no new batch may start
	stopOnce   sync.Once

	batchesSent, eventsSent         atomic.Int64
	batchesAcked, eventsAcked       atomic.Int64
	batchesRejected, eventsRejected atomic.Int64
	eventsFailed, retries           atomic.Int64
	lastAck, maxAckGap              atomic.Int64 // Unix nanoseconds; nanoseconds
	streamErrors                    atomic.Int64

	errMu  sync.Mutex
	errors []string

	fresh freshnessState

	// With Config.Spread: the events left of all properties (-1:
	// unlimited) and the draws of properties.
	remaining atomic.Int64
	pickMu    sync.Mutex
	pickRng   *rand.Rand
}

type freshnessState struct {
	mu               sync.Mutex
	hist             loadgen.Histogram
	query            loadgen.Histogram // the probes' report calls
	timedOut, failed int64
	enabled          bool
	done             chan struct{}
}

// New validates cfg and prepares its run: the generators, and the
// connections (dialed lazily, at the first call). Close releases them.
func New(cfg Config) (*Driver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	d := &Driver{cfg: cfg, stop: make(chan struct{})}
	if cfg.Conn == nil {
		d.grpcTarget, d.httpBase, _ = ServerAddrs(cfg.Server)
	} else if cfg.Server != "" {
		_, d.httpBase, _ = ServerAddrs(cfg.Server)
	}
	ids := make([]string, len(cfg.Keys), len(cfg.Keys)+1)
	for i, k := range cfg.Keys {
		ids[i] = k.PropertyID
	}
	d.probeKeys = cfg.Keys[0]
	if f := cfg.Freshness; f != nil && f.Keys != nil {
		d.probeKeys, d.probeIndex = *f.Keys, len(cfg.Keys)
		ids = append(ids, f.Keys.PropertyID)
	}
	d.truth = loadgen.NewTruth(ids)
	n := int64(len(cfg.Keys))
	if cfg.Spread != nil {
		// Generators start at a property's first batch: most of many
		// properties get few batches, or none.
		d.remaining.Store(-1)
		if cfg.Events > 0 {
			d.remaining.Store(cfg.Events)
		}
		d.pickRng = rand.New(rand.NewPCG(uint64(cfg.Gen.Seed), 0x5bead))
		for i := range cfg.Keys {
			gc := cfg.Gen
			if cfg.TimeOrder {
				gc.TimeOrder = max(1, int64(math.Round(float64(cfg.Events)*cfg.Spread.Share(i))))
			}
			d.sources = append(d.sources, &source{cfg: gc, remaining: -1})
		}
	}
	for i := range cfg.Keys {
		if cfg.Spread != nil {
			break
		}
		remaining := int64(-1)
		if cfg.Events > 0 {
			remaining = cfg.Events / n
			if int64(i) < cfg.Events%n {
				remaining++
			}
		}
		gc := cfg.Gen
		if cfg.TimeOrder {
			gc.TimeOrder = remaining
		}
		g, err := loadgen.New(gc, i)
		if err != nil {
			return nil, err
		}
		d.sources = append(d.sources, &source{gen: g, cfg: gc, remaining: remaining})
	}
	if cfg.Rate > 0 {
		burst := max(cfg.Gen.BatchSize, int(cfg.Rate/50))
		d.limiter = rate.NewLimiter(rate.Limit(cfg.Rate), burst)
	}
	switch {
	case cfg.Conn != nil:
		d.conns = []grpc.ClientConnInterface{cfg.Conn}
	case cfg.Mode != REST || cfg.Freshness != nil:
		conns := cfg.Conns
		if cfg.Mode == REST {
			conns = 1
		}
		for range conns {
			cc, err := grpc.NewClient(d.grpcTarget,
				grpc.WithTransportCredentials(insecure.NewCredentials()),
				grpc.WithInitialWindowSize(4<<20), grpc.WithInitialConnWindowSize(16<<20),
				grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
			if err != nil {
				d.Close()
				return nil, fmt.Errorf("loadgen: dial %s: %w", cfg.Server, err)
			}
			d.conns = append(d.conns, cc)
			d.closers = append(d.closers, cc)
		}
	}
	if cfg.Mode == REST {
		d.http = &http.Client{Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        cfg.Concurrency * 2,
			MaxIdleConnsPerHost: cfg.Concurrency * 2,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		}}
	}
	return d, nil
}

// Close closes the connections the driver dialed.
func (d *Driver) Close() {
	for _, c := range d.closers {
		_ = c.Close()
	}
	if d.http != nil {
		d.http.CloseIdleConnections()
	}
}

// Truth is the exact aggregates of what was acknowledged (with
// Config.Truth; the freshness probes' always).
func (d *Driver) Truth() *loadgen.Truth { return d.truth }

func (d *Driver) noteError(msg string) {
	d.errMu.Lock()
	defer d.errMu.Unlock()
	for _, e := range d.errors {
		if e == msg {
			return
		}
	}
	if len(d.errors) < d.cfg.MaxErrors {
		d.errors = append(d.errors, msg)
	}
}

func (d *Driver) stopping() bool {
	select {
	case <-d.stop:
		return true
	default:
	}
	if !d.deadline.IsZero() && time.Now().After(d.deadline) {
		d.stopOnce.Do(func() { close(d.stop) })
		return true
	}
	return false
}

// reserve takes up to n events of the run's remaining ones (Config.Spread):
// 0 when none are left, n when unlimited.
func (d *Driver) reserve(n int64) int64 {
	for {
		left := d.remaining.Load()
		if left < 0 {
			return n
		}
		got := min(left, n)
		if got == 0 || d.remaining.CompareAndSwap(left, left-got) {
			return got
		}
	}
}

// take returns the next batch of property p (with Config.Spread, of a
// property drawn at random), encoded for the mode, or nil when the run is
// over for it. It waits for the rate limiter.
func (d *Driver) take(ctx context.Context, p int) *entry {
	if d.stopping() || ctx.Err() != nil {
		return nil
	}
	var reserved int64
	if d.cfg.Spread != nil {
		if reserved = d.reserve(int64(d.cfg.Gen.BatchSize)); reserved == 0 {
			return nil
		}
		d.pickMu.Lock()
		p = d.cfg.Spread.Pick(d.pickRng)
		d.pickMu.Unlock()
	}
	s := d.sources[p]
	s.mu.Lock()
	if s.remaining == 0 {
		s.mu.Unlock()
		return nil
	}
	if s.gen == nil {
		g, err := loadgen.New(s.cfg, p)
		if err != nil { // the config was validated: not expected
			s.mu.Unlock()
			d.noteError("generator: " + err.Error())
			return nil
		}
		s.gen = g
	}
	limit := 0
	if s.remaining > 0 {
		limit = int(min(s.remaining, int64(d.cfg.Gen.BatchSize)))
	}
	if reserved > 0 {
		limit = int(reserved)
	}
	b := s.gen.Next(limit)
	if s.remaining > 0 {
		s.remaining -= int64(len(b.Events))
	}
	s.batches++
	s.mu.Unlock()
	if unused := reserved - int64(len(b.Events)); unused > 0 && d.remaining.Load() >= 0 {
		// The visitor had fewer events left: give the rest back (this
		// worker takes again, so none is lost at the end).
		d.remaining.Add(unused)
	}
	if d.limiter != nil {
		if err := d.limiter.WaitN(ctx, len(b.Events)); err != nil {
			return nil
		}
	}
	e := &entry{b: b}
	if d.cfg.Mode == REST {
		e.body = loadgen.AppendJSON(make([]byte, 0, 400*len(b.Events)), b)
	} else {
		e.body = loadgen.AppendProto(make([]byte, 0, 350*len(b.Events)), b)
	}
	d.batchesSent.Add(1)
	d.eventsSent.Add(int64(len(b.Events)))
	return e
}

func (d *Driver) acked(h *loadgen.Histogram, e *entry, now time.Time) {
	h.Record(now.Sub(e.sent))
	d.noteAck(now)
	d.batchesAcked.Add(1)
	d.eventsAcked.Add(int64(len(e.b.Events)))
	if d.cfg.Truth {
		d.truth.Add(e.b, now)
	}
}

// noteAck records an acknowledgement's time and the longest time between
// two consecutive acknowledgements of the run.
func (d *Driver) noteAck(now time.Time) {
	t := now.UnixNano()
	for {
		last := d.lastAck.Load()
		if last >= t {
			return
		}
		if d.lastAck.CompareAndSwap(last, t) {
			if last > 0 {
				for gap := t - last; ; {
					cur := d.maxAckGap.Load()
					if gap <= cur || d.maxAckGap.CompareAndSwap(cur, gap) {
						break
					}
				}
			}
			return
		}
	}
}

func (d *Driver) rejected(e *entry, msg string) {
	d.batchesRejected.Add(1)
	d.eventsRejected.Add(int64(len(e.b.Events)))
	d.noteError("rejected: " + msg)
}

func (d *Driver) failed(e *entry, msg string) {
	d.eventsFailed.Add(int64(len(e.b.Events)))
	d.noteError("failed after " + strconv.Itoa(e.attempts) + " attempts: " + msg)
}

func backoff(attempt int) time.Duration {
	return min(time.Duration(attempt)*100*time.Millisecond, 2*time.Second)
}

// retriable reports batch errors a resend may cure.
func retriable(code string) bool {
	switch code {
	case "UNAVAILABLE", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED", "ABORTED", "INTERNAL", "UNKNOWN":
		return true
	}
	return false
}

// Run sends the traffic until Config.Events were sent or Config.Duration
// has passed (or ctx ends), waits for the acknowledgements and reports.
// A Driver runs once.
func (d *Driver) Run(ctx context.Context) Result {
	if d.cfg.Duration > 0 {
		d.deadline = time.Now().Add(d.cfg.Duration)
	}
	start := time.Now()
	var wg sync.WaitGroup
	workers := max(d.cfg.Concurrency, len(d.sources))
	if d.cfg.Spread != nil {
		workers = d.cfg.Concurrency
	}
	hists := make([]*loadgen.Histogram, workers)
	histMu := make([]sync.Mutex, workers)
	for w := range workers {
		hists[w] = &loadgen.Histogram{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := &lockedHist{mu: &histMu[w], h: hists[w]}
			switch d.cfg.Mode {
			case Stream:
				d.streamWorker(ctx, w, h)
			case Unary:
				d.unaryWorker(ctx, w, h)
			case REST:
				d.restWorker(ctx, w, h)
			}
		}()
	}
	merged := func() *loadgen.Histogram {
		var all loadgen.Histogram
		for w := range hists {
			histMu[w].Lock()
			all.Merge(hists[w])
			histMu[w].Unlock()
		}
		return &all
	}
	if d.cfg.Freshness != nil {
		d.fresh.enabled = true
		d.fresh.done = make(chan struct{})
		go func() {
			defer close(d.fresh.done)
			d.probeFreshness(ctx)
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var tick <-chan time.Time
	if d.cfg.Progress > 0 && d.cfg.Log != nil {
		t := time.NewTicker(d.cfg.Progress)
		defer t.Stop()
		tick = t.C
	}
	lastAcked, lastT := int64(0), start
	for running := true; running; {
		select {
		case <-done:
			running = false
		case now := <-tick:
			acked := d.eventsAcked.Load()
			h := merged()
			fmt.Fprintf(d.cfg.Log, "loadgen: %5.0fs sent %d acked %d (%.0f events/s) rejected %d failed %d, batch ack p50 %.1fms p99 %.1fms\n",
				now.Sub(start).Seconds(), d.eventsSent.Load(), acked, float64(acked-lastAcked)/now.Sub(lastT).Seconds(),
				d.eventsRejected.Load(), d.eventsFailed.Load(), ms(h.Quantile(0.5)), ms(h.Quantile(0.99)))
			lastAcked, lastT = acked, now
		}
	}
	elapsed := time.Since(start)
	d.stopOnce.Do(func() { close(d.stop) })
	if d.fresh.enabled {
		<-d.fresh.done
	}
	res := Result{
		Mode: d.cfg.Mode, Server: d.httpBase, BatchSize: d.cfg.Gen.BatchSize, Concurrency: workers,
		Properties: len(d.sources), Seed: d.cfg.Gen.Seed, TargetRate: d.cfg.Rate, History: d.cfg.Gen.History.String(),
		ElapsedSeconds: elapsed.Seconds(),
		BatchesSent:    d.batchesSent.Load(), EventsSent: d.eventsSent.Load(),
		BatchesAcked: d.batchesAcked.Load(), EventsAcked: d.eventsAcked.Load(),
		BatchesRejected: d.batchesRejected.Load(), EventsRejected: d.eventsRejected.Load(),
		EventsFailed: d.eventsFailed.Load(), Retries: d.retries.Load(), StreamErrors: d.streamErrors.Load(),
		Latency:         merged().Summary(),
		LongestAckGapMs: float64(d.maxAckGap.Load()) / 1e6,
		Errors:          d.errors,
		Interrupted:     ctx.Err() != nil,
	}
	if d.cfg.Mode != REST {
		res.Connections = len(d.conns)
	}
	if d.cfg.Spread != nil {
		res.PropertiesZipf = d.cfg.Spread.Exponent()
		for _, s := range d.sources {
			s.mu.Lock()
			if s.batches > 0 {
				res.PropertiesWithTraffic++
			}
			s.mu.Unlock()
		}
	}
	if s := elapsed.Seconds(); s > 0 {
		res.EventsPerSecond = float64(res.EventsAcked) / s
		res.BatchesPerSec = float64(res.BatchesAcked) / s
	}
	if d.fresh.enabled {
		d.fresh.mu.Lock()
		res.Freshness = &FreshnessResult{Summary: d.fresh.hist.Summary(), TimedOut: d.fresh.timedOut, Failed: d.fresh.failed,
			Report: d.cfg.Freshness.Report, Query: d.fresh.query.Summary()}
		d.fresh.mu.Unlock()
	}
	return res
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// lockedHist is a worker's histogram, read by the progress line.
type lockedHist struct {
	mu *sync.Mutex
	h  *loadgen.Histogram
}

func (l *lockedHist) Histogram(fn func(*loadgen.Histogram)) {
	l.mu.Lock()
	fn(l.h)
	l.mu.Unlock()
}
