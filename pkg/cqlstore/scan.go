package cqlstore

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/scylladb/gocqlx/v2"

	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

const (
	// scanAhead is how many cell partitions ScanCells fetches ahead of
	// the one it delivers.
	scanAhead = 6
	// scanChunk is the cells a fetcher hands over at once.
	scanChunk = 1024
	// maxScanSlots bounds the partitions one ScanCells may visit (about
	// 120 years of minute cells).
	maxScanSlots = 1 << 20

	maxInterned  = 4096     // distinct dims interned per partition read
	slabSize     = 32 << 10 // bytes per value slab
	maxSlabValue = 2 << 10  // larger values get their own allocation
)

// ScanCells calls fn for every cell of property and grain with bucket in
// [from, to), in bucket order (within a bucket by dims, then partition).
// It reads one CQL partition per slot in the range, the next ones
// concurrently while it delivers the current one. fn owns the cells it
// receives. An error from fn stops the scan and is returned as is.
func (s *Store) ScanCells(ctx context.Context, ns viewstore.Namespace, property string, g viewstore.Grain, from, to int64, fn func(viewstore.Cell) error) error {
	if err := s.enter(ctx, "scan cells"); err != nil {
		return err
	}
	defer s.inflight.Done()
	if from >= to {
		return nil
	}
	first, last := slotOf(g, from), slotOf(g, to-1)
	if last-first >= maxScanSlots {
		return fmt.Errorf("cqlstore: scan cells: range [%d, %d) spans more than %d partitions", from, to, maxScanSlots)
	}
	r := slotReader{s: s, ns: string(ns), property: property, g: g, from: from, to: to}
	if first == last {
		// One partition (a report of a day): no goroutines.
		return r.readOne(ctx, first, "scan cells", fn)
	}
	return r.pipeline(ctx, first, last, fn)
}

// LoadBucket calls fn for the cells of one bucket that belong to log
// partition part: what a projector needs to resume a bucket. Unlike
// ScanCells of the bucket, it does not ship the other log partitions'
// cells (a busy bucket's whole-tuple cells are mostly theirs).
func (s *Store) LoadBucket(ctx context.Context, ns viewstore.Namespace, property string, g viewstore.Grain, bucket int64, part int32, fn func(viewstore.Cell) error) error {
	if err := s.enter(ctx, "load bucket"); err != nil {
		return err
	}
	defer s.inflight.Done()
	r := slotReader{s: s, ns: string(ns), property: property, g: g, from: bucket, to: bucket + 1, part: &part}
	return r.readOne(ctx, slotOf(g, bucket), "load bucket", fn)
}

// readOne reads one slot on the caller's goroutine. An error from fn is
// returned as is, the read's wrapped with what was being done.
func (r *slotReader) readOne(ctx context.Context, slot int64, what string, fn func(viewstore.Cell) error) error {
	var fnErr error
	err := r.read(ctx, slot, func(c viewstore.Cell) error {
		if err := fn(c); err != nil {
			fnErr = err
			return err
		}
		return nil
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("cqlstore: %s of %q: %w", what, r.property, err)
	}
	return nil
}

// chunk is cells of one slot, or the error that ended its read.
type chunk struct {
	cells []viewstore.Cell
	err   error
}

// pipeline reads the slots first..last with up to scanAhead+1 in flight
// and delivers them in order.
func (r *slotReader) pipeline(ctx context.Context, first, last int64, fn func(viewstore.Cell) error) error {
	ctx, cancel := context.WithCancel(ctx)
	// queue holds the slots' chunk channels in slot order; its capacity
	// bounds the reads ahead.
	queue := make(chan chan chunk, scanAhead)
	dispatched := make(chan struct{})
	defer func() {
		cancel()
		<-dispatched
	}()
	go func() {
		var wg sync.WaitGroup
		defer func() {
			close(queue)
			wg.Wait()
			close(dispatched)
		}()
		for slot := first; slot <= last; slot++ {
			ch := make(chan chunk, 2)
			select {
			case queue <- ch:
			case <-ctx.Done():
				return
			}
			wg.Go(func() { r.fetch(ctx, slot, ch) })
		}
	}()

	for ch := range queue {
		for c := range ch {
			if c.err != nil {
				return fmt.Errorf("cqlstore: scan cells of %q: %w", r.property, c.err)
			}
			for _, cell := range c.cells {
				if err := fn(cell); err != nil {
					return err
				}
			}
		}
		// A fetcher stops silently when ctx ends; only the caller's
		// context can have ended here.
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("cqlstore: scan cells of %q: %w", r.property, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cqlstore: scan cells of %q: %w", r.property, err)
	}
	return nil
}

// fetch reads one slot into ch in chunks and closes it.
func (r *slotReader) fetch(ctx context.Context, slot int64, ch chan<- chunk) {
	defer close(ch)
	var buf []viewstore.Cell
	send := func(c chunk) error {
		select {
		case ch <- c:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	errStopped := errors.New("stopped")
	err := r.read(ctx, slot, func(c viewstore.Cell) error {
		if buf == nil {
			buf = make([]viewstore.Cell, 0, scanChunk)
		}
		buf = append(buf, c)
		if len(buf) == scanChunk {
			if send(chunk{cells: buf}) != nil {
				return errStopped
			}
			buf = nil
		}
		return nil
	})
	switch {
	case errors.Is(err, errStopped):
	case err != nil:
		_ = send(chunk{err: err})
	case len(buf) > 0:
		_ = send(chunk{cells: buf})
	}
}

// slotReader reads the cells of one property and grain, bucket in
// [from, to), slot by slot.
type slotReader struct {
	s        *Store
	ns       string
	property string
	g        viewstore.Grain
	from, to int64
	part     *int32 // one log partition's cells of the bucket from (from+1 == to)
}

// read calls emit for the cells of one slot in clustering order, and
// returns emit's error or the read's.
func (r *slotReader) read(ctx context.Context, slot int64, emit func(viewstore.Cell) error) error {
	var q *gocqlx.Queryx
	if r.part != nil {
		q = r.s.query(ctx, selectPartitionCells).Bind(r.ns, r.property, int8(r.g), slot, r.from, *r.part)
	} else {
		q = r.s.query(ctx, selectCells).Prefetch(0.25).Bind(r.ns, r.property, int8(r.g), slot, r.from, r.to)
	}
	defer q.Release()
	iter := q.Iter()

	// Dims repeat across buckets: intern them. Values are carved from
	// shared slabs (capacity-limited, so appending to one cannot clobber
	// another) to save an allocation per cell.
	intern := make(map[string]string)
	var (
		slab         []byte
		bucket, off  int64
		part         int32
		dimsB, value []byte // the driver decodes into them, reusing them
	)
	for iter.Scan(&bucket, &dimsB, &part, &off, &value) {
		dims, ok := intern[string(dimsB)]
		if !ok {
			dims = string(dimsB)
			if len(intern) < maxInterned {
				intern[dims] = dims
			}
		}
		var v []byte
		switch {
		case len(value) == 0:
		case len(value) > maxSlabValue:
			v = append([]byte(nil), value...)
		default:
			if cap(slab)-len(slab) < len(value) {
				slab = make([]byte, 0, slabSize)
			}
			start := len(slab)
			slab = append(slab, value...)
			v = slab[start:len(slab):len(slab)]
		}
		if err := emit(viewstore.Cell{
			Property:  r.property,
			Grain:     r.g,
			Bucket:    bucket,
			Dims:      dims,
			Partition: part,
			Value:     v,
			Offset:    off,
		}); err != nil {
			_ = iter.Close()
			return err
		}
	}
	return iter.Close()
}
