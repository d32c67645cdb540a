package ga4data

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	ga4 "github.com/sextant-analytics/sextant/gen/sextant/ga4/v1beta"
	insightsv1 "github.com/sextant-analytics/sextant/gen/sextant/insights/v1"
)

// The Data API over gRPC (and Connect and gRPC-Web), under Google's
// service name, for Google's clients' gRPC transport. Requests and answers
// are the messages of gen/sextant/ga4/v1beta, which have the Data API's
// field numbers; they are translated to Sextant's report messages through
// their JSON, whose field names the two share, with the REST path's checks.

// ServiceName is the service Google's clients call.
const ServiceName = "google.analytics.data.v1beta.BetaAnalyticsData"

// The procedures served: the keys of these calls are read keys.
const (
	RunReportProcedure            = "/" + ServiceName + "/RunReport"
	RunRealtimeReportProcedure    = "/" + ServiceName + "/RunRealtimeReport"
	BatchRunReportsProcedure      = "/" + ServiceName + "/BatchRunReports"
	GetMetadataProcedure          = "/" + ServiceName + "/GetMetadata"
	CheckCompatibilityProcedure   = "/" + ServiceName + "/CheckCompatibility"
	RunPivotReportProcedure       = "/" + ServiceName + "/RunPivotReport"
	BatchRunPivotReportsProcedure = "/" + ServiceName + "/BatchRunPivotReports"
)

// Procedures lists the procedures served.
var Procedures = []string{RunReportProcedure, RunRealtimeReportProcedure, BatchRunReportsProcedure, GetMetadataProcedure, CheckCompatibilityProcedure,
	RunPivotReportProcedure, BatchRunPivotReportsProcedure}

// GRPC returns the path and handler of the BetaAnalyticsData service; opts
// carry the server's interceptors (authentication of the Procedures with
// read keys, error mapping).
func GRPC(cfg Config, opts ...connect.HandlerOption) (string, http.Handler) {
	h := &handler{cfg: cfg}
	mux := http.NewServeMux()
	mux.Handle(RunReportProcedure, connect.NewUnaryHandler(RunReportProcedure, h.grpcRunReport, opts...))
	mux.Handle(RunRealtimeReportProcedure, connect.NewUnaryHandler(RunRealtimeReportProcedure, h.grpcRunRealtimeReport, opts...))
	mux.Handle(BatchRunReportsProcedure, connect.NewUnaryHandler(BatchRunReportsProcedure, h.grpcBatchRunReports, opts...))
	mux.Handle(GetMetadataProcedure, connect.NewUnaryHandler(GetMetadataProcedure, h.grpcGetMetadata, opts...))
	mux.Handle(CheckCompatibilityProcedure, connect.NewUnaryHandler(CheckCompatibilityProcedure, h.grpcCheckCompatibility, opts...))
	mux.Handle(RunPivotReportProcedure, connect.NewUnaryHandler(RunPivotReportProcedure, h.grpcRunPivotReport, opts...))
	mux.Handle(BatchRunPivotReportsProcedure, connect.NewUnaryHandler(BatchRunPivotReportsProcedure, h.grpcBatchRunPivotReports, opts...))
	return "/" + ServiceName + "/", mux
}

// propertyID reads "properties/{id}" (the whole name when suffix is set:
// "properties/{id}/metadata").
func propertyID(field, name, suffix string) (string, error) {
	id, ok := strings.CutPrefix(name, "properties/")
	if ok && suffix != "" {
		id, ok = strings.CutSuffix(id, suffix)
	}
	if !ok || id == "" || strings.ContainsAny(id, "/:") {
		return "", invalid(field, fmt.Sprintf("%q is not properties/{id}%s", name, suffix))
	}
	return id, nil
}

// translate converts between a Data API message and Sextant's through the
// JSON they share; from a request, with decodeRequest's checks.
func toSextant(field string, from proto.Message, pid string, to proto.Message) error {
	b, err := protojson.Marshal(from)
	if err != nil {
		return fmt.Errorf("ga4data: %w", err)
	}
	return decodeRequest(b, pid, field, to)
}

func fromSextant(from, to proto.Message) error {
	b, err := protojson.Marshal(from)
	if err != nil {
		return fmt.Errorf("ga4data: %w", err)
	}
	if err := protojson.Unmarshal(b, to); err != nil {
		return fmt.Errorf("ga4data: translate %T: %w", from, err)
	}
	return nil
}

