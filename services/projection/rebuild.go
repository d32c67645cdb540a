package projection

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sextant-analytics/sextant/pkg/privacy"
	"github.com/sextant-analytics/sextant/pkg/versions"

	projectionv1 "github.com/sextant-analytics/sextant/gen/sextant/projection/v1"
)

// Deletions is the ledger of user deletions, as the rebuilder reads it.
type Deletions interface {
	// Complete finishes interrupted deletions and returns them all.
	Complete(ctx context.Context) ([]privacy.Request, error)
	// Prune forgets deletions done before t.
	Prune(ctx context.Context, t time.Time) error
}

// DefaultRebuildDelay is how long after a deletion the read models that
// still count the user start being rebuilt: deletions within it share one
// rebuild.
const DefaultRebuildDelay = time.Minute

// Rebuild keeps the read models free of deleted users until ctx ends: every
// running version built (started) before a deletion was done is replayed
// as a new version ("v5+r…", the same logic and start) once delay has
// passed since that deletion, and once the rebuild has caught up it takes
// the old version's place, active pointer and rollback history included,
// and the old version is deleted with its read model. A report therefore
// stops counting a deleted user at most delay plus one replay of the log
// after the deletion. Every copy of the projection service may run it:
// they decide alike from the registry.
func (s *Service) Rebuild(ctx context.Context, dels Deletions, delay, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := s.rebuildStep(ctx, dels, delay); err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("rebuilding read models after deletions", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Service) rebuildStep(ctx context.Context, dels Deletions, delay time.Duration) error {
	reqs, err := dels.Complete(ctx)
	if err != nil {
		return err
	}
	if len(reqs) == 0 {
		return nil
	}
	now := s.now().UTC()
	oldest := now
	for _, name := range s.names() {
		vs, err := s.reg.List(ctx, name)
		if err != nil {
			return err
		}
		rebuilding := map[string]bool{}
		for _, v := range vs {
			if v.State == versions.Running && v.Replaces != "" {
				rebuilding[v.Replaces] = true
				if err := s.finishRebuild(ctx, v); err != nil {
					return err
				}
			}
		}
		for _, v := range vs {
			if v.State != versions.Running || v.Replaces != "" {
				if v.State == versions.Running && v.Created.Before(oldest) {
					oldest = v.Created
				}
				continue
			}
			if v.Created.Before(oldest) {
				oldest = v.Created
			}
			if rebuilding[v.Version] {
				continue
			}
			// The first deletion done after the version started: the
			// version counts that user.
			var first time.Time
			for _, r := range reqs {
				if !r.Done.IsZero() && r.KeyFound && r.Done.After(v.Created) && (first.IsZero() || r.Done.Before(first)) {
					first = r.Done
				}
			}
			if first.IsZero() || now.Before(first.Add(delay)) {
				continue
			}
			if err := s.startRebuild(ctx, v, now); err != nil {
				return err
			}
		}
	}
	// Deletions every running version was built after are applied
	// everywhere.
	return dels.Prune(ctx, oldest)
}

func (s *Service) startRebuild(ctx context.Context, v versions.Version, now time.Time) error {
	ends, err := s.ends(ctx)
	if err != nil {
		return err
	}
	r := versions.Version{Name: v.Name, Version: versions.RebuildName(v.Version, now), State: versions.Running,
		Created: now, Build: versions.NewBuild(), From: v.From, Ends: ends, Replaces: v.Version}
	if r.From.Time != nil {
		r.From.Offsets = v.From.Offsets // resolved when v started
	}
	s.cfg.Logger.Info("rebuilding a projection version without deleted users", "projection", v.Name, "version", v.Version, "rebuild", r.Version)
	if err := s.reg.Put(ctx, r); err != nil {
		return fmt.Errorf("projection: start the rebuild of %s/%s: %w", v.Name, v.Version, err)
	}
	return nil
}

// finishRebuild puts a rebuild that caught up in the place of the version
// it rebuilds, and deletes that version.
func (s *Service) finishRebuild(ctx context.Context, r versions.Version) error {
	ends, err := s.ends(ctx)
	if err != nil {
		return err
	}
	pr, err := s.status(ctx, r, ends)
	if err != nil {
		return err
	}
	if pr.State != projectionv1.ProjectionState_PROJECTION_STATE_CAUGHT_UP && pr.State != projectionv1.ProjectionState_PROJECTION_STATE_ACTIVE {
		return nil
	}
	if err := s.reg.Replace(ctx, r.Name, r.Replaces, r.Version); err != nil {
		return err
	}
	old, err := s.reg.Get(ctx, r.Name, r.Replaces)
	switch {
	case err == nil:
		if err := s.deleteVersion(ctx, old); err != nil {
			return err
		}
	case !errors.Is(err, versions.ErrNotFound):
		return err
	}
	s.cfg.Logger.Info("a rebuild without deleted users replaced its version", "projection", r.Name, "version", r.Replaces, "rebuild", r.Version)
	r.Replaces = ""
	return s.reg.Put(ctx, r)
}
