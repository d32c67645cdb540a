package projection

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/text/language"
	"golang.org/x/text/language/display"

	eventv1 "github.com/sextant-analytics/sextant/gen/sextant/event/v1"
	"github.com/sextant-analytics/sextant/pkg/analytics"
	"github.com/sextant-analytics/sextant/pkg/block"
	"github.com/sextant-analytics/sextant/pkg/catalog"
)

// The projection's pure logic: from an event and its visitor's session to
// the aggregates it adds to. Nothing here touches the store or keeps
// anything between events but the session it is handed.

// MinuteHorizon is how late an event may arrive (receive time minus event
// time, in seconds) and still be counted at minute grain. Minute sections
// are the realtime view; an event sent hours after it happened (an SDK's
// offline queue, an import) is counted at hour grain only, as GA4 adds
// late events to its daily tables but not to realtime. It depends on the
// event alone, so replays reproduce it.
const MinuteHorizon = 3600

// extractor reads one stored dimension's value of an event.
type extractor func(ev *eventv1.Event, s *session, r *Rules) string

// extractors are the catalogue's dimensions as this logic reads them.
var extractors = map[string]extractor{
	catalog.EventName: func(ev *eventv1.Event, _ *session, _ *Rules) string { return ev.Name },
	catalog.PagePath: func(ev *eventv1.Event, _ *session, r *Rules) string {
		p := ev.GetPage().GetPath()
		if r.NormalizePaths {
			p = normalizePath(p)
		}
		return p
	},
	catalog.CountryID:       func(ev *eventv1.Event, _ *session, _ *Rules) string { return ev.Country },
	catalog.DeviceCategory:  func(ev *eventv1.Event, _ *session, _ *Rules) string { return ev.GetDevice().GetCategory() },
	catalog.Browser:         func(ev *eventv1.Event, _ *session, _ *Rules) string { return ev.GetDevice().GetBrowser() },
	catalog.OperatingSystem: func(ev *eventv1.Event, _ *session, _ *Rules) string { return ev.GetDevice().GetOperatingSystem() },
	catalog.SessionSource:   func(_ *eventv1.Event, s *session, _ *Rules) string { return s.source },
	catalog.SessionMedium:   func(_ *eventv1.Event, s *session, _ *Rules) string { return s.medium },
	catalog.SessionCampaign: func(_ *eventv1.Event, s *session, _ *Rules) string { return s.campaign },
	catalog.HostName:        func(ev *eventv1.Event, _ *session, _ *Rules) string { return hostOf(ev.GetPage().GetLocation()) },
	catalog.PageTitle:       func(ev *eventv1.Event, _ *session, _ *Rules) string { return ev.GetPage().GetTitle() },
	catalog.PageReferrer:    func(ev *eventv1.Event, _ *session, _ *Rules) string { return ev.GetPage().GetReferrer() },
	catalog.FullPageURL:     func(ev *eventv1.Event, _ *session, _ *Rules) string { return fullPageURL(ev.GetPage().GetLocation()) },
	catalog.BrowserVersion: func(ev *eventv1.Event, _ *session, _ *Rules) string {
		v, _, _ := strings.Cut(ev.GetDevice().GetBrowserVersion(), ".")
		return v
	},
	catalog.OperatingSystemVersion: func(ev *eventv1.Event, _ *session, _ *Rules) string {
		return ev.GetDevice().GetOperatingSystemVersion()
	},
	catalog.Language: func(ev *eventv1.Event, _ *session, _ *Rules) string {
		return languageName(ev.GetDevice().GetLanguage())
	},
	catalog.LanguageCode: func(ev *eventv1.Event, _ *session, _ *Rules) string {
		return strings.ToLower(ev.GetDevice().GetLanguage())
	},
	catalog.ScreenResolution:     func(ev *eventv1.Event, _ *session, _ *Rules) string { return ev.GetDevice().GetScreenResolution() },
	catalog.DeviceModel:          func(ev *eventv1.Event, _ *session, _ *Rules) string { return ev.GetDevice().GetModel() },
	catalog.MobileDeviceBranding: func(ev *eventv1.Event, _ *session, _ *Rules) string { return ev.GetDevice().GetBrand() },
	catalog.Platform:             func(ev *eventv1.Event, _ *session, _ *Rules) string { return ev.GetDevice().GetPlatform() },
	catalog.LinkURL:              func(ev *eventv1.Event, _ *session, _ *Rules) string { return paramString(ev, "link_url") },
	catalog.FileName:             func(ev *eventv1.Event, _ *session, _ *Rules) string { return paramString(ev, "file_name") },
	catalog.SearchTerm:           func(ev *eventv1.Event, _ *session, _ *Rules) string { return paramString(ev, "search_term") },
	catalog.TransactionID:        func(ev *eventv1.Event, _ *session, _ *Rules) string { return paramString(ev, "transaction_id") },
	catalog.LandingPage: func(_ *eventv1.Event, s *session, r *Rules) string {
		p, _, _ := strings.Cut(s.landing, "?")
		if r.NormalizePaths {
			p = normalizePath(p)
		}
		return p
	},
	catalog.LandingPagePlusQueryString: func(_ *eventv1.Event, s *session, _ *Rules) string { return s.landing },
	catalog.NewVsReturning: func(_ *eventv1.Event, s *session, _ *Rules) string {
		if s.number <= 1 {
			return "new"
		}
		return "returning"
	},
	catalog.FirstUserSource:   func(_ *eventv1.Event, s *session, _ *Rules) string { return s.firstSource },
	catalog.FirstUserMedium:   func(_ *eventv1.Event, s *session, _ *Rules) string { return s.firstMedium },
	catalog.FirstUserCampaign: func(_ *eventv1.Event, s *session, _ *Rules) string { return s.firstCampaign },
	catalog.Region:            func(ev *eventv1.Event, _ *session, _ *Rules) string { return ev.Region },
	catalog.City:              func(ev *eventv1.Event, _ *session, _ *Rules) string { return ev.City },
	// Item-scoped dimensions are read from each item (itemExtractors), and
	// custom definitions from each of the event's (add, by the section's
	// catalog.Rollup.Fan).
	catalog.ItemName: nil, catalog.ItemCategory: nil, catalog.ItemBrand: nil, catalog.ItemID: nil,
	catalog.CustomDimension: nil, catalog.CustomValue: nil, catalog.CustomMetric: nil,
}

