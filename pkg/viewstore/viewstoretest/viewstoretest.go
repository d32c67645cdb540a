// Package viewstoretest is the conformance suite every viewstore.Store
// implementation runs from its own tests:
//
//	func TestConformance(t *testing.T) {
//		viewstoretest.Run(t, func(t *testing.T) func() viewstore.Store {
//			dir := t.TempDir()
//			return func() viewstore.Store {
//				s, err := pebblestore.Open(dir, pebblestore.Options{})
//				if err != nil {
//					t.Fatal(err)
//				}
//				return s
//			}
//		})
//	}
//
// Every subtest uses fresh random namespaces ("test/<random>"), so the
// storage behind a Factory may be shared between subtests and runs (one
// Cassandra keyspace, say). The suite closes every store it opens.
package viewstoretest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

// Factory prepares storage for one subtest and returns open, which opens a
// Store on it. The suite calls open once per Store it needs; after the
// previous Store was closed, open must reopen the same storage, with
// everything committed before still readable. Factory and open report
// setup failures with t.Fatal.
type Factory func(t *testing.T) (open func() viewstore.Store)

// Run runs the conformance suite against the stores f opens.
func Run(t *testing.T, f Factory) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, h *harness)
	}{
		{"LoadPartitionUnknown", testLoadPartitionUnknown},
		{"Progress", testProgress},
		{"State", testState},
		{"Cells", testCells},
		{"ScanCellsStopsOnError", testScanStops},
		{"LoadBucket", testLoadBucket},
		{"CellsManyDays", testManyDays},
		{"Watermarks", testWatermarks},
		{"ListProgress", testListProgress},
		{"CommitVisible", testCommitVisible},
		{"ConcurrentCommits", testConcurrentCommits},
		{"Durability", testDurability},
		{"ArbitraryBytes", testArbitraryBytes},
		{"DropNamespace", testDropNamespace},
		{"CancelledContext", testCancelledContext},
		{"Closed", testClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newHarness(t, f))
		})
	}
}

// harness holds one subtest's store and context.
type harness struct {
	ctx  context.Context
	open func() viewstore.Store
	s    viewstore.Store
}

func newHarness(t *testing.T, f Factory) *harness {
	h := &harness{ctx: t.Context(), open: f(t)}
	if h.open == nil {
		t.Fatal("Factory returned a nil open function")
	}
	h.s = h.open()
	if h.s == nil {
		t.Fatal("open returned a nil Store")
	}
	t.Cleanup(func() {
		if h.s != nil {
			_ = h.s.Close()
		}
	})
	return h
}

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

// newNamespace returns a fresh random namespace.
func newNamespace() viewstore.Namespace {
	return viewstore.Namespace("test/" + strings.ToLower(rand.Text()))
}

func (h *harness) commit(t *testing.T, ns viewstore.Namespace, cp viewstore.Checkpoint) {
	t.Helper()
	if err := h.s.Commit(h.ctx, ns, cp); err != nil {
		t.Fatalf("Commit(%q, partition %d): %v", ns, cp.Progress.Partition, err)
	}
}

// commitCells commits cells, grouped by partition, in checkpoints of at most
// 500 cells.
func (h *harness) commitCells(t *testing.T, ns viewstore.Namespace, cells []viewstore.Cell) {
	t.Helper()
	byPart := map[int32][]viewstore.Cell{}
	var parts []int32
	for _, c := range cells {
		if _, ok := byPart[c.Partition]; !ok {
			parts = append(parts, c.Partition)
		}
		byPart[c.Partition] = append(byPart[c.Partition], c)
	}
	for _, p := range parts {
		cs := byPart[p]
		for len(cs) > 0 {
			n := min(len(cs), 500)
			h.commit(t, ns, viewstore.Checkpoint{
				Progress: viewstore.Progress{Partition: p, Next: int64(n), Applied: int64(n)},
				Cells:    cs[:n],
			})
			cs = cs[n:]
		}
	}
}

func (h *harness) load(t *testing.T, ns viewstore.Namespace, p int32) (viewstore.Progress, map[string][]byte) {
	t.Helper()
	pr, kvs, err := h.s.LoadPartition(h.ctx, ns, p)
	if err != nil {
		t.Fatalf("LoadPartition(%q, %d): %v", ns, p, err)
	}
	state := map[string][]byte{}
	for _, kv := range kvs {
		if kv.Delete {
			t.Errorf("LoadPartition(%q, %d): entry %q has Delete set", ns, p, kv.Key)
		}
		if _, dup := state[kv.Key]; dup {
			t.Errorf("LoadPartition(%q, %d): entry %q returned twice", ns, p, kv.Key)
		}
		state[kv.Key] = kv.Value
	}
	return pr, state
}

// cellID is a cell's primary key.
type cellID struct {
	Property  string
	Grain     viewstore.Grain
	Bucket    int64
	Dims      string
	Partition int32
}

func idOf(c viewstore.Cell) cellID {
	return cellID{c.Property, c.Grain, c.Bucket, c.Dims, c.Partition}
}

func (id cellID) String() string {
	return fmt.Sprintf("{%q g%d %d %q p%d}", id.Property, id.Grain, id.Bucket, id.Dims, id.Partition)
}

// scan runs ScanCells, checks that every cell has the requested property
// and grain, that buckets are in [from, to) and in order and that no cell
// comes twice, and returns the cells by id.
func (h *harness) scan(t *testing.T, ns viewstore.Namespace, property string, g viewstore.Grain, from, to int64) map[cellID][]byte {
	t.Helper()
	got := map[cellID][]byte{}
	last := int64(0)
	n := 0
	err := h.s.ScanCells(h.ctx, ns, property, g, from, to, func(c viewstore.Cell) error {
		id := idOf(c)
		switch {
		case c.Property != property || c.Grain != g:
			t.Errorf("ScanCells(%q, g%d): got cell %v of another property or grain", property, g, id)
		case c.Bucket < from || c.Bucket >= to:
			t.Errorf("ScanCells(%q, g%d, [%d, %d)): got cell %v outside the range", property, g, from, to, id)
		case n > 0 && c.Bucket < last:
			t.Errorf("ScanCells(%q, g%d): bucket %d after %d: not in bucket order", property, g, c.Bucket, last)
		}
		if _, dup := got[id]; dup {
			t.Errorf("ScanCells(%q, g%d): cell %v returned twice", property, g, id)
		}
		got[id] = withOffset(c)
		last = c.Bucket
		n++
		return nil
	})
	if err != nil {
		t.Fatalf("ScanCells(%q, %q, g%d, [%d, %d)): %v", ns, property, g, from, to, err)
	}
	return got
}

