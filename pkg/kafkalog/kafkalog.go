// Package kafkalog is the Apache Kafka implementation of the eventlog.Log
// port, for the distributed deployment. It is built on IBM/sarama.
//
// One topic holds the log; its partitions are the log's partitions, and a
// message's partition is eventlog.PartitionFor(key, n), exactly as in the
// embedded Pebble log (a custom sarama partitioner), so every adapter places
// a key in the same partition. The topic is created by InitTopic (`sextant
// kafka init`), never implicitly: every client disables automatic topic
// creation, and Open fails when the topic is missing.
//
// A Log uses a few independent Kafka clients, so that long-polling fetches
// never delay produce requests on a shared connection:
//
//   - an idempotent AsyncProducer shared by every Append (acks=all, zstd,
//     batches flushed every few milliseconds); each Append tracks its own
//     messages' acknowledgements. sarama opens a partition's circuit
//     breaker for 10 s after three failed leader lookups (a broker outage)
//     and has no setting for it, so appends would keep failing for up to
//     10 s after the brokers are back: an Append that meets an open
//     breaker replaces the producer (at most once a second) and the old one
//     is flushed and closed in the background;
//   - a metadata/admin client (partitions, end offsets, offsets by time,
//     offset commits and fetches);
//   - a consumer for standalone partition reads;
//   - one consumer group client per running Assigner (Run).
//
// # Claims and reads
//
// Run joins a classic consumer group and calls the claim function once per
// assigned partition, with a context carrying the group claim. A Read made
// with that context (or one derived from it) takes its records from the
// claim's own message stream, which starts at the group's committed offset;
// when the caller asks for an older offset (a projection resumes from the
// checkpoint stored with its state, which may be behind the log-side
// commit), Read serves the gap from a standalone partition consumer and
// returns to the stream once it reaches it. Other Reads always use the
// standalone consumers.
//
// # Commits
//
// Commit sends an OffsetCommit to the group coordinator synchronously, so
// its error is the commit's outcome. While this Log runs the group and has
// a session, the commit carries the session's member id and generation
// (Kafka rejects commits from non-members of a group with members);
// otherwise it is a plain commit (generation -1), which Kafka accepts while
// the group has no members.
package kafkalog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/eapache/go-resiliency/breaker"

	"github.com/sextant-analytics/sextant/pkg/configcheck"
	"github.com/sextant-analytics/sextant/pkg/eventlog"
)

// Defaults of Config.
const (
	DefaultTopic    = "sextant.events"
	DefaultClientID = "sextant"

	DefaultLinger            = 5 * time.Millisecond
	DefaultMaxBatchBytes     = 1 << 20
	DefaultMaxBufferedBytes  = 64 << 20
	DefaultSessionTimeout    = 8 * time.Second
	DefaultHeartbeatInterval = 1 * time.Second
	DefaultRebalanceTimeout  = 20 * time.Second
)

// kafkaVersion is the protocol baseline: Kafka 4 removed the request
// versions older than 2.1, and sarama still lowers each request to what the
// broker advertises in ApiVersions, so the newest constant is safe.
var kafkaVersion = sarama.V4_3_1_0

