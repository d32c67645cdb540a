package property_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/sextant-analytics/sextant/pkg/apierror"
	"github.com/sextant-analytics/sextant/pkg/pebblestore"
	"github.com/sextant-analytics/sextant/pkg/property"
)

func TestRegistry(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reg := property.NewRegistry(st)
	p, keys, err := reg.Create(ctx, "Shop", "Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.ID) != 10 || p.TimeZone != "Europe/Paris" || p.Location().String() != "Europe/Paris" {
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

	st, err = pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	reg = property.NewRegistry(st)
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
	if _, err := reg.Get(ctx, "404"); apierror.KindOf(err) != apierror.NotFound {
		t.Fatalf("missing property: %v", err)
	}
	for _, bad := range []struct{ name, tz string }{{"", "UTC"}, {"x", "Mars/Olympus"}} {
		if _, _, err := reg.Create(ctx, bad.name, bad.tz); apierror.KindOf(err) != apierror.InvalidArgument {
			t.Fatalf("create %q %q: %v", bad.name, bad.tz, err)
		}
	}
	list, err := reg.List(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("list %v %v", list, err)
	}
}
