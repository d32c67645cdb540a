package collect

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	collectv1 "github.com/sextant-analytics/sextant/gen/sextant/collect/v1"
	eventv1 "github.com/sextant-analytics/sextant/gen/sextant/event/v1"
	"github.com/sextant-analytics/sextant/pkg/apierror"
	"github.com/sextant-analytics/sextant/pkg/eventlog"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)

const (
	uaIPhoneSafari  = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
	uaAndroidChrome = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36"
	uaWindowsChrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
	uaGooglebot     = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
	uaIPadSafari    = "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1"
)

func testMeta() Meta {
	return Meta{
		PropertyID: "prop-1",
		UserAgent:  uaWindowsChrome,
		Now:        testNow,
	}
}

func micros(t time.Time) int64 { return t.UnixMicro() }

// parseReq decodes a JSON CollectRequest or fails the test.
func parseReq(t testing.TB, js string) *collectv1.CollectRequest {
	t.Helper()
	req := &collectv1.CollectRequest{}
	if err := protojson.Unmarshal([]byte(js), req); err != nil {
		t.Fatalf("bad test JSON %s: %v", js, err)
	}
	return req
}

// asInvalid returns the violations of an InvalidArgument *apierror.Error.
func asInvalid(t testing.TB, err error) []apierror.Violation {
	t.Helper()
	var ae *apierror.Error
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not an *apierror.Error", err, err)
	}
	if ae.Kind != apierror.InvalidArgument {
		t.Fatalf("kind = %v, want InvalidArgument", ae.Kind)
	}
	return ae.Violations
}

// checkInvariants is shared by the tests and the fuzz targets.
func checkInvariants(t testing.TB, req *collectv1.CollectRequest, meta Meta, lim Limits, evs []*eventv1.Event, err error) {
	t.Helper()
	if err != nil {
		if evs != nil {
			t.Fatalf("events returned with an error")
		}
		vs := asInvalid(t, err)
		if len(vs) == 0 {
			t.Fatalf("InvalidArgument without violations")
		}
		for _, v := range vs {
			if v.Field == "" || v.Code == "" || v.Description == "" {
				t.Fatalf("incomplete violation %+v", v)
			}
			switch v.Code {
			case apierror.ValueInvalid, apierror.ValueRequired, apierror.NameInvalid, apierror.NameReserved,
				apierror.ValueOutOfBounds, apierror.ExceededMaxEntities, apierror.NameDuplicated:
			default:
				t.Fatalf("unknown code in %+v", v)
			}
		}
		return
	}
	if len(evs) != len(req.GetEvents()) {
		t.Fatalf("got %d events for %d", len(evs), len(req.GetEvents()))
	}
	lim = lim.withDefaults()
	minT, maxT := meta.Now.Add(-max(lim.MaxPast, meta.MaxPast)), meta.Now.Add(lim.MaxFuture)
	ids := map[string]bool{}
	for i, ev := range evs {
		in := req.GetEvents()[i]
		if want := in.GetEventId(); want != "" {
			if ev.GetEventId() != want {
				t.Fatalf("event %d: id %q, want client id %q", i, ev.GetEventId(), want)
			}
		} else if !isHex32(ev.GetEventId()) {
			t.Fatalf("event %d: generated id %q is not 32 lowercase hex", i, ev.GetEventId())
		}
		if ids[ev.GetEventId()] {
			t.Fatalf("event %d: duplicate id %q", i, ev.GetEventId())
		}
		ids[ev.GetEventId()] = true
		if code, _ := eventNameProblem(ev.GetName()); code != "" || ev.GetName() != in.GetName() {
			t.Fatalf("event %d: bad name %q", i, ev.GetName())
		}
		if ev.GetPropertyId() != meta.PropertyID || ev.GetPropertyId() == "" {
			t.Fatalf("event %d: property %q", i, ev.GetPropertyId())
		}
		if ev.GetClientId() == "" {
			t.Fatalf("event %d: no client id", i)
		}
		et := ev.GetEventTime().AsTime()
		if et.Before(minT) || et.After(maxT) {
			t.Fatalf("event %d: event time %v outside [%v, %v]", i, et, minT, maxT)
		}
		if !ev.GetReceiveTime().AsTime().Equal(meta.Now) {
			t.Fatalf("event %d: receive time %v", i, ev.GetReceiveTime().AsTime())
		}
		if ev.GetSchemaVersion() != SchemaVersion {
			t.Fatalf("event %d: schema version %d", i, ev.GetSchemaVersion())
		}
		for _, k := range []string{pPageLocation, pPageReferrer, pPageTitle, pGASessionID, pSessionID, pGASessionNumber, pEngagementTime} {
			if _, ok := ev.GetParams()[k]; ok {
				t.Fatalf("event %d: promoted param %s left in params", i, k)
			}
		}
		for k, v := range ev.GetParams() {
			if v.GetKind() == nil {
				t.Fatalf("event %d: param %s has no value", i, k)
			}
		}
		if ev.GetTrafficSource().GetSource() == "" || ev.GetTrafficSource().GetMedium() == "" {
			t.Fatalf("event %d: no traffic source", i)
		}
		if _, err := proto.Marshal(ev); err != nil {
			t.Fatalf("event %d does not marshal: %v", i, err)
		}
	}
}

func isHex32(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !('0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f') {
			return false
		}
	}
	return true
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// buildEvents runs Encode on req's encoding and decodes the events it
// would append, checking their keys and ids against the events.
func buildEvents(req *collectv1.CollectRequest, meta Meta, lim Limits) ([]*eventv1.Event, error) {
	b, err := proto.Marshal(req)
	if err != nil {
		return nil, err
	}
	return decodeEncoded(NewEncoder(lim).Encode(b, meta))
}

// decodeEncoded decodes the events of an Encode (passing its error on).
func decodeEncoded(out Encoded, err error) ([]*eventv1.Event, error) {
	if err != nil {
		return nil, err
	}
	if len(out.IDs) != len(out.Messages) {
		return nil, fmt.Errorf("%d ids for %d events", len(out.IDs), len(out.Messages))
	}
	evs := make([]*eventv1.Event, len(out.Messages))
	for i, m := range out.Messages {
		ev := &eventv1.Event{}
		if err := proto.Unmarshal(m.Value, ev); err != nil {
			return nil, fmt.Errorf("event %d does not decode: %w", i, err)
		}
		if key := ev.PropertyId + "/" + ev.ClientId; string(m.Key) != key {
			return nil, fmt.Errorf("event %d: key %q, want %q", i, m.Key, key)
		}
		if out.IDs[i] != ev.EventId {
			return nil, fmt.Errorf("event %d: id %q answered, %q stored", i, out.IDs[i], ev.EventId)
		}
		if m.Headers[eventlog.HeaderContentType] != eventlog.ContentTypeEvent {
			return nil, fmt.Errorf("event %d: headers %v", i, m.Headers)
		}
		evs[i] = ev
	}
	return evs, nil
}
