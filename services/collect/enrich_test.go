package collect

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventv1 "github.com/sextant-analytics/sextant/gen/sextant/event/v1"
)

func sv(s string) *eventv1.Value {
	return &eventv1.Value{Kind: &eventv1.Value_StringValue{StringValue: s}}
}
func iv(n int64) *eventv1.Value { return &eventv1.Value{Kind: &eventv1.Value_IntValue{IntValue: n}} }
func dv(f float64) *eventv1.Value {
	return &eventv1.Value{Kind: &eventv1.Value_DoubleValue{DoubleValue: f}}
}
func bv(b bool) *eventv1.Value { return &eventv1.Value{Kind: &eventv1.Value_BoolValue{BoolValue: b}} }

// build runs BuildEvents on JSON and fails on rejection.
func build(t *testing.T, js string, meta Meta) []*eventv1.Event {
	t.Helper()
	req := parseReq(t, js)
	evs, err := buildEvents(req, meta, DefaultLimits())
	if err != nil {
		t.Fatalf("rejected: %v", err)
	}
	checkInvariants(t, req, meta, DefaultLimits(), evs, nil)
	return evs
}

func TestBuildEventsFullPageView(t *testing.T) {
	meta := testMeta()
	meta.UserAgent = uaIPhoneSafari
	meta.ClientIP = mustAddr("8.8.8.8")
	evTime := testNow.Add(-time.Minute)
	evs := build(t, fmt.Sprintf(`{
		"clientId": "123.456",
		"userId": "u-1",
		"userProperties": {"plan": {"value": "pro"}, "seats": {"value": 3}},
		"consent": {"adUserData": "GRANTED", "adPersonalization": "denied"},
		"device": {"language": "de-CH"},
		"events": [{
			"name": "page_view",
			"eventId": "ev-1",
			"timestampMicros": "%d",
			"params": {
				"page_location": "https://www.example.com/Blog/Post/?utm_source=Newsletter&utm_medium=Email&utm_campaign=Spring_Sale",
				"page_referrer": "https://mail.example.net/inbox",
				"page_title": "Spring post",
				"ga_session_id": "1772366000",
				"ga_session_number": 4,
				"engagement_time_msec": 1200,
				"article_id": 42,
				"score": 0.5,
				"logged_in": true,
				"section": "news"
			}
		}]}`, micros(evTime)), meta)

	want := &eventv1.Event{
		EventId:            "ev-1",
		PropertyId:         "prop-1",
		ClientId:           "123.456",
		UserId:             "u-1",
		SessionId:          1772366000,
		SessionNumber:      4,
		Name:               "page_view",
		EventTime:          timestamppb.New(evTime),
		ReceiveTime:        timestamppb.New(testNow),
		Params:             map[string]*eventv1.Value{"article_id": iv(42), "score": dv(0.5), "logged_in": bv(true), "section": sv("news")},
		Page:               &eventv1.Page{Location: "https://www.example.com/Blog/Post/?utm_source=Newsletter&utm_medium=Email&utm_campaign=Spring_Sale", Path: "/Blog/Post/", Title: "Spring post", Referrer: "https://mail.example.net/inbox"},
		TrafficSource:      &eventv1.TrafficSource{Source: "newsletter", Medium: "email", Campaign: "Spring_Sale"},
		Device:             &eventv1.Device{Category: "mobile", Browser: "Safari", BrowserVersion: "17.4", OperatingSystem: "iOS", OperatingSystemVersion: "17.4", Language: "de-CH", Platform: "web"},
		Country:            "US",
		UserProperties:     map[string]*eventv1.Value{"plan": sv("pro"), "seats": iv(3)},
		Consent:            &eventv1.Consent{AdUserData: eventv1.ConsentStatus_CONSENT_STATUS_GRANTED, AdPersonalization: eventv1.ConsentStatus_CONSENT_STATUS_DENIED},
		SchemaVersion:      1,
		EngagementTimeMsec: 1200,
	}
	if !proto.Equal(evs[0], want) {
		t.Fatalf("got\n%s\nwant\n%s", prototext.Format(evs[0]), prototext.Format(want))
	}
}

