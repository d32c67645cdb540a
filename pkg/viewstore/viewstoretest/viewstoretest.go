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
	"crypto/sha256"
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
		{"Additions", testAdditions},
		{"ScanStopsOnError", testScanStops},
		{"Blocks", testBlocks},
		{"BlocksManyDays", testBlocksManyDays},
		{"ListPending", testListPending},
		{"DeleteAdditions", testDeleteAdditions},
		{"Watermarks", testWatermarks},
		{"ListProgress", testListProgress},
		{"CommitVisible", testCommitVisible},
		{"ConcurrentCommits", testConcurrentCommits},
		{"Durability", testDurability},
		{"ArbitraryBytes", testArbitraryBytes},
		{"DropNamespace", testDropNamespace},
		{"CancelledContext", testCancelledContext},
		{"Fence", testFence},
		{"LargeData", testLargeData},
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

// checkpoint is partition p's checkpoint of the offsets [start, end) with
// the additions adds, whose Partition, Start and End it sets.
func checkpoint(p int32, start, end int64, adds ...viewstore.Addition) viewstore.Checkpoint {
	cp := viewstore.Checkpoint{Progress: viewstore.Progress{Partition: p, Next: end, Applied: end - start}}
	for _, a := range adds {
		a.Partition, a.Start, a.End = p, start, end
		cp.Additions = append(cp.Additions, a)
	}
	return cp
}

