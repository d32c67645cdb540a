package insights

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/sextant-analytics/sextant/pkg/versions"
)

// build is the version a report reads and the build of it: a version
// deleted and rebuilt under the same name is another build, and cached
// answers are keyed by both.
type build struct {
	version string
	id      string
}

// active remembers, for refresh, which version serves reads per projection
// and the build of each version read, so that a report reads them from
// memory instead of the registry (a cached answer costs two store reads
// less). An entry older than refresh is read again in the background
// (stale while revalidate, as marks): a report waits for the registry only
// when the entry is missing or older than ten times refresh. Reads switch
// to a newly activated version, or a rebuilt one, within about refresh on
// every process. With refresh 0 every report reads the registry.
type active struct {
	reg     Versions
	refresh time.Duration
	now     func() time.Time

	mu      sync.Mutex
	entries map[activeKey]*activeEntry
}

// activeKey is a projection and a version asked for by name, or "" for the
// active one.
type activeKey struct{ projection, version string }

type activeEntry struct {
	mu         sync.Mutex // held while the entry is read from the registry in the foreground
	build      build
	at         time.Time
	refreshing bool // a background read is under way
}

// maxActive bounds the versions remembered; past it the map starts over.
const maxActive = 10_000

func newActive(reg Versions, refresh time.Duration) *active {
	return &active{reg: reg, refresh: refresh, now: time.Now, entries: map[activeKey]*activeEntry{}}
}

// get returns the build of version, or of the active version when version
// is ""; fresh reads it from the registry (and remembers it).
func (a *active) get(ctx context.Context, projection, version string, fresh bool) (build, error) {
	if a.refresh <= 0 {
		return a.read(ctx, projection, version)
	}
	k := activeKey{projection, version}
	a.mu.Lock()
	e := a.entries[k]
	if e == nil {
		if len(a.entries) >= maxActive {
			clear(a.entries)
		}
		e = &activeEntry{}
		a.entries[k] = e
	}
	a.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	now := a.now()
	if age := now.Sub(e.at); !fresh && e.build.version != "" && age <= 10*a.refresh {
		if age > a.refresh && !e.refreshing {
			e.refreshing = true
			go a.update(k, e)
		}
		return e.build, nil
	}
	b, err := a.read(ctx, projection, version)
	if err != nil {
		return build{}, err
	}
	e.build, e.at = b, now
	return b, nil
}

// update reads entry e of k again, in the background; a failed read leaves
// it as it was (it is read in the foreground once too old).
func (a *active) update(k activeKey, e *activeEntry) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*a.refresh)
	defer cancel()
	at := a.now()
	b, err := a.read(ctx, k.projection, k.version)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.refreshing = false
	if err == nil && at.After(e.at) {
		e.build, e.at = b, at
	}
}

func (a *active) read(ctx context.Context, projection, version string) (build, error) {
	if version == "" {
		var err error
		if version, err = a.reg.Active(ctx, projection); err != nil {
			return build{}, err
		}
	}
	v, err := a.reg.Get(ctx, projection, version)
	if errors.Is(err, versions.ErrNotFound) {
		// A version that does not exist (or no longer) has no data: its
		// report is empty, under a build no recorded version has.
		return build{version: version, id: "absent"}, nil
	}
	if err != nil {
		return build{}, err
	}
	return build{version: version, id: v.Build}, nil
}

// version returns the version serving reads of projection.
func (a *active) version(ctx context.Context, projection string) (string, error) {
	if a.refresh <= 0 {
		return a.reg.Active(ctx, projection)
	}
	b, err := a.get(ctx, projection, "", false)
	return b.version, err
}