// Config configures a Log (and InitTopic/CheckTopic, which only use the
// connection settings).
type Config struct {
	// Brokers are the bootstrap servers, host:port.
	Brokers []string
	// Topic holds the log. Default DefaultTopic.
	Topic string
	// ClientID identifies this process to the brokers. Default
	// DefaultClientID.
	ClientID string
	// Logger receives the log's messages, and sarama's (which is a
	// process-wide logger: the latest non-nil Logger given to this package
	// receives them, at Debug level). Nil means slog.Default().
	Logger *slog.Logger
	// TLS, when set, is how the brokers are reached (sarama Net.TLS): the
	// CA their certificates are signed by and, for brokers that require
	// one, a client certificate. Nil: plaintext.
	TLS *tls.Config

	// Producer tuning.

	// Linger is how long the producer gathers messages into a batch before
	// sending it (sarama Producer.Flush.Frequency). Default DefaultLinger.
	Linger time.Duration
	// MaxBatchBytes sends a produce request early once this many bytes are
	// buffered (sarama Producer.Flush.Bytes). Default DefaultMaxBatchBytes.
	MaxBatchBytes int
	// MaxRequestMessages caps the messages of one produce request (sarama
	// Producer.Flush.MaxMessages); 0 means no cap.
	MaxRequestMessages int
	// Compression is "zstd" (default), "lz4", "snappy", "gzip" or "none".
	Compression string
	// MaxBufferedBytes bounds the bytes (keys, values and headers) of
	// the messages handed to the producer and not yet acknowledged or
	// failed, including those of Appends that returned early because
	// their context ended (the producer keeps retrying them). An Append
	// that would go over it fails at once with ErrBufferFull, so that an
	// outage of the brokers cannot pile up memory. Default
	// DefaultMaxBufferedBytes.
	MaxBufferedBytes int64

	// Consumer group tuning (Run).

	// SessionTimeout is how long the group coordinator waits for a
	// member's heartbeat before giving its partitions to the others (a
	// crashed member's partitions move after this). Default
	// DefaultSessionTimeout; Kafka's minimum is 6 s by default.
	SessionTimeout time.Duration
	// HeartbeatInterval is how often members heartbeat, and so how soon
	// they notice a rebalance. Default DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// RebalanceTimeout bounds how long a claim may take to return once its
	// partition is revoked. Default DefaultRebalanceTimeout.
	RebalanceTimeout time.Duration
}

