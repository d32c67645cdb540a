package block

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/sextant-analytics/sextant/pkg/analytics"
)

// benchLayout has 13 sections, as a projection's: minute and hour totals,
// hourly rollups by one or two dimensions, daily ones.
var benchLayout = func() Layout {
	l := Layout{{Grain: Minute}, {Grain: Hour}}
	for _, d := range [][]string{{"eventName"}, {"pagePath"}, {"countryId"}, {"deviceCategory"}, {"browser"}, {"operatingSystem"}, {"sessionSource", "sessionMedium"}, {"sessionCampaignName"}, {"eventName", "pagePath"}} {
		l = append(l, Section{Grain: Hour, Dims: d})
	}
	l = append(l, Section{Grain: Day, Dims: []string{"pagePath"}}, Section{Grain: Day, Dims: []string{"countryId"}})
	return l
}()

// benchEvent is one event's cells: a time and a key per section.
type benchEvent struct {
	t    int64
	user uint64
	keys []string
}

// benchEvents makes n events within [from, from+span) with up to
// distinct keys per section.
func benchEvents(n int, from, span int64, distinct int) []benchEvent {
	rng := rand.New(rand.NewPCG(7, uint64(n)))
	pool := make([][]string, len(benchLayout))
	for i, s := range benchLayout {
		k := 1
		if len(s.Dims) > 0 {
			k = distinct
		}
		for j := range k {
			vals := make([]string, len(s.Dims))
			for d := range vals {
				vals[d] = fmt.Sprintf("%s/value-%d", s.Dims[d], j*(d+1)%distinct)
			}
			pool[i] = append(pool[i], JoinDims(vals...))
		}
	}
	evs := make([]benchEvent, n)
	for e := range evs {
		ev := benchEvent{t: from + rng.Int64N(span), user: rng.Uint64() % 2000, keys: make([]string, len(benchLayout))}
		for i := range benchLayout {
			// Skewed: most events hit a few keys.
			p := pool[i]
			ev.keys[i] = p[min(len(p)-1, int(rng.ExpFloat64()*float64(len(p))/8))]
		}
		evs[e] = ev
	}
	return evs
}

func fill(b *Builder, evs []benchEvent) {
	for _, ev := range evs {
		for i, s := range benchLayout {
			a := b.Agg(i, s.Grain.Floor(ev.t), ev.keys[i])
			a.Events++
			a.Users.Add(ev.user * 0x9e3779b97f4a7c15)
		}
	}
}

// BenchmarkBuilderAgg: ns per event (13 Agg calls), entries existing.
func BenchmarkBuilderAgg(b *testing.B) {
	evs := benchEvents(1<<14, testDay, 3600, 300)
	bl := NewBuilder(benchLayout)
	for _, ev := range evs {
		for i, s := range benchLayout {
			bl.Agg(i, s.Grain.Floor(ev.t), ev.keys[i])
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	var sink *analytics.Aggregate
	for i := range b.N {
		ev := &evs[i&(len(evs)-1)]
		for j, s := range benchLayout {
			sink = bl.Agg(j, s.Grain.Floor(ev.t), ev.keys[j])
		}
	}
	_ = sink
}

func BenchmarkAppendTo(b *testing.B) {
	bl := NewBuilder(benchLayout)
	fill(bl, benchEvents(20000, testDay, 3600, 300))
	dst, _ := bl.AppendTo(nil, testDay)
	b.SetBytes(int64(len(dst)))
	b.ReportMetric(float64(bl.Entries()), "entries")
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		dst, _ = bl.AppendTo(dst[:0], testDay)
	}
}

// bigBlock is a day block of many entries.
func bigBlock(b *testing.B) []byte {
	bl := NewBuilder(benchLayout)
	fill(bl, benchEvents(100000, testDay, 86400, 2000))
	data, err := bl.AppendTo(nil, testDay)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

func BenchmarkOpenEntries(b *testing.B) {
	data := bigBlock(b)
	s := benchLayout[10] // hour × (eventName, pagePath)
	r, _ := Open(data)
	n := r.Count(r.Find(s))
	b.Run("string", func(b *testing.B) {
		b.ReportMetric(float64(n), "entries")
		b.ReportAllocs()
		for range b.N {
			r, err := Open(data)
			if err != nil {
				b.Fatal(err)
			}
			var sum int
			if err := r.Entries(r.Find(s), func(bucket int64, dims string, value []byte) error {
				sum += len(dims) + len(value)
				return nil
			}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("bytes", func(b *testing.B) {
		b.ReportMetric(float64(n), "entries")
		b.ReportAllocs()
		for range b.N {
			r, err := Open(data)
			if err != nil {
				b.Fatal(err)
			}
			var sum int
			if err := r.EntriesBytes(r.Find(s), func(bucket int64, dims, value []byte) error {
				sum += len(dims) + len(value)
				return nil
			}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkMerge(b *testing.B) {
	b.Run("50 additions into an hour", func(b *testing.B) {
		hour := int64(testDay + 5*3600)
		bl := NewBuilder(benchLayout)
		fill(bl, benchEvents(50000, hour, 3600, 300))
		big, _ := bl.AppendTo(nil, hour)
		inputs := [][]byte{big}
		evs := benchEvents(50*40, hour, 3600, 300)
		for i := range 50 {
			bl.Reset()
			fill(bl, evs[i*40:(i+1)*40])
			add, _ := bl.AppendTo(nil, hour)
			inputs = append(inputs, add)
		}
		var dst []byte
		b.SetBytes(int64(len(big)))
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			var err error
			if dst, err = Merge(dst[:0], hour, nil, inputs...); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("24 hours into a day", func(b *testing.B) {
		var inputs [][]byte
		bl := NewBuilder(benchLayout)
		total := 0
		for h := range 24 {
			hour := testDay + int64(h)*3600
			bl.Reset()
			fill(bl, benchEvents(5000, hour, 3600, 300))
			blk, _ := bl.AppendTo(nil, hour)
			inputs = append(inputs, blk)
			total += len(blk)
		}
		var dst []byte
		b.SetBytes(int64(total))
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			var err error
			if dst, err = Merge(dst[:0], testDay, hourToDay, inputs...); err != nil {
				b.Fatal(err)
			}
		}
	})
}
