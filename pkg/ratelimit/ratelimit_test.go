package ratelimit

import (
	"testing"
	"time"
)

func TestTake(t *testing.T) {
	now := time.Unix(1000, 0)
	l := New(10, 20) // 10 tokens/s, burst 20
	for _, tc := range []struct {
		name   string
		key    string
		n      int
		after  time.Duration
		ok     bool
		waitGT time.Duration
	}{
		{"burst available", "a", 20, 0, true, 0},
		{"empty bucket", "a", 5, 0, false, 400 * time.Millisecond},
		{"refused take consumed nothing", "a", 5, 500 * time.Millisecond, true, 0},
		{"keys are independent", "b", 20, 500 * time.Millisecond, true, 0},
		{"more than the burst never fits", "c", 21, 500 * time.Millisecond, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wait, ok := l.Take(tc.key, tc.n, now.Add(tc.after))
			if ok != tc.ok || (tc.waitGT > 0 && wait <= tc.waitGT) || (!ok && wait <= 0) {
				t.Fatalf("Take = %v, %v; want ok=%v wait>%v", wait, ok, tc.ok, tc.waitGT)
			}
		})
	}
}

// TestIdleBucketsDropped: buckets of keys that stopped sending go once
// they refilled, and a key that comes back starts with a full bucket.
func TestIdleBucketsDropped(t *testing.T) {
	now := time.Unix(1000, 0)
	l := New(10, 20)
	for i := range 1000 {
		l.Take(string(rune('a'+i%26))+time.Duration(i).String(), 5, now)
	}
	l.Take("busy", 20, now)
	if n := l.Len(); n != 1001 {
		t.Fatalf("%d buckets, want 1001", n)
	}
	// 11 s later every bucket refilled: the sweep drops them all but the
	// one just used.
	later := now.Add(SweepEvery + time.Second)
	if _, ok := l.Take("busy", 20, later); !ok {
		t.Fatal("a refilled bucket refused its burst")
	}
	if n := l.Len(); n != 1 {
		t.Fatalf("%d buckets after the sweep, want 1", n)
	}
	// A bucket still refilling is kept.
	l2 := New(1, 100)
	l2.Take("slow", 100, now)
	l2.Take("other", 1, now.Add(SweepEvery))
	if n := l2.Len(); n != 2 {
		t.Fatalf("%d buckets, want 2 (the slow one is not full yet)", n)
	}
}
