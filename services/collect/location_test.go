package collect

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/sextant-analytics/sextant/pkg/geoip"
)

// fakeGeo is an IP database of a few addresses; it records what it was
// asked.
type fakeGeo struct {
	db    map[netip.Addr]geoip.Location
	asked []netip.Addr
}

func (f *fakeGeo) Lookup(ip netip.Addr) geoip.Location {
	f.asked = append(f.asked, ip)
	return f.db[ip]
}

func TestLocation(t *testing.T) {
	paris := geoip.Location{Country: "FR", Region: "Île-de-France", City: "Paris"}
	db := map[netip.Addr]geoip.Location{
		mustAddr("8.8.8.8"):     paris, // the embedded table says US: the database wins
		mustAddr("2a01:e0a::1"): paris,
		mustAddr("9.9.9.9"):     {Country: "CH"}, // a country but no city
	}
	long := strings.Repeat("é", maxSourceLen+10)
	for _, tc := range []struct {
		name   string
		noDB   bool
		header string
		ip     string
		js     string // request fields
		want   location
		asked  string // the address looked up, "" for none
	}{
		{name: "database answers", ip: "8.8.8.8", js: `{}`, want: location{"FR", "Île-de-France", "Paris"}, asked: "8.8.8.8"},
		{name: "IPv6", ip: "2a01:e0a::1", js: `{}`, want: location{"FR", "Île-de-France", "Paris"}, asked: "2a01:e0a::1"},
		{name: "IPv4-mapped looked up as IPv4", ip: "::ffff:8.8.8.8", js: `{}`, want: location{"FR", "Île-de-France", "Paris"}, asked: "8.8.8.8"},
		{name: "ipOverride looked up", ip: "1.1.1.1", js: `{"ipOverride":"8.8.8.8"}`, want: location{"FR", "Île-de-France", "Paris"}, asked: "8.8.8.8"},
		{name: "country only in the database", ip: "9.9.9.9", js: `{}`, want: location{country: "CH"}, asked: "9.9.9.9"},
		{name: "not in the database: the embedded table", ip: "1.1.1.1", js: `{}`, want: location{country: "AU"}, asked: "1.1.1.1"},
		{name: "trusted header agrees", header: "fr", ip: "8.8.8.8", js: `{}`, want: location{"FR", "Île-de-France", "Paris"}, asked: "8.8.8.8"},
		{name: "trusted header differs: no city", header: "CH", ip: "8.8.8.8", js: `{}`, want: location{country: "CH"}, asked: "8.8.8.8"},
		{name: "countryId differs: no city", ip: "8.8.8.8", js: `{"userLocation":{"countryId":"DE"}}`, want: location{country: "DE"}, asked: "8.8.8.8"},
		{name: "userLocation's city and region over the database", ip: "8.8.8.8", js: `{"userLocation":{"city":"Lyon","regionId":"fr-ara"}}`, want: location{"FR", "FR-ARA", "Lyon"}, asked: "8.8.8.8"},
		{name: "userLocation whole: no lookup", ip: "8.8.8.8", js: `{"userLocation":{"countryId":"US","city":"San Jose","regionId":"US-CA"}}`, want: location{"US", "US-CA", "San Jose"}},
		{name: "userLocation's city alone", ip: "8.8.8.8", js: `{"userLocation":{"city":"Lyon"}}`, want: location{country: "FR", city: "Lyon"}, asked: "8.8.8.8"},
		{name: "malformed regionId dropped", ip: "8.8.8.8", js: `{"userLocation":{"city":"Lyon","regionId":"Rhône"}}`, want: location{country: "FR", city: "Lyon"}, asked: "8.8.8.8"},
		{name: "long city clipped", ip: "8.8.8.8", js: `{"userLocation":{"city":"` + long + `"}}`, want: location{country: "FR", city: long[:2*maxSourceLen]}, asked: "8.8.8.8"},
		{name: "no database: countries only", noDB: true, ip: "8.8.8.8", js: `{}`, want: location{country: "US"}},
		{name: "no database, userLocation", noDB: true, ip: "8.8.8.8", js: `{"userLocation":{"city":"Lyon","regionId":"FR-ARA"}}`, want: location{"US", "FR-ARA", "Lyon"}},
		{name: "no address", js: `{}`, want: location{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			geo := &fakeGeo{db: db}
			meta := testMeta()
			meta.Country = tc.header
			if tc.ip != "" {
				meta.ClientIP = mustAddr(tc.ip)
			}
			req := parseReq(t, tc.js)
			req.ClientId = "c"
			req.Events = parseReq(t, `{"events":[{"name":"a"},{"name":"b"}]}`).Events
			b, err := proto.Marshal(req)
			if err != nil {
				t.Fatal(err)
			}
			enc := NewEncoder(Limits{})
			if !tc.noDB {
				enc.geo = geo
			}
			evs, err := decodeEncoded(enc.Encode(b, meta))
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range evs {
				if got := (location{ev.GetCountry(), ev.GetRegion(), ev.GetCity()}); got != tc.want {
					t.Errorf("%s: location %+v, want %+v", ev.GetName(), got, tc.want)
				}
				// The address never reaches the event, in any encoding.
				for _, enc := range []string{prototext.Format(ev), protojson.Format(ev)} {
					for _, ip := range []string{"8.8.8.8", "1.1.1.1", "2a01:e0a", "9.9.9.9"} {
						if strings.Contains(enc, ip) {
							t.Fatalf("event contains IP %s:\n%s", ip, enc)
						}
					}
				}
			}
			if tc.noDB {
				return
			}
			var asked []string
			for _, a := range geo.asked {
				asked = append(asked, a.String())
			}
			want := []string{}
			if tc.asked != "" {
				want = []string{tc.asked}
			}
			if strings.Join(asked, ",") != strings.Join(want, ",") {
				t.Errorf("looked up %v, want %v (once per batch)", asked, want)
			}
		})
	}
}

func TestNormRegion(t *testing.T) {
	for in, want := range map[string]string{
		"US-CA": "US-CA", "fr-75c": "FR-75C", "GB-ENG": "GB-ENG", "FR-1": "FR-1",
		"": "", "US": "", "US-": "", "US-CALI": "", "USA-CA": "", "U1-CA": "", "US-C A": "", "California": "",
	} {
		if got := normRegion(in); got != want {
			t.Errorf("normRegion(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestLocationRealDB runs the pinned DB-IP database when test.sh fetched
// it (`sextant geoip fetch --geoip-db tilt/.stack/geoip`).
func TestLocationRealDB(t *testing.T) {
	db, err := geoip.OpenDir(filepath.Join("..", "..", "tilt", ".stack", "geoip"))
	if err != nil {
		t.Skipf("no fetched city database (go run ./cmd/sextant geoip fetch --geoip-db tilt/.stack/geoip): %v", err)
	}
	defer db.Close()
	req := parseReq(t, `{"clientId":"c","ipOverride":"81.2.69.142","events":[{"name":"a"}]}`)
	b, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	enc := NewEncoder(Limits{})
	enc.geo = db
	evs, err := decodeEncoded(enc.Encode(b, testMeta()))
	if err != nil {
		t.Fatal(err)
	}
	if ev := evs[0]; ev.GetCountry() != "GB" || ev.GetCity() != "London" || ev.GetRegion() != "England" {
		t.Errorf("country %q, region %q, city %q", ev.GetCountry(), ev.GetRegion(), ev.GetCity())
	}
}
