package kafkalog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"

	"github.com/sextant-analytics/sextant/pkg/eventlog"
)

const (
	// outOfRangePoll is how often a Read past the end offset checks
	// whether the log has grown to it.
	outOfRangePoll = 200 * time.Millisecond
	// A standalone partition consumer unused for readerIdle is closed: it
	// would keep fetching, and once its buffer is full it delays the
	// fetches of the other partitions.
	readerIdle      = 10 * time.Second
	readerIdleCheck = 5 * time.Second
)

// reader is the standalone partition consumer of one partition, cached
// between Reads: a Read at the offset it delivers next continues it,
// any other offset recreates it.
type reader struct {
	sem      chan struct{} // held by the Read using pc
	pc       sarama.PartitionConsumer
	next     int64     // offset pc delivers next
	lastUsed time.Time // end of the last Read
}

func (r *reader) closeConsumer() {
	if r.pc != nil {
		_ = r.pc.Close() // errors are logged by sarama (Consumer.Return.Errors is off)
		r.pc = nil
	}
}

// claimFeed lets the Reads of a claim take their records from the consumer
// group claim's own partition consumer. It travels in the claim's context,
// so only Reads made on behalf of the claim use it.
type claimFeed struct {
	log   *Log
	p     int32
	claim sarama.ConsumerGroupClaim
	sem   chan struct{} // held by the Read using the claim's stream
	next  int64         // offset the stream delivers next; -1 until known
	dead  bool          // the stream closed: Reads go standalone
}

type feedKey struct{}

// lock takes a one-slot semaphore, giving up when ctx ends or the log
// closes.
func (l *Log) lock(ctx context.Context, sem chan struct{}) error {
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-l.closing:
		return closedErr("read")
	}
}

// Read returns up to max records of partition p from offset on, waiting
// until at least one is available. It returns ctx.Err() when ctx ends
// first, and an error wrapping eventlog.ErrClosed when the log is closed.
//
// Called from a claim of Run (with the claim's context or one derived from
// it), Read takes the records from the group claim's stream, skipping those
// below offset; when offset is below where that stream is (the claim
// started at the group's committed offset, but the caller resumes from an
// older offset of its own), it reads from a standalone partition consumer
// until it reaches the stream. Without a claim, Read uses a standalone
// partition consumer, cached per partition and recreated when offset is
// not where it stands.
//
// An offset below the oldest retained record is an error (records were
// deleted by retention); one past the end offset waits until the log
// reaches it.
func (l *Log) Read(ctx context.Context, p int32, offset int64, max int) ([]eventlog.Record, error) {
	if err := l.checkPartition("read", p); err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, fmt.Errorf("kafkalog: read: negative offset %d", offset)
	}
	if max < 1 {
		return nil, fmt.Errorf("kafkalog: read: max %d < 1", max)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := l.acquire("read", false); err != nil {
		return nil, err
	}
	defer l.ops.RUnlock()
	if f, _ := ctx.Value(feedKey{}).(*claimFeed); f != nil && f.log == l && f.p == p {
		return l.readClaim(ctx, f, offset, max)
	}
	return l.readStandalone(ctx, p, offset, max)
}

func (l *Log) readClaim(ctx context.Context, f *claimFeed, offset int64, max int) ([]eventlog.Record, error) {
	if err := l.lock(ctx, f.sem); err != nil {
		return nil, err
	}
	standalone := func() ([]eventlog.Record, error) {
		<-f.sem
		return l.readStandalone(ctx, f.p, offset, max)
	}
	if f.dead {
		return standalone()
	}
	if f.next < 0 {
		next, err := l.resolveOffset(ctx, f.p, f.claim.InitialOffset())
		if err != nil {
			<-f.sem
			return nil, err
		}
		f.next = next
	}
	if offset < f.next {
		// The stream is past offset: read the gap standalone. A later
		// Read at or past f.next comes back to the stream.
		return standalone()
	}
	recs, last, closed, err := l.receive(ctx, f.claim.Messages(), offset, max)
	if last >= 0 {
		f.next = last + 1
	}
	if closed {
		// The claim is ending (its context follows), or its consumer
		// stopped: either way the standalone consumer can serve.
		f.dead = true
	}
	if err != nil || len(recs) > 0 {
		<-f.sem
		return recs, err
	}
	return standalone()
}

// resolveOffset turns sarama's OffsetOldest/OffsetNewest into an offset.
func (l *Log) resolveOffset(ctx context.Context, p int32, off int64) (int64, error) {
	if off >= 0 {
		return off, nil
	}
	got, err := l.offset(ctx, p, off)
	if err != nil {
		return 0, fmt.Errorf("kafkalog: read partition %d: resolve start offset: %w", p, err)
	}
	return got, nil
}