// itemExtractors read the item-scoped dimensions of one item.
var itemExtractors = map[string]func(it *eventv1.Item) string{
	catalog.ItemName:     (*eventv1.Item).GetItemName,
	catalog.ItemCategory: (*eventv1.Item).GetItemCategory,
	catalog.ItemBrand:    (*eventv1.Item).GetItemBrand,
	catalog.ItemID:       (*eventv1.Item).GetItemId,
}

// pageWithQuery is an event's page path and the query string of its
// location ("/p?x=1"), "" for an event without a page.
func pageWithQuery(ev *eventv1.Event) string {
	p := ev.GetPage().GetPath()
	if p == "" {
		return ""
	}
	loc := ev.GetPage().GetLocation()
	if i := strings.IndexByte(loc, '?'); i >= 0 {
		q := loc[i:]
		if j := strings.IndexByte(q, '#'); j >= 0 {
			q = q[:j]
		}
		if len(q) > 1 {
			return p + q
		}
	}
	return p
}

// paramString is an event parameter's value as text ("" when absent).
func paramString(ev *eventv1.Event, name string) string {
	v := ev.GetParams()[name]
	switch k := v.GetKind().(type) {
	case *eventv1.Value_StringValue:
		return k.StringValue
	case *eventv1.Value_IntValue:
		return strconv.FormatInt(k.IntValue, 10)
	}
	return ""
}

// fullPageURL is GA4's fullPageUrl: the host, path and query string of a
// URL (no scheme, no fragment).
func fullPageURL(u string) string {
	_, rest, ok := strings.Cut(u, "://")
	if !ok {
		return ""
	}
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		rest = rest[:i]
	}
	authority, path, _ := strings.Cut(rest, "/")
	host := authority
	if i := strings.IndexAny(host, "?#"); i >= 0 {
		host = host[:i]
	}
	host = hostIn(host)
	switch {
	case path == "":
		return host + "/"
	case host == authority:
		return rest // already host/path: no copy
	}
	return host + "/" + path
}

