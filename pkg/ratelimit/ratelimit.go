// Package ratelimit is a token bucket per key (per property), the API
// gateway's rate limit on collect.
package ratelimit

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter holds one token bucket per key. A bucket that has refilled is
// the same as a new one, so buckets of keys idle long enough to refill are
// dropped (swept every SweepEvery): memory follows the keys active in the
// last burst/rate seconds, not every key ever seen (a million properties).
type Limiter struct {
	limit rate.Limit
	burst int
	mu    sync.Mutex
	byKey map[string]*rate.Limiter
	swept time.Time
}

// SweepEvery is how often idle buckets are dropped.
const SweepEvery = 10 * time.Second

// New returns a limiter refilling r tokens per second up to burst.
func New(r float64, burst int) *Limiter {
	return &Limiter{limit: rate.Limit(r), burst: burst, byKey: make(map[string]*rate.Limiter)}
}

// Take consumes n tokens of key's bucket, or reports how long to wait
// before n would be available (consuming nothing).
func (l *Limiter) Take(key string, n int, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	if now.Sub(l.swept) >= SweepEvery {
		l.sweep(now)
	}
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

// sweep drops the buckets that are full at now. Called with mu held.
func (l *Limiter) sweep(now time.Time) {
	l.swept = now
	for k, lim := range l.byKey {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.byKey, k)
		}
	}
}

// Len returns how many buckets the limiter holds.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.byKey)
}
