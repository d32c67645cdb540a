package collect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sextant-analytics/sextant/pkg/apierror"
	"github.com/sextant-analytics/sextant/pkg/eventlog"
	"github.com/sextant-analytics/sextant/pkg/seal"
)

// flakyKeys fails storing keys while fail is set.
type flakyKeys struct {
	seal.Keys
	fail bool
}

func (f *flakyKeys) AddSubjectKey(ctx context.Context, p string, s seal.Subject, k seal.Key) (seal.Key, error) {
	if f.fail {
		return seal.Key{}, errors.New("key store down")
	}
	return f.Keys.AddSubjectKey(ctx, p, s, k)
}

// TestSealedBatches: every appended record is sealed and opens with the
// key store; a new visitor's batch whose key cannot be stored is answered
// UNAVAILABLE and appends nothing, and its retry is stored and opens.
func TestSealedBatches(t *testing.T) {
	keys := &flakyKeys{Keys: seal.NewMemory(), fail: true}
	log := &memLog{}
	s := New(Config{Sealer: seal.NewSealer(keys), Logger: slog.New(slog.DiscardHandler)}, log)
	s.now = func() time.Time { return testNow }
	const batch = `{"clientId":"visitor-secret","userId":"user-secret","events":[{"name":"page_view","eventId":"e1","params":{"page_location":"https://a.example/secret-page"}}]}`
	err := send(s, "42", batch)
	var ae *apierror.Error
	if !errors.As(err, &ae) || ae.Kind != apierror.Unavailable || ae.RetryAfter <= 0 {
		t.Fatalf("a batch whose key was not stored: %v, want UNAVAILABLE with a retry delay", err)
	}
	keys.fail = false
	if err := send(s, "42", batch); err != nil {
		t.Fatalf("the retry: %v", err)
	}
	if len(log.msgs) != 1 {
		t.Fatalf("%d records appended, want 1 (the retry's; the refused batch appends nothing)", len(log.msgs))
	}
	o := seal.NewOpener(keys)
	for i, m := range log.msgs {
		for _, secret := range []string{"visitor-secret", "user-secret", "secret-page"} {
			if strings.Contains(string(m.Key)+string(m.Value)+fmt.Sprint(m.Headers), secret) {
				t.Errorf("record %d holds %q in the clear", i, secret)
			}
		}
		rec := eventlog.Record{Key: m.Key, Value: m.Value, Headers: m.Headers}
		payload, err := o.Open(t.Context(), nil, &rec)
		if err != nil || !strings.Contains(string(payload), "secret-page") {
			t.Errorf("the retry's record: %q, %v", payload, err)
		}
	}
}
