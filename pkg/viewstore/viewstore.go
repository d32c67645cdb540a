// Package viewstore defines the read-model storage port that projections
// write and InsightsService reads, and the records it holds. The embedded
// Pebble store and the ScyllaDB store implement Store; viewstoretest is the
// conformance suite both pass.
//
// # The read model
//
// Read models are partial aggregates (pkg/block encodes them), stored in
// two kinds of rows:
//
//   - An Addition is what one checkpoint of one log partition added to one
//     property's hour: the counters and sketches of the events applied
//     since the partition's previous checkpoint, and nothing older. It is
//     written once and never read back by the projection. Its key is the
//     property, the hour, the log partition and the first offset of the
//     checkpoint's range (Start), so writing the checkpoint again after a
//     crash overwrites it instead of adding to it.
//   - A Block is the merge of many additions of a property's hour or UTC
//     day, written by the compactor. Cover says which additions it holds:
//     for each log partition, every addition of that partition with
//     End <= Cover[partition].
//
// Both are stored per series (SeriesOf): a property's part of the read
// model, the sections of one rollup. A checkpoint writes one row per
// series and hour it touched (the rows of a property share a store
// partition, so that costs little more than one row), and a report reads
// the rows of the one rollup it needs: never the bytes of the others.
//
// A reader adds up, for a period, the block that covers it and the
// additions of its hours that the block does not cover and that committed
// progress does (Start >= the block's cover and End <= Progress.Next of
// their partition): additions past committed progress belong to a
// checkpoint that may still fail and be written again.
//
// # Exactly once
//
// A partition's progress is committed after its additions, so a checkpoint
// that failed half way leaves additions past progress. Stores that cannot
// commit atomically first record the checkpoint's end as the progress's
// Intent; a projector that finds Intent > Next applies the log from Next and
// checkpoints exactly at Intent again, rewriting the same additions (same
// keys, same content), before it may checkpoint anywhere else.
package viewstore

import (
	"context"
	"errors"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/sextant-analytics/sextant/pkg/apierror"
)

// ErrNotFound is returned when a requested row does not exist.
var ErrNotFound = errors.New("viewstore: not found")

// ErrUnavailable is in the chain of a store's errors that come from the
// store being unreachable or overloaded (no host answers, a request timed
// out): the same call may succeed later. It is a domain error, so clients
// get UNAVAILABLE (HTTP 503) with a retry delay, not an internal error.
var ErrUnavailable = &apierror.Error{
	Kind:       apierror.Unavailable,
	Message:    "the view store is unavailable; retry later",
	RetryAfter: time.Second,
}

// Addition is what one checkpoint of one log partition added to one
// property's hour (see the package documentation).
type Addition struct {
	Property  string // the series (SeriesOf)
	Hour      int64  // Unix seconds of the UTC hour's start
	Partition int32
	// Start and End are the offsets of the checkpoint's range of the log
	// partition: [Start, End). End is the partition's Progress.Next as
	// committed by the checkpoint.
	Start, End int64
	Block      []byte // pkg/block encoding
}

// Kind is a block's period.
type Kind uint8

const (
	HourBlock Kind = 1
	DayBlock  Kind = 2
)

// Seconds is the width of the kind's period.
func (k Kind) Seconds() int64 {
	if k == DayBlock {
		return 86400
	}
	return 3600
}

// SeriesOf names the rows of part part (a rollup of the projection's
// layout) of a property's read model: the Property of its additions and
// blocks. Property ids never hold a NUL byte.
func SeriesOf(property string, part int) string {
	return property + "\x00" + strconv.Itoa(part)
}

// ParseSeries splits a series into its property and part.
func ParseSeries(series string) (property string, part int, ok bool) {
	i := strings.LastIndexByte(series, 0)
	if i < 0 {
		return "", 0, false
	}
	part, err := strconv.Atoi(series[i+1:])
	return series[:i], part, err == nil && part >= 0
}

// Block is the merged additions of one property's hour or UTC day.
type Block struct {
	Property string // the series (SeriesOf)
	Kind     Kind
	Bucket   int64 // Unix seconds of the period's start, UTC
	// Cover holds, by log partition (the index), the End of the newest
	// addition of that partition merged in: the block holds every
	// addition of the partition with End <= Cover[p], and none after it.
	// Partitions past the slice's end are 0 (none merged).
	Cover []int64
	Data  []byte // pkg/block encoding
}

// Covered is Cover[p], or 0 past the slice.
func (b *Block) Covered(p int32) int64 {
	if int(p) < len(b.Cover) && p >= 0 {
		return b.Cover[p]
	}
	return 0
}

