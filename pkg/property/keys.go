package property

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sextant-analytics/sextant/pkg/apierror"
	"github.com/sextant-analytics/sextant/pkg/metadata"
)

// Scope is what a key authorises.
type Scope string

const (
	Write Scope = "write"
	Read  Scope = "read"
	// Admin keys manage properties, keys and projections; they belong to
	// no property.
	Admin Scope = "admin"
	// Measurement keys are a property's Measurement Protocol API secrets:
	// they send hits to /mp/collect only (api_secret in the query string,
	// as GA4's MP takes it), never to the other APIs.
	Measurement Scope = "measurement"
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
	mpPrefix    = "sxm_"
)

// Key is an API key as stored: its secret only as a hash.
type Key struct {
	ID         string    `json:"id"`
	PropertyID string    `json:"propertyId,omitempty"`
	Scope      Scope     `json:"scope"`
	Hint       string    `json:"hint"`
	CreatedAt  time.Time `json:"createdAt"`
	// ExpiresAt, when set, is when the key stops being accepted.
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
	Revoked   bool      `json:"revoked,omitempty"`
}

// Usable reports whether the key is accepted at now.
func (k Key) Usable(now time.Time) bool {
	return !k.Revoked && (k.ExpiresAt.IsZero() || now.Before(k.ExpiresAt))
}

// KeyID names the key whose secret is secret.
func KeyID(secret string) string { return keyIDOf(hashKey(secret)) }

func keyIDOf(hash string) string { return hash[:16] }

func newKey(prefix string) string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

func hashKey(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])
}

func hintOf(secret string) string { return secret[:4] + "…" + secret[len(secret)-4:] }

// apiKey is where a key is found by its hash (the hash's own first byte
// is its shard); propKeyIndex lists a property's keys by id.
func apiKey(hash string) []byte { return []byte("apikey." + hash[:2] + "/" + hash) }

func propKeyIndex(propertyID, keyID string) []byte {
	return []byte("propkey." + shardOf(propertyID) + "/" + propertyID + "/" + keyID)
}

func propKeyPrefix(propertyID string) []byte {
	return []byte("propkey." + shardOf(propertyID) + "/" + propertyID + "/")
}

func scopeRank(s Scope) int {
	return map[Scope]int{Write: 0, Read: 1, Measurement: 2, Admin: 3}[s]
}

func scopePrefix(s Scope) string {
	switch s {
	case Write:
		return writePrefix
	case Read:
		return readPrefix
	case Admin:
		return adminPrefix
	case Measurement:
		return mpPrefix
	}
	return ""
}

// CreateKey creates a key of scope (Write, Read or Measurement) for an existing
// property and returns it with its secret, which is not stored.
func (r *Registry) CreateKey(ctx context.Context, propertyID string, scope Scope) (Key, string, error) {
	if _, err := r.fresh(ctx, propertyID); err != nil {
		return Key{}, "", err
	}
	return r.createKey(ctx, propertyID, scope)
}

func (r *Registry) createKey(ctx context.Context, propertyID string, scope Scope) (Key, string, error) {
	if scope != Write && scope != Read && scope != Measurement {
		return Key{}, "", apierror.Invalid("invalid key", apierror.Violation{Field: "scope", Description: "write, read or measurement", Code: apierror.ValueInvalid})
	}
	secret := newKey(scopePrefix(scope))
	h := hashKey(secret)
	k := Key{ID: keyIDOf(h), PropertyID: propertyID, Scope: scope, Hint: hintOf(secret), CreatedAt: time.Now().UTC().Truncate(time.Second)}
	if err := r.putKey(ctx, h, k); err != nil {
		return Key{}, "", err
	}
	if err := r.kv.Put(ctx, propKeyIndex(propertyID, k.ID), []byte(h)); err != nil {
		return Key{}, "", fmt.Errorf("property: store key index: %w", err)
	}
	return k, secret, nil
}

func (r *Registry) putKey(ctx context.Context, hash string, k Key) error {
	b, err := json.Marshal(k)
	if err != nil {
		return fmt.Errorf("property: encode key: %w", err)
	}
	if err := r.kv.Put(ctx, apiKey(hash), b); err != nil {
		return fmt.Errorf("property: store key: %w", err)
	}
	r.keys.drop(hash)
	return nil
}

