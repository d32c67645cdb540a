package projection

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/protobuf/proto"

	eventv1 "github.com/sextant-analytics/sextant/gen/sextant/event/v1"
	"github.com/sextant-analytics/sextant/pkg/catalog"
	"github.com/sextant-analytics/sextant/pkg/configcheck"
	"github.com/sextant-analytics/sextant/pkg/eventlog"
	"github.com/sextant-analytics/sextant/pkg/metrics"
	"github.com/sextant-analytics/sextant/pkg/seal"
	"github.com/sextant-analytics/sextant/pkg/tracing"
	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

// Log is what the projector needs of the event log.
type Log interface {
	eventlog.Reader
	eventlog.Assigner
	eventlog.Committer
}

// Store is what the projector needs of the view store.
type Store interface {
	Commit(ctx context.Context, ns viewstore.Namespace, cp viewstore.Checkpoint) error
	LoadPartition(ctx context.Context, ns viewstore.Namespace, p int32) (viewstore.Progress, []viewstore.KV, error)
	ListProgress(ctx context.Context, ns viewstore.Namespace) ([]viewstore.Progress, error)
	CompactStore
}

// Config configures a Projector.
type Config struct {
	Name    string // projection name, e.g. "traffic"
	Version string // logic version, e.g. "v1"
	Rules   Rules
	// Layout is what the version stores (default: the catalogue's layout
	// of Name and Version).
	Layout *catalog.Layout
	// FlushInterval bounds how long applied events wait before they are
	// committed and visible to reports.
	FlushInterval time.Duration
	// MaxPending commits early once this many records were applied.
	MaxPending int
	// MaxOpenEntries commits early once the open additions hold this
	// many aggregates: it bounds a partition's memory between checkpoints
	// (about a kilobyte an aggregate), whatever the records hold.
	MaxOpenEntries int
	// ReadBatch is the most records read at once.
	ReadBatch int
	// Compaction configures the compactor each claimed partition runs
	// for its share of the compaction shards.
	Compaction CompactionConfig
	// Start gives the first offset of partitions never committed (a
	// replay from a time or from offsets); others start at 0.
	Start map[int32]int64
	// Keys opens sealed records (package seal); nil projects unsealed
	// records only (a sealed record is then dead-lettered). Each projector
	// keeps the keys it read, so a projector started after a deletion
	// never opens what the deletion destroyed.
	Keys seal.Keys
	// DeadLetters receives records that cannot be projected, with the
	// reason; nil drops them (after logging).
	DeadLetters eventlog.Appender
	// StallThreshold is how long the process may not run (a SIGSTOP, a
	// paused VM, starvation) before its partitions stop writing what they
	// held and load again what the store has (see stallGuard); it must be
	// below the consumer group's session timeout. Default
	// DefaultStallThreshold; negative turns the check off.
	StallThreshold time.Duration
	// Propagator and Tracer, when Propagator is set (tracing on), trace
	// each batch of records applied, linked to the spans that appended
	// them (their headers' trace context), and each checkpoint.
	Propagator propagation.TextMapPropagator
	Tracer     trace.Tracer
	Logger     *slog.Logger
	Metrics    *metrics.Metrics
}

// withDefaults fills the zero fields (and negative ones, which Validate
// reports, but StallThreshold's) with their defaults.
func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = "traffic"
	}
	if c.Version == "" {
		c.Version = "v1"
	}
	if c.Rules == (Rules{}) {
		c.Rules = DefaultRules()
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = 100 * time.Millisecond
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 20_000
	}
	if c.MaxOpenEntries <= 0 {
		c.MaxOpenEntries = 100_000
	}
	if c.ReadBatch <= 0 {
		c.ReadBatch = 2_000
	}
	if c.Layout == nil {
		c.Layout = catalog.LayoutOf(c.Name, c.Version)
	}
	if c.StallThreshold == 0 {
		c.StallThreshold = DefaultStallThreshold
	}
	c.Compaction = c.Compaction.withDefaults()
	if c.Propagator != nil && c.Tracer == nil {
		c.Tracer = noop.NewTracerProvider().Tracer("")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Metrics == nil {
		c.Metrics = metrics.New()
	}
	return c
}

