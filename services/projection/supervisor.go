package projection

import (
	"context"
	"sync"
	"time"

	"github.com/sextant-analytics/sextant/pkg/versions"
	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

// Registry is the projection versions' registry.
type Registry interface {
	Active(ctx context.Context, name string) (string, error)
	Previous(ctx context.Context, name string) (string, error)
	List(ctx context.Context, name string) ([]versions.Version, error)
	Get(ctx context.Context, name, version string) (versions.Version, error)
	Put(ctx context.Context, v versions.Version) error
	Activate(ctx context.Context, name, version string) error
	Rollback(ctx context.Context, name string) (string, error)
	Replace(ctx context.Context, name, old, version string) error
	Delete(ctx context.Context, name, version string) error
}

// Supervisor runs, in this process, a projector for every running version
// of every registered logic, and stops the ones retired. Each version is a
// consumer group of its own, so the copies of the projection service share
// every version's partitions between them.
type Supervisor struct {
	base   Config
	logics []Logic
	log    Log
	store  Store
	reg    Registry
	poll   time.Duration

	mu      sync.Mutex
	running map[viewstore.Namespace]*runningVersion
}

type runningVersion struct {
	p      *Projector
	cancel context.CancelFunc
	done   chan struct{}
}

// NewSupervisor returns a supervisor; base configures every projector
// (its Name, Version, Rules, Layout and Start are set per version).
func NewSupervisor(base Config, logics []Logic, log Log, store Store, reg Registry, poll time.Duration) *Supervisor {
	base = base.withDefaults()
	if poll <= 0 {
		poll = time.Second
	}
	return &Supervisor{base: base, logics: logics, log: log, store: store, reg: reg, poll: poll, running: map[viewstore.Namespace]*runningVersion{}}
}

// Run reconciles until ctx ends, then stops every projector (each commits
// what it applied).
func (s *Supervisor) Run(ctx context.Context) error {
	t := time.NewTicker(s.poll)
	defer t.Stop()
	for {
		s.reconcile(ctx)
		select {
		case <-ctx.Done():
			s.mu.Lock()
			all := s.running
			s.running = map[viewstore.Namespace]*runningVersion{}
			s.mu.Unlock()
			for _, r := range all {
				r.cancel()
			}
			for _, r := range all {
				<-r.done
			}
			return nil
		case <-t.C:
		}
	}
}

func (s *Supervisor) names() []string {
	var out []string
	seen := map[string]bool{}
	for _, l := range s.logics {
		if !seen[l.Name] {
			seen[l.Name] = true
			out = append(out, l.Name)
		}
	}
	return out
}

func (s *Supervisor) reconcile(ctx context.Context) {
	want := map[viewstore.Namespace]versions.Version{}
	for _, name := range s.names() {
		vs, err := s.reg.List(ctx, name)
		if err != nil {
			if ctx.Err() == nil {
				s.base.Logger.Warn("listing projection versions", "projection", name, "err", err)
			}
			return // keep what runs until the registry answers
		}
		for _, v := range vs {
			if v.State == versions.Running {
				want[viewstore.NamespaceOf(v.Name, v.Version)] = v
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for ns, r := range s.running {
		select {
		case <-r.done: // stopped by itself: start it again below
			delete(s.running, ns)
			continue
		default:
		}
		if _, ok := want[ns]; !ok {
			s.base.Logger.Info("stopping projection version", "projection", ns)
			r.cancel()
			<-r.done
			delete(s.running, ns)
		}
	}
	for ns, v := range want {
		if _, ok := s.running[ns]; ok || ctx.Err() != nil {
			continue
		}
		logic, ok := FindLogic(s.logics, v.Name, v.Version)
		if !ok {
			s.base.Logger.Warn("the registry has a projection version this binary does not know; not running it", "projection", ns)
			continue
		}
		cfg := s.base
		cfg.Name, cfg.Version, cfg.Rules, cfg.Layout, cfg.Start = logic.Name, v.Version, logic.Rules, logic.Layout, v.From.Offsets
		p := NewProjector(cfg, s.log, s.store)
		rctx, cancel := context.WithCancel(ctx)
		r := &runningVersion{p: p, cancel: cancel, done: make(chan struct{})}
		s.running[ns] = r
		s.base.Logger.Info("running projection version", "projection", ns)
		go func() {
			defer close(r.done)
			if err := p.Run(rctx); err != nil {
				s.base.Logger.Error("projection version stopped", "projection", ns, "err", err)
			}
		}()
	}
}
