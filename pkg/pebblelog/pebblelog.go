// Package pebblelog is the embedded, durable implementation of the
// eventlog.Log port for single-machine mode, stored in a Pebble database.
//
// Appends are group committed: Append calls hand their messages to a single
// committer goroutine, which gathers every request waiting at that moment
// into one Pebble batch, assigns the offsets and commits it with a synced
// WAL, so concurrent appenders share one fsync. A request's messages are all
// in the same batch, so they land atomically.
//
// Readers wait for new records on a per-partition notification channel that
// the committer closes (and replaces) after each commit touching the
// partition.
//
// Record timestamps never decrease, in a partition or across the log: the
// committer stamps each group with the wall clock, but never with less than
// the newest timestamp stored (read back from the partitions' last records
// when the log is opened), so a clock stepping back, before or after a
// restart, repeats the previous timestamp instead. OffsetForTime relies on
// it to binary search a partition.
package pebblelog

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/sextant-analytics/sextant/pkg/configcheck"
	"github.com/sextant-analytics/sextant/pkg/diskspace"
	"github.com/sextant-analytics/sextant/pkg/eventlog"
	"github.com/sextant-analytics/sextant/pkg/pebblelock"
)

// DefaultPartitions is the partition count of a newly created log when
// Options.Partitions is 0.
const DefaultPartitions = 4

// MaxPartitions bounds Options.Partitions.
const MaxPartitions = 1 << 16

// Limits of one group commit. A single Append larger than these is still
// committed, alone.
const (
	maxGroupBytes    = 8 << 20
	maxGroupRequests = 4096
	requestQueueLen  = 1024
)

// Options configures Open.
type Options struct {
	// Partitions is the partition count. It is fixed when the log is
	// created: 0 means the stored count (DefaultPartitions for a new log),
	// and any other value must equal the stored count.
	Partitions int
	// Logger receives the log's and Pebble's messages (Pebble's
	// informational messages at Debug level). Nil means slog.Default().
	Logger *slog.Logger
	// MinFreeBytes is the free space the log's filesystem keeps: below
	// it, Append refuses new records (an error wrapping
	// diskspace.ErrLow, nothing stored) and Probe fails, instead of
	// Pebble stopping the process on a write that finds the disk full.
	// 0 turns the check off.
	MinFreeBytes int64
}

// Log is an eventlog.Log stored in a Pebble database. It is safe for
// concurrent use.
type Log struct {
	db     *pebble.DB
	lock   *pebblelock.Lock
	logger *slog.Logger
	ids    []int32
	parts  []partition

	reqs          chan *appendReq
	closing       chan struct{} // closed when Close starts
	committerDone chan struct{}
	failed        atomic.Pointer[error] // sticky commit failure
	space         *diskspace.Guard      // nil: no reserve

	// mu guards db against Close: operations using db hold it for reading.
	mu     sync.RWMutex
	closed bool

	closeOnce sync.Once
	closeErr  error

	// Owned by the committer goroutine.
	next    []int64 // offset the next record of each partition gets
	touched []bool
	lastTS  int64            // newest timestamp stored, Unix nanoseconds
	now     func() time.Time // the clock; tests replace it before appending
}

type partition struct {
	// end is the published end offset: every record below it is committed
	// and visible to iterators.
	end atomic.Int64
	// notify is closed and replaced after a commit that advanced end.
	notify atomic.Pointer[chan struct{}]
}

var _ eventlog.Log = (*Log)(nil)

// Validate reports a partition count out of range and a negative
// MinFreeBytes. Open calls it.
func (o Options) Validate() error {
	e := configcheck.New("pebblelog")
	if o.Partitions < 0 || o.Partitions > MaxPartitions {
		e.Errorf("partitions %d out of range [0, %d]", o.Partitions, MaxPartitions)
	}
	configcheck.NotNegative(e, "MinFreeBytes", o.MinFreeBytes)
	return e.Err()
}

