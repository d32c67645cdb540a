package collectwire

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	collectv1 "github.com/sextant-analytics/sextant/gen/sextant/collect/v1"
)

var jsonSeeds = []struct {
	body string
	fast bool // the fast path transcodes it (else protojson does)
}{
	{`{"clientId":"c1","events":[{"name":"page_view"}]}`, true},
	{` { "propertyId" : "p" , "clientId":"123.456","userId":"u","timestampMicros":1772366000000000,
	   "userProperties":{"plan":{"value":"pro"},"n":{"value":3},"b":{"value":false}},
	   "consent":{"adUserData":"GRANTED","adPersonalization":"denied"},"userLocation":{"countryId":"ch"},
	   "device":{"category":"Mobile","language":"en","screenResolution":"1x1","model":"m","brand":"b"},
	   "userAgent":"Mozilla/5.0 (X11)","ipOverride":"2001:db8::1",
	   "events":[{"name":"page_view","eventId":"e-1","timestampMicros":-5,"params":{
	     "page_location":"https://example.com/a?b=c","engagement_time_msec":1200,"v":-1.5e-3,"t":true,"z":0,"e":""}},
	     {"name":"x","params":{}},{}]} `, true},
	{`{"clientId":"esc\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00","events":[{"name":"\u0041"}]}`, true},
	{`{"clientId":"ünïcödé ✓","events":[]}`, true},
	{`{}`, true},
	// Left to protojson: accepted by it...
	{`{"client_id":"c","events":[{"name":"a"}]}`, false},
	{`{"clientId":null,"events":[{"name":"a","params":{"p":null}}]}`, false},
	{`{"timestampMicros":"17","events":[{"name":"a","timestampMicros":1e3}]}`, false},
	{`{"events":[{"name":"a","params":{"l":[1,"x"],"s":{"k":1}}}]}`, true},
	{`{"events":[{"name":"purchase","params":{"currency":"EUR","items":[{"item_id":"SKU1","item_name":"Shirt","price":9.99,"quantity":2},
	   {"item_id":"b","k":{"l":[[],{},[{"m":true}]]}}],"e":[],"o":{}}}]}`, true},
	{`{"events":[{"params":{"items":[{"item_id":"a","item_name":"` + strings.Repeat("n", 200) + `","price":1}]}}]}`, true},
	{`{"events":[{"params":{"l":[[[[[[[[[1]]]]]]]]]}}]}`, false}, // deeper than the fast path goes
	{`{"events":[{"params":{"l":[1,null]}}]}`, false},
	{`{"userProperties":{"p":{}}}`, true},
	// ... and refused by it.
	{`{"clientId":"c","surprise":1}`, false},
	{`{"clientId":"a","clientId":"b"}`, false},
	{`{"clientId":"a","client_id":"b"}`, false},
	{`{"events":[{"params":{"p":1,"p":2}}]}`, false},
	{`{"events":[{"params":{"p":"` + strings.Repeat("x", 200) + `","p":1}}]}`, false},
	{`{"userProperties":{"p":{"value":"` + strings.Repeat("x", 200) + `"},"p":{"value":1}}}`, false},
	{`{"events":[{"params":{"items":[{"item_id":"a","item_id":"b"}]}}]}`, false},
	{`{"events":[{"params":{"items":[{"a":"` + strings.Repeat("x", 200) + `","b":1,"a":2}]}}]}`, false},
	{`{"events":[{"params":{"items":[1,]}}]}`, false},
	{`{"events":[{"params":{"items":[1 2]}}]}`, false},
	{`{"events":[{"params":{"items":{"a" 1}}}]}`, false},
	{`{"events":[{"params":{"p":01}}]}`, false},
	{`{"events":[{"params":{"p":1e999}}]}`, false},
	{`{"timestampMicros":9223372036854775808}`, false},
	{`{"clientId":"\ud800"}`, false},
	{"{\"clientId\":\"\xff\"}", false},
	{`{"clientId":"c"} x`, false},
	{`{"clientId":"c",}`, false},
	{`[]`, false},
	{``, false},
}

func TestFromJSON(t *testing.T) {
	for _, s := range jsonSeeds {
		tr := transcoder{in: []byte(s.body)}
		if fast := tr.request(); fast != s.fast {
			t.Errorf("%s: fast path %v, want %v", s.body, fast, s.fast)
		}
		checkFromJSON(t, []byte(s.body))
	}
	// Lengths of 128 bytes and more take two bytes: nested lengths move.
	long := `{"clientId":"c","events":[{"name":"a","params":{"p":"` + string(make([]byte, 0)) +
		"0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789" +
		`"}}]}`
	checkFromJSON(t, []byte(long))
}

// checkFromJSON: FromJSON accepts exactly what protojson accepts, and its
// bytes decode to the message protojson reads.
func checkFromJSON(t *testing.T, body []byte) {
	t.Helper()
	want := &collectv1.CollectRequest{}
	werr := (protojson.UnmarshalOptions{}).Unmarshal(body, want)
	got, err := FromJSON(body)
	if (err == nil) != (werr == nil) {
		t.Fatalf("%s: error %v, protojson's %v", body, err, werr)
	}
	if err != nil {
		return
	}
	msg := &collectv1.CollectRequest{}
	if err := proto.Unmarshal(got, msg); err != nil {
		t.Fatalf("%s: transcoded bytes do not decode: %v", body, err)
	}
	if !proto.Equal(msg, want) {
		t.Fatalf("%s:\ntranscoded %v\nprotojson  %v", body, msg, want)
	}
}

func FuzzFromJSON(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s.body))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkFromJSON(t, body) })
}

// A browser's single page view, as the REST benchmark sends it.
const benchBody = `{"clientId":"1234567890.1772366000","events":[{"name":"page_view","eventId":"0f9a6c1e2b","timestampMicros":1772366000123456,
"params":{"page_location":"https://www.example.com/blog/post-7/?utm_source=newsletter&utm_medium=email","page_referrer":"https://www.google.com/",
"page_title":"Post number 7 - Example Blog","ga_session_id":1772366000,"ga_session_number":3,"engagement_time_msec":1200,"language":"en-us"}}]}`

func BenchmarkFromJSON(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := FromJSON([]byte(benchBody)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProtoJSON is what FromJSON replaces: protojson into messages,
// then their encoding.
func BenchmarkProtoJSON(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		req := &collectv1.CollectRequest{}
		if err := protojson.Unmarshal([]byte(benchBody), req); err != nil {
			b.Fatal(err)
		}
		if _, err := proto.Marshal(req); err != nil {
			b.Fatal(err)
		}
	}
}
