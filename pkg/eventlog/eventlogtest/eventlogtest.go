// Package eventlogtest is the conformance suite of the eventlog.Log port.
// Every adapter (the embedded Pebble log, Kafka) runs it from its tests:
//
//	func TestConformance(t *testing.T) {
//		eventlogtest.Run(t, func(t *testing.T, partitions int) func() eventlog.Log {
//			dir := t.TempDir()
//			return func() eventlog.Log { ... open dir ... }
//		})
//	}
package eventlogtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sextant-analytics/sextant/pkg/eventlog"
)

// Factory creates fresh, empty storage for a log of the given partition
// count and returns a function that opens a Log on it. Calling open again
// after the previous Log was closed must reopen the same storage (for Kafka:
// reconnect to the same topic), so the suite can test durability. open
// reports its own failures through t (t.Fatal). The suite closes every Log
// it opens; the factory cleans the storage up (e.g. with t.Cleanup).
type Factory func(t *testing.T, partitions int) (open func() eventlog.Log)

const (
	// waitTimeout bounds anything that must happen (a record arriving, a
	// claim, Run returning); it is only reached when a test fails.
	waitTimeout = 30 * time.Second
	// shortWait is how long the suite waits for something that must not
	// happen, or before acting on a blocked call.
	shortWait = 100 * time.Millisecond
	// clockSlack tolerates timestamps of millisecond precision and a
	// little clock skew between the test and the log's storage.
	clockSlack = time.Second
)

// Run runs the whole suite against the adapter f creates.
func Run(t *testing.T, f Factory) {
	t.Run("AppendRead", func(t *testing.T) { testAppendRead(t, f) })
	t.Run("Partitioning", func(t *testing.T) { testPartitioning(t, f) })
	t.Run("Read", func(t *testing.T) { testRead(t, f) })
	t.Run("EndOffset", func(t *testing.T) { testEndOffset(t, f) })
	t.Run("TimeIndex", func(t *testing.T) { testTimeIndex(t, f) })
	t.Run("ConcurrentAppend", func(t *testing.T) { testConcurrentAppend(t, f) })
	t.Run("Durability", func(t *testing.T) { testDurability(t, f) })
	t.Run("CommitOffsets", func(t *testing.T) { testCommitOffsets(t, f) })
	t.Run("Assigner", func(t *testing.T) { testAssigner(t, f) })
	t.Run("Closed", func(t *testing.T) { testClosed(t, f) })
}

// --- helpers ---

