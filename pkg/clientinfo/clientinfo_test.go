package clientinfo

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestOf(t *testing.T) {
	p := Policy{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, CountryHeader: "CF-IPCountry"}
	h := http.Header{}
	h.Set("User-Agent", "direct-ua")
	h.Set("Grpcgateway-User-Agent", "browser-ua")
	h.Set("X-Forwarded-For", "203.0.113.7, 10.0.0.1")
	h.Set("CF-IPCountry", "de")
	for _, tc := range []struct {
		name, peer, ua, ip, country string
	}{
		{"trusted proxy", "127.0.0.1:5555", "browser-ua", "203.0.113.7", "DE"},
		{"untrusted peer", "198.51.100.2:5555", "direct-ua", "198.51.100.2", ""},
		{"mapped v4 peer", "[::ffff:127.0.0.1]:1", "browser-ua", "203.0.113.7", "DE"},
		{"garbage peer", "nonsense", "direct-ua", "invalid IP", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := p.Of(h, tc.peer)
			if got.UserAgent != tc.ua || got.IP.String() != tc.ip || got.Country != tc.country {
				t.Fatalf("got %+v", got)
			}
		})
	}
}
