package mp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	collectv1 "github.com/sextant-analytics/sextant/gen/sextant/collect/v1"
	"github.com/sextant-analytics/sextant/pkg/apierror"
	"github.com/sextant-analytics/sextant/pkg/auth"
	"github.com/sextant-analytics/sextant/pkg/collectwire"
	"github.com/sextant-analytics/sextant/pkg/property"
)

type keys map[string]property.Principal

func (k keys) Authenticate(_ context.Context, secret string) (property.Principal, error) {
	if pr, ok := k[secret]; ok {
		return pr, nil
	}
	return property.Principal{}, apierror.New(apierror.Unauthenticated, "unknown API key")
}

// collector records the batches it is handed; a batch whose first event
// is named "rejected_by_collect" fails as collect would reject it.
type collector struct {
	batches []*collectv1.CollectRequest
	pr      []property.Principal
}

func (c *collector) handlers() collectwire.Handlers {
	return collectwire.Handlers{
		Open: func(http.Header, connect.Peer) collectwire.BatchFunc {
			return func(ctx context.Context, b []byte) (*collectv1.CollectResponse, error) {
				req := &collectv1.CollectRequest{}
				if err := proto.Unmarshal(b, req); err != nil {
					return nil, err
				}
				pr, _ := auth.FromContext(ctx)
				c.batches, c.pr = append(c.batches, req), append(c.pr, pr)
				if req.Events[0].Name == "rejected_by_collect" {
					return nil, apierror.Invalid("invalid batch", apierror.Violation{Field: "events[0].params.pageTitle", Description: "not UTF-8", Code: apierror.ValueInvalid},
						apierror.Violation{Field: "clientId", Description: "too long", Code: apierror.ValueOutOfBounds})
				}
				if req.Events[0].Name == "slow" {
					return nil, apierror.New(apierror.ResourceExhausted, "rate limit")
				}
				return &collectv1.CollectResponse{Accepted: int32(len(req.Events))}, nil
			}
		},
		BatchError: func(_ context.Context, err error) *collectv1.BatchError {
			be := &collectv1.BatchError{Code: "RESOURCE_EXHAUSTED", Message: err.Error()}
			if ae, ok := err.(*apierror.Error); ok && ae.Kind == apierror.InvalidArgument {
				be.Code = "INVALID_ARGUMENT"
				for _, v := range ae.Violations {
					be.Violations = append(be.Violations, &collectv1.FieldViolation{FieldPath: v.Field, Description: v.Description, ValidationCode: v.Code})
				}
			}
			return be
		},
	}
}

