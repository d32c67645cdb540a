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
	srcChannelGroup
	srcFirstUserChannelGroup
	srcSourcePlatform
	srcFirstUserSourceMedium
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
	if catalog.IsInternal(name) {
		return 0, false, ""
	}
	if i := catalog.Index(name); i >= 0 {
		return i, true, ""
	}
	if customDim(name) {
		return catalog.Index(catalog.CustomValue), true, ""
	}
	switch name {
	case "country":
		return srcCountry, true, ""
	case "sessionSourceMedium":
		return srcSourceMedium, true, ""
	case "sessionDefaultChannelGroup":
		return srcChannelGroup, true, ""
	case "firstUserDefaultChannelGroup":
		return srcFirstUserChannelGroup, true, ""
	case "sessionSourcePlatform":
		return srcSourcePlatform, true, ""
	case "firstUserSourceMedium":
		return srcFirstUserSourceMedium, true, ""
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

	// Outcomes: read from the sums and extra sketches of versions whose
	// layout has Outcomes (traffic/v5 on).
	mAverageSessionDuration
	mKeyEvents
	mSessionKeyEventRate
	mTotalRevenue
	mPurchaseRevenue
	mTransactions
	mEcommercePurchases
	mItemsViewed
	mAddToCarts
	mCheckouts
	mItemRevenue
	mItemsPurchased
	mItemsAddedToCart
	mAveragePurchaseRevenue
	mPurchaserRate
	mFirstTimePurchasers
	mTotalPurchasers
	mAverageRevenuePerUser

	// Windowed active users (windows.go): counted by reports of their
	// own, not from a row's cells.
	mActive1DayUsers
	mActive7DayUsers
	mActive28DayUsers
	mDauPerWau
	mDauPerMau
	mWauPerMau

	// A custom metric (customEvent:<param>): the sum of its values.
	mCustom

	// numMetrics counts the metrics above.
	numMetrics
)

type metricDef struct {
	id  metricID
	typ insightsv1.MetricType
}

// outcome reports whether the metric reads what only versions with
// Outcomes count.
func (id metricID) outcome() bool {
	return id >= mAverageSessionDuration && id <= mAverageRevenuePerUser || id == mCustom
}

// Report names of custom definitions.
const (
	customEventPrefix = "customEvent:"
	customUserPrefix  = "customUser:"
)

// customDim reports whether name names a custom dimension.
func customDim(name string) bool {
	for _, p := range []string{customEventPrefix, customUserPrefix} {
		if rest, ok := strings.CutPrefix(name, p); ok && rest != "" {
			return true
		}
	}
	return false
}

// customMetric reports whether name names a custom metric.
func customMetric(name string) bool {
	rest, ok := strings.CutPrefix(name, customEventPrefix)
	return ok && rest != ""
}

// windowed reports whether the metric counts users over trailing days
// (windows.go).
func (id metricID) windowed() bool { return id >= mActive1DayUsers && id <= mWauPerMau }

// itemScoped reports whether the metric is counted per item, and so may be
// reported by item-scoped dimensions (GA4 allows only those with them).
func (id metricID) itemScoped() bool {
	return id == mItemsViewed || id == mItemRevenue || id == mItemsPurchased || id == mItemsAddedToCart
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
	if id, ok := outcomeMetrics[name]; ok {
		return id, true
	}
	if w, ok := windowMetrics[name]; ok {
		return metricDef{w.id, w.typ}, true
	}
	if customMetric(name) {
		return metricDef{mCustom, insightsv1.MetricType_TYPE_FLOAT}, true
	}
	return metricDef{}, false
}

// outcomeMetrics are the metrics of traffic/v5's sums and extra sketches.
var outcomeMetrics = map[string]metricDef{
	"averageSessionDuration": {mAverageSessionDuration, insightsv1.MetricType_TYPE_SECONDS},
	"keyEvents":              {mKeyEvents, insightsv1.MetricType_TYPE_INTEGER},
	"sessionKeyEventRate":    {mSessionKeyEventRate, insightsv1.MetricType_TYPE_FLOAT},
	"totalRevenue":           {mTotalRevenue, insightsv1.MetricType_TYPE_CURRENCY},
	"purchaseRevenue":        {mPurchaseRevenue, insightsv1.MetricType_TYPE_CURRENCY},
	"transactions":           {mTransactions, insightsv1.MetricType_TYPE_INTEGER},
	"ecommercePurchases":     {mEcommercePurchases, insightsv1.MetricType_TYPE_INTEGER},
	"itemsViewed":            {mItemsViewed, insightsv1.MetricType_TYPE_INTEGER},
	"addToCarts":             {mAddToCarts, insightsv1.MetricType_TYPE_INTEGER},
	"checkouts":              {mCheckouts, insightsv1.MetricType_TYPE_INTEGER},
	"itemRevenue":            {mItemRevenue, insightsv1.MetricType_TYPE_CURRENCY},
	"itemsPurchased":         {mItemsPurchased, insightsv1.MetricType_TYPE_INTEGER},
	"itemsAddedToCart":       {mItemsAddedToCart, insightsv1.MetricType_TYPE_INTEGER},
	"averagePurchaseRevenue": {mAveragePurchaseRevenue, insightsv1.MetricType_TYPE_CURRENCY},
	"purchaserRate":          {mPurchaserRate, insightsv1.MetricType_TYPE_FLOAT},
	"firstTimePurchasers":    {mFirstTimePurchasers, insightsv1.MetricType_TYPE_INTEGER},
	"totalPurchasers":        {mTotalPurchasers, insightsv1.MetricType_TYPE_INTEGER},
	"averageRevenuePerUser":  {mAverageRevenuePerUser, insightsv1.MetricType_TYPE_CURRENCY},
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
	case mAverageSessionDuration:
		return []int{analytics.SketchSessions}
	case mSessionKeyEventRate:
		return []int{analytics.SketchSessions, analytics.SketchKeySessions}
	case mPurchaserRate:
		return []int{analytics.SketchPurchasers, analytics.SketchActiveUsers}
	case mFirstTimePurchasers:
		return []int{analytics.SketchFirstPurchasers}
	case mTotalPurchasers:
		return []int{analytics.SketchPurchasers}
	case mAverageRevenuePerUser:
		return []int{analytics.SketchActiveUsers}
	}
	return nil
}

