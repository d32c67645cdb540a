package ga4data

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"connectrpc.com/connect"

	ga4 "github.com/sextant-analytics/sextant/gen/sextant/ga4/v1beta"
)

// Pivot reports, as GA4's: every dimension of the request belongs to one
// pivot; a pivot's values are its dimensions' combinations, ordered and
// cut (offset, limit) by the pivot's own order; the report's rows are the
// rows of all the dimensions whose combination is among each pivot's,
// in the pivots' orders. They are answered with ordinary reports: one per
// pivot for its values, and one of all the dimensions for the rows.

const (
	// defaultPivotLimit is a pivot's limit when it names none.
	defaultPivotLimit = 10_000
	// maxPivotRows bounds the rows a pivot report reads (GA4's limit of a
	// report).
	maxPivotRows = 250_000
)

func (h *handler) pivotReport(ctx context.Context, hd http.Header, field, pid string, in *ga4.RunPivotReportRequest) (*ga4.RunPivotReportResponse, error) {
	switch {
	case in.CohortSpec != nil:
		return nil, invalid(join(field, "cohortSpec"), "cohortSpec is not supported by Sextant")
	case len(in.Comparisons) > 0:
		return nil, invalid(join(field, "comparisons"), "comparisons is not supported by Sextant")
	case len(in.Pivots) == 0:
		return nil, invalid(join(field, "pivots"), "at least one pivot is required")
	}
	var dims []string
	for _, d := range in.Dimensions {
		dims = append(dims, d.Name)
	}
	owner := map[string]int{} // dimension → its pivot
	for i, p := range in.Pivots {
		if len(p.FieldNames) == 0 {
			return nil, invalid(fmt.Sprintf("%s[%d].fieldNames", join(field, "pivots"), i), "a pivot names at least one dimension")
		}
		for _, f := range p.FieldNames {
			if !slices.Contains(dims, f) {
				return nil, invalid(fmt.Sprintf("%s[%d].fieldNames", join(field, "pivots"), i), fmt.Sprintf("%q is not one of the request's dimensions", f))
			}
			if j, ok := owner[f]; ok {
				return nil, invalid(fmt.Sprintf("%s[%d].fieldNames", join(field, "pivots"), i), fmt.Sprintf("%q is in pivot %d already", f, j))
			}
			owner[f] = i
		}
		if p.Limit < 0 || p.Offset < 0 {
			return nil, invalid(fmt.Sprintf("%s[%d]", join(field, "pivots"), i), "offset and limit cannot be negative")
		}
	}
	for _, d := range dims {
		if _, ok := owner[d]; !ok {
			return nil, invalid(join(field, "pivots"), fmt.Sprintf("dimension %q is in no pivot", d))
		}
	}
	base := func(names []string) *ga4.RunReportRequest {
		r := &ga4.RunReportRequest{Metrics: in.Metrics, DateRanges: in.DateRanges, DimensionFilter: in.DimensionFilter,
			MetricFilter: in.MetricFilter, CurrencyCode: in.CurrencyCode, KeepEmptyRows: in.KeepEmptyRows}
		for _, n := range names {
			r.Dimensions = append(r.Dimensions, &ga4.Dimension{Name: n})
		}
		return r
	}
	out := &ga4.RunPivotReportResponse{Kind: "analyticsData#runPivotReport"}
	// The pivots' values: position of each combination, by pivot.
	positions := make([]map[string]int, len(in.Pivots))
	for i, p := range in.Pivots {
		r := base(p.FieldNames)
		r.OrderBys, r.Offset, r.Limit, r.MetricAggregations = p.OrderBys, p.Offset, cmp.Or(p.Limit, defaultPivotLimit), p.MetricAggregations
		resp, err := h.report(ctx, hd, fmt.Sprintf("%s[%d]", join(field, "pivots"), i), pid, r)
		if err != nil {
			return nil, err
		}
		header := &ga4.PivotHeader{RowCount: resp.RowCount}
		positions[i] = map[string]int{}
		for j, row := range resp.Rows {
			header.PivotDimensionHeaders = append(header.PivotDimensionHeaders, &ga4.PivotDimensionHeader{DimensionValues: row.DimensionValues})
			positions[i][valuesKey(row.DimensionValues)] = j
		}
		out.PivotHeaders = append(out.PivotHeaders, header)
		out.Aggregates = append(out.Aggregates, resp.Totals...)
		out.Aggregates = append(out.Aggregates, resp.Maximums...)
		out.Aggregates = append(out.Aggregates, resp.Minimums...)
	}
	// The rows: every dimension's, kept when each pivot has their values.
	r := base(dims)
	r.Limit = maxPivotRows
	all, err := h.report(ctx, hd, field, pid, r)
	if err != nil {
		return nil, err
	}
	out.DimensionHeaders, out.MetricHeaders, out.Metadata = all.DimensionHeaders, all.MetricHeaders, all.Metadata
	index := map[string]int{} // dimension → its column
	for j, d := range all.DimensionHeaders {
		index[d.Name] = j
	}
	type ranked struct {
		row  *ga4.Row
		rank []int
	}
	var rows []ranked
rows:
	for _, row := range all.Rows {
		rank := make([]int, len(in.Pivots))
		for i, p := range in.Pivots {
			vals := make([]*ga4.DimensionValue, len(p.FieldNames))
			for k, f := range p.FieldNames {
				vals[k] = row.DimensionValues[index[f]]
			}
			pos, ok := positions[i][valuesKey(vals)]
			if !ok {
				continue rows
			}
			rank[i] = pos
		}
		rows = append(rows, ranked{row, rank})
	}
	slices.SortStableFunc(rows, func(a, b ranked) int { return slices.Compare(a.rank, b.rank) })
	for _, r := range rows {
		out.Rows = append(out.Rows, r.row)
	}
	return out, nil
}

