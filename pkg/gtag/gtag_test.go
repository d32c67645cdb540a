package gtag

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	collectv1 "github.com/sextant-analytics/sextant/gen/sextant/collect/v1"
	"github.com/sextant-analytics/sextant/pkg/apierror"
	"github.com/sextant-analytics/sextant/pkg/auth"
	"github.com/sextant-analytics/sextant/pkg/collectwire"
	"github.com/sextant-analytics/sextant/pkg/property"
)

type props map[string]bool

func (p props) Get(_ context.Context, id string) (property.Property, error) {
	if p[id] {
		return property.Property{ID: id}, nil
	}
	return property.Property{}, apierror.New(apierror.NotFound, "property %q not found", id)
}

func TestGtag(t *testing.T) {
	var got []*collectv1.CollectRequest
	h := Handler(Config{Properties: props{"1234567890": true}, Collect: collectwire.Handlers{
		Open: func(http.Header, connect.Peer) collectwire.BatchFunc {
			return func(ctx context.Context, b []byte) (*collectv1.CollectResponse, error) {
				req := &collectv1.CollectRequest{}
				if err := proto.Unmarshal(b, req); err != nil {
					return nil, err
				}
				if pr, _ := auth.FromContext(ctx); pr != (property.Principal{PropertyID: "1234567890", Scope: property.Write}) {
					t.Errorf("collect ran as %+v", pr)
				}
				got = append(got, req)
				if req.Events[0].Name == "refused" {
					return nil, apierror.Invalid("invalid batch", apierror.Violation{Field: "events[0].params.page_location", Description: "not a URL", Code: apierror.ValueInvalid})
				}
				return &collectv1.CollectResponse{Accepted: int32(len(req.Events))}, nil
			}
		},
		BatchError: func(_ context.Context, err error) *collectv1.BatchError {
			be := &collectv1.BatchError{Code: "INVALID_ARGUMENT", Message: err.Error()}
			for _, v := range err.(*apierror.Error).Violations {
				be.Violations = append(be.Violations, &collectv1.FieldViolation{FieldPath: v.Field, Description: v.Description, ValidationCode: v.Code})
			}
			return be
		},
	}})
	mid := property.MeasurementIDOf("1234567890")
	shared := "v=2&tid=" + mid + "&cid=111.222&uid=u1&sid=1765000000&sct=3&ul=fr-fr&sr=1280x720&_p=99&dl=" + url.QueryEscape("https://shop.example/p?x=1") + "&dr=" + url.QueryEscape("https://ref.example/") + "&dt=Page"
	tests := []struct {
		name, method, query, body string
		status                    int
		want                      string // a substring of the answer, or of the batch collect got
	}{
		{"a page view in the query", "GET", shared + "&en=page_view&_s=1&_fv=1&_ss=1", "", 204,
			`events:{name:"first_visit"`},
		{"hits in the body", "POST", shared, "en=scroll&_s=2&epn.percent_scrolled=90&_et=1500\nen=view_item&_s=3&ep.item_id=sku-1&cu=EUR&up.plan=pro&upn.visits=4", 204,
			`name:"view_item"`},
		{"a protocol v1 hit", "GET", "v=1&tid=UA-1-1&cid=1&t=pageview", "", 400, `"fieldPath":"v"`},
		{"an unknown measurement id", "GET", "v=2&tid=G-AAAAAAAAAA&cid=1&en=x", "", 400, `"fieldPath":"tid"`},
		{"a deleted property", "GET", "v=2&tid=" + property.MeasurementIDOf("1234567891") + "&cid=1&en=x", "", 400, `no property has measurement id`},
		{"no client id", "GET", "v=2&tid=" + mid + "&en=x", "", 400, `"fieldPath":"cid"`},
		{"no event name", "POST", shared, "_s=2\nen=ok&_s=3", 400, `"fieldPath":"hits[0].en"`},
		{"a numeric parameter that is not", "POST", shared, "en=x&epn.value=abc", 400, `"fieldPath":"hits[0].epn.value"`},
		{"collect's own checks", "GET", shared + "&en=refused", "", 400, `"fieldPath":"events[0].params.page_location"`},
		{"too many hits", "POST", shared, strings.Repeat("en=x\n", MaxHits+1), 400, "EXCEEDED_MAX_ENTITIES"},
		{"a body over the limit", "POST", shared, "en=x&ep.p=" + strings.Repeat("x", MaxBodyBytes), 413, "at most 65536 bytes"},
		{"PUT", "PUT", shared + "&en=x", "", 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got = nil
			r := httptest.NewRequest(tt.method, Path+"?"+tt.query, strings.NewReader(tt.body))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if tt.status == 400 && !json.Valid(w.Body.Bytes()) {
				t.Fatalf("answer is not JSON: %s", w.Body)
			}
			where := w.Body.String()
			if tt.status == 204 {
				if len(got) != 1 {
					t.Fatalf("%d batches", len(got))
				}
				where = strings.ReplaceAll(got[0].String(), "  ", " ")
			}
			if !strings.Contains(where, tt.want) {
				t.Errorf("lacks %s:\n%s", tt.want, where)
			}
		})
	}
}

