package privacy

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sextant-analytics/sextant/pkg/eventlog"
	"github.com/sextant-analytics/sextant/pkg/pebblestore"
	"github.com/sextant-analytics/sextant/pkg/property"
	"github.com/sextant-analytics/sextant/pkg/seal"
)

func openMeta(t *testing.T) *pebblestore.Store {
	t.Helper()
	st, err := pebblestore.Open(t.TempDir(), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// sealed seals one event of client for property, received at recv.
func sealed(t *testing.T, keys seal.Keys, property, client, user string, recv time.Time) eventlog.Record {
	t.Helper()
	msgs, err := sealAndCommit(t.Context(), seal.NewSealer(keys), []eventlog.Message{{Value: []byte("an event")}}, seal.Subjects{Property: property, ClientID: client, UserID: user, Received: recv})
	if err != nil {
		t.Fatal(err)
	}
	return eventlog.Record{Key: msgs[0].Key, Value: msgs[0].Value, Headers: msgs[0].Headers}
}

func opens(t *testing.T, keys seal.Keys, rec eventlog.Record) bool {
	t.Helper()
	_, err := seal.NewOpener(keys).Open(t.Context(), nil, &rec)
	if err != nil && !errors.Is(err, seal.ErrShredded) {
		t.Fatal(err)
	}
	return err == nil
}

func TestDelete(t *testing.T) {
	ctx := t.Context()
	keys := seal.NewMemory()
	l := NewLedger(openMeta(t), keys)
	now := time.Now()
	a, b, u := sealed(t, keys, "p", "client-a", "", now), sealed(t, keys, "p", "client-b", "", now), sealed(t, keys, "p", "client-c", "user-u", now)
	for _, tc := range []struct {
		kind  Kind
		id    string
		found bool
	}{
		{ClientID, "client-a", true},
		{UserID, "user-u", true},
		{AppInstanceID, "never-seen", false},
	} {
		r, err := l.Delete(ctx, "p", tc.kind, tc.id)
		if err != nil {
			t.Fatal(err)
		}
		if r.KeyFound != tc.found || r.Done.IsZero() || r.Subject != "" {
			t.Errorf("delete %s %s: %+v", tc.kind, tc.id, r)
		}
	}
	if opens(t, keys, a) || opens(t, keys, u) || !opens(t, keys, b) {
		t.Errorf("after the deletions: client a's event opens %v, user u's %v, client b's %v; want false, false, true", opens(t, keys, a), opens(t, keys, u), opens(t, keys, b))
	}
	if _, err := l.Delete(ctx, "p", "email", "x"); err == nil {
		t.Error("an unknown kind was accepted")
	}
	rs, err := l.Requests(ctx)
	if err != nil || len(rs) != 3 {
		t.Fatalf("ledger: %d requests, %v", len(rs), err)
	}
	for _, r := range rs {
		if r.Property != "p" || r.Subject != "" {
			t.Errorf("ledger entry %+v", r)
		}
	}
	if err := l.Prune(ctx, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if rs, _ := l.Requests(ctx); len(rs) != 0 {
		t.Errorf("%d requests after pruning them all", len(rs))
	}
}

// failingKeys fails Forget while fail is set.
type failingKeys struct {
	seal.Keys
	fail bool
}

func (f *failingKeys) Forget(ctx context.Context, p string, s seal.Subject) (bool, error) {
	if f.fail {
		return false, errors.New("key store down")
	}
	return f.Keys.Forget(ctx, p, s)
}

func TestCompleteInterrupted(t *testing.T) {
	ctx := t.Context()
	keys := &failingKeys{Keys: seal.NewMemory(), fail: true}
	l := NewLedger(openMeta(t), keys)
	rec := sealed(t, keys, "p", "client-a", "", time.Now())
	if _, err := l.Delete(ctx, "p", ClientID, "client-a"); err == nil {
		t.Fatal("the deletion succeeded with the key store down")
	}
	rs, err := l.Requests(ctx)
	if err != nil || len(rs) != 1 || !rs[0].Done.IsZero() || rs[0].Subject == "" {
		t.Fatalf("the interrupted request: %+v, %v", rs, err)
	}
	keys.fail = false
	if rs, err = l.Complete(ctx); err != nil || len(rs) != 1 || rs[0].Done.IsZero() || !rs[0].KeyFound || rs[0].Subject != "" {
		t.Fatalf("completed: %+v, %v", rs, err)
	}
	if opens(t, keys, rec) {
		t.Error("the event opens after the deletion was completed")
	}
}

func TestExpired(t *testing.T) {
	for _, tc := range []struct {
		now       string
		retention int
		want      string
	}{
		{"2026-12-08", 2, "2026-09"},
		{"2026-12-31", 14, "2025-09"},
		{"2026-01-01", 2, "2025-10"},
		{"2026-03-15", 50, "2021-12"},
	} {
		now, _ := time.Parse("2006-01-02", tc.now)
		if got := Expired(now, tc.retention).Format("2006-01"); got != tc.want {
			t.Errorf("Expired(%s, %d) = %s, want %s", tc.now, tc.retention, got, tc.want)
		}
	}
}

func TestRetention(t *testing.T) {
	ctx := t.Context()
	meta := openMeta(t)
	props := property.NewRegistry(meta, property.Options{})
	keys := seal.NewMemory()
	p, _, err := props.Create(ctx, property.Property{Name: "Kept two months", DataRetentionMonths: 2})
	if err != nil {
		t.Fatal(err)
	}
	q, _, err := props.Create(ctx, property.Property{Name: "Kept for good"})
	if err != nil {
		t.Fatal(err)
	}
	created := p.CreatedAt
	// Events of the month the properties were made, and of the next two.
	first := sealed(t, keys, p.ID, "c", "", created)
	second := sealed(t, keys, p.ID, "c", "", created.AddDate(0, 1, 0))
	third := sealed(t, keys, p.ID, "c", "", created.AddDate(0, 2, 0))
	other := sealed(t, keys, q.ID, "c", "", created)
	ledger := NewLedger(meta, keys)
	r := NewRetention(props, meta, ledger, nil)

	at := func(months int) time.Time {
		return time.Date(created.Year(), created.Month()+time.Month(months), 15, 0, 0, 0, 0, time.UTC)
	}
	for _, step := range []struct {
		months               int  // after the creation month
		first, second, third bool // whether they still open
	}{
		{2, true, true, true},  // two whole months followed none of them
		{3, false, true, true}, // two whole months followed the first
		{3, false, true, true}, // again: nothing more
		{5, false, false, false},
	} {
		r.now = func() time.Time { return at(step.months) }
		if err := r.Step(ctx); err != nil {
			t.Fatal(err)
		}
		if got := [3]bool{opens(t, keys, first), opens(t, keys, second), opens(t, keys, third)}; got != [3]bool{step.first, step.second, step.third} {
			t.Errorf("%d months on: the three months' events open %v, want %v", step.months, got, [3]bool{step.first, step.second, step.third})
		}
		if !opens(t, keys, other) {
			t.Errorf("%d months on: the event of the property that keeps its data was deleted", step.months)
		}
	}
	rs, err := ledger.Requests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, req := range rs {
		if req.Kind != ExpiredMonth || req.Property != p.ID || req.Done.IsZero() {
			t.Errorf("ledger entry %+v", req)
		}
		if req.KeyFound {
			found++
		}
	}
	if len(rs) != 3 || found != 3 {
		t.Errorf("ledger: %d requests (want 3: months 0 to 2), %d with a key (want 3)", len(rs), found)
	}
}

// sealAndCommit seals msgs (the sealer stores the keys it makes).
func sealAndCommit(ctx context.Context, s *seal.Sealer, msgs []eventlog.Message, sub seal.Subjects) ([]eventlog.Message, error) {
	return s.Seal(ctx, msgs, sub)
}