// ListKeys lists a property's keys, the revoked and expired ones too when
// all is set.
func (r *Registry) ListKeys(ctx context.Context, propertyID string, all bool) ([]Key, error) {
	if _, err := r.fresh(ctx, propertyID); err != nil {
		return nil, err
	}
	var hashes []string
	if err := r.kv.Scan(ctx, propKeyPrefix(propertyID), func(_, v []byte) error {
		hashes = append(hashes, string(v))
		return nil
	}); err != nil {
		return nil, fmt.Errorf("property: list keys: %w", err)
	}
	now := time.Now()
	var out []Key
	for _, h := range hashes {
		k, err := r.loadKey(ctx, h)
		if errors.Is(err, metadata.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if all || k.Usable(now) {
			out = append(out, k)
		}
	}
	// Oldest first; of one age, write keys before read keys.
	slices.SortFunc(out, func(a, b Key) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(scopeRank(a.Scope), scopeRank(b.Scope)), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

func (r *Registry) loadKey(ctx context.Context, hash string) (Key, error) {
	b, err := r.kv.Get(ctx, apiKey(hash))
	if err != nil {
		return Key{}, fmt.Errorf("property: look up key: %w", err)
	}
	var k Key
	if err := json.Unmarshal(b, &k); err != nil {
		return Key{}, fmt.Errorf("property: decode key: %w", err)
	}
	return k, nil
}

// keyByID finds a property's key by its id.
func (r *Registry) keyByID(ctx context.Context, propertyID, keyID string) (Key, string, error) {
	notFound := apierror.New(apierror.NotFound, "key %q of property %q not found", keyID, propertyID)
	if len(keyID) != 16 || strings.Trim(keyID, "0123456789abcdef") != "" {
		return Key{}, "", notFound
	}
	if _, err := r.fresh(ctx, propertyID); err != nil {
		return Key{}, "", err
	}
	h, err := r.kv.Get(ctx, propKeyIndex(propertyID, keyID))
	if errors.Is(err, metadata.ErrNotFound) {
		return Key{}, "", notFound
	}
	if err != nil {
		return Key{}, "", fmt.Errorf("property: look up key: %w", err)
	}
	k, err := r.loadKey(ctx, string(h))
	if errors.Is(err, metadata.ErrNotFound) {
		return Key{}, "", notFound
	}
	return k, string(h), err
}

// RevokeKey refuses a key from now on, on every process within a second.
func (r *Registry) RevokeKey(ctx context.Context, propertyID, keyID string) (Key, error) {
	k, h, err := r.keyByID(ctx, propertyID, keyID)
	if err != nil {
		return Key{}, err
	}
	if k.Revoked {
		return k, nil
	}
	k.Revoked = true
	if now := time.Now().UTC(); k.ExpiresAt.IsZero() || k.ExpiresAt.After(now) {
		k.ExpiresAt = now.Truncate(time.Millisecond)
	}
	if err := r.putKey(ctx, h, k); err != nil {
		return Key{}, err
	}
	return k, r.feed.publish(ctx, "k:"+h)
}

// MaxGrace bounds a rotation's grace period.
const MaxGrace = maxGraceDays * 24 * time.Hour

// RotateKey creates a key of the same scope as keyID's and makes the old
// one expire after grace (at once when 0). It returns the new key with its
// secret, and the old key.
func (r *Registry) RotateKey(ctx context.Context, propertyID, keyID string, grace time.Duration) (Key, string, Key, error) {
	if grace < 0 || grace > MaxGrace {
		return Key{}, "", Key{}, apierror.Invalid("invalid rotation", apierror.Violation{Field: "gracePeriod", Description: "between 0 and 30 days", Code: apierror.ValueOutOfBounds})
	}
	old, h, err := r.keyByID(ctx, propertyID, keyID)
	if err != nil {
		return Key{}, "", Key{}, err
	}
	if !old.Usable(time.Now()) {
		return Key{}, "", Key{}, apierror.New(apierror.FailedPrecondition, "key %q is revoked or expired: create a new key instead", keyID)
	}
	nk, secret, err := r.createKey(ctx, propertyID, old.Scope)
	if err != nil {
		return Key{}, "", Key{}, err
	}
	end := time.Now().UTC().Add(grace).Truncate(time.Millisecond)
	if old.ExpiresAt.IsZero() || end.Before(old.ExpiresAt) {
		old.ExpiresAt = end
	}
	if grace == 0 {
		old.Revoked = true
	}
	if err := r.putKey(ctx, h, old); err != nil {
		return Key{}, "", Key{}, err
	}
	return nk, secret, old, r.feed.publish(ctx, "k:"+h)
}

// CreateAdminKey creates a new admin key and returns it (shown once).
func (r *Registry) CreateAdminKey(ctx context.Context) (string, error) {
	secret := newKey(adminPrefix)
	h := hashKey(secret)
	if err := r.putKey(ctx, h, Key{ID: keyIDOf(h), Scope: Admin, Hint: hintOf(secret), CreatedAt: time.Now().UTC().Truncate(time.Second)}); err != nil {
		return "", err
	}
	if err := r.kv.Put(ctx, []byte("adminkey/"+h), []byte{1}); err != nil {
		return "", fmt.Errorf("property: store admin key: %w", err)
	}
	return secret, nil
}

// HasAdminKey reports whether any admin key exists.
func (r *Registry) HasAdminKey(ctx context.Context) (bool, error) {
	found := false
	err := r.kv.Scan(ctx, []byte("adminkey/"), func(_, _ []byte) error {
		found = true
		return errFull
	})
	if errors.Is(err, errFull) {
		err = nil
	}
	return found, err
}

// Authenticate resolves a key. Unknown, malformed, revoked and expired
// keys are Unauthenticated, as are the keys of a deleted property.
func (r *Registry) Authenticate(ctx context.Context, secret string) (Principal, error) {
	if !strings.HasPrefix(secret, writePrefix) && !strings.HasPrefix(secret, readPrefix) && !strings.HasPrefix(secret, adminPrefix) && !strings.HasPrefix(secret, mpPrefix) || len(secret) > 100 {
		return Principal{}, apierror.New(apierror.Unauthenticated, "unknown API key")
	}
	h := hashKey(secret)
	k, ok := r.keys.get(h)
	if !ok {
		epoch := r.keys.begin()
		var err error
		k, err = r.loadKey(ctx, h)
		if errors.Is(err, metadata.ErrNotFound) {
			return Principal{}, apierror.New(apierror.Unauthenticated, "unknown API key")
		}
		if err != nil {
			return Principal{}, err
		}
		r.keys.putIf(h, k, epoch)
	}
	if !k.Usable(time.Now()) {
		if k.Revoked {
			return Principal{}, apierror.New(apierror.Unauthenticated, "API key %s was revoked", k.Hint)
		}
		return Principal{}, apierror.New(apierror.Unauthenticated, "API key %s expired at %s", k.Hint, k.ExpiresAt.Format(time.RFC3339))
	}
	return Principal{PropertyID: k.PropertyID, Scope: k.Scope}, nil
}
