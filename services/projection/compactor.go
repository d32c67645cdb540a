package projection

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/sextant-analytics/sextant/pkg/block"
	"github.com/sextant-analytics/sextant/pkg/catalog"
	"github.com/sextant-analytics/sextant/pkg/configcheck"
	"github.com/sextant-analytics/sextant/pkg/metrics"
	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

// Compaction merges additions into blocks: the additions of a series (a
// property's part: one rollup's hour or minute section, viewstore.SeriesOf,
// catalog.Layout.Parts) and hour into its hour block, and
// those of its UTC day into its day block,
// so that a report over N days reads N day blocks, the hour blocks of
// partial days and the few additions not compacted yet, whatever the
// number of events.
//
// # Correctness
//
// A run over a shard reads the namespace's committed progress first, as
// the cover vector C, then lists the shard's additions. Every addition
// with End <= C[p] was stored before its partition's progress reached it,
// so the run sees all of them (those not deleted yet). For each property
// and day it compacts, it merges into each hour block the listed additions
// that block does not cover yet (End > Cover[p]) and that are committed
// (End <= C[p]), writes the hour blocks with Cover = C, and only then
// deletes the additions it merged (Start < C[p], which for a partition's
// non-overlapping ranges is End <= C[p]). A crash anywhere leaves each
// block either as it was or with Cover = C, and the additions in place
// until the blocks are written: the next run merges exactly what each
// block lacks, so compaction is idempotent.
//
// Day blocks are merged from hour blocks, not from additions. Before a
// run changes a day's hour blocks it empties the day's block (readers
// treat an empty day block as none and read the hours); once the day has
// ended (CompactionConfig.DayGrace) and no addition of it came for
// DayQuiet, a run that lists none of its additions merges the day block
// from all its hour blocks with Cover = C: every addition with End <=
// C[p] is then in an hour block and no other is, so the cover holds.
//
// Readers read additions before blocks, and count an addition only when
// the block they use for its period does not cover it: a compaction
// between the two reads shows them a block that covers what they read
// twice, never a hole.
//
// # Sharing
//
// A namespace has viewstore.Shards shards, by property. Shard s is
// compacted by the projection process holding log partition s modulo the
// number of partitions (ShardsOf), so copies share the work without
// compacting a shard twice, and a shard moves with its partition when the
// consumer group rebalances.

// CompactStore is what compaction needs of the view store.
type CompactStore interface {
	ListProgress(ctx context.Context, ns viewstore.Namespace) ([]viewstore.Progress, error)
	ListPending(ctx context.Context, ns viewstore.Namespace, shard int, fn func(viewstore.PendingKey) error) error
	ScanAdditions(ctx context.Context, ns viewstore.Namespace, property string, from, to int64, fn func(viewstore.Addition) error) error
	ScanBlocks(ctx context.Context, ns viewstore.Namespace, property string, k viewstore.Kind, from, to int64, fn func(viewstore.Block) error) error
	PutBlock(ctx context.Context, ns viewstore.Namespace, b viewstore.Block) error
	DeleteAdditions(ctx context.Context, ns viewstore.Namespace, property string, hour int64, part int32, before int64) error
}

// CompactionConfig configures compactors.
type CompactionConfig struct {
	// Every is how often a compactor looks at its shards (default 2 s).
	Every time.Duration
	// MaxWait bounds how long additions of a day wait (default 5 min):
	// the day is compacted once one of its pending additions is that old,
	// or once MaxPending of them (or MaxPendingBytes) are pending,
	// whichever comes first. A compaction rewrites the day's hour blocks
	// whole, so batching additions bounds the bytes rewritten per event;
	// readers merge what waits.
	MaxWait    time.Duration
	MaxPending int // default 64
	// MaxPendingBytes makes a day due once its pending additions hold
	// that many bytes (default 256 KiB): readers merge what waits, and a
	// few large additions (a catch-up's or a replay's, which hold the
	// users and sessions of thousands of events each) cost them as much as
	// many small ones.
	MaxPendingBytes int
	// DayGrace is how long after its end a day counts as open (default
	// 10 min): events in flight still arrive.
	DayGrace time.Duration
	// DayQuiet is how long no addition of a closed day must come before
	// its day block is merged (default 30 s).
	DayQuiet time.Duration
	// YieldFor is how long in a row a compactor defers its runs while its
	// partition's consumer is behind the log (Compactor.YieldTo; default
	// 30 s): applying new events takes the cores first, so that a burst
	// or a compaction backlog does not hold back what reports show, and
	// readers merge what waits meanwhile. Past it one run goes ahead.
	YieldFor time.Duration
	// Off disables compaction (tests of the read path).
	Off bool
}

