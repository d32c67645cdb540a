package projection

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/sextant-analytics/sextant/pkg/block"
	"github.com/sextant-analytics/sextant/pkg/eventlog"

	"github.com/sextant-analytics/sextant/pkg/catalog"
	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

// failing fails the nth call of one store operation of compaction.
type failing struct {
	viewstore.Store
	op    string
	n     int
	calls int
}

var errFailing = errors.New("store failure (test)")

func (f *failing) hit(op string) error {
	if op != f.op {
		return nil
	}
	f.calls++
	if f.calls == f.n {
		return errFailing
	}
	return nil
}

func (f *failing) PutBlock(ctx context.Context, ns viewstore.Namespace, b viewstore.Block) error {
	op := "hour"
	if b.Kind == viewstore.DayBlock {
		op = "day"
	}
	if err := f.hit(op); err != nil {
		return err
	}
	return f.Store.PutBlock(ctx, ns, b)
}

func (f *failing) DeleteAdditions(ctx context.Context, ns viewstore.Namespace, property string, hour int64, part int32, before int64) error {
	if err := f.hit("delete"); err != nil {
		return err
	}
	return f.Store.DeleteAdditions(ctx, ns, property, hour, part, before)
}

// Compaction interrupted at any of its writes, then run again, leaves the
// read model as it was: each block gets exactly the additions it lacks.
func TestCompactionCrashSafe(t *testing.T) {
	for _, tc := range []struct {
		op string
		n  int
	}{{"hour", 1}, {"hour", 5}, {"day", 1}, {"day", 2}, {"delete", 1}, {"delete", 7}} {
		t.Run(tc.op, func(t *testing.T) {
			dir := t.TempDir()
			log, st := openEmbedded(t, dir)
			defer log.Close()
			defer st.Close()
			msgs := mixedEvents(t, 1500, 2)
			half := len(msgs) / 2
			if err := log.Append(context.Background(), msgs[:half]); err != nil {
				t.Fatal(err)
			}
			runUntilWith(t, log, st, Config{MaxPending: 50, Compaction: CompactionConfig{Off: true}})
			want := summary(storedTotal(t, st, v1, "p1"))
			f := &failing{Store: st, op: tc.op, n: tc.n}
			c := NewCompactor(CompactionConfig{}, v1, catalog.Traffic, f, nil, nil)
			compact := func() error {
				var first error
				for s := range viewstore.Shards {
					if _, err := c.Compact(context.Background(), s, true); err != nil && first == nil {
						first = err
					}
				}
				return first
			}
			if err := compact(); !errors.Is(err, errFailing) {
				t.Fatalf("compaction: %v, want the injected failure", err)
			}
			if got := summary(storedTotal(t, st, v1, "p1")); got != want {
				t.Fatalf("after the failed compaction: %s, want %s", got, want)
			}
			// More events, then compaction again (it succeeds now).
			if err := log.Append(context.Background(), msgs[half:]); err != nil {
				t.Fatal(err)
			}
			runUntilWith(t, log, st, Config{MaxPending: 50, Compaction: CompactionConfig{Off: true}})
			want = summary(storedTotal(t, st, v1, "p1"))
			if err := compact(); err != nil {
				t.Fatal(err)
			}
			if got := summary(storedTotal(t, st, v1, "p1")); got != want {
				t.Fatalf("after compacting again: %s, want %s", got, want)
			}
			if n := pendingAdditions(t, st, v1); n != 0 {
				t.Fatalf("%d additions left", n)
			}
			// Whole tuples are kept by the hour only; the others by the
			// day too.
			for part, want := range map[int]bool{0: false, 1: true, 3: true, 7: false, 8: false} {
				days := 0
				if err := st.ScanBlocks(context.Background(), v1, viewstore.SeriesOf("p1", part), viewstore.DayBlock, 0, 1<<40, func(viewstore.Block) error { days++; return nil }); err != nil {
					t.Fatal(err)
				}
				if (days > 0) != want {
					t.Errorf("part %d: %d day blocks", part, days)
				}
			}
		})
	}
}

