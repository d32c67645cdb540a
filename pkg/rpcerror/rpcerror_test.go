package rpcerror

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	"github.com/sextant-analytics/sextant/pkg/apierror"
)

func TestConvert(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		name      string
		err       error
		code      connect.Code
		msg       string // substring of the message
		hidden    string // must not appear
		fields    []string
		retryWait time.Duration
	}{
		{"invalid with fields", apierror.Invalid("bad batch",
			apierror.Violation{Field: "clientId", Description: "required", Code: apierror.ValueRequired},
			apierror.Violation{Field: "events[0].name", Description: "bad", Code: apierror.NameInvalid}),
			connect.CodeInvalidArgument, "clientId: required", "", []string{"clientId", "events[0].name"}, 0},
		{"unauthenticated", apierror.New(apierror.Unauthenticated, "no key"), connect.CodeUnauthenticated, "no key", "", nil, 0},
		{"permission", apierror.New(apierror.PermissionDenied, "not yours"), connect.CodePermissionDenied, "not yours", "", nil, 0},
		{"rate limited", &apierror.Error{Kind: apierror.ResourceExhausted, Message: "slow down", RetryAfter: 1500 * time.Millisecond},
			connect.CodeResourceExhausted, "slow down", "", nil, 1500 * time.Millisecond},
		{"wrapped domain error", fmt.Errorf("outer: %w", apierror.New(apierror.NotFound, "gone")), connect.CodeNotFound, "gone", "", nil, 0},
		{"internal is masked", errors.New("disk /secret/path failed"), connect.CodeInternal, "internal error", "/secret/path", nil, 0},
		{"unavailable", &apierror.Error{Kind: apierror.Unavailable, Message: "log down"},
			connect.CodeUnavailable, "log down", "", nil, 0},
		{"deadline", context.DeadlineExceeded, connect.CodeDeadlineExceeded, "", "", nil, 0},
		{"unavailable after its own timeout", &apierror.Error{Kind: apierror.Unavailable, Message: "log did not answer", RetryAfter: time.Second, Err: context.DeadlineExceeded},
			connect.CodeUnavailable, "log did not answer", "", nil, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ce *connect.Error
			if !errors.As(Convert(ctx, log, "/x", tc.err), &ce) {
				t.Fatal("not a connect error")
			}
			if ce.Code() != tc.code {
				t.Fatalf("code %v, want %v", ce.Code(), tc.code)
			}
			if !strings.Contains(ce.Message(), tc.msg) || (tc.hidden != "" && strings.Contains(ce.Message(), tc.hidden)) {
				t.Fatalf("message %q", ce.Message())
			}
			var fields []string
			var wait time.Duration
			for _, d := range ce.Details() {
				v, err := d.Value()
				if err != nil {
					t.Fatal(err)
				}
				switch x := v.(type) {
				case *errdetails.BadRequest:
					for _, f := range x.FieldViolations {
						fields = append(fields, f.Field)
					}
				case *errdetails.RetryInfo:
					wait = x.RetryDelay.AsDuration()
				}
			}
			if fmt.Sprint(fields) != fmt.Sprint(tc.fields) && !(len(fields) == 0 && len(tc.fields) == 0) {
				t.Fatalf("fields %v, want %v", fields, tc.fields)
			}
			if wait != tc.retryWait {
				t.Fatalf("retry %v, want %v", wait, tc.retryWait)
			}
			if noRetry := ce.Meta().Get(NoRetryHeader) == "-1"; noRetry != (tc.code == connect.CodeUnavailable && tc.retryWait > 0) {
				t.Fatalf("pushback %q", ce.Meta().Get(NoRetryHeader))
			}
		})
	}
}
