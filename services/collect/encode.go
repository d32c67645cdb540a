package collect

import (
	"crypto/rand"
	"encoding/hex"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	eventv1 "github.com/sextant-analytics/sextant/gen/sextant/event/v1"
	"github.com/sextant-analytics/sextant/pkg/apierror"
	"github.com/sextant-analytics/sextant/pkg/eventlog"
)

// Encoder validates and enriches batches in their wire format and encodes
// their events for the event log, once: a batch costs one copy of its
// bytes, one buffer for all its events and a few per-batch slices; the
// structs it is read into are reused, and parsed User-Agents are cached.
// An Encoder is safe for concurrent use.
type Encoder struct {
	lim    Limits
	pool   sync.Pool // *wireRequest
	agents agentCache
	geo    Locator // nil: countries only (enrich.go)
}

// NewEncoder returns an encoder enforcing lim (zero fields: defaults).
func NewEncoder(lim Limits) *Encoder {
	return &Encoder{lim: lim.withDefaults(), agents: agentCache{max: 4096}}
}

// Encoded is a valid batch's events as the event log stores them.
type Encoded struct {
	Messages []eventlog.Message // one per event, in request order
	IDs      []string           // the events' ids, client-set or generated
	// ClientID and UserID are whom the events are of (the client id or
	// app instance id; the user id, "" without one).
	ClientID, UserID string
}

// Encode validates and enriches a CollectRequest's bytes for the property
// in meta. It returns every event or an *apierror.Error of kind
// InvalidArgument listing every violation, each with its field path and a
// GA4 validation code.
func (e *Encoder) Encode(b []byte, meta Meta) (Encoded, error) {
	r, err := e.decode(b)
	if err != nil {
		return Encoded{}, err
	}
	defer e.release(r)
	return e.build(r, meta)
}

// decode reads a batch into a pooled wireRequest; a malformed batch, or
// strings that are not UTF-8, are an InvalidArgument error.
func (e *Encoder) decode(b []byte) (*wireRequest, error) {
	r, _ := e.pool.Get().(*wireRequest)
	if r == nil {
		r = &wireRequest{}
	}
	if err := decode(b, r); err != nil {
		e.release(r)
		return nil, err
	}
	if len(r.bad) > 0 {
		err := r.bad.err()
		e.release(r)
		return nil, err
	}
	return r, nil
}

func (e *Encoder) release(r *wireRequest) {
	if cap(r.params) > 4096 || cap(r.events) > 1024 || cap(r.items) > 1024 || cap(r.itemFields) > 8192 {
		return // an outsized batch: let its memory go
	}
	e.pool.Put(r)
}

// derived is what validation works out for one event.
type derived struct {
	sec                               int64
	nanos                             int32
	sessionID, sessionNumber, engaged int64
	location, referrer, title, path   string
	source, medium, campaign          string
	kept                              int // params that stay in params
}

// builder carries one build.
type builder struct {
	r           *wireRequest
	lim         Limits
	now         time.Time
	minT, maxT  time.Time      // event-time window
	reqTime     time.Time      // default event time
	reqTimeBad  bool           // the request's timestampMicros is set and out of the window
	reqTimeFlag bool           // the request-level time violation was reported
	ids         map[string]int // first event of each id, for large batches
	set         Settings       // the property's
	pid         string
	vs          violations
}

