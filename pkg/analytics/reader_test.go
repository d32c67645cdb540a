package analytics

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/sextant-analytics/sextant/pkg/sketch"
)

func hashID(id uint64) uint64 {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], id)
	return xxhash.Sum64(b[:])
}

func (a *Aggregate) add(i int, h uint64) {
	if i >= numBase {
		a.Extra(i).Add(h)
		return
	}
	(*a.sketches()[i]).Add(h)
}

// randomAggregate fills each sketch with up to max ids drawn from pool, so
// that large ones turn dense and small ones stay exact.
func randomAggregate(rng *rand.Rand, max, pool int) *Aggregate {
	a := NewAggregate()
	a.Events, a.PageViews, a.EngagementMsec = rng.Int64N(1000)-10, rng.Int64N(100), rng.Int64N(1e6)
	// Half the aggregates are version 1 (no sums, no extra sketches).
	v2 := rng.IntN(2) == 0
	if v2 {
		for i := range a.Sums {
			if rng.IntN(2) == 0 {
				a.Sums[i] = rng.Int64N(1e9) - 1e6
			}
		}
	}
	for i := range NumSketches {
		if i >= numBase && !v2 {
			break
		}
		for range rng.IntN(max + 1) {
			a.add(i, hashID(uint64(rng.IntN(pool))))
		}
	}
	return a
}

func estimatesOf(a *Aggregate) [NumSketches]uint64 {
	var e [NumSketches]uint64
	for i, s := range a.sketches() {
		if *s != nil {
			e[i] = (*s).Estimate()
		}
	}
	return e
}

var (
	needAll  = Need{true, true, true, true, true, true, true, true}
	needSome = Need{SketchUsers: true, SketchEngagedSessions: true, SketchPurchasers: true}
	needNone = Need{}
)

// readAll decodes and accumulates encoded aggregates with need.
func readAll(t testing.TB, encs [][]byte, need *Need) *Acc {
	t.Helper()
	var acc Acc
	var v Values
	for _, b := range encs {
		if err := v.Decode(b, need); err != nil {
			t.Fatal(err)
		}
		if err := acc.Add(&v, need); err != nil {
			t.Fatal(err)
		}
	}
	if err := acc.Finish(); err != nil {
		t.Fatal(err)
	}
	return &acc
}

// checkAcc compares an Acc read with need to the merged aggregate.
func checkAcc(t testing.TB, got *Acc, want *Aggregate, need *Need) {
	t.Helper()
	if got.Events != want.Events || got.PageViews != want.PageViews || got.EngagementMsec != want.EngagementMsec {
		t.Errorf("sums = %d %d %d, want %d %d %d", got.Events, got.PageViews, got.EngagementMsec, want.Events, want.PageViews, want.EngagementMsec)
	}
	if got.Sums != want.Sums {
		t.Errorf("sums = %v, want %v", got.Sums, want.Sums)
	}
	we := estimatesOf(want)
	for i := range NumSketches {
		w := uint64(0)
		if need[i] {
			w = we[i]
		}
		if e := got.Estimate(i); e != w {
			t.Errorf("slot %d (need %v): estimate %d, want %d", i, need[i], e, w)
		}
	}
}

// TestCellDecodeMatchesAnalytics checks Values and Acc against
// UnmarshalAggregate and Aggregate.Merge, on exact and dense sketches, with
// every slot and with some slots skipped.
func TestCellDecodeMatchesAnalytics(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, size := range []struct{ max, pool, cells int }{
		{0, 1, 3}, {3, 10, 20}, {40, 5000, 200}, {700, 100000, 10}, {3000, 100000, 3},
		{40, 60, 500}, {4096, 1 << 40, 1}, {3000, 6000, 4}, {5000, 100000, 3}, {100, 4000, 300},
	} {
		t.Run(fmt.Sprintf("max%d_pool%d_cells%d", size.max, size.pool, size.cells), func(t *testing.T) {
			want := NewAggregate()
			var encs [][]byte
			for range size.cells {
				a := randomAggregate(rng, size.max, size.pool)
				if err := want.Merge(a); err != nil {
					t.Fatal(err)
				}
				b, err := a.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				encs = append(encs, b)
			}
			for _, need := range []*Need{&needAll, &needSome, &needNone} {
				checkAcc(t, readAll(t, encs, need), want, need)
			}
		})
	}
}

