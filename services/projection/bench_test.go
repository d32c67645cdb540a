package projection

import (
	"net/netip"
	"testing"
	"time"

	eventv1 "github.com/sextant-analytics/sextant/gen/sextant/event/v1"
	"github.com/sextant-analytics/sextant/pkg/loadgen"
	"github.com/sextant-analytics/sextant/pkg/viewstore"
	"github.com/sextant-analytics/sextant/services/collect"
)

// generated returns n events as collect appends them: loadgen's traffic
// (sessions, Zipf paths, devices, countries, sources) over the last hour.
func generated(tb testing.TB, n int) []*eventv1.Event {
	end := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	cfg := loadgen.DefaultConfig()
	cfg.BatchSize, cfg.History, cfg.End = 25, time.Hour, end
	g, err := loadgen.New(cfg, 0)
	if err != nil {
		tb.Fatal(err)
	}
	meta := collect.Meta{PropertyID: "p", ClientIP: netip.MustParseAddr("127.0.0.1"), Now: end}
	out := make([]*eventv1.Event, 0, n)
	for len(out) < n {
		evs, err := collect.BuildEvents(loadgen.ToProto(g.Next(n-len(out))), meta, collect.DefaultLimits())
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, evs...)
	}
	return out
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
			p.committed(now, 10*time.Minute, 0)
		}
	}
	b.ReportMetric(float64(rows)/float64(offset), "rows/event")
	b.ReportMetric(float64(bytes)/float64(offset), "stored-bytes/event")
}
