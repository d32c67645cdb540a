// Package collectwire serves and forwards CollectService batches in their
// wire format, without decoding them into messages.
//
// A CollectRequest's events carry their params as google.protobuf.Value
// maps: decoding one into Go messages costs a message and a map entry per
// parameter, and encoding it again as much. The gateway only reads a few
// fields of a batch before forwarding it, and collect validates and
// enriches it in one pass over its bytes; both mount the service with Mount,
// whose codecs hand them each batch as bytes. Connect JSON requests are
// converted to the binary form once, on arrival.
package collectwire

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	collectv1 "github.com/sextant-analytics/sextant/gen/sextant/collect/v1"
	"github.com/sextant-analytics/sextant/gen/sextant/collect/v1/collectv1connect"
	"github.com/sextant-analytics/sextant/pkg/ackstream"
	"github.com/sextant-analytics/sextant/pkg/apierror"
	"github.com/sextant-analytics/sextant/pkg/server"
)

// ErrMalformed is the error of bytes that are not a protobuf message.
var ErrMalformed = errors.New("malformed protobuf")

// Batch is a CollectRequest in its wire format.
type Batch struct{ Bytes []byte }

// StreamRequest is a StreamCollectRequest: its sequence and its batch's
// bytes (nil when the message has no batch).
type StreamRequest struct {
	Sequence uint64
	Batch    []byte
}

// Wire field numbers of StreamCollectRequest.
const (
	fieldSequence = 1
	fieldBatch    = 2
)

// Unmarshal decodes a StreamCollectRequest, keeping its batch as bytes (a
// copy: b is not retained).
func (s *StreamRequest) Unmarshal(b []byte) error {
	*s = StreamRequest{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return ErrMalformed
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return ErrMalformed
		}
		switch {
		case num == fieldSequence && typ == protowire.VarintType:
			s.Sequence, _ = protowire.ConsumeVarint(b[n:])
		case num == fieldBatch && typ == protowire.BytesType:
			v, _ := protowire.ConsumeBytes(b[n:])
			// Repeated occurrences of a message field merge, which their
			// encodings do when concatenated.
			s.Batch = append(s.Batch, v...)
			if s.Batch == nil {
				s.Batch = []byte{}
			}
		}
		b = b[n+m:]
	}
	return nil
}

// BatchFunc handles one batch's bytes.
type BatchFunc func(ctx context.Context, batch []byte) (*collectv1.CollectResponse, error)

// Handlers is what Mount serves.
type Handlers struct {
	// Open is called once per call or stream with its headers and peer, and
	// returns the function that handles its batches.
	Open func(h http.Header, peer connect.Peer) BatchFunc
	// MaxInFlight bounds the batches of one stream handled at once.
	MaxInFlight int
	// BatchError reports a rejected batch inside a stream: the package's
	// BatchError, with a logger.
	BatchError func(ctx context.Context, err error) *collectv1.BatchError
}

// Mount returns a CollectService handler that hands batches to h as bytes.
func (h Handlers) Mount(opts ...connect.HandlerOption) (string, http.Handler) {
	opts = append(opts, connect.WithCodec(ProtoCodec{}), connect.WithCodec(JSONCodec{}))
	mux := http.NewServeMux()
	mux.Handle(collectv1connect.CollectServiceCollectProcedure, connect.NewUnaryHandler(collectv1connect.CollectServiceCollectProcedure,
		func(ctx context.Context, req *connect.Request[Batch]) (*connect.Response[collectv1.CollectResponse], error) {
			resp, err := h.Open(req.Header(), req.Peer())(ctx, req.Msg.Bytes)
			if err != nil {
				return nil, err
			}
			return connect.NewResponse(resp), nil
		}, opts...))
	mux.Handle(collectv1connect.CollectServiceStreamCollectProcedure, connect.NewBidiStreamHandler(collectv1connect.CollectServiceStreamCollectProcedure,
		func(ctx context.Context, stream *connect.BidiStream[StreamRequest, collectv1.StreamCollectResponse]) error {
			handle := h.Open(stream.RequestHeader(), stream.Peer())
			return ackstream.Serve(ctx, h.MaxInFlight, stream.Receive, stream.Send,
				func(ctx context.Context, msg *StreamRequest) *collectv1.StreamCollectResponse {
					out := &collectv1.StreamCollectResponse{Sequence: msg.Sequence}
					var resp *collectv1.CollectResponse
					err := error(apierror.Invalid("invalid batch", apierror.Violation{Field: "batch", Description: "required", Code: apierror.ValueRequired}))
					if msg.Batch != nil {
						resp, err = handle(ctx, msg.Batch)
					}
					if err != nil {
						out.Error = h.BatchError(ctx, err)
					} else {
						out.Accepted, out.EventIds = resp.Accepted, resp.EventIds
					}
					return out
				})
		}, opts...))
	return "/" + collectv1connect.CollectServiceName + "/", mux
}

