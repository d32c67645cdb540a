package collect

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/sextant-analytics/sextant/pkg/apierror"
)

// A batch is read from its wire format into the small structs below: every
// string is a substring of one copy of the request, a parameter is a name
// and a scalar (no message or map entry per parameter), an item of an
// items list is its keys and scalars, and the slices are reused from
// batch to batch. The reader follows protobuf's rules where a
// parser would: the last value of a singular field wins, occurrences of a
// message field merge, a map keeps the last entry of a key, unknown fields
// are skipped; strings must be UTF-8 (proto3's rule), reported per field.

// Wire field numbers of sextant.collect.v1 and google.protobuf.Value.
const (
	reqPropertyID     = 1
	reqClientID       = 2
	reqAppInstanceID  = 3
	reqUserID         = 4
	reqTimestamp      = 5
	reqUserProperties = 6
	reqConsent        = 7
	reqUserLocation   = 8
	reqDevice         = 9
	reqUserAgent      = 10
	reqIPOverride     = 11
	reqEvents         = 12
	reqValidateOnly   = 13

	evName      = 1
	evParams    = 2
	evEventID   = 3
	evTimestamp = 4

	mapKey   = 1
	mapValue = 2

	userPropValue = 1

	valNull   = 1
	valNumber = 2
	valString = 3
	valBool   = 4
	valStruct = 5
	valList   = 6
)

// valueKind is the kind of a google.protobuf.Value.
type valueKind uint8

const (
	kindUnset     valueKind = iota // no kind (or no value at all)
	kindNumber                     // number_value
	kindString                     // string_value
	kindBool                       // bool_value
	kindComposite                  // null_value
	kindStruct                     // struct_value
	kindList                       // list_value
)

// scalar is a google.protobuf.Value as collect reads it.
type scalar struct {
	kind valueKind
	num  float64
	str  string
	flag bool
}

// param is one entry of a params or user_properties map.
type param struct {
	name string
	val  scalar
	keep bool // stays in the stored event's map (set once validated)
}

// wireEvent is one collect.v1.Event.
type wireEvent struct {
	name, id string
	ts       int64
	params   []param
	// The elements of its items param, when that is a list: the first
	// maxItems+1 of itemCount.
	items     []wireItem
	itemCount int

	// Set once validated.
	rate float64 // currency_rate
	key  bool    // key_event
}

// wireItem is one element of an items list: a struct's entries (the last
// of each key), or an element of another kind (refused). The typed fields
// are set once the item is validated.
type wireItem struct {
	kind   valueKind
	fields []param

	id, name, brand, category, variant string
	price                              float64
	quantity                           int64
}

// wireDevice is collect.v1.Device.
type wireDevice struct {
	category, language, browser, browserVersion, os, osVersion string
	screenResolution, model, brand                             string
}

// wireRequest is a collect.v1.CollectRequest.
type wireRequest struct {
	propertyID, clientID, appInstanceID, userID string
	userAgent, ipOverride, countryID            string
	city, regionID                              string // userLocation's
	ts                                          int64
	validateOnly                                bool // check the batch, append nothing
	adUserData, adPersonalization, analytics    string
	device                                      wireDevice
	userProps                                   []param
	events                                      []wireEvent

	params     []param    // the events' params, in one slice
	items      []wireItem // the events' items, in one slice
	itemFields []param    // the items' fields, in one slice
	bad        violations
}

// reset empties r, keeping its slices' memory.
func (r *wireRequest) reset() {
	*r = wireRequest{userProps: r.userProps[:0], events: r.events[:0], params: r.params[:0],
		items: r.items[:0], itemFields: r.itemFields[:0], bad: r.bad[:0]}
}

// reader reads a batch into r.
type reader struct {
	src  string // the batch, copied once: strings read are its substrings
	base []byte // the batch's bytes, of which every slice read is a subslice
	r    *wireRequest
	list [][]byte // the encodings of the last list value entry read
}

// str returns v, a subslice of r.base, as a substring of r.src.
func (rd *reader) str(v []byte) string {
	if len(v) == 0 {
		return ""
	}
	off := cap(rd.base) - cap(v)
	return rd.src[off : off+len(v)]
}

