// Package catalog is the table of what the read models store: the
// dimensions a projection extracts from events, and the layouts (which
// rollups, at which grains) of its versions. It is data: a dimension or a
// rollup is added by adding a row, in a new logic version, without changing
// the block format (pkg/block names sections by their dimensions) or any
// stored byte of the versions that exist.
package catalog

import (
	"slices"
	"strings"

	"github.com/sextant-analytics/sextant/pkg/block"
)

// Dimension is one stored dimension: a GA4 API name and what it holds.
type Dimension struct {
	Name        string
	Description string
	// MaxLen bounds a stored value, in bytes.
	MaxLen int
}

// Stored dimensions, by their GA4 API names.
const (
	EventName       = "eventName"
	PagePath        = "pagePath"
	CountryID       = "countryId"
	DeviceCategory  = "deviceCategory"
	Browser         = "browser"
	OperatingSystem = "operatingSystem"
	SessionSource   = "sessionSource"
	SessionMedium   = "sessionMedium"
	SessionCampaign = "sessionCampaignName"
	HostName        = "hostName"

	// From traffic/v4 on: page detail and technology versions.
	PageTitle              = "pageTitle"
	PageReferrer           = "pageReferrer"
	FullPageURL            = "fullPageUrl"
	BrowserVersion         = "browserVersion"
	OperatingSystemVersion = "operatingSystemVersion"
	Language               = "language"
	LanguageCode           = "languageCode"
	ScreenResolution       = "screenResolution"
	DeviceModel            = "deviceModel"
	MobileDeviceBranding   = "mobileDeviceBranding"
	Platform               = "platform"
	LinkURL                = "linkUrl"
	FileName               = "fileName"
	SearchTerm             = "searchTerm"
	TransactionID          = "transactionId"
	// Of the session: the page of its first event with one.
	LandingPage                = "landingPage"
	LandingPagePlusQueryString = "landingPagePlusQueryString"

	// From traffic/v5 on: users, places, items.
	NewVsReturning    = "newVsReturning"
	FirstUserSource   = "firstUserSource"
	FirstUserMedium   = "firstUserMedium"
	FirstUserCampaign = "firstUserCampaignName"
	Region            = "region"
	City              = "city"
	ItemName          = "itemName"
	ItemCategory      = "itemCategory"
	ItemBrand         = "itemBrand"
	ItemID            = "itemId"

	// Custom definitions (traffic/v5 on), stored as data: each custom
	// dimension an event carries is an entry (its report name, its value)
	// of a rollup of their own, each custom metric an entry (its report
	// name) whose aggregate sums its values. Reports name them
	// "customEvent:<param>" and "customUser:<property>", and read these
	// internal dimensions (never named by a request).
	CustomDimension = "customDimension"
	CustomValue     = "customValue"
	CustomMetric    = "customMetric"
)

