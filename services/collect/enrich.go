// Package collect validates Measurement-Protocol-shaped batches and turns
// them into typed, enriched events for the event log.
package collect

import (
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mileusna/useragent"
	"github.com/phuslu/iploc"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	collectv1 "github.com/sextant-analytics/sextant/gen/sextant/collect/v1"
	eventv1 "github.com/sextant-analytics/sextant/gen/sextant/event/v1"
	"github.com/sextant-analytics/sextant/pkg/apierror"
)

// SchemaVersion is the version of the enrichment rules implemented here;
// it is stored in every event.
const SchemaVersion = 1

// Meta is what the transport knows about the request.
type Meta struct {
	PropertyID string     // the authenticated property
	UserAgent  string     // User-Agent header
	ClientIP   netip.Addr // peer or trusted forwarded address; never stored
	Country    string     // from a trusted header (e.g. CF-IPCountry); wins over IP lookup when set
	Now        time.Time  // receive time; time.Now() when zero
}

// Parameters promoted to fields of eventv1.Event (and removed from params).
const (
	pPageLocation    = "page_location"
	pPageReferrer    = "page_referrer"
	pPageTitle       = "page_title"
	pGASessionID     = "ga_session_id"
	pSessionID       = "session_id"
	pGASessionNumber = "ga_session_number"
	pEngagementTime  = "engagement_time_msec"
)

// isPromotedParam reports the params that become fields of the event.
func isPromotedParam(name string) bool {
	switch name {
	case pPageLocation, pPageReferrer, pPageTitle, pGASessionID, pSessionID, pGASessionNumber, pEngagementTime:
		return true
	}
	return false
}

// maxSourceLen bounds traffic-source strings taken from URLs.
const maxSourceLen = 100

// BuildEvents validates req whole and turns it into typed, enriched events.
// It returns either all events or an *apierror.Error of kind InvalidArgument
// listing EVERY violation (not just the first), each with a field path and a
// GA4 validation code (apierror.ValueInvalid, ValueRequired, NameInvalid,
// NameReserved, ValueOutOfBounds, ExceededMaxEntities, NameDuplicated).
//
// BuildEvents is safe for concurrent use. Events are allocated in slabs: do
// not copy an event by value (as with any protobuf message); pointers may be
// kept and modified freely, and no sub-message is shared between two events.
func BuildEvents(req *collectv1.CollectRequest, meta Meta, lim Limits) ([]*eventv1.Event, error) {
	b := newBatch(req, meta, lim)
	b.checkRequest()
	userProps := b.checkUserProperties()
	consent := b.checkConsent()
	b.checkLocation()

	events := req.GetEvents()
	out := make([]*eventv1.Event, len(events))
	evs := make([]eventv1.Event, len(events))
	times := make([]timestamppb.Timestamp, 2*len(events))
	sources := make([]eventv1.TrafficSource, len(events))
	pages := make([]eventv1.Page, len(events))
	b.nParams = make([]int32, len(events))
	recvSec, recvNano := b.now.Unix(), int32(b.now.Nanosecond())
	for i, e := range events {
		ev := &evs[i]
		out[i] = ev
		ev.EventTime = &times[2*i]
		ev.ReceiveTime = &times[2*i+1]
		ev.ReceiveTime.Seconds, ev.ReceiveTime.Nanos = recvSec, recvNano
		ev.TrafficSource = &sources[i]
		b.buildEvent(i, e, ev, &pages[i])
	}
	if len(b.vs) > 0 {
		return nil, b.vs.err()
	}

	// The batch is valid: add what every event of it shares.
	clientID := req.GetClientId()
	if clientID == "" {
		clientID = req.GetAppInstanceId()
	}
	dev := deviceOf(req, meta.UserAgent)
	var devs []eventv1.Device
	if dev != (deviceInfo{}) {
		devs = make([]eventv1.Device, len(out))
	}
	var consents []eventv1.Consent
	if consent != (consentInfo{}) {
		consents = make([]eventv1.Consent, len(out))
	}
	country := countryOf(req, meta)
	var values valueSlab
	values.grow(b.nValues + len(userProps)*len(out))
	needIDs := 0
	for i, ev := range out {
		ev.PropertyId = meta.PropertyID
		ev.ClientId = clientID
		ev.UserId = req.GetUserId()
		ev.Country = country
		ev.SchemaVersion = SchemaVersion
		if devs != nil {
			d := &devs[i]
			d.Category, d.Browser, d.BrowserVersion = dev.category, dev.browser, dev.browserVersion
			d.OperatingSystem, d.OperatingSystemVersion, d.Language = dev.os, dev.osVersion, dev.language
			ev.Device = d
		}
		if consents != nil {
			c := &consents[i]
			c.AdUserData, c.AdPersonalization, c.AnalyticsStorage = consent.adUserData, consent.adPersonalization, consent.analyticsStorage
			ev.Consent = c
		}
		if len(userProps) > 0 {
			m := make(map[string]*eventv1.Value, len(userProps))
			for _, p := range userProps {
				m[p.name] = values.typedValue(p.value)
			}
			ev.UserProperties = m
		}
		if n := b.nParams[i]; n > 0 {
			ev.Params = make(map[string]*eventv1.Value, n)
			for name, v := range events[i].GetParams() {
				if !isPromotedParam(name) {
					ev.Params[name] = values.typedValue(v)
				}
			}
		}
		if ev.EventId == "" {
			needIDs++
		}
	}
	if needIDs > 0 {
		assignEventIDs(out, needIDs)
	}
	return out, nil
}