// Open opens the log stored in dir, creating it if needed.
func Open(dir string, opts Options) (*Log, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("component", "pebblelog")
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("pebblelog: open %s: %w", dir, err)
	}
	// A directory another process holds is pebblelock.ErrInUse.
	lock, err := pebblelock.Acquire(dir)
	if err != nil {
		return nil, fmt.Errorf("pebblelog: open %s: %w", dir, err)
	}
	popts := pebbleOptions(logger)
	popts.Lock = lock.Pebble()
	db, err := pebble.Open(dir, popts)
	if err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("pebblelog: open %s: %w", dir, err)
	}
	n, err := partitionCount(db, opts.Partitions)
	if err == nil {
		var l *Log
		if l, err = newLog(db, logger, n); err == nil {
			l.lock = lock
			if opts.MinFreeBytes > 0 {
				l.space = diskspace.New(dir, opts.MinFreeBytes)
			}
			logger.Debug("opened", "dir", dir, "partitions", n)
			return l, nil
		}
	}
	if cerr := db.Close(); cerr != nil {
		logger.Error("close after failed open", "dir", dir, "err", cerr)
	}
	_ = lock.Close()
	return nil, fmt.Errorf("pebblelog: open %s: %w", dir, err)
}

func pebbleOptions(logger *slog.Logger) *pebble.Options {
	return &pebble.Options{
		// A log is written far more than it is read back from sstables:
		// large memtables (up to 4 x 32 MiB queued before writes stall)
		// absorb bursts, a small block cache serves consumers that fell
		// behind the memtables, and L0 gets more room before stalling.
		MemTableSize:                32 << 20,
		MemTableStopWritesThreshold: 4,
		CacheSize:                   16 << 20,
		L0StopWritesThreshold:       24,
		FormatMajorVersion:          pebble.FormatNewest,
		Logger:                      pebbleLogger{logger},
		EventListener: &pebble.EventListener{
			BackgroundError: func(err error) { logger.Error("pebble background error", "err", err) },
			DataCorruption: func(info pebble.DataCorruptionInfo) {
				logger.Error("pebble data corruption", "path", info.Path, "err", info.Details)
			},
			DiskSlow:        func(info pebble.DiskSlowInfo) { logger.Warn("pebble disk slow", "info", info.String()) },
			WriteStallBegin: func(info pebble.WriteStallBeginInfo) { logger.Warn("pebble write stall", "reason", info.Reason) },
			WriteStallEnd:   func() { logger.Info("pebble write stall ended") },
		},
	}
}

// partitionCount reads the stored partition count, storing want (or the
// default) on first use.
func partitionCount(db *pebble.DB, want int) (int, error) {
	v, closer, err := db.Get(metaPartitionsKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		n := want
		if n == 0 {
			n = DefaultPartitions
		}
		if err := db.Set(metaPartitionsKey, binary.BigEndian.AppendUint32(nil, uint32(n)), pebble.Sync); err != nil {
			return 0, fmt.Errorf("store partition count: %w", err)
		}
		return n, nil
	case err != nil:
		return 0, fmt.Errorf("read partition count: %w", err)
	}
	defer closer.Close()
	if len(v) != 4 {
		return 0, fmt.Errorf("read partition count: malformed value %x", v)
	}
	stored := int(binary.BigEndian.Uint32(v))
	if stored < 1 || stored > MaxPartitions {
		return 0, fmt.Errorf("read partition count: stored count %d out of range", stored)
	}
	if want != 0 && want != stored {
		return 0, fmt.Errorf("log has %d partitions, not %d (the count is fixed at creation)", stored, want)
	}
	return stored, nil
}

