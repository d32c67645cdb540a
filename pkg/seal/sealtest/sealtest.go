// Package sealtest is the conformance suite of seal.Keys: every key store
// (seal.Memory, pebblestore, cqlstore) passes it.
package sealtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sextant-analytics/sextant/pkg/seal"
)

// Run runs the suite against the store keys. Properties are made unique
// per run, so that stores can be shared between runs.
func Run(t *testing.T, keys seal.Keys) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run := fmt.Sprintf("sealtest-%d", time.Now().UnixNano())
	p, q := run+"-p", run+"-q"

	t.Run("SubjectKeyIsStable", func(t *testing.T) {
		a, err := seal.SubjectKey(ctx, keys, p, seal.Client("c1"))
		if err != nil {
			t.Fatal(err)
		}
		b, err := seal.SubjectKey(ctx, keys, p, seal.Client("c1"))
		if err != nil {
			t.Fatal(err)
		}
		if a != b {
			t.Fatalf("a subject got two keys: %s and %s", a.ID, b.ID)
		}
		if a.Secret == ([seal.SecretSize]byte{}) || a.ID == (seal.ID{}) {
			t.Fatal("an empty key")
		}
		got, err := keys.Key(ctx, p, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got != a {
			t.Fatalf("Key(%s) = %s, a different key", a.ID, got.ID)
		}
	})

	t.Run("SubjectsAndPropertiesApart", func(t *testing.T) {
		seen := map[seal.ID]string{}
		for _, c := range []struct {
			prop string
			sub  seal.Subject
			name string
		}{
			{p, seal.Client("c2"), "client c2"},
			{p, seal.User("c2"), "user c2"},
			{p, seal.Month(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)), "month"},
			{q, seal.Client("c2"), "client c2 of the other property"},
		} {
			k, err := seal.SubjectKey(ctx, keys, c.prop, c.sub)
			if err != nil {
				t.Fatal(err)
			}
			if other, ok := seen[k.ID]; ok {
				t.Errorf("%s has the key of %s", c.name, other)
			}
			seen[k.ID] = c.name
		}
		k, err := seal.SubjectKey(ctx, keys, p, seal.Client("c3"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := keys.Key(ctx, q, k.ID); !errors.Is(err, seal.ErrShredded) {
			t.Errorf("another property's key id answered %v, want ErrShredded", err)
		}
	})

	t.Run("OneKeyPerSubject", func(t *testing.T) {
		// A second key added for a subject is not taken: the first is
		// returned, and the second does not open anything.
		sub := seal.Client("one-key")
		first, second := seal.NewKey(), seal.NewKey()
		if got, err := keys.AddSubjectKey(ctx, p, sub, first); err != nil || got != first {
			t.Fatalf("AddSubjectKey = %s, %v; want the key given", got.ID, err)
		}
		if got, err := keys.AddSubjectKey(ctx, p, sub, second); err != nil || got != first {
			t.Fatalf("a second AddSubjectKey = %s, %v; want the first key %s", got.ID, err, first.ID)
		}
		if got, ok, err := keys.FindSubjectKey(ctx, p, sub); err != nil || !ok || got != first {
			t.Errorf("FindSubjectKey = %s, %v, %v; want %s", got.ID, ok, err, first.ID)
		}
		if _, err := keys.Key(ctx, p, second.ID); !errors.Is(err, seal.ErrShredded) {
			t.Errorf("the key not taken is readable: %v", err)
		}
		if _, ok, err := keys.FindSubjectKey(ctx, p, seal.Client("never-added")); err != nil || ok {
			t.Errorf("a subject without keys: found %v, %v", ok, err)
		}
	})

	t.Run("UnknownID", func(t *testing.T) {
		if _, err := keys.Key(ctx, p, seal.NewKey().ID); !errors.Is(err, seal.ErrShredded) {
			t.Errorf("an unknown key id answered %v, want ErrShredded", err)
		}
	})

	t.Run("Forget", func(t *testing.T) {
		sub := seal.User("u-forget")
		k, err := seal.SubjectKey(ctx, keys, p, sub)
		if err != nil {
			t.Fatal(err)
		}
		other, err := seal.SubjectKey(ctx, keys, p, seal.User("u-keep"))
		if err != nil {
			t.Fatal(err)
		}
		ok, err := keys.Forget(ctx, p, sub)
		if err != nil || !ok {
			t.Fatalf("Forget = %v, %v; want true", ok, err)
		}
		if _, err := keys.Key(ctx, p, k.ID); !errors.Is(err, seal.ErrShredded) {
			t.Errorf("a forgotten key answered %v, want ErrShredded", err)
		}
		if got, err := keys.Key(ctx, p, other.ID); err != nil || got != other {
			t.Errorf("another subject's key: %v (%s, want %s)", err, got.ID, other.ID)
		}
		if ok, err := keys.Forget(ctx, p, sub); err != nil || ok {
			t.Errorf("forgetting again = %v, %v; want false", ok, err)
		}
		n, err := seal.SubjectKey(ctx, keys, p, sub)
		if err != nil {
			t.Fatal(err)
		}
		if n.ID == k.ID || n.Secret == k.Secret {
			t.Error("the subject got its destroyed key back")
		}
	})

	t.Run("ConcurrentCreatorsAgree", func(t *testing.T) {
		for round := range 5 {
			sub := seal.Client(fmt.Sprintf("race-%d", round))
			var wg sync.WaitGroup
			got := make([]seal.Key, 8)
			errs := make([]error, 8)
			for i := range got {
				wg.Add(1)
				go func() {
					defer wg.Done()
					got[i], errs[i] = seal.SubjectKey(ctx, keys, p, sub)
				}()
			}
			wg.Wait()
			for i := range got {
				if errs[i] != nil {
					t.Fatal(errs[i])
				}
				if got[i] != got[0] {
					t.Fatalf("round %d: concurrent creators got keys %s and %s", round, got[0].ID, got[i].ID)
				}
			}
			if k, err := keys.Key(ctx, p, got[0].ID); err != nil || k != got[0] {
				t.Fatalf("round %d: the agreed key reads back as %v, %v", round, k.ID, err)
			}
		}
	})

	t.Run("Canceled", func(t *testing.T) {
		cctx, ccancel := context.WithCancel(ctx)
		ccancel()
		if _, err := seal.SubjectKey(cctx, keys, p, seal.Client("canceled")); err == nil {
			t.Error("SubjectKey on a canceled context succeeded")
		}
		if _, err := keys.AddSubjectKey(cctx, p, seal.Client("canceled"), seal.NewKey()); err == nil {
			t.Error("AddSubjectKey on a canceled context succeeded")
		}
	})
}
