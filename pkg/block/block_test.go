package block

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sextant-analytics/sextant/pkg/analytics"
)

// testLayout is a projection-like layout: minute, hour and day sections.
var testLayout = Layout{
	{Grain: Minute},
	{Grain: Hour},
	{Grain: Hour, Dims: []string{"eventName"}},
	{Grain: Hour, Dims: []string{"pagePath"}},
	{Grain: Hour, Dims: []string{"countryId", "deviceCategory"}},
	{Grain: Day, Dims: []string{"eventName"}},
	{Grain: Day, Dims: []string{"sessionSource", "sessionMedium", "sessionCampaignName"}},
}

const testDay = 1_700_006_400 // a UTC midnight

// op adds to one entry: what one event does to one cell.
type op struct {
	sec    int
	t      int64 // event time
	dims   string
	events int64
	user   uint64
	sess   uint64
}

func (o op) apply(a *analytics.Aggregate) {
	a.Events += o.events
	a.PageViews += o.events / 2
	a.EngagementMsec += 10 * o.events
	a.Users.Add(o.user)
	if o.user%3 == 0 {
		a.ActiveUsers.Add(o.user)
	}
	if o.user%7 == 0 {
		a.NewUsers.Add(o.user)
	}
	a.Sessions.Add(o.sess)
	if o.sess%2 == 0 {
		a.EngagedSess.Add(o.sess)
	}
}

// randOps returns n events' ops within [from, from+span) seconds.
func randOps(rng *rand.Rand, layout Layout, n int, from, span int64, ndims int) []op {
	var ops []op
	for range n {
		t := from + rng.Int64N(span)
		user := rng.Uint64N(500) * 0x9e3779b97f4a7c15
		sess := user ^ rng.Uint64N(4)
		ev := 1 + rng.Int64N(3)
		for i, s := range layout {
			vals := make([]string, len(s.Dims))
			for j := range vals {
				vals[j] = fmt.Sprintf("%s-%d", s.Dims[j], rng.IntN(ndims))
			}
			ops = append(ops, op{sec: i, t: t, dims: JoinDims(vals...), events: ev, user: user, sess: sess})
		}
	}
	return ops
}

