package insights

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	insightsv1 "github.com/sextant-analytics/sextant/gen/sextant/insights/v1"
	"github.com/sextant-analytics/sextant/pkg/apierror"
)

// Active users over trailing windows (GA4's active1DayUsers,
// active7DayUsers, active28DayUsers and their ratios). A row's window
// ends on its date, or, without a date dimension, on the last day of its
// date range, and reaches back before the range: so the engine cannot
// count it from the range's cells. A report asking for them runs without
// them, then counts each window it needs as a report of its own (active
// users by the row's other dimensions, over the window's days, with the
// same dimension filter), one per window end: a report by date over 30
// days runs 30 more per window length. Users in a window are the merge of
// its days' sketches, so a user active on several days counts once.

// windowMetrics are the windowed metrics and the window lengths (days)
// each reads.
var windowMetrics = map[string]struct {
	id   metricID
	typ  insightsv1.MetricType
	days []int
}{
	"active1DayUsers":  {mActive1DayUsers, insightsv1.MetricType_TYPE_INTEGER, []int{1}},
	"active7DayUsers":  {mActive7DayUsers, insightsv1.MetricType_TYPE_INTEGER, []int{7}},
	"active28DayUsers": {mActive28DayUsers, insightsv1.MetricType_TYPE_INTEGER, []int{28}},
	"dauPerWau":        {mDauPerWau, insightsv1.MetricType_TYPE_FLOAT, []int{1, 7}},
	"dauPerMau":        {mDauPerMau, insightsv1.MetricType_TYPE_FLOAT, []int{1, 28}},
	"wauPerMau":        {mWauPerMau, insightsv1.MetricType_TYPE_FLOAT, []int{7, 28}},
}

// windowed reports whether the request asks for a windowed metric.
func windowed(req *insightsv1.RunReportRequest) bool {
	return slices.ContainsFunc(req.GetMetrics(), func(m *insightsv1.Metric) bool { _, ok := windowMetrics[m.GetName()]; return ok })
}

// windowProblems lists what a report with windowed metrics cannot ask
// beyond its fields (parseFields refuses them by hour or in realtime).
func windowProblems(req *insightsv1.RunReportRequest) problems {
	var p problems
	for i, o := range req.GetOrderBys() {
		if _, ok := windowMetrics[o.GetMetric().GetMetricName()]; ok {
			p.add(fmt.Sprintf("orderBys[%d].metric.metricName", i), apierror.ValueInvalid, "rows are not ordered by windowed active users (%s); order by activeUsers instead", o.GetMetric().GetMetricName())
		}
	}
	if req.GetMetricFilter() != nil {
		for _, m := range req.GetMetrics() {
			if _, ok := windowMetrics[m.GetName()]; ok {
				p.add("metricFilter", apierror.ValueInvalid, "a report with windowed active users (%s) takes no metric filter", m.GetName())
				break
			}
		}
	}
	return p
}

