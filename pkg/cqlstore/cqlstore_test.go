package cqlstore_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/gocql/gocql"
	"github.com/scylladb/gocqlx/v2"
	"github.com/scylladb/gocqlx/v2/migrate"

	"github.com/sextant-analytics/sextant/pkg/cqlstore"
	"github.com/sextant-analytics/sextant/pkg/metadata"
	"github.com/sextant-analytics/sextant/pkg/metadata/metadatatest"
	"github.com/sextant-analytics/sextant/pkg/seal"
	"github.com/sextant-analytics/sextant/pkg/seal/sealtest"
	"github.com/sextant-analytics/sextant/pkg/viewstore"
	"github.com/sextant-analytics/sextant/pkg/viewstore/viewstoretest"
)

// The tests run against the cluster in SEXTANT_CQL_HOSTS (host:port,…),
// in keyspace sextant_test (or SEXTANT_CQL_TEST_KEYSPACE: a branch with
// other migrations than the shared keyspace's), which TestMain migrates
// once. Tests use random namespaces and keys, so runs can share the
// keyspace.

var testKeyspace = cmp.Or(os.Getenv("SEXTANT_CQL_TEST_KEYSPACE"), "sextant_test")

func hosts() []string {
	var out []string
	for _, h := range strings.Split(os.Getenv("SEXTANT_CQL_HOSTS"), ",") {
		if h = strings.TrimSpace(h); h != "" {
			out = append(out, h)
		}
	}
	return out
}

func baseConfig() cqlstore.Config {
	return cqlstore.Config{Hosts: hosts(), Keyspace: testKeyspace, Timeout: 10 * time.Second}
}