// build encodes ops (section indices into layout) with a Builder.
func build(t testing.TB, layout Layout, base int64, ops []op) []byte {
	t.Helper()
	b := NewBuilder(layout)
	for _, o := range ops {
		o.apply(b.Agg(o.sec, layout[o.sec].Grain.Floor(o.t), o.dims))
	}
	out, err := b.AppendTo(nil, base)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type modelKey struct {
	sec    string
	bucket int64
	dims   string
}

func secName(s Section) string { return s.Grain.String() + ":" + JoinDims(s.Dims...) }

// model applies ops to a map of aggregates, keyed by section name.
func model(layout Layout, ops []op) map[modelKey]*analytics.Aggregate {
	m := map[modelKey]*analytics.Aggregate{}
	for _, o := range ops {
		s := layout[o.sec]
		k := modelKey{secName(s), s.Grain.Floor(o.t), o.dims}
		if m[k] == nil {
			m[k] = analytics.NewAggregate()
		}
		o.apply(m[k])
	}
	return m
}

// decode reads a whole block into a model, checking counts and order.
func decode(t testing.TB, data []byte) map[modelKey]*analytics.Aggregate {
	t.Helper()
	r, err := Open(data)
	if err != nil {
		t.Fatal(err)
	}
	m := map[modelKey]*analytics.Aggregate{}
	for i, s := range r.Sections() {
		n := 0
		err := r.Entries(i, func(bucket int64, dims string, value []byte) error {
			n++
			if s.Grain.Floor(bucket) != bucket {
				return fmt.Errorf("bucket %d not on a %s", bucket, s.Grain)
			}
			a, err := analytics.UnmarshalAggregate(value)
			if err != nil {
				return err
			}
			m[modelKey{secName(s), bucket, dims}] = a
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n != r.Count(i) || n == 0 {
			t.Fatalf("section %d: %d entries, count %d", i, n, r.Count(i))
		}
	}
	return m
}

func enc(t testing.TB, a *analytics.Aggregate) []byte {
	b, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sameModel(t testing.TB, got, want map[modelKey]*analytics.Aggregate) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Fatalf("missing entry %+v", k)
		}
		if !bytes.Equal(enc(t, g), enc(t, w)) {
			t.Fatalf("entry %+v: got events %d users %d, want %d %d", k, g.Events, g.Users.Estimate(), w.Events, w.Users.Estimate())
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Fatalf("unexpected entry %+v", k)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name   string
		layout Layout
		base   int64
		events int
		span   int64
		ndims  int
	}{
		{"empty", testLayout, testDay, 0, 3600, 5},
		{"one", testLayout, testDay + 3600, 1, 3600, 5},
		{"hour", testLayout, testDay + 7200, 300, 3600, 20},
		{"day", testLayout, testDay, 2000, 86400, 50},
		{"dense", Layout{{Grain: Day}}, testDay, 6000, 86400, 1},
		{"before epoch", testLayout, -86400, 50, 86400, 3},
		{"no dims only", Layout{{Grain: Hour}}, testDay, 10, 3600, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(tc.events)))
			ops := randOps(rng, tc.layout, tc.events, tc.base, tc.span, tc.ndims)
			data := build(t, tc.layout, tc.base, ops)
			r, err := Open(data)
			if err != nil {
				t.Fatal(err)
			}
			if r.Base() != tc.base {
				t.Fatalf("base %d, want %d", r.Base(), tc.base)
			}
			want := model(tc.layout, ops)
			sameModel(t, decode(t, data), want)
			// Sections: the non-empty ones, in layout order.
			var secs []Section
			for _, s := range tc.layout {
				for k := range want {
					if k.sec == secName(s) {
						secs = append(secs, s)
						break
					}
				}
			}
			if got := r.Sections(); len(got) != len(secs) {
				t.Fatalf("%d sections, want %d", len(got), len(secs))
			}
			for i, s := range secs {
				if !r.Sections()[i].Equal(s) || r.Find(s) != i {
					t.Fatalf("section %d: %v, Find %d", i, r.Sections()[i], r.Find(s))
				}
				n := 0
				for k := range want {
					if k.sec == secName(s) {
						n++
					}
				}
				if r.Count(i) != n {
					t.Fatalf("section %d: count %d, want %d", i, r.Count(i), n)
				}
			}
			if r.Find(Section{Grain: Minute, Dims: []string{"nope"}}) != -1 {
				t.Fatal("Find of an absent section")
			}
		})
	}
}

func TestBuilderErrors(t *testing.T) {
	b := NewBuilder(Layout{{Grain: Hour}})
	b.Agg(0, testDay+60, "")
	if _, err := b.AppendTo(nil, testDay); err == nil {
		t.Fatal("bucket off its grain accepted")
	}
	b.Reset()
	if b.Entries() != 0 {
		t.Fatal("Reset kept entries")
	}
	b.Agg(0, testDay, "")
	if b.Entries() != 1 {
		t.Fatal("entries")
	}
	if _, err := b.AppendTo(nil, testDay); err != nil {
		t.Fatal(err)
	}
	for _, l := range []Layout{{{Grain: 9}}, {{Grain: Hour}, {Grain: Hour}}} {
		if _, err := NewBuilder(l).AppendTo(nil, testDay); err == nil {
			t.Fatalf("layout %v accepted", l)
		}
	}
}

func TestDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	ops := randOps(rng, testLayout, 500, testDay, 86400, 30)
	want := build(t, testLayout, testDay, ops)
	b := NewBuilder(testLayout)
	for i := range 5 {
		rng.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })
		b.Reset()
		for _, o := range ops {
			o.apply(b.Agg(o.sec, testLayout[o.sec].Grain.Floor(o.t), o.dims))
		}
		got, err := b.AppendTo(nil, testDay)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("order %d: different bytes", i)
		}
	}
}

func hourToDay(s Section) Grain {
	switch g := s.Grain; g {
	case Minute:
		return 0
	case Hour:
		return Day
	}
	return s.Grain
}

