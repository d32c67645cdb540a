// Package rpcerror maps domain errors (apierror) to Connect/gRPC errors in
// one place, with field violations as google.rpc.BadRequest details and
// retry delays as google.rpc.RetryInfo. Internal errors are logged and
// masked.
package rpcerror

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	grpccodes "google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/sextant-analytics/sextant/pkg/apierror"
)

var codes = map[apierror.Kind]connect.Code{
	apierror.Internal:           connect.CodeInternal,
	apierror.InvalidArgument:    connect.CodeInvalidArgument,
	apierror.Unauthenticated:    connect.CodeUnauthenticated,
	apierror.PermissionDenied:   connect.CodePermissionDenied,
	apierror.NotFound:           connect.CodeNotFound,
	apierror.ResourceExhausted:  connect.CodeResourceExhausted,
	apierror.FailedPrecondition: connect.CodeFailedPrecondition,
	apierror.Unavailable:        connect.CodeUnavailable,
}

// NoRetryHeader is gRPC's server pushback trailer: a negative value tells
// gRPC clients with a retry policy not to retry the call.
const NoRetryHeader = "grpc-retry-pushback-ms"

// Code is the Connect/gRPC code of a domain error kind.
func Code(k apierror.Kind) connect.Code { return codes[k] }

// Convert turns err into a *connect.Error.
func Convert(ctx context.Context, logger *slog.Logger, procedure string, err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce
	}
	// A domain error says what to answer even when its cause is a
	// context's end (collect's own append timeout is UNAVAILABLE, not
	// DEADLINE_EXCEEDED).
	var ae *apierror.Error
	isDomain := errors.As(err, &ae) && ae.Kind != apierror.Internal
	switch {
	case isDomain:
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, err)
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, err)
	}
	if !isDomain {
		logger.ErrorContext(ctx, "internal error", "procedure", procedure, "err", err)
		return connect.NewError(connect.CodeInternal, errors.New("internal error"))
	}
	out := connect.NewError(codes[ae.Kind], errors.New(ae.Error()))
	if len(ae.Violations) > 0 {
		br := &errdetails.BadRequest{}
		for _, v := range ae.Violations {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
				Field: v.Field, Description: v.Description, Reason: v.Code,
			})
		}
		if d, derr := connect.NewErrorDetail(br); derr == nil {
			out.AddDetail(d)
		}
	}
	if ae.RetryAfter > 0 {
		if d, derr := connect.NewErrorDetail(&errdetails.RetryInfo{RetryDelay: durationpb.New(ae.RetryAfter)}); derr == nil {
			out.AddDetail(d)
		}
		if ae.Kind == apierror.Unavailable {
			// A dependency's outage, which the other copies share: gRPC
			// clients (the gateway) must not retry the call on them
			// (gRPC's server pushback), but answer it with its delay.
			out.Meta().Set(NoRetryHeader, "-1")
		}
	}
	return out
}

// Interceptor applies Convert to every handler's error.
type Interceptor struct{ Logger *slog.Logger }

func (i Interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		resp, err := next(ctx, req)
		if err != nil {
			return nil, Convert(ctx, i.Logger, req.Spec().Procedure, err)
		}
		return resp, nil
	}
}

func (i Interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i Interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		return Convert(ctx, i.Logger, conn.Spec().Procedure, next(ctx, conn))
	}
}

// WriteHTTP writes the REST API's error shape, {"code", "message",
// "details": []} (what grpc-gateway writes for a failed call), with an
// HTTP status of the caller's choosing: for answers given outside the
// gateway's calls (unknown routes and methods, per-address limits, pages).
func WriteHTTP(w http.ResponseWriter, status int, code grpccodes.Code, message string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	b, _ := json.Marshal(struct {
		Code    int32    `json:"code"`
		Message string   `json:"message"`
		Details []string `json:"details"`
	}{int32(code), message, []string{}})
	_, _ = w.Write(b)
}