func TestMeasurementProtocol(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	mid := property.MeasurementIDOf("42")
	c := &collector{}
	h := Handler(Config{
		Keys:    keys{"sxm_good": {PropertyID: "42", Scope: property.Measurement}, "sxw_write": {PropertyID: "42", Scope: property.Write}},
		Collect: c.handlers(), Now: func() time.Time { return now },
	})
	q := "?measurement_id=" + mid + "&api_secret=sxm_good"
	ok := `{"client_id":"1.2","events":[{"name":"page_view","params":{"page_location":"https://a.example/x"}}]}`
	long := strings.Repeat("x", 101)
	events := func(n int) string {
		var evs []string
		for i := 0; i < n; i++ {
			evs = append(evs, `{"name":"e"}`)
		}
		return `{"client_id":"1","events":[` + strings.Join(evs, ",") + `]}`
	}
	params := func(n int) string {
		var ps []string
		for i := 0; i < n; i++ {
			ps = append(ps, fmt.Sprintf(`"p%d":1`, i))
		}
		return `{"client_id":"1","events":[{"name":"e","params":{` + strings.Join(ps, ",") + `}}]}`
	}
	tests := []struct {
		name, query, body string
		status            int      // of /mp/collect; /debug/mp/collect answers 200 to a bad hit
		want              []string // fieldPath:validationCode of each message, or a substring of an error
		stored            bool
	}{
		{"a page view", q, ok, 204, nil, true},
		{"GA4's fields Sextant does not keep", q, `{"client_id":"1","validation_behavior":"ENFORCE_RECOMMENDATIONS","non_personalized_ads":false,"user_location":{"city":"Paris","country_id":"FR"},"consent":{"ad_user_data":"GRANTED"},"events":[{"name":"e"}]}`, 204, nil, true},
		{"no measurement_id", "?api_secret=sxm_good", ok, 400, []string{"measurement_id:VALUE_REQUIRED"}, false},
		{"no api_secret", "?measurement_id=" + mid, ok, 400, []string{"api_secret:VALUE_REQUIRED"}, false},
		{"an app's hit", "?firebase_app_id=" + property.FirebaseAppIDOf("42") + "&api_secret=sxm_good", `{"app_instance_id":"a1","events":[{"name":"screen_view"}]}`, 204, nil, true},
		{"an app's hit naming a client", "?firebase_app_id=" + property.FirebaseAppIDOf("42") + "&api_secret=sxm_good", ok, 400,
			[]string{"app_instance_id:VALUE_REQUIRED", "client_id:VALUE_INVALID"}, false},
		{"a web hit naming an app instance", q, `{"client_id":"1","app_instance_id":"a","events":[{"name":"e"}]}`, 400, []string{"app_instance_id:VALUE_INVALID"}, false},
		{"another property's app id", "?firebase_app_id=" + property.FirebaseAppIDOf("43") + "&api_secret=sxm_good", ok, 403, []string{"not the app id"}, false},
		{"both ids", q + "&firebase_app_id=" + property.FirebaseAppIDOf("42"), ok, 400, []string{"firebase_app_id:VALUE_INVALID"}, false},
		{"an unknown secret", "?measurement_id=" + mid + "&api_secret=sxm_bad", ok, 401, []string{"unknown API key"}, false},
		{"a write key as secret", "?measurement_id=" + mid + "&api_secret=sxw_write", ok, 403, []string{"measurement secret"}, false},
		{"another property's measurement id", "?measurement_id=G-AAAAAAAAAA&api_secret=sxm_good", ok, 403, []string{"not the measurement id"}, false},
		{"not JSON", q, `{`, 400, []string{":VALUE_INVALID"}, false},
		{"no client", q, `{"events":[{"name":"e"}]}`, 400, []string{"client_id:VALUE_REQUIRED"}, false},
		{"no events", q, `{"client_id":"1"}`, 400, []string{"events:VALUE_REQUIRED"}, false},
		{"26 events", q, events(26), 400, []string{"events:EXCEEDED_MAX_ENTITIES"}, false},
		{"25 events", q, events(25), 204, nil, true},
		{"26 params", q, params(26), 400, []string{"events[0].params:EXCEEDED_MAX_ENTITIES"}, false},
		{"an unknown field", q, `{"client_id":"1","clientid":"2","events":[{"name":"e"}]}`, 400, []string{"clientid:NAME_INVALID"}, false},
		{"bad event names", q, `{"client_id":"1","events":[{"name":"9lives"},{"name":"` + strings.Repeat("e", 41) + `"},{"name":"first_visit"},{}]}`, 400,
			[]string{"events[0].name:NAME_INVALID", "events[1].name:NAME_INVALID", "events[2].name:NAME_RESERVED", "events[3].name:VALUE_REQUIRED"}, false},
		{"bad params", q, `{"client_id":"1","events":[{"name":"e","params":{"google_x":1,"firebase_y":1,"_z":1,"a-b":1,"v":"` + long + `","page_title":"` + long + `"}}]}`, 400,
			[]string{"events[0].params._z:NAME_RESERVED", "events[0].params.a-b:NAME_INVALID", "events[0].params.firebase_y:NAME_RESERVED", "events[0].params.google_x:NAME_RESERVED", "events[0].params.v:VALUE_OUT_OF_BOUNDS"}, false},
		{"bad user properties", q, `{"client_id":"1","user_properties":{"ga_tier":{"value":"x"},"a_name_longer_than_24_chars":{"value":"x"},"plan":{"value":"` + strings.Repeat("p", 37) + `"}},"events":[{"name":"e"}]}`, 400,
			[]string{"user_properties.a_name_longer_than_24_chars:NAME_INVALID", "user_properties.ga_tier:NAME_RESERVED", "user_properties.plan.value:VALUE_OUT_OF_BOUNDS"}, false},
		{"too old", q, fmt.Sprintf(`{"client_id":"1","timestamp_micros":%d,"events":[{"name":"e","timestamp_micros":%d}]}`, now.Add(-73*time.Hour).UnixMicro(), now.Add(-80*time.Hour).UnixMicro()), 400,
			[]string{"timestamp_micros:VALUE_OUT_OF_BOUNDS", "events[0].timestamp_micros:VALUE_OUT_OF_BOUNDS"}, false},
		{"collect's own checks", q, `{"client_id":"1","events":[{"name":"rejected_by_collect"}]}`, 400,
			[]string{"events[0].params.pageTitle:VALUE_INVALID", "client_id:VALUE_OUT_OF_BOUNDS"}, true},
		{"items", q, `{"client_id":"1","events":[{"name":"purchase","params":{"currency":"EUR","value":3,"items":[{"item_id":"a","price":1.5,"quantity":2,"coupon":"C"}]}}]}`, 204, nil, true},
		{"a rate limit", q, `{"client_id":"1","events":[{"name":"slow"}]}`, 429, []string{"RESOURCE_EXHAUSTED"}, true},
		{"too large", q, `{"client_id":"1","events":[{"name":"e","params":{"v":"` + strings.Repeat("x", MaxBodyBytes) + `"}}]}`, 413, []string{":VALUE_OUT_OF_BOUNDS"}, false},
	}
	for _, tt := range tests {
		for _, debug := range []bool{false, true} {
			path := CollectPath
			if debug {
				path = DebugPath
			}
			t.Run(tt.name+" "+path, func(t *testing.T) {
				c.batches = nil
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest("POST", path+tt.query, strings.NewReader(tt.body)))
				status, validation := tt.status, tt.want != nil && strings.Contains(tt.want[0], ":")
				if debug && (status == 400 || status == 413) && validation {
					status = 200 // the debug endpoint answers messages with 200, as GA4's
				}
				if debug && status == 204 {
					status = 200
				}
				if w.Code != status {
					t.Fatalf("status %d, want %d: %s", w.Code, status, w.Body)
				}
				if validation {
					var got struct{ ValidationMessages []Message }
					if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
						t.Fatalf("answer %s: %v", w.Body, err)
					}
					var have []string
					for _, m := range got.ValidationMessages {
						have = append(have, m.FieldPath+":"+m.ValidationCode)
						if m.Description == "" {
							t.Errorf("message without a description: %+v", m)
						}
					}
					if fmt.Sprint(have) != fmt.Sprint(tt.want) {
						t.Errorf("messages %v, want %v", have, tt.want)
					}
				} else {
					for _, s := range tt.want {
						if !strings.Contains(w.Body.String(), s) {
							t.Errorf("answer lacks %q: %s", s, w.Body)
						}
					}
				}
				if debug && tt.status == 204 && w.Body.String() != `{"validationMessages":[]}` {
					t.Errorf("debug answer for a valid hit: %s", w.Body)
				}
				if got := len(c.batches) > 0; got != tt.stored {
					t.Fatalf("handed to collect: %v, want %v", got, tt.stored)
				}
				if tt.stored {
					b := c.batches[0]
					if b.ValidateOnly != debug {
						t.Errorf("validate_only %v on %s", b.ValidateOnly, path)
					}
					if c.pr[0] != (property.Principal{PropertyID: "42", Scope: property.Write}) {
						t.Errorf("collect ran as %+v", c.pr[0])
					}
				}
			})
		}
	}
	// What a hit becomes: the same batch as /v1/collect's.
	c.batches = nil
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", CollectPath+q, strings.NewReader(
		`{"client_id":"1.2","user_id":"u","user_location":{"city":"Lyon","region_id":"FR-ARA","country_id":"FR","continent_id":"150"},"user_properties":{"plan":{"value":"pro"}},"events":[{"name":"page_view","params":{"page_location":"https://a.example/x","n":3}}]}`)))
	if w.Code != 204 || len(c.batches) != 1 {
		t.Fatalf("status %d, %d batches", w.Code, len(c.batches))
	}
	b := c.batches[0]
	if b.ClientId != "1.2" || b.UserId != "u" || b.UserLocation.GetCountryId() != "FR" || b.UserLocation.GetCity() != "Lyon" || b.UserLocation.GetRegionId() != "FR-ARA" || b.UserProperties["plan"].GetValue().GetStringValue() != "pro" ||
		b.Events[0].Params["page_location"].GetStringValue() != "https://a.example/x" || b.Events[0].Params["n"].GetNumberValue() != 3 {
		t.Fatalf("batch %v", b)
	}
}

func TestSnake(t *testing.T) {
	for in, want := range map[string]string{
		"clientId":                        "client_id",
		"events[0].params.pageTitle":      "events[0].params.pageTitle",
		"events[1].params.items[2].myKey": "events[1].params.items[2].myKey",
		"events[1].params.items[2]":       "events[1].params.items[2]",
		"userProperties.myPlan.value":     "user_properties.myPlan.value",
		"events[2].timestampMicros":       "events[2].timestamp_micros",
		"userLocation.countryId":          "user_location.country_id",
		"device.operatingSystemVersion":   "device.operating_system_version",
	} {
		if got := snake(in); got != want {
			t.Errorf("snake(%q) = %q, want %q", in, got, want)
		}
	}
}
