package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/sextant-analytics/sextant/pkg/cache"
	"github.com/sextant-analytics/sextant/pkg/cqlstore"
	"github.com/sextant-analytics/sextant/pkg/eventlog"
	"github.com/sextant-analytics/sextant/pkg/kafkalog"
	"github.com/sextant-analytics/sextant/pkg/pebblelog"
	"github.com/sextant-analytics/sextant/pkg/pebblestore"
	"github.com/sextant-analytics/sextant/pkg/viewstore"
	"github.com/sextant-analytics/sextant/services/insights"
)

// engines says where the event log, the view store and the cache are:
// embedded under --data-dir unless Kafka, CQL hosts or Redis are given.
type engines struct {
	DataDir        string
	Partitions     int
	KafkaBrokers   []string
	KafkaTopic     string
	CQLHosts       []string
	CQLKeyspace    string
	CQLConsistency string
	RedisAddr      string
	CacheBytes     int
}

func (e *engines) flags(f flags) {
	f.StringVar(&e.DataDir, "data-dir", "./data", "directory of the embedded event log and view store")
	f.IntVar(&e.Partitions, "partitions", 0, "embedded event log partitions, fixed when the log is created (0: keep; new logs get 4)")
	f.ListVar(&e.KafkaBrokers, "kafka-brokers", "Kafka bootstrap brokers (host:port,…); the embedded log when empty")
	f.StringVar(&e.KafkaTopic, "kafka-topic", "sextant.events", "the event topic")
	f.ListVar(&e.CQLHosts, "cql-hosts", "ScyllaDB/Cassandra contact points (host:port,…); the embedded store when empty")
	f.StringVar(&e.CQLKeyspace, "cql-keyspace", "sextant", "the keyspace of the read models")
	f.StringVar(&e.CQLConsistency, "cql-consistency", "LOCAL_QUORUM", "consistency of reads and writes")
	f.StringVar(&e.RedisAddr, "redis-addr", "", "Redis for the report cache (host:port); an in-process cache when empty")
	f.IntVar(&e.CacheBytes, "cache-bytes", 64<<20, "size of the in-process report cache (in front of Redis with --redis-addr)")
}

// views is the view store with the metadata helpers the registries use.
type views interface {
	viewstore.Store
	Get(ctx context.Context, key []byte) ([]byte, error)
	Put(ctx context.Context, key, value []byte) error
	Delete(ctx context.Context, key []byte) error
	Scan(ctx context.Context, prefix []byte, fn func(key, value []byte) error) error
}

func (e *engines) openViews(ctx context.Context, logger *slog.Logger) (views, error) {
	if len(e.CQLHosts) > 0 {
		st, err := cqlstore.Open(ctx, e.cqlConfig(logger))
		if err != nil {
			return nil, fmt.Errorf("view store: %w", err)
		}
		return st, nil
	}
	if err := os.MkdirAll(e.DataDir, 0o755); err != nil {
		return nil, err
	}
	st, err := pebblestore.Open(filepath.Join(e.DataDir, "views"), pebblestore.Options{Logger: logger})
	if err != nil {
		return nil, inUse(e.DataDir, err)
	}
	return st, nil
}

func (e *engines) cqlConfig(logger *slog.Logger) cqlstore.Config {
	return cqlstore.Config{Hosts: e.CQLHosts, Keyspace: e.CQLKeyspace, Consistency: e.CQLConsistency, Logger: logger}
}

func (e *engines) kafkaConfig(logger *slog.Logger) kafkalog.Config {
	return kafkalog.Config{Brokers: e.KafkaBrokers, Topic: e.KafkaTopic, ClientID: "sextant", Logger: logger}
}

func (e *engines) openLog(ctx context.Context, logger *slog.Logger) (eventlog.Log, error) {
	if len(e.KafkaBrokers) > 0 {
		l, err := kafkalog.Open(ctx, e.kafkaConfig(logger))
		if err != nil {
			return nil, fmt.Errorf("event log: %w", err)
		}
		return l, nil
	}
	if err := os.MkdirAll(e.DataDir, 0o755); err != nil {
		return nil, err
	}
	l, err := pebblelog.Open(filepath.Join(e.DataDir, "log"), pebblelog.Options{Partitions: e.Partitions, Logger: logger})
	if err != nil {
		return nil, inUse(e.DataDir, err)
	}
	return l, nil
}

// deadLetters is where records that cannot be projected go.
type deadLetters interface {
	eventlog.Appender
	io.Closer
}

// openDeadLetters opens the dead-letter log: the topic beside the event
// topic on Kafka, a log of its own under --data-dir otherwise.
func (e *engines) openDeadLetters(ctx context.Context, logger *slog.Logger) (deadLetters, error) {
	if len(e.KafkaBrokers) > 0 {
		cfg := e.kafkaConfig(logger)
		cfg.Topic = deadLetterTopic(e.KafkaTopic)
		l, err := kafkalog.Open(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("dead letters: %w", err)
		}
		return l, nil
	}
	l, err := pebblelog.Open(filepath.Join(e.DataDir, "deadletters"), pebblelog.Options{Partitions: 1, Logger: logger})
	if err != nil {
		return nil, inUse(e.DataDir, err)
	}
	return l, nil
}

func deadLetterTopic(topic string) string { return topic + ".deadletters" }

// reportCache is the cache and how to check and close it.
type reportCache interface {
	insights.Cache
	io.Closer
}

type memoryCache struct{ *cache.Memory }

func (memoryCache) Close() error { return nil }

func (e *engines) openCache() reportCache {
	if e.RedisAddr != "" {
		// Answers are keyed by everything they depend on: a process keeps
		// the ones it serves in memory as long as Redis does.
		return cache.NewTiered(e.CacheBytes, insights.DefaultCacheTTL, cache.NewRedis(e.RedisAddr, nil))
	}
	return memoryCache{cache.NewMemory(e.CacheBytes)}
}

func (e *engines) describe() string {
	var parts []string
	if len(e.KafkaBrokers) > 0 {
		parts = append(parts, "log: Kafka "+strings.Join(e.KafkaBrokers, ","))
	} else {
		parts = append(parts, "log: embedded in "+e.DataDir)
	}
	if len(e.CQLHosts) > 0 {
		parts = append(parts, "views: CQL "+strings.Join(e.CQLHosts, ",")+"/"+e.CQLKeyspace)
	} else {
		parts = append(parts, "views: embedded in "+e.DataDir)
	}
	if e.RedisAddr != "" {
		parts = append(parts, "cache: Redis "+e.RedisAddr)
	}
	return strings.Join(parts, "; ")
}

func inUse(dataDir string, err error) error {
	if strings.Contains(err.Error(), "lock") || strings.Contains(err.Error(), "temporarily unavailable") {
		return fmt.Errorf("data dir %s is in use by another sextant process (stop `sextant serve` first, or point every process at Kafka and CQL): %w", dataDir, err)
	}
	return err
}
