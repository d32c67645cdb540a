package kafkalog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// DefaultPartitions is the partition count InitTopic uses when
// TopicSpec.Partitions is 0. It is fixed once the topic exists: changing it
// would move keys to other partitions.
const DefaultPartitions = 12

// Topic configuration names InitTopic sets.
const (
	configRetentionMs    = "retention.ms"
	configMinISR         = "min.insync.replicas"
	configTimestampType  = "message.timestamp.type"
	timestampLogAppend   = "LogAppendTime"
	topicReadyTimeout    = 30 * time.Second
	topicReadyPollPeriod = 100 * time.Millisecond
)

// TopicSpec describes the log's topic for InitTopic. Zero fields take
// defaults.
type TopicSpec struct {
	// Partitions is the partition count; 0 means DefaultPartitions for a
	// new topic and "any" when verifying an existing one.
	Partitions int32
	// ReplicationFactor is the replica count of each partition; 0 means
	// min(3, brokers in the cluster) for a new topic and "any" when
	// verifying.
	ReplicationFactor int16
	// MinInsyncReplicas is how many replicas must have a record before an
	// acks=all produce succeeds; 0 means ReplicationFactor-1 (at least 1).
	MinInsyncReplicas int
	// RetentionMs is how long records are kept, in milliseconds; -1 (and
	// 0, the default) keep them forever: the log is the source of truth.
	RetentionMs int64
}

// TopicMismatchError reports an existing topic that differs from the
// TopicSpec given to InitTopic.
type TopicMismatchError struct {
	Topic      string
	Mismatches []string // e.g. "partitions: 4, want 12"
}

func (e *TopicMismatchError) Error() string {
	msg := fmt.Sprintf("kafkalog: topic %q exists but differs from the requested spec: %s", e.Topic, strings.Join(e.Mismatches, "; "))
	for _, m := range e.Mismatches {
		if strings.HasPrefix(m, "partitions:") {
			msg += " (the partition count cannot change in place: it decides which partition every key is in; fix the spec or migrate to a new topic)"
			break
		}
	}
	return msg
}

// InitTopic creates the log's topic with spec (partition count, replication
// factor, retention.ms, min.insync.replicas, and LogAppendTime timestamps),
// waiting until every partition has a leader. If the topic already exists
// it verifies it instead and returns created=false, with a
// *TopicMismatchError listing every difference from spec.
func InitTopic(ctx context.Context, cfg Config, spec TopicSpec) (created bool, err error) {
	cfg, err = cfg.ready()
	if err != nil {
		return false, err
	}
	installLogger(cfg.Logger)
	if spec.Partitions < 0 || spec.ReplicationFactor < 0 || spec.MinInsyncReplicas < 0 || spec.RetentionMs < -1 {
		return false, fmt.Errorf("kafkalog: init topic %q: invalid spec %+v", cfg.Topic, spec)
	}
	err = withAdmin(ctx, cfg, func(admin sarama.ClusterAdmin) error {
		var err error
		created, err = initTopic(ctx, cfg, admin, spec)
		return err
	})
	return created, err
}

func initTopic(ctx context.Context, cfg Config, admin sarama.ClusterAdmin, spec TopicSpec) (bool, error) {
	topic := cfg.Topic
	if spec.RetentionMs == 0 {
		spec.RetentionMs = -1
	}
	want := spec // zero fields of want mean "any" when verifying
	if spec.Partitions == 0 {
		spec.Partitions = DefaultPartitions
	}
	if spec.ReplicationFactor == 0 {
		brokers, _, err := admin.DescribeCluster()
		if err != nil {
			return false, fmt.Errorf("kafkalog: init topic %q: describe cluster: %w", topic, err)
		}
		spec.ReplicationFactor = int16(min(3, max(1, len(brokers))))
	}
	if spec.MinInsyncReplicas == 0 {
		spec.MinInsyncReplicas = max(1, int(spec.ReplicationFactor)-1)
	}
	retention := strconv.FormatInt(spec.RetentionMs, 10)
	minISR := strconv.Itoa(spec.MinInsyncReplicas)
	tsType := timestampLogAppend
	err := admin.CreateTopic(topic, &sarama.TopicDetail{
		NumPartitions:     spec.Partitions,
		ReplicationFactor: spec.ReplicationFactor,
		ConfigEntries: map[string]*string{
			configRetentionMs:   &retention,
			configMinISR:        &minISR,
			configTimestampType: &tsType,
		},
	}, false)
	if errors.Is(err, sarama.ErrTopicAlreadyExists) {
		return false, verifyTopic(admin, topic, want)
	}
	if err != nil {
		return false, fmt.Errorf("kafkalog: create topic %q: %w", topic, err)
	}
	if err := waitTopicReady(ctx, admin, topic, spec.Partitions); err != nil {
		return true, err
	}
	return true, nil
}

