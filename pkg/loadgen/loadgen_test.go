package loadgen

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	collectv1 "github.com/sextant-analytics/sextant/gen/sextant/collect/v1"
)

var end = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func config(seed int64, batch int, history time.Duration) Config {
	c := DefaultConfig()
	c.Seed, c.BatchSize, c.History, c.End = seed, batch, history, end
	return c
}

func mustNew(t testing.TB, c Config, property int) *Generator {
	t.Helper()
	g, err := New(c, property)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// encoded returns n batches of the generator, encoded.
func encoded(t testing.TB, c Config, property, n int) [][]byte {
	g := mustNew(t, c, property)
	out := make([][]byte, n)
	for i := range out {
		out[i] = AppendProto(nil, g.Next(0))
	}
	return out
}

func TestDeterminism(t *testing.T) {
	for _, tc := range []struct {
		name    string
		batch   int
		history time.Duration
	}{
		{"single events, no times", 1, 0},
		{"batches of 25, one hour", 25, time.Hour},
		{"batches of 500, 70 hours", 500, 70 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := encoded(t, config(7, tc.batch, tc.history), 0, 200)
			b := encoded(t, config(7, tc.batch, tc.history), 0, 200)
			for i := range a {
				if !bytes.Equal(a[i], b[i]) {
					t.Fatalf("batch %d differs between two generators of the same seed", i)
				}
			}
			other := encoded(t, config(8, tc.batch, tc.history), 0, 1)
			if bytes.Equal(a[0], other[0]) {
				t.Fatal("another seed made the same first batch")
			}
			prop1 := encoded(t, config(7, tc.batch, tc.history), 1, 1)
			if bytes.Equal(a[0], prop1[0]) {
				t.Fatal("another property made the same first batch")
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		ok   bool
	}{
		{"defaults", func(*Config) {}, true},
		{"batch too big", func(c *Config) { c.BatchSize = 501 }, false},
		{"zipf exponent 1", func(c *Config) { c.ZipfS = 1 }, false},
		{"history over 72h", func(c *Config) { c.History = 73 * time.Hour }, false},
		{"history of a week, a max age of 8 days", func(c *Config) { c.History, c.MaxAge = 7*24*time.Hour, 8*24*time.Hour }, true},
		{"history over the max age", func(c *Config) { c.History, c.MaxAge = 7*24*time.Hour, 6*24*time.Hour }, false},
		{"history under the session gap", func(c *Config) { c.History = 10 * time.Minute }, false},
		{"short sessions", func(c *Config) { c.SessionEvents = 2 }, false},
		{"bot share", func(c *Config) { c.Bots = 2 }, false},
		{"growth", func(c *Config) { c.Growth = 0.05 }, true},
		{"negative growth", func(c *Config) { c.Growth = -0.05 }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			_, err := New(c, 0)
			if (err == nil) != tc.ok {
				t.Fatalf("New: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestEncodings checks that the protobuf, JSON and message forms agree.
func TestEncodings(t *testing.T) {
	for _, tc := range []struct {
		history time.Duration
		cities  bool
	}{{0, false}, {2 * time.Hour, false}, {2 * time.Hour, true}} {
		c := config(3, 25, tc.history)
		c.Cities = tc.cities
		g := mustNew(t, c, 2)
		for i := 0; i < 50; i++ {
			b := g.Next(0)
			want := ToProto(b)
			var got collectv1.CollectRequest
			if err := proto.Unmarshal(AppendProto(nil, b), &got); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(&got, want) {
				t.Fatalf("AppendProto decodes to\n%v\nwant\n%v", &got, want)
			}
			var fromJSON collectv1.CollectRequest
			js := AppendJSON(nil, b)
			if err := protojson.Unmarshal(js, &fromJSON); err != nil {
				t.Fatalf("AppendJSON: %v\n%s", err, js)
			}
			if !proto.Equal(&fromJSON, want) {
				t.Fatalf("AppendJSON decodes to\n%v\nwant\n%v", &fromJSON, want)
			}
			var sr collectv1.StreamCollectRequest
			if err := proto.Unmarshal(AppendStreamRequest(nil, uint64(i+1), AppendProto(nil, b)), &sr); err != nil {
				t.Fatal(err)
			}
			if sr.Sequence != uint64(i+1) || !proto.Equal(sr.Batch, want) {
				t.Fatalf("AppendStreamRequest decodes to %v", &sr)
			}
		}
	}
	// JSON strings are escaped.
	if got := string(appendJSONString(nil, "a\"b\\c\n\x01é\xff")); got != `"a\"b\\c\n\u0001é\ufffd"` {
		t.Fatalf("appendJSONString: %s", got)
	}
}

var (
	eventIDRe   = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)
	eventNameRe = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,39}$`)
)

// TestCities: with Config.Cities every visitor is in a city of its
// country, the largest cities most often; without, in none, and the
// other draws are those of a generator without the option.
func TestCities(t *testing.T) {
	c := config(5, 10, 2*time.Hour)
	c.Cities = true
	with, without := mustNew(t, c, 0), mustNew(t, config(5, 10, 2*time.Hour), 0)
	seen := map[string]int{}
	for range 2000 {
		a, b := with.Next(0), without.Next(0)
		if b.City != "" || b.Region != "" {
			t.Fatalf("without Cities: city %q, region %q", b.City, b.Region)
		}
		if a.Country != b.Country || a.ClientID != b.ClientID || len(a.Events) != len(b.Events) || a.Events[0].ID != b.Events[0].ID {
			t.Fatalf("Cities changed the traffic: %s/%s/%s vs %s/%s/%s", a.Country, a.ClientID, a.Events[0].ID, b.Country, b.ClientID, b.Events[0].ID)
		}
		ok := false
		for _, ci := range citiesOf[a.Country].cities {
			ok = ok || ci == city{a.City, a.Region}
		}
		if !ok || !strings.HasPrefix(a.Region, a.Country+"-") {
			t.Fatalf("visitor of %s in %q (%s)", a.Country, a.City, a.Region)
		}
		seen[a.City]++
	}
	if len(seen) < 30 || seen["New York"] <= seen["Boston"] {
		t.Fatalf("cities seen: %v", seen)
	}
}

// TestDailyRhythm: with Config.DailyRhythm, more visits start in the
// evening than at night and on weekdays than at weekends, and more in the
// second week with Config.Growth; without, about as many at any hour.
func TestDailyRhythm(t *testing.T) {
	starts := func(rhythm bool) (byHour [24]int, weekday, weekend int) {
		byHour, weekday, weekend, _ = visitStarts(t, rhythm, 0)
		return
	}
	sum := func(h [24]int, from, to int) (n int) {
		for i := from; i < to; i++ {
			n += h[i]
		}
		return n
	}
	h, wd, we := starts(true)
	night, evening := sum(h, 2, 6), sum(h, 18, 22)
	if evening < 3*night {
		t.Errorf("with the rhythm: %d visits start 18:00-22:00, %d 02:00-06:00; want over 3 times as many", evening, night)
	}
	// Weekdays are 5 of 7 days (10 of these 14): 2.5 times the weekends'
	// visits without a rhythm.
	if float64(wd) < 2.8*float64(we) {
		t.Errorf("with the rhythm: %d visits start on weekdays, %d at weekends", wd, we)
	}
	h, _, _ = starts(false)
	night, evening = sum(h, 2, 6), sum(h, 18, 22)
	if evening > 2*night || night > 2*evening {
		t.Errorf("without the rhythm: %d visits start 18:00-22:00, %d 02:00-06:00; want about as many", evening, night)
	}
	// 4 % a day is 30 % a week.
	_, _, _, weeks := visitStarts(t, true, 0)
	if r := float64(weeks[1]) / float64(weeks[0]); r < 0.85 || r > 1.15 {
		t.Errorf("without growth: %v visits start in the first week, %v in the second", weeks[0], weeks[1])
	}
	_, _, _, weeks = visitStarts(t, true, 0.04)
	if r := float64(weeks[1]) / float64(weeks[0]); r < 1.15 || r > 1.5 {
		t.Errorf("with 4 %% a day: %v visits start in the first week, %v in the second", weeks[0], weeks[1])
	}
}

// visitStarts counts the starts of visits of two weeks of traffic (with
// the rhythm and growth given): by hour of the day, on weekdays and at
// weekends, and in each week.
func visitStarts(t *testing.T, rhythm bool, growth float64) (byHour [24]int, weekday, weekend int, byWeek [2]int) {
	t.Helper()
	c := config(9, 5, 14*24*time.Hour)
	c.MaxAge, c.DailyRhythm, c.Growth, c.VisitorEvents, c.Active = 15*24*time.Hour, rhythm, growth, 5, 64
	g := mustNew(t, c, 0)
	for range 20000 {
		b := g.Next(0)
		e := b.Events[0]
		if e.SessionNumber != 1 && !strings.Contains(e.Name, "visit") && e.Name != "session_start" {
			continue
		}
		ts := time.UnixMicro(e.TimeMicros).UTC()
		if ts.Before(end.Add(-c.History)) || ts.After(end) {
			t.Fatalf("event time %v out of the window", ts)
		}
		byHour[ts.Hour()]++
		if d := ts.Weekday(); d == time.Saturday || d == time.Sunday {
			weekend++
		} else {
			weekday++
		}
		byWeek[min(1, int(ts.Sub(end.Add(-c.History))/(7*24*time.Hour)))]++
	}
	return
}

func TestBatchesAreValid(t *testing.T) {
	for _, batch := range []int{1, 25, 500} {
		t.Run(fmt.Sprint(batch), func(t *testing.T) {
			g := mustNew(t, config(1, batch, 70*time.Hour), 0)
			ids := map[string]bool{}
			for i := 0; i < 400; i++ {
				limit := 0
				if i == 399 {
					limit = 1
				}
				b := g.Next(limit)
				want := batch
				if limit > 0 {
					want = limit
				}
				if len(b.Events) != want {
					t.Fatalf("batch %d has %d events, want %d", i, len(b.Events), want)
				}
				if b.Seq != uint64(i+1) {
					t.Fatalf("batch %d has sequence %d", i, b.Seq)
				}
				for _, e := range b.Events {
					if !eventIDRe.MatchString(e.ID) || ids[e.ID] {
						t.Fatalf("bad or duplicate event id %q", e.ID)
					}
					ids[e.ID] = true
					if !eventNameRe.MatchString(e.Name) {
						t.Fatalf("bad event name %q", e.Name)
					}
					if len(e.Params)+6 > 25 {
						t.Fatalf("too many params: %v", e)
					}
					if u, err := url.Parse(e.Location); err != nil || u.EscapedPath() != e.Path {
						t.Fatalf("location %q does not have path %q", e.Location, e.Path)
					}
				}
			}
		})
	}
}

// TestZipfShape checks that page popularity follows P(rank k) ∝ (k+1)^-s.
func TestZipfShape(t *testing.T) {
	c := config(11, 25, time.Hour)
	c.Bots = 1 // bots see a fresh page with every event: one draw each
	g := mustNew(t, c, 0)
	rankOf := map[string]int{}
	for r := 0; r < c.Pages; r++ {
		if _, dup := rankOf[PagePath(r)]; dup {
			t.Fatalf("PagePath(%d) = %q is not unique", r, PagePath(r))
		}
		rankOf[PagePath(r)] = r
	}
	counts := make([]float64, c.Pages)
	const n = 400_000
	for seen := 0; seen < n; {
		for _, e := range g.Next(0).Events {
			counts[rankOf[e.Path]]++
			seen++
		}
	}
	for _, k := range []int{1, 2, 4, 9} {
		want := math.Pow(float64(k+1), -c.ZipfS)
		got := counts[k] / counts[0]
		if math.Abs(got-want)/want > 0.1 {
			t.Errorf("count(rank %d)/count(rank 0) = %.4f, want %.4f ± 10%%", k, got, want)
		}
	}
	// Least-squares slope of log(count) against log(rank+1) over the head.
	var sx, sy, sxx, sxy, m float64
	for k := 0; k < 100; k++ {
		x, y := math.Log(float64(k+1)), math.Log(counts[k])
		sx, sy, sxx, sxy, m = sx+x, sy+y, sxx+x*x, sxy+x*y, m+1
	}
	slope := (m*sxy - sx*sy) / (m*sxx - sx*sx)
	if math.Abs(slope+c.ZipfS) > 0.05 {
		t.Errorf("log-log slope %.3f, want %.3f", slope, -c.ZipfS)
	}
}

// TestSessions checks each visitor's timeline: sessions start with
// session_start at ga_session_id, are numbered consecutively, and are
// separated by more than 30 minutes; events within a session are closer.
func TestSessions(t *testing.T) {
	for _, tc := range []struct {
		batch     int
		history   time.Duration
		timeOrder int64
	}{{1, 2 * time.Hour, 0}, {25, 70 * time.Hour, 0}, {500, 70 * time.Hour, 0}, {500, time.Hour, 0}, {25, 70 * time.Hour, 20_000}, {500, 2 * time.Hour, 20_000}} {
		t.Run(fmt.Sprintf("batch %d history %v time order %d", tc.batch, tc.history, tc.timeOrder), func(t *testing.T) {
			c := config(5, tc.batch, tc.history)
			c.TimeOrder = tc.timeOrder
			g := mustNew(t, c, 0)
			byVisitor := map[int64][]Event{}
			isNew, bot := map[int64]bool{}, map[int64]bool{}
			for i := 0; i < 20_000/tc.batch+50; i++ {
				b := g.Next(0)
				byVisitor[b.Visitor] = append(byVisitor[b.Visitor], b.Events...)
				bot[b.Visitor] = b.Bot
			}
			lo, hi := end.Add(-tc.history).Add(-time.Second).UnixMicro(), end.UnixMicro()
			sessions, multi := 0, 0
			for v, evs := range byVisitor {
				if !slices.IsSortedFunc(evs, func(a, b Event) int { return int(a.TimeMicros - b.TimeMicros) }) {
					t.Fatalf("visitor %d: events out of time order", v)
				}
				for i, e := range evs {
					if e.TimeMicros < lo || e.TimeMicros > hi {
						t.Fatalf("visitor %d: event time %v outside the window", v, time.UnixMicro(e.TimeMicros))
					}
					if e.Name == "first_visit" {
						if i != 0 || e.SessionNumber != 1 {
							t.Fatalf("visitor %d: first_visit at %d in session %d", v, i, e.SessionNumber)
						}
						isNew[v] = true
					}
					newSession := i == 0 || e.SessionID != evs[i-1].SessionID
					if !newSession {
						if gap := time.Duration(e.TimeMicros-evs[i-1].TimeMicros) * time.Microsecond; gap >= c.SessionGap {
							t.Fatalf("visitor %d: %v between two events of one session", v, gap)
						}
						continue
					}
					sessions++
					if i > 0 {
						multi++
						prev := evs[i-1]
						if gap := time.Duration(e.TimeMicros-prev.TimeMicros) * time.Microsecond; gap <= c.SessionGap {
							t.Fatalf("visitor %d: only %v between sessions", v, gap)
						}
						if e.SessionNumber != prev.SessionNumber+1 {
							t.Fatalf("visitor %d: session number %d after %d", v, e.SessionNumber, prev.SessionNumber)
						}
					}
					if e.SessionID != e.TimeMicros/1_000_000 || e.TimeMicros%1_000_000 != 0 {
						t.Fatalf("visitor %d: ga_session_id %d, first event at %d µs", v, e.SessionID, e.TimeMicros)
					}
					// A session starts with (first_visit and) session_start.
					want := "session_start"
					if i == 0 && isNew[v] {
						want = "first_visit"
					}
					if e.Name != want && !bot[v] {
						t.Fatalf("visitor %d: session starts with %s", v, e.Name)
					}
				}
			}
			if tc.history >= 2*time.Hour && multi == 0 {
				t.Fatal("no visitor came back for a second session")
			}
			t.Logf("%d visitors, %d sessions (%d returns)", len(byVisitor), sessions, multi)
		})
	}
}

// With TimeOrder, event times advance with the events made: the first
// tenth falls early in the window and the last tenth late; without it both
// spread over the whole window.
func TestTimeOrder(t *testing.T) {
	const n = 100_000
	for _, tc := range []struct {
		timeOrder   int64
		first, last [2]float64 // bounds of the deciles' mean time, as a fraction of the window
		spread      [2]float64
	}{
		{n, [2]float64{0, 0.25}, [2]float64{0.6, 1}, [2]float64{0, 0.3}},
		{0, [2]float64{0.35, 0.65}, [2]float64{0.35, 0.65}, [2]float64{0.6, 1}},
	} {
		c := config(3, 25, 70*time.Hour)
		c.TimeOrder = tc.timeOrder
		g := mustNew(t, c, 0)
		var times []int64
		for len(times) < n {
			for _, e := range g.Next(0).Events {
				times = append(times, e.TimeMicros)
			}
		}
		start, window := float64(end.Add(-c.History).UnixMicro()), float64(c.History.Microseconds())
		mean := func(ts []int64) float64 {
			sum := 0.0
			for _, x := range ts {
				sum += (float64(x) - start) / window
			}
			return sum / float64(len(ts))
		}
		first, last := mean(times[:n/10]), mean(times[n-n/10:])
		// How much of the window a tenth of the events spans (10th to
		// 90th percentile): what a projection holds in memory at once.
		spread := func(ts []int64) float64 {
			ts = slices.Sorted(slices.Values(ts))
			return float64(ts[len(ts)*9/10]-ts[len(ts)/10]) / window
		}
		mid := times[n/2-n/20 : n/2+n/20]
		t.Logf("time order %d: deciles at %.2f and %.2f; the middle tenth spans %.2f of the window", tc.timeOrder, first, last, spread(mid))
		if s := spread(mid); s < tc.spread[0] || s > tc.spread[1] {
			t.Errorf("time order %d: a tenth of the events spans %.2f of the window, want [%.2f, %.2f]", tc.timeOrder, s, tc.spread[0], tc.spread[1])
		}
		if first < tc.first[0] || first > tc.first[1] || last < tc.last[0] || last > tc.last[1] {
			t.Errorf("time order %d: first tenth at %.2f, last at %.2f of the window; want [%.2f, %.2f] and [%.2f, %.2f]",
				tc.timeOrder, first, last, tc.first[0], tc.first[1], tc.last[0], tc.last[1])
		}
	}
}

// TestTruth checks the truth against aggregates computed independently from
// the encoded requests, as Sextant would compute them.
func TestTruth(t *testing.T) {
	c := config(9, 25, 3*time.Hour)
	truth := NewTruth([]string{"p0", "p1"})
	type agg struct {
		events, views int64
		users         map[string]bool
		sessions      map[string]bool
		newUsers      map[string]bool
		paths         map[string]int64
	}
	want := map[int]*agg{}
	for prop := 0; prop < 2; prop++ {
		g := mustNew(t, c, prop)
		a := &agg{users: map[string]bool{}, sessions: map[string]bool{}, newUsers: map[string]bool{}, paths: map[string]int64{}}
		want[prop] = a
		for i := 0; i < 300; i++ {
			b := g.Next(0)
			if i%7 == 3 { // not acknowledged: not in the truth
				continue
			}
			truth.Add(b, end)
			var req collectv1.CollectRequest
			if err := proto.Unmarshal(AppendProto(nil, b), &req); err != nil {
				t.Fatal(err)
			}
			a.users[req.ClientId] = true
			for _, e := range req.Events {
				a.events++
				u, err := url.Parse(e.Params[ParamPageLocation].GetStringValue())
				if err != nil {
					t.Fatal(err)
				}
				if e.Name == "page_view" {
					a.views++
					a.paths[u.EscapedPath()]++
				}
				if e.Name == "first_visit" {
					a.newUsers[req.ClientId] = true
				}
				a.sessions[fmt.Sprintf("%s/%v", req.ClientId, e.Params[ParamSessionID].GetNumberValue())] = true
			}
		}
	}
	r := truth.Report()
	if len(r.Properties) != 2 {
		t.Fatalf("%d properties", len(r.Properties))
	}
	var total int64
	for _, p := range r.Properties {
		a := want[p.Index]
		got := fmt.Sprint(p.EventCount, p.ScreenPageViews, p.TotalUsers, p.NewUsers, p.Sessions)
		exp := fmt.Sprint(a.events, a.views, len(a.users), len(a.newUsers), len(a.sessions))
		if got != exp {
			t.Errorf("property %d: events views users newUsers sessions = %s, want %s", p.Index, got, exp)
		}
		if fmt.Sprint(p.PagePathViews) != fmt.Sprint(a.paths) {
			t.Errorf("property %d: page path views differ", p.Index)
		}
		if p.PropertyID != fmt.Sprintf("p%d", p.Index) {
			t.Errorf("property %d named %q", p.Index, p.PropertyID)
		}
		total += p.EventCount
	}
	if r.Totals.EventCount != total {
		t.Errorf("total events %d, want %d", r.Totals.EventCount, total)
	}
	if r.StartDate != "2026-03-01" || r.EndDate != "2026-03-01" {
		t.Errorf("date range %s..%s", r.StartDate, r.EndDate)
	}
	var buf bytes.Buffer
	if err := truth.WriteJSON(&buf); err != nil || !strings.Contains(buf.String(), `"pagePathViews"`) {
		t.Fatalf("WriteJSON: %v %s", err, buf.String())
	}
}

func TestHistogram(t *testing.T) {
	var h, other Histogram
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	other.Record(5 * time.Second)
	h.Merge(&other)
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.9, 900 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {1, 5 * time.Second}} {
		got := h.Quantile(tc.q)
		if math.Abs(float64(got-tc.want))/float64(tc.want) > 0.01 {
			t.Errorf("q%.2f = %v, want %v ± 1%%", tc.q, got, tc.want)
		}
	}
	if h.Count() != 1001 || h.Max() != 5*time.Second {
		t.Errorf("count %d max %v", h.Count(), h.Max())
	}
	for _, us := range []uint64{0, 1, 127, 128, 255, 256, 1000, 123456, 1 << 40} {
		v := bucketValue(bucketOf(us))
		if math.Abs(float64(v)-float64(us)) > float64(us)/100+1 {
			t.Errorf("bucket of %d has value %d", us, v)
		}
	}
}

func TestReadKeys(t *testing.T) {
	in := "# comment\n{\"propertyId\":\"p1\",\"writeKey\":\"sxw_a\",\"readKey\":\"sxr_a\"}\n\n{\"propertyId\":\"p2\",\"writeKey\":\"sxw_b\"}\n"
	ks, err := ReadKeys(strings.NewReader(in))
	if err != nil || len(ks) != 2 || ks[0].ReadKey != "sxr_a" || ks[1].PropertyID != "p2" {
		t.Fatalf("ReadKeys: %v %+v", err, ks)
	}
	for _, bad := range []string{"", "{}", "nope"} {
		if _, err := ReadKeys(strings.NewReader(bad)); err == nil {
			t.Errorf("ReadKeys(%q) succeeded", bad)
		}
	}
}

// BenchmarkGenerate measures the generator and the protobuf encoder: the
// load generator's own cost per event.
func BenchmarkGenerate(b *testing.B) {
	for _, batch := range []int{25, 500} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			g := mustNew(b, config(1, batch, 70*time.Hour), 0)
			var buf []byte
			b.ReportAllocs()
			events := 0
			for b.Loop() {
				bt := g.Next(0)
				buf = AppendProto(buf[:0], bt)
				events += len(bt.Events)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
			b.ReportMetric(float64(len(buf))/float64(batch), "bytes/event")
		})
	}
}

// TestSpread checks the Zipf spread of traffic over properties: shares
// that sum to one and never grow with the rank, the closed forms where
// there is one, and draws that follow the shares (the first ranks one by
// one, and the second half of the properties together).
func TestSpread(t *testing.T) {
	for _, tc := range []struct {
		n     int
		s     float64
		first float64 // the first property's share; 0: not checked
	}{
		{1, 1, 1},
		{10, 0, 0.1},
		{4, 1, 1 / (1 + 1.0/2 + 1.0/3 + 1.0/4)},
		{100, 1, 0},
		{1000, 1.2, 0},
		{10000, 1, 0},
		{10000, 2, 1 / (math.Pi * math.Pi / 6)}, // ζ(2), to 1e-4
	} {
		t.Run(fmt.Sprintf("n=%d,s=%v", tc.n, tc.s), func(t *testing.T) {
			z, err := NewSpread(tc.n, tc.s)
			if err != nil {
				t.Fatal(err)
			}
			var sum float64
			for k := 0; k < z.Len(); k++ {
				sum += z.Share(k)
				if k > 0 && z.Share(k) > z.Share(k-1)+1e-15 {
					t.Fatalf("share of %d (%g) above the share of %d (%g)", k, z.Share(k), k-1, z.Share(k-1))
				}
			}
			if math.Abs(sum-1) > 1e-9 {
				t.Fatalf("shares sum to %v", sum)
			}
			if tc.first > 0 && math.Abs(z.Share(0)-tc.first) > 1e-4 {
				t.Fatalf("first share %v, want %v", z.Share(0), tc.first)
			}
			if tc.s == 0 && math.Abs(z.Share(tc.n-1)-z.Share(0)) > 1e-12 {
				t.Fatalf("s = 0 is not even: %v .. %v", z.Share(0), z.Share(tc.n-1))
			}
			const draws = 200_000
			r := rand.New(rand.NewPCG(1, 2))
			counts := make([]int, tc.n)
			for range draws {
				counts[z.Pick(r)]++
			}
			check := func(what string, got int, p float64) {
				want := p * draws
				sd := math.Sqrt(draws * p * (1 - p))
				if math.Abs(float64(got)-want) > 5*sd+1 {
					t.Errorf("%s: %d draws, want %.0f ± %.0f", what, got, want, 5*sd)
				}
			}
			for k := 0; k < min(tc.n, 5); k++ {
				check(fmt.Sprintf("property %d", k), counts[k], z.Share(k))
			}
			var tail, tailP float64
			for k := tc.n / 2; k < tc.n; k++ {
				tail += float64(counts[k])
				tailP += z.Share(k)
			}
			check("second half", int(tail), tailP)
		})
	}
	for _, bad := range []struct {
		n int
		s float64
	}{{0, 1}, {10, -0.5}, {10, math.NaN()}, {10, math.Inf(1)}} {
		if _, err := NewSpread(bad.n, bad.s); err == nil {
			t.Errorf("NewSpread(%d, %v) accepted", bad.n, bad.s)
		}
	}
	// The same seed picks the same properties.
	z, _ := NewSpread(1000, 1.1)
	a, b := rand.New(rand.NewPCG(7, 7)), rand.New(rand.NewPCG(7, 7))
	for i := range 1000 {
		if x, y := z.Pick(a), z.Pick(b); x != y {
			t.Fatalf("draw %d: %d and %d from the same seed", i, x, y)
		}
	}
}
