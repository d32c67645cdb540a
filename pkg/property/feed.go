package property

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// The change feed tells every process which cached records changed: each
// change to a key or a property writes one small record under the minute
// it happened ("regchange.<minute>/<unix nanos>-k:<key hash>" or
// "…-p:<property id>"), and Watch scans the last two minutes' records a few
// times a second, dropping what they name from the caches. The cost is a
// few small scans per second per process, whatever the number of keys;
// records older than a few minutes are deleted by the watchers.
type feed struct {
	r *Registry

	mu     sync.Mutex
	seen   map[string]int64 // feed record -> its minute
	synced time.Time        // the last complete scan
}

func newFeed(r *Registry) *feed { return &feed{r: r, seen: make(map[string]int64)} }

func feedPrefix(minute int64) []byte { return fmt.Appendf(nil, "regchange.%d/", minute) }

// publish records a change; what is "k:<hash>" or "p:<id>". The caller
// changed the record first, so a process that drops its cached copy on
// seeing this reads the new one.
func (f *feed) publish(ctx context.Context, what string) error {
	now := time.Now()
	f.r.drop(what)
	key := append(feedPrefix(now.Unix()/60), fmt.Sprintf("%020d-%s", now.UnixNano(), what)...)
	if err := f.r.kv.Put(ctx, key, nil); err != nil {
		return fmt.Errorf("property: publish change: %w", err)
	}
	return nil
}

func (r *Registry) drop(what string) {
	switch {
	case strings.HasPrefix(what, "k:"):
		r.keys.drop(what[2:])
	case strings.HasPrefix(what, "p:"):
		r.props.drop(what[2:])
	}
}

// poll scans the feed of the current and the previous minute (clocks of
// different processes may differ by some seconds) and drops what new
// records name.
func (f *feed) poll(ctx context.Context, now time.Time) error {
	minute := now.Unix() / 60
	var fresh []string
	for _, m := range []int64{minute - 1, minute} {
		prefix := feedPrefix(m)
		err := f.r.kv.Scan(ctx, prefix, func(k, _ []byte) error {
			rec := string(k)
			f.mu.Lock()
			_, ok := f.seen[rec]
			if !ok {
				f.seen[rec] = m
			}
			f.mu.Unlock()
			if !ok {
				if _, what, found := strings.Cut(rec[len(prefix):], "-"); found {
					fresh = append(fresh, what)
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("property: read change feed: %w", err)
		}
	}
	for _, what := range fresh {
		f.r.drop(what)
	}
	f.mu.Lock()
	for rec, m := range f.seen {
		if m < minute-1 {
			delete(f.seen, rec)
		}
	}
	f.synced = now
	f.mu.Unlock()
	return nil
}

// expire deletes the feed records of an old minute.
func (f *feed) expire(ctx context.Context, minute int64) error {
	var old [][]byte
	if err := f.r.kv.Scan(ctx, feedPrefix(minute), func(k, _ []byte) error {
		old = append(old, k)
		return nil
	}); err != nil {
		return err
	}
	for _, k := range old {
		if err := f.r.kv.Delete(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

// WatchInterval is how often Watch reads the change feed by default.
const WatchInterval = 250 * time.Millisecond

// Watch keeps this process's caches in step with changes made by any
// process: every interval (WatchInterval when 0) it reads the change feed
// and drops the keys and properties that changed, so a revoked key is
// refused within about interval plus a store read. When the feed cannot be
// read (the store is down) cached records stay in use (collect keeps
// working) and the caches are cleared once the feed is back, in case a
// change was missed. It returns when ctx ends.
func (r *Registry) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = WatchInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	failing := false
	lastExpired := int64(0)
	for {
		now := time.Now()
		if err := r.feed.poll(ctx, now); err != nil {
			if ctx.Err() != nil {
				return
			}
			if !failing {
				r.log.Warn("registry change feed unreadable: cached keys stay in use until it is back", "err", err)
			}
			failing = true
		} else {
			if failing {
				r.log.Info("registry change feed readable again: caches cleared")
				r.keys.clear()
				r.props.clear()
			}
			failing = false
			if lastExpired == 0 {
				lastExpired = now.Unix()/60 - 60 // an hour back at start
			}
			for m := lastExpired + 1; m <= now.Unix()/60-3; m++ {
				if err := r.feed.expire(ctx, m); err != nil {
					break
				}
				lastExpired = m
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Synced returns when the change feed was last read in full (zero before
// Watch first did).
func (r *Registry) Synced() time.Time {
	r.feed.mu.Lock()
	defer r.feed.mu.Unlock()
	return r.feed.synced
}

// CacheStats reports how many keys and properties this process caches.
func (r *Registry) CacheStats() (keys, properties int) { return r.keys.len(), r.props.len() }
