package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/sextant-analytics/sextant/pkg/loadgen"
	"github.com/sextant-analytics/sextant/pkg/loadgen/driver"
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

// loadgenConfig is the parsed command line: the driver's run, and what
// to do with its result.
type loadgenConfig struct {
	run       driver.Config
	truthFile string
	asJSON    bool
}

func parseLoadgen(args []string, stderr io.Writer) (loadgenConfig, error) {
	var c loadgenConfig
	r := driver.Defaults()
	fr := driver.DefaultFreshness()
	f := newFlags("loadgen", stderr)
	d := loadgen.DefaultConfig()
	f.StringVar(&r.Server, "server", r.Server, "the Sextant server or gateway (URL or host:port)")
	f.StringVar(&r.Mode, "mode", r.Mode, "stream (gRPC StreamCollect), unary (gRPC Collect) or rest (POST /v1/collect)")
	f.IntVar(&r.Gen.BatchSize, "batch", d.BatchSize, "events per batch (1..500)")
	f.IntVar(&r.Concurrency, "concurrency", 0, "streams (stream) or requests in flight (unary, rest); 0: 8, 32, 64 by mode")
	f.IntVar(&r.Conns, "conns", 0, "gRPC connections (HTTP/2) the streams and calls share; 0: min(concurrency, 4)")
	f.IntVar(&r.Inflight, "inflight", r.Inflight, "stream mode: unacknowledged batches per stream")
	rateF := f.Float("rate", 0, "events per second, all properties together; 0 sends flat out")
	f.DurationVar(&r.Duration, "duration", 0, "how long to send (stop at --events or --duration, whichever first)")
	events := f.Int("events", 0, "events to send, split evenly over the properties")
	seed := f.Int("seed", 1, "random seed: the same seed sends the same events (ids included)")
	var keyList []string
	f.ListVar(&keyList, "keys", "write keys, one per property (key,…)")
	keysFile := f.String("keys-file", "", "JSON lines of {propertyId, writeKey, readKey} as `sextant property create --json` prints")
	readKey := f.Secret("read-key", "read key of the first property (freshness), when --keys gives only write keys")
	f.StringVar(&c.truthFile, "truth", "", "write the exact expected aggregates of what was acknowledged to this JSON file")
	asJSON := f.Bool("json", false, "print the results as JSON")
	f.DurationVar(&r.Progress, "progress", r.Progress, "print a progress line to stderr this often (0: never)")
	f.IntVar(&r.Retries, "retries", r.Retries, "attempts of a batch that failed in a way worth retrying (unavailable, throttled, broken stream)")
	f.DurationVar(&r.Timeout, "timeout", r.Timeout, "longest wait for one batch's acknowledgement")
	f.IntVar(&r.Gen.Active, "active", d.Active, "visitors of each property in progress at once")
	f.IntVar(&r.Gen.Pages, "pages", d.Pages, "distinct page paths per property")
	zipf := f.Float("zipf", d.ZipfS, "exponent of the Zipf distribution of page popularity (> 1)")
	sessionEvents := f.Float("session-events", d.SessionEvents, "mean events per session")
	visitorEvents := f.Float("visitor-events", d.VisitorEvents, "mean events per visitor (rounded to whole batches)")
	timeOrder := f.Bool("time-order", false, "event times advance with the events sent, from the start of --history to its end, instead of being spread over it at random (needs --events)")
	history := f.Duration("history", 2*time.Hour, "spread event times over this much of the past (at most 72h minus the run; 0: no event times)")
	start := f.String("window-end", "", "end of the event-time window, RFC 3339 (default: now)")
	bots := f.Float("bots", d.Bots, "share of visitors that are crawlers")
	newVisitors := f.Float("new-visitors", d.NewVisitors, "share of visitors that are new (first_visit)")
	freshness := f.Bool("freshness", false, "probe freshness while sending: a marker event, then RunReport polled until it shows")
	f.DurationVar(&fr.Interval, "freshness-interval", fr.Interval, "time between freshness probes")
	f.DurationVar(&fr.Poll, "freshness-poll", fr.Poll, "how often a probe polls RunReport")
	f.DurationVar(&fr.Timeout, "freshness-timeout", fr.Timeout, "a probe not visible after this counts as timed out")
	probeKeys := f.String("freshness-keys-file", "", "keys (one JSON line) of a property that receives only the probes, so that polling it is cheap; default: the first property")
	f.StringVar(&fr.Report, "freshness-report", fr.Report, "what a probe polls: realtime (RunRealtimeReport of the last 2 minutes) or report (RunReport of today)")
	propsZipf := f.String("properties-zipf", "", "draw each batch's property at random, the k-th of the keys (from 0) with weight (k+1)^-S, S >= 0 (unary and rest modes; default: each worker sends one property's batches)")
	if err := f.parse(args); err != nil {
		return c, err
	}
	activeSet := false
	f.Visit(func(fl *flag.Flag) { activeSet = activeSet || fl.Name == "active" })
	if _, ok := os.LookupEnv(envName("active")); ok {
		activeSet = true
	}
	r.Rate, r.Events, r.TimeOrder, r.Log = *rateF, int64(*events), *timeOrder, stderr
	r.Gen.Seed, r.Gen.ZipfS, r.Gen.SessionEvents, r.Gen.VisitorEvents = int64(*seed), *zipf, *sessionEvents, *visitorEvents
	r.Gen.History, r.Gen.Bots, r.Gen.NewVisitors = *history, *bots, *newVisitors
	r.Truth = c.truthFile != ""
	c.asJSON = *asJSON
	var errs []error
	r.Gen.End = time.Now().Truncate(time.Second)
	if *start != "" {
		t, err := time.Parse(time.RFC3339, *start)
		if err != nil {
			errs = append(errs, fmt.Errorf("--window-end: %w", err))
		}
		r.Gen.End = t
	}
	for _, k := range keyList {
		r.Keys = append(r.Keys, loadgen.Keys{WriteKey: k})
	}
	if *keysFile != "" {
		ks, err := readKeysFile(*keysFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("--keys-file %s: %w", *keysFile, err))
		}
		r.Keys = append(r.Keys, ks...)
	}
	if *propsZipf != "" {
		s, err := strconv.ParseFloat(*propsZipf, 64)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("--properties-zipf: %q is not a number", *propsZipf))
		case len(r.Keys) > 0:
			if r.Spread, err = loadgen.NewSpread(len(r.Keys), s); err != nil {
				errs = append(errs, fmt.Errorf("--properties-zipf: %w", err))
			}
		}
		if !activeSet {
			r.Gen.Active = 8
		}
	}
	if *readKey != "" && len(r.Keys) > 0 {
		r.Keys[0].ReadKey = *readKey
	}
	if *probeKeys != "" {
		ks, err := readKeysFile(*probeKeys)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("--freshness-keys-file %s: %w", *probeKeys, err))
		case len(ks) != 1:
			errs = append(errs, fmt.Errorf("--freshness-keys-file %s: want one property, got %d", *probeKeys, len(ks)))
		default:
			fr.Keys = &ks[0]
		}
	}
	if *freshness {
		r.Freshness = &fr
	} else if err := fr.Validate(); err != nil {
		errs = append(errs, err) // the flags are checked even when unused
	}
	if err := r.Validate(); err != nil {
		errs = append(errs, err)
	}
	c.run = r
	errs = []error{loadgenFlagErrors(errors.Join(errs...))}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(stderr, err)
		return c, errUsage
	}
	return c, nil
}

