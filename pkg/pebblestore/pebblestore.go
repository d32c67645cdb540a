// Package pebblestore is the embedded, durable viewstore.Store of
// single-machine mode, on Pebble.
//
// Each Commit is one Pebble batch written with pebble.Sync: atomic, and
// durable once Commit returns. Readers use Pebble's point-in-time views, so
// LoadPartition sees a partition's progress and state of one and the same
// commit. Since a commit is atomic, a checkpoint is never stored in part,
// and Progress.Intent is always 0. The key layout is described in keys.go:
// ScanAdditions, ScanBlocks and ListPending are each a single bounded
// iterator.
//
// Besides the viewstore port, Store offers Get, Put, Delete and Scan over a
// separate meta key space for the service's own small records (property
// registry, active projection versions). Those keys can never collide with
// projection data.
package pebblestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/sextant-analytics/sextant/pkg/pebblelock"

	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

// ErrClosed is returned by every operation on a closed Store.
var ErrClosed = errors.New("pebblestore: closed")

// Options configure Open.
type Options struct {
	// Logger receives the store's lifecycle messages and Pebble's own
	// (component=pebble; its informational ones at Debug level). Nil
	// discards them.
	Logger *slog.Logger
}

// Store implements viewstore.Store on a Pebble database in one directory.
// It is safe for concurrent use.
type Store struct {
	db   *pebble.DB
	lock *pebblelock.Lock
	log  *slog.Logger

	mu       sync.RWMutex // guards closed; held shared while registering in ops
	closed   bool
	inflight sync.WaitGroup // operations running; Close waits for them
}

var _ viewstore.Store = (*Store)(nil)

// cacheSize is Pebble's block cache. Read models are scanned repeatedly by
// reports; 64 MiB keeps the hot hours of a few properties in memory.
const cacheSize = 64 << 20

// Open opens (creating if needed) the store in dir.
func Open(dir string, opts Options) (*Store, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// A directory another process holds is pebblelock.ErrInUse.
	lock, err := pebblelock.Acquire(dir)
	if err != nil {
		return nil, fmt.Errorf("pebblestore: open %s: %w", dir, err)
	}
	cache := pebble.NewCache(cacheSize)
	defer cache.Unref()
	db, err := pebble.Open(dir, &pebble.Options{
		Cache:              cache,
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             pebbleLogger{l: logger.With("component", "pebble")},
		Lock:               lock.Pebble(),
	})
	if err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("pebblestore: open %s: %w", dir, err)
	}
	if err := checkLayout(db, logger); err != nil {
		_ = db.Close()
		_ = lock.Close()
		return nil, fmt.Errorf("pebblestore: open %s: %w", dir, err)
	}
	logger.Info("pebblestore opened", "dir", dir)
	return &Store{db: db, lock: lock, log: logger}, nil
}

// checkLayout writes the layout version into a new database, upgrades a
// database of layout version 1 and refuses any other.
//
// Layout version 1 held absolute cells, which no code reads any more: the
// upgrade deletes the projection data of every namespace (progress, state,
// watermarks and cells: every 'N' key) and keeps the meta entries. With
// their progress gone, the projections replay the log from offset 0 and
// rebuild their read models.
func checkLayout(db *pebble.DB, log *slog.Logger) error {
	key := []byte{tagVersion}
	v, closer, err := db.Get(key)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		if err := db.Set(key, []byte{layoutVersion}, pebble.Sync); err != nil {
			return fmt.Errorf("write layout version: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("read layout version: %w", err)
	}
	version := bytes.Clone(v)
	closer.Close()
	switch {
	case len(version) == 1 && version[0] == layoutVersion:
		return nil
	case len(version) == 1 && version[0] == layoutV1:
		b := db.NewBatch()
		defer b.Close()
		if err := b.DeleteRange([]byte{tagData}, []byte{tagData + 1}, nil); err != nil {
			return fmt.Errorf("upgrade layout: %w", err)
		}
		if err := b.Set(key, []byte{layoutVersion}, nil); err != nil {
			return fmt.Errorf("upgrade layout: %w", err)
		}
		if err := b.Commit(pebble.Sync); err != nil {
			return fmt.Errorf("upgrade layout: %w", err)
		}
		log.Warn("pebblestore: upgraded the key layout from version 1 (cells) to 2 (additions and blocks): "+
			"the read models of every namespace were deleted and are rebuilt by the projections replaying the log from offset 0",
			"from", layoutV1, "to", layoutVersion)
		return nil
	}
	return fmt.Errorf("unsupported key layout version %x (want %d)", version, layoutVersion)
}

// enter registers a running operation; the caller must call s.inflight.Done.
func (s *Store) enter(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pebblestore: %s: %w", op, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return fmt.Errorf("pebblestore: %s: %w", op, ErrClosed)
	}
	s.inflight.Add(1)
	return nil
}

