package insights

import (
	"testing"
	"time"

	insightsv1 "github.com/sextant-analytics/sextant/gen/sextant/insights/v1"
	"github.com/sextant-analytics/sextant/pkg/block"
)

// Request builders keep the test tables short.

type (
	v1  = insightsv1.FilterExpression
	st  = insightsv1.StringFilter_MatchType
	op  = insightsv1.NumericFilter_Operation
	ord = insightsv1.OrderBy_DimensionOrderBy_OrderType
)

const (
	exact    = insightsv1.StringFilter_EXACT
	begins   = insightsv1.StringFilter_BEGINS_WITH
	ends     = insightsv1.StringFilter_ENDS_WITH
	contains = insightsv1.StringFilter_CONTAINS
	fullRE   = insightsv1.StringFilter_FULL_REGEXP
	partRE   = insightsv1.StringFilter_PARTIAL_REGEXP

	eq  = insightsv1.NumericFilter_EQUAL
	lt  = insightsv1.NumericFilter_LESS_THAN
	lte = insightsv1.NumericFilter_LESS_THAN_OR_EQUAL
	gt  = insightsv1.NumericFilter_GREATER_THAN
	gte = insightsv1.NumericFilter_GREATER_THAN_OR_EQUAL

	alpha   = insightsv1.OrderBy_DimensionOrderBy_ALPHANUMERIC
	ciAlpha = insightsv1.OrderBy_DimensionOrderBy_CASE_INSENSITIVE_ALPHANUMERIC
	numeric = insightsv1.OrderBy_DimensionOrderBy_NUMERIC
)

func dims(names ...string) []*insightsv1.Dimension {
	out := make([]*insightsv1.Dimension, len(names))
	for i, n := range names {
		out[i] = &insightsv1.Dimension{Name: n}
	}
	return out
}

func mets(names ...string) []*insightsv1.Metric {
	out := make([]*insightsv1.Metric, len(names))
	for i, n := range names {
		out[i] = &insightsv1.Metric{Name: n}
	}
	return out
}

func dr(start, end string) *insightsv1.DateRange {
	return &insightsv1.DateRange{StartDate: start, EndDate: end}
}

func named(r *insightsv1.DateRange, name string) *insightsv1.DateRange {
	r.Name = name
	return r
}

func leaf(f *insightsv1.Filter) *v1 {
	return &v1{Expr: &insightsv1.FilterExpression_Filter{Filter: f}}
}

func strF(field string, mt st, value string, cs bool) *v1 {
	return leaf(&insightsv1.Filter{FieldName: field, OneFilter: &insightsv1.Filter_StringFilter{
		StringFilter: &insightsv1.StringFilter{MatchType: mt, Value: value, CaseSensitive: cs}}})
}

func inList(field string, cs bool, values ...string) *v1 {
	return leaf(&insightsv1.Filter{FieldName: field, OneFilter: &insightsv1.Filter_InListFilter{
		InListFilter: &insightsv1.InListFilter{Values: values, CaseSensitive: cs}}})
}

func intV(v int64) *insightsv1.NumericValue {
	return &insightsv1.NumericValue{OneValue: &insightsv1.NumericValue_Int64Value{Int64Value: v}}
}

func dblV(v float64) *insightsv1.NumericValue {
	return &insightsv1.NumericValue{OneValue: &insightsv1.NumericValue_DoubleValue{DoubleValue: v}}
}

func numF(field string, o op, v *insightsv1.NumericValue) *v1 {
	return leaf(&insightsv1.Filter{FieldName: field, OneFilter: &insightsv1.Filter_NumericFilter{
		NumericFilter: &insightsv1.NumericFilter{Operation: o, Value: v}}})
}

func betweenF(field string, lo, hi *insightsv1.NumericValue) *v1 {
	return leaf(&insightsv1.Filter{FieldName: field, OneFilter: &insightsv1.Filter_BetweenFilter{
		BetweenFilter: &insightsv1.BetweenFilter{FromValue: lo, ToValue: hi}}})
}

func and(es ...*v1) *v1 {
	return &v1{Expr: &insightsv1.FilterExpression_AndGroup{AndGroup: &insightsv1.FilterExpressionList{Expressions: es}}}
}