func TestBuildEventsIdentityAndTime(t *testing.T) {
	reqTime := testNow.Add(-time.Hour)
	ownTime := testNow.Add(-2 * time.Hour)
	evs := build(t, fmt.Sprintf(`{"appInstanceId":"app-1","timestampMicros":"%d","events":[
		{"name":"a"},
		{"name":"b","timestampMicros":"%d"},
		{"name":"c","eventId":"mine"}]}`, micros(reqTime), micros(ownTime)), testMeta())
	for i, ev := range evs {
		if ev.GetClientId() != "app-1" || ev.GetPropertyId() != "prop-1" || ev.GetSchemaVersion() != 1 {
			t.Errorf("event %d: %v", i, ev)
		}
		if !ev.GetReceiveTime().AsTime().Equal(testNow) {
			t.Errorf("event %d: receive time %v", i, ev.GetReceiveTime().AsTime())
		}
	}
	for i, want := range []time.Time{reqTime, ownTime, reqTime} {
		if got := evs[i].GetEventTime().AsTime(); !got.Equal(want) {
			t.Errorf("event %d: time %v, want %v", i, got, want)
		}
	}
	if !isHex32(evs[0].GetEventId()) || !isHex32(evs[1].GetEventId()) || evs[0].GetEventId() == evs[1].GetEventId() {
		t.Errorf("generated ids %q %q", evs[0].GetEventId(), evs[1].GetEventId())
	}
	if evs[2].GetEventId() != "mine" {
		t.Errorf("client id %q", evs[2].GetEventId())
	}

	// Without any timestamp the event time is meta.Now.
	evs = build(t, `{"clientId":"c","events":[{"name":"a"}]}`, testMeta())
	if !evs[0].GetEventTime().AsTime().Equal(testNow) {
		t.Errorf("default time %v", evs[0].GetEventTime().AsTime())
	}
	// Generated ids differ between calls.
	again := build(t, `{"clientId":"c","events":[{"name":"a"}]}`, testMeta())
	if again[0].GetEventId() == evs[0].GetEventId() {
		t.Errorf("same random id twice: %s", evs[0].GetEventId())
	}
	// A zero meta.Now means now.
	m := testMeta()
	m.Now = time.Time{}
	evs, err := buildEvents(parseReq(t, `{"clientId":"c","events":[{"name":"a"}]}`), m, Limits{})
	if err != nil || time.Since(evs[0].GetEventTime().AsTime()) > time.Minute {
		t.Errorf("zero Now: %v %v", err, evs)
	}
}

func TestBuildEventsSessionAndParams(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		params               string
		session, number, eng int64
		wantParams           map[string]*eventv1.Value
	}{
		{"ga_session_id number", `"ga_session_id":1772366000,"ga_session_number":2`, 1772366000, 2, 0, nil},
		{"ga_session_id string", `"ga_session_id":"1772366000","ga_session_number":"7"`, 1772366000, 7, 0, nil},
		{"MP session_id", `"session_id":"555","engagement_time_msec":"100"`, 555, 0, 100, nil},
		{"ga_session_id wins", `"session_id":555,"ga_session_id":777`, 777, 0, 0, nil},
		{"engagement", `"engagement_time_msec":0,"x":"y"`, 0, 0, 0, map[string]*eventv1.Value{"x": sv("y")}},
		{"typing", `"i":-3,"big":1e19,"f":2.25,"whole_float":4.0,"t":true,"f2":false,"s":"","max":9007199254740993`, 0, 0, 0,
			map[string]*eventv1.Value{"i": iv(-3), "big": dv(1e19), "f": dv(2.25), "whole_float": iv(4), "t": bv(true), "f2": bv(false), "s": sv(""), "max": iv(9007199254740992)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := build(t, `{"clientId":"c","events":[{"name":"user_engagement","params":{`+tc.params+`}}]}`, testMeta())[0]
			if ev.GetSessionId() != tc.session || ev.GetSessionNumber() != tc.number || ev.GetEngagementTimeMsec() != tc.eng {
				t.Errorf("session %d number %d engagement %d, want %d %d %d",
					ev.GetSessionId(), ev.GetSessionNumber(), ev.GetEngagementTimeMsec(), tc.session, tc.number, tc.eng)
			}
			if len(ev.GetParams()) != len(tc.wantParams) {
				t.Fatalf("params %v, want %v", ev.GetParams(), tc.wantParams)
			}
			for k, want := range tc.wantParams {
				if !proto.Equal(ev.GetParams()[k], want) {
					t.Errorf("param %s = %v, want %v", k, ev.GetParams()[k], want)
				}
			}
		})
	}
}

