package insights

import (
	"context"
	"sync"
	"time"

	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

// marks keeps each property's watermarks in memory, refreshed in the
// background (stale while revalidate): a report reads them from memory
// when they are younger than refresh, and from memory while a refresh
// runs when they are younger than stale; only a first or long-idle read
// waits for the store. Since the cache key carries the watermarks, an
// answer is at most stale old (in practice refresh plus one store read).
// With refresh 0 every report reads the store.
type marks struct {
	read    func(ctx context.Context, ns viewstore.Namespace, property string) ([]viewstore.Watermark, error)
	refresh time.Duration
	stale   time.Duration
	now     func() time.Time

	mu      sync.Mutex
	entries map[marksKey]*marksEntry
}

type marksKey struct {
	ns       viewstore.Namespace
	property string
}

type marksEntry struct {
	wms        []viewstore.Watermark
	at         time.Time
	refreshing bool
}

// maxMarks bounds the properties remembered; past it the map starts over.
const maxMarks = 100_000

func newMarks(read func(context.Context, viewstore.Namespace, string) ([]viewstore.Watermark, error), refresh time.Duration) *marks {
	return &marks{read: read, refresh: refresh, stale: 10 * refresh, now: time.Now, entries: map[marksKey]*marksEntry{}}
}

// get returns the property's watermarks; fresh reads them from the store
// (and remembers them).
func (m *marks) get(ctx context.Context, ns viewstore.Namespace, property string, fresh bool) ([]viewstore.Watermark, error) {
	if m.refresh <= 0 {
		return m.read(ctx, ns, property)
	}
	k := marksKey{ns, property}
	now := m.now()
	if fresh {
		wms, err := m.read(ctx, ns, property)
		if err != nil {
			return nil, err
		}
		m.store(k, wms, now)
		return wms, nil
	}
	m.mu.Lock()
	e := m.entries[k]
	if e != nil && now.Sub(e.at) <= m.stale {
		wms := e.wms
		if now.Sub(e.at) > m.refresh && !e.refreshing {
			e.refreshing = true
			go m.update(k)
		}
		m.mu.Unlock()
		return wms, nil
	}
	m.mu.Unlock()
	wms, err := m.read(ctx, ns, property)
	if err != nil {
		return nil, err
	}
	m.store(k, wms, now)
	return wms, nil
}

func (m *marks) update(k marksKey) {
	ctx, cancel := context.WithTimeout(context.Background(), m.stale)
	defer cancel()
	at := m.now()
	wms, err := m.read(ctx, k.ns, k.property)
	if err != nil {
		m.mu.Lock()
		if e := m.entries[k]; e != nil {
			e.refreshing = false
		}
		m.mu.Unlock()
		return
	}
	m.store(k, wms, at)
}

func (m *marks) store(k marksKey, wms []viewstore.Watermark, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.entries[k]; e != nil && e.at.After(at) {
		e.refreshing = false
		return
	}
	if len(m.entries) >= maxMarks {
		clear(m.entries)
	}
	m.entries[k] = &marksEntry{wms: wms, at: at}
}
