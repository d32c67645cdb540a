package gateway

import (
	"testing"

	"google.golang.org/protobuf/proto"

	collectv1 "github.com/sextant-analytics/sextant/gen/sextant/collect/v1"
)

// checkInspect decodes b as collect would, runs inspect, and checks that
// the forwarded bytes are the same request with an id on every event.
func checkInspect(t *testing.T, b []byte) {
	t.Helper()
	want := &collectv1.CollectRequest{}
	if err := proto.Unmarshal(b, want); err != nil {
		return // collect would reject it too
	}
	pid, n, out, err := inspect(b)
	if err != nil {
		t.Fatalf("inspect rejects what protobuf reads: %v", err)
	}
	if pid != want.PropertyId || n != len(want.Events) {
		t.Fatalf("property %q, %d events; want %q, %d", pid, n, want.PropertyId, len(want.Events))
	}
	got := &collectv1.CollectRequest{}
	if err := proto.Unmarshal(out, got); err != nil {
		t.Fatalf("forwarded bytes do not decode: %v", err)
	}
	if len(got.Events) != len(want.Events) {
		t.Fatalf("%d events forwarded, want %d", len(got.Events), len(want.Events))
	}
	for i, ev := range got.Events {
		if ev.EventId == "" {
			t.Fatalf("event %d has no id", i)
		}
		if id := want.Events[i].EventId; id != "" && ev.EventId != id {
			t.Fatalf("event %d: id %q changed to %q", i, id, ev.EventId)
		}
		want.Events[i].EventId = ev.EventId
	}
	if !proto.Equal(got, want) {
		t.Fatalf("forwarded %v\nwant %v", got, want)
	}
}

func TestInspect(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  *collectv1.CollectRequest
	}{
		{"empty", &collectv1.CollectRequest{}},
		{"ids kept", &collectv1.CollectRequest{PropertyId: "p1", ClientId: "c", Events: []*collectv1.Event{{Name: "a", EventId: "x"}, {Name: "b", EventId: "y"}}}},
		{"ids added", &collectv1.CollectRequest{ClientId: "c", UserAgent: "ua", Events: []*collectv1.Event{{Name: "a"}, {Name: "b", EventId: "y"}, {Name: "c"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := proto.Marshal(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			checkInspect(t, b)
		})
	}
	// An explicitly empty id is replaced, and a later id wins over an earlier one.
	ev := []byte{0x0a, 1, 'a', 0x1a, 0}             // name "a", event_id ""
	twice := []byte{0x1a, 1, 'x', 0x1a, 1, 'y'}     // event_id "x", then "y"
	b := append([]byte{0x62, byte(len(ev))}, ev...) // events (12)
	b = append(b, append([]byte{0x62, byte(len(twice))}, twice...)...)
	checkInspect(t, b)
	if _, _, _, err := inspect([]byte{0x62, 5, 1}); err == nil {
		t.Error("a truncated event was accepted")
	}
}

func FuzzInspect(f *testing.F) {
	for _, r := range []*collectv1.CollectRequest{
		{PropertyId: "p", ClientId: "c", Events: []*collectv1.Event{{Name: "page_view"}, {Name: "x", EventId: "id"}}},
		{},
	} {
		b, _ := proto.Marshal(r)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkInspect(t, b)
	})
}
