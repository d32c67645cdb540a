package viewstoretest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sextant-analytics/sextant/pkg/mutants"
	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

// The suite checks itself: memStore is a small in-memory reference Store
// that passes it, and each mutant is a memStore with one bug that one
// subtest must catch.

const mutantEnv = "VIEWSTORETEST_MUTANT"

// mutantList names each mutant and the subtest that must catch it.
var mutantList = map[string]string{
	"load-unknown-no-partition":      "LoadPartitionUnknown",
	"progress-drops-duplicates":      "Progress",
	"progress-drops-excluded":        "Progress",
	"watermark-seconds":              "Progress",
	"intent-left-set":                "Progress",
	"state-ignores-delete":           "State",
	"state-all-partitions":           "State",
	"additions-keyed-by-data":        "Additions",
	"additions-ignore-partition":     "Additions",
	"scan-inclusive-to":              "Additions",
	"scan-reverse":                   "Additions",
	"namespace-prefix":               "Additions",
	"scan-ignores-fn-error":          "ScanStopsOnError",
	"blocks-ignore-kind":             "Blocks",
	"blocks-reverse":                 "Blocks",
	"blocks-cover-max-256":           "Blocks",
	"put-block-keeps-first":          "Blocks",
	"blocks-max-60-days":             "BlocksManyDays",
	"pending-all-shards":             "ListPending",
	"pending-drops-end":              "ListPending",
	"pending-drops-bytes":            "ListPending",
	"delete-inclusive":               "DeleteAdditions",
	"delete-all-partitions":          "DeleteAdditions",
	"delete-all-hours":               "DeleteAdditions",
	"watermark-max-time":             "Watermarks",
	"watermark-property-prefix":      "Watermarks",
	"list-progress-small-partitions": "ListProgress",
	"commit-delays-last-addition":    "CommitVisible",
	"commit-drops-partition-12":      "ConcurrentCommits",
	"not-durable":                    "Durability",
	"data-cut-at-nul":                "ArbitraryBytes",
	"drop-keeps-state":               "DropNamespace",
	"ignores-fence":                  "Fence",
	"drop-keeps-watermarks":          "DropNamespace",
	"drop-keeps-additions":           "DropNamespace",
	"drop-keeps-blocks":              "DropNamespace",
	"drop-prefix":                    "DropNamespace",
	"ignores-context":                "CancelledContext",
	"works-after-close":              "Closed",
}

func TestMemStore(t *testing.T) {
	mutant := os.Getenv(mutantEnv)
	Run(t, func(t *testing.T) func() viewstore.Store {
		d := newMemData()
		return func() viewstore.Store {
			if mutant == "not-durable" {
				d = newMemData()
			}
			return &memStore{d: d, mutant: mutant}
		}
	})
}

func TestSuiteCatchesMutants(t *testing.T) {
	mutants.Check(t, mutantEnv, "TestMemStore", mutantList)
}

type nsPart struct {
	ns viewstore.Namespace
	p  int32
}

// nsAdd is a stored addition's key; extra is only set by a mutant.
type nsAdd struct {
	ns    viewstore.Namespace
	k     addKey
	extra string
}

type nsBlock struct {
	ns viewstore.Namespace
	k  blockKey
}

type nsProp struct {
	ns   viewstore.Namespace
	prop string
	p    int32
}

type memData struct {
	mu       sync.Mutex
	progress map[nsPart]viewstore.Progress
	state    map[nsPart]map[string][]byte
	adds     map[nsAdd]viewstore.Addition
	blocks   map[nsBlock]viewstore.Block
	wms      map[nsProp]viewstore.Watermark
	delayed  *viewstore.Addition // commit-delays-last-addition
	delayNS  viewstore.Namespace
}

func newMemData() *memData {
	return &memData{
		progress: map[nsPart]viewstore.Progress{},
		state:    map[nsPart]map[string][]byte{},
		adds:     map[nsAdd]viewstore.Addition{},
		blocks:   map[nsBlock]viewstore.Block{},
		wms:      map[nsProp]viewstore.Watermark{},
	}
}

type memStore struct {
	d      *memData
	mutant string
	mu     sync.Mutex
	closed bool
}

var errMemClosed = errors.New("memstore: closed")

// checkWrite is check, then the context's fence (writes only).
func (s *memStore) checkWrite(ctx context.Context) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if s.mutant == "ignores-fence" {
		return nil
	}
	return viewstore.CheckFence(ctx)
}

func (s *memStore) check(ctx context.Context) error {
	if s.mutant != "ignores-context" {
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed && s.mutant != "works-after-close" {
		return errMemClosed
	}
	return nil
}

func (s *memStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errMemClosed
	}
	s.closed = true
	return nil
}

func (s *memStore) nsMatch(want, got viewstore.Namespace) bool {
	if s.mutant == "namespace-prefix" {
		return strings.HasPrefix(string(got), string(want))
	}
	return got == want
}

