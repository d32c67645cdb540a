package insights

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	insightsv1 "github.com/sextant-analytics/sextant/gen/sextant/insights/v1"
	"github.com/sextant-analytics/sextant/pkg/apierror"
)

// maxFilterDepth bounds the nesting of filter expressions.
const maxFilterDepth = 16

// problems collects every violation of a request.
type problems []apierror.Violation

func (p *problems) add(field, code, format string, args ...any) {
	*p = append(*p, apierror.Violation{Field: field, Description: fmt.Sprintf(format, args...), Code: code})
}

// leafCompiler turns one Filter into a predicate, or records why it cannot.
type leafCompiler[T any] func(path string, f *insightsv1.Filter, p *problems) func(T) bool

// compileExpr compiles a filter expression tree. Problems are recorded with
// their field paths; the returned predicate is only meaningful when none were.
func compileExpr[T any](path string, e *insightsv1.FilterExpression, depth int, leaf leafCompiler[T], p *problems) func(T) bool {
	if depth > maxFilterDepth {
		p.add(path, apierror.ValueOutOfBounds, "filter expressions nest at most %d deep", maxFilterDepth)
		return nil
	}
	switch x := e.GetExpr().(type) {
	case *insightsv1.FilterExpression_AndGroup:
		kids := compileList(path+".andGroup", x.AndGroup, depth, leaf, p)
		return func(v T) bool {
			for _, k := range kids {
				if !k(v) {
					return false
				}
			}
			return true
		}
	case *insightsv1.FilterExpression_OrGroup:
		kids := compileList(path+".orGroup", x.OrGroup, depth, leaf, p)
		return func(v T) bool {
			for _, k := range kids {
				if k(v) {
					return true
				}
			}
			return false
		}
	case *insightsv1.FilterExpression_NotExpression:
		if x.NotExpression == nil {
			p.add(path+".notExpression", apierror.ValueRequired, "an expression is required")
			return nil
		}
		kid := compileExpr(path+".notExpression", x.NotExpression, depth+1, leaf, p)
		return func(v T) bool { return !kid(v) }
	case *insightsv1.FilterExpression_Filter:
		if x.Filter == nil {
			p.add(path+".filter", apierror.ValueRequired, "a filter is required")
			return nil
		}
		return leaf(path+".filter", x.Filter, p)
	}
	p.add(path, apierror.ValueRequired, "one of andGroup, orGroup, notExpression or filter is required")
	return nil
}

func compileList[T any](path string, l *insightsv1.FilterExpressionList, depth int, leaf leafCompiler[T], p *problems) []func(T) bool {
	es := l.GetExpressions()
	if len(es) == 0 {
		p.add(path+".expressions", apierror.ValueRequired, "at least one expression is required")
	}
	kids := make([]func(T) bool, len(es))
	for i, e := range es {
		kids[i] = compileExpr(fmt.Sprintf("%s.expressions[%d]", path, i), e, depth+1, leaf, p)
	}
	return kids
}

// stringMatcher compiles a string filter. Regular expressions use RE2
// syntax and are compiled once per request.
func stringMatcher(path string, sf *insightsv1.StringFilter, p *problems) func(string) bool {
	val, cs := sf.GetValue(), sf.GetCaseSensitive()
	lower := strings.ToLower(val)
	switch mt := sf.GetMatchType(); mt {
	case insightsv1.StringFilter_MATCH_TYPE_UNSPECIFIED, insightsv1.StringFilter_EXACT:
		if cs {
			return func(s string) bool { return s == val }
		}
		return func(s string) bool { return strings.EqualFold(s, val) }
	case insightsv1.StringFilter_BEGINS_WITH:
		if cs {
			return func(s string) bool { return strings.HasPrefix(s, val) }
		}
		return func(s string) bool { return strings.HasPrefix(strings.ToLower(s), lower) }
	case insightsv1.StringFilter_ENDS_WITH:
		if cs {
			return func(s string) bool { return strings.HasSuffix(s, val) }
		}
		return func(s string) bool { return strings.HasSuffix(strings.ToLower(s), lower) }
	case insightsv1.StringFilter_CONTAINS:
		if cs {
			return func(s string) bool { return strings.Contains(s, val) }
		}
		return func(s string) bool { return strings.Contains(strings.ToLower(s), lower) }
	case insightsv1.StringFilter_FULL_REGEXP, insightsv1.StringFilter_PARTIAL_REGEXP:
		expr := val
		if mt == insightsv1.StringFilter_FULL_REGEXP {
			expr = `^(?:` + val + `)$`
		}
		if !cs {
			expr = `(?i)` + expr
		}
		// Check the value alone first so that the error names the
		// client's expression, not our wrapping.
		if _, err := regexp.Compile(val); err != nil {
			p.add(path+".value", apierror.ValueInvalid, "invalid regular expression: %v", err)
			return nil
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			p.add(path+".value", apierror.ValueInvalid, "invalid regular expression: %v", err)
			return nil
		}
		return re.MatchString
	default:
		p.add(path+".matchType", apierror.ValueInvalid, "unknown match type %d", int32(mt))
		return nil
	}
}

func inListMatcher(path string, f *insightsv1.InListFilter, p *problems) func(string) bool {
	vs := f.GetValues()
	if len(vs) == 0 {
		p.add(path+".values", apierror.ValueRequired, "at least one value is required")
		return nil
	}
	set := make(map[string]struct{}, len(vs))
	cs := f.GetCaseSensitive()
	for _, v := range vs {
		if !cs {
			v = strings.ToLower(v)
		}
		set[v] = struct{}{}
	}
	if cs {
		return func(s string) bool { _, ok := set[s]; return ok }
	}
	return func(s string) bool { _, ok := set[strings.ToLower(s)]; return ok }
}