func (l *Log) readStandalone(ctx context.Context, p int32, offset int64, max int) ([]eventlog.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := l.readers[p]
	if err := l.lock(ctx, r.sem); err != nil {
		return nil, err
	}
	defer func() {
		r.lastUsed = time.Now()
		<-r.sem
	}()
	for restarts := 0; ; restarts++ {
		if r.pc != nil && r.next != offset {
			r.closeConsumer()
		}
		if r.pc == nil {
			if err := l.startConsumer(ctx, r, p, offset); err != nil {
				return nil, err
			}
		}
		recs, last, closed, err := l.receive(ctx, r.pc.Messages(), offset, max)
		if last >= 0 {
			r.next = last + 1
		}
		if closed {
			// The consumer stopped (sarama logged why): recreate it.
			r.closeConsumer()
		}
		if err != nil || len(recs) > 0 {
			return recs, err
		}
		if restarts >= 3 {
			return nil, fmt.Errorf("kafkalog: read partition %d at offset %d: the partition consumer keeps stopping", p, offset)
		}
	}
}

// closeIdleReaders closes the standalone partition consumers no Read used
// for readerIdle, until the log closes.
func (l *Log) closeIdleReaders() {
	t := time.NewTicker(readerIdleCheck)
	defer t.Stop()
	for {
		select {
		case <-l.closing:
			return
		case <-t.C:
		}
		if l.acquire("close idle readers", false) != nil {
			return
		}
		var idle []*reader // held: their sem is taken
		for _, r := range l.readers {
			select {
			case r.sem <- struct{}{}:
				if r.pc != nil && time.Since(r.lastUsed) > readerIdle {
					r.pc.AsyncClose()
					idle = append(idle, r)
				} else {
					<-r.sem
				}
			default: // a Read is using it
			}
		}
		for _, r := range idle {
			r.closeConsumer()
			<-r.sem
		}
		l.ops.RUnlock()
	}
}

// startConsumer starts r's partition consumer at offset. Past the end
// offset, it waits for the log to reach offset.
func (l *Log) startConsumer(ctx context.Context, r *reader, p int32, offset int64) error {
	for {
		pc, err := l.consumer.ConsumePartition(l.topic, p, offset)
		if err == nil {
			r.pc, r.next = pc, offset
			return nil
		}
		if retriablePartitionError(err) {
			// Leadership in flux (a new topic, a broker restart): retry.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-l.closing:
				return closedErr("read")
			case <-time.After(outOfRangePoll):
			}
			continue
		}
		if !errors.Is(err, sarama.ErrOffsetOutOfRange) {
			return fmt.Errorf("kafkalog: read partition %d at offset %d: %w", p, offset, err)
		}
		oldest, oerr := l.offset(ctx, p, sarama.OffsetOldest)
		if oerr != nil {
			return fmt.Errorf("kafkalog: read partition %d at offset %d: %w", p, offset, oerr)
		}
		if offset < oldest {
			return fmt.Errorf("kafkalog: read partition %d at offset %d: the oldest retained offset is %d (older records were deleted): %w",
				p, offset, oldest, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-l.closing:
			return closedErr("read")
		case <-time.After(outOfRangePoll):
		}
	}
}

// receive takes messages from ch, skipping those below offset, until it
// has at least one record (waiting) and then as many as are ready, up to
// max. last is the offset of the last message taken (-1 if none), closed
// reports ch closed.
func (l *Log) receive(ctx context.Context, ch <-chan *sarama.ConsumerMessage, offset int64, max int) (recs []eventlog.Record, last int64, closed bool, err error) {
	last = -1
	for len(recs) == 0 {
		select {
		case m, ok := <-ch:
			if !ok {
				return nil, last, true, nil
			}
			last = m.Offset
			if m.Offset >= offset {
				recs = append(recs, toRecord(m))
			}
		case <-ctx.Done():
			return nil, last, false, ctx.Err()
		case <-l.closing:
			return nil, last, false, closedErr("read")
		}
	}
	for len(recs) < max {
		select {
		case m, ok := <-ch:
			if !ok {
				return recs, last, true, nil
			}
			last = m.Offset
			if m.Offset >= offset {
				recs = append(recs, toRecord(m))
			}
		default:
			return recs, last, false, nil
		}
	}
	return recs, last, false, nil
}

func toRecord(m *sarama.ConsumerMessage) eventlog.Record {
	r := eventlog.Record{
		Partition: m.Partition,
		Offset:    m.Offset,
		Key:       m.Key,
		Value:     m.Value,
		Timestamp: m.Timestamp,
	}
	if len(m.Headers) > 0 {
		r.Headers = make(map[string]string, len(m.Headers))
		for _, h := range m.Headers {
			if h != nil {
				r.Headers[string(h.Key)] = string(h.Value)
			}
		}
	}
	return r
}
