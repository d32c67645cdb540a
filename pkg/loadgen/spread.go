package loadgen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
)

// Spread distributes traffic over many properties: the property of each
// batch is drawn at random, property k (0-based, in the order of the keys)
// with probability proportional to (k+1)^-s. s = 0 spreads the traffic
// evenly; s = 1 is the classic Zipf law (with 10,000 properties the first
// gets 10 % of the events, the first 100 half, and most of the others a
// handful), larger s concentrates it further on the first properties, as
// merchants' traffic is: most tiny, a few large.
//
// Unlike math/rand's Zipf, any s >= 0 is allowed (the distribution is a
// table of n cumulative weights, searched by bisection).
type Spread struct {
	s   float64
	cum []float64 // cum[k] = P(property <= k); cum[n-1] = 1
}

// NewSpread returns the Zipf spread of exponent s over n properties.
func NewSpread(n int, s float64) (*Spread, error) {
	if n < 1 {
		return nil, fmt.Errorf("loadgen: spread over %d properties", n)
	}
	if s < 0 || math.IsNaN(s) || math.IsInf(s, 0) {
		return nil, fmt.Errorf("loadgen: spread exponent %v must be >= 0", s)
	}
	cum := make([]float64, n)
	var sum float64
	for k := range cum {
		sum += math.Pow(float64(k+1), -s)
		cum[k] = sum
	}
	for k := range cum {
		cum[k] /= sum
	}
	cum[n-1] = 1
	return &Spread{s: s, cum: cum}, nil
}

// Len returns the number of properties.
func (z *Spread) Len() int { return len(z.cum) }

// Exponent returns s.
func (z *Spread) Exponent() float64 { return z.s }

// Share returns the expected share of the traffic of property k.
func (z *Spread) Share(k int) float64 {
	if k < 0 || k >= len(z.cum) {
		return 0
	}
	if k == 0 {
		return z.cum[0]
	}
	return z.cum[k] - z.cum[k-1]
}

// Pick draws a property index.
func (z *Spread) Pick(r *rand.Rand) int {
	u := r.Float64()
	k := sort.SearchFloat64s(z.cum, u)
	// SearchFloat64s returns the first k with cum[k] >= u; u == cum[k]
	// belongs to k as well (cum[k-1] < u), and u < 1 always.
	return min(k, len(z.cum)-1)
}
