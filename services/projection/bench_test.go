package projection

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	eventv1 "github.com/sextant-analytics/sextant/gen/sextant/event/v1"
	"github.com/sextant-analytics/sextant/pkg/loadgen"
	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

// generated returns n events shaped like collect's output for loadgen's
// traffic (sessions, Zipf paths, devices, countries, sources) over the last
// hour. The fields collect derives (device from the User-Agent, source from
// the referrer) are derived more simply here, with the same cardinality:
// services do not import each other.
func generated(tb testing.TB, n int) []*eventv1.Event {
	end := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	cfg := loadgen.DefaultConfig()
	cfg.BatchSize, cfg.History, cfg.End = 25, time.Hour, end
	g, err := loadgen.New(cfg, 0)
	if err != nil {
		tb.Fatal(err)
	}
	out := make([]*eventv1.Event, 0, n)
	for len(out) < n {
		{
			b := g.Next(n - len(out))
			dev := &eventv1.Device{Category: "desktop", Browser: b.UserAgent[:min(12, len(b.UserAgent))], OperatingSystem: b.UserAgent[len(b.UserAgent)-min(8, len(b.UserAgent)):]}
			if b.Bot {
				dev.Category = "bot"
			} else if strings.Contains(b.UserAgent, "Mobile") {
				dev.Category = "mobile"
			}
			for _, e := range b.Events {
				at := end
				if e.TimeMicros != 0 {
					at = time.UnixMicro(e.TimeMicros)
				}
				ev := &eventv1.Event{EventId: e.ID, PropertyId: "p", ClientId: b.ClientID, Name: e.Name,
					EventTime: timestamppb.New(at), ReceiveTime: timestamppb.New(at),
					Page: &eventv1.Page{Path: e.Path}, Country: b.Country, Device: dev,
					SessionId: e.SessionID, SessionNumber: e.SessionNumber, EngagementTimeMsec: e.EngagementMsec}
				if u, err := url.Parse(e.Referrer); err == nil && u.Host != "" {
					ev.TrafficSource = &eventv1.TrafficSource{Source: u.Host, Medium: "referral"}
				}
				out = append(out, ev)
			}
		}
	}
	return out[:n]
}

// BenchmarkApply is the projection's cost per event in memory: dedupe,
// session, every rollup cell of both grains, and a checkpoint (cells and
// state encoded) every 2,000 events, as a busy projector flushes. The
// store is not involved.
func BenchmarkApply(b *testing.B) {
	evs := generated(b, 200_000)
	p, err := newPartition(0, DefaultRules(), viewstore.Progress{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	var offset int64
	var rows, bytes int
	b.ReportAllocs()
	for b.Loop() {
		i := offset % int64(len(evs))
		if i == 0 && offset > 0 {
			// The events again would be duplicates: start over.
			if p, err = newPartition(0, DefaultRules(), viewstore.Progress{}, nil); err != nil {
				b.Fatal(err)
			}
		}
		ev := evs[i]
		if _, err := p.apply(ev, offset, noStoredCells, now); err != nil {
			b.Fatal(err)
		}
		offset++
		p.progress.Next = offset
		if offset%2000 == 0 || offset%int64(len(evs)) == 0 {
			cp, err := p.checkpoint()
			if err != nil {
				b.Fatal(err)
			}
			rows += len(cp.Cells) + len(cp.State)
			for _, c := range cp.Cells {
				bytes += len(c.Value)
			}
			for _, kv := range cp.State {
				bytes += len(kv.Value)
			}
			p.committed(now, 10*time.Minute)
		}
	}
	b.ReportMetric(float64(rows)/float64(offset), "rows/event")
	b.ReportMetric(float64(bytes)/float64(offset), "stored-bytes/event")
}
