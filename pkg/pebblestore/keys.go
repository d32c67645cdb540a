package pebblestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

// Key layout
//
// Every key starts with a one-byte tag:
//
//	'V'                                       layout version (value: one byte)
//	'M' key                                   meta entries (Get, Put, Scan)
//	'N' esc(ns) kind ...                      projection data of namespace ns
//
// Projection data, after 'N' esc(ns):
//
//	'p' part                                  Progress of partition
//	's' part key                              state entry of partition (key raw)
//	'w' esc(property) part                    Watermark
//	'a' shard esc(property) hour part start   Addition (value: see below)
//	'b' esc(property) kind bucket             Block (value: see below)
//
// part is the int32 partition; hour, start and bucket are int64s; all
// big-endian with the sign bit flipped so that byte order equals numeric
// order. shard (viewstore.ShardOf of the property) and kind are one byte.
// The additions of one compaction shard are one prefix (ListPending is one
// prefix scan), and those of one property are sorted by hour within it
// (ScanAdditions is one bounded iterator, DeleteAdditions one range
// deletion);
// the blocks of one property and kind are sorted by bucket (ScanBlocks is
// one bounded iterator).
//
// esc(s) writes s with every 0x00 byte replaced by 0x00 0xFF and appends the
// terminator 0x00 0x01. The encoding is prefix-free (no esc(a) is a proper
// prefix of esc(b)) and order-preserving, so variable-length parts never
// collide ("a" and "a\x00b" are distinct, and the rows of property "a" are
// a contiguous range that holds no row of property "ab" or "a\x00b").
//
// Layout version 1 held absolute cells ('c') instead of additions and
// blocks. Open deletes the projection data of such a store (every 'N' key)
// and keeps its meta entries: the projections rebuild their read models
// from the log.
const (
	tagVersion = 'V'
	tagMeta    = 'M'
	tagData    = 'N'

	kindProgress  = 'p'
	kindState     = 's'
	kindWatermark = 'w'
	kindAddition  = 'a'
	kindBlock     = 'b'

	escByte    = 0x00
	escEscaped = 0xFF
	escTerm    = 0x01

	layoutVersion = 2
	layoutV1      = 1 // cells
)

var errCorrupt = errors.New("pebblestore: corrupt record")

// appendEscaped appends esc(s).
func appendEscaped(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == escByte {
			dst = append(dst, escByte, escEscaped)
			continue
		}
		dst = append(dst, c)
	}
	return append(dst, escByte, escTerm)
}

// readEscaped decodes an esc(s) at the start of b and returns s and the rest.
func readEscaped(b []byte) (string, []byte, error) {
	raw, rest, err := readEscapedBytes(b)
	return string(raw), rest, err
}

// readEscapedBytes is readEscaped returning bytes: a subslice of b when s
// has no 0x00 byte, else a new slice.
func readEscapedBytes(b []byte) ([]byte, []byte, error) {
	for i := 0; i < len(b); i++ {
		if b[i] != escByte {
			continue
		}
		if i+1 >= len(b) {
			return nil, nil, errCorrupt
		}
		if b[i+1] == escTerm { // fast path: no escaped byte
			return b[:i], b[i+2:], nil
		}
		// Slow path: at least one escaped 0x00.
		out := make([]byte, 0, len(b))
		out = append(out, b[:i]...)
		for j := i; j < len(b); j++ {
			if b[j] != escByte {
				out = append(out, b[j])
				continue
			}
			if j+1 >= len(b) {
				return nil, nil, errCorrupt
			}
			switch b[j+1] {
			case escTerm:
				return out, b[j+2:], nil
			case escEscaped:
				out = append(out, escByte)
				j++
			default:
				return nil, nil, errCorrupt
			}
		}
		return nil, nil, errCorrupt
	}
	return nil, nil, errCorrupt
}

func appendPartition(dst []byte, p int32) []byte {
	return binary.BigEndian.AppendUint32(dst, uint32(p)^(1<<31))
}

func readPartition(b []byte) (int32, []byte, error) {
	if len(b) < 4 {
		return 0, nil, errCorrupt
	}
	return int32(binary.BigEndian.Uint32(b) ^ (1 << 31)), b[4:], nil
}

func appendBucket(dst []byte, bucket int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(bucket)^(1<<63))
}

func readBucket(b []byte) (int64, []byte, error) {
	if len(b) < 8 {
		return 0, nil, errCorrupt
	}
	return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)), b[8:], nil
}

