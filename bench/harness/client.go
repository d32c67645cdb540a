package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	insightsv1 "github.com/sextant-analytics/sextant/gen/sextant/insights/v1"
	projectionv1 "github.com/sextant-analytics/sextant/gen/sextant/projection/v1"
	"github.com/sextant-analytics/sextant/pkg/loadgen"
)

// client calls a Sextant server or gateway over gRPC.
type client struct {
	conn       *grpc.ClientConn
	insights   insightsv1.InsightsServiceClient
	projection projectionv1.ProjectionServiceClient
}

func dial(addr string) (*client, error) {
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		return nil, err
	}
	return &client{conn: conn, insights: insightsv1.NewInsightsServiceClient(conn), projection: projectionv1.NewProjectionServiceClient(conn)}, nil
}

func (c *client) close() { _ = c.conn.Close() }

func withKey(ctx context.Context, key string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
}

// activeLag returns the active traffic version's lag (records) and the
// records it applied, deduplicated and excluded.
func (c *client) activeLag(ctx context.Context, key string) (lag, done int64, err error) {
	cctx, cancel := context.WithTimeout(withKey(ctx, key), 30*time.Second)
	defer cancel()
	resp, err := c.projection.ListProjections(cctx, &projectionv1.ListProjectionsRequest{Name: "traffic"})
	if err != nil {
		return 0, 0, err
	}
	for _, p := range resp.Projections {
		if p.Active {
			return p.Lag, p.EventsApplied + p.DuplicatesDropped + p.EventsExcluded, nil
		}
	}
	return 0, 0, errors.New("no active traffic version")
}

// waitCaughtUp polls until the active projection has no lag.
func (c *client) waitCaughtUp(ctx context.Context, key string, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		lag, _, err := c.activeLag(ctx, key)
		if err == nil && lag == 0 {
			return time.Since(start), nil
		}
		if time.Since(start) > timeout {
			return time.Since(start), fmt.Errorf("projection still %d records behind after %v (last error: %v)", lag, timeout, err)
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		}
	}
}

// QueryStats are one report's latencies, uncached and cached.
type QueryStats struct {
	Query          string          `json:"query"`
	StoredEvents   int64           `json:"storedEvents"`
	Uncached       loadgen.Summary `json:"uncached"`
	Cached         loadgen.Summary `json:"cached"`
	UncachedMisses int             `json:"uncachedMisses"` // answers not from the cache, of Uncached.Count
	CachedHits     int             `json:"cachedHits"`     // answers from the cache, of Cached.Count
	Rows           int             `json:"rows"`
}

// minQueryIters is the fewest calls of a report a measurement makes.
const minQueryIters = 20

type reportQuery struct {
	name string
	// run sends the report with the range name given (a name changes the
	// cache key, never the answer) and returns rows and whether it was
	// answered from the cache.
	run func(ctx context.Context, c *client, rangeName string) (int, bool, error)
}

var reportQueries = []reportQuery{
	{"date_30d", func(ctx context.Context, c *client, name string) (int, bool, error) {
		resp, err := c.insights.RunReport(ctx, &insightsv1.RunReportRequest{
			Dimensions:         []*insightsv1.Dimension{{Name: "date"}},
			Metrics:            []*insightsv1.Metric{{Name: "eventCount"}, {Name: "screenPageViews"}, {Name: "totalUsers"}, {Name: "sessions"}},
			DateRanges:         []*insightsv1.DateRange{{StartDate: "29daysAgo", EndDate: "today", Name: name}},
			MetricAggregations: []insightsv1.MetricAggregation{insightsv1.MetricAggregation_TOTAL},
			OrderBys:           []*insightsv1.OrderBy{{OneOrderBy: &insightsv1.OrderBy_Dimension{Dimension: &insightsv1.OrderBy_DimensionOrderBy{DimensionName: "date"}}}},
		})
		if err != nil {
			return 0, false, err
		}
		return len(resp.Rows), resp.GetMetadata().GetCached(), nil
	}},
	{"top10_pagePath_7d", func(ctx context.Context, c *client, name string) (int, bool, error) {
		resp, err := c.insights.RunReport(ctx, &insightsv1.RunReportRequest{
			Dimensions: []*insightsv1.Dimension{{Name: "pagePath"}},
			Metrics:    []*insightsv1.Metric{{Name: "screenPageViews"}, {Name: "totalUsers"}, {Name: "sessions"}},
			DateRanges: []*insightsv1.DateRange{{StartDate: "6daysAgo", EndDate: "today", Name: name}},
			OrderBys:   []*insightsv1.OrderBy{{OneOrderBy: &insightsv1.OrderBy_Metric{Metric: &insightsv1.OrderBy_MetricOrderBy{MetricName: "screenPageViews"}}, Desc: true}},
			Limit:      10,
		})
		if err != nil {
			return 0, false, err
		}
		return len(resp.Rows), resp.GetMetadata().GetCached(), nil
	}},
	{"realtime_30m_by_minute", func(ctx context.Context, c *client, name string) (int, bool, error) {
		resp, err := c.insights.RunRealtimeReport(ctx, &insightsv1.RunRealtimeReportRequest{
			Dimensions:   []*insightsv1.Dimension{{Name: "minutesAgo"}},
			Metrics:      []*insightsv1.Metric{{Name: "activeUsers"}, {Name: "eventCount"}},
			MinuteRanges: []*insightsv1.MinuteRange{{StartMinutesAgo: proto.Int32(29), EndMinutesAgo: proto.Int32(0), Name: name}},
		})
		if err != nil {
			return 0, false, err
		}
		return len(resp.Rows), resp.GetMetadata().GetCached(), nil
	}},
}

