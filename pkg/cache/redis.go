package cache

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrDown is returned while the cache is considered down after a failure.
var ErrDown = errors.New("redis: down, retrying later")

// Redis is a report cache in Redis, shared by every insights copy. A Redis
// outage costs reports little: calls fail fast (short timeouts, no
// retries), and after a failure the cache is skipped for a second before
// it is tried again.
type Redis struct {
	client    *redis.Client
	downUntil atomic.Int64 // Unix nanoseconds
	backoff   time.Duration
}

// NewRedis returns a cache on the Redis server at addr, reached over TLS
// with tlsConfig when it is not nil.
func NewRedis(addr string, tlsConfig *tls.Config) *Redis {
	return &Redis{backoff: time.Second, client: redis.NewClient(&redis.Options{
		Addr:          addr,
		TLSConfig:     tlsConfig,
		DialTimeout:   200 * time.Millisecond,
		ReadTimeout:   100 * time.Millisecond,
		WriteTimeout:  100 * time.Millisecond,
		PoolTimeout:   100 * time.Millisecond,
		MaxRetries:    -1, // none
		DialerRetries: 1,
	})}
}

// SetLogger sends go-redis's own messages to logger.
func SetLogger(logger *slog.Logger) { redis.SetLogger(slogPrintf{logger}) }

type slogPrintf struct{ l *slog.Logger }

func (p slogPrintf) Printf(ctx context.Context, format string, v ...any) {
	p.l.DebugContext(ctx, fmt.Sprintf(format, v...), "component", "redis")
}

func (r *Redis) down() bool { return time.Now().UnixNano() < r.downUntil.Load() }

func (r *Redis) failed(err error) error {
	r.downUntil.Store(time.Now().Add(r.backoff).UnixNano())
	return err
}

// Get returns the value of key.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if r.down() {
		return nil, false, ErrDown
	}
	b, err := r.client.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, r.failed(fmt.Errorf("redis get: %w", err))
	}
	return b, true, nil
}

// Set stores val under key for ttl.
func (r *Redis) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if r.down() {
		return ErrDown
	}
	if err := r.client.Set(ctx, key, val, ttl).Err(); err != nil {
		return r.failed(fmt.Errorf("redis set: %w", err))
	}
	return nil
}

// Ping checks the server.
func (r *Redis) Ping(ctx context.Context) error { return r.client.Ping(ctx).Err() }

// Close closes the connections.
func (r *Redis) Close() error { return r.client.Close() }