// batch carries the state of one BuildEvents call.
type batch struct {
	req          *collectv1.CollectRequest
	lim          Limits
	now          time.Time
	minT, maxT   time.Time // event-time window
	reqTime      time.Time // default event time
	reqTimeBad   bool      // req.timestampMicros is set and out of the window
	reqTimeFlag  bool      // the request-level time violation was reported
	seenEventIDs map[string]int
	nParams      []int32 // per event: params that stay in params
	nValues      int     // sum of nParams
	vs           violations
}

func newBatch(req *collectv1.CollectRequest, meta Meta, lim Limits) *batch {
	b := &batch{req: req, lim: lim.withDefaults(), now: meta.Now}
	if b.now.IsZero() {
		b.now = time.Now()
	}
	b.minT = b.now.Add(-b.lim.MaxPast)
	b.maxT = b.now.Add(b.lim.MaxFuture)
	b.reqTime = b.now
	if ts := req.GetTimestampMicros(); ts != 0 {
		b.reqTime = time.UnixMicro(ts)
		b.reqTimeBad = !b.inWindow(b.reqTime)
	}
	return b
}

func (b *batch) inWindow(t time.Time) bool { return !t.Before(b.minT) && !t.After(b.maxT) }

func (b *batch) checkRequest() {
	req := b.req
	if req.GetClientId() == "" && req.GetAppInstanceId() == "" {
		b.vs.add(-1, "clientId", apierror.ValueRequired, "clientId or appInstanceId is required")
	}
	for _, f := range [...]struct{ path, val string }{
		{"clientId", req.GetClientId()},
		{"appInstanceId", req.GetAppInstanceId()},
		{"userId", req.GetUserId()},
	} {
		if code, desc := stringProblem(f.val, maxIDLen); code != "" {
			b.vs.add(-1, f.path, code, desc)
		}
	}
	switch n := len(req.GetEvents()); {
	case n == 0:
		b.vs.add(-1, "events", apierror.ValueRequired, "at least one event is required")
	case n > b.lim.MaxEvents:
		b.vs.add(-1, "events", apierror.ExceededMaxEntities,
			"at most "+strconv.Itoa(b.lim.MaxEvents)+" events are allowed per request, got "+strconv.Itoa(n))
	}
	// Free-form strings that end up in events must at least be UTF-8.
	d := req.GetDevice()
	for _, f := range [...]struct{ path, val string }{
		{"device.category", d.GetCategory()},
		{"device.language", d.GetLanguage()},
		{"device.operatingSystem", d.GetOperatingSystem()},
		{"device.operatingSystemVersion", d.GetOperatingSystemVersion()},
		{"device.browser", d.GetBrowser()},
		{"device.browserVersion", d.GetBrowserVersion()},
	} {
		if !utf8.ValidString(f.val) {
			b.vs.add(-1, f.path, apierror.ValueInvalid, "value is not valid UTF-8")
		}
	}
}

type namedValue struct {
	name  string
	value *structpb.Value
}

