package insights

import (
	"encoding/binary"
	"math/rand/v2"
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
