package insights

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	insightsv1 "github.com/sextant-analytics/sextant/gen/sextant/insights/v1"
	"github.com/sextant-analytics/sextant/gen/sextant/insights/v1/insightsv1connect"
	"github.com/sextant-analytics/sextant/pkg/auth"
	"github.com/sextant-analytics/sextant/pkg/cache"
	"github.com/sextant-analytics/sextant/pkg/clientinfo"
	"github.com/sextant-analytics/sextant/pkg/pebblestore"
	"github.com/sextant-analytics/sextant/pkg/property"
	"github.com/sextant-analytics/sextant/pkg/versions"
	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

// frontStore has watermarks only: a front never reads the read model.
type frontStore struct {
	wms atomic.Pointer[[]viewstore.Watermark]
}

func (s *frontStore) ScanAdditions(context.Context, viewstore.Namespace, string, int64, int64, func(viewstore.Addition) error) error {
	return errors.New("a front read additions")
}
func (s *frontStore) ScanBlocks(context.Context, viewstore.Namespace, string, viewstore.Kind, int64, int64, func(viewstore.Block) error) error {
	return errors.New("a front read blocks")
}
func (s *frontStore) Watermarks(context.Context, viewstore.Namespace, string) ([]viewstore.Watermark, error) {
	return *s.wms.Load(), nil
}

type oneProperty struct{}

func (oneProperty) Get(_ context.Context, id string) (property.Property, error) {
	return property.Property{ID: id, TimeZone: "UTC"}, nil
}

type fixedVersion struct{ calls atomic.Int32 }

func (v *fixedVersion) Active(context.Context, string) (string, error) {
	v.calls.Add(1)
	return "v1", nil
}

func (v *fixedVersion) Get(_ context.Context, name, version string) (versions.Version, error) {
	return versions.Version{Name: name, Version: version, State: versions.Running, Build: "b1"}, nil
}

// upstream answers every report with its version and watermark.
type upstream struct {
	insightsv1connect.UnimplementedInsightsServiceHandler
	calls     atomic.Int32
	fresh     atomic.Int32 // calls that asked for fresh watermarks
	version   string
	watermark time.Time
}

func (u *upstream) RunReport(_ context.Context, req *connect.Request[insightsv1.RunReportRequest]) (*connect.Response[insightsv1.RunReportResponse], error) {
	u.calls.Add(1)
	if req.Header().Get(clientinfo.HeaderFreshWatermarks) != "" {
		u.fresh.Add(1)
	}
	return connect.NewResponse(&insightsv1.RunReportResponse{
		RowCount: u.calls.Load(),
		Metadata: &insightsv1.ResponseMetaData{ProjectionVersion: u.version, DataWatermark: timestamppb.New(u.watermark)},
	}), nil
}

// TestFront: a service with an Upstream answers what its cache holds
// without calling it, forwards the rest asking for fresh watermarks (so
// that an answer holds at least the data the front's key names), and
// keeps only answers of the version it reads.
func TestFront(t *testing.T) {
	wm := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	ctx := auth.WithPrincipal(context.Background(), property.Principal{PropertyID: "p", Scope: property.Read})
	req := func() *connect.Request[insightsv1.RunReportRequest] {
		return connect.NewRequest(&insightsv1.RunReportRequest{
			Metrics:    []*insightsv1.Metric{{Name: "eventCount"}},
			DateRanges: []*insightsv1.DateRange{{StartDate: "today", EndDate: "today"}},
		})
	}
	for _, tc := range []struct {
		name      string
		version   string
		watermark time.Time
		// wantCalls is how many of three reports reach the upstream.
		wantCalls int32
	}{
		{"answers of the version read are kept", "v1", wm, 1},
		{"another version's answers are not", "v2", wm, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &frontStore{}
			st.wms.Store(&[]viewstore.Watermark{{Property: "p", Partition: 0, Time: wm, Offset: 10}})
			up := &upstream{version: tc.version, watermark: tc.watermark}
			vers := &fixedVersion{}
			s := New(Config{Upstream: up, WatermarkRefresh: time.Hour}, st, oneProperty{}, vers, cache.NewMemory(1<<20))
			for i := 0; i < 3; i++ {
				resp, err := s.RunReport(ctx, req())
				if err != nil {
					t.Fatal(err)
				}
				if cached := resp.Msg.Metadata.Cached; cached != (i > 0 && tc.wantCalls == 1) {
					t.Errorf("report %d: cached %v", i, cached)
				}
			}
			if got := up.calls.Load(); got != tc.wantCalls {
				t.Errorf("%d of 3 reports reached the upstream, want %d", got, tc.wantCalls)
			}
			if f := up.fresh.Load(); f != up.calls.Load() {
				t.Errorf("%d of %d forwarded reports asked for fresh watermarks, want all", f, up.calls.Load())
			}
			if n := vers.calls.Load(); n != 1 {
				t.Errorf("the active version was read %d times in three reports, want once (remembered)", n)
			}
		})
	}
}

