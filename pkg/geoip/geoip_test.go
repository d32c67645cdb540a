package geoip

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// dbipRecord is a record as DB-IP's files hold it.
func dbipRecord(country, state1, city string) mmdbtype.Map {
	return mmdbtype.Map{
		"country_code": mmdbtype.String(country), "state1": mmdbtype.String(state1), "state2": mmdbtype.String(""),
		"city": mmdbtype.String(city), "postcode": mmdbtype.String(""),
		"latitude": mmdbtype.Float32(48.85), "longitude": mmdbtype.Float32(2.35), "timezone": mmdbtype.String(""),
	}
}

// geoliteRecord is a record as GeoLite2-City holds it.
func geoliteRecord(country, region, city string) mmdbtype.Map {
	names := func(en string) mmdbtype.Map {
		return mmdbtype.Map{"names": mmdbtype.Map{"de": mmdbtype.String("x"), "en": mmdbtype.String(en)}, "geoname_id": mmdbtype.Uint32(1)}
	}
	return mmdbtype.Map{
		"city":         names(city),
		"continent":    mmdbtype.Map{"code": mmdbtype.String("EU")},
		"country":      mmdbtype.Map{"geoname_id": mmdbtype.Uint32(2), "iso_code": mmdbtype.String(country)},
		"location":     mmdbtype.Map{"latitude": mmdbtype.Float64(1), "longitude": mmdbtype.Float64(2)},
		"subdivisions": mmdbtype.Slice{names(region), names("second level")},
	}
}