// Dimensions is the table of stored dimensions. Its order numbers them for
// the report engine (Index): append, never reorder.
var Dimensions = []Dimension{
	{EventName, "The name of the event.", 40},
	{PagePath, "The path of the page, without host and query.", 1000},
	{CountryID, "The ISO 3166 code of the visitor's country.", 2},
	{DeviceCategory, "desktop, mobile, tablet, smart tv or bot.", 20},
	{Browser, "The browser's name.", 100},
	{OperatingSystem, "The operating system's name.", 100},
	{SessionSource, "The source of the session's first event (utm_source, referrer or (direct)).", 100},
	{SessionMedium, "The medium of the session's first event.", 100},
	{SessionCampaign, "The campaign of the session's first event.", 100},
	{HostName, "The host of the page.", 255},
	{PageTitle, "The title of the page (page_title).", 300},
	{PageReferrer, "The referring URL of the page (page_referrer).", 420},
	{FullPageURL, "The host, path and query string of the page.", 1000},
	{BrowserVersion, "The browser's major version.", 20},
	{OperatingSystemVersion, "The operating system's version.", 40},
	{Language, "The language of the browser or device, by name (English).", 60},
	{LanguageCode, "The language of the browser or device, as a code (en-us).", 20},
	{ScreenResolution, "The screen's resolution, e.g. 1920x1080.", 20},
	{DeviceModel, "The device's model, e.g. Pixel 8.", 100},
	{MobileDeviceBranding, "The device's manufacturer or brand, e.g. Google.", 100},
	{Platform, "web, Android or iOS.", 10},
	{LinkURL, "The URL of an outbound link or downloaded file (link_url).", 1000},
	{FileName, "The page path of a downloaded file (file_name).", 1000},
	{SearchTerm, "The term of a site search (search_term).", 100},
	{TransactionID, "The id of an ecommerce transaction (transaction_id).", 100},
	{LandingPage, "The path of the session's first page.", 1000},
	{LandingPagePlusQueryString, "The path and query string of the session's first page.", 2000},
	{NewVsReturning, "new for a user's first session (ga_session_number 1), returning for the others (GA4: new users have 0 previous sessions).", 10},
	{FirstUserSource, "The source the user was first acquired by: their first session's source, kept while the projection holds their state (see BENCHMARKS.md's notes).", 100},
	{FirstUserMedium, "The medium the user was first acquired by.", 100},
	{FirstUserCampaign, "The campaign the user was first acquired by.", 100},
	{Region, "The region (first-level subdivision) of the visitor, from the IP database or the hit's user_location.", 100},
	{City, "The city of the visitor, from the IP database or the hit's user_location.", 100},
	{ItemName, "The name of an ecommerce item (item_name); item-scoped.", 100},
	{ItemCategory, "The category of an ecommerce item (item_category); item-scoped.", 100},
	{ItemBrand, "The brand of an ecommerce item (item_brand); item-scoped.", 100},
	{ItemID, "The id of an ecommerce item (item_id); item-scoped.", 100},
	{CustomDimension, "Internal: the report name of a custom dimension (customEvent:<param>, customUser:<property>).", 60},
	{CustomValue, "Internal: the value of a custom dimension.", 100},
	{CustomMetric, "Internal: the report name of a custom metric (customEvent:<param>).", 60},
}

// IsInternal reports whether a stored dimension is read by reports on a
// request's behalf only (custom definitions).
func IsInternal(name string) bool {
	return name == CustomDimension || name == CustomValue || name == CustomMetric
}

// Fan reports what an event adds a rollup's entries for: each of its items
// ("item"), custom dimensions ("customDimension"), custom metrics
// ("customMetric"), or itself ("").
func (r Rollup) Fan() string {
	switch {
	case r.Items():
		return "item"
	case slices.Contains(r.Dims, CustomDimension):
		return CustomDimension
	case slices.Contains(r.Dims, CustomMetric):
		return CustomMetric
	}
	return ""
}

// itemDims are the item-scoped dimensions: a rollup holding one counts
// each item of an event (the event's items array), not the event.
var itemDims = []string{ItemName, ItemCategory, ItemBrand, ItemID}

// IsItem reports whether a stored dimension is item-scoped.
func IsItem(name string) bool { return slices.Contains(itemDims, name) }

// Items reports whether rollup r counts items rather than events.
func (r Rollup) Items() bool { return slices.ContainsFunc(r.Dims, IsItem) }

// MaxDimensions bounds the table: the report engine keeps a slot per
// stored dimension.
const MaxDimensions = 48

// Index is the position of a stored dimension in Dimensions, or -1.
func Index(name string) int {
	return slices.IndexFunc(Dimensions, func(d Dimension) bool { return d.Name == name })
}

// Lookup returns the stored dimension called name.
func Lookup(name string) (Dimension, bool) {
	if i := Index(name); i >= 0 {
		return Dimensions[i], true
	}
	return Dimension{}, false
}

