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
	// property, subject, id, secret; IF NOT EXISTS
	insertSubjectKey = build(qb.Insert("subject_keys").Columns("property", "subject", "id", "secret").Unique())
	// property, subject
	selectSubjectKey = build(qb.Select("subject_keys").Columns("id", "secret").Where(qb.Eq("property"), qb.Eq("subject")))
	// property, subject, id: IF id = ?
	deleteSubjectKey = build(qb.Delete("subject_keys").Where(qb.Eq("property"), qb.Eq("subject")).If(qb.Eq("id")))
	// property, id, secret
	insertKeyByID = build(qb.Insert("keys_by_id").Columns("property", "id", "secret"))
	// property, id
	selectKeyByID = build(qb.Select("keys_by_id").Columns("secret").Where(qb.Eq("property"), qb.Eq("id")))
	// property, id
	deleteKeyByID = build(qb.Delete("keys_by_id").Where(qb.Eq("property"), qb.Eq("id")))
)

// serial is the consistency of the subject keys' transactions: local to
// the data centre when reads and writes are.
func (s *Store) serial() gocql.SerialConsistency {
	switch s.cons {
	case gocql.LocalQuorum, gocql.LocalOne:
		return gocql.LocalSerial
	}
	return gocql.Serial
}

func toKey(id, secret []byte) (seal.Key, error) {
	if len(id) != seal.IDSize || len(secret) != seal.SecretSize {
		return seal.Key{}, fmt.Errorf("cqlstore: a subject key of %d+%d bytes", len(id), len(secret))
	}
	var k seal.Key
	copy(k.ID[:], id)
	copy(k.Secret[:], secret)
	return k, nil
}

// subjectKey reads a subject's key, serially (it sees every transaction
// that committed).
func (s *Store) subjectKey(ctx context.Context, property string, sub seal.Subject) (seal.Key, bool, error) {
	var id, secret []byte
	q := s.query(ctx, selectSubjectKey).Bind(property, sub[:])
	q.SerialConsistency(s.serial())
	err := q.Scan(&id, &secret)
	q.Release()
	switch {
	case errors.Is(err, gocql.ErrNotFound):
		return seal.Key{}, false, nil
	case err != nil:
		return seal.Key{}, false, fmt.Errorf("cqlstore: read a subject key: %w", unavailable(err))
	}
	k, err := toKey(id, secret)
	return k, err == nil, err
}

// FindSubjectKey implements seal.Keys.
func (s *Store) FindSubjectKey(ctx context.Context, property string, sub seal.Subject) (seal.Key, bool, error) {
	if err := s.enter(ctx, "find a subject key"); err != nil {
		return seal.Key{}, false, err
	}
	defer s.inflight.Done()
	return s.subjectKey(ctx, property, sub)
}

// AddSubjectKey implements seal.Keys: the key is written by id first,
// then claimed for the subject in a lightweight transaction; the loser of
// a race removes its key and returns the winner's.
func (s *Store) AddSubjectKey(ctx context.Context, property string, sub seal.Subject, k seal.Key) (seal.Key, error) {
	if err := s.enter(ctx, "add a subject key"); err != nil {
		return seal.Key{}, err
	}
	defer s.inflight.Done()
	if err := s.query(ctx, insertKeyByID).Bind(property, k.ID[:], k.Secret[:]).ExecRelease(); err != nil {
		return seal.Key{}, fmt.Errorf("cqlstore: store a key: %w", unavailable(err))
	}
	q := s.query(ctx, insertSubjectKey).Bind(property, sub[:], k.ID[:], k.Secret[:])
	q.SerialConsistency(s.serial())
	existing := map[string]any{}
	applied, err := q.MapScanCAS(existing)
	q.Release()
	if err != nil {
		return seal.Key{}, fmt.Errorf("cqlstore: claim a subject key: %w", unavailable(err))
	}
	if applied {
		return k, nil
	}
	won, err := toKey(asBytes(existing["id"]), asBytes(existing["secret"]))
	if err != nil {
		return seal.Key{}, err
	}
	if err := s.query(ctx, deleteKeyByID).Bind(property, k.ID[:]).ExecRelease(); err != nil {
		s.log.Warn("cqlstore: removing the key of a lost race failed (it is unused)", "err", err)
	}
	return won, nil
}

func asBytes(v any) []byte {
	b, _ := v.([]byte)
	return b
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

// Forget implements seal.Keys: the secret is deleted first, then the
// subject's claim on it (only if it still names that key), so that a
// Forget interrupted half-way is completed by the next one.
func (s *Store) Forget(ctx context.Context, property string, sub seal.Subject) (bool, error) {
	if err := s.enter(ctx, "forget"); err != nil {
		return false, err
	}
	defer s.inflight.Done()
	k, ok, err := s.subjectKey(ctx, property, sub)
	if err != nil || !ok {
		return false, err
	}
	if err := s.query(ctx, deleteKeyByID).Bind(property, k.ID[:]).ExecRelease(); err != nil {
		return false, fmt.Errorf("cqlstore: delete a key: %w", unavailable(err))
	}
	q := s.query(ctx, deleteSubjectKey).Bind(property, sub[:], k.ID[:])
	q.SerialConsistency(s.serial())
	_, err = q.MapScanCAS(map[string]any{})
	q.Release()
	if err != nil {
		return false, fmt.Errorf("cqlstore: delete a subject key: %w", unavailable(err))
	}
	return true, nil
}
