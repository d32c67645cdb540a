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

// Commit writes the checkpoint in four steps, each only after the one
// before succeeded: the progress row's intent (when the checkpoint has
// additions or state); the additions; the state changes and the
// watermarks; the progress row, with its intent reset. Within a step the
// writes run concurrently, in single-partition batches. Commit is not
// atomic; the package documentation says why it need not be. When it
// returns nil, everything it wrote is readable. When it returns an error,
// part of the checkpoint may have been written, never the progress, and
// LoadPartition reports the checkpoint's end as Progress.Intent.
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
		return fmt.Errorf("cqlstore: commit partition %d of %q: %w", p, ns, unavailable(err))
	}
	pr := &cp.Progress

	// 0. The intent: from here until step 3, a failure leaves rows past
	// the progress, and the intent tells the projector where its next
	// checkpoint must end to rewrite them all.
	if len(cp.Additions) > 0 || len(cp.State) > 0 {
		if err := s.exec(ctx, updateIntent, pr.Next, string(ns), p); err != nil {
			return fmt.Errorf("cqlstore: commit intent of partition %d of %q: %w", p, ns, unavailable(err))
		}
	}
	if err := s.step(1); err != nil {
		return fmt.Errorf("cqlstore: commit partition %d of %q: %w", p, ns, unavailable(err))
	}
	// 1. Additions.
	if err := s.execGroups(ctx, appendAdditionWrites(nil, ns, cp.Additions)); err != nil {
		return fmt.Errorf("cqlstore: commit additions of partition %d of %q: %w", p, ns, unavailable(err))
	}
	if err := s.step(2); err != nil {
		return fmt.Errorf("cqlstore: commit partition %d of %q: %w", p, ns, unavailable(err))
	}
	// 2. State and watermarks.
	var groups [][]write
	groups = appendStateWrites(groups, ns, p, cp.State)
	groups = appendWatermarkWrites(groups, ns, cp.Watermarks)
	if err := s.execGroups(ctx, groups); err != nil {
		return fmt.Errorf("cqlstore: commit state of partition %d of %q: %w", p, ns, unavailable(err))
	}
	if err := s.step(3); err != nil {
		return fmt.Errorf("cqlstore: commit partition %d of %q: %w", p, ns, unavailable(err))
	}
	// 3. Progress, now that everything it stands for is stored; intent 0
	// (not null, which would cost a tombstone).
	if err := s.exec(ctx, insertProgress, string(ns), p, pr.Next, pr.Applied, pr.Duplicates, pr.Excluded, timestamp(pr.Watermark), int64(0)); err != nil {
		return fmt.Errorf("cqlstore: commit progress of partition %d of %q: %w", p, ns, unavailable(err))
	}
	return nil
}

// step runs the test hook before commit step n.
func (s *Store) step(n int) error {
	if s.commitHook == nil {
		return nil
	}
	return s.commitHook(n)
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
// written. State keys are blobs and may hold any bytes.
func checkText(ns viewstore.Namespace, cp *viewstore.Checkpoint) error {
	if !utf8.ValidString(string(ns)) {
		return errors.New("namespace is not valid UTF-8")
	}
	for i := range cp.Additions {
		if !utf8.ValidString(cp.Additions[i].Property) {
			return fmt.Errorf("property %q is not valid UTF-8", cp.Additions[i].Property)
		}
	}
	for i := range cp.Watermarks {
		if !utf8.ValidString(cp.Watermarks[i].Property) {
			return fmt.Errorf("property %q is not valid UTF-8", cp.Watermarks[i].Property)
		}
	}
	return nil
}

// appendAdditionWrites groups the additions by CQL partition (namespace
// and shard) into chunks of batch size; an addition larger than a batch
// goes alone. An addition given twice is written once, with its last data
// (one batch gives all its rows the same timestamp, so the order inside
// it would not decide).
func appendAdditionWrites(groups [][]write, ns viewstore.Namespace, adds []viewstore.Addition) [][]write {
	if len(adds) == 0 {
		return groups
	}
	type key struct {
		property string
		hour     int64
		part     int32
		start    int64
	}
	last := make(map[key]int, len(adds))
	for i := range adds {
		a := &adds[i]
		last[key{a.Property, a.Hour, a.Partition, a.Start}] = i
	}
	var shards [viewstore.Shards][]write
	for i := range adds {
		a := &adds[i]
		if last[key{a.Property, a.Hour, a.Partition, a.Start}] != i {
			continue
		}
		sh := viewstore.ShardOf(a.Property)
		if len(a.Block) > chunkSize {
			// Each chunk is a write of its own; the row holds their count.
			// Progress is written after every group, so no reader counts
			// the row before its chunks are stored.
			chunks := chunksOf(a.Block)
			for i, c := range chunks {
				groups = append(groups, []write{{st: insertAdditionChunk,
					args: []any{string(ns), int32(sh), a.Property, a.Hour, a.Partition, a.Start, int32(i), c},
					size: rowOverhead + len(ns) + len(a.Property) + len(c)}})
			}
			shards[sh] = append(shards[sh], write{
				st:   insertAddition,
				args: []any{string(ns), int32(sh), a.Property, a.Hour, a.Partition, a.Start, a.End, []byte{}, int32(len(a.Block)), int32(len(chunks))},
				size: rowOverhead + len(ns) + len(a.Property),
			})
			continue
		}
		shards[sh] = append(shards[sh], write{
			st:   insertAddition,
			args: []any{string(ns), int32(sh), a.Property, a.Hour, a.Partition, a.Start, a.End, nonNil(a.Block), int32(len(a.Block)), int32(0)},
			size: rowOverhead + len(ns) + len(a.Property) + len(a.Block),
		})
	}
	for _, ws := range shards {
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
	if err := viewstore.CheckFence(ctx); err != nil {
		return err
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
	if err := viewstore.CheckFence(ctx); err != nil {
		return err
	}
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
