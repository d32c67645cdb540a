package collect

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	collectv1 "github.com/sextant-analytics/sextant/gen/sextant/collect/v1"
)

// Small limits so that the fuzzer reaches the EXCEEDED_MAX_ENTITIES paths.
var fuzzLimits = Limits{MaxEvents: 8, MaxParams: 8, MaxUserProperties: 4}

func fuzzMeta() Meta {
	return Meta{PropertyID: "prop-fuzz", UserAgent: uaAndroidChrome, ClientIP: mustAddr("8.8.8.8"), Now: testNow, Settings: fuzzSettings}
}

// fuzzSettings name params and user properties of the seeds.
var fuzzSettings = Settings{
	Currency:        "EUR",
	Rates:           map[string]float64{"USD": 0.92, "GBP": 1.17, "XXX": 0},
	KeyEvents:       []string{"purchase", "sign_up"},
	EventDimensions: []string{"coupon", "b", "v", "campaign", "currency"},
	UserDimensions:  []string{"plan", "n"},
	EventMetrics:    []string{"value", "v", "tax"},
}

// fuzzSeeds are JSON CollectRequests, valid and invalid.
func fuzzSeeds() []string {
	in := func(d time.Duration) int64 { return micros(testNow.Add(d)) }
	return []string{
		`{"clientId":"c1","events":[{"name":"page_view"}]}`,
		fmt.Sprintf(`{"clientId":"123.456","userId":"u","timestampMicros":"%d","userAgent":%q,
			"userProperties":{"plan":{"value":"pro"},"n":{"value":3}},
			"consent":{"adUserData":"GRANTED","adPersonalization":"denied"},
			"userLocation":{"countryId":"ch"},"ipOverride":"2001:4860:4860::8888",
			"device":{"category":"Mobile","language":"en"},
			"events":[
				{"name":"page_view","eventId":"e-1","params":{"page_location":"https://www.example.com/A/?utm_source=X&utm_medium=y&gclid=1","page_referrer":"https://www.google.de/","page_title":"Home","ga_session_id":"1772366000","ga_session_number":2,"engagement_time_msec":10,"v":1.5,"b":true}},
				{"name":"screen_view","timestampMicros":"%d","params":{"screen_name":"Main","session_id":5}},
				{"name":"purchase","params":{"source":"S","medium":"M","campaign":"C","value":9.99}}]}`,
			in(-time.Hour), uaIPhoneSafari, in(-2*time.Minute)),
		`{"appInstanceId":"app","events":[{"name":"first_open","params":{"gclid":"g"}}]}`,
		`{"clientId":"c","userProperties":{"plan":{"value":true}},"events":[
			{"name":"purchase","params":{"currency":"USD","value":30.5,"tax":2,"coupon":7,"items":[
				{"item_id":"SKU1","item_name":"Shirt","item_brand":"Acme","item_category":"Apparel","item_variant":"Red","price":9.99,"quantity":2,"coupon":"X"},
				{"item_name":"Socks","price":0},{"item_id":"SKU3"}]}},
			{"name":"add_to_cart","params":{"currency":"EUR","items":[{"item_id":"a","price":-1.5,"quantity":1e3}]}},
			{"name":"view_item","params":{"currency":"JPY","items":[{"item_id":"b"}]}},
			{"name":"sign_up","params":{"value":"7"}}]}`,
		`{"clientId":"c","events":[{"name":"page_view","params":{"page_location":"http://h.example","page_referrer":"https://h.example/x"}}]}`,
		// Invalid ones.
		`{}`,
		`{"clientId":"c","events":[]}`,
		`{"clientId":"c","events":[{"name":"_bad","eventId":"a b","timestampMicros":"1"}]}`,
		`{"clientId":"c","events":[{"name":"a","eventId":"x"},{"name":"b","eventId":"x"}]}`,
		`{"clientId":"c","events":[{"name":"a","params":{"p":null,"q":[1],"r":{"s":1},"ga_x":1,"page_location":"nope","ga_session_id":-1,"engagement_time_msec":1.5,"page_title":3}}]}`,
		`{"clientId":"c","consent":{"adUserData":"maybe"},"userLocation":{"countryId":"USA"},"userProperties":{"_p":{"value":1},"q":{}},"events":[{"name":"error"}]}`,
		`{"clientId":"` + strings.Repeat("c", 300) + `","events":[{"name":"a"},{"name":"a"},{"name":"a"},{"name":"a"},{"name":"a"},{"name":"a"},{"name":"a"},{"name":"a"},{"name":"a"}]}`,
		`{"clientId":"c\u0000","userId":"\u0085","events":[{"name":"purchase\u007f","params":{"p\t":1,"items":[{"item_id":"a\u001fb","item_name":"n\u0000"}]}}]}`,
		`{"clientId":"c","userAgent":"` + uaGooglebot + `","events":[{"name":"page_view","params":{"page_location":"https://x.example/%zz?utm_source=%ff"}}]}`,
		`{"clientId":"c","events":[{"name":"purchase","params":{"currency":"usd","items":{"item_id":"x"}}},
			{"name":"refund","params":{"value":1,"currency":"JPY","items":[1,null,[],{},{"item_id":3,"item_name":"n","price":"1","quantity":0.5,"x":[1]},
				{"item_id":"","item_brand":"` + strings.Repeat("b", 101) + `","quantity":-1},{"item_name":"ok","price":"NaN"}]}},
			{"name":"x","params":{"list":[{"item_id":"a"}],"currency":"XXX","value":2}}]}`,
	}
}

