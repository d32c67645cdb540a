package projection

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	eventv1 "github.com/sextant-analytics/sextant/gen/sextant/event/v1"
	"github.com/sextant-analytics/sextant/pkg/eventlog"
	"github.com/sextant-analytics/sextant/pkg/metrics"
)

// value reads a counter's or gauge's value.
func value(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := c.Write(&d); err != nil {
		t.Fatal(err)
	}
	if d.Gauge != nil {
		return d.GetGauge().GetValue()
	}
	return d.GetCounter().GetValue()
}

// TestProjectionMetricsMeanTheirNames: a duplicate event id counts as
// duplicate, a bot's event as excluded (not as a duplicate), and a
// partition's lag gauge goes back to 0 once it is idle at the head (it kept
// its last value while the partition waited for records).
func TestProjectionMetricsMeanTheirNames(t *testing.T) {
	dir := t.TempDir()
	log, st := openEmbedded(t, dir)
	defer log.Close()
	defer st.Close()
	var msgs []eventlog.Message
	for i := range 300 {
		msgs = append(msgs, message(t, ev(fmt.Sprint("e", i), "c1", "page_view", page("/a"), at(time.Duration(i)*time.Second))))
	}
	msgs = append(msgs, message(t, ev("e7", "c1", "page_view", page("/a"), at(7*time.Second)))) // a duplicate
	botEv := ev("b1", "crawler", "page_view", page("/a"))
	botEv.Device = &eventv1.Device{Category: "bot"}
	msgs = append(msgs, message(t, botEv))
	if err := log.Append(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	// traffic/v2 excludes bots; small reads, so the first lag measured is
	// taken while the partition is behind.
	cfg := Config{Version: "v2", Rules: Logics()[1].Rules, ReadBatch: 5, FlushInterval: 10 * time.Millisecond,
		Metrics: m, Logger: slog.New(slog.DiscardHandler)}
	stop := startCaughtUp(t, log, st, cfg)
	defer stop()
	ns := string(NewProjector(cfg, log, st).Namespace())
	outcome := func(o string) float64 { return value(t, m.ProjectedEvents.WithLabelValues(ns, o)) }
	if a, d, e := outcome("applied"), outcome("duplicate"), outcome("excluded"); a != 300 || d != 1 || e != 1 {
		t.Fatalf("applied %v duplicate %v excluded %v, want 300, 1, 1", a, d, e)
	}
	parts, err := log.Partitions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The newest receive time committed: the last event sent (t0+299 s)
	// or the bot's (t0). The gauge is set once the checkpoint's commit
	// returned, a moment after caughtUp can see it in the store.
	want := float64(t0.Add(299 * time.Second).Unix())
	newest := 0.0
	for end := time.Now().Add(5 * time.Second); newest != want && time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		newest = 0
		for _, p := range parts {
			newest = max(newest, value(t, m.Watermark.WithLabelValues(ns, fmt.Sprint(p))))
		}
	}
	if newest != want {
		t.Errorf("watermark gauge %v, want %v (the newest committed receive time)", newest, want)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, p := range parts {
		for {
			lag := value(t, m.ConsumerLag.WithLabelValues(ns, fmt.Sprint(p)))
			if lag == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("partition %d idle at the head reports lag %v", p, lag)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
