// Package metadatatest is the conformance suite every metadata.Store
// implementation runs from its own tests:
//
//	func TestMetadataConformance(t *testing.T) {
//		metadatatest.Run(t, func(t *testing.T) func() metadata.Store {
//			dir := t.TempDir()
//			return func() metadata.Store { ... open dir ... }
//		})
//	}
//
// Every subtest writes its keys under a fresh random base (letters and
// digits, no '/'), so the storage behind a Factory may be shared between
// subtests and runs (one Cassandra keyspace, say): keys of others that a
// scan of the empty prefix meets are ignored. The suite closes every store
// it opens, and deletes what it wrote from storage that outlives it.
package metadatatest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sextant-analytics/sextant/pkg/metadata"
)

// Factory prepares storage for one subtest and returns open, which opens a
// Store on it. The suite calls open once per Store it needs; after the
// previous Store was closed, open must reopen the same storage, with
// everything written before still readable. Factory and open report setup
// failures with t.Fatal.
type Factory func(t *testing.T) (open func() metadata.Store)

// Run runs the conformance suite against the stores f opens.
func Run(t *testing.T, f Factory) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, h *harness)
	}{
		{"GetMissing", testGetMissing},
		{"PutGet", testPutGet},
		{"Ownership", testOwnership},
		{"EmptyKey", testEmptyKey},
		{"Delete", testDelete},
		{"Scan", testScan},
		{"ScanOwnership", testScanOwnership},
		{"ScanStops", testScanStops},
		{"ScanWhileWriting", testScanWhileWriting},
		{"Limits", testLimits},
		{"Concurrent", testConcurrent},
		{"Durability", testDurability},
		{"CancelledContext", testCancelledContext},
		{"Closed", testClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newHarness(t, f))
		})
	}
}

// harness holds one subtest's store, context and key base.
type harness struct {
	ctx  context.Context
	open func() metadata.Store
	s    metadata.Store
	base string
}

func newHarness(t *testing.T, f Factory) *harness {
	h := &harness{ctx: t.Context(), open: f(t), base: "t" + strings.ToLower(rand.Text()[:16])}
	if h.open == nil {
		t.Fatal("Factory returned a nil open function")
	}
	h.s = h.open()
	if h.s == nil {
		t.Fatal("open returned a nil Store")
	}
	t.Cleanup(func() {
		if h.s == nil {
			return
		}
		// Leave no keys behind in shared storage.
		var keys [][]byte
		_ = h.s.Scan(context.Background(), []byte(h.base), func(k, _ []byte) error {
			keys = append(keys, k)
			return nil
		})
		for _, k := range keys {
			_ = h.s.Delete(context.Background(), k)
		}
		_ = h.s.Close()
	})
	return h
}

// k is the subtest's key for s.
func (h *harness) k(s string) []byte { return []byte(h.base + s) }

// reopen closes the store and opens it again on the same storage.
func (h *harness) reopen(t *testing.T) {
	t.Helper()
	s := h.s
	h.s = nil
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	h.s = h.open()
	if h.s == nil {
		t.Fatal("open returned a nil Store")
	}
}

