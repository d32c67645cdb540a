// Package eventlog defines the records of the partitioned, append-only event
// log that is Sextant's source of truth, and the ports its adapters (the
// embedded Pebble log, Kafka) implement. Consumers declare the narrower
// interfaces they need; Log is the whole contract the conformance suite in
// eventlogtest checks.
package eventlog

import (
	"context"
	"errors"
	"hash/fnv"
	"time"
)

// Message is what a producer appends. Key decides the partition.
type Message struct {
	Key     []byte
	Value   []byte
	Headers map[string]string
}

// Record is a message as stored, with its position in the log.
type Record struct {
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   map[string]string
	// Time the log accepted the record.
	Timestamp time.Time
}

// Header names carried by every event record, and their values.
const (
	HeaderSchemaVersion = "sextant-schema-version"
	HeaderContentType   = "content-type"
	ContentTypeEvent    = "application/x-protobuf; messageType=sextant.event.v1.Event"
	// SchemaVersion1 is the HeaderSchemaVersion of a record that holds a
	// sextant.event.v1.Event (ContentTypeEvent, or sealed: package seal's
	// content type): the only version so far. A record without the header
	// is read as this version.
	SchemaVersion1 = "1"
)

// ErrClosed is returned by operations on a closed log.
var ErrClosed = errors.New("eventlog: closed")

// Appender appends messages durably: when Append returns nil, every message
// is stored and survives a crash; when it returns an error, the caller must
// assume none was acknowledged (it may retry; consumers dedupe by event id).
type Appender interface {
	Append(ctx context.Context, msgs []Message) error
}

// Reader reads one partition from an offset.
type Reader interface {
	// Partitions lists the log's partitions.
	Partitions(ctx context.Context) ([]int32, error)
	// Read returns up to max records of partition p starting at offset.
	// It waits until at least one record is available or ctx is done, in
	// which case it returns ctx.Err().
	Read(ctx context.Context, p int32, offset int64, max int) ([]Record, error)
	// EndOffset returns the offset the next appended record of p will get.
	EndOffset(ctx context.Context, p int32) (int64, error)
}

// Assigner hands partitions to a consumer group member. Run calls claim
// once per partition assigned to this member, each in its own goroutine;
// claim's context is cancelled when the partition is revoked or ctx ends.
// Run returns when ctx is done.
type Assigner interface {
	Run(ctx context.Context, group string, claim func(ctx context.Context, p int32) error) error
}

// Committer records a consumer group's progress. Projections store their
// offsets with their derived state; the committed offset is the log-side
// copy that tools (lag monitors, Kafka's own) read.
type Committer interface {
	Commit(ctx context.Context, group string, p int32, next int64) error
	Committed(ctx context.Context, group string, p int32) (int64, error)
}

// TimeIndex finds where a partition's records reach a time.
type TimeIndex interface {
	// OffsetForTime returns the offset of the first record of p whose Timestamp is at or after t, or the end offset when there is none.
	OffsetForTime(ctx context.Context, p int32, t time.Time) (int64, error)
}

// Log is the whole port.
type Log interface {
	Appender
	Reader
	Assigner
	Committer
	TimeIndex
	Close() error
}

// PartitionFor maps a key to one of n partitions (FNV-1a, stable across
// processes and adapters, so one visitor's events keep their order).
func PartitionFor(key []byte, n int) int32 {
	h := fnv.New32a()
	h.Write(key)
	return int32(h.Sum32() % uint32(n))
}
