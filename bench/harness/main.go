// Command harness is Sextant's benchmark harness, run by bench/run.sh. It
// starts Sextant on the distributed stack (Kafka, Cassandra, Redis of
// ./tilt/stack.sh, with a topic and keyspace of its own) and on the
// embedded engines, drives them with `sextant loadgen`, measures ingest,
// freshness, query latency, replay and the processes' CPU and memory
// against baselines taken in the same run (a raw Sarama producer and
// consumer, cached reports), and writes bench/results.json and the tables
// of BENCHMARKS.md.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gocql/gocql"

	"github.com/sextant-analytics/sextant/pkg/cqlstore"
	"github.com/sextant-analytics/sextant/pkg/loadgen"
	"github.com/sextant-analytics/sextant/pkg/seal"
)

// plan is what one run size measures.
type plan struct {
	Size string `json:"size"`
	// StartVersion is the traffic version the stores start with, the one
	// reports read (the replay phase builds traffic/v2 beside it).
	StartVersion     string        `json:"startVersion,omitempty"`
	Properties       int           `json:"properties"`
	QuerySizes       []int64       `json:"querySizes"` // stored events at which reports are timed
	IngestEvents     int64         `json:"ingestEvents"`
	DirectEvents     int64         `json:"directEvents"`
	RestSingleEvents int64         `json:"restSingleEvents"`
	RestBatchEvents  int64         `json:"restBatchEvents"`
	UnaryEvents      int64         `json:"unaryEvents"`
	FreshDuration    time.Duration `json:"freshDuration"`
	FreshRate        float64       `json:"freshRate"`
	FreshMaxEvents   int64         `json:"freshMaxEvents,omitempty"` // caps the freshness phases' events (quick)
	QueryIters       int           `json:"queryIters"`
	QueryBudget      time.Duration `json:"queryBudget"` // per report and cache state; at least 20 calls
	HLLUsers         int           `json:"hllUsers"`
	HLLTrials        int           `json:"hllTrials"`
	RestConcurrency  int           `json:"restConcurrency"`
	History          time.Duration `json:"history"`
	// The many-merchants phases: ManyProperties properties whose traffic
	// follows a Zipf law of exponent ManyZipfS (loadgen
	// --properties-zipf), ManyEvents sent flat out (unary calls, batches
	// of 25), then ManyFreshRate events/s for FreshDuration with the
	// freshness probes, then reports on random properties.
	ManyProperties int     `json:"manyProperties"`
	ManyZipfS      float64 `json:"manyZipfS"`
	ManyEvents     int64   `json:"manyEvents"`
	ManyFreshRate  float64 `json:"manyFreshRate"`
	// SettleWait bounds the wait for compaction to settle before the
	// store's size is measured again after the last fill.
	SettleWait time.Duration `json:"settleWait"`
	// RegistryProperties more properties are registered before the
	// services start (they get no traffic but in one phase): every phase
	// runs with them in the registry, and ingest_grpc_unary_b25_registry
	// sends ingest_grpc_unary_b25's calls to random ones of them.
	// RegistryPropertiesCQL is the number on Cassandra, where `property
	// create --count` makes about 800 a second on this machine.
	RegistryProperties    int `json:"registryProperties"`
	RegistryPropertiesCQL int `json:"registryPropertiesCql"`
}

func planFor(size string) (plan, error) {
	p := plan{Size: size, Properties: 4, FreshRate: 20_000, HLLUsers: 1_000_000, HLLTrials: 5,
		RestConcurrency: 64, History: 70 * time.Hour, QueryBudget: 15 * time.Second,
		ManyZipfS: 1, ManyFreshRate: 10_000, SettleWait: 90 * time.Second}
	switch size {
	case "quick":
		p.QuerySizes = []int64{20_000}
		p.IngestEvents, p.DirectEvents = 20_000, 0
		p.RestSingleEvents, p.RestBatchEvents, p.UnaryEvents = 2_000, 5_000, 5_000
		p.FreshDuration, p.FreshMaxEvents, p.QueryIters, p.HLLTrials = 2*time.Second, 30_000, 20, 2
		p.QueryBudget = 3 * time.Second
		p.ManyProperties, p.ManyEvents, p.ManyFreshRate, p.SettleWait = 100, 20_000, 5_000, 20*time.Second
		p.RegistryProperties, p.RegistryPropertiesCQL = 1_000, 1_000
	case "default":
		p.QuerySizes = []int64{100_000, 1_000_000}
		p.IngestEvents, p.DirectEvents = 250_000, 150_000
		p.RestSingleEvents, p.RestBatchEvents, p.UnaryEvents = 50_000, 100_000, 100_000
		p.FreshDuration, p.QueryIters = 20*time.Second, 200
		p.ManyProperties, p.ManyEvents = 1_000, 300_000
		p.RegistryProperties, p.RegistryPropertiesCQL = 100_000, 20_000
	case "full":
		p.QuerySizes = []int64{1_000_000, 10_000_000}
		p.IngestEvents, p.DirectEvents = 1_000_000, 500_000
		p.RestSingleEvents, p.RestBatchEvents, p.UnaryEvents = 200_000, 300_000, 300_000
		p.FreshDuration, p.QueryIters, p.QueryBudget = 60*time.Second, 500, 30*time.Second
		p.ManyProperties, p.ManyEvents, p.SettleWait = 10_000, 1_000_000, 3*time.Minute
		p.RegistryProperties, p.RegistryPropertiesCQL = 1_000_000, 200_000
	default:
		return p, fmt.Errorf("unknown size %q (quick, default, full)", size)
	}
	return p, nil
}

type harness struct {
	repo    string
	bin     string
	outDir  string
	plan    plan
	keep    bool
	profile bool
	// memLimitKiB stops a backend whose Sextant process grows past it.
	memLimitKiB int64
	services    []*service
	start       time.Time
	seed        int64
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[bench %6.1fs] %s\n", time.Since(h.start).Seconds(), fmt.Sprintf(format, args...))
}

