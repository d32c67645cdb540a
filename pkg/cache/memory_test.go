package cache

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func TestMemory(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1000, 0)
	m := NewMemory(100)
	m.now = func() time.Time { return now }
	for _, tc := range []struct {
		name string
		run  func(t *testing.T)
	}{
		{"miss", func(t *testing.T) {
			if _, ok, _ := m.Get(ctx, "nope"); ok {
				t.Fatal("hit on empty cache")
			}
		}},
		{"hit", func(t *testing.T) {
			_ = m.Set(ctx, "a", []byte("1"), time.Minute)
			v, ok, _ := m.Get(ctx, "a")
			if !ok || string(v) != "1" {
				t.Fatalf("got %q %v", v, ok)
			}
		}},
		{"expiry", func(t *testing.T) {
			_ = m.Set(ctx, "b", []byte("2"), time.Second)
			now = now.Add(2 * time.Second)
			if _, ok, _ := m.Get(ctx, "b"); ok {
				t.Fatal("expired entry returned")
			}
		}},
		{"evicts least recently used", func(t *testing.T) {
			for i := 0; i < 20; i++ {
				_ = m.Set(ctx, fmt.Sprint("k", i), make([]byte, 10), time.Hour)
				_, _, _ = m.Get(ctx, "k0")
			}
			if _, ok, _ := m.Get(ctx, "k0"); !ok {
				t.Fatal("recently used entry evicted")
			}
			if _, ok, _ := m.Get(ctx, "k1"); ok {
				t.Fatal("old entry kept past the size bound")
			}
			if m.used > m.maxBytes {
				t.Fatalf("used %d > max %d", m.used, m.maxBytes)
			}
		}},
	} {
		t.Run(tc.name, tc.run)
	}
}
