package sketch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/cespare/xxhash/v2"
)

func hashOf(i int) uint64 {
	var b [8]byte
	for k := range b {
		b[k] = byte(i >> (8 * k))
	}
	return xxhash.Sum64(b[:])
}

// Up to ExactLimit distinct hashes a sketch of either precision counts
// exactly; past it the estimate is HyperLogLog's, within a few percent.
func TestEstimate(t *testing.T) {
	type tc struct {
		name   string
		p      uint8
		n      int
		exact  bool
		maxErr float64 // relative, when not exact
	}
	var cases []tc
	for _, p := range []uint8{UsersPrecision, SessionsPrecision} {
		cases = append(cases,
			tc{"empty", p, 0, true, 0},
			tc{"one", p, 1, true, 0},
			tc{"518", p, 518, true, 0},
			tc{"old users threshold+1", p, 2049, true, 0},
			tc{"at limit", p, ExactLimit, true, 0},
			tc{"just past limit", p, ExactLimit + 1, false, 0.05},
			tc{"10k", p, 10_000, false, 0.04},
			tc{"1M", p, 1_000_000, false, 0.04},
		)
	}
	cases = append(cases,
		tc{"users 200k", UsersPrecision, 200_000, false, 0.03},
		tc{"sessions 100k", SessionsPrecision, 100_000, false, 0.06},
	)
	for _, tc := range cases {
		t.Run(fmt.Sprintf("p%d/%s", tc.p, tc.name), func(t *testing.T) {
			s := New(tc.p)
			for i := 0; i < tc.n; i++ {
				s.Add(hashOf(i))
				if i%3 == 0 {
					s.Add(hashOf(i / 2)) // duplicates never count
				}
			}
			if s.Exact() != tc.exact {
				t.Fatalf("exact = %v, want %v", s.Exact(), tc.exact)
			}
			got := float64(s.Estimate())
			if tc.exact && got != float64(tc.n) {
				t.Fatalf("estimate %v, want exactly %d", got, tc.n)
			}
			if rel := math.Abs(got-float64(tc.n)) / math.Max(1, float64(tc.n)); rel > tc.maxErr {
				t.Fatalf("estimate %v for %d: relative error %.4f > %.4f", got, tc.n, rel, tc.maxErr)
			}
		})
	}
}

// A merge is exact, and equals the union's size, while the union holds at
// most ExactLimit hashes; past it the merge equals the sketch of the union.
func TestMergeEqualsUnion(t *testing.T) {
	for _, tc := range []struct {
		name   string
		a, b   [2]int // ranges [from, to)
		p      uint8
		union  int
		exact  bool
		maxErr float64
	}{
		{"exact overlap", [2]int{0, 100}, [2]int{50, 150}, UsersPrecision, 150, true, 0},
		{"sessions 518", [2]int{0, 300}, [2]int{200, 518}, SessionsPrecision, 518, true, 0},
		{"sessions old threshold", [2]int{0, 400}, [2]int{300, 800}, SessionsPrecision, 800, true, 0},
		{"users union at limit", [2]int{0, 3000}, [2]int{1096, ExactLimit}, UsersPrecision, ExactLimit, true, 0},
		{"sessions union at limit", [2]int{0, 2048}, [2]int{2048, ExactLimit}, SessionsPrecision, ExactLimit, true, 0},
		{"union one past limit", [2]int{0, 2048}, [2]int{2048, ExactLimit + 1}, SessionsPrecision, ExactLimit + 1, false, 0.05},
		{"exact to dense", [2]int{0, 3000}, [2]int{2000, 5000}, SessionsPrecision, 5000, false, 0.05},
		{"dense and exact", [2]int{0, 10_000}, [2]int{9990, 10_010}, SessionsPrecision, 10_010, false, 0.05},
		{"dense and dense", [2]int{0, 50_000}, [2]int{25_000, 75_000}, UsersPrecision, 75_000, false, 0.03},
		{"users 1M", [2]int{0, 600_000}, [2]int{400_000, 1_000_000}, UsersPrecision, 1_000_000, false, 0.03},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b, u := New(tc.p), New(tc.p), New(tc.p)
			for i := tc.a[0]; i < tc.a[1]; i++ {
				a.Add(hashOf(i))
				u.Add(hashOf(i))
			}
			for i := tc.b[0]; i < tc.b[1]; i++ {
				b.Add(hashOf(i))
				u.Add(hashOf(i))
			}
			if err := a.Merge(b); err != nil {
				t.Fatal(err)
			}
			if a.Exact() != tc.exact {
				t.Fatalf("exact = %v, want %v", a.Exact(), tc.exact)
			}
			if tc.exact && a.Estimate() != uint64(tc.union) {
				t.Fatalf("merged %d, want %d", a.Estimate(), tc.union)
			}
			if rel := math.Abs(float64(a.Estimate())-float64(tc.union)) / float64(tc.union); rel > tc.maxErr {
				t.Fatalf("merged %d for %d: relative error %.4f > %.4f", a.Estimate(), tc.union, rel, tc.maxErr)
			}
			if a.Estimate() != u.Estimate() {
				t.Fatalf("merge %d differs from sketch of the union %d", a.Estimate(), u.Estimate())
			}
		})
	}
}