func TestMerge(t *testing.T) {
	// Input layouts: subsets of testLayout, in different orders.
	sub := func(idx ...int) Layout {
		var l Layout
		for _, i := range idx {
			l = append(l, testLayout[i])
		}
		return l
	}
	full := sub(0, 1, 2, 3, 4, 5, 6)
	type in struct {
		layout Layout
		base   int64
		span   int64
		events int
	}
	hours := func(n, events int, layouts ...Layout) []in {
		var ins []in
		for i := range n {
			ins = append(ins, in{layouts[i%len(layouts)], testDay + int64(i%24)*3600, 3600, events})
		}
		return ins
	}
	for _, tc := range []struct {
		name    string
		regrain func(Section) Grain
		base    int64
		ins     []in
	}{
		{"none", nil, testDay, nil},
		{"one", nil, testDay, hours(1, 50, full)},
		{"additions", nil, testDay + 3600, []in{
			{full, testDay + 3600, 3600, 40}, {full, testDay + 3600, 3600, 40}, {full, testDay + 3600, 3600, 3},
			{sub(4, 2), testDay + 3600, 3600, 40}, {sub(6), testDay + 3600, 3600, 10}, {sub(2, 0), testDay + 3600, 3600, 40},
		}},
		{"same twice", nil, testDay, []in{{full, testDay, 3600, 30}, {full, testDay, 3600, 30}}},
		{"hours into day identity", nil, testDay, hours(24, 30, full, sub(5, 1, 0))},
		{"hours into day", hourToDay, testDay, hours(24, 30, full, sub(5, 1, 0), sub(2, 6))},
		{"additions to day", hourToDay, testDay, hours(50, 10, full, sub(3, 4))},
		{"day drop all", func(Section) Grain { return 0 }, testDay, hours(3, 10, full)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, uint64(len(tc.ins))))
			var blocks [][]byte
			var outLayout Layout
			var all []op // in output section indices
			for _, in := range tc.ins {
				ops := randOps(rng, in.layout, in.events, in.base, in.span, 8)
				blocks = append(blocks, build(t, in.layout, in.base, ops))
				// Sections in order of first appearance, among those with
				// entries.
				nonEmpty := map[int]bool{}
				for _, o := range ops {
					nonEmpty[o.sec] = true
				}
				for _, o := range ops {
					s := in.layout[o.sec]
					if tc.regrain != nil {
						s.Grain = tc.regrain(s)
					}
					if s.Grain == 0 {
						continue
					}
					i := slices.IndexFunc(outLayout, s.Equal)
					if i < 0 {
						// Append in the input's section order.
						for j, s2 := range in.layout {
							if !nonEmpty[j] {
								continue
							}
							if tc.regrain != nil {
								s2.Grain = tc.regrain(s2)
							}
							if s2.Grain != 0 && slices.IndexFunc(outLayout, s2.Equal) < 0 {
								outLayout = append(outLayout, s2)
							}
						}
						i = slices.IndexFunc(outLayout, s.Equal)
					}
					o.sec = i
					all = append(all, o)
				}
			}
			want := build(t, outLayout, tc.base, all)
			got, err := Merge([]byte("prefix"), tc.base, tc.regrain, blocks...)
			if err != nil {
				t.Fatal(err)
			}
			if string(got[:6]) != "prefix" {
				t.Fatal("dst prefix lost")
			}
			got = got[6:]
			sameModel(t, decode(t, got), model(outLayout, all))
			if !bytes.Equal(got, want) {
				t.Fatalf("merge differs from one builder (%d vs %d bytes)", len(got), len(want))
			}
		})
	}
}

func TestMergeErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	good := build(t, testLayout, testDay, randOps(rng, testLayout, 10, testDay, 3600, 3))
	if _, err := Merge(nil, testDay, nil, good, good[:len(good)-1]); err == nil {
		t.Fatal("truncated input accepted")
	}
	if _, err := Merge(nil, testDay, func(Section) Grain { return 7 }, good); err == nil {
		t.Fatal("bad regrain accepted")
	}
	if _, err := Merge(nil, 1<<60, nil, good); err == nil {
		t.Fatal("base out of range accepted")
	}
}

// rawBlock encodes a block from raw parts, to build corrupt ones.
type rawSection struct {
	grain   Grain
	dims    []string
	count   int // -1: the number of entries
	size    int // -1: the bytes of entries
	entries []rawEntry
}

type rawEntry struct {
	rel   int64
	dims  string
	value []byte
}

func rawBlock(ver byte, base int64, secs ...rawSection) []byte {
	out := []byte{ver}
	out = binary.AppendVarint(out, base)
	out = binary.AppendUvarint(out, uint64(len(secs)))
	var bodies []byte
	for _, s := range secs {
		var body []byte
		for _, e := range s.entries {
			body = appendEntry(body, e.rel, e.dims, e.value)
		}
		count, size := s.count, s.size
		if count < 0 {
			count = len(s.entries)
		}
		if size < 0 {
			size = len(body)
		}
		out = appendHeader(out, Section{s.grain, s.dims}, count, size)
		bodies = append(bodies, body...)
	}
	return append(out, bodies...)
}