// openLog opens the storage and closes the Log when the test ends (a
// second Close must be harmless; the Closed test checks that explicitly).
func openLog(t *testing.T, open func() eventlog.Log) eventlog.Log {
	t.Helper()
	l := open()
	if l == nil {
		t.Fatal("open returned a nil Log")
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func closeLog(t *testing.T, l eventlog.Log) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// keyFor returns the first key "tag-i" that PartitionFor places in p.
func keyFor(tag string, p int32, n int) []byte {
	for i := 0; ; i++ {
		k := []byte(tag + "-" + strconv.Itoa(i))
		if eventlog.PartitionFor(k, n) == p {
			return k
		}
	}
}

func mustAppend(t *testing.T, ctx context.Context, l eventlog.Log, msgs ...eventlog.Message) {
	t.Helper()
	if err := l.Append(ctx, msgs); err != nil {
		t.Fatalf("Append(%d messages): %v", len(msgs), err)
	}
}

func mustEnd(t *testing.T, ctx context.Context, l eventlog.Log, p int32) int64 {
	t.Helper()
	end, err := l.EndOffset(ctx, p)
	if err != nil {
		t.Fatalf("EndOffset(%d): %v", p, err)
	}
	return end
}

func mustPartitions(t *testing.T, ctx context.Context, l eventlog.Log, n int) []int32 {
	t.Helper()
	ps, err := l.Partitions(ctx)
	if err != nil {
		t.Fatalf("Partitions: %v", err)
	}
	want := make([]int32, n)
	for i := range want {
		want[i] = int32(i)
	}
	got := slices.Clone(ps)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("Partitions = %v, want %v", ps, want)
	}
	return want
}

// readRange reads [from, to) of p, checking the records are dense, in
// order and labelled with p. Each Read may return fewer than asked.
func readRange(t *testing.T, ctx context.Context, l eventlog.Log, p int32, from, to int64) []eventlog.Record {
	t.Helper()
	var out []eventlog.Record
	for off := from; off < to; {
		recs, err := l.Read(ctx, p, off, 500)
		if err != nil {
			t.Fatalf("Read(p=%d, offset=%d): %v", p, off, err)
		}
		if len(recs) == 0 {
			t.Fatalf("Read(p=%d, offset=%d) returned no records and no error", p, off)
		}
		if len(recs) > 500 {
			t.Fatalf("Read(p=%d, offset=%d, max=500) returned %d records", p, off, len(recs))
		}
		for _, r := range recs {
			if r.Partition != p || r.Offset != off {
				t.Fatalf("Read(p=%d) returned record (p=%d, offset=%d), want (p=%d, offset=%d)", p, r.Partition, r.Offset, p, off)
			}
			off++
		}
		out = append(out, recs...)
	}
	return out[:to-from] // the last Read may run past to
}

// readAll reads every record of every partition, up to the end offsets.
func readAll(t *testing.T, ctx context.Context, l eventlog.Log, n int) [][]eventlog.Record {
	t.Helper()
	out := make([][]eventlog.Record, n)
	for p := range n {
		end := mustEnd(t, ctx, l, int32(p))
		out[p] = readRange(t, ctx, l, int32(p), 0, end)
	}
	return out
}

func sameMessage(r eventlog.Record, m eventlog.Message) bool {
	return bytes.Equal(r.Key, m.Key) && bytes.Equal(r.Value, m.Value) && maps.Equal(r.Headers, m.Headers)
}

func checkRecord(t *testing.T, r eventlog.Record, want eventlog.Message, before, after time.Time) {
	t.Helper()
	if !sameMessage(r, want) {
		t.Errorf("record (p=%d, offset=%d) = key %q value %s headers %v, want key %q value %s headers %v",
			r.Partition, r.Offset, r.Key, short(r.Value), r.Headers, want.Key, short(want.Value), want.Headers)
	}
	if r.Timestamp.Before(before.Add(-clockSlack)) || r.Timestamp.After(after.Add(clockSlack)) {
		t.Errorf("record (p=%d, offset=%d) timestamp %v outside the append's interval [%v, %v]",
			r.Partition, r.Offset, r.Timestamp, before, after)
	}
}

func short(b []byte) string {
	if len(b) > 40 {
		return fmt.Sprintf("%q...(%d bytes)", b[:40], len(b))
	}
	return strconv.Quote(string(b))
}

// --- subtests ---

func testAppendRead(t *testing.T, f Factory) {
	const n = 3
	big := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	binKey := []byte{0, 1, 2, 0xff, 0xfe, '\n'}
	for _, tc := range []struct {
		name    string
		appends [][]eventlog.Message
	}{
		{"single message", [][]eventlog.Message{{{Key: []byte("visitor-1"), Value: []byte("hello"), Headers: map[string]string{
			eventlog.HeaderSchemaVersion: eventlog.SchemaVersion1, eventlog.HeaderContentType: eventlog.ContentTypeEvent,
		}}}}},
		{"sequential appends of one key", [][]eventlog.Message{
			{{Key: []byte("k"), Value: []byte("v0")}},
			{{Key: []byte("k"), Value: []byte("v1")}},
			{{Key: []byte("k"), Value: []byte("v2")}},
		}},
		{"batch over keys", [][]eventlog.Message{
			{
				{Key: []byte("a"), Value: []byte("a0"), Headers: map[string]string{"h": "1"}},
				{Key: []byte("b"), Value: []byte("b0")},
				{Key: []byte("c"), Value: []byte("c0"), Headers: map[string]string{"x": "", "y": "2"}},
				{Key: []byte("a"), Value: []byte("a1")},
				{Key: []byte("d"), Value: []byte("d0")},
				{Key: []byte("b"), Value: []byte("b1")},
			},
			{
				{Key: []byte("e"), Value: []byte("e0")},
				{Key: []byte("a"), Value: []byte("a2")},
			},
		}},
		{"empty value, no headers", [][]eventlog.Message{{{Key: []byte("empty")}}}},
		{"binary key, large value", [][]eventlog.Message{{
			{Key: binKey, Value: big, Headers: map[string]string{"bin": "\x00\x01\xff"}},
			{Key: binKey, Value: []byte{0}},
		}}},
		{"empty appends", [][]eventlog.Message{nil, {}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			l := openLog(t, f(t, n))
			type expect struct {
				msg           eventlog.Message
				before, after time.Time
			}
			want := make([][]expect, n)
			for _, msgs := range tc.appends {
				before := time.Now()
				mustAppend(t, ctx, l, msgs...)
				after := time.Now()
				for _, m := range msgs {
					p := eventlog.PartitionFor(m.Key, n)
					want[p] = append(want[p], expect{m, before, after})
				}
			}
			for p := range n {
				if end := mustEnd(t, ctx, l, int32(p)); end != int64(len(want[p])) {
					t.Fatalf("EndOffset(%d) = %d, want %d", p, end, len(want[p]))
				}
				recs := readRange(t, ctx, l, int32(p), 0, int64(len(want[p])))
				for i, r := range recs {
					checkRecord(t, r, want[p][i].msg, want[p][i].before, want[p][i].after)
				}
			}
		})
	}
}

func testPartitioning(t *testing.T, f Factory) {
	for _, n := range []int{1, 4, 7} {
		t.Run(fmt.Sprintf("partitions=%d", n), func(t *testing.T) {
			const keys, perKey, batch = 30, 10, 25
			ctx := testCtx(t)
			l := openLog(t, f(t, n))
			mustPartitions(t, ctx, l, n)
			// Interleave keys: message i is key i%keys, sequence i/keys.
			var msgs []eventlog.Message
			for i := range keys * perKey {
				msgs = append(msgs, eventlog.Message{
					Key:   fmt.Appendf(nil, "visitor-%d", i%keys),
					Value: fmt.Appendf(nil, "%d", i/keys),
				})
			}
			for chunk := range slices.Chunk(msgs, batch) {
				mustAppend(t, ctx, l, chunk...)
			}
			next := map[string]int{} // per key: next expected sequence
			total := 0
			for p, recs := range readAll(t, ctx, l, n) {
				for _, r := range recs {
					if want := eventlog.PartitionFor(r.Key, n); want != int32(p) {
						t.Fatalf("key %q in partition %d, PartitionFor says %d", r.Key, p, want)
					}
					seq, err := strconv.Atoi(string(r.Value))
					if err != nil {
						t.Fatalf("record (p=%d, offset=%d) has unexpected value %q", p, r.Offset, r.Value)
					}
					if seq != next[string(r.Key)] {
						t.Fatalf("key %q: sequence %d at (p=%d, offset=%d), want %d", r.Key, seq, p, r.Offset, next[string(r.Key)])
					}
					next[string(r.Key)]++
					total++
				}
			}
			if total != keys*perKey {
				t.Fatalf("read %d records, appended %d", total, keys*perKey)
			}
			for k, got := range next {
				if got != perKey {
					t.Errorf("key %q: %d records, want %d", k, got, perKey)
				}
			}
		})
	}
}

func testRead(t *testing.T, f Factory) {
	const n = 2
	const p = int32(1)
	key := keyFor("read", p, n)

	t.Run("waits for an append", func(t *testing.T) {
		ctx := testCtx(t)
		l := openLog(t, f(t, n))
		appended := make(chan error, 1)
		go func() {
			time.Sleep(shortWait)
			appended <- l.Append(ctx, []eventlog.Message{{Key: key, Value: []byte("late")}})
		}()
		start := time.Now()
		recs, err := l.Read(ctx, p, 0, 10)
		elapsed := time.Since(start)
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if err := <-appended; err != nil {
			t.Fatalf("Append: %v", err)
		}
		if len(recs) != 1 || recs[0].Offset != 0 || string(recs[0].Value) != "late" {
			t.Fatalf("Read = %v, want the record appended later at offset 0", recs)
		}
		if elapsed < shortWait/2 {
			t.Fatalf("Read returned after %v, before the append (%v)", elapsed, shortWait)
		}
	})

	t.Run("context ends", func(t *testing.T) {
		l := openLog(t, f(t, n))
		for _, tc := range []struct {
			name string
			ctx  func() (context.Context, context.CancelFunc)
			want error
		}{
			{"deadline", func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(t.Context(), shortWait)
			}, context.DeadlineExceeded},
			{"cancel", func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(t.Context())
				time.AfterFunc(shortWait, cancel)
				return ctx, cancel
			}, context.Canceled},
			{"already cancelled", func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(t.Context())
				cancel()
				return ctx, cancel
			}, context.Canceled},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ctx, cancel := tc.ctx()
				defer cancel()
				done := make(chan struct{})
				var recs []eventlog.Record
				var err error
				go func() {
					defer close(done)
					recs, err = l.Read(ctx, p, 0, 10)
				}()
				select {
				case <-done:
				case <-time.After(waitTimeout):
					t.Fatal("Read did not return after its context ended")
				}
				if !errors.Is(err, tc.want) || len(recs) != 0 {
					t.Fatalf("Read = %d records, %v; want none, %v", len(recs), err, tc.want)
				}
			})
		}
	})

	t.Run("max", func(t *testing.T) {
		const count = 10
		ctx := testCtx(t)
		l := openLog(t, f(t, n))
		var msgs []eventlog.Message
		for i := range count {
			msgs = append(msgs, eventlog.Message{Key: key, Value: fmt.Appendf(nil, "%d", i)})
		}
		mustAppend(t, ctx, l, msgs...)
		for _, tc := range []struct {
			from int64
			max  int
		}{{0, 1}, {0, 3}, {4, 1}, {4, 3}, {0, count}, {7, 100}, {count - 1, 5}} {
			t.Run(fmt.Sprintf("from=%d,max=%d", tc.from, tc.max), func(t *testing.T) {
				// Collect every record to the end, one Read at a time.
				for off := tc.from; off < count; {
					recs, err := l.Read(ctx, p, off, tc.max)
					if err != nil {
						t.Fatalf("Read(offset=%d, max=%d): %v", off, tc.max, err)
					}
					if len(recs) == 0 || len(recs) > tc.max {
						t.Fatalf("Read(offset=%d, max=%d) returned %d records", off, tc.max, len(recs))
					}
					for _, r := range recs {
						if r.Offset != off || string(r.Value) != strconv.Itoa(int(off)) {
							t.Fatalf("Read(offset=%d, max=%d): record offset %d value %q, want offset %d", off, tc.max, r.Offset, r.Value, off)
						}
						off++
					}
				}
			})
		}
	})

	t.Run("from end offset waits", func(t *testing.T) {
		ctx := testCtx(t)
		l := openLog(t, f(t, n))
		mustAppend(t, ctx, l, eventlog.Message{Key: key, Value: []byte("0")}, eventlog.Message{Key: key, Value: []byte("1")})
		end := mustEnd(t, ctx, l, p)
		if end != 2 {
			t.Fatalf("EndOffset = %d, want 2", end)
		}
		short, cancel := context.WithTimeout(ctx, shortWait)
		recs, err := l.Read(short, p, end, 10)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Read at the end offset = %d records, %v; want it to wait until the deadline", len(recs), err)
		}
		type result struct {
			recs []eventlog.Record
			err  error
		}
		got := make(chan result, 1)
		go func() {
			recs, err := l.Read(ctx, p, end, 10)
			got <- result{recs, err}
		}()
		time.Sleep(shortWait / 2)
		mustAppend(t, ctx, l, eventlog.Message{Key: key, Value: []byte("2")})
		r := <-got
		if r.err != nil {
			t.Fatalf("Read: %v", r.err)
		}
		if len(r.recs) != 1 || r.recs[0].Offset != end || string(r.recs[0].Value) != "2" {
			t.Fatalf("Read from the end offset = %v, want the new record at offset %d", r.recs, end)
		}
	})
}