func (h *harness) load(t *testing.T, ns viewstore.Namespace, p int32) (viewstore.Progress, map[string][]byte) {
	t.Helper()
	pr, kvs, err := h.s.LoadPartition(h.ctx, ns, p)
	if err != nil {
		t.Fatalf("LoadPartition(%q, %d): %v", ns, p, err)
	}
	checkIntent(t, fmt.Sprintf("LoadPartition(%q, %d)", ns, p), pr)
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

// checkIntent checks the Intent of a progress read after successful
// commits only: none, or none past Next.
func checkIntent(t *testing.T, what string, pr viewstore.Progress) {
	t.Helper()
	if pr.Intent != 0 && pr.Intent > pr.Next {
		t.Errorf("%s: Intent %d > Next %d after successful commits", what, pr.Intent, pr.Next)
	}
}

// addKey is an addition's primary key.
type addKey struct {
	Property  string
	Hour      int64
	Partition int32
	Start     int64
}

func keyOf(a viewstore.Addition) addKey { return addKey{a.Property, a.Hour, a.Partition, a.Start} }

func (k addKey) String() string {
	return fmt.Sprintf("{%q h%d p%d @%d}", k.Property, k.Hour, k.Partition, k.Start)
}

// addValue is what a test compares of an addition besides its key.
func addValue(a viewstore.Addition) string { return fmt.Sprintf("end %d %q", a.End, a.Block) }

// blockKey is a block's primary key.
type blockKey struct {
	Property string
	Kind     viewstore.Kind
	Bucket   int64
}

func (k blockKey) String() string { return fmt.Sprintf("{%q k%d %d}", k.Property, k.Kind, k.Bucket) }

func blockKeyOf(b viewstore.Block) blockKey { return blockKey{b.Property, b.Kind, b.Bucket} }

// blockValue is what a test compares of a block besides its key: its
// cover (trailing zeros are the same as none) and data.
func blockValue(b viewstore.Block) string {
	c := b.Cover
	for len(c) > 0 && c[len(c)-1] == 0 {
		c = c[:len(c)-1]
	}
	return fmt.Sprintf("cover %v %q", c, b.Data)
}

// scanAdds runs ScanAdditions, checks that every addition has the
// requested property, an hour in [from, to), comes in hour order and only
// once, and returns them by key.
func (h *harness) scanAdds(t *testing.T, ns viewstore.Namespace, property string, from, to int64) map[addKey]string {
	t.Helper()
	got := map[addKey]string{}
	last, n := int64(0), 0
	err := h.s.ScanAdditions(h.ctx, ns, property, from, to, func(a viewstore.Addition) error {
		k := keyOf(a)
		switch {
		case a.Property != property:
			t.Errorf("ScanAdditions(%q): got addition %v of another property", property, k)
		case a.Hour < from || a.Hour >= to:
			t.Errorf("ScanAdditions(%q, [%d, %d)): got addition %v outside the range", property, from, to, k)
		case n > 0 && a.Hour < last:
			t.Errorf("ScanAdditions(%q): hour %d after %d: not in hour order", property, a.Hour, last)
		}
		if _, dup := got[k]; dup {
			t.Errorf("ScanAdditions(%q): addition %v returned twice", property, k)
		}
		got[k] = addValue(a)
		last = a.Hour
		n++
		return nil
	})
	if err != nil {
		t.Fatalf("ScanAdditions(%q, %q, [%d, %d)): %v", ns, property, from, to, err)
	}
	return got
}

// scanBlocks runs ScanBlocks, checks property, kind, range and strict
// bucket order, and returns the blocks by key.
func (h *harness) scanBlocks(t *testing.T, ns viewstore.Namespace, property string, k viewstore.Kind, from, to int64) map[blockKey]string {
	t.Helper()
	got := map[blockKey]string{}
	last, n := int64(0), 0
	err := h.s.ScanBlocks(h.ctx, ns, property, k, from, to, func(b viewstore.Block) error {
		key := blockKeyOf(b)
		switch {
		case b.Property != property || b.Kind != k:
			t.Errorf("ScanBlocks(%q, k%d): got block %v of another property or kind", property, k, key)
		case b.Bucket < from || b.Bucket >= to:
			t.Errorf("ScanBlocks(%q, k%d, [%d, %d)): got block %v outside the range", property, k, from, to, key)
		case n > 0 && b.Bucket <= last:
			t.Errorf("ScanBlocks(%q, k%d): bucket %d after %d: not in bucket order", property, k, b.Bucket, last)
		}
		got[key] = blockValue(b)
		last = b.Bucket
		n++
		return nil
	})
	if err != nil {
		t.Fatalf("ScanBlocks(%q, %q, k%d, [%d, %d)): %v", ns, property, k, from, to, err)
	}
	return got
}

// pending runs ListPending and returns the End of every listed key,
// checking that each belongs to the shard and comes once.
func (h *harness) pending(t *testing.T, ns viewstore.Namespace, shard int) map[addKey]int64 {
	t.Helper()
	got := map[addKey]int64{}
	err := h.s.ListPending(h.ctx, ns, shard, func(pk viewstore.PendingKey) error {
		k := addKey{pk.Property, pk.Hour, pk.Partition, pk.Start}
		if s := viewstore.ShardOf(pk.Property); s != shard {
			t.Errorf("ListPending(shard %d): got %v of shard %d", shard, k, s)
		}
		if _, dup := got[k]; dup {
			t.Errorf("ListPending(shard %d): %v listed twice", shard, k)
		}
		got[k] = pk.End
		return nil
	})
	if err != nil {
		t.Fatalf("ListPending(%q, %d): %v", ns, shard, err)
	}
	return got
}

func (h *harness) putBlock(t *testing.T, ns viewstore.Namespace, b viewstore.Block) {
	t.Helper()
	if err := h.s.PutBlock(h.ctx, ns, b); err != nil {
		t.Fatalf("PutBlock(%q, %v): %v", ns, blockKeyOf(b), err)
	}
}

// putBlocks writes blocks, a few at a time.
func (h *harness) putBlocks(t *testing.T, ns viewstore.Namespace, blocks []viewstore.Block) {
	t.Helper()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	var mu sync.Mutex
	var first error
	for _, b := range blocks {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := h.s.PutBlock(h.ctx, ns, b); err != nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("PutBlock(%q, %v): %w", ns, blockKeyOf(b), err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if first != nil {
		t.Fatal(first)
	}
}

// diff reports differences between got and want.
func diff[K comparable, V comparable](t *testing.T, what string, got, want map[K]V) {
	t.Helper()
	var keys []K
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b K) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
	bad := 0
	for _, k := range keys {
		g, inGot := got[k]
		w, inWant := want[k]
		var msg string
		switch {
		case !inGot:
			msg = "missing"
		case !inWant:
			msg = fmt.Sprintf("unexpected (%v)", g)
		case g != w:
			msg = fmt.Sprintf("%v, want %v", g, w)
		default:
			continue
		}
		if bad++; bad <= 10 {
			t.Errorf("%s: %v %s", what, k, msg)
		}
	}
	if bad > 10 {
		t.Errorf("%s: %d entries differ in all (got %d, want %d)", what, bad, len(got), len(want))
	}
}

func checkProgress(t *testing.T, what string, got, want viewstore.Progress) {
	t.Helper()
	if got.Partition != want.Partition || got.Next != want.Next || got.Applied != want.Applied ||
		got.Duplicates != want.Duplicates || got.Excluded != want.Excluded || !sameTime(got.Watermark, want.Watermark) {
		t.Errorf("%s: progress %+v, want %+v", what, got, want)
	}
	checkIntent(t, what, got)
}

// day0 is a fixed UTC midnight all test hours are relative to.
var day0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).Unix()

const (
	minute = int64(60)
	hour   = int64(3600)
	day    = 24 * hour
)

// addData is the data a test addition gets; version tells commits apart.
func addData(k addKey, version int) []byte {
	return []byte(fmt.Sprintf("v%d:%s", version, k))
}

func testAdditions(t *testing.T, h *harness) {
	ns := newNamespace()
	properties := []string{"a", "ab", "a\x00b", "site/1"}
	partitions := []int32{0, 1, 256}
	mid := day0 + day
	want := map[addKey]string{}
	// Per partition: [0, 100) adds to every hour around a day boundary,
	// [100, 250) to the later ones again.
	type ck struct {
		start, end int64
		from       int64
	}
	cks := []ck{{0, 100, mid - 3*hour}, {100, 250, mid}}
	build := func(p int32, c ck, version int, record bool) viewstore.Checkpoint {
		var adds []viewstore.Addition
		for _, prop := range properties {
			for hr := c.from; hr < mid+4*hour; hr += hour {
				k := addKey{prop, hr, p, c.start}
				a := viewstore.Addition{Property: prop, Hour: hr, Block: addData(k, version)}
				adds = append(adds, a)
				if record {
					a.Partition, a.Start, a.End = p, c.start, c.end
					want[k] = addValue(a)
				}
			}
		}
		return checkpoint(p, c.start, c.end, adds...)
	}
	for _, p := range partitions {
		for _, c := range cks {
			h.commit(t, ns, build(p, c, 1, true))
		}
	}
	// Same keys in other namespaces, with other data.
	others := []viewstore.Namespace{newNamespace(), viewstore.Namespace(string(ns) + "/x"), viewstore.Namespace(string(ns) + "\x00")}
	for _, o := range others {
		for _, p := range partitions {
			cp := build(p, cks[0], 1, false)
			for i := range cp.Additions {
				cp.Additions[i].Block = []byte("other namespace")
			}
			h.commit(t, o, cp)
		}
	}

	filter := func(prop string, from, to int64) map[addKey]string {
		out := map[addKey]string{}
		for k, v := range want {
			if k.Property == prop && k.Hour >= from && k.Hour < to {
				out[k] = v
			}
		}
		return out
	}
	// Per hour: 3 partitions of the first checkpoint, and 3 of the second
	// from mid on.
	ranges := []struct {
		name     string
		prop     string
		from, to int64
		count    int
	}{
		{"all hours", "a", mid - day, mid + day, 7*3 + 4*3},
		{"from inclusive, to exclusive", "a", mid - 2*hour, mid + 2*hour, 4*3 + 2*3},
		{"unaligned bounds", "a", mid - 2*hour - 1, mid + 2*hour + 1, 5*3 + 3*3},
		{"one hour", "ab", mid, mid + 1, 3 + 3},
		{"property with NUL", "a\x00b", mid - day, mid + day, 7*3 + 4*3},
		{"property with slash", "site/1", mid, mid + day, 4 * 3 * 2},
		{"empty range", "a", mid, mid, 0},
		{"reversed range", "a", mid + hour, mid - hour, 0},
		{"before all", "a", mid - 10*day, mid - 5*day, 0},
		{"after all", "a", mid + 5*hour, mid + 3*day, 0},
		{"unknown property", "b", mid - day, mid + day, 0},
		{"prefix of a property", "site", mid - day, mid + day, 0},
	}
	check := func(label string) {
		for _, r := range ranges {
			t.Run(label+"/"+r.name, func(t *testing.T) {
				got := h.scanAdds(t, ns, r.prop, r.from, r.to)
				if len(got) != r.count {
					t.Errorf("got %d additions, want %d", len(got), r.count)
				}
				diff(t, "ScanAdditions", got, filter(r.prop, r.from, r.to))
			})
		}
	}
	check("committed")

	// Writing a checkpoint again (same keys) replaces its additions.
	h.commit(t, ns, build(1, cks[1], 2, true))
	h.commit(t, ns, build(256, cks[0], 3, true))
	check("rewritten")

	for i, o := range others {
		t.Run(fmt.Sprintf("other namespace %d", i), func(t *testing.T) {
			got := h.scanAdds(t, o, "a", mid-day, mid+day)
			if len(got) != 7*3 {
				t.Errorf("got %d additions, want %d", len(got), 7*3)
			}
			for k, v := range got {
				if !strings.HasSuffix(v, `"other namespace"`) {
					t.Errorf("addition %v is %s, of another namespace", k, v)
				}
			}
		})
	}
}

func testScanStops(t *testing.T, h *harness) {
	ns := newNamespace()
	var adds []viewstore.Addition
	var blocks []viewstore.Block
	for i := int64(0); i < 20; i++ {
		adds = append(adds, viewstore.Addition{Property: "p", Hour: day0 + i*hour, Block: []byte("v")})
		// Hour blocks 2 days apart: 40 days, more than one month.
		blocks = append(blocks, viewstore.Block{Property: "p", Kind: viewstore.HourBlock, Bucket: day0 + 2*i*day, Data: []byte("b")})
	}
	h.commit(t, ns, checkpoint(0, 0, 10, adds...))
	h.putBlocks(t, ns, blocks)
	stop := errors.New("stop here")
	for _, op := range []struct {
		name string
		run  func(fn func() error) error
	}{
		{"ScanAdditions", func(fn func() error) error {
			return h.s.ScanAdditions(h.ctx, ns, "p", day0, day0+day, func(viewstore.Addition) error { return fn() })
		}},
		{"ScanBlocks", func(fn func() error) error {
			return h.s.ScanBlocks(h.ctx, ns, "p", viewstore.HourBlock, day0, day0+60*day, func(viewstore.Block) error { return fn() })
		}},
		{"ListPending", func(fn func() error) error {
			return h.s.ListPending(h.ctx, ns, viewstore.ShardOf("p"), func(viewstore.PendingKey) error { return fn() })
		}},
	} {
		for _, n := range []int{1, 3, 20} {
			t.Run(fmt.Sprintf("%s after %d", op.name, n), func(t *testing.T) {
				calls := 0
				err := op.run(func() error {
					calls++
					if calls == n {
						return stop
					}
					return nil
				})
				if !errors.Is(err, stop) {
					t.Errorf("%s returned %v, want fn's error", op.name, err)
				}
				if calls != n {
					t.Errorf("fn called %d times, want %d", calls, n)
				}
			})
		}
	}
}

// coverOf is a test block's cover: of varied lengths, with zeros, large
// offsets and partitions far along.
func coverOf(i int, version int) []int64 {
	switch i % 5 {
	case 0:
		return nil
	case 1:
		return []int64{int64(7 * version)}
	case 2:
		return []int64{0, 0, int64(3 * version), 0}
	case 3:
		c := make([]int64, 300)
		for j := range c {
			c[j] = int64(j*1000 + i + version)
		}
		c[299] = 1<<40 + int64(version)
		return c
	default:
		return []int64{1<<50 + int64(version), 0, 1}
	}
}

func testBlocks(t *testing.T, h *harness) {
	ns := newNamespace()
	others := []viewstore.Namespace{newNamespace(), viewstore.Namespace(string(ns) + "/x"), viewstore.Namespace(string(ns) + "\x00")}
	properties := []string{"p", "p\x00", "pq"}
	want := map[blockKey]string{}
	var blocks []viewstore.Block
	mk := func(prop string, k viewstore.Kind, bucket int64, i, version int) viewstore.Block {
		return viewstore.Block{Property: prop, Kind: k, Bucket: bucket, Cover: coverOf(i, version),
			Data: []byte(fmt.Sprintf("v%d:%s", version, blockKey{prop, k, bucket}))}
	}
	for _, prop := range properties {
		for i := range 28 {
			blocks = append(blocks, mk(prop, viewstore.HourBlock, day0-2*hour+int64(i)*hour, i, 1))
		}
		for i := range 4 {
			blocks = append(blocks, mk(prop, viewstore.DayBlock, day0-day+int64(i)*day, i, 1))
		}
	}
	for _, b := range blocks {
		want[blockKeyOf(b)] = blockValue(b)
	}
	h.putBlocks(t, ns, blocks)
	for _, o := range others {
		var obs []viewstore.Block
		for _, b := range blocks {
			b.Data = []byte("other namespace")
			obs = append(obs, b)
		}
		h.putBlocks(t, o, obs)
	}

	filter := func(prop string, k viewstore.Kind, from, to int64) map[blockKey]string {
		out := map[blockKey]string{}
		for key, v := range want {
			if key.Property == prop && key.Kind == k && key.Bucket >= from && key.Bucket < to {
				out[key] = v
			}
		}
		return out
	}
	ranges := []struct {
		name     string
		prop     string
		k        viewstore.Kind
		from, to int64
		count    int
	}{
		{"all hours", "p", viewstore.HourBlock, day0 - day, day0 + 2*day, 28},
		{"all days", "p", viewstore.DayBlock, day0 - 10*day, day0 + 10*day, 4},
		{"from inclusive, to exclusive", "p", viewstore.HourBlock, day0, day0 + 3*hour, 3},
		{"days from inclusive, to exclusive", "p", viewstore.DayBlock, day0, day0 + 2*day, 2},
		{"unaligned bounds", "p", viewstore.HourBlock, day0 - 1, day0 + 2*hour + 1, 3},
		{"unaligned day bounds", "p", viewstore.DayBlock, day0 - 1, day0 + day + 1, 2},
		{"one hour", "pq", viewstore.HourBlock, day0 + 5*hour, day0 + 5*hour + 1, 1},
		{"property with NUL", "p\x00", viewstore.HourBlock, day0 - day, day0 + 2*day, 28},
		{"empty range", "p", viewstore.HourBlock, day0, day0, 0},
		{"reversed range", "p", viewstore.DayBlock, day0 + day, day0 - day, 0},
		{"before all", "p", viewstore.HourBlock, day0 - 10*day, day0 - 5*day, 0},
		{"after all", "p", viewstore.DayBlock, day0 + 5*day, day0 + 30*day, 0},
		{"unknown property", "q", viewstore.HourBlock, day0 - day, day0 + 2*day, 0},
	}
	check := func(label string) {
		for _, r := range ranges {
			t.Run(label+"/"+r.name, func(t *testing.T) {
				got := h.scanBlocks(t, ns, r.prop, r.k, r.from, r.to)
				if len(got) != r.count {
					t.Errorf("got %d blocks, want %d", len(got), r.count)
				}
				diff(t, "ScanBlocks", got, filter(r.prop, r.k, r.from, r.to))
			})
		}
	}
	check("put")

	// PutBlock replaces: new covers (shorter and longer) and data.
	var again []viewstore.Block
	for i, b := range blocks {
		if i%2 == 0 {
			nb := mk(b.Property, b.Kind, b.Bucket, i+1, 2)
			want[blockKeyOf(nb)] = blockValue(nb)
			again = append(again, nb)
		}
	}
	h.putBlocks(t, ns, again)
	check("replaced")

	t.Run("cover", func(t *testing.T) {
		c := coverOf(3, 1)
		b := viewstore.Block{Property: "cover", Kind: viewstore.DayBlock, Bucket: day0, Cover: c, Data: []byte("d")}
		h.putBlock(t, ns, b)
		n := 0
		err := h.s.ScanBlocks(h.ctx, ns, "cover", viewstore.DayBlock, day0, day0+day, func(got viewstore.Block) error {
			n++
			for p := int32(0); p < int32(len(c))+10; p++ {
				if g, w := got.Covered(p), b.Covered(p); g != w {
					t.Errorf("Covered(%d) = %d, want %d", p, g, w)
				}
			}
			return nil
		})
		if err != nil || n != 1 {
			t.Fatalf("ScanBlocks: %d blocks, %v", n, err)
		}
	})

	for i, o := range others {
		t.Run(fmt.Sprintf("other namespace %d", i), func(t *testing.T) {
			got := h.scanBlocks(t, o, "p", viewstore.HourBlock, day0-day, day0+2*day)
			if len(got) != 28 {
				t.Errorf("got %d blocks, want 28", len(got))
			}
			for k, v := range got {
				if !strings.HasSuffix(v, `"other namespace"`) {
					t.Errorf("block %v is %s, of another namespace", k, v)
				}
			}
		})
	}
}

// testBlocksManyDays scans hour blocks over months and day blocks over
// years.
func testBlocksManyDays(t *testing.T, h *harness) {
	ns := newNamespace()
	want := map[blockKey]string{}
	var blocks []viewstore.Block
	i := 0
	for b := day0; b < day0+100*day; b += 7 * hour {
		blocks = append(blocks, viewstore.Block{Property: "site", Kind: viewstore.HourBlock, Bucket: b, Cover: coverOf(i, 1), Data: []byte(fmt.Sprint(b))})
		i++
	}
	for b := day0 - 400*day; b < day0+400*day; b += 2 * day {
		blocks = append(blocks, viewstore.Block{Property: "site", Kind: viewstore.DayBlock, Bucket: b, Cover: coverOf(i, 1), Data: []byte(fmt.Sprint(b))})
		i++
	}
	for _, b := range blocks {
		want[blockKeyOf(b)] = blockValue(b)
	}
	h.putBlocks(t, ns, blocks)
	filter := func(k viewstore.Kind, from, to int64) map[blockKey]string {
		out := map[blockKey]string{}
		for key, v := range want {
			if key.Kind == k && key.Bucket >= from && key.Bucket < to {
				out[key] = v
			}
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		k        viewstore.Kind
		from, to int64
	}{
		{"30 days of hours", viewstore.HourBlock, day0 + 5*day, day0 + 35*day},
		{"65 days of hours from mid-day", viewstore.HourBlock, day0 + 5*day + 7*hour, day0 + 70*day + 7*hour},
		{"all hours and more", viewstore.HourBlock, day0 - 3*day, day0 + 150*day},
		{"a few hours", viewstore.HourBlock, day0 + 31*day - 10*hour, day0 + 31*day + 10*hour},
		{"400 days", viewstore.DayBlock, day0 - 200*day, day0 + 200*day},
		{"all days and more", viewstore.DayBlock, day0 - 1000*day, day0 + 1000*day},
		{"a few days", viewstore.DayBlock, day0 - 3*day, day0 + 3*day},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := filter(tc.k, tc.from, tc.to)
			got := h.scanBlocks(t, ns, "site", tc.k, tc.from, tc.to)
			if len(got) != len(w) || len(w) == 0 {
				t.Errorf("got %d blocks, want %d", len(got), len(w))
			}
			diff(t, "ScanBlocks", got, w)
		})
	}
}