func or(es ...*v1) *v1 {
	return &v1{Expr: &insightsv1.FilterExpression_OrGroup{OrGroup: &insightsv1.FilterExpressionList{Expressions: es}}}
}

func not(e *v1) *v1 {
	return &v1{Expr: &insightsv1.FilterExpression_NotExpression{NotExpression: e}}
}

func byMetric(name string, desc bool) *insightsv1.OrderBy {
	return &insightsv1.OrderBy{Desc: desc, OneOrderBy: &insightsv1.OrderBy_Metric{Metric: &insightsv1.OrderBy_MetricOrderBy{MetricName: name}}}
}

func byDim(name string, typ ord, desc bool) *insightsv1.OrderBy {
	return &insightsv1.OrderBy{Desc: desc, OneOrderBy: &insightsv1.OrderBy_Dimension{Dimension: &insightsv1.OrderBy_DimensionOrderBy{DimensionName: name, OrderType: typ}}}
}

func mr(start, end *int32, name string) *insightsv1.MinuteRange {
	return &insightsv1.MinuteRange{StartMinutesAgo: start, EndMinutesAgo: end, Name: name}
}

func i32(v int32) *int32 { return &v }

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

func mustZone(t testing.TB, name string) *time.Location {
	t.Helper()
	if name == "" {
		return time.UTC
	}
	tz, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return tz
}

func unix(t testing.TB, s string) int64 { return mustTime(t, s).Unix() }

// fixture is the hand-built hour data most tests read, in January 2024:
//
//	A 01-10 10:00Z page_view /home      US desktop google/organic  ev 3 users {1,2}
//	B 01-10 11:00Z page_view /pricing   US mobile  google/cpc      ev 2 users {2,3}
//	C 01-11 03:00Z scroll    /home      DE desktop (not set)       ev 1 users {1}
//	D 01-11 15:00Z page_view /Blog/Post FR tablet  bing/organic    ev 4 users {4}
//	E 01-12 09:00Z click     /about     -- desktop google/organic  ev 1 users {5}
//
// plus a cell of another property, and a minute cell of property p that only
// minute-grain reports see.
func fixture(t testing.TB) *memCells {
	return cellsOf(t,
		spec{at: "2024-01-10T10:00", tuple: tup("page_view", "/home", "US", "desktop", "Chrome", "Windows", "google", "organic", ""),
			events: 3, views: 3, msec: 4500, users: []uint64{1, 2}, active: []uint64{1}, newUsers: []uint64{2}, sessions: []uint64{101, 102}, engaged: []uint64{101}},
		spec{at: "2024-01-10T11:00", tuple: tup("page_view", "/pricing", "US", "mobile", "Safari", "iOS", "google", "cpc", "spring"),
			events: 2, views: 2, msec: 1000, users: []uint64{2, 3}, active: []uint64{2, 3}, newUsers: []uint64{3}, sessions: []uint64{102, 103}, engaged: []uint64{103}},
		spec{at: "2024-01-11T03:00", tuple: tup("scroll", "/home", "DE", "desktop", "Firefox", "Linux", "", "", ""),
			events: 1, users: []uint64{1}, sessions: []uint64{104}},
		spec{at: "2024-01-11T15:00", tuple: tup("page_view", "/Blog/Post", "FR", "tablet", "Chrome", "Android", "bing", "organic", ""),
			events: 4, views: 4, msec: 20000, users: []uint64{4}, active: []uint64{4}, newUsers: []uint64{4}, sessions: []uint64{105}, engaged: []uint64{105}},
		spec{at: "2024-01-12T09:00", tuple: tup("click", "/about", "", "desktop", "Chrome", "Windows", "google", "organic", ""),
			events: 1, users: []uint64{5}, sessions: []uint64{106}},
		spec{property: "q", at: "2024-01-10T10:00", tuple: tup("page_view", "/home", "US", "desktop", "Chrome", "Windows", "", "", ""),
			events: 100, users: []uint64{9}},
		spec{at: "2024-01-10T10:05", grain: block.Minute, tuple: tup("page_view", "/home", "US", "desktop", "Chrome", "Windows", "google", "organic", ""),
			events: 7, users: []uint64{1}},
	)
}
