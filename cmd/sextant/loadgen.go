package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	collectv1 "github.com/sextant-analytics/sextant/gen/sextant/collect/v1"
	insightsv1 "github.com/sextant-analytics/sextant/gen/sextant/insights/v1"
	"github.com/sextant-analytics/sextant/pkg/loadgen"
)

const loadgenUsage = `Usage: sextant loadgen (--keys KEY,… | --keys-file FILE) (--events N | --duration D) [flags]

Sends realistic synthetic traffic (pkg/loadgen) to a Sextant server or
gateway and reports what was acknowledged and how fast:
  --mode stream   gRPC StreamCollect: --concurrency streams, each with up to
                  --inflight unacknowledged batches (acks read concurrently)
  --mode unary    gRPC Collect, --concurrency calls at once
  --mode rest     POST /v1/collect, --concurrency requests at once
Batches hold --batch events of one visitor. Event ids are set, so a batch
resent after an error is counted once. --truth FILE writes the exact
aggregates of what was acknowledged; --freshness measures how long an
acknowledged event takes to show in reports (needs a read key).

Properties: by default each worker sends the batches of one property
(worker i the property i modulo their number) and --events is split evenly.
With --properties-zipf S (unary and rest modes: a stream is authorised for
one property) every batch goes to a property drawn at random, the k-th of
the keys (from 0) with weight (k+1)^-S: S = 0 spreads the traffic evenly at
random; S = 1 gives 10,000 properties a few large ones and a long tail of
tiny ones (the first gets 10 % of the events, the first 100 half of them).
--keys-file may then hold thousands of properties, as
` + "`sextant property create --offline --count 10000 --name shop --json`" + ` prints them;
a property's generator starts at its first batch, with --active visitors
(8 by default in this mode).

`

// loadgenConfig is the parsed command line.
type loadgenConfig struct {
	server        string
	mode          string
	concurrency   int
	conns         int
	inflight      int
	timeOrder     bool // --time-order: event times follow the order of sending
	rate          float64
	duration      time.Duration
	events        int64
	keys          []loadgen.Keys
	truthFile     string
	asJSON        bool
	progress      time.Duration
	retries       int
	timeout       time.Duration
	gen           loadgen.Config
	freshness     bool
	freshEvery    time.Duration
	freshPoll     time.Duration
	freshTimeout  time.Duration
	freshReport   string
	probe         loadgen.Keys    // the property the probes write to and read
	probeIndex    int             // its index in the truth
	spread        *loadgen.Spread // --properties-zipf; nil: one property per worker
	grpcTarget    string
	httpBase      string
	maxErrorsKept int
}