func testEndOffset(t *testing.T, f Factory) {
	const n = 3
	ctx := testCtx(t)
	l := openLog(t, f(t, n))
	for p := range int32(n) {
		if end := mustEnd(t, ctx, l, p); end != 0 {
			t.Fatalf("EndOffset(%d) of an empty log = %d, want 0", p, end)
		}
	}
	want := make([]int64, n)
	for _, tc := range []struct {
		name   string
		counts []int // messages to append per partition, in one batch
	}{
		{"one partition", []int{0, 3, 0}},
		{"all partitions", []int{2, 1, 5}},
		{"more", []int{7, 0, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var msgs []eventlog.Message
			for p, c := range tc.counts {
				for i := range c {
					msgs = append(msgs, eventlog.Message{Key: keyFor("end", int32(p), n), Value: fmt.Appendf(nil, "%d", i)})
				}
				want[p] += int64(c)
			}
			mustAppend(t, ctx, l, msgs...)
			for p := range int32(n) {
				if end := mustEnd(t, ctx, l, p); end != want[p] {
					t.Fatalf("EndOffset(%d) = %d, want %d", p, end, want[p])
				}
			}
		})
	}
}

// timeIndexPause separates the groups of records testTimeIndex appends: more
// than a second, so the groups stay apart even on a log whose timestamps
// have second precision.
const timeIndexPause = 1200 * time.Millisecond