func TestMain(m *testing.M) {
	if len(hosts()) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		err := cqlstore.Migrate(ctx, baseConfig(), cqlstore.KeyspaceSpec{ReplicationFactor: 1})
		cancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, "migrate test keyspace:", err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

// config skips the test without a cluster.
func config(tb testing.TB) cqlstore.Config {
	tb.Helper()
	if len(hosts()) == 0 {
		tb.Skip("SEXTANT_CQL_HOSTS is not set")
	}
	return baseConfig()
}

func open(tb testing.TB) *cqlstore.Store {
	tb.Helper()
	s, err := cqlstore.Open(context.Background(), config(tb))
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	cfg := config(t)
	viewstoretest.Run(t, func(t *testing.T) func() viewstore.Store {
		return func() viewstore.Store {
			s, err := cqlstore.Open(t.Context(), cfg)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			return s
		}
	})
}

func randomName() string { return strings.ToLower(rand.Text()[:12]) }

// TestMetadataConformance runs the metadata suite on the meta table;
// every subtest keeps to keys of its own random base.
func TestMetadataConformance(t *testing.T) {
	cfg := config(t)
	metadatatest.Run(t, func(t *testing.T) func() metadata.Store {
		return func() metadata.Store {
			s, err := cqlstore.Open(t.Context(), cfg)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			return s
		}
	})
}

// migrations reads the migration bookkeeping of the test keyspace.
func migrations(t *testing.T) map[string]string {
	t.Helper()
	c := gocql.NewCluster(hosts()...)
	c.Keyspace = testKeyspace
	c.ProtoVersion = 4
	c.Timeout = 10 * time.Second
	sess, err := c.CreateSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	out := map[string]string{}
	iter := sess.Query(`SELECT name, checksum, done, end_time FROM gocqlx_migrate`).Iter()
	var name, sum string
	var done int
	var end time.Time
	for iter.Scan(&name, &sum, &done, &end) {
		out[name] = fmt.Sprintf("%s/%d/%s", sum, done, end.Format(time.RFC3339Nano))
	}
	if err := iter.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMigrateTwice(t *testing.T) {
	cfg := config(t)
	before := migrations(t)
	if len(before) == 0 {
		t.Fatal("no migrations recorded")
	}
	for range 2 {
		if err := cqlstore.Migrate(t.Context(), cfg, cqlstore.KeyspaceSpec{ReplicationFactor: 1}); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
	}
	if after := migrations(t); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("Migrate changed the migration records:\nbefore %v\nafter  %v", before, after)
	}
}

// TestUpgradeFromInitialSchema migrates a keyspace that has only the
// initial migration, as every keyspace made before 0002 has, with a
// progress row written then: Migrate applies the rest, and the old row
// reads with Excluded 0.
func TestUpgradeFromInitialSchema(t *testing.T) {
	cfg := config(t)
	cfg.Keyspace = "sextant_upgrade_" + randomName()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()

	c := gocql.NewCluster(hosts()...)
	c.ProtoVersion = 4
	c.Timeout = 60 * time.Second
	admin, err := c.CreateSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close) // after the keyspace's drop, registered next
	if err := admin.Query(`CREATE KEYSPACE ` + cfg.Keyspace + ` WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`).WithContext(ctx).Exec(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := admin.Query(`DROP KEYSPACE IF EXISTS ` + cfg.Keyspace).Exec(); err != nil {
			t.Errorf("drop keyspace %s: %v", cfg.Keyspace, err)
		}
	})
	initial, err := os.ReadFile("migrations/0001_initial.cql")
	if err != nil {
		t.Fatal(err)
	}
	c.Keyspace = cfg.Keyspace
	sess, err := gocqlx.WrapSession(c.CreateSession())
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := migrate.FromFS(ctx, sess, fstest.MapFS{"0001_initial.cql": {Data: initial}}); err != nil {
		t.Fatalf("apply the initial migration: %v", err)
	}
	wm := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if err := sess.Query(`INSERT INTO progress (ns, part, next, applied, duplicates, watermark) VALUES (?, ?, ?, ?, ?, ?)`, nil).
		Bind("traffic/v1", int32(2), int64(40), int64(30), int64(10), wm).ExecRelease(); err != nil {
		t.Fatal(err)
	}

	if s, err := cqlstore.Open(ctx, cfg); !errors.Is(err, cqlstore.ErrNotMigrated) || !strings.Contains(err.Error(), "lacks migration") {
		if s != nil {
			_ = s.Close()
		}
		t.Fatalf("Open before the migration = %v, want an error saying to run `sextant migrate`", err)
	}
	if err := cqlstore.Migrate(ctx, cfg, cqlstore.KeyspaceSpec{}); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	s, err := cqlstore.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open after the migration: %v", err)
	}
	defer s.Close()
	want := viewstore.Progress{Partition: 2, Next: 40, Applied: 30, Duplicates: 10, Watermark: wm}
	if pr, _, err := s.LoadPartition(ctx, "traffic/v1", 2); err != nil || pr != want {
		t.Errorf("LoadPartition of a row without excluded = %+v, %v; want %+v", pr, err, want)
	}
	if prs, err := s.ListProgress(ctx, "traffic/v1"); err != nil || len(prs) != 1 || prs[0] != want {
		t.Errorf("ListProgress of a row without excluded = %+v, %v; want [%+v]", prs, err, want)
	}
	want.Next, want.Excluded = 45, 5
	if err := s.Commit(ctx, "traffic/v1", viewstore.Checkpoint{Progress: want}); err != nil {
		t.Fatal(err)
	}
	if pr, _, err := s.LoadPartition(ctx, "traffic/v1", 2); err != nil || pr != want {
		t.Errorf("LoadPartition after a commit = %+v, %v; want %+v", pr, err, want)
	}
}

func TestOpenMissingKeyspace(t *testing.T) {
	cfg := config(t)
	cfg.Keyspace = "sextant_missing_" + randomName()
	s, err := cqlstore.Open(t.Context(), cfg)
	if err == nil {
		_ = s.Close()
		t.Fatal("Open of a missing keyspace succeeded")
	}
	if !errors.Is(err, cqlstore.ErrNotMigrated) || !strings.Contains(err.Error(), "sextant migrate") {
		t.Errorf("Open of a missing keyspace: %v; want ErrNotMigrated, a hint to run `sextant migrate`", err)
	}
}

