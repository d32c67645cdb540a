// Package collect validates Measurement-Protocol-shaped batches and turns
// them into typed, enriched events for the event log.
package collect

import (
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/mileusna/useragent"
	"github.com/phuslu/iploc"

	"github.com/sextant-analytics/sextant/pkg/geoip"
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
	Settings   Settings   // the property's, stamped on its events
	// MaxPast, when longer than Limits.MaxPast, is how old an event time
	// the property takes (Config.PastAllowances).
	MaxPast time.Duration
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
	pItems           = "items"
)

// Parameters with rules of their own that stay in params.
const (
	pCurrency = "currency"
	pValue    = "value"
)

// isPromotedParam reports the params that become fields of the event.
func isPromotedParam(name string) bool {
	switch name {
	case pPageLocation, pPageReferrer, pPageTitle, pGASessionID, pSessionID, pGASessionNumber, pEngagementTime, pItems:
		return true
	}
	return false
}

// maxSourceLen bounds traffic-source strings taken from URLs.
const maxSourceLen = 100

// parseHTTPURL parses an absolute http or https URL with a host, or
// returns nil.
func parseHTTPURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return nil
	}
	return u
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
	screenResolution, model, brand, platform                   string
}

// agentCache remembers what parsing a User-Agent gave: most batches come
// from a few browser builds, and parsing one costs microseconds. It holds
// at most max strings and is emptied when full.
type agentCache struct {
	max int
	mu  sync.Mutex
	m   map[string]deviceInfo
}

// device parses ua (the body's user_agent or the header), from the cache
// when it can.
func (c *agentCache) device(ua string) deviceInfo {
	if ua == "" {
		return deviceInfo{}
	}
	c.mu.Lock()
	d, ok := c.m[ua]
	c.mu.Unlock()
	if ok {
		return d
	}
	d = parseAgent(ua)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= c.max {
		c.m = make(map[string]deviceInfo)
	}
	c.m[strings.Clone(ua)] = d // ua may be a substring of a whole batch
	c.mu.Unlock()
	return d
}

func parseAgent(s string) deviceInfo {
	var d deviceInfo
	ua := useragent.Parse(validUTF8(s))
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
	return d
}

// with applies the request's device fields on top of what the User-Agent
// says.
func (d deviceInfo) with(rd wireDevice) deviceInfo {
	if rd.category != "" {
		d.category = strings.ToLower(rd.category)
	}
	if rd.browser != "" {
		d.browser = rd.browser
	}
	if rd.browserVersion != "" {
		d.browserVersion = rd.browserVersion
	}
	if rd.os != "" {
		d.os = rd.os
	}
	if rd.osVersion != "" {
		d.osVersion = rd.osVersion
	}
	d.language = rd.language
	d.screenResolution, d.model, d.brand = rd.screenResolution, rd.model, rd.brand
	return d
}

// platformOf is GA4's platform of a request: web for a web client, else
// the app's system when it is Android or iOS.
func platformOf(web bool, os string) string {
	switch {
	case web:
		return "web"
	case strings.HasPrefix(os, "Android"):
		return "Android"
	case strings.HasPrefix(os, "iOS"), strings.HasPrefix(os, "iPadOS"):
		return "iOS"
	}
	return ""
}

// size and append encode an event.v1.Device.
func (d deviceInfo) size() int {
	return stringFieldSize(1, d.category) + stringFieldSize(2, d.browser) + stringFieldSize(3, d.browserVersion) +
		stringFieldSize(4, d.os) + stringFieldSize(5, d.osVersion) + stringFieldSize(6, d.language) +
		stringFieldSize(7, d.screenResolution) + stringFieldSize(8, d.model) + stringFieldSize(9, d.brand) + stringFieldSize(10, d.platform)
}

func (d deviceInfo) append(b []byte) []byte {
	b = appendString(b, 1, d.category)
	b = appendString(b, 2, d.browser)
	b = appendString(b, 3, d.browserVersion)
	b = appendString(b, 4, d.os)
	b = appendString(b, 5, d.osVersion)
	b = appendString(b, 6, d.language)
	b = appendString(b, 7, d.screenResolution)
	b = appendString(b, 8, d.model)
	b = appendString(b, 9, d.brand)
	return appendString(b, 10, d.platform)
}

// Locator answers what an IP database knows of an address (*geoip.DB and
// *geoip.Current do). Collect looks addresses up and keeps none of them.
type Locator interface {
	Lookup(netip.Addr) geoip.Location
}

// location is an event's place: its country (ISO 3166-1 alpha-2), region
// and city.
type location struct {
	country, region, city string
}

// locate picks a batch's place. The country is the trusted header's, then
// userLocation.countryId, then the address's (ipOverride when it parses,
// else the client's): geo's answer, else the embedded country table. The
// city and region are userLocation's when it gives either, else geo's
// when its country is the one picked (a header or countryId naming
// another country leaves them unknown). geo may be nil: countries only.
func locate(geo Locator, meta Meta, countryID, city, regionID, ipOverride string) location {
	var l location
	l.country = geoip.Country(meta.Country)
	if l.country == "" {
		l.country = geoip.Country(countryID)
	}
	given := city != "" || regionID != ""
	if given {
		l.city, l.region = clip(city), normRegion(regionID)
	}
	if l.country != "" && (given || geo == nil) {
		return l
	}
	ip := meta.ClientIP
	if ipOverride != "" {
		if a, err := netip.ParseAddr(ipOverride); err == nil {
			ip = a
		}
	}
	if !ip.IsValid() {
		return l
	}
	ip = ip.Unmap()
	var g geoip.Location
	if geo != nil {
		g = geo.Lookup(ip)
	}
	if l.country == "" {
		l.country = g.Country
		if l.country == "" {
			l.country = geoip.Country(iploc.IPCountry(ip))
		}
	}
	if !given && g.Country != "" && g.Country == l.country {
		l.city, l.region = clip(validUTF8(g.City)), clip(validUTF8(g.Region))
	}
	return l
}

// normRegion upper-cases an ISO 3166-2 code ("US-CA", "FR-75C", "gb-eng");
// anything else becomes "". Sextant has no table of subdivision names, so
// a region given by code is stored as the code.
func normRegion(s string) string {
	cc, sub, ok := strings.Cut(s, "-")
	if !ok || !isCountryCode(cc) || len(sub) < 1 || len(sub) > 3 {
		return ""
	}
	for i := 0; i < len(sub); i++ {
		if c := sub[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return ""
		}
	}
	return strings.ToUpper(s)
}

// appendLocation encodes a batch's place into the fields its events share
// (event.v1.Event's country, city and region).
func (e *Encoder) appendLocation(b []byte, meta Meta, r *wireRequest) []byte {
	l := locate(e.geo, meta, r.countryID, r.city, r.regionID, r.ipOverride)
	b = appendString(b, 14, l.country)
	b = appendString(b, 20, l.city)
	return appendString(b, 21, l.region)
}
