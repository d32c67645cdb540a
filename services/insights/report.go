// The report engine in this file reads the block entries ("cells") of the
// requested ranges once (read.go), decodes each distinct dimension tuple once, evaluates the dimension
// filter on it, groups cells by their output dimension values and merges
// their aggregates. Users and sessions are estimates of merged sketches, so
// a user seen in two rows counts once in the totals, as in GA4.

package insights

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/language"
	"golang.org/x/text/language/display"

	insightsv1 "github.com/sextant-analytics/sextant/gen/sextant/insights/v1"
	"github.com/sextant-analytics/sextant/pkg/analytics"
	"github.com/sextant-analytics/sextant/pkg/apierror"
	"github.com/sextant-analytics/sextant/pkg/block"
	"github.com/sextant-analytics/sextant/pkg/catalog"
	"github.com/sextant-analytics/sextant/pkg/property"
)

const (
	maxDimensions = 9
	maxMetrics    = 10
	defaultLimit  = 10000
	maxLimit      = 250000

	kindReport   = "analyticsData#runReport"
	kindRealtime = "analyticsData#runRealtimeReport"

	defaultCurrency = "USD"
)

// RunReport answers a report over date ranges in the property's time zone
// tz, relative dates being read from now. A bad request gives an
// *apierror.Error of kind InvalidArgument listing every problem; a store
// error is returned wrapped.
func RunReport(ctx context.Context, cells Source, tz *time.Location, now time.Time, req *insightsv1.RunReportRequest) (*insightsv1.RunReportResponse, error) {
	return runReport(ctx, cells, tz, now, req, defaultOptions())
}

// Money is a property's currency and its rates into it (see
// property.Property): amounts are stored in Code, and a report in another
// currency divides them by that currency's rate.
type Money struct {
	Code  string
	Rates map[string]float64
}

// RunReportOf is RunReport with the settings of property p: its time
// zone, its currency (a report's currencyCode is the property's unless the
// request names one it has a rate for) and its custom definitions.
func RunReportOf(ctx context.Context, cells Source, p property.Property, now time.Time, req *insightsv1.RunReportRequest) (*insightsv1.RunReportResponse, error) {
	opts := defaultOptions()
	opts.money = Money{Code: p.CurrencyCode, Rates: p.CurrencyRates}
	opts.custom = customOf(p)
	return runReport(ctx, cells, p.Location(), now, req, opts)
}

// customOf are a property's custom definitions by report name.
func customOf(p property.Property) map[string]bool {
	m := map[string]bool{}
	for _, n := range p.CustomEventDimensions {
		m[customEventPrefix+n] = true
	}
	for _, n := range p.CustomUserDimensions {
		m[customUserPrefix+n] = true
	}
	for _, n := range p.CustomEventMetrics {
		m[customEventPrefix+n] = true
	}
	return m
}

// currencyOf resolves a report's currency: its code and the factor from
// stored amounts to it.
func currencyOf(requested string, m Money, p *problems) (string, float64) {
	base := m.Code
	if base == "" {
		base = defaultCurrency
	}
	switch {
	case requested == "" || requested == base:
		return base, 1
	case !isCurrencyCode(requested):
		p.add("currencyCode", apierror.ValueInvalid, "currency code %q is not an ISO 4217 code", requested)
	case m.Rates[requested] > 0:
		return requested, 1 / m.Rates[requested]
	default:
		p.add("currencyCode", apierror.ValueInvalid, "the property reports in %s and has no rate for %s (currencyRates in its settings)", base, requested)
	}
	return base, 1
}

func runReport(ctx context.Context, cells Source, tz *time.Location, now time.Time, req *insightsv1.RunReportRequest, opts options) (*insightsv1.RunReportResponse, error) {
	if tz == nil {
		tz = time.UTC
	}
	if windowed(req) {
		return runWindowed(ctx, cells, tz, now, req, opts)
	}
	var p problems
	q := &query{tz: tz, keepEmpty: req.GetKeepEmptyRows(), opts: opts}
	q.parseFields(req.GetDimensions(), req.GetMetrics(), req.GetDimensionFilter(), cells.Layout(), &p)
	q.spans = dateSpans(req.GetDateRanges(), q.grain, tz, now, &p)
	q.addRangeDim(len(req.GetDateRanges()), dateRangeDim)
	q.parseOutput(req.GetMetricFilter(), req.GetOrderBys(), req.GetLimit(), req.GetMetricAggregations(), &p)
	if off := req.GetOffset(); off < 0 {
		p.add("offset", apierror.ValueOutOfBounds, "offset must not be negative, got %d", off)
	} else {
		q.offset = off
	}
	currency, factor := currencyOf(req.GetCurrencyCode(), opts.money, &p)
	q.money = factor
	if len(p) > 0 {
		return nil, apierror.Invalid("invalid report request", p...)
	}
	res, err := q.run(ctx, cells, req.GetPropertyId())
	if err != nil {
		return nil, err
	}
	return &insightsv1.RunReportResponse{
		DimensionHeaders: res.dimHeaders,
		MetricHeaders:    res.metricHeaders,
		Rows:             res.rows,
		Totals:           res.totals,
		Maximums:         res.maximums,
		Minimums:         res.minimums,
		RowCount:         res.rowCount,
		Metadata:         &insightsv1.ResponseMetaData{CurrencyCode: currency, TimeZone: tz.String(), EmptyReason: res.emptyReason},
		Kind:             kindReport,
	}, nil
}