// TestOpenKeyspaceWithoutTables: a keyspace that exists with no tables
// (made by hand, or by a migrate that failed) is ErrNotMigrated, and the
// error says it has no schema.
func TestOpenKeyspaceWithoutTables(t *testing.T) {
	cfg := config(t)
	cfg.Keyspace = "sextant_empty_" + randomName()
	c := gocql.NewCluster(hosts()...)
	c.ProtoVersion = 4
	c.Timeout = 60 * time.Second
	admin, err := c.CreateSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	if err := admin.Query(`CREATE KEYSPACE ` + cfg.Keyspace + ` WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`).WithContext(t.Context()).Exec(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := admin.Query(`DROP KEYSPACE IF EXISTS ` + cfg.Keyspace).Exec(); err != nil {
			t.Errorf("drop keyspace %s: %v", cfg.Keyspace, err)
		}
	})
	s, err := cqlstore.Open(t.Context(), cfg)
	if err == nil {
		_ = s.Close()
		t.Fatal("Open of a keyspace without tables succeeded")
	}
	if !errors.Is(err, cqlstore.ErrNotMigrated) || !strings.Contains(err.Error(), "has no schema") {
		t.Errorf("Open of a keyspace without tables: %v; want ErrNotMigrated, saying it has no schema", err)
	}
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  cqlstore.Config
		want string
	}{
		{"no hosts", cqlstore.Config{}, "no hosts"},
		{"bad keyspace", cqlstore.Config{Hosts: []string{"127.0.0.1:1"}, Keyspace: "a-b"}, "invalid keyspace"},
		{"bad consistency", cqlstore.Config{Hosts: []string{"127.0.0.1:1"}, Consistency: "MOST"}, "consistency"},
		{"serial consistency", cqlstore.Config{Hosts: []string{"127.0.0.1:1"}, Consistency: "serial"}, "consistency"},
		{"bad port", cqlstore.Config{Hosts: []string{"127.0.0.1:99999"}, Consistency: "local_one"}, "port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cqlstore.Open(t.Context(), tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open: %v, want an error about %q", err, tc.want)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		_, err := cqlstore.Open(ctx, cqlstore.Config{Hosts: []string{"127.0.0.1:1"}, Timeout: time.Second})
		if err == nil {
			t.Fatal("Open of an unreachable cluster succeeded")
		}
	})
}

// BenchmarkCommit commits checkpoints of 50 additions of ~2 KB to 25
// properties, with 50 state entries and 5 watermarks, as a projection
// checkpoint of a busy partition writes them.
func BenchmarkCommit(b *testing.B) {
	s := open(b)
	ctx := b.Context()
	ns := viewstore.Namespace("bench/" + randomName())
	data := bytes.Repeat([]byte("v"), 2000)
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).Unix()
	adds := 0
	for i := 0; b.Loop(); i++ {
		hour := start + int64(i/20)*3600
		cp := viewstore.Checkpoint{Progress: viewstore.Progress{Partition: 1, Next: int64(i+1) * 1000, Applied: int64(i+1) * 1000}}
		for d := range 50 {
			cp.Additions = append(cp.Additions, viewstore.Addition{Property: fmt.Sprintf("site-%d", d%25), Hour: hour - int64(d/25)*3600,
				Partition: 1, Start: int64(i) * 1000, End: cp.Progress.Next, Block: data})
			cp.State = append(cp.State, viewstore.KV{Key: fmt.Sprintf("seen/%d/%d", i, d), Value: []byte("1")})
		}
		for d := range 5 {
			cp.Watermarks = append(cp.Watermarks, viewstore.Watermark{Property: fmt.Sprintf("site-%d", d), Partition: 1, Offset: cp.Progress.Next})
		}
		if err := s.Commit(ctx, ns, cp); err != nil {
			b.Fatal(err)
		}
		adds += len(cp.Additions)
	}
	b.ReportMetric(float64(adds)/b.Elapsed().Seconds(), "additions/s")
}

