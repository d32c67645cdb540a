package projection

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	eventv1 "github.com/sextant-analytics/sextant/gen/sextant/event/v1"
	"github.com/sextant-analytics/sextant/pkg/analytics"
	"github.com/sextant-analytics/sextant/pkg/block"
	"github.com/sextant-analytics/sextant/pkg/catalog"
	"github.com/sextant-analytics/sextant/pkg/sketch"
	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

func testPartition(t testing.TB, l Logic, progress viewstore.Progress, kvs []viewstore.KV) *partition {
	t.Helper()
	if l.Layout == nil {
		l.Layout = catalog.Traffic
	}
	if l.Rules == (Rules{}) {
		l.Rules = DefaultRules()
	}
	p, err := newPartition(0, newDeriver(l), progress, kvs)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func applyAll(p *partition, events ...*eventv1.Event) {
	for _, e := range events {
		p.apply(e, p.progress.Next, 0)
		p.advance(p.progress.Next)
	}
}

func TestApply(t *testing.T) {
	for _, tc := range []struct {
		name    string
		events  []*eventv1.Event
		by      string
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
			// The session, idle past its retention, starts over (the same
			// session id: it is the event's time).
			name: "duplicate outside the dedupe window counts again",
			events: []*eventv1.Event{
				ev("e1", "c1", "page_view"), ev("e1", "c1", "page_view", received(25*time.Hour)),
			},
			want:    "events=2 views=2 users=1 active=0 new=0 sessions=1 engaged=0",
			applied: 2,
		},
		{
			name: "a session idle past its retention is gone, pruned or not",
			events: []*eventv1.Event{
				ev("e1", "c1", "page_view", sess(100)),
				ev("e2", "c1", "page_view", sess(100), at(3*time.Hour)),
			},
			want:    "events=2 views=2 users=1 active=0 new=0 sessions=1 engaged=0",
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
			by:      catalog.SessionSource,
			want:    "events=3 views=3 users=2 active=1 new=0 sessions=2 engaged=1",
			groups:  map[string]string{"newsletter": "events=2 views=2 users=1 active=1 new=0 sessions=1 engaged=1", "(direct)": "events=1 views=1 users=1 active=0 new=0 sessions=1 engaged=0"},
			applied: 3,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testPartition(t, Logic{}, viewstore.Progress{}, nil)
			applyAll(p, tc.events...)
			all, groups := sumSection(t, openBlocks(t, p), whole, tc.by)
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

// Events go to the addition of their property's hour, at minute and hour
// grain, and to every section of the layout.
func TestAdditionsByPropertyAndHour(t *testing.T) {
	p := testPartition(t, Logic{}, viewstore.Progress{}, nil)
	applyAll(p,
		ev("0", "c1", "page_view", at(0)), ev("1", "c1", "page_view", at(30*time.Second)),
		ev("2", "c1", "page_view", at(90*time.Second)), ev("3", "c1", "page_view", at(70*time.Minute)),
		ev("4", "c2", "page_view", prop("p2")))
	cp, err := p.checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	type ph struct {
		property string
		hour     int64
	}
	minutes := map[ph]map[int64]int64{}
	parts := map[ph]int{}
	for _, a := range cp.Additions {
		if a.Start != 0 || a.End != 5 || a.Partition != 0 {
			t.Errorf("addition %s at %d covers [%d, %d) of %d", a.Property, a.Hour, a.Start, a.End, a.Partition)
		}
		property, part, ok := viewstore.ParseSeries(a.Property)
		if !ok {
			t.Fatalf("series %q", a.Property)
		}
		parts[ph{property, a.Hour - t0.Unix()}]++
		r, err := block.Open(a.Block)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(r.Sections()); got != 1 || r.Sections()[0].Grain != catalog.Traffic.Sections()[part].Grain {
			t.Errorf("part %d: %d sections, want its one", part, got)
		}
		i := r.Find(block.Section{Grain: block.Minute})
		if i < 0 {
			continue // not the total's part
		}
		m := map[int64]int64{}
		_ = r.Entries(i, func(bucket int64, _ string, value []byte) error {
			agg, _ := analytics.UnmarshalAggregate(value)
			m[bucket-a.Hour] += agg.Events
			return nil
		})
		minutes[ph{property, a.Hour - t0.Unix()}] = m
	}
	for k, n := range parts {
		if n != catalog.Traffic.Parts() {
			t.Errorf("%v: %d parts, want one per section", k, n)
		}
	}
	if got, want := fmt.Sprint(minutes), "map[{p1 0}:map[0:2 60:1] {p1 3600}:map[600:1] {p2 0}:map[0:1]]"; got != want {
		t.Errorf("minute entries %s, want %s", got, want)
	}
	if len(cp.Watermarks) != 2 || cp.Progress.Next != 5 {
		t.Errorf("checkpoint %+v with %d watermarks", cp.Progress, len(cp.Watermarks))
	}
	p.committed()
	if !p.adds.empty() || p.start != 5 {
		t.Errorf("after the commit: open additions %v, start %d", !p.adds.empty(), p.start)
	}
}

// A partition rebuilt from its checkpoint continues exactly where the
// first left off: sessions continue and duplicates are still dropped; its
// additions hold only what was applied since.
func TestCheckpointRestore(t *testing.T) {
	p := testPartition(t, Logic{}, viewstore.Progress{}, nil)
	applyAll(p, ev("e1", "c1", "page_view", source("news", "email")), ev("e2", "c2", "page_view"))
	cp, err := p.checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	first := [][]byte{}
	for _, a := range cp.Additions {
		first = append(first, slices.Clone(a.Block))
	}
	q := testPartition(t, Logic{}, cp.Progress, cp.State)
	applyAll(q,
		ev("e1", "c1", "page_view", received(time.Minute)), // a retry
		ev("e3", "c1", "page_view", at(2*time.Minute)))     // same session, now engaged
	second := openBlocks(t, q)
	if got, want := len(second), 1; got != want {
		t.Fatalf("%d additions after the restore, want %d", got, want)
	}
	added, _ := sumSection(t, second, whole, "")
	if got, want := summary(added), "events=1 views=1 users=1 active=1 new=0 sessions=1 engaged=1"; got != want {
		t.Fatalf("added after the restore %s, want %s", got, want)
	}
	all, groups := sumSection(t, append(first, second...), whole, catalog.SessionSource)
	if got, want := summary(all), "events=3 views=3 users=2 active=1 new=0 sessions=2 engaged=1"; got != want {
		t.Fatalf("in all %s, want %s", got, want)
	}
	if g := groups["news"]; g == nil || g.Events != 2 {
		t.Fatalf("session source lost across the restore: %v", groups)
	}
	if q.progress.Duplicates != 1 || q.progress.Applied != 3 {
		t.Fatalf("progress %+v", q.progress)
	}
}

func TestPruneForgetsOnlyWhatCannotMatter(t *testing.T) {
	p := testPartition(t, Logic{}, viewstore.Progress{}, nil)
	applyAll(p, ev("old", "c1", "page_view"), ev("new", "c2", "page_view", at(25*time.Hour)))
	cp, err := p.checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	sessions := p.state.sessions
	if sessions.get("p1\x1fc1") != nil || sessions.get("p1\x1fc2") == nil {
		t.Fatalf("sessions after prune: c1 %v, c2 %v", sessions.get("p1\x1fc1"), sessions.get("p1\x1fc2"))
	}
	q := testPartition(t, Logic{}, cp.Progress, cp.State)
	for _, tc := range []struct {
		id, client string
		counted    bool
	}{{"old", "c1", true}, {"new", "c2", false}} {
		if counted := q.apply(ev(tc.id, tc.client, "page_view", at(25*time.Hour+time.Minute)), 5, 0); counted != tc.counted {
			t.Errorf("%s again: counted %v, want %v", tc.id, counted, tc.counted)
		}
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

// Every section of a grain sums to the same totals, and each section's
// entries are the whole-tuple entries summed over the dimensions it drops.
func TestSectionsAgree(t *testing.T) {
	p := testPartition(t, Logic{}, viewstore.Progress{}, nil)
	paths := []string{"/", "/a", "/b"}
	for i := range 60 {
		e := ev(fmt.Sprint(i), fmt.Sprintf("c%d", i%7), []string{"page_view", "scroll"}[i%2], at(time.Duration(i)*97*time.Second))
		e.Page = &eventv1.Page{Path: paths[i%3]}
		if i%5 == 0 {
			e = ev(fmt.Sprint(i), fmt.Sprintf("c%d", i%7), "page_view", source("news", "email"), at(time.Duration(i)*97*time.Second))
		}
		applyAll(p, e)
	}
	blocks := openBlocks(t, p)
	wholeAll, _ := sumSection(t, blocks, whole, "")
	if wholeAll.Events != 60 {
		t.Fatalf("whole tuples count %d events", wholeAll.Events)
	}
	for _, sec := range catalog.Traffic.Sections() {
		for _, by := range append([]string{""}, sec.Dims...) {
			got, groups := sumSection(t, blocks, sec, by)
			if summary(got) != summary(wholeAll) {
				t.Errorf("section %v: %s, want %s", sec, summary(got), summary(wholeAll))
			}
			if by == "" {
				continue
			}
			_, want := sumSection(t, blocks, whole, by)
			for k, w := range want {
				if g := groups[k]; g == nil || summary(g) != summary(w) {
					t.Errorf("section %v by %s = %q: %v, want %s", sec, by, k, g, summary(w))
				}
			}
		}
	}
}

func TestBackfillSkipsMinutes(t *testing.T) {
	p := testPartition(t, Logic{}, viewstore.Progress{}, nil)
	applyAll(p,
		ev("late", "c1", "page_view", received(MinuteHorizon*time.Second+time.Second)),
		ev("ontime", "c2", "page_view", received(MinuteHorizon*time.Second)))
	blocks := openBlocks(t, p)
	minute, _ := sumSection(t, blocks, block.Section{Grain: block.Minute}, "")
	hour, _ := sumSection(t, blocks, block.Section{Grain: block.Hour}, "")
	if minute.Events != 1 || hour.Events != 2 {
		t.Errorf("minutes count %d events, hours %d; want 1 and 2", minute.Events, hour.Events)
	}
}

// A dimension added in a new logic version (traffic/v3: hostName) adds its
// section to that version's blocks and changes no byte of the others.
func TestNewDimensionInNewVersion(t *testing.T) {
	events := []*eventv1.Event{
		ev("1", "c1", "page_view", func(e *eventv1.Event) { e.Page = &eventv1.Page{Location: "https://Shop.example:8443/a", Path: "/a"} }),
		ev("2", "c2", "page_view", func(e *eventv1.Event) { e.Page = &eventv1.Page{Location: "https://blog.example/a", Path: "/a"} }),
	}
	logics := Logics()
	v2, _ := FindLogic(logics, "traffic", "v2")
	v3, _ := FindLogic(logics, "traffic", "v3")
	p2, p3 := testPartition(t, v2, viewstore.Progress{}, nil), testPartition(t, v3, viewstore.Progress{}, nil)
	applyAll(p2, events...)
	applyAll(p3, events...)
	b2, b3 := openBlocks(t, p2), openBlocks(t, p3)
	hosts := block.Section{Grain: block.Hour, Dims: []string{catalog.HostName, catalog.PagePath}}
	_, byHost := sumSection(t, b3, hosts, catalog.HostName)
	if len(byHost) != 2 || byHost["shop.example"] == nil || byHost["blog.example"] == nil {
		t.Fatalf("v3 by host: %v", byHost)
	}
	r2, _ := block.Open(b2[0])
	if r2.Find(hosts) >= 0 {
		t.Fatal("v2 stores the host section")
	}
	// v2's blocks are v3's without the host sections, byte for byte.
	stripped, err := block.Merge(nil, t0.Unix(), nil, b2[0])
	if err != nil {
		t.Fatal(err)
	}
	r3, _ := block.Open(b3[0])
	var keep [][]byte
	for i, s := range r3.Sections() {
		if s.Equal(hosts) || s.Equal(block.Section{Grain: block.Minute, Dims: hosts.Dims}) {
			continue
		}
		b := block.NewBuilder(block.Layout{s})
		_ = r3.Entries(i, func(bucket int64, dims string, value []byte) error {
			a, err := analytics.UnmarshalAggregate(value)
			if err != nil {
				return err
			}
			return b.Agg(0, bucket, dims).Merge(a)
		})
		enc, err := b.AppendTo(nil, t0.Unix())
		if err != nil {
			t.Fatal(err)
		}
		keep = append(keep, enc)
	}
	rebuilt, err := block.Merge(nil, t0.Unix(), nil, keep...)
	if err != nil {
		t.Fatal(err)
	}
	if string(rebuilt) != string(stripped) {
		t.Fatalf("v2's block differs from v3's less the host sections (%d vs %d bytes)", len(stripped), len(rebuilt))
	}
}

func TestHostOf(t *testing.T) {
	for in, want := range map[string]string{
		"https://Shop.Example/a?b": "shop.example",
		"http://u:p@h.example:80/": "h.example",
		"https://[::1]:8080/x":     "[::1]",
		"https://h.example":        "h.example",
		"/relative":                "",
		"":                         "",
	} {
		if got := hostOf(in); got != want {
			t.Errorf("hostOf(%q) = %q, want %q", in, got, want)
		}
	}
}

// The dimensions traffic/v4 adds, as they are read from an event.
func TestDetailDimensions(t *testing.T) {
	ev := &eventv1.Event{
		Page: &eventv1.Page{Location: "https://User@Shop.Example:8443/store/contact-us?q=1#top", Title: "Contact", Referrer: "https://ref.example/a"},
		Device: &eventv1.Device{BrowserVersion: "120.0.6099.71", OperatingSystemVersion: "13.5.1", Language: "en-US",
			ScreenResolution: "1080x2400", Model: "Pixel 8", Brand: "Google", Platform: "Android"},
		Params: map[string]*eventv1.Value{
			"link_url":       {Kind: &eventv1.Value_StringValue{StringValue: "https://other.example/x"}},
			"file_name":      {Kind: &eventv1.Value_StringValue{StringValue: "/menus/dinner.pdf"}},
			"search_term":    {Kind: &eventv1.Value_StringValue{StringValue: "shoes"}},
			"transaction_id": {Kind: &eventv1.Value_IntValue{IntValue: 1234}},
		},
	}
	for dim, want := range map[string]string{
		catalog.PageTitle:              "Contact",
		catalog.PageReferrer:           "https://ref.example/a",
		catalog.FullPageURL:            "shop.example/store/contact-us?q=1",
		catalog.BrowserVersion:         "120",
		catalog.OperatingSystemVersion: "13.5.1",
		catalog.Language:               "English",
		catalog.LanguageCode:           "en-us",
		catalog.ScreenResolution:       "1080x2400",
		catalog.DeviceModel:            "Pixel 8",
		catalog.MobileDeviceBranding:   "Google",
		catalog.Platform:               "Android",
		catalog.LinkURL:                "https://other.example/x",
		catalog.FileName:               "/menus/dinner.pdf",
		catalog.SearchTerm:             "shoes",
		catalog.TransactionID:          "1234",
	} {
		if got := extractors[dim](ev, &session{}, &Rules{}); got != want {
			t.Errorf("%s = %q, want %q", dim, got, want)
		}
	}
	for range 2 { // the second time from the cache
		for in, want := range map[string]string{"fr": "French", "pt-BR": "Portuguese", "zz-not": "", "": ""} {
			if got := languageName(in); got != want {
				t.Errorf("languageName(%q) = %q, want %q", in, got, want)
			}
		}
	}
	for in, want := range map[string]string{
		"https://a.example":                    "a.example/",
		"https://a.example/p?q=1#top":          "a.example/p?q=1",
		"https://User@A.Example:8443/p/q?x=y":  "a.example/p/q?x=y",
		"https://a.example?x=1":                "a.example/",
		"https://a.example#frag/x":             "a.example/",
		"http://[::1]:80/p":                    "[::1]/p",
		"https://a.example/":                   "a.example/",
		"no-scheme.example/p":                  "",
		"https://a.example:80?q=1":             "a.example/",
		"https://x@y@a.example/p":              "a.example/p",
		"https://A.example/Path/With/Case?Q=1": "a.example/Path/With/Case?Q=1",
	} {
		if got := fullPageURL(in); got != want {
			t.Errorf("fullPageURL(%q) = %q, want %q", in, got, want)
		}
	}
	if got, want := sessionHash("c1", 1700000000), xxhash.Sum64String("c1\x1f1700000000"); got != want {
		t.Errorf("sessionHash = %x, want %x (the hash stored sets hold)", got, want)
	}
}

// A session keeps the page of its first event with one, and its encoding
// reads what was stored before it had one.
func TestLandingPage(t *testing.T) {
	ev := &eventv1.Event{Page: &eventv1.Page{Path: "/Shop/", Location: "https://a.example/Shop/?utm_source=x#top"}}
	if got := pageWithQuery(ev); got != "/Shop/?utm_source=x" {
		t.Fatalf("pageWithQuery = %q", got)
	}
	if got := pageWithQuery(&eventv1.Event{}); got != "" {
		t.Fatalf("pageWithQuery of an event without a page = %q", got)
	}
	s := &session{id: 7, landing: "/Shop/?utm_source=x", source: "x"}
	if got := extractors[catalog.LandingPage](ev, s, &Rules{NormalizePaths: true}); got != "/shop" {
		t.Errorf("landingPage = %q", got)
	}
	if got := extractors[catalog.LandingPagePlusQueryString](ev, s, &Rules{}); got != "/Shop/?utm_source=x" {
		t.Errorf("landingPagePlusQueryString = %q", got)
	}
	back, err := decodeSession(encodeSession(s))
	if err != nil || back.landing != s.landing || back.source != "x" || back.id != 7 {
		t.Fatalf("decode(encode) = %+v, %v", back, err)
	}
	// Stored before: three strings, no landing page.
	old := encodeSession(&session{id: 7, source: "x"})
	old = old[:len(old)-1] // the empty landing's length byte
	if back, err := decodeSession(old); err != nil || back.landing != "" || back.source != "x" {
		t.Fatalf("decode of an older session = %+v, %v", back, err)
	}
}

// Only a version that stores landing pages keeps them in its sessions.
func TestLandingKeptOnlyWhenStored(t *testing.T) {
	logics := Logics()
	ev := &eventv1.Event{PropertyId: "p", ClientId: "c", SessionId: 1, Name: "page_view", Page: &eventv1.Page{Path: "/a", Location: "https://x.example/a?q=1"}}
	for version, want := range map[string]string{"v1": "", "v3": "", "v4": "/a?q=1"} {
		l, _ := FindLogic(logics, "traffic", version)
		s := newDeriver(l).session(newSessionLog(), ev, 100, 100, 0)
		if s.landing != want {
			t.Errorf("%s keeps landing %q, want %q", version, s.landing, want)
		}
	}
}

// TestOutcomes: traffic/v5 counts session time, key events, revenue (in
// the property's currency, refunds less), ecommerce actions, purchasers and
// first-time purchasers, and each item of an event in the item rollup;
// traffic/v4 counts none of it.
func TestOutcomes(t *testing.T) {
	num := func(name string, v float64) evOpt {
		return func(e *eventv1.Event) {
			if e.Params == nil {
				e.Params = map[string]*eventv1.Value{}
			}
			e.Params[name] = &eventv1.Value{Kind: &eventv1.Value_DoubleValue{DoubleValue: v}}
		}
	}
	str := func(name, v string) evOpt {
		return func(e *eventv1.Event) {
			if e.Params == nil {
				e.Params = map[string]*eventv1.Value{}
			}
			e.Params[name] = &eventv1.Value{Kind: &eventv1.Value_StringValue{StringValue: v}}
		}
	}
	items := func(its ...*eventv1.Item) evOpt { return func(e *eventv1.Event) { e.Items = its } }
	rate := func(r float64) evOpt { return func(e *eventv1.Event) { e.CurrencyRate = r } }
	key := func(e *eventv1.Event) { e.KeyEvent = true }
	shirt := &eventv1.Item{ItemId: "S1", ItemName: "Shirt", ItemBrand: "Acme", Price: 10, Quantity: 2}
	mug := &eventv1.Item{ItemName: "Mug", Price: 5}
	events := []*eventv1.Event{
		ev("1", "c1", "page_view", sess(1), at(0)),
		ev("2", "c1", "view_item", sess(1), at(30*time.Second), items(shirt, mug)),
		ev("3", "c1", "add_to_cart", sess(1), at(40*time.Second), items(shirt)),
		ev("4", "c1", "begin_checkout", sess(1), at(50*time.Second)),
		// 25 EUR at 2 of the property's currency a euro.
		ev("5", "c1", "purchase", sess(1), at(100*time.Second), key, rate(2), num("value", 25), str("transaction_id", "T1"), items(shirt, mug)),
		ev("6", "c1", "purchase", sess(1), at(110*time.Second), num("value", 3)),
		ev("7", "c2", "purchase", sess(5), at(0), key, num("value", 7), str("transaction_id", "T2")),
		ev("8", "c2", "refund", sess(5), at(60*time.Second), num("value", 2)),
		ev("9", "c3", "ad_impression", sess(9), at(0), num("value", 0.5)),
	}
	logics := Logics()
	v5, _ := FindLogic(logics, "traffic", "v5")
	p := testPartition(t, v5, viewstore.Progress{}, nil)
	applyAll(p, events...)
	blocks := openBlocks(t, p)
	total, _ := sumSection(t, blocks, block.Section{Grain: block.Hour}, "")
	want := map[int]int64{
		analytics.SumSessionSeconds:   110 + 60,
		analytics.SumKeyEvents:        2,
		analytics.SumPurchaseRevenue:  (50 + 3 + 7 - 2) * 1e6,
		analytics.SumTotalRevenue:     (50 + 3 + 7 - 2 + 0.5) * 1e6,
		analytics.SumPurchases:        3,
		analytics.SumTransactions:     2,
		analytics.SumCheckouts:        1,
		analytics.SumAddToCarts:       1,
		analytics.SumItemsViewed:      3,
		analytics.SumItemRevenue:      (2*10 + 5) * 2 * 1e6,
		analytics.SumItemsPurchased:   3,
		analytics.SumItemsAddedToCart: 2,
	}
	for k := range analytics.NumSums {
		if total.Sums[k] != want[k] {
			t.Errorf("sum %d = %d, want %d", k, total.Sums[k], want[k])
		}
	}
	est := func(s *sketch.Sketch) uint64 {
		if s == nil {
			return 0
		}
		return s.Estimate()
	}
	if k, b, f := est(total.KeySessions), est(total.Purchasers), est(total.FirstPurchasers); k != 2 || b != 2 || f != 2 {
		t.Errorf("key-event sessions %d, purchasers %d, first-time purchasers %d; want 2 2 2", k, b, f)
	}
	itemSec := block.Section{Grain: block.Hour, Dims: []string{catalog.ItemID, catalog.ItemName, catalog.ItemCategory, catalog.ItemBrand}}
	_, byItem := sumSection(t, blocks, itemSec, catalog.ItemName)
	if s, m := byItem["Shirt"], byItem["Mug"]; s == nil || m == nil || len(byItem) != 2 ||
		s.Sums[analytics.SumItemsViewed] != 2 || s.Sums[analytics.SumItemsPurchased] != 2 || s.Sums[analytics.SumItemRevenue] != 40e6 ||
		s.Sums[analytics.SumItemsAddedToCart] != 2 || s.Sums[analytics.SumAddToCarts] != 0 || s.Events != 3 ||
		m.Sums[analytics.SumItemsViewed] != 1 || m.Sums[analytics.SumItemRevenue] != 10e6 || m.Events != 2 {
		t.Fatalf("by item: %v", byItem)
	}
	// A later session of a user who purchased is not a first purchase (the
	// blocks opened above were emptied: this one holds the new event).
	applyAll(p, ev("10", "c2", "purchase", sess(6), at(time.Hour), num("value", 1)))
	total, _ = sumSection(t, openBlocks(t, p), block.Section{Grain: block.Hour}, "")
	if b, f := est(total.Purchasers), est(total.FirstPurchasers); b != 1 || f != 0 {
		t.Errorf("after a second purchase: purchasers %d, first-time %d; want 1 0", b, f)
	}
	// traffic/v4 writes no sums.
	v4, _ := FindLogic(logics, "traffic", "v4")
	p4 := testPartition(t, v4, viewstore.Progress{}, nil)
	applyAll(p4, events...)
	t4, _ := sumSection(t, openBlocks(t, p4), block.Section{Grain: block.Hour}, "")
	if t4.Sums != ([analytics.NumSums]int64{}) || t4.Purchasers != nil || t4.Events != int64(len(events)) {
		t.Fatalf("v4 counted outcomes: %+v", t4)
	}
}

// TestFirstUserAndNewVsReturning: a client's first session gives its first
// source, which later sessions keep (while its state lives); sessions after
// the first are returning.
func TestFirstUserAndNewVsReturning(t *testing.T) {
	v5, _ := FindLogic(Logics(), "traffic", "v5")
	d := newDeriver(v5)
	log := newSessionLog()
	first := ev("1", "c1", "page_view", sess(100), source("news.example", "referral"))
	first.SessionNumber = 1
	s := d.session(log, first, 100, 100, 0)
	second := ev("2", "c1", "page_view", sess(5000), source("google", "cpc"))
	second.SessionNumber = 2
	s2 := d.session(log, second, 5000, 5000, 1)
	for _, c := range []struct {
		s         *session
		dim, want string
	}{
		{s, catalog.NewVsReturning, "new"}, {s2, catalog.NewVsReturning, "returning"},
		{s2, catalog.FirstUserSource, "news.example"}, {s2, catalog.FirstUserMedium, "referral"},
		{s2, catalog.SessionSource, "google"},
	} {
		if got := extractors[c.dim](second, c.s, &v5.Rules); got != c.want {
			t.Errorf("%s = %q, want %q", c.dim, got, c.want)
		}
	}
	back, err := decodeSession(encodeSession(s2))
	if err != nil || back.firstSource != "news.example" || back.firstMedium != "referral" {
		t.Fatalf("decode(encode) = %+v, %v", back, err)
	}
	// A returning client the projection holds no state of has no first
	// source.
	late := ev("3", "c9", "page_view", sess(7000))
	late.SessionNumber = 4
	if got := d.session(log, late, 7000, 7000, 2).firstSource; got != "" {
		t.Errorf("first source of a returning client without state = %q", got)
	}
}

// TestCustomDefinitions: each custom dimension an event carries is an
// entry of the custom rollup, each custom metric one whose sum is its
// value.
func TestCustomDefinitions(t *testing.T) {
	v5, _ := FindLogic(Logics(), "traffic", "v5")
	p := testPartition(t, v5, viewstore.Progress{}, nil)
	custom := func(plan string, amount float64) evOpt {
		return func(e *eventv1.Event) {
			e.CustomDimensions = map[string]string{"customEvent:plan": plan, "customUser:tier": "gold"}
			e.CustomMetrics = map[string]float64{"customEvent:amount": amount}
		}
	}
	applyAll(p, ev("1", "c1", "sign_up", custom("pro", 2.5)), ev("2", "c2", "sign_up", custom("free", 1)), ev("3", "c3", "page_view"))
	blocks := openBlocks(t, p)
	dimSec := block.Section{Grain: block.Hour, Dims: []string{catalog.CustomDimension, catalog.CustomValue}}
	_, byName := sumSection(t, blocks, dimSec, catalog.CustomDimension)
	_, byValue := sumSection(t, blocks, dimSec, catalog.CustomValue)
	if byName["customEvent:plan"].Events != 2 || byName["customUser:tier"].Events != 2 || byValue["pro"].Events != 1 || byValue["gold"].Events != 2 || len(byName) != 2 {
		t.Fatalf("custom dimensions: by name %v, by value %v", byName, byValue)
	}
	_, byMetric := sumSection(t, blocks, block.Section{Grain: block.Hour, Dims: []string{catalog.CustomMetric}}, catalog.CustomMetric)
	if m := byMetric["customEvent:amount"]; m == nil || m.Sums[analytics.SumCustom] != 3_500_000 || m.Events != 2 || len(byMetric) != 1 {
		t.Fatalf("custom metrics: %v", byMetric)
	}
}
