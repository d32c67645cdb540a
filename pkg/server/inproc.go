package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// inproc is the connection REST calls the services through: a unary call
// runs the service's connect handler in this process (Connect protocol,
// binary protobuf), so a REST request costs its JSON decode, one protobuf
// encode and decode and the handler, with the same interceptors (auth,
// error mapping) as gRPC, and no loopback TCP, HTTP/2 framing or second
// goroutine hand-off. Streaming calls go over the loopback gRPC
// connection.
type inproc struct {
	handler http.Handler
	stream  grpc.ClientConnInterface
}

var _ grpc.ClientConnInterface = (*inproc)(nil)

// loopbackPeer is the address the services see a REST call come from: the
// server itself, a trusted proxy whose X-Forwarded-For (the REST client's
// address, set by grpc-gateway) they believe, as with the loopback
// connection.
const loopbackPeer = "127.0.0.1:0"

var bufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (c *inproc) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return c.stream.NewStream(ctx, desc, method, opts...)
}

func (c *inproc) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	noteREST(ctx)
	in, ok := args.(proto.Message)
	out, ok2 := reply.(proto.Message)
	if !ok || !ok2 {
		return grpcstatus.Errorf(codes.Internal, "server: in-process call of %s with non-protobuf messages", method)
	}
	body, err := proto.Marshal(in)
	if err != nil {
		return grpcstatus.Errorf(codes.Internal, "server: encode %s request: %v", method, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, method, bytes.NewReader(body))
	if err != nil {
		return grpcstatus.Errorf(codes.Internal, "server: %s: %v", method, err)
	}
	req.RemoteAddr = loopbackPeer
	req.ContentLength = int64(len(body))
	h := req.Header
	h.Set("Content-Type", "application/proto")
	h.Set("Connect-Protocol-Version", "1")
	if d, ok := ctx.Deadline(); ok {
		ms := time.Until(d).Milliseconds()
		if ms <= 0 {
			return grpcstatus.Error(codes.DeadlineExceeded, "deadline exceeded before the call")
		}
		h.Set("Connect-Timeout-Ms", strconv.FormatInt(ms, 10))
	}
	if md, ok := metadata.FromOutgoingContext(ctx); ok {
		for k, vs := range md {
			if strings.HasSuffix(k, "-bin") || k == "content-type" || k == "te" || strings.HasPrefix(k, "grpc-") || strings.HasPrefix(k, "connect-") {
				continue
			}
			for _, v := range vs {
				h.Add(k, v)
			}
		}
	}
	w := &recorder{header: http.Header{}, body: bufs.Get().(*bytes.Buffer)}
	defer func() {
		w.body.Reset()
		bufs.Put(w.body)
	}()
	c.handler.ServeHTTP(w, req)
	for _, o := range opts {
		if ho, ok := o.(grpc.HeaderCallOption); ok {
			*ho.HeaderAddr = headerMD(w.header)
		}
	}
	if w.code == 0 {
		w.code = http.StatusOK
	}
	if w.code != http.StatusOK {
		return connectError(w.code, w.body.Bytes())
	}
	if err := proto.Unmarshal(w.body.Bytes(), out); err != nil {
		return grpcstatus.Errorf(codes.Internal, "server: decode %s answer: %v", method, err)
	}
	return nil
}

// headerMD turns response headers into gRPC header metadata (what
// grpc-gateway forwards as Grpc-Metadata-*).
func headerMD(h http.Header) metadata.MD {
	md := metadata.MD{}
	for k, vs := range h {
		k = strings.ToLower(k)
		if k == "content-type" || k == "content-length" || strings.HasPrefix(k, "connect-") {
			continue
		}
		md[k] = append(md[k], vs...)
	}
	return md
}

// connectError decodes a Connect unary error (a JSON body) into the gRPC
// status grpc-gateway maps to an HTTP answer, details included.
func connectError(httpCode int, body []byte) error {
	var e struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Details []struct {
			Type  string `json:"type"`
			Value string `json:"value"`
		} `json:"details"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Code == "" {
		return grpcstatus.Errorf(codeOfHTTP(httpCode), "HTTP %d: %s", httpCode, bytes.TrimSpace(body))
	}
	st := &status.Status{Code: int32(codeOf(e.Code)), Message: e.Message}
	for _, d := range e.Details {
		v, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(d.Value, "="))
		if err != nil {
			continue
		}
		st.Details = append(st.Details, &anypb.Any{TypeUrl: "type.googleapis.com/" + d.Type, Value: v})
	}
	return grpcstatus.ErrorProto(st)
}

var connectCodes = map[string]codes.Code{
	"canceled": codes.Canceled, "unknown": codes.Unknown, "invalid_argument": codes.InvalidArgument,
	"deadline_exceeded": codes.DeadlineExceeded, "not_found": codes.NotFound, "already_exists": codes.AlreadyExists,
	"permission_denied": codes.PermissionDenied, "resource_exhausted": codes.ResourceExhausted,
	"failed_precondition": codes.FailedPrecondition, "aborted": codes.Aborted, "out_of_range": codes.OutOfRange,
	"unimplemented": codes.Unimplemented, "internal": codes.Internal, "unavailable": codes.Unavailable,
	"data_loss": codes.DataLoss, "unauthenticated": codes.Unauthenticated,
}

func codeOf(s string) codes.Code {
	if c, ok := connectCodes[s]; ok {
		return c
	}
	return codes.Unknown
}

// codeOfHTTP maps an HTTP status without a Connect error body (a body too
// large, a proxy's answer) as Connect does.
func codeOfHTTP(s int) codes.Code {
	switch s {
	case http.StatusBadRequest:
		return codes.Internal
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusNotFound:
		return codes.Unimplemented
	case http.StatusRequestEntityTooLarge:
		return codes.ResourceExhausted
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return codes.Unavailable
	}
	return codes.Unknown
}

// recorder is the in-process response writer.
type recorder struct {
	header http.Header
	body   *bytes.Buffer
	code   int
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) Write(p []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.body.Write(p)
}

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

// Flush is a no-op: the answer is read once the handler returned.
func (r *recorder) Flush() {}
