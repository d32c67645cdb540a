package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	collectv1 "github.com/sextant-analytics/sextant/gen/sextant/collect/v1"
	"github.com/sextant-analytics/sextant/gen/sextant/collect/v1/collectv1connect"
	"github.com/sextant-analytics/sextant/pkg/ackstream"
	"github.com/sextant-analytics/sextant/pkg/apierror"
	"github.com/sextant-analytics/sextant/pkg/auth"
	"github.com/sextant-analytics/sextant/pkg/property"
)

// Collect batches pass through the gateway as bytes.
//
// Decoding a batch (its params are google.protobuf.Value maps) and encoding
// it again to forward it was nearly all of the gateway's work. The gateway
// needs three things of a batch: its property (for the key check), its
// number of events (for the rate limit) and an id on every event (so a
// batch retried on another collect copy is deduplicated). It reads them
// from the wire format, appends an event_id field to the events without
// one, and forwards the bytes with a codec that does not touch them. Connect
// JSON requests are converted to the binary form once, on arrival.

// rawBatch is a CollectRequest in its wire format.
type rawBatch struct{ b []byte }

// rawStream is a StreamCollectRequest: its sequence and its batch's bytes
// (nil when the message has no batch).
type rawStream struct {
	sequence uint64
	batch    []byte
}

// Wire field numbers this file reads.
const (
	fieldPropertyID = 1  // CollectRequest.property_id
	fieldEvents     = 12 // CollectRequest.events
	fieldEventID    = 3  // Event.event_id
	fieldSequence   = 1  // StreamCollectRequest.sequence
	fieldBatch      = 2  // StreamCollectRequest.batch
)

var errMalformed = errors.New("malformed protobuf")

// inspect reads a batch's property id and number of events, and returns
// the batch with an id on every event (b itself when none lacked one).
func inspect(b []byte) (propertyID string, events int, out []byte, err error) {
	var missing []int // indexes of events without an id
	for rest := b; len(rest) > 0; {
		num, typ, n := protowire.ConsumeTag(rest)
		if n < 0 {
			return "", 0, nil, errMalformed
		}
		m := protowire.ConsumeFieldValue(num, typ, rest[n:])
		if m < 0 {
			return "", 0, nil, errMalformed
		}
		if typ == protowire.BytesType && (num == fieldPropertyID || num == fieldEvents) {
			v, _ := protowire.ConsumeBytes(rest[n:])
			if num == fieldPropertyID {
				propertyID = string(v)
			} else {
				has, err := hasEventID(v)
				if err != nil {
					return "", 0, nil, err
				}
				if !has {
					missing = append(missing, events)
				}
				events++
			}
		}
		rest = rest[n+m:]
	}
	if len(missing) == 0 {
		return propertyID, events, b, nil
	}
	// Copy the batch, appending an event_id to the events in missing: a
	// parser keeps the last value of a field, so an empty id is replaced.
	out = make([]byte, 0, len(b)+len(missing)*(2+32+2))
	i := 0
	for rest := b; len(rest) > 0; {
		num, typ, n := protowire.ConsumeTag(rest)
		m := protowire.ConsumeFieldValue(num, typ, rest[n:])
		if num == fieldEvents && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(rest[n:])
			if len(missing) > 0 && missing[0] == i {
				missing = missing[1:]
				id := newEventID()
				ev := protowire.AppendTag(append([]byte(nil), v...), fieldEventID, protowire.BytesType)
				ev = protowire.AppendString(ev, id)
				out = protowire.AppendTag(out, fieldEvents, protowire.BytesType)
				out = protowire.AppendBytes(out, ev)
				i++
				rest = rest[n+m:]
				continue
			}
			i++
		}
		out = append(out, rest[:n+m]...)
		rest = rest[n+m:]
	}
	return propertyID, events, out, nil
}

// hasEventID reports whether an encoded Event has a non-empty event_id
// (the last one written, as a parser would read it).
func hasEventID(ev []byte) (bool, error) {
	has := false
	for len(ev) > 0 {
		num, typ, n := protowire.ConsumeTag(ev)
		if n < 0 {
			return false, errMalformed
		}
		m := protowire.ConsumeFieldValue(num, typ, ev[n:])
		if m < 0 {
			return false, errMalformed
		}
		if num == fieldEventID && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(ev[n:])
			has = len(v) > 0
		}
		ev = ev[n+m:]
	}
	return has, nil
}

// prepareRaw is prepare for a batch in wire format.
func (g *Gateway) prepareRaw(ctx context.Context, b []byte) ([]byte, error) {
	requested, n, out, err := inspect(b)
	if err != nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("batch: %w", err))
	}
	pid, err := auth.Authorize(ctx, requested, property.Write)
	if err != nil {
		return nil, err
	}
	if err := g.take(pid, n); err != nil {
		return nil, err
	}
	return out, nil
}

func (g *Gateway) forwardRaw(ctx context.Context, h http.Header, peer string, b []byte) (*collectv1.CollectResponse, error) {
	b, err := g.prepareRaw(ctx, b)
	if err != nil {
		return nil, err
	}
	octx := g.outgoing(ctx, h, peer)
	return g.retryCollect(ctx, func() (*collectv1.CollectResponse, error) {
		resp := &collectv1.CollectResponse{}
		err := g.collect.Invoke(octx, collectv1connect.CollectServiceCollectProcedure, &rawBatch{b: b}, resp, grpc.ForceCodec(grpcRawCodec{}))
		return resp, err
	})
}