// withDefaults fills the zero fields (and negative ones, which Validate
// reports) with their defaults.
func (c CompactionConfig) withDefaults() CompactionConfig {
	if c.Every <= 0 {
		c.Every = 2 * time.Second
	}
	if c.MaxWait <= 0 {
		c.MaxWait = 5 * time.Minute
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 64
	}
	if c.YieldFor <= 0 {
		c.YieldFor = 30 * time.Second
	}
	if c.MaxPendingBytes <= 0 {
		c.MaxPendingBytes = 256 << 10
	}
	if c.DayGrace <= 0 {
		c.DayGrace = 10 * time.Minute
	}
	if c.DayQuiet <= 0 {
		c.DayQuiet = 30 * time.Second
	}
	return c
}

// Validate reports negative fields (zero means the default).
func (c CompactionConfig) Validate() error {
	e := configcheck.New("projection")
	configcheck.NotNegative(e, "Compaction.Every", c.Every)
	configcheck.NotNegative(e, "Compaction.MaxWait", c.MaxWait)
	configcheck.NotNegative(e, "Compaction.MaxPending", c.MaxPending)
	configcheck.NotNegative(e, "Compaction.MaxPendingBytes", c.MaxPendingBytes)
	configcheck.NotNegative(e, "Compaction.DayGrace", c.DayGrace)
	configcheck.NotNegative(e, "Compaction.DayQuiet", c.DayQuiet)
	configcheck.NotNegative(e, "Compaction.YieldFor", c.YieldFor)
	return e.Err()
}

// ShardsOf are the compaction shards of log partition part of parts.
func ShardsOf(part int32, parts int) []int {
	var out []int
	for s := 0; s < viewstore.Shards; s++ {
		if s%parts == int(part) {
			out = append(out, s)
		}
	}
	return out
}

// Compactor compacts shards of one namespace.
type Compactor struct {
	cfg     CompactionConfig
	ns      viewstore.Namespace
	layout  *catalog.Layout
	store   CompactStore
	logger  *slog.Logger
	metrics *metrics.Metrics
	now     func() time.Time

	// yield, when set, defers runs while the live path is behind.
	yield yielder
	// stall, when set, fences each run's writes (see stallGuard).
	stall *stallGuard

	mu sync.Mutex
	// seen is when a day's pending additions were first listed.
	seen map[propDay]time.Time
	// open are the days whose hour blocks changed since their day block
	// was merged, with when: closeDays merges it again.
	open map[propDay]time.Time
}

type dayWork struct {
	count int
	bytes int
	due   bool
}

type propDay struct {
	property string
	day      int64
}

// NewCompactor returns a compactor of namespace ns, whose series are those
// of layout (which of them keep day blocks).
func NewCompactor(cfg CompactionConfig, ns viewstore.Namespace, layout *catalog.Layout, store CompactStore, logger *slog.Logger, m *metrics.Metrics) *Compactor {
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.Default()
	}
	if m == nil {
		m = metrics.New()
	}
	return &Compactor{cfg: cfg, ns: ns, layout: layout, store: store, logger: logger, metrics: m, now: time.Now, seen: map[propDay]time.Time{}, open: map[propDay]time.Time{}}
}

// YieldTo makes Run defer its runs while behind reports that the
// partition's consumer is behind the log, up to cfg.YieldFor in a row.
// Call it before Run.
func (c *Compactor) YieldTo(behind func() bool) {
	c.yield = yielder{behind: behind, max: c.cfg.YieldFor}
}

// yielder decides whether a compaction run gives way to the live path.
type yielder struct {
	behind func() bool
	max    time.Duration
	since  time.Time // the first run deferred in a row, zero when none
}

