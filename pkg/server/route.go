package server

import (
	"bytes"
	"context"
	"errors"
	"net/http"

	"connectrpc.com/connect"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/sextant-analytics/sextant/pkg/rpcerror"
)

// Route is a REST route of a unary RPC served without grpc-gateway and the
// in-process call behind it: the body is decoded once, straight into what
// the handler takes, and the handler runs with the request's own headers
// and peer. Authentication, error mapping and the JSON error shape are the
// REST gateway's (same codes, details, Retry-After), so a client cannot
// tell the two apart. For the hottest route, POST /v1/collect, the
// gateway's decode into messages, re-encode and second handler were most
// of a single-event request's cost.
type Route struct {
	Pattern   string // a net/http pattern: "POST /v1/collect"
	Procedure string // the RPC the route is, for its key scopes and logs
	// Decode reads the body; its error is the client's (InvalidArgument).
	Decode func(body []byte) (any, error)
	// Call handles the decoded request under an authenticated context.
	Call func(ctx context.Context, r *http.Request, req any) (proto.Message, error)
}

// Authenticate checks a request's Authorization header for a procedure and
// returns the context carrying its principal (auth.Interceptor's).
type Authenticate func(ctx context.Context, procedure string, h http.Header) (context.Context, error)

// route serves rt.
func (s *Server) route(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		buf := bufs.Get().(*bytes.Buffer)
		defer func() {
			buf.Reset()
			bufs.Put(buf)
		}()
		var resp proto.Message
		_, err := buf.ReadFrom(r.Body)
		if err != nil {
			err = grpcstatus.Error(codes.InvalidArgument, err.Error())
		}
		var req any
		if err == nil {
			if req, err = rt.Decode(buf.Bytes()); err != nil {
				err = grpcstatus.Error(codes.InvalidArgument, err.Error())
			}
		}
		if err == nil {
			if s.cfg.Authenticate == nil { // fail closed
				err = grpcstatus.Error(codes.Unauthenticated, "this server authenticates no direct route")
			} else {
				ctx, err = s.cfg.Authenticate(ctx, rt.Procedure, r.Header)
			}
		}
		if err == nil {
			resp, err = rt.Call(ctx, r, req)
		}
		if err != nil {
			if _, ok := grpcstatus.FromError(err); !ok {
				err = statusOf(rpcerror.Convert(ctx, s.cfg.Logger, rt.Procedure, err))
			}
			s.restError(ctx, s.restMux, restMarshaler, w, r, err)
			return
		}
		out, err := restMarshaler.Marshal(resp)
		if err != nil {
			s.restError(ctx, s.restMux, restMarshaler, w, r, grpcstatus.Error(codes.Internal, "encode the answer"))
			return
		}
		w.Header().Set("Content-Type", restMarshaler.ContentType(resp))
		_, _ = w.Write(out)
	})
}

// statusOf turns a *connect.Error into the gRPC status grpc-gateway maps
// to an HTTP answer, details included.
func statusOf(err error) error {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return grpcstatus.Error(codes.Internal, "internal error")
	}
	st := &status.Status{Code: int32(ce.Code()), Message: ce.Message()}
	for _, d := range ce.Details() {
		st.Details = append(st.Details, &anypb.Any{TypeUrl: "type.googleapis.com/" + d.Type(), Value: d.Bytes()})
	}
	return grpcstatus.ErrorProto(st)
}

// restMarshaler is the REST gateway's JSON: unpopulated fields left out,
// unknown fields refused.
var restMarshaler = &runtime.JSONPb{
	MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: false},
	UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
}
