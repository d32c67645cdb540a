package pebblestore

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/sextant-analytics/sextant/pkg/metadata"
	"github.com/sextant-analytics/sextant/pkg/metadata/metadatatest"
	"github.com/sextant-analytics/sextant/pkg/pebblelock"
	"github.com/sextant-analytics/sextant/pkg/viewstore"
	"github.com/sextant-analytics/sextant/pkg/viewstore/viewstoretest"
)

func openTest(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	viewstoretest.Run(t, func(t *testing.T) func() viewstore.Store {
		dir := t.TempDir()
		return func() viewstore.Store { return openTest(t, dir) }
	})
}

func TestMetadataConformance(t *testing.T) {
	metadatatest.Run(t, func(t *testing.T) func() metadata.Store {
		dir := t.TempDir()
		return func() metadata.Store { return openTest(t, dir) }
	})
}

// TestMetaApartFromViews: meta keys and projection data never see each
// other, whatever their bytes, and the empty meta key an older version
// stored is neither read nor scanned.
func TestMetaApartFromViews(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := openTest(t, dir)
	defer func() { _ = s.Close() }()

	// An older version's empty key, written underneath the API.
	if err := s.db.Set(metaKey(nil), []byte("legacy"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, []byte("properties/p1"), []byte("one")); err != nil {
		t.Fatal(err)
	}
	ns := viewstore.Namespace("properties")
	if err := s.Commit(ctx, ns, viewstore.Checkpoint{
		Progress:  viewstore.Progress{Partition: 0, Next: 1},
		Additions: []viewstore.Addition{{Property: "p1", Hour: 0, Partition: 0, Start: 0, End: 1, Block: []byte("addition")}},
		State:     []viewstore.KV{{Key: "k", Value: []byte("v")}},
	}); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := s.Scan(ctx, nil, func(k, v []byte) error {
		got = append(got, string(k)+"="+string(v))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"properties/p1=one"}; !slices.Equal(got, want) {
		t.Errorf("Scan(all) = %q, want %q", got, want)
	}
	if v, err := s.Get(ctx, nil); !errors.Is(err, metadata.ErrNotFound) {
		t.Errorf("Get(empty key) = %q, %v; want ErrNotFound", v, err)
	}
	pr, state, err := s.LoadPartition(ctx, ns, 0)
	if err != nil || pr.Next != 1 || len(state) != 1 {
		t.Errorf("LoadPartition after meta writes: %+v %v %v", pr, state, err)
	}
}

// TestProgressWithoutExcluded reads progress values written before
// Progress.Excluded existed (value version 1): Excluded reads as 0.
func TestProgressWithoutExcluded(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := openTest(t, dir)
	ns := viewstore.Namespace("traffic/v1")
	wm := time.Date(2026, 3, 1, 12, 0, 0, 5, time.UTC)
	// The version 1 encoding, as the store wrote it.
	v1 := []byte{progressV1}
	for _, n := range []int64{40, 30, 10} { // Next, Applied, Duplicates
		v1 = binary.AppendVarint(v1, n)
	}
	v1 = appendTime(v1, wm)
	if err := s.db.Set(progressKey(nil, ns, 2), v1, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	want := viewstore.Progress{Partition: 2, Next: 40, Applied: 30, Duplicates: 10, Watermark: wm}
	pr, _, err := s.LoadPartition(ctx, ns, 2)
	if err != nil || pr != want {
		t.Fatalf("LoadPartition of a version 1 value = %+v, %v; want %+v", pr, err, want)
	}
	if prs, err := s.ListProgress(ctx, ns); err != nil || len(prs) != 1 || prs[0] != want {
		t.Fatalf("ListProgress of a version 1 value = %+v, %v; want [%+v]", prs, err, want)
	}
	// A commit rewrites it in the current version, with Excluded.
	want.Next, want.Excluded = 45, 5
	if err := s.Commit(ctx, ns, viewstore.Checkpoint{Progress: want}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir)
	defer func() { _ = s.Close() }()
	if pr, _, err := s.LoadPartition(ctx, ns, 2); err != nil || pr != want {
		t.Fatalf("LoadPartition after a commit = %+v, %v; want %+v", pr, err, want)
	}
	for _, bad := range [][]byte{
		{3, 0, 0, 0, 0, 0},            // unknown version
		{progressV1, 0, 0, 0},         // version 1 without its time
		{progressVersion, 0, 0, 0, 0}, // version 2 without its time
		append(bytes.Clone(v1), 0),    // trailing byte
	} {
		if pr, err := decodeProgress(bad, 0); err == nil {
			t.Errorf("decodeProgress(%x) = %+v, want an error", bad, pr)
		}
	}
}

// TestDropNamespaceKeepsMeta drops namespaces named like meta keys: the meta
// key space is untouched.
func TestDropNamespaceKeepsMeta(t *testing.T) {
	ctx := t.Context()
	s := openTest(t, t.TempDir())
	defer func() { _ = s.Close() }()
	for _, k := range []string{"", "a", "N", "properties/p1"} {
		if err := s.Put(ctx, []byte(cmp.Or(k, "\x00")), []byte("v")); err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(ctx, viewstore.Namespace(k), viewstore.Checkpoint{Progress: viewstore.Progress{Next: 1}}); err != nil {
			t.Fatal(err)
		}
		if err := s.DropNamespace(ctx, viewstore.Namespace(k)); err != nil {
			t.Fatalf("DropNamespace(%q): %v", k, err)
		}
		if prs, err := s.ListProgress(ctx, viewstore.Namespace(k)); err != nil || len(prs) != 0 {
			t.Errorf("ListProgress(%q) after the drop = %+v, %v", k, prs, err)
		}
	}
	for _, k := range []string{"", "a", "N", "properties/p1"} {
		if v, err := s.Get(ctx, []byte(cmp.Or(k, "\x00"))); err != nil || string(v) != "v" {
			t.Errorf("meta Get(%q) after dropping namespaces = %q, %v", k, v, err)
		}
	}
}

func TestEscapingIsPrefixFreeAndOrdered(t *testing.T) {
	strs := []string{"", "\x00", "\x00\x00", "\x00\x01", "\x00\xff", "\x01", "a", "a\x00", "a\x00b", "a\x00\x01", "a\x01", "ab", "b", "\xff", "\xff\x00"}
	for _, a := range strs {
		ea := appendEscaped(nil, a)
		got, rest, err := readEscaped(append(bytes.Clone(ea), 'X'))
		if err != nil || got != a || string(rest) != "X" {
			t.Errorf("readEscaped(esc(%q)) = %q, %q, %v", a, got, rest, err)
		}
		for _, b := range strs {
			eb := appendEscaped(nil, b)
			if a != b && bytes.HasPrefix(eb, ea) {
				t.Errorf("esc(%q) = %x is a prefix of esc(%q) = %x", a, ea, b, eb)
			}
			if want, got := strings.Compare(a, b), bytes.Compare(ea, eb); want != got {
				t.Errorf("order of %q vs %q: %d, escaped %d", a, b, want, got)
			}
		}
	}
	for _, bad := range []string{"", "a", "a\x00", "a\x00\x02", "a\x00\xffb"} {
		if _, _, err := readEscaped([]byte(bad)); err == nil {
			t.Errorf("readEscaped(%q) accepted", bad)
		}
	}
}

func TestKeyOrder(t *testing.T) {
	// Buckets and partitions, negative ones included, sort numerically.
	buckets := []int64{-1 << 62, -3600, -1, 0, 1, 3600, 1 << 40}
	for i := 1; i < len(buckets); i++ {
		a := appendBucket(nil, buckets[i-1])
		b := appendBucket(nil, buckets[i])
		if bytes.Compare(a, b) >= 0 {
			t.Errorf("bucket %d does not sort before %d", buckets[i-1], buckets[i])
		}
	}
	parts := []int32{-5, 0, 1, 255, 256, 1 << 30}
	for i := 1; i < len(parts); i++ {
		if bytes.Compare(appendPartition(nil, parts[i-1]), appendPartition(nil, parts[i])) >= 0 {
			t.Errorf("partition %d does not sort before %d", parts[i-1], parts[i])
		}
	}
}

func TestNegativeHoursAndPartitions(t *testing.T) {
	ctx := t.Context()
	s := openTest(t, t.TempDir())
	defer func() { _ = s.Close() }()
	ns := viewstore.Namespace("n")
	var adds []viewstore.Addition
	for _, h := range []int64{-7200, -3600, 0, 3600} {
		adds = append(adds, viewstore.Addition{Property: "p", Hour: h, Partition: -1, Start: -5, End: 1, Block: []byte(fmt.Sprint(h))})
	}
	if err := s.Commit(ctx, ns, viewstore.Checkpoint{Progress: viewstore.Progress{Partition: -1, Next: 1}, Additions: adds}); err != nil {
		t.Fatal(err)
	}
	for _, h := range []int64{-7200, -3600, 0, 3600} {
		if err := s.PutBlock(ctx, ns, viewstore.Block{Property: "p", Kind: viewstore.HourBlock, Bucket: h, Cover: []int64{-1, 1}}); err != nil {
			t.Fatal(err)
		}
	}
	var got []int64
	if err := s.ScanAdditions(ctx, ns, "p", -3600, 3600, func(a viewstore.Addition) error {
		if a.Partition != -1 || a.Start != -5 {
			t.Errorf("addition %+v", a)
		}
		got = append(got, a.Hour)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []int64{-3600, 0}) {
		t.Errorf("hours %v", got)
	}
	got = nil
	if err := s.ScanBlocks(ctx, ns, "p", viewstore.HourBlock, -3600, 3600, func(b viewstore.Block) error {
		if !slices.Equal(b.Cover, []int64{-1, 1}) {
			t.Errorf("block %+v", b)
		}
		got = append(got, b.Bucket)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []int64{-3600, 0}) {
		t.Errorf("buckets %v", got)
	}
	if err := s.DeleteAdditions(ctx, ns, "p", 0, -1, -4); err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := s.ListPending(ctx, ns, viewstore.ShardOf("p"), func(viewstore.PendingKey) error { n++; return nil }); err != nil || n != 3 {
		t.Errorf("ListPending after a delete: %d, %v; want 3", n, err)
	}
	prs, err := s.ListProgress(ctx, ns)
	if err != nil || len(prs) != 1 || prs[0].Partition != -1 {
		t.Errorf("ListProgress %+v %v", prs, err)
	}
}

func TestCloseWaitsForRunningScan(t *testing.T) {
	ctx := t.Context()
	s := openTest(t, t.TempDir())
	ns := viewstore.Namespace("n")
	if err := s.Commit(ctx, ns, viewstore.Checkpoint{Progress: viewstore.Progress{Next: 1}, Additions: []viewstore.Addition{{Property: "p", End: 1, Block: []byte("v")}}}); err != nil {
		t.Fatal(err)
	}
	inScan, release := make(chan struct{}), make(chan struct{})
	closed := make(chan error, 1)
	go func() {
		<-inScan
		closed <- s.Close()
	}()
	err := s.ScanAdditions(ctx, ns, "p", 0, 3600, func(viewstore.Addition) error {
		close(inScan)
		select {
		case err := <-closed:
			t.Errorf("Close returned %v while a scan was running", err)
		case <-time.After(50 * time.Millisecond):
		}
		// A new operation during Close fails instead of blocking.
		if _, err := s.Get(ctx, []byte("x")); !errors.Is(err, ErrClosed) {
			t.Errorf("Get during Close: %v, want ErrClosed", err)
		}
		close(release)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	<-release
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v, want nil", err)
	}
}

func TestOpenRejectsOtherLayout(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	if err := s.db.Set([]byte{tagVersion}, []byte{99}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(dir, Options{}); err == nil {
		_ = s.Close()
		t.Fatal("Open accepted an unknown layout version")
	}
}

// TestUpgradeFromLayout1 opens a store of key layout version 1 (cells):
// its projection data is deleted, its meta entries kept, the version is 2
// afterwards, and the upgrade is logged as a warning.
func TestUpgradeFromLayout1(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := openTest(t, dir)
	if err := s.Put(ctx, []byte("properties/p1"), []byte("kept")); err != nil {
		t.Fatal(err)
	}
	// A version 1 store: its version, a progress, a state entry, a
	// watermark and a cell ('c' esc(property) grain bucket esc(dims) part).
	ns := viewstore.Namespace("traffic/v1")
	b := s.db.NewBatch()
	cell := appendEscaped(nsPrefix(nil, ns, 'c'), "site")
	cell = appendPartition(appendEscaped(appendBucket(append(cell, 2), 3600), "country=DE"), 0)
	for _, kv := range [][2][]byte{
		{{tagVersion}, {layoutV1}},
		{progressKey(nil, ns, 0), encodeProgress(nil, &viewstore.Progress{Next: 10, Applied: 10})},
		{append(statePrefix(nil, ns, 0), "k"...), []byte("v")},
		{appendPartition(watermarkPrefix(nil, ns, "site"), 0), encodeWatermark(nil, &viewstore.Watermark{Offset: 10})},
		{cell, []byte("cell value")},
	} {
		if err := b.Set(kv[0], kv[1], nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	var logs bytes.Buffer
	s, err := Open(dir, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("Open of a version 1 store: %v", err)
	}
	defer func() { _ = s.Close() }()
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "offset 0") {
		t.Errorf("upgrade not logged as a warning:\n%s", logs.String())
	}
	if v, closer, err := s.db.Get([]byte{tagVersion}); err != nil || !bytes.Equal(v, []byte{layoutVersion}) {
		t.Errorf("layout version after the upgrade = %x, %v", v, err)
	} else {
		closer.Close()
	}
	if v, err := s.Get(ctx, []byte("properties/p1")); err != nil || string(v) != "kept" {
		t.Errorf("meta entry after the upgrade = %q, %v", v, err)
	}
	n := 0
	if err := scanPrefix(ctx, s.db, []byte{tagData}, func(k, v []byte) error { n++; return nil }); err != nil || n != 0 {
		t.Errorf("%d projection keys left after the upgrade (%v)", n, err)
	}
	if pr, state, err := s.LoadPartition(ctx, ns, 0); err != nil || pr.Next != 0 || len(state) != 0 {
		t.Errorf("LoadPartition after the upgrade = %+v, %v, %v", pr, state, err)
	}
	// The store works, and opens again without another upgrade.
	if err := s.Commit(ctx, ns, viewstore.Checkpoint{Progress: viewstore.Progress{Next: 5}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	logs.Reset()
	s, err = Open(dir, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("second open logged a warning:\n%s", logs.String())
	}
	if pr, _, err := s.LoadPartition(ctx, ns, 0); err != nil || pr.Next != 5 {
		t.Errorf("LoadPartition after reopening = %+v, %v", pr, err)
	}
}

func TestLogger(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dir := filepath.Join(t.TempDir(), "db")
	s, err := Open(dir, Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("directory not created: %v", err)
	}
	pl := pebbleLogger{l: logger}
	pl.Infof("hello %d", 42)
	if !strings.Contains(buf.String(), "hello 42") {
		t.Errorf("pebble Infof not forwarded: %s", buf.String())
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Fatalf returned")
			}
		}()
		pl.Fatalf("boom")
	}()
	if !strings.Contains(buf.String(), "boom") {
		t.Errorf("pebble Fatalf not logged: %s", buf.String())
	}
}

// TestOpenInUse: a directory an open store holds is pebblelock.ErrInUse
// until the store closes.
func TestOpenInUse(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	if s2, err := Open(dir, Options{}); !errors.Is(err, pebblelock.ErrInUse) {
		if err == nil {
			_ = s2.Close()
		}
		t.Fatalf("a second Open of an open directory: %v, want pebblelock.ErrInUse", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir)
	_ = s.Close()
}

// TestDurableWithoutClose commits in a child process that exits without
// closing the store, then reads the commit back.
func TestDurableWithoutClose(t *testing.T) {
	const env = "PEBBLESTORE_CRASH_DIR"
	ns := viewstore.Namespace("crash")
	cp := viewstore.Checkpoint{
		Progress:  viewstore.Progress{Partition: 2, Next: 42, Applied: 40, Duplicates: 2, Watermark: time.UnixMilli(1_772_323_200_123).UTC()},
		Additions: []viewstore.Addition{{Property: "p", Hour: 3600, Partition: 2, Start: 10, End: 42, Block: []byte("v")}},
		State:     []viewstore.KV{{Key: "k", Value: []byte("s")}},
	}
	if dir := os.Getenv(env); dir != "" {
		s, err := Open(dir, Options{})
		if err != nil {
			fmt.Println(err)
			os.Exit(2)
		}
		if err := s.Commit(t.Context(), ns, cp); err != nil {
			fmt.Println(err)
			os.Exit(2)
		}
		os.Exit(0) // no Close
	}
	dir := t.TempDir()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestDurableWithoutClose$", "-test.count=1")
	cmd.Env = append(os.Environ(), env+"="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	s := openTest(t, dir)
	defer func() { _ = s.Close() }()
	pr, state, err := s.LoadPartition(t.Context(), ns, 2)
	if err != nil {
		t.Fatal(err)
	}
	if pr.Next != 42 || pr.Applied != 40 || pr.Duplicates != 2 || !pr.Watermark.Equal(cp.Progress.Watermark) || len(state) != 1 {
		t.Errorf("after crash: %+v %v", pr, state)
	}
	n := 0
	if err := s.ScanAdditions(t.Context(), ns, "p", 0, 7200, func(viewstore.Addition) error { n++; return nil }); err != nil || n != 1 {
		t.Errorf("after crash: %d additions, %v", n, err)
	}
}
