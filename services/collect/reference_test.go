package collect

import (
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mileusna/useragent"
	collectv1 "github.com/sextant-analytics/sextant/gen/sextant/collect/v1"
	eventv1 "github.com/sextant-analytics/sextant/gen/sextant/event/v1"
	"github.com/sextant-analytics/sextant/pkg/apierror"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The implementation of BuildEvents before collect read batches from their
// wire format (commit 6f191d3): it validates and enriches a decoded
// CollectRequest into eventv1.Event messages. It stays here as the oracle
// of the differential tests (FuzzEncodeMatchesReference): for any request
// protobuf decodes, Encode must reject what it rejects, with the same
// violations, and accept what it accepts with the same events. A change of
// the enrichment rules changes both.

// BuildEvents validates req whole and turns it into typed, enriched events.
// It returns either all events or an *apierror.Error of kind InvalidArgument
// listing EVERY violation (not just the first), each with a field path and a
// GA4 validation code (apierror.ValueInvalid, ValueRequired, NameInvalid,
// NameReserved, ValueOutOfBounds, ExceededMaxEntities, NameDuplicated).
//
// BuildEvents is safe for concurrent use. Events are allocated in slabs: do
// not copy an event by value (as with any protobuf message); pointers may be
// kept and modified freely, and no sub-message is shared between two events.
func referenceBuild(req *collectv1.CollectRequest, meta Meta, lim Limits) ([]*eventv1.Event, error) {
	b := newRefBatch(req, meta, lim)
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
	dev := refDeviceOf(req, meta.UserAgent)
	dev.platform = platformOf(req.GetClientId() != "", dev.os)
	var devs []eventv1.Device
	if dev != (deviceInfo{}) {
		devs = make([]eventv1.Device, len(out))
	}
	var consents []eventv1.Consent
	if consent != (consentInfo{}) {
		consents = make([]eventv1.Consent, len(out))
	}
	ul := req.GetUserLocation()
	loc := locate(nil, meta, ul.GetCountryId(), ul.GetCity(), ul.GetRegionId(), req.GetIpOverride())
	var values valueSlab
	values.grow(b.nValues + len(userProps)*len(out))
	needIDs := 0
	for i, ev := range out {
		ev.PropertyId = meta.PropertyID
		ev.ClientId = clientID
		ev.UserId = req.GetUserId()
		ev.Country, ev.City, ev.Region = loc.country, loc.city, loc.region
		ev.SchemaVersion = SchemaVersion
		if devs != nil {
			d := &devs[i]
			d.Category, d.Browser, d.BrowserVersion = dev.category, dev.browser, dev.browserVersion
			d.OperatingSystem, d.OperatingSystemVersion, d.Language = dev.os, dev.osVersion, dev.language
			d.ScreenResolution, d.Model, d.Brand, d.Platform = dev.screenResolution, dev.model, dev.brand, dev.platform
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
				if slices.Contains(meta.Settings.UserDimensions, p.name) {
					refSetDimension(ev, "customUser:"+p.name, p.value)
				}
			}
			ev.UserProperties = m
		}
		if n := b.nParams[i]; n > 0 {
			ev.Params = make(map[string]*eventv1.Value, n)
			for name, v := range events[i].GetParams() {
				if !isPromotedParam(name) {
					ev.Params[name] = values.typedValue(v)
					if slices.Contains(meta.Settings.EventDimensions, name) {
						refSetDimension(ev, "customEvent:"+name, v)
					}
					if nv, ok := v.GetKind().(*structpb.Value_NumberValue); ok && slices.Contains(meta.Settings.EventMetrics, name) {
						if ev.CustomMetrics == nil {
							ev.CustomMetrics = map[string]float64{}
						}
						ev.CustomMetrics["customEvent:"+name] = nv.NumberValue
					}
				}
			}
		}
		if ev.EventId == "" {
			needIDs++
		}
	}
	if needIDs > 0 {
		refAssignEventIDs(out, needIDs)
	}
	return out, nil
}

// refSetDimension sets a custom dimension to a scalar's text.
func refSetDimension(ev *eventv1.Event, name string, v *structpb.Value) {
	var text string
	switch k := v.GetKind().(type) {
	case *structpb.Value_StringValue:
		text = k.StringValue
	case *structpb.Value_BoolValue:
		text = strconv.FormatBool(k.BoolValue)
	case *structpb.Value_NumberValue:
		if n, ok := asInt64(k.NumberValue); ok {
			text = strconv.FormatInt(n, 10)
		} else {
			text = strconv.FormatFloat(k.NumberValue, 'g', -1, 64)
		}
	}
	if ev.CustomDimensions == nil {
		ev.CustomDimensions = map[string]string{}
	}
	ev.CustomDimensions[name] = text
}