// utf8Str is str for a string field, reporting one that is not UTF-8.
func (rd *reader) utf8Str(v []byte, order int, path func() string) string {
	if !utf8.Valid(v) {
		rd.r.bad.add(order, path(), apierror.ValueInvalid, "value is not valid UTF-8")
		return ""
	}
	return rd.str(v)
}

// field is one decoded field.
type field struct {
	num protowire.Number
	typ protowire.Type
	v   uint64 // varint and fixed64 values
	b   []byte // bytes values
}

// next reads the field at the start of b; n is its length, or < 0 when b
// does not start with a well-formed field.
func next(b []byte) (f field, n int) {
	num, typ, tn := protowire.ConsumeTag(b)
	if tn < 0 {
		return f, tn
	}
	f.num, f.typ = num, typ
	var m int
	switch typ {
	case protowire.VarintType:
		f.v, m = protowire.ConsumeVarint(b[tn:])
	case protowire.Fixed64Type:
		f.v, m = protowire.ConsumeFixed64(b[tn:])
	case protowire.BytesType:
		f.b, m = protowire.ConsumeBytes(b[tn:])
	default:
		m = protowire.ConsumeFieldValue(num, typ, b[tn:])
	}
	if m < 0 {
		return f, m
	}
	return f, tn + m
}

// decode reads a CollectRequest's bytes into r (reset first). It fails
// only when b is not a protobuf message; strings that are not UTF-8 are
// listed in r.bad.
func decode(b []byte, r *wireRequest) error {
	r.reset()
	rd := reader{src: string(b), base: b, r: r}
	for rest := b; len(rest) > 0; {
		f, n := next(rest)
		if n < 0 {
			return errMalformed("batch")
		}
		rest = rest[n:]
		if f.typ == protowire.VarintType {
			switch f.num {
			case reqTimestamp:
				r.ts = int64(f.v)
			case reqValidateOnly:
				r.validateOnly = f.v != 0
			}
			continue
		}
		if f.typ != protowire.BytesType {
			continue
		}
		switch f.num {
		case reqPropertyID:
			r.propertyID = rd.utf8Str(f.b, -1, constPath("propertyId"))
		case reqClientID:
			r.clientID = rd.utf8Str(f.b, -1, constPath("clientId"))
		case reqAppInstanceID:
			r.appInstanceID = rd.utf8Str(f.b, -1, constPath("appInstanceId"))
		case reqUserID:
			r.userID = rd.utf8Str(f.b, -1, constPath("userId"))
		case reqUserAgent:
			r.userAgent = rd.utf8Str(f.b, -1, constPath("userAgent"))
		case reqIPOverride:
			r.ipOverride = rd.utf8Str(f.b, -1, constPath("ipOverride"))
		case reqUserProperties:
			p, err := rd.entry(f.b, -1, true)
			if err != nil {
				return err
			}
			r.userProps = append(r.userProps, p)
		case reqConsent:
			if err := rd.consent(f.b); err != nil {
				return err
			}
		case reqUserLocation:
			if err := rd.fields(f.b, "userLocation", func(f field, path func() string) {
				if f.typ != protowire.BytesType {
					return
				}
				switch f.num {
				case 1:
					r.countryID = rd.utf8Str(f.b, -1, path)
				case 2:
					r.city = rd.utf8Str(f.b, -1, path)
				case 3:
					r.regionID = rd.utf8Str(f.b, -1, path)
				}
			}); err != nil {
				return err
			}
		case reqDevice:
			if err := rd.device(f.b); err != nil {
				return err
			}
		case reqEvents:
			if err := rd.event(f.b); err != nil {
				return err
			}
		}
	}
	r.userProps = lastOfEachName(r.userProps)
	return nil
}

func constPath(s string) func() string { return func() string { return s } }

func errMalformed(what string) error {
	return apierror.Invalid("malformed batch", apierror.Violation{Field: what, Code: apierror.ValueInvalid, Description: "not a well-formed protobuf message"})
}

