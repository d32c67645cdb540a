package main

import (
	"math"
	"math/rand/v2"
	"strconv"

	"github.com/cespare/xxhash/v2"

	"github.com/sextant-analytics/sextant/pkg/sketch"
)

// HLLResult is the users sketch's error on many distinct users.
type HLLResult struct {
	Users  int `json:"users"`
	Trials int `json:"trials"`
	// Single: all users in one sketch. Merged: each user in 1 to 3 of 720
	// hour cells, the cells merged, as a 30-day report merges them.
	SingleErrorsPct []float64 `json:"singleErrorsPct"`
	MergedErrorsPct []float64 `json:"mergedErrorsPct"`
	MaxAbsErrorPct  float64   `json:"maxAbsErrorPct"`
	MeanAbsErrorPct float64   `json:"meanAbsErrorPct"`
}

// hllError counts users distinct client ids, hashed as the projection
// hashes them (xxhash of the client id), with sketches of the users
// precision.
func hllError(users, trials int) HLLResult {
	res := HLLResult{Users: users, Trials: trials}
	var sum float64
	for t := 0; t < trials; t++ {
		rng := rand.New(rand.NewPCG(uint64(t), 42))
		single := sketch.New(sketch.UsersPrecision)
		cells := make([]*sketch.Sketch, 720)
		for i := range cells {
			cells[i] = sketch.New(sketch.UsersPrecision)
		}
		prefix := strconv.Itoa(1_000_000_000+rng.IntN(1_000_000_000)) + "."
		for i := 0; i < users; i++ {
			h := xxhash.Sum64String(prefix + strconv.Itoa(1_600_000_000+i))
			single.Add(h)
			for k := 0; k <= rng.IntN(3); k++ {
				cells[rng.IntN(len(cells))].Add(h)
			}
		}
		merged := sketch.New(sketch.UsersPrecision)
		for _, c := range cells {
			_ = merged.Merge(c)
		}
		for _, x := range []struct {
			s   *sketch.Sketch
			dst *[]float64
		}{{single, &res.SingleErrorsPct}, {merged, &res.MergedErrorsPct}} {
			e := (float64(x.s.Estimate()) - float64(users)) / float64(users) * 100
			*x.dst = append(*x.dst, math.Round(e*1000)/1000)
			res.MaxAbsErrorPct = max(res.MaxAbsErrorPct, math.Abs(e))
			sum += math.Abs(e)
		}
	}
	res.MeanAbsErrorPct = sum / float64(2*trials)
	return res
}
