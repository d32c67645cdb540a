// Package driver sends the traffic of pkg/loadgen to a Sextant server or
// gateway and measures what was acknowledged and how fast: gRPC
// StreamCollect streams with many batches in flight, unary gRPC Collect
// calls or REST POST /v1/collect requests, retries of the batches that
// failed in a way worth retrying (event ids make a resent batch count
// once), freshness probes (how long an acknowledged event takes to show in
// reports) and the truth ledger of what was acknowledged.
//
// `sextant loadgen` is its command line, and pkg/demo fills the demo
// property of `sextant serve --demo` with it.
package driver

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/sextant-analytics/sextant/pkg/loadgen"
)

// Modes: how batches are sent.
const (
	// Stream sends over gRPC StreamCollect streams, each with up to
	// Config.Inflight unacknowledged batches (acknowledgements read
	// concurrently).
	Stream = "stream"
	// Unary sends gRPC Collect calls.
	Unary = "unary"
	// REST sends POST /v1/collect requests.
	REST = "rest"
)

// Freshness probes: what a probe polls.
const (
	// Realtime polls RunRealtimeReport of the last 2 minutes.
	Realtime = "realtime"
	// Report polls RunReport of today.
	Report = "report"
)

// Config is a run. Start from Defaults: zero is meaningful for most fields.
type Config struct {
	// Server is the Sextant server or gateway, http://host:port or
	// host:port.
	Server string
	// Conn, when set, carries the gRPC calls instead of connections
	// dialed to Server (a server's in-process connection); Conns is then
	// ignored, and Server needed only by REST.
	Conn grpc.ClientConnInterface
	// Mode is Stream, Unary or REST.
	Mode string
	// Concurrency is the streams (Stream) or requests in flight (Unary,
	// REST); 0 chooses 8, 32 or 64 by mode.
	Concurrency int
	// Conns is the gRPC connections (HTTP/2) the streams and calls
	// share; 0 chooses min(Concurrency, 4).
	Conns int
	// Inflight is the unacknowledged batches of one stream (Stream).
	Inflight int
	// Rate is the events per second of all properties together; 0 sends
	// flat out.
	Rate float64
	// Duration and Events stop the run, whichever comes first (0: no
	// limit; one of them must be set). Events are split evenly over the
	// properties.
	Duration time.Duration
	Events   int64
	// TimeOrder makes event times advance with the events sent, from the
	// start of Gen.History to its end (needs Events and a History).
	TimeOrder bool
	// Keys are the properties' keys; the generator's property i sends
	// with Keys[i].
	Keys []loadgen.Keys
	// Gen shapes the traffic (Gen.End is the end of the event-time
	// window, normally now).
	Gen loadgen.Config
	// Spread, when set, draws each batch's property at random (Unary and
	// REST only: a stream is authorised for one property); its Len must
	// be len(Keys). Nil: worker i sends the batches of property i modulo
	// their number.
	Spread *loadgen.Spread
	// Retries is the attempts of a batch that failed in a way worth
	// retrying (unavailable, throttled, broken stream).
	Retries int
	// Timeout is the longest wait for one batch's acknowledgement.
	Timeout time.Duration
	// Truth keeps the exact aggregates of what was acknowledged
	// (Driver.Truth).
	Truth bool
	// Progress, when positive, writes a progress line to Log this often.
	Progress time.Duration
	Log      io.Writer
	// Freshness, when set, probes freshness while sending.
	Freshness *Freshness
	// MaxErrors is how many distinct error messages the result keeps.
	MaxErrors int
}

// Freshness configures the probes: a marker page view with a unique path
// every Interval, then a report polled every Poll until it shows.
type Freshness struct {
	Interval, Poll time.Duration
	// Timeout counts a probe not visible after it as timed out.
	Timeout time.Duration
	// Report is what a probe polls: Realtime or Report.
	Report string
	// Keys, when set, is a property that receives only the probes (cheap
	// to poll); it is property len(Config.Keys) of the truth. Nil: the
	// first property, which then needs a read key.
	Keys *loadgen.Keys
}

// Defaults returns the defaults of `sextant loadgen`.
func Defaults() Config {
	return Config{
		Server:    "http://127.0.0.1:8080",
		Mode:      Stream,
		Inflight:  16,
		Retries:   5,
		Timeout:   30 * time.Second,
		Progress:  5 * time.Second,
		Gen:       loadgen.DefaultConfig(),
		MaxErrors: 5,
	}
}

