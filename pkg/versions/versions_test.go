package versions_test

import (
	"context"
	"errors"
	"testing"

	"github.com/sextant-analytics/sextant/pkg/pebblestore"
	"github.com/sextant-analytics/sextant/pkg/versions"
)

func TestRegistry(t *testing.T) {
	ctx := context.Background()
	st, err := pebblestore.Open(t.TempDir(), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r := versions.NewRegistry(st, map[string]string{"traffic": "v1"})
	check := func(wantActive string, wantHistory string) {
		t.Helper()
		a, err := r.Active(ctx, "traffic")
		if err != nil || a != wantActive {
			t.Fatalf("active %q %v, want %q", a, err, wantActive)
		}
		h, _ := r.History(ctx, "traffic")
		if got := join(h); got != wantHistory {
			t.Fatalf("history %s, want %s", got, wantHistory)
		}
	}
	check("v1", "v1")
	if _, err := r.Rollback(ctx, "traffic"); err == nil {
		t.Fatal("rollback with nothing before v1 must fail")
	}
	if vs, _ := r.List(ctx, "traffic"); len(vs) != 1 || vs[0].Version != "v1" || vs[0].State != versions.Running {
		t.Fatalf("default version not listed: %+v", vs)
	}
	if err := r.Put(ctx, versions.Version{Name: "traffic", Version: "v2", State: versions.Running, From: versions.From{Offsets: map[int32]int64{3: 7}}, Build: "b-1"}); err != nil {
		t.Fatal(err)
	}
	v2, err := r.Get(ctx, "traffic", "v2")
	if err != nil || v2.From.Offsets[3] != 7 || v2.Build != "b-1" {
		t.Fatalf("get v2 %+v %v", v2, err)
	}
	if err := r.Activate(ctx, "traffic", "v2"); err != nil {
		t.Fatal(err)
	}
	check("v2", "v1,v2")
	if p, _ := r.Previous(ctx, "traffic"); p != "v1" {
		t.Fatalf("previous %q", p)
	}
	if back, err := r.Rollback(ctx, "traffic"); err != nil || back != "v1" {
		t.Fatalf("rollback %q %v", back, err)
	}
	check("v1", "v1")
	if vs, _ := r.List(ctx, "traffic"); len(vs) != 2 || vs[0].Version != "v1" || vs[1].Version != "v2" {
		t.Fatalf("list %+v", vs)
	}
	if err := r.Delete(ctx, "traffic", "v2"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Get(ctx, "traffic", "v2"); !errors.Is(err, versions.ErrNotFound) {
		t.Fatalf("deleted version: %v", err)
	}
	// The default version, once deleted, stays deleted.
	if err := r.Delete(ctx, "traffic", "v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Get(ctx, "traffic", "v1"); !errors.Is(err, versions.ErrNotFound) {
		t.Fatalf("deleted default version: %v", err)
	}
	if vs, _ := r.List(ctx, "traffic"); len(vs) != 0 {
		t.Fatalf("deleted versions listed: %+v", vs)
	}
}

func join(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ","
		}
		out += x
	}
	return out
}

// TestStart: a projection without history starts with the version given,
// as its only one; one with history keeps it.
func TestStart(t *testing.T) {
	ctx := context.Background()
	st, err := pebblestore.Open(t.TempDir(), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r := versions.NewRegistry(st, map[string]string{"traffic": "v1"})
	if ok, err := r.Start(ctx, "traffic", "v5"); !ok || err != nil {
		t.Fatalf("start: %v %v", ok, err)
	}
	if a, _ := r.Active(ctx, "traffic"); a != "v5" {
		t.Fatalf("active %s", a)
	}
	if h, _ := r.History(ctx, "traffic"); len(h) != 1 {
		t.Fatalf("history %v", h)
	}
	// v5 runs, the default does not.
	if vs, _ := r.List(ctx, "traffic"); len(vs) != 1 || vs[0].Version != "v5" || vs[0].State != versions.Running || vs[0].Build == "" {
		t.Fatalf("versions %+v", vs)
	}
	if ok, _ := r.Start(ctx, "traffic", "v2"); ok {
		t.Fatal("a second start took")
	}
	if err := r.Activate(ctx, "traffic", "v3"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := r.Start(ctx, "traffic", "v2"); ok {
		t.Fatal("start after an activation took")
	}
	if a, _ := r.Active(ctx, "traffic"); a != "v3" {
		t.Fatalf("active %s", a)
	}
}

func TestNewBuild(t *testing.T) {
	a, b := versions.NewBuild(), versions.NewBuild()
	if len(a) != 16 || a == b {
		t.Fatalf("builds %q and %q: want two distinct 16-digit ids", a, b)
	}
}
