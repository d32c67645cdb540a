package projection

import (
	"context"
	"fmt"
	"sort"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	projectionv1 "github.com/sextant-analytics/sextant/gen/sextant/projection/v1"
	"github.com/sextant-analytics/sextant/gen/sextant/projection/v1/projectionv1connect"
	"github.com/sextant-analytics/sextant/pkg/eventlog"
	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

// Versions tells which version of a projection serves reads.
type Versions interface {
	Active(ctx context.Context, projection string) (string, error)
}

// Known is a projection version the service reports on.
type Known struct{ Name, Version string }

// Service implements ProjectionService from the view store's committed
// progress and the log's end offsets, so it answers the same from any
// process, whether or not this one runs the projector.
type Service struct {
	known []Known
	log   eventlog.Reader
	store interface {
		ListProgress(ctx context.Context, ns viewstore.Namespace) ([]viewstore.Progress, error)
	}
	versions Versions
}

var _ projectionv1connect.ProjectionServiceHandler = (*Service)(nil)

// NewService returns the service.
func NewService(known []Known, log eventlog.Reader, store Store, versions Versions) *Service {
	return &Service{known: known, log: log, store: store, versions: versions}
}

// ListProjections lists every known projection version with its progress.
func (s *Service) ListProjections(ctx context.Context, req *connect.Request[projectionv1.ListProjectionsRequest]) (*connect.Response[projectionv1.ListProjectionsResponse], error) {
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
	out := &projectionv1.ListProjectionsResponse{}
	for _, k := range s.known {
		if req.Msg.Name != "" && req.Msg.Name != k.Name {
			continue
		}
		active, err := s.versions.Active(ctx, k.Name)
		if err != nil {
			return nil, err
		}
		progress, err := s.store.ListProgress(ctx, viewstore.NamespaceOf(k.Name, k.Version))
		if err != nil {
			return nil, fmt.Errorf("projection: progress: %w", err)
		}
		byPart := make(map[int32]viewstore.Progress, len(progress))
		for _, p := range progress {
			byPart[p.Partition] = p
		}
		pr := &projectionv1.Projection{Name: k.Name, Version: k.Version, Active: active == k.Version}
		var wm viewstore.Progress
		for _, p := range parts {
			cur := byPart[p]
			lag := max(0, ends[p]-cur.Next)
			pr.Partitions = append(pr.Partitions, &projectionv1.PartitionProgress{Partition: p, Offset: cur.Next, EndOffset: ends[p], Lag: lag})
			pr.Lag += lag
			pr.EventsApplied += cur.Applied
			pr.DuplicatesDropped += cur.Duplicates
			if cur.Watermark.After(wm.Watermark) {
				wm.Watermark = cur.Watermark
			}
		}
		sort.Slice(pr.Partitions, func(i, j int) bool { return pr.Partitions[i].Partition < pr.Partitions[j].Partition })
		if !wm.Watermark.IsZero() {
			pr.Watermark = timestamppb.New(wm.Watermark)
		}
		switch {
		case pr.Active:
			pr.State = projectionv1.ProjectionState_PROJECTION_STATE_ACTIVE
		case pr.Lag == 0:
			pr.State = projectionv1.ProjectionState_PROJECTION_STATE_CAUGHT_UP
		default:
			pr.State = projectionv1.ProjectionState_PROJECTION_STATE_BUILDING
		}
		out.Projections = append(out.Projections, pr)
	}
	return connect.NewResponse(out), nil
}