// PendingKey names a stored addition without its data: what the compactor
// lists to find its work.
type PendingKey struct {
	Property   string // the series (SeriesOf)
	Hour       int64
	Partition  int32
	Start, End int64
	// Bytes is the size of its block (0 where the store does not know:
	// additions a Cassandra keyspace held before it recorded sizes).
	Bytes int
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

// Progress is a partition's position and counters, committed after
// everything derived from the partition.
type Progress struct {
	Partition  int32
	Next       int64 // next offset to apply
	Applied    int64 // events applied in total
	Duplicates int64 // events dropped as duplicates in total
	Excluded   int64 // events deliberately not counted (e.g. bots), in total
	Watermark  time.Time
	// Intent is the Next of a checkpoint that was being written when the
	// partition last stopped, when larger than Next (see the package
	// documentation); 0 otherwise. Stores set it; Commit ignores it.
	Intent int64
}

// Checkpoint is one commit of a partition: its new progress, the additions
// of the events applied since the last checkpoint, the state entries that
// changed, and the watermarks of the properties it touched. Every addition
// has End == Progress.Next and Partition == Progress.Partition.
type Checkpoint struct {
	Progress   Progress
	Additions  []Addition
	State      []KV
	Watermarks []Watermark
}

// Namespace separates projection versions, for example "traffic/v1".
type Namespace string

// Shards is the number of compaction shards of a namespace: the pending
// additions of a property are listed by its shard (ShardOf), and each
// shard is compacted by one projection process at a time.
const Shards = 64

// ShardOf is the compaction shard of a property or series.
func ShardOf(property string) int {
	h := fnv.New32a()
	h.Write([]byte(property))
	return int(h.Sum32() % Shards)
}

// Store is the whole port.
type Store interface {
	// Commit writes a checkpoint: its additions, then its state and
	// watermarks, then its progress, so that committed progress implies
	// the rest is stored. A store that cannot write it atomically first
	// records the progress's Intent (see the package documentation).
	// The store does not keep the checkpoint's slices after it returns
	// (the projection reuses their memory).
	Commit(ctx context.Context, ns Namespace, cp Checkpoint) error
	// LoadPartition returns the partition's progress (zero when never
	// committed) and its state entries.
	LoadPartition(ctx context.Context, ns Namespace, p int32) (Progress, []KV, error)
	// ListProgress returns the progress of every committed partition.
	ListProgress(ctx context.Context, ns Namespace) ([]Progress, error)

	// ScanAdditions calls fn for every stored addition of property whose
	// hour lies in [from, to), in hour order (within an hour, in no
	// particular order), committed or not.
	ScanAdditions(ctx context.Context, ns Namespace, property string, from, to int64, fn func(Addition) error) error
	// ScanBlocks calls fn for every block of property and kind whose
	// bucket lies in [from, to), in bucket order.
	ScanBlocks(ctx context.Context, ns Namespace, property string, k Kind, from, to int64, fn func(Block) error) error
	// ListPending calls fn for every stored addition of the properties of
	// compaction shard, without its data, in no particular order.
	ListPending(ctx context.Context, ns Namespace, shard int, fn func(PendingKey) error) error
	// PutBlock writes a block, replacing the one of its property, kind and
	// bucket.
	PutBlock(ctx context.Context, ns Namespace, b Block) error
	// DeleteAdditions deletes the additions of property, hour and log
	// partition part whose Start is below before.
	DeleteAdditions(ctx context.Context, ns Namespace, property string, hour int64, part int32, before int64) error

	// Watermarks returns the property's watermarks, one per partition.
	Watermarks(ctx context.Context, ns Namespace, property string) ([]Watermark, error)
	// DropNamespace deletes everything of a namespace: additions, blocks,
	// progress, state and watermarks. Dropping an empty namespace is no
	// error, and the namespace can be committed to again afterwards. It
	// is an administrative operation: nothing may commit to ns while it
	// runs (a racing commit may leave part of itself behind), and when it
	// fails it may have deleted part of the namespace (run it again).
	DropNamespace(ctx context.Context, ns Namespace) error
	Close() error
}

// NamespaceOf names the read model of a projection version.
func NamespaceOf(projection, version string) Namespace {
	return Namespace(projection + "/" + version)
}

// Probe reports whether store answers a read, for readiness (a missing
// row is an answer).
func Probe(ctx context.Context, store interface {
	Get(ctx context.Context, key []byte) ([]byte, error)
}) error {
	_, err := store.Get(ctx, []byte("readyz"))
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}
