package seal_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sextant-analytics/sextant/pkg/eventlog"
	"github.com/sextant-analytics/sextant/pkg/seal"
)

// BenchmarkSeal is collect's cost per event of sealing batches of 10
// events of 300 bytes, the subjects' keys cached (as for a visitor seen in
// the last SealerTTL).
func BenchmarkSeal(b *testing.B) {
	ctx := context.Background()
	s := seal.NewSealer(seal.NewMemory())
	event := bytes.Repeat([]byte("e"), 300)
	sub := seal.Subjects{Property: "1234567890", ClientID: "1234567890.1700000000", UserID: "user-42", Received: time.Now()}
	msgs := make([]eventlog.Message, 10)
	b.ReportAllocs()
	b.SetBytes(int64(len(event) * len(msgs)))
	for b.Loop() {
		for i := range msgs {
			msgs[i] = eventlog.Message{Value: event}
		}
		if _, err := sealAndCommit(ctx, s, msgs, sub); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(msgs)), "ns/event")
}

// BenchmarkOpen is the projection's cost per record of opening sealed
// records of 1,000 visitors, their keys held.
func BenchmarkOpen(b *testing.B) {
	ctx := context.Background()
	keys := seal.NewMemory()
	s := seal.NewSealer(keys)
	var recs []eventlog.Record
	for v := range 1000 {
		msgs, err := sealAndCommit(ctx, s, []eventlog.Message{{Value: bytes.Repeat([]byte("e"), 300)}}, seal.Subjects{Property: "1234567890", ClientID: fmt.Sprint("client-", v), Received: time.Now()})
		if err != nil {
			b.Fatal(err)
		}
		recs = append(recs, eventlog.Record{Key: msgs[0].Key, Value: msgs[0].Value, Headers: msgs[0].Headers})
	}
	o := seal.NewOpener(keys)
	if err := o.Prefetch(ctx, recs); err != nil {
		b.Fatal(err)
	}
	var dst []byte
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		var err error
		if dst, err = o.Open(ctx, dst[:0], &recs[i%len(recs)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
