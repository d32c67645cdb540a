package projection

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

func TestStallGuard(t *testing.T) {
	const th = time.Second
	g := newStallGuard(th)
	now := time.Since(g.base)
	g.last.Store(int64(now))
	mark := g.mark()
	if err := g.check(mark); err != nil {
		t.Fatalf("fresh guard: %v", err)
	}
	// Ticks closer than the threshold: no stall.
	for i := 1; i <= 5; i++ {
		g.observe(now + time.Duration(i)*th/2)
	}
	g.last.Store(int64(time.Since(g.base))) // the ticker is current
	if err := g.check(mark); err != nil {
		t.Fatalf("regular ticks: %v", err)
	}
	// The process did not run for 5 s: the next tick counts a stall, and
	// writes marked before it fail from then on.
	g.observe(time.Duration(g.last.Load()) + 5*th)
	g.last.Store(int64(time.Since(g.base)))
	if err := g.check(mark); !errors.Is(err, ErrStalled) {
		t.Fatalf("after a stall: %v, want ErrStalled", err)
	}
	// What loads again after the stall takes a new mark and may write.
	if err := g.check(g.mark()); err != nil {
		t.Fatalf("new mark after the stall: %v", err)
	}
	// A write that runs before the ticker noticed the gap fails too.
	g.last.Store(int64(time.Since(g.base) - 2*th))
	if err := g.check(g.mark()); !errors.Is(err, ErrStalled) {
		t.Fatalf("no tick for 2 s: %v, want ErrStalled", err)
	}
	var off *stallGuard
	if err := off.check(off.mark()); err != nil {
		t.Fatalf("nil guard: %v", err)
	}
}

// TestStallFencesWrites: the projector's fence makes a store write fail
// once the process stalled after the partition was loaded.
func TestStallFencesWrites(t *testing.T) {
	p := &Projector{stall: newStallGuard(time.Second)}
	p.stall.last.Store(int64(time.Since(p.stall.base)))
	ctx := p.fenced(context.Background(), p.stall.mark())
	if err := viewstore.CheckFence(ctx); err != nil {
		t.Fatalf("before a stall: %v", err)
	}
	p.stall.observe(time.Duration(p.stall.last.Load()) + 10*time.Second)
	if err := viewstore.CheckFence(ctx); !errors.Is(err, ErrStalled) {
		t.Fatalf("after a stall: %v, want ErrStalled", err)
	}
	if err := viewstore.CheckFence(context.WithoutCancel(ctx)); !errors.Is(err, ErrStalled) {
		t.Fatalf("the shutdown flush's context lost the fence: %v", err)
	}
}

// lockedBuffer is a log sink for tests.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestStalledProjectorWritesNothing: after a stall (counted by the guard as
// the ticker would count a SIGSTOP), the projector commits nothing of what
// it applied: its partitions drop their open additions, wait for the
// group's word, load the store again and apply the records again, and the
// read model ends exact (no record lost or counted twice).
func TestStalledProjectorWritesNothing(t *testing.T) {
	dir := t.TempDir()
	log, st := openEmbedded(t, dir)
	defer log.Close()
	defer st.Close()
	appendEvents(t, log, 0, 100, nil)
	var logs lockedBuffer
	cfg := Config{FlushInterval: 20 * time.Millisecond, StallThreshold: time.Second,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	pr := NewProjector(cfg, log, st)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- pr.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	committed := func() int64 {
		ps, err := st.ListProgress(context.Background(), pr.Namespace())
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, p := range ps {
			n += p.Next
		}
		return n
	}
	waitFor := func(what string, within time.Duration, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(within); !ok(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s within %v", what, within)
			}
		}
	}
	waitFor("the first 100 records committed", 10*time.Second, func() bool { return committed() == 100 })

	// The process "did not run" for 5 s.
	pr.stall.observe(time.Duration(pr.stall.last.Load()) + 5*time.Second)
	appendEvents(t, log, 100, 200, nil)
	waitFor("the partitions to drop what they held", 5*time.Second, func() bool {
		return strings.Contains(logs.String(), "dropped what it held after the process stalled")
	})
	if n := committed(); n != 100 {
		t.Fatalf("a projector that stalled committed up to %d records, want nothing past 100", n)
	}
	// After the group's heartbeat wait it loads the store again and goes on.
	waitFor("the last 100 records committed after the stall", 20*time.Second, func() bool { return committed() == 200 })
	if got := summary(storedTotal(t, st, pr.Namespace(), "p1")); !strings.HasPrefix(got, "events=200 views=200 ") {
		t.Fatalf("read model after the stall: %s, want 200 events and views", got)
	}
}