func parseLoadgen(args []string, stderr io.Writer) (loadgenConfig, error) {
	c := loadgenConfig{maxErrorsKept: 5}
	f := newFlags("loadgen", stderr)
	d := loadgen.DefaultConfig()
	f.StringVar(&c.server, "server", "http://127.0.0.1:8080", "the Sextant server or gateway (URL or host:port)")
	f.StringVar(&c.mode, "mode", "stream", "stream (gRPC StreamCollect), unary (gRPC Collect) or rest (POST /v1/collect)")
	f.IntVar(&c.gen.BatchSize, "batch", d.BatchSize, "events per batch (1..500)")
	f.IntVar(&c.concurrency, "concurrency", 0, "streams (stream) or requests in flight (unary, rest); 0: 8, 32, 64 by mode")
	f.IntVar(&c.conns, "conns", 0, "gRPC connections (HTTP/2) the streams and calls share; 0: min(concurrency, 4)")
	f.IntVar(&c.inflight, "inflight", 16, "stream mode: unacknowledged batches per stream")
	rateF := f.Float("rate", 0, "events per second, all properties together; 0 sends flat out")
	dur := f.Duration("duration", 0, "how long to send (stop at --events or --duration, whichever first)")
	events := f.Int("events", 0, "events to send, split evenly over the properties")
	seed := f.Int("seed", 1, "random seed: the same seed sends the same events (ids included)")
	var keyList []string
	f.ListVar(&keyList, "keys", "write keys, one per property (key,…)")
	keysFile := f.String("keys-file", "", "JSON lines of {propertyId, writeKey, readKey} as `sextant property create --json` prints")
	readKey := f.Secret("read-key", "read key of the first property (freshness), when --keys gives only write keys")
	f.StringVar(&c.truthFile, "truth", "", "write the exact expected aggregates of what was acknowledged to this JSON file")
	asJSON := f.Bool("json", false, "print the results as JSON")
	progress := f.Duration("progress", 5*time.Second, "print a progress line to stderr this often (0: never)")
	f.IntVar(&c.retries, "retries", 5, "attempts of a batch that failed in a way worth retrying (unavailable, throttled, broken stream)")
	timeout := f.Duration("timeout", 30*time.Second, "longest wait for one batch's acknowledgement")
	f.IntVar(&c.gen.Active, "active", d.Active, "visitors of each property in progress at once")
	f.IntVar(&c.gen.Pages, "pages", d.Pages, "distinct page paths per property")
	zipf := f.Float("zipf", d.ZipfS, "exponent of the Zipf distribution of page popularity (> 1)")
	sessionEvents := f.Float("session-events", d.SessionEvents, "mean events per session")
	visitorEvents := f.Float("visitor-events", d.VisitorEvents, "mean events per visitor (rounded to whole batches)")
	timeOrder := f.Bool("time-order", false, "event times advance with the events sent, from the start of --history to its end, instead of being spread over it at random (needs --events)")
	history := f.Duration("history", 2*time.Hour, "spread event times over this much of the past (at most 72h minus the run; 0: no event times)")
	start := f.String("window-end", "", "end of the event-time window, RFC 3339 (default: now)")
	bots := f.Float("bots", d.Bots, "share of visitors that are crawlers")
	newVisitors := f.Float("new-visitors", d.NewVisitors, "share of visitors that are new (first_visit)")
	freshness := f.Bool("freshness", false, "probe freshness while sending: a marker event, then RunReport polled until it shows")
	freshEvery := f.Duration("freshness-interval", time.Second, "time between freshness probes")
	freshPoll := f.Duration("freshness-poll", 5*time.Millisecond, "how often a probe polls RunReport")
	freshTimeout := f.Duration("freshness-timeout", 30*time.Second, "a probe not visible after this counts as timed out")
	probeKeys := f.String("freshness-keys-file", "", "keys (one JSON line) of a property that receives only the probes, so that polling it is cheap; default: the first property")
	f.StringVar(&c.freshReport, "freshness-report", "realtime", "what a probe polls: realtime (RunRealtimeReport of the last 2 minutes) or report (RunReport of today)")
	propsZipf := f.String("properties-zipf", "", "draw each batch's property at random, the k-th of the keys (from 0) with weight (k+1)^-S, S >= 0 (unary and rest modes; default: each worker sends one property's batches)")
	if err := f.parse(args); err != nil {
		return c, err
	}
	activeSet := false
	f.Visit(func(fl *flag.Flag) { activeSet = activeSet || fl.Name == "active" })
	if _, ok := os.LookupEnv(envName("active")); ok {
		activeSet = true
	}
	c.rate, c.duration, c.events, c.asJSON, c.progress, c.timeout = *rateF, *dur, int64(*events), *asJSON, *progress, *timeout
	c.gen.Seed, c.gen.ZipfS, c.gen.SessionEvents, c.gen.VisitorEvents = int64(*seed), *zipf, *sessionEvents, *visitorEvents
	c.gen.History, c.gen.Bots, c.gen.NewVisitors = *history, *bots, *newVisitors
	c.freshness, c.freshEvery, c.freshPoll, c.freshTimeout = *freshness, *freshEvery, *freshPoll, *freshTimeout
	c.timeOrder = *timeOrder
	var errs []error
	if c.timeOrder && (c.events <= 0 || c.gen.History <= 0) {
		errs = append(errs, errors.New("--time-order needs --events and a --history"))
	}
	switch c.mode {
	case "stream", "unary", "rest":
	default:
		errs = append(errs, fmt.Errorf("--mode: %q is not stream, unary or rest", c.mode))
	}
	if c.concurrency <= 0 {
		c.concurrency = map[string]int{"stream": 8, "unary": 32, "rest": 64}[c.mode]
	}
	if c.conns <= 0 {
		c.conns = min(c.concurrency, 4)
	}
	if c.inflight < 1 {
		errs = append(errs, errors.New("--inflight must be positive"))
	}
	if c.events < 0 || c.duration < 0 || c.rate < 0 {
		errs = append(errs, errors.New("--events, --duration and --rate must not be negative"))
	}
	if c.events == 0 && c.duration == 0 {
		errs = append(errs, errors.New("give --events N or --duration D"))
	}
	if c.gen.History > 0 && c.duration > 0 && c.gen.History+c.duration > 72*time.Hour-5*time.Minute {
		errs = append(errs, fmt.Errorf("--history %v plus --duration %v leave events older than Sextant's 72h limit by the end", c.gen.History, c.duration))
	}
	c.gen.End = time.Now().Truncate(time.Second)
	if *start != "" {
		t, err := time.Parse(time.RFC3339, *start)
		if err != nil {
			errs = append(errs, fmt.Errorf("--window-end: %w", err))
		}
		c.gen.End = t
	}
	if _, err := c.gen.WithDefaults(); err != nil {
		errs = append(errs, err)
	}
	for _, k := range keyList {
		c.keys = append(c.keys, loadgen.Keys{WriteKey: k})
	}
	if *keysFile != "" {
		fh, err := os.Open(*keysFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("--keys-file: %w", err))
		} else {
			ks, err := loadgen.ReadKeys(fh)
			fh.Close()
			if err != nil {
				errs = append(errs, fmt.Errorf("--keys-file %s: %w", *keysFile, err))
			}
			c.keys = append(c.keys, ks...)
		}
	}
	if len(c.keys) == 0 {
		errs = append(errs, errors.New("give the properties' write keys with --keys or --keys-file"))
	}
	if *propsZipf != "" {
		s, err := strconv.ParseFloat(*propsZipf, 64)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("--properties-zipf: %q is not a number", *propsZipf))
		case c.mode == "stream":
			errs = append(errs, errors.New("--properties-zipf needs --mode unary or rest (a stream is authorised for one property)"))
		case len(c.keys) > 0:
			if c.spread, err = loadgen.NewSpread(len(c.keys), s); err != nil {
				errs = append(errs, fmt.Errorf("--properties-zipf: %w", err))
			}
		}
		if !activeSet {
			c.gen.Active = 8
		}
	}
	if *readKey != "" && len(c.keys) > 0 {
		c.keys[0].ReadKey = *readKey
	}
	if len(c.keys) > 0 {
		c.probe = c.keys[0]
	}
	if *probeKeys != "" {
		fh, err := os.Open(*probeKeys)
		if err != nil {
			errs = append(errs, fmt.Errorf("--freshness-keys-file: %w", err))
		} else {
			ks, err := loadgen.ReadKeys(fh)
			fh.Close()
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("--freshness-keys-file %s: %w", *probeKeys, err))
			case len(ks) != 1:
				errs = append(errs, fmt.Errorf("--freshness-keys-file %s: want one property, got %d", *probeKeys, len(ks)))
			default:
				c.probe, c.probeIndex = ks[0], len(c.keys)
			}
		}
	}
	if c.freshness && c.probe.ReadKey == "" {
		errs = append(errs, errors.New("--freshness needs a read key: the first property's (--keys-file or --read-key) or --freshness-keys-file"))
	}
	if c.freshReport != "realtime" && c.freshReport != "report" {
		errs = append(errs, fmt.Errorf("--freshness-report: %q is neither realtime nor report", c.freshReport))
	}
	if c.freshPoll <= 0 || c.freshEvery <= 0 {
		errs = append(errs, errors.New("--freshness-interval and --freshness-poll must be positive"))
	}
	target, base, err := serverAddrs(c.server)
	if err != nil {
		errs = append(errs, err)
	}
	c.grpcTarget, c.httpBase = target, base
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(stderr, err)
		return c, errUsage
	}
	return c, nil
}