func (e *Encoder) build(r *wireRequest, meta Meta) (Encoded, error) {
	lim := e.lim
	lim.MaxPast = max(lim.MaxPast, meta.MaxPast)
	b := builder{r: r, lim: lim, now: meta.Now, set: meta.Settings, pid: meta.PropertyID}
	if b.now.IsZero() {
		b.now = time.Now()
	}
	b.minT, b.maxT = b.now.Add(-b.lim.MaxPast), b.now.Add(b.lim.MaxFuture)
	b.reqTime = b.now
	if r.ts != 0 {
		b.reqTime = time.UnixMicro(r.ts)
		b.reqTimeBad = !b.inWindow(b.reqTime)
	}
	b.checkRequest()
	b.checkUserProperties()
	consent := b.checkConsent()
	b.checkLocation()
	ds := make([]derived, len(r.events))
	for i := range r.events {
		b.buildEvent(i, &r.events[i], &ds[i])
	}
	if len(b.vs) > 0 {
		return Encoded{}, b.vs.err()
	}

	// The batch is valid: encode what its events share once.
	clientID := r.clientID
	if clientID == "" {
		clientID = r.appInstanceID
	}
	ua := r.userAgent
	if ua == "" {
		ua = meta.UserAgent
	}
	dev := e.agents.device(ua).with(r.device)
	dev.platform = platformOf(r.clientID != "", dev.os)
	common := make([]byte, 0, 256)
	common = appendString(common, 2, meta.PropertyID)
	common = appendString(common, 3, clientID)
	common = appendString(common, 4, r.userID)
	common = appendTimestamp(common, 9, b.now.Unix(), int32(b.now.Nanosecond()))
	if dev != (deviceInfo{}) {
		common = appendMessage(common, 13, dev.size(), dev.append)
	}
	common = e.appendLocation(common, meta, r) // country, city, region
	for _, p := range r.userProps {
		common = appendEntry(common, 15, p.name, p.val)
	}
	if dims := b.set.UserDimensions; len(dims) > 0 {
		for _, p := range r.userProps {
			if slices.Contains(dims, p.name) {
				common = appendDimension(common, customUserPrefix, p.name, p.val)
			}
		}
	}
	if consent != (consentInfo{}) {
		common = appendMessage(common, 16, consent.size(), consent.append)
	}
	common = protowire.AppendTag(common, 17, protowire.VarintType)
	common = protowire.AppendVarint(common, SchemaVersion)

	n := len(r.events)
	ids := make([]string, n)
	needIDs := 0
	for i := range r.events {
		if ids[i] = r.events[i].id; ids[i] == "" {
			needIDs++
		}
	}
	if needIDs > 0 {
		newIDs := eventIDs(needIDs)
		for i := range ids {
			if ids[i] == "" {
				ids[i], newIDs = newIDs[:32], newIDs[32:]
			}
		}
	}
	buf := make([]byte, 0, n*(len(common)+64)+len(r.params)*24+len(r.items)*32+b.textBytes(ds))
	ends := make([]int, n)
	for i := range r.events {
		buf = appendEvent(buf, &r.events[i], &ds[i], ids[i], &b.set)
		buf = append(buf, common...)
		ends[i] = len(buf)
	}
	key := make([]byte, 0, len(meta.PropertyID)+1+len(clientID))
	key = append(append(append(key, meta.PropertyID...), '/'), clientID...)
	msgs := make([]eventlog.Message, n)
	start := 0
	for i, end := range ends {
		msgs[i] = eventlog.Message{Key: key, Value: buf[start:end:end], Headers: recordHeaders}
		start = end
	}
	return Encoded{Messages: msgs, IDs: ids, ClientID: clientID, UserID: r.userID}, nil
}

// textBytes estimates the bytes of the events' own strings.
func (b *builder) textBytes(ds []derived) int {
	n := 0
	for i := range ds {
		d := &ds[i]
		n += len(b.r.events[i].name) + len(d.location) + len(d.referrer) + len(d.title) + len(d.path) +
			len(d.source) + len(d.medium) + len(d.campaign)
	}
	for _, p := range b.r.params {
		n += len(p.name) + len(p.val.str)
	}
	for i := range b.r.items {
		it := &b.r.items[i]
		n += len(it.id) + len(it.name) + len(it.brand) + len(it.category) + len(it.variant)
	}
	return n
}

func (b *builder) inWindow(t time.Time) bool { return !t.Before(b.minT) && !t.After(b.maxT) }

func (b *builder) checkRequest() {
	r := b.r
	if r.clientID == "" && r.appInstanceID == "" {
		b.vs.add(-1, "clientId", apierror.ValueRequired, "clientId or appInstanceId is required")
	}
	for _, f := range [...]struct{ path, val string }{
		{"clientId", r.clientID},
		{"appInstanceId", r.appInstanceID},
		{"userId", r.userID},
	} {
		if code, desc := idProblem(f.val, maxIDLen); code != "" {
			b.vs.add(-1, f.path, code, desc)
		}
	}
	switch n := len(r.events); {
	case n == 0:
		b.vs.add(-1, "events", apierror.ValueRequired, "at least one event is required")
	case n > b.lim.MaxEvents:
		b.vs.add(-1, "events", apierror.ExceededMaxEntities,
			"at most "+strconv.Itoa(b.lim.MaxEvents)+" events are allowed per request, got "+strconv.Itoa(n))
	}
}