// languageName is the English name of a language code ("en-us" →
// "English"), as GA4's language dimension shows it; "" when unknown.
func languageName(code string) string {
	if code == "" {
		return ""
	}
	if name, ok := languageNames.Load(code); ok {
		return name.(string)
	}
	tag, err := language.Parse(code)
	if err != nil {
		return ""
	}
	base, _ := tag.Base()
	name := display.English.Languages().Name(base)
	if languageCached.Add(1) <= maxLanguageNames {
		languageNames.Store(code, name)
	}
	return name
}

// languageNames caches languageName by code (parsing a tag allocates
// several times, and a property's visitors use a few dozen codes): up to
// maxLanguageNames codes that parse, the first seen.
var (
	languageNames  sync.Map
	languageCached atomic.Int64
)

const maxLanguageNames = 4096

// hostOf is the host of a URL, lower case, without port or credentials.
func hostOf(u string) string {
	_, rest, ok := strings.Cut(u, "://")
	if !ok {
		return ""
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	return hostIn(rest)
}

// hostIn is the host of a URL's authority (user@host:port), lower case.
func hostIn(rest string) string {
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:]
	}
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && !strings.Contains(rest[i:], "]") {
		rest = rest[:i]
	}
	return strings.ToLower(rest)
}

// deriver applies one logic version: which dimensions it extracts, and
// which sections of an addition each event adds to.
type deriver struct {
	rules    Rules
	layout   *catalog.Layout
	dims     []extractor
	maxLen   []int
	sections block.Layout
	// project[i] are the indexes into dims of section i's dimensions.
	project [][]int
	// minute[i] is set for minute sections.
	minute []bool
	// landing is set when the layout stores a landing page: only then do
	// sessions keep theirs (it is state every session carries).
	landing bool
	// firstUser is set when the layout stores the user's first source.
	firstUser bool
	// fan[i] is what section i adds an entry for (catalog.Rollup.Fan);
	// item[i] are the item extractors of dims (nil for the others).
	fan  []string
	item []func(*eventv1.Item) string
}

func newDeriver(l Logic) *deriver {
	d := &deriver{rules: l.Rules, layout: l.Layout, sections: l.Layout.Sections(),
		landing:   slices.Contains(l.Layout.Dims, catalog.LandingPage) || slices.Contains(l.Layout.Dims, catalog.LandingPagePlusQueryString),
		firstUser: slices.Contains(l.Layout.Dims, catalog.FirstUserSource)}
	index := map[string]int{}
	for i, name := range l.Layout.Dims {
		dim, ok := catalog.Lookup(name)
		x, known := extractors[name]
		ix := itemExtractors[name]
		if !ok || !known || (x != nil && ix != nil) || (x == nil && ix == nil && !catalog.IsInternal(name)) {
			panic("projection: layout dimension " + name + " has no extractor")
		}
		index[name] = i
		d.dims = append(d.dims, x)
		d.item = append(d.item, ix)
		d.maxLen = append(d.maxLen, dim.MaxLen)
	}
	for _, s := range d.sections {
		var p []int
		for _, name := range s.Dims {
			p = append(p, index[name])
		}
		d.project = append(d.project, p)
		d.minute = append(d.minute, s.Grain == block.Minute)
		d.fan = append(d.fan, catalog.Rollup{Dims: s.Dims}.Fan())
	}
	return d
}

// facts is what the logic knows of one counted event.
type facts struct {
	evTime, recv int64 // Unix seconds
	pageView     bool
	isNew        bool
	active       bool
	engaged      bool
	engageMs     int64
	user, sess   uint64 // hashes
	// With Layout.Outcomes: the event's sums (analytics.Sum…), whether it
	// is a key event, a purchase, and its user's first purchase.
	outcomes                     bool
	sums                         [analytics.NumSums]int64
	keyEvent, purchase, firstBuy bool
	// rate converts the event's amounts into the property's currency.
	rate float64
}

