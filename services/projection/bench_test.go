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
	"github.com/sextant-analytics/sextant/pkg/viewstore"
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

// BenchmarkDerive applies the same events to a partition (sessions,
// dedupe, the open additions of every rollup) and encodes a checkpoint's
// additions every 10,000 events, for each version's layout side by side:
// what the catalogue costs the projection per event, store aside.
func BenchmarkDerive(b *testing.B) {
	rng := rand.New(rand.NewSource(1))
	var events []*eventv1.Event
	for i := range 20_000 {
		client := rng.Intn(1000)
		e := ev(fmt.Sprint("e", i), fmt.Sprint("c", client), []string{"page_view", "page_view", "scroll", "view_item", "purchase"}[rng.Intn(5)],
			page(fmt.Sprintf("/p/%d", int(rng.ExpFloat64()*50))), at(time.Duration(i)*time.Second), prop(fmt.Sprint("p", client%4)))
		e.Country, e.City, e.Region = "FR", "Paris", "Ile-de-France"
		e.Device = &eventv1.Device{Category: "mobile", Browser: "Safari", OperatingSystem: "iOS", BrowserVersion: "17.1", Platform: "web", Language: "fr-fr"}
		e.TrafficSource = &eventv1.TrafficSource{Source: "google", Medium: "organic"}
		e.Page.Title, e.Page.Location = "Page", "https://shop.example"+e.Page.Path
		if e.Name == "view_item" || e.Name == "purchase" {
			e.Items = []*eventv1.Item{{ItemId: fmt.Sprint("S", rng.Intn(50)), ItemName: "Item", Price: 9.5, Quantity: 1}}
		}
		events = append(events, e)
	}
	for _, version := range []string{"v1", "v4", "v5", "v6"} {
		b.Run(version, func(b *testing.B) {
			l, _ := FindLogic(Logics(), "traffic", version)
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				p := testPartition(b, l, viewstore.Progress{}, nil)
				for i, e := range events {
					p.apply(e, p.progress.Next, 0)
					p.advance(p.progress.Next)
					if i%10_000 == 9_999 {
						if _, err := p.adds.encode(0, 0, p.progress.Next); err != nil {
							b.Fatal(err)
						}
					}
				}
				n += len(events)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/event")
		})
	}
}
