// Package metadata defines the port of the metadata store: the small
// key–value store that holds Sextant's own records (the property registry,
// API keys, the active projection versions), apart from the read models.
// The embedded Pebble store (pkg/pebblestore, its meta key space) and the
// ScyllaDB store (pkg/cqlstore, its meta table) implement Store;
// metadatatest is the conformance suite both pass.
//
// # Semantics
//
// Keys and values are arbitrary bytes (NUL and 0xff included). A key is
// non-empty: the empty key is never stored, so Put rejects it (ErrEmptyKey),
// Get of it returns ErrNotFound and Delete of it does nothing. Stores accept
// keys of up to MaxKeyBytes and values of up to MaxValueBytes; a value may
// be empty.
//
// Keys are ordered bytewise (bytes.Compare, unsigned). A prefix p matches
// every key k with bytes.HasPrefix(k, p); the empty prefix matches every
// key.
//
// Slices passed in belong to the caller again when the call returns (a store
// copies what it keeps); slices handed out (by Get, or to Scan's fn) belong
// to the receiver, which may keep and modify them.
//
// Every operation checks its context first: a cancelled context fails the
// call with an error wrapping ctx.Err() and changes nothing. Errors from a
// store being unreachable or overloaded wrap viewstore.ErrUnavailable (a
// retry may succeed).
package metadata

import (
	"context"
	"errors"
)

// ErrNotFound is in the chain of Get's error when the key is absent.
var ErrNotFound = errors.New("metadata: not found")

// ErrEmptyKey is in the chain of Put's error for the empty key.
var ErrEmptyKey = errors.New("metadata: empty key")

const (
	// MaxKeyBytes is the longest key every store accepts.
	MaxKeyBytes = 1 << 10
	// MaxValueBytes is the largest value every store accepts.
	MaxValueBytes = 1 << 20
)

// KV is what the registries use: the metadata store's four operations.
type KV interface {
	// Get returns the key's value, non-nil even when empty, or an error
	// wrapping ErrNotFound when the key is absent (the empty key always
	// is).
	Get(ctx context.Context, key []byte) ([]byte, error)
	// Put sets the key's value, replacing any. Once it returns nil the
	// value is durable: every later Get, from this store or one opened
	// later on the same storage, sees it (or a later write). A nil value
	// is stored as an empty one. The empty key fails with ErrEmptyKey.
	Put(ctx context.Context, key, value []byte) error
	// Delete removes the key, durably once it returns nil. Deleting an
	// absent key (or the empty key) is no error.
	Delete(ctx context.Context, key []byte) error
	// Scan calls fn for every key that starts with prefix, in ascending
	// key order, each key once. An error from fn stops the scan and is
	// returned as is (not wrapped). fn may call the store, Put and Delete
	// included: a key present for the whole scan is visited exactly once,
	// a key written or deleted during it may or may not be.
	Scan(ctx context.Context, prefix []byte, fn func(key, value []byte) error) error
}

// Store is a metadata store: KV and its lifecycle. It is safe for
// concurrent use.
type Store interface {
	KV
	// Close waits for running operations and releases the store.
	// Operations started after Close fail (Scan without calling fn), and
	// a second Close returns nil.
	Close() error
}

// Probe reports whether store answers a read, for readiness (a missing
// key is an answer).
func Probe(ctx context.Context, store interface {
	Get(ctx context.Context, key []byte) ([]byte, error)
}) error {
	_, err := store.Get(ctx, []byte("readyz"))
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}
