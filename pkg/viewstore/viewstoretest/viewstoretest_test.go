package viewstoretest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

// The suite checks itself: memStore is a small in-memory reference Store
// that passes it, and each mutant is a memStore with one bug that one
// subtest must catch.

const mutantEnv = "VIEWSTORETEST_MUTANT"

var mutants = []struct {
	name    string
	subtest string // the subtest that must fail
}{
	{"load-unknown-no-partition", "LoadPartitionUnknown"},
	{"progress-drops-duplicates", "Progress"},
	{"progress-drops-excluded", "Progress"},
	{"watermark-seconds", "Progress"},
	{"state-ignores-delete", "State"},
	{"state-all-partitions", "State"},
	{"cells-add-values", "Cells"},
	{"cells-ignore-partition", "Cells"},
	{"scan-inclusive-to", "Cells"},
	{"scan-reverse", "Cells"},
	{"namespace-prefix", "Cells"},
	{"scan-ignores-fn-error", "ScanCellsStopsOnError"},
	{"scan-max-25-days", "CellsManyDays"},
	{"load-bucket-all-partitions", "LoadBucket"},
	{"watermark-max-time", "Watermarks"},
	{"watermark-property-prefix", "Watermarks"},
	{"list-progress-small-partitions", "ListProgress"},
	{"commit-delays-last-cell", "CommitVisible"},
	{"commit-drops-partition-12", "ConcurrentCommits"},
	{"not-durable", "Durability"},
	{"dims-cut-at-nul", "ArbitraryBytes"},
	{"drop-keeps-state", "DropNamespace"},
	{"drop-keeps-watermarks", "DropNamespace"},
	{"drop-prefix", "DropNamespace"},
	{"ignores-context", "CancelledContext"},
	{"works-after-close", "Closed"},
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
	if os.Getenv(mutantEnv) != "" {
		t.Skip("running a mutant")
	}
	if testing.Short() {
		t.Skip("short")
	}
	for _, m := range mutants {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), os.Args[0],
				"-test.run=^TestMemStore$/^"+m.subtest+"$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), mutantEnv+"="+m.name)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("mutant %s: subtest %s did not fail (err %v):\n%s", m.name, m.subtest, err, out)
			}
			if !strings.Contains(string(out), "--- FAIL: TestMemStore/"+m.subtest) {
				t.Fatalf("mutant %s: subtest %s not reported failing:\n%s", m.name, m.subtest, out)
			}
		})
	}
}

type nsPart struct {
	ns viewstore.Namespace
	p  int32
}

type nsCell struct {
	ns viewstore.Namespace
	id cellID
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
	cells    map[nsCell][]byte
	wms      map[nsProp]viewstore.Watermark
	delayed  *viewstore.Cell // commit-delays-last-cell
	delayNS  viewstore.Namespace
}

func newMemData() *memData {
	return &memData{
		progress: map[nsPart]viewstore.Progress{},
		state:    map[nsPart]map[string][]byte{},
		cells:    map[nsCell][]byte{},
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

func (s *memStore) Commit(ctx context.Context, ns viewstore.Namespace, cp viewstore.Checkpoint) error {
	if err := s.check(ctx); err != nil {
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
	d.progress[nsPart{ns, pr.Partition}] = pr
	if d.delayed != nil {
		c := *d.delayed
		d.cells[nsCell{d.delayNS, idOf(c)}] = encodeCV(c)
		d.delayed = nil
	}
	cells := cp.Cells
	if s.mutant == "commit-delays-last-cell" && len(cells) > 0 {
		last := cells[len(cells)-1]
		d.delayed, d.delayNS = &last, ns
		cells = cells[:len(cells)-1]
	}
	for _, c := range cells {
		id := idOf(c)
		if s.mutant == "cells-ignore-partition" {
			id.Partition = 0
		}
		if s.mutant == "dims-cut-at-nul" {
			id.Dims, _, _ = strings.Cut(id.Dims, "\x00")
		}
		k := nsCell{ns, id}
		v := encodeCV(c)
		if old, ok := d.cells[k]; ok && s.mutant == "cells-add-values" {
			v = append(bytes.Clone(old), v...)
		}
		d.cells[k] = v
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

func (s *memStore) LoadBucket(ctx context.Context, ns viewstore.Namespace, property string, g viewstore.Grain, bucket int64, part int32, fn func(viewstore.Cell) error) error {
	return s.ScanCells(ctx, ns, property, g, bucket, bucket+1, func(c viewstore.Cell) error {
		if c.Partition != part && s.mutant != "load-bucket-all-partitions" {
			return nil
		}
		return fn(c)
	})
}

func (s *memStore) ScanCells(ctx context.Context, ns viewstore.Namespace, property string, g viewstore.Grain, from, to int64, fn func(viewstore.Cell) error) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if s.mutant == "scan-max-25-days" {
		to = min(to, from+25*day)
	}
	d := s.d
	d.mu.Lock()
	var cells []viewstore.Cell
	for k, v := range d.cells {
		id := k.id
		inRange := id.Bucket >= from && id.Bucket < to
		if s.mutant == "scan-inclusive-to" {
			inRange = id.Bucket >= from && id.Bucket <= to
		}
		if s.nsMatch(ns, k.ns) && id.Property == property && id.Grain == g && inRange {
			cells = append(cells, viewstore.Cell{Property: id.Property, Grain: id.Grain, Bucket: id.Bucket, Dims: id.Dims, Partition: id.Partition, Value: bytes.Clone(v[8:]), Offset: int64(binary.BigEndian.Uint64(v))})
		}
	}
	d.mu.Unlock()
	slices.SortFunc(cells, func(a, b viewstore.Cell) int {
		return cmp.Or(cmp.Compare(a.Bucket, b.Bucket), strings.Compare(a.Dims, b.Dims), cmp.Compare(a.Partition, b.Partition))
	})
	if s.mutant == "scan-reverse" {
		slices.Reverse(cells)
	}
	for _, c := range cells {
		if err := fn(c); err != nil && s.mutant != "scan-ignores-fn-error" {
			return err
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
	for k := range d.cells {
		if match(k.ns) {
			delete(d.cells, k)
		}
	}
	for k := range d.wms {
		if match(k.ns) && s.mutant != "drop-keeps-watermarks" {
			delete(d.wms, k)
		}
	}
	return nil
}

// encodeCV stores a cell's offset before its value.
func encodeCV(c viewstore.Cell) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(c.Offset)), c.Value...)
}