// session returns the visitor's session for ev from sessions, starting a
// new one when the client's session id changed or, without one, after
// SessionTimeout of inactivity, and applies ev to it unless the session
// already holds offset. A new session takes the event's traffic source.
func (d *deriver) session(sessions *sessionLog, ev *eventv1.Event, evTime, recv, offset int64) *session {
	key := ev.PropertyId + "\x1f" + ev.ClientId
	s := sessions.get(key)
	if s != nil && recv-s.lastRecv > d.rules.retentionSeconds() {
		// Past its retention the session is gone, whether prune (which
		// runs at checkpoints, so at times that vary from run to run)
		// forgot it yet or not: replays decide alike.
		s = nil
	}
	fresh := false
	switch {
	case s == nil:
		fresh = true
	case ev.SessionId != 0:
		fresh = ev.SessionId != s.id
	default:
		fresh = evTime-s.lastEvent > d.rules.timeoutSeconds()
	}
	if fresh {
		ns := &session{id: ev.SessionId, number: ev.SessionNumber, lastOffset: -1}
		if ns.id == 0 {
			ns.id = evTime
		}
		if ns.number == 0 {
			ns.number = 1
			if s != nil {
				ns.number = s.number + 1
			}
		}
		ts := ev.GetTrafficSource()
		ns.source, ns.medium, ns.campaign = ts.GetSource(), ts.GetMedium(), ts.GetCampaign()
		if ns.source == "" {
			ns.source, ns.medium = "(direct)", "(none)"
		}
		if s != nil {
			ns.bought = s.bought
		}
		if d.firstUser {
			switch {
			case s != nil:
				ns.firstSource, ns.firstMedium, ns.firstCampaign = s.firstSource, s.firstMedium, s.firstCampaign
			case ns.number == 1:
				ns.firstSource, ns.firstMedium, ns.firstCampaign = ns.source, ns.medium, ns.campaign
			}
		}
		s = ns
		sessions.put(key, s)
	}
	prev := s.lastEvent
	if evTime > s.lastEvent {
		s.lastEvent = evTime
	}
	s.ext = 0
	// The newest receive time, not the last: a late record must not make a
	// live session look older than an earlier stored version of it.
	s.lastRecv = max(s.lastRecv, recv)
	sessions.touch(key)
	if offset > s.lastOffset { // a session already holding this record is not changed again
		s.lastOffset = offset
		if isPageView(ev) {
			s.pageViews++
		}
		if d.landing && s.landing == "" {
			s.landing = pageWithQuery(ev)
		}
		if !fresh && prev > 0 && evTime > prev {
			s.ext = evTime - prev
		}
		if d.layout.Outcomes && s.bought == 0 && (ev.Name == evPurchase || ev.Name == evInAppPurchase) {
			s.bought = offset + 1
		}
		s.engageMs += ev.EngagementTimeMsec
		// GA4: engaged by 10 s, 2 views, or (traffic/v5 on, which knows
		// key events) a key event.
		if !s.engaged && (s.pageViews >= 2 || s.engageMs > 10_000 || engagedFlag(ev) || (d.layout.Outcomes && ev.KeyEvent)) {
			s.engaged = true
		}
	}
	return s
}

func isPageView(ev *eventv1.Event) bool { return ev.Name == "page_view" || ev.Name == "screen_view" }

// facts derives what the aggregates count of ev in session s.
func (d *deriver) facts(ev *eventv1.Event, s *session, evTime, recv, offset int64) facts {
	isNew := ev.Name == "first_visit" || ev.Name == "first_open"
	userKey := ev.UserId
	if userKey == "" {
		userKey = ev.ClientId
	}
	f := facts{
		evTime:   evTime,
		recv:     recv,
		pageView: isPageView(ev),
		isNew:    isNew,
		active:   s.engaged || isNew || ev.EngagementTimeMsec > 0,
		engaged:  s.engaged,
		engageMs: ev.EngagementTimeMsec,
		user:     xxhash.Sum64String(userKey),
		sess:     sessionHash(ev.ClientId, s.id),
	}
	if d.layout.Outcomes {
		// What traffic/v5 on adds to every aggregate (session time, key
		// events, revenue and ecommerce actions, key-event sessions,
		// purchasers and first-time purchasers: aggregate encoding
		// version 2); versions before it write what they wrote before.
		d.outcomes(&f, ev, s, offset)
	}
	return f
}

