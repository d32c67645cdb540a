package seal_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
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
			sealed, err := sealAndCommit(ctx, seal.NewSealer(keys), msgs, tc.sub)
			if err != nil {
				t.Fatal(err)
			}
			if len(sealed) != 1 {
				t.Fatalf("%d records, want the batch in one", len(sealed))
			}
			for _, m := range sealed {
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
			recs := records(sealed)
			if err := o.Prefetch(ctx, recs); err != nil {
				t.Fatal(err)
			}
			got, err := events(ctx, o, &recs[0])
			if tc.forget != nil {
				if !errors.Is(err, seal.ErrShredded) {
					t.Errorf("the record opened after its key was destroyed: %q, %v", got, err)
				}
				return
			}
			if err != nil || len(got) != 2 || !bytes.Equal(got[0], plain[0]) || !bytes.Equal(got[1], plain[1]) {
				t.Errorf("opened %q, %v; want %q", got, err, plain)
			}
		})
	}
}

// TestLargeBatches: a batch too large for one record is sealed into
// several, in order, each within the bounds.
func TestLargeBatches(t *testing.T) {
	ctx := context.Background()
	keys := seal.NewMemory()
	var msgs []eventlog.Message
	var want [][]byte
	for i := range seal.MaxRecordEvents + 100 {
		v := make([]byte, 700)
		_, _ = rand.Read(v) // incompressible
		v = fmt.Appendf(v, "event-%d", i)
		msgs = append(msgs, eventlog.Message{Value: v})
		want = append(want, bytes.Clone(v))
	}
	sealed, err := sealAndCommit(ctx, seal.NewSealer(keys), msgs, seal.Subjects{Property: "p", ClientID: "c", Received: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) < 2 {
		t.Fatalf("%d records for %d events of 700 random bytes", len(sealed), len(msgs))
	}
	o := seal.NewOpener(keys)
	var got [][]byte
	for _, r := range records(sealed) {
		if len(r.Value) > 600<<10 {
			t.Errorf("a record of %d bytes", len(r.Value))
		}
		evs, err := events(ctx, o, &r)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) > seal.MaxRecordEvents {
			t.Errorf("a record of %d events", len(evs))
		}
		got = append(got, evs...)
	}
	if len(got) != len(want) {
		t.Fatalf("%d events opened, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("event %d differs", i)
		}
	}
}

func TestTamperedRecords(t *testing.T) {
	ctx := context.Background()
	keys := seal.NewMemory()
	sub := seal.Subjects{Property: "p1", ClientID: "c", UserID: "u", Received: time.Now()}
	msgs, err := sealAndCommit(ctx, seal.NewSealer(keys), []eventlog.Message{{Value: []byte("event")}}, sub)
	if err != nil {
		t.Fatal(err)
	}
	other, err := sealAndCommit(ctx, seal.NewSealer(keys), []eventlog.Message{{Value: []byte("other")}}, seal.Subjects{Property: "p1", ClientID: "c2", Received: time.Now()})
	if err != nil {
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

func TestUnsealedRecordsRefused(t *testing.T) {
	r := eventlog.Record{Value: []byte("legacy event")}
	if got, err := seal.NewOpener(seal.NewMemory()).Open(context.Background(), nil, &r); !errors.Is(err, seal.ErrCorrupt) {
		t.Fatalf("Open of an unsealed record = %q, %v", got, err)
	}
}

func FuzzEvents(f *testing.F) {
	f.Add([]byte{3, 'a', 'b', 'c', 0, 1, 'x'})
	f.Add([]byte{200})
	f.Fuzz(func(t *testing.T, payload []byte) {
		n := 0
		_ = seal.Events(payload, func(_ int, ev []byte) error {
			n += len(ev)
			return nil
		})
		if n > len(payload) {
			t.Fatalf("events of %d bytes in a payload of %d", n, len(payload))
		}
	})
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

// sealAndCommit seals msgs (the sealer stores the keys it makes).
func sealAndCommit(ctx context.Context, s *seal.Sealer, msgs []eventlog.Message, sub seal.Subjects) ([]eventlog.Message, error) {
	return s.Seal(ctx, msgs, sub)
}

// events opens rec and returns its events.
func events(ctx context.Context, o *seal.Opener, rec *eventlog.Record) ([][]byte, error) {
	payload, err := o.Open(ctx, nil, rec)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	err = seal.Events(payload, func(_ int, ev []byte) error {
		out = append(out, bytes.Clone(ev))
		return nil
	})
	return out, err
}
