package insights

import (
	"context"
	"slices"

	"connectrpc.com/connect"

	insightsv1 "github.com/sextant-analytics/sextant/gen/sextant/insights/v1"
	"github.com/sextant-analytics/sextant/pkg/apierror"
	"github.com/sextant-analytics/sextant/pkg/auth"
	"github.com/sextant-analytics/sextant/pkg/catalog"
	"github.com/sextant-analytics/sextant/pkg/property"
)

// The metadata of what reports accept: GA4's API names, UI names,
// categories and definitions (quoted or closely paraphrased from the GA4
// Data API's dimension and metric reference, so that a GA4 user reads the
// definitions they know). Realtime-only dimensions (minutesAgo,
// minuteRange) and the range dimensions are not listed, as GA4 lists them
// in its realtime schema only. TestMetadataCoversTheEngine keeps this table
// and the engine's lookups in step.

const (
	catEvent   = "Event"
	catPage    = "Page / Screen"
	catGeo     = "Geography"
	catDevice  = "Platform / Device"
	catTraffic = "Traffic Source"
	catTime    = "Time"
	catUser    = "User"
	catSession = "Session"
	catEcom    = "Ecommerce"
	catCustom  = "Custom"
	catRevenue = "Revenue"
)

var dimensionMetadata = []*insightsv1.DimensionMetadata{
	{ApiName: catalog.EventName, UiName: "Event name", Category: catEvent, Description: "The name of the event."},
	{ApiName: catalog.PagePath, UiName: "Page path", Category: catPage, Description: "The portion of the URL between the hostname and the query string for web pages visited; for example, the pagePath of https://www.example.com/store/contact-us?query_string=true is /store/contact-us."},
	{ApiName: catalog.HostName, UiName: "Hostname", Category: catPage, Description: "The subdomain and domain names of the page's URL; for example, the hostname of www.example.com/contact.html is www.example.com."},
	{ApiName: "country", UiName: "Country", Category: catGeo, Description: "The country from which the user activity originated, derived from the IP address (never stored) or the hit's user_location."},
	{ApiName: "continent", UiName: "Continent", Category: catGeo, Description: "The continent from which the user activity originated; for example, Americas or Asia."},
	{ApiName: "continentId", UiName: "Continent ID", Category: catGeo, Description: "The geographic ID (UN M49) of the continent from which the user activity originated; for example, 019 for the Americas."},
	{ApiName: "subContinent", UiName: "Sub-continent", Category: catGeo, Description: "The subcontinent from which the user activity originated; for example, Western Europe or Northern America."},
	{ApiName: "subContinentCode", UiName: "Sub-continent code", Category: catGeo, Description: "The code (UN M49) of the subcontinent from which the user activity originated; for example, 155 for Western Europe."},
	{ApiName: catalog.CountryID, UiName: "Country ID", Category: catGeo, Description: "The geographic ID of the country from which the user activity originated, formatted according to ISO 3166-1 alpha-2."},
	{ApiName: catalog.DeviceCategory, UiName: "Device category", Category: catDevice, Description: "The type of device: desktop, tablet, mobile, smart tv (and bot, for traffic GA4 would exclude)."},
	{ApiName: catalog.Browser, UiName: "Browser", Category: catDevice, Description: "The browsers used to view your website."},
	{ApiName: catalog.OperatingSystem, UiName: "Operating system", Category: catDevice, Description: "The operating systems used by visitors to your app or website, desktop and mobile, such as Windows and Android."},
	{ApiName: catalog.SessionSource, UiName: "Session source", Category: catTraffic, Description: "The source that initiated a session on your website or app."},
	{ApiName: catalog.SessionMedium, UiName: "Session medium", Category: catTraffic, Description: "The medium that initiated a session on your website or app."},
	{ApiName: catalog.SessionCampaign, UiName: "Session campaign", Category: catTraffic, Description: "The marketing campaign name of the campaign that initiated a session."},
	{ApiName: "sessionSourceMedium", UiName: "Session source / medium", Category: catTraffic, Description: "The combined values of the dimensions sessionSource and sessionMedium."},
	{ApiName: catalog.LandingPage, UiName: "Landing page", Category: catPage, Description: "The page path of the first page of the session (events before it are \"(not set)\")."},
	{ApiName: catalog.LandingPagePlusQueryString, UiName: "Landing page + query string", Category: catPage, Description: "The page path and query string of the first page of the session."},
	{ApiName: catalog.PageTitle, UiName: "Page title", Category: catPage, Description: "The web page titles used on your site."},
	{ApiName: catalog.PageReferrer, UiName: "Page referrer", Category: catPage, Description: "The full referring URL including the hostname and path (page_referrer)."},
	{ApiName: catalog.FullPageURL, UiName: "Full page URL", Category: catPage, Description: "The hostname, page path, and query string of web pages visited; for example, www.example.com/store/contact-us?query_string=true."},
	{ApiName: catalog.LinkURL, UiName: "Link URL", Category: catEvent, Description: "The full URL of an outbound link or downloaded file (the link_url parameter)."},
	{ApiName: catalog.FileName, UiName: "File name", Category: catEvent, Description: "The page path of a downloaded file; for example, /menus/dinner-menu.pdf (the file_name parameter)."},
	{ApiName: catalog.SearchTerm, UiName: "Search term", Category: catEvent, Description: "The term searched by the user (the search_term parameter of view_search_results)."},
	{ApiName: catalog.TransactionID, UiName: "Transaction ID", Category: catEcom, Description: "The ID of the ecommerce transaction (the transaction_id parameter)."},
	{ApiName: catalog.BrowserVersion, UiName: "Browser version", Category: catDevice, Description: "The major version of the browser used to view your website."},
	{ApiName: catalog.OperatingSystemVersion, UiName: "OS version", Category: catDevice, Description: "The operating system versions used by visitors to your website or app; for example, Android 10's version is 10, and iOS 13.5.1's version is 13.5.1."},
	{ApiName: catalog.Platform, UiName: "Platform", Category: catDevice, Description: "The platform on which your app or website ran; for example, web, iOS, or Android."},
	{ApiName: catalog.ScreenResolution, UiName: "Screen resolution", Category: catDevice, Description: "The screen resolution of the user's monitor; for example, 1920x1080."},
	{ApiName: catalog.DeviceModel, UiName: "Device model", Category: catDevice, Description: "The mobile device model; for example, iPhone 10,6."},
	{ApiName: catalog.MobileDeviceBranding, UiName: "Device brand", Category: catDevice, Description: "The manufacturer or branded name; for example, Samsung, HTC, Verizon, T-Mobile."},
	{ApiName: catalog.Language, UiName: "Language", Category: catGeo, Description: "The language setting of the user's browser or device; for example, English."},
	{ApiName: catalog.LanguageCode, UiName: "Language code", Category: catGeo, Description: "The language setting (ISO 639) of the user's browser or device; for example, en-us."},
	{ApiName: catalog.NewVsReturning, UiName: "New / returning", Category: catUser, Description: "New users have 0 previous sessions, and returning users have 1 or more previous sessions (by the session number the client sends, ga_session_number)."},
	{ApiName: catalog.FirstUserSource, UiName: "First user source", Category: catTraffic, Description: "The source that first acquired the user to your website or app (kept with the user's state in the projection; (not set) for a returning user whose first session it does not hold)."},
	{ApiName: catalog.FirstUserMedium, UiName: "First user medium", Category: catTraffic, Description: "The medium that first acquired the user to your website or app."},
	{ApiName: catalog.FirstUserCampaign, UiName: "First user campaign", Category: catTraffic, Description: "Name of the marketing campaign that first acquired the user."},
	{ApiName: "firstUserSourceMedium", UiName: "First user source / medium", Category: catTraffic, Description: "The combined values of the dimensions firstUserSource and firstUserMedium."},
	{ApiName: "firstUserDefaultChannelGroup", UiName: "First user default channel group", Category: catTraffic, Description: "The default channel group that first acquired the user, by GA4's default channel rules on the user's first source, medium and campaign."},
	{ApiName: "sessionDefaultChannelGroup", UiName: "Session default channel group", Category: catTraffic, Description: "The session's default channel group, by GA4's default channel rules on its source, medium and campaign (Direct, Organic Search, Paid Social, Organic Social, Email, Affiliates, Referral, Paid Search, Video, Display, …)."},
	{ApiName: "sessionSourcePlatform", UiName: "Session source platform", Category: catTraffic, Description: "The source platform of the session's campaign: Google Ads for auto-tagged (gclid) traffic, Manual for other tagged traffic, (not set) for direct, organic and referral traffic."},
	{ApiName: catalog.Region, UiName: "Region", Category: catGeo, Description: "The geographic region from which the user activity originated, derived from their IP address (never stored) or the hit's user_location."},
	{ApiName: catalog.City, UiName: "City", Category: catGeo, Description: "The city from which the user activity originated, derived from their IP address (never stored) or the hit's user_location."},
	{ApiName: catalog.ItemName, UiName: "Item name", Category: catEcom, Description: "The name of the item (item_name); item-scoped."},
	{ApiName: catalog.ItemCategory, UiName: "Item category", Category: catEcom, Description: "The hierarchical category in which the item is classified (item_category); item-scoped."},
	{ApiName: catalog.ItemBrand, UiName: "Item brand", Category: catEcom, Description: "Brand name of the item (item_brand); item-scoped."},
	{ApiName: catalog.ItemID, UiName: "Item ID", Category: catEcom, Description: "The ID of the item (item_id); item-scoped."},
	{ApiName: "date", UiName: "Date", Category: catTime, Description: "The date of the event, formatted as YYYYMMDD."},
	{ApiName: "dateHour", UiName: "Date + hour (YYYYMMDDHH)", Category: catTime, Description: "The combined values of date and hour formatted as YYYYMMDDHH."},
	{ApiName: "dateHourMinute", UiName: "Date hour and minute", Category: catTime, Description: "The combined values of date, hour, and minute formatted as YYYYMMDDHHMM."},
	{ApiName: "hour", UiName: "Hour", Category: catTime, Description: "The two-digit hour of the day that the event was logged, 0 to 23, in the property's time zone."},
	{ApiName: "dayOfWeek", UiName: "Day of week", Category: catTime, Description: "The integer day of the week, 0 to 6, with Sunday as the first day of the week."},
}

