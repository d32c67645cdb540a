package kafkalog_test

import (
	"context"
	"testing"
	"time"
)

// TestProbe: the probe asks a broker, not the client's cache: it passes
// while the topic has leaders and fails once the topic is gone, although
// the log's clients still hold its metadata.
func TestProbe(t *testing.T) {
	bs := brokers(t)
	topic := newTopic(t, bs, 2)
	l := openLog(t, bs, topic)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Probe(ctx); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if err := testAdmin(t, bs).DeleteTopic(topic); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := l.Probe(ctx)
		if err != nil {
			t.Logf("probe of a deleted topic: %v", err)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the probe passes for a deleted topic")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := l.Partitions(ctx); err != nil {
		t.Logf("(the cached partitions also fail: %v)", err)
	}
}