func newLog(db *pebble.DB, logger *slog.Logger, n int) (*Log, error) {
	l := &Log{
		db:            db,
		logger:        logger,
		ids:           make([]int32, n),
		parts:         make([]partition, n),
		reqs:          make(chan *appendReq, requestQueueLen),
		closing:       make(chan struct{}),
		committerDone: make(chan struct{}),
		next:          make([]int64, n),
		touched:       make([]bool, n),
		now:           time.Now,
	}
	for i := range n {
		p := int32(i)
		end, lastTS, err := loadEnd(db, p)
		if err != nil {
			return nil, err
		}
		l.lastTS = max(l.lastTS, lastTS)
		l.ids[i] = p
		l.next[i] = end
		l.parts[i].end.Store(end)
		ch := make(chan struct{})
		l.parts[i].notify.Store(&ch)
	}
	go l.commitLoop()
	return l, nil
}

// loadEnd finds the end offset of p, and the timestamp of its newest
// record (0 when it has none), from its last stored record.
func loadEnd(db *pebble.DB, p int32) (end, lastTS int64, err error) {
	lower, upper := partitionBounds(p)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return 0, 0, fmt.Errorf("scan partition %d: %w", p, err)
	}
	if it.Last() {
		_, off, perr := parseRecordKey(it.Key())
		err = perr
		end = off + 1
		if err == nil {
			var v []byte
			if v, err = it.ValueAndErr(); err == nil {
				lastTS, err = recordTimestamp(v)
			}
		}
	}
	err = errors.Join(err, it.Error(), it.Close())
	if err != nil {
		return 0, 0, fmt.Errorf("scan partition %d: %w", p, err)
	}
	return end, lastTS, nil
}

func closedErr(op string) error {
	return fmt.Errorf("pebblelog: %s: %w", op, eventlog.ErrClosed)
}

func (l *Log) isClosing() bool {
	select {
	case <-l.closing:
		return true
	default:
		return false
	}
}

// acquire takes a read hold on db, failing if the log is closed. The caller
// must call l.mu.RUnlock when it is done with db.
func (l *Log) acquire(op string) error {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return closedErr(op)
	}
	return nil
}

func (l *Log) checkPartition(op string, p int32) error {
	if p < 0 || int(p) >= len(l.ids) {
		return fmt.Errorf("pebblelog: %s: partition %d out of range [0, %d)", op, p, len(l.ids))
	}
	return nil
}

// Partitions lists the log's partitions.
func (l *Log) Partitions(ctx context.Context) ([]int32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if l.isClosing() {
		return nil, closedErr("partitions")
	}
	return append([]int32(nil), l.ids...), nil
}

// EndOffset returns the offset the next record appended to p will get.
func (l *Log) EndOffset(ctx context.Context, p int32) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if l.isClosing() {
		return 0, closedErr("end offset")
	}
	if err := l.checkPartition("end offset", p); err != nil {
		return 0, err
	}
	return l.parts[p].end.Load(), nil
}

// OffsetForTime returns the offset of the first record of p whose Timestamp
// is at or after t, or the end offset when there is none. Timestamps never
// decrease along a partition (see the package documentation), so it binary
// searches the committed records, reading one timestamp per step.
func (l *Log) OffsetForTime(ctx context.Context, p int32, t time.Time) (off int64, err error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := l.checkPartition("offset for time", p); err != nil {
		return 0, err
	}
	if err := l.acquire("offset for time"); err != nil {
		return 0, err
	}
	defer l.mu.RUnlock()
	// Every record below end is committed, so the iterator, created
	// after end was loaded, sees them all.
	end := l.parts[p].end.Load()
	if end == 0 {
		return 0, nil
	}
	lower, upper := partitionBounds(p)
	it, err := l.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return 0, fmt.Errorf("pebblelog: offset for time in partition %d: %w", p, err)
	}
	defer func() {
		if cerr := it.Close(); cerr != nil && err == nil {
			off, err = 0, fmt.Errorf("pebblelog: offset for time in partition %d: %w", p, cerr)
		}
	}()
	// Invariant: the records below lo are before t, and hi is end or a
	// record at or after t.
	key := make([]byte, recordKeyLen)
	lo, hi := int64(0), end
	for lo < hi {
		mid := lo + (hi-lo)/2
		putRecordKey(key, p, mid)
		if !it.SeekGE(key) || !bytes.Equal(it.Key(), key) {
			return 0, errors.Join(fmt.Errorf("pebblelog: offset for time in partition %d: record %d missing", p, mid), it.Error())
		}
		v, err := it.ValueAndErr()
		if err == nil {
			var ts int64
			if ts, err = recordTimestamp(v); err == nil {
				if time.Unix(0, ts).Before(t) {
					lo = mid + 1
				} else {
					hi = mid
				}
				continue
			}
		}
		return 0, fmt.Errorf("pebblelog: offset for time in partition %d, record %d: %w", p, mid, err)
	}
	return lo, nil
}

