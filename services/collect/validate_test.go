package collect

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	collectv1 "github.com/sextant-analytics/sextant/gen/sextant/collect/v1"
	"github.com/sextant-analytics/sextant/pkg/apierror"
)

type wantV struct{ field, code string }

const (
	vInvalid  = apierror.ValueInvalid
	vRequired = apierror.ValueRequired
	nInvalid  = apierror.NameInvalid
	nReserved = apierror.NameReserved
	vBounds   = apierror.ValueOutOfBounds
	tooMany   = apierror.ExceededMaxEntities
	nDup      = apierror.NameDuplicated
)

// ev wraps one event object into a valid request.
func ev(event string) string {
	return `{"clientId":"c1","events":[` + event + `]}`
}

// withParam wraps one param into a valid page_view request.
func withParam(name, value string) string {
	return ev(`{"name":"page_view","params":{` + fmt.Sprintf("%q", name) + `:` + value + `}}`)
}

func jsonStr(s string) string { return fmt.Sprintf("%q", s) }

func TestBuildEventsViolations(t *testing.T) {
	r := strings.Repeat
	old := micros(testNow.Add(-73 * time.Hour))
	future := micros(testNow.Add(16 * time.Minute))
	for _, tc := range []struct {
		name string
		js   string
		lim  Limits
		want []wantV
	}{
		// Identity.
		{"no client id", `{"events":[{"name":"page_view"}]}`, Limits{}, []wantV{{"clientId", vRequired}}},
		{"client id too long", `{"clientId":"` + r("c", 257) + `","events":[{"name":"a"}]}`, Limits{}, []wantV{{"clientId", vBounds}}},
		{"app instance id too long", `{"appInstanceId":"` + r("c", 257) + `","events":[{"name":"a"}]}`, Limits{}, []wantV{{"appInstanceId", vBounds}}},
		{"user id too long", `{"clientId":"c","userId":"` + r("u", 257) + `","events":[{"name":"a"}]}`, Limits{}, []wantV{{"userId", vBounds}}},
		// Control characters in ids (C0 with NUL, DEL, C1) are refused, in
		// names too; free-text values keep them (TestBuildEventsAccepts).
		{"client id with NUL", `{"clientId":"c\u0000","events":[{"name":"a"}]}`, Limits{}, []wantV{{"clientId", vInvalid}}},
		{"client id with newline", `{"clientId":"c\n1","events":[{"name":"a"}]}`, Limits{}, []wantV{{"clientId", vInvalid}}},
		{"app instance id with DEL", `{"appInstanceId":"a\u007f","events":[{"name":"a"}]}`, Limits{}, []wantV{{"appInstanceId", vInvalid}}},
		{"user id with C1", `{"clientId":"c","userId":"u\u0085","events":[{"name":"a"}]}`, Limits{}, []wantV{{"userId", vInvalid}}},
		{"event name with NUL", ev(`{"name":"page_view\u0000"}`), Limits{}, []wantV{{"events[0].name", nInvalid}}},
		{"param name with NUL", ev(`{"name":"a","params":{"p\u0000":1}}`), Limits{}, []wantV{{"events[0].params.p\x00", nInvalid}}},
		{"user property name with tab", `{"clientId":"c","userProperties":{"plan\t":{"value":1}},"events":[{"name":"a"}]}`,
			Limits{}, []wantV{{"userProperties.plan\t", nInvalid}}},
		{"item id with NUL", ev(`{"name":"purchase","params":{"items":[{"item_id":"SKU\u0000","item_name":"Shirt"}]}}`),
			Limits{}, []wantV{{"events[0].params.items[0].item_id", vInvalid}}},

		// Events count.
		{"no events", `{"clientId":"c1"}`, Limits{}, []wantV{{"events", vRequired}}},
		{"empty events", `{"clientId":"c1","events":[]}`, Limits{}, []wantV{{"events", vRequired}}},
		{"too many events", `{"clientId":"c1","events":[{"name":"a"},{"name":"b"},{"name":"c"}]}`, Limits{MaxEvents: 2}, []wantV{{"events", tooMany}}},

		// Event names.
		{"empty name", ev(`{"name":""}`), Limits{}, []wantV{{"events[0].name", nInvalid}}},
		{"name starts with digit", ev(`{"name":"1abc"}`), Limits{}, []wantV{{"events[0].name", nInvalid}}},
		{"name with dash", ev(`{"name":"a-b"}`), Limits{}, []wantV{{"events[0].name", nInvalid}}},
		{"name with space", ev(`{"name":"a b"}`), Limits{}, []wantV{{"events[0].name", nInvalid}}},
		{"name non-ascii", ev(`{"name":"caf\u00e9"}`), Limits{}, []wantV{{"events[0].name", nInvalid}}},
		{"name 41 chars", ev(`{"name":"` + r("a", 41) + `"}`), Limits{}, []wantV{{"events[0].name", nInvalid}}},
		{"reserved error", ev(`{"name":"error"}`), Limits{}, []wantV{{"events[0].name", nReserved}}},
		{"reserved ad_click", ev(`{"name":"ad_click"}`), Limits{}, []wantV{{"events[0].name", nReserved}}},
		{"reserved app_remove", ev(`{"name":"app_remove"}`), Limits{}, []wantV{{"events[0].name", nReserved}}},
		{"reserved os_update", ev(`{"name":"os_update"}`), Limits{}, []wantV{{"events[0].name", nReserved}}},
		{"reserved underscore", ev(`{"name":"_x"}`), Limits{}, []wantV{{"events[0].name", nReserved}}},
		{"reserved firebase_", ev(`{"name":"firebase_foo"}`), Limits{}, []wantV{{"events[0].name", nReserved}}},
		{"reserved ga_", ev(`{"name":"ga_foo"}`), Limits{}, []wantV{{"events[0].name", nReserved}}},
		{"reserved google_", ev(`{"name":"google_foo"}`), Limits{}, []wantV{{"events[0].name", nReserved}}},

		// Params: count and names.
		{"too many params", ev(`{"name":"a","params":{"p1":1,"p2":2,"p3":3}}`), Limits{MaxParams: 2}, []wantV{{"events[0].params", tooMany}}},
		{"param name digit", withParam("1x", `1`), Limits{}, []wantV{{"events[0].params.1x", nInvalid}}},
		{"param name empty", withParam("", `1`), Limits{}, []wantV{{"events[0].params.", nInvalid}}},
		{"param name dash", withParam("a-b", `1`), Limits{}, []wantV{{"events[0].params.a-b", nInvalid}}},
		{"param name 41", withParam(r("p", 41), `1`), Limits{}, []wantV{{"events[0].params." + r("p", 41), nInvalid}}},
		{"param _", withParam("_x", `1`), Limits{}, []wantV{{"events[0].params._x", nReserved}}},
		{"param firebase_", withParam("firebase_x", `1`), Limits{}, []wantV{{"events[0].params.firebase_x", nReserved}}},
		{"param google_", withParam("google_x", `1`), Limits{}, []wantV{{"events[0].params.google_x", nReserved}}},
		{"param gtag.", withParam("gtag.x", `1`), Limits{}, []wantV{{"events[0].params.gtag.x", nReserved}}},
		{"param ga_", withParam("ga_x", `1`), Limits{}, []wantV{{"events[0].params.ga_x", nReserved}}},
		{"param ga_session_idx", withParam("ga_session_idx", `1`), Limits{}, []wantV{{"events[0].params.ga_session_idx", nReserved}}},

		// Param values.
		{"null value", withParam("p", `null`), Limits{}, []wantV{{"events[0].params.p", vInvalid}}},
		{"list value", withParam("p", `[1,2]`), Limits{}, []wantV{{"events[0].params.p", vInvalid}}},
		{"struct value", withParam("p", `{"a":1}`), Limits{}, []wantV{{"events[0].params.p", vInvalid}}},
		{"string 101", withParam("p", jsonStr(r("x", 101))), Limits{}, []wantV{{"events[0].params.p", vBounds}}},
		{"multibyte 101", withParam("p", jsonStr(r("é", 101))), Limits{}, []wantV{{"events[0].params.p", vBounds}}},
		{"page_title 301", withParam("page_title", jsonStr(r("x", 301))), Limits{}, []wantV{{"events[0].params.page_title", vBounds}}},
		{"page_title number", withParam("page_title", `3`), Limits{}, []wantV{{"events[0].params.page_title", vInvalid}}},
		{"page_location 1001", withParam("page_location", jsonStr("https://example.com/"+r("x", 981))), Limits{}, []wantV{{"events[0].params.page_location", vBounds}}},
		{"page_location not url", withParam("page_location", `"not a url"`), Limits{}, []wantV{{"events[0].params.page_location", vInvalid}}},
		{"page_location relative", withParam("page_location", `"/path"`), Limits{}, []wantV{{"events[0].params.page_location", vInvalid}}},
		{"page_location ftp", withParam("page_location", `"ftp://example.com/x"`), Limits{}, []wantV{{"events[0].params.page_location", vInvalid}}},
		{"page_location no host", withParam("page_location", `"http://"`), Limits{}, []wantV{{"events[0].params.page_location", vInvalid}}},
		{"page_location bad host", withParam("page_location", `"https://exa mple.com/"`), Limits{}, []wantV{{"events[0].params.page_location", vInvalid}}},
		{"page_location number", withParam("page_location", `5`), Limits{}, []wantV{{"events[0].params.page_location", vInvalid}}},
		{"page_referrer invalid", withParam("page_referrer", `"javascript:alert(1)"`), Limits{}, []wantV{{"events[0].params.page_referrer", vInvalid}}},
		{"page_referrer 1001", withParam("page_referrer", jsonStr("https://example.com/"+r("x", 981))), Limits{}, []wantV{{"events[0].params.page_referrer", vBounds}}},
		{"engagement negative", withParam("engagement_time_msec", `-1`), Limits{}, []wantV{{"events[0].params.engagement_time_msec", vInvalid}}},
		{"engagement fraction", withParam("engagement_time_msec", `1.5`), Limits{}, []wantV{{"events[0].params.engagement_time_msec", vInvalid}}},
		{"engagement string", withParam("engagement_time_msec", `"abc"`), Limits{}, []wantV{{"events[0].params.engagement_time_msec", vInvalid}}},
		{"engagement bool", withParam("engagement_time_msec", `true`), Limits{}, []wantV{{"events[0].params.engagement_time_msec", vInvalid}}},
		{"engagement huge", withParam("engagement_time_msec", `1e30`), Limits{}, []wantV{{"events[0].params.engagement_time_msec", vInvalid}}},
		{"ga_session_id zero", withParam("ga_session_id", `0`), Limits{}, []wantV{{"events[0].params.ga_session_id", vInvalid}}},
		{"ga_session_id negative", withParam("ga_session_id", `-5`), Limits{}, []wantV{{"events[0].params.ga_session_id", vInvalid}}},
		{"ga_session_id fraction", withParam("ga_session_id", `1.5`), Limits{}, []wantV{{"events[0].params.ga_session_id", vInvalid}}},
		{"ga_session_id bad string", withParam("ga_session_id", `"12a"`), Limits{}, []wantV{{"events[0].params.ga_session_id", vInvalid}}},
		{"ga_session_id signed string", withParam("ga_session_id", `"-12"`), Limits{}, []wantV{{"events[0].params.ga_session_id", vInvalid}}},
		{"ga_session_id overflow string", withParam("ga_session_id", `"99999999999999999999"`), Limits{}, []wantV{{"events[0].params.ga_session_id", vInvalid}}},
		{"ga_session_id bool", withParam("ga_session_id", `true`), Limits{}, []wantV{{"events[0].params.ga_session_id", vInvalid}}},
		{"session_id zero string", withParam("session_id", `"0"`), Limits{}, []wantV{{"events[0].params.session_id", vInvalid}}},
		{"ga_session_number zero", withParam("ga_session_number", `0`), Limits{}, []wantV{{"events[0].params.ga_session_number", vInvalid}}},
		{"ga_session_number null", withParam("ga_session_number", `null`), Limits{}, []wantV{{"events[0].params.ga_session_number", vInvalid}}},

		// User properties.
		{"too many user properties", `{"clientId":"c","userProperties":{"a":{"value":1},"b":{"value":2},"c":{"value":3}},"events":[{"name":"a"}]}`,
			Limits{MaxUserProperties: 2}, []wantV{{"userProperties", tooMany}}},
		{"user property name 25", `{"clientId":"c","userProperties":{"` + r("a", 25) + `":{"value":1}},"events":[{"name":"a"}]}`,
			Limits{}, []wantV{{"userProperties." + r("a", 25), nInvalid}}},
		{"user property name chars", `{"clientId":"c","userProperties":{"a.b":{"value":1}},"events":[{"name":"a"}]}`,
			Limits{}, []wantV{{"userProperties.a.b", nInvalid}}},
		{"user property reserved", `{"clientId":"c","userProperties":{"firebase_x":{"value":1},"ga_session_id":{"value":1}},"events":[{"name":"a"}]}`,
			Limits{}, []wantV{{"userProperties.firebase_x", nReserved}, {"userProperties.ga_session_id", nReserved}}},
		{"user property null", `{"clientId":"c","userProperties":{"plan":{"value":null}},"events":[{"name":"a"}]}`,
			Limits{}, []wantV{{"userProperties.plan", vInvalid}}},
		{"user property missing value", `{"clientId":"c","userProperties":{"plan":{}},"events":[{"name":"a"}]}`,
			Limits{}, []wantV{{"userProperties.plan", vRequired}}},
		{"user property list", `{"clientId":"c","userProperties":{"plan":{"value":["a"]}},"events":[{"name":"a"}]}`,
			Limits{}, []wantV{{"userProperties.plan", vInvalid}}},
		{"user property 37", `{"clientId":"c","userProperties":{"plan":{"value":"` + r("p", 37) + `"}},"events":[{"name":"a"}]}`,
			Limits{}, []wantV{{"userProperties.plan", vBounds}}},

		// Time window.
		{"event too old", ev(fmt.Sprintf(`{"name":"a","timestampMicros":"%d"}`, old)), Limits{}, []wantV{{"events[0].timestampMicros", vBounds}}},
		{"event in future", ev(fmt.Sprintf(`{"name":"a","timestampMicros":"%d"}`, future)), Limits{}, []wantV{{"events[0].timestampMicros", vBounds}}},
		{"event negative time", ev(`{"name":"a","timestampMicros":"-1"}`), Limits{}, []wantV{{"events[0].timestampMicros", vBounds}}},
		{"request time too old, used twice", fmt.Sprintf(`{"clientId":"c","timestampMicros":"%d","events":[{"name":"a"},{"name":"b"}]}`, old),
			Limits{}, []wantV{{"timestampMicros", vBounds}}},
		{"custom window", ev(fmt.Sprintf(`{"name":"a","timestampMicros":"%d"}`, micros(testNow.Add(-2*time.Hour)))),
			Limits{MaxPast: time.Hour}, []wantV{{"events[0].timestampMicros", vBounds}}},

		// Event ids.
		{"event id too long", ev(`{"name":"a","eventId":"` + r("e", 65) + `"}`), Limits{}, []wantV{{"events[0].eventId", vInvalid}}},
		{"event id bad char", ev(`{"name":"a","eventId":"a b"}`), Limits{}, []wantV{{"events[0].eventId", vInvalid}}},
		{"event id slash", ev(`{"name":"a","eventId":"a/b"}`), Limits{}, []wantV{{"events[0].eventId", vInvalid}}},
		{"duplicate event ids", `{"clientId":"c","events":[{"name":"a","eventId":"x"},{"name":"a","eventId":"y"},{"name":"a","eventId":"x"},{"name":"a","eventId":"x"}]}`,
			Limits{}, []wantV{{"events[2].eventId", nDup}, {"events[3].eventId", nDup}}},

		// Consent and location.
		{"consent invalid", `{"clientId":"c","consent":{"adUserData":"yes","adPersonalization":"granted","analyticsStorage":"maybe"},"events":[{"name":"a"}]}`,
			Limits{}, []wantV{{"consent.adUserData", vInvalid}, {"consent.analyticsStorage", vInvalid}}},
		{"country 3 letters", `{"clientId":"c","userLocation":{"countryId":"USA"},"events":[{"name":"a"}]}`, Limits{}, []wantV{{"userLocation.countryId", vInvalid}}},
		{"country digits", `{"clientId":"c","userLocation":{"countryId":"1A"},"events":[{"name":"a"}]}`, Limits{}, []wantV{{"userLocation.countryId", vInvalid}}},
		{"country non-ascii", `{"clientId":"c","userLocation":{"countryId":"ÜS"},"events":[{"name":"a"}]}`, Limits{}, []wantV{{"userLocation.countryId", vInvalid}}},

		// Many at once, with paths and in a stable order.
		{"everything together", fmt.Sprintf(`{
			"userId": "%s",
			"timestampMicros": "%d",
			"consent": {"adUserData": "YES"},
			"userLocation": {"countryId": "usa"},
			"userProperties": {"_plan": {"value": "pro"}, "tier": {"value": [1]}},
			"events": [
				{"name": "page_view", "params": {"page_title": "%s", "page_location": "nope", "ga_session_id": 0, "ok": 1}},
				{"name": "error", "eventId": "dup"},
				{"name": "bad-name", "eventId": "dup", "timestampMicros": "%d", "params": {"_p": 1, "x": null, "engagement_time_msec": -3}},
				{"name": "fine", "params": {"page_referrer": "https://example.com/"}}
			]}`, r("u", 300), old, r("t", 301), future),
			Limits{}, []wantV{
				{"clientId", vRequired},
				{"consent.adUserData", vInvalid},
				{"timestampMicros", vBounds},
				{"userId", vBounds},
				{"userLocation.countryId", vInvalid},
				{"userProperties._plan", nReserved},
				{"userProperties.tier", vInvalid},
				{"events[0].params.ga_session_id", vInvalid},
				{"events[0].params.page_location", vInvalid},
				{"events[0].params.page_title", vBounds},
				{"events[1].name", nReserved},
				{"events[2].eventId", nDup},
				{"events[2].name", nInvalid},
				{"events[2].params._p", nReserved},
				{"events[2].params.engagement_time_msec", vInvalid},
				{"events[2].params.x", vInvalid},
				{"events[2].timestampMicros", vBounds},
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := parseReq(t, tc.js)
			evs, err := buildEvents(req, testMeta(), tc.lim)
			if err == nil {
				t.Fatalf("accepted, want %v", tc.want)
			}
			checkInvariants(t, req, testMeta(), tc.lim, evs, err)
			got := asInvalid(t, err)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d violations %+v, want %v", len(got), got, tc.want)
			}
			for i, w := range tc.want {
				if got[i].Field != w.field || got[i].Code != w.code {
					t.Errorf("violation %d = %s %s (%s), want %s %s", i, got[i].Field, got[i].Code, got[i].Description, w.field, w.code)
				}
			}
		})
	}
}

