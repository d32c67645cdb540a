package pebblelog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/sextant-analytics/sextant/pkg/eventlog"
)

// Key layout. Every key starts with a one-byte prefix naming its kind, so the
// kinds occupy disjoint, ordered ranges of the key space:
//
//	'm' name                                   metadata (partition count)
//	'r' BE uint32 partition, BE uint64 offset  a record
//	'c' uvarint len(group), group, BE uint32 partition
//	                                           a group's committed offset
//
// Big-endian partition and offset make byte order equal numeric order, so a
// partition's records form one contiguous, offset-ordered range.
const (
	prefixMeta   = 'm'
	prefixRecord = 'r'
	prefixCommit = 'c'

	recordKeyLen = 1 + 4 + 8
)

var metaPartitionsKey = []byte{prefixMeta, 'p', 'a', 'r', 't', 'i', 't', 'i', 'o', 'n', 's'}

// putRecordKey writes the key of record (p, off) into dst, which must be
// recordKeyLen bytes long.
func putRecordKey(dst []byte, p int32, off int64) {
	dst[0] = prefixRecord
	binary.BigEndian.PutUint32(dst[1:5], uint32(p))
	binary.BigEndian.PutUint64(dst[5:13], uint64(off))
}

func recordKey(p int32, off int64) []byte {
	k := make([]byte, recordKeyLen)
	putRecordKey(k, p, off)
	return k
}

// partitionBounds returns [lower, upper) covering every record of p.
func partitionBounds(p int32) (lower, upper []byte) {
	lower = recordKey(p, 0)
	upper = make([]byte, 5)
	upper[0] = prefixRecord
	binary.BigEndian.PutUint32(upper[1:5], uint32(p)+1)
	if uint32(p) == math.MaxUint32 {
		upper = []byte{prefixRecord + 1}
	}
	return lower, upper
}

func parseRecordKey(k []byte) (p int32, off int64, err error) {
	if len(k) != recordKeyLen || k[0] != prefixRecord {
		return 0, 0, fmt.Errorf("pebblelog: malformed record key %x", k)
	}
	return int32(binary.BigEndian.Uint32(k[1:5])), int64(binary.BigEndian.Uint64(k[5:13])), nil
}

func commitKey(group string, p int32) []byte {
	k := make([]byte, 0, 1+binary.MaxVarintLen64+len(group)+4)
	k = append(k, prefixCommit)
	k = binary.AppendUvarint(k, uint64(len(group)))
	k = append(k, group...)
	return binary.BigEndian.AppendUint32(k, uint32(p))
}

// Record value layout (version 1):
//
//	byte     version (1)
//	8 bytes  BE int64 timestamp, Unix nanoseconds
//	uvarint  len(key), key
//	uvarint  len(value), value
//	uvarint  number of headers, then per header (sorted by name):
//	         uvarint len(name), name, uvarint len(value), value
//
// The timestamp sits at a fixed position so the committer can stamp a value
// that was encoded ahead of time by the appending goroutine.
const (
	recordVersion = 1
	tsOffset      = 1
	headerLen     = 1 + 8
)

var errCorrupt = errors.New("pebblelog: corrupt record")

func encodedLen(m *eventlog.Message) int {
	n := headerLen + uvarintLen(len(m.Key)) + len(m.Key) + uvarintLen(len(m.Value)) + len(m.Value) + uvarintLen(len(m.Headers))
	for k, v := range m.Headers {
		n += uvarintLen(len(k)) + len(k) + uvarintLen(len(v)) + len(v)
	}
	return n
}

// appendRecord appends m's encoding, with a zero timestamp, to dst.
func appendRecord(dst []byte, m *eventlog.Message) []byte {
	dst = append(dst, recordVersion, 0, 0, 0, 0, 0, 0, 0, 0)
	dst = binary.AppendUvarint(dst, uint64(len(m.Key)))
	dst = append(dst, m.Key...)
	dst = binary.AppendUvarint(dst, uint64(len(m.Value)))
	dst = append(dst, m.Value...)
	dst = binary.AppendUvarint(dst, uint64(len(m.Headers)))
	if len(m.Headers) == 0 {
		return dst
	}
	names := make([]string, 0, len(m.Headers))
	for k := range m.Headers {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		v := m.Headers[k]
		dst = binary.AppendUvarint(dst, uint64(len(k)))
		dst = append(dst, k...)
		dst = binary.AppendUvarint(dst, uint64(len(v)))
		dst = append(dst, v...)
	}
	return dst
}

// stampRecord sets the timestamp of an encoded record in place.
func stampRecord(enc []byte, ts int64) {
	binary.BigEndian.PutUint64(enc[tsOffset:tsOffset+8], uint64(ts))
}

// recordTimestamp reads the timestamp (Unix nanoseconds) of an encoded
// record.
func recordTimestamp(enc []byte) (int64, error) {
	if len(enc) < headerLen || enc[0] != recordVersion {
		return 0, errCorrupt
	}
	return int64(binary.BigEndian.Uint64(enc[tsOffset : tsOffset+8])), nil
}

// decodeRecord decodes buf into r. Key and Value alias buf (with capped
// capacity), so buf must not be reused by the caller.
func decodeRecord(buf []byte, r *eventlog.Record) error {
	if len(buf) < headerLen || buf[0] != recordVersion {
		return errCorrupt
	}
	r.Timestamp = time.Unix(0, int64(binary.BigEndian.Uint64(buf[tsOffset:tsOffset+8])))
	rest := buf[headerLen:]
	var ok bool
	if r.Key, rest, ok = readBytes(rest); !ok {
		return errCorrupt
	}
	if r.Value, rest, ok = readBytes(rest); !ok {
		return errCorrupt
	}
	n, w := binary.Uvarint(rest)
	if w <= 0 || n > uint64(len(rest)) {
		return errCorrupt
	}
	rest = rest[w:]
	r.Headers = nil
	if n > 0 {
		r.Headers = make(map[string]string, n)
		for range n {
			var k, v []byte
			if k, rest, ok = readBytes(rest); !ok {
				return errCorrupt
			}
			if v, rest, ok = readBytes(rest); !ok {
				return errCorrupt
			}
			r.Headers[string(k)] = string(v)
		}
	}
	if len(rest) != 0 {
		return errCorrupt
	}
	return nil
}

// readBytes reads a uvarint-length-prefixed byte string. An empty string
// decodes as nil.
func readBytes(b []byte) (v, rest []byte, ok bool) {
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)-w) {
		return nil, nil, false
	}
	end := w + int(n)
	if n == 0 {
		return nil, b[end:], true
	}
	return b[w:end:end], b[end:], true
}

func uvarintLen(n int) int {
	l := 1
	for x := uint64(n); x >= 0x80; x >>= 7 {
		l++
	}
	return l
}