func numericValue(path string, v *insightsv1.NumericValue, p *problems) (float64, bool) {
	switch x := v.GetOneValue().(type) {
	case *insightsv1.NumericValue_Int64Value:
		return float64(x.Int64Value), true
	case *insightsv1.NumericValue_DoubleValue:
		if math.IsNaN(x.DoubleValue) {
			p.add(path, apierror.ValueInvalid, "NaN is not a valid value")
			return 0, false
		}
		return x.DoubleValue, true
	}
	p.add(path, apierror.ValueRequired, "one of int64Value or doubleValue is required")
	return 0, false
}

// numberMatcher compiles a numeric or between filter; ok is false for
// other kinds of filter.
func numberMatcher(path string, f *insightsv1.Filter, p *problems) (m func(float64) bool, ok bool) {
	switch x := f.GetOneFilter().(type) {
	case *insightsv1.Filter_NumericFilter:
		nf := x.NumericFilter
		path += ".numericFilter"
		want, vok := numericValue(path+".value", nf.GetValue(), p)
		var m func(float64) bool
		switch op := nf.GetOperation(); op {
		case insightsv1.NumericFilter_EQUAL:
			m = func(v float64) bool { return v == want }
		case insightsv1.NumericFilter_LESS_THAN:
			m = func(v float64) bool { return v < want }
		case insightsv1.NumericFilter_LESS_THAN_OR_EQUAL:
			m = func(v float64) bool { return v <= want }
		case insightsv1.NumericFilter_GREATER_THAN:
			m = func(v float64) bool { return v > want }
		case insightsv1.NumericFilter_GREATER_THAN_OR_EQUAL:
			m = func(v float64) bool { return v >= want }
		case insightsv1.NumericFilter_OPERATION_UNSPECIFIED:
			p.add(path+".operation", apierror.ValueRequired, "an operation is required")
		default:
			p.add(path+".operation", apierror.ValueInvalid, "unknown operation %d", int32(op))
		}
		if !vok {
			return nil, true
		}
		return m, true
	case *insightsv1.Filter_BetweenFilter:
		bf := x.BetweenFilter
		path += ".betweenFilter"
		lo, lok := numericValue(path+".fromValue", bf.GetFromValue(), p)
		hi, hok := numericValue(path+".toValue", bf.GetToValue(), p)
		if !lok || !hok {
			return nil, true
		}
		return func(v float64) bool { return v >= lo && v <= hi }, true
	}
	return nil, false
}

// dimFilterCompiler compiles dimension filters on evaluation contexts and
// records which value sources they read.
type dimFilterCompiler struct {
	realtime bool
	uses     [srcRange + 1]bool
	// custom are the custom dimensions the filter names.
	custom []string
}

func (c *dimFilterCompiler) leaf(path string, f *insightsv1.Filter, p *problems) func(*evalCtx) bool {
	name := f.GetFieldName()
	src, known := 0, false
	if name == "" {
		p.add(path+".fieldName", apierror.ValueRequired, "a dimension name is required")
	} else {
		var hint string
		src, known, hint = lookupDim(name, c.realtime)
		if !known {
			p.add(path+".fieldName", apierror.NameInvalid, "unknown dimension %q%s", name, hint)
		} else {
			c.uses[src] = true
			if customDim(name) && !slices.Contains(c.custom, name) {
				c.custom = append(c.custom, name)
			}
		}
	}
	var match func(string) bool
	switch x := f.GetOneFilter().(type) {
	case *insightsv1.Filter_StringFilter:
		match = stringMatcher(path+".stringFilter", x.StringFilter, p)
	case *insightsv1.Filter_InListFilter:
		match = inListMatcher(path+".inListFilter", x.InListFilter, p)
	case *insightsv1.Filter_NumericFilter, *insightsv1.Filter_BetweenFilter:
		num, _ := numberMatcher(path, f, p)
		if num != nil {
			// Values that do not look like numbers never match.
			match = func(s string) bool {
				v, err := strconv.ParseFloat(s, 64)
				return err == nil && num(v)
			}
		}
	default:
		p.add(path, apierror.ValueRequired, "one of stringFilter, inListFilter, numericFilter or betweenFilter is required")
	}
	if match == nil || !known {
		return nil
	}
	return func(e *evalCtx) bool { return match(e.value(src)) }
}

// metricLeaf compiles metric filters on a row's metric values; field names
// must be requested metrics.
func metricLeaf(metricIndex map[string]int) leafCompiler[[]float64] {
	return func(path string, f *insightsv1.Filter, p *problems) func([]float64) bool {
		name := f.GetFieldName()
		idx, known := metricIndex[name]
		switch {
		case name == "":
			p.add(path+".fieldName", apierror.ValueRequired, "a metric name is required")
		case !known:
			if _, ok := lookupMetric(name); ok {
				p.add(path+".fieldName", apierror.ValueInvalid, "metric %q is not among the requested metrics", name)
			} else {
				p.add(path+".fieldName", apierror.NameInvalid, "unknown metric %q", name)
			}
		}
		num, ok := numberMatcher(path, f, p)
		if !ok {
			if f.GetOneFilter() == nil {
				p.add(path, apierror.ValueRequired, "one of numericFilter or betweenFilter is required")
			} else {
				p.add(path, apierror.ValueInvalid, "metric filters take numericFilter or betweenFilter")
			}
			return nil
		}
		if num == nil || !known {
			return nil
		}
		return func(vals []float64) bool { return num(vals[idx]) }
	}
}