// withDefaults fills the zero fields (and negative ones, which Validate
// reports) with their defaults.
func (c Config) withDefaults() Config {
	c.Brokers = slices.Clone(c.Brokers)
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Linger <= 0 {
		c.Linger = DefaultLinger
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if c.MaxBufferedBytes <= 0 {
		c.MaxBufferedBytes = DefaultMaxBufferedBytes
	}
	if c.MaxRequestMessages < 0 {
		c.MaxRequestMessages = 0
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.RebalanceTimeout <= 0 {
		c.RebalanceTimeout = DefaultRebalanceTimeout
	}
	return c
}

// Validate reports what no default fixes: no brokers, negative sizes and
// durations, a heartbeat not below the session timeout, an unknown
// compression. Open, InitTopic and CheckTopic call it.
func (c Config) Validate() error {
	e := configcheck.New("kafkalog")
	if len(c.Brokers) == 0 {
		e.Errorf("no brokers configured")
	}
	configcheck.NotNegative(e, "Linger", c.Linger)
	configcheck.NotNegative(e, "MaxBatchBytes", c.MaxBatchBytes)
	configcheck.NotNegative(e, "MaxRequestMessages", c.MaxRequestMessages)
	configcheck.NotNegative(e, "MaxBufferedBytes", c.MaxBufferedBytes)
	configcheck.NotNegative(e, "SessionTimeout", c.SessionTimeout)
	configcheck.NotNegative(e, "HeartbeatInterval", c.HeartbeatInterval)
	configcheck.NotNegative(e, "RebalanceTimeout", c.RebalanceTimeout)
	if d := c.withDefaults(); d.HeartbeatInterval >= d.SessionTimeout {
		e.Errorf("heartbeat interval %v must be below the session timeout %v", d.HeartbeatInterval, d.SessionTimeout)
	}
	if _, err := c.codec(); err != nil {
		e.Add(err)
	}
	return e.Err()
}

// ready is the config every entry point works with: validated, then
// with its defaults.
func (c Config) ready() (Config, error) {
	if err := c.Validate(); err != nil {
		return c, err
	}
	return c.withDefaults(), nil
}

func (c Config) codec() (sarama.CompressionCodec, error) {
	switch c.Compression {
	case "", "zstd":
		return sarama.CompressionZSTD, nil
	case "lz4":
		return sarama.CompressionLZ4, nil
	case "snappy":
		return sarama.CompressionSnappy, nil
	case "gzip":
		return sarama.CompressionGZIP, nil
	case "none":
		return sarama.CompressionNone, nil
	}
	return sarama.CompressionNone, fmt.Errorf("kafkalog: unknown compression %q (zstd, lz4, snappy, gzip or none)", c.Compression)
}

// baseConfig is the sarama configuration every client starts from.
func (c Config) baseConfig() *sarama.Config {
	sc := sarama.NewConfig()
	sc.Version = kafkaVersion
	sc.ClientID = c.ClientID
	sc.Net.DialTimeout = 10 * time.Second
	if c.TLS != nil {
		sc.Net.TLS.Enable, sc.Net.TLS.Config = true, c.TLS
	}
	// The log never creates its topic by accident (the stack's broker has
	// auto.create.topics.enable): InitTopic is the only way.
	sc.Metadata.AllowAutoTopicCreation = false
	sc.Admin.Timeout = 10 * time.Second
	return sc
}

// SaramaConfigs returns the producer and consumer settings the log uses for
// cfg, so that a raw Sarama baseline (bench/) measures the same thing.
func SaramaConfigs(cfg Config) (producer, consumer *sarama.Config, err error) {
	c, err := cfg.ready()
	if err != nil {
		return nil, nil, err
	}
	return c.producerConfig(), c.consumerConfig(), nil
}

func (c Config) producerConfig() *sarama.Config {
	sc := c.baseConfig()
	codec, _ := c.codec()
	sc.Producer.Idempotent = true
	sc.Net.MaxOpenRequests = 1
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Retry.Max = 10
	sc.Producer.Retry.Backoff = 100 * time.Millisecond
	sc.Producer.Compression = codec
	if codec == sarama.CompressionZSTD {
		// zstd's fastest level: events compress about as well (they are
		// small protobuf records with repeated strings), and the default
		// level cost a tenth of the collect service's CPU.
		sc.Producer.CompressionLevel = 1
	}
	sc.Producer.Partitioner = newPartitioner
	sc.Producer.Flush.Frequency = c.Linger
	sc.Producer.Flush.Bytes = c.MaxBatchBytes
	sc.Producer.Flush.MaxMessages = c.MaxRequestMessages
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.ChannelBufferSize = 4096
	return sc
}

func (c Config) consumerConfig() *sarama.Config {
	sc := c.baseConfig()
	// A partition consumer is recreated when a Read jumps; its close waits
	// for the fetch in flight, so keep the long poll short.
	sc.Consumer.MaxWaitTime = 100 * time.Millisecond
	sc.Consumer.Return.Errors = false // logged through sarama's logger
	sc.ChannelBufferSize = consumerBuffer
	return sc
}

func (c Config) groupConfig() *sarama.Config {
	sc := c.baseConfig()
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	// Offsets are committed explicitly (Commit), never by a timer.
	sc.Consumer.Offsets.AutoCommit.Enable = false
	sc.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategySticky()}
	sc.Consumer.Group.Session.Timeout = c.SessionTimeout
	sc.Consumer.Group.Heartbeat.Interval = c.HeartbeatInterval
	sc.Consumer.Group.Rebalance.Timeout = c.RebalanceTimeout
	sc.Consumer.Group.Rebalance.Retry.Max = 8
	sc.Consumer.Group.Rebalance.Retry.Backoff = 500 * time.Millisecond
	sc.Consumer.Return.Errors = false // logged through sarama's logger
	sc.ChannelBufferSize = consumerBuffer
	// JoinGroup can block for up to the rebalance timeout.
	if rt := c.RebalanceTimeout + 10*time.Second; sc.Net.ReadTimeout < rt {
		sc.Net.ReadTimeout = rt
	}
	return sc
}

// consumerBuffer is how many fetched messages a partition consumer holds
// for Read.
const consumerBuffer = 1024

// partitioner places a message where eventlog.PartitionFor says, so Kafka
// and the embedded log agree on every key's partition.
type partitioner struct{}

func newPartitioner(string) sarama.Partitioner { return partitioner{} }

func (partitioner) Partition(m *sarama.ProducerMessage, n int32) (int32, error) {
	var key []byte
	if m.Key != nil {
		k, err := m.Key.Encode()
		if err != nil {
			return -1, err
		}
		key = k
	}
	return eventlog.PartitionFor(key, int(n)), nil
}

func (partitioner) RequiresConsistency() bool { return true }

// Log is an eventlog.Log stored in a Kafka topic. It is safe for concurrent
// use.
type Log struct {
	cfg    Config
	topic  string
	logger *slog.Logger

	meta     sarama.Client // metadata, end offsets, offset commits/fetches
	metaCfg  *sarama.Config
	admin    sarama.ClusterAdmin      // on meta
	prod     atomic.Pointer[producer] // the producer Appends use
	renewing atomic.Bool              // a renewal is running
	renewed  time.Time                // the last renewal; only the one renewal running (renewing) touches it
	retiring sync.WaitGroup           // producers being flushed and closed
	consumer sarama.Consumer
	consCli  sarama.Client
	readers  []*reader // standalone partition readers

	// closing is closed when Close starts: Append, Read, Partitions,
	// EndOffset and Run fail from then on, waiting Reads return, and
	// running groups leave. Commit and Committed keep working until the
	// groups have left (a claim may commit on its way out).
	closing chan struct{}
	// ops guards the clients against Close: operations hold it for
	// reading; closed is set under the write lock.
	ops    sync.RWMutex
	closed bool

	// buffered is the bytes of the messages in the producer (see
	// Config.MaxBufferedBytes).
	buffered atomic.Int64

	mu     sync.Mutex
	groups map[string]*groupState // groups Run is running
	runs   sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

var _ eventlog.Log = (*Log)(nil)

// Open connects to the brokers and checks the topic exists (with its
// partition count). A missing topic is an error telling to run
// `sextant kafka init`.
func Open(ctx context.Context, cfg Config) (*Log, error) {
	cfg, err := cfg.ready()
	if err != nil {
		return nil, err
	}
	installLogger(cfg.Logger)
	type result struct {
		l   *Log
		err error
	}
	done := make(chan result, 1)
	go func() {
		l, err := open(cfg)
		done <- result{l, err}
	}()
	select {
	case r := <-done:
		return r.l, r.err
	case <-ctx.Done():
		// sarama's connects are not cancellable; close whatever the
		// abandoned open ends up with.
		go func() {
			if r := <-done; r.l != nil {
				_ = r.l.Close()
			}
		}()
		return nil, fmt.Errorf("kafkalog: open: %w", ctx.Err())
	}
}

func open(cfg Config) (l *Log, err error) {
	l = &Log{
		cfg:     cfg,
		topic:   cfg.Topic,
		logger:  cfg.Logger.With("component", "kafkalog", "topic", cfg.Topic),
		closing: make(chan struct{}),
		groups:  make(map[string]*groupState),
	}
	var closers []func() error
	defer func() {
		if err != nil {
			for _, c := range slices.Backward(closers) {
				_ = c()
			}
			l = nil
		}
	}()

	l.metaCfg = cfg.baseConfig()
	if l.meta, err = sarama.NewClient(cfg.Brokers, l.metaCfg); err != nil {
		return nil, fmt.Errorf("kafkalog: connect to %v: %w", cfg.Brokers, err)
	}
	closers = append(closers, l.meta.Close)
	n, err := topicPartitions(l.meta, cfg.Topic)
	if err != nil {
		return nil, err
	}
	if l.admin, err = sarama.NewClusterAdminFromClient(l.meta); err != nil {
		return nil, fmt.Errorf("kafkalog: admin client: %w", err)
	}

	prod, err := l.newProducer()
	if err != nil {
		return nil, err
	}
	l.prod.Store(prod)
	closers = append(closers, func() error { l.retire(prod); l.retiring.Wait(); return nil })

	if l.consCli, err = sarama.NewClient(cfg.Brokers, cfg.consumerConfig()); err != nil {
		return nil, fmt.Errorf("kafkalog: consumer client: %w", err)
	}
	closers = append(closers, l.consCli.Close)
	if l.consumer, err = sarama.NewConsumerFromClient(l.consCli); err != nil {
		return nil, fmt.Errorf("kafkalog: consumer: %w", err)
	}

	l.readers = make([]*reader, n)
	for i := range l.readers {
		l.readers[i] = &reader{sem: make(chan struct{}, 1)}
	}
	go l.closeIdleReaders()
	l.logger.Debug("opened", "brokers", cfg.Brokers, "partitions", n)
	return l, nil
}

func closedErr(op string) error {
	return fmt.Errorf("kafkalog: %s: %w", op, eventlog.ErrClosed)
}

func (l *Log) isClosing() bool {
	select {
	case <-l.closing:
		return true
	default:
		return false
	}
}

// acquire takes a read hold on the clients. Unless untilClosed, it fails
// as soon as Close started; otherwise only once the clients are closed.
// The caller must call l.ops.RUnlock when done.
func (l *Log) acquire(op string, untilClosed bool) error {
	if !untilClosed && l.isClosing() {
		return closedErr(op)
	}
	l.ops.RLock()
	if l.closed || (!untilClosed && l.isClosing()) {
		l.ops.RUnlock()
		return closedErr(op)
	}
	return nil
}

func (l *Log) checkPartition(op string, p int32) error {
	if p < 0 || int(p) >= len(l.readers) {
		return fmt.Errorf("kafkalog: %s: partition %d out of range [0, %d)", op, p, len(l.readers))
	}
	return nil
}

// Partitions lists the topic's partitions.
func (l *Log) Partitions(ctx context.Context) ([]int32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := l.acquire("partitions", false); err != nil {
		return nil, err
	}
	defer l.ops.RUnlock()
	ps, err := l.meta.Partitions(l.topic)
	if err != nil {
		return nil, fmt.Errorf("kafkalog: partitions of %q: %w", l.topic, err)
	}
	ps = slices.Clone(ps)
	slices.Sort(ps)
	return ps, nil
}

// EndOffset returns the partition's high watermark: the offset the next
// record appended to p gets (every acknowledged Append is below it).
func (l *Log) EndOffset(ctx context.Context, p int32) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := l.checkPartition("end offset", p); err != nil {
		return 0, err
	}
	if err := l.acquire("end offset", false); err != nil {
		return 0, err
	}
	defer l.ops.RUnlock()
	end, err := l.offset(ctx, p, sarama.OffsetNewest)
	if err != nil {
		return 0, fmt.Errorf("kafkalog: end offset of partition %d: %w", p, err)
	}
	return end, nil
}

// OffsetForTime returns the offset of the first record of p whose Timestamp
// is at or after t, or the end offset when there is none. It asks Kafka's
// time index (a ListOffsets request by timestamp). The topic keeps
// LogAppendTime timestamps (InitTopic sets it), so they are the broker's
// append times, of millisecond precision, and a t between two milliseconds
// is rounded up: no record before t is included.
func (l *Log) OffsetForTime(ctx context.Context, p int32, t time.Time) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := l.checkPartition("offset for time", p); err != nil {
		return 0, err
	}
	if err := l.acquire("offset for time", false); err != nil {
		return 0, err
	}
	defer l.ops.RUnlock()
	// UnixMilli rounds down; negative timestamps are sarama's and Kafka's
	// special offsets (newest, oldest), and no record is older than 0.
	ms := t.UnixMilli()
	if t.Nanosecond()%int(time.Millisecond) != 0 {
		ms++
	}
	ms = max(ms, 0)
	// The end offset is read first: when Kafka finds no record at or
	// after t (it answers -1), every record below it is before t, whereas
	// a record appended between the two requests may not be.
	end, err := l.offset(ctx, p, sarama.OffsetNewest)
	if err != nil {
		return 0, fmt.Errorf("kafkalog: offset for time %s in partition %d: end offset: %w", t.Format(time.RFC3339Nano), p, err)
	}
	off, err := l.offset(ctx, p, ms)
	if err != nil {
		return 0, fmt.Errorf("kafkalog: offset for time %s in partition %d: %w", t.Format(time.RFC3339Nano), p, err)
	}
	if off < 0 {
		return end, nil
	}
	return off, nil
}

