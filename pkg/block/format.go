package block

// # Format, version 1
//
// A block is, in order (varint: encoding/binary's zig-zag signed varint,
// uvarint: its unsigned varint):
//
//	block   = version:byte(=1) base:varint nsections:uvarint header{nsections} body{nsections}
//	header  = grain:byte ndims:uvarint (len:uvarint name){ndims} count:uvarint size:uvarint
//	body    = entry{count}                       exactly size bytes
//	entry   = rel:varint dlen:uvarint dims{dlen} vlen:uvarint value{vlen}
//
// base is the start of the block's period (an hour or a UTC day), in Unix
// seconds. The headers list every section (grain, dimension names, number
// of entries, byte length of its body) before any body; the bodies follow
// in the order of the headers, back to back, and end the block. A reader
// thus finds a section's body by adding up the sizes of the bodies before
// it, and skips the others without decoding them.
//
// Each entry is one time bucket and dimension key of its section: rel is
// the bucket relative to the base floored to the section's grain, in
// units of the grain, so that bucket = grain.Floor(base) + rel *
// grain.Seconds() (a minute or hour entry of an hour block has a small
// rel; a day entry of an hour block has rel 0). dims is the key of the
// section's dimension values joined by Sep (JoinDims), value the entry's
// analytics.Aggregate in its own binary encoding (AppendBinary;
// UnmarshalAggregate reads it).
//
// The encoding is canonical: within a section, entries are sorted by
// bucket, then by dims (bytewise), each (bucket, dims) at most once; a
// section appears at most once (Section.Equal) and only with entries
// (count > 0). The same aggregates in the same layout thus encode to the
// same bytes, and merges are merge-joins of sorted entries. Readers reject
// what breaks these rules: an unknown version or grain, counts or lengths
// that exceed the bytes left, trailing bytes, duplicate or empty sections,
// and (while iterating) entries out of order. Buckets and bases lie within
// ±2^52 seconds.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// version is the format's version byte.
const version = 1

// maxTime bounds bases and buckets (absolute Unix seconds) so that no
// arithmetic on them overflows.
const maxTime = 1 << 52

// Minimal encoded sizes, to cap counts by the bytes left.
const (
	minHeader = 4 // grain, ndims, count, size
	minEntry  = 3 // rel, dlen, vlen
)

// ErrCorrupt is wrapped by every error about malformed block bytes.
var ErrCorrupt = errors.New("block: corrupt")

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

func validGrain(g Grain) bool { return g >= Minute && g <= Day }

func inTime(t int64) bool { return t > -maxTime && t < maxTime }

// sectionHeader is a parsed header: the section, and where its body is.
type sectionHeader struct {
	Section
	count int
	off   int // offset of the body in the block
	size  int
}

// parse reads a block's headers.
func parse(data []byte) (base int64, hs []sectionHeader, err error) {
	if len(data) < 1 {
		return 0, nil, corrupt("empty block")
	}
	if data[0] != version {
		return 0, nil, corrupt("version %d", data[0])
	}
	p := data[1:]
	base, k := binary.Varint(p)
	if k <= 0 {
		return 0, nil, corrupt("base")
	}
	if !inTime(base) {
		return 0, nil, corrupt("base %d out of range", base)
	}
	p = p[k:]
	nsec, k := binary.Uvarint(p)
	if k <= 0 {
		return 0, nil, corrupt("section count")
	}
	p = p[k:]
	if nsec > uint64(len(p)/minHeader) {
		return 0, nil, corrupt("%d sections in %d bytes", nsec, len(p))
	}
	hs = make([]sectionHeader, nsec)
	var bodies uint64
	for i := range hs {
		h := &hs[i]
		if len(p) < 1 {
			return 0, nil, corrupt("truncated header")
		}
		h.Grain = Grain(p[0])
		if !validGrain(h.Grain) {
			return 0, nil, corrupt("grain %d", p[0])
		}
		p = p[1:]
		nd, k := binary.Uvarint(p)
		if k <= 0 || nd > uint64(len(p)-k) {
			return 0, nil, corrupt("dimension count")
		}
		p = p[k:]
		if nd > 0 {
			h.Dims = make([]string, nd)
		}
		for j := range h.Dims {
			n, k := binary.Uvarint(p)
			if k <= 0 || n > uint64(len(p)-k) {
				return 0, nil, corrupt("dimension name")
			}
			h.Dims[j] = string(p[k : k+int(n)])
			p = p[k+int(n):]
		}
		count, k := binary.Uvarint(p)
		if k <= 0 {
			return 0, nil, corrupt("entry count")
		}
		p = p[k:]
		size, k := binary.Uvarint(p)
		if k <= 0 || size > uint64(len(data)) {
			return 0, nil, corrupt("body size")
		}
		p = p[k:]
		if count == 0 {
			return 0, nil, corrupt("empty section")
		}
		if count > size/minEntry {
			return 0, nil, corrupt("%d entries in %d bytes", count, size)
		}
		h.count, h.size = int(count), int(size)
		bodies += size
		for j := range i {
			if hs[j].Section.Equal(h.Section) {
				return 0, nil, corrupt("duplicate section")
			}
		}
	}
	if bodies != uint64(len(p)) {
		return 0, nil, corrupt("bodies of %d bytes, %d left", bodies, len(p))
	}
	off := len(data) - len(p)
	for i := range hs {
		hs[i].off = off
		off += hs[i].size
	}
	return base, hs, nil
}

