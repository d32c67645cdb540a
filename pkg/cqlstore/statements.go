package cqlstore

import (
	"github.com/cespare/xxhash/v2"
	"github.com/scylladb/gocqlx/v2/qb"

	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

// The statements, built once. The driver prepares each on first use and
// caches it per session; values are bound positionally in the order of
// the columns and conditions below.
var (
	// ns, property, grain, slot, bucket, dims, part, last_offset, value
	insertCell = build(qb.Insert("cells").Columns("ns", "property", "grain", "slot", "bucket", "dims", "part", "last_offset", "value"))
	// ns, property, grain, slot, from, to
	selectCells = build(qb.Select("cells").Columns("bucket", "dims", "part", "last_offset", "value").
			Where(qb.Eq("ns"), qb.Eq("property"), qb.Eq("grain"), qb.Eq("slot"), qb.GtOrEq("bucket"), qb.Lt("bucket")))

	// ns, property, grain, slot, bucket, part: one log partition's cells
	// of one bucket. The partition (a clustering column after dims) is
	// filtered by the node holding the CQL partition, which reads the
	// bucket's rows but returns only the log partition's.
	selectPartitionCells = build(qb.Select("cells").Columns("bucket", "dims", "part", "last_offset", "value").
				Where(qb.Eq("ns"), qb.Eq("property"), qb.Eq("grain"), qb.Eq("slot"), qb.Eq("bucket"), qb.Eq("part")).AllowFiltering())

	// ns, part, next, applied, duplicates, excluded, watermark
	insertProgress = build(qb.Insert("progress").Columns("ns", "part", "next", "applied", "duplicates", "excluded", "watermark"))
	// ns, part
	selectProgress = build(qb.Select("progress").Columns("next", "applied", "duplicates", "excluded", "watermark").
			Where(qb.Eq("ns"), qb.Eq("part")))
	// ns
	listProgress = build(qb.Select("progress").Columns("part", "next", "applied", "duplicates", "excluded", "watermark").
			Where(qb.Eq("ns")))
	// ns
	deleteProgress = build(qb.Delete("progress").Where(qb.Eq("ns")))

	// ns, part, shard, skey, value
	insertState = build(qb.Insert("partition_state").Columns("ns", "part", "shard", "skey", "value"))
	// ns, part, shard, skey
	deleteState = build(qb.Delete("partition_state").Where(qb.Eq("ns"), qb.Eq("part"), qb.Eq("shard"), qb.Eq("skey")))
	// ns, part, shard
	selectState = build(qb.Select("partition_state").Columns("skey", "value").Where(qb.Eq("ns"), qb.Eq("part"), qb.Eq("shard")))

	// Partition keys of whole tables (DropNamespace), and deletes of one
	// partition.
	distinctCells      = build(qb.Select("cells").Distinct("ns", "property", "grain", "slot"))
	deleteCells        = build(qb.Delete("cells").Where(qb.Eq("ns"), qb.Eq("property"), qb.Eq("grain"), qb.Eq("slot")))
	distinctState      = build(qb.Select("partition_state").Distinct("ns", "part", "shard"))
	deleteStateShard   = build(qb.Delete("partition_state").Where(qb.Eq("ns"), qb.Eq("part"), qb.Eq("shard")))
	distinctWatermarks = build(qb.Select("watermarks").Distinct("ns", "property"))
	deleteWatermarks   = build(qb.Delete("watermarks").Where(qb.Eq("ns"), qb.Eq("property")))

	// ns, property, part, received, next
	insertWatermark = build(qb.Insert("watermarks").Columns("ns", "property", "part", "received", "next"))
	// ns, property
	selectWatermarks = build(qb.Select("watermarks").Columns("part", "received", "next").Where(qb.Eq("ns"), qb.Eq("property")))

	// kind, mkey, value
	insertMeta = build(qb.Insert("meta").Columns("kind", "mkey", "value"))
	// kind, mkey
	deleteMeta = build(qb.Delete("meta").Where(qb.Eq("kind"), qb.Eq("mkey")))
	// kind, mkey
	selectMeta = build(qb.Select("meta").Columns("value").Where(qb.Eq("kind"), qb.Eq("mkey")))
	// kind, from (inclusive)
	scanMetaFrom = build(qb.Select("meta").Columns("mkey", "value").Where(qb.Eq("kind"), qb.GtOrEq("mkey")))
	// kind, from (inclusive), to (exclusive)
	scanMetaRange = build(qb.Select("meta").Columns("mkey", "value").Where(qb.Eq("kind"), qb.GtOrEq("mkey"), qb.Lt("mkey")))
	// (whole table)
	scanMetaAll = build(qb.Select("meta").Columns("mkey", "value"))
)

// statement is a CQL statement and the names of its bind markers.
type statement struct {
	cql   string
	names []string
}

func build(b interface{ ToCql() (string, []string) }) statement {
	cql, names := b.ToCql()
	return statement{cql, names}
}

// slotSpan is the time a cell partition covers: an hour of minute cells
// (at most 60 buckets), a day of hour cells (24 buckets).
func slotSpan(g viewstore.Grain) int64 {
	if g.Time() == viewstore.Minute {
		return 3600
	}
	return 86400
}

// slotOf is the slot of the cell partition a bucket belongs to.
func slotOf(g viewstore.Grain, bucket int64) int64 {
	return floorDiv(bucket, slotSpan(g))
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// stateShards is how many CQL partitions hold the state of one log
// partition. It is part of the schema: changing it needs a migration.
const stateShards = 16

// stateShard is the shard of a state key.
func stateShard(key string) int32 {
	return int32(xxhash.Sum64String(key) % stateShards)
}

// nonNil makes an absent value an empty one: binding nil writes a null,
// which costs a tombstone.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