func (b *batch) checkUserProperties() []namedValue {
	ups := b.req.GetUserProperties()
	if len(ups) == 0 {
		return nil
	}
	if len(ups) > b.lim.MaxUserProperties {
		b.vs.add(-1, "userProperties", apierror.ExceededMaxEntities,
			"at most "+strconv.Itoa(b.lim.MaxUserProperties)+" user properties are allowed, got "+strconv.Itoa(len(ups)))
	}
	out := make([]namedValue, 0, len(ups))
	for name, up := range ups {
		code, desc := paramNameProblem(name, true)
		if code == "" {
			code, desc = scalarProblem(up.GetValue(), maxUserPropValueLen)
		}
		if code != "" {
			b.vs.add(-1, "userProperties."+name, code, desc)
			continue
		}
		out = append(out, namedValue{name, up.GetValue()})
	}
	return out
}

type consentInfo struct {
	adUserData, adPersonalization, analyticsStorage eventv1.ConsentStatus
}

func (b *batch) checkConsent() consentInfo {
	c := b.req.GetConsent()
	if c == nil {
		return consentInfo{}
	}
	status := func(path, s string) eventv1.ConsentStatus {
		switch {
		case s == "":
			return eventv1.ConsentStatus_CONSENT_STATUS_UNSPECIFIED
		case strings.EqualFold(s, "GRANTED"):
			return eventv1.ConsentStatus_CONSENT_STATUS_GRANTED
		case strings.EqualFold(s, "DENIED"):
			return eventv1.ConsentStatus_CONSENT_STATUS_DENIED
		}
		b.vs.add(-1, path, apierror.ValueInvalid, `consent must be "GRANTED" or "DENIED"`)
		return eventv1.ConsentStatus_CONSENT_STATUS_UNSPECIFIED
	}
	return consentInfo{
		adUserData:        status("consent.adUserData", c.GetAdUserData()),
		adPersonalization: status("consent.adPersonalization", c.GetAdPersonalization()),
		analyticsStorage:  status("consent.analyticsStorage", c.GetAnalyticsStorage()),
	}
}

func (b *batch) checkLocation() {
	if c := b.req.GetUserLocation().GetCountryId(); c != "" && !isCountryCode(c) {
		b.vs.add(-1, "userLocation.countryId", apierror.ValueInvalid, "countryId must be an ISO 3166-1 alpha-2 code")
	}
}

// buildEvent validates e (events[i]) and fills in everything of ev that is
// specific to the event. Violations go to b.vs.
func (b *batch) buildEvent(i int, e *collectv1.Event, ev *eventv1.Event, page *eventv1.Page) {
	if e == nil {
		b.vs.add(i, eventPath(i), apierror.ValueRequired, "event is required")
		return
	}
	if code, desc := eventNameProblem(e.GetName()); code != "" {
		b.vs.add(i, eventPath(i)+".name", code, desc)
	}
	ev.Name = e.GetName()

	if id := e.GetEventId(); id != "" {
		switch {
		case !isEventID(id):
			b.vs.add(i, eventPath(i)+".eventId", apierror.ValueInvalid,
				"eventId must be at most 64 characters of letters, digits, '.', '_', ':' and '-'")
		default:
			if b.seenEventIDs == nil {
				b.seenEventIDs = make(map[string]int)
			}
			if first, dup := b.seenEventIDs[id]; dup {
				b.vs.add(i, eventPath(i)+".eventId", apierror.NameDuplicated,
					"eventId "+strconv.Quote(id)+" is also used by events["+strconv.Itoa(first)+"]")
			} else {
				b.seenEventIDs[id] = i
			}
		}
		ev.EventId = id
	}

	t := b.reqTime
	if ts := e.GetTimestampMicros(); ts != 0 {
		t = time.UnixMicro(ts)
		if !b.inWindow(t) {
			b.vs.add(i, eventPath(i)+".timestampMicros", apierror.ValueOutOfBounds, b.windowDesc())
		}
	} else if b.reqTimeBad && !b.reqTimeFlag {
		b.reqTimeFlag = true
		b.vs.add(-1, "timestampMicros", apierror.ValueOutOfBounds, b.windowDesc())
	}
	ev.EventTime.Seconds, ev.EventTime.Nanos = t.Unix(), int32(t.Nanosecond())

	b.buildParams(i, e, ev, page)
}

