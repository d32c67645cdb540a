package projection

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	projectionv1 "github.com/sextant-analytics/sextant/gen/sextant/projection/v1"
	"github.com/sextant-analytics/sextant/gen/sextant/projection/v1/projectionv1connect"
	"github.com/sextant-analytics/sextant/pkg/apierror"
	"github.com/sextant-analytics/sextant/pkg/auth"
	"github.com/sextant-analytics/sextant/pkg/configcheck"
	"github.com/sextant-analytics/sextant/pkg/eventlog"
	"github.com/sextant-analytics/sextant/pkg/versions"
	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

// ServiceLog is what the service needs of the event log.
type ServiceLog interface {
	eventlog.Reader
	eventlog.TimeIndex
}

// ServiceStore is what the service needs of the view store.
type ServiceStore interface {
	ListProgress(ctx context.Context, ns viewstore.Namespace) ([]viewstore.Progress, error)
	DropNamespace(ctx context.Context, ns viewstore.Namespace) error
}

// ServiceConfig configures the service.
type ServiceConfig struct {
	// CaughtUpLag is the most records a version may lag and still count
	// as caught up (the head of a live log moves all the time).
	CaughtUpLag int64
	// Settle is how long a retired version is left before its read model
	// is dropped, so that every copy's supervisor has stopped it.
	Settle time.Duration
	// WatchEvery is how often WatchReplay reports.
	WatchEvery time.Duration
	Logger     *slog.Logger
}

