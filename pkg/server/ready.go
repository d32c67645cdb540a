package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Check is one dependency of a process's readiness: /readyz answers 200
// only while every check's Probe succeeds. Probes are active (they ask the
// dependency, not a client's cached state), run with a short timeout, and
// their results are kept for a short time (Cached), so that readiness
// probes, however frequent, cannot overload a dependency.
type Check struct {
	// Name says what is checked, e.g. "eventlog" or "viewstore": /readyz
	// names the checks that failed.
	Name string
	// Probe reports whether the dependency works now.
	Probe func(ctx context.Context) error
}

// Readiness timing defaults (Cached).
const (
	// ProbeTimeout bounds one probe of a dependency.
	ProbeTimeout = time.Second
	// ProbeTTL is how long a probe's result is reused.
	ProbeTTL = time.Second
)

// Cached returns c whose probe runs at most once per ttl, with at most one
// run in flight (concurrent callers share it), and each run bounded by
// timeout whatever the caller's context: a dependency that hangs makes the
// check fail after timeout, never pile up probes.
func Cached(c Check, timeout, ttl time.Duration) Check {
	p := &cachedProbe{probe: c.Probe, timeout: timeout, ttl: ttl}
	return Check{Name: c.Name, Probe: p.run}
}

type cachedProbe struct {
	probe        func(ctx context.Context) error
	timeout, ttl time.Duration

	mu       sync.Mutex
	at       time.Time     // when err was learned
	err      error         // the last result
	inflight chan struct{} // closed when the running probe ends
}

func (p *cachedProbe) run(ctx context.Context) error {
	p.mu.Lock()
	if !p.at.IsZero() && time.Since(p.at) < p.ttl {
		err := p.err
		p.mu.Unlock()
		return err
	}
	wait := p.inflight
	if wait == nil {
		wait = make(chan struct{})
		p.inflight = wait
		go p.refresh(wait)
	}
	p.mu.Unlock()
	select {
	case <-wait:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// refresh runs the probe once, detached from any caller, and records its
// result.
func (p *cachedProbe) refresh(done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- p.probe(ctx) }()
	var err error
	select {
	case err = <-errc:
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("no answer within %v: %w", p.timeout, err)
		}
	case <-ctx.Done():
		// A probe that does not honour its context is left behind; the
		// next refresh starts only after ttl.
		err = fmt.Errorf("no answer within %v", p.timeout)
	}
	p.mu.Lock()
	p.err, p.at, p.inflight = err, time.Now(), nil
	p.mu.Unlock()
	close(done)
}

// ready serves /readyz: 200 "ready" while every check passes; else 503
// with one line per failed check, "not ready: NAME: ERROR". With
// ?verbose, every check has a line, "ok NAME" or "failed NAME: ERROR",
// whatever the status. The checks run concurrently.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if s.draining.Load() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*ProbeTimeout)
	defer cancel()
	errs := make([]error, len(s.checks))
	var wg sync.WaitGroup
	for i, c := range s.checks {
		wg.Go(func() { errs[i] = c.Probe(ctx) })
	}
	wg.Wait()
	var failed, verbose strings.Builder
	for i, c := range s.checks {
		if errs[i] != nil {
			fmt.Fprintf(&failed, "not ready: %s: %v\n", c.Name, errs[i])
			fmt.Fprintf(&verbose, "failed %s: %v\n", c.Name, errs[i])
		} else {
			fmt.Fprintf(&verbose, "ok %s\n", c.Name)
		}
	}
	_, all := r.URL.Query()["verbose"]
	if failed.Len() > 0 {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusServiceUnavailable)
		if all {
			_, _ = w.Write([]byte(verbose.String()))
		} else {
			_, _ = w.Write([]byte(failed.String()))
		}
		return
	}
	if all {
		_, _ = w.Write([]byte(verbose.String() + "ready\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}
