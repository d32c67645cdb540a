package projection

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/sextant-analytics/sextant/pkg/analytics"
	"github.com/sextant-analytics/sextant/pkg/eventlog"
	"github.com/sextant-analytics/sextant/pkg/metrics"
	"github.com/sextant-analytics/sextant/pkg/pebblelog"
	"github.com/sextant-analytics/sextant/pkg/pebblestore"
	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

func openEmbedded(t *testing.T, dir string) (*pebblelog.Log, *pebblestore.Store) {
	t.Helper()
	log, err := pebblelog.Open(dir+"/log", pebblelog.Options{Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	st, err := pebblestore.Open(dir+"/views", pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return log, st
}

func appendEvents(t *testing.T, log eventlog.Appender, from, to int, dupOf func(i int) int) {
	t.Helper()
	var msgs []eventlog.Message
	for i := from; i < to; i++ {
		id := i
		if dupOf != nil {
			id = dupOf(i)
		}
		e := ev(fmt.Sprint("e", id), fmt.Sprint("c", id%7), "page_view", page(fmt.Sprint("/p", id%3)), at(time.Duration(id)*time.Second))
		b, err := proto.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, eventlog.Message{Key: []byte(e.PropertyId + "/" + e.ClientId), Value: b})
	}
	if err := log.Append(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
}

// runUntil runs a projector until it has applied every record of the log,
// then stops it (which commits).
func runUntil(t *testing.T, log *pebblelog.Log, st *pebblestore.Store) {
	t.Helper()
	runUntilWith(t, log, st, Config{})
}

func runUntilWith(t *testing.T, log *pebblelog.Log, st *pebblestore.Store, cfg Config) {
	t.Helper()
	cfg.FlushInterval = 10 * time.Millisecond
	startCaughtUp(t, log, st, cfg)()
}

// startCaughtUp starts a projector and waits until it has applied every
// record of the log; the projector keeps running until stop, which commits
// and fails the test on a projector error.
func startCaughtUp(t *testing.T, log *pebblelog.Log, st *pebblestore.Store, cfg Config) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg.Logger = slog.New(slog.DiscardHandler)
	pr := NewProjector(cfg, log, st)
	done := make(chan error, 1)
	go func() { done <- pr.Run(ctx) }()
	stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for !caughtUp(t, log, st, pr.Namespace()) {
		if time.Now().After(deadline) {
			stop()
			t.Fatal("projector did not catch up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return stop
}

func caughtUp(t *testing.T, log *pebblelog.Log, st *pebblestore.Store, ns viewstore.Namespace) bool {
	ctx := context.Background()
	progress, err := st.ListProgress(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	next := map[int32]int64{}
	for _, p := range progress {
		next[p.Partition] = p.Next
	}
	parts, _ := log.Partitions(ctx)
	for _, p := range parts {
		end, _ := log.EndOffset(ctx, p)
		if next[p] != end {
			return false
		}
	}
	return true
}

func storedTotals(t *testing.T, st *pebblestore.Store) (events, views, users int64) {
	t.Helper()
	all := analytics.NewAggregate()
	err := st.ScanCells(context.Background(), viewstore.NamespaceOf("traffic", "v1"), "p1", viewstore.Hour, t0.Add(-time.Hour).Unix(), t0.Add(48*time.Hour).Unix(), func(c viewstore.Cell) error {
		a, err := analytics.UnmarshalAggregate(c.Value)
		if err != nil {
			return err
		}
		return all.Merge(a)
	})
	if err != nil {
		t.Fatal(err)
	}
	return all.Events, all.PageViews, int64(all.Users.Estimate())
}

// The projector over the embedded log and store: events applied once,
// redelivered duplicates dropped, and a restart continues from the
// committed offsets without recounting.
func TestProjectorEmbedded(t *testing.T) {
	dir := t.TempDir()
	log, st := openEmbedded(t, dir)
	appendEvents(t, log, 0, 300, nil)
	runUntil(t, log, st)
	if e, v, u := storedTotals(t, st); e != 300 || v != 300 || u != 7 {
		t.Fatalf("after the first run: events %d views %d users %d", e, v, u)
	}
	// Retries of 100 events already counted, and 100 new ones.
	appendEvents(t, log, 300, 400, func(i int) int { return i - 300 })
	appendEvents(t, log, 300, 400, nil)
	log.Close()
	st.Close()

	log, st = openEmbedded(t, dir)
	defer log.Close()
	defer st.Close()
	runUntil(t, log, st)
	if e, v, u := storedTotals(t, st); e != 400 || v != 400 || u != 7 {
		t.Fatalf("after the restart: events %d views %d users %d, want 400 400 7", e, v, u)
	}
	var dups, applied int64
	progress, _ := st.ListProgress(context.Background(), viewstore.NamespaceOf("traffic", "v1"))
	for _, p := range progress {
		dups += p.Duplicates
		applied += p.Applied
	}
	if dups != 100 || applied != 400 {
		t.Fatalf("applied %d duplicates %d, want 400 and 100", applied, dups)
	}
}

// Poison records go to the dead letters with their reason; the partition
// keeps going.
func TestProjectorDeadLetters(t *testing.T) {
	dir := t.TempDir()
	log, st := openEmbedded(t, dir)
	defer log.Close()
	defer st.Close()
	dead, err := pebblelog.Open(dir+"/dead", pebblelog.Options{Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	appendEvents(t, log, 0, 5, nil)
	poison := []eventlog.Message{
		{Key: []byte("p1/c1"), Value: []byte{0xff, 0xff, 0xff}},
		{Key: []byte("p1/c1"), Value: []byte{}, Headers: map[string]string{eventlog.HeaderSchemaVersion: "9"}},
	}
	if err := log.Append(context.Background(), poison); err != nil {
		t.Fatal(err)
	}
	appendEvents(t, log, 5, 10, nil)
	runUntilWith(t, log, st, Config{DeadLetters: dead})
	if e, _, _ := storedTotals(t, st); e != 10 {
		t.Fatalf("events %d, want 10", e)
	}
	recs, err := dead.Read(context.Background(), 0, 0, 10)
	if err != nil || len(recs) != 2 {
		t.Fatalf("dead letters %v %v", recs, err)
	}
	reasons := recs[0].Headers[HeaderDeadLetterReason] + " | " + recs[1].Headers[HeaderDeadLetterReason]
	if !strings.Contains(reasons, "undecodable") || !strings.Contains(reasons, "unknown schema version 9") ||
		recs[1].Headers[HeaderProjection] != "traffic/v1" || recs[1].Headers[HeaderSourceOffset] == "" {
		t.Fatalf("dead letters lack their reasons or origin: %v", recs)
	}
}

func TestFlushInterval(t *testing.T) {
	p := &Projector{cfg: Config{FlushInterval: 100 * time.Millisecond}}
	for _, tc := range []struct {
		name       string
		behind     bool
		lastCommit time.Duration
		want       time.Duration
	}{
		{"head, fast store", false, 10 * time.Millisecond, 100 * time.Millisecond},
		{"head, slow store: twice the commit", false, 150 * time.Millisecond, 300 * time.Millisecond},
		{"head, very slow store: capped for freshness", false, 5 * time.Second, maxLiveFlush},
		{"far behind", true, 10 * time.Millisecond, lagFlush},
	} {
		if got := p.flushInterval(tc.behind, tc.lastCommit); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// A projector whose memory budget is far below its cells evicts buckets and
// reads them back, and commits exactly the cells of one that keeps
// everything in memory.
func TestProjectorUnderMemoryBudget(t *testing.T) {
	var msgs []eventlog.Message
	for i := range 3000 {
		// Hours in a scattered order, as a backfill or a replay of late
		// events has them.
		d := time.Duration(i*7919%150)*time.Hour + time.Duration(i%60)*time.Minute
		e := ev(fmt.Sprint("e", i), fmt.Sprint("c", i%97), "page_view", page(fmt.Sprint("/p", i%40)), at(d))
		b, err := proto.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, eventlog.Message{Key: []byte(e.PropertyId + "/" + e.ClientId), Value: b})
	}
	type result struct {
		cells map[string]string
		loads float64
		used  int64
		peak  int64
	}
	run := func(limit int64) result {
		dir := t.TempDir()
		log, st := openEmbedded(t, dir)
		defer log.Close()
		defer st.Close()
		for i := 0; i < len(msgs); i += 500 {
			if err := log.Append(context.Background(), msgs[i:i+500]); err != nil {
				t.Fatal(err)
			}
		}
		mem := &Memory{limit: limit}
		m := metrics.New()
		runUntilWith(t, log, st, Config{Memory: mem, MaxPending: 50, ReadBatch: 50, Metrics: m})
		r := result{cells: map[string]string{}, loads: counterValue(t, m.BucketLoads.WithLabelValues("traffic/v1")), used: mem.Used(), peak: mem.Peak()}
		var grains []viewstore.Grain
		for _, ro := range analytics.HourRollups {
			grains = append(grains, viewstore.Hour.WithRollup(uint8(ro)))
		}
		for _, ro := range analytics.MinuteRollups {
			grains = append(grains, viewstore.Minute.WithRollup(uint8(ro)))
		}
		for _, g := range grains {
			err := st.ScanCells(context.Background(), viewstore.NamespaceOf("traffic", "v1"), "p1", g, t0.Add(-time.Hour).Unix(), t0.Add(200*time.Hour).Unix(), func(c viewstore.Cell) error {
				r.cells[fmt.Sprintf("%d/%d/%q/%d", c.Grain, c.Bucket, c.Dims, c.Partition)] = fmt.Sprintf("%x@%d", c.Value, c.Offset)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		return r
	}
	all, small := run(1<<40), run(64<<10)
	if len(all.cells) < 1000 {
		t.Fatalf("only %d cells: the test does not exceed the budget", len(all.cells))
	}
	t.Logf("peak %d / %d bytes, %v loads, %d cells", small.peak, all.peak, small.loads, len(all.cells))
	if small.loads == 0 {
		t.Error("no bucket was read back under a budget far below the cells")
	}
	if all.peak < 4*(64<<10) {
		t.Errorf("the unbounded run held at most %d bytes: the budget would not bind", all.peak)
	}
	if small.peak > all.peak/2 {
		t.Errorf("under a budget of 64 KiB the cells took up to %d bytes (%d without)", small.peak, all.peak)
	}
	if small.used != 0 || all.used != 0 {
		// Stopped projectors give their partitions' memory back.
		t.Errorf("after stopping: %d and %d bytes still counted", small.used, all.used)
	}
	for k, v := range all.cells {
		if small.cells[k] != v {
			t.Errorf("cell %s: %s under the budget, %s without", k, small.cells[k], v)
		}
	}
	if len(small.cells) != len(all.cells) {
		t.Errorf("%d cells under the budget, %d without", len(small.cells), len(all.cells))
	}
}

func counterValue(t *testing.T, c interface{ Write(*dto.Metric) error }) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// A partition with nothing to apply still gives its buckets back once they
// have been idle for IdleBucket: a version nobody writes to any more does
// not keep its cells.
func TestIdlePartitionReleasesMemory(t *testing.T) {
	dir := t.TempDir()
	log, st := openEmbedded(t, dir)
	defer log.Close()
	defer st.Close()
	appendEvents(t, log, 0, 300, nil)
	mem := NewMemory(1 << 30)
	stop := startCaughtUp(t, log, st, Config{Memory: mem, FlushInterval: 10 * time.Millisecond, IdleBucket: 100 * time.Millisecond})
	defer stop()
	deadline := time.Now().Add(10 * time.Second)
	if mem.Peak() == 0 {
		t.Fatal("no cell memory was ever counted")
	}
	for mem.Used() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("idle partitions still hold %d bytes of cells", mem.Used())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if e, v, _ := storedTotals(t, st); e != 300 || v != 300 {
		t.Fatalf("stored events %d views %d, want 300", e, v)
	}
}