// MountCollect returns the gateway's CollectService handler: the same API
// as collect.Service's, batches forwarded as bytes. (The gateway has no
// typed Collect methods: it never decodes a batch.)
func (g *Gateway) MountCollect(opts ...connect.HandlerOption) (string, http.Handler) {
	opts = append(opts, connect.WithCodec(rawProtoCodec{}), connect.WithCodec(rawJSONCodec{}))
	mux := http.NewServeMux()
	mux.Handle(collectv1connect.CollectServiceCollectProcedure, connect.NewUnaryHandler(collectv1connect.CollectServiceCollectProcedure,
		func(ctx context.Context, req *connect.Request[rawBatch]) (*connect.Response[collectv1.CollectResponse], error) {
			resp, err := g.forwardRaw(ctx, req.Header(), req.Peer().Addr, req.Msg.b)
			if err != nil {
				return nil, err
			}
			return connect.NewResponse(resp), nil
		}, opts...))
	mux.Handle(collectv1connect.CollectServiceStreamCollectProcedure, connect.NewBidiStreamHandler(collectv1connect.CollectServiceStreamCollectProcedure,
		func(ctx context.Context, stream *connect.BidiStream[rawStream, collectv1.StreamCollectResponse]) error {
			h, peer := stream.RequestHeader(), stream.Peer().Addr
			return ackstream.Serve(ctx, g.cfg.MaxInFlight, stream.Receive, stream.Send,
				func(ctx context.Context, msg *rawStream) *collectv1.StreamCollectResponse {
					out := &collectv1.StreamCollectResponse{Sequence: msg.sequence}
					var resp *collectv1.CollectResponse
					err := error(apierror.Invalid("invalid batch", apierror.Violation{Field: "batch", Description: "required", Code: apierror.ValueRequired}))
					if msg.batch != nil {
						resp, err = g.forwardRaw(ctx, h, peer, msg.batch)
					}
					if err != nil {
						out.Error = batchError(err)
					} else {
						out.Accepted, out.EventIds = resp.Accepted, resp.EventIds
					}
					return out
				})
		}, opts...))
	return "/" + collectv1connect.CollectServiceName + "/", mux
}

// rawProtoCodec is connect's binary codec, keeping collect batches as bytes.
type rawProtoCodec struct{}

func (rawProtoCodec) Name() string { return "proto" }

func (rawProtoCodec) Marshal(m any) ([]byte, error) { return marshalWith(proto.Marshal, m) }

// marshalWith encodes a protobuf message with marshal; anything else is an
// error (the codecs only ever encode responses).
func marshalWith(marshal func(proto.Message) ([]byte, error), m any) ([]byte, error) {
	pm, ok := m.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("gateway: cannot encode %T", m)
	}
	return marshal(pm)
}

func (rawProtoCodec) Unmarshal(b []byte, m any) error {
	switch x := m.(type) {
	case *rawBatch:
		x.b = append([]byte(nil), b...) // connect reuses b
		return nil
	case *rawStream:
		return x.unmarshal(b)
	case proto.Message:
		return proto.Unmarshal(b, x)
	}
	return fmt.Errorf("gateway: cannot decode %T", m)
}

func (s *rawStream) unmarshal(b []byte) error {
	*s = rawStream{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errMalformed
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return errMalformed
		}
		switch {
		case num == fieldSequence && typ == protowire.VarintType:
			s.sequence, _ = protowire.ConsumeVarint(b[n:])
		case num == fieldBatch && typ == protowire.BytesType:
			v, _ := protowire.ConsumeBytes(b[n:])
			// Repeated occurrences of a message field merge: append.
			s.batch = append(s.batch, v...)
			if s.batch == nil {
				s.batch = []byte{}
			}
		}
		b = b[n+m:]
	}
	return nil
}

// rawJSONCodec is connect's JSON codec: collect batches are converted to
// their binary form on arrival.
type rawJSONCodec struct{}

func (rawJSONCodec) Name() string { return "json" }

func (rawJSONCodec) Marshal(m any) ([]byte, error) {
	return marshalWith(protojson.MarshalOptions{}.Marshal, m)
}

func (rawJSONCodec) Unmarshal(b []byte, m any) error {
	in := protojson.UnmarshalOptions{DiscardUnknown: true}
	switch x := m.(type) {
	case *rawBatch:
		req := &collectv1.CollectRequest{}
		if err := in.Unmarshal(b, req); err != nil {
			return err
		}
		enc, err := proto.Marshal(req)
		x.b = enc
		return err
	case *rawStream:
		req := &collectv1.StreamCollectRequest{}
		if err := in.Unmarshal(b, req); err != nil {
			return err
		}
		*x = rawStream{sequence: req.Sequence}
		if req.Batch != nil {
			enc, err := proto.Marshal(req.Batch)
			if err != nil {
				return err
			}
			x.batch = append([]byte{}, enc...)
		}
		return nil
	case proto.Message:
		return in.Unmarshal(b, x)
	}
	return fmt.Errorf("gateway: cannot decode %T", m)
}

// grpcRawCodec sends a rawBatch's bytes as they are and decodes replies as
// protobuf.
type grpcRawCodec struct{}

func (grpcRawCodec) Name() string { return "proto" }

func (grpcRawCodec) Marshal(v any) ([]byte, error) {
	if r, ok := v.(*rawBatch); ok {
		return r.b, nil
	}
	return marshalWith(proto.Marshal, v)
}

func (grpcRawCodec) Unmarshal(b []byte, v any) error {
	pm, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("gateway: cannot decode %T", v)
	}
	return proto.Unmarshal(b, pm)
}
