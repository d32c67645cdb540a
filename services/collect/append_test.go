package collect

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/sextant-analytics/sextant/pkg/apierror"
	"github.com/sextant-analytics/sextant/pkg/eventlog"
)

// stuckLog never acknowledges: an event log whose brokers are gone.
type stuckLog struct{ waiting chan struct{} }

func (l stuckLog) Append(ctx context.Context, _ []eventlog.Message) error {
	l.waiting <- struct{}{}
	<-ctx.Done()
	return ctx.Err()
}

// TestAppendFailsFast: a batch the event log does not acknowledge is
// answered UNAVAILABLE with a retry delay after AppendTimeout, and once
// MaxAppends batches wait, the next one is refused at once.
func TestAppendFailsFast(t *testing.T) {
	log := stuckLog{waiting: make(chan struct{}, 10)}
	s := New(Config{AppendTimeout: 200 * time.Millisecond, MaxAppends: 2, Logger: slog.New(slog.DiscardHandler)}, log)
	s.now = func() time.Time { return testNow }
	const batch = `{"clientId":"c","events":[{"name":"page_view"}]}`
	unavailable := func(err error) bool {
		var ae *apierror.Error
		return errors.As(err, &ae) && ae.Kind == apierror.Unavailable && ae.RetryAfter > 0
	}

	start := time.Now()
	if err := send(s, "42", batch); !unavailable(err) {
		t.Fatalf("unacknowledged batch: %v", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > time.Second {
		t.Fatalf("unacknowledged batch answered after %v, want about the 200ms timeout", d)
	}
	<-log.waiting

	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { _ = send(s, "42", batch) })
	}
	<-log.waiting
	<-log.waiting
	start = time.Now()
	if err := send(s, "42", batch); !unavailable(err) {
		t.Fatalf("batch over MaxAppends: %v", err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("batch over MaxAppends refused after %v, want at once", d)
	}
	wg.Wait()
}