// testTimeIndex appends three groups of records, timeIndexPause apart, and
// checks OffsetForTime before the first group, at and around every record's
// own timestamp, between the groups and after the last. Expectations come
// from the timestamps the records were stored with, so they hold whatever
// the skew between the log's clock and the test's.
func testTimeIndex(t *testing.T, f Factory) {
	const n = 2
	ctx := testCtx(t)
	l := openLog(t, f(t, n))
	key0, key1 := keyFor("time", 0, n), keyFor("time", 1, n)
	msg := func(key []byte, g, i int) eventlog.Message {
		return eventlog.Message{Key: key, Value: fmt.Appendf(nil, "group %d message %d", g, i)}
	}
	offsetFor := func(t *testing.T, p int32, at time.Time) int64 {
		t.Helper()
		off, err := l.OffsetForTime(ctx, p, at)
		if err != nil {
			t.Fatalf("OffsetForTime(%d, %s): %v", p, at.Format(time.RFC3339Nano), err)
		}
		return off
	}
	// wantFor is the offset of the first of recs at or after at, or the
	// end.
	wantFor := func(recs []eventlog.Record, at time.Time) int64 {
		for i, r := range recs {
			if !r.Timestamp.Before(at) {
				return int64(i)
			}
		}
		return int64(len(recs))
	}

	for p := range int32(n) {
		if got := offsetFor(t, p, time.Now()); got != 0 {
			t.Fatalf("OffsetForTime(%d, now) of an empty log = %d, want 0", p, got)
		}
	}

	// Partition 0 gets every group, in two appends each (so a group may
	// span two timestamps); partition 1 only gets a record in group 1.
	var starts []int64 // offset of each group's first record in partition 0
	var first, last time.Time
	for g := range 3 {
		if g > 0 {
			time.Sleep(timeIndexPause)
		}
		before := time.Now()
		if g == 0 {
			first = before
		}
		starts = append(starts, mustEnd(t, ctx, l, 0))
		mustAppend(t, ctx, l, msg(key0, g, 0), msg(key0, g, 1))
		if g == 1 {
			mustAppend(t, ctx, l, msg(key0, g, 2), msg(key1, g, 0))
		} else {
			mustAppend(t, ctx, l, msg(key0, g, 2))
		}
		last = time.Now()
	}
	recs := [][]eventlog.Record{readRange(t, ctx, l, 0, 0, 9), readRange(t, ctx, l, 1, 0, 1)}
	if end := mustEnd(t, ctx, l, 0); end != 9 {
		t.Fatalf("EndOffset(0) = %d, want 9", end)
	}

	t.Run("before the first", func(t *testing.T) {
		for _, at := range []time.Time{{}, time.Unix(0, 0), first.Add(-clockSlack)} {
			for p := range int32(n) {
				if got := offsetFor(t, p, at); got != 0 {
					t.Errorf("OffsetForTime(%d, %s) = %d, want 0", p, at.Format(time.RFC3339Nano), got)
				}
			}
		}
	})
	t.Run("between groups", func(t *testing.T) {
		for g := 1; g < 3; g++ {
			prev, next := recs[0][starts[g]-1].Timestamp, recs[0][starts[g]].Timestamp
			if !prev.Before(next) {
				t.Fatalf("group %d's first record has timestamp %v, not after group %d's last %v, appended %v earlier",
					g, next, g-1, prev, timeIndexPause)
			}
			mid := prev.Add(next.Sub(prev) / 2)
			if got := offsetFor(t, 0, mid); got != starts[g] {
				t.Errorf("OffsetForTime(0, %s) between groups %d and %d = %d, want %d", mid.Format(time.RFC3339Nano), g-1, g, got, starts[g])
			}
			want1 := int64(0)
			if g == 2 {
				want1 = 1
			}
			if got := offsetFor(t, 1, mid); got != want1 {
				t.Errorf("OffsetForTime(1, %s) between groups %d and %d = %d, want %d", mid.Format(time.RFC3339Nano), g-1, g, got, want1)
			}
		}
	})
	t.Run("at record timestamps", func(t *testing.T) {
		// At, just before and just after every record's timestamp: the
		// nanosecond either side tests rounding in a log that stores
		// coarser timestamps.
		for p := range int32(n) {
			for _, r := range recs[p] {
				for _, at := range []time.Time{r.Timestamp, r.Timestamp.Add(-time.Nanosecond), r.Timestamp.Add(time.Nanosecond)} {
					if got, want := offsetFor(t, p, at), wantFor(recs[p], at); got != want {
						t.Errorf("OffsetForTime(%d, %s) = %d, want %d (record %d has timestamp %s)",
							p, at.Format(time.RFC3339Nano), got, want, r.Offset, r.Timestamp.Format(time.RFC3339Nano))
					}
				}
			}
		}
	})
	t.Run("after the last", func(t *testing.T) {
		for _, at := range []time.Time{last.Add(clockSlack), time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)} {
			for p := range int32(n) {
				if got, want := offsetFor(t, p, at), int64(len(recs[p])); got != want {
					t.Errorf("OffsetForTime(%d, %s) = %d, want the end offset %d", p, at.Format(time.RFC3339Nano), got, want)
				}
			}
		}
	})
}