// serverAddrs turns --server into a gRPC target and an HTTP base URL.
func serverAddrs(s string) (target, base string, err error) {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Scheme != "http" {
		return "", "", fmt.Errorf("--server: want http://host:port or host:port, got %q", s)
	}
	host := u.Host
	if _, _, err := net.SplitHostPort(host); err != nil {
		host = net.JoinHostPort(host, "80")
	}
	return "passthrough:///" + host, "http://" + host, nil
}

// loadgenCmd runs `sextant loadgen`.
func loadgenCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseLoadgen(args, stderr)
	if err != nil {
		return err
	}
	r, err := newRunner(cfg, stderr)
	if err != nil {
		return err
	}
	defer r.close()
	res := r.run(ctx)
	if cfg.truthFile != "" {
		if err := writeTruth(cfg.truthFile, r.truth); err != nil {
			return err
		}
		res.TruthFile = cfg.truthFile
	}
	if cfg.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		printLoadgen(stdout, res)
	}
	switch {
	case res.EventsAcked == 0:
		return errors.New("loadgen: no event was acknowledged")
	case res.EventsFailed > 0:
		return fmt.Errorf("loadgen: %d events failed (their batches may or may not be stored)", res.EventsFailed)
	}
	return nil
}

func writeTruth(path string, t *loadgen.Truth) error {
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := t.WriteJSON(fh); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}

// loadgenResult is what a run reports.
type loadgenResult struct {
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
	Freshness       *freshnessResult `json:"freshness,omitempty"`
	Errors          []string         `json:"errors,omitempty"`
	TruthFile       string           `json:"truthFile,omitempty"`
	Interrupted     bool             `json:"interrupted,omitempty"`

	// PropertiesZipf is --properties-zipf, and PropertiesWithTraffic the
	// properties that got at least one batch.
	PropertiesZipf        float64 `json:"propertiesZipf,omitempty"`
	PropertiesWithTraffic int     `json:"propertiesWithTraffic,omitempty"`
}

type freshnessResult struct {
	loadgen.Summary
	TimedOut int64           `json:"timedOut"`
	Failed   int64           `json:"failed"`
	Report   string          `json:"report"`       // what the probes polled
	Query    loadgen.Summary `json:"queryLatency"` // of the probes' report calls
}

func printLoadgen(w io.Writer, r loadgenResult) {
	conc := fmt.Sprintf("%d requests in flight", r.Concurrency)
	if r.Mode == "stream" {
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

// --- the runner ---

// rawFrame is an already encoded protobuf message: the codec sends it as
// it is.
type rawFrame []byte

// loadgenCodec sends rawFrames as they are and everything else as
// protobuf, so that batches are encoded once, by pkg/loadgen.
type loadgenCodec struct{}

func (loadgenCodec) Marshal(v any) (mem.BufferSlice, error) {
	if f, ok := v.(rawFrame); ok {
		return mem.BufferSlice{mem.SliceBuffer(f)}, nil
	}
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("loadgen codec: cannot marshal %T", v)
	}
	b, err := proto.Marshal(m)
	return mem.BufferSlice{mem.SliceBuffer(b)}, err
}

func (loadgenCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("loadgen codec: cannot unmarshal into %T", v)
	}
	return proto.Unmarshal(data.Materialize(), m)
}

func (loadgenCodec) Name() string { return "proto" }

const (
	collectMethod       = "/sextant.collect.v1.CollectService/Collect"
	streamCollectMethod = "/sextant.collect.v1.CollectService/StreamCollect"
)

