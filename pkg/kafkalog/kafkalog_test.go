package kafkalog_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/sextant-analytics/sextant/pkg/eventlog"
	"github.com/sextant-analytics/sextant/pkg/eventlog/eventlogtest"
	"github.com/sextant-analytics/sextant/pkg/kafkalog"
)

// The tests need a Kafka broker: SEXTANT_KAFKA_BROKERS=host:port[,host:port...].

func brokers(tb testing.TB) []string {
	tb.Helper()
	v := os.Getenv("SEXTANT_KAFKA_BROKERS")
	if v == "" {
		tb.Skip("SEXTANT_KAFKA_BROKERS is not set")
	}
	return strings.Split(v, ",")
}

func randomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

var testLogger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

func config(bs []string, topic string) kafkalog.Config {
	return kafkalog.Config{Brokers: bs, Topic: topic, ClientID: "sextant-test", Logger: testLogger}
}

func testAdmin(tb testing.TB, bs []string) sarama.ClusterAdmin {
	tb.Helper()
	sc := sarama.NewConfig()
	sc.Version = sarama.V4_0_0_0
	sc.ClientID = "sextant-test"
	admin, err := sarama.NewClusterAdmin(bs, sc)
	if err != nil {
		tb.Fatalf("admin client: %v", err)
	}
	tb.Cleanup(func() { _ = admin.Close() })
	return admin
}

// deleteAtEnd deletes topic when the test ends.
func deleteAtEnd(tb testing.TB, bs []string, topic string) {
	tb.Cleanup(func() {
		sc := sarama.NewConfig()
		sc.Version = sarama.V4_0_0_0
		admin, err := sarama.NewClusterAdmin(bs, sc)
		if err != nil {
			tb.Errorf("delete topic %s: %v", topic, err)
			return
		}
		defer admin.Close()
		if err := admin.DeleteTopic(topic); err != nil && !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
			tb.Errorf("delete topic %s: %v", topic, err)
		}
	})
}

// newTopic creates a fresh topic of n partitions, deleted when the test ends.
func newTopic(tb testing.TB, bs []string, n int) string {
	tb.Helper()
	topic := randomName("test-")
	deleteAtEnd(tb, bs, topic)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	created, err := kafkalog.InitTopic(ctx, config(bs, topic), kafkalog.TopicSpec{Partitions: int32(n), ReplicationFactor: 1})
	if err != nil || !created {
		tb.Fatalf("InitTopic(%s) = %v, %v", topic, created, err)
	}
	return topic
}

func openLog(tb testing.TB, bs []string, topic string) *kafkalog.Log {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := kafkalog.Open(ctx, config(bs, topic))
	if err != nil {
		tb.Fatalf("Open(%s): %v", topic, err)
	}
	tb.Cleanup(func() { _ = l.Close() })
	return l
}

func TestConformance(t *testing.T) {
	bs := brokers(t)
	eventlogtest.Run(t, func(t *testing.T, partitions int) func() eventlog.Log {
		topic := newTopic(t, bs, partitions)
		return func() eventlog.Log {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			l, err := kafkalog.Open(ctx, config(bs, topic))
			if err != nil {
				t.Fatalf("Open(%s): %v", topic, err)
			}
			return l
		}
	})
}

