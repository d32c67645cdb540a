package cqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gocql/gocql"

	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

// LoadPartition returns the partition's progress, with the Intent of a
// commit that failed part way, and all its state entries (in no particular
// order). It reads the progress first: a commit running meanwhile may add
// state newer than that progress, which is safe for the same reasons as a
// commit that failed half way.
func (s *Store) LoadPartition(ctx context.Context, ns viewstore.Namespace, p int32) (viewstore.Progress, []viewstore.KV, error) {
	if err := s.enter(ctx, "load partition"); err != nil {
		return viewstore.Progress{}, nil, err
	}
	defer s.inflight.Done()
	if err := checkNamespace("load partition", ns); err != nil {
		return viewstore.Progress{}, nil, err
	}

	pr := viewstore.Progress{Partition: p}
	var wm time.Time
	q := s.query(ctx, selectProgress).Bind(string(ns), p)
	// A null excluded or intent (a row older than the column) reads as 0,
	// and so does a null next (a row holding only an intent).
	err := q.Scan(&pr.Next, &pr.Applied, &pr.Duplicates, &pr.Excluded, &wm, &pr.Intent)
	q.Release()
	switch {
	case errors.Is(err, gocql.ErrNotFound):
	case err != nil:
		return viewstore.Progress{}, nil, fmt.Errorf("cqlstore: load partition %d of %q: %w", p, ns, unavailable(err))
	default:
		pr.Watermark = utc(wm)
		pr.Intent = intent(pr)
	}

	// The shards concurrently, each paged.
	var shards [stateShards][]viewstore.KV
	jobs := make([]func(context.Context) error, stateShards)
	for sh := range int32(stateShards) {
		jobs[sh] = func(ctx context.Context) error {
			var err error
			shards[sh], err = s.loadShard(ctx, ns, p, sh)
			return err
		}
	}
	if err := runBounded(ctx, loadParallelism, jobs); err != nil {
		return viewstore.Progress{}, nil, fmt.Errorf("cqlstore: load state of partition %d of %q: %w", p, ns, unavailable(err))
	}
	n := 0
	for _, kvs := range shards {
		n += len(kvs)
	}
	var state []viewstore.KV
	if n > 0 {
		state = make([]viewstore.KV, 0, n)
		for _, kvs := range shards {
			state = append(state, kvs...)
		}
	}
	return pr, state, nil
}

// loadParallelism bounds the state shards LoadPartition reads at once.
const loadParallelism = 8

func (s *Store) loadShard(ctx context.Context, ns viewstore.Namespace, p, shard int32) ([]viewstore.KV, error) {
	q := s.query(ctx, selectState).Prefetch(0.25).Bind(string(ns), p, shard)
	defer q.Release()
	iter := q.Iter()
	var out []viewstore.KV
	var key string
	for {
		var value []byte // the driver appends into it: a fresh one per row
		if !iter.Scan(&key, &value) {
			break
		}
		out = append(out, viewstore.KV{Key: key, Value: value})
	}
	return out, iter.Close()
}

// ListProgress returns the progress of every committed partition, in
// partition order.
func (s *Store) ListProgress(ctx context.Context, ns viewstore.Namespace) ([]viewstore.Progress, error) {
	if err := s.enter(ctx, "list progress"); err != nil {
		return nil, err
	}
	defer s.inflight.Done()
	if err := checkNamespace("list progress", ns); err != nil {
		return nil, err
	}
	q := s.query(ctx, listProgress).Bind(string(ns))
	defer q.Release()
	iter := q.Iter()
	var out []viewstore.Progress
	var pr viewstore.Progress
	var wm time.Time
	for iter.Scan(&pr.Partition, &pr.Next, &pr.Applied, &pr.Duplicates, &pr.Excluded, &wm, &pr.Intent) {
		pr.Watermark = utc(wm)
		pr.Intent = intent(pr)
		out = append(out, pr)
	}
	if err := iter.Close(); err != nil {
		return nil, fmt.Errorf("cqlstore: list progress of %q: %w", ns, unavailable(err))
	}
	return out, nil
}

// Watermarks returns the property's watermarks in partition order.
func (s *Store) Watermarks(ctx context.Context, ns viewstore.Namespace, property string) ([]viewstore.Watermark, error) {
	if err := s.enter(ctx, "watermarks"); err != nil {
		return nil, err
	}
	defer s.inflight.Done()
	q := s.query(ctx, selectWatermarks).Bind(string(ns), property)
	defer q.Release()
	iter := q.Iter()
	var out []viewstore.Watermark
	w := viewstore.Watermark{Property: property}
	var t time.Time
	for iter.Scan(&w.Partition, &t, &w.Offset) {
		w.Time = utc(t)
		out = append(out, w)
	}
	if err := iter.Close(); err != nil {
		return nil, fmt.Errorf("cqlstore: watermarks of %q in %q: %w", property, ns, unavailable(err))
	}
	return out, nil
}

// intent is the progress's Intent when it is past Next, else 0.
func intent(pr viewstore.Progress) int64 {
	if pr.Intent > pr.Next {
		return pr.Intent
	}
	return 0
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}
