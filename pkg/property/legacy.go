package property

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Upgrade moves a registry written before keys had ids and records had
// shards ("property/<id>", "apikey/<hash>") to the current layout. The
// registry is primary data (it is not derived from the event log), so it
// is converted rather than rebuilt. Idempotent: each record is written in
// its new place before the old one is deleted, and a rerun converts what
// is left.
func (r *Registry) Upgrade(ctx context.Context) (int, error) {
	type old struct{ k, v []byte }
	var props, keys []old
	for _, s := range []struct {
		prefix string
		into   *[]old
	}{{"property/", &props}, {"apikey/", &keys}} {
		if err := r.kv.Scan(ctx, []byte(s.prefix), func(k, v []byte) error {
			*s.into = append(*s.into, old{k, v})
			return nil
		}); err != nil {
			return 0, fmt.Errorf("property: upgrade: %w", err)
		}
	}
	n := 0
	for _, o := range keys {
		var pr Principal
		if err := json.Unmarshal(o.v, &pr); err != nil {
			return n, fmt.Errorf("property: upgrade key: %w", err)
		}
		h := string(o.k[len("apikey/"):])
		if len(h) != 64 {
			continue
		}
		k := Key{ID: keyIDOf(h), PropertyID: pr.PropertyID, Scope: pr.Scope, Hint: scopePrefix(pr.Scope) + "…", CreatedAt: time.Now().UTC().Truncate(time.Second)}
		if err := r.putKey(ctx, h, k); err != nil {
			return n, err
		}
		if pr.PropertyID != "" {
			if err := r.kv.Put(ctx, propKeyIndex(pr.PropertyID, k.ID), []byte(h)); err != nil {
				return n, fmt.Errorf("property: upgrade key: %w", err)
			}
		}
		if err := r.kv.Delete(ctx, o.k); err != nil {
			return n, fmt.Errorf("property: upgrade key: %w", err)
		}
		n++
	}
	for _, o := range props {
		var p Property
		if err := json.Unmarshal(o.v, &p); err != nil {
			return n, fmt.Errorf("property: upgrade property: %w", err)
		}
		if err := r.kv.Put(ctx, propKey(p.ID), o.v); err != nil {
			return n, fmt.Errorf("property: upgrade property: %w", err)
		}
		if err := r.kv.Delete(ctx, o.k); err != nil {
			return n, fmt.Errorf("property: upgrade property: %w", err)
		}
		n++
	}
	return n, nil
}