// withDefaults fills the zero fields (and negative ones, which Validate
// reports) with their defaults.
func (c ServiceConfig) withDefaults() ServiceConfig {
	if c.CaughtUpLag <= 0 {
		c.CaughtUpLag = 1000
	}
	if c.Settle <= 0 {
		c.Settle = 2500 * time.Millisecond
	}
	if c.WatchEvery <= 0 {
		c.WatchEvery = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports negative fields (zero means the default).
func (c ServiceConfig) Validate() error {
	e := configcheck.New("projection service")
	configcheck.NotNegative(e, "CaughtUpLag", c.CaughtUpLag)
	configcheck.NotNegative(e, "Settle", c.Settle)
	configcheck.NotNegative(e, "WatchEvery", c.WatchEvery)
	return e.Err()
}

// Service implements ProjectionService from the registry, the view store's
// committed progress and the log's end offsets, so it answers the same from
// any process, whether or not this one runs the projectors.
type Service struct {
	cfg    ServiceConfig
	logics []Logic
	log    ServiceLog
	store  ServiceStore
	reg    Registry
	now    func() time.Time
}

var _ projectionv1connect.ProjectionServiceHandler = (*Service)(nil)

// NewService returns the service.
func NewService(cfg ServiceConfig, logics []Logic, log ServiceLog, store ServiceStore, reg Registry) *Service {
	cfg = cfg.withDefaults()
	return &Service{cfg: cfg, logics: logics, log: log, store: store, reg: reg, now: time.Now}
}

func (s *Service) names() []string {
	var out []string
	for _, l := range s.logics {
		if !contains(out, l.Name) {
			out = append(out, l.Name)
		}
	}
	return out
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

func (s *Service) ends(ctx context.Context) (map[int32]int64, error) {
	parts, err := s.log.Partitions(ctx)
	if err != nil {
		return nil, fmt.Errorf("projection: partitions: %w", err)
	}
	ends := make(map[int32]int64, len(parts))
	for _, p := range parts {
		if ends[p], err = s.log.EndOffset(ctx, p); err != nil {
			return nil, fmt.Errorf("projection: end offset: %w", err)
		}
	}
	return ends, nil
}

// status describes one version.
func (s *Service) status(ctx context.Context, v versions.Version, ends map[int32]int64) (*projectionv1.Projection, error) {
	active, err := s.reg.Active(ctx, v.Name)
	if err != nil {
		return nil, err
	}
	previous, err := s.reg.Previous(ctx, v.Name)
	if err != nil {
		return nil, err
	}
	progress, err := s.store.ListProgress(ctx, viewstore.NamespaceOf(v.Name, v.Version))
	if err != nil {
		return nil, fmt.Errorf("projection: progress: %w", err)
	}
	byPart := make(map[int32]viewstore.Progress, len(progress))
	for _, p := range progress {
		byPart[p.Partition] = p
	}
	pr := &projectionv1.Projection{Name: v.Name, Version: v.Version, Active: active == v.Version}
	if l, ok := FindLogic(s.logics, v.Name, v.Version); ok {
		pr.Description = l.Description
	}
	if pr.Active {
		pr.PreviousVersion = previous
	}
	if !v.Created.IsZero() {
		pr.CreatedTime = timestamppb.New(v.Created)
	}
	pr.From = &projectionv1.ReplayFrom{}
	switch {
	case v.From.Time != nil:
		pr.From.Start = &projectionv1.ReplayFrom_Time{Time: timestamppb.New(*v.From.Time)}
	case len(v.From.Offsets) > 0:
		pr.From.Start = &projectionv1.ReplayFrom_Offsets{Offsets: &projectionv1.PartitionOffsets{Offsets: v.From.Offsets}}
	default:
		pr.From.Start = &projectionv1.ReplayFrom_Earliest{Earliest: true}
	}
	parts := make([]int32, 0, len(ends))
	for p := range ends {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	var wm time.Time
	reached := true // every partition reached the log's end at the replay's start
	for _, p := range parts {
		cur := byPart[p]
		next := cur.Next
		if next == 0 && cur.Applied == 0 {
			next = v.From.Offsets[p]
		}
		lag := max(0, ends[p]-next)
		pr.Partitions = append(pr.Partitions, &projectionv1.PartitionProgress{Partition: p, Offset: next, EndOffset: ends[p], Lag: lag, ReplayEndOffset: v.Ends[p]})
		if next < v.Ends[p] {
			reached = false
		}
		pr.Lag += lag
		pr.EventsApplied += cur.Applied
		pr.DuplicatesDropped += cur.Duplicates
		pr.EventsExcluded += cur.Excluded
		if cur.Watermark.After(wm) {
			wm = cur.Watermark
		}
	}
	if !wm.IsZero() {
		pr.Watermark = timestamppb.New(wm)
	}
	if !v.Created.IsZero() {
		if secs := s.now().Sub(v.Created).Seconds(); secs > 0 {
			pr.EventsPerSecond = float64(pr.EventsApplied+pr.DuplicatesDropped+pr.EventsExcluded) / secs
		}
	}
	if pr.Lag > 0 && pr.EventsPerSecond > 0 {
		pr.EtaSeconds = float64(pr.Lag) / pr.EventsPerSecond
	}
	switch {
	case v.State == versions.Retired:
		pr.State = projectionv1.ProjectionState_PROJECTION_STATE_RETIRED
	case pr.Active:
		pr.State = projectionv1.ProjectionState_PROJECTION_STATE_ACTIVE
	case pr.Lag <= s.cfg.CaughtUpLag && reached:
		pr.State = projectionv1.ProjectionState_PROJECTION_STATE_CAUGHT_UP
	default:
		pr.State = projectionv1.ProjectionState_PROJECTION_STATE_BUILDING
	}
	return pr, nil
}

func (s *Service) version(ctx context.Context, name, version string) (versions.Version, error) {
	if name == "" || version == "" {
		return versions.Version{}, apierror.Invalid("invalid request",
			apierror.Violation{Field: "name", Description: "name and version are required", Code: apierror.ValueRequired})
	}
	v, err := s.reg.Get(ctx, name, version)
	if errors.Is(err, versions.ErrNotFound) {
		return v, apierror.New(apierror.NotFound, "projection version %s/%s does not exist", name, version)
	}
	return v, err
}

func (s *Service) describe(ctx context.Context, v versions.Version) (*projectionv1.Projection, error) {
	ends, err := s.ends(ctx)
	if err != nil {
		return nil, err
	}
	return s.status(ctx, v, ends)
}

// ListProjections lists every version of every projection.
func (s *Service) ListProjections(ctx context.Context, req *connect.Request[projectionv1.ListProjectionsRequest]) (*connect.Response[projectionv1.ListProjectionsResponse], error) {
	ends, err := s.ends(ctx)
	if err != nil {
		return nil, err
	}
	out := &projectionv1.ListProjectionsResponse{}
	for _, name := range s.names() {
		if req.Msg.Name != "" && req.Msg.Name != name {
			continue
		}
		vs, err := s.reg.List(ctx, name)
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			pr, err := s.status(ctx, v, ends)
			if err != nil {
				return nil, err
			}
			out.Projections = append(out.Projections, pr)
		}
	}
	return connect.NewResponse(out), nil
}

// StartReplay records a new version; every projection copy's supervisor
// starts building it within a second.
func (s *Service) StartReplay(ctx context.Context, req *connect.Request[projectionv1.StartReplayRequest]) (*connect.Response[projectionv1.StartReplayResponse], error) {
	if err := auth.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	m := req.Msg
	if _, ok := FindLogic(s.logics, m.Name, m.Version); !ok {
		var known []string
		for _, l := range s.logics {
			known = append(known, l.Name+"/"+l.Version)
		}
		return nil, apierror.Invalid("unknown logic", apierror.Violation{Field: "version",
			Description: fmt.Sprintf("%s/%s is not a registered logic version (registered: %s)", m.Name, m.Version, strings.Join(known, ", ")), Code: apierror.ValueInvalid})
	}
	if _, err := s.reg.Get(ctx, m.Name, m.Version); err == nil {
		return nil, apierror.New(apierror.FailedPrecondition, "%s/%s exists already; delete it first to rebuild it", m.Name, m.Version)
	} else if !errors.Is(err, versions.ErrNotFound) {
		return nil, err
	}
	// A new build: answers cached for an earlier build of this version
	// (deleted since) are never read for this one.
	v := versions.Version{Name: m.Name, Version: m.Version, State: versions.Running, Created: s.now().UTC(), Build: versions.NewBuild()}
	switch from := m.GetFrom().GetStart().(type) {
	case *projectionv1.ReplayFrom_Time:
		if err := from.Time.CheckValid(); err != nil {
			return nil, apierror.Invalid("invalid start", apierror.Violation{Field: "from.time", Description: err.Error(), Code: apierror.ValueInvalid})
		}
		t := from.Time.AsTime()
		v.From.Time = &t
		parts, err := s.log.Partitions(ctx)
		if err != nil {
			return nil, err
		}
		v.From.Offsets = map[int32]int64{}
		for _, p := range parts {
			off, err := s.log.OffsetForTime(ctx, p, t)
			if err != nil {
				return nil, fmt.Errorf("projection: offset for time: %w", err)
			}
			if off > 0 {
				v.From.Offsets[p] = off
			}
		}
	case *projectionv1.ReplayFrom_Offsets:
		for p, off := range from.Offsets.GetOffsets() {
			if off < 0 {
				return nil, apierror.Invalid("invalid start", apierror.Violation{Field: fmt.Sprintf("from.offsets[%d]", p), Description: "offsets are not negative", Code: apierror.ValueOutOfBounds})
			}
		}
		v.From.Offsets = from.Offsets.GetOffsets()
	}
	// Where the log ends now: the version has caught up once it reached
	// these offsets (a small log is otherwise "caught up" before the
	// replay applied anything).
	ends, err := s.ends(ctx)
	if err != nil {
		return nil, err
	}
	v.Ends = ends
	if err := s.reg.Put(ctx, v); err != nil {
		return nil, err
	}
	pr, err := s.describe(ctx, v)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&projectionv1.StartReplayResponse{Projection: pr}), nil
}

// GetReplay reports a version's progress.
func (s *Service) GetReplay(ctx context.Context, req *connect.Request[projectionv1.GetReplayRequest]) (*connect.Response[projectionv1.GetReplayResponse], error) {
	v, err := s.version(ctx, req.Msg.Name, req.Msg.Version)
	if err != nil {
		return nil, err
	}
	pr, err := s.describe(ctx, v)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&projectionv1.GetReplayResponse{Projection: pr}), nil
}

// WatchReplay streams a version's progress until it has caught up.
func (s *Service) WatchReplay(ctx context.Context, req *connect.Request[projectionv1.WatchReplayRequest], stream *connect.ServerStream[projectionv1.WatchReplayResponse]) error {
	for {
		v, err := s.version(ctx, req.Msg.Name, req.Msg.Version)
		if err != nil {
			return err
		}
		pr, err := s.describe(ctx, v)
		if err != nil {
			return err
		}
		if err := stream.Send(&projectionv1.WatchReplayResponse{Projection: pr}); err != nil {
			return err
		}
		if pr.State != projectionv1.ProjectionState_PROJECTION_STATE_BUILDING {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(s.cfg.WatchEvery):
		}
	}
}

// Activate switches reads to a version that has caught up.
func (s *Service) Activate(ctx context.Context, req *connect.Request[projectionv1.ActivateRequest]) (*connect.Response[projectionv1.ActivateResponse], error) {
	if err := auth.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	v, err := s.version(ctx, req.Msg.Name, req.Msg.Version)
	if err != nil {
		return nil, err
	}
	pr, err := s.describe(ctx, v)
	if err != nil {
		return nil, err
	}
	switch pr.State {
	case projectionv1.ProjectionState_PROJECTION_STATE_RETIRED:
		return nil, apierror.New(apierror.FailedPrecondition, "%s/%s is retired", v.Name, v.Version)
	case projectionv1.ProjectionState_PROJECTION_STATE_BUILDING:
		return nil, apierror.New(apierror.FailedPrecondition, "%s/%s has not caught up: %d records to go (ETA %.0f s)", v.Name, v.Version, pr.Lag, pr.EtaSeconds)
	}
	if err := s.reg.Activate(ctx, v.Name, v.Version); err != nil {
		return nil, err
	}
	if pr, err = s.describe(ctx, v); err != nil {
		return nil, err
	}
	return connect.NewResponse(&projectionv1.ActivateResponse{Projection: pr}), nil
}

// Rollback reactivates the version active before.
func (s *Service) Rollback(ctx context.Context, req *connect.Request[projectionv1.RollbackRequest]) (*connect.Response[projectionv1.RollbackResponse], error) {
	if err := auth.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	name := req.Msg.Name
	prev, err := s.reg.Previous(ctx, name)
	if err != nil {
		return nil, err
	}
	if prev == "" {
		return nil, apierror.New(apierror.FailedPrecondition, "%s has no earlier active version to roll back to", name)
	}
	v, err := s.reg.Get(ctx, name, prev)
	if errors.Is(err, versions.ErrNotFound) || (err == nil && v.State == versions.Retired) {
		return nil, apierror.New(apierror.FailedPrecondition, "the previous version %s/%s was deleted or retired", name, prev)
	}
	if err != nil {
		return nil, err
	}
	if _, err := s.reg.Rollback(ctx, name); err != nil {
		return nil, err
	}
	pr, err := s.describe(ctx, v)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&projectionv1.RollbackResponse{Projection: pr}), nil
}

