// Package property is the registry of properties (sites and apps) and their
// API keys. Keys are random (192 bits), shown once, and stored only as
// SHA-256 hashes.
package property

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/sextant-analytics/sextant/pkg/apierror"
	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

// KV is the small metadata store the registry lives in (the embedded view
// store's meta space; a table in ScyllaDB). Get returns viewstore.ErrNotFound
// for a missing key.
type KV interface {
	Get(ctx context.Context, key []byte) ([]byte, error)
	Put(ctx context.Context, key, value []byte) error
	Scan(ctx context.Context, prefix []byte, fn func(key, value []byte) error) error
}

// Property is a site or app whose hits Sextant collects.
type Property struct {
	ID        string    `json:"propertyId"`
	Name      string    `json:"name"`
	TimeZone  string    `json:"timeZone"`
	CreatedAt time.Time `json:"createdAt"`
	// AllowedOrigins lists browser origins allowed to send hits (CORS);
	// empty allows any.
	AllowedOrigins []string `json:"allowedOrigins,omitempty"`
}

// Location returns the property's time zone (UTC when unset or unknown).
func (p Property) Location() *time.Location {
	if loc, err := time.LoadLocation(p.TimeZone); err == nil && p.TimeZone != "" {
		return loc
	}
	return time.UTC
}

// Keys are a new property's credentials, shown once.
type Keys struct {
	PropertyID string `json:"propertyId"`
	WriteKey   string `json:"writeKey"`
	ReadKey    string `json:"readKey"`
}

// Scope is what a key authorises.
type Scope string

const (
	Write Scope = "write"
	Read  Scope = "read"
	// Admin keys manage projections (replay, activate, rollback); they
	// belong to no property.
	Admin Scope = "admin"
)

// Principal is an authenticated key.
type Principal struct {
	PropertyID string `json:"propertyId"`
	Scope      Scope  `json:"scope"`
}

const (
	writePrefix = "sxw_"
	readPrefix  = "sxr_"
	adminPrefix = "sxa_"
)

// Registry stores properties and keys in a KV.
type Registry struct {
	kv KV

	mu    sync.RWMutex
	keys  map[string]Principal // key hash -> principal
	props map[string]Property
}

// NewRegistry returns a registry over kv.
func NewRegistry(kv KV) *Registry {
	return &Registry{kv: kv, keys: make(map[string]Principal), props: make(map[string]Property)}
}

func propKey(id string) []byte  { return []byte("property/" + id) }
func keyKey(hash string) []byte { return []byte("apikey/" + hash) }

// Create registers a property and returns its keys.
func (r *Registry) Create(ctx context.Context, name, timeZone string) (Property, Keys, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return Property{}, Keys{}, apierror.Invalid("invalid property", apierror.Violation{Field: "name", Description: "required", Code: apierror.ValueRequired})
	}
	if timeZone == "" {
		timeZone = "UTC"
	}
	if _, err := time.LoadLocation(timeZone); err != nil {
		return Property{}, Keys{}, apierror.Invalid("invalid property", apierror.Violation{Field: "timeZone", Description: "unknown IANA time zone", Code: apierror.ValueInvalid})
	}
	var id string
	for {
		n, err := rand.Int(rand.Reader, big.NewInt(9_000_000_000))
		if err != nil {
			return Property{}, Keys{}, err
		}
		id = fmt.Sprint(1_000_000_000 + n.Int64())
		if _, err := r.kv.Get(ctx, propKey(id)); errors.Is(err, viewstore.ErrNotFound) {
			break
		} else if err != nil {
			return Property{}, Keys{}, fmt.Errorf("property: %w", err)
		}
	}
	p := Property{ID: id, Name: name, TimeZone: timeZone, CreatedAt: time.Now().UTC().Truncate(time.Second)}
	keys := Keys{PropertyID: id, WriteKey: newKey(writePrefix), ReadKey: newKey(readPrefix)}
	for _, k := range []struct {
		key   string
		scope Scope
	}{{keys.WriteKey, Write}, {keys.ReadKey, Read}} {
		b, _ := json.Marshal(Principal{PropertyID: id, Scope: k.scope})
		if err := r.kv.Put(ctx, keyKey(hashKey(k.key)), b); err != nil {
			return Property{}, Keys{}, fmt.Errorf("property: store key: %w", err)
		}
	}
	b, _ := json.Marshal(p)
	if err := r.kv.Put(ctx, propKey(id), b); err != nil {
		return Property{}, Keys{}, fmt.Errorf("property: store: %w", err)
	}
	return p, keys, nil
}

func newKey(prefix string) string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

func hashKey(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])
}