// sessionHash identifies a session in the aggregates' sets: the hash of
// its client id, a unit separator and its id in decimal.
func sessionHash(client string, id int64) uint64 {
	var buf [96]byte
	b := append(append(buf[:0], client...), 0x1f)
	return xxhash.Sum64(strconv.AppendInt(b, id, 10))
}

// Events whose value parameter is revenue, as GA4 counts it: purchases
// (less refunds) are purchase revenue; total revenue adds subscriptions
// and ad revenue.
const (
	evPurchase      = "purchase"
	evInAppPurchase = "in_app_purchase"
	evRefund        = "refund"
	evAdImpression  = "ad_impression"
	evSubConvert    = "app_store_subscription_convert"
	evSubRenew      = "app_store_subscription_renew"
	evCheckout      = "begin_checkout"
	evAddToCart     = "add_to_cart"
	evViewItem      = "view_item"
)

// outcomes fills what traffic/v5 counts of an event: its session time,
// key event, revenue and ecommerce actions; the record at offset is its
// user's first purchase when session marked it so.
func (d *deriver) outcomes(f *facts, ev *eventv1.Event, s *session, offset int64) {
	f.outcomes = true
	f.rate = ev.CurrencyRate
	if f.rate == 0 {
		f.rate = 1
	}
	f.sums[analytics.SumSessionSeconds] = s.ext
	if ev.KeyEvent {
		f.keyEvent = true
		f.sums[analytics.SumKeyEvents] = 1
	}
	value := micros(paramNumber(ev, "value") * f.rate)
	switch ev.Name {
	case evPurchase, evInAppPurchase:
		f.sums[analytics.SumPurchaseRevenue] = value
		f.sums[analytics.SumTotalRevenue] = value
		if ev.Name == evPurchase {
			f.sums[analytics.SumPurchases] = 1
		}
		if paramString(ev, "transaction_id") != "" {
			f.sums[analytics.SumTransactions] = 1
		}
		for _, it := range ev.Items {
			f.sums[analytics.SumItemRevenue] += micros(it.Price * float64(quantity(it)) * f.rate)
			f.sums[analytics.SumItemsPurchased] += quantity(it)
		}
		f.purchase = true
		f.firstBuy = s.bought == offset+1
	case evRefund:
		f.sums[analytics.SumPurchaseRevenue] = -value
		f.sums[analytics.SumTotalRevenue] = -value
	case evAdImpression, evSubConvert, evSubRenew:
		f.sums[analytics.SumTotalRevenue] = value
	case evCheckout:
		f.sums[analytics.SumCheckouts] = 1
	case evAddToCart:
		f.sums[analytics.SumAddToCarts] = 1
		for _, it := range ev.Items {
			f.sums[analytics.SumItemsAddedToCart] += quantity(it)
		}
	case evViewItem:
		for _, it := range ev.Items {
			f.sums[analytics.SumItemsViewed] += quantity(it)
		}
	}
}

// itemSums are the sums an event counts in an item section's entry of one
// of its items: the item's units viewed, added to a cart or purchased, and
// its revenue.
func itemSums(f *facts, ev *eventv1.Event, it *eventv1.Item) (sums [analytics.NumSums]int64) {
	switch ev.Name {
	case evPurchase, evInAppPurchase:
		sums[analytics.SumItemRevenue] = micros(it.Price * float64(quantity(it)) * f.rate)
		sums[analytics.SumItemsPurchased] = quantity(it)
	case evViewItem:
		sums[analytics.SumItemsViewed] = quantity(it)
	case evAddToCart:
		sums[analytics.SumItemsAddedToCart] = quantity(it)
	}
	return sums
}

func quantity(it *eventv1.Item) int64 { return max(it.Quantity, 1) }

// micros is an amount in micro-units, rounded; amounts beyond ±9e12 units
// (no currency's sale) are clamped.
func micros(v float64) int64 {
	const limit = 9e18
	x := math.Round(v * 1e6)
	switch {
	case math.IsNaN(x):
		return 0
	case x > limit:
		return int64(limit)
	case x < -limit:
		return -int64(limit)
	}
	return int64(x)
}

