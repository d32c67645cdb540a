package cqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

// Additions and blocks are rows of kilobytes to megabytes (a busy hour's
// blocks of a rollup with thousands of values): reads of them are paged by
// a few rows, so that neither the node nor the client materialises a page
// of 5,000 of them. A node ran out of heap serving a week of a busy
// property's page blocks in 5,000-row pages.
const (
	additionsPage = 64
	blocksPage    = 4
)

const (
	// maxScanSlots bounds the block partitions one ScanBlocks may visit
	// (about 80 years of hour blocks).
	maxScanSlots = 1000
	// directSlots is how many slots ScanBlocks reads without asking
	// block_slots which exist first.
	directSlots = 3
)

// ScanAdditions calls fn for every addition of property with hour in
// [from, to), in hour order (within an hour by partition, then start):
// one paged slice of the property's shard partition. fn owns the
// additions it receives. An error from fn stops the scan and is returned
// as is.
func (s *Store) ScanAdditions(ctx context.Context, ns viewstore.Namespace, property string, from, to int64, fn func(viewstore.Addition) error) error {
	if err := s.enter(ctx, "scan additions"); err != nil {
		return err
	}
	defer s.inflight.Done()
	if err := checkNamespace("scan additions", ns); err != nil {
		return err
	}
	if from >= to {
		return nil
	}
	q := s.query(ctx, selectAdditions).PageSize(additionsPage).Prefetch(0.25).Bind(string(ns), int32(viewstore.ShardOf(property)), property, from, to)
	defer q.Release()
	iter := q.Iter()
	a := viewstore.Addition{Property: property}
	var chunks int32
	for {
		a.Block = nil // the driver appends into it: a fresh one per row
		if !iter.Scan(&a.Hour, &a.Partition, &a.Start, &a.End, &a.Block, &chunks) {
			break
		}
		if chunks > 0 {
			data, err := s.readChunks(ctx, selectAdditionChunks, int(chunks), string(ns), int32(viewstore.ShardOf(property)), property, a.Hour, a.Partition, a.Start)
			if err != nil {
				_ = iter.Close()
				return fmt.Errorf("cqlstore: scan additions of %q in %q: addition at %d, partition %d, start %d: %w", property, ns, a.Hour, a.Partition, a.Start, unavailable(err))
			}
			a.Block = data
		}
		if err := fn(a); err != nil {
			_ = iter.Close()
			return err
		}
	}
	if err := iter.Close(); err != nil {
		return fmt.Errorf("cqlstore: scan additions of %q in %q: %w", property, ns, unavailable(err))
	}
	return nil
}

// ListPending calls fn for every addition of the shard, without its data:
// one paged read of the shard's partition.
func (s *Store) ListPending(ctx context.Context, ns viewstore.Namespace, shard int, fn func(viewstore.PendingKey) error) error {
	if err := s.enter(ctx, "list pending"); err != nil {
		return err
	}
	defer s.inflight.Done()
	if err := checkNamespace("list pending", ns); err != nil {
		return err
	}
	if shard < 0 || shard >= viewstore.Shards {
		return fmt.Errorf("cqlstore: list pending: shard %d out of range", shard)
	}
	q := s.query(ctx, selectPending).Prefetch(0.25).Bind(string(ns), int32(shard))
	defer q.Release()
	iter := q.Iter()
	var k viewstore.PendingKey
	var size int32 // null (rows written before the column) reads as 0
	for iter.Scan(&k.Property, &k.Hour, &k.Partition, &k.Start, &k.End, &size) {
		k.Bytes = int(size)
		if err := fn(k); err != nil {
			_ = iter.Close()
			return err
		}
	}
	if err := iter.Close(); err != nil {
		return fmt.Errorf("cqlstore: list pending of shard %d in %q: %w", shard, ns, unavailable(err))
	}
	return nil
}