// diffCells reports differences between got and want.
func diffCells(t *testing.T, what string, got, want map[cellID][]byte) {
	t.Helper()
	var ids []cellID
	for id := range want {
		ids = append(ids, id)
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b cellID) int { return strings.Compare(a.String(), b.String()) })
	bad := 0
	for _, id := range ids {
		g, inGot := got[id]
		w, inWant := want[id]
		var msg string
		switch {
		case !inGot:
			msg = "missing"
		case !inWant:
			msg = fmt.Sprintf("unexpected (value %q)", g)
		case !bytes.Equal(g, w):
			msg = fmt.Sprintf("value %q, want %q", g, w)
		default:
			continue
		}
		if bad++; bad <= 10 {
			t.Errorf("%s: cell %v %s", what, id, msg)
		}
	}
	if bad > 10 {
		t.Errorf("%s: %d cells differ in all (got %d, want %d)", what, bad, len(got), len(want))
	}
}

// sameTime reports whether a stored time got stands for want: equal at
// millisecond precision at least (a store may truncate or round below it).
func sameTime(got, want time.Time) bool {
	if got.IsZero() || want.IsZero() {
		return got.IsZero() == want.IsZero()
	}
	d := got.Sub(want)
	if want.Equal(want.Truncate(time.Millisecond)) {
		return d == 0
	}
	return d > -time.Millisecond && d < time.Millisecond
}

func checkProgress(t *testing.T, what string, got, want viewstore.Progress) {
	t.Helper()
	if got.Partition != want.Partition || got.Next != want.Next || got.Applied != want.Applied ||
		got.Duplicates != want.Duplicates || got.Excluded != want.Excluded || !sameTime(got.Watermark, want.Watermark) {
		t.Errorf("%s: progress %+v, want %+v", what, got, want)
	}
}

func checkState(t *testing.T, what string, got map[string][]byte, want map[string]string) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: state entry %q missing", what, k)
		} else if !bytes.Equal(g, []byte(w)) {
			t.Errorf("%s: state entry %q = %q, want %q", what, k, g, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected state entry %q = %q", what, k, g)
		}
	}
}

// day0 is a fixed UTC midnight all test buckets are relative to.
var day0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).Unix()

const (
	minute = int64(60)
	hour   = int64(3600)
	day    = 24 * hour
)

func testLoadPartitionUnknown(t *testing.T, h *harness) {
	ns, other := newNamespace(), newNamespace()
	// Partition 1 of ns and partition 2 of other exist; neither is asked for
	// in the namespace it is committed to.
	h.commit(t, ns, viewstore.Checkpoint{
		Progress: viewstore.Progress{Partition: 1, Next: 5, Applied: 5, Excluded: 2, Watermark: time.UnixMilli(day0 * 1000)},
		State:    []viewstore.KV{{Key: "k", Value: []byte("v")}},
	})
	h.commit(t, other, viewstore.Checkpoint{
		Progress: viewstore.Progress{Partition: 2, Next: 7, Applied: 7},
		State:    []viewstore.KV{{Key: "k", Value: []byte("v")}},
	})
	for _, tc := range []struct {
		name string
		ns   viewstore.Namespace
		p    int32
	}{
		{"fresh namespace", newNamespace(), 0},
		{"another partition committed", ns, 0},
		{"committed only in another namespace", ns, 2},
		{"large partition", ns, 1 << 30},
		{"committed only in the first namespace", other, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pr, kvs, err := h.s.LoadPartition(h.ctx, tc.ns, tc.p)
			if err != nil {
				t.Fatalf("LoadPartition: %v", err)
			}
			if want := (viewstore.Progress{Partition: tc.p}); pr.Partition != want.Partition || pr.Next != 0 ||
				pr.Applied != 0 || pr.Duplicates != 0 || pr.Excluded != 0 || !pr.Watermark.IsZero() {
				t.Errorf("progress %+v, want %+v", pr, want)
			}
			if len(kvs) != 0 {
				t.Errorf("state %v, want none", kvs)
			}
		})
	}
}

func testProgress(t *testing.T, h *harness) {
	base := time.Date(2026, 3, 14, 15, 9, 26, 535_000_000, time.UTC)
	for _, tc := range []struct {
		name string
		pr   []viewstore.Progress // committed in order; the last must be read back
	}{
		{"first commit", []viewstore.Progress{{Partition: 0, Next: 10, Applied: 7, Duplicates: 1, Excluded: 2, Watermark: base}}},
		{"zero watermark", []viewstore.Progress{{Partition: 1, Next: 3, Applied: 0, Duplicates: 3}}},
		{"only excluded", []viewstore.Progress{{Partition: 6, Next: 4, Excluded: 4, Watermark: base}}},
		{"sub-millisecond watermark", []viewstore.Progress{{Partition: 2, Next: 1, Applied: 1, Watermark: base.Add(123_456 * time.Nanosecond)}}},
		{"non-UTC watermark", []viewstore.Progress{{Partition: 3, Next: 1, Applied: 1, Watermark: base.In(time.FixedZone("X", 5*3600))}}},
		{"large values", []viewstore.Progress{{Partition: 1<<31 - 1, Next: 1 << 50, Applied: 1<<50 - 7, Duplicates: 1 << 40, Excluded: 1<<45 + 3, Watermark: base.AddDate(20, 0, 0)}}},
		{"later commit replaces", []viewstore.Progress{
			{Partition: 4, Next: 10, Applied: 10, Watermark: base},
			{Partition: 4, Next: 25, Applied: 20, Duplicates: 3, Excluded: 2, Watermark: base.Add(time.Minute)},
		}},
		{"later commit replaces excluded with zero", []viewstore.Progress{
			{Partition: 7, Next: 10, Applied: 5, Excluded: 5, Watermark: base},
			{Partition: 7, Next: 10, Applied: 5, Watermark: base},
		}},
		{"later commit replaces watermark with zero", []viewstore.Progress{
			{Partition: 5, Next: 10, Applied: 10, Watermark: base},
			{Partition: 5, Next: 11, Applied: 10, Duplicates: 1},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := newNamespace()
			for _, pr := range tc.pr {
				h.commit(t, ns, viewstore.Checkpoint{Progress: pr})
			}
			want := tc.pr[len(tc.pr)-1]
			got, _ := h.load(t, ns, want.Partition)
			checkProgress(t, "LoadPartition", got, want)
		})
	}
}

