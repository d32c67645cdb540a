package property

import (
	"testing"
	"time"
)

// A record read before a drop must not be cached after it: the drop is
// the change feed saying the record changed.
func TestCacheDropWinsOverStaleRead(t *testing.T) {
	c := newCache[int](10, time.Minute)
	epoch := c.begin()
	c.drop("k") // another process changed k while we read it
	c.putIf("k", 1, epoch)
	if _, ok := c.get("k"); ok {
		t.Fatal("a value read before the drop was cached")
	}
	epoch = c.begin()
	c.putIf("k", 2, epoch)
	if v, ok := c.get("k"); !ok || v != 2 {
		t.Fatalf("get %v %v", v, ok)
	}
}

func TestCacheTTL(t *testing.T) {
	c := newCache[int](10, 10*time.Millisecond)
	c.put("k", 1)
	time.Sleep(20 * time.Millisecond)
	if _, ok := c.get("k"); ok {
		t.Fatal("expired entry served")
	}
}
