package insights

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	insightsv1 "github.com/sextant-analytics/sextant/gen/sextant/insights/v1"
	"github.com/sextant-analytics/sextant/pkg/apierror"
	"github.com/sextant-analytics/sextant/pkg/block"
)

const (
	maxDateRanges   = 4
	maxMinuteRanges = 2
	// Realtime reports see the last realtimeMinutes minutes.
	realtimeMinutes = 30
)

// span is one date or minute range as a bucket interval [from, to).
type span struct {
	from, to int64
	name     string
}

// civil is a calendar date, held as midnight UTC for date arithmetic.
type civil = time.Time

func today(now time.Time, tz *time.Location) civil {
	y, m, d := now.In(tz).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// parseDate reads YYYY-MM-DD, today, yesterday or NdaysAgo.
func parseDate(s string, today civil) (civil, error) {
	switch {
	case s == "":
		return civil{}, fmt.Errorf("a date is required")
	case s == "today":
		return today, nil
	case s == "yesterday":
		return today.AddDate(0, 0, -1), nil
	case strings.HasSuffix(s, "daysAgo"):
		digits := strings.TrimSuffix(s, "daysAgo")
		n, err := strconv.Atoi(digits)
		if err != nil || n < 0 || digits[0] == '+' || len(digits) > 6 {
			return civil{}, fmt.Errorf("invalid date %q: want NdaysAgo with N a whole number of days", s)
		}
		return today.AddDate(0, 0, -n), nil
	}
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return civil{}, fmt.Errorf("invalid date %q: want YYYY-MM-DD, today, yesterday or NdaysAgo", s)
	}
	return d, nil
}

// ceilTo rounds t up to a multiple of step.
func ceilTo(t, step int64) int64 {
	r := t % step
	if r < 0 {
		r += step
	}
	if r == 0 {
		return t
	}
	return t + step - r
}

// dateSpans validates the date ranges and turns each into a bucket interval
// covering local 00:00 of its start date up to the end of its end date.
//
// A cell belongs to a range when its bucket starts within it, in local time:
// both ends are rounded up to the grain. For zones with whole-hour offsets
// this changes nothing. Zones with a non-whole-hour offset (India at +05:30,
// Newfoundland, Nepal, …) get hour cells attributed by their start: the hour
// cell from 23:30 to 00:30 local belongs to the first day, consistently with
// the date and hour dimensions, which also read the bucket's start; adjacent
// ranges never share a cell. Minute cells are exact for every zone.
func dateSpans(rs []*insightsv1.DateRange, g block.Grain, tz *time.Location, now time.Time, p *problems) []span {
	switch {
	case len(rs) == 0:
		p.add("dateRanges", apierror.ValueRequired, "at least one date range is required")
		return nil
	case len(rs) > maxDateRanges:
		p.add("dateRanges", apierror.ExceededMaxEntities, "at most %d date ranges are allowed, got %d", maxDateRanges, len(rs))
		return nil
	}
	td := today(now, tz)
	step := min(g.Seconds(), 3600) // day blocks are read for whole days only (read.go)
	out := make([]span, 0, len(rs))
	for i, r := range rs {
		path := fmt.Sprintf("dateRanges[%d]", i)
		start, serr := parseDate(r.GetStartDate(), td)
		if serr != nil {
			p.add(path+".startDate", dateCode(r.GetStartDate()), "%v", serr)
		}
		end, eerr := parseDate(r.GetEndDate(), td)
		if eerr != nil {
			p.add(path+".endDate", dateCode(r.GetEndDate()), "%v", eerr)
		}
		name := rangeName(path, r.GetName(), "date_range_", i, out, p)
		if serr != nil || eerr != nil {
			continue
		}
		if start.After(end) {
			p.add(path+".startDate", apierror.ValueInvalid, "startDate %s is after endDate %s", start.Format(time.DateOnly), end.Format(time.DateOnly))
			continue
		}
		from := time.Date(start.Year(), start.Month(), start.Day(), 0, 0, 0, 0, tz).Unix()
		to := time.Date(end.Year(), end.Month(), end.Day()+1, 0, 0, 0, 0, tz).Unix()
		out = append(out, span{from: ceilTo(from, step), to: ceilTo(to, step), name: name})
	}
	return out
}

