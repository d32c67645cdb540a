// Package viewstore defines the read-model storage port that projections
// write and InsightsService reads, and the records it holds. The embedded
// Pebble store and the ScyllaDB store implement Store; viewstoretest is the
// conformance suite both pass.
//
// Every row a projection writes belongs to one log partition and holds an
// absolute value, never an increment, and a partition's rows are committed
// together with that partition's next offset. Redelivery and replay therefore
// never double count.
package viewstore

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned when a requested row does not exist.
var ErrNotFound = errors.New("viewstore: not found")

// Grain is the width of a cell's time bucket, in its two low bits, and the
// rollup the cell belongs to (analytics.RollupID), in the others: the
// stores keep it as one opaque small number, so every rollup of every
// width is scanned on its own.
type Grain uint8

const (
	Minute Grain = 1
	Hour   Grain = 2
)

// Time is the grain's time width alone, Minute or Hour.
func (g Grain) Time() Grain { return g & 3 }

// Rollup is the rollup number the grain carries (0 for whole tuples).
func (g Grain) Rollup() uint8 { return uint8(g >> 2) }

// WithRollup returns the time width of g with rollup r. r must be below 32.
func (g Grain) WithRollup(r uint8) Grain { return g.Time() | Grain(r)<<2 }

// Seconds is the width of the grain in seconds.
func (g Grain) Seconds() int64 {
	if g.Time() == Minute {
		return 60
	}
	return 3600
}

// Cell is one aggregate: a property, a time bucket, a dimension tuple and
// the log partition whose events it summarises.
type Cell struct {
	Property  string
	Grain     Grain
	Bucket    int64 // Unix seconds of the bucket's start, UTC
	Dims      string
	Partition int32
	Value     []byte
	// Offset is the log offset of the partition's newest event reflected
	// in Value. A projection resuming from an older checkpoint skips
	// events at or below it, so cells are idempotent row by row even
	// where a store cannot commit a checkpoint atomically.
	Offset int64
}

// KV is one entry of a partition's private state (open sessions, recently
// seen event ids). Delete removes it.
type KV struct {
	Key    string
	Value  []byte
	Delete bool
}

// Watermark records, per property and partition, how far the projection
// has applied that partition's events for the property.
type Watermark struct {
	Property  string
	Partition int32
	// Receive time of the newest event of the property applied.
	Time time.Time
	// Next offset of the partition at the time of the commit.
	Offset int64
}

// Progress is a partition's position and counters, committed atomically
// with everything derived from the partition.
type Progress struct {
	Partition  int32
	Next       int64 // next offset to apply
	Applied    int64 // events applied in total
	Duplicates int64 // events dropped as duplicates in total
	Excluded   int64 // events deliberately not counted (e.g. bots), in total
	Watermark  time.Time
}

// Checkpoint is one atomic commit of a partition: its new progress, the
// cells and state entries that changed since the last checkpoint, and the
// watermarks of the properties it touched.
type Checkpoint struct {
	Progress   Progress
	Cells      []Cell
	State      []KV
	Watermarks []Watermark
}

// Namespace separates projection versions, for example "traffic/v1".
type Namespace string

// Store is the whole port.
type Store interface {
	// Commit writes a checkpoint atomically: all of it or none of it.
	// The store does not keep the checkpoint's slices after it returns
	// (the projection reuses their memory).
	Commit(ctx context.Context, ns Namespace, cp Checkpoint) error
	// LoadPartition returns the partition's progress (zero when never
	// committed) and its state entries.
	LoadPartition(ctx context.Context, ns Namespace, p int32) (Progress, []KV, error)
	// ListProgress returns the progress of every committed partition.
	ListProgress(ctx context.Context, ns Namespace) ([]Progress, error)
	// ScanCells calls fn for every cell of property and grain whose bucket
	// lies in [from, to), in bucket order.
	ScanCells(ctx context.Context, ns Namespace, property string, g Grain, from, to int64, fn func(Cell) error) error
	// LoadBucket calls fn for the cells of one bucket that log partition
	// part wrote, in no particular order: what a projection partition
	// reads back after evicting the bucket from memory.
	LoadBucket(ctx context.Context, ns Namespace, property string, g Grain, bucket int64, part int32, fn func(Cell) error) error
	// Watermarks returns the property's watermarks, one per partition.
	Watermarks(ctx context.Context, ns Namespace, property string) ([]Watermark, error)
	// DropNamespace deletes everything of a namespace: cells, progress, state and watermarks.
	// Dropping an empty namespace is no error, and the namespace can be
	// committed to again afterwards. It is an administrative operation:
	// nothing may commit to ns while it runs (a racing commit may leave
	// part of itself behind), and when it fails it may have deleted part
	// of the namespace (run it again).
	DropNamespace(ctx context.Context, ns Namespace) error
	Close() error
}

// NamespaceOf names the read model of a projection version.
func NamespaceOf(projection, version string) Namespace {
	return Namespace(projection + "/" + version)
}
