package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"
	"github.com/sextant-analytics/sextant/pkg/cqlstore"
	"github.com/sextant-analytics/sextant/pkg/eventlog"
	"github.com/sextant-analytics/sextant/pkg/pebblelog"
	"github.com/sextant-analytics/sextant/pkg/pebblestore"
	"github.com/sextant-analytics/sextant/pkg/seal"
)

// embeddedLog returns every record of the event log of a stopped server's
// data directory, and an opener over its key store.
func embeddedLog(t *testing.T, dir string) ([]eventlog.Record, *seal.Opener) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := pebblelog.Open(filepath.Join(dir, "log"), pebblelog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	parts, err := l.Partitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []eventlog.Record
	for _, p := range parts {
		end, err := l.EndOffset(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		for off := int64(0); off < end; {
			recs, err := l.Read(ctx, p, off, 1000)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, recs...)
			off = recs[len(recs)-1].Offset + 1
		}
	}
	keys, err := pebblestore.OpenKeys(filepath.Join(dir, "keys"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = keys.Close() })
	return out, seal.NewOpener(keys)
}

// stackOpener returns an opener over the key store of a stack's keyspace.
func stackOpener(t *testing.T, s *stack) *seal.Opener {
	t.Helper()
	st, err := cqlstore.Open(t.Context(), cqlstore.Config{Hosts: strings.Split(os.Getenv("SEXTANT_CQL_HOSTS"), ","), Keyspace: s.keyspace})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return seal.NewOpener(st)
}

// kafkaRecords returns every record of topic, from the start.
func kafkaRecords(t *testing.T, topic string) []eventlog.Record {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Consumer.Return.Errors = true
	client, err := sarama.NewClient(strings.Split(os.Getenv("SEXTANT_KAFKA_BROKERS"), ","), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	var out []eventlog.Record
	for _, part := range parts {
		end, err := client.GetOffset(topic, part, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		if end == 0 {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, part, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		for done := false; !done; {
			select {
			case m := <-pc.Messages():
				rec := eventlog.Record{Partition: part, Offset: m.Offset, Key: m.Key, Value: m.Value, Headers: map[string]string{}}
				for _, h := range m.Headers {
					rec.Headers[string(h.Key)] = string(h.Value)
				}
				out = append(out, rec)
				done = m.Offset+1 >= end
			case err := <-pc.Errors():
				t.Fatal(err)
			case <-time.After(20 * time.Second):
				t.Fatalf("%s/%d: no record within 20 s before offset %d", topic, part, end)
			}
		}
		pc.Close()
	}
	return out
}

// cassandraCells calls fn with every cell of every table of keyspace and
// returns the rows read.
func cassandraCells(t *testing.T, keyspace string, fn func(where string, b []byte)) int {
	t.Helper()
	cluster := gocql.NewCluster(strings.Split(os.Getenv("SEXTANT_CQL_HOSTS"), ",")...)
	cluster.Consistency = gocql.One
	cluster.Timeout = 20 * time.Second
	session, err := cluster.CreateSession()
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	var tables []string
	iter := session.Query(`SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?`, keyspace).Iter()
	var name string
	for iter.Scan(&name) {
		tables = append(tables, name)
	}
	if err := iter.Close(); err != nil {
		t.Fatal(err)
	}
	rows := 0
	for _, table := range tables {
		it := session.Query(fmt.Sprintf("SELECT * FROM %s.%s", keyspace, table)).Iter()
		for {
			row := map[string]any{}
			if !it.MapScan(row) {
				break
			}
			rows++
			for col, v := range row {
				b, ok := v.([]byte)
				if !ok {
					b = []byte(fmt.Sprint(v))
				}
				fn(fmt.Sprintf("%s.%s column %s", keyspace, table, col), b)
			}
		}
		if err := it.Close(); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
	}
	return rows
}

// topicExists reports whether the stack's Kafka has topic.
func topicExists(t *testing.T, topic string) bool {
	t.Helper()
	client, err := sarama.NewClient(strings.Split(os.Getenv("SEXTANT_KAFKA_BROKERS"), ","), sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	topics, err := client.Topics()
	if err != nil {
		t.Fatal(err)
	}
	return slices.Contains(topics, topic)
}