// verifyTopic compares an existing topic with want, whose zero partition
// count, replication factor and min.insync.replicas mean "any".
func verifyTopic(admin sarama.ClusterAdmin, topic string, want TopicSpec) error {
	md, err := describeTopic(admin, topic)
	if err != nil {
		return err
	}
	var bad []string
	if n := int32(len(md.Partitions)); want.Partitions != 0 && n != want.Partitions {
		bad = append(bad, fmt.Sprintf("partitions: %d, want %d", n, want.Partitions))
	}
	if want.ReplicationFactor != 0 && len(md.Partitions) > 0 {
		if rf := int16(len(md.Partitions[0].Replicas)); rf != want.ReplicationFactor {
			bad = append(bad, fmt.Sprintf("replication factor: %d, want %d", rf, want.ReplicationFactor))
		}
	}
	configs, err := topicConfigs(admin, topic, configRetentionMs, configMinISR)
	if err != nil {
		return err
	}
	if got := configs[configRetentionMs]; got != strconv.FormatInt(want.RetentionMs, 10) {
		bad = append(bad, fmt.Sprintf("%s: %s, want %d", configRetentionMs, got, want.RetentionMs))
	}
	if got := configs[configMinISR]; want.MinInsyncReplicas != 0 && got != strconv.Itoa(want.MinInsyncReplicas) {
		bad = append(bad, fmt.Sprintf("%s: %s, want %d", configMinISR, got, want.MinInsyncReplicas))
	}
	if len(bad) > 0 {
		return &TopicMismatchError{Topic: topic, Mismatches: bad}
	}
	return nil
}

func describeTopic(admin sarama.ClusterAdmin, topic string) (*sarama.TopicMetadata, error) {
	mds, err := admin.DescribeTopics([]string{topic})
	if err != nil {
		return nil, fmt.Errorf("kafkalog: describe topic %q: %w", topic, err)
	}
	for _, md := range mds {
		if md.Name != topic {
			continue
		}
		if !errors.Is(md.Err, sarama.ErrNoError) {
			return nil, fmt.Errorf("kafkalog: describe topic %q: %w", topic, md.Err)
		}
		return md, nil
	}
	return nil, fmt.Errorf("kafkalog: describe topic %q: %w", topic, sarama.ErrUnknownTopicOrPartition)
}

func topicConfigs(admin sarama.ClusterAdmin, topic string, names ...string) (map[string]string, error) {
	results, err := admin.DescribeConfigs([]*sarama.ConfigResource{{Type: sarama.TopicResource, Name: topic, ConfigNames: names}}, sarama.DescribeConfigsOptions{})
	if err != nil {
		return nil, fmt.Errorf("kafkalog: describe configs of topic %q: %w", topic, err)
	}
	out := make(map[string]string)
	for _, r := range results {
		if r.Name != topic {
			continue
		}
		if !errors.Is(r.ErrorCode, sarama.ErrNoError) {
			return nil, fmt.Errorf("kafkalog: describe configs of topic %q: %w: %s", topic, r.ErrorCode, r.ErrorMsg)
		}
		for _, e := range r.Configs {
			out[e.Name] = e.Value
		}
	}
	return out, nil
}