func dateCode(s string) string {
	if s == "" {
		return apierror.ValueRequired
	}
	return apierror.ValueInvalid
}

// rangeName validates a range's name or makes the default one.
func rangeName(path, name, prefix string, i int, prev []span, p *problems) string {
	if name == "" {
		return prefix + strconv.Itoa(i)
	}
	for _, reserved := range []string{"date_range_", "minute_range_", "RESERVED_"} {
		if strings.HasPrefix(name, reserved) {
			p.add(path+".name", apierror.NameReserved, "range names may not begin with %q", reserved)
			return name
		}
	}
	if slices.ContainsFunc(prev, func(s span) bool { return s.name == name }) {
		p.add(path+".name", apierror.NameDuplicated, "range name %q is used twice", name)
	}
	return name
}

// minuteSpans validates realtime minute ranges: whole minutes counted back
// from now's minute, each end in 0..29, the whole of the current minute
// being "0 minutes ago".
func minuteSpans(rs []*insightsv1.MinuteRange, nowMinute int64, p *problems) []span {
	if len(rs) == 0 {
		return []span{{from: nowMinute - (realtimeMinutes-1)*60, to: nowMinute + 60, name: "minute_range_0"}}
	}
	if len(rs) > maxMinuteRanges {
		p.add("minuteRanges", apierror.ExceededMaxEntities, "at most %d minute ranges are allowed, got %d", maxMinuteRanges, len(rs))
		return nil
	}
	out := make([]span, 0, len(rs))
	for i, r := range rs {
		path := fmt.Sprintf("minuteRanges[%d]", i)
		start, end := int32(realtimeMinutes-1), int32(0)
		if r.StartMinutesAgo != nil {
			start = *r.StartMinutesAgo
		}
		if r.EndMinutesAgo != nil {
			end = *r.EndMinutesAgo
		}
		ok := true
		if start < 0 || start >= realtimeMinutes {
			p.add(path+".startMinutesAgo", apierror.ValueOutOfBounds, "startMinutesAgo must be in 0..%d, got %d", realtimeMinutes-1, start)
			ok = false
		}
		if end < 0 || end >= realtimeMinutes {
			p.add(path+".endMinutesAgo", apierror.ValueOutOfBounds, "endMinutesAgo must be in 0..%d, got %d", realtimeMinutes-1, end)
			ok = false
		}
		if ok && start < end {
			p.add(path+".startMinutesAgo", apierror.ValueInvalid, "startMinutesAgo (%d) must not be less than endMinutesAgo (%d)", start, end)
			ok = false
		}
		name := rangeName(path, r.GetName(), "minute_range_", i, out, p)
		if !ok {
			continue
		}
		out = append(out, span{from: nowMinute - int64(start)*60, to: nowMinute - int64(end)*60 + 60, name: name})
	}
	return out
}

// scanSegments merges the ranges' intervals so that each cell is read once.
func scanSegments(spans []span) [][2]int64 {
	segs := make([][2]int64, 0, len(spans))
	for _, s := range spans {
		if s.from < s.to {
			segs = append(segs, [2]int64{s.from, s.to})
		}
	}
	slices.SortFunc(segs, func(a, b [2]int64) int { return cmp.Compare(a[0], b[0]) })
	out := segs[:0]
	for _, s := range segs {
		if n := len(out); n > 0 && s[0] <= out[n-1][1] {
			out[n-1][1] = max(out[n-1][1], s[1])
			continue
		}
		out = append(out, s)
	}
	return out
}