// Requests that are at the edge of a rule and must be accepted.
func TestBuildEventsAccepts(t *testing.T) {
	r := strings.Repeat
	for _, tc := range []struct {
		name string
		js   string
		lim  Limits
	}{
		{"app instance id only", `{"appInstanceId":"a1","events":[{"name":"a"}]}`, Limits{}},
		{"both ids", `{"clientId":"c","appInstanceId":"a1","events":[{"name":"a"}]}`, Limits{}},
		{"control characters in free text", `{"clientId":"c","userProperties":{"plan":{"value":"a\u0000b"}},"events":[{"name":"purchase","params":{"page_title":"T\u0007","note":"x\u007fy",
			"items":[{"item_id":"SKU1","item_name":"Shirt\u0000","item_brand":"\u0085"}]}}]}`, Limits{}},
		{"ids at 256", `{"clientId":"` + r("c", 256) + `","userId":"` + r("u", 256) + `","events":[{"name":"a"}]}`, Limits{}},
		{"max events", `{"clientId":"c","events":[{"name":"a"},{"name":"b"}]}`, Limits{MaxEvents: 2}},
		{"name 40 chars", ev(`{"name":"` + r("a", 40) + `"}`), Limits{}},
		{"name with digits and underscore", ev(`{"name":"Purchase_2"}`), Limits{}},
		{"own tag names", `{"clientId":"c","events":[{"name":"page_view"},{"name":"first_visit"},{"name":"first_open"},{"name":"session_start"},
			{"name":"user_engagement"},{"name":"screen_view"},{"name":"scroll"},{"name":"click"}]}`, Limits{}},
		{"names that only look reserved", ev(`{"name":"errors"}`), Limits{}},
		{"max params", ev(`{"name":"a","params":{"p1":1,"p2":2}}`), Limits{MaxParams: 2}},
		{"param name 40", withParam(r("p", 40), `1`), Limits{}},
		{"ga session params", ev(`{"name":"a","params":{"ga_session_id":1700000000,"ga_session_number":"3"}}`), Limits{}},
		{"string 100", withParam("p", jsonStr(r("x", 100))), Limits{}},
		{"multibyte 100", withParam("p", jsonStr(r("é", 100))), Limits{}},
		{"page_title 300", withParam("page_title", jsonStr(r("x", 300))), Limits{}},
		{"page_location 1000", withParam("page_location", jsonStr("https://example.com/"+r("x", 980))), Limits{}},
		{"empty page_referrer", withParam("page_referrer", `""`), Limits{}},
		{"HTTP upper scheme", withParam("page_location", `"HTTPS://Example.com/A"`), Limits{}},
		{"engagement zero", withParam("engagement_time_msec", `0`), Limits{}},
		{"engagement string", withParam("engagement_time_msec", `"1500"`), Limits{}},
		{"number values", ev(`{"name":"a","params":{"i":1,"f":1.5,"neg":-2,"big":1e300,"b":false,"s":""}}`), Limits{}},
		{"user props at limits", `{"clientId":"c","userProperties":{"` + r("a", 24) + `":{"value":"` + r("v", 36) + `"}},"events":[{"name":"a"}]}`, Limits{}},
		{"consent lower case", `{"clientId":"c","consent":{"adUserData":"granted","adPersonalization":"Denied","analyticsStorage":""},"events":[{"name":"a"}]}`, Limits{}},
		{"country lower", `{"clientId":"c","userLocation":{"countryId":"de"},"events":[{"name":"a"}]}`, Limits{}},
		{"edge of window past", ev(fmt.Sprintf(`{"name":"a","timestampMicros":"%d"}`, micros(testNow.Add(-72*time.Hour)))), Limits{}},
		{"edge of window future", ev(fmt.Sprintf(`{"name":"a","timestampMicros":"%d"}`, micros(testNow.Add(15*time.Minute)))), Limits{}},
		{"old request time not used", fmt.Sprintf(`{"clientId":"c","timestampMicros":"%d","events":[{"name":"a","timestampMicros":"%d"}]}`,
			micros(testNow.Add(-100*time.Hour)), micros(testNow.Add(-time.Hour))), Limits{}},
		{"event id charset", ev(`{"name":"a","eventId":"AZaz09._:-"}`), Limits{}},
		{"event id 64", ev(`{"name":"a","eventId":"` + r("e", 64) + `"}`), Limits{}},
		{"bad ip override ignored", `{"clientId":"c","ipOverride":"not-an-ip","events":[{"name":"a"}]}`, Limits{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := parseReq(t, tc.js)
			evs, err := buildEvents(req, testMeta(), tc.lim)
			if err != nil {
				t.Fatalf("rejected: %v", err)
			}
			checkInvariants(t, req, testMeta(), tc.lim, evs, err)
		})
	}
}