var metricMetadata = []*insightsv1.MetricMetadata{
	{ApiName: "eventCount", UiName: "Event count", Category: catEvent, Type: insightsv1.MetricType_TYPE_INTEGER, Description: "The count of events."},
	{ApiName: "screenPageViews", UiName: "Views", Category: catPage, Type: insightsv1.MetricType_TYPE_INTEGER, Description: "The number of app screens or web pages your users viewed. Repeated views of a single page or screen are counted (screen_view + page_view events)."},
	{ApiName: "totalUsers", UiName: "Total users", Category: catUser, Type: insightsv1.MetricType_TYPE_INTEGER, Description: "The number of distinct users who have logged at least one event, whether or not the site or app was in use when that event was logged."},
	{ApiName: "activeUsers", UiName: "Active users", Category: catUser, Type: insightsv1.MetricType_TYPE_INTEGER, Description: "The number of distinct users who visited your site or app: users with an engaged session, a first visit, or engagement time."},
	{ApiName: "newUsers", UiName: "New users", Category: catUser, Type: insightsv1.MetricType_TYPE_INTEGER, Description: "The number of users who interacted with your site or launched your app for the first time (event triggered: first_open or first_visit)."},
	{ApiName: "sessions", UiName: "Sessions", Category: catSession, Type: insightsv1.MetricType_TYPE_INTEGER, Description: "The number of sessions that began on your site or app."},
	{ApiName: "engagedSessions", UiName: "Engaged sessions", Category: catSession, Type: insightsv1.MetricType_TYPE_INTEGER, Description: "The number of sessions that lasted longer than 10 seconds, or had a key event, or had 2 or more screen views."},
	{ApiName: "engagementRate", UiName: "Engagement rate", Category: catSession, Type: insightsv1.MetricType_TYPE_FLOAT, Expression: "engagedSessions/sessions", Description: "The fraction of sessions that were engaged (engaged sessions divided by sessions); 0.7239 means 72.39 % of sessions were engaged."},
	{ApiName: "bounceRate", UiName: "Bounce rate", Category: catSession, Type: insightsv1.MetricType_TYPE_FLOAT, Expression: "1-engagementRate", Description: "The fraction of sessions that were not engaged ((sessions minus engaged sessions) divided by sessions)."},
	{ApiName: "eventsPerSession", UiName: "Events per session", Category: catEvent, Type: insightsv1.MetricType_TYPE_FLOAT, Expression: "eventCount/sessions", Description: "The average number of events per session (event count divided by sessions)."},
	{ApiName: "sessionsPerUser", UiName: "Sessions per user", Category: catSession, Type: insightsv1.MetricType_TYPE_FLOAT, Expression: "sessions/activeUsers", Description: "The average number of sessions per user (sessions divided by active users)."},
	{ApiName: "screenPageViewsPerUser", UiName: "Views per user", Category: catPage, Type: insightsv1.MetricType_TYPE_FLOAT, Expression: "screenPageViews/activeUsers", Description: "The number of app screens or web pages your users viewed per active user."},
	{ApiName: "screenPageViewsPerSession", UiName: "Views per session", Category: catPage, Type: insightsv1.MetricType_TYPE_FLOAT, Expression: "screenPageViews/sessions", Description: "The number of app screens or web pages your users viewed per session (views divided by sessions)."},
	{ApiName: "userEngagementDuration", UiName: "User engagement", Category: catUser, Type: insightsv1.MetricType_TYPE_SECONDS, Description: "The total amount of time, in seconds, your website or app was in the foreground of users' devices."},
	// From traffic/v5 on (layouts with Outcomes).
	{ApiName: "averageSessionDuration", UiName: "Average session duration", Category: catSession, Type: insightsv1.MetricType_TYPE_SECONDS, Description: "The average duration (in seconds) of users' sessions: from a session's first event to its last."},
	{ApiName: "keyEvents", UiName: "Key events", Category: catEvent, Type: insightsv1.MetricType_TYPE_INTEGER, Description: "The count of key events: events whose name the property marks as a key event (keyEvents in its settings), counted from the time it was marked."},
	{ApiName: "sessionKeyEventRate", UiName: "Session key event rate", Category: catSession, Type: insightsv1.MetricType_TYPE_FLOAT, Description: "The fraction of sessions in which any key event was triggered."},
	{ApiName: "totalRevenue", UiName: "Total revenue", Category: catRevenue, Type: insightsv1.MetricType_TYPE_CURRENCY, Description: "The sum of revenue from purchases, subscriptions, and advertising (purchase revenue plus subscription and ad revenue), minus refunds, in the property's currency."},
	{ApiName: "purchaseRevenue", UiName: "Purchase revenue", Category: catRevenue, Type: insightsv1.MetricType_TYPE_CURRENCY, Description: "The sum of revenue from purchases minus refunded transaction revenue made in your app or site (purchase and in_app_purchase value less refund value)."},
	{ApiName: "transactions", UiName: "Transactions", Category: catEcom, Type: insightsv1.MetricType_TYPE_INTEGER, Description: "The count of transaction events with purchase revenue (purchase and in_app_purchase events with a transaction_id)."},
	{ApiName: "ecommercePurchases", UiName: "Ecommerce purchases", Category: catEcom, Type: insightsv1.MetricType_TYPE_INTEGER, Description: "The number of times users completed a purchase (purchase events)."},
	{ApiName: "itemsViewed", UiName: "Items viewed", Category: catEcom, Type: insightsv1.MetricType_TYPE_INTEGER, Description: "The number of units viewed for the item (the items of view_item events); item-scoped."},
	{ApiName: "addToCarts", UiName: "Add to carts", Category: catEcom, Type: insightsv1.MetricType_TYPE_INTEGER, Description: "The number of times users added items to their shopping carts (add_to_cart events)."},
	{ApiName: "itemsAddedToCart", UiName: "Items added to cart", Category: catEcom, Type: insightsv1.MetricType_TYPE_INTEGER, Description: "The number of units added to cart for a single item (the items of add_to_cart events); item-scoped."},
	{ApiName: "checkouts", UiName: "Checkouts", Category: catEcom, Type: insightsv1.MetricType_TYPE_INTEGER, Description: "The number of times users started the checkout process (begin_checkout events)."},
	{ApiName: "itemRevenue", UiName: "Item revenue", Category: catRevenue, Type: insightsv1.MetricType_TYPE_CURRENCY, Description: "The total revenue from purchases of items (price × quantity of the items of purchase events), in the property's currency; item-scoped."},
	{ApiName: "itemsPurchased", UiName: "Items purchased", Category: catEcom, Type: insightsv1.MetricType_TYPE_INTEGER, Description: "The number of units for a single item included in purchase events; item-scoped."},
	{ApiName: "averagePurchaseRevenue", UiName: "Average purchase revenue", Category: catRevenue, Type: insightsv1.MetricType_TYPE_CURRENCY, Expression: "purchaseRevenue/transactions", Description: "The average purchase revenue in the transaction group of events (purchase revenue divided by transactions)."},
	{ApiName: "purchaserRate", UiName: "Purchaser rate", Category: catEcom, Type: insightsv1.MetricType_TYPE_FLOAT, Expression: "totalPurchasers/activeUsers", Description: "The fraction of active users who made 1 or more purchase transactions."},
	{ApiName: "firstTimePurchasers", UiName: "First time purchasers", Category: catEcom, Type: insightsv1.MetricType_TYPE_INTEGER, Description: "The number of users that completed their first purchase event (first known to the projection: within its user state)."},
	{ApiName: "totalPurchasers", UiName: "Total purchasers", Category: catEcom, Type: insightsv1.MetricType_TYPE_INTEGER, Description: "The number of users that logged purchase events."},
	{ApiName: "active1DayUsers", UiName: "1-day active users", Category: catUser, Type: insightsv1.MetricType_TYPE_INTEGER, Description: "The number of distinct active users on your site or app within a 1 day period: the last day of the report's date range, or the row's date."},
	{ApiName: "active7DayUsers", UiName: "7-day active users", Category: catUser, Type: insightsv1.MetricType_TYPE_INTEGER, Description: "The number of distinct active users on your site or app within a 7 day period that ends on the last day of the report's date range, or on the row's date."},
	{ApiName: "active28DayUsers", UiName: "28-day active users", Category: catUser, Type: insightsv1.MetricType_TYPE_INTEGER, Description: "The number of distinct active users on your site or app within a 28 day period that ends on the last day of the report's date range, or on the row's date."},
	{ApiName: "dauPerWau", UiName: "DAU / WAU", Category: catUser, Type: insightsv1.MetricType_TYPE_FLOAT, Expression: "active1DayUsers/active7DayUsers", Description: "The rolling percent of 7-day active users who are also 1-day active users (as a fraction)."},
	{ApiName: "dauPerMau", UiName: "DAU / MAU", Category: catUser, Type: insightsv1.MetricType_TYPE_FLOAT, Expression: "active1DayUsers/active28DayUsers", Description: "The rolling percent of 30-day active users who are also 1-day active users (as a fraction; the month is 28 days, as active28DayUsers')."},
	{ApiName: "wauPerMau", UiName: "WAU / MAU", Category: catUser, Type: insightsv1.MetricType_TYPE_FLOAT, Expression: "active7DayUsers/active28DayUsers", Description: "The rolling percent of 30-day active users who are also 7-day active users (as a fraction)."},
	{ApiName: "averageRevenuePerUser", UiName: "ARPU", Category: catRevenue, Type: insightsv1.MetricType_TYPE_CURRENCY, Expression: "totalRevenue/activeUsers", Description: "Average revenue per active user (ARPU): total revenue divided by active users."},
}