func testState(t *testing.T, h *harness) {
	ns, other := newNamespace(), newNamespace()
	const p = 1
	kvs := func(pairs ...string) []viewstore.KV {
		var out []viewstore.KV
		for i := 0; i < len(pairs); i += 2 {
			out = append(out, viewstore.KV{Key: pairs[i], Value: []byte(pairs[i+1])})
		}
		return out
	}
	// Neighbours that must stay invisible: other partitions (including one
	// whose number shares bytes with p) and the same partition elsewhere.
	for _, q := range []int32{0, 2, 1 << 8, 1 << 24, 11} {
		h.commit(t, ns, viewstore.Checkpoint{Progress: viewstore.Progress{Partition: q, Next: 1}, State: kvs("a", "other partition", "z", "z")})
	}
	h.commit(t, other, viewstore.Checkpoint{Progress: viewstore.Progress{Partition: p, Next: 1}, State: kvs("a", "other namespace", "y", "y")})
	h.commit(t, viewstore.Namespace(string(ns)+"/x"), viewstore.Checkpoint{Progress: viewstore.Progress{Partition: p, Next: 1}, State: kvs("a", "prefixed namespace")})

	steps := []struct {
		name  string
		state []viewstore.KV
		want  map[string]string
	}{
		{"insert", kvs("a", "1", "b", "2", "c", "3", "sess/42", "open"), map[string]string{"a": "1", "b": "2", "c": "3", "sess/42": "open"}},
		{"upsert and delete", []viewstore.KV{
			{Key: "b", Value: []byte("20")},
			{Key: "a", Delete: true},
			{Key: "d", Value: []byte("4")},
			{Key: "never-written", Delete: true},
		}, map[string]string{"b": "20", "c": "3", "d": "4", "sess/42": "open"}},
		{"no state changes", nil, map[string]string{"b": "20", "c": "3", "d": "4", "sess/42": "open"}},
		{"empty value and re-insert", []viewstore.KV{
			{Key: "a", Value: []byte("back")},
			{Key: "e", Value: []byte{}},
			{Key: "sess/42", Delete: true},
		}, map[string]string{"a": "back", "b": "20", "c": "3", "d": "4", "e": ""}},
		{"delete all", []viewstore.KV{
			{Key: "a", Delete: true}, {Key: "b", Delete: true}, {Key: "c", Delete: true},
			{Key: "d", Delete: true}, {Key: "e", Delete: true},
		}, map[string]string{}},
	}
	for i, st := range steps {
		h.commit(t, ns, viewstore.Checkpoint{Progress: viewstore.Progress{Partition: p, Next: int64(i + 1)}, State: st.state})
		got, state := h.load(t, ns, p)
		if got.Next != int64(i+1) {
			t.Errorf("after %s: Next %d, want %d", st.name, got.Next, i+1)
		}
		checkState(t, "after "+st.name, state, st.want)
	}
	_, state := h.load(t, other, p)
	checkState(t, "other namespace", state, map[string]string{"a": "other namespace", "y": "y"})
	_, state = h.load(t, ns, 2)
	checkState(t, "other partition", state, map[string]string{"a": "other partition", "z": "z"})
}

// withOffset is what a test compares of a cell: its value and its offset.
func withOffset(c viewstore.Cell) []byte {
	return append(append([]byte{}, c.Value...), fmt.Sprintf("@%d", c.Offset)...)
}

// cellValue is the value a test cell gets; version tells commits apart.
func cellValue(id cellID, version int) []byte {
	return []byte(fmt.Sprintf("v%d:%s", version, id))
}

func testCells(t *testing.T, h *harness) {
	ns := newNamespace()
	properties := []string{"a", "ab", "a\x00b", "site/1"}
	dims := []string{"", "country=DE", "country=DE\x1fbrowser=Firefox", "path=/a/b", "ü/日本"}
	partitions := []int32{0, 1, 256}
	var all []viewstore.Cell
	want := map[cellID][]byte{}
	add := func(id cellID, version int) {
		c := viewstore.Cell{Property: id.Property, Grain: id.Grain, Bucket: id.Bucket, Dims: id.Dims, Partition: id.Partition, Value: cellValue(id, version), Offset: int64(version)}
		all = append(all, c)
		want[id] = withOffset(c)
	}
	for _, prop := range properties {
		for _, g := range []viewstore.Grain{viewstore.Minute, viewstore.Hour} {
			// Buckets around a day boundary, of the grain's width.
			for i := int64(-3); i < 4; i++ {
				for _, d := range dims {
					for _, p := range partitions {
						add(cellID{prop, g, day0 + day + i*g.Seconds(), d, p}, 1)
					}
				}
			}
		}
	}
	h.commitCells(t, ns, all)

	// Same keys in other namespaces, with other values.
	others := []viewstore.Namespace{newNamespace(), viewstore.Namespace(string(ns) + "/x"), viewstore.Namespace(string(ns) + "\x00")}
	for _, o := range others {
		var cs []viewstore.Cell
		for _, c := range all {
			c.Value = []byte("other namespace")
			cs = append(cs, c)
		}
		h.commitCells(t, o, cs)
	}

	filter := func(want map[cellID][]byte, prop string, g viewstore.Grain, from, to int64) map[cellID][]byte {
		out := map[cellID][]byte{}
		for id, v := range want {
			if id.Property == prop && id.Grain == g && id.Bucket >= from && id.Bucket < to {
				out[id] = v
			}
		}
		return out
	}
	mid := day0 + day
	ranges := []struct {
		name     string
		prop     string
		g        viewstore.Grain
		from, to int64
		count    int
	}{
		{"all hours", "a", viewstore.Hour, mid - day, mid + day, 7 * 5 * 3},
		{"all minutes", "a", viewstore.Minute, mid - day, mid + day, 7 * 5 * 3},
		{"from inclusive, to exclusive", "a", viewstore.Hour, mid - 2*hour, mid + 2*hour, 4 * 5 * 3},
		{"unaligned bounds", "a", viewstore.Minute, mid - 2*minute - 1, mid + 2*minute + 1, 5 * 5 * 3},
		{"one bucket", "ab", viewstore.Hour, mid, mid + 1, 5 * 3},
		{"property with NUL", "a\x00b", viewstore.Minute, mid - day, mid + day, 7 * 5 * 3},
		{"property with slash", "site/1", viewstore.Hour, mid, mid + day, 4 * 5 * 3},
		{"empty range", "a", viewstore.Hour, mid, mid, 0},
		{"reversed range", "a", viewstore.Hour, mid + hour, mid - hour, 0},
		{"before all", "a", viewstore.Hour, mid - 10*day, mid - 5*day, 0},
		{"after all", "a", viewstore.Hour, mid + 5*hour, mid + 3*day, 0},
		{"unknown property", "b", viewstore.Hour, mid - day, mid + day, 0},
		{"prefix of a property", "site", viewstore.Hour, mid - day, mid + day, 0},
	}
	check := func(label string) {
		for _, r := range ranges {
			t.Run(label+"/"+r.name, func(t *testing.T) {
				got := h.scan(t, ns, r.prop, r.g, r.from, r.to)
				if len(got) != r.count {
					t.Errorf("got %d cells, want %d", len(got), r.count)
				}
				diffCells(t, "ScanCells", got, filter(want, r.prop, r.g, r.from, r.to))
			})
		}
	}
	check("committed")

	// Re-commit a subset with new values: absolute values overwrite.
	var again []viewstore.Cell
	for _, c := range all {
		if c.Bucket >= mid && c.Partition != 1 {
			id := idOf(c)
			c.Value = cellValue(id, 2)
			c.Offset = 1 << 40
			want[id] = withOffset(c)
			again = append(again, c)
		}
	}
	h.commitCells(t, ns, again)
	check("overwritten")

	for i, o := range others {
		t.Run(fmt.Sprintf("other namespace %d", i), func(t *testing.T) {
			got := h.scan(t, o, "a", viewstore.Hour, mid-day, mid+day)
			if len(got) != 7*5*3 {
				t.Errorf("got %d cells, want %d", len(got), 7*5*3)
			}
			for id, v := range got {
				if !strings.HasPrefix(string(v), "other namespace@") {
					t.Errorf("cell %v has value %q of another namespace", id, v)
				}
			}
		})
	}
}