func testListPending(t *testing.T, h *harness) {
	ns, other := newNamespace(), newNamespace()
	var props []string
	for i := range 150 {
		props = append(props, fmt.Sprintf("prop/%d", i))
	}
	want := map[addKey]int64{}
	for _, p := range []int32{0, 1, 300} {
		var adds []viewstore.Addition
		for i, prop := range props {
			adds = append(adds, viewstore.Addition{Property: prop, Hour: day0, Block: []byte("data")})
			if i%3 == 0 {
				adds = append(adds, viewstore.Addition{Property: prop, Hour: day0 + hour, Block: []byte("data")})
			}
		}
		cp := checkpoint(p, 0, 10, adds...)
		h.commit(t, ns, cp)
		for _, a := range cp.Additions {
			want[keyOf(a)] = a.End
		}
		// The same in another namespace, in other partitions.
		h.commit(t, other, checkpoint(p+7, 0, 10, adds...))
	}
	var adds []viewstore.Addition
	for i, prop := range props {
		if i%5 == 0 {
			adds = append(adds, viewstore.Addition{Property: prop, Hour: day0, Block: []byte("more data")})
		}
	}
	cp := checkpoint(0, 10, 25, adds...)
	h.commit(t, ns, cp)
	for _, a := range cp.Additions {
		want[keyOf(a)] = a.End
	}
	// Each key carries the size of its addition's data.
	for shard := range viewstore.Shards {
		err := h.s.ListPending(h.ctx, ns, shard, func(pk viewstore.PendingKey) error {
			size := len("data")
			if pk.Start == 10 {
				size = len("more data")
			}
			if pk.Bytes != size {
				t.Errorf("ListPending(shard %d): %v has Bytes %d, want %d", shard, addKey{pk.Property, pk.Hour, pk.Partition, pk.Start}, pk.Bytes, size)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("ListPending(%q, %d): %v", ns, shard, err)
		}
	}
	total := 0
	for shard := range viewstore.Shards {
		w := map[addKey]int64{}
		for k, v := range want {
			if viewstore.ShardOf(k.Property) == shard {
				w[k] = v
			}
		}
		diff(t, fmt.Sprintf("ListPending(shard %d)", shard), h.pending(t, ns, shard), w)
		total += len(w)
	}
	if total != len(want) {
		t.Errorf("%d pending additions over all shards, want %d", total, len(want))
	}
	if got := h.pending(t, newNamespace(), viewstore.ShardOf(props[0])); len(got) != 0 {
		t.Errorf("ListPending of a fresh namespace: %v", got)
	}
}

func testDeleteAdditions(t *testing.T, h *harness) {
	ns, other := newNamespace(), newNamespace()
	h0 := day0 + 5*hour
	want := map[addKey]string{}
	// Partitions 0 and 1, checkpoints [0,10) [10,20) [20,30) [30,40), each
	// adding to hours h0 and h0+1h of properties p and p2.
	for _, p := range []int32{0, 1} {
		for start := int64(0); start < 40; start += 10 {
			var adds []viewstore.Addition
			for _, prop := range []string{"p", "p2"} {
				for _, hr := range []int64{h0, h0 + hour} {
					adds = append(adds, viewstore.Addition{Property: prop, Hour: hr, Block: addData(addKey{prop, hr, p, start}, 1)})
				}
			}
			cp := checkpoint(p, start, start+10, adds...)
			h.commit(t, ns, cp)
			h.commit(t, other, cp)
			for _, a := range cp.Additions {
				want[keyOf(a)] = addValue(a)
			}
		}
	}
	otherWant := maps(want)
	steps := []struct {
		name   string
		prop   string
		hour   int64
		part   int32
		before int64
	}{
		{"below 20", "p", h0, 0, 20},
		{"again", "p", h0, 0, 20},
		{"below a start", "p", h0 + hour, 1, 30},
		{"below the first", "p", h0, 1, 0},
		{"nothing stored", "p", h0 + 2*hour, 0, 100},
		{"unknown property", "q", h0, 0, 100},
		{"all of an hour", "p2", h0, 0, 41},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if err := h.s.DeleteAdditions(h.ctx, ns, st.prop, st.hour, st.part, st.before); err != nil {
				t.Fatalf("DeleteAdditions: %v", err)
			}
			for k := range want {
				if k.Property == st.prop && k.Hour == st.hour && k.Partition == st.part && k.Start < st.before {
					delete(want, k)
				}
			}
			for _, prop := range []string{"p", "p2"} {
				diff(t, "ScanAdditions("+prop+")", h.scanAdds(t, ns, prop, day0, day0+day), filterProp(want, prop))
				wantPending := map[addKey]int64{}
				for k := range filterProp(want, prop) {
					wantPending[k] = k.Start + 10
				}
				gotPending := map[addKey]int64{}
				for k, v := range h.pending(t, ns, viewstore.ShardOf(prop)) {
					if k.Property == prop {
						gotPending[k] = v
					}
				}
				diff(t, "ListPending("+prop+")", gotPending, wantPending)
			}
		})
	}
	t.Run("other namespace intact", func(t *testing.T) {
		for _, prop := range []string{"p", "p2"} {
			diff(t, "ScanAdditions("+prop+")", h.scanAdds(t, other, prop, day0, day0+day), filterProp(otherWant, prop))
		}
	})
}