func TestMergePrecisionMismatch(t *testing.T) {
	if err := New(12).Merge(New(14)); err == nil {
		t.Fatal("merging different precisions must fail")
	}
}

func TestRoundTrip(t *testing.T) {
	for _, p := range []uint8{UsersPrecision, SessionsPrecision} {
		for _, n := range []int{0, 3, 518, 2049, 3000, ExactLimit, ExactLimit + 1, 10_000} {
			t.Run(fmt.Sprintf("p%d/n%d", p, n), func(t *testing.T) {
				s := New(p)
				for i := 0; i < n; i++ {
					s.Add(hashOf(i))
				}
				b, err := s.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				if want := n <= ExactLimit; s.Exact() != want || (b[0] == formatSorted) != want {
					t.Fatalf("exact %v, format %d", s.Exact(), b[0])
				}
				b = append(b, 0xAB)
				d, rest, err := Decode(b)
				if err != nil {
					t.Fatal(err)
				}
				if len(rest) != 1 || rest[0] != 0xAB {
					t.Fatalf("rest %x", rest)
				}
				if d.Estimate() != s.Estimate() || d.Exact() != s.Exact() {
					t.Fatalf("decoded %d/%v, want %d/%v", d.Estimate(), d.Exact(), s.Estimate(), s.Exact())
				}
				if !slices.Equal(d.exact, s.exact) || !slices.Equal(d.regs, s.regs) {
					t.Fatal("decoded contents differ")
				}
			})
		}
	}
}

func FuzzDecode(f *testing.F) {
	s := New(4)
	s.Add(1)
	s.Add(99)
	b, _ := s.MarshalBinary()
	f.Add(b)
	f.Add([]byte{1, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{formatSparse, 4, 2, 1, 3, 4, 7})
	f.Add([]byte{formatPacked, 4, 0x21, 0xf0, 0, 0, 0, 0, 0, 0, 1, 2, 20})
	for _, n := range []int{600, ExactLimit + 1, 10_000} {
		s := New(12)
		for i := range n {
			s.Add(hashOf(i))
		}
		b, _ := s.MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkScan(t, b)
		s, _, err := Decode(b)
		if err != nil {
			return
		}
		enc, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		d, _, err := Decode(enc)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if d.Estimate() != s.Estimate() {
			t.Fatalf("round trip changed estimate %d -> %d", s.Estimate(), d.Estimate())
		}
	})
}

func BenchmarkAdd(b *testing.B) {
	s := New(UsersPrecision)
	for i := 0; b.Loop(); i++ {
		s.Add(hashOf(i))
	}
}

func BenchmarkMerge(b *testing.B) {
	x, y := New(UsersPrecision), New(UsersPrecision)
	for i := 0; i < 100_000; i++ {
		x.Add(hashOf(i))
		y.Add(hashOf(i + 50_000))
	}
	for b.Loop() {
		c := x.Clone()
		_ = c.Merge(y)
	}
}

