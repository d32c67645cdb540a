package projection

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventv1 "github.com/sextant-analytics/sextant/gen/sextant/event/v1"
	"github.com/sextant-analytics/sextant/pkg/analytics"
	"github.com/sextant-analytics/sextant/pkg/block"
	"github.com/sextant-analytics/sextant/pkg/catalog"
	"github.com/sextant-analytics/sextant/pkg/eventlog"
	"github.com/sextant-analytics/sextant/pkg/pebblelog"
	"github.com/sextant-analytics/sextant/pkg/pebblestore"
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
func prop(id string) evOpt { return func(e *eventv1.Event) { e.PropertyId = id } }

func ev(id, client, name string, opts ...evOpt) *eventv1.Event {
	e := &eventv1.Event{EventId: id, PropertyId: "p1", ClientId: client, Name: name,
		EventTime: timestamppb.New(t0), ReceiveTime: timestamppb.New(t0)}
	for _, o := range opts {
		o(e)
	}
	return e
}

func summary(a *analytics.Aggregate) string {
	return fmt.Sprintf("events=%d views=%d users=%d active=%d new=%d sessions=%d engaged=%d",
		a.Events, a.PageViews, a.Users.Estimate(), a.ActiveUsers.Estimate(), a.NewUsers.Estimate(), a.Sessions.Estimate(), a.EngagedSess.Estimate())
}