var streamCollectDesc = &grpc.StreamDesc{StreamName: "StreamCollect", ServerStreams: true, ClientStreams: true}

// source hands out one property's batches.
type source struct {
	mu        sync.Mutex
	gen       *loadgen.Generator // nil until the property's first batch (--properties-zipf)
	cfg       loadgen.Config     // of gen
	remaining int64              // events left; -1: unlimited (and always with --properties-zipf)
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

type runner struct {
	cfg      loadgenConfig
	stderr   io.Writer
	sources  []*source
	limiter  *rate.Limiter
	conns    []*grpc.ClientConn
	http     *http.Client
	truth    *loadgen.Truth
	deadline time.Time
	stop     chan struct{} // closed when no new batch may start
	stopOnce sync.Once

	batchesSent, eventsSent         atomic.Int64
	batchesAcked, eventsAcked       atomic.Int64
	batchesRejected, eventsRejected atomic.Int64
	eventsFailed, retries           atomic.Int64
	lastAck, maxAckGap              atomic.Int64 // Unix nanoseconds; nanoseconds
	streamErrors                    atomic.Int64

	errMu  sync.Mutex
	errors []string

	fresh freshnessState

	// With --properties-zipf: the events left of all properties (-1:
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

func newRunner(cfg loadgenConfig, stderr io.Writer) (*runner, error) {
	r := &runner{cfg: cfg, stderr: stderr, stop: make(chan struct{})}
	ids := make([]string, len(cfg.keys), len(cfg.keys)+1)
	for i, k := range cfg.keys {
		ids[i] = k.PropertyID
	}
	if cfg.probeIndex == len(cfg.keys) {
		ids = append(ids, cfg.probe.PropertyID)
	}
	r.truth = loadgen.NewTruth(ids)
	n := int64(len(cfg.keys))
	if cfg.spread != nil {
		// Generators start at a property's first batch: most of many
		// properties get few batches, or none.
		if _, err := cfg.gen.WithDefaults(); err != nil {
			return nil, err
		}
		r.remaining.Store(-1)
		if cfg.events > 0 {
			r.remaining.Store(cfg.events)
		}
		r.pickRng = rand.New(rand.NewPCG(uint64(cfg.gen.Seed), 0x5bead))
		for i := range cfg.keys {
			gc := cfg.gen
			if cfg.timeOrder {
				gc.TimeOrder = max(1, int64(math.Round(float64(cfg.events)*cfg.spread.Share(i))))
			}
			r.sources = append(r.sources, &source{cfg: gc, remaining: -1})
		}
	}
	for i := range cfg.keys {
		if cfg.spread != nil {
			break
		}
		remaining := int64(-1)
		if cfg.events > 0 {
			remaining = cfg.events / n
			if int64(i) < cfg.events%n {
				remaining++
			}
		}
		gc := cfg.gen
		if cfg.timeOrder {
			gc.TimeOrder = remaining
		}
		g, err := loadgen.New(gc, i)
		if err != nil {
			return nil, err
		}
		s := &source{gen: g, cfg: gc, remaining: remaining}
		r.sources = append(r.sources, s)
	}
	if cfg.rate > 0 {
		burst := max(cfg.gen.BatchSize, int(cfg.rate/50))
		r.limiter = rate.NewLimiter(rate.Limit(cfg.rate), burst)
	}
	if cfg.mode != "rest" || cfg.freshness {
		conns := cfg.conns
		if cfg.mode == "rest" {
			conns = 1
		}
		for range conns {
			cc, err := grpc.NewClient(cfg.grpcTarget,
				grpc.WithTransportCredentials(insecure.NewCredentials()),
				grpc.WithInitialWindowSize(4<<20), grpc.WithInitialConnWindowSize(16<<20),
				grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
			if err != nil {
				r.close()
				return nil, err
			}
			r.conns = append(r.conns, cc)
		}
	}
	if cfg.mode == "rest" {
		r.http = &http.Client{Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        cfg.concurrency * 2,
			MaxIdleConnsPerHost: cfg.concurrency * 2,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		}}
	}
	return r, nil
}

func (r *runner) close() {
	for _, c := range r.conns {
		_ = c.Close()
	}
	if r.http != nil {
		r.http.CloseIdleConnections()
	}
}

func (r *runner) noteError(msg string) {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	for _, e := range r.errors {
		if e == msg {
			return
		}
	}
	if len(r.errors) < r.cfg.maxErrorsKept {
		r.errors = append(r.errors, msg)
	}
}

func (r *runner) stopping() bool {
	select {
	case <-r.stop:
		return true
	default:
	}
	if !r.deadline.IsZero() && time.Now().After(r.deadline) {
		r.stopOnce.Do(func() { close(r.stop) })
		return true
	}
	return false
}

// reserve takes up to n events of the run's remaining ones
// (--properties-zipf): 0 when none are left, n when unlimited.
func (r *runner) reserve(n int64) int64 {
	for {
		left := r.remaining.Load()
		if left < 0 {
			return n
		}
		got := min(left, n)
		if got == 0 || r.remaining.CompareAndSwap(left, left-got) {
			return got
		}
	}
}

// take returns the next batch of property p (with --properties-zipf, of a
// property drawn at random), encoded for the mode, or nil when the run is
// over for it. It waits for the rate limiter.
func (r *runner) take(ctx context.Context, p int) *entry {
	if r.stopping() || ctx.Err() != nil {
		return nil
	}
	var reserved int64
	if r.cfg.spread != nil {
		if reserved = r.reserve(int64(r.cfg.gen.BatchSize)); reserved == 0 {
			return nil
		}
		r.pickMu.Lock()
		p = r.cfg.spread.Pick(r.pickRng)
		r.pickMu.Unlock()
	}
	s := r.sources[p]
	s.mu.Lock()
	if s.remaining == 0 {
		s.mu.Unlock()
		return nil
	}
	if s.gen == nil {
		g, err := loadgen.New(s.cfg, p)
		if err != nil { // the config was validated: not expected
			s.mu.Unlock()
			r.noteError("generator: " + err.Error())
			return nil
		}
		s.gen = g
	}
	limit := 0
	if s.remaining > 0 {
		limit = int(min(s.remaining, int64(r.cfg.gen.BatchSize)))
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
	if unused := reserved - int64(len(b.Events)); unused > 0 && r.remaining.Load() >= 0 {
		// The visitor had fewer events left: give the rest back (this
		// worker takes again, so none is lost at the end).
		r.remaining.Add(unused)
	}
	if r.limiter != nil {
		if err := r.limiter.WaitN(ctx, len(b.Events)); err != nil {
			return nil
		}
	}
	e := &entry{b: b}
	if r.cfg.mode == "rest" {
		e.body = loadgen.AppendJSON(make([]byte, 0, 400*len(b.Events)), b)
	} else {
		e.body = loadgen.AppendProto(make([]byte, 0, 350*len(b.Events)), b)
	}
	r.batchesSent.Add(1)
	r.eventsSent.Add(int64(len(b.Events)))
	return e
}

func (r *runner) acked(h *loadgen.Histogram, e *entry, now time.Time) {
	h.Record(now.Sub(e.sent))
	r.noteAck(now)
	r.batchesAcked.Add(1)
	r.eventsAcked.Add(int64(len(e.b.Events)))
	if r.cfg.truthFile != "" {
		r.truth.Add(e.b, now)
	}
}

// noteAck records an acknowledgement's time and the longest time between
// two consecutive acknowledgements of the run.
func (r *runner) noteAck(now time.Time) {
	t := now.UnixNano()
	for {
		last := r.lastAck.Load()
		if last >= t {
			return
		}
		if r.lastAck.CompareAndSwap(last, t) {
			if last > 0 {
				for gap := t - last; ; {
					cur := r.maxAckGap.Load()
					if gap <= cur || r.maxAckGap.CompareAndSwap(cur, gap) {
						break
					}
				}
			}
			return
		}
	}
}

func (r *runner) rejected(e *entry, msg string) {
	r.batchesRejected.Add(1)
	r.eventsRejected.Add(int64(len(e.b.Events)))
	r.noteError("rejected: " + msg)
}

func (r *runner) failed(e *entry, msg string) {
	r.eventsFailed.Add(int64(len(e.b.Events)))
	r.noteError("failed after " + strconv.Itoa(e.attempts) + " attempts: " + msg)
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

func (r *runner) run(ctx context.Context) loadgenResult {
	if r.cfg.duration > 0 {
		r.deadline = time.Now().Add(r.cfg.duration)
	}
	start := time.Now()
	var wg sync.WaitGroup
	workers := max(r.cfg.concurrency, len(r.sources))
	if r.cfg.spread != nil {
		workers = r.cfg.concurrency
	}
	hists := make([]*loadgen.Histogram, workers)
	histMu := make([]sync.Mutex, workers)
	for w := range workers {
		hists[w] = &loadgen.Histogram{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := &lockedHist{mu: &histMu[w], h: hists[w]}
			switch r.cfg.mode {
			case "stream":
				r.streamWorker(ctx, w, h)
			case "unary":
				r.unaryWorker(ctx, w, h)
			case "rest":
				r.restWorker(ctx, w, h)
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
	if r.cfg.freshness {
		r.fresh.enabled = true
		r.fresh.done = make(chan struct{})
		go func() {
			defer close(r.fresh.done)
			r.probeFreshness(ctx)
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var tick <-chan time.Time
	if r.cfg.progress > 0 {
		t := time.NewTicker(r.cfg.progress)
		defer t.Stop()
		tick = t.C
	}
	lastAcked, lastT := int64(0), start
	for running := true; running; {
		select {
		case <-done:
			running = false
		case now := <-tick:
			acked := r.eventsAcked.Load()
			h := merged()
			fmt.Fprintf(r.stderr, "loadgen: %5.0fs sent %d acked %d (%.0f events/s) rejected %d failed %d, batch ack p50 %.1fms p99 %.1fms\n",
				now.Sub(start).Seconds(), r.eventsSent.Load(), acked, float64(acked-lastAcked)/now.Sub(lastT).Seconds(),
				r.eventsRejected.Load(), r.eventsFailed.Load(), ms(h.Quantile(0.5)), ms(h.Quantile(0.99)))
			lastAcked, lastT = acked, now
		}
	}
	elapsed := time.Since(start)
	r.stopOnce.Do(func() { close(r.stop) })
	if r.fresh.enabled {
		<-r.fresh.done
	}
	res := loadgenResult{
		Mode: r.cfg.mode, Server: r.cfg.httpBase, BatchSize: r.cfg.gen.BatchSize, Concurrency: workers,
		Properties: len(r.sources), Seed: r.cfg.gen.Seed, TargetRate: r.cfg.rate, History: r.cfg.gen.History.String(),
		ElapsedSeconds: elapsed.Seconds(),
		BatchesSent:    r.batchesSent.Load(), EventsSent: r.eventsSent.Load(),
		BatchesAcked: r.batchesAcked.Load(), EventsAcked: r.eventsAcked.Load(),
		BatchesRejected: r.batchesRejected.Load(), EventsRejected: r.eventsRejected.Load(),
		EventsFailed: r.eventsFailed.Load(), Retries: r.retries.Load(), StreamErrors: r.streamErrors.Load(),
		Latency:         merged().Summary(),
		LongestAckGapMs: float64(r.maxAckGap.Load()) / 1e6,
		Errors:          r.errors,
		Interrupted:     ctx.Err() != nil,
	}
	if r.cfg.mode != "rest" {
		res.Connections = len(r.conns)
	}
	if r.cfg.spread != nil {
		res.PropertiesZipf = r.cfg.spread.Exponent()
		for _, s := range r.sources {
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
	if r.fresh.enabled {
		r.fresh.mu.Lock()
		res.Freshness = &freshnessResult{Summary: r.fresh.hist.Summary(), TimedOut: r.fresh.timedOut, Failed: r.fresh.failed,
			Report: r.cfg.freshReport, Query: r.fresh.query.Summary()}
		r.fresh.mu.Unlock()
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

func (r *runner) authCtx(ctx context.Context, p int) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+r.cfg.keys[p].WriteKey)
}

// --- stream mode ---

// streamState is what one stream has in flight.
type streamState struct {
	mu      sync.Mutex
	pending []*entry // sent, not acknowledged, in order
	retry   []*entry // to resend once notBefore has passed
}

func (s *streamState) popRetry(now time.Time) *entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, e := range s.retry {
		if !now.Before(e.notBefore) {
			s.retry = append(s.retry[:i], s.retry[i+1:]...)
			return e
		}
	}
	return nil
}

func (s *streamState) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending) == 0 && len(s.retry) == 0
}

func (s *streamState) oldest() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) == 0 {
		return time.Time{}
	}
	return s.pending[0].sent
}

// streamWorker keeps one stream of property w%P busy, reopening it when it
// breaks and resending what was not acknowledged.
func (r *runner) streamWorker(ctx context.Context, w int, h *lockedHist) {
	p := w % len(r.sources)
	conn := r.conns[w%len(r.conns)]
	var leftover []*entry
	exhausted := false
	for attempt := 0; ; attempt++ {
		var done bool
		leftover, exhausted, done = r.streamSession(ctx, p, conn, leftover, exhausted, h)
		if done || ctx.Err() != nil {
			for _, e := range leftover {
				r.failed(e, "stream ended: "+errString(ctx.Err()))
			}
			return
		}
		kept := leftover[:0]
		for _, e := range leftover {
			if e.attempts >= r.cfg.retries {
				r.failed(e, "stream broke repeatedly")
				continue
			}
			kept = append(kept, e)
		}
		leftover = kept
		if exhausted && len(leftover) == 0 {
			return
		}
		select {
		case <-time.After(backoff(min(attempt+1, 10))):
		case <-ctx.Done():
		}
	}
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}

// streamSession runs one stream until it breaks or the run is over. It
// returns the batches to resend on a new stream, whether the property's
// batches are exhausted, and whether the worker is done.
func (r *runner) streamSession(ctx context.Context, p int, conn *grpc.ClientConn, resend []*entry, exhausted bool, h *lockedHist) ([]*entry, bool, bool) {
	sctx, cancel := context.WithCancel(r.authCtx(ctx, p))
	defer cancel()
	cs, err := conn.NewStream(sctx, streamCollectDesc, streamCollectMethod, grpc.ForceCodecV2(loadgenCodec{}))
	if err != nil {
		r.streamErrors.Add(1)
		r.noteError("open stream: " + err.Error())
		return resend, exhausted, false
	}
	st := &streamState{retry: resend}
	window := make(chan struct{}, r.cfg.inflight)
	recvDone := make(chan error, 1)
	go func() {
		for {
			var resp collectv1.StreamCollectResponse
			if err := cs.RecvMsg(&resp); err != nil {
				recvDone <- err
				return
			}
			now := time.Now()
			st.mu.Lock()
			if len(st.pending) == 0 || st.pending[0].seq != resp.Sequence {
				st.mu.Unlock()
				recvDone <- fmt.Errorf("acknowledgement of sequence %d out of order", resp.Sequence)
				return
			}
			e := st.pending[0]
			st.pending = st.pending[1:]
			st.mu.Unlock()
			<-window
			if be := resp.GetError(); be != nil {
				if retriable(be.Code) && e.attempts < r.cfg.retries {
					r.retries.Add(1)
					e.notBefore = now.Add(backoff(e.attempts))
					st.mu.Lock()
					st.retry = append(st.retry, e)
					st.mu.Unlock()
				} else if retriable(be.Code) {
					r.failed(e, be.Code+": "+be.Message)
				} else {
					r.rejected(e, be.Code+": "+be.Message)
				}
				continue
			}
			h.Histogram(func(hh *loadgen.Histogram) { r.acked(hh, e, now) })
		}
	}()
	var seq uint64
	broken := func(err error) ([]*entry, bool, bool) {
		r.streamErrors.Add(1)
		r.noteError("stream: " + err.Error())
		cancel()
		<-recvDone
		st.mu.Lock()
		defer st.mu.Unlock()
		return append(st.pending, st.retry...), exhausted, false
	}
	for {
		// The ack timeout: a stream that stopped answering is replaced.
		if o := st.oldest(); !o.IsZero() && time.Since(o) > r.cfg.timeout {
			return broken(fmt.Errorf("no acknowledgement in %v", r.cfg.timeout))
		}
		select {
		case window <- struct{}{}:
		case err := <-recvDone:
			recvDone <- err
			return broken(err)
		case <-ctx.Done():
			cancel()
			<-recvDone
			return append(st.pending, st.retry...), exhausted, true
		}
		e := st.popRetry(time.Now())
		if e == nil && !exhausted {
			if e = r.take(ctx, p); e == nil {
				exhausted = true
			}
		}
		if e == nil {
			<-window
			if exhausted && st.idle() {
				_ = cs.CloseSend()
				err := <-recvDone
				if err != io.EOF {
					st.mu.Lock()
					left := append(st.pending, st.retry...)
					st.mu.Unlock()
					if len(left) > 0 {
						r.streamErrors.Add(1)
						r.noteError("stream end: " + err.Error())
						return left, exhausted, false
					}
				}
				return nil, true, true
			}
			select {
			case err := <-recvDone:
				recvDone <- err
			case <-time.After(2 * time.Millisecond):
			case <-ctx.Done():
			}
			continue
		}
		seq++
		e.seq = seq
		e.attempts++
		frame := loadgen.AppendStreamRequest(make([]byte, 0, len(e.body)+16), seq, e.body)
		st.mu.Lock()
		e.sent = time.Now()
		st.pending = append(st.pending, e)
		st.mu.Unlock()
		if err := cs.SendMsg(rawFrame(frame)); err != nil {
			return broken(err)
		}
	}
}

// --- unary gRPC and REST ---

func (r *runner) unaryWorker(ctx context.Context, w int, h *lockedHist) {
	p := w % len(r.sources)
	conn := r.conns[w%len(r.conns)]
	r.requestLoop(ctx, p, h, func(e *entry) (bool, string, time.Duration) {
		cctx, cancel := context.WithTimeout(r.authCtx(ctx, e.b.Property), r.cfg.timeout)
		defer cancel()
		var resp collectv1.CollectResponse
		err := conn.Invoke(cctx, collectMethod, rawFrame(e.body), &resp, grpc.ForceCodecV2(loadgenCodec{}))
		if err == nil {
			return true, "", 0
		}
		st := status.Convert(err)
		code := strings.ToUpper(codeName(st.Code()))
		msg := code + ": " + st.Message()
		if retriable(code) || st.Code() == codes.Canceled && ctx.Err() == nil {
			return false, msg, backoff(e.attempts)
		}
		return false, msg, -1
	})
}

func codeName(c codes.Code) string {
	s := c.String()
	var b strings.Builder
	for i, r := range s {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (r *runner) restWorker(ctx context.Context, w int, h *lockedHist) {
	p := w % len(r.sources)
	url := r.cfg.httpBase + "/v1/collect"
	r.requestLoop(ctx, p, h, func(e *entry) (bool, string, time.Duration) {
		auth := "Bearer " + r.cfg.keys[e.b.Property].WriteKey
		cctx, cancel := context.WithTimeout(ctx, r.cfg.timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(cctx, http.MethodPost, url, bytes.NewReader(e.body))
		if err != nil {
			return false, err.Error(), -1
		}
		req.Header.Set("Authorization", auth)
		req.Header.Set("Content-Type", "application/json")
		resp, err := r.http.Do(req)
		if err != nil {
			return false, err.Error(), backoff(e.attempts)
		}
		var body []byte
		if resp.StatusCode == http.StatusOK {
			_, _ = io.Copy(io.Discard, resp.Body)
		} else {
			body, _ = io.ReadAll(io.LimitReader(resp.Body, 512))
		}
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusOK:
			return true, "", 0
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
			wait := backoff(e.attempts)
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
				wait = min(time.Duration(s)*time.Second, 2*time.Second)
			}
			return false, fmt.Sprintf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(body)), wait
		}
		return false, fmt.Sprintf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(body)), -1
	})
}

// requestLoop sends property p's batches one request at a time. send
// reports success, or an error message with the wait before a retry (-1:
// do not retry).
func (r *runner) requestLoop(ctx context.Context, p int, h *lockedHist, send func(*entry) (bool, string, time.Duration)) {
	for {
		e := r.take(ctx, p)
		if e == nil {
			return
		}
		for {
			e.attempts++
			e.sent = time.Now()
			ok, msg, wait := send(e)
			if ok {
				now := time.Now()
				h.Histogram(func(hh *loadgen.Histogram) { r.acked(hh, e, now) })
				break
			}
			if wait < 0 {
				r.rejected(e, msg)
				break
			}
			if e.attempts >= r.cfg.retries || ctx.Err() != nil {
				r.failed(e, msg)
				break
			}
			r.retries.Add(1)
			select {
			case <-time.After(wait):
			case <-ctx.Done():
			}
		}
	}
}

// --- freshness ---

// probeFreshness sends a marker page view with a unique path to the probe
// property (the first, or the one of --freshness-keys-file) every interval
// while the load runs, and polls RunReport with an
// EXACT filter on the path until it shows: the time from the collect
// acknowledgement to then is the freshness. Probes overlap when one takes
// longer than the interval (at most 8 at once).
func (r *runner) probeFreshness(ctx context.Context) {
	tag := strconv.FormatInt(r.cfg.gen.Seed, 36) + "-" + strconv.FormatInt(time.Now().UnixMilli(), 36)
	tick := time.NewTicker(r.cfg.freshEvery)
	defer tick.Stop()
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	defer wg.Wait()
	for n := int64(1); ; n++ {
		if n > 1 { // the first probe goes at once
			select {
			case <-tick.C:
			case <-r.stop:
				return
			case <-ctx.Done():
				return
			}
			if r.stopping() {
				return
			}
		}
		if n == 1 {
			sem <- struct{}{}
		} else {
			select {
			case sem <- struct{}{}:
			case <-r.stop:
				return
			case <-ctx.Done():
				return
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r.probe(ctx, tag, n)
		}()
	}
}

func (r *runner) probe(ctx context.Context, tag string, n int64) {
	k := r.cfg.probe
	conn := r.conns[int(n)%len(r.conns)]
	wctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+k.WriteKey)
	rctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+k.ReadKey)
	cc := collectv1.NewCollectServiceClient(conn)
	ic := insightsv1.NewInsightsServiceClient(conn)
	path := "/__freshness/" + tag + "/" + strconv.FormatInt(n, 10)
	now := time.Now()
	b := &loadgen.Batch{
		Property: r.cfg.probeIndex, Visitor: -n, ClientID: "freshness-" + tag + "-" + strconv.FormatInt(n, 10),
		Events: []loadgen.Event{{
			Name: "page_view", ID: "fresh-" + tag + "-" + strconv.FormatInt(n, 10),
			Location: "https://probe.example" + path, Path: path,
			SessionID: now.Unix(), SessionNumber: 1,
		}},
	}
	cctx, cancel := context.WithTimeout(wctx, r.cfg.timeout)
	_, err := cc.Collect(cctx, loadgen.ToProto(b))
	cancel()
	ack := time.Now()
	if err != nil {
		r.fresh.mu.Lock()
		r.fresh.failed++
		r.fresh.mu.Unlock()
		r.noteError("freshness probe: " + err.Error())
		return
	}
	r.truth.Add(b, ack)
	filter := &insightsv1.FilterExpression{Expr: &insightsv1.FilterExpression_Filter{Filter: &insightsv1.Filter{
		FieldName: "pagePath",
		OneFilter: &insightsv1.Filter_StringFilter{StringFilter: &insightsv1.StringFilter{
			MatchType: insightsv1.StringFilter_EXACT, Value: path, CaseSensitive: true,
		}},
	}}}
	// visible runs the probe's report once: the realtime report of the
	// last two minutes (the cheapest that can show the marker, so that the
	// measure is the pipeline's, not the query's) or today's report.
	visible := func(ctx context.Context) (bool, error) {
		if r.cfg.freshReport == "report" {
			resp, err := ic.RunReport(ctx, &insightsv1.RunReportRequest{
				Dimensions: []*insightsv1.Dimension{{Name: "pagePath"}}, Metrics: []*insightsv1.Metric{{Name: "eventCount"}},
				DateRanges: []*insightsv1.DateRange{{StartDate: "today", EndDate: "today"}}, DimensionFilter: filter,
			})
			return err == nil && len(resp.Rows) > 0, err
		}
		resp, err := ic.RunRealtimeReport(ctx, &insightsv1.RunRealtimeReportRequest{
			Dimensions: []*insightsv1.Dimension{{Name: "pagePath"}}, Metrics: []*insightsv1.Metric{{Name: "eventCount"}},
			MinuteRanges:    []*insightsv1.MinuteRange{{StartMinutesAgo: proto.Int32(1), EndMinutesAgo: proto.Int32(0)}},
			DimensionFilter: filter,
		})
		return err == nil && len(resp.Rows) > 0, err
	}
	for {
		qctx, cancel := context.WithTimeout(rctx, r.cfg.timeout)
		q0 := time.Now()
		ok, err := visible(qctx)
		qd := time.Since(q0)
		cancel()
		r.fresh.mu.Lock()
		r.fresh.query.Record(qd)
		r.fresh.mu.Unlock()
		if ok {
			d := time.Since(ack)
			r.fresh.mu.Lock()
			r.fresh.hist.Record(d)
			r.fresh.mu.Unlock()
			return
		}
		if err != nil && ctx.Err() == nil {
			r.noteError("freshness query: " + err.Error())
		}
		if time.Since(ack) > r.cfg.freshTimeout || ctx.Err() != nil {
			r.fresh.mu.Lock()
			r.fresh.timedOut++
			r.fresh.mu.Unlock()
			return
		}
		time.Sleep(r.cfg.freshPoll)
	}
}