// checkUserProperties validates the user properties; the batch is
// rejected unless all are valid.
func (b *builder) checkUserProperties() {
	ups := b.r.userProps
	if len(ups) > b.lim.MaxUserProperties {
		b.vs.add(-1, "userProperties", apierror.ExceededMaxEntities,
			"at most "+strconv.Itoa(b.lim.MaxUserProperties)+" user properties are allowed, got "+strconv.Itoa(len(ups)))
	}
	for _, p := range ups {
		code, desc := paramNameProblem(p.name, true)
		if code == "" {
			code, desc = scalarProblem(p.val, maxUserPropValueLen)
		}
		if code != "" {
			b.vs.add(-1, "userProperties."+p.name, code, desc)
		}
	}
}

type consentInfo struct {
	adUserData, adPersonalization, analyticsStorage eventv1.ConsentStatus
}

func (c consentInfo) size() int {
	return varintFieldSize(1, uint64(c.adUserData)) + varintFieldSize(2, uint64(c.adPersonalization)) +
		varintFieldSize(3, uint64(c.analyticsStorage))
}

func (c consentInfo) append(b []byte) []byte {
	b = appendVarintField(b, 1, uint64(c.adUserData))
	b = appendVarintField(b, 2, uint64(c.adPersonalization))
	return appendVarintField(b, 3, uint64(c.analyticsStorage))
}

func (b *builder) checkConsent() consentInfo {
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
	r := b.r
	return consentInfo{
		adUserData:        status("consent.adUserData", r.adUserData),
		adPersonalization: status("consent.adPersonalization", r.adPersonalization),
		analyticsStorage:  status("consent.analyticsStorage", r.analytics),
	}
}

func (b *builder) checkLocation() {
	if c := b.r.countryID; c != "" && !isCountryCode(c) {
		b.vs.add(-1, "userLocation.countryId", apierror.ValueInvalid, "countryId must be an ISO 3166-1 alpha-2 code")
	}
}

// buildEvent validates events[i] and works out what its stored event
// holds besides what the batch shares. Violations go to b.vs.
func (b *builder) buildEvent(i int, e *wireEvent, d *derived) {
	if code, desc := eventNameProblem(e.name); code != "" {
		b.vs.add(i, eventPath(i)+".name", code, desc)
	}
	if id := e.id; id != "" {
		if !isEventID(id) {
			b.vs.add(i, eventPath(i)+".eventId", apierror.ValueInvalid,
				"eventId must be at most 64 characters of letters, digits, '.', '_', ':' and '-'")
		} else if first := b.firstWithID(i, id); first >= 0 {
			b.vs.add(i, eventPath(i)+".eventId", apierror.NameDuplicated,
				"eventId "+strconv.Quote(id)+" is also used by events["+strconv.Itoa(first)+"]")
		}
	}
	t := b.reqTime
	if e.ts != 0 {
		t = time.UnixMicro(e.ts)
		if !b.inWindow(t) {
			b.vs.add(i, eventPath(i)+".timestampMicros", apierror.ValueOutOfBounds, b.windowDesc())
		}
	} else if b.reqTimeBad && !b.reqTimeFlag {
		b.reqTimeFlag = true
		b.vs.add(-1, "timestampMicros", apierror.ValueOutOfBounds, b.windowDesc())
	}
	d.sec, d.nanos = t.Unix(), int32(t.Nanosecond())
	e.key = b.set.isKeyEvent(e.name)
	b.buildParams(i, e, d)
}

// firstWithID returns the first event before i with the valid id id, or
// -1 (events are checked in order). Small batches scan the earlier ids,
// which costs less than a map.
func (b *builder) firstWithID(i int, id string) int {
	if len(b.r.events) <= 32 {
		for j := range i {
			if b.r.events[j].id == id {
				return j
			}
		}
		return -1
	}
	if b.ids == nil {
		b.ids = make(map[string]int, len(b.r.events))
	}
	if first, dup := b.ids[id]; dup {
		return first
	}
	b.ids[id] = i
	return -1
}

func (b *builder) windowDesc() string {
	return "event time must be at most " + b.lim.MaxPast.String() + " in the past and " +
		b.lim.MaxFuture.String() + " in the future"
}

