package seal

import (
	"context"
	"crypto/cipher"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sextant-analytics/sextant/pkg/eventlog"
)

// cache holds keys for a while, up to a bound (past it, it starts over:
// the store is the truth, the cache saves round trips).
type cache[K comparable] struct {
	mu  sync.Mutex
	m   map[K]cached
	max int
	ttl time.Duration
	now func() time.Time
}

type cached struct {
	key     Key
	expires time.Time
}

func newCache[K comparable](max int, ttl time.Duration) *cache[K] {
	return &cache[K]{m: map[K]cached{}, max: max, ttl: ttl, now: time.Now}
}

func (c *cache[K]) get(k K) (Key, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok || (c.ttl > 0 && c.now().After(e.expires)) {
		return Key{}, false
	}
	return e.key, true
}

func (c *cache[K]) put(k K, key Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[k] = cached{key: key, expires: c.now().Add(c.ttl)}
}

// SealerTTL is how long collect keeps using a subject's key after reading
// it: batches of a deleted subject sealed within it after the deletion are
// deleted with the rest (README: "Delete a user"). It bounds the key
// store's reads: one per active visitor and TTL.
const SealerTTL = 5 * time.Minute

type subjectRef struct {
	property string
	subject  Subject
}

// Sealer seals batches for collect, creating subjects' keys as needed.
type Sealer struct {
	keys  Keys
	cache *cache[subjectRef]
}

// NewSealer returns a sealer over keys.
func NewSealer(keys Keys) *Sealer {
	return &Sealer{keys: keys, cache: newCache[subjectRef](1<<20, SealerTTL)}
}

// subjectKey returns the subject's key, stored before it is used: a
// record whose key is not stored would not open.
func (s *Sealer) subjectKey(ctx context.Context, property string, sub Subject) (Key, error) {
	ref := subjectRef{property, sub}
	if k, ok := s.cache.get(ref); ok {
		return k, nil
	}
	k, err := SubjectKey(ctx, s.keys, property, sub)
	if err != nil {
		return Key{}, err
	}
	s.cache.put(ref, k)
	return k, nil
}

// Seal seals msgs, the events of one batch of subjects sub, into records
// (usually one: see SealRecords), making and storing the keys of subjects
// met for the first time.
func (s *Sealer) Seal(ctx context.Context, msgs []eventlog.Message, sub Subjects) ([]eventlog.Message, error) {
	client, err := s.subjectKey(ctx, sub.Property, Client(sub.ClientID))
	if err != nil {
		return nil, fmt.Errorf("seal: the client's key: %w", err)
	}
	month, err := s.subjectKey(ctx, sub.Property, Month(sub.Received))
	if err != nil {
		return nil, fmt.Errorf("seal: the month's key: %w", err)
	}
	var user *Key
	if sub.UserID != "" {
		k, err := s.subjectKey(ctx, sub.Property, User(sub.UserID))
		if err != nil {
			return nil, fmt.Errorf("seal: the user's key: %w", err)
		}
		user = &k
	}
	return SealRecords(msgs, sub, client, month, user)
}

type idRef struct {
	property string
	id       ID
}

// Opener opens sealed records for a reader (a projection), keeping the
// keys it read. A reader that must not see keys destroyed since it started
// (a rebuild after a deletion) uses an Opener of its own.
type Opener struct {
	keys  Keys
	cache *cache[idRef]
	// aeads holds the ciphers of the headers met (one per client, user
	// and month): a record of a known header is opened without deriving
	// its key again.
	mu    sync.Mutex
	aeads map[string]cipher.AEAD
	// Parallel bounds the key reads of one Prefetch.
	Parallel int
}

// NewOpener returns an opener over keys.
func NewOpener(keys Keys) *Opener {
	return &Opener{keys: keys, cache: newCache[idRef](1<<20, 0), aeads: map[string]cipher.AEAD{}, Parallel: 32}
}

// Prefetch reads the keys of recs that are not held yet, concurrently, so
// that Open finds them.
func (o *Opener) Prefetch(ctx context.Context, recs []eventlog.Record) error {
	want := map[idRef]bool{}
	seen := map[string]bool{}
	o.mu.Lock()
	for i := range recs {
		h := recs[i].Headers[Header]
		if _, held := o.aeads[h]; held || h == "" || seen[h] {
			continue // a header whose cipher is held needs no key
		}
		seen[h] = true
	}
	o.mu.Unlock()
	for h := range seen {
		p, ids, err := Refs(h)
		if err != nil {
			continue // Open reports it
		}
		for _, id := range ids {
			r := idRef{p, id}
			if _, ok := o.cache.get(r); !ok {
				want[r] = true
			}
		}
	}
	if len(want) == 0 {
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, o.Parallel))
	for r := range want {
		g.Go(func() error {
			_, err := o.key(gctx, r)
			if err != nil && !isShredded(err) {
				return err
			}
			return nil
		})
	}
	return g.Wait()
}

func (o *Opener) key(ctx context.Context, r idRef) (Key, error) {
	if k, ok := o.cache.get(r); ok {
		return k, nil
	}
	k, err := o.keys.Key(ctx, r.property, r.id)
	if err != nil {
		return Key{}, err
	}
	o.cache.put(r, k)
	return k, nil
}

// Open returns what a sealed record holds, its payload of framed events
// (see Events), appended to dst; rec must be sealed (Sealed). The error wraps
// ErrShredded when one of its keys was destroyed (the record is deleted),
// ErrCorrupt when it does not open, and else is the key store's (retry).
func (o *Opener) Open(ctx context.Context, dst []byte, rec *eventlog.Record) ([]byte, error) {
	h := rec.Headers[Header]
	if h == "" {
		return nil, fmt.Errorf("%w: the record is not sealed", ErrCorrupt)
	}
	o.mu.Lock()
	aead, ok := o.aeads[h]
	o.mu.Unlock()
	if !ok {
		p, ids, err := Refs(h)
		if err != nil {
			return nil, err
		}
		keys := make([]*Key, len(ids))
		for i, id := range ids {
			k, err := o.key(ctx, idRef{p, id})
			if err != nil {
				return nil, err
			}
			keys[i] = &k
		}
		if aead, err = newAEAD(recordSecret(keys...)); err != nil {
			return nil, fmt.Errorf("seal: %w", err)
		}
		o.mu.Lock()
		if len(o.aeads) >= 1<<16 {
			clear(o.aeads)
		}
		o.aeads[h] = aead
		o.mu.Unlock()
	}
	return openWith(dst, aead, rec.Value, h)
}

func isShredded(err error) bool { return errors.Is(err, ErrShredded) }
