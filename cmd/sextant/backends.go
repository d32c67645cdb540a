package main

import (
	"context"
	"errors"
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
	"github.com/sextant-analytics/sextant/pkg/metadata"
	"github.com/sextant-analytics/sextant/pkg/pebblelock"
	"github.com/sextant-analytics/sextant/pkg/pebblelog"
	"github.com/sextant-analytics/sextant/pkg/pebblestore"
	"github.com/sextant-analytics/sextant/pkg/seal"
	"github.com/sextant-analytics/sextant/pkg/tlsfiles"
	"github.com/sextant-analytics/sextant/pkg/viewstore"
	"github.com/sextant-analytics/sextant/services/insights"
)

// engines says where the event log, the view store and the cache are:
// embedded under --data-dir unless Kafka, CQL hosts or Redis are given.
type engines struct {
	DataDir        string
	Partitions     int
	MinFreeDiskMB  int
	KafkaBrokers   []string
	KafkaTopic     string
	CQLHosts       []string
	CQLKeyspace    string
	CQLConsistency string
	RedisAddr      string
	CacheBytes     int
	// TLS to each engine: on when its CA or client certificate is given.
	KafkaTLS, CQLTLS, RedisTLS tlsfiles.Files
}

// flags registers every engine's flags: those of `sextant serve`.
func (e *engines) flags(f flags) {
	e.storeFlags(f)
	e.logFlags(f)
	e.cacheFlags(f)
}

// storeFlags are the view store's: --data-dir (the embedded one) and the
// CQL flags.
func (e *engines) storeFlags(f flags) {
	f.StringVar(&e.DataDir, "data-dir", "./data", "directory of the embedded event log and view store")
	e.cqlFlags(f)
}

// cqlFlags are the flags of the ScyllaDB/Cassandra connection.
func (e *engines) cqlFlags(f flags) {
	f.ListVar(&e.CQLHosts, "cql-hosts", "ScyllaDB/Cassandra contact points (host:port,…); the embedded store when empty")
	f.StringVar(&e.CQLKeyspace, "cql-keyspace", "sextant", "the keyspace of the read models")
	f.StringVar(&e.CQLConsistency, "cql-consistency", "LOCAL_QUORUM", "consistency of reads and writes")
	tlsFlags(f, &e.CQLTLS, "cql-tls", "ScyllaDB/Cassandra")
}

// logFlags are the event log's, besides --data-dir: the embedded log's
// and the Kafka flags.
func (e *engines) logFlags(f flags) {
	f.IntVar(&e.Partitions, "partitions", 0, "embedded event log partitions, fixed when the log is created (0: keep; new logs get 4)")
	f.IntVar(&e.MinFreeDiskMB, "min-free-disk-mb", 128, "embedded event log: refuse new events (503, retry later) while the data directory's disk has less than this many MiB free, so that a full disk never stops the process in the middle of a write (0: off)")
	e.kafkaFlags(f)
}

// kafkaFlags are the flags of the Kafka connection.
func (e *engines) kafkaFlags(f flags) {
	f.ListVar(&e.KafkaBrokers, "kafka-brokers", "Kafka bootstrap brokers (host:port,…); the embedded log when empty")
	f.StringVar(&e.KafkaTopic, "kafka-topic", "sextant.events", "the event topic")
	tlsFlags(f, &e.KafkaTLS, "kafka-tls", "Kafka")
}

// cacheFlags are the report cache's.
func (e *engines) cacheFlags(f flags) {
	f.StringVar(&e.RedisAddr, "redis-addr", "", "Redis for the report cache (host:port); an in-process cache when empty")
	f.BytesVar(&e.CacheBytes, "cache-bytes", 64<<20, "size of the in-process report cache (in front of Redis with --redis-addr), e.g. 64MiB")
	tlsFlags(f, &e.RedisTLS, "redis-tls", "Redis")
}

// tlsFlags are the flags of a client's TLS to engine: prefix-ca,
// prefix-cert and prefix-key.
func tlsFlags(f flags, t *tlsfiles.Files, prefix, engine string) {
	f.StringVar(&t.CA, prefix+"-ca", "", "PEM file of the CA that signs "+engine+"'s certificates: connects over TLS (the system's roots when only --"+prefix+"-cert is given)")
	f.StringVar(&t.Cert, prefix+"-cert", "", "PEM file of the client certificate presented to "+engine+" (connects over TLS), with --"+prefix+"-key")
	f.StringVar(&t.Key, prefix+"-key", "", "PEM file of the key of --"+prefix+"-cert")
}

// validate checks the engines' TLS flags, and the Kafka and CQL configs
// when they are used.
func (e *engines) validate() error {
	var errs []error
	for _, x := range []struct {
		files  tlsfiles.Files
		prefix string
		used   bool
		needs  string
	}{
		{e.KafkaTLS, "--kafka-tls", len(e.KafkaBrokers) > 0, "--kafka-brokers"},
		{e.CQLTLS, "--cql-tls", len(e.CQLHosts) > 0, "--cql-hosts"},
		{e.RedisTLS, "--redis-tls", e.RedisAddr != "", "--redis-addr"},
	} {
		if err := x.files.Validate(x.prefix); err != nil {
			errs = append(errs, err)
		}
		if x.files.Client() && !x.used {
			errs = append(errs, fmt.Errorf("%s-ca and %s-cert need %s", x.prefix, x.prefix, x.needs))
		}
	}
	if len(e.KafkaBrokers) > 0 {
		errs = append(errs, e.kafkaSettings().Validate())
	}
	if len(e.CQLHosts) > 0 {
		errs = append(errs, e.cqlSettings().Validate())
	}
	return errors.Join(errs...)
}