// Compactors running next to the projector, as in production, change
// nothing in the answers and leave no addition behind once idle.
func TestCompactionWhileProjecting(t *testing.T) {
	msgs := mixedEvents(t, 4000, 3)
	dir := t.TempDir()
	log, st := openEmbedded(t, dir)
	defer log.Close()
	defer st.Close()
	ref, rst := openEmbedded(t, t.TempDir())
	defer ref.Close()
	defer rst.Close()
	for i := 0; i < len(msgs); i += 100 {
		if err := log.Append(context.Background(), msgs[i:i+100]); err != nil {
			t.Fatal(err)
		}
		if err := ref.Append(context.Background(), msgs[i:i+100]); err != nil {
			t.Fatal(err)
		}
	}
	runUntilWith(t, ref, rst, Config{Compaction: CompactionConfig{Off: true}})
	want := summary(storedTotal(t, rst, v1, "p1"))

	stop := startCaughtUp(t, log, st, Config{MaxPending: 40, FlushInterval: 5 * time.Millisecond,
		Compaction: CompactionConfig{Every: 5 * time.Millisecond, MaxPending: 1}})
	deadline := time.Now().Add(10 * time.Second)
	for pendingAdditions(t, st, v1) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if n := pendingAdditions(t, st, v1); n != 0 {
		t.Fatalf("%d additions left by the compactors", n)
	}
	if got := summary(storedTotal(t, st, v1, "p1")); got != want {
		t.Fatalf("compacted while projecting: %s, want %s", got, want)
	}
}