func TestCorrupt(t *testing.T) {
	a := analytics.NewAggregate()
	a.Events = 1
	v := enc(t, a)
	e := func(rel int64, dims string) rawEntry { return rawEntry{rel, dims, v} }
	sec := func(g Grain, es ...rawEntry) rawSection { return rawSection{g, []string{"d"}, -1, -1, es} }
	ok := rawBlock(version, testDay, sec(Hour, e(0, "a"), e(0, "b"), e(1, "a")), sec(Day, e(0, "x")))
	if _, err := Merge(nil, testDay, nil, ok); err != nil {
		t.Fatalf("valid raw block: %v", err)
	}
	rng := rand.New(rand.NewPCG(5, 5))
	real := build(t, testLayout, testDay, randOps(rng, testLayout, 20, testDay, 3600, 3))

	cases := []struct {
		name string
		data []byte
		open bool // Open succeeds, Entries fails
	}{
		{"nil", nil, false},
		{"version", rawBlock(2, testDay, sec(Hour, e(0, "a"))), false},
		{"grain", rawBlock(version, testDay, sec(4, e(0, "a"))), false},
		{"grain 0", rawBlock(version, testDay, sec(0, e(0, "a"))), false},
		{"base", rawBlock(version, 1<<60, sec(Hour, e(0, "a"))), false},
		{"empty section", rawBlock(version, testDay, rawSection{Hour, nil, -1, -1, nil}), false},
		{"duplicate section", rawBlock(version, testDay, sec(Hour, e(0, "a")), sec(Hour, e(0, "b"))), false},
		{"count lies high", rawBlock(version, testDay, rawSection{Hour, nil, 1 << 40, -1, []rawEntry{e(0, "")}}), false},
		{"count lies low", rawBlock(version, testDay, rawSection{Hour, nil, 1, -1, []rawEntry{e(0, ""), e(1, "")}}), true},
		{"count lies plausible", rawBlock(version, testDay, rawSection{Hour, nil, 3, -1, []rawEntry{e(0, ""), e(1, "")}}), true},
		{"size lies high", rawBlock(version, testDay, rawSection{Hour, nil, -1, 1 << 40, []rawEntry{e(0, "")}}), false},
		{"size lies low", rawBlock(version, testDay, rawSection{Hour, nil, -1, 3, []rawEntry{e(0, "")}}), false},
		{"sections lie", append([]byte{version, 0}, binary.AppendUvarint(nil, 1<<50)...), false},
		{"out of order", rawBlock(version, testDay, sec(Hour, e(1, "a"), e(0, "a"))), true},
		{"dims out of order", rawBlock(version, testDay, sec(Hour, e(0, "b"), e(0, "a"))), true},
		{"duplicate entry", rawBlock(version, testDay, sec(Hour, e(0, "a"), e(0, "a"))), true},
		{"rel out of range", rawBlock(version, testDay, sec(Minute, e(1<<55, "a"))), true},
		{"trailing", append(slices.Clone(ok), 0), false},
	}
	for n := range len(real) {
		cases = append(cases, struct {
			name string
			data []byte
			open bool
		}{fmt.Sprintf("truncated %d", n), real[:n], false})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Open(tc.data)
			if !tc.open {
				if err == nil {
					t.Fatal("Open accepted it")
				}
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("error %v is not ErrCorrupt", err)
				}
			} else {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				var ferr error
				for i := range r.Sections() {
					if ferr = r.Entries(i, func(int64, string, []byte) error { return nil }); ferr != nil {
						break
					}
				}
				if !errors.Is(ferr, ErrCorrupt) {
					t.Fatalf("Entries: %v", ferr)
				}
			}
			if _, err := Merge(nil, testDay, nil, tc.data); err == nil {
				t.Fatal("Merge accepted it")
			}
		})
	}
	// A corrupt value is found when merged with another entry.
	bad := rawBlock(version, testDay, sec(Hour, rawEntry{0, "a", []byte{1, 2}}))
	if _, err := Merge(nil, testDay, nil, bad, ok); err == nil {
		t.Fatal("corrupt value merged")
	}
}

