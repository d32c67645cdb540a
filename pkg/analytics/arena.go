package analytics

import "github.com/sextant-analytics/sextant/pkg/sketch"

// Arena hands out aggregates in chunks and reuses them once Reset: the
// projection's open additions make a few aggregates per event and drop
// them all at each checkpoint, so one allocation per aggregate (and five
// per sketch) were most of its garbage. An arena's aggregate holds its
// base sketches and the first hashes of their exact sets in its own slot;
// Reset keeps the slots (those the last round used) and the sets' memory
// up to a bound. Aggregates of an arena are counted into (Sketch.Add) and
// encoded, never merged with MergeBuf's buffer, and none is used after
// Reset. An Arena is not safe for concurrent use.
type Arena struct {
	chunks [][]slot
	n      int // slots handed out since Reset
}

// inlineHashes is how many hashes each base sketch of an arena's
// aggregate holds in its slot: most entries of an hour's additions see
// one or two users and sessions.
const inlineHashes = 2

// keepHashes is the largest exact set whose memory a reused slot keeps.
const keepHashes = 64

// arenaChunk is how many slots a chunk holds (about 600 bytes each).
const arenaChunk = 512

type slot struct {
	a     Aggregate
	sk    [numBase]sketch.Sketch
	small [numBase][inlineHashes]uint64
	extra [NumSketches - numBase]sketch.Sketch
}

// New returns an empty aggregate, valid until the next Reset.
func (ar *Arena) New() *Aggregate {
	c, i := ar.n/arenaChunk, ar.n%arenaChunk
	if c == len(ar.chunks) {
		ar.chunks = append(ar.chunks, make([]slot, arenaChunk))
	}
	ar.n++
	s := &ar.chunks[c][i]
	s.a = Aggregate{spare: &s.extra}
	ptrs := s.a.sketches()
	for k := range s.sk {
		s.sk[k].Reset(SketchPrecision(k), s.small[k][:], keepHashes)
		*ptrs[k] = &s.sk[k]
	}
	return &s.a
}

// Len is how many aggregates the arena handed out since Reset.
func (ar *Arena) Len() int { return ar.n }

// Reset takes back every aggregate the arena handed out. It keeps as many
// chunks as this round used, so that an arena's memory follows its
// recent peak, not its largest ever.
func (ar *Arena) Reset() {
	keep := min(max((ar.n+arenaChunk-1)/arenaChunk, 1), len(ar.chunks))
	clear(ar.chunks[keep:])
	ar.chunks = ar.chunks[:keep]
	ar.n = 0
}
