package driver

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	collectv1 "github.com/sextant-analytics/sextant/gen/sextant/collect/v1"
	"github.com/sextant-analytics/sextant/pkg/loadgen"
)

func (d *Driver) authCtx(ctx context.Context, p int) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+d.cfg.Keys[p].WriteKey)
}

// streamState is what one stream has in flight.
type streamState struct {
	mu      sync.Mutex
	pending []*entry // sent, not acknowledged, in order
	retry   []*entry // to resend once notBefore has passed
}

func (s *streamState) popRetry(now time.Time) *entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, e := range s.retry {
		if !now.Before(e.notBefore) {
			s.retry = append(s.retry[:i], s.retry[i+1:]...)
			return e
		}
	}
	return nil
}

func (s *streamState) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending) == 0 && len(s.retry) == 0
}

func (s *streamState) oldest() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) == 0 {
		return time.Time{}
	}
	return s.pending[0].sent
}

// streamWorker keeps one stream of property w%P busy, reopening it when it
// breaks and resending what was not acknowledged.
func (d *Driver) streamWorker(ctx context.Context, w int, h *lockedHist) {
	p := w % len(d.sources)
	conn := d.conns[w%len(d.conns)]
	var leftover []*entry
	exhausted := false
	for attempt := 0; ; attempt++ {
		var done bool
		leftover, exhausted, done = d.streamSession(ctx, p, conn, leftover, exhausted, h)
		if done || ctx.Err() != nil {
			for _, e := range leftover {
				d.failed(e, "stream ended: "+errString(ctx.Err()))
			}
			return
		}
		kept := leftover[:0]
		for _, e := range leftover {
			if e.attempts >= d.cfg.Retries {
				d.failed(e, "stream broke repeatedly")
				continue
			}
			kept = append(kept, e)
		}
		leftover = kept
		if exhausted && len(leftover) == 0 {
			return
		}
		select {
		case <-time.After(backoff(min(attempt+1, 10))):
		case <-ctx.Done():
		}
	}
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}

// streamSession runs one stream until it breaks or the run is over. It
// returns the batches to resend on a new stream, whether the property's
// batches are exhausted, and whether the worker is done.
func (d *Driver) streamSession(ctx context.Context, p int, conn grpc.ClientConnInterface, resend []*entry, exhausted bool, h *lockedHist) ([]*entry, bool, bool) {
	sctx, cancel := context.WithCancel(d.authCtx(ctx, p))
	defer cancel()
	cs, err := conn.NewStream(sctx, streamCollectDesc, streamCollectMethod, grpc.ForceCodecV2(codec{}))
	if err != nil {
		d.streamErrors.Add(1)
		d.noteError("open stream: " + err.Error())
		return resend, exhausted, false
	}
	st := &streamState{retry: resend}
	window := make(chan struct{}, d.cfg.Inflight)
	recvDone := make(chan error, 1)
	go func() {
		for {
			var resp collectv1.StreamCollectResponse
			if err := cs.RecvMsg(&resp); err != nil {
				recvDone <- err
				return
			}
			now := time.Now()
			st.mu.Lock()
			if len(st.pending) == 0 || st.pending[0].seq != resp.Sequence {
				st.mu.Unlock()
				recvDone <- fmt.Errorf("acknowledgement of sequence %d out of order", resp.Sequence)
				return
			}
			e := st.pending[0]
			st.pending = st.pending[1:]
			st.mu.Unlock()
			<-window
			if be := resp.GetError(); be != nil {
				if retriable(be.Code) && e.attempts < d.cfg.Retries {
					d.retries.Add(1)
					e.notBefore = now.Add(backoff(e.attempts))
					st.mu.Lock()
					st.retry = append(st.retry, e)
					st.mu.Unlock()
				} else if retriable(be.Code) {
					d.failed(e, be.Code+": "+be.Message)
				} else {
					d.rejected(e, be.Code+": "+be.Message)
				}
				continue
			}
			h.Histogram(func(hh *loadgen.Histogram) { d.acked(hh, e, now) })
		}
	}()
	var seq uint64
	broken := func(err error) ([]*entry, bool, bool) {
		d.streamErrors.Add(1)
		d.noteError("stream: " + err.Error())
		cancel()
		<-recvDone
		st.mu.Lock()
		defer st.mu.Unlock()
		return append(st.pending, st.retry...), exhausted, false
	}
	for {
		// The ack timeout: a stream that stopped answering is replaced.
		if o := st.oldest(); !o.IsZero() && time.Since(o) > d.cfg.Timeout {
			return broken(fmt.Errorf("no acknowledgement in %v", d.cfg.Timeout))
		}
		select {
		case window <- struct{}{}:
		case err := <-recvDone:
			recvDone <- err
			return broken(err)
		case <-ctx.Done():
			cancel()
			<-recvDone
			return append(st.pending, st.retry...), exhausted, true
		}
		e := st.popRetry(time.Now())
		if e == nil && !exhausted {
			if e = d.take(ctx, p); e == nil {
				exhausted = true
			}
		}
		if e == nil {
			<-window
			if exhausted && st.idle() {
				_ = cs.CloseSend()
				err := <-recvDone
				if err != io.EOF {
					st.mu.Lock()
					left := append(st.pending, st.retry...)
					st.mu.Unlock()
					if len(left) > 0 {
						d.streamErrors.Add(1)
						d.noteError("stream end: " + err.Error())
						return left, exhausted, false
					}
				}
				return nil, true, true
			}
			select {
			case err := <-recvDone:
				recvDone <- err
			case <-time.After(2 * time.Millisecond):
			case <-ctx.Done():
			}
			continue
		}
		seq++
		e.seq = seq
		e.attempts++
		frame := loadgen.AppendStreamRequest(make([]byte, 0, len(e.body)+16), seq, e.body)
		st.mu.Lock()
		e.sent = time.Now()
		st.pending = append(st.pending, e)
		st.mu.Unlock()
		if err := cs.SendMsg(rawFrame(frame)); err != nil {
			return broken(err)
		}
	}
}
