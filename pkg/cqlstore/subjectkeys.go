package cqlstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/gocql/gocql"
	"github.com/scylladb/gocqlx/v2/qb"

	"github.com/sextant-analytics/sextant/pkg/seal"
)

var _ seal.Keys = (*Store)(nil)

var (
	// property, subject, id, secret
	insertSubjectKey = build(qb.Insert("subject_keys").Columns("property", "subject", "id", "secret"))
	// property, subject: the smallest id first
	selectSubjectKeys = build(qb.Select("subject_keys").Columns("id", "secret").Where(qb.Eq("property"), qb.Eq("subject")))
	// property, subject
	deleteSubjectKeys = build(qb.Delete("subject_keys").Where(qb.Eq("property"), qb.Eq("subject")))
	// property, id, secret
	insertKeyByID = build(qb.Insert("keys_by_id").Columns("property", "id", "secret"))
	// property, id
	selectKeyByID = build(qb.Select("keys_by_id").Columns("secret").Where(qb.Eq("property"), qb.Eq("id")))
	// property, id
	deleteKeyByID = build(qb.Delete("keys_by_id").Where(qb.Eq("property"), qb.Eq("id")))
)

func toKey(id, secret []byte) (seal.Key, error) {
	if len(id) != seal.IDSize || len(secret) != seal.SecretSize {
		return seal.Key{}, fmt.Errorf("cqlstore: a subject key of %d+%d bytes", len(id), len(secret))
	}
	var k seal.Key
	copy(k.ID[:], id)
	copy(k.Secret[:], secret)
	return k, nil
}

// subjectKeys reads a subject's keys, smallest id first.
func (s *Store) subjectKeys(ctx context.Context, property string, sub seal.Subject) ([]seal.Key, error) {
	var out []seal.Key
	iter := s.query(ctx, selectSubjectKeys).Bind(property, sub[:]).Iter()
	var id, secret []byte
	for iter.Scan(&id, &secret) {
		k, err := toKey(id, secret)
		if err != nil {
			_ = iter.Close()
			return nil, err
		}
		out = append(out, k)
	}
	if err := iter.Close(); err != nil {
		return nil, fmt.Errorf("cqlstore: read a subject's keys: %w", unavailable(err))
	}
	return out, nil
}

// FindSubjectKey implements seal.Keys.
func (s *Store) FindSubjectKey(ctx context.Context, property string, sub seal.Subject) (seal.Key, bool, error) {
	if err := s.enter(ctx, "find a subject key"); err != nil {
		return seal.Key{}, false, err
	}
	defer s.inflight.Done()
	ks, err := s.subjectKeys(ctx, property, sub)
	if err != nil || len(ks) == 0 {
		return seal.Key{}, false, err
	}
	return ks[0], true, nil
}

// AddSubjectKey implements seal.Keys: written by id, then under the
// subject, so that a reader never meets an id it cannot find. It takes no
// transaction (two writes).
func (s *Store) AddSubjectKey(ctx context.Context, property string, sub seal.Subject, k seal.Key) error {
	if err := s.enter(ctx, "add a subject key"); err != nil {
		return err
	}
	defer s.inflight.Done()
	if err := s.query(ctx, insertKeyByID).Bind(property, k.ID[:], k.Secret[:]).ExecRelease(); err != nil {
		return fmt.Errorf("cqlstore: store a key: %w", unavailable(err))
	}
	if err := s.query(ctx, insertSubjectKey).Bind(property, sub[:], k.ID[:], k.Secret[:]).ExecRelease(); err != nil {
		return fmt.Errorf("cqlstore: store a subject key: %w", unavailable(err))
	}
	return nil
}

// Key implements seal.Keys.
func (s *Store) Key(ctx context.Context, property string, id seal.ID) (seal.Key, error) {
	if err := s.enter(ctx, "key"); err != nil {
		return seal.Key{}, err
	}
	defer s.inflight.Done()
	var secret []byte
	q := s.query(ctx, selectKeyByID).Bind(property, id[:])
	err := q.Scan(&secret)
	q.Release()
	switch {
	case errors.Is(err, gocql.ErrNotFound):
		return seal.Key{}, fmt.Errorf("cqlstore: key %s of property %s: %w", id, property, seal.ErrShredded)
	case err != nil:
		return seal.Key{}, fmt.Errorf("cqlstore: read key %s: %w", id, unavailable(err))
	}
	return toKey(id[:], secret)
}

// Forget implements seal.Keys: every key of the subject is deleted by id,
// then the subject's partition; a Forget interrupted half-way is completed
// by the next one.
func (s *Store) Forget(ctx context.Context, property string, sub seal.Subject) (bool, error) {
	if err := s.enter(ctx, "forget"); err != nil {
		return false, err
	}
	defer s.inflight.Done()
	ks, err := s.subjectKeys(ctx, property, sub)
	if err != nil || len(ks) == 0 {
		return false, err
	}
	for _, k := range ks {
		if err := s.query(ctx, deleteKeyByID).Bind(property, k.ID[:]).ExecRelease(); err != nil {
			return false, fmt.Errorf("cqlstore: delete a key: %w", unavailable(err))
		}
	}
	if err := s.query(ctx, deleteSubjectKeys).Bind(property, sub[:]).ExecRelease(); err != nil {
		return false, fmt.Errorf("cqlstore: delete a subject's keys: %w", unavailable(err))
	}
	return true, nil
}