func maps[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func filterProp(m map[addKey]string, prop string) map[addKey]string {
	out := map[addKey]string{}
	for k, v := range m {
		if k.Property == prop {
			out[k] = v
		}
	}
	return out
}

// checkpointN is the n-th checkpoint of partition p in testCommitVisible and
// testDurability: offsets [100(n-1), 100n), additions of two properties to
// hour n and n-1, state and watermarks, all derived from n.
func checkpointN(p int32, n int) viewstore.Checkpoint {
	wmTime := time.UnixMilli((day0 + int64(n)*minute) * 1000).UTC()
	start, end := int64(100*(n-1)), int64(100*n)
	var adds []viewstore.Addition
	for _, prop := range []string{"x", "y"} {
		for _, hr := range []int64{day0 + int64(n)*hour, day0 + int64(n-1)*hour} {
			if hr == day0 && n > 1 {
				continue
			}
			adds = append(adds, viewstore.Addition{Property: prop, Hour: hr, Block: addData(addKey{prop, hr, p, start}, n)})
		}
	}
	cp := checkpoint(p, start, end, adds...)
	cp.Progress = viewstore.Progress{Partition: p, Next: end, Applied: int64(90 * n), Duplicates: int64(n), Excluded: int64(8 * n), Watermark: wmTime}
	cp.State = []viewstore.KV{
		{Key: fmt.Sprintf("seen/%d", n), Value: []byte(fmt.Sprint(n))},
		{Key: "last", Value: []byte(fmt.Sprint(n))},
	}
	if n > 1 {
		cp.State = append(cp.State, viewstore.KV{Key: fmt.Sprintf("seen/%d", n-1), Delete: true})
	}
	for _, prop := range []string{"x", "y"} {
		cp.Watermarks = append(cp.Watermarks, viewstore.Watermark{Property: prop, Partition: p, Time: wmTime, Offset: end})
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
		want := map[addKey]string{}
		for k := 1; k <= n; k++ {
			for _, a := range checkpointN(p, k).Additions {
				if a.Property == prop {
					want[keyOf(a)] = addValue(a)
				}
			}
		}
		got := h.scanAdds(t, ns, prop, day0, day0+int64(n+1)*hour)
		diff(t, fmt.Sprintf("after checkpoint %d, additions of %q", n, prop), got, want)
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
		want := map[addKey]string{}
		for p := range int32(parts) {
			for n := 1; n <= rounds; n++ {
				for _, a := range checkpointN(10+p, n).Additions {
					if a.Property == prop {
						want[keyOf(a)] = addValue(a)
					}
				}
			}
		}
		diff(t, fmt.Sprintf("additions of %q", prop), h.scanAdds(t, ns, prop, day0, day0+int64(rounds+1)*hour), want)
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
	b := viewstore.Block{Property: "x", Kind: viewstore.HourBlock, Bucket: day0, Cover: []int64{0, 5: 100}, Data: []byte("block")}
	h.putBlock(t, ns, b)
	if err := h.s.DeleteAdditions(h.ctx, ns, "y", day0+hour, p, 100); err != nil {
		t.Fatalf("DeleteAdditions: %v", err)
	}
	h.reopen(t)
	// checkpoint 1's addition of y to hour 1 is gone.
	pr, _ := h.load(t, ns, p)
	checkProgress(t, "after reopen", pr, checkpointN(p, 2).Progress)
	wantY := map[addKey]string{}
	for n := 1; n <= 2; n++ {
		for _, a := range checkpointN(p, n).Additions {
			if a.Property == "y" && !(a.Hour == day0+hour && a.Start < 100) {
				wantY[keyOf(a)] = addValue(a)
			}
		}
	}
	diff(t, "additions of y after reopen", h.scanAdds(t, ns, "y", day0, day0+day), wantY)
	diff(t, "blocks after reopen", h.scanBlocks(t, ns, "x", viewstore.HourBlock, day0, day0+day), map[blockKey]string{blockKeyOf(b): blockValue(b)})
	h.commit(t, ns, checkpointN(p, 3))
	h.reopen(t)
	pr, _ = h.load(t, ns, p)
	checkProgress(t, "after second reopen", pr, checkpointN(p, 3).Progress)
	got, err := h.s.ListProgress(h.ctx, ns)
	if err != nil {
		t.Fatalf("ListProgress: %v", err)
	}
	if len(got) != 1 || got[0].Partition != p {
		t.Errorf("ListProgress after reopen: %+v, want partition %d only", got, p)
	}
	diff(t, "blocks after second reopen", h.scanBlocks(t, ns, "x", viewstore.HourBlock, day0, day0+day), map[blockKey]string{blockKeyOf(b): blockValue(b)})
}

// arbitraryStrings are valid UTF-8 strings with bytes that escape-based
// encodings must handle, and pairs that collide when they do not.
var arbitraryStrings = []string{
	"", "/", "//", "\x1f", "a\x1fb\x1fc", "\x00", "\x00\x00", "a", "a\x00", "a\x00\x01", "a\x00\xc3\xbf", "a\x01",
	"\x01", "\x7f", "ü", "日本語/パス", "emoji 🎉", "\ufffd", "quote\"'`", "new\nline\ttab", "%00", "a b",
	strings.Repeat("long/", 200),
}

// arbitraryData are addition and block data: empty, binary, and large
// (a row of a megabyte).
func arbitraryData() [][]byte {
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i*7 + i>>8)
	}
	mid := make([]byte, 300<<10)
	for i := range mid {
		mid[i] = byte(i * 13)
	}
	return [][]byte{nil, {}, {0}, {0, 0, 1}, {0xff}, {0xff, 0}, []byte("\x00\x01\x00\xff"), big[:100], big[:64<<10], mid, mid[1:], big}
}

