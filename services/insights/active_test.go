package insights

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sextant-analytics/sextant/pkg/versions"
)

// slowRegistry answers the active version v<n>, n counting the reads of
// Active, each after gate lets it through.
type slowRegistry struct {
	gate  chan struct{}
	reads atomic.Int64
}

func (r *slowRegistry) Active(ctx context.Context, _ string) (string, error) {
	select {
	case <-r.gate:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return "v" + string(rune('0'+r.reads.Add(1))), nil
}

func (r *slowRegistry) Get(_ context.Context, name, version string) (versions.Version, error) {
	return versions.Version{Name: name, Version: version, Build: "b-" + version}, nil
}

// TestActiveRefreshesInBackground: past refresh a report gets the version
// in memory at once and the registry is read again in the background; past
// ten times refresh it waits for the registry.
func TestActiveRefreshesInBackground(t *testing.T) {
	reg := &slowRegistry{gate: make(chan struct{}, 10)}
	a := newActive(reg, time.Second)
	now := time.Now()
	a.now = func() time.Time { return now }
	ctx := context.Background()
	reg.gate <- struct{}{}
	if b, err := a.get(ctx, "traffic", "", false); err != nil || b.version != "v1" || b.id != "b-v1" {
		t.Fatalf("first read: %+v %v", b, err)
	}
	now = now.Add(2 * time.Second) // stale: answered from memory, read again behind
	done := make(chan build, 1)
	go func() { b, _ := a.get(ctx, "traffic", "", false); done <- b }()
	select {
	case b := <-done:
		if b.version != "v1" {
			t.Fatalf("stale read answered %+v, want v1 from memory", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a stale entry waited for the registry")
	}
	reg.gate <- struct{}{} // the background read completes
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if b, _ := a.get(ctx, "traffic", "", false); b.version == "v2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the background read never replaced the entry")
		}
	}
	if n := reg.reads.Load(); n != 2 {
		t.Fatalf("%d registry reads, want 2 (one in the background)", n)
	}
	now = now.Add(11 * time.Second) // too old: read in the foreground
	reg.gate <- struct{}{}
	if b, _ := a.get(ctx, "traffic", "", false); b.version != "v3" {
		t.Fatalf("an entry ten refreshes old answered %+v, want the registry's v3", b)
	}
}
