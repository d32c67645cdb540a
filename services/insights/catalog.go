package insights

import (
	"math"
	"strconv"
	"strings"

	insightsv1 "github.com/sextant-analytics/sextant/gen/sextant/insights/v1"
	"github.com/sextant-analytics/sextant/pkg/analytics"
	"github.com/sextant-analytics/sextant/pkg/catalog"
)

// A dimension's value comes from one source: a stored value (sources below
// catalog.MaxDimensions: the dimension's index in the catalogue), a value
// derived from stored ones, a value derived from the cell's time bucket,
// or the name of the date or minute range the cell is counted in. Sources
// index the evaluation context's value tables.
const (
	srcCountry = catalog.MaxDimensions + iota
	srcSourceMedium
	srcContinent
	srcContinentID
	srcSubContinent
	srcSubContinentCode
	srcDate
	srcDateHour
	srcDateHourMinute
	srcHour
	srcDayOfWeek
	srcMinutesAgo
	srcRange

	// Sources below numTupleSrc depend on the tuple only.
	numTupleSrc = srcDate
	// Sources in [srcDate, srcRange) depend on the bucket only.
	numTimeSrc = srcRange - srcDate
)

const (
	notSet = "(not set)"

	dateRangeDim   = "dateRange"
	minuteRangeDim = "minuteRange"
)

// lookupDim resolves a dimension's API name to its source. Realtime reports
// know minutesAgo and minuteRange, the others dateRange.
func lookupDim(name string, realtime bool) (src int, ok bool, hint string) {
	if i := catalog.Index(name); i >= 0 {
		return i, true, ""
	}
	switch name {
	case "country":
		return srcCountry, true, ""
	case "sessionSourceMedium":
		return srcSourceMedium, true, ""
	case "continent":
		return srcContinent, true, ""
	case "continentId":
		return srcContinentID, true, ""
	case "subContinent":
		return srcSubContinent, true, ""
	case "subContinentCode":
		return srcSubContinentCode, true, ""
	case "date":
		return srcDate, true, ""
	case "dateHour":
		return srcDateHour, true, ""
	case "dateHourMinute":
		return srcDateHourMinute, true, ""
	case "hour":
		return srcHour, true, ""
	case "dayOfWeek":
		return srcDayOfWeek, true, ""
	case "minutesAgo":
		if realtime {
			return srcMinutesAgo, true, ""
		}
		return 0, false, " (only in realtime reports)"
	case minuteRangeDim:
		if realtime {
			return srcRange, true, ""
		}
		return 0, false, " (only in realtime reports)"
	case dateRangeDim:
		if !realtime {
			return srcRange, true, ""
		}
		return 0, false, " (realtime reports use minuteRange)"
	}
	return 0, false, ""
}

// metricID names a metric the engine computes.
type metricID uint8

const (
	mEventCount metricID = iota
	mScreenPageViews
	mTotalUsers
	mActiveUsers
	mNewUsers
	mSessions
	mEngagedSessions
	mEngagementRate
	mBounceRate
	mEventsPerSession
	mSessionsPerUser
	mScreenPageViewsPerUser
	mUserEngagementDuration
	mScreenPageViewsPerSession

	// numMetrics counts the metrics above.
	numMetrics
)

type metricDef struct {
	id  metricID
	typ insightsv1.MetricType
}

func lookupMetric(name string) (metricDef, bool) {
	const (
		integer = insightsv1.MetricType_TYPE_INTEGER
		float   = insightsv1.MetricType_TYPE_FLOAT
		seconds = insightsv1.MetricType_TYPE_SECONDS
	)
	switch name {
	case "eventCount":
		return metricDef{mEventCount, integer}, true
	case "screenPageViews":
		return metricDef{mScreenPageViews, integer}, true
	case "totalUsers":
		return metricDef{mTotalUsers, integer}, true
	case "activeUsers":
		return metricDef{mActiveUsers, integer}, true
	case "newUsers":
		return metricDef{mNewUsers, integer}, true
	case "sessions":
		return metricDef{mSessions, integer}, true
	case "engagedSessions":
		return metricDef{mEngagedSessions, integer}, true
	case "engagementRate":
		return metricDef{mEngagementRate, float}, true
	case "bounceRate":
		return metricDef{mBounceRate, float}, true
	case "eventsPerSession":
		return metricDef{mEventsPerSession, float}, true
	case "sessionsPerUser":
		return metricDef{mSessionsPerUser, float}, true
	case "screenPageViewsPerUser":
		return metricDef{mScreenPageViewsPerUser, float}, true
	case "userEngagementDuration":
		return metricDef{mUserEngagementDuration, seconds}, true
	case "screenPageViewsPerSession":
		return metricDef{mScreenPageViewsPerSession, float}, true
	}
	return metricDef{}, false
}

