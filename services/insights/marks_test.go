package insights

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

func TestMarksStaleWhileRevalidate(t *testing.T) {
	var reads atomic.Int64
	var value atomic.Int64
	var wg sync.WaitGroup
	read := func(context.Context, viewstore.Namespace, string) ([]viewstore.Watermark, error) {
		defer wg.Done()
		reads.Add(1)
		return []viewstore.Watermark{{Offset: value.Load()}}, nil
	}
	m := newMarks(read, 100*time.Millisecond)
	clock := time.Unix(1000, 0)
	m.now = func() time.Time { return clock }
	get := func() int64 {
		t.Helper()
		wms, err := m.get(context.Background(), "ns", "p", false)
		if err != nil || len(wms) != 1 {
			t.Fatalf("get: %v %v", wms, err)
		}
		return wms[0].Offset
	}
	for _, step := range []struct {
		name    string
		advance time.Duration
		set     int64 // the store's value before the call
		reads   int   // store reads the call starts (waited for)
		want    int64 // what the call answers
	}{
		{"first read waits for the store", 0, 1, 1, 1},
		{"fresh: memory", 50 * time.Millisecond, 2, 0, 1},
		{"due: memory, refresh in the background", 60 * time.Millisecond, 3, 1, 1},
		{"refreshed", 0, 4, 0, 3},
		{"too old: waits for the store", 2 * time.Second, 5, 1, 5},
	} {
		clock = clock.Add(step.advance)
		value.Store(step.set)
		before := reads.Load()
		wg.Add(step.reads)
		if got := get(); got != step.want {
			t.Errorf("%s: got %d, want %d", step.name, got, step.want)
		}
		wg.Wait()
		settled(t, m)
		if n := reads.Load() - before; n != int64(step.reads) {
			t.Errorf("%s: %d store reads, want %d", step.name, n, step.reads)
		}
	}
	// With refresh 0 every call reads the store.
	m = newMarks(read, 0)
	wg.Add(2)
	before := reads.Load()
	_, _ = m.get(context.Background(), "ns", "p", false)
	_, _ = m.get(context.Background(), "ns", "p", false)
	if n := reads.Load() - before; n != 2 {
		t.Errorf("refresh 0: %d reads, want 2", n)
	}
}

// settled waits until no background refresh is running.
func settled(t *testing.T, m *marks) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		m.mu.Lock()
		busy := false
		for _, e := range m.entries {
			busy = busy || e.refreshing
		}
		m.mu.Unlock()
		if !busy {
			return
		}
	}
	t.Fatal("refresh did not finish")
}

// A fresh get reads the store even when the remembered watermarks are
// young, and remembers what it read.
func TestMarksFresh(t *testing.T) {
	reads := 0
	m := newMarks(func(context.Context, viewstore.Namespace, string) ([]viewstore.Watermark, error) {
		reads++
		return []viewstore.Watermark{{Offset: int64(reads)}}, nil
	}, time.Hour)
	for i, tc := range []struct {
		fresh      bool
		wantOffset int64
	}{{false, 1}, {false, 1}, {true, 2}, {false, 2}} {
		wms, err := m.get(context.Background(), "ns", "p", tc.fresh)
		if err != nil || len(wms) != 1 || wms[0].Offset != tc.wantOffset {
			t.Fatalf("get %d (fresh %v): %v %v, want offset %d", i, tc.fresh, wms, err, tc.wantOffset)
		}
	}
}
