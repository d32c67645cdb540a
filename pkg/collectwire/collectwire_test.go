package collectwire

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	collectv1 "github.com/sextant-analytics/sextant/gen/sextant/collect/v1"
)

func TestStreamRequestUnmarshal(t *testing.T) {
	batch := func(r *collectv1.CollectRequest) []byte {
		b, err := proto.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	first := &collectv1.CollectRequest{PropertyId: "p", Events: []*collectv1.Event{{Name: "a"}}}
	second := &collectv1.CollectRequest{ClientId: "c", Events: []*collectv1.Event{{Name: "b"}}}
	merged := proto.Clone(first).(*collectv1.CollectRequest)
	proto.Merge(merged, second)
	for _, tc := range []struct {
		name string
		msg  []byte
		seq  uint64
		want *collectv1.CollectRequest // nil: no batch
	}{
		{"no batch", batch(&collectv1.CollectRequest{})[:0], 0, nil},
		{"sequence only", []byte{0x08, 0x07}, 7, nil},
		{"empty batch", []byte{0x08, 0x01, 0x12, 0x00}, 1, &collectv1.CollectRequest{}},
		{"batch", append([]byte{0x08, 0x02, 0x12, byte(len(batch(first)))}, batch(first)...), 2, first},
		// Two occurrences of the batch field merge, as a parser merges them.
		{"batch twice", append(append([]byte{0x12, byte(len(batch(first)))}, batch(first)...),
			append([]byte{0x12, byte(len(batch(second)))}, batch(second)...)...), 0, merged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s StreamRequest
			if err := s.Unmarshal(tc.msg); err != nil {
				t.Fatal(err)
			}
			if s.Sequence != tc.seq {
				t.Errorf("sequence %d, want %d", s.Sequence, tc.seq)
			}
			if tc.want == nil {
				if s.Batch != nil {
					t.Fatalf("batch %x, want none", s.Batch)
				}
				return
			}
			if s.Batch == nil {
				t.Fatal("no batch")
			}
			got := &collectv1.CollectRequest{}
			if err := proto.Unmarshal(s.Batch, got); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, tc.want) {
				t.Fatalf("batch %v, want %v", got, tc.want)
			}
		})
	}
	var s StreamRequest
	if err := s.Unmarshal([]byte{0x12, 0x05, 0x01}); err == nil {
		t.Error("a truncated batch was accepted")
	}
}

// The JSON codec hands on the same bytes as a binary request would carry,
// and the binary codec copies what connect will reuse.
func TestCodecs(t *testing.T) {
	js := []byte(`{"propertyId":"p","clientId":"c","events":[{"name":"page_view","params":{"n":1.5,"s":"x"}}],"unknownField":1}`)
	want := &collectv1.CollectRequest{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(js, want); err != nil {
		t.Fatal(err)
	}
	var fromJSON Batch
	if err := (JSONCodec{}).Unmarshal(js, &fromJSON); err != nil {
		t.Fatal(err)
	}
	got := &collectv1.CollectRequest{}
	if err := proto.Unmarshal(fromJSON.Bytes, got); err != nil || !proto.Equal(got, want) {
		t.Fatalf("JSON batch decodes to %v (%v), want %v", got, err, want)
	}
	var fromProto Batch
	in := bytes.Clone(fromJSON.Bytes)
	if err := (ProtoCodec{}).Unmarshal(in, &fromProto); err != nil {
		t.Fatal(err)
	}
	in[0] ^= 0xff
	if !bytes.Equal(fromProto.Bytes, fromJSON.Bytes) {
		t.Fatal("the binary codec kept the caller's buffer")
	}
	var stream StreamRequest
	if err := (JSONCodec{}).Unmarshal([]byte(`{"sequence":"3","batch":{"clientId":"c"}}`), &stream); err != nil {
		t.Fatal(err)
	}
	if stream.Sequence != 3 || !bytes.Equal(stream.Batch, []byte{0x12, 0x01, 'c'}) {
		t.Fatalf("stream request %+v", stream)
	}
	if err := (JSONCodec{}).Unmarshal([]byte(`{"events":[{"params":{"p":{"a":1}`), &fromJSON); err == nil {
		t.Error("truncated JSON accepted")
	}
	if b, err := (GRPCCodec{}).Marshal(&Batch{Bytes: []byte{1, 2}}); err != nil || !bytes.Equal(b, []byte{1, 2}) {
		t.Errorf("gRPC codec sent %x, %v", b, err)
	}
}
