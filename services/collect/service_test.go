package collect

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	collectv1 "github.com/sextant-analytics/sextant/gen/sextant/collect/v1"
	eventv1 "github.com/sextant-analytics/sextant/gen/sextant/event/v1"
	"github.com/sextant-analytics/sextant/pkg/apierror"
	"github.com/sextant-analytics/sextant/pkg/auth"
	"github.com/sextant-analytics/sextant/pkg/eventlog"
	"github.com/sextant-analytics/sextant/pkg/gtag"
	"github.com/sextant-analytics/sextant/pkg/mp"
	"github.com/sextant-analytics/sextant/pkg/property"
)

// fakeProperties is the registry as collect reads it: its properties, or
// err for every lookup; it counts lookups.
type fakeProperties struct {
	mu    sync.Mutex
	props map[string]property.Property
	err   error
	gets  int
}

func (f *fakeProperties) Get(_ context.Context, id string) (property.Property, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	if f.err != nil {
		return property.Property{}, f.err
	}
	p, ok := f.props[id]
	if !ok {
		return property.Property{}, apierror.New(apierror.NotFound, "property %q not found", id)
	}
	return p, nil
}

// memLog keeps what is appended.
type memLog struct {
	mu   sync.Mutex
	msgs []eventlog.Message
}

func (l *memLog) Append(_ context.Context, msgs []eventlog.Message) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, msgs...)
	return nil
}