func testScanStops(t *testing.T, h *harness) {
	ns := newNamespace()
	var cells []viewstore.Cell
	for i := int64(0); i < 20; i++ {
		cells = append(cells, viewstore.Cell{Property: "p", Grain: viewstore.Hour, Bucket: day0 + i*hour, Dims: "d", Value: []byte("v")})
	}
	h.commitCells(t, ns, cells)
	stop := errors.New("stop here")
	for _, n := range []int{1, 3, 20} {
		t.Run(fmt.Sprintf("after %d", n), func(t *testing.T) {
			calls := 0
			err := h.s.ScanCells(h.ctx, ns, "p", viewstore.Hour, day0, day0+day, func(viewstore.Cell) error {
				calls++
				if calls == n {
					return stop
				}
				return nil
			})
			if !errors.Is(err, stop) {
				t.Errorf("ScanCells returned %v, want fn's error", err)
			}
			if calls != n {
				t.Errorf("fn called %d times, want %d", calls, n)
			}
		})
	}
}

func testManyDays(t *testing.T, h *harness) {
	ns := newNamespace()
	const days, perBucket = 40, 3
	want := map[cellID][]byte{}
	var cells []viewstore.Cell
	for b := day0; b < day0+days*day; b += hour {
		for d := 0; d < perBucket; d++ {
			id := cellID{"site", viewstore.Hour, b, fmt.Sprintf("d%d", d), int32(d % 2)}
			c := viewstore.Cell{Property: id.Property, Grain: id.Grain, Bucket: id.Bucket, Dims: id.Dims, Partition: id.Partition, Value: cellValue(id, 1), Offset: 1}
			cells = append(cells, c)
			want[id] = withOffset(c)
		}
	}
	// Minute cells every 7 minutes across 3 days, in the same property.
	for b := day0 + 10*day; b < day0+13*day; b += 7 * minute {
		id := cellID{"site", viewstore.Minute, b, "m", 0}
		c := viewstore.Cell{Property: id.Property, Grain: id.Grain, Bucket: id.Bucket, Dims: id.Dims, Partition: id.Partition, Value: cellValue(id, 1), Offset: 1}
		cells = append(cells, c)
		want[id] = withOffset(c)
	}
	h.commitCells(t, ns, cells)

	filter := func(g viewstore.Grain, from, to int64) map[cellID][]byte {
		out := map[cellID][]byte{}
		for id, v := range want {
			if id.Grain == g && id.Bucket >= from && id.Bucket < to {
				out[id] = v
			}
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		g        viewstore.Grain
		from, to int64
		count    int
	}{
		{"30 days aligned", viewstore.Hour, day0 + 5*day, day0 + 35*day, 30 * 24 * perBucket},
		{"30 days from mid-day", viewstore.Hour, day0 + 5*day + 7*hour, day0 + 35*day + 7*hour, 30 * 24 * perBucket},
		{"all 40 days and more", viewstore.Hour, day0 - 3*day, day0 + 45*day, 40 * 24 * perBucket},
		{"one hour across midnight", viewstore.Hour, day0 + 9*day - 30*minute, day0 + 9*day + 30*minute, perBucket},
		{"minutes across two midnights", viewstore.Minute, day0 + 10*day + 12*hour, day0 + 12*day + 12*hour, len(filter(viewstore.Minute, day0+10*day+12*hour, day0+12*day+12*hour))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := h.scan(t, ns, "site", tc.g, tc.from, tc.to)
			if len(got) != tc.count {
				t.Errorf("got %d cells, want %d", len(got), tc.count)
			}
			diffCells(t, "ScanCells", got, filter(tc.g, tc.from, tc.to))
		})
	}
}