func main() {
	size := flag.String("size", "default", "quick, default or full")
	startVersion := flag.String("start-version", "v6", "the traffic projection version the stores start with (serve --start-version): the one ingest feeds and reports read")
	bin := flag.String("bin", "", "the sextant binary (with the loadgen command)")
	out := flag.String("out", "bench/out", "directory for logs and intermediate files")
	results := flag.String("results", "", "write the results JSON here")
	md := flag.String("md", "", "write the tables into this Markdown file (between the results markers)")
	backends := flag.String("backends", "distributed,embedded", "which backends to measure")
	keep := flag.Bool("keep", false, "keep the benchmark's topic, keyspace and data directory")
	profile := flag.Bool("profile", false, "record system-wide CPU profiles (perf) of the main phases into <out>/<run>/profiles")
	merge := flag.String("merge", "", "take the backends this run does not measure from this results JSON (an earlier run of the same size)")
	render := flag.String("render", "", "only re-render this results JSON into --md and the tables beside it (and stdout), and exit")
	micro := flag.String("micro", "", "only turn this `go test -bench` output into --micro-json and the micro tables of --md, and exit")
	microJSON := flag.String("micro-json", "", "with --micro: write the results JSON here")
	dropTopics := flag.String("drop-topics", "", "only delete these Kafka topics (comma-separated) of an interrupted run, and exit")
	dropKS := flag.String("drop-keyspace", "", "only drop this CQL keyspace of an interrupted run, and exit")
	storeSize := flag.String("store-size", "", "only measure the bytes on disk of this keyspace and topic (KEYSPACE,TOPIC) of the stack, as the runs do, and exit")
	flag.Parse()
	if *storeSize != "" {
		ks, topic, _ := strings.Cut(*storeSize, ",")
		if !strings.HasPrefix(ks, "bench_") {
			fatal(fmt.Errorf("refusing to flush %q: not a benchmark keyspace (bench_…)", ks))
		}
		repo, _ := os.Getwd()
		views, log, what, err := distributedSize(context.Background(), stackPIDs(repo), ks, topic)
		if err != nil {
			fatal(err)
		}
		fmt.Printf("read model %d bytes, log %d bytes\n%s\n", views, log, what)
		return
	}
	if *render != "" {
		b, err := os.ReadFile(*render)
		if err != nil {
			fatal(err)
		}
		var res Results
		if err := json.Unmarshal(b, &res); err != nil {
			fatal(err)
		}
		res.Metrics = headline(&res)
		if err := publish(&res, *md, *render); err != nil {
			fatal(err)
		}
		fmt.Println(summaryLines(&res))
		return
	}
	if *micro != "" {
		repo, _ := os.Getwd()
		if err := microReport(*micro, *microJSON, *md, repo); err != nil {
			fatal(err)
		}
		return
	}
	if *dropTopics != "" || *dropKS != "" {
		for _, t := range strings.Split(*dropTopics, ",") {
			if !strings.HasPrefix(t, "bench-") && t != "" {
				fatal(fmt.Errorf("refusing to delete %q: not a benchmark topic (bench-…)", t))
			}
		}
		if *dropKS != "" && !strings.HasPrefix(*dropKS, "bench_") {
			fatal(fmt.Errorf("refusing to drop %q: not a benchmark keyspace (bench_…)", *dropKS))
		}
		if *dropTopics != "" {
			if err := deleteTopics(strings.Split(os.Getenv("SEXTANT_KAFKA_BROKERS"), ","), strings.Split(*dropTopics, ",")...); err != nil {
				fatal(err)
			}
		}
		if *dropKS != "" {
			if err := dropKeyspace(*dropKS); err != nil {
				fatal(err)
			}
		}
		return
	}
	p, err := planFor(*size)
	if err != nil {
		fatal(err)
	}
	if *bin == "" {
		fatal(errors.New("--bin is required"))
	}
	repo, _ := os.Getwd()
	runID := "b" + strconv.FormatInt(time.Now().Unix(), 36)
	p.StartVersion = *startVersion
	h := &harness{repo: repo, bin: *bin, plan: p, keep: *keep, profile: *profile, start: time.Now(), outDir: filepath.Join(*out, runID)}
	if h.profile {
		if _, err := exec.LookPath("perf"); err != nil {
			h.logf("perf not found: no profiles")
			h.profile = false
		}
	}
	if err := os.MkdirAll(h.outDir, 0o755); err != nil {
		fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	res := Results{
		Schema: 1, Size: p.Size, Plan: p, RunID: runID,
		Date:     time.Now().UTC().Format(time.RFC3339),
		Machine:  readMachine(runtime.Version()),
		Backends: map[string]*BackendResult{},
	}
	res.Commit, res.Modified = buildCommit(repo)
	h.memLimitKiB = res.Machine.memKiB * 6 / 10
	h.logf("run %s (%s): %d cores, %.1f GiB, commit %s; logs in %s", runID, p.Size, res.Machine.Cores, res.Machine.MemoryGiB, res.Commit, h.outDir)

	for _, b := range strings.Split(*backends, ",") {
		b = strings.TrimSpace(b)
		if b == "" {
			continue
		}
		var br *BackendResult
		switch b {
		case "distributed":
			if os.Getenv("SEXTANT_KAFKA_BROKERS") == "" || os.Getenv("SEXTANT_CQL_HOSTS") == "" {
				h.logf("distributed: skipped (SEXTANT_KAFKA_BROKERS and SEXTANT_CQL_HOSTS not set; eval \"$(./tilt/stack.sh env)\")")
				res.Skipped = append(res.Skipped, "distributed: the stack's environment is not set")
				continue
			}
			br = h.runDistributed(ctx, runID)
		case "embedded":
			br = h.runEmbedded(ctx, runID)
		default:
			fatal(fmt.Errorf("unknown backend %q", b))
		}
		res.Backends[b] = br
		h.stopServices()
		if ctx.Err() != nil {
			break
		}
	}
	if *merge != "" {
		if err := mergeResults(&res, *merge); err != nil {
			fatal(err)
		}
	}
	if ctx.Err() == nil {
		h.logf("HyperLogLog error on %d users, %d trials", p.HLLUsers, p.HLLTrials)
		hll := hllError(p.HLLUsers, p.HLLTrials)
		res.HLL = &hll
	}
	res.DurationSeconds = time.Since(h.start).Seconds()
	res.Metrics = headline(&res)
	b, _ := json.MarshalIndent(res, "", "  ")
	b = append(b, '\n')
	if err := os.WriteFile(filepath.Join(h.outDir, "results.json"), b, 0o644); err != nil {
		fatal(err)
	}
	if *results != "" {
		if err := os.WriteFile(*results, b, 0o644); err != nil {
			fatal(err)
		}
	}
	if err := publish(&res, *md, *results); err != nil {
		fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.outDir, "tables.md"), []byte(renderMarkdown(&res)), 0o644); err != nil {
		fatal(err)
	}
	fmt.Println(summaryLines(&res))
	h.logf("done in %.0fs", res.DurationSeconds)
	failed := false
	for _, br := range res.Backends {
		if len(br.Errors) > 0 {
			failed = true
		}
	}
	if failed || ctx.Err() != nil {
		os.Exit(1)
	}
}

