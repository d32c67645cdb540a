package pebblestore

import (
	"context"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/sextant-analytics/sextant/pkg/metadata"
)

// The meta key space holds the service's own small records (property
// registry, active projection versions): the store implements
// metadata.Store there. Its keys are stored under their own tag and can
// never collide with projection data, whatever their bytes.

var _ metadata.Store = (*Store)(nil)

func metaKey(key []byte) []byte {
	return append([]byte{tagMeta}, key...)
}

// Get returns the value of a meta key, or an error wrapping
// metadata.ErrNotFound when it is absent (see metadata.KV).
func (s *Store) Get(ctx context.Context, key []byte) ([]byte, error) {
	if err := s.enter(ctx, "meta get"); err != nil {
		return nil, err
	}
	defer s.inflight.Done()
	if len(key) == 0 {
		// Never stored; older versions could, so it is not looked up.
		return nil, fmt.Errorf("pebblestore: meta %q: %w", key, metadata.ErrNotFound)
	}
	v, closer, err := s.db.Get(metaKey(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, fmt.Errorf("pebblestore: meta %q: %w", key, metadata.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("pebblestore: meta get %q: %w", key, err)
	}
	defer closer.Close()
	return append([]byte{}, v...), nil
}

// Put sets a meta key, durably (synced) when it returns nil.
func (s *Store) Put(ctx context.Context, key, value []byte) error {
	if err := s.enter(ctx, "meta put"); err != nil {
		return err
	}
	defer s.inflight.Done()
	if len(key) == 0 {
		return fmt.Errorf("pebblestore: meta put: %w", metadata.ErrEmptyKey)
	}
	if err := s.db.Set(metaKey(key), value, pebble.Sync); err != nil {
		return fmt.Errorf("pebblestore: meta put %q: %w", key, err)
	}
	return nil
}

// Delete removes a meta key, durably; deleting an absent key is no error.
func (s *Store) Delete(ctx context.Context, key []byte) error {
	if err := s.enter(ctx, "meta delete"); err != nil {
		return err
	}
	defer s.inflight.Done()
	if len(key) == 0 {
		return nil
	}
	if err := s.db.Delete(metaKey(key), pebble.Sync); err != nil {
		return fmt.Errorf("pebblestore: meta delete %q: %w", key, err)
	}
	return nil
}

// Scan calls fn, in key order, for every meta key that starts with prefix
// (an empty prefix scans all). fn owns the key and value it receives. An
// error from fn stops the scan and is returned as is. It reads a snapshot:
// what fn writes is not visited.
func (s *Store) Scan(ctx context.Context, prefix []byte, fn func(key, value []byte) error) error {
	if err := s.enter(ctx, "meta scan"); err != nil {
		return err
	}
	defer s.inflight.Done()
	var fnErr error
	err := scanPrefix(ctx, s.db, metaKey(prefix), func(k, v []byte) error {
		if len(prefix)+len(k) == 0 {
			return nil // the empty key, which older versions stored
		}
		key := make([]byte, 0, len(prefix)+len(k))
		key = append(append(key, prefix...), k...)
		if err := fn(key, append([]byte{}, v...)); err != nil {
			fnErr = err
			return err
		}
		return nil
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("pebblestore: meta scan %q: %w", prefix, err)
	}
	return nil
}
