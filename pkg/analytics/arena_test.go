package analytics

import (
	"bytes"
	"math/rand"
	"testing"
)

// fill counts n users and sessions (some of them twice), and an extra
// sketch, into a.
func fill(a *Aggregate, rng *rand.Rand, n int) {
	for range n {
		u := rng.Uint64() % uint64(2*n+1)
		a.Events++
		a.Users.Add(u)
		a.ActiveUsers.Add(u)
		a.Sessions.Add(u ^ 0xabc)
		if u%3 == 0 {
			a.NewUsers.Add(u)
			a.EngagedSess.Add(u)
			a.Extra(SketchPurchasers).Add(u)
			a.Sums[SumPurchases]++
		}
	}
}

// TestArenaReuse: an arena's aggregates, first made and then reused after
// Reset, encode byte for byte as NewAggregate's given the same counts,
// whatever the sizes before (exact sets, dense sketches, extra sketches);
// and Reset keeps only the chunks its last round used.
func TestArenaReuse(t *testing.T) {
	var ar Arena
	sizes := []int{0, 1, 2, 3, 9, 40, 100, 5000}
	for round := range 3 {
		for i := range 3 * arenaChunk / 2 {
			n := sizes[(i+round)%len(sizes)]
			seed := int64(round*100_000 + i)
			got, want := ar.New(), NewAggregate()
			fill(got, rand.New(rand.NewSource(seed)), n)
			fill(want, rand.New(rand.NewSource(seed)), n)
			g, err := got.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			w, err := want.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(g, w) {
				t.Fatalf("round %d, aggregate %d (%d users): arena's encoding differs from NewAggregate's", round, i, n)
			}
		}
		if ar.Len() != 3*arenaChunk/2 {
			t.Fatalf("Len = %d", ar.Len())
		}
		ar.Reset()
		if len(ar.chunks) != 2 {
			t.Fatalf("after a round of 1.5 chunks Reset keeps %d chunks, want 2", len(ar.chunks))
		}
	}
	ar.New()
	ar.Reset()
	if len(ar.chunks) != 1 || ar.Len() != 0 {
		t.Fatalf("after a round of one aggregate: %d chunks, Len %d", len(ar.chunks), ar.Len())
	}
	a := ar.New()
	if a.Events != 0 || !a.Users.Empty() || !a.Sessions.Empty() || a.Purchasers != nil || a.Sums != ([NumSums]int64{}) {
		t.Fatalf("a reused aggregate is not empty: %+v", a)
	}
}
