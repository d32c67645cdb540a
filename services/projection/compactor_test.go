package projection

import (
	"context"
	"errors"
	"testing"
	"time"

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
			for part, want := range map[int]bool{0: false, 1: true, 3: true} {
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