func TestBuildEventsPage(t *testing.T) {
	for _, tc := range []struct {
		name, event, params string
		want                *eventv1.Page
	}{
		{"no page", "a", `"x":1`, nil},
		{"root without slash", "page_view", `"page_location":"https://example.com"`,
			&eventv1.Page{Location: "https://example.com", Path: "/"}},
		{"root with query", "page_view", `"page_location":"https://example.com?x=1"`,
			&eventv1.Page{Location: "https://example.com?x=1", Path: "/"}},
		{"case and trailing slash kept", "page_view", `"page_location":"https://example.com/Docs/Intro/#top"`,
			&eventv1.Page{Location: "https://example.com/Docs/Intro/#top", Path: "/Docs/Intro/"}},
		{"escaped path kept", "page_view", `"page_location":"http://example.com:8080/caf%C3%A9/a%2Fb"`,
			&eventv1.Page{Location: "http://example.com:8080/caf%C3%A9/a%2Fb", Path: "/caf%C3%A9/a%2Fb"}},
		{"title and referrer only", "page_view", `"page_title":"T","page_referrer":"https://ref.example/"`,
			&eventv1.Page{Title: "T", Referrer: "https://ref.example/"}},
		{"screen_view screen_name", "screen_view", `"screen_name":"Settings"`,
			&eventv1.Page{Path: "Settings"}},
		{"screen_view with location", "screen_view", `"screen_name":"Settings","page_location":"https://app.example/s"`,
			&eventv1.Page{Location: "https://app.example/s", Path: "/s"}},
		{"screen_name on other events", "tap", `"screen_name":"Settings"`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := build(t, `{"clientId":"c","events":[{"name":"`+tc.event+`","params":{`+tc.params+`}}]}`, testMeta())[0]
			if !proto.Equal(ev.GetPage(), tc.want) {
				t.Errorf("page %v, want %v", ev.GetPage(), tc.want)
			}
		})
	}
}

