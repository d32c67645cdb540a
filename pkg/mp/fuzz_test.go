package mp

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzParse: any body either gets validation messages or becomes a batch
// within GA4's limits; parse never panics.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`{"client_id":"1.2","events":[{"name":"page_view","params":{"page_location":"https://a.example/"}}]}`,
		`{"client_id":"1","user_properties":{"plan":{"value":"pro"}},"user_location":{"country_id":"FR","city":"Paris"},"events":[{"name":"e","params":{"v":1.5,"b":true}}]}`,
		`{"app_instance_id":"a","timestamp_micros":1,"events":[{"name":"session_start"}]}`,
		`{"client_id":"1","events":[{"name":"purchase","params":{"currency":"EUR","value":3,"items":[{"item_id":"a","price":1.5,"quantity":2,"x":{"y":1}}]}}]}`,
		`{"events":[]}`, `[]`, `{"client_id":null}`, `{"client_id":"1","events":[{"name":"e","params":{"x":{"y":1}}}]}`,
	} {
		f.Add(seed)
	}
	h := &handler{cfg: Config{Now: func() time.Time { return time.Unix(1_800_000_000, 0) }}}
	f.Fuzz(func(t *testing.T, body string) {
		app := strings.Contains(body, "app_instance_id")
		req, msgs := h.parse([]byte(body), app)
		if (req == nil) == (len(msgs) == 0) {
			t.Fatalf("parse gave %v and %d messages", req, len(msgs))
		}
		for _, m := range msgs {
			if m.Description == "" || m.ValidationCode == "" || !utf8.ValidString(m.FieldPath) && utf8.ValidString(body) {
				t.Fatalf("message %+v", m)
			}
		}
		if req == nil {
			return
		}
		if n := len(req.Events); n == 0 || n > MaxEvents {
			t.Fatalf("%d events accepted", n)
		}
		for _, e := range req.Events {
			if len(e.Params) > MaxParams || utf8.RuneCountInString(e.Name) > MaxNameLen || !nameRE.MatchString(e.Name) {
				t.Fatalf("event %v accepted", e)
			}
			for name := range e.Params {
				if reservedPrefix(name) != "" || strings.ContainsAny(name, " .-") {
					t.Fatalf("parameter %q accepted", name)
				}
			}
		}
		if !app && req.AppInstanceId != "" || app && req.ClientId != "" {
			t.Fatalf("a web hit with an app id or an app hit with a client id: %v", req)
		}
	})
}
