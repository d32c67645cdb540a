package cqlstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"time"

	"github.com/scylladb/gocqlx/v2/migrate"
)

// migrations are the schema, applied in file name order by gocqlx/migrate,
// which records them in the keyspace's gocqlx_migrate table. A file must
// never change once released: add a new one.
//
//go:embed migrations/*.cql
var migrations embed.FS

// KeyspaceSpec is the replication of a keyspace Migrate creates. An
// existing keyspace is left as it is.
type KeyspaceSpec struct {
	// ReplicationFactor defaults to 1 (3 in production).
	ReplicationFactor int
	// Datacenter selects NetworkTopologyStrategy with ReplicationFactor
	// replicas in that datacenter; empty selects SimpleStrategy.
	Datacenter string
}

func (k KeyspaceSpec) replication() (string, error) {
	rf := k.ReplicationFactor
	if rf <= 0 {
		rf = 1
	}
	if k.Datacenter == "" {
		return fmt.Sprintf("{'class': 'SimpleStrategy', 'replication_factor': %d}", rf), nil
	}
	if strings.ContainsAny(k.Datacenter, "'\\\n") {
		return "", fmt.Errorf("invalid datacenter name %q", k.Datacenter)
	}
	return fmt.Sprintf("{'class': 'NetworkTopologyStrategy', '%s': %d}", k.Datacenter, rf), nil
}

// Migrate creates the keyspace if it does not exist and applies the
// embedded migrations that have not run yet. It is idempotent: on an
// up-to-date keyspace it changes nothing.
func Migrate(ctx context.Context, cfg Config, spec KeyspaceSpec) error {
	set, err := cfg.settings()
	if err != nil {
		return err
	}
	repl, err := spec.replication()
	if err != nil {
		return fmt.Errorf("cqlstore: migrate: %w", err)
	}
	timeout := max(set.timeout, schemaTimeout)

	sess, err := set.connect("", timeout)
	if err != nil {
		return fmt.Errorf("cqlstore: migrate: connect to %s: %w", strings.Join(set.hosts, ","), err)
	}
	exists, err := keyspaceExists(ctx, sess, set.keyspace)
	if err == nil && !exists {
		stmt := fmt.Sprintf("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = %s AND durable_writes = true", set.keyspace, repl)
		if err = sess.ContextQuery(ctx, stmt, nil).ExecRelease(); err == nil {
			err = sess.AwaitSchemaAgreement(ctx)
		}
		if err == nil {
			set.log.Info("cqlstore: keyspace created", "keyspace", set.keyspace, "replication", repl)
		}
	}
	sess.Close()
	if err != nil {
		return fmt.Errorf("cqlstore: migrate: create keyspace %q: %w", set.keyspace, err)
	}

	ksess, err := set.connect(set.keyspace, timeout)
	if err != nil {
		return fmt.Errorf("cqlstore: migrate: connect to keyspace %q: %w", set.keyspace, err)
	}
	defer ksess.Close()
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("cqlstore: migrate: %w", err)
	}
	// Another process may migrate the keyspace at the same time (replicas
	// starting together, test runs sharing a keyspace). A statement that
	// is not idempotent (ALTER TABLE … ADD) then fails in all but one of
	// them, and the winner records it right after: try again.
	for attempt := 1; ; attempt++ {
		err = migrate.FromFS(ctx, ksess, sub)
		if err == nil {
			break
		}
		if attempt == migrateAttempts || ctx.Err() != nil {
			return fmt.Errorf("cqlstore: migrate keyspace %q: %w", set.keyspace, err)
		}
		set.log.Warn("cqlstore: migration failed; retrying", "keyspace", set.keyspace, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("cqlstore: migrate keyspace %q: %w", set.keyspace, errors.Join(err, ctx.Err()))
		case <-time.After(time.Duration(attempt) * time.Second):
		}
	}
	set.log.Info("cqlstore: keyspace migrated", "keyspace", set.keyspace)
	return nil
}

// migrateAttempts bounds the runs of the migrations Migrate makes.
const migrateAttempts = 3

// migration is an embedded migration and how many statements it has, as
// gocqlx/migrate counts them (it records the statements done).
type migration struct {
	name       string
	statements int
}

func migrationNames() ([]migration, error) {
	names, err := fs.Glob(migrations, "migrations/*.cql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []migration
	for _, path := range names {
		b, err := migrations.ReadFile(path)
		if err != nil {
			return nil, err
		}
		n := 0
		parts := strings.Split(string(b), ";")
		for i, p := range parts {
			// Like gocqlx/migrate: every chunk ended by a semicolon, and a
			// last one without it unless it is blank.
			if i < len(parts)-1 || strings.TrimSpace(p) != "" {
				n++
			}
		}
		out = append(out, migration{name: strings.TrimPrefix(path, "migrations/"), statements: n})
	}
	return out, nil
}