func TestInitTopic(t *testing.T) {
	bs := brokers(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	topic := randomName("test-init-")
	deleteAtEnd(t, bs, topic)
	cfg := config(bs, topic)

	if _, err := kafkalog.CheckTopic(ctx, cfg); err == nil || !strings.Contains(err.Error(), "sextant kafka init") {
		t.Fatalf("CheckTopic of a missing topic = %v, want an error saying to run `sextant kafka init`", err)
	}
	if l, err := kafkalog.Open(ctx, cfg); err == nil || !strings.Contains(err.Error(), "sextant kafka init") {
		if l != nil {
			_ = l.Close()
		}
		t.Fatalf("Open of a missing topic = %v, want an error saying to run `sextant kafka init`", err)
	}

	spec := kafkalog.TopicSpec{Partitions: 3, ReplicationFactor: 1}
	if created, err := kafkalog.InitTopic(ctx, cfg, spec); err != nil || !created {
		t.Fatalf("first InitTopic = %v, %v; want created", created, err)
	}
	if n, err := kafkalog.CheckTopic(ctx, cfg); err != nil || n != 3 {
		t.Fatalf("CheckTopic = %d, %v; want 3", n, err)
	}
	for _, s := range []kafkalog.TopicSpec{spec, {}, {Partitions: 3, MinInsyncReplicas: 1, RetentionMs: -1}} {
		if created, err := kafkalog.InitTopic(ctx, cfg, s); err != nil || created {
			t.Fatalf("InitTopic(%+v) of the existing topic = %v, %v; want verified, not created", s, created, err)
		}
	}

	results, err := testAdmin(t, bs).DescribeConfigs([]*sarama.ConfigResource{{Type: sarama.TopicResource, Name: topic}}, sarama.DescribeConfigsOptions{})
	if err != nil || len(results) != 1 || results[0].ErrorCode != sarama.ErrNoError {
		t.Fatalf("DescribeConfigs: %v %+v", err, results)
	}
	got := map[string]string{}
	for _, e := range results[0].Configs {
		got[e.Name] = e.Value
	}
	for k, want := range map[string]string{"retention.ms": "-1", "min.insync.replicas": "1", "message.timestamp.type": "LogAppendTime"} {
		if got[k] != want {
			t.Errorf("topic config %s = %q, want %q", k, got[k], want)
		}
	}

	for _, tc := range []struct {
		spec kafkalog.TopicSpec
		want []string
	}{
		{kafkalog.TopicSpec{Partitions: 5}, []string{"partitions: 3, want 5"}},
		{kafkalog.TopicSpec{Partitions: 2, RetentionMs: 86_400_000}, []string{"partitions: 3, want 2", "retention.ms: -1, want 86400000"}},
		{kafkalog.TopicSpec{ReplicationFactor: 3, MinInsyncReplicas: 2}, []string{"replication factor: 1, want 3", "min.insync.replicas: 1, want 2"}},
	} {
		created, err := kafkalog.InitTopic(ctx, cfg, tc.spec)
		var mismatch *kafkalog.TopicMismatchError
		if created || !errors.As(err, &mismatch) {
			t.Fatalf("InitTopic(%+v) = %v, %v; want a *TopicMismatchError", tc.spec, created, err)
		}
		if !slices.Equal(mismatch.Mismatches, tc.want) {
			t.Errorf("InitTopic(%+v) mismatches = %q, want %q", tc.spec, mismatch.Mismatches, tc.want)
		}
		t.Logf("InitTopic(%+v): %v", tc.spec, err)
	}
}

// keyFor returns a key PartitionFor places in p of n.
func keyFor(tag string, p int32, n int) []byte {
	for i := 0; ; i++ {
		k := []byte(tag + "-" + strconv.Itoa(i))
		if eventlog.PartitionFor(k, n) == p {
			return k
		}
	}
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %v waiting until %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// TestGroup runs two members of one group: they split the partitions, the
// survivor takes all of them over when the other closes, and the offsets
// committed by claims are what a new process reads.
func TestGroup(t *testing.T) {
	const n, perPartition = 4, 10
	bs := brokers(t)
	topic := newTopic(t, bs, n)
	group := randomName("test-group-")
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Second)
	defer cancel()
	a, b := openLog(t, bs, topic), openLog(t, bs, topic)

	var msgs []eventlog.Message
	for p := range int32(n) {
		for i := range perPartition {
			msgs = append(msgs, eventlog.Message{Key: keyFor("group", p, n), Value: []byte(strconv.Itoa(i))})
		}
	}
	if err := a.Append(ctx, msgs); err != nil {
		t.Fatalf("Append: %v", err)
	}
	// A plain commit while the group has no member: the claims' streams
	// start at offset 3, while the claims read from 0 (as a projection
	// resuming from its own, older checkpoint would).
	for p := range int32(n) {
		if err := a.Commit(ctx, group, p, 3); err != nil {
			t.Fatalf("Commit before the group runs: %v", err)
		}
	}

	var (
		mu       sync.Mutex
		owner    = map[int32]string{} // partition -> member currently claiming it
		finished = map[int32]bool{}   // the current claim read and committed
		problems []string
	)
	claim := func(name string, l *kafkalog.Log) func(ctx context.Context, p int32) error {
		return func(ctx context.Context, p int32) error {
			mu.Lock()
			if o, ok := owner[p]; ok {
				problems = append(problems, fmt.Sprintf("%s claimed partition %d while %s held it", name, p, o))
			}
			owner[p], finished[p] = name, false
			mu.Unlock()
			defer func() {
				mu.Lock()
				if owner[p] == name {
					delete(owner, p)
				}
				mu.Unlock()
			}()
			fail := func(format string, args ...any) error {
				if ctx.Err() != nil { // revoked meanwhile
					return nil
				}
				mu.Lock()
				problems = append(problems, fmt.Sprintf("%s partition %d: ", name, p)+fmt.Sprintf(format, args...))
				mu.Unlock()
				return nil
			}
			end, err := l.EndOffset(ctx, p)
			if err != nil || end != perPartition {
				return fail("EndOffset = %d, %v; want %d", end, err, perPartition)
			}
			for off := int64(0); off < end; {
				recs, err := l.Read(ctx, p, off, 4)
				if err != nil {
					return fail("Read(%d): %v", off, err)
				}
				for _, r := range recs {
					if r.Partition != p || r.Offset != off || string(r.Value) != strconv.Itoa(int(off)) {
						return fail("Read returned (p=%d, offset=%d, value %q), want offset %d", r.Partition, r.Offset, r.Value, off)
					}
					off++
				}
			}
			if err := l.Commit(ctx, group, p, end); err != nil {
				return fail("Commit inside the claim: %v", err)
			}
			mu.Lock()
			finished[p] = true
			mu.Unlock()
			<-ctx.Done()
			return nil
		}
	}
	runA, runB := make(chan error, 1), make(chan error, 1)
	bctx, stopB := context.WithCancel(ctx)
	defer stopB()
	go func() { runA <- a.Run(ctx, group, claim("a", a)) }()
	go func() { runB <- b.Run(bctx, group, claim("b", b)) }()

	count := func(name string) (claimed, done int) {
		for p, o := range owner {
			if o == name {
				claimed++
				if finished[p] {
					done++
				}
			}
		}
		return
	}
	took := waitFor(t, 30*time.Second, "the two members share the 4 partitions", func() bool {
		mu.Lock()
		defer mu.Unlock()
		ca, da := count("a")
		cb, db := count("b")
		return ca > 0 && cb > 0 && ca+cb == n && da+db == n
	})
	t.Logf("two members split the partitions after %v: %v", took, owner)

	// A process outside the group cannot commit for it while it has members.
	c := openLog(t, bs, topic)
	if err := c.Commit(ctx, group, 0, 1); err == nil {
		t.Errorf("Commit from a non-member of an active group succeeded; want Kafka to reject it")
	} else {
		t.Logf("non-member commit rejected as expected: %v", err)
	}

	if err := a.Close(); err != nil {
		t.Fatalf("Close a: %v", err)
	}
	select {
	case err := <-runA:
		if !errors.Is(err, eventlog.ErrClosed) {
			t.Errorf("a.Run after a.Close = %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a.Run did not return after a.Close")
	}
	took = waitFor(t, kafkalog.DefaultSessionTimeout, "b took all partitions over", func() bool {
		mu.Lock()
		defer mu.Unlock()
		cb, db := count("b")
		return cb == n && db == n
	})
	t.Logf("b took all %d partitions over %v after a closed", n, took)

	for p := range int32(n) {
		if got, err := c.Committed(ctx, group, p); err != nil || got != perPartition {
			t.Errorf("Committed(%d) seen by a new process = %d, %v; want %d", p, got, err, perPartition)
		}
	}

	stopB()
	select {
	case err := <-runB:
		if err != nil {
			t.Errorf("b.Run after its context ended = %v, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("b.Run did not return after its context ended")
	}
	// The group is empty again: plain commits work.
	if err := c.Commit(ctx, group, 1, 7); err != nil {
		t.Fatalf("Commit to the empty group: %v", err)
	}
	if got, err := c.Committed(ctx, group, 1); err != nil || got != 7 {
		t.Fatalf("Committed(1) = %d, %v; want 7", got, err)
	}

	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Error(p)
	}
}

func BenchmarkAppend(b *testing.B) {
	bs := brokers(b)
	topic := newTopic(b, bs, 4)
	l := openLog(b, bs, topic)
	value := make([]byte, 200)
	_, _ = rand.Read(value)
	headers := map[string]string{eventlog.HeaderSchemaVersion: eventlog.SchemaVersion1, eventlog.HeaderContentType: eventlog.ContentTypeEvent}
	for _, batch := range []int{25, 500} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			b.SetParallelism(32) // a collector serves many requests at once
			var seq atomic.Int64
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				msgs := make([]eventlog.Message, batch)
				for pb.Next() {
					for i := range msgs {
						msgs[i] = eventlog.Message{
							Key:     fmt.Appendf(nil, "visitor-%d", seq.Add(1)%100_000),
							Value:   value,
							Headers: headers,
						}
					}
					if err := l.Append(b.Context(), msgs); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "events/s")
		})
	}
}