// waitTopicReady waits until the new topic's metadata lists n partitions,
// each with a leader, so clients opened next find it.
func waitTopicReady(ctx context.Context, admin sarama.ClusterAdmin, topic string, n int32) error {
	deadline := time.Now().Add(topicReadyTimeout)
	for {
		md, err := describeTopic(admin, topic)
		if err == nil && int32(len(md.Partitions)) == n {
			ready := true
			for _, p := range md.Partitions {
				if !errors.Is(p.Err, sarama.ErrNoError) || p.Leader < 0 {
					ready = false
					break
				}
			}
			if ready {
				// Metadata can name a leader before it serves the
				// partition: ask each for its end offset.
				err = probeOffsets(admin, topic, n)
				if err == nil {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kafkalog: topic %q created but not ready after %v (last error: %v)", topic, topicReadyTimeout, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafkalog: wait for topic %q: %w", topic, ctx.Err())
		case <-time.After(topicReadyPollPeriod):
		}
	}
}

func probeOffsets(admin sarama.ClusterAdmin, topic string, n int32) error {
	req := make(map[int32]int64, n)
	for p := range n {
		req[p] = sarama.OffsetNewest
	}
	res, err := admin.ListOffsets(map[string]map[int32]int64{topic: req}, nil)
	if err != nil {
		return err
	}
	for p := range n {
		r := res[topic][p]
		if r == nil {
			return fmt.Errorf("no offset for partition %d", p)
		}
		if r.Err != nil && !errors.Is(r.Err, sarama.ErrNoError) {
			return fmt.Errorf("partition %d: %w", p, r.Err)
		}
	}
	return nil
}

// CheckTopic returns the partition count of the log's topic, or an error
// saying to run `sextant kafka init` when it does not exist.
func CheckTopic(ctx context.Context, cfg Config) (partitions int32, err error) {
	cfg, err = cfg.ready()
	if err != nil {
		return 0, err
	}
	installLogger(cfg.Logger)
	err = withAdmin(ctx, cfg, func(admin sarama.ClusterAdmin) error {
		md, err := describeTopic(admin, cfg.Topic)
		if errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
			return missingTopic(cfg.Topic, cfg.Brokers)
		}
		if err != nil {
			return err
		}
		partitions = int32(len(md.Partitions))
		return nil
	})
	return partitions, err
}

func missingTopic(topic string, brokers []string) error {
	return fmt.Errorf("kafkalog: topic %q does not exist on %v: create it with `sextant kafka init`", topic, brokers)
}

// topicPartitions checks the topic exists through client and returns its
// partition count.
func topicPartitions(client sarama.Client, topic string) (int, error) {
	ps, err := client.Partitions(topic)
	if errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		return 0, missingTopic(topic, brokerAddrs(client))
	}
	if err != nil {
		return 0, fmt.Errorf("kafkalog: partitions of topic %q: %w", topic, err)
	}
	if len(ps) == 0 {
		return 0, fmt.Errorf("kafkalog: topic %q has no partitions", topic)
	}
	sorted := slices.Sorted(slices.Values(ps))
	for i, p := range sorted {
		if p != int32(i) {
			return 0, fmt.Errorf("kafkalog: topic %q has unexpected partition ids %v", topic, sorted)
		}
	}
	return len(ps), nil
}

func brokerAddrs(client sarama.Client) []string {
	var out []string
	for _, b := range client.Brokers() {
		out = append(out, b.Addr())
	}
	return out
}

// withAdmin runs fn with a short-lived cluster admin. sarama's calls are not
// cancellable: when ctx ends first, withAdmin returns ctx's error and the
// admin is closed once fn returns.
func withAdmin(ctx context.Context, cfg Config, fn func(sarama.ClusterAdmin) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() {
		admin, err := sarama.NewClusterAdmin(cfg.Brokers, cfg.baseConfig())
		if err != nil {
			done <- fmt.Errorf("kafkalog: connect to %v: %w", cfg.Brokers, err)
			return
		}
		err = fn(admin)
		if cerr := admin.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("kafkalog: close admin client: %w", cerr)
		}
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
