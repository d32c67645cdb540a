package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/sextant-analytics/sextant/pkg/cqlstore"
	"github.com/sextant-analytics/sextant/pkg/kafkalog"
	"github.com/sextant-analytics/sextant/pkg/property"
)

// kafkaCmd: `sextant kafka init` creates the event topic (or checks it).
func kafkaCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && isHelp(args[0]) {
		return kafkaCmd(ctx, []string{"init", "--help"}, stdout, stderr)
	}
	if len(args) == 0 || args[0] != "init" {
		fmt.Fprint(stderr, "usage: sextant kafka init [--kafka-brokers …] [--kafka-topic …] [--kafka-partitions N] [--kafka-replication-factor N] [--kafka-min-insync-replicas N] [--kafka-retention-ms MS]\n")
		return errUsage
	}
	f := newFlags("kafka init", stderr)
	var e engines
	e.kafkaFlags(f)
	partitions := f.Int("kafka-partitions", 12, "partitions of the event topic (its parallelism; cannot shrink)")
	rf := f.Int("kafka-replication-factor", 1, "replicas of each partition (3 in production)")
	isr := f.Int("kafka-min-insync-replicas", 1, "replicas that must have a record before it is acknowledged (2 in production)")
	retention := f.Int("kafka-retention-ms", -1, "retention; -1 keeps events forever (the log is the source of truth)")
	if err := f.parse(args[1:]); err != nil {
		return err
	}
	if len(e.KafkaBrokers) == 0 {
		return errors.New("--kafka-brokers (or SEXTANT_KAFKA_BROKERS) is required")
	}
	if err := e.validate(); err != nil {
		return err
	}
	cfg, err := e.kafkaConfig(slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	created, err := kafkalog.InitTopic(ctx, cfg, kafkalog.TopicSpec{
		Partitions: int32(*partitions), ReplicationFactor: int16(*rf), MinInsyncReplicas: *isr, RetentionMs: int64(*retention),
	})
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(stdout, "created topic %s with %d partitions\n", e.KafkaTopic, *partitions)
	} else {
		fmt.Fprintf(stdout, "topic %s exists and matches\n", e.KafkaTopic)
	}
	dl := cfg
	dl.Topic = deadLetterTopic(e.KafkaTopic)
	created, err = kafkalog.InitTopic(ctx, dl, kafkalog.TopicSpec{
		Partitions: 1, ReplicationFactor: int16(*rf), MinInsyncReplicas: *isr, RetentionMs: int64(*retention),
	})
	if err != nil {
		return fmt.Errorf("dead-letter topic: %w", err)
	}
	if created {
		fmt.Fprintf(stdout, "created topic %s\n", dl.Topic)
	}
	return nil
}

// migrateCmd: `sextant migrate` creates the keyspace and runs the CQL
// migrations.
func migrateCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("migrate", stderr)
	var e engines
	e.cqlFlags(f)
	rf := f.Int("cql-replication-factor", 1, "replication factor of a new keyspace (3 in production)")
	dc := f.String("cql-datacenter", "", "datacenter for NetworkTopologyStrategy; SimpleStrategy when empty")
	if err := f.parse(args); err != nil {
		return err
	}
	if len(e.CQLHosts) == 0 {
		return errors.New("--cql-hosts (or SEXTANT_CQL_HOSTS) is required")
	}
	if err := e.validate(); err != nil {
		return err
	}
	cfg, err := e.cqlConfig(slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	if err := cqlstore.Migrate(ctx, cfg, cqlstore.KeyspaceSpec{ReplicationFactor: *rf, Datacenter: *dc}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "keyspace %s is up to date\n", e.CQLKeyspace)
	return nil
}

// adminKeyCmd: `sextant admin-key create` makes a key for projection
// management (replay, activate, rollback, delete).
func adminKeyCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && isHelp(args[0]) {
		return adminKeyCmd(ctx, []string{"create", "--help"}, stdout, stderr)
	}
	if len(args) == 0 || args[0] != "create" {
		fmt.Fprint(stderr, "usage: sextant admin-key create [--data-dir …|--cql-hosts …]\n")
		return errUsage
	}
	f := newFlags("admin-key create", stderr)
	var e engines
	e.storeFlags(f)
	if err := f.parse(args[1:]); err != nil {
		return err
	}
	st, err := e.openViews(ctx, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer st.Close()
	key, err := property.NewRegistry(st, property.Options{}).CreateAdminKey(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "export SEXTANT_ADMIN_KEY=%s\n", key)
	return nil
}
