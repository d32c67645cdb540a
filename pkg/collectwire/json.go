package collectwire

import (
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	collectv1 "github.com/sextant-analytics/sextant/gen/sextant/collect/v1"
)

// FromJSON converts a CollectRequest in JSON (proto3's JSON mapping, read
// strictly: an unknown field is an error) to its wire format.
//
// Decoding the JSON into messages (a map entry and a Value message per
// parameter) and encoding them again was most of a single-event REST
// request's work, so the shapes clients send are transcoded in one pass
// over the text, without messages: objects with the JSON field names,
// strings, integers, numbers, booleans, and lists and objects of them (GA4's
// items). Anything else — null, proto field names, quoted or exponent
// integers, a field or key given twice, malformed or unknown input — goes
// through protojson, which then also gives the exact error. Both ways give the same message
// (FuzzFromJSON checks it).
func FromJSON(body []byte) ([]byte, error) {
	t := transcoder{in: body, out: make([]byte, 0, len(body))}
	if t.request() {
		return t.out, nil
	}
	req := &collectv1.CollectRequest{}
	if err := (protojson.UnmarshalOptions{}).Unmarshal(body, req); err != nil {
		return nil, err
	}
	return proto.Marshal(req)
}

// transcoder reads JSON from in and appends protobuf to out. Its methods
// report false for anything the fast path leaves to protojson.
type transcoder struct {
	in  []byte
	i   int
	out []byte
	buf []byte // scratch for strings with escapes
}

func (t *transcoder) ws() {
	for t.i < len(t.in) {
		switch t.in[t.i] {
		case ' ', '\t', '\n', '\r':
			t.i++
		default:
			return
		}
	}
}

// consume skips whitespace and the byte c.
func (t *transcoder) consume(c byte) bool {
	t.ws()
	if t.i < len(t.in) && t.in[t.i] == c {
		t.i++
		return true
	}
	return false
}

// object reads an object, calling field with each key (the transcoder is
// then at the value).
func (t *transcoder) object(field func(key []byte) bool) bool {
	if !t.consume('{') {
		return false
	}
	if t.consume('}') {
		return true
	}
	for {
		t.ws()
		key, ok := t.str()
		if !ok || !t.consume(':') {
			return false
		}
		t.ws()
		if !field(key) {
			return false
		}
		if t.consume('}') {
			return true
		}
		if !t.consume(',') {
			return false
		}
	}
}

// str reads a string; the bytes returned are valid until the next call.
func (t *transcoder) str() ([]byte, bool) {
	if t.i >= len(t.in) || t.in[t.i] != '"' {
		return nil, false
	}
	t.i++
	start := t.i
	for t.i < len(t.in) {
		c := t.in[t.i]
		switch {
		case c == '"':
			s := t.in[start:t.i]
			t.i++
			return s, utf8.Valid(s)
		case c == '\\':
			return t.escaped(start)
		case c < 0x20:
			return nil, false
		}
		t.i++
	}
	return nil, false
}

// escaped finishes a string with escapes, decoding it into t.buf.
func (t *transcoder) escaped(start int) ([]byte, bool) {
	b := append(t.buf[:0], t.in[start:t.i]...)
	for t.i < len(t.in) {
		c := t.in[t.i]
		switch {
		case c == '"':
			t.i++
			t.buf = b
			return b, utf8.Valid(b)
		case c < 0x20:
			return nil, false
		case c != '\\':
			b = append(b, c)
			t.i++
			continue
		}
		if t.i+1 >= len(t.in) {
			return nil, false
		}
		e := t.in[t.i+1]
		t.i += 2
		switch e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := t.hex4()
			if !ok {
				return nil, false
			}
			if utf16.IsSurrogate(r) {
				if t.i+1 >= len(t.in) || t.in[t.i] != '\\' || t.in[t.i+1] != 'u' {
					return nil, false
				}
				t.i += 2
				r2, ok := t.hex4()
				if !ok {
					return nil, false
				}
				if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
					return nil, false
				}
			}
			b = utf8.AppendRune(b, r)
		default:
			return nil, false
		}
	}
	return nil, false
}

func (t *transcoder) hex4() (rune, bool) {
	if t.i+4 > len(t.in) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(t.in[t.i:t.i+4]), 16, 16)
	if err != nil {
		return 0, false
	}
	t.i += 4
	return rune(n), true
}

// number reads a JSON number's literal (RFC 8259's grammar).
func (t *transcoder) number() ([]byte, bool) {
	start := t.i
	if t.i < len(t.in) && t.in[t.i] == '-' {
		t.i++
	}
	digits := func() int {
		n := 0
		for t.i < len(t.in) && '0' <= t.in[t.i] && t.in[t.i] <= '9' {
			t.i++
			n++
		}
		return n
	}
	first := t.i
	if n := digits(); n == 0 || (n > 1 && t.in[first] == '0') {
		return nil, false
	}
	if t.i < len(t.in) && t.in[t.i] == '.' {
		t.i++
		if digits() == 0 {
			return nil, false
		}
	}
	if t.i < len(t.in) && (t.in[t.i] == 'e' || t.in[t.i] == 'E') {
		t.i++
		if t.i < len(t.in) && (t.in[t.i] == '+' || t.in[t.i] == '-') {
			t.i++
		}
		if digits() == 0 {
			return nil, false
		}
	}
	return t.in[start:t.i], true
}

