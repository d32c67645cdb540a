package pebblelog

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"

	"github.com/sextant-analytics/sextant/pkg/eventlog"
)

// States of an appendReq. The committer moves a pending request to taken
// before writing it; an Append giving up (ctx done, log closing) moves it to
// abandoned. Whoever wins the compare-and-swap decides the outcome, so an
// abandoned request is never written and a taken one always gets a reply.
const (
	statePending int32 = iota
	stateTaken
	stateAbandoned
)

// appendReq is one Append call waiting for the committer. The appending
// goroutine encodes the records (partitions and values) up front, so the
// committer only assigns offsets, stamps timestamps and copies bytes.
type appendReq struct {
	parts []int32 // partition of each message
	ends  []int   // end of each message's encoding in buf
	buf   []byte  // encoded records, timestamps zero
	state atomic.Int32
	done  chan error // buffered; receives the outcome of a taken request
}

// Append stores msgs durably (synced WAL) and atomically. It refuses them
// at once while the disk has less than Options.MinFreeBytes free. It waits for the
// group commit carrying msgs; if ctx ends or the log closes before the
// committer picked the request up, it returns an error and nothing was
// stored, but once the batch is being written it waits for the outcome.
func (l *Log) Append(ctx context.Context, msgs []eventlog.Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pebblelog: append: %w", err)
	}
	if l.isClosing() {
		return closedErr("append")
	}
	if errp := l.failed.Load(); errp != nil {
		return fmt.Errorf("pebblelog: append: log failed earlier: %w", *errp)
	}
	if len(msgs) == 0 {
		return nil
	}
	if err := l.space.Check(); err != nil {
		return fmt.Errorf("pebblelog: append refused: %w", err)
	}
	r := l.newRequest(msgs)
	select {
	case l.reqs <- r:
	case <-ctx.Done():
		return fmt.Errorf("pebblelog: append: %w", ctx.Err())
	case <-l.closing:
		return closedErr("append")
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		if r.state.CompareAndSwap(statePending, stateAbandoned) {
			return fmt.Errorf("pebblelog: append: %w", ctx.Err())
		}
	case <-l.closing:
		if r.state.CompareAndSwap(statePending, stateAbandoned) {
			return closedErr("append")
		}
	}
	// The committer has taken the request and is writing it.
	return <-r.done
}

func (l *Log) newRequest(msgs []eventlog.Message) *appendReq {
	n := len(l.ids)
	size := 0
	for i := range msgs {
		size += encodedLen(&msgs[i])
	}
	r := &appendReq{
		parts: make([]int32, len(msgs)),
		ends:  make([]int, len(msgs)),
		buf:   make([]byte, 0, size),
		done:  make(chan error, 1),
	}
	for i := range msgs {
		r.parts[i] = eventlog.PartitionFor(msgs[i].Key, n)
		r.buf = appendRecord(r.buf, &msgs[i])
		r.ends[i] = len(r.buf)
	}
	return r
}

// commitLoop is the committer goroutine: it takes the first waiting request,
// gathers every other request already queued (they queued while the previous
// commit was syncing) and commits them together.
func (l *Log) commitLoop() {
	defer close(l.committerDone)
	var group []*appendReq
	for {
		select {
		case r := <-l.reqs:
			group = append(group[:0], r)
		case <-l.closing:
			// Requests still queued are abandoned by their Append calls.
			return
		}
		size := len(group[0].buf)
	gather:
		for size < maxGroupBytes && len(group) < maxGroupRequests {
			select {
			case r := <-l.reqs:
				group = append(group, r)
				size += len(r.buf)
			default:
				break gather
			}
		}
		l.commitGroup(group)
		clear(group)
	}
}

// commitGroup writes the live requests of group in one synced batch and
// replies to each.
func (l *Log) commitGroup(group []*appendReq) {
	live := group[:0]
	size, count := 0, 0
	for _, r := range group {
		if r.state.CompareAndSwap(statePending, stateTaken) {
			live = append(live, r)
			size += len(r.buf)
			count += len(r.parts)
		}
	}
	if len(live) == 0 {
		return
	}
	err := l.writeGroup(live, size, count)
	for _, r := range live {
		r.done <- err
	}
}

func (l *Log) writeGroup(live []*appendReq, size, count int) error {
	if errp := l.failed.Load(); errp != nil {
		return fmt.Errorf("pebblelog: append: log failed earlier: %w", *errp)
	}
	// Timestamps never go backwards, even if the clock does (lastTS starts
	// at the newest stored timestamp).
	ts := l.now().UnixNano()
	if ts < l.lastTS {
		ts = l.lastTS
	}
	l.lastTS = ts

	// Offsets are assigned from next and published (end, notify) only once
	// the batch is durable. A failed batch fails the log, so the advanced
	// next is never used again.
	b := l.db.NewBatchWithSize(size + count*(recordKeyLen+8))
	defer b.Close()
	clear(l.touched)
	next := l.next
	for _, r := range live {
		start := 0
		for i, p := range r.parts {
			enc := r.buf[start:r.ends[i]]
			start = r.ends[i]
			op := b.SetDeferred(recordKeyLen, len(enc))
			putRecordKey(op.Key, p, next[p])
			copy(op.Value, enc)
			stampRecord(op.Value, ts)
			if err := op.Finish(); err != nil {
				return l.fail(err)
			}
			next[p]++
			l.touched[p] = true
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return l.fail(err)
	}
	for p, t := range l.touched {
		if !t {
			continue
		}
		part := &l.parts[p]
		part.end.Store(next[p])
		ch := make(chan struct{})
		close(*part.notify.Swap(&ch))
	}
	return nil
}

// fail makes a write failure sticky. After a failed batch the offsets the
// committer handed out may or may not be on disk, so reusing them could
// overwrite records; the log refuses further appends until reopened (which
// recovers the offsets from what is stored).
func (l *Log) fail(err error) error {
	err = fmt.Errorf("pebblelog: append: %w", err)
	if l.failed.CompareAndSwap(nil, &err) {
		l.logger.Error("append failed; log refuses appends until reopened", "err", err)
	}
	return err
}

// Probe reports whether the log takes appends now: it is open, no write
// failed, and its disk has the reserve free.
func (l *Log) Probe(ctx context.Context) error {
	if l.isClosing() {
		return closedErr("probe")
	}
	if errp := l.failed.Load(); errp != nil {
		return fmt.Errorf("pebblelog: a write failed earlier: %w", *errp)
	}
	return l.space.Check()
}
