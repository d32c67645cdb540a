package sketch

import (
	"encoding/binary"
	"math/bits"
	"slices"
)

// Reading encoded sketches without building them.
//
// A reader merging many small encoded sketches (InsightsService reads
// thousands of cells per report) need not allocate a Sketch for each:
// AppendHashes collects the hashes of exact sets, Skip steps over sketches
// it does not need, and Decode remains for register encodings.

// AppendHashes reads the sketch of precision p encoded at the start of b.
// If it is an exact set, AppendHashes appends its hashes (sorted, unique) to
// hs and returns the bytes after it with exact set. If it holds registers,
// it returns hs and b unchanged with exact unset: decode it with Decode.
// A sketch of another precision, or a corrupt exact set, is an error.
func AppendHashes(hs []uint64, b []byte, p uint8) (out []uint64, rest []byte, exact bool, err error) {
	if len(b) < 2 || b[1] != p {
		return hs, nil, false, errCorrupt
	}
	switch b[0] {
	case formatSorted:
		hs, rest, err = readSorted(hs, b[2:], true)
	case formatExact:
		hs, rest, err = appendGaps(hs, b[2:])
	default:
		return hs, b, false, nil
	}
	if err != nil {
		return hs, nil, false, err
	}
	return hs, rest, true, nil
}

// Skip steps over the sketch of precision p encoded at the start of b and
// returns the bytes after it. It checks only what finding the end needs:
// Decode validates the sketch.
func Skip(b []byte, p uint8) ([]byte, error) {
	if len(b) < 2 || b[1] != p || p < 4 || p > 18 {
		return nil, errCorrupt
	}
	m := 1 << p
	format, b := b[0], b[2:]
	switch format {
	case formatSorted:
		_, rest, err := readSorted(nil, b, false)
		return rest, err
	case formatExact:
		return skipGaps(b)
	case formatDense:
		if len(b) < m {
			return nil, errCorrupt
		}
		return b[m:], nil
	case formatSparse:
		return skipSparse(b)
	case formatPacked:
		if len(b) < m/2 {
			return nil, errCorrupt
		}
		return skipSparse(b[m/2:])
	}
	return nil, errCorrupt
}

// readSorted reads the body of a formatSorted set, appending its hashes to
// hs when keep is set, and returns the bytes after it.
func readSorted(hs []uint64, b []byte, keep bool) ([]uint64, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k)/8 {
		return hs, nil, errCorrupt
	}
	b = b[k:]
	body, rest := b[:8*n], b[8*n:]
	if !keep {
		return hs, rest, nil
	}
	hs = slices.Grow(hs, int(n))
	var prev uint64
	for i := 0; i < len(body); i += 8 {
		h := binary.LittleEndian.Uint64(body[i:])
		if i > 0 && h <= prev {
			return hs, nil, errCorrupt
		}
		hs = append(hs, h)
		prev = h
	}
	return hs, rest, nil
}

// appendGaps appends the hashes of a formatExact body to hs.
func appendGaps(hs []uint64, b []byte) ([]uint64, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return hs, nil, errCorrupt
	}
	b = b[k:]
	hs = slices.Grow(hs, int(n))
	var prev uint64
	for j := uint64(0); j < n; j++ {
		d, k := uvarint(b)
		if k <= 0 || (j > 0 && d == 0) {
			return hs, nil, errCorrupt
		}
		b = b[k:]
		h := prev + d
		if j > 0 && h <= prev {
			return hs, nil, errCorrupt
		}
		hs = append(hs, h)
		prev = h
	}
	return hs, b, nil
}

// uvarint is binary.Uvarint with a fast path for 9-byte values, the usual
// length of the gap between two of a small set's 64-bit hashes.
func uvarint(b []byte) (uint64, int) {
	if len(b) >= 9 && b[8] < 0x80 {
		u := binary.LittleEndian.Uint64(b)
		if u&0x8080808080808080 == 0x8080808080808080 {
			// Pack eight 7-bit groups into 56 bits, then add the ninth byte.
			x := u & 0x7f7f7f7f7f7f7f7f
			x = x&0x007f007f007f007f | (x&0x7f007f007f007f00)>>1
			x = x&0x00003fff00003fff | (x&0x3fff00003fff0000)>>2
			x = x&0x000000000fffffff | (x&0x0fffffff00000000)>>4
			return x | uint64(b[8])<<56, 9
		}
	}
	return binary.Uvarint(b)
}

// skipGaps steps over a formatExact body without decoding it, eight bytes
// at a time: a varint ends at each byte without its high bit.
func skipGaps(b []byte) ([]byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, errCorrupt
	}
	b = b[k:]
	i := 0
	for n > 0 && i+8 <= len(b) {
		ends := ^binary.LittleEndian.Uint64(b[i:]) & 0x8080808080808080
		c := uint64(bits.OnesCount64(ends))
		if c >= n {
			break
		}
		n -= c
		i += 8
	}
	for ; n > 0; i++ {
		if i >= len(b) {
			return nil, errCorrupt
		}
		if b[i] < 0x80 {
			n--
		}
	}
	return b[i:], nil
}

// skipSparse steps over a list of registers: a uvarint count, then a
// uvarint gap and a value byte each.
func skipSparse(b []byte) ([]byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, errCorrupt
	}
	b = b[k:]
	for range n {
		_, k := binary.Uvarint(b)
		if k <= 0 || len(b) < k+1 {
			return nil, errCorrupt
		}
		b = b[k+1:]
	}
	return b, nil
}
