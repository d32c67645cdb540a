package loadgen

import (
	"math"
	"strconv"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/structpb"

	collectv1 "github.com/sextant-analytics/sextant/gen/sextant/collect/v1"
)

// The batch encoders write the wire formats directly, without building
// messages, so that a load generator spends its CPU on sending rather than
// on encoding. ToProto builds the same request as a message; the tests
// check that the three agree.

// Field numbers of sextant.collect.v1 and google.protobuf.Value.
const (
	fReqClientID     = 2
	fReqUserLocation = 8
	fReqUserAgent    = 10
	fReqEvents       = 12
	fLocCountryID    = 1
	fLocCity         = 2
	fLocRegionID     = 3
	fEvName          = 1
	fEvParams        = 2
	fEvEventID       = 3
	fEvTimestamp     = 4
	fEntryKey        = 1
	fEntryValue      = 2
	fValueNumber     = 2
	fValueString     = 3
	fValueStruct     = 5
	fValueList       = 6
	fListValues      = 1
	fStructFields    = 1
	fStreamSequence  = 1
	fStreamBatch     = 2
)

// Names of the parameters Sextant promotes to event fields.
const (
	ParamPageLocation   = "page_location"
	ParamPageReferrer   = "page_referrer"
	ParamPageTitle      = "page_title"
	ParamSessionID      = "ga_session_id"
	ParamSessionNumber  = "ga_session_number"
	ParamEngagementTime = "engagement_time_msec"
)

// allParams appends every parameter of e to dst, promoted ones first.
func (e *Event) allParams(dst []Param) []Param {
	if e.Location != "" {
		dst = append(dst, Param{Name: ParamPageLocation, Str: e.Location})
	}
	if e.Referrer != "" {
		dst = append(dst, Param{Name: ParamPageReferrer, Str: e.Referrer})
	}
	if e.Title != "" {
		dst = append(dst, Param{Name: ParamPageTitle, Str: e.Title})
	}
	if e.SessionID != 0 {
		dst = append(dst, Param{Name: ParamSessionID, Num: float64(e.SessionID), IsNum: true})
	}
	if e.SessionNumber != 0 {
		dst = append(dst, Param{Name: ParamSessionNumber, Num: float64(e.SessionNumber), IsNum: true})
	}
	if e.EngagementMsec != 0 {
		dst = append(dst, Param{Name: ParamEngagementTime, Num: float64(e.EngagementMsec), IsNum: true})
	}
	return append(dst, e.Params...)
}

func sizeLen(n int) int { return protowire.SizeBytes(n) + 1 } // one-byte tag

func valueSize(p Param) int {
	if p.IsNum {
		return 1 + 8
	}
	return sizeLen(len(p.Str))
}

func entrySize(p Param) int {
	return sizeLen(len(p.Name)) + sizeLen(valueSize(p))
}

// ParamItems is the ecommerce items parameter.
const ParamItems = "items"

// itemsValue is the encoded google.protobuf.Value (a list of structs) of
// items, nil for none.
func itemsValue(items []Item) []byte {
	if len(items) == 0 {
		return nil
	}
	var list []byte
	var st, field []byte
	for _, it := range items {
		st = st[:0]
		for _, p := range []Param{{Name: "item_id", Str: it.ID}, {Name: "item_name", Str: it.Name}, {Name: "item_brand", Str: it.Brand},
			{Name: "item_category", Str: it.Category}, {Name: "price", Num: it.Price, IsNum: true}, {Name: "quantity", Num: float64(it.Quantity), IsNum: true}} {
			field = appendEntry(field[:0], p)
			st = protowire.AppendTag(st, fStructFields, protowire.BytesType)
			st = protowire.AppendBytes(st, field)
		}
		var v []byte
		v = protowire.AppendTag(v, fValueStruct, protowire.BytesType)
		v = protowire.AppendBytes(v, st)
		list = protowire.AppendTag(list, fListValues, protowire.BytesType)
		list = protowire.AppendBytes(list, v)
	}
	out := protowire.AppendTag(nil, fValueList, protowire.BytesType)
	return protowire.AppendBytes(out, list)
}

