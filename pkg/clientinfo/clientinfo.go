// Package clientinfo tells who sent a request: the visitor's address,
// User-Agent and country, believing forwarded headers only from trusted
// proxies (the REST gateway in-process, the API gateway in front).
package clientinfo

import (
	"net"
	"net/netip"
	"strings"
)

// Forwarded header names. The REST gateway (grpc-gateway) forwards the
// browser's User-Agent as Grpcgateway-User-Agent; the API gateway does too.
// HeaderFreshWatermarks asks InsightsService for an answer computed with
// the data watermarks as the store has them now, not as remembered: a
// report cache in front of it (the gateway's) sends it, so that an answer
// it keeps under the watermarks it saw holds at least the data they name.
const HeaderFreshWatermarks = "Sextant-Fresh-Watermarks"

const (
	HeaderForwardedFor = "X-Forwarded-For"
	HeaderForwardedUA  = "Grpcgateway-User-Agent"
	// HeaderForwardedOrigin is the browser's Origin as the REST gateway
	// forwards it.
	HeaderForwardedOrigin = "Grpcgateway-Origin"
)

// Info is what is known of the client.
type Info struct {
	UserAgent string
	IP        netip.Addr // never stored
	Country   string     // from a trusted header, upper case; "" when not sent
	Origin    string     // the browser's Origin header; "" for apps and servers
}

// Headers is the read side of http.Header.
type Headers interface{ Get(string) string }

// Policy says whom to believe.
type Policy struct {
	TrustedProxies []netip.Prefix
	// CountryHeader names a header with the visitor's country set by a
	// trusted proxy (for example CF-IPCountry); empty for none.
	CountryHeader string
}

// Of returns the client of a request from peer (host:port).
func (p Policy) Of(h Headers, peer string) Info {
	info := Info{UserAgent: h.Get("User-Agent"), IP: PeerIP(peer), Origin: h.Get("Origin")}
	if !info.IP.IsValid() || !p.trusted(info.IP) {
		return info
	}
	if o := h.Get(HeaderForwardedOrigin); o != "" {
		info.Origin = o
	}
	if ua := h.Get(HeaderForwardedUA); ua != "" {
		info.UserAgent = ua
	}
	if xff := h.Get(HeaderForwardedFor); xff != "" {
		first, _, _ := strings.Cut(xff, ",")
		if a, err := netip.ParseAddr(strings.TrimSpace(first)); err == nil {
			info.IP = a.Unmap()
		}
	}
	if p.CountryHeader != "" {
		info.Country = strings.ToUpper(strings.TrimSpace(h.Get(p.CountryHeader)))
	}
	return info
}

func (p Policy) trusted(ip netip.Addr) bool {
	for _, pfx := range p.TrustedProxies {
		if pfx.Contains(ip) {
			return true
		}
	}
	return false
}

// PeerIP parses the address of a host:port (or bare host).
func PeerIP(addr string) netip.Addr {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}
