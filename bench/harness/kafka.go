package main

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sextant-analytics/sextant/pkg/kafkalog"
	"github.com/sextant-analytics/sextant/pkg/seal"

	"github.com/IBM/sarama"
	"google.golang.org/protobuf/proto"

	eventv1 "github.com/sextant-analytics/sextant/gen/sextant/event/v1"
	"github.com/sextant-analytics/sextant/pkg/eventlog"
	"github.com/sextant-analytics/sextant/pkg/loadgen"
	"github.com/sextant-analytics/sextant/services/collect"
)

// The baselines: a bare Sarama async producer writing the events Sextant
// writes, and a bare Sarama consumer reading them back, with exactly the
// settings of pkg/kafkalog (kafkalog.SaramaConfigs).
func saramaConfigs(brokers []string) (producer, consumer *sarama.Config, err error) {
	return kafkalog.SaramaConfigs(kafkalog.Config{Brokers: brokers, ClientID: "sextant-bench-raw"})
}

// rawMessage is one event as collect appends it.
type rawMessage struct {
	key, value []byte
}

var rawHeaders = []sarama.RecordHeader{
	{Key: []byte(eventlog.HeaderSchemaVersion), Value: []byte(eventlog.SchemaVersion1)},
	{Key: []byte(eventlog.HeaderContentType), Value: []byte(eventlog.ContentTypeEvent)},
}

// encodeEvents makes n events exactly as collect would append them: the
// generator's batches, validated, enriched and encoded by collect's
// Encoder, for the given property ids.
func encodeEvents(cfg loadgen.Config, propertyIDs []string, n int) ([]rawMessage, int64, error) {
	gens := make([]*loadgen.Generator, len(propertyIDs))
	for i := range gens {
		g, err := loadgen.New(cfg, i)
		if err != nil {
			return nil, 0, err
		}
		gens[i] = g
	}
	out := make([]rawMessage, 0, n)
	var bytes int64
	now := time.Now()
	enc := collect.NewEncoder(collect.DefaultLimits())
	for i := 0; len(out) < n; i++ {
		p := i % len(gens)
		req, err := proto.Marshal(loadgen.ToProto(gens[p].Next(n - len(out))))
		if err != nil {
			return nil, 0, err
		}
		evs, err := enc.Encode(req, collect.Meta{
			PropertyID: propertyIDs[p], ClientIP: netip.MustParseAddr("127.0.0.1"), Now: now,
		})
		if err != nil {
			return nil, 0, fmt.Errorf("generated batch rejected: %w", err)
		}
		for _, m := range evs.Messages {
			out = append(out, rawMessage{key: m.Key, value: m.Value})
			bytes += int64(len(m.Value))
		}
	}
	return out, bytes, nil
}

// RawProducerResult is the raw producer baseline.
type RawProducerResult struct {
	Events          int64   `json:"events"`
	DistinctEvents  int     `json:"distinctEvents"`
	MeanEventBytes  float64 `json:"meanEventBytes"`
	Seconds         float64 `json:"seconds"`
	EventsPerSecond float64 `json:"eventsPerSecond"`
	Errors          int64   `json:"errors"`
	// Tries is how many times the events were produced; the figures are
	// the fastest try's (a second-long run moves with the broker's own
	// background work).
	Tries int `json:"tries,omitempty"`
}

