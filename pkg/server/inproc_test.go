package server

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// TestInproc: a call through the in-process connection reaches the
// connect handler with the caller's metadata as headers and the loopback
// peer, and comes back with its answer, its header metadata, or its error
// with code, message and details (what REST turns into HTTP).
func TestInproc(t *testing.T) {
	const proc = "/test.v1.Echo/Echo"
	var gotAuth, gotPeer string
	var gotDeadline bool
	h := connect.NewUnaryHandler(proc, func(ctx context.Context, req *connect.Request[wrapperspb.StringValue]) (*connect.Response[wrapperspb.StringValue], error) {
		gotAuth, gotPeer = req.Header().Get("Authorization"), req.Peer().Addr
		_, gotDeadline = ctx.Deadline()
		switch req.Msg.Value {
		case "fail":
			e := connect.NewError(connect.CodeInvalidArgument, errors.New("bad field"))
			d, _ := connect.NewErrorDetail(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "value", Description: "no"}}})
			e.AddDetail(d)
			r, _ := connect.NewErrorDetail(&errdetails.RetryInfo{RetryDelay: durationpb.New(3 * time.Second)})
			e.AddDetail(r)
			return nil, e
		case "limit":
			return nil, connect.NewError(connect.CodeResourceExhausted, errors.New("slow down"))
		}
		resp := connect.NewResponse(wrapperspb.String("echo " + req.Msg.Value))
		resp.Header().Set("X-Answer", "42")
		return resp, nil
	})
	mux := http.NewServeMux()
	mux.Handle(proc, h)
	cc := &inproc{handler: mux}
	ctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(context.Background(), metadata.Pairs("authorization", "Bearer k")), time.Minute)
	defer cancel()

	var out wrapperspb.StringValue
	var hdr metadata.MD
	if err := cc.Invoke(ctx, proc, wrapperspb.String("hi"), &out, grpc.Header(&hdr)); err != nil {
		t.Fatal(err)
	}
	if out.Value != "echo hi" || gotAuth != "Bearer k" || gotPeer != "127.0.0.1:0" || !gotDeadline || hdr.Get("x-answer")[0] != "42" {
		t.Fatalf("answer %q, auth %q, peer %q, deadline %v, header %v", out.Value, gotAuth, gotPeer, gotDeadline, hdr)
	}

	err := cc.Invoke(ctx, proc, wrapperspb.String("fail"), &out)
	st, _ := status.FromError(err)
	if st.Code() != codes.InvalidArgument || st.Message() != "bad field" || len(st.Details()) != 2 {
		t.Fatalf("error %v with %d details", err, len(st.Details()))
	}
	if br, ok := st.Details()[0].(*errdetails.BadRequest); !ok || br.FieldViolations[0].Field != "value" {
		t.Fatalf("detail %v", st.Details()[0])
	}
	if ri, ok := st.Details()[1].(*errdetails.RetryInfo); !ok || ri.RetryDelay.AsDuration() != 3*time.Second {
		t.Fatalf("detail %v", st.Details()[1])
	}
	if err := cc.Invoke(ctx, proc, wrapperspb.String("limit"), &out); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("limit: %v", err)
	}
	if err := cc.Invoke(ctx, "/test.v1.Echo/Missing", wrapperspb.String("x"), &out); status.Code(err) != codes.Unimplemented {
		t.Fatalf("unknown method: %v", err)
	}
}
