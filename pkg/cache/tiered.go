package cache

import (
	"context"
	"time"
)

// Remote is a cache shared by processes (Redis).
type Remote interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	Set(ctx context.Context, key string, val []byte, ttl time.Duration) error
	Close() error
}

// Tiered is a process's memory in front of a shared cache: a hit in memory
// costs no round trip, a hit in the shared cache is remembered in memory,
// and what is stored goes to both. Since keys name everything an answer
// depends on, a copy in memory is as valid as the shared one; memory only
// bounds how much is kept, and for how long (at most local).
type Tiered struct {
	mem    *Memory
	remote Remote
	local  time.Duration
}

// NewTiered returns remote behind a memory of at most maxBytes, whose
// entries live at most local.
func NewTiered(maxBytes int, local time.Duration, remote Remote) *Tiered {
	return &Tiered{mem: NewMemory(maxBytes), remote: remote, local: local}
}

// Get returns the value of key from memory, else from the shared cache.
func (t *Tiered) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if b, ok, _ := t.mem.Get(ctx, key); ok {
		return b, true, nil
	}
	b, ok, err := t.remote.Get(ctx, key)
	if err != nil || !ok {
		return nil, false, err
	}
	_ = t.mem.Set(ctx, key, b, t.local)
	return b, true, nil
}

// Set stores val under key in memory (for at most the local lifetime) and
// in the shared cache (for ttl). The shared cache's error is returned;
// the memory copy is kept either way.
func (t *Tiered) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	_ = t.mem.Set(ctx, key, val, min(ttl, t.local))
	return t.remote.Set(ctx, key, val, ttl)
}

// Close closes the shared cache.
func (t *Tiered) Close() error { return t.remote.Close() }
