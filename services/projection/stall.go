package projection

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// ErrStalled is in the chain of the error of a write refused because this
// process did not run for longer than its stall threshold.
var ErrStalled = errors.New("this process did not run for a while: its partitions may belong to another copy now")

// DefaultStallThreshold is how long the process may not run (stopped,
// paused, starved) before its projections stop writing what they held:
// below the consumer group's session timeout (8 s by default), after which
// the group gives the partitions to another copy.
const DefaultStallThreshold = 3 * time.Second

// stallGuard notices that the process did not run for longer than a
// threshold: a SIGSTOP, a paused VM, a long GC, CPU starvation. A
// projector that was not running may have lost its partitions to another
// copy without knowing it yet (the group tells it at its next heartbeat);
// whatever it writes after waking up would land after the new owner's
// writes and overwrite them, so its checkpoints and compactions check the
// guard before every write (viewstore.WithFence) and give up.
//
// A ticker records the time every threshold/8; a gap between two ticks
// larger than the threshold counts a stall. A writer takes a mark when it
// loads what it owns, and its writes pass only while no stall was counted
// since and the last tick is recent (so a write that runs before the
// ticker noticed the gap fails too).
type stallGuard struct {
	threshold time.Duration
	base      time.Time    // monotonic reference
	last      atomic.Int64 // nanoseconds since base of the last tick
	stalls    atomic.Uint64
	longest   atomic.Int64 // the longest stall seen, nanoseconds
}

func newStallGuard(threshold time.Duration) *stallGuard {
	return &stallGuard{threshold: threshold, base: time.Now()}
}

// run ticks until ctx ends (the projector's Run, which records the first
// tick before it starts run, so that no write races the goroutine's start).
func (g *stallGuard) run(ctx context.Context) {
	t := time.NewTicker(max(g.threshold/8, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g.observe(time.Since(g.base))
		}
	}
}

// observe records a tick at now (since base).
func (g *stallGuard) observe(now time.Duration) {
	if gap := int64(now) - g.last.Load(); gap > int64(g.threshold) {
		g.stalls.Add(1)
		if gap > g.longest.Load() {
			g.longest.Store(gap)
		}
	}
	g.last.Store(int64(now))
}

// mark is the stall count now: what a writer compares with later.
func (g *stallGuard) mark() uint64 {
	if g == nil {
		return 0
	}
	return g.stalls.Load()
}

// check fails when a stall was counted since mark, or the last tick is
// older than the threshold (a stall in progress or not counted yet).
func (g *stallGuard) check(mark uint64) error {
	if g == nil {
		return nil
	}
	if g.stalls.Load() != mark {
		return fmt.Errorf("%w (stopped for up to %v, more than %v)", ErrStalled, time.Duration(g.longest.Load()).Round(time.Millisecond), g.threshold)
	}
	if gap := time.Since(g.base) - time.Duration(g.last.Load()); gap > g.threshold {
		return fmt.Errorf("%w (no tick for %v, more than %v)", ErrStalled, gap.Round(time.Millisecond), g.threshold)
	}
	return nil
}