// stringField transcodes a string field (proto3: "" is left out).
func (t *transcoder) stringField(num protowire.Number) bool {
	s, ok := t.str()
	if !ok {
		return false
	}
	if len(s) > 0 {
		t.out = protowire.AppendTag(t.out, num, protowire.BytesType)
		t.out = protowire.AppendBytes(t.out, s)
	}
	return true
}

// int64Field transcodes an int64 field written as a plain integer.
func (t *transcoder) int64Field(num protowire.Number) bool {
	lit, ok := t.number()
	if !ok {
		return false
	}
	n, err := strconv.ParseInt(string(lit), 10, 64)
	if err != nil {
		return false // a fraction, an exponent, out of range: protojson decides
	}
	if n != 0 {
		t.out = protowire.AppendTag(t.out, num, protowire.VarintType)
		t.out = protowire.AppendVarint(t.out, uint64(n))
	}
	return true
}

// begin starts a length-delimited field; end writes its length.
func (t *transcoder) begin(num protowire.Number) int {
	t.out = protowire.AppendTag(t.out, num, protowire.BytesType)
	t.out = append(t.out, 0)
	return len(t.out)
}

// end returns where the field's content is once its length is written
// (lengths of 128 bytes and more move it).
func (t *transcoder) end(start int) int {
	n := len(t.out) - start
	size := protowire.SizeVarint(uint64(n))
	if size == 1 {
		t.out[start-1] = byte(n)
		return start
	}
	for range size - 1 {
		t.out = append(t.out, 0)
	}
	copy(t.out[start-1+size:], t.out[start:start+n])
	protowire.AppendVarint(t.out[:start-1], uint64(n))
	return start - 1 + size
}

// fields guards against a field given twice (protojson refuses it; the
// fast path leaves it to protojson). Field numbers are below 16.
type fields uint16

func (f *fields) first(num protowire.Number) bool {
	bit := fields(1) << num
	if *f&bit != 0 {
		return false
	}
	*f |= bit
	return true
}

// Field numbers, as in collect.proto.
var (
	requestFields = map[string]protowire.Number{
		"propertyId": 1, "clientId": 2, "appInstanceId": 3, "userId": 4, "timestampMicros": 5,
		"userProperties": 6, "consent": 7, "userLocation": 8, "device": 9, "userAgent": 10,
		"ipOverride": 11, "events": 12,
	}
	eventFields   = map[string]protowire.Number{"name": 1, "params": 2, "eventId": 3, "timestampMicros": 4}
	consentFields = map[string]protowire.Number{"adUserData": 1, "adPersonalization": 2, "analyticsStorage": 3}
	deviceFields  = map[string]protowire.Number{
		"category": 1, "language": 2, "screenResolution": 3, "operatingSystem": 4,
		"operatingSystemVersion": 5, "model": 6, "brand": 7, "browser": 8, "browserVersion": 9,
	}
	locationFields = map[string]protowire.Number{"countryId": 1}
)

func (t *transcoder) request() bool {
	var seen fields
	if !t.object(func(key []byte) bool {
		num, ok := requestFields[string(key)]
		if !ok || !seen.first(num) {
			return false
		}
		switch num {
		case 5:
			return t.int64Field(num)
		case 6:
			return t.userProperties()
		case 7:
			return t.strings(num, consentFields)
		case 8:
			return t.strings(num, locationFields)
		case 9:
			return t.strings(num, deviceFields)
		case 12:
			return t.events()
		}
		return t.stringField(num)
	}) {
		return false
	}
	t.ws()
	return t.i == len(t.in)
}

// strings transcodes a message of string fields.
func (t *transcoder) strings(num protowire.Number, names map[string]protowire.Number) bool {
	start := t.begin(num)
	var seen fields
	if !t.object(func(key []byte) bool {
		n, ok := names[string(key)]
		return ok && seen.first(n) && t.stringField(n)
	}) {
		return false
	}
	t.end(start)
	return true
}

func (t *transcoder) events() bool {
	if !t.consume('[') {
		return false
	}
	if t.consume(']') {
		return true
	}
	for {
		t.ws()
		if !t.event() {
			return false
		}
		if t.consume(']') {
			return true
		}
		if !t.consume(',') {
			return false
		}
	}
}

func (t *transcoder) event() bool {
	start := t.begin(12)
	var seen fields
	if !t.object(func(key []byte) bool {
		num, ok := eventFields[string(key)]
		if !ok || !seen.first(num) {
			return false
		}
		switch num {
		case 2:
			return t.params()
		case 4:
			return t.int64Field(num)
		}
		return t.stringField(num)
	}) {
		return false
	}
	t.end(start)
	return true
}

// keys guards against a map key given twice (protojson refuses it). The
// keys seen are where the ended entries hold them in out (an entry's end
// may move it, an entry after it not).
type keys struct {
	at  [][2]int // offset and length in out, for the first 16
	big map[string]struct{}
}