// Rollup is a set of stored dimensions whose aggregates a layout keeps,
// summed over every other dimension: at hour grain always, at minute grain
// (the realtime view) when Minute is set. Compaction adds day grain unless
// Hourly is set: a rollup of many dimensions has about as many entries a
// day as events, so its day blocks would save reports nothing and cost
// compaction a rewrite of the whole day at every merge.
type Rollup struct {
	Dims   []string
	Minute bool
	Hourly bool
	// MinuteApart keeps the rollup's minute section in a part of its own
	// under Layout.GroupMinute: the total, which realtime's commonest
	// report (by minute) reads alone, and rollups of many values (pages),
	// whose minute detail would be most of the group's bytes.
	MinuteApart bool
}

// KeepsDays reports whether part p of the layout (see PartSections) has
// day blocks: parts of hour sections of rollups that are not Hourly do;
// minute sections never do (minute detail is read from hour blocks).
func (l *Layout) KeepsDays(p int) bool {
	parts := l.PartSections()
	if p < 0 || p >= len(parts) {
		return false
	}
	for _, sec := range parts[p] {
		if sec >= len(l.Rollups) || l.Rollups[sec].Hourly {
			return false
		}
	}
	return true
}

// Layout is a projection version's rollups. Reports read, for each block,
// the smallest section that holds every dimension they group or filter by;
// rollups are sums of one another, so the answer does not depend on which.
type Layout struct {
	// Dims are the dimensions the version extracts from events: the union
	// of its rollups'.
	Dims    []string
	Rollups []Rollup
	// Outcomes is set when the version's aggregates count session time,
	// key events, revenue and ecommerce actions (analytics' sums and
	// extra sketches).
	Outcomes bool
	// GroupDetail stores the hour sections of the detail rollups (neither
	// Minute nor Hourly: groups of dimensions that few reports read) in
	// one part: a checkpoint writes one row for them all per property and
	// hour, not one each, and compaction merges one series. A report by
	// one of them reads the part and finds its section in the block.
	GroupDetail bool
	// GroupMinute stores the minute sections (the realtime view) of the
	// rollups of few values in one part, but those MinuteApart: a
	// checkpoint writes one row for them, not one each. A realtime report
	// by one of them reads the last half hour of them all and finds its
	// section in the blocks.
	GroupMinute bool
}

// detail reports whether rollup r's hour section is in the detail part.
func (l *Layout) detail(r int) bool {
	return l.GroupDetail && !l.Rollups[r].Minute && !l.Rollups[r].Hourly
}

// PartSections lists the sections (indexes into Sections) of each part,
// in the parts' order: the hour sections of the rollups, each apart but
// the detail ones, which share one part where the first of them is; then
// the minute sections, each apart. Without GroupDetail, part i holds
// section i.
func (l *Layout) PartSections() [][]int {
	var parts [][]int
	shared := -1
	for r := range l.Rollups {
		if !l.detail(r) {
			parts = append(parts, []int{r})
			continue
		}
		if shared < 0 {
			shared = len(parts)
			parts = append(parts, nil)
		}
		parts[shared] = append(parts[shared], r)
	}
	m := len(l.Rollups)
	minutes := -1
	for _, r := range l.Rollups {
		if !r.Minute {
			continue
		}
		switch {
		case !l.GroupMinute || r.MinuteApart:
			parts = append(parts, []int{m})
		case minutes < 0:
			minutes = len(parts)
			parts = append(parts, []int{m})
		default:
			parts[minutes] = append(parts[minutes], m)
		}
		m++
	}
	return parts
}

// Sections is the block layout an addition of this layout is written in:
// the hour sections of every rollup, then the minute sections.
func (l *Layout) Sections() block.Layout {
	var s block.Layout
	for _, r := range l.Rollups {
		s = append(s, block.Section{Grain: block.Hour, Dims: r.Dims})
	}
	for _, r := range l.Rollups {
		if r.Minute {
			s = append(s, block.Section{Grain: block.Minute, Dims: r.Dims})
		}
	}
	return s
}