// skip reports whether the run due at now is deferred.
func (y *yielder) skip(now time.Time) bool {
	if y.behind == nil || !y.behind() {
		y.since = time.Time{}
		return false
	}
	if y.since.IsZero() {
		y.since = now
	}
	if now.Sub(y.since) < y.max {
		return true
	}
	y.since = time.Time{} // this one runs; the next may be deferred again
	return false
}

// Run compacts shards every cfg.Every until ctx ends.
func (c *Compactor) Run(ctx context.Context, shards []int) {
	if c.cfg.Off || len(shards) == 0 {
		return
	}
	gauge := c.metrics.PendingAdditions.WithLabelValues(string(c.ns))
	reported := 0
	defer func() { gauge.Add(float64(-reported)) }()
	t := time.NewTicker(c.cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if c.yield.skip(c.now()) {
			continue
		}
		n := 0
		// A run's writes are fenced: none lands once the process stalled
		// after the run began (another copy may compact these shards by
		// then, from newer additions).
		rctx := ctx
		if c.stall != nil {
			mark := c.stall.mark()
			rctx = viewstore.WithFence(ctx, func() error { return c.stall.check(mark) })
		}
		for _, s := range shards {
			pending, err := c.Compact(rctx, s, false)
			if err != nil {
				if ctx.Err() == nil {
					c.logger.Warn("compaction failed; retrying at the next run", "projection", c.ns, "shard", s, "err", err)
				}
				break
			}
			n += pending
		}
		gauge.Add(float64(n - reported))
		reported = n
	}
}