// Registers are written in the smallest encoding, and every encoding reads
// back to the same registers.
func TestRegisterEncodings(t *testing.T) {
	for _, tc := range []struct {
		p      uint8
		n      int
		format byte
	}{
		{14, ExactLimit + 100, formatSparse}, // just past the exact set: few registers set
		{14, 12_000, formatPacked},           // most registers set, small values
		{14, 1_000_000, formatPacked},        // a few registers of 15 or more
		{12, ExactLimit + 100, formatPacked}, // at p=12 most registers are set by then
		{4, 100_000, formatDense},            // 16 registers, many of 15 or more
	} {
		s := New(tc.p)
		for i := range tc.n {
			s.Add(hashOf(i))
		}
		if s.Exact() {
			t.Fatalf("p=%d n=%d: still exact", tc.p, tc.n)
		}
		b, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if b[0] != tc.format {
			t.Errorf("p=%d n=%d: format %d, want %d (%d bytes)", tc.p, tc.n, b[0], tc.format, len(b))
		}
		if len(b) > 2+len(s.regs) {
			t.Errorf("p=%d n=%d: %d bytes, more than the registers", tc.p, tc.n, len(b))
		}
		d, rest, err := Decode(append(b, 7))
		if err != nil || len(rest) != 1 {
			t.Fatalf("p=%d n=%d: decode: %v, rest %x", tc.p, tc.n, err, rest)
		}
		if !slices.Equal(d.regs, s.regs) {
			t.Errorf("p=%d n=%d: registers differ after a round trip", tc.p, tc.n)
		}
		// The plain array still reads.
		plain := append([]byte{formatDense, tc.p}, s.regs...)
		if d, _, err := Decode(plain); err != nil || !slices.Equal(d.regs, s.regs) {
			t.Errorf("p=%d n=%d: dense encoding: %v", tc.p, tc.n, err)
		}
	}
}

// Exact sets are written as sorted 8-byte hashes; the older gap encoding
// still reads to the same set.
func TestExactEncodings(t *testing.T) {
	s := New(12)
	for i := range 300 {
		s.Add(hashOf(i))
	}
	b, err := s.MarshalBinary()
	if err != nil || b[0] != formatSorted {
		t.Fatalf("format %d, %v", b[0], err)
	}
	gaps := []byte{formatExact, 12}
	gaps = binary.AppendUvarint(gaps, uint64(len(s.exact)))
	var prev uint64
	for _, h := range s.exact {
		gaps = binary.AppendUvarint(gaps, h-prev)
		prev = h
	}
	for name, enc := range map[string][]byte{"sorted": b, "gaps": gaps} {
		d, rest, err := Decode(enc)
		if err != nil || len(rest) != 0 || !slices.Equal(d.exact, s.exact) {
			t.Errorf("%s: %v, rest %d", name, err, len(rest))
		}
	}
	// Unsorted or repeated hashes are corrupt.
	bad := slices.Clone(b)
	copy(bad[len(bad)-8:], bad[len(bad)-16:len(bad)-8])
	if _, _, err := Decode(bad); err == nil {
		t.Error("a repeated hash was accepted")
	}
}

// Decoding into a reused sketch and merging through a spare buffer give
// what fresh sketches give, whatever the previous contents (exact or
// dense, larger or smaller).
func TestReuseMatchesFresh(t *testing.T) {
	var encs [][]byte
	for i, n := range []int{0, 3, 100, 5000, 40, 20000, 1} {
		s := New(UsersPrecision)
		for j := range n {
			s.Add(uint64(i+1)*0x9E3779B97F4A7C15 ^ uint64(j)*0xBF58476D1CE4E5B9)
		}
		b, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		encs = append(encs, b)
	}
	var reused, tmp Sketch
	var buf []uint64
	for i, a := range encs {
		for j, b := range encs {
			fa, _, err := Decode(a)
			if err != nil {
				t.Fatal(err)
			}
			fb, _, _ := Decode(b)
			if err := fa.Merge(fb); err != nil {
				t.Fatal(err)
			}
			if _, err := reused.DecodeFrom(a); err != nil {
				t.Fatal(err)
			}
			if _, err := tmp.DecodeFrom(b); err != nil {
				t.Fatal(err)
			}
			if err := reused.MergeBuf(&tmp, &buf); err != nil {
				t.Fatal(err)
			}
			want, _ := fa.MarshalBinary()
			got, _ := reused.MarshalBinary()
			if !bytes.Equal(got, want) {
				t.Fatalf("sketches %d and %d: reused %d bytes, fresh %d", i, j, len(got), len(want))
			}
		}
	}
}
