package pebblestore

import (
	"fmt"
	"testing"
	"time"

	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

func benchValue(size int, seed int) []byte {
	v := make([]byte, size)
	for i := range v {
		v[i] = byte(seed*31 + i)
	}
	return v
}

var benchProps = []string{"site-1", "site-2", "site-3", "site-4", "site-5"}

// benchCheckpoint is checkpoint n of partition p: 50 additions of ~2 KB (25
// properties × the current and the previous hour), 50 state entries and
// the watermarks.
func benchCheckpoint(p int32, n int, base int64, data [][]byte) viewstore.Checkpoint {
	const offsets = 1000
	hour := base + int64(n/20)*3600 // a new hour every 20 checkpoints
	cp := viewstore.Checkpoint{Progress: viewstore.Progress{Partition: p, Next: int64(n+1) * offsets, Applied: int64(n+1) * offsets, Watermark: time.Unix(hour, 0)}}
	for i := range 50 {
		prop := fmt.Sprintf("site-%d", i%25)
		h := hour
		if i >= 25 {
			h -= 3600
		}
		cp.Additions = append(cp.Additions, viewstore.Addition{
			Property: prop, Hour: h, Partition: p, Start: int64(n) * offsets, End: int64(n+1) * offsets,
			Block: data[i%len(data)],
		})
	}
	for i := range 50 {
		cp.State = append(cp.State, viewstore.KV{Key: fmt.Sprintf("seen/%032x", n*50+i), Value: benchValue(16, i)})
	}
	for _, prop := range benchProps {
		cp.Watermarks = append(cp.Watermarks, viewstore.Watermark{Property: prop, Partition: p, Offset: cp.Progress.Next})
	}
	return cp
}

var benchBase = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).Unix()

// BenchmarkCommit measures synced checkpoints of 50 additions of ~2 KB,
// plus 50 state entries and 5 watermarks.
func BenchmarkCommit(b *testing.B) {
	s := openTest(b, b.TempDir())
	defer func() { _ = s.Close() }()
	ctx := b.Context()
	ns := viewstore.Namespace("traffic/v1")
	data := make([][]byte, 50)
	for i := range data {
		data[i] = benchValue(2000, i)
	}
	bytesPerCheckpoint := 0
	n := 0
	for b.Loop() {
		cp := benchCheckpoint(3, n, benchBase, data)
		if bytesPerCheckpoint == 0 {
			for _, a := range cp.Additions {
				bytesPerCheckpoint += len(a.Property) + len(a.Block) + 24
			}
		}
		if err := s.Commit(ctx, ns, cp); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.SetBytes(int64(bytesPerCheckpoint))
	b.ReportMetric(float64(b.N*50)/b.Elapsed().Seconds(), "additions/s")
}

// BenchmarkScanAdditions scans a day of one property's additions, written
// by 4 partitions checkpointing every 3 minutes (20 an hour, each adding
// to two hours: 3,840 additions of ~2 KB), among 25 properties, after a
// flush.
func BenchmarkScanAdditions(b *testing.B) {
	s := openTest(b, b.TempDir())
	defer func() { _ = s.Close() }()
	ctx := b.Context()
	ns := viewstore.Namespace("traffic/v1")
	data := [][]byte{benchValue(2000, 1), benchValue(2100, 2)}
	const checkpoints = 24 * 20
	for p := range int32(4) {
		for n := range checkpoints {
			if err := s.Commit(ctx, ns, benchCheckpoint(p, n, benchBase, data)); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := s.db.Flush(); err != nil {
		b.Fatal(err)
	}
	want := 0
	_ = s.ScanAdditions(ctx, ns, "site-3", benchBase, benchBase+86400, func(viewstore.Addition) error { want++; return nil })
	if want < 4*checkpoints {
		b.Fatalf("%d additions, want at least %d", want, 4*checkpoints)
	}
	bytes := 0
	for b.Loop() {
		n := 0
		err := s.ScanAdditions(ctx, ns, "site-3", benchBase, benchBase+86400, func(a viewstore.Addition) error {
			n++
			bytes += len(a.Block)
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		if n != want {
			b.Fatalf("scanned %d additions, want %d", n, want)
		}
	}
	b.ReportMetric(float64(b.N*want)/b.Elapsed().Seconds(), "additions/s")
	b.ReportMetric(float64(bytes)/float64(b.N)/float64(want), "B/addition")
}

// BenchmarkScanBlocks scans 30 days of hour blocks of ~8 KB with covers of
// 16 partitions (720 blocks) of one property among five, after a flush.
func BenchmarkScanBlocks(b *testing.B) {
	s := openTest(b, b.TempDir())
	defer func() { _ = s.Close() }()
	ctx := b.Context()
	ns := viewstore.Namespace("traffic/v1")
	const days = 30
	cover := make([]int64, 16)
	for i := range cover {
		cover[i] = int64(i) * 1_000_000
	}
	for _, prop := range benchProps {
		for h := range int64(days * 24) {
			blk := viewstore.Block{Property: prop, Kind: viewstore.HourBlock, Bucket: benchBase + h*3600, Cover: cover, Data: benchValue(8000, int(h))}
			if err := s.PutBlock(ctx, ns, blk); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := s.db.Flush(); err != nil {
		b.Fatal(err)
	}
	const want = days * 24
	for b.Loop() {
		n := 0
		err := s.ScanBlocks(ctx, ns, "site-3", viewstore.HourBlock, benchBase, benchBase+days*86400, func(viewstore.Block) error {
			n++
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		if n != want {
			b.Fatalf("scanned %d blocks, want %d", n, want)
		}
	}
	b.ReportMetric(float64(b.N*want)/b.Elapsed().Seconds(), "blocks/s")
}

// BenchmarkDeleteAdditions deletes what 20 checkpoints added (the
// additions of 25 properties to two hours) as the compactor does after
// merging them, and lists a shard's pending additions, as it does next.
func BenchmarkDeleteAdditions(b *testing.B) {
	s := openTest(b, b.TempDir())
	defer func() { _ = s.Close() }()
	ctx := b.Context()
	ns := viewstore.Namespace("traffic/v1")
	data := [][]byte{benchValue(2000, 1)}
	n := 0
	for b.Loop() {
		b.StopTimer()
		for range 20 {
			if err := s.Commit(ctx, ns, benchCheckpoint(0, n, benchBase, data)); err != nil {
				b.Fatal(err)
			}
			n++
		}
		hour := benchBase + int64((n-1)/20)*3600
		b.StartTimer()
		for i := range 25 {
			for _, h := range []int64{hour - 3600, hour} {
				if err := s.DeleteAdditions(ctx, ns, fmt.Sprintf("site-%d", i), h, 0, int64(n)*1000); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := s.ListPending(ctx, ns, viewstore.ShardOf("site-3"), func(viewstore.PendingKey) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}
