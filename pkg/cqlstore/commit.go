package cqlstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gocql/gocql"
	"github.com/scylladb/gocqlx/v2"

	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

const (
	// commitParallelism bounds the writes one Commit has in flight.
	commitParallelism = 8
	// A batch holds rows of one partition only, at most this many and
	// about this many bytes: far below ScyllaDB's batch size warning
	// (128 KiB) and Cassandra's failure threshold (50 KiB, which Cassandra
	// only applies to batches of several partitions anyway).
	maxBatchStatements = 100
	maxBatchBytes      = 24 << 10
	// rowOverhead approximates a row's bytes beyond its variable columns.
	rowOverhead = 48
)

// write is one statement of a commit and its approximate size.
type write struct {
	st   statement
	args []any
	size int
}

// Commit writes the checkpoint in three steps, each only after the one
// before succeeded: the cells; then the state changes and the watermarks;
// then the progress row. Within a step the writes run concurrently, in
// single-partition batches. Commit is not atomic; the package
// documentation says why it need not be. When it returns nil, everything
// it wrote is readable. When it returns an error, part of the checkpoint
// may have been written, never the progress.
func (s *Store) Commit(ctx context.Context, ns viewstore.Namespace, cp viewstore.Checkpoint) error {
	if err := s.enter(ctx, "commit"); err != nil {
		return err
	}
	defer s.inflight.Done()
	if err := checkNamespace("commit", ns); err != nil {
		return err
	}
	p := cp.Progress.Partition
	if err := checkText(ns, &cp); err != nil {
		return fmt.Errorf("cqlstore: commit partition %d of %q: %w", p, ns, err)
	}

	// 1. Cells: with their offsets, correct whatever happens next.
	if err := s.execGroups(ctx, appendCellWrites(nil, ns, cp.Cells)); err != nil {
		return fmt.Errorf("cqlstore: commit cells of partition %d of %q: %w", p, ns, err)
	}
	// 2. State (an event id marked seen here has its cells stored) and
	// watermarks (which vouch for stored cells).
	var groups [][]write
	groups = appendStateWrites(groups, ns, p, cp.State)
	groups = appendWatermarkWrites(groups, ns, cp.Watermarks)
	if err := s.execGroups(ctx, groups); err != nil {
		return fmt.Errorf("cqlstore: commit state of partition %d of %q: %w", p, ns, err)
	}
	// 3. Progress, now that everything it stands for is stored.
	pr := &cp.Progress
	if err := s.exec(ctx, insertProgress, string(ns), p, pr.Next, pr.Applied, pr.Duplicates, pr.Excluded, timestamp(pr.Watermark)); err != nil {
		return fmt.Errorf("cqlstore: commit progress of partition %d of %q: %w", p, ns, err)
	}
	return nil
}

// execGroups writes the groups, commitParallelism at a time.
func (s *Store) execGroups(ctx context.Context, groups [][]write) error {
	jobs := make([]func(context.Context) error, len(groups))
	for i, g := range groups {
		jobs[i] = func(ctx context.Context) error { return s.execGroup(ctx, g) }
	}
	return runBounded(ctx, commitParallelism, jobs)
}

// checkText rejects names CQL text columns cannot hold, before anything is
// written. Dims and state keys are blobs and may hold any bytes.
func checkText(ns viewstore.Namespace, cp *viewstore.Checkpoint) error {
	if !utf8.ValidString(string(ns)) {
		return errors.New("namespace is not valid UTF-8")
	}
	for i := range cp.Cells {
		if !utf8.ValidString(cp.Cells[i].Property) {
			return fmt.Errorf("property %q is not valid UTF-8", cp.Cells[i].Property)
		}
	}
	for i := range cp.Watermarks {
		if !utf8.ValidString(cp.Watermarks[i].Property) {
			return fmt.Errorf("property %q is not valid UTF-8", cp.Watermarks[i].Property)
		}
	}
	return nil
}

// cellID is a cell's primary key.
type cellID struct {
	property  string
	grain     viewstore.Grain
	bucket    int64
	dims      string
	partition int32
}

// cellPartition is the partition key of a cell, less the namespace.
type cellPartition struct {
	property string
	grain    viewstore.Grain
	slot     int64
}

