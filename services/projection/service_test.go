package projection

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"connectrpc.com/connect"

	projectionv1 "github.com/sextant-analytics/sextant/gen/sextant/projection/v1"
	"github.com/sextant-analytics/sextant/pkg/apierror"
	"github.com/sextant-analytics/sextant/pkg/auth"
	"github.com/sextant-analytics/sextant/pkg/property"
	"github.com/sextant-analytics/sextant/pkg/versions"
	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

func TestServiceLifecycle(t *testing.T) {
	dir := t.TempDir()
	log, st := openEmbedded(t, dir)
	defer log.Close()
	defer st.Close()
	appendEvents(t, log, 0, 200, nil)
	reg := versions.NewRegistry(st, map[string]string{"traffic": "v1"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sup := NewSupervisor(Config{FlushInterval: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}, Logics(), log, st, reg, 50*time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	defer func() { cancel(); <-done }()
	svc := NewService(ServiceConfig{Settle: 150 * time.Millisecond}, Logics(), log, st, reg)
	admin := auth.WithPrincipal(ctx, property.Principal{Scope: property.Admin})
	reader := auth.WithPrincipal(ctx, property.Principal{Scope: property.Read, PropertyID: "p1"})

	kind := func(err error) apierror.Kind { return apierror.KindOf(err) }
	for _, tc := range []struct {
		name string
		ctx  context.Context
		req  *projectionv1.StartReplayRequest
		want apierror.Kind
	}{
		{"needs an admin key", reader, &projectionv1.StartReplayRequest{Name: "traffic", Version: "v2"}, apierror.PermissionDenied},
		{"unknown logic", admin, &projectionv1.StartReplayRequest{Name: "traffic", Version: "v9"}, apierror.InvalidArgument},
		{"existing version", admin, &projectionv1.StartReplayRequest{Name: "traffic", Version: "v1"}, apierror.FailedPrecondition},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := svc.StartReplay(tc.ctx, connect.NewRequest(tc.req)); kind(err) != tc.want {
				t.Fatalf("err %v, want kind %d", err, tc.want)
			}
		})
	}
	if _, err := svc.Rollback(admin, connect.NewRequest(&projectionv1.RollbackRequest{Name: "traffic"})); kind(err) != apierror.FailedPrecondition {
		t.Fatalf("rollback with no history: %v", err)
	}
	if _, err := svc.StartReplay(admin, connect.NewRequest(&projectionv1.StartReplayRequest{Name: "traffic", Version: "v2"})); err != nil {
		t.Fatal(err)
	}
	first, err := reg.Get(ctx, "traffic", "v2")
	if err != nil || first.Build == "" {
		t.Fatalf("a replay records its build: %+v %v", first, err)
	}
	get := func(v string) (*projectionv1.Projection, error) {
		r, err := svc.GetReplay(reader, connect.NewRequest(&projectionv1.GetReplayRequest{Name: "traffic", Version: v}))
		if err != nil {
			return nil, err
		}
		return r.Msg.Projection, nil
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		p, err := get("v2")
		if err != nil {
			t.Fatal(err)
		}
		if p.Lag == 0 && p.EventsApplied == 200 {
			if p.State != projectionv1.ProjectionState_PROJECTION_STATE_CAUGHT_UP {
				t.Fatalf("state %v", p.State)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("v2 did not catch up: %+v", p)
		}
	}
	if _, err := svc.Activate(admin, connect.NewRequest(&projectionv1.ActivateRequest{Name: "traffic", Version: "v2"})); err != nil {
		t.Fatal(err)
	}
	if a, _ := reg.Active(ctx, "traffic"); a != "v2" {
		t.Fatalf("active %s", a)
	}
	list, err := svc.ListProjections(reader, connect.NewRequest(&projectionv1.ListProjectionsRequest{}))
	if err != nil || len(list.Msg.Projections) != 2 || !list.Msg.Projections[1].Active || list.Msg.Projections[1].PreviousVersion != "v1" {
		t.Fatalf("list %v %v", list, err)
	}
	if _, err := svc.DeleteVersion(admin, connect.NewRequest(&projectionv1.DeleteVersionRequest{Name: "traffic", Version: "v2"})); kind(err) != apierror.FailedPrecondition {
		t.Fatalf("deleting the active version: %v", err)
	}
	r, err := svc.Rollback(admin, connect.NewRequest(&projectionv1.RollbackRequest{Name: "traffic"}))
	if err != nil || r.Msg.Projection.Version != "v1" || !r.Msg.Projection.Active {
		t.Fatalf("rollback %v %v", r, err)
	}
	if _, err := svc.DeleteVersion(admin, connect.NewRequest(&projectionv1.DeleteVersionRequest{Name: "traffic", Version: "v2"})); err != nil {
		t.Fatal(err)
	}
	if _, err := get("v2"); kind(err) != apierror.NotFound {
		t.Fatalf("deleted version: %v", err)
	}
	if pr, _ := st.ListProgress(ctx, viewstore.NamespaceOf("traffic", "v2")); len(pr) != 0 {
		t.Fatalf("the deleted version's read model is still there: %v", pr)
	}
	// Rebuilt from a time after the whole history: nothing to apply.
	future := &projectionv1.StartReplayRequest{Name: "traffic", Version: "v2", From: &projectionv1.ReplayFrom{
		Start: &projectionv1.ReplayFrom_Offsets{Offsets: &projectionv1.PartitionOffsets{Offsets: map[int32]int64{0: 1 << 40}}}}}
	if _, err := svc.StartReplay(admin, connect.NewRequest(future)); err != nil {
		t.Fatal(err)
	}
	p, err := get("v2")
	if err != nil || p.Partitions[0].Offset != 1<<40 {
		t.Fatalf("start offsets not honoured: %+v %v", p, err)
	}
	// The rebuild is another build: answers cached for the first are
	// never read for it (insights keys them by build).
	if again, err := reg.Get(ctx, "traffic", "v2"); err != nil || again.Build == "" || again.Build == first.Build {
		t.Fatalf("rebuilt v2 has build %q, the first %q (%v): want a new one", again.Build, first.Build, err)
	}
}

func TestNormalizePath(t *testing.T) {
	for in, want := range map[string]string{
		"/Shoes/": "/shoes", "/shoes": "/shoes", "/shoes/index.html": "/shoes", "/": "/",
		"/index.html": "/", "//a//b/": "/a/b", "": "", "/A/index.php": "/a",
	} {
		if got := normalizePath(in); got != want {
			t.Errorf("normalizePath(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestReplayReachesStartEnds: a replay of a log smaller than CaughtUpLag
// has not caught up before it reached the end the log had when it started
// (a small lag alone made a version that had applied nothing "caught up",
// and `--watch` and Activate believed it).
func TestReplayReachesStartEnds(t *testing.T) {
	dir := t.TempDir()
	log, st := openEmbedded(t, dir)
	defer log.Close()
	defer st.Close()
	appendEvents(t, log, 0, 200, nil)
	reg := versions.NewRegistry(st, map[string]string{"traffic": "v1"})
	ctx := context.Background()
	// No supervisor runs: the version applies nothing.
	svc := NewService(ServiceConfig{CaughtUpLag: 1000}, Logics(), log, st, reg)
	admin := auth.WithPrincipal(ctx, property.Principal{Scope: property.Admin})
	r, err := svc.StartReplay(admin, connect.NewRequest(&projectionv1.StartReplayRequest{Name: "traffic", Version: "v2"}))
	if err != nil {
		t.Fatal(err)
	}
	p := r.Msg.Projection
	var ends int64
	for _, pp := range p.Partitions {
		ends += pp.ReplayEndOffset
	}
	if p.Lag != 200 || ends != 200 {
		t.Fatalf("lag %d, replay ends %d over %d partitions: want 200 and 200", p.Lag, ends, len(p.Partitions))
	}
	if p.State != projectionv1.ProjectionState_PROJECTION_STATE_BUILDING {
		t.Fatalf("state %v with nothing applied, want BUILDING", p.State)
	}
	if _, err := svc.Activate(admin, connect.NewRequest(&projectionv1.ActivateRequest{Name: "traffic", Version: "v2"})); apierror.KindOf(err) != apierror.FailedPrecondition {
		t.Fatalf("activating a version that applied nothing: %v", err)
	}
}