func (k *keys) has(out, key []byte) bool {
	if k.big != nil {
		_, dup := k.big[string(key)]
		return dup
	}
	for _, p := range k.at {
		if string(out[p[0]:p[0]+p[1]]) == string(key) {
			return true
		}
	}
	return false
}

func (k *keys) add(out []byte, off, n int) {
	if k.big == nil && len(k.at) < 16 {
		k.at = append(k.at, [2]int{off, n})
		return
	}
	if k.big == nil {
		k.big = make(map[string]struct{}, 32)
		for _, p := range k.at {
			k.big[string(out[p[0]:p[0]+p[1]])] = struct{}{}
		}
	}
	k.big[string(out[off:off+n])] = struct{}{}
}

// entryKey starts a map entry (field num) and writes its key; ok is false
// when an earlier entry of seen has the key.
func (t *transcoder) entryKey(num protowire.Number, key []byte, seen *keys) (entry int, ok bool) {
	if seen.has(t.out, key) {
		return 0, false
	}
	entry = t.begin(num)
	t.out = protowire.AppendTag(t.out, 1, protowire.BytesType)
	t.out = protowire.AppendBytes(t.out, key)
	return entry, true
}

// endEntry ends an entry that entryKey began with a key of n bytes and
// adds the key to seen.
func (t *transcoder) endEntry(entry, n int, seen *keys) {
	at := t.end(entry)
	seen.add(t.out, at+1+protowire.SizeVarint(uint64(n)), n)
}

// params transcodes map<string, google.protobuf.Value>.
func (t *transcoder) params() bool {
	var seen keys
	return t.object(func(key []byte) bool {
		n := len(key)
		entry, ok := t.entryKey(2, key, &seen)
		if !ok || !t.value(2, 0) {
			return false
		}
		t.endEntry(entry, n, &seen)
		return true
	})
}

// userProperties transcodes map<string, UserProperty>.
func (t *transcoder) userProperties() bool {
	var seen keys
	return t.object(func(key []byte) bool {
		n := len(key)
		entry, ok := t.entryKey(6, key, &seen)
		if !ok {
			return false
		}
		up := t.begin(2)
		var seenValue bool
		if !t.object(func(key []byte) bool {
			if string(key) != "value" || seenValue {
				return false
			}
			seenValue = true
			return t.value(1, 0)
		}) {
			return false
		}
		t.end(up)
		t.endEntry(entry, n, &seen)
		return true
	})
}

// maxNesting bounds the lists and objects the fast path transcodes inside
// one another (deeper ones are left to protojson).
const maxNesting = 8

// value transcodes a google.protobuf.Value as field num: a scalar, or a
// list or object (nested in depth others) of values.
func (t *transcoder) value(num protowire.Number, depth int) bool {
	if t.i >= len(t.in) {
		return false
	}
	start := t.begin(num)
	switch c := t.in[t.i]; {
	case c == '"':
		s, ok := t.str()
		if !ok {
			return false
		}
		t.out = protowire.AppendTag(t.out, 3, protowire.BytesType)
		t.out = protowire.AppendBytes(t.out, s)
	case c == 't' || c == 'f':
		v := c == 't'
		word := "false"
		if v {
			word = "true"
		}
		if len(t.in)-t.i < len(word) || string(t.in[t.i:t.i+len(word)]) != word {
			return false
		}
		t.i += len(word)
		t.out = protowire.AppendTag(t.out, 4, protowire.VarintType)
		t.out = protowire.AppendVarint(t.out, protowire.EncodeBool(v))
	case c == '-' || '0' <= c && c <= '9':
		lit, ok := t.number()
		if !ok {
			return false
		}
		f, err := strconv.ParseFloat(string(lit), 64)
		if err != nil || math.IsInf(f, 0) {
			return false
		}
		t.out = protowire.AppendTag(t.out, 2, protowire.Fixed64Type)
		t.out = protowire.AppendFixed64(t.out, math.Float64bits(f))
	case (c == '[' || c == '{') && depth < maxNesting:
		if c == '[' && !t.list(depth+1) || c == '{' && !t.structValue(depth+1) {
			return false
		}
	default: // null, or too deep
		return false
	}
	t.end(start)
	return true
}

// list transcodes a JSON array as a Value's list_value.
func (t *transcoder) list(depth int) bool {
	start := t.begin(6)
	t.i++ // [
	if !t.consume(']') {
		for {
			t.ws()
			if !t.value(1, depth) {
				return false
			}
			if t.consume(']') {
				break
			}
			if !t.consume(',') {
				return false
			}
		}
	}
	t.end(start)
	return true
}

// structValue transcodes a JSON object as a Value's struct_value.
func (t *transcoder) structValue(depth int) bool {
	start := t.begin(5)
	var seen keys
	if !t.object(func(key []byte) bool {
		n := len(key)
		entry, ok := t.entryKey(1, key, &seen)
		if !ok || !t.value(2, depth) {
			return false
		}
		t.endEntry(entry, n, &seen)
		return true
	}) {
		return false
	}
	t.end(start)
	return true
}