// Close waits for running operations and closes the database. Operations
// started after Close return ErrClosed; closing again does nothing.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.inflight.Wait()
	err := s.db.Close()
	if lerr := s.lock.Close(); err == nil {
		err = lerr
	}
	if err != nil {
		return fmt.Errorf("pebblestore: close: %w", err)
	}
	s.log.Info("pebblestore closed")
	return nil
}

// Commit writes the checkpoint as one synced Pebble batch.
func (s *Store) Commit(ctx context.Context, ns viewstore.Namespace, cp viewstore.Checkpoint) error {
	if err := s.enter(ctx, "commit"); err != nil {
		return err
	}
	defer s.inflight.Done()

	size := 64 + len(cp.Additions)*96 + len(cp.State)*48 + len(cp.Watermarks)*48
	for i := range cp.Additions {
		size += 2*len(ns) + len(cp.Additions[i].Property) + len(cp.Additions[i].Block)
	}
	for i := range cp.State {
		size += len(cp.State[i].Key) + len(cp.State[i].Value)
	}
	b := s.db.NewBatchWithSize(size)
	defer b.Close()

	// Set and Delete copy key and value into the batch, so the buffers
	// are reused.
	var key, val []byte
	key = progressKey(key[:0], ns, cp.Progress.Partition)
	val = encodeProgress(val[:0], &cp.Progress)
	if err := b.Set(key, val, nil); err != nil {
		return fmt.Errorf("pebblestore: commit: %w", err)
	}
	for i := range cp.Additions {
		a := &cp.Additions[i]
		key = additionKey(key[:0], ns, a)
		val = encodeAddition(val[:0], a)
		if err := b.Set(key, val, nil); err != nil {
			return fmt.Errorf("pebblestore: commit: %w", err)
		}
	}
	sp := statePrefix(nil, ns, cp.Progress.Partition)
	for i := range cp.State {
		kv := &cp.State[i]
		key = append(append(key[:0], sp...), kv.Key...)
		var err error
		if kv.Delete {
			err = b.Delete(key, nil)
		} else {
			err = b.Set(key, kv.Value, nil)
		}
		if err != nil {
			return fmt.Errorf("pebblestore: commit: %w", err)
		}
	}
	for i := range cp.Watermarks {
		w := &cp.Watermarks[i]
		key = appendPartition(watermarkPrefix(key[:0], ns, w.Property), w.Partition)
		val = encodeWatermark(val[:0], w)
		if err := b.Set(key, val, nil); err != nil {
			return fmt.Errorf("pebblestore: commit: %w", err)
		}
	}
	if err := viewstore.CheckFence(ctx); err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("pebblestore: commit partition %d: %w", cp.Progress.Partition, err)
	}
	return nil
}

// PutBlock writes the block, synced.
func (s *Store) PutBlock(ctx context.Context, ns viewstore.Namespace, b viewstore.Block) error {
	if err := s.enter(ctx, "put block"); err != nil {
		return err
	}
	defer s.inflight.Done()
	key := appendBucket(blockPrefix(nil, ns, b.Property, b.Kind), b.Bucket)
	val := encodeBlock(make([]byte, 0, 16+10*len(b.Cover)+len(b.Data)), &b)
	if err := viewstore.CheckFence(ctx); err != nil {
		return err
	}
	if err := s.db.Set(key, val, pebble.Sync); err != nil {
		return fmt.Errorf("pebblestore: put block of %q at %d: %w", b.Property, b.Bucket, err)
	}
	return nil
}

// DeleteAdditions deletes the additions of property, hour and partition
// part with Start < before with one range deletion: no read, and one
// tombstone that later scans of the shard skip at once, where point
// deletions would leave one each (BenchmarkDeleteAdditions: 0.8 ms an
// iteration against 4.2 ms with an iterator and point deletions, at
// -benchtime 500x).
//
// It is not synced: the compactor deletes additions only after the block
// that covers them was written (synced, so earlier in the log), so a
// deletion lost in a crash leaves additions that the block's cover
// already excludes, and the compactor deletes them again.
func (s *Store) DeleteAdditions(ctx context.Context, ns viewstore.Namespace, property string, hour int64, part int32, before int64) error {
	if err := s.enter(ctx, "delete additions"); err != nil {
		return err
	}
	defer s.inflight.Done()
	prefix := additionHourPartPrefix(nil, ns, property, hour, part)
	upper := appendBucket(bytes.Clone(prefix), before)
	if err := viewstore.CheckFence(ctx); err != nil {
		return err
	}
	if err := s.db.DeleteRange(prefix, upper, pebble.NoSync); err != nil {
		return fmt.Errorf("pebblestore: delete additions of %q at %d, partition %d: %w", property, hour, part, err)
	}
	return nil
}