// nsRangePrefix is 'N' esc(ns), the prefix of every key of namespace ns and
// of no other namespace's (esc is prefix-free).
func nsRangePrefix(dst []byte, ns viewstore.Namespace) []byte {
	dst = append(dst, tagData)
	return appendEscaped(dst, string(ns))
}

// nsPrefix is 'N' esc(ns) kind.
func nsPrefix(dst []byte, ns viewstore.Namespace, kind byte) []byte {
	return append(nsRangePrefix(dst, ns), kind)
}

func progressKey(dst []byte, ns viewstore.Namespace, p int32) []byte {
	return appendPartition(nsPrefix(dst, ns, kindProgress), p)
}

func statePrefix(dst []byte, ns viewstore.Namespace, p int32) []byte {
	return appendPartition(nsPrefix(dst, ns, kindState), p)
}

func watermarkPrefix(dst []byte, ns viewstore.Namespace, property string) []byte {
	return appendEscaped(nsPrefix(dst, ns, kindWatermark), property)
}

// additionShardPrefix is the prefix of every addition of ns in compaction
// shard.
func additionShardPrefix(dst []byte, ns viewstore.Namespace, shard int) []byte {
	return append(nsPrefix(dst, ns, kindAddition), byte(shard))
}

// additionPrefix is the prefix of every addition of ns and property; the
// hour follows.
func additionPrefix(dst []byte, ns viewstore.Namespace, property string) []byte {
	return appendEscaped(additionShardPrefix(dst, ns, viewstore.ShardOf(property)), property)
}

// additionHourPartPrefix is the prefix of the additions of ns, property,
// hour and log partition part; the start follows.
func additionHourPartPrefix(dst []byte, ns viewstore.Namespace, property string, hour int64, part int32) []byte {
	return appendPartition(appendBucket(additionPrefix(dst, ns, property), hour), part)
}

func additionKey(dst []byte, ns viewstore.Namespace, a *viewstore.Addition) []byte {
	return appendBucket(additionHourPartPrefix(dst, ns, a.Property, a.Hour, a.Partition), a.Start)
}

// decodeAdditionSuffix parses hour part start, the part of an addition key
// after its additionPrefix.
func decodeAdditionSuffix(b []byte) (hour int64, part int32, start int64, err error) {
	if hour, b, err = readBucket(b); err != nil {
		return 0, 0, 0, err
	}
	if part, b, err = readPartition(b); err != nil {
		return 0, 0, 0, err
	}
	if start, b, err = readBucket(b); err != nil {
		return 0, 0, 0, err
	}
	if len(b) != 0 {
		return 0, 0, 0, errCorrupt
	}
	return hour, part, start, nil
}

// blockPrefix is the prefix of every block of ns, property and kind; the
// bucket follows.
func blockPrefix(dst []byte, ns viewstore.Namespace, property string, k viewstore.Kind) []byte {
	dst = appendEscaped(nsPrefix(dst, ns, kindBlock), property)
	return append(dst, byte(k))
}

// prefixEnd returns the smallest key greater than every key with prefix p,
// or nil when there is none (p is all 0xFF).
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xFF {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// Values.
//
// Progress:  0x02 varint(Next) varint(Applied) varint(Duplicates) varint(Excluded) time
//
//	(stores written before Excluded existed hold
//	0x01 varint(Next) varint(Applied) varint(Duplicates) time,
//	which reads as Excluded 0)
//
// Watermark: 0x01 varint(Offset) time
// Addition:  0x01 varint(End) data
// Block:     0x01 uvarint(len(Cover)) varint(Cover[i])... data
// time:      0x00 for the zero time, or 0x01 varint(unix seconds) uvarint(nanoseconds)
const (
	valueVersion = 1 // of watermarks, additions and blocks

	progressV1      = 1 // without Excluded
	progressVersion = 2
)

func appendTime(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(dst, 0)
	}
	dst = append(dst, 1)
	dst = binary.AppendVarint(dst, t.Unix())
	return binary.AppendUvarint(dst, uint64(t.Nanosecond()))
}