// paramNumber is a numeric event parameter's value (0 when absent or not
// a number: collect gives a text value no currency rate either).
func paramNumber(ev *eventv1.Event, name string) float64 {
	switch k := ev.GetParams()[name].GetKind().(type) {
	case *eventv1.Value_DoubleValue:
		return k.DoubleValue
	case *eventv1.Value_IntValue:
		return float64(k.IntValue)
	}
	return 0
}

// add counts the event in every section of the builder of its property's
// hour: vals are scratch space for the dimension values.
func (d *deriver) add(b *block.Builder, ev *eventv1.Event, s *session, f *facts, vals []string, key []byte) []byte {
	for i, x := range d.dims {
		if x != nil {
			vals[i] = analytics.Clean(x(ev, s, &d.rules), d.maxLen[i])
		}
	}
	minutes := f.recv-f.evTime <= MinuteHorizon
	hour, minute := block.Hour.Floor(f.evTime), block.Minute.Floor(f.evTime)
	for i, proj := range d.project {
		bucket := hour
		if d.minute[i] {
			if !minutes {
				continue // backfilled: hour grain only
			}
			bucket = minute
		}
		switch d.fan[i] {
		case "item":
			key = d.addItems(b, i, bucket, proj, ev, f, vals, key)
			continue
		case catalog.CustomDimension:
			for name, v := range ev.CustomDimensions {
				key = append(append(append(key[:0], analytics.Clean(name, 60)...), block.Sep...), analytics.Clean(v, 100)...)
				countIn(b.AggBytes(i, bucket, key), f, &f.sums)
			}
			continue
		case catalog.CustomMetric:
			for name, v := range ev.CustomMetrics {
				var sums [analytics.NumSums]int64
				sums[analytics.SumCustom] = micros(v)
				key = append(key[:0], analytics.Clean(name, 60)...)
				countIn(b.AggBytes(i, bucket, key), f, &sums)
			}
			continue
		}
		key = appendKey(key[:0], proj, vals)
		countIn(b.AggBytes(i, bucket, key), f, &f.sums)
	}
	return key
}

// addItems counts each item of the event in item section i: an event
// without items counts in none of its entries.
func (d *deriver) addItems(b *block.Builder, i int, bucket int64, proj []int, ev *eventv1.Event, f *facts, vals []string, key []byte) []byte {
	for _, it := range ev.Items {
		for _, di := range proj {
			if x := d.item[di]; x != nil {
				vals[di] = analytics.Clean(x(it), d.maxLen[di])
			}
		}
		sums := itemSums(f, ev, it)
		key = appendKey(key[:0], proj, vals)
		countIn(b.AggBytes(i, bucket, key), f, &sums)
	}
	return key
}

func appendKey(key []byte, proj []int, vals []string) []byte {
	for j, di := range proj {
		if j > 0 {
			key = append(key, block.Sep...)
		}
		key = append(key, vals[di]...)
	}
	return key
}

func countIn(agg *analytics.Aggregate, f *facts, sums *[analytics.NumSums]int64) {
	agg.Events++
	if f.pageView {
		agg.PageViews++
	}
	agg.EngagementMsec += f.engageMs
	agg.Users.Add(f.user)
	agg.Sessions.Add(f.sess)
	if f.isNew {
		agg.NewUsers.Add(f.user)
	}
	if f.active {
		agg.ActiveUsers.Add(f.user)
	}
	if f.engaged {
		agg.EngagedSess.Add(f.sess)
	}
	if !f.outcomes {
		return
	}
	for k, v := range sums {
		agg.Sums[k] += v
	}
	if f.keyEvent {
		agg.Extra(analytics.SketchKeySessions).Add(f.sess)
	}
	if f.purchase {
		agg.Extra(analytics.SketchPurchasers).Add(f.user)
		if f.firstBuy {
			agg.Extra(analytics.SketchFirstPurchasers).Add(f.user)
		}
	}
}

func engagedFlag(ev *eventv1.Event) bool {
	v, ok := ev.Params["session_engaged"]
	if !ok {
		return false
	}
	switch x := v.Kind.(type) {
	case *eventv1.Value_StringValue:
		return x.StringValue == "1" || x.StringValue == "true"
	case *eventv1.Value_IntValue:
		return x.IntValue == 1
	case *eventv1.Value_BoolValue:
		return x.BoolValue
	}
	return false
}