// Values that JSON cannot carry but the proto wire can. Strings that are
// not UTF-8 are written as "¤" and replaced by two invalid bytes in the
// encoding (protobuf's Go encoder refuses them).
func TestBuildEventsNonJSONValues(t *testing.T) {
	base := func() *collectv1.CollectRequest {
		return &collectv1.CollectRequest{ClientId: "c", Events: []*collectv1.Event{{Name: "a", Params: map[string]*structpb.Value{}}}}
	}
	for _, tc := range []struct {
		name string
		mod  func(*collectv1.CollectRequest)
		want []wantV
	}{
		{"NaN", func(r *collectv1.CollectRequest) { r.Events[0].Params["p"] = structpb.NewNumberValue(math.NaN()) },
			[]wantV{{"events[0].params.p", vInvalid}}},
		{"Inf", func(r *collectv1.CollectRequest) { r.Events[0].Params["p"] = structpb.NewNumberValue(math.Inf(-1)) },
			[]wantV{{"events[0].params.p", vInvalid}}},
		{"Inf engagement", func(r *collectv1.CollectRequest) {
			r.Events[0].Params["engagement_time_msec"] = structpb.NewNumberValue(math.Inf(1))
		}, []wantV{{"events[0].params.engagement_time_msec", vInvalid}}},
		{"nil value", func(r *collectv1.CollectRequest) { r.Events[0].Params["p"] = nil },
			[]wantV{{"events[0].params.p", vRequired}}},
		{"empty value", func(r *collectv1.CollectRequest) { r.Events[0].Params["p"] = &structpb.Value{} },
			[]wantV{{"events[0].params.p", vRequired}}},
		{"invalid UTF-8", func(r *collectv1.CollectRequest) { r.Events[0].Params["p"] = structpb.NewStringValue("a¤b") },
			[]wantV{{"events[0].params.p", vInvalid}}},
		{"invalid UTF-8 client id", func(r *collectv1.CollectRequest) { r.ClientId = "¤" },
			[]wantV{{"clientId", vInvalid}}},
		{"invalid UTF-8 device", func(r *collectv1.CollectRequest) { r.Device = &collectv1.Device{Browser: "¤"} },
			[]wantV{{"device.browser", vInvalid}}},
		{"invalid UTF-8 param name", func(r *collectv1.CollectRequest) { r.Events[0].Params["¤"] = structpb.NewBoolValue(true) },
			[]wantV{{"events[0].params.\ufffd", nInvalid}}},
		{"invalid UTF-8 unused device field", func(r *collectv1.CollectRequest) { r.Device = &collectv1.Device{Model: "x¤"} },
			[]wantV{{"device.model", vInvalid}}},
		{"empty event", func(r *collectv1.CollectRequest) { r.Events = append(r.Events, &collectv1.Event{}) },
			[]wantV{{"events[1].name", nInvalid}}},
		{"nil user property", func(r *collectv1.CollectRequest) {
			r.UserProperties = map[string]*collectv1.UserProperty{"plan": nil}
		}, []wantV{{"userProperties.plan", vRequired}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := base()
			tc.mod(req)
			b, err := proto.Marshal(req)
			if err != nil {
				t.Fatal(err)
			}
			b = bytes.ReplaceAll(b, []byte("¤"), []byte{0xff, 0xfe})
			out, err := NewEncoder(Limits{}).Encode(b, testMeta())
			evs := out.Messages
			if err == nil {
				t.Fatalf("accepted")
			}
			got := asInvalid(t, err)
			if evs != nil || len(got) != len(tc.want) {
				t.Fatalf("got %+v, want %v", got, tc.want)
			}
			for i, w := range tc.want {
				if got[i].Field != w.field || got[i].Code != w.code {
					t.Errorf("violation %d = %s %s, want %s %s", i, got[i].Field, got[i].Code, w.field, w.code)
				}
			}
		})
	}

	t.Run("nil request", func(t *testing.T) {
		_, err := buildEvents(nil, testMeta(), Limits{})
		got := asInvalid(t, err)
		if len(got) != 2 || got[0].Field != "clientId" || got[1].Field != "events" {
			t.Fatalf("got %+v", got)
		}
	})
}

func TestDefaultLimits(t *testing.T) {
	d := DefaultLimits()
	if d.MaxEvents != 500 || d.MaxParams != 25 || d.MaxUserProperties != 25 || d.MaxPast != 72*time.Hour || d.MaxFuture != 15*time.Minute {
		t.Fatalf("DefaultLimits() = %+v", d)
	}
	if got := (Limits{}).withDefaults(); got != d {
		t.Fatalf("zero limits = %+v, want defaults", got)
	}
	// 501 events with zero Limits: the default applies.
	req := &collectv1.CollectRequest{ClientId: "c"}
	for range 501 {
		req.Events = append(req.Events, &collectv1.Event{Name: "a"})
	}
	got := asInvalid(t, second(buildEvents(req, testMeta(), Limits{})))
	if len(got) != 1 || got[0].Field != "events" || got[0].Code != tooMany {
		t.Fatalf("got %+v", got)
	}
}

func second[A, B any](_ A, b B) B { return b }