// runWindowed answers a report with windowed metrics.
func runWindowed(ctx context.Context, cells Source, tz *time.Location, now time.Time, req *insightsv1.RunReportRequest, opts options) (*insightsv1.RunReportResponse, error) {
	p := windowProblems(req)
	// The fields, checked as asked: the report below runs without the
	// windowed metrics, and would name the others' places in its own list.
	(&query{tz: tz}).parseFields(req.GetDimensions(), req.GetMetrics(), req.GetDimensionFilter(), cells.Layout(), &p)
	if len(p) > 0 {
		return nil, apierror.Invalid("invalid report request", p...)
	}
	main := proto.Clone(req).(*insightsv1.RunReportRequest)
	main.Metrics = nil
	for _, m := range req.GetMetrics() {
		if _, ok := windowMetrics[m.GetName()]; !ok {
			main.Metrics = append(main.Metrics, m)
		}
	}
	placeholder := len(main.Metrics) == 0
	if placeholder {
		// Rows are the groups with active users in the range.
		main.Metrics = []*insightsv1.Metric{{Name: "activeUsers"}}
	}
	resp, err := runReport(ctx, cells, tz, now, main, opts)
	if err != nil {
		return nil, err
	}
	td := today(now, tz)
	// Each range's last day, by the dateRange dimension's values.
	ends := map[string]civil{}
	for i, r := range req.GetDateRanges() {
		end, err := parseDate(r.GetEndDate(), td)
		if err != nil {
			return nil, err // validated by the report above
		}
		name := r.GetName()
		if name == "" {
			name = fmt.Sprintf("date_range_%d", i)
		}
		ends[name] = end
	}
	last := civil{}
	for _, e := range ends {
		if e.After(last) {
			last = e
		}
	}
	dateAt, rangeAt := -1, -1
	var others []*insightsv1.Dimension
	var otherAt []int
	for i, h := range resp.DimensionHeaders {
		switch h.Name {
		case "date":
			dateAt = i
		case dateRangeDim:
			rangeAt = i
		default:
			others = append(others, &insightsv1.Dimension{Name: h.Name})
			otherAt = append(otherAt, i)
		}
	}
	// counts[window] are active users by the other dimensions' values
	// (by none for a total's).
	type window struct {
		days  int
		end   civil
		total bool
	}
	counts := map[window]map[string]float64{}
	count := func(w window) (map[string]float64, error) {
		if c, ok := counts[w]; ok {
			return c, nil
		}
		aux := &insightsv1.RunReportRequest{
			PropertyId: req.GetPropertyId(), Metrics: []*insightsv1.Metric{{Name: "activeUsers"}},
			DateRanges:      []*insightsv1.DateRange{{StartDate: w.end.AddDate(0, 0, 1-w.days).Format(time.DateOnly), EndDate: w.end.Format(time.DateOnly)}},
			DimensionFilter: req.GetDimensionFilter(), Limit: maxLimit,
		}
		if !w.total {
			aux.Dimensions = others
		}
		r, err := runReport(ctx, cells, tz, now, aux, opts)
		if err != nil {
			return nil, err
		}
		c := make(map[string]float64, len(r.Rows))
		for _, row := range r.Rows {
			var key []string
			for _, v := range row.DimensionValues {
				key = append(key, v.Value)
			}
			c[strings.Join(key, "\x1f")] = parseMetric(row.MetricValues[0].Value)
		}
		counts[w] = c
		return c, nil
	}
	value := func(name string, end civil, key string, total bool) (float64, error) {
		def := windowMetrics[name]
		var v [2]float64
		for i, days := range def.days {
			c, err := count(window{days, end, total})
			if err != nil {
				return 0, err
			}
			v[i] = c[key]
		}
		if len(def.days) == 1 {
			return v[0], nil
		}
		return div(v[0], v[1]), nil
	}
	// The answer's metrics, in the request's order.
	mainAt := map[string]int{}
	for i, h := range resp.MetricHeaders {
		mainAt[h.Name] = i
	}
	headers := make([]*insightsv1.MetricHeader, 0, len(req.GetMetrics()))
	for _, m := range req.GetMetrics() {
		if def, ok := windowMetrics[m.GetName()]; ok {
			headers = append(headers, &insightsv1.MetricHeader{Name: m.GetName(), Type: def.typ})
		} else {
			headers = append(headers, resp.MetricHeaders[mainAt[m.GetName()]])
		}
	}
	// fill sets a row's metrics in the request's order, the windowed ones
	// from win (which returns the metric's value and whether it has one).
	fill := func(row *insightsv1.Row, win func(i int, name string) (float64, error)) error {
		out := make([]*insightsv1.MetricValue, 0, len(headers))
		for i, h := range headers {
			if _, ok := windowMetrics[h.Name]; !ok {
				out = append(out, row.MetricValues[mainAt[h.Name]])
				continue
			}
			v, err := win(i, h.Name)
			if err != nil {
				return err
			}
			out = append(out, &insightsv1.MetricValue{Value: formatMetric(v, h.Type)})
		}
		row.MetricValues = out
		return nil
	}
	for _, row := range resp.Rows {
		end := last
		if rangeAt >= 0 {
			end = ends[row.DimensionValues[rangeAt].Value]
		}
		if dateAt >= 0 {
			d, err := time.Parse("20060102", row.DimensionValues[dateAt].Value)
			if err != nil {
				return nil, fmt.Errorf("insights: a row's date %q: %w", row.DimensionValues[dateAt].Value, err)
			}
			end = d
		}
		var key []string
		for _, i := range otherAt {
			key = append(key, row.DimensionValues[i].Value)
		}
		k := strings.Join(key, "\x1f")
		if err := fill(row, func(_ int, name string) (float64, error) { return value(name, end, k, false) }); err != nil {
			return nil, err
		}
	}
	// A total's window ends on the last day of its range (of the ranges,
	// with one total) and counts each user once over every value of the
	// other dimensions; maximums and minimums are those of the rows of
	// their range.
	rangeOf := func(row *insightsv1.Row) (civil, string) {
		if rangeAt < 0 {
			return last, ""
		}
		name := row.DimensionValues[rangeAt].Value
		return ends[name], name
	}
	for _, row := range resp.Totals {
		end, _ := rangeOf(row)
		if err := fill(row, func(_ int, name string) (float64, error) { return value(name, end, "", true) }); err != nil {
			return nil, err
		}
	}
	extreme := func(rng string, pick func(a, b float64) float64) func(i int, _ string) (float64, error) {
		return func(i int, _ string) (float64, error) {
			var v float64
			first := true
			for _, row := range resp.Rows {
				if _, r := rangeOf(row); r != rng {
					continue
				}
				x := parseMetric(row.MetricValues[i].Value)
				if first {
					v, first = x, false
				} else {
					v = pick(v, x)
				}
			}
			return v, nil
		}
	}
	for _, agg := range []struct {
		rows []*insightsv1.Row
		pick func(a, b float64) float64
	}{{resp.Maximums, func(a, b float64) float64 { return max(a, b) }}, {resp.Minimums, func(a, b float64) float64 { return min(a, b) }}} {
		for _, row := range agg.rows {
			_, rng := rangeOf(row)
			if err := fill(row, extreme(rng, agg.pick)); err != nil {
				return nil, err
			}
		}
	}
	resp.MetricHeaders = headers
	return resp, nil
}

// parseMetric reads a formatted metric value.
func parseMetric(s string) float64 {
	v, _ := strconv.ParseFloat(s, 64)
	return v
}
