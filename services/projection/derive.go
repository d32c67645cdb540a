package projection

import (
	"slices"
	"strconv"
	"strings"

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
	host, path, _ := strings.Cut(rest, "/")
	host = hostOf("x://" + host)
	if path == "" {
		return host + "/"
	}
	return host + "/" + path
}

// languageName is the English name of a language code ("en-us" →
// "English"), as GA4's language dimension shows it; "" when unknown.
func languageName(code string) string {
	if code == "" {
		return ""
	}
	tag, err := language.Parse(code)
	if err != nil {
		return ""
	}
	base, _ := tag.Base()
	return display.English.Languages().Name(base)
}

// hostOf is the host of a URL, lower case, without port or credentials.
func hostOf(u string) string {
	_, rest, ok := strings.Cut(u, "://")
	if !ok {
		return ""
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
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
}

func newDeriver(l Logic) *deriver {
	d := &deriver{rules: l.Rules, layout: l.Layout, sections: l.Layout.Sections(),
		landing: slices.Contains(l.Layout.Dims, catalog.LandingPage) || slices.Contains(l.Layout.Dims, catalog.LandingPagePlusQueryString)}
	index := map[string]int{}
	for i, name := range l.Layout.Dims {
		dim, ok := catalog.Lookup(name)
		x, known := extractors[name]
		if !ok || !known {
			panic("projection: layout dimension " + name + " has no extractor")
		}
		index[name] = i
		d.dims = append(d.dims, x)
		d.maxLen = append(d.maxLen, dim.MaxLen)
	}
	for _, s := range d.sections {
		var p []int
		for _, name := range s.Dims {
			p = append(p, index[name])
		}
		d.project = append(d.project, p)
		d.minute = append(d.minute, s.Grain == block.Minute)
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
		s = ns
		sessions.put(key, s)
	}
	if evTime > s.lastEvent {
		s.lastEvent = evTime
	}
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
		s.engageMs += ev.EngagementTimeMsec
		if !s.engaged && (s.pageViews >= 2 || s.engageMs > 10_000 || engagedFlag(ev)) {
			s.engaged = true
		}
	}
	return s
}

func isPageView(ev *eventv1.Event) bool { return ev.Name == "page_view" || ev.Name == "screen_view" }

// facts derives what the aggregates count of ev in session s.
func (d *deriver) facts(ev *eventv1.Event, s *session, evTime, recv int64) facts {
	isNew := ev.Name == "first_visit" || ev.Name == "first_open"
	userKey := ev.UserId
	if userKey == "" {
		userKey = ev.ClientId
	}
	return facts{
		evTime:   evTime,
		recv:     recv,
		pageView: isPageView(ev),
		isNew:    isNew,
		active:   s.engaged || isNew || ev.EngagementTimeMsec > 0,
		engaged:  s.engaged,
		engageMs: ev.EngagementTimeMsec,
		user:     xxhash.Sum64String(userKey),
		sess:     xxhash.Sum64String(ev.ClientId + "\x1f" + strconv.FormatInt(s.id, 10)),
	}
}

// add counts the event in every section of the builder of its property's
// hour: vals are scratch space for the dimension values.
func (d *deriver) add(b *block.Builder, ev *eventv1.Event, s *session, f *facts, vals []string, key []byte) []byte {
	for i, x := range d.dims {
		vals[i] = analytics.Clean(x(ev, s, &d.rules), d.maxLen[i])
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
		key = key[:0]
		for j, di := range proj {
			if j > 0 {
				key = append(key, block.Sep...)
			}
			key = append(key, vals[di]...)
		}
		countIn(b.AggBytes(i, bucket, key), f)
	}
	return key
}

func countIn(agg *analytics.Aggregate, f *facts) {
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