func (b *batch) windowDesc() string {
	return "event time must be at most " + b.lim.MaxPast.String() + " in the past and " +
		b.lim.MaxFuture.String() + " in the future"
}

// eventParams holds what buildParams extracts from the params besides the
// typed map.
type eventParams struct {
	location, referrer, title string
	gaSessionID, sessionID    int64
	source, medium, campaign  string
	gclid                     bool
	screenName, fbScreen      string
}

func (b *batch) buildParams(i int, e *collectv1.Event, ev *eventv1.Event, page *eventv1.Page) {
	params := e.GetParams()
	if len(params) > b.lim.MaxParams {
		b.vs.add(i, eventPath(i)+".params", apierror.ExceededMaxEntities,
			"at most "+strconv.Itoa(b.lim.MaxParams)+" parameters are allowed per event, got "+strconv.Itoa(len(params)))
	}
	var p eventParams
	bad := func(name, code, desc string) {
		b.vs.add(i, eventPath(i)+".params."+name, code, desc)
	}
	for name, v := range params {
		if code, desc := paramNameProblem(name, false); code != "" {
			bad(name, code, desc)
			continue
		}
		switch name {
		case pPageLocation, pPageReferrer, pPageTitle:
			sv, ok := v.GetKind().(*structpb.Value_StringValue)
			if !ok {
				bad(name, apierror.ValueInvalid, name+" must be a string")
				continue
			}
			s, max := sv.StringValue, maxURLParamLen
			if name == pPageTitle {
				max = maxTitleLen
			}
			if code, desc := stringProblem(s, max); code != "" {
				bad(name, code, desc)
				continue
			}
			switch name {
			case pPageLocation:
				p.location = s
			case pPageReferrer:
				p.referrer = s
			default:
				p.title = s
			}
		case pGASessionID, pSessionID, pGASessionNumber:
			n, ok := intParam(v)
			if !ok || n <= 0 {
				bad(name, apierror.ValueInvalid, name+" must be a positive integer")
				continue
			}
			switch name {
			case pGASessionID:
				p.gaSessionID = n
			case pSessionID:
				p.sessionID = n
			default:
				ev.SessionNumber = n
			}
		case pEngagementTime:
			n, ok := intParam(v)
			if !ok || n < 0 {
				bad(name, apierror.ValueInvalid, name+" must be a non-negative integer")
				continue
			}
			ev.EngagementTimeMsec = n
		default:
			if code, desc := scalarProblem(v, maxParamValueLen); code != "" {
				bad(name, code, desc)
				continue
			}
			// Converted once the whole batch is known to be valid.
			b.nParams[i]++
			b.nValues++
			if sv, ok := v.Kind.(*structpb.Value_StringValue); ok {
				switch name {
				case "source":
					p.source = sv.StringValue
				case "medium":
					p.medium = sv.StringValue
				case "campaign":
					p.campaign = sv.StringValue
				case "gclid":
					p.gclid = sv.StringValue != ""
				case "screen_name":
					p.screenName = sv.StringValue
				case "firebase_screen":
					p.fbScreen = sv.StringValue
				}
			}
		}
	}

	ev.SessionId = p.gaSessionID
	if ev.SessionId == 0 {
		ev.SessionId = p.sessionID
	}

	// Each URL is parsed once and used for validation, path and source.
	var loc, ref *url.URL
	if p.location != "" {
		if loc = parseHTTPURL(p.location); loc == nil {
			bad(pPageLocation, apierror.ValueInvalid, "page_location must be an absolute http(s) URL")
		}
	}
	if p.referrer != "" {
		if ref = parseHTTPURL(p.referrer); ref == nil {
			bad(pPageReferrer, apierror.ValueInvalid, "page_referrer must be an absolute http(s) URL")
		}
	}

	page.Location, page.Referrer, page.Title = p.location, p.referrer, p.title
	switch {
	case loc != nil:
		page.Path = loc.EscapedPath()
		if page.Path == "" {
			page.Path = "/"
		}
	case ev.Name == "screen_view":
		page.Path = p.screenName
		if page.Path == "" {
			page.Path = p.fbScreen
		}
	}
	if page.Location != "" || page.Referrer != "" || page.Title != "" || page.Path != "" {
		ev.Page = page
	}

	ts := ev.TrafficSource
	ts.Source, ts.Medium, ts.Campaign = trafficSource(loc, ref, &p)
}

