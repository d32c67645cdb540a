// Package pebblestore is the embedded, durable viewstore.Store of
// single-machine mode, on Pebble.
//
// Each Commit is one Pebble batch written with pebble.Sync: atomic, and
// durable once Commit returns. Readers use Pebble's point-in-time views, so
// LoadPartition sees a partition's progress and state of one and the same
// commit. The key layout is described in keys.go; the cells of one
// namespace, property and grain are sorted by bucket, so ScanCells is a
// single bounded iterator.
//
// Besides the viewstore port, Store offers Get, Put, Delete and Scan over a
// separate meta key space for the service's own small records (property
// registry, active projection versions). Those keys can never collide with
// projection data.
package pebblestore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/cockroachdb/pebble/v2"

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
	db  *pebble.DB
	log *slog.Logger

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
	cache := pebble.NewCache(cacheSize)
	defer cache.Unref()
	db, err := pebble.Open(dir, &pebble.Options{
		Cache:              cache,
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             pebbleLogger{l: logger.With("component", "pebble")},
	})
	if err != nil {
		return nil, fmt.Errorf("pebblestore: open %s: %w", dir, err)
	}
	if err := checkLayout(db); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("pebblestore: open %s: %w", dir, err)
	}
	logger.Info("pebblestore opened", "dir", dir)
	return &Store{db: db, log: logger}, nil
}

// checkLayout writes the layout version into a new database and refuses a
// database written with another layout.
func checkLayout(db *pebble.DB) error {
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
	defer closer.Close()
	if len(v) != 1 || v[0] != layoutVersion {
		return fmt.Errorf("unsupported key layout version %x (want %d)", v, layoutVersion)
	}
	return nil
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
// started after Close return ErrClosed, and so does a second Close.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	s.mu.Unlock()
	s.inflight.Wait()
	if err := s.db.Close(); err != nil {
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

	size := 64 + len(cp.Cells)*96 + len(cp.State)*48 + len(cp.Watermarks)*48
	for i := range cp.Cells {
		size += len(cp.Cells[i].Value)
	}
	for i := range cp.State {
		size += len(cp.State[i].Value)
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
	for i := range cp.Cells {
		key = cellKey(key[:0], ns, &cp.Cells[i])
		val = binary.AppendVarint(val[:0], cp.Cells[i].Offset)
		val = append(val, cp.Cells[i].Value...)
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
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("pebblestore: commit partition %d: %w", cp.Progress.Partition, err)
	}
	return nil
}

// DropNamespace deletes every key of the namespace (its progress, state,
// watermarks and cells, which share the prefix 'N' esc(ns)) with one synced
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

// ScanCells calls fn for every cell of property and grain with bucket in
// [from, to), in bucket order (and within a bucket by dims, then
// partition). fn owns the cells it receives. An error from fn stops the scan
// and is returned as is.
func (s *Store) ScanCells(ctx context.Context, ns viewstore.Namespace, property string, g viewstore.Grain, from, to int64, fn func(viewstore.Cell) error) error {
	if err := s.enter(ctx, "scan cells"); err != nil {
		return err
	}
	defer s.inflight.Done()
	if from >= to {
		return nil
	}

	prefix := cellPrefix(nil, ns, property, g)
	lower := appendBucket(bytes.Clone(prefix), from)
	upper := appendBucket(bytes.Clone(prefix), to)
	return s.scanCells(ctx, prefix, lower, upper, property, g, nil, fn)
}

// LoadBucket calls fn for the cells of one bucket written by log partition
// part: what a projection partition reads back after evicting the bucket.
// The other partitions' cells are skipped by their keys' last bytes,
// without decoding or copying them.
func (s *Store) LoadBucket(ctx context.Context, ns viewstore.Namespace, property string, g viewstore.Grain, bucket int64, part int32, fn func(viewstore.Cell) error) error {
	if err := s.enter(ctx, "load bucket"); err != nil {
		return err
	}
	defer s.inflight.Done()
	prefix := cellPrefix(nil, ns, property, g)
	lower := appendBucket(bytes.Clone(prefix), bucket)
	upper := appendBucket(bytes.Clone(prefix), bucket+1)
	return s.scanCells(ctx, prefix, lower, upper, property, g, appendPartition(nil, part), fn)
}

// scanCells scans the cells between lower and upper; with a non-nil part
// (an encoded partition), only that partition's.
func (s *Store) scanCells(ctx context.Context, prefix, lower, upper []byte, property string, g viewstore.Grain, part []byte, fn func(viewstore.Cell) error) (err error) {
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("pebblestore: scan cells: %w", err)
	}
	defer func() {
		if cerr := it.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("pebblestore: scan cells: %w", cerr)
		}
	}()
	// Dims repeat across buckets: intern them. Values are carved from
	// shared slabs (capacity-limited, so appending to one cannot clobber
	// another) to save an allocation per cell.
	intern := make(map[string]string)
	var slab []byte
	n := 0
	for valid := it.First(); valid; valid = it.Next() {
		if n++; n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("pebblestore: scan cells: %w", err)
			}
		}
		k := it.Key()
		if part != nil && !bytes.HasSuffix(k, part) {
			continue
		}
		bucket, rawDims, p, err := decodeCellSuffix(k[len(prefix):])
		if err != nil {
			return fmt.Errorf("pebblestore: scan cells: cell key %x: %w", k, err)
		}
		dims, ok := intern[string(rawDims)]
		if !ok {
			dims = string(rawDims)
			if len(intern) < maxInterned {
				intern[dims] = dims
			}
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("pebblestore: scan cells: %w", err)
		}
		offset, n := binary.Varint(v)
		if n <= 0 {
			return fmt.Errorf("pebblestore: scan cells: corrupt value at %x", k)
		}
		v = v[n:]
		var value []byte
		switch {
		case len(v) == 0:
		case len(v) > maxSlabValue:
			value = bytes.Clone(v)
		default:
			if cap(slab)-len(slab) < len(v) {
				slab = make([]byte, 0, slabSize)
			}
			start := len(slab)
			slab = append(slab, v...)
			value = slab[start:len(slab):len(slab)]
		}
		if err := fn(viewstore.Cell{
			Property:  property,
			Grain:     g,
			Bucket:    bucket,
			Dims:      dims,
			Partition: p,
			Value:     value,
			Offset:    offset,
		}); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("pebblestore: scan cells: %w", err)
	}
	return nil
}

const (
	maxInterned  = 4096     // distinct dims interned per scan
	slabSize     = 32 << 10 // bytes per value slab
	maxSlabValue = 2 << 10  // larger values get their own allocation
)

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