func testConcurrentAppend(t *testing.T, f Factory) {
	const n, writers, appends, keysPerWriter = 4, 8, 200, 3
	ctx := testCtx(t)
	l := openLog(t, f(t, n))
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for seq := range appends {
				msgs := make([]eventlog.Message, keysPerWriter)
				for k := range msgs {
					msgs[k] = eventlog.Message{
						Key:   fmt.Appendf(nil, "w%d-k%d", w, k),
						Value: fmt.Appendf(nil, "%d", seq),
					}
				}
				if err := l.Append(ctx, msgs); err != nil {
					errs <- fmt.Errorf("writer %d append %d: %w", w, seq, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	next := map[string]int{}
	total := 0
	for p, recs := range readAll(t, ctx, l, n) {
		for _, r := range recs {
			if want := eventlog.PartitionFor(r.Key, n); want != int32(p) {
				t.Fatalf("key %q in partition %d, PartitionFor says %d", r.Key, p, want)
			}
			seq, err := strconv.Atoi(string(r.Value))
			if err != nil || seq != next[string(r.Key)] {
				t.Fatalf("key %q: value %q at (p=%d, offset=%d), want sequence %d (lost, duplicated or reordered)",
					r.Key, r.Value, p, r.Offset, next[string(r.Key)])
			}
			next[string(r.Key)]++
			total++
		}
	}
	if total != writers*appends*keysPerWriter || len(next) != writers*keysPerWriter {
		t.Fatalf("read %d records over %d keys, want %d over %d", total, len(next), writers*appends*keysPerWriter, writers*keysPerWriter)
	}
	for k, c := range next {
		if c != appends {
			t.Fatalf("key %q has %d records, want %d", k, c, appends)
		}
	}
}

func testDurability(t *testing.T, f Factory) {
	const n = 3
	ctx := testCtx(t)
	open := f(t, n)
	l := openLog(t, open)
	for b := range 5 {
		var msgs []eventlog.Message
		for i := range 10 {
			msgs = append(msgs, eventlog.Message{
				Key:     fmt.Appendf(nil, "k%d", i%4),
				Value:   fmt.Appendf(nil, "batch %d message %d", b, i),
				Headers: map[string]string{"batch": strconv.Itoa(b)},
			})
		}
		mustAppend(t, ctx, l, msgs...)
	}
	first := readAll(t, ctx, l, n)
	closeLog(t, l)

	same := func(t *testing.T, got, want []eventlog.Record) {
		t.Helper()
		if len(got) < len(want) {
			t.Fatalf("got %d records, want at least %d", len(got), len(want))
		}
		for i, w := range want {
			g := got[i]
			if g.Partition != w.Partition || g.Offset != w.Offset ||
				!sameMessage(g, eventlog.Message{Key: w.Key, Value: w.Value, Headers: w.Headers}) ||
				!g.Timestamp.Equal(w.Timestamp) {
				t.Fatalf("after reopen record %d = %+v, want %+v", i, g, w)
			}
		}
	}

	l = openLog(t, open)
	mustPartitions(t, ctx, l, n)
	second := readAll(t, ctx, l, n)
	for p := range n {
		if len(second[p]) != len(first[p]) {
			t.Fatalf("partition %d has %d records after reopen, want %d", p, len(second[p]), len(first[p]))
		}
		same(t, second[p], first[p])
	}
	// New appends continue the offsets.
	added := make([]eventlog.Message, n)
	for p := range added {
		added[p] = eventlog.Message{Key: keyFor("durable", int32(p), n), Value: []byte("after reopen")}
	}
	mustAppend(t, ctx, l, added...)
	for p := range n {
		if end := mustEnd(t, ctx, l, int32(p)); end != int64(len(first[p])+1) {
			t.Fatalf("EndOffset(%d) = %d after one more append, want %d", p, end, len(first[p])+1)
		}
		recs := readRange(t, ctx, l, int32(p), int64(len(first[p])), int64(len(first[p])+1))
		if !sameMessage(recs[0], added[p]) {
			t.Fatalf("partition %d: new record %+v, want %+v", p, recs[0], added[p])
		}
	}
	third := readAll(t, ctx, l, n)
	closeLog(t, l)

	l = openLog(t, open)
	fourth := readAll(t, ctx, l, n)
	for p := range n {
		if len(fourth[p]) != len(third[p]) {
			t.Fatalf("partition %d has %d records after second reopen, want %d", p, len(fourth[p]), len(third[p]))
		}
		same(t, fourth[p], third[p])
	}
}

func testCommitOffsets(t *testing.T, f Factory) {
	const n = 3
	ctx := testCtx(t)
	open := f(t, n)
	l := openLog(t, open)
	groups := []string{"projection-a", "projection-b", "never-committed"}
	want := map[string]int64{}
	check := func(t *testing.T, l eventlog.Log) {
		t.Helper()
		for _, g := range groups {
			for p := range int32(n) {
				got, err := l.Committed(ctx, g, p)
				k := fmt.Sprintf("%s/%d", g, p)
				if err != nil || got != want[k] {
					t.Fatalf("Committed(%q, %d) = %d, %v; want %d, nil", g, p, got, err, want[k])
				}
			}
		}
	}
	check(t, l)
	for _, tc := range []struct {
		group string
		p     int32
		next  int64
	}{
		{"projection-a", 0, 5},
		{"projection-a", 1, 7},
		{"projection-b", 0, 9},
		{"projection-a", 0, 6}, // overwrite
		{"projection-b", 2, 1 << 40},
		{"projection-a", 1, 3}, // moving back is allowed (replay)
	} {
		t.Run(fmt.Sprintf("%s/%d=%d", tc.group, tc.p, tc.next), func(t *testing.T) {
			if err := l.Commit(ctx, tc.group, tc.p, tc.next); err != nil {
				t.Fatalf("Commit: %v", err)
			}
			want[fmt.Sprintf("%s/%d", tc.group, tc.p)] = tc.next
			check(t, l)
		})
	}
	closeLog(t, l)
	t.Run("after reopen", func(t *testing.T) {
		check(t, openLog(t, open))
	})
}

func testAssigner(t *testing.T, f Factory) {
	const n = 3
	ctx := testCtx(t)
	l := openLog(t, f(t, n))

	var mu sync.Mutex
	claims := map[int32]int{}
	all := make(chan struct{})
	ended := make(chan int32, 2*n) // partitions whose claim saw its ctx end
	var bad []string
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	runErr := make(chan error, 1)
	go func() {
		runErr <- l.Run(runCtx, "eventlogtest-assigner", func(cctx context.Context, p int32) error {
			mu.Lock()
			claims[p]++
			if p < 0 || p >= n {
				bad = append(bad, fmt.Sprintf("claimed partition %d of %d", p, n))
			}
			if len(claims) == n {
				select {
				case <-all:
				default:
					close(all)
				}
			}
			mu.Unlock()
			<-cctx.Done()
			ended <- p
			return cctx.Err()
		})
	}()
	select {
	case <-all:
	case err := <-runErr:
		t.Fatalf("Run returned before its context ended: %v", err)
	case <-time.After(waitTimeout):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("claimed %v within %v, want all %d partitions (each claim blocks, so claims must run concurrently)", claims, waitTimeout, n)
	}
	// Give duplicate claims a chance to show up.
	select {
	case err := <-runErr:
		t.Fatalf("Run returned before its context ended: %v", err)
	case <-time.After(shortWait):
	}
	mu.Lock()
	for p := range int32(n) {
		if claims[p] != 1 {
			bad = append(bad, fmt.Sprintf("partition %d claimed %d times, want once", p, claims[p]))
		}
	}
	problems := slices.Clone(bad)
	mu.Unlock()
	if len(problems) > 0 {
		t.Fatal(strings.Join(problems, "; "))
	}

	cancel()
	seen := map[int32]bool{}
	for len(seen) < n {
		select {
		case p := <-ended:
			seen[p] = true
		case <-time.After(waitTimeout):
			t.Fatalf("claim contexts ended for %v after Run's context was cancelled, want all %d", seen, n)
		}
	}
	select {
	case err := <-runErr:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("Run after cancel = %v, want nil or context.Canceled", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Run did not return after its context was cancelled")
	}
}

func testClosed(t *testing.T, f Factory) {
	const n = 2
	t.Run("operations", func(t *testing.T) {
		ctx := testCtx(t)
		l := openLog(t, f(t, n))
		key := keyFor("closed", 0, n)
		mustAppend(t, ctx, l, eventlog.Message{Key: key, Value: []byte("v")})
		if err := l.Commit(ctx, "g", 0, 1); err != nil {
			t.Fatalf("Commit: %v", err)
		}
		closeLog(t, l)
		if err := l.Close(); err != nil && !errors.Is(err, eventlog.ErrClosed) {
			t.Fatalf("second Close = %v, want nil or ErrClosed", err)
		}
		for _, tc := range []struct {
			name string
			op   func(ctx context.Context) error
		}{
			{"Append", func(ctx context.Context) error {
				return l.Append(ctx, []eventlog.Message{{Key: key, Value: []byte("late")}})
			}},
			{"Read", func(ctx context.Context) error { _, err := l.Read(ctx, 0, 0, 10); return err }},
			{"Read at end", func(ctx context.Context) error { _, err := l.Read(ctx, 0, 1, 10); return err }},
			{"EndOffset", func(ctx context.Context) error { _, err := l.EndOffset(ctx, 0); return err }},
			{"OffsetForTime", func(ctx context.Context) error { _, err := l.OffsetForTime(ctx, 0, time.Now()); return err }},
			{"Partitions", func(ctx context.Context) error { _, err := l.Partitions(ctx); return err }},
			{"Commit", func(ctx context.Context) error { return l.Commit(ctx, "g", 0, 2) }},
			{"Committed", func(ctx context.Context) error { _, err := l.Committed(ctx, "g", 0); return err }},
			{"Run", func(ctx context.Context) error {
				return l.Run(ctx, "g", func(ctx context.Context, p int32) error {
					t.Errorf("Run on a closed log claimed partition %d", p)
					return nil
				})
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				// The deadline only matters if the operation wrongly waits.
				octx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				if err := tc.op(octx); !errors.Is(err, eventlog.ErrClosed) {
					t.Fatalf("%s after Close = %v, want an error wrapping eventlog.ErrClosed", tc.name, err)
				}
			})
		}
	})

	t.Run("unblocks Read", func(t *testing.T) {
		ctx := testCtx(t)
		l := openLog(t, f(t, n))
		got := make(chan error, 1)
		go func() {
			_, err := l.Read(ctx, 0, 0, 10)
			got <- err
		}()
		time.Sleep(shortWait)
		closeLog(t, l)
		select {
		case err := <-got:
			if !errors.Is(err, eventlog.ErrClosed) {
				t.Fatalf("waiting Read after Close = %v, want an error wrapping eventlog.ErrClosed", err)
			}
		case <-time.After(waitTimeout):
			t.Fatal("a waiting Read did not return when the log was closed")
		}
	})
}