// sumSection adds up the entries of section sec of the blocks, in all and
// by the value of dimension by (when sec has it).
func sumSection(t testing.TB, blocks [][]byte, sec block.Section, by string) (*analytics.Aggregate, map[string]*analytics.Aggregate) {
	t.Helper()
	all := analytics.NewAggregate()
	groups := map[string]*analytics.Aggregate{}
	pos := -1
	for i, d := range sec.Dims {
		if d == by {
			pos = i
		}
	}
	for _, data := range blocks {
		r, err := block.Open(data)
		if err != nil {
			t.Fatal(err)
		}
		i := r.Find(sec)
		if i < 0 {
			continue
		}
		err = r.Entries(i, func(_ int64, dims string, value []byte) error {
			a, err := analytics.UnmarshalAggregate(value)
			if err != nil {
				return err
			}
			if err := all.Merge(a); err != nil {
				return err
			}
			if pos >= 0 {
				vals, _ := block.SplitDims(dims, len(sec.Dims))
				g := groups[vals[pos]]
				if g == nil {
					g = analytics.NewAggregate()
					groups[vals[pos]] = g
				}
				return g.Merge(a)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return all, groups
}

// whole is the section of traffic's whole tuples, by the hour.
var whole = block.Section{Grain: block.Hour, Dims: catalog.Traffic.Rollups[0].Dims}

// openBlocks encodes a partition's open additions: all their parts merged
// into one block per property and hour.
func openBlocks(t testing.TB, p *partition) [][]byte {
	t.Helper()
	adds, err := p.adds.encode(p.id, p.start, p.progress.Next)
	if err != nil {
		t.Fatal(err)
	}
	type ph struct {
		property string
		hour     int64
	}
	parts := map[ph][][]byte{}
	var order []ph
	for _, a := range adds {
		property, _, ok := viewstore.ParseSeries(a.Property)
		if !ok {
			t.Fatalf("addition of series %q", a.Property)
		}
		k := ph{property, a.Hour}
		if parts[k] == nil {
			order = append(order, k)
		}
		parts[k] = append(parts[k], a.Block)
	}
	var out [][]byte
	for _, k := range order {
		b, err := block.Merge(nil, k.hour, nil, parts[k]...)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// storedBlocks returns what a report of property over [from, to) reads
// from the store (see services/insights' read.go): the day blocks of the
// UTC days, else their hour blocks, and the committed additions neither
// covers. Day blocks come back as they are (day sections); the rest as hour
// and minute sections.
func storedBlocks(t testing.TB, st viewstore.Store, ns viewstore.Namespace, property string, from, to int64) (days, rest [][]byte) {
	t.Helper()
	ctx := context.Background()
	progress, err := st.ListProgress(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	committed := map[int32]int64{}
	for _, p := range progress {
		committed[p.Partition] = p.Next
	}
	var adds []viewstore.Addition
	if err := st.ScanAdditions(ctx, ns, property, from, to, func(a viewstore.Addition) error {
		if a.End <= committed[a.Partition] {
			a.Block = append([]byte(nil), a.Block...)
			adds = append(adds, a)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	dayBlocks, hourBlocks := map[int64]viewstore.Block{}, map[int64]viewstore.Block{}
	for _, k := range []viewstore.Kind{viewstore.DayBlock, viewstore.HourBlock} {
		if err := st.ScanBlocks(ctx, ns, property, k, from, to, func(b viewstore.Block) error {
			b.Data, b.Cover = append([]byte(nil), b.Data...), append([]int64(nil), b.Cover...)
			if k == viewstore.DayBlock {
				dayBlocks[b.Bucket] = b
			} else if _, ok := dayBlocks[block.Day.Floor(b.Bucket)]; !ok {
				hourBlocks[b.Bucket] = b
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range dayBlocks {
		days = append(days, b.Data)
	}
	for _, b := range hourBlocks {
		rest = append(rest, b.Data)
	}
	for _, a := range adds {
		b, ok := dayBlocks[block.Day.Floor(a.Hour)]
		if !ok {
			b, ok = hourBlocks[a.Hour]
		}
		if ok && a.End <= b.Covered(a.Partition) {
			continue
		}
		rest = append(rest, a.Block)
	}
	return days, rest
}

// storedTotal merges everything stored of property around t0 into one
// aggregate, reading the whole-tuple sections.
func storedTotal(t testing.TB, st viewstore.Store, ns viewstore.Namespace, property string) *analytics.Aggregate {
	t.Helper()
	// Part 0: traffic's whole tuples.
	days, rest := storedBlocks(t, st, ns, viewstore.SeriesOf(property, 0), t0.Add(-72*time.Hour).Unix(), t0.Add(30*24*time.Hour).Unix())
	a, _ := sumSection(t, days, block.Section{Grain: block.Day, Dims: whole.Dims}, "")
	b, _ := sumSection(t, rest, whole, "")
	if err := a.Merge(b); err != nil {
		t.Fatal(err)
	}
	return a
}

func openEmbedded(t *testing.T, dir string) (*pebblelog.Log, *pebblestore.Store) {
	t.Helper()
	log, err := pebblelog.Open(dir+"/log", pebblelog.Options{Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	st, err := pebblestore.Open(dir+"/views", pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return log, st
}

func appendEvents(t *testing.T, log eventlog.Appender, from, to int, dupOf func(i int) int) {
	t.Helper()
	var msgs []eventlog.Message
	for i := from; i < to; i++ {
		id := i
		if dupOf != nil {
			id = dupOf(i)
		}
		e := ev(fmt.Sprint("e", id), fmt.Sprint("c", id%7), "page_view", page(fmt.Sprint("/p", id%3)), at(time.Duration(id)*time.Minute))
		msgs = append(msgs, message(t, e))
	}
	if err := log.Append(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
}

func message(t testing.TB, e *eventv1.Event) eventlog.Message {
	b, err := proto.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return eventlog.Message{Key: []byte(e.PropertyId + "/" + e.ClientId), Value: b}
}

// runUntil runs a projector until it has applied every record of the log,
// then stops it (which commits).
func runUntil(t *testing.T, log *pebblelog.Log, st viewstore.Store) {
	t.Helper()
	runUntilWith(t, log, st, Config{})
}

func runUntilWith(t *testing.T, log *pebblelog.Log, st viewstore.Store, cfg Config) {
	t.Helper()
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = 10 * time.Millisecond
	}
	startCaughtUp(t, log, st, cfg)()
}

// startCaughtUp starts a projector and waits until it has applied every
// record of the log; the projector keeps running until stop, which commits
// and fails the test on a projector error.
func startCaughtUp(t *testing.T, log Log, st viewstore.Store, cfg Config) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	pr := NewProjector(cfg, log, st)
	done := make(chan error, 1)
	go func() { done <- pr.Run(ctx) }()
	stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for !caughtUp(t, log, st, pr.Namespace()) {
		if time.Now().After(deadline) {
			stop()
			t.Fatal("projector did not catch up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return stop
}

func caughtUp(tb testing.TB, log eventlog.Reader, st viewstore.Store, ns viewstore.Namespace) bool {
	ctx := context.Background()
	progress, err := st.ListProgress(ctx, ns)
	if err != nil {
		tb.Fatal(err)
	}
	next := map[int32]int64{}
	for _, p := range progress {
		next[p.Partition] = p.Next
	}
	parts, _ := log.Partitions(ctx)
	for _, p := range parts {
		end, _ := log.EndOffset(ctx, p)
		if next[p] != end {
			return false
		}
	}
	return true
}

// compactAll compacts every shard of ns at once.
func compactAll(t testing.TB, st viewstore.Store, ns viewstore.Namespace) {
	t.Helper()
	c := NewCompactor(CompactionConfig{}, ns, catalog.Traffic, st, slog.New(slog.DiscardHandler), nil)
	for s := range viewstore.Shards {
		if _, err := c.Compact(context.Background(), s, true); err != nil {
			t.Fatal(err)
		}
	}
}

// pendingAdditions counts the stored additions of ns.
func pendingAdditions(t testing.TB, st viewstore.Store, ns viewstore.Namespace) int {
	t.Helper()
	n := 0
	for s := range viewstore.Shards {
		if err := st.ListPending(context.Background(), ns, s, func(viewstore.PendingKey) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// openLog opens (or creates) the embedded log of dir alone.
func openLog(tb testing.TB, dir string) *pebblelog.Log {
	tb.Helper()
	log, err := pebblelog.Open(dir+"/log", pebblelog.Options{Partitions: 4})
	if err != nil {
		tb.Fatal(err)
	}
	return log
}

// openViews opens an empty embedded view store.
func openViews(tb testing.TB) *pebblestore.Store {
	tb.Helper()
	st, err := pebblestore.Open(tb.TempDir(), pebblestore.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return st
}
