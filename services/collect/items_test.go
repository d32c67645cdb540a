package collect

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	eventv1 "github.com/sextant-analytics/sextant/gen/sextant/event/v1"
)

// withItems wraps an items value into a valid purchase request.
func withItems(items string) string {
	return ev(`{"name":"purchase","params":{"transaction_id":"T1","items":` + items + `}}`)
}

func TestItemsAccepted(t *testing.T) {
	r := strings.Repeat
	for _, tc := range []struct {
		name  string
		js    string
		items []*eventv1.Item
	}{
		{"every field", withItems(`[{"item_id":"SKU1","item_name":"Shirt","item_brand":"Acme","item_category":"Apparel","item_variant":"Red","price":9.99,"quantity":2}]`),
			[]*eventv1.Item{{ItemId: "SKU1", ItemName: "Shirt", ItemBrand: "Acme", ItemCategory: "Apparel", ItemVariant: "Red", Price: 9.99, Quantity: 2}}},
		{"quantity defaults to 1, order kept", withItems(`[{"item_id":"b"},{"item_name":"a","price":0},{"item_id":"c","price":-3}]`),
			[]*eventv1.Item{{ItemId: "b", Quantity: 1}, {ItemName: "a", Quantity: 1}, {ItemId: "c", Price: -3, Quantity: 1}}},
		{"other keys checked and not stored", withItems(`[{"item_id":"a","coupon":"X","index":3,"in_stock":true,"item_category2":"Men","":1}]`),
			[]*eventv1.Item{{ItemId: "a", Quantity: 1}}},
		{"limits", withItems(`[{"item_id":"` + r("é", 100) + `","quantity":1e15}]`),
			[]*eventv1.Item{{ItemId: r("é", 100), Quantity: 1e15}}},
		{"an empty list", withItems(`[]`), nil},
		{"200 items", withItems(`[` + strings.TrimSuffix(r(`{"item_id":"x"},`, 200), ",") + `]`), func() []*eventv1.Item {
			out := make([]*eventv1.Item, 200)
			for i := range out {
				out[i] = &eventv1.Item{ItemId: "x", Quantity: 1}
			}
			return out
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := parseReq(t, tc.js)
			evs, err := buildEvents(req, testMeta(), Limits{})
			if err != nil {
				t.Fatalf("rejected: %v", err)
			}
			checkInvariants(t, req, testMeta(), Limits{}, evs, err)
			got := evs[0].GetItems()
			if len(got) != len(tc.items) {
				t.Fatalf("items %v, want %v", got, tc.items)
			}
			for i := range got {
				if !proto.Equal(got[i], tc.items[i]) {
					t.Errorf("item %d: %v, want %v", i, got[i], tc.items[i])
				}
			}
			if _, ok := evs[0].GetParams()["items"]; ok {
				t.Errorf("items left in params")
			}
			if evs[0].GetParams()["transaction_id"].GetStringValue() != "T1" {
				t.Errorf("params %v", evs[0].GetParams())
			}
		})
	}
}

