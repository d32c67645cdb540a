// Package apierror holds Sextant's domain errors as values. Services return
// them; one interceptor at the edge maps them to gRPC/Connect codes (and so,
// through grpc-gateway, to HTTP statuses) with their field violations.
package apierror

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kind classifies an error the way a client must react to it.
type Kind int

const (
	Internal Kind = iota
	InvalidArgument
	Unauthenticated
	PermissionDenied
	NotFound
	ResourceExhausted
	FailedPrecondition
	Unavailable
)

// Validation codes, as GA4's Measurement Protocol validation messages use.
const (
	ValueInvalid        = "VALUE_INVALID"
	ValueRequired       = "VALUE_REQUIRED"
	NameInvalid         = "NAME_INVALID"
	NameReserved        = "NAME_RESERVED"
	ValueOutOfBounds    = "VALUE_OUT_OF_BOUNDS"
	ExceededMaxEntities = "EXCEEDED_MAX_ENTITIES"
	NameDuplicated      = "NAME_DUPLICATED"
)

// Violation names one offending field.
type Violation struct {
	Field       string // GA4-style path, e.g. "events[0].params.page_title"
	Description string
	Code        string // one of the validation codes above
}

// Error is a domain error.
type Error struct {
	Kind       Kind
	Message    string
	Violations []Violation
	RetryAfter time.Duration // with ResourceExhausted or Unavailable: when to retry
	Err        error         // the cause, never shown to clients for Internal
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Message)
	for i, v := range e.Violations {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: %s", v.Field, v.Description)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Invalid returns an InvalidArgument error listing every violation.
func Invalid(msg string, vs ...Violation) *Error {
	return &Error{Kind: InvalidArgument, Message: msg, Violations: vs}
}

// New returns an error of kind k.
func New(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// KindOf returns the kind of err: Internal unless err wraps an *Error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}