func (d *memData) putAddition(s *memStore, ns viewstore.Namespace, a viewstore.Addition) {
	k := nsAdd{ns: ns, k: keyOf(a)}
	if s.mutant == "additions-ignore-partition" {
		k.k.Partition = 0
	}
	if s.mutant == "additions-keyed-by-data" {
		k.extra = string(a.Block)
	}
	if s.mutant == "data-cut-at-nul" {
		if i := bytes.IndexByte(a.Block, 0); i >= 0 {
			a.Block = a.Block[:i]
		}
	}
	a.Block = bytes.Clone(a.Block)
	d.adds[k] = a
}

func (s *memStore) Commit(ctx context.Context, ns viewstore.Namespace, cp viewstore.Checkpoint) error {
	if err := s.checkWrite(ctx); err != nil {
		return err
	}
	d := s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	pr := cp.Progress
	if s.mutant == "commit-drops-partition-12" && pr.Partition == 12 {
		return nil
	}
	if s.mutant == "progress-drops-duplicates" {
		pr.Duplicates = 0
	}
	if s.mutant == "progress-drops-excluded" {
		pr.Excluded = 0
	}
	if s.mutant == "watermark-seconds" {
		pr.Watermark = pr.Watermark.Truncate(time.Second)
	}
	pr.Intent = 0
	if s.mutant == "intent-left-set" {
		pr.Intent = pr.Next + 1
	}
	d.progress[nsPart{ns, pr.Partition}] = pr
	if d.delayed != nil {
		d.putAddition(s, d.delayNS, *d.delayed)
		d.delayed = nil
	}
	adds := cp.Additions
	if s.mutant == "commit-delays-last-addition" && len(adds) > 0 {
		last := adds[len(adds)-1]
		d.delayed, d.delayNS = &last, ns
		adds = adds[:len(adds)-1]
	}
	for _, a := range adds {
		d.putAddition(s, ns, a)
	}
	st := d.state[nsPart{ns, pr.Partition}]
	if st == nil {
		st = map[string][]byte{}
		d.state[nsPart{ns, pr.Partition}] = st
	}
	for _, kv := range cp.State {
		if kv.Delete && s.mutant != "state-ignores-delete" {
			delete(st, kv.Key)
		} else if !kv.Delete {
			st[kv.Key] = bytes.Clone(kv.Value)
		}
	}
	for _, w := range cp.Watermarks {
		k := nsProp{ns, w.Property, w.Partition}
		if old, ok := d.wms[k]; ok && s.mutant == "watermark-max-time" && old.Time.After(w.Time) {
			continue
		}
		d.wms[k] = w
	}
	return nil
}

func (s *memStore) LoadPartition(ctx context.Context, ns viewstore.Namespace, p int32) (viewstore.Progress, []viewstore.KV, error) {
	if err := s.check(ctx); err != nil {
		return viewstore.Progress{}, nil, err
	}
	d := s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	pr, ok := d.progress[nsPart{ns, p}]
	if !ok && s.mutant != "load-unknown-no-partition" {
		pr.Partition = p
	}
	var kvs []viewstore.KV
	for k, st := range d.state {
		if k.ns != ns || (k.p != p && s.mutant != "state-all-partitions") {
			continue
		}
		for key, v := range st {
			kvs = append(kvs, viewstore.KV{Key: key, Value: bytes.Clone(v)})
		}
	}
	return pr, kvs, nil
}

func (s *memStore) ListProgress(ctx context.Context, ns viewstore.Namespace) ([]viewstore.Progress, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	d := s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []viewstore.Progress
	for k, pr := range d.progress {
		if k.ns == ns && (s.mutant != "list-progress-small-partitions" || k.p < 256) {
			out = append(out, pr)
		}
	}
	return out, nil
}

func (s *memStore) ScanAdditions(ctx context.Context, ns viewstore.Namespace, property string, from, to int64, fn func(viewstore.Addition) error) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	d := s.d
	d.mu.Lock()
	var adds []viewstore.Addition
	for k, a := range d.adds {
		inRange := a.Hour >= from && a.Hour < to
		if s.mutant == "scan-inclusive-to" {
			inRange = a.Hour >= from && a.Hour <= to
		}
		if s.nsMatch(ns, k.ns) && a.Property == property && inRange {
			a.Block = bytes.Clone(a.Block)
			adds = append(adds, a)
		}
	}
	d.mu.Unlock()
	slices.SortFunc(adds, func(a, b viewstore.Addition) int {
		return cmp.Or(cmp.Compare(a.Hour, b.Hour), cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Start, b.Start))
	})
	if s.mutant == "scan-reverse" {
		slices.Reverse(adds)
	}
	for _, a := range adds {
		if err := fn(a); err != nil && s.mutant != "scan-ignores-fn-error" {
			return err
		}
	}
	return nil
}

