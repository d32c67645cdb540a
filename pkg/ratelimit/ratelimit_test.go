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