// Counts are exact while the union of a group's sets holds at most
// sketch.ExactLimit hashes, however many cells it reads, and HyperLogLog
// past it.
func TestAccExactUpToLimit(t *testing.T) {
	for _, tc := range []struct {
		name         string
		cells, per   int // cells of per distinct ids each, ids overlapping by half
		wantExact    bool
		wantDistinct int
	}{
		{"one", 1, 1, true, 1},
		{"518", 36, 28, true, 518},
		{"2049", 1, 2049, true, 2049},
		{"at limit in many cells", 511, 16, true, sketch.ExactLimit},
		{"at limit in two cells", 2, 2731, true, sketch.ExactLimit},
		{"one past the limit", sketch.ExactLimit, 2, false, sketch.ExactLimit + 1},
		{"10k", 100, 200, false, 10_100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := NewAggregate()
			var encs [][]byte
			for c := range tc.cells {
				a := NewAggregate()
				for k := range tc.per {
					id := hashID(uint64(c*tc.per/2 + k))
					for i := range NumSketches {
						a.add(i, id)
					}
				}
				if err := want.Merge(a); err != nil {
					t.Fatal(err)
				}
				b, err := a.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				encs = append(encs, b)
			}
			got := readAll(t, encs, &needAll)
			checkAcc(t, got, want, &needAll)
			for i := range NumSketches {
				e := got.Estimate(i)
				if tc.wantExact && e != uint64(tc.wantDistinct) {
					t.Errorf("slot %d: %d, want exactly %d", i, e, tc.wantDistinct)
				}
				if exact := got.sk[i].Exact(); exact != tc.wantExact {
					t.Errorf("slot %d: exact %v, want %v", i, exact, tc.wantExact)
				}
				if d := float64(e) - float64(tc.wantDistinct); d > 0.05*float64(tc.wantDistinct) || -d > 0.05*float64(tc.wantDistinct) {
					t.Errorf("slot %d: %d, want about %d", i, e, tc.wantDistinct)
				}
			}
			// Totals: merging and absorbing finished accumulators
			// keeps them exact as long as the union is.
			var tot, abs Acc
			half := len(encs) / 2
			for _, part := range [][][]byte{encs[:half], encs[half:]} {
				if err := tot.Merge(readAll(t, part, &needAll)); err != nil {
					t.Fatal(err)
				}
				if err := abs.Absorb(readAll(t, part, &needAll)); err != nil {
					t.Fatal(err)
				}
			}
			checkAcc(t, &tot, want, &needAll)
			checkAcc(t, &abs, want, &needAll)
		})
	}
}

func TestCellDecodeRejectsCorruption(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var v Values
	for _, max := range []int{5, 3000, 6000} {
		b, err := randomAggregate(rng, max, 1<<30).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		for n := range len(b) {
			for _, need := range []*Need{&needAll, &needNone} {
				if err := v.Decode(b[:n], need); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("max %d: a %d-byte prefix of %d bytes: %v", max, n, len(b), err)
				}
			}
		}
		if err := v.Decode(append(b, 0), &needAll); !errors.Is(err, ErrCorrupt) {
			t.Errorf("trailing byte: %v", err)
		}
		// Flipped bytes must never panic.
		for range 2000 {
			c := append([]byte(nil), b...)
			c[rng.IntN(len(c))] ^= byte(1 + rng.IntN(255))
			_ = v.Decode(c, &needAll)
			_ = v.Decode(c, &needNone)
		}
	}
	if err := v.Decode([]byte{2, 0, 0, 0}, &needAll); !errors.Is(err, ErrCorrupt) {
		t.Errorf("unknown version: %v", err)
	}
	// A sketch of the wrong precision in a slot.
	a := NewAggregate()
	a.Sessions = sketch.New(sketch.UsersPrecision)
	a.Sessions.Add(1)
	b, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	for _, need := range []*Need{&needAll, &needNone} {
		if err := v.Decode(b, need); !errors.Is(err, ErrCorrupt) {
			t.Errorf("wrong precision: %v", err)
		}
	}
}

// FuzzCellDecode: Values.Decode never panics, accepts what
// UnmarshalAggregate accepts, and Acc reads the same sums and estimates.
func FuzzCellDecode(f *testing.F) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, max := range []int{0, 5, 40} {
		b, err := randomAggregate(rng, max, 100000).MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	some := Need{SketchSessions: true}
	f.Fuzz(func(t *testing.T, b []byte) {
		var v Values
		errAll := v.Decode(b, &needAll)
		errSome := (&Values{}).Decode(b, &some)
		a, err := UnmarshalAggregate(b)
		if err != nil {
			return
		}
		if errAll != nil || errSome != nil {
			t.Fatalf("UnmarshalAggregate reads it, Values.Decode does not: %v, %v", errAll, errSome)
		}
		var got Acc
		if err := got.Add(&v, &needAll); err != nil {
			t.Fatal(err)
		}
		if err := got.Finish(); err != nil {
			t.Fatal(err)
		}
		checkAcc(t, &got, a, &needAll)
	})
}
