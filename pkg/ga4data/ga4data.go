// Package ga4data serves the GA4 Data API (v1beta) over REST as Google's
// client libraries call it, so that a team leaving Google Analytics points
// its Data API client at Sextant and changes nothing else:
//
//	POST /v1beta/properties/{id}:runReport
//	POST /v1beta/properties/{id}:runRealtimeReport
//	POST /v1beta/properties/{id}:batchRunReports      (at most 5 reports)
//	POST /v1beta/properties/{id}:runPivotReport
//	POST /v1beta/properties/{id}:batchRunPivotReports (at most 5 reports)
//	POST /v1beta/properties/{id}:checkCompatibility
//	GET  /v1beta/properties/{id}/metadata
//
// Bodies and answers are the Data API's JSON (Sextant's own report messages
// share its field names), enums as names or, when the query's $alt asks for
// enum-encoding=int as Google's clients do, as numbers. Errors are in
// Google's JSON error shape, {"error": {"code", "message", "status",
// "details"}}, with the HTTP status of the code. The read key is the
// bearer token.
package ga4data

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	rpccode "google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	ga4 "github.com/sextant-analytics/sextant/gen/sextant/ga4/v1beta"
	insightsv1 "github.com/sextant-analytics/sextant/gen/sextant/insights/v1"
	"github.com/sextant-analytics/sextant/gen/sextant/insights/v1/insightsv1connect"
	"github.com/sextant-analytics/sextant/pkg/rpcerror"
)

// Reports answers reports: the InsightsService's handler (insights', or
// the gateway's, which forwards).
type Reports interface {
	RunReport(context.Context, *connect.Request[insightsv1.RunReportRequest]) (*connect.Response[insightsv1.RunReportResponse], error)
	RunRealtimeReport(context.Context, *connect.Request[insightsv1.RunRealtimeReportRequest]) (*connect.Response[insightsv1.RunRealtimeReportResponse], error)
	GetMetadata(context.Context, *connect.Request[insightsv1.GetMetadataRequest]) (*connect.Response[insightsv1.GetMetadataResponse], error)
	CheckCompatibility(context.Context, *connect.Request[insightsv1.CheckCompatibilityRequest]) (*connect.Response[insightsv1.CheckCompatibilityResponse], error)
}

// Config configures the handler.
type Config struct {
	Reports Reports
	// Authenticate checks a request's key for a procedure of the
	// InsightsService (auth.Interceptor's) and returns the context
	// carrying its principal.
	Authenticate func(ctx context.Context, procedure string, h http.Header) (context.Context, error)
	// MaxBodyBytes bounds a request body (default 1 MiB).
	MaxBodyBytes int64
	Logger       *slog.Logger
}

// MaxBatch is the most reports a batchRunReports call holds, as in GA4.
const MaxBatch = 5

// Prefix is the path the handler serves under.
const Prefix = "/v1beta/properties/"

// restMethod is one of the Data API's REST methods: POST
// {Prefix}{id}:{name}, or GET {Prefix}{id}/metadata.
type restMethod struct {
	name string
	verb string // its HTTP method
	// procedure is the InsightsService procedure whose keys it takes.
	procedure string
	serve     func(h *handler, ctx context.Context, c *call, body []byte) (any, error)
}

var restMethods = []restMethod{
	{"runReport", http.MethodPost, insightsv1connect.InsightsServiceRunReportProcedure, (*handler).runReport},
	{"runRealtimeReport", http.MethodPost, insightsv1connect.InsightsServiceRunRealtimeReportProcedure, (*handler).runRealtimeReport},
	{"batchRunReports", http.MethodPost, insightsv1connect.InsightsServiceRunReportProcedure, (*handler).batchRunReports},
	{"checkCompatibility", http.MethodPost, insightsv1connect.InsightsServiceCheckCompatibilityProcedure, (*handler).checkCompatibility},
	{"metadata", http.MethodGet, insightsv1connect.InsightsServiceGetMetadataProcedure, (*handler).metadata},
	{"runPivotReport", http.MethodPost, insightsv1connect.InsightsServiceRunReportProcedure, (*handler).runPivotReport},
	{"batchRunPivotReports", http.MethodPost, insightsv1connect.InsightsServiceRunReportProcedure, (*handler).batchRunPivotReports},
}

