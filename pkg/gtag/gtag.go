// Package gtag serves the wire protocol of Google's gtag.js (GA4,
// protocol v2) at /g/collect, so that a site keeps Google's tag and only
// sets its server_container_url (or transport_url) to Sextant. A request
// carries the parameters shared by its hits in the query string (tid, the
// property's measurement id; cid, the client id; sid, sct, seg, dl, dr, dt,
// ul, sr, …) and, in a POST body, zero or more hits, one per line, each a
// query string of its own parameters over the shared ones (en, the event
// name; _et, engagement time; ep.*/epn.* event parameters; up.*/upn.* user
// properties; pr1, pr2, … the ecommerce items; _fv and _ss, the first
// visit and session start flags). Each
// request becomes one batch of the CollectService, as /v1/collect's: the
// hits are validated, enriched and stored exactly as one. Hits carry no
// secret (the tag runs in the visitor's browser): the measurement id names
// the property, whose allowed origins collect enforces. Google answers 204
// to anything; Sextant answers 204 when stored and 400 with the reasons
// when not (the tag ignores either).
package gtag

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	collectv1 "github.com/sextant-analytics/sextant/gen/sextant/collect/v1"
	"github.com/sextant-analytics/sextant/pkg/auth"
	"github.com/sextant-analytics/sextant/pkg/collectwire"
	"github.com/sextant-analytics/sextant/pkg/mp"
	"github.com/sextant-analytics/sextant/pkg/property"
)

// Path is where gtag.js sends hits.
const Path = "/g/collect"

// MaxBodyBytes bounds a request (gtag.js batches stay far below it).
const MaxBodyBytes = 64 << 10

// MaxHits bounds the hits of one request.
const MaxHits = 50

// Properties finds a property (the registry).
type Properties interface {
	Get(ctx context.Context, id string) (property.Property, error)
}

// Config configures the handler.
type Config struct {
	Properties Properties
	// Collect handles the batches: collect's handlers, or the gateway's.
	Collect collectwire.Handlers
	Logger  *slog.Logger
}

type handler struct{ cfg Config }

// Handler serves Path.
func Handler(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &handler{cfg: cfg}
}

// Message is one reason a request was refused, in the shape of the
// Measurement Protocol's validation messages.
type Message = mp.Message