func goVersion() string { return runtime.Version() }

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

// buildCommit returns the commit the harness was built from: from the
// build info when Go stamped it, else read from .git (HEAD and its ref).
func buildCommit(repo string) (string, *bool) {
	commit := "unknown"
	var modified *bool
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				m := s.Value == "true"
				modified = &m
			}
		}
	}
	if commit == "unknown" {
		commit = readGitHead(filepath.Join(repo, ".git"))
	}
	return commit, modified
}

// readGitHead resolves .git/HEAD to a commit id by reading the files. In
// a work tree of its own (git worktree), .git is a file naming the
// directory that holds its HEAD.
func readGitHead(dir string) string {
	if b, err := os.ReadFile(dir); err == nil {
		if gitdir, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "gitdir: "); ok {
			return readGitHead(gitdir)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "HEAD"))
	if err != nil {
		return "unknown"
	}
	head := strings.TrimSpace(string(b))
	ref, ok := strings.CutPrefix(head, "ref: ")
	if !ok {
		return head
	}
	if b, err := os.ReadFile(filepath.Join(dir, ref)); err == nil {
		return strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile(filepath.Join(dir, "packed-refs")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if id, name, ok := strings.Cut(strings.TrimSpace(line), " "); ok && name == ref {
				return id
			}
		}
	}
	return "unknown"
}

func (h *harness) stopServices() {
	for i := len(h.services) - 1; i >= 0; i-- {
		h.services[i].stop()
	}
	h.services = nil
}

func (h *harness) nextSeed() int64 {
	h.seed++
	return h.seed
}