func (h *harness) put(t *testing.T, key, value string) {
	t.Helper()
	if err := h.s.Put(h.ctx, h.k(key), []byte(value)); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func (h *harness) del(t *testing.T, key string) {
	t.Helper()
	if err := h.s.Delete(h.ctx, h.k(key)); err != nil {
		t.Fatalf("Delete(%q): %v", key, err)
	}
}

// get checks that key holds want, as a non-nil slice.
func (h *harness) get(t *testing.T, key, want string) {
	t.Helper()
	got, err := h.s.Get(h.ctx, h.k(key))
	switch {
	case err != nil:
		t.Errorf("Get(%q): %v, want %q", key, err, want)
	case got == nil:
		t.Errorf("Get(%q) = nil, want a non-nil %q", key, want)
	case string(got) != want:
		t.Errorf("Get(%q) = %q, want %q", key, got, want)
	}
}

// missing checks that key is absent.
func (h *harness) missing(t *testing.T, key []byte) {
	t.Helper()
	if v, err := h.s.Get(h.ctx, key); !errors.Is(err, metadata.ErrNotFound) {
		t.Errorf("Get(%q) = %q, %v; want ErrNotFound", key, v, err)
	}
}

// scan returns the subtest's entries under prefix ("key=value", the base
// cut off), checking they are in order, under the prefix and not empty.
func (h *harness) scan(t *testing.T, prefix string) []string {
	t.Helper()
	var out, keys []string
	p := h.k(prefix)
	err := h.s.Scan(h.ctx, p, func(k, v []byte) error {
		if !bytes.HasPrefix(k, p) {
			t.Errorf("Scan(%q): key %q outside the prefix", prefix, k)
		}
		if v == nil {
			t.Errorf("Scan(%q): key %q with a nil value", prefix, k)
		}
		keys = append(keys, string(k))
		out = append(out, strings.TrimPrefix(string(k), h.base)+"="+string(v))
		return nil
	})
	if err != nil {
		t.Fatalf("Scan(%q): %v", prefix, err)
	}
	checkOrder(t, fmt.Sprintf("Scan(%q)", prefix), keys)
	return out
}

// checkOrder checks that keys are strictly ascending, bytewise.
func checkOrder(t *testing.T, what string, keys []string) {
	t.Helper()
	for i := 1; i < len(keys); i++ {
		if c := strings.Compare(keys[i-1], keys[i]); c >= 0 {
			t.Errorf("%s: key %q after %q: not strictly ascending", what, keys[i], keys[i-1])
			return
		}
	}
}

// scanAll returns the subtest's entries of a scan of the empty prefix,
// checking the order of all keys.
func (h *harness) scanAll(t *testing.T) []string {
	t.Helper()
	var out, keys []string
	err := h.s.Scan(h.ctx, nil, func(k, v []byte) error {
		if len(k) == 0 {
			t.Errorf("Scan(all): the empty key, value %q", v)
		}
		keys = append(keys, string(k))
		if rest, ok := strings.CutPrefix(string(k), h.base); ok {
			out = append(out, rest+"="+string(v))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Scan(all): %v", err)
	}
	checkOrder(t, "Scan(all)", keys)
	return out
}

// entries are written by several tests: kinds with '/' and without, a
// key that is a prefix of others, NUL and 0xff bytes, an empty value.
var entries = map[string]string{
	"property/1":           "p1",
	"property/2":           "p2",
	"property/20":          "p20",
	"property/b":           "pb",
	"property/\xff":        "pff",
	"property/\xff\xff":    "pffff",
	"property/\x00":        "p00",
	"property/\x00\x01":    "p0001",
	"property/\x7f":        "p7f",
	"property/\x80":        "p80",
	"propertyX/1":          "x1",
	"property":             "bare",
	"projection/active/tr": "v1",
	"apikey/abc":           "key\x00with\xffbytes",
	"property/empty":       "",
}

func (h *harness) putEntries(t *testing.T) {
	t.Helper()
	for k, v := range entries {
		h.put(t, k, v)
	}
}

// sorted returns "key=value" of the entries whose key starts with prefix,
// in key order.
func sorted(m map[string]string, prefix string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k+"="+m[k])
		}
	}
	return out
}

// testGetMissing: absent keys, and keys next to present ones, are
// ErrNotFound.
func testGetMissing(t *testing.T, h *harness) {
	h.missing(t, h.k("property/1"))
	h.put(t, "property/1", "p1")
	for _, key := range []string{"property/", "property/10", "property/1/", "property", "property/1\x00", "property/0"} {
		h.missing(t, h.k(key))
	}
	h.get(t, "property/1", "p1")
}

