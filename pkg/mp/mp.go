// Package mp serves GA4's Measurement Protocol: POST /mp/collect with
// measurement_id and api_secret in the query string and GA4's JSON body,
// and POST /debug/mp/collect, which stores nothing and answers GA4's
// validationMessages. A hit passes GA4's own limits and naming rules first
// (25 events of 25 parameters, 40-character names, reserved names and
// prefixes, 100-character values, 72 hours back), then goes to the
// CollectService as the same batch a /v1/collect call would be, so it is
// validated, enriched and stored exactly as one. Unlike Google's endpoint,
// which answers 2xx to anything, a rejected hit gets 400 and its reasons.
package mp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"connectrpc.com/connect"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	rpccode "google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	collectv1 "github.com/sextant-analytics/sextant/gen/sextant/collect/v1"
	"github.com/sextant-analytics/sextant/pkg/apierror"
	"github.com/sextant-analytics/sextant/pkg/auth"
	"github.com/sextant-analytics/sextant/pkg/collectwire"
	"github.com/sextant-analytics/sextant/pkg/property"
)

// Paths served.
const (
	CollectPath = "/mp/collect"
	DebugPath   = "/debug/mp/collect"
)

// GA4's Measurement Protocol limits.
const (
	MaxBodyBytes      = 130_000
	MaxEvents         = 25
	MaxParams         = 25
	MaxUserProperties = 25
	MaxNameLen        = 40
	MaxUserPropName   = 24
	MaxParamValue     = 100
	MaxUserPropValue  = 36
	MaxPast           = 72 * time.Hour
)

// longValues are the parameters GA4 lets hold longer values.
var longValues = map[string]int{"page_location": 1000, "page_referrer": 420, "page_title": 300}

// reservedEvents are event names GA4 reserves for its own collection.
var reservedEvents = []string{"ad_activeview", "ad_click", "ad_exposure", "ad_impression", "ad_query", "ad_reward",
	"adunit_exposure", "app_clear_data", "app_exception", "app_install", "app_remove", "app_store_refund",
	"app_store_subscription_cancel", "app_store_subscription_convert", "app_store_subscription_renew", "app_update",
	"app_upgrade", "dynamic_link_app_open", "dynamic_link_app_update", "dynamic_link_first_open", "error",
	"firebase_campaign", "firebase_in_app_message_action", "firebase_in_app_message_dismiss",
	"firebase_in_app_message_impression", "first_open", "first_visit", "in_app_purchase", "notification_dismiss",
	"notification_foreground", "notification_open", "notification_receive", "notification_send", "os_update",
	"session_start", "session_start_with_rollout", "user_engagement"}

// reservedPrefixes may not begin parameter or user property names.
var reservedPrefixes = []string{"_", "firebase_", "ga_", "google_", "gtag."}

var nameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

// Authenticator resolves an API secret (the registry).
type Authenticator interface {
	Authenticate(ctx context.Context, secret string) (property.Principal, error)
}

// Config configures the handler.
type Config struct {
	Keys Authenticator
	// Collect handles the batches: collect's handlers, or the gateway's,
	// which forward them.
	Collect collectwire.Handlers
	// Now is the clock (time.Now when nil).
	Now    func() time.Time
	Logger *slog.Logger
}

// Message is one of GA4's validation messages.
type Message struct {
	FieldPath      string `json:"fieldPath"`
	Description    string `json:"description"`
	ValidationCode string `json:"validationCode"`
}

type handler struct{ cfg Config }