// DropNamespace deletes every key of the namespace (its progress, state,
// watermarks, additions and blocks, which share the prefix 'N' esc(ns)) with one synced
// range deletion: atomic, and durable once it returns. The space is
// reclaimed as compactions go over the range.
func (s *Store) DropNamespace(ctx context.Context, ns viewstore.Namespace) error {
	if err := s.enter(ctx, "drop namespace"); err != nil {
		return err
	}
	defer s.inflight.Done()
	prefix := nsRangePrefix(nil, ns)
	if err := s.db.DeleteRange(prefix, prefixEnd(prefix), pebble.Sync); err != nil {
		return fmt.Errorf("pebblestore: drop namespace %q: %w", ns, err)
	}
	return nil
}

// LoadPartition reads the partition's progress and state from one
// point-in-time snapshot.
func (s *Store) LoadPartition(ctx context.Context, ns viewstore.Namespace, p int32) (viewstore.Progress, []viewstore.KV, error) {
	if err := s.enter(ctx, "load partition"); err != nil {
		return viewstore.Progress{}, nil, err
	}
	defer s.inflight.Done()

	snap := s.db.NewSnapshot()
	defer snap.Close()

	pr := viewstore.Progress{Partition: p}
	v, closer, err := snap.Get(progressKey(nil, ns, p))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return viewstore.Progress{}, nil, fmt.Errorf("pebblestore: load partition %d: %w", p, err)
	default:
		pr, err = decodeProgress(v, p)
		closer.Close()
		if err != nil {
			return viewstore.Progress{}, nil, err
		}
	}

	var state []viewstore.KV
	prefix := statePrefix(nil, ns, p)
	err = scanPrefix(ctx, snap, prefix, func(k, v []byte) error {
		state = append(state, viewstore.KV{Key: string(k), Value: bytes.Clone(v)})
		return nil
	})
	if err != nil {
		return viewstore.Progress{}, nil, fmt.Errorf("pebblestore: load partition %d: %w", p, err)
	}
	return pr, state, nil
}

