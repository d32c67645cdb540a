package collect

import (
	"context"
	"math"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/sextant-analytics/sextant/pkg/property"
)

// Properties finds a property's settings (the registry, whose lookups are
// cached and kept fresh by its change feed).
type Properties interface {
	Get(ctx context.Context, id string) (property.Property, error)
}

// Settings are what collect stamps a property's events with, read from the
// property once per batch (SettingsOf). The zero value is a property's
// defaults: USD, no rates, no key events, no custom definitions.
type Settings struct {
	// Currency is the ISO 4217 code amounts are reported in ("" is USD).
	Currency string
	// Rates convert into Currency: one unit of the key's currency (upper
	// case) is worth the value. With none, amounts count as sent.
	Rates map[string]float64
	// KeyEvents are the event names stamped key_event.
	KeyEvents []string
	// Custom definitions: event parameters (EventDimensions) and user
	// properties (UserDimensions) copied as text into custom_dimensions,
	// numeric event parameters (EventMetrics) into custom_metrics.
	EventDimensions, UserDimensions, EventMetrics []string
}

// SettingsOf reads a property's settings; it shares p's slices and map.
func SettingsOf(p property.Property) Settings {
	return Settings{
		Currency:        strings.ToUpper(p.CurrencyCode),
		Rates:           p.CurrencyRates,
		KeyEvents:       p.KeyEvents,
		EventDimensions: p.CustomEventDimensions,
		UserDimensions:  p.CustomUserDimensions,
		EventMetrics:    p.CustomEventMetrics,
	}
}

// Prefixes of the custom definitions' report names.
const (
	customEventPrefix = "customEvent:"
	customUserPrefix  = "customUser:"
)

func (s *Settings) isKeyEvent(name string) bool {
	return len(s.KeyEvents) > 0 && slices.Contains(s.KeyEvents, name)
}

// rate is the currency_rate of an event whose amounts are in cur (""
// when the event does not say: the property's currency): 1 for the
// property's currency, the property's rate for another, 0 when the
// property has no rates (amounts count as sent). ok is false when the
// property has rates, but none (positive and finite) for cur.
func (s *Settings) rate(cur string) (r float64, ok bool) {
	home := s.Currency
	if home == "" {
		home = "USD"
	}
	if cur == "" || cur == home {
		return 1, true
	}
	if r, set := s.Rates[cur]; set && r > 0 && !math.IsInf(r, 0) {
		return r, true
	}
	return 0, len(s.Rates) == 0
}

// isCurrencyCode reports three ASCII letters (ISO 4217's shape, in any
// case: tags send "usd" as well as "USD").
func isCurrencyCode(s string) bool {
	return len(s) == 3 && isASCIILetter(s[0]) && isASCIILetter(s[1]) && isASCIILetter(s[2])
}

// appendText appends a validated scalar as custom dimensions hold it:
// strings as sent, integers in decimal, other numbers in the shortest
// form that reads back the same, booleans as true or false.
func appendText(b []byte, v scalar) []byte {
	switch v.kind {
	case kindString:
		return append(b, v.str...)
	case kindNumber:
		if n, ok := asInt64(v.num); ok {
			return strconv.AppendInt(b, n, 10)
		}
		return strconv.AppendFloat(b, v.num, 'g', -1, 64)
	default:
		return strconv.AppendBool(b, v.flag)
	}
}

// appendDimension appends a custom_dimensions entry (prefix+name: the
// scalar's text).
func appendDimension(b []byte, prefix, name string, v scalar) []byte {
	var tmp [32]byte
	var text []byte
	if v.kind != kindString {
		text = appendText(tmp[:0], v)
	}
	n := len(text)
	if v.kind == kindString {
		n = len(v.str)
	}
	key := len(prefix) + len(name)
	b = protowire.AppendTag(b, 24, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(1+protowire.SizeBytes(key)+1+protowire.SizeBytes(n)))
	b = protowire.AppendTag(b, mapKey, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(key))
	b = append(append(b, prefix...), name...)
	b = protowire.AppendTag(b, mapValue, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(n))
	if v.kind == kindString {
		return append(b, v.str...)
	}
	return append(b, text...)
}

// appendMetric appends a custom_metrics entry (prefix+name: f).
func appendMetric(b []byte, prefix, name string, f float64) []byte {
	key := len(prefix) + len(name)
	b = protowire.AppendTag(b, 25, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(1+protowire.SizeBytes(key)+1+8))
	b = protowire.AppendTag(b, mapKey, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(key))
	b = append(append(b, prefix...), name...)
	b = protowire.AppendTag(b, mapValue, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, math.Float64bits(f))
}
