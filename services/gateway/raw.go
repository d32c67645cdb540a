package gateway

import (
	"context"
	"fmt"
	"net/http"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"

	collectv1 "github.com/sextant-analytics/sextant/gen/sextant/collect/v1"
	"github.com/sextant-analytics/sextant/gen/sextant/collect/v1/collectv1connect"
	"github.com/sextant-analytics/sextant/pkg/auth"
	"github.com/sextant-analytics/sextant/pkg/collectwire"
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

// Wire field numbers this file reads.
const (
	fieldPropertyID = 1  // CollectRequest.property_id
	fieldEvents     = 12 // CollectRequest.events
	fieldEventID    = 3  // Event.event_id
)

// inspect reads a batch's property id and number of events, and returns
// the batch with an id on every event (b itself when none lacked one).
func inspect(b []byte) (propertyID string, events int, out []byte, err error) {
	var missing []int // indexes of events without an id
	for rest := b; len(rest) > 0; {
		num, typ, n := protowire.ConsumeTag(rest)
		if n < 0 {
			return "", 0, nil, collectwire.ErrMalformed
		}
		m := protowire.ConsumeFieldValue(num, typ, rest[n:])
		if m < 0 {
			return "", 0, nil, collectwire.ErrMalformed
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
			return false, collectwire.ErrMalformed
		}
		m := protowire.ConsumeFieldValue(num, typ, ev[n:])
		if m < 0 {
			return false, collectwire.ErrMalformed
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
		err := g.collect.Invoke(octx, collectv1connect.CollectServiceCollectProcedure, &collectwire.Batch{Bytes: b}, resp, grpc.ForceCodec(collectwire.GRPCCodec{}))
		return resp, err
	})
}

// CollectHandlers serve the gateway's CollectService: the same API as
// collect's, batches forwarded as bytes. (The gateway has no typed Collect
// methods: it never decodes a batch.)
func (g *Gateway) CollectHandlers() collectwire.Handlers {
	return collectwire.Handlers{
		Open: func(h http.Header, peer connect.Peer) collectwire.BatchFunc {
			return func(ctx context.Context, b []byte) (*collectv1.CollectResponse, error) {
				return g.forwardRaw(ctx, h, peer.Addr, b)
			}
		},
		MaxInFlight: g.cfg.MaxInFlight,
		BatchError: func(ctx context.Context, err error) *collectv1.BatchError {
			return collectwire.BatchError(ctx, g.cfg.Logger, err)
		},
	}
}
