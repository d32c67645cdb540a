// Package cache holds report caches: an in-process LRU for the embedded
// path; the Redis adapter lives beside it. Keys carry everything that makes
// an answer valid (property, query, projection version, data watermark), so
// entries are never invalidated, only evicted.
package cache

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// Memory is a size-bounded LRU with per-entry expiry.
type Memory struct {
	mu       sync.Mutex
	maxBytes int
	used     int
	ll       *list.List
	items    map[string]*list.Element
	now      func() time.Time
}

type entry struct {
	key     string
	val     []byte
	expires time.Time
}

// NewMemory returns an LRU holding at most maxBytes of values.
func NewMemory(maxBytes int) *Memory {
	return &Memory{maxBytes: maxBytes, ll: list.New(), items: make(map[string]*list.Element), now: time.Now}
}

// Get returns the value of key, if present and not expired.
func (m *Memory) Get(_ context.Context, key string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	el, ok := m.items[key]
	if !ok {
		return nil, false, nil
	}
	e := el.Value.(*entry)
	if m.now().After(e.expires) {
		m.remove(el)
		return nil, false, nil
	}
	m.ll.MoveToFront(el)
	return e.val, true, nil
}

// Set stores val under key for ttl.
func (m *Memory) Set(_ context.Context, key string, val []byte, ttl time.Duration) error {
	if len(val)+len(key) > m.maxBytes {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if el, ok := m.items[key]; ok {
		m.remove(el)
	}
	el := m.ll.PushFront(&entry{key: key, val: val, expires: m.now().Add(ttl)})
	m.items[key] = el
	m.used += len(val) + len(key)
	for m.used > m.maxBytes {
		m.remove(m.ll.Back())
	}
	return nil
}

func (m *Memory) remove(el *list.Element) {
	e := el.Value.(*entry)
	m.ll.Remove(el)
	delete(m.items, e.key)
	m.used -= len(e.val) + len(e.key)
}
