package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

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

	check := func(where string, b []byte) {
		for _, ip := range ips {
			if bytes.Contains(b, []byte(ip)) {
				t.Errorf("%s holds %s", where, ip)
			}
		}
	}
	// Kafka: every record of both topics (the dead letters' when there
	// are any), from the start: its bytes, and its events opened.
	records, control := 0, 0
	for _, topic := range []string{s.topic, s.topic + ".deadletters"} {
		if topic != s.topic && !topicExists(t, topic) {
			continue
		}
		for _, rec := range kafkaRecords(t, topic) {
			records++
			where := fmt.Sprintf("%s/%d@%d", topic, rec.Partition, rec.Offset)
			check(where+" key", rec.Key)
			check(where+" value", rec.Value)
			for k, v := range rec.Headers {
				check(where+" header "+k, []byte(v))
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
		}
	}
	if records < 2 || control == 0 {
		t.Fatalf("read %d records, %d holding the page URL sent: the scan would not find an address stored as the URL is", records, control)
	}
	// Cassandra: every cell of every table of the keyspace.
	rows := cassandraCells(t, s.keyspace, check)
	if rows < 10 {
		t.Fatalf("scanned %d rows: the keyspace was not read", rows)
	}
	t.Logf("no address in %d Kafka records and %d rows", records, rows)
}