func testArbitraryBytes(t *testing.T, h *harness) {
	ns := newNamespace()
	const p = 2
	t.Run("data", func(t *testing.T) {
		want := map[addKey]string{}
		wantB := map[blockKey]string{}
		var adds []viewstore.Addition
		for i, d := range arbitraryData() {
			adds = append(adds, viewstore.Addition{Property: "site", Hour: day0 + int64(i)*hour, Block: d})
			b := viewstore.Block{Property: "site", Kind: viewstore.HourBlock, Bucket: day0 + int64(i)*hour, Cover: coverOf(i, 1), Data: d}
			h.putBlock(t, ns, b)
			wantB[blockKeyOf(b)] = blockValue(b)
		}
		cp := checkpoint(p, 0, 50, adds...)
		h.commit(t, ns, cp)
		for _, a := range cp.Additions {
			want[keyOf(a)] = addValue(a)
		}
		diff(t, "ScanAdditions", h.scanAdds(t, ns, "site", day0, day0+day), want)
		diff(t, "ScanBlocks", h.scanBlocks(t, ns, "site", viewstore.HourBlock, day0, day0+day), wantB)
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
			cp := checkpoint(p, int64(i), int64(i+1), viewstore.Addition{Property: name, Hour: day0, Block: []byte(fmt.Sprintf("#%d", i))})
			cp.Watermarks = []viewstore.Watermark{{Property: name, Partition: p, Time: time.UnixMilli(day0 * 1000), Offset: int64(i + 1)}}
			b := viewstore.Block{Property: name, Kind: viewstore.DayBlock, Bucket: day0, Cover: []int64{int64(i)}, Data: []byte(fmt.Sprintf("#%d", i))}
			for _, n := range []viewstore.Namespace{ns, pns} { // in the shared namespace and one of its own
				h.commit(t, n, cp)
				h.putBlock(t, n, b)
			}
		}
		for i, name := range names {
			pns := viewstore.Namespace(string(ns) + "/" + name)
			for _, n := range []viewstore.Namespace{ns, pns} {
				k := addKey{name, day0, p, int64(i)}
				diff(t, fmt.Sprintf("additions of %q in %q", name, n), h.scanAdds(t, n, name, day0, day0+day),
					map[addKey]string{k: fmt.Sprintf("end %d %q", i+1, fmt.Sprintf("#%d", i))})
				diff(t, fmt.Sprintf("blocks of %q in %q", name, n), h.scanBlocks(t, n, name, viewstore.DayBlock, day0, day0+day),
					map[blockKey]string{{name, viewstore.DayBlock, day0}: blockValue(viewstore.Block{Cover: []int64{int64(i)}, Data: []byte(fmt.Sprintf("#%d", i))})})
				if end, ok := h.pending(t, n, viewstore.ShardOf(name))[k]; !ok || end != int64(i+1) {
					t.Errorf("ListPending(%q) of %q: end %d, listed %v; want %d", n, name, end, ok, i+1)
				}
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
	cp := checkpoint(q, 3, 7, viewstore.Addition{Property: "z", Hour: day0, Block: []byte(tag)})
	cp.Progress = viewstore.Progress{Partition: q, Next: 7, Applied: 4, Duplicates: 1, Excluded: 2, Watermark: time.UnixMilli(day0 * 1000).UTC()}
	cp.State = []viewstore.KV{{Key: "k", Value: []byte(tag)}}
	cp.Watermarks = []viewstore.Watermark{{Property: "z", Partition: q, Time: time.UnixMilli(day0 * 1000).UTC(), Offset: 7}}
	return cp
}

// dropBlocks are the blocks of a namespace in testDropNamespace.
func dropBlocks(tag string) []viewstore.Block {
	return []viewstore.Block{
		{Property: "x", Kind: viewstore.HourBlock, Bucket: day0 + hour, Cover: []int64{1, 2, 3}, Data: []byte(tag)},
		{Property: "z", Kind: viewstore.DayBlock, Bucket: day0, Cover: []int64{300: 7}, Data: []byte(tag)},
		{Property: "z", Kind: viewstore.HourBlock, Bucket: day0 - 40*day, Data: []byte(tag)},
	}
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
		h.putBlocks(t, n, dropBlocks(string(n)))
	}
	blocksOf := func(t *testing.T, n viewstore.Namespace) map[blockKey]string {
		got := map[blockKey]string{}
		for _, prop := range []string{"x", "y", "z"} {
			for _, k := range []viewstore.Kind{viewstore.HourBlock, viewstore.DayBlock} {
				for key, v := range h.scanBlocks(t, n, prop, k, day0-100*day, day0+100*day) {
					got[key] = v
				}
			}
		}
		return got
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
		diff(t, fmt.Sprintf("%q, additions of z", n), h.scanAdds(t, n, "z", day0-day, day0+day),
			map[addKey]string{keyOf(cp.Additions[0]): addValue(cp.Additions[0])})
		want := map[blockKey]string{}
		for _, b := range dropBlocks(string(n)) {
			want[blockKeyOf(b)] = blockValue(b)
		}
		diff(t, fmt.Sprintf("%q, blocks", n), blocksOf(t, n), want)
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
			diff(t, fmt.Sprintf("dropped namespace, additions of %q", prop), h.scanAdds(t, ns, prop, day0-day, day0+day), nil)
			diff(t, fmt.Sprintf("dropped namespace, pending of %q", prop), h.pending(t, ns, viewstore.ShardOf(prop)), nil)
		}
		diff(t, "dropped namespace, blocks", blocksOf(t, ns), nil)
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
		// Nothing of before the drop comes back: not the additions of
		// checkpoints 2 and 3, not their state, not partition 300.
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
		diff(t, "additions of z", h.scanAdds(t, ns, "z", day0-day, day0+day), nil)
		diff(t, "blocks", blocksOf(t, ns), nil)
		b := dropBlocks("new")[1]
		h.putBlock(t, ns, b)
		diff(t, "blocks after a new put", blocksOf(t, ns), map[blockKey]string{blockKeyOf(b): blockValue(b)})
		for _, n := range others {
			checkOther(t, n)
		}
	})
}