func withHeaders[T any](h http.Header, m *T) *connect.Request[T] {
	req := connect.NewRequest(m)
	for k, v := range h {
		req.Header()[k] = v
	}
	return req
}

func (h *handler) grpcRunReport(ctx context.Context, req *connect.Request[ga4.RunReportRequest]) (*connect.Response[ga4.RunReportResponse], error) {
	pid, err := propertyID("property", req.Msg.Property, "")
	if err != nil {
		return nil, err
	}
	out, err := h.report(ctx, req.Header(), "", pid, req.Msg)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(out), nil
}

// report answers one RunReportRequest of the Data API.
func (h *handler) report(ctx context.Context, hd http.Header, field, pid string, in *ga4.RunReportRequest) (*ga4.RunReportResponse, error) {
	r := &insightsv1.RunReportRequest{}
	if err := toSextant(field, in, pid, r); err != nil {
		return nil, err
	}
	r.PropertyId = pid
	resp, err := h.cfg.Reports.RunReport(ctx, withHeaders(hd, r))
	if err != nil {
		return nil, err
	}
	out := &ga4.RunReportResponse{}
	if err := fromSextant(resp.Msg, out); err != nil {
		return nil, err
	}
	return out, nil
}

func (h *handler) grpcRunRealtimeReport(ctx context.Context, req *connect.Request[ga4.RunRealtimeReportRequest]) (*connect.Response[ga4.RunRealtimeReportResponse], error) {
	pid, err := propertyID("property", req.Msg.Property, "")
	if err != nil {
		return nil, err
	}
	r := &insightsv1.RunRealtimeReportRequest{}
	if err := toSextant("", req.Msg, pid, r); err != nil {
		return nil, err
	}
	r.PropertyId = pid
	resp, err := h.cfg.Reports.RunRealtimeReport(ctx, withHeaders(req.Header(), r))
	if err != nil {
		return nil, err
	}
	out := &ga4.RunRealtimeReportResponse{}
	if err := fromSextant(resp.Msg, out); err != nil {
		return nil, err
	}
	return connect.NewResponse(out), nil
}

func (h *handler) grpcBatchRunReports(ctx context.Context, req *connect.Request[ga4.BatchRunReportsRequest]) (*connect.Response[ga4.BatchRunReportsResponse], error) {
	pid, err := propertyID("property", req.Msg.Property, "")
	if err != nil {
		return nil, err
	}
	out, err := h.batchReports(ctx, req.Header(), pid, req.Msg)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(out), nil
}

// batchReports answers a batch of reports, at most MaxBatch.
func (h *handler) batchReports(ctx context.Context, hd http.Header, pid string, in *ga4.BatchRunReportsRequest) (*ga4.BatchRunReportsResponse, error) {
	if err := checkBatch(len(in.Requests)); err != nil {
		return nil, err
	}
	out := &ga4.BatchRunReportsResponse{Kind: "analyticsData#batchRunReports"}
	for i, r := range in.Requests {
		resp, err := h.report(ctx, hd, fmt.Sprintf("requests[%d]", i), pid, r)
		if err != nil {
			return nil, err
		}
		out.Reports = append(out.Reports, resp)
	}
	return out, nil
}

func (h *handler) grpcGetMetadata(ctx context.Context, req *connect.Request[ga4.GetMetadataRequest]) (*connect.Response[ga4.Metadata], error) {
	pid, err := propertyID("name", req.Msg.Name, "/metadata")
	if err != nil {
		return nil, err
	}
	resp, err := h.cfg.Reports.GetMetadata(ctx, withHeaders(req.Header(), &insightsv1.GetMetadataRequest{PropertyId: pid}))
	if err != nil {
		return nil, err
	}
	out := &ga4.Metadata{}
	if err := fromSextant(resp.Msg, out); err != nil {
		return nil, err
	}
	return connect.NewResponse(out), nil
}

func (h *handler) grpcCheckCompatibility(ctx context.Context, req *connect.Request[ga4.CheckCompatibilityRequest]) (*connect.Response[ga4.CheckCompatibilityResponse], error) {
	pid, err := propertyID("property", req.Msg.Property, "")
	if err != nil {
		return nil, err
	}
	out, err := h.compatibility(ctx, req.Header(), pid, req.Msg)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(out), nil
}