// Handler serves CollectPath and DebugPath.
func Handler(cfg Config) http.Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &handler{cfg: cfg}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	debug := strings.HasPrefix(r.URL.Path, "/debug/")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, codes.Unimplemented, "the Measurement Protocol takes POST")
		return
	}
	q := r.URL.Query()
	var msgs []Message
	bad := func(path, code, format string, args ...any) {
		msgs = append(msgs, Message{FieldPath: path, Description: fmt.Sprintf(format, args...), ValidationCode: code})
	}
	mid, appID, secret := q.Get("measurement_id"), q.Get("firebase_app_id"), q.Get("api_secret")
	switch {
	case mid != "" && appID != "":
		bad("firebase_app_id", apierror.ValueInvalid, "send measurement_id (web) or firebase_app_id (apps), not both")
	case mid == "" && appID == "":
		bad("measurement_id", apierror.ValueRequired, "measurement_id (web, e.g. G-ABCDE23456) or firebase_app_id (apps) is required: sextant property get shows both")
	}
	if secret == "" {
		bad("api_secret", apierror.ValueRequired, "api_secret is required (a Measurement Protocol secret: sextant property key create ID --scope measurement)")
	}
	if len(msgs) > 0 {
		h.reject(w, debug, http.StatusBadRequest, msgs)
		return
	}
	ctx := r.Context()
	pr, err := h.cfg.Keys.Authenticate(ctx, secret)
	if err != nil {
		writeError(w, http.StatusUnauthorized, codes.Unauthenticated, "api_secret: "+errMessage(err))
		return
	}
	if pr.Scope != property.Measurement {
		writeError(w, http.StatusForbidden, codes.PermissionDenied, fmt.Sprintf("api_secret: %s cannot be used here: the Measurement Protocol takes a measurement secret (sextant property key create ID --scope measurement)", auth.KeyOf(string(pr.Scope))))
		return
	}
	app := appID != ""
	if want := property.MeasurementIDOf(pr.PropertyID); !app && mid != want {
		writeError(w, http.StatusForbidden, codes.PermissionDenied, fmt.Sprintf("measurement_id %q is not the measurement id of the api_secret's property (%s)", mid, want))
		return
	}
	if want := property.FirebaseAppIDOf(pr.PropertyID); app && appID != want {
		writeError(w, http.StatusForbidden, codes.PermissionDenied, fmt.Sprintf("firebase_app_id %q is not the app id of the api_secret's property (%s)", appID, want))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		h.reject(w, debug, http.StatusRequestEntityTooLarge, []Message{{FieldPath: "", Description: fmt.Sprintf("the body must be under %d bytes", MaxBodyBytes), ValidationCode: apierror.ValueOutOfBounds}})
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, codes.InvalidArgument, "read the body: "+err.Error())
		return
	}
	req, msgs := h.parse(body, app)
	if len(msgs) > 0 {
		h.reject(w, debug, http.StatusBadRequest, msgs)
		return
	}
	req.ValidateOnly = debug
	b, err := proto.Marshal(req)
	if err != nil {
		writeError(w, http.StatusInternalServerError, codes.Internal, "encode the batch")
		return
	}
	ctx = auth.WithPrincipal(ctx, property.Principal{PropertyID: pr.PropertyID, Scope: property.Write})
	if _, err := h.cfg.Collect.Open(r.Header, connect.Peer{Addr: r.RemoteAddr, Protocol: "http"})(ctx, b); err != nil {
		be := h.cfg.Collect.BatchError(ctx, err)
		if be.Code == "INVALID_ARGUMENT" && len(be.Violations) > 0 {
			for _, v := range be.Violations {
				msgs = append(msgs, Message{FieldPath: snake(v.FieldPath), Description: v.Description, ValidationCode: v.ValidationCode})
			}
			h.reject(w, debug, http.StatusBadRequest, msgs)
			return
		}
		code := codeOf(be.Code)
		writeError(w, runtime.HTTPStatusFromCode(code), code, be.Message)
		return
	}
	if debug {
		writeJSON(w, http.StatusOK, map[string][]Message{"validationMessages": {}})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// reject answers validation messages: always 200 on the debug endpoint, as
// GA4's, and status on the other.
func (h *handler) reject(w http.ResponseWriter, debug bool, status int, msgs []Message) {
	if debug {
		status = http.StatusOK
	}
	writeJSON(w, status, map[string][]Message{"validationMessages": msgs})
}

// parse checks a body against GA4's rules and reads it into a batch: a web
// stream's hit names its client_id, an app's (app) its app_instance_id.
func (h *handler) parse(body []byte, app bool) (*collectv1.CollectRequest, []Message) {
	var msgs []Message
	bad := func(path, code, format string, args ...any) {
		msgs = append(msgs, Message{FieldPath: path, Description: fmt.Sprintf(format, args...), ValidationCode: code})
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		bad("", apierror.ValueInvalid, "the body must be a JSON object: %v", err)
		return nil, msgs
	}
	// What GA4 takes and Sextant does not keep: validation_behavior (the
	// checks here are GA4's strict ones), the legacy non_personalized_ads,
	// and user_location's subcontinent_id and continent_id.
	for _, k := range ignoredFields {
		delete(top, k)
	}
	if raw, ok := top["user_location"]; ok {
		var loc map[string]json.RawMessage
		if json.Unmarshal(raw, &loc) == nil {
			kept := map[string]json.RawMessage{}
			for _, k := range []string{"country_id", "city", "region_id"} {
				if v, ok := loc[k]; ok {
					kept[k] = v
				}
			}
			top["user_location"], _ = json.Marshal(kept)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(top)) {
		if !slices.Contains(known, k) {
			bad(k, apierror.NameInvalid, "unknown field %q", k)
		}
	}
	var hit struct {
		ClientID        *string                    `json:"client_id"`
		AppInstanceID   *string                    `json:"app_instance_id"`
		TimestampMicros *int64                     `json:"timestamp_micros"`
		UserProperties  map[string]json.RawMessage `json:"user_properties"`
		Events          []struct {
			Name            *string                    `json:"name"`
			Params          map[string]json.RawMessage `json:"params"`
			TimestampMicros *int64                     `json:"timestamp_micros"`
		} `json:"events"`
	}
	if err := json.Unmarshal(body, &hit); err != nil {
		bad("", apierror.ValueInvalid, "the body does not have GA4's shape: %v", err)
		return nil, msgs
	}
	if app {
		if hit.AppInstanceID == nil {
			bad("app_instance_id", apierror.ValueRequired, "app_instance_id is required with firebase_app_id")
		}
		if hit.ClientID != nil {
			bad("client_id", apierror.ValueInvalid, "client_id is for web streams (measurement_id): an app's hit names its app_instance_id")
		}
	} else {
		if hit.ClientID == nil {
			bad("client_id", apierror.ValueRequired, "client_id is required with measurement_id")
		}
		if hit.AppInstanceID != nil {
			bad("app_instance_id", apierror.ValueInvalid, "app_instance_id is for apps (firebase_app_id): a web hit names its client_id")
		}
	}
	now := h.cfg.Now()
	checkTime := func(path string, ts *int64) {
		if ts == nil || *ts == 0 {
			return
		}
		if t := time.UnixMicro(*ts); t.Before(now.Add(-MaxPast)) || t.After(now.Add(time.Minute)) {
			bad(path, apierror.ValueOutOfBounds, "timestamp_micros must be within the last 72 hours")
		}
	}
	checkTime("timestamp_micros", hit.TimestampMicros)
	if n := len(hit.UserProperties); n > MaxUserProperties {
		bad("user_properties", apierror.ExceededMaxEntities, "at most %d user properties, got %d", MaxUserProperties, n)
	}
	for _, name := range slices.Sorted(maps.Keys(hit.UserProperties)) {
		path := "user_properties." + name
		switch {
		case utf8.RuneCountInString(name) > MaxUserPropName:
			bad(path, apierror.NameInvalid, "user property names have at most %d characters", MaxUserPropName)
		case !nameRE.MatchString(name):
			bad(path, apierror.NameInvalid, "user property names start with a letter and hold letters, digits and underscores")
		case reservedPrefix(name) != "":
			bad(path, apierror.NameReserved, "user property names may not start with %q", reservedPrefix(name))
		}
		var v struct {
			Value json.RawMessage `json:"value"`
		}
		if json.Unmarshal(hit.UserProperties[name], &v) == nil {
			if s, ok := stringValue(v.Value); ok && utf8.RuneCountInString(s) > MaxUserPropValue {
				bad(path+".value", apierror.ValueOutOfBounds, "user property values have at most %d characters", MaxUserPropValue)
			}
		}
	}
	switch n := len(hit.Events); {
	case n == 0:
		bad("events", apierror.ValueRequired, "at least one event is required")
	case n > MaxEvents:
		bad("events", apierror.ExceededMaxEntities, "at most %d events in a request, got %d", MaxEvents, n)
	}
	for i, ev := range hit.Events {
		path := fmt.Sprintf("events[%d]", i)
		switch {
		case ev.Name == nil || *ev.Name == "":
			bad(path+".name", apierror.ValueRequired, "an event name is required")
		case utf8.RuneCountInString(*ev.Name) > MaxNameLen:
			bad(path+".name", apierror.NameInvalid, "event names have at most %d characters", MaxNameLen)
		case !nameRE.MatchString(*ev.Name):
			bad(path+".name", apierror.NameInvalid, "event name %q must start with a letter and hold letters, digits and underscores", *ev.Name)
		case slices.Contains(reservedEvents, *ev.Name):
			bad(path+".name", apierror.NameReserved, "event name %q is reserved by GA4", *ev.Name)
		}
		checkTime(path+".timestamp_micros", ev.TimestampMicros)
		if n := len(ev.Params); n > MaxParams {
			bad(path+".params", apierror.ExceededMaxEntities, "at most %d parameters per event, got %d", MaxParams, n)
		}
		for _, name := range slices.Sorted(maps.Keys(ev.Params)) {
			ppath := path + ".params." + name
			switch {
			case utf8.RuneCountInString(name) > MaxNameLen:
				bad(ppath, apierror.NameInvalid, "parameter names have at most %d characters", MaxNameLen)
			case reservedPrefix(name) != "":
				bad(ppath, apierror.NameReserved, "parameter names may not start with %q", reservedPrefix(name))
			case !nameRE.MatchString(name):
				bad(ppath, apierror.NameInvalid, "parameter names start with a letter and hold letters, digits and underscores")
			}
			limit := MaxParamValue
			if l, ok := longValues[name]; ok {
				limit = l
			}
			if s, ok := stringValue(ev.Params[name]); ok && utf8.RuneCountInString(s) > limit {
				bad(ppath, apierror.ValueOutOfBounds, "the value of %s has at most %d characters", name, limit)
			}
		}
	}
	if len(msgs) > 0 {
		return nil, msgs
	}
	clean, _ := json.Marshal(top)
	req := &collectv1.CollectRequest{}
	if err := protojson.Unmarshal(clean, req); err != nil {
		bad("", apierror.ValueInvalid, "%s", strings.TrimPrefix(err.Error(), "proto: "))
		return nil, msgs
	}
	return req, nil
}

// known are the body fields of GA4's Measurement Protocol that Sextant
// reads.
var known = []string{"client_id", "app_instance_id", "user_id", "timestamp_micros", "user_properties", "consent",
	"user_location", "ip_override", "device", "user_agent", "events"}

// ignoredFields are the body fields GA4 takes that are accepted and not
// kept.
var ignoredFields = []string{"validation_behavior", "non_personalized_ads"}

// BodyFields lists the top-level fields of a hit's JSON body that the
// handler accepts (any other is refused): those it reads, then those it
// ignores.
func BodyFields() (read, ignored []string) {
	return slices.Clone(known), slices.Clone(ignoredFields)
}

func reservedPrefix(name string) string {
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(name, p) {
			return p
		}
	}
	return ""
}

func stringValue(raw json.RawMessage) (string, bool) {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// snake turns collect's field paths (JSON names: "events[0].params.x",
// "clientId") into the Measurement Protocol's ("client_id"). What follows
// params or userProperties is the client's own naming
// ("events[0].params.items[2].myKey") and stays.
func snake(path string) string {
	orig := strings.Split(path, ".")
	segs := slices.Clone(orig)
	for i, seg := range orig {
		if i > 0 && slices.ContainsFunc(orig[:i], func(s string) bool { return s == "params" || s == "userProperties" }) {
			continue // a name the client chose
		}
		var b strings.Builder
		for j, r := range seg {
			if unicode.IsUpper(r) && j > 0 {
				b.WriteByte('_')
				r = unicode.ToLower(r)
			}
			b.WriteRune(r)
		}
		segs[i] = b.String()
	}
	return strings.Join(segs, ".")
}

// HTTPStatus is the HTTP status of a gRPC code's name ("UNAUTHENTICATED":
// 401), as collect's BatchError names it.
func HTTPStatus(code string) int { return runtime.HTTPStatusFromCode(codeOf(code)) }

// codeOf reads a code's name as BatchError gives it ("INVALID_ARGUMENT",
// connect.Code's name in capitals).
func codeOf(name string) codes.Code {
	var c connect.Code
	if err := c.UnmarshalText([]byte(strings.ToLower(name))); err != nil {
		return codes.Internal
	}
	return codes.Code(c)
}

func errMessage(err error) string {
	var ae *apierror.Error
	if errors.As(err, &ae) {
		return ae.Message
	}
	return "cannot check the api_secret now; retry"
}

// writeError answers an error that is not the hit's (auth, rate limits,
// outages) in Google's JSON error shape.
func writeError(w http.ResponseWriter, status int, code codes.Code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": status, "message": msg, "status": rpccode.Code_name[int32(code)]}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
