package driver

import (
	"context"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	collectv1 "github.com/sextant-analytics/sextant/gen/sextant/collect/v1"
	insightsv1 "github.com/sextant-analytics/sextant/gen/sextant/insights/v1"
	"github.com/sextant-analytics/sextant/pkg/loadgen"
)

// probeFreshness sends a marker page view with a unique path to the probe
// property (the first, or Freshness.Keys) every interval
// while the load runs, and polls RunReport with an
// EXACT filter on the path until it shows: the time from the collect
// acknowledgement to then is the freshness. Probes overlap when one takes
// longer than the interval (at most 8 at once).
func (d *Driver) probeFreshness(ctx context.Context) {
	tag := strconv.FormatInt(d.cfg.Gen.Seed, 36) + "-" + strconv.FormatInt(time.Now().UnixMilli(), 36)
	tick := time.NewTicker(d.cfg.Freshness.Interval)
	defer tick.Stop()
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	defer wg.Wait()
	for n := int64(1); ; n++ {
		if n > 1 { // the first probe goes at once
			select {
			case <-tick.C:
			case <-d.stop:
				return
			case <-ctx.Done():
				return
			}
			if d.stopping() {
				return
			}
		}
		if n == 1 {
			sem <- struct{}{}
		} else {
			select {
			case sem <- struct{}{}:
			case <-d.stop:
				return
			case <-ctx.Done():
				return
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			d.probe(ctx, tag, n)
		}()
	}
}

func (d *Driver) probe(ctx context.Context, tag string, n int64) {
	k := d.probeKeys
	conn := d.conns[int(n)%len(d.conns)]
	wctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+k.WriteKey)
	rctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+k.ReadKey)
	cc := collectv1.NewCollectServiceClient(conn)
	ic := insightsv1.NewInsightsServiceClient(conn)
	path := "/__freshness/" + tag + "/" + strconv.FormatInt(n, 10)
	now := time.Now()
	b := &loadgen.Batch{
		Property: d.probeIndex, Visitor: -n, ClientID: "freshness-" + tag + "-" + strconv.FormatInt(n, 10),
		Events: []loadgen.Event{{
			Name: "page_view", ID: "fresh-" + tag + "-" + strconv.FormatInt(n, 10),
			Location: "https://probe.example" + path, Path: path,
			SessionID: now.Unix(), SessionNumber: 1,
		}},
	}
	cctx, cancel := context.WithTimeout(wctx, d.cfg.Timeout)
	_, err := cc.Collect(cctx, loadgen.ToProto(b))
	cancel()
	ack := time.Now()
	if err != nil {
		d.fresh.mu.Lock()
		d.fresh.failed++
		d.fresh.mu.Unlock()
		d.noteError("freshness probe: " + err.Error())
		return
	}
	d.truth.Add(b, ack)
	filter := &insightsv1.FilterExpression{Expr: &insightsv1.FilterExpression_Filter{Filter: &insightsv1.Filter{
		FieldName: "pagePath",
		OneFilter: &insightsv1.Filter_StringFilter{StringFilter: &insightsv1.StringFilter{
			MatchType: insightsv1.StringFilter_EXACT, Value: path, CaseSensitive: true,
		}},
	}}}
	// visible runs the probe's report once: the realtime report of the
	// last two minutes (the cheapest that can show the marker, so that the
	// measure is the pipeline's, not the query's) or today's report.
	visible := func(ctx context.Context) (bool, error) {
		if d.cfg.Freshness.Report == Report {
			resp, err := ic.RunReport(ctx, &insightsv1.RunReportRequest{
				Dimensions: []*insightsv1.Dimension{{Name: "pagePath"}}, Metrics: []*insightsv1.Metric{{Name: "eventCount"}},
				DateRanges: []*insightsv1.DateRange{{StartDate: "today", EndDate: "today"}}, DimensionFilter: filter,
			})
			return err == nil && len(resp.Rows) > 0, err
		}
		resp, err := ic.RunRealtimeReport(ctx, &insightsv1.RunRealtimeReportRequest{
			Dimensions: []*insightsv1.Dimension{{Name: "pagePath"}}, Metrics: []*insightsv1.Metric{{Name: "eventCount"}},
			MinuteRanges:    []*insightsv1.MinuteRange{{StartMinutesAgo: proto.Int32(1), EndMinutesAgo: proto.Int32(0)}},
			DimensionFilter: filter,
		})
		return err == nil && len(resp.Rows) > 0, err
	}
	for {
		qctx, cancel := context.WithTimeout(rctx, d.cfg.Timeout)
		q0 := time.Now()
		ok, err := visible(qctx)
		qd := time.Since(q0)
		cancel()
		d.fresh.mu.Lock()
		d.fresh.query.Record(qd)
		d.fresh.mu.Unlock()
		if ok {
			age := time.Since(ack)
			d.fresh.mu.Lock()
			d.fresh.hist.Record(age)
			d.fresh.mu.Unlock()
			return
		}
		if err != nil && ctx.Err() == nil {
			d.noteError("freshness query: " + err.Error())
		}
		if time.Since(ack) > d.cfg.Freshness.Timeout || ctx.Err() != nil {
			d.fresh.mu.Lock()
			d.fresh.timedOut++
			d.fresh.mu.Unlock()
			return
		}
		time.Sleep(d.cfg.Freshness.Poll)
	}
}