func (l *memLog) events(t *testing.T) []*eventv1.Event {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*eventv1.Event
	for _, m := range l.msgs {
		ev := &eventv1.Event{}
		if err := proto.Unmarshal(m.Value, ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

// shop is a property with every setting collect stamps.
var shop = property.Property{
	ID: "42", CurrencyCode: "EUR", CurrencyRates: map[string]float64{"USD": 0.9},
	KeyEvents: []string{"purchase"}, CustomEventDimensions: []string{"coupon"},
	CustomUserDimensions: []string{"plan"}, CustomEventMetrics: []string{"tax"},
}

func newTestService(props Properties) (*Service, *memLog) {
	log := &memLog{}
	s := New(Config{Properties: props, Logger: slog.New(slog.DiscardHandler)}, log)
	s.now = func() time.Time { return testNow }
	return s, log
}

// send hands a batch to the service as the property's writer.
func send(s *Service, pid, js string) error {
	b, err := jsonBatch(js)
	if err != nil {
		return err
	}
	ctx := auth.WithPrincipal(context.Background(), property.Principal{PropertyID: pid, Scope: property.Write})
	_, err = s.Handlers().Open(http.Header{}, connect.Peer{Addr: "192.0.2.1:1234"})(ctx, b)
	return err
}

func jsonBatch(js string) ([]byte, error) {
	req := &collectv1.CollectRequest{}
	if err := protojson.Unmarshal([]byte(js), req); err != nil {
		return nil, err
	}
	return proto.Marshal(req)
}

func TestServiceStampsSettings(t *testing.T) {
	props := &fakeProperties{props: map[string]property.Property{"42": shop}}
	s, log := newTestService(props)
	err := send(s, "42", `{"clientId":"c","userProperties":{"plan":{"value":"pro"}},"events":[
		{"name":"purchase","params":{"currency":"USD","value":10,"coupon":"C","tax":1.5,"items":[{"item_id":"a","price":5,"quantity":2}]}},
		{"name":"page_view"},
		{"name":"add_to_cart","params":{"items":[{"item_id":"b","price":3}]}}]}`)
	if err != nil {
		t.Fatal(err)
	}
	if props.gets != 1 {
		t.Errorf("%d property lookups for one batch, want 1", props.gets)
	}
	evs := log.events(t)
	if len(evs) != 3 {
		t.Fatalf("%d events stored", len(evs))
	}
	p, v, a := evs[0], evs[1], evs[2]
	if !p.GetKeyEvent() || p.GetCurrencyRate() != 0.9 || len(p.GetItems()) != 1 || p.GetItems()[0].GetQuantity() != 2 ||
		p.GetCustomDimensions()["customEvent:coupon"] != "C" || p.GetCustomDimensions()["customUser:plan"] != "pro" ||
		p.GetCustomMetrics()["customEvent:tax"] != 1.5 {
		t.Errorf("purchase %v", p)
	}
	if v.GetKeyEvent() || v.GetCurrencyRate() != 0 || v.GetCustomDimensions()["customUser:plan"] != "pro" {
		t.Errorf("page view %v", v)
	}
	if a.GetKeyEvent() || a.GetCurrencyRate() != 1 {
		t.Errorf("add to cart %v", a)
	}
}

func TestServicePropertyErrors(t *testing.T) {
	purchase := `{"clientId":"c","events":[{"name":"purchase","params":{"value":1,"currency":"JPY"}}]}`
	for _, tc := range []struct {
		name  string
		props *fakeProperties
		pid   string
		js    string
		code  string // BatchError's
		field string // the violation's, for INVALID_ARGUMENT
	}{
		{"the registry's store fails", &fakeProperties{err: errors.New("kv: connection refused")}, "42", purchase, "UNAVAILABLE", ""},
		{"the registry is unavailable", &fakeProperties{err: apierror.New(apierror.Unavailable, "registry down")}, "42", purchase, "UNAVAILABLE", ""},
		{"a property that is gone", &fakeProperties{}, "42", purchase, "NOT_FOUND", ""},
		{"no rate for the currency", &fakeProperties{props: map[string]property.Property{"42": shop}}, "42", purchase, "INVALID_ARGUMENT", "events[0].params.currency"},
		{"a validate-only batch is checked too", &fakeProperties{props: map[string]property.Property{"42": shop}}, "42",
			strings.Replace(purchase, `{"clientId"`, `{"validateOnly":true,"clientId"`, 1), "INVALID_ARGUMENT", "events[0].params.currency"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, log := newTestService(tc.props)
			err := send(s, tc.pid, tc.js)
			if err == nil {
				t.Fatal("accepted")
			}
			be := s.batchError(context.Background(), err)
			if be.Code != tc.code {
				t.Fatalf("code %s (%s), want %s", be.Code, be.Message, tc.code)
			}
			if tc.field != "" && (len(be.Violations) != 1 || be.Violations[0].FieldPath != tc.field) {
				t.Errorf("violations %v, want %s", be.Violations, tc.field)
			}
			if tc.code == "UNAVAILABLE" && !strings.Contains(be.Message, "retry") {
				t.Errorf("message %q does not say to retry", be.Message)
			}
			if len(log.msgs) > 0 {
				t.Errorf("%d events stored", len(log.msgs))
			}
		})
	}
}

// Without Properties, every property has the defaults.
func TestServiceWithoutProperties(t *testing.T) {
	s, log := newTestService(nil)
	if err := send(s, "42", `{"clientId":"c","events":[{"name":"purchase","params":{"value":1,"currency":"JPY"}}]}`); err != nil {
		t.Fatal(err)
	}
	if e := log.events(t)[0]; e.GetKeyEvent() || e.GetCurrencyRate() != 0 {
		t.Errorf("event %v", e)
	}
}

type mpKeys map[string]property.Principal

func (k mpKeys) Authenticate(_ context.Context, secret string) (property.Principal, error) {
	if pr, ok := k[secret]; ok {
		return pr, nil
	}
	return property.Principal{}, apierror.New(apierror.Unauthenticated, "unknown API key")
}

// A Measurement Protocol hit goes through collect: its items are stored
// and its property's settings stamped; a bad item is answered in GA4's
// validation messages.
func TestMeasurementProtocolThroughCollect(t *testing.T) {
	s, log := newTestService(&fakeProperties{props: map[string]property.Property{"42": shop}})
	h := mp.Handler(mp.Config{Keys: mpKeys{"sxm": {PropertyID: "42", Scope: property.Measurement}}, Collect: s.Handlers(), Now: func() time.Time { return testNow }})
	q := mp.CollectPath + "?measurement_id=" + property.MeasurementIDOf("42") + "&api_secret=sxm"
	post := func(body string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", q, strings.NewReader(body)))
		return w
	}
	if w := post(`{"client_id":"1.2","events":[{"name":"purchase","params":{"currency":"USD","value":20,"items":[{"item_id":"SKU1","item_name":"Shirt","price":10,"quantity":2}]}}]}`); w.Code != 204 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	evs := log.events(t)
	if len(evs) != 1 || !evs[0].GetKeyEvent() || evs[0].GetCurrencyRate() != 0.9 || len(evs[0].GetItems()) != 1 ||
		!proto.Equal(evs[0].GetItems()[0], &eventv1.Item{ItemId: "SKU1", ItemName: "Shirt", Price: 10, Quantity: 2}) {
		t.Fatalf("stored %v", evs)
	}
	w := post(`{"client_id":"1.2","events":[{"name":"purchase","params":{"items":[{"item_id":"a"},{"item_id":"b","price":"10"}]}}]}`)
	if w.Code != 400 || !strings.Contains(w.Body.String(), `"fieldPath":"events[0].params.items[1].price"`) {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
}

// A gtag.js hit goes through collect: its pr1…prN items are stored and
// its property's settings stamped.
func TestGtagThroughCollect(t *testing.T) {
	props := &fakeProperties{props: map[string]property.Property{"42": shop}}
	s, log := newTestService(props)
	h := gtag.Handler(gtag.Config{Properties: props, Collect: s.Handlers()})
	q := url.Values{"v": {"2"}, "tid": {property.MeasurementIDOf("42")}, "cid": {"1.2"}}
	body := "en=purchase&cu=USD&epn.value=20&ep.coupon=SPRING&pr1=idSKU1~nmShirt~brAcme~caApparel~vaRed~pr9.99~qt2&pr2=idSKU2~pr0.02"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", gtag.Path+"?"+q.Encode(), strings.NewReader(body)))
	if w.Code != 204 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	evs := log.events(t)
	if len(evs) != 1 {
		t.Fatalf("stored %v", evs)
	}
	e := evs[0]
	want := []*eventv1.Item{
		{ItemId: "SKU1", ItemName: "Shirt", ItemBrand: "Acme", ItemCategory: "Apparel", ItemVariant: "Red", Price: 9.99, Quantity: 2},
		{ItemId: "SKU2", Price: 0.02, Quantity: 1},
	}
	if !e.GetKeyEvent() || e.GetCurrencyRate() != 0.9 || e.GetCustomDimensions()["customEvent:coupon"] != "SPRING" || len(e.GetItems()) != 2 ||
		!proto.Equal(e.GetItems()[0], want[0]) || !proto.Equal(e.GetItems()[1], want[1]) {
		t.Fatalf("stored %v", e)
	}
}

// TestServicePastAllowances: a property with an allowance takes event
// times older than Limits.MaxPast, up to the allowance; the others do not.
func TestServicePastAllowances(t *testing.T) {
	log := &memLog{}
	s := New(Config{Logger: slog.New(slog.DiscardHandler), PastAllowances: map[string]time.Duration{"demo": 8 * 24 * time.Hour}}, log)
	s.now = func() time.Time { return testNow }
	batch := func(age time.Duration) string {
		return `{"clientId":"c","events":[{"name":"page_view","timestampMicros":"` + strconv.FormatInt(testNow.Add(-age).UnixMicro(), 10) + `"}]}`
	}
	for _, tc := range []struct {
		pid string
		age time.Duration
		ok  bool
	}{
		{"demo", 7 * 24 * time.Hour, true},
		{"demo", 8 * 24 * time.Hour, true},
		{"demo", 8*24*time.Hour + time.Second, false},
		{"shop", 71 * time.Hour, true},
		{"shop", 4 * 24 * time.Hour, false},
	} {
		err := send(s, tc.pid, batch(tc.age))
		if (err == nil) != tc.ok {
			t.Errorf("property %s, an event %v old: %v, want ok=%v", tc.pid, tc.age, err, tc.ok)
		}
		if err != nil && tc.pid == "demo" && !strings.Contains(s.batchError(context.Background(), err).Message, "192h0m0s in the past") {
			t.Errorf("the demo property's window: %v", err)
		}
	}
}