// RunRealtimeReport answers a report over minute cells of the last 30
// minutes before now.
func RunRealtimeReport(ctx context.Context, cells Source, tz *time.Location, now time.Time, req *insightsv1.RunRealtimeReportRequest) (*insightsv1.RunRealtimeReportResponse, error) {
	return runRealtimeReport(ctx, cells, tz, now, req, defaultOptions())
}

// RunRealtimeReportOf is RunRealtimeReport with the settings of property
// p: its time zone, its currency and its custom definitions.
func RunRealtimeReportOf(ctx context.Context, cells Source, p property.Property, now time.Time, req *insightsv1.RunRealtimeReportRequest) (*insightsv1.RunRealtimeReportResponse, error) {
	opts := defaultOptions()
	opts.money = Money{Code: p.CurrencyCode, Rates: p.CurrencyRates}
	opts.custom = customOf(p)
	return runRealtimeReport(ctx, cells, p.Location(), now, req, opts)
}

func runRealtimeReport(ctx context.Context, cells Source, tz *time.Location, now time.Time, req *insightsv1.RunRealtimeReportRequest, opts options) (*insightsv1.RunRealtimeReportResponse, error) {
	if tz == nil {
		tz = time.UTC
	}
	var p problems
	q := &query{tz: tz, realtime: true, nowMinute: floorTo(now.Unix(), 60), opts: opts, money: 1}
	q.parseFields(req.GetDimensions(), req.GetMetrics(), req.GetDimensionFilter(), cells.Layout(), &p)
	q.spans = minuteSpans(req.GetMinuteRanges(), q.nowMinute, &p)
	q.addRangeDim(len(req.GetMinuteRanges()), minuteRangeDim)
	q.parseOutput(req.GetMetricFilter(), req.GetOrderBys(), req.GetLimit(), req.GetMetricAggregations(), &p)
	if len(p) > 0 {
		return nil, apierror.Invalid("invalid realtime report request", p...)
	}
	res, err := q.run(ctx, cells, req.GetPropertyId())
	if err != nil {
		return nil, err
	}
	return &insightsv1.RunRealtimeReportResponse{
		DimensionHeaders: res.dimHeaders,
		MetricHeaders:    res.metricHeaders,
		Rows:             res.rows,
		Totals:           res.totals,
		Maximums:         res.maximums,
		Minimums:         res.minimums,
		RowCount:         res.rowCount,
		Metadata:         &insightsv1.ResponseMetaData{CurrencyCode: cmp.Or(opts.money.Code, defaultCurrency), TimeZone: tz.String(), EmptyReason: res.emptyReason},
		Kind:             kindRealtime,
	}, nil
}