// Compact runs one compaction of shard: every day whose additions are due
// (all of them when all is set). It returns how many additions it left
// pending.
func (c *Compactor) Compact(ctx context.Context, shard int, all bool) (int, error) {
	began := time.Now()
	progress, err := c.store.ListProgress(ctx, c.ns)
	if err != nil {
		return 0, fmt.Errorf("compaction: progress: %w", err)
	}
	var cover []int64
	for _, p := range progress {
		if int(p.Partition) >= len(cover) {
			cover = append(cover, make([]int64, int(p.Partition)+1-len(cover))...)
		}
		cover[p.Partition] = p.Next
	}
	days := map[propDay]*dayWork{}
	now := c.now()
	err = c.store.ListPending(ctx, c.ns, shard, func(k viewstore.PendingKey) error {
		d := propDay{k.Property, block.Day.Floor(k.Hour)}
		w := days[d]
		if w == nil {
			w = &dayWork{}
			days[d] = w
		}
		w.count++
		w.bytes += k.Bytes
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("compaction: list shard %d: %w", shard, err)
	}
	c.mu.Lock()
	for d, w := range days {
		first, ok := c.seen[d]
		if !ok {
			first = now
			c.seen[d] = now
		}
		if all || w.due || w.count >= c.cfg.MaxPending || w.bytes >= c.cfg.MaxPendingBytes || now.Sub(first) >= c.cfg.MaxWait {
			w.due = true
		}
	}
	for d := range c.seen {
		if days[d] == nil && viewstore.ShardOf(d.property) == shard {
			delete(c.seen, d)
		}
	}
	c.mu.Unlock()

	order := make([]propDay, 0, len(days))
	for d, w := range days {
		if w.due {
			order = append(order, d)
		}
	}
	slices.SortFunc(order, func(a, b propDay) int {
		if a.property != b.property {
			if a.property < b.property {
				return -1
			}
			return 1
		}
		return int(a.day - b.day)
	})
	// Pending: every committed-or-not addition listed, less those merged
	// now (a backlog of due days counts until it is merged).
	pending, merged := 0, 0
	for _, w := range days {
		pending += w.count
	}
	for _, d := range order {
		n, err := c.compactDay(ctx, d, cover)
		if err != nil {
			return pending - merged, err
		}
		merged += n
		c.mu.Lock()
		delete(c.seen, d)
		c.mu.Unlock()
		delete(days, d)
	}
	if err := c.closeDays(ctx, shard, cover, days, all); err != nil {
		return pending - merged, err
	}
	pending -= merged
	c.metrics.CompactedAdditions.WithLabelValues(string(c.ns)).Add(float64(merged))
	c.metrics.CompactionSeconds.WithLabelValues(string(c.ns)).Observe(time.Since(began).Seconds())
	return pending, nil
}

// compactDay compacts the committed additions of one property's day (see
// the package comment above). It returns how many it merged.
func (c *Compactor) compactDay(ctx context.Context, d propDay, cover []int64) (int, error) {
	covered := func(p int32) int64 {
		if int(p) < len(cover) && p >= 0 {
			return cover[p]
		}
		return 0
	}
	end := d.day + 86400
	var adds []viewstore.Addition
	err := c.store.ScanAdditions(ctx, c.ns, d.property, d.day, end, func(a viewstore.Addition) error {
		if a.End <= covered(a.Partition) {
			a.Block = slices.Clone(a.Block)
			adds = append(adds, a)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("compaction: additions of %q on %d: %w", d.property, d.day, err)
	}
	if len(adds) == 0 {
		return 0, nil
	}
	if err := c.merge(ctx, d, adds, cover); err != nil {
		return 0, err
	}
	type hourPart struct {
		hour int64
		part int32
	}
	done := map[hourPart]bool{}
	for _, a := range adds {
		k := hourPart{a.Hour, a.Partition}
		if done[k] {
			continue
		}
		done[k] = true
		if err := c.store.DeleteAdditions(ctx, c.ns, d.property, a.Hour, a.Partition, covered(a.Partition)); err != nil {
			return 0, fmt.Errorf("compaction: delete additions of %q at %d: %w", d.property, a.Hour, err)
		}
	}
	return len(adds), nil
}

// merge merges adds into the hour blocks of the series that do not hold
// them yet, reading only the hour blocks of the hours adds fall in. The
// day's block, if it has one, is retired (emptied) first; closeDays merges
// a new one from the hour blocks once the day has ended and gone quiet, so
// a busy, backfilled or replayed day's block is not rewritten at every run.
func (c *Compactor) merge(ctx context.Context, d propDay, adds []viewstore.Addition, cover []int64) error {
	if err := c.retireDay(ctx, d); err != nil {
		return err
	}
	hourKind := viewstore.HourBlock
	byHour := map[int64][]viewstore.Addition{}
	for _, a := range adds {
		byHour[a.Hour] = append(byHour[a.Hour], a)
	}
	var inputs [][]byte
	for hour, as := range byHour {
		var old *viewstore.Block
		err := c.store.ScanBlocks(ctx, c.ns, d.property, hourKind, hour, hour+1, func(b viewstore.Block) error {
			b.Data, b.Cover = slices.Clone(b.Data), slices.Clone(b.Cover)
			old = &b
			return nil
		})
		if err != nil {
			return fmt.Errorf("compaction: hour block %d of %q: %w", hour, d.property, err)
		}
		inputs = inputs[:0]
		if old != nil {
			inputs = append(inputs, old.Data)
		}
		for _, a := range as {
			if old == nil || a.End > old.Covered(a.Partition) {
				inputs = append(inputs, a.Block)
			}
		}
		if old != nil && len(inputs) == 1 {
			continue // all in the block already (an earlier run stopped before deleting)
		}
		data, err := block.Merge(nil, hour, nil, inputs...)
		if err != nil {
			return fmt.Errorf("compaction: merge hour %d of %q: %w", hour, d.property, err)
		}
		if err := c.store.PutBlock(ctx, c.ns, viewstore.Block{Property: d.property, Kind: hourKind, Bucket: hour, Cover: cover, Data: data}); err != nil {
			return fmt.Errorf("compaction: write hour block %d of %q: %w", hour, d.property, err)
		}
		c.metrics.BlocksWritten.WithLabelValues(string(c.ns)).Inc()
	}
	c.mu.Lock()
	if c.keepsDays(d.property) {
		c.open[d] = c.now() // its day block, once the day is closed and quiet
	}
	c.mu.Unlock()
	return nil
}

// keepsDays reports whether series has day blocks.
func (c *Compactor) keepsDays(series string) bool {
	_, part, ok := viewstore.ParseSeries(series)
	return ok && c.layout.KeepsDays(part)
}

// closed reports whether day d has ended (by the clock, with a grace for
// events in flight): only closed days get day blocks.
func (c *Compactor) closed(day int64) bool {
	return day+86400+int64(c.cfg.DayGrace/time.Second) <= c.now().Unix()
}

// dayBlockOf reads d's day block; an empty one (retired) is none.
func (c *Compactor) dayBlockOf(ctx context.Context, d propDay) (*viewstore.Block, error) {
	var day *viewstore.Block
	err := c.store.ScanBlocks(ctx, c.ns, d.property, viewstore.DayBlock, d.day, d.day+1, func(b viewstore.Block) error {
		if len(b.Data) > 0 {
			day = &b
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("compaction: day block of %q on %d: %w", d.property, d.day, err)
	}
	return day, nil
}

// retireDay empties d's day block, if it has one, before its hour blocks
// change: readers then read the day from its hour blocks (an empty day
// block is none to them) until buildDay merges a new one.
func (c *Compactor) retireDay(ctx context.Context, d propDay) error {
	// A compactor lives as long as its claim of the shard, so open holds
	// only days whose block this owner retired (or found none of).
	c.mu.Lock()
	_, retired := c.open[d]
	c.mu.Unlock()
	if retired || !c.keepsDays(d.property) {
		return nil
	}
	day, err := c.dayBlockOf(ctx, d)
	if err != nil || day == nil {
		return err
	}
	if err := c.store.PutBlock(ctx, c.ns, viewstore.Block{Property: d.property, Kind: viewstore.DayBlock, Bucket: d.day}); err != nil {
		return fmt.Errorf("compaction: retire day block %d of %q: %w", d.day, d.property, err)
	}
	return nil
}

// buildDay merges d's day block from all its hour blocks. The caller saw
// no addition of the day waiting (none listed, committed or not): every
// addition with End <= cover is then in an hour block, and no later one
// is, so cover holds for the day block too.
func (c *Compactor) buildDay(ctx context.Context, d propDay, cover []int64) error {
	var inputs [][]byte
	err := c.store.ScanBlocks(ctx, c.ns, d.property, viewstore.HourBlock, d.day, d.day+86400, func(b viewstore.Block) error {
		inputs = append(inputs, slices.Clone(b.Data))
		return nil
	})
	if err != nil {
		return fmt.Errorf("compaction: hour blocks of %q on %d: %w", d.property, d.day, err)
	}
	if len(inputs) > 0 {
		data, err := block.Merge(nil, d.day, toDay, inputs...)
		if err != nil {
			return fmt.Errorf("compaction: merge day %d of %q: %w", d.day, d.property, err)
		}
		if err := c.store.PutBlock(ctx, c.ns, viewstore.Block{Property: d.property, Kind: viewstore.DayBlock, Bucket: d.day, Cover: cover, Data: data}); err != nil {
			return fmt.Errorf("compaction: write day block %d of %q: %w", d.day, d.property, err)
		}
		c.metrics.BlocksWritten.WithLabelValues(string(c.ns)).Inc()
	}
	c.mu.Lock()
	delete(c.open, d)
	c.mu.Unlock()
	return nil
}

// closeDays builds the day blocks of shard's days whose hour blocks
// changed, once the day has ended and no addition of it came for
// cfg.DayQuiet (at once when all is set) and none waits. A busy or
// replayed day's block is so merged once, not rewritten at every run. A
// process that restarts forgets these days: they are read from hour blocks
// until an addition of theirs comes again.
func (c *Compactor) closeDays(ctx context.Context, shard int, cover []int64, waiting map[propDay]*dayWork, all bool) error {
	now := c.now()
	c.mu.Lock()
	var due []propDay
	for d, touched := range c.open {
		if viewstore.ShardOf(d.property) == shard && c.closed(d.day) && waiting[d] == nil && (all || now.Sub(touched) >= c.cfg.DayQuiet) {
			due = append(due, d)
		}
	}
	c.mu.Unlock()
	for _, d := range due {
		if err := c.buildDay(ctx, d, cover); err != nil {
			return err
		}
	}
	return nil
}

// toDay maps an addition's or hour block's sections to a day block's: hour
// sections become day sections, minute sections are left out (minute
// detail is read from hour blocks).
func toDay(s block.Section) block.Grain {
	switch s.Grain {
	case block.Hour, block.Day:
		return block.Day
	}
	return 0
}
