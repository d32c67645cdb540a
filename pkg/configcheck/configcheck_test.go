package configcheck_test

import (
	"errors"
	"testing"
	"time"

	"github.com/sextant-analytics/sextant/pkg/configcheck"
)

func TestErrors(t *testing.T) {
	e := configcheck.New("svc")
	if e.Err() != nil {
		t.Fatal("no problems yet, and an error")
	}
	configcheck.NotNegative(e, "A", 0)
	configcheck.NotNegative(e, "B", time.Second)
	if e.Err() != nil {
		t.Fatalf("zero and positive values: %v", e.Err())
	}
	configcheck.NotNegative(e, "C", -2*time.Second)
	configcheck.NotNegative(e, "D", -0.5)
	sentinel := errors.New("sentinel")
	e.Add(nil)
	e.Add(sentinel)
	want := "svc: C is -2s: it must not be negative (zero means the default)\nsvc: D is -0.5: it must not be negative (zero means the default)\nsentinel"
	if err := e.Err(); err == nil || err.Error() != want || !errors.Is(err, sentinel) {
		t.Errorf("Err() = %q, want %q (wrapping the added error)", err, want)
	}
}