func readTime(b []byte) (time.Time, []byte, error) {
	if len(b) < 1 {
		return time.Time{}, nil, errCorrupt
	}
	switch b[0] {
	case 0:
		return time.Time{}, b[1:], nil
	case 1:
		b = b[1:]
		sec, n := binary.Varint(b)
		if n <= 0 {
			return time.Time{}, nil, errCorrupt
		}
		b = b[n:]
		nsec, n := binary.Uvarint(b)
		if n <= 0 || nsec >= 1e9 {
			return time.Time{}, nil, errCorrupt
		}
		return time.Unix(sec, int64(nsec)).UTC(), b[n:], nil
	default:
		return time.Time{}, nil, errCorrupt
	}
}

func readVarints(b []byte, dst ...*int64) ([]byte, error) {
	for _, d := range dst {
		v, n := binary.Varint(b)
		if n <= 0 {
			return nil, errCorrupt
		}
		*d = v
		b = b[n:]
	}
	return b, nil
}

func encodeProgress(dst []byte, p *viewstore.Progress) []byte {
	dst = append(dst, progressVersion)
	dst = binary.AppendVarint(dst, p.Next)
	dst = binary.AppendVarint(dst, p.Applied)
	dst = binary.AppendVarint(dst, p.Duplicates)
	dst = binary.AppendVarint(dst, p.Excluded)
	return appendTime(dst, p.Watermark)
}

func decodeProgress(b []byte, partition int32) (viewstore.Progress, error) {
	pr := viewstore.Progress{Partition: partition}
	if len(b) < 1 || (b[0] != progressVersion && b[0] != progressV1) {
		return pr, fmt.Errorf("%w: progress of partition %d", errCorrupt, partition)
	}
	counters := []*int64{&pr.Next, &pr.Applied, &pr.Duplicates, &pr.Excluded}
	if b[0] == progressV1 {
		counters = counters[:3]
	}
	b, err := readVarints(b[1:], counters...)
	if err == nil {
		pr.Watermark, b, err = readTime(b)
	}
	if err == nil && len(b) != 0 {
		err = errCorrupt
	}
	if err != nil {
		return pr, fmt.Errorf("%w: progress of partition %d", errCorrupt, partition)
	}
	return pr, nil
}

func encodeWatermark(dst []byte, w *viewstore.Watermark) []byte {
	dst = append(dst, valueVersion)
	dst = binary.AppendVarint(dst, w.Offset)
	return appendTime(dst, w.Time)
}

func decodeWatermark(b []byte, property string, partition int32) (viewstore.Watermark, error) {
	w := viewstore.Watermark{Property: property, Partition: partition}
	if len(b) < 1 || b[0] != valueVersion {
		return w, fmt.Errorf("%w: watermark of %q partition %d", errCorrupt, property, partition)
	}
	b, err := readVarints(b[1:], &w.Offset)
	if err == nil {
		w.Time, b, err = readTime(b)
	}
	if err == nil && len(b) != 0 {
		err = errCorrupt
	}
	if err != nil {
		return w, fmt.Errorf("%w: watermark of %q partition %d", errCorrupt, property, partition)
	}
	return w, nil
}

func encodeAddition(dst []byte, a *viewstore.Addition) []byte {
	dst = append(dst, valueVersion)
	dst = binary.AppendVarint(dst, a.End)
	return append(dst, a.Block...)
}

// decodeAdditionValue returns an addition's End and data; data aliases b.
func decodeAdditionValue(b []byte) (end int64, data []byte, err error) {
	if len(b) < 1 || b[0] != valueVersion {
		return 0, nil, errCorrupt
	}
	end, n := binary.Varint(b[1:])
	if n <= 0 {
		return 0, nil, errCorrupt
	}
	return end, b[1+n:], nil
}

func encodeBlock(dst []byte, b *viewstore.Block) []byte {
	dst = append(dst, valueVersion)
	dst = binary.AppendUvarint(dst, uint64(len(b.Cover)))
	for _, c := range b.Cover {
		dst = binary.AppendVarint(dst, c)
	}
	return append(dst, b.Data...)
}

// decodeBlockValue returns a block's cover and data; data aliases b.
func decodeBlockValue(b []byte) (cover []int64, data []byte, err error) {
	if len(b) < 1 || b[0] != valueVersion {
		return nil, nil, errCorrupt
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, nil, errCorrupt
	}
	b = b[k:]
	if n > 0 {
		cover = make([]int64, n)
		for i := range cover {
			v, k := binary.Varint(b)
			if k <= 0 {
				return nil, nil, errCorrupt
			}
			cover[i] = v
			b = b[k:]
		}
	}
	return cover, b, nil
}
