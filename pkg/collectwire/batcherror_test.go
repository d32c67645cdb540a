package collectwire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"

	collectv1 "github.com/sextant-analytics/sextant/gen/sextant/collect/v1"
	"github.com/sextant-analytics/sextant/pkg/apierror"
	"github.com/sextant-analytics/sextant/pkg/rpcerror"
)

// TestBatchError: collect's domain errors and the Connect errors the
// gateway gets from collect give the same BatchError; anything else is
// logged and masked.
func TestBatchError(t *testing.T) {
	invalid := &apierror.Error{Kind: apierror.InvalidArgument, Message: "2 events rejected", Violations: []apierror.Violation{
		{Field: "events[0].name", Description: "too long", Code: "NAME_INVALID"},
		{Field: "events[1].params.currency", Description: "unknown", Code: "VALUE_INVALID"},
	}}
	// The message is the domain error's, violations included.
	wantInvalid := `{"code":"INVALID_ARGUMENT","message":"2 events rejected: events[0].name: too long; events[1].params.currency: unknown","violations":[` +
		`{"fieldPath":"events[0].name","description":"too long","validationCode":"NAME_INVALID"},` +
		`{"fieldPath":"events[1].params.currency","description":"unknown","validationCode":"VALUE_INVALID"}]}`
	unavailable := &apierror.Error{Kind: apierror.Unavailable, Message: "the event log is unavailable; retry", RetryAfter: time.Second}
	wantUnavailable := `{"code":"UNAVAILABLE","message":"the event log is unavailable; retry"}`
	internal := fmt.Errorf("append: %w", errors.New("disk on fire"))
	wantInternal := `{"code":"INTERNAL","message":"internal error"}`
	for _, tc := range []struct {
		name   string
		err    error
		want   string
		logged bool
	}{
		{"domain error", invalid, wantInvalid, false},
		{"wrapped domain error", fmt.Errorf("batch: %w", invalid), wantInvalid, false},
		{"a backend's Connect error", rpcerror.Convert(context.Background(), slog.New(slog.DiscardHandler), "/x", invalid), wantInvalid, false},
		{"unavailable", unavailable, wantUnavailable, false},
		{"a backend's unavailable", rpcerror.Convert(context.Background(), slog.New(slog.DiscardHandler), "/x", unavailable), wantUnavailable, false},
		{"internal", internal, wantInternal, true},
		{"a backend's internal", connect.NewError(connect.CodeInternal, errors.New("internal error")), wantInternal, false},
		{"cancelled", context.Canceled, `{"code":"CANCELED","message":"context canceled"}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log bytes.Buffer
			be := BatchError(context.Background(), slog.New(slog.NewTextHandler(&log, nil)), tc.err)
			got, err := protojson.Marshal(be)
			if err != nil {
				t.Fatal(err)
			}
			if !jsonEqual(t, string(got), tc.want) {
				t.Errorf("BatchError(%v) = %s, want %s", tc.err, got, tc.want)
			}
			if logged := strings.Contains(log.String(), "disk on fire"); logged != tc.logged {
				t.Errorf("logged %v (%q), want %v", logged, log.String(), tc.logged)
			}
		})
	}
}

func jsonEqual(t *testing.T, a, b string) bool {
	t.Helper()
	var x, y collectv1.BatchError
	if err := protojson.Unmarshal([]byte(a), &x); err != nil {
		t.Fatal(err)
	}
	if err := protojson.Unmarshal([]byte(b), &y); err != nil {
		t.Fatal(err)
	}
	xa, _ := protojson.Marshal(&x)
	ya, _ := protojson.Marshal(&y)
	return string(xa) == string(ya)
}