// A day still open gets hour blocks only (its day block would be
// rewritten at every run); once it ends, the next run builds its day block
// from its hour blocks, which then holds what they hold.
func TestOpenDayGetsItsDayBlockWhenItEnds(t *testing.T) {
	ctx := context.Background()
	log, st := openEmbedded(t, t.TempDir())
	defer log.Close()
	defer st.Close()
	msgs := mixedEvents(t, 1500, 4) // t0 … t0+57h
	if err := log.Append(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	runUntilWith(t, log, st, Config{MaxPending: 50, Compaction: CompactionConfig{Off: true}})
	lastDay := block.Day.Floor(t0.Add(1499 * 137 * time.Second).Unix())
	c := NewCompactor(CompactionConfig{MaxPending: 1}, v1, catalog.Traffic, st, nil, nil)
	now := time.Unix(lastDay+12*3600, 0) // noon of the events' last day
	c.now = func() time.Time { return now }
	compact := func() {
		for s := range viewstore.Shards {
			if _, err := c.Compact(ctx, s, true); err != nil {
				t.Fatal(err)
			}
		}
	}
	compact()
	if n := pendingAdditions(t, st, v1); n != 0 {
		t.Fatalf("%d additions left", n)
	}
	total := viewstore.SeriesOf("p1", catalog.Traffic.PartOf(1, block.Hour))
	dayBlocks := func() map[int64][]byte {
		out := map[int64][]byte{}
		if err := st.ScanBlocks(ctx, v1, total, viewstore.DayBlock, 0, 1<<40, func(b viewstore.Block) error {
			out[b.Bucket] = slices.Clone(b.Data)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	hoursOf := func(day int64) [][]byte {
		var out [][]byte
		if err := st.ScanBlocks(ctx, v1, total, viewstore.HourBlock, day, day+86400, func(b viewstore.Block) error {
			out = append(out, slices.Clone(b.Data))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	days := dayBlocks()
	if _, ok := days[lastDay]; ok || len(days) == 0 {
		t.Fatalf("day blocks at %v: want the closed days' and not the open day's (%d)", slices.Collect(maps.Keys(days)), lastDay)
	}
	if len(hoursOf(lastDay)) == 0 {
		t.Fatal("the open day has no hour blocks")
	}
	// The day ends: a run with nothing pending builds its block.
	now = time.Unix(lastDay+86400+3600, 0)
	compact()
	days = dayBlocks()
	got, ok := days[lastDay]
	if !ok {
		t.Fatal("no day block once the day ended")
	}
	want, _ := sumSection(t, hoursOf(lastDay), block.Section{Grain: block.Hour}, "")
	have, _ := sumSection(t, [][]byte{got}, block.Section{Grain: block.Day}, "")
	if summary(have) != summary(want) || have.Events == 0 {
		t.Fatalf("day block %s, its hours %s", summary(have), summary(want))
	}

	// Late events of the closed day: the run that merges them into its
	// hours retires its day block first; a run once the day is quiet
	// merges it again, with them.
	var late []eventlog.Message
	for i := range 7 {
		e := ev(fmt.Sprint("late", i), fmt.Sprint("late-c", i), "page_view", page("/late"),
			at(time.Unix(lastDay+5*3600, 0).Sub(t0)), received(now.Sub(t0)))
		late = append(late, message(t, e))
	}
	if err := log.Append(ctx, late); err != nil {
		t.Fatal(err)
	}
	runUntilWith(t, log, st, Config{MaxPending: 50, Compaction: CompactionConfig{Off: true}})
	for s := range viewstore.Shards {
		if _, err := c.Compact(ctx, s, false); err != nil {
			t.Fatal(err)
		}
	}
	if n := pendingAdditions(t, st, v1); n != 0 {
		t.Fatalf("%d additions left", n)
	}
	if d, ok := dayBlocks()[lastDay]; !ok || len(d) != 0 {
		t.Fatalf("the day block of a day whose hours changed: %d bytes (%v), want retired (empty)", len(d), ok)
	}
	now = now.Add(time.Minute) // quiet
	compact()
	got = dayBlocks()[lastDay]
	want, _ = sumSection(t, hoursOf(lastDay), block.Section{Grain: block.Hour}, "")
	have, _ = sumSection(t, [][]byte{got}, block.Section{Grain: block.Day}, "")
	if summary(have) != summary(want) || have.Events != want.Events || len(got) == 0 {
		t.Fatalf("day block after the late events %s, its hours %s", summary(have), summary(want))
	}
	if before, _ := sumSection(t, [][]byte{dayBlocks()[lastDay]}, block.Section{Grain: block.Day}, ""); before.Events < 7 {
		t.Fatalf("the late events are not in the day block: %d events", before.Events)
	}
}

// A day is due once its pending additions hold MaxPendingBytes, however
// few they are and however young.
func TestCompactionDueByBytes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxBytes int
		merged   bool
	}{
		{"below the bound, the additions wait", 1 << 30, false},
		{"at the bound, they are merged", 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			log, st := openEmbedded(t, t.TempDir())
			defer log.Close()
			defer st.Close()
			if err := log.Append(ctx, mixedEvents(t, 300, 4)); err != nil {
				t.Fatal(err)
			}
			runUntilWith(t, log, st, Config{MaxPending: 50, Compaction: CompactionConfig{Off: true}})
			before := pendingAdditions(t, st, v1)
			if before == 0 {
				t.Fatal("no additions to compact")
			}
			c := NewCompactor(CompactionConfig{MaxPending: 1 << 20, MaxWait: time.Hour, MaxPendingBytes: tc.maxBytes}, v1, catalog.Traffic, st, nil, nil)
			for s := range viewstore.Shards {
				if _, err := c.Compact(ctx, s, false); err != nil {
					t.Fatal(err)
				}
			}
			after := pendingAdditions(t, st, v1)
			if tc.merged && after != 0 || !tc.merged && after != before {
				t.Fatalf("%d additions pending after a run, %d before", after, before)
			}
		})
	}
}

// TestYielder: while the partition is behind, runs are deferred up to max
// in a row, then one goes ahead and the count starts over; caught up, every
// run goes ahead.
func TestYielder(t *testing.T) {
	behind := true
	y := yielder{behind: func() bool { return behind }, max: 30 * time.Second}
	t0 := time.Unix(1_700_000_000, 0)
	for _, step := range []struct {
		at     time.Duration
		behind bool
		skip   bool
	}{
		{0, true, true},
		{10 * time.Second, true, true},
		{29 * time.Second, true, true},
		{30 * time.Second, true, false}, // deferred 30 s in a row: runs
		{32 * time.Second, true, true},  // and the count starts over
		{61 * time.Second, true, true},
		{62 * time.Second, true, false},
		{64 * time.Second, false, false}, // caught up
		{66 * time.Second, true, true},
	} {
		behind = step.behind
		if got := y.skip(t0.Add(step.at)); got != step.skip {
			t.Errorf("at %v (behind %v): skip = %v, want %v", step.at, step.behind, got, step.skip)
		}
	}
	var none yielder
	if none.skip(t0) {
		t.Error("a compactor that yields to nothing deferred a run")
	}
}
