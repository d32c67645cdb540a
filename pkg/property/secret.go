package property

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// assertionSecretPrefix holds the secrets the processes sign principal
// assertions with (auth.Assertions): whoever can read them can tell a
// service which property a call is for, so they live with the keys.
//
// The store has no put-if-absent, so processes starting at once may each
// create one: every process writes its candidate under a key of its own
// and reads them all back. Signers sign with the first (by key) they know;
// verifiers accept any of them and read them again when an assertion does
// not verify, so a signer's secret, written before its first assertion,
// is always found.
var assertionSecretPrefix = []byte("internal/assertion-secret/")

// AssertionSecrets returns the processes' shared signing secrets, the one
// to sign with first, creating one when there is none.
func (r *Registry) AssertionSecrets(ctx context.Context) ([][]byte, error) {
	read := func() ([][]byte, error) {
		var out [][]byte
		err := r.kv.Scan(ctx, assertionSecretPrefix, func(_, v []byte) error {
			if len(v) >= 32 {
				out = append(out, append([]byte(nil), v...))
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("property: read the assertion secrets: %w", err)
		}
		return out, nil
	}
	secrets, err := read()
	if err != nil || len(secrets) > 0 {
		return secrets, err
	}
	var id [8]byte
	secret := make([]byte, 32)
	_, _ = rand.Read(id[:]) // never fails (crypto/rand)
	_, _ = rand.Read(secret)
	key := append(append([]byte(nil), assertionSecretPrefix...), hex.EncodeToString(id[:])...)
	if err := r.kv.Put(ctx, key, secret); err != nil {
		return nil, fmt.Errorf("property: store an assertion secret: %w", err)
	}
	return read()
}