// Parts are the series a layout's data is stored in (viewstore.SeriesOf):
// its sections apart, or a few together (PartSections). A report then
// fetches only the grain and rollup it reads: the top pages of a week
// read the pages' hour and day sections, not their minute detail, which
// is most of the bytes of a busy hour.
func (l *Layout) Parts() int { return len(l.PartSections()) }

// PartOf is the part holding rollup r's section of grain g (Hour or
// Minute; day sections are the hour part's day blocks), or -1 when the
// rollup has none of that grain.
func (l *Layout) PartOf(r int, g block.Grain) int {
	if r < 0 || r >= len(l.Rollups) {
		return -1
	}
	sec := -1
	switch g {
	case block.Hour, block.Day:
		sec = r
	case block.Minute:
		if !l.Rollups[r].Minute {
			return -1
		}
		sec = len(l.Rollups)
		for i := range r {
			if l.Rollups[i].Minute {
				sec++
			}
		}
	default:
		return -1
	}
	for p, secs := range l.PartSections() {
		if slices.Contains(secs, sec) {
			return p
		}
	}
	return -1
}

// MinuteCovers reports whether a minute section of the layout holds every
// one of dims.
func (l *Layout) MinuteCovers(dims []string) bool {
	for _, r := range l.Rollups {
		if r.Minute && covers(r.Dims, dims) {
			return true
		}
	}
	return false
}

// MinuteGroups lists the dimension sets kept at minute grain (but the
// total).
func (l *Layout) MinuteGroups() [][]string {
	var out [][]string
	for _, r := range l.Rollups {
		if r.Minute && len(r.Dims) > 0 {
			out = append(out, r.Dims)
		}
	}
	return out
}

func covers(have, need []string) bool {
	for _, d := range need {
		if !slices.Contains(have, d) {
			return false
		}
	}
	return true
}

// trafficDims are the dimensions of traffic v1 and v2.
var trafficDims = []string{EventName, PagePath, CountryID, DeviceCategory, Browser, OperatingSystem, SessionSource, SessionMedium, SessionCampaign}

// Traffic is the layout of traffic/v1 and traffic/v2: whole tuples by the
// hour only (any combination of dimensions), and the total, events, pages,
// countries, technology and traffic sources by the minute too.
var Traffic = &Layout{
	Dims: trafficDims,
	Rollups: []Rollup{
		{Dims: trafficDims, Hourly: true},
		{Dims: nil, Minute: true},
		{Dims: []string{EventName}, Minute: true},
		{Dims: []string{PagePath}, Minute: true},
		{Dims: []string{CountryID}, Minute: true},
		{Dims: []string{DeviceCategory, Browser, OperatingSystem}, Minute: true},
		{Dims: []string{SessionSource, SessionMedium, SessionCampaign}, Minute: true},
	},
}

// TrafficHosts is traffic/v3's: traffic's, and the page's host name as a
// rollup of its own, with the page path.
var TrafficHosts = &Layout{
	Dims:    append(slices.Clone(trafficDims), HostName),
	Rollups: append(slices.Clone(Traffic.Rollups), Rollup{Dims: []string{HostName, PagePath}, Minute: true}),
}

// TrafficDetail is traffic/v4's: traffic/v3's, and page detail (title,
// referrer, full URL), platform, technology versions, devices, screens and
// languages, each in a
// rollup of its own group at hour grain (their values are many: in the
// whole tuple, they would multiply its entries).
var TrafficDetail = &Layout{
	Dims: append(slices.Clone(TrafficHosts.Dims), PageTitle, PageReferrer, FullPageURL, BrowserVersion, OperatingSystemVersion, Language, LanguageCode,
		ScreenResolution, DeviceModel, MobileDeviceBranding, Platform, LinkURL, FileName, SearchTerm, TransactionID,
		LandingPage, LandingPagePlusQueryString),
	Rollups: append(slices.Clone(TrafficHosts.Rollups),
		Rollup{Dims: []string{HostName, PagePath, PageTitle}},
		Rollup{Dims: []string{PageReferrer}},
		Rollup{Dims: []string{FullPageURL}},
		Rollup{Dims: []string{Platform, DeviceCategory, Browser, BrowserVersion, OperatingSystem, OperatingSystemVersion}},
		Rollup{Dims: []string{DeviceCategory, MobileDeviceBranding, DeviceModel}},
		Rollup{Dims: []string{ScreenResolution}},
		Rollup{Dims: []string{Language, LanguageCode}},
		Rollup{Dims: []string{EventName, LinkURL, FileName}},
		Rollup{Dims: []string{SearchTerm}},
		Rollup{Dims: []string{TransactionID}},
		Rollup{Dims: []string{LandingPage, LandingPagePlusQueryString}},
	),
}