// rawProduce writes n events (cycling through msgs) to topic as fast as
// the async producer takes them, and returns once all are acknowledged.
func rawProduce(ctx context.Context, brokers []string, topic string, msgs []rawMessage, n int64) (RawProducerResult, error) {
	res := RawProducerResult{Events: n, DistinctEvents: len(msgs)}
	var total int64
	for _, m := range msgs {
		total += int64(len(m.value))
	}
	res.MeanEventBytes = float64(total) / float64(len(msgs))
	pc, _, err := saramaConfigs(brokers)
	if err != nil {
		return res, err
	}
	p, err := sarama.NewAsyncProducer(brokers, pc)
	if err != nil {
		return res, err
	}
	var acked, failed atomic.Int64
	done := make(chan struct{})
	var once sync.Once
	finish := func() {
		if acked.Load()+failed.Load() >= n {
			once.Do(func() { close(done) })
		}
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range p.Successes() {
			acked.Add(1)
			finish()
		}
	}()
	go func() {
		defer wg.Done()
		for range p.Errors() {
			failed.Add(1)
			finish()
		}
	}()
	start := time.Now()
	go func() {
		in := p.Input()
		now := time.Now()
		for i := int64(0); i < n; i++ {
			if i%512 == 0 {
				now = time.Now()
			}
			m := msgs[i%int64(len(msgs))]
			select {
			case in <- &sarama.ProducerMessage{Topic: topic, Key: sarama.ByteEncoder(m.key), Value: sarama.ByteEncoder(m.value), Headers: rawHeaders, Timestamp: now}:
			case <-ctx.Done():
				return
			}
		}
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
	elapsed := time.Since(start)
	p.AsyncClose()
	wg.Wait()
	res.Seconds = elapsed.Seconds()
	res.Errors = failed.Load()
	res.EventsPerSecond = float64(acked.Load()) / res.Seconds
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	return res, nil
}

// RawConsumerResult is the raw consumer baseline.
type RawConsumerResult struct {
	Events          int64   `json:"events"`
	Bytes           int64   `json:"bytes"`
	Seconds         float64 `json:"seconds"`
	EventsPerSecond float64 `json:"eventsPerSecond"`
	Decoded         bool    `json:"decoded"`
}

// rawConsume reads every partition of topic from its first offset to its
// end offset at the start, in parallel; with an opener, it decodes each
// event (opening sealed records, which hold a batch each, with it) and
// counts events, else records.
func rawConsume(ctx context.Context, brokers []string, topic string, opener *seal.Opener) (RawConsumerResult, error) {
	decode := opener != nil
	res := RawConsumerResult{Decoded: decode}
	_, cc, err := saramaConfigs(brokers)
	if err != nil {
		return res, err
	}
	client, err := sarama.NewClient(brokers, cc)
	if err != nil {
		return res, err
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		return res, err
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return res, err
	}
	defer consumer.Close()
	type span struct{ first, end int64 }
	spans := make(map[int32]span)
	for _, p := range parts {
		first, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			return res, err
		}
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return res, err
		}
		spans[p] = span{first, end}
	}
	var events, bytes atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, len(parts))
	start := time.Now()
	for _, p := range parts {
		sp := spans[p]
		if sp.end <= sp.first {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, sp.first)
		if err != nil {
			return res, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pc.Close()
			var ev eventv1.Event
			var opened []byte
			for {
				select {
				case m := <-pc.Messages():
					bytes.Add(int64(len(m.Value)))
					if !decode {
						events.Add(1)
					} else if err := decodeRecord(ctx, opener, m, &ev, &opened, &events); err != nil {
						errs <- err
						return
					}
					if m.Offset+1 >= sp.end {
						return
					}
				case <-ctx.Done():
					errs <- ctx.Err()
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		return res, err
	}
	res.Events, res.Bytes, res.Seconds = events.Load(), bytes.Load(), elapsed.Seconds()
	if res.Seconds > 0 {
		res.EventsPerSecond = float64(res.Events) / res.Seconds
	}
	return res, nil
}

// deleteTopics deletes the harness's own topics.
func deleteTopics(brokers []string, topics ...string) error {
	sc := sarama.NewConfig()
	sc.Version = sarama.V4_3_1_0
	sc.ClientID = "sextant-bench-raw"
	admin, err := sarama.NewClusterAdmin(brokers, sc)
	if err != nil {
		return err
	}
	defer admin.Close()
	var first error
	for _, t := range topics {
		if err := admin.DeleteTopic(t); err != nil && first == nil {
			first = fmt.Errorf("delete topic %s: %w", t, err)
		}
	}
	return first
}

// decodeRecord decodes the events of a record, counting them.
func decodeRecord(ctx context.Context, opener *seal.Opener, m *sarama.ConsumerMessage, ev *eventv1.Event, opened *[]byte, events *atomic.Int64) error {
	rec := eventlog.Record{Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value, Headers: make(map[string]string, len(m.Headers))}
	for _, h := range m.Headers {
		rec.Headers[string(h.Key)] = string(h.Value)
	}
	if !seal.Sealed(&rec) {
		events.Add(1)
		return proto.Unmarshal(m.Value, ev)
	}
	payload, err := opener.Open(ctx, (*opened)[:0], &rec)
	if err != nil {
		return fmt.Errorf("open record %d@%d: %w", m.Partition, m.Offset, err)
	}
	*opened = payload
	return seal.Events(payload, func(_ int, b []byte) error {
		events.Add(1)
		return proto.Unmarshal(b, ev)
	})
}