func isCurrencyCode(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

func floorTo(t, step int64) int64 {
	r := t % step
	if r < 0 {
		r += step
	}
	return t - r
}

// orderKey is one validated orderBy.
type orderKey struct {
	metric int // index into the metrics, or -1 for a dimension
	dim    int // index into the output dimensions
	typ    insightsv1.OrderBy_DimensionOrderBy_OrderType
	desc   bool
}

// query is a validated report request.
type query struct {
	realtime  bool
	tz        *time.Location
	nowMinute int64
	// grain is the width of the entries read: Minute, Hour, or Day for
	// reports that may read day blocks for whole days (and hour entries
	// elsewhere).
	grain block.Grain
	// stored are the stored dimensions the report groups or filters by.
	stored []string
	// readsDates is set when the report reads dates (date, dayOfWeek).
	readsDates bool
	spans      []span

	dimNames    []string
	dimSrcs     []int
	metricNames []string
	metrics     []metricDef
	need        analytics.Need // sketch slots the metrics read

	filter     func(*evalCtx) bool
	filterUses [srcRange + 1]bool

	metricFilter func([]float64) bool
	orders       []orderKey
	limit        int64
	offset       int64
	total, count bool
	maximum      bool
	minimum      bool
	keepEmpty    bool
	opts         options
	// uses marks the tuple sources the report groups or filters by.
	uses [numTupleSrc]bool
	// money converts stored amounts into the report's currency.
	money float64
}

// parseFields validates dimensions, metrics and the dimension filter, and
// picks the grain.
func (q *query) parseFields(dims []*insightsv1.Dimension, metrics []*insightsv1.Metric, filter *insightsv1.FilterExpression, layout *catalog.Layout, p *problems) {
	if len(dims) > maxDimensions {
		p.add("dimensions", apierror.ExceededMaxEntities, "at most %d dimensions are allowed, got %d", maxDimensions, len(dims))
	}
	for i, d := range dims {
		path := fmt.Sprintf("dimensions[%d].name", i)
		name := d.GetName()
		if name == "" {
			p.add(path, apierror.ValueRequired, "a dimension name is required")
			continue
		}
		src, ok, hint := lookupDim(name, q.realtime)
		if !ok {
			p.add(path, apierror.NameInvalid, "unknown dimension %q%s", name, hint)
			continue
		}
		if slices.Contains(q.dimNames, name) {
			p.add(path, apierror.NameDuplicated, "dimension %q is requested twice", name)
			continue
		}
		q.dimNames = append(q.dimNames, name)
		q.dimSrcs = append(q.dimSrcs, src)
	}
	if len(metrics) > maxMetrics {
		p.add("metrics", apierror.ExceededMaxEntities, "at most %d metrics are allowed, got %d", maxMetrics, len(metrics))
	}
	for i, m := range metrics {
		path := fmt.Sprintf("metrics[%d].name", i)
		name := m.GetName()
		if name == "" {
			p.add(path, apierror.ValueRequired, "a metric name is required")
			continue
		}
		def, ok := lookupMetric(name)
		if !ok {
			p.add(path, apierror.NameInvalid, "unknown metric %q", name)
			continue
		}
		if slices.Contains(q.metricNames, name) {
			p.add(path, apierror.NameDuplicated, "metric %q is requested twice", name)
			continue
		}
		q.metricNames = append(q.metricNames, name)
		q.metrics = append(q.metrics, def)
		for _, slot := range def.id.needs() {
			q.need[slot] = true
		}
	}
	if len(dims) == 0 && len(metrics) == 0 {
		p.add("metrics", apierror.ValueRequired, "at least one dimension or metric is required")
	}
	hourly := slices.ContainsFunc(dims, func(d *insightsv1.Dimension) bool {
		return slices.Contains([]string{"hour", "dateHour", "dateHourMinute", "dayOfWeek"}, d.GetName())
	})
	for i, m := range q.metrics {
		if m.id.windowed() && (q.realtime || hourly) {
			p.add(fmt.Sprintf("metrics[%d].name", i), apierror.ValueInvalid, "metric %q counts users by day: it combines with date, not with hours, minutes or days of the week, and not in realtime reports", q.metricNames[i])
		}
		if m.id.outcome() && !layout.Outcomes {
			p.add(fmt.Sprintf("metrics[%d].name", i), apierror.ValueInvalid, "metric %q is counted from projection version traffic/v5 on; replay into it and activate it to report it", q.metricNames[i])
		}
	}
	var customNames []string
	if filter != nil {
		c := &dimFilterCompiler{realtime: q.realtime}
		q.filter = compileExpr("dimensionFilter", filter, 0, c.leaf, p)
		q.filterUses = c.uses
		customNames = c.custom
	}
	uses := func(src int) bool { return slices.Contains(q.dimSrcs, src) || q.filterUses[src] }
	for src := range numTupleSrc {
		q.uses[src] = uses(src)
		if uses(src) {
			for _, d := range srcStored(src) {
				if !slices.Contains(q.stored, d) {
					q.stored = append(q.stored, d)
				}
			}
		}
	}
	q.parseCustom(customNames, layout, p)
	q.readsDates = uses(srcDate) || uses(srcDayOfWeek)
	switch {
	case q.realtime || uses(srcDateHourMinute):
		q.grain = block.Minute
		if !layout.MinuteCovers(q.stored) {
			p.add("dimensions", apierror.ValueInvalid, "%s can combine stored dimensions of one group only: %s", minuteReportKind(q.realtime), minuteGroups(layout))
		}
		return
	case uses(srcDateHour) || uses(srcHour):
		q.grain = block.Hour
	default:
		q.grain = block.Day
	}
	if slices.ContainsFunc(q.stored, catalog.IsItem) {
		// GA4: item-scoped dimensions report item-scoped metrics only.
		for i, m := range q.metrics {
			if !m.id.itemScoped() {
				p.add(fmt.Sprintf("metrics[%d].name", i), apierror.ValueInvalid, "metric %q is event-scoped: with item-scoped dimensions (itemId, itemName, itemCategory, itemBrand) a report takes itemsViewed, itemsAddedToCart, itemsPurchased and itemRevenue", q.metricNames[i])
			}
		}
	}
	missing := false
	for _, d := range q.stored {
		if !slices.Contains(layout.Dims, d) {
			missing = true
			p.add("dimensions", apierror.ValueInvalid, "dimension %q is not stored by this projection version (it stores %s)", d, strings.Join(layout.Dims, ", "))
		}
	}
	if !missing && layout.Choose(q.stored, false) < 0 {
		p.add("dimensions", apierror.ValueInvalid, "this projection version stores %s in different groups: a report combines the dimensions of one group (%s)",
			strings.Join(q.stored, " and "), hourGroups(layout))
	}
}

// parseCustom checks a report's custom definitions (the custom dimensions
// its filter names are filterNames) and reads them: a custom dimension is
// the value of the custom rollup's entries named after it, a custom metric
// the sum of the entries of the metric rollup named after it. A report
// reads one custom dimension, or one custom metric by time alone.
func (q *query) parseCustom(filterNames []string, layout *catalog.Layout, p *problems) {
	names := slices.Clone(filterNames)
	for _, n := range q.dimNames {
		if customDim(n) && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	var metric string
	for i, m := range q.metrics {
		if m.id == mCustom {
			metric = q.metricNames[i]
		}
	}
	if len(names) == 0 && metric == "" {
		return
	}
	if !slices.Contains(layout.Dims, catalog.CustomValue) {
		p.add("dimensions", apierror.ValueInvalid, "custom dimensions and metrics are stored from projection version traffic/v5 on; replay into it and activate it to report them")
		return
	}
	for _, n := range append(slices.Clone(names), metric) {
		if n != "" && q.opts.custom != nil && !q.opts.custom[n] {
			p.add("dimensions", apierror.NameInvalid, "%q is not a custom definition of this property (customEventDimensions, customUserDimensions and customEventMetrics in its settings)", n)
		}
	}
	if len(names) > 1 {
		p.add("dimensions", apierror.ValueInvalid, "a report reads one custom dimension, got %s", strings.Join(names, ", "))
		return
	}
	if metric != "" {
		for i, m := range q.metrics {
			if m.id != mCustom || q.metricNames[i] != metric {
				p.add(fmt.Sprintf("metrics[%d].name", i), apierror.ValueInvalid, "a custom metric (%s) is reported alone, by time dimensions only", metric)
			}
		}
		if len(names) > 0 || slices.ContainsFunc(q.dimSrcs, func(src int) bool { return src < numTupleSrc }) {
			p.add("dimensions", apierror.ValueInvalid, "a custom metric (%s) is reported by time dimensions only", metric)
		}
	}
	name, src := metric, catalog.Index(catalog.CustomMetric)
	if len(names) == 1 {
		name, src = names[0], catalog.Index(catalog.CustomDimension)
	}
	q.uses[src] = true
	if !slices.Contains(q.stored, catalog.Dimensions[src].Name) {
		q.stored = append(q.stored, catalog.Dimensions[src].Name)
	}
	user := q.filter
	q.filter = func(c *evalCtx) bool {
		return c.t.vals[src] == name && (user == nil || user(c))
	}
}

// hourGroups lists the dimension sets kept at hour grain, the largest
// first.
func hourGroups(layout *catalog.Layout) string {
	var groups []string
	for _, r := range layout.Rollups {
		if len(r.Dims) > 1 {
			groups = append(groups, strings.Join(r.Dims, ", "))
		}
	}
	return strings.Join(groups, "; ")
}

func minuteReportKind(realtime bool) string {
	if realtime {
		return "a realtime report"
	}
	return "a report by minute (dateHourMinute)"
}

// minuteGroups lists the dimension groups minute entries are kept for.
func minuteGroups(layout *catalog.Layout) string {
	var groups []string
	for _, dims := range layout.MinuteGroups() {
		groups = append(groups, "["+strings.Join(dims, ", ")+"]")
	}
	return strings.Join(groups, ", ")
}

// addRangeDim adds the dateRange (minuteRange) dimension last when the
// request has several ranges and does not ask for it itself.
func (q *query) addRangeDim(ranges int, name string) {
	if ranges > 1 && !slices.Contains(q.dimSrcs, srcRange) {
		q.dimNames = append(q.dimNames, name)
		q.dimSrcs = append(q.dimSrcs, srcRange)
	}
}

// parseOutput validates what applies after aggregation.
func (q *query) parseOutput(metricFilter *insightsv1.FilterExpression, orderBys []*insightsv1.OrderBy, limit int64, aggs []insightsv1.MetricAggregation, p *problems) {
	metricIndex := make(map[string]int, len(q.metricNames))
	for i, n := range q.metricNames {
		metricIndex[n] = i
	}
	if metricFilter != nil {
		q.metricFilter = compileExpr("metricFilter", metricFilter, 0, metricLeaf(metricIndex), p)
	}
	for i, o := range orderBys {
		path := fmt.Sprintf("orderBys[%d]", i)
		switch x := o.GetOneOrderBy().(type) {
		case *insightsv1.OrderBy_Metric:
			name := x.Metric.GetMetricName()
			idx, ok := metricIndex[name]
			switch {
			case name == "":
				p.add(path+".metric.metricName", apierror.ValueRequired, "a metric name is required")
			case !ok:
				p.add(path+".metric.metricName", apierror.ValueInvalid, "metric %q is not among the requested metrics", name)
			default:
				q.orders = append(q.orders, orderKey{metric: idx, desc: o.GetDesc()})
			}
		case *insightsv1.OrderBy_Dimension:
			name := x.Dimension.GetDimensionName()
			idx := slices.Index(q.dimNames, name)
			typ := x.Dimension.GetOrderType()
			if _, known := insightsv1.OrderBy_DimensionOrderBy_OrderType_name[int32(typ)]; !known {
				p.add(path+".dimension.orderType", apierror.ValueInvalid, "unknown order type %d", int32(typ))
			}
			switch {
			case name == "":
				p.add(path+".dimension.dimensionName", apierror.ValueRequired, "a dimension name is required")
			case idx < 0:
				p.add(path+".dimension.dimensionName", apierror.ValueInvalid, "dimension %q is not among the report's dimensions", name)
			default:
				q.orders = append(q.orders, orderKey{metric: -1, dim: idx, typ: typ, desc: o.GetDesc()})
			}
		default:
			p.add(path, apierror.ValueRequired, "one of metric or dimension is required")
		}
	}
	if len(orderBys) == 0 && len(q.metrics) > 0 {
		q.orders = []orderKey{{metric: 0, desc: true}}
	}
	switch {
	case limit < 0 || limit > maxLimit:
		p.add("limit", apierror.ValueOutOfBounds, "limit must be in 0..%d, got %d", maxLimit, limit)
	case limit == 0:
		q.limit = defaultLimit
	default:
		q.limit = limit
	}
	for i, a := range aggs {
		switch a {
		case insightsv1.MetricAggregation_TOTAL:
			q.total = true
		case insightsv1.MetricAggregation_COUNT:
			q.count = true
		case insightsv1.MetricAggregation_MAXIMUM:
			q.maximum = true
		case insightsv1.MetricAggregation_MINIMUM:
			q.minimum = true
		default:
			p.add(fmt.Sprintf("metricAggregations[%d]", i), apierror.ValueInvalid, "unknown metric aggregation %d", int32(a))
		}
	}
}

// tupleInfo is what the engine derives once per distinct dimension tuple.
type tupleInfo struct {
	vals [numTupleSrc]string // display values
	key  string              // the tuple-derived output dimensions, joined
	pass bool                // the dimension filter, when it reads the tuple only
}

// bucketInfo is what the engine derives once per time bucket.
type bucketInfo struct {
	bucket int64
	vals   [numTimeSrc]string
	key    string // the time output dimensions, joined
}

// set stores the display value of the time source src.
func (bi *bucketInfo) set(src int, v string) { bi.vals[src-srcDate] = v }

// evalCtx is one cell counted in one range, as filters and grouping see it.
type evalCtx struct {
	t   *tupleInfo
	b   *bucketInfo
	rng int
	q   *query
}

func (e *evalCtx) value(src int) string {
	switch {
	case src < numTupleSrc:
		return e.t.vals[src]
	case src < srcRange:
		return e.b.vals[src-srcDate]
	}
	return e.q.spans[e.rng].name
}

// group is one output row.
type group struct {
	dims []string
	acc  *analytics.Acc
	vals []float64
	keys []sortKey
}

// keySep separates values in grouping keys. Stored values never hold control
// characters (analytics.Clean at projection), and neither do derived ones.
const keySep = '\x1f'

// scanner holds the per-request caches of one report.
type scanner struct {
	q         *query
	tuples    map[*section]map[string]*tupleInfo // by section, then entry key
	groups    map[string]int32                   // grouping key to index in list
	list      []*group
	countries map[string]string
	regions   display.Namer
	last      *bucketInfo
	key       []byte
	rows      []int32 // the rows of the cell being read
	ec        evalCtx // the cell being read; a field, so that it is not allocated per cell
	merger    *merger

	staticFilter bool // the filter reads tuple values only
	rangeFilter  bool // the filter reads the range name
	keyHasTime   bool
	keyHasRange  bool
}

func (q *query) newScanner() *scanner {
	s := &scanner{
		q:         q,
		tuples:    make(map[*section]map[string]*tupleInfo),
		groups:    make(map[string]int32),
		countries: make(map[string]string),
		regions:   display.English.Regions(),
	}
	s.staticFilter = true
	for src := numTupleSrc; src <= srcRange; src++ {
		if q.filterUses[src] {
			s.staticFilter = false
		}
	}
	s.rangeFilter = q.filterUses[srcRange]
	for _, src := range q.dimSrcs {
		switch {
		case src == srcRange:
			s.keyHasRange = true
		case src >= numTupleSrc:
			s.keyHasTime = true
		}
	}
	return s
}

func orNotSet(s string) string {
	if s == "" {
		return notSet
	}
	return s
}

func (s *scanner) country(id string) string {
	if name, ok := s.countries[id]; ok {
		return name
	}
	name := notSet
	if id != "" {
		if r, err := language.ParseRegion(id); err == nil && r.String() != "ZZ" {
			if n := s.regions.Name(r); n != "" {
				name = n
			}
		}
	}
	s.countries[id] = name
	return name
}

func sourceMedium(src, med string) string {
	if src == "" && med == "" {
		return notSet
	}
	return orNotSet(src) + " / " + orNotSet(med)
}

func (s *scanner) tuple(c *cell) (*tupleInfo, error) {
	tuples := s.tuples[c.sec]
	if tuples == nil {
		tuples = make(map[string]*tupleInfo)
		s.tuples[c.sec] = tuples
	}
	if ti, ok := tuples[string(c.dims)]; ok {
		return ti, nil
	}
	vals, ok := block.SplitDims(string(c.dims), len(c.sec.srcs))
	if !ok {
		return nil, fmt.Errorf("entry %q of section [%s] does not hold %d values", c.dims, c.sec.key, len(c.sec.srcs))
	}
	ti := &tupleInfo{pass: true}
	for i := range ti.vals {
		ti.vals[i] = notSet
	}
	var stored [catalog.MaxDimensions]string
	for i, src := range c.sec.srcs {
		stored[src] = vals[i]
		ti.vals[src] = orNotSet(vals[i])
	}
	ti.vals[srcCountry] = s.country(stored[catalog.Index(catalog.CountryID)])
	geo := regionsOf(stored[catalog.Index(catalog.CountryID)])
	ti.vals[srcContinent], ti.vals[srcContinentID] = geo.continent, geo.continentID
	ti.vals[srcSubContinent], ti.vals[srcSubContinentCode] = geo.subContinent, geo.subContinentCode
	ti.vals[srcSourceMedium] = sourceMedium(stored[catalog.Index(catalog.SessionSource)], stored[catalog.Index(catalog.SessionMedium)])
	if s.q.uses[srcChannelGroup] || s.q.uses[srcSourcePlatform] {
		src, med, camp := stored[catalog.Index(catalog.SessionSource)], stored[catalog.Index(catalog.SessionMedium)], stored[catalog.Index(catalog.SessionCampaign)]
		ti.vals[srcChannelGroup], ti.vals[srcSourcePlatform] = channelGroup(src, med, camp), sourcePlatform(src, med, camp)
	}
	if s.q.uses[srcFirstUserChannelGroup] || s.q.uses[srcFirstUserSourceMedium] {
		src, med, camp := stored[catalog.Index(catalog.FirstUserSource)], stored[catalog.Index(catalog.FirstUserMedium)], stored[catalog.Index(catalog.FirstUserCampaign)]
		if src == "" {
			ti.vals[srcFirstUserChannelGroup] = notSet // the user's first session is not known
		} else {
			ti.vals[srcFirstUserChannelGroup] = channelGroup(src, med, camp)
		}
		ti.vals[srcFirstUserSourceMedium] = sourceMedium(src, med)
	}
	var b []byte
	for _, src := range s.q.dimSrcs {
		if src < numTupleSrc {
			b = append(b, ti.vals[src]...)
			b = append(b, keySep)
		}
	}
	ti.key = string(b)
	if s.q.filter != nil && s.staticFilter {
		ti.pass = s.q.filter(&evalCtx{t: ti, q: s.q})
	}
	tuples[string(c.dims)] = ti
	return ti, nil
}

func appendPadded(b []byte, v, width int) []byte {
	var tmp [8]byte
	s := strconv.AppendInt(tmp[:0], int64(v), 10)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

func (s *scanner) bucket(bucket int64) *bucketInfo {
	if s.last != nil && s.last.bucket == bucket {
		return s.last
	}
	bi := &bucketInfo{bucket: bucket}
	t := time.Unix(bucket, 0).In(s.q.tz)
	y, mo, d := t.Date()
	h, mi, _ := t.Clock()
	b := make([]byte, 0, 12)
	b = appendPadded(b, y, 4)
	b = appendPadded(b, int(mo), 2)
	b = appendPadded(b, d, 2)
	b = appendPadded(b, h, 2)
	b = appendPadded(b, mi, 2)
	dhm := string(b)
	bi.set(srcDate, dhm[:8])
	bi.set(srcDateHour, dhm[:10])
	bi.set(srcDateHourMinute, dhm)
	bi.set(srcHour, dhm[8:10])
	bi.set(srcDayOfWeek, strconv.Itoa(int(t.Weekday())))
	if s.q.realtime {
		ago := (s.q.nowMinute - floorTo(bucket, 60)) / 60
		bi.set(srcMinutesAgo, string(appendPadded(nil, int(ago), 2)))
	}
	if s.keyHasTime {
		var k []byte
		for _, src := range s.q.dimSrcs {
			if src >= numTupleSrc && src < srcRange {
				k = append(k, bi.vals[src-srcDate]...)
				k = append(k, keySep)
			}
		}
		bi.key = string(k)
	}
	s.last = bi
	return bi
}

// add counts one cell in every range containing it.
func (s *scanner) add(c *cell) error {
	q := s.q
	ti, err := s.tuple(c)
	if err != nil {
		return fmt.Errorf("cell at %d: %w", c.bucket, err)
	}
	if !ti.pass {
		return nil
	}
	ec := &s.ec
	*ec = evalCtx{t: ti, q: q}
	if s.keyHasTime || (q.filter != nil && !s.staticFilter) {
		ec.b = s.bucket(c.bucket)
	}
	s.rows = s.rows[:0]
	checked := false // the range-independent filter was evaluated and passed
	for ri := range q.spans {
		if sp := &q.spans[ri]; c.bucket < sp.from || c.bucket >= sp.to {
			continue
		}
		ec.rng = ri
		if q.filter != nil && !s.staticFilter && (s.rangeFilter || !checked) {
			if !q.filter(ec) {
				if s.rangeFilter {
					continue
				}
				return nil
			}
			checked = true
		}
		k := append(s.key[:0], ti.key...)
		if s.keyHasTime {
			k = append(k, ec.b.key...)
		}
		if s.keyHasRange {
			k = append(k, byte(ri))
		}
		s.key = k
		row, ok := s.groups[string(k)]
		if !ok {
			g := &group{dims: make([]string, len(q.dimSrcs))}
			for i, src := range q.dimSrcs {
				g.dims[i] = ec.value(src)
			}
			row = int32(len(s.list))
			s.list = append(s.list, g)
			s.groups[string(k)] = row
		}
		s.rows = append(s.rows, row)
	}
	if len(s.rows) == 0 {
		return nil
	}
	return s.merger.add(c.value, c.bucket, s.rows)
}

// result is the response common to both report kinds.
type result struct {
	dimHeaders    []*insightsv1.DimensionHeader
	metricHeaders []*insightsv1.MetricHeader
	rows          []*insightsv1.Row
	totals        []*insightsv1.Row
	maximums      []*insightsv1.Row
	minimums      []*insightsv1.Row
	rowCount      int32
	emptyReason   string
}

func (q *query) run(ctx context.Context, src Source, property string) (*result, error) {
	s := q.newScanner()
	s.merger = newMerger(&q.need, q.opts)
	defer s.merger.stop()
	n := 0
	var cellErr error
	err := q.read(ctx, src, property, func(c *cell) error {
		if n++; n&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if err := s.add(c); err != nil {
			cellErr = fmt.Errorf("insights: property %q: %w", property, err)
			return cellErr
		}
		return nil
	})
	if cellErr != nil {
		return nil, cellErr
	}
	if err != nil {
		return nil, err
	}

	accs, err := s.merger.finish(len(s.list))
	if err != nil {
		return nil, fmt.Errorf("insights: property %q: %w", property, err)
	}
	rows := make([]*group, 0, len(s.list))
	for i, g := range s.list {
		g.acc = accs[i]
		e := estimates{a: g.acc, money: q.money}
		g.vals = make([]float64, len(q.metrics))
		empty := len(q.metrics) > 0
		for i, m := range q.metrics {
			g.vals[i] = e.value(m.id)
			if g.vals[i] != 0 {
				empty = false
			}
		}
		if empty && !q.keepEmpty {
			continue
		}
		if q.metricFilter != nil && !q.metricFilter(g.vals) {
			continue
		}
		rows = append(rows, g)
	}
	q.sort(rows)

	res := &result{rowCount: int32(len(rows))}
	for _, n := range q.dimNames {
		res.dimHeaders = append(res.dimHeaders, &insightsv1.DimensionHeader{Name: n})
	}
	for i, n := range q.metricNames {
		res.metricHeaders = append(res.metricHeaders, &insightsv1.MetricHeader{Name: n, Type: q.metrics[i].typ})
	}
	// Totals, counts, maximums and minimums: one row per date (minute)
	// range when the report has several, named by its range as GA4's are.
	for _, part := range q.byRange(rows) {
		reserved := func(v string) []*insightsv1.DimensionValue {
			dv := q.reserved(v)
			if part.at >= 0 {
				dv[part.at] = &insightsv1.DimensionValue{Value: part.name}
			}
			return dv
		}
		if q.total {
			var tot analytics.Acc
			for _, g := range part.rows {
				if err := tot.Merge(g.acc); err != nil {
					return nil, fmt.Errorf("insights: totals: %w", err)
				}
			}
			e := estimates{a: &tot, money: q.money}
			vals := make([]float64, len(q.metrics))
			for i, m := range q.metrics {
				vals[i] = e.value(m.id)
			}
			res.totals = append(res.totals, q.formatRow(reserved("RESERVED_TOTAL"), vals))
		}
		if q.count {
			r := &insightsv1.Row{DimensionValues: reserved("RESERVED_COUNT")}
			for range q.metrics {
				r.MetricValues = append(r.MetricValues, &insightsv1.MetricValue{Value: strconv.Itoa(len(part.rows))})
			}
			res.totals = append(res.totals, r)
		}
		if q.maximum {
			res.maximums = append(res.maximums, q.formatRow(reserved("RESERVED_MAX"), q.extreme(part.rows, 1)))
		}
		if q.minimum {
			res.minimums = append(res.minimums, q.formatRow(reserved("RESERVED_MIN"), q.extreme(part.rows, -1)))
		}
	}

	start := min(q.offset, int64(len(rows)))
	end := min(start+q.limit, int64(len(rows)))
	for _, g := range rows[start:end] {
		dv := make([]*insightsv1.DimensionValue, len(g.dims))
		for i, d := range g.dims {
			dv[i] = &insightsv1.DimensionValue{Value: d}
		}
		res.rows = append(res.rows, q.formatRow(dv, g.vals))
	}
	switch {
	case len(rows) == 0:
		res.emptyReason = "no data matched the report's ranges and filters"
	case len(res.rows) == 0:
		res.emptyReason = "offset is past the last row"
	}
	return res, nil
}

// rangePart is the rows of one date (minute) range; at is the range
// dimension's place, -1 when the report has none.
type rangePart struct {
	name string
	at   int
	rows []*group
}

// byRange splits rows by their range when the report has several ranges,
// in the ranges' order; else all rows are one part.
func (q *query) byRange(rows []*group) []rangePart {
	at := slices.Index(q.dimSrcs, srcRange)
	if at < 0 || len(q.spans) < 2 {
		return []rangePart{{at: -1, rows: rows}}
	}
	parts := make([]rangePart, len(q.spans))
	for i, sp := range q.spans {
		parts[i] = rangePart{name: sp.name, at: at}
	}
	for _, g := range rows {
		for i := range parts {
			if g.dims[at] == parts[i].name {
				parts[i].rows = append(parts[i].rows, g)
				break
			}
		}
	}
	return parts
}

func (q *query) reserved(v string) []*insightsv1.DimensionValue {
	out := make([]*insightsv1.DimensionValue, len(q.dimNames))
	for i := range out {
		out[i] = &insightsv1.DimensionValue{Value: v}
	}
	return out
}

func (q *query) formatRow(dims []*insightsv1.DimensionValue, vals []float64) *insightsv1.Row {
	r := &insightsv1.Row{DimensionValues: dims, MetricValues: make([]*insightsv1.MetricValue, len(vals))}
	for i, v := range vals {
		r.MetricValues[i] = &insightsv1.MetricValue{Value: formatMetric(v, q.metrics[i].typ)}
	}
	return r
}

// extreme is each metric's maximum (dir 1) or minimum (dir -1) over rows;
// zero without rows.
func (q *query) extreme(rows []*group, dir int) []float64 {
	out := make([]float64, len(q.metrics))
	for i := range out {
		for j, g := range rows {
			if v := g.vals[i]; j == 0 || cmp.Compare(v, out[i]) == dir {
				out[i] = v
			}
		}
	}
	return out
}

// sortKey is one row's value for one order key, prepared once.
type sortKey struct {
	s     string
	n     float64
	isNum bool
}

// sort orders rows by the order keys, then by dimension values ascending,
// which makes the order total: no two rows share all dimension values.
func (q *query) sort(rows []*group) {
	for _, g := range rows {
		ks := make([]sortKey, len(q.orders))
		for i, o := range q.orders {
			switch {
			case o.metric >= 0:
				ks[i] = sortKey{n: g.vals[o.metric], isNum: true}
			case o.typ == insightsv1.OrderBy_DimensionOrderBy_CASE_INSENSITIVE_ALPHANUMERIC:
				ks[i] = sortKey{s: strings.ToLower(g.dims[o.dim])}
			case o.typ == insightsv1.OrderBy_DimensionOrderBy_NUMERIC:
				v, err := strconv.ParseFloat(g.dims[o.dim], 64)
				ks[i] = sortKey{s: g.dims[o.dim], n: v, isNum: err == nil}
			default:
				ks[i] = sortKey{s: g.dims[o.dim]}
			}
		}
		g.keys = ks
	}
	slices.SortFunc(rows, func(a, b *group) int {
		for i, o := range q.orders {
			c := compareKeys(a.keys[i], b.keys[i])
			if o.desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return slices.Compare(a.dims, b.dims)
	})
}

// compareKeys orders numbers before other values, numbers numerically and
// the others by code point.
func compareKeys(a, b sortKey) int {
	switch {
	case a.isNum && b.isNum:
		return cmp.Compare(a.n, b.n)
	case a.isNum:
		return -1
	case b.isNum:
		return 1
	}
	return strings.Compare(a.s, b.s)
}