// DefaultFreshness returns the probes' defaults.
func DefaultFreshness() Freshness {
	return Freshness{Interval: time.Second, Poll: 5 * time.Millisecond, Timeout: 30 * time.Second, Report: Realtime}
}

// withDefaults fills in the choices left to the mode.
func (c Config) withDefaults() Config {
	if c.Concurrency <= 0 {
		c.Concurrency = map[string]int{Stream: 8, Unary: 32, REST: 64}[c.Mode]
	}
	if c.Conns <= 0 {
		c.Conns = min(c.Concurrency, 4)
	}
	return c
}

// FieldError is a problem with one of Config's fields (Field is its name,
// "Freshness.Report" for one of Freshness).
type FieldError struct {
	Field, Problem string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// Validate checks the config as a whole; its errors are FieldErrors.
func (c Config) Validate() error {
	var errs []error
	if c.TimeOrder && (c.Events <= 0 || c.Gen.History <= 0) {
		errs = append(errs, fieldErr("TimeOrder", "needs a number of events and a history"))
	}
	switch c.Mode {
	case Stream, Unary, REST:
	default:
		errs = append(errs, fieldErr("Mode", "%q is not stream, unary or rest", c.Mode))
	}
	if c.Inflight < 1 {
		errs = append(errs, fieldErr("Inflight", "must be positive"))
	}
	for _, f := range []struct {
		name     string
		negative bool
	}{{"Events", c.Events < 0}, {"Duration", c.Duration < 0}, {"Rate", c.Rate < 0}} {
		if f.negative {
			errs = append(errs, fieldErr(f.name, "must not be negative"))
		}
	}
	if c.Events == 0 && c.Duration == 0 {
		errs = append(errs, fieldErr("Events", "give a number of events or a duration"))
	}
	if gen, err := c.Gen.WithDefaults(); err != nil {
		errs = append(errs, fieldErr("Gen", "%v", err))
	} else if gen.History > 0 && c.Duration > 0 && gen.History+c.Duration > gen.MaxAge-5*time.Minute {
		errs = append(errs, fieldErr("Gen.History", "%v plus a duration of %v leave events older than Sextant's %s limit by the end", gen.History, c.Duration, hours(gen.MaxAge)))
	}
	if len(c.Keys) == 0 {
		errs = append(errs, fieldErr("Keys", "give the properties' write keys"))
	}
	if c.Spread != nil {
		if c.Mode == Stream {
			errs = append(errs, fieldErr("Spread", "needs mode unary or rest (a stream is authorised for one property)"))
		}
		if c.Spread.Len() != len(c.Keys) {
			errs = append(errs, fieldErr("Spread", "over %d properties, not the %d of the keys", c.Spread.Len(), len(c.Keys)))
		}
	}
	if f := c.Freshness; f != nil {
		if f.Keys == nil && (len(c.Keys) == 0 || c.Keys[0].ReadKey == "") {
			errs = append(errs, fieldErr("Freshness", "needs a read key: the first property's, or a probe property's"))
		}
		if err := f.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Conn == nil || c.Mode == REST {
		if _, _, err := ServerAddrs(c.Server); err != nil {
			errs = append(errs, fieldErr("Server", "%v", err))
		}
	}
	return errors.Join(errs...)
}

// Validate checks the probes' settings; its errors are FieldErrors.
func (f Freshness) Validate() error {
	var errs []error
	if f.Report != Realtime && f.Report != Report {
		errs = append(errs, fieldErr("Freshness.Report", "%q is neither realtime nor report", f.Report))
	}
	if f.Interval <= 0 {
		errs = append(errs, fieldErr("Freshness.Interval", "must be positive"))
	}
	if f.Poll <= 0 {
		errs = append(errs, fieldErr("Freshness.Poll", "must be positive"))
	}
	return errors.Join(errs...)
}

// hours writes d as "72h" when it is whole hours.
func hours(d time.Duration) string {
	if d%time.Hour == 0 {
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return d.String()
}

// ServerAddrs turns a server's address (http://host:port or host:port)
// into a gRPC target and an HTTP base URL.
func ServerAddrs(s string) (target, base string, err error) {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Scheme != "http" {
		return "", "", fmt.Errorf("want http://host:port or host:port, got %q", s)
	}
	host := u.Host
	if _, _, err := net.SplitHostPort(host); err != nil {
		host = net.JoinHostPort(host, "80")
	}
	return "passthrough:///" + host, "http://" + host, nil
}
