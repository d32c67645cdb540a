package analytics

// Rollup is a set of stored dimensions, a bit per Dim. A rollup's cells
// keep the values of its dimensions and sum over all the others, whose
// places in the cell's tuple are empty. Summing the cells of a finer rollup
// over the dimensions a coarser one drops gives exactly the coarser one's
// cells (counters add up, sketches merge by union), so a report reads
// whichever materialised rollup covers its dimensions and filters with the
// fewest cells, and the answer does not depend on the choice.
type Rollup uint16

// AllDims keeps every dimension: one cell per distinct tuple.
const AllDims Rollup = 1<<NumDims - 1

// RollupOf is the rollup of the given dimensions.
func RollupOf(dims ...Dim) Rollup {
	var r Rollup
	for _, d := range dims {
		r |= 1 << d
	}
	return r
}

// Has reports whether d is one of r's dimensions.
func (r Rollup) Has(d Dim) bool { return r&(1<<d) != 0 }

// Covers reports whether every dimension of s is one of r's.
func (r Rollup) Covers(s Rollup) bool { return r&s == s }

// Project keeps r's dimensions of t and empties the others.
func (r Rollup) Project(t *Tuple) Tuple {
	if r == AllDims {
		return *t
	}
	var p Tuple
	for d := Dim(0); d < NumDims; d++ {
		if r.Has(d) {
			p[d] = t[d]
		}
	}
	return p
}

// RollupID names a materialised rollup in stored cells. IDs are stored:
// never renumber, only append.
type RollupID uint8

const (
	// RollupAll is one cell per distinct tuple: any combination of
	// dimensions. Hour cells only.
	RollupAll RollupID = iota
	RollupTotal
	RollupEventName
	RollupPagePath
	RollupCountry
	RollupTech
	RollupSource
	NumRollups
)

// Rollups are the materialised rollups by ID.
var Rollups = [NumRollups]Rollup{
	RollupAll:       AllDims,
	RollupTotal:     0,
	RollupEventName: RollupOf(EventName),
	RollupPagePath:  RollupOf(PagePath),
	RollupCountry:   RollupOf(CountryID),
	RollupTech:      RollupOf(DeviceCategory, Browser, OperatingSystem),
	RollupSource:    RollupOf(SessionSource, SessionMedium, SessionCampaign),
}

// RollupPreference is the order in which a report tries the rollups: the
// smallest (fewest distinct cells in practice) first.
var RollupPreference = [NumRollups]RollupID{
	RollupTotal, RollupTech, RollupSource, RollupCountry, RollupEventName, RollupPagePath, RollupAll,
}

// HourRollups are materialised at hour grain: all of them.
var HourRollups = []RollupID{RollupAll, RollupTotal, RollupEventName, RollupPagePath, RollupCountry, RollupTech, RollupSource}

// MinuteRollups are materialised at minute grain: every rollup but
// RollupAll, whose cells are about one per event and would cost a store
// row per event for the last hour's reports only.
var MinuteRollups = []RollupID{RollupTotal, RollupEventName, RollupPagePath, RollupCountry, RollupTech, RollupSource}

// Choose returns the first of the rollups, in preference order, that
// covers need.
func Choose(need Rollup, materialised []RollupID) (RollupID, bool) {
	for _, id := range RollupPreference {
		for _, m := range materialised {
			if m == id && Rollups[id].Covers(need) {
				return id, true
			}
		}
	}
	return 0, false
}
