package auth

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sextant-analytics/sextant/pkg/apierror"
	"github.com/sextant-analytics/sextant/pkg/property"
)

func TestAssertions(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	a := NewAssertions([]byte("0123456789abcdef0123456789abcdef"))
	write := property.Principal{PropertyID: "p.1/x", Scope: property.Write}
	good := a.Sign(write, now)
	other := NewAssertions([]byte("another secret of thirty-two b.."))
	tamper := func(f func([]string)) string {
		p := strings.SplitN(good, ".", 4)
		f(p)
		return strings.Join(p, ".")
	}
	tests := []struct {
		name string
		v    string
		at   time.Time
		by   *Assertions
		want bool
	}{
		{"good", good, now, a, true},
		{"good near its expiry", good, now.Add(assertionTTL), a, true},
		{"expired", good, now.Add(assertionTTL + time.Second), a, false},
		{"another secret", good, now, other, false},
		{"other property", tamper(func(p []string) { p[3] = "p.2/x" }), now, a, false},
		{"other scope", tamper(func(p []string) { p[2] = "read" }), now, a, false},
		{"admin scope", tamper(func(p []string) { p[2] = "admin" }), now, a, false},
		{"later expiry", tamper(func(p []string) { p[1] = "1800000100" }), now, a, false},
		{"expiry far ahead", a.Sign(write, now.Add(time.Hour)), now, a, false},
		{"short mac", tamper(func(p []string) { p[0] = p[0][:10] }), now, a, false},
		{"no property", tamper(func(p []string) { p[3] = "" }), now, a, false},
		{"empty", "", now, a, false},
		{"garbage", "a.b.c", now, a, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr, ok := tt.by.Verify(tt.v, tt.at)
			if ok != tt.want {
				t.Fatalf("Verify(%q) = %v, %v; want ok %v", tt.v, pr, ok, tt.want)
			}
			if ok && pr != write {
				t.Fatalf("Verify = %v, want %v", pr, write)
			}
		})
	}
	if v := a.Sign(property.Principal{PropertyID: "p", Scope: property.Admin}, now); v != "" {
		t.Errorf("an admin principal was signed: %q", v)
	}
	if v := NewAssertions(nil).Sign(write, now); v != "" {
		t.Errorf("signed without a secret: %q", v)
	}

	// Secrets created by other processes: any verifies, the first signs.
	b := NewAssertions([]byte("second secret, thirty-two bytes."), []byte("0123456789abcdef0123456789abcdef"))
	if _, ok := b.Verify(good, now); !ok {
		t.Error("an assertion of another of the secrets was refused")
	}
	if _, ok := a.Verify(b.Sign(write, now), now); ok {
		t.Error("an assertion of a secret a does not hold was accepted")
	}

	// A verifier that lacks the signer's secret reads them again, once a
	// second at most.
	stale := NewAssertions([]byte("a secret nobody signs with, 32 b"))
	reads := 0
	stale.Refresh = func() ([][]byte, error) {
		reads++
		return [][]byte{[]byte("0123456789abcdef0123456789abcdef")}, nil
	}
	if _, ok := stale.Verify(good, now); !ok || reads != 1 {
		t.Fatalf("the signer's secret was not learnt by reading again: %v after %d reads", ok, reads)
	}
	forged := NewAssertions([]byte("forged secret of thirty-two byte")).Sign(write, now)
	if _, ok := stale.Verify(forged, now.Add(500*time.Millisecond)); ok || reads != 1 {
		t.Fatalf("a forged assertion within the second: accepted %v after %d reads, want refused without reading", ok, reads)
	}
	if _, ok := stale.Verify(forged, now.Add(2*time.Second)); ok || reads != 2 {
		t.Fatalf("a forged assertion a second later: accepted %v after %d reads, want refused after reading again", ok, reads)
	}
}

type countingAuth struct {
	n  int
	pr map[string]property.Principal
}

func (c *countingAuth) Authenticate(_ context.Context, key string) (property.Principal, error) {
	c.n++
	if pr, ok := c.pr[key]; ok {
		return pr, nil
	}
	return property.Principal{}, apierror.New(apierror.Unauthenticated, "unknown API key")
}

func TestInterceptorTrustsAssertions(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	gw := NewAssertions(secret)
	keys := &countingAuth{pr: map[string]property.Principal{
		"sxw_good": {PropertyID: "p1", Scope: property.Write},
		"sxr_good": {PropertyID: "p1", Scope: property.Read},
	}}
	var counted []string
	i := NewInterceptor(keys, map[string][]property.Scope{"/collect": {property.Write}}).
		TrustAssertions(NewAssertions(secret)).Counted(func(by string) { counted = append(counted, by) })
	now := time.Now()
	tests := []struct {
		name      string
		auth      string
		assertion string
		wantPID   string // "" for an error
		lookups   int
	}{
		{"assertion, no key", "", gw.Sign(property.Principal{PropertyID: "p9", Scope: property.Write}, now), "p9", 0},
		{"assertion wins over its key", "Bearer sxw_good", gw.Sign(property.Principal{PropertyID: "p9", Scope: property.Write}, now), "p9", 0},
		{"key alone", "Bearer sxw_good", "", "p1", 1},
		{"forged assertion: the key decides", "Bearer sxw_good", NewAssertions([]byte("forged")).Sign(property.Principal{PropertyID: "p9", Scope: property.Write}, now), "p1", 1},
		{"forged assertion, no key", "", NewAssertions([]byte("forged")).Sign(property.Principal{PropertyID: "p9", Scope: property.Write}, now), "", 0},
		{"assertion of the wrong scope: the key decides", "Bearer sxr_good", gw.Sign(property.Principal{PropertyID: "p1", Scope: property.Read}, now), "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys.n, counted = 0, nil
			h := http.Header{}
			if tt.auth != "" {
				h.Set("Authorization", tt.auth)
			}
			if tt.assertion != "" {
				h.Set(HeaderPrincipal, tt.assertion)
			}
			ctx, err := i.Authenticate(context.Background(), "/collect", h)
			pr, _ := FromContext(ctx)
			switch {
			case tt.wantPID == "" && err == nil:
				t.Fatalf("authenticated as %v, want an error", pr)
			case tt.wantPID != "" && (err != nil || pr.PropertyID != tt.wantPID):
				t.Fatalf("got %v, %v; want property %s", pr, err, tt.wantPID)
			}
			if keys.n != tt.lookups {
				t.Errorf("%d key lookups, want %d", keys.n, tt.lookups)
			}
			want := "key"
			if tt.wantPID != "" && tt.lookups == 0 {
				want = "assertion"
			}
			if len(counted) != 1 || counted[0] != want {
				t.Errorf("counted %v, want [%s]", counted, want)
			}
		})
	}
}
