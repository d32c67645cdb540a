package pebblelog

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sextant-analytics/sextant/pkg/diskspace"
	"github.com/sextant-analytics/sextant/pkg/eventlog"
	"github.com/sextant-analytics/sextant/pkg/eventlog/eventlogtest"
	"github.com/sextant-analytics/sextant/pkg/pebblelock"
)

var quiet = slog.New(slog.DiscardHandler)

func TestConformance(t *testing.T) {
	eventlogtest.Run(t, func(t *testing.T, partitions int) func() eventlog.Log {
		dir := t.TempDir()
		return func() eventlog.Log {
			l, err := Open(dir, Options{Partitions: partitions, Logger: quiet})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			return l
		}
	})
}

func mustOpen(t testing.TB, dir string, opts Options) *Log {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%+v): %v", opts, err)
	}
	return l
}

func TestPartitionCount(t *testing.T) {
	ctx := t.Context()
	count := func(l *Log) int {
		ps, err := l.Partitions(ctx)
		if err != nil {
			t.Fatalf("Partitions: %v", err)
		}
		return len(ps)
	}
	for _, tc := range []struct {
		name    string
		create  int
		created int
		reopen  []int // counts that reopen fine
		reject  []int // counts that must fail
	}{
		{"default", 0, DefaultPartitions, []int{0, DefaultPartitions}, []int{1, DefaultPartitions + 1}},
		{"explicit", 7, 7, []int{0, 7}, []int{4, 8}},
		{"one", 1, 1, []int{0, 1}, []int{2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := mustOpen(t, dir, Options{Partitions: tc.create})
			if got := count(l); got != tc.created {
				t.Fatalf("new log has %d partitions, want %d", got, tc.created)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			for _, n := range tc.reject {
				if l, err := Open(dir, Options{Partitions: n, Logger: quiet}); err == nil {
					l.Close()
					t.Fatalf("reopening a %d-partition log with Partitions=%d succeeded", tc.created, n)
				}
			}
			for _, n := range tc.reopen {
				l := mustOpen(t, dir, Options{Partitions: n})
				if got := count(l); got != tc.created {
					t.Fatalf("reopened with Partitions=%d: %d partitions, want %d", n, got, tc.created)
				}
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	for _, n := range []int{-1, MaxPartitions + 1} {
		if l, err := Open(t.TempDir(), Options{Partitions: n, Logger: quiet}); err == nil {
			l.Close()
			t.Errorf("Open with Partitions=%d succeeded", n)
		}
	}
}

func TestOpenLocked(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{})
	defer func() { l.Close() }()
	if l2, err := Open(dir, Options{Logger: quiet}); !errors.Is(err, pebblelock.ErrInUse) {
		if err == nil {
			l2.Close()
		}
		t.Fatalf("a second Open of an open directory: %v, want pebblelock.ErrInUse", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, dir, Options{}) // Close let go of the directory
}

func TestEncoding(t *testing.T) {
	for _, m := range []eventlog.Message{
		{},
		{Key: []byte("k"), Value: []byte("v")},
		{Key: []byte{0, 0xff}, Value: bytes.Repeat([]byte{7}, 300), Headers: map[string]string{"a": "1", "": "", "long": strings.Repeat("x", 200)}},
		{Value: []byte("no key"), Headers: map[string]string{eventlog.HeaderContentType: eventlog.ContentTypeEvent}},
	} {
		enc := appendRecord(nil, &m)
		if len(enc) != encodedLen(&m) {
			t.Fatalf("encodedLen = %d, encoding has %d bytes", encodedLen(&m), len(enc))
		}
		ts := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
		stampRecord(enc, ts.UnixNano())
		var r eventlog.Record
		if err := decodeRecord(enc, &r); err != nil {
			t.Fatalf("decode %+v: %v", m, err)
		}
		if !bytes.Equal(r.Key, m.Key) || !bytes.Equal(r.Value, m.Value) || !maps.Equal(r.Headers, m.Headers) || !r.Timestamp.Equal(ts) {
			t.Fatalf("round trip of %+v = %+v", m, r)
		}
		// Headers encode in a canonical order.
		if again := appendRecord(nil, &m); !bytes.Equal(again[headerLen:], enc[headerLen:]) {
			t.Fatalf("encoding of %+v is not deterministic", m)
		}
		// Every truncation and a trailing byte are detected, never a panic.
		for i := range enc {
			if err := decodeRecord(enc[:i], &r); err == nil {
				t.Fatalf("decoding %d of %d bytes succeeded", i, len(enc))
			}
		}
		if err := decodeRecord(append(enc, 0), &r); err == nil {
			t.Fatal("decoding with a trailing byte succeeded")
		}
	}
	// Keys order by partition, then offset.
	keys := [][]byte{recordKey(0, 0), recordKey(0, 1), recordKey(0, 256), recordKey(1, 0), recordKey(300, 5)}
	for i := 1; i < len(keys); i++ {
		if bytes.Compare(keys[i-1], keys[i]) >= 0 {
			t.Fatalf("record keys out of order at %d", i)
		}
	}
	if lo, hi := partitionBounds(1); bytes.Compare(lo, recordKey(0, 1<<62)) <= 0 || bytes.Compare(hi, recordKey(2, 0)) > 0 || bytes.Compare(hi, recordKey(1, 1<<62)) <= 0 {
		t.Fatal("partition bounds do not enclose exactly one partition")
	}
	if bytes.Equal(commitKey("ab", 1), commitKey("a", 1)) || bytes.HasPrefix(commitKey("ab", 0), commitKey("a", 0)[:3]) {
		t.Fatal("commit keys of different groups collide")
	}
}

// TestAppendOutcome checks Append's contract under context cancellation:
// nil means stored, an error means nothing of that append was stored.
func TestAppendOutcome(t *testing.T) {
	const n, writers, appends, size = 4, 8, 100, 3
	ctx := t.Context()
	l := mustOpen(t, t.TempDir(), Options{Partitions: n})
	defer l.Close()

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := l.Append(cancelled, []eventlog.Message{{Key: []byte("k")}}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a cancelled context = %v, want context.Canceled", err)
	}

	var mu sync.Mutex
	outcome := map[string]bool{} // batch id -> acknowledged
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range appends {
				id := fmt.Sprintf("w%d-%d", w, i)
				msgs := make([]eventlog.Message, size)
				for m := range msgs {
					msgs[m] = eventlog.Message{Key: fmt.Appendf(nil, "%s-%d", id, m), Value: []byte(id)}
				}
				actx, cancel := context.WithTimeout(ctx, time.Duration(rand.IntN(1500))*time.Microsecond)
				err := l.Append(actx, msgs)
				cancel()
				if err != nil && !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Append: %v", err)
				}
				mu.Lock()
				outcome[id] = err == nil
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	stored := map[string]int{}
	for p := range int32(n) {
		end, _ := l.EndOffset(ctx, p)
		for off := int64(0); off < end; {
			recs, err := l.Read(ctx, p, off, 1000)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				stored[string(r.Value)]++
			}
			off += int64(len(recs))
		}
	}
	acked := 0
	for id, ok := range outcome {
		switch {
		case ok && stored[id] != size:
			t.Errorf("acknowledged append %s has %d of %d records", id, stored[id], size)
		case !ok && stored[id] != 0:
			t.Errorf("failed append %s has %d records stored", id, stored[id])
		}
		if ok {
			acked++
		}
	}
	t.Logf("%d of %d appends acknowledged before their deadline", acked, len(outcome))
}

func TestTimestampsMonotonic(t *testing.T) {
	ctx := t.Context()
	l := mustOpen(t, t.TempDir(), Options{Partitions: 1})
	defer l.Close()
	for i := range 50 {
		if err := l.Append(ctx, []eventlog.Message{{Key: []byte("k"), Value: []byte(strconv.Itoa(i))}}); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := l.Read(ctx, 0, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(recs); i++ {
		if recs[i].Timestamp.Before(recs[i-1].Timestamp) {
			t.Fatalf("timestamp of offset %d (%v) before offset %d (%v)", i, recs[i].Timestamp, i-1, recs[i-1].Timestamp)
		}
	}
}

// TestTimestampsMonotonicAcrossReopen checks that a clock behind the newest
// stored timestamp, after a reopen, does not make timestamps go back, in
// the partition written before or in any other.
func TestTimestampsMonotonicAcrossReopen(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	const n = 2
	key := func(p int32) []byte {
		for i := 0; ; i++ {
			if k := []byte(strconv.Itoa(i)); eventlog.PartitionFor(k, n) == p {
				return k
			}
		}
	}
	l := mustOpen(t, dir, Options{Partitions: n})
	if err := l.Append(ctx, []eventlog.Message{{Key: key(0), Value: []byte("before")}}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, dir, Options{Partitions: n})
	defer l.Close()
	l.now = func() time.Time { return time.Unix(1000, 0) } // the clock stepped back
	if err := l.Append(ctx, []eventlog.Message{{Key: key(0), Value: []byte("after")}, {Key: key(1), Value: []byte("after")}}); err != nil {
		t.Fatal(err)
	}
	p0, err := l.Read(ctx, 0, 0, 10)
	if err != nil || len(p0) != 2 {
		t.Fatalf("Read(0) = %d records, %v; want 2", len(p0), err)
	}
	p1, err := l.Read(ctx, 1, 0, 10)
	if err != nil || len(p1) != 1 {
		t.Fatalf("Read(1) = %d records, %v; want 1", len(p1), err)
	}
	for _, r := range []eventlog.Record{p0[1], p1[0]} {
		if r.Timestamp.Before(p0[0].Timestamp) {
			t.Errorf("record (p=%d, offset=%d) appended after reopen has timestamp %v, before the stored %v", r.Partition, r.Offset, r.Timestamp, p0[0].Timestamp)
		}
	}
	if off, err := l.OffsetForTime(ctx, 0, p0[0].Timestamp.Add(time.Nanosecond)); err != nil || off != 2 {
		t.Errorf("OffsetForTime(0, just after the first record) = %d, %v; want 2", off, err)
	}
}

// TestOffsetForTimeExhaustive checks OffsetForTime at every time around the
// records of a partition whose timestamps repeat and whose clock sometimes
// steps back.
func TestOffsetForTimeExhaustive(t *testing.T) {
	ctx := t.Context()
	l := mustOpen(t, t.TempDir(), Options{Partitions: 1})
	defer l.Close()
	var clock atomic.Int64
	clock.Store(100)
	l.now = func() time.Time { return time.Unix(0, clock.Load()) }
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		clock.Add(int64(rng.IntN(4)) - 1) // -1 (clamped by the log), 0, +1, +2
		if err := l.Append(ctx, []eventlog.Message{{Key: []byte("k"), Value: []byte(strconv.Itoa(i))}}); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := l.Read(ctx, 0, 0, 1000)
	if err != nil || len(recs) != 300 {
		t.Fatalf("Read = %d records, %v; want 300", len(recs), err)
	}
	lo, hi := recs[0].Timestamp.UnixNano(), recs[len(recs)-1].Timestamp.UnixNano()
	for ns := lo - 2; ns <= hi+2; ns++ {
		at := time.Unix(0, ns)
		want := int64(len(recs))
		for i, r := range recs {
			if !r.Timestamp.Before(at) {
				want = int64(i)
				break
			}
		}
		if got, err := l.OffsetForTime(ctx, 0, at); err != nil || got != want {
			t.Fatalf("OffsetForTime(%d ns) = %d, %v; want %d", ns, got, err, want)
		}
	}
	if _, err := l.OffsetForTime(ctx, 1, time.Now()); err == nil {
		t.Error("OffsetForTime of a partition out of range succeeded")
	}
}

// TestRunRetriesFailedClaim checks that a claim failing before revocation is
// called again, and that Run ends its claims when the log closes.
func TestRunRetriesFailedClaim(t *testing.T) {
	l := mustOpen(t, t.TempDir(), Options{Partitions: 1})
	defer l.Close()
	var calls atomic.Int32
	retried := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- l.Run(t.Context(), "g", func(ctx context.Context, p int32) error {
			if calls.Add(1) == 1 {
				return errors.New("transient")
			}
			close(retried)
			<-ctx.Done()
			return nil
		})
	}()
	select {
	case <-retried:
	case <-time.After(10 * time.Second):
		t.Fatal("failed claim was not retried")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, eventlog.ErrClosed) {
			t.Fatalf("Run after Close = %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after Close")
	}
}

// --- crash test ---

const crashEnv = "PEBBLELOG_CRASH_CHILD_DIR"

const (
	crashPartitions = 4
	crashWriters    = 8
	crashBatch      = 4 // messages per append, one per key of the writer
)

// TestCrash runs a child process (this test binary) that appends from
// several goroutines and prints every acknowledged append, kills it with
// SIGKILL mid-stream, then checks the reopened log holds every acknowledged
// append, holds each append whole or not at all, and keeps per-key order.
func TestCrash(t *testing.T) {
	if dir := os.Getenv(crashEnv); dir != "" {
		crashChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrash$", "-test.count=1", "-test.v=false")
	cmd.Env = append(os.Environ(), crashEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()

	// Let the child acknowledge a fair number of appends, then kill it.
	const killAfter = 1500
	acked := map[[2]int]bool{} // (writer, seq)
	sc := bufio.NewScanner(stdout)
	timeout := time.AfterFunc(20*time.Second, func() { _ = cmd.Process.Kill() })
	defer timeout.Stop()
	for sc.Scan() {
		var w, seq int
		if _, err := fmt.Sscanf(sc.Text(), "ack %d %d", &w, &seq); err != nil {
			continue // test framework output
		}
		acked[[2]int{w, seq}] = true
		if len(acked) == killAfter && !killed {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatalf("kill child: %v", err)
			}
			killed = true
		}
	}
	// Lines written before the kill are acknowledged appends too.
	werr := cmd.Wait()
	if !killed {
		t.Fatalf("child exited before acknowledging %d appends (%d acked): %v\n%s", killAfter, len(acked), werr, stderr.String())
	}
	var ws syscall.WaitStatus
	if st, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
		ws = st
	}
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child was not killed by SIGKILL: %v\n%s", cmd.ProcessState, stderr.String())
	}

	l := mustOpen(t, dir, Options{})
	defer l.Close()
	ctx := t.Context()
	stored := map[[2]int]int{} // (writer, seq) -> messages stored
	next := map[string]int{}   // key -> next sequence expected
	total := 0
	for p := range int32(crashPartitions) {
		end, err := l.EndOffset(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		for off := int64(0); off < end; {
			recs, err := l.Read(ctx, p, off, 1000)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				if r.Offset != off {
					t.Fatalf("partition %d: offset %d where %d was expected", p, r.Offset, off)
				}
				off++
				var w, seq, m int
				if _, err := fmt.Sscanf(string(r.Value), "%d %d %d", &w, &seq, &m); err != nil {
					t.Fatalf("unexpected record value %q", r.Value)
				}
				if seq != next[string(r.Key)] {
					t.Fatalf("key %s: sequence %d at (p=%d, offset=%d), want %d", r.Key, seq, p, r.Offset, next[string(r.Key)])
				}
				next[string(r.Key)]++
				stored[[2]int{w, seq}]++
				total++
			}
		}
	}
	for id := range acked {
		if stored[id] != crashBatch {
			t.Errorf("acknowledged append %v: %d of %d messages survived the crash", id, stored[id], crashBatch)
		}
	}
	for id, c := range stored {
		if c != crashBatch {
			t.Errorf("append %v is partial after the crash: %d of %d messages", id, c, crashBatch)
		}
	}
	t.Logf("%d appends acknowledged before SIGKILL, %d stored (%d records)", len(acked), len(stored), total)

	// The log goes on where it stopped.
	if err := l.Append(ctx, []eventlog.Message{{Key: []byte("after crash")}}); err != nil {
		t.Fatal(err)
	}
}

// crashChild appends until killed, printing "ack <writer> <seq>" after each
// acknowledged append.
func crashChild(dir string) {
	time.AfterFunc(60*time.Second, func() { os.Exit(3) }) // orphan guard
	l, err := Open(dir, Options{Partitions: crashPartitions, Logger: quiet})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range crashWriters {
		wg.Go(func() {
			for seq := 0; ; seq++ {
				msgs := make([]eventlog.Message, crashBatch)
				for m := range msgs {
					msgs[m] = eventlog.Message{
						Key:   fmt.Appendf(nil, "w%d-k%d", w, m),
						Value: fmt.Appendf(nil, "%d %d %d", w, seq, m),
					}
				}
				if err := l.Append(context.Background(), msgs); err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					os.Exit(2)
				}
				mu.Lock()
				// Unbuffered: once written, the parent may count it.
				fmt.Fprintf(os.Stdout, "ack %d %d\n", w, seq)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// --- benchmarks ---

// BenchmarkAppend measures parallel appends of a batch of events each;
// concurrent appends share group commits (one fsync per group).
func BenchmarkAppend(b *testing.B) {
	value := bytes.Repeat([]byte("e"), 200) // about one serialised event
	headers := map[string]string{
		eventlog.HeaderSchemaVersion: eventlog.SchemaVersion1,
		eventlog.HeaderContentType:   eventlog.ContentTypeEvent,
	}
	for _, size := range []int{1, 25, 500} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			l := mustOpen(b, b.TempDir(), Options{Partitions: 8})
			defer l.Close()
			var goroutine atomic.Int64
			b.SetParallelism(8)
			b.SetBytes(int64(size * len(value)))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				g := goroutine.Add(1)
				msgs := make([]eventlog.Message, size)
				for i := range msgs {
					msgs[i] = eventlog.Message{Key: fmt.Appendf(nil, "visitor-%d-%d", g, i), Value: value, Headers: headers}
				}
				for pb.Next() {
					if err := l.Append(context.Background(), msgs); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// TestDiskReserve: below the free-space reserve, Append refuses the
// records at once (nothing stored, the log not failed) and Probe says why;
// with the reserve met, the same log takes them.
func TestDiskReserve(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	msgs := []eventlog.Message{{Key: []byte("k"), Value: []byte("v")}}
	l := mustOpen(t, dir, Options{Partitions: 1, Logger: quiet, MinFreeBytes: 1 << 62})
	if err := l.Append(ctx, msgs); !errors.Is(err, diskspace.ErrLow) {
		t.Fatalf("Append with the reserve unmet: %v, want diskspace.ErrLow", err)
	}
	if err := l.Probe(ctx); !errors.Is(err, diskspace.ErrLow) {
		t.Fatalf("Probe with the reserve unmet: %v", err)
	}
	if end, err := l.EndOffset(ctx, 0); err != nil || end != 0 {
		t.Fatalf("end offset after a refused append: %d, %v", end, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, dir, Options{Partitions: 1, Logger: quiet, MinFreeBytes: 1})
	if err := l.Append(ctx, msgs); err != nil {
		t.Fatalf("Append with the reserve met: %v", err)
	}
	if err := l.Probe(ctx); err != nil {
		t.Fatalf("Probe: %v", err)
	}
	if end, err := l.EndOffset(ctx, 0); err != nil || end != 1 {
		t.Fatalf("end offset: %d, %v", end, err)
	}
}
