package property_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sextant-analytics/sextant/pkg/apierror"
	"github.com/sextant-analytics/sextant/pkg/pebblestore"
	"github.com/sextant-analytics/sextant/pkg/property"
)

func open(t *testing.T, dir string) *pebblestore.Store {
	t.Helper()
	st, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func mustCreate(t *testing.T, reg *property.Registry, name string) (property.Property, property.Keys) {
	t.Helper()
	p, keys, err := reg.Create(context.Background(), property.Property{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return p, keys
}

func TestRegistry(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := open(t, dir)
	reg := property.NewRegistry(st, property.Options{})
	p, keys, err := reg.Create(ctx, property.Property{Name: " Shop ", TimeZone: "Europe/Paris", AllowedOrigins: []string{"https://Shop.example/"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.ID) != 10 || p.Name != "Shop" || p.TimeZone != "Europe/Paris" || p.Location().String() != "Europe/Paris" ||
		len(p.AllowedOrigins) != 1 || p.AllowedOrigins[0] != "https://shop.example" {
		t.Fatalf("property %+v", p)
	}
	// ≥ 128 bits of randomness: 24 bytes, base64url.
	for _, k := range []string{keys.WriteKey, keys.ReadKey} {
		if len(k) != 4+32 {
			t.Fatalf("key %q has %d chars", k, len(k))
		}
	}
	// Keys are stored only as hashes.
	_ = st.Scan(ctx, nil, func(k, v []byte) error {
		for _, key := range []string{keys.WriteKey, keys.ReadKey} {
			if bytes.Contains(k, []byte(key)) || bytes.Contains(v, []byte(key)) || bytes.Contains(v, []byte(key[4:])) {
				t.Fatalf("plaintext key stored under %q", k)
			}
		}
		return nil
	})
	st.Close()

	st = open(t, dir)
	defer st.Close()
	reg = property.NewRegistry(st, property.Options{})
	for _, tc := range []struct {
		name  string
		key   string
		scope property.Scope
		kind  apierror.Kind
	}{
		{"write key", keys.WriteKey, property.Write, -1},
		{"read key", keys.ReadKey, property.Read, -1},
		{"unknown key", "sxw_" + strings.Repeat("A", 32), "", apierror.Unauthenticated},
		{"foreign format", "Bearer-ish", "", apierror.Unauthenticated},
		{"too long", "sxw_" + strings.Repeat("A", 200), "", apierror.Unauthenticated},
		{"empty", "", "", apierror.Unauthenticated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pr, err := reg.Authenticate(ctx, tc.key)
			if tc.kind >= 0 {
				if apierror.KindOf(err) != tc.kind {
					t.Fatalf("err %v, want kind %d", err, tc.kind)
				}
				return
			}
			if err != nil || pr.PropertyID != p.ID || pr.Scope != tc.scope {
				t.Fatalf("principal %+v err %v", pr, err)
			}
		})
	}
	got, err := reg.Get(ctx, p.ID)
	if err != nil || got.Name != "Shop" {
		t.Fatalf("get %+v %v", got, err)
	}
	for _, id := range []string{"404", "", "../x", "1234567890"} {
		if _, err := reg.Get(ctx, id); apierror.KindOf(err) != apierror.NotFound {
			t.Fatalf("missing property %q: %v", id, err)
		}
	}
	for _, bad := range []struct {
		p     property.Property
		field string
	}{
		{property.Property{Name: ""}, "displayName"},
		{property.Property{Name: strings.Repeat("x", 201)}, "displayName"},
		{property.Property{Name: "x", TimeZone: "Mars/Olympus"}, "timeZone"},
		{property.Property{Name: "x", TimeZone: "Local"}, "timeZone"},
		{property.Property{Name: "x", AllowedOrigins: []string{"https://ok.example", "shop.example"}}, "allowedOrigins[1]"},
		{property.Property{Name: "x", AllowedOrigins: []string{"https://shop.example/path"}}, "allowedOrigins[0]"},
		{property.Property{Name: "x", AllowedOrigins: []string{"ftp://shop.example"}}, "allowedOrigins[0]"},
	} {
		_, _, err := reg.Create(ctx, bad.p)
		var e *apierror.Error
		if apierror.KindOf(err) != apierror.InvalidArgument || !asError(err, &e) || len(e.Violations) != 1 || e.Violations[0].Field != bad.field {
			t.Fatalf("create %+v: %v, want InvalidArgument on %s", bad.p, err, bad.field)
		}
	}
	list, next, err := reg.List(ctx, 0, "")
	if err != nil || len(list) != 1 || next != "" {
		t.Fatalf("list %v %q %v", list, next, err)
	}
	if any, err := reg.Any(ctx); err != nil || !any {
		t.Fatalf("Any: %v %v", any, err)
	}
}

func asError(err error, e **apierror.Error) bool {
	x, ok := err.(*apierror.Error)
	*e = x
	return ok
}

// TestListPages pages through properties spread over the shards: each
// once, whatever the page size.
func TestListPages(t *testing.T) {
	ctx := context.Background()
	st := open(t, t.TempDir())
	defer st.Close()
	reg := property.NewRegistry(st, property.Options{})
	if any, err := reg.Any(ctx); err != nil || any {
		t.Fatalf("empty registry: Any %v %v", any, err)
	}
	const n = 120
	want := map[string]bool{}
	for i := range n {
		p, _ := mustCreate(t, reg, fmt.Sprint("p", i))
		want[p.ID] = true
	}
	for _, size := range []int{1, 7, 119, 120, 1000} {
		seen := map[string]bool{}
		token, pages := "", 0
		for {
			page, next, err := reg.List(ctx, size, token)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			if len(page) > size {
				t.Fatalf("page of %d, size %d", len(page), size)
			}
			for _, p := range page {
				if seen[p.ID] || !want[p.ID] {
					t.Fatalf("size %d: %s listed twice or unknown", size, p.ID)
				}
				seen[p.ID] = true
			}
			if token = next; token == "" {
				break
			}
		}
		if len(seen) != n {
			t.Fatalf("size %d: %d listed in %d pages, want %d", size, len(seen), pages, n)
		}
	}
	for _, bad := range []string{"x", "Zm9v", "MDAv"[:3]} {
		if _, _, err := reg.List(ctx, 10, bad); apierror.KindOf(err) != apierror.InvalidArgument {
			t.Fatalf("token %q: %v", bad, err)
		}
	}
}

func TestKeys(t *testing.T) {
	ctx := context.Background()
	st := open(t, t.TempDir())
	defer st.Close()
	reg := property.NewRegistry(st, property.Options{})
	p, keys := mustCreate(t, reg, "Shop")
	other, otherKeys := mustCreate(t, reg, "Other")

	read2, secret2, err := reg.CreateKey(ctx, p.ID, property.Read)
	if err != nil || read2.Scope != property.Read || read2.ID != property.KeyID(secret2) || !strings.HasPrefix(secret2, "sxr_") {
		t.Fatalf("CreateKey %+v %q %v", read2, secret2, err)
	}
	if _, _, err := reg.CreateKey(ctx, p.ID, property.Admin); apierror.KindOf(err) != apierror.InvalidArgument {
		t.Fatalf("admin scope: %v", err)
	}
	list, err := reg.ListKeys(ctx, p.ID, false)
	if err != nil || len(list) != 3 || list[0].Scope != property.Write || list[0].ID != property.KeyID(keys.WriteKey) {
		t.Fatalf("ListKeys %+v %v", list, err)
	}
	if !strings.HasPrefix(list[0].Hint, "sxw_") || !strings.HasSuffix(list[0].Hint, keys.WriteKey[len(keys.WriteKey)-4:]) {
		t.Fatalf("hint %q", list[0].Hint)
	}

	// Rotation with a grace period: both keys work until it ends.
	writeID := property.KeyID(keys.WriteKey)
	nk, nsecret, old, err := reg.RotateKey(ctx, p.ID, writeID, time.Hour)
	if err != nil || nk.Scope != property.Write || old.ExpiresAt.IsZero() || time.Until(old.ExpiresAt) < 59*time.Minute {
		t.Fatalf("rotate: %+v %+v %v", nk, old, err)
	}
	for _, s := range []string{keys.WriteKey, nsecret} {
		if pr, err := reg.Authenticate(ctx, s); err != nil || pr.PropertyID != p.ID || pr.Scope != property.Write {
			t.Fatalf("during the grace period %s…: %+v %v", s[:6], pr, err)
		}
	}
	// Rotation without one: the old key stops at once.
	_, nsecret2, _, err := reg.RotateKey(ctx, p.ID, nk.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Authenticate(ctx, nsecret); apierror.KindOf(err) != apierror.Unauthenticated || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("rotated without grace: %v", err)
	}
	if _, err := reg.Authenticate(ctx, nsecret2); err != nil {
		t.Fatal(err)
	}
	// Revocation.
	k, err := reg.RevokeKey(ctx, p.ID, property.KeyID(keys.ReadKey))
	if err != nil || !k.Revoked {
		t.Fatalf("revoke %+v %v", k, err)
	}
	if _, err := reg.Authenticate(ctx, keys.ReadKey); apierror.KindOf(err) != apierror.Unauthenticated {
		t.Fatalf("revoked key: %v", err)
	}
	if _, err := reg.Authenticate(ctx, secret2); err != nil {
		t.Fatalf("the other read key: %v", err)
	}
	active, _ := reg.ListKeys(ctx, p.ID, false)
	all, _ := reg.ListKeys(ctx, p.ID, true)
	if len(active) != 3 || len(all) != 5 {
		t.Fatalf("%d active keys (want 3: the old write key in its grace, the newest, the second read key), %d in all (want 5)", len(active), len(all))
	}

	for _, tc := range []struct {
		name string
		err  error
		kind apierror.Kind
	}{
		{"rotate a revoked key", second(reg.RotateKey(ctx, p.ID, property.KeyID(keys.ReadKey), 0)), apierror.FailedPrecondition},
		{"grace too long", second(reg.RotateKey(ctx, p.ID, read2.ID, 31*24*time.Hour)), apierror.InvalidArgument},
		{"negative grace", second(reg.RotateKey(ctx, p.ID, read2.ID, -time.Second)), apierror.InvalidArgument},
		{"unknown key id", errOf(reg.RevokeKey(ctx, p.ID, "0123456789abcdef")), apierror.NotFound},
		{"malformed key id", errOf(reg.RevokeKey(ctx, p.ID, "../../x")), apierror.NotFound},
		{"another property's key", errOf(reg.RevokeKey(ctx, p.ID, property.KeyID(otherKeys.WriteKey))), apierror.NotFound},
		{"unknown property", errOf(reg.ListKeys(ctx, "1000000000", false)), apierror.NotFound},
		{"a key for an unknown property", keyErr(reg.CreateKey(ctx, "1000000000", property.Write)), apierror.NotFound},
	} {
		if apierror.KindOf(tc.err) != tc.kind {
			t.Errorf("%s: %v, want kind %d", tc.name, tc.err, tc.kind)
		}
	}
	if _, err := reg.Authenticate(ctx, otherKeys.WriteKey); err != nil {
		t.Fatalf("the other property's key: %v", err)
	}

	// Deleting a property revokes its keys.
	if err := reg.Delete(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{keys.WriteKey, nsecret2, secret2} {
		if _, err := reg.Authenticate(ctx, s); apierror.KindOf(err) != apierror.Unauthenticated {
			t.Fatalf("key of a deleted property: %v", err)
		}
	}
	if _, err := reg.Get(ctx, p.ID); apierror.KindOf(err) != apierror.NotFound {
		t.Fatalf("deleted property: %v", err)
	}
	if err := reg.Delete(ctx, p.ID); apierror.KindOf(err) != apierror.NotFound {
		t.Fatalf("deleted twice: %v", err)
	}
	if got, err := reg.Get(ctx, other.ID); err != nil || got.Name != "Other" {
		t.Fatalf("the other property: %+v %v", got, err)
	}
}

func second[A, B, C any](_ A, _ B, _ C, err error) error { return err }
func errOf[A any](_ A, err error) error                  { return err }

func TestUpdate(t *testing.T) {
	ctx := context.Background()
	st := open(t, t.TempDir())
	defer st.Close()
	reg := property.NewRegistry(st, property.Options{})
	p, _ := mustCreate(t, reg, "Shop")
	name, tz := "Shop 2", "America/New_York"
	origins := []string{"https://a.example", "http://localhost:3000"}
	got, err := reg.Update(ctx, p.ID, property.Patch{Name: &name, TimeZone: &tz, AllowedOrigins: &origins})
	if err != nil || got.Name != name || got.TimeZone != tz || len(got.AllowedOrigins) != 2 || got.CreatedAt != p.CreatedAt {
		t.Fatalf("update %+v %v", got, err)
	}
	for origin, want := range map[string]bool{"": true, "https://a.example": true, "http://localhost:3000": true, "https://b.example": false} {
		if ok, err := reg.OriginAllowed(ctx, p.ID, origin); err != nil || ok != want {
			t.Errorf("origin %q: %v %v, want %v", origin, ok, err, want)
		}
	}
	// Only what the patch names changes.
	name = "Shop 3"
	got, err = reg.Update(ctx, p.ID, property.Patch{Name: &name})
	if err != nil || got.Name != name || got.TimeZone != tz || len(got.AllowedOrigins) != 2 {
		t.Fatalf("partial update %+v %v", got, err)
	}
	bad := "Nowhere/Else"
	if _, err := reg.Update(ctx, p.ID, property.Patch{TimeZone: &bad}); apierror.KindOf(err) != apierror.InvalidArgument {
		t.Fatalf("bad time zone: %v", err)
	}
	if got, _ := reg.Get(ctx, p.ID); got.TimeZone != tz {
		t.Fatalf("a refused update changed the property: %+v", got)
	}
	if _, err := reg.Update(ctx, "1000000000", property.Patch{Name: &name}); apierror.KindOf(err) != apierror.NotFound {
		t.Fatalf("unknown property: %v", err)
	}
}

// TestWatch: two registries over one store are two processes sharing
// Cassandra. A key one revokes is refused by the other once it reads the
// change feed, and not before (its cache would keep it): the test fails
// without the feed.
func TestWatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := open(t, t.TempDir())
	defer st.Close()
	a := property.NewRegistry(st, property.Options{})
	b := property.NewRegistry(st, property.Options{})
	p, keys := mustCreate(t, a, "Shop")
	if _, err := b.Authenticate(ctx, keys.WriteKey); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RevokeKey(ctx, p.ID, property.KeyID(keys.WriteKey)); err != nil {
		t.Fatal(err)
	}
	tz := "Asia/Tokyo"
	if _, err := a.Update(ctx, p.ID, property.Patch{TimeZone: &tz}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Authenticate(ctx, keys.WriteKey); err != nil {
		t.Fatalf("before b reads the feed its cache answers (else this test proves nothing): %v", err)
	}
	go b.Watch(ctx, 20*time.Millisecond)
	start := time.Now()
	for {
		_, err := b.Authenticate(ctx, keys.WriteKey)
		got, gerr := b.Get(ctx, p.ID)
		if apierror.KindOf(err) == apierror.Unauthenticated && gerr == nil && got.TimeZone == tz {
			break
		}
		if time.Since(start) > time.Second {
			t.Fatalf("after %v b still accepts the revoked key (%v) or has the old time zone (%q)", time.Since(start), err, got.TimeZone)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if b.Synced().IsZero() {
		t.Fatal("Synced is zero after a poll")
	}
}

func TestCacheBounded(t *testing.T) {
	ctx := context.Background()
	st := open(t, t.TempDir())
	defer st.Close()
	reg := property.NewRegistry(st, property.Options{CacheEntries: 8})
	var all []property.Keys
	for i := range 30 {
		_, k := mustCreate(t, reg, fmt.Sprint("p", i))
		all = append(all, k)
	}
	for round := range 2 {
		for _, k := range all {
			if pr, err := reg.Authenticate(ctx, k.ReadKey); err != nil || pr.PropertyID != k.PropertyID {
				t.Fatalf("round %d: %+v %v", round, pr, err)
			}
			if _, err := reg.Get(ctx, k.PropertyID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if keys, props := reg.CacheStats(); keys > 8 || props > 8 || keys == 0 || props == 0 {
		t.Fatalf("cache holds %d keys and %d properties, bound 8", keys, props)
	}
	if b := reg.CacheBytes(); b <= 0 || b > 16*1024 {
		t.Fatalf("a cache of at most 16 entries estimated at %d bytes", b)
	}
}

// TestUpgrade converts a registry of the first layout, keys and all.
func TestUpgrade(t *testing.T) {
	ctx := context.Background()
	st := open(t, t.TempDir())
	defer st.Close()
	const id, secret = "1234567890", "sxw_" + "legacylegacylegacylegacylegacyle"
	h := sha256.Sum256([]byte(secret))
	old, _ := json.Marshal(property.Property{ID: id, Name: "Old", TimeZone: "UTC", CreatedAt: time.Unix(1e9, 0).UTC()})
	pr, _ := json.Marshal(property.Principal{PropertyID: id, Scope: property.Write})
	for k, v := range map[string][]byte{"property/" + id: old, "apikey/" + hex.EncodeToString(h[:]): pr} {
		if err := st.Put(ctx, []byte(k), v); err != nil {
			t.Fatal(err)
		}
	}
	reg := property.NewRegistry(st, property.Options{})
	if _, err := reg.Authenticate(ctx, secret); apierror.KindOf(err) != apierror.Unauthenticated {
		t.Fatalf("before the upgrade the old layout is not read: %v", err)
	}
	n, err := reg.Upgrade(ctx)
	if err != nil || n != 2 {
		t.Fatalf("upgrade: %d %v", n, err)
	}
	if got, err := reg.Authenticate(ctx, secret); err != nil || got.PropertyID != id || got.Scope != property.Write {
		t.Fatalf("after: %+v %v", got, err)
	}
	if p, err := reg.Get(ctx, id); err != nil || p.Name != "Old" {
		t.Fatalf("after: %+v %v", p, err)
	}
	if keys, err := reg.ListKeys(ctx, id, false); err != nil || len(keys) != 1 {
		t.Fatalf("keys after: %+v %v", keys, err)
	}
	if n, err := reg.Upgrade(ctx); err != nil || n != 0 {
		t.Fatalf("second upgrade: %d %v", n, err)
	}
}

func keyErr(_ property.Key, _ string, err error) error { return err }

func TestMeasurementID(t *testing.T) {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	for _, id := range []string{"1000000000", "9999999999", "42", "0", "1099511627775"} {
		mid := property.MeasurementIDOf(id)
		if len(mid) != 12 || !strings.HasPrefix(mid, "G-") {
			t.Fatalf("property.MeasurementIDOf(%s) = %q", id, mid)
		}
		if got, ok := property.PropertyOfMeasurementID(mid); !ok || got != id {
			t.Errorf("property.PropertyOfMeasurementID(%s) = %q, %v; want %s", mid, got, ok, id)
		}
		// A mistyped character is caught by the check: every other letter
		// at every place, at most one in a hundred accepted (as another
		// property).
		accepted, tries := 0, 0
		for i := 2; i < 12; i++ {
			for d := 1; d < 32; d++ {
				b := []byte(mid)
				b[i] = alphabet[(strings.IndexByte(alphabet, b[i])+d)%32]
				tries++
				if got, ok := property.PropertyOfMeasurementID(string(b)); ok {
					accepted++
					if got == id {
						t.Errorf("%s decodes to the same property as %s", b, mid)
					}
				}
			}
		}
		if accepted*100 > tries {
			t.Errorf("%d of %d mistyped ids of %s accepted", accepted, tries, mid)
		}
	}
	for _, id := range []string{"", "abc", "-1", "007", "1099511627776"} {
		if mid := property.MeasurementIDOf(id); mid != "" {
			t.Errorf("property.MeasurementIDOf(%q) = %q, want none", id, mid)
		}
	}
	for _, mid := range []string{"", "G-", "UA-12345-1", "G-AAAAAAAAA", "g-AAAAAAAAAA", "G-AAAAAAAAA0"} {
		if _, ok := property.PropertyOfMeasurementID(mid); ok {
			t.Errorf("property.PropertyOfMeasurementID(%q) accepted", mid)
		}
	}
}

// Processes that create the assertion secrets at once each keep theirs,
// and every one is in what any of them reads afterwards: a verifier that
// reads again knows every signer's secret.
func TestAssertionSecretsRace(t *testing.T) {
	ctx := context.Background()
	st := open(t, t.TempDir())
	defer st.Close()
	regs := []*property.Registry{property.NewRegistry(st, property.Options{}), property.NewRegistry(st, property.Options{}), property.NewRegistry(st, property.Options{})}
	firsts := make([][]byte, len(regs))
	var wg sync.WaitGroup
	for i, r := range regs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := r.AssertionSecrets(ctx)
			if err != nil || len(s) == 0 {
				t.Errorf("AssertionSecrets: %v, %v", s, err)
				return
			}
			firsts[i] = s[0]
		}()
	}
	wg.Wait()
	all, err := regs[0].AssertionSecrets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range firsts {
		if !slices.ContainsFunc(all, func(s []byte) bool { return bytes.Equal(s, f) }) {
			t.Errorf("process %d signs with a secret the others cannot read", i)
		}
	}
	again, _ := regs[1].AssertionSecrets(ctx)
	if len(again) != len(all) || len(all) > len(regs) {
		t.Errorf("%d secrets, then %d: reading must not create more", len(all), len(again))
	}
}

// TestUpdateReporting: currency, rates, key events and custom definitions
// are set, normalised, and refused field by field.
func TestUpdateReporting(t *testing.T) {
	ctx := context.Background()
	st := open(t, t.TempDir())
	defer st.Close()
	reg := property.NewRegistry(st, property.Options{})
	p, _ := mustCreate(t, reg, "Shop")
	cur, rates := "eur", map[string]float64{"usd": 0.92, "GBP": 1.17}
	keys, dims := []string{"purchase", "sign_up", "purchase"}, []string{"plan"}
	got, err := reg.Update(ctx, p.ID, property.Patch{CurrencyCode: &cur, CurrencyRates: &rates, KeyEvents: &keys, CustomEventDimensions: &dims})
	if err != nil {
		t.Fatal(err)
	}
	if got.CurrencyCode != "EUR" || got.CurrencyRates["USD"] != 0.92 || got.CurrencyRates["GBP"] != 1.17 || len(got.CurrencyRates) != 2 ||
		!slices.Equal(got.KeyEvents, []string{"purchase", "sign_up"}) || !slices.Equal(got.CustomEventDimensions, dims) {
		t.Fatalf("update: %+v", got)
	}
	if again, _ := reg.Get(ctx, p.ID); !slices.Equal(again.KeyEvents, got.KeyEvents) || again.CurrencyRates["USD"] != 0.92 {
		t.Fatalf("stored: %+v", again)
	}
	for _, c := range []struct {
		name  string
		patch property.Patch
		field string
	}{
		{"currency", property.Patch{CurrencyCode: ptr("EURO")}, "currencyCode"},
		{"rate", property.Patch{CurrencyRates: &map[string]float64{"USD": -1}}, `currencyRates["USD"]`},
		{"rate code", property.Patch{CurrencyRates: &map[string]float64{"dollar": 1}}, `currencyRates["dollar"]`},
		{"key event", property.Patch{KeyEvents: &[]string{"ok", "9lives"}}, "keyEvents[1]"},
		{"user dimension", property.Patch{CustomUserDimensions: &[]string{"a_name_longer_than_24_chars"}}, "customUserDimensions[0]"},
		{"metrics", property.Patch{CustomEventMetrics: &[]string{"a-b"}}, "customEventMetrics[0]"},
	} {
		_, err := reg.Update(ctx, p.ID, c.patch)
		var e *apierror.Error
		if !errors.As(err, &e) || len(e.Violations) != 1 || e.Violations[0].Field != c.field {
			t.Errorf("%s: %v, want a violation of %s", c.name, err, c.field)
		}
	}
	if again, _ := reg.Get(ctx, p.ID); again.CurrencyCode != "EUR" || len(again.KeyEvents) != 2 {
		t.Fatalf("a refused update changed the property: %+v", again)
	}
}

func ptr[T any](v T) *T { return &v }