// Routes lists the REST routes the handler serves, as "METHOD path" with
// the property id as {propertyId}: "POST
// /v1beta/properties/{propertyId}:runReport", …, "GET
// /v1beta/properties/{propertyId}/metadata".
func Routes() []string {
	var out []string
	for _, m := range restMethods {
		if m.name == "metadata" {
			out = append(out, m.verb+" "+Prefix+"{propertyId}/metadata")
		} else {
			out = append(out, m.verb+" "+Prefix+"{propertyId}:"+m.name)
		}
	}
	return out
}

type handler struct{ cfg Config }

// Handler returns the handler of the paths under Prefix.
func Handler(cfg Config) http.Handler {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &handler{cfg: cfg}
}

// call is one request: what it asks and how to answer.
type call struct {
	w         http.ResponseWriter
	r         *http.Request
	pid       string
	procedure string
	enumInts  bool
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := &call{w: w, r: r, enumInts: enumInts(r.URL.RawQuery)}
	rest, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if !ok {
		h.fail(c, connect.NewError(connect.CodeNotFound, fmt.Errorf("no such path %s", r.URL.Path)))
		return
	}
	var name string
	switch {
	case strings.HasSuffix(rest, "/metadata"):
		c.pid, name = strings.TrimSuffix(rest, "/metadata"), "metadata"
	case strings.Contains(rest, ":"):
		c.pid, name, _ = strings.Cut(rest, ":")
	default:
		h.fail(c, connect.NewError(connect.CodeNotFound, fmt.Errorf("no such path %s: the Data API's paths are properties/{id}:runReport, :runRealtimeReport, :batchRunReports, :checkCompatibility and properties/{id}/metadata", r.URL.Path)))
		return
	}
	if c.pid == "" || strings.ContainsAny(c.pid, "/:") {
		h.fail(c, invalid("property", fmt.Sprintf("%q is not a property id: the path is properties/{id}", c.pid)))
		return
	}
	i := slices.IndexFunc(restMethods, func(m restMethod) bool { return m.name == name })
	if i < 0 {
		h.fail(c, connect.NewError(connect.CodeNotFound, fmt.Errorf("no method %q: the Data API's methods are runReport, runRealtimeReport, batchRunReports, runPivotReport, batchRunPivotReports, checkCompatibility and GET .../metadata", name)))
		return
	}
	m := restMethods[i]
	c.procedure = m.procedure
	if r.Method != m.verb {
		c.w.Header().Set("Allow", m.verb)
		h.failStatus(c, http.StatusMethodNotAllowed, connect.NewError(connect.CodeUnimplemented, fmt.Errorf("%s takes %s, not %s", name, m.verb, r.Method)))
		return
	}
	var body []byte
	if m.verb == http.MethodPost {
		var err error
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			h.failStatus(c, http.StatusRequestEntityTooLarge, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("the body is over %d bytes", tooBig.Limit)))
			return
		case err != nil:
			h.fail(c, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("read the body: %w", err)))
			return
		}
	}
	if h.cfg.Authenticate == nil { // fail closed
		h.fail(c, connect.NewError(connect.CodeUnauthenticated, errors.New("this server authenticates no Data API call")))
		return
	}
	ctx, err := h.cfg.Authenticate(r.Context(), c.procedure, r.Header)
	if err != nil {
		h.fail(c, err)
		return
	}
	out, err := m.serve(h, ctx, c, body)
	if err != nil {
		h.fail(c, err)
		return
	}
	b, err := c.encode(out)
	if err != nil {
		h.fail(c, fmt.Errorf("ga4data: encode the answer: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(b)
}

// enumInts reports whether the query's $alt asks for enums as numbers
// ("$alt=json;enum-encoding=int", raw or escaped, as Google's clients send
// it). The query is read by hand: Go's parser drops a pair holding ';'.
func enumInts(raw string) bool {
	for _, kv := range strings.Split(raw, "&") {
		k, v, _ := strings.Cut(kv, "=")
		if k, _ = url.QueryUnescape(k); k != "$alt" {
			continue
		}
		v, _ = url.QueryUnescape(v)
		for _, part := range strings.Split(v, ";") {
			if strings.TrimSpace(part) == "enum-encoding=int" {
				return true
			}
		}
	}
	return false
}

// encode marshals an answer: a message, or raw JSON composed of them.
func (c *call) encode(out any) ([]byte, error) {
	switch v := out.(type) {
	case proto.Message:
		return c.marshal(v)
	case json.RawMessage:
		return v, nil
	}
	return nil, fmt.Errorf("answer of type %T", out)
}

func (c *call) marshal(m proto.Message) ([]byte, error) {
	return protojson.MarshalOptions{UseEnumNumbers: c.enumInts}.Marshal(m)
}

// A report request's fields that GA4 has and Sextant ignores or refuses.
var (
	// ignored: asking for the property's quota; Sextant has none to tell.
	ignored = []string{"returnPropertyQuota"}
	// refused: features Sextant does not have; silently dropping them
	// would answer a different report than the one asked for.
	refused = []string{"cohortSpec", "comparisons"}
)

// decodeRequest reads a report request's JSON into m: its "property", when
// present, must name the path's property; GA4 fields Sextant does not
// have are refused by name; unknown fields are errors.
func decodeRequest(body []byte, pid, field string, m proto.Message) error {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return invalid(field, "the body is not a JSON object: "+err.Error())
	}
	for _, k := range []string{"property", "propertyId", "property_id"} {
		raw, ok := fields[k]
		if !ok {
			continue
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil || (v != "properties/"+pid && v != pid) {
			return invalid(join(field, "property"), fmt.Sprintf("must be empty or properties/%s, the property of the path", pid))
		}
		delete(fields, k)
	}
	for _, k := range ignored {
		delete(fields, k)
	}
	for _, k := range refused {
		if _, ok := fields[k]; ok {
			return invalid(join(field, k), k+" is not supported by Sextant")
		}
	}
	clean, err := json.Marshal(fields)
	if err != nil {
		return invalid(field, err.Error())
	}
	if err := protojson.Unmarshal(clean, m); err != nil {
		return invalid(field, strings.TrimPrefix(err.Error(), "proto: "))
	}
	return nil
}

func join(parent, field string) string {
	if parent == "" {
		return field
	}
	return parent + "." + field
}

func (h *handler) runReport(ctx context.Context, c *call, body []byte) (any, error) {
	req := &insightsv1.RunReportRequest{}
	if err := decodeRequest(body, c.pid, "", req); err != nil {
		return nil, err
	}
	req.PropertyId = c.pid
	resp, err := h.cfg.Reports.RunReport(ctx, withHeaders(c.r.Header, req))
	if err != nil {
		return nil, err
	}
	return resp.Msg, nil
}

func (h *handler) runRealtimeReport(ctx context.Context, c *call, body []byte) (any, error) {
	req := &insightsv1.RunRealtimeReportRequest{}
	if err := decodeRequest(body, c.pid, "", req); err != nil {
		return nil, err
	}
	req.PropertyId = c.pid
	resp, err := h.cfg.Reports.RunRealtimeReport(ctx, withHeaders(c.r.Header, req))
	if err != nil {
		return nil, err
	}
	return resp.Msg, nil
}

// batchOf reads the body of a batch of reports of kind: {"property":
// "properties/{id}" (or none), "requests": [kind, …]}.
func batchOf(body []byte, pid, kind string) ([]json.RawMessage, error) {
	var batch struct {
		Property *string           `json:"property"`
		Requests []json.RawMessage `json:"requests"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&batch); err != nil {
		return nil, invalid("requests", fmt.Sprintf("the body must be {\"requests\": [%s, …]}: %v", kind, err))
	}
	if batch.Property != nil && *batch.Property != "properties/"+pid {
		return nil, invalid("property", fmt.Sprintf("must be empty or properties/%s, the property of the path", pid))
	}
	return batch.Requests, checkBatch(len(batch.Requests))
}

// checkBatch bounds the reports of a batch, as GA4 does.
func checkBatch(n int) error {
	switch {
	case n == 0:
		return invalid("requests", "at least one report is required")
	case n > MaxBatch:
		return invalid("requests", fmt.Sprintf("at most %d reports in a batch, got %d", MaxBatch, n))
	}
	return nil
}

func (h *handler) batchRunReports(ctx context.Context, c *call, body []byte) (any, error) {
	raws, err := batchOf(body, c.pid, "RunReportRequest")
	if err != nil {
		return nil, err
	}
	req := &ga4.BatchRunReportsRequest{}
	for i, raw := range raws {
		r := &ga4.RunReportRequest{}
		if err := decodeRequest(raw, c.pid, fmt.Sprintf("requests[%d]", i), r); err != nil {
			return nil, err
		}
		req.Requests = append(req.Requests, r)
	}
	return h.batchReports(ctx, c.r.Header, c.pid, req)
}

func (h *handler) batchRunPivotReports(ctx context.Context, c *call, body []byte) (any, error) {
	raws, err := batchOf(body, c.pid, "RunPivotReportRequest")
	if err != nil {
		return nil, err
	}
	req := &ga4.BatchRunPivotReportsRequest{}
	for i, raw := range raws {
		r := &ga4.RunPivotReportRequest{}
		if err := decodeRequest(raw, c.pid, fmt.Sprintf("requests[%d]", i), r); err != nil {
			return nil, err
		}
		req.Requests = append(req.Requests, r)
	}
	return h.batchPivotReports(ctx, c.r.Header, c.pid, req)
}

func (h *handler) metadata(ctx context.Context, c *call, _ []byte) (any, error) {
	resp, err := h.cfg.Reports.GetMetadata(ctx, withHeaders(c.r.Header, &insightsv1.GetMetadataRequest{PropertyId: c.pid}))
	if err != nil {
		return nil, err
	}
	return resp.Msg, nil
}

func (h *handler) checkCompatibility(ctx context.Context, c *call, body []byte) (any, error) {
	req := &ga4.CheckCompatibilityRequest{}
	if err := decodeRequest(body, c.pid, "", req); err != nil {
		return nil, err
	}
	return h.compatibility(ctx, c.r.Header, c.pid, req)
}

// compatibility answers which dimensions and metrics can be added to a
// report of the request's, as InsightsService.CheckCompatibility decides
// (a GA4 metric filter names metrics only, and is not needed to decide).
func (h *handler) compatibility(ctx context.Context, hd http.Header, pid string, req *ga4.CheckCompatibilityRequest) (*ga4.CheckCompatibilityResponse, error) {
	in := &insightsv1.CheckCompatibilityRequest{}
	b, err := protojson.Marshal(&ga4.CheckCompatibilityRequest{Dimensions: req.Dimensions, Metrics: req.Metrics,
		DimensionFilter: req.DimensionFilter, CompatibilityFilter: req.CompatibilityFilter})
	if err == nil {
		err = protojson.Unmarshal(b, in)
	}
	if err != nil {
		return nil, fmt.Errorf("ga4data: translate the compatibility request: %w", err)
	}
	in.PropertyId = pid
	resp, err := h.cfg.Reports.CheckCompatibility(ctx, withHeaders(hd, in))
	if err != nil {
		return nil, err
	}
	out := &ga4.CheckCompatibilityResponse{}
	if err := fromSextant(resp.Msg, out); err != nil {
		return nil, err
	}
	return out, nil
}

// invalid is an INVALID_ARGUMENT error naming the field at fault.
func invalid(field, desc string) error {
	msg := desc
	if field != "" {
		msg = field + ": " + desc
	}
	e := connect.NewError(connect.CodeInvalidArgument, errors.New(msg))
	if d, err := connect.NewErrorDetail(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: desc}}}); err == nil {
		e.AddDetail(d)
	}
	return e
}

func (h *handler) fail(c *call, err error) { h.failStatus(c, 0, err) }

// failStatus answers err in Google's JSON error shape; status, when not 0,
// overrides the HTTP status of the code.
func (h *handler) failStatus(c *call, status int, err error) {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		err = rpcerror.Convert(c.r.Context(), h.cfg.Logger, c.procedure, err)
		if !errors.As(err, &ce) {
			ce = connect.NewError(connect.CodeInternal, errors.New("internal error"))
		}
	}
	code := codes.Code(ce.Code())
	if status == 0 {
		status = runtime.HTTPStatusFromCode(code)
	}
	type gerr struct {
		Code    int               `json:"code"`
		Message string            `json:"message"`
		Status  string            `json:"status"`
		Details []json.RawMessage `json:"details,omitempty"`
	}
	e := gerr{Code: status, Message: ce.Message(), Status: statusName(code)}
	for _, d := range ce.Details() {
		a := &anypb.Any{TypeUrl: "type.googleapis.com/" + d.Type(), Value: d.Bytes()}
		if v, err := d.Value(); err == nil {
			if ri, ok := v.(*errdetails.RetryInfo); ok && ri.RetryDelay != nil {
				secs := int(ri.RetryDelay.AsDuration().Round(time.Second) / time.Second)
				c.w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
			}
		}
		if b, err := protojson.Marshal(a); err == nil {
			e.Details = append(e.Details, b)
		}
	}
	b, _ := json.Marshal(map[string]gerr{"error": e})
	c.w.Header().Set("Content-Type", "application/json; charset=utf-8")
	c.w.WriteHeader(status)
	_, _ = c.w.Write(b)
}

// statusName is a code's name in Google's errors: INVALID_ARGUMENT, ….
func statusName(c codes.Code) string {
	if n, ok := rpccode.Code_name[int32(c)]; ok {
		return n
	}
	return "UNKNOWN"
}