func TestItemsViolations(t *testing.T) {
	r := strings.Repeat
	const at = "events[0].params.items"
	for _, tc := range []struct {
		name string
		js   string
		want []wantV
	}{
		{"201 items", withItems(`[` + strings.TrimSuffix(r(`{"item_id":"x"},`, 201), ",") + `]`), []wantV{{at, tooMany}}},
		{"not a list", withItems(`{"item_id":"x"}`), []wantV{{at, vInvalid}}},
		{"a string", withItems(`"SKU1"`), []wantV{{at, vInvalid}}},
		{"elements not objects", withItems(`[1,"a",null,[],true]`),
			[]wantV{{at + "[0]", vInvalid}, {at + "[1]", vInvalid}, {at + "[2]", vInvalid}, {at + "[3]", vInvalid}, {at + "[4]", vInvalid}}},
		{"no id nor name", withItems(`[{"item_id":"a"},{"item_brand":"b","price":1},{"item_id":"","item_name":""}]`),
			[]wantV{{at + "[1]", vRequired}, {at + "[2]", vRequired}}},
		{"strings too long", withItems(`[{"item_id":"a","item_name":"` + r("n", 101) + `","item_brand":"` + r("b", 101) + `","item_category":"` + r("c", 101) + `","item_variant":"` + r("v", 101) + `"}]`),
			[]wantV{{at + "[0].item_brand", vBounds}, {at + "[0].item_category", vBounds}, {at + "[0].item_name", vBounds}, {at + "[0].item_variant", vBounds}}},
		{"id not a string", withItems(`[{"item_id":12345}]`), []wantV{{at + "[0].item_id", vInvalid}}},
		{"id too long, name fine", withItems(`[{"item_id":"` + r("i", 101) + `","item_name":"n"}]`), []wantV{{at + "[0].item_id", vBounds}}},
		{"price a string", withItems(`[{"item_id":"a"},{"item_id":"b"},{"item_id":"c","price":"9.99"}]`), []wantV{{at + "[2].price", vInvalid}}},
		{"price null", withItems(`[{"item_id":"a","price":null}]`), []wantV{{at + "[0].price", vInvalid}}},
		{"quantity zero", withItems(`[{"item_id":"a","quantity":0}]`), []wantV{{at + "[0].quantity", vInvalid}}},
		{"quantity negative", withItems(`[{"item_id":"a","quantity":-2}]`), []wantV{{at + "[0].quantity", vInvalid}}},
		{"quantity a fraction", withItems(`[{"item_id":"a","quantity":1.5}]`), []wantV{{at + "[0].quantity", vInvalid}}},
		{"quantity a string", withItems(`[{"item_id":"a","quantity":"2"}]`), []wantV{{at + "[0].quantity", vInvalid}}},
		{"quantity too big", withItems(`[{"item_id":"a","quantity":1e19}]`), []wantV{{at + "[0].quantity", vInvalid}}},
		{"another key nested", withItems(`[{"item_id":"a","tags":["x"],"dims":{"w":1}}]`), []wantV{{at + "[0].dims", vInvalid}, {at + "[0].tags", vInvalid}}},
		{"another key too long", withItems(`[{"item_id":"a","coupon":"` + r("c", 101) + `"}]`), []wantV{{at + "[0].coupon", vBounds}}},
		{"items on another param", ev(`{"name":"purchase","params":{"products":[{"item_id":"a"}]}}`), []wantV{{"events[0].params.products", vInvalid}}},
		{"items as a user property", `{"clientId":"c","userProperties":{"items":{"value":[{"item_id":"a"}]}},"events":[{"name":"a"}]}`,
			[]wantV{{"userProperties.items", vInvalid}}},
		{"second event", `{"clientId":"c","events":[{"name":"a"},{"name":"b","params":{"items":[{"item_id":"a","price":true}]}}]}`,
			[]wantV{{"events[1].params.items[0].price", vInvalid}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := parseReq(t, tc.js)
			evs, err := buildEvents(req, testMeta(), Limits{})
			if err == nil {
				t.Fatalf("accepted, want %v", tc.want)
			}
			checkInvariants(t, req, testMeta(), Limits{}, evs, err)
			got := asInvalid(t, err)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d violations %+v, want %v", len(got), got, tc.want)
			}
			for i, w := range tc.want {
				if got[i].Field != w.field || got[i].Code != w.code {
					t.Errorf("violation %d = %s %s (%s), want %s %s", i, got[i].Field, got[i].Code, got[i].Description, w.field, w.code)
				}
			}
		})
	}
}