// offset returns p's newest (end) or oldest offset, or the first at or
// after a timestamp (Unix milliseconds), retrying a few times while the
// partition's leadership moves (or, for a new topic, settles).
func (l *Log) offset(ctx context.Context, p int32, which int64) (int64, error) {
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		off, err := l.meta.GetOffset(l.topic, p, which)
		if err == nil || attempt == 6 || !retriablePartitionError(err) {
			return off, err
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return 0, errors.Join(err, ctx.Err())
		case <-l.closing:
			t.Stop()
			return 0, errors.Join(err, closedErr("offset"))
		}
		backoff *= 2
	}
}

// retriablePartitionError reports errors of a partition's leadership in
// flux, which a metadata refresh (sarama's GetOffset does it) and a retry
// resolve.
func retriablePartitionError(err error) bool {
	return errors.Is(err, sarama.ErrNotLeaderForPartition) ||
		errors.Is(err, sarama.ErrLeaderNotAvailable) ||
		errors.Is(err, sarama.ErrReplicaNotAvailable) ||
		errors.Is(err, sarama.ErrUnknownTopicOrPartition) ||
		errors.Is(err, sarama.ErrFencedLeaderEpoch) ||
		errors.Is(err, sarama.ErrUnknownLeaderEpoch) ||
		errors.Is(err, sarama.ErrOffsetNotAvailable) ||
		errors.Is(err, sarama.ErrNotConnected) ||
		errors.Is(err, sarama.ErrRequestTimedOut)
}

