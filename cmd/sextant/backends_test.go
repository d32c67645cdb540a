package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDataDirInUse: an offline command on a data directory that an open
// store holds says so, and names the directory; any other failure to open
// it does not.
func TestDataDirInUse(t *testing.T) {
	clearSextantEnv(t)
	ctx := context.Background()
	dir := t.TempDir()
	e := engines{DataDir: dir}
	st, err := e.openViews(ctx, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	err = propertyCmd(ctx, []string{"list", "--offline", "--data-dir", dir}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "data dir "+dir+" is in use by another sextant process") {
		t.Fatalf("offline list on a held data dir: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := propertyCmd(ctx, []string{"list", "--offline", "--data-dir", dir}, io.Discard, io.Discard); err != nil {
		t.Fatalf("offline list once the store closed: %v", err)
	}

	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err = propertyCmd(ctx, []string{"list", "--offline", "--data-dir", file}, io.Discard, io.Discard)
	if err == nil || strings.Contains(err.Error(), "in use") {
		t.Fatalf("offline list on a data dir that is a file: %v, want an error that is not \"in use\"", err)
	}
}
