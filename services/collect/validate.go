package collect

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sextant-analytics/sextant/pkg/apierror"
	"github.com/sextant-analytics/sextant/pkg/configcheck"
)

// Limits bounds one batch. Zero (or negative) fields mean the default.
type Limits struct {
	MaxEvents         int           // per batch, default 500
	MaxParams         int           // per event, default 25
	MaxUserProperties int           // default 25
	MaxPast           time.Duration // default 72h
	MaxFuture         time.Duration // default 15m
}

// DefaultLimits returns the limits used when a field of Limits is zero.
func DefaultLimits() Limits {
	return Limits{
		MaxEvents:         500,
		MaxParams:         25,
		MaxUserProperties: 25,
		MaxPast:           72 * time.Hour,
		MaxFuture:         15 * time.Minute,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxEvents <= 0 {
		l.MaxEvents = d.MaxEvents
	}
	if l.MaxParams <= 0 {
		l.MaxParams = d.MaxParams
	}
	if l.MaxUserProperties <= 0 {
		l.MaxUserProperties = d.MaxUserProperties
	}
	if l.MaxPast <= 0 {
		l.MaxPast = d.MaxPast
	}
	if l.MaxFuture <= 0 {
		l.MaxFuture = d.MaxFuture
	}
	return l
}

// Validate reports negative limits (zero means the default).
func (l Limits) Validate() error {
	e := configcheck.New("collect")
	configcheck.NotNegative(e, "Limits.MaxEvents", l.MaxEvents)
	configcheck.NotNegative(e, "Limits.MaxParams", l.MaxParams)
	configcheck.NotNegative(e, "Limits.MaxUserProperties", l.MaxUserProperties)
	configcheck.NotNegative(e, "Limits.MaxPast", l.MaxPast)
	configcheck.NotNegative(e, "Limits.MaxFuture", l.MaxFuture)
	return e.Err()
}

// Length limits, in characters (runes).
const (
	maxIDLen            = 256 // clientId, appInstanceId, userId
	maxEventIDLen       = 64
	maxNameLen          = 40 // event and param names
	maxUserPropNameLen  = 24
	maxParamValueLen    = 100
	maxURLParamLen      = 1000 // page_location, page_referrer
	maxTitleLen         = 300  // page_title
	maxUserPropValueLen = 36
)

// GA4's items: at most maxItems per event; the keys read into
// event.v1.Item (any other key is checked as a parameter's value and not
// stored).
const (
	maxItems  = 200
	iID       = "item_id"
	iName     = "item_name"
	iBrand    = "item_brand"
	iCategory = "item_category"
	iVariant  = "item_variant"
	iPrice    = "price"
	iQuantity = "quantity"
)

// violation is an apierror.Violation with a sort key so that the reported
// list is deterministic (map iteration order is not): request-level fields
// first (order -1), then the events in request order, each by field path.
type violation struct {
	order int
	v     apierror.Violation
}

type violations []violation

func (vs *violations) add(order int, field, code, desc string) {
	*vs = append(*vs, violation{order: order, v: apierror.Violation{Field: field, Code: code, Description: desc}})
}

func (vs violations) err() *apierror.Error {
	slices.SortStableFunc(vs, func(a, b violation) int {
		if a.order != b.order {
			if a.order < b.order {
				return -1
			}
			return 1
		}
		return strings.Compare(a.v.Field, b.v.Field)
	})
	out := make([]apierror.Violation, len(vs))
	for i := range vs {
		out[i] = vs[i].v
	}
	msg := "invalid collect request"
	if len(out) == 1 {
		msg += " (1 violation)"
	} else {
		msg += " (" + strconv.Itoa(len(out)) + " violations)"
	}
	return apierror.Invalid(msg, out...)
}

func eventPath(i int) string { return "events[" + strconv.Itoa(i) + "]" }

// isNameChars reports whether s matches ^[A-Za-z][A-Za-z0-9_]*$.
func isNameChars(s string) bool {
	if s == "" {
		return false
	}
	if c := s[0]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// isReservedEventName reports GA4's reserved event names and prefixes.
func isReservedEventName(s string) bool {
	switch s {
	case "ad_click", "ad_exposure", "ad_impression", "ad_query", "ad_reward",
		"adunit_exposure", "app_background", "app_clear_data", "app_exception",
		"app_remove", "app_store_refund", "app_store_subscription_cancel",
		"app_store_subscription_convert", "app_store_subscription_renew",
		"app_update", "app_upgrade", "dynamic_link_app_open",
		"dynamic_link_app_update", "dynamic_link_first_open", "error",
		"firebase_campaign", "firebase_in_app_message_action",
		"firebase_in_app_message_dismiss", "firebase_in_app_message_impression",
		"notification_dismiss", "notification_foreground", "notification_open",
		"notification_receive", "os_update":
		return true
	}
	return strings.HasPrefix(s, "_") || strings.HasPrefix(s, "firebase_") ||
		strings.HasPrefix(s, "ga_") || strings.HasPrefix(s, "google_")
}

// hasReservedParamPrefix reports the prefixes reserved for parameter and
// user-property names.
func hasReservedParamPrefix(s string) bool {
	return strings.HasPrefix(s, "_") || strings.HasPrefix(s, "firebase_") ||
		strings.HasPrefix(s, "google_") || strings.HasPrefix(s, "gtag.") ||
		strings.HasPrefix(s, "ga_")
}

// eventNameProblem returns a validation code and description, or "" when
// name is an acceptable event name.
func eventNameProblem(name string) (string, string) {
	switch {
	case name == "":
		return apierror.NameInvalid, "event name is required"
	case isReservedEventName(name):
		return apierror.NameReserved, fmt.Sprintf("event name %q is reserved", name)
	case len(name) > maxNameLen:
		return apierror.NameInvalid, fmt.Sprintf("event name is longer than %d characters", maxNameLen)
	case !isNameChars(name):
		return apierror.NameInvalid, "event name must start with a letter and contain only letters, digits and underscores"
	}
	return "", ""
}

// paramNameProblem validates a parameter (userProp false) or user-property
// (userProp true) name.
func paramNameProblem(name string, userProp bool) (string, string) {
	what, max := "parameter", maxNameLen
	if userProp {
		what, max = "user property", maxUserPropNameLen
	}
	switch {
	case name == "":
		return apierror.NameInvalid, what + " name is required"
	case hasReservedParamPrefix(name) && (userProp || name != "ga_session_id" && name != "ga_session_number"):
		return apierror.NameReserved, fmt.Sprintf("%s name %q uses a reserved prefix", what, name)
	case len(name) > max:
		return apierror.NameInvalid, fmt.Sprintf("%s name is longer than %d characters", what, max)
	case !isNameChars(name):
		return apierror.NameInvalid, what + " name must start with a letter and contain only letters, digits and underscores"
	}
	return "", ""
}

// stringProblem checks that s is valid UTF-8 of at most max characters.
func stringProblem(s string, max int) (string, string) {
	if !utf8.ValidString(s) {
		return apierror.ValueInvalid, "value is not valid UTF-8"
	}
	if len(s) > max && utf8.RuneCountInString(s) > max {
		return apierror.ValueOutOfBounds, fmt.Sprintf("value is longer than %d characters", max)
	}
	return "", ""
}

// idProblem checks an identifier (clientId, appInstanceId, userId, an
// item's item_id): stringProblem's rules, and no control character (C0
// controls, NUL included, DEL and C1 controls: unicode.IsControl). An id is
// stored as it came and keys the event log, sessions and users, so one that
// holds a control character is refused rather than cleaned: two ids that
// differ only there would be cleaned into one. Free-text values (page
// titles, item names, parameters' values) may hold them: they are stored
// as sent and cleaned where they become dimension values
// (analytics.Clean, at projection); names are held to letters, digits and
// underscores (isNameChars), and event ids to isEventID's characters.
func idProblem(s string, max int) (string, string) {
	if code, desc := stringProblem(s, max); code != "" {
		return code, desc
	}
	for i, r := range s {
		if unicode.IsControl(r) {
			return apierror.ValueInvalid, fmt.Sprintf("value holds the control character %U at byte %d: ids may not hold control characters", r, i)
		}
	}
	return "", ""
}

// scalarProblem checks that v is a string (of at most maxLen characters), a
// finite number or a bool.
func scalarProblem(v scalar, maxLen int) (string, string) {
	switch v.kind {
	case kindString:
		return stringProblem(v.str, maxLen)
	case kindNumber:
		if math.IsNaN(v.num) || math.IsInf(v.num, 0) {
			return apierror.ValueInvalid, "number is not finite"
		}
		return "", ""
	case kindBool:
		return "", ""
	case kindUnset:
		return apierror.ValueRequired, "value is required"
	default: // null, list, struct (items: a list of its own param)
		return apierror.ValueInvalid, "value must be a string, a number or a boolean"
	}
}

// asInt64 returns f as an int64 when it is integral and in range.
func asInt64(f float64) (int64, bool) {
	// -2^63 is exact in float64; 2^63 is not representable as int64.
	if f != math.Trunc(f) || f < -9223372036854775808.0 || f >= 9223372036854775808.0 {
		return 0, false
	}
	return int64(f), true
}

// intParam reads an integer from a JSON number or a string of decimal digits.
func intParam(v scalar) (int64, bool) {
	switch v.kind {
	case kindNumber:
		return asInt64(v.num)
	case kindString:
		s := v.str
		if s == "" || len(s) > 19 {
			return 0, false
		}
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return 0, false
			}
		}
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil
	}
	return 0, false
}

// isEventID reports whether s is at most 64 characters of [A-Za-z0-9._:-].
func isEventID(s string) bool {
	if len(s) > maxEventIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// isCountryCode reports two ASCII letters.
func isCountryCode(s string) bool {
	return len(s) == 2 && isASCIILetter(s[0]) && isASCIILetter(s[1])
}

func isASCIILetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