// fields calls fn with every field of the message b.
func (rd *reader) fields(b []byte, what string, fn func(f field, path func() string)) error {
	for len(b) > 0 {
		f, n := next(b)
		if n < 0 {
			return errMalformed(what)
		}
		b = b[n:]
		fn(f, func() string { return what + "." + fieldName(what, f.num) })
	}
	return nil
}

// fieldName names the string fields of Consent, UserLocation and Device
// in violations (as JSON names them).
func fieldName(msg string, num protowire.Number) string {
	var names []string
	switch msg {
	case "consent":
		names = []string{"", "adUserData", "adPersonalization", "analyticsStorage"}
	case "userLocation":
		names = []string{"", "countryId", "city", "regionId"}
	case "device":
		names = []string{"", "category", "language", "screenResolution", "operatingSystem",
			"operatingSystemVersion", "model", "brand", "browser", "browserVersion"}
	}
	if int(num) < len(names) {
		return names[num]
	}
	return strconv.Itoa(int(num))
}

func (rd *reader) consent(b []byte) error {
	r := rd.r
	return rd.fields(b, "consent", func(f field, path func() string) {
		if f.typ != protowire.BytesType {
			return
		}
		switch f.num {
		case 1:
			r.adUserData = rd.utf8Str(f.b, -1, path)
		case 2:
			r.adPersonalization = rd.utf8Str(f.b, -1, path)
		case 3:
			r.analytics = rd.utf8Str(f.b, -1, path)
		}
	})
}

func (rd *reader) device(b []byte) error {
	d := &rd.r.device
	return rd.fields(b, "device", func(f field, path func() string) {
		if f.typ != protowire.BytesType {
			return
		}
		s := rd.utf8Str(f.b, -1, path) // every string field must be UTF-8
		switch f.num {
		case 1:
			d.category = s
		case 2:
			d.language = s
		case 3:
			d.screenResolution = s
		case 6:
			d.model = s
		case 7:
			d.brand = s
		case 4:
			d.os = s
		case 5:
			d.osVersion = s
		case 8:
			d.browser = s
		case 9:
			d.browserVersion = s
		}
	})
}

func (rd *reader) event(b []byte) error {
	r := rd.r
	i := len(r.events)
	first := len(r.params)
	ev := wireEvent{}
	for len(b) > 0 {
		f, n := next(b)
		if n < 0 {
			return errMalformed(eventPath(i))
		}
		b = b[n:]
		switch {
		case f.num == evTimestamp && f.typ == protowire.VarintType:
			ev.ts = int64(f.v)
		case f.typ != protowire.BytesType:
		case f.num == evName:
			ev.name = rd.utf8Str(f.b, i, func() string { return eventPath(i) + ".name" })
		case f.num == evEventID:
			ev.id = rd.utf8Str(f.b, i, func() string { return eventPath(i) + ".eventId" })
		case f.num == evParams:
			p, err := rd.entry(f.b, i, false)
			if err != nil {
				return err
			}
			r.params = append(r.params, p)
			if p.name == pItems { // the last entry of a key wins
				ev.items, ev.itemCount = nil, 0
				if p.val.kind == kindList {
					rd.items(rd.list, &ev)
				}
			}
		}
	}
	ev.params = lastOfEachName(r.params[first:])
	r.params = r.params[:first+len(ev.params)]
	r.events = append(r.events, ev)
	return nil
}

