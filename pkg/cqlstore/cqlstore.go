// Package cqlstore is the viewstore.Store of distributed mode, on ScyllaDB
// (or Apache Cassandra) through gocql and gocqlx.
//
// # Schema
//
// The tables are created by the embedded migrations (migrations/*.cql, run
// by Migrate with gocqlx/migrate; `sextant migrate` calls it). Open only
// connects, and refuses a keyspace that is missing or not migrated.
//
//	additions       ((ns, shard), property, hour, part, start) -> end_offset, data
//	blocks          ((ns, property, kind, slot), bucket)       -> cover, data
//	block_slots     ((ns), property, kind, slot)
//	progress        ((ns), part)                   -> next, applied, duplicates, excluded, watermark, intent
//	partition_state ((ns, part, shard), skey)      -> value
//	watermarks      ((ns, property), part)         -> received, next
//	meta            ((kind), mkey)                 -> value
//
// An additions partition is one compaction shard of a namespace
// (viewstore.ShardOf of the property): ListPending reads one partition,
// ScanAdditions one slice of it, DeleteAdditions writes one range
// tombstone in it. The compactor deletes additions soon after they are
// written, so the partitions stay small, and the table purges tombstones
// after an hour. A block partition holds one slot: the bucket
// floor-divided by 30 days (hour blocks) or 366 days (day blocks), so
// partitions do not grow with time and a 30-day report reads one or two.
// block_slots lists the slots that hold blocks, for DropNamespace and for
// scans over many slots. A log partition's state is spread over
// stateShards CQL partitions by a hash of the key, since it holds a day
// of event ids of a busy partition.
//
// # Commit without atomicity
//
// Cassandra and ScyllaDB cannot write a checkpoint of many rows in many
// partitions atomically (logged batches are limited to tens of KB and are
// slow), and Commit does not pretend to. It writes in four steps, each
// started only once the previous one fully succeeded:
//
//  0. the progress row's intent, set to the checkpoint's end
//     (Progress.Next), and nothing else of the row (when the checkpoint
//     has additions or state: without them there is nothing to redo);
//  1. the additions, grouped by partition into small unlogged batches
//     (each atomic and cheap because it touches one partition; a large
//     addition goes alone), concurrently;
//  2. the state upserts and deletes (batched by shard) and the
//     watermarks, concurrently;
//  3. the progress row, with its intent reset to 0.
//
// When Commit returns nil everything is readable: every write was
// acknowledged at the configured consistency (LOCAL_QUORUM by default),
// and reads use the same level.
//
// A Commit that fails after step 0 leaves part of the checkpoint next to
// the old progress: additions with End past Next, which readers ignore
// (they count only additions with End <= Next), and state written ahead.
// LoadPartition then reports the intent (Progress.Intent > Next). The
// projector applies the log from Next again and must checkpoint exactly at
// Intent before anywhere else (see package viewstore): that checkpoint
// covers the same offsets from the same start, so it writes the same
// additions under the same keys, overwriting those already stored rather
// than adding to them, and no event is counted twice or lost. Without the
// intent, a projector resuming from Next could checkpoint at another
// offset and write additions with the same Start and a different End
// (overwriting) or, worse, a later checkpoint starting past an orphan's
// Start whose range overlaps it, and readers would count the overlap
// twice once progress passed it.
//
// State is written after the additions. State written ahead of the
// progress (by a commit that failed in step 2 or 3) is left out by the
// projection: each state segment carries the end of the checkpoint that
// wrote it, and segments past the committed progress are ignored and
// deleted, so the records are applied again from the committed state and
// derive exactly what the failed checkpoint did.

// All statements are prepared, and every write is idempotent (absolute
// values, no counters, no lightweight transactions), so the driver may
// retry it. Rows are last-write-wins by the client-side timestamp of the
// write, so the clocks of the machines running projections must be
// synchronised (NTP), as for any Cassandra client.
package cqlstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gocql/gocql"
	"github.com/scylladb/gocqlx/v2"

	"github.com/sextant-analytics/sextant/pkg/configcheck"
	"github.com/sextant-analytics/sextant/pkg/viewstore"
)

// ErrClosed is returned by every operation on a closed Store.
var ErrClosed = errors.New("cqlstore: closed")