// Encodings JSON cannot write, as protobuf reads them: occurrences of a
// list merge, a later kind replaces an earlier one, a later map entry of
// a key wins, keys may follow values. Each is checked against the
// reference, and for the items it gives.
func TestItemsWire(t *testing.T) {
	type fields = []byte
	msg := func(num protowire.Number, parts ...fields) fields {
		b := protowire.AppendTag(nil, num, protowire.BytesType)
		return protowire.AppendBytes(b, append([]byte(nil), concat(parts...)...))
	}
	str := func(num protowire.Number, s string) fields { return msg(num, []byte(s)) }
	num := func(f float64) fields {
		b := protowire.AppendTag(nil, valNumber, protowire.Fixed64Type)
		return protowire.AppendFixed64(b, math.Float64bits(f))
	}
	// A Value holding a Struct of string fields.
	item := func(kv ...string) fields {
		var entries []fields
		for i := 0; i+1 < len(kv); i += 2 {
			entries = append(entries, msg(1, str(mapKey, kv[i]), msg(mapValue, str(valString, kv[i+1]))))
		}
		return msg(valStruct, entries...)
	}
	list := func(elems ...fields) fields {
		var vs []fields
		for _, e := range elems {
			vs = append(vs, msg(1, e))
		}
		return msg(valList, vs...)
	}
	// A batch of one purchase whose params entry "items" has value parts.
	batch := func(entries ...fields) []byte {
		return concat(str(reqClientID, "c"), msg(reqEvents, append([]fields{str(evName, "purchase")}, entries...)...))
	}
	itemsEntry := func(value ...fields) fields { return msg(evParams, str(mapKey, "items"), msg(mapValue, value...)) }
	for _, tc := range []struct {
		name string
		b    []byte
		ids  []string // of the items stored; nil: refused
	}{
		{"lists merge", batch(itemsEntry(list(item("item_id", "a")), list(item("item_id", "b")))), []string{"a", "b"}},
		{"value fields merge", batch(msg(evParams, str(mapKey, "items"), msg(mapValue, list(item("item_id", "a"))), msg(mapValue, list(item("item_id", "b"))))), []string{"a", "b"}},
		{"a string between lists", batch(itemsEntry(list(item("item_id", "a")), str(valString, "x"), list(item("item_id", "b")))), []string{"b"}},
		{"a list replaced by a string", batch(itemsEntry(list(item("item_id", "a")), str(valString, "x"))), nil},
		{"key after value", batch(msg(evParams, msg(mapValue, list(item("item_id", "a"))), str(mapKey, "items"))), []string{"a"}},
		{"last entry wins", batch(itemsEntry(list(item("item_id", "a"))), itemsEntry(list(item("item_id", "b"), item("item_id", "c")))), []string{"b", "c"}},
		{"last entry a string", batch(itemsEntry(list(item("item_id", "a"))), itemsEntry(str(valString, "x"))), nil},
		{"structs of an element merge", batch(itemsEntry(list(concat(item("item_id", "a"), item("item_name", "n"))))), []string{"a"}},
		{"a struct after a number starts afresh", batch(itemsEntry(list(concat(item("item_id", "a"), num(1), item("item_name", "n"))))), []string{""}},
		{"an element's last kind wins", batch(itemsEntry(list(concat(item("item_id", "a"), num(1))))), nil},
		{"a later key of an item wins", batch(itemsEntry(list(item("item_id", "a", "item_id", "b")))), []string{"b"}},
		{"not UTF-8 in an item", batch(itemsEntry(list(item("item_id", "a\xff")))), nil},
		{"not UTF-8 in an item's key", batch(itemsEntry(list(item("item_\xff", "a")))), nil},
		{"not UTF-8 in an overridden struct", batch(msg(evParams, str(mapKey, "p"), msg(mapValue, msg(valStruct, msg(1, str(mapKey, "\xff"))))),
			msg(evParams, str(mapKey, "p"), msg(mapValue, str(valString, "ok")))), nil},
		{"malformed in an overridden list", batch(msg(evParams, str(mapKey, "p"), msg(mapValue, msg(valList, []byte{0x0a, 0x05}))),
			msg(evParams, str(mapKey, "p"), msg(mapValue, str(valString, "ok")))), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkAgainstReference(t, tc.b)
			evs, err := decodeEncoded(NewEncoder(Limits{}).Encode(tc.b, testMeta()))
			if tc.ids == nil {
				if err == nil {
					t.Fatalf("accepted: %v", evs)
				}
				return
			}
			if err != nil {
				t.Fatalf("rejected: %v", err)
			}
			var ids []string
			for _, it := range evs[0].GetItems() {
				ids = append(ids, it.GetItemId())
			}
			if fmt.Sprint(ids) != fmt.Sprint(tc.ids) {
				t.Errorf("item ids %q, want %q", ids, tc.ids)
			}
		})
	}
}

func concat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}