func TestBuildEventsTrafficSource(t *testing.T) {
	const page = "https://www.shop.example/p"
	for _, tc := range []struct {
		name, params             string
		source, medium, campaign string
	}{
		{"direct", `"page_location":"` + page + `"`, "(direct)", "(none)", "(direct)"},
		{"no page at all", `"x":1`, "(direct)", "(none)", "(direct)"},
		{"utm full", `"page_location":"` + page + `?utm_source=Google&utm_medium=CPC&utm_campaign=Black_Friday"`, "google", "cpc", "Black_Friday"},
		{"utm escaped", `"page_location":"` + page + `?a=1&utm_source=News+Letter&utm_medium=e%2Dmail&utm_campaign=Caf%C3%A9"`, "news letter", "e-mail", "Café"},
		{"utm source only", `"page_location":"` + page + `?utm_source=partner"`, "partner", "(not set)", "(not set)"},
		{"utm first wins", `"page_location":"` + page + `?utm_source=a&utm_source=b&utm_medium=m"`, "a", "m", "(not set)"},
		{"utm beats referrer and gclid", `"page_location":"` + page + `?gclid=xyz&utm_source=fb&utm_medium=social","page_referrer":"https://www.google.com/"`, "fb", "social", "(not set)"},
		{"gclid", `"page_location":"` + page + `?gclid=EAIaIQ","page_referrer":"https://www.google.com/"`, "google", "cpc", "(not set)"},
		{"empty gclid ignored", `"page_location":"` + page + `?gclid=","page_referrer":"https://other.example/"`, "other.example", "referral", "(referral)"},
		{"gclid param", `"gclid":"abc"`, "google", "cpc", "(not set)"},
		{"MP params", `"source":"Partner","medium":"Affiliate","campaign":"Q3"`, "partner", "affiliate", "Q3"},
		{"MP source only", `"source":"partner"`, "partner", "(not set)", "(not set)"},
		{"MP params beat referrer", `"source":"a","page_referrer":"https://other.example/"`, "a", "(not set)", "(not set)"},
		{"referral", `"page_location":"` + page + `","page_referrer":"https://www.Blog.example:8443/post?x=1"`, "blog.example", "referral", "(referral)"},
		{"referral without page", `"page_referrer":"https://blog.example/"`, "blog.example", "referral", "(referral)"},
		{"google organic", `"page_location":"` + page + `","page_referrer":"https://www.google.com/"`, "google.com", "organic", "(organic)"},
		{"google ccTLD", `"page_location":"` + page + `","page_referrer":"https://www.google.co.uk/"`, "google.co.uk", "organic", "(organic)"},
		{"bing", `"page_referrer":"https://www.bing.com/search?q=x"`, "bing.com", "organic", "(organic)"},
		{"duckduckgo", `"page_referrer":"https://duckduckgo.com/"`, "duckduckgo.com", "organic", "(organic)"},
		{"yahoo subdomain", `"page_referrer":"https://search.yahoo.com/search"`, "search.yahoo.com", "organic", "(organic)"},
		{"yandex", `"page_referrer":"https://yandex.ru/"`, "yandex.ru", "organic", "(organic)"},
		{"baidu", `"page_referrer":"https://www.baidu.com/"`, "baidu.com", "organic", "(organic)"},
		{"ecosia", `"page_referrer":"https://www.ecosia.org/"`, "ecosia.org", "organic", "(organic)"},
		{"not a search engine", `"page_referrer":"https://googleblog.example/"`, "googleblog.example", "referral", "(referral)"},
		{"same host is internal", `"page_location":"` + page + `","page_referrer":"https://www.shop.example/cart"`, "(direct)", "(none)", "(direct)"},
		{"www does not make it external", `"page_location":"` + page + `","page_referrer":"https://SHOP.example/cart"`, "(direct)", "(none)", "(direct)"},
		{"subdomain is external", `"page_location":"` + page + `","page_referrer":"https://blog.shop.example/"`, "blog.shop.example", "referral", "(referral)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := build(t, `{"clientId":"c","events":[{"name":"page_view","params":{`+tc.params+`}}]}`, testMeta())[0]
			ts := ev.GetTrafficSource()
			if ts.GetSource() != tc.source || ts.GetMedium() != tc.medium || ts.GetCampaign() != tc.campaign {
				t.Errorf("got %q / %q / %q, want %q / %q / %q", ts.GetSource(), ts.GetMedium(), ts.GetCampaign(), tc.source, tc.medium, tc.campaign)
			}
		})
	}
}