// Validate reports what no default fixes: negative sizes and durations
// (a negative StallThreshold turns the stall check off).
func (c Config) Validate() error {
	e := configcheck.New("projection")
	configcheck.NotNegative(e, "FlushInterval", c.FlushInterval)
	configcheck.NotNegative(e, "MaxPending", c.MaxPending)
	configcheck.NotNegative(e, "MaxOpenEntries", c.MaxOpenEntries)
	configcheck.NotNegative(e, "ReadBatch", c.ReadBatch)
	e.Add(c.Compaction.Validate())
	return e.Err()
}

// Projector runs one projection version over the partitions assigned to it.
type Projector struct {
	cfg   Config
	ns    viewstore.Namespace
	log   Log
	store Store

	logic  *deriver
	stall  *stallGuard  // nil: no stall checks
	opener *seal.Opener // nil: records are not sealed

	mu   sync.Mutex
	live map[int32]viewstore.Progress
}

// NewProjector returns a projector; Run starts it.
func NewProjector(cfg Config, log Log, store Store) *Projector {
	cfg = cfg.withDefaults()
	p := &Projector{cfg: cfg, ns: viewstore.NamespaceOf(cfg.Name, cfg.Version), log: log, store: store,
		logic: newDeriver(Logic{Name: cfg.Name, Version: cfg.Version, Rules: cfg.Rules, Layout: cfg.Layout}),
		live:  make(map[int32]viewstore.Progress)}
	if cfg.StallThreshold > 0 {
		p.stall = newStallGuard(cfg.StallThreshold)
	}
	if cfg.Keys != nil {
		p.opener = seal.NewOpener(cfg.Keys)
	}
	return p
}

// fenced returns ctx whose store writes fail once the process stalled
// after mark (see stallGuard).
func (p *Projector) fenced(ctx context.Context, mark uint64) context.Context {
	if p.stall == nil {
		return ctx
	}
	return viewstore.WithFence(ctx, func() error { return p.stall.check(mark) })
}

// stallRejoin is how long a partition that stopped writing after a stall
// waits before it loads the store again: long enough for the consumer
// group's next heartbeat to tell this copy whether the partition is still
// its own (its claim ends otherwise), so that two copies never write one
// partition.
const stallRejoin = 3 * time.Second

// Group is the consumer group: a contract, stable across restarts.
func (p *Projector) Group() string { return "sextant-projection-" + p.cfg.Name + "-" + p.cfg.Version }