// CreateAdminKey creates a new admin key and returns it (shown once).
func (r *Registry) CreateAdminKey(ctx context.Context) (string, error) {
	key := newKey(adminPrefix)
	b, _ := json.Marshal(Principal{Scope: Admin})
	if err := r.kv.Put(ctx, keyKey(hashKey(key)), b); err != nil {
		return "", fmt.Errorf("property: store admin key: %w", err)
	}
	if err := r.kv.Put(ctx, []byte("adminkey/"+hashKey(key)), []byte{1}); err != nil {
		return "", fmt.Errorf("property: store admin key: %w", err)
	}
	return key, nil
}

// HasAdminKey reports whether any admin key exists.
func (r *Registry) HasAdminKey(ctx context.Context) (bool, error) {
	found := false
	err := r.kv.Scan(ctx, []byte("adminkey/"), func(_, _ []byte) error {
		found = true
		return errStop
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return found, err
}

var errStop = errors.New("stop")

// Get returns a property.
func (r *Registry) Get(ctx context.Context, id string) (Property, error) {
	r.mu.RLock()
	p, ok := r.props[id]
	r.mu.RUnlock()
	if ok {
		return p, nil
	}
	b, err := r.kv.Get(ctx, propKey(id))
	if errors.Is(err, viewstore.ErrNotFound) {
		return Property{}, apierror.New(apierror.NotFound, "property %q not found", id)
	}
	if err != nil {
		return Property{}, fmt.Errorf("property: %w", err)
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return Property{}, fmt.Errorf("property: decode %s: %w", id, err)
	}
	r.mu.Lock()
	r.props[id] = p
	r.mu.Unlock()
	return p, nil
}

// SetAllowedOrigins replaces the browser origins allowed to send hits to a
// property (scheme://host[:port]; empty allows any).
func (r *Registry) SetAllowedOrigins(ctx context.Context, id string, origins []string) (Property, error) {
	p, err := r.Get(ctx, id)
	if err != nil {
		return p, err
	}
	for i, o := range origins {
		o = strings.TrimRight(strings.TrimSpace(o), "/")
		if !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
			return p, apierror.Invalid("invalid origin", apierror.Violation{Field: fmt.Sprintf("allowedOrigins[%d]", i), Description: "an origin is scheme://host[:port]", Code: apierror.ValueInvalid})
		}
		origins[i] = o
	}
	p.AllowedOrigins = origins
	b, _ := json.Marshal(p)
	if err := r.kv.Put(ctx, propKey(id), b); err != nil {
		return p, fmt.Errorf("property: store: %w", err)
	}
	r.mu.Lock()
	r.props[id] = p
	r.mu.Unlock()
	return p, nil
}

// OriginAllowed reports whether a browser on origin may send hits to the
// property. Requests without an origin (apps, servers) are not browsers.
func (r *Registry) OriginAllowed(ctx context.Context, id, origin string) (bool, error) {
	if origin == "" {
		return true, nil
	}
	p, err := r.Get(ctx, id)
	if err != nil {
		return false, err
	}
	if len(p.AllowedOrigins) == 0 {
		return true, nil
	}
	for _, o := range p.AllowedOrigins {
		if strings.EqualFold(o, origin) {
			return true, nil
		}
	}
	return false, nil
}

// List returns every property.
func (r *Registry) List(ctx context.Context) ([]Property, error) {
	var out []Property
	err := r.kv.Scan(ctx, []byte("property/"), func(_, v []byte) error {
		var p Property
		if err := json.Unmarshal(v, &p); err != nil {
			return err
		}
		out = append(out, p)
		return nil
	})
	return out, err
}

// Authenticate resolves a key. Unknown and malformed keys are
// Unauthenticated.
func (r *Registry) Authenticate(ctx context.Context, key string) (Principal, error) {
	if !strings.HasPrefix(key, writePrefix) && !strings.HasPrefix(key, readPrefix) && !strings.HasPrefix(key, adminPrefix) {
		return Principal{}, apierror.New(apierror.Unauthenticated, "unknown API key")
	}
	h := hashKey(key)
	r.mu.RLock()
	pr, ok := r.keys[h]
	r.mu.RUnlock()
	if ok {
		return pr, nil
	}
	b, err := r.kv.Get(ctx, keyKey(h))
	if errors.Is(err, viewstore.ErrNotFound) {
		return Principal{}, apierror.New(apierror.Unauthenticated, "unknown API key")
	}
	if err != nil {
		return Principal{}, fmt.Errorf("property: look up key: %w", err)
	}
	if err := json.Unmarshal(b, &pr); err != nil {
		return Principal{}, fmt.Errorf("property: decode key: %w", err)
	}
	r.mu.Lock()
	r.keys[h] = pr
	r.mu.Unlock()
	return pr, nil
}