// env returns the environment for sextant processes: the harness's own
// without SEXTANT_ settings, plus extra.
func baseEnv(keepStack bool, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "SEXTANT_") {
			k, _, _ := strings.Cut(kv, "=")
			if !keepStack || (k != "SEXTANT_KAFKA_BROKERS" && k != "SEXTANT_CQL_HOSTS" && k != "SEXTANT_REDIS_ADDR") {
				continue
			}
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// backend is one deployment under test.
type backend struct {
	name     string
	env      []string
	keysFile string
	keys     []loadgen.Keys
	// probeKeysFile has the keys of the freshness probes' property.
	probeKeysFile string
	// manyKeysFile has the many merchants' keys (--count).
	manyKeysFile string
	manyKeys     []loadgen.Keys
	// registryKeysFile has the keys of the plan's RegistryProperties.
	registryKeysFile string
	// services are the Sextant processes' addresses, by name.
	services map[string]string
	// metricsAddrs are where the projection process(es) serve /metrics
	// (none while the projection is stopped).
	metricsAddrs func() []string
	// measureSize measures the read model's and the log's bytes on disk.
	measureSize func(ctx context.Context) (views, log int64, what string, err error)
	adminKey    string
	ingestAddr  string // where clients send (the gateway, or the server)
	directAddr  string // the collect service itself ("" for embedded)
	queryAddr   string
	pids        map[string]int
	client      *client
	// insightsClient calls the insights service directly (distributed).
	insightsClient *client
	stored         int64       // acknowledged events
	profiles       []*profiler // recorded, not yet summarised
	cancel         context.CancelFunc
	mu             sync.Mutex // res.Errors, from the memory guard
	// pauseProjection and resumeProjection stop and restart the
	// projection service (distributed only).
	pauseProjection, resumeProjection func(context.Context) error
	res                               *BackendResult
}

// setupProperties creates the properties and an admin key.
func (h *harness) setupProperties(ctx context.Context, b *backend, extra ...string) error {
	var lines []string
	for i := 0; i < h.plan.Properties; i++ {
		out, err := h.runSextant(ctx, b.env, append([]string{"property", "create", "--offline", "--name", fmt.Sprintf("bench-%d", i+1), "--json"}, extra...)...)
		if err != nil {
			return err
		}
		var k loadgen.Keys
		if err := json.Unmarshal([]byte(out), &k); err != nil {
			return fmt.Errorf("property create printed %q: %w", out, err)
		}
		b.keys = append(b.keys, k)
		lines = append(lines, strings.TrimSpace(out))
	}
	b.keysFile = filepath.Join(h.outDir, b.name+"-keys.jsonl")
	if err := os.WriteFile(b.keysFile, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	// A property of its own for the freshness probes: polling it reads
	// only the probes' cells, so the polls are cheap and measure the
	// pipeline, while its events share the log partitions and the
	// projection with the load.
	out, err := h.runSextant(ctx, b.env, append([]string{"property", "create", "--offline", "--name", "bench-probe", "--json"}, extra...)...)
	if err != nil {
		return err
	}
	b.probeKeysFile = filepath.Join(h.outDir, b.name+"-probe-keys.jsonl")
	if err := os.WriteFile(b.probeKeysFile, []byte(out), 0o600); err != nil {
		return err
	}
	out, err = h.runSextant(ctx, b.env, append([]string{"admin-key", "create"}, extra...)...)
	if err != nil {
		return err
	}
	_, key, ok := strings.Cut(strings.TrimSpace(out), "SEXTANT_ADMIN_KEY=")
	if !ok {
		return fmt.Errorf("admin-key create printed %q", out)
	}
	b.adminKey = key
	if n := h.plan.ManyProperties; n > 0 {
		t0 := time.Now()
		out, err := h.runSextant(ctx, b.env, append([]string{"property", "create", "--offline", "--name", "bench-mm", "--count", strconv.Itoa(n), "--json"}, extra...)...)
		if err != nil {
			return err
		}
		if b.manyKeys, err = loadgen.ReadKeys(strings.NewReader(out)); err != nil || len(b.manyKeys) != n {
			return fmt.Errorf("property create --count %d: %d keys, %v", n, len(b.manyKeys), err)
		}
		b.manyKeysFile = filepath.Join(h.outDir, b.name+"-many-keys.jsonl")
		if err := os.WriteFile(b.manyKeysFile, []byte(out), 0o600); err != nil {
			return err
		}
		b.res.ManyProperties, b.res.ManySetupSeconds = n, time.Since(t0).Seconds()
		h.logf("%s: created %d properties for the many-merchants phases in %.1fs", b.name, n, b.res.ManySetupSeconds)
	}
	n := h.plan.RegistryProperties
	if b.name == "distributed" {
		n = h.plan.RegistryPropertiesCQL
	}
	if n > 0 {
		t0 := time.Now()
		out, err := h.runSextant(ctx, b.env, append([]string{"property", "create", "--offline", "--name", "bench-reg", "--count", strconv.Itoa(n), "--json"}, extra...)...)
		if err != nil {
			return err
		}
		if lines := strings.Count(out, "\n"); lines != n {
			return fmt.Errorf("property create --count %d printed %d lines", n, lines)
		}
		b.registryKeysFile = filepath.Join(h.outDir, b.name+"-registry-keys.jsonl")
		if err := os.WriteFile(b.registryKeysFile, []byte(out), 0o600); err != nil {
			return err
		}
		b.res.RegistryProperties, b.res.RegistrySetupSeconds = n, time.Since(t0).Seconds()
		h.logf("%s: registered %d more properties in %.1fs", b.name, n, b.res.RegistrySetupSeconds)
	}
	return nil
}

// highLimits lifts the per-property and per-address rate limits (the load
// generator is one address): the benchmark measures the machine, not the
// limiters.
var highLimits = []string{"--collect-rate", "1000000000", "--collect-burst", "1000000000", "--ip-rate", "1000000000", "--ip-burst", "1000000000"}

func (h *harness) runDistributed(ctx context.Context, runID string) *BackendResult {
	b := &backend{name: "distributed", res: &BackendResult{Name: "distributed", Phases: map[string]*Phase{}}}
	ctx, b.cancel = context.WithCancel(ctx)
	defer b.cancel()
	topic, keyspace := "bench-"+runID, "bench_"+runID
	b.res.Topic, b.res.Keyspace = topic, keyspace
	b.env = baseEnv(true, "SEXTANT_KAFKA_TOPIC="+topic, "SEXTANT_CQL_KEYSPACE="+keyspace)
	brokers := strings.Split(os.Getenv("SEXTANT_KAFKA_BROKERS"), ",")
	rawTopic := topic + "-raw"
	defer func() {
		h.stopServices()
		if h.keep {
			h.logf("kept topic %s and keyspace %s", topic, keyspace)
			return
		}
		if err := deleteTopics(brokers, topic, topic+".deadletters", rawTopic, rawTopic+".deadletters"); err != nil {
			h.logf("cleanup: %v", err)
		}
		if err := dropKeyspace(keyspace); err != nil {
			h.logf("cleanup: %v", err)
		}
	}()
	fail := func(err error) *BackendResult {
		h.logf("distributed: %v", err)
		b.res.Errors = append(b.res.Errors, err.Error())
		return b.res
	}
	h.logf("distributed: topic %s (12 partitions), keyspace %s", topic, keyspace)
	t0 := time.Now()
	if _, err := h.runSextant(ctx, b.env, "kafka", "init", "--kafka-partitions", "12"); err != nil {
		return fail(err)
	}
	if _, err := h.runSextant(ctx, b.env, "kafka", "init", "--kafka-partitions", "12", "--kafka-topic", rawTopic); err != nil {
		return fail(err)
	}
	if _, err := h.runSextant(ctx, b.env, "migrate"); err != nil {
		return fail(err)
	}
	if err := h.setupProperties(ctx, b); err != nil {
		return fail(err)
	}
	b.res.SetupSeconds = time.Since(t0).Seconds()
	b.pids = map[string]int{}
	var addrs = map[string]string{}
	var projection *service
	for _, svc := range []string{"collect", "projection", "insights"} {
		s, err := h.startService(ctx, svc, b.env, append([]string{"--services", svc}, highLimits...)...)
		if err != nil {
			return fail(err)
		}
		b.pids[svc], addrs[svc] = s.pid(), s.addr
		if svc == "projection" {
			projection = s
		}
	}
	b.pauseProjection = func(ctx context.Context) error {
		h.notePeakRSS(b)
		h.logf("distributed: stopping the projection service for the ingest phases")
		projection.stop()
		delete(b.pids, "projection")
		return nil
	}
	b.resumeProjection = func(ctx context.Context) error {
		s, err := h.startServiceAt(ctx, "projection-2", projection.addr, b.env, append([]string{"--services", "projection"}, highLimits...)...)
		if err != nil {
			return err
		}
		b.pids["projection"] = s.pid()
		return nil
	}
	gw, err := h.startService(ctx, "gateway", b.env, append([]string{"--services", "gateway",
		"--collect-backends", addrs["collect"], "--projection-backends", addrs["projection"], "--insights-backends", addrs["insights"]}, highLimits...)...)
	if err != nil {
		return fail(err)
	}
	b.pids["gateway"] = gw.pid()
	// The projection is stopped during the ingest phases: not listed.
	b.services = map[string]string{"collect": addrs["collect"], "insights": addrs["insights"], "gateway": gw.addr}
	for name, pid := range stackPIDs(h.repo) {
		b.pids[name] = pid
	}
	b.ingestAddr, b.directAddr, b.queryAddr = gw.addr, addrs["collect"], gw.addr
	b.metricsAddrs = func() []string {
		if _, ok := b.pids["projection"]; !ok {
			return nil
		}
		return []string{projection.addr}
	}
	b.measureSize = func(ctx context.Context) (int64, int64, string, error) {
		return distributedSize(ctx, b.pids, keyspace, topic)
	}
	if b.client, err = dial(gw.addr); err != nil {
		return fail(err)
	}
	defer b.client.close()
	if b.insightsClient, err = dial(addrs["insights"]); err != nil {
		return fail(err)
	}
	defer b.insightsClient.close()
	h.runPhases(ctx, b, func(ctx context.Context) {
		h.rawProducerPhase(ctx, b, brokers, rawTopic)
	}, func(ctx context.Context) {
		h.phase(ctx, b, "raw_consumer", "baseline", func(ph *Phase) error {
			r, err := rawConsume(ctx, brokers, topic, nil)
			ph.RawConsumer = &r
			return err
		})
		h.phase(ctx, b, "raw_consumer_decode", "baseline", func(ph *Phase) error {
			// Collect's records are sealed: they are opened with the
			// run's key store, as the projection opens them.
			keys, err := cqlstore.Open(ctx, cqlstore.Config{Hosts: strings.Split(os.Getenv("SEXTANT_CQL_HOSTS"), ","), Keyspace: keyspace})
			if err != nil {
				return err
			}
			defer keys.Close()
			r, err := rawConsume(ctx, brokers, topic, seal.NewOpener(keys))
			ph.RawConsumer = &r
			return err
		})
	})
	return b.res
}

func (h *harness) runEmbedded(ctx context.Context, runID string) *BackendResult {
	b := &backend{name: "embedded", res: &BackendResult{Name: "embedded", Phases: map[string]*Phase{}}}
	ctx, b.cancel = context.WithCancel(ctx)
	defer b.cancel()
	dir := filepath.Join(h.outDir, "embedded-data")
	b.env = baseEnv(false, "SEXTANT_DATA_DIR="+dir)
	defer func() {
		h.stopServices()
		if !h.keep {
			os.RemoveAll(dir)
		}
	}()
	fail := func(err error) *BackendResult {
		h.logf("embedded: %v", err)
		b.res.Errors = append(b.res.Errors, err.Error())
		return b.res
	}
	t0 := time.Now()
	if err := h.setupProperties(ctx, b); err != nil {
		return fail(err)
	}
	b.res.SetupSeconds = time.Since(t0).Seconds()
	s, err := h.startService(ctx, "embedded", b.env, highLimits...)
	if err != nil {
		return fail(err)
	}
	b.pids = map[string]int{"sextant": s.pid()}
	b.ingestAddr, b.queryAddr = s.addr, s.addr
	b.metricsAddrs = func() []string { return []string{s.addr} }
	b.services = map[string]string{"sextant": s.addr}
	b.measureSize = func(ctx context.Context) (int64, int64, string, error) {
		v, l, err := embeddedSize(dir)
		return v, l, "Pebble: every file of the view store (" + filepath.Join(dir, "views") + ": sstables, WAL, manifest); log: every file of the embedded event log (" + filepath.Join(dir, "log") + ")", err
	}
	if b.client, err = dial(s.addr); err != nil {
		return fail(err)
	}
	defer b.client.close()
	h.runPhases(ctx, b, nil, nil)
	return b.res
}

// runPhases runs the measurements common to both backends; raw and
// consumer add the Kafka baselines.
//
// In distributed mode the ingest phases run with the projection service
// stopped, so that they measure the write path (gateway, collect, Kafka)
// the way the raw producer baseline is measured, rather than how much of
// the two cores Cassandra leaves; the projection then catches up in a
// phase of its own, which measures it. The fills that build the store for
// the reports run with everything up: they are the whole system's
// sustained rate on this machine.
func (h *harness) runPhases(ctx context.Context, b *backend, raw, consumer func(context.Context)) {
	p := h.plan
	sizes := p.QuerySizes
	// Reports on a small store first.
	h.fillAndQuery(ctx, b, sizes[0])
	if ctx.Err() != nil {
		return
	}
	paused := false
	if b.pauseProjection != nil {
		if err := b.pauseProjection(ctx); err != nil {
			b.res.Errors = append(b.res.Errors, "stop projection: "+err.Error())
		} else {
			paused = true
		}
	}
	before := b.stored
	wait := !paused
	stream := func(name, addr string, batch int, events int64) {
		conc, inflight := 4, 4
		if batch < 100 {
			conc, inflight = 8, 16
		}
		h.loadgenPhase(ctx, b, name, "ingest", addr, events, wait,
			"--mode", "stream", "--batch", strconv.Itoa(batch), "--concurrency", strconv.Itoa(conc), "--inflight", strconv.Itoa(inflight))
	}
	stream("ingest_grpc_stream_b500", b.ingestAddr, 500, p.IngestEvents)
	stream("ingest_grpc_stream_b25", b.ingestAddr, 25, p.IngestEvents)
	if b.directAddr != "" && p.DirectEvents > 0 {
		stream("ingest_grpc_stream_b500_direct", b.directAddr, 500, p.DirectEvents)
	}
	if raw != nil {
		raw(ctx)
	}
	h.loadgenPhase(ctx, b, "ingest_rest_single", "ingest", b.ingestAddr, p.RestSingleEvents, wait,
		"--mode", "rest", "--batch", "1", "--concurrency", strconv.Itoa(p.RestConcurrency))
	h.loadgenPhase(ctx, b, "ingest_rest_b25", "ingest", b.ingestAddr, p.RestBatchEvents, wait,
		"--mode", "rest", "--batch", "25", "--concurrency", strconv.Itoa(p.RestConcurrency/2))
	h.loadgenPhase(ctx, b, "ingest_grpc_unary_b25", "ingest", b.ingestAddr, p.UnaryEvents, wait,
		"--mode", "unary", "--batch", "25", "--concurrency", "32")
	if b.registryKeysFile != "" {
		// The same calls, each to a property drawn at random among the
		// registered ones: every key is looked up, few are cached.
		h.loadgenPhase(ctx, b, "ingest_grpc_unary_b25_registry", "ingest", b.ingestAddr, p.UnaryEvents, wait,
			"--mode", "unary", "--batch", "25", "--concurrency", "32", "--keys-file", b.registryKeysFile, "--properties-zipf", "0")
		// Merchants' traffic: a few properties large, most small. (The
		// uniform phase before it warmed the caches with the keys it drew,
		// a random few of each rank.)
		h.loadgenPhase(ctx, b, "ingest_grpc_unary_b25_registry_zipf", "ingest", b.ingestAddr, p.UnaryEvents, wait,
			"--mode", "unary", "--batch", "25", "--concurrency", "32", "--keys-file", b.registryKeysFile, "--properties-zipf", "1")
		h.noteRegistryMemory(ctx, b)
	}
	if paused {
		// The projection starts just before the phase, so that the phase
		// follows its process; the catch-up time counts from its start.
		t0 := time.Now()
		resumeErr := b.resumeProjection(ctx)
		h.phase(ctx, b, "projection_catch_up", "project", func(ph *Phase) error {
			ph.Events = b.stored - before
			if resumeErr != nil {
				return resumeErr
			}
			_, err := b.client.waitCaughtUp(ctx, b.adminKey, 2*time.Hour)
			ph.CatchUpSeconds = time.Since(t0).Seconds()
			if err == nil {
				h.logf("%s: projection caught up with %d events in %.1fs (from its start): %.0f events/s", b.name, ph.Events, ph.CatchUpSeconds, float64(ph.Events)/ph.CatchUpSeconds)
			}
			return err
		})
	}
	if len(sizes) > 1 {
		h.fillAndQuery(ctx, b, sizes[1])
	}
	if ctx.Err() != nil {
		return
	}
	// Freshness under a steady load, then flat out.
	secs := strconv.FormatFloat(p.FreshDuration.Seconds(), 'f', -1, 64) + "s"
	every := "250ms"
	h.loadgenPhase(ctx, b, "freshness_20k", "freshness", b.ingestAddr, p.FreshMaxEvents, true,
		"--mode", "stream", "--batch", "25", "--concurrency", "16", "--rate", strconv.FormatFloat(p.FreshRate, 'f', -1, 64),
		"--duration", secs, "--history", "0", "--freshness", "--freshness-interval", every, "--freshness-keys-file", b.probeKeysFile)
	h.loadgenPhase(ctx, b, "freshness_max", "freshness", b.ingestAddr, p.FreshMaxEvents, true,
		"--mode", "stream", "--batch", "500", "--concurrency", "4", "--inflight", "4",
		"--duration", secs, "--history", "0", "--freshness", "--freshness-interval", every, "--freshness-keys-file", b.probeKeysFile)
	if ctx.Err() != nil {
		return
	}
	h.phase(ctx, b, "replay_v2", "replay", func(ph *Phase) error {
		prof := h.startProfile(b, "replay_v2")
		r, err := b.client.replay(ctx, b.adminKey, "v2", 2*time.Hour)
		prof.stop(b)
		ph.Replay = &r
		if err == nil {
			h.logf("%s: replay of %d records in %.1fs: %.0f events/s (steady %.0f)", b.name, r.Records, r.Seconds, r.EventsPerSecond, r.SteadyEventsPerSecond)
		}
		return err
	})
	h.noteRSSAt(b, "after replay_v2")
	if consumer != nil {
		consumer(ctx)
	}
	h.notePeakRSS(b)
	h.manyMerchants(ctx, b)
	h.notePeakRSS(b)
	b.res.StoredEvents = b.stored
	if len(b.profiles) > 0 {
		h.logf("%s: summarising %d profiles", b.name, len(b.profiles))
		summarizeProfiles(b)
	}
}

// notePeakRSS records the processes' peak resident memory (VmHWM).
func (h *harness) notePeakRSS(b *backend) {
	for name, pid := range b.pids {
		if st := readProc(pid); st.ok {
			if b.res.PeakRSSMiB == nil {
				b.res.PeakRSSMiB = map[string]float64{}
			}
			b.res.PeakRSSMiB[name] = max(b.res.PeakRSSMiB[name], float64(st.hwmKiB)/1024)
		}
	}
}

// phase runs fn as a named phase, with the processes' CPU and memory.
func (h *harness) phase(ctx context.Context, b *backend, name, kind string, fn func(*Phase) error) *Phase {
	if ctx.Err() != nil {
		return nil
	}
	ph := &Phase{Name: name, Kind: kind, StoredBefore: b.stored}
	h.logf("%s: %s", b.name, name)
	s := startSampler(b.pids, h.memLimitKiB, func(proc string, rss int64) {
		msg := fmt.Sprintf("%s: %s's resident memory reached %.1f GiB, over the guard of %.1f GiB (60 %% of the machine): the backend's run stops here so that the shared machine is not pushed into swapping or the OOM killer",
			name, proc, float64(rss)/(1<<20), float64(h.memLimitKiB)/(1<<20))
		h.logf("%s: %s", b.name, msg)
		b.mu.Lock()
		b.res.Errors = append(b.res.Errors, msg)
		b.mu.Unlock()
		b.cancel()
	})
	var before map[string]float64
	if b.metricsAddrs != nil {
		before = scrapeAll(ctx, b.metricsAddrs())
	}
	t0 := time.Now()
	err := fn(ph)
	ph.Seconds = time.Since(t0).Seconds()
	ph.Procs, ph.HarnessCPUSeconds, ph.MachineCPUSeconds = s.finish()
	if before != nil {
		if kind == "fill" || kind == "many" {
			// Additions are estimated from the compactors' pending gauge
			// when no counter counts them: one more compactor run (every
			// 2 s) sets it for the phase's last checkpoints.
			time.Sleep(2500 * time.Millisecond)
		}
		ph.Store = storeDelta(before, scrapeAll(ctx, b.metricsAddrs()))
	}
	// CPU that no process of the run used: kernel threads (disk
	// writeback, networking), and other processes (another test run on the
	// machine, say): a warning that the phase's figures may be low when
	// it is a large share of the machine.
	known := ph.HarnessCPUSeconds + ph.LoadgenCPUSeconds
	for _, u := range ph.Procs {
		known += u.CPUSeconds
	}
	ph.OtherCPUSeconds = max(0, ph.MachineCPUSeconds-known)
	if ph.Seconds > 1 && ph.OtherCPUSeconds > 0.25*ph.Seconds*float64(runtime.NumCPU()) {
		msg := fmt.Sprintf("%s: other processes used %.1f CPU seconds of %.1f (%.0f%% of the machine): the figures are pessimistic", name, ph.OtherCPUSeconds, ph.MachineCPUSeconds, 100*ph.OtherCPUSeconds/(ph.Seconds*float64(runtime.NumCPU())))
		ph.Warning = msg
		b.res.Warnings = append(b.res.Warnings, msg)
		h.logf("%s: warning: %s", b.name, msg)
	}
	if err != nil {
		ph.Error = err.Error()
		b.mu.Lock()
		b.res.Errors = append(b.res.Errors, name+": "+err.Error())
		b.mu.Unlock()
		h.logf("%s: %s failed: %v", b.name, name, err)
	}
	b.res.Phases[name] = ph
	b.res.Order = append(b.res.Order, name)
	return ph
}

// loadgenPhase runs `sextant loadgen` against addr (with a fresh seed),
// then waits for the projection to catch up (inside the phase, so that
// the CPU per event includes projecting).
func (h *harness) loadgenPhase(ctx context.Context, b *backend, name, kind, addr string, events int64, waitCatchUp bool, args ...string) *Phase {
	if kind == "ingest" {
		// A write-path figure is the write path's: the compactions that
		// the phases before it left (the embedded projection runs in the
		// same process) are let finish first.
		h.settle(ctx, b, name)
	}
	return h.phase(ctx, b, name, kind, func(ph *Phase) error {
		all := []string{"loadgen", "--server", addr, "--keys-file", b.keysFile, "--json", "--progress", "10s",
			"--seed", strconv.FormatInt(h.nextSeed(), 10)}
		if events > 0 {
			all = append(all, "--events", strconv.FormatInt(events, 10))
		}
		all = append(all, args...) // later flags win (--history for freshness)
		cmd := exec.CommandContext(ctx, h.bin, all...)
		cmd.Env = b.env
		var stdout bytes.Buffer
		cmd.Stdout = &stdout
		cmd.Stderr = prefixWriter{prefix: "    "}
		prof := h.startProfile(b, name)
		runErr := cmd.Run()
		prof.stop(b)
		if cmd.ProcessState != nil {
			ph.LoadgenCPUSeconds = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
		}
		var lr LoadgenResult
		if err := json.Unmarshal(stdout.Bytes(), &lr); err != nil {
			return fmt.Errorf("loadgen: %v; output %q", errors.Join(runErr, err), stdout.String())
		}
		ph.Loadgen = &lr
		ph.Events = lr.EventsAcked
		b.stored += lr.EventsAcked
		if lr.Freshness != nil {
			b.stored += int64(lr.Freshness.Count)
		}
		h.logf("%s: %s: %d events acked in %.1fs: %.0f events/s (%.0f batches/s), batch ack p50 %.1fms p99 %.1fms",
			b.name, name, lr.EventsAcked, lr.ElapsedSeconds, lr.EventsPerSecond, lr.BatchesPerSecond, lr.BatchAckLatency.P50Ms, lr.BatchAckLatency.P99Ms)
		if lr.Freshness != nil {
			h.logf("%s: %s: freshness p50 %.0fms p99 %.0fms over %d probes", b.name, name, lr.Freshness.P50Ms, lr.Freshness.P99Ms, lr.Freshness.Count)
		}
		if runErr != nil {
			return fmt.Errorf("loadgen: %v (%s)", runErr, strings.Join(lr.Errors, "; "))
		}
		if waitCatchUp {
			d, err := b.client.waitCaughtUp(ctx, b.adminKey, time.Hour)
			ph.CatchUpSeconds = d.Seconds()
			if err != nil {
				return err
			}
			h.logf("%s: %s: projection caught up %.1fs after the last ack", b.name, name, d.Seconds())
		}
		return nil
	})
}

// fillAndQuery tops the store up to size events (over the last 70 hours,
// in time order: the first events 70 hours old, the last a few minutes, as
// a backfill or a day's traffic arrives), waits for the projection, and
// times the reports.
func (h *harness) fillAndQuery(ctx context.Context, b *backend, size int64) {
	fill := fmt.Sprintf("fill_to_%s", human(size))
	if b.stored < size {
		h.loadgenPhase(ctx, b, fill, "fill", b.ingestAddr, size-b.stored, true,
			"--mode", "stream", "--batch", "500", "--concurrency", "4", "--inflight", "4",
			"--history", h.plan.History.String(), "--time-order")
		h.noteStoreSize(ctx, b, "after "+fill, -1)
	}
	if ctx.Err() != nil {
		return
	}
	defer func() {
		// After the last fill's reports, once compaction has settled.
		if size != h.plan.QuerySizes[len(h.plan.QuerySizes)-1] || ctx.Err() != nil || b.metricsAddrs == nil {
			return
		}
		h.logf("%s: waiting (at most %v) for compaction to settle", b.name, h.plan.SettleWait)
		pending, waited := waitCompactionSettled(ctx, b.metricsAddrs(), h.plan.SettleWait)
		h.logf("%s: compaction: %.0f additions pending after %.0fs", b.name, pending, waited.Seconds())
		h.noteStoreSize(ctx, b, "after "+fill+", compaction settled", pending)
	}()
	run := func(name string, c *client) {
		h.phase(ctx, b, name, "query", func(ph *Phase) error {
			if _, err := b.client.waitCaughtUp(ctx, b.adminKey, time.Hour); err != nil {
				return err
			}
			prof := h.startProfile(b, name)
			qs, err := c.queryBench(ctx, b.keys[0].ReadKey, b.stored, h.plan.QueryIters, h.plan.QueryBudget)
			prof.stop(b)
			ph.Queries = qs
			for _, q := range qs {
				h.logf("%s: %-24s at %s events: uncached p50 %.1fms p99 %.1fms, cached p50 %.2fms p99 %.2fms (%d rows)",
					b.name, q.Query, human(b.stored), q.Uncached.P50Ms, q.Uncached.P99Ms, q.Cached.P50Ms, q.Cached.P99Ms, q.Rows)
			}
			return err
		})
	}
	run(fmt.Sprintf("query_at_%s", human(b.stored)), b.client)
	if b.insightsClient != nil {
		// The same, straight to the insights service: without the gateway.
		run(fmt.Sprintf("query_direct_at_%s", human(b.stored)), b.insightsClient)
	}
}

func (h *harness) rawProducerPhase(ctx context.Context, b *backend, brokers []string, topic string) {
	n := h.plan.IngestEvents
	pool := min(int(n), 500_000)
	h.logf("%s: encoding %d events for the raw producer", b.name, pool)
	cfg := loadgen.DefaultConfig()
	cfg.Seed, cfg.BatchSize, cfg.History, cfg.End = 999, 500, h.plan.History, time.Now().Truncate(time.Second)
	ids := make([]string, len(b.keys))
	for i, k := range b.keys {
		ids[i] = k.PropertyID
	}
	msgs, _, err := encodeEvents(cfg, ids, pool)
	if err != nil {
		b.res.Errors = append(b.res.Errors, "raw producer: "+err.Error())
		return
	}
	h.phase(ctx, b, "raw_producer", "baseline", func(ph *Phase) error {
		const tries = 3
		var best RawProducerResult
		for i := 0; i < tries; i++ {
			r, err := rawProduce(ctx, brokers, topic, msgs, n)
			h.logf("%s: raw producer, try %d: %d events in %.1fs: %.0f events/s (%.0f bytes/event)", b.name, i+1, r.Events, r.Seconds, r.EventsPerSecond, r.MeanEventBytes)
			if err != nil {
				return err
			}
			if r.EventsPerSecond > best.EventsPerSecond {
				best = r
			}
		}
		best.Tries = tries
		ph.RawProducer = &best
		ph.Events = best.Events
		return nil
	})
}

// settle waits, up to a minute, for the machine to be nearly idle (under
// 15 % busy over a second) and logs how long it waited.
func (h *harness) settle(ctx context.Context, b *backend, name string) {
	const idle, limit = 0.15, time.Minute
	t0 := time.Now()
	for time.Since(t0) < limit && ctx.Err() == nil {
		b0 := machineBusy()
		time.Sleep(time.Second)
		if (machineBusy()-b0)/float64(runtime.NumCPU()) < idle {
			break
		}
	}
	if d := time.Since(t0); d > 1500*time.Millisecond {
		h.logf("%s: %s: waited %.0fs for the machine to settle", b.name, name, d.Seconds())
	}
}

func human(n int64) string {
	switch {
	case n >= 1_000_000 && n%100_000 == 0:
		return strconv.FormatFloat(float64(n)/1e6, 'f', -1, 64) + "M"
	case n >= 1_000_000:
		return strconv.FormatFloat(float64(n)/1e6, 'f', 2, 64) + "M"
	case n >= 1000:
		return strconv.FormatInt((n+500)/1000, 10) + "k"
	}
	return strconv.FormatInt(n, 10)
}

type prefixWriter struct{ prefix string }

func (p prefixWriter) Write(b []byte) (int, error) {
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line != "" {
			fmt.Fprint(os.Stderr, p.prefix+line)
		}
	}
	return len(b), nil
}

func dropKeyspace(keyspace string) error {
	sess, err := cqlSession()
	if err != nil {
		return err
	}
	defer sess.Close()
	return sess.Query(`DROP KEYSPACE IF EXISTS ` + keyspace).Exec()
}

// cqlSession connects to the stack's Cassandra (SEXTANT_CQL_HOSTS).
func cqlSession() (*gocql.Session, error) {
	c := gocql.NewCluster(strings.Split(os.Getenv("SEXTANT_CQL_HOSTS"), ",")...)
	c.ProtoVersion = 4
	c.Timeout = 60 * time.Second
	return c.CreateSession()
}

// mergeResults adds the backends of the results file path that res lacks,
// each marked with the run it comes from.
func mergeResults(res *Results, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var old Results
	if err := json.Unmarshal(b, &old); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if old.Size != res.Size {
		return fmt.Errorf("%s is a %s run, this one %s", path, old.Size, res.Size)
	}
	for name, br := range old.Backends {
		if _, ok := res.Backends[name]; ok {
			continue
		}
		if br.From == "" {
			commit := old.Commit
			if len(commit) > 12 {
				commit = commit[:12]
			}
			br.From = fmt.Sprintf("`%s` (commit %s, %s)", old.RunID, commit, old.Date)
		}
		res.Backends[name] = br
	}
	return nil
}

// publish writes a run's tables: all of them beside its results JSON
// (bench/results.json: bench/results.md), and its figures against the
// targets between the run size's markers in md (BENCHMARKS.md), with a
// link to the rest, so that the document stays short.
func publish(r *Results, md, results string) error {
	if results == "" || md == "" {
		return nil
	}
	tables := strings.TrimSuffix(results, ".json") + ".md"
	title := "# Every table of the " + map[string]string{"quick": "quick", "full": "full"}[r.Size]
	if r.Size != "quick" && r.Size != "full" {
		title = "# Every table of the default"
	}
	title += " benchmark run\n\nWritten by `bench/run.sh`; BENCHMARKS.md explains what is measured and shows the figures against the targets.\n\n"
	if err := os.WriteFile(tables, []byte(title+renderMarkdown(r)), 0o644); err != nil {
		return err
	}
	rel, err := filepath.Rel(filepath.Dir(md), tables)
	if err != nil {
		rel = tables
	}
	return spliceMarkdown(md, r.Size, renderHeadline(r, filepath.ToSlash(rel)))
}

// noteRegistryMemory records what the property registry keeps in each
// Sextant process's memory (its sextant_registry_cache_bytes).
func (h *harness) noteRegistryMemory(ctx context.Context, b *backend) {
	b.res.RegistryCacheBytes = map[string]float64{}
	for name, addr := range b.services {
		m, err := scrapeMetrics(ctx, addr)
		if err != nil {
			h.logf("%s: registry memory of %s: %v", b.name, name, err)
			continue
		}
		b.res.RegistryCacheBytes[name] = m[registryBytesMetric]
	}
	h.logf("%s: registry cache bytes by process: %v", b.name, b.res.RegistryCacheBytes)
}
