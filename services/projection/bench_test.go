package projection

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand"
	"testing"
	"time"

	eventv1 "github.com/sextant-analytics/sextant/gen/sextant/event/v1"
	"github.com/sextant-analytics/sextant/pkg/eventlog"
)

// generatedLog appends n events of a few properties, many visitors and
// pages, sources, devices and countries, in time order over three days.
func generatedLog(b *testing.B, log eventlog.Appender, n int) {
	rng := rand.New(rand.NewSource(1))
	names := []string{"page_view", "page_view", "scroll", "user_engagement", "click", "session_start"}
	countries := []string{"US", "DE", "FR", "GB", "IN", "BR", ""}
	devices := []struct{ cat, browser, os string }{{"desktop", "Chrome", "Windows"}, {"mobile", "Safari", "iOS"}, {"mobile", "Chrome", "Android"}, {"tablet", "Safari", "iPadOS"}}
	sources := []struct{ s, m string }{{"google", "organic"}, {"newsletter", "email"}, {"", ""}, {"", ""}, {"bing", "cpc"}}
	var msgs []eventlog.Message
	for i := range n {
		client := rng.Intn(n/20 + 1)
		d := devices[client%len(devices)]
		src := sources[rng.Intn(len(sources))]
		e := ev(fmt.Sprint("e", i), fmt.Sprint("c", client), names[rng.Intn(len(names))],
			page(fmt.Sprintf("/p/%d", int(rng.ExpFloat64()*50))), at(time.Duration(i)*(72*time.Hour)/time.Duration(n)),
			prop(fmt.Sprint("p", client%4)))
		e.Country = countries[client%len(countries)]
		e.Device = &eventv1.Device{Category: d.cat, Browser: d.browser, OperatingSystem: d.os}
		e.TrafficSource = &eventv1.TrafficSource{Source: src.s, Medium: src.m}
		e.EngagementTimeMsec = int64(rng.Intn(3)) * 3000
		msgs = append(msgs, message(b, e))
		if len(msgs) == 1000 {
			if err := log.Append(context.Background(), msgs); err != nil {
				b.Fatal(err)
			}
			msgs = msgs[:0]
		}
	}
	if err := log.Append(context.Background(), msgs); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkReplay projects a log of generated events from offset 0 into an
// empty embedded store, compaction on, as a replay does: events/s of the
// whole pipeline on this machine (reading and decoding the log included).
func BenchmarkReplay(b *testing.B) {
	const n = 400_000
	dir := b.TempDir()
	log := openLog(b, dir)
	generatedLog(b, log, n)
	b.ResetTimer()
	for i := range b.N {
		st := openViews(b)
		ns := fmt.Sprintf("v%d", i+1)
		start := time.Now()
		pr := NewProjector(Config{Version: ns, Logger: slog.New(slog.DiscardHandler)}, log, st)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- pr.Run(ctx) }()
		for !caughtUp(b, log, st, pr.Namespace()) {
			time.Sleep(20 * time.Millisecond)
		}
		el := time.Since(start)
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(n)/el.Seconds(), "events/s")
		st.Close()
	}
	log.Close()
}
