package driver

import (
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// rawFrame is an already encoded protobuf message: the codec sends it as
// it is.
type rawFrame []byte

// codec sends rawFrames as they are and everything else as protobuf, so
// that batches are encoded once, by pkg/loadgen.
type codec struct{}

func (codec) Marshal(v any) (mem.BufferSlice, error) {
	if f, ok := v.(rawFrame); ok {
		return mem.BufferSlice{mem.SliceBuffer(f)}, nil
	}
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("loadgen codec: cannot marshal %T", v)
	}
	b, err := proto.Marshal(m)
	return mem.BufferSlice{mem.SliceBuffer(b)}, err
}

func (codec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("loadgen codec: cannot unmarshal into %T", v)
	}
	return proto.Unmarshal(data.Materialize(), m)
}

func (codec) Name() string { return "proto" }

const (
	collectMethod       = "/sextant.collect.v1.CollectService/Collect"
	streamCollectMethod = "/sextant.collect.v1.CollectService/StreamCollect"
)

var streamCollectDesc = &grpc.StreamDesc{StreamName: "StreamCollect", ServerStreams: true, ClientStreams: true}