// needs reports which sketch slots a metric reads.
func (id metricID) needs() (slots []int) {
	switch id {
	case mTotalUsers:
		return []int{analytics.SketchUsers}
	case mActiveUsers, mScreenPageViewsPerUser:
		return []int{analytics.SketchActiveUsers}
	case mNewUsers:
		return []int{analytics.SketchNewUsers}
	case mSessions, mEventsPerSession, mScreenPageViewsPerSession:
		return []int{analytics.SketchSessions}
	case mEngagedSessions:
		return []int{analytics.SketchEngagedSessions}
	case mEngagementRate, mBounceRate:
		return []int{analytics.SketchSessions, analytics.SketchEngagedSessions}
	case mSessionsPerUser:
		return []int{analytics.SketchSessions, analytics.SketchActiveUsers}
	}
	return nil
}

// estimates computes each sketch's estimate at most once per row.
type estimates struct {
	a    *analytics.Acc
	have [analytics.NumSketches]bool
	val  [analytics.NumSketches]float64
}

func (e *estimates) get(i int) float64 {
	if !e.have[i] {
		e.have[i], e.val[i] = true, float64(e.a.Estimate(i))
	}
	return e.val[i]
}

func div(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// value computes one metric of a merged aggregate. Users and sessions are
// always estimates of merged sketches, never sums of per-cell counts.
func (e *estimates) value(id metricID) float64 {
	a := e.a
	switch id {
	case mEventCount:
		return float64(a.Events)
	case mScreenPageViews:
		return float64(a.PageViews)
	case mTotalUsers:
		return e.get(analytics.SketchUsers)
	case mActiveUsers:
		return e.get(analytics.SketchActiveUsers)
	case mNewUsers:
		return e.get(analytics.SketchNewUsers)
	case mSessions:
		return e.get(analytics.SketchSessions)
	case mEngagedSessions:
		return e.get(analytics.SketchEngagedSessions)
	case mEngagementRate:
		return e.engagementRate()
	case mBounceRate:
		// No sessions, no bounces: 0 rather than 1, so that an empty row
		// stays empty.
		if e.get(analytics.SketchSessions) == 0 {
			return 0
		}
		return 1 - e.engagementRate()
	case mEventsPerSession:
		return div(float64(a.Events), e.get(analytics.SketchSessions))
	case mSessionsPerUser:
		// GA4: sessions divided by active users.
		return div(e.get(analytics.SketchSessions), e.get(analytics.SketchActiveUsers))
	case mScreenPageViewsPerUser:
		// GA4: views per active user.
		return div(float64(a.PageViews), e.get(analytics.SketchActiveUsers))
	case mUserEngagementDuration:
		return float64(a.EngagementMsec) / 1000
	case mScreenPageViewsPerSession:
		// GA4: views per session.
		return div(float64(a.PageViews), e.get(analytics.SketchSessions))
	}
	return 0
}

// engagementRate is engaged sessions over sessions, clamped to [0, 1]: the
// two are independent estimates once the sketches are dense.
func (e *estimates) engagementRate() float64 {
	r := div(e.get(analytics.SketchEngagedSessions), e.get(analytics.SketchSessions))
	return math.Min(r, 1)
}

// formatMetric prints integers as plain integers and everything else with at
// most six decimals, trailing zeros trimmed.
func formatMetric(v float64, t insightsv1.MetricType) string {
	if t == insightsv1.MetricType_TYPE_INTEGER {
		return strconv.FormatInt(int64(math.Round(v)), 10)
	}
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return "0"
	}
	s := strconv.FormatFloat(v, 'f', 6, 64)
	if strings.IndexByte(s, '.') >= 0 {
		s = strings.TrimRight(s, "0")
		s = strings.TrimSuffix(s, ".")
	}
	if s == "-0" {
		return "0"
	}
	return s
}

// srcStored lists the stored dimensions a source reads.
func srcStored(src int) []string {
	switch {
	case src < catalog.MaxDimensions && src < len(catalog.Dimensions):
		return []string{catalog.Dimensions[src].Name}
	case src == srcCountry, src == srcContinent, src == srcContinentID, src == srcSubContinent, src == srcSubContinentCode:
		return []string{catalog.CountryID}
	case src == srcSourceMedium:
		return []string{catalog.SessionSource, catalog.SessionMedium}
	}
	return nil
}