// parseHTTPURL parses an absolute http or https URL with a host, or
// returns nil.
func parseHTTPURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return nil
	}
	return u
}

// valueSlot holds a Value and room for any of its oneof wrappers, so that
// one allocation serves both.
type valueSlot struct {
	v eventv1.Value
	s eventv1.Value_StringValue
	i eventv1.Value_IntValue
	d eventv1.Value_DoubleValue
	b eventv1.Value_BoolValue
}

// valueSlab hands out the typed values of a batch from one allocation
// instead of two small allocations per value.
type valueSlab struct{ free []valueSlot }

// grow makes room for n more values.
func (a *valueSlab) grow(n int) {
	if len(a.free) < n {
		a.free = make([]valueSlot, n)
	}
}

func (a *valueSlab) slot() *valueSlot {
	if len(a.free) == 0 {
		a.grow(16) // only if grow was given too small a count
	}
	s := &a.free[0]
	a.free = a.free[1:]
	return s
}

// typedValue converts a validated scalar.
func (a *valueSlab) typedValue(v *structpb.Value) *eventv1.Value {
	s := a.slot()
	switch k := v.Kind.(type) {
	case *structpb.Value_StringValue:
		s.s.StringValue = k.StringValue
		s.v.Kind = &s.s
	case *structpb.Value_NumberValue:
		if n, ok := asInt64(k.NumberValue); ok {
			s.i.IntValue = n
			s.v.Kind = &s.i
		} else {
			s.d.DoubleValue = k.NumberValue
			s.v.Kind = &s.d
		}
	case *structpb.Value_BoolValue:
		s.b.BoolValue = k.BoolValue
		s.v.Kind = &s.b
	}
	return &s.v
}

// Traffic-source constants, as GA4 reports them.
const (
	notSet = "(not set)"
)

// trafficSource attributes an event: UTM tags of the page URL, then a
// gclid, then the MP source/medium/campaign params, then the referrer, else
// direct.
func trafficSource(loc, ref *url.URL, p *eventParams) (source, medium, campaign string) {
	var q campaignQuery
	if loc != nil && loc.RawQuery != "" {
		q = scanCampaignQuery(loc.RawQuery)
	}
	switch {
	case q.source != "" || q.medium != "" || q.campaign != "":
		return lowerOr(q.source), lowerOr(q.medium), campaignOr(q.campaign)
	case q.gclid || p.gclid:
		return "google", "cpc", notSet
	case p.source != "" || p.medium != "" || p.campaign != "":
		return lowerOr(clip(p.source)), lowerOr(clip(p.medium)), campaignOr(clip(p.campaign))
	}
	if ref != nil {
		rh := trimWWW(ref.Hostname())
		ph := ""
		if loc != nil {
			ph = trimWWW(loc.Hostname())
		}
		if !strings.EqualFold(rh, ph) {
			rh = clip(strings.ToLower(rh))
			if isSearchEngine(rh) {
				return rh, "organic", "(organic)"
			}
			return rh, "referral", "(referral)"
		}
	}
	return "(direct)", "(none)", "(direct)"
}

func lowerOr(s string) string {
	if s == "" {
		return notSet
	}
	return strings.ToLower(s)
}

func campaignOr(s string) string {
	if s == "" {
		return notSet
	}
	return s
}

func trimWWW(host string) string {
	if len(host) > 4 && strings.EqualFold(host[:4], "www.") {
		return host[4:]
	}
	return host
}

// isSearchEngine reports a known search engine by any label of host but
// the last (google.com, google.co.uk, search.yahoo.com, yandex.ru, …).
func isSearchEngine(host string) bool {
	for {
		label, rest, ok := strings.Cut(host, ".")
		if !ok {
			return false
		}
		switch label {
		case "google", "bing", "duckduckgo", "yahoo", "baidu", "yandex", "ecosia":
			return true
		}
		host = rest
	}
}

type campaignQuery struct {
	source, medium, campaign string
	gclid                    bool
}

