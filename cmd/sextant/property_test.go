package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sextant-analytics/sextant/pkg/loadgen"
	"github.com/sextant-analytics/sextant/pkg/property"
)

// clearSextantEnv unsets the SEXTANT_* variables (test.sh sets the
// stack's), so that the commands run here use the embedded engines, and
// points SEXTANT_CONFIG at a file of the test's own (none yet), so that
// no context of the user's is used.
func clearSextantEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "SEXTANT_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	t.Setenv("SEXTANT_CONFIG", filepath.Join(t.TempDir(), "sextant", "config.json"))
}

// TestPropertyCreateCount creates many properties in one command: one JSON
// line of keys per property, in the order of their names, which load
// generators read (loadgen.ReadKeys), and keys that authenticate for their
// own property.
func TestPropertyCreateCount(t *testing.T) {
	clearSextantEnv(t)
	ctx := context.Background()
	dir := t.TempDir()
	const n = 60
	var stdout, stderr bytes.Buffer
	if err := propertyCmd(ctx, []string{"create", "--offline", "--data-dir", dir, "--name", "shop", "--count", "60", "--json",
		"--allowed-origins", "https://shop.example"}, &stdout, &stderr); err != nil {
		t.Fatalf("property create --count: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != n {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), n, stdout.String())
	}
	ks, err := loadgen.ReadKeys(strings.NewReader(stdout.String()))
	if err != nil || len(ks) != n {
		t.Fatalf("ReadKeys: %d keys, %v", len(ks), err)
	}
	// One more, as before: the properties add up.
	stdout.Reset()
	if err := propertyCmd(ctx, []string{"create", "--offline", "--data-dir", dir, "--name", "single", "--json"}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	var single property.Keys
	if err := json.Unmarshal(stdout.Bytes(), &single); err != nil {
		t.Fatal(err)
	}

	var e engines
	e.DataDir = dir
	st, err := e.openViews(ctx, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	reg := property.NewRegistry(st, property.Options{})
	list, _, err := reg.List(ctx, 1000, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != n+1 {
		t.Fatalf("%d properties listed, want %d", len(list), n+1)
	}
	seen := map[string]bool{}
	for i, k := range ks {
		if seen[k.PropertyID] {
			t.Fatalf("property id %s printed twice", k.PropertyID)
		}
		seen[k.PropertyID] = true
		p, err := reg.Get(ctx, k.PropertyID)
		if err != nil {
			t.Fatal(err)
		}
		if want := "shop-" + strconv.Itoa(i+1); p.Name != want || len(p.AllowedOrigins) != 1 || p.AllowedOrigins[0] != "https://shop.example" {
			t.Fatalf("line %d: property %+v, want the name %s and the origin", i+1, p, want)
		}
		for key, scope := range map[string]property.Scope{k.WriteKey: property.Write, k.ReadKey: property.Read} {
			pr, err := reg.Authenticate(ctx, key)
			if err != nil || pr.PropertyID != k.PropertyID || pr.Scope != scope {
				t.Fatalf("line %d: key %s… authenticates as %+v, %v", i+1, key[:8], pr, err)
			}
		}
	}
	if seen[single.PropertyID] {
		t.Fatal("the single property has an id of the batch")
	}
}

func TestPropertyCreateCountFlags(t *testing.T) {
	clearSextantEnv(t)
	dir := t.TempDir()
	for _, args := range [][]string{
		{"--count", "2"},           // not --json
		{"--count", "0", "--json"}, // nothing to create
		{"--count", "-3", "--json"},
	} {
		all := append([]string{"create", "--offline", "--data-dir", dir, "--name", "x"}, args...)
		if err := propertyCmd(context.Background(), all, io.Discard, io.Discard); err != errUsage {
			t.Errorf("property %v: %v, want a usage error", all, err)
		}
	}
}