func valuesKey(vs []*ga4.DimensionValue) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.GetValue()
	}
	return strings.Join(parts, "\x00")
}

// The REST and gRPC methods.

func (h *handler) runPivotReport(ctx context.Context, c *call, body []byte) (any, error) {
	req := &ga4.RunPivotReportRequest{}
	if err := decodeRequest(body, c.pid, "", req); err != nil {
		return nil, err
	}
	return h.pivotReport(ctx, c.r.Header, "", c.pid, req)
}

func (h *handler) grpcRunPivotReport(ctx context.Context, req *connect.Request[ga4.RunPivotReportRequest]) (*connect.Response[ga4.RunPivotReportResponse], error) {
	pid, err := propertyID("property", req.Msg.Property, "")
	if err != nil {
		return nil, err
	}
	out, err := h.pivotReport(ctx, req.Header(), "", pid, req.Msg)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(out), nil
}

func (h *handler) grpcBatchRunPivotReports(ctx context.Context, req *connect.Request[ga4.BatchRunPivotReportsRequest]) (*connect.Response[ga4.BatchRunPivotReportsResponse], error) {
	pid, err := propertyID("property", req.Msg.Property, "")
	if err != nil {
		return nil, err
	}
	out, err := h.batchPivotReports(ctx, req.Header(), pid, req.Msg)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(out), nil
}

// batchPivotReports answers a batch of pivot reports, at most MaxBatch.
func (h *handler) batchPivotReports(ctx context.Context, hd http.Header, pid string, in *ga4.BatchRunPivotReportsRequest) (*ga4.BatchRunPivotReportsResponse, error) {
	if err := checkBatch(len(in.Requests)); err != nil {
		return nil, err
	}
	out := &ga4.BatchRunPivotReportsResponse{Kind: "analyticsData#batchRunPivotReports"}
	for i, r := range in.Requests {
		field := fmt.Sprintf("requests[%d]", i)
		if r.Property != "" && r.Property != "properties/"+pid {
			return nil, invalid(field+".property", fmt.Sprintf("must be empty or properties/%s", pid))
		}
		resp, err := h.pivotReport(ctx, hd, field, pid, r)
		if err != nil {
			return nil, err
		}
		out.PivotReports = append(out.PivotReports, resp)
	}
	return out, nil
}
