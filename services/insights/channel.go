package insights

import (
	"regexp"
	"strings"
)

// GA4's default channel group, derived at read time from a session's (or
// a user's first) source, medium and campaign, by GA4's published rules
// ("[GA4] Default channel group", Analytics Help), in their order: the
// first channel whose rule matches. The site lists are the best-known
// entries of GA4's category lists (search, social, video, shopping);
// GA4's own lists are longer.

// Channel group names, as GA4 reports them.
const (
	chDirect         = "Direct"
	chCrossNetwork   = "Cross-network"
	chPaidShopping   = "Paid Shopping"
	chPaidSearch     = "Paid Search"
	chPaidSocial     = "Paid Social"
	chPaidVideo      = "Paid Video"
	chDisplay        = "Display"
	chPaidOther      = "Paid Other"
	chOrganicShop    = "Organic Shopping"
	chOrganicSocial  = "Organic Social"
	chOrganicVideo   = "Organic Video"
	chOrganicSearch  = "Organic Search"
	chReferral       = "Referral"
	chEmail          = "Email"
	chAffiliates     = "Affiliates"
	chAudio          = "Audio"
	chSMS            = "SMS"
	chMobilePush     = "Mobile Push Notifications"
	chUnassigned     = "Unassigned"
	platformGoogle   = "Google Ads"
	platformManual   = "Manual"
	platformNotKnown = notSet
)

var (
	paidMedium     = regexp.MustCompile(`^(.*cp.*|ppc|retargeting|paid.*)$`)
	shopCampaign   = regexp.MustCompile(`^(.*(([^a-df-z]|^)shop|shopping).*)$`)
	videoMedium    = regexp.MustCompile(`^(.*video.*)$`)
	displayMediums = set("display", "banner", "expandable", "interstitial", "cpm")
	socialMediums  = set("social", "social-network", "social-media", "sm", "social network", "social media")
	referralMeds   = set("referral", "app", "link")

	searchSites = set("google", "bing", "yahoo", "baidu", "yandex", "duckduckgo", "ecosia", "naver", "seznam", "qwant",
		"ask", "aol", "startpage", "brave", "so.com", "sogou", "daum", "msn", "search.yahoo.com", "m.baidu.com")
	socialSites = set("facebook", "facebook.com", "m.facebook.com", "l.facebook.com", "fb", "instagram", "instagram.com",
		"l.instagram.com", "linkedin", "linkedin.com", "lnkd.in", "twitter", "twitter.com", "t.co", "x.com", "pinterest",
		"pinterest.com", "reddit", "reddit.com", "tiktok", "tiktok.com", "snapchat", "snapchat.com", "threads.net",
		"mastodon.social", "bsky.app", "tumblr.com", "vk.com", "quora.com", "discord.com", "whatsapp.com", "telegram.org")
	videoSites = set("youtube", "youtube.com", "m.youtube.com", "youtu.be", "vimeo", "vimeo.com", "twitch", "twitch.tv",
		"dailymotion.com", "netflix.com", "tiktok")
	shoppingSites = set("amazon", "amazon.com", "ebay", "ebay.com", "etsy", "etsy.com", "shopify", "shopify.com",
		"walmart", "walmart.com", "aliexpress.com", "google shopping", "shopping.google.com", "idealo.de", "zalando.com")
)

func set(vals ...string) map[string]bool {
	m := make(map[string]bool, len(vals))
	for _, v := range vals {
		m[v] = true
	}
	return m
}

// siteIn reports whether source names a site of the list: itself, or
// without "www." and the top-level domain ("google.co.uk" → "google").
func siteIn(list map[string]bool, source string) bool {
	if list[source] {
		return true
	}
	host := strings.TrimPrefix(source, "www.")
	if list[host] {
		return true
	}
	if name, _, ok := strings.Cut(host, "."); ok && list[name] {
		return true
	}
	return false
}

// channelGroup is GA4's default channel group of a source, medium and
// campaign (as collect attributes them: lower-case source and medium).
func channelGroup(source, medium, campaign string) string {
	src, med := strings.ToLower(source), strings.ToLower(medium)
	camp := strings.ToLower(campaign)
	paid := paidMedium.MatchString(med)
	switch {
	case src == "(direct)" && (med == "(none)" || med == notSet || med == ""):
		return chDirect
	case strings.Contains(camp, "cross-network"):
		return chCrossNetwork
	case (siteIn(shoppingSites, src) || shopCampaign.MatchString(camp)) && paid:
		return chPaidShopping
	case siteIn(searchSites, src) && paid:
		return chPaidSearch
	case siteIn(socialSites, src) && paid:
		return chPaidSocial
	case siteIn(videoSites, src) && paid:
		return chPaidVideo
	case displayMediums[med]:
		return chDisplay
	case paid:
		return chPaidOther
	case siteIn(shoppingSites, src) || shopCampaign.MatchString(camp):
		return chOrganicShop
	case siteIn(socialSites, src) || socialMediums[med]:
		return chOrganicSocial
	case siteIn(videoSites, src) || videoMedium.MatchString(med):
		return chOrganicVideo
	case siteIn(searchSites, src) || med == "organic":
		return chOrganicSearch
	case referralMeds[med]:
		return chReferral
	case isEmail(src) || isEmail(med):
		return chEmail
	case med == "affiliate":
		return chAffiliates
	case med == "audio":
		return chAudio
	case src == "sms" || med == "sms":
		return chSMS
	case strings.HasSuffix(med, "push") || strings.Contains(med, "mobile") || strings.Contains(med, "notification") || src == "firebase":
		return chMobilePush
	}
	return chUnassigned
}

func isEmail(s string) bool {
	for _, w := range []string{"email", "e-mail", "e_mail", "e mail"} {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// sourcePlatform is GA4's sessionSourcePlatform: "Google Ads" for
// auto-tagged Google Ads traffic (collect attributes a gclid to
// google / cpc), "Manual" for other tagged or attributed traffic, "(not
// set)" for direct, organic and referral traffic, which no platform
// brought.
func sourcePlatform(source, medium, campaign string) string {
	switch {
	case source == "" || source == "(direct)":
		return platformNotKnown
	case source == "google" && medium == "cpc":
		return platformGoogle
	case campaign == "(organic)" || campaign == "(referral)" || medium == "organic" || medium == "referral":
		return platformNotKnown
	}
	return platformManual
}
