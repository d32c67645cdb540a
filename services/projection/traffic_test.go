package projection

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	eventv1 "github.com/sextant-analytics/sextant/gen/sextant/event/v1"
	"github.com/sextant-analytics/sextant/pkg/analytics"
	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

type evOpt func(*eventv1.Event)

func at(d time.Duration) evOpt {
	return func(e *eventv1.Event) {
		e.EventTime = timestamppb.New(t0.Add(d))
		e.ReceiveTime = timestamppb.New(t0.Add(d))
	}
}
func page(p string) evOpt   { return func(e *eventv1.Event) { e.Page = &eventv1.Page{Path: p} } }
func sess(id int64) evOpt   { return func(e *eventv1.Event) { e.SessionId = id } }
func engage(ms int64) evOpt { return func(e *eventv1.Event) { e.EngagementTimeMsec = ms } }
func user(u string) evOpt   { return func(e *eventv1.Event) { e.UserId = u } }
func source(s, m string) evOpt {
	return func(e *eventv1.Event) { e.TrafficSource = &eventv1.TrafficSource{Source: s, Medium: m} }
}
func received(d time.Duration) evOpt {
	return func(e *eventv1.Event) { e.ReceiveTime = timestamppb.New(t0.Add(d)) }
}

func ev(id, client, name string, opts ...evOpt) *eventv1.Event {
	e := &eventv1.Event{EventId: id, PropertyId: "p1", ClientId: client, Name: name,
		EventTime: timestamppb.New(t0), ReceiveTime: timestamppb.New(t0)}
	for _, o := range opts {
		o(e)
	}
	return e
}

func noStoredCells(string, viewstore.Grain, int64, func(viewstore.Cell) error) error { return nil }

// totals merges every hour cell of the partition, and groups them by a
// dimension too.
func totals(t *testing.T, p *partition, by analytics.Dim) (*analytics.Aggregate, map[string]*analytics.Aggregate) {
	t.Helper()
	all := analytics.NewAggregate()
	groups := map[string]*analytics.Aggregate{}
	for k, a := range p.cells {
		if k.grain != viewstore.Hour {
			continue
		}
		if err := all.Merge(a.agg); err != nil {
			t.Fatal(err)
		}
		tup, err := analytics.DecodeTuple(k.dims)
		if err != nil {
			t.Fatal(err)
		}
		g := groups[tup[by]]
		if g == nil {
			g = analytics.NewAggregate()
			groups[tup[by]] = g
		}
		_ = g.Merge(a.agg)
	}
	return all, groups
}

func summary(a *analytics.Aggregate) string {
	return fmt.Sprintf("events=%d views=%d users=%d active=%d new=%d sessions=%d engaged=%d",
		a.Events, a.PageViews, a.Users.Estimate(), a.ActiveUsers.Estimate(), a.NewUsers.Estimate(), a.Sessions.Estimate(), a.EngagedSess.Estimate())
}