// batch carries the state of one BuildEvents call.
type refBatch struct {
	req          *collectv1.CollectRequest
	set          Settings
	pid          string
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

func newRefBatch(req *collectv1.CollectRequest, meta Meta, lim Limits) *refBatch {
	b := &refBatch{req: req, set: meta.Settings, pid: meta.PropertyID, lim: lim.withDefaults(), now: meta.Now}
	b.lim.MaxPast = max(b.lim.MaxPast, meta.MaxPast)
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

func (b *refBatch) inWindow(t time.Time) bool { return !t.Before(b.minT) && !t.After(b.maxT) }

func (b *refBatch) checkRequest() {
	req := b.req
	if req.GetClientId() == "" && req.GetAppInstanceId() == "" {
		b.vs.add(-1, "clientId", apierror.ValueRequired, "clientId or appInstanceId is required")
	}
	for _, f := range [...]struct{ path, val string }{
		{"clientId", req.GetClientId()},
		{"appInstanceId", req.GetAppInstanceId()},
		{"userId", req.GetUserId()},
	} {
		if code, desc := idProblem(f.val, maxIDLen); code != "" {
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

func (b *refBatch) checkUserProperties() []namedValue {
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
			code, desc = scalarProblem(toScalar(up.GetValue()), maxUserPropValueLen)
		}
		if code != "" {
			b.vs.add(-1, "userProperties."+name, code, desc)
			continue
		}
		out = append(out, namedValue{name, up.GetValue()})
	}
	return out
}

func (b *refBatch) checkConsent() consentInfo {
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

func (b *refBatch) checkLocation() {
	if c := b.req.GetUserLocation().GetCountryId(); c != "" && !isCountryCode(c) {
		b.vs.add(-1, "userLocation.countryId", apierror.ValueInvalid, "countryId must be an ISO 3166-1 alpha-2 code")
	}
}

// buildEvent validates e (events[i]) and fills in everything of ev that is
// specific to the event. Violations go to b.vs.
func (b *refBatch) buildEvent(i int, e *collectv1.Event, ev *eventv1.Event, page *eventv1.Page) {
	if e == nil {
		b.vs.add(i, eventPath(i), apierror.ValueRequired, "event is required")
		return
	}
	if code, desc := eventNameProblem(e.GetName()); code != "" {
		b.vs.add(i, eventPath(i)+".name", code, desc)
	}
	ev.Name = e.GetName()
	ev.KeyEvent = slices.Contains(b.set.KeyEvents, e.GetName())

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

func (b *refBatch) windowDesc() string {
	return "event time must be at most " + b.lim.MaxPast.String() + " in the past and " +
		b.lim.MaxFuture.String() + " in the future"
}

// eventParams holds what buildParams extracts from the params besides the
// typed map.
type refParams struct {
	location, referrer, title string
	gaSessionID, sessionID    int64
	source, medium, campaign  string
	gclid                     bool
	screenName, fbScreen      string
	amount                    bool
	currency                  string
}

func (b *refBatch) buildParams(i int, e *collectv1.Event, ev *eventv1.Event, page *eventv1.Page) {
	params := e.GetParams()
	if len(params) > b.lim.MaxParams {
		b.vs.add(i, eventPath(i)+".params", apierror.ExceededMaxEntities,
			"at most "+strconv.Itoa(b.lim.MaxParams)+" parameters are allowed per event, got "+strconv.Itoa(len(params)))
	}
	var p refParams
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
			n, ok := intParam(toScalar(v))
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
			n, ok := intParam(toScalar(v))
			if !ok || n < 0 {
				bad(name, apierror.ValueInvalid, name+" must be a non-negative integer")
				continue
			}
			ev.EngagementTimeMsec = n
		case "items":
			lv, ok := v.GetKind().(*structpb.Value_ListValue)
			if !ok {
				bad(name, apierror.ValueInvalid, "items must be a list of item objects")
				continue
			}
			var priced bool
			ev.Items, priced = b.items(i, lv.ListValue)
			p.amount = p.amount || priced
		case "currency":
			sv, ok := v.GetKind().(*structpb.Value_StringValue)
			if !ok || len(sv.StringValue) != 3 ||
				strings.ContainsFunc(sv.StringValue, func(r rune) bool { return (r < 'A' || r > 'Z') && (r < 'a' || r > 'z') }) {
				bad(name, apierror.ValueInvalid, "currency must be an ISO 4217 code: three letters, e.g. USD")
				continue
			}
			p.currency = strings.ToUpper(sv.StringValue)
			fallthrough
		default:
			if code, desc := scalarProblem(toScalar(v), maxParamValueLen); code != "" {
				bad(name, code, desc)
				continue
			}
			// Converted once the whole batch is known to be valid.
			b.nParams[i]++
			b.nValues++
			if _, ok := v.Kind.(*structpb.Value_NumberValue); ok && name == "value" {
				p.amount = true
			}
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
	if p.amount {
		home := strings.ToUpper(b.set.Currency)
		if home == "" {
			home = "USD"
		}
		rate, set := b.set.Rates[p.currency]
		switch {
		case p.currency == "" || p.currency == home:
			ev.CurrencyRate = 1
		case set && rate > 0 && !math.IsInf(rate, 1):
			ev.CurrencyRate = rate
		case len(b.set.Rates) > 0:
			bad("currency", apierror.ValueInvalid, "property "+b.pid+" has no rate for "+p.currency)
		}
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
	ts.Source, ts.Medium, ts.Campaign = trafficSource(loc, ref, &eventParams{gaSessionID: p.gaSessionID, sessionID: p.sessionID, source: p.source, medium: p.medium, campaign: p.campaign, gclid: p.gclid, screenName: p.screenName, fbScreen: p.fbScreen})
}

// items validates an items list of events[i]; priced reports an item with
// a price.
func (b *refBatch) items(i int, lv *structpb.ListValue) (out []*eventv1.Item, priced bool) {
	path := eventPath(i) + ".params.items"
	if n := len(lv.GetValues()); n > 200 {
		b.vs.add(i, path, apierror.ExceededMaxEntities, fmt.Sprintf("at most 200 items are allowed per event, got %d", n))
		return nil, false
	}
	for k, v := range lv.GetValues() {
		at := fmt.Sprintf("%s[%d]", path, k)
		sv, ok := v.GetKind().(*structpb.Value_StructValue)
		if !ok {
			b.vs.add(i, at, apierror.ValueInvalid, "an item must be an object")
			continue
		}
		it := &eventv1.Item{Quantity: 1}
		badName := false
		for key, fv := range sv.StructValue.GetFields() {
			s := toScalar(fv)
			switch key {
			case "item_id", "item_name", "item_brand", "item_category", "item_variant":
				if s.kind != kindString {
					b.vs.add(i, at+"."+key, apierror.ValueInvalid, key+" must be a string")
					badName = badName || key == "item_id" || key == "item_name"
					continue
				}
				check := stringProblem
				if key == "item_id" {
					check = idProblem
				}
				if code, desc := check(s.str, maxParamValueLen); code != "" {
					b.vs.add(i, at+"."+key, code, desc)
					badName = badName || key == "item_id" || key == "item_name"
					continue
				}
				*map[string]*string{"item_id": &it.ItemId, "item_name": &it.ItemName, "item_brand": &it.ItemBrand,
					"item_category": &it.ItemCategory, "item_variant": &it.ItemVariant}[key] = s.str
			case "price":
				if s.kind != kindNumber || math.IsNaN(s.num) || math.IsInf(s.num, 0) {
					b.vs.add(i, at+"."+key, apierror.ValueInvalid, "price must be a finite number")
					continue
				}
				it.Price, priced = s.num, true
			case "quantity":
				if s.kind != kindNumber || s.num != math.Trunc(s.num) || s.num < 1 || s.num >= 1<<63 {
					b.vs.add(i, at+"."+key, apierror.ValueInvalid, "quantity must be an integer of at least 1")
					continue
				}
				it.Quantity = int64(s.num)
			default:
				if code, desc := scalarProblem(s, maxParamValueLen); code != "" {
					b.vs.add(i, at+"."+key, code, desc)
				}
			}
		}
		if it.ItemId == "" && it.ItemName == "" && !badName {
			b.vs.add(i, at, apierror.ValueRequired, "an item needs an item_id or an item_name")
		}
		out = append(out, it)
	}
	return out, priced
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

// deviceOf parses the User-Agent (req.user_agent over the header) and
// applies the fields of req.device on top.
func refDeviceOf(req *collectv1.CollectRequest, header string) deviceInfo {
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
	d.screenResolution, d.model, d.brand = rd.GetScreenResolution(), rd.GetModel(), rd.GetBrand()
	return d
}

// refAssignEventIDs gives every event without an id a random id.
func refAssignEventIDs(events []*eventv1.Event, n int) {
	ids := eventIDs(n)
	for _, ev := range events {
		if ev.EventId == "" {
			ev.EventId, ids = ids[:32], ids[32:]
		}
	}
}

// toScalar converts a decoded google.protobuf.Value.
func toScalar(v *structpb.Value) scalar {
	switch k := v.GetKind().(type) {
	case *structpb.Value_StringValue:
		return scalar{kind: kindString, str: k.StringValue}
	case *structpb.Value_NumberValue:
		return scalar{kind: kindNumber, num: k.NumberValue}
	case *structpb.Value_BoolValue:
		return scalar{kind: kindBool, flag: k.BoolValue}
	case nil:
		return scalar{}
	}
	return scalar{kind: kindComposite}
}