// Run consumes until ctx ends. On the way out every partition commits what
// it applied. Each claimed partition also compacts its share of the
// namespace's compaction shards (see Compactor), so the copies of a
// projection share compaction as they share partitions.
func (p *Projector) Run(ctx context.Context) error {
	if p.stall != nil {
		// The guard's ticker runs as long as this Run: its last tick is
		// set first, so a Run after an earlier one starts unfenced.
		gctx, stop := context.WithCancel(ctx)
		defer stop()
		p.stall.last.Store(int64(time.Since(p.stall.base)))
		go p.stall.run(gctx)
	}
	return p.log.Run(ctx, p.Group(), func(ctx context.Context, id int32) error {
		var wg sync.WaitGroup
		defer wg.Wait()
		cctx, stopCompactor := context.WithCancel(ctx)
		defer stopCompactor()
		// behind is set while the partition is more than yieldRecords
		// records behind the log: its compactor gives way meanwhile.
		var behind atomic.Bool
		if parts, err := p.log.Partitions(ctx); err == nil && len(parts) > 0 {
			c := NewCompactor(p.cfg.Compaction, p.ns, p.cfg.Layout, p.store, p.cfg.Logger, p.cfg.Metrics)
			c.YieldTo(behind.Load)
			c.stall = p.stall
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.Run(cctx, ShardsOf(id, len(parts)))
			}()
		} else if err != nil {
			p.cfg.Logger.Warn("listing the log's partitions: compaction of this partition's shards is off until it is claimed again", "projection", p.ns, "partition", id, "err", err)
		}
		backoff := 100 * time.Millisecond
		for {
			err := p.runPartition(ctx, id, &behind)
			if ctx.Err() != nil {
				if errors.Is(err, ErrStalled) {
					p.cfg.Logger.Warn("projection partition released after the process stalled: what it held was dropped, not written over the new owner's",
						"projection", p.ns, "partition", id, "err", err)
				}
				return nil
			}
			wait := backoff
			if errors.Is(err, ErrStalled) {
				wait = stallRejoin
				p.cfg.Logger.Warn("projection partition dropped what it held after the process stalled; loading it again unless the group gave it to another copy",
					"projection", p.ns, "partition", id, "err", err, "wait", wait)
			} else {
				p.cfg.Logger.Error("projection partition failed; restarting from its last checkpoint",
					"projection", p.ns, "partition", id, "err", err, "backoff", backoff)
				backoff = min(2*backoff, 5*time.Second)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
	})
}

func (p *Projector) runPartition(ctx context.Context, id int32, behindLog *atomic.Bool) error {
	// Every write of this run of the partition is fenced: none lands once
	// the process stalled after this load (another copy may own the
	// partition by then).
	ctx = p.fenced(ctx, p.stall.mark())
	progress, kvs, err := p.store.LoadPartition(ctx, p.ns, id)
	if err != nil {
		return fmt.Errorf("load partition %d: %w", id, err)
	}
	if progress.Next == 0 && progress.Applied == 0 && progress.Duplicates == 0 && progress.Intent == 0 {
		progress.Next = p.cfg.Start[id]
	}
	part, err := newPartition(id, p.logic, progress, kvs)
	if err != nil {
		return err
	}
	p.setLive(part.progress)
	defer func() {
		p.mu.Lock()
		delete(p.live, id)
		p.mu.Unlock()
	}()
	p.cfg.Logger.Info("projection partition claimed", "projection", p.ns, "partition", id, "offset", part.progress.Next, "rewrite_until", part.mustEnd)

	lastFlush, lastLag := time.Now(), time.Time{}
	behind := int64(0) // records between the partition's end and its next offset, as of the last check
	interval := p.cfg.FlushInterval
	partLabel := strconv.Itoa(int(id))
	lag := p.cfg.Metrics.ConsumerLag.WithLabelValues(string(p.ns), partLabel)
	defer p.cfg.Metrics.ConsumerLag.DeleteLabelValues(string(p.ns), partLabel)
	outcome := func(o string) prometheus.Counter {
		return p.cfg.Metrics.ProjectedEvents.WithLabelValues(string(p.ns), o)
	}
	applied, duplicate, excluded, deadLetter, deleted := outcome("applied"), outcome("duplicate"), outcome("excluded"), outcome("dead_letter"), outcome("deleted")
	var opened []byte        // a sealed record's payload, opened
	var evs []*eventv1.Event // a record's events, decoded
	for {
		// With nothing pending the read waits for records up to
		// lagEvery; with records pending, until the next checkpoint is due.
		// An idle partition's read ends every lagEvery, so that its lag
		// gauge is refreshed (it would keep its last value otherwise).
		rctx, cancel := context.WithTimeout(ctx, lagEvery)
		if part.pending > 0 {
			cancel()
			rctx, cancel = context.WithDeadline(ctx, lastFlush.Add(interval))
		}
		n := p.cfg.ReadBatch
		if l := part.limit(); l > 0 && l < int64(n) {
			n = int(l)
		}
		recs, err := p.log.Read(rctx, id, part.progress.Next, n)
		cancel()
		switch {
		case ctx.Err() != nil:
			// Shutting down: commit what was applied, with a fresh deadline.
			fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer fcancel()
			return p.flush(fctx, part)
		case errors.Is(err, context.DeadlineExceeded):
		case err != nil:
			return fmt.Errorf("read partition %d: %w", id, err)
		}
		if p.opener != nil {
			if err := p.opener.Prefetch(ctx, recs); err != nil {
				return fmt.Errorf("partition %d: read the records' keys: %w", id, err)
			}
		}
		endSpan := p.traceBatch(ctx, id, recs)
		for _, rec := range recs {
			if rec.Offset < part.progress.Next {
				continue
			}
			if part.mustEnd > 0 && part.limit() == 0 {
				break // the interrupted checkpoint's end: commit it first
			}
			value, reason, err := p.open(ctx, opened[:0], &rec)
			if err != nil {
				err = fmt.Errorf("partition %d offset %d: %w", id, rec.Offset, err)
				endSpan(err)
				return err
			}
			n := 0 // the record's events, decoded into evs
			if reason == "" {
				if !seal.Sealed(&rec) {
					// An unsealed record holds one event.
					reason, n = undecodable(rec, rec.Value, evOf(&evs, 0)), 1
				} else {
					opened = value
					if err := seal.Events(value, func(i int, b []byte) error {
						if reason = undecodable(rec, b, evOf(&evs, i)); reason != "" {
							return errStop
						}
						n = i + 1
						return nil
					}); err != nil && !errors.Is(err, errStop) {
						reason = err.Error()
					}
				}
			}
			switch {
			case reason == deletedRecord:
				// Its subject's key was destroyed: the record is deleted
				// (a user deletion, or a month past the property's
				// retention).
				deleted.Inc()
			case reason != "":
				// A poison record never stalls the partition: it goes to
				// the dead letters with its reason, and the partition
				// moves on. A replay with fixed logic reprocesses it from
				// the log.
				if err := p.deadLetter(ctx, rec, reason); err != nil {
					endSpan(err)
					return err
				}
				deadLetter.Inc()
			default:
				for i, ev := range evs[:n] {
					if before := part.progress.Excluded; part.apply(ev, rec.Offset, i) {
						applied.Inc()
					} else if part.progress.Excluded > before {
						excluded.Inc()
					} else {
						duplicate.Inc()
					}
				}
			}
			part.advance(rec.Offset)
		}
		endSpan(nil)
		now := time.Now()
		if now.Sub(lastLag) >= lagEvery {
			if end, err := p.log.EndOffset(ctx, id); err == nil {
				behind = max(0, end-part.progress.Next)
				lag.Set(float64(behind))
				behindLog.Store(behind > yieldRecords)
			}
			lastLag = now
		}
		full := part.pending >= p.maxPending(behind > lagRecords) || part.adds.entries() >= p.cfg.MaxOpenEntries
		if part.pending > 0 && (full || now.Sub(lastFlush) >= interval || part.limit() == 0 && part.mustEnd > 0) {
			began := time.Now()
			if err := p.flush(ctx, part); err != nil {
				return err
			}
			lastFlush = time.Now()
			took := lastFlush.Sub(began)
			interval = p.flushInterval(behind > lagRecords && len(recs) == n, took)
		}
	}
}

// traceBatch starts the span of applying recs, a batch read from
// partition id, linked to the spans that appended them (one batch holds
// many traces: links, not a parent), and returns what ends it. Without
// tracing, or records, it does nothing.
func (p *Projector) traceBatch(ctx context.Context, id int32, recs []eventlog.Record) func(error) {
	if p.cfg.Propagator == nil || len(recs) == 0 {
		return func(error) {}
	}
	_, span := p.cfg.Tracer.Start(ctx, "projection.apply",
		trace.WithLinks(tracing.RecordLinks(p.cfg.Propagator, recs)...),
		trace.WithAttributes(
			attribute.String("sextant.projection", string(p.ns)),
			attribute.Int("sextant.partition", int(id)),
			attribute.Int64("sextant.offset", recs[0].Offset),
			attribute.Int("sextant.records", len(recs))))
	return func(err error) {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}

// lagEvery is how often a partition measures its lag behind the log.
const lagEvery = time.Second

// Dead-letter headers.
const (
	HeaderDeadLetterReason = "sextant-dead-letter-reason"
	HeaderSourcePartition  = "sextant-source-partition"
	HeaderSourceOffset     = "sextant-source-offset"
	HeaderProjection       = "sextant-projection"
)

// errStop ends a walk over a record's events.
var errStop = errors.New("stop")

// evOf returns (*evs)[i], growing evs as needed.
func evOf(evs *[]*eventv1.Event, i int) *eventv1.Event {
	for len(*evs) <= i {
		*evs = append(*evs, &eventv1.Event{})
	}
	return (*evs)[i]
}

// deletedRecord is open's reason for a record whose key was destroyed.
const deletedRecord = "deleted"

// open returns the payload of a sealed record (its framed events,
// appended to dst; an unsealed record's value is its one event), or the
// reason it cannot be projected: deletedRecord when its key was destroyed.
// An error is the key store's: the partition retries.
func (p *Projector) open(ctx context.Context, dst []byte, rec *eventlog.Record) ([]byte, string, error) {
	if !seal.Sealed(rec) {
		return rec.Value, "", nil
	}
	if p.opener == nil {
		return dst, "a sealed record, and this projection has no key store", nil
	}
	b, err := p.opener.Open(ctx, dst, rec)
	switch {
	case errors.Is(err, seal.ErrShredded):
		return dst, deletedRecord, nil
	case errors.Is(err, seal.ErrCorrupt):
		return dst, err.Error(), nil
	case err != nil:
		return dst, "", err
	}
	return b, "", nil
}

// undecodable says why rec, whose event is value, cannot be projected, or
// "" when ev holds it.
func undecodable(rec eventlog.Record, value []byte, ev *eventv1.Event) string {
	if v := rec.Headers[eventlog.HeaderSchemaVersion]; v != "" && v != eventlog.SchemaVersion1 {
		return "unknown schema version " + v
	}
	ev.Reset()
	if err := proto.Unmarshal(value, ev); err != nil {
		return "undecodable event: " + err.Error()
	}
	if ev.EventId == "" || ev.PropertyId == "" || ev.GetEventTime() == nil || ev.GetReceiveTime() == nil {
		return "event lacks its id, property or times"
	}
	return ""
}

func (p *Projector) deadLetter(ctx context.Context, rec eventlog.Record, reason string) error {
	p.cfg.Logger.Warn("dead-lettering a record that cannot be projected", "projection", p.ns, "partition", rec.Partition, "offset", rec.Offset, "reason", reason)
	if p.cfg.DeadLetters == nil {
		return nil
	}
	h := make(map[string]string, len(rec.Headers)+4)
	for k, v := range rec.Headers {
		h[k] = v
	}
	h[HeaderDeadLetterReason] = reason
	h[HeaderSourcePartition] = strconv.Itoa(int(rec.Partition))
	h[HeaderSourceOffset] = strconv.FormatInt(rec.Offset, 10)
	h[HeaderProjection] = string(p.ns)
	if err := p.cfg.DeadLetters.Append(ctx, []eventlog.Message{{Key: rec.Key, Value: rec.Value, Headers: h}}); err != nil {
		return fmt.Errorf("dead letter of partition %d offset %d: %w", rec.Partition, rec.Offset, err)
	}
	return nil
}

func (p *Projector) flush(ctx context.Context, part *partition) error {
	if !part.mayCheckpoint() {
		// Nothing applied, or the partition is rewriting an interrupted
		// checkpoint and has not reached its end: a checkpoint ending
		// elsewhere would leave that one's additions behind, past
		// progress, to be counted later. What was applied is applied
		// again after a restart.
		return nil
	}
	cp, err := part.checkpoint()
	if err != nil {
		return err
	}
	start := time.Now()
	var span trace.Span // the checkpoint's, when tracing
	if p.cfg.Propagator != nil {
		ctx, span = p.cfg.Tracer.Start(ctx, "projection.checkpoint", trace.WithAttributes(
			attribute.String("sextant.projection", string(p.ns)),
			attribute.Int("sextant.partition", int(part.id)),
			attribute.Int("sextant.additions", len(cp.Additions))))
	}
	err = p.store.Commit(ctx, p.ns, cp)
	if span != nil {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
	if err != nil {
		return fmt.Errorf("commit partition %d: %w", part.id, err)
	}
	p.cfg.Metrics.FlushSeconds.WithLabelValues(string(p.ns)).Observe(time.Since(start).Seconds())
	p.cfg.Metrics.Additions.WithLabelValues(string(p.ns)).Add(float64(len(cp.Additions)))
	part.committed()
	p.setLive(part.progress)
	if wm := part.progress.Watermark; !wm.IsZero() {
		p.cfg.Metrics.Watermark.WithLabelValues(string(p.ns), strconv.Itoa(int(part.id))).Set(float64(wm.UnixMilli()) / 1000)
	}
	// The log-side offset is informational (lag tools); the authoritative
	// offset was committed with the state above.
	if err := p.log.Commit(ctx, p.Group(), part.id, part.progress.Next); err != nil {
		p.cfg.Logger.Warn("committing consumer offset", "partition", part.id, "err", err)
	}
	return nil
}

// flushInterval is how long the next checkpoint may wait. At the head of
// the log it is the configured interval, stretched to twice the last
// commit's duration (at most maxLiveFlush) when the store is slow, so that a
// busy store gets fewer, larger commits instead of falling further behind:
// a commit writes a row per property and hour touched, and a row holding
// the additions of thousands of events costs little more to write than
// one holding a single event's. Far behind the head (catching up or
// replaying),
// nobody waits for the next event, so checkpoints come every lagFlush or
// MaxPending records.
func (p *Projector) flushInterval(behind bool, lastCommit time.Duration) time.Duration {
	if behind {
		return max(p.cfg.FlushInterval, lagFlush)
	}
	return max(p.cfg.FlushInterval, min(2*lastCommit, maxLiveFlush))
}

// maxPending is how many records a checkpoint may hold: MaxPending, or
// lagPending times as many far behind the head, where fewer, larger
// checkpoints write fewer rows per event (a row holds the additions of a
// property's hour, however many events made them) and nobody waits.
func (p *Projector) maxPending(behind bool) int {
	if behind {
		return p.cfg.MaxPending * lagPending
	}
	return p.cfg.MaxPending
}

const (
	// lagFlush is the checkpoint interval of a partition behind the head:
	// more than lagRecords records behind (at the last check, once a
	// second) and reading full batches.
	// yieldRecords is how far behind the log (in records, at the last
	// check) a partition's compactor starts giving way to it
	// (CompactionConfig.YieldFor): about a second of a busy partition.
	yieldRecords = 2_000
	lagFlush     = 5 * time.Second
	lagPending   = 5
	lagRecords   = 20_000
	// maxLiveFlush bounds the stretched interval at the head, for
	// freshness.
	maxLiveFlush = 500 * time.Millisecond
)

func (p *Projector) setLive(pr viewstore.Progress) {
	p.mu.Lock()
	p.live[pr.Partition] = pr
	p.mu.Unlock()
}

// Namespace is where this projector writes.
func (p *Projector) Namespace() viewstore.Namespace { return p.ns }

// Name and Version identify the projection.
func (p *Projector) Name() string    { return p.cfg.Name }
func (p *Projector) Version() string { return p.cfg.Version }
