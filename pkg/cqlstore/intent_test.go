package cqlstore

import (
	"cmp"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

// TestCommitIntent makes commits fail after their intent was written, at
// each later step, and checks that LoadPartition reports the intent until
// a commit succeeds. (TestMain of package cqlstore_test migrates the
// keyspace: sextant_test, or SEXTANT_CQL_TEST_KEYSPACE.)
func TestCommitIntent(t *testing.T) {
	var hosts []string
	for _, h := range strings.Split(os.Getenv("SEXTANT_CQL_HOSTS"), ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	if len(hosts) == 0 {
		t.Skip("SEXTANT_CQL_HOSTS is not set")
	}
	ctx := t.Context()
	s, err := Open(ctx, Config{Hosts: hosts, Keyspace: cmp.Or(os.Getenv("SEXTANT_CQL_TEST_KEYSPACE"), "sextant_test"), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ns := viewstore.Namespace("test/intent-" + strings.ToLower(time.Now().Format("150405.000000000")))
	defer func() { _ = s.DropNamespace(context.Background(), ns) }()

	cp := func(start, end int64) viewstore.Checkpoint {
		return viewstore.Checkpoint{
			Progress:   viewstore.Progress{Partition: 4, Next: end, Applied: end},
			Additions:  []viewstore.Addition{{Property: "p", Hour: 3600, Partition: 4, Start: start, End: end, Block: []byte("a")}},
			State:      []viewstore.KV{{Key: "k", Value: []byte("v")}},
			Watermarks: []viewstore.Watermark{{Property: "p", Partition: 4, Offset: end}},
		}
	}
	load := func(what string, wantNext, wantIntent int64) {
		t.Helper()
		pr, _, err := s.LoadPartition(ctx, ns, 4)
		if err != nil {
			t.Fatal(err)
		}
		if pr.Next != wantNext || pr.Intent != wantIntent {
			t.Errorf("%s: Next %d, Intent %d; want %d, %d", what, pr.Next, pr.Intent, wantNext, wantIntent)
		}
		prs, err := s.ListProgress(ctx, ns)
		if err != nil || len(prs) != 1 || prs[0].Next != wantNext || prs[0].Intent != wantIntent {
			t.Errorf("%s: ListProgress = %+v, %v; want Next %d, Intent %d", what, prs, err, wantNext, wantIntent)
		}
	}
	injected := errors.New("injected failure")
	fail := func(step int) {
		s.commitHook = func(n int) error {
			if n == step {
				return injected
			}
			return nil
		}
	}

	// A first commit that fails: a progress row with only the intent.
	fail(1)
	if err := s.Commit(ctx, ns, cp(0, 10)); !errors.Is(err, injected) {
		t.Fatalf("Commit = %v, want the injected failure", err)
	}
	load("first commit failed before its additions", 0, 10)
	for step := 2; step <= 3; step++ {
		fail(step)
		if err := s.Commit(ctx, ns, cp(0, 10)); !errors.Is(err, injected) {
			t.Fatalf("Commit = %v, want the injected failure", err)
		}
		load("first commit failed at a later step", 0, 10)
	}
	s.commitHook = nil
	if err := s.Commit(ctx, ns, cp(0, 10)); err != nil {
		t.Fatal(err)
	}
	load("after a successful commit", 10, 0)

	// A later one that fails after its additions: they are stored past
	// the progress, which the intent reports.
	fail(3)
	if err := s.Commit(ctx, ns, cp(10, 25)); !errors.Is(err, injected) {
		t.Fatalf("Commit = %v, want the injected failure", err)
	}
	load("second commit failed after its state", 10, 25)
	n := 0
	if err := s.ScanAdditions(ctx, ns, "p", 0, 7200, func(a viewstore.Addition) error {
		n++
		return nil
	}); err != nil || n != 2 {
		t.Errorf("ScanAdditions: %d additions, %v; want 2 (one past the progress)", n, err)
	}
	// A commit without additions or state writes no intent, and resets it.
	s.commitHook = nil
	if err := s.Commit(ctx, ns, viewstore.Checkpoint{Progress: viewstore.Progress{Partition: 4, Next: 25, Applied: 25}}); err != nil {
		t.Fatal(err)
	}
	load("after a commit without additions", 25, 0)
	// A commit failing right after the intent reports it too.
	fail(1)
	if err := s.Commit(ctx, ns, cp(25, 30)); !errors.Is(err, injected) {
		t.Fatalf("Commit = %v, want the injected failure", err)
	}
	load("third commit failed", 25, 30)
	s.commitHook = nil
	if err := s.Commit(ctx, ns, cp(25, 30)); err != nil {
		t.Fatal(err)
	}
	load("after the third commit", 30, 0)
}