// appendHeader appends a section's header.
func appendHeader(dst []byte, s Section, count, size int) []byte {
	dst = append(dst, byte(s.Grain))
	dst = binary.AppendUvarint(dst, uint64(len(s.Dims)))
	for _, d := range s.Dims {
		dst = binary.AppendUvarint(dst, uint64(len(d)))
		dst = append(dst, d...)
	}
	dst = binary.AppendUvarint(dst, uint64(count))
	return binary.AppendUvarint(dst, uint64(size))
}

// appendEntry appends an entry whose value is already encoded.
func appendEntry[D string | []byte](dst []byte, rel int64, dims D, value []byte) []byte {
	dst = binary.AppendVarint(dst, rel)
	dst = binary.AppendUvarint(dst, uint64(len(dims)))
	dst = append(dst, dims...)
	dst = binary.AppendUvarint(dst, uint64(len(value)))
	return append(dst, value...)
}

// relOf is bucket relative to base in the grain's units; bucket must lie
// on the grain.
func relOf(g Grain, base, bucket int64) (int64, error) {
	if !inTime(bucket) {
		return 0, fmt.Errorf("block: bucket %d out of range", bucket)
	}
	if g.Floor(bucket) != bucket {
		return 0, fmt.Errorf("block: bucket %d not on a %s", bucket, g)
	}
	return (bucket - g.Floor(base)) / g.Seconds(), nil
}

// cursor walks the entries of one section's body, checking their bounds
// and order.
type cursor struct {
	p      []byte
	left   int // entries left
	origin int64
	width  int64
	maxRel int64

	bucket int64
	dims   []byte
	value  []byte
	first  bool
}

func newCursor(data []byte, base int64, h *sectionHeader) cursor {
	w := h.Grain.Seconds()
	return cursor{
		p:      data[h.off : h.off+h.size],
		left:   h.count,
		origin: h.Grain.Floor(base),
		width:  w,
		maxRel: 2 * maxTime / w,
		first:  true,
	}
}

// next moves to the next entry; false at the end or on error.
func (c *cursor) next() (bool, error) {
	if c.left == 0 {
		if len(c.p) != 0 {
			return false, corrupt("%d bytes after the last entry", len(c.p))
		}
		return false, nil
	}
	c.left--
	p := c.p
	rel, k := binary.Varint(p)
	if k <= 0 || rel > c.maxRel || rel < -c.maxRel {
		return false, corrupt("entry bucket")
	}
	p = p[k:]
	bucket := c.origin + rel*c.width
	if !inTime(bucket) {
		return false, corrupt("bucket %d out of range", bucket)
	}
	n, k := binary.Uvarint(p)
	if k <= 0 || n > uint64(len(p)-k) {
		return false, corrupt("entry dimensions")
	}
	dims := p[k : k+int(n) : k+int(n)]
	p = p[k+int(n):]
	n, k = binary.Uvarint(p)
	if k <= 0 || n > uint64(len(p)-k) {
		return false, corrupt("entry value")
	}
	value := p[k : k+int(n) : k+int(n)]
	c.p = p[k+int(n):]
	if !c.first && (bucket < c.bucket || bucket == c.bucket && bytes.Compare(dims, c.dims) <= 0) {
		return false, corrupt("entries out of order")
	}
	c.first = false
	c.bucket, c.dims, c.value = bucket, dims, value
	return true, nil
}

// uvarintLen is the length of x's uvarint.
func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}