// TestBatch: what each gtag.js parameter becomes.
func TestBatch(t *testing.T) {
	q, _ := url.ParseQuery("v=2&tid=G-X&cid=111.222&uid=u1&sid=1765000000&sct=3&ul=fr-fr&sr=1280x720&_p=99&_s=4&dl=https%3A%2F%2Fa.example%2Fp&dr=https%3A%2F%2Fr.example%2F&dt=T&en=purchase&_et=2500&_fv=1&_ss=1&cu=EUR&ep.coupon=X&epn.value=9.5&up.plan=pro&upn.visits=4")
	req, msgs := batch("42", []url.Values{q})
	if len(msgs) > 0 {
		t.Fatal(msgs)
	}
	if req.PropertyId != "42" || req.ClientId != "111.222" || req.UserId != "u1" || req.Device.GetLanguage() != "fr-fr" || req.Device.GetScreenResolution() != "1280x720" {
		t.Fatalf("batch %v", req)
	}
	if req.UserProperties["plan"].GetValue().GetStringValue() != "pro" || req.UserProperties["visits"].GetValue().GetNumberValue() != 4 {
		t.Errorf("user properties %v", req.UserProperties)
	}
	var names []string
	for _, e := range req.Events {
		names = append(names, e.Name)
		if e.EventId == "" || e.Params["ga_session_id"].GetNumberValue() != 1765000000 || e.Params["page_location"].GetStringValue() != "https://a.example/p" {
			t.Errorf("event %v lacks its id, session or page", e)
		}
	}
	if strings.Join(names, ",") != "first_visit,session_start,purchase" {
		t.Fatalf("events %v", names)
	}
	p := req.Events[2].Params
	if p["page_referrer"].GetStringValue() != "https://r.example/" || p["page_title"].GetStringValue() != "T" || p["engagement_time_msec"].GetNumberValue() != 2500 ||
		p["ga_session_number"].GetNumberValue() != 3 || p["currency"].GetStringValue() != "EUR" || p["coupon"].GetStringValue() != "X" || p["value"].GetNumberValue() != 9.5 {
		t.Errorf("params %v", p)
	}
	// A retry of the same request names its events the same: collect
	// drops the duplicates.
	again, _ := batch("42", []url.Values{q})
	if again.Events[2].EventId != req.Events[2].EventId || req.Events[0].EventId == req.Events[2].EventId {
		t.Errorf("event ids %s, %s, %s", req.Events[0].EventId, req.Events[2].EventId, again.Events[2].EventId)
	}
}

// TestItemsOf: gtag.js's pr1…prN items become the items param.
func TestItemsOf(t *testing.T) {
	for _, tc := range []struct {
		name, query string
		want        string   // the items as JSON, "" for none
		msgs        []string // field paths of the messages
	}{
		{"none", "en=purchase", "", nil},
		{"every field kept", "pr1=idSKU1~nmShirt~brAcme~caApparel~vaRed~pr9.99~qt2",
			`[{"item_brand":"Acme","item_category":"Apparel","item_id":"SKU1","item_name":"Shirt","item_variant":"Red","price":9.99,"quantity":2}]`, nil},
		{"in the order of their numbers", "pr10=idc&pr2=idb&pr1=ida", `[{"item_id":"a"},{"item_id":"b"},{"item_id":"c"}]`, nil},
		{"other fields and empty ones dropped", "pr1=idA~c2Men~lpl~k0color~v0red~~x~cpSALE", `[{"item_id":"A"}]`, nil},
		{"escaped values", "pr1=nm" + url.QueryEscape("Shirt, tie ✓ 100%"), `[{"item_name":"Shirt, tie ✓ 100%"}]`, nil},
		{"not items", "pr=idA&pr0=idB&pr01=idC&prx=idD&pr1234567=idE&product=idF", "", nil},
		{"an empty item", "pr1=", `[{}]`, nil},
		{"bad numbers", "pr1=idA~prcheap&pr2=idB~qtmany~pr1", `[{"item_id":"A"},{"item_id":"B","price":1}]`, []string{"hits[3].pr1", "hits[3].pr2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			items, msgs := itemsOf(q, 3)
			got := ""
			if items != nil {
				b, _ := json.Marshal(items.AsSlice())
				got = string(b)
			}
			if got != tc.want {
				t.Errorf("items %s, want %s", got, tc.want)
			}
			var paths []string
			for _, m := range msgs {
				paths = append(paths, m.FieldPath)
			}
			slices.Sort(paths)
			if !slices.Equal(paths, tc.msgs) {
				t.Errorf("messages %v, want %v", msgs, tc.msgs)
			}
		})
	}
	// Through batch: the items param of the hit's event only.
	q, _ := url.ParseQuery("cid=1&en=purchase&_ss=1&cu=EUR&pr1=idA~pr2")
	req, msgs := batch("42", []url.Values{q})
	if len(msgs) > 0 || len(req.Events) != 2 {
		t.Fatalf("%v %v", req, msgs)
	}
	if _, ok := req.Events[0].Params["items"]; ok {
		t.Errorf("session_start has the items")
	}
	if l := req.Events[1].Params["items"].GetListValue().GetValues(); len(l) != 1 || l[0].GetStructValue().GetFields()["price"].GetNumberValue() != 2 {
		t.Errorf("purchase's items %v", req.Events[1].Params["items"])
	}
}