// eventParams holds what buildParams reads from the params besides the
// typed map.
type eventParams struct {
	gaSessionID, sessionID   int64
	source, medium, campaign string
	gclid                    bool
	screenName, fbScreen     string
}

func (b *builder) buildParams(i int, e *wireEvent, d *derived) {
	if len(e.params) > b.lim.MaxParams {
		b.vs.add(i, eventPath(i)+".params", apierror.ExceededMaxEntities,
			"at most "+strconv.Itoa(b.lim.MaxParams)+" parameters are allowed per event, got "+strconv.Itoa(len(e.params)))
	}
	var p eventParams
	var currency string // the currency param, when valid
	amount := false     // a numeric value param or an item's price
	bad := func(name, code, desc string) {
		b.vs.add(i, eventPath(i)+".params."+name, code, desc)
	}
	for k := range e.params {
		prm := &e.params[k]
		name, v := prm.name, prm.val
		if code, desc := paramNameProblem(name, false); code != "" {
			bad(name, code, desc)
			continue
		}
		switch name {
		case pPageLocation, pPageReferrer, pPageTitle:
			if v.kind != kindString {
				bad(name, apierror.ValueInvalid, name+" must be a string")
				continue
			}
			max := maxURLParamLen
			if name == pPageTitle {
				max = maxTitleLen
			}
			if code, desc := stringProblem(v.str, max); code != "" {
				bad(name, code, desc)
				continue
			}
			switch name {
			case pPageLocation:
				d.location = v.str
			case pPageReferrer:
				d.referrer = v.str
			default:
				d.title = v.str
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
				d.sessionNumber = n
			}
		case pEngagementTime:
			n, ok := intParam(v)
			if !ok || n < 0 {
				bad(name, apierror.ValueInvalid, name+" must be a non-negative integer")
				continue
			}
			d.engaged = n
		case pItems:
			if v.kind != kindList {
				bad(name, apierror.ValueInvalid, "items must be a list of item objects")
				continue
			}
			if b.checkItems(i, e) {
				amount = true
			}
		case pCurrency:
			if v.kind != kindString || !isCurrencyCode(v.str) {
				bad(name, apierror.ValueInvalid, "currency must be an ISO 4217 code: three letters, e.g. USD")
				continue
			}
			currency = strings.ToUpper(v.str) // allocates for lower case only
			fallthrough
		default:
			if code, desc := scalarProblem(v, maxParamValueLen); code != "" {
				bad(name, code, desc)
				continue
			}
			prm.keep = true
			d.kept++
			if v.kind == kindNumber && name == pValue {
				amount = true
			} else if v.kind == kindString {
				switch name {
				case "source":
					p.source = v.str
				case "medium":
					p.medium = v.str
				case "campaign":
					p.campaign = v.str
				case "gclid":
					p.gclid = v.str != ""
				case "screen_name":
					p.screenName = v.str
				case "firebase_screen":
					p.fbScreen = v.str
				}
			}
		}
	}

	d.sessionID = p.gaSessionID
	if d.sessionID == 0 {
		d.sessionID = p.sessionID
	}
	if amount {
		rate, ok := b.set.rate(currency)
		if !ok {
			bad(pCurrency, apierror.ValueInvalid, "property "+b.pid+" has no rate for "+currency)
		}
		e.rate = rate
	}

	// Each URL is parsed once and used for validation, path and source.
	var loc, ref *url.URL
	if d.location != "" {
		if loc = parseHTTPURL(d.location); loc == nil {
			bad(pPageLocation, apierror.ValueInvalid, "page_location must be an absolute http(s) URL")
		}
	}
	if d.referrer != "" {
		if ref = parseHTTPURL(d.referrer); ref == nil {
			bad(pPageReferrer, apierror.ValueInvalid, "page_referrer must be an absolute http(s) URL")
		}
	}
	switch {
	case loc != nil:
		d.path = loc.EscapedPath()
		if d.path == "" {
			d.path = "/"
		}
	case e.name == "screen_view":
		d.path = p.screenName
		if d.path == "" {
			d.path = p.fbScreen
		}
	}
	d.source, d.medium, d.campaign = trafficSource(loc, ref, &p)
}

