package projection

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/sextant-analytics/sextant/pkg/eventlog"
	"github.com/sextant-analytics/sextant/pkg/pebblelog"
)

type starter struct{ started map[string]string }

func (s *starter) Start(_ context.Context, name, version string) (bool, error) {
	if _, ok := s.started[name]; ok {
		return false, nil
	}
	s.started[name] = version
	return true, nil
}

// TestStartVersion: a new store starts with the version asked for, one
// whose log holds events with v1, one that has a version keeps it, and a
// process without the log writes none.
func TestStartVersion(t *testing.T) {
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	open := func(t *testing.T, events bool) eventlog.Reader {
		l, err := pebblelog.Open(t.TempDir(), pebblelog.Options{Partitions: 2, Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		if events {
			if err := l.Append(ctx, []eventlog.Message{{Key: []byte("k"), Value: []byte("v")}}); err != nil {
				t.Fatal(err)
			}
		}
		return l
	}
	for _, tc := range []struct {
		name    string
		want    string
		noLog   bool
		events  bool
		before  string // the version the store has already
		started string // after; "" for none
		err     bool
	}{
		{name: "new store, default", started: "v1"},
		{name: "new store, v6", want: "v6", started: "v6"},
		{name: "events, v6", want: "v6", events: true, started: "v1"},
		{name: "a version already", want: "v6", before: "v2", started: "v2"},
		{name: "no log", want: "v6", noLog: true},
		{name: "unknown version", want: "v99", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &starter{started: map[string]string{}}
			if tc.before != "" {
				s.started["traffic"] = tc.before
			}
			var log eventlog.Reader
			if !tc.noLog {
				log = open(t, tc.events)
			}
			err := StartVersion(ctx, tc.want, log, s, logger)
			if (err != nil) != tc.err {
				t.Fatalf("StartVersion: %v, want error %v", err, tc.err)
			}
			if got := s.started["traffic"]; got != tc.started {
				t.Errorf("the store serves %q, want %q", got, tc.started)
			}
		})
	}
}