// --- Append ---

// ErrBufferFull is the error of an Append refused because the producer
// holds Config.MaxBufferedBytes of messages not yet acknowledged (the
// brokers are slow or down).
var ErrBufferFull = errors.New("kafkalog: the producer's buffer is full (the brokers do not acknowledge)")

// reserve counts n bytes into the producer's buffer unless that would go
// over the limit (a batch larger than the limit passes when the buffer is
// empty).
func (l *Log) reserve(n int64) bool {
	for {
		cur := l.buffered.Load()
		if cur > 0 && cur+n > l.cfg.MaxBufferedBytes {
			return false
		}
		if l.buffered.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

// tracker completes one Append call: the producer's result loop counts the
// call's messages down. Its bytes leave the producer's buffer count when
// the last message is counted down.
type tracker struct {
	pending atomic.Int64
	once    sync.Once
	mu      sync.Mutex
	err     error
	done    chan struct{}
	bytes   int64
	release func(int64)
}

func (t *tracker) finish(n int64, err error) {
	if err != nil {
		t.mu.Lock()
		if t.err == nil {
			t.err = err
		}
		t.mu.Unlock()
	}
	if t.pending.Add(-n) <= 0 {
		t.once.Do(func() {
			if t.release != nil {
				t.release(t.bytes)
			}
			close(t.done)
		})
	}
}

func (t *tracker) result() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// producer is one generation of the shared AsyncProducer.
type producer struct {
	p        sarama.AsyncProducer
	acksDone chan struct{} // its result loop ended
	// mu is held for reading while an Append hands messages to p's input
	// and for writing to mark it closed (sarama closes the input channel
	// on close: a send after that would panic).
	mu     sync.RWMutex
	closed bool
}

func (l *Log) newProducer() (*producer, error) {
	p, err := sarama.NewAsyncProducer(l.cfg.Brokers, l.cfg.producerConfig())
	if err != nil {
		return nil, fmt.Errorf("kafkalog: producer: %w", err)
	}
	prod := &producer{p: p, acksDone: make(chan struct{})}
	go l.ackLoop(prod)
	return prod, nil
}

// retire closes prod after delivering what it holds (or failing it to
// the Appends waiting) in the background; l.retiring counts it until then.
func (l *Log) retire(prod *producer) {
	l.retiring.Add(1)
	go func() {
		defer l.retiring.Done()
		prod.mu.Lock()
		already := prod.closed
		prod.closed = true
		prod.mu.Unlock()
		if already {
			return
		}
		prod.p.AsyncClose()
		<-prod.acksDone
	}()
}

// renewEvery bounds how often an open circuit breaker replaces the
// producer: while the brokers are still down, each new producer's
// breakers open again after three failures.
const renewEvery = time.Second

// renew replaces old with a new producer unless it was replaced already,
// the last renewal is less than renewEvery ago, or the log is closing. It
// runs in the background; the Append that asked has failed already.
func (l *Log) renew(old *producer) {
	if !l.renewing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer l.renewing.Store(false)
		if err := l.acquire("renew producer", false); err != nil {
			return
		}
		defer l.ops.RUnlock()
		if l.prod.Load() != old || time.Since(l.renewed) < renewEvery {
			return
		}
		l.renewed = time.Now()
		prod, err := l.newProducer()
		if err != nil {
			l.logger.Warn("renewing the producer after an open circuit breaker failed; the next failed append retries", "err", err)
			return
		}
		l.prod.Store(prod)
		l.retire(old)
		l.logger.Warn("producer renewed: a partition's circuit breaker was open (sarama keeps it open 10 s after a broker outage)")
	}()
}

// ackLoop hands prod's results to the Append calls waiting for them,
// until prod is closed.
func (l *Log) ackLoop(prod *producer) {
	defer close(prod.acksDone)
	succ, errs := prod.p.Successes(), prod.p.Errors()
	for succ != nil || errs != nil {
		select {
		case m, ok := <-succ:
			if !ok {
				succ = nil
				continue
			}
			if t, _ := m.Metadata.(*tracker); t != nil {
				t.finish(1, nil)
			}
		case pe, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			if t, _ := pe.Msg.Metadata.(*tracker); t != nil {
				t.finish(1, fmt.Errorf("partition %d: %w", pe.Msg.Partition, pe.Err))
			} else {
				l.logger.Error("produce failed", "err", pe.Err)
			}
		}
	}
}

// Append sends msgs through the shared idempotent producer and returns nil
// once Kafka acknowledged every one of them (acks=all), or an error if any
// failed, or ErrBufferFull at once when the producer already holds
// Config.MaxBufferedBytes. When ctx ends first, Append returns ctx.Err(); messages already
// handed to the producer are still delivered (or fail) in the background,
// so, as the port says, the caller must assume none was acknowledged and
// may retry (consumers dedupe by event id).
func (l *Log) Append(ctx context.Context, msgs []eventlog.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := l.acquire("append", false); err != nil {
		return err
	}
	defer l.ops.RUnlock()
	if len(msgs) == 0 {
		return nil
	}
	var size int64
	for _, m := range msgs {
		size += int64(len(m.Key) + len(m.Value))
		for k, v := range m.Headers {
			size += int64(len(k) + len(v))
		}
	}
	if !l.reserve(size) {
		return fmt.Errorf("kafkalog: append to %q: %w", l.topic, ErrBufferFull)
	}
	t := &tracker{done: make(chan struct{}), bytes: size, release: func(n int64) { l.buffered.Add(-n) }}
	t.pending.Store(int64(len(msgs)))
	now := time.Now()
	prod := l.prod.Load()
	prod.mu.RLock()
	if prod.closed { // retired just now: its successor is stored already
		prod.mu.RUnlock()
		prod = l.prod.Load()
		prod.mu.RLock()
	}
	if prod.closed {
		prod.mu.RUnlock()
		t.finish(int64(len(msgs)), nil)
		return closedErr("append")
	}
	err := l.send(ctx, prod.p.Input(), t, msgs, now)
	prod.mu.RUnlock()
	if err != nil {
		return err
	}
	select {
	case <-t.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := t.result(); err != nil {
		if errors.Is(err, breaker.ErrBreakerOpen) {
			l.renew(prod)
		}
		return fmt.Errorf("kafkalog: append to %q: %w", l.topic, err)
	}
	return nil
}

// send hands msgs to in, each tracked by t; when ctx ends or the log
// closes first, the messages not handed over are counted down.
func (l *Log) send(ctx context.Context, in chan<- *sarama.ProducerMessage, t *tracker, msgs []eventlog.Message, now time.Time) error {
	for i, m := range msgs {
		pm := &sarama.ProducerMessage{
			Topic:     l.topic,
			Key:       sarama.ByteEncoder(m.Key),
			Value:     sarama.ByteEncoder(m.Value),
			Metadata:  t,
			Timestamp: now,
		}
		if len(m.Headers) > 0 {
			pm.Headers = make([]sarama.RecordHeader, 0, len(m.Headers))
			for k, v := range m.Headers {
				pm.Headers = append(pm.Headers, sarama.RecordHeader{Key: []byte(k), Value: []byte(v)})
			}
		}
		select {
		case in <- pm:
		case <-ctx.Done():
			t.finish(int64(len(msgs)-i), nil)
			return ctx.Err()
		case <-l.closing:
			t.finish(int64(len(msgs)-i), nil)
			return closedErr("append")
		}
	}
	return nil
}

// --- Close ---

// closeRunsGrace is how much longer than the rebalance timeout Close waits
// for running groups to leave.
const closeRunsGrace = 5 * time.Second

// Close stops the running groups (their claims' contexts end, and the
// members leave the groups), flushes and closes the producer (every Append
// that returned nil is in Kafka; Appends in progress complete first), and
// closes the consumers and clients. It is idempotent; afterwards every
// operation returns an error wrapping eventlog.ErrClosed, and Reads that
// were waiting return such an error at once.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		close(l.closing)
		l.mu.Unlock()

		// Runs see closing, cancel their claims and leave their groups;
		// claims may still commit meanwhile.
		runsDone := make(chan struct{})
		go func() { l.runs.Wait(); close(runsDone) }()
		select {
		case <-runsDone:
		case <-time.After(l.cfg.RebalanceTimeout + closeRunsGrace):
			l.logger.Error("close: consumer groups did not stop in time; closing anyway")
		}

		l.ops.Lock()
		l.closed = true
		l.ops.Unlock()

		var errs []error
		// Flush: AsyncClose delivers every buffered message, then closes
		// the result channels, which ends ackLoop. A renewal cannot start
		// now (it needs ops); the producers it retired are waited for.
		l.retire(l.prod.Load())
		l.retiring.Wait()
		for _, r := range l.readers { // stop them all, then wait for each
			if r.pc != nil {
				r.pc.AsyncClose()
			}
		}
		for _, r := range l.readers {
			r.closeConsumer()
		}
		if err := l.consumer.Close(); err != nil {
			errs = append(errs, fmt.Errorf("consumer: %w", err))
		}
		if err := l.consCli.Close(); err != nil {
			errs = append(errs, fmt.Errorf("consumer client: %w", err))
		}
		if err := l.admin.Close(); err != nil { // closes meta
			errs = append(errs, fmt.Errorf("admin client: %w", err))
		}
		if err := errors.Join(errs...); err != nil {
			l.closeErr = fmt.Errorf("kafkalog: close: %w", err)
		}
		l.logger.Debug("closed")
	})
	return l.closeErr
}