// checkItems validates the items of events[i] (its items param is a list)
// and sets their typed fields; it reports whether an item has a price.
func (b *builder) checkItems(i int, e *wireEvent) (priced bool) {
	// Paths and descriptions are built for violations only.
	path := func() string { return eventPath(i) + ".params." + pItems }
	if e.itemCount > maxItems {
		b.vs.add(i, path(), apierror.ExceededMaxEntities,
			"at most "+strconv.Itoa(maxItems)+" items are allowed per event, got "+strconv.Itoa(e.itemCount))
		return false
	}
	for k := range e.items {
		it := &e.items[k]
		at := func() string { return path() + "[" + strconv.Itoa(k) + "]" }
		if it.kind != kindStruct {
			b.vs.add(i, at(), apierror.ValueInvalid, "an item must be an object")
			continue
		}
		it.quantity = 1
		badName := false
		for _, f := range it.fields {
			v := f.val
			switch f.name {
			case iID, iName, iBrand, iCategory, iVariant:
				code, desc := apierror.ValueInvalid, ""
				switch {
				case v.kind != kindString:
					desc = f.name + " must be a string"
				case f.name == iID: // an id: no control characters (idProblem)
					code, desc = idProblem(v.str, maxParamValueLen)
				default: // free text, cleaned at projection
					code, desc = stringProblem(v.str, maxParamValueLen)
				}
				if code != "" {
					b.vs.add(i, at()+"."+f.name, code, desc)
					badName = badName || f.name == iID || f.name == iName
					continue
				}
				switch f.name {
				case iID:
					it.id = v.str
				case iName:
					it.name = v.str
				case iBrand:
					it.brand = v.str
				case iCategory:
					it.category = v.str
				default:
					it.variant = v.str
				}
			case iPrice:
				if v.kind != kindNumber || math.IsNaN(v.num) || math.IsInf(v.num, 0) {
					b.vs.add(i, at()+"."+f.name, apierror.ValueInvalid, "price must be a finite number")
					continue
				}
				it.price = v.num
				priced = true
			case iQuantity:
				n, ok := int64(0), false
				if v.kind == kindNumber {
					n, ok = asInt64(v.num)
				}
				if !ok || n < 1 {
					b.vs.add(i, at()+"."+f.name, apierror.ValueInvalid, "quantity must be an integer of at least 1")
					continue
				}
				it.quantity = n
			default: // not stored, but held to the rules of a parameter's value
				if code, desc := scalarProblem(v, maxParamValueLen); code != "" {
					b.vs.add(i, at()+"."+f.name, code, desc)
				}
			}
		}
		if it.id == "" && it.name == "" && !badName {
			b.vs.add(i, at(), apierror.ValueRequired, "an item needs an item_id or an item_name")
		}
	}
	return priced
}

// item size and encoding, as an event.v1.Item.
func (it *wireItem) size() int {
	n := stringFieldSize(1, it.id) + stringFieldSize(2, it.name) + stringFieldSize(3, it.brand) +
		stringFieldSize(4, it.category) + stringFieldSize(5, it.variant) + varintFieldSize(7, uint64(it.quantity))
	if math.Float64bits(it.price) != 0 {
		n += 1 + 8
	}
	return n
}

func (it *wireItem) append(b []byte) []byte {
	b = appendString(b, 1, it.id)
	b = appendString(b, 2, it.name)
	b = appendString(b, 3, it.brand)
	b = appendString(b, 4, it.category)
	b = appendString(b, 5, it.variant)
	if math.Float64bits(it.price) != 0 {
		b = protowire.AppendTag(b, 6, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, math.Float64bits(it.price))
	}
	return appendVarintField(b, 7, uint64(it.quantity))
}

