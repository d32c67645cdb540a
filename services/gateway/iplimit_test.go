package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/sextant-analytics/sextant/pkg/clientinfo"
)

// TestLimitIPs: each client address has its own bucket of requests; one
// over it is answered 429 with Retry-After; a forwarded address counts
// only from a trusted proxy (an untrusted X-Forwarded-For escapes nothing).
func TestLimitIPs(t *testing.T) {
	g, err := New(Config{IPRate: 0.5, IPBurst: 2, Client: clientinfo.Policy{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32")}}})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	served := 0
	h := g.LimitIPs(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { served++ }))
	do := func(peer, forwarded string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/v1/collect", strings.NewReader("{}"))
		r.RemoteAddr = peer
		if forwarded != "" {
			r.Header.Set("X-Forwarded-For", forwarded)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for i, tc := range []struct {
		peer, forwarded string
		status          int
	}{
		{"192.0.2.1:1000", "", 200},
		{"192.0.2.1:1001", "", 200},
		{"192.0.2.1:1002", "", 429},             // its burst is spent
		{"192.0.2.1:1003", "198.51.100.9", 429}, // an untrusted peer's X-Forwarded-For is ignored
		{"192.0.2.2:1000", "", 200},             // another address has its own bucket
		{"10.0.0.1:1000", "198.51.100.7", 200},  // behind a trusted proxy: the forwarded address
		{"10.0.0.1:1001", "198.51.100.7", 200},  //
		{"10.0.0.1:1002", "198.51.100.7", 429},  //
		{"10.0.0.1:1003", "198.51.100.8", 200},  // another visitor behind the same proxy
	} {
		w := do(tc.peer, tc.forwarded)
		if w.Code != tc.status {
			t.Fatalf("request %d from %s (%q): %d %s, want %d", i, tc.peer, tc.forwarded, w.Code, w.Body, tc.status)
		}
		if w.Code != 429 {
			continue
		}
		var out struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.Code != 8 || !strings.Contains(out.Message, "rate limit") {
			t.Fatalf("request %d: body %s (%v)", i, w.Body, err)
		}
		if ra := w.Header().Get("Retry-After"); ra != "2" {
			t.Fatalf("request %d: Retry-After %q, want 2", i, ra)
		}
	}
	if served != 6 {
		t.Fatalf("%d requests served, want 6", served)
	}
}