func TestBuildEventsDevice(t *testing.T) {
	for _, tc := range []struct {
		name, header, js string
		want             *eventv1.Device
	}{
		{"iPhone Safari", uaIPhoneSafari, `{}`,
			&eventv1.Device{Category: "mobile", Browser: "Safari", BrowserVersion: "17.4", OperatingSystem: "iOS", OperatingSystemVersion: "17.4", Platform: "web"}},
		{"iPad Safari", uaIPadSafari, `{}`,
			&eventv1.Device{Category: "tablet", Browser: "Safari", BrowserVersion: "16.6", OperatingSystem: "iOS", OperatingSystemVersion: "16.6", Platform: "web"}},
		{"Android Chrome", uaAndroidChrome, `{}`,
			&eventv1.Device{Category: "mobile", Browser: "Chrome", BrowserVersion: "124.0.6367.82", OperatingSystem: "Android", OperatingSystemVersion: "14", Platform: "web"}},
		{"Windows Chrome", uaWindowsChrome, `{}`,
			&eventv1.Device{Category: "desktop", Browser: "Chrome", BrowserVersion: "124.0.0.0", OperatingSystem: "Windows", OperatingSystemVersion: "10.0", Platform: "web"}},
		{"Googlebot", uaGooglebot, `{}`,
			&eventv1.Device{Category: "bot", Browser: "Googlebot", BrowserVersion: "2.1", Platform: "web"}},
		{"unknown agent", "curl/8.0", `{}`, &eventv1.Device{Browser: "curl", BrowserVersion: "8.0", Platform: "web"}},
		{"unparseable agent", "something odd", `{}`, &eventv1.Device{Platform: "web"}},
		{"no agent", "", `{}`, &eventv1.Device{Platform: "web"}},
		{"request user_agent overrides header", uaWindowsChrome, `{"userAgent":"` + uaAndroidChrome + `"}`,
			&eventv1.Device{Category: "mobile", Browser: "Chrome", BrowserVersion: "124.0.6367.82", OperatingSystem: "Android", OperatingSystemVersion: "14", Platform: "web"}},
		{"device fields override", uaWindowsChrome, `{"device":{"category":"Smart TV","browser":"Tizen","operatingSystem":"Tizen","operatingSystemVersion":"7","language":"fr","model":"X"}}`,
			&eventv1.Device{Category: "smart tv", Browser: "Tizen", BrowserVersion: "124.0.0.0", OperatingSystem: "Tizen", OperatingSystemVersion: "7", Language: "fr", Model: "X", Platform: "web"}},
		{"an app on Android", uaAndroidChrome, `{"appInstanceId":"a","device":{"screenResolution":"1080x2400","model":"Pixel 8","brand":"Google"}}`,
			&eventv1.Device{Category: "mobile", Browser: "Chrome", BrowserVersion: "124.0.6367.82", OperatingSystem: "Android", OperatingSystemVersion: "14",
				ScreenResolution: "1080x2400", Model: "Pixel 8", Brand: "Google", Platform: "Android"}},
		{"an app on iOS", uaIPhoneSafari, `{"appInstanceId":"a"}`,
			&eventv1.Device{Category: "mobile", Browser: "Safari", BrowserVersion: "17.4", OperatingSystem: "iOS", OperatingSystemVersion: "17.4", Platform: "iOS"}},
		{"device without agent", "", `{"device":{"category":"mobile","browserVersion":"1.2","language":"en-US"}}`,
			&eventv1.Device{Category: "mobile", BrowserVersion: "1.2", Language: "en-US", Platform: "web"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			meta := testMeta()
			meta.UserAgent = tc.header
			req := parseReq(t, tc.js)
			if req.AppInstanceId == "" {
				req.ClientId = "c"
			}
			req.Events = parseReq(t, `{"events":[{"name":"a"},{"name":"b"}]}`).Events
			evs, err := buildEvents(req, meta, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range evs {
				if !proto.Equal(ev.GetDevice(), tc.want) {
					t.Errorf("device %v, want %v", ev.GetDevice(), tc.want)
				}
			}
		})
	}
}

func TestBuildEventsCountry(t *testing.T) {
	for _, tc := range []struct {
		name, header, js string
		ip               netip.Addr
		want             string
	}{
		{"trusted header wins", "ch", `{"userLocation":{"countryId":"DE"},"ipOverride":"8.8.8.8"}`, mustAddr("8.8.8.8"), "CH"},
		{"countryId over IP", "", `{"userLocation":{"countryId":"de"}}`, mustAddr("8.8.8.8"), "DE"},
		{"unknown header falls through", "XX", `{"userLocation":{"countryId":"AT"}}`, netip.Addr{}, "AT"},
		{"Tor header falls through", "T1", `{}`, mustAddr("8.8.8.8"), "US"},
		{"client IP lookup", "", `{}`, mustAddr("8.8.8.8"), "US"},
		{"IPv4-mapped client IP", "", `{}`, mustAddr("::ffff:8.8.8.8"), "US"},
		{"IPv6 client IP", "", `{}`, mustAddr("2001:4860:4860::8888"), "US"},
		{"ipOverride over client IP", "", `{"ipOverride":"8.8.8.8"}`, mustAddr("1.1.1.1"), "US"},
		{"unparseable ipOverride ignored", "", `{"ipOverride":"8.8.8"}`, mustAddr("1.1.1.1"), "AU"},
		{"private address", "", `{}`, mustAddr("10.1.2.3"), ""},
		{"loopback", "", `{}`, mustAddr("::1"), ""},
		{"nothing known", "", `{}`, netip.Addr{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			meta := testMeta()
			meta.Country, meta.ClientIP = tc.header, tc.ip
			req := parseReq(t, tc.js)
			req.ClientId = "c"
			req.Events = parseReq(t, `{"events":[{"name":"a","params":{"page_location":"https://x.example/"}}]}`).Events
			evs, err := buildEvents(req, meta, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if got := evs[0].GetCountry(); got != tc.want {
				t.Fatalf("country %q, want %q", got, tc.want)
			}
			// The address never reaches the event, in any encoding.
			for _, enc := range []string{prototext.Format(evs[0]), protojson.Format(evs[0])} {
				for _, ip := range []string{"8.8.8.8", "1.1.1.1", "10.1.2.3", "2001:4860", "8.8.8"} {
					if strings.Contains(enc, ip) {
						t.Fatalf("event contains IP %s:\n%s", ip, enc)
					}
				}
			}
		})
	}
}

func TestBuildEventsConsentAndUserProperties(t *testing.T) {
	evs := build(t, `{"clientId":"c","consent":{"analyticsStorage":"Granted"},
		"userProperties":{"plan":{"value":"pro"},"beta":{"value":true},"ltv":{"value":12.5}},
		"events":[{"name":"a"},{"name":"b"}]}`, testMeta())
	want := &eventv1.Consent{AnalyticsStorage: eventv1.ConsentStatus_CONSENT_STATUS_GRANTED}
	wantUP := map[string]*eventv1.Value{"plan": sv("pro"), "beta": bv(true), "ltv": dv(12.5)}
	for i, ev := range evs {
		if !proto.Equal(ev.GetConsent(), want) {
			t.Errorf("event %d consent %v", i, ev.GetConsent())
		}
		if len(ev.GetUserProperties()) != len(wantUP) {
			t.Fatalf("event %d user properties %v", i, ev.GetUserProperties())
		}
		for k, v := range wantUP {
			if !proto.Equal(ev.GetUserProperties()[k], v) {
				t.Errorf("event %d user property %s = %v", i, k, ev.GetUserProperties()[k])
			}
		}
	}
	if evs[0].GetConsent() == evs[1].GetConsent() || evs[0].GetUserProperties()["plan"] == evs[1].GetUserProperties()["plan"] {
		t.Errorf("events share sub-messages")
	}
	// No consent sent: no consent message.
	evs = build(t, `{"clientId":"c","consent":{},"events":[{"name":"a"}]}`, testMeta())
	if evs[0].GetConsent() != nil || evs[0].GetUserProperties() != nil {
		t.Errorf("consent %v user properties %v", evs[0].GetConsent(), evs[0].GetUserProperties())
	}
}