// GetMetadata describes every dimension and metric the property's reports
// accept: those the active projection version stores, and those derived
// from them or from time.
func (s *Service) GetMetadata(ctx context.Context, req *connect.Request[insightsv1.GetMetadataRequest]) (*connect.Response[insightsv1.GetMetadataResponse], error) {
	pid, err := auth.Authorize(ctx, req.Msg.PropertyId, property.Read)
	if err != nil {
		return nil, err
	}
	prop, err := s.props.Get(ctx, pid)
	if err != nil {
		return nil, err
	}
	version, err := s.active.version(ctx, s.cfg.Projection)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(metadataOf(prop, catalog.LayoutOf(s.cfg.Projection, version))), nil
}

// metadataOf is GetMetadata's answer for property p whose reports read
// layout: the catalogue's names it stores, and p's custom definitions.
func metadataOf(p property.Property, layout *catalog.Layout) *insightsv1.GetMetadataResponse {
	resp := &insightsv1.GetMetadataResponse{Name: "properties/" + p.ID + "/metadata"}
	defer func() {
		if !slices.Contains(layout.Dims, catalog.CustomValue) {
			return
		}
		for _, n := range p.CustomEventDimensions {
			resp.Dimensions = append(resp.Dimensions, &insightsv1.DimensionMetadata{ApiName: customEventPrefix + n, UiName: n, Category: catCustom, CustomDefinition: true,
				Description: "The event parameter " + n + ", a custom dimension of the property (customEventDimensions), kept from the time it was registered."})
		}
		for _, n := range p.CustomUserDimensions {
			resp.Dimensions = append(resp.Dimensions, &insightsv1.DimensionMetadata{ApiName: customUserPrefix + n, UiName: n, Category: catCustom, CustomDefinition: true,
				Description: "The user property " + n + ", a custom dimension of the property (customUserDimensions), kept from the time it was registered."})
		}
		for _, n := range p.CustomEventMetrics {
			resp.Metrics = append(resp.Metrics, &insightsv1.MetricMetadata{ApiName: customEventPrefix + n, UiName: n, Category: catCustom, CustomDefinition: true,
				Type: insightsv1.MetricType_TYPE_FLOAT, Description: "The sum of the numeric event parameter " + n + ", a custom metric of the property (customEventMetrics), reported by time dimensions alone."})
		}
	}()
	for _, m := range metricMetadata {
		if def, _ := lookupMetric(m.ApiName); !def.id.outcome() || layout.Outcomes {
			resp.Metrics = append(resp.Metrics, m)
		}
	}
	for _, d := range dimensionMetadata {
		src, _, _ := lookupDim(d.ApiName, false)
		if !slices.ContainsFunc(srcStored(src), func(name string) bool { return !slices.Contains(layout.Dims, name) }) {
			resp.Dimensions = append(resp.Dimensions, d)
		}
	}
	return resp
}