// FuzzOpen: arbitrary bytes never panic; a block that reads is merged and
// rebuilt consistently.
func FuzzOpen(f *testing.F) {
	rng := rand.New(rand.NewPCG(6, 6))
	f.Add(build(f, testLayout, testDay, randOps(rng, testLayout, 3, testDay, 3600, 2)))
	f.Add(build(f, testLayout, testDay+3600, randOps(rng, testLayout, 1, testDay+3600, 3600, 2)))
	f.Add(build(f, Layout{{Grain: Day, Dims: []string{"a", "b"}}}, testDay, randOps(rng, Layout{{Grain: Day, Dims: []string{"a", "b"}}}, 2, testDay, 86400, 2)))
	f.Add(build(f, testLayout, testDay, nil))
	f.Add([]byte{})
	f.Add([]byte{version, 0, 1, byte(Hour), 0, 1, 3, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Open(data)
		if _, merr := Merge(nil, 0, nil, data, data); merr == nil && err != nil {
			t.Fatalf("Merge accepted what Open rejects: %v", err)
		}
		Merge(nil, testDay, hourToDay, data)
		if err != nil {
			return
		}
		// Read everything into a model; a block whose entries or values
		// do not decode stops here.
		var layout Layout
		var ops []func(b *Builder)
		m := map[modelKey]*analytics.Aggregate{}
		for i, s := range r.Sections() {
			layout = append(layout, s)
			err := r.Entries(i, func(bucket int64, dims string, value []byte) error {
				a, err := analytics.UnmarshalAggregate(value)
				if err != nil {
					return err
				}
				m[modelKey{secName(s), bucket, dims}] = a
				ops = append(ops, func(b *Builder) {
					if err := b.Agg(i, bucket, dims).Merge(a); err != nil {
						t.Fatal(err)
					}
				})
				return nil
			})
			if err != nil {
				return
			}
		}
		b := NewBuilder(layout)
		for _, op := range ops {
			op(b)
		}
		rebuilt, err := b.AppendTo(nil, r.Base())
		if err != nil {
			t.Fatal(err)
		}
		merged, err := Merge(nil, r.Base(), nil, data)
		if err != nil {
			t.Fatalf("Merge of a valid block: %v", err)
		}
		sameModel(t, decode(t, rebuilt), m)
		sameModel(t, decode(t, merged), m)
		// Merging with itself doubles counters and keeps sketches.
		twice, err := Merge(nil, r.Base(), nil, data, data)
		if err != nil {
			t.Fatalf("Merge with itself: %v", err)
		}
		for k, a := range decode(t, twice) {
			if w := m[k]; w == nil || a.Events != 2*w.Events || a.Users.Estimate() != w.Users.Estimate() {
				t.Fatalf("self merge of %+v", k)
			}
		}
		// And the rebuilt block merges to itself, byte for byte.
		again, err := Merge(nil, r.Base(), nil, rebuilt)
		if err != nil || !bytes.Equal(again, rebuilt) {
			t.Fatalf("Merge of the rebuilt block: %v", err)
		}
	})
}

func TestLargeValue(t *testing.T) {
	for _, n := range []int{0, 100, 2000, 5000} { // up to values of 3-byte lengths
		b := NewBuilder(Layout{{Grain: Hour}, {Grain: Day, Dims: []string{"x"}}})
		a := b.Agg(0, testDay, "")
		for i := range n {
			h := uint64(i+1) * 0x9e3779b97f4a7c15
			a.Users.Add(h)
			a.ActiveUsers.Add(h ^ 1)
			a.NewUsers.Add(h ^ 2)
			a.Sessions.Add(h)
		}
		a.Events = int64(n)
		b.Agg(1, testDay, "v").Events = 1
		data, err := b.AppendTo(nil, testDay)
		if err != nil {
			t.Fatal(err)
		}
		got := decode(t, data)
		if g := got[modelKey{"hour:", testDay, ""}]; g == nil || !bytes.Equal(enc(t, g), enc(t, a)) {
			t.Fatalf("n=%d: value changed", n)
		}
		merged, err := Merge(nil, testDay, nil, data, data)
		if err != nil {
			t.Fatal(err)
		}
		if g := decode(t, merged)[modelKey{"hour:", testDay, ""}]; g.Events != 2*int64(n) || g.Users.Estimate() != a.Users.Estimate() {
			t.Fatalf("n=%d: merge", n)
		}
	}
}