// estimates computes each sketch's estimate at most once per row.
type estimates struct {
	a *analytics.Acc
	// money converts stored amounts (micro-units of the property's
	// currency) into the report's currency.
	money float64
	have  [analytics.NumSketches]bool
	val   [analytics.NumSketches]float64
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
	case mAverageSessionDuration:
		return div(float64(a.Sums[analytics.SumSessionSeconds]), e.get(analytics.SketchSessions))
	case mKeyEvents:
		return float64(a.Sums[analytics.SumKeyEvents])
	case mSessionKeyEventRate:
		return math.Min(div(e.get(analytics.SketchKeySessions), e.get(analytics.SketchSessions)), 1)
	case mTotalRevenue:
		return e.amount(a.Sums[analytics.SumTotalRevenue])
	case mPurchaseRevenue:
		return e.amount(a.Sums[analytics.SumPurchaseRevenue])
	case mTransactions:
		return float64(a.Sums[analytics.SumTransactions])
	case mEcommercePurchases:
		return float64(a.Sums[analytics.SumPurchases])
	case mItemsViewed:
		return float64(a.Sums[analytics.SumItemsViewed])
	case mAddToCarts:
		return float64(a.Sums[analytics.SumAddToCarts])
	case mCheckouts:
		return float64(a.Sums[analytics.SumCheckouts])
	case mItemRevenue:
		return e.amount(a.Sums[analytics.SumItemRevenue])
	case mItemsPurchased:
		return float64(a.Sums[analytics.SumItemsPurchased])
	case mItemsAddedToCart:
		return float64(a.Sums[analytics.SumItemsAddedToCart])
	case mAveragePurchaseRevenue:
		// GA4: purchase revenue per transaction.
		return div(e.amount(a.Sums[analytics.SumPurchaseRevenue]), float64(a.Sums[analytics.SumTransactions]))
	case mPurchaserRate:
		return math.Min(div(e.get(analytics.SketchPurchasers), e.get(analytics.SketchActiveUsers)), 1)
	case mFirstTimePurchasers:
		return e.get(analytics.SketchFirstPurchasers)
	case mTotalPurchasers:
		return e.get(analytics.SketchPurchasers)
	case mAverageRevenuePerUser:
		return div(e.amount(a.Sums[analytics.SumTotalRevenue]), e.get(analytics.SketchActiveUsers))
	case mCustom:
		return float64(a.Sums[analytics.SumCustom]) / 1e6
	}
	return 0
}

// amount is a stored amount (micro-units) in the report's currency.
func (e *estimates) amount(micros int64) float64 {
	if e.money == 0 {
		return float64(micros) / 1e6
	}
	return float64(micros) / 1e6 * e.money
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
	case src == catalog.Index(catalog.CustomValue):
		return []string{catalog.CustomDimension, catalog.CustomValue}
	case src < catalog.MaxDimensions && src < len(catalog.Dimensions):
		return []string{catalog.Dimensions[src].Name}
	case src == srcCountry, src == srcContinent, src == srcContinentID, src == srcSubContinent, src == srcSubContinentCode:
		return []string{catalog.CountryID}
	case src == srcSourceMedium:
		return []string{catalog.SessionSource, catalog.SessionMedium}
	case src == srcChannelGroup, src == srcSourcePlatform:
		return []string{catalog.SessionSource, catalog.SessionMedium, catalog.SessionCampaign}
	case src == srcFirstUserChannelGroup:
		return []string{catalog.FirstUserSource, catalog.FirstUserMedium, catalog.FirstUserCampaign}
	case src == srcFirstUserSourceMedium:
		return []string{catalog.FirstUserSource, catalog.FirstUserMedium}
	}
	return nil
}