// entry reads one map entry: a params entry of events[order] (string to
// Value) or, when userProp, a user_properties entry (string to
// UserProperty). When a params entry's value is a list, rd.list holds its
// encoding: the ListValues merged into it, in order.
func (rd *reader) entry(b []byte, order int, userProp bool) (param, error) {
	var p param
	what := func() string {
		if userProp {
			return "userProperties"
		}
		return eventPath(order) + ".params"
	}
	var key []byte
	badValue := false
	for len(b) > 0 {
		f, n := next(b)
		if n < 0 {
			return p, errMalformed(what())
		}
		b = b[n:]
		if f.typ != protowire.BytesType {
			continue
		}
		switch f.num {
		case mapKey:
			key = f.b
		case mapValue:
			v := f.b
			if userProp {
				// UserProperty{value}: its value fields, merged.
				for len(v) > 0 {
					g, m := next(v)
					if m < 0 {
						return p, errMalformed(what())
					}
					v = v[m:]
					if g.num == userPropValue && g.typ == protowire.BytesType {
						if !rd.value(g.b, &p.val, &badValue, nil) {
							return p, errMalformed(what())
						}
					}
				}
				continue
			}
			if !rd.value(v, &p.val, &badValue, &rd.list) {
				return p, errMalformed(what())
			}
		}
	}
	if !utf8.Valid(key) {
		rd.r.bad.add(order, what()+"."+strings.ToValidUTF8(string(key), "\uFFFD"), apierror.NameInvalid, "name is not valid UTF-8")
		return p, nil
	}
	p.name = rd.str(key)
	if badValue {
		rd.r.bad.add(order, what()+"."+p.name, apierror.ValueInvalid, "value is not valid UTF-8")
	}
	return p, nil
}

