package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"
	"github.com/sextant-analytics/sextant/pkg/eventlog"
	"github.com/sextant-analytics/sextant/pkg/seal"
)

// TestNoIPStoredDistributed is TestNoIPStored on Kafka and Cassandra: the
// hits are counted, and no record (key, value, header) of the event topic
// or its dead letters, and no cell of any table of the keyspace, holds
// any of the addresses.
func TestNoIPStoredDistributed(t *testing.T) {
	needStack(t)
	s := newStack(t, 2)
	p := s.start(t)
	out := runCLI(t, s.env, "admin-key", "create")
	_, admin, ok := strings.Cut(strings.TrimSpace(out), "SEXTANT_ADMIN_KEY=")
	if !ok {
		t.Fatalf("admin-key create printed %q", out)
	}
	ips := sendIPHits(t, "http://"+p.addr, s.keys, admin)
	p.stop(t)
	ctx := t.Context()
	opener := stackOpener(t, s)

	// Kafka: every record of both topics, from the start.
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
	records, control := 0, 0
	check := func(where string, b []byte) {
		for _, ip := range ips {
			if bytes.Contains(b, []byte(ip)) {
				t.Errorf("%s holds %s", where, ip)
			}
		}
	}
	topics, err := client.Topics()
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{s.topic, s.topic + ".deadletters"} {
		if !strings.Contains(" "+strings.Join(topics, " ")+" ", " "+topic+" ") {
			continue
		}
		parts, err := client.Partitions(topic)
		if err != nil {
			t.Fatal(err)
		}
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
					records++
					where := fmt.Sprintf("%s/%d@%d", topic, part, m.Offset)
					check(where+" key", m.Key)
					check(where+" value", m.Value)
					for _, h := range m.Headers {
						check(where+" header "+string(h.Key), h.Value)
					}
					rec := eventlog.Record{Value: m.Value, Headers: map[string]string{}}
					for _, h := range m.Headers {
						rec.Headers[string(h.Key)] = string(h.Value)
					}
					if !seal.Sealed(&rec) {
						t.Errorf("%s is not sealed", where)
					} else if ev, err := opener.Open(ctx, nil, &rec); err != nil {
						t.Errorf("open %s: %v", where, err)
					} else {
						check(where+" event", ev)
						if bytes.Contains(ev, []byte(storedControl)) {
							control++
						}
					}
					done = m.Offset+1 >= end
				case err := <-pc.Errors():
					t.Fatal(err)
				case <-time.After(20 * time.Second):
					t.Fatalf("%s/%d: no record within 20 s before offset %d", topic, part, end)
				}
			}
			pc.Close()
		}
	}
	if records < 2 || control == 0 {
		t.Fatalf("read %d records, %d holding the page URL sent: the scan would not find an address stored as the URL is", records, control)
	}

	// Cassandra: every cell of every table of the keyspace.
	cluster := gocql.NewCluster(strings.Split(os.Getenv("SEXTANT_CQL_HOSTS"), ",")...)
	cluster.Consistency = gocql.One
	cluster.Timeout = 20 * time.Second
	session, err := cluster.CreateSession()
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	var tables []string
	iter := session.Query(`SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?`, s.keyspace).Iter()
	var name string
	for iter.Scan(&name) {
		tables = append(tables, name)
	}
	if err := iter.Close(); err != nil {
		t.Fatal(err)
	}
	rows := 0
	for _, table := range tables {
		it := session.Query(fmt.Sprintf("SELECT * FROM %s.%s", s.keyspace, table)).WithContext(context.Background()).Iter()
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
				check(fmt.Sprintf("%s.%s column %s", s.keyspace, table, col), b)
			}
		}
		if err := it.Close(); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
	}
	if len(tables) < 2 || rows < 10 {
		t.Fatalf("scanned %d rows of %d tables (%v): the keyspace was not read", rows, len(tables), tables)
	}
	t.Logf("no address in %d Kafka records and %d rows of %d tables", records, rows, len(tables))
}