// ops are every operation of the port but Close, on namespace ns; fn
// counts the callbacks.
func ops(h *harness, ns viewstore.Namespace, calls *int) []struct {
	name string
	op   func(ctx context.Context, s viewstore.Store) error
} {
	return []struct {
		name string
		op   func(ctx context.Context, s viewstore.Store) error
	}{
		{"Commit", func(ctx context.Context, s viewstore.Store) error { return s.Commit(ctx, ns, checkpointN(9, 1)) }},
		{"LoadPartition", func(ctx context.Context, s viewstore.Store) error {
			_, _, err := s.LoadPartition(ctx, ns, 1)
			return err
		}},
		{"ListProgress", func(ctx context.Context, s viewstore.Store) error { _, err := s.ListProgress(ctx, ns); return err }},
		{"Watermarks", func(ctx context.Context, s viewstore.Store) error { _, err := s.Watermarks(ctx, ns, "x"); return err }},
		{"ScanAdditions", func(ctx context.Context, s viewstore.Store) error {
			return s.ScanAdditions(ctx, ns, "x", day0, day0+day, func(viewstore.Addition) error { *calls++; return nil })
		}},
		{"ScanBlocks", func(ctx context.Context, s viewstore.Store) error {
			return s.ScanBlocks(ctx, ns, "x", viewstore.HourBlock, day0, day0+day, func(viewstore.Block) error { *calls++; return nil })
		}},
		{"ListPending", func(ctx context.Context, s viewstore.Store) error {
			return s.ListPending(ctx, ns, viewstore.ShardOf("x"), func(viewstore.PendingKey) error { *calls++; return nil })
		}},
		{"PutBlock", func(ctx context.Context, s viewstore.Store) error {
			return s.PutBlock(ctx, ns, viewstore.Block{Property: "x", Kind: viewstore.HourBlock, Bucket: day0 + 2*hour, Data: []byte("new")})
		}},
		{"DeleteAdditions", func(ctx context.Context, s viewstore.Store) error {
			return s.DeleteAdditions(ctx, ns, "x", day0+hour, 1, 1000)
		}},
		{"DropNamespace", func(ctx context.Context, s viewstore.Store) error { return s.DropNamespace(ctx, ns) }},
	}
}

