package demo

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/sextant-analytics/sextant/pkg/pebblestore"
	"github.com/sextant-analytics/sextant/pkg/property"
)

func TestConfig(t *testing.T) {
	now := time.Date(2026, 3, 10, 15, 30, 20, 500, time.UTC)
	for _, tc := range []struct {
		name   string
		change func(*Config)
		ok     bool
		start  string // of the window
		events int64
	}{
		{"defaults", func(*Config) {}, true, "2026-02-25T00:00:00Z", 2500*13 + 2500*(15*3600+30*60+20)/86400},
		{"a week", func(c *Config) { c.Days = 7 }, true, "2026-03-04T00:00:00Z", 2500*6 + 2500*(15*3600+30*60+20)/86400},
		{"one day", func(c *Config) { c.Days = 1 }, true, "2026-03-10T00:00:00Z", 2500 * (15*3600 + 30*60 + 20) / 86400},
		{"across a month", func(c *Config) { c.Days = 30 }, true, "2026-02-09T00:00:00Z", 0},
		{"none", func(c *Config) { c.Days = 0 }, true, "", 0},
		{"too many days", func(c *Config) { c.Days = MaxDays + 1 }, false, "", 0},
		{"no events", func(c *Config) { c.EventsPerDay = 0 }, false, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Defaults()
			tc.change(&c)
			if err := c.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate: %v, want ok=%v", err, tc.ok)
			}
			if tc.start == "" {
				return
			}
			start, end := c.Window(now)
			if got := start.Format(time.RFC3339); got != tc.start || !end.Equal(now.Truncate(time.Second)) {
				t.Errorf("window %v – %v, want from %s to now", start, end, tc.start)
			}
			if age := now.Sub(start); age > c.PastAllowance()-30*time.Minute {
				t.Errorf("the oldest events are %v old, the allowance %v leaves no time to send them", age, c.PastAllowance())
			}
			run := c.Run(nil, property.Keys{PropertyID: "1", WriteKey: "sxw_x"}, now)
			if tc.events != 0 && (run.Events < tc.events-1 || run.Events > tc.events+1) {
				t.Errorf("%d events, want about %d", run.Events, tc.events)
			}
			if _, err := run.Gen.WithDefaults(); err != nil {
				t.Errorf("the generator's config: %v", err)
			}
			if g := run.Gen; !g.Cities || !g.DailyRhythm || g.Growth <= 0 || !g.End.Equal(end) || g.History != end.Sub(start) {
				t.Errorf("generator %+v", g)
			}
		})
	}
}

// TestEnsure: the demo property and an admin key on a new store, once;
// the one to be filled counts purchases as key events.
func TestEnsure(t *testing.T) {
	ctx := context.Background()
	for _, traffic := range []bool{false, true} {
		st, err := pebblestore.Open(t.TempDir(), pebblestore.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		reg := property.NewRegistry(st, property.Options{})
		c, made, err := Ensure(ctx, reg, traffic)
		if err != nil || !made {
			t.Fatalf("Ensure on a new store: %v, made %v", err, made)
		}
		if c.Property.Name != "Demo" || c.Keys.WriteKey == "" || c.Keys.ReadKey == "" || c.AdminKey == "" {
			t.Fatalf("created %+v", c)
		}
		p, err := reg.Get(ctx, c.Property.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got := slices.Equal(p.KeyEvents, []string{"purchase"}); got != traffic {
			t.Errorf("with traffic %v: key events %v", traffic, p.KeyEvents)
		}
		if _, made, err := Ensure(ctx, reg, traffic); err != nil || made {
			t.Fatalf("Ensure again: %v, made %v", err, made)
		}
	}
}
