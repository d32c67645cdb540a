package pebblestore

import (
	"fmt"
	"testing"
	"time"

	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

// benchDims returns n distinct dimension tuples of realistic shape.
func benchDims(n int) []string {
	countries := []string{"DE", "US", "FR", "GB", "JP"}
	browsers := []string{"Firefox", "Chrome", "Safari", "Edge", "Opera", "Other", "Bot", "Unknown", "Samsung", "UC"}
	out := make([]string, 0, n)
	for i := 0; len(out) < n; i++ {
		out = append(out, fmt.Sprintf("country=%s\x1fbrowser=%s\x1fpath=/blog/%d",
			countries[i%len(countries)], browsers[(i/len(countries))%len(browsers)], i))
	}
	return out
}

func benchValue(size int, seed int) []byte {
	v := make([]byte, size)
	for i := range v {
		v[i] = byte(seed*31 + i)
	}
	return v
}

// BenchmarkCommit measures synced checkpoints of 500 cells of ~200 bytes
// (key and value), plus state entries and watermarks.
func BenchmarkCommit(b *testing.B) {
	s := openTest(b, b.TempDir())
	defer func() { _ = s.Close() }()
	ctx := b.Context()
	ns := viewstore.Namespace("traffic/v1")
	const cellsPerCheckpoint = 500
	dims := benchDims(50)
	props := []string{"site-1", "site-2", "site-3", "site-4", "site-5"}
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).Unix()

	cp := viewstore.Checkpoint{Progress: viewstore.Progress{Partition: 3}}
	cp.Cells = make([]viewstore.Cell, cellsPerCheckpoint)
	values := make([][]byte, cellsPerCheckpoint)
	for i := range values {
		values[i] = benchValue(140, i)
	}
	for i := range 50 {
		cp.State = append(cp.State, viewstore.KV{Key: fmt.Sprintf("seen/%032x", i), Value: benchValue(16, i)})
	}
	for _, p := range props {
		cp.Watermarks = append(cp.Watermarks, viewstore.Watermark{Property: p, Partition: 3})
	}
	bytesPerCheckpoint := 0
	n := 0
	for b.Loop() {
		n++
		bucket := base + int64(n/10)*60 // a new minute every 10 checkpoints
		for i := range cp.Cells {
			g := viewstore.Minute
			bk := bucket
			if i%2 == 1 {
				g, bk = viewstore.Hour, bucket-bucket%3600
			}
			cp.Cells[i] = viewstore.Cell{
				Property:  props[i%len(props)],
				Grain:     g,
				Bucket:    bk,
				Dims:      dims[(i/2)%len(dims)],
				Partition: 3,
				Value:     values[i],
			}
			values[i][0] = byte(n) // absolute values change between checkpoints
		}
		if bytesPerCheckpoint == 0 {
			for _, c := range cp.Cells {
				bytesPerCheckpoint += len(c.Property) + len(c.Dims) + len(c.Value) + 16
			}
		}
		cp.Progress.Next += 1000
		cp.Progress.Applied += 1000
		cp.Progress.Watermark = time.Unix(bucket, 0)
		if err := s.Commit(ctx, ns, cp); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(bytesPerCheckpoint))
	b.ReportMetric(float64(b.N*cellsPerCheckpoint)/b.Elapsed().Seconds(), "cells/s")
	b.ReportMetric(float64(bytesPerCheckpoint)/cellsPerCheckpoint, "B/cell")
}

// BenchmarkScanCells scans 30 days of hour cells with 50 dimension tuples
// each (36,000 cells) of one property among five, after a flush.
func BenchmarkScanCells(b *testing.B) {
	s := openTest(b, b.TempDir())
	defer func() { _ = s.Close() }()
	ctx := b.Context()
	ns := viewstore.Namespace("traffic/v1")
	const days, hours, nDims = 30, 24, 50
	dims := benchDims(nDims)
	props := []string{"site-1", "site-2", "site-3", "site-4", "site-5"}
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).Unix()

	for pi, p := range props {
		cp := viewstore.Checkpoint{Progress: viewstore.Progress{Partition: int32(pi)}}
		for d := range days {
			for h := range hours {
				for k, dm := range dims {
					cp.Cells = append(cp.Cells, viewstore.Cell{
						Property: p, Grain: viewstore.Hour, Bucket: base + int64(d*86400+h*3600),
						Dims: dm, Partition: int32(pi), Value: benchValue(120, d+h+k),
					})
				}
			}
			if d%5 == 4 {
				if err := s.Commit(ctx, ns, cp); err != nil {
					b.Fatal(err)
				}
				cp.Cells = cp.Cells[:0]
			}
		}
	}
	if err := s.db.Flush(); err != nil {
		b.Fatal(err)
	}
	const want = days * hours * nDims
	for b.Loop() {
		n := 0
		err := s.ScanCells(ctx, ns, "site-3", viewstore.Hour, base, base+days*86400, func(c viewstore.Cell) error {
			n++
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		if n != want {
			b.Fatalf("scanned %d cells, want %d", n, want)
		}
	}
	b.ReportMetric(float64(b.N*want)/b.Elapsed().Seconds(), "cells/s")
}
