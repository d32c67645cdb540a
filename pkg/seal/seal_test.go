package seal_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sextant-analytics/sextant/pkg/eventlog"
	"github.com/sextant-analytics/sextant/pkg/seal"
	"github.com/sextant-analytics/sextant/pkg/seal/sealtest"
)

func TestMemoryConformance(t *testing.T) { sealtest.Run(t, seal.NewMemory()) }

func records(msgs []eventlog.Message) []eventlog.Record {
	out := make([]eventlog.Record, len(msgs))
	for i, m := range msgs {
		out[i] = eventlog.Record{Offset: int64(i), Key: m.Key, Value: m.Value, Headers: m.Headers}
	}
	return out
}

func TestSealOpenShred(t *testing.T) {
	ctx := context.Background()
	recv := time.Date(2026, 12, 8, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		sub    seal.Subjects
		forget []seal.Subject // destroyed after sealing; nil opens
	}{
		{"client", seal.Subjects{Property: "p1", ClientID: "client-secret-id", Received: recv}, nil},
		{"client and user", seal.Subjects{Property: "p1", ClientID: "client-secret-id", UserID: "user-secret-id", Received: recv}, nil},
		{"client deleted", seal.Subjects{Property: "p1", ClientID: "client-secret-id", Received: recv}, []seal.Subject{seal.Client("client-secret-id")}},
		{"user deleted", seal.Subjects{Property: "p1", ClientID: "client-secret-id", UserID: "user-secret-id", Received: recv}, []seal.Subject{seal.User("user-secret-id")}},
		{"month expired", seal.Subjects{Property: "p1", ClientID: "client-secret-id", Received: recv}, []seal.Subject{seal.Month(recv)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys := seal.NewMemory()
			plain := [][]byte{[]byte("event one: client-secret-id /page?q=secret"), []byte("event two")}
			msgs := []eventlog.Message{{Key: []byte("p1/client-secret-id"), Value: bytes.Clone(plain[0])}, {Key: []byte("p1/client-secret-id"), Value: bytes.Clone(plain[1])}}
			if err := seal.NewSealer(keys).Seal(ctx, msgs, tc.sub); err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs {
				for _, secret := range [][]byte{[]byte("client-secret-id"), []byte("user-secret-id"), []byte("event")} {
					if bytes.Contains(m.Value, secret) || bytes.Contains(m.Key, secret) || bytes.Contains([]byte(m.Headers[seal.Header]), secret) {
						t.Errorf("a sealed record holds %q in the clear", secret)
					}
				}
			}
			for _, s := range tc.forget {
				if ok, err := keys.Forget(ctx, "p1", s); err != nil || !ok {
					t.Fatalf("forget: %v %v", ok, err)
				}
			}
			o := seal.NewOpener(keys)
			recs := records(msgs)
			if err := o.Prefetch(ctx, recs); err != nil {
				t.Fatal(err)
			}
			for i := range recs {
				got, err := o.Open(ctx, nil, &recs[i])
				if tc.forget != nil {
					if !errors.Is(err, seal.ErrShredded) {
						t.Errorf("record %d opened after its key was destroyed: %q, %v", i, got, err)
					}
					continue
				}
				if err != nil || !bytes.Equal(got, plain[i]) {
					t.Errorf("record %d = %q, %v; want %q", i, got, err, plain[i])
				}
			}
		})
	}
}

func TestTamperedRecords(t *testing.T) {
	ctx := context.Background()
	keys := seal.NewMemory()
	sub := seal.Subjects{Property: "p1", ClientID: "c", UserID: "u", Received: time.Now()}
	msgs := []eventlog.Message{{Value: []byte("event")}}
	if err := seal.NewSealer(keys).Seal(ctx, msgs, sub); err != nil {
		t.Fatal(err)
	}
	other := []eventlog.Message{{Value: []byte("other")}}
	if err := seal.NewSealer(keys).Seal(ctx, other, seal.Subjects{Property: "p1", ClientID: "c2", Received: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(r *eventlog.Record)
	}{
		{"flipped byte", func(r *eventlog.Record) { r.Value[len(r.Value)-1] ^= 1 }},
		{"truncated", func(r *eventlog.Record) { r.Value = r.Value[:10] }},
		{"other client's header", func(r *eventlog.Record) { r.Headers = other[0].Headers }},
		{"garbage header", func(r *eventlog.Record) { r.Headers = map[string]string{seal.Header: "v1 p1 zz"} }},
		{"unknown version", func(r *eventlog.Record) {
			r.Headers = map[string]string{seal.Header: "v9" + msgs[0].Headers[seal.Header][2:]}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := records(msgs)[0]
			r.Value = bytes.Clone(r.Value)
			tc.mutate(&r)
			if _, err := seal.NewOpener(keys).Open(ctx, nil, &r); !errors.Is(err, seal.ErrCorrupt) {
				t.Errorf("Open = %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestUnsealedRecordsPassThrough(t *testing.T) {
	r := eventlog.Record{Value: []byte("legacy event")}
	got, err := seal.NewOpener(seal.NewMemory()).Open(context.Background(), nil, &r)
	if err != nil || string(got) != "legacy event" {
		t.Fatalf("Open = %q, %v", got, err)
	}
}

func FuzzRefs(f *testing.F) {
	f.Add("v1 p1 00112233445566778899aabbccddeeff 00112233445566778899aabbccddeeff")
	f.Add("v1 p 0 0 0 0")
	f.Fuzz(func(t *testing.T, h string) {
		p, ids, err := seal.Refs(h)
		if err == nil && (p == "" || len(ids) < 2 || len(ids) > 3) {
			t.Fatalf("Refs(%q) = %q, %d ids without an error", h, p, len(ids))
		}
	})
}
