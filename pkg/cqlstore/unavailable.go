package cqlstore

import (
	"errors"
	"net"

	"github.com/gocql/gocql"

	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

// unavailable marks err with viewstore.ErrUnavailable when it says the
// cluster cannot be reached or did not answer in time (no host, closed
// connection, timeouts, too few replicas alive), so that callers answer
// "retry later" instead of an internal error. Other errors are returned
// unchanged.
func unavailable(err error) error {
	if err == nil || errors.Is(err, viewstore.ErrUnavailable) || !isUnavailable(err) {
		return err
	}
	return unavailableError{err}
}

func isUnavailable(err error) bool {
	var (
		rUnavail *gocql.RequestErrUnavailable
		rRead    *gocql.RequestErrReadTimeout
		rWrite   *gocql.RequestErrWriteTimeout
		netErr   net.Error
	)
	return errors.Is(err, gocql.ErrNoConnections) || errors.Is(err, gocql.ErrNoConnectionsStarted) ||
		errors.Is(err, gocql.ErrConnectionClosed) || errors.Is(err, gocql.ErrTimeoutNoResponse) ||
		errors.Is(err, gocql.ErrHostDown) || errors.Is(err, gocql.ErrNoStreams) ||
		errors.As(err, &rUnavail) || errors.As(err, &rRead) || errors.As(err, &rWrite) || errors.As(err, &netErr)
}

type unavailableError struct{ err error }

func (e unavailableError) Error() string   { return e.err.Error() }
func (e unavailableError) Unwrap() []error { return []error{e.err, viewstore.ErrUnavailable} }