func FuzzBuildEventsJSON(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(s))
	}
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, data []byte) {
		req := &collectv1.CollectRequest{}
		if err := protojson.Unmarshal(data, req); err != nil {
			return
		}
		b, err := proto.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		checkAgainstReference(t, b)
	})
}

func FuzzBuildEventsProto(f *testing.F) {
	for _, s := range fuzzSeeds() {
		req := &collectv1.CollectRequest{}
		if err := protojson.Unmarshal([]byte(s), req); err != nil {
			f.Fatalf("seed %s: %v", s, err)
		}
		b, err := proto.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x62, 0x00})             // one empty event
	f.Add([]byte{0x12, 0x02, 0xff, 0xfe}) // a client id that is not UTF-8
	f.Fuzz(checkAgainstReference)
}

// checkAgainstReference encodes a batch's bytes and checks the outcome
// against the reference implementation's on the decoded request: the
// same violations, or the same events (but for generated ids); bytes that
// protobuf does not decode must be rejected.
func checkAgainstReference(t *testing.T, data []byte) {
	meta := fuzzMeta()
	out, err := NewEncoder(fuzzLimits).Encode(data, meta)
	req := &collectv1.CollectRequest{}
	if perr := proto.Unmarshal(data, req); perr != nil {
		if err == nil {
			t.Fatalf("accepted what protobuf does not decode (%v)", perr)
		}
		asInvalid(t, err)
		return
	}
	evs, err := decodeEncoded(out, err)
	checkInvariants(t, req, meta, fuzzLimits, evs, err)
	want, werr := referenceBuild(req, meta, fuzzLimits)
	if (err == nil) != (werr == nil) {
		t.Fatalf("error %v, reference's %v", err, werr)
	}
	if err != nil {
		if got, want := asInvalid(t, err), asInvalid(t, werr); !slices.Equal(got, want) {
			t.Fatalf("violations %+v\nreference's %+v", got, want)
		}
		return
	}
	for i := range want {
		if req.Events[i].GetEventId() == "" {
			want[i].EventId = evs[i].EventId // generated
		}
		if !proto.Equal(evs[i], want[i]) {
			t.Fatalf("event %d:\n%v\nreference's\n%v", i, evs[i], want[i])
		}
	}
}

// The seeds must cover both outcomes.
func TestFuzzSeeds(t *testing.T) {
	valid := 0
	for _, s := range fuzzSeeds() {
		req := parseReq(t, s)
		evs, err := buildEvents(req, fuzzMeta(), fuzzLimits)
		checkInvariants(t, req, fuzzMeta(), fuzzLimits, evs, err)
		if err == nil {
			valid++
		}
		b, err := proto.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		checkAgainstReference(t, b)
	}
	if valid != 5 {
		t.Fatalf("%d valid seeds, want 5", valid)
	}
}