// checkUntouched checks that the failed operations of testCancelledContext
// and testClosed changed nothing: partition 1's checkpoint 1 and the
// block.
func checkUntouched(t *testing.T, h *harness, ns viewstore.Namespace, b viewstore.Block) {
	t.Helper()
	checkThrough(t, h, ns, 1, 1)
	pr, state := h.load(t, ns, 9)
	if pr.Next != 0 || len(state) != 0 {
		t.Errorf("a failed Commit wrote progress %+v and %d state entries", pr, len(state))
	}
	diff(t, "blocks", h.scanBlocks(t, ns, "x", viewstore.HourBlock, day0, day0+day), map[blockKey]string{blockKeyOf(b): blockValue(b)})
}

func testCancelledContext(t *testing.T, h *harness) {
	ns := newNamespace()
	h.commit(t, ns, checkpointN(1, 1))
	b := viewstore.Block{Property: "x", Kind: viewstore.HourBlock, Bucket: day0, Cover: []int64{1}, Data: []byte("b")}
	h.putBlock(t, ns, b)
	ctx, cancel := context.WithCancel(h.ctx)
	cancel()
	calls := 0
	for _, tc := range ops(h, ns, &calls) {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.op(ctx, h.s); err == nil {
				t.Errorf("%s with a cancelled context returned nil", tc.name)
			}
		})
	}
	if calls != 0 {
		t.Errorf("scans with a cancelled context called fn %d times", calls)
	}
	checkUntouched(t, h, ns, b)
}