// BenchmarkScanAdditions scans a day of a property's additions: 4
// partitions checkpointing every 3 minutes (1,920 additions of 2 KB).
func BenchmarkScanAdditions(b *testing.B) {
	s := open(b)
	ctx := b.Context()
	ns := viewstore.Namespace("bench/" + randomName())
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).Unix()
	data := bytes.Repeat([]byte("v"), 2000)
	const perHour = 20
	for p := range int32(4) {
		var adds []viewstore.Addition
		for h := range int64(24) {
			for c := range int64(perHour) {
				n := h*perHour + c
				adds = append(adds, viewstore.Addition{Property: "site", Hour: start + h*3600, Partition: p, Start: n * 1000, End: (n + 1) * 1000, Block: data})
			}
		}
		// Committed in one go: the additions' Ends need not match here.
		if err := s.Commit(ctx, ns, viewstore.Checkpoint{Progress: viewstore.Progress{Partition: p, Next: 24 * perHour * 1000}, Additions: adds}); err != nil {
			b.Fatal(err)
		}
	}
	const want = 4 * 24 * perHour
	total := 0
	for b.Loop() {
		n := 0
		if err := s.ScanAdditions(ctx, ns, "site", start, start+86400, func(viewstore.Addition) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
		if n != want {
			b.Fatalf("scanned %d additions, want %d", n, want)
		}
		total += n
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "additions/s")
}

// BenchmarkScanBlocks scans 30 days of hour blocks of 8 KB, as a 30-day
// report does.
func BenchmarkScanBlocks(b *testing.B) {
	s := open(b)
	ctx := b.Context()
	ns := viewstore.Namespace("bench/" + randomName())
	const days = 30
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).Unix()
	data := bytes.Repeat([]byte("v"), 8000)
	cover := make([]int64, 16)
	for i := range cover {
		cover[i] = int64(i) * 1_000_000
	}
	for h := range int64(days * 24) {
		if err := s.PutBlock(ctx, ns, viewstore.Block{Property: "site", Kind: viewstore.HourBlock, Bucket: start + h*3600, Cover: cover, Data: data}); err != nil {
			b.Fatal(err)
		}
	}
	total := 0
	for b.Loop() {
		n := 0
		if err := s.ScanBlocks(ctx, ns, "site", viewstore.HourBlock, start, start+days*86400, func(viewstore.Block) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
		if n != days*24 {
			b.Fatalf("scanned %d blocks, want %d", n, days*24)
		}
		total += n
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "blocks/s")
}

// TestSurvivesRestart commits in a loop while the cluster restarts (run it
// with SEXTANT_CQL_RESTART_TEST=1 and `tilt/stack.sh restart-cassandra`
// meanwhile): the same Store must work again once the cluster is back.
func TestSurvivesRestart(t *testing.T) {
	cfg := config(t)
	if os.Getenv("SEXTANT_CQL_RESTART_TEST") == "" {
		t.Skip("set SEXTANT_CQL_RESTART_TEST=1 and restart the cluster while it runs")
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	s, err := cqlstore.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ns := viewstore.Namespace("test/" + randomName())
	var down time.Time
	deadline := time.Now().Add(5 * time.Minute)
	for n := int64(1); time.Now().Before(deadline); n++ {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		err := s.Commit(ctx, ns, viewstore.Checkpoint{
			Progress:  viewstore.Progress{Partition: 0, Next: n},
			Additions: []viewstore.Addition{{Property: "p", Hour: 3600 * n, Start: n - 1, End: n, Block: []byte("v")}},
		})
		if err == nil {
			var pr viewstore.Progress
			if pr, _, err = s.LoadPartition(ctx, ns, 0); err == nil && pr.Next != n {
				err = fmt.Errorf("progress %d, want %d", pr.Next, n)
			}
		}
		cancel()
		switch {
		case err != nil && down.IsZero():
			down = time.Now()
			t.Logf("commit %d failed: %v", n, err)
		case err != nil:
		case !down.IsZero():
			t.Logf("commit %d succeeded %v after the first failure", n, time.Since(down).Round(time.Second))
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	if down.IsZero() {
		t.Fatal("the cluster never went away")
	}
	t.Fatalf("no commit succeeded in %v after the first failure", time.Since(down).Round(time.Second))
}

func TestKeysConformance(t *testing.T) {
	s, err := cqlstore.Open(t.Context(), config(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer func() { _ = s.Close() }()
	sealtest.Run(t, s)
}

// BenchmarkSubjectKeyNew is the cost of a new visitor's key, 32 callers at
// once (collect's concurrent batches).
func BenchmarkSubjectKeyNew(b *testing.B) {
	cfg := config(b)
	s, err := cqlstore.Open(b.Context(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	prop := "bench-" + randomName()
	var n atomic.Int64
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := seal.SubjectKey(context.Background(), s, prop, seal.Client(fmt.Sprint(n.Add(1)))); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