// appendEvent appends the fields of an event of its own: all but what
// every event of the batch shares.
func appendEvent(b []byte, e *wireEvent, d *derived, id string, set *Settings) []byte {
	b = appendString(b, 1, id)
	b = appendVarintField(b, 5, uint64(d.sessionID))
	b = appendVarintField(b, 6, uint64(d.sessionNumber))
	b = appendString(b, 7, e.name)
	b = appendTimestamp(b, 8, d.sec, d.nanos)
	if d.kept > 0 {
		for _, p := range e.params {
			if p.keep {
				b = appendEntry(b, 10, p.name, p.val)
			}
		}
	}
	if d.location != "" || d.referrer != "" || d.title != "" || d.path != "" {
		size := stringFieldSize(1, d.location) + stringFieldSize(2, d.path) + stringFieldSize(3, d.title) + stringFieldSize(4, d.referrer)
		b = protowire.AppendTag(b, 11, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(size))
		b = appendString(b, 1, d.location)
		b = appendString(b, 2, d.path)
		b = appendString(b, 3, d.title)
		b = appendString(b, 4, d.referrer)
	}
	size := stringFieldSize(1, d.source) + stringFieldSize(2, d.medium) + stringFieldSize(3, d.campaign)
	b = protowire.AppendTag(b, 12, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(size))
	b = appendString(b, 1, d.source)
	b = appendString(b, 2, d.medium)
	b = appendString(b, 3, d.campaign)
	b = appendVarintField(b, 18, uint64(d.engaged))
	if len(e.items) > 0 {
		for k := range e.items {
			it := &e.items[k]
			b = appendMessage(b, 19, it.size(), it.append)
		}
	}
	if e.key {
		b = appendVarintField(b, 22, 1)
	}
	if e.rate != 0 {
		b = protowire.AppendTag(b, 23, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, math.Float64bits(e.rate))
	}
	if d.kept > 0 && (len(set.EventDimensions) > 0 || len(set.EventMetrics) > 0) {
		for _, p := range e.params {
			if !p.keep {
				continue
			}
			if slices.Contains(set.EventDimensions, p.name) {
				b = appendDimension(b, customEventPrefix, p.name, p.val)
			}
			if p.val.kind == kindNumber && slices.Contains(set.EventMetrics, p.name) {
				b = appendMetric(b, customEventPrefix, p.name, p.val.num)
			}
		}
	}
	return b
}

// Protobuf encoding helpers; proto3 fields at their zero value are left
// out, as proto.Marshal leaves them out.

func stringFieldSize(num protowire.Number, s string) int {
	if s == "" {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(len(s))
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func varintFieldSize(num protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeVarint(v)
}

func appendVarintField(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// appendMessage appends a message field of the given size, whose content
// add appends.
func appendMessage(b []byte, num protowire.Number, size int, add func([]byte) []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(size))
	return add(b)
}

// appendTimestamp appends a google.protobuf.Timestamp field (present even
// when zero).
func appendTimestamp(b []byte, num protowire.Number, sec int64, nanos int32) []byte {
	size := varintFieldSize(1, uint64(sec)) + varintFieldSize(2, uint64(nanos))
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(size))
	b = appendVarintField(b, 1, uint64(sec))
	return appendVarintField(b, 2, uint64(nanos))
}

// valueSize is the size of a validated scalar as an event.v1.Value: a
// oneof, so its field is written even when zero.
func valueSize(v scalar) int {
	switch v.kind {
	case kindString:
		return 1 + protowire.SizeBytes(len(v.str))
	case kindNumber:
		if n, ok := asInt64(v.num); ok {
			return 1 + protowire.SizeVarint(uint64(n))
		}
		return 1 + 8
	default: // kindBool
		return 2
	}
}

func appendValue(b []byte, v scalar) []byte {
	switch v.kind {
	case kindString:
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		return protowire.AppendString(b, v.str)
	case kindNumber:
		if n, ok := asInt64(v.num); ok {
			b = protowire.AppendTag(b, 2, protowire.VarintType)
			return protowire.AppendVarint(b, uint64(n))
		}
		b = protowire.AppendTag(b, 3, protowire.Fixed64Type)
		return protowire.AppendFixed64(b, math.Float64bits(v.num))
	default:
		b = protowire.AppendTag(b, 4, protowire.VarintType)
		return protowire.AppendVarint(b, protowire.EncodeBool(v.flag))
	}
}

// appendEntry appends a map<string, event.v1.Value> entry.
func appendEntry(b []byte, num protowire.Number, name string, v scalar) []byte {
	vs := valueSize(v)
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(1+protowire.SizeBytes(len(name))+1+protowire.SizeBytes(vs)))
	b = protowire.AppendTag(b, mapKey, protowire.BytesType)
	b = protowire.AppendString(b, name)
	b = protowire.AppendTag(b, mapValue, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(vs))
	return appendValue(b, v)
}

// eventIDs returns n random 128-bit ids as 32 lowercase hex characters
// each, from one read of crypto/rand.
func eventIDs(n int) string {
	raw := make([]byte, 16*n)
	_, _ = rand.Read(raw) // never fails (the runtime aborts instead)
	buf := make([]byte, 32*n)
	hex.Encode(buf, raw)
	return string(buf)
}
