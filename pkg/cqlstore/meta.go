package cqlstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/gocql/gocql"

	"github.com/sextant-analytics/sextant/pkg/metadata"
)

var _ metadata.Store = (*Store)(nil)

// The meta table holds the service's own small records (property registry,
// API keys, active projection versions), apart from projection data. Its
// partition key, kind, is the key up to and including its first '/' (the
// whole key when it has none), so the records of one kind ("property/…")
// are one partition, sorted by key.

// metaKind is the partition of a meta key.
func metaKind(key []byte) []byte {
	if i := bytes.IndexByte(key, '/'); i >= 0 {
		return key[:i+1]
	}
	return key
}

// Get returns the value of a meta key, or an error wrapping
// metadata.ErrNotFound when it is absent (see metadata.KV).
func (s *Store) Get(ctx context.Context, key []byte) ([]byte, error) {
	if err := s.enter(ctx, "meta get"); err != nil {
		return nil, err
	}
	defer s.inflight.Done()
	if len(key) == 0 {
		return nil, fmt.Errorf("cqlstore: meta %q: %w", key, metadata.ErrNotFound)
	}
	var v []byte
	q := s.query(ctx, selectMeta).Bind(metaKind(key), key)
	err := q.Scan(&v)
	q.Release()
	switch {
	case errors.Is(err, gocql.ErrNotFound):
		return nil, fmt.Errorf("cqlstore: meta %q: %w", key, metadata.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("cqlstore: meta get %q: %w", key, unavailable(err))
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// Put sets a meta key; once it returns nil, the value is stored at the
// configured consistency.
func (s *Store) Put(ctx context.Context, key, value []byte) error {
	if err := s.enter(ctx, "meta put"); err != nil {
		return err
	}
	defer s.inflight.Done()
	if len(key) == 0 {
		// Its partition key would be empty, which CQL does not allow.
		return fmt.Errorf("cqlstore: meta put: %w", metadata.ErrEmptyKey)
	}
	if err := s.exec(ctx, insertMeta, metaKind(key), key, nonNil(value)); err != nil {
		return fmt.Errorf("cqlstore: meta put %q: %w", key, unavailable(err))
	}
	return nil
}

// Delete removes a meta key; deleting an absent key is no error.
func (s *Store) Delete(ctx context.Context, key []byte) error {
	if err := s.enter(ctx, "meta delete"); err != nil {
		return err
	}
	defer s.inflight.Done()
	if len(key) == 0 {
		return nil
	}
	if err := s.exec(ctx, deleteMeta, metaKind(key), key); err != nil {
		return fmt.Errorf("cqlstore: meta delete %q: %w", key, unavailable(err))
	}
	return nil
}

// Scan calls fn, in key order, for every meta key that starts with prefix
// (an empty prefix scans all). fn owns the key and value it receives. An
// error from fn stops the scan and is returned as is.
//
// A prefix with a '/' reads one partition, a key range within it. A prefix
// without one may match keys of several kinds: Scan then reads the whole
// (small) table and sorts what matches.
func (s *Store) Scan(ctx context.Context, prefix []byte, fn func(key, value []byte) error) error {
	if err := s.enter(ctx, "meta scan"); err != nil {
		return err
	}
	defer s.inflight.Done()

	if bytes.IndexByte(prefix, '/') < 0 {
		return s.scanAllMeta(ctx, prefix, fn)
	}
	st, args := scanMetaFrom, []any{metaKind(prefix), prefix}
	if end := prefixEnd(prefix); end != nil {
		st, args = scanMetaRange, append(args, end)
	}
	q := s.query(ctx, st).Bind(args...)
	defer q.Release()
	iter := q.Iter()
	for {
		var k, v []byte // fresh per row: fn owns them
		if !iter.Scan(&k, &v) {
			break
		}
		if v == nil {
			v = []byte{}
		}
		if err := fn(k, v); err != nil {
			_ = iter.Close()
			return err
		}
	}
	if err := iter.Close(); err != nil {
		return fmt.Errorf("cqlstore: meta scan %q: %w", prefix, unavailable(err))
	}
	return nil
}

func (s *Store) scanAllMeta(ctx context.Context, prefix []byte, fn func(key, value []byte) error) error {
	type kv struct{ k, v []byte }
	var all []kv
	q := s.query(ctx, scanMetaAll)
	defer q.Release()
	iter := q.Iter()
	for {
		var k, v []byte
		if !iter.Scan(&k, &v) {
			break
		}
		if bytes.HasPrefix(k, prefix) {
			if v == nil {
				v = []byte{}
			}
			all = append(all, kv{k, v})
		}
	}
	if err := iter.Close(); err != nil {
		return fmt.Errorf("cqlstore: meta scan %q: %w", prefix, unavailable(err))
	}
	slices.SortFunc(all, func(a, b kv) int { return bytes.Compare(a.k, b.k) })
	for _, e := range all {
		if err := fn(e.k, e.v); err != nil {
			return err
		}
	}
	return nil
}

// prefixEnd returns the smallest key greater than every key with the
// prefix, or nil when there is none (the prefix is all 0xff).
func prefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