// TestFrontNewData: once the watermarks move, the cached answer is not
// served (its key names the old data).
func TestFrontNewData(t *testing.T) {
	wm := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	ctx := auth.WithPrincipal(context.Background(), property.Principal{PropertyID: "p", Scope: property.Read})
	st := &frontStore{}
	st.wms.Store(&[]viewstore.Watermark{{Property: "p", Time: wm, Offset: 10}})
	up := &upstream{version: "v1", watermark: wm.Add(time.Hour)}
	s := New(Config{Upstream: up}, st, oneProperty{}, &fixedVersion{}, cache.NewMemory(1<<20)) // watermarks read every time
	report := func() *insightsv1.RunReportResponse {
		t.Helper()
		resp, err := s.RunReport(ctx, connect.NewRequest(&insightsv1.RunReportRequest{Metrics: []*insightsv1.Metric{{Name: "eventCount"}}}))
		if err != nil {
			t.Fatal(err)
		}
		return resp.Msg
	}
	report()
	if r := report(); !r.Metadata.Cached || r.RowCount != 1 {
		t.Fatalf("second report: %v", r)
	}
	st.wms.Store(&[]viewstore.Watermark{{Property: "p", Time: wm.Add(time.Second), Offset: 11}})
	if r := report(); r.Metadata.Cached || r.RowCount != 2 {
		t.Fatalf("after new data: %v, want the upstream's second answer", r)
	}
}

// TestRebuiltVersionNotCached: an answer cached for a version is not served
// for the same version deleted and rebuilt under the same name, though the
// rebuilt version's watermarks are the old one's (a rebuild from a later
// time ends at the same offsets with less data): its key names the build.
// Remembered builds (WatermarkRefresh) switch within the refresh.
func TestRebuiltVersionNotCached(t *testing.T) {
	wm := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	ctx := auth.WithPrincipal(context.Background(), property.Principal{PropertyID: "p", Scope: property.Read})
	for _, refresh := range []time.Duration{0, time.Minute} {
		t.Run(refresh.String(), func(t *testing.T) {
			kv, err := pebblestore.Open(t.TempDir(), pebblestore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer kv.Close()
			reg := versions.NewRegistry(kv, map[string]string{"traffic": "v1"})
			record := func() {
				t.Helper()
				if err := reg.Put(ctx, versions.Version{Name: "traffic", Version: "v2", State: versions.Running, Build: versions.NewBuild()}); err != nil {
					t.Fatal(err)
				}
			}
			record()
			st := &frontStore{}
			st.wms.Store(&[]viewstore.Watermark{{Property: "p", Partition: 0, Time: wm, Offset: 10}})
			up := &upstream{version: "v2", watermark: wm}
			s := New(Config{Upstream: up, WatermarkRefresh: refresh}, st, oneProperty{}, reg, cache.NewMemory(1<<20))
			now := time.Now()
			s.active.now = func() time.Time { return now }
			report := func() *insightsv1.RunReportResponse {
				t.Helper()
				resp, err := s.RunReport(ctx, connect.NewRequest(&insightsv1.RunReportRequest{
					Metrics:           []*insightsv1.Metric{{Name: "screenPageViews"}},
					DateRanges:        []*insightsv1.DateRange{{StartDate: "today", EndDate: "today"}},
					ProjectionVersion: "v2",
				}))
				if err != nil {
					t.Fatal(err)
				}
				return resp.Msg
			}
			report()
			if r := report(); !r.Metadata.GetCached() || up.calls.Load() != 1 {
				t.Fatalf("second report: cached %v, %d upstream calls; want cached after one", r.Metadata.GetCached(), up.calls.Load())
			}
			// Deleted and rebuilt, with the same watermarks.
			if err := reg.Delete(ctx, "traffic", "v2"); err != nil {
				t.Fatal(err)
			}
			record()
			// Past refresh the build is read again, in the background: a
			// report or two may still answer from the old build's memory,
			// then they switch to the rebuilt version's answer.
			now = now.Add(refresh + time.Millisecond)
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
				r := report()
				if !r.Metadata.GetCached() && r.RowCount == 2 {
					break
				}
				if time.Now().After(deadline) || refresh == 0 {
					t.Fatalf("after the rebuild: cached %v, row count %d; want the upstream's second answer, not the old build's", r.Metadata.GetCached(), r.RowCount)
				}
			}
			if r := report(); !r.Metadata.GetCached() || r.RowCount != 2 {
				t.Fatalf("the rebuilt version's answer is not cached: cached %v, row count %d", r.Metadata.GetCached(), r.RowCount)
			}
		})
	}
}