// CheckCompatibility answers which dimensions and metrics a report of the
// request's fields can add: each one that the report would accept with
// it, by the same validation reports run.
func (s *Service) CheckCompatibility(ctx context.Context, req *connect.Request[insightsv1.CheckCompatibilityRequest]) (*connect.Response[insightsv1.CheckCompatibilityResponse], error) {
	pid, err := auth.Authorize(ctx, req.Msg.PropertyId, property.Read)
	if err != nil {
		return nil, err
	}
	prop, err := s.props.Get(ctx, pid)
	if err != nil {
		return nil, err
	}
	version, err := s.active.version(ctx, s.cfg.Projection)
	if err != nil {
		return nil, err
	}
	layout := catalog.LayoutOf(s.cfg.Projection, version)
	out, err := compatibilityOf(metadataOf(prop, layout), layout, req.Msg)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(out), nil
}

// compatibilityOf checks every listed dimension and metric against a
// report of req's fields in layout. req's own fields must be valid.
func compatibilityOf(md *insightsv1.GetMetadataResponse, layout *catalog.Layout, req *insightsv1.CheckCompatibilityRequest) (*insightsv1.CheckCompatibilityResponse, error) {
	custom := map[string]bool{}
	for _, d := range md.Dimensions {
		if d.CustomDefinition {
			custom[d.ApiName] = true
		}
	}
	for _, m := range md.Metrics {
		if m.CustomDefinition {
			custom[m.ApiName] = true
		}
	}
	check := func(dims []*insightsv1.Dimension, metrics []*insightsv1.Metric) problems {
		var p problems
		q := &query{opts: options{custom: custom}}
		q.parseFields(dims, metrics, req.GetDimensionFilter(), layout, &p)
		return p
	}
	dims, metrics := req.GetDimensions(), req.GetMetrics()
	if len(dims)+len(metrics) > 0 || req.GetDimensionFilter() != nil {
		if p := check(dims, metrics); len(p) > 0 {
			return nil, apierror.Invalid("invalid compatibility request", p...)
		}
	}
	want := req.GetCompatibilityFilter()
	keep := func(ok bool) (insightsv1.Compatibility, bool) {
		c := insightsv1.Compatibility_INCOMPATIBLE
		if ok {
			c = insightsv1.Compatibility_COMPATIBLE
		}
		return c, want == insightsv1.Compatibility_COMPATIBILITY_UNSPECIFIED || want == c
	}
	out := &insightsv1.CheckCompatibilityResponse{}
	for _, d := range md.Dimensions {
		ok := slices.ContainsFunc(dims, func(x *insightsv1.Dimension) bool { return x.GetName() == d.ApiName }) ||
			len(check(append(slices.Clone(dims), &insightsv1.Dimension{Name: d.ApiName}), metrics)) == 0
		if c, k := keep(ok); k {
			out.DimensionCompatibilities = append(out.DimensionCompatibilities, &insightsv1.DimensionCompatibility{DimensionMetadata: d, Compatibility: c})
		}
	}
	for _, m := range md.Metrics {
		ok := slices.ContainsFunc(metrics, func(x *insightsv1.Metric) bool { return x.GetName() == m.ApiName }) ||
			len(check(dims, append(slices.Clone(metrics), &insightsv1.Metric{Name: m.ApiName}))) == 0
		if c, k := keep(ok); k {
			out.MetricCompatibilities = append(out.MetricCompatibilities, &insightsv1.MetricCompatibility{MetricMetadata: m, Compatibility: c})
		}
	}
	return out, nil
}
