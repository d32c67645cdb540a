// Package privacy deletes users the event-sourcing way: a deletion
// destroys the keys the user's events were sealed with (package seal), so
// the log keeps no readable copy of them and every later replay skips
// them; the read models that counted them are rebuilt (the projection
// service's rebuilder, which reads this package's ledger).
package privacy

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/sextant-analytics/sextant/pkg/seal"
)

// KV is the part of the metadata store (metadata.KV, whose semantics it
// has) that the ledger of deletions uses.
type KV interface {
	Put(ctx context.Context, key, value []byte) error
	Delete(ctx context.Context, key []byte) error
	Scan(ctx context.Context, prefix []byte, fn func(key, value []byte) error) error
}

// Kind is what identifies the user to delete, as in GA4's User Deletion API.
type Kind string

const (
	ClientID      Kind = "client_id"       // a web client id (the _ga cookie's)
	AppInstanceID Kind = "app_instance_id" // an app instance id
	UserID        Kind = "user_id"         // the user id a site or app sets
	// ExpiredMonth deletes a property's events of a month past its data
	// retention.
	ExpiredMonth Kind = "retention"
)

// Subject is the key subject of an id of kind k.
func (k Kind) Subject(id string) (seal.Subject, error) {
	switch k {
	case ClientID, AppInstanceID: // collect keys an app's events by its instance id
		return seal.Client(id), nil
	case UserID:
		return seal.User(id), nil
	}
	return seal.Subject{}, fmt.Errorf("privacy: unknown id kind %q", k)
}

// Request is a deletion, as the ledger keeps it: never the id itself.
type Request struct {
	Property string    `json:"property"`
	Kind     Kind      `json:"kind"`
	Time     time.Time `json:"time"` // when it was asked
	// Month is the month a Retention request deleted ("2006-01").
	Month string `json:"month,omitempty"`
	// Subject is the subject's digest (hex) until its key is destroyed;
	// a request interrupted before that is completed by Complete.
	Subject string `json:"subject,omitempty"`
	// Done is when the key was destroyed; from then on no reader opens
	// the user's events, and read models built before it still count them.
	Done time.Time `json:"done,omitzero"`
	// KeyFound says whether the subject had a key (events) to destroy.
	KeyFound bool `json:"keyFound"`
}

const prefix = "privacy/deletion/"

func ledgerKey(r Request) []byte {
	return []byte(prefix + r.Time.UTC().Format("20060102T150405.000000000Z") + "/" + r.Property + "/" + string(r.Kind) + r.Month)
}

// Ledger records deletions and destroys their keys.
type Ledger struct {
	kv   KV
	keys seal.Keys
	now  func() time.Time
}

// NewLedger returns a ledger over kv destroying keys of keys.
func NewLedger(kv KV, keys seal.Keys) *Ledger {
	return &Ledger{kv: kv, keys: keys, now: time.Now}
}

func (l *Ledger) put(ctx context.Context, r Request) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := l.kv.Put(ctx, ledgerKey(r), b); err != nil {
		return fmt.Errorf("privacy: record the deletion: %w", err)
	}
	return nil
}

// Delete deletes the user with id of kind in property: the request is
// recorded, then the user's key destroyed.
func (l *Ledger) Delete(ctx context.Context, property string, kind Kind, id string) (Request, error) {
	sub, err := kind.Subject(id)
	if err != nil {
		return Request{}, err
	}
	return l.forget(ctx, Request{Property: property, Kind: kind, Time: l.now().UTC()}, sub)
}

// forget records r, destroys sub's key and records that it is done.
func (l *Ledger) forget(ctx context.Context, r Request, sub seal.Subject) (Request, error) {
	r.Subject = hex.EncodeToString(sub[:])
	if err := l.put(ctx, r); err != nil {
		return Request{}, err
	}
	return l.complete(ctx, r, sub)
}

func (l *Ledger) complete(ctx context.Context, r Request, sub seal.Subject) (Request, error) {
	found, err := l.keys.Forget(ctx, r.Property, sub)
	if err != nil {
		return r, fmt.Errorf("privacy: destroy the user's key: %w", err)
	}
	r.Done, r.KeyFound, r.Subject = l.now().UTC(), found, ""
	return r, l.put(ctx, r)
}

// Requests returns the ledger, oldest first.
func (l *Ledger) Requests(ctx context.Context) ([]Request, error) {
	var out []Request
	err := l.kv.Scan(ctx, []byte(prefix), func(_, v []byte) error {
		var r Request
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("privacy: a ledger entry: %w", err)
		}
		out = append(out, r)
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, err
}

// Complete destroys the keys of requests that were recorded but not done
// (the process asked stopped half-way), and returns the ledger.
func (l *Ledger) Complete(ctx context.Context) ([]Request, error) {
	rs, err := l.Requests(ctx)
	if err != nil {
		return nil, err
	}
	var errs []error
	for i, r := range rs {
		if !r.Done.IsZero() {
			continue
		}
		var sub seal.Subject
		if b, err := hex.DecodeString(r.Subject); err != nil || len(b) != len(sub) {
			errs = append(errs, fmt.Errorf("privacy: the request of %s has no subject", r.Time))
			continue
		} else {
			copy(sub[:], b)
		}
		if rs[i], err = l.complete(ctx, r, sub); err != nil {
			errs = append(errs, err)
		}
	}
	return rs, errors.Join(errs...)
}

// Prune forgets the requests done before t (every read model was built
// after them).
func (l *Ledger) Prune(ctx context.Context, t time.Time) error {
	rs, err := l.Requests(ctx)
	if err != nil {
		return err
	}
	for _, r := range rs {
		if !r.Done.IsZero() && r.Done.Before(t) {
			if err := l.kv.Delete(ctx, ledgerKey(r)); err != nil {
				return fmt.Errorf("privacy: prune: %w", err)
			}
		}
	}
	return nil
}

// ValidKind parses a kind.
func ValidKind(s string) (Kind, bool) {
	k := Kind(strings.ToLower(s))
	switch k {
	case ClientID, AppInstanceID, UserID:
		return k, true
	}
	return "", false
}