// value reads a google.protobuf.Value into v (merging: the last kind set
// wins, as for any oneof, and the occurrences of a struct or a list merge),
// setting *badUTF8 when a string in it is not UTF-8. A list's encodings
// are kept in *list when list is not nil (from the first list of v on). It reports false when b is
// not well formed (down to the leaves of a struct or list).
func (rd *reader) value(b []byte, v *scalar, badUTF8 *bool, list *[][]byte) bool {
	for len(b) > 0 {
		f, n := next(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		switch {
		case f.num == valNumber && f.typ == protowire.Fixed64Type:
			*v = scalar{kind: kindNumber, num: math.Float64frombits(f.v)}
		case f.num == valString && f.typ == protowire.BytesType:
			*v = scalar{kind: kindString, str: rd.str(f.b)}
			*badUTF8 = *badUTF8 || !utf8.Valid(f.b)
		case f.num == valBool && f.typ == protowire.VarintType:
			*v = scalar{kind: kindBool, flag: f.v != 0}
		case f.num == valNull && f.typ == protowire.VarintType:
			*v = scalar{kind: kindComposite}
		case f.num == valStruct && f.typ == protowire.BytesType:
			ok, valid := wellFormed(f.b, msgStruct, maxDepth)
			if !ok {
				return false
			}
			*badUTF8 = *badUTF8 || !valid
			*v = scalar{kind: kindStruct}
		case f.num == valList && f.typ == protowire.BytesType:
			ok, valid := wellFormed(f.b, msgList, maxDepth)
			if !ok {
				return false
			}
			*badUTF8 = *badUTF8 || !valid
			if list != nil {
				if v.kind != kindList {
					*list = (*list)[:0]
				}
				*list = append(*list, f.b)
			}
			*v = scalar{kind: kindList}
		}
	}
	return true
}

// Messages of google/protobuf/struct.proto, for wellFormed.
type structMsg uint8

const (
	msgValue structMsg = iota
	msgStruct
	msgEntry // an entry of Struct.fields
	msgList
)

// maxDepth bounds the nesting of structs and lists, as protobuf's
// recursion limit does.
const maxDepth = protowire.DefaultRecursionLimit - 8

// wellFormed reports whether b is a well-formed message of type m, down
// to its leaves, and whether its strings are UTF-8: what protobuf checks
// when it decodes one.
func wellFormed(b []byte, m structMsg, depth int) (ok, validUTF8 bool) {
	if depth <= 0 {
		return false, true
	}
	validUTF8 = true
	for len(b) > 0 {
		f, n := next(b)
		if n < 0 {
			return false, validUTF8
		}
		b = b[n:]
		if f.typ != protowire.BytesType {
			continue
		}
		var sub structMsg
		switch {
		case m == msgValue && f.num == valString, m == msgEntry && f.num == mapKey:
			validUTF8 = validUTF8 && utf8.Valid(f.b)
			continue
		case m == msgValue && f.num == valStruct:
			sub = msgStruct
		case m == msgValue && f.num == valList:
			sub = msgList
		case m == msgStruct && f.num == 1:
			sub = msgEntry
		case m == msgEntry && f.num == mapValue, m == msgList && f.num == 1:
			sub = msgValue
		default:
			continue
		}
		ok, valid := wellFormed(f.b, sub, depth-1)
		if !ok {
			return false, validUTF8
		}
		validUTF8 = validUTF8 && valid
	}
	return true, validUTF8
}

// items reads the elements of an items list (its ListValues' encodings,
// well formed) into ev: the first maxItems+1 are kept, all counted.
func (rd *reader) items(list [][]byte, ev *wireEvent) {
	r := rd.r
	first := len(r.items)
	n := 0
	for _, b := range list {
		for len(b) > 0 {
			f, m := next(b)
			if m < 0 {
				break // not reached: the list is well formed
			}
			b = b[m:]
			if f.num != 1 || f.typ != protowire.BytesType {
				continue
			}
			if n++; n <= maxItems+1 {
				r.items = append(r.items, rd.item(f.b))
			}
		}
	}
	ev.items, ev.itemCount = r.items[first:], n
}

// item reads one element of an items list (a Value, well formed).
func (rd *reader) item(b []byte) wireItem {
	r := rd.r
	first := len(r.itemFields)
	var it wireItem
	for len(b) > 0 {
		f, n := next(b)
		if n < 0 {
			break // not reached: the value is well formed
		}
		b = b[n:]
		kind := kindUnset
		switch {
		case f.num == valStruct && f.typ == protowire.BytesType:
			if it.kind != kindStruct { // a struct after another kind starts afresh
				r.itemFields = r.itemFields[:first]
				it.kind = kindStruct
			}
			for s := f.b; len(s) > 0; {
				g, m := next(s)
				if m < 0 {
					break
				}
				s = s[m:]
				if g.num == 1 && g.typ == protowire.BytesType {
					r.itemFields = append(r.itemFields, rd.structEntry(g.b))
				}
			}
			continue
		case f.num == valNumber && f.typ == protowire.Fixed64Type:
			kind = kindNumber
		case f.num == valString && f.typ == protowire.BytesType:
			kind = kindString
		case f.num == valBool && f.typ == protowire.VarintType:
			kind = kindBool
		case f.num == valNull && f.typ == protowire.VarintType:
			kind = kindComposite
		case f.num == valList && f.typ == protowire.BytesType:
			kind = kindList
		default:
			continue
		}
		it.kind = kind
		r.itemFields = r.itemFields[:first]
	}
	it.fields = lastOfEachName(r.itemFields[first:])
	r.itemFields = r.itemFields[:first+len(it.fields)]
	return it
}

// structEntry reads an entry of a Struct's fields (well formed, UTF-8).
func (rd *reader) structEntry(b []byte) param {
	var p param
	var bad bool
	for len(b) > 0 {
		f, n := next(b)
		if n < 0 {
			break
		}
		b = b[n:]
		switch {
		case f.num == mapKey && f.typ == protowire.BytesType:
			p.name = rd.str(f.b)
		case f.num == mapValue && f.typ == protowire.BytesType:
			rd.value(f.b, &p.val, &bad, nil)
		}
	}
	return p
}

// lastOfEachName drops every entry of ps whose name a later entry has (a
// map keeps the last), in place, and returns what is left in its order.
func lastOfEachName(ps []param) []param {
	if len(ps) < 2 {
		return ps
	}
	var seen map[string]struct{}
	if len(ps) > 16 {
		seen = make(map[string]struct{}, len(ps))
	}
	// Walk backwards moving first sightings to the end, then shift them
	// back to the start.
	keep := len(ps)
	for i := len(ps) - 1; i >= 0; i-- {
		dup := false
		if seen != nil {
			_, dup = seen[ps[i].name]
			seen[ps[i].name] = struct{}{}
		} else {
			for _, q := range ps[keep:] {
				if q.name == ps[i].name {
					dup = true
					break
				}
			}
		}
		if !dup {
			keep--
			ps[keep] = ps[i]
		}
	}
	n := copy(ps, ps[keep:])
	return ps[:n]
}