func msg(path, desc, code string) Message {
	return Message{FieldPath: path, Description: desc, ValidationCode: code}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET, POST")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"error": "gtag hits are GET or POST"})
		return
	}
	shared, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		refuse(w, msg("", "the query string does not parse: "+err.Error(), "VALUE_INVALID"))
		return
	}
	var lines []string
	if r.Method == http.MethodPost {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{"validationMessages": []Message{msg("", fmt.Sprintf("the body must be at most %d bytes", MaxBodyBytes), "VALUE_OUT_OF_BOUNDS")}})
			return
		}
		if err != nil {
			refuse(w, msg("", "read the body: "+err.Error(), "VALUE_INVALID"))
			return
		}
		for _, l := range strings.Split(string(body), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				lines = append(lines, l)
			}
		}
	}
	if len(lines) > MaxHits {
		refuse(w, msg("", fmt.Sprintf("at most %d hits in a request, got %d", MaxHits, len(lines)), "EXCEEDED_MAX_ENTITIES"))
		return
	}
	if v := shared.Get("v"); v != "2" {
		refuse(w, msg("v", fmt.Sprintf("protocol version %q: only 2 (GA4's gtag.js) is served", v), "VALUE_INVALID"))
		return
	}
	tid := shared.Get("tid")
	pid, ok := property.PropertyOfMeasurementID(tid)
	if !ok {
		refuse(w, msg("tid", fmt.Sprintf("%q is not a Sextant measurement id (G-…, shown by sextant property get)", tid), "VALUE_INVALID"))
		return
	}
	ctx := r.Context()
	if _, err := h.cfg.Properties.Get(ctx, pid); err != nil {
		refuse(w, msg("tid", fmt.Sprintf("no property has measurement id %s", tid), "VALUE_INVALID"))
		return
	}
	hits, bad := hitsOf(shared, lines)
	if bad != nil {
		refuse(w, *bad)
		return
	}
	req, msgs := batch(pid, hits)
	if len(msgs) > 0 {
		refuse(w, msgs...)
		return
	}
	b, err := proto.Marshal(req)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]any{"error": "encode the batch"})
		return
	}
	ctx = auth.WithPrincipal(ctx, property.Principal{PropertyID: pid, Scope: property.Write})
	if _, err := h.cfg.Collect.Open(r.Header, connect.Peer{Addr: r.RemoteAddr, Protocol: "http"})(ctx, b); err != nil {
		be := h.cfg.Collect.BatchError(ctx, err)
		if be.Code == "INVALID_ARGUMENT" {
			for _, v := range be.Violations {
				msgs = append(msgs, msg(v.FieldPath, v.Description, v.ValidationCode))
			}
			if len(msgs) == 0 {
				msgs = append(msgs, msg("", be.Message, "VALUE_INVALID"))
			}
			refuse(w, msgs...)
			return
		}
		writeJSON(w, mp.HTTPStatus(be.Code), map[string]any{"error": be.Message})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// hitsOf is a request's hits: each body line's parameters over the shared
// ones, or the shared ones alone when the body has none.
func hitsOf(shared url.Values, lines []string) ([]url.Values, *Message) {
	if len(lines) == 0 {
		return []url.Values{shared}, nil
	}
	hits := make([]url.Values, 0, len(lines))
	for i, l := range lines {
		own, err := url.ParseQuery(l)
		if err != nil {
			m := msg(fmt.Sprintf("hits[%d]", i), "the hit does not parse: "+err.Error(), "VALUE_INVALID")
			return nil, &m
		}
		merged := maps.Clone(shared)
		if merged == nil {
			merged = url.Values{}
		}
		maps.Copy(merged, own)
		hits = append(hits, merged)
	}
	return hits, nil
}

// batch turns a request's hits into a CollectService batch: each hit an
// event, and the first visit and session start flags the events GA4 makes
// of them (first_visit, session_start).
func batch(pid string, hits []url.Values) (*collectv1.CollectRequest, []Message) {
	var msgs []Message
	req := &collectv1.CollectRequest{PropertyId: pid, UserProperties: map[string]*collectv1.UserProperty{}}
	first := hits[0]
	req.ClientId = first.Get("cid")
	if req.ClientId == "" {
		msgs = append(msgs, msg("cid", "the client id (cid) is required", "VALUE_REQUIRED"))
	}
	req.UserId = first.Get("uid")
	if ul, sr := first.Get("ul"), first.Get("sr"); ul != "" || sr != "" {
		req.Device = &collectv1.Device{Language: ul, ScreenResolution: sr}
	}
	for i, hit := range hits {
		name := hit.Get("en")
		if name == "" {
			msgs = append(msgs, msg(fmt.Sprintf("hits[%d].en", i), "the event name (en) is required", "VALUE_REQUIRED"))
			continue
		}
		params := map[string]*structpb.Value{}
		str := func(key, param string) {
			if v := hit.Get(key); v != "" {
				params[param] = structpb.NewStringValue(v)
			}
		}
		num := func(key, param string) {
			if v := hit.Get(key); v != "" {
				if n, err := strconv.ParseFloat(v, 64); err == nil {
					params[param] = structpb.NewNumberValue(n)
				} else {
					msgs = append(msgs, msg(fmt.Sprintf("hits[%d].%s", i, key), fmt.Sprintf("%s must be a number, got %q", key, v), "VALUE_INVALID"))
				}
			}
		}
		str("dl", "page_location")
		str("dr", "page_referrer")
		str("dt", "page_title")
		str("cu", "currency")
		num("sid", "ga_session_id")
		num("sct", "ga_session_number")
		num("_et", "engagement_time_msec")
		items, bad := itemsOf(hit, i)
		msgs = append(msgs, bad...)
		if items != nil {
			params["items"] = structpb.NewListValue(items)
		}
		for key, vals := range hit {
			if len(vals) == 0 {
				continue
			}
			switch {
			case strings.HasPrefix(key, "ep."):
				params[key[3:]] = structpb.NewStringValue(vals[0])
			case strings.HasPrefix(key, "epn."):
				num(key, key[4:])
			case strings.HasPrefix(key, "up."):
				req.UserProperties[key[3:]] = &collectv1.UserProperty{Value: structpb.NewStringValue(vals[0])}
			case strings.HasPrefix(key, "upn."):
				if n, err := strconv.ParseFloat(vals[0], 64); err == nil {
					req.UserProperties[key[4:]] = &collectv1.UserProperty{Value: structpb.NewNumberValue(n)}
				}
			}
		}
		// GA4 makes first_visit and session_start of the flags; they share
		// the hit's page and session.
		for _, flag := range []struct{ key, event string }{{"_fv", "first_visit"}, {"_ss", "session_start"}} {
			if hit.Get(flag.key) != "" {
				ps := map[string]*structpb.Value{}
				for _, k := range []string{"page_location", "page_referrer", "page_title", "ga_session_id", "ga_session_number"} {
					if v, ok := params[k]; ok {
						ps[k] = v
					}
				}
				req.Events = append(req.Events, &collectv1.Event{Name: flag.event, Params: ps, EventId: eventID(hit, i, flag.event)})
			}
		}
		req.Events = append(req.Events, &collectv1.Event{Name: name, Params: params, EventId: eventID(hit, i, name)})
	}
	return req, msgs
}

// itemFields are the fields of gtag.js's items that collect keeps, by the
// two letters that name them in a prN parameter.
var itemFields = map[string]string{"id": "item_id", "nm": "item_name", "br": "item_brand", "ca": "item_category", "va": "item_variant"}

// itemsOf reads a hit's items, in the order of their numbers: each prN
// parameter (N from 1) is an item's fields separated by "~", each named
// by its first two characters (idSKU1~nmShirt~pr9.99~qt2). The fields
// collect keeps are read: id, nm, br, ca and va as strings, pr (price)
// and qt (quantity) as numbers; the others (c2…c5, ln, li, lp, af, cp,
// ds, lo, kN/vN) are dropped. It returns nil when the hit has none.
func itemsOf(hit url.Values, i int) (*structpb.ListValue, []Message) {
	type numbered struct {
		n        int
		key, val string
	}
	var prs []numbered
	for key, vals := range hit {
		if len(vals) == 0 || len(key) < 3 || len(key) > 6 || !strings.HasPrefix(key, "pr") || key[2] == '0' ||
			strings.IndexFunc(key[2:], func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
			continue
		}
		n, _ := strconv.Atoi(key[2:])
		prs = append(prs, numbered{n, key, vals[0]})
	}
	if len(prs) == 0 {
		return nil, nil
	}
	slices.SortFunc(prs, func(a, b numbered) int { return a.n - b.n })
	var msgs []Message
	list := &structpb.ListValue{Values: make([]*structpb.Value, 0, len(prs))}
	for _, pr := range prs {
		fields := map[string]*structpb.Value{}
		for _, f := range strings.Split(pr.val, "~") {
			if len(f) < 2 {
				continue
			}
			k, v := f[:2], f[2:]
			if name, ok := itemFields[k]; ok {
				fields[name] = structpb.NewStringValue(v)
				continue
			}
			name := map[string]string{"pr": "price", "qt": "quantity"}[k]
			if name == "" {
				continue
			}
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				msgs = append(msgs, msg(fmt.Sprintf("hits[%d].%s", i, pr.key), fmt.Sprintf("the %s (%s) of an item must be a number, got %q", name, k, v), "VALUE_INVALID"))
				continue
			}
			fields[name] = structpb.NewNumberValue(n)
		}
		list.Values = append(list.Values, structpb.NewStructValue(&structpb.Struct{Fields: fields}))
	}
	return list, msgs
}

// eventID names a hit's event so that the tag's retries of a request are
// deduplicated: from the page load id (_p) and the hit's sequence number
// (_s), which gtag.js sets on every hit; "" (collect assigns one) without
// them.
func eventID(hit url.Values, i int, name string) string {
	p, s := hit.Get("_p"), hit.Get("_s")
	if p == "" || s == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(strings.Join([]string{"gtag", hit.Get("tid"), hit.Get("cid"), p, s, strconv.Itoa(i), name}, "\x00")))
	return hex.EncodeToString(sum[:16])
}

func refuse(w http.ResponseWriter, msgs ...Message) {
	writeJSON(w, http.StatusBadRequest, map[string]any{"validationMessages": msgs})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