// writeMMDB writes a database of the given networks into dir.
func writeMMDB(t testing.TB, dir, name string, ipVersion int, nets map[string]mmdbtype.Map) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "test city", IPVersion: ipVersion, RecordSize: 28})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, rec := range nets {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tree.Insert(n, rec); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// dbipFiles writes a split IPv4/IPv6 database in DB-IP's shape.
func dbipFiles(t testing.TB) []string {
	dir := t.TempDir()
	return []string{
		writeMMDB(t, dir, "v4.mmdb", 4, map[string]mmdbtype.Map{
			"81.2.69.0/24": dbipRecord("GB", "England", "London"),
			"90.0.0.0/22":  dbipRecord("fr", "Hauts-de-France", "Lille"),
			"5.5.5.0/24":   dbipRecord("ZZ", "", ""),
			"6.6.6.0/24":   dbipRecord("FRA", "x", "y"),
		}),
		writeMMDB(t, dir, "v6.mmdb", 6, map[string]mmdbtype.Map{
			"2a01:e0a::/32": dbipRecord("FR", "Île-de-France", "Paris"),
		}),
	}
}

func TestLookup(t *testing.T) {
	dbip := dbipFiles(t)
	geolite := writeMMDB(t, t.TempDir(), "city.mmdb", 6, map[string]mmdbtype.Map{
		"2a01:e0a::/32": geoliteRecord("FR", "Île-de-France", "Paris"),
		"8.8.8.0/24":    geoliteRecord("US", "California", "Mountain View"),
	})
	paris := Location{Country: "FR", Region: "Île-de-France", City: "Paris"}
	tests := []struct {
		name  string
		files []string
		ip    string
		want  Location
	}{
		{"dbip ipv4", dbip, "81.2.69.142", Location{"GB", "England", "London"}},
		{"dbip lower-case country", dbip, "90.0.1.2", Location{"FR", "Hauts-de-France", "Lille"}},
		{"dbip ipv4-mapped ipv6", dbip, "::ffff:81.2.69.1", Location{"GB", "England", "London"}},
		{"dbip ipv6", dbip, "2a01:e0a:1::1", paris},
		{"dbip unknown country", dbip, "5.5.5.5", Location{}},
		{"dbip malformed country", dbip, "6.6.6.6", Location{Region: "x", City: "y"}},
		{"dbip absent ipv4", dbip, "1.1.1.1", Location{}},
		{"dbip absent ipv6", dbip, "2001:db8::1", Location{}},
		{"dbip loopback", dbip, "127.0.0.1", Location{}},
		{"invalid address", dbip, "", Location{}},
		{"geolite ipv6", []string{geolite}, "2a01:e0a::5", paris},
		{"geolite ipv4 in an ipv6 file", []string{geolite}, "8.8.8.8", Location{"US", "California", "Mountain View"}},
		{"geolite absent", []string{geolite}, "9.9.9.9", Location{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := Open(tt.files...)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var ip netip.Addr
			if tt.ip != "" {
				ip = netip.MustParseAddr(tt.ip)
			}
			for range 2 { // decoded, then cached
				if got := db.Lookup(ip); got != tt.want {
					t.Fatalf("Lookup(%s) = %+v, want %+v", tt.ip, got, tt.want)
				}
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.mmdb")
	if err := os.WriteFile(bad, []byte("not a database"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, paths := range [][]string{nil, {bad}, {filepath.Join(t.TempDir(), "absent.mmdb")}} {
		if db, err := Open(paths...); err == nil {
			t.Errorf("Open(%q) = %v, want an error", paths, db)
		}
	}
}

func TestClose(t *testing.T) {
	db, err := Open(dbipFiles(t)...)
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr("81.2.69.142")
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				if l := db.Lookup(ip); l != (Location{}) && l.City != "London" {
					t.Errorf("Lookup = %+v", l)
					return
				}
			}
		})
	}
	db.Close()
	wg.Wait()
	if l := db.Lookup(ip); l != (Location{}) {
		t.Errorf("Lookup after Close = %+v, want nothing", l)
	}
	var nilDB *DB
	if l := nilDB.Lookup(ip); l != (Location{}) {
		t.Errorf("nil DB: %+v", l)
	}
}

// BenchmarkLookup measures lookups of a few addresses, as a site's visitors
// repeat them (records come from the cache), and of addresses each in a
// record of its own (every lookup decodes).
func BenchmarkLookup(b *testing.B) {
	nets := map[string]mmdbtype.Map{}
	var ips []netip.Addr
	for i := range 4096 {
		a := netip.AddrFrom4([4]byte{20 + byte(i>>8), byte(i), 0, 1})
		nets[netip.PrefixFrom(a, 24).Masked().String()] = dbipRecord("FR", "Île-de-France", "Paris "+a.String())
		ips = append(ips, a)
	}
	db, err := Open(writeMMDB(b, b.TempDir(), "v4.mmdb", 4, nets))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	bench(b, db, ips)
}

// BenchmarkLookupRealDB runs against the pinned DB-IP database when
// `sextant geoip fetch --dir tilt/.stack/geoip` (test.sh) fetched it.
func BenchmarkLookupRealDB(b *testing.B) {
	dir := filepath.Join("..", "..", "tilt", ".stack", "geoip")
	db, err := OpenDir(dir)
	if err != nil {
		b.Skipf("no fetched database (run: go run ./cmd/sextant geoip fetch --dir tilt/.stack/geoip): %v", err)
	}
	defer db.Close()
	var ips []netip.Addr
	for i := range 1 << 16 {
		ips = append(ips, netip.AddrFrom4([4]byte{byte(1 + i%223), byte(i >> 8), byte(i), 7}))
	}
	bench(b, db, ips)
}

func bench(b *testing.B, db *DB, ips []netip.Addr) {
	b.Run("repeated", func(b *testing.B) {
		ip := ips[0]
		db.Lookup(ip)
		b.ReportAllocs()
		for b.Loop() {
			db.Lookup(ip)
		}
	})
	b.Run("spread", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			db.Lookup(ips[i%len(ips)])
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				db.Lookup(ips[i%len(ips)])
				i++
			}
		})
	})
}

func TestCountry(t *testing.T) {
	for in, want := range map[string]string{"fr": "FR", "US": "US", "xx": "", "ZZ": "", "F": "", "FRA": "", "f1": "", "": "", "é": ""} {
		if got := Country(in); got != want {
			t.Errorf("Country(%q) = %q, want %q", in, got, want)
		}
	}
}