// scanCampaignQuery reads utm_source, utm_medium, utm_campaign and gclid
// from a raw query without building a url.Values map. The first occurrence
// of a key wins, as with url.Values.Get.
func scanCampaignQuery(raw string) campaignQuery {
	var q campaignQuery
	var seenS, seenM, seenC bool
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(kv, "=")
		if strings.ContainsAny(k, "%+") {
			var err error
			if k, err = url.QueryUnescape(k); err != nil {
				continue
			}
		}
		var dst *string
		switch k {
		case "utm_source":
			if seenS {
				continue
			}
			seenS, dst = true, &q.source
		case "utm_medium":
			if seenM {
				continue
			}
			seenM, dst = true, &q.medium
		case "utm_campaign":
			if seenC {
				continue
			}
			seenC, dst = true, &q.campaign
		case "gclid":
			q.gclid = q.gclid || v != ""
			continue
		default:
			continue
		}
		if s, err := url.QueryUnescape(v); err == nil {
			*dst = clip(validUTF8(s))
		}
	}
	return q
}

// clip truncates s to maxSourceLen characters.
func clip(s string) string {
	if len(s) <= maxSourceLen {
		return s
	}
	n := 0
	for i := range s {
		if n == maxSourceLen {
			return s[:i]
		}
		n++
	}
	return s
}

func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// deviceInfo is the device of a request, shared by its events.
type deviceInfo struct {
	category, browser, browserVersion, os, osVersion, language string
}

// deviceOf parses the User-Agent (req.user_agent over the header) and
// applies the fields of req.device on top.
func deviceOf(req *collectv1.CollectRequest, header string) deviceInfo {
	var d deviceInfo
	uaString := req.GetUserAgent()
	if uaString == "" {
		uaString = header
	}
	if uaString != "" {
		ua := useragent.Parse(validUTF8(uaString))
		switch {
		case ua.Bot:
			d.category = "bot"
		case ua.Tablet:
			d.category = "tablet"
		case ua.Mobile:
			d.category = "mobile"
		case ua.Desktop:
			d.category = "desktop"
		}
		// The parser falls back to the whole string as the name.
		if ua.Name != ua.String {
			d.browser, d.browserVersion = clip(ua.Name), clip(ua.Version)
		}
		d.os, d.osVersion = clip(ua.OS), clip(ua.OSVersion)
	}
	rd := req.GetDevice()
	if s := rd.GetCategory(); s != "" {
		d.category = strings.ToLower(s)
	}
	if s := rd.GetBrowser(); s != "" {
		d.browser = s
	}
	if s := rd.GetBrowserVersion(); s != "" {
		d.browserVersion = s
	}
	if s := rd.GetOperatingSystem(); s != "" {
		d.os = s
	}
	if s := rd.GetOperatingSystemVersion(); s != "" {
		d.osVersion = s
	}
	d.language = rd.GetLanguage()
	return d
}

// countryOf picks the country: trusted header, then userLocation.countryId,
// then an IP lookup of ipOverride (when it parses) or the client address.
func countryOf(req *collectv1.CollectRequest, meta Meta) string {
	if c := normCountry(meta.Country); c != "" {
		return c
	}
	if c := normCountry(req.GetUserLocation().GetCountryId()); c != "" {
		return c
	}
	ip := meta.ClientIP
	if s := req.GetIpOverride(); s != "" {
		if a, err := netip.ParseAddr(s); err == nil {
			ip = a
		}
	}
	if !ip.IsValid() {
		return ""
	}
	return normCountry(iploc.IPCountry(ip.Unmap()))
}

// normCountry upper-cases a two-letter code; unknowns ("", "XX", "ZZ",
// "T1", anything else) become "".
func normCountry(s string) string {
	if !isCountryCode(s) {
		return ""
	}
	c := strings.ToUpper(s)
	if c == "XX" || c == "ZZ" {
		return ""
	}
	return c
}

// assignEventIDs gives every event without an id a random 128-bit id as 32
// lowercase hex characters, with one read from crypto/rand for the batch.
func assignEventIDs(events []*eventv1.Event, n int) {
	raw := make([]byte, 16*n)
	_, _ = rand.Read(raw) // never fails (the runtime aborts instead)
	buf := make([]byte, 32*n)
	hex.Encode(buf, raw)
	ids := string(buf)
	k := 0
	for _, ev := range events {
		if ev.EventId == "" {
			ev.EventId = ids[32*k : 32*k+32]
			k++
		}
	}
}
