package collectwire

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	collectv1 "github.com/sextant-analytics/sextant/gen/sextant/collect/v1"
	"github.com/sextant-analytics/sextant/gen/sextant/collect/v1/collectv1connect"
	"github.com/sextant-analytics/sextant/pkg/rpcerror"
)

// BatchError is the answer to a rejected batch inside a stream (and what
// the Measurement Protocol and gtag endpoints read a rejection from): the
// code and message the unary call would have failed with, and every field
// violation. err is a domain error (collect's own) or a backend's Connect
// error (the gateway's forwarded calls); both go through rpcerror.Convert,
// so a domain error is mapped as the interceptor maps it, a Connect error
// is kept, and any other error is logged to logger and masked as INTERNAL.
// The violations are those of the error's google.rpc.BadRequest details.
func BatchError(ctx context.Context, logger *slog.Logger, err error) *collectv1.BatchError {
	out := &collectv1.BatchError{Code: "INTERNAL", Message: "internal error"}
	var ce *connect.Error
	if !errors.As(rpcerror.Convert(ctx, logger, collectv1connect.CollectServiceStreamCollectProcedure, err), &ce) {
		return out
	}
	out.Code = strings.ToUpper(ce.Code().String())
	out.Message = ce.Message()
	for _, d := range ce.Details() {
		v, derr := d.Value()
		if derr != nil {
			continue
		}
		if br, ok := v.(*errdetails.BadRequest); ok {
			for _, f := range br.FieldViolations {
				out.Violations = append(out.Violations, &collectv1.FieldViolation{FieldPath: f.Field, Description: f.Description, ValidationCode: f.Reason})
			}
		}
	}
	return out
}