// DeleteVersion retires a version that is not active, waits for the
// projectors to stop it, and deletes its read model and record.
func (s *Service) DeleteVersion(ctx context.Context, req *connect.Request[projectionv1.DeleteVersionRequest]) (*connect.Response[projectionv1.DeleteVersionResponse], error) {
	if err := auth.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	v, err := s.version(ctx, req.Msg.Name, req.Msg.Version)
	if err != nil {
		return nil, err
	}
	active, err := s.reg.Active(ctx, v.Name)
	if err != nil {
		return nil, err
	}
	if active == v.Version {
		return nil, apierror.New(apierror.FailedPrecondition, "%s/%s is active; activate another version first", v.Name, v.Version)
	}
	if err := s.deleteVersion(ctx, v); err != nil {
		return nil, err
	}
	return connect.NewResponse(&projectionv1.DeleteVersionResponse{}), nil
}

// deleteVersion retires v, waits for the projectors to stop it, and
// deletes its read model and record.
func (s *Service) deleteVersion(ctx context.Context, v versions.Version) error {
	if v.State != versions.Retired {
		v.State = versions.Retired
		if err := s.reg.Put(ctx, v); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(s.cfg.Settle):
		}
	}
	if err := s.store.DropNamespace(ctx, viewstore.NamespaceOf(v.Name, v.Version)); err != nil {
		return fmt.Errorf("projection: drop read model: %w", err)
	}
	return s.reg.Delete(ctx, v.Name, v.Version)
}