// Read returns up to max records of partition p from offset on, waiting
// until at least one is available. It returns ctx.Err() when ctx ends first,
// and an error wrapping eventlog.ErrClosed when the log is closed.
func (l *Log) Read(ctx context.Context, p int32, offset int64, max int) ([]eventlog.Record, error) {
	if err := l.checkPartition("read", p); err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, fmt.Errorf("pebblelog: read: negative offset %d", offset)
	}
	if max < 1 {
		return nil, fmt.Errorf("pebblelog: read: max %d < 1", max)
	}
	part := &l.parts[p]
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if l.isClosing() {
			return nil, closedErr("read")
		}
		// Load the channel before end: a commit publishes end before it
		// replaces the channel, so either this end shows the commit or the
		// channel loaded is the one it closes.
		notify := part.notify.Load()
		end := part.end.Load()
		if offset < end {
			return l.readRange(p, offset, min(end, offset+int64(max)))
		}
		select {
		case <-*notify:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-l.closing:
			return nil, closedErr("read")
		}
	}
}

// readRange reads the records [from, to) of p, all of which are committed.
func (l *Log) readRange(p int32, from, to int64) (recs []eventlog.Record, err error) {
	if err := l.acquire("read"); err != nil {
		return nil, err
	}
	defer l.mu.RUnlock()
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: recordKey(p, from), UpperBound: recordKey(p, to)})
	if err != nil {
		return nil, fmt.Errorf("pebblelog: read partition %d: %w", p, err)
	}
	defer func() {
		if cerr := it.Close(); cerr != nil && err == nil {
			recs, err = nil, fmt.Errorf("pebblelog: read partition %d: %w", p, cerr)
		}
	}()
	recs = make([]eventlog.Record, 0, to-from)
	want := from
	for valid := it.First(); valid; valid = it.Next() {
		kp, off, err := parseRecordKey(it.Key())
		if err != nil {
			return nil, err
		}
		if kp != p || off != want {
			return nil, fmt.Errorf("pebblelog: read partition %d: found offset %d where %d was expected", p, off, want)
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("pebblelog: read partition %d offset %d: %w", p, off, err)
		}
		r := eventlog.Record{Partition: p, Offset: off}
		// The iterator reuses its buffers; the record keeps its own copy.
		if err := decodeRecord(append([]byte(nil), v...), &r); err != nil {
			return nil, fmt.Errorf("pebblelog: read partition %d offset %d: %w", p, off, err)
		}
		recs = append(recs, r)
		want++
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("pebblelog: read partition %d: %w", p, err)
	}
	if want != to {
		return nil, fmt.Errorf("pebblelog: read partition %d: records [%d, %d) missing", p, want, to)
	}
	return recs, nil
}

// Commit records that group has processed p up to (excluding) next.
func (l *Log) Commit(ctx context.Context, group string, p int32, next int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := l.checkGroup("commit", group, p); err != nil {
		return err
	}
	if next < 0 {
		return fmt.Errorf("pebblelog: commit: negative offset %d", next)
	}
	if err := l.acquire("commit"); err != nil {
		return err
	}
	defer l.mu.RUnlock()
	if err := l.db.Set(commitKey(group, p), binary.BigEndian.AppendUint64(nil, uint64(next)), pebble.Sync); err != nil {
		return fmt.Errorf("pebblelog: commit group %q partition %d: %w", group, p, err)
	}
	return nil
}