// ErrNotMigrated is the error of Open on a keyspace that does not exist,
// has no tables or lacks a migration.
var ErrNotMigrated = errors.New("run `sextant migrate` first")

// Config configures Open and Migrate.
type Config struct {
	// Hosts are the contact points, "host" or "host:port" (port 9042 by
	// default). The rest of the cluster is discovered.
	Hosts []string
	// Keyspace defaults to "sextant".
	Keyspace string
	// Consistency of reads and writes: ONE, QUORUM, LOCAL_QUORUM (the
	// default), LOCAL_ONE, ALL, … (case-insensitive).
	Consistency string
	// Timeout of one request, 5s by default.
	Timeout time.Duration
	// Logger receives the store's lifecycle messages and the driver's
	// (component=gocql). Nil discards them.
	Logger *slog.Logger
	// TLS, when set, is how the nodes are reached: the CA their
	// certificates are signed by and, for nodes that require one, a
	// client certificate. Every node's certificate is verified for the
	// address it is reached at (discovered nodes by their IP address).
	// Nil: plaintext.
	TLS *tls.Config
}

const (
	defaultKeyspace    = "sextant"
	defaultConsistency = "LOCAL_QUORUM"
	defaultTimeout     = 5 * time.Second
	// schemaTimeout bounds a schema change in Migrate: Cassandra can take
	// many seconds to agree on one on a busy machine.
	schemaTimeout = 60 * time.Second
)

var keyspaceRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,47}$`)

// settings are Config with defaults applied and validated.
type settings struct {
	hosts    []string
	keyspace string
	cons     gocql.Consistency
	timeout  time.Duration
	log      *slog.Logger
	tls      *tls.Config
}

// Validate reports what no default fixes: no hosts, an invalid keyspace
// name or consistency, a negative timeout. Open and Migrate call it.
func (c Config) Validate() error {
	e := configcheck.New("cqlstore")
	configcheck.NotNegative(e, "Timeout", c.Timeout)
	if _, err := c.settings(); err != nil {
		e.Add(err)
	}
	return e.Err()
}

// settings is the config with its defaults, checked.
func (c Config) settings() (settings, error) {
	s := settings{keyspace: c.Keyspace, timeout: c.Timeout, log: c.Logger, tls: c.TLS}
	for _, h := range c.Hosts {
		if h = strings.TrimSpace(h); h != "" {
			s.hosts = append(s.hosts, h)
		}
	}
	if len(s.hosts) == 0 {
		return s, errors.New("cqlstore: no hosts configured")
	}
	if s.keyspace == "" {
		s.keyspace = defaultKeyspace
	}
	if !keyspaceRE.MatchString(s.keyspace) {
		return s, fmt.Errorf("cqlstore: invalid keyspace name %q (letters, digits and _, starting with a letter, at most 48)", s.keyspace)
	}
	cons := c.Consistency
	if cons == "" {
		cons = defaultConsistency
	}
	cons = strings.ReplaceAll(strings.TrimSpace(cons), "-", "_")
	var err error
	if s.cons, err = gocql.ParseConsistencyWrapper(cons); err != nil {
		return s, fmt.Errorf("cqlstore: consistency %q: %w", c.Consistency, err)
	}
	if s.cons == gocql.Serial || s.cons == gocql.LocalSerial || s.cons == gocql.Any {
		return s, fmt.Errorf("cqlstore: consistency %s cannot be used for both reads and writes", s.cons)
	}
	if s.timeout <= 0 {
		s.timeout = defaultTimeout
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// cluster returns the driver configuration; keyspace may be empty.
func (s settings) cluster(keyspace string, timeout time.Duration) (*gocql.ClusterConfig, error) {
	c := gocql.NewCluster()
	for _, h := range s.hosts {
		host, port, err := net.SplitHostPort(h)
		if err != nil {
			// No port: the default one.
			c.Hosts = append(c.Hosts, h)
			continue
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return nil, fmt.Errorf("cqlstore: host %q: invalid port", h)
		}
		c.Hosts = append(c.Hosts, net.JoinHostPort(host, port))
		// gocql connects to the nodes it discovers on ClusterConfig.Port,
		// whatever port a contact point had: use the contact points' port.
		c.Port, _ = strconv.Atoi(port)
	}
	c.Keyspace = keyspace
	c.ProtoVersion = 4
	c.Consistency = s.cons
	c.Timeout = timeout
	c.WriteTimeout = timeout
	c.ReadTimeout = max(timeout, 11*time.Second)
	c.ConnectTimeout = max(timeout, 10*time.Second)
	c.PoolConfig.HostSelectionPolicy = gocql.TokenAwareHostPolicy(gocql.RoundRobinHostPolicy())
	c.RetryPolicy = &gocql.ExponentialBackoffRetryPolicy{NumRetries: 3, Min: 50 * time.Millisecond, Max: time.Second}
	// A node that went away (a restart, a network partition) is tried
	// again every few seconds rather than every minute, and the first
	// connection is retried a few times before Open gives up.
	c.ReconnectInterval = 2 * time.Second
	c.ReconnectionPolicy = &gocql.ExponentialReconnectionPolicy{MaxRetries: 10, InitialInterval: 200 * time.Millisecond, MaxInterval: 5 * time.Second}
	c.InitialReconnectionPolicy = &gocql.ConstantReconnectionPolicy{MaxRetries: 2, Interval: time.Second}
	c.PageSize = pageSize
	c.Logger = gocqlLogger{l: s.log.With("component", "gocql")}
	if s.tls != nil {
		// gocql skips verification unless EnableHostVerification.
		c.SslOpts = &gocql.SslOptions{Config: s.tls, EnableHostVerification: true}
	}
	return c, nil
}

// connect opens a session on keyspace ("" for none).
func (s settings) connect(keyspace string, timeout time.Duration) (gocqlx.Session, error) {
	c, err := s.cluster(keyspace, timeout)
	if err != nil {
		return gocqlx.Session{}, err
	}
	return gocqlx.WrapSession(c.CreateSession())
}

// pageSize is the rows per page of every paged read.
const pageSize = 5000

// Store implements viewstore.Store on a CQL keyspace. It is safe for
// concurrent use.
type Store struct {
	sess     gocqlx.Session
	keyspace string
	log      *slog.Logger
	cons     gocql.Consistency

	mu       sync.RWMutex // guards closed; held shared while registering in ops
	closed   bool
	inflight sync.WaitGroup // operations running; Close waits for them

	// commitHook, when set (by tests), runs before each step n (1 to 3) of
	// Commit after the intent, and an error from it fails the commit.
	commitHook func(n int) error
}

var _ viewstore.Store = (*Store)(nil)

// Open connects to the keyspace of cfg, which Migrate must have created.
// The session reconnects by itself when nodes restart; ctx only bounds
// Open.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	set, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	type result struct {
		sess gocqlx.Session
		err  error
	}
	// CreateSession takes no context; run it aside so that ctx bounds the
	// wait (a session finished after ctx ended is closed).
	done := make(chan result, 1)
	go func() {
		sess, err := set.connect(set.keyspace, set.timeout)
		done <- result{sess, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		go func() {
			if r := <-done; r.err == nil {
				r.sess.Close()
			}
		}()
		return nil, fmt.Errorf("cqlstore: open: %w", ctx.Err())
	}
	if r.err != nil {
		return nil, set.explainConnectError(ctx, r.err)
	}
	s := &Store{sess: r.sess, keyspace: set.keyspace, log: set.log, cons: set.cons}
	if err := s.checkSchema(ctx); err != nil {
		s.sess.Close()
		return nil, err
	}
	set.log.Info("cqlstore opened", "hosts", strings.Join(set.hosts, ","), "keyspace", set.keyspace, "consistency", set.cons.String())
	return s, nil
}

// explainConnectError tells a missing keyspace from other failures: the
// driver reports a keyspace that does not exist only as a session without
// connections, so it asks again without one.
func (set settings) explainConnectError(ctx context.Context, err error) error {
	if !errors.Is(err, gocql.ErrNoConnectionsStarted) || ctx.Err() != nil {
		return fmt.Errorf("cqlstore: connect to %s: %w", strings.Join(set.hosts, ","), err)
	}
	sess, perr := set.connect("", set.timeout)
	if perr != nil {
		return fmt.Errorf("cqlstore: connect to %s: %w", strings.Join(set.hosts, ","), err)
	}
	defer sess.Close()
	exists, kerr := keyspaceExists(ctx, sess, set.keyspace)
	switch {
	case kerr != nil:
		return fmt.Errorf("cqlstore: connect to keyspace %q: %w", set.keyspace, err)
	case !exists:
		return fmt.Errorf("cqlstore: keyspace %q does not exist: %w", set.keyspace, ErrNotMigrated)
	}
	return fmt.Errorf("cqlstore: connect to keyspace %q: %w", set.keyspace, err)
}

func keyspaceExists(ctx context.Context, sess gocqlx.Session, keyspace string) (bool, error) {
	var name string
	err := sess.ContextQuery(ctx, `SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ?`, nil).
		Bind(keyspace).Scan(&name)
	if errors.Is(err, gocql.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

func tableExists(ctx context.Context, sess gocqlx.Session, keyspace, table string) (bool, error) {
	var name string
	err := sess.ContextQuery(ctx, `SELECT table_name FROM system_schema.tables WHERE keyspace_name = ? AND table_name = ?`, nil).
		Bind(keyspace, table).Scan(&name)
	if errors.Is(err, gocql.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// checkSchema refuses a keyspace the embedded migrations did not all run
// on.
func (s *Store) checkSchema(ctx context.Context) error {
	want, err := migrationNames()
	if err != nil {
		return fmt.Errorf("cqlstore: %w", err)
	}
	applied := map[string]int{}
	iter := s.sess.ContextQuery(ctx, `SELECT name, done FROM gocqlx_migrate`, nil).Iter()
	var name string
	var done int
	for iter.Scan(&name, &done) {
		applied[name] = done
	}
	if err := iter.Close(); err != nil {
		// The driver reports a missing table as an untyped invalid query:
		// the schema tables tell.
		if exists, terr := tableExists(ctx, s.sess, s.keyspace, "gocqlx_migrate"); terr == nil && !exists {
			return fmt.Errorf("cqlstore: keyspace %q has no schema: %w", s.keyspace, ErrNotMigrated)
		}
		return fmt.Errorf("cqlstore: check schema of keyspace %q: %w", s.keyspace, err)
	}
	for _, m := range want {
		if done, ok := applied[m.name]; !ok || done < m.statements {
			return fmt.Errorf("cqlstore: keyspace %q lacks migration %s: %w", s.keyspace, m.name, ErrNotMigrated)
		}
	}
	return nil
}

// enter registers a running operation; the caller must call s.inflight.Done.
func (s *Store) enter(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cqlstore: %s: %w", op, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return fmt.Errorf("cqlstore: %s: %w", op, ErrClosed)
	}
	s.inflight.Add(1)
	return nil
}

// Close waits for running operations and closes the session. Operations
// started after Close return ErrClosed; closing again does nothing.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.inflight.Wait()
	s.sess.Close()
	s.log.Info("cqlstore closed", "keyspace", s.keyspace)
	return nil
}

// checkNamespace rejects namespaces the schema cannot hold: progress is
// partitioned by the namespace alone, and an empty partition key is
// invalid.
func checkNamespace(op string, ns viewstore.Namespace) error {
	if ns == "" {
		return fmt.Errorf("cqlstore: %s: empty namespace", op)
	}
	return nil
}

// gocqlLogger adapts slog to the driver's logger. The driver only logs
// what went wrong or changed (connections lost, nodes up or down), so
// messages that read as failures are warnings and the rest informational.
type gocqlLogger struct{ l *slog.Logger }

func (g gocqlLogger) Print(v ...any)                 { g.log(fmt.Sprint(v...)) }
func (g gocqlLogger) Printf(format string, v ...any) { g.log(fmt.Sprintf(format, v...)) }
func (g gocqlLogger) Println(v ...any)               { g.log(strings.TrimSuffix(fmt.Sprintln(v...), "\n")) }

func (g gocqlLogger) log(msg string) {
	msg = strings.TrimSpace(strings.TrimPrefix(msg, "gocql: "))
	level := slog.LevelInfo
	lower := strings.ToLower(msg)
	for _, w := range []string{"error", "unable", "fail", "warn", "timeout", "timed out", "refused", "down", "lost"} {
		if strings.Contains(lower, w) {
			level = slog.LevelWarn
			break
		}
	}
	g.l.Log(context.Background(), level, msg)
}
