package sketch

import (
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestUvarintMatchesBinary(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 200000 {
		v := rng.Uint64() >> (rng.UintN(64))
		if i%3 == 0 {
			v = rng.Uint64() >> 1 // 63 bits: nine bytes
		}
		b := binary.AppendUvarint(nil, v)
		b = append(b, byte(rng.UintN(256)), byte(rng.UintN(256)))
		gotV, gotN := uvarint(b)
		wantV, wantN := binary.Uvarint(b)
		if gotV != wantV || gotN != wantN {
			t.Fatalf("uvarint(%x) = %d, %d; want %d, %d", b, gotV, gotN, wantV, wantN)
		}
	}
	for _, b := range [][]byte{
		{}, {0x80}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02},
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
		{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80},
	} {
		gotV, gotN := uvarint(b)
		wantV, wantN := binary.Uvarint(b)
		if gotV != wantV || gotN != wantN {
			t.Errorf("uvarint(%x) = %d, %d; want %d, %d", b, gotV, gotN, wantV, wantN)
		}
	}
}

// gapsOf is the older formatExact encoding of an exact sketch.
func gapsOf(s *Sketch) []byte {
	s.settle()
	b := []byte{formatExact, s.p}
	b = binary.AppendUvarint(b, uint64(len(s.exact)))
	var prev uint64
	for _, h := range s.exact {
		b = binary.AppendUvarint(b, h-prev)
		prev = h
	}
	return b
}

// checkScan checks Skip and AppendHashes against Decode on one encoding.
func checkScan(t *testing.T, enc []byte) {
	t.Helper()
	s, want, err := Decode(enc)
	if err != nil {
		return
	}
	p := s.Precision()
	rest, err := Skip(enc, p)
	if err != nil || len(rest) != len(want) {
		t.Fatalf("Skip: %v, %d bytes left, want %d", err, len(rest), len(want))
	}
	if _, err := Skip(enc, p^1); err == nil {
		t.Fatal("Skip accepted another precision")
	}
	prefix := []uint64{7}
	hs, rest, exact, err := AppendHashes(prefix, enc, p)
	if err != nil {
		t.Fatalf("AppendHashes: %v", err)
	}
	if enc[0] == formatSorted || enc[0] == formatExact {
		// Decode turns a set larger than ExactLimit dense; its hashes
		// are still listed.
		if !exact || len(rest) != len(want) || hs[0] != 7 {
			t.Fatalf("AppendHashes: exact %v, %d bytes left, want %d", exact, len(rest), len(want))
		}
		c := New(p)
		for _, h := range hs[1:] {
			c.Add(h)
		}
		if c.Estimate() != s.Estimate() || c.Exact() != s.Exact() {
			t.Fatalf("AppendHashes: %d hashes count %d/%v, Decode %d/%v", len(hs)-1, c.Estimate(), c.Exact(), s.Estimate(), s.Exact())
		}
		if s.Exact() && !slices.Equal(hs[1:], s.exact) {
			t.Fatal("AppendHashes: hashes differ from Decode's")
		}
	} else if exact || len(rest) != len(enc) || len(hs) != 1 {
		t.Fatalf("AppendHashes read registers: exact %v, %d hashes", exact, len(hs))
	}
	if _, _, _, err := AppendHashes(nil, enc, p^1); err == nil {
		t.Fatal("AppendHashes accepted another precision")
	}
}

func TestScan(t *testing.T) {
	for _, p := range []uint8{UsersPrecision, SessionsPrecision} {
		for _, n := range []int{0, 1, 20, 518, ExactLimit, ExactLimit + 1, 20_000, 1_000_000} {
			s := New(p)
			for i := range n {
				s.Add(hashOf(i))
			}
			enc, err := s.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			checkScan(t, append(enc, 1, 2, 3))
			if s.Exact() {
				checkScan(t, append(gapsOf(s), 9))
			} else {
				checkScan(t, append(append([]byte{formatDense, p}, s.regs...), 9))
			}
			// Every strict prefix is corrupt to both.
			for _, k := range []int{0, 1, 2, len(enc) / 2, len(enc) - 1} {
				if k >= len(enc) {
					continue
				}
				if _, err := Skip(enc[:k], p); err == nil {
					t.Errorf("p=%d n=%d: Skip read a %d-byte prefix", p, n, k)
				}
				if _, _, exact, err := AppendHashes(nil, enc[:k], p); err == nil && exact {
					t.Errorf("p=%d n=%d: AppendHashes read a %d-byte prefix", p, n, k)
				}
			}
		}
	}
}