// appendEntry appends a map entry (key, google.protobuf.Value) of p.
func appendEntry(b []byte, p Param) []byte {
	b = appendString(b, fEntryKey, p.Name)
	b = protowire.AppendTag(b, fEntryValue, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(valueSize(p)))
	if p.IsNum {
		b = protowire.AppendTag(b, fValueNumber, protowire.Fixed64Type)
		return protowire.AppendFixed64(b, math.Float64bits(p.Num))
	}
	return appendString(b, fValueString, p.Str)
}

func itemsEntrySize(items []byte) int {
	return sizeLen(len(ParamItems)) + sizeLen(len(items))
}

func eventSize(e *Event, ps []Param, items []byte) int {
	n := sizeLen(len(e.Name))
	if items != nil {
		n += sizeLen(itemsEntrySize(items))
	}
	if e.ID != "" {
		n += sizeLen(len(e.ID))
	}
	if e.TimeMicros != 0 {
		n += 1 + protowire.SizeVarint(uint64(e.TimeMicros))
	}
	for _, p := range ps {
		n += sizeLen(entrySize(p))
	}
	return n
}

func appendString(b []byte, field protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, field, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// AppendProto appends the batch as an encoded sextant.collect.v1.CollectRequest.
func AppendProto(b []byte, batch *Batch) []byte {
	b = appendString(b, fReqClientID, batch.ClientID)
	if batch.Country != "" || batch.City != "" || batch.Region != "" {
		n := 0
		for _, s := range []string{batch.Country, batch.City, batch.Region} {
			if s != "" {
				n += sizeLen(len(s))
			}
		}
		b = protowire.AppendTag(b, fReqUserLocation, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(n))
		if batch.Country != "" {
			b = appendString(b, fLocCountryID, batch.Country)
		}
		if batch.City != "" {
			b = appendString(b, fLocCity, batch.City)
		}
		if batch.Region != "" {
			b = appendString(b, fLocRegionID, batch.Region)
		}
	}
	if batch.UserAgent != "" {
		b = appendString(b, fReqUserAgent, batch.UserAgent)
	}
	var scratch [16]Param
	for i := range batch.Events {
		e := &batch.Events[i]
		ps := e.allParams(scratch[:0])
		items := itemsValue(e.Items)
		b = protowire.AppendTag(b, fReqEvents, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(eventSize(e, ps, items)))
		b = appendString(b, fEvName, e.Name)
		for _, p := range ps {
			b = protowire.AppendTag(b, fEvParams, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(entrySize(p)))
			b = appendEntry(b, p)
		}
		if items != nil {
			b = protowire.AppendTag(b, fEvParams, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(itemsEntrySize(items)))
			b = appendString(b, fEntryKey, ParamItems)
			b = protowire.AppendTag(b, fEntryValue, protowire.BytesType)
			b = protowire.AppendBytes(b, items)
		}
		if e.ID != "" {
			b = appendString(b, fEvEventID, e.ID)
		}
		if e.TimeMicros != 0 {
			b = protowire.AppendTag(b, fEvTimestamp, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(e.TimeMicros))
		}
	}
	return b
}

// AppendStreamRequest appends an encoded
// sextant.collect.v1.StreamCollectRequest of the given sequence number and
// an encoded CollectRequest (from AppendProto).
func AppendStreamRequest(b []byte, seq uint64, collectRequest []byte) []byte {
	b = protowire.AppendTag(b, fStreamSequence, protowire.VarintType)
	b = protowire.AppendVarint(b, seq)
	b = protowire.AppendTag(b, fStreamBatch, protowire.BytesType)
	return protowire.AppendBytes(b, collectRequest)
}

// ToProto returns the batch as a CollectRequest message.
func ToProto(batch *Batch) *collectv1.CollectRequest {
	req := &collectv1.CollectRequest{ClientId: batch.ClientID, UserAgent: batch.UserAgent}
	if batch.Country != "" || batch.City != "" || batch.Region != "" {
		req.UserLocation = &collectv1.UserLocation{CountryId: batch.Country, City: batch.City, RegionId: batch.Region}
	}
	for i := range batch.Events {
		e := &batch.Events[i]
		ev := &collectv1.Event{Name: e.Name, EventId: e.ID, TimestampMicros: e.TimeMicros, Params: map[string]*structpb.Value{}}
		for _, p := range e.allParams(nil) {
			if p.IsNum {
				ev.Params[p.Name] = structpb.NewNumberValue(p.Num)
			} else {
				ev.Params[p.Name] = structpb.NewStringValue(p.Str)
			}
		}
		if len(e.Items) > 0 {
			var list []*structpb.Value
			for _, it := range e.Items {
				list = append(list, structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{
					"item_id": structpb.NewStringValue(it.ID), "item_name": structpb.NewStringValue(it.Name),
					"item_brand": structpb.NewStringValue(it.Brand), "item_category": structpb.NewStringValue(it.Category),
					"price": structpb.NewNumberValue(it.Price), "quantity": structpb.NewNumberValue(float64(it.Quantity)),
				}}))
			}
			ev.Params[ParamItems] = structpb.NewListValue(&structpb.ListValue{Values: list})
		}
		req.Events = append(req.Events, ev)
	}
	return req
}

