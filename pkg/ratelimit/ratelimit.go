// Package ratelimit is a token bucket per key (per property), the API
// gateway's rate limit on collect.
package ratelimit

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter holds one token bucket per key.
type Limiter struct {
	limit rate.Limit
	burst int
	mu    sync.Mutex
	byKey map[string]*rate.Limiter
}

// New returns a limiter refilling r tokens per second up to burst.
func New(r float64, burst int) *Limiter {
	return &Limiter{limit: rate.Limit(r), burst: burst, byKey: make(map[string]*rate.Limiter)}
}

// Take consumes n tokens of key's bucket, or reports how long to wait
// before n would be available (consuming nothing).
func (l *Limiter) Take(key string, n int, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	lim, ok := l.byKey[key]
	if !ok {
		lim = rate.NewLimiter(l.limit, l.burst)
		l.byKey[key] = lim
	}
	l.mu.Unlock()
	r := lim.ReserveN(now, n)
	if !r.OK() {
		return time.Second, false
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, false
	}
	return 0, true
}