// testPutGet: values come back as written, empty values as empty
// non-nil slices; Put replaces.
func testPutGet(t *testing.T, h *harness) {
	h.putEntries(t)
	if err := h.s.Put(h.ctx, h.k("nil"), nil); err != nil {
		t.Fatalf("Put(nil value): %v", err)
	}
	for k, v := range entries {
		h.get(t, k, v)
	}
	h.get(t, "nil", "")
	h.put(t, "property/1", "new")
	h.get(t, "property/1", "new")
	h.put(t, "property/1", "")
	h.get(t, "property/1", "")
	h.put(t, "property/empty", "now set")
	h.get(t, "property/empty", "now set")
}

// testOwnership: the store copies what it is given and hands out copies.
func testOwnership(t *testing.T, h *harness) {
	key, value := h.k("property/1"), []byte("original")
	if err := h.s.Put(h.ctx, key, value); err != nil {
		t.Fatal(err)
	}
	copy(key[len(key)-1:], "2")
	copy(value, "CHANGED!")
	h.get(t, "property/1", "original")
	h.missing(t, h.k("property/2"))
	got, err := h.s.Get(h.ctx, h.k("property/1"))
	if err != nil {
		t.Fatal(err)
	}
	copy(got, "CHANGED!")
	h.get(t, "property/1", "original")
}

// testEmptyKey: the empty key is never stored.
func testEmptyKey(t *testing.T, h *harness) {
	for _, key := range [][]byte{nil, {}} {
		if err := h.s.Put(h.ctx, key, []byte("v")); !errors.Is(err, metadata.ErrEmptyKey) {
			t.Errorf("Put(%#v) = %v, want ErrEmptyKey", key, err)
		}
		h.missing(t, key)
		if err := h.s.Delete(h.ctx, key); err != nil {
			t.Errorf("Delete(%#v) = %v, want nil", key, err)
		}
	}
	h.scanAll(t) // fails on an empty key
}

// testDelete: Delete removes exactly its key; absent keys are no error.
func testDelete(t *testing.T, h *harness) {
	h.putEntries(t)
	h.del(t, "property/2")
	h.del(t, "property")
	h.del(t, "property/\xff")
	h.del(t, "property/never")
	h.del(t, "property/2") // twice
	want := maps.Clone(entries)
	delete(want, "property/2")
	delete(want, "property")
	delete(want, "property/\xff")
	for _, key := range []string{"property/2", "property", "property/\xff", "property/never"} {
		h.missing(t, h.k(key))
	}
	for k, v := range want {
		h.get(t, k, v)
	}
	if got, w := h.scan(t, ""), sorted(want, ""); !slices.Equal(got, w) {
		t.Errorf("Scan after Delete = %q, want %q", got, w)
	}
	// A deleted key can be written again.
	h.put(t, "property/2", "again")
	h.get(t, "property/2", "again")
}

// testScan: every prefix matches bytewise, in bytewise order.
func testScan(t *testing.T, h *harness) {
	h.putEntries(t)
	for _, prefix := range []string{
		"", "property/", "property/2", "property/\xff", "property/\xff\xff", "property/\x00",
		"property/3", "propertyX/", "projection/", "projection/active/", "projection/active/tr",
		"projection/active/tr/", "property", "proj", "p", "a", "apikey/abc", "z", "property/\x7f", "property/\x80",
	} {
		if got, want := h.scan(t, prefix), sorted(entries, prefix); !slices.Equal(got, want) {
			t.Errorf("Scan(%q) =\n%q\nwant\n%q", prefix, got, want)
		}
	}
	if got, want := h.scanAll(t), sorted(entries, ""); !slices.Equal(got, want) {
		t.Errorf("Scan(all) = %q, want %q", got, want)
	}
}

