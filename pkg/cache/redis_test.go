package cache

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

// TestRedis runs against the Redis of the local stack (SEXTANT_REDIS_ADDR,
// set by ./tilt/stack.sh env); it is skipped without one.
func TestRedis(t *testing.T) {
	addr := os.Getenv("SEXTANT_REDIS_ADDR")
	if addr == "" {
		t.Skip("SEXTANT_REDIS_ADDR not set: no Redis to test against")
	}
	ctx := context.Background()
	r := NewRedis(addr, nil)
	defer r.Close()
	if err := r.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	key := "sextant:test:" + time.Now().Format(time.RFC3339Nano)
	if _, ok, err := r.Get(ctx, key); ok || err != nil {
		t.Fatalf("miss: %v %v", ok, err)
	}
	if err := r.Set(ctx, key, []byte("v"), time.Second); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := r.Get(ctx, key); !ok || err != nil || string(v) != "v" {
		t.Fatalf("hit: %q %v %v", v, ok, err)
	}
	down := NewRedis("127.0.0.1:1", nil) // nothing listens there
	defer down.Close()
	start := time.Now()
	if _, _, err := down.Get(ctx, key); err == nil {
		t.Fatal("a cache that is down must report an error")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("a cache that is down took %v to fail", d)
	}
	start = time.Now()
	if _, _, err := down.Get(ctx, key); !errors.Is(err, ErrDown) || time.Since(start) > 10*time.Millisecond {
		t.Fatalf("right after a failure the cache is skipped: %v after %v", err, time.Since(start))
	}
}
