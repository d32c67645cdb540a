package pebblestore

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/sextant-analytics/sextant/pkg/seal"
	"github.com/sextant-analytics/sextant/pkg/seal/sealtest"
)

func openKeys(t *testing.T, dir string) *Keys {
	t.Helper()
	k, err := OpenKeys(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKeysConformance(t *testing.T) {
	k := openKeys(t, t.TempDir())
	defer func() { _ = k.Close() }()
	sealtest.Run(t, k)
}

// TestKeysDurable checks that a key made is there after a reopen (the
// store has no write-ahead log: its flushes make keys durable).
func TestKeysDurable(t *testing.T) {
	dir := t.TempDir()
	k := openKeys(t, dir)
	key, err := seal.SubjectKey(t.Context(), k, "p", seal.Client("c"))
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	k = openKeys(t, dir)
	defer func() { _ = k.Close() }()
	if got, err := k.Key(t.Context(), "p", key.ID); err != nil || got != key {
		t.Fatalf("after a reopen: %v, %v", got.ID, err)
	}
	if _, err := k.Key(t.Context(), "p", seal.NewKey().ID); err == nil {
		t.Fatal("an unknown key was found")
	}
}

// TestForgottenSecretLeavesTheFiles checks that a destroyed key's secret is
// in none of the store's files once Forget returned (a key left in an old
// table or log file would be readable with the raw files).
func TestForgottenSecretLeavesTheFiles(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	k := openKeys(t, dir)
	forgotten, err := seal.SubjectKey(ctx, k, "p", seal.Client("gone"))
	if err != nil {
		t.Fatal(err)
	}
	kept, err := seal.SubjectKey(ctx, k, "p", seal.Client("kept"))
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := k.Forget(ctx, "p", seal.Client("gone")); err != nil || !ok {
		t.Fatalf("Forget = %v, %v", ok, err)
	}
	found := func(secret []byte) []string {
		var in []string
		_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err == nil && bytes.Contains(b, secret) {
				in = append(in, filepath.Base(path))
			}
			return nil
		})
		return in
	}
	if in := found(kept.Secret[:]); len(in) == 0 {
		t.Fatal("the kept key's secret is in no file: the scan finds nothing")
	}
	if in := found(forgotten.Secret[:]); len(in) > 0 {
		t.Errorf("the destroyed key's secret is still in %v", in)
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkSubjectKeyNew is the cost of a new visitor's key: 16 callers
// at once, as collect's concurrent batches are.
func BenchmarkSubjectKeyNew(b *testing.B) {
	k, err := OpenKeys(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer k.Close()
	b.SetParallelism(8)
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := seal.SubjectKey(context.Background(), k, "p", seal.Client(fmt.Sprint(n.Add(1)))); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
