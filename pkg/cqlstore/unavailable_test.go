package cqlstore

import (
	"errors"
	"fmt"
	"testing"

	"github.com/gocql/gocql"

	"github.com/sextant-analytics/sextant/pkg/apierror"
	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

// TestUnavailable: errors of an unreachable cluster carry
// viewstore.ErrUnavailable (a domain error: UNAVAILABLE with a retry
// delay); other errors do not.
func TestUnavailable(t *testing.T) {
	for _, err := range []error{gocql.ErrNoConnections, gocql.ErrTimeoutNoResponse, &gocql.RequestErrUnavailable{}, gocql.ErrConnectionClosed} {
		got := fmt.Errorf("cqlstore: meta get: %w", unavailable(err))
		var ae *apierror.Error
		if !errors.Is(got, viewstore.ErrUnavailable) || !errors.Is(got, err) || !errors.As(got, &ae) || ae.Kind != apierror.Unavailable || ae.RetryAfter <= 0 {
			t.Errorf("%v: not marked unavailable with a retry delay", err)
		}
	}
	for _, err := range []error{gocql.ErrNotFound, errors.New("unmarshal: bad data")} {
		if errors.Is(unavailable(err), viewstore.ErrUnavailable) {
			t.Errorf("%v marked unavailable", err)
		}
	}
}