func testWatermarks(t *testing.T, h *harness) {
	ns, other := newNamespace(), newNamespace()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 250_000_000, time.UTC)
	wm := func(prop string, p int32, min int, off int64) viewstore.Watermark {
		return viewstore.Watermark{Property: prop, Partition: p, Time: t0.Add(time.Duration(min) * time.Minute), Offset: off}
	}
	commit := func(ns viewstore.Namespace, p int32, next int64, ws ...viewstore.Watermark) {
		h.commit(t, ns, viewstore.Checkpoint{Progress: viewstore.Progress{Partition: p, Next: next}, Watermarks: ws})
	}
	commit(ns, 0, 10, wm("A", 0, 1, 10), wm("B", 0, 1, 10), wm("AB", 0, 1, 10), wm("A\x00", 0, 1, 10))
	commit(ns, 1, 20, wm("A", 1, 5, 20))
	commit(ns, 0, 30, wm("A", 0, 3, 30)) // later commit of partition 0 wins
	commit(ns, 1, 25, wm("A", 1, 2, 25)) // latest commit wins even with an older time
	commit(ns, 300, 7, wm("A", 300, 9, 7), wm("B", 300, 9, 7))
	commit(other, 0, 99, wm("A", 0, 60, 99), wm("A", 5, 60, 99))

	for _, tc := range []struct {
		name string
		ns   viewstore.Namespace
		prop string
		want []viewstore.Watermark
	}{
		{"A", ns, "A", []viewstore.Watermark{wm("A", 0, 3, 30), wm("A", 1, 2, 25), wm("A", 300, 9, 7)}},
		{"B", ns, "B", []viewstore.Watermark{wm("B", 0, 1, 10), wm("B", 300, 9, 7)}},
		{"AB", ns, "AB", []viewstore.Watermark{wm("AB", 0, 1, 10)}},
		{"A NUL", ns, "A\x00", []viewstore.Watermark{wm("A\x00", 0, 1, 10)}},
		{"unknown property", ns, "C", nil},
		{"other namespace", other, "A", []viewstore.Watermark{wm("A", 0, 60, 99), wm("A", 5, 60, 99)}},
		{"fresh namespace", newNamespace(), "A", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := h.s.Watermarks(h.ctx, tc.ns, tc.prop)
			if err != nil {
				t.Fatalf("Watermarks: %v", err)
			}
			got = slices.Clone(got)
			slices.SortFunc(got, func(a, b viewstore.Watermark) int { return cmp.Compare(a.Partition, b.Partition) })
			if len(got) != len(tc.want) {
				t.Fatalf("got %d watermarks %+v, want %d %+v", len(got), got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				g := got[i]
				if g.Property != w.Property || g.Partition != w.Partition || g.Offset != w.Offset || !sameTime(g.Time, w.Time) {
					t.Errorf("watermark %d: %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func testListProgress(t *testing.T, h *harness) {
	ns, other := newNamespace(), newNamespace()
	wmTime := time.Date(2026, 3, 2, 0, 0, 0, 5_000_000, time.UTC)
	want := map[int32]viewstore.Progress{}
	for i, p := range []int32{0, 1, 7, 255, 256, 1000, 1, 7} { // 1 and 7 twice: latest wins
		pr := viewstore.Progress{Partition: p, Next: int64(10*i + 1), Applied: int64(i), Duplicates: int64(i % 2), Excluded: int64(i % 3), Watermark: wmTime.Add(time.Duration(i) * time.Second)}
		h.commit(t, ns, viewstore.Checkpoint{Progress: pr})
		want[p] = pr
	}
	h.commit(t, other, viewstore.Checkpoint{Progress: viewstore.Progress{Partition: 2, Next: 1}})
	h.commit(t, viewstore.Namespace(string(ns)+"/x"), viewstore.Checkpoint{Progress: viewstore.Progress{Partition: 3, Next: 1}})

	for _, tc := range []struct {
		name string
		ns   viewstore.Namespace
		want map[int32]viewstore.Progress
	}{
		{"namespace", ns, want},
		{"other namespace", other, map[int32]viewstore.Progress{2: {Partition: 2, Next: 1}}},
		{"fresh namespace", newNamespace(), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := h.s.ListProgress(h.ctx, tc.ns)
			if err != nil {
				t.Fatalf("ListProgress: %v", err)
			}
			seen := map[int32]bool{}
			for _, g := range got {
				w, ok := tc.want[g.Partition]
				switch {
				case !ok:
					t.Errorf("unexpected partition %+v", g)
				case seen[g.Partition]:
					t.Errorf("partition %d listed twice", g.Partition)
				default:
					checkProgress(t, fmt.Sprintf("partition %d", g.Partition), g, w)
				}
				seen[g.Partition] = true
			}
			for p := range tc.want {
				if !seen[p] {
					t.Errorf("partition %d missing", p)
				}
			}
		})
	}
}

// checkpointN is the n-th checkpoint of partition p in testCommitVisible and
// testDurability: progress, cells of two properties and both grains, state
// and watermarks, all derived from n.
func checkpointN(p int32, n int) viewstore.Checkpoint {
	wmTime := time.UnixMilli((day0 + int64(n)*minute) * 1000).UTC()
	cp := viewstore.Checkpoint{
		Progress: viewstore.Progress{Partition: p, Next: int64(100 * n), Applied: int64(90 * n), Duplicates: int64(n), Excluded: int64(8 * n), Watermark: wmTime},
		State: []viewstore.KV{
			{Key: fmt.Sprintf("seen/%d", n), Value: []byte(fmt.Sprint(n))},
			{Key: "last", Value: []byte(fmt.Sprint(n))},
		},
	}
	if n > 1 {
		cp.State = append(cp.State, viewstore.KV{Key: fmt.Sprintf("seen/%d", n-1), Delete: true})
	}
	for _, prop := range []string{"x", "y"} {
		cp.Watermarks = append(cp.Watermarks, viewstore.Watermark{Property: prop, Partition: p, Time: wmTime, Offset: int64(100 * n)})
		for _, g := range []viewstore.Grain{viewstore.Minute, viewstore.Hour} {
			for d := 0; d < 3; d++ {
				id := cellID{prop, g, day0 + int64(n)*g.Seconds(), fmt.Sprintf("d%d", d), p}
				cp.Cells = append(cp.Cells, viewstore.Cell{Property: prop, Grain: g, Bucket: id.Bucket, Dims: id.Dims, Partition: p, Value: cellValue(id, n), Offset: int64(n)})
				// Overwrite the previous bucket's cell too.
				if n > 1 {
					prev := id
					prev.Bucket -= g.Seconds()
					cp.Cells = append(cp.Cells, viewstore.Cell{Property: prop, Grain: g, Bucket: prev.Bucket, Dims: prev.Dims, Partition: p, Value: cellValue(prev, n), Offset: int64(n)})
				}
			}
		}
	}
	return cp
}

// checkThrough checks that everything of checkpoints 1..n of partition p is
// readable.
func checkThrough(t *testing.T, h *harness, ns viewstore.Namespace, p int32, n int) {
	t.Helper()
	last := checkpointN(p, n)
	pr, state := h.load(t, ns, p)
	checkProgress(t, fmt.Sprintf("after checkpoint %d", n), pr, last.Progress)
	wantState := map[string]string{"last": fmt.Sprint(n), fmt.Sprintf("seen/%d", n): fmt.Sprint(n)}
	checkState(t, fmt.Sprintf("after checkpoint %d", n), state, wantState)
	for _, prop := range []string{"x", "y"} {
		ws, err := h.s.Watermarks(h.ctx, ns, prop)
		if err != nil {
			t.Fatalf("Watermarks: %v", err)
		}
		if len(ws) != 1 || ws[0].Partition != p || ws[0].Offset != last.Progress.Next || !sameTime(ws[0].Time, last.Progress.Watermark) {
			t.Errorf("after checkpoint %d: watermarks of %q %+v, want offset %d", n, prop, ws, last.Progress.Next)
		}
		for _, g := range []viewstore.Grain{viewstore.Minute, viewstore.Hour} {
			want := map[cellID][]byte{}
			for k := 1; k <= n; k++ {
				for _, c := range checkpointN(p, k).Cells {
					if c.Property == prop && c.Grain == g {
						want[idOf(c)] = withOffset(c)
					}
				}
			}
			got := h.scan(t, ns, prop, g, day0, day0+int64(n+1)*g.Seconds())
			diffCells(t, fmt.Sprintf("after checkpoint %d, %q g%d", n, prop, g), got, want)
		}
	}
}

func testCommitVisible(t *testing.T, h *harness) {
	ns := newNamespace()
	const p = 3
	for n := 1; n <= 8; n++ {
		h.commit(t, ns, checkpointN(p, n))
		checkThrough(t, h, ns, p, n)
		if t.Failed() {
			t.FailNow()
		}
	}
}

// testConcurrentCommits commits partitions from several goroutines at once,
// as projections do, and checks nothing is lost.
func testConcurrentCommits(t *testing.T, h *harness) {
	ns := newNamespace()
	const parts, rounds = 4, 4
	var wg sync.WaitGroup
	for p := range int32(parts) {
		wg.Go(func() {
			for n := 1; n <= rounds; n++ {
				if err := h.s.Commit(h.ctx, ns, checkpointN(10+p, n)); err != nil {
					t.Errorf("Commit(partition %d, checkpoint %d): %v", 10+p, n, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	got, err := h.s.ListProgress(h.ctx, ns)
	if err != nil {
		t.Fatalf("ListProgress: %v", err)
	}
	if len(got) != parts {
		t.Errorf("ListProgress: %d partitions, want %d", len(got), parts)
	}
	for p := range int32(parts) {
		pr, state := h.load(t, ns, 10+p)
		want := checkpointN(10+p, rounds)
		checkProgress(t, fmt.Sprintf("partition %d", 10+p), pr, want.Progress)
		checkState(t, fmt.Sprintf("partition %d", 10+p), state, map[string]string{"last": fmt.Sprint(rounds), fmt.Sprintf("seen/%d", rounds): fmt.Sprint(rounds)})
	}
	for _, prop := range []string{"x", "y"} {
		for _, g := range []viewstore.Grain{viewstore.Minute, viewstore.Hour} {
			want := map[cellID][]byte{}
			for p := range int32(parts) {
				for n := 1; n <= rounds; n++ {
					for _, c := range checkpointN(10+p, n).Cells {
						if c.Property == prop && c.Grain == g {
							want[idOf(c)] = withOffset(c)
						}
					}
				}
			}
			diffCells(t, fmt.Sprintf("%q g%d", prop, g), h.scan(t, ns, prop, g, day0, day0+int64(rounds+1)*g.Seconds()), want)
		}
		ws, err := h.s.Watermarks(h.ctx, ns, prop)
		if err != nil {
			t.Fatalf("Watermarks: %v", err)
		}
		if len(ws) != parts {
			t.Errorf("Watermarks(%q): %d, want %d", prop, len(ws), parts)
		}
	}
}

func testDurability(t *testing.T, h *harness) {
	ns := newNamespace()
	const p = 5
	h.commit(t, ns, checkpointN(p, 1))
	h.commit(t, ns, checkpointN(p, 2))
	h.reopen(t)
	checkThrough(t, h, ns, p, 2)
	h.commit(t, ns, checkpointN(p, 3))
	h.reopen(t)
	checkThrough(t, h, ns, p, 3)
	got, err := h.s.ListProgress(h.ctx, ns)
	if err != nil {
		t.Fatalf("ListProgress: %v", err)
	}
	if len(got) != 1 || got[0].Partition != p {
		t.Errorf("ListProgress after reopen: %+v, want partition %d only", got, p)
	}
}

// arbitraryStrings are valid UTF-8 strings with bytes that escape-based
// encodings must handle, and pairs that collide when they do not.
var arbitraryStrings = []string{
	"", "/", "//", "\x1f", "a\x1fb\x1fc", "\x00", "\x00\x00", "a", "a\x00", "a\x00\x01", "a\x00\xc3\xbf", "a\x01",
	"\x01", "\x7f", "ü", "日本語/パス", "emoji 🎉", "\ufffd", "quote\"'`", "new\nline\ttab", "%00", "a b",
	strings.Repeat("long/", 200),
}

func testArbitraryBytes(t *testing.T, h *harness) {
	ns := newNamespace()
	const p = 2
	t.Run("dims", func(t *testing.T) {
		want := map[cellID][]byte{}
		var cells []viewstore.Cell
		for i, d := range arbitraryStrings {
			for _, b := range []int64{day0, day0 + hour} {
				id := cellID{"site", viewstore.Hour, b, d, p}
				c := viewstore.Cell{Property: id.Property, Grain: id.Grain, Bucket: b, Dims: d, Partition: p, Value: []byte(fmt.Sprintf("#%d", i))}
				cells = append(cells, c)
				want[id] = withOffset(c)
			}
		}
		h.commitCells(t, ns, cells)
		diffCells(t, "ScanCells", h.scan(t, ns, "site", viewstore.Hour, day0, day0+day), want)
	})
	t.Run("state keys", func(t *testing.T) {
		var kvs []viewstore.KV
		want := map[string]string{}
		for i, k := range arbitraryStrings {
			if k == "" {
				continue
			}
			kvs = append(kvs, viewstore.KV{Key: k, Value: []byte(fmt.Sprintf("#%d", i))})
			want[k] = fmt.Sprintf("#%d", i)
		}
		h.commit(t, ns, viewstore.Checkpoint{Progress: viewstore.Progress{Partition: p + 1, Next: 1}, State: kvs})
		_, state := h.load(t, ns, p+1)
		checkState(t, "LoadPartition", state, want)
	})
	t.Run("properties and namespaces", func(t *testing.T) {
		var names []string
		for _, s := range arbitraryStrings {
			if s != "" {
				names = append(names, s)
			}
		}
		for i, name := range names {
			pns := viewstore.Namespace(string(ns) + "/" + name)
			cp := viewstore.Checkpoint{
				Progress:   viewstore.Progress{Partition: p, Next: int64(i + 1)},
				Cells:      []viewstore.Cell{{Property: name, Grain: viewstore.Minute, Bucket: day0, Dims: name, Partition: p, Value: []byte(fmt.Sprintf("#%d", i))}},
				Watermarks: []viewstore.Watermark{{Property: name, Partition: p, Time: time.UnixMilli(day0 * 1000), Offset: int64(i + 1)}},
			}
			h.commit(t, ns, cp)  // property name in the shared namespace
			h.commit(t, pns, cp) // and in a namespace of its own
		}
		for i, name := range names {
			pns := viewstore.Namespace(string(ns) + "/" + name)
			for _, n := range []viewstore.Namespace{ns, pns} {
				id := cellID{name, viewstore.Minute, day0, name, p}
				diffCells(t, fmt.Sprintf("property %q in %q", name, n), h.scan(t, n, name, viewstore.Minute, day0, day0+day),
					map[cellID][]byte{id: []byte(fmt.Sprintf("#%d@0", i))})
				ws, err := h.s.Watermarks(h.ctx, n, name)
				if err != nil {
					t.Fatalf("Watermarks: %v", err)
				}
				if len(ws) != 1 || ws[0].Property != name || ws[0].Offset != int64(i+1) {
					t.Errorf("Watermarks(%q, %q) = %+v, want one with offset %d", n, name, ws, i+1)
				}
			}
			pr, _ := h.load(t, pns, p)
			if pr.Next != int64(i+1) {
				t.Errorf("namespace %q: Next %d, want %d", pns, pr.Next, i+1)
			}
		}
	})
}

// dropOther is the checkpoint of partition 300 in testDropNamespace: one of
// its own property, so that checkThrough's checks of partition 3 hold next
// to it.
func dropOther(tag string) viewstore.Checkpoint {
	const q = 300
	cp := viewstore.Checkpoint{
		Progress:   viewstore.Progress{Partition: q, Next: 7, Applied: 4, Duplicates: 1, Excluded: 2, Watermark: time.UnixMilli(day0 * 1000).UTC()},
		State:      []viewstore.KV{{Key: "k", Value: []byte(tag)}},
		Watermarks: []viewstore.Watermark{{Property: "z", Partition: q, Time: time.UnixMilli(day0 * 1000).UTC(), Offset: 7}},
	}
	for _, g := range []viewstore.Grain{viewstore.Minute, viewstore.Hour} {
		cp.Cells = append(cp.Cells, viewstore.Cell{Property: "z", Grain: g, Bucket: day0, Dims: "d", Partition: q, Value: []byte(tag), Offset: 6})
	}
	return cp
}

func testDropNamespace(t *testing.T, h *harness) {
	ns := newNamespace()
	// Namespaces that must survive, two of which start with ns.
	others := []viewstore.Namespace{newNamespace(), viewstore.Namespace(string(ns) + "/x"), viewstore.Namespace(string(ns) + "\x00")}
	const p = 3
	for _, n := range append([]viewstore.Namespace{ns}, others...) {
		for k := 1; k <= 3; k++ {
			h.commit(t, n, checkpointN(p, k))
		}
		h.commit(t, n, dropOther(string(n)))
	}
	checkOther := func(t *testing.T, n viewstore.Namespace) {
		t.Helper()
		checkThrough(t, h, n, p, 3)
		cp := dropOther(string(n))
		pr, state := h.load(t, n, cp.Progress.Partition)
		checkProgress(t, fmt.Sprintf("%q partition %d", n, cp.Progress.Partition), pr, cp.Progress)
		checkState(t, fmt.Sprintf("%q partition %d", n, cp.Progress.Partition), state, map[string]string{"k": string(n)})
		if ws, err := h.s.Watermarks(h.ctx, n, "z"); err != nil || len(ws) != 1 || ws[0].Offset != 7 {
			t.Errorf("Watermarks(%q, z) = %+v, %v; want one with offset 7", n, ws, err)
		}
		for _, c := range cp.Cells {
			got := h.scan(t, n, "z", c.Grain, day0, day0+day)
			diffCells(t, fmt.Sprintf("%q, z g%d", n, c.Grain), got, map[cellID][]byte{idOf(c): withOffset(c)})
		}
		if list, err := h.s.ListProgress(h.ctx, n); err != nil || len(list) != 2 {
			t.Errorf("ListProgress(%q) = %+v, %v; want partitions %d and %d", n, list, err, p, cp.Progress.Partition)
		}
	}
	checkDropped := func(t *testing.T) {
		t.Helper()
		if list, err := h.s.ListProgress(h.ctx, ns); err != nil || len(list) != 0 {
			t.Errorf("ListProgress of the dropped namespace = %+v, %v; want none", list, err)
		}
		for _, part := range []int32{p, 300} {
			pr, state := h.load(t, ns, part)
			checkProgress(t, fmt.Sprintf("dropped namespace, partition %d", part), pr, viewstore.Progress{Partition: part})
			checkState(t, fmt.Sprintf("dropped namespace, partition %d", part), state, nil)
		}
		for _, prop := range []string{"x", "y", "z"} {
			if ws, err := h.s.Watermarks(h.ctx, ns, prop); err != nil || len(ws) != 0 {
				t.Errorf("Watermarks(%q) of the dropped namespace = %+v, %v; want none", prop, ws, err)
			}
			for _, g := range []viewstore.Grain{viewstore.Minute, viewstore.Hour} {
				diffCells(t, fmt.Sprintf("dropped namespace, %q g%d", prop, g), h.scan(t, ns, prop, g, day0-day, day0+day), nil)
			}
		}
	}
	drop := func(t *testing.T, n viewstore.Namespace) {
		t.Helper()
		if err := h.s.DropNamespace(h.ctx, n); err != nil {
			t.Fatalf("DropNamespace(%q): %v", n, err)
		}
	}

	drop(t, ns)
	t.Run("dropped", func(t *testing.T) { checkDropped(t) })
	for i, n := range others {
		t.Run(fmt.Sprintf("other namespace %d intact", i), func(t *testing.T) { checkOther(t, n) })
	}
	t.Run("again and never written", func(t *testing.T) {
		drop(t, ns)
		drop(t, newNamespace())
		checkDropped(t)
	})
	t.Run("after reopen", func(t *testing.T) {
		h.reopen(t)
		checkDropped(t)
		for _, n := range others {
			checkOther(t, n)
		}
	})
	t.Run("commit again", func(t *testing.T) {
		// Nothing of before the drop comes back: not the cells checkpoint
		// 2 and 3 overwrote, not their state, not partition 300.
		h.commit(t, ns, checkpointN(p, 1))
		checkThrough(t, h, ns, p, 1)
		if list, err := h.s.ListProgress(h.ctx, ns); err != nil || len(list) != 1 || list[0].Partition != p {
			t.Errorf("ListProgress = %+v, %v; want partition %d only", list, err, p)
		}
		pr, state := h.load(t, ns, 300)
		checkProgress(t, "partition 300", pr, viewstore.Progress{Partition: 300})
		checkState(t, "partition 300", state, nil)
		if ws, err := h.s.Watermarks(h.ctx, ns, "z"); err != nil || len(ws) != 0 {
			t.Errorf("Watermarks(z) = %+v, %v; want none", ws, err)
		}
		diffCells(t, "z g2", h.scan(t, ns, "z", viewstore.Hour, day0-day, day0+day), nil)
		for _, n := range others {
			checkOther(t, n)
		}
	})
}

func testCancelledContext(t *testing.T, h *harness) {
	ns := newNamespace()
	ctx, cancel := context.WithCancel(h.ctx)
	cancel()
	cp := checkpointN(4, 1)
	if err := h.s.Commit(ctx, ns, cp); err == nil {
		t.Error("Commit with a cancelled context returned nil")
	}
	pr, state := h.load(t, ns, 4)
	if pr.Next != 0 || len(state) != 0 {
		t.Errorf("Commit with a cancelled context wrote progress %+v and %d state entries", pr, len(state))
	}
	h.commit(t, ns, cp)
	if _, _, err := h.s.LoadPartition(ctx, ns, 4); err == nil {
		t.Error("LoadPartition with a cancelled context returned nil")
	}
	if _, err := h.s.ListProgress(ctx, ns); err == nil {
		t.Error("ListProgress with a cancelled context returned nil")
	}
	if _, err := h.s.Watermarks(ctx, ns, "x"); err == nil {
		t.Error("Watermarks with a cancelled context returned nil")
	}
	if err := h.s.ScanCells(ctx, ns, "x", viewstore.Hour, day0, day0+day, func(viewstore.Cell) error { return nil }); err == nil {
		t.Error("ScanCells with a cancelled context returned nil")
	}
	if err := h.s.DropNamespace(ctx, ns); err == nil {
		t.Error("DropNamespace with a cancelled context returned nil")
	}
	checkThrough(t, h, ns, 4, 1)
}

func testClosed(t *testing.T, h *harness) {
	ns := newNamespace()
	cp := checkpointN(1, 1)
	h.commit(t, ns, cp)
	if err := h.s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	calls := 0
	for _, tc := range []struct {
		name string
		op   func(s viewstore.Store) error
	}{
		{"Commit", func(s viewstore.Store) error { return s.Commit(h.ctx, ns, checkpointN(1, 2)) }},
		{"LoadPartition", func(s viewstore.Store) error { _, _, err := s.LoadPartition(h.ctx, ns, 1); return err }},
		{"ListProgress", func(s viewstore.Store) error { _, err := s.ListProgress(h.ctx, ns); return err }},
		{"Watermarks", func(s viewstore.Store) error { _, err := s.Watermarks(h.ctx, ns, "x"); return err }},
		{"DropNamespace", func(s viewstore.Store) error { return s.DropNamespace(h.ctx, ns) }},
		{"ScanCells", func(s viewstore.Store) error {
			return s.ScanCells(h.ctx, ns, "x", viewstore.Hour, day0, day0+day, func(viewstore.Cell) error { calls++; return nil })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("%s after Close panicked: %v", tc.name, r)
					}
				}()
				err = tc.op(h.s)
			}()
			if err == nil {
				t.Errorf("%s after Close returned nil", tc.name)
			}
		})
	}
	if calls != 0 {
		t.Errorf("ScanCells after Close called fn %d times", calls)
	}
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("second Close panicked: %v", r)
			}
		}()
		_ = h.s.Close()
	}()
	// Nothing was lost by closing.
	h.s = h.open()
	checkThrough(t, h, ns, 1, 1)
}

// LoadBucket returns one log partition's cells of one bucket and grain,
// nothing of the neighbouring buckets, grains, properties or partitions.
func testLoadBucket(t *testing.T, h *harness) {
	ns := newNamespace()
	const b0 = 1_700_000_000 - 1_700_000_000%3600
	var cps [3]viewstore.Checkpoint
	for p := range int32(3) {
		cps[p].Progress = viewstore.Progress{Partition: p, Next: 10}
		for _, prop := range []string{"p", "p2"} {
			for _, g := range []viewstore.Grain{viewstore.Hour, viewstore.Hour.WithRollup(3), viewstore.Minute} {
				for _, b := range []int64{b0, b0 + g.Seconds()} {
					for d := range 3 {
						cps[p].Cells = append(cps[p].Cells, viewstore.Cell{Property: prop, Grain: g, Bucket: b, Dims: fmt.Sprintf("d%d", d),
							Partition: p, Value: []byte(fmt.Sprintf("%s/%d/%d/%d/%d", prop, p, g, b, d)), Offset: int64(d)})
					}
				}
			}
		}
		h.commit(t, ns, cps[p])
	}
	for _, tc := range []struct {
		g      viewstore.Grain
		bucket int64
		part   int32
		want   int
	}{
		{viewstore.Hour, b0, 1, 3},
		{viewstore.Hour.WithRollup(3), b0 + 3600, 2, 3},
		{viewstore.Minute, b0 + 60, 0, 3},
		{viewstore.Minute, b0 + 120, 0, 0},
		{viewstore.Hour, b0, 7, 0},
	} {
		var got []string
		err := h.s.LoadBucket(h.ctx, ns, "p", tc.g, tc.bucket, tc.part, func(c viewstore.Cell) error {
			got = append(got, fmt.Sprintf("%s=%s@%d", c.Dims, c.Value, c.Offset))
			if c.Partition != tc.part || c.Bucket != tc.bucket || c.Grain != tc.g || c.Property != "p" {
				t.Errorf("LoadBucket(g%d, %d, part %d): cell %+v", tc.g, tc.bucket, tc.part, c)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		if tc.part < 3 {
			for _, c := range cps[tc.part].Cells {
				if c.Property == "p" && c.Grain == tc.g && c.Bucket == tc.bucket {
					want = append(want, fmt.Sprintf("%s=%s@%d", c.Dims, c.Value, c.Offset))
				}
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) || len(got) != tc.want {
			t.Errorf("LoadBucket(g%d, %d, part %d): %v, want %v", tc.g, tc.bucket, tc.part, got, want)
		}
	}
}
