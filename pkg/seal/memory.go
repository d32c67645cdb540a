package seal

import (
	"context"
	"fmt"
	"sync"
)

// Memory is a key store in memory, for tests and tools: it passes sealtest
// like the durable stores.
type Memory struct {
	mu        sync.Mutex
	bySubject map[subjectRef]Key
	byID      map[idRef]Key
}

// NewMemory returns an empty store.
func NewMemory() *Memory {
	return &Memory{bySubject: map[subjectRef]Key{}, byID: map[idRef]Key{}}
}

// FindSubjectKey implements Keys.
func (m *Memory) FindSubjectKey(ctx context.Context, property string, s Subject) (Key, bool, error) {
	if err := ctx.Err(); err != nil {
		return Key{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.bySubject[subjectRef{property, s}]
	return k, ok, nil
}

// AddSubjectKey implements Keys.
func (m *Memory) AddSubjectKey(ctx context.Context, property string, s Subject, k Key) (Key, error) {
	if err := ctx.Err(); err != nil {
		return Key{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if had, ok := m.bySubject[subjectRef{property, s}]; ok {
		return had, nil
	}
	m.byID[idRef{property, k.ID}] = k
	m.bySubject[subjectRef{property, s}] = k
	return k, nil
}

// Key implements Keys.
func (m *Memory) Key(ctx context.Context, property string, id ID) (Key, error) {
	if err := ctx.Err(); err != nil {
		return Key{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.byID[idRef{property, id}]
	if !ok {
		return Key{}, fmt.Errorf("key %s of property %s: %w", id, property, ErrShredded)
	}
	return k, nil
}

// Forget implements Keys.
func (m *Memory) Forget(ctx context.Context, property string, s Subject) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.bySubject[subjectRef{property, s}]
	if !ok {
		return false, nil
	}
	delete(m.byID, idRef{property, k.ID})
	delete(m.bySubject, subjectRef{property, s})
	return true, nil
}