// views is the view store, which is also the metadata store the
// registries use.
type views interface {
	viewstore.Store
	metadata.KV
}

func (e *engines) openViews(ctx context.Context, logger *slog.Logger) (views, error) {
	if len(e.CQLHosts) > 0 {
		cfg, err := e.cqlConfig(logger)
		if err != nil {
			return nil, err
		}
		st, err := cqlstore.Open(ctx, cfg)
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

// openKeys opens the key store events are sealed with: the view store's
// tables on Cassandra, else an embedded store of its own beside it.
func (e *engines) openKeys(store views, logger *slog.Logger) (seal.Keys, func() error, error) {
	if k, ok := store.(seal.Keys); ok && len(e.CQLHosts) > 0 {
		return k, func() error { return nil }, nil
	}
	k, err := pebblestore.OpenKeys(filepath.Join(e.DataDir, "keys"), logger)
	if err != nil {
		return nil, nil, inUse(e.DataDir, err)
	}
	return k, k.Close, nil
}

// cqlSettings is the CQL store's config from the flags, without its
// logger and TLS (validate checks it).
func (e *engines) cqlSettings() cqlstore.Config {
	return cqlstore.Config{Hosts: e.CQLHosts, Keyspace: e.CQLKeyspace, Consistency: e.CQLConsistency}
}

func (e *engines) cqlConfig(logger *slog.Logger) (cqlstore.Config, error) {
	tc, err := e.CQLTLS.ClientConfig(logger)
	if err != nil {
		return cqlstore.Config{}, fmt.Errorf("--cql-tls: %w", err)
	}
	c := e.cqlSettings()
	c.Logger, c.TLS = logger, tc
	return c, nil
}

// kafkaSettings is the event log's config from the flags, without its
// logger and TLS (validate checks it).
func (e *engines) kafkaSettings() kafkalog.Config {
	return kafkalog.Config{Brokers: e.KafkaBrokers, Topic: e.KafkaTopic, ClientID: "sextant"}
}

func (e *engines) kafkaConfig(logger *slog.Logger) (kafkalog.Config, error) {
	tc, err := e.KafkaTLS.ClientConfig(logger)
	if err != nil {
		return kafkalog.Config{}, fmt.Errorf("--kafka-tls: %w", err)
	}
	c := e.kafkaSettings()
	c.Logger, c.TLS = logger, tc
	return c, nil
}

func (e *engines) openLog(ctx context.Context, logger *slog.Logger) (eventlog.Log, error) {
	if len(e.KafkaBrokers) > 0 {
		cfg, err := e.kafkaConfig(logger)
		if err != nil {
			return nil, err
		}
		l, err := kafkalog.Open(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("event log: %w", err)
		}
		return l, nil
	}
	if err := os.MkdirAll(e.DataDir, 0o755); err != nil {
		return nil, err
	}
	l, err := pebblelog.Open(filepath.Join(e.DataDir, "log"), pebblelog.Options{Partitions: e.Partitions, Logger: logger, MinFreeBytes: int64(e.MinFreeDiskMB) << 20})
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
		cfg, err := e.kafkaConfig(logger)
		if err != nil {
			return nil, err
		}
		cfg.Topic = deadLetterTopic(e.KafkaTopic)
		l, err := kafkalog.Open(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("dead letters: %w", err)
		}
		return l, nil
	}
	l, err := pebblelog.Open(filepath.Join(e.DataDir, "deadletters"), pebblelog.Options{Partitions: 1, Logger: logger, MinFreeBytes: int64(e.MinFreeDiskMB) << 20})
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

func (e *engines) openCache(logger *slog.Logger) (reportCache, error) {
	if e.RedisAddr != "" {
		tc, err := e.RedisTLS.ClientConfig(logger)
		if err != nil {
			return nil, fmt.Errorf("--redis-tls: %w", err)
		}
		// Answers are keyed by everything they depend on: a process keeps
		// the ones it serves in memory as long as Redis does.
		return cache.NewTiered(e.CacheBytes, insights.DefaultCacheTTL, cache.NewRedis(e.RedisAddr, tc)), nil
	}
	return memoryCache{cache.NewMemory(e.CacheBytes)}, nil
}

func (e *engines) describe() string {
	var parts []string
	if len(e.KafkaBrokers) > 0 {
		parts = append(parts, "log: Kafka "+strings.Join(e.KafkaBrokers, ",")+overTLS(e.KafkaTLS))
	} else {
		parts = append(parts, "log: embedded in "+e.DataDir)
	}
	if len(e.CQLHosts) > 0 {
		parts = append(parts, "views: CQL "+strings.Join(e.CQLHosts, ",")+"/"+e.CQLKeyspace+overTLS(e.CQLTLS))
	} else {
		parts = append(parts, "views: embedded in "+e.DataDir)
	}
	if e.RedisAddr != "" {
		parts = append(parts, "cache: Redis "+e.RedisAddr+overTLS(e.RedisTLS))
	}
	return strings.Join(parts, "; ")
}

func overTLS(t tlsfiles.Files) string {
	if t.Client() {
		return " over TLS"
	}
	return ""
}

// inUse explains an embedded store or log whose directory another process
// holds.
func inUse(dataDir string, err error) error {
	if errors.Is(err, pebblelock.ErrInUse) {
		return fmt.Errorf("data dir %s is in use by another sextant process (stop `sextant serve` first, or point every process at Kafka and CQL): %w", dataDir, err)
	}
	return err
}
