package seal

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
)

// Memory is a key store in memory, for tests and tools: it passes sealtest
// like the durable stores.
type Memory struct {
	mu        sync.Mutex
	bySubject map[subjectRef][]Key // sorted by id
	byID      map[idRef]Key
}

// NewMemory returns an empty store.
func NewMemory() *Memory {
	return &Memory{bySubject: map[subjectRef][]Key{}, byID: map[idRef]Key{}}
}

// FindSubjectKey implements Keys.
func (m *Memory) FindSubjectKey(ctx context.Context, property string, s Subject) (Key, bool, error) {
	if err := ctx.Err(); err != nil {
		return Key{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ks := m.bySubject[subjectRef{property, s}]
	if len(ks) == 0 {
		return Key{}, false, nil
	}
	return ks[0], true, nil
}

// AddSubjectKey implements Keys.
func (m *Memory) AddSubjectKey(ctx context.Context, property string, s Subject, k Key) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.byID[idRef{property, k.ID}] = k
	ks := append(m.bySubject[subjectRef{property, s}], k)
	slices.SortFunc(ks, func(a, b Key) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	m.bySubject[subjectRef{property, s}] = ks
	return nil
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
	ks, ok := m.bySubject[subjectRef{property, s}]
	if !ok {
		return false, nil
	}
	for _, k := range ks {
		delete(m.byID, idRef{property, k.ID})
	}
	delete(m.bySubject, subjectRef{property, s})
	return true, nil
}