// TrafficUsers is traffic/v5's: traffic/v4's, and whether the session is
// a user's first, the user's first traffic source, region and city,
// ecommerce items (a rollup that counts each item of an event), and the
// property's custom dimensions and metrics.
var TrafficUsers = &Layout{
	Dims: append(slices.Clone(TrafficDetail.Dims), NewVsReturning, FirstUserSource, FirstUserMedium, FirstUserCampaign,
		Region, City, ItemName, ItemCategory, ItemBrand, ItemID, CustomDimension, CustomValue, CustomMetric),
	Rollups: append(slices.Clone(TrafficDetail.Rollups),
		Rollup{Dims: []string{NewVsReturning}, Minute: true},
		Rollup{Dims: []string{FirstUserSource, FirstUserMedium, FirstUserCampaign}},
		Rollup{Dims: []string{CountryID, Region, City}},
		Rollup{Dims: []string{ItemID, ItemName, ItemCategory, ItemBrand}},
		Rollup{Dims: []string{CustomDimension, CustomValue}},
		Rollup{Dims: []string{CustomMetric}},
	),
	Outcomes:    true,
	GroupDetail: true,
}

// TrafficCompact is traffic/v6's: traffic/v5's rollups and counts, with
// the minute sections of events, countries, technology, traffic sources
// and new or returning in one part (GroupMinute), the total's and the
// pages' apart, besides the detail rollups' hour sections in one: 14 rows
// per property and hour a checkpoint writes at most, where traffic/v5
// writes 18.
var TrafficCompact = &Layout{
	Dims:        TrafficUsers.Dims,
	Rollups:     compactRollups(),
	Outcomes:    true,
	GroupDetail: true,
	GroupMinute: true,
}

func compactRollups() []Rollup {
	rs := slices.Clone(TrafficUsers.Rollups)
	for i, r := range rs {
		rs[i].MinuteApart = r.Minute && (len(r.Dims) == 0 || slices.Contains(r.Dims, PagePath))
	}
	return rs
}

// Choose is the rollup a report that groups or filters by dims reads: the
// one with the fewest dimensions of those holding all of them (at minute
// grain when minute is set), or -1.
func (l *Layout) Choose(dims []string, minute bool) int {
	best := -1
	for i, r := range l.Rollups {
		if (minute && !r.Minute) || !covers(r.Dims, dims) {
			continue
		}
		if best < 0 || len(r.Dims) < len(l.Rollups[best].Dims) {
			best = i
		}
	}
	return best
}

// layouts are the layouts of the registered projection versions.
var layouts = map[string]*Layout{
	"traffic/v1": Traffic,
	"traffic/v2": Traffic,
	"traffic/v3": TrafficHosts,
	"traffic/v4": TrafficDetail,
	"traffic/v5": TrafficUsers,
	"traffic/v6": TrafficCompact,
}

// LayoutOf is the layout of a projection version, or Traffic's for a
// version the table does not know.
func LayoutOf(projection, version string) *Layout {
	// A rebuild "v5+r…" stores what v5 does (versions.Base).
	version, _, _ = strings.Cut(version, "+")
	if l, ok := layouts[projection+"/"+version]; ok {
		return l
	}
	return Traffic
}