// appendCellWrites groups the cells by partition into chunks of batch
// size. A cell given twice is written once, with its last value (one
// batch gives all its rows the same timestamp, so the order inside it
// would not decide).
func appendCellWrites(groups [][]write, ns viewstore.Namespace, cells []viewstore.Cell) [][]write {
	if len(cells) == 0 {
		return groups
	}
	last := make(map[cellID]int, len(cells))
	for i := range cells {
		c := &cells[i]
		last[cellID{c.Property, c.Grain, c.Bucket, c.Dims, c.Partition}] = i
	}
	byPart := make(map[cellPartition]int) // index into parts
	var parts [][]write
	for i := range cells {
		c := &cells[i]
		if last[cellID{c.Property, c.Grain, c.Bucket, c.Dims, c.Partition}] != i {
			continue
		}
		slot := slotOf(c.Grain, c.Bucket)
		key := cellPartition{c.Property, c.Grain, slot}
		j, ok := byPart[key]
		if !ok {
			j = len(parts)
			byPart[key] = j
			parts = append(parts, nil)
		}
		parts[j] = append(parts[j], write{
			st:   insertCell,
			args: []any{string(ns), c.Property, int8(c.Grain), slot, c.Bucket, c.Dims, c.Partition, c.Offset, nonNil(c.Value)},
			size: rowOverhead + len(ns) + len(c.Property) + len(c.Dims) + len(c.Value),
		})
	}
	for _, ws := range parts {
		groups = appendChunks(groups, ws)
	}
	return groups
}

// appendStateWrites writes the state changes of partition p, grouped by
// shard; for a key given twice the last change counts.
func appendStateWrites(groups [][]write, ns viewstore.Namespace, p int32, state []viewstore.KV) [][]write {
	if len(state) == 0 {
		return groups
	}
	last := make(map[string]int, len(state))
	for i := range state {
		last[state[i].Key] = i
	}
	var shards [stateShards][]write
	for i := range state {
		kv := &state[i]
		if last[kv.Key] != i {
			continue
		}
		sh := stateShard(kv.Key)
		if kv.Delete {
			shards[sh] = append(shards[sh], write{st: deleteState, args: []any{string(ns), p, sh, kv.Key}, size: rowOverhead + len(ns) + len(kv.Key)})
		} else {
			shards[sh] = append(shards[sh], write{st: insertState, args: []any{string(ns), p, sh, kv.Key, nonNil(kv.Value)}, size: rowOverhead + len(ns) + len(kv.Key) + len(kv.Value)})
		}
	}
	for _, ws := range shards {
		groups = appendChunks(groups, ws)
	}
	return groups
}

// appendWatermarkWrites writes each watermark on its own: each is a
// partition of its own (namespace and property).
func appendWatermarkWrites(groups [][]write, ns viewstore.Namespace, wms []viewstore.Watermark) [][]write {
	type key struct {
		property  string
		partition int32
	}
	last := make(map[key]int, len(wms))
	for i := range wms {
		last[key{wms[i].Property, wms[i].Partition}] = i
	}
	for i := range wms {
		w := &wms[i]
		if last[key{w.Property, w.Partition}] != i {
			continue
		}
		groups = append(groups, []write{{st: insertWatermark, args: []any{string(ns), w.Property, w.Partition, timestamp(w.Time), w.Offset}}})
	}
	return groups
}

// appendChunks splits the writes of one partition into batches.
func appendChunks(groups [][]write, ws []write) [][]write {
	start, size := 0, 0
	for i, w := range ws {
		if i > start && (i-start == maxBatchStatements || size+w.size > maxBatchBytes) {
			groups = append(groups, ws[start:i])
			start, size = i, 0
		}
		size += w.size
	}
	if start < len(ws) {
		groups = append(groups, ws[start:])
	}
	return groups
}

// execGroup writes rows of one partition: one statement as it is, more as
// an unlogged batch, which is atomic and isolated within a partition.
func (s *Store) execGroup(ctx context.Context, ws []write) error {
	if len(ws) == 1 {
		return s.exec(ctx, ws[0].st, ws[0].args...)
	}
	b := s.sess.Batch(gocql.UnloggedBatch).WithContext(ctx)
	b.Entries = make([]gocql.BatchEntry, 0, len(ws))
	for _, w := range ws {
		b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: w.st.cql, Args: w.args, Idempotent: true})
	}
	return b.Exec()
}

// query prepares a statement: every statement of the store may be retried
// (writes are idempotent) and reads are paged.
func (s *Store) query(ctx context.Context, st statement) *gocqlx.Queryx {
	return s.sess.ContextQuery(ctx, st.cql, st.names).Idempotent(true).PageSize(pageSize)
}

// exec runs one idempotent write.
func (s *Store) exec(ctx context.Context, st statement, args ...any) error {
	return s.query(ctx, st).Bind(args...).ExecRelease()
}

// timestamp binds t, the zero time as null.
func timestamp(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// runBounded runs the jobs with at most limit at a time and returns the
// first error; the first error cancels the context of the others.
func runBounded(ctx context.Context, limit int, jobs []func(context.Context) error) error {
	switch len(jobs) {
	case 0:
		return ctx.Err()
	case 1:
		return jobs[0](ctx)
	}
	jctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, limit)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	launched := 0
launch:
	for _, job := range jobs {
		select {
		case sem <- struct{}{}:
		case <-jctx.Done():
			break launch
		}
		launched++
		wg.Go(func() {
			defer func() { <-sem }()
			if err := job(jctx); err != nil {
				once.Do(func() {
					first = err
					cancel()
				})
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	if launched < len(jobs) {
		return ctx.Err()
	}
	return nil
}