// loadgenFlags names the flags of the driver's config fields, for its
// errors.
var loadgenFlags = map[string]string{
	"TimeOrder": "--time-order", "Mode": "--mode", "Inflight": "--inflight",
	"Events": "--events", "Duration": "--duration", "Rate": "--rate", "Gen.History": "--history",
	"Keys": "--keys or --keys-file", "Spread": "--properties-zipf", "Server": "--server",
	"Freshness": "--freshness", "Freshness.Report": "--freshness-report",
	"Freshness.Interval": "--freshness-interval", "Freshness.Poll": "--freshness-poll",
}

// loadgenFlagErrors names the flags of the driver's field errors in err
// (joined errors), one a line.
func loadgenFlagErrors(err error) error {
	if err == nil {
		return nil
	}
	var all []error
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var fe *driver.FieldError
		switch {
		case !errors.As(err, &fe):
			all = append(all, err)
		case loadgenFlags[fe.Field] != "":
			all = append(all, fmt.Errorf("%s: %s", loadgenFlags[fe.Field], fe.Problem))
		default: // the generator's: they name what they are about
			all = append(all, errors.New(fe.Problem))
		}
	}
	walk(err)
	return errors.Join(all...)
}

func readKeysFile(path string) ([]loadgen.Keys, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return loadgen.ReadKeys(fh)
}

// loadgenCmd runs `sextant loadgen`.
func loadgenCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseLoadgen(args, stderr)
	if err != nil {
		return err
	}
	d, err := driver.New(cfg.run)
	if err != nil {
		return err
	}
	defer d.Close()
	res := d.Run(ctx)
	if cfg.truthFile != "" {
		if err := writeTruth(cfg.truthFile, d.Truth()); err != nil {
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
		res.WriteText(stdout)
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