func (s *memStore) ScanBlocks(ctx context.Context, ns viewstore.Namespace, property string, k viewstore.Kind, from, to int64, fn func(viewstore.Block) error) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if s.mutant == "blocks-max-60-days" {
		to = min(to, from+60*day)
	}
	d := s.d
	d.mu.Lock()
	var blocks []viewstore.Block
	for key, b := range d.blocks {
		if key.ns == ns && b.Property == property && (b.Kind == k || s.mutant == "blocks-ignore-kind") && b.Bucket >= from && b.Bucket < to {
			b.Cover = slices.Clone(b.Cover)
			b.Data = bytes.Clone(b.Data)
			blocks = append(blocks, b)
		}
	}
	d.mu.Unlock()
	slices.SortFunc(blocks, func(a, b viewstore.Block) int { return cmp.Compare(a.Bucket, b.Bucket) })
	if s.mutant == "blocks-reverse" {
		slices.Reverse(blocks)
	}
	for _, b := range blocks {
		if err := fn(b); err != nil && s.mutant != "scan-ignores-fn-error" {
			return err
		}
	}
	return nil
}

func (s *memStore) ListPending(ctx context.Context, ns viewstore.Namespace, shard int, fn func(viewstore.PendingKey) error) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	d := s.d
	d.mu.Lock()
	var keys []viewstore.PendingKey
	for k, a := range d.adds {
		if k.ns == ns && (viewstore.ShardOf(a.Property) == shard || s.mutant == "pending-all-shards") {
			pk := viewstore.PendingKey{Property: a.Property, Hour: a.Hour, Partition: a.Partition, Start: a.Start, End: a.End, Bytes: len(a.Block)}
			if s.mutant == "pending-drops-end" {
				pk.End = 0
			}
			if s.mutant == "pending-drops-bytes" {
				pk.Bytes = 0
			}
			keys = append(keys, pk)
		}
	}
	d.mu.Unlock()
	for _, k := range keys {
		if err := fn(k); err != nil && s.mutant != "scan-ignores-fn-error" {
			return err
		}
	}
	return nil
}

func (s *memStore) PutBlock(ctx context.Context, ns viewstore.Namespace, b viewstore.Block) error {
	if err := s.checkWrite(ctx); err != nil {
		return err
	}
	d := s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	k := nsBlock{ns, blockKeyOf(b)}
	if _, ok := d.blocks[k]; ok && s.mutant == "put-block-keeps-first" {
		return nil
	}
	b.Cover = slices.Clone(b.Cover)
	if s.mutant == "blocks-cover-max-256" && len(b.Cover) > 256 {
		b.Cover = b.Cover[:256]
	}
	b.Data = bytes.Clone(b.Data)
	d.blocks[k] = b
	return nil
}

func (s *memStore) DeleteAdditions(ctx context.Context, ns viewstore.Namespace, property string, hour int64, part int32, before int64) error {
	if err := s.checkWrite(ctx); err != nil {
		return err
	}
	d := s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, a := range d.adds {
		below := a.Start < before
		if s.mutant == "delete-inclusive" {
			below = a.Start <= before
		}
		if k.ns == ns && a.Property == property && (a.Hour == hour || s.mutant == "delete-all-hours") &&
			(a.Partition == part || s.mutant == "delete-all-partitions") && below {
			delete(d.adds, k)
		}
	}
	return nil
}

func (s *memStore) Watermarks(ctx context.Context, ns viewstore.Namespace, property string) ([]viewstore.Watermark, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	d := s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []viewstore.Watermark
	for k, w := range d.wms {
		match := k.prop == property
		if s.mutant == "watermark-property-prefix" {
			match = strings.HasPrefix(k.prop, property)
		}
		if k.ns == ns && match {
			out = append(out, w)
		}
	}
	return out, nil
}

func (s *memStore) DropNamespace(ctx context.Context, ns viewstore.Namespace) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	d := s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	match := func(got viewstore.Namespace) bool {
		if s.mutant == "drop-prefix" {
			return strings.HasPrefix(string(got), string(ns))
		}
		return got == ns
	}
	for k := range d.progress {
		if match(k.ns) {
			delete(d.progress, k)
		}
	}
	for k := range d.state {
		if match(k.ns) && s.mutant != "drop-keeps-state" {
			delete(d.state, k)
		}
	}
	for k := range d.adds {
		if match(k.ns) && s.mutant != "drop-keeps-additions" {
			delete(d.adds, k)
		}
	}
	for k := range d.blocks {
		if match(k.ns) && s.mutant != "drop-keeps-blocks" {
			delete(d.blocks, k)
		}
	}
	for k := range d.wms {
		if match(k.ns) && s.mutant != "drop-keeps-watermarks" {
			delete(d.wms, k)
		}
	}
	return nil
}
