package property

import (
	"sync"
	"time"
	"unsafe"
)

// cache is a bounded map with a time to live: at most size entries, each
// trusted for ttl. When full, an insert evicts an arbitrary entry (Go's
// map iteration order), which costs O(1) and keeps no recency list: the
// entries a process uses often come back at the next miss.
//
// A record read from the store while another process changed it must not
// be cached after the change feed dropped it: a reader takes the cache's
// epoch before it reads, and putIf caches only when no drop came since.
type cache[V any] struct {
	mu    sync.RWMutex
	m     map[string]cached[V]
	size  int
	ttl   time.Duration
	epoch uint64
}

type cached[V any] struct {
	v  V
	at time.Time
}

func newCache[V any](size int, ttl time.Duration) *cache[V] {
	return &cache[V]{m: make(map[string]cached[V]), size: size, ttl: ttl}
}

func (c *cache[V]) get(k string) (V, bool) {
	c.mu.RLock()
	e, ok := c.m[k]
	c.mu.RUnlock()
	if !ok || time.Since(e.at) > c.ttl {
		var zero V
		return zero, false
	}
	return e.v, true
}

// begin returns the epoch to give putIf.
func (c *cache[V]) begin() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.epoch
}

// putIf caches v unless an entry was dropped since epoch.
func (c *cache[V]) putIf(k string, v V, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch == epoch {
		c.putLocked(k, v)
	}
}

// put caches v: only what this process itself just wrote.
func (c *cache[V]) put(k string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(k, v)
}

func (c *cache[V]) putLocked(k string, v V) {
	if _, ok := c.m[k]; !ok && len(c.m) >= c.size {
		for old := range c.m {
			delete(c.m, old)
			break
		}
	}
	c.m[k] = cached[V]{v: v, at: time.Now()}
}

func (c *cache[V]) drop(k string) {
	c.mu.Lock()
	delete(c.m, k)
	c.epoch++
	c.mu.Unlock()
}

func (c *cache[V]) clear() {
	c.mu.Lock()
	clear(c.m)
	c.epoch++
	c.mu.Unlock()
}

func (c *cache[V]) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// bytes estimates the bytes the entries hold: each entry's fixed size, its
// key and what size says of its value.
func (c *cache[V]) bytes(size func(V) int) int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	fixed := int(unsafe.Sizeof(cached[V]{})) + int(unsafe.Sizeof(""))
	n := 0
	for k, e := range c.m {
		n += fixed + len(k) + size(e.v)
	}
	return n
}
