package insights

import (
	"context"
	"sync"
	"time"
)

// active remembers which version serves reads, per projection, for refresh:
// a report then reads it from memory instead of the store (a cached answer
// costs about one store read less). Reads switch to a newly activated
// version within refresh on every process. With refresh 0 every report
// reads the registry.
type active struct {
	read    func(ctx context.Context, projection string) (string, error)
	refresh time.Duration
	now     func() time.Time

	mu      sync.Mutex
	entries map[string]*activeEntry
}

type activeEntry struct {
	mu      sync.Mutex // held while the entry is read from the registry
	version string
	at      time.Time
}

func newActive(read func(context.Context, string) (string, error), refresh time.Duration) *active {
	return &active{read: read, refresh: refresh, now: time.Now, entries: map[string]*activeEntry{}}
}

func (a *active) get(ctx context.Context, projection string) (string, error) {
	if a.refresh <= 0 {
		return a.read(ctx, projection)
	}
	a.mu.Lock()
	e := a.entries[projection]
	if e == nil {
		e = &activeEntry{}
		a.entries[projection] = e
	}
	a.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.version != "" && a.now().Sub(e.at) <= a.refresh {
		return e.version, nil
	}
	at := a.now()
	v, err := a.read(ctx, projection)
	if err != nil {
		return "", err
	}
	e.version, e.at = v, at
	return v, nil
}