// queryBench runs each report iters times with a fresh cache key
// (uncached) and iters times with one key (cached, after one warm-up), or
// fewer (at least minQueryIters) when that takes more than budget.
// Nothing else may write to the property meanwhile: new data changes the
// cache keys.
func (c *client) queryBench(ctx context.Context, readKey string, stored int64, iters int, budget time.Duration) ([]QueryStats, error) {
	ctx = withKey(ctx, readKey)
	tag := strconv.FormatInt(time.Now().UnixNano(), 36)
	var out []QueryStats
	for _, q := range reportQueries {
		st := QueryStats{Query: q.name, StoredEvents: stored}
		var unc, cac loadgen.Histogram
		start := time.Now()
		for i := 0; i < iters && (i < minQueryIters || time.Since(start) < budget); i++ {
			t0 := time.Now()
			rows, cached, err := q.run(ctx, c, "u"+tag+"x"+strconv.Itoa(i))
			d := time.Since(t0)
			if err != nil {
				return out, fmt.Errorf("%s: %w", q.name, err)
			}
			unc.Record(d)
			st.Rows = rows
			if !cached {
				st.UncachedMisses++
			}
		}
		name := "c" + tag
		if _, _, err := q.run(ctx, c, name); err != nil {
			return out, fmt.Errorf("%s: %w", q.name, err)
		}
		start = time.Now()
		for i := 0; i < iters && (i < minQueryIters || time.Since(start) < budget); i++ {
			t0 := time.Now()
			_, cached, err := q.run(ctx, c, name)
			d := time.Since(t0)
			if err != nil {
				return out, fmt.Errorf("%s: %w", q.name, err)
			}
			cac.Record(d)
			if cached {
				st.CachedHits++
			}
		}
		st.Uncached, st.Cached = unc.Summary(), cac.Summary()
		out = append(out, st)
	}
	return out, nil
}

// ReplayResult is a rebuild of a version from the first offset.
type ReplayResult struct {
	Version         string  `json:"version"`
	Records         int64   `json:"records"` // log records the version read
	Applied         int64   `json:"applied"`
	Duplicates      int64   `json:"duplicates"`
	Excluded        int64   `json:"excluded"`
	Seconds         float64 `json:"seconds"` // from StartReplay to no lag
	EventsPerSecond float64 `json:"eventsPerSecond"`
	// SteadyEventsPerSecond leaves out the start (the supervisors notice a
	// new version within a second): from the first progress seen.
	SteadyEventsPerSecond float64 `json:"steadyEventsPerSecond"`
}

// replay rebuilds traffic/version from the earliest offset and waits until
// it has caught up with the log.
func (c *client) replay(ctx context.Context, adminKey, version string, timeout time.Duration) (ReplayResult, error) {
	res := ReplayResult{Version: version}
	actx := withKey(ctx, adminKey)
	if _, err := c.projection.GetReplay(actx, &projectionv1.GetReplayRequest{Name: "traffic", Version: version}); err == nil {
		if _, err := c.projection.DeleteVersion(actx, &projectionv1.DeleteVersionRequest{Name: "traffic", Version: version}); err != nil {
			return res, fmt.Errorf("delete the previous %s: %w", version, err)
		}
		time.Sleep(4 * time.Second) // the version's read model is dropped after a settle time
	}
	start := time.Now()
	if _, err := c.projection.StartReplay(actx, &projectionv1.StartReplayRequest{Name: "traffic", Version: version,
		From: &projectionv1.ReplayFrom{Start: &projectionv1.ReplayFrom_Earliest{Earliest: true}}}); err != nil {
		return res, err
	}
	var firstT time.Time
	var firstDone int64
	for {
		resp, err := c.projection.GetReplay(actx, &projectionv1.GetReplayRequest{Name: "traffic", Version: version})
		now := time.Now()
		if err == nil {
			p := resp.Projection
			done := p.EventsApplied + p.DuplicatesDropped + p.EventsExcluded
			if firstT.IsZero() && done > 0 {
				firstT, firstDone = now, done
			}
			var ends int64
			for _, pp := range p.Partitions {
				ends += pp.EndOffset
			}
			if p.Lag == 0 && len(p.Partitions) > 0 {
				res.Records = ends
				res.Applied, res.Duplicates, res.Excluded = p.EventsApplied, p.DuplicatesDropped, p.EventsExcluded
				res.Seconds = now.Sub(start).Seconds()
				res.EventsPerSecond = float64(ends) / res.Seconds
				if s := now.Sub(firstT).Seconds(); !firstT.IsZero() && s > 0 {
					res.SteadyEventsPerSecond = float64(done-firstDone) / s
				}
				return res, nil
			}
		}
		if time.Since(start) > timeout {
			return res, fmt.Errorf("replay of %s not caught up after %v (last error %v)", version, timeout, err)
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
}