// AppendJSON appends the batch as the JSON body of POST /v1/collect.
func AppendJSON(b []byte, batch *Batch) []byte {
	b = append(b, `{"clientId":`...)
	b = appendJSONString(b, batch.ClientID)
	if batch.UserAgent != "" {
		b = append(b, `,"userAgent":`...)
		b = appendJSONString(b, batch.UserAgent)
	}
	if batch.Country != "" || batch.City != "" || batch.Region != "" {
		b = append(b, `,"userLocation":{`...)
		sep := ""
		for _, f := range []struct{ name, value string }{{"countryId", batch.Country}, {"city", batch.City}, {"regionId", batch.Region}} {
			if f.value != "" {
				b = append(b, sep+`"`+f.name+`":`...)
				b = appendJSONString(b, f.value)
				sep = ","
			}
		}
		b = append(b, '}')
	}
	b = append(b, `,"events":[`...)
	var scratch [16]Param
	for i := range batch.Events {
		e := &batch.Events[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendJSONString(b, e.Name)
		if e.ID != "" {
			b = append(b, `,"eventId":`...)
			b = appendJSONString(b, e.ID)
		}
		if e.TimeMicros != 0 {
			b = append(b, `,"timestampMicros":"`...)
			b = strconv.AppendInt(b, e.TimeMicros, 10)
			b = append(b, '"')
		}
		b = append(b, `,"params":{`...)
		for j, p := range e.allParams(scratch[:0]) {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, p.Name)
			b = append(b, ':')
			b = appendJSONValue(b, p)
		}
		if len(e.Items) > 0 {
			if len(e.allParams(scratch[:0])) > 0 {
				b = append(b, ',')
			}
			b = append(b, `"items":[`...)
			for j, it := range e.Items {
				if j > 0 {
					b = append(b, ',')
				}
				b = append(b, '{')
				for k, p := range []Param{{Name: "item_id", Str: it.ID}, {Name: "item_name", Str: it.Name}, {Name: "item_brand", Str: it.Brand},
					{Name: "item_category", Str: it.Category}, {Name: "price", Num: it.Price, IsNum: true}, {Name: "quantity", Num: float64(it.Quantity), IsNum: true}} {
					if k > 0 {
						b = append(b, ',')
					}
					b = appendJSONString(b, p.Name)
					b = append(b, ':')
					b = appendJSONValue(b, p)
				}
				b = append(b, '}')
			}
			b = append(b, ']')
		}
		b = append(b, "}}"...)
	}
	return append(b, "]}"...)
}

func appendJSONValue(b []byte, p Param) []byte {
	switch {
	case !p.IsNum:
		return appendJSONString(b, p.Str)
	case p.Num == math.Trunc(p.Num) && math.Abs(p.Num) < 1<<53:
		return strconv.AppendInt(b, int64(p.Num), 10)
	}
	return strconv.AppendFloat(b, p.Num, 'g', -1, 64)
}

func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			b = append(b, c)
			i++
			continue
		}
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