func TestApply(t *testing.T) {
	for _, tc := range []struct {
		name    string
		events  []*eventv1.Event
		by      analytics.Dim
		want    string
		groups  map[string]string
		applied int64
		dups    int64
	}{
		{
			name:    "one page view",
			events:  []*eventv1.Event{ev("e1", "c1", "page_view", page("/a"))},
			want:    "events=1 views=1 users=1 active=0 new=0 sessions=1 engaged=0",
			applied: 1,
		},
		{
			name: "duplicate event id counts once",
			events: []*eventv1.Event{
				ev("e1", "c1", "page_view"), ev("e1", "c1", "page_view", received(time.Minute)),
			},
			want:    "events=1 views=1 users=1 active=0 new=0 sessions=1 engaged=0",
			applied: 1, dups: 1,
		},
		{
			name: "the same event id from another visitor or property is not a duplicate",
			events: []*eventv1.Event{
				ev("e1", "c1", "page_view"), ev("e1", "c2", "page_view"),
				func() *eventv1.Event { e := ev("e1", "c1", "page_view"); e.PropertyId = "p2"; return e }(),
			},
			want:    "events=3 views=3 users=2 active=0 new=0 sessions=2 engaged=0",
			applied: 3,
		},
		{
			name: "duplicate outside the dedupe window counts again",
			events: []*eventv1.Event{
				ev("e1", "c1", "page_view"), ev("e1", "c1", "page_view", received(25*time.Hour)),
			},
			want:    "events=2 views=2 users=1 active=1 new=0 sessions=1 engaged=1",
			applied: 2,
		},
		{
			name: "server-side sessions split after 30 minutes of inactivity",
			events: []*eventv1.Event{
				ev("e1", "c1", "page_view", at(0)),
				ev("e2", "c1", "scroll", at(29*time.Minute)),
				ev("e3", "c1", "page_view", at(60*time.Minute)), // 31 min after e2
			},
			want:    "events=3 views=2 users=1 active=0 new=0 sessions=2 engaged=0",
			applied: 3,
		},
		{
			name: "SDK session ids decide, whatever the gap",
			events: []*eventv1.Event{
				ev("e1", "c1", "page_view", sess(100)),
				ev("e2", "c1", "page_view", sess(100), at(50*time.Minute)),
				ev("e3", "c1", "page_view", sess(200), at(51*time.Minute)),
			},
			want:    "events=3 views=3 users=1 active=1 new=0 sessions=2 engaged=1",
			applied: 3,
		},
		{
			name: "engaged by two page views, by engagement time, new users are active",
			events: []*eventv1.Event{
				ev("e1", "c1", "page_view"), ev("e2", "c1", "page_view"), // engaged
				ev("e3", "c2", "user_engagement", engage(11_000)),          // engaged
				ev("e4", "c3", "first_visit"), ev("e5", "c3", "page_view"), // new, active, not engaged
				ev("e6", "c4", "page_view"), // nothing
			},
			want:    "events=6 views=4 users=4 active=3 new=1 sessions=4 engaged=2",
			applied: 6,
		},
		{
			name: "user id wins over client id for users, not for sessions",
			events: []*eventv1.Event{
				ev("e1", "phone", "page_view", user("u1")), ev("e2", "laptop", "page_view", user("u1")),
			},
			want:    "events=2 views=2 users=1 active=0 new=0 sessions=2 engaged=0",
			applied: 2,
		},
		{
			name: "the session keeps the source of its first event",
			events: []*eventv1.Event{
				ev("e1", "c1", "page_view", source("newsletter", "email")),
				ev("e2", "c1", "page_view", source("(direct)", "(none)"), at(time.Minute)),
				ev("e3", "c2", "page_view"),
			},
			by:      analytics.SessionSource,
			want:    "events=3 views=3 users=2 active=1 new=0 sessions=2 engaged=1",
			groups:  map[string]string{"newsletter": "events=2 views=2 users=1 active=1 new=0 sessions=1 engaged=1", "(direct)": "events=1 views=1 users=1 active=0 new=0 sessions=1 engaged=0"},
			applied: 3,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := newPartition(0, DefaultRules(), viewstore.Progress{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i, e := range tc.events {
				if _, err := p.apply(e, int64(i), noStoredCells, time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			all, groups := totals(t, p, tc.by)
			if got := summary(all); got != tc.want {
				t.Errorf("totals %s\n want %s", got, tc.want)
			}
			for k, want := range tc.groups {
				if g := groups[k]; g == nil || summary(g) != want {
					t.Errorf("group %q: %v, want %s", k, g, want)
				}
			}
			if p.progress.Applied != tc.applied || p.progress.Duplicates != tc.dups {
				t.Errorf("applied %d dups %d, want %d %d", p.progress.Applied, p.progress.Duplicates, tc.applied, tc.dups)
			}
		})
	}
}

func TestMinuteAndHourCells(t *testing.T) {
	p, _ := newPartition(0, DefaultRules(), viewstore.Progress{}, nil)
	for i, d := range []time.Duration{0, 30 * time.Second, 90 * time.Second, 70 * time.Minute} {
		if _, err := p.apply(ev(fmt.Sprint(i), "c1", "page_view", at(d)), int64(i), noStoredCells, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	count := map[viewstore.Grain]map[int64]int64{viewstore.Minute: {}, viewstore.Hour: {}}
	for k, a := range p.cells {
		if k.grain.Rollup() == uint8(analytics.RollupTotal) {
			count[k.grain.Time()][k.bucket-t0.Unix()] += a.agg.Events
		}
	}
	if got := fmt.Sprint(count[viewstore.Minute]); got != "map[0:2 60:1 4200:1]" {
		t.Errorf("minute cells %s", got)
	}
	if got := fmt.Sprint(count[viewstore.Hour]); got != "map[0:3 3600:1]" {
		t.Errorf("hour cells %s", got)
	}
}

// A partition rebuilt from its checkpoint continues exactly where the
// first left off: sessions continue, duplicates are still dropped, and
// cells hold absolute values loaded from the store.
func TestCheckpointRestore(t *testing.T) {
	rules := DefaultRules()
	p, _ := newPartition(3, rules, viewstore.Progress{}, nil)
	first := []*eventv1.Event{ev("e1", "c1", "page_view", source("news", "email")), ev("e2", "c2", "page_view")}
	for i, e := range first {
		if _, err := p.apply(e, int64(i), noStoredCells, time.Now()); err != nil {
			t.Fatal(err)
		}
		p.progress.Next = int64(i + 1)
	}
	cp, err := p.checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	// Two events of one minute that differ in their session source: two
	// cells in the whole-tuple and source rollups, one in the others, at
	// hour grain (7 rollups) and minute grain (6).
	if cp.Progress.Next != 2 || cp.Progress.Partition != 3 || len(cp.Cells) != 9+7 || len(cp.Watermarks) != 1 {
		t.Fatalf("checkpoint %+v", cp.Progress)
	}
	for _, c := range cp.Cells {
		if c.Partition != 3 {
			t.Fatalf("cell of partition %d", c.Partition)
		}
	}
	stored := map[int64][]viewstore.Cell{}
	for _, c := range cp.Cells {
		stored[c.Bucket] = append(stored[c.Bucket], c)
	}
	load := func(_ string, g viewstore.Grain, bucket int64, fn func(viewstore.Cell) error) error {
		for _, c := range stored[bucket] {
			if c.Grain == g {
				if err := fn(c); err != nil {
					return err
				}
			}
		}
		return nil
	}

	q, err := newPartition(3, rules, cp.Progress, cp.State)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range []*eventv1.Event{
		ev("e1", "c1", "page_view", received(time.Minute)), // a retry
		ev("e3", "c1", "page_view", at(2*time.Minute)),     // same session, now engaged
	} {
		if _, err := q.apply(e, int64(2+i), load, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	all, groups := totals(t, q, analytics.SessionSource)
	if got, want := summary(all), "events=3 views=3 users=2 active=1 new=0 sessions=2 engaged=1"; got != want {
		t.Fatalf("after restore %s, want %s", got, want)
	}
	if g := groups["news"]; g == nil || g.Events != 2 {
		t.Fatalf("session source lost across the restore: %v", groups)
	}
	if q.progress.Duplicates != 1 || q.progress.Applied != 3 {
		t.Fatalf("progress %+v", q.progress)
	}
}

func TestPruneForgetsOnlyWhatCannotMatter(t *testing.T) {
	rules := DefaultRules()
	p, _ := newPartition(0, rules, viewstore.Progress{}, nil)
	_, _ = p.apply(ev("old", "c1", "page_view"), 0, noStoredCells, time.Now())
	_, _ = p.apply(ev("new", "c2", "page_view", at(25*time.Hour)), 1, noStoredCells, time.Now())
	p.progress.Next = 2
	cp, err := p.checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	// The session idle for 25 hours is gone, the other kept.
	if p.sessions.get("p1\x1fc1") != nil || p.sessions.get("p1\x1fc2") == nil {
		t.Fatalf("sessions after prune: c1 %v, c2 %v", p.sessions.get("p1\x1fc1"), p.sessions.get("p1\x1fc2"))
	}
	// From the stored state: the old id is past the dedupe window, the
	// new one is not.
	q, err := newPartition(0, rules, cp.Progress, cp.State)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id, client string
		counted    bool
	}{{"old", "c1", true}, {"new", "c2", false}} {
		counted, err := q.apply(ev(tc.id, tc.client, "page_view", at(25*time.Hour+time.Minute)), 5, noStoredCells, time.Now())
		if err != nil || counted != tc.counted {
			t.Errorf("%s again: counted %v (%v), want %v", tc.id, counted, err, tc.counted)
		}
	}
	if q.sessions.get("p1\x1fc1") != nil && q.sessions.get("p1\x1fc1").number != 1 {
		t.Errorf("a pruned session came back: %+v", q.sessions.get("p1\x1fc1"))
	}
}

func FuzzDecodeSession(f *testing.F) {
	f.Add(encodeSession(&session{id: 1, number: 2, source: "a", medium: "b", engaged: true}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeSession(b)
		if err != nil {
			return
		}
		again, err := decodeSession(encodeSession(s))
		if err != nil || *again != *s {
			t.Fatalf("round trip: %+v vs %+v (%v)", again, s, err)
		}
	})
}

// A checkpoint that reached the store only in part (cells written, progress
// not) is repaired by re-applying from the older progress: cells that
// already reflect a record are not counted twice.
func TestCellsAheadOfProgress(t *testing.T) {
	rules := DefaultRules()
	p, _ := newPartition(0, rules, viewstore.Progress{}, nil)
	events := []*eventv1.Event{ev("e1", "c1", "page_view"), ev("e2", "c2", "page_view"), ev("e3", "c1", "scroll")}
	for i, e := range events {
		if _, err := p.apply(e, int64(i), noStoredCells, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	cp, _ := p.checkpoint()
	stored := cp.Cells
	load := func(_ string, g viewstore.Grain, bucket int64, fn func(viewstore.Cell) error) error {
		for _, c := range stored {
			if c.Grain == g && c.Bucket == bucket {
				if err := fn(c); err != nil {
					return err
				}
			}
		}
		return nil
	}
	// Restart with neither progress nor state: only the cells made it.
	q, _ := newPartition(0, rules, viewstore.Progress{}, nil)
	for i, e := range append(events, ev("e4", "c3", "page_view")) {
		if _, err := q.apply(e, int64(i), load, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	all, _ := totals(t, q, analytics.EventName)
	if all.Events != 4 || all.Users.Estimate() != 3 {
		t.Fatalf("events %d users %d, want 4 and 3", all.Events, all.Users.Estimate())
	}
}

// State that reached the store ahead of the progress (dedupe entries and
// sessions of records past it) makes re-applied records neither duplicates
// nor double counts: the counters come out as if nothing had failed.
func TestStateAheadOfProgress(t *testing.T) {
	rules := DefaultRules()
	rules.ExcludeBots = true
	bot := func(e *eventv1.Event) *eventv1.Event { e.Device = &eventv1.Device{Category: "bot"}; return e }
	events := []*eventv1.Event{ev("e1", "c1", "page_view"), bot(ev("e2", "b1", "page_view")), ev("e3", "c1", "page_view")}
	p, _ := newPartition(0, rules, viewstore.Progress{}, nil)
	for i, e := range events {
		if _, err := p.apply(e, int64(i), noStoredCells, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	cp, _ := p.checkpoint()
	load := func(_ string, g viewstore.Grain, bucket int64, fn func(viewstore.Cell) error) error {
		for _, c := range cp.Cells {
			if c.Grain == g && c.Bucket == bucket {
				if err := fn(c); err != nil {
					return err
				}
			}
		}
		return nil
	}
	// Cells and state were stored, the progress was not.
	q, err := newPartition(0, rules, viewstore.Progress{}, cp.State)
	if err != nil {
		t.Fatal(err)
	}
	again := append(events, ev("e1", "c1", "page_view", received(time.Minute))) // and a real retry
	for i, e := range again {
		if _, err := q.apply(e, int64(i), load, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if q.progress.Applied != 2 || q.progress.Excluded != 1 || q.progress.Duplicates != 1 {
		t.Fatalf("applied %d excluded %d duplicates %d, want 2 1 1", q.progress.Applied, q.progress.Excluded, q.progress.Duplicates)
	}
	all, _ := totals(t, q, analytics.EventName)
	if got, want := summary(all), "events=2 views=2 users=1 active=1 new=0 sessions=1 engaged=1"; got != want {
		t.Fatalf("%s, want %s", got, want)
	}
	if s := q.sessions.get("p1\x1fc1"); s == nil || s.pageViews != 2 {
		t.Fatalf("session counted a re-applied record twice: %+v", s)
	}
}

// Every rollup of a grain sums to the same totals, and each rollup's cells
// are the whole-tuple cells summed over the dimensions it drops.
func TestRollupsAgree(t *testing.T) {
	p, _ := newPartition(0, DefaultRules(), viewstore.Progress{}, nil)
	paths := []string{"/", "/a", "/b"}
	for i := range 60 {
		e := ev(fmt.Sprint(i), fmt.Sprintf("c%d", i%7), []string{"page_view", "scroll"}[i%2], at(time.Duration(i)*97*time.Second))
		e.Page = &eventv1.Page{Path: paths[i%3]}
		if i%5 == 0 {
			e = ev(fmt.Sprint(i), fmt.Sprintf("c%d", i%7), "page_view", source("news", "email"), at(time.Duration(i)*97*time.Second))
		}
		if _, err := p.apply(e, int64(i), noStoredCells, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	type key struct {
		grain  viewstore.Grain
		bucket int64
		dims   string
	}
	want := map[key]*analytics.Aggregate{} // from the whole-tuple hour cells and, for minutes, recomputed below
	got := map[key]*analytics.Aggregate{}
	add := func(m map[key]*analytics.Aggregate, k key, a *analytics.Aggregate) {
		if m[k] == nil {
			m[k] = analytics.NewAggregate()
		}
		if err := m[k].Merge(a); err != nil {
			t.Fatal(err)
		}
	}
	minuteTotal := analytics.NewAggregate()
	for k, cs := range p.cells {
		id := analytics.RollupID(k.grain.Rollup())
		if k.grain.Time() == viewstore.Minute && id == analytics.RollupTotal {
			_ = minuteTotal.Merge(cs.agg)
		}
		if k.grain.Time() != viewstore.Hour {
			continue
		}
		if id != analytics.RollupAll {
			add(got, key{k.grain, k.bucket, k.dims}, cs.agg)
			continue
		}
		tu, err := analytics.DecodeTuple(k.dims)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range analytics.HourRollups[1:] {
			add(want, key{viewstore.Hour.WithRollup(uint8(r)), k.bucket, analytics.Rollups[r].Project(&tu).Encode()}, cs.agg)
		}
	}
	if len(got) != len(want) || len(got) == 0 {
		t.Fatalf("%d rollup cells, want %d", len(got), len(want))
	}
	for k, w := range want {
		if g := got[k]; g == nil || summary(g) != summary(w) {
			t.Errorf("cell %v: %v, want %s", k, g, summary(w))
		}
	}
	all, _ := totals(t, p, analytics.PagePath)
	if summary(minuteTotal) != summary(all) || all.Events != 60 {
		t.Errorf("minute totals %s, hour totals %s", summary(minuteTotal), summary(all))
	}
}

// A partition with nothing committed does not read buckets from the store
// until it committed them itself; one with committed events always does.
func TestFreshPartitionSkipsLoads(t *testing.T) {
	for _, tc := range []struct {
		name     string
		progress viewstore.Progress
		first    int // loads for the first event
		again    int // loads for an event in the same buckets after eviction
	}{
		{"fresh", viewstore.Progress{}, 0, len(analytics.MinuteRollups) + len(analytics.HourRollups)},
		{"fresh from an offset", viewstore.Progress{Next: 500, Duplicates: 3}, 0, len(analytics.MinuteRollups) + len(analytics.HourRollups)},
		{"committed before", viewstore.Progress{Next: 10, Applied: 10}, len(analytics.MinuteRollups) + len(analytics.HourRollups), len(analytics.MinuteRollups) + len(analytics.HourRollups)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := newPartition(0, DefaultRules(), tc.progress, nil)
			if err != nil {
				t.Fatal(err)
			}
			loads := 0
			load := func(string, viewstore.Grain, int64, func(viewstore.Cell) error) error { loads++; return nil }
			now := time.Now()
			if _, err := p.apply(ev("a", "c1", "page_view"), tc.progress.Next, load, now); err != nil {
				t.Fatal(err)
			}
			if loads != tc.first {
				t.Errorf("first event: %d loads, want %d", loads, tc.first)
			}
			if _, err := p.checkpoint(); err != nil {
				t.Fatal(err)
			}
			p.committed(now.Add(time.Hour), time.Minute) // evicts every bucket
			loads = 0
			if _, err := p.apply(ev("b", "c1", "page_view"), tc.progress.Next+1, load, now.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if loads != tc.again {
				t.Errorf("after eviction: %d loads, want %d", loads, tc.again)
			}
		})
	}
}

// Past the memory budget, committed evicts the buckets touched longest ago
// until the cells take three quarters of the partition's share; what it
// keeps, and what an evicted bucket reads back from the store, add up to
// the same totals.
func TestCellBudgetEvictsOldestBuckets(t *testing.T) {
	p, _ := newPartition(0, DefaultRules(), viewstore.Progress{Next: 1, Applied: 1}, nil)
	mem := &Memory{limit: 1 << 40}
	other := &partition{mem: mem, bytes: 0} // a second partition sharing the budget, holding nothing
	mem.join()
	mem.join()
	p.mem = mem
	stored := map[bucketKey][]viewstore.Cell{}
	loads := 0
	load := func(prop string, g viewstore.Grain, b int64, fn func(viewstore.Cell) error) error {
		loads++
		for _, c := range stored[bucketKey{prop, g, b}] {
			if err := fn(c); err != nil {
				return err
			}
		}
		return nil
	}
	commit := func(now time.Time, limit int) {
		mem.limit = int64(limit)
		cp, err := p.checkpoint()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cp.Cells {
			c.Value = append([]byte(nil), c.Value...)
			bk := bucketKey{c.Property, c.Grain, c.Bucket}
			cells := stored[bk][:0:0]
			for _, o := range stored[bk] {
				if o.Dims != c.Dims {
					cells = append(cells, o)
				}
			}
			stored[bk] = append(cells, c)
		}
		p.committed(now, time.Hour)
	}
	now := time.Now()
	// Ten hours, touched in order: hour 9 is the newest.
	for h := range 10 {
		for i := range 20 {
			e := ev(fmt.Sprintf("%d-%d", h, i), fmt.Sprintf("c%d", i), "page_view", at(time.Duration(h)*time.Hour))
			if _, err := p.apply(e, int64(h*100+i+1), load, now.Add(time.Duration(h)*time.Second)); err != nil {
				t.Fatal(err)
			}
		}
	}
	commit(now.Add(time.Minute), 1<<40)
	all := p.bytes
	if all <= 0 || len(p.bucketBytes) == 0 || mem.Used() != int64(all) {
		t.Fatalf("bytes %d over %d buckets, budget used %d", all, len(p.bucketBytes), mem.Used())
	}
	// Two partitions share the budget: this one keeps three quarters of
	// half of it.
	commit(now.Add(time.Hour), all)
	if p.bytes != all {
		t.Fatalf("within the budget: %d bytes, want %d kept", p.bytes, all)
	}
	limit := all * 2 / 3
	commit(now.Add(time.Hour), limit)
	if p.bytes > limit/2/4*3 || p.bytes <= 0 {
		t.Fatalf("after eviction %d bytes, limit %d shared by two", p.bytes, limit)
	}
	if mem.Used() != int64(p.bytes) {
		t.Errorf("budget used %d, partition holds %d", mem.Used(), p.bytes)
	}
	sum := 0
	for _, n := range p.bucketBytes {
		sum += n
	}
	if sum != p.bytes {
		t.Errorf("bucket bytes add up to %d, total %d", sum, p.bytes)
	}
	newest := bucketKey{"p1", viewstore.Hour.WithRollup(uint8(analytics.RollupTotal)), t0.Unix() + 9*3600}
	oldest := bucketKey{"p1", viewstore.Hour.WithRollup(uint8(analytics.RollupTotal)), t0.Unix()}
	if _, ok := p.loaded[newest]; !ok {
		t.Error("the newest bucket was evicted")
	}
	if _, ok := p.loaded[oldest]; ok {
		t.Error("the oldest bucket was kept")
	}
	// An event of the evicted hour reads its cells back and adds to them.
	loads = 0
	if _, err := p.apply(ev("late", "c99", "page_view", at(time.Minute)), 5000, load, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if loads == 0 {
		t.Error("the evicted bucket was not read back")
	}
	var hour0 int64
	for k, cs := range p.cells {
		if k.grain == viewstore.Hour && k.bucket == t0.Unix() {
			hour0 += cs.agg.Events
		}
	}
	if hour0 != 21 {
		t.Errorf("hour 0 after reload: %d events in memory, want 21", hour0)
	}
	// A stopped partition gives its share back.
	p.release()
	other.release()
	if mem.Used() != 0 || mem.parts.Load() != 0 {
		t.Errorf("after release: %d bytes used by %d partitions", mem.Used(), mem.parts.Load())
	}
}

// An event that arrives more than MinuteHorizon after it happened is
// counted in hour cells only.
func TestBackfillSkipsMinuteCells(t *testing.T) {
	p, _ := newPartition(0, DefaultRules(), viewstore.Progress{}, nil)
	late := ev("late", "c1", "page_view", received(MinuteHorizon*time.Second+time.Second))
	onTime := ev("ontime", "c2", "page_view", received(MinuteHorizon*time.Second))
	for i, e := range []*eventv1.Event{late, onTime} {
		if _, err := p.apply(e, int64(i), noStoredCells, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	var minute, hour int64
	for k, cs := range p.cells {
		if k.grain.Rollup() != uint8(analytics.RollupTotal) {
			continue
		}
		if k.grain.Time() == viewstore.Minute {
			minute += cs.agg.Events
		} else {
			hour += cs.agg.Events
		}
	}
	if minute != 1 || hour != 2 {
		t.Errorf("minute cells count %d events, hour cells %d; want 1 and 2", minute, hour)
	}
}