// Committed returns group's committed offset of p, 0 if it never committed.
func (l *Log) Committed(ctx context.Context, group string, p int32) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := l.checkGroup("committed", group, p); err != nil {
		return 0, err
	}
	if err := l.acquire("committed"); err != nil {
		return 0, err
	}
	defer l.mu.RUnlock()
	v, closer, err := l.db.Get(commitKey(group, p))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("pebblelog: committed group %q partition %d: %w", group, p, err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("pebblelog: committed group %q partition %d: malformed value %x", group, p, v)
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

func (l *Log) checkGroup(op, group string, p int32) error {
	if group == "" {
		return fmt.Errorf("pebblelog: %s: empty group", op)
	}
	return l.checkPartition(op, p)
}

// Run claims every partition for group: this process is the group's only
// member. Each claim runs in its own goroutine with a context that ends
// when ctx ends or the log is closed. A claim that fails before then is
// logged and retried after a backoff; one that returns nil early leaves its
// partition idle until Run is called again. Run returns once ctx is done
// and every claim has returned: nil, or an error wrapping eventlog.ErrClosed
// when the log was closed.
func (l *Log) Run(ctx context.Context, group string, claim func(ctx context.Context, p int32) error) error {
	if group == "" {
		return errors.New("pebblelog: run: empty group")
	}
	if claim == nil {
		return errors.New("pebblelog: run: nil claim")
	}
	if l.isClosing() {
		return closedErr("run")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-l.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	var wg sync.WaitGroup
	for _, p := range l.ids {
		wg.Go(func() { l.runClaim(ctx, group, p, claim) })
	}
	<-ctx.Done()
	wg.Wait()
	if l.isClosing() {
		return closedErr("run")
	}
	return nil
}

func (l *Log) runClaim(ctx context.Context, group string, p int32, claim func(ctx context.Context, p int32) error) {
	const minBackoff, maxBackoff = 100 * time.Millisecond, 10 * time.Second
	backoff := minBackoff
	for {
		err := claim(ctx, p)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			l.logger.Warn("claim returned before revocation; partition idle", "group", group, "partition", p)
			return
		}
		l.logger.Error("claim failed; retrying", "group", group, "partition", p, "err", err, "backoff", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// Close waits for the commit in progress, flushes and closes the database.
// It is idempotent; afterwards every operation returns an error wrapping
// eventlog.ErrClosed, including Reads that were waiting.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		close(l.closing)
		<-l.committerDone
		l.mu.Lock()
		defer l.mu.Unlock()
		l.closed = true
		var ferr error
		if l.failed.Load() == nil {
			if ferr = l.db.Flush(); ferr != nil {
				ferr = fmt.Errorf("pebblelog: close: flush: %w", ferr)
			}
		}
		cerr := l.db.Close()
		if cerr != nil {
			cerr = fmt.Errorf("pebblelog: close: %w", cerr)
		}
		var lerr error
		if l.lock != nil {
			if lerr = l.lock.Close(); lerr != nil {
				lerr = fmt.Errorf("pebblelog: close: %w", lerr)
			}
		}
		l.closeErr = errors.Join(ferr, cerr, lerr)
	})
	return l.closeErr
}

// pebbleLogger adapts slog to Pebble's logger; Pebble's informational
// messages are chatty and go to Debug.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	if p.l.Enabled(context.Background(), slog.LevelDebug) {
		p.l.Debug(fmt.Sprintf(format, args...), "source", "pebble")
	}
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "source", "pebble")
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg, "source", "pebble", "fatal", true)
	panic("pebble: " + msg) // Pebble's Fatalf must not return

}
