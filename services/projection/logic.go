package projection

import (
	"strings"
	"time"

	"github.com/sextant-analytics/sextant/pkg/catalog"
	"github.com/sextant-analytics/sextant/pkg/versions"
)

// Logic is one registered version of a projection's logic. Replaying a
// version rebuilds its read model from the event log in a namespace of its
// own, so versions are compared side by side before one is activated.
type Logic struct {
	Name        string
	Version     string
	Description string
	Rules       Rules
	// Layout is what the version stores: its dimensions and rollups.
	Layout *catalog.Layout
}

// Rules are the tunables of the traffic projection's logic. They are part of
// a projection version: changing them means replaying into a new version.
type Rules struct {
	// SessionTimeout ends a server-side session after this much inactivity
	// (GA4: 30 minutes). Used when the client sends no session id.
	SessionTimeout time.Duration
	// DedupeWindow is how long an event id is remembered, by receive time.
	DedupeWindow time.Duration
	// SessionRetention is how long a session's state is kept after its last
	// event, by receive time, for late events of the same session.
	SessionRetention time.Duration
	// NormalizePaths folds page path spellings (case, trailing slash…).
	NormalizePaths bool
	// ExcludeBots drops events of known bots (device category "bot"),
	// counting them as excluded.
	ExcludeBots bool
}

// DefaultRules are traffic/v1's.
func DefaultRules() Rules {
	return Rules{SessionTimeout: 30 * time.Minute, DedupeWindow: 24 * time.Hour, SessionRetention: 2 * time.Hour}
}

func (r Rules) dedupeSeconds() int64    { return int64(r.DedupeWindow / time.Second) }
func (r Rules) retentionSeconds() int64 { return int64(r.SessionRetention / time.Second) }
func (r Rules) timeoutSeconds() int64   { return int64(r.SessionTimeout / time.Second) }

// Logics are the versions this binary can run.
func Logics() []Logic {
	v1 := DefaultRules()
	v2 := DefaultRules()
	v2.NormalizePaths = true
	v2.ExcludeBots = true
	return []Logic{
		{Name: "traffic", Version: "v1", Rules: v1, Layout: catalog.LayoutOf("traffic", "v1"),
			Description: "traffic: events, page views, users and sessions by time, page, source, device and country"},
		{Name: "traffic", Version: "v2", Rules: v2, Layout: catalog.LayoutOf("traffic", "v2"),
			Description: "traffic v2: page paths normalised (case, trailing slash, duplicate slashes, index pages) and known bots excluded (counted as excluded)"},
		{Name: "traffic", Version: "v3", Rules: v2, Layout: catalog.LayoutOf("traffic", "v3"),
			Description: "traffic v3: v2, and the page's host name (hostName) as a dimension"},
		{Name: "traffic", Version: "v4", Rules: v2, Layout: catalog.LayoutOf("traffic", "v4"),
			Description: "traffic v4: v3, and pageTitle, pageReferrer, fullPageUrl, platform, browserVersion, operatingSystemVersion, deviceModel, mobileDeviceBranding, screenResolution, language, languageCode, linkUrl, fileName, searchTerm, transactionId, landingPage and landingPagePlusQueryString"},
		{Name: "traffic", Version: "v5", Rules: v2, Layout: catalog.LayoutOf("traffic", "v5"),
			Description: "traffic v5: v4, and newVsReturning, firstUserSource/Medium/CampaignName, region, city, ecommerce items (itemId, itemName, itemCategory, itemBrand), custom dimensions and metrics, and per aggregate session time, key events, revenue, ecommerce actions, purchasers and first-time purchasers"},
		{Name: "traffic", Version: "v6", Rules: v2, Layout: catalog.LayoutOf("traffic", "v6"),
			Description: "traffic v6: v5's dimensions and metrics, stored in fewer series (the realtime minute detail of events, countries, technology, sources and new or returning users in one), so that checkpoints write and compaction merges fewer rows"},
	}
}

// FindLogic returns a registered logic.
func FindLogic(logics []Logic, name, version string) (Logic, bool) {
	version = versions.Base(version) // a rebuild runs its version's logic
	for _, l := range logics {
		if l.Name == name && l.Version == version {
			return l, true
		}
	}
	return Logic{}, false
}

// normalizePath folds the spellings of one page into one path: lower case,
// no duplicate or trailing slashes, no index document.
func normalizePath(p string) string {
	if p == "" {
		return p
	}
	p = strings.ToLower(p)
	for strings.Contains(p, "//") {
		p = strings.ReplaceAll(p, "//", "/")
	}
	for _, index := range []string{"/index.html", "/index.htm", "/index.php"} {
		if strings.HasSuffix(p, index) {
			p = p[:len(p)-len(index)+1]
			break
		}
	}
	if len(p) > 1 {
		p = strings.TrimRight(p, "/")
		if p == "" {
			p = "/"
		}
	}
	return p
}