// DeleteAdditions deletes the additions of property, hour and partition
// part with Start < before: one range deletion (a single range tombstone)
// in the shard's partition.
func (s *Store) DeleteAdditions(ctx context.Context, ns viewstore.Namespace, property string, hour int64, part int32, before int64) error {
	if err := s.enter(ctx, "delete additions"); err != nil {
		return err
	}
	defer s.inflight.Done()
	if err := checkNamespace("delete additions", ns); err != nil {
		return err
	}
	if err := s.exec(ctx, deleteAdditions, string(ns), int32(viewstore.ShardOf(property)), property, hour, part, before); err != nil {
		return fmt.Errorf("cqlstore: delete additions of %q at %d, partition %d, in %q: %w", property, hour, part, ns, unavailable(err))
	}
	// Their chunks after them: a chunk left behind by a failure here is
	// never read (no row points at it) and goes with the next deletion.
	if err := s.exec(ctx, deleteAdditionChunks, string(ns), int32(viewstore.ShardOf(property)), property, hour, part, before); err != nil {
		return fmt.Errorf("cqlstore: delete addition chunks of %q at %d, partition %d, in %q: %w", property, hour, part, ns, unavailable(err))
	}
	return nil
}

// PutBlock writes the block's slot to block_slots, then the block: a
// block is never stored without the slot that finds it.
func (s *Store) PutBlock(ctx context.Context, ns viewstore.Namespace, b viewstore.Block) error {
	if err := s.enter(ctx, "put block"); err != nil {
		return err
	}
	defer s.inflight.Done()
	if err := checkNamespace("put block", ns); err != nil {
		return err
	}
	if !utf8.ValidString(string(ns)) || !utf8.ValidString(b.Property) {
		return fmt.Errorf("cqlstore: put block of %q in %q: not valid UTF-8", b.Property, ns)
	}
	slot := slotOf(b.Kind, b.Bucket)
	if err := s.exec(ctx, insertBlockSlot, string(ns), b.Property, int8(b.Kind), slot); err != nil {
		return fmt.Errorf("cqlstore: put block of %q at %d in %q: %w", b.Property, b.Bucket, ns, unavailable(err))
	}
	if len(b.Data) <= chunkSize {
		if err := s.exec(ctx, insertBlock, string(ns), b.Property, int8(b.Kind), slot, b.Bucket, encodeCover(b.Cover), nonNil(b.Data), int32(0), int64(0)); err != nil {
			return fmt.Errorf("cqlstore: put block of %q at %d in %q: %w", b.Property, b.Bucket, ns, unavailable(err))
		}
		return nil
	}
	// A large block: its chunks under a new version, then the row that
	// points at them, then the older versions' chunks go.
	version := time.Now().UnixNano()
	chunks := chunksOf(b.Data)
	jobs := make([]func(context.Context) error, len(chunks))
	for i, c := range chunks {
		jobs[i] = func(ctx context.Context) error {
			return s.exec(ctx, insertBlockChunk, string(ns), b.Property, int8(b.Kind), slot, b.Bucket, version, int32(i), c)
		}
	}
	if err := runBounded(ctx, commitParallelism, jobs); err != nil {
		return fmt.Errorf("cqlstore: put block chunks of %q at %d in %q: %w", b.Property, b.Bucket, ns, unavailable(err))
	}
	if err := s.exec(ctx, insertBlock, string(ns), b.Property, int8(b.Kind), slot, b.Bucket, encodeCover(b.Cover), []byte{}, int32(len(chunks)), version); err != nil {
		return fmt.Errorf("cqlstore: put block of %q at %d in %q: %w", b.Property, b.Bucket, ns, unavailable(err))
	}
	if err := s.exec(ctx, deleteBlockChunks, string(ns), b.Property, int8(b.Kind), slot, b.Bucket, version); err != nil {
		return fmt.Errorf("cqlstore: delete older block chunks of %q at %d in %q: %w", b.Property, b.Bucket, ns, unavailable(err))
	}
	return nil
}