// ListProgress returns the progress of every committed partition, in
// partition order.
func (s *Store) ListProgress(ctx context.Context, ns viewstore.Namespace) ([]viewstore.Progress, error) {
	if err := s.enter(ctx, "list progress"); err != nil {
		return nil, err
	}
	defer s.inflight.Done()

	var out []viewstore.Progress
	prefix := nsPrefix(nil, ns, kindProgress)
	err := scanPrefix(ctx, s.db, prefix, func(k, v []byte) error {
		p, rest, err := readPartition(k)
		if err != nil || len(rest) != 0 {
			return fmt.Errorf("%w: progress key %x", errCorrupt, k)
		}
		pr, err := decodeProgress(v, p)
		if err != nil {
			return err
		}
		out = append(out, pr)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pebblestore: list progress: %w", err)
	}
	return out, nil
}

// Watermarks returns the property's watermarks in partition order.
func (s *Store) Watermarks(ctx context.Context, ns viewstore.Namespace, property string) ([]viewstore.Watermark, error) {
	if err := s.enter(ctx, "watermarks"); err != nil {
		return nil, err
	}
	defer s.inflight.Done()

	var out []viewstore.Watermark
	prefix := watermarkPrefix(nil, ns, property)
	err := scanPrefix(ctx, s.db, prefix, func(k, v []byte) error {
		p, rest, err := readPartition(k)
		if err != nil || len(rest) != 0 {
			return fmt.Errorf("%w: watermark key %x", errCorrupt, k)
		}
		w, err := decodeWatermark(v, property, p)
		if err != nil {
			return err
		}
		out = append(out, w)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pebblestore: watermarks of %q: %w", property, err)
	}
	return out, nil
}

// ScanAdditions calls fn for every addition of property with hour in
// [from, to), in hour order (within an hour by partition, then start). fn
// owns the additions it receives. An error from fn stops the scan and is
// returned as is.
func (s *Store) ScanAdditions(ctx context.Context, ns viewstore.Namespace, property string, from, to int64, fn func(viewstore.Addition) error) error {
	if err := s.enter(ctx, "scan additions"); err != nil {
		return err
	}
	defer s.inflight.Done()
	if from >= to {
		return nil
	}
	prefix := additionPrefix(nil, ns, property)
	lower := appendBucket(bytes.Clone(prefix), from)
	upper := appendBucket(bytes.Clone(prefix), to)
	return s.scan(ctx, "scan additions", lower, upper, func(k, v []byte) error {
		hour, part, start, err := decodeAdditionSuffix(k[len(prefix):])
		if err != nil {
			return fmt.Errorf("pebblestore: addition key %x: %w", k, err)
		}
		end, data, err := decodeAdditionValue(v)
		if err != nil {
			return fmt.Errorf("pebblestore: addition at %x: %w", k, err)
		}
		return fn(viewstore.Addition{Property: property, Hour: hour, Partition: part, Start: start, End: end, Block: bytes.Clone(data)})
	})
}

// ListPending calls fn for every addition of the shard: one prefix scan.
func (s *Store) ListPending(ctx context.Context, ns viewstore.Namespace, shard int, fn func(viewstore.PendingKey) error) error {
	if err := s.enter(ctx, "list pending"); err != nil {
		return err
	}
	defer s.inflight.Done()
	if shard < 0 || shard >= viewstore.Shards {
		return fmt.Errorf("pebblestore: list pending: shard %d out of range", shard)
	}
	prefix := additionShardPrefix(nil, ns, shard)
	// Additions of a property are adjacent: decode its name once.
	var lastRaw []byte
	var property string
	return s.scan(ctx, "list pending", prefix, prefixEnd(prefix), func(k, v []byte) error {
		raw, rest, err := readEscapedBytes(k[len(prefix):])
		if err != nil {
			return fmt.Errorf("pebblestore: addition key %x: %w", k, err)
		}
		if lastRaw == nil || !bytes.Equal(raw, lastRaw) {
			property = string(raw)
			lastRaw = append(lastRaw[:0], raw...)
		}
		hour, part, start, err := decodeAdditionSuffix(rest)
		if err != nil {
			return fmt.Errorf("pebblestore: addition key %x: %w", k, err)
		}
		end, data, err := decodeAdditionValue(v)
		if err != nil {
			return fmt.Errorf("pebblestore: addition at %x: %w", k, err)
		}
		return fn(viewstore.PendingKey{Property: property, Hour: hour, Partition: part, Start: start, End: end, Bytes: len(data)})
	})
}

// ScanBlocks calls fn for every block of property and kind with bucket in
// [from, to), in bucket order. fn owns the blocks it receives. An error
// from fn stops the scan and is returned as is.
func (s *Store) ScanBlocks(ctx context.Context, ns viewstore.Namespace, property string, k viewstore.Kind, from, to int64, fn func(viewstore.Block) error) error {
	if err := s.enter(ctx, "scan blocks"); err != nil {
		return err
	}
	defer s.inflight.Done()
	if from >= to {
		return nil
	}
	prefix := blockPrefix(nil, ns, property, k)
	lower := appendBucket(bytes.Clone(prefix), from)
	upper := appendBucket(bytes.Clone(prefix), to)
	return s.scan(ctx, "scan blocks", lower, upper, func(key, v []byte) error {
		bucket, rest, err := readBucket(key[len(prefix):])
		if err != nil || len(rest) != 0 {
			return fmt.Errorf("pebblestore: %w: block key %x", errCorrupt, key)
		}
		cover, data, err := decodeBlockValue(v)
		if err != nil {
			return fmt.Errorf("pebblestore: block at %x: %w", key, err)
		}
		return fn(viewstore.Block{Property: property, Kind: k, Bucket: bucket, Cover: cover, Data: bytes.Clone(data)})
	})
}

// scan calls row with every key in [lower, upper) and its value, both only
// valid during the call. An error from row stops the scan; it is returned
// as is when it comes from the caller's fn (row's own errors are wrapped
// by row), the iterator's wrapped with op.
func (s *Store) scan(ctx context.Context, op string, lower, upper []byte, row func(k, v []byte) error) (err error) {
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("pebblestore: %s: %w", op, err)
	}
	defer func() {
		if cerr := it.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("pebblestore: %s: %w", op, cerr)
		}
	}()
	n := 0
	for valid := it.First(); valid; valid = it.Next() {
		if n++; n%256 == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("pebblestore: %s: %w", op, err)
			}
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("pebblestore: %s: %w", op, err)
		}
		if err := row(it.Key(), v); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("pebblestore: %s: %w", op, err)
	}
	return nil
}

// reader is what *pebble.DB and *pebble.Snapshot share.
type reader interface {
	NewIterWithContext(ctx context.Context, o *pebble.IterOptions) (*pebble.Iterator, error)
}

// scanPrefix calls fn with every key that starts with prefix, less the
// prefix, and its value; both are only valid during the call.
func scanPrefix(ctx context.Context, r reader, prefix []byte, fn func(k, v []byte) error) (err error) {
	it, err := r.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := it.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	n := 0
	for valid := it.First(); valid; valid = it.Next() {
		if n++; n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		k := it.Key()
		if !bytes.HasPrefix(k, prefix) {
			return fmt.Errorf("%w: key %x outside prefix %x", errCorrupt, k, prefix)
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		if err := fn(k[len(prefix):], v); err != nil {
			return err
		}
	}
	return it.Error()
}
