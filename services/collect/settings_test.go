package collect

import (
	"maps"
	"testing"

	"github.com/sextant-analytics/sextant/pkg/property"
)

func TestSettingsStamped(t *testing.T) {
	eur := Settings{Currency: "EUR", Rates: map[string]float64{"USD": 0.92, "CHF": 1.05, "BAD": -1}}
	defs := Settings{
		KeyEvents:       []string{"purchase", "sign_up"},
		EventDimensions: []string{"coupon", "n", "f", "flag", "page_title", "missing"},
		UserDimensions:  []string{"plan", "age"},
		EventMetrics:    []string{"tax", "n", "coupon", "f"},
	}
	type want struct {
		key     bool
		rate    float64
		dims    map[string]string
		metrics map[string]float64
	}
	for _, tc := range []struct {
		name string
		set  Settings
		js   string
		want []want  // per event
		bad  []wantV // or the violations
	}{
		{"defaults: no settings", Settings{}, ev(`{"name":"purchase","params":{"value":3}}`), []want{{rate: 1}}, nil},
		{"no amount, no rate", eur, ev(`{"name":"purchase","params":{"currency":"USD"}}`), []want{{}}, nil},
		{"value in the property's currency", eur, ev(`{"name":"purchase","params":{"value":3,"currency":"EUR"}}`), []want{{rate: 1}}, nil},
		{"value without a currency", eur, ev(`{"name":"purchase","params":{"value":3}}`), []want{{rate: 1}}, nil},
		{"value converted", eur, ev(`{"name":"purchase","params":{"value":3,"currency":"USD"}}`), []want{{rate: 0.92}}, nil},
		{"a string value is no amount", eur, ev(`{"name":"purchase","params":{"value":"3","currency":"JPY"}}`), []want{{}}, nil},
		{"items' prices converted", eur, ev(`{"name":"purchase","params":{"currency":"CHF","items":[{"item_id":"a","price":0}]}}`), []want{{rate: 1.05}}, nil},
		{"items without prices are no amount", eur, ev(`{"name":"purchase","params":{"currency":"JPY","items":[{"item_id":"a"}]}}`), []want{{}}, nil},
		{"no rate for the currency", eur, `{"clientId":"c","events":[{"name":"a"},{"name":"purchase","params":{"value":3,"currency":"JPY"}}]}`, nil,
			[]wantV{{"events[1].params.currency", vInvalid}}},
		{"a rate that is not positive", eur, ev(`{"name":"purchase","params":{"value":3,"currency":"BAD"}}`), nil, []wantV{{"events[0].params.currency", vInvalid}}},
		{"no rates at all: as sent", Settings{Currency: "GBP"}, ev(`{"name":"purchase","params":{"value":3,"currency":"JPY"}}`), []want{{}}, nil},
		{"USD when the property has no currency", Settings{Rates: map[string]float64{"EUR": 1.1}}, `{"clientId":"c","events":[
			{"name":"purchase","params":{"value":3,"currency":"USD"}},{"name":"purchase","params":{"value":3,"currency":"EUR"}}]}`,
			[]want{{rate: 1}, {rate: 1.1}}, nil},
		{"currency in lower case", eur, ev(`{"name":"purchase","params":{"value":3,"currency":"usd"}}`), []want{{rate: 0.92}}, nil},
		{"currency not letters", Settings{}, ev(`{"name":"purchase","params":{"currency":"U$D"}}`), nil, []wantV{{"events[0].params.currency", vInvalid}}},
		{"currency a number", Settings{}, ev(`{"name":"purchase","params":{"currency":978}}`), nil, []wantV{{"events[0].params.currency", vInvalid}}},
		{"currency too long", Settings{}, ev(`{"name":"purchase","params":{"currency":"EURO"}}`), nil, []wantV{{"events[0].params.currency", vInvalid}}},
		{"key events", defs, `{"clientId":"c","events":[{"name":"purchase"},{"name":"page_view"},{"name":"sign_up"}]}`,
			[]want{{key: true}, {}, {key: true}}, nil},
		{"custom definitions", defs, `{"clientId":"c","userProperties":{"plan":{"value":"pro"},"age":{"value":42},"other":{"value":"x"}},"events":[
			{"name":"a","params":{"coupon":"X","n":7,"f":1.5,"flag":true,"tax":2,"page_title":"T","other":1}},
			{"name":"b"}]}`,
			[]want{
				{dims: map[string]string{"customEvent:coupon": "X", "customEvent:n": "7", "customEvent:f": "1.5", "customEvent:flag": "true",
					"customUser:plan": "pro", "customUser:age": "42"},
					metrics: map[string]float64{"customEvent:tax": 2, "customEvent:n": 7, "customEvent:f": 1.5}},
				{dims: map[string]string{"customUser:plan": "pro", "customUser:age": "42"}},
			}, nil},
		{"numbers as text", defs, ev(`{"name":"a","params":{"n":1e21,"f":-0.000001}}`),
			[]want{{dims: map[string]string{"customEvent:n": "1e+21", "customEvent:f": "-1e-06"}, metrics: map[string]float64{"customEvent:n": 1e21, "customEvent:f": -0.000001}}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			meta := testMeta()
			meta.Settings = tc.set
			req := parseReq(t, tc.js)
			evs, err := buildEvents(req, meta, Limits{})
			checkInvariants(t, req, meta, Limits{}, evs, err)
			if tc.bad != nil {
				if err == nil {
					t.Fatalf("accepted, want %v", tc.bad)
				}
				got := asInvalid(t, err)
				if len(got) != len(tc.bad) {
					t.Fatalf("got %+v, want %v", got, tc.bad)
				}
				for i, w := range tc.bad {
					if got[i].Field != w.field || got[i].Code != w.code {
						t.Errorf("violation %d = %s %s (%s), want %s %s", i, got[i].Field, got[i].Code, got[i].Description, w.field, w.code)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("rejected: %v", err)
			}
			for i, w := range tc.want {
				e := evs[i]
				if e.GetKeyEvent() != w.key || e.GetCurrencyRate() != w.rate {
					t.Errorf("event %d: key %v rate %v, want %v %v", i, e.GetKeyEvent(), e.GetCurrencyRate(), w.key, w.rate)
				}
				if !maps.Equal(e.GetCustomDimensions(), w.dims) || !maps.Equal(e.GetCustomMetrics(), w.metrics) {
					t.Errorf("event %d: dimensions %v metrics %v, want %v %v", i, e.GetCustomDimensions(), e.GetCustomMetrics(), w.dims, w.metrics)
				}
			}
		})
	}
}

func TestNoRateMessage(t *testing.T) {
	meta := testMeta()
	meta.Settings = Settings{Currency: "EUR", Rates: map[string]float64{"USD": 0.9}}
	_, err := buildEvents(parseReq(t, ev(`{"name":"purchase","params":{"value":1,"currency":"JPY"}}`)), meta, Limits{})
	got := asInvalid(t, err)
	if len(got) != 1 || got[0].Description != "property prop-1 has no rate for JPY" {
		t.Fatalf("got %+v", got)
	}
}

func TestSettingsOf(t *testing.T) {
	p := property.Property{ID: "1", CurrencyCode: "chf", CurrencyRates: map[string]float64{"EUR": 0.95}, KeyEvents: []string{"k"},
		CustomEventDimensions: []string{"d"}, CustomUserDimensions: []string{"u"}, CustomEventMetrics: []string{"m"}}
	s := SettingsOf(p)
	if s.Currency != "CHF" || s.Rates["EUR"] != 0.95 || s.KeyEvents[0] != "k" || s.EventDimensions[0] != "d" ||
		s.UserDimensions[0] != "u" || s.EventMetrics[0] != "m" {
		t.Fatalf("SettingsOf = %+v", s)
	}
	if r, ok := s.rate("CHF"); r != 1 || !ok {
		t.Fatalf("rate of the property's own currency = %v %v", r, ok)
	}
}
