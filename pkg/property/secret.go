package property

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

// assertionSecretKey holds the secret the processes sign principal
// assertions with (auth.Assertions): whoever can read it can tell a
// service which property a call is for, so it lives with the keys.
var assertionSecretKey = []byte("internal/principal-assertion-secret")

// AssertionSecret returns the processes' shared signing secret, creating it
// on first use. Two processes creating it at once each store their own and
// the last write wins; a process that kept the other one only signs or
// accepts assertions that do not verify elsewhere, which costs a key lookup
// (never access), until it reads the secret again.
func (r *Registry) AssertionSecret(ctx context.Context) ([]byte, error) {
	b, err := r.kv.Get(ctx, assertionSecretKey)
	if err == nil && len(b) >= 32 {
		return b, nil
	}
	if err != nil && !errors.Is(err, viewstore.ErrNotFound) {
		return nil, fmt.Errorf("property: read the assertion secret: %w", err)
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret) // never fails (crypto/rand)
	if err := r.kv.Put(ctx, assertionSecretKey, secret); err != nil {
		return nil, fmt.Errorf("property: store the assertion secret: %w", err)
	}
	// Read it back: of two processes racing here, both keep the winner.
	if b, err = r.kv.Get(ctx, assertionSecretKey); err != nil {
		return nil, fmt.Errorf("property: read the assertion secret: %w", err)
	}
	return b, nil
}
