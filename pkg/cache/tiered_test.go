package cache

import (
	"context"
	"errors"
	"testing"
	"time"
)

// countingRemote is a shared cache that counts its calls and can fail.
type countingRemote struct {
	m          *Memory
	gets, sets int
	down       bool
}

func (r *countingRemote) Get(ctx context.Context, key string) ([]byte, bool, error) {
	r.gets++
	if r.down {
		return nil, false, ErrDown
	}
	return r.m.Get(ctx, key)
}

func (r *countingRemote) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	r.sets++
	if r.down {
		return ErrDown
	}
	return r.m.Set(ctx, key, val, ttl)
}

func (r *countingRemote) Close() error { return nil }

func TestTiered(t *testing.T) {
	ctx := context.Background()
	remote := &countingRemote{m: NewMemory(1 << 10)}
	c := NewTiered(1<<10, time.Minute, remote)

	// What is stored goes to both tiers; reading it needs no round trip.
	if err := c.Set(ctx, "a", []byte("1"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := c.Get(ctx, "a"); err != nil || !ok || string(v) != "1" || remote.gets != 0 || remote.sets != 1 {
		t.Fatalf("get a: %q %v %v; remote gets %d sets %d", v, ok, err, remote.gets, remote.sets)
	}
	// What another process stored is read from the shared tier once, then
	// from memory.
	_ = remote.m.Set(ctx, "b", []byte("2"), time.Hour)
	for i := 0; i < 3; i++ {
		if v, ok, err := c.Get(ctx, "b"); err != nil || !ok || string(v) != "2" {
			t.Fatalf("get b: %q %v %v", v, ok, err)
		}
	}
	if remote.gets != 1 {
		t.Fatalf("three gets of b made %d round trips, want 1", remote.gets)
	}
	// A miss asks the shared tier; its failure is returned, but what
	// memory holds is still served.
	remote.down = true
	if _, ok, err := c.Get(ctx, "c"); ok || !errors.Is(err, ErrDown) {
		t.Fatalf("get c with the shared tier down: %v %v", ok, err)
	}
	if v, ok, err := c.Get(ctx, "a"); err != nil || !ok || string(v) != "1" {
		t.Fatalf("get a with the shared tier down: %q %v %v", v, ok, err)
	}
	if err := c.Set(ctx, "d", []byte("4"), time.Hour); !errors.Is(err, ErrDown) {
		t.Fatalf("set d with the shared tier down: %v", err)
	}
	if v, ok, _ := c.Get(ctx, "d"); !ok || string(v) != "4" {
		t.Fatalf("d is not kept in memory: %q %v", v, ok)
	}
}
