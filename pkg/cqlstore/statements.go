package cqlstore

import (
	"encoding/binary"
	"errors"

	"github.com/cespare/xxhash/v2"
	"github.com/scylladb/gocqlx/v2/qb"

	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

// The statements, built once. The driver prepares each on first use and
// caches it per session; values are bound positionally in the order of
// the columns and conditions below.
var (
	// ns, shard, property, hour, part, start, end_offset, data, bytes, chunks
	insertAddition = build(qb.Insert("additions").Columns("ns", "shard", "property", "hour", "part", "start", "end_offset", "data", "bytes", "chunks"))
	// ns, shard, property, from, to
	selectAdditions = build(qb.Select("additions").Columns("hour", "part", "start", "end_offset", "data", "chunks").
			Where(qb.Eq("ns"), qb.Eq("shard"), qb.Eq("property"), qb.GtOrEq("hour"), qb.Lt("hour")))
	// ns, shard
	selectPending = build(qb.Select("additions").Columns("property", "hour", "part", "start", "end_offset", "bytes").
			Where(qb.Eq("ns"), qb.Eq("shard")))
	// ns, shard, property, hour, part, before: one range tombstone.
	deleteAdditions = build(qb.Delete("additions").
			Where(qb.Eq("ns"), qb.Eq("shard"), qb.Eq("property"), qb.Eq("hour"), qb.Eq("part"), qb.Lt("start")))
	// ns, shard
	deleteAdditionsShard = build(qb.Delete("additions").Where(qb.Eq("ns"), qb.Eq("shard")))
	// ns, shard, property, hour, part, start, chunk, data
	insertAdditionChunk = build(qb.Insert("addition_chunks").Columns("ns", "shard", "property", "hour", "part", "start", "chunk", "data"))
	// ns, shard, property, hour, part, start
	selectAdditionChunks = build(qb.Select("addition_chunks").Columns("chunk", "data").
				Where(qb.Eq("ns"), qb.Eq("shard"), qb.Eq("property"), qb.Eq("hour"), qb.Eq("part"), qb.Eq("start")))
	// ns, shard, property, hour, part, before: one range tombstone.
	deleteAdditionChunks = build(qb.Delete("addition_chunks").
				Where(qb.Eq("ns"), qb.Eq("shard"), qb.Eq("property"), qb.Eq("hour"), qb.Eq("part"), qb.Lt("start")))
	// ns, shard
	deleteAdditionChunksShard = build(qb.Delete("addition_chunks").Where(qb.Eq("ns"), qb.Eq("shard")))

	// ns, property, kind, slot, bucket, cover, data, chunks, version
	insertBlock = build(qb.Insert("blocks").Columns("ns", "property", "kind", "slot", "bucket", "cover", "data", "chunks", "version"))
	// ns, property, kind, slot, from, to
	selectBlocks = build(qb.Select("blocks").Columns("bucket", "cover", "data", "chunks", "version").
			Where(qb.Eq("ns"), qb.Eq("property"), qb.Eq("kind"), qb.Eq("slot"), qb.GtOrEq("bucket"), qb.Lt("bucket")))
	// ns, property, kind, slot
	deleteBlocks = build(qb.Delete("blocks").Where(qb.Eq("ns"), qb.Eq("property"), qb.Eq("kind"), qb.Eq("slot")))
	// ns, property, kind, slot, bucket
	selectBlock = build(qb.Select("blocks").Columns("cover", "data", "chunks", "version").
			Where(qb.Eq("ns"), qb.Eq("property"), qb.Eq("kind"), qb.Eq("slot"), qb.Eq("bucket")))
	// ns, property, kind, slot, bucket, version, chunk, data
	insertBlockChunk = build(qb.Insert("block_chunks").Columns("ns", "property", "kind", "slot", "bucket", "version", "chunk", "data"))
	// ns, property, kind, slot, bucket, version
	selectBlockChunks = build(qb.Select("block_chunks").Columns("chunk", "data").
				Where(qb.Eq("ns"), qb.Eq("property"), qb.Eq("kind"), qb.Eq("slot"), qb.Eq("bucket"), qb.Eq("version")))
	// ns, property, kind, slot, bucket, before: the versions older than before.
	deleteBlockChunks = build(qb.Delete("block_chunks").
				Where(qb.Eq("ns"), qb.Eq("property"), qb.Eq("kind"), qb.Eq("slot"), qb.Eq("bucket"), qb.Lt("version")))
	// ns, property, kind, slot
	deleteBlockChunksSlot = build(qb.Delete("block_chunks").Where(qb.Eq("ns"), qb.Eq("property"), qb.Eq("kind"), qb.Eq("slot")))
	// ns, property, kind, slot
	insertBlockSlot = build(qb.Insert("block_slots").Columns("ns", "property", "kind", "slot"))
	// ns, property, kind, first, last (inclusive)
	selectBlockSlots = build(qb.Select("block_slots").Columns("slot").
				Where(qb.Eq("ns"), qb.Eq("property"), qb.Eq("kind"), qb.GtOrEq("slot"), qb.LtOrEq("slot")))
	// ns
	listBlockSlots = build(qb.Select("block_slots").Columns("property", "kind", "slot").Where(qb.Eq("ns")))
	// ns
	deleteBlockSlots = build(qb.Delete("block_slots").Where(qb.Eq("ns")))

	// ns, part, next, applied, duplicates, excluded, watermark, intent
	insertProgress = build(qb.Insert("progress").Columns("ns", "part", "next", "applied", "duplicates", "excluded", "watermark", "intent"))
	// intent, ns, part: the row's other columns stay as they are.
	updateIntent = build(qb.Update("progress").Set("intent").Where(qb.Eq("ns"), qb.Eq("part")))
	// ns, part
	selectProgress = build(qb.Select("progress").Columns("next", "applied", "duplicates", "excluded", "watermark", "intent").
			Where(qb.Eq("ns"), qb.Eq("part")))
	// ns
	listProgress = build(qb.Select("progress").Columns("part", "next", "applied", "duplicates", "excluded", "watermark", "intent").
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

// slotSpan is the time a block partition covers: 30 days of hour blocks
// (720 rows at most), 366 days of day blocks (366 rows at most).
func slotSpan(k viewstore.Kind) int64 {
	if k == viewstore.DayBlock {
		return 366 * 86400
	}
	return 30 * 86400
}

// slotOf is the slot of the block partition a bucket belongs to.
func slotOf(k viewstore.Kind, bucket int64) int64 {
	return floorDiv(bucket, slotSpan(k))
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

// encodeCover encodes a block's cover as zigzag varints (one or two bytes
// for small offsets, at most ten).
func encodeCover(cover []int64) []byte {
	out := make([]byte, 0, 4*len(cover))
	for _, c := range cover {
		out = binary.AppendVarint(out, c)
	}
	return out
}

func decodeCover(b []byte) ([]int64, error) {
	var out []int64
	for len(b) > 0 {
		v, n := binary.Varint(b)
		if n <= 0 {
			return nil, errors.New("corrupt cover")
		}
		out = append(out, v)
		b = b[n:]
	}
	return out, nil
}