// testFence: with a fence that fails, Commit, PutBlock and DeleteAdditions
// return its error and write nothing; reads do not check it; a fence that
// passes changes nothing.
func testFence(t *testing.T, h *harness) {
	ns := newNamespace()
	h.commit(t, ns, checkpointN(1, 1))
	b := viewstore.Block{Property: "x", Kind: viewstore.HourBlock, Bucket: day0, Cover: []int64{1}, Data: []byte("b")}
	h.putBlock(t, ns, b)
	errFenced := errors.New("fenced: another writer took over")
	checks := 0
	fenced := viewstore.WithFence(h.ctx, func() error { checks++; return errFenced })
	calls := 0
	for _, tc := range ops(h, ns, &calls) {
		switch tc.name {
		case "Commit", "PutBlock", "DeleteAdditions":
			if err := tc.op(fenced, h.s); !errors.Is(err, errFenced) {
				t.Errorf("%s behind a failing fence: %v, want its error", tc.name, err)
			}
		case "LoadPartition", "ListProgress", "Watermarks":
			if err := tc.op(fenced, h.s); err != nil {
				t.Errorf("%s (a read) behind a failing fence: %v", tc.name, err)
			}
		}
	}
	if checks < 3 {
		t.Errorf("the fence was checked %d times by 3 writes", checks)
	}
	checkUntouched(t, h, ns, b)
	open := viewstore.WithFence(h.ctx, func() error { return nil })
	if err := h.s.Commit(open, ns, checkpointN(9, 1)); err != nil {
		t.Fatalf("Commit behind a passing fence: %v", err)
	}
	if pr, _ := h.load(t, ns, 9); pr.Next == 0 {
		t.Errorf("Commit behind a passing fence wrote no progress")
	}
}

// testLargeData: additions and blocks of several MiB (an hour of a busy
// property) are stored and read back whole, a large block replaced by a
// larger one and then by a small one reads as the last, and deleting a
// large addition deletes it. Stores with a bound on one write (Cassandra
// rejects mutations over half a commit log segment) must split them.
func testLargeData(t *testing.T, h *harness) {
	ns := newNamespace()
	big := func(n int, seed byte) []byte {
		b := make([]byte, n)
		x := uint32(seed) + 1
		for i := range b { // incompressible enough, and reproducible
			x = x*1664525 + 1013904223
			b[i] = byte(x >> 24)
		}
		return b
	}
	sum := func(b []byte) string { return fmt.Sprintf("%d bytes %x", len(b), sha256.Sum256(b)) }
	large := viewstore.Addition{Property: "x", Hour: day0, Block: big(5<<20+123, 1)}
	small := viewstore.Addition{Property: "x", Hour: day0 + hour, Block: []byte("small")}
	h.commit(t, ns, checkpoint(3, 0, 100, large, small))
	got := map[int64]string{}
	if err := h.s.ScanAdditions(h.ctx, ns, "x", day0, day0+day, func(a viewstore.Addition) error {
		got[a.Hour] = sum(a.Block)
		return nil
	}); err != nil {
		t.Fatalf("ScanAdditions: %v", err)
	}
	if got[day0] != sum(large.Block) || got[day0+hour] != sum(small.Block) {
		t.Fatalf("additions read back: %v, want %s and %s", got, sum(large.Block), sum(small.Block))
	}
	pending := h.pending(t, ns, viewstore.ShardOf("x"))
	if len(pending) != 2 {
		t.Fatalf("ListPending: %v", pending)
	}
	for _, data := range [][]byte{big(6<<20, 2), big(9<<20+7, 3), []byte("small block"), big(3<<20, 4)} {
		h.putBlock(t, ns, viewstore.Block{Property: "x", Kind: viewstore.HourBlock, Bucket: day0, Cover: []int64{100}, Data: data})
		var blocks []string
		if err := h.s.ScanBlocks(h.ctx, ns, "x", viewstore.HourBlock, day0, day0+day, func(b viewstore.Block) error {
			blocks = append(blocks, sum(b.Data))
			if len(b.Cover) != 1 || b.Cover[0] != 100 {
				t.Errorf("block cover %v", b.Cover)
			}
			return nil
		}); err != nil {
			t.Fatalf("ScanBlocks: %v", err)
		}
		if len(blocks) != 1 || blocks[0] != sum(data) {
			t.Fatalf("block read back: %v, want [%s]", blocks, sum(data))
		}
	}
	if err := h.s.DeleteAdditions(h.ctx, ns, "x", day0, 3, 1); err != nil {
		t.Fatalf("DeleteAdditions: %v", err)
	}
	n := 0
	if err := h.s.ScanAdditions(h.ctx, ns, "x", day0, day0+hour, func(viewstore.Addition) error { n++; return nil }); err != nil {
		t.Fatalf("ScanAdditions: %v", err)
	}
	if n != 0 {
		t.Fatalf("%d additions left after deleting the large one", n)
	}
}

func testClosed(t *testing.T, h *harness) {
	ns := newNamespace()
	h.commit(t, ns, checkpointN(1, 1))
	b := viewstore.Block{Property: "x", Kind: viewstore.HourBlock, Bucket: day0, Cover: []int64{1}, Data: []byte("b")}
	h.putBlock(t, ns, b)
	if err := h.s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	calls := 0
	for _, tc := range ops(h, ns, &calls) {
		t.Run(tc.name, func(t *testing.T) {
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
		})
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
		_ = h.s.Close()
	}()
	// Nothing was lost by closing.
	h.s = h.open()
	checkUntouched(t, h, ns, b)
}
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
