package projection

import (
	"context"
	"errors"
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
