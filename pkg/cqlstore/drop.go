package cqlstore

import (
	"context"
	"fmt"

	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

// dropChunk is how many partition deletions DropNamespace gathers before
// running them (commitParallelism at a time), so that its memory does not
// grow with the namespace.
const dropChunk = 1024

// DropNamespace deletes every row of the namespace, one CQL partition at a
// time (a partition deletion each: a single tombstone, however many rows
// the partition held).
//
// The additions are in the namespace's viewstore.Shards partitions, and
// block_slots lists the block partitions (PutBlock records a slot before
// its first block). The partitions of state and watermarks are not known
// from the namespace alone (their keys hold log partitions, shards and
// properties), so DropNamespace pages through the partition keys of those
// tables (SELECT DISTINCT over the partition key: a full scan, but of
// partition keys only) and deletes the namespace's as it finds them.
// Scanning the state table rather than taking the log partitions from
// progress also finds state that a first commit wrote before failing,
// which has no progress row.
//
// The block_slots and progress partitions go last, once everything else
// is deleted: a drop that fails half way leaves the namespace listed and
// its blocks findable, and running it again finishes it. The deletions
// carry the client's timestamp, so commits made after DropNamespace
// returned are not affected by them.
func (s *Store) DropNamespace(ctx context.Context, ns viewstore.Namespace) error {
	if err := s.enter(ctx, "drop namespace"); err != nil {
		return err
	}
	defer s.inflight.Done()
	if err := checkNamespace("drop namespace", ns); err != nil {
		return err
	}
	name := string(ns)
	var (
		pending     [][]write // one deletion each
		counts      [3]int    // block, state and watermark partitions deleted
		property    string
		kind        int8
		slot        int64
		part, shard int32
	)
	flush := func() error {
		err := s.execGroups(ctx, pending)
		pending = pending[:0]
		return err
	}
	add := func(table int, st statement, args ...any) error {
		pending = append(pending, []write{{st: st, args: args}})
		if table >= 0 {
			counts[table]++
		}
		if len(pending) < dropChunk {
			return nil
		}
		return flush()
	}
	for sh := range int32(viewstore.Shards) {
		_ = add(-1, deleteAdditionsShard, name, sh)
		_ = add(-1, deleteAdditionChunksShard, name, sh)
	}
	if err := flush(); err != nil {
		return fmt.Errorf("cqlstore: drop namespace %q: additions: %w", ns, unavailable(err))
	}
	q := s.query(ctx, listBlockSlots).Bind(name)
	iter := q.Iter()
	for iter.Scan(&property, &kind, &slot) {
		err := add(0, deleteBlocks, name, property, kind, slot)
		if err == nil {
			err = add(-1, deleteBlockChunksSlot, name, property, kind, slot)
		}
		if err != nil {
			_ = iter.Close()
			q.Release()
			return fmt.Errorf("cqlstore: drop namespace %q: blocks: %w", ns, unavailable(err))
		}
	}
	err := iter.Close()
	q.Release()
	if err == nil {
		err = flush()
	}
	if err != nil {
		return fmt.Errorf("cqlstore: drop namespace %q: blocks: %w", ns, unavailable(err))
	}
	for _, step := range []struct {
		what  string
		st    statement
		dest  []any
		found func() error
	}{
		{"state", distinctState, []any{&part, &shard}, func() error {
			return add(1, deleteStateShard, name, part, shard)
		}},
		{"watermarks", distinctWatermarks, []any{&property}, func() error {
			return add(2, deleteWatermarks, name, property)
		}},
	} {
		err := s.scanKeys(ctx, step.st, name, step.found, step.dest...)
		if err == nil {
			err = flush()
		}
		if err != nil {
			return fmt.Errorf("cqlstore: drop namespace %q: %s: %w", ns, step.what, unavailable(err))
		}
	}
	if err := s.exec(ctx, deleteBlockSlots, name); err != nil {
		return fmt.Errorf("cqlstore: drop namespace %q: block slots: %w", ns, unavailable(err))
	}
	if err := s.exec(ctx, deleteProgress, name); err != nil {
		return fmt.Errorf("cqlstore: drop namespace %q: progress: %w", ns, unavailable(err))
	}
	s.log.Info("cqlstore: namespace dropped", "ns", name,
		"block_partitions", counts[0], "state_partitions", counts[1], "watermark_partitions", counts[2])
	return nil
}

// scanKeys pages through the partition keys st selects (the namespace
// first, then the columns scanned into dest) and calls found for each key
// of namespace ns. An error from found stops the scan and is returned.
func (s *Store) scanKeys(ctx context.Context, st statement, ns string, found func() error, dest ...any) error {
	q := s.query(ctx, st)
	defer q.Release()
	iter := q.Iter()
	var keyNS string
	row := append([]any{&keyNS}, dest...)
	for iter.Scan(row...) {
		if keyNS != ns {
			continue
		}
		if err := found(); err != nil {
			_ = iter.Close()
			return err
		}
	}
	return iter.Close()
}