// testScanOwnership: fn may keep and change what it is handed.
func testScanOwnership(t *testing.T, h *harness) {
	h.putEntries(t)
	type kv struct{ k, v []byte }
	var kept []kv
	if err := h.s.Scan(h.ctx, h.k(""), func(k, v []byte) error {
		kept = append(kept, kv{k, v})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range kept {
		got = append(got, strings.TrimPrefix(string(e.k), h.base)+"="+string(e.v))
		for i := range e.v {
			e.v[i] = '!'
		}
	}
	if want := sorted(entries, ""); !slices.Equal(got, want) {
		t.Errorf("entries kept from Scan = %q, want %q", got, want)
	}
	for k, v := range entries {
		h.get(t, k, v)
	}
}

// testScanStops: fn's error stops the scan and is returned as is.
func testScanStops(t *testing.T, h *harness) {
	h.putEntries(t)
	for _, prefix := range []string{"property/", "property", ""} {
		stop := errors.New("stop")
		calls := 0
		err := h.s.Scan(h.ctx, h.k(prefix), func(key, value []byte) error {
			calls++
			if calls == 2 {
				return stop
			}
			return nil
		})
		if err != stop || calls != 2 {
			t.Errorf("Scan(%q): %v after %d calls, want fn's error, unwrapped, after 2", prefix, err, calls)
		}
	}
}

// testScanWhileWriting: fn moves each key it is handed out of the
// prefix (deletes it, writes it under "moved/") and writes a key ahead of
// the scan; every key present before is visited exactly once.
func testScanWhileWriting(t *testing.T, h *harness) {
	h.putEntries(t)
	seen := map[string]int{}
	err := h.s.Scan(h.ctx, h.k("property/"), func(k, v []byte) error {
		key := strings.TrimPrefix(string(k), h.base)
		seen[key]++
		if seen[key] > 1 {
			return fmt.Errorf("key %q visited %d times", key, seen[key])
		}
		if _, ok := entries[key]; !ok {
			return nil // written during the scan
		}
		if err := h.s.Delete(h.ctx, k); err != nil {
			return err
		}
		if err := h.s.Put(h.ctx, h.k("moved/"+key), v); err != nil {
			return err
		}
		return h.s.Put(h.ctx, h.k("property/\xff\xff\xff/"+key), v)
	})
	if err != nil {
		t.Fatalf("Scan moving keys as it goes: %v", err)
	}
	want := map[string]string{}
	for k, v := range entries {
		if strings.HasPrefix(k, "property/") {
			if seen[k] != 1 {
				t.Errorf("key %q visited %d times, want 1", k, seen[k])
			}
			want["moved/"+k] = v
			want["property/\xff\xff\xff/"+k] = v
		} else {
			want[k] = v
		}
	}
	if got, w := h.scan(t, ""), sorted(want, ""); !slices.Equal(got, w) {
		t.Errorf("after the scan: %q, want %q", got, w)
	}
}

// testLimits: a key of MaxKeyBytes and a value of MaxValueBytes, of every
// byte value.
func testLimits(t *testing.T, h *harness) {
	key := h.k("big/")
	for i := 0; len(key) < metadata.MaxKeyBytes; i++ {
		key = append(key, byte(i))
	}
	value := make([]byte, metadata.MaxValueBytes)
	for i := range value {
		value[i] = byte(i * 7)
	}
	if err := h.s.Put(h.ctx, key, value); err != nil {
		t.Fatalf("Put(%d-byte key, %d-byte value): %v", len(key), len(value), err)
	}
	got, err := h.s.Get(h.ctx, key)
	if err != nil || !bytes.Equal(got, value) {
		t.Fatalf("Get(%d-byte key) = %d bytes, %v; want the %d-byte value", len(key), len(got), err, len(value))
	}
	n := 0
	if err := h.s.Scan(h.ctx, h.k("big/"), func(k, v []byte) error {
		n++
		if !bytes.Equal(k, key) || !bytes.Equal(v, value) {
			t.Errorf("Scan: %d-byte key, %d-byte value; not the ones written", len(k), len(v))
		}
		return nil
	}); err != nil || n != 1 {
		t.Fatalf("Scan(big/): %d entries, %v", n, err)
	}
}

// testConcurrent: concurrent writers lose nothing.
func testConcurrent(t *testing.T, h *harness) {
	const writers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	want := map[string]string{}
	for w := range writers {
		for i := range each {
			want[fmt.Sprintf("c/%d/%02d", w, i)] = fmt.Sprintf("v%d.%d", w, i)
		}
		wg.Go(func() {
			for i := range each {
				key := fmt.Sprintf("c/%d/%02d", w, i)
				if err := h.s.Put(h.ctx, h.k(key), fmt.Appendf(nil, "v%d.%d", w, i)); err != nil {
					errs <- fmt.Errorf("Put(%q): %w", key, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got, w := h.scan(t, "c/"), sorted(want, "c/"); !slices.Equal(got, w) {
		t.Errorf("after concurrent Puts: %d entries, want %d:\n%q", len(got), len(w), got)
	}
}

// testDurability: what was written and deleted before Close is so after
// reopening.
func testDurability(t *testing.T, h *harness) {
	h.putEntries(t)
	h.put(t, "property/1", "overwritten")
	h.del(t, "property/2")
	want := maps.Clone(entries)
	want["property/1"] = "overwritten"
	delete(want, "property/2")
	h.reopen(t)
	for k, v := range want {
		h.get(t, k, v)
	}
	h.missing(t, h.k("property/2"))
	if got, w := h.scan(t, ""), sorted(want, ""); !slices.Equal(got, w) {
		t.Errorf("after reopening: %q, want %q", got, w)
	}
}

// ops are the four operations, each on keys of the subtest, for the tests
// that check they all fail.
func ops(h *harness, calls *int) []struct {
	name string
	op   func(ctx context.Context, s metadata.Store) error
} {
	return []struct {
		name string
		op   func(ctx context.Context, s metadata.Store) error
	}{
		{"Get", func(ctx context.Context, s metadata.Store) error { _, err := s.Get(ctx, h.k("property/1")); return err }},
		{"Put", func(ctx context.Context, s metadata.Store) error {
			return s.Put(ctx, h.k("property/1"), []byte("changed"))
		}},
		{"PutNew", func(ctx context.Context, s metadata.Store) error {
			return s.Put(ctx, h.k("property/new"), []byte("new"))
		}},
		{"Delete", func(ctx context.Context, s metadata.Store) error { return s.Delete(ctx, h.k("property/2")) }},
		{"Scan", func(ctx context.Context, s metadata.Store) error {
			return s.Scan(ctx, h.k("property/"), func(_, _ []byte) error { *calls++; return nil })
		}},
		{"ScanAll", func(ctx context.Context, s metadata.Store) error {
			return s.Scan(ctx, nil, func(_, _ []byte) error { *calls++; return nil })
		}},
	}
}

// checkUntouched checks that failed operations changed nothing.
func checkUntouched(t *testing.T, h *harness) {
	t.Helper()
	if got, want := h.scan(t, ""), sorted(entries, ""); !slices.Equal(got, want) {
		t.Errorf("after the failed operations: %q, want %q", got, want)
	}
}

// testCancelledContext: every operation fails with the context's error
// and changes nothing.
func testCancelledContext(t *testing.T, h *harness) {
	h.putEntries(t)
	ctx, cancel := context.WithCancel(h.ctx)
	cancel()
	calls := 0
	for _, tc := range ops(h, &calls) {
		if err := tc.op(ctx, h.s); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context = %v, want context.Canceled", tc.name, err)
		}
	}
	if calls != 0 {
		t.Errorf("scans with a cancelled context called fn %d times", calls)
	}
	checkUntouched(t, h)
}

// testClosed: after Close every operation fails, a second Close returns
// nil, and nothing was lost.
func testClosed(t *testing.T, h *harness) {
	h.putEntries(t)
	if err := h.s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	calls := 0
	for _, tc := range ops(h, &calls) {
		var err error
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("%s after Close panicked: %v", tc.name, r)
				}
			}()
			err = tc.op(h.ctx, h.s)
		}()
		if err == nil {
			t.Errorf("%s after Close returned nil", tc.name)
		}
	}
	if calls != 0 {
		t.Errorf("scans after Close called fn %d times", calls)
	}
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("second Close panicked: %v", r)
			}
		}()
		if err := h.s.Close(); err != nil {
			t.Errorf("second Close = %v, want nil", err)
		}
	}()
	h.s = h.open()
	checkUntouched(t, h)
}
