package cqlstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/gocql/gocql"
	"github.com/scylladb/gocqlx/v2"
	"github.com/scylladb/gocqlx/v2/migrate"

	"github.com/sextant-analytics/sextant/pkg/cqlstore"
	"github.com/sextant-analytics/sextant/pkg/viewstore"
	"github.com/sextant-analytics/sextant/pkg/viewstore/viewstoretest"
)

// The tests run against the cluster in SEXTANT_CQL_HOSTS (host:port,…),
// in keyspace sextant_test, which TestMain migrates once. Tests use random
// namespaces and keys, so runs can share the keyspace.

const testKeyspace = "sextant_test"

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

func TestMeta(t *testing.T) {
	s := open(t)
	ctx := t.Context()
	// A base of our own keeps runs apart: kinds are base+"property/" and
	// so on.
	base := "t" + randomName()
	k := func(s string) []byte { return []byte(base + s) }
	entries := map[string]string{
		"property/1":           "p1",
		"property/2":           "p2",
		"property/20":          "p20",
		"property/b":           "pb",
		"property/\xff":        "pff",
		"property/\xff\xff":    "pffff",
		"property/\x00":        "p00",
		"propertyX/1":          "x1",
		"property":             "bare",
		"projection/active/tr": "v1",
		"apikey/abc":           "key",
		"property/empty":       "",
	}
	t.Cleanup(func() {
		for key := range entries {
			_ = s.Delete(context.Background(), k(key))
		}
	})
	for key, v := range entries {
		if err := s.Put(ctx, k(key), []byte(v)); err != nil {
			t.Fatalf("Put(%q): %v", key, err)
		}
	}

	t.Run("Get", func(t *testing.T) {
		for key, want := range entries {
			got, err := s.Get(ctx, k(key))
			if err != nil {
				t.Errorf("Get(%q): %v", key, err)
			} else if string(got) != want || got == nil {
				t.Errorf("Get(%q) = %q, want %q", key, got, want)
			}
		}
		for _, key := range []string{"property/3", "property/", "propert", "nothing", "property/1/x"} {
			if _, err := s.Get(ctx, k(key)); !errors.Is(err, viewstore.ErrNotFound) {
				t.Errorf("Get(%q) = %v, want ErrNotFound", key, err)
			}
		}
		if _, err := s.Get(ctx, nil); !errors.Is(err, viewstore.ErrNotFound) {
			t.Errorf("Get(empty key) = %v, want ErrNotFound", err)
		}
	})

	scan := func(t *testing.T, prefix []byte) []string {
		t.Helper()
		var keys []string
		err := s.Scan(ctx, prefix, func(key, value []byte) error {
			if !bytes.HasPrefix(key, prefix) {
				t.Errorf("Scan(%q): key %q outside the prefix", prefix, key)
			}
			if kk := string(key); strings.HasPrefix(kk, base) {
				if want, ok := entries[kk[len(base):]]; !ok || want != string(value) {
					t.Errorf("Scan(%q): %q = %q, want %q", prefix, key, value, want)
				}
			}
			keys = append(keys, string(key))
			return nil
		})
		if err != nil {
			t.Fatalf("Scan(%q): %v", prefix, err)
		}
		if !slices.IsSorted(keys) {
			t.Errorf("Scan(%q): keys not in order: %q", prefix, keys)
		}
		return keys
	}
	want := func(keys ...string) []string {
		var out []string
		for _, key := range keys {
			out = append(out, base+key)
		}
		return out
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"property/", want("property/\x00", "property/1", "property/2", "property/20", "property/b", "property/empty", "property/\xff", "property/\xff\xff")},
		{"property/2", want("property/2", "property/20")},
		{"property/\xff", want("property/\xff", "property/\xff\xff")},
		{"property/\xff\xff", want("property/\xff\xff")},
		{"property/3", nil},
		{"propertyX/", want("propertyX/1")},
		{"projection/", want("projection/active/tr")},
		{"projection/active/", want("projection/active/tr")},
		// No slash: keys of several kinds, whole-table path.
		{"property", want("property", "property/\x00", "property/1", "property/2", "property/20", "property/b", "property/empty", "property/\xff", "property/\xff\xff", "propertyX/1")},
		{"proj", want("projection/active/tr")},
		{"", want("apikey/abc", "projection/active/tr", "property", "property/\x00", "property/1", "property/2", "property/20", "property/b", "property/empty", "property/\xff", "property/\xff\xff", "propertyX/1")},
	} {
		t.Run(fmt.Sprintf("Scan %q", tc.prefix), func(t *testing.T) {
			got := scan(t, k(tc.prefix))
			if !slices.Equal(got, tc.want) {
				t.Errorf("Scan(%q) = %q, want %q", tc.prefix, got, tc.want)
			}
		})
	}
	t.Run("Scan all", func(t *testing.T) {
		// Other runs' keys may be there too; ours must be, in order.
		var ours []string
		for _, key := range scan(t, nil) {
			if strings.HasPrefix(key, base) {
				ours = append(ours, key)
			}
		}
		if len(ours) != len(entries) {
			t.Errorf("Scan(all): %d of our keys, want %d", len(ours), len(entries))
		}
	})
	t.Run("Scan stops", func(t *testing.T) {
		for _, prefix := range []string{"property/", "property"} {
			stop := errors.New("stop")
			calls := 0
			err := s.Scan(ctx, k(prefix), func(key, value []byte) error {
				calls++
				if calls == 2 {
					return stop
				}
				return nil
			})
			if err != stop || calls != 2 {
				t.Errorf("Scan(%q): %v after %d calls, want fn's error after 2", prefix, err, calls)
			}
		}
	})
	t.Run("overwrite and delete", func(t *testing.T) {
		if err := s.Put(ctx, k("property/1"), []byte("new")); err != nil {
			t.Fatal(err)
		}
		entries["property/1"] = "new"
		if got, err := s.Get(ctx, k("property/1")); err != nil || string(got) != "new" {
			t.Errorf("Get after overwrite = %q, %v", got, err)
		}
		if err := s.Delete(ctx, k("property/2")); err != nil {
			t.Fatal(err)
		}
		delete(entries, "property/2")
		if _, err := s.Get(ctx, k("property/2")); !errors.Is(err, viewstore.ErrNotFound) {
			t.Errorf("Get after Delete = %v, want ErrNotFound", err)
		}
		if err := s.Delete(ctx, k("property/never")); err != nil {
			t.Errorf("Delete of an absent key: %v", err)
		}
		if got := scan(t, k("property/2")); !slices.Equal(got, want("property/20")) {
			t.Errorf("Scan after Delete = %q", got)
		}
		if err := s.Put(ctx, nil, []byte("x")); err == nil {
			t.Error("Put(empty key) succeeded")
		}
	})
	t.Run("closed", func(t *testing.T) {
		s2 := open(t)
		_ = s2.Close()
		if _, err := s2.Get(ctx, k("property/1")); !errors.Is(err, cqlstore.ErrClosed) {
			t.Errorf("Get after Close = %v, want ErrClosed", err)
		}
		if err := s2.Put(ctx, k("property/1"), nil); !errors.Is(err, cqlstore.ErrClosed) {
			t.Errorf("Put after Close = %v, want ErrClosed", err)
		}
		if err := s2.Close(); err != nil {
			t.Errorf("second Close: %v", err)
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
