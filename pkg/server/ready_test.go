package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestCached: a cached probe runs at most once per ttl however many ask,
// concurrent callers share one run, and a probe that hangs fails after
// the timeout instead of holding its callers.
func TestCached(t *testing.T) {
	var runs atomic.Int32
	c := Cached(Check{Name: "dep", Probe: func(ctx context.Context) error {
		runs.Add(1)
		time.Sleep(20 * time.Millisecond)
		return errors.New("down")
	}}, time.Second, time.Hour)
	errc := make(chan error, 50)
	for range 50 {
		go func() { errc <- c.Probe(context.Background()) }()
	}
	for range 50 {
		if err := <-errc; err == nil || err.Error() != "down" {
			t.Fatalf("err %v", err)
		}
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("%d probe runs for 50 concurrent checks, want 1", n)
	}

	hang := Cached(Check{Name: "hang", Probe: func(ctx context.Context) error {
		time.Sleep(time.Hour)
		return nil
	}}, 50*time.Millisecond, 0)
	start := time.Now()
	if err := hang.Probe(context.Background()); err == nil || !strings.Contains(err.Error(), "no answer within 50ms") {
		t.Fatalf("hanging probe: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("hanging probe answered after %v", d)
	}
}

// TestReadyz: /readyz is 200 "ready" while every check passes, and 503
// naming the failed checks (?verbose lists them all).
func TestReadyz(t *testing.T) {
	var kafkaDown atomic.Bool
	s := New(Config{}, nil, []Check{
		{Name: "eventlog", Probe: func(context.Context) error {
			if kafkaDown.Load() {
				return errors.New("no broker answers")
			}
			return nil
		}},
		{Name: "viewstore", Probe: func(context.Context) error { return nil }},
	})
	get := func(q string) (int, string) {
		w := httptest.NewRecorder()
		s.ready(w, httptest.NewRequest("GET", "/readyz"+q, nil))
		b, _ := io.ReadAll(w.Result().Body)
		return w.Code, string(b)
	}
	if code, body := get(""); code != http.StatusOK || body != "ready\n" {
		t.Fatalf("ready: %d %q", code, body)
	}
	if code, body := get("?verbose"); code != http.StatusOK || body != "ok eventlog\nok viewstore\nready\n" {
		t.Fatalf("ready, verbose: %d %q", code, body)
	}
	kafkaDown.Store(true)
	if code, body := get(""); code != http.StatusServiceUnavailable || body != "not ready: eventlog: no broker answers\n" {
		t.Fatalf("not ready: %d %q", code, body)
	}
	if code, body := get("?verbose"); code != http.StatusServiceUnavailable || body != "failed eventlog: no broker answers\nok viewstore\n" {
		t.Fatalf("not ready, verbose: %d %q", code, body)
	}
}