// ProtoCodec is connect's binary codec, keeping batches as bytes.
type ProtoCodec struct{}

// Name implements connect.Codec.
func (ProtoCodec) Name() string { return "proto" }

// Marshal implements connect.Codec.
func (ProtoCodec) Marshal(m any) ([]byte, error) { return marshalWith(proto.Marshal, m) }

// marshalWith encodes a protobuf message with marshal; anything else is an
// error (the codecs only ever encode responses).
func marshalWith(marshal func(proto.Message) ([]byte, error), m any) ([]byte, error) {
	pm, ok := m.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("collectwire: cannot encode %T", m)
	}
	return marshal(pm)
}

// Unmarshal implements connect.Codec.
func (ProtoCodec) Unmarshal(b []byte, m any) error {
	switch x := m.(type) {
	case *Batch:
		x.Bytes = append([]byte(nil), b...) // connect reuses b
		return nil
	case *StreamRequest:
		return x.Unmarshal(b)
	case proto.Message:
		return proto.Unmarshal(b, x)
	}
	return fmt.Errorf("collectwire: cannot decode %T", m)
}

// JSONCodec is connect's JSON codec: batches are converted to their binary
// form on arrival.
type JSONCodec struct{}

// Name implements connect.Codec.
func (JSONCodec) Name() string { return "json" }

// Marshal implements connect.Codec.
func (JSONCodec) Marshal(m any) ([]byte, error) {
	return marshalWith(protojson.MarshalOptions{}.Marshal, m)
}

// Unmarshal implements connect.Codec.
func (JSONCodec) Unmarshal(b []byte, m any) error {
	in := protojson.UnmarshalOptions{DiscardUnknown: true}
	switch x := m.(type) {
	case *Batch:
		req := &collectv1.CollectRequest{}
		if err := in.Unmarshal(b, req); err != nil {
			return err
		}
		enc, err := proto.Marshal(req)
		x.Bytes = enc
		return err
	case *StreamRequest:
		req := &collectv1.StreamCollectRequest{}
		if err := in.Unmarshal(b, req); err != nil {
			return err
		}
		*x = StreamRequest{Sequence: req.Sequence}
		if req.Batch != nil {
			enc, err := proto.Marshal(req.Batch)
			if err != nil {
				return err
			}
			x.Batch = append([]byte{}, enc...)
		}
		return nil
	case proto.Message:
		return in.Unmarshal(b, x)
	}
	return fmt.Errorf("collectwire: cannot decode %T", m)
}

// GRPCCodec is a gRPC client codec that sends a Batch's bytes as they are
// and decodes replies as protobuf.
type GRPCCodec struct{}

// Name implements encoding.Codec.
func (GRPCCodec) Name() string { return "proto" }

// Marshal implements encoding.Codec.
func (GRPCCodec) Marshal(v any) ([]byte, error) {
	if r, ok := v.(*Batch); ok {
		return r.Bytes, nil
	}
	return marshalWith(proto.Marshal, v)
}

// Unmarshal implements encoding.Codec.
func (GRPCCodec) Unmarshal(b []byte, v any) error {
	pm, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("collectwire: cannot decode %T", v)
	}
	return proto.Unmarshal(b, pm)
}

// Route serves POST /v1/collect directly (see server.Route): the JSON body
// is transcoded to the wire format (FromJSON) and handed to h's batch
// function with the request's own headers and peer.
func Route(h Handlers) server.Route {
	return server.Route{
		Pattern:   "POST /v1/collect",
		Procedure: collectv1connect.CollectServiceCollectProcedure,
		Decode:    func(body []byte) (any, error) { return FromJSON(body) },
		Call: func(ctx context.Context, r *http.Request, req any) (proto.Message, error) {
			return h.Open(r.Header, connect.Peer{Addr: r.RemoteAddr, Protocol: "http"})(ctx, req.([]byte))
		},
	}
}