// ScanBlocks calls fn for every block of property and kind with bucket in
// [from, to), in bucket order: a paged read of each slot of the range, in
// order. A range of more than directSlots slots reads only the slots that
// block_slots lists. fn owns the blocks it receives. An error from fn stops
// the scan and is returned as is.
func (s *Store) ScanBlocks(ctx context.Context, ns viewstore.Namespace, property string, k viewstore.Kind, from, to int64, fn func(viewstore.Block) error) error {
	if err := s.enter(ctx, "scan blocks"); err != nil {
		return err
	}
	defer s.inflight.Done()
	if err := checkNamespace("scan blocks", ns); err != nil {
		return err
	}
	if from >= to {
		return nil
	}
	first, last := slotOf(k, from), slotOf(k, to-1)
	if last-first >= maxScanSlots {
		return fmt.Errorf("cqlstore: scan blocks: range [%d, %d) spans more than %d partitions", from, to, maxScanSlots)
	}
	var slots []int64
	if last-first < directSlots {
		for slot := first; slot <= last; slot++ {
			slots = append(slots, slot)
		}
	} else {
		q := s.query(ctx, selectBlockSlots).Bind(string(ns), property, int8(k), first, last)
		iter := q.Iter()
		var slot int64
		for iter.Scan(&slot) {
			slots = append(slots, slot)
		}
		err := iter.Close()
		q.Release()
		if err != nil {
			return fmt.Errorf("cqlstore: scan blocks of %q in %q: %w", property, ns, unavailable(err))
		}
	}
	for _, slot := range slots {
		if err := s.scanSlot(ctx, ns, property, k, slot, from, to, fn); err != nil {
			return err
		}
	}
	return nil
}

// scanSlot reads the blocks of one slot. An error from fn is returned as
// is.
func (s *Store) scanSlot(ctx context.Context, ns viewstore.Namespace, property string, k viewstore.Kind, slot, from, to int64, fn func(viewstore.Block) error) error {
	q := s.query(ctx, selectBlocks).PageSize(blocksPage).Prefetch(0.25).Bind(string(ns), property, int8(k), slot, from, to)
	defer q.Release()
	iter := q.Iter()
	b := viewstore.Block{Property: property, Kind: k}
	var (
		cover   []byte
		chunks  int32
		version int64
	)
	for {
		b.Data = nil // the driver appends into it: a fresh one per row
		if !iter.Scan(&b.Bucket, &cover, &b.Data, &chunks, &version) {
			break
		}
		var err error
		if chunks > 0 {
			if cover, b.Data, err = s.blockChunks(ctx, ns, property, k, slot, b.Bucket, cover, chunks, version); err != nil {
				_ = iter.Close()
				return fmt.Errorf("cqlstore: scan blocks of %q in %q: block at %d: %w", property, ns, b.Bucket, unavailable(err))
			}
		}
		if b.Cover, err = decodeCover(cover); err != nil {
			_ = iter.Close()
			return fmt.Errorf("cqlstore: scan blocks of %q in %q: block at %d: %w", property, ns, b.Bucket, unavailable(err))
		}
		if err := fn(b); err != nil {
			_ = iter.Close()
			return err
		}
	}
	if err := iter.Close(); err != nil {
		return fmt.Errorf("cqlstore: scan blocks of %q in %q: %w", property, ns, unavailable(err))
	}
	return nil
}

// blockChunks reads the data of a chunked block row (its cover, chunk
// count and version as read). When a newer version replaced the chunks
// meanwhile, it reads the row again, up to three times, and returns the
// cover and data of the version it read whole.
func (s *Store) blockChunks(ctx context.Context, ns viewstore.Namespace, property string, k viewstore.Kind, slot, bucket int64, cover []byte, chunks int32, version int64) ([]byte, []byte, error) {
	for attempt := 1; ; attempt++ {
		var data []byte
		if chunks > 0 {
			var err error
			data, err = s.readChunks(ctx, selectBlockChunks, int(chunks), string(ns), property, int8(k), slot, bucket, version)
			if err == nil || !errors.Is(err, errChunksMissing) || attempt == 3 {
				return cover, data, err
			}
		}
		q := s.query(ctx, selectBlock).Bind(string(ns), property, int8(k), slot, bucket)
		err := q.Scan(&cover, &data, &chunks, &version)
		q.Release()
		if err != nil {
			return nil, nil, fmt.Errorf("reading the block again: %w", err)
		}
		if chunks == 0 {
			return cover, data, nil
		}
	}
}
